"""Benchmark: the cost of many doses (issue 14, "Cost"; issue 12, item 5).

Run from the repository root::

    .venv/bin/python benchmarks/bench_dosing.py            # full run, about a minute
    .venv/bin/python benchmarks/bench_dosing.py --quick    # smoke run, smaller cases

Model: default mouse / MSC-EVs, IV bolus of 1e10 particles per dose.

Cases (each as an ``addl`` series, ``Regimen.repeat``):

- a year of daily doses (365), output every hour (8,761 times);
- 10,000 hourly doses, output every 15 min (40,001 times);
- the same two with half and a quarter of the doses (same output step), to show that time is
  linear in the number of dose intervals: the time per interval is printed;
- steady state (``ss=1``) of the daily dose, one interval;
- in the same process, the baseline: the same year as an explicit list of 365 ``IVBolus``
  (the same event list, so the same cost: the ratio should be ~1), and the modal superposition
  that exopk used for every regimen before (``exopk.solve.linear.exact_single``), measured on 8
  and 32 doses and extrapolated (it is O(doses x times) in time and memory: that is what took
  1.25 GB for 365 doses).

Peak memory is Python's traced allocation peak (``tracemalloc``, NumPy arrays included), in a
separate run from the timing (tracing slows allocation); the process's maximum resident set
(``resource.getrusage``) is printed at the end, imports included. Timings are wall clock (best
of 3) on a shared machine; the load average is printed.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import time
import tracemalloc

import numpy as np

import exopk
from exopk.model.graph import rate_matrices
from exopk.solve.linear import exact_single, restrict_to_reached

DOSE = 1e10


def best_of(function, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        function()
        times.append(time.perf_counter() - t0)
    return min(times)


def peak_mb(function) -> float:
    tracemalloc.start()
    function()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller cases (smoke run)")
    args = parser.parse_args()
    params = exopk.load_parameters("mouse", "msc")
    bolus = exopk.IVBolus(dose_particles=DOSE)
    print(f"exopk {exopk.__version__}, numpy {np.__version__}, {platform.machine()}, load {os.getloadavg()[0]:.2f}")

    scale = 10 if args.quick else 1
    cases = [
        ("daily, 1 year", 24.0, 365 // scale, 1.0),
        ("hourly, 10,000 doses", 1.0, 10_000 // scale, 0.25),
    ]
    print(
        f"\n{'case':24s} {'doses':>7s} {'times':>7s} {'time (s)':>9s} {'ms/interval':>12s} {'peak MB':>8s} "
        f"{'propagators':>11s}"
    )
    for name, every_h, n_doses, dt_h in cases:
        per_interval = []
        for fraction in (0.25, 0.5, 1.0):
            n = max(2, int(n_doses * fraction))
            t_h = np.arange(0.0, n * every_h + dt_h / 2, dt_h)
            regimen = exopk.Regimen.repeat(bolus, every_h=every_h, n=n)
            result = exopk.simulate(params, regimen, t_h)
            seconds = best_of(lambda r=regimen, t=t_h: exopk.simulate(params, r, t))
            memory = peak_mb(lambda r=regimen, t=t_h: exopk.simulate(params, r, t))
            per_interval.append(seconds / n)
            print(
                f"{name if fraction == 1.0 else f'  {fraction:g} of it':24s} {n:7d} {t_h.size:7d} {seconds:9.3f} "
                f"{1e3 * seconds / n:12.4f} {memory:8.1f} {result.metadata['n_propagators']:11d}"
            )
        print(f"  linearity: time per interval, full / quarter = {per_interval[2] / per_interval[0]:.2f} (1 = linear)")

    n = 365 // scale
    t_h = np.arange(0.0, 24.0 * n + 0.5, 1.0)
    series = exopk.Regimen.repeat(bolus, every_h=24.0, n=n)
    explicit = exopk.Regimen([exopk.IVBolus(dose_particles=DOSE, t_h=24.0 * k) for k in range(n)])
    t_series = best_of(lambda: exopk.simulate(params, series, t_h))
    t_explicit = best_of(lambda: exopk.simulate(params, explicit, t_h))
    same = (
        np.max(
            np.abs(
                exopk.simulate(params, series, t_h).amounts_particles
                - exopk.simulate(params, explicit, t_h).amounts_particles
            )
        )
        / DOSE
    )
    print(f"\nbaseline in this process, {n} daily doses, {t_h.size} times:")
    print(
        f"  explicit list of {n} IVBolus / addl series: time ratio {t_explicit / t_series:.2f}, "
        f"max |diff|/dose {same:.1e}"
    )

    K, E = rate_matrices(params.values)
    for m in (8, 32):
        reg = exopk.Regimen.repeat(bolus, every_h=24.0, n=m)
        events = reg.events()
        _, Kr, Er, ev = restrict_to_reached(K[0], E[0], events)
        seconds = best_of(lambda ev=ev, Kr=Kr, Er=Er: exact_single(Kr, Er, ev, t_h), repeats=1)
        memory = peak_mb(lambda ev=ev, Kr=Kr, Er=Er: exact_single(Kr, Er, ev, t_h))
        print(
            f"  modal superposition (before issue 14), {m} doses: {seconds:.3f} s, peak {memory:.0f} MB -> "
            f"{n} doses ~{seconds * n / m:.1f} s, ~{memory * n / m:.0f} MB (linear in doses x times); "
            f"stepping is {seconds * n / m / t_series:.0f}x faster"
        )

    tau = 24.0
    t_ss = np.linspace(0.0, tau, 97)
    ss_dose = exopk.IVBolus(dose_particles=DOSE, ii_h=tau, ss=1)
    t_ss_s = best_of(lambda: exopk.simulate(params, ss_dose, t_ss))
    print(f"\nsteady state (ss=1, exact), one 24 h interval, 97 times: {1e3 * t_ss_s:.1f} ms")
    capped = params.replace(liver_capacity_particles=5e9)
    t0 = time.perf_counter()
    iterated = exopk.simulate(capped, ss_dose, t_ss)
    print(
        f"steady state of the capacity-limited model (iterated): {time.perf_counter() - t0:.2f} s, "
        f"{iterated.metadata['ss_intervals'][0]} intervals to 1e-9 of the dose"
    )
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux
    print(f"\nmax resident set of this process (imports included): {rss:.0f} MB")


if __name__ == "__main__":
    main()
