"""Shared parts of the benchmark scripts: machine facts, timing statistics, the results table,
docs/BENCHMARKS.md sections, and a live service (real uvicorn, real Redis) to measure.

Scripts run as `python bench/NAME.py [--smoke]`; this folder is then first on sys.path, and the
repository root and tests/ (for service_helpers) are added here.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import importlib.metadata
import os
import platform
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
for _path in (ROOT, ROOT / "tests"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

DOCS = ROOT / "docs" / "BENCHMARKS.md"
DOCS_HEADER = """# Benchmarks

Speed and memory targets are checked by the scripts in `bench/`, never by timed unit tests.
Each script prints one table and, when run in full (without `--smoke`), rewrites its own section
below, between its `<!-- bench:NAME -->` markers. Figures from different runs (or machines) are
not comparable: each target is measured side by side with its baseline in the same run. The
machine may be shared; each table gives the 1-minute load average at its start and end.

Run them all: `for s in predict api memory startup job_start; do .venv/bin/python bench/bench_$s.py; done`
and `.venv/bin/python bench/train_speed.py` (PyTorch for its baseline: `pip install -e '.[bench]'`)
(`--smoke` for a quick check that changes nothing here; CI runs tests/bench/test_bench_smoke.py).
"""
FULL_DATA = Path(os.environ.get("MNISTLAB_BENCH_DATA_DIR", str(ROOT.parent / "shared" / "datasets")))


# Machine and versions


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _version(*names: str) -> str:
    for name in names:
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            return importlib.metadata.version(name)
    return "not installed"


def machine() -> dict[str, str]:
    """Read without importing TensorFlow (versions come from the installed distributions)."""
    return {
        "machine": f"{cpu_model()}, {os.cpu_count()} cores",
        "python": platform.python_version(),
        "tensorflow": _version("tensorflow-cpu", "tensorflow"),
        "keras": _version("keras"),
        "numpy": _version("numpy"),
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "load average (1 min) at start": f"{os.getloadavg()[0]:.2f}",
    }


# Timing


def percentile(values: list[float], q: float) -> float:
    """Linear-interpolated percentile (q in 0..100)."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * q / 100.0
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def time_calls(fn: Callable[[], Any], *, count: int, seconds: float, warmup: int = 3) -> list[float]:
    """Seconds per call: `warmup` untimed calls, then up to `count` calls within `seconds`."""
    for _ in range(warmup):
        fn()
    samples: list[float] = []
    deadline = time.perf_counter() + seconds
    while len(samples) < count and time.perf_counter() < deadline:
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return samples


@dataclass
class Latency:
    samples: list[float]

    @property
    def median_ms(self) -> float:
        return statistics.median(self.samples) * 1e3

    @property
    def p99_ms(self) -> float:
        return percentile(self.samples, 99) * 1e3

    def __str__(self) -> str:
        return f"median {self.median_ms:.2f} ms, p99 {self.p99_ms:.2f} ms (n={len(self.samples)})"


# The table


@dataclass
class Row:
    name: str
    target: str
    measured: str
    baseline: str
    met: bool | None  # None: reported only, no target


@dataclass
class Report:
    name: str  # the docs section: <!-- bench:NAME -->
    title: str  # the heading names the script after it
    script: str  # the bench script's file name, e.g. "bench_api.py"
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    info: dict[str, str] = field(default_factory=machine)
    smoke: bool = False

    @property
    def command(self) -> str:
        return f"python bench/{self.script}" + (" --smoke" if self.smoke else "")

    def add(self, name: str, target: str, measured: str, baseline: str, met: bool | None) -> None:
        self.rows.append(Row(name, target, measured, baseline, met))

    def unmet(self) -> list[Row]:
        return [r for r in self.rows if r.met is False]

    def markdown(self) -> str:
        lines = [f"### {self.title} (bench/{self.script})", ""]
        lines.append(f"`{self.command}`" + (" (smoke run: tiny sizes, not the real figures)"
                                             if self.smoke else ""))
        lines.append("")
        lines.append("; ".join(f"{k}: {v}" for k, v in self.info.items())
                     + f", at end: {os.getloadavg()[0]:.2f}")
        lines.append("")
        lines.append("| measurement | target | measured | baseline (same run) | met |")
        lines.append("|---|---|---|---|---|")
        for r in self.rows:
            met = "n/a" if r.met is None else ("yes" if r.met else "**no**")
            lines.append(f"| {r.name} | {r.target} | {r.measured} | {r.baseline} | {met} |")
        lines.append("")
        unmet = self.unmet()
        if unmet:
            lines.append("**Targets not met:** " + "; ".join(f"{r.name} (target {r.target}, "
                                                            f"measured {r.measured})" for r in unmet))
        elif any(r.met is not None for r in self.rows):
            lines.append("All targets met in this run.")
        for note in self.notes:
            lines.append("")
            lines.append(note)
        return "\n".join(lines) + "\n"

    def finish(self) -> int:
        """Print the table; a full run also writes it into docs/BENCHMARKS.md."""
        text = self.markdown()
        print(text, flush=True)
        if not self.smoke:
            write_section(self.name, text)
            print(f"(written to {DOCS.relative_to(ROOT)}, section bench:{self.name})", flush=True)
        return 0


