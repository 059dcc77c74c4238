"""The command line of issue 12: summaries at their times, output paths, numeric flags, figure formats."""

from __future__ import annotations

import argparse
import io
import os
import re

import numpy as np
import pandas as pd
import pytest

import exopk
from exopk.cli import build_parser, main
from exopk.cli._common import translate_hint
from exopk.cli._outputs import clip_round_off

FAST = ["--dose", "1e10", "--t-end", "2", "--dt", "0.5"]
MAGIC = {
    ".png": lambda b: b[:8] == b"\x89PNG\r\n\x1a\n",
    ".pdf": lambda b: b[:5] == b"%PDF-",
    ".svg": lambda b: b"<svg" in b[:2000] and b[:5] == b"<?xml",
    ".eps": lambda b: b[:10] == b"%!PS-Adobe",
    ".jpg": lambda b: b[:3] == b"\xff\xd8\xff",
    ".tiff": lambda b: b[:4] in (b"II*\x00", b"MM\x00*"),
}


def run(argv, capsys):
    status = main(argv)
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def one_line(err: str) -> bool:
    return err.count("\n") == 1 and err.startswith("exopk: error: ") and "Traceback" not in err


# --- item 1: the printed summary is simulated at its stated times --------------------------------


def test_summary_is_exact_at_its_times_with_a_coarse_grid(capsys):
    # Regression test for #12 item 1
    status, out, err = run(["simulate", "--dose", "1e10", "--t-end", "24", "--dt", "1"], capsys)
    assert status == 0, err
    exact = exopk.simulate(exopk.load_parameters(), exopk.IVBolus(dose_particles=1e10), [0.5, 4.0, 24.0])

    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines()[2:] if line and line[0] != " "}
    for organ in ("blood", "liver", "lung", "kidney"):
        shown = np.array([float(x) for x in rows[organ]])
        np.testing.assert_allclose(shown, exact.percent_id(organ), rtol=1e-3)
    # With --dt 1, interpolation between 0 h (100 %ID) and 1 h gave ~50 %ID blood at 0.5 h; the
    # simulated value is a few %ID (the slow phase of the stealth subpopulation, issue 13).
    assert float(rows["blood"][0]) < 5.0


def test_label_summary_is_exact_at_its_times(capsys):
    # Regression test for #12 item 1
    status, out, err = run(["simulate", "--dose", "1e10", "--t-end", "4", "--dt", "1", "--tracer", "DiR"], capsys)
    assert status == 0, err
    labelled = exopk.observe.simulate_label(
        exopk.load_parameters(), exopk.IVBolus(dose_particles=1e10), [0.5, 4.0], "DiR"
    )
    liver = next(line for line in out.splitlines()[::-1] if line.startswith("liver"))
    label_at_half_h = float(liver.split()[1])
    assert label_at_half_h == pytest.approx(labelled.label_percent_id("liver", decay_corrected=True)[0], rel=1e-3)


# --- item 2: output paths ----------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["symlink", "fifo", "directory", "device"])
def test_non_regular_output_targets_are_refused(kind, tmp_path, capsys):
    # Regression test for #12 item 2
    target = tmp_path / "out.csv"
    victim = tmp_path / "victim.csv"
    victim.write_text("keep me", encoding="utf-8")
    if kind == "symlink":
        target.symlink_to(victim)
    elif kind == "fifo":
        os.mkfifo(target)
    elif kind == "directory":
        target.mkdir()
    else:
        target = tmp_path / "null.csv"
        if not os.path.exists("/dev/null"):
            pytest.skip("no /dev/null")
        target = type(target)("/dev/null")
    status, out, err = run(["simulate", *FAST, "--out", str(target)], capsys)

    assert status == 1 and one_line(err), err
    expected = {"symlink": "symbolic link", "fifo": "FIFO", "directory": "directory", "device": "device"}[kind]
    assert "`--out`" in err and expected in err and str(target) in err
    assert victim.read_text(encoding="utf-8") == "keep me"
    assert not list(tmp_path.glob("*.part")) and out == ""
    if kind == "symlink":
        assert target.is_symlink()


