"""Virtual populations: between-subject variability, body-weight covariates, percentiles and per-subject NCA."""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from exopk.analysis.nca import NCA_PARAMETERS, NCAResult, nca, nca_units
from exopk.dosing import Dose, IVBolus, IVInfusion, Regimen, as_regimen
from exopk.errors import InputError, ParameterError, PopulationError
from exopk.model.graph import REPORTED_ORGANS, volumes
from exopk.model.parameters import (
    _SPECS,
    ModelParameters,
    check_flow_and_volume_balance,
    parameter_names,
    portable,
    restore,
    valid_mask,
)
from exopk.simulation import check_times, percentiles_of_rows, simulate_batch
from exopk.solve.executors import map_chunks, progress_bar
from exopk.solve.linear import default_workers

FLOW_EXPONENT = 0.75
"""Allometric exponent of blood flows and clearances (mL/h) with body weight (West, Brown & Enquist 1997)."""
VOLUME_EXPONENT = 1.0
"""Allometric exponent of volumes (mL) with body weight: organ weights are near-proportional to body weight."""


def allometric_exponent(name: str) -> float | None:
    """Body-weight exponent of parameter ``name``: 0.75 for flows/clearances (mL/h), 1 for volumes (mL), else None.

    Decided from the parameter's unit, so parameters added to the model later scale too.
    """
    unit = _SPECS[name].unit
    if name == "body_weight_g":
        return 1.0
    if unit == "mL/h":
        return FLOW_EXPONENT
    if unit == "mL":
        return VOLUME_EXPONENT
    return None


def _check_correlation(correlation: ArrayLike, names: Sequence[str]) -> np.ndarray:
    k = len(names)
    try:
        r = np.asarray(correlation, dtype=float)
    except (TypeError, ValueError):
        raise PopulationError(f"`correlation` must be a numeric {k}x{k} matrix; got {correlation!r}.") from None
    if r.shape != (k, k):
        raise PopulationError(
            f"`correlation` must be {k}x{k} (one row per parameter in `cv`: {', '.join(names)}); got shape {r.shape}."
        )
    if not np.all(np.isfinite(r)):
        raise PopulationError("`correlation` holds NaN or infinite entries.")
    if not np.allclose(r, r.T, rtol=0, atol=1e-12):
        i, j = np.unravel_index(np.argmax(np.abs(r - r.T)), r.shape)
        raise PopulationError(
            f"`correlation` must be symmetric; entry [{i}, {j}] = {r[i, j]!r} but [{j}, {i}] = {r[j, i]!r}."
        )
    if not np.allclose(np.diag(r), 1.0, rtol=0, atol=1e-12):
        raise PopulationError(f"`correlation` must have a unit diagonal; got {np.diag(r).tolist()}.")
    if np.any(np.abs(r) > 1):
        raise PopulationError("`correlation` entries must lie in [-1, 1].")
    smallest = float(np.linalg.eigvalsh(r).min())
    if smallest <= 1e-10:
        raise PopulationError(
            f"`correlation` must be positive definite; its smallest eigenvalue is {smallest:.3g}. "
            "Check for inconsistent pairwise correlations, or shrink them towards 0."
        )
    return np.linalg.cholesky(r)


@dataclass(frozen=True, slots=True)
class VirtualPopulation:
    """Parameter values of a set of virtual subjects, drawn by :func:`sample_population`.

    Attributes
    ----------
    params : ModelParameters
        Typical (reference) subject.
    variations : Mapping[str, ndarray of shape (n_subjects,)]
        Every parameter that differs between subjects, by name (BSV and body-weight scaling applied).
    n_subjects : int
    cv : Mapping[str, float]
        Between-subject coefficients of variation (lognormal).
    correlation : ndarray or None
        Correlation of the log-parameters, in ``cv`` order.
    body_weight_g : ndarray or None
        Subject body weights (g), when a covariate.
    seed : int or None
    """

    params: ModelParameters
    variations: Mapping[str, np.ndarray]
    n_subjects: int
    cv: Mapping[str, float]
    correlation: np.ndarray | None = None
    body_weight_g: np.ndarray | None = None
    seed: int | None = None

    def to_frame(self):
        """One row per subject: ``subject`` and every varied parameter (column names carry units)."""
        import pandas as pd

        frame = pd.DataFrame({name: np.asarray(v) for name, v in self.variations.items()})
        frame.insert(0, "subject", np.arange(self.n_subjects))
        return frame


