"""Every optimizer of the spec becomes the Keras optimizer with the spec's settings."""

from __future__ import annotations

import typing

import keras
import pytest

from trainer.optimizers import build_optimizer
from trainer.spec import ExperimentSpec, OptimizerSpec

OPTIMIZER_CLASSES = typing.get_args(typing.get_args(OptimizerSpec)[0])

# Non-default settings for each optimizer (each field differs from its default).
SETTINGS = {
    "sgd": {"learning_rate": 0.05, "momentum": 0.5, "nesterov": True},
    "adam": {"learning_rate": 0.002, "beta_1": 0.8, "beta_2": 0.99, "epsilon": 1e-6,
             "amsgrad": True},
    "adamw": {"learning_rate": 0.003, "weight_decay": 0.01, "beta_1": 0.85, "beta_2": 0.95,
              "epsilon": 1e-5, "amsgrad": True},
    "rmsprop": {"learning_rate": 0.004, "rho": 0.8, "momentum": 0.3, "epsilon": 1e-6,
                "centered": True},
    "adagrad": {"learning_rate": 0.02, "initial_accumulator_value": 0.2, "epsilon": 1e-6},
    "adadelta": {"learning_rate": 0.5, "rho": 0.9, "epsilon": 1e-6},
    "adamax": {"learning_rate": 0.006, "beta_1": 0.7, "beta_2": 0.9, "epsilon": 1e-6},
    "nadam": {"learning_rate": 0.007, "beta_1": 0.75, "beta_2": 0.98, "epsilon": 1e-6},
}


def test_every_optimizer_of_the_spec_is_covered_here() -> None:
    names = {typing.get_args(cls.model_fields["name"].annotation)[0] for cls in OPTIMIZER_CLASSES}
    assert names == set(SETTINGS)
    for cls in OPTIMIZER_CLASSES:
        name = typing.get_args(cls.model_fields["name"].annotation)[0]
        defaults = cls()
        for field, value in SETTINGS[name].items():
            assert getattr(defaults, field) != value, (name, field)
        assert set(SETTINGS[name]) == set(cls.model_fields) - {"name"}


@pytest.mark.parametrize("name", list(SETTINGS))
def test_optimizer_gets_the_specs_settings(name: str) -> None:
    spec = ExperimentSpec.model_validate({"optimizer": {"name": name, **SETTINGS[name]}})
    optimizer = build_optimizer(spec.optimizer)
    assert isinstance(optimizer, keras.optimizers.Optimizer)
    assert type(optimizer).__name__.lower() == name
    config = optimizer.get_config()
    for field, value in SETTINGS[name].items():
        assert config[field] == pytest.approx(value, rel=1e-6), field


@pytest.mark.parametrize("name", list(SETTINGS))
def test_spec_defaults_are_kerass_defaults(name: str) -> None:
    """A spec that names only the optimizer trains as Keras's own default would."""
    spec = ExperimentSpec.model_validate({"optimizer": {"name": name}})
    ours = build_optimizer(spec.optimizer).get_config()
    keras_default = type(build_optimizer(spec.optimizer))().get_config()
    for field in SETTINGS[name]:
        assert ours[field] == pytest.approx(keras_default[field], rel=1e-6), field
