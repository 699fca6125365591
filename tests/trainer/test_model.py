"""build_model: the spec's layers, the preprocessing inside the model, safe save and reload."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest

from trainer.data import load_dataset
from trainer.model import build_model
from trainer.preprocessing import affine_for
from trainer.recipes import get_recipe
from trainer.spec import ExperimentSpec


def spec_of(raw: dict) -> ExperimentSpec:
    return ExperimentSpec.model_validate(raw)


def test_layers_follow_the_spec() -> None:
    spec = spec_of({"name": "my model: v2", "model": {
        "hidden": [
            {"type": "dense", "units": 30, "activation": "tanh", "use_bias": False,
             "kernel_initializer": "he_normal", "kernel_regularizer": {"l2": 0.25}},
            {"type": "batch_norm", "momentum": 0.8, "epsilon": 0.01},
            {"type": "dropout", "rate": 0.4},
            {"type": "dense", "units": 20, "kernel_regularizer": {"l1": 0.5, "l2": 0.125}},
            {"type": "dense", "units": 10, "kernel_regularizer": {"l1": 0.75}},
        ],
        "output": {"kernel_regularizer": {"l2": 0.1}, "kernel_initializer": "zeros"}}})
    model = build_model(spec, affine_for(spec.data))

    assert model.name == spec.name_slug() == "my_model_v2"
    assert [layer.name for layer in model.layers] == [
        "flatten", "preprocessing", "dense_1", "batch_norm_1", "dropout_1", "dense_2", "dense_3",
        "output"]
    assert model.input_shape == (None, 28, 28)
    assert model.output_shape == (None, 10)

    first = model.get_layer("dense_1").get_config()
    assert (first["units"], first["activation"], first["use_bias"]) == (30, "tanh", False)
    assert first["kernel_initializer"]["class_name"] == "HeNormal"
    assert first["kernel_regularizer"]["class_name"] == "L2"
    assert first["kernel_regularizer"]["config"]["l2"] == pytest.approx(0.25)
    both = model.get_layer("dense_2").get_config()["kernel_regularizer"]
    assert both["class_name"] == "L1L2"
    assert (both["config"]["l1"], both["config"]["l2"]) == pytest.approx((0.5, 0.125))
    only_l1 = model.get_layer("dense_3").get_config()["kernel_regularizer"]
    assert only_l1["class_name"] == "L1"
    assert only_l1["config"]["l1"] == pytest.approx(0.75)

    norm = model.get_layer("batch_norm_1").get_config()
    assert (norm["momentum"], norm["epsilon"]) == pytest.approx((0.8, 0.01))
    assert model.get_layer("dropout_1").get_config()["rate"] == pytest.approx(0.4)
    output = model.get_layer("output").get_config()
    assert (output["units"], output["activation"]) == (10, "softmax")
    assert output["kernel_regularizer"]["config"]["l2"] == pytest.approx(0.1)
    assert not np.any(model.get_layer("output").kernel.numpy()), "zeros initializer"


def test_inactive_regularizer_adds_no_penalty() -> None:
    spec = spec_of({"model": {"hidden": [{"type": "dense", "units": 8,
                                          "kernel_regularizer": {"l1": 0, "l2": 0}}]}})
    model = build_model(spec, affine_for(spec.data))
    assert model.get_layer("dense_1").kernel_regularizer is None


def test_outputs_are_probabilities_on_raw_pixels() -> None:
    spec = get_recipe("scaled").spec
    model = build_model(spec, affine_for(spec.data))
    probabilities = model.predict(load_dataset("mnist").x_test[:50], verbose=0)
    assert probabilities.shape == (50, 10)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    assert (probabilities >= 0).all()


def test_the_same_seed_builds_the_same_weights() -> None:
    spec = spec_of({"model": {"hidden": [{"type": "dense", "units": 16}]}})
    weights = []
    for seed in (7, 7, 8):
        keras.utils.set_random_seed(seed)
        weights.append(build_model(spec, affine_for(spec.data)).get_layer("dense_1").kernel.numpy())
    np.testing.assert_array_equal(weights[0], weights[1])
    assert not np.array_equal(weights[0], weights[2])


# --- preprocessing is part of the saved model --------------------------------------------------

PREPROCESSING_CASES = {
    "none": ("none", False),
    "divide255": ("divide255", False),
    "standard": ("standard", False),
    "invert-divide255": ("divide255", True),
    "invert-standard": ("standard", True),
    "invert-mean": ("mean", True),
}


def expected_preprocessing(raw: np.ndarray, scaling: str, invert: bool) -> np.ndarray:
    """The chapter's preprocessing computed directly with numpy from the training pixels."""
    train = load_dataset("mnist").x_train.astype(np.float64)
    x = raw.astype(np.float64)
    if invert:
        train, x = 255.0 - train, 255.0 - x
    match scaling:
        case "none":
            return x
        case "divide255":
            return x / 255.0
        case "minmax":
            return (x - train.min()) / (train.max() - train.min())
        case "mean":
            return (x - train.mean()) / (train.max() - train.min())
        case "standard":
            return (x - train.mean()) / train.std()
    raise AssertionError(scaling)


@pytest.mark.parametrize("case", list(PREPROCESSING_CASES))
def test_saved_model_reloads_safely_and_predicts_the_same(case: str, tmp_path: Path) -> None:
    scaling, invert = PREPROCESSING_CASES[case]
    spec = spec_of({"name": case, "data": {"scaling": scaling, "invert": invert},
                    "model": {"hidden": [{"type": "dense", "units": 64},
                                         {"type": "batch_norm"}, {"type": "dropout", "rate": 0.5}],
                              "output": {"kernel_regularizer": {"l2": 0.01}}}})
    keras.utils.set_random_seed(1)
    model = build_model(spec, affine_for(spec.data))
    path = tmp_path / "model.keras"
    model.save(path)

    loaded = keras.saving.load_model(path, safe_mode=True)

    raw = load_dataset("mnist").x_test[:200]  # uint8, 0-255, as users send them
    for pixels in (raw, raw.astype(np.float32)):
        expected = model.predict(pixels, verbose=0)
        got = loaded.predict(pixels, verbose=0)
        np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-7)
        np.testing.assert_array_equal(got.argmax(axis=1), expected.argmax(axis=1))

    # The reloaded model preprocesses raw pixels exactly as the spec says.
    preprocess = keras.Model(loaded.inputs, loaded.get_layer("preprocessing").output)
    np.testing.assert_allclose(
        preprocess.predict(raw, verbose=0),
        expected_preprocessing(raw, scaling, invert).reshape(len(raw), -1),
        rtol=1e-5, atol=1e-4)


def test_preprocessing_changes_what_the_model_sees() -> None:
    """Same weights, different scaling: different outputs (the Rescaling is not a no-op)."""
    raw = load_dataset("mnist").x_test[:100]
    outputs = []
    for scaling in ("none", "divide255", "standard"):
        spec = spec_of({"data": {"scaling": scaling},
                        "model": {"hidden": [{"type": "dense", "units": 16}]}})
        keras.utils.set_random_seed(3)
        outputs.append(build_model(spec, affine_for(spec.data)).predict(raw, verbose=0))
    assert not np.allclose(outputs[0], outputs[1])
    assert not np.allclose(outputs[1], outputs[2])
