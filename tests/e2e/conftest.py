"""A live service for the end-to-end tests: real Redis, a real Celery worker, uvicorn over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import service_helpers as svc


@dataclass
class LiveService:
    base_url: str
    home: Path
    instance: str
    client: httpx.Client


@pytest.fixture(scope="session")
def live_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveService]:
    home = tmp_path_factory.mktemp("live-home")
    instance = svc.new_instance()
    env = svc.service_env(home, instance)
    worker = svc.start_worker(env, home / "worker.log")
    api, base = svc.start_api(env, home / "api.log")
    try:
        with httpx.Client(base_url=base, timeout=30) as client:
            yield LiveService(base_url=base, home=home, instance=instance, client=client)
    finally:
        svc.stop(api)
        svc.stop(worker)
        svc.forget_instance(svc.redis_url(), instance)
