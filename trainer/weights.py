"""Weight statistics and histograms per layer (the chapter's overfitting, L2 and dropout plots)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

HISTOGRAM_BINS = 60
SPREAD_THRESHOLD = 0.2  # the chapter counts weights beyond +-0.2


@dataclass(frozen=True)
class WeightStats:
    layer: str
    count: int
    mean: float
    std: float
    min: float
    max: float
    fraction_beyond_0_2: float
    histogram_counts: list[int]
    histogram_edges: list[float]

    def as_dict(self) -> dict:
        return asdict(self)


def kernel_stats(layer: str, kernel: np.ndarray) -> WeightStats:
    values = kernel.astype(np.float64).ravel()
    limit = float(np.abs(values).max()) or 1.0
    counts, edges = np.histogram(values, bins=HISTOGRAM_BINS, range=(-limit, limit))
    return WeightStats(
        layer=layer,
        count=int(values.size),
        mean=float(values.mean()),
        std=float(values.std()),
        min=float(values.min()),
        max=float(values.max()),
        fraction_beyond_0_2=float((np.abs(values) > SPREAD_THRESHOLD).mean()),
        histogram_counts=counts.tolist(),
        histogram_edges=[round(float(e), 6) for e in edges],
    )


def model_weight_stats(kernels: dict[str, np.ndarray]) -> list[WeightStats]:
    return [kernel_stats(name, kernel) for name, kernel in kernels.items()]
