"""Scenario overlays: what they change, how they compose, what they do, and how bad files fail."""

from __future__ import annotations

import re

import numpy as np
import pytest

import exopk

SCENARIOS = (
    "acute_kidney_injury",
    "ischaemic_stroke",
    "intracerebral_haemorrhage",
    "macrophage_depletion",
    "repeated_dosing",
)
BOLUS = exopk.IVBolus(dose_particles=1e10)
T_H = np.concatenate([[0.0], np.geomspace(1e-3, 24.0, 200)])


def _auc(result: exopk.SimulationResult, organ: str) -> float:
    """Area under the %ID curve over T_H (trapezoids; the same grid for both arms of a comparison)."""
    return float(np.trapezoid(result.percent_id(organ), result.t_h))


@pytest.fixture(scope="module")
def mouse() -> exopk.ModelParameters:
    return exopk.load_parameters("mouse")


@pytest.fixture(scope="module")
def healthy(mouse) -> exopk.SimulationResult:
    return exopk.simulate(mouse, BOLUS, T_H)


def _simulate(*scenarios: str, species: str = "mouse") -> exopk.SimulationResult:
    return exopk.simulate(exopk.load_parameters(species, scenarios=scenarios), BOLUS, T_H)


# --------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------


def test_bundled_scenarios_are_listed():
    assert set(SCENARIOS) <= set(exopk.available("scenarios"))


@pytest.mark.parametrize("name", SCENARIOS)
def test_each_change_names_a_parameter_with_factor_or_value_and_source(name):
    scenario = exopk.model.load_scenario(name)

    assert scenario.name == name
    assert scenario.description
    assert scenario.changes
    for change in scenario.changes.values():
        assert change.name in exopk.parameter_names()
        assert (change.factor is None) != (change.value is None)
        assert len(change.source) > 20


@pytest.mark.parametrize("species", ["mouse", "rat", "human"])
@pytest.mark.parametrize("name", SCENARIOS)
def test_a_scenario_changes_only_the_parameters_it_names(name, species):
    base = exopk.load_parameters(species)
    changed = exopk.model.apply_scenario(base, name)
    scenario = exopk.model.load_scenario(name)

    differing = {k for k in base.values if base.values[k] != changed.values[k]}
    assert differing == set(scenario.changes)
    for key, change in scenario.changes.items():
        expected = base[key] * change.factor if change.factor is not None else change.value
        assert changed[key] == pytest.approx(expected, rel=1e-15)
        assert change.source in changed.sources[key]
    assert {k for k in base.sources if base.sources[k] != changed.sources[k]} == set(scenario.changes)
    assert changed.scenarios == (name,)
    assert changed.species == base.species


def test_scenarios_compose_in_order_and_factors_multiply(mouse):
    both = exopk.load_parameters("mouse", scenarios=("macrophage_depletion", "repeated_dosing"))

    assert both.scenarios == ("macrophage_depletion", "repeated_dosing")
    # Depletion removes the macrophage term (x 0); repeated dosing then multiplies it (still 0) and
    # leaves the non-macrophage term alone.
    assert both["liver_macrophage_uptake_per_h"] == 0.0
    assert both["liver_uptake_vascular_per_h"] == mouse["liver_uptake_vascular_per_h"]
    twice = exopk.load_parameters("mouse", scenarios=("repeated_dosing", "repeated_dosing"))
    assert twice["spleen_macrophage_uptake_per_h"] == pytest.approx(mouse["spleen_macrophage_uptake_per_h"] * 9.0)
    with_kidney = exopk.model.apply_scenario(both, "acute_kidney_injury")
    assert with_kidney["kidney_uptake_vascular_per_h"] == pytest.approx(mouse["kidney_uptake_vascular_per_h"] * 2)
    assert with_kidney["liver_uptake_vascular_per_h"] == both["liver_uptake_vascular_per_h"]


def test_a_single_name_and_a_loaded_scenario_are_accepted(mouse):
    by_name = exopk.load_parameters("mouse", scenarios="ischaemic_stroke")
    by_object = exopk.model.apply_scenario(mouse, exopk.model.load_scenario("ischaemic_stroke"))

    assert dict(by_name.values) == dict(by_object.values)


