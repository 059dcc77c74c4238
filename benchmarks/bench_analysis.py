"""Benchmark of exopk's analysis layer (populations, Sobol) against a scipy solve_ivp loop on the same model.

Run from the repository root::

    .venv/bin/python benchmarks/bench_analysis.py            # full run, a few minutes
    .venv/bin/python benchmarks/bench_analysis.py --quick    # smoke run: small sizes, no targets judged

1. Virtual population of 10,000 subjects (default mouse, IV bolus 1e10 particles, 0-48 h):
   lognormal CV 30 % on every organ's vascular uptake, tissue uptake and degradation rates,
   body weights lognormal CV 15 % (allometric flows and volumes), seeded. ``simulate_population``
   (no executor): percentiles 5/50/95 per organ and time, per-subject Cmax/Tmax/exact AUC for
   every organ (the timed case); the per-subject NCA of blood (λz, t½, AUC0–∞, CL, Vss) is
   timed separately. At 97 (every 30 min) and 2881 (every minute) output times.
2. The same at 100,000 subjects, 97 points: time and peak memory (growth of the peak resident
   set size, VmHWM, in a fresh process).
3. Sobol indices of brain AUC, liver Cmax and blood AUC for 10 parameters, N = 1024 with second
   order: N (2d + 2) = 22,528 model runs at 97 points, plus 1000 bootstrap resamples.
4. (information) Case 1 at 97 points on a ProcessPoolExecutor of 2 processes, chunks of 2,500.

Baseline, in the same run: ``scipy.integrate.solve_ivp(method="LSODA", rtol=1e-8, atol=1e-12 ×
dose)`` with the analytic Jacobian, on the full linear system ``dy/dt = A y`` built from
``exopk.model.graph.rate_matrices`` for each subject's parameters, reduced to reported organs. The loop
is timed on a subsample of subjects and scaled up to the full count (the output says by how much).

Timings are wall-clock on whatever else the machine is doing; the load average is printed.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import scipy
from scipy.integrate import solve_ivp

import exopk
from exopk.dosing import as_regimen
from exopk.model.graph import organ_membership, rate_matrices

DOSE = 1e10
T_END_H = 48.0
SEED = 20_241_127
RATES = ("uptake_vascular_per_h", "uptake_tissue_per_h", "degradation_per_h")
SOBOL_PARAMETERS = (
    "liver_uptake_vascular_per_h",
    "spleen_uptake_vascular_per_h",
    "lung_macrophage_uptake_per_h",
    "kidney_uptake_vascular_per_h",
    "brain_uptake_vascular_per_h",
    "rest_macrophage_uptake_per_h",  # rest uptake is its macrophage term since issue 13
    "brain_uptake_tissue_per_h",
    "brain_degradation_per_h",
    "liver_degradation_per_h",
    "brain_permeability_fraction_of_flow",
)
TARGETS = {"10k_97": 1.0, "10k_2881": 5.0, "100k_memory_mb": 1000.0, "sobol": 10.0}


def population(params, n_subjects: int):
    cv = {f"{organ}_{rate}": 0.3 for organ in exopk.ORGANS for rate in RATES if params.values[f"{organ}_{rate}"] > 0}
    return exopk.analysis.sample_population(params, n_subjects, cv, body_weight_cv=0.15, seed=SEED)


def lsoda_organs(values, t_h: np.ndarray, y0_live: np.ndarray, member: np.ndarray) -> np.ndarray:
    """LSODA solution of the full linear system, reduced to reported organs, shape (n_times, n_organs)."""
    K, E = rate_matrices(values)
    n_live = K.shape[-1]
    n = n_live + E.shape[-2]
    A = np.zeros((n, n))
    A[:n_live, :n_live] = K[0]
    A[n_live:, :n_live] = E[0]
    y0 = np.zeros(n)
    y0[:n_live] = y0_live
    sol = solve_ivp(
        lambda _t, y: A @ y,
        (0.0, float(t_h[-1])),
        y0,
        method="LSODA",
        t_eval=t_h,
        jac=lambda _t, _y: A,
        rtol=1e-8,
        atol=1e-12 * DOSE,
    )
    if not sol.success:
        raise RuntimeError(sol.message)
    return sol.y.T @ member.T


def loop_time(params, variations: dict, t_h: np.ndarray, n_loop: int) -> float:
    """Wall time of the LSODA loop over the first ``n_loop`` parameter sets."""
    y0_live = as_regimen(exopk.IVBolus(dose_particles=DOSE)).events().bolus_amounts[0]
    member = organ_membership()
    base = dict(params.values)
    t0 = time.perf_counter()
    for i in range(n_loop):
        values = dict(base)
        values.update({name: float(v[i]) for name, v in variations.items()})
        lsoda_organs(values, t_h, y0_live, member)
    return time.perf_counter() - t0


def timed(fn, repeats: int):
    """First-call time, median of ``repeats`` further calls, last result."""
    t0 = time.perf_counter()
    result = fn()
    first = time.perf_counter() - t0
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return first, (statistics.median(times) if times else first), result


def peak_rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return float(line.split()[1]) / 1024.0
    raise RuntimeError("no VmHWM in /proc/self/status")


def measure_memory(n_subjects: int) -> None:
    """(Fresh process.) Print peak-RSS before and after one population run, and its time."""
    params = exopk.load_parameters()
    t_h = np.linspace(0.0, T_END_H, 97)
    small = population(params, 16)
    exopk.analysis.simulate_population(
        small, exopk.IVBolus(dose_particles=DOSE), t_h, progress=False
    )  # imports, caches
    before = peak_rss_mb()
    pop = population(params, n_subjects)
    t0 = time.perf_counter()
    exopk.analysis.simulate_population(pop, exopk.IVBolus(dose_particles=DOSE), t_h, progress=False)  # with blood NCA
    elapsed = time.perf_counter() - t0
    print(f"{before:.1f} {peak_rss_mb():.1f} {elapsed:.3f}")


def fmt(seconds: float) -> str:
    return f"{seconds * 1e3:.0f} ms" if seconds < 1 else f"{seconds:.2f} s"


def verdict(ok: bool, quick: bool) -> str:
    return "(not judged: --quick)" if quick else ("met" if ok else "NOT met")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: small sizes, targets not judged")
    parser.add_argument("--memory", type=int, default=0, help=argparse.SUPPRESS)  # internal: subprocess mode
    args = parser.parse_args()
    if args.memory:
        measure_memory(args.memory)
        return
    quick = args.quick
    n_subjects, n_big, sobol_n = (1_000, 5_000, 64) if quick else (10_000, 100_000, 1024)
    n_loop = {97: 20, 2881: 10} if quick else {97: 200, 2881: 100}
    n_loop_sobol = 20 if quick else 200
    repeats = 1 if quick else 3
    started = time.perf_counter()
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print("exopk analysis benchmark" + (" (--quick)" if quick else ""))
    print(
        f"exopk {exopk.__version__}, numpy {np.__version__}, scipy {scipy.__version__}, "
        f"Python {platform.python_version()}, {os.cpu_count()} CPUs, load average {load}"
    )
    params = exopk.load_parameters()
    bolus = exopk.IVBolus(dose_particles=DOSE)
    pop = population(params, n_subjects)
    print(
        f"\n1. Population of {n_subjects:,} subjects: CV 30 % on {len(pop.cv)} organ rates, body weight CV 15 % "
        f"({len(pop.variations)} parameters vary per subject); percentiles 5/50/95 per organ, per-subject "
        "Cmax/Tmax/AUC.\n"
        f"   simulate_population without executor: first call, then median of {repeats} more. LSODA loop timed "
        "on a subsample and scaled up."
    )
    header = f"{'points':>6}  {'first call':>10}  {'median':>8}  {'LSODA loop est.':>28}  {'ratio':>7}  target"
    print(header)
    print("-" * len(header))
    results = {}
    nca_times = {}
    core_times = {}
    for n_times, key in ((97, "10k_97"), (2881, "10k_2881")):
        t_h = np.linspace(0.0, T_END_H, n_times)
        first, median, result = timed(
            lambda t_h=t_h: exopk.analysis.simulate_population(pop, bolus, t_h, nca_organs=(), progress=False), repeats
        )
        t0 = time.perf_counter()
        with_nca = exopk.analysis.simulate_population(pop, bolus, t_h, progress=False)
        nca_times[n_times] = time.perf_counter() - t0
        _, core_times[n_times], _ = timed(
            lambda t_h=t_h: exopk.simulate_batch(params, bolus, t_h, pop.variations, memory_mb=256.0), repeats
        )
        loop = loop_time(params, pop.variations, t_h, n_loop[n_times]) * n_subjects / n_loop[n_times]
        results[key] = median
        ok = median <= TARGETS[key]
        print(
            f"{n_times:>6}  {fmt(first):>10}  {fmt(median):>8}  "
            f"{fmt(loop) + f' ({n_loop[n_times]} timed x{n_subjects // n_loop[n_times]})':>28}  "
            f"{loop / median:>6.0f}x  <= {TARGETS[key]:g} s: {verdict(ok, quick)}"
        )
        if n_times == 97:
            per_subject_97 = loop / n_subjects
            blood_half_life = np.nanmedian(with_nca.nca["blood"].half_life_h)
    print(
        "   The core alone, simulate_batch (percentiles + AUCs) on the same sets, same memory_mb, median: "
        + ", ".join(f"{fmt(v)} at {k} points" for k, v in core_times.items())
        + " (the machine's speed in this run)"
    )
    print(
        "   With the per-subject NCA of blood added (default of simulate_population; one call): "
        + ", ".join(f"{fmt(v)} at {k} points" for k, v in nca_times.items())
        + f"\n   (median blood terminal half-life over subjects: {blood_half_life:.3f} h)"
    )

    print(f"\n2. Population of {n_big:,} subjects at 97 points, with the blood NCA (fresh process; peak RSS = VmHWM)")
    out = subprocess.run(
        [sys.executable, __file__, "--memory", str(n_big)], capture_output=True, text=True, check=True
    ).stdout.split()
    before, after, elapsed = float(out[0]), float(out[1]), float(out[2])
    loop = per_subject_97 * n_big
    ok = after <= TARGETS["100k_memory_mb"]
    print(
        f"   time {fmt(elapsed)}; LSODA loop est. {fmt(loop)} (per-subject time of case 1 x {n_big:,}): "
        f"ratio {loop / elapsed:.0f}x\n"
        f"   peak RSS of the process {after:.0f} MB (growth during the run {after - before:.0f} MB); "
        f"target <= {TARGETS['100k_memory_mb']:g} MB: {verdict(ok, quick)}"
    )

    d = len(SOBOL_PARAMETERS)
    runs = sobol_n * (2 * d + 2)
    print(f"\n3. Sobol indices: {d} parameters log-uniform over [p/2, 2p], N = {sobol_n}, second order: {runs:,} runs")
    t_h = np.linspace(0.0, T_END_H, 97)
    first, median, sobol = timed(
        lambda: exopk.analysis.sobol_sensitivity(
            params, bolus, t_h, SOBOL_PARAMETERS, ("brain_auc", "liver_cmax", "blood_auc"), n=sobol_n, seed=SEED,
            progress=False,
        ),
        1 if not quick else 0,
    )  # fmt: skip
    design = exopk.analysis.saltelli_design(d, sobol_n, seed=np.random.default_rng(0))
    lo = np.log(np.array([params[p] for p in SOBOL_PARAMETERS]) / 2)
    sample = {p: np.exp(lo[i] + design[:n_loop_sobol, i] * np.log(4)) for i, p in enumerate(SOBOL_PARAMETERS)}
    loop = loop_time(params, sample, t_h, n_loop_sobol) * runs / n_loop_sobol
    ok = median <= TARGETS["sobol"]
    print(
        f"   exopk first call {fmt(first)}, median {fmt(median)}; LSODA loop est. {fmt(loop)} "
        f"({n_loop_sobol} timed x{runs / n_loop_sobol:.1f}); ratio {loop / median:.0f}x; "
        f"target <= {TARGETS['sobol']:g} s: {verdict(ok, quick)}"
    )
    j = sobol.outputs.index("brain_auc")
    top = np.argsort(-sobol.total_order[:, j])[:3]
    print(
        "   brain AUC, largest total-order indices: "
        + ", ".join(
            f"{sobol.names[i]} {sobol.total_order[i, j]:.3f} "
            f"[{sobol.total_order_ci[0, i, j]:.3f}, {sobol.total_order_ci[1, i, j]:.3f}]"
            for i in top
        )
    )

    print(f"\n4. Case 1 at 97 points on ProcessPoolExecutor(2), chunks of {n_subjects // 4:,} (information)")
    t_h = np.linspace(0.0, T_END_H, 97)
    with ProcessPoolExecutor(2) as pool:
        first, median, _ = timed(
            lambda: exopk.analysis.simulate_population(
                pop, bolus, t_h, executor=pool, chunk_size=n_subjects // 4, workers=1, progress=False
            ),
            1 if not quick else 0,
        )
    print(f"   first call {fmt(first)} (includes starting the processes), then {fmt(median)}")
    print(f"\ntotal benchmark time {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
