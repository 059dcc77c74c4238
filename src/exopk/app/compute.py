"""What the page computes for a :class:`~exopk.app.form.RunSpec`: model, simulations, tables.

Only the public library is used (``load_parameters``, the dose classes, ``simulate``,
``simulate_label``, ``compare_routes``, ``sample_population``), so that the Python code the page
offers for download (:mod:`exopk.app.reproduce`) does the same thing with the same calls.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from exopk.app.form import FormError, RunSpec
from exopk.errors import DosingError, ExopkError, InputError, ParameterError, SimulationError

#: Dose class per page route (constructor name in :mod:`exopk`).
DOSE_CLASSES = {
    "iv_bolus": "IVBolus",
    "iv_infusion": "IVInfusion",
    "intranasal": "Intranasal",
    "intraperitoneal": "Intraperitoneal",
    "subcutaneous": "Subcutaneous",
    "intratracheal": "Intratracheal",
    "local": "LocalInjection",
}

#: Body-weight rule of a single animal: the rule of :func:`exopk.analysis.sample_population`.
BODY_WEIGHT_SOURCE = (
    "body weight {bw:g} g: flows x (BW/{ref:g} g)^0.75, volumes x (BW/{ref:g} g) (exopk population rule)"
)

#: Plain-language limits of the model, shown on every result (see docs/model.md, docs/tracers.md).
LIMITS = (
    "This is a model, not a measurement. Its EV constants are calibrated to four numbers from mouse IV "
    "studies seen through labels (docs/model.md); everything else is a literature value, a nanoparticle "
    "analogue or a stated assumption (see the source of each parameter below).",
    "Brain uptake rests on assumptions: after IV dosing brain %ID is essentially the EVs in its blood. Do not "
    "read brain numbers as predictions.",
    "Intranasal, intraperitoneal, subcutaneous and intratracheal rates are calibrated to protein analogues or "
    "assumed; no EV data exist for them.",
    "Rat and human EV constants are extrapolated from the mouse by allometry (marked 'extrapolated' below); no "
    "human EV biodistribution exists to check them.",
    "Uptake is linear: no saturation at high doses and no accelerated clearance on repeated dosing unless a "
    "capacity or scenario says so.",
    "A label is not the vesicle: dyes and residualising radiolabels stay in organs after the EVs are degraded, "
    "luciferase signal dies with them. Compare label curves with label data.",
)


@dataclass(frozen=True, slots=True, kw_only=True)
class RunOutput:
    """One run of the page: the model, each route's simulation and the tables shown.

    Attributes
    ----------
    spec : RunSpec
    params : ModelParameters
    regimens : dict of str to Regimen
        Regimen per route (or ``"regimen"`` for an uploaded table).
    results : dict of str to SimulationResult
        Intact EVs per route on the curve grid.
    labelled : dict of str to TracerResult
        The same with the label (empty without a label).
    table : pandas.DataFrame
        %ID and %ID/g per route, organ and sacrifice time (exact at those times).
    comparison : RouteComparison or None
        For two or more routes.
    elapsed_s : float
        Wall-clock time of the computation (s).
    """

    spec: RunSpec
    params: Any
    regimens: dict
    results: dict
    labelled: dict
    table: Any
    comparison: Any = None
    elapsed_s: float = 0.0
    notes: tuple[str, ...] = field(default=())

    def tidy_frame(self):
        """The curves as one tidy table ``route, time_h, organ, quantity, value, unit`` (label rows included)."""
        import pandas as pd

        frames = []
        for route in self.results:
            source = self.labelled.get(route) or self.results[route]
            frame = source.to_frame()
            frame.insert(0, "route", route)
            frames.append(frame)
        return pd.concat(frames, ignore_index=True)


def scale_body_weight(params, body_weight_g: float):
    """The parameters of one animal of another body weight, by the rule of :func:`exopk.analysis.sample_population`.

    .. math:: Q = Q_{ref} (BW/BW_{ref})^{0.75},\\quad V = V_{ref}\\, BW/BW_{ref}

    Rate constants (1/h), fractions and partition coefficients are unchanged.

    Parameters
    ----------
    params : ModelParameters
    body_weight_g : float
        Body weight of the animal (g).

    Returns
    -------
    ModelParameters
    """
    import exopk

    reference_g = params["body_weight_g"]
    ratio = body_weight_g / reference_g
    scaled = {}
    for name in exopk.parameter_names():
        b = exopk.analysis.allometric_exponent(name)
        if name in params.values and b is not None and params[name] != 0:
            scaled[name] = params[name] * ratio**b
    source = BODY_WEIGHT_SOURCE.format(bw=body_weight_g, ref=reference_g)
    return params.replace(source=source, **scaled)


def make_dose(route: str, dose_particles: float, t_h: float, spec: RunSpec):
    """One dose of ``route`` at ``t_h`` (h) with the page's infusion duration and local site."""
    import exopk

    cls = getattr(exopk, DOSE_CLASSES[route])
    if route == "iv_infusion":
        return cls(dose_particles=dose_particles, duration_h=spec.infusion_duration_h, t_h=t_h)
    if route == "local":
        organ, _, space = (spec.site or "").rpartition("_")
        return cls(dose_particles=dose_particles, organ=organ, space=space, t_h=t_h)
    return cls(dose_particles=dose_particles, t_h=t_h)


