"""Solvers: exact propagation of the linear model, matrix-exponential stepping, stiff ODE.

The linear model is :math:`\\dot x = K x + u(t)`, :math:`\\dot s = E x` (live states *x*,
sinks *s*). With the eigen-decomposition :math:`K = V \\Lambda V^{-1}` the response to a
bolus *b* at :math:`t_e` is, for :math:`\\tau = t - t_e \\ge 0`,

.. math::

    x(t) = V e^{\\Lambda \\tau} V^{-1} b, \\qquad
    s(t) = E V \\, \\tau\\,\\varphi_1(\\Lambda\\tau)\\, V^{-1} b,

and to an infusion at rate *r* on :math:`[t_s, t_e)`,

.. math::

    x(t) = V [F_1(t - t_s) - F_1(t - t_e)] V^{-1} r, \\qquad
    s(t) = E V [F_2(t - t_s) - F_2(t - t_e)] V^{-1} r,

with :math:`F_1(\\tau) = \\tau \\varphi_1(\\lambda\\tau)`, :math:`F_2(\\tau) = \\tau^2
\\varphi_2(\\lambda\\tau)` for :math:`\\tau > 0` (0 otherwise), :math:`\\varphi_1(z) =
(e^z - 1)/z` and :math:`\\varphi_2(z) = (e^z - 1 - z)/z^2` (evaluated by series near 0).
Responses to several doses add (superposition). No time stepping is involved, so any set
of output times costs the same.

The circulation is a cycle, so eigenvalues may be complex, and a matrix with repeated
eigenvalues may be defective. When the eigenvector matrix is poorly conditioned, the
solution falls back to exact matrix-exponential stepping of the augmented system
(:func:`scipy.linalg.expm`), which needs no eigenvectors.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import scipy.linalg
from scipy.integrate import solve_ivp

from ._dosing import Events
from ._errors import SimulationError
from ._model import N_LIVE, N_SINK, capacity_terms, rate_matrices
from ._parameters import ModelParameters

EIGENVECTOR_COND_LIMIT = 1e8
"""Above this condition number of the eigenvectors, use matrix-exponential stepping."""

_DECAYED = -45.0  # exp(-45) ~ 3e-20: a mode this far decayed contributes nothing in float64


def _phi1(z: np.ndarray) -> np.ndarray:
    """:math:`(e^z - 1)/z`, accurate near 0 and for complex z."""
    z = np.asarray(z)
    small = np.abs(z) < 1e-5
    safe = np.where(small, 1.0, z)
    return np.where(small, 1.0 + z / 2.0 + z * z / 6.0, np.expm1(safe) / safe)


def _phi2(z: np.ndarray) -> np.ndarray:
    """:math:`(e^z - 1 - z)/z^2`, accurate near 0 and for complex z."""
    z = np.asarray(z)
    small = np.abs(z) < 1e-3
    safe = np.where(small, 1.0, z)
    series = 0.5 + z / 6.0 + z * z / 24.0 + z * z * z / 120.0
    return np.where(small, series, (np.expm1(safe) - safe) / (safe * safe))


def _mode_functions(lam: np.ndarray, t_h: np.ndarray, events: Events) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Time functions of each mode for each dose event.

    Returns a list of ``(input_vector, state_fn, sink_fn)``, one per event, where
    ``state_fn`` and ``sink_fn`` have shape (n_times, n_modes).
    """
    out = []
    t = t_h[:, None]

    def f1(tau):
        pos = tau > 0
        tt = np.where(pos, tau, 0.0)
        return np.where(pos, tt * _phi1(lam * tt), 0.0)

    def f2(tau):
        pos = tau > 0
        tt = np.where(pos, tau, 0.0)
        return np.where(pos, tt * tt * _phi2(lam * tt), 0.0)

    for t_e, b in zip(events.bolus_t_h, events.bolus_amounts, strict=True):
        tau = t - t_e
        started = tau >= 0
        tt = np.where(started, tau, 0.0)
        state = np.where(started, np.exp(lam * tt), 0.0)
        out.append((b, state, f1(tau)))
    for t_s, t_e, r in zip(events.infusion_start_h, events.infusion_end_h, events.infusion_rates, strict=True):
        out.append((r, f1(t - t_s) - f1(t - t_e), f2(t - t_s) - f2(t - t_e)))
    return out


