"""The experiment spec: one pydantic model that says everything about a training run.

It mirrors Keras's `Sequential` (a list of hidden layers, then the softmax output layer) so that
people who know Keras read it at a glance. It imports no TensorFlow: the API validates specs
and computes model summaries without loading it.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

# Limits that keep one request from taking the machine (and catch typos like 10000000 epochs).
MAX_UNITS = 4096
MAX_HIDDEN_LAYERS = 16
MAX_EPOCHS = 1000
MAX_BATCH_SIZE = 60000
MAX_TRAIN_SAMPLES = 60000
MAX_SEED = 2**31 - 1

Activation = Literal[
    "relu",
    "sigmoid",
    "tanh",
    "elu",
    "selu",
    "gelu",
    "swish",
    "leaky_relu",
    "linear",
    "softmax",
    "softplus",
    "softsign",
    "hard_sigmoid",
    "relu6",
    "mish",
]
Initializer = Literal[
    "glorot_uniform",
    "glorot_normal",
    "he_uniform",
    "he_normal",
    "lecun_uniform",
    "lecun_normal",
    "random_normal",
    "random_uniform",
    "zeros",
    "ones",
    "orthogonal",
]
Scaling = Literal["none", "divide255", "minmax", "mean", "standard"]
DatasetName = Literal["mnist", "fashion_mnist"]

Rate = Annotated[float, Field(gt=0, le=10)]
UnitInterval = Annotated[float, Field(ge=0, lt=1)]
Epsilon = Annotated[float, Field(gt=0, le=1)]


class StrictModel(BaseModel):
    """Base for every spec part: unknown fields are errors, never silently ignored."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Regularizer(StrictModel):
    """Kernel regularisation; L1, L2, or both (Keras's L1L2)."""

    l1: float = Field(0.0, ge=0, le=10, description="L1 factor")
    l2: float = Field(0.0, ge=0, le=10, description="L2 factor")

    @property
    def active(self) -> bool:
        return self.l1 > 0 or self.l2 > 0


class DataSpec(StrictModel):
    dataset: DatasetName = "mnist"
    scaling: Scaling = Field(
        "divide255",
        description=(
            "none: raw 0-255; divide255: x/255; minmax: (x-min)/(max-min); "
            "mean: (x-mean)/(max-min); standard: (x-mean)/std. Statistics are global, "
            "taken over the training pixels."
        ),
    )
    invert: bool = Field(False, description="Colour inversion (255 - x) before scaling.")
    max_train_samples: int | None = Field(
        None, ge=1, le=MAX_TRAIN_SAMPLES, description="Use only the first N training samples."
    )
    max_test_samples: int | None = Field(
        None, ge=1, le=10000, description="Use only the first N test samples."
    )


class DenseLayer(StrictModel):
    type: Literal["dense"] = "dense"
    units: int = Field(..., ge=1, le=MAX_UNITS)
    activation: Activation = "relu"
    kernel_regularizer: Regularizer | None = None
    kernel_initializer: Initializer = "glorot_uniform"
    use_bias: bool = True


class DropoutLayer(StrictModel):
    type: Literal["dropout"] = "dropout"
    rate: UnitInterval = Field(..., description="Fraction of inputs dropped, in [0, 1).")


class BatchNormLayer(StrictModel):
    type: Literal["batch_norm"] = "batch_norm"
    momentum: float = Field(0.99, gt=0, lt=1)
    epsilon: Epsilon = 0.001


HiddenLayer = Annotated[DenseLayer | DropoutLayer | BatchNormLayer, Field(discriminator="type")]


class OutputLayer(StrictModel):
    """The 10-way softmax classifier that ends every model."""

    activation: Literal["softmax"] = "softmax"
    kernel_regularizer: Regularizer | None = None
    kernel_initializer: Initializer = "glorot_uniform"


class ModelSpec(StrictModel):
    hidden: list[HiddenLayer] = Field(
        default_factory=lambda: [DenseLayer(units=1000, activation="relu")],
        max_length=MAX_HIDDEN_LAYERS,
    )
    output: OutputLayer = Field(default_factory=OutputLayer)


class SGD(StrictModel):
    name: Literal["sgd"] = "sgd"
    learning_rate: Rate = 0.01
    momentum: float = Field(0.0, ge=0, lt=1)
    nesterov: bool = False


class _AdamFamily(StrictModel):
    """The moment-estimate options Adam and its relatives share."""

    name: str
    learning_rate: Rate = 0.001
    beta_1: UnitInterval = 0.9
    beta_2: UnitInterval = 0.999
    epsilon: Epsilon = 1e-7


class Adam(_AdamFamily):
    name: Literal["adam"] = "adam"
    amsgrad: bool = False


