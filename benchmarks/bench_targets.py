"""Benchmark of the speed targets of issue 15, each against a baseline run in the same process.

Run from the repository root (needs ``pip install -e ".[sbml]"``; the peer comparison also
``pip install -e ".[peers]"``, JAX and diffrax, and runs only when they are importable)::

    .venv/bin/python benchmarks/bench_targets.py            # full run, a few minutes
    .venv/bin/python benchmarks/bench_targets.py --quick    # smoke run: few repeats, small baseline loops

Model: the default mouse / MSC-EV mixture of two subpopulations (issue 13), IV bolus of 1e10
particles, 0-48 h. Baselines:

- libroadrunner on exopk's own SBML export (``exopk.io.sbml.export_sbml``), loaded and compiled
  once (not timed), CVODE rtol 1e-8, atol 1e-12 x dose, no step bound; every run is
  ``rr.reset(); rr.simulate(times=...)`` and the subpopulations' states are summed as
  ``exopk.io.sbml.roadrunner_amounts`` does;
- ``scipy.integrate.solve_ivp(method="LSODA", rtol=1e-8, atol=1e-12 x dose)`` with the analytic
  Jacobian on the full stacked system of both subpopulations (``exopk.model.graph.mixture_system``);
- the floor of the exact method: ``np.linalg.eig`` of the same restricted matrix that
  ``exopk.simulate`` decomposes (the live states an IV dose reaches, both subpopulations), plus one
  matrix product of the size of the closed form's (times x modal functions) @ (modal functions x
  states).

Cases (ratio = baseline / exopk for "faster" targets, exopk / floor for the floor, none for
absolute times); each line says PASS or MISS and the 1-minute load average when it was measured:

1. one simulation at 49 points vs roadrunner (>= 10x);
2. one simulation at 2881 points vs roadrunner (>= 10x) and vs LSODA (>= 50x);
   Each is timed twice: "warm", the same parameter set again (its rate matrices and
   eigen-decomposition are kept on it, as the issue asks), and "cold", with nothing kept (a new
   parameter set every call, as in a fit);
3. one simulation (cold) vs the floor, at 49 and 2881 points (<= 2x); also vs the "block floor",
   LAPACK ``dgeev`` of each diagonal block (one per subpopulation) plus one product per block:
   the least the block-wise exact method computes;
4. 10,000 parameter sets (lognormal, CV 30 %, on every organ's vascular uptake, tissue uptake
   and degradation; seeded), 97 points, percentiles 5/50/95 and per-set AUCs
   (``exopk.simulate_batch``): <= 0.5 s, and >= 50x a roadrunner loop that sets each set's
   exported rate constants (the loop is TIMED ON A SUBSET and scaled; the line says how);
5. a 10-parameter fit (``exopk.analysis.fit``, one start) to 60 synthetic observations from the
   model (6 organs x 10 times, %ID, 10 % log-normal noise, seeded), started 1.5-fold away: <= 1 s
   (also given as a number of single simulations of the fit's grid, timed alternating: steadier
   than wall time under load);
6. the capacity-limited model (liver 1e9, spleen 2e8 particles), one simulation at 2881 points vs
   roadrunner (>= 1x);
7. the capacity-limited model, 1,000 sets at 97 points, vs a loop of LSODA solutions of the
   non-linear system (timed on a subset and scaled): >= 10x, or "not supported" while
   ``simulate_batch`` refuses finite capacities.

Then a profile (cProfile) of one simulation at 2881 and 49 points: the functions taking most of
the time, per simulation. Then, if JAX / diffrax are importable, peers on the same matrices:
JAX (CPU, float64) eigen closed form and ``expm`` + ``lax.scan`` (uniform grid), diffrax Kvaerno5
(rtol 1e-8, atol 1e-12 x dose), one simulation and a 10,000-set batch (diffrax timed on a subset).

Timings are wall clock on a shared machine: medians of alternating repeats, load average printed.
"""

from __future__ import annotations

import argparse
import copy
import cProfile
import os
import platform
import pstats
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import scipy
import scipy.linalg
from scipy.integrate import solve_ivp

