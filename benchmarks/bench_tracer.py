"""Speed of labelled simulations: exopk's exact label solver against scipy's LSODA on the same system.

The label system (bound label in every EV state, free-label pools, sinks) is built from the
EV model and solved by the exact modal solver (``simulate_label``). The baseline integrates
the same linear system with ``scipy.integrate.solve_ivp`` (LSODA, rtol 1e-8, atol 1e-12 ×
dose) in the same process. Also reported: the cost of the label on top of the EV simulation,
and the largest difference between the two solutions (relative to the dose).

Run:  python benchmarks/bench_tracer.py [--quick]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from scipy.integrate import solve_ivp

import exopk
from exopk.model.graph import rate_matrices
from exopk.observe.labels import label_system

DOSE_PARTICLES = 1e10


def median_time(fn, repeats: int) -> tuple[float, object]:
    fn()  # warm up
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times)), out


def lsoda(params, label, t_h: np.ndarray) -> np.ndarray:
    """Label states and sinks by LSODA on the same matrices (IV bolus into venous blood)."""
    K, E = rate_matrices(params.values)
    system = label_system(params.values, label, K[0], E[0])
    n, n_sink = system.M.shape[0], system.G.shape[0]
    full = np.zeros((n + n_sink, n + n_sink))
    full[:n, :n] = system.M
    full[n:, :n] = system.G
    y0 = np.zeros(n + n_sink)
    y0[exopk.model.STATES.index("blood_venous")] = DOSE_PARTICLES
    sol = solve_ivp(
        lambda _t, y: full @ y,
        (0.0, t_h[-1]),
        y0,
        method="LSODA",
        t_eval=t_h,
        rtol=1e-8,
        atol=1e-12 * DOSE_PARTICLES,
        jac=lambda _t, _y: full,
    )
    return sol.y.T


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats (smoke run)")
    args = parser.parse_args()
    repeats = 2 if args.quick else 7
    params = exopk.load_parameters()
    dose = exopk.IVBolus(dose_particles=DOSE_PARTICLES)
    print(f"{'case':42s}{'exopk':>10s}{'LSODA':>10s}{'ratio':>8s}{'EV only':>10s}{'max |exact-LSODA|/dose':>25s}")
    for name in ("DiR", "I-125", "Tc-99m"):
        label = exopk.observe.load_label(name)
        for n_times in (49, 2881):
            t_h = np.linspace(0.0, 48.0, n_times)
            t_exact, result = median_time(
                lambda t_h=t_h, label=label: exopk.observe.simulate_label(params, dose, t_h, label), repeats
            )
            t_ev, _ = median_time(lambda t_h=t_h: exopk.simulate(params, dose, t_h), repeats)
            t_lsoda, reference = median_time(
                lambda t_h=t_h, label=label: lsoda(params, label, t_h), max(1, repeats // 3)
            )
            error = np.max(np.abs(result.amounts - reference)) / DOSE_PARTICLES
            case = f"{name}, 0-48 h, {n_times} points"
            print(
                f"{case:42s}{t_exact * 1e3:8.1f}ms{t_lsoda * 1e3:8.1f}ms{t_lsoda / t_exact:7.1f}x"
                f"{t_ev * 1e3:8.1f}ms{error:25.2e}"
            )


if __name__ == "__main__":
    main()
