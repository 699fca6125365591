"""The pure-Python model summary agrees with Keras's own count, and with the chapter's."""

from __future__ import annotations

import pytest

from trainer.model import build_model
from trainer.preprocessing import affine_for
from trainer.recipes import catalogue, get_recipe
from trainer.spec import ExperimentSpec
from trainer.summary import summarize, summarize_keras

# The chapter's model.summary(): Dense(1000) on 784 inputs, then Dense(10).
CHAPTER_HIDDEN_PARAMS = 785_000
CHAPTER_OUTPUT_PARAMS = 10_010

EXTRA_SPECS = {
    "batch_norm": {"model": {"hidden": [{"type": "dense", "units": 64},
                                        {"type": "batch_norm"}]}},
    "batch_norm_first": {"model": {"hidden": [{"type": "batch_norm", "momentum": 0.9},
                                              {"type": "dense", "units": 16}]}},
    "dropout": {"model": {"hidden": [{"type": "dropout", "rate": 0.2},
                                     {"type": "dense", "units": 32},
                                     {"type": "dropout", "rate": 0.5}]}},
    "regularizers": {"model": {
        "hidden": [{"type": "dense", "units": 48, "kernel_regularizer": {"l1": 0.01}},
                   {"type": "dense", "units": 24, "kernel_regularizer": {"l1": 0.1, "l2": 0.2}}],
        "output": {"kernel_regularizer": {"l2": 0.3}}}},
    "no_bias": {"model": {"hidden": [{"type": "dense", "units": 20, "use_bias": False},
                                     {"type": "batch_norm"},
                                     {"type": "dense", "units": 12, "activation": "tanh",
                                      "use_bias": False}]}},
    "no_hidden": {"model": {"hidden": []}},
    "everything": {"model": {"hidden": [
        {"type": "dense", "units": 40, "kernel_regularizer": {"l2": 0.01}},
        {"type": "batch_norm", "epsilon": 0.01},
        {"type": "dropout", "rate": 0.3},
        {"type": "dense", "units": 30, "activation": "selu", "kernel_initializer": "lecun_normal"},
        {"type": "batch_norm"},
        {"type": "dropout", "rate": 0.1},
    ], "output": {"kernel_regularizer": {"l1": 0.001, "l2": 0.001}}}},
}


def keras_model(spec: ExperimentSpec):
    return build_model(spec, affine_for(spec.data))


def test_vanilla_counts_match_the_chapter_and_keras() -> None:
    spec = get_recipe("vanilla").spec
    model = keras_model(spec)
    rows = {row.name: row for row in summarize(spec).layers}
    assert rows["dense_1"].params == CHAPTER_HIDDEN_PARAMS
    assert rows["output"].params == CHAPTER_OUTPUT_PARAMS
    assert model.get_layer("dense_1").count_params() == CHAPTER_HIDDEN_PARAMS
    assert model.get_layer("output").count_params() == CHAPTER_OUTPUT_PARAMS
    total = CHAPTER_HIDDEN_PARAMS + CHAPTER_OUTPUT_PARAMS
    assert model.count_params() == total
    assert summarize(spec).total_params == summarize(spec).trainable_params == total
    assert summarize_keras(model) == summarize(spec)


def test_deep_counts_match_the_chapter_and_keras() -> None:
    spec = get_recipe("deep").spec
    model = keras_model(spec)
    between_hidden = 1000 * 1000 + 1000  # Dense(1000) on 1000 inputs
    expected = {"dense_1": CHAPTER_HIDDEN_PARAMS, "dense_2": between_hidden,
                "dense_3": between_hidden, "output": CHAPTER_OUTPUT_PARAMS}
    summary = summarize(spec)
    assert {row.name: row.params for row in summary.layers if row.params} == expected
    assert {name: model.get_layer(name).count_params() for name in expected} == expected
    assert model.count_params() == summary.total_params == sum(expected.values())
    assert summarize_keras(model) == summary


@pytest.mark.parametrize("name", list(catalogue()))
def test_summary_equals_keras_for_every_recipe(name: str) -> None:
    spec = get_recipe(name).spec
    model = keras_model(spec)
    summary = summarize(spec)
    assert summary == summarize_keras(model)
    assert summary.total_params == model.count_params()


@pytest.mark.parametrize("name", list(EXTRA_SPECS))
def test_summary_equals_keras_for_other_layers(name: str) -> None:
    spec = ExperimentSpec.model_validate(EXTRA_SPECS[name])
    model = keras_model(spec)
    summary = summarize(spec)
    assert summary == summarize_keras(model)
    assert summary.total_params == model.count_params()
    assert summary.non_trainable_params == sum(
        int(w.numpy().size) for w in model.non_trainable_weights)


def test_batch_norm_statistics_are_not_trainable() -> None:
    spec = ExperimentSpec.model_validate(EXTRA_SPECS["batch_norm"])
    row = {row.name: row for row in summarize(spec).layers}["batch_norm_1"]
    # gamma and beta train; the moving mean and variance do not (64 units each).
    assert (row.params, row.trainable_params) == (4 * 64, 2 * 64)
    assert summarize(spec).non_trainable_params == 2 * 64


def test_summary_rows_follow_the_models_layers() -> None:
    spec = ExperimentSpec.model_validate(EXTRA_SPECS["everything"])
    summary = summarize(spec)
    assert [row.name for row in summary.layers] == [
        layer.name for layer in keras_model(spec).layers]
    assert summary.layers[-1].output_shape == [None, 10]
    assert summary.model_dump(mode="json")["layers"][0]["output_shape"] == [None, 784]
