"""Memory: the API process with no model and with one, and a worker's peak during a real job.

    .venv/bin/python bench/bench_memory.py            # full run, rewrites docs/BENCHMARKS.md
    .venv/bin/python bench/bench_memory.py --smoke    # CI: sample data, tiny job, docs untouched

A real service: uvicorn and a Celery worker (prefork, concurrency 1) started as the tests start
them. The job is the `vanilla` recipe with 2 epochs on the full MNIST (MNISTLAB_DATA_DIR, default
../shared/datasets; --smoke: the committed sample, 1 epoch on 500 images), submitted over HTTP.
While it runs, the RSS of the worker's processes is sampled with psutil every 50 ms; the job
runs in the pool child. The API's RSS is read after a few plain requests (no model loaded),
then after one prediction with the job's model.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

import _common as bench
import numpy as np

TARGET_API_MB = 200.0
TARGET_WORKER_MB = 1536.0
SAMPLE_SECONDS = 0.05
RSS_PROBE = ("import os, psutil{extra}; "
             "print(psutil.Process(os.getpid()).memory_info().rss / 2**20)")


class Sampler(threading.Thread):
    """Peak RSS per process of a process tree, sampled until stopped."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.peaks: dict[int, float] = {}
        self.peak_at: dict[int, float] = {}  # perf_counter time of each process's peak
        self.latest: dict[int, float] = {}
        self.samples = 0
        self._stop_event = threading.Event()

    def run(self) -> None:
        import psutil

        root = psutil.Process(self.pid)
        while not self._stop_event.is_set():
            try:
                processes = [root, *root.children(recursive=True)]
            except psutil.NoSuchProcess:
                return
            for process in processes:
                try:
                    rss = process.memory_info().rss / 2**20
                except psutil.NoSuchProcess:
                    continue
                self.latest[process.pid] = rss
                if rss > self.peaks.get(process.pid, 0.0):
                    self.peaks[process.pid] = rss
                    self.peak_at[process.pid] = time.perf_counter()
            self.samples += 1
            self._stop_event.wait(SAMPLE_SECONDS)

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=10)

    def children_now(self) -> float:
        return max((rss for pid, rss in self.latest.items() if pid != self.pid), default=0.0)


def interpreter_rss(env: dict[str, str], extra: str = "") -> float:
    done = subprocess.run([sys.executable, "-c", RSS_PROBE.format(extra=extra)], env=env,
                          cwd=bench.ROOT, capture_output=True, text=True, timeout=120, check=True)
    return float(done.stdout.strip().splitlines()[-1])


