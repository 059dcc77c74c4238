"""Joint calibration of the uncertain MSC-EV constants to every mouse IV number at once.

Each literature number is observed through its own label (the label of the study), and all
are fitted together by weighted least squares on log scale. The fit replaces the former
``calibrate_mouse_iv.py`` (four constants, four numbers); the intranasal route is still
calibrated by ``calibrate_intranasal.py`` (two rates, two analogue numbers), which this script
runs after the EV fit so that the intranasal rates see the refitted EV kinetics.

Fitted constants (6), all on log scale:

- total vascular uptake of liver, spleen (split into macrophage and non-macrophage terms by
  the ⁶⁴Cu PET shares 67 % and 76 %, literature-3.md B6) and lung (marginated leukocytes);
- degradation rate in liver cells, and one degradation rate for the other organs' cells;
- the stealth subpopulation's multiplier on both vascular uptake terms.

Data points (7), each with its source, label and an uncertainty on log scale. Points without a
reported SD get sd_log = ln 2 / 1.96 (their 95 % range is 2-fold either way): an assumption.

1. Takahashi 2013 (KAKEN report, literature-3.md B4, grade B): blood half-life ≈ 2 min,
   B16-BL6 exosomes, gLuc-lactadherin label (blood signal, slope 1-5 min).
2. Matsumoto 2020 (literature-3.md B1, grade A): plasma sEVs, half-life ≈ 7 min (label: the
   lab's lactadherin-fusion luciferase, R; observed through Gluc-lactadherin).
3-5. Morishita 2015 (literature.md §2a, V): liver 28, lung 7, spleen 1.6 %ID at 4 h, ¹²⁵I
   counts (bound + free label, decay-corrected).
6. Stealth subpopulation (literature-3.md B5, grade B): blood half-life "several hours to several
   days", read as median 14.7 h (geometric mean of 3 h and 72 h) with sd_log = ln(72/3)/3.92 (the
   words span the 95 % range): the stealth part's intact-EV blood half-life over 2-12 h.
7. Kim et al. 2019 Pharmaceutics Table 1 (a review's table): fluorophore-exosomes in CD-1 mice,
   t1/2beta = 149-792 min, read as median 5.7 h with the range as 95 %: the mixture's blood
   half-life over 2-12 h.

Points 1 and 2 describe different EV preparations with one model, so they disagree by design:
their residuals show the spread the model cannot explain. 7 points / 6 constants = 1.17.
Lázaro-Ibáñez 2021 (< 10 min) and the distribution half-life of Kim 2019 are independent checks
(docs/validation.md), not fitted. Lung uptake is all on the macrophage (marginated phagocyte) side.

Outputs: the fitted values (``--write`` writes them into ``params/ev/msc.toml``), and the
parameter uncertainty in ``params/ev/msc_calibration.toml``: log-scale covariance from the
Gauss-Newton approximation ``(JᵀJ)⁻¹`` of the weighted residuals, its correlation matrix, and
the model value and fold error of every point. ``--profiles`` adds profile likelihoods (each
constant fixed on a grid, the others refitted) to ``docs/calibration.md``.

Run:
    python calibration/calibrate.py             # fit and print
    python calibration/calibrate.py --write     # write values and covariance into params/ev/
    python calibration/calibrate.py --check     # exit 1 if the shipped values differ from a fresh fit
    python calibration/calibrate.py --profiles  # also profile likelihoods -> docs/calibration.md
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import sys
from pathlib import Path

import numpy as np
from scipy.optimize import least_squares

import exopk
from exopk.model.parameters import params_dir, update_toml_values

ROOT = Path(__file__).resolve().parents[1]
DOSE_PARTICLES = 1e10  # linear model: %ID does not depend on the dose
MACROPHAGE_SHARE = {"liver": 0.67, "spleen": 0.76, "lung": 1.0}  # literature-3.md B6; lung: marginated phagocytes
EXTRAHEPATIC = ("lung", "spleen", "kidney", "brain", "rest")
SD_LOG_DEFAULT = math.log(2.0) / 1.96
CONSTANTS = (
    "liver_total_vascular_uptake_per_h",
    "spleen_total_vascular_uptake_per_h",
    "lung_total_vascular_uptake_per_h",
    "liver_degradation_per_h",
    "extrahepatic_degradation_per_h",
    "stealth_vascular_uptake_multiplier",
)
POINTS = {
    # name: (observed, sd_log, unit, label, source)
    "takahashi2013_blood_half_life_min": (
        2.0,
        SD_LOG_DEFAULT,
        "min",
        "Gluc-lactadherin",
        "Takahashi 2013 via KAKEN 24659260 (literature-3.md B4, grade B): ~2 min, B16-BL6 exosomes",
    ),
    "matsumoto2020_blood_half_life_min": (
        7.0,
        SD_LOG_DEFAULT,
        "min",
        "Gluc-lactadherin",
        "Matsumoto 2020 J Extracell Vesicles (literature-3.md B1, grade A): ~7 min, mouse plasma sEVs",
    ),
    "morishita2015_liver_percent_id_4h": (
        28.0,
        SD_LOG_DEFAULT,
        "%ID",
        "I-125",
        "Morishita 2015 J Pharm Sci 104:705 (literature.md §2a): 28 %ID",
    ),
    "morishita2015_lung_percent_id_4h": (7.0, SD_LOG_DEFAULT, "%ID", "I-125", "Morishita 2015: 7 %ID"),
    "morishita2015_spleen_percent_id_4h": (1.6, SD_LOG_DEFAULT, "%ID", "I-125", "Morishita 2015: 1.6 %ID"),
    "stealth_blood_half_life_h": (
        math.sqrt(3.0 * 72.0),
        math.log(72.0 / 3.0) / 3.92,
        "h",
        "none",
        "KAKEN 20H04533 FY2021 (literature-3.md B5, grade B): 'several hours to several days'",
    ),
    "kim2019_blood_half_life_beta_h": (
        math.sqrt(149.0 * 792.0) / 60.0,
        math.log(792.0 / 149.0) / 3.92,
        "h",
        "none",
        "Kim et al. 2019 Pharmaceutics 11:649 Table 1 (review; primary ref. [22] not read): fluorophore-exosomes "
        "i.v., CD-1 mice, t1/2beta = 149-792 min, read as median 5.7 h (geometric mean) with the range as 95 % "
        "(dev/literature/issue13-search.md §4 #1)",
    ),
}
CENSORED_ABOVE: set[str] = set()


def with_constants(params: exopk.ModelParameters, x: np.ndarray) -> exopk.ModelParameters:
    """Parameters with the six constants (natural scale) set."""
    source = "calibrated jointly (calibration/calibrate.py)"
    changes = {}
    for organ, total in zip(("liver", "spleen", "lung"), x[:3], strict=True):
        share = MACROPHAGE_SHARE[organ]
        changes[f"{organ}_macrophage_uptake_per_h"] = share * total
        changes[f"{organ}_uptake_vascular_per_h"] = (1.0 - share) * total
    changes["liver_degradation_per_h"] = x[3]
    changes.update({f"{organ}_degradation_per_h": x[4] for organ in EXTRAHEPATIC})
    out = params.replace(source=source, **changes)
    subs = []
    for sub in out.subpopulations:
        if sub.name == "stealth":
            mult = tuple(
                (c, float(x[5]) if c in ("macrophage_uptake_per_h", "uptake_vascular_per_h") else f)
                for c, f in sub.multipliers
            )
            sub = type(sub)(sub.name, sub.share, mult, sub.sources)
        subs.append(sub)
    import dataclasses

    return dataclasses.replace(out, subpopulations=tuple(subs))


def constants_of(params: exopk.ModelParameters) -> np.ndarray:
    """The six constants of a parameter set (natural scale)."""
    total = [
        params[f"{o}_macrophage_uptake_per_h"] + params[f"{o}_uptake_vascular_per_h"]
        for o in ("liver", "spleen", "lung")
    ]
    stealth = next(s for s in params.subpopulations if s.name == "stealth")
    return np.array(
        total
        + [
            params["liver_degradation_per_h"],
            params["spleen_degradation_per_h"],
            stealth.multiplier("uptake_vascular_per_h"),
        ]
    )


def _slope_half_life(t, y) -> float:
    return float((t[1] - t[0]) * math.log(2) / math.log(y[0] / y[1]))


def model_points(params: exopk.ModelParameters) -> dict[str, float]:
    """Model value of every calibration point (units of POINTS)."""
    dose = exopk.IVBolus(dose_particles=DOSE_PARTICLES)
    t_min = np.array([0.0, 1.0, 5.0])
    luc = exopk.observe.simulate_label(params, dose, t_min / 60.0, "Gluc-lactadherin")
    blood_luc = luc.label_percent_id("blood")[1:]
    half_min = _slope_half_life(t_min[1:], blood_luc)
    iodine = exopk.observe.simulate_label(params, dose, np.array([0.0, 4.0]), "I-125")
    stealth = next(p for n, _, p in params.parts() if n == "stealth")
    t_h = np.array([0.0, 2.0, 12.0])
    blood_stealth = exopk.simulate(stealth, dose, t_h).percent_id("blood")[1:]
    blood_mixture = exopk.simulate(params, dose, t_h).percent_id("blood")[1:]
    return {
        "takahashi2013_blood_half_life_min": half_min,
        "matsumoto2020_blood_half_life_min": half_min,
        "morishita2015_liver_percent_id_4h": float(iodine.label_percent_id("liver", decay_corrected=True)[-1]),
        "morishita2015_lung_percent_id_4h": float(iodine.label_percent_id("lung", decay_corrected=True)[-1]),
        "morishita2015_spleen_percent_id_4h": float(iodine.label_percent_id("spleen", decay_corrected=True)[-1]),
        "stealth_blood_half_life_h": _slope_half_life(t_h[1:], blood_stealth),
        "kim2019_blood_half_life_beta_h": _slope_half_life(t_h[1:], blood_mixture),
    }


def residuals(params: exopk.ModelParameters) -> np.ndarray:
    """Weighted log residuals (model - observed) / sd_log, in POINTS order; censored points are 0 when satisfied."""
    m = model_points(params)
    out = []
    for name, (observed, sd_log, *_rest) in POINTS.items():
        value = m[name]
        if not (math.isfinite(value) and value > 0):  # e.g. a blood curve that rises: far from any data
            out.append(100.0)
            continue
        r = (math.log(value) - math.log(observed)) / sd_log
        out.append(max(r, 0.0) if name in CENSORED_ABOVE else r)
    return np.array(out)


def fit(base: exopk.ModelParameters, fixed: dict[int, float] | None = None, x0=None):
    """Least-squares fit on log scale; ``fixed`` maps constant index -> log value held fixed (profiles)."""
    fixed = fixed or {}
    start = np.log(constants_of(base)) if x0 is None else np.asarray(x0, dtype=float)
    free = [i for i in range(len(CONSTANTS)) if i not in fixed]

    def full(z):
        x = start.copy()
        x[free] = z
        for i, v in fixed.items():
            x[i] = v
        return x

    def fun(z):
        return residuals(with_constants(base, np.exp(full(z))))

    lower = np.log(np.array([1e-2, 1e-2, 1e-2, 1e-4, 1e-4, 1e-6]))[free]
    upper = np.log(np.array([1e4, 1e4, 1e4, 1e2, 1e2, 1.0]))[free]
    z0 = np.clip(start[free], lower + 1e-9, upper - 1e-9)
    sol = least_squares(fun, z0, bounds=(lower, upper), xtol=1e-12, ftol=1e-12, gtol=1e-12, diff_step=1e-6)
    x = full(sol.x)
    return x, sol


def uncertainty(base: exopk.ModelParameters, log_x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Newton covariance of the log constants, (JᵀJ)⁻¹, and the correlation matrix."""
    h = 1e-4
    r0 = residuals(with_constants(base, np.exp(log_x)))
    jac = np.empty((r0.size, log_x.size))
    for j in range(log_x.size):
        up, down = log_x.copy(), log_x.copy()
        up[j] += h
        down[j] -= h
        jac[:, j] = (residuals(with_constants(base, np.exp(up))) - residuals(with_constants(base, np.exp(down)))) / (
            2 * h
        )
    cov = np.linalg.pinv(jac.T @ jac)
    sd = np.sqrt(np.diag(cov))
    return cov, cov / np.outer(sd, sd)


