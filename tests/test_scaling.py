"""Dose scaling between species: per kg and by body surface area (FDA 2005 Km factors)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import exopk


def test_mouse_to_human_per_kg_and_by_body_surface_area():
    scaled = exopk.model.scale_dose(2e10, "mouse", "human")

    assert scaled.dose_particles_per_kg == pytest.approx(2e10 / 0.025)
    assert scaled.per_kg_particles == pytest.approx(2e10 * 70000.0 / 25.0)
    # FDA 2005 Table 1: HED (per kg) = mouse dose (per kg) × 3 / 37.
    assert scaled.bsa_particles == pytest.approx(2e10 / 0.025 * 3.0 / 37.0 * 70.0)
    assert (scaled.from_km_kg_per_m2, scaled.to_km_kg_per_m2) == (3.0, 37.0)
    assert scaled.bsa_particles < scaled.per_kg_particles


def test_mouse_to_rat_uses_the_rat_km_factor():
    scaled = exopk.model.scale_dose(1e10, "mouse", "rat")

    assert scaled.bsa_particles == pytest.approx(1e10 / 0.025 * 3.0 / 6.0 * 0.25)


def test_given_body_weights_replace_the_reference_weights():
    scaled = exopk.model.scale_dose(1e10, "mouse", "human", from_body_weight_g=20.0, to_body_weight_g=80000.0)

    assert scaled.per_kg_particles == pytest.approx(1e10 * 80000.0 / 20.0)
    assert scaled.from_body_weight_g == 20.0


def test_scaling_there_and_back_returns_the_dose():
    there = exopk.model.scale_dose(3e9, "rat", "human")
    back = exopk.model.scale_dose(there.bsa_particles, "human", "rat")

    assert back.bsa_particles == pytest.approx(3e9, rel=1e-12)


def test_summary_prints_both_doses_and_the_assumptions():
    text = exopk.model.scale_dose(2e10, "mouse", "human").summary()

    assert "5.6e+13 particles" in text  # per kg
    assert "4.541e+12 particles" in text  # by body surface area
    assert "FDA 2005" in text and "assumptions:" in text
    assert "no EV dose-scaling data" in text


@pytest.mark.parametrize("dose", [0.0, -1.0, float("nan"), float("inf"), True])
def test_bad_doses_are_rejected(dose):
    with pytest.raises(exopk.ParameterError, match=r"`dose_particles` must be a positive, finite number"):
        exopk.model.scale_dose(dose, "mouse", "human")


def test_bad_weight_is_rejected():
    with pytest.raises(exopk.ParameterError, match=r"`to_body_weight_g` must be a positive"):
        exopk.model.scale_dose(1e10, "mouse", "human", to_body_weight_g=0.0)


def test_species_without_km_factor_is_an_error(tmp_path):
    text = Path(exopk.load_parameters("rat").files[0]).read_text(encoding="utf-8")
    path = tmp_path / "norway_rat.toml"
    path.write_text(text[: text.index("[reference]")], encoding="utf-8")

    assert exopk.load_parameters(path).species == "rat"  # the table is optional for simulation
    with pytest.raises(exopk.ParameterError, match=re.escape("'norway_rat' has no `km_factor_kg_per_m2`")):
        exopk.model.scale_dose(1e10, "mouse", path)


def test_new_public_functions_document_their_parameters():
    import inspect

    for name in ("scale_dose", "apply_scenario", "load_scenario", "species_reference", "load_parameters"):
        function = next(getattr(m, name) for m in (exopk, exopk.model, exopk.observe, exopk.plots) if name in m.__all__)
        doc = inspect.getdoc(function)
        for parameter in inspect.signature(function).parameters:
            assert parameter in doc, f"exopk.{name}: parameter `{parameter}` is not documented"
