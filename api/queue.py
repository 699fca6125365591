"""Enqueue training jobs; a broker that does not answer becomes a quick 503, not a hang."""

from __future__ import annotations

from celery import Celery
from fastapi import HTTPException

from worker.celery_app import send_training


def enqueue_training(celery: Celery, experiment_id: str) -> None:
    try:
        send_training(celery, experiment_id)
    except Exception as exc:  # kombu raises several connection error types
        raise HTTPException(status_code=503, detail=f"broker unavailable: {exc}") from exc
