"""`mnistlab serve`: Redis (if none answers), one Celery worker and the API; Ctrl-C stops all."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from types import FrameType

from cli import redis_server
from common.settings import Settings


def _children_env(settings: Settings, redis_url: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"MNISTLAB_REDIS_URL": redis_url, "MNISTLAB_HOME": str(settings.home)})
    return env


def _stop(processes: list[tuple[str, subprocess.Popen]], grace: float = 15.0) -> None:
    """SIGTERM in reverse start order (API first, Redis last), then SIGKILL what lingers."""
    for _name, process in reversed(processes):
        if process.poll() is None:
            process.terminate()
    deadline = time.monotonic() + grace
    for _name, process in reversed(processes):
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def serve(*, host: str, port: int, workers: int) -> int:
    settings = Settings()
    settings.home.mkdir(parents=True, exist_ok=True)
    processes: list[tuple[str, subprocess.Popen]] = []
    redis_url = settings.redis_url
    if redis_server.answers(redis_url):
        print(f"mnistlab: using the Redis at {redis_url}", flush=True)
    else:
        process, redis_url = redis_server.start_private(settings.home / "redis")
        processes.append(("redis", process))
        print(f"mnistlab: no Redis at {settings.redis_url}; started a private one at {redis_url}",
              flush=True)
    env = _children_env(settings, redis_url)
    python = sys.executable
    processes.append(("worker", subprocess.Popen(
        [python, "-m", "celery", "-A", "worker.celery_app", "worker", "-Q", settings.queue,
         "-n", f"{settings.instance}@%h", "--concurrency", str(workers), "--loglevel", "INFO"],
        env=env, start_new_session=True)))
    processes.append(("api", subprocess.Popen(
        [python, "-m", "uvicorn", "api.main:app", "--host", host, "--port", str(port)],
        env=env, start_new_session=True)))
    print(f"mnistlab: API on http://{host}:{port} (docs at /docs), data in {settings.home}",
          flush=True)

    def _on_signal(signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    # Installed explicitly: a shell starts background jobs with SIGINT ignored.
    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    code = 0
    try:
        while True:
            for name, process in processes:
                if process.poll() is not None:
                    print(f"mnistlab: {name} exited with {process.returncode}; stopping",
                          file=sys.stderr, flush=True)
                    code = 1
                    raise KeyboardInterrupt
            time.sleep(0.5)
    except KeyboardInterrupt:
        print("mnistlab: stopping", flush=True)
    finally:
        _stop(processes)
    return code
