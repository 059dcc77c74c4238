"""Repeated dosing and steady state: a week of daily IV doses, and the exact periodic state (ss=1).

Gives 1e10 MSC-EVs IV every 24 h for 14 days (`Regimen.repeat`, NONMEM II/ADDL) to the default
25 g mouse, then the same dose at periodic steady state (`ss=1`, NONMEM SS=1: the system is at
the periodic state of this dose and interval before it is given), solved exactly from
(I - e^{K tau}) x = e^{K tau} b. Prints the liver trough before each dose approaching the
steady-state trough, and writes both curves.

Run:  python examples/08_repeats_and_steady_state.py [output.png]
"""

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: write the figure to a file
import matplotlib.pyplot as plt
import numpy as np

import exopk

out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("out/08_repeats_and_steady_state.png")
params = exopk.load_parameters("mouse", "msc")
tau_h, n_doses = 24.0, 14
dose = exopk.IVBolus(dose_particles=1e10)

t_h = np.linspace(0.0, tau_h * n_doses, int(tau_h * n_doses * 4) + 1)  # every 15 min
week = exopk.simulate(params, exopk.Regimen.repeat(dose, every_h=tau_h, n=n_doses), t_h)
print(
    f"{n_doses} doses every {tau_h:g} h: {week.metadata['n_intervals']} intervals, "
    f"{week.metadata['n_propagators']} propagator(s) computed"
)

t_ss = np.linspace(0.0, tau_h, 97)
steady = exopk.simulate(params, exopk.IVBolus(dose_particles=1e10, ii_h=tau_h, ss=1), t_ss)
# 15 min before the next dose (an output at the dose time already includes the dose)
trough_ss = steady.amount("liver")[-2]
print(f"{'15 min before dose':>18s} {'liver (particles)':>18s} {'/ steady-state trough':>22s}")
for k in range(1, n_doses):
    before = week.amount("liver")[np.searchsorted(t_h, k * tau_h) - 1]  # the last time before the dose
    print(f"{k + 1:18d} {before:18.4g} {before / trough_ss:22.4f}")
print(f"steady-state liver, 15 min before a dose: {trough_ss:.4g} particles; peak {steady.amount('liver').max():.4g}")

fig, ax = plt.subplots(figsize=(9, 4))
ax.plot(t_h, week.amount("liver"), lw=1.5, label=f"{n_doses} daily doses")
for k in range(n_doses):
    ax.plot(
        k * tau_h + t_ss,
        steady.amount("liver"),
        color="k",
        lw=0.8,
        ls=":",
        label="steady state (ss=1)" if k == 0 else None,
    )
ax.set_yscale("log")
ax.set_xlabel("time (h)")
ax.set_ylabel("liver, intact EVs (particles)")
ax.set_title("IV bolus 1e10 EVs every 24 h, mouse")
ax.grid(True, alpha=0.3)
ax.legend()
out.parent.mkdir(parents=True, exist_ok=True)
fig.tight_layout()
fig.savefig(out, dpi=110)
print(f"wrote {out}")
