"""The dosing benchmark keeps working (speed and memory are reported by it, never asserted here)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_dosing.py"


@pytest.mark.slow
def test_dosing_benchmark_quick_mode_runs():
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick"], capture_output=True, text=True, encoding="utf-8", timeout=600
    )

    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("linearity:") == 2
    assert "max |diff|/dose 0.0e+00" in proc.stdout  # the addl series is the explicit list
