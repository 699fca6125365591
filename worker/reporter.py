"""A running job's link to the store: each epoch written as it ends, a lease kept alive.

The lease is renewed from a background thread, so a long compile, evaluation or save never
looks like a dead worker, and the training loop itself never waits on the database: between
batches it only reads two flags the thread keeps up to date.
"""

from __future__ import annotations

import logging
import threading
import time

from common import store
from common.db import session_scope
from common.settings import Settings
from trainer.reporting import EpochRecord, Reporter

log = logging.getLogger(__name__)


class Lease(threading.Thread):
    """Renews the job's heartbeat every heartbeat_seconds and looks for a cancel request every
    cancel_check_seconds (a cheap read), noticing too when another attempt took the job."""

    def __init__(self, settings: Settings, experiment_id: str, attempt: int) -> None:
        super().__init__(name=f"lease-{experiment_id[:8]}", daemon=True)
        self.url = settings.database
        self.interval = min(settings.cancel_check_seconds, settings.heartbeat_seconds)
        self.beat_every = settings.heartbeat_seconds
        self.experiment_id = experiment_id
        self.attempt = attempt
        self.cancel_requested = False
        self.lost = False
        self._stop_event = threading.Event()

    def check(self, *, renew: bool) -> None:
        ask = store.heartbeat if renew else store.cancel_requested
        try:
            with session_scope(self.url) as session:
                self.cancel_requested = ask(session, experiment_id=self.experiment_id,
                                            attempt=self.attempt)
        except store.StaleAttempt:
            self.lost = True
        except Exception:  # a database hiccup: try again next time
            log.exception("lease of %s: check failed", self.experiment_id)

    def run(self) -> None:
        last_beat = time.monotonic()
        while not self._stop_event.wait(self.interval) and not self.lost:
            renew = time.monotonic() - last_beat >= self.beat_every
            self.check(renew=renew)
            if renew:
                last_beat = time.monotonic()

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=self.interval + 5)


class StoreReporter(Reporter):
    def __init__(self, settings: Settings, lease: Lease) -> None:
        self.url = settings.database
        self.lease = lease

    def on_epoch(self, record: EpochRecord) -> None:
        with session_scope(self.url) as session:
            store.record_epoch(session, experiment_id=self.lease.experiment_id,
                               attempt=self.lease.attempt, epoch=record.epoch,
                               metrics=record.as_dict())

    def should_stop(self) -> bool:
        return self.lease.cancel_requested or self.lease.lost