import exopk
from exopk.errors import InputError
from exopk.io.sbml import RoadrunnerModel, export_sbml
from exopk.model.graph import mixture_system, organ_membership, transfers
from exopk.simulation import regimen_events
from exopk.solve.linear import ode_system, restrict_to_reached

DOSE = 1e10
T_END_H = 48.0
N_SETS = 10_000
N_CAP_SETS = 1_000
BATCH_POINTS = 97
CV = 0.30
SEED = 20_261_201
VARIED_RATES = ("uptake_vascular_per_h", "uptake_tissue_per_h", "degradation_per_h")
CAPACITY = {"liver_capacity_particles": 1e9, "spleen_capacity_particles": 2e8}
RTOL = 1e-8
ATOL = 1e-12 * DOSE
FIT_NAMES = (
    *(f"{organ}_macrophage_uptake_per_h" for organ in ("liver", "spleen", "lung")),
    *(f"{organ}_uptake_vascular_per_h" for organ in ("liver", "spleen", "kidney")),
    *(f"{organ}_degradation_per_h" for organ in ("liver", "spleen", "lung", "kidney")),
)
FIT_ORGANS = ("blood", "liver", "spleen", "lung", "kidney", "brain")
FIT_TIMES_H = (0.083, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 12.0, 24.0, 48.0)

CASES: list[str] = []


def load() -> str:
    return f"load {os.getloadavg()[0]:.2f}"


def fmt_s(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f} us"
    return f"{seconds * 1e3:.2f} ms" if seconds < 1.0 else f"{seconds:.2f} s"


def report(case: str, what: str, exopk_s: float, baseline_s: float | None, baseline: str, target: str, note="") -> None:
    """Print one case line: times, ratio, target, PASS/MISS, load average.

    ``target`` is ">= Nx" (baseline / exopk at least N), "<= Nx" (exopk / baseline at most N)
    or "<= N s" (exopk time at most N s).
    """
    kind, value = target.split()[0], float(target.split()[1].rstrip("xs"))
    if target.endswith(" s"):
        ratio_text, passed = "", exopk_s <= value
    elif kind == ">=":
        assert baseline_s is not None
        ratio = baseline_s / exopk_s
        ratio_text, passed = (
            f"baseline/exopk {ratio:.1f}x" if ratio >= 1 else f"baseline/exopk {ratio:.3f}x",
            ratio >= value,
        )
    else:
        assert baseline_s is not None
        ratio = exopk_s / baseline_s
        ratio_text, passed = f"exopk/floor {ratio:.2f}x", ratio <= value
    base = f"{baseline} {fmt_s(baseline_s)}" if baseline_s is not None else baseline
    line = (
        f"[case {case}] {what}: exopk {fmt_s(exopk_s)}; {base}; {ratio_text + '; ' if ratio_text else ''}"
        f"target {target}: {'PASS' if passed else 'MISS'}; {load()}{'; ' + note if note else ''}"
    )
    CASES.append(line)
    print(line, flush=True)


def alternate(fns: dict[str, Callable[[], Any]], repeats: int) -> tuple[dict[str, float], dict[str, Any]]:
    """Median wall time of each callable, calls alternating (after one warm-up call each), and the last results."""
    results = {name: fn() for name, fn in fns.items()}
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            results[name] = fn()
            times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(v) for name, v in times.items()}, results


def variations(params, n: int) -> dict[str, np.ndarray]:
    """Lognormal, CV 30 %, median = default, independent for every organ's uptake and degradation rates."""
    rng = np.random.default_rng(SEED)
    sigma = np.sqrt(np.log1p(CV**2))
    names = [f"{organ}_{rate}" for organ in exopk.ORGANS for rate in VARIED_RATES]
    return {name: params.values[name] * np.exp(sigma * rng.standard_normal(n)) for name in names}


def stacked(params, dose):
    """The mixture as exopk.simulate solves it: stacked K, E, the mixed events."""
    parts = params.parts()
    mixture = mixture_system([p for _, _, p in parts], [w for _, w, _ in parts])
    events, _ = regimen_events(exopk.dosing.as_regimen(dose), np.array([0.0, T_END_H]))
    return mixture, events.mixed(mixture.shares)


