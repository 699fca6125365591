"""Run one stored experiment: claim it, train it, record how it ended."""

from __future__ import annotations

import logging
import traceback
from typing import Any

from common import store
from common.db import session_scope
from common.models import CANCELLED, SUCCEEDED
from common.settings import Settings
from worker.reporter import StoreReporter

log = logging.getLogger(__name__)


def final_metrics(result: Any) -> dict[str, Any]:
    ev = result.evaluation
    history = result.history
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
        "epochs_run": result.epochs_run,
        "stop_reason": result.stop_reason,
        "total_params": result.summary.total_params,
        "seconds": result.seconds,
    }


def run_experiment(settings: Settings, experiment_id: str) -> None:
    from trainer.spec import ExperimentSpec
    from trainer.train import train

    with session_scope(settings.database) as session:
        attempt = store.start_attempt(session, experiment_id=experiment_id)
        if attempt is None:
            log.info("experiment %s: nothing to run", experiment_id)
            return
        spec = ExperimentSpec.model_validate(
            store.get_experiment(session, experiment_id=experiment_id).spec)
    reporter = StoreReporter(settings, experiment_id, attempt)
    try:
        result = train(spec, settings.experiment_dir(experiment_id), reporter)
    except store.StaleAttempt:
        log.warning("experiment %s: attempt %s lost its lease", experiment_id, attempt)
        return
    except Exception as exc:
        log.exception("experiment %s failed", experiment_id)
        with session_scope(settings.database) as session:
            store.finish(session, experiment_id=experiment_id, attempt=attempt, status="failed",
                         error=f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=5)}")
        return
    status = CANCELLED if result.stop_reason == "cancelled" else SUCCEEDED
    with session_scope(settings.database) as session:
        store.finish(session, experiment_id=experiment_id, attempt=attempt, status=status,
                     metrics=final_metrics(result))
