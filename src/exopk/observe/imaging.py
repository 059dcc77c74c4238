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

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING

import numpy as np

from exopk.errors import InputError, ParameterError
from exopk.model.parameters import _check_value, _read_toml, is_real_number, params_dir, sourced_entry

if TYPE_CHECKING:  # pragma: no cover
    pass

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
            raise InputError(f"unknown view {view!r}; expected one of: {', '.join(VIEWS)}.")
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
    if not path.exists():  # a directory or FIFO is named as such by the reader
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
            if not is_real_number(value):
                raise ParameterError(f"{path}: [{table}]: `{key}` must be a number; got {value!r}.")
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
        raise InputError(f"label {label.name!r} is not optical (modality {label.modality!r}); no radiance.")
    imaging = imaging or load_imaging()
    depth = np.asarray(depth_mm, dtype=float)
    if np.any(~np.isfinite(depth)) or np.any(depth < 0):
        raise InputError(f"`depth_mm` must be finite and non-negative; got {depth_mm!r}.")
    mu = imaging.attenuation_per_mm(label["emission_wavelength_nm"])
    if label["excitation_wavelength_nm"] > 0:
        mu += imaging.attenuation_per_mm(label["excitation_wavelength_nm"])
    return np.exp(-mu * depth)
