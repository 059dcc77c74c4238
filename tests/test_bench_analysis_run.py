"""The analysis benchmark script keeps working (speed is reported by it, never asserted here)."""

from __future__ import annotations

import pytest
from benchmark_run import run_quick


@pytest.mark.slow
def test_analysis_benchmark_quick_mode_runs_and_reports_every_target():
    proc = run_quick("bench_analysis.py")
    for target in ("<= 1 s:", "<= 5 s:", "target <= 1000 MB:", "target <= 10 s:"):
        assert proc.stdout.count(target) == 1, target
    assert proc.stdout.count("LSODA loop est.") == 3 and "ratio" in proc.stdout
