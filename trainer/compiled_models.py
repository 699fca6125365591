"""Compiled models kept for reuse within one process (a worker child runs job after job).

Tracing Keras's train step and compiling it with XLA costs ~0.5-0.8 s per job, longer than a
whole batch-32 epoch's first chunk; the final evaluation pays it again. A job whose graph
matches an earlier job's (same layers, preprocessing, optimizer hyperparameters but the learning
rate, loss, batch size and compile options) takes the earlier compiled model instead and loads
the freshly built model's initial state into it: every variable, the optimizer's included, so
it learns exactly what a newly compiled model would.
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from typing import Any

from trainer.preprocessing import Affine
from trainer.spec import ExperimentSpec

CAPACITY = 4  # graphs kept per process; a vanilla model with Adam state is ~10 MB


def graph_key(spec: ExperimentSpec, affine: Affine, compile_options: dict[str, Any]) -> str:
    """What the traced and compiled training step depends on. The learning rate is a variable
    in Keras 3 (read, not baked in); the seed only shapes the initial values, which are copied."""
    parts = {
        "model": spec.model.model_dump(mode="json"),
        "optimizer": spec.optimizer.model_dump(mode="json", exclude={"learning_rate"}),
        "affine": [affine.scale, affine.offset],
        "loss": spec.training.loss,
        "batch_size": spec.training.batch_size,
        "compile": compile_options,
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


class CompiledModels:
    """A small LRU of compiled models. `take` removes the entry, so a model is only ever used
    by one run; `give_back` returns it once that run has finished cleanly."""

    def __init__(self, capacity: int = CAPACITY) -> None:
        self.capacity = capacity
        self._models: OrderedDict[str, Any] = OrderedDict()

    def take(self, key: str) -> Any | None:
        return self._models.pop(key, None)

    def give_back(self, key: str, model: Any) -> None:
        self._models[key] = model
        self._models.move_to_end(key)
        while len(self._models) > self.capacity:
            self._models.popitem(last=False)

    def clear(self) -> None:
        self._models.clear()

    def __len__(self) -> int:
        return len(self._models)


def load_initial_state(compiled: Any, *, fresh: Any, fresh_optimizer: Any) -> bool:
    """Copy a newly built model's variables (weights, batch-norm statistics, dropout seed state)
    and its optimizer's (step count, learning rate, slots) into `compiled`. False, and nothing
    copied, when the two do not line up variable for variable."""
    fresh_optimizer.build(fresh.trainable_variables)
    groups = [(compiled.variables, fresh.variables),
              (compiled.optimizer.variables, fresh_optimizer.variables)]
    if any(len(targets) != len(sources) for targets, sources in groups):
        return False
    pairs = [pair for targets, sources in groups for pair in zip(targets, sources, strict=True)]
    if any(tuple(target.shape) != tuple(source.shape) for target, source in pairs):
        return False
    for target, source in pairs:
        target.assign(source.value)
    compiled.name = fresh.name  # the job's own name, in the saved model too
    return True


PROCESS_MODELS = CompiledModels()
