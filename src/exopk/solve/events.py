"""Event-driven propagation: many doses, resets (EVID 3/4) and steady states (ss=1).

The superposition of :func:`exopk.solve.linear.exact_single` costs O(n_doses x n_times) in
time and memory. Here the state is carried from one dose interval to the next instead, so
memory does not depend on the number of doses (beyond the event list) and time is linear in
the number of intervals plus the number of output times.

For the linear model the state is carried in modal coordinates :math:`z = V^{-1} x`, where
propagation over an interval :math:`\\Delta` is diagonal,

.. math::

    z(t + \\Delta) = e^{\\Lambda\\Delta} z(t) + F_1(\\Delta)\\, V^{-1} r, \\qquad
    s(t + \\Delta) = s(t) + E V [F_1(\\Delta) z(t) + F_2(\\Delta) V^{-1} r],

(*r* the infusion input active on the interval, *s* the sinks; :math:`F_1, F_2` as in
:mod:`exopk.solve.linear`), with one eigen-decomposition for the whole regimen and the
diagonal propagator computed once per distinct interval length. Output times inside an
interval are evaluated from the state at its start, all at once. When the eigenvectors are
poorly conditioned the same walk is done by exact matrix-exponential stepping (one
:func:`scipy.linalg.expm` per distinct step length and infusion direction).

A steady-state dose (NONMEM ``SS=1``) at :math:`t_s` sets the state just before it to the
periodic state of the dose repeated every :math:`\\tau` = ``ii_h``: the pre-dose state
:math:`x^-` with :math:`x^- = e^{K\\tau}(x^- + b)` for a bolus *b*, i.e.
:math:`(I - e^{K\\tau})\\, x^- = e^{K\\tau} b` (and the response to one infusion over
:math:`\\tau` in place of :math:`e^{K\\tau} b`). In modal coordinates this is one division per
mode, exact. For the capacity-limited model it is found by iterating one interval at a time
to a stated tolerance (:data:`SS_RTOL`), and the number of intervals is reported.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.linalg

from exopk.dosing import Events, SteadyState
from exopk.errors import DosingError, SimulationError
from exopk.solve.linear import _eigen, _time_fn, ill_conditioned

STEPPING_MIN_EVENTS = 8
"""Regimens with more administrations than this (or any reset or steady state) are solved by stepping."""

SS_RTOL = 1e-9
"""Steady state of the capacity-limited model: iterate until the pre-dose state changes by less
than this share of one interval's dose (in every state) from one interval to the next."""

SS_MAX_INTERVALS = 20_000
"""Steady state of the capacity-limited model: give up after this many intervals."""


def needs_stepping(events: Events) -> bool:
    """Whether a regimen is solved by event stepping rather than by modal superposition."""
    return events.n_events > STEPPING_MIN_EVENTS or events.has_boundaries


def _segments(events: Events):
    """Pieces of the regimen between resets and steady-state times.

    Yields ``(start_h, steady, events)``: the start (``-inf`` for the first piece), the
    steady-state doses at that start (empty for a reset) and the events of the piece (infusions
    stopped at its end, as a reset stops them).
    """
    bounds = events.boundaries_h
    edges = np.concatenate([[-np.inf], bounds, [np.inf]])
    b_nom, i_nom = events.nominal()
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        kb = (events.bolus_t_h >= lo) & (events.bolus_t_h < hi)
        ki = (events.infusion_start_h >= lo) & (events.infusion_start_h < hi)
        piece = Events(
            events.bolus_t_h[kb],
            events.bolus_amounts[kb],
            events.infusion_start_h[ki],
            np.minimum(events.infusion_end_h[ki], hi),
            events.infusion_rates[ki],
            b_nom[kb],
            i_nom[ki],
        )
        steady = tuple(s for s in events.steady if s.t_h == lo)
        yield float(lo), steady, piece


