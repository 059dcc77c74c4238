"""The population benchmark keeps working (speed is reported by it, never asserted here)."""

from __future__ import annotations

import pytest
from benchmark_run import run_quick


@pytest.mark.slow
def test_population_benchmark_quick_mode_runs():
    proc = run_quick("bench_population.py")
    assert "end to end (fresh process" in proc.stdout
    for stage in ("parameter sampling", "solver (simulate_batch)", "NCA", "writing outputs", "plotting"):
        assert stage in proc.stdout
    assert proc.stdout.count("ratio") == 2  # the writers against the tidy long frames, wall and CPU