# ------------------------------------------------------------------------------------------ baselines
class Roadrunner(RoadrunnerModel):
    """libroadrunner on exopk's SBML export, loaded once; amounts in STATES order, subpopulations summed."""

    def __init__(self, params, dose) -> None:
        t0 = time.perf_counter()
        super().__init__(export_sbml(params, dose), rtol=RTOL, atol_particles=ATOL)
        self.load_s = time.perf_counter() - t0

    def rate_setter(self, params, var: dict[str, np.ndarray]):
        """(index, rates of shape (n_sets, n_rates)) that set every set's exported rate constants."""
        ids = list(self.rr.model.getGlobalParameterIds())
        index, columns = [], []
        for name, _, part in params.parts():
            x = "" if len(self.suffixes) == 1 else "__" + "".join(c if c.isalnum() or c == "_" else "_" for c in name)
            sub = next((s for s in params.subpopulations if s.name == name), None)
            base = {**params.values, **var}
            values = sub.apply(base) if sub is not None else {**part.values, **var}
            for k, t in enumerate(transfers(values)):
                index.append(ids.index(f"rate_{k}_{t.source}_to_{t.target}{x}"))
                columns.append(np.broadcast_to(t.rate_per_h, (len(next(iter(var.values()))),)))
        return np.array(index, dtype=np.int32), np.stack(columns, axis=1)


def lsoda_system(mixture, events):
    """Full stacked system (no restriction), initial state of the IV bolus, analytic Jacobian."""
    system = ode_system(mixture.capacity, mixture.K, mixture.E)
    y0 = np.zeros(system.A.shape[0])
    y0[: system.n_live] = events.bolus_amounts.sum(axis=0)
    return system, y0


def lsoda(system, y0, t_h: np.ndarray) -> np.ndarray:
    sol = solve_ivp(
        lambda _t, y: system.rhs(y),
        (0.0, float(t_h[-1])),
        y0,
        method="LSODA",
        t_eval=t_h,
        jac=lambda _t, y: system.jacobian(y),
        rtol=RTOL,
        atol=ATOL,
    )
    if not sol.success:
        raise RuntimeError(sol.message)
    return sol.y.T


def summed(mixture, amounts: np.ndarray) -> np.ndarray:
    """Stacked amounts -> amounts in STATES order, subpopulations summed."""
    return mixture.split(amounts).sum(axis=0)


def floor_fn(K_r: np.ndarray, n_states: int, t_h: np.ndarray):
    """eig of the restricted matrix + one (times x 2 modes) @ (2 modes x states) product: the exact method's floor."""
    m = K_r.shape[0]
    rng = np.random.default_rng(0)
    basis = rng.random((t_h.size, 2 * m))
    weights = rng.random((2 * m, n_states))

    def run():
        np.linalg.eig(K_r)
        return basis @ weights

    return run


def block_floor_fn(K_r: np.ndarray, E_r: np.ndarray, t_h: np.ndarray):
    """dgeev of each diagonal block + one (block states + sinks) x (modes) @ (modes x times) product per block."""
    blocks = exopk.solve.linear.diagonal_blocks(K_r)
    rng = np.random.default_rng(0)
    parts = []
    for live in blocks:
        n_sink = int((E_r[:, live] != 0).any(axis=1).sum())
        parts.append(
            (K_r[np.ix_(live, live)], rng.random((live.size + n_sink, live.size)), rng.random((live.size, t_h.size)))
        )

    def run():
        for Kb, w, f in parts:
            scipy.linalg.lapack.dgeev(Kb, compute_vl=0)
            w @ f

    return run


def cold(params):
    """A copy of ``params`` with nothing kept on it: rate matrices, mixture and eigen-decomposition are rebuilt."""
    fresh = copy.copy(params)
    object.__setattr__(fresh, "_cache", None)
    object.__setattr__(fresh, "_parts", None)
    return fresh


