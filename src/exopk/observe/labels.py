"""Labels (tracers): what a labelled-EV experiment measures, coupled to the EV model.

Every in-vivo EV study sees a label, not the vesicle. The label is carried by a second linear
system, driven by the EV model through its degradation and excretion fluxes:

- **bound label** :math:`B_j` in every live EV state *j* (label on intact EVs) moves with the
  EVs (the EV rate matrix :math:`K`), comes off them at the dissociation rate :math:`k_d`
  (dye transfer to lipoproteins, chelate or linker instability) and decays physically
  (:math:`\\lambda = \\ln 2 / t_{1/2,phys}`):

  .. math:: \\dot B = (K - (k_d + \\lambda) I) B;

- the EV flux into each sink ``degraded_<place>`` becomes **free label** in ``<place>``
  (the label of a degraded vesicle stays where it was degraded, at first); the flux into the
  excretion sinks (``urine``, ``feces``, ``swallowed``) leaves with the vesicles as
  ``excreted_<sink>`` label; dissociated label becomes free label where the EV was;
- **free label** has one pool per reported organ (blood, each organ, each administration depot)
  and, for iodide, the thyroid. Free label in blood leaves it with half-life
  :math:`t_{1/2,blood}`, in fixed fractions to urine, faeces, thyroid, and to the organs (the rest,
  split in proportion to affinity × organ volume); free label in an organ returns to blood with
  that organ's retention half-life; free label is inactivated (enzyme proteolysis, metabolism) at
  its own rate, and decays physically.

The whole label system is linear, :math:`\\dot y = M y` with sinks :math:`\\dot s = G y`, and is
solved by the same driver as the EV model (:mod:`exopk.solve.driver`: exact, checked, falling back). Label is
conserved: injected label = bound + free + excreted + decayed + inactivated, at all times.

An *ideal* label (:func:`ideal_label`) never comes off, never decays, and its free label is
cleared instantly: its bound label equals the intact EVs exactly.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from exopk.dosing import Events
from exopk.errors import InputError, ParameterError, SimulationError
from exopk.model.graph import (
    LIVE_STATES,
    N_LIVE,
    N_SINK,
    REPORTED_ORGANS,
    SINK_STATES,
    TISSUES,
    organ_membership,
    volumes,
)
from exopk.model.parameters import ORGANS, _check_value, _read_toml, params_dir, sourced_entry
from exopk.observe.imaging import ImagingParameters, load_imaging, transmission
from exopk.solve.driver import solve_with_fallback

THYROID = "thyroid"
"""Extra free-label pool for iodide (not an EV compartment)."""

FAMILIES = ("lipophilic_dye", "luciferase", "radiolabel", "particle", "ideal")
MODALITIES = ("optical", "nuclear", "particle")

# key -> (rule, description); every key of the [label] table is required.
_LABEL_KEYS: dict[str, tuple[str, str]] = {
    "physical_half_life_h": ("positive_or_inf", "physical (radioactive) half-life; inf for a stable label"),
    "dissociation_per_h": ("non_negative", "rate at which label leaves intact EVs (becomes free label)"),
    "free_at_injection_fraction": ("fraction", "share of the injected label that is free (unbound) at injection"),
    "free_blood_half_life_h": ("positive_or_inf", "half-life of free label in blood (all exits together)"),
    "free_to_urine_fraction": ("fraction", "share of free label leaving blood that goes to urine"),
    "free_to_feces_fraction": ("fraction", "share of free label leaving blood that goes to faeces (bile)"),
    "free_to_thyroid_fraction": ("fraction", "share of free label leaving blood that the thyroid traps"),
    "free_retention_half_life_h": (
        "positive_or_inf",
        "default half-life of free label in an organ before it returns to blood",
    ),  # noqa: E501
    "free_inactivation_half_life_h": ("positive_or_inf", "half-life of free label's signal (enzyme loss); inf if none"),
    "thyroid_retention_half_life_h": ("positive_or_inf", "half-life of label trapped in the thyroid"),
}
_OPTICAL_KEYS: dict[str, tuple[str, str]] = {
    "excitation_wavelength_nm": ("non_negative", "excitation wavelength; 0 for bioluminescence (no excitation light)"),
    "emission_wavelength_nm": ("positive", "emission wavelength"),
}
# Optional per-organ overrides, [organs.<organ>]
_ORGAN_KEYS: dict[str, tuple[str, str]] = {
    "free_retention_half_life_h": ("positive_or_inf", "half-life of free label in this organ"),
    "free_affinity": ("non_negative", "relative affinity of free label in blood for this organ (default 1)"),
}
_DEFAULT_AFFINITY = 1.0


@dataclass(frozen=True, slots=True)
class Label:
    """A label's parameters, as read from ``params/tracers/<name>.toml``.

    Attributes
    ----------
    name : str
        Label name, e.g. ``"DiR"``.
    family : str
        ``"lipophilic_dye"``, ``"luciferase"``, ``"radiolabel"``, ``"particle"`` or ``"ideal"``.
    modality : str
        ``"optical"`` (fluorescence or bioluminescence imaging), ``"nuclear"`` (counting, SPECT/PET)
        or ``"particle"`` (MRI/CT contrast; counted ex vivo).
    values : Mapping[str, float]
        Flat values in internal units (h, 1/h, fractions, nm): the keys of the ``[label]`` and
        ``[optical]`` tables, and per organ ``<organ>_free_retention_half_life_h`` and
        ``<organ>_free_affinity`` (defaults filled in).
    sources : Mapping[str, str]
        Source of each value.
    ideal : bool
        Free label is cleared instantly (only for :func:`ideal_label`).
    file : str
        The file read, or ``"<built-in>"``.
    """

    name: str
    family: str
    modality: str
    values: Mapping[str, float]
    sources: Mapping[str, str]
    description: str = ""
    ideal: bool = False
    file: str = "<built-in>"

    def __post_init__(self) -> None:
        object.__setattr__(self, "values", MappingProxyType(dict(self.values)))
        object.__setattr__(self, "sources", MappingProxyType(dict(self.sources)))
        where = f"label {self.name!r} ({self.file})"
        for key, (rule, _) in _all_keys(self.modality).items():
            if key not in self.values:
                raise ParameterError(f"{where}: missing value {key!r}.")
            try:
                _check_value(key, rule, self.values[key])  # type: ignore[arg-type]
            except ParameterError as err:
                raise ParameterError(f"{where}: {err}") from None
        unknown = set(self.values) - set(_all_keys(self.modality))
        if unknown:
            raise ParameterError(f"{where}: unknown value(s) {', '.join(sorted(unknown))}.")
        shares = sum(self.values[f"free_to_{x}_fraction"] for x in ("urine", "feces", "thyroid"))
        if shares > 1.0 + 1e-12:
            raise ParameterError(
                f"{where}: free_to_urine_fraction + free_to_feces_fraction + free_to_thyroid_fraction = "
                f"{shares:g}; they are shares of the free label leaving blood and must sum to at most 1."
            )
        if shares < 1.0 - 1e-12 and sum(self.values[f"{o}_free_affinity"] for o in ORGANS) == 0:
            raise ParameterError(
                f"{where}: every organ's free_affinity is 0 but {1 - shares:g} of the free label leaving blood "
                "goes to the organs; give an organ a positive affinity or raise the excretion fractions."
            )

    def __getitem__(self, name: str) -> float:
        try:
            return self.values[name]
        except KeyError:
            raise ParameterError(f"unknown label value {name!r}; expected one of: {', '.join(self.values)}.") from None

    @property
    def decay_per_h(self) -> float:
        """Physical decay constant :math:`\\lambda = \\ln 2 / t_{1/2}` (1/h); 0 for a stable label."""
        return _rate(self.values["physical_half_life_h"])

    def replace(self, source: str | None = None, **changes: float) -> Label:
        """A copy with some values changed (flat names, e.g. ``dissociation_per_h=0.1``)."""
        for name in changes:
            if name not in self.values:
                raise ParameterError(f"unknown label value {name!r}; expected one of: {', '.join(self.values)}.")
        values = dict(self.values)
        values.update({k: float(v) for k, v in changes.items()})
        sources = dict(self.sources)
        sources.update({k: source or "changed with Label.replace" for k in changes})
        return Label(self.name, self.family, self.modality, values, sources, self.description, self.ideal, self.file)


def _all_keys(modality: str) -> dict[str, tuple[str, str]]:
    keys = dict(_LABEL_KEYS)
    if modality == "optical":
        keys.update(_OPTICAL_KEYS)
    for organ in ORGANS:
        for key, spec in _ORGAN_KEYS.items():
            keys[f"{organ}_{key}"] = spec
    return keys


def _rate(half_life_h: float) -> float:
    return 0.0 if math.isinf(half_life_h) else math.log(2.0) / half_life_h


def ideal_label() -> Label:
    """A label that is the vesicle: never comes off, never decays, free label cleared instantly.

    Its bound label equals the intact EV amounts exactly (a check of the coupling).
    """
    values: dict[str, float] = {
        "physical_half_life_h": math.inf,
        "dissociation_per_h": 0.0,
        "free_at_injection_fraction": 0.0,
        "free_blood_half_life_h": math.inf,
        "free_to_urine_fraction": 0.0,
        "free_to_feces_fraction": 0.0,
        "free_to_thyroid_fraction": 0.0,
        "free_retention_half_life_h": math.inf,
        "free_inactivation_half_life_h": math.inf,
        "thyroid_retention_half_life_h": math.inf,
    }
    for organ in ORGANS:
        values[f"{organ}_free_retention_half_life_h"] = math.inf
        values[f"{organ}_free_affinity"] = _DEFAULT_AFFINITY
    sources = dict.fromkeys(values, "ideal label (definition)")
    return Label("ideal", "ideal", "nuclear", values, sources, "label identical to the intact vesicle", ideal=True)


# ---------------------------------------------------------------------------------------------
# Files


def available_labels() -> tuple[str, ...]:
    """Names of the bundled label files (``params/tracers/*.toml``)."""
    return tuple(sorted(p.stem for p in (params_dir() / "tracers").glob("*.toml")))


def _resolve_label(name_or_path: str | Path) -> Path:
    text = str(name_or_path)
    if text.endswith(".toml") or "/" in text or "\\" in text:
        path = Path(text)
        if not path.exists():  # a directory or FIFO is named as such by the reader
            raise ParameterError(f"label file {text!r} does not exist.")
        return path
    by_lower = {n.lower(): n for n in available_labels()}
    if text.lower() not in by_lower:
        raise ParameterError(
            f"unknown label {text!r} (`label`); expected one of: {', '.join(available_labels())}, "
            "or a path to a .toml file."
        )
    return params_dir() / "tracers" / f"{by_lower[text.lower()]}.toml"


def _read_sourced(path: Path, table: str, section: object, keys: Mapping[str, tuple[str, str]], required: bool):
    where = f"{path}: [{table}]"
    if not isinstance(section, dict):
        raise ParameterError(f"{where} must be a table of keys; got {section!r}.")
    out: dict[str, tuple[float, str]] = {}
    for key in section:
        if key not in keys:
            raise ParameterError(f"{where}: unknown key {key!r}; expected keys: {', '.join(keys)}.")
    for key, (rule, description) in keys.items():
        if key not in section:
            if required:
                raise ParameterError(f"{where}: missing key {key!r} ({description}; unit in the key name).")
            continue
        value, source = sourced_entry(where, key, section[key])
        try:
            number = _check_value(key, rule, value)  # type: ignore[arg-type]
        except ParameterError as err:
            raise ParameterError(f"{where}: {err}") from None
        out[key] = (number, source)
    return out


def load_label(name: str | Path) -> Label:
    """Load and validate a label file.

    Parameters
    ----------
    name : str or Path
        A bundled label (see :func:`available_labels`; case-insensitive, e.g. ``"DiR"``,
        ``"I-125"``, ``"Tc-99m-HMPAO"``) or a path to a TOML file.

    Returns
    -------
    Label

    Raises
    ------
    ParameterError
        Unknown name or file; invalid TOML; unknown, missing or malformed key; a value out of
        range; excretion shares summing above 1. The message names the file and key.
    """
    path = _resolve_label(name)
    data = _read_toml(path)
    allowed = {"metadata", "label", "optical", "organs"}
    for key in data:
        if key not in allowed:
            raise ParameterError(f"{path}: unknown table or key {key!r}; expected: {', '.join(sorted(allowed))}.")
    meta = data.get("metadata")
    if not isinstance(meta, dict):
        raise ParameterError(f"{path}: missing table [metadata] (label, family, modality, description).")
    for key in meta:
        if key not in ("label", "family", "modality", "description"):
            raise ParameterError(
                f"{path}: [metadata]: unknown key {key!r}; expected label, family, modality, description."
            )
    family, modality = meta.get("family"), meta.get("modality")
    if family not in FAMILIES[:-1]:
        raise ParameterError(f"{path}: [metadata] family must be one of {', '.join(FAMILIES[:-1])}; got {family!r}.")
    if modality not in MODALITIES:
        raise ParameterError(f"{path}: [metadata] modality must be one of {', '.join(MODALITIES)}; got {modality!r}.")
    if "label" not in data:
        raise ParameterError(f"{path}: missing table [label].")
    read = _read_sourced(path, "label", data["label"], _LABEL_KEYS, required=True)
    if modality == "optical":
        if "optical" not in data:
            raise ParameterError(
                f"{path}: modality 'optical' needs a table [optical] (excitation/emission wavelengths)."
            )
        read.update(_read_sourced(path, "optical", data["optical"], _OPTICAL_KEYS, required=True))
    elif "optical" in data:
        raise ParameterError(f"{path}: table [optical] is only for modality 'optical'; got modality {modality!r}.")
    organs = data.get("organs", {})
    if not isinstance(organs, dict):
        raise ParameterError(f"{path}: [organs] must hold tables [organs.<organ>]; got {organs!r}.")
    for organ in organs:
        if organ not in ORGANS:
            raise ParameterError(f"{path}: unknown organ [organs.{organ}]; expected one of: {', '.join(ORGANS)}.")
    values = {k: v for k, (v, _) in read.items()}
    sources = {k: s for k, (_, s) in read.items()}
    for organ in ORGANS:
        given = _read_sourced(path, f"organs.{organ}", organs.get(organ, {}), _ORGAN_KEYS, required=False)
        for key in _ORGAN_KEYS:
            flat = f"{organ}_{key}"
            if key in given:
                values[flat], sources[flat] = given[key]
            elif key == "free_affinity":
                values[flat], sources[flat] = _DEFAULT_AFFINITY, "default: no organ preference (affinity 1)"
            else:
                values[flat], sources[flat] = values[key], sources[key]
    label_name = str(meta.get("label", path.stem))
    return Label(label_name, family, modality, values, sources, str(meta.get("description", "")), False, str(path))


# ---------------------------------------------------------------------------------------------
# The coupled linear system


def places() -> tuple[str, ...]:
    """Free-label pools besides the thyroid: the reported organs except ``eliminated``."""
    return tuple(o for o in REPORTED_ORGANS if o != "eliminated")


def _place_of_live_states() -> np.ndarray:
    """Index into :func:`places` of the organ each live EV state belongs to, shape (n_live,)."""
    member = organ_membership()[:-1, :N_LIVE]  # reported organs except eliminated
    if not np.all(member.sum(axis=0) == 1):
        raise SimulationError("internal: every live state must belong to exactly one reported organ.")
    return np.argmax(member, axis=0)


def _sink_target(sink: str, place_names: tuple[str, ...], place_of_state: np.ndarray) -> tuple[str, str]:
    """Where the label of EVs entering an EV sink goes: ("free", place) or ("sink", label sink)."""
    if sink.startswith("degraded_"):
        where = sink[len("degraded_") :]
        if where in place_names:
            return "free", where
        if where in LIVE_STATES:
            return "free", place_names[place_of_state[LIVE_STATES.index(where)]]
        raise SimulationError(
            f"EV sink {sink!r}: place {where!r} is neither a reported organ "
            f"({', '.join(place_names)}) nor a live state."
        )
    return "sink", f"excreted_{sink}"


@dataclass(frozen=True, slots=True)
class LabelSystem:
    """The label's linear system for one parameter set.

    ``M`` (n, n) acts on the label states ``states`` (bound label in each live EV state, then
    the free pools), ``G`` (n_sinks, n) feeds the cumulative label sinks ``sinks``.
    """

    M: np.ndarray
    G: np.ndarray
    states: tuple[str, ...]
    sinks: tuple[str, ...]
    free_places: tuple[str, ...]
    place_of_state: np.ndarray  # (n_live,) index into places()
    organs: tuple[str, ...]  # places that can hold label (places(), and the thyroid if reached)


def label_system(values: Mapping[str, float], label: Label, K: np.ndarray, E: np.ndarray) -> LabelSystem:
    """Assemble the label system from the EV rate matrices (one parameter set).

    Parameters
    ----------
    values : Mapping[str, float]
        Model parameter values (for organ volumes).
    label : Label
    K : ndarray, shape (n_live, n_live)
        EV rate matrix (1/h).
    E : ndarray, shape (n_sink, n_live)
        EV sink rates (1/h).

    Returns
    -------
    LabelSystem
    """
    pl = places()
    # The thyroid pool only when the label reaches it: an unreachable pool without exits would
    # add a zero eigenvalue, which costs the exact solver its fast path.
    organs = pl + ((THYROID,) if label["free_to_thyroid_fraction"] > 0 and not label.ideal else ())
    # The ideal label has no free pools: freed label is cleared at once, and the bound block is
    # exactly the EV matrix, so the exact solver reproduces the EV solution bit for bit.
    free_places = () if label.ideal else organs
    place_of_state = _place_of_live_states()
    n_free = len(free_places)
    n = N_LIVE + n_free
    free_index = {p: N_LIVE + k for k, p in enumerate(free_places)}
    blood = free_index.get("blood", -1)

    sinks: list[str] = []
    for s in SINK_STATES:
        kind, target = _sink_target(s, pl, place_of_state)
        if kind == "sink" and target not in sinks:
            sinks.append(target)
    for s in ("excreted_urine", "excreted_feces"):
        if s not in sinks:
            sinks.append(s)
    sinks += ["decayed", "inactivated"]
    if label.ideal:
        sinks.append("cleared_instantly")
    sink_index = {s: k for k, s in enumerate(sinks)}

    M = np.zeros((n, n))
    G = np.zeros((len(sinks), n))

    def move(src: int, dst: str | int, rate: float) -> None:
        """First-order flow of label from state ``src`` to a state (int) or a sink (str)."""
        if rate == 0.0:
            return
        M[src, src] -= rate
        if isinstance(dst, str):
            G[sink_index[dst], src] += rate
        else:
            M[dst, src] += rate

    def to_free(place: str) -> str | int:
        return "cleared_instantly" if label.ideal else free_index[place]

    lam = label.decay_per_h
    k_d = label["dissociation_per_h"]
    # Bound label moves with the EVs (the EV matrix, with its losses to the EV sinks).
    M[:N_LIVE, :N_LIVE] = K
    for s_k, s in enumerate(SINK_STATES):
        # The loss to the EV sinks is already on K's diagonal (column sums); add where the label goes.
        kind, target = _sink_target(s, pl, place_of_state)
        for j in np.flatnonzero(E[s_k]):
            rate = float(E[s_k, j])
            if kind == "sink":
                G[sink_index[target], j] += rate
            elif label.ideal:
                G[sink_index["cleared_instantly"], j] += rate
            else:
                M[free_index[target], j] += rate
    for state in range(N_LIVE):
        move(state, to_free(pl[place_of_state[state]]), k_d)
        move(state, "decayed", lam)

    states = tuple(f"bound_{s}" for s in LIVE_STATES) + tuple(f"free_{p}" for p in free_places)
    if label.ideal:
        return LabelSystem(M, G, states, tuple(sinks), free_places, place_of_state, organs)

    # Free label.
    k_blood = _rate(label["free_blood_half_life_h"])
    f_u, f_f, f_t = (label[f"free_to_{x}_fraction"] for x in ("urine", "feces", "thyroid"))
    organ_ml = volumes(values).organ_ml.reshape(-1)
    weight = {o: label[f"{o}_free_affinity"] * float(organ_ml[TISSUES.index(o)]) for o in ORGANS}
    total_weight = sum(weight.values())
    move(blood, "excreted_urine", k_blood * f_u)
    move(blood, "excreted_feces", k_blood * f_f)
    if THYROID in free_index:
        move(blood, free_index[THYROID], k_blood * f_t)
    to_tissue = k_blood * max(0.0, 1.0 - f_u - f_f - f_t)
    for organ in ORGANS:
        if total_weight > 0:
            move(blood, free_index[organ], to_tissue * weight[organ] / total_weight)
    default_return = _rate(label["free_retention_half_life_h"])
    for p in pl:
        if p == "blood":
            continue
        k_ret = _rate(label[f"{p}_free_retention_half_life_h"]) if p in ORGANS else default_return
        move(free_index[p], blood, k_ret)
    if THYROID in free_index:
        move(free_index[THYROID], blood, _rate(label["thyroid_retention_half_life_h"]))
    k_inact = _rate(label["free_inactivation_half_life_h"])
    for p in free_places:
        move(free_index[p], "inactivated", k_inact)
        move(free_index[p], "decayed", lam)
    return LabelSystem(M, G, states, tuple(sinks), free_places, place_of_state, organs)


def label_events(events: Events, system: LabelSystem, free_at_injection_fraction: float) -> Events:
    """The EV dosing events as label inputs: bound label into the EV states, free label into their places."""
    n = system.M.shape[0]

    def split(vectors: np.ndarray) -> np.ndarray:
        out = np.zeros((vectors.shape[0], n))
        out[:, :N_LIVE] = (1.0 - free_at_injection_fraction) * vectors
        if system.free_places:
            free = np.zeros((vectors.shape[0], len(system.free_places)))
            np.add.at(free.T, system.place_of_state, (free_at_injection_fraction * vectors).T)
            out[:, N_LIVE:] = free
        elif free_at_injection_fraction > 0:
            raise ParameterError("the ideal label has no free label; free_at_injection_fraction must be 0.")
        return out

    # dataclasses.replace keeps any other field of Events as it is
    steady = tuple(
        dataclasses.replace(s, amounts=split(s.amounts[None])[0], rates=split(s.rates[None])[0]) for s in events.steady
    )
    return dataclasses.replace(
        events, bolus_amounts=split(events.bolus_amounts), infusion_rates=split(events.infusion_rates), steady=steady
    )


def _solve_label(system: LabelSystem, events: Events, t_h: np.ndarray, administered: np.ndarray, method: str):
    """The label system through the same solve / self-check / fall-back driver as the EVs.

    Returns amounts on all label states and sinks, the method that answered, and metadata
    (keys prefixed ``label_``).
    """
    dose = float(max(np.max(administered, initial=0.0), 1e-300))
    solution = solve_with_fallback(
        system.M, system.G, events, t_h, administered, dose_particles=dose, method=method, prefix="label_", what="label"
    )
    return solution.amounts, solution.method, solution.metadata


def simulate_label(params, regimen, t_h, label: Label | str | Path, *, method: str | None = None) -> TracerResult:
    """Simulate a dose of labelled EVs: the intact EVs and what the label shows.

    Parameters
    ----------
    params : ModelParameters
        The EV model (linear: every ``capacity_particles`` infinite).
    regimen : Regimen, dose or list of doses
    t_h : array_like, shape (n_times,)
        Output times (h).
    label : Label, str or Path
        A :class:`Label`, a bundled label name (``"DiR"``, ``"I-125"``...) or a TOML path.
    method : {"exact", "expm"}, optional
        Solver for both the EVs and the label (default ``"exact"`` with its fallbacks).

    Returns
    -------
    TracerResult
        Label amounts are in particle-equivalents: each injected particle carries one unit of
        label, so label %ID is relative to the label injected.

    Raises
    ------
    InputError
        Non-linear model (finite capacity), or a method other than exact/expm.
    ParameterError
        Unknown or invalid label.
    SimulationError
        The solver failed.
    """
    from exopk.model.graph import linear_system, parameter_mixture
    from exopk.simulation import regimen_events, simulate

    if not isinstance(label, Label):
        label = load_label(label)
    if method not in (None, "exact", "expm"):
        raise InputError(f"`method` must be 'exact' or 'expm' for labelled simulations; got {method!r}.")
    if not getattr(params, "is_linear", True):
        raise InputError(
            "labelled simulations need the linear EV model (the label system is linear only then); "
            "set every `capacity_particles` to inf."
        )
    ev = simulate(params, regimen, t_h, method=method)

    # the doses the EV simulation kept (it has refused or dropped later ones)
    kept, _ = regimen_events(ev.regimen, ev.t_h, "drop")
    # A mixture of EV subpopulations: each carries its share of the label with its own kinetics.
    # As for the EVs (exopk.simulate), the parts are stacked into one block-diagonal label system,
    # built on the very blocks of the EVs' mixture matrix, and solved once.
    # (the very systems the EV simulation used: kept on the frozen parameter set)
    parts = params.parts()
    shares = np.array([w for _, w, _ in parts])
    if params.subpopulations:
        mixture = parameter_mixture(params)
        blocks = [
            (
                mixture.K[k * N_LIVE : (k + 1) * N_LIVE, k * N_LIVE : (k + 1) * N_LIVE],
                mixture.E[k * N_SINK : (k + 1) * N_SINK, k * N_LIVE : (k + 1) * N_LIVE],
            )
            for k in range(len(parts))
        ]
    else:
        blocks = [linear_system(params)]
    systems = [label_system(part.values, label, K, E) for (_, _, part), (K, E) in zip(parts, blocks, strict=True)]
    system = systems[0]
    n, n_sinks, n_pop = system.M.shape[0], len(system.sinks), len(systems)
    M = np.zeros((n_pop * n, n_pop * n))
    G = np.zeros((n_pop * n_sinks, n_pop * n))
    for k, s in enumerate(systems):
        M[k * n : (k + 1) * n, k * n : (k + 1) * n] = s.M
        G[k * n_sinks : (k + 1) * n_sinks, k * n : (k + 1) * n] = s.G
    events = label_events(kept, system, label["free_at_injection_fraction"])
    if params.subpopulations:
        events = events.mixed(shares)
    stacked, used, metadata = _solve_label(
        LabelSystem(M, G, system.states, system.sinks, system.free_places, system.place_of_state, system.organs),
        events,
        ev.t_h,
        ev.administered_particles,
        method or "exact",
    )
    n_t = stacked.shape[0]
    bound_free = stacked[:, : n_pop * n].reshape(n_t, n_pop, n).sum(axis=1)
    sinks = stacked[:, n_pop * n :].reshape(n_t, n_pop, n_sinks).sum(axis=1)
    amounts = np.concatenate([bound_free, sinks], axis=1)
    return TracerResult(
        ev=ev,
        label=label,
        amounts=amounts,
        states=system.states,
        sinks=system.sinks,
        free_places=system.free_places,
        organ_names=system.organs,
        place_of_state=system.place_of_state,
        method=used,
        metadata=metadata,
    )


@dataclass(frozen=True, slots=True)
class TracerResult:
    """Intact EVs and their label over time: what is there, and what an experiment would show.

    Label amounts are in particle-equivalents (one unit of label per injected particle), so
    label %ID is relative to the label injected. Bound label is on intact EVs; free label has
    left them (degraded vesicles, dissociation); excreted, decayed and inactivated label is
    gone. ``ev`` holds the intact-EV simulation itself.

    Attributes
    ----------
    ev : SimulationResult
        The intact EVs (true %ID).
    label : Label
    amounts : ndarray, shape (n_times, n_label_states + n_label_sinks)
        Label in each state of :attr:`states`, then each sink of :attr:`sinks`.
    states, sinks : tuple of str
        ``bound_<EV state>``, ``free_<place>``; ``excreted_<EV sink>``, ``decayed``, ``inactivated``.
    method : str
        Solver used for the label (``"exact"`` or ``"expm"``).
    """

    ev: Any
    label: Label
    amounts: np.ndarray
    states: tuple[str, ...]
    sinks: tuple[str, ...]
    free_places: tuple[str, ...]
    place_of_state: np.ndarray
    organ_names: tuple[str, ...]
    method: str
    metadata: Mapping[str, Any] = field(default_factory=dict)

    @property
    def t_h(self) -> np.ndarray:
        """Output times (h)."""
        return self.ev.t_h

    @property
    def dose(self) -> float:
        """Label injected in total (particle-equivalents), the reference for label %ID."""
        return self.ev.dose_particles

    @property
    def organs(self) -> tuple[str, ...]:
        """Places that can hold label: blood, the organs, depots, and the thyroid if the label reaches it."""
        return self.organ_names

    def _check(self, organ: str) -> None:
        if organ not in self.organ_names:
            raise InputError(f"unknown organ {organ!r}; expected one of: {', '.join(self.organ_names)}.")

    def bound_amount(self, organ: str) -> np.ndarray:
        """Label on intact EVs in ``organ`` (particle-equivalents), shape (n_times,)."""
        self._check(organ)
        if organ == THYROID:
            return np.zeros(self.t_h.size)
        k = places().index(organ)
        return self.amounts[:, : self.place_of_state.size][:, self.place_of_state == k].sum(axis=1)

    def free_amount(self, organ: str) -> np.ndarray:
        """Free label in ``organ`` (particle-equivalents)."""
        self._check(organ)
        if organ not in self.free_places:  # the ideal label has no free pools
            return np.zeros(self.t_h.size)
        return self.amounts[:, self.states.index(f"free_{organ}")]

    def label_amount(self, organ: str, *, decay_corrected: bool = False) -> np.ndarray:
        """All label in ``organ``, bound + free (particle-equivalents)."""
        out = self.bound_amount(organ) + self.free_amount(organ)
        return out / self.decay_factor() if decay_corrected else out

    def bound_percent_id(self, organ: str) -> np.ndarray:
        """Label on intact EVs in ``organ``, % of the injected label."""
        return 100.0 * self.bound_amount(organ) / self.dose

    def free_percent_id(self, organ: str) -> np.ndarray:
        """Free label in ``organ``, % of the injected label."""
        return 100.0 * self.free_amount(organ) / self.dose

    def label_percent_id(self, organ: str, *, decay_corrected: bool = False) -> np.ndarray:
        """All label in ``organ`` (what counting the whole organ measures), % of the injected label.

        With ``decay_corrected``, divided by the physical decay since the first dose,
        :math:`e^{-\\lambda (t - t_0)}`, as counting data are usually reported.
        """
        return 100.0 * self.label_amount(organ, decay_corrected=decay_corrected) / self.dose

    def true_percent_id(self, organ: str) -> np.ndarray:
        """Intact EVs in ``organ``, %ID (0 for the thyroid, which is not an EV compartment)."""
        self._check(organ)
        return np.zeros(self.t_h.size) if organ == THYROID else self.ev.percent_id(organ)

    def label_percent_id_per_g(self, organ: str, *, decay_corrected: bool = False) -> np.ndarray:
        """Ex vivo %ID/g of label: label per gram of organ (blood: of a venous blood sample).

        Not defined for the thyroid (no mass in the model).
        """
        self._check(organ)
        if organ == THYROID:
            raise InputError("label %ID/g is not available for the thyroid (its mass is not a model parameter).")
        density = self.ev.params["tissue_density_g_per_ml"]
        if organ not in TISSUES:
            raise InputError(f"label %ID/g is defined for {', '.join(TISSUES)} (organs with a mass); got {organ!r}.")
        k = TISSUES.index(organ)
        if organ == "blood":
            venous = LIVE_STATES.index("blood_venous")
            conc = self.amounts[:, venous] / self.ev.state_volumes_ml[venous]
            conc = conc + self.free_amount("blood") / self.ev.organ_volumes_ml[0]
        else:
            conc = self.label_amount(organ) / self.ev.organ_volumes_ml[k]
        if decay_corrected:
            conc = conc / self.decay_factor()
        return 100.0 * conc / (self.dose * density)

    def decay_factor(self) -> np.ndarray:
        """Physical decay since the first dose, :math:`e^{-\\lambda \\max(0, t - t_0)}`, shape (n_times,)."""
        t0 = self.ev.regimen.first_h
        return np.exp(-self.label.decay_per_h * np.maximum(0.0, self.t_h - t0))

    def sink_amount(self, sink: str) -> np.ndarray:
        """Cumulative label in one sink (``excreted_urine``, ``decayed``...), particle-equivalents."""
        if sink not in self.sinks:
            raise InputError(f"unknown label sink {sink!r}; expected one of: {', '.join(self.sinks)}.")
        return self.amounts[:, len(self.states) + self.sinks.index(sink)]

    def excreted_amount(self) -> np.ndarray:
        """Label excreted (all ``excreted_*`` sinks and, for the ideal label, instant clearance)."""
        return sum(
            (self.sink_amount(s) for s in self.sinks if s.startswith("excreted_") or s == "cleared_instantly"),
            np.zeros(self.t_h.size),
        )

    def in_body_amount(self) -> np.ndarray:
        """Label still in the body, bound + free (particle-equivalents)."""
        return self.amounts[:, : len(self.states)].sum(axis=1)

    def conservation_error(self) -> float:
        """Largest absolute (bound + free + excreted + decayed + inactivated - injected), relative to the dose."""
        total = self.amounts.sum(axis=1)
        return float(np.max(np.abs(total - self.ev.administered_particles)) / self.dose)

    def radiance_au(self, organ: str, view: str = "dorsal", imaging=None) -> np.ndarray:
        """Optical radiance from ``organ`` seen from ``view``; see :func:`exopk.observe.optical_radiance`."""
        from exopk.observe.labels import optical_radiance

        return optical_radiance(self, organ, view, imaging)

    def to_frame(self):
        """Tidy table: the intact-EV rows of :meth:`SimulationResult.to_frame` plus label rows.

        Returns
        -------
        pandas.DataFrame
            Columns ``time_h, organ, quantity, value, unit``. Per organ (and ``thyroid`` for
            iodide labels): ``label_percent_id``, ``label_bound_percent_id``,
            ``label_free_percent_id``, ``label_percent_id_decay_corrected`` (%ID);
            ``label_percent_id_per_g``, ``label_percent_id_per_g_decay_corrected`` (%ID/g; not
            for the thyroid); optical labels also ``radiance_dorsal_au``, ``radiance_ventral_au``
            (a.u.: %ID × tissue transmission), when ``params/imaging/<species>.toml`` exists
            (mouse ships). Organ ``eliminated``: ``label_<sink>_percent_id``
            for each label sink.
        """
        import pandas as pd

        from exopk.results import tidy_block

        blocks = [self.ev.to_frame()]

        def add(organ: str, quantity: str, values: np.ndarray, unit: str) -> None:
            blocks.append(tidy_block(self.t_h, organ, quantity, values, unit))

        from exopk.observe.imaging import imaging_available

        optical = self.label.modality == "optical" and imaging_available(self.ev.params.species)
        for organ in filter(self.ev.is_shown, self.organs):
            add(organ, "label_percent_id", self.label_percent_id(organ), "%ID")
            add(organ, "label_bound_percent_id", self.bound_percent_id(organ), "%ID")
            add(organ, "label_free_percent_id", self.free_percent_id(organ), "%ID")
            add(organ, "label_percent_id_decay_corrected", self.label_percent_id(organ, decay_corrected=True), "%ID")
            if organ in TISSUES:
                add(organ, "label_percent_id_per_g", self.label_percent_id_per_g(organ), "%ID/g")
                add(
                    organ,
                    "label_percent_id_per_g_decay_corrected",
                    self.label_percent_id_per_g(organ, decay_corrected=True),
                    "%ID/g",
                )
            if optical:
                for view in ("dorsal", "ventral"):
                    add(organ, f"radiance_{view}_au", self.radiance_au(organ, view), "a.u.")
        for sink in self.sinks:
            add("eliminated", f"label_{sink}_percent_id", 100.0 * self.sink_amount(sink) / self.dose, "%ID")
        frame = pd.concat(blocks, ignore_index=True)
        frame["organ"] = frame["organ"].astype(str)
        return frame


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
