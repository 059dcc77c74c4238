"""The analysis benchmark script keeps working (speed is reported by it, never asserted here)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_analysis.py"


@pytest.mark.slow
def test_analysis_benchmark_quick_mode_runs_and_reports_every_target():
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick"], capture_output=True, text=True, encoding="utf-8", timeout=600
    )

    assert proc.returncode == 0, proc.stderr
    for target in ("<= 1 s:", "<= 5 s:", "target <= 1000 MB:", "target <= 10 s:"):
        assert proc.stdout.count(target) == 1, target
    assert proc.stdout.count("LSODA loop est.") == 3 and "ratio" in proc.stdout