# ------------------------------------------------------------------------------------------ cases
def one_simulation(params, dose, rr: Roadrunner, quick: bool) -> None:
    mixture, events = stacked(params, dose)
    system, y0 = lsoda_system(mixture, events)
    keep, K_r, E_r, _ = restrict_to_reached(mixture.K, mixture.E, events)
    n_states = K_r.shape[0] + E_r.shape[0]
    print(
        f"\nOne simulation, default mixture ({mixture.n_pop} subpopulations, {mixture.K.shape[0]} live states stacked; "
        f"{K_r.shape[0]} reached by the IV dose), medians of alternating repeats; roadrunner load+compile "
        f"{rr.load_s:.2f} s once (not timed)"
    )
    for n_t in (49, 2881):
        t_h = np.linspace(0.0, T_END_H, n_t)
        fns = {
            "exopk": lambda t_h=t_h: exopk.simulate(params, dose, t_h).amounts_particles,
            "exopk cold": lambda t_h=t_h: exopk.simulate(cold(params), dose, t_h).amounts_particles,
            "roadrunner": lambda t_h=t_h: rr(t_h),
            "floor": floor_fn(K_r, n_states, t_h),
            "block floor": block_floor_fn(K_r, E_r, t_h),
        }
        if n_t == 2881:
            fns["lsoda"] = lambda t_h=t_h: summed(mixture, lsoda(system, y0, t_h))
        repeats = 3 if quick else (40 if n_t == 49 else 15)
        times, out = alternate(fns, repeats)
        diff_rr = np.abs(out["exopk"] - out["roadrunner"]).max() / DOSE
        report(
            f"sim{n_t}-rr",
            f"one simulation, {n_t} points, vs libroadrunner (warm: the same set again, its decomposition kept)",
            times["exopk"],
            times["roadrunner"],
            "roadrunner",
            ">= 10x",
            f"max |exopk - rr|/dose {diff_rr:.1e}",
        )
        report(
            f"sim{n_t}-rr-cold",
            f"one simulation, {n_t} points, vs libroadrunner (cold: a new parameter set every call, as in a fit)",
            times["exopk cold"],
            times["roadrunner"],
            "roadrunner",
            ">= 10x",
        )
        if n_t == 2881:
            diff = np.abs(out["exopk"] - out["lsoda"]).max() / DOSE
            report(
                "sim2881-lsoda",
                "one simulation, 2881 points, vs scipy LSODA",
                times["exopk"],
                times["lsoda"],
                "LSODA",
                ">= 50x",
                f"max |exopk - LSODA|/dose {diff:.1e}",
            )
        report(
            f"floor{n_t}",
            f"one simulation, cold, {n_t} points, vs the floor (eig of the {K_r.shape[0]}x{K_r.shape[0]} restricted "
            f"matrix + ({n_t}x{2 * K_r.shape[0]})@({2 * K_r.shape[0]}x{n_states}) matmul)",
            times["exopk cold"],
            times["floor"],
            "floor",
            "<= 2x",
        )
        report(
            f"blockfloor{n_t}",
            f"one simulation, cold, {n_t} points, vs the block floor (dgeev of each diagonal block, one product "
            "per block of its modes' functions and weights: the least the block-wise method computes)",
            times["exopk cold"],
            times["block floor"],
            "block floor",
            "<= 2x",
        )


def batch(params, dose, rr: Roadrunner, quick: bool) -> None:
    t_h = np.linspace(0.0, T_END_H, BATCH_POINTS)
    var = variations(params, N_SETS)
    print(
        f"\nBatch: {N_SETS:,} sets (lognormal CV {CV:.0%} on {len(var)} rates, seed {SEED}), {BATCH_POINTS} points, "
        "percentiles 5/50/95 + per-set AUCs"
    )
    exopk.simulate_batch(params, dose, t_h, var)  # warm-up
    runs = []
    for _ in range(2 if quick else 5):
        t0 = time.perf_counter()
        exopk.simulate_batch(params, dose, t_h, var)
        runs.append(time.perf_counter() - t0)
    t_batch = statistics.median(runs)
    index, rates = rr.rate_setter(params, var)
    n_loop = 20 if quick else 300
    member = organ_membership()
    worst = 0.0
    check = exopk.simulate_batch(params, dose, t_h, {k: v[:10] for k, v in var.items()}, keep_amounts=True)
    t0 = time.perf_counter()
    for i in range(n_loop):
        rr.rr.model.setGlobalParameterValues(index, rates[i])
        amounts = rr(t_h)
        if i < 10:
            worst = max(worst, np.abs(amounts @ member.T - check.amounts_particles[i]).max() / DOSE)
    t_loop = (time.perf_counter() - t0) * N_SETS / n_loop
    rr.rr.model.setGlobalParameterValues(index, np.array([r for r in rate_defaults(rr, params)]))
    report(
        "batch-time",
        f"{N_SETS:,} sets, {BATCH_POINTS} points, percentiles + AUCs (simulate_batch)",
        t_batch,
        None,
        "no baseline (absolute target)",
        "<= 0.5 s",
    )
    report(
        "batch-rr",
        f"{N_SETS:,} sets, {BATCH_POINTS} points, vs a roadrunner loop",
        t_batch,
        t_loop,
        "roadrunner loop (est.)",
        ">= 50x",
        f"loop timed on {n_loop} sets, scaled x{N_SETS / n_loop:.0f}; max |batch - rr|/dose on 10 sets {worst:.1e}",
    )


