"""API latency against a real uvicorn server: submitting an experiment, reading a long history.

    .venv/bin/python bench/bench_api.py            # full run, rewrites docs/BENCHMARKS.md
    .venv/bin/python bench/bench_api.py --smoke    # CI: few requests, docs untouched

POST /experiments stores the job and sends it to the broker (the Redis on loopback; no worker
takes it). The 500-epoch history belongs to a job inserted through common.store, as a worker
would have written it.
"""

from __future__ import annotations

import json

import _common as bench

TARGET_POST_MS = 20.0
TARGET_HISTORY_MS = 20.0
SUBMIT = {"recipe": "scaled", "overrides": {"name": "bench", "training": {"epochs": 3}}}


def main() -> int:
    args = bench.arguments(__doc__.splitlines()[0])
    smoke = args.smoke
    report = bench.Report(name="api", title="API: submit and history",
                          script="bench_api.py", smoke=smoke)
    count, warmup = (5, 2) if smoke else (300, 20)
    with bench.live_service() as service:
        import httpx

        from common import store
        from common.db import session_factory

        spec = {"data": {"dataset": "mnist"}}
        long_job = bench.succeeded_experiment(service.database, spec=spec, epochs=500)
        short_job = bench.succeeded_experiment(service.database, spec=spec, epochs=1)
        body = json.dumps(SUBMIT).encode()
        headers = {"content-type": "application/json"}
        with httpx.Client(base_url=service.base, timeout=30) as client:

            def call(method: str, url: str, expect: int, **kwargs) -> None:
                response = client.request(method, url, **kwargs)
                if response.status_code != expect:
                    raise RuntimeError(f"{method} {url}: {response.status_code} {response.text[:300]}")

            def timed(method: str, url: str, expect: int = 200, **kwargs) -> bench.Latency:
                return bench.Latency(bench.time_calls(lambda: call(method, url, expect, **kwargs),
                                                      count=count, seconds=30, warmup=warmup))

            post = timed("POST", "/experiments", 201, content=body, headers=headers)
            dry_run = timed("POST", "/experiments?dry_run=true", 200, content=body, headers=headers)
            get_one = timed("GET", f"/experiments/{short_job}")
            history = timed("GET", f"/experiments/{long_job}/history")
            history_1 = timed("GET", f"/experiments/{short_job}/history")
            epochs = len(client.get(f"/experiments/{long_job}/history").json()["epoch"])

        factory = session_factory(service.database)

        def read_history() -> None:
            with factory() as session:
                store.history(session, experiment_id=long_job)

        in_process = bench.Latency(bench.time_calls(read_history, count=count, seconds=30,
                                                    warmup=warmup))

    report.add("POST /experiments (recipe + overrides): median", f"< {TARGET_POST_MS:g} ms",
               f"{post.median_ms:.2f} ms (p99 {post.p99_ms:.2f} ms, n={len(post.samples)})",
               f"same body with dry_run=true (validate only, no store, no broker) "
               f"{dry_run.median_ms:.2f} ms; GET /experiments/ID {get_one.median_ms:.2f} ms",
               post.median_ms < TARGET_POST_MS)
    report.add(f"GET /experiments/ID/history, {epochs} epochs: median", f"< {TARGET_HISTORY_MS:g} ms",
               f"{history.median_ms:.2f} ms (p99 {history.p99_ms:.2f} ms, n={len(history.samples)})",
               f"1-epoch history {history_1.median_ms:.2f} ms; store.history in-process (no HTTP) "
               f"{in_process.median_ms:.2f} ms", history.median_ms < TARGET_HISTORY_MS and epochs == 500)
    report.notes.append(
        "Client: httpx with keep-alive on 127.0.0.1, bodies pre-encoded, SQLite database in a "
        "temporary MNISTLAB_HOME, API keys off. The submitted jobs stay queued (no worker).")
    return report.finish()


if __name__ == "__main__":
    raise SystemExit(main())
