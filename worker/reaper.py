"""Our store, not Celery, decides what happens to lost jobs.

- A running job whose lease went stale lost its worker: it is queued again while attempts
  remain and a worker is alive to take it, else failed with the reason.
- A queued job the broker does not hold (Redis restarted without the message, or a crash between
  the database commit and the send) is sent again.
Every change is a compare-and-set, so any number of reapers may run at once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta

import redis
from celery import Celery

from common import store
from common.db import session_scope
from common.models import QUEUED, RUNNING, utcnow
from common.settings import Settings
from worker.celery_app import send_training

log = logging.getLogger(__name__)


@dataclass
class Reaped:
    requeued: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    resent: list[str] = field(default_factory=list)


def broker_holds(settings: Settings) -> str:
    """Everything the broker holds for this instance's queue (waiting and delivered), as text."""
    client = redis.Redis.from_url(settings.redis_url, socket_timeout=settings.broker_timeout_seconds,
                                  socket_connect_timeout=settings.broker_timeout_seconds)
    prefix = f"{settings.instance}:"
    waiting = client.lrange(f"{prefix}{settings.queue}", 0, -1)
    delivered = client.hvals(f"{prefix}unacked")
    return "\n".join(m.decode(errors="replace") for m in [*waiting, *delivered])


def live_workers(celery: Celery) -> list[str]:
    replies = celery.control.ping(timeout=1.0) or []
    return [name for reply in replies for name in reply]


def reap(settings: Settings, celery: Celery) -> Reaped:
    now = utcnow()
    done = Reaped()
    with session_scope(settings.database) as session:
        stale = [(e.id, e.attempt) for e in store.stale_running(
            session, stale_before=now - timedelta(seconds=settings.stale_after_seconds))]
        waiting = [(e.id, e.attempt) for e in store.waiting_since(
            session, before=now - timedelta(seconds=settings.requeue_after_seconds))]
    if stale:
        alive = live_workers(celery)
        for experiment_id, attempt in stale:
            with session_scope(settings.database) as session:
                if attempt >= settings.max_attempts or not alive:
                    why = (f"worker lost, {attempt} attempts" if attempt >= settings.max_attempts
                           else f"worker lost (attempt {attempt} of {settings.max_attempts}) "
                                "and no live worker to resume it")
                    if store.fail_if(session, experiment_id=experiment_id, status=RUNNING,
                                     attempt=attempt, error=why):
                        done.failed.append(experiment_id)
                    continue
                if not store.requeue(session, experiment_id=experiment_id, status=RUNNING,
                                     attempt=attempt):
                    continue
            send_training(celery, experiment_id)
            done.requeued.append(experiment_id)
    if waiting:
        held = broker_holds(settings)
        for experiment_id, attempt in waiting:
            if experiment_id in held:
                continue
            with session_scope(settings.database) as session:
                if not store.requeue(session, experiment_id=experiment_id, status=QUEUED,
                                     attempt=attempt):
                    continue
            send_training(celery, experiment_id)
            done.resent.append(experiment_id)
    for kind in ("requeued", "failed", "resent"):
        if getattr(done, kind):
            log.warning("reaper %s: %s", kind, ", ".join(getattr(done, kind)))
    return done
