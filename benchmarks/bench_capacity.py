"""Benchmark: the capacity-limited (non-linear) model, one simulation and a batch.

Run from the repository root (libroadrunner part needs ``pip install -e ".[sbml]"``)::

    .venv/bin/python benchmarks/bench_capacity.py            # full run, several minutes
    .venv/bin/python benchmarks/bench_capacity.py --quick    # smoke run, fewer repeats and sets

Model: default mouse / MSC-EVs (two subpopulations stacked into one coupled system) with
``liver_capacity_particles=1e12``, IV bolus of 1e13 particles, 0-48 h, 2881 output times.

1. One simulation, median wall time of each, alternating, in this process:

   - ``exopk LSODA``: ``exopk.simulate`` at its defaults (ODEPACK LSODA through odeint);
   - ``exopk BDF``: ``exopk.simulate(..., solver="BDF")`` (the former default);
   - ``plain LSODA``: ``scipy.integrate.solve_ivp(method="LSODA")`` on the package's
     ``OdeSystem.rhs`` / ``OdeSystem.jacobian``, at the same tolerances;
   - ``roadrunner``: ``rr.reset(); rr.simulate(times=...)`` on ``exopk.io.sbml.export_sbml``
     (loaded once), CVODE at the loosest of rtol 1e-8 ... 1e-12 (atol 1e-4 particles) whose
     accuracy is at least exopk's ("equal accuracy").

   Accuracy: the largest error of every state against ``simulate(solver="Radau", rtol=1e-12)``,
   as a multiple of the stated bound 1e-6 × max(|value|, 1e-9 × dose) (1 = at the bound).

2. A batch of N sets (lognormal, 30 % CV, on the liver capacity and macrophage uptake;
   seeded): ``exopk.simulate_batch`` (processes of the LSODA solver) against a loop of plain
   LSODA solves (timed on a subsample and scaled to N; the output says how many).

Ratios are baseline / exopk (> 1: exopk faster). Timings are wall clock on a shared machine;
the load average is printed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
from scipy.integrate import solve_ivp

import exopk
from exopk.model.graph import mixture_system
from exopk.solve import ode_system
from exopk.solve.driver import ODE_ATOL_FRACTION, ODE_RTOL

DOSE = 1e13
CAPACITY = 1e12
T_END_H = 48.0
N_TIMES = 2881
CV = 0.30
SEED = 20_261_201


def model(params: exopk.ModelParameters):
    """The stacked mixture system of ``params`` and the bolus state vector."""
    parts = params.parts()
    mix = mixture_system([p for _, _, p in parts], [w for _, w, _ in parts])
    system = ode_system(mix.capacity, mix.K, mix.E)
    y0 = np.zeros(system.A.shape[0])
    venous = exopk.model.STATES.index("blood_venous")
    y0[[k * mix.K.shape[0] // mix.n_pop + venous for k in range(mix.n_pop)]] = mix.shares * DOSE
    return mix, system, y0


def plain_lsoda(params: exopk.ModelParameters, t_h: np.ndarray) -> np.ndarray:
    """solve_ivp(LSODA) with the package's right-hand side and Jacobian; amounts summed over subpopulations."""
    mix, system, y0 = model(params)
    sol = solve_ivp(
        lambda _t, y: system.rhs(y),
        (0.0, t_h[-1]),
        y0,
        method="LSODA",
        jac=lambda _t, y: system.jacobian(y),
        t_eval=t_h,
        rtol=ODE_RTOL,
        atol=ODE_ATOL_FRACTION * DOSE,
    )
    return mix.split(sol.y.T).sum(axis=0)


