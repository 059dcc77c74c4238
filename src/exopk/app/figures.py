"""The page's figures, drawn by matplotlib (Agg) and sent as SVG or PNG bytes."""

from __future__ import annotations

import io
import threading

import numpy as np

from exopk.errors import InputError

#: Formats the page offers, with their content types.
FORMATS = {"svg": "image/svg+xml", "png": "image/png"}

# pyplot's figure manager is not thread-safe; the server draws one figure at a time.
_LOCK = threading.Lock()


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def render(draw, fmt: str) -> bytes:
    """Call ``draw()`` (which returns a Figure) and return the figure's bytes in ``fmt``."""
    if fmt not in FORMATS:
        raise InputError(f"figure format must be one of: {', '.join(FORMATS)}; got {fmt!r}.")
    plt = _pyplot()
    with _LOCK:
        fig = draw()
        buffer = io.BytesIO()
        try:
            fig.savefig(buffer, format=fmt, dpi=110)
        finally:
            plt.close(fig)
    return buffer.getvalue()


def _organs(result) -> list[str]:
    return [o for o in result.organs if o != "eliminated" and result.is_shown(o)]


def curves_figure(output, route: str, scale: str = "log"):
    """Organ curves of one route: intact EVs and, with a label, the label's apparent signal side by side.

    Parameters
    ----------
    output : RunOutput
    route : str
    scale : {"log", "linear"}
        Scale of the %ID axes.

    Returns
    -------
    matplotlib.figure.Figure
    """
    if scale not in ("log", "linear"):
        raise InputError(f"`scale` must be 'log' or 'linear'; got {scale!r}.")
    if route not in output.results:
        raise InputError(f"no route {route!r} in this result; routes: {', '.join(output.results)}.")
    plt = _pyplot()
    result = output.results[route]
    labelled = output.labelled.get(route)
    panels = 2 if labelled is not None else 1
    # Fixed margins, not layout="constrained": the constrained solver costs more than drawing the
    # curves (measured 2.0 s vs 0.9 s for this figure on the loaded 2-core VM).
    fig, axes = plt.subplots(1, panels, figsize=(5.6 * panels, 4.2), squeeze=False, sharey=True)
    fig.subplots_adjust(left=0.14 if panels == 1 else 0.06, right=0.98, bottom=0.12, top=0.86, wspace=0.06)
    organs = _organs(result)
    series = [("intact EVs (true %ID)", {o: result.percent_id(o) for o in organs})]
    if labelled is not None:
        series.append(
            (f"{labelled.label.name} signal (apparent %ID, decay-corrected)",
             {o: labelled.label_percent_id(o, decay_corrected=True) for o in organs})
        )  # fmt: skip
    top = max(float(np.max(y)) for _, curves in series for y in curves.values())
    for ax, (title, curves) in zip(axes[0], series, strict=True):
        for organ, y in curves.items():
            ax.plot(result.t_h, np.where(y > 0, y, np.nan) if scale == "log" else y, lw=1.6, label=organ)
        ax.set_yscale(scale)
        if scale == "log" and top > 0:
            ax.set_ylim(top * 1e-5, top * 2)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("time (h)")
        ax.grid(True, which="both", alpha=0.25)
        for t in output.spec.times_h:
            ax.axvline(t, color="0.6", lw=0.8, ls=":")
    axes[0, 0].set_ylabel("%ID per organ")
    axes[0, -1].legend(loc="best", fontsize="small", ncols=2)
    fig.suptitle(
        f"{output.params.species}, {route}, {result.dose_particles:.3g} particles in total (dotted: sacrifice times)",
        fontsize=10,
    )
    return fig


def image_available(output) -> str | None:
    """None if whole-body images can be drawn, else the reason (shown on the page)."""
    from exopk.observe.imaging import imaging_available

    if output.spec.label is None:
        return "choose an optical label (a dye or luciferase) to see simulated whole-body images"
    label = next(iter(output.labelled.values())).label
    if label.modality != "optical":
        return f"{label.name} is a {label.modality} label: whole-body optical images need a dye or luciferase label"
    if not imaging_available(output.params.species):
        return f"no imaging parameters for {output.params.species} (params/imaging/ ships mouse only)"
    return None


def image_figure(output, route: str):
    """Simulated whole-body optical images at the sacrifice/imaging times (:func:`exopk.plots.plot_whole_body`)."""
    from exopk.plots.imaging import plot_whole_body

    reason = image_available(output)
    if reason is not None:
        raise InputError(reason)
    return plot_whole_body(output.labelled[route], list(output.spec.times_h))


def comparison_figure(output):
    """Brain tissue and blood per route, and exact AUCs (:func:`exopk.plots.plot_route_comparison`)."""
    from exopk.plots.compare import plot_route_comparison

    if output.comparison is None:
        raise InputError("no route comparison: choose two or more routes.")
    return plot_route_comparison(output.comparison)


def bands_figure(population_result):
    """Population prediction bands per organ (:func:`exopk.plots.plot_population_bands`)."""
    from exopk.plots.analysis import plot_population_bands

    organs = [o for o in ("blood", "liver", "spleen", "lung", "kidney", "brain") if o in population_result.organs]
    return plot_population_bands(population_result, organs=organs)
