"""The compartment graph: states, the rate matrix and the non-linear uptake term.

States (amounts of intact EVs, particles). *Live* states:

- ``blood_venous``, ``blood_arterial``: the circulating pools;
- for each organ *i* in ``lung, liver, spleen, kidney, brain, rest``: ``i_vascular`` (blood in
  the organ), ``i_tissue`` (interstitial and parenchymal space) and ``i_cells``
  (cell-associated / phagocytosed EVs).

- administration depots: ``lung_airspace`` (intratracheal; part of the lung), and the sites
  ``nasal_cavity`` (intranasal), ``peritoneal_cavity`` (intraperitoneal) and
  ``subcutaneous_site`` (subcutaneous).

*Sink* states (cumulative elimination): ``degraded_<organ>`` for each organ and
``degraded_<site>`` for each site, ``urine``, ``feces`` (biliary excretion) and ``swallowed``
(mucociliary clearance from the nose or airways; EVs swallowed are taken as lost, since no
data show intact EVs absorbed from the gut).

With :math:`C = A/V` and organ flow :math:`Q_i`, for each organ

.. math::

    \\frac{dA_{v,i}}{dt} &= Q_i (C_{in,i} - C_{v,i}) - PS_i (C_{v,i} - C_{t,i}/K_i)
        - (k_{mac,i}\\, g_i + k_{uv,i}) A_{v,i} + f_{rel,i} k_{rel,i} A_{m,i} \\\\
    \\frac{dA_{t,i}}{dt} &= PS_i (C_{v,i} - C_{t,i}/K_i) - k_{ut,i} A_{t,i}
        + (1 - f_{rel,i}) k_{rel,i} A_{m,i} \\\\
    \\frac{dA_{m,i}}{dt} &= (k_{mac,i}\\, g_i + k_{uv,i}) A_{v,i} + k_{ut,i} A_{t,i} - (k_{rel,i} + k_{deg,i}) A_{m,i}

where :math:`k_{mac,i}` is the clodronate-sensitive (macrophage) uptake and :math:`k_{uv,i}` the
non-macrophage vascular uptake (endothelium, B cells; in the lung, marginated leukocytes and
monocytes: mice and humans have no pulmonary intravascular macrophages),
:math:`PS_i = (PS/Q)_i\\,Q_i`, :math:`g_i = \\max(0, 1 - A_{m,i}/\\mathrm{cap}_i)` (1 in the linear model),
the vascular volume is :math:`f_{vas,i} V_i` and the tissue volume :math:`(1 - f_{vas,i}) V_i`.
Inflow :math:`C_{in,i}` is arterial blood, except for the lung
(venous blood at the whole cardiac output) and the liver (hepatic artery plus the portal
outflows of spleen and gut). Venous blood collects the outflows of liver, kidney, brain and
the non-portal part of rest; arterial blood collects the lung outflow. Urine clears kidney
vascular concentration (:math:`CL_u C_{v,kidney}`), bile clears liver tissue concentration
(:math:`CL_b C_{t,liver}`), and degradation in cells feeds ``degraded_<organ>``.

Depots empty by first-order exits (rates in ``params/routes/``):

.. math::

    \\frac{dA_{nasal}}{dt} &= -(k_{nb} + k_{a,IN} + k_{mcc,IN} + k_{d,IN}) A_{nasal}
        \\quad (k_{nb} \\to \\text{brain tissue},\\ k_{a,IN} \\to \\text{venous blood}) \\\\
    \\frac{dA_{ip}}{dt} &= -(k_{a,IP} + k_{d,IP}) A_{ip},\\quad
    \\frac{dA_{sc}}{dt} = -(k_{a,SC} + k_{d,SC}) A_{sc} \\quad (k_a \\to \\text{venous blood}) \\\\
    \\frac{dA_{air}}{dt} &= -(k_{a,IT} + k_{am} + k_{mcc,IT}) A_{air}
        \\quad (k_{a,IT} \\to \\text{lung vascular},\\ k_{am} \\to \\text{lung cells})
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from exopk.errors import ParameterError
from exopk.model.parameters import ORGANS, ROUTE_PARAMETERS, ModelParameters, derived_values

POOLS: tuple[str, ...] = ("vascular", "tissue", "cells")
SITES: tuple[str, ...] = ("nasal_cavity", "peritoneal_cavity", "subcutaneous_site")
"""Administration sites outside the organs (depots of the intranasal, intraperitoneal and
subcutaneous routes); the intratracheal depot, ``lung_airspace``, belongs to the lung."""

LIVE_STATES: tuple[str, ...] = (
    ("blood_venous", "blood_arterial")
    + tuple(f"{organ}_{pool}" for organ in ORGANS for pool in POOLS)
    + ("lung_airspace",)
    + SITES
)
SINK_STATES: tuple[str, ...] = (
    tuple(f"degraded_{organ}" for organ in ORGANS)
    + tuple(f"degraded_{site}" for site in SITES)
    + ("urine", "feces", "swallowed")
)
STATES: tuple[str, ...] = LIVE_STATES + SINK_STATES
"""All state names, in the column order of ``SimulationResult.amounts_particles``."""

REPORTED_ORGANS: tuple[str, ...] = ("blood",) + ORGANS + SITES + ("eliminated",)
"""Organs (and administration sites) reported to users; they partition the dose."""

TISSUES: tuple[str, ...] = ("blood",) + ORGANS
"""Reported organs with a volume, hence concentrations and %ID/g."""

ELIMINATION_PATHWAYS: tuple[str, ...] = SINK_STATES

ORGAN_POOLS: dict[str, tuple[str, ...]] = {
    organ: tuple(f"{organ}_{pool}" for pool in POOLS) + (("lung_airspace",) if organ == "lung" else ())
    for organ in ORGANS
}
"""Live states of each organ."""

_INDEX = {name: i for i, name in enumerate(STATES)}
N_LIVE = len(LIVE_STATES)
N_SINK = len(SINK_STATES)


_REST_FLOW_PARAMETERS: tuple[str, ...] = (
    "cardiac_output_ml_per_h",
    "liver_hepatic_artery_flow_ml_per_h",
    "spleen_blood_flow_ml_per_h",
    "kidney_blood_flow_ml_per_h",
    "brain_blood_flow_ml_per_h",
    "gut_blood_flow_ml_per_h",
)
"""Rest-of-body flow is cardiac output minus the other arterial inflows (hepatic artery, spleen, kidney, brain)."""


def _volume_parameters() -> dict[str, tuple[str, ...]]:
    """Flat parameters each live state's volume is computed from."""
    rest_volume = (
        ("body_weight_g", "tissue_density_g_per_ml", "blood_volume_ml")
        + tuple(f"{o}_volume_ml" for o in ORGANS if o != "rest")
        + tuple(f"{o}_vascular_fraction" for o in ORGANS)
    )
    # The circulating pools are the total blood less every organ's residual blood.
    blood = rest_volume + ("arterial_blood_fraction",)
    out = {"blood_venous": blood, "blood_arterial": blood}
    for organ in ORGANS:
        vol = rest_volume if organ == "rest" else (f"{organ}_volume_ml",)
        for pool in POOLS:
            out[f"{organ}_{pool}"] = vol + (f"{organ}_vascular_fraction",)
    return out


