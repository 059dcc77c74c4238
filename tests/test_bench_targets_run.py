"""The issue-15 targets benchmark keeps working (speed is reported by it, never asserted here)."""

from __future__ import annotations

import pytest
from benchmark_run import run_quick

CASES = (
    "sim49-rr",
    "sim49-rr-cold",
    "floor49",
    "blockfloor49",
    "sim2881-rr",
    "sim2881-rr-cold",
    "sim2881-lsoda",
    "floor2881",
    "blockfloor2881",
    "batch-time",
    "batch-rr",
    "fit",
    "cap-sim-rr",
    "cap-batch-lsoda",
)


@pytest.mark.slow
def test_targets_benchmark_quick_mode_prints_every_case():
    pytest.importorskip("roadrunner")
    proc = run_quick("bench_targets.py", timeout_s=900)
    for case in CASES:
        lines = [line for line in proc.stdout.splitlines() if line.startswith(f"[case {case}] ")]
        assert len(lines) == 2, (case, proc.stdout)  # the case line, and again in the summary
        assert "PASS" in lines[0] or "MISS" in lines[0]
        assert "load " in lines[0]
    assert "Profile of one simulation, 2881 points" in proc.stdout
