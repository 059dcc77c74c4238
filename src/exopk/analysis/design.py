"""Regimen design: the dose and interval that keep an organ's steady-state exposure inside a window."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from exopk.dosing import Dose, Infusion, _Instant
from exopk.errors import DesignError
from exopk.model.graph import ORGAN_POOLS, REPORTED_ORGANS
from exopk.model.parameters import ModelParameters
from exopk.simulation import simulate

DESIGN_QUANTITIES: dict[str, str] = {
    "percent_id": "%ID",
    "percent_id_per_g": "%ID/g",
    "amount_particles": "particles",
    "particles_per_g": "particles/g",
}
"""Exposure measures a design can target, with their units. %ID at steady state is relative to
one dose; in the linear model it does not depend on the dose, so a %ID window sets the
interval only, and an amount window (particles, particles/g) sets both."""

DEFAULT_INTERVALS_H: tuple[float, ...] = (4.0, 6.0, 8.0, 12.0, 24.0, 48.0, 72.0, 168.0)
"""Candidate dosing intervals (h): common clinical and preclinical schedules."""


@dataclass(frozen=True)
class RegimenDesign:
    """The result of :func:`design_regimen`.

    Attributes
    ----------
    organ, quantity, unit, measure : str
        What is kept in the window (``measure``: ``"intact EVs"`` or the label name).
    low, high : float
        The window, in ``unit``.
    candidates : pandas.DataFrame
        One row per candidate interval: ``interval_h``, ``trough`` and ``peak`` at steady
        state for the given dose (``unit``), ``dose_min_particles`` and ``dose_max_particles``
        (the doses that keep trough >= low and peak <= high; NaN if none), ``feasible``.
    interval_h, dose_particles : float or None
        The recommendation: the longest feasible interval, at the geometric middle of its dose
        range (for %ID windows: the dose given). None if no candidate fits.
    curve_t_h, curve : ndarray
        Steady-state curve of the recommended regimen (or of the closest candidate) over three
        intervals, in ``unit``.
    """

    organ: str
    quantity: str
    unit: str
    measure: str
    low: float
    high: float
    candidates: Any
    interval_h: float | None
    dose_particles: float | None
    curve_t_h: np.ndarray
    curve: np.ndarray
    curve_interval_h: float
    curve_dose_particles: float
    metadata: dict = field(default_factory=dict)

    @property
    def feasible(self) -> bool:
        """Whether some candidate interval keeps the exposure in the window."""
        return self.interval_h is not None

    def summary(self) -> str:
        """One line: the recommendation or why there is none."""
        what = f"{self.organ} {self.quantity} ({self.measure}) in [{self.low:g}, {self.high:g}] {self.unit}"
        if not self.feasible:
            return f"no candidate interval keeps {what} at steady state; widen the window or add intervals."
        return (
            f"{self.dose_particles:.4g} particles every {self.interval_h:g} h keeps {what} at steady state "
            f"(trough {float(self.curve.min()):.4g}, peak {float(self.curve.max()):.4g})."
        )


def _exposure(params, regimen, t_h, organ, quantity, label, extravascular):
    """The organ's exposure over ``t_h`` (quantity units) for intact EVs or a label."""
    if label is None:
        result = simulate(params, regimen, t_h)
        if extravascular:
            amount = result.extravascular_amount(organ)
        else:
            amount = result.amount(organ)
        dose = result.dose_particles
    else:
        from exopk.observe.labels import simulate_label

        tracer = simulate_label(params, regimen, t_h, label)
        if extravascular:
            raise DesignError("`extravascular` applies to intact EVs only; the label is reported per organ.")
        amount = tracer.label_amount(organ)
        result = tracer.ev
        dose = result.dose_particles
    if quantity == "amount_particles":
        return amount
    if quantity == "percent_id":
        return 100.0 * amount / dose
    k = REPORTED_ORGANS.index(organ)
    grams = result.organ_volumes_ml[k] * params["tissue_density_g_per_ml"]
    if quantity == "particles_per_g":
        return amount / grams
    return 100.0 * amount / dose / grams


