"""Solve, check the answer, fall back: one driver for the EV system and the label system.

Every solution of the model must conserve mass: at each output time the live states plus the
elimination sinks hold exactly what has been administered. That is the one check that needs
no reference solution, so :func:`solve_with_fallback` runs it on every answer:

1. the requested method (``"exact"``: closed-form modal solution; ``"expm"``: matrix-exponential
   stepping; ``"ode"``: stiff integrator with an analytic Jacobian);
2. if the answer breaks mass balance by more than :data:`MASS_BALANCE_LIMIT` of the dose (or the
   exact method declines, its eigenvectors being too poorly conditioned), the next method of the
   chain ``exact -> expm -> ode`` is tried;
3. of all answers computed, the one with the smallest mass-balance error is returned: a fallback
   never replaces an answer by a worse one. Which method answered, and why each fallback
   happened, is recorded in the metadata;
4. if even the kept answer is off by more than :data:`MASS_BALANCE_LIMIT`, a
   :class:`~exopk.errors.SolverAccuracyWarning` says so; beyond :data:`ACCURACY_LIMIT` (the
   accuracy the documentation promises) a :class:`~exopk.errors.SimulationError` is raised.

``fallback=False`` runs the requested method only (with the same check, warning and error):
for tests that must see a method's own answer, and for users who want one method throughout.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

import exopk.solve.linear as _linear
from exopk.dosing import Events
from exopk.errors import SimulationError, SolverAccuracyWarning
from exopk.model.graph import CapacityTerms, MixtureSystem, linear_system, parameter_mixture
from exopk.model.parameters import ModelParameters
from exopk.solve.events import linear_events, needs_stepping, ode_periodic, run_segments

MASS_BALANCE_LIMIT = 1e-10
"""Relative mass-balance error (of the dose) above which an answer is redone by the next method."""

ACCURACY_LIMIT = 1e-6
"""Relative mass-balance error (of the dose) above which no answer is returned (README: 10⁻⁶)."""

ODE_RTOL = 1e-10
"""Default relative tolerance of the stiff integrator.

With :data:`ODE_ATOL_FRACTION` it keeps every state of the capacity-limited model within
10⁻⁶ of its value, or of 10⁻⁹ of the dose for states holding less, against an independent
Radau solution at rtol 10⁻¹² (``tests/test_capacity_reference.py``; measured worst case 0.12 of
that bound for BDF, 0.04 for LSODA, 10⁻⁴ for Radau). The former default, rtol 10⁻⁸ with atol
10⁻¹² of the dose, was 15-60 times outside it (issue 12, item 8).
"""

ODE_ATOL_FRACTION = 1e-17
"""Default absolute tolerance of the stiff integrator, as a fraction of the regimen's total dose.

