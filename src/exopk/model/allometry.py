"""Between species: allometric extrapolation of EV kinetics, and dose scaling.

**Allometry.** EV kinetic constants are calibrated in one species (``params/ev/msc.toml``: the
mouse). For another species, a constant with no value measured there is extrapolated from the
calibration species by body weight,

.. math::

    k_{species} = k_{ref} \\left(\\frac{BW_{species}}{BW_{ref}}\\right)^{b},

with the exponent chosen by the constant's unit: first-order rates (1/h) ``b = -0.25``,
clearances (mL/h) ``b = 0.75``, capacities (particles) ``b = 1`` and dimensionless constants
(PS/Q, partition coefficients, fractions) ``b = 0`` (carried over unchanged). The exponents and
their sources are read from the EV file's ``[allometry]`` table. Every extrapolated value is
flagged, with its rule, in :attr:`ModelParameters.extrapolated`; a value the EV file gives for the
species itself (``[species.<name>.organs.<organ>]``) is used as given and is not flagged.

**Dose scaling** (:func:`scale_dose`): a dose given to one species, re-expressed for another
per kilogram of body weight and by body surface area (FDA 2005 Km factors, read from each species
file's ``[reference]`` table).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from exopk.errors import ParameterError
from exopk.model.parameters import (
    _EV_EXTRA_SPECS,
    _EV_ORGAN_SPECS,
    _MIN_PER_H,
    ORGANS,
    _read_section,
    _read_toml,
    _resolve,
    _Spec,
    is_real_number,
    sourced_entry,
)

_EXPONENT_KEYS: dict[str, str] = {
    "1/h": "rate_exponent",
    "mL/h": "clearance_exponent",
    "particles": "capacity_exponent",
}
"""Internal unit of an EV constant -> key of its exponent in ``[allometry]``; other units: exponent 0."""

_REFERENCE_SPECS: tuple[_Spec, ...] = (
    _Spec("haematocrit", "haematocrit", "1", "open_fraction", description="haematocrit (not used by the model)"),
    _Spec(
        "glomerular_filtration_ml_min",
        "glomerular_filtration_ml_per_h",
        "mL/h",
        "positive",
        _MIN_PER_H,
        "glomerular filtration rate (not used by the model: intact EVs are not filtered)",
    ),
    _Spec(
        "bile_flow_ml_min", "bile_flow_ml_per_h", "mL/h", "positive", _MIN_PER_H, "bile flow (not used by the model)"
    ),
    _Spec(
        "km_factor_kg_per_m2",
        "km_factor_kg_per_m2",
        "kg/m2",
        "positive",
        description="body weight / body surface area, Km (dose scaling by body surface area)",
    ),
    _Spec(
        "km_reference_body_weight_g",
        "km_reference_body_weight_g",
        "g",
        "positive",
        description="body weight the Km factor is tabulated for",
    ),
)


@dataclass(frozen=True, slots=True)
class _Allometry:
    species: str
    reference_body_weight_g: float
    exponents: dict[str, float]  # key in _EXPONENT_KEYS values -> exponent


def _read_allometry(path: Path, table: object) -> _Allometry:
    where = f"{path}: [allometry]"
    if not isinstance(table, dict):
        raise ParameterError(f"{where} must be a table of keys; got {table!r}.")
    expected = {"species", "reference_body_weight_g", *_EXPONENT_KEYS.values()}
    for key in table:
        if key not in expected:
            raise ParameterError(f"{where}: unknown key {key!r}; expected keys: {', '.join(sorted(expected))}.")
    for key in expected:
        if key not in table:
            raise ParameterError(f"{where}: missing key {key!r}.")
    species = table["species"]
    if not isinstance(species, str) or not species.strip():
        raise ParameterError(f'{where}: `species` must name the calibration species, e.g. "mouse"; got {species!r}.')
    numbers: dict[str, float] = {}
    for key in expected - {"species"}:
        value, _source = sourced_entry(where, key, table[key])
        if not is_real_number(value) or not math.isfinite(value):
            raise ParameterError(f"{where}: `{key}` must be a finite number; got {value!r}.")
        numbers[key] = float(value)
    if numbers["reference_body_weight_g"] <= 0:
        raise ParameterError(
            f"{where}: `reference_body_weight_g` must be positive; got {numbers['reference_body_weight_g']!r}."
        )
    return _Allometry(
        species=species,
        reference_body_weight_g=numbers["reference_body_weight_g"],
        exponents={key: numbers[key] for key in _EXPONENT_KEYS.values()},
    )


def _read_measured(path: Path, table: object, species_name: str) -> tuple[dict[str, float], dict[str, str]]:
    """Values the EV file gives for ``species_name`` (``[species.<name>.organs.<organ>]``); all species validated."""
    values: dict[str, float] = {}
    sources: dict[str, str] = {}
    if table is None:
        return values, sources
    if not isinstance(table, dict):
        raise ParameterError(f"{path}: [species] must hold tables [species.<name>.organs.<organ>]; got {table!r}.")
    for name, entry in table.items():
        where = f"{path}: [species.{name}]"
        if not isinstance(entry, dict) or set(entry) != {"organs"} or not isinstance(entry["organs"], dict):
            raise ParameterError(f"{where} must hold only tables [species.{name}.organs.<organ>]; got {entry!r}.")
        for organ, section in entry["organs"].items():
            if organ not in ORGANS:
                raise ParameterError(
                    f"{path}: unknown organ [species.{name}.organs.{organ}]; expected one of: {', '.join(ORGANS)}."
                )
            specs = _EV_ORGAN_SPECS + _EV_EXTRA_SPECS.get(organ, ())
            section_name = f"species.{name}.organs.{organ}"
            if not isinstance(section, dict):
                raise ParameterError(f"{path}: [{section_name}] must be a table of keys; got {section!r}.")
            known = {spec.key for spec in specs}
            for key in section:
                if key not in known:
                    raise ParameterError(
                        f"{path}: [{section_name}]: unknown key {key!r}; expected keys: {', '.join(sorted(known))}."
                    )
            given = tuple(spec for spec in specs if spec.key in section)  # a partial table: only measured values
            read_values: dict[str, float] = {}
            read_sources: dict[str, str] = {}
            _read_section(path, section_name, section, given, f"{organ}_", read_values, read_sources)
            if name == species_name:
                values.update(read_values)
                sources.update(read_sources)
    return values, sources


def apply_allometry(
    ev_path: Path, edata: dict, species_name: str, values: dict[str, float], sources: dict[str, str]
) -> dict[str, str]:
    """Extrapolate the EV constants in ``values`` to ``species_name``, in place; return the flags.

    Values the EV file gives for the species are used as given; the others are scaled from the
    calibration species by ``(BW / BW_ref) ** exponent``. Without an ``[allometry]`` table the file
    makes no claim about its species and its constants are used as given.

    Returns
    -------
    dict
        Flat parameter name -> the extrapolation rule applied, for every extrapolated value.
    """
    measured_values, measured_sources = _read_measured(ev_path, edata.get("species"), species_name)
    values.update(measured_values)
    sources.update(measured_sources)
    if "allometry" not in edata:
        return {}
    allometry = _read_allometry(ev_path, edata["allometry"])
    if allometry.species == species_name:
        return {}
    body_weight_g = values["body_weight_g"]
    ratio = body_weight_g / allometry.reference_body_weight_g
    flags: dict[str, str] = {}
    for organ in ORGANS:
        for spec in _EV_ORGAN_SPECS + _EV_EXTRA_SPECS.get(organ, ()):
            name = f"{organ}_{spec.name}"
            if name in measured_values:
                continue
            key = _EXPONENT_KEYS.get(spec.unit)
            if key is None:
                rule = f"{allometry.species} value carried over unchanged (dimensionless: allometric exponent 0)"
            else:
                exponent = allometry.exponents[key]
                factor = ratio**exponent
                values[name] = values[name] * factor  # an infinite capacity stays infinite
                rule = (
                    f"allometric: {allometry.species} value × ({body_weight_g:g} g / "
                    f"{allometry.reference_body_weight_g:g} g)^{exponent:g} = × {factor:.4g} ({key})"
                )
            flags[name] = rule
            sources[name] = f"extrapolated to {species_name} ({rule}); {allometry.species} value: {sources[name]}"
    return flags


def read_reference(path: Path, sdata: dict) -> dict[str, tuple[float, str, str]]:
    """The optional ``[reference]`` table of a species file: name -> (value, unit, source)."""
    if "reference" not in sdata:
        return {}
    values: dict[str, float] = {}
    sources: dict[str, str] = {}
    _read_section(path, "reference", sdata["reference"], _REFERENCE_SPECS, "", values, sources)
    units = {spec.name: spec.unit for spec in _REFERENCE_SPECS}
    return {name: (value, units[name], sources[name]) for name, value in values.items()}


def species_reference(species: str | Path) -> dict[str, tuple[float, str, str]]:
    """Reference physiology of a species not used by the model equations.

    Parameters
    ----------
    species : str or Path
        A bundled species name or a path to a species TOML file.

    Returns
    -------
    dict
        ``name -> (value, unit, source)`` for ``haematocrit``, ``glomerular_filtration_ml_per_h``,
        ``bile_flow_ml_per_h``, ``km_factor_kg_per_m2`` and ``km_reference_body_weight_g``, plus
        ``body_weight_g``; empty apart from ``body_weight_g`` if the file has no ``[reference]`` table.
    """
    path = _resolve("species", species)
    sdata = _read_toml(path)
    out = read_reference(path, sdata)
    body = sdata.get("body", {})
    entry = body.get("body_weight_g") if isinstance(body, dict) else None
    if not isinstance(entry, dict) or not is_real_number(entry.get("value")) or not entry["value"] > 0:
        raise ParameterError(f"{path}: [body] needs `body_weight_g = {{ value = <positive number>, source = ... }}`.")
    out["body_weight_g"] = (float(entry["value"]), "g", str(entry.get("source", "")))
    return out


@dataclass(frozen=True, slots=True)
class DoseScaling:
    """A dose in one species re-expressed for another, per kilogram and by body surface area.

    Parameters
    ----------
    dose_particles : float
        The given dose in ``from_species`` (particles per animal).
    from_species, to_species : str
        Species names.
    from_body_weight_g, to_body_weight_g : float
        Body weights used (g).
    per_kg_particles : float
        Dose for ``to_species`` at the same particles per kg of body weight.
    bsa_particles : float
        Dose for ``to_species`` at the same particles per m² of body surface area (FDA 2005 Km
        method), :math:`D_{to} = D_{from}/BW_{from} \\cdot Km_{from}/Km_{to} \\cdot BW_{to}`.
    from_km_kg_per_m2, to_km_kg_per_m2 : float
        Km factors used (kg/m²).
    assumptions : tuple of str
        What each number assumes, with sources; printed by ``exopk scale-dose``.
    """

    dose_particles: float
    from_species: str
    to_species: str
    from_body_weight_g: float
    to_body_weight_g: float
    per_kg_particles: float
    bsa_particles: float
    from_km_kg_per_m2: float
    to_km_kg_per_m2: float
    assumptions: tuple[str, ...]

    @property
    def dose_particles_per_kg(self) -> float:
        """The given dose per kg of ``from_species`` body weight (particles/kg)."""
        return self.dose_particles / (self.from_body_weight_g / 1000.0)

    def summary(self) -> str:
        """The two scaled doses and the assumptions, as printed by ``exopk scale-dose``."""
        lines = [
            f"{self.dose_particles:.4g} particles in a {self.from_body_weight_g:g} g {self.from_species} "
            f"= {self.dose_particles_per_kg:.4g} particles/kg",
            f"{self.to_species} ({self.to_body_weight_g:g} g):",
            f"  per kg of body weight          {self.per_kg_particles:12.4g} particles "
            f"({self.per_kg_particles / (self.to_body_weight_g / 1000.0):.4g} particles/kg)",
            f"  by body surface area (FDA Km)  {self.bsa_particles:12.4g} particles "
            f"({self.bsa_particles / (self.to_body_weight_g / 1000.0):.4g} particles/kg; "
            f"Km {self.from_km_kg_per_m2:g} -> {self.to_km_kg_per_m2:g} kg/m2)",
            "assumptions:",
        ]
        lines += [f"  - {text}" for text in self.assumptions]
        return "\n".join(lines)


def _positive(name: str, value: object) -> float:
    if not is_real_number(value) or not math.isfinite(value) or value <= 0:
        raise ParameterError(f"`{name}` must be a positive, finite number; got {value!r}.")
    return float(value)


def scale_dose(
    dose_particles: float,
    from_species: str | Path = "mouse",
    to_species: str | Path = "human",
    *,
    from_body_weight_g: float | None = None,
    to_body_weight_g: float | None = None,
) -> DoseScaling:
    """Re-express a dose given to one species for another: per kg and by body surface area.

    .. math::

        D_{to}^{kg} = D_{from} \\frac{BW_{to}}{BW_{from}},\\qquad
        D_{to}^{BSA} = D_{from} \\frac{BW_{to}}{BW_{from}} \\frac{Km_{from}}{Km_{to}}

    Parameters
    ----------
    dose_particles : float
        Dose given to one animal of ``from_species`` (particles).
    from_species, to_species : str or Path, default "mouse", "human"
        Bundled species names or species TOML paths; the BSA method needs a ``km_factor_kg_per_m2``
        in each file's ``[reference]`` table.
    from_body_weight_g, to_body_weight_g : float, optional
        Body weights (g); default: each species file's ``body_weight_g``.

    Returns
    -------
    DoseScaling
        Both scaled doses and the assumptions behind them (``.summary()`` prints them).

    Raises
    ------
    ParameterError
        A non-positive dose or weight, an unknown species, or a species file without a Km factor.

    References
    ----------
    FDA (2005) Guidance for Industry: Estimating the Maximum Safe Starting Dose in Initial Clinical
    Trials for Therapeutics in Adult Healthy Volunteers, Table 1 (Km: mouse 3, rat 6, human 37);
    reproduced in Nair AB & Jacob S (2016) J Basic Clin Pharm 7:27. Freireich EJ et al. (1966)
    Cancer Chemother Rep 50:219.
    """
    dose = _positive("dose_particles", dose_particles)
    ends = []
    for label, species, weight in (("from", from_species, from_body_weight_g), ("to", to_species, to_body_weight_g)):
        reference = species_reference(species)
        name = str(species) if not str(species).endswith(".toml") else Path(str(species)).stem
        if "km_factor_kg_per_m2" not in reference:
            raise ParameterError(
                f"species {name!r} has no `km_factor_kg_per_m2` in a [reference] table; "
                "body-surface-area scaling needs one (see params/species/mouse.toml)."
            )
        bw = reference["body_weight_g"][0] if weight is None else _positive(f"{label}_body_weight_g", weight)
        ends.append((name, bw, reference))
    (from_name, from_bw, from_ref), (to_name, to_bw, to_ref) = ends
    from_km = from_ref["km_factor_kg_per_m2"][0]
    to_km = to_ref["km_factor_kg_per_m2"][0]
    per_kg = dose * to_bw / from_bw
    bsa = per_kg * from_km / to_km
    assumptions = (
        f"per kg: the same particles per kg of body weight in both species "
        f"({from_name} {from_bw:g} g, {to_name} {to_bw:g} g); this assumes EV disposition and effect scale "
        "with body mass. exopk's own allometry (clearance ∝ BW^0.75) predicts slower clearance per kg in "
        "larger species, so a per-kg dose gives more exposure per kg in the larger species.",
        f"body surface area: the same particles per m2, m2 = kg / Km, with Km {from_name} {from_km:g} and "
        f"{to_name} {to_km:g} kg/m2 (FDA 2005 guidance, Table 1, as reproduced in Nair & Jacob 2016; "
        "sources in each species file's [reference] table).",
        f"the Km factors are tabulated for {from_ref['km_reference_body_weight_g'][0]:g} g and "
        f"{to_ref['km_reference_body_weight_g'][0]:g} g and are applied unchanged to the weights above.",
        "Km factors come from small-molecule toxicity equivalence (Freireich 1966); no EV dose-scaling data were "
        "found (literature.md §1b lists EV doses per animal only), so neither method is validated for EVs.",
        "doses are particle numbers (literature-2.md §5.9: vesicle number, not protein mass, sets RES saturation); "
        "convert µg of protein with a measured particles-per-µg factor, never a default.",
        "a simulation in the target species (exopk simulate --species ...) shows what exposure each dose gives.",
    )
    return DoseScaling(
        dose_particles=dose,
        from_species=from_name,
        to_species=to_name,
        from_body_weight_g=from_bw,
        to_body_weight_g=to_bw,
        per_kg_particles=per_kg,
        bsa_particles=bsa,
        from_km_kg_per_m2=from_km,
        to_km_kg_per_m2=to_km,
        assumptions=assumptions,
    )
