"""PNG figures with matplotlib's object API (headless, thread-safe: no pyplot state)."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


def _png(fig: Figure) -> bytes:
    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    return buffer.getvalue()


def history_png(history: Mapping[str, Sequence[Any]], title: str = "") -> bytes:
    """The chapter's two panels: loss and accuracy per epoch, train vs test."""
    fig = Figure(figsize=(11, 4))
    epochs = [e + 1 for e in history.get("epoch", [])]
    for ax, metric in zip(fig.subplots(1, 2), ("loss", "accuracy"), strict=True):
        ax.plot(epochs, history.get(metric, []), label="train", marker="." if len(epochs) < 30 else None)
        if any(v is not None for v in history.get(f"val_{metric}", [])):
            ax.plot(epochs, history[f"val_{metric}"], label="test",
                    marker="." if len(epochs) < 30 else None)
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.set_title(metric)
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    return _png(fig)


def weights_png(stats: Sequence[Mapping[str, Any]], title: str = "") -> bytes:
    """One histogram per layer's kernel, with the share of weights beyond +-0.2."""
    fig = Figure(figsize=(4.2 * max(1, len(stats)), 3.6))
    axes = np.atleast_1d(fig.subplots(1, max(1, len(stats))))
    for ax, layer in zip(axes, stats, strict=False):
        edges = np.asarray(layer["histogram_edges"])
        ax.bar(edges[:-1], layer["histogram_counts"], width=np.diff(edges), align="edge")
        ax.set_title(f"{layer['layer']}  std={layer['std']:.3f}\n"
                     f"|w|>0.2: {100 * layer['fraction_beyond_0_2']:.1f}%", fontsize=9)
        ax.set_xlabel("weight")
        ax.set_yscale("log")
    if title:
        fig.suptitle(title)
    return _png(fig)


def value_histogram_png(values: np.ndarray, title: str = "input values after preprocessing") -> bytes:
    fig = Figure(figsize=(6, 3.6))
    ax = fig.subplots()
    ax.hist(values.ravel(), bins=50)
    ax.set_yscale("log")
    ax.set_xlabel("value")
    ax.set_ylabel("count")
    ax.set_title(title)
    return _png(fig)


def image_grid_png(images: np.ndarray, captions: Sequence[str], columns: int = 10,
                   title: str = "") -> bytes:
    """A grid of 28x28 images, each with a caption (label, or true/predicted)."""
    count = max(1, len(images))
    rows = (count + columns - 1) // columns
    fig = Figure(figsize=(1.2 * columns, 1.35 * rows + (0.4 if title else 0)))
    axes = np.atleast_1d(fig.subplots(rows, columns)).ravel()
    for i, ax in enumerate(axes):
        ax.axis("off")
        if i < len(images):
            ax.imshow(images[i], cmap="gray")
            ax.set_title(captions[i], fontsize=8)
    if title:
        fig.suptitle(title)
    return _png(fig)


def confusion_png(matrix: Sequence[Sequence[int]], class_names: Sequence[str]) -> bytes:
    data = np.asarray(matrix)
    fig = Figure(figsize=(6.5, 5.5))
    ax = fig.subplots()
    shown = ax.imshow(data, cmap="Blues")
    fig.colorbar(shown, ax=ax)
    ax.set_xticks(range(len(class_names)), class_names, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(class_names)), class_names, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    threshold = data.max() / 2 if data.size else 0
    for (i, j), value in np.ndenumerate(data):
        ax.text(j, i, str(value), ha="center", va="center", fontsize=7,
                color="white" if value > threshold else "black")
    ax.set_title("confusion matrix (test set)")
    return _png(fig)


def overlay_png(series: Mapping[str, Sequence[float | None]], metric: str, title: str = "") -> bytes:
    """Several runs' curves of one metric on one axis; the legend names each run."""
    fig = Figure(figsize=(8, 4.5))
    ax = fig.subplots()
    for label, values in series.items():
        ax.plot(range(1, len(values) + 1), [np.nan if v is None else v for v in values],
                label=label)
    ax.set_xlabel("epoch")
    ax.set_ylabel(metric)
    ax.grid(alpha=0.3)
    if series:
        ax.legend(fontsize=8)
    ax.set_title(title or metric)
    return _png(fig)
