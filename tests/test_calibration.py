"""The four calibration statements of the default mouse IV bolus, and the calibration script.

The statements are computed here from ``simulate`` output, independently of the script's own
``metrics``, with the tolerance the statement itself gives, not one tuned until green.

Two kinds, kept apart. ``-m calibration``: the 2-min initial blood half-life and the liver, lung
and spleen amounts at 4 h are the targets ``calibration/calibrate_mouse_iv.py`` fitted the
default parameters to; those tests re-assert the fit and pass by construction, so they are not
validation. ``-m validation``: statements the fit did not target (blood cleared by 0.5 h, the
liver the largest organ, the whole-body elimination half-life).
"""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest

import exopk

DOSE_PARTICLES = 1e10
SCRIPT = Path(__file__).resolve().parents[1] / "calibration" / "calibrate.py"
ORGANS = exopk.ORGANS  # lung, liver, spleen, kidney, brain, rest (not blood, not eliminated)


@pytest.fixture(scope="module")
def calibration():
    """The calibration script, imported from its path (it is not part of the package)."""
    spec = importlib.util.spec_from_file_location("calibrate", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _bolus(params, t_h) -> exopk.SimulationResult:
    return exopk.simulate(params, exopk.IVBolus(dose_particles=DOSE_PARTICLES), np.asarray(t_h, dtype=float))


@pytest.mark.calibration
def test_initial_blood_half_life_is_minutes(params):
    """(1) Initial blood half-life, from the slope of ln(blood %ID) between 1 and 5 min, in [1, 10] min.

    Takahashi et al. 2013 report ~2 min for B16BL6 exosomes; Lázaro-Ibáñez et al. 2021 < 10 min
    for all tracers. Calibration, not validation: the default parameters were fitted to the
    2-min half-life (``calibration/calibrate_mouse_iv.py``), so this re-asserts the fit.
    """
    t_min = np.array([1.0, 5.0])
    blood = _bolus(params, t_min / 60.0).percent_id("blood")

    slope_per_min = -np.diff(np.log(blood))[0] / np.diff(t_min)[0]
    half_life_min = math.log(2) / slope_per_min

    assert 1.0 <= half_life_min <= 10.0


@pytest.mark.validation
def test_blood_is_cleared_and_liver_holds_most_evs(params):
    """(2) Blood <= 10 %ID at 0.5 h; the liver holds more EVs than any other organ at 0.5 h and 4 h."""
    result = _bolus(params, [0.0, 0.5, 4.0])
    percent_id = {organ: result.percent_id(organ) for organ in ORGANS}

    assert result.percent_id("blood")[1] <= 10.0
    for row in (1, 2):
        largest = max(ORGANS, key=lambda organ: percent_id[organ][row])
        assert largest == "liver", f"at {result.t_h[row]} h the largest organ is {largest}"


@pytest.mark.validation
@pytest.mark.xfail(
    strict=True,
    reason="issue 13: the half-life itself is inside 1-6 h (3.3 h over 2-12 h, measured), but the curve is not "
    "log-linear there (residual 0.067 > 0.05): the liver (t1/2 ~2.6 h), the other organs and the stealth "
    "subpopulation (~7 h) mix; reported in docs/validation.md",
)
def test_whole_body_elimination_half_life_is_hours(params):
    """(3) Elimination-phase half-life of the intact EVs in the body (not yet eliminated): 1 to 6 h.

    Log-linear regression over 2-12 h, after distribution (minutes) is over.
    """
    t_h = np.linspace(2.0, 12.0, 11)
    result = _bolus(params, t_h)
    in_body = DOSE_PARTICLES - result.eliminated()

    slope_per_h = -np.polyfit(t_h, np.log(in_body), 1)[0]
    half_life_h = math.log(2) / slope_per_h

    assert 1.0 <= half_life_h <= 6.0
    # It is an elimination phase: the log-linear fit is good (the slope is constant).
    residuals = np.log(in_body) - np.polyval(np.polyfit(t_h, np.log(in_body), 1), t_h)
    assert np.max(np.abs(residuals)) < 0.05


# Morishita M et al. (2015) J Pharm Sci 104:705-713, 125I-labelled B16BL6 exosomes, i.v., mouse, 4 h.
MORISHITA_2015_PERCENT_ID_4H = {"liver": 28.0, "lung": 7.0, "spleen": 1.6}


@pytest.mark.calibration
@pytest.mark.parametrize("organ", list(MORISHITA_2015_PERCENT_ID_4H))
def test_organ_amounts_at_4h_within_2_fold_of_morishita_2015(params, organ):
    """(4) Liver 28, lung 7, spleen 1.6 %ID at 4 h (Morishita et al. 2015), each within 2-fold, through the 125I label.

    Calibration, not validation: these three numbers are targets the liver, lung and spleen
    uptake rates were fitted to (``calibration/calibrate_mouse_iv.py``, exactly: as many free
    parameters as targets), so this re-asserts the fit.

    The dataset counted radioactivity per organ: label on intact EVs plus iodine freed by
    their degradation that has not yet left the organ. The model's ``I-125`` label (bound +
    free, decay-corrected as counting reports it) is compared; the 2-fold band covers the
    difference between B16BL6 exosomes and the MSC-EVs of the default parameters.
    """
    measured = MORISHITA_2015_PERCENT_ID_4H[organ]
    dose = exopk.IVBolus(dose_particles=DOSE_PARTICLES)

    model = exopk.observe.simulate_label(params, dose, [0.0, 4.0], "I-125").label_percent_id(
        organ, decay_corrected=True
    )[1]

    assert measured / 2.0 <= model <= measured * 2.0


def test_calibration_script_measures_what_the_tests_measure(params, calibration):
    """The script's model points agree with independent computations through the studies' labels."""
    points = calibration.model_points(params)
    dose = exopk.IVBolus(dose_particles=DOSE_PARTICLES)
    t_h = [1 / 60, 5 / 60, 4.0]
    iodine = exopk.observe.simulate_label(params, dose, t_h, "I-125")
    luciferase = exopk.observe.simulate_label(params, dose, t_h, "Gluc-lactadherin")

    signal = luciferase.label_percent_id("blood")
    half_life_min = 4.0 * math.log(2) / math.log(signal[0] / signal[1])
    assert points["takahashi2013_blood_half_life_min"] == pytest.approx(half_life_min, rel=1e-9)
    for organ in MORISHITA_2015_PERCENT_ID_4H:
        counted = iodine.label_percent_id(organ, decay_corrected=True)[2]
        assert points[f"morishita2015_{organ}_percent_id_4h"] == pytest.approx(counted, rel=1e-9)
    stealth = _bolus(params, [2.0, 12.0]).subpopulation("stealth").percent_id("blood")
    assert points["stealth_blood_half_life_h"] == pytest.approx(10 * math.log(2) / math.log(stealth[0] / stealth[1]))


def test_more_points_than_constants_and_uncertainty_is_stored(calibration):
    """Regression test for #13: one joint fit, more points than constants, covariance next to the values."""
    import tomllib

    assert len(calibration.POINTS) > len(calibration.CONSTANTS)
    stored = tomllib.loads((Path(exopk.model.parameters.params_dir()) / "ev" / "msc_calibration.toml").read_text())
    names = list(stored["constants"])
    assert names == list(calibration.CONSTANTS)
    cov = np.array([stored["covariance"][n] for n in names])
    np.testing.assert_allclose(cov, cov.T, rtol=1e-4, atol=1e-12)
    assert np.all(np.linalg.eigvalsh(cov) >= -1e-9)  # positive semi-definite
    corr = np.array([stored["correlation"][n] for n in names])
    np.testing.assert_allclose(np.diag(corr), 1.0, atol=1e-3)


def test_shipped_values_equal_a_fresh_fit(calibration, capsys):
    """``calibrate.py --check``: the values in params/ev/msc.toml are the joint fit's output."""
    status = calibration.main(["--check"])
    out = capsys.readouterr()

    assert status == 0, out.out + out.err
    assert "largest relative difference shipped vs fitted" in out.out
