"""Analytic cases: closed-form solutions against the exact and matrix-exponential solvers.

Each case is an ``exact`` formula and a solver output, scored in units of tolerance
(scipy's ``_ivp`` tests): ``|numerical - exact| / (atol + rtol |exact|)`` must be <= 1.
Tolerances are set by float64 round-off of the formulas, not tuned until green.
"""

from __future__ import annotations

import numpy as np
import pytest

import exopk
from exopk.dosing import Events
from exopk.model.graph import N_LIVE, SITES, rate_matrices
from exopk.solve.linear import exact_single, expm_single

DOSE = 1e10
T_H = np.concatenate([[0.0], np.geomspace(1e-3, 48.0, 60)])


def error_in_tolerances(numerical, exact, *, rtol: float, atol: float) -> float:
    """Largest error in units of tolerance; <= 1 passes."""
    numerical, exact = np.asarray(numerical, dtype=float), np.asarray(exact, dtype=float)
    assert numerical.shape == exact.shape
    return float(np.max(np.abs(numerical - exact) / (atol + rtol * np.abs(exact))))


def events(n_live: int, *, boluses=(), infusions=()) -> Events:
    """Events for a small system; doses enter state 0.

    ``boluses``: (t_h, particles); ``infusions``: (start_h, end_h, particles_per_h).
    """
    bolus_amounts = np.zeros((len(boluses), n_live))
    bolus_amounts[:, 0] = [amount for _, amount in boluses]
    rates = np.zeros((len(infusions), n_live))
    rates[:, 0] = [rate for _, _, rate in infusions]
    return Events(
        bolus_t_h=np.array([t for t, _ in boluses], dtype=float),
        bolus_amounts=bolus_amounts,
        infusion_start_h=np.array([start for start, _, _ in infusions], dtype=float),
        infusion_end_h=np.array([end for _, end, _ in infusions], dtype=float),
        infusion_rates=rates,
    )


def solve(solver: str, K, E, ev, t_h) -> np.ndarray:
    K, E = np.asarray(K, dtype=float), np.asarray(E, dtype=float)
    if solver == "exact":
        amounts, cond = exact_single(K, E, ev, t_h)
        assert amounts is not None, f"eigenvectors unexpectedly ill-conditioned (cond {cond:.3g})"
        return amounts
    return expm_single(K, E, ev, t_h)


solvers = pytest.mark.parametrize("solver", ["exact", "expm"])


# --------------------------------------------------------------------------------------
# One compartment
# --------------------------------------------------------------------------------------


@solvers
@pytest.mark.parametrize("k_per_h", [1e-7, 0.7, 50.0])
def test_one_compartment_bolus_decays_exponentially(solver, k_per_h):
    """A(t) = D exp(-k t), sink = D (1 - exp(-k t)); k = 1e-7 exercises the series of phi_1."""
    amounts = solve(solver, [[-k_per_h]], [[k_per_h]], events(1, boluses=[(0.0, DOSE)]), T_H)

    assert error_in_tolerances(amounts[:, 0], DOSE * np.exp(-k_per_h * T_H), rtol=1e-13, atol=1e-14 * DOSE) <= 1
    # The sink is compared relative to itself: it starts from 0 and is tiny for slow k.
    assert error_in_tolerances(amounts[:, 1], -DOSE * np.expm1(-k_per_h * T_H), rtol=1e-12, atol=1e-300) <= 1


@solvers
def test_late_bolus_gives_nothing_before_and_shifted_decay_after(solver):
    k, t_dose = 0.7, 2.0
    amounts = solve(solver, [[-k]], [[k]], events(1, boluses=[(t_dose, DOSE)]), T_H)

    tau = np.clip(T_H - t_dose, 0.0, None)
    expected = np.where(T_H >= t_dose, DOSE * np.exp(-k * tau), 0.0)
    assert error_in_tolerances(amounts[:, 0], expected, rtol=1e-13, atol=1e-14 * DOSE) <= 1
    assert np.all(amounts[T_H < t_dose] == 0.0)


