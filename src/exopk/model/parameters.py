"""Parameters: loading, validation and named access.

A model is described by two TOML files under ``params/``: the physiology of a species
(``params/species/<name>.toml``) and the kinetics of an EV preparation
(``params/ev/<name>.toml``). Every number in them is written as
``key_unit = { value = ..., source = "..." }``; flows are published in mL/min and are
converted once, here, to the internal unit mL/h.

Loaded values live in a frozen :class:`ModelParameters`, addressed by flat names such as
``"liver_uptake_vascular_per_h"`` or ``"cardiac_output_ml_per_h"`` (never by position).
Values that follow from others (rest-of-body volume and flow, lung flow, hepatic-artery
flow) are derived, not stored, so that a change to one value keeps mass and flow balanced.

EV kinetics calibrated in one species are extrapolated allometrically to another (see
``_scaling.py``; every extrapolated value is flagged in :attr:`ModelParameters.extrapolated`),
and condition overlays (``params/scenarios/<name>.toml``, see ``_scenarios.py``) change named
values of a loaded set.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal, TypeGuard, TypeVar

import numpy as np

from exopk.errors import ParameterError

ORGANS: tuple[str, ...] = ("lung", "liver", "spleen", "kidney", "brain", "rest")
"""Organ compartments of the model, in state order."""

_T = TypeVar("_T")

Rule = Literal["positive", "non_negative", "fraction", "open_fraction", "positive_or_inf"]


@dataclass(frozen=True, slots=True)
class _Spec:
    """How one key of a parameter file is read: its internal name, unit and rule."""

    key: str  # key in the file, unit in its name
    name: str  # internal name (flat, without organ prefix)
    unit: str  # internal unit
    rule: Rule
    factor: float = 1.0  # file unit -> internal unit
    description: str = ""


_MIN_PER_H = 60.0

_BODY_SPECS: tuple[_Spec, ...] = (
    _Spec("body_weight_g", "body_weight_g", "g", "positive", description="body weight"),
    _Spec(
        "cardiac_output_ml_min",
        "cardiac_output_ml_per_h",
        "mL/h",
        "positive",
        _MIN_PER_H,
        "cardiac output (whole-blood flow through the lung)",
    ),
    _Spec(
        "blood_volume_ml",
        "blood_volume_ml",
        "mL",
        "positive",
        description="total blood volume: circulating pools + the residual blood of every organ",
    ),
    _Spec(
        "arterial_blood_fraction",
        "arterial_blood_fraction",
        "1",
        "open_fraction",
        description="share of the circulating blood in the arterial pool",
    ),
    _Spec(
        "gut_blood_flow_ml_min",
        "gut_blood_flow_ml_per_h",
        "mL/h",
        "non_negative",
        _MIN_PER_H,
        "gut flow (part of rest) draining into the liver through the portal vein",
    ),
    _Spec(
        "tissue_density_g_per_ml",
        "tissue_density_g_per_ml",
        "g/mL",
        "positive",
        description="density used to turn volumes into weights",
    ),
)

_ORGAN_PHYSIOLOGY_SPECS: dict[str, tuple[_Spec, ...]] = {}
_volume = _Spec("volume_ml", "volume_ml", "mL", "positive", description="organ volume")
_flow = _Spec(
    "blood_flow_ml_min",
    "blood_flow_ml_per_h",
    "mL/h",
    "positive",
    _MIN_PER_H,
    "blood flow through the organ",
)
_hepatic_artery = _Spec(
    "hepatic_artery_flow_ml_min",
    "hepatic_artery_flow_ml_per_h",
    "mL/h",
    "positive",
    _MIN_PER_H,
    "hepatic-artery blood flow (the liver also receives the portal outflow of spleen and gut)",
)
_vascular = _Spec(
    "vascular_fraction",
    "vascular_fraction",
    "1",
    "open_fraction",
    description="share of the organ volume that is blood (vascular space)",
)
for _organ in ORGANS:
    specs: list[_Spec] = []
    if _organ != "rest":
        specs.append(_volume)
    if _organ == "liver":
        specs.append(_hepatic_artery)
    elif _organ not in ("lung", "rest"):
        specs.append(_flow)
    specs.append(_vascular)
    _ORGAN_PHYSIOLOGY_SPECS[_organ] = tuple(specs)

_EV_ORGAN_SPECS: tuple[_Spec, ...] = (
    _Spec(
        "macrophage_uptake_per_h",
        "macrophage_uptake_per_h",
        "1/h",
        "non_negative",
        description="clodronate-sensitive uptake from the vascular space by resident macrophages, k_mac",
    ),
    _Spec(
        "uptake_vascular_per_h",
        "uptake_vascular_per_h",
        "1/h",
        "non_negative",
        description="non-macrophage uptake from the vascular space (endothelium, B cells; lung: marginated "
        "leukocytes), k_uv",
    ),
    _Spec(
        "uptake_tissue_per_h",
        "uptake_tissue_per_h",
        "1/h",
        "non_negative",
        description="cellular uptake from the tissue space, k_ut",
    ),
    _Spec(
        "permeability_fraction_of_flow",
        "permeability_fraction_of_flow",
        "1",
        "non_negative",
        description="permeability-surface product over organ blood flow, PS/Q",
    ),
    _Spec(
        "partition_coefficient",
        "partition_coefficient",
        "1",
        "positive",
        description="tissue : vascular partition coefficient, K",
    ),
    _Spec(
        "release_per_h",
        "release_per_h",
        "1/h",
        "non_negative",
        description="release of intact EVs from cells, k_rel",
    ),
    _Spec(
        "release_to_vascular_fraction",
        "release_to_vascular_fraction",
        "1",
        "fraction",
        description="share of released EVs returned to the vascular space, f_rel",
    ),
    _Spec(
        "degradation_per_h",
        "degradation_per_h",
        "1/h",
        "non_negative",
        description="intracellular degradation, k_deg",
    ),
    _Spec(
        "capacity_particles",
        "capacity_particles",
        "particles",
        "positive_or_inf",
        description="capacity of the macrophage uptake (inf: linear)",
    ),
)
_EV_EXTRA_SPECS: dict[str, tuple[_Spec, ...]] = {
    "liver": (
        _Spec(
            "biliary_clearance_ml_per_h",
            "biliary_clearance_ml_per_h",
            "mL/h",
            "non_negative",
            description="biliary clearance of liver tissue concentration",
        ),
    ),
    "kidney": (
        _Spec(
            "urinary_clearance_ml_per_h",
            "urinary_clearance_ml_per_h",
            "mL/h",
            "non_negative",
            description="urinary clearance of kidney vascular concentration",
        ),
    ),
}


ROUTE_SPECS: dict[str, tuple[_Spec, ...]] = {
    "intranasal": (
        _Spec(
            "nose_to_brain_per_h",
            "nose_to_brain_per_h",
            "1/h",
            "non_negative",
            description="direct transport from the nasal cavity to brain tissue (olfactory and trigeminal pathways)",
        ),
        _Spec(
            "absorption_per_h",
            "absorption_per_h",
            "1/h",
            "non_negative",
            description="absorption from the nasal cavity into systemic venous blood",
        ),
        _Spec(
            "mucociliary_clearance_per_h",
            "mucociliary_clearance_per_h",
            "1/h",
            "non_negative",
            description="mucociliary clearance to the pharynx (swallowed, eliminated)",
        ),
        _Spec(
            "degradation_per_h",
            "degradation_per_h",
            "1/h",
            "non_negative",
            description="local loss of intact EVs in the nasal cavity",
        ),
    ),
    "intraperitoneal": (
        _Spec(
            "absorption_per_h",
            "absorption_per_h",
            "1/h",
            "non_negative",
            description="absorption from the peritoneal cavity into venous blood (lymphatic route)",
        ),
        _Spec(
            "degradation_per_h",
            "degradation_per_h",
            "1/h",
            "non_negative",
            description="local loss in the peritoneal cavity (peritoneal macrophages)",
        ),
    ),
    "subcutaneous": (
        _Spec(
            "absorption_per_h",
            "absorption_per_h",
            "1/h",
            "non_negative",
            description="absorption from the injection site into venous blood (lymphatic route)",
        ),
        _Spec(
            "degradation_per_h",
            "degradation_per_h",
            "1/h",
            "non_negative",
            description="local loss at the injection site",
        ),
    ),
    "intratracheal": (
        _Spec(
            "absorption_per_h",
            "absorption_per_h",
            "1/h",
            "non_negative",
            description="translocation from the lung airspace across the air-blood barrier into lung blood",
        ),
        _Spec(
            "macrophage_uptake_per_h",
            "macrophage_uptake_per_h",
            "1/h",
            "non_negative",
            description="uptake from the airspace by alveolar macrophages (into lung cells)",
        ),
        _Spec(
            "mucociliary_clearance_per_h",
            "mucociliary_clearance_per_h",
            "1/h",
            "non_negative",
            description="mucociliary clearance up the airways (swallowed, eliminated)",
        ),
    ),
}
"""Parameters of each depot route, read from ``params/routes/<route>.toml`` per species."""

ROUTE_PARAMETERS: dict[str, tuple[str, ...]] = {
    route: tuple(f"{route}_{spec.name}" for spec in specs) for route, specs in ROUTE_SPECS.items()
}
"""Flat parameter names of each depot route, e.g. ``intranasal_nose_to_brain_per_h``."""


def is_real_number(value: object) -> TypeGuard[float]:
    """True for Python and numpy real numbers, False for booleans and everything else."""
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def _check_value(name: str, rule: Rule, value: object) -> float:
    """Raise :class:`ParameterError` if ``value`` breaks ``rule``; return it as a float."""
    if not is_real_number(value):
        raise ParameterError(f"`{name}` must be a number; got {value!r}.")
    if rule == "positive_or_inf":
        if math.isnan(value) or value <= 0:
            raise ParameterError(f"`{name}` must be positive (inf for no limit); got {value!r}.")
        return float(value)
    if not math.isfinite(value):
        raise ParameterError(f"`{name}` must be finite; got {value!r}.")
    if rule == "positive" and value <= 0:
        raise ParameterError(f"`{name}` must be positive; got {value!r}.")
    if rule == "non_negative" and value < 0:
        raise ParameterError(f"`{name}` must be non-negative; got {value!r}.")
    if rule == "fraction" and not 0 <= value <= 1:
        raise ParameterError(f"`{name}` must lie in [0, 1]; got {value!r}.")
    if rule == "open_fraction" and not 0 < value < 1:
        raise ParameterError(f"`{name}` must lie strictly between 0 and 1; got {value!r}.")
    return float(value)


def valid_mask(rule: Rule, values: np.ndarray) -> np.ndarray:
    """Element-wise: which of ``values`` obey ``rule`` (the vectorised twin of :func:`_check_value`)."""
    finite = np.isfinite(values)
    if rule == "positive_or_inf":
        return ~np.isnan(values) & (values > 0)
    if rule == "positive":
        return finite & (values > 0)
    if rule == "non_negative":
        return finite & (values >= 0)
    if rule == "fraction":
        return finite & (values >= 0) & (values <= 1)
    return finite & (values > 0) & (values < 1)  # open_fraction


def _all_specs() -> dict[str, _Spec]:
    """Flat internal name -> spec, for every stored parameter."""
    out: dict[str, _Spec] = {spec.name: spec for spec in _BODY_SPECS}
    for organ in ORGANS:
        for spec in _ORGAN_PHYSIOLOGY_SPECS[organ] + _EV_ORGAN_SPECS + _EV_EXTRA_SPECS.get(organ, ()):
            out[f"{organ}_{spec.name}"] = spec
    for route, specs in ROUTE_SPECS.items():
        for spec in specs:
            out[f"{route}_{spec.name}"] = spec
    return out


_SPECS = _all_specs()
_ROUTE_NAMES = frozenset(name for names in ROUTE_PARAMETERS.values() for name in names)


def parameter_names() -> tuple[str, ...]:
    """Names of every stored parameter, e.g. ``"liver_uptake_vascular_per_h"``."""
    return tuple(_SPECS)


def check_flow_and_volume_balance(values: Mapping[str, np.ndarray | float], where: str = "") -> None:
    """Raise :class:`ParameterError` unless derived volumes and flows are positive.

    Works element-wise on arrays (batches of parameter sets) as well as on scalars.
    """
    derived = derived_values(values)
    suffix = f" ({where})" if where else ""
    checks = (
        (
            "rest_volume_ml",
            "(body weight / density - organ volumes - total blood + organ residual blood) / (1 - f_vas,rest)",
            "lower the organ or blood volumes, or raise `body_weight_g`",
        ),
        (
            "circulating_blood_volume_ml",
            "total blood volume - residual blood of every organ",
            "the organs' residual blood (volume x vascular fraction) exceeds the total blood volume; "
            "lower the vascular fractions or raise `blood_volume_ml`",
        ),
        (
            "rest_blood_flow_ml_per_h",
            "cardiac output - hepatic artery - spleen - kidney - brain flows",
            "organ flows exceed the cardiac output",
        ),
        (
            "rest_nonportal_flow_ml_per_h",
            "rest flow - gut flow",
            "the gut flow must be a part of the rest-of-body flow",
        ),
    )
    for name, formula, remedy in checks:
        value = np.asarray(derived[name])
        if not np.all(value > 0):
            bad = float(np.min(value))
            raise ParameterError(f"derived `{name}` = {formula} must be positive; got {bad!r}{suffix}: {remedy}.")


def derived_values(values: Mapping[str, np.ndarray | float]) -> dict[str, np.ndarray | float]:
    """Volumes and flows that follow from the stored parameters.

    Blood is counted once: ``blood_volume_ml`` is the total blood volume, the residual blood of
    organ *i* is its vascular space :math:`f_i V_i`, and the circulating (arterial + venous)
    pools hold the rest. The rest-of-body volume closes the body-weight balance
    :math:`BW/\\rho = \\sum_{i \\ne rest} V_i + V_{rest} + V_{circ}`:

    .. math::

        V_{circ} = V_{blood} - \\sum_i f_i V_i,\\quad
        V_{rest} = \\frac{BW/\\rho - \\sum_{i \\ne rest} V_i - V_{blood} + \\sum_{i \\ne rest} f_i V_i}{1 - f_{rest}}

    Flow is conserved: the liver receives the hepatic artery (its own source) and the portal
    outflows of spleen and gut,

    .. math::

        Q_{liver} = Q_{HA} + Q_{spleen} + Q_{gut},\\quad
        Q_{rest} = Q_{CO} - Q_{HA} - Q_{spleen} - Q_{kidney} - Q_{brain}

    The lung receives the whole cardiac output. Venous return equals the cardiac output:
    liver outflow ``Q_liver`` + kidney + brain + (``Q_rest`` - ``Q_gut``).
    """
    v = values
    named = [o for o in ORGANS if o != "rest"]
    organ_volume = sum(v[f"{o}_volume_ml"] for o in named)
    organ_blood = sum(v[f"{o}_volume_ml"] * v[f"{o}_vascular_fraction"] for o in named)
    f_rest = v["rest_vascular_fraction"]
    rest_volume = (
        v["body_weight_g"] / v["tissue_density_g_per_ml"] - organ_volume - v["blood_volume_ml"] + organ_blood
    ) / (1.0 - f_rest)
    circulating = v["blood_volume_ml"] - organ_blood - f_rest * rest_volume
    arterial_liver = v["liver_hepatic_artery_flow_ml_per_h"]
    rest_flow = (
        v["cardiac_output_ml_per_h"]
        - arterial_liver
        - v["spleen_blood_flow_ml_per_h"]
        - v["kidney_blood_flow_ml_per_h"]
        - v["brain_blood_flow_ml_per_h"]
    )
    return {
        "rest_volume_ml": rest_volume,
        "circulating_blood_volume_ml": circulating,
        "lung_blood_flow_ml_per_h": v["cardiac_output_ml_per_h"],
        "liver_blood_flow_ml_per_h": arterial_liver + v["spleen_blood_flow_ml_per_h"] + v["gut_blood_flow_ml_per_h"],
        "liver_arterial_flow_ml_per_h": arterial_liver,
        "rest_blood_flow_ml_per_h": rest_flow,
        "rest_nonportal_flow_ml_per_h": rest_flow - v["gut_blood_flow_ml_per_h"],
    }


_DERIVED_DESCRIPTIONS = {
    "rest_volume_ml": "body weight / density - organ volumes - circulating blood",
    "circulating_blood_volume_ml": "total blood - residual blood of every organ (arterial + venous pools)",
    "lung_blood_flow_ml_per_h": "the whole cardiac output",
    "liver_blood_flow_ml_per_h": "total hepatic flow: hepatic artery + portal outflow of spleen and gut",
    "liver_arterial_flow_ml_per_h": "hepatic artery (the stored liver_hepatic_artery_flow_ml_per_h)",
    "rest_blood_flow_ml_per_h": "cardiac output - other arterial inflows (includes the gut)",
    "rest_nonportal_flow_ml_per_h": "rest outflow returning directly to venous blood",
}


SUBPOPULATION_MULTIPLIERS: tuple[str, ...] = (
    "macrophage_uptake_per_h",
    "uptake_vascular_per_h",
    "uptake_tissue_per_h",
)
"""EV constants a subpopulation may multiply (in every organ); in the EV file the key is the name without
``_per_h`` plus ``_multiplier``, e.g. ``macrophage_uptake_multiplier``."""


@dataclass(frozen=True, slots=True)
class Subpopulation:
    """One EV subpopulation of a dose: its share and how its uptake differs from the base constants.

    A dose is a mixture; each subpopulation is simulated with the base constants times its
    multipliers, and the results are summed with the shares as weights (superposition: the
    model stays linear and exact).

    Parameters
    ----------
    name : str
        E.g. ``"ps_exposing"``, ``"stealth"``.
    share : float
        Fraction of the dose (particles), in (0, 1]; the shares of a mixture sum to 1.
    multipliers : tuple of (str, float)
        ``(constant, multiplier)`` pairs, the constant one of :data:`SUBPOPULATION_MULTIPLIERS`
        (applied in every organ); constants not listed keep multiplier 1.
    sources : tuple of (str, str)
        ``(key, source)`` pairs for the share and each multiplier.
    """

    name: str
    share: float
    multipliers: tuple[tuple[str, float], ...] = ()
    sources: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        if not is_real_number(self.share) or not 0.0 < self.share <= 1.0:
            raise ParameterError(f"subpopulation {self.name!r}: `share` must lie in (0, 1]; got {self.share!r}.")
        for key, factor in self.multipliers:
            if key not in SUBPOPULATION_MULTIPLIERS:
                raise ParameterError(
                    f"subpopulation {self.name!r}: unknown multiplied constant {key!r}; expected one of: "
                    + ", ".join(SUBPOPULATION_MULTIPLIERS)
                    + "."
                )
            if not is_real_number(factor) or not math.isfinite(factor) or factor < 0:
                raise ParameterError(
                    f"subpopulation {self.name!r}: the multiplier of `{key}` must be finite and non-negative; "
                    f"got {factor!r}."
                )

    def multiplier(self, constant: str) -> float:
        """The multiplier of one constant (1 if not listed)."""
        return dict(self.multipliers).get(constant, 1.0)

    def apply(self, values: Mapping[str, np.ndarray | float]) -> dict[str, np.ndarray | float]:
        """Values of this subpopulation: the base values with the multipliers applied (works on batches)."""
        out = dict(values)
        for constant, factor in self.multipliers:
            for organ in ORGANS:
                name = f"{organ}_{constant}"
                out[name] = values[name] * factor
        return out


def check_subpopulations(subpopulations: tuple[Subpopulation, ...], where: str = "") -> None:
    """Raise :class:`ParameterError` unless the names are unique and the shares sum to 1."""
    if not subpopulations:
        return
    names = [s.name for s in subpopulations]
    suffix = f" ({where})" if where else ""
    if len(set(names)) != len(names):
        raise ParameterError(f"subpopulation names must be unique; got {names}{suffix}.")
    total = sum(s.share for s in subpopulations)
    if abs(total - 1.0) > 1e-9:
        raise ParameterError(
            f"subpopulation shares must sum to 1 (they split the dose); got {total!r} for {names}{suffix}."
        )


@dataclass(frozen=True, slots=True)
class ModelParameters:
    """A complete, validated parameter set: species physiology and EV kinetics.

    Parameters are addressed by flat names (``params["liver_volume_ml"]``); see
    :func:`parameter_names`. Create variants with :meth:`replace`; the object itself is frozen.

    Parameters
    ----------
    values : Mapping[str, float]
        Every stored parameter in internal units (h, mL, particles).
    sources : Mapping[str, str]
        Where each value comes from: a citation, "calibrated to ...", or "assumption: ...".
    species : str
        Species name, e.g. ``"mouse"``.
    ev : str
        EV preparation name, e.g. ``"msc"``.
    files : tuple of str
        Files the values were read from (empty when built in code).
    extrapolated : Mapping[str, str], optional
        Values not measured or calibrated in ``species`` but extrapolated from another species,
        by name, with the rule used (e.g. ``"allometric: mouse value × (70000 g / 25 g)^-0.25 = × 0.1373"``).
        Empty for the species the EV constants were calibrated in.
    scenarios : tuple of str, optional
        Condition overlays applied, in order (see :func:`apply_scenario`).
    subpopulations : tuple of Subpopulation, optional
        The EV subpopulations a dose is a mixture of (empty: one population with the base values).
        Simulations superpose them (see :meth:`parts`).
    """

    values: Mapping[str, float]
    sources: Mapping[str, str]
    species: str = "custom"
    ev: str = "custom"
    files: tuple[str, ...] = field(default=())
    extrapolated: Mapping[str, str] = field(default_factory=dict)
    scenarios: tuple[str, ...] = field(default=())
    subpopulations: tuple[Subpopulation, ...] = field(default=())
    _parts: tuple | None = field(default=None, init=False, repr=False, compare=False)
    _cache: dict[str, Any] | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        missing = [name for name in _SPECS if name not in self.values and name not in _ROUTE_NAMES]
        for names in ROUTE_PARAMETERS.values():
            present = [name for name in names if name in self.values]
            if present and len(present) < len(names):
                missing += [name for name in names if name not in self.values]
        if missing:
            raise ParameterError(f"missing parameter(s): {', '.join(missing)}.")
        unknown = [name for name in self.values if name not in _SPECS]
        if unknown:
            raise ParameterError(
                f"unknown parameter(s): {', '.join(map(repr, unknown))}; "
                "see exopk.parameter_names() for the valid names."
            )
        for name, value in self.values.items():
            _check_value(name, _SPECS[name].rule, value)
        check_flow_and_volume_balance(self.values)
        unflaggable = [name for name in self.extrapolated if name not in _SPECS]
        if unflaggable:
            raise ParameterError(f"`extrapolated` names unknown parameter(s): {', '.join(map(repr, unflaggable))}.")
        object.__setattr__(self, "values", MappingProxyType({k: float(v) for k, v in self.values.items()}))
        object.__setattr__(self, "sources", MappingProxyType(dict(self.sources)))
        object.__setattr__(self, "extrapolated", MappingProxyType(dict(self.extrapolated)))
        object.__setattr__(self, "scenarios", tuple(self.scenarios))
        object.__setattr__(self, "subpopulations", tuple(self.subpopulations))
        check_subpopulations(self.subpopulations)

    def __repr__(self) -> str:
        return (
            f"ModelParameters(species={self.species!r}, ev={self.ev!r}, {len(self.values)} values, "
            f"routes={self.routes!r}, files={self.files!r})"
        )

    def __getitem__(self, name: str) -> float:
        if name in self.values:
            return self.values[name]
        derived = derived_values(self.values)
        if name in derived:
            return float(derived[name])
        raise ParameterError(f"unknown parameter {name!r}; see exopk.parameter_names() for the valid names.")

    def parts(self) -> tuple[tuple[str, float, ModelParameters], ...]:
        """The mixture as ``(name, share, parameters)``, one entry per subpopulation.

        Each entry's parameters are this set with the subpopulation's multipliers applied and no
        subpopulations of its own; without subpopulations, one entry ``("all", 1.0, self)``.
        """
        if not self.subpopulations:
            return (("all", 1.0, self),)
        if self._parts is not None:  # computed once per (frozen) parameter set
            return self._parts
        out = []
        for sub in self.subpopulations:
            values = sub.apply(self.values)
            sources = dict(self.sources)
            for constant, factor in sub.multipliers:
                for organ in ORGANS:
                    sources[f"{organ}_{constant}"] += f" (x {factor:g} for subpopulation {sub.name!r})"
            # This set's values times positive multipliers (checked by Subpopulation): valid without
            # a second validation, which would cost more than the simulation.
            part = object.__new__(ModelParameters)
            for f in dataclasses.fields(self):
                object.__setattr__(part, f.name, getattr(self, f.name))
            object.__setattr__(part, "values", values)
            object.__setattr__(part, "sources", sources)
            object.__setattr__(part, "subpopulations", ())
            object.__setattr__(part, "_parts", None)
            object.__setattr__(part, "_cache", None)
            out.append((sub.name, sub.share, part))
        parts = tuple(out)
        object.__setattr__(self, "_parts", parts)
        return parts

    def cached(self, key: str, compute: Callable[[], _T]) -> _T:
        """``compute()``, computed on the first call with ``key`` and kept on this (frozen) set.

        For what depends on the values alone (rate matrices, volumes, a mixture's stacked
        system), so that repeated simulations of one set build it once. Variants made by
        :meth:`replace` start with no cache.
        """
        if self._cache is None:
            object.__setattr__(self, "_cache", {})
        cache = self._cache
        assert cache is not None
        if key not in cache:
            cache[key] = compute()
        return cache[key]

    def single(self) -> ModelParameters:
        """This set as one population with the base values (subpopulations dropped)."""
        return dataclasses.replace(self, subpopulations=())

    @property
    def is_linear(self) -> bool:
        """True when no organ has a finite phagocytic capacity."""
        return self.cached("is_linear", lambda: all(math.isinf(self.values[f"{o}_capacity_particles"]) for o in ORGANS))

    @property
    def routes(self) -> tuple[str, ...]:
        """Depot routes with parameters for this species (IV and local injection need none)."""
        return tuple(route for route, names in ROUTE_PARAMETERS.items() if names[0] in self.values)

    def replace(self, source: str | None = None, **changes: float) -> ModelParameters:
        """Return a copy with some values changed (and validated).

        A changed value is no longer flagged as extrapolated (it was set, not extrapolated).

        Parameters
        ----------
        source : str, optional
            Source recorded for the changed values; default "set by user".
        **changes : float
            New values by flat name, e.g. ``liver_uptake_vascular_per_h=50.0``.
        """
        unknown = [name for name in changes if name not in _SPECS]
        if unknown:
            raise ParameterError(
                f"unknown parameter(s): {', '.join(map(repr, unknown))}; "
                "see exopk.parameter_names() for the valid names."
            )
        absent = [name for name in changes if name in _ROUTE_NAMES and name not in self.values]
        if absent:
            raise ParameterError(
                f"{', '.join(map(repr, absent))}: this route has no parameters for species {self.species!r}; "
                "add a [species.<name>] table to its file under params/routes/."
            )
        values = dict(self.values)
        sources = dict(self.sources)
        for name, value in changes.items():
            values[name] = value  # validated (and converted to float) by ModelParameters
            sources[name] = source or "set by user"
        extrapolated = {name: rule for name, rule in self.extrapolated.items() if name not in changes}
        return dataclasses.replace(self, values=values, sources=sources, extrapolated=extrapolated)

    def table(self):
        """All values, stored and derived, as a DataFrame.

        Returns
        -------
        pandas.DataFrame
            Columns ``name, value, unit, source, description, extrapolated`` (the extrapolation
            rule, or an empty string for values given for this species).
        """
        import pandas as pd

        rows = [
            {
                "name": name,
                "value": self.values[name],
                "unit": spec.unit,
                "source": self.sources.get(name, ""),
                "description": spec.description,
                "extrapolated": self.extrapolated.get(name, ""),
            }
            for name, spec in _SPECS.items()
            if name in self.values
        ]
        for name, value in derived_values(self.values).items():
            rows.append(
                {
                    "name": name,
                    "value": float(value),
                    "unit": "mL" if name.endswith("_ml") else "mL/h",
                    "source": "derived (mass and flow balance)",
                    "description": _DERIVED_DESCRIPTIONS[name],
                    "extrapolated": "",
                }
            )
        return pd.DataFrame(rows, columns=["name", "value", "unit", "source", "description", "extrapolated"])


def params_dir() -> Path:
    """Directory holding the bundled parameter files.

    The installed package carries them as ``exopk/params``; a source checkout keeps them in
    ``params/`` at the repository root.
    """
    packaged = Path(str(resources.files("exopk"))) / "params"
    if packaged.is_dir():
        return packaged
    checkout = Path(__file__).resolve().parents[3] / "params"  # src/exopk/model/ -> repository root
    if checkout.is_dir():
        return checkout
    raise ParameterError(f"bundled parameter files not found in {packaged} or {checkout}; reinstall exopk.")


Kind = Literal["species", "ev", "scenarios", "routes"]
# The Python argument that names each kind of file (the command line adds its own flag names).
_ARGUMENTS = {"species": "species", "ev": "ev", "scenarios": "scenarios", "routes": "route"}


def available(kind: Kind) -> tuple[str, ...]:
    """Names of the bundled parameter files of one kind (``"species"``, ``"ev"``, ``"scenarios"`` or ``"routes"``)."""
    return tuple(sorted(p.stem for p in (params_dir() / kind).glob("*.toml")))


def portable(params: ModelParameters) -> tuple:
    """Picklable form of a parameter set (its mappings are read-only proxies)."""
    return (
        dict(params.values),
        dict(params.sources),
        params.species,
        params.ev,
        tuple(params.files),
        tuple(params.subpopulations),
    )


def restore(state: tuple) -> ModelParameters:
    """Inverse of :func:`portable`."""
    values, sources, species, ev, files, subpopulations = state
    return ModelParameters(values, sources, species=species, ev=ev, files=files, subpopulations=subpopulations)


def _resolve(kind: Kind, name_or_path: str | Path) -> Path:
    text = str(name_or_path)
    if text.endswith(".toml") or "/" in text or "\\" in text:
        path = Path(text)
        if not path.exists():  # a directory or FIFO is named as such by the reader
            raise ParameterError(f"{kind} parameter file {text!r} does not exist.")
        return path
    path = params_dir() / kind / f"{text}.toml"
    if not path.is_file():
        choices = ", ".join(available(kind)) or "none"
        argument = _ARGUMENTS[kind]
        what = "scenario" if kind == "scenarios" else kind
        raise ParameterError(
            f"unknown {what} {text!r} (`{argument}`); expected one of: {choices}, or a path to a .toml file."
        )
    return path


def _read_toml(path: Path) -> dict:
    """A parameter file's tables; ParameterError (one line) for anything but UTF-8 TOML."""
    from exopk.model.files import read_toml

    return read_toml(path, "parameter file", error=ParameterError)