def sample_population(
    params: ModelParameters,
    n_subjects: int,
    cv: Mapping[str, float] | None = None,
    *,
    correlation: ArrayLike | None = None,
    body_weight_g: ArrayLike | None = None,
    body_weight_cv: float | None = None,
    seed: int | np.random.SeedSequence | None = None,
) -> VirtualPopulation:
    """Draw a virtual population: lognormal between-subject variability and body-weight covariates.

    Each varied parameter of subject *i* is

    .. math::

        \\theta_i = \\theta_{ref} \\left(\\frac{BW_i}{BW_{ref}}\\right)^{b} e^{\\eta_i},\\quad
        \\eta \\sim N(0, \\Omega),\\ \\Omega_{jk} = \\omega_j \\omega_k R_{jk},\\
        \\omega_j^2 = \\ln(1 + CV_j^2)

    so the typical value is the median and ``CV`` is the coefficient of variation of
    :math:`\\theta` itself (the NONMEM ``THETA·EXP(ETA)`` convention). The allometric exponent
    *b* is 0.75 for blood flows and clearances (mL/h) and 1 for volumes (mL) (West, Brown &
    Enquist 1997, Science 276:122; as used in PBPK scaling, e.g. Brown et al. 1997, Toxicol Ind
    Health 13:407); rate constants (1/h), fractions and partition coefficients do not scale.

    Draws come from one :func:`numpy.random.default_rng` seeded with ``seed``, all up front, so
    a population is reproducible and does not depend on how it is later simulated.

    Parameters
    ----------
    params : ModelParameters
        The reference subject (typical values, reference body weight ``body_weight_g``).
    n_subjects : int
        Number of virtual subjects.
    cv : Mapping[str, float], optional
        Coefficient of variation (e.g. 0.3 for 30 %) by parameter name (see
        :func:`parameter_names`); finite and > 0.
    correlation : array_like, shape (n_cv, n_cv), optional
        Correlation matrix of the log-parameters, rows in ``cv`` order: symmetric, unit
        diagonal, positive definite. Default: independent.
    body_weight_g : array_like of shape (n_subjects,), optional
        Each subject's body weight (g): flows and volumes scale allometrically.
    body_weight_cv : float, optional
        Instead of ``body_weight_g``: draw body weights lognormal around the reference with this CV.
    seed : int or SeedSequence, optional
        Seed of the random draws.

    Returns
    -------
    VirtualPopulation

    Raises
    ------
    PopulationError
        Unknown or non-variable parameter names, invalid CVs, a bad correlation matrix, invalid
        body weights, or draws outside a parameter's valid range (e.g. a fraction above 1).
    """
    if not isinstance(params, ModelParameters):
        raise PopulationError(f"`params` must be ModelParameters; got {type(params).__name__}.")
    if isinstance(n_subjects, bool) or not isinstance(n_subjects, (int, np.integer)) or n_subjects < 1:
        raise PopulationError(f"`n_subjects` must be a positive integer; got {n_subjects!r}.")
    n = int(n_subjects)
    cv = dict(cv or {})
    known = set(parameter_names())
    for name, value in cv.items():
        if name not in known:
            raise PopulationError(f"unknown parameter {name!r} in `cv`; see exopk.parameter_names().")
        if _SPECS[name].rule == "positive_or_inf":
            raise PopulationError(f"`cv[{name!r}]`: capacities cannot vary (populations use the linear model).")
        if name == "body_weight_g":
            raise PopulationError("vary body weight with `body_weight_cv` or `body_weight_g`, not `cv`.")
        if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) or not math.isfinite(value):
            raise PopulationError(f"`cv[{name!r}]` must be a finite number > 0; got {value!r}.")
        if value <= 0:
            raise PopulationError(f"`cv[{name!r}]` must be > 0 (0.3 means 30 %); got {value!r}.")
        if params.values[name] == 0:
            raise PopulationError(f"`cv[{name!r}]`: the reference value is 0, so lognormal variability has no effect.")
    if not cv and body_weight_g is None and body_weight_cv is None:
        raise PopulationError("nothing varies: give `cv`, `body_weight_g` or `body_weight_cv`.")
    if body_weight_g is not None and body_weight_cv is not None:
        raise PopulationError("give `body_weight_g` or `body_weight_cv`, not both.")
    names = list(cv)
    chol = _check_correlation(correlation, names) if correlation is not None else None
    if correlation is not None and not names:
        raise PopulationError("`correlation` given without `cv`.")

    rng = np.random.default_rng(seed)
    reference_bw = params.values["body_weight_g"]
    weights = None
    if body_weight_cv is not None:
        if not (isinstance(body_weight_cv, (int, float)) and math.isfinite(body_weight_cv) and body_weight_cv > 0):
            raise PopulationError(f"`body_weight_cv` must be a finite number > 0; got {body_weight_cv!r}.")
        sigma = math.sqrt(math.log1p(body_weight_cv**2))
        weights = reference_bw * np.exp(sigma * rng.standard_normal(n))
    elif body_weight_g is not None:
        weights = np.asarray(body_weight_g, dtype=float)
        if weights.shape != (n,):
            raise PopulationError(f"`body_weight_g` must have one value per subject ({n}); got shape {weights.shape}.")
        if not np.all(np.isfinite(weights)) or np.any(weights <= 0):
            raise PopulationError(f"`body_weight_g` must be positive and finite; got minimum {weights.min()!r}.")

    variations: dict[str, np.ndarray] = {}
    if weights is not None:
        ratio = weights / reference_bw
        for name in parameter_names():
            b = allometric_exponent(name)
            if b is not None and params.values[name] != 0:
                variations[name] = params.values[name] * ratio**b
    if names:
        omega = np.sqrt(np.log1p(np.array([cv[name] for name in names], dtype=float) ** 2))
        z = rng.standard_normal((n, len(names)))
        eta = (z @ chol.T if chol is not None else z) * omega
        for j, name in enumerate(names):
            base = variations.get(name, np.full(n, params.values[name]))
            variations[name] = base * np.exp(eta[:, j])
    for name, values in variations.items():
        bad = ~valid_mask(_SPECS[name].rule, values)
        if np.any(bad):
            raise PopulationError(
                f"{int(bad.sum())} of {n} subjects have an invalid `{name}` (e.g. {values[bad][0]!r}; rule: "
                f"{_SPECS[name].rule}); lower its CV or leave it out."
            )
    full = {name: np.full(n, v) for name, v in params.values.items()}
    full.update(variations)
    try:
        check_flow_and_volume_balance(full, where="in the virtual population")
    except ParameterError as error:
        raise PopulationError(f"{error} Lower the CVs of flows and volumes.") from None
    return VirtualPopulation(
        params=params,
        variations=variations,
        n_subjects=n,
        cv=cv,
        correlation=None if correlation is None else np.asarray(correlation, dtype=float),
        body_weight_g=weights,
        seed=seed if isinstance(seed, (int, type(None))) else None,
    )


