"""The issue-15 targets benchmark keeps working (speed is reported by it, never asserted here)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_targets.py"
CASES = (
    "sim49-rr",
    "floor49",
    "sim2881-rr",
    "sim2881-lsoda",
    "floor2881",
    "batch-time",
    "batch-rr",
    "fit",
    "cap-sim-rr",
    "cap-batch-lsoda",
)


@pytest.mark.slow
def test_targets_benchmark_quick_mode_prints_every_case():
    pytest.importorskip("roadrunner")
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick"], capture_output=True, text=True, encoding="utf-8", timeout=900
    )

    assert proc.returncode == 0, proc.stderr
    for case in CASES:
        lines = [line for line in proc.stdout.splitlines() if line.startswith(f"[case {case}] ")]
        assert len(lines) == 2, (case, proc.stdout)  # the case line, and again in the summary
        assert "PASS" in lines[0] or "MISS" in lines[0]
        assert "load " in lines[0]
    assert "Profile of one simulation, 2881 points" in proc.stdout