def _combined(steady: tuple[SteadyState, ...]) -> SteadyState:
    """One periodic input from the steady-state doses given at the same time."""
    if len({s.ii_h for s in steady}) > 1:
        raise DosingError(
            f"steady-state doses at {steady[0].t_h:g} h have different intervals "
            f"({', '.join(f'{s.ii_h:g}' for s in steady)} h); a periodic state needs one `ii_h`."
        )
    infused = [s for s in steady if s.duration_h > 0]
    if len({s.duration_h for s in infused}) > 1:
        raise DosingError(f"steady-state infusions at {steady[0].t_h:g} h have different durations; give one infusion.")
    return SteadyState(
        steady[0].t_h,
        steady[0].ii_h,
        sum((s.amounts for s in steady), np.zeros_like(steady[0].amounts)),
        sum((s.rates for s in steady), np.zeros_like(steady[0].rates)),
        infused[0].duration_h if infused else 0.0,
    )


def run_segments(
    events: Events,
    t_h: np.ndarray,
    n_states: int,
    solve_piece: Callable[[Events, np.ndarray, tuple[float, np.ndarray] | None], np.ndarray],
    periodic_state: Callable[[SteadyState], tuple[np.ndarray, dict]],
) -> tuple[np.ndarray, np.ndarray, dict]:
    """Solve a regimen piece by piece between resets and steady-state times.

    Parameters
    ----------
    solve_piece : callable
        ``solve_piece(events, t_h, initial)`` -> amounts (n_times, n_states), ``initial`` either
        None (all zero before the first event) or ``(t0_h, state)`` at ``t0_h``.
    periodic_state : callable
        ``periodic_state(steady)`` -> (live pre-dose state, info) of a steady-state dose.

    Returns
    -------
    amounts : ndarray, shape (n_times, n_states)
    preload_particles : ndarray, shape (n_times,)
        Particles a steady state put in the body at the start of the piece each time is in
        (to add to what was administered since).
    info : dict
        ``ss_intervals``: intervals iterated per steady state (capacity-limited model).
    """
    out = np.zeros((t_h.size, n_states))
    preload = np.zeros(t_h.size)
    info: dict = {}
    n_live = events.bolus_amounts.shape[1]
    pieces = list(_segments(events))
    for k, (lo, steady, piece) in enumerate(pieces):
        hi = pieces[k + 1][0] if k + 1 < len(pieces) else np.inf
        j0, j1 = np.searchsorted(t_h, lo, side="left"), np.searchsorted(t_h, hi, side="left")
        if j1 == j0:
            continue
        initial = None
        if np.isfinite(lo):
            state = np.zeros(n_states)
            if steady:
                x_pre, ss_info = periodic_state(_combined(steady))
                state[:n_live] = x_pre
                preload[j0:j1] = x_pre.sum()
                for key, value in ss_info.items():
                    info.setdefault(key, []).append(value)
            initial = (lo, state)
        if initial is None and piece.n_events == 0:
            continue
        out[j0:j1] = solve_piece(piece, t_h[j0:j1], initial)
    return out, preload, info


# ---------------------------------------------------------------------------------------
# Linear model: modal stepping (exact), or expm stepping when the eigenvectors are poor
# ---------------------------------------------------------------------------------------


