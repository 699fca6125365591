"""The job store on SQLite (a real file) and on the PostgreSQL of this machine."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import OperationalError

from common import store
from common.db import session_factory, session_scope
from common.models import CANCELLED, FAILED, QUEUED, RUNNING, SUCCEEDED, utcnow

POSTGRES_ADMIN_URL = os.environ.get(
    "MNISTLAB_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def _postgres_database() -> Iterator[str]:
    admin = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"mnistlab_test_{uuid.uuid4().hex[:8]}"
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except OperationalError as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"no PostgreSQL at {POSTGRES_ADMIN_URL} ({exc.orig}); "
                    "set MNISTLAB_TEST_POSTGRES_URL")
    url = admin.url.set(database=name).render_as_string(hide_password=False)
    yield url
    session_factory(url).kw["bind"].dispose()
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
    else:
        yield from _postgres_database()


def _new(session, epochs: int = 3, **kwargs) -> str:
    return store.create_experiment(session, spec={"training": {"epochs": epochs}},
                                   spec_hash="h" * 64, epochs_total=epochs, **kwargs).id


def _metrics(epoch: int) -> dict:
    return {"loss": 1.0 / (epoch + 1), "accuracy": 0.5 + epoch / 10, "val_loss": 0.9,
            "val_accuracy": 0.6, "learning_rate": 0.001, "seconds": 0.5}


def test_lifecycle_and_history(db_url: str) -> None:
    with session_scope(db_url) as session:
        job = _new(session, name="n", recipe="scaled")
    with session_scope(db_url) as session:
        assert store.get_experiment(session, experiment_id=job).status == QUEUED
        attempt = store.start_attempt(session, experiment_id=job)
    assert attempt == 1
    for epoch in range(3):
        with session_scope(db_url) as session:
            store.record_epoch(session, experiment_id=job, attempt=attempt, epoch=epoch,
                               metrics=_metrics(epoch))
    with session_scope(db_url) as session:
        store.finish(session, experiment_id=job, attempt=attempt, status=SUCCEEDED,
                     metrics={"test_accuracy": 0.97})
    with session_scope(db_url) as session:
        experiment = store.get_experiment(session, experiment_id=job)
        assert (experiment.status, experiment.epochs_done) == (SUCCEEDED, 3)
        assert experiment.metrics == {"test_accuracy": 0.97}
        assert experiment.finished_at >= experiment.started_at >= experiment.created_at
        history = store.history(session, experiment_id=job)
    assert history["epoch"] == [0, 1, 2]
    assert history["loss"] == [1.0, 0.5, pytest.approx(1 / 3)]
    assert set(history) == {"epoch", *store.HISTORY_FIELDS}


def test_one_row_per_epoch_even_when_reported_twice(db_url: str) -> None:
    with session_scope(db_url) as session:
        job = _new(session)
        attempt = store.start_attempt(session, experiment_id=job)
    for _ in range(2):
        with session_scope(db_url) as session:
            store.record_epoch(session, experiment_id=job, attempt=attempt, epoch=0,
                               metrics=_metrics(0))
    with session_scope(db_url) as session:
        assert store.history(session, experiment_id=job)["epoch"] == [0]
        session.add(store.EpochMetric(experiment_id=job, epoch=0, loss=1, accuracy=1, seconds=1))
        with pytest.raises(sa.exc.IntegrityError):
            session.flush()


def test_writes_from_a_stale_attempt_are_refused(db_url: str) -> None:
    with session_scope(db_url) as session:
        job = _new(session)
        first = store.start_attempt(session, experiment_id=job)
    with session_scope(db_url) as session:
        assert store.start_attempt(session, experiment_id=job) is None, "lease still fresh"
        second = store.start_attempt(session, experiment_id=job,
                                     stale_before=utcnow() + timedelta(seconds=1))
    assert second == first + 1
    with pytest.raises(store.StaleAttempt), session_scope(db_url) as session:
        store.record_epoch(session, experiment_id=job, attempt=first, epoch=0,
                           metrics=_metrics(0))
    with pytest.raises(store.StaleAttempt), session_scope(db_url) as session:
        store.finish(session, experiment_id=job, attempt=first, status=SUCCEEDED)
    with session_scope(db_url) as session:
        assert store.get_experiment(session, experiment_id=job).status == RUNNING
        assert store.history(session, experiment_id=job)["epoch"] == []


def test_cancel_queued_then_running(db_url: str) -> None:
    with session_scope(db_url) as session:
        queued, running = _new(session), _new(session)
        attempt = store.start_attempt(session, experiment_id=running)
    with session_scope(db_url) as session:
        store.request_cancel(session, experiment=store.get_experiment(
            session, experiment_id=queued))
        store.request_cancel(session, experiment=store.get_experiment(
            session, experiment_id=running))
    with session_scope(db_url) as session:
        assert store.get_experiment(session, experiment_id=queued).status == CANCELLED
        assert store.start_attempt(session, experiment_id=queued) is None
        assert store.heartbeat(session, experiment_id=running, attempt=attempt) is True
        assert store.get_experiment(session, experiment_id=running).status == RUNNING


def test_list_filters_and_pages(db_url: str) -> None:
    with session_scope(db_url) as session:
        ids = [_new(session, name=f"n{i}", recipe="r" if i % 2 else None, owner="k")
               for i in range(5)]
        assert store.fail_if(session, experiment_id=ids[0], status=QUEUED, attempt=0, error="boom")
    with session_scope(db_url) as session:
        page = store.list_experiments(session, limit=2)
        assert page.total == 5 and len(page.items) == 2
        assert store.list_experiments(session, status=FAILED).items[0].error == "boom"
        assert store.list_experiments(session, recipe="r").total == 2
        assert store.list_experiments(session, name="n3").items[0].id == ids[3]
        assert store.list_experiments(session, owner="other").total == 0


def test_delete_removes_epochs(db_url: str) -> None:
    with session_scope(db_url) as session:
        job = _new(session)
        attempt = store.start_attempt(session, experiment_id=job)
        store.record_epoch(session, experiment_id=job, attempt=attempt, epoch=0,
                           metrics=_metrics(0))
    with session_scope(db_url) as session:
        store.delete_experiment(session, experiment=store.get_experiment(
            session, experiment_id=job))
    with session_scope(db_url) as session:
        assert store.get_experiment(session, experiment_id=job) is None
        assert session.scalar(sa.select(sa.func.count()).select_from(store.EpochMetric)) == 0


def test_claims_are_compare_and_set_and_capped(db_url: str) -> None:
    later = utcnow() + timedelta(seconds=1)
    with session_scope(db_url) as session:
        job = _new(session)
    for expected in (1, 2):
        with session_scope(db_url) as session:
            assert store.start_attempt(session, experiment_id=job, stale_before=later,
                                       max_attempts=2) == expected
    with session_scope(db_url) as session:
        assert store.start_attempt(session, experiment_id=job, stale_before=later,
                                   max_attempts=2) is None
    with session_scope(db_url) as session:
        experiment = store.get_experiment(session, experiment_id=job)
        assert experiment.status == FAILED and experiment.error == "worker lost, 2 attempts"


def test_requeue_and_fail_if_only_act_on_the_state_they_saw(db_url: str) -> None:
    with session_scope(db_url) as session:
        job = _new(session)
        attempt = store.start_attempt(session, experiment_id=job)
    with session_scope(db_url) as session:
        assert not store.requeue(session, experiment_id=job, status=RUNNING, attempt=attempt + 1)
        assert store.requeue(session, experiment_id=job, status=RUNNING, attempt=attempt)
        assert not store.fail_if(session, experiment_id=job, status=RUNNING, attempt=attempt,
                                 error="x")
    with session_scope(db_url) as session:
        experiment = store.get_experiment(session, experiment_id=job)
        assert experiment.status == QUEUED and experiment.attempt == attempt
        stale = store.waiting_since(session, before=utcnow() + timedelta(seconds=1))
        assert [e.id for e in stale] == [job]