class AdamW(_AdamFamily):
    name: Literal["adamw"] = "adamw"
    weight_decay: float = Field(0.004, ge=0, le=1)
    amsgrad: bool = False


class RMSprop(StrictModel):
    name: Literal["rmsprop"] = "rmsprop"
    learning_rate: Rate = 0.001
    rho: UnitInterval = 0.9
    momentum: float = Field(0.0, ge=0, lt=1)
    epsilon: Epsilon = 1e-7
    centered: bool = False


class Adagrad(StrictModel):
    name: Literal["adagrad"] = "adagrad"
    learning_rate: Rate = 0.001
    initial_accumulator_value: float = Field(0.1, ge=0, le=10)
    epsilon: Epsilon = 1e-7


class Adadelta(StrictModel):
    name: Literal["adadelta"] = "adadelta"
    learning_rate: Rate = 0.001
    rho: UnitInterval = 0.95
    epsilon: Epsilon = 1e-7


class Adamax(_AdamFamily):
    name: Literal["adamax"] = "adamax"


class Nadam(_AdamFamily):
    name: Literal["nadam"] = "nadam"


OptimizerSpec = Annotated[
    SGD | Adam | AdamW | RMSprop | Adagrad | Adadelta | Adamax | Nadam,
    Field(discriminator="name"),
]


class EarlyStopping(StrictModel):
    monitor: Literal["val_loss", "val_accuracy", "loss", "accuracy"] = "val_loss"
    patience: int = Field(5, ge=0, le=MAX_EPOCHS)
    min_delta: float = Field(0.0, ge=0, le=1)
    restore_best_weights: bool = False


class TrainingSpec(StrictModel):
    epochs: int = Field(10, ge=1, le=MAX_EPOCHS)
    batch_size: int = Field(32, ge=1, le=MAX_BATCH_SIZE)
    loss: Literal["categorical_crossentropy", "sparse_categorical_crossentropy"] = (
        "categorical_crossentropy"
    )
    validation: Literal["test", "split"] = Field(
        "test",
        description="test: validate on the test set each epoch (as the chapter does); "
        "split: hold out validation_split of the training set.",
    )
    validation_split: float = Field(0.1, gt=0, lt=1)
    shuffle: bool = True
    seed: int = Field(42, ge=0, le=MAX_SEED)
    early_stopping: EarlyStopping | None = None


class ExperimentSpec(StrictModel):
    """One experiment: data, model, optimizer and training settings."""

    name: str | None = Field(None, max_length=120, pattern=r"^[^\x00-\x1f]*$")
    description: str | None = Field(None, max_length=2000, pattern=r"^[^\x00-\x08\x0b-\x1f]*$")
    data: DataSpec = Field(default_factory=DataSpec)
    model: ModelSpec = Field(default_factory=ModelSpec)
    optimizer: OptimizerSpec = Field(default_factory=Adam)
    training: TrainingSpec = Field(default_factory=TrainingSpec)

    @model_validator(mode="after")
    def _check_batch_fits(self) -> ExperimentSpec:
        if self.data.max_train_samples is not None and (
            self.training.batch_size > self.data.max_train_samples
        ):
            raise ValueError(
                "training.batch_size must not exceed data.max_train_samples "
                f"({self.training.batch_size} > {self.data.max_train_samples})"
            )
        return self

    def name_slug(self) -> str:
        """A Keras-safe model name."""
        return re.sub(r"[^A-Za-z0-9_]+", "_", self.name or "experiment").strip("_") or "experiment"

    def canonical_json(self) -> str:
        """Every field spelt out (defaults included), keys sorted: equal specs, equal text."""
        body = self.model_dump(mode="json", exclude={"name", "description"})
        return json.dumps(body, sort_keys=True, separators=(",", ":"))

    def spec_hash(self) -> str:
        """Identifies what is trained; the name and description do not change it."""
        return hashlib.sha256(self.canonical_json().encode()).hexdigest()


# The tags of the spec's unions (optimizer "name", hidden layer "type").
_UNION_TAGS = ("name", "type")


def _switches_tag(old: dict[str, Any], new: dict[str, Any]) -> bool:
    return any(tag in old and tag in new and old[tag] != new[tag] for tag in _UNION_TAGS)


def deep_merge(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Merge a partial spec into a full one: dicts merge key by key, anything else replaces.

    A nested dict that switches a union's tag (another optimizer "name", another layer "type")
    replaces the old one whole: one optimizer's settings are not valid for another.
    """
    merged = dict(base)
    for key, value in overrides.items():
        old = merged.get(key)
        if isinstance(value, dict) and isinstance(old, dict) and not _switches_tag(old, value):
            merged[key] = deep_merge(old, value)
        else:
            merged[key] = value
    return merged


def json_schema() -> dict[str, Any]:
    return ExperimentSpec.model_json_schema()
