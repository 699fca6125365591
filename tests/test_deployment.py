"""docker-compose.yml is the scale-out path: check it with docker-compose itself (no engine here)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from common.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def binary() -> str:
    found = shutil.which("docker-compose")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("docker-compose is not installed (.ci/run installs Debian's package)")
        pytest.skip("docker-compose is not installed (apt-get install docker-compose)")
    return found


@pytest.fixture(scope="module")
def compose(binary: str) -> dict:
    env = {**os.environ, "MNISTLAB_API_KEYS": "compose-test-key"}
    result = subprocess.run([binary, "config"], cwd=ROOT, capture_output=True, text=True,
                            timeout=60, check=False, env=env)
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def test_services_for_scale_out(compose: dict) -> None:
    services = compose["services"]
    assert set(services) == {"redis", "postgres", "api", "worker"}
    assert "container_name" not in services["worker"], "a fixed name would block --scale"
    assert not services["worker"].get("ports"), "published ports would block --scale"


def test_api_and_workers_share_settings_and_artifacts(compose: dict) -> None:
    api, worker = compose["services"]["api"], compose["services"]["worker"]
    assert api["environment"] == worker["environment"]
    assert api["environment"]["MNISTLAB_DATABASE_URL"].startswith("postgresql+psycopg://")
    fields = {f"MNISTLAB_{name.upper()}" for name in Settings.model_fields}
    assert set(api["environment"]) <= fields, "every variable is a real setting"
    artifacts = api["environment"]["MNISTLAB_ARTIFACTS_DIR"]
    for service in (api, worker):
        assert any(v.startswith("artifacts:") and f":{artifacts}" in v for v in service["volumes"])


def test_keys_are_required_in_compose(binary: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != "MNISTLAB_API_KEYS"}
    result = subprocess.run([binary, "config"], cwd=ROOT, capture_output=True, text=True,
                            timeout=60, check=False, env=env)
    assert result.returncode != 0 and "MNISTLAB_API_KEYS" in result.stderr


def test_worker_consumes_the_queue_the_api_sends_to(compose: dict) -> None:
    worker = compose["services"]["worker"]
    instance = worker["environment"]["MNISTLAB_INSTANCE"]
    queue = worker["command"][worker["command"].index("-Q") + 1]
    assert queue == Settings(instance=instance).queue
