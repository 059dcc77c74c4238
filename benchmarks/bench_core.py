"""Benchmark of exopk's core solvers against scipy's LSODA on the same model.

Run from the repository root::

    .venv/bin/python benchmarks/bench_core.py            # full run, a few minutes at most
    .venv/bin/python benchmarks/bench_core.py --quick    # smoke run, fewer repeats, smaller loops

1. One simulation, 0-48 h, default mouse IV bolus of 1e10 particles, at 2881 and at 49
   output times: ``exopk.simulate`` (method "exact", and "expm") against
   ``scipy.integrate.solve_ivp(method="LSODA", rtol=1e-8, atol=1e-12 * dose)`` on the full
   28-state system ``dy/dt = A y`` built from ``exopk.model.graph.rate_matrices``, with the
   Jacobian ``A``. Time per simulation (median of repeats), ratio LSODA / exopk, and the
   largest difference between the two solutions relative to the dose.
2. A batch of 10,000 parameter sets (lognormal, 30 % CV, median = default, on every organ's
   vascular uptake, tissue uptake and degradation rates; seeded) through
   ``exopk.simulate_batch`` (default percentiles, no trajectories kept) at 49 and at 2881
   output times, against a loop of LSODA solutions: the loop is timed on 1,000 sets and
   scaled by 10 (the output says so). Peak memory of the batch (tracemalloc peak, and the
   growth of the peak resident set size, VmHWM, in a fresh subprocess), and a check of
   the batch's trajectories (``keep_amounts=True``) against LSODA for 20 sets.

Timings are wall-clock on whatever else the machine is doing; the load average is printed.
"""

from __future__ import annotations

import argparse
import functools
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
import tracemalloc

import numpy as np
import scipy
from scipy.integrate import solve_ivp

import exopk
from exopk.model.graph import organ_membership, rate_matrices

DOSE = 1e10
T_END_H = 48.0
GRIDS = (2881, 49)  # output times over 0-48 h: every minute, every hour
N_SETS = 10_000
CV = 0.30
SEED = 20_241_126
VARIED_RATES = ("uptake_vascular_per_h", "uptake_tissue_per_h", "degradation_per_h")
N_CHECK = 20  # sets compared trajectory by trajectory with LSODA


def median_time(fn, repeats: int, warm_up: bool = True) -> tuple[float, object]:
    """Median wall time of ``fn()`` over ``repeats`` calls (after one warm-up call), and its last result."""
    result = fn() if warm_up else None
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def lsoda(values, t_h: np.ndarray) -> np.ndarray:
    """LSODA solution of the full linear system, shape (n_times, n_states); for a mixture of EV
    subpopulations (the default since issue 13), one LSODA solution per subpopulation, summed."""
    mixture = _mixture()
    if not mixture:
        return _lsoda_one(values, t_h)
    return sum(sub.share * _lsoda_one(sub.apply(values), t_h) for sub in mixture)


@functools.cache
def _mixture():
    return exopk.load_parameters().subpopulations


def _lsoda_one(values, t_h: np.ndarray) -> np.ndarray:
    K, E = rate_matrices(values)
    n_live, n = K.shape[-1], K.shape[-1] + E.shape[-2]
    A = np.zeros((n, n))
    A[:n_live, :n_live] = K[0]
    A[n_live:, :n_live] = E[0]
    y0 = np.zeros(n)
    y0[0] = DOSE  # IV bolus into venous blood (state 0)
    sol = solve_ivp(
        lambda _t, y: A @ y,
        (0.0, float(t_h[-1])),
        y0,
        method="LSODA",
        t_eval=t_h,
        jac=lambda _t, _y: A,  # scipy's LSODA needs a callable; an array raises ValueError
        rtol=1e-8,
        atol=1e-12 * DOSE,
    )
    if not sol.success:
        raise RuntimeError(sol.message)
    return sol.y.T


def variations(params) -> dict[str, np.ndarray]:
    """Lognormal, CV 30 %, median = default, independent for every organ's uptake and degradation rates."""
    rng = np.random.default_rng(SEED)
    sigma = np.sqrt(np.log(1.0 + CV**2))
    names = [f"{organ}_{rate}" for organ in exopk.ORGANS for rate in VARIED_RATES]
    return {name: params.values[name] * np.exp(sigma * rng.standard_normal(N_SETS)) for name in names}


