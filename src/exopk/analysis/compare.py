"""Comparing administration routes: exposure per organ, bioavailability, brain targeting.

The same dose is simulated by each route; the metrics come from exact areas under the curves
of the linear model (:func:`auc_to_infinity`), so they do not depend on how long a run is or
how fine its grid. Brain exposure means *brain tissue*: the extravascular brain (tissue space
and cells), which EVs reach by crossing the blood-brain barrier or by the nose-to-brain
pathways, not the blood inside the brain.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from exopk.dosing import (
    ROUTES,
    Dose,
    Intranasal,
    Intraperitoneal,
    Intratracheal,
    IVBolus,
    IVInfusion,
    LocalInjection,
    Regimen,
    Subcutaneous,
    as_regimen,
)
from exopk.errors import DosingError, InputError, ParameterError
from exopk.model.graph import N_LIVE, ORGAN_POOLS, REPORTED_ORGANS, STATES, organ_membership, rate_matrices
from exopk.model.parameters import ORGANS, ModelParameters
from exopk.results import SimulationResult
from exopk.simulation import MAX_TIME_H, check_routes, check_times, simulate
from exopk.solve.linear import expm_single, restrict_to_reached

EXPOSURE_COMPARTMENTS: tuple[str, ...] = (
    ("blood",) + ORGANS + tuple(f"{organ}_extravascular" for organ in ORGANS) + REPORTED_ORGANS[len(ORGANS) + 1 : -1]
)
"""Places whose exposure (AUC) is reported: ``blood``, each organ (all its pools), each organ's
extravascular part (``brain_extravascular`` = brain tissue), and the administration sites."""


def _exposure_matrix() -> np.ndarray:
    """Rows: :data:`EXPOSURE_COMPARTMENTS`; columns: live states; 1 where the state counts."""
    member = organ_membership()[:-1, :N_LIVE]
    by_organ = dict(zip(REPORTED_ORGANS[:-1], member, strict=True))
    rows = []
    for name in EXPOSURE_COMPARTMENTS:
        if name.endswith("_extravascular"):
            organ = name.removesuffix("_extravascular")
            row = np.zeros(N_LIVE)
            for state in ORGAN_POOLS[organ]:
                if not state.endswith("_vascular"):
                    row[STATES.index(state)] = 1.0
            rows.append(row)
        else:
            rows.append(by_organ[name])
    return np.array(rows)


def _refuse_steady_state(regimen: Regimen, what: str) -> None:
    """AUCs from time 0 have no meaning for a regimen that starts at steady state or is reset."""
    if any(d.ss for d in regimen.doses) or regimen.resets_h:
        raise DosingError(
            f"{what} integrates from time 0 and does not take steady-state (ss=1) doses or resets; "
            "simulate the regimen and integrate its output, or give the doses explicitly."
        )


def auc_to_infinity(params: ModelParameters, regimen: Regimen | Dose | Sequence[Dose]) -> dict[str, float]:
    """Exact areas under the %ID curves from the first dose to infinity (%ID·h).

    For the linear model :math:`dA/dt = K A + u(t)`, the integral of the amounts over all time
    is :math:`-K^{-1} \\int u\\,dt`, whatever the timing of the doses: it needs one linear solve
    on the states the doses can reach, no time grid.

    Parameters
    ----------
    params : ModelParameters
        Linear model (every ``capacity_particles`` infinite).
    regimen : Regimen, a dose or a list of doses

    Returns
    -------
    dict
        ``{place: AUC}`` for every name in :data:`EXPOSURE_COMPARTMENTS`, in %ID·h
        (percent of the regimen's total dose, times hours).

    Raises
    ------
    InputError
        Non-linear model.
    DosingError
        A total dose of 0 particles.
    ParameterError
        A dose reaching a state with no way out (infinite AUC).
    """
    if not params.is_linear:
        raise InputError("auc_to_infinity needs the linear model (every `capacity_particles` = inf).")
    reg = as_regimen(regimen).for_body_weight(params.values["body_weight_g"] / 1000.0)
    check_routes(params, reg)
    _refuse_steady_state(reg, "auc_to_infinity")
    dose = reg.total_particles
    if dose <= 0:
        raise DosingError("the regimen's total dose is 0 particles; %ID is undefined.")
    events = reg.events()
    given = events.bolus_amounts.sum(axis=0) + (
        (events.infusion_end_h - events.infusion_start_h) @ events.infusion_rates
    )
    amount_h = np.zeros(N_LIVE)
    for _name, share, part in params.parts():  # EV subpopulations add (superposition)
        K, E = rate_matrices(part.values)
        reach, sub, _, _ = restrict_to_reached(K[0], E[0], events)
        if np.linalg.cond(sub) > 1e13:  # a reachable state without a way out: no finite AUC
            raise ParameterError("a dose reaches states with no elimination; the AUC to infinity is infinite.")
        amount_h[reach] += -share * np.linalg.solve(sub, given[reach])
    auc = _exposure_matrix() @ amount_h * (100.0 / dose)
    return dict(zip(EXPOSURE_COMPARTMENTS, auc.tolist(), strict=True))


def auc_to_time(params: ModelParameters, regimen: Regimen | Dose | Sequence[Dose], t_end_h: float) -> dict[str, float]:
    """Exact areas under the %ID curves from time 0 to ``t_end_h`` (%ID·h).

    Computed with the integral carried through matrix-exponential steps (no quadrature
    error, whatever the grid: the first seconds after an IV bolus, when blood fills the organs'
    vascular spaces, are integrated exactly).

    Parameters
    ----------
    params : ModelParameters
        Linear model.
    regimen : Regimen, a dose or a list of doses
    t_end_h : float
        End of the interval (h), positive.

    Returns
    -------
    dict
        ``{place: AUC}`` for every name in :data:`EXPOSURE_COMPARTMENTS` (%ID·h).
    """
    if not params.is_linear:
        raise InputError("auc_to_time needs the linear model (every `capacity_particles` = inf).")
    if not isinstance(t_end_h, (int, float)) or not math.isfinite(t_end_h) or t_end_h <= 0:
        raise InputError(f"`t_end_h` must be a positive number of hours; got {t_end_h!r}.")
    if t_end_h > MAX_TIME_H:
        raise InputError(f"`t_end_h` = {t_end_h!r} h; expected at most {MAX_TIME_H:g} h (114 years).")
    reg = as_regimen(regimen).for_body_weight(params.values["body_weight_g"] / 1000.0)
    check_routes(params, reg)
    _refuse_steady_state(reg, "auc_to_time")
    amount_h = np.zeros(N_LIVE)
    for _name, share, part in params.parts():  # EV subpopulations add (superposition)
        K, E = rate_matrices(part.values)
        full = expm_single(K[0], E[0], reg.events(), np.array([0.0, float(t_end_h)]), integrals=True)
        amount_h = amount_h + share * full[-1, N_LIVE + E.shape[1] :]
    auc = _exposure_matrix() @ amount_h * (100.0 / reg.total_particles)
    return dict(zip(EXPOSURE_COMPARTMENTS, auc.tolist(), strict=True))


def targeting_metrics(
    brain_auc_in: float, blood_auc_in: float, brain_auc_iv: float, blood_auc_iv: float
) -> dict[str, float]:
    """Drug targeting efficiency (DTE %) and direct transport percentage (DTP %) of intranasal dosing.

    .. math::

        DTE\\% = \\frac{(AUC_{brain}/AUC_{blood})_{IN}}{(AUC_{brain}/AUC_{blood})_{IV}} \\times 100,
        \\qquad
        DTP\\% = \\frac{B_{IN} - B_x}{B_{IN}} \\times 100,\\quad B_x = \\frac{B_{IV}}{P_{IV}} P_{IN}

    with brain AUC *B* and blood AUC *P* after equal doses. DTE > 100 % means the nose
    delivers to the brain better than IV per unit of blood exposure; DTP is the share of the
    intranasal brain exposure not explained by what came through blood. Definitions of
    Zhang Q et al. 2004 Int J Pharm 275:85, as used in reviews of nose-to-brain delivery
    (Kozlovskaya L et al. 2014 J Control Release 189:133; literature-2.md §1c). DTP can be
    negative (when DTE < 100 %); it is reported as computed.

    Parameters
    ----------
    brain_auc_in, blood_auc_in : float
        Brain and blood AUCs after intranasal dosing (any units, the same for all four).
    brain_auc_iv, blood_auc_iv : float
        Brain and blood AUCs after intravenous dosing of the same dose.

    Returns
    -------
    dict
        ``dte_percent``, ``dtp_percent``.
    """
    values = {
        "brain_auc_in": brain_auc_in,
        "blood_auc_in": blood_auc_in,
        "brain_auc_iv": brain_auc_iv,
        "blood_auc_iv": blood_auc_iv,
    }
    for name, value in values.items():
        if not isinstance(value, (int, float, np.floating)) or not math.isfinite(value) or value <= 0:
            raise InputError(f"`{name}` must be a positive finite AUC; got {value!r}.")
    dte = (brain_auc_in / blood_auc_in) / (brain_auc_iv / blood_auc_iv) * 100.0
    b_x = brain_auc_iv / blood_auc_iv * blood_auc_in
    dtp = (brain_auc_in - b_x) / brain_auc_in * 100.0
    return {"dte_percent": float(dte), "dtp_percent": float(dtp)}


def route_dose(
    route: str,
    dose_particles: float,
    *,
    t_h: float = 0.0,
    duration_h: float | None = None,
    organ: str | None = None,
    space: str = "tissue",
) -> Dose:
    """One dose by route name (``exopk.ROUTES``).

    Parameters
    ----------
    route : str
        One of ``iv_bolus, iv_infusion, intranasal, intraperitoneal, subcutaneous,
        intratracheal, local``.
    dose_particles : float
        Number of EVs.
    t_h : float, default 0
        Time of the dose (h).
    duration_h : float, optional
        Infusion duration (h); required for ``iv_infusion`` and refused otherwise.
    organ, space : str
        Target of a ``local`` injection (``space`` ``"vascular"`` or ``"tissue"``).
    """
    if route not in ROUTES:
        raise DosingError(f"unknown route {route!r}; expected one of: {', '.join(ROUTES)}.")
    if route == "iv_infusion":
        if duration_h is None:
            raise DosingError("route iv_infusion needs `duration_h` (h).")
        return IVInfusion(dose_particles=dose_particles, duration_h=duration_h, t_h=t_h)
    if duration_h is not None:
        raise DosingError(f"`duration_h` applies to iv_infusion only; got route {route!r}.")
    if route == "local":
        if organ is None:
            raise DosingError("route local needs `organ` (and `space`, 'vascular' or 'tissue').")
        return LocalInjection(dose_particles=dose_particles, organ=organ, space=space, t_h=t_h)
    kinds = {
        "iv_bolus": IVBolus,
        "intranasal": Intranasal,
        "intraperitoneal": Intraperitoneal,
        "subcutaneous": Subcutaneous,
        "intratracheal": Intratracheal,
    }
    return kinds[route](dose_particles=dose_particles, t_h=t_h)


@dataclass(frozen=True, slots=True)
class RouteComparison:
    """One dose given by several routes: curves, exposures and targeting metrics.

    Attributes
    ----------
    results : Mapping[str, SimulationResult]
        Simulation per route label (the route name, or ``local:<organ>_<space>``).
    auc_inf_percent_id_h : Mapping[str, Mapping[str, float]]
        Exact AUC from the dose to infinity per route and place (:data:`EXPOSURE_COMPARTMENTS`).
    auc_0_t_percent_id_h : Mapping[str, Mapping[str, float]]
        Exact AUC from 0 to the last output time, per route and place.
    dose_particles : float
    reference : str or None
        The intravenous route the others are compared with (``iv_bolus`` if present).
    """

    results: Mapping[str, SimulationResult]
    auc_inf_percent_id_h: Mapping[str, Mapping[str, float]]
    auc_0_t_percent_id_h: Mapping[str, Mapping[str, float]]
    dose_particles: float
    reference: str | None = None
    metadata: Mapping[str, object] = field(default_factory=dict)

    @property
    def routes(self) -> tuple[str, ...]:
        """Route labels, in the order given."""
        return tuple(self.results)

    def bioavailability(self, route: str) -> float:
        """Systemic bioavailability: blood AUC(route) / blood AUC(IV bolus), both to infinity.

        For a depot absorbed into venous blood this equals the depot's absorbed fraction
        ``k_a / (sum of its exits)``. Returns NaN without an IV reference.
        """
        self._check(route)
        if self.reference is None:
            return math.nan
        return self.auc_inf_percent_id_h[route]["blood"] / self.auc_inf_percent_id_h[self.reference]["blood"]

    def brain_to_blood_auc_ratio(self, route: str) -> float:
        """Brain tissue (extravascular) AUC over blood AUC, both to infinity (%ID·h / %ID·h)."""
        self._check(route)
        auc = self.auc_inf_percent_id_h[route]
        return auc["brain_extravascular"] / auc["blood"]

    def targeting(self, route: str = "intranasal") -> dict[str, float]:
        """DTE % and DTP % of ``route`` against the IV reference (see :func:`targeting_metrics`)."""
        self._check(route)
        if self.reference is None:
            raise InputError("DTE and DTP need an intravenous reference: include iv_bolus in the routes.")
        a, r = self.auc_inf_percent_id_h[route], self.auc_inf_percent_id_h[self.reference]
        return targeting_metrics(a["brain_extravascular"], a["blood"], r["brain_extravascular"], r["blood"])

    def _check(self, route: str) -> None:
        if route not in self.results:
            raise InputError(f"route {route!r} was not compared; compared: {', '.join(self.results)}.")

    def metrics_frame(self):
        """Exposure and targeting metrics as a tidy table ``route, organ, quantity, value, unit``.

        Quantities: ``auc_inf_percent_id_h`` (dose to infinity) and ``auc_0_t_percent_id_h``
        (0 to the last output time), both exact, per place; per route
        ``bioavailability_fraction``, ``brain_to_blood_auc_ratio`` and, for
        non-IV routes, ``dte_percent`` and ``dtp_percent`` (organ ``brain``).
        """
        import pandas as pd

        rows = []
        for route in self.results:
            for place, value in self.auc_inf_percent_id_h[route].items():
                rows.append((route, place, "auc_inf_percent_id_h", value, "%ID·h"))
                rows.append((route, place, "auc_0_t_percent_id_h", self.auc_0_t_percent_id_h[route][place], "%ID·h"))
            rows.append((route, "blood", "bioavailability_fraction", self.bioavailability(route), "1"))
            rows.append((route, "brain", "brain_to_blood_auc_ratio", self.brain_to_blood_auc_ratio(route), "1"))
            if self.reference is not None and route != self.reference:
                for name, value in self.targeting(route).items():
                    rows.append((route, "brain", name, value, "%"))
        return pd.DataFrame(rows, columns=["route", "organ", "quantity", "value", "unit"])

    def to_frame(self):
        """All curves as one tidy table ``time_h, route, organ, quantity, value, unit``."""
        import pandas as pd

        frames = []
        for route, result in self.results.items():
            frame = result.to_frame()
            frame.insert(1, "route", route)
            frames.append(frame)
        return pd.concat(frames, ignore_index=True)


def _curve(result: SimulationResult, place: str) -> np.ndarray:
    """%ID over time of one exposure place."""
    if place.endswith("_extravascular"):
        return result.extravascular_percent_id(place.removesuffix("_extravascular"))
    return result.percent_id(place)


def compare_routes(
    params: ModelParameters,
    routes: Sequence[str | Dose] = ("iv_bolus", "intranasal"),
    dose_particles: float = 1e10,
    t_h=None,
    *,
    infusion_duration_h: float | None = None,
) -> RouteComparison:
    """Simulate the same dose by several routes and compute exposure and targeting metrics.

    Parameters
    ----------
    params : ModelParameters
        Linear model with parameters for every depot route used.
    routes : sequence of str or doses, default ("iv_bolus", "intranasal")
        Route names (``exopk.ROUTES``; ``iv_infusion`` needs ``infusion_duration_h``;
        ``local`` must be given as a ``LocalInjection`` dose) or dose objects (their own
        ``dose_particles`` then wins). ``iv_bolus`` is the reference for bioavailability,
        DTE and DTP; it is added to the simulations if missing.
    dose_particles : float, default 1e10
        Dose per route (particles).
    t_h : array_like, optional
        Output times (h); default 0 to 48 h every 0.01 h.
    infusion_duration_h : float, optional
        Duration of an ``iv_infusion`` (h).

    Returns
    -------
    RouteComparison

    Examples
    --------
    >>> import exopk
    >>> cmp = exopk.analysis.compare_routes(exopk.load_parameters("mouse"), ("iv_bolus", "intranasal"))
    >>> round(cmp.targeting("intranasal")["dte_percent"])  # doctest: +SKIP
    """
    t = check_times(np.round(np.arange(0.0, 48.0 + 1e-9, 0.01), 10) if t_h is None else t_h)
    if isinstance(routes, str):
        routes = (routes,)
    if len(routes) == 0:
        raise InputError("`routes` is empty; give at least one route.")
    doses: dict[str, Dose] = {}
    for entry in routes:
        if isinstance(entry, str):
            if entry == "local":
                raise DosingError("route 'local' needs its target: pass LocalInjection(organ=..., space=...) instead.")
            dose = route_dose(entry, dose_particles, duration_h=infusion_duration_h if entry == "iv_infusion" else None)
        else:
            dose = as_regimen(entry).doses[0]
        label = f"local:{dose.state}" if isinstance(dose, LocalInjection) else dose.route
        if label in doses:
            raise InputError(f"route {label!r} is listed twice.")
        doses[label] = dose
    reference = "iv_bolus"
    if reference not in doses:
        doses = {reference: IVBolus(dose_particles=dose_particles), **doses}
    results = {label: simulate(params, dose, t) for label, dose in doses.items()}
    aucs = {label: auc_to_infinity(params, dose) for label, dose in doses.items()}
    aucs_t = {label: auc_to_time(params, dose, float(t[-1])) for label, dose in doses.items()}
    return RouteComparison(
        results=results,
        auc_inf_percent_id_h=aucs,
        auc_0_t_percent_id_h=aucs_t,
        dose_particles=float(dose_particles),
        reference=reference,
        metadata={"species": params.species, "ev": params.ev},
    )
