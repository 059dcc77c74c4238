"""Running a benchmark script's smoke mode from the tests (speed is reported by the scripts, never asserted)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def run_quick(script: str, timeout_s: float = 600) -> subprocess.CompletedProcess:
    """``python benchmarks/<script> --quick`` in a fresh interpreter; asserts it exits 0 (stderr in the message)."""
    proc = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), "--quick"],
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=timeout_s,
    )
    assert proc.returncode == 0, proc.stderr
    return proc
