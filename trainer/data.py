"""Load MNIST-format data sets once per process.

Order of sources: the folder in MNISTLAB_DATA_DIR (`mnist.npz`, `fashion_mnist.npz`), then Keras's
own cache or download. When neither works the error says what to set.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from trainer.spec import DatasetName

DATA_DIR_ENV = "MNISTLAB_DATA_DIR"
CLASS_NAMES: dict[str, list[str]] = {
    "mnist": [str(d) for d in range(10)],
    "fashion_mnist": [
        "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
        "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
    ],
}
DESCRIPTIONS: dict[str, str] = {
    "mnist": "MNIST handwritten digits, 60k train / 10k test, 28x28 grey, 10 classes.",
    "fashion_mnist": "Fashion-MNIST (Zalando), 60k train / 10k test, 28x28 grey, 10 clothing classes.",
}


class DatasetUnavailable(RuntimeError):
    """Neither the data folder nor Keras's download could provide the data set."""


@dataclass(frozen=True)
class Dataset:
    name: str
    x_train: np.ndarray  # (n, 28, 28) uint8
    y_train: np.ndarray  # (n,) uint8
    x_test: np.ndarray
    y_test: np.ndarray
    source: str


def data_dir() -> Path | None:
    value = os.environ.get(DATA_DIR_ENV)
    return Path(value).expanduser() if value else None


def _from_npz(path: Path, name: str) -> Dataset:
    with np.load(path) as archive:
        arrays = {key: archive[key] for key in ("x_train", "y_train", "x_test", "y_test")}
    for key in ("x_train", "x_test"):
        if arrays[key].ndim != 3 or arrays[key].shape[1:] != (28, 28):
            raise DatasetUnavailable(f"{path}: {key} has shape {arrays[key].shape}, want (n, 28, 28)")
    return Dataset(name=name, source=str(path), **{k: np.ascontiguousarray(v) for k, v in arrays.items()})


def _from_keras(name: str) -> Dataset:
    from keras import datasets

    module = getattr(datasets, name)
    (x_train, y_train), (x_test, y_test) = module.load_data()
    return Dataset(name, x_train, y_train, x_test, y_test, source=f"keras.datasets.{name}")


@functools.lru_cache(maxsize=4)
def load_dataset(name: DatasetName) -> Dataset:
    """The raw uint8 data set; cached, so a worker process reads it once."""
    return read_dataset(name)


def read_dataset(name: DatasetName) -> Dataset:
    """Read the data set afresh (no cache: for processes that only glance at it)."""
    folder = data_dir()
    if folder is not None:
        path = folder / f"{name}.npz"
        if path.is_file():
            return _from_npz(path, name)
    try:
        return _from_keras(name)
    except Exception as exc:  # network errors come in many types
        where = f"{folder / (name + '.npz')} does not exist" if folder else f"{DATA_DIR_ENV} is not set"
        raise DatasetUnavailable(
            f"Cannot load data set {name!r}: {where}, and Keras's download failed ({exc}). "
            f"Set {DATA_DIR_ENV} to a folder holding {name}.npz "
            "(keys x_train, y_train, x_test, y_test, as keras.datasets writes them)."
        ) from exc
