"""A non-editable `pip install .` carries the parameter files and works from any directory."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_pip_install_finds_bundled_params_from_any_directory(tmp_path):
    target = tmp_path / "site"
    build = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(target),
            str(ROOT),
        ],
        capture_output=True,
        text=True,
        encoding="utf-8",
    )
    assert build.returncode == 0, build.stderr
    assert (target / "exopk" / "params" / "species" / "mouse.toml").is_file()
    assert (target / "exopk" / "params" / "ev" / "msc.toml").is_file()
    assert (target / "exopk" / "params" / "datasets" / "morishita2015_iv_mouse.csv").is_file()
    assert (target / "exopk" / "app" / "static" / "index.html").is_file()  # the web page (issue 16)

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(target), "MPLBACKEND": "Agg"}
    code = (
        "import exopk, exopk.model.parameters as p; "
        "print(exopk.__file__); print(p.params_dir()); "
        "print(exopk.load_parameters()['liver_volume_ml'])"
    )
    probe = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, encoding="utf-8", cwd=elsewhere, env=env
    )
    assert probe.returncode == 0, probe.stderr
    module_file, params_dir, liver = probe.stdout.split("\n")[:3]
    assert module_file.startswith(str(target)), "imported the source checkout instead of the installed copy"
    assert params_dir.startswith(str(target))
    assert float(liver) == pytest.approx(1.375)

    cli = subprocess.run(
        [
            sys.executable,
            "-m",
            "exopk",
            "simulate",
            "--dose",
            "1e9",
            "--t-end",
            "2",
            "--out",
            "sim.csv",
            "--plot",
            "sim.png",
        ],
        capture_output=True,
        text=True,
        encoding="utf-8",
        cwd=elsewhere,
        env=env,
    )
    assert cli.returncode == 0, cli.stderr
    assert (elsewhere / "sim.csv").stat().st_size > 0 and (elsewhere / "sim.png").stat().st_size > 0
