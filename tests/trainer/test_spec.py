"""The experiment spec: validation messages, canonical hash, JSON Schema, deep_merge."""

from __future__ import annotations

import json
import subprocess
import sys
import typing
from pathlib import Path

import pytest
from pydantic import ValidationError

from trainer import spec as spec_module
from trainer.spec import (
    MAX_EPOCHS,
    DenseLayer,
    ExperimentSpec,
    deep_merge,
    json_schema,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
OPTIMIZER_NAMES = [
    typing.get_args(cls.model_fields["name"].annotation)[0]
    for cls in typing.get_args(typing.get_args(spec_module.OptimizerSpec)[0])
]


def errors_of(raw: dict | str) -> list[dict]:
    with pytest.raises(ValidationError) as info:
        if isinstance(raw, str):
            ExperimentSpec.model_validate_json(raw)
        else:
            ExperimentSpec.model_validate(raw)
    return info.value.errors()


def only_error(raw: dict | str) -> dict:
    errors = errors_of(raw)
    assert len(errors) == 1, errors
    return errors[0]


# --- defaults -------------------------------------------------------------------------------


def test_empty_spec_is_the_chapters_baseline() -> None:
    spec = ExperimentSpec()
    assert spec == ExperimentSpec.model_validate({})
    (hidden,) = spec.model.hidden
    assert isinstance(hidden, DenseLayer)
    assert (hidden.units, hidden.activation) == (1000, "relu")
    assert spec.model.output.activation == "softmax"
    assert spec.optimizer.name == "adam"
    assert spec.training.loss == "categorical_crossentropy"
    assert spec.training.batch_size == 32
    assert spec.data.dataset == "mnist"


def test_spec_is_immutable() -> None:
    spec = ExperimentSpec()
    with pytest.raises(ValidationError):
        spec.training.epochs = 3  # type: ignore[misc]


def test_json_round_trip_is_lossless() -> None:
    spec = ExperimentSpec.model_validate({
        "name": "round trip",
        "description": "two lines\nwith a\ttab",
        "data": {"dataset": "fashion_mnist", "scaling": "standard", "invert": True,
                 "max_train_samples": 600, "max_test_samples": 100},
        "model": {"hidden": [
            {"type": "dense", "units": 64, "activation": "tanh", "use_bias": False,
             "kernel_regularizer": {"l1": 0.001, "l2": 0.01},
             "kernel_initializer": "he_normal"},
            {"type": "batch_norm", "momentum": 0.9, "epsilon": 0.01},
            {"type": "dropout", "rate": 0.25},
        ], "output": {"kernel_regularizer": {"l2": 0.5}}},
        "optimizer": {"name": "sgd", "learning_rate": 0.05, "momentum": 0.9, "nesterov": True},
        "training": {"epochs": 3, "batch_size": 100, "validation": "split",
                     "early_stopping": {"monitor": "val_accuracy", "patience": 1}},
    })
    assert ExperimentSpec.model_validate_json(spec.model_dump_json()) == spec
    assert ExperimentSpec.model_validate(json.loads(spec.model_dump_json())) == spec


# --- rejected input: the error names the field ------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "loc"),
    [
        ({"data": {"scailng": "none"}}, ("data", "scailng")),
        ({"trainig": {"epochs": 1}}, ("trainig",)),
        ({"training": {"epoch": 1}}, ("training", "epoch")),
        ({"seed": 1}, ("seed",)),
        ({"optimizer": {"name": "sgd", "beta_1": 0.9}}, ("optimizer", "sgd", "beta_1")),
        ({"model": {"output": {"units": 10}}}, ("model", "output", "units")),
        ({"training": {"early_stopping": {"patiense": 2}}},
         ("training", "early_stopping", "patiense")),
    ],
)
def test_misspelt_fields_are_rejected(raw: dict, loc: tuple) -> None:
    error = only_error(raw)
    assert error["loc"] == loc
    assert error["type"] == "extra_forbidden"
    assert "not permitted" in error["msg"]


def test_nested_typo_in_a_hidden_layer_names_its_path() -> None:
    errors = errors_of({"model": {"hidden": [{"type": "dense", "unit": 100}]}})
    by_loc = {error["loc"]: error for error in errors}
    assert by_loc[("model", "hidden", 0, "dense", "unit")]["type"] == "extra_forbidden"
    # ... and the field it was meant to be is reported missing.
    assert by_loc[("model", "hidden", 0, "dense", "units")]["type"] == "missing"


