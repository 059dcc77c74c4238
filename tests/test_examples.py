"""Every script in examples/ runs headless and writes its figure."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "examples").glob("*.py"))


def test_examples_exist():
    assert [p.name for p in EXAMPLES][:1] == ["01_iv_bolus_organ_curves.py"]


@pytest.mark.parametrize("script", EXAMPLES, ids=lambda p: p.name)
def test_example_runs_and_writes_its_figure(script, tmp_path):
    figure = tmp_path / f"{script.stem}.png"
    proc = subprocess.run(
        [sys.executable, str(script), str(figure)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "MPLBACKEND": "Agg"},
        timeout=300,
    )

    assert proc.returncode == 0, proc.stderr
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
