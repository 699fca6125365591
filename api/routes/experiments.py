"""/experiments: submit, list, read, cancel and delete training jobs."""

from __future__ import annotations

import re
import shutil
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from api.auth import OwnerDep
from api.deps import SessionDep, SettingsDep
from api.errors import clean_errors
from api.queue import enqueue_training
from api.schemas import (
    DryRunOut,
    ErrorOut,
    ExperimentOut,
    ExperimentPage,
    ExperimentRequest,
    HistoryOut,
    Links,
    RecipeRequest,
    ValidationErrorOut,
)
from common import store
from common.models import TERMINAL, Experiment, as_utc
from trainer.recipes import UnknownRecipe, recipe_spec
from trainer.spec import ExperimentSpec
from trainer.summary import summarize

router = APIRouter(prefix="/experiments", tags=["experiments"])

ID_PATTERN = re.compile(r"^[0-9a-f]{32}$")
NOT_FOUND = {404: {"model": ErrorOut, "description": "No such experiment"}}
INVALID = {422: {"model": ValidationErrorOut, "description": "The spec breaks a rule"}}
StatusFilter = Literal["queued", "running", "succeeded", "failed", "cancelled"]


def to_out(experiment: Experiment) -> ExperimentOut:
    base = f"/experiments/{experiment.id}"
    return ExperimentOut(
        id=experiment.id, name=experiment.name, recipe=experiment.recipe,
        status=experiment.status, spec=experiment.spec, spec_hash=experiment.spec_hash,
        created_at=as_utc(experiment.created_at), started_at=as_utc(experiment.started_at),
        finished_at=as_utc(experiment.finished_at), epoch=experiment.epochs_done,
        epochs=experiment.epochs_total, attempt=experiment.attempt,
        cancel_requested=experiment.cancel_requested, metrics=experiment.metrics,
        error=experiment.error, sweep_id=experiment.sweep_id,
        links=Links(self=base, history=f"{base}/history", events=f"{base}/events",
                    cancel=f"{base}/cancel"),
    )


def find_experiment(session: Any, experiment_id: str, owner: str | None) -> Experiment:
    """The experiment or a 404; ids are checked by shape before they go anywhere."""
    experiment = (store.get_experiment(session, experiment_id=experiment_id, owner=owner)
                  if ID_PATTERN.match(experiment_id) else None)
    if experiment is None:
        raise HTTPException(status_code=404, detail=f"experiment {experiment_id!r} not found")
    return experiment


def resolve_spec(body: RecipeRequest | ExperimentSpec) -> tuple[ExperimentSpec, str | None]:
    """The spec to run, and the recipe it came from."""
    if isinstance(body, ExperimentSpec):
        return body, None
    try:
        return recipe_spec(body.recipe, body.overrides), body.recipe
    except UnknownRecipe as exc:
        raise RequestValidationError(
            [{"loc": ("body", "recipe"), "msg": str(exc), "type": "unknown_recipe"}]) from exc
    except ValidationError as exc:
        raise RequestValidationError(
            clean_errors(exc.errors(), prefix=("body", "overrides"))) from exc


def submit(session: SessionDep, request: Request, spec: ExperimentSpec, recipe: str | None,
           owner: str | None) -> Experiment:
    """Store a queued job, then hand it to the broker; a dead broker leaves nothing behind."""
    experiment = store.create_experiment(
        session, spec=spec.model_dump(mode="json"), spec_hash=spec.spec_hash(),
        epochs_total=spec.training.epochs, name=spec.name or recipe, recipe=recipe, owner=owner)
    session.commit()
    try:
        enqueue_training(request.app.state.celery, experiment.id)
    except HTTPException:
        session.delete(experiment)
        session.commit()
        raise
    return experiment


@router.post(
    "",
    status_code=201,
    response_model=ExperimentOut | DryRunOut,
    responses={**INVALID, 503: {"model": ErrorOut, "description": "Broker unavailable"},
               200: {"model": DryRunOut, "description": "dry_run=true: validated, not queued"}},
    summary="Submit an experiment (a full spec, or a recipe with overrides)",
)
def create_experiment(
    body: ExperimentRequest,
    session: SessionDep,
    owner: OwnerDep,
    request: Request,
    response: Response,
    dry_run: Annotated[bool, Query(description="Validate and summarise only")] = False,
) -> ExperimentOut | DryRunOut:
    spec, recipe = resolve_spec(body)
    if dry_run:
        response.status_code = 200
        return DryRunOut(spec=spec.model_dump(mode="json"), spec_hash=spec.spec_hash(),
                         summary=summarize(spec))
    experiment = submit(session, request, spec, recipe, owner)
    response.headers["Location"] = f"/experiments/{experiment.id}"
    return to_out(experiment)


@router.get("", response_model=ExperimentPage, summary="List experiments, newest first")
def list_experiments(
    session: SessionDep,
    owner: OwnerDep,
    status: StatusFilter | None = None,
    name: Annotated[str | None, Query(max_length=120)] = None,
    recipe: Annotated[str | None, Query(max_length=64)] = None,
    sweep_id: Annotated[str | None, Query(max_length=32)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
) -> ExperimentPage:
    page = store.list_experiments(session, status=status, name=name, recipe=recipe,
                                  sweep_id=sweep_id, owner=owner, limit=limit,
                                  offset=offset)
    return ExperimentPage(items=[to_out(e) for e in page.items], total=page.total,
                          limit=limit, offset=offset)


@router.get("/{experiment_id}", response_model=ExperimentOut, responses=NOT_FOUND)
def get_experiment(experiment_id: str, session: SessionDep, owner: OwnerDep) -> ExperimentOut:
    return to_out(find_experiment(session, experiment_id, owner))


@router.get("/{experiment_id}/history", response_model=HistoryOut, responses=NOT_FOUND,
            summary="Per-epoch metrics so far, in Keras's History.history shape")
def get_history(experiment_id: str, session: SessionDep, owner: OwnerDep) -> dict[str, list[Any]]:
    find_experiment(session, experiment_id, owner)
    return store.history(session, experiment_id=experiment_id)


@router.post(
    "/{experiment_id}/cancel", response_model=ExperimentOut,
    responses={**NOT_FOUND, 409: {"model": ErrorOut, "description": "Already ended"}},
    summary="Cancel: a queued job never starts; a running one stops within an epoch",
)
def cancel_experiment(experiment_id: str, session: SessionDep, owner: OwnerDep) -> ExperimentOut:
    experiment = find_experiment(session, experiment_id, owner)
    if experiment.status in TERMINAL:
        raise HTTPException(409, f"experiment {experiment_id} already {experiment.status}")
    store.request_cancel(session, experiment=experiment)
    session.commit()
    return to_out(experiment)


@router.delete(
    "/{experiment_id}", status_code=204,
    responses={**NOT_FOUND, 409: {"model": ErrorOut, "description": "Still queued or running"}},
    summary="Delete a finished job's record and artifacts",
)
def delete_experiment(experiment_id: str, session: SessionDep, owner: OwnerDep,
                      settings: SettingsDep) -> Response:
    experiment = find_experiment(session, experiment_id, owner)
    if experiment.status not in TERMINAL:
        raise HTTPException(409, f"experiment {experiment_id} is {experiment.status}; "
                                 "cancel it first")
    store.delete_experiment(session, experiment=experiment)
    session.commit()
    shutil.rmtree(settings.experiment_dir(experiment.id), ignore_errors=True)
    return Response(status_code=204)
