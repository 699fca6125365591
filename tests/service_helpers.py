"""Start the real parts the service tests need: Redis, a Celery worker process, the API server.

Redis is the one at MNISTLAB_TEST_REDIS_URL (default the machine's 127.0.0.1:6379) when it
answers, else a private redis-server started for the session, as `mnistlab serve` does.
Each test session uses its own instance name, so it never takes jobs of a running service.
"""

from __future__ import annotations

import atexit
import functools
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import redis

from cli import redis_server

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_DATA = ROOT / "tests" / "data"


@functools.cache
def redis_url() -> str:
    url = os.environ.get("MNISTLAB_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    if redis_server.answers(url):
        return url
    folder = Path(os.environ.get("TMPDIR", "/tmp")) / f"mnistlab-test-redis-{uuid.uuid4().hex[:8]}"
    process, url = redis_server.start_private(folder)
    atexit.register(process.kill)
    return url


def new_instance() -> str:
    return f"test-{uuid.uuid4().hex[:10]}"


def forget_instance(url: str, instance: str) -> None:
    """Remove every broker key the instance made (its queue, bindings, control channels)."""
    client = redis.Redis.from_url(url)
    for key in client.scan_iter(f"{instance}:*"):
        client.delete(key)


def service_env(home: Path, instance: str, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "MNISTLAB_HOME": str(home),
        "MNISTLAB_INSTANCE": instance,
        "MNISTLAB_REDIS_URL": redis_url(),
        "MNISTLAB_DATA_DIR": str(SAMPLE_DATA),
        "PYTHONPATH": str(ROOT),
        **extra,
    })
    env.pop("MNISTLAB_DATABASE_URL", None)
    return env


def start_worker(env: dict[str, str], log: Path, *, concurrency: int = 1) -> subprocess.Popen:
    instance = env["MNISTLAB_INSTANCE"]
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "worker.celery_app", "worker",
         "-Q", f"{instance}.train", "-n", f"{instance}@%h", "--concurrency", str(concurrency),
         "--loglevel", "INFO", "--without-mingle", "--without-gossip"],
        env=env, cwd=ROOT, stdout=log.open("ab"), stderr=subprocess.STDOUT,
        start_new_session=True)
    wait_for(lambda: b"ready." in log.read_bytes(), 60, f"worker did not start; see {log}",
             process)
    return process


def start_api(env: dict[str, str], log: Path) -> tuple[subprocess.Popen, str]:
    port = redis_server.free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "api.main:app", "--host", "127.0.0.1",
         "--port", str(port)],
        env=env, cwd=ROOT, stdout=log.open("ab"), stderr=subprocess.STDOUT,
        start_new_session=True)
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return httpx.get(f"{base}/health", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(up, 30, f"API did not start; see {log}", process)
    return process, base


def stop(process: subprocess.Popen, timeout: float = 20) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_for(check, seconds: float, message: str, process: subprocess.Popen | None = None):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{message} (exited {process.returncode})")
        time.sleep(0.1)
    raise TimeoutError(message)


# Jobs through the live API

TERMINAL = {"succeeded", "failed", "cancelled"}


def small_experiment(epochs: int, samples: int = 3000, name: str = "e2e") -> dict[str, Any]:
    return {"recipe": "scaled", "overrides": {
        "name": name, "training": {"epochs": epochs, "batch_size": 32},
        "data": {"max_train_samples": samples}}}


def submit(client: httpx.Client, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post("/experiments", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def wait_until_done(client: httpx.Client, experiment_id: str, seconds: float = 180) -> dict:
    return wait_for(
        lambda: (e := client.get(f"/experiments/{experiment_id}").json())["status"] in TERMINAL
        and e, seconds, f"experiment {experiment_id} did not end")


