"""The FastAPI app. `uvicorn api.main:app` serves it; tests build their own with create_app."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from api import errors
from api.auth import bearer_scheme, current_owner
from api.deps import strict_query
from api.limits import BodySizeLimit
from api.predictor import ModelCache
from api.routes import (
    compare,
    datasets,
    events,
    experiments,
    health,
    predict,
    recipes,
    results,
    sweeps,
)
from api.schemas import ErrorOut
from common.db import session_factory
from common.settings import Settings, get_settings
from worker.celery_app import make_celery
from worker.reaper import reap

log = logging.getLogger("mnistlab.api")

DESCRIPTION = """Run the classic Keras feed-forward MNIST experiments as queued training jobs:
submit a spec or a recipe, watch its epochs live, compare runs, call the trained model.

With `MNISTLAB_API_KEYS` set, every route but `/health` (and this description) needs
`Authorization: Bearer KEY`."""

PROTECTED = (experiments, events, results, predict, recipes, sweeps, compare, datasets)


async def _reaper_loop(app: FastAPI) -> None:
    """Lost and undelivered jobs are found here, in the API process, so the one-command setup
    and any number of API replicas (compare-and-set makes them safe together) run it."""
    settings: Settings = app.state.settings
    while True:
        await asyncio.sleep(settings.reap_interval_seconds)
        try:
            await run_in_threadpool(reap, settings, app.state.celery)
        except Exception as exc:  # the broker or database may be down for a while
            log.warning("reaper: %s", exc)


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    task = asyncio.create_task(_reaper_loop(app))
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _too_deep(_request: Request, _exc: Exception) -> JSONResponse:
    return JSONResponse(status_code=422, content={
        "detail": [{"loc": ["body"], "msg": "nested too deeply", "type": "too_deep"}],
        "message": "body: nested too deeply"})


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    app = FastAPI(title="mnistlab", version="0.1.0", description=DESCRIPTION, lifespan=lifespan,
                  dependencies=[Depends(strict_query)])
    app.state.settings = settings
    app.state.celery = make_celery(settings)
    app.state.models = ModelCache()
    session_factory(settings.database)  # creates the tables before the first request
    errors.install(app)
    app.add_exception_handler(RecursionError, _too_deep)
    guard = [Depends(bearer_scheme), Depends(current_owner)] if settings.keys else []
    unauthorized = {401: {"model": ErrorOut, "description": "No valid API key"}} if guard else {}
    for module in PROTECTED:
        app.include_router(module.router, dependencies=guard, responses=unauthorized)
    app.include_router(health.router)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_request_bytes)
    return app


app = create_app()
