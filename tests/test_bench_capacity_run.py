"""The capacity-limited benchmark keeps working (speed is reported by it, never asserted here)."""

from __future__ import annotations

import pytest
from benchmark_run import run_quick


@pytest.mark.slow
def test_capacity_benchmark_quick_mode_runs():
    proc = run_quick("bench_capacity.py")
    assert "exopk LSODA" in proc.stdout and "plain LSODA" in proc.stdout
    assert "ratio loop/batch" in proc.stdout