def main() -> int:
    args = bench.arguments(__doc__.splitlines()[0])
    smoke = args.smoke
    report = bench.Report(name="memory", title="Memory",
                          script="bench_memory.py", smoke=smoke)
    data_dir = bench.ROOT / "tests" / "data" if smoke else bench.FULL_DATA
    if not (data_dir / "mnist.npz").is_file():
        raise SystemExit(f"no mnist.npz in {data_dir}: set MNISTLAB_BENCH_DATA_DIR to the full data")
    overrides = ({"training": {"epochs": 1}, "data": {"max_train_samples": 500}} if smoke
                 else {"training": {"epochs": 2}})
    job_timeout = 300 if smoke else 1800

    with bench.live_service(data_dir=data_dir, worker=True) as service:
        import httpx

        api_pid = service.api.pid
        with httpx.Client(base_url=service.base, timeout=30) as client:
            for url in ("/health", "/experiments", "/recipes", "/health"):
                client.get(url).raise_for_status()
            time.sleep(0.5)
            api_idle = bench.rss_mb(api_pid)
            api_bare = interpreter_rss(service.env)
            api_imported = interpreter_rss(service.env, extra=", api.main")

            sampler = Sampler(service.worker.pid)
            sampler.start()
            settled, previous, deadline = 0, -1.0, time.monotonic() + 90
            while time.monotonic() < deadline and settled < 10:  # the child's warm-up is done
                time.sleep(0.2)
                now = sampler.children_now()
                settled = settled + 1 if now > 0 and abs(now - previous) < 2 else 0
                previous = now
            child_idle = sampler.children_now()
            worker_main_idle = sampler.latest.get(service.worker.pid, 0.0)

            started = time.perf_counter()
            created = client.post("/experiments", json={"recipe": "vanilla", "overrides": overrides})
            created.raise_for_status()
            job = created.json()["id"]
            final: dict = {}
            epoch_ends: list[float] = []  # when each epoch was first seen stored
            for _ in range(job_timeout * 4):  # bounded by job_timeout
                final = client.get(f"/experiments/{job}").json()
                while len(epoch_ends) < (final.get("epoch") or 0):
                    epoch_ends.append(time.perf_counter())
                if final["status"] in ("succeeded", "failed", "cancelled"):
                    break
                time.sleep(0.25)
            job_seconds = time.perf_counter() - started
            sampler.stop()
            if final.get("status") != "succeeded":
                raise SystemExit(f"the vanilla job did not succeed: {json.dumps(final)[:2000]}")

            with np.load(data_dir / "mnist.npz") as data:
                pixels = data["x_test"][:1].reshape(1, -1).astype(int).tolist()
            predicted = client.post(f"/predict?experiment_id={job}", json={"instances": pixels})
            predicted.raise_for_status()
            time.sleep(0.5)
            api_model = bench.rss_mb(api_pid)

    child_peaks = {pid: peak for pid, peak in sampler.peaks.items() if pid != service.worker.pid}
    child_peak = max(child_peaks.values(), default=0.0)
    peak_pid = max(child_peaks, key=child_peaks.__getitem__) if child_peaks else None
    peak_time = sampler.peak_at.get(peak_pid, started) if peak_pid is not None else started
    phase = next((f"during epoch {i + 1}" for i, end in enumerate(epoch_ends) if peak_time <= end),
                 "after the last epoch (evaluation, plots, saving the model)")
    main_peak = sampler.peaks.get(service.worker.pid, 0.0)
    samples = sampler.samples
    train_mb = (500 if smoke else 60000) * 784 * 4 / 2**20

    report.add("API process RSS, no model loaded", f"< {TARGET_API_MB:g} MiB", f"{api_idle:.0f} MiB",
               f"bare interpreter {api_bare:.0f} MiB; `import api.main` alone {api_imported:.0f} MiB",
               api_idle < TARGET_API_MB)
    report.add("API process RSS, one model loaded (after one predict)", "(reported)",
               f"{api_model:.0f} MiB", f"+{api_model - api_idle:.0f} MiB over no model (TensorFlow "
               f"and Keras load with the first model)", None)
    epochs = overrides["training"]["epochs"]
    what = "500 sample images" if smoke else "full MNIST (60000 images)"
    report.add(f"Worker pool child peak RSS, vanilla recipe, {epochs} epoch(s) on {what}",
               f"< 1.5 GiB ({TARGET_WORKER_MB:g} MiB)", f"{child_peak:.0f} MiB",
               f"same child idle (TensorFlow and data loaded) {child_idle:.0f} MiB; float32 training "
               f"pixels {train_mb:.0f} MiB", child_peak < TARGET_WORKER_MB)
    report.add("Worker main (Celery) process peak RSS", "(reported)", f"{main_peak:.0f} MiB",
               f"idle {worker_main_idle:.0f} MiB", None)
    report.notes.append(
        f"The pool child peaked {peak_time - started:.1f} s after the job was submitted, {phase}; "
        f"epochs were stored at {', '.join(f'{t - started:.1f}' for t in epoch_ends)} s. "
        f"The job took {job_seconds:.0f} s ({samples} RSS samples of the worker's processes, every "
        f"{SAMPLE_SECONDS * 1000:.0f} ms). RSS counts shared pages in each process; the pool child "
        "is forked from the Celery main process.")
    return report.finish()


if __name__ == "__main__":
    raise SystemExit(main())
