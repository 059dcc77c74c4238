"""The simulation entry points: one parameter set (:func:`simulate`) or many (:func:`simulate_batch`)."""

from __future__ import annotations

import dataclasses
import functools
import math
import threading
from collections.abc import Mapping, Sequence
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

from exopk.dosing import DEPOT_ROUTES, Dose, Events, Regimen, as_regimen
from exopk.errors import DosingError, InputError, ParameterError, SimulationError
from exopk.model.graph import (
    N_LIVE,
    N_SINK,
    REPORTED_ORGANS,
    organ_membership,
    parameter_volumes,
    rate_matrices,
    reachable_live_states,
)
from exopk.model.parameters import _SPECS, ModelParameters, _check_value, check_flow_and_volume_balance, valid_mask
from exopk.results import BatchResult, SimulationResult
from exopk.solve.capacity_batch import capacity_batch
from exopk.solve.driver import MASS_BALANCE_LIMIT as MASS_BALANCE_LIMIT  # re-exported: its old home
from exopk.solve.driver import ODE_ATOL_FRACTION, ODE_RTOL, model_system, solve_with_fallback
from exopk.solve.linear import (
    _DECAYED,
    as_slice,
    batch_amounts,
    batch_auc,
    batch_modal,
    default_workers,
    expm_single,
    ill_conditioned,
    map_threads,
)

MAX_TIME_H = 1e6
"""Latest output time accepted (h): 114 years, beyond any EV study; times near 1e300 h overflow the
matrix exponentials (found by the bad-input catalogue, issue 12), so they are refused, not answered."""


def check_times(t_h: ArrayLike, name: str = "t_h") -> np.ndarray:
    """Validate output times: a non-empty, finite, non-negative, strictly increasing 1-D array, at most
    :data:`MAX_TIME_H`."""
    if t_h is None or isinstance(t_h, (str, bytes)):
        raise InputError(f"`{name}` must be an array of times in hours; got {t_h!r}.")
    try:
        t = np.asarray(t_h, dtype=float)
    except (TypeError, ValueError):
        raise InputError(f"`{name}` must be an array of times in hours; got {t_h!r}.") from None
    t = np.atleast_1d(t)
    if t.ndim != 1 or t.size == 0:
        raise InputError(f"`{name}` must be a non-empty 1-D array of times in hours; got shape {t.shape}.")
    bad = np.flatnonzero(~np.isfinite(t) | (t < 0))
    if bad.size:
        i = int(bad[0])
        raise InputError(f"`{name}` must be finite and non-negative (h); got {float(t[i])!r} at index {i}.")
    if t[-1] > MAX_TIME_H:
        raise InputError(f"`{name}` ends at {float(t[-1])!r} h; expected at most {MAX_TIME_H:g} h (114 years).")
    steps = np.flatnonzero(np.diff(t) <= 0)
    if steps.size:
        i = int(steps[0])
        raise InputError(
            f"`{name}` must be strictly increasing; got {float(t[i])!r} then {float(t[i + 1])!r} at index {i + 1}."
        )
    return t


def regimen_events(regimen: Regimen, t_h: np.ndarray, doses_after_end: str = "error") -> tuple[Events, int]:
    """The regimen's events up to the last output time, by the rule for later doses.

    Returns the events and the number of administrations left out (``doses_after_end="drop"``).

    Raises
    ------
    DosingError
        Administrations after the last output time with ``doses_after_end="error"``, or no
        administration at or before it.
    """
    if doses_after_end not in ("error", "drop"):
        raise InputError(f"`doses_after_end` must be 'error' or 'drop'; got {doses_after_end!r}.")
    full = regimen.events()
    events, n_late, late_particles = full.until(float(t_h[-1]))
    if n_late and events.n_events == 0:
        raise DosingError(
            f"every dose starts after the last output time {t_h[-1]:g} h (first at {regimen.first_h:g} h): "
            "nothing would be simulated; extend `t_h`."
        )
    if n_late and doses_after_end == "error":
        first_late = float(
            np.concatenate([full.bolus_t_h, full.infusion_start_h])[
                np.concatenate([full.bolus_t_h, full.infusion_start_h]) > t_h[-1]
            ].min()
        )
        raise DosingError(
            f"{n_late} administration(s) ({late_particles:.4g} particles) start after the last output time "
            f"{t_h[-1]:g} h (the first at {first_late:g} h); extend `t_h` to cover them, or pass "
            "doses_after_end='drop' to leave them out of the simulation and the %ID reference."
        )
    return events, n_late


