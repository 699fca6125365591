"""Run one stored experiment: claim it, train it under a lease, record how it ended."""

from __future__ import annotations

import logging
import traceback
from datetime import timedelta
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded

from common import store
from common.db import session_scope
from common.models import CANCELLED, FAILED, SUCCEEDED, utcnow
from common.settings import Settings
from worker.reporter import Lease, StoreReporter

log = logging.getLogger(__name__)

CHECKPOINT_DIR = "checkpoint"


def final_metrics(result: Any, history: dict[str, list[Any]]) -> dict[str, Any]:
    """Final figures; epoch-wise ones come from the stored history, which spans every attempt."""
    ev = result.evaluation
    val_acc = [v for v in history.get("val_accuracy", []) if v is not None]
    best = max(range(len(val_acc)), key=val_acc.__getitem__) if val_acc else None
    return {
        "test_accuracy": ev.test_accuracy,
        "test_loss": ev.test_loss,
        "train_accuracy": ev.train_accuracy,
        "train_loss": ev.train_loss,
        "gap": ev.train_accuracy - ev.test_accuracy,
        "best_val_accuracy": val_acc[best] if best is not None else None,
        "best_epoch": best,
        "per_class_accuracy": ev.per_class_accuracy,
        "epochs_run": len(history.get("epoch", [])),
        "stop_reason": result.stop_reason,
        "total_params": result.summary.total_params,
        "seconds": result.seconds,
        "seconds_to_first_batch": result.seconds_to_first_batch,
    }


def claim(settings: Settings, experiment_id: str) -> tuple[int, dict[str, Any]] | None:
    stale_before = utcnow() - timedelta(seconds=settings.stale_after_seconds)
    with session_scope(settings.database) as session:
        attempt = store.start_attempt(session, experiment_id=experiment_id,
                                      stale_before=stale_before,
                                      max_attempts=settings.max_attempts)
        if attempt is None:
            return None
        return attempt, store.get_experiment(session, experiment_id=experiment_id).spec


def _end(settings: Settings, experiment_id: str, attempt: int, status: str,
         result: Any = None, error: str | None = None) -> None:
    with session_scope(settings.database) as session:
        metrics = None
        if result is not None:
            metrics = final_metrics(result, store.history(session, experiment_id=experiment_id))
        store.finish(session, experiment_id=experiment_id, attempt=attempt, status=status,
                     metrics=metrics, error=error)


def run_experiment(settings: Settings, experiment_id: str) -> None:
    from trainer.spec import ExperimentSpec
    from trainer.train import train

    claimed = claim(settings, experiment_id)
    if claimed is None:
        log.info("experiment %s: nothing to run (ended, cancelled, or alive elsewhere)",
                 experiment_id)
        return
    attempt, raw_spec = claimed
    lease = Lease(settings, experiment_id, attempt)
    lease.start()
    folder = settings.experiment_dir(experiment_id)
    try:
        result = train(ExperimentSpec.model_validate(raw_spec), folder,
                       StoreReporter(settings, lease), checkpoint_dir=folder / CHECKPOINT_DIR)
    except store.StaleAttempt:
        log.warning("experiment %s: attempt %s lost its lease", experiment_id, attempt)
        return
    except SoftTimeLimitExceeded:
        _end(settings, experiment_id, attempt, FAILED,
             error=f"time limit: ran longer than {settings.job_time_limit_seconds:g} s")
        return
    except Exception as exc:
        log.exception("experiment %s failed", experiment_id)
        _end(settings, experiment_id, attempt, FAILED,
             error=f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=5)}")
        return
    finally:
        lease.stop()
    if lease.lost:
        log.warning("experiment %s: attempt %s lost its lease; not recording", experiment_id,
                    attempt)
        return
    status = CANCELLED if result.stop_reason == "cancelled" else SUCCEEDED
    try:
        _end(settings, experiment_id, attempt, status, result=result)
    except store.StaleAttempt:
        log.warning("experiment %s: attempt %s lost its lease at the end", experiment_id, attempt)