def dose_times_h(spec: RunSpec) -> list[float]:
    """Times of the repeated doses (h): 0, interval, 2 interval, ..."""
    return [k * (spec.interval_h or 0.0) for k in range(spec.n_doses)]


def build_params(spec: RunSpec):
    """Load the model of ``spec``; a bad uploaded file or scenario is reported on its field."""
    import exopk

    ev = spec.files.get(spec.ev, spec.ev)
    scenarios = tuple(spec.files.get(s, s) for s in spec.scenarios)
    try:
        params = exopk.load_parameters(spec.species, ev, scenarios=scenarios)
    except ParameterError as err:
        uploaded = spec.ev in spec.files or any(s in spec.files for s in spec.scenarios)
        raise FormError({"params_file" if uploaded else "ev": str(err)}) from None
    if spec.body_weight_g is not None and spec.body_weight_g != params["body_weight_g"]:
        try:
            params = scale_body_weight(params, spec.body_weight_g)
        except ParameterError as err:
            raise FormError({"body_weight_g": str(err)}) from None
    return params


def build_regimens(spec: RunSpec, params) -> dict:
    """Regimen per route (repeats of the one dose), or the uploaded table as ``"regimen"``."""
    import exopk

    if spec.regimen_file is not None:
        try:
            regimen = exopk.Regimen.from_csv(spec.files[spec.regimen_file], particles_per_ug=spec.particles_per_ug)
        except DosingError as err:
            raise FormError(
                {"regimen_file": str(err).replace(str(spec.files[spec.regimen_file]), spec.regimen_file)}
            ) from None
        if regimen.doses and max(d.t_h for d in regimen.doses) > spec.t_end_h:
            raise FormError(
                {"regimen_file": f"a dose at {max(d.t_h for d in regimen.doses):g} h is after the end time"}
            )
        return {"regimen": regimen}
    regimens = {}
    for route in spec.routes:
        if route not in ("iv_bolus", "iv_infusion", "local") and route not in params.routes:
            raise FormError(
                {
                    "routes": f"route {route} has no parameters for {params.species}; available: "
                    f"iv_bolus, iv_infusion, local, {', '.join(params.routes)}"
                }  # fmt: skip
            )
        try:
            doses = [make_dose(route, spec.dose_particles, t, spec) for t in dose_times_h(spec)]
        except DosingError as err:
            raise FormError({"dose": str(err)}) from None
        if max(d.t_h for d in doses) > spec.t_end_h:
            raise FormError({"n_doses": f"the last dose ({max(d.t_h for d in doses):g} h) is after the end time"})
        regimens[route] = exopk.Regimen(doses)
    return regimens


def time_grid(spec: RunSpec) -> np.ndarray:
    """Curve output times 0, dt, ..., t_end (h), as ``exopk simulate --t-end --dt`` makes them."""
    n_steps = int(round(spec.t_end_h / spec.dt_h))
    return np.linspace(0.0, n_steps * spec.dt_h, n_steps + 1)


