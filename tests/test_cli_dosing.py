"""Command-line dosing: repeats, steady state, event tables, doses after --t-end, exopk design."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import exopk
from exopk.cli import main


def run(argv, capsys):
    status = main(argv)
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def _liver(csv):
    table = pd.read_csv(csv)
    rows = table[(table["organ"] == "liver") & (table["quantity"] == "amount_particles")]
    return rows["time_h"].to_numpy(), rows["value"].to_numpy()


def test_every_and_n_doses_equal_the_python_repeat(params, tmp_path, capsys):
    out = tmp_path / "sim.csv"
    argv = ["simulate", "--dose", "1e10", "--every", "24", "--n-doses", "3", "--t-end", "72", "--dt", "1"]
    status, stdout, err = run([*argv, "--out", str(out)], capsys)
    assert status == 0, err
    t_h, liver = _liver(out)
    expected = exopk.simulate(params, exopk.Regimen.repeat(exopk.IVBolus(dose_particles=1e10), every_h=24, n=3), t_h)
    np.testing.assert_allclose(liver, expected.amount("liver"), rtol=1e-9)
    assert "total dose 3e+10 particles" in stdout


def test_a_dose_after_t_end_is_one_line_and_status_2(tmp_path, capsys):
    # Regression test for #12 (item 4): it gave all zeros (or every %ID halved) and exit 0.
    out = tmp_path / "sim.csv"
    status, stdout, err = run(["simulate", "--dose", "1e10", "--dose-time", "60", "--out", str(out)], capsys)
    assert status == 2
    assert err.count("\n") == 1 and "1 administration(s) start after --t-end 48 h (the first at 60 h" in err
    assert not out.exists()


def test_dropping_late_doses_says_so(capsys):
    status, stdout, _ = run(
        ["simulate", "--dose", "1e10", "--every", "24", "--n-doses", "7", "--doses-after-end", "drop"], capsys
    )
    assert status == 0
    assert "note: 4 administration(s) after 48 h not simulated" in stdout
    assert "total dose 3e+10 particles" in stdout


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--ss"], r"`--ss` needs `--every H`"),
        (["--n-doses", "3"], r"`--n-doses` needs `--every H`"),
        (["--every", "0"], r"`--every` must be positive and finite; got '0'"),
        (["--f", "2"], r"`--f` must be a fraction in \[0, 1\]; got '2'"),
        (["--rate", "1e9"], r"`--duration`/`--rate` make an infusion; route iv_bolus has none"),
    ],
)
def test_bad_regimen_options_give_one_line(argv, message, capsys):
    status, _, err = run(["simulate", "--dose", "1e10", *argv], capsys)
    assert status == 2
    assert err.count("\n") == 1
    import re

    assert re.search(message, err), err


def test_simulate_events_writes_one_table_with_an_id_column(tmp_path, capsys):
    events = tmp_path / "events.csv"
    rows = []
    for sid, wt in ((1, 0.02), (2, 0.03)):
        rows.append(
            {"id": sid, "time": 0, "amt": 4e11, "cmt": "iv_bolus", "evid": 1, "wt": wt, "amt_unit": "particles/kg"}
        )
        rows += [{"id": sid, "time": t, "amt": 0, "evid": 0, "wt": wt} for t in (1.0, 6.0)]
    pd.DataFrame(rows).to_csv(events, index=False)
    out = tmp_path / "out.csv"
    status, stdout, err = run(["simulate", "--events", str(events), "--out", str(out)], capsys)
    assert status == 0, err
    table = pd.read_csv(out)
    assert sorted(table["id"].unique()) == [1, 2]
    assert sorted(table["time_h"].unique()) == [1.0, 6.0]
    assert "2 subject(s)" in stdout and "1 batch(es)" in stdout


def test_simulate_events_refuses_evid_2_with_row_and_column(tmp_path, capsys):
    events = tmp_path / "events.csv"
    pd.DataFrame([{"ID": 1, "TIME": 0, "AMT": 0, "EVID": 2}]).to_csv(events, index=False)
    status, _, err = run(["simulate", "--events", str(events)], capsys)
    assert status == 1
    assert (
        err.count("\n") == 1 and "row 1 (line 2), ID 1, column EVID: EVID 2 (other-type events) is not supported" in err
    )


def test_design_writes_candidates_and_plot(tmp_path, capsys):
    out, plot = tmp_path / "design.csv", tmp_path / "design.png"
    argv = ["design", "--organ", "kidney", "--low", "1e6", "--high", "1e8", "--intervals", "4,8,24"]
    status, stdout, err = run([*argv, "--out", str(out), "--plot", str(plot)], capsys)
    assert status == 0, err
    table = pd.read_csv(out)
    assert list(table["interval_h"]) == [4.0, 8.0, 24.0]
    assert set(table["unit"]) == {"particles"}
    assert plot.stat().st_size > 0 and plot.read_bytes()[:4] == b"\x89PNG"
    chosen = table.loc[table["feasible"], "interval_h"].max()
    assert f"particles every {chosen:g} h keeps kidney" in stdout
