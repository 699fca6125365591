"""/experiments/{id}/events: server-sent events of status changes and finished epochs."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from sse_starlette.sse import EventSourceResponse
from starlette.concurrency import run_in_threadpool

from api.auth import OwnerDep
from api.deps import SettingsDep
from api.routes.experiments import NOT_FOUND, find_experiment, to_out
from common import store
from common.db import session_factory
from common.models import TERMINAL
from common.settings import Settings

router = APIRouter(prefix="/experiments", tags=["experiments"])

POLL_SECONDS = 0.25


def _snapshot(settings: Settings, experiment_id: str, owner: str | None,
              after: int) -> tuple[dict[str, Any], list]:
    with session_factory(settings.database)() as session:
        experiment = find_experiment(session, experiment_id, owner)
        epochs = store.epochs_after(session, experiment_id=experiment_id, after=after)
        rows = [{"epoch": e.epoch, **{k: getattr(e, k) for k in store.HISTORY_FIELDS}}
                for e in epochs]
        return to_out(experiment).model_dump(mode="json"), rows


async def _stream(request: Request, settings: Settings, experiment_id: str, owner: str | None,
                  first: dict[str, Any], rows: list) -> AsyncIterator[dict[str, str]]:
    status = None
    last_epoch = -1
    current = first
    while True:
        for row in rows:
            last_epoch = row["epoch"]
            yield {"event": "epoch", "id": str(row["epoch"]), "data": json.dumps(row)}
        if current["status"] != status:
            status = current["status"]
            yield {"event": "status", "data": json.dumps(
                {k: current[k] for k in ("id", "status", "epoch", "epochs", "error", "metrics")})}
        if status in TERMINAL or await request.is_disconnected():
            yield {"event": "end", "data": json.dumps({"status": status})}
            return
        await asyncio.sleep(POLL_SECONDS)
        current, rows = await run_in_threadpool(_snapshot, settings, experiment_id, owner,
                                                 last_epoch)


@router.get(
    "/{experiment_id}/events",
    responses={**NOT_FOUND, 200: {"content": {"text/event-stream": {}},
               "description": "`status` events on each change, `epoch` events as epochs end "
                              "(id = epoch index), then `end`; the stream closes with the job"}},
    response_class=EventSourceResponse,
    summary="Live progress as server-sent events",
)
async def experiment_events(experiment_id: str, request: Request, settings: SettingsDep,
                            owner: OwnerDep) -> EventSourceResponse:
    first, rows = await run_in_threadpool(_snapshot, settings, experiment_id, owner, -1)
    return EventSourceResponse(_stream(request, settings, experiment_id, owner, first, rows),
                               ping=15)