def test_typo_in_a_later_layer_points_at_that_layer() -> None:
    errors = errors_of({"model": {"hidden": [
        {"type": "dense", "units": 10}, {"type": "dropout", "rat": 0.5}]}})
    assert {e["loc"] for e in errors} == {("model", "hidden", 1, "dropout", "rat"),
                                          ("model", "hidden", 1, "dropout", "rate")}


@pytest.mark.parametrize(
    ("raw", "loc", "bound"),
    [
        ({"training": {"epochs": 0}}, ("training", "epochs"), "greater than or equal to 1"),
        ({"training": {"epochs": MAX_EPOCHS + 1}}, ("training", "epochs"),
         f"less than or equal to {MAX_EPOCHS}"),
        ({"training": {"batch_size": 60001}}, ("training", "batch_size"), "60000"),
        ({"training": {"seed": -1}}, ("training", "seed"), "greater than or equal to 0"),
        ({"optimizer": {"name": "adam", "learning_rate": 0}}, ("optimizer", "adam", "learning_rate"),
         "greater than 0"),
        ({"optimizer": {"name": "sgd", "momentum": 1.0}}, ("optimizer", "sgd", "momentum"),
         "less than 1"),
        ({"model": {"hidden": [{"type": "dropout", "rate": 1.0}]}},
         ("model", "hidden", 0, "dropout", "rate"), "less than 1"),
        ({"model": {"hidden": [{"type": "dense", "units": 0}]}},
         ("model", "hidden", 0, "dense", "units"), "greater than or equal to 1"),
        ({"model": {"hidden": [{"type": "dense", "units": 5000}]}},
         ("model", "hidden", 0, "dense", "units"), "4096"),
        ({"model": {"output": {"kernel_regularizer": {"l2": -0.1}}}},
         ("model", "output", "kernel_regularizer", "l2"), "greater than or equal to 0"),
        ({"data": {"max_train_samples": 60001}}, ("data", "max_train_samples"), "60000"),
    ],
)
def test_out_of_range_numbers_are_rejected(raw: dict, loc: tuple, bound: str) -> None:
    error = only_error(raw)
    assert error["loc"] == loc
    assert bound in error["msg"]


@pytest.mark.parametrize("huge", [10**30, 2**63, 2**64 + 1])
def test_huge_integers_are_rejected_not_overflowed(huge: int) -> None:
    for raw in ({"training": {"epochs": huge}},
                json.dumps({"training": {"epochs": huge}}),
                {"training": {"seed": huge}}):
        error = only_error(raw)
        assert error["loc"][-1] in ("epochs", "seed")
        assert error["type"] == "less_than_equal"


@pytest.mark.parametrize(
    ("raw", "loc", "kind"),
    [
        ({"training": {"epochs": "10"}}, ("training", "epochs"), "int_type"),
        ({"training": {"epochs": 2.5}}, ("training", "epochs"), "int_type"),
        ({"training": {"epochs": True}}, ("training", "epochs"), "int_type"),
        ({"training": {"shuffle": "yes"}}, ("training", "shuffle"), "bool_type"),
        ({"data": {"invert": 1}}, ("data", "invert"), "bool_type"),
        ({"optimizer": {"name": "adam", "learning_rate": "0.1"}},
         ("optimizer", "adam", "learning_rate"), "float_type"),
        ({"model": {"hidden": {"type": "dense", "units": 3}}}, ("model", "hidden"), "list_type"),
        ({"name": 7}, ("name",), "string_type"),
        ({"data": {"scaling": "log"}}, ("data", "scaling"), "literal_error"),
        ({"model": {"hidden": [{"type": "dense", "units": 3, "activation": "rleu"}]}},
         ("model", "hidden", 0, "dense", "activation"), "literal_error"),
    ],
)
def test_wrong_types_are_rejected(raw: dict, loc: tuple, kind: str) -> None:
    error = only_error(raw)
    assert error["loc"] == loc
    assert error["type"] == kind


def test_ints_are_accepted_where_floats_are_expected() -> None:
    # JSON writes 1.0 as 1 in many clients; that must not be a type error (and not a new hash).
    as_int = ExperimentSpec.model_validate({"optimizer": {"name": "sgd", "learning_rate": 1}})
    as_float = ExperimentSpec.model_validate({"optimizer": {"name": "sgd", "learning_rate": 1.0}})
    assert as_int.optimizer.learning_rate == 1.0
    assert as_int.spec_hash() == as_float.spec_hash()


