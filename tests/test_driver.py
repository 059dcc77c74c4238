"""The solve / self-check / fall-back driver shared by the EV and the label systems.

Each test makes a solver give a wrong answer (by wrapping it) and checks what the driver does:
falls back, keeps the better answer, records why, and warns or refuses when no answer is good.
"""

from __future__ import annotations

import numpy as np
import pytest

import exopk
import exopk.solve.linear
from exopk.errors import SolverAccuracyWarning
from exopk.model.graph import rate_matrices
from exopk.solve import MASS_BALANCE_LIMIT, solve_with_fallback

T_H = np.array([0.0, 0.01, 0.1, 1.0, 4.0, 24.0])
DOSE = 1e10
BOLUS = exopk.IVBolus(dose_particles=DOSE)


def _leaky(function, fraction: float):
    """``function`` with ``fraction`` of the dose added to the first state after time 0: breaks mass balance."""

    def wrapped(*args, **kwargs):
        out = function(*args, **kwargs)
        amounts = out[0] if isinstance(out, tuple) else out
        if amounts is not None:
            amounts = amounts.copy()
            amounts[1:, 0] += fraction * DOSE
        return (amounts, out[1]) if isinstance(out, tuple) else amounts

    return wrapped


@pytest.fixture
def leaky(monkeypatch):
    """Make named solvers leak a given fraction of the dose: ``leaky(exact=1e-8, expm=1e-7)``."""
    names = {"exact": "exact_single", "expm": "expm_single", "ode": "ode_single"}

    def make(**fractions: float) -> None:
        for method, fraction in fractions.items():
            name = names[method]
            monkeypatch.setattr(exopk.solve.linear, name, _leaky(getattr(exopk.solve.linear, name), fraction))

    return make


def test_a_good_exact_answer_is_kept_and_recorded(params):
    result = exopk.simulate(params, BOLUS, T_H)

    assert result.method == "exact"
    assert "fallback" not in result.metadata
    assert [a["method"] for a in result.metadata["solver_attempts"]] == ["exact"]
    assert result.metadata["mass_balance_error"] == pytest.approx(
        result.mass_balance_error(), abs=1e-14
    )  # sums in another order
    assert result.metadata["mass_balance_error"] <= MASS_BALANCE_LIMIT


def test_a_leaking_exact_answer_is_redone_by_expm(params, leaky):
    leaky(exact=1e-8)

    result = exopk.simulate(params, BOLUS, T_H)

    assert result.method == "expm"
    assert result.metadata["fallback"] == "mass-balance error 1e-08 of the dose > 1e-10"
    attempts = result.metadata["solver_attempts"]
    assert [a["method"] for a in attempts] == ["exact", "expm"]
    assert attempts[0]["mass_balance_error"] == pytest.approx(1e-8, rel=1e-6)
    assert result.mass_balance_error() <= MASS_BALANCE_LIMIT


def test_the_chain_ends_with_the_stiff_integrator(params, leaky):
    exact = exopk.simulate(params, BOLUS, T_H)
    leaky(exact=1e-8, expm=1e-8)

    result = exopk.simulate(params, BOLUS, T_H)

    assert result.method == "ode"
    assert [a["method"] for a in result.metadata["solver_attempts"]] == ["exact", "expm", "ode"]
    assert result.mass_balance_error() <= MASS_BALANCE_LIMIT
    np.testing.assert_allclose(result.amounts_particles, exact.amounts_particles, rtol=1e-6, atol=1e-15 * DOSE)


# Regression test for #12 item 11: the automatic fallback returned a worse answer than the one it
# replaced, without saying so.
def test_a_worse_fallback_never_replaces_a_better_answer(params, leaky):
    leaky(exact=3e-10, expm=2e-9, ode=5e-9)

    with pytest.warns(SolverAccuracyWarning, match=r"the exact solution conserves mass only to 3e-10 of the dose"):
        result = exopk.simulate(params, BOLUS, T_H)

    assert result.method == "exact"
    assert result.mass_balance_error() == pytest.approx(3e-10, rel=1e-4)
    assert result.metadata["kept"].startswith("kept the exact answer (mass-balance error 3e-10 of the dose)")
    assert "expm 2e-09" in result.metadata["kept"] and "ode 5e-09" in result.metadata["kept"]


def test_an_answer_beyond_the_documented_accuracy_is_refused(params, leaky):
    leaky(exact=1e-5, expm=1e-5, ode=1e-5)

    with pytest.raises(exopk.SimulationError, match=r"no solver conserves mass to 1e-06 of the dose.*exact: 1e-05"):
        exopk.simulate(params, BOLUS, T_H)


def test_without_fallback_the_method_answers_alone_and_says_how_well(params, leaky):
    leaky(exact=1e-8)

    with pytest.warns(SolverAccuracyWarning, match=r"exact solution conserves mass only to 1e-08"):
        result = exopk.simulate(params, BOLUS, T_H, fallback=False)

    assert result.method == "exact"
    assert [a["method"] for a in result.metadata["solver_attempts"]] == ["exact"]


def test_a_failed_fallback_keeps_the_earlier_answer(params, leaky, monkeypatch):
    leaky(exact=1e-9, expm=2e-9)

    def stopped(*args, **kwargs):
        raise exopk.SimulationError("ODE solver (BDF) stopped early at t = 0.1 h: test.")

    monkeypatch.setattr(exopk.solve.linear, "ode_single", stopped)

    with pytest.warns(SolverAccuracyWarning):
        result = exopk.simulate(params, BOLUS, T_H)

    assert result.method == "exact"  # expm was no better; ode gave nothing
    attempts = result.metadata["solver_attempts"]
    assert attempts[-1]["method"] == "ode" and attempts[-1]["note"].startswith("failed: ODE solver (BDF) stopped")
    assert np.isnan(attempts[-1]["mass_balance_error"])


def test_the_non_linear_model_refuses_linear_methods_in_the_driver(params):
    saturable = params.replace(liver_capacity_particles=1e12)
    K, E = rate_matrices(saturable.values)
    events = exopk.Regimen([BOLUS]).events()

    with pytest.raises(exopk.SimulationError, match=r"`method`='expm' needs the linear model"):
        solve_with_fallback(
            K[0], E[0], events, T_H, events.administered(T_H), dose_particles=DOSE, method="expm", params=saturable
        )


def test_the_label_system_goes_through_the_same_driver(params, leaky):
    leaky(exact=1e-8)

    labelled = exopk.observe.simulate_label(params, BOLUS, T_H, "DiR")

    # Both the EVs and the label fell back, each recorded under its own keys.
    assert labelled.ev.method == "expm" and labelled.method == "expm"
    assert labelled.metadata["label_fallback"] == "label-balance error 1e-08 of the dose > 1e-10"
    assert [a["method"] for a in labelled.metadata["label_solver_attempts"]] == ["exact", "expm"]
    assert labelled.metadata["label_mass_balance_error"] <= MASS_BALANCE_LIMIT
