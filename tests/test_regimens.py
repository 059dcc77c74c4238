"""Regimen semantics against hand-checked equivalents: repeats, steady state, lag, bioavailability,
infusions by rate or duration, per-kg doses, resets, doses after the last output time, the cost
of many doses, and NONMEM-style event tables with several subjects."""

from __future__ import annotations

import dataclasses
import tracemalloc

import numpy as np
import pandas as pd
import pytest

import exopk
from exopk.analysis.subjects import allometric_values, simulate_subjects
from exopk.model.graph import N_LIVE

DOSE = 1e10


def _amounts(params, regimen, t_h, **kwargs):
    return exopk.simulate(params, regimen, t_h, **kwargs).amounts_particles


@pytest.fixture(scope="module")
def capacity_params(params):
    return params.replace(liver_capacity_particles=5e9, spleen_capacity_particles=2e9)


# --------------------------------------------------------------------------------------
# Repeats
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["exact", "expm"])
def test_an_addl_series_equals_the_explicit_list(params, method):
    t_h = np.linspace(0.0, 100.0, 401)
    explicit = [exopk.IVBolus(dose_particles=DOSE, t_h=12.0 * k) for k in range(8)]
    series = exopk.IVBolus(dose_particles=DOSE, ii_h=12.0, addl=7)

    np.testing.assert_allclose(
        _amounts(params, series, t_h, method=method),
        _amounts(params, explicit, t_h, method=method),
        rtol=0,
        atol=1e-9 * DOSE,
    )
    assert exopk.Regimen([series]).total_particles == 8 * DOSE


def test_repeat_and_addl_agree_for_an_infusion_into_the_subcutaneous_depot(params):
    t_h = np.linspace(0.0, 60.0, 241)
    one = exopk.Infusion(dose_particles=DOSE, duration_h=2.0, into="subcutaneous")
    explicit = [
        exopk.Infusion(dose_particles=DOSE, duration_h=2.0, into="subcutaneous", t_h=24.0 * k) for k in range(3)
    ]

    np.testing.assert_allclose(
        _amounts(params, exopk.Regimen.repeat(one, every_h=24.0, n=3), t_h),
        _amounts(params, explicit, t_h),
        rtol=0,
        atol=1e-9 * DOSE,
    )


def test_event_stepping_agrees_with_modal_superposition(params):
    """Past 8 administrations the regimen is solved by stepping; both are exact, so they agree to round-off."""
    t_h = np.linspace(0.0, 30.0, 301)
    doses = [
        exopk.IVBolus(dose_particles=DOSE, t_h=0.0),
        exopk.Intranasal(dose_particles=2 * DOSE, t_h=3.0),
        exopk.Infusion(dose_particles=DOSE, duration_h=1.5, into="kidney_vascular", t_h=5.0),
    ]
    superposed = exopk.simulate(params, doses, t_h)
    padded = doses + [exopk.IVBolus(dose_particles=0.0, t_h=7.0 + k) for k in range(10)]
    stepped = exopk.simulate(params, padded, t_h)

    assert "n_intervals" in stepped.metadata and "n_intervals" not in superposed.metadata
    np.testing.assert_allclose(stepped.amounts_particles, superposed.amounts_particles, rtol=0, atol=1e-11 * DOSE)
    assert stepped.mass_balance_error() < 1e-10


def test_repeated_intervals_reuse_one_propagator_and_memory_does_not_grow_with_doses(params):
    # Regression test for #12 (item 5): 365 daily doses took 1.25 GB.
    def peak_mb(n_doses: int) -> tuple[float, dict]:
        regimen = exopk.Regimen.repeat(exopk.IVBolus(dose_particles=DOSE), every_h=24.0, n=n_doses)
        t_h = np.linspace(0.0, 24.0 * n_doses, 4 * n_doses + 1)
        tracemalloc.start()
        result = exopk.simulate(params, regimen, t_h)
        peak = tracemalloc.get_traced_memory()[1] / 1e6
        tracemalloc.stop()
        return peak, dict(result.metadata)

    peak_365, meta = peak_mb(365)
    assert meta["n_propagators"] == 1  # every interval is 24 h
    assert meta["n_intervals"] == 365
    assert peak_365 < 50.0  # output array (1461 x 45 floats) and event list, not doses x times


