"""Calibrate the intranasal route of the mouse (and rat) to macromolecule analogue data.

No study reports the brain %ID of EVs after intranasal dosing (literature-2.md §0, item 1), so
the two intranasal rates that matter most are set from the nearest analogues, and this is said
in every value's source:

- ``intranasal_absorption_per_h``: 3 % of the nasal dose reaches systemic blood, the middle of
  2-4 % for intranasal [¹²⁵I]-albumin in mice (PMID 25027317; literature-2.md §1b). With
  first-order exits this is exact: F = k_a / (k_nb + k_a + k_mcc + k_d).
- ``intranasal_nose_to_brain_per_h``: 0.007 % of the dose in brain tissue (extravascular brain,
  olfactory bulbs included) 30 min after dosing, from intranasal [¹²⁵I]-IgG in rats (Kumar et
  al. 2018 J Control Release 286:467: ≈ 0.004 % outside the bulbs + ≈ 0.003 % in them; derived
  in literature-2.md §1b). Solved by root finding on the full model, so the share arriving
  through blood after absorption is counted too.

Mucociliary clearance and local loss stay at their file values (a primate clearance rate and an
assumption). The human table is not calibrated (assumptions, see params/routes/intranasal.toml).

Run:
    python calibration/calibrate_intranasal.py            # fit and print
    python calibration/calibrate_intranasal.py --write    # write fitted values to params/routes/intranasal.toml
    python calibration/calibrate_intranasal.py --check    # exit 1 if the shipped values differ from a fresh fit
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from scipy.optimize import brentq

import exopk
from exopk.model.parameters import available, route_file, update_toml_values

SPECIES = ("mouse", "rat")
"""Species whose intranasal table is calibrated (when their physiology file is bundled)."""
BLOOD_FRACTION = 0.03  # of the nasal dose; [125I]-albumin, mice, 2-4 %
BRAIN_PERCENT_ID_30MIN = 0.007  # %ID in brain tissue incl. olfactory bulbs; [125I]-IgG, rat, 30 min
DOSE_PARTICLES = 1e10


def brain_percent_id(params: exopk.ModelParameters, t_h: float = 0.5) -> float:
    """Extravascular brain %ID at ``t_h`` after an intranasal dose."""
    result = exopk.simulate(params, exopk.Intranasal(dose_particles=DOSE_PARTICLES), [0.0, t_h])
    return float(result.extravascular_percent_id("brain")[-1])


def absorption_for(params: exopk.ModelParameters, k_nb: float) -> float:
    """The absorption rate giving ``BLOOD_FRACTION`` of the dose to blood: k_a = F (k_other) / (1 - F)."""
    others = k_nb + params["intranasal_mucociliary_clearance_per_h"] + params["intranasal_degradation_per_h"]
    return BLOOD_FRACTION * others / (1.0 - BLOOD_FRACTION)


def fit(params: exopk.ModelParameters) -> exopk.ModelParameters:
    """Both intranasal rates fitted to the two targets (absorption depends on k_nb, so solve jointly)."""

    def configured(k_nb: float) -> exopk.ModelParameters:
        return params.replace(
            intranasal_nose_to_brain_per_h=k_nb, intranasal_absorption_per_h=absorption_for(params, k_nb)
        )

    k_nb = brentq(lambda k: brain_percent_id(configured(k)) - BRAIN_PERCENT_ID_30MIN, 0.0, 1.0, xtol=1e-14, rtol=1e-12)
    return configured(k_nb)


def write(fitted: dict[str, exopk.ModelParameters], path: Path) -> None:
    """Write fitted values into the route file's species tables, keeping sources and layout."""
    for species, params in fitted.items():
        values = {key: params[f"intranasal_{key}"] for key in ("nose_to_brain_per_h", "absorption_per_h")}
        update_toml_values(path, f"species.{species}", values)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="write fitted values to params/routes/intranasal.toml")
    parser.add_argument("--check", action="store_true", help="exit 1 if shipped values differ from a fresh fit")
    args = parser.parse_args(argv)
    fitted: dict[str, exopk.ModelParameters] = {}
    worst = 0.0
    for species in SPECIES:
        if species not in available("species"):
            print(f"{species}: no bundled physiology file; skipped")
            continue
        shipped = exopk.load_parameters(species, "msc")
        fitted[species] = new = fit(shipped)
        f_blood = new["intranasal_absorption_per_h"] / sum(
            new[f"intranasal_{k}"]
            for k in ("nose_to_brain_per_h", "absorption_per_h", "mucociliary_clearance_per_h", "degradation_per_h")
        )
        print(f"{species}:")
        for name in ("intranasal_nose_to_brain_per_h", "intranasal_absorption_per_h"):
            print(f"  {name:34s} shipped {shipped[name]:12.6g}  fitted {new[name]:12.6g}")
            worst = max(worst, abs(new[name] / shipped[name] - 1.0))
        brain = brain_percent_id(new)
        print(f"  brain tissue %ID at 30 min          target {BRAIN_PERCENT_ID_30MIN:g}  model {brain:.6g}")
        print(f"  fraction of the nasal dose to blood target {BLOOD_FRACTION:g}  model {f_blood:.6g}")
        t = np.linspace(0.0, 48.0, 4801)
        iv = exopk.simulate(new, exopk.IVBolus(dose_particles=DOSE_PARTICLES), t)
        nasal = exopk.simulate(new, exopk.Intranasal(dose_particles=DOSE_PARTICLES), t)
        auc_iv = np.trapezoid(iv.extravascular_percent_id("brain"), t)
        auc_in = np.trapezoid(nasal.extravascular_percent_id("brain"), t)
        print(f"  check: brain tissue AUC0-48h IN / IV = {auc_in:.4g} / {auc_iv:.4g} %ID·h = {auc_in / auc_iv:.3g}")
    if args.write and fitted:
        path = route_file("intranasal")
        write(fitted, path)
        print(f"wrote {path}")
    if args.check:
        print(f"largest relative difference shipped vs fitted: {worst:.2e}")
        if worst > 1e-4:
            print("shipped values are stale: rerun with --write", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
