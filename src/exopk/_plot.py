"""Plots of organ curves (matplotlib, imported lazily)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ._result import SimulationResult

_QUANTITIES = {
    "percent_id": ("%ID per organ", "percent_id"),
    "percent_id_per_g": ("%ID/g", "percent_id_per_g"),
    "amount_particles": ("particles per organ", "amount"),
}


def plot_organ_curves(
    result: SimulationResult,
    *,
    organs: Sequence[str] = ("blood", "lung", "liver", "spleen", "kidney", "brain", "rest"),
    quantity: str = "percent_id",
    ax=None,
    title: str | None = None,
):
    """Plot organ curves of a simulation on a log y-axis, one line per organ.

    Parameters
    ----------
    result : SimulationResult
    organs : sequence of str
        Reported organs to draw.
    quantity : {"percent_id", "percent_id_per_g", "amount_particles"}
    ax : matplotlib Axes, optional
        Draw into this axes; a new figure otherwise.
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib

    if ax is None:
        matplotlib.use("Agg", force=False) if matplotlib.get_backend() == "" else None
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(7.0, 4.5), layout="constrained")
    else:
        fig = ax.figure
    if quantity not in _QUANTITIES:
        raise ValueError(f"`quantity` must be one of {', '.join(_QUANTITIES)}; got {quantity!r}.")
    label, method = _QUANTITIES[quantity]
    for organ in organs:
        y = getattr(result, method)(organ)
        y = np.where(y > 0, y, np.nan)  # log axis: zero before a dose is not drawn
        ax.plot(result.t_h, y, label=organ, lw=1.8)
    ax.set_yscale("log")
    ax.set_xlabel("time (h)")
    ax.set_ylabel(label)
    finite = [getattr(result, method)(o) for o in organs]
    top = max(float(np.nanmax(y)) for y in finite)
    if top > 0:
        ax.set_ylim(top * 1e-6, top * 2)
    ax.grid(True, which="both", alpha=0.25)
    ax.legend(loc="best", fontsize="small", ncols=2)
    species = result.metadata.get("species", "")
    ax.set_title(title or f"{species} {', '.join(sorted({d.route for d in result.regimen.doses}))}, "
                 f"dose {result.dose_particles:.3g} particles")
    return fig