# --------------------------------------------------------------------------------------
# Steady state
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "dose",
    [
        exopk.IVBolus(dose_particles=DOSE, ii_h=24.0, ss=1),
        exopk.Infusion(dose_particles=DOSE, duration_h=4.0, ii_h=24.0, ss=1, into="subcutaneous"),
    ],
    ids=["iv_bolus", "subcutaneous_infusion"],
)
def test_ss_equals_the_state_after_many_doses(params, dose):
    tau = 24.0
    at_ss = exopk.simulate(params, dose, np.linspace(0.0, tau, 49))
    n = 40  # slowest mode 0.1/h: exp(-0.1 x 24 x 39) ~ 1e-41
    plain = dataclasses.replace(dose, ss=0)
    many = exopk.simulate(
        params, exopk.Regimen.repeat(plain, every_h=tau, n=n), (n - 1) * tau + np.linspace(0, tau, 49)
    )

    live = slice(0, N_LIVE)
    np.testing.assert_allclose(
        at_ss.amounts_particles[:, live], many.amounts_particles[:, live], rtol=0, atol=1e-9 * DOSE
    )
    # Two doses are not yet at steady state, and the test tells them apart (10x its tolerance).
    few = exopk.simulate(params, exopk.Regimen.repeat(plain, every_h=tau, n=2), tau + np.linspace(0, tau, 49))
    assert np.max(np.abs(few.amounts_particles[:, live] - at_ss.amounts_particles[:, live])) > 1e-8 * DOSE
    # %ID at steady state is relative to one dose; the body holds the carried-over amount too.
    assert at_ss.dose_particles == DOSE
    assert at_ss.mass_balance_error() < 1e-10


def test_ss_of_the_capacity_limited_model_is_iterated_and_reports_intervals(capacity_params):
    tau = 12.0
    dose = exopk.IVBolus(dose_particles=DOSE, ii_h=tau, ss=1)
    at_ss = exopk.simulate(capacity_params, dose, np.linspace(0.0, tau, 13))
    n_intervals = at_ss.metadata["ss_intervals"][0]
    assert at_ss.method == "ode" and n_intervals >= 2

    n = n_intervals + 10
    regimen = exopk.Regimen.repeat(exopk.IVBolus(dose_particles=DOSE), every_h=tau, n=n)
    many = exopk.simulate(capacity_params, regimen, (n - 1) * tau + np.linspace(0.0, tau, 13))
    np.testing.assert_allclose(
        at_ss.amounts_particles[:, :N_LIVE], many.amounts_particles[:, :N_LIVE], atol=1e-7 * DOSE
    )


# --------------------------------------------------------------------------------------
# Lag, bioavailability, infusions, per-kg
# --------------------------------------------------------------------------------------


def test_lag_equals_a_shifted_dose(params):
    t_h = np.linspace(0.0, 12.0, 121)
    lagged = _amounts(params, exopk.Subcutaneous(dose_particles=DOSE, t_h=1.0, lag_h=0.75), t_h)
    shifted = _amounts(params, exopk.Subcutaneous(dose_particles=DOSE, t_h=1.75), t_h)
    np.testing.assert_allclose(lagged, shifted, rtol=0, atol=1e-12 * DOSE)

    by_route = exopk.Regimen([exopk.Subcutaneous(dose_particles=DOSE, t_h=1.0)], lag_h_by_route={"subcutaneous": 0.75})
    np.testing.assert_allclose(_amounts(params, by_route, t_h), shifted, rtol=0, atol=1e-12 * DOSE)


