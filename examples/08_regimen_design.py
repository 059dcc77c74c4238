"""Regimen design: which dose and interval keep brain tissue exposure inside a window after intranasal dosing?

For intranasal MSC-EVs in the default mouse, `design_regimen` computes, for each candidate
interval, the exact periodic steady state (ss=1), the trough and peak of intact EVs in brain
tissue (outside the brain's blood), and the doses keeping both in the window
[1e5, 1e7] particles. It recommends the longest feasible interval at the geometric middle of
its dose range, and the figure shows the steady-state curve against the window.

Run:  python examples/08_regimen_design.py [output.png]
"""

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: write the figure to a file
import matplotlib.pyplot as plt

import exopk
from exopk.analysis.design import design_regimen
from exopk.plots.design import plot_regimen_design

out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("out/08_regimen_design.png")
params = exopk.load_parameters("mouse", "msc")

design = design_regimen(
    params,
    exopk.Intranasal(dose_particles=1e10),
    "brain",
    1e5,
    1e7,
    quantity="amount_particles",
    extravascular=True,
    intervals_h=(6, 12, 24, 48, 72),
)
print(design.candidates.to_string(index=False, float_format=lambda v: f"{v:.3g}"))
print(design.summary())

fig = plot_regimen_design(design)
out.parent.mkdir(parents=True, exist_ok=True)
fig.savefig(out, dpi=110)
plt.close(fig)
print(f"wrote {out}")
