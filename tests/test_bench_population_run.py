"""The population benchmark keeps working (speed is reported by it, never asserted here)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_population.py"


@pytest.mark.slow
def test_population_benchmark_quick_mode_runs():
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick"], capture_output=True, text=True, encoding="utf-8", timeout=600
    )

    assert proc.returncode == 0, proc.stderr
    assert "end to end (fresh process" in proc.stdout
    for stage in ("parameter sampling", "solver (simulate_batch)", "NCA", "writing outputs", "plotting"):
        assert stage in proc.stdout
    assert proc.stdout.count("ratio") == 2  # the writers against the tidy long frames, wall and CPU