def test_bioavailability_equals_a_scaled_dose_and_keeps_the_nominal_reference(params):
    t_h = np.linspace(0.0, 12.0, 61)
    partial = exopk.simulate(params, exopk.Intraperitoneal(dose_particles=DOSE, f=0.3), t_h)
    scaled = exopk.simulate(params, exopk.Intraperitoneal(dose_particles=0.3 * DOSE), t_h)

    np.testing.assert_allclose(partial.amounts_particles, scaled.amounts_particles, rtol=1e-12, atol=1e-12 * DOSE)
    assert partial.dose_particles == DOSE  # %ID of the dose given, not of the amount that entered
    np.testing.assert_allclose(partial.percent_id("liver"), 0.3 * scaled.percent_id("liver"), rtol=1e-12)

    by_route = exopk.Regimen([exopk.Intraperitoneal(dose_particles=DOSE, f=0.5)], f_by_route={"intraperitoneal": 0.6})
    np.testing.assert_allclose(_amounts(params, by_route, t_h), scaled.amounts_particles, rtol=1e-12, atol=1e-12 * DOSE)


@pytest.mark.parametrize("into", ["iv", "subcutaneous", "kidney_vascular", "brain_tissue"])
def test_rate_and_duration_infusions_agree(params, into):
    t_h = np.linspace(0.0, 10.0, 101)
    by_rate = exopk.Infusion(dose_particles=DOSE, rate_particles_per_h=DOSE / 2.5, into=into, t_h=0.5)
    by_duration = exopk.Infusion(dose_particles=DOSE, duration_h=2.5, into=into, t_h=0.5)

    assert by_rate.duration_h == 2.5
    np.testing.assert_allclose(_amounts(params, by_rate, t_h), _amounts(params, by_duration, t_h), rtol=1e-12, atol=0)


def test_an_iv_infusion_equals_infusion_into_iv(params):
    t_h = np.linspace(0.0, 5.0, 51)
    np.testing.assert_array_equal(
        _amounts(params, exopk.IVInfusion(dose_particles=DOSE, duration_h=1.0), t_h),
        _amounts(params, exopk.Infusion(dose_particles=DOSE, duration_h=1.0, into="iv"), t_h),
    )


def test_per_kg_doses_scale_with_the_model_body_weight(params):
    t_h = np.linspace(0.0, 4.0, 9)
    weight_kg = params.values["body_weight_g"] / 1000.0
    per_kg = exopk.simulate(params, exopk.IVBolus(dose_particles_per_kg=4e11), t_h)
    absolute = exopk.simulate(params, exopk.IVBolus(dose_particles=4e11 * weight_kg), t_h)

    assert per_kg.dose_particles == pytest.approx(4e11 * weight_kg, rel=1e-15)
    np.testing.assert_allclose(per_kg.amounts_particles, absolute.amounts_particles, rtol=1e-14)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"dose_particles": DOSE, "addl": 3}, r"addl=3 needs a positive dosing interval `ii_h`; got ii_h=0.0"),
        ({"dose_particles": DOSE, "ss": 1}, r"ss=1 needs a positive dosing interval `ii_h`"),
        ({"dose_particles": DOSE, "ss": 2, "ii_h": 24.0}, r"ss=2 \(steady state added to the current state\) is not"),
        ({"dose_particles": DOSE, "f": 1.5}, r"`f` must be a fraction in \[0, 1\]; got 1.5"),
        ({"dose_particles": DOSE, "lag_h": -1.0}, r"`lag_h` must be finite and non-negative; got -1.0"),
        (
            {"dose_particles": DOSE, "addl": 1.5, "ii_h": 2.0},
            r"`addl` \(additional doses\) must be a non-negative integer",
        ),
        ({}, r"give exactly one of `dose_particles` or `dose_particles_per_kg`"),
        ({"dose_particles": 1.0, "dose_particles_per_kg": 1.0}, r"give exactly one of `dose_particles`"),
    ],
)
def test_dose_fields_are_validated(kwargs, message):
    with pytest.raises(exopk.DosingError, match=message):
        exopk.IVBolus(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"dose_particles": DOSE}, r"an infusion needs `duration_h` \(h\) or `rate_particles_per_h`; got neither"),
        ({"dose_particles": DOSE, "duration_h": 1.0, "into": "stomach"}, r"`into` of an infusion must be 'iv'"),
        (
            {"dose_particles": DOSE, "duration_h": 1.0, "rate_particles_per_h": 1.0},
            r"`duration_h` 1.0 and `rate_particles_per_h` 1.0 disagree with the dose",
        ),
        (
            {"dose_particles": DOSE, "duration_h": 30.0, "ii_h": 24.0, "addl": 2},
            r"a repeated infusion must end before the next one starts: `duration_h` 30 h > `ii_h` 24 h",
        ),
    ],
)
def test_infusion_fields_are_validated(kwargs, message):
    with pytest.raises(exopk.DosingError, match=message):
        exopk.Infusion(**kwargs)


