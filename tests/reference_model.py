"""An independent transcription of the model equations, for checking the rate matrices and solvers.

Written from the equations in the docstring of ``exopk.model.graph`` (not from its code): flows,
volumes and every transfer are spelled out term by term, so that a wrong sign, a wrong
volume or a missing flow in ``rate_matrices`` shows up as a difference. Capacity-limited
macrophage uptake (:math:`k_{mac} g A_v` with :math:`g = \\max(0, 1 - A_m/\\mathrm{cap})`) is
written here too, from the same docstring, not from ``CapacityTerms``.

A mixture of EV subpopulations (``params.subpopulations``) has one full set of states per
subpopulation, each with that subpopulation's constants (``params.parts()``). The macrophages
are shared: :math:`A_m` in :math:`g` is the organ's cells summed over the subpopulations, and
each subpopulation's macrophage uptake :math:`k_{mac,p} A_{v,p}` is multiplied by that one
:math:`g`. Layout (this module's own, not the package's): population-major, state ``s`` of
subpopulation ``p`` at index ``p * n_states + s`` (``exopk.model.STATES`` order, live then
sinks); a single population is the plain ``STATES`` vector.

Amounts may be one state vector, shape (n,), or several as columns, shape (n, k), with
``n = n_populations * n_states``: every term is elementwise, so ``solve_ivp(...,
vectorized=True)`` can use it.
"""

from __future__ import annotations

import numpy as np
from scipy.integrate import solve_ivp

import exopk

ORGANS = ("lung", "liver", "spleen", "kidney", "brain", "rest")
STATE_INDEX = {name: i for i, name in enumerate(exopk.model.STATES)}


def reference_derived(v) -> dict[str, float]:
    """Rest volume and flows, from mass and flow balance."""
    # Blood is counted once: body = named organs + rest + circulating blood, and circulating
    # blood = total blood - residual (vascular) blood of every organ, rest included.
    named = [o for o in ORGANS if o != "rest"]
    organ_volume = sum(v[f"{o}_volume_ml"] for o in named)
    residual = sum(v[f"{o}_volume_ml"] * v[f"{o}_vascular_fraction"] for o in named)
    f_rest = v["rest_vascular_fraction"]
    body_ml = v["body_weight_g"] / v["tissue_density_g_per_ml"]
    # body = organs + V_rest + (blood - residual - f_rest V_rest)  =>  solve for V_rest
    rest_volume = (body_ml - organ_volume - v["blood_volume_ml"] + residual) / (1.0 - f_rest)
    circulating = v["blood_volume_ml"] - residual - f_rest * rest_volume
    q_ha = v["liver_hepatic_artery_flow_ml_per_h"]
    q_rest = (
        v["cardiac_output_ml_per_h"]
        - q_ha
        - v["spleen_blood_flow_ml_per_h"]
        - v["kidney_blood_flow_ml_per_h"]
        - v["brain_blood_flow_ml_per_h"]
    )
    return {
        "rest_volume_ml": rest_volume,
        "circulating_blood_volume_ml": circulating,
        "liver_blood_flow_ml_per_h": q_ha + v["spleen_blood_flow_ml_per_h"] + v["gut_blood_flow_ml_per_h"],
        "liver_arterial_flow_ml_per_h": q_ha,
        "rest_blood_flow_ml_per_h": q_rest,
        "lung_blood_flow_ml_per_h": v["cardiac_output_ml_per_h"],
        "rest_nonportal_flow_ml_per_h": q_rest - v["gut_blood_flow_ml_per_h"],
    }


def reference_populations(params: exopk.ModelParameters) -> list[tuple[float, dict[str, float]]]:
    """``(share, values)`` per subpopulation, values with the subpopulation's multipliers applied."""
    if not params.subpopulations:
        return [(1.0, dict(params.values))]
    return [(share, dict(part.values)) for _name, share, part in params.parts()]


def _capacities(populations) -> dict[str, float]:
    """Capacity of each organ's macrophages (one set of cells: the same in every subpopulation)."""
    caps = {o: populations[0][1][f"{o}_capacity_particles"] for o in ORGANS}
    for _, values in populations:
        assert all(values[f"{o}_capacity_particles"] == caps[o] for o in ORGANS)
    return caps


