"""The batched RODAS4 solver of the capacity-limited model (``exopk.solve.capacity_batch``, issue 15).

Every set of a batch must meet the accuracy :func:`exopk.simulate` is documented to reach: each
organ within 10⁻⁶ of its value, or of 10⁻⁹ of the dose where it holds less, against an
independent Radau solution at rtol 10⁻¹² of the hand-written right-hand side
(``reference_model.reference_solution``, as in ``tests/test_capacity_reference.py``), and conserve
mass per set. Also: a set's answer does not depend on the other sets of its batch (its own step
sizes and error norm), the LSODA fallback path, and the small-matrix inverse.
"""

from __future__ import annotations

import numpy as np
import pytest
from reference_model import reference_solution

import exopk
from exopk.model.graph import N_LIVE, organ_membership
from exopk.simulation import regimen_events
from exopk.solve import capacity_batch
from exopk.solve.driver import MASS_BALANCE_LIMIT, ODE_ATOL_FRACTION, ODE_RTOL
from exopk.solve.rosenbrock import RODAS4, inverse

ACCURACY, FLOOR_OF_DOSE = 1e-6, 1e-9
DOSE = 1e10
T_H = np.array([0.0, 1 / 60, 5 / 60, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 12.0, 24.0])
# A dose of 1e10 against 1e9 (liver) and 2e8 (spleen): the macrophages fill up (benchmarks/bench_targets.py).
CAPACITY = {"liver_capacity_particles": 1e9, "spleen_capacity_particles": 2e8}
REGIMENS = {
    "IV bolus": ([exopk.IVBolus(dose_particles=DOSE)], T_H),
    "IV bolus, bolus at 1 h, infusion 2-3 h": (
        [
            exopk.IVBolus(dose_particles=DOSE),
            exopk.IVBolus(dose_particles=0.5 * DOSE, t_h=1.0),
            exopk.IVInfusion(dose_particles=0.5 * DOSE, duration_h=1.0, t_h=2.0),
        ],
        np.array([0.0, 0.25, 0.5, 1.0, 1 + 1 / 60, 1.5, 2.0, 2.5, 3.0, 4.0, 6.0, 12.0]),
    ),
}


def assert_within_stated_accuracy(actual: np.ndarray, reference: np.ndarray, dose_particles: float) -> float:
    bound = ACCURACY * np.maximum(np.abs(reference), FLOOR_OF_DOSE * dose_particles)
    worst = float(np.max(np.abs(actual - reference) / bound))
    assert worst <= 1.0, f"off by {worst:.3g} times the stated accuracy"
    return worst


@pytest.fixture(scope="module")
def saturable(params) -> exopk.ModelParameters:
    return params.replace(**CAPACITY)


@pytest.fixture(scope="module")
def variations(saturable) -> dict[str, np.ndarray]:
    """Three sets: the defaults, a smaller and fuller liver, a faster and slower uptake."""
    return {
        "liver_capacity_particles": np.array([1e9, 3e8, 2e9]),
        "liver_macrophage_uptake_per_h": saturable["liver_macrophage_uptake_per_h"] * np.array([1.0, 1.6, 0.6]),
        "spleen_degradation_per_h": saturable["spleen_degradation_per_h"] * np.array([1.0, 0.5, 2.0]),
    }


def one_set(params, variations, s: int) -> exopk.ModelParameters:
    return params.replace(**{name: float(v[s]) for name, v in variations.items()})


def direct(params, variations, doses, t_h, solver: str = "rosenbrock"):
    """The batch solver's own answer (no LSODA fallback): amounts, AUCs, balance errors, unsolved mask."""
    regimen = exopk.Regimen(doses)
    events, _ = regimen_events(regimen, t_h)
    member = organ_membership()[:-1, :N_LIVE]
    dose = events.reference_particles()
    common = dict(administered=events.administered(t_h), dose_particles=dose)
    if solver == "lsoda":
        return capacity_batch.lsoda_sets(
            params, variations, events, t_h, member, rtol=ODE_RTOL, atol_particles=ODE_ATOL_FRACTION * dose, **common
        )
    return capacity_batch.rosenbrock_sets(
        params,
        variations,
        events,
        t_h,
        member,
        rtol=capacity_batch.ROSENBROCK_RTOL,
        atol_particles=ODE_ATOL_FRACTION * dose,
        **common,
    )