# --------------------------------------------------------------------------------------
# Doses after the last output time (regression test for #12, item 4)
# --------------------------------------------------------------------------------------


def test_a_dose_after_the_last_output_time_is_an_error_by_default(params):
    regimen = [exopk.IVBolus(dose_particles=DOSE), exopk.IVBolus(dose_particles=DOSE, t_h=60.0)]
    with pytest.raises(exopk.DosingError, match=r"1 administration\(s\) \(1e\+10 particles\) start after the last"):
        exopk.simulate(params, regimen, np.linspace(0.0, 48.0, 97))


def test_every_dose_after_the_end_is_an_error_even_when_dropping(params):
    with pytest.raises(exopk.DosingError, match=r"every dose starts after the last output time 48 h"):
        exopk.simulate(params, exopk.IVBolus(dose_particles=DOSE, t_h=50.0), [0.0, 48.0], doses_after_end="drop")


def test_dropped_late_doses_change_no_output_and_are_not_in_the_reference(params):
    t_h = np.linspace(0.0, 48.0, 97)
    alone = exopk.simulate(params, exopk.IVBolus(dose_particles=DOSE), t_h)
    with_late = exopk.simulate(
        params, exopk.IVBolus(dose_particles=DOSE, ii_h=24.0, addl=4), t_h, doses_after_end="drop"
    )
    doses_by_48 = exopk.simulate(params, exopk.IVBolus(dose_particles=DOSE, ii_h=24.0, addl=2), t_h)

    assert with_late.metadata["doses_after_end"] == 2
    assert with_late.dose_particles == 3 * DOSE  # the doses at 0, 24 and 48 h, not 5 (every %ID was diluted)
    np.testing.assert_array_equal(with_late.amounts_particles, doses_by_48.amounts_particles)
    np.testing.assert_array_equal(with_late.percent_id("liver"), doses_by_48.percent_id("liver"))
    assert not np.allclose(with_late.amounts_particles, alone.amounts_particles)


# --------------------------------------------------------------------------------------
# Resets and event tables
# --------------------------------------------------------------------------------------


def test_a_reset_and_dose_equals_a_fresh_start(params):
    t_h = np.linspace(0.0, 20.0, 81)
    regimen = exopk.Regimen(
        [exopk.IVBolus(dose_particles=DOSE), exopk.IVBolus(dose_particles=DOSE, t_h=10.0)], resets_h=[10.0]
    )
    reset = exopk.simulate(params, regimen, t_h)
    fresh = exopk.simulate(params, exopk.IVBolus(dose_particles=DOSE), np.linspace(0.0, 10.0, 41))

    np.testing.assert_allclose(reset.amounts_particles[40:], fresh.amounts_particles, rtol=0, atol=1e-12 * DOSE)
    assert reset.dose_particles == DOSE  # the occasion that gives most, not the sum of occasions
    assert reset.mass_balance_error() < 1e-10


def _table(rows):
    return pd.DataFrame(rows)


