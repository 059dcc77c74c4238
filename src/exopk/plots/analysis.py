"""Plots of analysis results: population prediction bands, tornado plots, Sobol bar charts (matplotlib, lazily)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from exopk.analysis.population import PopulationResult
from exopk.analysis.sensitivity import OUTPUT_METRICS, LocalSensitivity, SensitivityError, SobolIndices
from exopk.errors import InputError


def plot_population_bands(
    result: PopulationResult,
    *,
    organs: Sequence[str] = ("blood", "liver", "spleen", "lung", "brain"),
    ax=None,
    title: str | None = None,
):
    """Prediction bands of %ID per organ: the median line and the outermost percentiles shaded.

    Parameters
    ----------
    result : PopulationResult
    organs : sequence of str
    ax : matplotlib Axes, optional
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    q = np.asarray(result.percentiles)
    if ax is None:
        fig, ax = plt.subplots(figsize=(7.5, 4.8), layout="constrained")
    else:
        fig = ax.figure
    mid = int(np.argmin(np.abs(q - 50)))
    lo, hi = int(np.argmin(q)), int(np.argmax(q))
    for organ in organs:
        band = result.band(organ)
        (line,) = ax.plot(result.t_h, np.where(band[mid] > 0, band[mid], np.nan), lw=1.8, label=organ)
        if lo != hi:
            ax.fill_between(
                result.t_h, np.maximum(band[lo], 1e-12), np.maximum(band[hi], 1e-12), color=line.get_color(), alpha=0.2
            )
    ax.set_yscale("log")
    top = max(float(np.nanmax(result.band(o))) for o in organs)
    ax.set_ylim(top * 1e-8, top * 2)  # values below are round-off near t = 0
    ax.set_xlabel("time (h)")
    ax.set_ylabel("%ID per organ")
    ax.grid(True, which="both", alpha=0.25)
    ax.legend(loc="best", fontsize="small", ncols=2)
    n = result.population.n_subjects
    ax.set_title(title or f"{n} virtual subjects: P{q[mid]:g} (line), P{q[lo]:g}-P{q[hi]:g} (band)")
    return fig


def plot_tornado(result: LocalSensitivity, output: str | None = None, *, top: int = 15, ax=None):
    """Tornado plot: the ``top`` largest normalised local sensitivity coefficients of one output.

    Parameters
    ----------
    result : LocalSensitivity
    output : str, optional
        Default: the first output.
    top : int, default 15
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    output = output or result.outputs[0]
    if output not in result.outputs:
        raise SensitivityError(f"output {output!r} not in this analysis ({', '.join(result.outputs)}).")
    j = result.outputs.index(output)
    coef = result.coefficients[:, j]
    order = np.argsort(-np.abs(np.nan_to_num(coef)))[:top][::-1]
    if ax is None:
        fig, ax = plt.subplots(figsize=(7.5, 0.32 * len(order) + 1.5), layout="constrained")
    else:
        fig = ax.figure
    colors = ["tab:red" if c > 0 else "tab:blue" for c in coef[order]]
    ax.barh([result.parameters[i] for i in order], coef[order], color=colors)
    ax.axvline(0, color="black", lw=0.8)
    ax.set_xlabel(f"normalised sensitivity  d ln({output}) / d ln(parameter)")
    unit = OUTPUT_METRICS[output.rpartition("_")[2]]
    ax.set_title(f"{output} = {result.nominal_outputs[j]:.4g} {unit}: top {len(order)} parameters")
    ax.tick_params(axis="y", labelsize="small")
    return fig


def plot_sobol(result: SobolIndices, output: str | None = None, *, ax=None):
    """Bar chart of first- and total-order Sobol indices with their confidence intervals.

    Parameters
    ----------
    result : SobolIndices
    output : str, optional
        Default: the first output.
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    output = output or result.outputs[0]
    if output not in result.outputs:
        raise InputError(f"output {output!r} not in this analysis ({', '.join(result.outputs)}).")
    j = result.outputs.index(output)
    d = len(result.names)
    if ax is None:
        fig, ax = plt.subplots(figsize=(7.5, 0.35 * d + 1.8), layout="constrained")
    else:
        fig = ax.figure
    y = np.arange(d)
    for offset, label, values, ci in (
        (-0.2, "first order S1", result.first_order[:, j], result.first_order_ci[:, :, j]),
        (0.2, "total order ST", result.total_order[:, j], result.total_order_ci[:, :, j]),
    ):
        err = np.abs(np.stack([values - ci[0], ci[1] - values]))
        ax.barh(y + offset, values, height=0.38, xerr=err, label=label, capsize=2)
    ax.set_yticks(y, result.names, fontsize="small")
    ax.axvline(0, color="black", lw=0.8)
    ax.set_xlabel(f"Sobol index ({100 * result.confidence:g} % bootstrap interval)")
    ax.set_title(f"{output}: N = {result.n_base}, {result.n_evaluations} model runs")
    ax.legend(loc="best", fontsize="small")
    return fig


def plot_fit(result):
    """Observed against predicted (left) and the fitted curves of the first quantity with its data (right).

    Parameters
    ----------
    result : FitResult
        From :func:`exopk.analysis.fit.fit`.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(11, 4.5))
    result.plot_observed_vs_predicted(fig.add_subplot(1, 2, 1))
    _fitted_curves(result, fig.add_subplot(1, 2, 2))
    fig.tight_layout()
    return fig


def _fitted_curves(result, ax) -> None:
    """Curves with data of the first quantity, on an existing axis."""
    from exopk.analysis.fit import _unit_factor
    from exopk.analysis.observations import _series

    p = result._problem
    data = result.observations
    quantity = data["quantity"].iloc[0]
    rows = data[data["quantity"] == quantity]
    t = np.linspace(0.0, float(data["time_h"].max()) * 1.1, 300)
    if p.label is None:
        from exopk.simulation import simulate

        ev, labelled = simulate(result.params, p.regimen, t), None
    else:
        from exopk.observe.labels import simulate_label

        labelled = simulate_label(result.params, p.regimen, t, p.label)
        ev = labelled.ev
    factor = _unit_factor(quantity, rows["unit"].iloc[0])
    for organ in dict.fromkeys(rows["organ"]):
        curve = _series(ev, labelled, organ, quantity) * (result.signal_scale if quantity == "signal" else 1.0)
        (line,) = ax.plot(t[1:], curve[1:] / factor, label=organ)
        pts = rows[(rows["organ"] == organ) & ~rows["below_loq"]]
        ax.plot(pts["time_h"], pts["value"], "o", color=line.get_color())
    ax.set_yscale("log")
    ax.set_xlabel("time (h)")
    ax.set_ylabel(f"{quantity} ({rows['unit'].iloc[0]})")
    ax.legend(fontsize=7)