def timed(function, repeats: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = function()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def error_of(amounts: np.ndarray, reference: np.ndarray) -> float:
    bound = 1e-6 * np.maximum(np.abs(reference), 1e-9 * DOSE)
    return float(np.max(np.abs(amounts - reference) / bound))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: fewer repeats and sets")
    args = parser.parse_args()
    repeats = 2 if args.quick else 7
    n_sets = 8 if args.quick else 1000
    n_loop = 4 if args.quick else 40
    print(f"load average {os.getloadavg()[0]:.2f}, {os.cpu_count()} CPUs, quick={args.quick}")

    params = exopk.load_parameters().replace(liver_capacity_particles=CAPACITY)
    regimen = exopk.IVBolus(dose_particles=DOSE)
    t_h = np.linspace(0.0, T_END_H, N_TIMES)
    reference = exopk.simulate(params, regimen, t_h, solver="Radau", rtol=1e-12, atol_particles=1e-22 * DOSE)
    ref = reference.amounts_particles

    # 1. One simulation --------------------------------------------------------------------
    runs = {
        "exopk LSODA": lambda: exopk.simulate(params, regimen, t_h).amounts_particles,
        "exopk BDF": lambda: exopk.simulate(params, regimen, t_h, solver="BDF").amounts_particles,
        "plain LSODA": lambda: plain_lsoda(params, t_h),
    }
    rr_run = None
    try:
        import roadrunner

        from exopk.io.sbml import export_sbml

        rr = roadrunner.RoadRunner(export_sbml(params, regimen))
        names = list(exopk.model.STATES)
        ids = set(rr.model.getFloatingSpeciesIds())
        suffixes = sorted({sid[len(names[0]) :] for sid in ids if sid.startswith(names[0])})
        rr.timeCourseSelections = ["time", *(s + x for x in suffixes for s in names)]

        def rr_simulate():
            rr.reset()
            out = np.asarray(rr.simulate(times=t_h))[:, 1:]
            return out.reshape(out.shape[0], len(suffixes), len(names)).sum(axis=1)

        exopk_error = error_of(runs["exopk LSODA"](), ref)
        for rtol in (1e-8, 1e-9, 1e-10, 1e-11, 1e-12):
            rr.integrator.relative_tolerance = rtol
            rr.integrator.absolute_tolerance = 1e-4
            if error_of(rr_simulate(), ref) <= exopk_error:
                break
        print(f"roadrunner settings: rtol {rtol:g}, atol 1e-4 particles")
        rr_run = rr_simulate
        runs["roadrunner"] = rr_run
    except ImportError:
        print("roadrunner: not installed (pip install -e '.[sbml]'); skipped")
    samples: dict[str, list[float]] = {name: [] for name in runs}
    errors = {}
    for _ in range(repeats):  # alternating, so load changes hit every candidate alike
        for name, run in runs.items():
            seconds, out = timed(run, 1)
            samples[name].append(seconds)
            errors[name] = error_of(np.asarray(out), ref)
    medians = {name: statistics.median(v) for name, v in samples.items()}
    base = medians["exopk LSODA"]
    print(f"\n1. one simulation ({N_TIMES} output times), median of {repeats}")
    for name, seconds in medians.items():
        print(f"  {name:12s} {1e3 * seconds:8.1f} ms  ratio {seconds / base:6.2f}  error {errors[name]:.3g} of bound")

    # 2. Batch -------------------------------------------------------------------------------
    rng = np.random.default_rng(SEED)
    sigma = np.sqrt(np.log(1 + CV**2))
    variations = {
        "liver_capacity_particles": CAPACITY * rng.lognormal(-(sigma**2) / 2, sigma, n_sets),
        "liver_macrophage_uptake_per_h": params["liver_macrophage_uptake_per_h"]
        * rng.lognormal(-(sigma**2) / 2, sigma, n_sets),
    }
    batch_s, batch = timed(lambda: exopk.simulate_batch(params, regimen, t_h, variations, keep_amounts=True), 1)
    loop_n = min(n_loop, n_sets)
    t0 = time.perf_counter()
    loop_out = [
        plain_lsoda(params.replace(**{k: float(v[s]) for k, v in variations.items()}), t_h) for s in range(loop_n)
    ]
    loop_s = (time.perf_counter() - t0) / loop_n * n_sets
    member = exopk.model.graph.organ_membership()
    diff = max(float(np.max(np.abs(batch.amounts_particles[s] - loop_out[s] @ member.T))) / DOSE for s in range(loop_n))
    print(f"\n2. batch of {n_sets} sets, {N_TIMES} output times, {os.cpu_count()} CPUs")
    print(f"  simulate_batch     {batch_s:8.2f} s   ({1e3 * batch_s / n_sets:.1f} ms/set)")
    print(f"  plain LSODA loop   {loop_s:8.2f} s   (timed on {loop_n} sets, scaled)")
    print(f"  ratio loop/batch   {loop_s / batch_s:6.2f}   max |diff|/dose {diff:.1e}")


if __name__ == "__main__":
    main()