def test_event_table_columns_are_case_insensitive_and_match_the_python_regimen(params):
    table = _table(
        [
            {"id": 1, "time": 0.0, "amt": DOSE, "cmt": "iv_bolus", "evid": 1, "ii": 12.0, "addl": 3},
            {"id": 1, "time": 6.0, "amt": 2 * DOSE, "cmt": "local:kidney_vascular", "evid": 1, "Rate": DOSE},
            {"id": 1, "time": 10.0, "amt": DOSE, "cmt": "subcutaneous", "evid": 1, "dur": 2.0, "lag": 0.5, "F": 0.5},
        ]
    )
    regimen = exopk.Regimen.from_events(table)
    expected = exopk.Regimen(
        [
            exopk.IVBolus(dose_particles=DOSE, ii_h=12.0, addl=3),
            exopk.Infusion(dose_particles=2 * DOSE, rate_particles_per_h=DOSE, into="kidney_vascular", t_h=6.0),
            exopk.Infusion(dose_particles=DOSE, duration_h=2.0, into="subcutaneous", t_h=10.0, lag_h=0.5, f=0.5),
        ]
    )
    assert regimen == expected


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"EVID": 2, "AMT": 0}, r"row 1 \(line 2\), ID 1, column EVID: EVID 2 \(other-type events\) is not supported"),
        ({"RATE": -1}, r"row 1 \(line 2\), ID 1, column RATE: RATE -1 \(rate or duration estimated in the model\)"),
        ({"RATE": -2}, r"column RATE: RATE -2"),
        ({"CMT": "1"}, r"column CMT: unknown compartment '1'; expected a route"),
        ({"CMT": "local:stomach_tissue"}, r"row 1 \(line 2\), ID 1: `organ` of a local injection must be one of"),
        ({"SS": 2, "II": 24}, r"column SS: SS 2 is not supported"),
        ({"AMT_UNIT": "mg"}, r"column AMT_UNIT: unknown unit 'mg'"),
        ({"AMT_UNIT": "ug"}, r"column AMT_UNIT: doses in ug need an explicit `particles_per_ug` factor"),
        ({"RATE": 1e9, "DUR": 2}, r"columns RATE and DUR: give one of them"),
        ({"CMT": "iv_bolus", "DUR": 2}, r"an iv_bolus dose has no duration or rate"),
        ({"ADDL": 2}, r"addl=2 needs a positive dosing interval `ii_h`"),
        ({"WT": -3}, r"column WT: body weight must be positive \(kg\); got -3"),
        ({"TIME": "soon"}, r"column TIME: expected a number; got 'soon'"),
        ({"COLOUR": "red"}, r"unknown column\(s\) \['COLOUR'\]"),
    ],
)
def test_event_table_refuses_what_it_does_not_support(row, message):
    base = {"ID": 1, "TIME": 0.0, "AMT": DOSE, "CMT": "iv_bolus", "EVID": 1}
    base.update(row)
    with pytest.raises(exopk.DosingError, match=message):
        exopk.Regimen.from_events(_table([base]))


def test_event_table_refuses_decreasing_time_and_changing_weight():
    rows = [
        {"ID": 7, "TIME": 5.0, "AMT": DOSE, "CMT": "iv_bolus", "EVID": 1, "WT": 0.02},
        {"ID": 7, "TIME": 1.0, "AMT": 0, "EVID": 0, "WT": 0.02},
    ]
    with pytest.raises(exopk.DosingError, match=r"row 2 \(line 3\), ID 7, column TIME: 1 h is before the previous"):
        exopk.Regimen.from_events(_table(rows))
    rows[1].update(TIME=6.0, WT=0.03)
    with pytest.raises(exopk.DosingError, match=r"time-varying body weight is not supported"):
        exopk.Regimen.from_events(_table(rows))


