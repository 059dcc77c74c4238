"""The capacity-batch benchmark keeps working (speed is reported by it, never asserted here)."""

from __future__ import annotations

import pytest
from benchmark_run import run_quick


@pytest.mark.slow
def test_capacity_batch_benchmark_quick_mode_runs():
    proc = run_quick("bench_capacity_batch.py")
    assert "ratio loop/batch" in proc.stdout and "LSODA loop" in proc.stdout
    assert "of the stated bound" in proc.stdout and "RODAS4" in proc.stdout
