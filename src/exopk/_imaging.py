"""What an imager shows: optical radiance with tissue attenuation, a schematic whole-body image, plots.

Optical radiance of the label in a place, seen from one side of the animal (``dorsal`` or
``ventral``):

.. math:: R = 100\\,\\frac{L}{D}\\; e^{-(\\mu_{eff}(\\lambda_{em}) + \\mu_{eff}(\\lambda_{ex}))\\, d}

with label *L* in the place, dose *D*, depth *d* (mm) below the skin on that side, and the
effective attenuation coefficient :math:`\\mu_{eff} = \\sqrt{3\\mu_a(\\mu_a + \\mu_s')}` (diffusion
theory) interpolated log-linearly between tabulated wavelengths. Fluorescence pays for the
excitation light going in and the emission coming out; bioluminescence (no excitation) only for
the emission. Radiance is in arbitrary units (%ID × transmission): relative between places,
labels and times, not calibrated photons.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING

import numpy as np

from ._errors import ParameterError, SimulationError
from ._parameters import _check_value, _read_toml, params_dir, sourced_entry

if TYPE_CHECKING:  # pragma: no cover
    from ._tracer import TracerResult

VIEWS = ("dorsal", "ventral")
_WAVELENGTH_KEY = re.compile(r"^mu_eff_per_mm_at_(\d+(?:\.\d+)?)nm$")


@dataclass(frozen=True, slots=True)
class ImagingParameters:
    """Tissue attenuation by wavelength and place depths by view, from ``params/imaging/<species>.toml``.

    Attributes
    ----------
    wavelength_nm : ndarray
        Tabulated wavelengths (nm), increasing.
    mu_eff_per_mm : ndarray
        Effective attenuation coefficient at each wavelength (1/mm).
    depth_mm : Mapping[str, Mapping[str, float]]
        ``depth_mm[view][place]``: depth below the skin (mm).
    sources : Mapping[str, str]
    file : str
    """

    wavelength_nm: np.ndarray
    mu_eff_per_mm: np.ndarray
    depth_mm: Mapping[str, Mapping[str, float]]
    sources: Mapping[str, str]
    file: str

    def attenuation_per_mm(self, wavelength_nm: float) -> float:
        """:math:`\\mu_{eff}` at a wavelength (1/mm), log-linear interpolation; error outside the table."""
        lo, hi = float(self.wavelength_nm[0]), float(self.wavelength_nm[-1])
        if not lo <= wavelength_nm <= hi:
            raise ParameterError(
                f"{self.file}: no tissue attenuation for {wavelength_nm:g} nm; the table covers {lo:g}-{hi:g} nm."
            )
        return float(np.exp(np.interp(wavelength_nm, self.wavelength_nm, np.log(self.mu_eff_per_mm))))

    def depth(self, place: str, view: str) -> float:
        """Depth (mm) of ``place`` below the skin seen from ``view``."""
        if view not in VIEWS:
            raise SimulationError(f"unknown view {view!r}; expected one of: {', '.join(VIEWS)}.")
        if place not in self.depth_mm[view]:
            raise ParameterError(f"{self.file}: no depth for {place!r} in [depth_{view}] (key {place}_mm).")
        return self.depth_mm[view][place]


def imaging_available(species: str) -> bool:
    """Whether a bundled imaging file exists for ``species`` (``params/imaging/<species>.toml``)."""
    return (params_dir() / "imaging" / f"{species}.toml").is_file()


def load_imaging(species: str | Path = "mouse") -> ImagingParameters:
    """Load ``params/imaging/<species>.toml`` (or a path): attenuation and depths.

    Parameters
    ----------
    species : str or Path, default "mouse"
        A species with a bundled imaging file, or a path to a TOML file.

    Returns
    -------
    ImagingParameters

    Raises
    ------
    ParameterError
        Missing file or table, malformed key or value, fewer than two wavelengths.
    """
    text = str(species)
    path = Path(text) if text.endswith(".toml") else params_dir() / "imaging" / f"{text}.toml"
    if not path.is_file():
        raise ParameterError(f"imaging parameter file {str(path)!r} does not exist (optical imaging needs one).")
    data = _read_toml(path)
    for key in data:
        if key not in ("metadata", "attenuation", "depth_dorsal", "depth_ventral"):
            raise ParameterError(
                f"{path}: unknown table {key!r}; expected metadata, attenuation, depth_dorsal, depth_ventral."
            )
    sources: dict[str, str] = {}

    def read(table: str) -> dict[str, float]:
        section = data.get(table)
        if not isinstance(section, dict) or not section:
            raise ParameterError(f"{path}: missing table [{table}].")
        out = {}
        for key, entry in section.items():
            value, source = sourced_entry(f"{path}: [{table}]", key, entry)
            try:
                _check_value(key, "positive", value)
            except ParameterError as err:
                raise ParameterError(f"{path}: [{table}]: {err}") from None
            out[key] = float(value)
            sources[f"{table}.{key}"] = source
        return out

    attenuation = read("attenuation")
    pairs = []
    for key, value in attenuation.items():
        match = _WAVELENGTH_KEY.match(key)
        if match is None:
            raise ParameterError(f"{path}: [attenuation] key {key!r} must be named mu_eff_per_mm_at_<wavelength>nm.")
        pairs.append((float(match.group(1)), value))
    if len(pairs) < 2:
        raise ParameterError(f"{path}: [attenuation] needs at least two wavelengths.")
    pairs.sort()
    depth: dict[str, dict[str, float]] = {}
    for view in VIEWS:
        depth[view] = {}
        for key, value in read(f"depth_{view}").items():
            if not key.endswith("_mm"):
                raise ParameterError(f"{path}: [depth_{view}] key {key!r} must be <place>_mm.")
            depth[view][key[:-3]] = value
    return ImagingParameters(
        wavelength_nm=np.array([p[0] for p in pairs]),
        mu_eff_per_mm=np.array([p[1] for p in pairs]),
        depth_mm=MappingProxyType({v: MappingProxyType(d) for v, d in depth.items()}),
        sources=MappingProxyType(sources),
        file=str(path),
    )


def transmission(label, depth_mm: float | np.ndarray, imaging: ImagingParameters | None = None) -> np.ndarray:
    """Fraction of an optical label's light that leaves the skin from ``depth_mm`` (dimensionless).

    :math:`e^{-(\\mu_{eff}(\\lambda_{em}) + \\mu_{eff}(\\lambda_{ex}))\\,d}`; the excitation term only
    for fluorescence (``excitation_wavelength_nm`` > 0). Strictly decreasing in depth.

    Parameters
    ----------
    label : Label
        An optical label (dye or luciferase).
    depth_mm : float or ndarray
        Depth below the skin (mm), non-negative.
    imaging : ImagingParameters, optional
        Default: the bundled mouse file.

    Returns
    -------
    ndarray
        Transmission, same shape as ``depth_mm``.
    """
    if label.modality != "optical":
        raise SimulationError(f"label {label.name!r} is not optical (modality {label.modality!r}); no radiance.")
    imaging = imaging or load_imaging()
    depth = np.asarray(depth_mm, dtype=float)
    if np.any(~np.isfinite(depth)) or np.any(depth < 0):
        raise SimulationError(f"`depth_mm` must be finite and non-negative; got {depth_mm!r}.")
    mu = imaging.attenuation_per_mm(label["emission_wavelength_nm"])
    if label["excitation_wavelength_nm"] > 0:
        mu += imaging.attenuation_per_mm(label["excitation_wavelength_nm"])
    return np.exp(-mu * depth)


def optical_radiance(
    result: TracerResult, organ: str, view: str = "dorsal", imaging: ImagingParameters | None = None
) -> np.ndarray:
    """Radiance (a.u. = label %ID × tissue transmission) from the label in ``organ`` seen from ``view``.

    Parameters
    ----------
    result : TracerResult
        A simulation with an optical label.
    organ : str
        A place of ``result.organs``.
    view : {"dorsal", "ventral"}
    imaging : ImagingParameters, optional
        Default: the bundled file for the model's species.

    Returns
    -------
    ndarray, shape (n_times,)
    """
    imaging = imaging or load_imaging(result.ev.params.species)
    depth = imaging.depth(organ, view)
    return result.label_percent_id(organ) * transmission(result.label, depth, imaging)


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
        raise SimulationError(f"unknown view {view!r}; expected one of: {', '.join(VIEWS)}.")
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
            raise SimulationError(f"the phantom has no region for {place!r}.")
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
        raise SimulationError(
            f"label {result.label.name!r} is not optical (modality {result.label.modality!r}); "
            "whole-body optical images need a dye or luciferase label."
        )
    times = [float(t) for t in times_h]
    if not times or any(not math.isfinite(t) or t < result.t_h[0] or t > result.t_h[-1] for t in times):
        raise SimulationError(
            f"image times must lie within the simulated {result.t_h[0]:g}-{result.t_h[-1]:g} h; got {times_h!r}."
        )
    for view in views:
        if view not in VIEWS:
            raise SimulationError(f"unknown view {view!r}; expected one of: {', '.join(VIEWS)}.")
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
        raise SimulationError("`results` is empty; give at least one TracerResult.")
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