@pytest.mark.parametrize(
    "argv",
    [
        ["simulate", *FAST, "--out", "{x}", "--plot", "{x}"],
        ["simulate", *FAST, "--out", "{x}", "--plot", "{dir}/../{base}/x.png"],
        ["compare", "--t-end", "1", "--dt", "0.5", "--out", "{x}", "--metrics", "{x}"],
        ["compare", "--t-end", "1", "--dt", "0.5", "--out", "-", "--metrics", "-"],
        ["population", "--n", "3", "--cv", "liver_uptake_vascular_per_h=0.3", "--out", "{x}", "--subjects", "{x}"],
        ["sensitivity", "--no-sobol", "--local-out", "{x}", "--tornado", "{x}"],
        ["fit", "data.csv", "--params", "liver_uptake_vascular_per_h", "--out", "{x}", "--report", "{x}"],
        ["image", "--tracer", "DiR", "--out", "{x}", "--times", "1"],  # one output: allowed (control)
    ],
)
def test_two_outputs_naming_one_file_are_refused(argv, tmp_path, capsys):
    # Regression test for #12 item 2
    x = tmp_path / "x.png"
    x.write_bytes(b"old")
    argv = [a.format(x=x, dir=tmp_path, base=tmp_path.name) for a in argv]
    status, out, err = run(argv, capsys)

    if argv[0] == "image":
        assert status == 0, err
        return
    assert status == 2 and one_line(err), err
    assert "both write" in err
    assert x.read_bytes() == b"old" and not list(tmp_path.glob("*.part"))


def test_out_dash_writes_the_csv_to_stdout_and_the_summary_to_stderr(capsys):
    # Regression test for #12 item 2
    status, out, err = run(["simulate", *FAST, "--out", "-"], capsys)

    assert status == 0, err
    table = pd.read_csv(io.StringIO(out))
    assert list(table.columns) == ["time_h", "organ", "quantity", "value", "unit"]
    assert table["time_h"].max() == pytest.approx(2.0)
    assert "%ID at 0.5 h" in err and "wrote" not in err


def test_figures_cannot_go_to_stdout(capsys):
    # Regression test for #12 item 2
    status, _, err = run(["simulate", *FAST, "--plot", "-"], capsys)
    assert status == 2 and one_line(err) and "`--plot -`" in err


def test_outputs_are_all_or_nothing(tmp_path, capsys, monkeypatch):
    # Regression test for #12 item 2: the figure fails after the CSV was staged; nothing is replaced.
    import exopk.plots.organs

    out, plot = tmp_path / "sim.csv", tmp_path / "sim.png"
    out.write_text("old table", encoding="utf-8")

    def broken(*args, **kwargs):
        raise exopk.SimulationError("figure failed")

    monkeypatch.setattr(exopk.plots.organs, "plot_organ_curves", broken)
    status, _, err = run(["simulate", *FAST, "--out", str(out), "--plot", str(plot)], capsys)

    assert status == 1 and one_line(err) and "figure failed" in err
    assert out.read_text(encoding="utf-8") == "old table" and not plot.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sim.csv"]


# --- item 6: negative-looking numbers reach the validator --------------------------------------


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["simulate", "--dose", "-1e10"], r"`--dose` must be positive and finite; got '-1e10'"),
        (["simulate", "--dose", "-inf"], r"`--dose` must be positive and finite; got '-inf'"),
        (
            ["simulate", "--dose", "10", "--dose-unit", "ug", "--particles-per-ug", "-2e9"],
            r"`--particles-per-ug` must be positive and finite; got '-2e9'",
        ),
        (["simulate", "--dose", "1e10", "--dose-time", "-1.5e0"], r"`--dose-time` must be finite and non-negative"),
        (["image", "--tracer", "DiR", "--times", "-1,2", "--out", "x.png"], r"`--times` must be finite.*got '-1'"),
        (["image", "--tracer", "DiR", "--times", "1,-2e1", "--out", "x.png"], r"`--times` .*got '-2e1'"),
        (["scale-dose", "--dose", "-1e10"], r"`--dose` must be positive and finite; got '-1e10'"),
        (["simulate", "--dose", "1e10", "--t-end", "-4e1"], r"`--t-end` must be positive and finite; got '-4e1'"),
    ],
)
def test_negative_values_name_the_flag_value_and_rule(argv, message, capsys):
    # Regression test for #12 item 6
    status, _, err = run(argv, capsys)
    assert status == 2 and one_line(err), err
    assert re.search(message, err), err
    assert "expected one argument" not in err


