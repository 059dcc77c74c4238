"""The benchmark script keeps working (speed itself is reported by it, never asserted here)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_core.py"


@pytest.mark.slow
def test_benchmark_quick_mode_runs_and_reports_every_target():
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick"], capture_output=True, text=True, encoding="utf-8", timeout=600
    )

    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("target:") == 3
    assert "max |exact-LSODA|/dose" in proc.stdout
