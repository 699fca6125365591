"""The spec's input preprocessing as one affine map, `scale * x + offset`, on raw 0-255 pixels.

Every supported scaling and the inversion are affine with dataset-wide statistics, so the whole
thing is one Keras `Rescaling` layer inside the saved model: prediction can never preprocess
differently from training. Pure numpy; no TensorFlow.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from trainer.data import load_dataset
from trainer.spec import DataSpec


@dataclass(frozen=True)
class Affine:
    scale: float
    offset: float

    def apply(self, x: np.ndarray) -> np.ndarray:
        return (x.astype(np.float32) * np.float32(self.scale) + np.float32(self.offset)).astype(
            np.float32
        )


PixelStats = tuple[float, float, float, float]  # min, max, mean, std


def pixel_stats(x: np.ndarray) -> PixelStats:
    as_float = x.astype(np.float64)
    return float(x.min()), float(x.max()), float(as_float.mean()), float(as_float.std())


@functools.lru_cache(maxsize=16)
def _cached_stats(dataset: str, n_train: int | None) -> PixelStats:
    return pixel_stats(load_dataset(dataset).x_train[:n_train])


def affine_for(data: DataSpec, stats: PixelStats | None = None) -> Affine:
    """Scale and offset for raw pixels; statistics come from the training pixels used
    (given, or read from the process's cached data set)."""
    lo, hi, mean, std = stats or _cached_stats(data.dataset, data.max_train_samples)
    if data.invert:  # statistics of 255 - x
        lo, hi, mean = 255.0 - hi, 255.0 - lo, 255.0 - mean
    span = (hi - lo) or 1.0
    match data.scaling:
        case "none":
            scale, offset = 1.0, 0.0
        case "divide255":
            scale, offset = 1.0 / 255.0, 0.0
        case "minmax":
            scale, offset = 1.0 / span, -lo / span
        case "mean":
            scale, offset = 1.0 / span, -mean / span
        case "standard":
            scale, offset = 1.0 / (std or 1.0), -mean / (std or 1.0)
    if data.invert:  # a * (255 - x) + b  ==  -a * x + (255 a + b)
        scale, offset = -scale, 255.0 * scale + offset
    return Affine(scale=scale, offset=offset)
