"""From a mouse dose to a human one: dose scaling, and what the model predicts in each species.

A mouse study dose of 2e10 MSC-EVs (the IV dose of the Padova 2023 biodistribution study,
literature.md §1b) is re-expressed for a 70 kg human per kg and by body surface area
(FDA 2005 Km factors; `exopk scale-dose`). The human and rat simulations use human/rat
physiology with the mouse-calibrated EV constants extrapolated allometrically (rate constants
× (BW/25 g)^-0.25): every such value is flagged, and no human EV kinetic data back them.

Run:  python examples/05_mouse_to_human.py [output.png]
"""

import math
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: write the figure to a file
import matplotlib.pyplot as plt
import numpy as np

import exopk

out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("out/05_mouse_to_human.png")

mouse_dose = 2e10
scaled = exopk.model.scale_dose(mouse_dose, "mouse", "human")
print(scaled.summary())
print()

doses = {
    "mouse": mouse_dose,
    "rat": exopk.model.scale_dose(mouse_dose, "mouse", "rat").bsa_particles,
    "human": scaled.bsa_particles,
}
t_h = np.concatenate([[0.0], np.geomspace(1e-3, 48.0, 600)])
results = {}
for species, dose in doses.items():
    params = exopk.load_parameters(species, "msc")
    results[species] = exopk.simulate(params, exopk.IVBolus(dose_particles=dose), t_h)


def blood_half_life_min(result, t1_min=1.0, t2_min=5.0):
    """Initial blood half-life, from the log-linear slope between 1 and 5 min (as calibrated in the mouse)."""
    blood = np.interp([t1_min / 60, t2_min / 60], result.t_h, result.percent_id("blood"))
    return (t2_min - t1_min) * math.log(2) / math.log(blood[0] / blood[1])


print(
    f"{'species':8s}{'dose':>11s}{'blood t1/2':>12s}{'blood 0.5 h':>13s}{'liver 4 h':>11s}{'lung 4 h':>10s}"
    f"{'blood conc 1 h':>18s}  extrapolated"
)
for species, result in results.items():
    at = {o: np.interp(4.0, t_h, result.percent_id(o)) for o in ("liver", "lung")}
    print(
        f"{species:8s}{doses[species]:11.3g}{blood_half_life_min(result):9.1f} min"
        f"{np.interp(0.5, t_h, result.percent_id('blood')):11.3g} %{at['liver']:9.1f} %{at['lung']:8.1f} %"
        f"{np.interp(1.0, t_h, result.concentration_particles_per_ml('blood')):13.3g} /mL"
        f"  {len(result.metadata['extrapolated'])} EV constants"
    )
print("Driedonks 2022 (macaque): IV EVs circulate longer than in mice (no number retrieved), and liver")
print("and spleen take them up within 1 h. The human numbers above are extrapolations, not validated predictions.")

fig, axes = plt.subplots(1, 2, figsize=(10, 4))
for species, result in results.items():
    axes[0].plot(t_h, result.percent_id("blood"), lw=2, label=f"{species} ({doses[species]:.2g} particles)")
    axes[1].plot(t_h, result.percent_id("liver"), lw=2, label=species)
axes[0].set_yscale("log")
axes[0].set_ylim(1e-3, 150)
axes[0].set_xlim(0, 6)
axes[0].set_ylabel("blood, %ID")
axes[1].set_xlim(0, 48)
axes[1].set_ylabel("liver, %ID")
for ax in axes:
    ax.set_xlabel("time (h)")
    ax.grid(True, which="both", alpha=0.3)
axes[0].legend(title="IV bolus, BSA-scaled dose", fontsize=8)
fig.suptitle("MSC-EVs: mouse calibration, rat and human by allometry (flagged extrapolations)", fontsize=10)
fig.tight_layout()
out.parent.mkdir(parents=True, exist_ok=True)
fig.savefig(out, dpi=120)
plt.close(fig)
print(f"wrote {out}")
