"""Final evaluation and weight statistics, checked against direct numpy/Python computations."""

from __future__ import annotations

import numpy as np
import pytest

from trainer.data import load_dataset
from trainer.evaluation import confusion_matrix, evaluate_predictions, worst_mistakes
from trainer.weights import HISTOGRAM_BINS, kernel_stats, model_weight_stats


@pytest.fixture
def labels() -> np.ndarray:
    return load_dataset("mnist").y_test


@pytest.fixture
def probabilities(labels: np.ndarray) -> np.ndarray:
    """Predictions of a so-so classifier: right about 70% of the time, varied confidence."""
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(10), size=len(labels))
    right = rng.random(len(labels)) < 0.7
    p[right, labels[right]] += 2.0
    return p / p.sum(axis=1, keepdims=True)


def test_confusion_matrix_counts_each_pair(labels, probabilities) -> None:
    predicted = probabilities.argmax(axis=1)
    matrix = confusion_matrix(labels, predicted)
    expected = np.zeros((10, 10), dtype=int)
    for true, guess in zip(labels, predicted, strict=True):
        expected[true, guess] += 1
    np.testing.assert_array_equal(matrix, expected)


def test_evaluation_figures(labels, probabilities) -> None:
    ev = evaluate_predictions(labels, probabilities, test_loss=0.5, train_loss=0.25,
                              train_accuracy=0.75)
    predicted = probabilities.argmax(axis=1)
    assert ev.test_accuracy == pytest.approx((predicted == labels).mean())
    assert (ev.test_loss, ev.train_loss, ev.train_accuracy) == (0.5, 0.25, 0.75)
    for digit in range(10):
        mine = labels == digit
        assert ev.per_class_accuracy[digit] == pytest.approx(
            (predicted[mine] == digit).mean(), abs=1e-6)
    assert np.asarray(ev.confusion_matrix).sum() == len(labels)
    ev.as_dict()


def test_a_class_missing_from_the_test_set_scores_zero_not_nan(labels, probabilities) -> None:
    keep = labels != 3
    ev = evaluate_predictions(labels[keep], probabilities[keep], test_loss=0, train_loss=0,
                              train_accuracy=0)
    assert ev.per_class_accuracy[3] == 0.0
    assert all(np.isfinite(ev.per_class_accuracy))


def test_worst_mistakes_are_the_most_confident_wrong_predictions(labels, probabilities) -> None:
    mistakes = worst_mistakes(labels, probabilities, limit=25)
    predicted = probabilities.argmax(axis=1)
    wrong = np.flatnonzero(predicted != labels)
    assert len(mistakes) == 25 < len(wrong)
    for m in mistakes:
        assert m.label == labels[m.index] != m.predicted == predicted[m.index]
        assert m.confidence == pytest.approx(probabilities[m.index].max())
    confidences = [m.confidence for m in mistakes]
    assert confidences == sorted(confidences, reverse=True)
    assert confidences[-1] >= np.sort(probabilities[wrong].max(axis=1))[-25]


def test_no_mistakes_no_list(labels) -> None:
    perfect = np.eye(10)[labels]
    assert worst_mistakes(labels, perfect) == []
    assert evaluate_predictions(labels, perfect, test_loss=0, train_loss=0,
                                train_accuracy=1).test_accuracy == 1.0


def test_kernel_stats_match_numpy() -> None:
    rng = np.random.default_rng(1)
    kernel = rng.normal(0, 0.15, size=(784, 100)).astype(np.float32)
    w = kernel_stats("dense_1", kernel)
    values = kernel.astype(np.float64)
    assert w.layer == "dense_1" and w.count == kernel.size
    assert w.mean == pytest.approx(values.mean())
    assert w.std == pytest.approx(values.std())
    assert (w.min, w.max) == (values.min(), values.max())
    assert w.fraction_beyond_0_2 == pytest.approx((np.abs(values) > 0.2).mean())
    assert len(w.histogram_counts) == HISTOGRAM_BINS == len(w.histogram_edges) - 1
    assert sum(w.histogram_counts) == kernel.size
    limit = np.abs(values).max()
    assert w.histogram_edges[0] == pytest.approx(-limit, abs=1e-6)
    assert w.histogram_edges[-1] == pytest.approx(limit, abs=1e-6)


def test_all_zero_kernel_has_a_valid_histogram() -> None:
    w = kernel_stats("output", np.zeros((10, 10)))
    assert sum(w.histogram_counts) == 100
    assert w.fraction_beyond_0_2 == 0.0
    assert all(np.isfinite(w.histogram_edges))


def test_model_weight_stats_keeps_layer_order() -> None:
    rng = np.random.default_rng(2)
    kernels = {"dense_1": rng.normal(size=(4, 3)), "output": rng.normal(size=(3, 10))}
    assert [w.layer for w in model_weight_stats(kernels)] == ["dense_1", "output"]
