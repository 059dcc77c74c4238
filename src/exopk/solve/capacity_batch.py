"""Batches of the capacity-limited (non-linear) model: one vectorised stiff solve over all sets.

The linear model's batches are exact and vectorised (:func:`exopk.solve.linear.batch_modal`);
the capacity-limited model has no closed form. Here every set is written in the eigenbasis
of its linear rate matrix, where the linear part is diagonal and the saturable macrophage
uptake is a few fluxes (:class:`ModalCapacity`), and all sets are stepped together by RODAS4
(:mod:`exopk.solve.rosenbrock`): each set with its own step size and error norm, each stage
solved in O(n k) by the Woodbury formula (diagonal plus the rank-*k* capacity Jacobian), no
matrix factorisation per step. The eigen-decompositions are those of the linear batches
(per subpopulation block, restricted to the states the doses reach).

Doses: boluses at any times and infusions (constant inputs between stop times); the sets step
exactly onto every output and dose time. Steady-state doses and resets are refused by
:func:`exopk.simulate_batch` before this module is reached.

A set is solved instead by the per-set LSODA path (:func:`lsoda_sets`, as
:func:`exopk.simulate` with ``solver="LSODA"``) when its eigenvectors are too poorly
conditioned (bound above :data:`exopk.solve.linear.EIGENVECTOR_COND_LIMIT`), when the
Rosenbrock stepping fails (step size underflow), or when its answer breaks mass balance by
more than :data:`exopk.solve.driver.MASS_BALANCE_LIMIT` of the dose (the LSODA answer is kept
if it is better): the same check and fallback as :func:`exopk.solve.solve_with_fallback`.

Measured (``benchmarks/bench_capacity_batch.py``: the ``cap-batch-lsoda`` case of
``bench_targets.py``, 1,000 sets x 97 times, 2 CPUs shared with other jobs, median of 3
alternating repeats): 8-11 ms a set in one process (~360 RODAS4 steps a set, ~25 µs of numpy
work per set and step), against 80-97 ms a set for the loop of plain ``solve_ivp(LSODA)``
solves (rtol 1e-8): 10.2 times faster at load average 0.2-0.8 (CPU-time ratio 10.2), 7.3, 9.3
and 11.6 times in three runs at load 2.6-4.8; with the default two worker processes 20.7 times
at the low load, 5.8-20 times at the high. Accuracy against Radau at rtol 1e-12: 0.03-0.17 of the stated bound
(worst set of 4-8); mass balance ~2e-12 of the dose.

History (issue 15). The first batch solved every set with LSODA in worker processes: 1.8-1.9
times a loop of plain ``solve_ivp(LSODA)`` solves, the callbacks into Python costing most of
the time. The first version of this solver integrated the whole state in the eigenbasis with
complex arithmetic and a per-state error norm: 2,500 steps a set (round-off of the modal sums
in nearly empty states, then the fast flow transients) and ~60 µs per set and step, no faster
than the LSODA loop; the organ-level norm, the exact linear part, the real modal layout and
the two-products-per-stage Woodbury form brought it to the figures above. Before, a stacked
system of all sets under ``solve_ivp(BDF)`` with a sparse block-diagonal Jacobian was slower
still (~140 ms a set at 100 sets: Python per-step work, a sparse LU per step-size change) and
its shared error norm let one set's error grow with the number of sets.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from exopk.dosing import Events
from exopk.errors import ParameterError, SimulationError
from exopk.model.graph import LIVE_STATES, N_LIVE, N_SINK, ORGANS, rate_matrices, reachable_live_states
from exopk.model.parameters import ModelParameters, portable, restore
from exopk.solve import rosenbrock
from exopk.solve.driver import ACCURACY_LIMIT, MASS_BALANCE_LIMIT, balance_error, model_system
from exopk.solve.linear import EIGENVECTOR_COND_LIMIT, default_workers, ode_single

ROSENBROCK_RTOL = 5e-8
"""Relative tolerance of the batched RODAS4 on the reported organs and the sinks (its absolute
tolerance is the caller's ``atol_particles``).

Chosen, as :data:`exopk.solve.driver.ODE_RTOL` for LSODA, by the accuracy it gives: every organ
of every set within 10⁻⁶ of its value or 10⁻⁹ of the dose (the bound :func:`exopk.simulate`
meets). Measured on 8 sets of ``benchmarks/bench_targets.py``'s capacity case (lognormal rates,
97 times over 48 h) against ``simulate(solver="Radau", rtol=1e-12)``: worst set 0.16 of that
bound at rtol 3e-8, 0.17 at 5e-8, 0.28 at 1e-7; against the per-set LSODA answers on 20 sets,
0.015 at 1e-9 (832 steps a set), 0.09 at 3e-8 (~360 steps). ``tests/test_capacity_rosenbrock.py``
checks it against an independent Radau solution.
"""

MIN_GROUP_SETS = 16
"""Sets whose eigenvalues have an unusual number of complex pairs, fewer than this many, go to LSODA:
a batch step costs ~1.5 ms however few sets it carries, more than LSODA's per-set solve."""

