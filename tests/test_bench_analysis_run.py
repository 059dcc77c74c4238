"""The analysis benchmark script keeps working (speed is reported by it, never asserted here)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_analysis.py"


@pytest.mark.slow
def test_analysis_benchmark_quick_mode_runs_and_reports_every_target():
    proc = subprocess.run([sys.executable, str(SCRIPT), "--quick"], capture_output=True, text=True, timeout=600)

    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("target") == 5  # table header + 2 population rows, 100k memory, Sobol
    assert proc.stdout.count("x; target <=") == 1 and "LSODA loop est." in proc.stdout
