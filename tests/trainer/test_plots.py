"""The PNG figures: valid images, also for the edge cases a run can produce."""

from __future__ import annotations

import io
import threading

import numpy as np
import pytest
from PIL import Image

from trainer import plots
from trainer.data import CLASS_NAMES, load_dataset
from trainer.weights import kernel_stats


def decode(png: bytes) -> Image.Image:
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    image = Image.open(io.BytesIO(png))
    image.load()
    assert image.format == "PNG"
    assert image.size[0] >= 100 and image.size[1] >= 100
    return image


def history(epochs: int, with_validation: bool = True) -> dict:
    return {
        "epoch": list(range(epochs)),
        "loss": [1 / (e + 1) for e in range(epochs)],
        "accuracy": [1 - 1 / (e + 2) for e in range(epochs)],
        "val_loss": [1.1 / (e + 1) if with_validation else None for e in range(epochs)],
        "val_accuracy": [0.9 - 1 / (e + 3) if with_validation else None for e in range(epochs)],
    }


@pytest.mark.parametrize(("epochs", "with_validation"), [(0, True), (1, False), (5, True),
                                                         (40, True)])
def test_history_png(epochs: int, with_validation: bool) -> None:
    decode(plots.history_png(history(epochs, with_validation), title="run"))


def test_history_png_is_wider_than_tall() -> None:
    width, height = decode(plots.history_png(history(3))).size
    assert width > height, "two panels side by side"


@pytest.mark.parametrize("layers", [0, 1, 3])
def test_weights_png(layers: int) -> None:
    rng = np.random.default_rng(0)
    stats = [kernel_stats(f"dense_{i}", rng.normal(0, 0.1, (50, 20))).as_dict()
             for i in range(layers)]
    decode(plots.weights_png(stats, title="weights"))


def test_value_histogram_png() -> None:
    x = load_dataset("mnist").x_train[:100] / 255.0
    decode(plots.value_histogram_png(x))


@pytest.mark.parametrize("count", [0, 1, 30])
def test_image_grid_png(count: int) -> None:
    mnist = load_dataset("mnist")
    images = mnist.x_train[:count]
    captions = [CLASS_NAMES["mnist"][int(y)] for y in mnist.y_train[:count]]
    decode(plots.image_grid_png(images, captions, columns=10, title="samples"))


def test_confusion_png() -> None:
    labels = load_dataset("fashion_mnist").y_test
    matrix = np.zeros((10, 10), dtype=int)
    np.add.at(matrix, (labels, np.roll(labels, 1)), 1)
    decode(plots.confusion_png(matrix.tolist(), CLASS_NAMES["fashion_mnist"]))
    decode(plots.confusion_png(np.zeros((10, 10), dtype=int).tolist(), CLASS_NAMES["mnist"]))


def test_overlay_png_with_gaps_and_no_series() -> None:
    decode(plots.overlay_png({"scaled": [0.9, 0.95, None], "vanilla": [0.8]}, "val_accuracy"))
    decode(plots.overlay_png({}, "loss"))


def test_plots_can_be_drawn_from_several_threads() -> None:
    """The API draws in worker threads: no shared pyplot state."""
    results: list[bytes] = []
    errors: list[BaseException] = []

    def draw(i: int) -> None:
        try:
            results.append(plots.history_png(history(3 + i), title=f"thread {i}"))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=draw, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(results) == 4
    for png in results:
        decode(png)