def solve_chunk(
    state: tuple,
    regimen: Regimen,
    t_h: np.ndarray,
    variations: Mapping[str, np.ndarray],
    workers: int,
    memory_mb: float,
) -> tuple[np.ndarray, np.ndarray]:
    """One chunk of subjects over some output times: %ID per organ (n_chunk, n_times, n_organs), and AUC to t_h[-1].

    Module-level and with picklable arguments so that executors can run it elsewhere.
    """
    result = simulate_batch(
        restore(state),
        regimen,
        t_h,
        variations,
        percentiles=(0.0,),  # not used: a minimum is the cheapest selection
        keep_amounts=True,
        memory_mb=memory_mb,
        workers=workers,
    )
    assert result.amounts_particles is not None  # keep_amounts=True
    return result.amounts_particles * (100.0 / result.dose_particles), result.auc_percent_id_h


def check_chunking(chunk_size: int, memory_mb: float, workers: int | None) -> None:
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, (int, np.integer)) or chunk_size < 1:
        raise InputError(f"`chunk_size` must be a positive integer; got {chunk_size!r}.")
    if not (isinstance(memory_mb, (int, float)) and math.isfinite(memory_mb) and memory_mb > 0):
        raise InputError(f"`memory_mb` must be positive; got {memory_mb!r}.")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise InputError(f"`workers` must be a positive integer or None; got {workers!r}.")