def test_an_option_after_a_value_taking_flag_is_still_an_option(capsys):
    # Negative numbers are values, but "--dose --plot" is still a missing value, not a dose.
    status, _, err = run(["simulate", "--dose", "--t-end", "4"], capsys)
    assert status == 2 and "expected one argument" in err


# --- item 7: figure formats from the extension -------------------------------------------------


@pytest.mark.parametrize("suffix", list(MAGIC))
def test_simulate_plot_honours_the_extension(suffix, tmp_path, capsys):
    # Regression test for #12 item 7
    plot = tmp_path / f"curves{suffix}"
    status, _, err = run(["simulate", *FAST, "--plot", str(plot)], capsys)
    assert status == 0, err
    assert MAGIC[suffix](plot.read_bytes())


@pytest.mark.parametrize(
    ("argv", "flag"),
    [
        (["image", "--tracer", "DiR", "--times", "1", "--out", "{p}.svg"], "--out"),
        (["compare", "--t-end", "1", "--dt", "0.5", "--plot", "{p}.pdf"], "--plot"),
        (
            [
                "population",
                "--n",
                "5",
                "--cv",
                "liver_uptake_vascular_per_h=0.3",
                "--t-end",
                "2",
                "--dt",
                "1",
                "--no-progress",
                "--plot",
                "{p}.pdf",
            ],
            "--plot",
        ),  # fmt: skip
        (
            [
                "sensitivity",
                "--no-sobol",
                "--t-end",
                "2",
                "--dt",
                "1",
                "--outputs",
                "liver_auc",
                "--no-progress",
                "--tornado",
                "{p}.svg",
            ],
            "--tornado",
        ),  # fmt: skip
    ],
)
def test_every_figure_output_honours_the_extension(argv, flag, tmp_path, capsys):
    # Regression test for #12 item 7
    argv = [a.format(p=tmp_path / "fig") for a in argv]
    path = tmp_path / argv[argv.index(flag) + 1]
    status, _, err = run(argv, capsys)
    assert status == 0, err
    assert MAGIC[path.suffix](path.read_bytes())


@pytest.mark.parametrize(
    "argv",
    [
        ["simulate", *FAST, "--plot", "{p}.gif"],
        ["simulate", *FAST, "--plot", "{p}"],
        ["image", "--tracer", "DiR", "--out", "{p}.bmp"],
        ["compare", "--plot", "{p}.docx"],
        ["population", "--n", "5", "--cv", "liver_uptake_vascular_per_h=0.3", "--plot", "{p}.html"],
        ["sensitivity", "--sobol-plot", "{p}.xlsx"],
        ["fit", "data.csv", "--params", "liver_uptake_vascular_per_h", "--plot", "{p}.txt"],
    ],
)
def test_unknown_figure_extensions_are_refused_before_any_work(argv, tmp_path, capsys):
    # Regression test for #12 item 7
    argv = [a.format(p=tmp_path / "fig") for a in argv]
    status, out, err = run(argv, capsys)
    assert status == 2 and one_line(err), err
    assert "expected a figure file ending in .png, .pdf, .svg" in err
    assert list(tmp_path.iterdir()) == [] and out == ""


# --- item 11: units in every CSV, round-off, help texts, solver hints ---------------------------


def _parsers(parser: argparse.ArgumentParser):
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from _parsers(sub)


def test_no_help_text_prints_a_doubled_percent_sign():
    # Regression test for #12 item 11
    helps = [p.format_help() for p in _parsers(build_parser())]
    assert len(helps) > 12
    offenders = [h.splitlines()[0] for h in helps if "%%" in h]
    assert offenders == []
    assert any("DTE % and DTP %" in " ".join(h.split()) for h in helps)


def test_sobol_csv_has_a_unit_column(tmp_path, capsys):
    # Regression test for #12 item 11
    sobol = tmp_path / "sobol.csv"
    argv = ["sensitivity", "--t-end", "2", "--dt", "1", "--outputs", "liver_auc", "--sobol-n", "8",
            "--sobol-parameters", "liver_uptake_vascular_per_h,lung_macrophage_uptake_per_h", "--no-progress",
            "--sobol-out", str(sobol)]  # fmt: skip
    status, _, err = run(argv, capsys)
    assert status == 0, err
    frame = pd.read_csv(sobol)
    assert (frame["unit"] == 1).all() or (frame["unit"].astype(str) == "1").all()