def _eigen(K: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Eigenvalues, eigenvectors, inverse eigenvectors and their condition numbers (batched)."""
    lam, V = np.linalg.eig(K)
    cond = np.linalg.cond(V)
    bad = ~np.isfinite(cond) | (cond > EIGENVECTOR_COND_LIMIT)
    V_safe = np.where(bad[:, None, None], np.eye(K.shape[-1]), V)
    return lam, V_safe, np.linalg.inv(V_safe), cond


def exact_single(K: np.ndarray, E: np.ndarray, events: Events, t_h: np.ndarray) -> tuple[np.ndarray, float]:
    """Live and sink amounts of one parameter set by eigen-decomposition.

    Parameters
    ----------
    K : ndarray, shape (n_live, n_live)
    E : ndarray, shape (n_sink, n_live)
    events : Events
    t_h : ndarray, shape (n_times,)

    Returns
    -------
    amounts : ndarray, shape (n_times, n_live + n_sink)
        ``None`` if the eigenvectors are too poorly conditioned (then use :func:`expm_single`).
    cond : float
        Condition number of the eigenvector matrix.
    """
    lam, V, Vinv, cond = _eigen(K[None])
    lam, V, Vinv, cond = lam[0], V[0], Vinv[0], float(cond[0])
    if not math.isfinite(cond) or cond > EIGENVECTOR_COND_LIMIT:
        return None, cond
    EV = E @ V
    live = np.zeros((t_h.size, K.shape[0]))
    sink = np.zeros((t_h.size, E.shape[0]))
    for vector, state_fn, sink_fn in _mode_functions(lam, t_h, events):
        c = Vinv @ vector
        live += np.real((state_fn * c) @ V.T)
        sink += np.real((sink_fn * c) @ EV.T)
    return np.concatenate([live, sink], axis=1), cond


def _breakpoints(events: Events) -> np.ndarray:
    return np.unique(np.concatenate([events.bolus_t_h, events.infusion_start_h, events.infusion_end_h]))


def _active_rate(events: Events, t0: float) -> np.ndarray:
    """Total infusion input vector active on the interval starting at ``t0``."""
    on = (events.infusion_start_h <= t0) & (t0 < events.infusion_end_h)
    return events.infusion_rates[on].sum(axis=0)


def expm_single(K: np.ndarray, E: np.ndarray, events: Events, t_h: np.ndarray) -> np.ndarray:
    """Live and sink amounts by exact matrix-exponential stepping.

    The augmented matrix :math:`M = [[K, 0, r], [E, 0, 0], [0, 0, 0]]` is exponentiated over
    each interval between output and dose times; an infusion rate *r* enters through the
    last column, so infusions are exact too. One exponential is computed per distinct
    (step length, infusion rate) pair.

    Returns
    -------
    ndarray, shape (n_times, n_live + n_sink)
    """
    n_live, n_sink = K.shape[0], E.shape[0]
    n = n_live + n_sink
    base = np.zeros((n + 1, n + 1))
    base[:n_live, :n_live] = K
    base[n_live:n, :n_live] = E
    cache: dict[tuple[float, bytes], np.ndarray] = {}

    def step(y: np.ndarray, dt: float, rate: np.ndarray) -> np.ndarray:
        if dt <= 0:
            return y
        key = (round(dt, 12), rate.tobytes())
        if key not in cache:
            M = base.copy()
            M[:n_live, n] = rate
            cache[key] = scipy.linalg.expm(M * dt)
        return cache[key] @ y

    points = np.unique(np.concatenate([t_h, _breakpoints(events)]))
    y = np.zeros(n + 1)
    y[n] = 1.0
    out = np.zeros((t_h.size, n))
    t_prev = points[0]
    bolus_t = events.bolus_t_h
    result_at = {}
    for t in points:
        y = step(y, t - t_prev, _active_rate(events, t_prev))
        for k in np.flatnonzero(bolus_t == t):
            y[:n_live] += events.bolus_amounts[k]
        result_at[t] = y[:n].copy()
        t_prev = t
    for i, t in enumerate(t_h):
        out[i] = result_at[t]
    return out


def ode_single(
    params: ModelParameters,
    K: np.ndarray,
    E: np.ndarray,
    events: Events,
    t_h: np.ndarray,
    *,
    rtol: float,
    atol: float,
    solver: str,
) -> np.ndarray:
    """Live and sink amounts by a stiff integrator with an analytic Jacobian.

    Handles the capacity-limited (non-linear) uptake. Doses are applied exactly at their
    times by restarting the integrator; infusions enter as constant inputs per interval.
    """
    cap = capacity_terms(params)
    n_live, n_sink = K.shape[0], E.shape[0]
    n = n_live + n_sink
    A = np.zeros((n, n))
    A[:n_live, :n_live] = K
    A[n_live:, :n_live] = E
    nonlinear = cap.vascular.size > 0

    def make_rhs(rate):
        def rhs(_t, y):
            dy = A @ y
            dy[:n_live] += rate
            if nonlinear:
                c = cap.correction(y[:n_live])
                dy[:n_live] += c
            return dy

        return rhs

    def jac(_t, y):
        if not nonlinear:
            return A
        J = A.copy()
        J[:n_live, :n_live] += cap.jacobian(y[:n_live])
        return J

    points = np.unique(np.concatenate([_breakpoints(events), [t_h[-1]]]))
    points = points[points <= t_h[-1]]
    y = np.zeros(n)
    out = np.zeros((t_h.size, n))  # outputs before the first dose stay zero
    t_prev = points[0]
    for t_next in [*points[1:], None]:
        for k in np.flatnonzero(events.bolus_t_h == t_prev):
            y[:n_live] += events.bolus_amounts[k]
        out[t_h == t_prev] = y
        if t_next is None:
            break
        inside = (t_h > t_prev) & (t_h <= t_next)
        t_eval = np.unique(np.append(t_h[inside], t_next))
        sol = solve_ivp(
            make_rhs(_active_rate(events, t_prev)),
            (t_prev, t_next),
            y,
            method=solver,
            jac=jac,
            t_eval=t_eval,
            rtol=rtol,
            atol=atol,
        )
        if not sol.success:
            raise SimulationError(
                f"ODE solver ({solver}) stopped early at t = {sol.t[-1] if sol.t.size else t_prev} h: {sol.message} "
                "Try solver='Radau' or a looser `rtol`."
            )
        out[inside] = sol.y[:, : int(inside.sum())].T
        y = sol.y[:, -1].copy()
        t_prev = t_next
    return out


# ---------------------------------------------------------------------------------------
# Batches: many parameter sets, one regimen, outputs aggregated to reported organs.
# ---------------------------------------------------------------------------------------


def batch_modal(values: Mapping[str, np.ndarray], events: Events, membership_live: np.ndarray):
    """Modal coefficients for a batch of parameter sets.

    Returns a dict with eigenvalues sorted by real part (slowest first), per-event output
    coefficients ``coef`` of shape (n_events, n_sets, n_modes, n_outputs) (complex), the
    eigenvector condition numbers, and the rate matrices.
    """
    K, E = rate_matrices(values)
    lam, V, Vinv, cond = _eigen(K)
    order = np.argsort(-lam.real, axis=1, kind="stable")
    lam = np.take_along_axis(lam, order, axis=1)
    V = np.take_along_axis(V, order[:, None, :], axis=2)
    Vinv = np.take_along_axis(Vinv, order[:, :, None], axis=1)
    W = np.einsum("ol,slm->som", membership_live, V)  # (n_sets, n_outputs, n_modes)
    vectors = list(events.bolus_amounts) + list(events.infusion_rates)
    coef = np.stack([np.einsum("som,sm->smo", W, Vinv @ vec) for vec in vectors])
    return {"lam": lam, "coef": coef, "cond": cond, "K": K, "E": E}


def batch_amounts(modal: dict, events: Events, t_h: np.ndarray, subset: slice | np.ndarray = slice(None)) -> np.ndarray:
    """Reported-organ amounts for a block of output times, in real arithmetic.

    Each (event, mode) pair contributes :math:`\\mathrm{Re}(a\\,\\phi(t))`, computed as
    :math:`\\mathrm{Re}\\,a\\,\\mathrm{Re}\\,\\phi - \\mathrm{Im}\\,a\\,\\mathrm{Im}\\,\\phi`. Pairs
    whose mode has decayed below :math:`e^{-45}` for every set over the whole block are
    skipped, and imaginary parts are computed only for modes that are complex in some set.

    Returns
    -------
    ndarray, shape (n_sets, n_times, n_outputs)
    """
    lam = modal["lam"][subset]
    coef = modal["coef"][:, subset]
    alpha, beta = lam.real, lam.imag
    n_sets, n_modes = lam.shape
    n_out = coef.shape[-1]
    t0 = float(t_h[0])
    starts = list(events.bolus_t_h) + list(events.infusion_start_h)
    ends = list(events.bolus_t_h) + list(events.infusion_end_h)
    n_bolus = events.bolus_t_h.size
    basis_parts: list[np.ndarray] = []
    coef_parts: list[np.ndarray] = []
    slowest_alpha = alpha.max(axis=0)  # per mode rank, the slowest decay over the block of sets
    for e, (t_start, t_end) in enumerate(zip(starts, ends, strict=True)):
        if t_start > t_h[-1]:
            continue
        alive = slowest_alpha * max(0.0, t0 - t_end) > _DECAYED
        if not alive.any():
            continue
        a = coef[e][:, alive, :]  # (n_sets, m, n_out)
        lam_e = lam[:, alive]
        complex_mode = np.any(beta[:, alive] != 0.0, axis=0)
        tau = t_h[None, :, None] - t_start
        if e < n_bolus:
            started = tau >= 0
            tt = np.where(started, tau, 0.0)
            decay = np.exp(alpha[:, None, alive] * tt) * started
            re = decay.copy()
            if complex_mode.any():
                phase = beta[:, None, alive][..., complex_mode] * tt
                re[..., complex_mode] *= np.cos(phase)
                im = decay[..., complex_mode] * np.sin(phase)
        else:
            phi = _infusion_state(lam_e, t_h, t_start, t_end)
            re = phi.real
            im = phi.imag[..., complex_mode]
        basis_parts.append(re)
        coef_parts.append(a.real)
        if complex_mode.any():
            basis_parts.append(im)
            coef_parts.append(-a.imag[:, complex_mode, :])
    if not basis_parts:
        return np.zeros((n_sets, t_h.size, n_out))
    basis = np.concatenate(basis_parts, axis=2)
    weights = np.concatenate(coef_parts, axis=1)
    return np.matmul(basis, weights)


def _infusion_state(lam: np.ndarray, t_h: np.ndarray, t_start: float, t_end: float) -> np.ndarray:
    """:math:`F_1(t - t_s) - F_1(t - t_e)` for a batch, shape (n_sets, n_times, n_modes)."""
    lam = lam[:, None, :]

    def f1(tau):
        pos = tau > 0
        tt = np.where(pos, tau, 0.0)[None, :, None]
        return np.where(pos[None, :, None], tt * _phi1(lam * tt), 0.0)

    return f1(t_h - t_start) - f1(t_h - t_end)


def batch_auc(modal: dict, events: Events, t_end_h: float) -> np.ndarray:
    """Exact AUC from 0 to ``t_end_h`` of each reported organ amount (particles·h).

    Returns
    -------
    ndarray, shape (n_sets, n_outputs)
    """
    lam = modal["lam"]
    coef = modal["coef"]
    starts = list(events.bolus_t_h) + list(events.infusion_start_h)
    ends = list(events.bolus_t_h) + list(events.infusion_end_h)
    n_bolus = events.bolus_t_h.size
    total = np.zeros(coef.shape[1:2] + coef.shape[-1:], dtype=complex)

    def f1(tau):
        return tau * _phi1(lam * tau) if tau > 0 else np.zeros_like(lam)

    def f2(tau):
        return tau * tau * _phi2(lam * tau) if tau > 0 else np.zeros_like(lam)

    for e, (t_s, t_e) in enumerate(zip(starts, ends, strict=True)):
        integral = f1(t_end_h - t_s) if e < n_bolus else f2(t_end_h - t_s) - f2(t_end_h - t_e)
        total += np.einsum("sm,smo->so", integral, coef[e])
    return total.real
