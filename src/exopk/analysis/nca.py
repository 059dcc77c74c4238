"""Non-compartmental analysis (NCA) of concentration-time curves, simulated or observed.

The rules follow PKNCA (Denney et al., PKNCA R package, 2015-; ``pk.calc.half.life``,
``pk.calc.c0``) and Phoenix WinNonlin (as reproduced to 1e-3 by the NonCompart R package,
Han S 2018, "Validation of noncompartmental analysis performed by NonCompart R package",
Transl Clin Pharmacol 26:10-17):

* **AUC and AUMC**, ``auc_method``: ``"linear-up/log-down"`` (default; log-trapezoids on
  segments where the concentration falls and both ends are positive, linear trapezoids
  elsewhere; PKNCA ``"lin up/log down"``, Phoenix "Linear Up Log Down") or ``"linear"``
  (linear trapezoids throughout; PKNCA ``"linear"``, Phoenix "Linear Trapezoidal Linear
  Interpolation"). Areas run from the first sample (or from C0 at t = 0, below) to Tlast.
* **C0 of an intravascular bolus** (dose at t = 0, ``intravascular=True``, ``infusion_h=0``,
  ``systemic=True``): the observed concentration at t = 0 if there is one and it is positive;
  otherwise back-extrapolated log-linearly through the first two samples after the dose if the
  second is lower and positive, else the first sample (PKNCA ``pk.calc.c0`` methods ``c0``,
  ``logslope``, ``c1``, in that order; Phoenix does the same). The extrapolated point enters the
  areas (so CL, Vss and Vz), never Cmax, Tmax or λz; ``c0_back_extrapolated`` says where it was
  used and ``auc_back_extrapolated_percent`` how much of AUC0–∞ it makes.
* **λz**, the terminal rate constant: log-linear least-squares fits to the last *k* positive
  points, k ≥ ``min_points`` (3), for every k. The best adjusted R² is taken over all these fits;
  the fits with a negative slope whose adjusted R² exceeds best − 1e-4 qualify, and the
  qualifying fit with the most points is chosen (PKNCA ``adj.r.squared.factor = 1e-4``,
  ``min.hl.points = 3``; Phoenix "Best Fit", the same rule). Which points may enter,
  ``lambda_z_rule``:

  - ``"pknca"`` (default): points strictly after Tmax, for every route (PKNCA's default
    ``allow.tmax.in.half.life = FALSE``).
  - ``"winnonlin"``: Tmax itself may enter for an intravascular bolus; points strictly after
    Tmax for infusions and extravascular doses (Phoenix; NonCompart ``BestSlope``).

  The default is PKNCA's: after a bolus the first sample is the one most often still in the
  distribution phase, and excluding it can only shorten the window, never pull it into that
  phase. On R's Indometh data the two rules differ for one subject of six (subject 4: 10
  points from 0.5 h vs 11 from 0.25 h; λz 0.4291 vs 0.4554 /h).
* **BLQ** samples (zero, or below ``loq`` when given), ``blq``: ``"zero"`` (default: set to 0;
  they enter areas as zeros and never λz), ``"drop"`` (removed), ``"zero-before-tmax"`` (0 before
  Tmax, removed from Tmax on) or ``"loq/2"`` (set to ``loq / 2``).
* AUC0–∞ = AUC0–tlast + Clast/λz with the observed Clast; AUMC0–∞ likewise; MRT = AUMC0–∞ / AUC0–∞
  (minus half the infusion time for an infusion).
* Dose-based results need a dose and a systemic (blood or plasma) concentration
  (``systemic=True``; organ and tissue curves give none): CL = dose / AUC0–∞, Vss = CL · MRT and
  Vz = CL / λz for intravascular doses; CL/F and Vz/F, the same ratios, for extravascular ones.
  Their unit is the concentration's volume unit (/h): see :func:`nca_units` and
  :func:`dose_in_concentration_amount`.
* Sparse (destructive) sampling: NCA of the mean profile, with Bailer's standard error of the
  AUC (Bailer 1988, J Pharmacokinet Biopharm 16:303; Nedelman, Gibiansky & Lau 1995, Pharm Res
  12:124) from linear-trapezoid weights.

Everything is vectorised over curves (rows), so thousands of simulated subjects are analysed at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

from exopk.errors import NCAError

LAMBDA_Z_MIN_POINTS = 3
"""Fewest points in the terminal log-linear fit (PKNCA ``min.hl.points``)."""
ADJ_R2_TOLERANCE = 1e-4
"""Fits with adjusted R² within this of the best count as equally good; the longest wins."""
AUC_METHODS = ("linear-up/log-down", "linear")
"""Values of ``auc_method``."""
LAMBDA_Z_RULES = ("pknca", "winnonlin")
"""Values of ``lambda_z_rule``."""
BLQ_RULES = ("zero", "drop", "zero-before-tmax", "loq/2")
"""Values of ``blq``."""
_BLOCK_ELEMENTS = 1 << 17  # curves x times analysed at once (~1 MB per temporary)


NCA_PARAMETERS: tuple[str, ...] = (
    "cmax",
    "tmax_h",
    "tlast_h",
    "clast",
    "c0",
    "c0_back_extrapolated",
    "auc_0_tlast",
    "aumc_0_tlast",
    "lambda_z_per_h",
    "lambda_z_n_points",
    "lambda_z_start_h",
    "lambda_z_r2_adjusted",
    "half_life_h",
    "auc_0_inf",
    "auc_extrapolated_percent",
    "auc_back_extrapolated_percent",
    "aumc_0_inf",
    "mrt_h",
    "cl",
    "vss",
    "vz",
    "cl_f",
    "vz_f",
)
"""Names of the NCA results, in output order (see :class:`NCAResult`)."""

DOSE_PARAMETERS: tuple[str, ...] = ("cl", "vss", "vz", "cl_f", "vz_f")
"""The results that need a dose and a systemic concentration."""

_AMOUNT_SCALES: tuple[dict[str, float], ...] = (
    {"g": 1.0, "mg": 1e-3, "ug": 1e-6, "µg": 1e-6, "μg": 1e-6, "mcg": 1e-6, "ng": 1e-9, "pg": 1e-12},
    {"mol": 1.0, "mmol": 1e-3, "umol": 1e-6, "µmol": 1e-6, "μmol": 1e-6, "nmol": 1e-9, "pmol": 1e-12},
)


def _split_concentration_unit(conc_unit: str) -> tuple[str, str] | None:
    """``"ng/mL"`` -> ``("ng", "mL")``; None when the unit is not one amount over one volume."""
    amount, sep, volume = conc_unit.partition("/")
    if not sep or "/" in volume or not amount.strip() or not volume.strip():
        return None
    return amount.strip(), volume.strip()


def _amount_factor(from_unit: str, to_unit: str) -> float | None:
    """Factor taking an amount in ``from_unit`` to ``to_unit``; None if they are not comparable."""
    if from_unit == to_unit:
        return 1.0
    for scales in _AMOUNT_SCALES:
        if from_unit in scales and to_unit in scales:
            return scales[from_unit] / scales[to_unit]
    return None


def dose_in_concentration_amount(dose: float, dose_unit: str, conc_unit: str) -> float:
    """The dose in the amount unit of the concentration, so that CL comes out in volume/h.

    Parameters
    ----------
    dose : float
        Dose, in ``dose_unit``.
    dose_unit : str
        E.g. ``"mg"``, ``"particles"``, ``"%ID"``.
    conc_unit : str
        Concentration unit, one amount over one volume (``"ng/mL"``, ``"particles/mL"``).

    Returns
    -------
    float
        ``dose`` in the concentration's amount unit (e.g. 25 mg -> 2.5e7 for ``ng/mL``).

    Raises
    ------
    NCAError
        The concentration unit is not amount/volume, or the two amounts are not comparable.
    """
    split = _split_concentration_unit(conc_unit)
    if split is None:
        raise NCAError(
            f"concentration unit {conc_unit!r} is not an amount per volume (e.g. ng/mL); "
            "CL and volumes need a concentration."
        )
    factor = _amount_factor(dose_unit, split[0])
    if factor is None:
        raise NCAError(
            f"dose unit {dose_unit!r} cannot be converted to {split[0]!r}, the amount unit of the "
            f"concentration {conc_unit!r}; give the dose in {split[0]!r}."
        )
    return dose * factor


def nca_units(conc_unit: str, dose_unit: str | None = None) -> dict[str, str]:
    """Units of each NCA result for concentrations in ``conc_unit`` (and doses in ``dose_unit``).

    CL, CL/F are in ``<volume>/h`` and Vss, Vz, Vz/F in ``<volume>``, the volume unit of the
    concentration (``ng/mL`` and a dose in mg: mL/h and mL, once the dose is converted by
    :func:`dose_in_concentration_amount`). Where no clearance can be given (no dose unit, or a
    unit that is not an amount per volume, such as %ID), their unit reads ``"(not reported)"``.
    """
    auc = f"{conc_unit}·h"
    split = _split_concentration_unit(conc_unit)
    if dose_unit is not None and split is not None and _amount_factor(dose_unit, split[0]) is not None:
        flow, volume = f"{split[1]}/h", split[1]
    else:
        flow = volume = "(not reported)"
    return {
        "cmax": conc_unit,
        "tmax_h": "h",
        "tlast_h": "h",
        "clast": conc_unit,
        "c0": conc_unit,
        "c0_back_extrapolated": "1",
        "auc_0_tlast": auc,
        "aumc_0_tlast": f"{conc_unit}·h²",
        "lambda_z_per_h": "1/h",
        "lambda_z_n_points": "1",
        "lambda_z_start_h": "h",
        "lambda_z_r2_adjusted": "1",
        "half_life_h": "h",
        "auc_0_inf": auc,
        "auc_extrapolated_percent": "%",
        "auc_back_extrapolated_percent": "%",
        "aumc_0_inf": f"{conc_unit}·h²",
        "mrt_h": "h",
        "cl": flow,
        "vss": volume,
        "vz": volume,
        "cl_f": flow,
        "vz_f": volume,
    }


@dataclass(frozen=True, slots=True)
class NCAResult:
    """NCA results of one or many curves: each attribute is an array of shape ``(n_curves,)``.

    Concentration units are those of the input (written ``C`` here); times are hours; dose-based
    results are in the dose's amount unit over C (volume, or volume/h). NaN where a quantity is
    undefined (no terminal phase found, no dose given, not a bolus, ...).

    Attributes
    ----------
    cmax, tmax_h : ndarray
        Highest observed concentration (C) and its first time (h).
    tlast_h, clast : ndarray
        Last time with a positive concentration (h), and that concentration (C).
    c0 : ndarray
        Concentration at the dose (t = 0) of an intravascular bolus (C): observed, or
        back-extrapolated (see the module docstring). NaN for other routes.
    c0_back_extrapolated : ndarray
        1.0 where ``c0`` was back-extrapolated (and entered the areas), 0.0 where observed.
    auc_0_tlast, aumc_0_tlast : ndarray
        Areas under the curve (C·h) and under the first moment (C·h²) to ``tlast_h``, from
        ``c0`` at t = 0 for a bolus, else from the first sample.
    lambda_z_per_h, lambda_z_n_points, lambda_z_start_h, lambda_z_r2_adjusted : ndarray
        Terminal rate constant (1/h), points in its fit, first time of the fit (h), adjusted R².
    half_life_h : ndarray
        ln 2 / λz (h).
    auc_0_inf, aumc_0_inf : ndarray
        Extrapolated to infinity with the observed Clast (C·h, C·h²).
    auc_extrapolated_percent : ndarray
        Share of AUC0–∞ after Tlast (%).
    auc_back_extrapolated_percent : ndarray
        Share of AUC0–∞ between t = 0 and the first sample when ``c0`` was back-extrapolated
        (%; 0 where it was observed, NaN for other routes). Phoenix's AUC_%Back_Ext_obs.
    mrt_h : ndarray
        Mean residence time, AUMC0–∞ / AUC0–∞ minus half the infusion time (h).
    cl, vss, vz : ndarray
        dose / AUC0–∞, CL · MRT and CL / λz, for intravascular doses and systemic
        concentrations only; NaN otherwise.
    cl_f, vz_f : ndarray
        dose / AUC0–∞ and CL/F / λz for extravascular doses (apparent, divided by the unknown
        bioavailability F) and systemic concentrations only; NaN otherwise.
    metadata : Mapping
        Rules used (AUC method, λz rule, BLQ rule, C0), dose and route, and ``notes``: one
        sentence for each thing the analysis did that the numbers alone do not show.
    """

    cmax: np.ndarray
    tmax_h: np.ndarray
    tlast_h: np.ndarray
    clast: np.ndarray
    c0: np.ndarray
    c0_back_extrapolated: np.ndarray
    auc_0_tlast: np.ndarray
    aumc_0_tlast: np.ndarray
    lambda_z_per_h: np.ndarray
    lambda_z_n_points: np.ndarray
    lambda_z_start_h: np.ndarray
    lambda_z_r2_adjusted: np.ndarray
    half_life_h: np.ndarray
    auc_0_inf: np.ndarray
    auc_extrapolated_percent: np.ndarray
    auc_back_extrapolated_percent: np.ndarray
    aumc_0_inf: np.ndarray
    mrt_h: np.ndarray
    cl: np.ndarray
    vss: np.ndarray
    vz: np.ndarray
    cl_f: np.ndarray
    vz_f: np.ndarray
    metadata: Mapping = field(default_factory=dict)

    def as_dict(self, index: int = 0) -> dict[str, float]:
        """The results of curve ``index`` as ``{name: float}`` in :data:`NCA_PARAMETERS` order."""
        return {name: float(getattr(self, name)[index]) for name in NCA_PARAMETERS}


def _check_curves(t_h: ArrayLike, conc: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    try:
        t = np.asarray(t_h, dtype=float)
        c = np.asarray(conc, dtype=float)
    except (TypeError, ValueError):
        raise NCAError(f"`t_h` and `conc` must be numeric arrays; got {t_h!r}, {conc!r}.") from None
    if t.ndim != 1 or t.size < 2:
        raise NCAError(f"`t_h` must be a 1-D array of at least 2 times (h); got shape {t.shape}.")
    if not np.all(np.isfinite(t)) or np.any(np.diff(t) <= 0):
        raise NCAError(f"`t_h` must be finite and strictly increasing (h); got {t[:6]!r}...")
    c2 = np.atleast_2d(c)
    if c2.ndim != 2 or c2.shape[-1] != t.size:
        raise NCAError(
            f"`conc` must have shape (n_times,) or (n_curves, n_times) with n_times = {t.size}; got {c.shape}."
        )
    if not np.all(np.isfinite(c2)):
        raise NCAError("`conc` holds NaN or infinite values; drop those samples first.")
    if np.any(c2 < 0):
        raise NCAError(f"`conc` must be non-negative; got a minimum of {float(c2.min())!r}.")
    return t, c2


def auc_segments(
    t_h: np.ndarray, conc: np.ndarray, method: Literal["linear-up/log-down", "linear"] = "linear-up/log-down"
) -> tuple[np.ndarray, np.ndarray]:
    """AUC and AUMC of each interval between samples, linear-up/log-down or linear.

    .. math::

        \\text{log-down } (c_2 < c_1,\\ c_2 > 0):\\quad
        AUC = \\frac{(c_1 - c_2)\\,\\Delta t}{\\ln(c_1/c_2)},\\quad
        AUMC = \\frac{t_1 c_1 - t_2 c_2}{k} + \\frac{c_1 - c_2}{k^2},\\quad k = \\frac{\\ln(c_1/c_2)}{\\Delta t}

    and linear trapezoids, :math:`AUC = (c_1 + c_2)\\Delta t / 2`,
    :math:`AUMC = (t_1 c_1 + t_2 c_2)\\Delta t / 2`, otherwise (everywhere for ``"linear"``).

    Parameters
    ----------
    t_h : ndarray, shape (n_times,)
        Sample times (h).
    conc : ndarray, shape (n_curves, n_times)
        Concentrations (C).
    method : {"linear-up/log-down", "linear"}
        Trapezoid rule.

    Returns
    -------
    auc, aumc : ndarray, shape (n_curves, n_times - 1)
        Areas (C·h) and first-moment areas (C·h²) of each interval.
    """
    t1, t2 = t_h[:-1], t_h[1:]
    c1, c2 = conc[..., :-1], conc[..., 1:]
    dt = t2 - t1
    auc = 0.5 * (c1 + c2) * dt
    aumc = 0.5 * (t1 * c1 + t2 * c2) * dt
    if method == "linear":
        return auc, aumc
    down = (c2 < c1) & (c2 > 0)
    if np.any(down):
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.log(np.where(down, c1, 1.0) / np.where(down, c2, 0.5))
            k = ratio / dt
            log_auc = (c1 - c2) / k
            log_aumc = (t1 * c1 - t2 * c2) / k + (c1 - c2) / k**2
        auc = np.where(down, log_auc, auc)
        aumc = np.where(down, log_aumc, aumc)
    return auc, aumc


def lambda_z(
    t_h: np.ndarray,
    conc: np.ndarray,
    *,
    min_points: int = LAMBDA_Z_MIN_POINTS,
    tolerance: float = ADJ_R2_TOLERANCE,
    include_tmax: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Terminal rate constant of each curve by the adjusted-R² rule (see the module docstring).

    All candidate fits (the last k positive points after Cmax, for every k) are computed at
    once from reverse cumulative sums. With :math:`n` points,
    :math:`R^2_{adj} = 1 - (1 - R^2)(n - 1)/(n - 2)`.

    Parameters
    ----------
    t_h : ndarray, shape (n_times,)
        Sample times (h).
    conc : ndarray, shape (n_curves, n_times)
        Concentrations (C), zeros allowed (they never enter a fit).
    min_points : int, default 3
        Fewest points in a fit.
    tolerance : float, default 1e-4
        Fits with adjusted R² above the best minus this qualify; the longest wins.
    include_tmax : bool, default False
        Whether the Tmax sample may enter the fit (Phoenix, bolus) or only later ones (PKNCA).

    Returns
    -------
    lambda_z_per_h, n_points, start_h, r2_adjusted : ndarray, shape (n_curves,)
        NaN (and 0 points) where no qualifying fit of at least ``min_points`` points has a
        negative slope.
    """
    m, n = conc.shape
    imax = np.argmax(conc, axis=1)
    first = imax if include_tmax else imax + 1
    index = np.arange(n)[None, :]
    valid = (index >= first[:, None]) & (conc > 0)
    w = valid.astype(float)
    x1 = t_h - t_h[-1]  # centred on the last time for round-off

    def rsum(a: np.ndarray) -> np.ndarray:
        return np.cumsum(a[..., ::-1], axis=-1)[..., ::-1]

    if np.all(valid | (index < first[:, None])):
        # Every point from the first allowed one on is positive (simulated curves): the windows'
        # sums over x are the same for every curve, and entries before it never enter a valid
        # window's sums. Same numbers as the general branch, in about half the time.
        y = np.log(np.where(conc > 0, conc, 1.0))
        k = np.broadcast_to(rsum(np.ones(n)), conc.shape)
        sx, sxx = np.broadcast_to(rsum(x1), conc.shape), np.broadcast_to(rsum(x1 * x1), conc.shape)
        sy, sxy, syy = rsum(y), rsum(y * x1), rsum(y * y)
    else:
        x = np.broadcast_to(x1, conc.shape)
        with np.errstate(divide="ignore"):
            y = np.where(valid, np.log(np.where(valid, conc, 1.0)), 0.0)
        k = rsum(w)
        sx, sy = rsum(w * x), rsum(w * y)
        sxx, sxy, syy = rsum(w * x * x), rsum(w * x * y), rsum(w * y * y)
    with np.errstate(divide="ignore", invalid="ignore"):
        dxx = k * sxx - sx * sx
        dxy = k * sxy - sx * sy
        dyy = k * syy - sy * sy
        slope = dxy / dxx
        r2 = dxy * dxy / (dxx * dyy)
        adj = 1.0 - (1.0 - r2) * (k - 1.0) / (k - 2.0)
    # Candidate windows start at a valid point; the best adjusted R² is over all of them,
    # whatever their slope (PKNCA takes the max before it asks for lambda.z > 0).
    candidate = valid & (k >= min_points) & (dxx > 0) & (dyy > 0) & np.isfinite(adj)
    adj = np.where(candidate, adj, -np.inf)
    best = adj.max(axis=1)
    good = candidate & (slope < 0) & (adj > best[:, None] - tolerance)
    # The longest good fit: windows end at the last point, so the earliest good start.
    start = np.argmax(good, axis=1)
    found = good.any(axis=1)
    rows = np.arange(m)
    lam = np.where(found, -slope[rows, start], np.nan)
    npts = np.where(found, k[rows, start], 0.0)
    start_h = np.where(found, t_h[start], np.nan)
    r2_adj = np.where(found, adj[rows, start], np.nan)
    return lam, npts, start_h, r2_adj


