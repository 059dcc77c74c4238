"""Batches of the capacity-limited model (``simulate_batch`` with finite capacities) and the fast ODE callables.

Every set of a batch is held to the accuracy the single solver is documented to reach
(``exopk.simulate``: within 10⁻⁶ of each value, or of 10⁻⁹ of the dose where it holds less,
``tests/test_capacity_reference.py``): each set against ``simulate`` of that set.
"""

from __future__ import annotations

import numpy as np
import pytest

import exopk
from exopk.model.graph import mixture_system, organ_membership, rate_matrices
from exopk.solve import ode_system

DOSE = 1e13
T_H = np.array([0.0, 1 / 60, 0.25, 1.0, 2.0, 4.0, 8.0, 12.0])
REGIMEN = exopk.IVBolus(dose_particles=DOSE)
ACCURACY, FLOOR_OF_DOSE = 1e-6, 1e-9


def assert_within_stated_accuracy(actual: np.ndarray, reference: np.ndarray) -> None:
    bound = ACCURACY * np.maximum(np.abs(reference), FLOOR_OF_DOSE * DOSE)
    worst = np.max(np.abs(actual - reference) / bound)
    assert worst <= 1.0, f"off by {worst:.3g} times the stated accuracy"


@pytest.fixture(scope="module")
def variations(params) -> dict[str, np.ndarray]:
    return {
        "liver_capacity_particles": np.array([1e12, 3e11, np.inf]),  # the last set is the linear model
        "liver_macrophage_uptake_per_h": params["liver_macrophage_uptake_per_h"] * np.array([1.0, 1.5, 0.7]),
    }


@pytest.fixture(scope="module")
def batch(params, variations) -> exopk.BatchResult:
    return exopk.simulate_batch(params, REGIMEN, T_H, variations, keep_amounts=True, workers=1)


def one_set(params, variations, s: int) -> exopk.ModelParameters:
    return params.replace(**{name: float(v[s]) for name, v in variations.items()})


def test_every_set_agrees_with_its_single_simulation(params, variations, batch):
    member = organ_membership()
    for s in range(batch.n_sets):
        single = exopk.simulate(one_set(params, variations, s), REGIMEN, T_H)
        assert_within_stated_accuracy(batch.amounts_particles[s], single.amounts_particles @ member.T)
        if s == 1:  # the capacity matters: the liver's macrophages fill up
            cells = single.amounts_particles[:, exopk.model.STATES.index("liver_cells")]
            assert cells.max() > 0.9 * variations["liver_capacity_particles"][1]
    assert batch.metadata["method"] == "ode"
    assert batch.metadata["mass_balance_error"] <= 1e-10


def test_a_linear_set_of_the_ode_batch_equals_the_exact_batch(params, variations, batch):
    exact = exopk.simulate_batch(
        params,
        REGIMEN,
        T_H,
        {"liver_macrophage_uptake_per_h": variations["liver_macrophage_uptake_per_h"][2:]},
        keep_amounts=True,
    )
    assert_within_stated_accuracy(batch.amounts_particles[2], exact.amounts_particles[0])
    np.testing.assert_allclose(batch.auc_percent_id_h[2], exact.auc_percent_id_h[0], rtol=1e-6, atol=1e-9 * 100 * 12)


def test_percentiles_and_auc_are_those_of_the_kept_trajectories(params, variations, batch):
    percent = 100.0 * batch.amounts_particles / DOSE
    expected = np.percentile(percent, batch.percentiles, axis=0)
    np.testing.assert_allclose(batch.percent_id_percentiles, expected, rtol=1e-12, atol=1e-12)
    # AUC integrated with the states against a trapezoid of the single solution on a grid fine
    # where the amounts change fast (the first minutes): measured residual ~1e-7.
    fine = np.concatenate([[0.0], np.geomspace(1e-7, T_H[-1], 4000)])
    single = exopk.simulate(one_set(params, variations, 0), REGIMEN, fine)
    percent_fine = 100.0 * single.amounts_particles @ organ_membership().T / DOSE
    trapezoid = ((percent_fine[1:] + percent_fine[:-1]) / 2 * np.diff(fine)[:, None]).sum(axis=0)
    np.testing.assert_allclose(batch.auc_percent_id_h[0], trapezoid, rtol=1e-5, atol=1e-9)


def test_capacity_batches_do_not_depend_on_worker_processes(params, variations, batch):
    pooled = exopk.simulate_batch(params, REGIMEN, T_H, variations, keep_amounts=True, workers=2)
    np.testing.assert_array_equal(pooled.amounts_particles, batch.amounts_particles)
    np.testing.assert_array_equal(pooled.auc_percent_id_h, batch.auc_percent_id_h)


def test_finite_base_capacity_with_other_variations(params):
    saturable = params.replace(liver_capacity_particles=1e12)
    result = exopk.simulate_batch(
        saturable, REGIMEN, T_H, {"liver_degradation_per_h": [0.5, 2.0]}, keep_amounts=True, workers=1
    )
    single = exopk.simulate(saturable.replace(liver_degradation_per_h=2.0), REGIMEN, T_H)
    assert_within_stated_accuracy(result.amounts_particles[1], single.amounts_particles @ organ_membership().T)


@pytest.mark.parametrize("mixture", [True, False], ids=["mixture", "single"])
def test_fast_callables_equal_the_reference_rhs_and_jacobian(params, mixture):
    """``OdeSystem.callables`` (what the integrators call) against ``rhs`` / ``jacobian``, with an infusion."""
    saturable = params.replace(liver_capacity_particles=1e12, spleen_capacity_particles=1e11)
    if mixture:
        parts = saturable.parts()
        mix = mixture_system([p for _, _, p in parts], [w for _, w, _ in parts])
        system = ode_system(mix.capacity, mix.K, mix.E)
    else:
        K, E = rate_matrices(saturable.single().values)
        system = ode_system(saturable.single(), K[0], E[0])
    rng = np.random.default_rng(3)
    rate = rng.uniform(0.0, 1e12, system.n_live)
    rhs, jac = system.callables(rate)
    for _ in range(50):
        y = rng.uniform(-1e10, 2e12, system.A.shape[0])  # negative, filling and full cell pools
        scale = np.abs(system.A @ y).max()
        np.testing.assert_allclose(rhs(y, 0.0), system.rhs(y, rate), rtol=1e-13, atol=1e-13 * scale)
        np.testing.assert_allclose(jac(y, 0.0), system.jacobian(y), rtol=1e-14, atol=0.0)
