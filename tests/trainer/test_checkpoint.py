"""Per-epoch checkpoints, driven by hand: atomic files, newest readable one wins."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np

from trainer import checkpoint
from trainer.callbacks import StopOnRequest
from trainer.reporting import Reporter


def _model(seed: int) -> keras.Model:
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    model.compile("adam", "mse")
    model.fit(np.ones((8, 4)), np.ones((8, 3)), verbose=0)
    return model


def _saver(model: keras.Model, folder: Path) -> checkpoint.EpochCheckpoint:
    stopper = StopOnRequest(Reporter())
    stopper.set_model(model)
    callback = checkpoint.EpochCheckpoint(folder, stopper)
    callback.set_model(model)
    return callback


def test_restore_loads_weights_and_optimizer_of_the_newest_epoch(tmp_path: Path) -> None:
    trained = _model(1)
    saver = _saver(trained, tmp_path)
    saver.on_epoch_end(0)
    saver.on_epoch_end(1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["epoch-2.weights.h5"]
    fresh = _model(2)
    assert checkpoint.restore(fresh, tmp_path) == 2
    for a, b in zip(trained.weights, fresh.weights, strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    for a, b in zip(trained.optimizer.variables, fresh.optimizer.variables, strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_a_corrupt_newest_checkpoint_falls_back_to_an_older_one(tmp_path: Path) -> None:
    model = _model(1)
    _saver(model, tmp_path).on_epoch_end(2)
    (tmp_path / "epoch-4.weights.h5").write_bytes(b"half written")
    assert checkpoint.restore(_model(3), tmp_path) == 3


def test_nothing_to_restore_means_epoch_zero(tmp_path: Path) -> None:
    assert checkpoint.restore(_model(1), tmp_path / "missing") == 0
    (tmp_path / "epoch-1.weights.h5").write_bytes(b"garbage")
    assert checkpoint.restore(_model(1), tmp_path) == 0


def test_an_epoch_cut_short_is_not_saved(tmp_path: Path) -> None:
    model = _model(1)
    saver = _saver(model, tmp_path)
    saver.stopper.stopped = True
    saver.on_epoch_end(0)
    assert not tmp_path.exists() or not list(tmp_path.iterdir())
