"""`mnistlab serve`: with no Redis answering, it starts its own, trains a job, and stops cleanly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import service_helpers as svc

from cli import redis_server

ROOT = Path(__file__).resolve().parents[2]


def test_serve_starts_everything_trains_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    dead_redis = f"redis://127.0.0.1:{redis_server.free_port()}/0"  # nothing listens there
    assert not redis_server.answers(dead_redis)
    port = redis_server.free_port()
    env = {**os.environ, "MNISTLAB_HOME": str(tmp_path), "MNISTLAB_REDIS_URL": dead_redis,
           "MNISTLAB_INSTANCE": svc.new_instance(), "MNISTLAB_DATA_DIR": str(svc.SAMPLE_DATA),
           "PYTHONPATH": str(ROOT)}
    log = (tmp_path / "serve.log").open("wb")
    serve = subprocess.Popen([sys.executable, "-m", "cli", "serve", "--port", str(port)],
                             env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        def healthy() -> dict | None:
            try:
                body = httpx.get(f"{base}/health", timeout=2).json()
            except httpx.HTTPError:
                return None
            return body if body["status"] == "ok" and body["workers"] else None

        health = svc.wait_for(healthy, 90, "service did not come up", serve)
        assert health["broker"]["ok"]
        children = psutil.Process(serve.pid).children(recursive=True)
        assert any("redis-server" in " ".join(c.cmdline()) for c in children)
        with httpx.Client(base_url=base, timeout=30) as client:
            job = svc.submit(client, svc.small_experiment(2, samples=300, name="serve"))
            final = svc.wait_until_done(client, job["id"], 180)
        assert final["status"] == "succeeded", final["error"]
        assert (tmp_path / "mnistlab.db").is_file()
        assert (tmp_path / "artifacts" / job["id"] / "model.keras").is_file()
    finally:
        serve.send_signal(signal.SIGINT)
        try:
            code = serve.wait(timeout=60)
        finally:
            serve.kill()
    assert code == 0
    time.sleep(0.5)
    leftovers = [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
    assert leftovers == [], f"still running after Ctrl-C: {leftovers}"
