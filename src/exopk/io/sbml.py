"""Export a configured model and its dosing regimen to SBML Level 3 Version 2.

The export is built from the model's own description, never from a hand-written list of states:

- one compartment per live state (volume from :func:`exopk.model.graph.volumes`, mL) and one
  notional compartment ``sinks`` (1 mL) for the cumulative elimination states. The four
  administration depots (``lung_airspace``, ``nasal_cavity``, ``peritoneal_cavity``,
  ``subcutaneous_site``) have no volume in the model (no flow or concentration depends on one):
  their compartments are a stated, notional :data:`DEPOT_COMPARTMENT_ML` (1 mL), which changes no
  result, since every species is an amount and every rate law is in amounts. A size of 0, as
  before, made COPASI stop at its first step (concentration = amount / 0);
- one species per state in :data:`exopk.model.STATES`, an amount of EVs (``hasOnlySubstanceUnits``,
  unit ``particle`` = SBML ``item``);
- every model parameter (stored and derived, :meth:`ModelParameters.table`) as a constant SBML
  parameter with its value, unit and source (notes, and an ``exopk:parameter`` annotation);
- one irreversible mass-action reaction per first-order transfer of
  :func:`exopk.model.graph.transfers`, whose rate constant (1/h) is a global parameter
  ``rate_<k>_<source>_to_<target>`` annotated with the transfer's kind and the names of the model
  parameters it is computed from;
- capacity-limited vascular uptake (organs with a finite ``<organ>_capacity_particles``) as one
  extra reaction per organ, cells -> vascular, with kinetic law
  :math:`k_{uv} \\min(1, \\max(0, A_m)/\\mathrm{cap}) A_v` written with the SBML L3V2 ``min``/``max``
  functions (not ``piecewise``, which roadrunner turns into root-finding events): it cancels
  the saturated part of the linear uptake, exactly as :class:`exopk.model.graph.CapacityTerms` does;
- doses from :meth:`Regimen.events`: boluses at t = 0 as initial amounts, later boluses as
  events adding to the target state, infusions as a rate parameter per infusion and target state
  switched on and off by events and feeding a zero-order input reaction;
- one assignment-rule parameter ``total_<organ>_particles`` per reported organ
  (:data:`exopk.model.REPORTED_ORGANS`).

The rate constants are numbers computed by exopk from the named parameters; editing a model
parameter inside the SBML file does not change them (the file records the parameters for
provenance). Time is in hours, volumes in mL, amounts in particles.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

import numpy as np

from exopk.dosing import Dose, Regimen, as_regimen
from exopk.errors import DependencyError, DosingError, ExopkError, InputError, OutputError
from exopk.model.graph import (
    LIVE_STATES,
    REPORTED_ORGANS,
    SINK_STATES,
    STATES,
    capacity_terms,
    organ_membership,
    transfers,
)
from exopk.model.graph import volumes as _volumes
from exopk.model.parameters import ModelParameters

SBML_LEVEL = 3
SBML_VERSION = 2
ANNOTATION_NS = "https://github.com/exopk/exopk/sbml-annotation/1"
"""XML namespace of the ``exopk:`` annotations (an identifier, not a web page)."""
SINK_COMPARTMENT = "sinks"

# Units of ModelParameters.table() -> SBML unit definition ids (defined in _add_units).
_UNIT_IDS = {
    "1": "dimensionless",
    "particles": "particle",
    "mL": "mL",
    "mL/h": "mL_per_hour",
    "1/h": "per_hour",
    "g": "gram",  # predefined in SBML
    "g/mL": "g_per_mL",
    "h": "hour",
    "particles/h": "particles_per_hour",
}


DEPOT_COMPARTMENT_ML = 1.0
"""Size (mL) of the depot compartments: notional, stated (no source needed: no result depends on it)."""

_DEPOT_NOTE = (
    "Notional 1 mL: the depot {state} has no volume in the exopk model (no flow or concentration "
    "depends on one). Species are amounts (hasOnlySubstanceUnits) and rate laws are in amounts, "
    "so this size changes no result; it is not 0 so that simulators computing concentrations "
    "(COPASI) can run."
)


def _libsbml():
    try:
        import libsbml
    except ImportError:
        raise DependencyError(
            "SBML export needs python-libsbml, which is not installed; install it with pip install 'exopk[sbml]'."
        ) from None
    return libsbml


def _check(code: int, what: str) -> None:
    """libsbml setters return an operation code; anything but success is a bug here."""
    libsbml = _libsbml()
    if code != libsbml.LIBSBML_OPERATION_SUCCESS:
        raise ExopkError(f"SBML export failed while {what}: {libsbml.OperationReturnValue_toString(code)}.")


def _notes(text: str) -> str:
    return f'<body xmlns="http://www.w3.org/1999/xhtml"><p>{escape(text)}</p></body>'


def _annotation(tag: str, **attributes: str) -> str:
    attrs = " ".join(f"{key}={quoteattr(str(value))}" for key, value in attributes.items())
    return f'<exopk:{tag} xmlns:exopk="{ANNOTATION_NS}" {attrs}/>'


def _math(libsbml, formula: str):
    ast = libsbml.parseL3Formula(formula)
    if ast is None:
        raise ExopkError(f"SBML export: cannot parse formula {formula!r}: {libsbml.getLastParseL3Error()}")
    return ast


def _add_units(libsbml, model) -> None:
    def define(uid: str, *parts: tuple[int, float, int, float]) -> None:
        ud = model.createUnitDefinition()
        _check(ud.setId(uid), f"defining unit {uid}")
        for kind, exponent, scale, multiplier in parts:
            unit = ud.createUnit()
            _check(unit.setKind(kind), f"unit {uid}")
            _check(unit.setExponent(exponent), f"unit {uid}")
            _check(unit.setScale(scale), f"unit {uid}")
            _check(unit.setMultiplier(multiplier), f"unit {uid}")

    item, litre, second = libsbml.UNIT_KIND_ITEM, libsbml.UNIT_KIND_LITRE, libsbml.UNIT_KIND_SECOND
    gram = libsbml.UNIT_KIND_GRAM
    define("particle", (item, 1, 0, 1.0))
    define("mL", (litre, 1, -3, 1.0))
    define("hour", (second, 1, 0, 3600.0))
    define("per_hour", (second, -1, 0, 3600.0))
    define("mL_per_hour", (litre, 1, -3, 1.0), (second, -1, 0, 3600.0))
    define("particles_per_hour", (item, 1, 0, 1.0), (second, -1, 0, 3600.0))
    define("g_per_mL", (gram, 1, 0, 1.0), (litre, -1, -3, 1.0))


def _parameter(model, pid: str, value: float, unit: str | None, *, constant: bool = True):
    p = model.createParameter()
    _check(p.setId(pid), f"naming parameter {pid}")
    _check(p.setValue(float(value)), f"setting parameter {pid}")
    _check(p.setConstant(constant), f"parameter {pid}")
    if unit is not None:
        _check(p.setUnits(unit), f"units of parameter {pid}")
    return p


def _event(libsbml, model, eid: str, t_h: float, assignments: Sequence[tuple[str, str]], note: str) -> None:
    event = model.createEvent()
    _check(event.setId(eid), f"naming event {eid}")
    _check(event.setUseValuesFromTriggerTime(True), f"event {eid}")
    trigger = event.createTrigger()
    _check(trigger.setInitialValue(False), f"trigger of {eid}")
    _check(trigger.setPersistent(True), f"trigger of {eid}")
    _check(trigger.setMath(_math(libsbml, f"time >= {t_h!r} hour")), f"trigger of {eid}")
    for variable, formula in assignments:
        ea = event.createEventAssignment()
        _check(ea.setVariable(variable), f"assignment of {eid}")
        _check(ea.setMath(_math(libsbml, formula)), f"assignment of {eid}")
    _check(event.setNotes(_notes(note)), f"notes of {eid}")


def _reaction(libsbml, model, rid: str, reactant: str | None, product: str | None, formula: str):
    reaction = model.createReaction()
    _check(reaction.setId(rid), f"naming reaction {rid}")
    _check(reaction.setReversible(False), f"reaction {rid}")
    for species, make in ((reactant, reaction.createReactant), (product, reaction.createProduct)):
        if species is not None:
            ref = make()
            _check(ref.setSpecies(species), f"species of reaction {rid}")
            _check(ref.setStoichiometry(1.0), f"stoichiometry of reaction {rid}")
            _check(ref.setConstant(True), f"stoichiometry of reaction {rid}")
    law = reaction.createKineticLaw()
    _check(law.setMath(_math(libsbml, formula)), f"kinetic law of {rid}")
    return reaction


def _suffix(name: str) -> str:
    """Id suffix of a subpopulation's states, e.g. ``"__stealth"``."""
    return "__" + "".join(c if c.isalnum() or c == "_" else "_" for c in name)


