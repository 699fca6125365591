"""API start: `import api.main` in a fresh interpreter, and uvicorn until /health answers.

    .venv/bin/python bench/bench_startup.py            # full run, rewrites docs/BENCHMARKS.md
    .venv/bin/python bench/bench_startup.py --smoke    # CI: one repetition, docs untouched

Every measurement is a new process with a new temporary MNISTLAB_HOME (importing api.main
creates the app, and with it the SQLite tables). /health pings the workers and waits up to
0.5 s for answers; none run here, so it always spends that wait: the time until the server
answers any request (a 404) is shown beside it.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _common as bench

TARGET_S = 2.0
PROBE = ("import json, sys, time; t = time.perf_counter(); import api.main; "
         "print(json.dumps({'seconds': time.perf_counter() - t, "
         "'tensorflow': 'tensorflow' in sys.modules, 'keras': 'keras' in sys.modules}))")


def wall(code: str, env: dict[str, str]) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code], env=env, cwd=bench.ROOT, capture_output=True,
                          text=True, timeout=120, check=False)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"python -c {code!r} failed: {done.stderr[-2000:]}")
    return seconds, done.stdout


def until_answers(env: dict[str, str], log: Path) -> tuple[float, float]:
    """Seconds from starting uvicorn to its first answer of any kind, and to /health's 200."""
    import httpx
    import service_helpers as svc

    from cli import redis_server

    port = redis_server.free_port()
    base = f"http://127.0.0.1:{port}"
    start = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "api.main:app", "--host", "127.0.0.1", "--port", str(port)],
        env=env, cwd=bench.ROOT, stdout=log.open("ab"), stderr=subprocess.STDOUT,
        start_new_session=True)
    first = health = None
    try:
        with httpx.Client(base_url=base, timeout=5) as client:
            for _ in range(10_000):  # bounded: 60 s at most
                if time.perf_counter() - start > 60 or process.poll() is not None:
                    break
                try:
                    if first is None:
                        client.get("/not-a-route")
                        first = time.perf_counter() - start
                    if client.get("/health").status_code == 200:
                        health = time.perf_counter() - start
                        break
                except httpx.TransportError:
                    time.sleep(0.005)
    finally:
        svc.stop(process)
    if first is None or health is None:
        raise RuntimeError(f"uvicorn did not answer /health within 60 s; see {log}")
    return first, health


def import_profile(env: dict[str, str], top: int = 6) -> list[tuple[float, str]]:
    """Where `import api.main` spends its time (`python -X importtime`): seconds of import work
    summed per top-level package, largest first."""
    done = subprocess.run([sys.executable, "-X", "importtime", "-c", "import api.main"], env=env,
                          cwd=bench.ROOT, capture_output=True, text=True, timeout=120, check=False)
    totals: dict[str, float] = {}
    for line in done.stderr.splitlines():
        parts = line.split("|")
        if len(parts) == 3 and parts[0].split(":")[-1].strip().isdigit():
            package = parts[2].strip().split(".")[0]
            totals[package] = totals.get(package, 0.0) + int(parts[0].split(":")[-1]) / 1e6
    return sorted(((s, name) for name, s in totals.items()), reverse=True)[:top]


def main() -> int:
    args = bench.arguments(__doc__.splitlines()[0])
    smoke = args.smoke
    report = bench.Report(name="startup", title="API start",
                          script="bench_startup.py", smoke=smoke)
    repeats = 1 if smoke else 5
    import service_helpers as svc

    imports, inner, bare, fastapi_only, firsts, healths = [], [], [], [], [], []
    modules: dict[str, bool] = {}
    instance = f"bench-{svc.new_instance()}"
    with tempfile.TemporaryDirectory(prefix="mnistlab-bench-") as tmp:
        for i in range(repeats):
            home = Path(tmp) / f"home-{i}"
            env = svc.service_env(home, instance)
            seconds, out = wall(PROBE, env)
            imports.append(seconds)
            probe = json.loads(out.strip().splitlines()[-1])
            inner.append(probe["seconds"])
            modules = {"tensorflow": probe["tensorflow"], "keras": probe["keras"]}
            bare.append(wall("pass", env)[0])
            fastapi_only.append(wall("import fastapi", env)[0])
            first, health = until_answers(svc.service_env(Path(tmp) / f"serve-{i}", instance),
                                          Path(tmp) / f"api-{i}.log")
            firsts.append(first)
            healths.append(health)
        slowest = import_profile(svc.service_env(Path(tmp) / "profile", instance))
    svc.forget_instance(svc.redis_url(), instance)

    med = statistics.median
    report.add('`python -c "import api.main"` wall time (median)', f"< {TARGET_S:g} s",
               f"{med(imports):.2f} s (import itself {med(inner):.2f} s; runs: "
               f"{', '.join(f'{x:.2f}' for x in imports)})",
               f'`python -c "pass"` {med(bare):.2f} s; `python -c "import fastapi"` '
               f"{med(fastapi_only):.2f} s", med(imports) < TARGET_S)
    report.add("uvicorn start until /health answers 200 (median)", f"< {TARGET_S:g} s",
               f"{med(healths):.2f} s (runs: {', '.join(f'{x:.2f}' for x in healths)})",
               f"until the first answer of any kind (404): {med(firsts):.2f} s; /health's worker "
               f"ping waits 0.5 s", med(healths) < TARGET_S)
    report.add("tensorflow in sys.modules after `import api.main`", "False", str(modules["tensorflow"]),
               f"keras in sys.modules: {modules['keras']}", modules["tensorflow"] is False)
    report.notes.append(f"{repeats} run(s) of each, every one a fresh process. Import time of "
                        "api.main by package (`-X importtime`, own time summed per package): "
                        + ", ".join(f"{name} {s:.2f} s" for s, name in slowest) + ".")
    return report.finish()


if __name__ == "__main__":
    raise SystemExit(main())
