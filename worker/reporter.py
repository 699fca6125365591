"""The trainer's Reporter for a queued job: each epoch into the store, cancel read from it."""

from __future__ import annotations

import time

from common import store
from common.db import session_scope
from common.settings import Settings
from trainer.reporting import EpochRecord, Reporter


class StoreReporter(Reporter):
    def __init__(self, settings: Settings, experiment_id: str, attempt: int) -> None:
        self.url = settings.database
        self.every = settings.progress_check_seconds
        self.experiment_id = experiment_id
        self.attempt = attempt
        self._last_check = time.monotonic()
        self._cancel = False

    def on_epoch(self, record: EpochRecord) -> None:
        with session_scope(self.url) as session:
            store.record_epoch(session, experiment_id=self.experiment_id, attempt=self.attempt,
                               epoch=record.epoch, metrics=record.as_dict())

    def should_stop(self) -> bool:
        # Asked between batches: touch the database at most once per `every` seconds.
        now = time.monotonic()
        if not self._cancel and now - self._last_check >= self.every:
            self._last_check = now
            with session_scope(self.url) as session:
                self._cancel = store.heartbeat(session, experiment_id=self.experiment_id,
                                               attempt=self.attempt)
        return self._cancel
