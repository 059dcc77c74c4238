"""SimulationResult: organs, %ID, %ID/g, concentrations, elimination pathways and tidy tables."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from conftest import DOSE_PARTICLES

import exopk
from exopk.model.graph import N_LIVE

ORGANS_WITH_VOLUME = ("lung", "liver", "spleen", "kidney", "brain", "rest")


def test_states_and_organs(bolus_result, t_h):
    assert bolus_result.organs == (
        "blood",
        "lung",
        "liver",
        "spleen",
        "kidney",
        "brain",
        "rest",
        "nasal_cavity",
        "peritoneal_cavity",
        "subcutaneous_site",
        "eliminated",
    )
    assert bolus_result.organs == exopk.model.REPORTED_ORGANS
    assert len(bolus_result.states) == 36
    assert bolus_result.states[:2] == ("blood_venous", "blood_arterial")
    assert bolus_result.states[2:5] == ("lung_vascular", "lung_tissue", "lung_cells")
    assert bolus_result.states[N_LIVE:] == (
        "degraded_lung",
        "degraded_liver",
        "degraded_spleen",
        "degraded_kidney",
        "degraded_brain",
        "degraded_rest",
        "degraded_nasal_cavity",
        "degraded_peritoneal_cavity",
        "degraded_subcutaneous_site",
        "urine",
        "feces",
        "swallowed",
    )
    assert bolus_result.amounts_particles.shape == (t_h.size, 36)
    np.testing.assert_array_equal(bolus_result.t_h, t_h)
    assert bolus_result.method == "exact"


def test_metadata_names_the_parameter_files(bolus_result, params):
    assert bolus_result.metadata["species"] == "mouse"
    assert bolus_result.metadata["ev"] == "msc"
    assert tuple(bolus_result.metadata["parameter_files"]) == params.files
    assert bolus_result.metadata["eigenvector_condition_number"] >= 1.0


def test_result_is_frozen(bolus_result):
    with pytest.raises(dataclasses.FrozenInstanceError):
        bolus_result.method = "ode"  # type: ignore[misc]


def test_bolus_is_in_venous_blood_at_time_zero(bolus_result):
    first = bolus_result.amounts_particles[0]

    assert first[bolus_result.states.index("blood_venous")] == DOSE_PARTICLES
    np.testing.assert_allclose(
        np.delete(first, bolus_result.states.index("blood_venous")), 0.0, atol=1e-12 * DOSE_PARTICLES
    )
    assert bolus_result.percent_id("blood")[0] == pytest.approx(100.0, rel=1e-14)


@pytest.mark.parametrize("organ", ORGANS_WITH_VOLUME)
def test_organ_amount_is_the_sum_of_its_pools(bolus_result, organ):
    pools = [bolus_result.states.index(f"{organ}_{pool}") for pool in ("vascular", "tissue", "cells")]
    if organ == "lung":
        pools.append(bolus_result.states.index("lung_airspace"))

    # Equal up to summation order (the organ sum is a matrix product over all states).
    np.testing.assert_allclose(
        bolus_result.amount(organ), bolus_result.amounts_particles[:, pools].sum(axis=1), rtol=1e-15, atol=0
    )


def test_blood_is_arterial_plus_venous(bolus_result):
    pools = [bolus_result.states.index("blood_venous"), bolus_result.states.index("blood_arterial")]

    np.testing.assert_array_equal(bolus_result.amount("blood"), bolus_result.amounts_particles[:, pools].sum(axis=1))


def test_percent_id_over_organs_and_eliminated_sums_to_100_after_a_single_dose(bolus_result):
    total = sum(bolus_result.percent_id(organ) for organ in bolus_result.organs)

    np.testing.assert_allclose(total, 100.0, rtol=0, atol=100.0 * 1e-9)
    assert bolus_result.mass_balance_error() <= 1e-9


def test_percent_id_sums_to_the_share_administered_during_an_infusion(params, t_h):
    infusion = exopk.IVInfusion(dose_particles=DOSE_PARTICLES, duration_h=8.0, t_h=1.0)
    result = exopk.simulate(params, infusion, t_h)

    total = sum(result.percent_id(organ) for organ in result.organs)
    share = 100.0 * np.clip(t_h - 1.0, 0.0, 8.0) / 8.0

    np.testing.assert_allclose(result.administered_particles, DOSE_PARTICLES * share / 100.0, rtol=1e-14, atol=0.0)
    np.testing.assert_allclose(total, share, rtol=0, atol=100.0 * 1e-9)


@pytest.mark.parametrize("density_g_per_ml", [1.0, 1.06])
@pytest.mark.parametrize("organ", ORGANS_WITH_VOLUME)
def test_percent_id_per_g_is_percent_id_over_organ_weight(params, t_h, organ, density_g_per_ml):
    model = params.replace(tissue_density_g_per_ml=density_g_per_ml)
    result = exopk.simulate(model, exopk.IVBolus(dose_particles=DOSE_PARTICLES), t_h)
    volume_ml = model["rest_volume_ml"] if organ == "rest" else model[f"{organ}_volume_ml"]
    weight_g = volume_ml * density_g_per_ml

    np.testing.assert_allclose(result.percent_id_per_g(organ), result.percent_id(organ) / weight_g, rtol=1e-13)
    np.testing.assert_allclose(
        result.concentration_particles_per_ml(organ), result.amount(organ) / volume_ml, rtol=1e-13
    )


def test_blood_concentration_is_the_venous_pool(bolus_result, params):
    """A blood sample measures venous blood: amount in the venous pool over its volume."""
    venous_ml = params["circulating_blood_volume_ml"] * (1.0 - params["arterial_blood_fraction"])
    venous = bolus_result.amounts_particles[:, bolus_result.states.index("blood_venous")]

    np.testing.assert_allclose(bolus_result.concentration_particles_per_ml("blood"), venous / venous_ml, rtol=1e-13)
    np.testing.assert_allclose(
        bolus_result.percent_id_per_g("blood"),
        100.0 * venous / (venous_ml * params["tissue_density_g_per_ml"] * DOSE_PARTICLES),
        rtol=1e-13,
    )


def test_elimination_pathways_sum_to_eliminated(bolus_result):
    pathways = [bolus_result.eliminated(pathway) for pathway in exopk.model.ELIMINATION_PATHWAYS]

    np.testing.assert_allclose(np.sum(pathways, axis=0), bolus_result.eliminated(), rtol=1e-14, atol=0.0)
    np.testing.assert_allclose(bolus_result.eliminated(), bolus_result.amount("eliminated"), rtol=1e-14, atol=0.0)
    for amount in pathways:
        assert amount[0] == 0.0
        assert np.all(np.diff(amount) >= -1e-12 * DOSE_PARTICLES)  # cumulative


def test_elimination_pathways_are_the_sink_states(bolus_result):
    assert exopk.model.ELIMINATION_PATHWAYS == bolus_result.states[N_LIVE:]
    for pathway in exopk.model.ELIMINATION_PATHWAYS:
        np.testing.assert_array_equal(
            bolus_result.eliminated(pathway), bolus_result.amounts_particles[:, bolus_result.states.index(pathway)]
        )


def test_degradation_dominates_default_elimination(bolus_result):
    """Intact EVs are far above the glomerular cut-off: urine is a minor pathway at 48 h."""
    at_48h = {pathway: bolus_result.eliminated(pathway)[-1] for pathway in exopk.model.ELIMINATION_PATHWAYS}

    assert at_48h["urine"] < 1e-3 * bolus_result.eliminated()[-1]
    assert max(at_48h, key=at_48h.get) == "degraded_liver"


def test_unknown_organ_and_pathway_are_errors(bolus_result):
    with pytest.raises(exopk.InputError, match=r"unknown organ 'heart'; expected one of: blood, lung, liver"):
        bolus_result.percent_id("heart")
    with pytest.raises(exopk.InputError, match=r"unknown organ 'eliminated'; expected one of: blood, .*rest\."):
        bolus_result.concentration_particles_per_ml("eliminated")
    with pytest.raises(exopk.InputError, match=r"unknown elimination pathway 'sweat'; expected one of: degraded_lung"):
        bolus_result.eliminated("sweat")


# --------------------------------------------------------------------------------------
# to_frame
# --------------------------------------------------------------------------------------

UNITS = {
    "amount_particles": "particles",
    "percent_id": "%ID",
    "percent_id_per_g": "%ID/g",
    "concentration_particles_per_ml": "particles/mL",
    "extravascular_percent_id": "%ID",
}


@pytest.fixture(scope="module")
def frame(bolus_result):
    return bolus_result.to_frame()


def test_to_frame_columns_and_size(frame, t_h):
    assert list(frame.columns) == ["time_h", "organ", "quantity", "value", "unit"]
    # 7 tissues x 4 quantities, 6 organs' extravascular %ID, no site (none dosed), eliminated.
    n_quantities = 7 * 4 + 6 + 2 + 2 * len(exopk.model.ELIMINATION_PATHWAYS)
    assert len(frame) == t_h.size * n_quantities
    assert not frame.duplicated(["time_h", "organ", "quantity"]).any()
    assert np.isfinite(frame["value"]).all()


def test_to_frame_organ_names(frame):
    sites = ("nasal_cavity", "peritoneal_cavity", "subcutaneous_site")  # not dosed by an IV bolus
    assert list(dict.fromkeys(frame["organ"])) == [o for o in exopk.model.REPORTED_ORGANS if o not in sites]


def test_to_frame_units(frame):
    for (organ, quantity), unit in frame.groupby(["organ", "quantity"])["unit"].unique().items():
        assert len(unit) == 1
        base = quantity.removeprefix(
            next((p + "_" for p in exopk.model.ELIMINATION_PATHWAYS if quantity.startswith(p + "_")), "")
        )
        assert unit[0] == UNITS[base], (organ, quantity)


def test_to_frame_quantities_per_organ(frame):
    quantities = frame.groupby("organ")["quantity"].unique()

    assert set(quantities["blood"]) == set(UNITS) - {"extravascular_percent_id"}
    for organ in exopk.ORGANS:
        assert set(quantities[organ]) == set(UNITS)
    expected = {"amount_particles", "percent_id"} | {
        f"{pathway}_{q}" for pathway in exopk.model.ELIMINATION_PATHWAYS for q in ("amount_particles", "percent_id")
    }
    assert set(quantities["eliminated"]) == expected


@pytest.mark.parametrize(
    ("organ", "quantity", "method"),
    [
        ("liver", "percent_id", "percent_id"),
        ("blood", "percent_id_per_g", "percent_id_per_g"),
        ("spleen", "concentration_particles_per_ml", "concentration_particles_per_ml"),
        ("rest", "amount_particles", "amount"),
        ("eliminated", "percent_id", "percent_id"),
    ],
)
def test_to_frame_values_match_the_accessors(frame, bolus_result, t_h, organ, quantity, method):
    rows = frame[(frame["organ"] == organ) & (frame["quantity"] == quantity)]

    np.testing.assert_array_equal(rows["time_h"].to_numpy(), t_h)
    np.testing.assert_allclose(rows["value"].to_numpy(), getattr(bolus_result, method)(organ), rtol=1e-15)


def test_to_frame_pathway_rows(frame, bolus_result):
    rows = frame[(frame["organ"] == "eliminated") & (frame["quantity"] == "feces_percent_id")]

    np.testing.assert_allclose(
        rows["value"].to_numpy(), 100.0 * bolus_result.eliminated("feces") / DOSE_PARTICLES, rtol=1e-15
    )
