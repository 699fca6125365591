"""affine_for: every scaling, with and without inversion, checked against numpy on the data."""

from __future__ import annotations

import numpy as np
import pytest

from trainer.data import load_dataset
from trainer.preprocessing import Affine, affine_for
from trainer.spec import DataSpec

SCALINGS = ["none", "divide255", "minmax", "mean", "standard"]


def train_pixels(dataset: str = "mnist", n: int | None = None) -> np.ndarray:
    return load_dataset(dataset).x_train[:n]


def test_none_keeps_raw_pixels() -> None:
    x = train_pixels()
    affine = affine_for(DataSpec(scaling="none"))
    np.testing.assert_array_equal(affine.apply(x), x.astype(np.float32))


def test_divide255_maps_to_unit_interval() -> None:
    x = train_pixels()
    out = affine_for(DataSpec(scaling="divide255")).apply(x)
    np.testing.assert_allclose(out, x / 255.0, rtol=1e-6, atol=1e-7)
    assert out.min() == 0.0 and out.max() == pytest.approx(1.0)


def test_invert_divide255_is_one_minus_x_over_255() -> None:
    x = train_pixels()
    out = affine_for(DataSpec(scaling="divide255", invert=True)).apply(x)
    np.testing.assert_allclose(out, 1.0 - x / 255.0, rtol=1e-6, atol=1e-6)
    # The background (0) becomes white (1) and the ink dark.
    assert out[x == 0].min() == pytest.approx(1.0)


def test_invert_none_is_255_minus_x() -> None:
    x = train_pixels()
    out = affine_for(DataSpec(scaling="none", invert=True)).apply(x)
    np.testing.assert_array_equal(out, (255 - x.astype(np.int32)).astype(np.float32))


@pytest.mark.parametrize("invert", [False, True])
def test_standard_gives_zero_mean_unit_std(invert: bool) -> None:
    x = train_pixels()
    out = affine_for(DataSpec(scaling="standard", invert=invert)).apply(x).astype(np.float64)
    assert out.mean() == pytest.approx(0.0, abs=1e-4)
    assert out.std() == pytest.approx(1.0, abs=1e-4)
    correlation = np.corrcoef(out.ravel()[:200_000], x.ravel()[:200_000])[0, 1]
    assert correlation == pytest.approx(-1.0 if invert else 1.0, abs=1e-6)


@pytest.mark.parametrize("invert", [False, True])
def test_minmax_spans_zero_to_one(invert: bool) -> None:
    x = train_pixels()
    out = affine_for(DataSpec(scaling="minmax", invert=invert)).apply(x)
    assert out.min() == pytest.approx(0.0, abs=1e-6)
    assert out.max() == pytest.approx(1.0, abs=1e-6)
    source = (255.0 - x) if invert else x.astype(np.float64)
    expected = (source - source.min()) / (source.max() - source.min())
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("invert", [False, True])
def test_mean_centres_and_divides_by_the_range(invert: bool) -> None:
    x = train_pixels()
    out = affine_for(DataSpec(scaling="mean", invert=invert)).apply(x).astype(np.float64)
    assert out.mean() == pytest.approx(0.0, abs=1e-5)
    assert out.max() - out.min() == pytest.approx(1.0, abs=1e-5)
    source = (255.0 - x) if invert else x.astype(np.float64)
    expected = (source - source.mean()) / (source.max() - source.min())
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)


def test_statistics_come_from_the_training_pixels_used() -> None:
    n = 200
    x = train_pixels(n=n).astype(np.float64)
    affine = affine_for(DataSpec(scaling="standard", max_train_samples=n))
    assert affine.offset == pytest.approx(-x.mean() / x.std())
    assert affine.scale == pytest.approx(1.0 / x.std())
    assert affine != affine_for(DataSpec(scaling="standard"))
    # ... and never from the test set.
    everything = train_pixels().astype(np.float64)
    assert affine_for(DataSpec(scaling="standard")).scale == pytest.approx(1 / everything.std())


def test_statistics_are_per_dataset() -> None:
    fashion = train_pixels("fashion_mnist").astype(np.float64)
    affine = affine_for(DataSpec(dataset="fashion_mnist", scaling="standard"))
    assert affine.scale == pytest.approx(1.0 / fashion.std())
    assert affine.offset == pytest.approx(-fashion.mean() / fashion.std())


@pytest.mark.parametrize("scaling", SCALINGS)
@pytest.mark.parametrize("invert", [False, True])
def test_apply_returns_float32_of_the_same_shape(scaling: str, invert: bool) -> None:
    x = load_dataset("mnist").x_test[:10]
    out = affine_for(DataSpec(scaling=scaling, invert=invert)).apply(x)
    assert out.dtype == np.float32
    assert out.shape == x.shape
    assert np.isfinite(out).all()


def test_affine_is_one_scale_and_offset() -> None:
    affine = Affine(scale=2.0, offset=-1.0)
    x = load_dataset("mnist").x_test[:3]
    np.testing.assert_allclose(affine.apply(x), 2.0 * x - 1.0)
