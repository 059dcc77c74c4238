"""Benchmark: capacity-limited batches (issue 15), the batched RODAS4 against a loop of LSODA solves.

Run from the repository root::

    .venv/bin/python benchmarks/bench_capacity_batch.py            # 1,000 sets, a few minutes
    .venv/bin/python benchmarks/bench_capacity_batch.py --quick    # 64 sets, smoke run

The case is ``cap-batch-lsoda`` of ``benchmarks/bench_targets.py`` (same model, doses and
variations, imported from it): default mouse / MSC-EV mixture with
``liver_capacity_particles=1e9``, ``spleen_capacity_particles=2e8``, IV bolus of 1e10 particles,
97 output times over 48 h, every organ's uptake and degradation rates lognormal (CV 30 %).

- ``exopk 1 process`` / ``exopk default``: ``exopk.simulate_batch`` with ``workers=1`` and with
  the default (the CPUs available, in processes);
- ``LSODA loop``: ``solve_ivp(method="LSODA")`` per set on the package's ``OdeSystem`` (the
  baseline of bench_targets, rtol 1e-8, atol 1e-12 x dose), timed on a subsample and scaled.

Each is timed ``repeats`` times, alternating, and the median and the minimum are printed with
the load average (the machine is shared: wall times are noisy). Accuracy: the batch's organ
amounts of a few sets against ``exopk.simulate(solver="Radau", rtol=1e-12)``, as a multiple of
the stated bound 1e-6 x max(|value|, 1e-9 x dose) (1 = at the bound), and each set's mass balance.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_targets as bt  # noqa: E402  (the case's model and variations, one definition)

import exopk  # noqa: E402
from exopk.model.graph import organ_membership  # noqa: E402


def lsoda_loop(capped, dose, var, t_h: np.ndarray, n_loop: int, n_sets: int) -> tuple[float, float]:
    """Wall and CPU seconds for ``n_sets`` LSODA solves, timed on the first ``n_loop`` and scaled."""
    t0, c0 = time.perf_counter(), time.process_time()
    for i in range(n_loop):
        p = capped.replace(**{name: float(v[i]) for name, v in var.items()})
        mixture, events = bt.stacked(p, dose)
        system, y0 = bt.lsoda_system(mixture, events)
        bt.lsoda(system, y0, t_h)
    scale = n_sets / n_loop
    return (time.perf_counter() - t0) * scale, (time.process_time() - c0) * scale


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: 64 sets, one repeat")
    args = parser.parse_args()
    n_sets = 64 if args.quick else bt.N_CAP_SETS
    repeats = 1 if args.quick else 3
    n_loop = 3 if args.quick else 10
    n_check = 2 if args.quick else 4
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}, {os.cpu_count()} CPUs, quick={args.quick}")

    capped = exopk.load_parameters().replace(**bt.CAPACITY)
    dose = exopk.IVBolus(dose_particles=bt.DOSE)
    t_h = np.linspace(0.0, bt.T_END_H, bt.BATCH_POINTS)
    var = bt.variations(capped, n_sets)
    runs = {
        "exopk 1 process": lambda: exopk.simulate_batch(capped, dose, t_h, var, keep_amounts=True, workers=1),
        "exopk default": lambda: exopk.simulate_batch(capped, dose, t_h, var, keep_amounts=True),
        "LSODA loop": lambda: lsoda_loop(capped, dose, var, t_h, n_loop, n_sets),
    }
    samples: dict[str, list[float]] = {name: [] for name in runs}
    cpu: dict[str, list[float]] = {name: [] for name in runs}
    batch = None
    for _ in range(repeats):  # alternating, so load changes hit every candidate alike
        for name, run in runs.items():
            t0, c0 = time.perf_counter(), time.process_time()
            out = run()
            if name == "LSODA loop":
                seconds, cpu_s = out
            else:
                seconds, cpu_s = time.perf_counter() - t0, time.process_time() - c0
                if name == "exopk 1 process":
                    batch = out
            samples[name].append(seconds)
            cpu[name].append(cpu_s)
    print(f"\n{n_sets} sets, {t_h.size} output times (LSODA loop timed on {n_loop} sets, scaled)")
    loop, loop_cpu = statistics.median(samples["LSODA loop"]), statistics.median(cpu["LSODA loop"])
    for name, values in samples.items():
        med, best = statistics.median(values), min(values)
        ratio = "" if name == "LSODA loop" else f"  ratio loop/batch {loop / med:5.1f} (median wall)"
        print(f"  {name:16s} median {med:8.2f} s  min {best:8.2f} s  ({1e3 * med / n_sets:.2f} ms/set){ratio}")
    # CPU time of this process: less sensitive to other jobs on a shared machine than wall time
    # (not comparable for "exopk default", whose work runs in child processes).
    one_cpu = statistics.median(cpu["exopk 1 process"])
    print(
        f"  CPU time: exopk 1 process {one_cpu:.2f} s, LSODA loop {loop_cpu:.2f} s, "
        f"ratio loop/batch {loop_cpu / one_cpu:.1f} (median CPU)"
    )
    print(f"  load average now {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    assert batch is not None
    print(
        f"  metadata: solver {batch.metadata['solver']!r}, LSODA fallbacks {batch.metadata['n_lsoda_fallback']}, "
        f"worst mass-balance error {batch.metadata['mass_balance_error']:.2e} of the dose"
    )

    member = organ_membership()
    worst = []
    for s in range(n_check):
        p = capped.replace(**{name: float(v[s]) for name, v in var.items()})
        reference = exopk.simulate(p, dose, t_h, solver="Radau", rtol=1e-12, atol_particles=1e-22 * bt.DOSE)
        organs = reference.amounts_particles @ member.T
        bound = 1e-6 * np.maximum(np.abs(organs), 1e-9 * bt.DOSE)
        worst.append(float(np.max(np.abs(batch.amounts_particles[s] - organs) / bound)))
    print(
        f"  accuracy vs Radau rtol 1e-12, sets 0-{n_check - 1}: "
        + ", ".join(f"{w:.3f}" for w in worst)
        + " of the stated bound"
    )


if __name__ == "__main__":
    main()