@dataclass(frozen=True, slots=True)
class PopulationResult:
    """Simulation of a virtual population: percentile bands and per-subject summaries.

    Attributes
    ----------
    t_h : ndarray, shape (n_times,)
    percentiles : tuple of float
    percent_id_percentiles : ndarray, shape (n_percentiles, n_times, n_organs)
        Percentiles over subjects of %ID per organ (:attr:`organs` order) and time.
    cmax_percent_id, tmax_h : ndarray, shape (n_subjects, n_organs)
        Each subject's highest %ID per organ on the output grid, and its first time (h).
    auc_percent_id_h : ndarray, shape (n_subjects, n_organs)
        Exact AUC of each subject's %ID from 0 to the last output time (%ID·h).
    nca : Mapping[str, NCAResult]
        Full NCA of the concentration (%ID/mL) in the organs asked for (default blood), per
        subject; CL (mL/h) and Vss (mL) for blood after a single IV bolus or infusion.
    population : VirtualPopulation
    metadata : Mapping
        Chunking, executor and timing information.
    """

    t_h: np.ndarray
    percentiles: tuple[float, ...]
    percent_id_percentiles: np.ndarray
    cmax_percent_id: np.ndarray
    tmax_h: np.ndarray
    auc_percent_id_h: np.ndarray
    nca: Mapping[str, NCAResult]
    population: VirtualPopulation
    metadata: Mapping[str, Any] = field(default_factory=dict)

    @property
    def organs(self) -> tuple[str, ...]:
        """Reported organs, the last axis of the arrays."""
        return REPORTED_ORGANS

    def band(self, organ: str) -> np.ndarray:
        """Percentiles of %ID in ``organ``, shape (n_percentiles, n_times)."""
        if organ not in REPORTED_ORGANS:
            raise InputError(f"unknown organ {organ!r}; choose from {', '.join(REPORTED_ORGANS)}.")
        return self.percent_id_percentiles[:, :, REPORTED_ORGANS.index(organ)]

    def to_frame(self):
        """Percentile bands as a tidy table ``time_h, organ, quantity, value, unit`` (``percent_id_p5``, ...)."""
        from exopk.results import percentile_frame

        return percentile_frame(self.t_h, self.percentiles, self.percent_id_percentiles)

    def subjects_frame(self):
        """Per-subject summaries as a tidy table ``subject, organ, parameter, value, unit``.

        Every organ: ``cmax_percent_id``, ``tmax_h``, ``auc_0_t_percent_id_h`` (exact); organs
        in :attr:`nca`: every NCA parameter of the concentration in %ID/mL.
        """
        import pandas as pd

        n = self.population.n_subjects
        blocks = []
        for j, organ in enumerate(REPORTED_ORGANS):
            for name, array, unit in (
                ("cmax_percent_id", self.cmax_percent_id, "%ID"),
                ("tmax_h", self.tmax_h, "h"),
                ("auc_0_t_percent_id_h", self.auc_percent_id_h, "%ID·h"),
            ):
                blocks.append(
                    pd.DataFrame(
                        {"subject": np.arange(n), "organ": organ, "parameter": name, "value": array[:, j], "unit": unit}
                    )
                )
        for organ, result in self.nca.items():
            units = nca_units("%ID/mL", "%ID" if result.metadata.get("dose") is not None else None)
            for name in NCA_PARAMETERS:
                blocks.append(
                    pd.DataFrame(
                        {
                            "subject": np.arange(n),
                            "organ": organ,
                            "parameter": f"nca_{name}",
                            "value": getattr(result, name),
                            "unit": units[name],
                        }
                    )
                )
        return pd.concat(blocks, ignore_index=True)

    def bands_table(self) -> tuple[list[str], np.ndarray]:
        """Percentile bands as one wide array: a row per output time, a column per organ and percentile.

        Returns
        -------
        columns : list of str
            ``time_h``, then ``<organ>_percent_id_p<q>`` for each organ (:attr:`organs` order)
            and, within an organ, each percentile.
        values : ndarray, shape (n_times, 1 + n_organs * n_percentiles)
            Times (h) and %ID; the same numbers as :meth:`to_frame`, one row per time.
        """
        n_q, n_t, n_o = self.percent_id_percentiles.shape
        columns = ["time_h"] + [f"{organ}_percent_id_p{q:g}" for organ in REPORTED_ORGANS for q in self.percentiles]
        values = np.empty((n_t, 1 + n_o * n_q))
        values[:, 0] = self.t_h
        # (q, t, organ) -> (t, organ, q): organ-major columns, percentiles within an organ.
        values[:, 1:] = self.percent_id_percentiles.transpose(1, 2, 0).reshape(n_t, n_o * n_q)
        return columns, values

    def subjects_table(self) -> tuple[list[str], np.ndarray]:
        """Per-subject summaries as one wide array: a row per subject, a column per organ and summary.

        Returns
        -------
        columns : list of str
            ``subject``; for each organ ``<organ>_cmax_percent_id``, ``<organ>_tmax_h``,
            ``<organ>_auc_0_t_percent_id_h``; for each organ in :attr:`nca`,
            ``<organ>_nca_<parameter>`` with its unit in the name (``blood_nca_cmax_percent_id_per_ml``,
            ``blood_nca_half_life_h``, ``blood_nca_cl_ml_per_h``; dimensionless ones bare).
        values : ndarray, shape (n_subjects, n_columns)
            The numbers of :meth:`subjects_frame`, one row per subject (NaN where a quantity is undefined).
        """
        n = self.population.n_subjects
        n_o = len(REPORTED_ORGANS)
        columns = ["subject"]
        for organ in REPORTED_ORGANS:
            columns += [f"{organ}_cmax_percent_id", f"{organ}_tmax_h", f"{organ}_auc_0_t_percent_id_h"]
        blocks = [np.arange(n, dtype=float)[:, None]]
        # (subject, organ, summary) -> organ-major columns, the three summaries within an organ.
        blocks.append(np.stack((self.cmax_percent_id, self.tmax_h, self.auc_percent_id_h), axis=2).reshape(n, 3 * n_o))
        for organ, result in self.nca.items():
            # CL and V units as if a dose were known: without one (not a single IV dose) they are NaN.
            units = nca_units("%ID/mL", "%ID")
            columns += [_wide_nca_name(organ, name, units[name]) for name in NCA_PARAMETERS]
            blocks.append(np.column_stack([np.asarray(getattr(result, name), dtype=float) for name in NCA_PARAMETERS]))
        return columns, np.concatenate(blocks, axis=1)