def write_section(name: str, body: str, path: Path = DOCS) -> None:
    """Replace the text between this section's markers, or append the section; other
    sections of the file are kept as they are."""
    start, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    block = f"{start}\n{body.rstrip()}\n{end}"
    text = path.read_text() if path.exists() else DOCS_HEADER
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.DOTALL)
    if pattern.search(text):
        text = pattern.sub(lambda _m: block, text, count=1)
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def arguments(description: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--smoke", action="store_true",
                        help="tiny sizes and few requests, for CI; does not touch docs/BENCHMARKS.md")
    return parser.parse_args()


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:.2f} ms"


# A live service


@dataclass
class Service:
    home: Path
    instance: str
    env: dict[str, str]
    base: str = ""
    api: Any = None
    worker: Any = None

    @property
    def database(self) -> str:
        return f"sqlite:///{self.home / 'mnistlab.db'}"


@contextlib.contextmanager
def live_service(*, data_dir: Path | None = None, worker: bool = False,
                 api: bool = True, **extra_env: str) -> Iterator[Service]:
    """A uvicorn API server (and optionally a Celery worker) as the service tests start them:
    a temporary MNISTLAB_HOME, a unique instance name, the Redis on loopback."""
    import service_helpers as svc

    with tempfile.TemporaryDirectory(prefix="mnistlab-bench-") as tmp:
        home = Path(tmp)
        instance = f"bench-{svc.new_instance()}"
        env = svc.service_env(home, instance, **extra_env)
        if data_dir is not None:
            env["MNISTLAB_DATA_DIR"] = str(data_dir)
        service = Service(home=home, instance=instance, env=env)
        try:
            if worker:
                service.worker = svc.start_worker(env, home / "worker.log")
            if api:
                service.api, service.base = svc.start_api(env, home / "api.log")
            yield service
        finally:
            for process in (service.api, service.worker):
                if process is not None:
                    svc.stop(process)
            svc.forget_instance(svc.redis_url(), instance)


def succeeded_experiment(database: str, *, spec: dict[str, Any], epochs: int = 0,
                         metrics: dict[str, Any] | None = None) -> str:
    """Insert an experiment row that ran and succeeded, with `epochs` epochs of history."""
    from common import store
    from common.db import session_scope

    with session_scope(database) as session:
        experiment = store.create_experiment(
            session, spec=spec, spec_hash="bench", epochs_total=max(epochs, 1), name="bench")
        experiment_id = experiment.id
    with session_scope(database) as session:
        attempt = store.start_attempt(session, experiment_id=experiment_id)
        assert attempt is not None
    with session_scope(database) as session:
        for epoch in range(epochs):
            store.record_epoch(session, experiment_id=experiment_id, attempt=attempt, epoch=epoch,
                               metrics={"loss": 0.5 / (epoch + 1), "accuracy": 0.9,
                                        "val_loss": 0.6 / (epoch + 1), "val_accuracy": 0.89,
                                        "learning_rate": 0.001, "seconds": 1.25})
        store.finish(session, experiment_id=experiment_id, attempt=attempt, status="succeeded",
                     metrics=metrics or {"test_accuracy": 0.9})
    return experiment_id


def rss_mb(pid: int) -> float:
    import psutil

    return psutil.Process(pid).memory_info().rss / 2**20
