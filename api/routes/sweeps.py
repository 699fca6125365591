"""/sweeps: one experiment per point of a grid over spec fields, reported as a table."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field

from api.auth import OwnerDep
from api.deps import SessionDep, SettingsDep
from api.grid import GridError, expand, label
from api.queue import enqueue_training
from api.routes.experiments import INVALID, resolve_spec
from api.schemas import ErrorOut, ExperimentRequest
from common import store
from common.models import as_utc

router = APIRouter(prefix="/sweeps", tags=["sweeps"])


class SweepRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, max_length=80, pattern=r"^[^\x00-\x1f]*$")
    base: ExperimentRequest = Field(description="A spec, or {recipe, overrides}")
    grid: dict[str, list[Any]] = Field(
        ..., min_length=1, max_length=8,
        description="Dotted spec paths to lists of values, e.g. "
                    '{"training.batch_size": [32, 30000], "optimizer.name": ["adam", "sgd"]}',
        examples=[{"training.batch_size": [32, 1024], "optimizer.learning_rate": [0.001, 0.01]}])


class SweepRun(BaseModel):
    experiment_id: str
    point: dict[str, Any]
    status: str
    epoch: int
    epochs: int
    test_accuracy: float | None
    train_accuracy: float | None
    best_val_accuracy: float | None
    best_epoch: int | None


class SweepOut(BaseModel):
    id: str
    name: str | None
    created_at: datetime
    grid: dict[str, list[Any]]
    status: dict[str, int] = Field(description="How many runs are in each status")
    runs: list[SweepRun]
    links: dict[str, str]


def sweep_out(session: Any, sweep: Any) -> SweepOut:
    runs, counts = [], {}
    points = sweep.base.get("points", {})
    for experiment in store.sweep_experiments(session, sweep_id=sweep.id):
        metrics = experiment.metrics or {}
        counts[experiment.status] = counts.get(experiment.status, 0) + 1
        runs.append(SweepRun(
            experiment_id=experiment.id, point=points.get(experiment.id, {}),
            status=experiment.status, epoch=experiment.epochs_done,
            epochs=experiment.epochs_total, test_accuracy=metrics.get("test_accuracy"),
            train_accuracy=metrics.get("train_accuracy"),
            best_val_accuracy=metrics.get("best_val_accuracy"),
            best_epoch=metrics.get("best_epoch")))
    ids = ",".join(r.experiment_id for r in runs)
    return SweepOut(id=sweep.id, name=sweep.name, created_at=as_utc(sweep.created_at), grid=sweep.grid,
                    status=counts, runs=runs,
                    links={"compare": f"/compare?ids={ids}",
                           "plot": f"/compare/plot.png?ids={ids}&metric=val_accuracy"})


@router.post("", status_code=201, response_model=SweepOut,
             responses={**INVALID, 503: {"model": ErrorOut}},
             summary="Queue one experiment per point of a grid")
def create_sweep(body: SweepRequest, session: SessionDep, owner: OwnerDep, settings: SettingsDep,
                 request: Request, response: Response) -> SweepOut:
    base, recipe = resolve_spec(body.base)
    size = 1
    for values in body.grid.values():
        size *= len(values)
    if size == 0 or size > settings.max_sweep_points:
        raise RequestValidationError([{"loc": ("body", "grid"), "type": "value_error",
                                       "msg": f"the grid has {size} points; "
                                              f"allowed 1..{settings.max_sweep_points}"}])
    try:
        points = expand(base, body.grid)
    except GridError as exc:
        raise RequestValidationError([{"loc": ("body", *exc.loc), "msg": exc.msg,
                                       "type": "value_error"}]) from None
    sweep = store.create_sweep(session, name=body.name, grid=body.grid, owner=owner,
                               base={"spec": base.model_dump(mode="json"), "recipe": recipe,
                                     "points": {}})
    created = []
    for point, spec in points:
        title = f"{body.name or base.name or recipe or 'sweep'} [{label(point)}]"
        spec = spec.model_copy(update={"name": title[:120]})
        created.append((point, store.create_experiment(
            session, spec=spec.model_dump(mode="json"), spec_hash=spec.spec_hash(),
            epochs_total=spec.training.epochs, name=spec.name, recipe=recipe,
            owner=owner, sweep_id=sweep.id)))
    sweep.base = {**sweep.base, "points": {e.id: p for p, e in created}}
    session.commit()
    try:
        for _point, experiment in created:
            enqueue_training(request.app.state.celery, experiment.id)
    except HTTPException:
        for _point, experiment in created:  # a run whose message got out finds no row: no-op
            store.delete_experiment(session, experiment=experiment)
        session.delete(sweep)
        session.commit()
        raise
    response.headers["Location"] = f"/sweeps/{sweep.id}"
    return sweep_out(session, sweep)


@router.get("/{sweep_id}", response_model=SweepOut, responses={404: {"model": ErrorOut}})
def read_sweep(sweep_id: str, session: SessionDep, owner: OwnerDep) -> SweepOut:
    sweep = (store.get_sweep(session, sweep_id=sweep_id, owner=owner)
             if len(sweep_id) <= 32 else None)
    if sweep is None:
        raise HTTPException(404, f"sweep {sweep_id!r} not found")
    return sweep_out(session, sweep)
