"""Sensitivity of model outputs to parameters: local normalised coefficients and global Sobol indices."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from exopk.analysis.population import check_chunking, portable, solve_chunk
from exopk.dosing import Dose, Regimen, as_regimen
from exopk.errors import ParameterError, SensitivityError
from exopk.model.graph import REPORTED_ORGANS
from exopk.model.parameters import _SPECS, ModelParameters, check_flow_and_volume_balance, parameter_names, valid_mask
from exopk.simulation import check_times
from exopk.solve.executors import map_chunks, progress_bar
from exopk.solve.linear import default_workers

OUTPUT_METRICS = {
    "auc": "%ID·h",
    "cmax": "%ID",
    "tmax": "h",
    "final": "%ID",
}
"""Model outputs ``<organ>_<metric>``: exact AUC of %ID from 0 to the last time, highest %ID on
the output grid, its time, and %ID at the last time."""


def parse_outputs(outputs: Sequence[str]) -> list[tuple[str, str]]:
    """``["brain_auc", "liver_cmax"]`` -> ``[("brain", "auc"), ("liver", "cmax")]``, validated."""
    if isinstance(outputs, str):
        outputs = [outputs]
    if len(outputs) == 0:
        raise SensitivityError("`outputs` is empty; give e.g. ['brain_auc', 'liver_cmax'].")
    parsed = []
    for text in outputs:
        organ, _, metric = str(text).rpartition("_")
        if organ not in REPORTED_ORGANS or metric not in OUTPUT_METRICS:
            raise SensitivityError(
                f"unknown output {text!r}: expected <organ>_<metric> with organ in {', '.join(REPORTED_ORGANS)} "
                f"and metric in {', '.join(OUTPUT_METRICS)} (e.g. 'brain_auc')."
            )
        parsed.append((organ, metric))
    return parsed


def outputs_chunk(
    state: tuple,
    regimen: Regimen,
    t_h: np.ndarray,
    variations: Mapping[str, np.ndarray],
    outputs: Sequence[tuple[str, str]],
    workers: int,
    memory_mb: float,
) -> np.ndarray:
    """Model outputs of one chunk of parameter sets, shape (n_chunk, n_outputs). Picklable for executors."""
    pct, auc = solve_chunk(state, regimen, t_h, variations, workers, memory_mb)
    out = np.empty((pct.shape[0], len(outputs)))
    for k, (organ, metric) in enumerate(outputs):
        j = REPORTED_ORGANS.index(organ)
        if metric == "auc":
            out[:, k] = auc[:, j]
        elif metric == "cmax":
            out[:, k] = pct[:, :, j].max(axis=1)
        elif metric == "tmax":
            out[:, k] = t_h[pct[:, :, j].argmax(axis=1)]
        else:
            out[:, k] = pct[:, -1, j]
    return out


def evaluate_outputs(
    params: ModelParameters,
    regimen: Regimen | Dose | Sequence[Dose],
    t_h: ArrayLike,
    variations: Mapping[str, np.ndarray],
    outputs: Sequence[str],
    *,
    executor: Any = None,
    chunk_size: int = 2048,
    memory_mb: float = 256.0,
    workers: int | None = None,
    progress: bool | None = None,
    description: str = "model runs",
) -> np.ndarray:
    """Outputs (``"brain_auc"``, ...) of many parameter sets, shape (n_sets, n_outputs).

    A parameter sweep: sets are solved in chunks (:func:`simulate_batch`, exact), each chunk
    a task for ``executor`` (any :class:`concurrent.futures.Executor` or a dask client).
    Results do not depend on the executor.
    """
    check_chunking(chunk_size, memory_mb, workers)
    parsed = parse_outputs(outputs)
    reg = as_regimen(regimen)
    t = check_times(t_h)
    n = len(next(iter(variations.values())))
    threads = default_workers() if workers is None else workers
    state = portable(params)
    chunks = [slice(s, min(s + chunk_size, n)) for s in range(0, n, chunk_size)]
    arguments = [
        (state, reg, t, {k: np.ascontiguousarray(v[c]) for k, v in variations.items()}, parsed, threads, memory_mb)
        for c in chunks
    ]
    bar = progress_bar(len(chunks), description, progress)
    try:
        results = map_chunks(outputs_chunk, arguments, executor=executor, bar=bar)
    finally:
        if bar is not None:
            bar.close()
    return np.concatenate(results, axis=0)


def variable_parameters(params: ModelParameters) -> tuple[str, ...]:
    """Parameters a sensitivity analysis can move: finite and non-zero reference values."""
    return tuple(name for name in parameter_names() if math.isfinite(params.values[name]) and params.values[name] != 0)


def _check_parameters(params: ModelParameters, parameters: Sequence[str] | None) -> tuple[str, ...]:
    if parameters is None:
        return variable_parameters(params)
    names = tuple(parameters)
    if not names:
        raise SensitivityError("`parameters` is empty.")
    for name in names:
        if name not in _SPECS:
            raise SensitivityError(f"unknown parameter {name!r}; see exopk.parameter_names().")
        value = params.values[name]
        if not math.isfinite(value):
            raise SensitivityError(f"`{name}` = {value!r}: only finite parameters can be varied (linear model).")
    if len(set(names)) != len(names):
        raise SensitivityError(f"`parameters` lists a name twice: {names!r}.")
    return names


@dataclass(frozen=True, slots=True)
class LocalSensitivity:
    """Normalised local sensitivity coefficients :math:`S_{ij} = \\partial \\ln y_j / \\partial \\ln p_i`.

    Attributes
    ----------
    parameters : tuple of str
    outputs : tuple of str
    coefficients : ndarray, shape (n_parameters, n_outputs)
        A coefficient of 0.5 means a 1 % rise of the parameter raises the output by 0.5 %.
    nominal_outputs : ndarray, shape (n_outputs,)
        Outputs at the reference parameters (units: see :data:`OUTPUT_METRICS`).
    schemes : tuple of str
        ``"central"`` or ``"backward"`` (when the parameter cannot move up, e.g. a fraction at 1).
    relative_step : float
    """

    parameters: tuple[str, ...]
    outputs: tuple[str, ...]
    coefficients: np.ndarray
    nominal_outputs: np.ndarray
    schemes: tuple[str, ...]
    relative_step: float

    def to_frame(self):
        """Tidy table ``parameter, output, coefficient, coefficient_unit, nominal_output, output_unit, scheme``."""
        import pandas as pd

        rows = []
        for i, name in enumerate(self.parameters):
            for j, out in enumerate(self.outputs):
                rows.append(
                    {
                        "parameter": name,
                        "output": out,
                        "coefficient": self.coefficients[i, j],
                        "coefficient_unit": "1",  # d ln(output) / d ln(parameter): dimensionless
                        "nominal_output": self.nominal_outputs[j],
                        "output_unit": OUTPUT_METRICS[out.rpartition("_")[2]],
                        "scheme": self.schemes[i],
                    }
                )
        return pd.DataFrame(rows)


def local_sensitivity(
    params: ModelParameters,
    regimen: Regimen | Dose | Sequence[Dose],
    t_h: ArrayLike,
    outputs: Sequence[str] = ("brain_auc", "liver_cmax", "blood_auc"),
    *,
    parameters: Sequence[str] | None = None,
    relative_step: float = 1e-4,
    executor: Any = None,
    workers: int | None = None,
    progress: bool | None = None,
) -> LocalSensitivity:
    """Normalised local sensitivity coefficients of model outputs to parameters, by finite differences.

    .. math::

        S_{ij} = \\frac{p_i}{y_j} \\frac{\\partial y_j}{\\partial p_i}
        \\approx \\frac{y_j(p_i(1+h)) - y_j(p_i(1-h))}{2 h\\, y_j(p)}

    (a backward difference where ``p(1+h)`` is invalid, e.g. a fraction at its upper bound).
    All ``2 n_parameters + 1`` runs go through :func:`simulate_batch` together.

    Parameters
    ----------
    params : ModelParameters
    regimen : Regimen, IVBolus, IVInfusion or list of doses
    t_h : array_like
        Output times (h); AUCs run from 0 to the last one.
    outputs : sequence of str, default ("brain_auc", "liver_cmax", "blood_auc")
        ``<organ>_<metric>``, metric in :data:`OUTPUT_METRICS`.
    parameters : sequence of str, optional
        Default: every parameter with a finite, non-zero reference value (a zero parameter
        has a zero normalised coefficient).
    relative_step : float, default 1e-4
        h above.
    executor, workers, progress
        As in :func:`evaluate_outputs`.

    Returns
    -------
    LocalSensitivity
    """
    names = _check_parameters(params, parameters)
    if not (isinstance(relative_step, float) and 0 < relative_step < 0.1):
        raise SensitivityError(f"`relative_step` must be a float in (0, 0.1); got {relative_step!r}.")
    parse_outputs(outputs)
    n_p = len(names)
    base = params.values
    up_ok = []
    for name in names:
        up = base[name] * (1 + relative_step)
        up_ok.append(bool(valid_mask(_SPECS[name].rule, np.array([up]))[0]))
    variations = {name: np.full(2 * n_p + 1, base[name]) for name in names}
    for i, name in enumerate(names):
        variations[name][1 + 2 * i] = base[name] * (1 + relative_step) if up_ok[i] else base[name]
        variations[name][2 + 2 * i] = base[name] * (1 - relative_step)
    y = evaluate_outputs(
        params, regimen, t_h, variations, outputs, executor=executor, workers=workers, progress=progress,
        description="local sensitivity",
    )  # fmt: skip
    y0 = y[0]
    plus, minus = y[1::2], y[2::2]
    with np.errstate(divide="ignore", invalid="ignore"):
        central = (plus - minus) / (2 * relative_step * y0)
        backward = (y0 - minus) / (relative_step * y0)
    coefficients = np.where(np.array(up_ok)[:, None], central, backward)
    return LocalSensitivity(
        parameters=names,
        outputs=tuple(outputs),
        coefficients=coefficients,
        nominal_outputs=y0,
        schemes=tuple("central" if ok else "backward" for ok in up_ok),
        relative_step=relative_step,
    )


@dataclass(frozen=True, slots=True)
class SobolIndices:
    """First-order, total-order (and second-order) Sobol indices with bootstrap confidence intervals.

    Attributes
    ----------
    names : tuple of str
        Inputs, in order.
    outputs : tuple of str
    first_order, total_order : ndarray, shape (n_inputs, n_outputs)
        S1 (Saltelli et al. 2010 estimator) and ST (Jansen 1999 estimator).
    first_order_ci, total_order_ci : ndarray, shape (2, n_inputs, n_outputs)
        Lower and upper bounds of the bootstrap percentile interval.
    second_order : ndarray, shape (n_inputs, n_inputs, n_outputs) or None
        S2 (Saltelli 2002 estimator; upper triangle, NaN elsewhere), when computed.
    n_base : int
        N, the base sample size.
    n_evaluations : int
        Model runs: N (2 d + 2) with second order, N (d + 2) without.
    confidence : float
    """

    names: tuple[str, ...]
    outputs: tuple[str, ...]
    first_order: np.ndarray
    total_order: np.ndarray
    first_order_ci: np.ndarray
    total_order_ci: np.ndarray
    second_order: np.ndarray | None
    n_base: int
    n_evaluations: int
    confidence: float
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def to_frame(self):
        """Tidy table ``input, output, index, value, ci_low, ci_high, unit`` (index ``S1`` or ``ST``).

        The indices are shares of the output's variance: dimensionless, unit ``1``.
        """
        import pandas as pd

        rows = []
        for i, name in enumerate(self.names):
            for j, out in enumerate(self.outputs):
                for label, value, ci in (
                    ("S1", self.first_order, self.first_order_ci),
                    ("ST", self.total_order, self.total_order_ci),
                ):
                    rows.append(
                        {
                            "input": name,
                            "output": out,
                            "index": label,
                            "value": value[i, j],
                            "ci_low": ci[0, i, j],
                            "ci_high": ci[1, i, j],
                            "unit": "1",
                        }
                    )
        return pd.DataFrame(rows)


def saltelli_design(n_inputs: int, n_base: int, *, second_order: bool = True, seed=None) -> np.ndarray:
    """Saltelli's sampling design in the unit hypercube, from a scrambled Sobol' sequence.

    Rows: A (N), B (N), then :math:`A_B^{(i)}` (A with column i from B) for each input, then
    (with ``second_order``) :math:`B_A^{(i)}`. Shape (N (d + 2), d) or (N (2 d + 2), d).
    """
    if isinstance(n_inputs, bool) or not isinstance(n_inputs, int) or n_inputs < 1:
        raise SensitivityError(f"`n_inputs` must be a positive integer; got {n_inputs!r}.")
    if isinstance(n_base, bool) or not isinstance(n_base, int) or n_base < 2 or n_base & (n_base - 1):
        raise SensitivityError(
            f"`n` must be a power of 2 (Sobol' sequences balance at 2^m points), >= 2; got {n_base!r}."
        )
    from scipy.stats import qmc  # scipy.stats takes ~0.3 s to import: only when needed

    d = n_inputs
    base = qmc.Sobol(d=2 * d, scramble=True, seed=seed).random_base2(int(math.log2(n_base)))
    A, B = base[:, :d], base[:, d:]
    blocks = [A, B]
    for i in range(d):
        AB = A.copy()
        AB[:, i] = B[:, i]
        blocks.append(AB)
    if second_order:
        for i in range(d):
            BA = B.copy()
            BA[:, i] = A[:, i]
            blocks.append(BA)
    return np.concatenate(blocks, axis=0)


def _indices(fA, fB, fAB):
    """S1 and ST from evaluations (..., N, k) and (..., d, N, k).

    f(B) is centred on the mean over A and B first: the S1 numerator's expectation is unchanged
    (E[f(A_B) - f(A)] = 0) but its variance is much smaller when the outputs' mean is large
    compared with their spread.
    """
    both = np.concatenate([fA, fB], axis=-2)
    var = np.var(both, axis=-2)
    centred = fB - both.mean(axis=-2, keepdims=True)
    s1 = np.mean(centred[..., None, :, :] * (fAB - fA[..., None, :, :]), axis=-2) / var[..., None, :]
    st = 0.5 * np.mean((fA[..., None, :, :] - fAB) ** 2, axis=-2) / var[..., None, :]
    return s1, st


def sobol_analyze(
    y: ArrayLike,
    n_inputs: int,
    n_base: int,
    *,
    second_order: bool = True,
    n_bootstrap: int = 1000,
    confidence: float = 0.95,
    seed=None,
    names: Sequence[str] | None = None,
    outputs: Sequence[str] | None = None,
) -> SobolIndices:
    """Sobol indices from model outputs on :func:`saltelli_design` rows.

    .. math::

        S_i = \\frac{\\frac1N \\sum f(B)\\,(f(A_B^{(i)}) - f(A))}{V},\\qquad
        S_{T,i} = \\frac{\\frac1{2N} \\sum (f(A) - f(A_B^{(i)}))^2}{V}

    with V the variance of f over A and B (Saltelli et al. 2010, Comput Phys Commun 181:259,
    Table 2, estimators (b) and (f) = Jansen 1999). Confidence intervals: percentile bootstrap
    over the N base rows.

    Parameters
    ----------
    y : array_like, shape (n_rows,) or (n_rows, n_outputs)
    n_inputs, n_base : int
        d and N of the design.
    second_order : bool, default True
        Whether the design has the :math:`B_A` blocks (then S2 is computed too).
    n_bootstrap : int, default 1000
    confidence : float, default 0.95
    seed : optional
        Seed of the bootstrap resampling.
    names, outputs : sequence of str, optional
        Labels.

    Returns
    -------
    SobolIndices
    """
    d, N = n_inputs, n_base
    Y = np.asarray(y, dtype=float)
    if Y.ndim == 1:
        Y = Y[:, None]
    expected = N * (2 * d + 2 if second_order else d + 2)
    if Y.shape[0] != expected:
        raise SensitivityError(
            f"`y` has {Y.shape[0]} rows; the design has N (d + 2{' + d' if second_order else ''}) = {expected}."
        )
    if not np.all(np.isfinite(Y)):
        raise SensitivityError("model outputs hold NaN or infinite values.")
    if not (0 < confidence < 1):
        raise SensitivityError(f"`confidence` must lie in (0, 1); got {confidence!r}.")
    if isinstance(n_bootstrap, bool) or not isinstance(n_bootstrap, int) or n_bootstrap < 10:
        raise SensitivityError(f"`n_bootstrap` must be an integer >= 10; got {n_bootstrap!r}.")
    k = Y.shape[1]
    fA, fB = Y[:N], Y[N : 2 * N]
    fAB = Y[2 * N : (2 + d) * N].reshape(d, N, k)
    s1, st = _indices(fA, fB, fAB)
    s2 = None
    if second_order:
        fBA = Y[(2 + d) * N :].reshape(d, N, k)
        var = np.var(np.concatenate([fA, fB]), axis=0)
        s2 = np.full((d, d, k), np.nan)
        for i in range(d):
            for j in range(i + 1, d):
                vij = np.mean(fBA[i] * fAB[j] - fA * fB, axis=0) / var
                s2[i, j] = vij - s1[i] - s1[j]
    rng = np.random.default_rng(seed)
    lo_q, hi_q = 50 * (1 - confidence), 50 * (1 + confidence)
    s1_boot = np.empty((n_bootstrap, d, k))
    st_boot = np.empty((n_bootstrap, d, k))
    for b0 in range(0, n_bootstrap, 50):  # batches keep the resampled arrays small
        idx = rng.integers(0, N, size=(min(50, n_bootstrap - b0), N))
        s1_boot[b0 : b0 + idx.shape[0]], st_boot[b0 : b0 + idx.shape[0]] = _indices(
            fA[idx], fB[idx], np.moveaxis(fAB[:, idx], 0, 1)
        )
    s1_ci = np.percentile(s1_boot, [lo_q, hi_q], axis=0)
    st_ci = np.percentile(st_boot, [lo_q, hi_q], axis=0)
    return SobolIndices(
        names=tuple(names) if names is not None else tuple(f"x{i + 1}" for i in range(d)),
        outputs=tuple(outputs) if outputs is not None else tuple(f"y{j + 1}" for j in range(k)),
        first_order=s1,
        total_order=st,
        first_order_ci=s1_ci,
        total_order_ci=st_ci,
        second_order=s2,
        n_base=N,
        n_evaluations=Y.shape[0],
        confidence=confidence,
    )


def sobol_indices(
    function: Callable[[np.ndarray], ArrayLike],
    bounds: ArrayLike,
    n: int = 1024,
    *,
    log_scale: bool | Sequence[bool] = False,
    second_order: bool = True,
    n_bootstrap: int = 1000,
    confidence: float = 0.95,
    seed=None,
    names: Sequence[str] | None = None,
    outputs: Sequence[str] | None = None,
) -> SobolIndices:
    """Global Sobol sensitivity of a vectorised function of independent uniform (or log-uniform) inputs.

    Parameters
    ----------
    function : callable
        ``function(X)`` with X of shape (n_rows, d) returns shape (n_rows,) or (n_rows, n_outputs).
    bounds : array_like, shape (d, 2)
        Lower and upper bound of each input.
    n : int, default 1024
        Base sample size N, a power of 2; the function is evaluated on N (2 d + 2) rows
        (N (d + 2) without second order).
    log_scale : bool or sequence of bool, default False
        Inputs uniform in log space between their bounds (bounds must be positive).
    second_order, n_bootstrap, confidence
        See :func:`sobol_analyze`.
    seed : optional
        Seeds the scrambled Sobol' sequence and the bootstrap.
    names, outputs : sequence of str, optional

    Returns
    -------
    SobolIndices

    Examples
    --------
    The Ishigami function (a = 7, b = 0.1) has S1 = (0.314, 0.442, 0) and ST = (0.558, 0.442, 0.244).
    """
    b = np.asarray(bounds, dtype=float)
    if b.ndim != 2 or b.shape[1] != 2 or b.shape[0] < 1:
        raise SensitivityError(f"`bounds` must have shape (n_inputs, 2); got {b.shape}.")
    if not np.all(np.isfinite(b)) or np.any(b[:, 1] <= b[:, 0]):
        raise SensitivityError(f"`bounds` must be finite with lower < upper; got {b.tolist()}.")
    d = b.shape[0]
    logs = np.broadcast_to(np.asarray(log_scale, dtype=bool), (d,))
    if np.any(b[logs, 0] <= 0):
        raise SensitivityError("log-scale inputs need positive bounds.")
    seeds = np.random.SeedSequence(seed).spawn(2)
    unit = saltelli_design(d, n, second_order=second_order, seed=np.random.default_rng(seeds[0]))
    lo = np.where(logs, np.log(np.where(logs, b[:, 0], 1.0)), b[:, 0])
    hi = np.where(logs, np.log(np.where(logs, b[:, 1], 1.0)), b[:, 1])
    X = lo + unit * (hi - lo)
    X[:, logs] = np.exp(X[:, logs])
    Y = np.asarray(function(X), dtype=float)
    if Y.shape[0] != X.shape[0]:
        raise SensitivityError(f"`function` returned {Y.shape[0]} rows for {X.shape[0]} inputs.")
    result = sobol_analyze(
        Y, d, n, second_order=second_order, n_bootstrap=n_bootstrap, confidence=confidence,
        seed=np.random.default_rng(seeds[1]), names=names, outputs=outputs,
    )  # fmt: skip
    return result


def default_bounds(params: ModelParameters, names: Sequence[str], factor: float) -> np.ndarray:
    """Bounds ``[p / factor, p · factor]`` around each reference value, checked against the parameter's rule."""
    if not (isinstance(factor, (int, float)) and math.isfinite(factor) and factor > 1):
        raise SensitivityError(f"`factor` must be a number > 1; got {factor!r}.")
    out = np.empty((len(names), 2))
    for i, name in enumerate(names):
        p = params.values[name]
        if p <= 0:
            raise SensitivityError(f"`{name}` = {p!r}: a factor range needs a positive reference; give `bounds`.")
        lo, hi = p / factor, p * factor
        if not valid_mask(_SPECS[name].rule, np.array([hi]))[0]:
            raise SensitivityError(
                f"`{name}` x {factor:g} = {hi:.4g} breaks its rule ({_SPECS[name].rule}); give `bounds` for it."
            )
        out[i] = lo, hi
    return out