@dataclass(frozen=True, slots=True)
class _Rules:
    dose: float | None
    infusion_h: float
    intravascular: bool
    systemic: bool
    auc_method: Literal["linear-up/log-down", "linear"]
    lambda_z_rule: Literal["pknca", "winnonlin"]
    back_extrapolate_c0: bool
    min_points: int

    @property
    def bolus(self) -> bool:
        return self.intravascular and self.infusion_h == 0.0 and self.systemic


def _back_extrapolated_c0(t1: float, t2: float, c1: np.ndarray, c2: np.ndarray) -> np.ndarray:
    """C at t = 0 from the first two samples after the dose (PKNCA ``logslope``, else ``c1``)."""
    falls = (c2 < c1) & (c2 > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        slope = (np.log(np.where(falls, c2, 1.0)) - np.log(np.where(falls, c1, 1.0))) / (t2 - t1)
        logslope = np.exp(np.log(np.where(falls, c1, 1.0)) - slope * t1)
    return np.where(falls, logslope, c1)


def _nca_core(t: np.ndarray, c: np.ndarray, rules: _Rules) -> dict[str, np.ndarray]:
    """NCA of curves without missing samples: every name of :data:`NCA_PARAMETERS`."""
    m, n = c.shape
    rows = np.arange(m)
    imax = np.argmax(c, axis=1)
    cmax = c[rows, imax]
    tmax = t[imax]
    positive = c > 0
    ilast = np.where(positive.any(axis=1), n - 1 - np.argmax(positive[:, ::-1], axis=1), -1)
    has = ilast >= 0
    tlast = np.where(has, t[np.maximum(ilast, 0)], np.nan)
    clast = np.where(has, c[rows, np.maximum(ilast, 0)], np.nan)
    include_tmax = rules.lambda_z_rule == "winnonlin" and rules.bolus
    lam, npts, start_h, r2_adj = lambda_z(t, c, min_points=rules.min_points, include_tmax=include_tmax)

    # Areas on the curve with C0 of a bolus in front (the observed samples stay as they are).
    nan = np.full(m, np.nan)
    c0, extrapolated = nan, np.zeros(m)
    t_area, c_area, shift = t, c, 0
    if rules.bolus and rules.back_extrapolate_c0 and t[0] >= 0.0:
        if t[0] > 0.0:
            c0 = _back_extrapolated_c0(t[0], t[1], c[:, 0], c[:, 1])
            extrapolated = np.ones(m)
            t_area, c_area, shift = np.concatenate([[0.0], t]), np.column_stack([c0, c]), 1
        else:
            missing = c[:, 0] <= 0.0
            c0 = c[:, 0].copy()
            if np.any(missing) and n >= 3:
                c0 = np.where(missing, _back_extrapolated_c0(t[1], t[2], c[:, 1], c[:, 2]), c0)
                extrapolated = missing.astype(float)
                c_area = np.column_stack([c0, c[:, 1:]])
    elif rules.bolus and t[0] >= 0.0:
        c0 = np.where(t[0] == 0.0, c[:, 0], np.nan)
    seg_auc, seg_aumc = auc_segments(t_area, c_area, rules.auc_method)
    n_area = t_area.size
    upto = np.arange(n_area - 1)[None, :] < (ilast + shift)[:, None]  # segments ending at or before tlast
    auc_last = np.where(upto, seg_auc, 0.0).sum(axis=1)
    aumc_last = np.where(upto, seg_aumc, 0.0).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        auc_inf = auc_last + clast / lam
        aumc_inf = aumc_last + tlast * clast / lam + clast / lam**2
        extrapolated_pct = 100.0 * (auc_inf - auc_last) / auc_inf
        if rules.bolus and not np.all(np.isnan(c0)):
            back_pct = np.where(extrapolated > 0, 100.0 * seg_auc[:, 0] / auc_inf, 0.0)
        else:
            back_pct = nan
        mrt = aumc_inf / auc_inf - rules.infusion_h / 2.0
        dose_ok = rules.dose is not None and rules.systemic
        per_auc = rules.dose / auc_inf if dose_ok else nan
    out = {
        "cmax": cmax,
        "tmax_h": tmax,
        "tlast_h": tlast,
        "clast": clast,
        "c0": c0,
        "c0_back_extrapolated": extrapolated,
        "auc_0_tlast": auc_last,
        "aumc_0_tlast": aumc_last,
        "lambda_z_per_h": lam,
        "lambda_z_n_points": npts,
        "lambda_z_start_h": start_h,
        "lambda_z_r2_adjusted": r2_adj,
        "half_life_h": np.log(2.0) / lam,
        "auc_0_inf": auc_inf,
        "auc_extrapolated_percent": extrapolated_pct,
        "auc_back_extrapolated_percent": back_pct,
        "aumc_0_inf": aumc_inf,
        "mrt_h": mrt,
        "cl": nan,
        "vss": nan,
        "vz": nan,
        "cl_f": nan,
        "vz_f": nan,
    }
    if dose_ok and rules.intravascular:
        out.update(cl=per_auc, vss=per_auc * mrt, vz=per_auc / lam)
    elif dose_ok:
        out.update(cl_f=per_auc, vz_f=per_auc / lam)
    return out


def _nca_rows_with_gaps(t: np.ndarray, c: np.ndarray, keep: np.ndarray, rules: _Rules) -> dict[str, np.ndarray]:
    """Row by row, each on its own kept samples (BLQ rules that drop samples)."""
    m = c.shape[0]
    out = {name: np.full(m, np.nan) for name in NCA_PARAMETERS}
    out["c0_back_extrapolated"] = np.zeros(m)
    out["lambda_z_n_points"] = np.zeros(m)
    for i in range(m):
        if keep[i].sum() < 2:
            continue  # nothing left to analyse: NaN
        row = _nca_core(t[keep[i]], c[i, keep[i]][None, :], rules)
        for name in NCA_PARAMETERS:
            out[name][i] = row[name][0]
    return out


def nca(
    t_h: ArrayLike,
    conc: ArrayLike,
    *,
    dose: float | None = None,
    infusion_h: float = 0.0,
    intravascular: bool = True,
    systemic: bool = True,
    auc_method: Literal["linear-up/log-down", "linear"] = "linear-up/log-down",
    lambda_z_rule: Literal["pknca", "winnonlin"] = "pknca",
    blq: Literal["zero", "drop", "zero-before-tmax", "loq/2"] = "zero",
    loq: float | None = None,
    back_extrapolate_c0: bool = True,
    min_points: int = LAMBDA_Z_MIN_POINTS,
) -> NCAResult:
    """Non-compartmental analysis of one curve or many curves sampled at the same times.

    The rules (and their sources) are in the module docstring.

    Parameters
    ----------
    t_h : array_like, shape (n_times,)
        Sample times after the dose (h), strictly increasing; the dose is at t = 0. Areas
        start at the first sample, or at t = 0 with C0 for an intravascular bolus.
    conc : array_like, shape (n_times,) or (n_curves, n_times)
        Concentrations (any unit C, or amounts such as %ID), non-negative.
    dose : float, optional
        Dose, in the amount unit of the concentration's numerator (e.g. particles for
        particles/mL, 100 for %ID/mL; :func:`dose_in_concentration_amount` converts). Needed for
        CL, Vss, Vz (intravascular) and CL/F, Vz/F (extravascular).
    infusion_h : float, default 0
        Infusion duration (h); MRT is corrected by ``infusion_h / 2``. 0: a bolus.
    intravascular : bool, default True
        Whether the dose enters the circulation directly (bolus or infusion); False for
        extravascular routes (CL/F and Vz/F instead of CL, Vss and Vz).
    systemic : bool, default True
        Whether ``conc`` is the blood or plasma concentration. False for organ or tissue
        curves (and for amounts such as %ID): no C0 and no dose-based results.
    auc_method : {"linear-up/log-down", "linear"}, default "linear-up/log-down"
        Trapezoid rule for AUC and AUMC.
    lambda_z_rule : {"pknca", "winnonlin"}, default "pknca"
        Whether Tmax may enter the λz fit after a bolus ("winnonlin") or never ("pknca").
    blq : {"zero", "drop", "zero-before-tmax", "loq/2"}, default "zero"
        What to do with samples below the limit of quantification (zero, or below ``loq``).
    loq : float, optional
        Lower limit of quantification (C); needed for ``blq="loq/2"``. Without it, zeros are BLQ.
    back_extrapolate_c0 : bool, default True
        Back-extrapolate C0 of an intravascular bolus when no positive sample at t = 0 exists.
    min_points : int, default 3
        Fewest points in the λz fit.

    Returns
    -------
    NCAResult
        ``metadata["notes"]`` says when C0 was back-extrapolated or samples were dropped.

    Raises
    ------
    NCAError
        Invalid times, concentrations, dose or option.

    Examples
    --------
    >>> import numpy as np, exopk
    >>> t = np.linspace(0, 24, 25)
    >>> r = exopk.analysis.nca(t, 10 * np.exp(-0.2 * t), dose=100.0)
    >>> round(float(r.half_life_h[0]), 3)
    3.466
    """
    t, c = _check_curves(t_h, conc)
    if dose is not None and not (_is_number(dose) and np.isfinite(dose) and dose > 0):
        raise NCAError(f"`dose` must be positive and finite; got {dose!r}.")
    if not (np.isfinite(infusion_h) and infusion_h >= 0):
        raise NCAError(f"`infusion_h` must be finite and non-negative (h); got {infusion_h!r}.")
    if isinstance(min_points, bool) or not isinstance(min_points, int) or min_points < 3:
        raise NCAError(f"`min_points` must be an integer >= 3; got {min_points!r}.")
    for name, value, allowed in (
        ("auc_method", auc_method, AUC_METHODS),
        ("lambda_z_rule", lambda_z_rule, LAMBDA_Z_RULES),
        ("blq", blq, BLQ_RULES),
    ):
        if value not in allowed:
            raise NCAError(f"`{name}` must be one of {', '.join(map(repr, allowed))}; got {value!r}.")
    if loq is not None and not (_is_number(loq) and np.isfinite(loq) and loq > 0):
        raise NCAError(f"`loq` must be positive and finite (C); got {loq!r}.")
    if blq == "loq/2" and loq is None:
        raise NCAError("`blq='loq/2'` needs `loq`, the limit of quantification.")
    rules = _Rules(
        dose=None if dose is None else float(dose),
        infusion_h=float(infusion_h),
        intravascular=bool(intravascular),
        systemic=bool(systemic),
        auc_method=auc_method,
        lambda_z_rule=lambda_z_rule,
        back_extrapolate_c0=bool(back_extrapolate_c0),
        min_points=min_points,
    )
    m, n = c.shape
    notes: list[str] = []
    below = (c <= 0.0) if loq is None else (c < loq)
    keep = None
    if np.any(below):
        if blq == "zero":
            c = np.where(below, 0.0, c)
        elif blq == "loq/2":
            c = np.where(below, 0.5 * float(loq), c)  # type: ignore[arg-type]
        else:
            if blq == "drop":
                keep = ~below
            else:  # zero before Tmax, dropped from Tmax on
                after = np.arange(n)[None, :] >= np.argmax(np.where(below, -np.inf, c), axis=1)[:, None]
                keep = ~(below & after)
            c = np.where(below, 0.0, c)
            notes.append(f"{int((~keep).sum())} BLQ sample(s) dropped (blq={blq!r}).")
    if keep is not None and not keep.all():
        gaps = ~keep.all(axis=1)
        values = {name: np.empty(m) for name in NCA_PARAMETERS}
        if np.any(~gaps):
            full = _nca_blocks(t, c[~gaps], rules)
            for name in NCA_PARAMETERS:
                values[name][~gaps] = full[name]
        partial = _nca_rows_with_gaps(t, c[gaps], keep[gaps], rules)
        for name in NCA_PARAMETERS:
            values[name][gaps] = partial[name]
    else:
        values = _nca_blocks(t, c, rules)
    n_back = int(np.sum(values["c0_back_extrapolated"] > 0))
    if n_back:
        notes.append(
            f"C0 back-extrapolated to t = 0 h in {n_back} of {m} curve(s): log-linear through the first two "
            "samples where the second is lower, else the first sample (PKNCA/Phoenix); it enters AUC, CL, Vss and Vz."
        )
    metadata = {
        "auc_method": auc_method,
        "lambda_z_rule": (
            f"{lambda_z_rule}: last >= {min_points} positive points "
            + ("from Tmax (Tmax included for a bolus)" if lambda_z_rule == "winnonlin" and rules.bolus else
               "after Tmax (Tmax excluded)")
            + f", negative slope; adjusted R2 above the best minus {ADJ_R2_TOLERANCE:g}, then most points"
        ),
        "blq": blq,
        "loq": loq,
        "dose": dose,
        "infusion_h": infusion_h,
        "intravascular": intravascular,
        "systemic": systemic,
        "notes": tuple(notes),
    }  # fmt: skip
    return NCAResult(**values, metadata=metadata)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)