def sourced_entry(where: str, key: str, entry: object) -> tuple[object, str]:
    """The raw value and the source of one ``key = { value = ..., source = "..." }`` entry.

    Checks the entry's shape and that the source is a non-empty string; the value is checked by
    the caller (its rule differs by file). Errors start with ``where`` (file and table) and name the key.
    """
    if not isinstance(entry, dict) or set(entry) != {"value", "source"}:
        raise ParameterError(f'{where}: key {key!r} must be {{ value = <number>, source = "..." }}; got {entry!r}.')
    value, source = entry["value"], entry["source"]
    if not isinstance(source, str) or not source.strip():
        raise ParameterError(f"{where}: key {key!r} needs a non-empty `source` string; got {source!r}.")
    return value, source


def _read_section(
    path: Path,
    section_name: str,
    section: object,
    specs: tuple[_Spec, ...],
    prefix: str,
    values: dict[str, float],
    sources: dict[str, str],
) -> None:
    """Read one table of sourced values into ``values``/``sources``; strict on keys."""
    where = f"{path}: [{section_name}]"
    if not isinstance(section, dict):
        raise ParameterError(f"{where} must be a table of keys; got {section!r}.")
    by_key = {spec.key: spec for spec in specs}
    for key in section:
        if key not in by_key:
            expected = ", ".join(by_key)
            raise ParameterError(f"{where}: unknown key {key!r}; expected keys: {expected}.")
    for key, spec in by_key.items():
        if key not in section:
            raise ParameterError(f"{where}: missing key {key!r} ({spec.description}, unit in the key name).")
        value, source = sourced_entry(where, key, section[key])
        try:
            number = _check_value(key, spec.rule, value)
        except ParameterError as err:
            raise ParameterError(f"{where}: {err}") from None
        values[prefix + spec.name] = number * spec.factor
        sources[prefix + spec.name] = source