@solvers
@pytest.mark.parametrize("k_per_h", [1e-7, 0.7, 50.0])
@pytest.mark.parametrize("start_h", [0.0, 1.5])
def test_infusion_approaches_plateau_then_washes_out(solver, k_per_h, start_h):
    """During the infusion A = (R/k)(1 - e^{-k tau}); after it stops A = A(T) e^{-k (t - T)}.

    The sink holds what was infused minus what is still in the body. k = 1e-7 exercises the
    series of phi_2.
    """
    rate, duration = 1e9, 6.0
    end = start_h + duration
    amounts = solve(solver, [[-k_per_h]], [[k_per_h]], events(1, infusions=[(start_h, end, rate)]), T_H)

    during = np.clip(T_H - start_h, 0.0, duration)
    after = np.clip(T_H - end, 0.0, None)
    in_body = -rate / k_per_h * np.expm1(-k_per_h * during) * np.exp(-k_per_h * after)
    infused = rate * during
    scale = rate * duration
    assert error_in_tolerances(amounts[:, 0], in_body, rtol=1e-12, atol=1e-14 * scale) <= 1
    assert error_in_tolerances(amounts[:, 1], infused - in_body, rtol=1e-10, atol=1e-13 * scale) <= 1


# --------------------------------------------------------------------------------------
# A -> B -> sink (Bateman)
# --------------------------------------------------------------------------------------


@solvers
@pytest.mark.parametrize(("k1", "k2"), [(3.0, 0.5), (0.5, 3.0), (200.0, 0.01)])
def test_chain_follows_bateman(solver, k1, k2):
    K = [[-k1, 0.0], [k1, -k2]]
    E = [[0.0, k2]]
    amounts = solve(solver, K, E, events(2, boluses=[(0.0, DOSE)]), T_H)

    a = DOSE * np.exp(-k1 * T_H)
    b = DOSE * k1 / (k2 - k1) * (np.exp(-k1 * T_H) - np.exp(-k2 * T_H))
    sink = DOSE - a - b
    assert error_in_tolerances(amounts[:, 0], a, rtol=1e-13, atol=1e-14 * DOSE) <= 1
    assert error_in_tolerances(amounts[:, 1], b, rtol=1e-12, atol=1e-13 * DOSE) <= 1
    assert error_in_tolerances(amounts[:, 2], sink, rtol=1e-12, atol=1e-13 * DOSE) <= 1


def test_chain_with_equal_rates_is_defective_and_falls_back_to_expm():
    """k1 = k2 = k: one eigenvalue, one eigenvector. B = D k t e^{-k t}."""
    k = 0.8
    K = np.array([[-k, 0.0], [k, -k]])
    E = np.array([[0.0, k]])
    ev = events(2, boluses=[(0.0, DOSE)])

    amounts, cond = exact_single(K, E, ev, T_H)
    assert amounts is None
    assert not cond <= exopk.solve.linear.EIGENVECTOR_COND_LIMIT

    amounts = expm_single(K, E, ev, T_H)
    a = DOSE * np.exp(-k * T_H)
    b = DOSE * k * T_H * np.exp(-k * T_H)
    assert error_in_tolerances(amounts[:, 0], a, rtol=1e-13, atol=1e-14 * DOSE) <= 1
    assert error_in_tolerances(amounts[:, 1], b, rtol=1e-12, atol=1e-13 * DOSE) <= 1
    assert error_in_tolerances(amounts[:, 2], DOSE - a - b, rtol=1e-12, atol=1e-13 * DOSE) <= 1


# --------------------------------------------------------------------------------------
# Complex eigenvalues: a three-compartment cycle
# --------------------------------------------------------------------------------------