def check_routes(params: ModelParameters, regimen: Regimen) -> None:
    """Raise :class:`DosingError` if the regimen uses a depot route the species has no parameters for."""
    missing = [route for route in regimen.routes if route in DEPOT_ROUTES and route not in params.routes]
    if missing:
        route = missing[0]
        raise DosingError(
            f"route {route!r} has no parameters for species {params.species!r}: add a [species.{params.species}] "
            f"table to params/routes/{route}.toml (species with {route} parameters are listed there)."
        )


@np.errstate(over="ignore", invalid="ignore")  # an overflow is reported by the solver driver, in one line
def simulate(
    params: ModelParameters,
    regimen: Regimen | Dose | Sequence[Dose],
    t_h: ArrayLike,
    *,
    method: str | None = None,  # "exact", "expm" or "ode", checked below
    rtol: float = ODE_RTOL,
    atol_particles: float | None = None,
    solver: Literal["BDF", "Radau", "LSODA"] | None = None,
    doses_after_end: Literal["error", "drop"] = "error",
    fallback: bool = True,
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
        ``"exact"`` (default for the linear model): closed-form modal solution;
        ``"expm"``: matrix-exponential stepping; ``"ode"`` (default when an organ has a finite
        ``capacity_particles``): stiff integrator with an analytic Jacobian. Every answer is
        checked for mass balance (:func:`exopk.solve.solve_with_fallback`): if it is off by more
        than 10⁻¹⁰ of the dose, or the eigenvectors are too poorly conditioned, the next method
        of ``exact -> expm -> ode`` is tried, and the answer with the smallest error is kept.
        ``result.method`` names the method that answered; ``metadata["solver_attempts"]`` lists
        every try with its error, ``metadata["fallback"]`` says why the first fallback happened.
    rtol : float, default 1e-10
        Relative tolerance of the ``"ode"`` path.
    atol_particles : float, optional
        Absolute tolerance of the ``"ode"`` path (particles); default ``1e-17 × dose``. The
        defaults keep every organ within 10⁻⁶ of its value (or of 10⁻⁹ of the dose, if it holds
        less) for the capacity-limited model.
    solver : {"BDF", "Radau", "LSODA"}, optional
        Integrator of the ``"ode"`` path: ``"LSODA"`` is ODEPACK's, stepping in Fortran
        (:func:`scipy.integrate.odeint`); ``"BDF"`` and ``"Radau"`` are
        :func:`scipy.integrate.solve_ivp`'s, stepping in Python. Default: ``"LSODA"`` for the
        capacity-limited model (measured, ``benchmarks/bench_capacity.py``: ~8 times faster
        than BDF, and as close to the independent reference), ``"BDF"`` for the linear model,
        where the ODE is the last fallback for rates the other methods cannot take (BDF still
        answers at a rate of 1e30 /h, where LSODA gives up).
    doses_after_end : {"error", "drop"}, default "error"
        Administrations that start after the last output time cannot change any output.
        ``"error"`` refuses them (they are usually a mistake: a too short ``t_h``);
        ``"drop"`` leaves them out, as NONMEM and mrgsolve do, and records their number in
        ``metadata["doses_after_end"]``. Either way they are not in the %ID reference.
    fallback : bool, default True
        ``False``: the chosen method's own answer, never redone by another method (still
        checked: a warning or error as below).

    Returns
    -------
    SimulationResult
        ``dose_particles``, the %ID reference, is the nominal dose given up to the last output
        time (every repeat counted, a steady-state dose once, before bioavailability; with
        resets, the occasion that gives most). Per-kg doses are scaled by the model's
        ``body_weight_g``. Repeated regimens are solved by event stepping (memory independent
        of the number of doses, one propagator per distinct interval length;
        ``metadata["n_intervals"]``, ``metadata["n_propagators"]``); steady states of the
        capacity-limited model report ``metadata["ss_intervals"]``.

    Raises
    ------
    InputError
        Invalid times, method or solver name, or the exact method asked of a non-linear model.
    DosingError
        Invalid doses, or a total dose of 0 particles.
    SimulationError
        The solver failed.

    Warns
    -----
    SolverAccuracyWarning
        The answer returned conserves mass only to between 10⁻¹⁰ and 10⁻⁶ of the dose.
    """
    if not isinstance(params, ModelParameters):
        raise InputError(f"`params` must be ModelParameters (see exopk.load_parameters); got {type(params).__name__}.")
    reg = as_regimen(regimen).for_body_weight(params.values["body_weight_g"] / 1000.0)
    t = check_times(t_h)
    events, late = regimen_events(reg, t, doses_after_end)
    reference = events.reference_particles()
    if reference <= 0:
        raise DosingError("the regimen's total dose is 0 particles; %ID is undefined. Give a positive dose.")
    check_routes(params, reg)
    if method is None:
        method = "exact" if params.is_linear else "ode"
    if method not in ("exact", "expm", "ode"):
        raise InputError(f"`method` must be 'exact', 'expm' or 'ode'; got {method!r}.")
    if method != "ode" and not params.is_linear:
        raise InputError(
            f"`method`={method!r} needs the linear model, but an organ has a finite `capacity_particles`; "
            "use method='ode'."
        )
    if solver is None:
        solver = "BDF" if params.is_linear else "LSODA"
    if solver not in ("BDF", "Radau", "LSODA"):
        raise InputError(f"`solver` must be 'BDF', 'Radau' or 'LSODA'; got {solver!r}.")
    # K, E (or the stacked mixture) and the volumes depend on the values alone: built once per
    # (frozen) parameter set and kept on it, so repeated simulations of one set skip them.
    # Subpopulations: one block-diagonal system, one solve, shared macrophage capacity.
    K, E, solve_events, system, mixture = model_system(params, events)
    administered = events.administered(t)
    metadata: dict = {
        "doses_after_end": late,
        "species": params.species,
        "ev": params.ev,
        "parameter_files": params.files,
        "scenarios": params.scenarios,
        "extrapolated": dict(params.extrapolated),  # name -> allometric rule, for values not measured in the species
    }
    solution = solve_with_fallback(
        K,
        E,
        solve_events,
        t,
        administered,
        dose_particles=reference,
        method=method,
        fallback=fallback,
        params=system,
        rtol=rtol,
        atol_particles=atol_particles,
        solver=solver,
        expand=mixture is None,
        cache=params.cached,
    )
    metadata.update(solution.metadata)
    used = solution.method
    if mixture is None:
        amounts = solution.amounts
    else:
        names = [name for name, _, _ in params.parts()]
        assert solution.keep is not None  # expand=False
        keep = solution.keep
        columns = _mixture_columns(keep, mixture.n_pop)
        # Each part's states onto the one model's (exact: 1-2 terms each), state by state: on
        # (states, times) arrays every state's curve is one contiguous row.
        stacked_t = solution.amounts.T
        amounts_t = np.zeros((N_LIVE + N_SINK, t.size))
        for pairs in columns:
            for source, target in pairs:
                amounts_t[target] += stacked_t[source]
        amounts = amounts_t.T
    administered = solution.administered
    vol = parameter_volumes(params)
    result = SimulationResult(
        t_h=t,
        amounts_particles=amounts,
        dose_particles=reference,
        administered_particles=administered,
        params=params,
        regimen=reg,
        method=used,
        state_volumes_ml=vol.state_ml,
        organ_volumes_ml=vol.organ_ml,
        metadata=metadata,
    )
    if mixture is None:
        return result
    metadata["subpopulations"] = dict(zip(names, mixture.shares.tolist(), strict=True))
    return dataclasses.replace(result, parts=_Parts(result, names, solution.amounts, columns))


def _mixture_columns(keep: np.ndarray, n_pop: int) -> list[list[tuple[slice | np.ndarray, slice | np.ndarray]]]:
    """Per subpopulation: pairs (columns of the stacked solution, columns of one model's states),
    for the live states and for the sinks, as slices where they are contiguous runs.

    The stacked solution holds the reached live states ``keep`` of all subpopulations, then
    ``n_pop`` blocks of sinks (:func:`exopk.model.graph.mixture_system`). Depends on the
    structure alone: kept by ``(keep, n_pop)`` (bounded).
    """
    return _columns_of(np.asarray(keep, dtype=np.intp).tobytes(), n_pop)


@functools.lru_cache(maxsize=64)
def _columns_of(keep_bytes: bytes, n_pop: int) -> list[list[tuple[slice | np.ndarray, slice | np.ndarray]]]:
    return _make_mixture_columns(np.frombuffer(keep_bytes, dtype=np.intp), n_pop)


def _make_mixture_columns(keep: np.ndarray, n_pop: int) -> list[list[tuple[slice | np.ndarray, slice | np.ndarray]]]:
    out = []
    for p in range(n_pop):
        mine = np.flatnonzero((keep >= p * N_LIVE) & (keep < (p + 1) * N_LIVE))
        sinks = keep.size + p * N_SINK + np.arange(N_SINK)
        # live states and sinks apart: each is usually one contiguous run (a slice, no gather)
        out.append(
            [
                (as_slice(mine), as_slice(keep[mine] - p * N_LIVE)),
                (as_slice(sinks), as_slice(N_LIVE + np.arange(N_SINK))),
            ]
        )
    return out


class _Parts(Mapping):
    """``SimulationResult.parts`` of a mixture: each subpopulation's result, built when first asked for."""

    def __init__(self, total: SimulationResult, names: list[str], stacked: np.ndarray, columns) -> None:
        self._total, self._names, self._stacked, self._columns = total, names, stacked, columns
        self._made: dict[str, SimulationResult] = {}

    def __getitem__(self, name: str) -> SimulationResult:
        if name not in self._names:
            raise KeyError(name)
        if name not in self._made:
            amounts = np.zeros_like(self._total.amounts_particles)
            for source, target in self._columns[self._names.index(name)]:
                amounts[:, target] = self._stacked[:, source]
            self._made[name] = dataclasses.replace(self._total, amounts_particles=amounts, parts={})
        return self._made[name]

    def __iter__(self):
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)

    def __contains__(self, name: object) -> bool:
        return name in self._names


