"""The dosing benchmark keeps working (speed and memory are reported by it, never asserted here)."""

from __future__ import annotations

import pytest
from benchmark_run import run_quick


@pytest.mark.slow
def test_dosing_benchmark_quick_mode_runs():
    proc = run_quick("bench_dosing.py")
    assert proc.stdout.count("linearity:") == 2
    assert "max |diff|/dose 0.0e+00" in proc.stdout  # the addl series is the explicit list