def reference_rhs(params: exopk.ModelParameters, amounts: np.ndarray, *, saturable: bool = True) -> np.ndarray:
    """Time derivative of all states, population-major (see the module docstring).

    ``saturable=False`` drops the capacity limit (:math:`g = 1`): the linear model whatever the
    capacities, as :func:`reference_matrix` needs.
    """
    populations = reference_populations(params)
    n = len(exopk.model.STATES)
    amounts = np.asarray(amounts, dtype=float)
    assert amounts.shape[0] == len(populations) * n, "one set of states per subpopulation"
    blocks = [amounts[k * n : (k + 1) * n] for k in range(len(populations))]
    # Shared macrophages: free capacity from the cells of every subpopulation together.
    g = {}
    for o, cap in _capacities(populations).items():
        occupied = sum(b[exopk.model.STATES.index(f"{o}_cells")] for b in blocks)
        g[o] = np.maximum(0.0, 1.0 - occupied / cap) if saturable and np.isfinite(cap) else 1.0
    return np.concatenate([_population_rhs(values, b, g) for (_, values), b in zip(populations, blocks, strict=True)])


def _population_rhs(v: dict[str, float], amounts: np.ndarray, g: dict) -> np.ndarray:
    """One subpopulation's derivative, given the macrophages' free capacity ``g`` per organ."""
    d = reference_derived(v)
    a = dict(zip(exopk.model.STATES, amounts, strict=True))
    out = dict.fromkeys(exopk.model.STATES, 0.0)
    co = v["cardiac_output_ml_per_h"]
    q = {
        "lung": co,
        "liver": d["liver_blood_flow_ml_per_h"],
        "spleen": v["spleen_blood_flow_ml_per_h"],
        "kidney": v["kidney_blood_flow_ml_per_h"],
        "brain": v["brain_blood_flow_ml_per_h"],
        "rest": d["rest_blood_flow_ml_per_h"],
    }
    q_gut = v["gut_blood_flow_ml_per_h"]
    q_ha = d["liver_arterial_flow_ml_per_h"]

    blood = d["circulating_blood_volume_ml"]
    c_ven = a["blood_venous"] / (blood * (1 - v["arterial_blood_fraction"]))
    c_art = a["blood_arterial"] / (blood * v["arterial_blood_fraction"])
    vol_v, vol_t, c_v, c_t = {}, {}, {}, {}
    for o in ORGANS:
        vol = d["rest_volume_ml"] if o == "rest" else v[f"{o}_volume_ml"]
        vol_v[o] = vol * v[f"{o}_vascular_fraction"]
        vol_t[o] = vol * (1 - v[f"{o}_vascular_fraction"])
        c_v[o] = a[f"{o}_vascular"] / vol_v[o]
        c_t[o] = a[f"{o}_tissue"] / vol_t[o]

    # Inflow amounts per hour, Q_i * C_in,i.
    inflow = {
        "lung": co * c_ven,
        "liver": q_ha * c_art + q["spleen"] * c_v["spleen"] + q_gut * c_v["rest"],
        "spleen": q["spleen"] * c_art,
        "kidney": q["kidney"] * c_art,
        "brain": q["brain"] * c_art,
        "rest": q["rest"] * c_art,
    }
    for o in ORGANS:
        a_v, a_t, a_m = a[f"{o}_vascular"], a[f"{o}_tissue"], a[f"{o}_cells"]
        ps = v[f"{o}_permeability_fraction_of_flow"] * q[o]
        exchange = ps * (c_v[o] - c_t[o] / v[f"{o}_partition_coefficient"])
        k_uv, k_ut = v[f"{o}_uptake_vascular_per_h"], v[f"{o}_uptake_tissue_per_h"]
        k_rel, f_rel = v[f"{o}_release_per_h"], v[f"{o}_release_to_vascular_fraction"]
        k_deg = v[f"{o}_degradation_per_h"]
        k_mac = v[f"{o}_macrophage_uptake_per_h"]  # clodronate-sensitive; same cells pool
        # Saturation of the macrophages: g = max(0, 1 - A_m/cap) (A_m of all subpopulations); cap = inf: g = 1.
        uptake = (k_mac * g[o] + k_uv) * a_v
        out[f"{o}_vascular"] = inflow[o] - q[o] * c_v[o] - exchange - uptake + f_rel * k_rel * a_m
        out[f"{o}_tissue"] = exchange - k_ut * a_t + (1 - f_rel) * k_rel * a_m
        out[f"{o}_cells"] = uptake + k_ut * a_t - (k_rel + k_deg) * a_m
        out[f"degraded_{o}"] = k_deg * a_m

    urine = v["kidney_urinary_clearance_ml_per_h"] * c_v["kidney"]
    bile = v["liver_biliary_clearance_ml_per_h"] * c_t["liver"]
    out["kidney_vascular"] -= urine
    out["liver_tissue"] -= bile
    out["urine"] = urine
    out["feces"] = bile

    out["blood_venous"] = (
        q["liver"] * c_v["liver"]
        + q["kidney"] * c_v["kidney"]
        + q["brain"] * c_v["brain"]
        + (q["rest"] - q_gut) * c_v["rest"]
        - co * c_ven
    )
    out["blood_arterial"] = co * c_v["lung"] - co * c_art

    # Administration depots (first-order exits; a species without a route's parameters has none).
    def r(name: str) -> float:
        return v.get(name, 0.0)

    nasal = a["nasal_cavity"]
    k_nb, k_in_a = r("intranasal_nose_to_brain_per_h"), r("intranasal_absorption_per_h")
    k_in_mcc, k_in_d = r("intranasal_mucociliary_clearance_per_h"), r("intranasal_degradation_per_h")
    out["nasal_cavity"] = -(k_nb + k_in_a + k_in_mcc + k_in_d) * nasal
    out["brain_tissue"] += k_nb * nasal
    out["blood_venous"] += k_in_a * nasal
    out["degraded_nasal_cavity"] = k_in_d * nasal
    for route, site in (("intraperitoneal", "peritoneal_cavity"), ("subcutaneous", "subcutaneous_site")):
        k_a, k_d = r(f"{route}_absorption_per_h"), r(f"{route}_degradation_per_h")
        out[site] = -(k_a + k_d) * a[site]
        out["blood_venous"] += k_a * a[site]
        out[f"degraded_{site}"] = k_d * a[site]
    air = a["lung_airspace"]
    k_it_a, k_am = r("intratracheal_absorption_per_h"), r("intratracheal_macrophage_uptake_per_h")
    k_it_mcc = r("intratracheal_mucociliary_clearance_per_h")
    out["lung_airspace"] = -(k_it_a + k_am + k_it_mcc) * air
    out["lung_vascular"] += k_it_a * air
    out["lung_cells"] += k_am * air
    out["swallowed"] = k_in_mcc * nasal + k_it_mcc * air
    shape = np.shape(amounts)[1:]
    return np.array([np.broadcast_to(out[name], shape) for name in exopk.model.STATES])