def percent_id_table(result, labelled, times_h, route: str):
    """%ID and %ID/g per organ at the sacrifice times, as an ex vivo count would report them.

    Parameters
    ----------
    result : SimulationResult
        Intact EVs simulated at exactly ``times_h``.
    labelled : TracerResult or None
        The same with a label; label columns are decay-corrected (counted against a dose standard).
    times_h : sequence of float
    route : str

    Returns
    -------
    pandas.DataFrame
        Columns ``route, time_h, organ, ev_percent_id, ev_percent_id_per_g`` and, with a label,
        ``label_percent_id, label_percent_id_per_g`` (NaN where an organ has no mass).
    """
    import pandas as pd

    rows = []
    organs = [o for o in result.organs if o != "eliminated" and result.is_shown(o)]
    for organ in organs:
        pct = result.percent_id(organ)
        try:
            per_g = result.percent_id_per_g(organ)
        except InputError:
            per_g = np.full(pct.shape, np.nan)  # administration sites have no mass
        label_pct: Any = None
        label_per_g: Any = None
        if labelled is not None:
            label_pct = labelled.label_percent_id(organ, decay_corrected=True)
            try:
                label_per_g = labelled.label_percent_id_per_g(organ, decay_corrected=True)
            except InputError:
                label_per_g = np.full(pct.shape, np.nan)
        for i, t in enumerate(times_h):
            row = {
                "route": route,
                "time_h": float(t),
                "organ": organ,
                "ev_percent_id": float(pct[i]),
                "ev_percent_id_per_g": float(per_g[i]),
            }
            if labelled is not None:
                row["label_percent_id"] = float(label_pct[i])
                row["label_percent_id_per_g"] = float(label_per_g[i])
            rows.append(row)
    frame = pd.DataFrame(rows)
    return frame.sort_values("time_h", kind="stable", ignore_index=True)


def _solve(params, regimen, t_h, label):
    import exopk

    if label is None:
        return exopk.simulate(params, regimen, t_h), None
    labelled = exopk.observe.simulate_label(params, regimen, t_h, label)
    return labelled.ev, labelled


def run(spec: RunSpec) -> RunOutput:
    """Simulate what ``spec`` asks for.

    Returns
    -------
    RunOutput

    Raises
    ------
    FormError
        A field whose value the model rejects (an uploaded file, a route the species lacks, ...).
    SimulationError
        The solver failed.
    """
    import exopk

    start = time.perf_counter()
    params = build_params(spec)
    regimens = build_regimens(spec, params)
    t_h = time_grid(spec)
    table_t = np.asarray(spec.times_h, dtype=float)
    results, labelled, tables = {}, {}, []
    for route, regimen in regimens.items():
        try:
            result, tracer = _solve(params, regimen, t_h, spec.label)
            at_times, tracer_at_times = _solve(params, regimen, table_t, spec.label)
        except (InputError, SimulationError) as err:
            field_name = "label" if spec.label is not None and "label" in str(err) else "routes"
            raise FormError({field_name: str(err)}) from None
        results[route] = result
        if tracer is not None:
            labelled[route] = tracer
        tables.append(percent_id_table(at_times, tracer_at_times, table_t, route))
    import pandas as pd

    table = pd.concat(tables, ignore_index=True)
    comparison = None
    notes = []
    if len(spec.routes) >= 2 and spec.regimen_file is None:
        doses = [make_dose(route, spec.dose_particles, 0.0, spec) for route in spec.routes]
        comparison = exopk.analysis.compare_routes(params, doses, spec.dose_particles, t_h)
        if spec.n_doses > 1:
            notes.append("route comparison: one dose per route (AUCs, DTE and DTP are single-dose metrics)")
        if "iv_bolus" not in spec.routes:
            notes.append("route comparison: an IV bolus reference was added (bioavailability, DTE and DTP need it)")
    if spec.regimen_file is not None:
        notes.append(f"doses from {spec.regimen_file}: the route, dose and repeat fields of the page are not used")
    if params.scenarios:
        notes.append(f"scenarios applied: {', '.join(params.scenarios)}")
    if params.extrapolated:
        notes.append(
            f"{len(params.extrapolated)} EV constants are extrapolated to {params.species} from the mouse (allometry), "
            "not measured"
        )
    if spec.body_weight_g is not None and spec.body_weight_g != exopk.load_parameters(spec.species)["body_weight_g"]:
        notes.append(
            BODY_WEIGHT_SOURCE.format(bw=spec.body_weight_g, ref=exopk.load_parameters(spec.species)["body_weight_g"])
        )
    return RunOutput(
        spec=spec,
        params=params,
        regimens=regimens,
        results=results,
        labelled=labelled,
        table=table,
        comparison=comparison,
        elapsed_s=time.perf_counter() - start,
        notes=tuple(notes),
    )


def parameters_frame(params):
    """Every parameter used, with unit and source: :meth:`ModelParameters.table`."""
    return params.table()


def label_frame(label_name: str):
    """The label's own parameters with their sources (``name, value, source``)."""
    import pandas as pd

    import exopk

    label = exopk.observe.load_label(label_name)
    return pd.DataFrame(
        [{"name": k, "value": v, "source": label.sources.get(k, "")} for k, v in label.values.items()],
        columns=["name", "value", "source"],
    )


def describe_error(err: BaseException) -> str:
    """One line for an unexpected failure (the server keeps running)."""
    if isinstance(err, ExopkError):
        return str(err)
    return f"{type(err).__name__}: {err}"
