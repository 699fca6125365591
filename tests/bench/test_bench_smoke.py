"""Each benchmark script still runs: `--smoke` (tiny sizes, a few requests) in a subprocess.

Timings are not checked here (speed is what the scripts report, never what a test asserts);
what is checked is that each exits 0, prints its table with every expected row, records the
machine and versions, and leaves docs/BENCHMARKS.md alone.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs" / "BENCHMARKS.md"

EXPECTED_ROWS = {
    "bench_predict.py": [
        "HTTP predict, 1 image: median",
        "HTTP predict, 1 image: p99",
        "HTTP predict, 1 image, 8 concurrent clients",
        "HTTP predict, batch of 100: median",
        "Baseline: Keras model.predict, 1 image",
        "Baseline: Keras predict_on_batch, 1 image",
        "Baseline: in-process Predictor (numpy), 1 image",
        "Served probabilities vs predict_on_batch (100 images)",
        "API process RSS after the runs (one model loaded)",
    ],
    "bench_api.py": [
        "POST /experiments (recipe + overrides): median",
        "GET /experiments/ID/history, 500 epochs: median",
    ],
    "bench_memory.py": [
        "API process RSS, no model loaded",
        "API process RSS, one model loaded (after one predict)",
        "Worker pool child peak RSS, vanilla recipe, 1 epoch(s) on 500 sample images",
        "Worker main (Celery) process peak RSS",
    ],
    "bench_job_start.py": [
        "batch 1024: queue -> first batch, warm worker, same graph, new seed and rate"
        " (median of jobs 2-2)",
        "batch 32: queue -> first batch, warm worker, same graph, new seed and rate"
        " (median of jobs 2-2)",
        "batch 32, new graph: queue -> first batch, warm worker, a hidden width new to the worker"
        " (median of jobs 2-2)",
    ],
    "bench_startup.py": [
        '`python -c "import api.main"` wall time (median)',
        "uvicorn start until /health answers 200 (median)",
        "tensorflow in sys.modules after `import api.main`",
    ],
}


def table_rows(output: str) -> dict[str, list[str]]:
    rows = {}
    for line in output.splitlines():
        if line.startswith("| ") and not line.startswith("| measurement") and "---" not in line:
            cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
            rows[cells[0]] = cells
    return rows


@pytest.mark.parametrize("script", sorted(EXPECTED_ROWS))
def test_smoke_run(script: str) -> None:
    before = DOCS.read_bytes() if DOCS.exists() else None
    env = {k: v for k, v in os.environ.items() if k != "MNISTLAB_HOME"}
    done = subprocess.run([sys.executable, str(ROOT / "bench" / script), "--smoke"], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    rows = table_rows(done.stdout)
    assert list(rows) == EXPECTED_ROWS[script], done.stdout
    for cells in rows.values():
        assert len(cells) == 5 and cells[4] in {"yes", "**no**", "n/a"}, cells
    assert re.search(r"machine: .+, \d+ cores; python: [\d.]+; tensorflow: [\d.]+; keras: [\d.]+; "
                     r"numpy: [\d.]+; date: \d{4}-\d\d-\d\d", done.stdout), done.stdout
    assert "(smoke run" in done.stdout
    after = DOCS.read_bytes() if DOCS.exists() else None
    assert after == before, "a smoke run must not rewrite docs/BENCHMARKS.md"


def test_train_speed_smoke() -> None:
    before = DOCS.read_bytes() if DOCS.exists() else None
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "train_speed.py"), "--smoke"],
                          cwd=ROOT, capture_output=True, text=True, timeout=900, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    for config in ("| vanilla, batch 32 |", "| vanilla, batch 1024 |", "| deep, batch 1024 |"):
        assert config in done.stdout, done.stdout
    assert "error" not in done.stdout.split("| config |", 1)[1]
    assert (DOCS.read_bytes() if DOCS.exists() else None) == before