def test_population_bands_have_no_negative_round_off(tmp_path, capsys):
    # Regression test for #12 item 11
    bands = tmp_path / "bands.csv"
    argv = ["population", "--n", "40", "--cv", "liver_uptake_vascular_per_h=0.5", "--body-weight-cv", "0.2",
            "--t-end", "48", "--dt", "2", "--no-progress", "--out", str(bands)]  # fmt: skip
    status, _, err = run(argv, capsys)
    assert status == 0, err
    values = pd.read_csv(bands).drop(columns="time_h").to_numpy()  # wide: a column per organ and percentile
    assert (values >= 0).all()
    assert (values == 0).sum() < values.size  # real values are kept


def test_round_off_is_clipped_but_a_real_negative_raises():
    # Regression test for #12 item 11
    frame = pd.DataFrame(
        {
            "time_h": [0.0, 1.0, 2.0, 3.0],
            "organ": ["blood"] * 4,
            "quantity": ["percent_id", "percent_id", "amount_particles", "amount_particles"],
            "value": [-2e-14, 5.0, -3.0, 1e9],
            "unit": ["%ID", "%ID", "particles", "particles"],
        }
    )
    clipped = clip_round_off(frame, dose_particles=1e10)
    assert clipped["value"].tolist() == [0.0, 5.0, 0.0, 1e9]  # -3 particles is 3e-10 of the dose
    assert frame["value"].iloc[0] == -2e-14  # the input is not changed

    real = frame.assign(value=[-1e-3, 5.0, 1.0, 1.0])
    with pytest.raises(exopk.SimulationError, match=r"negative beyond round-off \(-0.001 %ID at time_h 0.0"):
        clip_round_off(real, dose_particles=1e10)


def test_stiff_solver_hint_names_real_options(capsys, monkeypatch):
    # Regression test for #12 item 11: the library names Python arguments; the CLI says its flags.
    import exopk.solve.linear

    class Failed:
        success = False
        message = "Required step size is less than spacing between numbers."
        t = np.array([0.25])

    monkeypatch.setattr(exopk.solve.linear, "solve_ivp", lambda *a, **k: Failed())
    argv = ["simulate", *FAST, "--method", "ode", "--solver", "BDF", "--set", "liver_capacity_particles=1e9"]
    status, _, err = run(argv, capsys)

    assert status == 1 and one_line(err), err
    assert "--solver Radau" in err and "`--rtol`" in err
    assert "solver='Radau'" not in err
    option_strings = {s for a in build_parser()._subparsers._group_actions[0].choices["simulate"]._actions
                      for s in a.option_strings}  # fmt: skip
    assert {"--solver", "--rtol"} <= option_strings


def test_a_hint_naming_options_a_command_lacks_is_dropped():
    message = "ODE solver (BDF) stopped early at t = 1 h: failed. Try solver='Radau' or a looser `rtol`."
    assert translate_hint(message, {"--dose"}) == "ODE solver (BDF) stopped early at t = 1 h: failed."
    assert translate_hint(message, {"--solver", "--rtol"}).endswith("Try --solver Radau or a looser `--rtol`.")
    assert translate_hint("no hint here.", set()) == "no hint here."


def test_library_errors_name_python_arguments_not_flags():
    # Regression test for #12 item 1 (structure): no CLI flag in the library's messages.
    with pytest.raises(exopk.ParameterError, match=r"unknown species 'dragon' \(`species`\)"):
        exopk.load_parameters("dragon")
    import exopk.model.parameters as parameters

    assert not hasattr(parameters, "_FLAGS")


# --- item 12: one fitted value shared by several parameters ------------------------------------


