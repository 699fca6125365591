"""The job store: every read and write of experiments goes through these functions.

Keyword-only arguments, one session passed in; the caller owns the transaction.
Writes from a worker carry the attempt number they were started with, and are refused once a
newer attempt owns the job, so a job can never be written by two runs at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from common.models import (
    CANCELLED,
    FAILED,
    QUEUED,
    RUNNING,
    TERMINAL,
    EpochMetric,
    Experiment,
    Sweep,
    utcnow,
)

HISTORY_FIELDS = ("loss", "accuracy", "val_loss", "val_accuracy", "learning_rate", "seconds")


class StaleAttempt(RuntimeError):
    """A write came from an attempt that no longer owns the job."""


@dataclass(frozen=True)
class Page:
    items: Sequence[Experiment]
    total: int


def create_experiment(
    session: Session,
    *,
    spec: dict[str, Any],
    spec_hash: str,
    epochs_total: int,
    name: str | None = None,
    recipe: str | None = None,
    owner: str | None = None,
    sweep_id: str | None = None,
) -> Experiment:
    experiment = Experiment(
        spec=spec, spec_hash=spec_hash, epochs_total=epochs_total, name=name, recipe=recipe,
        owner=owner, sweep_id=sweep_id, status=QUEUED, epochs_done=0, attempt=0,
        cancel_requested=False, created_at=utcnow(),
    )
    session.add(experiment)
    session.flush()
    return experiment


def get_experiment(
    session: Session, *, experiment_id: str, owner: str | None = None
) -> Experiment | None:
    experiment = session.get(Experiment, experiment_id)
    if experiment is None or (owner is not None and experiment.owner != owner):
        return None
    return experiment


def list_experiments(
    session: Session,
    *,
    status: str | None = None,
    name: str | None = None,
    recipe: str | None = None,
    sweep_id: str | None = None,
    owner: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> Page:
    query = select(Experiment)
    for column, value in ((Experiment.status, status), (Experiment.name, name),
                          (Experiment.recipe, recipe), (Experiment.sweep_id, sweep_id),
                          (Experiment.owner, owner)):
        if value is not None:
            query = query.where(column == value)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(
        query.order_by(Experiment.created_at.desc(), Experiment.id.desc())
        .limit(limit).offset(offset)
    ).all()
    return Page(items=rows, total=total)


def start_attempt(session: Session, *, experiment_id: str) -> int | None:
    """Claim a queued (or re-queued) job for a new attempt; None if it must not run."""
    experiment = session.get(Experiment, experiment_id, with_for_update=True)
    if experiment is None or experiment.status in TERMINAL:
        return None
    if experiment.cancel_requested:
        _finish(experiment, status=CANCELLED, error=None)
        return None
    experiment.attempt += 1
    experiment.status = RUNNING
    experiment.started_at = experiment.started_at or utcnow()
    experiment.heartbeat_at = utcnow()
    return experiment.attempt


def _owned(session: Session, experiment_id: str, attempt: int) -> Experiment:
    experiment = session.get(Experiment, experiment_id, with_for_update=True)
    if experiment is None or experiment.attempt != attempt or experiment.status != RUNNING:
        raise StaleAttempt(f"experiment {experiment_id}: attempt {attempt} no longer owns it")
    return experiment


def record_epoch(
    session: Session, *, experiment_id: str, attempt: int, epoch: int, metrics: dict[str, Any]
) -> None:
    """Store one finished epoch; a repeat of an epoch already stored replaces nothing."""
    experiment = _owned(session, experiment_id, attempt)
    if session.get(EpochMetric, (experiment_id, epoch)) is None:
        session.add(EpochMetric(experiment_id=experiment_id, epoch=epoch, attempt=attempt,
                                **{k: metrics.get(k) for k in HISTORY_FIELDS}))
    experiment.epochs_done = max(experiment.epochs_done, epoch + 1)
    experiment.heartbeat_at = utcnow()


def heartbeat(session: Session, *, experiment_id: str, attempt: int) -> bool:
    """Renew the lease; returns whether a cancel was requested."""
    experiment = _owned(session, experiment_id, attempt)
    experiment.heartbeat_at = utcnow()
    return experiment.cancel_requested


def finish(
    session: Session,
    *,
    experiment_id: str,
    attempt: int,
    status: str,
    metrics: dict[str, Any] | None = None,
    error: str | None = None,
) -> None:
    experiment = _owned(session, experiment_id, attempt)
    experiment.metrics = metrics
    _finish(experiment, status=status, error=error)


def _finish(experiment: Experiment, *, status: str, error: str | None) -> None:
    experiment.status = status
    experiment.error = error
    experiment.finished_at = utcnow()
    experiment.heartbeat_at = None


def fail(session: Session, *, experiment_id: str, error: str) -> None:
    """Fail a job whatever attempt holds it (used when no attempt can finish it any more)."""
    experiment = session.get(Experiment, experiment_id, with_for_update=True)
    if experiment is not None and experiment.status not in TERMINAL:
        _finish(experiment, status=FAILED, error=error)


def request_cancel(session: Session, *, experiment: Experiment) -> None:
    """A queued job is cancelled at once; a running one is asked to stop."""
    if experiment.status == QUEUED:
        experiment.cancel_requested = True
        _finish(experiment, status=CANCELLED, error=None)
    elif experiment.status == RUNNING:
        experiment.cancel_requested = True


def delete_experiment(session: Session, *, experiment: Experiment) -> None:
    session.execute(delete(EpochMetric).where(EpochMetric.experiment_id == experiment.id))
    session.delete(experiment)


def history(session: Session, *, experiment_id: str) -> dict[str, list[Any]]:
    """Per-epoch metrics in Keras's History.history shape."""
    rows = session.execute(
        select(EpochMetric.epoch, *(getattr(EpochMetric, k) for k in HISTORY_FIELDS))
        .where(EpochMetric.experiment_id == experiment_id)
        .order_by(EpochMetric.epoch)
    ).all()
    columns = list(zip(*rows, strict=False)) or [()] * (len(HISTORY_FIELDS) + 1)
    return {"epoch": list(columns[0]),
            **{k: list(columns[i + 1]) for i, k in enumerate(HISTORY_FIELDS)}}


def epochs_after(session: Session, *, experiment_id: str, after: int) -> list[EpochMetric]:
    return list(session.scalars(
        select(EpochMetric)
        .where(EpochMetric.experiment_id == experiment_id, EpochMetric.epoch > after)
        .order_by(EpochMetric.epoch)
    ))


def create_sweep(session: Session, *, name: str | None, base: dict[str, Any],
                 grid: dict[str, Any], owner: str | None = None) -> Sweep:
    sweep = Sweep(name=name, base=base, grid=grid, owner=owner, created_at=utcnow())
    session.add(sweep)
    session.flush()
    return sweep


def get_sweep(session: Session, *, sweep_id: str, owner: str | None = None) -> Sweep | None:
    sweep = session.get(Sweep, sweep_id)
    if sweep is None or (owner is not None and sweep.owner != owner):
        return None
    return sweep


def sweep_experiments(session: Session, *, sweep_id: str) -> list[Experiment]:
    return list(session.scalars(select(Experiment).where(Experiment.sweep_id == sweep_id)
                                .order_by(Experiment.created_at, Experiment.id)))


def experiments_by_ids(session: Session, *, ids: Sequence[str],
                       owner: str | None = None) -> list[Experiment]:
    found = {e.id: e for e in session.scalars(select(Experiment).where(Experiment.id.in_(ids)))
             if owner is None or e.owner == owner}
    return [found[i] for i in ids if i in found]
