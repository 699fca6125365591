"""Build the Keras model for a spec: raw 28x28 pixels in, 10 probabilities out.

The first layers flatten the image and apply the spec's preprocessing (one `Rescaling`), so the
very model that is trained is the one saved and served.
"""

from __future__ import annotations

from typing import Any

from trainer.preprocessing import Affine
from trainer.spec import DenseLayer, DropoutLayer, ExperimentSpec, Regularizer

NUM_CLASSES = 10
IMAGE_SHAPE = (28, 28)


def _regularizer(reg: Regularizer | None) -> Any:
    import keras

    if reg is None or not reg.active:
        return None
    if reg.l1 and reg.l2:
        return keras.regularizers.L1L2(l1=reg.l1, l2=reg.l2)
    return keras.regularizers.L1(reg.l1) if reg.l1 else keras.regularizers.L2(reg.l2)


def build_model(spec: ExperimentSpec, affine: Affine) -> Any:
    import keras

    layers: list[Any] = [
        # uint8 in: the training data stays 1 byte a pixel (a quarter of float32's memory);
        # Rescaling casts to float32 before anything is computed.
        keras.Input(shape=IMAGE_SHAPE, dtype="uint8", name="pixels"),
        keras.layers.Flatten(name="flatten"),
        keras.layers.Rescaling(scale=affine.scale, offset=affine.offset, name="preprocessing"),
    ]
    counts: dict[str, int] = {}
    for layer in spec.model.hidden:
        counts[layer.type] = counts.get(layer.type, 0) + 1
        name = f"{layer.type}_{counts[layer.type]}"
        if isinstance(layer, DenseLayer):
            layers.append(
                keras.layers.Dense(
                    layer.units,
                    activation=layer.activation,
                    use_bias=layer.use_bias,
                    kernel_initializer=layer.kernel_initializer,
                    kernel_regularizer=_regularizer(layer.kernel_regularizer),
                    name=name,
                )
            )
        elif isinstance(layer, DropoutLayer):
            layers.append(keras.layers.Dropout(layer.rate, name=name))
        else:
            layers.append(
                keras.layers.BatchNormalization(
                    momentum=layer.momentum, epsilon=layer.epsilon, name=name
                )
            )
    output = spec.model.output
    layers.append(
        keras.layers.Dense(
            NUM_CLASSES,
            activation=output.activation,
            kernel_initializer=output.kernel_initializer,
            kernel_regularizer=_regularizer(output.kernel_regularizer),
            name="output",
        )
    )
    return keras.Sequential(layers, name=spec.name_slug())
