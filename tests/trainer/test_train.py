"""train(): history, reproducibility, cancellation, early stopping, and the chapter's accuracy."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from trainer.data import load_dataset
from trainer.recipes import recipe_spec
from trainer.train import HISTORY_KEYS, train

LEARNED_KEYS = ("loss", "accuracy", "val_loss", "val_accuracy")


def test_history_has_one_entry_per_epoch_and_reaches_the_reporter(
    make_spec, recording_reporter
) -> None:
    # A patient early stopping lets the run complete.
    spec = make_spec({"training": {"epochs": 3, "early_stopping": {"patience": 5}}})
    reporter = recording_reporter()
    result = train(spec, reporter=reporter)

    assert result.stop_reason == "completed"
    assert result.epochs_run == 3
    assert result.history["epoch"] == [0, 1, 2]
    assert set(result.history) == {"epoch", *HISTORY_KEYS}
    assert all(len(values) == 3 for values in result.history.values())
    assert all(seconds > 0 for seconds in result.history["seconds"])
    assert reporter.starts == [{"total_epochs": 3, "initial_epoch": 0}]
    assert [r.as_dict() for r in reporter.records] == [
        {key: result.history[key][i] for key in ("epoch", *HISTORY_KEYS)} for i in range(3)]
    # It learns: the training loss falls epoch by epoch on the real digits.
    losses = result.history["loss"]
    assert losses[0] > losses[1] > losses[2]
    assert result.evaluation.test_accuracy > 0.5
    stored = json.loads(json.dumps(result.as_dict()))  # what the worker stores
    assert stored["preprocessing"] == pytest.approx({"scale": 1 / 255, "offset": 0.0})
    assert stored["spec_hash"] == spec.spec_hash()


def test_final_evaluation_matches_the_last_epochs_validation(make_spec) -> None:
    spec = make_spec({"data": {"max_test_samples": 300}, "training": {"epochs": 2}})
    result = train(spec)
    ev = result.evaluation
    assert np.asarray(ev.confusion_matrix).sum() == 300
    assert ev.test_accuracy == pytest.approx(result.history["val_accuracy"][-1], abs=1e-6)
    assert ev.test_loss == pytest.approx(result.history["val_loss"][-1], rel=1e-4)
    labels = load_dataset("mnist").y_test[:300]
    support = np.bincount(labels, minlength=10)
    assert np.asarray(ev.confusion_matrix).sum(axis=1).tolist() == support.tolist()
    assert ev.per_class_accuracy == pytest.approx(
        np.diag(ev.confusion_matrix) / support, abs=1e-6)
    assert 0 < ev.train_accuracy <= 1 and ev.train_loss > 0


def test_sparse_labels_and_a_held_out_split_train(make_spec) -> None:
    spec = make_spec({"training": {"epochs": 2, "loss": "sparse_categorical_crossentropy",
                                   "validation": "split", "validation_split": 0.2}})
    result = train(spec)
    assert result.stop_reason == "completed"
    assert all(v is not None and math.isfinite(v) for v in result.history["val_loss"])
    # The split validates on held-out training images, the final evaluation on the test set.
    assert np.asarray(result.evaluation.confusion_matrix).sum() == len(
        load_dataset("mnist").y_test)
    assert result.evaluation.test_accuracy > 0.5


def test_fashion_mnist_trains(make_spec) -> None:
    spec = make_spec({"data": {"dataset": "fashion_mnist", "max_train_samples": 1000},
                      "training": {"epochs": 2}})
    result = train(spec)
    fashion = load_dataset("fashion_mnist")
    assert np.asarray(result.evaluation.confusion_matrix).sum() == len(fashion.y_test)
    assert result.evaluation.test_accuracy > 0.3


# --- reproducibility ----------------------------------------------------------------------------


def learned_history(result) -> dict:
    return {key: result.history[key] for key in LEARNED_KEYS}


def test_same_spec_and_seed_give_the_same_history(make_spec) -> None:
    # Seeded: initial weights, shuffling and dropout masks.
    spec = make_spec({"data": {"max_train_samples": 1500},
                      "model": {"hidden": [{"type": "dense", "units": 1000},
                                           {"type": "dropout", "rate": 0.5}]},
                      "training": {"epochs": 2, "batch_size": 300, "seed": 7}})
    first = train(spec)
    second = train(spec)
    other_seed = train(spec.model_copy(update={
        "training": spec.training.model_copy(update={"seed": 8})}))

    assert learned_history(first) == learned_history(second)
    assert first.evaluation == second.evaluation
    assert [w.as_dict() for w in first.weights] == [w.as_dict() for w in second.weights]
    assert learned_history(other_seed) != learned_history(first)
    assert other_seed.history["loss"][0] != first.history["loss"][0]


# --- stopping -----------------------------------------------------------------------------------


def test_cancel_after_the_first_epoch_keeps_only_whole_epochs(
    make_spec, recording_reporter
) -> None:
    reporter = recording_reporter(stop_after_epochs=1)
    spec = make_spec({"training": {"epochs": 4}})
    result = train(spec, reporter=reporter)

    assert result.stop_reason == "cancelled"
    assert result.epochs_run == 1
    assert result.history["epoch"] == [0]
    assert all(len(values) == 1 for values in result.history.values())
    assert [record.epoch for record in reporter.records] == [0]
    # The model is still evaluated, so a cancelled run has a result.
    assert np.asarray(result.evaluation.confusion_matrix).sum() > 0


def test_cancel_before_any_epoch_finishes(make_spec, recording_reporter) -> None:
    reporter = recording_reporter(stop_after_epochs=0)
    result = train(make_spec({"training": {"epochs": 3}}), reporter=reporter)
    assert result.stop_reason == "cancelled"
    assert result.epochs_run == 0
    assert all(values == [] for values in result.history.values())
    assert reporter.records == []


def test_early_stopping_ends_the_run_and_says_so(make_spec) -> None:
    # Accuracy can never improve by a whole 1.0: the run stops after its second epoch.
    spec = make_spec({"training": {"epochs": 5, "early_stopping": {
        "monitor": "accuracy", "min_delta": 1.0, "patience": 0}}})
    result = train(spec)
    assert result.stop_reason == "early_stopping"
    assert result.epochs_run == 2
    assert result.history["epoch"] == [0, 1]


# --- the chapter's figure on the full real MNIST -------------------------------------------------


@pytest.mark.slow
def test_scaled_recipe_reaches_96_percent_in_one_epoch_on_real_mnist(
    real_data_dir: Path, use_data_dir
) -> None:
    use_data_dir(real_data_dir)
    spec = recipe_spec("scaled", {"training": {"epochs": 1}})
    result = train(spec)
    mnist = load_dataset("mnist")
    assert len(mnist.x_train) == 60000, "trained on the full training set"
    assert np.asarray(result.evaluation.confusion_matrix).sum() == 10000
    accuracy = result.evaluation.test_accuracy
    print(f"\nscaled recipe, 1 epoch, full MNIST: test accuracy {accuracy:.4f} "
          f"(train {result.evaluation.train_accuracy:.4f}, {result.seconds:.1f}s)")
    assert accuracy >= 0.96