def _nca_blocks(t: np.ndarray, c: np.ndarray, rules: _Rules) -> dict[str, np.ndarray]:
    m, n = c.shape
    block = max(1, _BLOCK_ELEMENTS // n)
    if m <= block:
        return _nca_core(t, c, rules)
    # Blocks of curves whose ~25 temporaries stay in cache: ~2x faster than one pass over
    # thousands of curves (where fresh temporaries cost page faults), and bounded memory.
    parts = [_nca_core(t, c[r0 : r0 + block], rules) for r0 in range(0, m, block)]
    return {name: np.concatenate([p[name] for p in parts]) for name in NCA_PARAMETERS}


@dataclass(frozen=True, slots=True)
class SparseNCAResult:
    """NCA of destructively sampled data: the mean profile and Bailer's standard error of its AUC.

    Attributes
    ----------
    t_h : ndarray, shape (n_times,)
        Distinct sample times (h).
    mean, sd : ndarray, shape (n_times,)
        Mean and sample standard deviation (ddof = 1) of the concentrations at each time (C).
    n : ndarray, shape (n_times,)
        Animals sampled at each time.
    auc_0_tlast : float
        AUC of the mean profile by the linear trapezoidal rule, over all sample times (C·h),
        the estimator whose variance Bailer derived.
    auc_se : float
        Bailer's standard error of ``auc_0_tlast`` (C·h).
    profile : NCAResult
        Full NCA (linear-up/log-down, λz, ...) of the mean profile.
    """

    t_h: np.ndarray
    mean: np.ndarray
    sd: np.ndarray
    n: np.ndarray
    auc_0_tlast: float
    auc_se: float
    profile: NCAResult


def sparse_nca(
    t_h: ArrayLike,
    conc: ArrayLike,
    *,
    dose: float | None = None,
    infusion_h: float = 0.0,
    intravascular: bool = True,
    systemic: bool = True,
    auc_method: Literal["linear-up/log-down", "linear"] = "linear-up/log-down",
    lambda_z_rule: Literal["pknca", "winnonlin"] = "pknca",
) -> SparseNCAResult:
    """NCA of sparse (destructive) sampling: one sample per animal, several animals per time.

    .. math::

        \\widehat{AUC} = \\sum_j w_j \\bar c_j,\\quad
        \\widehat{\\mathrm{Var}}(\\widehat{AUC}) = \\sum_j w_j^2 \\frac{s_j^2}{n_j},\\quad
        w_1 = \\tfrac{t_2 - t_1}{2},\\ w_j = \\tfrac{t_{j+1} - t_{j-1}}{2},\\ w_J = \\tfrac{t_J - t_{J-1}}{2}

    Parameters
    ----------
    t_h : array_like, shape (n_samples,)
        Sample time of each animal (h); repeated times form the groups.
    conc : array_like, shape (n_samples,)
        Each animal's concentration (C), non-negative.
    dose, infusion_h, intravascular, systemic, auc_method, lambda_z_rule
        As in :func:`nca`, for the analysis of the mean profile.

    Returns
    -------
    SparseNCAResult

    Raises
    ------
    NCAError
        Fewer than two distinct times, fewer than two animals at some time, or invalid values.

    References
    ----------
    Bailer AJ (1988) Testing for the equality of area under the curves when using destructive
    measurement techniques. J Pharmacokinet Biopharm 16:303-309.
    """
    t = np.asarray(t_h, dtype=float)
    c = np.asarray(conc, dtype=float)
    if t.ndim != 1 or c.shape != t.shape:
        raise NCAError(f"`t_h` and `conc` must be 1-D arrays of equal length; got shapes {t.shape} and {c.shape}.")
    if not (np.all(np.isfinite(t)) and np.all(np.isfinite(c))) or np.any(c < 0) or np.any(t < 0):
        raise NCAError("`t_h` and `conc` must be finite and non-negative.")
    times, inverse, counts = np.unique(t, return_inverse=True, return_counts=True)
    if times.size < 2:
        raise NCAError(f"sparse NCA needs at least 2 distinct sample times; got {times.size}.")
    if np.any(counts < 2):
        raise NCAError(
            f"sparse NCA needs at least 2 animals per time for Bailer's variance; time(s) "
            f"{times[counts < 2].tolist()} h have 1."
        )
    sums = np.bincount(inverse, weights=c)
    mean = sums / counts
    sq = np.bincount(inverse, weights=(c - mean[inverse]) ** 2)
    var = sq / (counts - 1)
    w = np.empty(times.size)
    w[0] = (times[1] - times[0]) / 2.0
    w[-1] = (times[-1] - times[-2]) / 2.0
    w[1:-1] = (times[2:] - times[:-2]) / 2.0
    auc = float(np.sum(w * mean))
    se = float(np.sqrt(np.sum(w**2 * var / counts)))
    profile = nca(
        times,
        mean,
        dose=dose,
        infusion_h=infusion_h,
        intravascular=intravascular,
        systemic=systemic,
        auc_method=auc_method,
        lambda_z_rule=lambda_z_rule,
    )
    return SparseNCAResult(t_h=times, mean=mean, sd=np.sqrt(var), n=counts, auc_0_tlast=auc, auc_se=se, profile=profile)
