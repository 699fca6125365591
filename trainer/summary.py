"""The model summary (layer table, parameter counts) computed from the spec alone.

Dense nets are simple enough to count by hand, so the API can answer a dry run instantly,
without TensorFlow. Tests check these figures against Keras's own count.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from trainer.model import IMAGE_SHAPE, NUM_CLASSES
from trainer.spec import BatchNormLayer, DenseLayer, ExperimentSpec


class LayerRow(BaseModel):
    name: str
    kind: str
    output_shape: list[int | None]
    params: int
    trainable_params: int


class ModelSummary(BaseModel):
    layers: list[LayerRow]
    total_params: int
    trainable_params: int
    non_trainable_params: int


def summarize(spec: ExperimentSpec) -> ModelSummary:
    width = IMAGE_SHAPE[0] * IMAGE_SHAPE[1]
    rows = [
        LayerRow(name="flatten", kind="Flatten", output_shape=[None, width], params=0,
                 trainable_params=0),
        LayerRow(name="preprocessing", kind="Rescaling", output_shape=[None, width], params=0,
                 trainable_params=0),
    ]
    counts: dict[str, int] = {}
    for layer in spec.model.hidden:
        counts[layer.type] = counts.get(layer.type, 0) + 1
        name = f"{layer.type}_{counts[layer.type]}"
        if isinstance(layer, DenseLayer):
            params = width * layer.units + (layer.units if layer.use_bias else 0)
            width = layer.units
            rows.append(LayerRow(name=name, kind="Dense", output_shape=[None, width],
                                 params=params, trainable_params=params))
        elif isinstance(layer, BatchNormLayer):
            # gamma and beta train; the moving mean and variance do not.
            rows.append(LayerRow(name=name, kind="BatchNormalization",
                                 output_shape=[None, width], params=4 * width,
                                 trainable_params=2 * width))
        else:
            rows.append(LayerRow(name=name, kind="Dropout", output_shape=[None, width],
                                 params=0, trainable_params=0))
    out_params = width * NUM_CLASSES + NUM_CLASSES
    rows.append(LayerRow(name="output", kind="Dense", output_shape=[None, NUM_CLASSES],
                         params=out_params, trainable_params=out_params))
    total = sum(r.params for r in rows)
    trainable = sum(r.trainable_params for r in rows)
    return ModelSummary(layers=rows, total_params=total, trainable_params=trainable,
                        non_trainable_params=total - trainable)


def summarize_keras(model: Any) -> ModelSummary:
    """The same table read off a built Keras model."""
    rows = []
    for layer in model.layers:
        trainable = sum(int(w.numpy().size) for w in layer.trainable_weights)
        total = trainable + sum(int(w.numpy().size) for w in layer.non_trainable_weights)
        rows.append(LayerRow(name=layer.name, kind=type(layer).__name__,
                             output_shape=list(layer.output.shape), params=total,
                             trainable_params=trainable))
    total = sum(r.params for r in rows)
    trainable = sum(r.trainable_params for r in rows)
    return ModelSummary(layers=rows, total_params=total, trainable_params=trainable,
                        non_trainable_params=total - trainable)
