"""Keras optimizers from the spec's optimizer part."""

from __future__ import annotations

from typing import Any

from trainer.spec import OptimizerSpec

_CLASS_NAMES = {
    "sgd": "SGD",
    "adam": "Adam",
    "adamw": "AdamW",
    "rmsprop": "RMSprop",
    "adagrad": "Adagrad",
    "adadelta": "Adadelta",
    "adamax": "Adamax",
    "nadam": "Nadam",
}


def build_optimizer(spec: OptimizerSpec) -> Any:
    import keras

    options = spec.model_dump(exclude={"name"})
    return getattr(keras.optimizers, _CLASS_NAMES[spec.name])(**options)
