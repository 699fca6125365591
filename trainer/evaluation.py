"""Final test-set evaluation: accuracy, per-class accuracy, confusion matrix, worst mistakes."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class Mistake:
    index: int  # position in the test set
    label: int
    predicted: int
    confidence: float


@dataclass(frozen=True)
class Evaluation:
    test_loss: float
    test_accuracy: float
    train_loss: float
    train_accuracy: float
    per_class_accuracy: list[float]
    confusion_matrix: list[list[int]]  # rows: true class, columns: predicted class
    worst_mistakes: list[Mistake]

    def as_dict(self) -> dict:
        return asdict(self)


def confusion_matrix(labels: np.ndarray, predicted: np.ndarray, classes: int = 10) -> np.ndarray:
    flat = labels.astype(np.int64) * classes + predicted.astype(np.int64)
    return np.bincount(flat, minlength=classes * classes).reshape(classes, classes)


def worst_mistakes(labels: np.ndarray, probabilities: np.ndarray, limit: int = 25) -> list[Mistake]:
    """The wrong predictions the model was most sure of, most confident first."""
    predicted = probabilities.argmax(axis=1)
    wrong = np.flatnonzero(predicted != labels)
    confidence = probabilities[wrong, predicted[wrong]]
    order = wrong[np.argsort(-confidence, kind="stable")][:limit]
    return [
        Mistake(int(i), int(labels[i]), int(predicted[i]), float(probabilities[i, predicted[i]]))
        for i in order
    ]


def evaluate_predictions(
    labels: np.ndarray,
    probabilities: np.ndarray,
    *,
    test_loss: float,
    train_loss: float,
    train_accuracy: float,
) -> Evaluation:
    predicted = probabilities.argmax(axis=1)
    matrix = confusion_matrix(labels, predicted)
    support = matrix.sum(axis=1)
    per_class = np.divide(np.diag(matrix), support, out=np.zeros(10), where=support > 0)
    return Evaluation(
        test_loss=test_loss,
        test_accuracy=float((predicted == labels).mean()),
        train_loss=train_loss,
        train_accuracy=train_accuracy,
        per_class_accuracy=[round(float(v), 6) for v in per_class],
        confusion_matrix=matrix.tolist(),
        worst_mistakes=worst_mistakes(labels, probabilities),
    )
