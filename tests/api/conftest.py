"""TestClient against the real app: a real SQLite file and the real Redis (no worker)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import service_helpers as svc
from fastapi.testclient import TestClient

from api.main import create_app
from common.settings import Settings


@pytest.fixture
def settings(tmp_path) -> Iterator[Settings]:
    instance = svc.new_instance()
    yield Settings(home=tmp_path, instance=instance, redis_url=svc.redis_url())
    svc.forget_instance(svc.redis_url(), instance)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client