def set_values(params, var: dict[str, np.ndarray], i: int) -> dict:
    values = dict(params.values)
    values.update({name: float(v[i]) for name, v in var.items()})
    return values


def row(widths: tuple[int, ...], *cells) -> str:
    """Right-aligned table row."""
    return "  ".join(f"{str(cell):>{width}}" for width, cell in zip(widths, cells, strict=True))


def fmt_s(seconds: float) -> str:
    return f"{seconds * 1e3:.2f} ms" if seconds < 1.0 else f"{seconds:.2f} s"


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far (MB).

    VmHWM from /proc (Linux): unlike ``getrusage``'s ``ru_maxrss``, it is not inherited from
    the parent process across fork and exec.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return float(line.split()[1]) / 1024.0  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # kB on Linux, bytes on macOS


def measure_maxrss(n_times: int) -> None:
    """(Run in a fresh process.) Print the growth of the peak RSS during one batch."""
    params = exopk.load_parameters()
    var = variations(params)
    t_h = np.linspace(0.0, T_END_H, n_times)
    exopk.simulate_batch(params, exopk.IVBolus(dose_particles=DOSE), t_h[:2], {k: v[:8] for k, v in var.items()})
    before = peak_rss_mb()
    exopk.simulate_batch(params, exopk.IVBolus(dose_particles=DOSE), t_h, var)
    print(f"{before:.1f} {peak_rss_mb():.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: fewer repeats, smaller LSODA loop")
    parser.add_argument("--maxrss", type=int, default=0, help=argparse.SUPPRESS)  # internal: subprocess mode
    args = parser.parse_args()
    if args.maxrss:
        measure_maxrss(args.maxrss)
        return

    quick = args.quick
    reps_exact, reps_expm, reps_lsoda, reps_batch = (3, 2, 2, 1) if quick else (30, 5, 5, 3)
    n_loop = 100 if quick else 1000
    started = time.perf_counter()
    print("exopk benchmark" + (" (--quick)" if quick else ""))
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(
        f"exopk {exopk.__version__}, numpy {np.__version__}, scipy {scipy.__version__}, "
        f"Python {platform.python_version()}, {os.cpu_count()} CPUs, load average {load}"
    )

    params = exopk.load_parameters()
    bolus = exopk.IVBolus(dose_particles=DOSE)

    # ---------------------------------------------------------------- 1. one simulation
    print("\n1. One simulation, 0-48 h, mouse IV bolus 1e10 particles (median wall time per simulation)")
    widths = (6, 12, 12, 12, 11, 10, 22, 21)
    header = row(
        widths,
        "points",
        "exopk exact",
        "exopk expm",
        "LSODA",
        "LSODA/exact",
        "LSODA/expm",
        "max |exact-LSODA|/dose",
        "max |expm-LSODA|/dose",
    )
    print(header)
    print("-" * len(header))
    for n_times in GRIDS:
        t_h = np.linspace(0.0, T_END_H, n_times)
        t_exact, r_exact = median_time(lambda t_h=t_h: exopk.simulate(params, bolus, t_h, method="exact"), reps_exact)
        t_expm, r_expm = median_time(lambda t_h=t_h: exopk.simulate(params, bolus, t_h, method="expm"), reps_expm)
        t_lsoda, y = median_time(lambda t_h=t_h: lsoda(params.values, t_h), reps_lsoda)
        d_exact = np.abs(r_exact.amounts_particles - y).max() / DOSE
        d_expm = np.abs(r_expm.amounts_particles - y).max() / DOSE
        print(
            row(
                widths,
                n_times,
                fmt_s(t_exact),
                fmt_s(t_expm),
                fmt_s(t_lsoda),
                f"{t_lsoda / t_exact:.1f}x",
                f"{t_lsoda / t_expm:.1f}x",
                f"{d_exact:.1e}",
                f"{d_expm:.1e}",
            )
        )
        if n_times == 2881:
            ratio_2881 = t_lsoda / t_exact
    verdict = "met" if ratio_2881 >= 30 else "NOT met"
    print(f"target: exact >= 30x faster than LSODA at 2881 points: {verdict} ({ratio_2881:.1f}x)")

    # ---------------------------------------------------------------- 2. batch
    var = variations(params)
    print(
        f"\n2. Batch of {N_SETS:,} parameter sets (lognormal, CV {CV:.0%}, median = default, seed {SEED}) on "
        f"{len(var)} rates: <organ>_{{{', '.join(VARIED_RATES)}}}"
    )
    print(
        "   simulate_batch: default percentiles (5, 50, 95), no trajectories kept, default memory_mb (64); "
        f"first call, then median of {reps_batch} more.\n"
        f"   LSODA loop: {n_loop:,} sets timed, x{N_SETS // n_loop} for {N_SETS:,} (an estimate). "
        "Peak RSS growth: one batch in a fresh process."
    )
    widths = (6, 16, 14, 15, 11, 16, 15)
    header = row(
        widths,
        "points",
        "batch first call",
        "batch (median)",
        "LSODA loop est.",
        "LSODA/batch",
        "tracemalloc peak",
        "peak RSS growth",
    )
    print(header)
    print("-" * len(header))
    member = organ_membership()  # reported organs x all states
    targets = {49: 1.0, 2881: 5.0}
    verdicts = []
    check_rows = []
    for n_times in sorted(GRIDS):
        t_h = np.linspace(0.0, T_END_H, n_times)
        t0 = time.perf_counter()
        exopk.simulate_batch(params, bolus, t_h, var)
        t_first = time.perf_counter() - t0
        t_batch, _ = median_time(
            lambda t_h=t_h: exopk.simulate_batch(params, bolus, t_h, var), reps_batch, warm_up=False
        )
        tracemalloc.start()
        exopk.simulate_batch(params, bolus, t_h, var)
        peak_mb = tracemalloc.get_traced_memory()[1] / 1e6
        tracemalloc.stop()
        out = subprocess.run(
            [sys.executable, __file__, "--maxrss", str(n_times)], capture_output=True, text=True, check=True
        ).stdout.split()
        rss_growth = float(out[1]) - float(out[0])
        t0 = time.perf_counter()
        for i in range(n_loop):
            lsoda(set_values(params, var, i), t_h)
        t_loop = (time.perf_counter() - t0) * (N_SETS / n_loop)
        print(
            row(
                widths,
                n_times,
                fmt_s(t_first),
                fmt_s(t_batch),
                fmt_s(t_loop),
                f"{t_loop / t_batch:.0f}x",
                f"{peak_mb:.0f} MB",
                f"{rss_growth:.0f} MB",
            )
        )
        verdict = "met" if t_batch <= targets[n_times] else "NOT met"
        verdicts.append(
            f"target: {N_SETS:,} sets <= {targets[n_times]:g} s at {n_times} points: {verdict} "
            f"({t_batch:.2f} s median, {t_first:.2f} s first call)"
        )

        # Trajectories of the first N_CHECK sets against LSODA, per reported organ, relative to the dose.
        subset = {name: v[:N_CHECK] for name, v in var.items()}
        check = exopk.simulate_batch(params, bolus, t_h, subset, keep_amounts=True)
        worst_lsoda = 0.0
        worst_exact = np.zeros(member.shape[0])
        for i in range(N_CHECK):
            batch = check.amounts_particles[i]
            organs = lsoda(set_values(params, var, i), t_h) @ member.T  # (n_times, n_reported_organs)
            worst_lsoda = max(worst_lsoda, np.abs(batch - organs).max() / DOSE)
            single = exopk.simulate(params.replace(**{k: v[i] for k, v in subset.items()}), bolus, t_h, method="exact")
            worst_exact = np.maximum(
                worst_exact, np.abs(batch - single.amounts_particles @ member.T).max(axis=0) / DOSE
            )
        check_rows.append(
            f"{n_times:>6}  {N_CHECK} sets (keep_amounts=True), max |batch - x| / dose: x = LSODA {worst_lsoda:.1e}; "
            f"x = exopk.simulate exact {worst_exact[:-1].max():.1e} (live organs), {worst_exact[-1]:.1e} (eliminated)"
        )
    for line in verdicts:
        print(line)
    print(
        "\nBatch correctness, all reported organs and times (the batch's `eliminated` is the administered dose minus"
        "\nthe live organs; simulate's is the sum of its sink states):"
    )
    for line in check_rows:
        print(line)
    print(f"\ntotal benchmark time {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