def rate_defaults(rr: Roadrunner, params) -> np.ndarray:
    """The default parameters' exported rate constants (to put the runner back after the loop)."""
    one = {
        f"{organ}_{rate}": np.array([params.values[f"{organ}_{rate}"]])
        for organ in exopk.ORGANS
        for rate in VARIED_RATES
    }
    return rr.rate_setter(params, one)[1][0]


def fit_case(params, dose, quick: bool) -> None:
    truth = params
    grid = np.array([0.0, *FIT_TIMES_H])
    result = exopk.simulate(truth, dose, grid)
    rng = np.random.default_rng(SEED)
    rows = [
        {
            "time_h": t,
            "organ": organ,
            "quantity": "percent_id",
            "value": v * np.exp(rng.normal(0.0, 0.1)),
            "unit": "%ID",
        }
        for organ in FIT_ORGANS
        for t, v in zip(FIT_TIMES_H, result.percent_id(organ)[1:], strict=True)
    ]
    data = pd.DataFrame(rows)
    start = truth.replace(**{name: truth[name] * (1.5 if k % 2 else 1 / 1.5) for k, name in enumerate(FIT_NAMES)})
    print(f"\nFit: {len(FIT_NAMES)} parameters ({', '.join(FIT_NAMES)}) to {len(data)} observations, n_starts=1")
    # Alternating with one simulation of the fit's own grid: the fit's cost in simulations is
    # steadier than its wall time on a loaded machine.
    times, out = alternate(
        {
            "fit": lambda: exopk.analysis.fit(start, dose, data, FIT_NAMES, n_starts=1),
            "simulation": lambda: exopk.simulate(start, dose, grid),
        },
        1 if quick else 5,
    )
    fitted = out["fit"]
    worst = max(abs(np.log(fitted.estimates[n] / truth[n])) for n in FIT_NAMES)
    report(
        "fit",
        f"{len(FIT_NAMES)}-parameter fit to {len(data)} points (exopk.analysis.fit, n_starts=1)",
        times["fit"],
        None,
        "no baseline (absolute target)",
        "<= 1 s",
        f"median of {1 if quick else 5}; = {times['fit'] / times['simulation']:.0f} simulations of its "
        f"{grid.size}-point grid ({fmt_s(times['simulation'])} each); largest |ln(estimate/truth)| {worst:.2f}",
    )


