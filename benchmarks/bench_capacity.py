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

2. The case ``cap-sim-rr`` of ``benchmarks/bench_targets.py`` (issue 15 target: >= 1x): IV bolus
   of 1e10, liver capacity 1e9, spleen 2e8, 2881 output times, median of alternating repeats of

   - ``exopk default``: ``exopk.simulate`` at its defaults (rtol 1e-10, atol 1e-17 x dose), the
     figure that counts;
   - ``exopk rr tol``: ``exopk.simulate`` at roadrunner's tolerances below (a second figure, for
     the same tolerances on both sides; NOT the default path);
   - ``roadrunner``: CVODE rtol 1e-8, atol 1e-12 x dose, as in ``bench_targets.py``,

   each with its error against Radau at rtol 1e-12 (as a multiple of the stated bound) and the
   ratio roadrunner / exopk (> 1: exopk faster).

   Measured on the 2-core development machine (load average 1.5-2.7), issue 15: before
   (``ode_single`` on all 72 stacked states, per-index rhs, ~9.5 µs a call) exopk default
   53-61 ms vs roadrunner 19-22 ms, 0.36x; after (the 40 reached live states and 16 fed sinks,
   straight-line rhs ~3 µs a call; ~2,950 LSODA steps, ~5,000 rhs calls, ~200 Jacobians
   either way) 36-45 ms vs 20-30 ms, 0.56-0.67x; at roadrunner's tolerances 22-34 ms,
   0.90-0.94x.

3. A batch of N sets (lognormal, 30 % CV, on the liver capacity and macrophage uptake;
   seeded): ``exopk.simulate_batch`` (the batched RODAS4 solver, exopk.solve.capacity_batch) against a loop of plain
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
from exopk.errors import DependencyError
from exopk.io.sbml import RoadrunnerModel, export_sbml
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


RR_DOSE = 1e10
RR_CAPACITY = {"liver_capacity_particles": 1e9, "spleen_capacity_particles": 2e8}
RR_RTOL, RR_ATOL_FRACTION = 1e-8, 1e-12


def rr_case(repeats: int) -> None:
    """Case cap-sim-rr of bench_targets.py: exopk at its defaults (and at roadrunner's tolerances) vs roadrunner."""
    params = exopk.load_parameters().replace(**RR_CAPACITY)
    regimen = exopk.IVBolus(dose_particles=RR_DOSE)
    t_h = np.linspace(0.0, T_END_H, N_TIMES)
    ref = exopk.simulate(params, regimen, t_h, solver="Radau", rtol=1e-12, atol_particles=1e-22 * RR_DOSE)
    runs = {
        "exopk default": lambda: exopk.simulate(params, regimen, t_h).amounts_particles,
        "exopk rr tol": lambda: (
            exopk.simulate(
                params, regimen, t_h, rtol=RR_RTOL, atol_particles=RR_ATOL_FRACTION * RR_DOSE
            ).amounts_particles
        ),
    }
    try:
        model = RoadrunnerModel(export_sbml(params, regimen), rtol=RR_RTOL, atol_particles=RR_ATOL_FRACTION * RR_DOSE)
        runs["roadrunner"] = lambda: model(t_h)
    except DependencyError:
        print("roadrunner: not installed (pip install -e '.[sbml]'); ratios skipped")
    samples: dict[str, list[float]] = {name: [] for name in runs}
    errors = {}
    for _ in range(max(repeats, 3)):  # alternating, so load changes hit every candidate alike
        for name, run in runs.items():
            seconds, out = timed(run, 1)
            samples[name].append(seconds)
            bound = 1e-6 * np.maximum(np.abs(ref.amounts_particles), 1e-9 * RR_DOSE)
            errors[name] = float(np.max(np.abs(np.asarray(out) - ref.amounts_particles) / bound))
    medians = {name: statistics.median(v) for name, v in samples.items()}
    print(
        f"\n2. case cap-sim-rr: IV bolus {RR_DOSE:g}, capacities liver {RR_CAPACITY['liver_capacity_particles']:g} / "
        f"spleen {RR_CAPACITY['spleen_capacity_particles']:g}, {N_TIMES} output times, median of "
        f"{max(repeats, 3)} alternating; load average {os.getloadavg()[0]:.2f}"
    )
    print(
        f"  ('exopk rr tol' and roadrunner: rtol {RR_RTOL:g}, atol {RR_ATOL_FRACTION:g} x dose; exopk default: "
        f"rtol {ODE_RTOL:g}, atol {ODE_ATOL_FRACTION:g} x dose)"
    )
    for name, seconds in medians.items():
        ratio = f"  roadrunner/this {medians['roadrunner'] / seconds:5.2f}x" if "roadrunner" in medians else ""
        print(f"  {name:14s} {1e3 * seconds:8.1f} ms{ratio}  error {errors[name]:.3g} of bound")


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
        model = RoadrunnerModel(export_sbml(params, regimen), rtol=1e-8, atol_particles=1e-4)

        def rr_simulate():
            return model(t_h)

        exopk_error = error_of(runs["exopk LSODA"](), ref)
        for rtol in (1e-8, 1e-9, 1e-10, 1e-11, 1e-12):
            model.rr.integrator.relative_tolerance = rtol
            model.rr.integrator.absolute_tolerance = 1e-4
            if error_of(rr_simulate(), ref) <= exopk_error:
                break
        print(f"roadrunner settings: rtol {rtol:g}, atol 1e-4 particles")
        rr_run = rr_simulate
        runs["roadrunner"] = rr_run
    except DependencyError:
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

    # 2. Case cap-sim-rr of bench_targets.py -------------------------------------------------
    rr_case(repeats)

    # 3. Batch -------------------------------------------------------------------------------
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
    print(f"\n3. batch of {n_sets} sets, {N_TIMES} output times, {os.cpu_count()} CPUs")
    print(f"  simulate_batch     {batch_s:8.2f} s   ({1e3 * batch_s / n_sets:.1f} ms/set)")
    print(f"  plain LSODA loop   {loop_s:8.2f} s   (timed on {loop_n} sets, scaled)")
    print(f"  ratio loop/batch   {loop_s / batch_s:6.2f}   max |diff|/dose {diff:.1e}")


if __name__ == "__main__":
    main()
