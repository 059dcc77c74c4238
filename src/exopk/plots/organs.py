"""Plots of organ curves (matplotlib, imported lazily)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from exopk.errors import InputError
from exopk.results import SimulationResult

_QUANTITIES = {
    "percent_id": ("%ID per organ", "percent_id"),
    "percent_id_per_g": ("%ID/g", "percent_id_per_g"),
    "amount_particles": ("particles per organ", "amount"),
}
_EARLY_H = 2.0  # the distribution phase is over within about 30 min of an IV dose


def _draw(ax, result: SimulationResult, organs: Sequence[str], quantity: str, t_max_h: float) -> None:
    label, method = _QUANTITIES[quantity]
    shown = result.t_h <= t_max_h
    top = 0.0
    for organ in organs:
        y = getattr(result, method)(organ)[shown]
        top = max(top, float(np.max(y, initial=0.0)))
        ax.plot(result.t_h[shown], np.where(y > 0, y, np.nan), label=organ, lw=1.8)  # log axis: skip zeros
    ax.set_yscale("log")
    if top > 0:
        ax.set_ylim(top * 1e-6, top * 2)
    ax.set_xlabel("time (h)")
    ax.set_ylabel(label)
    ax.grid(True, which="both", alpha=0.25)


def plot_organ_curves(
    result: SimulationResult,
    *,
    organs: Sequence[str] = ("blood", "lung", "liver", "spleen", "kidney", "brain", "rest"),
    quantity: str = "percent_id",
    ax=None,
    title: str | None = None,
):
    """Plot organ curves of a simulation on a log y-axis, one line per organ.

    Without ``ax``, a figure with two panels is made when the run is longer than 4 h: the
    first 2 h (the distribution phase) and the whole run.

    Parameters
    ----------
    result : SimulationResult
    organs : sequence of str
        Reported organs to draw (not ``eliminated``).
    quantity : {"percent_id", "percent_id_per_g", "amount_particles"}
    ax : matplotlib Axes, optional
        Draw the whole run into this axes.
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    if quantity not in _QUANTITIES:
        raise InputError(f"`quantity` must be one of {', '.join(_QUANTITIES)}; got {quantity!r}.")
    for organ in organs:
        if organ not in result.organs[:-1]:
            raise InputError(f"unknown organ {organ!r}; expected some of: {', '.join(result.organs[:-1])}.")
    routes = ", ".join(sorted({d.route for d in result.regimen.doses}))
    title = title or f"{result.metadata.get('species', '')} {routes}, dose {result.dose_particles:.3g} particles"
    t_end = float(result.t_h[-1])
    if ax is not None:
        _draw(ax, result, organs, quantity, t_end)
        ax.legend(loc="best", fontsize="small", ncols=2)
        ax.set_title(title)
        return ax.figure
    import matplotlib.pyplot as plt

    if t_end > 2 * _EARLY_H:
        fig, (early, whole) = plt.subplots(1, 2, figsize=(11.0, 4.5), layout="constrained")
        _draw(early, result, organs, quantity, _EARLY_H)
        early.set_title(f"first {_EARLY_H:g} h")
        _draw(whole, result, organs, quantity, t_end)
        whole.set_title(f"0-{t_end:g} h")
        whole.legend(loc="upper right", fontsize="small", ncols=2)
    else:
        fig, whole = plt.subplots(figsize=(7.0, 4.5), layout="constrained")
        _draw(whole, result, organs, quantity, t_end)
        whole.legend(loc="best", fontsize="small", ncols=2)
    fig.suptitle(title)
    return fig
