"""Hypothesis strategies: parameter sets and doses within physiological bounds.

Rates are drawn log-uniformly (by exponent), so that Hypothesis probes both edges of each
range, where stiffness and round-off are worst.
"""

from __future__ import annotations

import functools
import math

from hypothesis import strategies as st

import exopk
from exopk.model.parameters import ORGANS, ROUTE_PARAMETERS


def log_uniform(low: float, high: float) -> st.SearchStrategy[float]:
    """Floats between ``low`` and ``high``, uniform in their base-10 exponent."""
    return st.floats(min_value=math.log10(low), max_value=math.log10(high)).map(lambda e: 10.0**e)


rate_per_h = log_uniform(1e-3, 1e3)
"""First-order EV rates (uptake, degradation, release): minutes to weeks."""
permeability_fraction_of_flow = log_uniform(1e-6, 1.0)
"""PS / Q: from the blood-brain barrier (1e-6) to flow-limited exchange (1)."""
partition_coefficient = log_uniform(1e-2, 10.0)
release_to_vascular_fraction = st.floats(min_value=0.0, max_value=1.0)
depot_rate_per_h = log_uniform(1e-5, 1e2)
"""Exits from administration depots: nose-to-brain (1e-5 /h) to fast mucociliary clearance."""

dose_particles = log_uniform(1e6, 1e13)
"""Doses from tracer amounts to the largest given to mice."""
dose_time_h = st.floats(min_value=0.0, max_value=24.0)
infusion_duration_h = log_uniform(1e-2, 24.0)


@functools.cache
def default_parameters() -> exopk.ModelParameters:
    """The bundled parameters, loaded once (Hypothesis calls the strategy many times)."""
    return exopk.load_parameters("mouse", "msc")


@st.composite
def model_parameters(draw, organs: tuple[str, ...] = exopk.ORGANS) -> exopk.ModelParameters:
    """Default physiology with every organ's EV kinetic constants drawn independently.

    Capacities stay infinite: these are parameter sets of the linear model.
    """
    changes: dict[str, float] = {}
    for organ in organs:
        changes[f"{organ}_uptake_vascular_per_h"] = draw(rate_per_h)
        changes[f"{organ}_macrophage_uptake_per_h"] = draw(rate_per_h)
        changes[f"{organ}_uptake_tissue_per_h"] = draw(rate_per_h)
        changes[f"{organ}_degradation_per_h"] = draw(rate_per_h)
        changes[f"{organ}_release_per_h"] = draw(rate_per_h)
        changes[f"{organ}_release_to_vascular_fraction"] = draw(release_to_vascular_fraction)
        changes[f"{organ}_permeability_fraction_of_flow"] = draw(permeability_fraction_of_flow)
        changes[f"{organ}_partition_coefficient"] = draw(partition_coefficient)
    for names in ROUTE_PARAMETERS.values():
        for name in names:
            changes[name] = draw(depot_rate_per_h)
    return default_parameters().replace(source="drawn by Hypothesis", **changes)


@st.composite
def iv_boluses(draw, t_h: st.SearchStrategy[float] = dose_time_h) -> exopk.IVBolus:
    """An IV bolus of any physiological size at any time in the first day."""
    return exopk.IVBolus(dose_particles=draw(dose_particles), t_h=draw(t_h))


@st.composite
def iv_infusions(draw, t_h: st.SearchStrategy[float] = dose_time_h) -> exopk.IVInfusion:
    """An IV infusion from 36 s to a day long, starting in the first day."""
    return exopk.IVInfusion(dose_particles=draw(dose_particles), duration_h=draw(infusion_duration_h), t_h=draw(t_h))


@st.composite
def depot_doses(draw, t_h: st.SearchStrategy[float] = dose_time_h):
    """An intranasal, intraperitoneal, subcutaneous, intratracheal or local dose."""
    kind = draw(st.sampled_from((exopk.Intranasal, exopk.Intraperitoneal, exopk.Subcutaneous, exopk.Intratracheal)))
    return kind(dose_particles=draw(dose_particles), t_h=draw(t_h))


@st.composite
def local_injections(draw, t_h: st.SearchStrategy[float] = dose_time_h) -> exopk.LocalInjection:
    """An injection into any organ's vascular or tissue space."""
    return exopk.LocalInjection(
        dose_particles=draw(dose_particles),
        organ=draw(st.sampled_from(ORGANS)),
        space=draw(st.sampled_from(("vascular", "tissue"))),
        t_h=draw(t_h),
    )


def doses(t_h: st.SearchStrategy[float] = dose_time_h):
    """A single dose by any route."""
    return st.one_of(iv_boluses(t_h), iv_infusions(t_h), depot_doses(t_h), local_injections(t_h))


def regimens(max_doses: int = 3) -> st.SearchStrategy[exopk.Regimen]:
    """One to ``max_doses`` doses of any routes, at any times in the first day."""
    return st.lists(doses(), min_size=1, max_size=max_doses).map(exopk.Regimen)