def capacity_cases(params, dose, quick: bool) -> None:
    capped = params.replace(**CAPACITY)
    print(
        f"\nCapacity-limited model ({', '.join(f'{k}={v:g}' for k, v in CAPACITY.items())}), default mixture, "
        "exopk default solver"
    )
    rr = Roadrunner(capped, dose)
    t_h = np.linspace(0.0, T_END_H, 2881)
    times, out = alternate(
        {"exopk": lambda: exopk.simulate(capped, dose, t_h).amounts_particles, "roadrunner": lambda: rr(t_h)},
        2 if quick else 5,
    )
    diff = np.abs(out["exopk"] - out["roadrunner"]).max() / DOSE
    report(
        "cap-sim-rr",
        "capacity-limited, one simulation, 2881 points, vs libroadrunner",
        times["exopk"],
        times["roadrunner"],
        "roadrunner",
        ">= 1x",
        f"max |exopk - rr|/dose {diff:.1e}",
    )

    t_b = np.linspace(0.0, T_END_H, BATCH_POINTS)
    var = variations(capped, N_CAP_SETS)
    try:
        t0 = time.perf_counter()
        exopk.simulate_batch(capped, dose, t_b, var)
        t_batch: float | None = time.perf_counter() - t0
    except InputError as refusal:
        t_batch, why = None, str(refusal)
    n_loop = 3 if quick else 20
    t0 = time.perf_counter()
    for i in range(n_loop):
        p = capped.replace(**{name: float(v[i]) for name, v in var.items()})
        mixture, events = stacked(p, dose)
        system, y0 = lsoda_system(mixture, events)
        lsoda(system, y0, t_b)
    t_loop = (time.perf_counter() - t0) * N_CAP_SETS / n_loop
    what = f"capacity-limited, {N_CAP_SETS:,} sets, {BATCH_POINTS} points, vs an LSODA loop"
    note = f"loop timed on {n_loop} sets, scaled x{N_CAP_SETS / n_loop:.0f}"
    if t_batch is None:
        line = (
            f"[case cap-batch-lsoda] {what}: exopk not supported (simulate_batch: {why}); LSODA loop (est.) "
            f"{fmt_s(t_loop)}; target >= 10x: MISS (not supported); {load()}; {note}"
        )
        CASES.append(line)
        print(line, flush=True)
    else:
        report("cap-batch-lsoda", what, t_batch, t_loop, "LSODA loop (est.)", ">= 10x", note + "; exopk first call")


# ------------------------------------------------------------------------------------------ profile
def profile(params, dose, quick: bool) -> None:
    for n_t in (2881, 49):
        t_h = np.linspace(0.0, T_END_H, n_t)
        n = 20 if quick else (100 if n_t == 2881 else 500)
        exopk.simulate(params, dose, t_h)
        profiler = cProfile.Profile()
        t0 = time.perf_counter()
        profiler.enable()
        for _ in range(n):
            exopk.simulate(params, dose, t_h)
        profiler.disable()
        wall = (time.perf_counter() - t0) / n
        stats = pstats.Stats(profiler)
        rows = []
        for (filename, line, name), (_, ncalls, tottime, cumtime, _) in stats.stats.items():  # type: ignore[attr-defined]
            where = filename.split("site-packages/")[-1].split("src/")[-1]
            rows.append((tottime / n, cumtime / n, ncalls / n, f"{where}:{line}({name})"))
        total = sum(r[0] for r in rows)
        print(
            f"\nProfile of one simulation, {n_t} points ({n} runs under cProfile: {fmt_s(total)} per simulation "
            f"profiled, {fmt_s(wall)} wall with the profiler on); top functions by own time"
        )
        print(f"{'own/sim':>9}  {'share':>6}  {'cum/sim':>9}  {'calls/sim':>9}  function")
        for own, cum, calls, label in sorted(rows, reverse=True)[:14]:
            print(f"{fmt_s(own):>9}  {own / total:6.1%}  {fmt_s(cum):>9}  {calls:9.1f}  {label}")


