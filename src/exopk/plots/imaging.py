"""Moved from _imaging."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from exopk.errors import InputError

if TYPE_CHECKING:  # pragma: no cover
    from exopk.observe.labels import TracerResult
from exopk.observe.imaging import VIEWS, ImagingParameters, load_imaging

# ---------------------------------------------------------------------------------------------
# Schematic mouse phantom (mm; x across the body, animal's left at negative x in the dorsal view;
# y along the body, nose up). Ellipses (centre x, centre y, radius x, radius y).
_BODY = ((0.0, 0.0, 13.0, 27.0), (0.0, 31.0, 8.0, 11.0))


_TAIL = (-1.0, 1.0, -75.0, -26.0)  # x0, x1, y0, y1


_REGIONS: dict[str, tuple[tuple[float, float, float, float], ...]] = {
    "brain": ((0.0, 32.0, 5.5, 6.0),),
    "nasal_cavity": ((0.0, 40.5, 2.2, 2.8),),
    "thyroid": ((0.0, 21.5, 2.5, 1.2),),
    "lung": ((-4.8, 12.0, 3.8, 6.0), (4.8, 12.0, 3.8, 6.0)),
    "liver": ((0.5, 1.0, 10.0, 5.0),),
    "spleen": ((-8.0, -3.0, 2.0, 4.0),),
    "kidney": ((-4.8, -8.0, 2.3, 3.5), (4.8, -8.0, 2.3, 3.5)),
    "peritoneal_cavity": ((0.0, -13.0, 9.0, 8.0),),
    "subcutaneous_site": ((6.0, 17.0, 3.0, 3.0),),
}


_DIFFUSE = ("blood", "rest")  # spread over the whole body outline


def _grid(pixel_mm: float):
    x = np.arange(-20.0, 20.0 + pixel_mm / 2, pixel_mm)
    y = np.arange(-45.0, 46.0 + pixel_mm / 2, pixel_mm)
    return np.meshgrid(x, y)


def _ellipses(X, Y, shapes, mirror: bool) -> np.ndarray:
    mask = np.zeros(X.shape, dtype=bool)
    for cx, cy, rx, ry in shapes:
        cx = -cx if mirror else cx
        mask |= ((X - cx) / rx) ** 2 + ((Y - cy) / ry) ** 2 <= 1.0
    return mask


def phantom_image(
    radiance_by_place: Mapping[str, float],
    view: str,
    depth_mm: Mapping[str, float],
    *,
    pixel_mm: float = 0.25,
) -> tuple[np.ndarray, np.ndarray, tuple[float, float, float, float]]:
    """Rasterise a schematic mouse: each place's radiance spread over its region, blurred by depth.

    The light of a place at depth *d* is spread with a Gaussian of standard deviation
    ``0.5 + 0.5 d`` mm (diffuse light widens with depth; schematic, not a light-transport model).

    Returns
    -------
    image : ndarray
        Radiance per mm² (a.u./mm²).
    body : ndarray of bool
        The mouse outline.
    extent : tuple
        (x_min, x_max, y_min, y_max) in mm, for ``imshow``.
    """
    from scipy.ndimage import gaussian_filter

    if view not in VIEWS:
        raise InputError(f"unknown view {view!r}; expected one of: {', '.join(VIEWS)}.")
    mirror = view == "ventral"
    X, Y = _grid(pixel_mm)
    body = _ellipses(X, Y, _BODY, False) | ((X >= _TAIL[0]) & (X <= _TAIL[1]) & (Y >= _TAIL[2]) & (Y <= _TAIL[3]))
    trunk = _ellipses(X, Y, _BODY, False)
    image = np.zeros(X.shape)
    for place, value in radiance_by_place.items():
        if value <= 0:
            continue
        if place in _DIFFUSE:
            mask = trunk
        elif place in _REGIONS:
            mask = _ellipses(X, Y, _REGIONS[place], mirror)
        else:
            raise InputError(f"the phantom has no region for {place!r}.")
        area_mm2 = mask.sum() * pixel_mm**2
        layer = mask * (value / area_mm2)
        sigma_px = (0.5 + 0.5 * depth_mm[place]) / pixel_mm
        image += gaussian_filter(layer, sigma_px, mode="constant")
    image *= body
    extent = (float(X[0, 0]), float(X[0, -1]), float(Y[0, 0]), float(Y[-1, 0]))
    return image, body, extent


def plot_whole_body(
    result: TracerResult,
    times_h: Sequence[float],
    *,
    views: Sequence[str] = ("dorsal", "ventral"),
    imaging: ImagingParameters | None = None,
    dynamic_range: float = 1e3,
):
    """Simulated IVIS-like whole-body images of an optical label at chosen times (schematic phantom).

    One column per time, one row per view, on one logarithmic colour scale (radiance a.u. per
    mm², ``dynamic_range`` decades shown below the brightest pixel), over a grey mouse outline.
    Times are interpolated linearly between the result's output times.

    Parameters
    ----------
    result : TracerResult
        A simulation with an optical label.
    times_h : sequence of float
        Image times (h), within the simulated times.
    views : sequence of {"dorsal", "ventral"}
    imaging : ImagingParameters, optional
        Default: the bundled file for the model's species.
    dynamic_range : float, default 1000
        Ratio of the brightest to the dimmest radiance shown.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm

    if result.label.modality != "optical":
        raise InputError(
            f"label {result.label.name!r} is not optical (modality {result.label.modality!r}); "
            "whole-body optical images need a dye or luciferase label."
        )
    times = [float(t) for t in times_h]
    if not times or any(not math.isfinite(t) or t < result.t_h[0] or t > result.t_h[-1] for t in times):
        raise InputError(
            f"image times must lie within the simulated {result.t_h[0]:g}-{result.t_h[-1]:g} h; got {times_h!r}."
        )
    for view in views:
        if view not in VIEWS:
            raise InputError(f"unknown view {view!r}; expected one of: {', '.join(VIEWS)}.")
    imaging = imaging or load_imaging(result.ev.params.species)
    images = {}
    for view in views:
        depth = {p: imaging.depth(p, view) for p in result.organs}
        for t in times:
            radiance = {p: float(np.interp(t, result.t_h, result.radiance_au(p, view, imaging))) for p in result.organs}
            images[view, t] = phantom_image(radiance, view, depth)
    top = max(float(img.max()) for img, _, _ in images.values())
    norm = LogNorm(vmin=top / dynamic_range, vmax=top) if top > 0 else None
    fig, axes = plt.subplots(len(views), len(times), figsize=(2.3 * len(times) + 1.2, 4.6 * len(views)), squeeze=False)
    shown = None
    for r, view in enumerate(views):
        for c, t in enumerate(times):
            ax = axes[r, c]
            img, body, extent = images[view, t]
            ax.imshow(np.where(body, 0.35, 0.0), cmap="gray", vmin=0, vmax=1, extent=extent, origin="lower")
            if norm is not None:
                masked = np.ma.masked_less(img, top / dynamic_range)
                shown = ax.imshow(masked, cmap="inferno", norm=norm, extent=extent, origin="lower")
            ax.set_title(f"{t:g} h, {view}", fontsize=9)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_facecolor("black")
    if shown is not None:
        fig.colorbar(shown, ax=axes, shrink=0.6, label="radiance (a.u. per mm²)")
    fig.suptitle(
        f"{result.label.name}: simulated whole-body optical signal (schematic phantom, not anatomy)", fontsize=10
    )
    return fig


