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

import os
import warnings
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.linalg
from scipy.integrate import ODEintWarning, odeint, solve_ivp

from exopk.dosing import Events
from exopk.errors import SimulationError
from exopk.model.graph import CapacityTerms, capacity_terms, rate_matrices, reachable_live_states, reached_along
from exopk.model.parameters import ModelParameters

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


def _time_fn(lam: np.ndarray, tau: np.ndarray, kind: str) -> np.ndarray:
    r"""Per-mode time function, shape (n_times, n_modes), real or complex like ``lam``.

    ``"exp"``: :math:`e^{\lambda\tau}`; ``"f1"``: :math:`F_1(\tau) = \int_0^\tau e^{\lambda s} ds`;
    ``"f2"``: :math:`F_2(\tau) = \int_0^\tau F_1`. All are zero before the event (:math:`\tau < 0`);
    at :math:`\tau = 0` a bolus is already in (outputs are right-continuous).
    """
    started = tau >= 0
    tt = np.where(started, tau, 0.0)
    z = np.multiply.outer(tt, lam)
    if kind == "exp":
        out = np.exp(z)
    elif kind == "f1" and np.all(lam != 0):
        out = np.expm1(z) / lam  # expm1 keeps small |z| accurate; no series needed when λ != 0
    elif kind == "f1":
        out = tt[:, None] * _phi1(z)
    else:
        out = tt[:, None] ** 2 * _phi2(z)
    if not started.all():
        out[~started] = 0.0
    return out


_SHORT_GRID = 200  # up to this many output times, evaluate all modes at once


_PATTERNS: dict[tuple, object] = {}
"""What depends on a rate matrix's sparsity pattern alone (reached states, diagonal blocks), by pattern.

The pattern is fixed by the model's structure (species file, routes, subpopulations), not by the
values: a fit, a profile or a batch of one structure computes it once. Bounded (cleared when full).
"""


def _by_pattern(kind: str, K: np.ndarray, extra: np.ndarray | None, compute):
    key = (kind, K.shape, np.packbits(K != 0.0).tobytes(), None if extra is None else np.packbits(extra).tobytes())
    hit = _PATTERNS.get(key)
    if hit is None:
        if len(_PATTERNS) >= 256:
            _PATTERNS.clear()
        hit = _PATTERNS[key] = compute()
    return hit


def _frozen(a: np.ndarray) -> np.ndarray:
    a.setflags(write=False)
    return a


def restrict_to_reached(K: np.ndarray, E: np.ndarray, events: Events):
    """Drop the live states no dose can reach (they stay exactly 0): smaller, cheaper systems.

    Returns ``keep`` (indices of the kept live states) and the restricted ``K``, ``E`` and
    events; :func:`expand_reached` puts a solution back on all states.
    """
    keep = reached_states(K, events)
    if keep.size == K.shape[0]:
        return keep, K, E, events
    K_r, E_r = restrict_matrices(K, E, keep)
    return keep, K_r, E_r, events.restricted(keep)


def reached_states(K: np.ndarray, events: Events) -> np.ndarray:
    """Indices of the live states some dose of ``events`` can reach through ``K`` (read-only; by pattern)."""
    entered = events.entered
    return _by_pattern(
        "reached",
        K,
        entered,
        lambda: _frozen(np.flatnonzero(reached_along((K != 0.0) & ~np.eye(K.shape[0], dtype=bool), entered))),
    )