# ------------------------------------------------------------------------------------------ peers
def peers(params, dose, quick: bool) -> None:
    try:
        import jax
    except ImportError:
        print("\nPeers: jax is not installed (pip install -e '.[peers]'); skipped.")
        return
    jax.config.update("jax_enable_x64", True)
    jax.config.update("jax_platforms", "cpu")
    import jax.numpy as jnp
    from jax.scipy.linalg import expm

    print(f"\nPeers (jax {jax.__version__}, CPU, float64), same restricted matrices as exopk; first call = compile")
    mixture, events = stacked(params, dose)
    keep, K_r, E_r, ev_r = restrict_to_reached(mixture.K, mixture.E, events)
    b_r = ev_r.bolus_amounts.sum(axis=0)

    @jax.jit
    def eig_closed(K, E, b, t):
        lam, V = jnp.linalg.eig(K)
        c = jnp.linalg.solve(V, b.astype(V.dtype))
        ex = jnp.exp(jnp.outer(t, lam))
        live = (ex * c) @ V.T
        sink = ((ex - 1.0) / lam * c) @ (E.astype(V.dtype) @ V).T
        return jnp.concatenate([live.real, sink.real], axis=1)

    def scan_fn(A, y0, dt, n_t):
        P = expm(A * dt)

        def step(y, _):
            y = P @ y
            return y, y

        _, ys = jax.lax.scan(step, y0, None, length=n_t - 1)
        return jnp.concatenate([y0[None], ys])

    expm_scan = jax.jit(scan_fn, static_argnums=3)
    n_live = K_r.shape[0]
    A = np.zeros((n_live + E_r.shape[0],) * 2)
    A[:n_live, :n_live], A[n_live:, :n_live] = K_r, E_r
    y0 = np.zeros(A.shape[0])
    y0[:n_live] = b_r
    t_h = np.linspace(0.0, T_END_H, 2881)
    reference, _ = exopk.solve.linear.exact_single(K_r, E_r, ev_r, t_h)
    exact_s = statistics.median([_timed(lambda: exopk.simulate(params, dose, t_h)) for _ in range(3 if quick else 15)])
    runs = {
        "jax eig closed form": lambda: eig_closed(K_r, E_r, b_r, t_h).block_until_ready(),
        "jax expm + lax.scan": lambda: expm_scan(A, y0, T_END_H / 2880, 2881).block_until_ready(),
    }
    diffrax = _diffrax_solver(jax, t_h)
    if diffrax is not None:
        runs["diffrax Kvaerno5"] = lambda: diffrax(A, y0).block_until_ready()
    print(f"  one simulation, 2881 points (exopk.simulate {fmt_s(exact_s)}):")
    for name, fn in runs.items():
        compile_s = _timed(fn)
        t = statistics.median([_timed(fn) for _ in range(3 if quick else 15)])
        diff = np.abs(np.asarray(fn()) - reference).max() / DOSE
        print(
            f"    {name:22s} {fmt_s(t):>10} (first call {fmt_s(compile_s)}); peer/exopk {t / exact_s:.2f}x; "
            f"max |peer - exopk|/dose {diff:.1e}"
        )

    # Batch: per subpopulation, vmapped eigen closed form in chunks; organ percentiles and AUCs.
    t_b = np.linspace(0.0, T_END_H, BATCH_POINTS)
    var = variations(params, N_SETS)
    member = organ_membership()
    parts = []
    for sub in params.subpopulations:
        Ks, _ = exopk.model.graph.rate_matrices(sub.apply({**params.values, **var}))
        live = keep[keep < Ks.shape[-1]]
        M = jnp.asarray(member[:-1][:, live])
        parts.append((sub.share, Ks[:, live][:, :, live], M))

    @jax.jit
    def organ_chunk(K, b, M, t):
        def one(Kk):
            lam, V = jnp.linalg.eig(Kk)
            c = jnp.linalg.solve(V, b.astype(V.dtype))
            MV = M.astype(V.dtype) @ V
            x = (jnp.exp(jnp.outer(t, lam)) * c) @ MV.T
            auc = MV @ ((jnp.exp(lam * t[-1]) - 1.0) / lam * c)
            return x.real, auc.real

        return jax.vmap(one)(K)

    def jax_batch():
        organs = 0.0
        auc = 0.0
        for share, Ks, M in parts:
            b = np.zeros(Ks.shape[-1])
            b[0] = DOSE * share
            xs, aucs = [], []
            for s0 in range(0, N_SETS, 2000):
                x, a = organ_chunk(Ks[s0 : s0 + 2000], b, M, t_b)
                xs.append(x)
                aucs.append(a)
            organs = organs + jnp.concatenate(xs)
            auc = auc + jnp.concatenate(aucs)
        q = jnp.percentile(organs * (100.0 / DOSE), jnp.array([5.0, 50.0, 95.0]), axis=0)
        return q.block_until_ready(), auc

    if quick:
        print(f"  {N_SETS:,}-set peer batches: skipped in --quick")
        return
    exopk.simulate_batch(params, dose, t_b, var)
    batch_s = statistics.median([_timed(lambda: exopk.simulate_batch(params, dose, t_b, var)) for _ in range(3)])
    compile_s = _timed(jax_batch)
    t = statistics.median([_timed(jax_batch) for _ in range(2 if quick else 3)])
    print(f"  {N_SETS:,} sets, {BATCH_POINTS} points, percentiles + AUCs (exopk.simulate_batch {fmt_s(batch_s)}):")
    print(
        f"    {'jax eig closed form':22s} {fmt_s(t):>10} (first call {fmt_s(compile_s)}); peer/exopk {t / batch_s:.2f}x"
    )
    if diffrax is not None:
        n_sub = 40
        stack = []
        for i in range(n_sub):
            p = params.replace(**{name: float(v[i]) for name, v in var.items()})
            mix, ev = stacked(p, dose)
            _, K_i, E_i, _ = restrict_to_reached(mix.K, mix.E, ev)
            A_i = np.zeros_like(A)
            A_i[:n_live, :n_live], A_i[n_live:, :n_live] = K_i, E_i
            stack.append(A_i)
        A_sets = np.stack(stack)
        vsolve = jax.jit(jax.vmap(diffrax.solve_at(t_b), in_axes=(0, None)))
        compile_s = _timed(lambda: vsolve(A_sets, y0).block_until_ready())
        t = _timed(lambda: vsolve(A_sets, y0).block_until_ready()) * N_SETS / n_sub
        print(
            f"    {'diffrax Kvaerno5 (vmap)':22s} {fmt_s(t):>10} (est.: {n_sub} sets timed, x{N_SETS // n_sub}; first "
            f"call {fmt_s(compile_s)}); peer/exopk {t / batch_s:.0f}x"
        )


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