def test_fit_shares_one_value_between_parameters(tmp_path, capsys):
    # Regression test for #12 item 12
    shared = 0.7 * exopk.load_parameters()["liver_uptake_vascular_per_h"]
    names = ("liver_uptake_vascular_per_h", "spleen_uptake_vascular_per_h")
    truth = exopk.load_parameters().replace(**dict.fromkeys(names, shared))
    t_h = np.array([0.5, 1.0, 4.0, 8.0])
    result = exopk.simulate(truth, exopk.IVBolus(dose_particles=1e10), t_h)
    rng = np.random.default_rng(3)
    rows = [
        {"time_h": t, "organ": organ, "quantity": "percent_id", "value": v * np.exp(rng.normal(0, 0.05)), "unit": "%ID"}
        for organ in ("liver", "spleen", "blood")
        for t, v in zip(t_h, result.percent_id(organ), strict=True)
    ]
    data = tmp_path / "data.csv"
    pd.DataFrame(rows).to_csv(data, index=False)
    out, report = tmp_path / "fitted.toml", tmp_path / "report.md"
    argv = ["fit", str(data), "--params", "+".join(names), "--starts", "1", "--out", str(out),
            "--report", str(report)]  # fmt: skip
    status, stdout, err = run(argv, capsys)

    assert status == 0, err
    values = {}
    for line in out.read_text(encoding="utf-8").splitlines():
        match = re.match(r"(\w+) = \{ value = ([0-9.eE+-]+)", line)
        if match:
            values[match.group(1)] = float(match.group(2))
    assert set(values) == set(names)
    assert values[names[0]] == values[names[1]]
    assert values[names[0]] == pytest.approx(shared, rel=0.15)
    assert "+".join(names) in stdout and "+".join(names) in report.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ("liver_uptake_vascular_per_h+", r"empty name around '\+'"),
        ("liver_uptake_vascular_per_h+nope_per_h", r"unknown parameter 'nope_per_h' in `--params`"),
        ("liver_uptake_vascular_per_h,liver_uptake_vascular_per_h+spleen_uptake_vascular_per_h", r"twice"),
    ],
)
def test_fit_share_syntax_errors(params, message, tmp_path, capsys):
    # Regression test for #12 item 12
    status, _, err = run(["fit", str(tmp_path / "none.csv"), "--params", params], capsys)
    assert status == 2 and one_line(err), err
    assert re.search(message, err), err


def test_fit_refuses_to_share_a_value_between_units(tmp_path, capsys):
    # Regression test for #12 item 12
    data = tmp_path / "d.csv"
    data.write_text(
        "time_h,organ,quantity,value,unit\n1,liver,percent_id,50,%ID\n2,liver,percent_id,40,%ID\n", encoding="utf-8"
    )
    params = exopk.load_parameters().table().set_index("name")["unit"]
    other = next(n for n, u in params.items() if u != params["liver_uptake_vascular_per_h"])
    status, _, err = run(["fit", str(data), "--params", f"liver_uptake_vascular_per_h+{other}"], capsys)
    assert status == 2 and one_line(err) and "different units" in err


# --- item 13: the default plot -----------------------------------------------------------------


def test_default_plot_reads_in_words_and_shows_where_the_dose_went():
    # Regression test for #12 item 13
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from exopk.plots.organs import dose_fates_percent, plot_organ_curves

    result = exopk.simulate(exopk.load_parameters(), exopk.IVBolus(dose_particles=1e10), np.linspace(0, 48, 481))
    fig = plot_organ_curves(result)
    fig.canvas.draw()
    try:
        assert fig._suptitle.get_text() == "Mouse · IV bolus · 1×10¹⁰ EVs"
        early, whole, fates = fig.axes
        assert "intact EVs" in early.get_ylabel()
        # The organ legend sits outside the curves, to the right of the whole-run panel.
        legend = whole.get_legend()
        renderer = fig.canvas.get_renderer()
        assert legend.get_window_extent(renderer).x0 >= whole.get_window_extent(renderer).x1
        assert [t.get_text() for t in legend.get_texts()] == [
            "blood",
            "lung",
            "liver",
            "spleen",
            "kidney",
            "brain",
            "rest",
        ]
        # The floor comes from the data: blood falls (biphasic, issue 13) to ~1e-2 %ID by 48 h and is
        # drawn to the end.
        blood_end = result.percent_id("blood")[-1]
        assert blood_end < 0.1
        assert whole.get_ylim()[0] <= blood_end
        # Where the dose went: stacked to 100 %ID at every time, intact EVs first.
        shares = dose_fates_percent(result)
        np.testing.assert_allclose(sum(shares.values()), 100.0, rtol=1e-9)
        assert next(iter(shares)) == "intact EVs in the body" and "degraded in liver" in shares
        assert fates.get_title() == "where the dose went" and fates.get_legend() is not None
    finally:
        plt.close(fig)