def _three_subjects(extra=None):
    rows = []
    for sid, weight_kg in ((1, 0.018), (2, 0.025), (3, 0.040)):
        rows.append(
            {
                "ID": sid,
                "TIME": 0.0,
                "AMT": 4e11,
                "AMT_UNIT": "particles/kg",
                "CMT": "iv_bolus",
                "EVID": 1,
                "II": 24.0,
                "ADDL": 1,
                "WT": weight_kg,
                **(extra or {}),
            }
        )
        rows += [{"ID": sid, "TIME": t, "AMT": 0.0, "EVID": 0, "WT": weight_kg} for t in (0.25, 2.0, 24.0, 30.0)]
    return _table(rows)


def test_subjects_sharing_a_structure_run_in_one_batch_and_match_single_runs(params):
    result = simulate_subjects(params, _three_subjects())
    assert result.metadata == {"n_batches": 1, "n_single": 0}

    for sid, weight_kg in ((1, 0.018), (3, 0.040)):
        own = params.replace(**allometric_values(params, weight_kg))
        regimen = exopk.Regimen.repeat(exopk.IVBolus(dose_particles=4e11 * weight_kg), every_h=24.0, n=2)
        single = exopk.simulate(own, regimen, [0.25, 2.0, 24.0, 30.0])
        np.testing.assert_allclose(
            result.amounts_particles[sid], single.organ_amounts_particles(), rtol=1e-9, atol=1e-9 * DOSE
        )
        assert result.dose_particles[sid] == pytest.approx(2 * 4e11 * weight_kg)

    frame = result.to_frame()
    assert list(frame.columns) == ["id", "body_weight_kg", "time_h", "organ", "quantity", "value", "unit"]
    assert sorted(frame["id"].unique()) == [1, 2, 3]
    assert set(frame.loc[frame["quantity"] == "percent_id", "unit"]) == {"%ID"}
    # heavier subjects have larger organs, hence different %ID curves
    assert not np.allclose(result.percent_id(1, "liver"), result.percent_id(3, "liver"))


def test_subjects_with_steady_state_are_simulated_one_by_one(params):
    result = simulate_subjects(params, _three_subjects({"SS": 1}))
    assert result.metadata == {"n_batches": 0, "n_single": 3}


# --------------------------------------------------------------------------------------
# Regimen design
# --------------------------------------------------------------------------------------


def test_the_designed_regimen_keeps_the_organ_in_the_window_after_many_explicit_doses(params):
    from exopk.analysis.design import design_regimen

    design = design_regimen(params, exopk.IVBolus(dose_particles=DOSE), "kidney", 1e6, 1e8, intervals_h=(4, 8, 12, 24))
    feasible = design.candidates[design.candidates["feasible"]]
    # the longest feasible interval is chosen (24 h with model 2's slower kidney phase)
    assert design.feasible and design.interval_h == feasible["interval_h"].max()
    tau, n = design.interval_h, 30
    regimen = exopk.Regimen.repeat(exopk.IVBolus(dose_particles=design.dose_particles), every_h=tau, n=n)
    last = exopk.simulate(params, regimen, (n - 1) * tau + np.linspace(0.0, tau, 241)).amount("kidney")
    assert 1e6 <= last.min() and last.max() <= 1e8
    # the dose range is tight: the lowest dose just reaches the trough, the highest the peak
    row = design.candidates.set_index("interval_h").loc[tau]
    np.testing.assert_allclose(row["trough"] * row["dose_min_particles"] / DOSE, 1e6, rtol=1e-9)
    np.testing.assert_allclose(row["peak"] * row["dose_max_particles"] / DOSE, 1e8, rtol=1e-9)


def test_a_percent_id_window_selects_the_interval_only(params):
    from exopk.analysis.design import design_regimen

    design = design_regimen(
        params, exopk.Intranasal(dose_particles=DOSE), "brain", 0.01, 10.0, quantity="percent_id", extravascular=True
    )
    assert design.dose_particles in (None, DOSE)
    feasible = design.candidates[design.candidates["feasible"]]
    assert (feasible["trough"] >= 0.01).all() and (feasible["peak"] <= 10.0).all()