_VOLUME_PARAMETERS = _volume_parameters()


def state_index(name: str) -> int:
    """Column of state ``name`` in the amounts array."""
    return _INDEX[name]


def organ_membership() -> np.ndarray:
    """Matrix mapping states to reported organs.

    Returns
    -------
    ndarray, shape (n_reported_organs, n_states)
        1 where a state belongs to an organ; ``blood`` is the arterial and venous pools, each
        organ holds its vascular, tissue and cell pools (the lung also its airspace), each
        administration site its depot, ``eliminated`` holds the sinks.
    """
    member = np.zeros((len(REPORTED_ORGANS), len(STATES)))
    member[0, [_INDEX["blood_venous"], _INDEX["blood_arterial"]]] = 1.0
    for k, organ in enumerate(ORGANS, start=1):
        for pool in POOLS:
            member[k, _INDEX[f"{organ}_{pool}"]] = 1.0
    member[REPORTED_ORGANS.index("lung"), _INDEX["lung_airspace"]] = 1.0
    for site in SITES:
        member[REPORTED_ORGANS.index(site), _INDEX[site]] = 1.0
    member[-1, N_LIVE:] = 1.0
    return member


@dataclass(frozen=True, slots=True)
class Volumes:
    """Volumes (mL) used to turn amounts into concentrations, per state and per organ."""

    state_ml: np.ndarray  # (..., n_live)
    organ_ml: np.ndarray  # (..., n_tissues) in TISSUES order; blood is the circulating pools (total - residual)


def _stack_last(columns: Sequence[np.ndarray | float]) -> np.ndarray:
    """Stack scalars or arrays along a new last axis (broadcast first); plain floats take the fast path."""
    if all(type(c) is float for c in columns):  # one parameter set (ModelParameters.values)
        return np.array(columns)
    return np.stack(np.broadcast_arrays(*(np.asarray(c, dtype=float) for c in columns)), axis=-1)


_ORGAN_VOLUME_NAMES = tuple(f"{o}_volume_ml" for o in ORGANS if o != "rest")
_VASCULAR_FRACTION_NAMES = tuple(f"{o}_vascular_fraction" for o in ORGANS)