def design_regimen(
    params: ModelParameters,
    dose: Dose,
    organ: str,
    low: float,
    high: float,
    *,
    quantity: str = "amount_particles",
    intervals_h: Sequence[float] = DEFAULT_INTERVALS_H,
    label: str | Path | None = None,
    extravascular: bool = False,
    n_points: int = 241,
) -> RegimenDesign:
    """Find the dose and interval that keep an organ's steady-state exposure inside a window.

    For each candidate interval :math:`\\tau` the periodic steady state of ``dose`` given every
    :math:`\\tau` is computed exactly (``ss=1``, see :func:`exopk.simulate`), and its trough
    and peak over one interval in ``organ``. The model is linear, so exposure scales with the
    dose *D*: with trough :math:`m(\\tau)` and peak :math:`M(\\tau)` per particle, the window
    :math:`[L, H]` holds for :math:`L/m \\le D \\le H/M`, which exists when
    :math:`M/m \\le H/L`. The longest such interval is recommended (fewest administrations), at
    the geometric middle :math:`\\sqrt{(L/m)(H/M)}` of its dose range. A %ID window does not
    depend on the dose (%ID is relative to it): it selects the interval only.

    Parameters
    ----------
    params : ModelParameters
        The model (linear: every ``capacity_particles`` infinite).
    dose : dose
        Route, site and amount of one administration (e.g. ``Intranasal(dose_particles=1e10)``);
        its time, repeats and steady-state fields are replaced.
    organ : str
        A reported organ (``kidney``, ``brain``...).
    low, high : float
        The window, in the unit of ``quantity``; ``0 < low < high``.
    quantity : {"amount_particles", "particles_per_g", "percent_id", "percent_id_per_g"}
        Exposure measure (see :data:`DESIGN_QUANTITIES`).
    intervals_h : sequence of float
        Candidate intervals (h).
    label : str or Path, optional
        Keep the label's signal in the window instead of the intact EVs (e.g. ``"DiR"``).
    extravascular : bool, default False
        Intact EVs outside the organ's blood only (tissue space and cells; e.g. brain tissue
        after intranasal dosing).
    n_points : int, default 241
        Output times per interval at which trough and peak are taken.

    Returns
    -------
    RegimenDesign

    Raises
    ------
    DesignError
        Invalid window, organ, quantity or intervals; a capacity-limited model.
    """
    if not isinstance(params, ModelParameters):
        raise DesignError(f"`params` must be ModelParameters; got {type(params).__name__}.")
    if not params.is_linear:
        raise DesignError(
            "regimen design scales exposure with the dose, which needs the linear model; set every "
            "`capacity_particles` to inf (or simulate candidate regimens of the capacity-limited model with ss=1)."
        )
    if not isinstance(dose, (_Instant, Infusion)):
        raise DesignError(f"`dose` must be a dose (e.g. IVBolus); got {type(dose).__name__}.")
    if quantity not in DESIGN_QUANTITIES:
        raise DesignError(f"`quantity` must be one of {', '.join(DESIGN_QUANTITIES)}; got {quantity!r}.")
    if organ not in REPORTED_ORGANS or organ == "eliminated":
        raise DesignError(f"`organ` must be one of {', '.join(REPORTED_ORGANS[:-1])}; got {organ!r}.")
    if extravascular and organ not in ORGAN_POOLS:
        raise DesignError(f"`extravascular` applies to the organs {', '.join(ORGAN_POOLS)}; got {organ!r}.")
    for name, value in (("low", low), ("high", high)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
            raise DesignError(f"`{name}` must be a positive number; got {value!r}.")
    if not low < high:
        raise DesignError(f"the window needs `low` < `high`; got low={low!r}, high={high!r}.")
    taus = np.asarray(intervals_h, dtype=float)
    if taus.ndim != 1 or taus.size == 0 or not np.all(np.isfinite(taus)) or np.any(taus <= 0):
        raise DesignError(f"`intervals_h` must be positive numbers (h); got {intervals_h!r}.")
    if isinstance(dose, Infusion) and float(dose.duration_h) > taus.min():  # type: ignore[arg-type]
        raise DesignError(
            f"the infusion lasts {dose.duration_h:g} h, longer than the shortest interval {taus.min():g} h."
        )
    weight_kg = params.values["body_weight_g"] / 1000.0
    one = dose.for_body_weight(weight_kg)
    amount = one.amount_particles
    if amount <= 0:
        raise DesignError("`dose` must have a positive amount; the design scales it.")
    dose_independent = quantity in ("percent_id", "percent_id_per_g")

    def at_steady_state(tau: float, n_intervals: int = 1, factor: float = 1.0):
        base = dataclasses.replace(one, t_h=0.0, ss=1, ii_h=tau, addl=n_intervals - 1)
        if factor != 1.0:
            base = dataclasses.replace(base, dose_particles=amount * factor, **_rate_reset(base))
        t = np.linspace(0.0, n_intervals * tau, (n_points - 1) * n_intervals + 1)
        return t, _exposure(params, base, t, organ, quantity, label, extravascular)

    rows = []
    for tau in taus:
        _, y = at_steady_state(float(tau))
        trough, peak = float(y.min()), float(y.max())
        if dose_independent:
            ok = trough >= low and peak <= high
            d_min = d_max = amount if ok else math.nan
        else:
            d_min = low / trough * amount if trough > 0 else math.inf
            d_max = high / peak * amount if peak > 0 else math.inf
            ok = d_min <= d_max
            if not ok:
                d_min = d_max = math.nan
        rows.append(
            {
                "interval_h": float(tau),
                "trough": trough,
                "peak": peak,
                "peak_to_trough": peak / trough if trough > 0 else math.inf,
                "dose_min_particles": d_min,
                "dose_max_particles": d_max,
                "feasible": bool(ok),
            }
        )
    import pandas as pd

    table = pd.DataFrame(rows)
    feasible = table[table["feasible"]]
    if len(feasible):
        best = feasible.iloc[int(np.argmax(feasible["interval_h"].to_numpy()))]
        interval = float(best["interval_h"])
        chosen = amount if dose_independent else math.sqrt(best["dose_min_particles"] * best["dose_max_particles"])
        recommendation: tuple[float | None, float | None] = (interval, float(chosen))
    else:
        # the closest candidate: the smallest peak-to-trough ratio, scaled to the window's geometric middle
        best = table.iloc[int(np.argmin(table["peak_to_trough"].to_numpy()))]
        interval = float(best["interval_h"])
        chosen = amount if dose_independent else amount * math.sqrt(low * high / (best["trough"] * best["peak"]))
        recommendation = (None, None)
    t_curve, curve = at_steady_state(interval, 3, chosen / amount)
    return RegimenDesign(
        organ=organ,
        quantity=quantity,
        unit=DESIGN_QUANTITIES[quantity],
        measure="intact EVs" if label is None else f"label {label}",
        low=float(low),
        high=float(high),
        candidates=table,
        interval_h=recommendation[0],
        dose_particles=recommendation[1],
        curve_t_h=t_curve,
        curve=curve,
        curve_interval_h=interval,
        curve_dose_particles=float(chosen),
        metadata={"route": one.route, "extravascular": extravascular},
    )


def _rate_reset(dose) -> dict:
    """Fields to clear so that an infusion's rate follows its new amount (its duration stays)."""
    return {"rate_particles_per_h": None} if isinstance(dose, Infusion) else {}


__all__ = ["DESIGN_QUANTITIES", "DesignError", "RegimenDesign", "design_regimen"]
