"""Non-compartmental analysis (NCA) of concentration-time curves, simulated or observed.

The rules follow the defaults of PKNCA (Denney et al., PKNCA R package, 2015-) and of
Phoenix WinNonlin ("linear-up/log-down", "best fit" terminal phase):

* AUC and AUMC by the linear-up/log-down trapezoidal rule: log-trapezoids on segments where
  the concentration falls and both ends are positive, linear trapezoids everywhere else.
* λz, the terminal rate constant: a log-linear least-squares fit to the last *k* positive
  points after Cmax (Tmax itself excluded), k ≥ 3. Among all k with a negative slope, the
  fits whose adjusted R² is within 1e-4 of the best are kept, and of those the one with the
  most points is chosen (PKNCA ``adj.r.squared.factor = 1e-4``, ``min.hl.points = 3``,
  ``allow.tmax.in.half.life = FALSE``; Phoenix "best fit" uses the same adjusted-R² rule).
* AUC0–∞ = AUC0–tlast + Clast/λz with the observed Clast; AUMC0–∞ likewise; MRT = AUMC0–∞ / AUC0–∞
  (minus half the infusion time for an infusion); CL = dose / AUC0–∞ and Vss = CL · MRT for
  intravascular doses.
* Sparse (destructive) sampling: NCA of the mean profile, with Bailer's standard error of the
  AUC (Bailer 1988, J Pharmacokinet Biopharm 16:303; Nedelman, Gibiansky & Lau 1995, Pharm Res
  12:124) from linear-trapezoid weights.

Everything is vectorised over curves (rows), so thousands of simulated subjects are analysed at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike

from exopk.errors import NCAError

LAMBDA_Z_MIN_POINTS = 3
"""Fewest points in the terminal log-linear fit (PKNCA ``min.hl.points``)."""
ADJ_R2_TOLERANCE = 1e-4
"""Fits with adjusted R² within this of the best count as equally good; the longest wins."""
_BLOCK_ELEMENTS = 1 << 17  # curves x times analysed at once (~1 MB per temporary)


NCA_PARAMETERS: tuple[str, ...] = (
    "cmax",
    "tmax_h",
    "tlast_h",
    "clast",
    "auc_0_tlast",
    "aumc_0_tlast",
    "lambda_z_per_h",
    "lambda_z_n_points",
    "lambda_z_start_h",
    "lambda_z_r2_adjusted",
    "half_life_h",
    "auc_0_inf",
    "auc_extrapolated_percent",
    "aumc_0_inf",
    "mrt_h",
    "cl",
    "vss",
)
"""Names of the NCA results, in output order (see :class:`NCAResult`)."""


def nca_units(conc_unit: str, dose_unit: str | None = None) -> dict[str, str]:
    """Units of each NCA result for concentrations in ``conc_unit`` (and doses in ``dose_unit``).

    CL and Vss simplify to mL/h and mL when ``conc_unit`` is ``"<dose_unit>/mL"``.
    """
    auc = f"{conc_unit}·h"
    if dose_unit is not None and conc_unit == f"{dose_unit}/mL":
        cl, vss = "mL/h", "mL"
    elif dose_unit is not None:
        cl, vss = f"{dose_unit}/({conc_unit}·h)", f"{dose_unit}/({conc_unit})"
    else:
        cl = vss = "(no dose given)"
    return {
        "cmax": conc_unit,
        "tmax_h": "h",
        "tlast_h": "h",
        "clast": conc_unit,
        "auc_0_tlast": auc,
        "aumc_0_tlast": f"{conc_unit}·h²",
        "lambda_z_per_h": "1/h",
        "lambda_z_n_points": "1",
        "lambda_z_start_h": "h",
        "lambda_z_r2_adjusted": "1",
        "half_life_h": "h",
        "auc_0_inf": auc,
        "auc_extrapolated_percent": "%",
        "aumc_0_inf": f"{conc_unit}·h²",
        "mrt_h": "h",
        "cl": cl,
        "vss": vss,
    }


@dataclass(frozen=True, slots=True)
class NCAResult:
    """NCA results of one or many curves: each attribute is an array of shape ``(n_curves,)``.

    Concentration units are those of the input (written ``C`` here); times are hours.
    NaN where a quantity is undefined (no terminal phase found, no dose given, ...).

    Attributes
    ----------
    cmax, tmax_h : ndarray
        Highest concentration (C) and its first time (h).
    tlast_h, clast : ndarray
        Last time with a positive concentration (h), and that concentration (C).
    auc_0_tlast, aumc_0_tlast : ndarray
        Linear-up/log-down areas under the curve (C·h) and under the first moment (C·h²),
        from the first sample to ``tlast_h``.
    lambda_z_per_h, lambda_z_n_points, lambda_z_start_h, lambda_z_r2_adjusted : ndarray
        Terminal rate constant (1/h), points in its fit, first time of the fit (h), adjusted R².
    half_life_h : ndarray
        ln 2 / λz (h).
    auc_0_inf, aumc_0_inf : ndarray
        Extrapolated to infinity with the observed Clast (C·h, C·h²).
    auc_extrapolated_percent : ndarray
        Share of AUC0–∞ that is extrapolated (%).
    mrt_h : ndarray
        Mean residence time, AUMC0–∞ / AUC0–∞ minus half the infusion time (h).
    cl, vss : ndarray
        dose / AUC0–∞ and CL · MRT: meaningful for intravascular doses and blood/plasma
        concentrations only. NaN without a dose.
    metadata : Mapping
        Rules used (λz selection, AUC method) and dose/route information.
    """

    cmax: np.ndarray
    tmax_h: np.ndarray
    tlast_h: np.ndarray
    clast: np.ndarray
    auc_0_tlast: np.ndarray
    aumc_0_tlast: np.ndarray
    lambda_z_per_h: np.ndarray
    lambda_z_n_points: np.ndarray
    lambda_z_start_h: np.ndarray
    lambda_z_r2_adjusted: np.ndarray
    half_life_h: np.ndarray
    auc_0_inf: np.ndarray
    auc_extrapolated_percent: np.ndarray
    aumc_0_inf: np.ndarray
    mrt_h: np.ndarray
    cl: np.ndarray
    vss: np.ndarray
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


def auc_segments(t_h: np.ndarray, conc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Linear-up/log-down AUC and AUMC of each interval between samples.

    .. math::

        \\text{log-down } (c_2 < c_1,\\ c_2 > 0):\\quad
        AUC = \\frac{(c_1 - c_2)\\,\\Delta t}{\\ln(c_1/c_2)},\\quad
        AUMC = \\frac{t_1 c_1 - t_2 c_2}{k} + \\frac{c_1 - c_2}{k^2},\\quad k = \\frac{\\ln(c_1/c_2)}{\\Delta t}

    and linear trapezoids otherwise.

    Parameters
    ----------
    t_h : ndarray, shape (n_times,)
    conc : ndarray, shape (n_curves, n_times)

    Returns
    -------
    auc, aumc : ndarray, shape (n_curves, n_times - 1)
    """
    t1, t2 = t_h[:-1], t_h[1:]
    c1, c2 = conc[..., :-1], conc[..., 1:]
    dt = t2 - t1
    auc = 0.5 * (c1 + c2) * dt
    aumc = 0.5 * (t1 * c1 + t2 * c2) * dt
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
    t_h: np.ndarray, conc: np.ndarray, *, min_points: int = LAMBDA_Z_MIN_POINTS, tolerance: float = ADJ_R2_TOLERANCE
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Terminal rate constant of each curve by the adjusted-R² rule (see the module docstring).

    All candidate fits (the last k positive points after Cmax, for every k) are computed at
    once from reverse cumulative sums.

    Parameters
    ----------
    t_h : ndarray, shape (n_times,)
    conc : ndarray, shape (n_curves, n_times)
    min_points : int, default 3
    tolerance : float, default 1e-4

    Returns
    -------
    lambda_z_per_h, n_points, start_h, r2_adjusted : ndarray, shape (n_curves,)
        NaN (and 0 points) where no fit of at least ``min_points`` points has a negative slope.
    """
    m, n = conc.shape
    imax = np.argmax(conc, axis=1)
    valid = (np.arange(n)[None, :] > imax[:, None]) & (conc > 0)
    w = valid.astype(float)
    x1 = t_h - t_h[-1]  # centred on the last time for round-off

    def rsum(a: np.ndarray) -> np.ndarray:
        return np.cumsum(a[..., ::-1], axis=-1)[..., ::-1]

    if np.all(valid | (np.arange(n)[None, :] <= imax[:, None])):
        # Every point after Tmax is positive (simulated curves): the windows' sums over x are the
        # same for every curve, and entries up to Tmax never enter a valid window's sums. Same
        # numbers as the general branch, in about half the time.
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
    ok = valid & (k >= min_points) & (dxx > 0) & (dyy > 0) & (slope < 0) & np.isfinite(adj)
    adj = np.where(ok, adj, -np.inf)
    best = adj.max(axis=1)
    good = ok & (adj >= best[:, None] - tolerance)
    # The longest good fit: windows end at the last point, so the earliest good start.
    start = np.argmax(good, axis=1)
    found = good.any(axis=1)
    rows = np.arange(m)
    lam = np.where(found, -slope[rows, start], np.nan)
    npts = np.where(found, k[rows, start], 0.0)
    start_h = np.where(found, t_h[start], np.nan)
    r2_adj = np.where(found, adj[rows, start], np.nan)
    return lam, npts, start_h, r2_adj


def nca(
    t_h: ArrayLike,
    conc: ArrayLike,
    *,
    dose: float | None = None,
    infusion_h: float = 0.0,
    intravascular: bool = True,
    min_points: int = LAMBDA_Z_MIN_POINTS,
) -> NCAResult:
    """Non-compartmental analysis of one curve or many curves sampled at the same times.

    Parameters
    ----------
    t_h : array_like, shape (n_times,)
        Sample times (h), strictly increasing. Areas start at the first sample: include
        ``t = 0`` (with its concentration) for AUC from the dose.
    conc : array_like, shape (n_times,) or (n_curves, n_times)
        Concentrations (any unit C, or amounts such as %ID), non-negative.
    dose : float, optional
        Dose, in the amount unit of the concentration's numerator (e.g. particles for
        particles/mL, 100 for %ID/mL). Needed for CL and Vss.
    infusion_h : float, default 0
        Infusion duration (h); MRT is corrected by ``infusion_h / 2``.
    intravascular : bool, default True
        Whether the dose enters the sampled circulation directly; CL and Vss are reported only then.
    min_points : int, default 3
        Fewest points in the λz fit.

    Returns
    -------
    NCAResult

    Raises
    ------
    NCAError
        Invalid times or concentrations, or an invalid dose.

    Examples
    --------
    >>> import numpy as np, exopk
    >>> t = np.linspace(0, 24, 25)
    >>> r = exopk.nca(t, 10 * np.exp(-0.2 * t), dose=100.0)
    >>> round(float(r.half_life_h[0]), 3)
    3.466
    """
    t, c = _check_curves(t_h, conc)
    if dose is not None and not (np.isfinite(dose) and dose > 0):
        raise NCAError(f"`dose` must be positive and finite; got {dose!r}.")
    if not (np.isfinite(infusion_h) and infusion_h >= 0):
        raise NCAError(f"`infusion_h` must be finite and non-negative (h); got {infusion_h!r}.")
    if isinstance(min_points, bool) or not isinstance(min_points, int) or min_points < 3:
        raise NCAError(f"`min_points` must be an integer >= 3; got {min_points!r}.")
    m, n = c.shape
    block = max(1, _BLOCK_ELEMENTS // n)
    if m > block:
        # Blocks of curves whose ~25 temporaries stay in cache: ~2x faster than one pass over
        # thousands of curves (where fresh temporaries cost page faults), and bounded memory.
        parts = [
            nca(t, c[r0 : r0 + block], dose=dose, infusion_h=infusion_h, intravascular=intravascular,
                min_points=min_points)
            for r0 in range(0, m, block)
        ]  # fmt: skip
        return NCAResult(
            **{name: np.concatenate([getattr(p, name) for p in parts]) for name in NCA_PARAMETERS},
            metadata=parts[0].metadata,
        )
    rows = np.arange(m)
    imax = np.argmax(c, axis=1)
    cmax = c[rows, imax]
    tmax = t[imax]
    positive = c > 0
    ilast = np.where(positive.any(axis=1), n - 1 - np.argmax(positive[:, ::-1], axis=1), -1)
    has = ilast >= 0
    tlast = np.where(has, t[np.maximum(ilast, 0)], np.nan)
    clast = np.where(has, c[rows, np.maximum(ilast, 0)], np.nan)
    seg_auc, seg_aumc = auc_segments(t, c)
    upto = np.arange(n - 1)[None, :] < ilast[:, None]  # segments ending at or before tlast
    auc_last = np.where(upto, seg_auc, 0.0).sum(axis=1)
    aumc_last = np.where(upto, seg_aumc, 0.0).sum(axis=1)
    lam, npts, start_h, r2_adj = lambda_z(t, c, min_points=min_points)
    with np.errstate(divide="ignore", invalid="ignore"):
        auc_inf = auc_last + clast / lam
        aumc_inf = aumc_last + tlast * clast / lam + clast / lam**2
        extrapolated = 100.0 * (auc_inf - auc_last) / auc_inf
        mrt = aumc_inf / auc_inf - infusion_h / 2.0
        if dose is not None and intravascular:
            cl = dose / auc_inf
            vss = cl * mrt
        else:
            cl = vss = np.full(m, np.nan)
    return NCAResult(
        cmax=cmax,
        tmax_h=tmax,
        tlast_h=tlast,
        clast=clast,
        auc_0_tlast=auc_last,
        aumc_0_tlast=aumc_last,
        lambda_z_per_h=lam,
        lambda_z_n_points=npts,
        lambda_z_start_h=start_h,
        lambda_z_r2_adjusted=r2_adj,
        half_life_h=np.log(2.0) / lam,
        auc_0_inf=auc_inf,
        auc_extrapolated_percent=extrapolated,
        aumc_0_inf=aumc_inf,
        mrt_h=mrt,
        cl=cl,
        vss=vss,
        metadata={
            "auc_method": "linear-up/log-down",
            "lambda_z_rule": (
                f"last >= {min_points} positive points after Tmax (Tmax excluded), negative slope; "
                f"largest adjusted R2 within {ADJ_R2_TOLERANCE:g} of the best, then most points (PKNCA/Phoenix)"
            ),
            "dose": dose,
            "infusion_h": infusion_h,
            "intravascular": intravascular,
        },
    )


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
    dose, infusion_h, intravascular
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
    profile = nca(times, mean, dose=dose, infusion_h=infusion_h, intravascular=intravascular)
    return SparseNCAResult(t_h=times, mean=mean, sd=np.sqrt(var), n=counts, auc_0_tlast=auc, auc_se=se, profile=profile)
