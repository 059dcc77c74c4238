"""Plots of organ curves (matplotlib, imported lazily)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from exopk.errors import InputError
from exopk.model.graph import ELIMINATION_PATHWAYS
from exopk.results import SimulationResult

_QUANTITIES = {
    "percent_id": ("intact EVs, %ID per organ", "percent_id"),
    "percent_id_per_g": ("intact EVs, %ID per g tissue", "percent_id_per_g"),
    "amount_particles": ("intact EVs per organ (particles)", "amount"),
}
_EARLY_H = 2.0  # the distribution phase is over within about 30 min of an IV dose
_ROUTE_WORDS = {
    "iv_bolus": "IV bolus",
    "iv_infusion": "IV infusion",
    "intranasal": "intranasal",
    "intraperitoneal": "intraperitoneal",
    "subcutaneous": "subcutaneous",
    "intratracheal": "intratracheal",
    "local": "local injection",
}
#: The log axis shows at most this many decades below the highest curve, however low the data go.
_MAX_DECADES = 12.0
_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def particles_in_words(n: float) -> str:
    """A particle count as ``1×10¹⁰`` (``2.5×10⁹``; plain digits below 1000)."""
    if not np.isfinite(n) or n < 1000:
        return f"{n:g}"
    exponent = int(np.floor(np.log10(n)))
    mantissa = n / 10.0**exponent
    if round(mantissa, 2) >= 10:  # 9.999e9 rounds up
        mantissa, exponent = mantissa / 10, exponent + 1
    return f"{mantissa:.3g}×10{str(exponent).translate(_SUPERSCRIPT)}"


def title_in_words(result: SimulationResult) -> str:
    """``Mouse · IV bolus · 1×10¹⁰ EVs`` (routes in words; number of doses when there are several)."""
    species = str(result.metadata.get("species", "")).capitalize()
    routes = list(dict.fromkeys(d.route for d in result.regimen.doses))
    how = " + ".join(_ROUTE_WORDS.get(r, r.replace("_", " ")) for r in routes)
    n = len(result.regimen.doses)
    dose = particles_in_words(result.dose_particles)
    amount = f"{dose} EVs" if n == 1 else f"{n} doses, {dose} EVs in total"
    return " · ".join(part for part in (species, how, amount) if part)


def _floor(curves: Sequence[np.ndarray], top: float) -> float:
    """The lowest value the curves reach once they have risen: every fall is shown, not cut off.

    A curve's rise from 0 after the dose would take the log axis down without end; its minimum
    after its peak (and the last value) is where it has something to say. Half of the lowest such
    value, but no more than :data:`_MAX_DECADES` below the top.
    """
    lows = []
    for y in curves:
        positive = np.flatnonzero(y > 0)
        if positive.size == 0:
            continue
        after_peak = y[int(np.argmax(y)) :]
        after_peak = after_peak[after_peak > 0]
        lows.append(float(after_peak.min()))
    if not lows or top <= 0:
        return 1e-6 * top if top > 0 else 1e-6
    return max(0.5 * min(lows), top * 10.0**-_MAX_DECADES)


def _colours(organs: Sequence[str]) -> dict[str, str]:
    """One colour per organ, the same in every panel (and for what that organ degrades)."""
    return {organ: f"C{i % 10}" for i, organ in enumerate(organs)}


def _draw(ax, result: SimulationResult, organs: Sequence[str], quantity: str, t_max_h: float) -> None:
    label, method = _QUANTITIES[quantity]
    shown = result.t_h <= t_max_h
    colours = _colours(organs)
    curves, organ_curves = [], []
    for organ in organs:
        y = getattr(result, method)(organ)[shown]
        curves.append(y)
        if organ not in result.dosed_sites:  # a depot empties for good; its fall sets no floor
            organ_curves.append(y)
        # log axis: zeros are not drawn
        ax.plot(result.t_h[shown], np.where(y > 0, y, np.nan), label=organ, lw=1.8, color=colours[organ])
    ax.set_yscale("log")
    top = max((float(np.max(y, initial=0.0)) for y in curves), default=0.0)
    if top > 0:
        ax.set_ylim(_floor(organ_curves or curves, top), top * 2)
    ax.set_xlabel("time (h)")
    ax.set_ylabel(label)
    ax.grid(True, which="both", alpha=0.25)


def dose_fates_percent(result: SimulationResult) -> dict[str, np.ndarray]:
    """Where the dose is at each time, in %ID, summing to 100: intact EVs in the body, each way out.

    Returns
    -------
    dict of str to ndarray, shape (n_times,)
        ``"intact EVs in the body"``, ``"degraded in <organ>"`` for each organ or site that degrades
        more than 0.5 %ID by the end (the rest together as ``"degraded elsewhere"``), ``"excreted
        (urine, feces)"``, ``"swallowed"`` when non-zero, and ``"not yet given"`` for later doses.
    """
    scale = 100.0 / result.dose_particles
    in_body = result.amounts_particles.sum(axis=1) - result.eliminated()
    fates = {"intact EVs in the body": np.clip(in_body, 0.0, None) * scale}
    elsewhere = np.zeros(result.t_h.size)
    for pathway in ELIMINATION_PATHWAYS:
        if not pathway.startswith("degraded_"):
            continue
        y = result.eliminated(pathway) * scale
        if y[-1] > 0.5:
            fates[f"degraded in {pathway.removeprefix('degraded_').replace('_', ' ')}"] = y
        else:
            elsewhere += y
    if elsewhere[-1] > 0:
        fates["degraded elsewhere"] = elsewhere
    excreted = (result.eliminated("urine") + result.eliminated("feces")) * scale
    if excreted[-1] > 0:
        fates["excreted (urine, feces)"] = excreted
    swallowed = result.eliminated("swallowed") * scale
    if swallowed[-1] > 0:
        fates["swallowed"] = swallowed
    pending = 100.0 - result.administered_particles * scale
    if np.max(pending) > 1e-9:
        fates["not yet given"] = np.clip(pending, 0.0, None)
    return fates


def plot_dose_fates(result: SimulationResult, ax, colours: dict[str, str] | None = None) -> None:
    """Stacked areas (linear, 0-100 %ID) of where the dose went: :func:`dose_fates_percent`.

    ``colours`` maps organs to colours: what an organ degrades takes that organ's colour.
    """
    fates = dose_fates_percent(result)
    colours = colours or {}
    fixed = {
        "intact EVs in the body": "#d9d9d9",
        "degraded elsewhere": "0.35",
        "not yet given": "white",
        "excreted (urine, feces)": "gold",
    }
    spare = iter(f"C{i}" for i in range(len(colours), 20))
    fill = []
    for name in fates:
        organ = name.removeprefix("degraded in ").replace(" ", "_")
        fill.append(fixed.get(name) or colours.get(organ) or next(spare))
    areas = ax.stackplot(result.t_h, *fates.values(), labels=list(fates), colors=fill, alpha=0.85)
    for name, area in zip(fates, areas, strict=True):
        if name == "not yet given":  # hatched, so that it reads as "nothing here yet"
            area.set_hatch("///")
            area.set_edgecolor("0.6")
    ax.set_xlim(0.0, float(result.t_h[-1]))
    ax.set_ylim(0.0, 100.0)
    ax.set_xlabel("time (h)")
    ax.set_ylabel("%ID, cumulative")
    ax.set_title("where the dose went")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), fontsize="small", ncols=2, frameon=False)


def plot_organ_curves(
    result: SimulationResult,
    *,
    organs: Sequence[str] = ("blood", "lung", "liver", "spleen", "kidney", "brain", "rest"),
    quantity: str = "percent_id",
    ax=None,
    title: str | None = None,
):
    """Plot intact-EV organ curves of a simulation on a log y-axis, and where the dose went.

    Without ``ax``, the figure has the first 2 h (the distribution phase; only when the run is
    longer than 4 h), the whole run, and a panel of where the dose went (intact EVs in the body
    and cumulative degradation and excretion, stacked to 100 %ID). The organ legend is outside
    the axes. The log axis reaches down to the lowest value each organ curve falls to (at most
    12 decades below the top), so no organ's fall is cut off; an administration site that
    empties may fall through the floor.

    Parameters
    ----------
    result : SimulationResult
    organs : sequence of str
        Reported organs (or dosed sites) to draw (not ``eliminated``).
    quantity : {"percent_id", "percent_id_per_g", "amount_particles"}
    ax : matplotlib Axes, optional
        Draw only the organ curves of the whole run into this axes.
    title : str, optional
        Default: species, route and dose in words, e.g. "Mouse · IV bolus · 1×10¹⁰ EVs".

    Returns
    -------
    matplotlib.figure.Figure
    """
    if quantity not in _QUANTITIES:
        raise InputError(f"`quantity` must be one of {', '.join(_QUANTITIES)}; got {quantity!r}.")
    for organ in organs:
        if organ not in result.organs[:-1]:
            raise InputError(f"unknown organ {organ!r}; expected some of: {', '.join(result.organs[:-1])}.")
    title = title or title_in_words(result)
    t_end = float(result.t_h[-1])
    if ax is not None:
        _draw(ax, result, organs, quantity, t_end)
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small", frameon=False)
        ax.set_title(title)
        return ax.figure
    import matplotlib.pyplot as plt

    early = t_end > 2 * _EARLY_H
    widths = [1.0, 1.3, 1.0] if early else [1.3, 1.0]
    fig, axes = plt.subplots(
        1, len(widths), figsize=(5.0 + 3.6 * len(widths), 4.8), layout="constrained", width_ratios=widths
    )
    if early:
        _draw(axes[0], result, organs, quantity, _EARLY_H)
        axes[0].set_title(f"first {_EARLY_H:g} h")
    whole = axes[-2]
    _draw(whole, result, organs, quantity, t_end)
    whole.set_title(f"0–{t_end:g} h")
    if early:
        whole.set_ylabel("")
    whole.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small", frameon=False, title="organ")
    plot_dose_fates(result, axes[-1], _colours(organs))
    fig.suptitle(title)
    return fig