@pytest.mark.slow
@pytest.mark.parametrize(("doses", "t_h"), list(REGIMENS.values()), ids=list(REGIMENS))
def test_every_set_matches_an_independent_radau_solution(saturable, variations, doses, t_h):
    batch = exopk.simulate_batch(saturable, exopk.Regimen(doses), t_h, variations, keep_amounts=True, workers=1)
    amounts, _, balance, unsure = direct(saturable, variations, doses, t_h)
    assert not unsure.any()  # the batched solver answered every set itself (no LSODA fallback)
    np.testing.assert_array_equal(batch.amounts_particles[..., :-1], amounts)
    member = organ_membership()
    total = sum(d.dose_particles for d in doses)
    for s in range(len(variations["liver_capacity_particles"])):
        p = one_set(saturable, variations, s)
        reference = reference_solution(p, doses, t_h)
        n = len(exopk.model.STATES)
        organs = reference.reshape(t_h.size, -1, n).sum(axis=1) @ member.T
        assert_within_stated_accuracy(batch.amounts_particles[s], organs, total)
        assert balance[s] <= MASS_BALANCE_LIMIT
        if s == 1:  # the capacity matters: the liver's macrophages (all subpopulations) fill up
            cells = [k * n + exopk.model.STATES.index("liver_cells") for k in range(reference.shape[1] // n)]
            assert reference[:, cells].sum(axis=1).max() > 0.9 * variations["liver_capacity_particles"][1]


@pytest.mark.parametrize(("doses", "t_h"), list(REGIMENS.values()), ids=list(REGIMENS))
def test_the_batched_solver_agrees_with_the_per_set_lsoda_path(saturable, variations, doses, t_h):
    amounts, auc, balance, unsure = direct(saturable, variations, doses, t_h)
    lsoda_amounts, lsoda_auc, lsoda_balance = direct(saturable, variations, doses, t_h, solver="lsoda")
    total = sum(d.dose_particles for d in doses)
    assert not unsure.any()
    assert_within_stated_accuracy(amounts, lsoda_amounts, total)
    np.testing.assert_allclose(auc, lsoda_auc, rtol=1e-6, atol=FLOOR_OF_DOSE * total * t_h[-1])
    assert np.all(balance <= MASS_BALANCE_LIMIT) and np.all(lsoda_balance <= MASS_BALANCE_LIMIT)


def test_a_set_does_not_depend_on_the_other_sets_of_its_batch(saturable):
    """Each set has its own step sizes and error norm: alone or among 40 others, the same answer."""
    rng = np.random.default_rng(15)
    n = 40
    many = {
        "liver_capacity_particles": 1e9 * rng.lognormal(0.0, 0.5, n),
        "liver_macrophage_uptake_per_h": saturable["liver_macrophage_uptake_per_h"] * rng.lognormal(0.0, 0.3, n),
    }
    doses, t_h = REGIMENS["IV bolus"]
    together, auc, _, unsure = direct(saturable, many, doses, t_h)
    assert not unsure.any()
    for s in (0, 17):
        alone, auc_alone, _, _ = direct(saturable, {k: v[s : s + 1] for k, v in many.items()}, doses, t_h)
        np.testing.assert_allclose(alone[0], together[s], rtol=1e-12, atol=1e-12 * DOSE)
        np.testing.assert_allclose(auc_alone[0], auc[s], rtol=1e-12, atol=1e-12 * DOSE)


def test_sets_the_batch_solver_declines_go_to_lsoda(saturable, variations, monkeypatch):
    """The fallback: sets marked unsolved are solved by LSODA, and the batch says how many."""
    doses, t_h = REGIMENS["IV bolus"]
    original = capacity_batch.rosenbrock_sets

    def decline_the_middle_set(*args, **kwargs):
        amounts, auc, balance, unsure = original(*args, **kwargs)
        amounts[1], auc[1], balance[1], unsure[1] = np.nan, np.nan, np.inf, True
        return amounts, auc, balance, unsure

    monkeypatch.setattr(capacity_batch, "rosenbrock_sets", decline_the_middle_set)
    regimen = exopk.Regimen(doses)
    events, _ = regimen_events(regimen, t_h)
    member = organ_membership()[:-1, :N_LIVE]
    amounts, _, worst, n_lsoda = capacity_batch.solve_sets(
        saturable,
        variations,
        events,
        t_h,
        member,
        rtol=ODE_RTOL,
        atol_particles=ODE_ATOL_FRACTION * DOSE,
        administered=events.administered(t_h),
        dose_particles=DOSE,
    )
    assert n_lsoda == 1 and worst <= MASS_BALANCE_LIMIT
    lsoda_amounts, _, _ = direct(saturable, {k: v[1:2] for k, v in variations.items()}, doses, t_h, solver="lsoda")
    np.testing.assert_array_equal(amounts[1], lsoda_amounts[0])


def test_small_matrix_inverse_equals_numpy_including_pivoting():
    rng = np.random.default_rng(4)
    M = rng.standard_normal((200, 4, 4))
    M[:50, 0, 0] = 0.0  # needs a row exchange
    M[50:60] = M[50:60][:, [1, 0, 3, 2]]
    np.testing.assert_allclose(inverse(M), np.linalg.inv(M), rtol=1e-9, atol=1e-9)
    singular = np.zeros((1, 4, 4))
    assert not np.all(np.isfinite(inverse(singular)))


def test_rodas4_coefficients_satisfy_the_order_conditions():
    """The transcribed table, checked: in the classical form (Hairer & Wanner, Sect. VI.7:
    :math:`\\Gamma = (\\mathrm{diag}(1/\\gamma) - C)^{-1}`, :math:`\\alpha = A\\Gamma`, :math:`b = m\\Gamma`,
    :math:`\\beta = \\alpha + \\Gamma` below the diagonal) it meets the order conditions up to some of
    order 4, its stage times and :math:`\\gamma_i` are the tabulated ones, and it is stiffly accurate."""
    A, C, M, gamma = RODAS4["A"], RODAS4["C"], RODAS4["M"], RODAS4["gamma"]
    Gamma = np.linalg.inv(np.eye(6) / gamma - C)
    alpha, b = A @ Gamma, M @ Gamma
    beta = alpha + Gamma - np.diag(np.diag(Gamma))
    alpha_i, beta_i = alpha.sum(axis=1), beta.sum(axis=1)
    np.testing.assert_allclose(np.diag(Gamma), gamma, rtol=1e-14)
    np.testing.assert_allclose(b.sum(), 1.0, atol=1e-12)  # order 1
    np.testing.assert_allclose(b @ beta_i, 0.5 - gamma, atol=1e-12)  # order 2
    np.testing.assert_allclose(b @ alpha_i**2, 1 / 3, atol=1e-12)  # order 3
    np.testing.assert_allclose(b @ (beta @ beta_i), 1 / 6 - gamma + gamma**2, atol=1e-12)  # order 3
    np.testing.assert_allclose(b @ alpha_i**3, 1 / 4, atol=1e-12)  # order 4 (one of them)
    np.testing.assert_allclose(alpha_i, RODAS4["alpha"], atol=1e-12)
    np.testing.assert_allclose(Gamma.sum(axis=1), RODAS4["gammas"], atol=1e-12)
    np.testing.assert_array_equal(A[5], [*M[:5], 0.0])  # Y6 + U6 = y1: stiffly accurate


def test_worker_processes_give_the_same_batch(saturable):
    """Enough sets for two processes (64 each): every set is stepped on its own, so the chunks agree."""
    rng = np.random.default_rng(7)
    n = 2 * capacity_batch.MIN_SETS_PER_PROCESS
    many = {"liver_macrophage_uptake_per_h": saturable["liver_macrophage_uptake_per_h"] * rng.lognormal(0.0, 0.3, n)}
    doses, t_h = REGIMENS["IV bolus"]
    one = exopk.simulate_batch(saturable, exopk.Regimen(doses), t_h, many, keep_amounts=True, workers=1)
    two = exopk.simulate_batch(saturable, exopk.Regimen(doses), t_h, many, keep_amounts=True, workers=2)
    np.testing.assert_allclose(two.amounts_particles, one.amounts_particles, rtol=1e-12, atol=1e-12 * DOSE)
    np.testing.assert_allclose(two.auc_percent_id_h, one.auc_percent_id_h, rtol=1e-12, atol=1e-12)
    assert one.metadata["solver"] == "RODAS4 (batched)" and one.metadata["mass_balance_error"] <= MASS_BALANCE_LIMIT
