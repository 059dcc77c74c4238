"""The SBML benchmark keeps working (its timings are printed, never asserted)."""

from __future__ import annotations

import pytest
from benchmark_run import run_quick


@pytest.mark.slow
def test_sbml_benchmark_quick_mode_runs_and_prints_ratios():
    pytest.importorskip("roadrunner", reason="SBML extra not installed (pip install 'exopk[sbml]')")

    proc = run_quick("bench_sbml.py")
    assert proc.stdout.count("ratio roadrunner/exopk") == 8
    assert "scaled to 10,000" in proc.stdout
