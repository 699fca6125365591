"""The FastAPI app. `uvicorn api.main:app` serves it; tests build their own with create_app."""

from __future__ import annotations

from fastapi import FastAPI

from api import errors
from api.predictor import ModelCache
from api.routes import compare, datasets, events, experiments, health, predict, recipes, results, sweeps
from common.db import session_factory
from common.settings import Settings, get_settings
from worker.celery_app import make_celery

DESCRIPTION = """Run the classic Keras feed-forward MNIST experiments as queued training jobs:
submit a spec or a recipe, watch its epochs live, compare runs, call the trained model."""


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    app = FastAPI(title="mnistlab", version="0.1.0", description=DESCRIPTION)
    app.state.settings = settings
    app.state.celery = make_celery(settings)
    app.state.models = ModelCache()
    session_factory(settings.database)  # creates the tables before the first request
    errors.install(app)
    for module in (experiments, events, results, predict, recipes, sweeps, compare, datasets,
                   health):
        app.include_router(module.router)
    return app


app = create_app()
