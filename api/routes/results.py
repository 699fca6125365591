"""A job's results: plots (PNG), summary, confusion matrix, the saved model."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import FileResponse
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from api import artifacts
from api.auth import OwnerDep
from api.deps import SessionDep, SettingsDep
from api.routes.experiments import NOT_FOUND, find_experiment
from api.schemas import ErrorOut
from common import store
from trainer.spec import ExperimentSpec
from trainer.summary import ModelSummary, summarize

router = APIRouter(prefix="/experiments", tags=["results"])

PNG = {200: {"content": {"image/png": {}}, "description": "A PNG image"}}
NOT_READY = {409: {"model": ErrorOut, "description": "The job has not succeeded (yet)"}}


class Mistake(BaseModel):
    index: int
    label: int
    predicted: int
    confidence: float


class ConfusionOut(BaseModel):
    classes: list[str]
    matrix: list[list[int]]
    per_class_accuracy: list[float]
    test_accuracy: float
    worst_mistakes: list[Mistake]
    links: dict[str, str]


def _png(data: bytes) -> Response:
    return Response(content=data, media_type="image/png")


@router.get("/{experiment_id}/plots/history.png", response_class=Response,
            responses={**PNG, **NOT_FOUND},
            summary="Loss and accuracy per epoch, train vs test (drawn live while it runs)")
async def history_plot(experiment_id: str, session: SessionDep, owner: OwnerDep) -> Response:
    from trainer.plots import history_png

    experiment = find_experiment(session, experiment_id, owner)
    history = store.history(session, experiment_id=experiment.id)
    title = f"{experiment.name or experiment.id} ({experiment.status})"
    return _png(await run_in_threadpool(history_png, history, title))


@router.get("/{experiment_id}/plots/{name}.png", response_class=FileResponse,
            responses={**PNG, **NOT_FOUND, **NOT_READY},
            summary="weights, input_histogram, samples, confusion or mistakes")
def artifact_plot(experiment_id: str, name: str, session: SessionDep, owner: OwnerDep,
                  settings: SettingsDep) -> FileResponse:
    path = artifacts.plot_path(settings, find_experiment(session, experiment_id, owner), name)
    return FileResponse(path, media_type="image/png")


@router.get("/{experiment_id}/summary", response_model=ModelSummary, responses=NOT_FOUND,
            summary="The layer table with parameter counts")
def model_summary(experiment_id: str, session: SessionDep, owner: OwnerDep) -> ModelSummary:
    experiment = find_experiment(session, experiment_id, owner)
    return summarize(ExperimentSpec.model_validate(experiment.spec))


@router.get("/{experiment_id}/confusion", response_model=ConfusionOut,
            responses={**NOT_FOUND, **NOT_READY},
            summary="Confusion matrix of the test set and the most confident mistakes")
def confusion(experiment_id: str, session: SessionDep, owner: OwnerDep,
              settings: SettingsDep) -> dict[str, Any]:
    from trainer.data import CLASS_NAMES

    experiment = find_experiment(session, experiment_id, owner)
    evaluation = artifacts.result(settings, experiment)["evaluation"]
    base = f"/experiments/{experiment.id}/plots"
    return {
        "classes": CLASS_NAMES[experiment.spec["data"]["dataset"]],
        "matrix": evaluation["confusion_matrix"],
        "per_class_accuracy": evaluation["per_class_accuracy"],
        "test_accuracy": evaluation["test_accuracy"],
        "worst_mistakes": evaluation["worst_mistakes"],
        "links": {"png": f"{base}/confusion.png", "mistakes_png": f"{base}/mistakes.png"},
    }


@router.get("/{experiment_id}/confusion.png", response_class=FileResponse,
            responses={**PNG, **NOT_FOUND, **NOT_READY})
def confusion_png(experiment_id: str, session: SessionDep, owner: OwnerDep,
                  settings: SettingsDep) -> FileResponse:
    path = artifacts.plot_path(settings, find_experiment(session, experiment_id, owner), "confusion")
    return FileResponse(path, media_type="image/png")


@router.get("/{experiment_id}/weights", responses={**NOT_FOUND, **NOT_READY},
            summary="Per-layer weight statistics and histograms (the data of weights.png)")
def weights(experiment_id: str, session: SessionDep, owner: OwnerDep, settings: SettingsDep) -> list[dict]:
    return artifacts.result(settings, find_experiment(session, experiment_id, owner))["weights"]


@router.get("/{experiment_id}/model", response_class=FileResponse,
            responses={200: {"content": {"application/octet-stream": {}}}, **NOT_FOUND,
                       **NOT_READY},
            summary="Download the saved Keras model (raw pixels in, probabilities out)")
def download_model(experiment_id: str, session: SessionDep, owner: OwnerDep,
                   settings: SettingsDep) -> FileResponse:
    experiment = find_experiment(session, experiment_id, owner)
    return FileResponse(artifacts.model_path(settings, experiment),
                        media_type="application/octet-stream",
                        filename=f"mnistlab-{experiment.id}.keras")
