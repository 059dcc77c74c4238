"""Batches of the capacity-limited (non-linear) model: the fast single solver over processes.

The linear model's batches are exact and vectorised (:func:`exopk.solve.linear.batch_modal`);
the capacity-limited model has no closed form, so every parameter set is integrated on its
own by :func:`exopk.solve.linear.ode_single` with ``solver="LSODA"`` (ODEPACK through
:func:`scipy.integrate.odeint`: the stepping runs in Fortran, only the right-hand side and the
Jacobian call back into Python). The sets are split into chunks solved in worker processes
(the callbacks hold the GIL, so threads would not run them in parallel).

Measured (``benchmarks/bench_capacity.py``, 1,000 sets, 2881 times, 2 CPUs shared with other
jobs, load average ~5.6): 167 ms a set, against 314 ms a set for a loop of plain
``solve_ivp(method="LSODA")`` solves: 1.9 times faster, short of the 10 times of issue 15 (the
processes barely help on an oversubscribed machine; the organ AUC states add ~15 %).

Why not one vectorised implicit integrator over all sets, as tried: a stacked system of the
sets with a sparse block-diagonal Jacobian under :func:`scipy.integrate.solve_ivp` (BDF) cost
~140 ms a set at 100 sets (Python per-step work and a sparse LU per step-size change, 379 for
one solve, growing with the stack), about twice the single LSODA solve on the same machine;
its shared error norm (root mean square over all sets) would also let one set's error grow with
the number of sets. A batched BDF would need a cheap solve of :math:`(I - cJ)x = b` for every
new *c*: with the eigen-decomposition of the linear part (``batch_modal``) and the capacity
Jacobian's few entries as a low-rank update (Woodbury), no refactorisation would be needed;
not built yet. The per-set solve keeps each set's accuracy exactly that of
:func:`exopk.simulate` with ``solver="LSODA"``.

Each set's answer is checked for mass balance like :func:`exopk.solve.solve_with_fallback`'s.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import numpy as np

from exopk.dosing import Events
from exopk.errors import SimulationError
from exopk.model.graph import N_LIVE, N_SINK
from exopk.model.parameters import ModelParameters, portable, restore
from exopk.solve.driver import ACCURACY_LIMIT, balance_error, model_system
from exopk.solve.linear import default_workers, ode_single


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
) -> tuple[np.ndarray, np.ndarray, float]:
    """Solve the sets of ``varied`` (values by name, shape (n_sets,) each) in this process.

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
    balance : float
        Largest mass-balance error over the sets, as a fraction of the dose.
    """
    n_sets = len(next(iter(varied.values())))
    n_org = membership_live.shape[0]
    amounts = np.empty((n_sets, t_h.size, n_org))
    auc = np.empty((n_sets, n_org))
    worst = 0.0
    for s in range(n_sets):
        changes: dict[str, Any] = {name: float(v[s]) for name, v in varied.items()}
        p = params.replace(**changes)
        K, E, ev, system, mixture = model_system(p, events)
        n_pop = 1 if mixture is None else mixture.n_pop
        W = np.tile(membership_live, n_pop)
        y = ode_single(system, K, E, ev, t_h, rtol=rtol, atol=atol_particles, solver="LSODA", integrals=W)
        n_states = n_pop * (N_LIVE + N_SINK)
        worst = max(worst, balance_error(y[:, :n_states], administered, dose_particles))
        amounts[s] = y[:, : n_pop * N_LIVE] @ W.T
        auc[s] = y[-1, n_states:]
    return amounts, auc, worst


def _solve_chunk(job: tuple) -> tuple[np.ndarray, np.ndarray, float]:
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
) -> tuple[np.ndarray, np.ndarray, float]:
    """:func:`solve_sets` for many sets, in chunks over up to ``workers`` processes.

    ``workers`` defaults to :func:`exopk.solve.linear.default_workers`; ``1`` (or a batch too
    small to share) solves in the calling process. Each set is solved on its own, so results do
    not depend on the chunking. Raises :class:`~exopk.errors.SimulationError` if a set breaks
    mass balance by more than :data:`exopk.solve.driver.ACCURACY_LIMIT` of the dose.
    """
    n_sets = len(next(iter(varied.values())))
    n_proc = min(default_workers() if workers is None else workers, n_sets)
    kwargs: dict[str, Any] = dict(
        rtol=rtol, atol_particles=atol_particles, administered=administered, dose_particles=dose_particles
    )
    if n_proc <= 1:
        results = [solve_sets(params, varied, events, t_h, membership_live, **kwargs)]
    else:
        # A few chunks per process balance uneven solve times; each chunk's arguments are small.
        n_chunks = min(n_sets, 4 * n_proc)
        bounds = np.linspace(0, n_sets, n_chunks + 1).astype(int)
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
    return amounts, auc, worst
