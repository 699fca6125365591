"""Keras callbacks that connect a training run to its `Reporter`, one small class per purpose."""

from __future__ import annotations

import time
from typing import Any

import keras

from trainer.reporting import EpochRecord, Reporter


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


class EpochTimer(keras.callbacks.Callback):
    """Adds `epoch_seconds` (training plus validation) to the epoch's logs."""

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._started = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if logs is not None:
            logs["epoch_seconds"] = time.perf_counter() - self._started


class FirstBatchTimer(keras.callbacks.Callback):
    """Notes when the first training step (or chunk of steps) has finished: start-up cost."""

    def __init__(self) -> None:
        super().__init__()
        self.at: float | None = None

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        if self.at is None:
            self.at = time.perf_counter()


class LearningRateLogger(keras.callbacks.Callback):
    """Adds the optimizer's current `learning_rate` to the epoch's logs."""

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if logs is not None and "learning_rate" not in logs:
            logs["learning_rate"] = float(keras.ops.convert_to_numpy(
                self.model.optimizer.learning_rate))


class StopOnRequest(keras.callbacks.Callback):
    """Stops training between batches once the reporter asks to; remembers that it did."""

    def __init__(self, reporter: Reporter) -> None:
        super().__init__()
        self.reporter = reporter
        self.stopped = False

    def _check(self) -> None:
        if not self.stopped and self.reporter.should_stop():
            self.stopped = True
            self.model.stop_training = True

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._check()

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self._check()


class ReportEpoch(keras.callbacks.Callback):
    """Hands each finished epoch to the reporter.

    Keras still closes an epoch that a stop request cut short (it validates and calls
    on_epoch_end); that partial epoch is not reported, so history only holds whole epochs.
    """

    def __init__(self, reporter: Reporter, stopper: StopOnRequest) -> None:
        super().__init__()
        self.reporter = reporter
        self.stopper = stopper

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if self.stopper.stopped:
            return
        logs = logs or {}
        self.reporter.on_epoch(
            EpochRecord(
                epoch=epoch,
                loss=float(logs["loss"]),
                accuracy=float(logs["accuracy"]),
                val_loss=_float(logs.get("val_loss")),
                val_accuracy=_float(logs.get("val_accuracy")),
                learning_rate=_float(logs.get("learning_rate")),
                seconds=float(logs.get("epoch_seconds", 0.0)),
            )
        )