def reference_matrix(params: exopk.ModelParameters) -> np.ndarray:
    """The square matrix of the linear model (:func:`reference_rhs` without saturation)."""
    n = len(reference_populations(params)) * len(exopk.model.STATES)
    return reference_rhs(params, np.eye(n), saturable=False)  # column j: the derivative at unit amount in state j


def reference_saturation(params: exopk.ModelParameters):
    """The non-linear part of :func:`reference_rhs`, alone, as a function of the amounts.

    With capacity, macrophage uptake is :math:`k_{mac,p} g A_{v,p}` instead of
    :math:`k_{mac,p} A_{v,p}`, so :math:`k_{mac,p} (1 - g) A_{v,p}` stays in the vascular space
    instead of entering the cells, with :math:`1 - g = \\min(1, \\sum_p A_{m,p}/\\mathrm{cap})`
    (the cells of all subpopulations). Then
    ``reference_rhs(p, x) == reference_matrix(p) @ x + reference_saturation(p)(x)``, which an
    integrator evaluates ~50 times faster than :func:`reference_rhs` (its constants are looked
    up once, here).
    """
    populations = reference_populations(params)
    n = len(exopk.model.STATES)
    caps = _capacities(populations)
    limited = [o for o in ORGANS if np.isfinite(caps[o])]
    capacity = np.array([caps[o] for o in limited])
    # Indices per (subpopulation, limited organ).
    i_v = np.array([[k * n + STATE_INDEX[f"{o}_vascular"] for o in limited] for k in range(len(populations))], int)
    i_m = np.array([[k * n + STATE_INDEX[f"{o}_cells"] for o in limited] for k in range(len(populations))], int)
    k_mac = np.array([[values[f"{o}_macrophage_uptake_per_h"] for o in limited] for _, values in populations])

    def saturation(amounts: np.ndarray) -> np.ndarray:
        """Shape (n,) or (n, k), as ``amounts``."""
        out = np.zeros_like(amounts, dtype=float)
        extra = (1,) * (amounts.ndim - 1)
        occupied = amounts[i_m].sum(axis=0)  # (n_limited, ...): cells of every subpopulation
        taken = np.minimum(1.0, occupied / capacity.reshape(-1, *extra))  # 1 - g
        kept = k_mac.reshape(*k_mac.shape, *extra) * taken * amounts[i_v]  # (n_pop, n_limited, ...)
        np.add.at(out, i_v, kept)
        np.subtract.at(out, i_m, kept)
        return out

    return saturation