def _add_population(
    libsbml, model, part: ModelParameters, events, x: str, share: float, suffixes: Sequence[str] = ("",)
) -> None:
    """Compartments, species, transfers, saturation terms and dosing of one EV (sub)population.

    ``x`` suffixes every id of this population ("" for a single population); doses are multiplied
    by ``share``, the population's fraction of the dose. ``suffixes`` are those of every population of
    the mixture: the macrophages are shared, so saturation counts the cells of all of them.
    """
    values = part.values
    # Compartments and species, from the state lists.
    state_ml = np.asarray(_volumes(values).state_ml, dtype=float).reshape(-1, len(LIVE_STATES))[0]
    compartment_of: dict[str, str] = {}
    for state, volume_ml in zip(LIVE_STATES, state_ml, strict=True):
        c = model.createCompartment()
        cid = f"V_{state}{x}"
        depot = volume_ml == 0.0
        _check(c.setId(cid), f"compartment {cid}")
        _check(c.setSpatialDimensions(3), f"compartment {cid}")
        _check(c.setSize(DEPOT_COMPARTMENT_ML if depot else float(volume_ml)), f"volume of {cid}")
        _check(c.setUnits("mL"), f"compartment {cid}")
        _check(c.setConstant(True), f"compartment {cid}")
        if depot:
            _check(c.setNotes(_notes(_DEPOT_NOTE.format(state=state))), f"notes of {cid}")
        compartment_of[state + x] = cid
    if model.getCompartment(SINK_COMPARTMENT) is None:
        sink = model.createCompartment()
        _check(sink.setId(SINK_COMPARTMENT), "sink compartment")
        _check(sink.setSpatialDimensions(3), "sink compartment")
        _check(sink.setSize(1.0), "sink compartment")
        _check(sink.setUnits("mL"), "sink compartment")
        _check(sink.setConstant(True), "sink compartment")
        _check(
            sink.setNotes(
                _notes("Notional 1 mL compartment holding the cumulative elimination states (amounts only).")
            ),
            "sink compartment notes",
        )
    for state in SINK_STATES:
        compartment_of[state + x] = SINK_COMPARTMENT

    live_index = {state: k for k, state in enumerate(LIVE_STATES)}
    initial = np.zeros(len(LIVE_STATES))
    later_boluses: dict[float, np.ndarray] = {}
    for t_h, amounts in zip(events.bolus_t_h, events.bolus_amounts, strict=True):
        if t_h == 0.0:
            initial += share * amounts
        else:
            later_boluses[float(t_h)] = later_boluses.get(float(t_h), np.zeros(len(LIVE_STATES))) + share * amounts
    for state in STATES:
        s = model.createSpecies()
        _check(s.setId(state + x), f"species {state}{x}")
        _check(s.setCompartment(compartment_of[state + x]), f"species {state}")
        _check(s.setInitialAmount(float(initial[live_index[state]]) if state in live_index else 0.0), state)
        _check(s.setSubstanceUnits("particle"), f"species {state}")
        _check(s.setHasOnlySubstanceUnits(True), f"species {state}")
        _check(s.setBoundaryCondition(False), f"species {state}")
        _check(s.setConstant(False), f"species {state}")
        kind = "sink (cumulative elimination)" if state in SINK_STATES else "live state"
        _check(s.setNotes(_notes(f"Amount of intact EVs in {state} (particles); {kind}.")), f"notes of {state}")

    # Linear transfers, generically from the model's transfer list.
    for k, t in enumerate(transfers(values)):
        rate_per_h = float(np.asarray(t.rate_per_h).reshape(-1)[0])
        pid = f"rate_{k}_{t.source}_to_{t.target}{x}"
        p = _parameter(model, pid, rate_per_h, "per_hour")
        names = " ".join(dict.fromkeys(t.parameters))
        _check(
            p.setNotes(_notes(f"First-order {t.kind} rate {t.source} -> {t.target} (1/h), computed from: {names}.")),
            f"notes of {pid}",
        )
        _check(
            p.setAnnotation(_annotation("transfer", source=t.source, target=t.target, kind=t.kind, parameters=names)),
            f"annotation of {pid}",
        )
        _reaction(
            libsbml,
            model,
            f"transfer_{k}_{t.source}_to_{t.target}{x}",
            t.source + x,
            t.target + x,
            f"{pid} * {t.source}{x}",
        )

    # Capacity-limited (saturable) vascular uptake: the saturated share of the linear uptake moves back.
    cap = capacity_terms(part)
    for v_idx, m_idx in zip(cap.vascular, cap.cells, strict=True):
        vascular, cells = LIVE_STATES[v_idx] + x, LIVE_STATES[m_idx] + x
        organ = LIVE_STATES[v_idx].removesuffix("_vascular")
        k_uv, capacity = f"{organ}_macrophage_uptake_per_h", f"{organ}_capacity_particles"
        if x:  # this subpopulation's own (multiplied) macrophage uptake constant
            k_uv = f"{k_uv}{x}"
            _parameter(model, k_uv, float(part.values[f"{organ}_macrophage_uptake_per_h"]), "per_hour")
        # min/max (SBML L3V2), not piecewise: libroadrunner turns piecewise conditions into root-finding
        # events, and in the sliding motion along A_m = capacity that cost it ~3e-6 (1e-3 with small steps);
        # with min/max it agrees with exopk's ODE solvers to ~3e-9 (measured).
        filled = " + ".join(f"max(0 particle, {LIVE_STATES[m_idx]}{y})" for y in suffixes)
        saturation = f"min(1 dimensionless, ({filled}) / {capacity})"
        r = _reaction(libsbml, model, f"saturation_{organ}{x}", cells, vascular, f"{k_uv} * {saturation} * {vascular}")
        _check(
            r.setNotes(
                _notes(
                    f"Capacity-limited uptake in {organ}: the linear uptake {k_uv} * {vascular} is reduced by the "
                    f"factor max(0, 1 - {cells}/{capacity}); this reaction returns the saturated share."
                )
            ),
            f"notes of saturation_{organ}{x}",
        )

    # Boluses after t = 0: events adding to the target states.
    for n, (t_h, amounts) in enumerate(sorted(later_boluses.items())):
        targets = [(LIVE_STATES[j] + x, float(a)) for j, a in enumerate(amounts) if a != 0.0]
        _event(
            libsbml,
            model,
            f"bolus_{n}{x}",
            t_h,
            [(state, f"{state} + {amount!r} particle") for state, amount in targets],
            f"Bolus at {t_h:g} h: " + ", ".join(f"{a:.6g} particles into {s}" for s, a in targets) + ".",
        )

    # Infusions: a rate parameter per infusion and target state, switched by events.
    for n, (start_h, end_h, rates) in enumerate(
        zip(events.infusion_start_h, events.infusion_end_h, events.infusion_rates, strict=True)
    ):
        for j, rate in enumerate(rates):
            if rate == 0.0:
                continue
            state = LIVE_STATES[j] + x
            rate = share * rate
            pid = f"infusion_{n}_{state}_particles_per_h"
            p = _parameter(model, pid, rate if start_h == 0.0 else 0.0, "particles_per_hour", constant=False)
            _check(
                p.setNotes(
                    _notes(f"Infusion {n} into {state}: {rate:.6g} particles/h from {start_h:g} h to {end_h:g} h.")
                ),
                f"notes of {pid}",
            )
            if start_h > 0.0:
                _event(
                    libsbml,
                    model,
                    f"infusion_{n}_{state}_start",
                    float(start_h),
                    [(pid, f"{float(rate)!r} particles_per_hour")],
                    f"Infusion {n} into {state} starts.",
                )
            _event(
                libsbml,
                model,
                f"infusion_{n}_{state}_end",
                float(end_h),
                [(pid, "0 particles_per_hour")],
                f"Infusion {n} into {state} stops.",
            )
            _reaction(libsbml, model, f"infusion_{n}_{state}", None, state, pid)