def _volume_lists(values: Mapping[str, np.ndarray | float], derived: Mapping[str, np.ndarray | float]):
    """State volumes (n_live) and organ volumes (TISSUES order) as lists of scalars or arrays."""
    blood, f_art = derived["circulating_blood_volume_ml"], values["arterial_blood_fraction"]
    state = [blood * (1.0 - f_art), blood * f_art]
    organ = [blood]
    for volume_name, fraction_name in zip(_ORGAN_VOLUME_NAMES + ("",), _VASCULAR_FRACTION_NAMES, strict=True):
        vol = values[volume_name] if volume_name else derived["rest_volume_ml"]
        f_vas = values[fraction_name]
        tissue = vol * (1.0 - f_vas)
        state += [vol * f_vas, tissue, tissue]  # cells share the tissue space
        organ.append(vol)
    # Depots have no blood volume and no flow leaves them: their volume is 0 (a concentration
    # would be infinite, and none is reported).
    state += [0.0] * (1 + len(SITES))
    return state, organ


def _volumes(values: Mapping[str, np.ndarray | float], derived: Mapping[str, np.ndarray | float]) -> Volumes:
    state, organ = _volume_lists(values, derived)
    return Volumes(_stack_last(state), _stack_last(organ))


def volumes(values: Mapping[str, np.ndarray | float]) -> Volumes:
    """Compartment volumes in mL, element-wise over batched values.

    The vascular pool of organ *i* is :math:`f_{vas,i} V_i`, its tissue and cell pools
    :math:`(1 - f_{vas,i}) V_i`; the venous and arterial pools split the circulating blood
    (:func:`~exopk.model.parameters.derived_values`) by ``arterial_blood_fraction``.
    """
    return _volumes(values, derived_values(values))


@dataclass(frozen=True, slots=True)
class Transfer:
    """One first-order transfer of the linear model: ``rate_per_h * A[source]`` moves to ``target``.

    ``parameters`` names the flat parameters the rate is computed from (for exports and
    documentation); ``kind`` is ``"flow"``, ``"exchange"``, ``"uptake"``, ``"release"``,
    ``"elimination"`` or a route-specific label.
    """

    source: str
    target: str
    rate_per_h: np.ndarray  # (n_sets,)
    kind: str
    parameters: tuple[str, ...]


def transfers(values: Mapping[str, np.ndarray | float]) -> list[Transfer]:
    """Every first-order transfer of the linear model, by state name.

    Parameters
    ----------
    values : Mapping[str, float or ndarray, shape (n_sets,)]
        Parameter values by flat name, in internal units; arrays give a batch.

    Returns
    -------
    list of Transfer
        Rates in 1/h with shape (n_sets,). Several transfers may share a source and target;
        :func:`rate_matrices` adds them.
    """
    v = {name: np.atleast_1d(np.asarray(val, dtype=float)) for name, val in values.items()}
    derived = {name: np.atleast_1d(np.asarray(val, dtype=float)) for name, val in derived_values(v).items()}
    n_sets = max(np.broadcast_shapes(*(a.shape for a in v.values())) or (1,))
    vol = volumes(v).state_ml
    vol = np.broadcast_to(vol, (n_sets, N_LIVE))
    idx = _INDEX
    out: list[Transfer] = []

    def move(src: str, dst: str, rate_per_h, kind: str, parameters: tuple[str, ...]) -> None:
        """First-order transfer from state ``src`` to state ``dst`` at ``rate_per_h``."""
        rate = np.broadcast_to(np.asarray(rate_per_h, dtype=float), (n_sets,))
        out.append(Transfer(src, dst, rate, kind, parameters))

    def flow(src: str, dst: str, flow_ml_per_h, kind: str, parameters: tuple[str, ...]) -> None:
        move(src, dst, flow_ml_per_h / vol[:, idx[src]], kind, parameters + _VOLUME_PARAMETERS[src])

    q_co = v["cardiac_output_ml_per_h"]
    flows = {
        "lung": q_co,
        "liver": derived["liver_blood_flow_ml_per_h"],
        "spleen": v["spleen_blood_flow_ml_per_h"],
        "kidney": v["kidney_blood_flow_ml_per_h"],
        "brain": v["brain_blood_flow_ml_per_h"],
        "rest": derived["rest_blood_flow_ml_per_h"],
    }
    flow_names = {
        "lung": ("cardiac_output_ml_per_h",),
        "liver": ("liver_hepatic_artery_flow_ml_per_h", "spleen_blood_flow_ml_per_h", "gut_blood_flow_ml_per_h"),
        "spleen": ("spleen_blood_flow_ml_per_h",),
        "kidney": ("kidney_blood_flow_ml_per_h",),
        "brain": ("brain_blood_flow_ml_per_h",),
        "rest": _REST_FLOW_PARAMETERS,
    }
    q_gut = v["gut_blood_flow_ml_per_h"]

    # Circulation: venous -> lung -> arterial -> organs -> venous; spleen and gut -> liver.
    flow("blood_venous", "lung_vascular", q_co, "flow", flow_names["lung"])
    flow("lung_vascular", "blood_arterial", q_co, "flow", flow_names["lung"])
    flow(
        "blood_arterial",
        "liver_vascular",
        derived["liver_arterial_flow_ml_per_h"],
        "flow",
        ("liver_hepatic_artery_flow_ml_per_h",),
    )
    for organ in ("spleen", "kidney", "brain", "rest"):
        flow("blood_arterial", f"{organ}_vascular", flows[organ], "flow", flow_names[organ])
    flow("spleen_vascular", "liver_vascular", flows["spleen"], "flow", flow_names["spleen"])
    flow("rest_vascular", "liver_vascular", q_gut, "flow", ("gut_blood_flow_ml_per_h",))
    flow(
        "rest_vascular",
        "blood_venous",
        derived["rest_nonportal_flow_ml_per_h"],
        "flow",
        _REST_FLOW_PARAMETERS + ("gut_blood_flow_ml_per_h",),
    )
    for organ in ("liver", "kidney", "brain"):
        flow(f"{organ}_vascular", "blood_venous", flows[organ], "flow", flow_names[organ])

    for organ in ORGANS:
        vas, tis, cel = (f"{organ}_{pool}" for pool in POOLS)
        ps_name = f"{organ}_permeability_fraction_of_flow"
        ps = v[ps_name] * flows[organ]
        flow(vas, tis, ps, "exchange", (ps_name,) + flow_names[organ])
        k_name = f"{organ}_partition_coefficient"
        move(
            tis,
            vas,
            ps / (vol[:, idx[tis]] * v[k_name]),
            "exchange",
            (ps_name, k_name) + flow_names[organ] + _VOLUME_PARAMETERS[tis],
        )
        mac_name = f"{organ}_macrophage_uptake_per_h"
        move(vas, cel, v[mac_name], "uptake", (mac_name,))
        move(vas, cel, v[f"{organ}_uptake_vascular_per_h"], "uptake", (f"{organ}_uptake_vascular_per_h",))
        move(tis, cel, v[f"{organ}_uptake_tissue_per_h"], "uptake", (f"{organ}_uptake_tissue_per_h",))
        rel_name, f_name = f"{organ}_release_per_h", f"{organ}_release_to_vascular_fraction"
        release, f_rel = v[rel_name], v[f_name]
        move(cel, vas, release * f_rel, "release", (rel_name, f_name))
        move(cel, tis, release * (1.0 - f_rel), "release", (rel_name, f_name))
        deg_name = f"{organ}_degradation_per_h"
        move(cel, f"degraded_{organ}", v[deg_name], "elimination", (deg_name,))
    _route_transfers(v, move)
    flow(
        "kidney_vascular",
        "urine",
        v["kidney_urinary_clearance_ml_per_h"],
        "elimination",
        ("kidney_urinary_clearance_ml_per_h",),
    )
    flow(
        "liver_tissue",
        "feces",
        v["liver_biliary_clearance_ml_per_h"],
        "elimination",
        ("liver_biliary_clearance_ml_per_h",),
    )
    return out


