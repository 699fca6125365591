"""Write a finished run's files: the saved model, result.json and the PNG plots.

Layout of one run's folder (names are what the API serves):
    model.keras  spec.json  result.json  plots/{history,weights,input_histogram,samples,
    confusion,mistakes}.png
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from trainer.data import CLASS_NAMES, Dataset

if TYPE_CHECKING:
    from trainer.spec import ExperimentSpec
    from trainer.train import TrainingResult

MODEL_FILE = "model.keras"
RESULT_FILE = "result.json"
SPEC_FILE = "spec.json"
PLOTS_DIR = "plots"
PLOT_NAMES = ("history", "weights", "input_histogram", "samples", "confusion", "mistakes")
SAMPLE_COUNT = 1000  # images whose preprocessed pixels make the input histogram


def _write_atomic(path: Path, data: bytes) -> None:
    """Readers never see half a file: write beside it, then rename over it."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def write_result_json(out_dir: Path, result: TrainingResult) -> None:
    _write_atomic(out_dir / RESULT_FILE, json.dumps(result.as_dict(), indent=1).encode())


def write_all(out_dir: Path, *, spec: ExperimentSpec, model: Any, result: TrainingResult,
              data: Dataset, x_test: np.ndarray) -> dict[str, str]:
    from trainer import plots  # matplotlib loads only where plots are drawn

    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / PLOTS_DIR).mkdir(exist_ok=True)
    _write_atomic(out_dir / SPEC_FILE, spec.model_dump_json(indent=1).encode())
    tmp_model = out_dir / f".tmp-{MODEL_FILE}"
    model.save(tmp_model)
    os.replace(tmp_model, out_dir / MODEL_FILE)

    title = spec.name or ""
    names = CLASS_NAMES[data.name]
    evaluation = result.evaluation
    mistakes = evaluation.worst_mistakes
    sample = data.x_train[:SAMPLE_COUNT]
    figures = {
        "history": plots.history_png(result.history, title),
        "weights": plots.weights_png([w.as_dict() for w in result.weights], title),
        "input_histogram": plots.value_histogram_png(result.affine.apply(sample)),
        "samples": plots.image_grid_png(data.x_train[:30],
                                        [names[int(y)] for y in data.y_train[:30]]),
        "confusion": plots.confusion_png(evaluation.confusion_matrix, names),
        "mistakes": plots.image_grid_png(
            x_test[[m.index for m in mistakes]] if mistakes else np.zeros((0, 28, 28)),
            [f"{names[m.label]}→{names[m.predicted]} {m.confidence:.2f}" for m in mistakes],
            columns=5, title="most confident mistakes (true→predicted)"),
    }
    for name, png in figures.items():
        _write_atomic(out_dir / PLOTS_DIR / f"{name}.png", png)
    paths = {"model": MODEL_FILE, "spec": SPEC_FILE, "result": RESULT_FILE}
    paths.update({name: f"{PLOTS_DIR}/{name}.png" for name in figures})
    return paths
