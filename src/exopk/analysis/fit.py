"""Fitting named model parameters to tidy biodistribution data (:func:`fit`).

Method, in one place (the report repeats it):

- **Parameters** are addressed by name and fitted on the log scale, :math:`\\theta = \\ln p`, inside
  bounds (default: a factor 100 either side of the starting value; fractions capped at 1). A fitted
  name may stand for a group of model parameters sharing one value (``{"degradation_per_h":
  [...organ rates...]}``).
- **Residuals** (default ``scale="log"``): :math:`r_i = \\sqrt{w_i}\\,(\\ln y_i - \\ln \\hat y_i)/\\sigma_i`.
  If every quantified row has an SD, :math:`\\sigma_i = \\sigma_q/\\sqrt{n_i}` with
  :math:`\\sigma_q^2` the log-scale variance :math:`\\ln(1 + (SD_i/y_i)^2)` pooled over the rows of
  quantity *q* (weights :math:`n_i - 1`): the sample SD of 3-5 animals is too noisy to weigh single
  rows by (per-row weights made the CIs miss the truth in a synthetic test); otherwise
  :math:`\\sigma_i = 1`. With
  ``scale="linear"``: :math:`r_i = \\sqrt{w_i}(y_i - \\hat y_i)/\\sigma_i`, :math:`\\sigma_i = SD_i/\\sqrt{n_i}` or 1.
  SDs act as relative weights: the residual variance :math:`s^2 = RSS/(n - k)` is estimated.
- **Below the LOQ** (rows with ``value < loq``, or ``value`` empty and ``loq`` given), rule
  ``blq="censored"`` (default, M3-like): the row adds nothing while the prediction is at or below
  the LOQ and :math:`(\\ln \\hat y - \\ln LOQ)/\\sigma` when above (a one-sided residual: least squares
  cannot carry the M3 likelihood itself); ``blq="loq/2"`` replaces the value by LOQ/2;
  ``blq="drop"`` ignores the row.
- **Arbitrary units**: rows of quantity ``signal`` (unit ``a.u.``) share one scale factor, profiled
  out exactly (log scale: the weighted mean log ratio) and counted as a parameter.
- **Optimiser**: :func:`scipy.optimize.least_squares` (trust-region reflective, bounds), from the
  starting values and ``n_starts - 1`` random points (uniform in the log bounds, seeded); the best
  cost wins.
- **Uncertainty**: central-difference Jacobian :math:`J` of the residuals in :math:`\\theta` at the
  optimum; :math:`\\mathrm{Cov}(\\theta) = s^2 (J^T J)^{-1}`; 95 % CI :math:`\\exp(\\hat\\theta \\pm
  t_{0.975, n-k}\\, SE)`; SE of :math:`p` by the delta method, :math:`p \\cdot SE(\\theta)`.
  :meth:`FitResult.profile` gives the profile likelihood :math:`n \\ln(RSS_{profile}/RSS_{min})`
  and its 95 % interval (:math:`\\chi^2_1` 3.84).
- **Goodness of fit**: fold error :math:`\\hat y / y` of each quantified row, share within 2-fold,
  geometric mean fold error, and :math:`AIC = n \\ln(RSS/n) + 2(k + 1)` (Gaussian residuals on the
  fitted scale, :math:`k` = fitted parameters + scale factors, +1 for the residual variance).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from exopk.analysis.observations import FITTABLE_QUANTITIES, DataError, check_observations, predict
from exopk.errors import FitError, ParameterError

BLQ_RULES = ("censored", "loq/2", "drop")
CHI2_95_1DF = 3.841458820694124


@dataclass(frozen=True)
class _Problem:
    base: Any  # ModelParameters
    regimen: Any
    obs: Any  # checked observations
    groups: dict[str, tuple[str, ...]]
    lower: np.ndarray  # log bounds
    upper: np.ndarray
    label: Any
    scale: str
    blq: str
    source: str
    method: str | None
    sigma: np.ndarray
    use: np.ndarray  # rows entering the fit (quantified, or BLQ unless dropped)
    blq_rows: np.ndarray
    signal_rows: np.ndarray
    y: np.ndarray  # observed values in model units (LOQ/2 substituted if that rule)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.groups)

    def parameters(self, theta: np.ndarray, source: str | None = None):
        changes = {}
        for value, targets in zip(np.exp(theta), self.groups.values(), strict=True):
            changes.update({t: float(value) for t in targets})
        try:
            return self.base.replace(source=source or self.source, **changes)
        except ParameterError as err:
            raise FitError(f"parameter values left their valid range during the fit ({err}); narrow `bounds`") from None

    def predictions(self, theta: np.ndarray) -> np.ndarray:
        return predict(self.parameters(theta), self.regimen, self.obs, label=self.label, method=self.method)

    def signal_scale(self, pred: np.ndarray) -> float:
        rows = self.signal_rows & self.use & ~self.blq_rows
        if not rows.any():
            return 1.0
        w = self.obs["weight"].to_numpy()[rows] / self.sigma[rows] ** 2
        if self.scale == "log":
            ratio = np.log(self.y[rows]) - np.log(np.maximum(pred[rows], 1e-300))
            return float(np.exp(np.sum(w * ratio) / np.sum(w)))
        return float(np.sum(w * self.y[rows] * pred[rows]) / max(np.sum(w * pred[rows] ** 2), 1e-300))

    def residuals_from(self, pred: np.ndarray) -> np.ndarray:
        pred = pred.copy()
        if self.signal_rows.any():
            pred[self.signal_rows] *= self.signal_scale(pred)
        w = np.sqrt(self.obs["weight"].to_numpy())
        loq = self.obs["loq_model"].to_numpy()
        r = np.zeros(len(pred))
        quant = self.use & ~self.blq_rows
        if self.scale == "log":
            logp = np.log(np.maximum(pred, 1e-300))
            r[quant] = (np.log(self.y[quant]) - logp[quant]) / self.sigma[quant]
            cens = self.use & self.blq_rows
            if self.blq == "censored":
                r[cens] = -np.maximum(logp[cens] - np.log(loq[cens]), 0.0) / self.sigma[cens]
            else:
                r[cens] = (np.log(self.y[cens]) - logp[cens]) / self.sigma[cens]
        else:
            r[quant] = (self.y[quant] - pred[quant]) / self.sigma[quant]
            cens = self.use & self.blq_rows
            if self.blq == "censored":
                r[cens] = -np.maximum(pred[cens] - loq[cens], 0.0) / self.sigma[cens]
            else:
                r[cens] = (self.y[cens] - pred[cens]) / self.sigma[cens]
        return (w * r)[self.use]

    def residuals(self, theta: np.ndarray) -> np.ndarray:
        return self.residuals_from(self.predictions(theta))


def _groups(params, parameters) -> dict[str, tuple[str, ...]]:
    if isinstance(parameters, str):
        parameters = [parameters]
    if isinstance(parameters, Mapping):
        groups = {str(k): (v,) if isinstance(v, str) else tuple(v) for k, v in parameters.items()}
    else:
        names = [str(p) for p in parameters]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:  # a dict would drop the repeat silently
            raise FitError(f"`parameters`: {', '.join(map(repr, repeated))} appears twice; name each parameter once")
        groups = {n: (n,) for n in names}
    if not groups:
        raise FitError("`parameters` is empty; name at least one model parameter to fit")
    seen: set[str] = set()
    for name, targets in groups.items():
        if not targets:
            raise FitError(f"`parameters`: group {name!r} names no model parameter")
        for target in targets:
            if target not in params.values:
                raise FitError(
                    f"`parameters`: unknown parameter {target!r}; see exopk.parameter_names() or `exopk params show`"
                )
            if target in seen:
                raise FitError(f"`parameters`: {target!r} appears twice")
            seen.add(target)
        values = [params[t] for t in targets]
        if not all(np.isfinite(values)):
            raise FitError(f"`parameters`: {name!r} is infinite in the model; it cannot be fitted on the log scale")
    return groups


def _bounds(params, groups, bounds) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    bounds = dict(bounds or {})
    unknown = set(bounds) - set(groups)
    if unknown:
        raise FitError(
            f"`bounds` names {', '.join(sorted(unknown))}, which are not fitted (fitted: {', '.join(groups)})"
        )
    lo, hi, x0 = [], [], []
    for name, targets in groups.items():
        start = float(np.exp(np.mean(np.log([max(params[t], 1e-300) for t in targets]))))
        if name in bounds:
            try:
                low, high = (float(b) for b in bounds[name])
            except (TypeError, ValueError):
                raise FitError(f"`bounds[{name!r}]` must be (lower, upper); got {bounds[name]!r}") from None
        else:
            if not start > 0:
                raise FitError(f"{name!r} starts at {start:g}; give positive `bounds` for it (fitted on the log scale)")
            low, high = start / 100.0, start * 100.0
            if all(t.endswith("_fraction") for t in targets):
                high = min(high, 1.0)
        if not (0 < low < high < math.inf):
            raise FitError(f"`bounds[{name!r}]` = ({low:g}, {high:g}); expected 0 < lower < upper < inf")
        lo.append(math.log(low))
        hi.append(math.log(high))
        x0.append(min(max(math.log(start) if start > 0 else 0.5 * (lo[-1] + hi[-1]), lo[-1]), hi[-1]))
    return np.array(lo), np.array(hi), np.array(x0)


def _sigma(obs, scale: str, blq: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    blq_rows = obs["blq"].to_numpy(dtype=bool)
    y = obs["value_model"].to_numpy(dtype=float).copy()
    loq = obs["loq_model"].to_numpy(dtype=float)
    if blq == "loq/2":
        y[blq_rows] = loq[blq_rows] / 2
    use = np.ones(len(obs), dtype=bool) if blq != "drop" else ~blq_rows
    quant = use & ~blq_rows
    sd = obs["sd_model"].to_numpy(dtype=float)
    n = obs["n"].to_numpy(dtype=float)
    has_sd = bool(np.all(np.isfinite(sd[quant]) & (sd[quant] > 0)))
    sigma = np.ones(len(obs))
    if has_sd:
        if scale == "log":
            # Pooled per quantity: the sample SD of a few animals is too noisy to weigh single rows by.
            var_log = np.log1p((sd / np.where(y > 0, y, np.nan)) ** 2)
            quantities = obs["quantity"].to_numpy()
            for q in np.unique(quantities[quant]):
                rows = quant & (quantities == q)
                dof = np.maximum(n[rows] - 1.0, 0.0)
                pooled = np.sum(dof * var_log[rows]) / np.sum(dof) if dof.sum() > 0 else np.mean(var_log[rows])
                sigma[rows] = np.sqrt(pooled / n[rows])
            note = (
                "SDs given for every quantified row: log-scale variance pooled per quantity, "
                "sigma of each mean = pooled SD / sqrt(n)"
            )
        else:
            sigma[quant] = sd[quant] / np.sqrt(n[quant])
            note = "SDs given for every quantified row: residuals weighted by SD / sqrt(n) of each row"
        sigma[~quant] = float(np.median(sigma[quant]))
    else:
        note = "equal weights (not every quantified row has an SD > 0)"
    if scale == "log" and np.any(quant & (y <= 0)):
        i = int(np.flatnonzero(quant & (y <= 0))[0])
        raise DataError(
            f"column 'value', row {i + 1}: {float(obs['value'].iloc[i])!r} cannot be log-transformed; give a 'loq' "
            "column for values below the limit of quantification, or fit with scale='linear'"
        )
    return sigma, use, y, note


def fit(
    params,
    regimen,
    data,
    parameters: Sequence[str] | Mapping[str, Sequence[str]],
    *,
    label=None,
    scale: str = "log",
    blq: str = "censored",
    bounds: Mapping[str, tuple[float, float]] | None = None,
    n_starts: int = 4,
    seed: int = 0,
    data_name: str = "data",
    method: str | None = None,
    absolute_sd: bool = False,
) -> FitResult:
    """Fit named parameters of a configured model to tidy observations.

    Parameters
    ----------
    params : ModelParameters
        The model (species, EV preparation, scenarios); its values are the starting point.
    regimen : Regimen or dose
        What the animals received (any route); doses in particles.
    data : pandas.DataFrame
        Observations, columns ``time_h, organ, quantity, value, unit`` and optionally ``sd, n,
        loq, weight`` (one row per animal for per-animal or destructive-sampling data; mean ± SD
        with ``n`` otherwise). Quantities: ``percent_id``, ``extravascular_percent_id``,
        ``percent_id_per_g``, ``amount_particles``, ``concentration_particles_per_ml``, ``signal``
        (arbitrary units, one fitted scale).
    parameters : sequence of str or mapping
        Names of the parameters to fit (see :func:`parameter_names`), or ``{fitted_name:
        [model names]}`` to fit one value shared by several parameters.
    label : Label or str, optional
        Fit through a label (:func:`simulate_label`): ``percent_id`` and ``percent_id_per_g`` are
        then label, decay-corrected; ``signal`` is label without decay correction.
    scale : {"log", "linear"}
        Residual scale (default log).
    blq : {"censored", "loq/2", "drop"}
        Rule for rows below the limit of quantification (module docstring).
    bounds : mapping, optional
        ``{fitted_name: (lower, upper)}`` in the parameter's unit; default a factor 100 either side
        of the start (fractions at most 1).
    n_starts : int
        Optimiser starts: the model's values, then random points in the bounds.
    seed : int
        Seed of the random starts.
    data_name : str
        Name of the data in sources ("fitted to <data_name>") and the report.
    method : str, optional
        Solver of the simulations (default exact for linear models).
    absolute_sd : bool
        Take the SDs as the true measurement error (every quantified row needs an SD):
        :math:`\\mathrm{Cov} = (J^T J)^{-1}` and normal quantiles, instead of scaling by the
        estimated residual variance. Use it for mean ± SD data the model fits (almost) exactly,
        where the residual variance says nothing about the measurement error.

    Returns
    -------
    FitResult

    Raises
    ------
    DataError
        Malformed observations (message names the column and row).
    FitError
        Unknown parameter, bad bounds, fewer observations than parameters.
    """
    if scale not in ("log", "linear"):
        raise FitError(f"`scale` must be 'log' or 'linear'; got {scale!r}")
    if blq not in BLQ_RULES:
        raise FitError(f"`blq` must be one of {', '.join(BLQ_RULES)}; got {blq!r}")
    if not isinstance(n_starts, int | np.integer) or n_starts < 1:
        raise FitError(f"`n_starts` must be a whole number >= 1; got {n_starts!r}")
    obs = check_observations(data, where=data_name, quantities=FITTABLE_QUANTITIES)
    groups = _groups(params, parameters)
    lower, upper, x0 = _bounds(params, groups, bounds)
    sigma, use, y, weight_note = _sigma(obs, scale, blq)
    if absolute_sd and not weight_note.startswith("SDs given"):
        raise FitError("`absolute_sd` needs an SD > 0 in column 'sd' for every quantified row")
    signal_rows = (obs["quantity"] == "signal").to_numpy()
    n_scale = int(np.any(signal_rows & use))
    n_quant = int(np.sum(use & ~obs["blq"].to_numpy(dtype=bool) & (obs["weight"].to_numpy() > 0)))
    k = len(groups) + n_scale
    if n_quant < k:
        raise FitError(f"{n_quant} quantified observation(s) for {k} fitted value(s); need at least as many")
    problem = _Problem(
        base=params,
        regimen=regimen,
        obs=obs,
        groups=groups,
        lower=lower,
        upper=upper,
        label=label,
        scale=scale,
        blq=blq,
        source=f"fitted to {data_name} (exopk.analysis.fit)",
        method=method,
        sigma=sigma,
        use=use,
        blq_rows=obs["blq"].to_numpy(dtype=bool),
        signal_rows=signal_rows,
        y=y,
    )
    return _solve(problem, x0, n_starts, seed, n_quant, k, weight_note, absolute_sd)


def _least_squares(problem: _Problem, x0: np.ndarray, fixed: dict[int, float] | None = None):
    from scipy.optimize import least_squares

    fixed = fixed or {}
    free = [i for i in range(len(x0)) if i not in fixed]

    def full(z: np.ndarray) -> np.ndarray:
        theta = np.array(x0, dtype=float)
        theta[free] = z
        for i, v in fixed.items():
            theta[i] = v
        return theta

    if not free:
        theta = full(np.array([]))
        r = problem.residuals(theta)
        return theta, float(r @ r)
    start = np.clip(np.asarray(x0)[free], problem.lower[free], problem.upper[free])
    res = least_squares(
        lambda z: problem.residuals(full(z)),
        start,
        bounds=(problem.lower[free], problem.upper[free]),
        method="trf",
        diff_step=1e-6,
        x_scale=1.0,
        xtol=1e-10,
        ftol=1e-10,
        gtol=1e-10,
    )
    theta = full(res.x)
    r = problem.residuals(theta)
    return theta, float(r @ r)


def _jacobian(problem: _Problem, theta: np.ndarray, h: float = 1e-4) -> np.ndarray:
    cols = []
    for i in range(theta.size):
        up, down = theta.copy(), theta.copy()
        up[i] += h
        down[i] -= h
        cols.append((problem.residuals(up) - problem.residuals(down)) / (2 * h))
    return np.column_stack(cols)


def _solve(problem: _Problem, x0, n_starts, seed, n_quant, k, weight_note, absolute_sd=False) -> FitResult:
    import pandas as pd
    from scipy import stats

    rng = np.random.default_rng(seed)
    starts = [x0] + [rng.uniform(problem.lower, problem.upper) for _ in range(n_starts - 1)]
    runs = []
    for i, start in enumerate(starts):
        theta, rss = _least_squares(problem, start)
        runs.append(
            {
                "start": i,
                **{f"start_{n}": math.exp(v) for n, v in zip(problem.names, start, strict=True)},
                **{n: math.exp(v) for n, v in zip(problem.names, theta, strict=True)},
                "rss": rss,
                "_theta": theta,
            }
        )
    best = min(runs, key=lambda r: r["rss"])
    theta, rss = best["_theta"], best["rss"]
    dof = n_quant - k
    J = _jacobian(problem, theta)
    s2 = 1.0 if absolute_sd else (rss / dof if dof > 0 else math.nan)
    at_bound = (np.isclose(theta, problem.lower, atol=1e-6)) | (np.isclose(theta, problem.upper, atol=1e-6))
    u, sv, vt = np.linalg.svd(J, full_matrices=False)
    identifiable = sv.size == theta.size and sv[-1] > 1e-8 * max(sv[0], 1e-300)
    if identifiable and (dof > 0 or absolute_sd):
        cov = s2 * (vt.T / sv**2) @ vt
        se = np.sqrt(np.diag(cov))
    else:
        cov = np.full((theta.size, theta.size), math.nan)
        se = np.full(theta.size, math.inf if not identifiable else math.nan)
    if absolute_sd:
        tq = float(stats.norm.ppf(0.975))
    else:
        tq = float(stats.t.ppf(0.975, dof)) if dof > 0 else math.nan
    pred = problem.predictions(theta)
    scale_factor = problem.signal_scale(pred) if problem.signal_rows.any() else math.nan
    if problem.signal_rows.any():
        pred = pred.copy()
        pred[problem.signal_rows] *= scale_factor
    obs = problem.obs
    table = obs[["time_h", "organ", "quantity", "value", "unit"]].copy()
    table["loq"] = obs["loq"]
    table["below_loq"] = problem.blq_rows
    factor = obs["scale_to_model"].to_numpy()
    factor = np.where(np.isnan(factor), 1.0, factor)
    table["predicted"] = pred / factor
    with np.errstate(divide="ignore", invalid="ignore"):
        table["fold_error"] = np.where(problem.blq_rows, np.nan, table["predicted"] / table["value"])
    residual = np.full(len(obs), np.nan)
    residual[problem.use] = problem.residuals(theta)
    table["residual"] = residual
    est = np.exp(theta)
    n = n_quant
    aic = n * math.log(max(rss, 1e-300) / n) + 2 * (k + 1)
    notes = [weight_note + ("; SDs taken as the true error (absolute_sd)" if absolute_sd else "")]
    if not absolute_sd and dof > 0 and rss < 1e-10 * n_quant:
        notes.append(
            "the model passes through the data (RSS ~ 0): the CIs reflect no measurement error; "
            "give SDs and use `absolute_sd=True` for mean ± SD data"
        )
    for name, flag in zip(problem.names, at_bound, strict=True):
        if flag:
            notes.append(f"{name} ended at a bound: its CI is not reliable; widen `bounds`")
    if not identifiable:
        notes.append("the Jacobian is rank-deficient: some fitted parameters are not identifiable from these data")
    if dof <= 0 and not absolute_sd:
        notes.append("no residual degrees of freedom: standard errors and CIs cannot be estimated")
    runs_frame = pd.DataFrame([{k2: v for k2, v in r.items() if k2 != "_theta"} for r in runs])
    return FitResult(
        names=problem.names,
        groups=dict(problem.groups),
        estimates=dict(zip(problem.names, est, strict=True)),
        initial={n_: float(problem.base[t[0]]) for n_, t in problem.groups.items()},
        log_se=dict(zip(problem.names, se, strict=True)),
        ci_95=dict(zip(problem.names, zip(np.exp(theta - tq * se), np.exp(theta + tq * se), strict=True), strict=True)),
        covariance_log=cov,
        rss=rss,
        n_observations=n,
        n_fitted=k,
        aic=aic,
        signal_scale=scale_factor,
        observations=table,
        starts=runs_frame,
        params=problem.parameters(theta),
        notes=tuple(notes),
        _problem=problem,
        _theta=theta,
        _absolute_sd=absolute_sd,
    )


@dataclass(frozen=True)
class FitResult:
    """Outcome of :func:`fit`.

    Attributes
    ----------
    names : tuple of str
        Fitted names.
    groups : dict
        Fitted name -> model parameter names set to its value.
    estimates, initial : dict
        Fitted and starting values, in each parameter's unit.
    log_se : dict
        Standard error of :math:`\\ln p` (relative SE of p).
    ci_95 : dict
        95 % confidence interval (lower, upper) of each estimate, from the Jacobian (t quantile).
    covariance_log : numpy.ndarray
        Covariance of the log parameters.
    rss : float
        Residual sum of squares at the optimum.
    n_observations, n_fitted : int
        Quantified observations; fitted values (parameters + scale factors).
    aic : float
        :math:`n \\ln(RSS/n) + 2(k+1)`.
    signal_scale : float
        Fitted scale of ``signal`` rows (model %ID -> a.u.), NaN without signal rows.
    observations : pandas.DataFrame
        The data with ``predicted`` (data unit), ``fold_error`` (predicted/observed) and ``residual``.
    starts : pandas.DataFrame
        Start and end point and RSS of every optimiser start.
    params : ModelParameters
        The model with the fitted values (source "fitted to <data>").
    notes : tuple of str
        Weighting used and warnings (parameters at bounds, non-identifiability).
    """

    names: tuple[str, ...]
    groups: dict
    estimates: dict
    initial: dict
    log_se: dict
    ci_95: dict
    covariance_log: np.ndarray
    rss: float
    n_observations: int
    n_fitted: int
    aic: float
    signal_scale: float
    observations: Any
    starts: Any
    params: Any
    notes: tuple[str, ...]
    _problem: _Problem = field(repr=False)
    _theta: np.ndarray = field(repr=False)
    _absolute_sd: bool = field(default=False, repr=False)

    def standard_error(self, name: str) -> float:
        """SE of the estimate in its unit (delta method: estimate × SE of the log)."""
        return float(self.estimates[name] * self.log_se[name])

    @property
    def fold_errors(self) -> np.ndarray:
        """Predicted/observed of the quantified rows."""
        f = self.observations["fold_error"].to_numpy(dtype=float)
        return f[np.isfinite(f)]

    @property
    def share_within_2_fold(self) -> float:
        """Share of quantified rows with predicted/observed in [1/2, 2]."""
        f = self.fold_errors
        return float(np.mean((f >= 0.5) & (f <= 2.0))) if f.size else math.nan

    @property
    def geometric_mean_fold_error(self) -> float:
        """Geometric mean fold error of the quantified rows, :math:`\\exp(\\overline{|\\ln(\\hat y / y)|})`."""
        f = self.fold_errors
        return float(np.exp(np.mean(np.abs(np.log(f))))) if f.size else math.nan

    def table(self):
        """Estimates with SE and 95 % CI, one row per fitted name.

        Returns
        -------
        pandas.DataFrame
            Columns ``name, initial, estimate, se, ci_lower, ci_upper, log_se, unit, targets``.
        """
        import pandas as pd

        from exopk.model.parameters import _all_specs

        specs = _all_specs()
        rows = []
        for name in self.names:
            first = self.groups[name][0]
            unit = specs[first].unit if first in specs else ""
            rows.append(
                {
                    "name": name,
                    "initial": self.initial[name],
                    "estimate": self.estimates[name],
                    "se": self.standard_error(name),
                    "ci_lower": self.ci_95[name][0],
                    "ci_upper": self.ci_95[name][1],
                    "log_se": self.log_se[name],
                    "unit": unit,
                    "targets": ",".join(self.groups[name]),
                }
            )
        return pd.DataFrame(rows)

    def profile(self, name: str, n_points: int = 13, span_log: float | None = None):
        """Profile likelihood of one fitted parameter.

        The parameter is fixed on a grid (log-spaced around the estimate, within its bounds) and
        the others are refitted at each point.

        Parameters
        ----------
        name : str
            A fitted name.
        n_points : int
            Grid points (odd numbers include the estimate).
        span_log : float, optional
            Half-width of the grid in ln units (default: 8 × SE of ln p, about 4 CI half-widths;
            at most the bounds).

        Returns
        -------
        pandas.DataFrame
            Columns ``value, rss, delta_neg2_log_likelihood`` (:math:`n \\ln(RSS/RSS_{min})`;
            :math:`RSS - RSS_{min}` with ``absolute_sd``), and
            attributes ``attrs["ci_95"]`` = (lower, upper) where the profile stays below 3.84
            (NaN where it does not cross inside the grid).
        """
        import pandas as pd

        if name not in self.names:
            raise FitError(f"profile: {name!r} was not fitted (fitted: {', '.join(self.names)})")
        i = self.names.index(name)
        p = self._problem
        se = self.log_se[name]
        if span_log is None:
            span_log = 4.0 * 2.0 * se if np.isfinite(se) and se > 0 else math.log(10.0)
        grid = np.linspace(
            max(self._theta[i] - span_log, p.lower[i]), min(self._theta[i] + span_log, p.upper[i]), n_points
        )
        rss = np.array([_least_squares(p, self._theta, fixed={i: float(value)})[1] for value in grid])
        best = min(self.rss, float(rss.min()))
        delta: np.ndarray
        if self._absolute_sd:  # known SDs: -2 log L differs by the RSS difference
            delta = rss - best
        else:
            delta = self.n_observations * np.log(np.maximum(rss, 1e-300) / max(best, 1e-300))
        frame = pd.DataFrame({"value": np.exp(grid), "rss": rss, "delta_neg2_log_likelihood": delta})
        root = np.sqrt(np.maximum(delta, 0.0))
        threshold = math.sqrt(CHI2_95_1DF)
        j = int(np.argmin(delta))
        lower = upper = math.nan
        left = np.flatnonzero(root[:j] > threshold)
        if left.size:  # signed root is near-linear in ln p: interpolate it, not the squared profile
            a = int(left[-1])
            lower = float(np.exp(np.interp(threshold, [root[a + 1], root[a]], [grid[a + 1], grid[a]])))
        right = np.flatnonzero(root[j + 1 :] > threshold)
        if right.size:
            b = j + 1 + int(right[0])
            upper = float(np.exp(np.interp(threshold, [root[b - 1], root[b]], [grid[b - 1], grid[b]])))
        frame.attrs["ci_95"] = (lower, upper)
        return frame

    def plot_observed_vs_predicted(self, ax=None):
        """Observed vs predicted, log-log, with the identity and 2-fold lines.

        Returns
        -------
        matplotlib.figure.Figure
        """
        import matplotlib.pyplot as plt

        if ax is None:
            fig, ax = plt.subplots(figsize=(5, 5))
        else:
            fig = ax.figure
        obs = self.observations[~self.observations["below_loq"]]
        for (quantity, organ), group in obs.groupby(["quantity", "organ"], sort=True):
            ax.loglog(group["value"], group["predicted"], "o", label=f"{organ} ({quantity})")
        values = np.concatenate([obs["value"].to_numpy(float), obs["predicted"].to_numpy(float)])
        values = values[values > 0]
        lo, hi = values.min() / 3, values.max() * 3
        line = np.array([lo, hi])
        ax.plot(line, line, "k-", lw=1)
        ax.plot(line, 2 * line, "k:", lw=1)
        ax.plot(line, line / 2, "k:", lw=1)
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
        ax.set_xlabel("observed (data unit)")
        ax.set_ylabel("predicted (data unit)")
        ax.set_title(f"within 2-fold: {100 * self.share_within_2_fold:.0f} %")
        ax.legend(fontsize=7)
        return fig

    def plot_curves(self, t_end_h: float | None = None, n_times: int = 400):
        """Fitted model curves with the data, one panel per quantity.

        Returns
        -------
        matplotlib.figure.Figure
        """
        import matplotlib.pyplot as plt

        from exopk.analysis.observations import _series

        p = self._problem
        data = self.observations
        t_end = t_end_h or float(data["time_h"].max()) * 1.1 or 1.0
        t = np.linspace(0.0, t_end, n_times)
        if p.label is None:
            from exopk.simulation import simulate

            ev, labelled = simulate(self.params, p.regimen, t, method=p.method), None
        else:
            from exopk.observe.labels import simulate_label

            labelled = simulate_label(self.params, p.regimen, t, p.label, method=p.method)
            ev = labelled.ev
        quantities = list(dict.fromkeys(data["quantity"]))
        fig, axes = plt.subplots(1, len(quantities), figsize=(5 * len(quantities), 4), squeeze=False)
        for ax, quantity in zip(axes[0], quantities, strict=True):
            rows = data[data["quantity"] == quantity]
            unit = rows["unit"].iloc[0]
            factor = _unit_factor(quantity, unit)
            for organ in dict.fromkeys(rows["organ"]):
                curve = _series(ev, labelled, organ, quantity)
                if quantity == "signal":
                    curve = curve * self.signal_scale
                (line,) = ax.plot(t[1:], curve[1:] / factor, label=organ)
                pts = rows[(rows["organ"] == organ) & ~rows["below_loq"]]
                ax.plot(pts["time_h"], pts["value"], "o", color=line.get_color())
                cens = rows[(rows["organ"] == organ) & rows["below_loq"]]
                if len(cens):
                    ax.plot(cens["time_h"], cens["loq"], "v", mfc="none", color=line.get_color())
            ax.set_yscale("log")
            ax.set_xlabel("time (h)")
            ax.set_ylabel(f"{quantity} ({unit})")
            ax.legend(fontsize=7)
        fig.tight_layout()
        return fig

    def report(self, profile: str | None = None) -> str:
        """A short Markdown report: model, method, estimates with CIs, goodness of fit, notes."""
        p = self._problem
        lines = [
            f"# Fit of {', '.join(self.names)} to "
            f"{p.source.removeprefix('fitted to ').removesuffix(' (exopk.analysis.fit)')}",
            "",
            f"- model: species {p.base.species}, EV {p.base.ev}, scenarios {', '.join(p.base.scenarios) or 'none'}, "
            f"label {getattr(p.label, 'name', p.label) or 'none (intact EVs)'}",
            f"- residuals: {p.scale} scale; below-LOQ rule: {p.blq}; {self.notes[0]}",
            f"- observations: {self.n_observations} quantified (+{int(np.sum(p.blq_rows))} below LOQ); "
            f"fitted values: {self.n_fitted}; starts: {len(self.starts)}",
            "",
            "| name | initial | estimate | SE | 95 % CI | unit |",
            "|---|---|---|---|---|---|",
        ]
        for _, row in self.table().iterrows():
            lines.append(
                f"| {row['name']} | {row['initial']:.4g} | {row['estimate']:.4g} | {row['se']:.3g} | "
                f"{row['ci_lower']:.4g} – {row['ci_upper']:.4g} | {row['unit']} |"
            )
        lines += [
            "",
            f"Goodness of fit: RSS {self.rss:.4g}, AIC {self.aic:.4g}, share within 2-fold "
            f"{100 * self.share_within_2_fold:.0f} %, geometric mean fold error {self.geometric_mean_fold_error:.3g}.",
        ]
        if profile is not None:
            prof = self.profile(profile)
            lo, hi = prof.attrs["ci_95"]
            lines.append(f"Profile likelihood 95 % interval of {profile}: {lo:.4g} – {hi:.4g}.")
        if len(self.notes) > 1:
            lines += ["", "Notes:"] + [f"- {n}" for n in self.notes[1:]]
        cols = ["time_h", "organ", "quantity", "value", "predicted", "fold_error", "unit"]
        lines += ["", "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
        for _, row in self.observations.iterrows():
            lines.append(
                "| " + " | ".join(f"{row[c]:.4g}" if isinstance(row[c], float) else str(row[c]) for c in cols) + " |"
            )
        return "\n".join(lines) + "\n"

    def to_scenario_toml(self, data_name: str | None = None) -> str:
        """The fitted values as a scenario overlay file (usable with ``--scenario FILE``)."""
        name = data_name or self._problem.source
        lines = [
            f"# Parameters fitted by exopk fit to {name}; apply with `--scenario <this file>`.",
            f"# Model: species {self.params.species}, EV {self.params.ev}, scenarios "
            f"{', '.join(self._problem.base.scenarios) or 'none'}.",
            "",
            "[metadata]",
            'scenario = "fitted"',
            f'description = "Values fitted to {_toml_escape(name)}."',
            "",
            "[changes]",
        ]
        for n_ in self.names:
            lo, hi = self.ci_95[n_]
            for target in self.groups[n_]:
                source = (
                    f"fitted to {name} (exopk fit; {n_}; 95 % CI {lo:.4g} - {hi:.4g}; "
                    f"RSS {self.rss:.4g}, n = {self.n_observations})"
                )
                lines.append(f'{target} = {{ value = {self.estimates[n_]:.8g}, source = "{_toml_escape(source)}" }}')
        return "\n".join(lines) + "\n"


def _toml_escape(text: str) -> str:
    return str(text).replace("\\", "\\\\").replace('"', '\\"')


# --- command line ----------------------------------------------------------------------------


def _unit_factor(quantity: str, unit: str) -> float:
    from exopk.analysis.observations import QUANTITY_UNITS

    f = QUANTITY_UNITS[quantity][unit]
    return 1.0 if f is None else f