def _batch_values(params: ModelParameters, variations: Mapping[str, ArrayLike]) -> tuple[dict[str, np.ndarray], int]:
    if not variations:
        raise ParameterError("`variations` is empty; give at least one parameter name with an array of values.")
    arrays: dict[str, np.ndarray] = {}
    n_sets: int | None = None
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
        bad = np.flatnonzero(~valid_mask(_SPECS[name].rule, arr))
        if bad.size:
            i = int(bad[0])
            _check_value(f"variations[{name!r}][{i}]", _SPECS[name].rule, float(arr[i]))
        arrays[name] = arr
    assert n_sets is not None  # `variations` is not empty
    values = {name: np.full(n_sets, value) for name, value in params.values.items()}
    values.update(arrays)
    check_flow_and_volume_balance(values, where="in `variations`")
    return values, n_sets


def _administered_integral(events: Events, t_end_h: float) -> float:
    """:math:`\\int_0^{T}` administered(t) dt, particles·h."""
    bolus = float(np.sum(events.bolus_amounts.sum(axis=1) * np.maximum(0.0, t_end_h - events.bolus_t_h)))
    total = bolus
    for t_s, t_e, r in zip(
        events.infusion_start_h, events.infusion_end_h, events.infusion_rates.sum(axis=1), strict=True
    ):
        if t_end_h <= t_s:
            continue
        if t_end_h <= t_e:
            total += r * (t_end_h - t_s) ** 2 / 2.0
        else:
            total += r * ((t_e - t_s) ** 2 / 2.0 + (t_e - t_s) * (t_end_h - t_e))
    return total