def sbml_document(params: ModelParameters, regimen: Regimen | Dose | Sequence[Dose]):
    """Build the ``libsbml.SBMLDocument`` of a model and regimen (see :func:`export_sbml`)."""
    from exopk._version import __version__

    libsbml = _libsbml()
    if not isinstance(params, ModelParameters):
        raise InputError(f"`params` must be ModelParameters (see exopk.load_parameters); got {type(params).__name__}.")
    reg = as_regimen(regimen).for_body_weight(params.values["body_weight_g"] / 1000.0)
    if reg.total_particles <= 0:
        raise DosingError("the regimen's total dose is 0 particles; give a positive dose to export.")
    # Repeats (ii/addl), lag times and bioavailability are expanded into the events: one SBML
    # event per later bolus, infusion start and stop.
    events = reg.events()
    if events.has_boundaries:
        raise DosingError(
            "SBML export does not take steady-state (ss=1) doses or resets (EVID 3/4): SBML has no periodic "
            "steady state; export the repeated doses (ii_h, addl) from time 0 instead."
        )

    doc = libsbml.SBMLDocument(SBML_LEVEL, SBML_VERSION)
    model = doc.createModel()
    name = f"exopk_{params.species}_{params.ev}"
    model_id = "".join(c if c.isalnum() or c == "_" else "_" for c in name)
    _check(model.setId(model_id), "naming the model")
    _check(model.setName(f"exopk {__version__}: {params.species} / {params.ev} EVs"), "naming the model")
    _check(
        model.setNotes(
            _notes(
                f"Exported by exopk {__version__} from {', '.join(params.files)}. Species are amounts of intact "
                "extracellular vesicles (particles) per model state; time in hours, volumes in mL. Rate constants "
                "rate_* are computed by exopk from the model parameters named in each one's annotation; the model "
                "parameters are recorded with their values, units and sources."
            )
        ),
        "model notes",
    )
    _check(
        model.setAnnotation(_annotation("model", species=params.species, ev=params.ev, files=";".join(params.files))),
        "model annotation",
    )
    _add_units(libsbml, model)
    for attr, unit in (
        ("setTimeUnits", "hour"),
        ("setSubstanceUnits", "particle"),
        ("setExtentUnits", "particle"),
        ("setVolumeUnits", "mL"),
    ):
        _check(getattr(model, attr)(unit), f"model {attr}")

    # Model parameters with units and sources.
    for row in params.table().itertuples(index=False):
        unit_id = _UNIT_IDS.get(row.unit)
        p = _parameter(model, row.name, row.value, unit_id)
        note = f"{row.description}. Unit: {row.unit}. Source: {row.source}"
        _check(p.setNotes(_notes(note)), f"notes of {row.name}")
        _check(p.setAnnotation(_annotation("parameter", unit=row.unit, source=row.source)), row.name)

    # One set of states per EV subpopulation (superposition of independent linear systems).
    parts = params.parts()
    all_suffixes = [_suffix(name) for name, _, _ in parts] if len(parts) > 1 else [""]
    for (_name, share, part), x in zip(parts, all_suffixes, strict=True):
        _add_population(libsbml, model, part, events, x, share, all_suffixes)

    # Reported organs: totals as assignment rules (summed over subpopulations).
    member = organ_membership()
    suffixes = [_suffix(name) for name, _, _ in parts] if len(parts) > 1 else [""]
    for organ, row in zip(REPORTED_ORGANS, member, strict=True):
        states = [STATES[j] + x for j in np.flatnonzero(row) for x in suffixes]
        pid = f"total_{organ}_particles"
        p = _parameter(model, pid, 0.0, "particle", constant=False)
        _check(p.setNotes(_notes(f"Intact EVs in {organ}: " + " + ".join(states) + ".")), f"notes of {pid}")
        rule = model.createAssignmentRule()
        _check(rule.setVariable(pid), f"rule for {pid}")
        _check(rule.setMath(_math(libsbml, " + ".join(states))), f"rule for {pid}")
    return doc


