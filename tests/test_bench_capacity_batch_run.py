"""The capacity-batch benchmark keeps working (speed is reported by it, never asserted here)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_capacity_batch.py"


@pytest.mark.slow
def test_capacity_batch_benchmark_quick_mode_runs():
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick"], capture_output=True, text=True, encoding="utf-8", timeout=600
    )

    assert proc.returncode == 0, proc.stderr
    assert "ratio loop/batch" in proc.stdout and "LSODA loop" in proc.stdout
    assert "of the stated bound" in proc.stdout and "RODAS4" in proc.stdout
