"""Every script in examples/ runs headless and writes its figure."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES_DIR = Path(__file__).resolve().parents[1] / "examples"
EXAMPLES = sorted(EXAMPLES_DIR.glob("*.py"))


def test_examples_exist():
    assert [p.name for p in EXAMPLES][:1] == ["01_iv_bolus_organ_curves.py"]


def test_every_file_in_examples_is_a_numbered_documented_script():
    """The list above is every file in examples/, and each one can become a tutorial page."""
    others = sorted(p.name for p in EXAMPLES_DIR.iterdir() if p.is_file() and p.suffix != ".py")
    assert others == []
    for script in EXAMPLES:
        assert re.fullmatch(r"\d\d_[a-z0-9_]+\.py", script.name), script.name
        docstring = ast.get_docstring(ast.parse(script.read_text(encoding="utf-8")))
        assert docstring and docstring.splitlines()[0].strip(), f"{script.name} needs a module docstring with a title"


@pytest.mark.parametrize("script", EXAMPLES, ids=lambda p: p.name)
def test_example_runs_and_writes_its_figure(script, tmp_path):
    import matplotlib.image

    figure = tmp_path / "figures" / f"{script.stem}.png"
    proc = subprocess.run(
        [sys.executable, str(script), str(figure)],
        capture_output=True,
        text=True,
        encoding="utf-8",
        cwd=tmp_path,
        env={**os.environ, "MPLBACKEND": "Agg"},
        timeout=300,
    )

    assert proc.returncode == 0, proc.stderr
    assert figure.is_file(), f"{script.name} wrote no figure at the path given as its argument"
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = matplotlib.image.imread(figure)
    assert image.shape[0] >= 200 and image.shape[1] >= 200
    assert image[..., :3].std() > 0.01, "the figure is blank"
