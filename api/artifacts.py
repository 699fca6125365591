"""Paths of a job's files, built only from a checked id and fixed names (never from a request)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fastapi import HTTPException

from common.models import SUCCEEDED, Experiment
from common.settings import Settings
from trainer.artifacts import MODEL_FILE, PLOT_NAMES, PLOTS_DIR, RESULT_FILE


def require_succeeded(experiment: Experiment) -> None:
    if experiment.status != SUCCEEDED:
        raise HTTPException(409, f"experiment {experiment.id} is {experiment.status}; "
                                 "its results exist once it has succeeded")


def model_path(settings: Settings, experiment: Experiment) -> Path:
    require_succeeded(experiment)
    path = settings.experiment_dir(experiment.id) / MODEL_FILE
    if not path.is_file():
        raise HTTPException(409, f"experiment {experiment.id} has no saved model")
    return path


def plot_path(settings: Settings, experiment: Experiment, name: str) -> Path:
    if name not in PLOT_NAMES:
        raise HTTPException(404, f"no plot named {name!r}")
    require_succeeded(experiment)
    path = settings.experiment_dir(experiment.id) / PLOTS_DIR / f"{name}.png"
    if not path.is_file():
        raise HTTPException(409, f"experiment {experiment.id} has no {name} plot")
    return path


def result(settings: Settings, experiment: Experiment) -> dict[str, Any]:
    require_succeeded(experiment)
    path = settings.experiment_dir(experiment.id) / RESULT_FILE
    if not path.is_file():
        raise HTTPException(409, f"experiment {experiment.id} has no result file")
    return json.loads(path.read_text())
