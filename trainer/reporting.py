"""What training tells its caller: one record per finished epoch, and a way to ask it to stop."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class EpochRecord:
    epoch: int  # 0-based, as in Keras's History.epoch
    loss: float
    accuracy: float
    val_loss: float | None
    val_accuracy: float | None
    learning_rate: float | None
    seconds: float

    def as_dict(self) -> dict[str, float | int | None]:
        return asdict(self)


class Reporter:
    """Hooks a caller plugs into training; every hook does nothing by default.

    `should_stop` is asked between batches, so it must be cheap (throttle any I/O behind it).
    """

    def on_start(self, *, total_epochs: int, initial_epoch: int) -> None:
        """Training is about to run epochs initial_epoch .. total_epochs - 1."""

    def on_epoch(self, record: EpochRecord) -> None:
        """An epoch finished; `record` holds its metrics."""

    def should_stop(self) -> bool:
        return False