def write(fitted: exopk.ModelParameters, log_x, cov, corr, points: dict[str, float]) -> None:
    """Write the values into params/ev/msc.toml and the uncertainty into params/ev/msc_calibration.toml."""
    path = params_dir() / "ev" / "msc.toml"
    for organ in ("liver", "spleen", "lung"):
        update_toml_values(
            path,
            f"organs.{organ}",
            {
                "macrophage_uptake_per_h": fitted[f"{organ}_macrophage_uptake_per_h"],
                "uptake_vascular_per_h": fitted[f"{organ}_uptake_vascular_per_h"],
            },
        )
    for organ in ("liver",) + EXTRAHEPATIC:
        update_toml_values(path, f"organs.{organ}", {"degradation_per_h": fitted[f"{organ}_degradation_per_h"]})
    m = float(np.exp(log_x[5]))
    update_toml_values(
        path, "subpopulations.stealth", {"macrophage_uptake_multiplier": m, "uptake_vascular_multiplier": m}
    )
    lines = [
        "# Uncertainty of the jointly calibrated MSC-EV constants (written by calibration/calibrate.py --write).",
        "# Natural-log scale: log_value and covariance are of ln(constant). Gauss-Newton approximation (J^T J)^-1",
        "# of the weighted log residuals; sd_log of points without a reported SD is ln 2 / 1.96 (assumption).",
        "# Use exopk.model.uncertainty.calibration_samples() to draw parameter sets for simulate_batch.",
        "",
        "[metadata]",
        'ev = "msc"',
        'species = "mouse"',
        f"n_points = {len(POINTS)}",
        f"n_constants = {len(CONSTANTS)}",
        "",
        "[constants]",
    ]
    for name, v in zip(CONSTANTS, log_x, strict=True):
        lines.append(f"{name} = {{ log_value = {v:.8g}, value = {math.exp(v):.8g} }}")
    lines += ["", "[covariance]", "# rows in the order of [constants]"]
    for name, row in zip(CONSTANTS, cov, strict=True):
        lines.append(f"{name} = [{', '.join(f'{c:.6g}' for c in row)}]")
    lines += ["", "[correlation]"]
    for name, row in zip(CONSTANTS, corr, strict=True):
        lines.append(f"{name} = [{', '.join(f'{c:.4f}' for c in row)}]")
    lines += ["", "[points]", "# model value at the fit and fold error (model / observed)"]
    for name, (observed, sd_log, unit, label, source) in POINTS.items():
        lines.append(
            f"{name} = {{ observed = {observed:.6g}, model = {points[name]:.6g}, fold_error = "
            f'{points[name] / observed:.4g}, sd_log = {sd_log:.4g}, unit = "{unit}", label = "{label}", '
            f'source = "{source}" }}'
        )
    (params_dir() / "ev" / "msc_calibration.toml").write_text("\n".join(lines) + "\n", encoding="utf-8")