def _route_value(v: Mapping[str, np.ndarray], name: str) -> np.ndarray:
    """A route parameter, or 0 when the species has no parameters for that route."""
    return v[name] if name in v else np.zeros(1)


def _route_transfers(v: Mapping[str, np.ndarray], move) -> None:
    """Exits from the administration depots (see ``params/routes/``)."""
    r = functools.partial(_route_value, v)
    n = "intranasal_"
    move("nasal_cavity", "brain_tissue", r(n + "nose_to_brain_per_h"), "route", (n + "nose_to_brain_per_h",))
    move("nasal_cavity", "blood_venous", r(n + "absorption_per_h"), "route", (n + "absorption_per_h",))
    move(
        "nasal_cavity", "swallowed", r(n + "mucociliary_clearance_per_h"), "route", (n + "mucociliary_clearance_per_h",)
    )
    move("nasal_cavity", "degraded_nasal_cavity", r(n + "degradation_per_h"), "route", (n + "degradation_per_h",))
    for route, site in (("intraperitoneal", "peritoneal_cavity"), ("subcutaneous", "subcutaneous_site")):
        k_abs, k_deg = f"{route}_absorption_per_h", f"{route}_degradation_per_h"
        move(site, "blood_venous", r(k_abs), "route", (k_abs,))
        move(site, f"degraded_{site}", r(k_deg), "route", (k_deg,))
    t = "intratracheal_"
    move("lung_airspace", "lung_vascular", r(t + "absorption_per_h"), "route", (t + "absorption_per_h",))
    move("lung_airspace", "lung_cells", r(t + "macrophage_uptake_per_h"), "route", (t + "macrophage_uptake_per_h",))
    move(
        "lung_airspace",
        "swallowed",
        r(t + "mucociliary_clearance_per_h"),
        "route",
        (t + "mucociliary_clearance_per_h",),
    )


