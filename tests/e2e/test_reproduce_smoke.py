"""bench/reproduce.py keeps working: a tiny run of two recipes against the live service."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_reproduce_writes_the_report(live_service, tmp_path: Path) -> None:
    out = tmp_path / "RESULTS.md"
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "reproduce.py"), "--base-url",
         live_service.base_url, "--recipes", "overfit-5,overfit-100", "--scale", "0.02",
         "--out", str(out)],
        capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    report = out.read_text()
    assert "| overfit-5 |" in report and "| overfit-100 |" in report
    assert "## 5 vs 100 epochs (overfitting)" in report
    for figure in ("5-vs-100-epochs-overfitting-val_accuracy.png", "weights-overfit-100.png"):
        assert (tmp_path / "results" / figure).stat().st_size > 1000