#: Column-name suffix of each unit of the per-subject summaries (wide tables: the unit is in the name).
_UNIT_SUFFIX = {
    "%ID": "percent_id",
    "%ID/mL": "percent_id_per_ml",
    "%ID/mL·h": "percent_id_h_per_ml",
    "%ID/mL·h²": "percent_id_h2_per_ml",
    "mL/h": "ml_per_h",
    "mL": "ml",
    "1": "",  # dimensionless: the name stays bare
}


def _wide_nca_name(organ: str, name: str, unit: str) -> str:
    """``<organ>_nca_<name>[_<unit>]``: the unit appended unless the name already ends in it."""
    if unit in ("h", "1/h", "%"):  # tmax_h, lambda_z_per_h, auc_extrapolated_percent: in the name
        return f"{organ}_nca_{name}"
    suffix = _UNIT_SUFFIX[unit]
    return f"{organ}_nca_{name}_{suffix}" if suffix else f"{organ}_nca_{name}"


def _nca_dose(regimen: Regimen) -> tuple[float | None, float]:
    """Dose (%ID) and infusion time for blood CL/Vss: a single IV bolus at 0 or a single IV infusion from 0."""
    if len(regimen.doses) == 1:
        dose = regimen.doses[0]
        if type(dose) is IVBolus and dose.t_h == 0:
            return 100.0, 0.0
        if type(dose) is IVInfusion and dose.t_h == 0:
            assert dose.duration_h is not None  # an infusion's duration is set when it is made
            return 100.0, float(dose.duration_h)
    return None, 0.0