MIN_SETS_PER_PROCESS = 64
"""Below this many sets per worker process, the batch is solved in the calling process."""


@dataclass(slots=True)
class ModalCapacity:
    r"""The capacity-limited model of a batch of sets in the eigenbasis of each set's linear part.

    With :math:`K = V \Lambda V^{-1}` (reached live states), :math:`x = V z`:

    .. math::

        \dot z = \Lambda z + G^T \varphi(x_S) + V^{-1} u, \qquad
        \varphi_k = k_{mac,k}\,\min\!\big(1, \textstyle\sum_{j \in P_k} \max(0, x_j) / \mathrm{cap}_k\big)\, x_{v_k},

    :math:`G^T = V^{-1}[:, v] - V^{-1}[:, m]` (each flux returns EVs from the cells *m* to the
    vascular space *v*: the saturation correction of :class:`exopk.model.graph.CapacityTerms`),
    :math:`x_S = R z` the few states the fluxes read (:math:`R = V[S, :]`, plus a zero row for
    pools the doses cannot reach). Vectors are in the real modal layout of
    :class:`exopk.solve.rosenbrock.ModalSystem` (real modes, then each complex pair's real and
    imaginary part), so every matrix here is real; ``to_modes`` (:math:`V^{-1}` in that layout)
    takes doses to the modes.

    What is observed (and error-controlled) is what is reported: the organ amounts
    :math:`W V z` and all sinks together, :math:`\mathbf{1}^T E V q`, :math:`q = \int z\,dt`
    (so the organ AUCs are :math:`W V q`). Why organs, not states: in the eigenbasis every
    state carries round-off of order :math:`\varepsilon \sum_i |V_{ji} z_i|`, ~10⁻¹⁶ of the
    dose, which for a state holding 10⁻⁹ of the dose is far above a per-state error tolerance
    of 10⁻¹⁷ of the dose: its error estimate is noise, and controlling it forced steps ~30
    times smaller (measured: 2,500 steps for 48 h instead of ~1,400, the organs already 10³
    times inside the accuracy bound). Organs sum their states, so their round-off is small
    next to their tolerance. All arrays have the sets on the first axis.
    """

    n_real: int
    lam_real: np.ndarray  # (m, n_real)
    lam_pair: np.ndarray  # (m, n_pair) complex
    to_modes: np.ndarray  # (m, n_X, n): V^-1 in the real modal layout
    WV: np.ndarray  # (m, n_org, n_X): reported organs (live) from z, their AUCs from q
    sink_V: np.ndarray  # (m, 1, n_X): all sinks together, from q
    R: np.ndarray  # (m, n_S + 1, n_X): the states the fluxes read (last row 0)
    G: np.ndarray  # (m, k, n_X)
    vascular_slot: np.ndarray  # (k,) rows of R
    pool_slots: np.ndarray  # (k, n_pool) rows of R
    pool_matrix: np.ndarray  # (n_S + 1, k): 1 where a row of R is in the pool of a flux
    uptake_per_h: np.ndarray  # (m, k)
    inv_capacity_per_particle: np.ndarray  # (m, k); 0 for an infinite capacity
    g: np.ndarray  # (m, n_X) modal infusion input (particles/h)

    def take(self, index: np.ndarray) -> ModalCapacity:
        """The sets ``index``."""
        return ModalCapacity(
            self.n_real,
            self.lam_real[index],
            self.lam_pair[index],
            self.to_modes[index],
            self.WV[index],
            self.sink_V[index],
            self.R[index],
            self.G[index],
            self.vascular_slot,
            self.pool_slots,
            self.pool_matrix,
            self.uptake_per_h[index],
            self.inv_capacity_per_particle[index],
            self.g[index],
        )

    @property
    def has_input(self) -> bool:
        """Whether an infusion runs in some set."""
        return bool(np.any(self.g != 0.0))

    def _read(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        x_S = np.matmul(self.R, z[..., None])[..., 0]
        filled = np.maximum(x_S, 0.0) @ self.pool_matrix  # (m, k)
        return x_S, filled, np.minimum(1.0, filled * self.inv_capacity_per_particle)

    def flux_of(self, x_S: np.ndarray) -> np.ndarray:
        """:math:`\\varphi` (particles/h), shape (m, k), from the states it reads, :math:`x_S = Rz` (m, n_S + 1)."""
        sat = np.minimum(1.0, (np.maximum(x_S, 0.0) @ self.pool_matrix) * self.inv_capacity_per_particle)
        return self.uptake_per_h * sat * x_S[:, self.vascular_slot]

    def flux(self, z: np.ndarray) -> np.ndarray:
        """:math:`\\varphi` (particles/h), shape (m, k): the EVs the saturation returns to the vascular space."""
        return self.flux_of(np.matmul(self.R, z[..., None])[..., 0])

    def slopes(self, z: np.ndarray) -> np.ndarray:
        """:math:`\\partial\\varphi/\\partial z = (\\partial\\varphi/\\partial x_S) R`, shape (m, k, n_X).

        As :meth:`exopk.model.graph.CapacityTerms.jacobian`: the saturation is flat (slope 0)
        for an empty or a full pool, and a negative amount adds nothing to the pool.
        """
        x_S, filled, sat = self._read(z)
        m, k = sat.shape
        F = np.zeros((m, k, self.R.shape[1]))
        rows = np.arange(k)
        F[:, rows, self.vascular_slot] = self.uptake_per_h * sat
        inside = (filled > 0.0) & (filled * self.inv_capacity_per_particle < 1.0)
        slope = np.where(inside, self.uptake_per_h * self.inv_capacity_per_particle * x_S[:, self.vascular_slot], 0.0)
        F[:, rows[:, None], self.pool_slots] += slope[..., None] * (x_S[:, self.pool_slots] > 0.0)
        F[:, :, -1] = 0.0  # the zero row of R (pools not reached)
        return np.matmul(F, self.R)

    def observe(self, z: np.ndarray, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Organ amounts :math:`WVz` (m, n_org, c) and all sinks :math:`\\mathbf{1}^TEVq` (m, 1, c),
        particles, from columns z, q (m, n_X, c)."""
        return np.matmul(self.WV, z), np.matmul(self.sink_V, q)


def batch_values(params: ModelParameters, varied: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Every parameter's values over the sets, shape (n_sets,) each: ``params`` with ``varied`` replaced."""
    n_sets = len(next(iter(varied.values())))
    values = {name: np.full(n_sets, float(v)) for name, v in params.values.items()}
    values.update({name: np.asarray(v, dtype=float) for name, v in varied.items()})
    return values


def _pairs(re: np.ndarray, im: np.ndarray, axis: int) -> np.ndarray:
    """``re`` and ``im`` interleaved along ``axis`` (re0, im0, re1, im1, ...)."""
    out = np.stack([re, im], axis=axis + 1 if axis >= 0 else axis)
    shape = list(re.shape)
    shape[axis] *= 2
    return out.reshape(shape)


def modal_capacity(
    params: ModelParameters, varied: Mapping[str, np.ndarray], events: Events, membership_live: np.ndarray
) -> tuple[list[tuple[np.ndarray, ModalCapacity]], np.ndarray, Events, np.ndarray]:
    """The :class:`ModalCapacity` systems of the sets of ``varied`` under ``events`` (one population's live states).

    ``membership_live`` (n_organs, N_LIVE) maps live states to the reported organs (summed over
    subpopulations). Sets with the same number of complex eigenvalue pairs share one system
    (the real modal layout depends on it). Returns ``(sets, system)`` per group, the kept
    (reached) live states of the stacked subpopulations (indices), the stacked events and the
    eigenvector condition bound of each set (:math:`\\|V\\|_F \\|V^{-1}\\|_F \\ge` the 2-norm
    condition number).
    """
    values = batch_values(params, varied)
    subs = params.subpopulations
    parts: list[tuple[float, Mapping[str, Any]]] = (
        [(s.share, s.apply(values)) for s in subs] if subs else [(1.0, values)]
    )
    shares = np.array([w for w, _ in parts])
    stacked = events.mixed(shares) if subs else events
    n_pop = len(parts)
    organs = [o for o in ORGANS if np.any(np.isfinite(values[f"{o}_capacity_particles"]))]
    for _, part in parts:
        for o in organs:
            if not np.array_equal(part[f"{o}_capacity_particles"], values[f"{o}_capacity_particles"]):
                raise ParameterError("the subpopulations of a mixture must share the organs' `capacity_particles`.")
    blocks = []
    for p, (_, part) in enumerate(parts):
        entered = stacked.entered[p * N_LIVE : (p + 1) * N_LIVE]
        keep = reachable_live_states(part, entered)
        K, E = rate_matrices(part)
        K = K[:, keep][:, :, keep]
        lam, V = np.linalg.eig(K)
        V = V.astype(complex)
        try:
            V_inv = np.linalg.inv(V)
        except np.linalg.LinAlgError:  # an exactly singular V somewhere: invert set by set
            V_inv = np.stack([_safe_inv(v) for v in V])
        bound = np.sqrt((np.abs(V) ** 2).sum(axis=(1, 2)) * (np.abs(V_inv) ** 2).sum(axis=(1, 2)))
        blocks.append((keep, lam.astype(complex), V, V_inv, E[:, :, keep].sum(axis=1), bound))
    n_sets = blocks[0][1].shape[0]
    kept = np.concatenate([p * N_LIVE + b[0] for p, b in enumerate(blocks)])
    n = kept.size
    lam = np.concatenate([b[1] for b in blocks], axis=1)
    V = np.zeros((n_sets, n, n), dtype=complex)
    V_inv = np.zeros_like(V)
    sinks = np.zeros((n_sets, 1, n))  # 1^T E over the kept states
    cond = np.zeros(n_sets)
    at = 0
    for keep, _, Vp, Vp_inv, e_sum, bound in blocks:
        block = slice(at, at + keep.size)
        V[:, block, block], V_inv[:, block, block] = Vp, Vp_inv
        sinks[:, 0, block] = e_sum
        cond = np.maximum(cond, bound)
        at += keep.size
    # The capacity fluxes, one per (subpopulation, organ with a capacity) whose pools the doses reach.
    where = {int(s): i for i, s in enumerate(kept)}
    slots: list[int] = []  # kept-state positions read by the fluxes

    def slot(state: int) -> int:
        if state not in where:
            return -1  # the zero row
        if where[state] not in slots:
            slots.append(where[state])
        return slots.index(where[state])

    vascular, cells, pools, uptake, inv_cap = [], [], [], [], []
    for p, (_, part) in enumerate(parts):
        for o in organs:
            v = p * N_LIVE + LIVE_STATES.index(f"{o}_vascular")
            c = p * N_LIVE + LIVE_STATES.index(f"{o}_cells")
            if v not in where or c not in where:
                continue  # no uptake reaches these cells: the flux is 0
            vascular.append(slot(v))
            cells.append(where[c])
            pools.append([slot(q * N_LIVE + LIVE_STATES.index(f"{o}_cells")) for q in range(n_pop)])
            uptake.append(part[f"{o}_macrophage_uptake_per_h"])
            inv_cap.append(1.0 / values[f"{o}_capacity_particles"])
    n_slots = len(slots)
    selection = np.zeros((n_slots + 1, n))
    selection[np.arange(n_slots), slots] = 1.0
    flux_to = np.zeros((n, len(cells)))  # each flux: +1 into its vascular space, -1 from its cells
    for j, (vs, c) in enumerate(zip(vascular, cells, strict=True)):
        flux_to[slots[vs], j], flux_to[c, j] = 1.0, -1.0
    W = np.tile(membership_live, n_pop)[:, kept]
    vascular_slot = np.array([s if s >= 0 else n_slots for s in vascular], dtype=int)
    pool_slots = np.array([[s if s >= 0 else n_slots for s in row] for row in pools], dtype=int).reshape(-1, n_pop)
    pool_matrix = np.zeros((n_slots + 1, len(cells)))
    for j, row in enumerate(pool_slots):
        pool_matrix[row, j] = 1.0
    pool_matrix[-1] = 0.0  # the zero row
    uptake_per_h = np.stack(uptake, axis=1) if uptake else np.zeros((n_sets, 0))
    inv_capacity = np.stack(inv_cap, axis=1) if inv_cap else np.zeros((n_sets, 0))

    # Real modal layout, per number of complex pairs: real modes first, then one of each pair (b > 0).
    kind = np.where(lam.imag == 0.0, 0, np.where(lam.imag > 0.0, 1, 2))
    order = np.argsort(kind, axis=1, kind="stable")
    n_pairs = (kind == 1).sum(axis=1)
    groups = []
    for n_c in np.unique(n_pairs):
        sets = np.flatnonzero(n_pairs == n_c)
        n_r = n - 2 * int(n_c)
        perm = order[sets]
        lam_g = np.take_along_axis(lam[sets], perm, axis=1)
        V_g = np.take_along_axis(V[sets], perm[:, None, :], axis=2)
        Vi_g = np.take_along_axis(V_inv[sets], perm[:, :, None], axis=1)
        V_r, V_c = V_g[:, :, :n_r].real, V_g[:, :, n_r : n_r + n_c]
        Vi_r, Vi_c = Vi_g[:, :n_r].real, Vi_g[:, n_r : n_r + n_c]
        to_modes = np.concatenate([Vi_r, _pairs(Vi_c.real, Vi_c.imag, axis=1)], axis=1)  # (m, n_X, n)

        def observer(rows: np.ndarray, V_r=V_r, V_c=V_c) -> np.ndarray:
            """Real functionals ``rows @ x`` in the real modal layout: rows V_r, then 2 Re / -2 Im of rows V_c."""
            c = rows @ V_c
            return np.concatenate([rows @ V_r, _pairs(2.0 * c.real, -2.0 * c.imag, axis=-1)], axis=-1)

        groups.append(
            (
                sets,
                ModalCapacity(
                    n_real=n_r,
                    lam_real=np.ascontiguousarray(lam_g[:, :n_r].real),
                    lam_pair=np.ascontiguousarray(lam_g[:, n_r : n_r + n_c]),
                    to_modes=to_modes,
                    WV=observer(W),
                    sink_V=observer(sinks[sets]),
                    R=observer(selection),
                    G=np.ascontiguousarray((to_modes @ flux_to).transpose(0, 2, 1)),
                    vascular_slot=vascular_slot,
                    pool_slots=pool_slots,
                    pool_matrix=pool_matrix,
                    uptake_per_h=uptake_per_h[sets],
                    inv_capacity_per_particle=inv_capacity[sets],
                    g=np.zeros((sets.size, n_r + 2 * n_c)),
                ),
            )
        )
    return groups, kept, stacked, cond


def _safe_inv(V: np.ndarray) -> np.ndarray:
    try:
        return np.linalg.inv(V)
    except np.linalg.LinAlgError:
        return np.full_like(V, np.nan)


def rosenbrock_sets(
    params: ModelParameters,
    varied: Mapping[str, np.ndarray],
    events: Events,
    t_h: np.ndarray,
    membership_live: np.ndarray,
    *,
    rtol: float,
    atol_particles: float,
    administered: np.ndarray,
    dose_particles: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """All sets of ``varied`` by the batched RODAS4; arguments as :func:`lsoda_sets`.

    Returns organ amounts (n_sets, n_times, n_organs), organ AUCs (n_sets, n_organs), each
    set's mass-balance error (fraction of the dose) and a mask of the sets not solved
    (ill-conditioned eigenvectors or failed stepping; their rows are NaN).
    """
    groups, kept, stacked, cond = modal_capacity(params, varied, events, membership_live)
    n_sets, n_org = cond.size, membership_live.shape[0]
    W = np.tile(membership_live, stacked.bolus_amounts.shape[1] // N_LIVE)[:, kept]  # (n_org, n)
    amounts = np.full((n_sets, t_h.size, n_org), np.nan)
    auc = np.full((n_sets, n_org), np.nan)
    balance = np.full(n_sets, np.inf)
    unsure = ~(cond <= EIGENVECTOR_COND_LIMIT)
    starts = np.concatenate([stacked.bolus_t_h, stacked.infusion_start_h])
    t_first, t_end = float(starts.min()), float(t_h[-1])
    before = np.flatnonzero(t_h < t_first)
    if t_first > t_end:  # nothing given before the last output time
        amounts[:], auc[:], balance[:] = 0.0, 0.0, 0.0
        return amounts, auc, balance, np.zeros(n_sets, dtype=bool)
    breaks = np.concatenate([starts, stacked.infusion_end_h])
    stops = np.unique(np.concatenate([t_h[t_h >= t_first], breaks[breaks <= t_end]]))
    output_at = {float(t): i for i, t in enumerate(t_h)}
    bolus = stacked.bolus_amounts[:, kept]
    rates = stacked.infusion_rates[:, kept]
    changes = set(map(float, np.concatenate([stacked.infusion_start_h, stacked.infusion_end_h])))
    for sets_all, system_all in groups:
        ok = ~unsure[sets_all]
        sets, system = sets_all[ok], system_all.take(np.flatnonzero(ok))
        if sets.size < min(MIN_GROUP_SETS, n_sets):
            unsure[sets] = True
            continue
        amounts[np.ix_(sets, before)] = 0.0
        balance[sets] = 0.0

        def on_stop(local_sets, local, j, active, state, x, s, sets=sets) -> bool:
            t = float(stops[j])
            given = np.flatnonzero(stacked.bolus_t_h == t)
            x_now = x[local]
            restart = bool(given.size) or t in changes
            if given.size:
                b = bolus[given].sum(axis=0)
                state[0][local] += active.to_modes[local] @ b
                x_now = x_now + W @ b
            if t in changes:
                on = (stacked.infusion_start_h <= t) & (t < stacked.infusion_end_h)
                active.g[local] = active.to_modes[local] @ rates[on].sum(axis=0)
            i = output_at.get(t)
            if i is not None:
                g_sets = sets[local_sets]
                amounts[g_sets, i] = x_now
                error = np.abs(x_now.sum(axis=1) + s[local].sum(axis=1) - administered[i]) / dose_particles
                balance[g_sets] = np.maximum(balance[g_sets], error)
            return restart

        z0 = np.zeros((sets.size, system.n_real + 2 * system.lam_pair.shape[1]))
        final, failed, _ = rosenbrock.integrate(system, z0, stops, on_stop, rtol=rtol, atol=atol_particles)
        auc[sets] = np.matmul(system.WV, (final[1] + final[3])[..., None])[..., 0]
        unsure[sets[failed]] = True
    not_finite = ~np.isfinite(amounts).all(axis=(1, 2)) | ~np.isfinite(auc).all(axis=1)
    unsure |= not_finite
    balance[unsure] = np.inf
    return amounts, auc, balance, unsure


def lsoda_sets(
    params: ModelParameters,
    varied: Mapping[str, np.ndarray],
    events: Events,
    t_h: np.ndarray,
    membership_live: np.ndarray,
    *,
    rtol: float,
    atol_particles: float,
    administered: np.ndarray,
    dose_particles: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Solve the sets of ``varied`` (values by name, shape (n_sets,) each) one by one with LSODA.

    Parameters
    ----------
    params : ModelParameters
        Base values; set *s* is ``params.replace(**{name: varied[name][s]})``.
    events : Events
        The regimen over one population's live states.
    t_h : ndarray, shape (n_times,)
    membership_live : ndarray, shape (n_organs, N_LIVE)
        Live states -> reported organs (summed over subpopulations).
    rtol, atol_particles : float
        Tolerances of LSODA (relative; absolute in particles).
    administered : ndarray, shape (n_times,)
        Particles given up to each time (the mass-balance target).
    dose_particles : float
        The regimen's total dose, the scale of the balance error.

    Returns
    -------
    amounts : ndarray, shape (n_sets, n_times, n_organs)
        Organ amounts (particles).
    auc : ndarray, shape (n_sets, n_organs)
        :math:`\\int_0^{t_{end}}` of each organ amount (particles·h), integrated with the states.
    balance : ndarray, shape (n_sets,)
        Each set's mass-balance error, as a fraction of the dose.
    """
    n_sets = len(next(iter(varied.values())))
    n_org = membership_live.shape[0]
    amounts = np.empty((n_sets, t_h.size, n_org))
    auc = np.empty((n_sets, n_org))
    balance = np.empty(n_sets)
    for s in range(n_sets):
        changes: dict[str, Any] = {name: float(v[s]) for name, v in varied.items()}
        p = params.replace(**changes)
        K, E, ev, system, mixture = model_system(p, events)
        n_pop = 1 if mixture is None else mixture.n_pop
        W = np.tile(membership_live, n_pop)
        y = ode_single(system, K, E, ev, t_h, rtol=rtol, atol=atol_particles, solver="LSODA", integrals=W)
        n_states = n_pop * (N_LIVE + N_SINK)
        balance[s] = balance_error(y[:, :n_states], administered, dose_particles)
        amounts[s] = y[:, : n_pop * N_LIVE] @ W.T
        auc[s] = y[-1, n_states:]
    return amounts, auc, balance


def solve_sets(
    params: ModelParameters,
    varied: Mapping[str, np.ndarray],
    events: Events,
    t_h: np.ndarray,
    membership_live: np.ndarray,
    *,
    rtol: float,
    atol_particles: float,
    administered: np.ndarray,
    dose_particles: float,
) -> tuple[np.ndarray, np.ndarray, float, int]:
    """:func:`rosenbrock_sets`, then :func:`lsoda_sets` for the sets it did not solve or solved with a
    mass-balance error above :data:`~exopk.solve.driver.MASS_BALANCE_LIMIT` (keeping the better answer).

    ``rtol`` and ``atol_particles`` are LSODA's; RODAS4 runs at :data:`ROSENBROCK_RTOL` and
    ``atol_particles``. Returns amounts, AUCs, the worst set's balance error and the number of
    sets solved by LSODA.
    """
    common: dict[str, Any] = dict(administered=administered, dose_particles=dose_particles)
    amounts, auc, balance, unsure = rosenbrock_sets(
        params, varied, events, t_h, membership_live, rtol=ROSENBROCK_RTOL, atol_particles=atol_particles, **common
    )
    redo = np.flatnonzero(unsure | (balance > MASS_BALANCE_LIMIT))
    if redo.size:
        again = {name: np.asarray(v)[redo] for name, v in varied.items()}
        a2, auc2, bal2 = lsoda_sets(
            params, again, events, t_h, membership_live, rtol=rtol, atol_particles=atol_particles, **common
        )
        better = bal2 < balance[redo]
        take = redo[better]
        amounts[take], auc[take], balance[take] = a2[better], auc2[better], bal2[better]
    return amounts, auc, float(balance.max(initial=0.0)), int(redo.size)


def _solve_chunk(job: tuple) -> tuple[np.ndarray, np.ndarray, float, int]:
    state, args, kwargs = job
    return solve_sets(restore(state), *args, **kwargs)


def capacity_batch(
    params: ModelParameters,
    varied: Mapping[str, np.ndarray],
    events: Events,
    t_h: np.ndarray,
    membership_live: np.ndarray,
    *,
    rtol: float,
    atol_particles: float,
    administered: np.ndarray,
    dose_particles: float,
    workers: int | None = None,
) -> tuple[np.ndarray, np.ndarray, float, int]:
    """:func:`solve_sets` for many sets, in chunks over up to ``workers`` processes.

    ``workers`` defaults to :func:`exopk.solve.linear.default_workers`; ``1``, or fewer than
    :data:`MIN_SETS_PER_PROCESS` sets per process, solves in the calling process. Each set is
    stepped with its own step sizes and error norm, so its answer does not depend on the other
    sets of its chunk (unless it falls back to LSODA, which a set of a rare eigenvalue pattern
    does when its group is smaller than :data:`MIN_GROUP_SETS`: then it agrees to the tolerances).
    Returns organ amounts, AUCs, the worst set's mass-balance error and the number of sets
    solved by LSODA. Raises :class:`~exopk.errors.SimulationError` if a set breaks mass balance
    by more than :data:`exopk.solve.driver.ACCURACY_LIMIT` of the dose.
    """
    n_sets = len(next(iter(varied.values())))
    n_proc = min(default_workers() if workers is None else workers, n_sets // MIN_SETS_PER_PROCESS)
    kwargs: dict[str, Any] = dict(
        rtol=rtol, atol_particles=atol_particles, administered=administered, dose_particles=dose_particles
    )
    if n_proc <= 1:
        results = [solve_sets(params, varied, events, t_h, membership_live, **kwargs)]
    else:
        bounds = np.linspace(0, n_sets, n_proc + 1).astype(int)
        state = portable(params)
        jobs = [
            (state, ({k: v[a:b] for k, v in varied.items()}, events, t_h, membership_live), kwargs)
            for a, b in zip(bounds[:-1], bounds[1:], strict=True)
        ]
        # "fork" where there is one: workers start in milliseconds, and a caller's script
        # without an `if __name__ == "__main__"` guard is not re-run by them ("spawn" would).
        method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
        with ProcessPoolExecutor(n_proc, mp_context=multiprocessing.get_context(method)) as pool:
            results = list(pool.map(_solve_chunk, jobs))
    amounts = np.concatenate([r[0] for r in results])
    auc = np.concatenate([r[1] for r in results])
    worst = max(r[2] for r in results)
    if worst > ACCURACY_LIMIT:
        raise SimulationError(
            f"a set of the capacity-limited batch conserves mass only to {worst:.3g} of the dose "
            f"(> {ACCURACY_LIMIT:g}); try a smaller `rtol` or simulate() that set."
        )
    return amounts, auc, worst, sum(r[3] for r in results)
