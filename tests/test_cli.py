"""The command line: outputs, and one clear line with the right exit status for every bad input."""

from __future__ import annotations

import re
import subprocess
import sys

import pandas as pd
import pytest

from exopk.cli import main

SIM = ["simulate", "--dose", "1e10", "--t-end", "6", "--dt", "0.1"]


def run(argv, capsys):
    status = main(argv)
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_simulate_writes_tidy_csv_and_png(tmp_path, capsys):
    out, plot = tmp_path / "sim.csv", tmp_path / "sim.png"
    status, stdout, err = run([*SIM, "--out", str(out), "--plot", str(plot)], capsys)

    assert status == 0, err
    table = pd.read_csv(out)
    assert list(table.columns) == ["time_h", "organ", "quantity", "value", "unit"]
    assert set(table["organ"]) == {"blood", "lung", "liver", "spleen", "kidney", "brain", "rest", "eliminated"}
    assert table["time_h"].max() == pytest.approx(6.0)
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(tmp_path.glob("*.part"))
    assert "liver" in stdout


def test_simulate_dose_in_ug_uses_the_given_factor(tmp_path, capsys):
    out = tmp_path / "sim.csv"
    status, _, err = run(
        [
            "simulate",
            "--dose",
            "10",
            "--dose-unit",
            "ug",
            "--particles-per-ug",
            "2e9",
            "--t-end",
            "1",
            "--dt",
            "0.5",
            "--out",
            str(out),
        ],
        capsys,
    )

    assert status == 0, err
    table = pd.read_csv(out)
    blood0 = table.query("time_h == 0 and organ == 'blood' and quantity == 'amount_particles'")["value"].item()
    assert blood0 == pytest.approx(2e10)


def test_simulate_infusion_and_regimen_file(tmp_path, capsys):
    regimen = tmp_path / "regimen.csv"
    regimen.write_text(
        "time_h,route,dose_particles,duration_h\n0,iv_bolus,1e10,\n2,iv_infusion,1e10,1\n", encoding="utf-8"
    )
    out = tmp_path / "sim.csv"
    status, _, err = run(
        ["simulate", "--regimen", str(regimen), "--t-end", "4", "--dt", "0.5", "--out", str(out)], capsys
    )

    assert status == 0, err
    table = pd.read_csv(out)
    total = table.query("time_h == 4 and quantity == 'percent_id' and organ != 'eliminated'")["value"].sum()
    eliminated = table.query("time_h == 4 and organ == 'eliminated' and quantity == 'percent_id'")["value"].item()
    assert total + eliminated == pytest.approx(100.0, rel=1e-9)


def test_set_changes_a_parameter(tmp_path, capsys):
    base, changed = tmp_path / "a.csv", tmp_path / "b.csv"
    assert run([*SIM, "--out", str(base)], capsys)[0] == 0
    # both vascular uptake terms (macrophage and non-macrophage, issue 13)
    setting = ["--set", "liver_uptake_vascular_per_h=1", "--set", "liver_macrophage_uptake_per_h=0"]
    assert run([*SIM, *setting, "--out", str(changed)], capsys)[0] == 0

    def liver_at_1h(path):
        t = pd.read_csv(path)
        return t.query("time_h == 1 and organ == 'liver' and quantity == 'percent_id'")["value"].item()

    # (the liver keeps its residual blood, 35 % of the blood volume since issue 13, hence not /5 any more)
    assert liver_at_1h(changed) < liver_at_1h(base) / 2


def test_params_show_lists_units_and_sources(capsys):
    status, stdout, _ = run(["params", "show"], capsys)

    assert status == 0
    assert "liver_uptake_vascular_per_h" in stdout
    assert "1/h" in stdout and "calibrate.py" in stdout


def test_params_show_csv(capsys, tmp_path):
    status, stdout, _ = run(["params", "show", "--csv"], capsys)
    path = tmp_path / "p.csv"
    path.write_text(stdout, encoding="utf-8")

    table = pd.read_csv(path)
    assert status == 0
    assert list(table.columns) == ["name", "value", "unit", "source", "description", "extrapolated"]
    assert table["source"].notna().all()


BAD_BROKEN_TOML = "[body\nbody_weight_g = 1\n"