class _Diffrax:
    """diffrax Kvaerno5 on dy/dt = A y, rtol 1e-8, atol 1e-12 x dose."""

    def __init__(self, dfx, jax, t_h) -> None:
        self.dfx, self.jax = dfx, jax
        self.jitted = jax.jit(self.solve_at(t_h))

    def solve_at(self, t_h):
        dfx = self.dfx
        t_end_h = float(np.asarray(t_h)[-1])
        ts = self.jax.numpy.asarray(t_h)

        def solve(A, y0):
            sol = dfx.diffeqsolve(
                dfx.ODETerm(lambda _t, y, A: A @ y),
                dfx.Kvaerno5(),
                t0=0.0,
                t1=t_end_h,
                dt0=1e-4,
                y0=y0,
                args=A,
                saveat=dfx.SaveAt(ts=ts),
                stepsize_controller=dfx.PIDController(rtol=RTOL, atol=ATOL),
                max_steps=200_000,
            )
            return sol.ys

        return solve

    def __call__(self, A, y0):
        return self.jitted(A, y0)


def _diffrax_solver(jax, t_h):
    try:
        import diffrax
    except ImportError:
        print("  diffrax is not installed (pip install -e '.[peers]'); its rows are skipped.")
        return None
    return _Diffrax(diffrax, jax, t_h)


# ------------------------------------------------------------------------------------------ main
def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: few repeats, small baseline loops")
    args = parser.parse_args()
    try:
        import roadrunner
    except ImportError:
        print("libroadrunner is not installed: pip install -e '.[sbml]'", file=sys.stderr)
        return 1
    started = time.perf_counter()
    print("exopk issue-15 targets" + (" (--quick: few repeats, small baseline loops)" if args.quick else ""))
    print(
        f"exopk {exopk.__version__}, numpy {np.__version__}, scipy {scipy.__version__}, libroadrunner "
        f"{roadrunner.__version__}, Python {platform.python_version()}, {os.cpu_count()} CPUs, "
        f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    params = exopk.load_parameters()
    dose = exopk.IVBolus(dose_particles=DOSE)
    rr = Roadrunner(params, dose)
    one_simulation(params, dose, rr, args.quick)
    batch(params, dose, rr, args.quick)
    fit_case(params, dose, args.quick)
    capacity_cases(params, dose, args.quick)
    profile(params, dose, args.quick)
    peers(params, dose, args.quick)
    print("\nSummary")
    for line in CASES:
        print(line)
    print(f"\ntotal benchmark time {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
