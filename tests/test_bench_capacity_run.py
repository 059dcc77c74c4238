"""The capacity-limited benchmark keeps working (speed is reported by it, never asserted here)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_capacity.py"


@pytest.mark.slow
def test_capacity_benchmark_quick_mode_runs():
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick"], capture_output=True, text=True, encoding="utf-8", timeout=600
    )

    assert proc.returncode == 0, proc.stderr
    assert "exopk LSODA" in proc.stdout and "plain LSODA" in proc.stdout
    assert "ratio loop/batch" in proc.stdout