def _gather_chunks(
    population, reg, t, q, state, chunks, time_blocks, threads, chunk_memory, executor, progress,
    cmax, tmax_index, curves, nca_index,
):  # fmt: skip
    """Executor path: chunks of subjects solved as tasks, gathered one block of times at a time."""
    n = population.n_subjects
    n_org = len(REPORTED_ORGANS)
    quantiles = np.empty((q.size, t.size, n_org))
    auc = np.empty((n, n_org))
    bar = progress_bar(len(chunks) * len(time_blocks), "population", progress)
    try:
        for tb in time_blocks:
            arguments = [
                (state, reg, t[tb], {k: np.ascontiguousarray(v[c]) for k, v in population.variations.items()},
                 threads, max(chunk_memory, 1.0))
                for c in chunks
            ]  # fmt: skip
            results = map_chunks(solve_chunk, arguments, executor=executor, bar=bar)
            rows = np.empty((tb.stop - tb.start, n_org, n))
            for c, (pct, chunk_auc) in zip(chunks, results, strict=True):
                block_max = pct.max(axis=1)
                block_arg = pct.argmax(axis=1) + tb.start
                better = block_max > cmax[c]
                cmax[c] = np.where(better, block_max, cmax[c])
                tmax_index[c] = np.where(better, block_arg, tmax_index[c])
                for i, j in enumerate(nca_index):
                    curves[i, c, tb] = pct[:, :, j]
                rows[:, :, c] = pct.transpose(1, 2, 0)
                if tb.stop == t.size:
                    auc[c] = chunk_auc
            del results
            quantiles[:, tb, :] = percentiles_of_rows(rows.reshape(-1, n), q).reshape(q.size, -1, n_org)
            del rows
    finally:
        if bar is not None:
            bar.close()

    return quantiles, auc


