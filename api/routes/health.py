"""/health: the API, its database, its broker, and the workers that answer."""

from __future__ import annotations

from fastapi import APIRouter, Request
from sqlalchemy import text

from api.deps import SettingsDep
from api.schemas import ComponentHealth, HealthOut
from common.db import session_factory

router = APIRouter(tags=["health"])


def _database(url: str) -> ComponentHealth:
    try:
        with session_factory(url)() as session:
            session.execute(text("SELECT 1"))
        return ComponentHealth(ok=True)
    except Exception as exc:
        return ComponentHealth(ok=False, detail=str(exc)[:300])


@router.get("/health", response_model=HealthOut)
def health(request: Request, settings: SettingsDep) -> HealthOut:
    celery = request.app.state.celery
    workers: list[str] = []
    try:
        with celery.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=settings.broker_timeout_seconds)
        broker = ComponentHealth(ok=True)
        replies = celery.control.ping(timeout=0.5) or []
        workers = sorted(name for reply in replies for name in reply)
    except Exception as exc:
        broker = ComponentHealth(ok=False, detail=str(exc)[:300])
    database = _database(settings.database)
    ok = database.ok and broker.ok
    return HealthOut(status="ok" if ok else "degraded", api=ComponentHealth(ok=True),
                     database=database, broker=broker, workers=workers)
