"""Jobs survive faults: killed workers, dead workers, time limits, a restarted Redis.

Each test runs its own private Redis, Celery worker and API (with the reaper) on loopback, with
short leases so a lost worker is noticed in seconds.
"""

from __future__ import annotations

import signal
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil
import pytest
import redis
import service_helpers as svc
from service_helpers import TERMINAL, small_experiment, submit, wait_until_done

from cli import redis_server

FAST_LEASES = {
    "MNISTLAB_HEARTBEAT_SECONDS": "0.3",
    "MNISTLAB_STALE_AFTER_SECONDS": "3",
    "MNISTLAB_REAP_INTERVAL_SECONDS": "0.5",
    "MNISTLAB_REQUEUE_AFTER_SECONDS": "4",
    "MNISTLAB_MAX_ATTEMPTS": "3",
}


@dataclass
class Stack:
    home: Path
    env: dict[str, str]
    redis_port: int
    redis: object
    client: httpx.Client
    worker: object = None
    api: object = None
    processes: list = field(default_factory=list)

    def start_worker(self) -> None:
        self.worker = svc.start_worker(self.env, self.home / "worker.log")
        self.processes.append(self.worker)

    def worker_children(self) -> list[psutil.Process]:
        return psutil.Process(self.worker.pid).children(recursive=True)

    def kill_training_child(self) -> None:
        for child in self.worker_children():
            child.send_signal(signal.SIGKILL)

    def restart_redis(self) -> None:
        self.redis.terminate()  # redis-server writes its append-only file on SIGTERM
        self.redis.wait(10)
        time.sleep(1.0)
        self.redis, _ = redis_server.start_private(self.home / "redis", port=self.redis_port)

    def broker(self) -> redis.Redis:
        return redis.Redis.from_url(self.env["MNISTLAB_REDIS_URL"])

    def epoch_attempts(self, experiment_id: str) -> list[tuple[int, int]]:
        with sqlite3.connect(self.home / "mnistlab.db") as db:
            return db.execute("SELECT epoch, attempt FROM epochs WHERE experiment_id = ? "
                              "ORDER BY epoch", (experiment_id,)).fetchall()


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    port = redis_server.free_port()
    redis_process, url = redis_server.start_private(tmp_path / "redis", port=port)
    env = svc.service_env(tmp_path, svc.new_instance(), MNISTLAB_REDIS_URL=url, **FAST_LEASES)
    api, base = svc.start_api(env, tmp_path / "api.log")
    client = httpx.Client(base_url=base, timeout=30)
    result = Stack(home=tmp_path, env=env, redis_port=port, redis=redis_process, client=client,
                   api=api)
    result.start_worker()
    try:
        yield result
    finally:
        client.close()
        for process in [api, *result.processes]:
            svc.stop(process, timeout=10)
        result.redis.kill()


def experiment(stack: Stack, experiment_id: str) -> dict:
    return stack.client.get(f"/experiments/{experiment_id}").json()


def test_killed_training_resumes_from_its_checkpoint(stack: Stack) -> None:
    job = submit(stack.client, small_experiment(12, name="resume"))["id"]
    svc.wait_for(lambda: experiment(stack, job)["epoch"] >= 3, 120, "no progress")
    stack.kill_training_child()
    final = wait_until_done(stack.client, job, 180)
    assert final["status"] == "succeeded", final["error"]
    assert final["attempt"] == 2
    history = stack.client.get(f"/experiments/{job}/history").json()
    assert history["epoch"] == list(range(12)), "one row per epoch, no gaps, no duplicates"
    rows = stack.epoch_attempts(job)
    first = [e for e, a in rows if a == 1]
    second = [e for e, a in rows if a == 2]
    assert len(first) >= 3 and second, rows
    assert second == list(range(second[0], 12))
    assert second[0] >= len(first) - 1, "resumed after the last checkpoint, not from scratch"