An organ holding 10⁻⁹ of the dose must be right to 10⁻⁶ of that, 10⁻¹⁵ of the dose: the
absolute tolerance sits a factor 100 below, so that it never dominates the error of a state
that matters.
"""

METHODS = ("exact", "expm", "ode")
"""Solvers of the fallback chain, in the order they are tried."""


@dataclass(frozen=True, slots=True)
class Attempt:
    """One method's try at a solution.

    Attributes
    ----------
    method : str
        ``"exact"``, ``"expm"`` or ``"ode"``.
    mass_balance_error : float
        Largest ``abs(live + sinks - administered)`` over the output times, as a fraction of the
        dose; ``nan`` if the method gave no answer.
    note : str
        Why the next method was tried (empty if this answer passed the check).
    """

    method: str
    mass_balance_error: float
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"method": self.method, "mass_balance_error": self.mass_balance_error, "note": self.note}


@dataclass(frozen=True, slots=True)
class Solution:
    """What :func:`solve_with_fallback` returns.

    Attributes
    ----------
    amounts : ndarray, shape (n_times, n_live + n_sink)
        Amounts in every live state, then every sink (particles, or label particle-equivalents).
    method : str
        The method whose answer this is.
    mass_balance_error : float
        Its mass-balance error, as a fraction of the dose.
    attempts : tuple of Attempt
        Every method tried, in order.
    administered : ndarray, shape (n_times,)
        What the balance was checked against: the particles administered up to each time, plus
        what a steady-state dose had preloaded into the system (event stepping).
    metadata : dict
        ``eigenvector_condition_number`` (if ``"exact"`` was tried), ``fallback`` (why the first
        fallback happened), ``solver_attempts``, ``mass_balance_error``, and ``kept`` when an
        earlier answer was kept because the later ones were worse; keys carry ``prefix``.
    """

    amounts: np.ndarray
    method: str
    mass_balance_error: float
    attempts: tuple[Attempt, ...]
    administered: np.ndarray
    metadata: dict[str, Any] = field(default_factory=dict)
    keep: np.ndarray | None = None
    """With ``expand=False``: the live states ``amounts`` holds (indices), then every sink; else None."""


def model_system(
    params: ModelParameters, events: Events
) -> tuple[np.ndarray, np.ndarray, Events, ModelParameters | CapacityTerms | None, MixtureSystem | None]:
    """What :func:`solve_with_fallback` solves for ``params`` under ``events``.

    Returns ``K``, ``E``, the events, the ``params`` argument of :func:`solve_with_fallback`
    and the mixture. One population: its own ``K``, ``E`` (:func:`~exopk.model.graph.linear_system`),
    the events as given and ``params``. Subpopulations: the stacked block-diagonal system
    (:func:`~exopk.model.graph.parameter_mixture`), the events split by the shares and the
    mixture's capacity terms (None in the linear model). Both are built once per (frozen)
    parameter set and kept on it.
    """
    if not params.subpopulations:
        K, E = linear_system(params)
        return K, E, events, params, None
    mixture = parameter_mixture(params)
    return mixture.K, mixture.E, events.mixed(mixture.shares), mixture.capacity, mixture


def balance_error(amounts: np.ndarray, administered: np.ndarray, dose_particles: float) -> float:
    """Largest ``abs(sum of all states - administered)`` over time, as a fraction of ``dose_particles``.

    Parameters
    ----------
    amounts : ndarray, shape (n_times, n_states)
        Live states and sinks (particles).
    administered : ndarray, shape (n_times,)
        Particles given up to each output time.
    dose_particles : float
        The regimen's total dose (particles), the scale of the error.
    """
    error = float(np.max(np.abs(amounts.sum(axis=1) - administered)) / dose_particles)
    return error if np.isfinite(error) else np.inf


def solve_with_fallback(
    K: np.ndarray,
    E: np.ndarray,
    events: Events,
    t_h: np.ndarray,
    administered: np.ndarray,
    *,
    dose_particles: float,
    method: str = "exact",
    fallback: bool = True,
    params: ModelParameters | CapacityTerms | None = None,
    rtol: float = ODE_RTOL,
    atol_particles: float | None = None,
    solver: str = "BDF",
    prefix: str = "",
    what: str = "mass",
    expand: bool = True,
    cache: Callable[[str, Callable[[], Any]], Any] | None = None,
) -> Solution:
    r"""Solve :math:`\dot x = K x + u(t)`, :math:`\dot s = E x` (+ capacity terms), check it, fall back.

    Parameters
    ----------
    K : ndarray, shape (n_live, n_live)
        Rate matrix of the live states (1/h).
    E : ndarray, shape (n_sink, n_live)
        Rates into the sinks (1/h).
    events : Events
        Boluses and infusions, on the live states.
    t_h : ndarray, shape (n_times,)
        Output times (h), strictly increasing.
    administered : ndarray, shape (n_times,)
        Particles administered up to each output time (the mass-balance target).
    dose_particles : float
        Total dose of the regimen (particles): the scale of the mass-balance error and of the
        default absolute tolerance.
    method : {"exact", "expm", "ode"}, default "exact"
        First method tried; the chain continues from there (``"expm"`` falls back to ``"ode"``).
    fallback : bool, default True
        Try the next methods when the answer fails the check. ``False``: the first method's
        answer is returned whatever its error (still checked: warning or error as below).
    params : ModelParameters or CapacityTerms, optional
        Needed only for the capacity-limited (non-linear) model, which ``"ode"`` alone solves;
        ``K`` and ``E`` must then span all states. A stacked mixture of subpopulations passes
        its :class:`~exopk.model.graph.CapacityTerms` directly.
    rtol : float, default :data:`ODE_RTOL`
        Relative tolerance of ``"ode"``.
    atol_particles : float, optional
        Absolute tolerance of ``"ode"`` (particles); default :data:`ODE_ATOL_FRACTION` × dose.
    solver : {"BDF", "Radau", "LSODA"}, default "BDF"
        Integrator of ``"ode"``.
    prefix : str, default ""
        Prefix of the metadata keys (``"label_"`` for the label system).
    what : str, default "mass"
        What the balance is of, for messages (``"label"`` for the label system).
    expand : bool, default True
        ``False``: return the amounts of the reached live states only (``Solution.keep``) and the
        sinks, without the copy onto every state (the caller puts them where it wants them).
    cache : callable, optional
        ``cache(key, compute)`` returns ``compute()``, kept under ``key`` (e.g.
        :meth:`ModelParameters.cached`): the eigen-decomposition of ``K`` is computed once per
        set of reached states. Only for a ``K`` that never changes under the cache's keys.

    Returns
    -------
    Solution

    Raises
    ------
    SimulationError
        Unknown method; the non-linear model with a linear method; the integrator failed
        with no other answer to fall back on; or the best answer's balance error exceeds
        :data:`ACCURACY_LIMIT`.

    Warns
    -----
    SolverAccuracyWarning
        The best answer's balance error exceeds :data:`MASS_BALANCE_LIMIT` (but not
        :data:`ACCURACY_LIMIT`).
    """
    if method not in METHODS:
        raise SimulationError(f"`method` must be one of {', '.join(map(repr, METHODS))}; got {method!r}.")
    nonlinear = params is not None and not params.is_linear
    if nonlinear and method != "ode":
        raise SimulationError(
            f"`method`={method!r} needs the linear model, but an organ has a finite `capacity_particles`; "
            "use method='ode'."
        )
    dose = float(dose_particles)
    atol = ODE_ATOL_FRACTION * dose if atol_particles is None else float(atol_particles)
    metadata: dict[str, Any] = {}
    if nonlinear:
        # The capacity terms index the full state vector: no restriction here (ode_single integrates
        # only the states the doses reach, and keeps the others at their initial amounts).
        keep = np.arange(K.shape[0])
        K_r, E_r, events_r = K, E, events
    else:
        # Solve only the states the doses can reach (the others stay exactly 0).
        if cache is None:
            keep, K_r, E_r, events_r = _linear.restrict_to_reached(K, E, events)
        else:  # the restricted matrices are kept with the decomposition
            keep = _linear.reached_states(K, events)
            K_r, E_r = cache(
                f"{prefix}restricted:{keep.tobytes().hex()}", lambda: _linear.restrict_matrices(K, E, keep)
            )
            events_r = events if keep.size == K.shape[0] else events.restricted(keep)
    n_live = K.shape[0]
    # Many doses, resets or steady states: step from dose to dose (memory independent of the
    # number of doses; exopk.solve.events). What a steady state preloads joins the balance target.
    stepping = needs_stepping(events_r)
    preload = np.zeros_like(administered, dtype=float)
    preloads: dict[str, np.ndarray] = {}

    stepped_by: dict[str, np.ndarray] = {}  # answers of linear_events by the method that produced them

    def stepped(name: str) -> tuple[np.ndarray | None, str]:
        if name not in stepped_by:
            amounts, pre, info = linear_events(K_r, E_r, events_r, t_h, method=name)
            used = info.pop("method")
            metadata.update({f"{prefix}{k}": v for k, v in info.items()})
            stepped_by[used], preloads[used] = amounts, pre
            if used != name:  # the eigenbasis was too poorly conditioned: stepping went by expm
                return None, f"event stepping by {name} declined ({used} instead)"
        return stepped_by[name], ""

    def run_exact() -> tuple[np.ndarray | None, str]:
        if stepping:
            return stepped("exact")
        modes = None
        if cache is not None:
            modes = cache(f"{prefix}modes:{keep.tobytes().hex()}", lambda: _linear.eigen_modes(K_r, E_r))
        amounts, cond = _linear.exact_single(K_r, E_r, events_r, t_h, modes)
        metadata[f"{prefix}eigenvector_condition_number"] = cond
        if amounts is None:
            return None, f"eigenvector condition number {cond:.3g} > {_linear.EIGENVECTOR_COND_LIMIT:g}"
        return amounts, ""

    def run_expm() -> tuple[np.ndarray | None, str]:
        if stepping:
            return stepped("expm")
        return _linear.expm_single(K_r, E_r, events_r, t_h), ""

    def run_ode() -> tuple[np.ndarray | None, str]:
        system = params if nonlinear else None
        if not stepping:
            return _linear.ode_single(system, K_r, E_r, events_r, t_h, rtol=rtol, atol=atol, solver=solver), ""

        def piece(ev, tt, initial):
            return _linear.ode_single(system, K_r, E_r, ev, tt, rtol=rtol, atol=atol, solver=solver, initial=initial)

        amounts, pre, info = run_segments(
            events_r, t_h, K_r.shape[0] + E_r.shape[0], piece, lambda steady: ode_periodic(piece, steady, E_r.shape[0])
        )
        preloads["ode"] = pre
        metadata.update({f"{prefix}{k}": v for k, v in info.items()})
        return amounts, ""

    runners: dict[str, Callable[[], tuple[np.ndarray | None, str]]] = {
        "exact": run_exact,
        "expm": run_expm,
        "ode": run_ode,
    }
    chain = METHODS[METHODS.index(method) :] if fallback else (method,)
    attempts: list[Attempt] = []
    best: tuple[float, str, np.ndarray] | None = None
    for name in chain:
        try:
            amounts, declined = runners[name]()
        except SimulationError as failure:
            if best is None and name == chain[-1]:
                raise
            attempts.append(Attempt(name, np.nan, f"failed: {failure}"))
            continue
        if amounts is None:
            attempts.append(Attempt(name, np.nan, declined))
            continue
        error = balance_error(amounts, administered + preloads.get(name, preload), dose)
        passed = error <= MASS_BALANCE_LIMIT
        note = "" if passed else f"{what}-balance error {error:.3g} of the dose > {MASS_BALANCE_LIMIT:g}"
        attempts.append(Attempt(name, error, note))
        if best is None or error < best[0]:
            best = (error, name, amounts)
        if passed:
            break
    if best is None:  # every method declined or failed (only possible without fallback)
        raise SimulationError(f"no solver answered: {'; '.join(f'{a.method}: {a.note}' for a in attempts)}.")
    error, used, amounts = best
    target = administered + preloads.get(used, preload)
    failed = [a for a in attempts if a.note]
    if failed:
        metadata[f"{prefix}fallback"] = failed[0].note
    metadata[f"{prefix}solver_attempts"] = tuple(a.as_dict() for a in attempts)
    metadata[f"{prefix}mass_balance_error"] = error
    if used != attempts[-1].method:
        worse = ", ".join(
            f"{a.method} {a.mass_balance_error:.3g}" if np.isfinite(a.mass_balance_error) else f"{a.method} (none)"
            for a in attempts
            if a.method != used
        )
        metadata[f"{prefix}kept"] = (
            f"kept the {used} answer ({what}-balance error {error:.3g} of the dose): the fallbacks were no better "
            f"({worse})"
        )
    # A finite balance error means finite row sums, so finite amounts (a NaN or an infinity in a
    # row makes its sum NaN or infinite): the element-wise check is needed only otherwise.
    if not np.isfinite(error) and not np.all(np.isfinite(amounts)):
        # NaN or infinite amounts come from an overflow: a failure, not an answer.
        raise SimulationError(
            f"the {used} solution is not finite (an overflow): the fastest rate is {np.max(np.abs(K)):.3g} /h; "
            "expected rates a solver can resolve: check for a rate constant many orders of magnitude too large."
        )
    if error > ACCURACY_LIMIT:
        tried = ", ".join(f"{a.method}: {a.mass_balance_error:.3g}" for a in attempts)
        raise SimulationError(
            f"no solver conserves {what} to {ACCURACY_LIMIT:g} of the dose (errors {tried}); the answer is not "
            "returned. The rate constants may span too many orders of magnitude; try method='ode' with "
            "solver='Radau'."
        )
    if error > MASS_BALANCE_LIMIT:
        warnings.warn(
            f"the {used} solution conserves {what} only to {error:.3g} of the dose (limit {MASS_BALANCE_LIMIT:g}; "
            f"tried {', '.join(a.method for a in attempts)}); treat differences below that as noise.",
            SolverAccuracyWarning,
            stacklevel=3,
        )
    return Solution(
        amounts=_linear.expand_reached(amounts, keep, n_live) if expand else amounts,
        method=used,
        mass_balance_error=error,
        attempts=tuple(attempts),
        administered=target,
        metadata=metadata,
        keep=None if expand else keep,
    )
