"""Per-epoch checkpoints (weights and optimizer state) that a crash cannot corrupt.

Each finished epoch is written to a temporary file and renamed into place as
`epoch-N.weights.h5`, so a process killed mid-write leaves the previous checkpoint intact.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
from pathlib import Path
from typing import Any

import keras

from trainer.callbacks import StopOnRequest

log = logging.getLogger(__name__)
_NAME = re.compile(r"^epoch-(\d+)\.weights\.h5$")


def _checkpoints(folder: Path) -> list[tuple[int, Path]]:
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _NAME.match(p.name))]
    return sorted(found, reverse=True)


def restore(model: Any, folder: Path) -> int:
    """Load the newest readable checkpoint; the number of epochs it holds (0 if none)."""
    for epochs, path in _checkpoints(folder):
        try:
            if model.optimizer is not None and not model.optimizer.built:
                model.optimizer.build(model.trainable_variables)
            model.load_weights(path)
            return epochs
        except Exception as exc:  # unreadable: try an older one
            log.warning("checkpoint %s unreadable (%s)", path, exc)
    return 0


def clear(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)


class EpochCheckpoint(keras.callbacks.Callback):
    """Saves the model's weights and optimizer state after every finished epoch."""

    def __init__(self, folder: Path, stopper: StopOnRequest) -> None:
        super().__init__()
        self.folder = folder
        self.stopper = stopper

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if self.stopper.stopped:  # an epoch cut short is not a finished one
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = self.folder / ".partial.weights.h5"
        self.model.save_weights(tmp)
        os.replace(tmp, self.folder / f"epoch-{epoch + 1}.weights.h5")
        for _epochs, older in _checkpoints(self.folder)[1:]:
            older.unlink(missing_ok=True)