def plot_apparent_vs_true(
    results: Sequence[TracerResult] | TracerResult,
    *,
    organs: Sequence[str] = ("blood", "liver", "lung", "spleen", "kidney", "brain"),
    decay_corrected: bool = True,
    t_min_h: float = 1.0 / 60.0,
):
    """The headline plot: label signal (apparent) and intact EVs (true) side by side, per organ.

    One panel per organ: the intact-EV %ID (black) and, for each result, the label %ID (solid)
    and its free part (dotted), on log-log axes.

    Parameters
    ----------
    results : TracerResult or sequence of them
        Simulations of the same dose with different labels.
    organs : sequence of str
    decay_corrected : bool, default True
        Show radiolabel %ID decay-corrected (as counting data are reported).
    t_min_h : float, default 1 min
        Earliest time shown (log time axis).

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    if not isinstance(results, Sequence):
        results = [results]
    if not results:
        raise InputError("`results` is empty; give at least one TracerResult.")
    n = len(organs)
    cols = min(3, n)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.3 * rows), squeeze=False)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for k, organ in enumerate(organs):
        ax = axes[k // cols, k % cols]
        first = results[0]
        t = first.t_h
        shown = t >= t_min_h
        true = first.true_percent_id(organ)
        ax.plot(
            t[shown], np.where(true[shown] > 0, true[shown], np.nan), color="black", lw=2.2, label="intact EVs (true)"
        )
        for j, res in enumerate(results):
            colour = colours[j % len(colours)]
            lab = res.label_percent_id(organ, decay_corrected=decay_corrected)
            free = res.free_percent_id(organ) / (res.decay_factor() if decay_corrected else 1.0)
            ax.plot(
                res.t_h[shown],
                np.where(lab[shown] > 0, lab[shown], np.nan),
                color=colour,
                lw=1.6,
                label=f"{res.label.name} label",
            )
            ax.plot(res.t_h[shown], np.where(free[shown] > 0, free[shown], np.nan), color=colour, lw=1.0, ls=":")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_ylim(1e-3, 200)
        ax.set_title(organ)
        ax.set_xlabel("time (h)")
        ax.set_ylabel("%ID")
        ax.grid(True, which="major", alpha=0.25)
    for k in range(n, rows * cols):
        axes[k // cols, k % cols].axis("off")
    axes[0, 0].legend(fontsize=7, loc="lower left")
    fig.suptitle("Apparent (label, solid; its free part dotted) vs true (intact EVs, black)", fontsize=10)
    fig.tight_layout()
    return fig
