"""Predict over HTTP against a real uvicorn server, side by side with in-process baselines.

    .venv/bin/python bench/bench_predict.py            # full run, rewrites docs/BENCHMARKS.md
    .venv/bin/python bench/bench_predict.py --smoke    # CI: few requests, docs untouched

The model is the chapter's baseline network (Dense(1000, relu) -> Dense(10, softmax)), trained
for one epoch on the committed sample data straight into the server's artifacts folder; its
experiment row is inserted as `succeeded` in the server's database. Request bodies are JSON
encoded once, before timing, as a client that keeps its payload would send them.
"""

from __future__ import annotations

import json
import os
import statistics
import threading
import time
from pathlib import Path

import _common as bench
import numpy as np

SAMPLE_DATA = bench.ROOT / "tests" / "data"
CLIENTS = 8

TARGET_MEDIAN_MS = 3.0
TARGET_P99_MS = 10.0
TARGET_RPS = 500.0
TARGET_BATCH_MEDIAN_MS = 15.0


def train_model(out_dir: Path) -> dict:
    """One epoch of the `scaled` recipe on 1000 sample images; returns the spec as JSON."""
    from trainer.recipes import recipe_spec
    from trainer.train import train

    spec = recipe_spec("scaled", {"name": "bench-predict", "data": {"max_train_samples": 1000},
                                  "training": {"epochs": 1, "batch_size": 500}})
    train(spec, out_dir)
    return spec.model_dump(mode="json")


def request(client, url: str, body: bytes | None, expect: int = 200) -> None:
    """POST the body (JSON), or GET when there is none; anything but `expect` is an error."""
    if body is None:
        response = client.get(url)
    else:
        response = client.post(url, content=body, headers={"content-type": "application/json"})
    if response.status_code != expect:
        raise RuntimeError(f"{url} answered {response.status_code}: {response.text[:300]}")


def http_latency(client, url: str, body: bytes | None, *, count: int, seconds: float,
                 warmup: int, expect: int = 200) -> bench.Latency:
    return bench.Latency(bench.time_calls(lambda: request(client, url, body, expect), count=count,
                                          seconds=seconds, warmup=warmup))


def cpu_seconds(pid: int) -> float:
    import psutil

    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


def throughput(base: str, url: str, body: bytes | None, *, seconds: float, warmup: float,
               server_pid: int) -> tuple[float, list[float], int, float, float]:
    """Requests per second with CLIENTS threads, each with its own keep-alive httpx.Client; also
    the CPU seconds per counted request that the server and this load generator used."""
    import httpx

    start_gate = threading.Barrier(CLIENTS + 1)
    state = {"measure_from": 0.0, "stop_at": 0.0}
    latencies: list[list[float]] = [[] for _ in range(CLIENTS)]
    errors = [0] * CLIENTS

    def client_loop(i: int) -> None:
        with httpx.Client(base_url=base, timeout=10) as client:
            request(client, url, body)  # connect before the clock starts
            start_gate.wait()
            for _ in range(1_000_000):  # bounded; the clock ends it long before
                started = time.perf_counter()
                if started >= state["stop_at"]:
                    break
                try:
                    request(client, url, body)
                except (RuntimeError, httpx.HTTPError):
                    errors[i] += 1
                    continue
                ended = time.perf_counter()
                if started >= state["measure_from"] and ended <= state["stop_at"]:
                    latencies[i].append(ended - started)

    threads = [threading.Thread(target=client_loop, args=(i,), daemon=True) for i in range(CLIENTS)]
    for thread in threads:
        thread.start()
    now = time.perf_counter()
    state["measure_from"] = now + warmup
    state["stop_at"] = now + warmup + seconds
    start_gate.wait()
    time.sleep(max(0.0, state["measure_from"] - time.perf_counter()))
    server_cpu, client_cpu = cpu_seconds(server_pid), time.process_time()
    time.sleep(max(0.0, state["stop_at"] - time.perf_counter()))
    server_cpu, client_cpu = cpu_seconds(server_pid) - server_cpu, time.process_time() - client_cpu
    for thread in threads:
        thread.join(timeout=warmup + seconds + 30)
    done = [x for per in latencies for x in per]
    per_request = max(len(done), 1)
    return len(done) / seconds, done, sum(errors), server_cpu / per_request, client_cpu / per_request