def percentiles_of_rows(rows: np.ndarray, q: np.ndarray) -> np.ndarray:
    """``np.percentile(rows, q, axis=-1)`` (default "linear" method); partitions ``rows`` in place.

    NumPy partitions at all the ranks it needs at once, which is several times slower
    than its selection of a single rank. Here each rank is selected within the segment
    left by the ranks selected before, and the rank just above comes from the minimum
    of the segment above. The interpolation is NumPy's (``_lerp``), so the values are
    the same, NaN included: NaN sorts last, so a row holding one has it in its top segment.
    """
    n = rows.shape[-1]
    virtual = (n - 1) * (q / 100.0)
    top = virtual >= n - 1
    lower = np.where(top, n - 1, np.floor(virtual)).astype(np.intp)
    upper = np.where(top, n - 1, lower + 1)
    gamma = np.where(top, 0.0, virtual - lower)
    stats: dict[int, np.ndarray] = {}
    ranks = sorted({int(r) for r in np.concatenate([lower, upper])})
    # Segments rows[:, lo:hi] holding the order statistics lo .. hi-1 (in some order),
    # with the ranks wanted in them. (A loop, not a recursive closure: that would be a
    # reference cycle keeping `rows` alive until the garbage collector runs.)
    segments = [(0, n, ranks)]
    while segments:
        lo, hi, wanted = segments.pop()
        if not wanted:
            continue
        i = len(wanted) // 2
        if i > 0 and wanted[i - 1] == wanted[i] - 1:
            i -= 1  # pivot on the lower of a pair (k, k + 1): k + 1 then comes from a minimum
        k = wanted[i]
        rows[:, lo:hi].partition(k - lo, axis=-1)
        stats[k] = rows[:, k]
        above = [r for r in wanted if r > k]
        if above and above[0] == k + 1:
            stats[k + 1] = rows[:, k + 1 : hi].min(axis=-1)
            above = above[1:]
        segments += [(lo, k, [r for r in wanted if r < k]), (k + 1, hi, above)]
    out = np.empty((q.size, rows.shape[0]))
    for i in range(q.size):
        a, b, g = stats[int(lower[i])], stats[int(upper[i])], gamma[i]
        diff = b - a
        out[i] = b - diff * (1 - g) if g >= 0.5 else a + diff * g
    tail = rows[:, ranks[-1] :]
    out[:, np.isnan(tail.max(axis=-1))] = np.nan
    return out