def reachable_live_states(values: Mapping[str, np.ndarray | float], entered: np.ndarray) -> np.ndarray:
    """Indices of the live states that EVs entering ``entered`` can ever reach.

    States outside this set (e.g. the depots of routes not dosed) hold exactly zero at all
    times, so the solvers can drop them: eigen-decompositions and products then cost
    ``(n_reached / n_live)^3`` as much. A transfer counts if its rate is non-zero in any set.

    Parameters
    ----------
    values : Mapping[str, float or ndarray]
        Parameter values (a batch is allowed).
    entered : ndarray of bool, shape (n_live,)
        States that receive doses.
    """
    c = _compiled()
    used = np.any(_rates(_terms(values)) != 0.0, axis=0) & (c.target < N_LIVE)
    linked = np.zeros((N_LIVE, N_LIVE), dtype=bool)
    linked[c.target[used], c.source[used]] = True
    return np.flatnonzero(reached_along(linked, entered))


def reached_along(linked: np.ndarray, entered: np.ndarray) -> np.ndarray:
    """Boolean mask of the states reachable from ``entered`` (itself included).

    ``linked[i, j]`` is true when state *j* feeds state *i* (the non-zero off-diagonal pattern
    of a rate matrix).
    """
    reached = np.asarray(entered, dtype=bool).copy()
    frontier = reached.copy()
    while frontier.any():
        new = linked[:, frontier].any(axis=1) & ~reached
        reached |= new
        frontier = new
    return reached


# ---------------------------------------------------------------------------------------
# Compiled rate matrices: the transfers of `transfers()` as index arrays, evaluated at once.
# ---------------------------------------------------------------------------------------

_ONE = "1"
_FLOW_TERMS = {
    "lung": "cardiac_output_ml_per_h",
    "liver": "liver_blood_flow_ml_per_h",  # derived
    "spleen": "spleen_blood_flow_ml_per_h",
    "kidney": "kidney_blood_flow_ml_per_h",
    "brain": "brain_blood_flow_ml_per_h",
    "rest": "rest_blood_flow_ml_per_h",  # derived
}
_DERIVED_TERMS = (
    "liver_blood_flow_ml_per_h",
    "liver_arterial_flow_ml_per_h",
    "rest_blood_flow_ml_per_h",
    "rest_nonportal_flow_ml_per_h",
)


def _rate_table() -> list[tuple[str, str, tuple[str, str], tuple[str, str]]]:
    """``(source, target, numerator, denominator)`` of every transfer, in the order of :func:`transfers`.

    The rate is ``n1 * n2 / (d1 * d2)`` over named terms: stored parameters, the derived flows,
    ``volume:<state>`` (the state's volume), ``1-<name>`` and the constant ``"1"``. The products
    are formed as :func:`transfers` forms them (a factor 1 is exact), so the rates agree bit for bit.
    """
    table: list[tuple[str, str, tuple[str, str], tuple[str, str]]] = []

    def move(src: str, dst: str, a: str, b: str = _ONE) -> None:
        table.append((src, dst, (a, b), (_ONE, _ONE)))

    def flow(src: str, dst: str, a: str, b: str = _ONE) -> None:
        table.append((src, dst, (a, b), (f"volume:{src}", _ONE)))

    flow("blood_venous", "lung_vascular", _FLOW_TERMS["lung"])
    flow("lung_vascular", "blood_arterial", _FLOW_TERMS["lung"])
    flow("blood_arterial", "liver_vascular", "liver_arterial_flow_ml_per_h")
    for organ in ("spleen", "kidney", "brain", "rest"):
        flow("blood_arterial", f"{organ}_vascular", _FLOW_TERMS[organ])
    flow("spleen_vascular", "liver_vascular", _FLOW_TERMS["spleen"])
    flow("rest_vascular", "liver_vascular", "gut_blood_flow_ml_per_h")
    flow("rest_vascular", "blood_venous", "rest_nonportal_flow_ml_per_h")
    for organ in ("liver", "kidney", "brain"):
        flow(f"{organ}_vascular", "blood_venous", _FLOW_TERMS[organ])
    for organ in ORGANS:
        vas, tis, cel = (f"{organ}_{pool}" for pool in POOLS)
        ps = (f"{organ}_permeability_fraction_of_flow", _FLOW_TERMS[organ])
        flow(vas, tis, *ps)
        table.append((tis, vas, ps, (f"volume:{tis}", f"{organ}_partition_coefficient")))
        move(vas, cel, f"{organ}_macrophage_uptake_per_h")
        move(vas, cel, f"{organ}_uptake_vascular_per_h")
        move(tis, cel, f"{organ}_uptake_tissue_per_h")
        move(cel, vas, f"{organ}_release_per_h", f"{organ}_release_to_vascular_fraction")
        move(cel, tis, f"{organ}_release_per_h", f"1-{organ}_release_to_vascular_fraction")
        move(cel, f"degraded_{organ}", f"{organ}_degradation_per_h")
    n = "intranasal_"
    move("nasal_cavity", "brain_tissue", n + "nose_to_brain_per_h")
    move("nasal_cavity", "blood_venous", n + "absorption_per_h")
    move("nasal_cavity", "swallowed", n + "mucociliary_clearance_per_h")
    move("nasal_cavity", "degraded_nasal_cavity", n + "degradation_per_h")
    for route, site in (("intraperitoneal", "peritoneal_cavity"), ("subcutaneous", "subcutaneous_site")):
        move(site, "blood_venous", f"{route}_absorption_per_h")
        move(site, f"degraded_{site}", f"{route}_degradation_per_h")
    t = "intratracheal_"
    move("lung_airspace", "lung_vascular", t + "absorption_per_h")
    move("lung_airspace", "lung_cells", t + "macrophage_uptake_per_h")
    move("lung_airspace", "swallowed", t + "mucociliary_clearance_per_h")
    flow("kidney_vascular", "urine", "kidney_urinary_clearance_ml_per_h")
    flow("liver_tissue", "feces", "liver_biliary_clearance_ml_per_h")
    return table


