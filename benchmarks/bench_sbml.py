"""Benchmark: exopk against libroadrunner running exopk's own SBML export.

Run from the repository root (needs ``pip install -e ".[sbml]"``)::

    .venv/bin/python benchmarks/bench_sbml.py            # full run, a few minutes
    .venv/bin/python benchmarks/bench_sbml.py --quick    # smoke run, fewer repeats and subjects

Model: default mouse / MSC-EVs, IV bolus of 1e10 particles, 0-48 h, exported with
``exopk.io.export_sbml`` and loaded once into libroadrunner (load + compile time printed
separately). Same output grids for both: 49 and 2881 times.

Roadrunner runs at two settings:

- ``cross-check``: the settings of the tests (``exopk.io.sbml.roadrunner_amounts``): CVODE
  rtol 1e-12, atol 1e-6 particles, largest step 0.002 h (the bound that keeps roadrunner
  within 1e-6 after dose events);
- ``plain``: rtol 1e-8, atol 1e-12 × dose (the tolerances of ``bench_core.py``'s LSODA), no
  step bound.

1. One simulation: median wall time of ``exopk.simulate`` (exact) and of ``rr.reset();
   rr.simulate(times=...)``, the ratio roadrunner / exopk, and the largest difference relative
   to max(|exopk|, 1e-9 × dose).
2. 10,000 subjects (lognormal, 30 % CV, median = default, on every organ's vascular uptake,
   tissue uptake and degradation rates; seeded): exopk as ``simulate_batch`` (vectorised,
   default percentiles) and as a plain loop of ``simulate``; roadrunner as a loop that sets
   the subject's exported rate constants (computed by ``exopk.model.graph.transfers``) and
   simulates. Loops are TIMED ON A SUBSAMPLE and scaled to 10,000 (the output says how many).
   Agreement is checked for the first subjects of the subsample.

Timings are wall clock on a shared machine; the load average is printed.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time

import numpy as np

import exopk
from exopk.io.sbml import export_sbml
from exopk.model.graph import STATES, transfers

DOSE = 1e10
T_END_H = 48.0
GRIDS = (49, 2881)
N_SUBJECTS = 10_000
CV = 0.30
SEED = 20_261_126
VARIED_RATES = ("uptake_vascular_per_h", "uptake_tissue_per_h", "degradation_per_h")
FLOOR = 1e-9
SETTINGS = {
    "cross-check": dict(rtol=1e-12, atol=1e-6, max_step_h=0.002),
    "plain": dict(rtol=1e-8, atol=1e-12 * DOSE, max_step_h=None),
}


def median_time(fn, repeats: int) -> tuple[float, object]:
    result = fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def relative_error(reference: np.ndarray, other: np.ndarray) -> float:
    return float(np.max(np.abs(other - reference) / np.maximum(np.abs(reference), FLOOR * DOSE)))


def make_runner(sbml: str, setting: dict, t_h: np.ndarray):
    import roadrunner

    rr = roadrunner.RoadRunner(sbml)
    rr.integrator.relative_tolerance = setting["rtol"]
    rr.integrator.absolute_tolerance = setting["atol"]
    if setting["max_step_h"] is not None:
        rr.integrator.maximum_time_step = setting["max_step_h"]
        rr.integrator.maximum_num_steps = max(20_000, int(2 * np.max(np.diff(t_h)) / setting["max_step_h"]))
    rr.timeCourseSelections = ["time", *STATES]
    return rr


def run_rr(rr, t_h: np.ndarray) -> np.ndarray:
    rr.reset()  # species and time back to their initial values; global parameters keep what was set
    return np.asarray(rr.simulate(times=t_h))[:, 1:]


def subjects(params, n: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(SEED)
    sigma = np.sqrt(np.log1p(CV**2))
    out = {}
    for organ in exopk.ORGANS:
        for rate in VARIED_RATES:
            name = f"{organ}_{rate}"
            out[name] = params.values[name] * rng.lognormal(0.0, sigma, n)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: fewer repeats and subjects")
    args = parser.parse_args()
    repeats = 3 if args.quick else 20
    loop_sample = {"cross-check": 10 if args.quick else 100, "plain": 20 if args.quick else 500}
    exopk_loop_sample = 50 if args.quick else 1000
    n_batch = 500 if args.quick else N_SUBJECTS

    try:
        import roadrunner
    except ImportError:
        print("libroadrunner is not installed: pip install -e '.[sbml]'", file=sys.stderr)
        return 1

    print(
        f"python {platform.python_version()}, numpy {np.__version__}, libroadrunner {roadrunner.__version__}, "
        f"exopk {exopk.__version__}; load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores"
    )
    # One EV population: this benchmark times libroadrunner on the 28-state system it selects by
    # state name (the default mixture of issue 13 exports one suffixed set of states per subpopulation).
    params = exopk.load_parameters().single()
    dose = exopk.IVBolus(dose_particles=DOSE)
    export_sbml(params, dose)  # warm-up (imports libsbml)
    t0 = time.perf_counter()
    sbml = export_sbml(params, dose)
    print(f"export_sbml: {time.perf_counter() - t0:.3f} s, {len(sbml) / 1e3:.0f} kB")

    print("\n1. One simulation, 0-48 h (median wall time)")
    for n_t in GRIDS:
        t_h = np.linspace(0.0, T_END_H, n_t)
        t_ex, result = median_time(lambda t_h=t_h: exopk.simulate(params, dose, t_h), repeats)
        exact = result.amounts_particles
        for name, setting in SETTINGS.items():
            t0 = time.perf_counter()
            rr = make_runner(sbml, setting, t_h)
            load_s = time.perf_counter() - t0
            t_rr, amounts = median_time(lambda rr=rr, t_h=t_h: run_rr(rr, t_h), repeats)
            print(
                f"  {n_t:5d} times, roadrunner {name:11s}: exopk {t_ex * 1e3:8.3f} ms, roadrunner "
                f"{t_rr * 1e3:8.3f} ms (load+compile {load_s:.2f} s once), ratio roadrunner/exopk "
                f"{t_rr / t_ex:7.1f}x; max rel. difference {relative_error(exact, amounts):.2e}"
            )

    print(f"\n2. {N_SUBJECTS:,} subjects ({CV:.0%} CV lognormal on {len(VARIED_RATES) * len(exopk.ORGANS)} rates)")
    variations = subjects(params, N_SUBJECTS)
    for n_t in GRIDS:
        t_h = np.linspace(0.0, T_END_H, n_t)
        t0 = time.perf_counter()
        exopk.simulate_batch(params, dose, t_h, variations={k: v[:n_batch] for k, v in variations.items()})
        t_batch = (time.perf_counter() - t0) * N_SUBJECTS / n_batch
        scaled = "" if n_batch == N_SUBJECTS else f" (timed on {n_batch}, scaled)"
        print(f"  {n_t:5d} times: exopk simulate_batch {t_batch:8.2f} s{scaled}")

        def exopk_subject(i: int, t_h: np.ndarray) -> np.ndarray:
            p = params.replace(**{k: float(v[i]) for k, v in variations.items()})
            return exopk.simulate(p, dose, t_h).amounts_particles

        t0 = time.perf_counter()
        exact = [exopk_subject(i, t_h) for i in range(exopk_loop_sample)]
        t_loop = (time.perf_counter() - t0) * N_SUBJECTS / exopk_loop_sample
        print(
            f"  {n_t:5d} times: exopk loop of simulate {t_loop:8.2f} s "
            f"(timed on {exopk_loop_sample} subjects, scaled to {N_SUBJECTS:,})"
        )
        for name, setting in SETTINGS.items():
            rr = make_runner(sbml, setting, t_h)
            ids = list(rr.model.getGlobalParameterIds())
            moves = transfers({**params.values, **variations})
            rate_ids = [f"rate_{k}_{t.source}_to_{t.target}" for k, t in enumerate(moves)]
            rate_index = np.array([ids.index(rid) for rid in rate_ids], dtype=np.int32)
            rates = np.stack([t.rate_per_h for t in moves], axis=1)  # (n_subjects, n_transfers)
            n_loop = loop_sample[name]
            worst = 0.0
            t0 = time.perf_counter()
            for i in range(n_loop):
                rr.model.setGlobalParameterValues(rate_index, rates[i])
                amounts = run_rr(rr, t_h)
                if i < len(exact):
                    worst = max(worst, relative_error(exact[i], amounts))
            t_rr = (time.perf_counter() - t0) * N_SUBJECTS / n_loop
            print(
                f"  {n_t:5d} times: roadrunner {name:11s} loop {t_rr:8.2f} s (timed on {n_loop} subjects, scaled to "
                f"{N_SUBJECTS:,}); ratio roadrunner/exopk batch {t_rr / t_batch:7.1f}x, roadrunner/exopk loop "
                f"{t_rr / t_loop:6.2f}x; max rel. difference on {min(n_loop, len(exact))} subjects {worst:.2e}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