def restrict_matrices(K: np.ndarray, E: np.ndarray, keep: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``K`` and ``E`` over the live states ``keep`` only."""
    if keep.size == K.shape[0]:
        return K, E
    return K[np.ix_(keep, keep)], E[:, keep]


def expand_reached(amounts: np.ndarray, keep: np.ndarray, n_live: int) -> np.ndarray:
    """Amounts over the kept live states and all sinks, back on all ``n_live`` live states and the sinks."""
    if keep.size == n_live:
        return amounts
    out = np.zeros((amounts.shape[0], n_live + amounts.shape[1] - keep.size))
    out[:, keep] = amounts[:, : keep.size]
    out[:, n_live:] = amounts[:, keep.size :]
    return out


def ill_conditioned(cond: np.ndarray | float) -> np.ndarray:
    """True where an eigenvector condition number is too large (or not finite) to trust (boolean array)."""
    return np.asarray(~np.isfinite(cond) | (cond > EIGENVECTOR_COND_LIMIT))


def map_threads(function, items: list, workers: int | None) -> None:
    """Call ``function`` on every item, in up to ``workers`` threads (default: :func:`default_workers`).

    NumPy releases the GIL in LAPACK, BLAS, exp and partition, so threads run in parallel.
    """
    n_threads = min(default_workers() if workers is None else workers, len(items))
    if n_threads <= 1:
        for item in items:
            function(item)
    else:
        with ThreadPoolExecutor(n_threads) as pool:
            list(pool.map(function, items))  # list(): re-raise any worker's exception


def default_workers() -> int:
    """Threads used by batches by default: the CPUs available to this process, at most 8."""
    n_cpu = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, min(n_cpu, 8))


def _eigen(K: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Eigenvalues, eigenvectors, inverse eigenvectors and their condition numbers (batched)."""
    lam, V = np.linalg.eig(K)
    cond = np.linalg.cond(V)
    bad = ill_conditioned(cond)
    V_safe = np.where(bad[:, None, None], np.eye(K.shape[-1]), V)
    return lam, V_safe, np.linalg.inv(V_safe), cond


def as_slice(index: np.ndarray) -> slice | np.ndarray:
    """``index`` (increasing, no repeats) as a slice when it is a contiguous range (access without a gather)."""
    if index.size and int(index[-1]) - int(index[0]) == index.size - 1:
        return slice(int(index[0]), int(index[-1]) + 1)
    return index


@dataclass(frozen=True, slots=True)
class ModalBlock:
    r"""Eigen-decomposition of one diagonal block of a rate matrix, in a real basis.

    ``V`` holds a real eigenvector per real eigenvalue and, for a complex pair
    :math:`\lambda, \bar\lambda` (LAPACK ``dgeev`` order: positive imaginary part first), the
    real and imaginary parts :math:`u, w` of the first one's eigenvector, in which :math:`K`
    acts as :math:`[[a, b], [-b, a]]`; so ``Vinv`` and every weight are real.

    Time functions come in rows: one per real mode, then for each pair the real part and then
    the imaginary part of its function; :math:`e^{\lambda\tau}(z_u u + z_w w)` expands to
    :math:`\mathrm{Re}\,e^{\lambda\tau}(z_u u + z_w w) + \mathrm{Im}\,e^{\lambda\tau}(z_w u - z_u w)`
    with the modal coordinates :math:`z = V^{-1} b`. :meth:`weights` gives those rows' weights
    from precomputed matrices (:math:`W = A_1 \odot z_1 + A_2 \odot z_2`, with
    :math:`z_1 = [z_r, z_u, z_w]`, :math:`z_2 = [0, z_w, z_u]`).
    """

    live: np.ndarray  # indices of this block's live states
    sinks: np.ndarray  # indices of the sinks they feed
    lam_real: np.ndarray  # real eigenvalues (1/h)
    lam_pair: np.ndarray  # first eigenvalue of each complex pair (1/h)
    V: np.ndarray  # (n_b, n_b), real basis
    Vinv: np.ndarray  # (n_b, n_b)
    EV: np.ndarray  # (n_sink_b, n_b): E[sinks, live] @ V
    decaying: bool  # every eigenvalue has a negative real part
    live_rows: slice | np.ndarray  # rows of the live states in the solution (a slice when contiguous)
    sink_rows: slice | np.ndarray  # rows of the sinks
    to_z1: np.ndarray  # (n_b, n_b): rows of Vinv giving z_1
    to_z2: np.ndarray  # (n_b, n_b): rows of Vinv giving z_2 (zero rows for real modes)
    a1: np.ndarray  # (n_b, n_b + n_sink_b): A_1 for [live states | sinks]
    a2: np.ndarray  # (n_b, n_b + n_sink_b)

    @classmethod
    def build(cls, live: np.ndarray, sinks: np.ndarray, n_live: int, wr, wi, V, Vinv, EV) -> ModalBlock:
        """The block of states ``live`` (feeding ``sinks``) of a matrix with ``n_live`` live states, from
        LAPACK ``dgeev``'s eigenvalues ``wr + i wi`` and real eigenvector matrix ``V``."""
        real, pair = np.flatnonzero(wi == 0.0), np.flatnonzero(wi > 0.0)
        real = real[np.argsort(-wr[real], kind="stable")]  # slowest first: decayed modes are a trailing range
        pair = pair[np.argsort(-wr[pair], kind="stable")]
        lam_real, lam_pair = wr[real], wr[pair] + 1j * wi[pair]
        order = np.concatenate([real, pair, pair + 1])
        to_z1 = Vinv[order]
        to_z2 = np.concatenate([np.zeros((real.size, V.shape[0])), Vinv[pair + 1], Vinv[pair]])
        cols = np.vstack([V, EV])  # (n_b + n_sink_b, n_b): one column per mode, live states then sinks
        cu, cw = cols[:, pair], cols[:, pair + 1]
        a1 = np.concatenate([cols[:, real].T, cu.T, cu.T])
        a2 = np.concatenate([np.zeros((real.size, cols.shape[0])), cw.T, -cw.T])
        decaying = bool((wr < 0).all())
        rows = (as_slice(live), as_slice(n_live + sinks))
        return cls(live, sinks, lam_real, lam_pair, V, Vinv, EV, decaying, *rows, to_z1, to_z2, a1, a2)

    def weights(self, b: np.ndarray) -> np.ndarray | None:
        """Weights (n_b, n_b + n_sink_b) of the time-function rows for input ``b`` on this block's
        live states: live-state columns, then sink columns; None if ``b`` excites no mode."""
        z1 = self.to_z1 @ b
        if not z1.any():
            return None
        return self.a1 * z1[:, None] + self.a2 * (self.to_z2 @ b)[:, None]


@dataclass(frozen=True, slots=True)
class Modes:
    """Eigen-decomposition of a block-diagonal rate matrix, block by block (:func:`eigen_modes`)."""

    blocks: tuple[ModalBlock, ...]
    cond: float
    """1-norm condition number of the (block-diagonal) eigenvector matrix."""
    n_live: int = 0
    n_sink: int = 0
    _lazy: dict = field(default_factory=dict, repr=False, compare=False)

    def combined(self) -> ModalBlock | None:
        """All blocks as one (:func:`_combined`), for short output grids (built on the first
        request, then kept); None for a single block or a block with a mode that does not decay.

        On a short grid one evaluation of every mode costs fewer NumPy calls than one per block
        (the exact path ~30 % faster at 11-193 points). It is used on every short grid, the first
        solve included, so that the same inputs give the same bits whatever was solved before.
        """
        if len(self.blocks) < 2 or not all(b.decaying for b in self.blocks):
            return None
        if "combined" not in self._lazy:
            self._lazy["combined"] = _combined(list(self.blocks), self.n_live, self.n_sink)
        return self._lazy["combined"]

    @property
    def usable(self) -> bool:
        return not bool(ill_conditioned(self.cond))


def diagonal_blocks(K: np.ndarray) -> list[np.ndarray]:
    """The states of each connected block of ``K`` (no entry couples two blocks), in order.

    A stack of subpopulations (:func:`exopk.model.graph.mixture_system`) has one block per
    subpopulation: decomposing them one by one costs a fraction of the whole.
    """

    def compute() -> list[np.ndarray]:
        linked = (K != 0.0) | (K.T != 0.0)
        free = np.ones(K.shape[0], dtype=bool)
        blocks = []
        while free.any():
            start = np.zeros_like(free)
            start[int(np.argmax(free))] = True
            block = reached_along(linked, start)
            blocks.append(_frozen(np.flatnonzero(block)))
            free &= ~block
        return blocks

    return _by_pattern("blocks", K, None, compute)


def eigen_modes(K: np.ndarray, E: np.ndarray) -> Modes:
    """Eigen-decomposition of ``K`` block by block (:class:`Modes`), with the sinks' weights ``E @ V``.

    The condition number is that of the whole eigenvector matrix in the 1-norm,
    :math:`\\max_b \\|V_b\\|_1 \\max_b \\|V_b^{-1}\\|_1` (within a factor ``n`` of the 2-norm's,
    without a singular-value decomposition); ``inf`` if a block's eigenvectors are singular.
    """
    blocks = []
    norm_v = norm_inv = 0.0
    dgeev = scipy.linalg.lapack.dgeev
    for live in diagonal_blocks(K):
        Kb = K[np.ix_(live, live)]
        fed = np.flatnonzero((E[:, live] != 0.0).any(axis=1))
        # The range of sinks fed (those between with a zero row): one contiguous run of rows.
        sinks = np.arange(fed[0], fed[-1] + 1) if fed.size else fed
        wr, wi, _, V, info = dgeev(Kb, compute_vl=0, overwrite_a=1)
        if info != 0:
            return Modes((), np.inf)
        try:
            Vinv = np.linalg.inv(V)
        except np.linalg.LinAlgError:
            return Modes((), np.inf)
        norm_v = max(norm_v, float(np.abs(V).sum(axis=0).max()))
        norm_inv = max(norm_inv, float(np.abs(Vinv).sum(axis=0).max()))
        blocks.append(ModalBlock.build(live, sinks, K.shape[0], wr, wi, V, Vinv, E[np.ix_(sinks, live)] @ V))
    cond = norm_v * norm_inv
    return Modes(tuple(blocks), cond if np.isfinite(cond) else np.inf, K.shape[0], E.shape[0])


def _combined(blocks: list[ModalBlock], n_live: int, n_sink: int) -> ModalBlock:
    """The blocks as one :class:`ModalBlock` over all live states and sinks: modes in the order real
    (block by block), then the pairs; ``to_z*`` and ``a*`` block-diagonal. For :meth:`ModalBlock.weights`
    and the short-grid path of :func:`_bolus_decaying` (``V``, ``Vinv``, ``EV`` are left empty)."""
    m_r = [b.lam_real.size for b in blocks]
    m_p = [b.lam_pair.size for b in blocks]
    n_r, n_p = sum(m_r), sum(m_p)
    n_modes = n_r + 2 * n_p
    to_z1, to_z2 = np.zeros((n_modes, n_live)), np.zeros((n_modes, n_live))
    a1, a2 = np.zeros((n_modes, n_live + n_sink)), np.zeros((n_modes, n_live + n_sink))
    r0 = p0 = 0
    for b, k_r, k_p in zip(blocks, m_r, m_p, strict=True):
        # this block's rows: its real modes, its pairs' real parts, their imaginary parts
        rows = np.r_[r0 : r0 + k_r, n_r + p0 : n_r + p0 + k_p, n_r + n_p + p0 : n_r + n_p + p0 + k_p][:, None]
        columns = np.concatenate([b.live, n_live + b.sinks])
        to_z1[rows, b.live] = b.to_z1
        to_z2[rows, b.live] = b.to_z2
        a1[rows, columns] = b.a1
        a2[rows, columns] = b.a2
        r0, p0 = r0 + k_r, p0 + k_p
    empty = np.zeros((0, 0))
    return ModalBlock(
        live=np.arange(n_live),
        sinks=np.arange(n_sink),
        lam_real=np.concatenate([b.lam_real for b in blocks]),
        lam_pair=np.concatenate([b.lam_pair for b in blocks]),
        V=empty,
        Vinv=empty,
        EV=empty,
        decaying=True,
        live_rows=slice(0, n_live),
        sink_rows=slice(n_live, n_live + n_sink),
        to_z1=to_z1,
        to_z2=to_z2,
        a1=a1,
        a2=a2,
    )


def _modal_functions(block: ModalBlock, tau: np.ndarray, kinds: tuple[str, str]) -> tuple[np.ndarray, np.ndarray]:
    """Live and sink time functions of one block for offsets ``tau``, rows as :meth:`ModalBlock.weights`.

    The general path (modes that do not decay, infusions); decaying boluses go by :func:`_bolus_decaying`.
    """
    n_t, m_r, m_p = tau.size, block.lam_real.size, block.lam_pair.size
    live = np.empty((m_r + 2 * m_p, n_t))
    sink = np.empty((m_r + 2 * m_p, n_t))
    for out, kind in zip((live, sink), kinds, strict=True):
        if m_r:
            out[:m_r] = _time_fn(block.lam_real, tau, kind).T
        if m_p:
            f = _time_fn(block.lam_pair, tau, kind).T
            out[m_r : m_r + m_p], out[m_r + m_p :] = f.real, f.imag
    return live, sink


_ONE_THREAD_MNK = 2**18
"""Largest m·n·k of a matrix product that OpenBLAS runs on one thread (its ``SMP_THRESHOLD_MIN``
x ``GEMM_MULTITHREAD_THRESHOLD`` = 65536 x 4). Above it, a product of this model's size (20 x 20 @
20 x 2881) is split over threads, which costs more than it saves: measured 135-186 µs threaded
against 43 µs in chunks on a loaded 2-core machine (issue 15)."""


def _product(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` for a small ``a`` and a wide ``b``, in column chunks that OpenBLAS runs on one thread."""
    m, k = a.shape
    n = b.shape[1]
    if m * k * n <= _ONE_THREAD_MNK or m * k == 0:
        return a @ b
    out = np.empty((m, n))
    step = max(1, _ONE_THREAD_MNK // (m * k))
    for j in range(0, n, step):
        np.matmul(a, b[:, j : j + step], out=out[:, j : j + step])
    return out


_SEGMENT_MIN = 32  # output times: a shorter stretch is merged into the one before it


def _bolus_decaying(block: ModalBlock, tau: np.ndarray, w: np.ndarray, live: np.ndarray, sink: np.ndarray) -> None:
    r"""Add one bolus's response on one block of decaying modes to ``live`` (n_b, n_times) and ``sink``.

    ``w`` are the weights of :meth:`ModalBlock.weights`. Modes are evaluated only while they
    have not decayed below :math:`e^{-45}` (~3·10⁻²⁰; a fast, flow-limited mode for a few output
    times only): the times split into stretches over which the first *k* (slowest) modes are
    alive, each one matrix product over those modes; a decayed mode adds nothing to the live
    states and its final integral :math:`-1/\lambda` to the sinks (a constant per stretch).
    :math:`F_1 = \mathrm{expm1}(\lambda\tau)/\lambda` keeps small :math:`|\lambda\tau|` accurate.
    Outputs are (states, times): every stretch is a contiguous run of each state's row.
    """
    n_b = block.live.size
    n0 = int(np.searchsorted(tau, 0.0, side="left"))  # before the dose: zero
    tt = tau[n0:]
    n_t = tt.size
    lam = block.lam_real
    m_r, m_p = lam.size, block.lam_pair.size
    if n_t <= _SHORT_GRID and m_r:  # few output times: every real mode at every time, in one product each
        seg = slice(n0, None)
        z = np.multiply.outer(lam, tt)
        live[:, seg] += _product(w[:m_r, :n_b].T, np.exp(z))
        sink[:, seg] += _product(w[:m_r, n_b:].T, np.expm1(z) / lam[:, None])
    elif m_r:
        w_live, w_sink = w[:m_r, :n_b].T, w[:m_r, n_b:].T  # (states, modes)
        # last output index + 1 at which each mode is alive (non-increasing: slowest first)
        alive = np.minimum(np.searchsorted(tt, _DECAYED / lam, side="right"), n_t).tolist()
        final = w_sink * (-1.0 / lam)  # each mode's integral once decayed, on the sinks
        tail = np.zeros((final.shape[0], m_r + 1))
        tail[:, :m_r] = np.cumsum(final[:, ::-1], axis=1)[:, ::-1]  # tail[:, k]: modes k.. decayed
        i0 = 0
        while i0 < n_t:
            k = sum(a > i0 for a in alive)  # modes alive at time index i0
            i1 = alive[k - 1] if k else n_t
            while k and i1 < n_t and i1 - i0 < _SEGMENT_MIN:  # too short a stretch: take the next in too
                k_next = sum(a > i1 for a in alive)
                i1 = alive[k_next - 1] if k_next else n_t
            seg = slice(n0 + i0, n0 + i1)
            if k:
                z = np.multiply.outer(lam[:k], tt[i0:i1])
                live[:, seg] += _product(w_live[:, :k], np.exp(z))
                f1 = np.expm1(z)
                f1 /= lam[:k, None]
                s = _product(w_sink[:, :k], f1)
                s += tail[:, k : k + 1]
                sink[:, seg] += s
            else:
                sink[:, seg] += tail[:, :1]
            i0 = i1
    if m_p:
        lam_p = block.lam_pair
        w_re, w_im = w[m_r : m_r + m_p].T, w[m_r + m_p :].T
        n_alive = n_t  # on a short grid at every time, like the real modes
        if n_t > _SHORT_GRID:
            n_alive = int(min(np.searchsorted(tt, _DECAYED / lam_p.real.max(), side="right"), n_t))
        z = np.multiply.outer(lam_p, tt[:n_alive])
        e, f1 = np.exp(z), np.expm1(z) / lam_p[:, None]
        seg = slice(n0, n0 + n_alive)
        live[:, seg] += w_re[:n_b] @ e.real + w_im[:n_b] @ e.imag
        sink[:, seg] += w_re[n_b:] @ f1.real + w_im[n_b:] @ f1.imag
        end = -1.0 / lam_p
        sink[:, n0 + n_alive :] += (w_re[n_b:] @ end.real + w_im[n_b:] @ end.imag)[:, None]


def exact_single(
    K: np.ndarray, E: np.ndarray, events: Events, t_h: np.ndarray, modes: Modes | None = None
) -> tuple[np.ndarray | None, float]:
    """Live and sink amounts of one parameter set by eigen-decomposition.

    Parameters
    ----------
    K : ndarray, shape (n_live, n_live)
    E : ndarray, shape (n_sink, n_live)
    events : Events
    t_h : ndarray, shape (n_times,)
    modes : Modes, optional
        ``eigen_modes(K, E)``, if already computed (it depends on the rates alone; the
        simulation keeps it on the parameter set).

    Returns
    -------
    amounts : ndarray, shape (n_times, n_live + n_sink), or None
        ``None`` if the eigenvectors are too poorly conditioned (then use :func:`expm_single`).
    cond : float
        1-norm condition number of the eigenvector matrix (:func:`eigen_modes`).

    Notes
    -----
    Each diagonal block (one per subpopulation of a mixture) is solved on its own: per event,
    one real time function per mode for the live states (:math:`e^{\\lambda\\tau}`, or the
    real and imaginary parts of a complex pair's) and one for the sinks (its integral), and
    two matrix products with the real weights (:meth:`ModalBlock.weights`). A complex pair is
    evaluated once, not once per conjugate.
    """
    if modes is None:
        modes = eigen_modes(K, E)
    if not modes.usable:
        return None, modes.cond
    n_live, n_sink = K.shape[0], E.shape[0]
    out = np.zeros((n_live + n_sink, t_h.size))  # (states, times): rows are contiguous runs of times
    inputs = [(t_h - t_e, b) for t_e, b in zip(events.bolus_t_h, events.bolus_amounts, strict=True)]
    infusions = list(zip(events.infusion_start_h, events.infusion_end_h, events.infusion_rates, strict=True))
    blocks = modes.blocks
    if not infusions and t_h.size <= _SHORT_GRID:
        combined = modes.combined()
        if combined is not None:
            blocks = (combined,)  # few output times: every mode of every block in one evaluation
    for block in blocks:
        n_b = block.live.size
        rows_live, rows_sink = block.live_rows, block.sink_rows
        views = isinstance(rows_live, slice) and isinstance(rows_sink, slice)
        if views:
            live, sink = out[rows_live], out[rows_sink]
        else:
            live, sink = np.zeros((n_b, t_h.size)), np.zeros((block.sinks.size, t_h.size))
        for tau, b in inputs:
            w = block.weights(b[block.live])
            if w is None:
                continue
            if block.decaying:
                _bolus_decaying(block, tau, w, live, sink)
                continue
            f_live, f_sink = _modal_functions(block, tau, ("exp", "f1"))
            live += _product(w[:, :n_b].T, f_live)
            sink += _product(w[:, n_b:].T, f_sink)
        for t_s, t_e, r in infusions:
            w = block.weights(r[block.live])
            if w is None:
                continue
            on_live, on_sink = _modal_functions(block, t_h - t_s, ("f1", "f2"))
            off_live, off_sink = _modal_functions(block, t_h - t_e, ("f1", "f2"))
            live += _product(w[:, :n_b].T, on_live - off_live)
            sink += _product(w[:, n_b:].T, on_sink - off_sink)
        if not views:
            out[rows_live] += live
            out[rows_sink] += sink
    amounts = out.T  # (times, states), column-major: each state's curve is contiguous
    # Before and at the first dose time nothing has moved yet: those rows are exact (the modal
    # sum V V^-1 b equals b only up to round-off, ~1e-16 of the dose in other states).
    first = min(events.bolus_t_h.min(initial=np.inf), events.infusion_start_h.min(initial=np.inf))
    amounts[t_h < first] = 0.0
    at_first = t_h == first
    if at_first.any():
        amounts[at_first] = 0.0
        amounts[at_first, :n_live] = events.bolus_amounts[events.bolus_t_h == first].sum(axis=0)
    return amounts, modes.cond


def _breakpoints(events: Events) -> np.ndarray:
    return np.unique(np.concatenate([events.bolus_t_h, events.infusion_start_h, events.infusion_end_h]))


def _active_rate(events: Events, t0: float) -> np.ndarray:
    """Total infusion input vector active on the interval starting at ``t0``."""
    on = (events.infusion_start_h <= t0) & (t0 < events.infusion_end_h)
    return events.infusion_rates[on].sum(axis=0)


def expm_single(
    K: np.ndarray, E: np.ndarray, events: Events, t_h: np.ndarray, *, integrals: bool = False
) -> np.ndarray:
    r"""Live and sink amounts by exact matrix-exponential stepping.

    The augmented matrix :math:`M = [[K, 0, \hat r], [E, 0, 0], [0, 0, 0]]` is exponentiated over
    each interval between output and dose times, with the infusion input entering through the
    last state, which holds the rate's magnitude :math:`|r|` while the matrix holds the unit
    vector :math:`\hat r = r/|r|`: the matrix, and so the accuracy of :func:`scipy.linalg.expm`,
    does not depend on the dose's size. One exponential is computed per distinct
    (step length, infusion direction) pair.

    Parameters
    ----------
    integrals : bool, default False
        Also return :math:`\int_0^t x\,dt` of the live states (particles·h), exactly, as
        extra columns (for AUCs).

    Returns
    -------
    ndarray, shape (n_times, n_live + n_sink [+ n_live])
    """
    n_live, n_sink = K.shape[0], E.shape[0]
    n = n_live + n_sink + (n_live if integrals else 0)
    base = np.zeros((n + 1, n + 1))
    base[:n_live, :n_live] = K
    base[n_live : n_live + n_sink, :n_live] = E
    if integrals:
        base[n_live + n_sink : n, :n_live] = np.eye(n_live)
    cache: dict[tuple[float, bytes], np.ndarray] = {}

    def step(y: np.ndarray, dt: float, rate: np.ndarray) -> np.ndarray:
        if dt <= 0:
            return y
        size = float(np.max(np.abs(rate), initial=0.0))
        direction = rate / size if size > 0 else rate
        key = (round(dt, 12), direction.tobytes())
        if key not in cache:
            M = base.copy()
            M[:n_live, n] = direction
            cache[key] = scipy.linalg.expm(M * dt)
        y[n] = size
        return cache[key] @ y

    points = np.unique(np.concatenate([t_h, _breakpoints(events)]))
    y = np.zeros(n + 1)
    out = np.zeros((t_h.size, n))
    t_prev = points[0]
    result_at = {}
    for t in points:
        y = step(y, t - t_prev, _active_rate(events, t_prev))
        for k in np.flatnonzero(events.bolus_t_h == t):
            y[:n_live] += events.bolus_amounts[k]
        result_at[t] = y[:n].copy()
        t_prev = t
    for i, t in enumerate(t_h):
        out[i] = result_at[t]
    return out


@dataclass(frozen=True, slots=True)
class OdeSystem:
    r"""Right-hand side and analytic Jacobian of the model as one first-order system.

    :math:`\dot y = A y + u + c(y)` with :math:`A = [[K, 0], [E, 0]]` on (live states, sinks),
    the infusion input *u* on the live states, and the capacity correction *c* (zero in the
    linear model; see :class:`exopk.model.graph.CapacityTerms`).
    """

    A: np.ndarray
    n_live: int
    capacity: CapacityTerms | None

    def rhs(self, y: np.ndarray, rate: np.ndarray | float = 0.0) -> np.ndarray:
        """Time derivative (particles/h) at state ``y`` under infusion input ``rate`` (particles/h)."""
        dy = self.A @ y
        dy[: self.n_live] += rate
        if self.capacity is not None:
            dy[: self.n_live] += self.capacity.correction(y[: self.n_live])
        return dy

    def jacobian(self, y: np.ndarray) -> np.ndarray:
        r""":math:`\partial \dot y / \partial y` (1/h), shape (n, n)."""
        if self.capacity is None:
            return self.A
        J = self.A.copy()
        J[: self.n_live, : self.n_live] += self.capacity.jacobian(y[: self.n_live])
        return J

    def callables(self, rate: np.ndarray | None = None):
        """``(rhs(y, t), jacobian(y, t))`` for an integrator, equal to :meth:`rhs` and :meth:`jacobian`.

        Built for the per-call cost, which dominates a stiff solve of this size: ``rate``
        (particles/h, shape (n_live,)) is a constant infusion input; ``t`` is ignored (the
        system is autonomous). See :func:`_fast_callables`.
        """
        return _fast_callables(self.A, _saturation_groups(self.capacity), rate)


# A saturating organ: (state indices of the cell pools whose sum saturates it, 1/capacity (1/particles),
# ((vascular index, cell-pool index, macrophage uptake (1/h)), ...) of the entries that share those pools).
_Group = tuple[tuple[int, ...], float, tuple[tuple[int, int, float], ...]]


def _saturation_groups(cap: CapacityTerms | None, position: Mapping[int, int] | None = None) -> tuple[_Group, ...]:
    """The capacity terms grouped by the pools they saturate on, optionally renumbered.

    Entries of :class:`~exopk.model.graph.CapacityTerms` that share their pools and capacity (one
    organ, every subpopulation) share one saturation :math:`\\min(1, A_m/\\mathrm{cap})`, computed
    once. With ``position`` (old state index -> new index, for the states kept by
    :func:`_reached`), entries whose vascular pool is not kept (it stays 0: no flux) and pools
    not kept (they stay 0: they fill nothing) are left out.
    """
    if cap is None or cap.vascular.size == 0:
        return ()
    pools = cap.cells[:, None] if cap.saturating is None else cap.saturating
    groups: dict[tuple[tuple[int, ...], float], list[tuple[int, int, float]]] = {}
    for v, m, pool, k, c in zip(cap.vascular, cap.cells, pools, cap.uptake_per_h, cap.capacity_particles, strict=True):
        v, m, members = int(v), int(m), [int(j) for j in pool]
        if position is not None:
            if v not in position or k == 0.0:
                continue
            v, m, members = position[v], position[m], [position[j] for j in members if j in position]
        groups.setdefault((tuple(members), 1.0 / float(c)), []).append((v, m, float(k)))
    return tuple((members, inv_cap, tuple(entries)) for (members, inv_cap), entries in groups.items())


def _fast_callables(A: np.ndarray, groups: tuple[_Group, ...], rate: np.ndarray | None = None):
    """``(rhs(y, t), jacobian(y, t))`` of :math:`\\dot y = A y + u + c(y)`, ``u = rate`` on the first states.

    An integrator calls the right-hand side thousands of times (~5,000 LSODA calls for the
    capacity-limited default mixture over 48 h at the default tolerances), so it is written for
    the cost per call. The capacity correction of each saturating organ is computed in Python
    floats from one ``take`` of the few states it reads (a NumPy call on such tiny arrays costs
    more than the arithmetic); then one product :math:`[A \\mid D \\mid u]\\,[y, f, 1]` adds the
    linear part, the fluxes *f* along their directions :math:`e_v - e_m` (columns of *D*) and
    the infusion input. ``M.dot`` has half the call overhead of ``M @ y`` at this size.
    Measured ~3 µs a call, against ~9.5 µs for the former version (a matrix product, then
    per-index NumPy updates).
    """
    n = A.shape[0]
    u = None
    if rate is not None and np.any(rate != 0.0):
        u = np.zeros(n)
        u[: np.size(rate)] = rate
    if not groups:
        dot = A.dot

        def linear_rhs(y, _t):
            return dot(y) if u is None else dot(y) + u

        return linear_rhs, lambda _y, _t: A
    # The states read: every group's pools, then the vascular pool of every entry.
    read = [j for pools, _, _ in groups for j in pools] + [v for _, _, entries in groups for v, _, _ in entries]
    read_at = np.array(read, dtype=np.intp)
    entries_all = [(v, m, k) for _, _, entries in groups for v, m, k in entries]
    # dy = [A | D | u] @ [y, fluxes, 1]: the flux k sat A_v of entry e moves along column e of D,
    # e_v - e_m (from the cells back to the vascular pool). One product instead of three steps,
    # on a buffer of this closure (assembling [y, fluxes, 1] anew costs more than the product).
    M = np.zeros((n, n + len(entries_all) + 1))
    M[:, :n] = A
    for e, (v, m, _) in enumerate(entries_all):
        M[v, n + e] += 1.0
        M[m, n + e] -= 1.0
    if u is not None:
        M[:, -1] = u
    product = M.dot
    z = np.empty(M.shape[1])
    z[-1] = 1.0
    # The right-hand side as straight-line code for these groups (as collections.namedtuple
    # writes its class): the loops over groups, pools and entries cost ~0.8 µs a call in the
    # interpreter, a quarter of the call. Only names appear in the source; the values are bound
    # in `scope`.
    scope: dict[str, Any] = {"read_at": read_at, "z": z, "n": n, "product": product}
    names = [f"a{i}" for i in range(len(read))]
    body = [f"    {', '.join(names)}, = y.take(read_at).tolist()"]
    fluxes, pool_at, entry_at = [], 0, sum(len(pools) for pools, _, _ in groups)
    for g, (pools, inv_cap, entries) in enumerate(groups):
        # A slightly negative pool (integrator round-off) fills nothing.
        filled = " + ".join(f"({x} if {x} > 0.0 else 0.0)" for x in names[pool_at : pool_at + len(pools)]) or "0.0"
        scope[f"c{g}"] = inv_cap
        body += [f"    s{g} = ({filled}) * c{g}", f"    if s{g} > 1.0:", f"        s{g} = 1.0"]
        for *_, k in entries:
            scope[f"k{entry_at}"] = k
            fluxes.append(f"k{entry_at} * s{g} * {names[entry_at]}")
            entry_at += 1
        pool_at += len(pools)
    body += ["    z[:n] = y", f"    z[n:-1] = ({', '.join(fluxes)},)", "    return product(z)"]
    exec("def rhs(y, _t):\n" + "\n".join(body), scope)
    rhs = scope["rhs"]

    # (v, m, k, positions in `read` of the group's pools and of v) per entry, for the Jacobian.
    jac_plan, pool_at, entry_at = [], 0, sum(len(pools) for pools, _, _ in groups)
    for pools, inv_cap, entries in groups:
        members = list(zip(pools, range(pool_at, pool_at + len(pools)), strict=True))
        jac_plan.append((inv_cap, members, [(v, m, k, entry_at + e) for e, (v, m, k) in enumerate(entries)]))
        pool_at, entry_at = pool_at + len(pools), entry_at + len(entries)

    def jac(y, _t):
        J = A.copy()
        values = y.take(read_at).tolist()
        for inv_cap, members, entries in jac_plan:
            filled = 0.0
            for _, i in members:
                if values[i] > 0.0:
                    filled += values[i]
            sat = filled * inv_cap
            if sat >= 1.0:  # full: g = 0, flat (CapacityTerms.jacobian)
                for v, m, k, _ in entries:
                    J[v, v] += k
                    J[m, v] -= k
                continue
            for v, m, k, i_v in entries:
                J[v, v] += k * sat
                J[m, v] -= k * sat
                if filled > 0.0:
                    slope = k * inv_cap * values[i_v]
                    for j, i in members:
                        if values[i] > 0.0:
                            J[v, j] += slope
                            J[m, j] -= slope
        return J

    return rhs, jac


def ode_system(params: ModelParameters | CapacityTerms | None, K: np.ndarray, E: np.ndarray) -> OdeSystem:
    """The :class:`OdeSystem` of ``K``, ``E`` and, if ``params`` has finite capacities, their capacity terms.

    ``params=None`` (or a linear ``params``) gives the linear system; with capacities, ``K`` and
    ``E`` must span all states (the capacity terms index the full state vector).
    """
    n_live, n_sink = K.shape[0], E.shape[0]
    A = np.zeros((n_live + n_sink, n_live + n_sink))
    A[:n_live, :n_live] = K
    A[n_live:, :n_live] = E
    cap: CapacityTerms | None
    if isinstance(params, CapacityTerms):  # a stacked mixture's terms (exopk.model.graph.mixture_system)
        cap = params
    else:
        cap = capacity_terms(params) if params is not None else None
    return OdeSystem(A=A, n_live=n_live, capacity=cap if cap is not None and cap.vascular.size else None)


ODE_MAX_STEPS = 200_000
"""Most integrator steps between two output times before the ODE path gives up."""


def _reached(system: OdeSystem, entered: np.ndarray, n_sink: int) -> tuple[np.ndarray, np.ndarray]:
    """The live states reachable from ``entered`` (boolean, shape (n_live,)) and the sinks they feed.

    The others stay where they start: an unreached live state at 0 (nothing flows into it; the
    capacity terms move particles only between a vascular pool and the cells it fills, so
    along an edge of ``K``), an unfed sink at its initial amount.
    """
    n_live = system.n_live
    K, E = system.A[:n_live, :n_live], system.A[n_live : n_live + n_sink, :n_live]
    live = np.flatnonzero(reached_along((K != 0.0) & ~np.eye(n_live, dtype=bool), entered))
    sinks = np.flatnonzero(np.any(E[:, live] != 0.0, axis=1))
    return live, sinks


def ode_single(
    params: ModelParameters | CapacityTerms | None,
    K: np.ndarray,
    E: np.ndarray,
    events: Events,
    t_h: np.ndarray,
    *,
    rtol: float,
    atol: float | np.ndarray,
    solver: str,
    initial: tuple[float, np.ndarray] | None = None,
    integrals: np.ndarray | None = None,
) -> np.ndarray:
    """Live and sink amounts by a stiff integrator with an analytic Jacobian.

    Handles the capacity-limited (non-linear) uptake of ``params``; ``params=None`` integrates
    the linear system ``K``, ``E`` (e.g. a label system, or the last fallback of the linear
    model). Doses are applied exactly at their times by restarting the integrator; infusions
    enter as constant inputs per interval. ``atol`` (particles) may be one value or one per state.
    ``initial = (t0_h, state)`` starts from ``state`` (live and sinks) at ``t0_h`` instead of
    from zero (used for resets and steady states, :mod:`exopk.solve.events`).

    Only the live states the doses (or ``initial``) can reach, and the sinks they feed, are
    integrated (:func:`_reached`); the others keep their initial amounts exactly. For the
    default mixture under an IV dose that is 40 of 48 live states and 16 of 24 sinks: fewer
    operations in the integrator's dense LU factorisations and back-substitutions and in
    every right-hand side.

    Cost (``benchmarks/bench_capacity.py``, case cap-sim-rr: capacity-limited default mixture,
    IV bolus, 2881 output times over 48 h, default tolerances; 2-core machine, load 1.5-2.7):
    ~2,950 LSODA steps, ~5,000 right-hand sides and ~200 Jacobians, whatever the number of
    output times. 36-45 ms, against 53-61 ms on all 72 stacked states with the former
    callables; libroadrunner (CVODE at rtol 1e-8) takes 20-30 ms on the same machine.
    Of that, ~15 ms are the right-hand sides (~3 µs a call) and ~20 ms odeint's calls into
    Python and ODEPACK's steps and linear algebra (a banded Jacobian, bandwidth 13 after
    reverse Cuthill-McKee ordering, was measured no faster: LINPACK's per-column BLAS calls,
    not flops, dominate at this size). Splitting at the saturation kinks (each costs LSODA
    ~150-250 steps) was measured slower: each restart costs as much. What remains is the
    number of steps the tolerances ask for: at rtol 1e-8, atol 1e-12 x dose, 22-34 ms.

    ``solver="LSODA"`` runs ODEPACK's LSODA through :func:`scipy.integrate.odeint`: each dose
    interval is one call into Fortran that steps and interpolates to the output times, calling
    back into Python only for the right-hand side and the Jacobian (:func:`_fast_callables`).
    ``"BDF"`` and ``"Radau"`` go through :func:`scipy.integrate.solve_ivp`, whose steps run in
    Python: same answer to the tolerances, several times slower (``benchmarks/bench_capacity.py``).

    ``integrals``, a matrix *W* of shape (n_integrals, n_live), also returns
    :math:`W \\int_0^t x\\,dt` (particles·h; e.g. *W* = organ membership: each organ's AUC),
    integrated with the states, as extra columns.

    Returns
    -------
    ndarray, shape (n_times, n_live + n_sink [+ n_integrals])
    """
    system = ode_system(params, K, E)
    n_live, n_sink = K.shape[0], E.shape[0]
    n_int = 0 if integrals is None else integrals.shape[0]
    start_state = np.zeros(n_live + n_sink + n_int)  # live, sinks [, integrals]
    if initial is not None:
        start_state[: len(initial[1])] = np.asarray(initial[1], dtype=float)
    live, sinks = _reached(system, events.entered | (start_state[:n_live] != 0.0), n_sink)
    columns = np.concatenate([live, n_live + sinks])  # of the full state vector, in the order solved
    n_r = columns.size
    A = np.zeros((n_r + n_int, n_r + n_int))
    A[:n_r, :n_r] = system.A[np.ix_(columns, columns)]
    if integrals is not None:  # d/dt (W integral of x) = W x: extra states with rows [W, 0, 0]
        A[n_r:, : live.size] = integrals[:, live]
    position = {int(j): i for i, j in enumerate(live)}
    groups = _saturation_groups(system.capacity, position)
    atol_all: float | np.ndarray = atol
    if np.ndim(atol):
        atol_all = np.asarray(atol, dtype=float)[columns]
    if integrals is not None:
        # The integrals follow the states they integrate and need no error control of their
        # own (CVODES's quadratures likewise): a vast absolute tolerance takes them out of the
        # error norm, so they do not change the steps taken.
        atol_all = np.concatenate([np.broadcast_to(np.asarray(atol_all, dtype=float), (n_r,)), np.full(n_int, 1e300)])

    start = [] if initial is None else [initial[0]]
    points = np.unique(np.concatenate([_breakpoints(events), [t_h[-1]], start]))
    points = points[points <= t_h[-1]]
    y = np.zeros(n_r + n_int)
    if initial is not None:
        points = points[points >= initial[0]]
        y[:n_r] = start_state[columns]
        y[n_r:] = start_state[n_live + n_sink :]
    if live.size == 0:  # nothing given, nothing held (e.g. after a reset): every state keeps its amount
        full = np.zeros((t_h.size, n_live + n_sink + n_int))
        full[t_h >= points[0]] = start_state
        return full
    out = np.zeros((t_h.size, n_r + n_int))  # outputs before the first dose stay zero
    t_prev = points[0]
    for t_next in [*points[1:], None]:
        for k in np.flatnonzero(events.bolus_t_h == t_prev):
            y[: live.size] += events.bolus_amounts[k][live]
        out[t_h == t_prev] = y
        if t_next is None:
            break
        inside = (t_h > t_prev) & (t_h <= t_next)
        t_eval = np.unique(np.append(t_h[inside], t_next))
        rhs, jac = _fast_callables(A, groups, _active_rate(events, t_prev)[live])
        # Integrate in time since the interval's start: the system is autonomous, and late in a
        # regimen the spacing of floats near t (3.6e-15 h at 24 h) would bound the first step
        # after a dose, which the fast flow modes (~1e5 /h) need to be ~1e-13 h at tight tolerances.
        if solver == "LSODA":
            ys = _lsoda(rhs, jac, y, np.concatenate([[0.0], t_eval - t_prev]), rtol, atol_all, t_prev, solver)[1:]
        else:
            sol = solve_ivp(
                lambda t, x, f=rhs: f(x, t),
                (0.0, t_next - t_prev),
                y,
                method=solver,
                jac=lambda t, x, f=jac: f(x, t),
                t_eval=t_eval - t_prev,
                rtol=rtol,
                atol=atol_all,
            )
            if not sol.success:
                raise SimulationError(
                    f"ODE solver ({solver}) stopped early at t = {t_prev + sol.t[-1] if np.size(sol.t) else t_prev} h: "
                    f"{sol.message} "
                    "Try solver='Radau' or a looser `rtol`."
                )
            ys = sol.y.T
        out[inside] = ys[: int(inside.sum())]
        y = ys[-1].copy()
        t_prev = t_next
    full = np.zeros((t_h.size, n_live + n_sink + n_int))
    full[:, columns] = out[:, :n_r]
    full[:, n_live + n_sink :] = out[:, n_r:]
    unfed = np.setdiff1d(np.arange(n_live + n_sink), columns)  # they keep their initial amounts
    if initial is not None and np.any(start_state[unfed] != 0.0):
        full[np.ix_(t_h >= points[0], unfed)] = start_state[unfed]
    return full


def _lsoda(rhs, jac, y0: np.ndarray, tau_h: np.ndarray, rtol, atol, t0_h: float, solver: str) -> np.ndarray:
    """States at the times ``tau_h`` (from 0, the state ``y0``) by :func:`scipy.integrate.odeint`."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ODEintWarning)  # failures are reported below, as SimulationError
        ys, info = odeint(
            rhs, y0, tau_h, Dfun=jac, rtol=rtol, atol=atol, mxstep=ODE_MAX_STEPS, full_output=True, printmessg=False
        )
    if info["message"] != "Integration successful.":
        reached = t0_h + float(info["tcur"][-1]) if np.size(info["tcur"]) else t0_h
        raise SimulationError(
            f"ODE solver ({solver}) stopped early at t = {reached:.6g} h: {info['message']} "
            "Try solver='Radau' or a looser `rtol`."
        )
    return ys


# ---------------------------------------------------------------------------------------
# Batches: many parameter sets, one regimen, outputs aggregated to reported organs.
# ---------------------------------------------------------------------------------------


def batch_modal(
    values: Mapping[str, np.ndarray], events: Events, membership_live: np.ndarray, *, workers: int | None = None
):
    """Modal coefficients for a batch of parameter sets.

    Returns a dict with eigenvalues ``lam`` (n_sets, n_modes) sorted by real part (slowest
    first), the per-event output coefficients *a* as two real arrays ``coef_re``
    (:math:`\\mathrm{Re}\\,a`) and ``coef_im`` (:math:`-\\mathrm{Im}\\,a`), each of shape
    (n_events, n_sets, n_modes, n_outputs), and ``cond``, an upper bound of the condition
    number of the eigenvectors. Sets with ``cond`` above :data:`EIGENVECTOR_COND_LIMIT` (the
    same sets as by the exact condition number) have meaningless coefficients and must be
    solved another way.

    Cheaper than :func:`_eigen` for batches (LAPACK's eigen-solver, ~0.07 ms per 20 x 20
    matrix, is then most of the cost):

    - The 2-norm condition number needs an SVD per matrix, costlier than the inverse; it is
      replaced by its upper bound :math:`\\|V\\|_F \\|V^{-1}\\|_F` and computed exactly only
      for sets whose bound exceeds the limit.
    - :math:`V^{-1}` is never formed in complex arithmetic. LAPACK returns the eigenvectors of
      a complex-conjugate pair (consecutive, positive imaginary part first) as the real
      columns *p*, *q* of :math:`v = p + iq`, which NumPy turns into complex columns. With
      :math:`V_r` holding *p*, *q*, :math:`V = V_r T`, :math:`T = [[1, 1], [i, -i]]` on each
      pair, so :math:`V^{-1} b` is :math:`(c_p \\mp i c_q)/2` on the pair, from
      :math:`c = V_r^{-1} b`: one real inverse, a quarter of the work of a complex one.
    - The sets go in chunks of 1024 over threads (NumPy releases the GIL in LAPACK), which
      also keeps the rate matrices and eigenvectors small (~150 MB for 10,000 sets at once).
      Each set is computed on its own: results do not depend on the chunking or threads.
    """

    n_sets = max(np.size(v) for v in values.values())
    full = {name: np.broadcast_to(np.asarray(v, dtype=float).reshape(-1), (n_sets,)) for name, v in values.items()}
    # Only the states the doses can reach have modes that matter (the others stay exactly 0).
    keep = reachable_live_states(full, events.entered)
    n_modes = keep.size
    inputs = np.stack(list(events.bolus_amounts) + list(events.infusion_rates), axis=1)[keep]  # (n_modes, n_events)
    membership_live = membership_live[:, keep]
    n_events, n_out = inputs.shape[1], membership_live.shape[0]
    lam = np.empty((n_sets, n_modes), dtype=complex)
    cond = np.empty(n_sets)
    coef_re = np.empty((n_events, n_sets, n_modes, n_out))
    coef_im = np.empty_like(coef_re)
    eye = np.eye(n_modes)

    def frobenius2(A: np.ndarray) -> np.ndarray:
        return (A.real**2).sum(axis=(1, 2)) + (A.imag**2).sum(axis=(1, 2))

    def modal_inputs(lam_c: np.ndarray, V: np.ndarray):
        """:math:`V^{-1}` times the inputs (n, n_modes, n_events) and the condition bound; None if not applicable."""
        first = lam_c.imag > 0.0  # first column of a conjugate pair
        second = np.zeros_like(first)
        second[:, 1:] = first[:, :-1]
        if not np.array_equal(lam_c[second], lam_c[first].conj()):  # not LAPACK's documented layout
            return None
        Vr = np.where(second[:, None, :], np.roll(V.imag, 1, axis=2), V.real) if np.iscomplexobj(V) else V
        try:
            Ri = np.linalg.inv(Vr)
        except np.linalg.LinAlgError:  # an exactly singular V in the chunk
            return None
        c = Ri @ inputs
        if first.any():
            f, s = first[..., None], second[..., None]
            c = np.where(f, (c - 1j * np.roll(c, -1, axis=1)) / 2, np.where(s, (np.roll(c, 1, axis=1) + 1j * c) / 2, c))
        # the rows of V^-1 for a pair have half the squared norm of the corresponding rows of Vr^-1
        inv2 = ((Ri**2).sum(axis=2) * np.where(first | second, 0.5, 1.0)).sum(axis=1)
        return c, np.sqrt(frobenius2(V) * inv2)

    def solve_chunk(sl: slice) -> None:
        K, _ = rate_matrices({name: v[sl] for name, v in full.items()})
        K = K[:, keep][:, :, keep]
        lam_c, V = np.linalg.eig(K)
        fast = modal_inputs(lam_c, V)
        if fast is None:  # the general route
            lam_c, V, Vinv, cond[sl] = _eigen(K)
            c = Vinv @ inputs
        else:
            c, cond[sl] = fast
            unsure = ill_conditioned(cond[sl])
            if unsure.any():
                cond[sl][unsure] = np.linalg.cond(V[unsure])
                bad = unsure & ill_conditioned(cond[sl])
                V[bad] = eye  # as _eigen: placeholder modes, replaced by the caller
                c[bad] = inputs
        W = membership_live @ V  # (n, n_out, n_modes): each mode's share of each output
        order = np.argsort(-lam_c.real, axis=1, kind="stable")  # slowest first
        lam[sl] = np.take_along_axis(lam_c, order, axis=1)
        W = np.take_along_axis(W, order[:, None, :], axis=2)
        c = np.take_along_axis(c, order[:, :, None], axis=1)
        a = W.transpose(0, 2, 1)[None] * c.transpose(2, 0, 1)[..., None]  # (n_events, n, n_modes, n_out)
        coef_re[:, sl] = a.real
        coef_im[:, sl] = -a.imag

    chunk = 1024
    chunks = [slice(i, min(i + chunk, n_sets)) for i in range(0, n_sets, chunk)]
    map_threads(solve_chunk, chunks, workers)
    return {"lam": lam, "coef_re": coef_re, "coef_im": coef_im, "cond": cond}


def batch_amounts(
    modal: dict,
    events: Events,
    t_h: np.ndarray,
    subset: slice | np.ndarray = slice(None),
    *,
    workspace: dict | None = None,
) -> np.ndarray:
    """Reported-organ amounts for a block of output times, in real arithmetic.

    Each (event, mode) pair contributes :math:`\\mathrm{Re}(a\\,\\phi(t))`, computed as
    :math:`\\mathrm{Re}\\,a\\,\\mathrm{Re}\\,\\phi - \\mathrm{Im}\\,a\\,\\mathrm{Im}\\,\\phi`: a
    basis of time functions (sets, times, modes) times per-set weights (sets, modes,
    outputs), one batched matrix product per event (and one more for imaginary parts,
    only for mode ranks that are complex in some set).

    Modes are sorted slowest first, so the modes that have not decayed below
    :math:`e^{-45}` in every set (judged by the slowest set at each rank) are a leading
    range of ranks; the others, as of the first time of the block (for infusions, of each
    time), are skipped. The rates span ~10^4/h to ~0.1/h: after the first hour about half
    of the modes are gone.

    A bolus at :math:`t_e` is evaluated from the first output time :math:`t_0 \\ge t_e` of
    the block as :math:`a\\,e^{\\lambda(t - t_e)} = (a\\,e^{\\lambda(t_0 - t_e)})\\,
    e^{\\lambda(t - t_0)}`: the first factor goes into the weights, and the basis
    :math:`e^{\\lambda\\delta}` depends only on the offsets :math:`\\delta = t - t_0`, which are
    the same for every block of an evenly spaced grid, so with a ``workspace`` it is
    computed once and reused (only when :math:`t_0 - t_e \\ge t_0/2`: the offsets of two
    blocks differ by round-off of order :math:`\\varepsilon t`, which must stay small next to
    :math:`t - t_e`). No exponential is then evaluated per output time.

    Parameters
    ----------
    modal : dict
        From :func:`batch_modal`.
    events : Events
    t_h : ndarray, shape (n_times,)
    subset : slice or index array, optional
        Sets to compute.
    workspace : dict, optional
        The same (initially empty) dict on successive calls with the same ``modal`` and
        ``subset``, e.g. successive time blocks: it keeps that reusable basis, and the
        per-set arrays taken from ``modal``.

    Returns
    -------
    ndarray, shape (n_sets, n_times, n_outputs)
    """
    ws = {} if workspace is None else workspace
    if "alpha" not in ws:
        lam = modal["lam"][subset]
        ws["lam"], ws["alpha"], ws["beta"] = lam, np.ascontiguousarray(lam.real), np.ascontiguousarray(lam.imag)
        ws["slowest"] = ws["alpha"].max(axis=0)  # per rank, the slowest decay over the sets
        ws["complex_rank"] = np.any(ws["beta"] != 0.0, axis=0)
        ws["coef_re"], ws["coef_im"] = modal["coef_re"][:, subset], modal["coef_im"][:, subset]
    lam, alpha, beta, slowest = ws["lam"], ws["alpha"], ws["beta"], ws["slowest"]
    coef_re, coef_im = ws["coef_re"], ws["coef_im"]
    n_sets = lam.shape[0]
    t_h = np.asarray(t_h, dtype=float)
    n_times, n_out = t_h.size, coef_re.shape[-1]

    out = np.empty((n_sets, n_times, n_out))
    fresh = True  # nothing in `out` yet

    def accumulate(target: np.ndarray, basis: np.ndarray, weights: np.ndarray, direct: bool) -> None:
        """``target = basis @ weights`` if ``direct``, else ``target += basis @ weights``."""
        if direct:
            np.matmul(basis, weights, out=target)
        elif basis.shape[2]:
            target += basis @ weights

    def bolus_basis(offsets: np.ndarray, m: int, ranks_c: np.ndarray, reuse: bool):
        """exp(alpha delta) cos(beta delta) for ranks < m; exp(alpha delta) sin(beta delta) for ``ranks_c``."""
        cached = ws.get("bolus_basis")
        if reuse and cached is not None:
            known, re, im = cached
            tol = 4.0 * np.finfo(float).eps * abs(t_h[-1])  # round-off of another block's offsets
            k = offsets.size
            if k <= known.size and m <= re.shape[2] and np.all(np.abs(known[:k] - offsets) <= tol):
                return re[:, :k, :m], im[:, :k, : ranks_c.size]
        ws.pop("bolus_basis", None)  # free the old basis first
        re = alpha[:, None, :m] * offsets[None, :, None]
        np.exp(re, out=re)
        phase = beta[:, None, ranks_c] * offsets[None, :, None]
        im = re[..., ranks_c] * np.sin(phase)
        re[..., ranks_c] *= np.cos(phase)
        if workspace is not None:
            ws["bolus_basis"] = (offsets.copy(), re, im)
        return re, im

    starts = list(events.bolus_t_h) + list(events.infusion_start_h)
    ends = list(events.bolus_t_h) + list(events.infusion_end_h)
    n_bolus = events.bolus_t_h.size
    for e, (t_start, t_end) in enumerate(zip(starts, ends, strict=True)):
        is_bolus = e < n_bolus
        # Times with an input so far (an infusion contributes 0 at its own start time).
        first = int(np.searchsorted(t_h, t_start, side="left" if is_bolus else "right"))
        if first == n_times:
            continue
        # Leading alive ranks per time; the decay counts from the end of the input.
        clock = np.maximum(0.0, t_h[first:] - t_end)
        n_alive = np.count_nonzero(slowest * clock[:, None] > _DECAYED, axis=1)
        m = int(n_alive[0])  # n_alive never increases
        if m == 0:
            continue
        ranks_c = np.flatnonzero(ws["complex_rank"][:m])
        if is_bolus:
            tau0 = t_h[first] - t_start
            reuse = workspace is not None and t_start <= 0.5 * t_h[first]
            re, im = bolus_basis(t_h[first:] - t_h[first], m, ranks_c, reuse)
            direct = fresh and first == 0
            if fresh and not direct:
                out[...] = 0.0
            fresh = False
            # Weights a exp(lambda tau0), real and imaginary parts, by chunks of sets: small
            # (for all sets at once: ~11 MB per thread at 10,000 sets) and still in cache
            # for the matrix product.
            for s0 in range(0, n_sets, 1024):
                sc = slice(s0, min(s0 + 1024, n_sets))
                decay0 = np.exp(alpha[sc, :m] * tau0)
                w_re = coef_re[e][sc, :m] * decay0[..., None]
                if ranks_c.size:
                    phase0 = beta[sc, ranks_c] * tau0
                    p_re = (decay0[:, ranks_c] * np.cos(phase0))[..., None]
                    p_im = (decay0[:, ranks_c] * np.sin(phase0))[..., None]
                    a_re, a_im = coef_re[e][sc, ranks_c], coef_im[e][sc, ranks_c]
                    w_re[:, ranks_c] = a_re * p_re + a_im * p_im
                accumulate(out[sc, first:], re[sc], w_re, direct)
                if ranks_c.size:
                    accumulate(out[sc, first:], im[sc], a_im * p_re - a_re * p_im, False)
            continue
        # Infusion: basis evaluated per time, leaving out ranks decayed at each time.
        re = np.empty((n_sets, n_times, m))
        re[:, :first] = 0.0
        im = np.empty((n_sets, n_times, ranks_c.size))
        im[:, :first] = 0.0
        cuts = first + np.flatnonzero(np.diff(n_alive)) + 1  # runs of times with the same alive ranks
        for j0, j1 in zip([first, *cuts], [*cuts, n_times], strict=True):
            n = int(n_alive[j0 - first])
            c = ranks_c[ranks_c < n]
            re[:, j0:j1, n:] = 0.0
            im[:, j0:j1, c.size :] = 0.0
            if n == 0:
                continue
            re[:, j0:j1, :n] = _infusion_state(alpha[:, :n], t_h[j0:j1], t_start, t_end)
            if c.size:
                phi = _infusion_state(lam[:, c], t_h[j0:j1], t_start, t_end)
                re[:, j0:j1, c] = phi.real
                im[:, j0:j1, : c.size] = phi.imag
        accumulate(out, re, coef_re[e][:, :m, :], fresh)
        accumulate(out, im, coef_im[e][:, ranks_c, :], False)
        fresh = False
    if fresh:
        out[...] = 0.0
    return out


def _infusion_state(lam: np.ndarray, t_h: np.ndarray, t_start: float, t_end: float) -> np.ndarray:
    """:math:`F_1(t - t_s) - F_1(t - t_e)` for a batch, shape (n_sets, n_times, n_modes).

    Real ``lam`` gives a real result (real modes), complex ``lam`` a complex one.
    """
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
    coef_re, coef_im = modal["coef_re"], modal["coef_im"]
    starts = list(events.bolus_t_h) + list(events.infusion_start_h)
    ends = list(events.bolus_t_h) + list(events.infusion_end_h)
    n_bolus = events.bolus_t_h.size
    total = np.zeros(coef_re.shape[1:2] + coef_re.shape[-1:])

    def f1(tau):
        return tau * _phi1(lam * tau) if tau > 0 else np.zeros_like(lam)

    def f2(tau):
        return tau * tau * _phi2(lam * tau) if tau > 0 else np.zeros_like(lam)

    for e, (t_s, t_e) in enumerate(zip(starts, ends, strict=True)):
        integral = f1(t_end_h - t_s) if e < n_bolus else f2(t_end_h - t_s) - f2(t_end_h - t_e)
        # Re(integral * a) with a = coef_re - i coef_im
        total += np.einsum("sm,smo->so", integral.real, coef_re[e]) + np.einsum("sm,smo->so", integral.imag, coef_im[e])
    return total
