"""The stiff ODE path as it is solved: only the reached states, with the fast callables.

``exopk.solve.ode_single`` integrates only the live states the doses (or the initial state) can
reach and the sinks they feed, with right-hand side and Jacobian callables written for speed
(issue 15). Each test holds its answer against an integration of the *whole* system with the
reference forms ``OdeSystem.rhs`` / ``OdeSystem.jacobian`` (or, for the linear model, the exact
matrix-exponential solution), to the accuracy ``exopk.simulate`` documents: within 10⁻⁶ of each
value, or of 10⁻⁹ of the dose where it holds less.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.integrate import solve_ivp

import exopk
from exopk.dosing import Events, as_regimen
from exopk.model.graph import LIVE_STATES, SINK_STATES, rate_matrices
from exopk.simulation import regimen_events
from exopk.solve import expm_single, ode_single, ode_system
from exopk.solve.driver import ODE_ATOL_FRACTION, ODE_RTOL, model_system

DOSE = 1e10
T_H = np.array([0.0, 1 / 60, 0.1, 0.25, 0.5, 1.0, 2.0, 6.0, 12.0, 24.0])
ACCURACY, FLOOR_OF_DOSE = 1e-6, 1e-9
N_LIVE, N_SINK = len(LIVE_STATES), len(SINK_STATES)


def assert_within_stated_accuracy(actual: np.ndarray, reference: np.ndarray, scale: float = DOSE) -> None:
    bound = ACCURACY * np.maximum(np.abs(reference), FLOOR_OF_DOSE * scale)
    worst = np.max(np.abs(actual - reference) / bound)
    assert worst <= 1.0, f"off by {worst:.3g} times the stated accuracy"


@pytest.fixture(scope="module")
def capped(params) -> exopk.ModelParameters:
    """The default mixture with the capacities of benchmarks/bench_targets.py (case cap-sim-rr)."""
    return params.replace(liver_capacity_particles=1e9, spleen_capacity_particles=2e8)


def stacked(params: exopk.ModelParameters, regimen, t_h: np.ndarray):
    """K, E, events and capacity terms as ``simulate`` passes them to the solver."""
    events, _ = regimen_events(as_regimen(regimen), t_h)
    K, E, events, capacity, _ = model_system(params, events)
    return K, E, events, capacity


def whole_system(capacity, K, E, y0: np.ndarray, t_h: np.ndarray) -> np.ndarray:
    """Every state, from ``y0`` at ``t_h[0]``, by Radau on the reference rhs / Jacobian (no restriction)."""
    system = ode_system(capacity, K, E)
    sol = solve_ivp(
        lambda _t, y: system.rhs(y),
        (t_h[0], t_h[-1]),
        y0,
        method="Radau",
        jac=lambda _t, y: system.jacobian(y),
        t_eval=t_h,
        rtol=1e-12,
        atol=1e-22 * DOSE,
    )
    assert sol.success, sol.message
    return sol.y.T


def test_unreached_states_stay_exactly_zero_and_the_others_match_the_whole_system(capped):
    K, E, events, capacity = stacked(capped, exopk.IVBolus(dose_particles=DOSE), T_H)
    y0 = np.zeros(K.shape[0] + E.shape[0])
    y0[: K.shape[0]] = events.bolus_amounts.sum(axis=0)
    reference = whole_system(capacity, K, E, y0, T_H)

    amounts = ode_single(capacity, K, E, events, T_H, rtol=ODE_RTOL, atol=ODE_ATOL_FRACTION * DOSE, solver="LSODA")

    # An IV dose never reaches the depots (nasal cavity, peritoneum, injection site, airspace).
    unreached = reference[-1] == 0.0
    assert unreached.sum() >= 8
    np.testing.assert_array_equal(amounts[:, unreached], 0.0)
    assert_within_stated_accuracy(amounts, reference)
    # The case saturates: the liver cells of both subpopulations together pass their capacity.
    liver_cells = [p * N_LIVE + LIVE_STATES.index("liver_cells") for p in range(2)]
    assert reference[:, liver_cells].sum(axis=1).max() > capped["liver_capacity_particles"]


def test_an_initial_state_outside_the_dosed_states_is_integrated(capped):
    """What a reset or steady state hands over may sit where no dose of the interval goes."""
    K, E, events, capacity = stacked(capped, exopk.IVBolus(dose_particles=DOSE), T_H)
    initial = np.zeros(K.shape[0] + E.shape[0])
    initial[LIVE_STATES.index("peritoneal_cavity")] = 0.3 * DOSE  # drains into blood: everything is reached
    unfed_sink = K.shape[0] + SINK_STATES.index("degraded_nasal_cavity")  # nothing reaches the nasal cavity
    initial[unfed_sink] = 0.1 * DOSE
    y0 = initial.copy()
    y0[: K.shape[0]] += events.bolus_amounts.sum(axis=0)
    reference = whole_system(capacity, K, E, y0, T_H)

    amounts = ode_single(
        capacity,
        K,
        E,
        events,
        T_H,
        rtol=ODE_RTOL,
        atol=ODE_ATOL_FRACTION * DOSE,
        solver="LSODA",
        initial=(0.0, initial),
    )

    assert amounts[-1, LIVE_STATES.index("peritoneal_cavity")] > 0.0
    assert amounts[-1, LIVE_STATES.index("peritoneal_cavity")] < 0.3 * DOSE
    np.testing.assert_array_equal(amounts[:, unfed_sink], 0.1 * DOSE)
    assert_within_stated_accuracy(amounts, reference)


@pytest.mark.parametrize("solver", ["BDF", "Radau"])
def test_the_solve_ivp_solvers_use_the_same_reduced_system(capped, solver):
    t_h = T_H[T_H <= 2.0]
    K, E, events, capacity = stacked(capped, exopk.IVBolus(dose_particles=DOSE), t_h)
    y0 = np.zeros(K.shape[0] + E.shape[0])
    y0[: K.shape[0]] = events.bolus_amounts.sum(axis=0)
    reference = whole_system(capacity, K, E, y0, t_h)

    amounts = ode_single(capacity, K, E, events, t_h, rtol=ODE_RTOL, atol=ODE_ATOL_FRACTION * DOSE, solver=solver)

    assert_within_stated_accuracy(amounts, reference)


def test_integrals_of_the_reduced_system_equal_the_exact_ones(params):
    """``integrals`` (the capacity batch's AUCs) over the reduced states, against exact stepping."""
    K, E = rate_matrices(params.single().values)
    K, E = K[0], E[0]
    regimen = exopk.Regimen(
        [exopk.IVBolus(dose_particles=DOSE), exopk.IVInfusion(dose_particles=DOSE, duration_h=1.0, t_h=2.0)]
    )
    events, _ = regimen_events(regimen, T_H)
    exact = expm_single(K, E, events, T_H, integrals=True)
    W = np.eye(N_LIVE)[[LIVE_STATES.index(s) for s in ("blood_venous", "liver_cells", "nasal_cavity")]]

    amounts = ode_single(
        None, K, E, events, T_H, rtol=ODE_RTOL, atol=ODE_ATOL_FRACTION * DOSE, solver="LSODA", integrals=W
    )

    assert_within_stated_accuracy(amounts[:, : N_LIVE + N_SINK], exact[:, : N_LIVE + N_SINK], 2 * DOSE)
    auc = exact[:, N_LIVE + N_SINK :] @ W.T
    assert_within_stated_accuracy(amounts[:, N_LIVE + N_SINK :], auc, 2 * DOSE)
    np.testing.assert_array_equal(amounts[:, -1], 0.0)  # the nasal cavity is never reached
    assert auc[-1, 0] > 0.0


def test_an_interval_with_nothing_to_integrate_keeps_every_amount(capped):
    """A segment after a reset with no dose in it and only a sink holding something: nothing is integrated."""
    K, E, _, capacity = stacked(capped, exopk.IVBolus(dose_particles=DOSE), T_H)
    n = K.shape[0]
    no_doses = Events(np.zeros(0), np.zeros((0, n)), np.zeros(0), np.zeros(0), np.zeros((0, n)))
    initial = np.zeros(n + E.shape[0])
    initial[n + SINK_STATES.index("urine")] = 0.2 * DOSE
    t_h = T_H[T_H >= 1.0]

    amounts = ode_single(
        capacity,
        K,
        E,
        no_doses,
        t_h,
        rtol=ODE_RTOL,
        atol=ODE_ATOL_FRACTION * DOSE,
        solver="LSODA",
        initial=(1.0, initial),
    )

    np.testing.assert_array_equal(amounts, np.broadcast_to(initial, amounts.shape))
