"""The job store: every read and write of experiments goes through these functions.

Keyword-only arguments, one session passed in; the caller owns the transaction.
Writes from a worker carry the attempt number they were started with, and are refused once a
newer attempt owns the job, so a job can never be written by two runs at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, update
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
    as_utc,
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
        cancel_requested=False, created_at=utcnow(), queued_at=utcnow(),
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


def start_attempt(
    session: Session,
    *,
    experiment_id: str,
    stale_before: datetime | None = None,
    max_attempts: int | None = None,
) -> int | None:
    """Claim the job for a new attempt; None when it must not run here.

    A queued job is claimed; a running one only once its lease went stale (its worker died).
    The claim is a compare-and-set on (status, attempt), so of two workers handed the same job
    exactly one wins, on SQLite and PostgreSQL alike.
    """
    experiment = session.get(Experiment, experiment_id, populate_existing=True)
    if experiment is None or experiment.status in TERMINAL:
        return None
    if experiment.cancel_requested:
        _finish(experiment, status=CANCELLED, error=None)
        return None
    if experiment.status == RUNNING:
        beat = as_utc(experiment.heartbeat_at)
        if stale_before is None or (beat is not None and beat > stale_before):
            return None  # alive elsewhere
    if max_attempts is not None and experiment.attempt >= max_attempts:
        _finish(experiment, status=FAILED, error=f"worker lost, {experiment.attempt} attempts")
        return None
    now = utcnow()
    claimed = session.execute(
        update(Experiment)
        .where(Experiment.id == experiment_id, Experiment.status == experiment.status,
               Experiment.attempt == experiment.attempt)
        .values(attempt=experiment.attempt + 1, status=RUNNING, heartbeat_at=now,
                started_at=func.coalesce(Experiment.started_at, now))
        .execution_options(synchronize_session=False)
    ).rowcount
    if claimed != 1:
        return None
    session.refresh(experiment)
    return experiment.attempt


def stale_running(session: Session, *, stale_before: datetime) -> list[Experiment]:
    """Running jobs whose lease was last renewed before `stale_before`."""
    return list(session.scalars(select(Experiment).where(
        Experiment.status == RUNNING, Experiment.heartbeat_at < stale_before)))


def waiting_since(session: Session, *, before: datetime) -> list[Experiment]:
    """Queued jobs last handed to the broker before `before`."""
    return list(session.scalars(select(Experiment).where(
        Experiment.status == QUEUED, Experiment.queued_at < before)))


def requeue(session: Session, *, experiment_id: str, status: str, attempt: int) -> bool:
    """Put a job back to queued (from a lost run, or to send it again); compare-and-set."""
    return session.execute(
        update(Experiment)
        .where(Experiment.id == experiment_id, Experiment.status == status,
               Experiment.attempt == attempt)
        .values(status=QUEUED, queued_at=utcnow(), heartbeat_at=None)
        .execution_options(synchronize_session=False)
    ).rowcount == 1


def _owned(session: Session, experiment_id: str, attempt: int) -> Experiment:
    experiment = session.get(Experiment, experiment_id, with_for_update=True,
                             populate_existing=True)
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


def cancel_requested(session: Session, *, experiment_id: str, attempt: int) -> bool:
    """Whether the job was asked to stop; raises StaleAttempt once this attempt lost it."""
    row = session.execute(select(Experiment.cancel_requested, Experiment.status,
                                 Experiment.attempt).where(Experiment.id == experiment_id)).first()
    if row is None or row.attempt != attempt or row.status != RUNNING:
        raise StaleAttempt(f"experiment {experiment_id}: attempt {attempt} no longer owns it")
    return bool(row.cancel_requested)


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


def fail_if(session: Session, *, experiment_id: str, status: str, attempt: int,
            error: str) -> bool:
    """Fail the job if it is still in (status, attempt); compare-and-set."""
    return session.execute(
        update(Experiment)
        .where(Experiment.id == experiment_id, Experiment.status == status,
               Experiment.attempt == attempt)
        .values(status=FAILED, error=error, finished_at=utcnow(), heartbeat_at=None)
        .execution_options(synchronize_session=False)
    ).rowcount == 1


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
