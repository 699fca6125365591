"""The Celery app. Importing it is cheap (no TensorFlow): the API uses it to enqueue."""

from __future__ import annotations

from celery import Celery

from common.settings import Settings, get_settings

TRAIN_TASK = "mnistlab.train"


def make_celery(settings: Settings) -> Celery:
    app = Celery("mnistlab", broker=settings.redis_url, include=["worker.tasks"])
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        result_serializer="json",
        task_ignore_result=True,  # job state lives in our store, not in a result backend
        task_default_queue=settings.queue,
        task_routes={TRAIN_TASK: {"queue": settings.queue}},
        # Training is long and CPU-bound: take one job at a time, ack it only when done.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        worker_concurrency=settings.worker_concurrency,
        # Checked after each job: bounds the memory TensorFlow keeps per distinct model.
        worker_max_memory_per_child=settings.worker_max_memory_mib * 1024,  # KiB
        broker_connection_retry_on_startup=True,
        broker_transport_options={
            # Every key and channel of this instance carries its name: two instances on one
            # Redis never see each other's queues or control messages.
            "global_keyprefix": f"{settings.instance}:",
            # Longer than the hard time limit (Settings checks), so Redis never hands a job
            # that is still running to a second worker.
            "visibility_timeout": settings.visibility_timeout,
            "socket_connect_timeout": settings.broker_timeout_seconds,
            "socket_timeout": settings.broker_timeout_seconds,
        },
        worker_hijack_root_logger=False,
        # The soft limit raises inside the job, which records "time limit"; the hard one
        # (a minute later) kills a job that ignores it.
        task_soft_time_limit=settings.job_time_limit_seconds,
        task_time_limit=settings.hard_time_limit_seconds,
    )
    return app


def send_training(celery: Celery, experiment_id: str) -> None:
    """Queue one training message. retry=False: the broker's socket timeouts bound the wait
    instead of kombu's retries, so a dead broker fails fast."""
    celery.send_task(TRAIN_TASK, args=[experiment_id], retry=False)


app = make_celery(get_settings())