def test_design_refuses_bad_windows(params):
    from exopk.analysis.design import DesignError, design_regimen

    with pytest.raises(DesignError, match=r"the window needs `low` < `high`; got low=5.0, high=1.0"):
        design_regimen(params, exopk.IVBolus(dose_particles=DOSE), "kidney", 5.0, 1.0)
    with pytest.raises(DesignError, match=r"`organ` must be one of"):
        design_regimen(params, exopk.IVBolus(dose_particles=DOSE), "heart", 1.0, 5.0)


# --------------------------------------------------------------------------------------
# Regimen CSV columns, and analyses that refuse what they cannot do
# --------------------------------------------------------------------------------------


def test_regimen_csv_takes_repeats_infusions_into_depots_and_per_kg(tmp_path):
    path = tmp_path / "regimen.csv"
    path.write_text(
        "time_h,route,dose_particles_per_kg,duration_h,rate_particles_per_h,site,ii_h,addl,lag_h,f\n"
        "0,subcutaneous,4e11,2,,,24,6,0.5,0.6\n"
        "1,local,2e11,,1e11,kidney_vascular,,,,\n",
        encoding="utf-8",
    )
    regimen = exopk.Regimen.from_csv(path)

    assert regimen.doses == (
        exopk.Infusion(
            dose_particles_per_kg=4e11, duration_h=2.0, into="subcutaneous", ii_h=24.0, addl=6, lag_h=0.5, f=0.6
        ),
        exopk.Infusion(dose_particles_per_kg=2e11, rate_particles_per_h=1e11, into="kidney_vascular", t_h=1.0),
    )
    assert regimen.n_administrations == 8
    assert regimen.for_body_weight(0.025).total_particles == pytest.approx(7 * 4e11 * 0.025 + 2e11 * 0.025)


def test_aucs_from_time_zero_refuse_steady_state(params):
    with pytest.raises(exopk.DosingError, match=r"auc_to_infinity integrates from time 0 and does not take"):
        exopk.analysis.auc_to_infinity(params, exopk.IVBolus(dose_particles=DOSE, ii_h=24.0, ss=1))


# --------------------------------------------------------------------------------------
# Property: any repeated regimen, by stepping, equals its superposition
# --------------------------------------------------------------------------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=15, deadline=None)
@given(
    ii_h=st.floats(min_value=0.5, max_value=12.0),
    addl=st.integers(min_value=8, max_value=20),
    route=st.sampled_from(["iv_bolus", "subcutaneous", "intranasal", "intraperitoneal"]),
    infused_h=st.one_of(st.none(), st.floats(min_value=0.1, max_value=0.5)),
    lag_h=st.floats(min_value=0.0, max_value=2.0),
    f=st.floats(min_value=0.1, max_value=1.0),
)
def test_stepping_equals_superposition_of_single_doses(params, ii_h, addl, route, infused_h, lag_h, f):
    """The stepped solution of an addl series is the sum of the single-dose responses (linearity, time shift)."""
    if route == "iv_bolus" and infused_h is not None:
        route = "iv_infusion"
    dose = exopk.dosing.dose_for_route(
        route, dose_particles=DOSE, duration_h=infused_h, ii_h=ii_h, addl=addl, lag_h=lag_h, f=f
    )
    t_h = np.linspace(0.0, ii_h * (addl + 1) + 3.0, 157)
    stepped = exopk.simulate(params, dose, t_h)
    single = dataclasses.replace(dose, ii_h=0.0, addl=0, lag_h=0.0)
    reference = exopk.simulate(params, single, t_h)
    total = np.zeros_like(stepped.amounts_particles)
    for k in range(addl + 1):
        shift = lag_h + k * ii_h
        # the single dose's response, shifted in time (exact at every output: solved at t - shift)
        later = t_h >= shift
        if later.any():
            total[later] += exopk.simulate(params, single, t_h[later] - shift).amounts_particles
    np.testing.assert_allclose(stepped.amounts_particles, total, rtol=0, atol=1e-9 * DOSE)  # `single` keeps f
    assert stepped.mass_balance_error() < 1e-9
    assert reference.dose_particles == DOSE