def _check_top_level(path: Path, data: dict, allowed: set[str]) -> None:
    """Only ``allowed`` names at the top of a file, and each of them a table."""
    for key, value in data.items():
        if key not in allowed:
            raise ParameterError(f"{path}: unknown table or key {key!r}; expected: {', '.join(sorted(allowed))}.")
        if not isinstance(value, dict):
            raise ParameterError(f"{path}: {key!r} must be a table [{key}]; got {value!r}.")


def update_toml_values(path: Path, table: str, values: Mapping[str, float], digits: int = 6) -> None:
    """Rewrite ``value = ...`` of some keys in one table of a sourced TOML file, keeping sources and layout.

    Used by the calibration scripts to write fitted values back into ``params/``.

    Parameters
    ----------
    path : Path
        The parameter file.
    table : str
        Table header without brackets, e.g. ``"organs.liver"`` or ``"species.mouse"``.
    values : Mapping[str, float]
        New values by key as written in the file (unit in the key), e.g. ``{"degradation_per_h": 0.29}``.
    digits : int, default 6
        Significant digits written.
    """
    import re

    text = Path(path).read_text(encoding="utf-8")
    section = re.search(rf"^\[{re.escape(table)}\]$(.*?)(?=^\[|\Z)", text, flags=re.M | re.S)
    if section is None:
        raise ParameterError(f"{path}: no [{table}] table")
    body = section.group(1)
    for key, value in values.items():
        written = f"{value:.{digits}g}"
        body, n = re.subn(
            rf"^({re.escape(key)} = \{{ value = )[^,]+(,)",
            lambda m, written=written: m.group(1) + written + m.group(2),
            body,
            count=1,
            flags=re.M,
        )
        if n != 1:
            raise ParameterError(f"{path}: key {key!r} not found in [{table}]")
    Path(path).write_text(text[: section.start(1)] + body + text[section.end(1) :], encoding="utf-8")


def route_file(route: str) -> Path:
    """Path of the bundled parameter file of a depot route (``params/routes/<route>.toml``)."""
    return params_dir() / "routes" / f"{route}.toml"


def read_route_file(path: Path, route: str, species: str, values: dict, sources: dict) -> bool:
    """Read the ``[species.<species>]`` table of one route file; False if the species has none.

    The file holds ``[metadata]`` and one table per species, each with every key of the route
    (``ROUTE_SPECS[route]``) as ``{ value, source }``.
    """
    data = _read_toml(path)
    _check_top_level(path, data, {"metadata", "species"})
    tables = data.get("species", {})
    if not isinstance(tables, dict):
        raise ParameterError(f"{path}: `species` must hold tables [species.<name>]; got {tables!r}.")
    if species not in tables:
        return False
    _read_section(path, f"species.{species}", tables[species], ROUTE_SPECS[route], f"{route}_", values, sources)
    return True
