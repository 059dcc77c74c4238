"""Moved from _compare."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from exopk.analysis.compare import (
    EXPOSURE_COMPARTMENTS,
    RouteComparison,
    _curve,
)
from exopk.errors import InputError


def plot_route_comparison(
    comparison: RouteComparison,
    organs: Sequence[str] = ("brain_extravascular", "blood"),
    *,
    bar_organs: Sequence[str] = ("blood", "lung", "liver", "spleen", "kidney", "brain_extravascular"),
):
    """Curves of chosen places per route (log y), and a bar chart of AUC per place and route.

    Parameters
    ----------
    comparison : RouteComparison
    organs : sequence of str, default ("brain_extravascular", "blood")
        Places to draw as curves (:data:`EXPOSURE_COMPARTMENTS`).
    bar_organs : sequence of str
        Places in the AUC bar chart (exact AUC to infinity, %ID·h, log scale).

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    for place in tuple(organs) + tuple(bar_organs):
        if place not in EXPOSURE_COMPARTMENTS:
            raise InputError(f"unknown place {place!r}; expected some of: {', '.join(EXPOSURE_COMPARTMENTS)}.")
    n = len(organs)
    fig = plt.figure(figsize=(4.2 * max(n, 2), 8.0), layout="constrained")
    grid = fig.add_gridspec(2, max(n, 1))
    for k, place in enumerate(organs):
        ax = fig.add_subplot(grid[0, k])
        top = 0.0
        for route, result in comparison.results.items():
            y = _curve(result, place)
            top = max(top, float(np.max(y, initial=0.0)))
            ax.plot(result.t_h, np.where(y > 0, y, np.nan), label=route, lw=1.8)
        ax.set_yscale("log")
        if top > 0:
            ax.set_ylim(top * 1e-5, top * 2)
        ax.set_xlabel("time (h)")
        ax.set_ylabel("%ID")
        ax.set_title(place.replace("_extravascular", " tissue (extravascular)"))
        ax.grid(True, which="both", alpha=0.25)
        ax.legend(fontsize="small")
    bars = fig.add_subplot(grid[1, :])
    width = 0.8 / len(comparison.results)
    x = np.arange(len(bar_organs))
    all_heights = []
    for j, (route, auc) in enumerate(comparison.auc_inf_percent_id_h.items()):
        heights = [max(auc[p], 1e-12) for p in bar_organs]
        all_heights += heights
        bars.bar(x + (j - (len(comparison.results) - 1) / 2) * width, heights, width, label=route)
    bars.set_xticks(x, [p.replace("_extravascular", "\ntissue") for p in bar_organs])
    bars.set_yscale("log")
    bars.set_ylim(min(all_heights) / 3, max(all_heights) * 300)  # room for the legend above the bars
    bars.set_ylabel("AUC 0-∞ (%ID·h)")
    bars.set_title("exposure per organ and route (exact AUC to infinity)")
    bars.grid(True, axis="y", which="both", alpha=0.25)
    bars.legend(fontsize="small", ncols=min(len(comparison.results), 4))
    species = comparison.metadata.get("species", "")
    fig.suptitle(f"{species}: {comparison.dose_particles:.3g} particles by {len(comparison.results)} routes")
    return fig