def reference_solution(params: exopk.ModelParameters, doses, t_h: np.ndarray) -> np.ndarray:
    """Radau on the hand-written right-hand side, restarted at every dose time and infusion end.

    Shape (n_times, n_populations * n_states), population-major. The right-hand side is
    evaluated as ``reference_matrix @ x + reference_saturation(x)``, equal to ``reference_rhs``
    (tested) and ~100 times cheaper. Doses are placed by hand, each subpopulation receiving its
    share: IV boluses and infusions into venous blood, intraperitoneal doses into the
    peritoneal cavity.
    """
    R = reference_matrix(params)
    saturation = reference_saturation(params)
    n = len(exopk.model.STATES)
    shares = [share for share, _ in reference_populations(params)]
    venous = [k * n + STATE_INDEX["blood_venous"] for k in range(len(shares))]
    peritoneal = [k * n + STATE_INDEX["peritoneal_cavity"] for k in range(len(shares))]
    dose_total = sum(d.dose_particles for d in doses)
    breaks = sorted({0.0, float(t_h[-1])} | {d.t_h for d in doses} | {d.end_h for d in doses if d.end_h < t_h[-1]})
    y = np.zeros(len(shares) * n)
    out = np.zeros((t_h.size, y.size))
    for start, stop in zip(breaks[:-1], breaks[1:], strict=True):
        for d in doses:
            if d.t_h == start and isinstance(d, exopk.IVBolus):
                y[venous] += np.multiply(shares, d.dose_particles)
            elif d.t_h == start and isinstance(d, exopk.Intraperitoneal):
                y[peritoneal] += np.multiply(shares, d.dose_particles)
        u = np.zeros_like(y)
        for d in doses:
            if isinstance(d, exopk.IVInfusion) and d.t_h <= start < d.end_h:
                u[venous] += np.multiply(shares, d.rate_particles_per_h)
        out[t_h == start] = y
        inside = (t_h > start) & (t_h <= stop)
        sol = solve_ivp(
            lambda _t, x, u=u: R @ x + saturation(x) + (u[:, None] if x.ndim == 2 else u),
            (0.0, stop - start),  # time since the restart: the system is autonomous
            y,
            method="Radau",
            t_eval=np.unique(np.append(t_h[inside], stop)) - start,
            rtol=1e-12,
            atol=1e-22 * dose_total,
            vectorized=True,  # one call gives the finite-difference Jacobian
        )
        assert sol.success, sol.message
        out[inside] = sol.y[:, : int(inside.sum())].T
        y = sol.y[:, -1]
    return out


def package_order(n_populations: int) -> np.ndarray:
    """Index in the package's stacked mixture state (``exopk.model.graph.mixture_system``: the
    live states of every subpopulation, then the sinks of every subpopulation) of each index of
    this module's population-major layout."""
    n_live, n_sink = len(exopk.model.graph.LIVE_STATES), len(exopk.model.graph.SINK_STATES)
    order = []
    for k in range(n_populations):
        order += [k * n_live + j for j in range(n_live)]
        order += [n_populations * n_live + k * n_sink + i for i in range(n_sink)]
    return np.array(order)
