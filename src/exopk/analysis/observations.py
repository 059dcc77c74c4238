"""Tidy observation tables: checking them, converting units, and the model's prediction of each row.

An observation table has one row per measured value, with columns

``time_h, organ, quantity, value, unit``
    required; ``value`` in ``unit``;
``sd``
    optional standard deviation of ``value`` (same unit; mean ± SD data);
``n``
    optional number of animals behind a mean (1 for per-animal data, e.g. destructive sampling);
``loq``
    optional limit of quantification (same unit); a row with ``value < loq`` is below the LOQ;
``weight``
    optional non-negative weight of the row in a fit.

Shared by :mod:`exopk.datasets` (the shipped literature data) and :func:`exopk.analysis.fit`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from exopk.errors import DataError

REQUIRED_COLUMNS = ("time_h", "organ", "quantity", "value", "unit")
OPTIONAL_COLUMNS = ("sd", "n", "loq", "weight")

# quantity -> {unit: factor to the canonical unit (the first)}; None: arbitrary units (a free scale factor).
QUANTITY_UNITS: dict[str, dict[str, float | None]] = {
    "percent_id": {"%ID": 1.0, "fraction": 100.0},
    "extravascular_percent_id": {"%ID": 1.0, "fraction": 100.0},
    "percent_id_per_g": {"%ID/g": 1.0, "fraction/g": 100.0, "%ID/mg": 1000.0},
    "amount_particles": {"particles": 1.0, "1e9 particles": 1e9},
    "concentration_particles_per_ml": {"particles/mL": 1.0, "particles/L": 1e-3, "particles/uL": 1e3},
    "signal": {"a.u.": None},
    "ratio_to_control": {"1": 1.0},
    # Summary PK figures of the blood curve, from 0 to infinity (compared in validation, not fitted):
    "half_life_alpha_min": {"min": 1.0, "h": 60.0},
    "blood_auc_percent_id_h_per_ml": {"%ID·h/mL": 1.0},
    "blood_mrt_h": {"h": 1.0, "min": 1 / 60},
    "blood_clearance_ml_per_h": {"mL/h": 1.0, "mL/min": 60.0},
    "blood_vss_ml": {"mL": 1.0},
}
"""Quantities an observation may have, with the units accepted for each (the first is the model's)."""

PK_SUMMARY_QUANTITIES = (
    "half_life_alpha_min",
    "blood_auc_percent_id_h_per_ml",
    "blood_mrt_h",
    "blood_clearance_ml_per_h",
    "blood_vss_ml",
)
"""Summary PK figures of a blood curve (``organ`` = ``blood``; ``time_h`` not used): compared by
``validation/validate.py``, never fitted."""

FITTABLE_QUANTITIES = (
    "percent_id",
    "extravascular_percent_id",
    "percent_id_per_g",
    "amount_particles",
    "concentration_particles_per_ml",
    "signal",
)


def _row(frame, i: int) -> str:
    r = frame.iloc[i]
    time_h, organ, quantity = (_plain(r[c]) for c in ("time_h", "organ", "quantity"))
    return f"row {i + 1} (time_h={time_h!r}, organ={organ!r}, quantity={quantity!r})"


def _plain(value):
    """A numpy scalar as the Python value it holds, so that messages show ``1.0``, not ``np.float64(1.0)``."""
    return value.item() if isinstance(value, np.generic) else value


def check_observations(frame, where: str = "data", quantities: tuple[str, ...] | None = None):
    """Validate a tidy observation table and add canonical-unit columns.

    Parameters
    ----------
    frame : pandas.DataFrame
        Observations (columns above).
    where : str
        Name of the table used in error messages (e.g. a file path).
    quantities : tuple of str, optional
        Quantities allowed (default: every key of :data:`QUANTITY_UNITS`).

    Returns
    -------
    pandas.DataFrame
        A copy with ``value, sd, loq`` as floats, ``n`` (default 1), ``weight`` (default 1),
        ``blq`` (below the LOQ), ``scale_to_model`` (factor from ``unit`` to the model unit, NaN
        for arbitrary units) and ``value_model``, ``sd_model``, ``loq_model`` in model units.

    Raises
    ------
    DataError
        Missing column, unknown organ or quantity, unit not accepted for the quantity, negative,
        NaN or non-numeric values, negative time.
    """
    import pandas as pd

    from exopk.model.graph import REPORTED_ORGANS

    if not isinstance(frame, pd.DataFrame):
        raise DataError(f"{where}: expected a pandas DataFrame of observations; got {type(frame).__name__}")
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise DataError(
            f"{where}: missing column(s) {', '.join(missing)}; an observation table needs columns "
            f"{', '.join(REQUIRED_COLUMNS)} (optional: {', '.join(OPTIONAL_COLUMNS)})"
        )
    if len(frame) == 0:
        raise DataError(f"{where}: no observations (the table has no rows)")
    out = frame.reset_index(drop=True).copy()
    allowed = QUANTITY_UNITS if quantities is None else {q: QUANTITY_UNITS[q] for q in quantities}
    organs = tuple(o for o in REPORTED_ORGANS if o != "eliminated")
    for column in ("time_h", "value", "sd", "n", "loq", "weight"):
        if column not in out.columns:
            continue
        if pd.api.types.is_bool_dtype(out[column]):
            raise DataError(
                f"{where}: column {column!r}, {_row(out, 0)}: {_plain(out[column].iloc[0])!r} is not a number"
            )
        numeric = pd.to_numeric(out[column], errors="coerce")
        bad = numeric.isna() & out[column].notna()
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raise DataError(
                f"{where}: column {column!r}, {_row(out, i)}: {_plain(out[column].iloc[i])!r} is not a number"
            )
        out[column] = numeric.astype(float)
    for i in range(len(out)):
        t = out["time_h"].iloc[i]
        if not np.isfinite(t) or t < 0:
            raise DataError(f"{where}: column 'time_h', {_row(out, i)}: {_plain(t)!r}; expected a finite time >= 0 (h)")
        organ, quantity, unit = out["organ"].iloc[i], out["quantity"].iloc[i], out["unit"].iloc[i]
        if organ not in organs:
            raise DataError(
                f"{where}: column 'organ', {_row(out, i)}: unknown organ {organ!r}; expected one of {', '.join(organs)}"
            )
        if quantity not in allowed:
            raise DataError(
                f"{where}: column 'quantity', {_row(out, i)}: unknown quantity {quantity!r}; "
                f"expected one of {', '.join(allowed)}"
            )
        if not isinstance(unit, str) or not unit.strip():
            raise DataError(
                f"{where}: column 'unit', {_row(out, i)}: missing unit; "
                f"expected one of {', '.join(allowed[quantity])} for {quantity}"
            )
        if unit not in allowed[quantity]:
            raise DataError(
                f"{where}: column 'unit', {_row(out, i)}: unit {unit!r} is not a unit of {quantity}; "
                f"expected one of {', '.join(allowed[quantity])}"
            )
    loq = out["loq"] if "loq" in out.columns else pd.Series(np.nan, index=out.index)
    out["loq"] = loq.astype(float)
    for i in range(len(out)):
        value, q = out["value"].iloc[i], out["loq"].iloc[i]
        if np.isfinite(q) and q <= 0:
            raise DataError(
                f"{where}: column 'loq', {_row(out, i)}: {_plain(q)!r}; expected a limit of quantification > 0"
            )
        if math.isnan(value) and not np.isfinite(q):
            raise DataError(
                f"{where}: column 'value', {_row(out, i)}: NaN (missing value); remove the row, or "
                "give a 'loq' column if the value was below the limit of quantification"
            )
        if np.isinf(value) or value < 0:
            raise DataError(f"{where}: column 'value', {_row(out, i)}: {_plain(value)!r}; expected a finite value >= 0")
    out["blq"] = np.isfinite(out["loq"]) & (out["value"].isna() | (out["value"] < out["loq"]))
    for column, default in (("sd", np.nan), ("n", 1.0), ("weight", 1.0)):
        if column not in out.columns:
            out[column] = default
    for i in range(len(out)):
        sd, n, w = out["sd"].iloc[i], out["n"].iloc[i], out["weight"].iloc[i]
        if not math.isnan(sd) and (not np.isfinite(sd) or sd < 0):
            raise DataError(f"{where}: column 'sd', {_row(out, i)}: {_plain(sd)!r}; expected a finite SD >= 0 or empty")
        if math.isnan(n):
            out.loc[i, "n"] = n = 1.0
        if not np.isfinite(n) or n < 1 or n != round(n):
            raise DataError(
                f"{where}: column 'n', {_row(out, i)}: {_plain(n)!r}; expected a whole number of animals >= 1"
            )
        if math.isnan(w):
            out.loc[i, "weight"] = w = 1.0
        if not np.isfinite(w) or w < 0:
            raise DataError(f"{where}: column 'weight', {_row(out, i)}: {_plain(w)!r}; expected a finite weight >= 0")
    scale = np.array(
        [
            np.nan if QUANTITY_UNITS[q][u] is None else QUANTITY_UNITS[q][u]
            for q, u in zip(out["quantity"], out["unit"], strict=True)
        ]
    )
    out["scale_to_model"] = scale
    factor = np.where(np.isnan(scale), 1.0, scale)
    for column in ("value", "sd", "loq"):
        out[f"{column}_model"] = out[column].to_numpy() * factor
    return out


def predict(params, regimen, obs, label=None, method: str | None = None) -> np.ndarray:
    """The model's value for each observation row, in model units.

    Parameters
    ----------
    params : ModelParameters
    regimen : Regimen or dose
    obs : pandas.DataFrame
        Output of :func:`check_observations` (``ratio_to_control`` rows are not predicted here).
    label : Label or str, optional
        Without a label, ``percent_id`` etc. are intact EVs. With a label, ``percent_id`` and
        ``percent_id_per_g`` are the label (bound + free, decay-corrected, as counting reports it)
        and ``signal`` is the label amount without decay correction (in %ID, up to a scale);
        ``extravascular_percent_id``, ``amount_particles`` and concentrations stay intact EVs.
    method : str, optional
        Solver method passed on.

    Returns
    -------
    numpy.ndarray, shape (n_rows,)
    """
    from exopk.observe.labels import simulate_label
    from exopk.simulation import simulate

    times = np.unique(obs["time_h"].to_numpy(dtype=float))
    grid = times if times[0] == 0.0 else np.concatenate([[0.0], times])
    if label is None:
        ev = simulate(params, regimen, grid, method=method)
        labelled = None
    else:
        labelled = simulate_label(params, regimen, grid, label, method=method)
        ev = labelled.ev
    index = np.searchsorted(grid, obs["time_h"].to_numpy(dtype=float))
    cache: dict[tuple[str, str], np.ndarray] = {}
    out = np.empty(len(obs))
    for i, (organ, quantity) in enumerate(zip(obs["organ"], obs["quantity"], strict=True)):
        key = (organ, quantity)
        if key not in cache:
            cache[key] = _series(ev, labelled, organ, quantity)
        out[i] = cache[key][index[i]]
    return out


def _series(ev, labelled, organ: str, quantity: str) -> np.ndarray:
    if quantity == "percent_id":
        return ev.percent_id(organ) if labelled is None else labelled.label_percent_id(organ, decay_corrected=True)
    if quantity == "percent_id_per_g":
        if labelled is None:
            return ev.percent_id_per_g(organ)
        return labelled.label_percent_id_per_g(organ, decay_corrected=True)
    if quantity == "signal":
        return ev.percent_id(organ) if labelled is None else labelled.label_percent_id(organ)
    if quantity == "extravascular_percent_id":
        if organ == "blood":
            raise DataError("quantity extravascular_percent_id is not defined for blood")
        return ev.extravascular_percent_id(organ)
    if quantity == "amount_particles":
        return ev.amount(organ)
    if quantity == "concentration_particles_per_ml":
        return ev.concentration_particles_per_ml(organ)
    raise DataError(f"quantity {quantity!r} cannot be predicted from one simulation")


def units_table() -> Mapping[str, tuple[str, ...]]:
    """Accepted units per quantity (first = model unit)."""
    return {q: tuple(u) for q, u in QUANTITY_UNITS.items()}
