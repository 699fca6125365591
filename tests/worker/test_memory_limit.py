"""A worker process that has grown past MNISTLAB_WORKER_MAX_MEMORY_MIB is replaced after its job."""

from __future__ import annotations

import httpx
import psutil
import service_helpers as svc
from service_helpers import small_experiment, submit, wait_until_done

from common.settings import Settings
from worker.celery_app import make_celery


def test_the_limit_reaches_celery_in_kib() -> None:
    app = make_celery(Settings(worker_max_memory_mib=1500))
    assert app.conf.worker_max_memory_per_child == 1500 * 1024


def _pool_children(worker: psutil.Process) -> set[int]:
    return {child.pid for child in worker.children()}


def test_an_oversized_worker_process_is_replaced_and_the_next_job_runs(tmp_path) -> None:
    # A trained TensorFlow process is far above 256 MiB: every job ends over the limit.
    env = svc.service_env(tmp_path, svc.new_instance(), MNISTLAB_WORKER_MAX_MEMORY_MIB="256")
    worker = svc.start_worker(env, tmp_path / "worker.log")
    api, base = svc.start_api(env, tmp_path / "api.log")
    try:
        main = psutil.Process(worker.pid)
        first_children = svc.wait_for(lambda: _pool_children(main), 30, "no pool process")
        with httpx.Client(base_url=base, timeout=30) as client:
            first = wait_until_done(client, submit(client, small_experiment(1, 500, "one"))["id"])
            assert first["status"] == "succeeded", first["error"]
            svc.wait_for(lambda: _pool_children(main) and not _pool_children(main) & first_children,
                         60, "the oversized pool process was not replaced")
            second = wait_until_done(client, submit(client, small_experiment(1, 500, "two"))["id"])
        assert second["status"] == "succeeded", second["error"]
        assert main.is_running()  # only the pool process was replaced
    finally:
        svc.stop(api)
        svc.stop(worker)
        svc.forget_instance(svc.redis_url(), env["MNISTLAB_INSTANCE"])
