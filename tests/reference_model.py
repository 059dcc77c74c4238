"""An independent transcription of the model equations, for checking the rate matrices and solvers.

Written from the equations in the docstring of ``exopk.model.graph`` (not from its code): flows,
volumes and every transfer are spelled out term by term, so that a wrong sign, a wrong
volume or a missing flow in ``rate_matrices`` shows up as a difference. Capacity-limited
uptake (:math:`k_{uv} g A_v` with :math:`g = \\max(0, 1 - A_m/\\mathrm{cap})`) is written here
too, from the same docstring, not from ``CapacityTerms``.

Amounts may be one state vector, shape (n_states,), or several as columns, shape
(n_states, k): every term is elementwise, so ``solve_ivp(..., vectorized=True)`` can use it.
"""

from __future__ import annotations

import numpy as np

import exopk

ORGANS = ("lung", "liver", "spleen", "kidney", "brain", "rest")


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


def reference_rhs(params: exopk.ModelParameters, amounts: np.ndarray, *, saturable: bool = True) -> np.ndarray:
    """Time derivative of all states (live, then sinks), in ``exopk.model.STATES`` order.

    ``saturable=False`` drops the capacity limit (:math:`g = 1`): the linear model whatever the
    capacities, as :func:`reference_matrix` needs.
    """
    v = params.values
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
        # Saturation of the macrophages: free capacity g = max(0, 1 - A_m/cap); cap = inf gives g = 1.
        capacity = v[f"{o}_capacity_particles"]
        g = np.maximum(0.0, 1.0 - a_m / capacity) if saturable and np.isfinite(capacity) else 1.0
        out[f"{o}_vascular"] = inflow[o] - q[o] * c_v[o] - exchange - (k_mac * g + k_uv) * a_v + f_rel * k_rel * a_m
        out[f"{o}_tissue"] = exchange - k_ut * a_t + (1 - f_rel) * k_rel * a_m
        out[f"{o}_cells"] = (k_mac * g + k_uv) * a_v + k_ut * a_t - (k_rel + k_deg) * a_m
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
    """The square matrix of the linear model (:func:`reference_rhs` without saturation), column by column."""
    n = len(exopk.model.STATES)
    return np.column_stack([reference_rhs(params, np.eye(n)[j], saturable=False) for j in range(n)])


def reference_saturation(params: exopk.ModelParameters):
    """The non-linear part of :func:`reference_rhs`, alone, as a function of the amounts.

    With capacity, vascular uptake is :math:`k_{uv} g A_v` instead of :math:`k_{uv} A_v`, so
    :math:`k_{uv} (1 - g) A_v` stays in the vascular space instead of entering the cells. Then
    ``reference_rhs(p, x) == reference_matrix(p) @ x + reference_saturation(p)(x)``, which an
    integrator evaluates ~50 times faster than :func:`reference_rhs` (its constants are looked
    up once, here).
    """
    v = params.values
    limited = [o for o in ORGANS if np.isfinite(v[f"{o}_capacity_particles"])]
    i_v = np.array([exopk.model.STATES.index(f"{o}_vascular") for o in limited], dtype=int)
    i_m = np.array([exopk.model.STATES.index(f"{o}_cells") for o in limited], dtype=int)
    k_uv = np.array([v[f"{o}_uptake_vascular_per_h"] for o in limited])
    capacity = np.array([v[f"{o}_capacity_particles"] for o in limited])

    def saturation(amounts: np.ndarray) -> np.ndarray:
        """Shape (n_states,) or (n_states, k), as ``amounts``."""
        out = np.zeros_like(amounts, dtype=float)
        column = (slice(None),) * (amounts.ndim - 1)
        a_v, a_m = amounts[(i_v, *column)], amounts[(i_m, *column)]
        k = k_uv.reshape((-1,) + (1,) * (amounts.ndim - 1))
        cap = capacity.reshape(k.shape)
        g = np.maximum(0.0, 1.0 - a_m / cap)
        kept = k * (1.0 - g) * a_v
        out[(i_v, *column)] += kept
        out[(i_m, *column)] -= kept
        return out

    return saturation
