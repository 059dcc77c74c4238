"""Moved from _parameters."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from exopk.errors import ParameterError
from exopk.model.parameters import (
    _BODY_SPECS,
    _EV_EXTRA_SPECS,
    _EV_ORGAN_SPECS,
    _ORGAN_PHYSIOLOGY_SPECS,
    ORGANS,
    ROUTE_SPECS,
    SUBPOPULATION_MULTIPLIERS,
    ModelParameters,
    Subpopulation,
    _check_top_level,
    _read_section,
    _read_toml,
    _resolve,
    _Spec,
    check_flow_and_volume_balance,
    check_subpopulations,
    read_route_file,
    route_file,
    sourced_entry,
)


def load_parameters(
    species: str | Path = "mouse",
    ev: str | Path = "msc",
    scenarios: str | Path | tuple[str | Path, ...] | list[str | Path] = (),
) -> ModelParameters:
    """Load and validate a species physiology file and an EV kinetics file, then apply scenarios.

    EV kinetic constants calibrated in another species (the EV file's ``[allometry]`` table) are
    extrapolated allometrically to ``species`` unless the EV file gives a value measured in it
    (``[species.<name>.organs.<organ>]``); each extrapolated value is listed, with its rule, in
    ``ModelParameters.extrapolated``:

    .. math::

        k_{species} = k_{ref} \\left(\\frac{BW_{species}}{BW_{ref}}\\right)^{b},\\quad
        b = -0.25 \\text{ (1/h)},\\ 0.75 \\text{ (mL/h)},\\ 1 \\text{ (particles)},\\ 0 \\text{ (dimensionless)}

    (the exponents, with their sources, are read from the EV file).

    Parameters
    ----------
    species : str or Path, default "mouse"
        A bundled species name (see ``available("species")``: mouse, rat, human) or a path to a TOML file.
    ev : str or Path, default "msc"
        A bundled EV preparation name or a path to a TOML file.
    scenarios : str, Path or sequence of them, default ()
        Condition overlays applied in order (see ``available("scenarios")`` and :func:`apply_scenario`),
        e.g. ``("acute_kidney_injury",)``.

    Returns
    -------
    ModelParameters
        Values in internal units (h, mL, particles), with their sources and extrapolation flags.

    Raises
    ------
    ParameterError
        Unknown name or file; invalid TOML; unknown, missing or malformed key; a value that is
        negative, zero where it must be positive, non-finite or outside [0, 1]; organ flows
        and volumes that do not balance; or a scenario naming an unknown parameter. The message
        names the file and key.

    References
    ----------
    Physiology: Brown RP et al. (1997) Toxicol Ind Health 13:407; Davies B & Morris T (1993)
    Pharm Res 10:1093; ICRP Publication 89 (2002) (as tabulated in public PBPK code; see each
    value's ``source``). Allometric exponents: Hu TM & Hayton WL (2001) AAPS PharmSci 3(4):E29.
    """
    from exopk.model.allometry import apply_allometry, read_reference
    from exopk.model.scenarios import apply_scenario

    species_path = _resolve("species", species)
    ev_path = _resolve("ev", ev)
    values: dict[str, float] = {}
    sources: dict[str, str] = {}

    sdata = _read_toml(species_path)
    _check_top_level(species_path, sdata, {"metadata", "body", "organs", "reference"})
    if "body" not in sdata:
        raise ParameterError(f"{species_path}: missing table [body].")
    _read_section(species_path, "body", sdata["body"], _BODY_SPECS, "", values, sources)
    _read_organs(species_path, sdata, _ORGAN_PHYSIOLOGY_SPECS, values, sources)
    read_reference(species_path, sdata)  # validated here; read again by exopk.model.scale_dose

    edata = _read_toml(ev_path)
    _check_top_level(ev_path, edata, {"metadata", "organs", "allometry", "species", "subpopulations"})
    ev_specs = {organ: _EV_ORGAN_SPECS + _EV_EXTRA_SPECS.get(organ, ()) for organ in ORGANS}
    _read_organs(ev_path, edata, ev_specs, values, sources)

    species_name = str(sdata.get("metadata", {}).get("species", species_path.stem))
    ev_name = str(edata.get("metadata", {}).get("ev", ev_path.stem))
    extrapolated = apply_allometry(ev_path, edata, species_name, values, sources)
    check_flow_and_volume_balance(values, where=str(species_path))
    route_files = _read_routes(species_name, values, sources)
    params = ModelParameters(
        values,
        sources,
        species=species_name,
        ev=ev_name,
        files=(str(species_path), str(ev_path)) + route_files,
        extrapolated=extrapolated,
        subpopulations=_read_subpopulations(ev_path, edata.get("subpopulations", {})),
    )
    overlays: tuple[object, ...]
    try:
        overlays = (scenarios,) if isinstance(scenarios, (str, Path)) else tuple(scenarios)
    except TypeError:
        overlays = (scenarios,)  # refused just below
    if not all(isinstance(s, (str, Path)) for s in overlays):
        raise ParameterError(f"`scenarios` must be a scenario name or path, or a list of them; got {scenarios!r}.")
    for scenario in overlays:
        assert isinstance(scenario, (str, Path))  # checked just above
        params = apply_scenario(params, scenario)
    return params


def _read_organs(path: Path, data: dict, specs_for: Mapping[str, tuple[_Spec, ...]], values, sources) -> None:
    organs = data.get("organs")
    if not isinstance(organs, dict):
        raise ParameterError(f"{path}: missing table [organs.<name>] for organs {', '.join(ORGANS)}.")
    for organ in organs:
        if organ not in ORGANS:
            raise ParameterError(f"{path}: unknown organ [organs.{organ}]; expected one of: {', '.join(ORGANS)}.")
    for organ in ORGANS:
        if organ not in organs:
            raise ParameterError(f"{path}: missing table [organs.{organ}].")
        _read_section(path, f"organs.{organ}", organs[organ], specs_for[organ], f"{organ}_", values, sources)


def _read_subpopulations(path: Path, tables: object) -> tuple[Subpopulation, ...]:
    """The ``[subpopulations.<name>]`` tables of an EV file: ``share`` and ``<constant>_multiplier`` keys."""
    if not isinstance(tables, dict):
        raise ParameterError(f"{path}: `subpopulations` must hold tables [subpopulations.<name>]; got {tables!r}.")
    constant_of = {c.removesuffix("_per_h") + "_multiplier": c for c in SUBPOPULATION_MULTIPLIERS}
    allowed = {"share"} | set(constant_of)
    out = []
    for name, table in tables.items():
        where = f"{path}: [subpopulations.{name}]"
        if not isinstance(table, dict):
            raise ParameterError(f"{where} must be a table of keys; got {table!r}.")
        unknown = sorted(set(table) - allowed)
        if unknown:
            raise ParameterError(f"{where}: unknown key {unknown[0]!r}; expected keys: {', '.join(sorted(allowed))}.")
        if "share" not in table:
            raise ParameterError(f"{where}: missing key 'share' (fraction of the dose in this subpopulation).")
        sources = []
        share, source = sourced_entry(where, "share", table["share"])
        sources.append(("share", source))
        multipliers = []
        for key in sorted(set(table) - {"share"}):
            value, source = sourced_entry(where, key, table[key])
            multipliers.append((constant_of[key], value))
            sources.append((key, source))
        try:
            out.append(Subpopulation(str(name), share, tuple(multipliers), tuple(sources)))  # type: ignore[arg-type]
        except ParameterError as err:
            raise ParameterError(f"{where}: {err}") from None
    check_subpopulations(tuple(out), where=str(path))
    return tuple(out)


def _read_routes(species: str, values: dict, sources: dict) -> tuple[str, ...]:
    """Read every bundled route file's table for ``species``; routes without one stay unavailable."""
    files = []
    for route in ROUTE_SPECS:
        path = route_file(route)
        if not path.is_file():
            raise ParameterError(f"bundled route file {path} is missing; reinstall exopk.")
        if read_route_file(path, route, species, values, sources):
            files.append(str(path))
    return tuple(files)