def test_dead_worker_fails_the_job_with_the_reason(stack: Stack) -> None:
    job = submit(stack.client, small_experiment(200, name="orphan"))["id"]
    svc.wait_for(lambda: experiment(stack, job)["epoch"] >= 1, 120, "no progress")
    for process in [*stack.worker_children(), psutil.Process(stack.worker.pid)]:
        process.send_signal(signal.SIGKILL)
    killed_at = time.monotonic()
    final = wait_until_done(stack.client, job, 60)
    took = time.monotonic() - killed_at
    assert final["status"] == "failed"
    assert "worker lost" in final["error"] and "no live worker" in final["error"]
    assert took < 3 + 0.5 + 5, f"failed {took:.1f}s after the kill (stale time 3 s)"


def test_worker_dying_every_time_ends_failed_after_the_cap(stack: Stack) -> None:
    job = submit(stack.client, small_experiment(200, name="doomed"))["id"]
    killed = set()
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        state = experiment(stack, job)
        if state["status"] in TERMINAL:
            break
        if state["status"] == "running" and state["attempt"] not in killed and \
                state["epoch"] >= 1 + len(killed):
            stack.kill_training_child()
            killed.add(state["attempt"])
        time.sleep(0.1)
    assert state["status"] == "failed", state
    assert state["error"] == "worker lost, 3 attempts"
    assert killed == {1, 2, 3}
    broker = stack.broker()
    prefix = stack.env["MNISTLAB_INSTANCE"]
    svc.wait_for(lambda: broker.llen(f"{prefix}:{prefix}.train") == 0
                 and broker.hlen(f"{prefix}:unacked") == 0, 30, "queue not empty")


def test_time_limit_fails_the_job_and_the_worker_goes_on(stack: Stack) -> None:
    for process in stack.processes:
        svc.stop(process, timeout=10)
    stack.env["MNISTLAB_JOB_TIME_LIMIT_SECONDS"] = "10"
    stack.start_worker()
    slow = submit(stack.client, small_experiment(500, name="too-long"))["id"]
    quick = small_experiment(1, samples=300, name="next")
    quick["overrides"]["training"]["batch_size"] = 300
    next_job = submit(stack.client, quick)["id"]
    final = wait_until_done(stack.client, slow, 120)
    assert final["status"] == "failed" and final["error"].startswith("time limit")
    after = wait_until_done(stack.client, next_job, 120)
    assert after["status"] == "succeeded", after["error"]


def test_redis_restart_while_one_runs_and_two_wait(stack: Stack) -> None:
    jobs = [submit(stack.client, small_experiment(8, name=f"r{i}"))["id"] for i in range(3)]
    svc.wait_for(lambda: experiment(stack, jobs[0])["epoch"] >= 1, 120, "first never ran")
    assert [experiment(stack, j)["status"] for j in jobs[1:]] == ["queued", "queued"]
    stack.restart_redis()
    for job in jobs:
        final = wait_until_done(stack.client, job, 240)
        assert final["status"] == "succeeded", final["error"]
        assert final["attempt"] == 1, "each trained exactly once"
        history = stack.client.get(f"/experiments/{job}/history").json()
        assert history["epoch"] == list(range(8))


def test_job_lost_by_the_broker_is_sent_again(stack: Stack) -> None:
    blocker = submit(stack.client, small_experiment(30, name="blocker"))["id"]
    svc.wait_for(lambda: experiment(stack, blocker)["status"] == "running", 60, "not running")
    waiting = submit(stack.client, small_experiment(2, samples=300, name="lost"))["id"]
    broker = stack.broker()
    prefix = stack.env["MNISTLAB_INSTANCE"]
    assert broker.delete(f"{prefix}:{prefix}.train") == 1  # as if Redis lost it
    stack.client.post(f"/experiments/{blocker}/cancel")
    final = wait_until_done(stack.client, waiting, 120)
    assert final["status"] == "succeeded" and final["attempt"] == 1