def main() -> int:
    args = bench.arguments(__doc__.splitlines()[0])
    smoke = args.smoke
    os.environ["MNISTLAB_DATA_DIR"] = str(SAMPLE_DATA)
    report = bench.Report(name="predict", title="Predict: HTTP vs in-process",
                          script="bench_predict.py", smoke=smoke)
    n_single, n_batch, n_keras = (20, 5, 3) if smoke else (3000, 400, 60)
    rounds = 1 if smoke else 6
    load_seconds, load_warmup = (1.0, 0.3) if smoke else (10.0, 2.0)
    with np.load(SAMPLE_DATA / "mnist.npz") as data:
        images = data["x_test"][:100].astype(np.float32)
    one, hundred = images[:1], images[:100]

    with bench.live_service(data_dir=SAMPLE_DATA) as service:
        from api.predictor import Predictor
        from common.settings import Settings

        settings = Settings(home=service.home)
        spec_placeholder = {"data": {"dataset": "mnist"}}
        experiment_id = bench.succeeded_experiment(service.database, spec=spec_placeholder)
        model_dir = settings.experiment_dir(experiment_id)
        train_model(model_dir)
        path = model_dir / "model.keras"

        # In-process baselines
        import keras

        model = keras.saving.load_model(path, safe_mode=True, compile=False)
        keras_predict = bench.Latency(bench.time_calls(
            lambda: model.predict(one, verbose=0), count=n_keras, seconds=30, warmup=2))
        on_batch = bench.Latency(bench.time_calls(
            lambda: model.predict_on_batch(one), count=n_single, seconds=30, warmup=5))
        on_batch_100 = bench.Latency(bench.time_calls(
            lambda: model.predict_on_batch(hundred), count=n_batch, seconds=30, warmup=3))
        predictor = Predictor(path)
        engine = getattr(predictor, "engine", "keras")
        in_process = bench.Latency(bench.time_calls(
            lambda: predictor(one), count=n_single, seconds=30, warmup=5))
        in_process_100 = bench.Latency(bench.time_calls(
            lambda: predictor(hundred), count=n_batch, seconds=30, warmup=3))
        reference = np.asarray(model.predict_on_batch(hundred))

        # Over HTTP
        import httpx

        url = f"/predict?experiment_id={experiment_id}"
        body_one = json.dumps({"instances": [one[0].astype(int).ravel().tolist()]}).encode()
        body_100 = json.dumps({"instances": hundred.astype(int).reshape(100, -1).tolist()}).encode()
        with httpx.Client(base_url=service.base, timeout=30) as client:
            answer = client.post(url, content=body_100, headers={"content-type": "application/json"})
            answer.raise_for_status()  # also loads the model into the server's cache
            served = np.array([p["probabilities"] for p in answer.json()["predictions"]])
            # In rounds, side by side with the framework's own floor (same client: no route at
            # all, and a one-row read), so that a busy spell on the machine hits all alike.
            http_one, http_404, http_get = (bench.Latency([]) for _ in range(3))
            round_medians = []
            for _ in range(rounds):
                this_round = http_latency(client, url, body_one, count=n_single // rounds,
                                          seconds=20, warmup=20)
                round_medians.append(this_round.median_ms)
                http_one.samples += this_round.samples
                http_404.samples += http_latency(client, "/not-a-route", None, expect=404,
                                                 count=n_single // rounds // 2, seconds=10,
                                                 warmup=10).samples
                http_get.samples += http_latency(client, f"/experiments/{experiment_id}", None,
                                                 count=n_single // rounds // 2, seconds=10,
                                                 warmup=10).samples
            http_100 = http_latency(client, url, body_100, count=n_batch, seconds=60, warmup=10)
        rps, loaded, errors, server_cpu, client_cpu = throughput(
            service.base, url, body_one, seconds=load_seconds, warmup=load_warmup,
            server_pid=service.api.pid)
        get_rps, _, get_errors, get_server_cpu, _ = throughput(
            service.base, f"/experiments/{experiment_id}", None, seconds=load_seconds / 2,
            warmup=load_warmup / 2, server_pid=service.api.pid)
        api_rss = bench.rss_mb(service.api.pid)

    diff = float(np.abs(served - reference).max())
    base_one = (f"in-process Predictor {in_process.median_ms:.2f} ms; predict_on_batch "
                f"{on_batch.median_ms:.2f} ms; model.predict {keras_predict.median_ms:.1f} ms")
    base_one += (f"; HTTP floor, same client: unknown path (404) {http_404.median_ms:.2f} ms, "
                 f"GET /experiments/ID {http_get.median_ms:.2f} ms")
    report.add("HTTP predict, 1 image: median", f"< {TARGET_MEDIAN_MS:g} ms",
               f"{http_one.median_ms:.2f} ms (medians of the {rounds} rounds: "
               f"{min(round_medians):.2f}-{max(round_medians):.2f} ms)", base_one,
               http_one.median_ms < TARGET_MEDIAN_MS)
    report.add("HTTP predict, 1 image: p99", f"< {TARGET_P99_MS:g} ms",
               f"{http_one.p99_ms:.2f} ms (n={len(http_one.samples)})",
               f"in-process Predictor p99 {in_process.p99_ms:.2f} ms; predict_on_batch p99 "
               f"{on_batch.p99_ms:.2f} ms", http_one.p99_ms < TARGET_P99_MS)
    load_median = statistics.median(loaded) * 1e3 if loaded else float("nan")
    load_p99 = bench.percentile(loaded, 99) * 1e3 if loaded else float("nan")
    report.add(f"HTTP predict, 1 image, {CLIENTS} concurrent clients", f">= {TARGET_RPS:g} req/s",
               f"{rps:.0f} req/s ({len(loaded)} in {load_seconds:g} s, {errors} errors; latency "
               f"median {load_median:.2f} ms, p99 {load_p99:.2f} ms)",
               f"1 client: {1e3 / http_one.median_ms:.0f} req/s; CPU per request: server "
               f"{server_cpu * 1e3:.2f} ms, load generator {client_cpu * 1e3:.2f} ms; "
               f"GET /experiments/ID, {CLIENTS} clients: {get_rps:.0f} req/s ({get_errors} errors, "
               f"server CPU {get_server_cpu * 1e3:.2f} ms per request)",
               rps >= TARGET_RPS and errors == 0)
    report.add("HTTP predict, batch of 100: median", f"< {TARGET_BATCH_MEDIAN_MS:g} ms",
               f"{http_100.median_ms:.2f} ms (p99 {http_100.p99_ms:.2f} ms, n={len(http_100.samples)})",
               f"in-process Predictor {in_process_100.median_ms:.2f} ms; predict_on_batch "
               f"{on_batch_100.median_ms:.2f} ms", http_100.median_ms < TARGET_BATCH_MEDIAN_MS)
    report.add("Baseline: Keras model.predict, 1 image", "(baseline)", str(keras_predict), "-", None)
    report.add("Baseline: Keras predict_on_batch, 1 image", "(baseline)", str(on_batch), "-", None)
    report.add(f"Baseline: in-process Predictor ({engine}), 1 image", "(baseline)", str(in_process),
               "-", None)
    report.add("Served probabilities vs predict_on_batch (100 images)", "max abs diff <= 1e-5",
               f"{diff:.1e}", "responses round to 6 decimals", diff <= 1e-5)
    report.add("API process RSS after the runs (one model loaded)", "(reported)", f"{api_rss:.0f} MiB",
               "-", None)
    report.notes.append(
        f"Model: Dense(1000, relu) -> Dense(10, softmax) (the chapter's baseline), served by "
        f"Predictor engine `{engine}`. Client: httpx with keep-alive on 127.0.0.1, bodies "
        f"pre-encoded; the load generator shares the machine's cores with the server. "
        f"Single-image latency: {rounds} rounds of predict, 404 and GET /experiments/ID in turn. "
        f"Throughput: {CLIENTS} threads, each with its own httpx.Client, {load_warmup:g} s "
        f"warm-up then {load_seconds:g} s counted.")
    return report.finish()


if __name__ == "__main__":
    raise SystemExit(main())