def _intranasal(argv: list[str]) -> int:
    spec = importlib.util.spec_from_file_location(
        "calibrate_intranasal", ROOT / "calibration" / "calibrate_intranasal.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main(argv)


def profiles(base: exopk.ModelParameters, log_x: np.ndarray, half_width: float = 1.5, n: int = 5) -> list[str]:
    """Profile likelihood of each constant: chi² increase with the constant fixed and the rest refitted."""
    chi2_min = float(np.sum(residuals(with_constants(base, np.exp(log_x))) ** 2))
    lines = [
        "| constant | " + " | ".join(f"x{math.exp(d):.3g}" for d in np.linspace(-half_width, half_width, n)) + " |"
    ]
    lines.append("|---" * (n + 1) + "|")
    for i, name in enumerate(CONSTANTS):
        row = []
        for d in np.linspace(-half_width, half_width, n):
            x, sol = fit(base, fixed={i: log_x[i] + d}, x0=log_x)
            row.append(f"{float(np.sum(sol.fun**2)) - chi2_min:.3g}")
        lines.append(f"| `{name}` | " + " | ".join(row) + " |")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="write fitted values and covariance into params/ev/")
    parser.add_argument("--check", action="store_true", help="exit 1 if shipped values differ from a fresh fit")
    parser.add_argument("--profiles", action="store_true", help="profile likelihoods -> docs/calibration.md")
    args = parser.parse_args(argv)
    shipped = exopk.load_parameters("mouse", "msc")
    log_x, sol = fit(shipped)
    fitted = with_constants(shipped, np.exp(log_x))
    points = model_points(fitted)
    cov, corr = uncertainty(shipped, log_x)
    print(
        f"{len(POINTS)} points, {len(CONSTANTS)} constants (ratio {len(POINTS) / len(CONSTANTS):.2f}); "
        f"chi2 = {np.sum(sol.fun**2):.4g}"
    )
    print("constant                                 shipped        fitted   sd (log)")
    for name, s, f, sd in zip(CONSTANTS, constants_of(shipped), np.exp(log_x), np.sqrt(np.diag(cov)), strict=True):
        print(f"  {name:38s} {s:12.6g}  {f:12.6g}  {sd:8.3g}")
    print("point                                               observed      model   fold")
    for name, (observed, *_r) in POINTS.items():
        print(f"  {name:48s} {observed:10.4g} {points[name]:10.4g} {points[name] / observed:6.3g}")
    print("correlation matrix (log constants):")
    for name, row in zip(CONSTANTS, corr, strict=True):
        print(f"  {name[:24]:24s} " + " ".join(f"{c:6.2f}" for c in row))
    status = 0
    if args.write:
        write(fitted, log_x, cov, corr, points)
        print("wrote params/ev/msc.toml and params/ev/msc_calibration.toml")
        status = max(status, _intranasal(["--write"]))
    if args.check:
        worst = float(np.max(np.abs(np.exp(log_x) / constants_of(shipped) - 1.0)))
        print(f"largest relative difference shipped vs fitted: {worst:.2e}")
        if worst > 1e-3:
            print("shipped values are stale: rerun with --write", file=sys.stderr)
            status = 1
        status = max(status, _intranasal(["--check"]))
    if args.profiles:
        lines = [
            "# Calibration: profile likelihoods",
            "",
            "Generated by `calibration/calibrate.py --profiles`. Increase of chi² (weighted log residuals) when",
            "one constant is fixed at the fitted value times the factor shown and the others are refitted;",
            "an increase below 3.84 is inside the 95 % profile interval. A flat row means the data do not",
            "determine that constant.",
            "",
        ]
        lines += profiles(shipped, log_x)
        (ROOT / "docs" / "calibration.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
        print("wrote docs/calibration.md")
    return status


if __name__ == "__main__":
    raise SystemExit(main())