@dataclass(frozen=True, slots=True)
class _Compiled:
    """The rate table as index arrays into the term columns (see :func:`_terms`)."""

    stored: tuple[str, ...]  # stored parameters read, in column order
    optional: frozenset[str]  # of those, route parameters a species may lack (rate 0)
    one_minus: tuple[str, ...]  # columns 1 - value
    factors: np.ndarray  # (4, n_transfers): columns of n1, n2, d1, d2
    source: np.ndarray  # (n_transfers,) state index
    target: np.ndarray  # (n_transfers,) state index
    entries: np.ndarray  # (2 * n_transfers,) flat index into [K.ravel(), E.ravel()] of -rate, then +rate


@functools.cache
def _compiled() -> _Compiled:
    table = _rate_table()
    terms = [name for _, _, num, den in table for name in num + den]
    one_minus = tuple(dict.fromkeys(name[2:] for name in terms if name.startswith("1-")))
    special = {_ONE, *_DERIVED_TERMS, *(f"1-{name}" for name in one_minus)}
    stored = tuple(dict.fromkeys(n for n in terms if n not in special and not n.startswith("volume:")))
    columns = list(stored) + list(_DERIVED_TERMS) + [f"1-{name}" for name in one_minus] + [_ONE]
    columns += [f"volume:{state}" for state in LIVE_STATES]
    where = {name: k for k, name in enumerate(columns)}
    factors = np.array([[where[name] for name in num + den] for _, _, num, den in table]).T
    source = np.array([_INDEX[src] for src, _, _, _ in table])
    target = np.array([_INDEX[dst] for _, dst, _, _ in table])
    diagonal = source * N_LIVE + source
    to_live = target < N_LIVE
    off = np.where(to_live, target * N_LIVE + source, N_LIVE * N_LIVE + (target - N_LIVE) * N_LIVE + source)
    route_names = {name for names in ROUTE_PARAMETERS.values() for name in names}
    return _Compiled(
        stored=stored,
        optional=frozenset(name for name in stored if name in route_names),
        one_minus=one_minus,
        factors=factors,
        source=source,
        target=target,
        entries=np.concatenate([diagonal, off]),
    )


def _terms(values: Mapping[str, np.ndarray | float]) -> np.ndarray:
    """The term columns of the rate table, shape (n_sets, n_columns)."""
    c = _compiled()
    derived = derived_values(values)
    stored = [values[name] if name in values or name not in c.optional else 0.0 for name in c.stored]
    head = stored + [derived[name] for name in _DERIVED_TERMS] + [1.0 - values[name] for name in c.one_minus]
    columns = _stack_last([*head, 1.0, *_volume_lists(values, derived)[0]])
    return columns.reshape(-1, columns.shape[-1])


def _rates(terms: np.ndarray) -> np.ndarray:
    """Rate of every transfer (1/h), shape (n_sets, n_transfers), from the term columns."""
    n1, n2, d1, d2 = _compiled().factors
    return terms[:, n1] * terms[:, n2] / (terms[:, d1] * terms[:, d2])