@solvers
def test_three_compartment_cycle_with_complex_modes(solver):
    """A -> B -> C -> A at rate k, each losing e to the sink; eigenvalues k(w^j - 1) - e.

    With x = k t, e^{kPt} b = f_0 b + f_1 P b + f_2 P^2 b, where
    f_j = (e^x + 2 e^{-x/2} cos(sqrt(3) x / 2 - 2 pi j / 3)) / 3.
    """
    k, e = 5.0, 0.3
    P = np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])  # A -> B -> C -> A
    K = k * (P - np.eye(3)) - e * np.eye(3)
    E = e * np.ones((1, 3))
    assert np.abs(np.linalg.eigvals(K).imag).max() > 1.0

    amounts = solve(solver, K, E, events(3, boluses=[(0.0, DOSE)]), T_H)

    x = k * T_H
    decay = np.exp(-(k + e) * T_H)
    f = [(np.exp(x) + 2 * np.exp(-x / 2) * np.cos(np.sqrt(3) * x / 2 - 2 * np.pi * j / 3)) / 3 for j in range(3)]
    expected = DOSE * decay[:, None] * np.column_stack(f)  # state j holds f_j
    assert error_in_tolerances(amounts[:, :3], expected, rtol=1e-11, atol=1e-13 * DOSE) <= 1
    assert error_in_tolerances(amounts[:, 3], -DOSE * np.expm1(-e * T_H), rtol=1e-12, atol=1e-13 * DOSE) <= 1


# --------------------------------------------------------------------------------------
# Full model: steady state under a long constant infusion
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def steady_state(params):
    """A long infusion of 1e9 particles/h, observed once the slowest mode has died out (40 time constants)."""
    rate = 1e9
    params = params.single()  # one population: x_ss of one rate matrix (the mixture is tested elsewhere)
    K, E = rate_matrices(params.values)
    K, E = K[0], E[0]
    r = np.zeros(N_LIVE)
    r[exopk.model.STATES.index("blood_venous")] = rate
    x_ss = -np.linalg.solve(K, r)
    slowest = np.abs(np.linalg.eigvals(K).real).min()
    t_obs = 40.0 / slowest  # exp(-40) < 1e-17: the slowest mode has died out
    result = exopk.simulate(
        params,
        exopk.IVInfusion(dose_particles=rate * 1.25 * t_obs, duration_h=1.25 * t_obs),
        [0.0, t_obs, 1.125 * t_obs],
    )
    return rate, K, E, x_ss, result


def test_long_infusion_reaches_steady_state(steady_state):
    """x_ss = -K^{-1} r, for every live state."""
    _, _, _, x_ss, result = steady_state

    for row in (1, 2):
        live = result.amounts_particles[row, :N_LIVE]
        assert error_in_tolerances(live, x_ss, rtol=1e-10, atol=1e-12 * x_ss.max()) <= 1
    depots = [exopk.model.STATES.index(name) for name in ("lung_airspace",) + SITES]
    reached = np.setdiff1d(np.arange(N_LIVE), depots)
    assert np.all(x_ss[reached] > 0)
    assert np.all(x_ss[depots] == 0) and np.all(live[depots] == 0)  # nothing flows into a depot


def test_at_steady_state_input_equals_elimination(steady_state):
    """Everything infused is eliminated: sum(E x_ss) = r, and the sinks grow at rate r."""
    rate, _, E, x_ss, result = steady_state

    assert error_in_tolerances((E @ x_ss).sum(), rate, rtol=1e-13, atol=0.0) <= 1
    sinks = result.amounts_particles[:, N_LIVE:].sum(axis=1)
    elimination_rate = (sinks[2] - sinks[1]) / (result.t_h[2] - result.t_h[1])
    assert error_in_tolerances(elimination_rate, rate, rtol=1e-10, atol=0.0) <= 1
    # In the body: what the steady state holds; the rest of the input is eliminated.
    assert error_in_tolerances(sinks[2], rate * result.t_h[2] - x_ss.sum(), rtol=1e-10, atol=0.0) <= 1