def sobol_sensitivity(
    params: ModelParameters,
    regimen: Regimen | Dose | Sequence[Dose],
    t_h: ArrayLike,
    parameters: Sequence[str],
    outputs: Sequence[str] = ("brain_auc", "liver_cmax", "blood_auc"),
    *,
    n: int = 1024,
    factor: float = 2.0,
    bounds: Mapping[str, tuple[float, float]] | None = None,
    second_order: bool = True,
    n_bootstrap: int = 1000,
    confidence: float = 0.95,
    seed=None,
    executor: Any = None,
    chunk_size: int = 2048,
    workers: int | None = None,
    progress: bool | None = None,
) -> SobolIndices:
    """Sobol first- and total-order indices of model outputs over parameter ranges.

    Each parameter is log-uniform on ``[p / factor, p · factor]`` around its reference value p
    (or uniform on ``bounds[name]``), independently. The N (2 d + 2) model runs go through
    :func:`evaluate_outputs` in chunks (any executor or a dask client): the same numbers for
    the same ``seed`` whatever runs them.

    Parameters
    ----------
    params : ModelParameters
    regimen : Regimen, IVBolus, IVInfusion or list of doses
    t_h : array_like
        Output times (h).
    parameters : sequence of str
        The inputs.
    outputs : sequence of str, default ("brain_auc", "liver_cmax", "blood_auc")
    n : int, default 1024
        Base sample size (power of 2).
    factor : float, default 2
    bounds : Mapping[str, (float, float)], optional
        Explicit uniform ranges for some parameters (the others use ``factor``).
    second_order, n_bootstrap, confidence, seed
        See :func:`sobol_indices`.
    executor, chunk_size, workers, progress
        See :func:`evaluate_outputs`.

    Returns
    -------
    SobolIndices
    """
    names = _check_parameters(params, parameters)
    parse_outputs(outputs)
    bounds = dict(bounds or {})
    for name in bounds:
        if name not in names:
            raise SensitivityError(f"`bounds` names {name!r}, which is not in `parameters`.")
    b = default_bounds(params, [nm for nm in names if nm not in bounds], factor) if len(bounds) < len(names) else None
    table = np.empty((len(names), 2))
    logs = np.ones(len(names), dtype=bool)
    k = 0
    for i, name in enumerate(names):
        if name in bounds:
            lo, hi = (float(x) for x in bounds[name])
            if not valid_mask(_SPECS[name].rule, np.array([lo, hi])).all():
                raise SensitivityError(f"`bounds[{name!r}]` = {(lo, hi)} breaks its rule ({_SPECS[name].rule}).")
            table[i] = lo, hi
            logs[i] = False
        else:
            assert b is not None  # default bounds exist for every name without given bounds
            table[i] = b[k]
            k += 1

    def model(X: np.ndarray) -> np.ndarray:
        variations = {name: X[:, i] for i, name in enumerate(names)}
        values = {name: np.full(X.shape[0], v) for name, v in params.values.items()}
        values.update(variations)
        try:
            check_flow_and_volume_balance(values, where="in the Sobol sample")
        except ParameterError as error:
            raise SensitivityError(f"{error} Narrow `factor` or give `bounds` for the flows and volumes.") from None
        return evaluate_outputs(
            params, regimen, t_h, variations, outputs, executor=executor, chunk_size=chunk_size,
            workers=workers, progress=progress, description="Sobol runs",
        )  # fmt: skip

    result = sobol_indices(
        model, table, n, log_scale=logs.tolist(), second_order=second_order, n_bootstrap=n_bootstrap,
        confidence=confidence, seed=seed, names=names, outputs=tuple(outputs),
    )  # fmt: skip
    return SobolIndices(
        **{f: getattr(result, f) for f in SobolIndices.__dataclass_fields__ if f != "metadata"},
        metadata={"bounds": {name: tuple(table[i]) for i, name in enumerate(names)}, "log_uniform": logs.tolist()},
    )