def export_sbml(
    params: ModelParameters, regimen: Regimen | Dose | Sequence[Dose], path: str | Path | None = None
) -> str:
    """Export a model and dosing regimen to SBML Level 3 Version 2.

    Needs the optional extra ``exopk[sbml]`` (python-libsbml).

    Parameters
    ----------
    params : ModelParameters
        The configured model (species, EV preparation, overrides).
    regimen : Regimen, dose or list of doses
        Boluses at 0 h become initial amounts, later boluses events; infusions become
        zero-order input reactions whose rate (particles/h) events switch on and off.
    path : str or Path, optional
        Where to write the file; written whole or not at all (temporary file, then rename).

    Returns
    -------
    str
        The SBML document (XML). Species are amounts (particles) per model state, time is in
        hours and volumes in mL. Every first-order transfer of the model is one mass-action
        reaction whose rate constant (1/h) is annotated with the model parameters it comes from;
        capacity-limited uptake is exported as a kinetic law with ``min``/``max``.

    Raises
    ------
    ExopkError
        python-libsbml is not installed, or the file cannot be written.
    DosingError
        Invalid doses, or a total dose of 0 particles.
    """
    libsbml = _libsbml()
    doc = sbml_document(params, regimen)
    text = libsbml.writeSBMLToString(doc)
    if path is not None:
        target = Path(path)
        temp = None
        try:
            fd, temp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
            os.chmod(temp, 0o644)
            os.replace(temp, target)
        except OSError as err:
            if temp is not None:
                Path(temp).unlink(missing_ok=True)
            raise OutputError(f"SBML file {str(target)!r} cannot be written: {err.strerror or err}.") from None
    return text