def simulate_batch(
    params: ModelParameters,
    regimen: Regimen | Dose | Sequence[Dose],
    t_h: ArrayLike,
    variations: Mapping[str, ArrayLike],
    *,
    percentiles: Sequence[float] = (5.0, 50.0, 95.0),
    keep_amounts: bool = False,
    memory_mb: float = 64.0,
    workers: int | None = None,
    on_block=None,
    doses_after_end: Literal["error", "drop"] = "error",
) -> BatchResult:
    """Simulate many parameter sets under one regimen.

    Linear model: every set is solved exactly (eigen-decomposition, real arithmetic, decayed
    modes skipped). Output times are processed in blocks sized so that the working arrays stay
    near ``memory_mb``; only percentiles and per-set AUCs are kept unless ``keep_amounts``.

    Capacity-limited model (a finite ``capacity_particles`` in ``params`` or ``variations``):
    all sets are stepped together by a vectorised stiff solver (RODAS4 in each set's eigenbasis,
    each set with its own step sizes; :mod:`exopk.solve.capacity_batch`) to the accuracy
    :func:`simulate` meets, in ``workers`` processes, the organ AUCs integrated with the states;
    a set it cannot solve is integrated as :func:`simulate` does with ``solver="LSODA"``
    (``metadata["n_lsoda_fallback"]``). All trajectories are held at once (``memory_mb`` does
    not apply), and ``metadata["mass_balance_error"]`` is the worst set's.

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
        Target size of all working arrays together (shared between worker threads).
    workers : int, optional
        Threads for the eigen-decompositions and time blocks (NumPy releases the GIL);
        default: the CPUs available, at most 8. ``1`` runs everything in the calling thread.
        Results agree to round-off whatever the number (blocks are split differently).
    on_block : callable, optional
        Called as ``on_block(time_slice, amounts)`` for each block of output times, with
        ``amounts`` of shape (n_block_times, n_organs, n_sets) in particles (the last organ
        is ``eliminated``); from worker threads, so it must be thread-safe, and it must copy
        what it keeps (the array is reused). Used for per-set summaries such as Cmax.
    doses_after_end : {"error", "drop"}, default "error"
        As for :func:`simulate`.

    Returns
    -------
    BatchResult
    """
    if not isinstance(params, ModelParameters):
        raise InputError(f"`params` must be ModelParameters; got {type(params).__name__}.")
    reg = as_regimen(regimen)
    t = check_times(t_h)
    q = np.asarray(percentiles, dtype=float)
    if q.ndim != 1 or q.size == 0 or np.any((q < 0) | (q > 100)) or not np.all(np.isfinite(q)):
        raise InputError(f"`percentiles` must be numbers in [0, 100]; got {percentiles!r}.")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise InputError(f"`workers` must be a positive integer or None; got {workers!r}.")
    if not (isinstance(memory_mb, (int, float)) and math.isfinite(memory_mb) and memory_mb > 0):
        raise InputError(f"`memory_mb` must be positive; got {memory_mb!r}.")
    check_routes(params, reg)
    if reg.per_kg:
        raise DosingError(
            "simulate_batch takes doses in particles, the same for every set; per-kg doses depend on each set's "
            "body weight (use exopk.analysis.simulate_subjects, or give dose_particles)."
        )
    values, n_sets = _batch_values(params, variations)
    events, late = regimen_events(reg, t, doses_after_end)
    if events.has_boundaries:
        raise DosingError(
            "simulate_batch does not take steady-state (ss=1) doses or resets; simulate each set with simulate()."
        )
    dose = events.reference_particles()
    if dose <= 0:
        raise DosingError("the regimen's total dose is 0 particles; %ID is undefined.")
    capacities = [name for name, spec in _SPECS.items() if spec.rule == "positive_or_inf"]
    if any(np.any(np.isfinite(values[name])) for name in capacities):
        return _capacity_batch(params, variations, events, t, q, keep_amounts, workers, on_block, late, dose)
    # Batches superpose the doses: modal coefficients per administration, set, mode and organ.
    coefficients_gb = 2 * 8 * events.n_events * n_sets * N_LIVE * len(REPORTED_ORGANS) / 1e9
    if coefficients_gb > 2.0:
        raise InputError(
            f"a batch of {n_sets} sets x {events.n_events} administrations would need ~{coefficients_gb:.1f} GB of "
            "modal coefficients (batches superpose doses); use fewer sets per batch (chunks), or simulate() per "
            "set, which steps through dose intervals in memory independent of the number of doses."
        )
    member = organ_membership()[:-1, :N_LIVE]  # reported organs except `eliminated`
    # A mixture of EV subpopulations is solved per subpopulation and summed with the shares
    # (superposition; every set shares the same mixture).
    mixture: list[tuple[float, dict[str, np.ndarray]]] = [
        (sub.share, {name: np.asarray(v, dtype=float) for name, v in sub.apply(values).items()})
        for sub in params.subpopulations
    ] or [(1.0, values)]
    solved = []
    n_fallback = 0
    for share, part_values in mixture:
        modal = batch_modal(part_values, events, member, workers=workers)
        bad = np.flatnonzero(ill_conditioned(modal["cond"]))
        fallback: dict[int, np.ndarray] = {}
        fallback_auc: dict[int, np.ndarray] = {}
        if bad.size:
            K_bad, E_bad = rate_matrices({name: np.broadcast_to(v, (n_sets,))[bad] for name, v in part_values.items()})
            for s, K_s, E_s in zip(bad, K_bad, E_bad, strict=True):
                full = expm_single(K_s, E_s, events, t, integrals=True)
                fallback[int(s)] = full[:, :N_LIVE] @ member.T
                fallback_auc[int(s)] = full[-1, N_LIVE + N_SINK :] @ member.T  # exact integral from time 0
        n_fallback += len(fallback)
        solved.append((share, modal, fallback, fallback_auc))

    n_org = member.shape[0] + 1
    administered = events.administered(t)
    # Places no dose reaches (the sites of other routes) hold 0 in every set: their percentiles
    # are 0, and selecting them would be a quarter of the work of an IV batch.
    reached = np.zeros(N_LIVE, dtype=bool)
    reached[reachable_live_states(values, events.entered)] = True
    active = np.flatnonzero(np.append(member[:, reached].any(axis=1), True))  # `eliminated` last
    quantiles = np.zeros((q.size, t.size, n_org))
    kept = np.empty((n_sets, t.size, n_org)) if keep_amounts else None
    per_thread = threading.local()

    def run_block(sl: slice) -> None:
        # Each thread keeps a workspace from block to block (see batch_amounts).
        if not hasattr(per_thread, "workspace"):
            per_thread.workspace = {}
        live: np.ndarray | None = None
        for k, (share, modal, fallback, _) in enumerate(solved):
            part = batch_amounts(modal, events, t[sl], workspace=per_thread.workspace.setdefault(k, {}))
            for s, amounts in fallback.items():
                part[s] = amounts[sl]
            if len(solved) == 1:
                live = part
            elif live is None:
                live = share * part
            else:
                live += share * part
        assert live is not None  # at least one part
        # (time, organ) rows with the sets contiguous, as the percentile selection wants
        rows = np.empty((live.shape[1], n_org, n_sets))
        for s0 in range(0, n_sets, 1024):  # transpose in pieces that stay in cache: ~2x faster
            rows[:, :-1, s0 : s0 + 1024] = live[s0 : s0 + 1024].transpose(1, 2, 0)
        np.subtract(administered[sl, None], rows[:, :-1, :].sum(axis=1), out=rows[:, -1, :])
        if on_block is not None:
            on_block(sl, rows)
        if kept is not None:
            kept[:, sl, :-1] = live
            kept[:, sl, -1] = rows[:, -1, :].T
        rows *= 100.0 / dose
        if active.size < n_org:
            chosen = rows[:, active, :]  # a copy: percentiles_of_rows partitions in place
            block = percentiles_of_rows(chosen.reshape(-1, n_sets), q).reshape(q.size, -1, active.size)
            quantiles[:, sl, active] = block
        else:
            quantiles[:, sl, :] = percentiles_of_rows(rows.reshape(-1, n_sets), q).reshape(q.size, -1, n_org)

    # Time blocks, run in parallel threads (NumPy releases the GIL in exp, matmul and
    # partition), each thread within its share of `memory_mb`. A thread's working arrays
    # are, per output time, the basis of time functions (sets x alive modes, kept from block
    # to block; infusions need ~4 more of it while it is computed), and the products and
    # percentile rows (~3 x sets x organs); besides, a copy of the rates (2 x sets x modes).
    # A mode drops out once decayed below e^-45 in every set, so blocks get longer once only
    # the slow modes are left.
    n_threads = default_workers() if workers is None else workers
    slowest = np.max([m["lam"].real.max(axis=0) for _, m, _, _ in solved], axis=0)  # per mode rank, over sets
    starts = np.concatenate([events.bolus_t_h, events.infusion_start_h])
    ends = np.concatenate([events.bolus_t_h, events.infusion_end_h])
    clock = np.maximum(0.0, t[:, None] - ends[None, :])  # (n_times, n_events)
    alive = np.count_nonzero(slowest * clock[..., None] > _DECAYED, axis=2) * (t[:, None] >= starts)
    columns = alive.sum(axis=1) + 4 * alive[:, events.bolus_t_h.size :].sum(axis=1) + 3 * n_org
    bytes_per_time = n_sets * 8.0 * columns
    budget = memory_mb * 1e6 / n_threads - n_sets * 8.0 * 2 * N_LIVE  # blocks of 1 time at least
    blocks = []
    start = 0
    while start < t.size:
        size = max(1, int(budget // bytes_per_time[start]))
        while size > 1 and size * bytes_per_time[start : start + size].max() > budget:
            size = max(1, int(budget // bytes_per_time[start : start + size].max()))
        blocks.append(slice(start, min(start + size, t.size)))
        start += size
    map_threads(run_block, blocks, n_threads)

    auc: np.ndarray = np.zeros((n_sets, member.shape[0]))
    for share, modal, _, fallback_auc in solved:
        part_auc = batch_auc(modal, events, float(t[-1]))
        for set_index, value in fallback_auc.items():
            part_auc[set_index] = value
        auc = auc + share * part_auc
    result = _batch_result(
        params,
        variations,
        events,
        t,
        q,
        quantiles,
        auc,
        kept,
        dose,
        late,
        {"n_expm_fallback": n_fallback, "time_block": max(sl.stop - sl.start for sl in blocks)},
    )
    if not (np.all(np.isfinite(quantiles)) and np.all(np.isfinite(result.auc_percent_id_h))):
        worst = max(float(np.max(np.abs(v), where=np.isfinite(v), initial=0.0)) for v in values.values())
        raise SimulationError(
            f"the batch solution is not finite (an overflow); the largest varied or fixed value is {worst:.3g}: "
            "expected rates a solver can resolve: check for a value many orders of magnitude too large."
        )
    return result


def _batch_result(params, variations, events, t, q, quantiles, auc, kept, dose, late, metadata) -> BatchResult:
    """The :class:`BatchResult` of a batch: organ AUCs (particles·h, reported organs) completed with
    ``eliminated``, and the metadata every batch records, updated with the solver's ``metadata``."""
    n_sets, n_org = auc.shape[0], auc.shape[1] + 1
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
        metadata={
            **metadata,
            "doses_after_end": late,
            "subpopulations": {sub.name: sub.share for sub in params.subpopulations},
            "species": params.species,
            "scenarios": params.scenarios,
            "extrapolated": dict(params.extrapolated),
        },
    )


def _capacity_batch(params, variations, events, t, q, keep_amounts, workers, on_block, late, dose) -> BatchResult:
    """:func:`simulate_batch` for the capacity-limited model: the batched RODAS4 (:mod:`~exopk.solve.capacity_batch`).

    Each set meets the accuracy and mass-balance bound of :func:`simulate` (the sets the batched
    solver declines are solved with ``solver="LSODA"``), and the organ AUCs are integrated with
    the states. All trajectories are held at once: n_sets x n_times x n_organs x 8 bytes.
    """
    member = organ_membership()[:-1, :N_LIVE]  # reported organs except `eliminated`
    administered = events.administered(t)
    varied = {name: np.asarray(v, dtype=float) for name, v in variations.items()}
    live, auc, worst, n_lsoda = capacity_batch(
        params,
        varied,
        events,
        t,
        member,
        rtol=ODE_RTOL,
        atol_particles=ODE_ATOL_FRACTION * dose,
        administered=administered,
        dose_particles=dose,
        workers=workers,
    )
    n_sets, n_org = live.shape[0], member.shape[0] + 1
    rows = np.empty((t.size, n_org, n_sets))
    rows[:, :-1, :] = live.transpose(1, 2, 0)
    np.subtract(administered[:, None], rows[:, :-1, :].sum(axis=1), out=rows[:, -1, :])
    if on_block is not None:
        on_block(slice(0, t.size), rows)
    kept = rows.transpose(2, 0, 1).copy() if keep_amounts else None
    rows *= 100.0 / dose
    quantiles = percentiles_of_rows(rows.reshape(-1, n_sets), q).reshape(q.size, t.size, n_org)
    metadata = {
        "method": "ode",
        "solver": "RODAS4 (batched)",
        "n_lsoda_fallback": n_lsoda,
        "mass_balance_error": worst,
        "n_expm_fallback": 0,
    }
    return _batch_result(
        params, variations, events, t, q, quantiles, auc, kept, dose, late, {**metadata, "time_block": t.size}
    )
