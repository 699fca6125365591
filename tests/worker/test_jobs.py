"""worker.jobs.run_experiment with a real SQLite store and real (small) training, no broker."""

from __future__ import annotations

import pytest

from common import store
from common.db import session_scope
from common.settings import Settings
from trainer.recipes import recipe_spec
from worker.jobs import run_experiment


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(home=tmp_path, instance="jobs-test", heartbeat_seconds=0.05,
                    stale_after_seconds=5)


def _queue(settings: Settings, **overrides) -> str:
    spec = recipe_spec("scaled", {"data": {"max_train_samples": 300, "max_test_samples": 200},
                                  "training": {"batch_size": 32}, **overrides})
    with session_scope(settings.database) as session:
        return store.create_experiment(session, spec=spec.model_dump(mode="json"),
                                       spec_hash=spec.spec_hash(),
                                       epochs_total=spec.training.epochs).id


def _load(settings: Settings, job: str):
    with session_scope(settings.database) as session:
        return (store.get_experiment(session, experiment_id=job),
                store.history(session, experiment_id=job))


def test_success_records_every_epoch_and_final_metrics(settings: Settings) -> None:
    job = _queue(settings, training={"epochs": 3, "batch_size": 32})
    run_experiment(settings, job)
    experiment, history = _load(settings, job)
    assert experiment.status == "succeeded", experiment.error
    assert history["epoch"] == [0, 1, 2] and experiment.epochs_done == 3
    assert experiment.metrics["epochs_run"] == 3
    assert experiment.metrics["test_accuracy"] == pytest.approx(history["val_accuracy"][-1],
                                                                abs=1e-6)
    assert experiment.metrics["best_epoch"] in (0, 1, 2)
    assert (settings.experiment_dir(job) / "model.keras").is_file()


def test_cancel_request_stops_it_with_whole_epochs_kept(settings: Settings) -> None:
    job = _queue(settings, training={"epochs": 500, "batch_size": 32})

    original = store.record_epoch

    def record_then_cancel(session, **kwargs):
        original(session, **kwargs)
        if kwargs["epoch"] == 1:  # a user presses cancel after the second epoch
            store.get_experiment(session, experiment_id=job).cancel_requested = True

    store.record_epoch = record_then_cancel
    try:
        run_experiment(settings, job)
    finally:
        store.record_epoch = original
    experiment, history = _load(settings, job)
    assert experiment.status == "cancelled"
    assert history["epoch"] == list(range(len(history["epoch"])))
    assert 2 <= len(history["epoch"]) <= 3


def test_already_cancelled_job_is_not_run(settings: Settings) -> None:
    job = _queue(settings)
    with session_scope(settings.database) as session:
        store.request_cancel(session, experiment=store.get_experiment(session, experiment_id=job))
    run_experiment(settings, job)
    experiment, history = _load(settings, job)
    assert experiment.status == "cancelled" and experiment.attempt == 0
    assert history["epoch"] == []


def test_failure_is_recorded_with_the_reason(settings: Settings, monkeypatch) -> None:
    from trainer import data

    def unavailable(name: str):
        raise OSError("no network here")

    monkeypatch.setenv("MNISTLAB_DATA_DIR", str(settings.home))  # holds no data set
    monkeypatch.setattr(data, "_from_keras", unavailable)
    data.load_dataset.cache_clear()
    try:
        job = _queue(settings, data={"dataset": "fashion_mnist", "max_train_samples": 100})
        run_experiment(settings, job)
    finally:
        data.load_dataset.cache_clear()
    experiment, _ = _load(settings, job)
    assert experiment.status == "failed"
    assert "DatasetUnavailable" in experiment.error and "MNISTLAB_DATA_DIR" in experiment.error