def test_factor_keeps_the_extrapolation_flag_and_value_clears_it(tmp_path):
    path = tmp_path / "mixed.toml"
    path.write_text(
        "[changes]\n"
        'liver_uptake_vascular_per_h = { factor = 0.5, source = "test" }\n'
        'spleen_uptake_vascular_per_h = { value = 3.0, source = "test" }\n',
        encoding="utf-8",
    )
    human = exopk.load_parameters("human", scenarios=[path])

    assert human.extrapolated["liver_uptake_vascular_per_h"].startswith("allometric: mouse value")
    assert "spleen_uptake_vascular_per_h" not in human.extrapolated
    assert human["spleen_uptake_vascular_per_h"] == 3.0
    assert human.scenarios == ("mixed",)


def test_scenarios_appear_in_simulation_metadata():
    result = _simulate("acute_kidney_injury", "ischaemic_stroke")

    assert result.metadata["scenarios"] == ("acute_kidney_injury", "ischaemic_stroke")


# --------------------------------------------------------------------------------------
# What each scenario does (the statements)
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "species",
    [
        pytest.param(
            "mouse",
            marks=pytest.mark.xfail(
                strict=True,
                reason="issue 13: after the joint refit extrahepatic cells degrade EVs at 0.37 /h, so the doubled "
                "kidney uptake gives x1.26 kidney %ID at 5 h, not > x1.3 (measured; reported in the closing note)",
            ),
        ),
        "rat",
        "human",
    ],
)
def test_acute_kidney_injury_raises_kidney_percent_id_at_5_h(species):
    t_h = np.array([0.0, 5.0])
    healthy = exopk.simulate(exopk.load_parameters(species), BOLUS, t_h).percent_id("kidney")[1]
    injured = exopk.simulate(exopk.load_parameters(species, scenarios=["acute_kidney_injury"]), BOLUS, t_h)

    assert injured.percent_id("kidney")[1] > 1.3 * healthy


def test_macrophage_depletion_slows_blood_clearance(healthy):
    depleted = _simulate("macrophage_depletion")
    t_h = np.array([0.0, 1 / 60, 5 / 60])

    def half_life_min(params):
        blood = exopk.simulate(params, BOLUS, t_h).percent_id("blood")
        return 4 * np.log(2) / np.log(blood[1] / blood[2])

    # Direction only (Imai 2015 "much slower"; Matsumoto 2020 "retarded"): the size of the effect is
    # what the sourced macrophage shares imply, reported in docs/validation.md, not a pinned number.
    assert half_life_min(depleted.params) > 1.2 * half_life_min(healthy.params)
    # the liver fills more slowly (literature-3.md B8: depleted mice "gradually accumulated" sEVs there)
    assert np.interp(0.1, T_H, depleted.percent_id("liver")) < np.interp(0.1, T_H, healthy.percent_id("liver"))


def test_macrophage_depletion_raises_blood_auc(healthy):
    """Direction and the mechanism's size: the PS-exposing majority's blood AUC rises ~3-fold (bounded by
    the 33 % macrophage-independent share of hepatic uptake, literature-3.md B6); the mixture's less,
    since the stealth minority carries much of the control AUC. Imai 2015's depleted mice are an
    independent dataset (docs/validation.md)."""
    depleted = _simulate("macrophage_depletion")
    assert _auc(depleted, "blood") > 1.2 * _auc(healthy, "blood")
    ps = exopk.simulate(depleted.params.single(), BOLUS, T_H), exopk.simulate(healthy.params.single(), BOLUS, T_H)
    assert 2.0 < _auc(ps[0], "blood") / _auc(ps[1], "blood") < 6.0


def test_macrophage_depletion_removes_only_the_macrophage_terms(mouse):
    """Regression test for #13: the scenario acts on the clodronate-sensitive terms, nothing else."""
    depleted = exopk.load_parameters("mouse", scenarios="macrophage_depletion")
    changed = {name for name in mouse.values if depleted[name] != mouse[name]}

    assert changed == {
        "liver_macrophage_uptake_per_h",
        "spleen_macrophage_uptake_per_h",
        "lung_macrophage_uptake_per_h",
        "rest_macrophage_uptake_per_h",
    }
    # lung marginated phagocytes and resident macrophages elsewhere: -90 % (a sourced analogue)
    for organ in ("lung", "rest"):
        assert depleted[f"{organ}_macrophage_uptake_per_h"] == pytest.approx(
            0.1 * mouse[f"{organ}_macrophage_uptake_per_h"]
        )
    # The non-macrophage shares of uptake clearance stay (literature-3.md BD4: liver 33 %, spleen 24 %).
    for organ, share in (("liver", 0.67), ("spleen", 0.76)):
        total = mouse[f"{organ}_macrophage_uptake_per_h"] + mouse[f"{organ}_uptake_vascular_per_h"]
        assert mouse[f"{organ}_macrophage_uptake_per_h"] == pytest.approx(share * total, rel=1e-5)
        assert depleted[f"{organ}_uptake_vascular_per_h"] == pytest.approx((1 - share) * total, rel=1e-5)


