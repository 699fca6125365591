"""The numpy forward pass that serves predictions gives Keras's probabilities, or is not used.

Models are built by the trainer's own build_model (the layers saved models hold), with random
batch-normalisation statistics so that those layers do something, saved as .keras files and
loaded through api.predictor.Predictor exactly as the API loads them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from trainer.preprocessing import Affine

ACTIVATIONS = ["relu", "sigmoid", "tanh", "elu", "selu", "gelu", "swish", "leaky_relu", "linear",
               "softmax", "softplus", "softsign", "hard_sigmoid", "relu6", "mish"]
SCALED = Affine(scale=1 / 255, offset=0.0)
RAW = Affine(scale=1.0, offset=0.0)  # the vanilla recipe: raw 0-255 pixels
# Input scaling -> (affine, largest probability difference from Keras allowed). Both sides
# compute in float32 and sum in different orders. For inputs scaled to ~[0, 1] that leaves
# ~1e-7; raw 0-255 pixels make pre-activations in the hundreds, and rounding then reaches ~3e-5
# (Keras's own results for batch 1 and batch 200 differ by ~1e-5 there, and exact float64
# arithmetic differs from Keras by up to ~4e-5).
SCALINGS = {
    "divide255": (SCALED, 1e-5),
    "standard": (Affine(scale=1 / 78.6, offset=-33.3 / 78.6), 1e-5),
    "raw": (RAW, 5e-5),
}


@pytest.fixture(scope="module")
def digits(sample_dir: Path) -> np.ndarray:
    with np.load(sample_dir / "mnist.npz") as data:
        return data["x_test"][:200].astype(np.float32)


def save_model(folder: Path, name: str, hidden: list[dict[str, Any]], affine: Affine,
               seed: int = 0) -> Path:
    import keras

    from trainer.model import build_model
    from trainer.recipes import recipe_spec

    keras.utils.set_random_seed(seed)
    model = build_model(recipe_spec("scaled", {"model": {"hidden": hidden}}), affine)
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            shape = layer.moving_mean.shape
            layer.moving_mean.assign(rng.normal(0, 2, shape).astype("float32"))
            layer.moving_variance.assign(rng.uniform(0.1, 5, shape).astype("float32"))
            layer.gamma.assign(rng.normal(1, 0.3, shape).astype("float32"))
            layer.beta.assign(rng.normal(0, 0.3, shape).astype("float32"))
    path = folder / f"{name}.keras"
    model.save(path)
    return path


def keras_probabilities(predictor: Any, pixels: np.ndarray) -> np.ndarray:
    return np.asarray(predictor.model.predict_on_batch(pixels))


def stack(activation: str, *, batch_norm: bool = True, dropout: bool = True) -> list[dict[str, Any]]:
    hidden: list[dict[str, Any]] = [{"type": "dense", "units": 96, "activation": activation}]
    if batch_norm:
        hidden.append({"type": "batch_norm"})
    if dropout:
        hidden.append({"type": "dropout", "rate": 0.5})
    hidden.append({"type": "dense", "units": 48, "activation": activation})
    return hidden


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("scaling", list(SCALINGS))
def test_every_activation_matches_keras(tmp_path, digits, activation, scaling) -> None:
    from api.predictor import Predictor

    affine, tolerance = SCALINGS[scaling]
    predictor = Predictor(save_model(tmp_path, activation, stack(activation), affine))
    assert predictor.engine == "numpy", predictor.fallback_reason
    expected = keras_probabilities(predictor, digits)
    got = predictor(digits)
    assert got.shape == (len(digits), 10) and got.dtype == np.float32
    assert np.abs(got - expected).max() <= tolerance
    assert (got.argmax(axis=1) == expected.argmax(axis=1)).mean() >= 0.99
    one = predictor(digits[:1])  # a batch of one goes the same way
    assert np.abs(one - expected[:1]).max() <= tolerance


@pytest.mark.parametrize("hidden", [
    [],  # straight to the softmax
    [{"type": "dense", "units": 1000, "activation": "relu"}],  # the chapter's baseline
    [{"type": "batch_norm"}, {"type": "dense", "units": 32, "activation": "tanh", "use_bias": False}],
    [{"type": "dense", "units": 64, "activation": "elu"}, {"type": "dropout", "rate": 0.75},
     {"type": "dense", "units": 64, "activation": "gelu"}, {"type": "batch_norm"},
     {"type": "dense", "units": 64, "activation": "swish"}],
], ids=["softmax-only", "baseline", "bn-first-no-bias", "deep-mixed"])
def test_layer_stacks_match_keras(tmp_path, digits, hidden) -> None:
    from api.predictor import Predictor

    predictor = Predictor(save_model(tmp_path, "stack", hidden, SCALED, seed=3))
    assert predictor.engine == "numpy", predictor.fallback_reason
    assert np.abs(predictor(digits) - keras_probabilities(predictor, digits)).max() <= 1e-5


def test_probabilities_are_a_distribution(tmp_path, digits) -> None:
    from api.predictor import Predictor

    predictor = Predictor(save_model(tmp_path, "raw", stack("relu"), RAW))
    got = predictor(np.concatenate([digits, np.zeros((1, 28, 28), np.float32),
                                    np.full((1, 28, 28), 255, np.float32)]))
    assert np.isfinite(got).all() and (got >= 0).all()
    assert np.allclose(got.sum(axis=1), 1, atol=1e-5)


@pytest.mark.parametrize(("name", "middle", "reason"), [
    # A layer it does not know, and an activation it does not know.
    ("layer-norm", lambda layers: layers.LayerNormalization(), "LayerNormalization"),
    ("exponential", lambda layers: layers.Dense(16, activation="exponential"), "exponential"),
])
def test_what_the_numpy_pass_does_not_know_is_served_by_keras(
        tmp_path, digits, name: str, middle: Any, reason: str) -> None:
    import keras

    from api.predictor import Predictor

    model = keras.Sequential([keras.Input(shape=(28, 28)), keras.layers.Flatten(),
                              keras.layers.Rescaling(1 / 255), middle(keras.layers),
                              keras.layers.Dense(10, activation="softmax")])
    path = tmp_path / f"{name}.keras"
    model.save(path)
    predictor = Predictor(path)
    assert predictor.engine == "keras"
    assert reason in predictor.fallback_reason
    assert np.array_equal(predictor(digits), keras_probabilities(predictor, digits))


def test_a_wrong_activation_formula_is_caught_at_load(tmp_path, digits, monkeypatch) -> None:
    """The load-time check compares each activation with Keras's: gelu's tanh approximation
    (off by at most ~5e-4) is enough to send the model to Keras."""
    import api.predictor as predictor_module

    def approximate_gelu(x: np.ndarray) -> np.ndarray:
        inner = np.sqrt(2 / np.pi) * (x + 0.044715 * x**3)
        return (0.5 * x * (1 + np.tanh(inner))).astype(np.float32)

    monkeypatch.setitem(predictor_module.NUMPY_ACTIVATIONS, "gelu", approximate_gelu)
    predictor = predictor_module.Predictor(save_model(tmp_path, "gelu", stack("gelu"), SCALED))
    assert predictor.engine == "keras"
    assert "gelu" in predictor.fallback_reason
    assert np.array_equal(predictor(digits), keras_probabilities(predictor, digits))


def test_a_wrong_layer_formula_is_caught_at_load(tmp_path, digits, monkeypatch) -> None:
    """Batch normalisation without its epsilon: each layer is checked against Keras's."""
    import api.predictor as predictor_module

    def no_epsilon(layer: Any) -> Any:
        inv = predictor_module._weights(layer.gamma) / np.sqrt(
            predictor_module._weights(layer.moving_variance))
        shift = predictor_module._weights(layer.beta) - predictor_module._weights(
            layer.moving_mean) * inv
        return lambda x: x * inv + shift

    monkeypatch.setattr(predictor_module, "_batch_norm", no_epsilon)
    predictor = predictor_module.Predictor(save_model(tmp_path, "bn", stack("relu"), SCALED))
    assert predictor.engine == "keras"
    assert "batch_norm" in predictor.fallback_reason


def test_cache_serves_the_same_predictor_until_the_file_changes(tmp_path) -> None:
    import os

    from api.predictor import ModelCache

    path = save_model(tmp_path, "cached", stack("relu"), SCALED)
    cache = ModelCache()
    first = cache.get("a" * 32, path)
    assert cache.get("a" * 32, path) is first and "a" * 32 in cache
    os.utime(path, (path.stat().st_atime, path.stat().st_mtime + 5))
    assert cache.get("a" * 32, path) is not first
    cache.forget("a" * 32)
    assert "a" * 32 not in cache
