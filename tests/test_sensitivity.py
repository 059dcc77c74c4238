"""Local and Sobol sensitivity: Ishigami indices, finite differences against single runs, errors, CLI."""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pandas as pd
import pytest

import exopk
from exopk.cli import main

DOSE = exopk.IVBolus(dose_particles=1e10)
T_H = np.linspace(0.0, 24.0, 49)
ISHIGAMI_S1 = np.array([0.3139, 0.4424, 0.0])
ISHIGAMI_ST = np.array([0.5576, 0.4424, 0.2437])


def ishigami(X, a=7.0, b=0.1):
    return np.sin(X[:, 0]) + a * np.sin(X[:, 1]) ** 2 + b * X[:, 2] ** 4 * np.sin(X[:, 0])


@pytest.fixture(scope="module")
def params():
    return exopk.load_parameters()


@pytest.fixture(scope="module")
def ishigami_indices():
    return exopk.analysis.sobol_indices(ishigami, [[-np.pi, np.pi]] * 3, 8192, seed=11, names=["x1", "x2", "x3"])


def test_ishigami_known_indices(ishigami_indices):
    r = ishigami_indices
    assert r.n_evaluations == 8192 * 8
    np.testing.assert_allclose(r.first_order[:, 0], ISHIGAMI_S1, atol=0.02)
    np.testing.assert_allclose(r.total_order[:, 0], ISHIGAMI_ST, atol=0.02)
    # the only interaction is x1-x3: S13 = ST1 - S1 = 0.2437
    assert r.second_order[0, 2, 0] == pytest.approx(0.2437, abs=0.03)
    assert abs(r.second_order[0, 1, 0]) < 0.03 and abs(r.second_order[1, 2, 0]) < 0.03


def test_ishigami_confidence_intervals_cover_the_truth(ishigami_indices):
    r = ishigami_indices
    assert np.all(r.first_order_ci[0, :, 0] <= ISHIGAMI_S1) and np.all(ISHIGAMI_S1 <= r.first_order_ci[1, :, 0])
    assert np.all(r.total_order_ci[0, :, 0] <= ISHIGAMI_ST) and np.all(ISHIGAMI_ST <= r.total_order_ci[1, :, 0])
    assert np.all(r.total_order_ci[1] - r.total_order_ci[0] < 0.1)


def test_ishigami_indices_tighten_with_n():
    small = exopk.analysis.sobol_indices(ishigami, [[-np.pi, np.pi]] * 3, 256, seed=1, second_order=False)
    assert small.n_evaluations == 256 * 5 and small.second_order is None
    big_error = np.max(np.abs(small.total_order[:, 0] - ISHIGAMI_ST))
    width_small = np.mean(small.total_order_ci[1] - small.total_order_ci[0])
    large = exopk.analysis.sobol_indices(ishigami, [[-np.pi, np.pi]] * 3, 4096, seed=1, second_order=False)
    width_large = np.mean(large.total_order_ci[1] - large.total_order_ci[0])
    assert width_large < 0.5 * width_small
    assert np.max(np.abs(large.total_order[:, 0] - ISHIGAMI_ST)) < max(big_error, 0.02)


def test_sobol_same_seed_same_numbers():
    a = exopk.analysis.sobol_indices(ishigami, [[-np.pi, np.pi]] * 3, 256, seed=5)
    b = exopk.analysis.sobol_indices(ishigami, [[-np.pi, np.pi]] * 3, 256, seed=5)
    np.testing.assert_array_equal(a.first_order, b.first_order)
    np.testing.assert_array_equal(a.total_order_ci, b.total_order_ci)


def test_additive_log_uniform_function_has_no_interactions():
    """f = ln x1 + 2 ln x2 with x log-uniform: S1 = ST = (1, 4) / 5."""
    r = exopk.analysis.sobol_indices(
        lambda X: np.log(X[:, 0]) + 2 * np.log(X[:, 1]), [[1, np.e], [1, np.e]], 2048, log_scale=True, seed=2
    )
    np.testing.assert_allclose(r.first_order[:, 0], [0.2, 0.8], atol=0.01)
    np.testing.assert_allclose(r.total_order[:, 0], [0.2, 0.8], atol=0.01)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"bounds": [[0, 1]], "n": 100}, "power of 2"),
        ({"bounds": [[1, 0]], "n": 64}, "lower < upper"),
        ({"bounds": [[-1, 1]], "n": 64, "log_scale": True}, "positive bounds"),
        ({"bounds": [[0, 1]], "n": 64, "confidence": 1.5}, "confidence"),
    ],
)
def test_sobol_invalid(kwargs, match):
    with pytest.raises(exopk.SensitivityError, match=match):
        exopk.analysis.sobol_indices(lambda X: X[:, 0], **kwargs)


def test_local_coefficients_match_single_simulations(params):
    names = ["liver_uptake_vascular_per_h", "brain_degradation_per_h", "liver_vascular_fraction"]
    local = exopk.analysis.local_sensitivity(
        params, DOSE, T_H, ("brain_auc", "liver_cmax"), parameters=names, progress=False
    )
    base = exopk.simulate(params, DOSE, T_H).percent_id("liver").max()
    for i, name in enumerate(names):
        h = 1e-3
        up = exopk.simulate(params.replace(**{name: params[name] * (1 + h)}), DOSE, T_H).percent_id("liver").max()
        down = exopk.simulate(params.replace(**{name: params[name] * (1 - h)}), DOSE, T_H).percent_id("liver").max()
        assert local.coefficients[i, 1] == pytest.approx((up - down) / (2 * h * base), rel=1e-3, abs=1e-6)
    assert local.nominal_outputs[1] == pytest.approx(base, rel=1e-9)


