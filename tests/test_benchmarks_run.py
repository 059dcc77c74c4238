"""The benchmark script keeps working (speed itself is reported by it, never asserted here)."""

from __future__ import annotations

import pytest
from benchmark_run import run_quick


@pytest.mark.slow
def test_benchmark_quick_mode_runs_and_reports_every_target():
    proc = run_quick("bench_core.py")
    assert proc.stdout.count("target:") == 3
    assert "max |exact-LSODA|/dose" in proc.stdout