def simulate_population(
    population: VirtualPopulation,
    regimen: Regimen | Dose | Sequence[Dose],
    t_h: ArrayLike,
    *,
    percentiles: Sequence[float] = (5.0, 50.0, 95.0),
    nca_organs: Sequence[str] = ("blood",),
    executor: Any = None,
    chunk_size: int = 2500,
    memory_mb: float = 256.0,
    workers: int | None = None,
    progress: bool | None = None,
) -> PopulationResult:
    """Simulate every subject of a virtual population; percentiles per organ and time, per-subject NCA.

    Every subject is solved exactly (modal solution, see :func:`simulate_batch`) and the
    percentiles are exact, over all subjects.

    * Without ``executor``: one :func:`simulate_batch` call in this process (eigen-decompositions
      once, output times in blocks within ``memory_mb``, ``workers`` threads); per-subject
      summaries are taken from its blocks.
    * With an ``executor`` (any :class:`concurrent.futures.Executor`, or a dask client):
      subjects go in chunks of ``chunk_size``, each chunk a task. The %ID values of all
      subjects are gathered here one block of output times at a time, sized to ``memory_mb``;
      when the grid needs several blocks, each chunk is solved once per block.

    Executor runs depend only on the population, ``chunk_size``, ``memory_mb`` and ``workers``:
    process pools, thread pools and dask clusters give the same numbers bit for bit (on one
    machine). They agree with the run without executor to round-off (~1e-15 relative; its
    matrix products are blocked differently).

    Parameters
    ----------
    population : VirtualPopulation
        From :func:`sample_population`.
    regimen : Regimen, IVBolus, IVInfusion or list of doses
    t_h : array_like, shape (n_times,)
        Output times (h).
    percentiles : sequence of float, default (5, 50, 95)
    nca_organs : sequence of str, default ("blood",)
        Organs whose concentration curves (%ID/mL) get a full per-subject NCA (memory:
        n_subjects × n_times × 8 bytes each).
    executor : concurrent.futures.Executor or dask.distributed.Client, optional
        Runs the chunks; default: this process (with ``workers`` threads).
    chunk_size : int, default 2500
        Subjects per task (executor runs only).
    memory_mb : float, default 256
        Working-array budget: of :func:`simulate_batch` without executor; of the gathered %ID
        block in this process (and of each task's arrays) with one.
    workers : int, optional
        Threads inside each chunk; default: the CPUs of this process, at most 8.
    progress : bool, optional
        Progress bar on stderr; default: only when stderr is a terminal.

    Returns
    -------
    PopulationResult
    """
    if not isinstance(population, VirtualPopulation):
        raise PopulationError(
            f"`population` must come from exopk.analysis.sample_population; got {type(population).__name__}."
        )
    check_chunking(chunk_size, memory_mb, workers)
    reg = as_regimen(regimen)
    t = check_times(t_h)
    q = np.asarray(percentiles, dtype=float)
    if q.ndim != 1 or q.size == 0 or np.any((q < 0) | (q > 100)) or not np.all(np.isfinite(q)):
        raise InputError(f"`percentiles` must be numbers in [0, 100]; got {percentiles!r}.")
    for organ in nca_organs:
        if organ not in REPORTED_ORGANS or organ == "eliminated":
            raise InputError(f"`nca_organs`: unknown organ {organ!r}; choose from {', '.join(REPORTED_ORGANS[:-1])}.")
    n = population.n_subjects
    n_org = len(REPORTED_ORGANS)
    threads = default_workers() if workers is None else workers
    state = portable(population.params)
    chunks = [slice(s, min(s + chunk_size, n)) for s in range(0, n, chunk_size)]
    # The gathered block (subjects x times x organs) and its transposed copy for the percentiles.
    per_time = n * n_org * 8.0 * 2
    block = max(1, int(memory_mb * 1e6 // per_time))
    time_blocks = [slice(s, min(s + block, t.size)) for s in range(0, t.size, block)]
    chunk_memory = float(memory_mb)  # each task's own simulate_batch budget (executor runs)

    cmax = np.full((n, n_org), -np.inf)
    tmax_index = np.zeros((n, n_org), dtype=np.intp)
    nca_index = [REPORTED_ORGANS.index(o) for o in nca_organs]
    curves = np.empty((len(nca_index), n, t.size))
    if executor is None:
        # In this process: one simulate_batch over all subjects (eigen-decompositions once, its
        # own memory-bounded time blocks on threads); per-subject summaries from its blocks.
        lock = threading.Lock()
        scale = 100.0 / reg.total_particles if reg.total_particles > 0 else 1.0  # 0: simulate_batch raises
        bar = progress_bar(t.size, "population (output times)", progress)

        cmax_t = np.full((n_org, n), -np.inf)  # organ-major, as the blocks come
        tmax_t = np.zeros((n_org, n), dtype=np.intp)

        def on_block(sl: slice, amounts: np.ndarray) -> None:  # amounts: (n_block, n_org, n) particles
            block_max = amounts.max(axis=0)
            # First time of the maximum: walking back in time, the earliest match is written last
            # (several times cheaper than argmax over the leading axis).
            block_arg = np.empty(block_max.shape, dtype=np.intp)
            equal = np.empty(block_max.shape, dtype=bool)
            for i in range(amounts.shape[0] - 1, -1, -1):
                np.equal(amounts[i], block_max, out=equal)
                np.copyto(block_arg, sl.start + i, where=equal)
            block_max *= scale
            for i, j in enumerate(nca_index):
                curves[i, :, sl] = amounts[:, j, :].T * scale
            with lock:  # blocks finish in any order: ties go to the earliest time
                better = (block_max > cmax_t) | ((block_max == cmax_t) & (block_arg < tmax_t))
                np.copyto(cmax_t, block_max, where=better)
                np.copyto(tmax_t, block_arg, where=better)
                if bar is not None:
                    bar.update(sl.stop - sl.start)

        try:
            batch = simulate_batch(
                population.params, reg, t, population.variations, percentiles=tuple(q), memory_mb=memory_mb,
                workers=threads, on_block=on_block,
            )  # fmt: skip
        finally:
            if bar is not None:
                bar.close()
        cmax, tmax_index = cmax_t.T.copy(), tmax_t.T.copy()
        quantiles = batch.percent_id_percentiles
        auc = batch.auc_percent_id_h
        chunks = [slice(0, n)]
        time_blocks = [slice(0, t.size)]
    else:
        quantiles, auc = _gather_chunks(
            population, reg, t, q, state, chunks, time_blocks, threads, chunk_memory, executor, progress,
            cmax, tmax_index, curves, nca_index,
        )  # fmt: skip

    values = {name: np.full(n, v) for name, v in population.params.values.items()}
    values.update(population.variations)
    organ_ml = volumes(values).organ_ml
    dose, infusion_h = _nca_dose(reg)
    results_nca = {}
    # The vectorised NCA holds ~25 temporaries of its input: analyse the curves in row blocks within memory_mb.
    rows_per_call = max(1, int(memory_mb * 1e6 // (t.size * 8 * 25)))
    for i, (organ, j) in enumerate(zip(nca_organs, nca_index, strict=True)):
        blood = organ == "blood"
        parts = []
        for r0 in range(0, n, rows_per_call):
            rows_sl = slice(r0, min(r0 + rows_per_call, n))
            # Modal sums leave round-off of ~1e-17 of the dose below zero where a curve is still ~0
            # (e.g. blood just after an intranasal dose); NCA takes non-negative data.
            conc = np.maximum(curves[i, rows_sl] / organ_ml[rows_sl, j][:, None], 0.0)
            parts.append(
                nca(
                    t,
                    conc,
                    dose=dose if blood else None,
                    infusion_h=infusion_h,
                    intravascular=blood and dose is not None,
                )
            )
        results_nca[organ] = NCAResult(
            **{name: np.concatenate([getattr(part, name) for part in parts]) for name in NCA_PARAMETERS},
            metadata=parts[0].metadata,
        )
    return PopulationResult(
        t_h=t,
        percentiles=tuple(float(x) for x in q),
        percent_id_percentiles=quantiles,
        cmax_percent_id=cmax,
        tmax_h=t[tmax_index],
        auc_percent_id_h=auc,
        nca=results_nca,
        population=population,
        metadata={
            "chunk_size": chunk_size,
            "n_chunks": len(chunks),
            "n_time_blocks": len(time_blocks),
            "workers": threads,
            "executor": type(executor).__name__ if executor is not None else None,
        },
    )
