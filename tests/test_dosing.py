"""Doses, infusions, regimens (from tables and CSV files) and protein-to-particle conversion."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

import exopk
from exopk.model.graph import N_LIVE

# --------------------------------------------------------------------------------------
# IVBolus and IVInfusion
# --------------------------------------------------------------------------------------


def test_bolus_and_infusion_attributes():
    bolus = exopk.IVBolus(dose_particles=1e10, t_h=2.0)
    infusion = exopk.IVInfusion(dose_particles=6e10, duration_h=3.0, t_h=1.0)

    assert bolus.route == "iv_bolus"
    assert bolus.end_h == 2.0
    assert infusion.route == "iv_infusion"
    assert infusion.rate_particles_per_h == 2e10
    assert infusion.end_h == 4.0
    assert set(exopk.ROUTES) == {
        "iv_bolus",
        "iv_infusion",
        "intranasal",
        "intraperitoneal",
        "subcutaneous",
        "intratracheal",
        "local",
    }


def test_a_dose_of_zero_particles_is_allowed():
    assert exopk.IVBolus(dose_particles=0.0).dose_particles == 0.0


@pytest.mark.parametrize("dose_type", [exopk.IVBolus, exopk.IVInfusion])
@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("dose_particles", -1.0, r"`dose_particles` must be finite and non-negative; got -1.0"),
        ("dose_particles", math.nan, r"`dose_particles` must be finite and non-negative; got nan"),
        ("dose_particles", math.inf, r"`dose_particles` must be finite and non-negative; got inf"),
        ("dose_particles", "1e10", r"`dose_particles` must be a number; got '1e10'"),
        ("dose_particles", True, r"`dose_particles` must be a number; got True"),
        ("t_h", -0.5, r"`t_h` must be finite and non-negative; got -0.5"),
        ("t_h", math.nan, r"`t_h` must be finite and non-negative; got nan"),
    ],
)
def test_dose_validation(dose_type, field, value, message):
    kwargs = {"dose_particles": 1e10, "t_h": 0.0, field: value}
    if dose_type is exopk.IVInfusion:
        kwargs["duration_h"] = 1.0

    with pytest.raises(exopk.DosingError, match=message):
        dose_type(**kwargs)


@pytest.mark.parametrize(
    ("duration_h", "message"),
    [
        (0.0, r"`duration_h` of an infusion must be positive and finite; got 0.0"),
        (-1.0, r"`duration_h` of an infusion must be positive and finite; got -1.0"),
        (math.nan, r"`duration_h` of an infusion must be positive and finite; got nan"),
        (math.inf, r"`duration_h` of an infusion must be positive and finite; got inf"),
        ("2h", r"`duration_h` must be a number; got '2h'"),
    ],
)
def test_infusion_duration_validation(duration_h, message):
    with pytest.raises(exopk.DosingError, match=message):
        exopk.IVInfusion(dose_particles=1e10, duration_h=duration_h)


# Regression test for a bug found while writing the suite (numpy numbers and booleans).
def test_infusion_accepts_numpy_integer_duration():
    infusion = exopk.IVInfusion(dose_particles=np.int64(10**10), duration_h=np.int64(2), t_h=np.int64(1))

    assert infusion.end_h == 3.0


def test_dosing_error_is_a_value_error():
    assert issubclass(exopk.DosingError, ValueError)
    assert issubclass(exopk.DosingError, exopk.ExopkError)


# --------------------------------------------------------------------------------------
# Regimen
# --------------------------------------------------------------------------------------


def test_regimen_sorts_doses_and_sums_them():
    late = exopk.IVBolus(dose_particles=1e10, t_h=24.0)
    early = exopk.IVInfusion(dose_particles=2e10, duration_h=1.0, t_h=0.5)
    regimen = exopk.Regimen([late, early])

    assert regimen.doses == (early, late)
    assert regimen.total_particles == 3e10
    assert regimen.first_h == 0.5


def test_regimen_events_put_doses_into_venous_blood():
    regimen = exopk.Regimen(
        [exopk.IVBolus(dose_particles=1e10, t_h=2.0), exopk.IVInfusion(dose_particles=6e10, duration_h=3.0, t_h=1.0)]
    )
    events = regimen.events()
    venous = exopk.model.STATES.index("blood_venous")

    np.testing.assert_array_equal(events.bolus_t_h, [2.0])
    assert events.bolus_amounts.shape == (1, N_LIVE)
    assert events.bolus_amounts[0, venous] == 1e10
    assert events.bolus_amounts.sum() == 1e10
    np.testing.assert_array_equal(events.infusion_start_h, [1.0])
    np.testing.assert_array_equal(events.infusion_end_h, [4.0])
    assert events.infusion_rates[0, venous] == 2e10
    assert events.infusion_rates.sum() == 2e10
    np.testing.assert_allclose(
        events.administered(np.array([0.0, 1.0, 2.0, 2.5, 4.0, 10.0])), [0, 0, 3e10, 4e10, 7e10, 7e10]
    )


def test_regimen_rejects_entries_that_are_not_doses():
    with pytest.raises(exopk.DosingError, match=r"regimen entry 1 must be a dose \(e.g. IVBolus, Intranasal\); got"):
        exopk.Regimen([exopk.IVBolus(dose_particles=1.0), {"dose_particles": 1.0}])


def test_simulate_accepts_a_list_of_doses(params):
    doses = [exopk.IVBolus(dose_particles=1e10), exopk.IVBolus(dose_particles=1e10, t_h=1.0)]
    t_h = [0.0, 0.5, 2.0]

    from_list = exopk.simulate(params, doses, t_h)
    from_regimen = exopk.simulate(params, exopk.Regimen(doses), t_h)

    np.testing.assert_array_equal(from_list.amounts_particles, from_regimen.amounts_particles)


@pytest.mark.parametrize(
    ("regimen", "message"),
    [
        ([], r"`regimen` has no doses"),
        (exopk.Regimen([]), r"`regimen` has no doses"),
        ("iv_bolus", r"`regimen` must be a dose, a list of doses or a Regimen; got str"),
        (1e10, r"`regimen` must be a dose, a list of doses or a Regimen; got float"),
    ],
)
def test_simulate_rejects_bad_regimens(params, regimen, message):
    with pytest.raises(exopk.DosingError, match=message):
        exopk.simulate(params, regimen, [0.0, 1.0])


# --------------------------------------------------------------------------------------
# Regimen.from_frame and from_csv
# --------------------------------------------------------------------------------------


def test_from_frame_reads_boluses_and_infusions():
    table = pd.DataFrame(
        {
            "time_h": [0.0, 24.0, 2.0],
            "route": ["iv_bolus", "iv_bolus", "iv_infusion"],
            "dose_particles": [1e10, 2e10, 3e10],
            "duration_h": [np.nan, 0.0, 1.5],
        }
    )

    regimen = exopk.Regimen.from_frame(table)

    assert regimen.doses == (
        exopk.IVBolus(dose_particles=1e10, t_h=0.0),
        exopk.IVInfusion(dose_particles=3e10, duration_h=1.5, t_h=2.0),
        exopk.IVBolus(dose_particles=2e10, t_h=24.0),
    )


def test_from_frame_without_duration_column_gives_boluses():
    table = pd.DataFrame({"time_h": [0.0], "route": ["iv_bolus"], "dose_particles": [5e9]})

    assert exopk.Regimen.from_frame(table).doses == (exopk.IVBolus(dose_particles=5e9, t_h=0.0),)


def test_from_frame_converts_micrograms_with_the_given_factor():
    table = pd.DataFrame(
        {"time_h": [0.0, 1.0], "route": ["iv_bolus", "iv_infusion"], "dose_ug": [10.0, 2.0], "duration_h": [0, 4]}
    )

    regimen = exopk.Regimen.from_frame(table, particles_per_ug=2e9)

    assert [d.dose_particles for d in regimen.doses] == [2e10, 4e9]


@pytest.mark.parametrize(
    ("columns", "kwargs", "message"),
    [
        (
            {"time_h": [0.0], "route": ["iv_bolus"], "dose_ug": [10.0]},
            {},
            r"regimen: doses in `dose_ug` need an explicit `particles_per_ug` factor \(no default is assumed\)",
        ),
        (
            {"time_h": [0.0], "route": ["iv_bolus"], "dose_ug": [10.0], "dose_particles": [1e10]},
            {},
            r"give exactly one of the columns `dose_particles`, `dose_ug` or `dose_particles_per_kg`",
        ),
        (
            {"time_h": [0.0], "route": ["iv_bolus"]},
            {},
            r"give exactly one of the columns `dose_particles`, `dose_ug` or `dose_particles_per_kg`",
        ),
        ({"route": ["iv_bolus"], "dose_particles": [1e10]}, {}, r"missing column `time_h`"),
        ({"time_h": [0.0], "dose_particles": [1e10]}, {}, r"missing column `route`"),
        (
            {"time_h": [0.0], "route": ["iv_bolus"], "dose_particles": [1e10], "species": ["mouse"]},
            {},
            r"unknown column\(s\) \['species'\]",
        ),
        ({"time_h": [], "route": [], "dose_particles": []}, {}, r"the regimen has no doses"),
        (
            {"time_h": [0.0, 1.0], "route": ["iv_bolus", "oral"], "dose_particles": [1e10, 1e10]},
            {},
            r"regimen, dose row 2: unknown route 'oral'; expected one of: iv_bolus, iv_infusion",
        ),
        (
            {"time_h": [0.0], "route": ["iv_bolus"], "dose_particles": [-1e10]},
            {},
            r"dose row 1: `dose_particles` must be finite and non-negative; got -10000000000.0",
        ),
        (
            {"time_h": [0.0], "route": ["iv_bolus"], "dose_particles": [np.nan]},
            {},
            r"dose row 1: `dose_particles` must be finite and non-negative; got nan",
        ),
        (
            {"time_h": [0.0], "route": ["iv_bolus"], "dose_ug": [-3.0]},
            {"particles_per_ug": 1e9},
            r"dose row 1: `dose_ug` must be finite and non-negative; got -3.0",
        ),
        (
            {"time_h": [-1.0], "route": ["iv_bolus"], "dose_particles": [1e10]},
            {},
            r"dose row 1: `t_h` must be finite and non-negative; got -1.0",
        ),
        (
            {"time_h": [0.0], "route": ["iv_infusion"], "dose_particles": [1e10], "duration_h": [0.0]},
            {},
            r"dose row 1: `duration_h` of an infusion must be positive and finite; got 0.0",
        ),
        (
            {"time_h": [0.0], "route": ["iv_infusion"], "dose_particles": [1e10], "duration_h": [np.nan]},
            {},
            r"dose row 1: an iv_infusion needs `duration_h` \(h\) or `rate_particles_per_h`",
        ),
        (
            {"time_h": [0.0], "route": ["iv_bolus"], "dose_particles": [1e10], "duration_h": [2.0]},
            {},
            r"dose row 1: an iv_bolus dose has no duration or rate \(0 or empty\); got `duration_h` 2.0",
        ),
        (
            {"time_h": [0.0], "route": ["iv_bolus"], "dose_particles": ["many"]},
            {},
            r"dose row 1: `dose_particles` must be a number; got 'many'",
        ),
    ],
)
def test_from_frame_errors(columns, kwargs, message):
    with pytest.raises(exopk.DosingError, match=message):
        exopk.Regimen.from_frame(pd.DataFrame(columns), **kwargs)


def test_from_csv(tmp_path):
    path = tmp_path / "regimen.csv"
    path.write_text("time_h,route,dose_ug,duration_h\n0,iv_bolus,50,\n12,iv_infusion,100,2\n", encoding="utf-8")

    regimen = exopk.Regimen.from_csv(path, particles_per_ug=1e9)

    assert regimen.doses == (
        exopk.IVBolus(dose_particles=5e10, t_h=0.0),
        exopk.IVInfusion(dose_particles=1e11, duration_h=2.0, t_h=12.0),
    )


def test_from_csv_errors_name_the_file(tmp_path):
    path = tmp_path / "regimen.csv"
    path.write_text("time_h,route,dose_ug\n0,iv_bolus,50\n", encoding="utf-8")

    with pytest.raises(exopk.DosingError, match=rf"{path}: doses in `dose_ug` need an explicit `particles_per_ug`"):
        exopk.Regimen.from_csv(path)

    path.write_text("time_h,route,dose_particles\n0,iv_push,1e10\n", encoding="utf-8")
    with pytest.raises(exopk.DosingError, match=rf"{path}, dose row 1: unknown route 'iv_push'"):
        exopk.Regimen.from_csv(path)


def test_from_csv_unreadable_files(tmp_path):
    missing = tmp_path / "missing.csv"
    with pytest.raises(exopk.DosingError, match=r"regimen file '.*missing\.csv' does not exist"):
        exopk.Regimen.from_csv(missing)

    empty = tmp_path / "empty.csv"
    empty.write_text("", encoding="utf-8")
    with pytest.raises(exopk.DosingError, match=r"regimen file '.*empty\.csv' is empty; expected a CSV table"):
        exopk.Regimen.from_csv(empty)


# --------------------------------------------------------------------------------------
# particles_from_protein
# --------------------------------------------------------------------------------------


def test_particles_from_protein():
    assert exopk.particles_from_protein(10.0, 2.5e9) == 2.5e10
    assert exopk.particles_from_protein(0.0, 1e9) == 0.0


@pytest.mark.parametrize(
    ("dose_ug", "particles_per_ug", "message"),
    [
        (-1.0, 1e9, r"`dose_ug` must be finite and non-negative; got -1.0"),
        (math.nan, 1e9, r"`dose_ug` must be finite and non-negative; got nan"),
        (10.0, 0.0, r"`particles_per_ug` must be positive and finite; got 0.0"),
        (10.0, -1e9, r"`particles_per_ug` must be positive and finite; got -1000000000.0"),
        (10.0, math.inf, r"`particles_per_ug` must be positive and finite; got inf"),
        (10.0, math.nan, r"`particles_per_ug` must be positive and finite; got nan"),
        (10.0, None, r"`particles_per_ug` must be a number; got None"),
        (10.0, True, r"`particles_per_ug` must be a number; got True"),
    ],
)
def test_particles_from_protein_errors(dose_ug, particles_per_ug, message):
    with pytest.raises(exopk.DosingError, match=message):
        exopk.particles_from_protein(dose_ug, particles_per_ug)


# Regression test for a bug found while writing the suite (numpy numbers and booleans).
def test_particles_from_protein_accepts_numpy_integers():
    assert exopk.particles_from_protein(np.int64(10), np.int64(10**9)) == 1e10


def test_infusion_from_rate():
    infusion = exopk.IVInfusion.from_rate(2e9, duration_h=3.0, t_h=1.0)

    assert infusion.dose_particles == pytest.approx(6e9)
    assert infusion.rate_particles_per_h == pytest.approx(2e9)
    assert infusion.end_h == 4.0


@pytest.mark.parametrize(("rate", "duration"), [(-1.0, 1.0), (float("nan"), 1.0), (1e9, 0.0)])
def test_infusion_from_rate_rejects_bad_values(rate, duration):
    with pytest.raises(exopk.DosingError, match=r"`(rate_particles_per_h|duration_h)`"):
        exopk.IVInfusion.from_rate(rate, duration_h=duration)