def test_unknown_optimizer_names_the_field_and_the_choices() -> None:
    error = only_error({"optimizer": {"name": "adamx", "learning_rate": 0.1}})
    assert error["loc"] == ("optimizer",)
    assert "'adamx'" in error["msg"]
    for name in OPTIMIZER_NAMES:
        assert f"'{name}'" in error["msg"]


def test_unknown_layer_type_names_the_layer() -> None:
    error = only_error({"model": {"hidden": [{"type": "conv2d", "units": 3}]}})
    assert error["loc"] == ("model", "hidden", 0)
    assert "'conv2d'" in error["msg"] and "'dense'" in error["msg"]


@pytest.mark.parametrize("name", ["nul\x00byte", "line\nbreak", "\x1b[31mred"])
def test_control_characters_in_name_are_rejected(name: str) -> None:
    error = only_error({"name": name})
    assert error["loc"] == ("name",)
    assert error["type"] == "string_pattern_mismatch"


def test_nul_byte_in_description_is_rejected_but_newlines_are_not() -> None:
    assert only_error({"description": "a\x00b"})["loc"] == ("description",)
    assert ExperimentSpec.model_validate({"description": "a\nb\tc"}).description == "a\nb\tc"


def test_overlong_name_and_too_many_layers_are_rejected() -> None:
    assert only_error({"name": "x" * 121})["loc"] == ("name",)
    layers = [{"type": "dense", "units": 4}] * (spec_module.MAX_HIDDEN_LAYERS + 1)
    error = only_error({"model": {"hidden": layers}})
    assert error["loc"] == ("model", "hidden")
    assert error["type"] == "too_long"


def test_batch_larger_than_the_training_samples_is_rejected_by_name() -> None:
    error = only_error({"data": {"max_train_samples": 100}, "training": {"batch_size": 101}})
    assert "training.batch_size" in error["msg"]
    assert "data.max_train_samples" in error["msg"]
    ExperimentSpec.model_validate({"data": {"max_train_samples": 100},
                                   "training": {"batch_size": 100}})


def test_every_error_is_reported_at_once() -> None:
    errors = errors_of({"training": {"epochs": 0, "batch_size": "32"}, "data": {"scailng": 1}})
    assert {e["loc"] for e in errors} == {
        ("training", "epochs"), ("training", "batch_size"), ("data", "scailng")}


# --- canonical hash -----------------------------------------------------------------------------


def test_hash_ignores_key_order_and_spelt_out_defaults() -> None:
    terse = {"training": {"epochs": 3, "batch_size": 64}, "data": {"scaling": "none"}}
    reordered = {"data": {"scaling": "none"}, "training": {"batch_size": 64, "epochs": 3}}
    explicit = ExperimentSpec.model_validate(terse).model_dump(mode="json")
    explicit_reversed = json.loads(json.dumps(explicit), object_pairs_hook=lambda kv: dict(kv[::-1]))
    assert list(explicit_reversed) == list(explicit)[::-1]
    hashes = {
        ExperimentSpec.model_validate(terse).spec_hash(),
        ExperimentSpec.model_validate(reordered).spec_hash(),
        ExperimentSpec.model_validate(explicit).spec_hash(),
        ExperimentSpec.model_validate(explicit_reversed).spec_hash(),
        ExperimentSpec.model_validate_json(json.dumps(explicit_reversed, indent=3)).spec_hash(),
    }
    assert len(hashes) == 1
    assert len(hashes.pop()) == 64


def test_hash_ignores_name_and_description() -> None:
    plain = ExperimentSpec()
    named = ExperimentSpec.model_validate({"name": "mine", "description": "a note"})
    assert plain.spec_hash() == named.spec_hash()
    assert plain.canonical_json() == named.canonical_json()


@pytest.mark.parametrize(
    "change",
    [
        {"training": {"epochs": 11}},
        {"training": {"seed": 43}},
        {"data": {"invert": True}},
        {"data": {"dataset": "fashion_mnist"}},
        {"optimizer": {"name": "adam", "learning_rate": 0.002}},
        {"optimizer": {"name": "nadam"}},
        {"model": {"hidden": [{"type": "dense", "units": 999}]}},
        {"model": {"hidden": [{"type": "dense", "units": 1000}, {"type": "dropout", "rate": 0.1}]}},
    ],
)
def test_hash_changes_with_any_trained_field(change: dict) -> None:
    base = ExperimentSpec()
    changed = ExperimentSpec.model_validate(change)
    assert changed != base
    assert changed.spec_hash() != base.spec_hash()