@pytest.mark.parametrize(
    ("argv", "status", "message"),
    [
        (["simulate", "--dose", "-1"], 2, r"`--dose` must be positive and finite; got '-1'"),
        (["simulate", "--dose", "nan"], 2, r"`--dose` must be positive and finite; got 'nan'"),
        (["simulate", "--dose", "inf"], 2, r"`--dose` must be positive and finite; got 'inf'"),
        (["simulate", "--dose", "1e10", "--species", "dragon"], 2, r"unknown species 'dragon' \(`--species`\)"),
        (["simulate", "--dose", "1e10", "--route", "teleport"], 2, r"argument --route: invalid choice: 'teleport'"),
        (["simulate", "--dose", "1e10", "--organs", "liver,heart"], 2, r"unknown organ 'heart' in `--organs`"),
        (["simulate", "--dose", "10", "--dose-unit", "ug"], 2, r"needs `--particles-per-ug`"),
        (["simulate", "--dose", "1e10", "--route", "iv_infusion"], 2, r"needs `--duration`"),
        (["simulate", "--dose", "1e10", "--t-end", "0"], 2, r"`--t-end` must be positive"),
        (["simulate", "--dose", "1e10", "--set", "liver_volume_ml=-1"], 2, r"`liver_volume_ml` must be positive"),
        (["simulate", "--dose", "1e10", "--set", "not_a_parameter=1"], 2, r"unknown parameter 'not_a_parameter'"),
        (["simulate"], 2, r"give a dose with --dose"),
        (["frobnicate"], 2, r"invalid choice: 'frobnicate'"),
    ],
)
def test_bad_arguments_give_one_line_and_status(argv, status, message, capsys):
    got, stdout, err = run(argv, capsys)

    assert got == status
    assert err.count("\n") == 1 and err.startswith("exopk: error: ")
    assert re.search(message, err), err


def test_malformed_params_file_exits_1_naming_the_file(tmp_path, capsys):
    bad = tmp_path / "broken.toml"
    bad.write_text(BAD_BROKEN_TOML, encoding="utf-8")
    status, _, err = run(["simulate", "--dose", "1e10", "--species", str(bad)], capsys)

    assert status == 1
    assert "broken.toml" in err and "not valid TOML" in err
    assert err.count("\n") == 1


def test_incomplete_params_file_names_the_missing_key(tmp_path, capsys):
    from exopk.model.parameters import params_dir

    text = (params_dir() / "species" / "mouse.toml").read_text(encoding="utf-8")
    bad = tmp_path / "incomplete.toml"
    bad.write_text(
        "\n".join(line for line in text.splitlines() if not line.startswith("cardiac_output_ml_min")), encoding="utf-8"
    )
    status, _, err = run(["params", "show", "--species", str(bad)], capsys)

    assert status == 1
    assert "incomplete.toml" in err and "[body]" in err and "missing key 'cardiac_output_ml_min'" in err


@pytest.mark.parametrize("flag", ["--out", "--plot"])
def test_unwritable_output_exits_1_and_writes_nothing(tmp_path, flag, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory", encoding="utf-8")
    other = tmp_path / ("sim.png" if flag == "--out" else "sim.csv")
    other_flag = "--plot" if flag == "--out" else "--out"
    status, _, err = run([*SIM, flag, str(blocker / "sim.x"), other_flag, str(other)], capsys)

    assert status == 1
    assert f"`{flag}`" in err and "not a directory" in err
    assert not other.exists()


def test_failure_while_writing_leaves_no_partial_output(tmp_path, capsys, monkeypatch):
    import matplotlib.figure

    def broken_savefig(*_args, **_kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", broken_savefig)
    out, plot = tmp_path / "sim.csv", tmp_path / "sim.png"
    status, _, err = run([*SIM, "--out", str(out), "--plot", str(plot)], capsys)

    assert status == 1
    assert "No space left on device" in err
    assert list(tmp_path.iterdir()) == []


def test_no_traceback_from_a_real_process(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "exopk", "simulate", "--dose", "-5"],
        capture_output=True,
        text=True,
        encoding="utf-8",
        cwd=tmp_path,
    )

    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()]