def roadrunner_amounts(
    sbml: str,
    t_h: np.ndarray,
    *,
    rtol: float = 1e-12,
    atol_particles: float = 1e-6,
    max_step_h: float | None = 0.002,
) -> np.ndarray:
    """Simulate an exported model with libroadrunner; amounts of every state in :data:`STATES` order.

    Used by the cross-check tests and ``benchmarks/bench_sbml.py``; needs ``exopk[sbml]``.

    Parameters
    ----------
    sbml : str
        An SBML document from :func:`export_sbml`.
    t_h : ndarray, shape (n_times,)
        Output times (h), starting at 0.
    rtol, atol_particles : float
        CVODE relative and absolute (particles) tolerances.
    max_step_h : float or None, default 0.002
        Largest CVODE step (h). Measured: after an event (a later bolus, an infusion switching
        off) roadrunner's CVODE drifts to ~1e-3 relative error on small states unless its step is
        bounded; 0.002 h brings multi-dose regimens to ~2e-8 of exopk's exact solution.

    Returns
    -------
    ndarray, shape (n_times, n_states)
        Amounts (particles).
    """
    model = RoadrunnerModel(sbml, rtol=rtol, atol_particles=atol_particles)
    if max_step_h is not None:
        model.rr.integrator.maximum_time_step = max_step_h
        t = np.asarray(t_h, dtype=float)
        longest_h = float(np.max(np.diff(t))) if t.size > 1 else 0.0
        model.rr.integrator.maximum_num_steps = max(20_000, int(2 * longest_h / max_step_h))
    return model(t_h)