class _Modal:
    """Eigen basis of one rate matrix and the diagonal propagators per interval length."""

    def __init__(self, K: np.ndarray, E: np.ndarray) -> None:
        lam, V, Vinv, cond = _eigen(K[None])
        self.lam, self.V, self.Vinv, self.cond = lam[0], V[0], Vinv[0], float(cond[0])
        self.EV = E @ self.V
        self.n_live, self.n_sink = K.shape[0], E.shape[0]
        self.cache: dict[float, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self.output_cache: dict[bytes, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}

    @property
    def usable(self) -> bool:
        return not bool(ill_conditioned(self.cond))

    def functions(self, tau: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """:math:`e^{\\lambda\\tau}`, :math:`F_1(\\tau)`, :math:`F_2(\\tau)`, shape (n_times, n_modes)."""
        return (_time_fn(self.lam, tau, "exp"), _time_fn(self.lam, tau, "f1"), _time_fn(self.lam, tau, "f2"))

    def output_functions(self, tau: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """:meth:`functions` of the output offsets in one interval, reused when the offsets repeat.

        On an evenly spaced output grid with identical dose intervals, every interval has the
        same offsets (to round-off of the grid, ~1e-13 h, far below any rate's time scale):
        they are evaluated once.
        """
        key = np.round(tau, 10).tobytes()
        hit = self.output_cache.get(key)
        if hit is None:
            hit = self.functions(tau)
            if len(self.output_cache) < 64:
                self.output_cache[key] = hit
        return hit

    def propagator(self, dt_h: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The diagonal propagator over ``dt_h``, computed once per distinct length."""
        hit = self.cache.get(dt_h)
        if hit is None:
            ex, f1, f2 = self.functions(np.array([dt_h]))
            hit = self.cache[dt_h] = (ex[0], f1[0], f2[0])
        return hit

    def walk(self, events: Events, t_h: np.ndarray, initial: tuple[float, np.ndarray] | None) -> np.ndarray:
        """Amounts (live, sinks) at ``t_h`` for events without resets or steady states."""
        n_live = self.n_live
        out = np.zeros((t_h.size, n_live + self.n_sink))
        starts, ends, rates = events.infusion_start_h, events.infusion_end_h, events.infusion_rates
        points = np.unique(np.concatenate([events.bolus_t_h, starts, ends, [] if initial is None else [initial[0]]]))
        if points.size == 0:
            return out
        z = np.zeros(self.lam.size, dtype=complex)
        s = np.zeros(self.n_sink)
        if initial is not None:
            z = self.Vinv @ initial[1][:n_live].astype(complex)
            s = initial[1][n_live:].copy()
        bt, bolus = events.bolus_t_h, events.bolus_amounts
        s_order, e_order = np.argsort(starts, kind="stable"), np.argsort(ends, kind="stable")
        rate = np.zeros(n_live)
        c = np.zeros(self.lam.size, dtype=complex)
        active = ib = i_s = i_e = 0
        V_T, EV_T = self.V.T, self.EV.T
        # Output rows per interval: times in [points[i], points[i + 1]).
        bounds = np.searchsorted(t_h, points, side="left")
        for i, p in enumerate(points):
            while ib < bt.size and bt[ib] <= p:
                z += self.Vinv @ bolus[ib]
                ib += 1
            changed = False
            while i_s < starts.size and starts[s_order[i_s]] <= p:
                rate += rates[s_order[i_s]]
                active, i_s, changed = active + 1, i_s + 1, True
            while i_e < ends.size and ends[e_order[i_e]] <= p:
                rate -= rates[e_order[i_e]]
                active, i_e, changed = active - 1, i_e + 1, True
            if changed:
                if active == 0:
                    rate[:] = 0.0  # no drift of the running sum once every infusion has stopped
                c = self.Vinv @ rate
            j0 = bounds[i]
            j1 = bounds[i + 1] if i + 1 < points.size else t_h.size
            if j1 > j0:
                ex, f1, f2 = self.output_functions(t_h[j0:j1] - p)
                zt, zs = ex * z, f1 * z
                if active:
                    zt += f1 * c
                    zs += f2 * c
                out[j0:j1, :n_live] = (zt @ V_T).real
                out[j0:j1, n_live:] = s + (zs @ EV_T).real
            if i + 1 == points.size:
                break
            ex, f1, f2 = self.propagator(float(points[i + 1] - p))
            if active:
                s = s + (self.EV @ (f1 * z + f2 * c)).real
                z = ex * z + f1 * c
            else:
                s = s + (self.EV @ (f1 * z)).real
                z = ex * z
        return out

    def periodic(self, steady: SteadyState) -> tuple[np.ndarray, dict]:
        """Exact pre-dose periodic state: one division per mode."""
        tau = steady.ii_h
        ex_tau = self.propagator(tau)[0]
        g = ex_tau * (self.Vinv @ steady.amounts)
        if steady.duration_h > 0:
            _, f1_d, _ = self.propagator(steady.duration_h)
            g = g + self.propagator(tau - steady.duration_h)[0] * f1_d * (self.Vinv @ steady.rates)
        denominator = 1.0 - ex_tau
        if np.any(np.abs(denominator) < 1e-12):
            raise SimulationError(
                f"no periodic steady state for `ii_h` = {tau:g} h: a mode of the model does not decay "
                f"(eigenvalue {self.lam[np.argmin(np.abs(denominator))]:.3g} /h)."
            )
        return (self.V @ (g / denominator)).real, {}


class _Expm:
    """Exact matrix-exponential stepping of the augmented system (no eigenvectors needed)."""

    def __init__(self, K: np.ndarray, E: np.ndarray) -> None:
        self.K = K
        self.n_live, self.n_sink = K.shape[0], E.shape[0]
        n = self.n_live + self.n_sink
        self.base = np.zeros((n + 1, n + 1))
        self.base[: self.n_live, : self.n_live] = K
        self.base[self.n_live : n, : self.n_live] = E
        self.cache: dict[tuple[float, bytes], np.ndarray] = {}

    def step(self, y: np.ndarray, dt: float, rate: np.ndarray) -> np.ndarray:
        if dt <= 0:
            return y
        n = self.n_live + self.n_sink
        size = float(np.max(np.abs(rate), initial=0.0))
        direction = rate / size if size > 0 else rate
        key = (round(dt, 12), direction.tobytes())
        if key not in self.cache:
            M = self.base.copy()
            M[: self.n_live, n] = direction
            self.cache[key] = scipy.linalg.expm(M * dt)
        y = y.copy()
        y[n] = size
        return self.cache[key] @ y

    def walk(self, events: Events, t_h: np.ndarray, initial: tuple[float, np.ndarray] | None) -> np.ndarray:
        n_live, n = self.n_live, self.n_live + self.n_sink
        out = np.zeros((t_h.size, n))
        starts, ends, rates = events.infusion_start_h, events.infusion_end_h, events.infusion_rates
        t0 = initial[0] if initial is not None else None
        breaks = np.concatenate([events.bolus_t_h, starts, ends, [] if t0 is None else [t0]])
        if breaks.size == 0:
            return out
        first = breaks.min()
        points = np.unique(np.concatenate([t_h[t_h >= first], breaks]))
        y = np.zeros(n + 1)
        if initial is not None:
            y[:n] = initial[1]
        bt, bolus = events.bolus_t_h, events.bolus_amounts
        s_order, e_order = np.argsort(starts, kind="stable"), np.argsort(ends, kind="stable")
        rate = np.zeros(n_live)
        active = ib = i_s = i_e = 0
        j = int(np.searchsorted(t_h, first, side="left"))
        prev = points[0]
        for p in points:
            y = self.step(y, float(p - prev), rate)
            while ib < bt.size and bt[ib] <= p:
                y[:n_live] += bolus[ib]
                ib += 1
            while i_s < starts.size and starts[s_order[i_s]] <= p:
                rate = rate + rates[s_order[i_s]]
                active, i_s = active + 1, i_s + 1
            while i_e < ends.size and ends[e_order[i_e]] <= p:
                rate = rate - rates[e_order[i_e]]
                active, i_e = active - 1, i_e + 1
            if active == 0:
                rate = np.zeros(n_live)
            while j < t_h.size and t_h[j] == p:
                out[j] = y[:n]
                j += 1
            prev = p
        return out

    def periodic(self, steady: SteadyState) -> tuple[np.ndarray, dict]:
        tau = steady.ii_h
        P = scipy.linalg.expm(self.K * tau)
        g = P @ steady.amounts
        if steady.duration_h > 0:
            y = self.step(np.zeros(self.n_live + self.n_sink + 1), steady.duration_h, steady.rates)
            g = g + scipy.linalg.expm(self.K * (tau - steady.duration_h)) @ y[: self.n_live]
        try:
            return np.linalg.solve(np.eye(self.n_live) - P, g), {}
        except np.linalg.LinAlgError:
            raise SimulationError(
                f"no periodic steady state for `ii_h` = {tau:g} h: I - exp(K ii) is singular."
            ) from None


def linear_events(
    K: np.ndarray, E: np.ndarray, events: Events, t_h: np.ndarray, *, method: str = "exact"
) -> tuple[np.ndarray, np.ndarray, dict]:
    """Live and sink amounts of the linear model by event stepping.

    Parameters
    ----------
    K : ndarray, shape (n_live, n_live)
    E : ndarray, shape (n_sink, n_live)
    events : Events
        Any number of doses, resets and steady states.
    t_h : ndarray, shape (n_times,)
    method : {"exact", "expm"}
        ``"exact"``: modal stepping, falling back to expm stepping when the eigenvectors are
        poorly conditioned; ``"expm"``: expm stepping.

    Returns
    -------
    amounts : ndarray, shape (n_times, n_live + n_sink)
    preload_particles : ndarray, shape (n_times,)
        Particles put in the body by steady states (see :func:`run_segments`).
    info : dict
        ``method`` used, ``eigenvector_condition_number``, ``n_intervals`` (dose intervals
        walked), ``n_propagators`` (distinct interval lengths, i.e. propagators computed).
    """
    solver: _Modal | _Expm
    info: dict = {}
    if method == "exact":
        solver = _Modal(K, E)
        info["eigenvector_condition_number"] = solver.cond
        if not solver.usable:
            solver = _Expm(K, E)
    else:
        solver = _Expm(K, E)
    info["method"] = "exact" if isinstance(solver, _Modal) else "expm"
    amounts, preload, extra = run_segments(events, t_h, K.shape[0] + E.shape[0], solver.walk, solver.periodic)
    info.update(extra)
    info["n_intervals"] = int(
        np.unique(np.concatenate([events.bolus_t_h, events.infusion_start_h, events.infusion_end_h])).size
    )
    info["n_propagators"] = len(solver.cache)
    return amounts, preload, info


def ode_periodic(
    solve_piece: Callable[[Events, np.ndarray, tuple[float, np.ndarray] | None], np.ndarray],
    steady: SteadyState,
    n_sink: int,
    *,
    rtol: float = SS_RTOL,
    max_intervals: int = SS_MAX_INTERVALS,
) -> tuple[np.ndarray, dict]:
    """Pre-dose periodic state of a non-linear model, by giving the dose interval after interval.

    Stops when no live state changes by more than ``rtol`` x (particles entering per interval)
    between successive intervals; returns the state and ``{"ss_intervals": n}``.

    Raises
    ------
    SimulationError
        Not converged within ``max_intervals``.
    """
    n_live = steady.amounts.size
    tau, d = steady.ii_h, steady.duration_h
    has_rate = d > 0
    one = Events(
        np.zeros(1),
        steady.amounts[None, :],
        np.zeros(1 if has_rate else 0),
        np.full(1 if has_rate else 0, d),
        steady.rates[None, :] if has_rate else np.zeros((0, n_live)),
    )
    per_interval = float(steady.amounts.sum() + steady.rates.sum() * d)
    scale = max(per_interval, 1e-300)
    x = np.zeros(n_live)
    for k in range(1, max_intervals + 1):
        state = np.zeros(n_live + n_sink)
        state[:n_live] = x
        nxt = solve_piece(one, np.array([tau]), (0.0, state))[0, :n_live]
        change = float(np.max(np.abs(nxt - x)))
        x = nxt
        if change <= rtol * scale:
            return x, {"ss_intervals": k}
    raise SimulationError(
        f"steady state (ss=1, ii_h={tau:g} h) not reached within {max_intervals} intervals to {rtol:g} of the dose; "
        "the slowest process is much slower than the interval."
    )