def test_canonical_json_spells_out_every_field_sorted() -> None:
    spec = ExperimentSpec()
    text = spec.canonical_json()
    body = json.loads(text)
    assert text == json.dumps(body, sort_keys=True, separators=(",", ":"))
    assert ExperimentSpec.model_validate(body) == spec
    assert set(body["training"]) == set(spec_module.TrainingSpec.model_fields)


# --- JSON Schema --------------------------------------------------------------------------------


def test_json_schema_is_published() -> None:
    schema = json_schema()
    json.dumps(schema)  # serialisable as is
    assert set(schema["properties"]) == set(ExperimentSpec.model_fields)
    assert schema.get("additionalProperties") is False
    defs = schema["$defs"]
    assert set(defs["TrainingSpec"]["properties"]) == set(spec_module.TrainingSpec.model_fields)
    epochs = defs["TrainingSpec"]["properties"]["epochs"]
    assert (epochs["minimum"], epochs["maximum"]) == (1, MAX_EPOCHS)
    optimizer = schema["properties"]["optimizer"]
    assert set(optimizer["discriminator"]["mapping"]) == set(OPTIMIZER_NAMES)
    parts = [d for d in defs.values() if "properties" in d]
    assert parts and all(d.get("additionalProperties") is False for d in parts), (
        "every part forbids extra fields")


# --- deep_merge ---------------------------------------------------------------------------------


def test_deep_merge_merges_dicts_and_replaces_everything_else() -> None:
    base = {"a": {"b": 1, "c": {"d": 2, "e": 3}}, "list": [1, 2], "x": 1}
    overrides = {"a": {"c": {"e": 30}, "f": 4}, "list": [9], "x": {"now": "a dict"}}
    merged = deep_merge(base, overrides)
    assert merged == {"a": {"b": 1, "c": {"d": 2, "e": 30}, "f": 4}, "list": [9],
                      "x": {"now": "a dict"}}


def test_deep_merge_replaces_a_union_member_whose_tag_changes() -> None:
    base = {"name": "run", "optimizer": {"name": "sgd", "momentum": 0.9, "learning_rate": 0.1}}
    switched = deep_merge(base, {"optimizer": {"name": "adam", "beta_1": 0.8}})
    assert switched["optimizer"] == {"name": "adam", "beta_1": 0.8}
    same = deep_merge(base, {"optimizer": {"name": "sgd", "momentum": 0.5}})
    assert same["optimizer"] == {"name": "sgd", "momentum": 0.5, "learning_rate": 0.1}
    renamed = deep_merge(base, {"name": "other"})
    assert renamed == {**base, "name": "other"}
    layer = deep_merge({"layer": {"type": "dense", "units": 3}}, {"layer": {"type": "dropout",
                                                                            "rate": 0.5}})
    assert layer == {"layer": {"type": "dropout", "rate": 0.5}}


def test_deep_merge_leaves_its_inputs_alone() -> None:
    base = {"a": {"b": 1}}
    overrides = {"a": {"b": 2}}
    deep_merge(base, overrides)
    assert base == {"a": {"b": 1}}
    assert overrides == {"a": {"b": 2}}


# --- no TensorFlow for the API side -------------------------------------------------------------


def _in_fresh_python(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.parametrize("module", ["trainer.spec", "trainer.recipes", "trainer.summary"])
def test_importing_the_spec_side_does_not_import_tensorflow(module: str) -> None:
    code = f"import {module}, sys; print('tensorflow' in sys.modules, 'keras' in sys.modules)"
    assert _in_fresh_python(code).split() == ["False", "False"]


def test_dry_run_work_does_not_import_tensorflow() -> None:
    code = ("import sys, json; from trainer.summary import summarize; "
            "from trainer.recipes import catalogue, recipe_spec; from trainer.spec import json_schema; "
            "json.dumps(json_schema()); recipe_spec('deep', {'training': {'epochs': 1}}); "
            "print(sum(summarize(r.spec).total_params > 0 for r in catalogue().values()), "
            "len(catalogue()), 'tensorflow' in sys.modules, 'keras' in sys.modules)")
    counted, recipes, tf_loaded, keras_loaded = _in_fresh_python(code).split()
    assert counted == recipes
    assert (tf_loaded, keras_loaded) == ("False", "False")
