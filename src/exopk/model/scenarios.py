"""Scenarios: disease and intervention overlays that change named parameters.

A scenario is a TOML file (``params/scenarios/<name>.toml``), not code::

    [metadata]
    scenario = "acute_kidney_injury"
    description = "..."

    [changes]
    kidney_uptake_vascular_per_h = { factor = 2.0, source = "..." }
    brain_permeability_fraction_of_flow = { value = 4e-6, source = "..." }

Each entry of ``[changes]`` names a stored parameter (flat name, unit in the name, see
:func:`exopk.parameter_names`) and gives either a ``factor`` (multiplies the current value) or a
``value`` (replaces it, in the unit of the name), always with a ``source``. Scenarios apply in
order on top of a species and EV preparation (and before ``--set``), so they compose: factors on
the same parameter multiply. The result is validated like any parameter set (flows and volumes
must still balance). A scenario changes the parameters it names and nothing else; the values it
changes keep their allometric-extrapolation flag when scaled by a factor, and lose it when
replaced by a value.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from exopk.errors import ParameterError
from exopk.model.parameters import _SPECS, ModelParameters, _check_top_level, _read_toml, _resolve, is_real_number


@dataclass(frozen=True, slots=True)
class ScenarioChange:
    """One parameter change of a scenario: a ``factor`` or a ``value``, with its source.

    Parameters
    ----------
    name : str
        Flat parameter name, e.g. ``"kidney_uptake_vascular_per_h"``.
    factor : float or None
        Multiplier of the current value (positive), or None when ``value`` is given.
    value : float or None
        New value in the unit of ``name``, or None when ``factor`` is given.
    source : str
        Where the change comes from (citation, "D: ..." derivation, or "assumption: ...").
    """

    name: str
    factor: float | None
    value: float | None
    source: str

    def describe(self) -> str:
        """``"× 2"`` or ``"= 4e-06"``."""
        return f"× {self.factor:g}" if self.factor is not None else f"= {self.value:g}"


@dataclass(frozen=True, slots=True)
class Scenario:
    """A validated condition overlay read from a scenario file.

    Parameters
    ----------
    name : str
        Scenario name (``[metadata] scenario``, or the file stem).
    description : str
        What the scenario represents and what it leaves out.
    changes : Mapping[str, ScenarioChange]
        Parameter changes by flat name, in file order.
    file : str
        Path of the scenario file.
    """

    name: str
    description: str
    changes: Mapping[str, ScenarioChange]
    file: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "changes", MappingProxyType(dict(self.changes)))


def load_scenario(scenario: str | Path) -> Scenario:
    """Read and validate a scenario file.

    Parameters
    ----------
    scenario : str or Path
        A bundled scenario name (see ``exopk.available("scenarios")``) or a path to a TOML file.

    Returns
    -------
    Scenario

    Raises
    ------
    ParameterError
        Unknown name or missing file; invalid TOML; an unknown table; a change naming an unknown
        parameter; an entry without exactly one of ``factor``/``value`` and a non-empty ``source``;
        a factor that is not positive and finite. The message names the file and key.
    """
    path = _resolve("scenarios", scenario)
    data = _read_toml(path)
    _check_top_level(path, data, {"metadata", "changes"})
    metadata = data.get("metadata", {})
    if not isinstance(metadata, dict):
        raise ParameterError(f"{path}: [metadata] must be a table; got {metadata!r}.")
    changes_table = data.get("changes")
    if not isinstance(changes_table, dict) or not changes_table:
        raise ParameterError(f"{path}: missing or empty table [changes] (parameter name = {{ factor|value, source }}).")
    changes: dict[str, ScenarioChange] = {}
    for key, entry in changes_table.items():
        where = f"{path}: [changes] key {key!r}"
        if key not in _SPECS:
            raise ParameterError(
                f"{where}: unknown parameter; scenarios change stored parameters named as in "
                "exopk.parameter_names() (e.g. 'kidney_uptake_vascular_per_h'); derived values "
                "(rest volume and flow, hepatic artery) follow from them."
            )
        if not isinstance(entry, dict) or "source" not in entry or len(set(entry) & {"factor", "value"}) != 1:
            raise ParameterError(
                f'{where} must be {{ factor = <number>, source = "..." }} or {{ value = <number>, source = "..." }}; '
                f"got {entry!r}."
            )
        extra = set(entry) - {"factor", "value", "source"}
        if extra:
            raise ParameterError(
                f"{where}: unknown field(s) {', '.join(sorted(extra))}; expected factor or value, and source."
            )
        source = entry["source"]
        if not isinstance(source, str) or not source.strip():
            raise ParameterError(f"{where} needs a non-empty `source` string; got {source!r}.")
        number = entry.get("factor", entry.get("value"))
        if not is_real_number(number):
            raise ParameterError(f"{where}: must be a number; got {number!r}.")
        if "factor" in entry:
            if not (math.isfinite(number) and number > 0):
                raise ParameterError(f"{where}: `factor` must be positive and finite; got {number!r}.")
            changes[key] = ScenarioChange(key, float(number), None, source)
        else:
            changes[key] = ScenarioChange(key, None, float(number), source)
    name = str(metadata.get("scenario", path.stem))
    return Scenario(name=name, description=str(metadata.get("description", "")), changes=changes, file=str(path))


def apply_scenario(params: ModelParameters, scenario: str | Path | Scenario) -> ModelParameters:
    """Apply a scenario overlay to a parameter set.

    .. math::

        p_{new} = f \\cdot p \\ \\text{(factor)} \\quad\\text{or}\\quad p_{new} = v \\ \\text{(value)}

    Parameters
    ----------
    params : ModelParameters
        The parameters to change (any species; scenarios compose by applying one after another).
    scenario : str, Path or Scenario
        A bundled scenario name (``exopk.available("scenarios")``), a path to a scenario file, or
        a loaded :class:`Scenario`.

    Returns
    -------
    ModelParameters
        A copy with the named values changed, their sources extended with the scenario's, and the
        scenario appended to ``scenarios``.

    Raises
    ------
    ParameterError
        An invalid scenario file, or changed values that break a parameter rule or the flow and
        volume balance (the message names the scenario file).
    """
    if not isinstance(params, ModelParameters):
        raise ParameterError(f"`params` must be ModelParameters; got {type(params).__name__}.")
    loaded = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
    values = dict(params.values)
    sources = dict(params.sources)
    extrapolated = dict(params.extrapolated)
    for name, change in loaded.changes.items():
        if change.factor is not None:
            values[name] = values[name] * change.factor
        else:
            assert change.value is not None  # a change is a factor or a value (checked when it was read)
            values[name] = change.value
            extrapolated.pop(name, None)  # replaced: no longer an extrapolation
        sources[name] = f"{sources.get(name, '')}; scenario {loaded.name} {change.describe()}: {change.source}"
    try:
        return dataclasses.replace(
            params,
            values=values,
            sources=sources,
            extrapolated=extrapolated,
            scenarios=params.scenarios + (loaded.name,),
            files=params.files + (loaded.file,),
        )
    except ParameterError as err:
        raise ParameterError(f"{loaded.file}: scenario {loaded.name!r} gives an invalid parameter set: {err}") from None