def test_plot_title_counts_doses_and_names_routes_in_words():
    # Regression test for #12 item 13
    from exopk.plots.organs import particles_in_words, title_in_words

    regimen = exopk.Regimen([exopk.IVBolus(dose_particles=2.5e9), exopk.IVBolus(dose_particles=2.5e9, t_h=24.0)])
    result = exopk.simulate(exopk.load_parameters("rat"), regimen, [0.0, 1.0, 30.0])
    assert title_in_words(result) == "Rat · IV bolus · 2 doses, 5×10⁹ EVs in total"
    assert particles_in_words(9.9999e9) == "1×10¹⁰"
    assert particles_in_words(500) == "500"


def test_every_csv_the_cli_writes_carries_its_units(tmp_path, capsys):
    # Regression test for #12 item 11: a unit column, or the unit in the column name, for every number.
    p = {
        name: tmp_path / f"{name}.csv"
        for name in ("sim", "curves", "metrics", "nca", "bands", "subj", "local", "sobol")
    }
    grid = ["--t-end", "4", "--dt", "1"]
    runs = [
        ["simulate", "--dose", "1e10", *grid, "--out", str(p["sim"])],
        ["compare", *grid, "--out", str(p["curves"]), "--metrics", str(p["metrics"])],
        ["population", "--n", "4", "--cv", "liver_uptake_vascular_per_h=0.3", *grid, "--no-progress",
         "--out", str(p["bands"]), "--subjects", str(p["subj"])],
        ["sensitivity", *grid, "--outputs", "liver_auc", "--sobol-n", "8", "--no-progress",
         "--sobol-parameters", "liver_uptake_vascular_per_h,lung_macrophage_uptake_per_h",
         "--local-out", str(p["local"]), "--sobol-out", str(p["sobol"])],
    ]  # fmt: skip
    for argv in runs:
        status, _, err = run(argv, capsys)
        assert status == 0, err
    status, _, err = run(["nca", str(p["sim"]), "--quantity", "percent_id", "--out", str(p["nca"])], capsys)
    assert status == 0, err
    # The unit of each numeric column: a named unit column, or a unit suffix of the name itself.
    unit_of = {"value": "unit", "ci_low": "unit", "ci_high": "unit", "coefficient": "coefficient_unit",
               "nominal_output": "output_unit"}  # fmt: skip
    # Wide tables (population, #15) name the unit in each column; dimensionless NCA columns stay bare.
    unit_suffix = re.compile(r"_(h|unit|percent_id(_p[0-9.]+)?|percent_id_h|per_ml|ml|ml_per_h|per_h|percent)$")
    dimensionless = ("_c0_back_extrapolated", "_lambda_z_n_points", "_lambda_z_r2_adjusted")
    for name, path in p.items():
        frame = pd.read_csv(path)
        for column in frame.select_dtypes("number").columns:
            if column in ("subject", "unit") or unit_suffix.search(column) or column.endswith(dimensionless):
                continue  # an identifier, the unit is in the name, or there is none
            assert unit_of.get(column) in frame.columns, f"{name}.csv: column {column!r} has no unit"
            assert frame[unit_of[column]].notna().all(), f"{name}.csv: {column!r} has rows without a unit"


# --- item 1 of the brief: structure ------------------------------------------------------------


def test_every_command_is_one_module_with_one_entry_point():
    # Regression test for #12 (CLI structure): one module per command, one dispatch.
    import importlib.util

    from exopk.cli import COMMANDS

    names = [module.NAME for module in COMMANDS]
    commands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)).choices
    assert sorted(names) == sorted(commands)
    for module in COMMANDS:
        assert callable(module.add_parser) and callable(module.run)
        assert commands[module.NAME].get_default("run") is module.run
    assert importlib.util.find_spec("exopk.cli.main") is None


def test_library_error_messages_name_no_command_line_flag():
    # Regression test for #12 (CLI structure): library errors name Python arguments; the CLI adds flags.
    import ast
    from pathlib import Path

    root = Path(exopk.__file__).parent
    offenders = []
    for path in root.rglob("*.py"):
        if "cli" in path.relative_to(root).parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Raise) and node.exc is not None:
                for const in ast.walk(node.exc):
                    if isinstance(const, ast.Constant) and isinstance(const.value, str):
                        if re.search(r"(?<![\w-])--[a-z]", const.value):
                            offenders.append(f"{path.relative_to(root)}:{node.lineno}: {const.value!r}")
    assert offenders == []
