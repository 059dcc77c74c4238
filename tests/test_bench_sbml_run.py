"""The SBML benchmark keeps working (its timings are printed, never asserted)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_sbml.py"


@pytest.mark.slow
def test_sbml_benchmark_quick_mode_runs_and_prints_ratios():
    pytest.importorskip("roadrunner", reason="SBML extra not installed (pip install 'exopk[sbml]')")

    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick"], capture_output=True, text=True, encoding="utf-8", timeout=600
    )

    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("ratio roadrunner/exopk") == 8
    assert "scaled to 10,000" in proc.stdout
