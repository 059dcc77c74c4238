"""Does intranasal dosing get more MSC-EVs into the brain than IV? (mouse)

Gives the default 25 g mouse 1e10 MSC-EVs by IV bolus and intranasally (plus, for context,
intraperitoneally), prints exposure per organ, bioavailability and the nose-to-brain targeting
metrics (DTE %, DTP %), and writes the comparison figure: brain tissue and blood curves per
route, and exact AUC per organ and route.

"Brain" here is brain tissue (extravascular): EVs that crossed the blood-brain barrier or
arrived along the olfactory and trigeminal nerves, not those in the brain's blood. The
intranasal rates are calibrated to protein analogues (IgG, albumin), because no study reports
EV brain %ID after intranasal dosing; read the numbers as what the model implies, and the
sources in params/routes/intranasal.toml for how much to trust them.

Run:  python examples/02_iv_vs_intranasal.py [output.png]
"""

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: write the figure to a file
import matplotlib.pyplot as plt
import numpy as np

import exopk

out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("out/02_iv_vs_intranasal.png")

params = exopk.load_parameters(species="mouse", ev="msc")
t_h = np.linspace(0.0, 48.0, 48 * 60 + 1)
# A typical mouse protocol, 2 x 3 µL per nostril, awake: about 2 % of the dose runs into the lungs
# (interpolated between 5 µL: 0 % and 25 µL: 5.3 %, Southam et al. 2002).
nasal = exopk.Intranasal.from_volume(1e10, volume_ul=12.0)
comparison = exopk.analysis.compare_routes(params, ["iv_bolus", nasal, "intraperitoneal"], dose_particles=1e10, t_h=t_h)

print(f"{'route':18s}{'F':>7s}{'blood AUC':>11s}{'brain tissue AUC':>18s}{'liver AUC':>11s}{'brain:blood':>13s}")
for route in comparison.routes:
    auc = comparison.auc_inf_percent_id_h[route]
    print(
        f"{route:18s}{comparison.bioavailability(route):7.3f}{auc['blood']:11.4g}"
        f"{auc['brain_extravascular']:18.4g}{auc['liver']:11.4g}{comparison.brain_to_blood_auc_ratio(route):13.4g}"
    )
print("AUCs: exact, dose to infinity, %ID·h; F: blood AUC relative to the IV bolus")
targeting = comparison.targeting("intranasal")
print(f"intranasal vs IV: DTE = {targeting['dte_percent']:.0f} %, DTP = {targeting['dtp_percent']:.1f} %")
peak = comparison.results["intranasal"].extravascular_percent_id("brain")
print(f"intranasal brain tissue peak {peak.max():.3g} %ID at {t_h[peak.argmax()]:.2f} h")

fig = exopk.plots.plot_route_comparison(comparison)
out.parent.mkdir(parents=True, exist_ok=True)
fig.savefig(out, dpi=110)
plt.close(fig)
print(f"wrote {out}")
