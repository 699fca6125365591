"""Celery tasks: take ids, call the domain function. Heavy imports happen once per process."""

from __future__ import annotations

import logging

from celery.signals import worker_process_init

from common.db import reset_engines
from common.settings import get_settings
from worker.celery_app import TRAIN_TASK, app
from worker.jobs import run_experiment
from worker.malloc import limit_arenas

log = logging.getLogger(__name__)


@worker_process_init.connect
def _warm_up(**_kwargs: object) -> None:
    """Load TensorFlow and the data sets once per worker process, not once per job."""
    reset_engines()
    limit_arenas()  # before TensorFlow starts its threads
    import keras  # noqa: F401  (the import is the warm-up)

    from trainer.data import DatasetUnavailable, load_dataset

    try:
        load_dataset("mnist")
    except DatasetUnavailable as exc:  # the job that needs it will fail with this message
        log.warning("%s", exc)


@app.task(name=TRAIN_TASK)
def train_experiment(experiment_id: str) -> None:
    run_experiment(get_settings(), experiment_id)