def test_default_parameters_exclude_zero_and_infinite(params):
    """A zero parameter has a zero normalised coefficient and capacities are infinite: both are left out."""
    local = exopk.analysis.local_sensitivity(params, DOSE, T_H, ("blood_auc",), progress=False)
    zero = [n for n in exopk.parameter_names() if params.values[n] == 0]
    assert not set(zero) & set(local.parameters)
    assert "liver_capacity_particles" not in local.parameters
    assert all(np.isfinite(local.coefficients[:, 0]))


def test_backward_difference_for_fraction_at_one(params):
    p = params.replace(liver_release_to_vascular_fraction=1.0, liver_release_per_h=0.5)
    local = exopk.analysis.local_sensitivity(
        p, DOSE, T_H, ("blood_auc",), parameters=["liver_release_to_vascular_fraction"]
    )
    assert local.schemes == ("backward",)
    assert np.isfinite(local.coefficients[0, 0])


def test_outputs_and_parameter_errors(params):
    with pytest.raises(exopk.SensitivityError, match="unknown output 'heart_auc'"):
        exopk.analysis.local_sensitivity(params, DOSE, T_H, ("heart_auc",))
    with pytest.raises(exopk.SensitivityError, match="unknown parameter"):
        exopk.analysis.local_sensitivity(params, DOSE, T_H, parameters=["liver_speed"])
    with pytest.raises(exopk.SensitivityError, match="finite"):
        exopk.analysis.sobol_sensitivity(params, DOSE, T_H, ["liver_capacity_particles"], n=64)
    with pytest.raises(exopk.SensitivityError, match="hepatic artery.*Sobol sample.*Narrow `factor`"):
        # (kidney, not spleen: since issue 13 the hepatic artery is its own value, so a large spleen flow
        # no longer makes it negative; a 20-fold kidney flow exceeds the cardiac output)
        exopk.analysis.sobol_sensitivity(params, DOSE, T_H, ["kidney_blood_flow_ml_per_h"], n=64, factor=20.0)
    with pytest.raises(exopk.SensitivityError, match="breaks its rule"):
        exopk.analysis.sobol_sensitivity(params, DOSE, T_H, ["liver_vascular_fraction"], n=64, factor=4.0)


def test_model_sobol_serial_equals_process_pool(params):
    names = ["liver_uptake_vascular_per_h", "lung_macrophage_uptake_per_h", "brain_degradation_per_h"]
    serial = exopk.analysis.sobol_sensitivity(params, DOSE, T_H, names, n=64, seed=4, chunk_size=200, progress=False)
    with ProcessPoolExecutor(2) as pool:
        pooled = exopk.analysis.sobol_sensitivity(params, DOSE, T_H, names, n=64, seed=4, chunk_size=200, executor=pool)
    np.testing.assert_array_equal(serial.first_order, pooled.first_order)
    np.testing.assert_array_equal(serial.total_order_ci, pooled.total_order_ci)
    # blood AUC is driven by an uptake rate, not by the brain's degradation (which no blood EV sees)
    j = serial.outputs.index("blood_auc")
    assert np.argmax(serial.total_order[:, j]) in (0, 1)


def test_evaluate_outputs_matches_batch_auc(params):
    values = {"liver_uptake_vascular_per_h": params["liver_uptake_vascular_per_h"] * np.array([0.5, 1.0, 2.0])}
    out = exopk.analysis.evaluate_outputs(
        params, DOSE, T_H, values, ["liver_auc", "liver_final", "blood_tmax"], chunk_size=2
    )
    batch = exopk.simulate_batch(params, DOSE, T_H, values, keep_amounts=True)
    np.testing.assert_allclose(out[:, 0], batch.auc_percent_id_h[:, 2], rtol=1e-12)
    np.testing.assert_allclose(out[:, 1], 100 * batch.amounts_particles[:, -1, 2] / 1e10, rtol=1e-12)
    np.testing.assert_array_equal(out[:, 2], 0.0)


def test_cli_sensitivity(tmp_path, capsys):
    local, sobol, tornado, bars = (tmp_path / n for n in ("l.csv", "s.csv", "t.png", "b.png"))
    rc = main(
        ["sensitivity", "--t-end", "24", "--dt", "1", "--sobol-n", "64", "--sobol-top", "4", "--local-out", str(local),
         "--sobol-out", str(sobol), "--tornado", str(tornado), "--sobol-plot", str(bars), "--no-progress"]
    )  # fmt: skip
    assert rc == 0, capsys.readouterr().err
    frame = pd.read_csv(sobol)
    assert set(frame["index"]) == {"S1", "ST"} and frame.input.nunique() == 4
    assert set(pd.read_csv(local).output) == {"brain_auc", "liver_cmax", "blood_auc"}
    assert tornado.read_bytes()[:4] == bars.read_bytes()[:4] == b"\x89PNG"
    assert "largest local coefficients" in capsys.readouterr().out


def test_cli_sensitivity_bad_output(capsys):
    assert main(["sensitivity", "--outputs", "brain_area"]) == 2
    assert "unknown output 'brain_area'" in capsys.readouterr().err