class RoadrunnerModel:
    """An exported model loaded into libroadrunner once; each call simulates it from its initial state.

    ``rr`` is the ``roadrunner.RoadRunner`` (for its integrator settings and global parameters);
    ``suffixes`` the species-id suffix of each subpopulation (``""`` without subpopulations).
    Needs ``exopk[sbml]``; used by :func:`roadrunner_amounts` and the benchmarks.
    """

    def __init__(self, sbml: str, *, rtol: float, atol_particles: float) -> None:
        try:
            import roadrunner
        except ImportError:
            raise DependencyError(
                "libroadrunner is not installed; install it with pip install 'exopk[sbml]'."
            ) from None
        self.rr = roadrunner.RoadRunner(sbml)
        self.rr.integrator.relative_tolerance = rtol
        self.rr.integrator.absolute_tolerance = atol_particles
        ids = set(self.rr.model.getFloatingSpeciesIds())
        self.suffixes = sorted({sid[len(STATES[0]) :] for sid in ids if sid.startswith(STATES[0])})  # "" or "__<name>"
        self.rr.timeCourseSelections = ["time", *(state + x for x in self.suffixes for state in STATES)]

    def __call__(self, t_h: np.ndarray) -> np.ndarray:
        """Amounts (particles) of every state in :data:`STATES` order at ``t_h`` (h, from 0), shape (n_times, n_states).

        Species and time go back to their initial values first; global parameters keep what was set.
        """
        self.rr.reset()
        out = np.asarray(self.rr.simulate(times=np.asarray(t_h, dtype=float)))[:, 1:]
        # Subpopulations are separate sets of states: their amounts add.
        return out.reshape(out.shape[0], len(self.suffixes), len(STATES)).sum(axis=1)