def test_depleted_mice_still_accumulate_evs_in_liver_and_spleen():
    """literature-3.md B8: in depleted mice sEVs 'gradually accumulated in the liver and spleen'."""
    depleted = _simulate("macrophage_depletion")
    for organ in ("liver", "spleen"):
        assert np.interp(0.5, T_H, depleted.percent_id(organ)) > 1.0


@pytest.mark.parametrize("name", ["ischaemic_stroke", "intracerebral_haemorrhage"])
def test_brain_injury_raises_brain_exposure(healthy, name):
    injured = _simulate(name)

    # Brain tissue (extravascular): since issue 13 the stealth subpopulation keeps EVs in the brain's
    # residual blood for hours, which the injury does not change.
    def tissue_auc(result):
        return np.trapezoid(result.extravascular_percent_id("brain"), T_H)

    assert tissue_auc(injured) > 1.2 * tissue_auc(healthy)
    # The blood phase hardly moves: the brain is a small sink.
    assert _auc(injured, "blood") == pytest.approx(_auc(healthy, "blood"), rel=1e-2)


@pytest.mark.xfail(
    strict=True,
    reason="issue 13: the stealth subpopulation (hardly recognised by macrophages) carries most of the blood AUC, "
    "so tripling macrophage uptake barely shortens it; Driedonks 2022 reports 'strongly decreased' circulation",
)
def test_repeated_dosing_shortens_circulation(healthy):
    later_dose = _simulate("repeated_dosing")

    assert _auc(later_dose, "blood") < 0.8 * _auc(healthy, "blood")


# --------------------------------------------------------------------------------------
# Bad scenario files: each error names the file and the key
# --------------------------------------------------------------------------------------


def _write(tmp_path, text: str):
    path = tmp_path / "bad.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '[changes]\nliver_uptake_per_h = { factor = 2.0, source = "x" }\n',
            r"key 'liver_uptake_per_h': unknown parameter",
        ),
        (
            '[changes]\nrest_volume_ml = { factor = 2.0, source = "x" }\n',
            r"key 'rest_volume_ml': unknown parameter.*derived",
        ),
        ("[changes]\nliver_volume_ml = { factor = 2.0 }\n", r"key 'liver_volume_ml' must be"),
        (
            '[changes]\nliver_volume_ml = { factor = 2.0, value = 1.0, source = "x" }\n',
            r"key 'liver_volume_ml' must be",
        ),
        ('[changes]\nliver_volume_ml = { factor = 2.0, source = "" }\n', r"non-empty `source`"),
        ('[changes]\nliver_volume_ml = { factor = -2.0, source = "x" }\n', r"`factor` must be positive"),
        ('[changes]\nliver_volume_ml = { factor = "two", source = "x" }\n', r"must be a number"),
        ('[changes]\nliver_volume_ml = { factor = 2.0, source = "x", note = "y" }\n', r"unknown field\(s\) note"),
        ("[metadata]\nscenario = 'x'\n", r"missing or empty table \[changes\]"),
        ('[changez]\nliver_volume_ml = { factor = 2.0, source = "x" }\n', r"unknown table or key 'changez'"),
        ("[changes\n", r"not valid TOML"),
    ],
)
def test_bad_scenario_files_name_the_file_and_key(tmp_path, text, message):
    path = _write(tmp_path, text)

    with pytest.raises(exopk.ParameterError, match=re.escape(str(path)) + ".*" + message):
        exopk.load_parameters("mouse", scenarios=[path])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[changes]\nliver_vascular_fraction = { value = 1.5, source = "x" }\n', r"liver_vascular_fraction"),
        ('[changes]\ncardiac_output_ml_per_h = { factor = 0.01, source = "x" }\n', r"rest_blood_flow_ml_per_h"),
    ],
)
def test_a_scenario_that_breaks_the_parameter_rules_names_its_file(tmp_path, text, message):
    path = _write(tmp_path, text)

    with pytest.raises(exopk.ParameterError, match=re.escape(str(path)) + ".*invalid parameter set.*" + message):
        exopk.load_parameters("mouse", scenarios=[path])


def test_unknown_scenario_name():
    with pytest.raises(exopk.ParameterError, match=r"unknown scenario 'flu'.*`scenarios`.*acute_kidney_injury"):
        exopk.load_parameters("mouse", scenarios=["flu"])
