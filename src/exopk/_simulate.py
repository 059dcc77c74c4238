"""The simulation entry points: one parameter set (:func:`simulate`) or many (:func:`simulate_batch`)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

from ._dosing import Dose, Events, Regimen, as_regimen
from ._errors import ParameterError, SimulationError
from ._model import N_LIVE, organ_membership, rate_matrices, volumes
from ._parameters import ModelParameters, _check_value, _SPECS, check_flow_and_volume_balance
from ._result import BatchResult, SimulationResult
from ._solve import EIGENVECTOR_COND_LIMIT, batch_amounts, batch_auc, batch_modal, exact_single, expm_single, ode_single


def check_times(t_h: ArrayLike, name: str = "t_h") -> np.ndarray:
    """Validate output times: a non-empty, finite, non-negative, strictly increasing 1-D array."""
    try:
        t = np.asarray(t_h, dtype=float)
    except (TypeError, ValueError):
        raise SimulationError(f"`{name}` must be an array of times in hours; got {t_h!r}.") from None
    t = np.atleast_1d(t)
    if t.ndim != 1 or t.size == 0:
        raise SimulationError(f"`{name}` must be a non-empty 1-D array of times in hours; got shape {t.shape}.")
    if not np.all(np.isfinite(t)) or np.any(t < 0):
        raise SimulationError(f"`{name}` must be finite and non-negative (h); got min {np.nanmin(t)!r}, max {np.nanmax(t)!r}.")
    if np.any(np.diff(t) <= 0):
        raise SimulationError(f"`{name}` must be strictly increasing; got {t[:5]!r}...")
    return t


def simulate(
    params: ModelParameters,
    regimen: Regimen | Dose | Sequence[Dose],
    t_h: ArrayLike,
    *,
    method: Literal["exact", "expm", "ode"] | None = None,
    rtol: float = 1e-8,
    atol_particles: float | None = None,
    solver: Literal["BDF", "Radau", "LSODA"] = "BDF",
) -> SimulationResult:
    """Simulate one parameter set under a dosing regimen.

    Parameters
    ----------
    params : ModelParameters
        From :func:`load_parameters`, possibly changed with ``params.replace(...)``.
    regimen : Regimen, IVBolus, IVInfusion or list of doses
        What is given, when and how.
    t_h : array_like, shape (n_times,)
        Output times (h), strictly increasing, non-negative.
    method : {"exact", "expm", "ode"}, optional
        ``"exact"`` (default for the linear model): closed-form modal solution, falling back
        to matrix-exponential stepping when the eigenvectors are poorly conditioned;
        ``"expm"``: matrix-exponential stepping; ``"ode"`` (default when an organ has a finite
        ``capacity_particles``): stiff integrator with an analytic Jacobian.
    rtol : float, default 1e-8
        Relative tolerance of the ``"ode"`` path.
    atol_particles : float, optional
        Absolute tolerance of the ``"ode"`` path (particles); default ``1e-12 × dose``.
    solver : {"BDF", "Radau", "LSODA"}, default "BDF"
        Integrator of the ``"ode"`` path (:func:`scipy.integrate.solve_ivp`).

    Returns
    -------
    SimulationResult

    Raises
    ------
    SimulationError
        Invalid times or method, the exact method asked of a non-linear model, or a solver failure.
    DosingError
        Invalid doses.
    """
    if not isinstance(params, ModelParameters):
        raise SimulationError(f"`params` must be ModelParameters (see exopk.load_parameters); got {type(params).__name__}.")
    reg = as_regimen(regimen)
    t = check_times(t_h)
    if reg.total_particles <= 0:
        raise SimulationError("the regimen's total dose is 0 particles; %ID is undefined. Give a positive dose.")
    if method is None:
        method = "exact" if params.is_linear else "ode"
    if method not in ("exact", "expm", "ode"):
        raise SimulationError(f"`method` must be 'exact', 'expm' or 'ode'; got {method!r}.")
    if method != "ode" and not params.is_linear:
        raise SimulationError(
            f"`method`={method!r} needs the linear model, but an organ has a finite `capacity_particles`; use method='ode'."
        )
    if solver not in ("BDF", "Radau", "LSODA"):
        raise SimulationError(f"`solver` must be 'BDF', 'Radau' or 'LSODA'; got {solver!r}.")
    K, E = rate_matrices(params.values)
    K, E = K[0], E[0]
    events = reg.events()
    metadata: dict = {"species": params.species, "ev": params.ev, "parameter_files": params.files}
    used = method
    if method == "exact":
        amounts, cond = exact_single(K, E, events, t)
        metadata["eigenvector_condition_number"] = cond
        if amounts is None:
            amounts, used = expm_single(K, E, events, t), "expm"
    elif method == "expm":
        amounts = expm_single(K, E, events, t)
    else:
        atol = 1e-12 * reg.total_particles if atol_particles is None else float(atol_particles)
        amounts = ode_single(params, K, E, events, t, rtol=rtol, atol=atol, solver=solver)
    vol = volumes(params.values)
    return SimulationResult(
        t_h=t,
        amounts_particles=amounts,
        dose_particles=reg.total_particles,
        administered_particles=events.administered(t),
        params=params,
        regimen=reg,
        method=used,
        state_volumes_ml=vol.state_ml,
        organ_volumes_ml=vol.organ_ml,
        metadata=metadata,
    )


def _batch_values(params: ModelParameters, variations: Mapping[str, ArrayLike]) -> tuple[dict[str, np.ndarray], int]:
    if not variations:
        raise ParameterError("`variations` is empty; give at least one parameter name with an array of values.")
    arrays: dict[str, np.ndarray] = {}
    n_sets = None
    for name, raw in variations.items():
        if name not in _SPECS:
            raise ParameterError(f"unknown parameter {name!r} in `variations`; see exopk.parameter_names().")
        arr = np.asarray(raw, dtype=float)
        if arr.ndim != 1 or arr.size == 0:
            raise ParameterError(f"`variations[{name!r}]` must be a non-empty 1-D array; got shape {arr.shape}.")
        if n_sets is None:
            n_sets = arr.size
        elif arr.size != n_sets:
            raise ParameterError(f"`variations[{name!r}]` has {arr.size} values; the other parameters have {n_sets}.")
        bad = [i for i, x in enumerate(arr) if not _rule_ok(name, x)]
        if bad:
            i = bad[0]
            _check_value(f"variations[{name!r}][{i}]", _SPECS[name].rule, float(arr[i]))
        if _SPECS[name].rule == "positive_or_inf" and np.any(np.isfinite(arr)):
            raise ParameterError(f"`variations[{name!r}]`: batches solve the linear model only; capacities must be inf.")
        arrays[name] = arr
    values = {name: np.full(n_sets, value) for name, value in params.values.items()}
    values.update(arrays)
    check_flow_and_volume_balance(values, where="in `variations`")
    return values, int(n_sets)


def _rule_ok(name: str, value: float) -> bool:
    try:
        _check_value(name, _SPECS[name].rule, float(value))
    except ParameterError:
        return False
    return True


def _administered_integral(events: Events, t_end_h: float) -> float:
    """:math:`\\int_0^{T}` administered(t) dt, particles·h."""
    bolus = float(np.sum(events.bolus_amounts.sum(axis=1) * np.maximum(0.0, t_end_h - events.bolus_t_h)))
    total = bolus
    for t_s, t_e, r in zip(events.infusion_start_h, events.infusion_end_h, events.infusion_rates.sum(axis=1), strict=True):
        if t_end_h <= t_s:
            continue
        if t_end_h <= t_e:
            total += r * (t_end_h - t_s) ** 2 / 2.0
        else:
            total += r * ((t_e - t_s) ** 2 / 2.0 + (t_e - t_s) * (t_end_h - t_e))
    return total


def simulate_batch(
    params: ModelParameters,
    regimen: Regimen | Dose | Sequence[Dose],
    t_h: ArrayLike,
    variations: Mapping[str, ArrayLike],
    *,
    percentiles: Sequence[float] = (5.0, 50.0, 95.0),
    keep_amounts: bool = False,
    memory_mb: float = 64.0,
) -> BatchResult:
    """Simulate many parameter sets of the linear model under one regimen.

    Every set is solved exactly (eigen-decomposition, real arithmetic, decayed modes
    skipped). Output times are processed in blocks sized so that the working arrays stay
    near ``memory_mb``; only percentiles and per-set AUCs are kept unless ``keep_amounts``.

    Parameters
    ----------
    params : ModelParameters
        Base values for everything not varied.
    regimen : Regimen, IVBolus, IVInfusion or list of doses
    t_h : array_like, shape (n_times,)
        Output times (h).
    variations : Mapping[str, array_like of shape (n_sets,)]
        Values per set of the varied parameters, by name (see :func:`parameter_names`).
    percentiles : sequence of float, default (5, 50, 95)
        Percentiles of %ID over sets, per organ and time.
    keep_amounts : bool, default False
        Also return the full trajectories, shape (n_sets, n_times, n_organs) (memory!).
    memory_mb : float, default 64
        Target size of the working arrays of one time block.

    Returns
    -------
    BatchResult
    """
    if not isinstance(params, ModelParameters):
        raise SimulationError(f"`params` must be ModelParameters; got {type(params).__name__}.")
    reg = as_regimen(regimen)
    t = check_times(t_h)
    q = np.asarray(percentiles, dtype=float)
    if q.ndim != 1 or q.size == 0 or np.any((q < 0) | (q > 100)) or not np.all(np.isfinite(q)):
        raise SimulationError(f"`percentiles` must be numbers in [0, 100]; got {percentiles!r}.")
    if not (isinstance(memory_mb, (int, float)) and math.isfinite(memory_mb) and memory_mb > 0):
        raise SimulationError(f"`memory_mb` must be positive; got {memory_mb!r}.")
    if not params.is_linear:
        raise SimulationError("simulate_batch solves the linear model only; set every `capacity_particles` to inf.")
    values, n_sets = _batch_values(params, variations)
    events = reg.events()
    dose = reg.total_particles
    if dose <= 0:
        raise SimulationError("the regimen's total dose is 0 particles; %ID is undefined.")
    member = organ_membership()[:-1, :N_LIVE]  # reported organs except `eliminated`
    modal = batch_modal(values, events, member)
    bad = np.flatnonzero(~np.isfinite(modal["cond"]) | (modal["cond"] > EIGENVECTOR_COND_LIMIT))
    fallback = {}
    for s in bad:
        full = expm_single(modal["K"][s], modal["E"][s], events, t)
        fallback[int(s)] = full[:, :N_LIVE] @ member.T

    n_events = events.bolus_t_h.size + events.infusion_start_h.size
    n_modes = N_LIVE
    n_org = member.shape[0] + 1
    bytes_per_time = n_sets * (2 * n_modes * n_events + 2 * n_org) * 8
    block = max(1, int(memory_mb * 1e6 // bytes_per_time))
    administered = events.administered(t)
    quantiles = np.empty((q.size, t.size, n_org))
    kept = np.empty((n_sets, t.size, n_org)) if keep_amounts else None
    for start in range(0, t.size, block):
        sl = slice(start, min(start + block, t.size))
        live = batch_amounts(modal, events, t[sl])
        for s, amounts in fallback.items():
            live[s] = amounts[sl]
        organ = np.empty(live.shape[:2] + (n_org,))
        organ[..., :-1] = live
        organ[..., -1] = administered[sl] - live.sum(axis=2)
        if kept is not None:
            kept[:, sl, :] = organ
        organ *= 100.0 / dose
        quantiles[:, sl, :] = np.percentile(organ, q, axis=0)

    auc = batch_auc(modal, events, float(t[-1]))
    for s in fallback:
        auc[s] = np.trapezoid(fallback[s], t, axis=0)  # rare ill-conditioned sets: trapezoid on the grid
    auc_all = np.empty((n_sets, n_org))
    auc_all[:, :-1] = auc
    auc_all[:, -1] = _administered_integral(events, float(t[-1])) - auc.sum(axis=1)
    return BatchResult(
        t_h=t,
        percentiles=tuple(float(x) for x in q),
        percent_id_percentiles=quantiles,
        auc_percent_id_h=100.0 * auc_all / dose,
        amounts_particles=kept,
        dose_particles=dose,
        varied=tuple(variations),
        n_sets=n_sets,
        metadata={"n_expm_fallback": len(fallback), "time_block": block},
    )
