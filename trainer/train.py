"""spec -> data -> model -> fit -> evaluate -> artifacts. The one entry point is `train`."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from trainer import artifacts, compiled_models
from trainer.data import load_dataset
from trainer.evaluation import Evaluation, evaluate_predictions
from trainer.preprocessing import Affine, affine_for
from trainer.reporting import EpochRecord, Reporter
from trainer.spec import ExperimentSpec
from trainer.summary import ModelSummary, summarize_keras
from trainer.weights import WeightStats, model_weight_stats

EVAL_BATCH = 2048
HISTORY_KEYS = ("loss", "accuracy", "val_loss", "val_accuracy", "learning_rate", "seconds")


@dataclass
class TrainingResult:
    spec_hash: str
    stop_reason: str  # "completed" | "early_stopping" | "cancelled"
    epochs_run: int
    history: dict[str, list[Any]]
    evaluation: Evaluation
    summary: ModelSummary
    weights: list[WeightStats]
    affine: Affine
    seconds: float
    seconds_to_first_batch: float | None = None
    artifacts: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "spec_hash": self.spec_hash,
            "stop_reason": self.stop_reason,
            "epochs_run": self.epochs_run,
            "history": self.history,
            "evaluation": self.evaluation.as_dict(),
            "summary": self.summary.model_dump(),
            "weights": [w.as_dict() for w in self.weights],
            "preprocessing": {"scale": self.affine.scale, "offset": self.affine.offset},
            "seconds": self.seconds,
            "seconds_to_first_batch": self.seconds_to_first_batch,
            "artifacts": self.artifacts,
        }


class _HistoryTee(Reporter):
    """Keeps Keras-shaped history of the reported epochs and passes every hook on."""

    def __init__(self, inner: Reporter) -> None:
        self.inner = inner
        self.history: dict[str, list[Any]] = {"epoch": [], **{k: [] for k in HISTORY_KEYS}}

    def on_start(self, *, total_epochs: int, initial_epoch: int) -> None:
        self.inner.on_start(total_epochs=total_epochs, initial_epoch=initial_epoch)

    def on_epoch(self, record: EpochRecord) -> None:
        for key, value in record.as_dict().items():
            self.history[key].append(value)
        self.inner.on_epoch(record)

    def should_stop(self) -> bool:
        return self.inner.should_stop()


def compile_options(spec: ExperimentSpec, steps_per_epoch: int) -> dict[str, Any]:
    """Per-step overhead dominates small batches on a CPU: run many steps per call then."""
    small_batches = spec.training.batch_size <= 256
    return {
        "jit_compile": small_batches,
        "steps_per_execution": max(1, min(64, steps_per_epoch)) if small_batches else 1,
    }


def _labels(y: np.ndarray, loss: str) -> np.ndarray:
    if loss == "sparse_categorical_crossentropy":
        return y.astype(np.int32)
    return np.eye(10, dtype=np.float32)[y]


def train(
    spec: ExperimentSpec,
    out_dir: Path | None = None,
    reporter: Reporter | None = None,
    *,
    checkpoint_dir: Path | None = None,
    reuse_compiled: bool = True,
) -> TrainingResult:
    """Train one experiment; write its artifacts to out_dir when given.

    With checkpoint_dir, the weights and optimizer state are saved after every epoch, and a
    run that finds a checkpoint there resumes after its last finished epoch. With reuse_compiled
    (the default), a model compiled by an earlier run in this process with the same graph is
    reused (see trainer.compiled_models); pass False to compile afresh.
    """
    import keras

    from trainer import checkpoint
    from trainer.callbacks import (
        EpochTimer,
        FirstBatchTimer,
        LearningRateLogger,
        ReportEpoch,
        StopOnRequest,
    )
    started = time.perf_counter()
    tee = _HistoryTee(reporter or Reporter())
    keras.utils.set_random_seed(spec.training.seed)

    data = load_dataset(spec.data.dataset)
    x_train = data.x_train[: spec.data.max_train_samples]
    y_train = data.y_train[: spec.data.max_train_samples]
    x_test = data.x_test[: spec.data.max_test_samples]
    y_test = data.y_test[: spec.data.max_test_samples]
    affine = affine_for(spec.data)

    loss = spec.training.loss
    steps = -(-len(x_train) // spec.training.batch_size)
    options = compile_options(spec, steps)
    graph = compiled_models.graph_key(spec, affine, options)
    model = _compiled_model(spec, affine, graph, options, reuse=reuse_compiled)

    stopper = StopOnRequest(tee)
    first_batch = FirstBatchTimer()
    callbacks: list[Any] = [EpochTimer(), first_batch, LearningRateLogger(), stopper,
                            ReportEpoch(tee, stopper)]
    initial_epoch = 0
    if checkpoint_dir is not None:
        initial_epoch = checkpoint.restore(model, Path(checkpoint_dir))
        # After ReportEpoch: an epoch is stored before its checkpoint, so a crash in between
        # repeats the epoch (stored once) rather than leaving a gap in the history.
        callbacks.append(checkpoint.EpochCheckpoint(Path(checkpoint_dir), stopper))
    early = spec.training.early_stopping
    early_cb = None
    if early is not None:
        early_cb = keras.callbacks.EarlyStopping(**early.model_dump())
        callbacks.append(early_cb)

    validation: dict[str, Any]
    if spec.training.validation == "test":
        validation = {"validation_data": (x_test, _labels(y_test, loss))}
    else:
        validation = {"validation_split": spec.training.validation_split}

    tee.on_start(total_epochs=spec.training.epochs, initial_epoch=initial_epoch)
    model.fit(
        x_train,
        _labels(y_train, loss),
        batch_size=spec.training.batch_size,
        epochs=spec.training.epochs,
        initial_epoch=initial_epoch,
        shuffle=spec.training.shuffle,
        callbacks=callbacks,
        verbose=0,
        # Validation computes no gradients: large batches cost a few calls, not hundreds.
        validation_batch_size=max(EVAL_BATCH, spec.training.batch_size),
        **validation,
    )

    probabilities = np.asarray(model.predict(x_test, batch_size=EVAL_BATCH, verbose=0))
    test_loss = float(model.evaluate(x_test, _labels(y_test, loss), batch_size=EVAL_BATCH,
                                     verbose=0, return_dict=True)["loss"])
    train_scores = model.evaluate(x_train, _labels(y_train, loss), batch_size=EVAL_BATCH,
                                  verbose=0, return_dict=True)
    evaluation = evaluate_predictions(
        y_test, probabilities, test_loss=test_loss,
        train_loss=float(train_scores["loss"]), train_accuracy=float(train_scores["accuracy"]),
    )
    if stopper.stopped:
        reason = "cancelled"
    elif early_cb is not None and early_cb.stopped_epoch > 0:
        reason = "early_stopping"
    else:
        reason = "completed"
    kernels = {layer.name: np.asarray(layer.kernel) for layer in model.layers
               if hasattr(layer, "kernel")}
    result = TrainingResult(
        spec_hash=spec.spec_hash(),
        stop_reason=reason,
        epochs_run=len(tee.history["epoch"]),
        history=tee.history,
        evaluation=evaluation,
        summary=summarize_keras(model),
        weights=model_weight_stats(kernels),
        affine=affine,
        seconds=0.0,
        seconds_to_first_batch=(first_batch.at - started) if first_batch.at else None,
    )
    if checkpoint_dir is not None:
        checkpoint.clear(Path(checkpoint_dir))  # finished: nothing left to resume
    if out_dir is not None:
        result.artifacts = artifacts.write_all(Path(out_dir), spec=spec, model=model,
                                               result=result, data=data, x_test=x_test)
    result.seconds = time.perf_counter() - started
    if out_dir is not None:
        artifacts.write_result_json(Path(out_dir), result)
    if reuse_compiled:
        compiled_models.PROCESS_MODELS.give_back(graph, model)
    return result


def _compiled_model(spec: ExperimentSpec, affine: Affine, graph: str, options: dict[str, Any],
                    *, reuse: bool) -> Any:
    """A compiled model in the spec's seeded initial state: an earlier run's with the same graph
    when this process has one, else a newly compiled one."""
    from trainer.model import build_model
    from trainer.optimizers import build_optimizer

    fresh, optimizer = build_model(spec, affine), build_optimizer(spec.optimizer)
    compiled = compiled_models.PROCESS_MODELS.take(graph) if reuse else None
    if compiled is not None and compiled_models.load_initial_state(
            compiled, fresh=fresh, fresh_optimizer=optimizer):
        return compiled
    fresh.compile(optimizer=optimizer, loss=spec.training.loss, metrics=["accuracy"], **options)
    return fresh
