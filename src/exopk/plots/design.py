"""The steady-state curve of a regimen design against its window."""

from __future__ import annotations

import numpy as np

from exopk.analysis.design import RegimenDesign


def plot_regimen_design(design: RegimenDesign):
    """Steady-state exposure over three intervals, the window, and trough/peak per candidate interval.

    Parameters
    ----------
    design : RegimenDesign
        From :func:`exopk.analysis.design_regimen`.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    fig, (ax, cand) = plt.subplots(1, 2, figsize=(11, 4), gridspec_kw={"width_ratios": [3, 2]})
    ax.axhspan(design.low, design.high, color="tab:green", alpha=0.15, label="target window")
    ax.plot(design.curve_t_h, design.curve, color="tab:blue", label=f"{design.organ}, {design.measure}")
    floor = max(float(design.curve[design.curve > 0].min(initial=design.low)), design.low * 1e-3)
    ax.set_yscale("log")
    ax.set_ylim(bottom=min(floor, design.low) / 2)
    ax.set_xlabel("time since a steady-state dose (h)")
    ax.set_ylabel(f"{design.organ} ({design.unit})")
    status = "" if design.feasible else " — outside the window (closest candidate)"
    ax.set_title(f"{design.curve_dose_particles:.3g} particles every {design.curve_interval_h:g} h{status}")
    ax.legend(loc="best")
    table = design.candidates
    x = np.arange(len(table))
    ratio = table["peak_to_trough"].to_numpy()
    cand.bar(x, ratio, color=np.where(table["feasible"], "tab:green", "tab:grey"))
    cand.axhline(design.high / design.low, color="k", ls="--", label="window high/low")
    cand.set_yscale("log")
    cand.set_xticks(x, [f"{v:g}" for v in table["interval_h"]])
    cand.set_xlabel("interval (h)")
    cand.set_ylabel("peak / trough at steady state")
    cand.legend(loc="best")
    fig.tight_layout()
    return fig