def copasi_amounts(
    sbml: str,
    t_h: np.ndarray,
    *,
    rtol: float = 1e-12,
    atol: float = 1e-12,
    method: str = "deterministic",
) -> np.ndarray:
    """Simulate an exported model with COPASI (through ``basico``); amounts of every state in :data:`STATES` order.

    Used by the cross-check tests; needs ``exopk[sbml]`` (``copasi-basico``).

    Parameters
    ----------
    sbml : str
        An SBML document from :func:`export_sbml`.
    t_h : ndarray, shape (n_times,)
        Output times (h), starting at 0.
    rtol, atol : float, default 1e-12
        Relative and absolute tolerances of COPASI's integrator. COPASI scales its absolute
        tolerance by each species' initial value (or the model's quantity unit), so ``atol`` is
        dimensionless.
    method : {"deterministic", "radau5"}, default "deterministic"
        COPASI's LSODA (``"deterministic"``) or RADAU5.

    Returns
    -------
    ndarray, shape (n_times, n_states)
        Amounts (particles).

    Raises
    ------
    ExopkError
        ``basico`` is not installed, or COPASI fails to load or to run the model.
    """
    try:
        import basico
    except ImportError:
        raise ExopkError("COPASI (basico) is not installed; install it with pip install 'exopk[sbml]'.") from None
    t = np.asarray(t_h, dtype=float)
    model = basico.load_model_from_string(sbml)
    if model is None:
        raise ExopkError("COPASI could not load the SBML document.")
    try:
        frame = basico.run_time_course(
            model=model,
            values=list(t),
            start_time=0.0,
            duration=float(t[-1]),
            use_numbers=True,
            method=method,
            r_tol=rtol,
            a_tol=atol,
            max_steps=10_000_000,
        )
    finally:
        basico.remove_datamodel(model)
    frame = frame.reindex(t, method="nearest")  # COPASI's time column, to float round-off
    suffixes = sorted({str(c)[len(STATES[0]) :] for c in frame.columns if str(c).startswith(STATES[0])})
    # Subpopulations are separate sets of states: their amounts add.
    amounts = sum(frame[[state + x for state in STATES]].to_numpy(dtype=float) for x in suffixes)
    if amounts.shape[0] != t.size or not np.all(np.isfinite(amounts)):
        raise ExopkError(f"COPASI did not simulate the model to t = {t[-1]:g} h (non-finite or missing output).")
    return amounts
