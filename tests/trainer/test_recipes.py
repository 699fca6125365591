"""The recipe catalogue: every recipe validates, builds and trains; overrides merge and validate."""

from __future__ import annotations

import json
import math
from importlib import resources

import numpy as np
import pytest
from pydantic import ValidationError

from trainer.data import load_dataset
from trainer.recipes import UnknownRecipe, catalogue, get_recipe, recipe_spec
from trainer.spec import DenseLayer, ExperimentSpec
from trainer.summary import summarize

RAW = json.loads(resources.files("trainer").joinpath("recipes.json").read_text())
NAMES = list(RAW)


def test_catalogue_holds_every_recipe_of_the_file_in_order() -> None:
    assert list(catalogue()) == NAMES
    # The recipes the chapter's experiments (and the docs) refer to.
    assert {"vanilla", "scaled", "inverted", "batch-30000", "deep"} <= set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_recipe_validates_strictly_from_its_json(name: str) -> None:
    recipe = get_recipe(name)
    assert recipe.name == name
    assert recipe.spec.name == name, "the run is named after its recipe"
    assert recipe.title and recipe.demonstrates and recipe.chapter_reports
    assert ExperimentSpec.model_validate(RAW[name]["spec"]) == recipe.spec
    assert recipe_spec(name) == recipe.spec


def test_recipes_are_all_different_experiments() -> None:
    hashes = {recipe.spec.spec_hash() for recipe in catalogue().values()}
    assert len(hashes) == len(NAMES)


def test_recipes_say_what_the_chapter_describes() -> None:
    assert get_recipe("vanilla").spec.data.scaling == "none"
    assert get_recipe("scaled").spec.data.scaling == "divide255"
    assert get_recipe("inverted").spec.data.invert is True
    assert get_recipe("batch-30000").spec.training.batch_size == 30000
    deep = get_recipe("deep").spec.model.hidden
    assert [(layer.type, layer.units) for layer in deep] == [("dense", 1000)] * 3
    assert [layer.type for layer in get_recipe("dropout").spec.model.hidden] == [
        "dense", "dropout"]
    assert [layer.type for layer in get_recipe("batchnorm").spec.model.hidden] == [
        "dense", "batch_norm"]


def test_unknown_recipe_is_a_key_error_naming_the_known_ones() -> None:
    with pytest.raises(UnknownRecipe) as info:
        get_recipe("scaeld")
    assert isinstance(info.value, KeyError)
    message = str(info.value)
    assert "'scaeld'" in message
    assert all(name in message for name in NAMES)
    with pytest.raises(UnknownRecipe):
        recipe_spec("scaeld", {"training": {"epochs": 1}})


# --- overrides ----------------------------------------------------------------------------------


def test_overrides_merge_deeply_and_keep_the_rest() -> None:
    base = get_recipe("deep").spec
    spec = recipe_spec("deep", {"training": {"epochs": 2}, "optimizer": {"learning_rate": 0.01}})
    assert spec.training.epochs == 2
    assert spec.training.batch_size == base.training.batch_size
    assert spec.optimizer.name == base.optimizer.name
    assert spec.optimizer.learning_rate == 0.01
    assert spec.model == base.model
    assert spec.data == base.data
    assert get_recipe("deep").spec == base, "the catalogue is not changed by an override"


def test_a_list_override_replaces_the_layers() -> None:
    spec = recipe_spec("deep", {"model": {"hidden": [{"type": "dense", "units": 10}]}})
    assert len(spec.model.hidden) == 1
    assert isinstance(spec.model.hidden[0], DenseLayer) and spec.model.hidden[0].units == 10


def test_switching_optimizer_by_override_drops_the_old_ones_settings() -> None:
    # sgd's "momentum" must not be carried into adam (that would be a misspelt-field error).
    spec = recipe_spec("sgd", {"optimizer": {"name": "adam"}})
    assert spec.optimizer == ExperimentSpec.model_validate({"optimizer": {"name": "adam"}}).optimizer
    spec = recipe_spec("lr-0.1", {"optimizer": {"name": "sgd", "momentum": 0.9}})
    assert (spec.optimizer.name, spec.optimizer.momentum) == ("sgd", 0.9)
    assert spec.optimizer.learning_rate == ExperimentSpec.model_validate(
        {"optimizer": {"name": "sgd"}}).optimizer.learning_rate
    assert spec.training == get_recipe("lr-0.1").spec.training


def test_renaming_a_recipe_keeps_its_experiment() -> None:
    spec = recipe_spec("deep", {"name": "my deep run"})
    assert spec.name == "my deep run"
    assert spec.spec_hash() == get_recipe("deep").spec.spec_hash()


@pytest.mark.parametrize(
    ("overrides", "loc"),
    [
        ({"training": {"epochs": 0}}, ("training", "epochs")),
        ({"training": {"epoch": 1}}, ("training", "epoch")),
        ({"data": {"scaling": "log"}}, ("data", "scaling")),
        ({"model": {"hidden": [{"type": "dense", "unit": 1}]}},
         ("model", "hidden", 0, "dense", "unit")),
        ({"optimizer": {"learning_rate": "fast"}}, ("optimizer", "adam", "learning_rate")),
    ],
)
def test_bad_overrides_are_validated(overrides: dict, loc: tuple) -> None:
    with pytest.raises(ValidationError) as info:
        recipe_spec("scaled", overrides)
    assert loc in {error["loc"] for error in info.value.errors()}


def test_an_override_smaller_than_the_batch_is_rejected() -> None:
    with pytest.raises(ValidationError, match=r"training\.batch_size"):
        recipe_spec("batch-30000", {"data": {"max_train_samples": 500}})


# --- every recipe trains (1 epoch on the committed sample) ---------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_every_recipe_trains_one_epoch(name: str) -> None:
    from trainer.train import train

    spec = recipe_spec(name, {"training": {"epochs": 1}})
    recipe = get_recipe(name).spec
    assert spec.model_dump(exclude={"training"}) == recipe.model_dump(exclude={"training"})
    assert spec.training.model_dump(exclude={"epochs"}) == recipe.training.model_dump(
        exclude={"epochs"})

    result = train(spec)

    assert result.stop_reason == "completed"
    assert result.epochs_run == 1
    assert result.history["epoch"] == [0]
    for key in ("loss", "accuracy", "val_loss", "val_accuracy", "learning_rate", "seconds"):
        (value,) = result.history[key]
        assert value is not None and math.isfinite(value), (key, value)
    assert math.isclose(result.history["learning_rate"][0], spec.optimizer.learning_rate,
                        rel_tol=1e-6)
    assert result.summary == summarize(spec)
    assert result.spec_hash == spec.spec_hash()

    n_test = len(load_dataset("mnist").y_test)
    matrix = np.asarray(result.evaluation.confusion_matrix)
    assert matrix.shape == (10, 10)
    assert matrix.sum() == n_test
    assert result.evaluation.test_accuracy == pytest.approx(np.trace(matrix) / n_test)
    assert 0.0 <= result.evaluation.train_accuracy <= 1.0
    # The last epoch validated on the test set with the final weights: same figure as the report.
    assert result.history["val_accuracy"][-1] == pytest.approx(
        result.evaluation.test_accuracy, abs=1e-6)
    assert result.history["val_loss"][-1] == pytest.approx(result.evaluation.test_loss, rel=1e-4)