def _assemble(rates: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """K and E from the transfer rates: one weighted bincount (sums in the order of ``np.add.at``)."""
    n_sets = rates.shape[0]
    size = N_LIVE * N_LIVE + N_SINK * N_LIVE
    entries = _compiled().entries
    if n_sets > 1:
        entries = (np.arange(n_sets)[:, None] * size + entries).ravel()
    flat = np.bincount(entries, weights=np.concatenate([-rates, rates], axis=1).ravel(), minlength=n_sets * size)
    flat = flat.reshape(n_sets, size)
    K = flat[:, : N_LIVE * N_LIVE].reshape(n_sets, N_LIVE, N_LIVE)
    E = flat[:, N_LIVE * N_LIVE :].reshape(n_sets, N_SINK, N_LIVE)
    return K, E


def rate_matrices(values: Mapping[str, np.ndarray | float]) -> tuple[np.ndarray, np.ndarray]:
    """First-order rate matrices of the linear model.

    The rates are those of :func:`transfers`, computed from a table compiled once (the
    transfers as index arrays into the parameter values, derived flows and volumes), so that
    one parameter set costs a few array operations and a batch the same few.

    Parameters
    ----------
    values : Mapping[str, float or ndarray, shape (n_sets,)]
        Parameter values by flat name, in internal units; arrays give a batch.

    Returns
    -------
    K : ndarray, shape (n_sets, n_live, n_live)
        :math:`dA_{live}/dt = K A_{live}` (per hour). Column sums are minus the loss rates.
    E : ndarray, shape (n_sets, n_sink, n_live)
        :math:`dA_{sink}/dt = E A_{live}`; ``-K.sum(axis=1) == E.sum(axis=1)`` (mass balance).
    """
    return _assemble(_rates(_terms(values)))


def _read_only(array: np.ndarray) -> np.ndarray:
    array.flags.writeable = False
    return array


def linear_system(params: ModelParameters) -> tuple[np.ndarray, np.ndarray]:
    """``K``, ``E`` of one parameter set (its base values; subpopulations ignored), built once per set.

    Returns
    -------
    K : ndarray, shape (n_live, n_live)
    E : ndarray, shape (n_sink, n_live)
        As :func:`rate_matrices` for one set; read-only (kept on the frozen ``params``).
    """

    def build() -> tuple[np.ndarray, np.ndarray]:
        K, E = rate_matrices(params.values)
        return _read_only(K[0]), _read_only(E[0])

    return params.cached("linear_system", build)


def parameter_volumes(params: ModelParameters) -> Volumes:
    """:func:`volumes` of one parameter set, computed once per set (read-only arrays)."""

    def build() -> Volumes:
        vol = volumes(params.values)
        return Volumes(_read_only(vol.state_ml), _read_only(vol.organ_ml))

    return params.cached("volumes", build)


@dataclass(frozen=True, slots=True)
class CapacityTerms:
    """Non-linear part of the model: capacity-limited macrophage uptake.

    For each organ with a finite capacity, the linear macrophage uptake :math:`k_{mac} A_v` (already in
    ``K``) is multiplied by :math:`g = \\max(0, 1 - A_m/\\mathrm{cap})`, i.e. the term
    :math:`-k_{mac} \\min(1, A_m/\\mathrm{cap}) A_v` moves back from cells to the vascular space.

    In a mixture of EV subpopulations stacked into one system (:func:`mixture_system`), every
    subpopulation has its own vascular and cell pools and its own uptake constant, but the
    macrophages are shared: :math:`A_m` is the sum of the organ's cell pools over the
    subpopulations (``saturating``).
    """

    vascular: np.ndarray  # (k,) state indices of vascular pools
    cells: np.ndarray  # (k,) state indices of the cell pools the uptake fills
    uptake_per_h: np.ndarray  # (k,)
    capacity_particles: np.ndarray  # (k,)
    saturating: np.ndarray | None = None  # (k, n_pop) cell pools whose sum saturates entry k; None: `cells`

    @property
    def is_linear(self) -> bool:
        """False: these terms are the non-linear part (an empty set is never built)."""
        return self.vascular.size == 0

    def _filled(self, live: np.ndarray) -> np.ndarray:
        if self.saturating is None:
            return np.maximum(live[self.cells], 0.0)
        return np.maximum(live[self.saturating], 0.0).sum(axis=1)

    def correction(self, live: np.ndarray) -> np.ndarray:
        """Correction to ``K @ live`` from saturation, shape (n_live,)."""
        out = np.zeros_like(live)
        sat = np.minimum(1.0, self._filled(live) / self.capacity_particles)
        flux = self.uptake_per_h * sat * live[self.vascular]
        np.add.at(out, self.vascular, flux)
        np.subtract.at(out, self.cells, flux)
        return out

    def jacobian(self, live: np.ndarray) -> np.ndarray:
        """Jacobian of :meth:`correction` with respect to the live states."""
        jac = np.zeros((live.size, live.size))
        filled = self._filled(live)
        sat = np.minimum(1.0, filled / self.capacity_particles)
        # sat is flat below 0 (clipped) and above the capacity: slope 1/cap only in between.
        inside = (filled > 0.0) & (filled < self.capacity_particles)
        d_sat = np.where(inside, 1.0 / self.capacity_particles, 0.0)
        pools = self.cells[:, None] if self.saturating is None else self.saturating
        for k in range(self.vascular.size):
            v, m = self.vascular[k], self.cells[k]
            k_uv = self.uptake_per_h[k]
            jac[v, v] += k_uv * sat[k]
            jac[m, v] -= k_uv * sat[k]
            for j in pools[k]:
                if live[j] > 0.0:
                    jac[v, j] += k_uv * d_sat[k] * live[v]
                    jac[m, j] -= k_uv * d_sat[k] * live[v]
        return jac


def capacity_terms(params: ModelParameters) -> CapacityTerms:
    """Capacity-limited uptake terms for the organs with a finite capacity."""
    organs = [o for o in ORGANS if np.isfinite(params.values[f"{o}_capacity_particles"])]
    return CapacityTerms(
        vascular=np.array([_INDEX[f"{o}_vascular"] for o in organs], dtype=int),
        cells=np.array([_INDEX[f"{o}_cells"] for o in organs], dtype=int),
        uptake_per_h=np.array([params.values[f"{o}_macrophage_uptake_per_h"] for o in organs]),
        capacity_particles=np.array([params.values[f"{o}_capacity_particles"] for o in organs]),
    )


@dataclass(frozen=True, slots=True)
class MixtureSystem:
    """EV subpopulations stacked into one block-diagonal system (see :func:`mixture_system`).

    State ``j`` of subpopulation ``p`` is row ``p * n_live + j`` of ``K``; sink ``i`` of
    subpopulation ``p`` is row ``p * n_sink + i`` of ``E``.
    """

    K: np.ndarray  # (n_pop * n_live, n_pop * n_live)
    E: np.ndarray  # (n_pop * n_sink, n_pop * n_live)
    shares: np.ndarray  # (n_pop,)
    capacity: CapacityTerms | None

    @property
    def n_pop(self) -> int:
        """Number of subpopulations."""
        return self.shares.size

    def split(self, amounts: np.ndarray) -> np.ndarray:
        """Stacked (n_times, n_pop*(n_live+n_sink)) amounts -> (n_pop, n_times, n_live+n_sink)."""
        n_t, n_live, n_sink = amounts.shape[0], N_LIVE, N_SINK
        live = amounts[:, : self.n_pop * n_live].reshape(n_t, self.n_pop, n_live)
        sink = amounts[:, self.n_pop * n_live :].reshape(n_t, self.n_pop, n_sink)
        return np.concatenate([live, sink], axis=2).transpose(1, 0, 2)


def mixture_system(parts: Sequence[ModelParameters], shares: Sequence[float]) -> MixtureSystem:
    """One block-diagonal linear system for a mixture of EV subpopulations.

    Each subpopulation keeps its own states and rate constants; the blocks do not exchange EVs,
    so the linear model's solution is the sum of the blocks (superposition). Organs with a
    finite ``capacity_particles`` couple the blocks through the macrophages they share: the
    capacity terms saturate on the sum of the organ's cell pools over the subpopulations
    (the capacities must be the same in every part).

    Parameters
    ----------
    parts : sequence of ModelParameters
        One parameter set per subpopulation (:meth:`ModelParameters.parts`).
    shares : sequence of float
        Fraction of every dose that is each subpopulation.
    """
    n_pop = len(parts)
    K_all, E_all = _assemble(_rates(np.concatenate([_terms(p.values) for p in parts])))
    K = np.zeros((n_pop * N_LIVE, n_pop * N_LIVE))
    E = np.zeros((n_pop * N_SINK, n_pop * N_LIVE))
    for p in range(n_pop):
        K[p * N_LIVE : (p + 1) * N_LIVE, p * N_LIVE : (p + 1) * N_LIVE] = K_all[p]
        E[p * N_SINK : (p + 1) * N_SINK, p * N_LIVE : (p + 1) * N_LIVE] = E_all[p]
    capacity = None
    if not parts[0].is_linear:
        terms = [capacity_terms(p) for p in parts]
        if any(not np.array_equal(t.capacity_particles, terms[0].capacity_particles) for t in terms):
            raise ParameterError("the subpopulations of a mixture must share the organs' `capacity_particles`.")
        offsets = [p * N_LIVE for p in range(n_pop)]
        cells = np.stack([t.cells + off for t, off in zip(terms, offsets, strict=True)], axis=1)  # (k, n_pop)
        capacity = CapacityTerms(
            vascular=np.concatenate([t.vascular + off for t, off in zip(terms, offsets, strict=True)]),
            cells=cells.T.reshape(-1),
            uptake_per_h=np.concatenate([t.uptake_per_h for t in terms]),
            capacity_particles=np.concatenate([t.capacity_particles for t in terms]),
            saturating=np.tile(cells, (n_pop, 1)),
        )
    return MixtureSystem(K=K, E=E, shares=np.asarray(shares, dtype=float), capacity=capacity)


def parameter_mixture(params: ModelParameters) -> MixtureSystem:
    """:func:`mixture_system` of the subpopulations of ``params`` (:meth:`~ModelParameters.parts`), built
    once per set; ``K`` and ``E`` are read-only."""

    def build() -> MixtureSystem:
        parts = params.parts()
        mixture = mixture_system([p for _, _, p in parts], [w for _, w, _ in parts])
        _read_only(mixture.K)
        _read_only(mixture.E)
        return mixture

    return params.cached("mixture_system", build)
