"""Routes on the command line: `exopk simulate --route ...` and `exopk compare`."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from exopk.cli import main


def run(argv, capsys):
    status = main(argv)
    captured = capsys.readouterr()
    return status, captured.out, captured.err


@pytest.mark.parametrize("route", ["intranasal", "intraperitoneal", "subcutaneous", "intratracheal"])
def test_simulate_a_depot_route(route, tmp_path, capsys):
    out = tmp_path / "sim.csv"
    status, stdout, err = run(
        ["simulate", "--route", route, "--dose", "1e10", "--t-end", "4", "--out", str(out)], capsys
    )

    assert status == 0, err
    table = pd.read_csv(out)
    first = table.query("time_h == 0 and quantity == 'percent_id'").set_index("organ")["value"]
    site = {"intranasal": "nasal_cavity", "intraperitoneal": "peritoneal_cavity", "subcutaneous": "subcutaneous_site"}
    assert first[site.get(route, "lung")] == pytest.approx(100.0)
    assert route in stdout


def test_simulate_local_injection_needs_a_site(tmp_path, capsys):
    out = tmp_path / "sim.csv"
    status, _, err = run(
        [
            "simulate",
            "--route",
            "local",
            "--site",
            "kidney_vascular",
            "--dose",
            "1e10",
            "--t-end",
            "1",
            "--out",
            str(out),
        ],
        capsys,
    )

    assert status == 0, err
    table = pd.read_csv(out)
    kidney0 = table.query("time_h == 0 and organ == 'kidney' and quantity == 'percent_id'")["value"].item()
    assert kidney0 == pytest.approx(100.0)


def test_compare_writes_curves_metrics_and_plot(tmp_path, capsys):
    curves, metrics, plot = tmp_path / "c.csv", tmp_path / "m.csv", tmp_path / "c.png"
    status, stdout, err = run(
        [
            "compare",
            "--routes",
            "iv_bolus,intranasal,intraperitoneal",
            "--dose",
            "1e10",
            "--t-end",
            "24",
            "--dt",
            "0.05",
            "--out",
            str(curves),
            "--metrics",
            str(metrics),
            "--plot",
            str(plot),
        ],
        capsys,
    )

    assert status == 0, err
    table = pd.read_csv(curves)
    assert list(table.columns) == ["time_h", "route", "organ", "quantity", "value", "unit"]
    assert set(table["route"]) == {"iv_bolus", "intranasal", "intraperitoneal"}
    m = pd.read_csv(metrics)
    assert list(m.columns) == ["route", "organ", "quantity", "value", "unit"]
    dte = m.query("route == 'intranasal' and quantity == 'dte_percent'")["value"].item()
    assert dte > 100.0
    f_ip = m.query("route == 'intraperitoneal' and quantity == 'bioavailability_fraction'")["value"].item()
    assert 0.0 < f_ip < 1.0
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "DTE %" in stdout and "intranasal" in stdout


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["compare", "--routes", "iv_bolus,teleport"], r"unknown route 'teleport' in `--routes`"),
        (["compare", "--routes", "iv_bolus,iv_bolus"], r"lists a route twice"),
        (["compare", "--routes", "iv_infusion"], r"route iv_infusion needs `--duration`"),
        (["compare", "--routes", "local"], r"route local needs `--site"),
        (["compare", "--routes", "local", "--site", "heart_tissue"], r"`--site` must be <organ>_<vascular\|tissue>"),
        (["compare", "--routes", "intranasal", "--site", "kidney_tissue"], r"`--site` applies to route local only"),
        (["compare", "--organs", "brain,spleen_cells"], r"unknown place 'spleen_cells' in `--organs`"),
        (
            # --duration on a depot route is an infusion into the depot (issue 14); on iv_bolus it is refused
            ["simulate", "--route", "iv_bolus", "--dose", "1e10", "--duration", "2"],
            r"`--duration`/`--rate` make an infusion; route iv_bolus has none",
        ),
        (["simulate", "--route", "local", "--dose", "1e10"], r"route local needs `--site"),
    ],
)
def test_bad_route_arguments_give_one_line_and_status_2(argv, message, capsys):
    status, _, err = run(argv, capsys)

    assert status == 2
    assert err.count("\n") == 1 and err.startswith("exopk: error: ")
    assert re.search(message, err), err


def test_compare_failure_writes_nothing(tmp_path, capsys):
    curves = tmp_path / "c.csv"
    status, _, err = run(["compare", "--routes", "local", "--site", "heart_tissue", "--out", str(curves)], capsys)

    assert status == 2
    assert not curves.exists() and not list(tmp_path.iterdir())


def test_image_of_an_intranasal_dose(tmp_path, capsys):
    out = tmp_path / "in.png"
    status, stdout, err = run(
        ["image", "--tracer", "DiR", "--route", "intranasal", "--times", "1", "--out", str(out)], capsys
    )

    assert status == 0, err
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "intranasal" in stdout


def test_tracer_table_of_an_intranasal_dose_lists_the_nasal_cavity(tmp_path, capsys):
    out = tmp_path / "in.csv"
    argv = ["simulate", "--route", "intranasal", "--dose", "1e10", "--tracer", "DiR", "--t-end", "2", "--out", str(out)]
    status, _, err = run(argv, capsys)

    assert status == 0, err
    table = pd.read_csv(out)
    organs = set(table["organ"])
    assert "nasal_cavity" in organs and "peritoneal_cavity" not in organs
    label = table.query("organ == 'nasal_cavity' and quantity == 'label_percent_id' and time_h == 0")["value"].item()
    assert label == pytest.approx(100.0)


def test_population_of_an_intranasal_dose_and_of_a_regimen(tmp_path, capsys):
    """Depot routes reach the analysis commands; a regimen replaces their default dose."""
    status, stdout, err = run(
        [
            "population",
            "--route",
            "intranasal",
            "--cv",
            "liver_uptake_vascular_per_h=0.3",
            "--n",
            "50",
            "--no-progress",
        ],
        capsys,
    )
    assert status == 0, err
    assert "50 subjects" in stdout

    regimen = tmp_path / "regimen.csv"
    regimen.write_text("time_h,route,dose_particles\n0,iv_bolus,1e10\n24,intranasal,1e10\n", encoding="utf-8")
    argv = ["population", "--regimen", str(regimen), "--cv", "liver_uptake_vascular_per_h=0.3", "--n", "50"]
    status, _, err = run([*argv, "--no-progress"], capsys)
    assert status == 0, err


def test_nasal_volume_sends_part_of_the_dose_to_the_lungs(tmp_path, capsys):
    """--nasal-volume-ul 50: 55.7 % of the dose starts in the lung airspace (Southam et al. 2002)."""
    out = tmp_path / "in.csv"
    argv = ["simulate", "--route", "intranasal", "--dose", "1e10", "--nasal-volume-ul", "50", "--t-end", "1"]
    status, _, err = run([*argv, "--out", str(out)], capsys)

    assert status == 0, err
    table = pd.read_csv(out)
    lung0 = table.query("time_h == 0 and organ == 'lung' and quantity == 'percent_id'")["value"].item()
    assert lung0 == pytest.approx(55.7)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["simulate", "--dose", "1e10", "--nasal-volume-ul", "5"], r"`--nasal-volume-ul` applies to route intranasal"),
        (["simulate", "--route", "intranasal", "--dose", "1", "--nasal-volume-ul", "80"], r"at most 50 µL"),
        (["simulate", "--route", "intranasal", "--dose", "1", "--anaesthetised"], r"`--anaesthetised` needs"),
    ],
)
def test_bad_nasal_volume_options(argv, message, capsys):
    status, _, err = run(argv, capsys)

    assert status == 2
    assert re.search(message, err), err
