"""Parameters: bundled files, flow balance, ``replace``, and one error test per validation rule."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest
from reference_model import reference_derived

import exopk
from exopk.model.graph import rate_matrices, state_index, volumes
from exopk.model.parameters import ROUTE_PARAMETERS

EV_KINETIC_SUFFIXES = (
    "macrophage_uptake_per_h",
    "uptake_vascular_per_h",
    "uptake_tissue_per_h",
    "permeability_fraction_of_flow",
    "release_per_h",
    "degradation_per_h",
)


# --------------------------------------------------------------------------------------
# Bundled files
# --------------------------------------------------------------------------------------


def test_bundled_files_load(params):
    assert isinstance(params, exopk.ModelParameters)
    assert params.species == "mouse"
    assert params.ev == "msc"
    assert [Path(f).name for f in params.files] == [
        "mouse.toml",
        "msc.toml",
        "intranasal.toml",
        "intraperitoneal.toml",
        "subcutaneous.toml",
        "intratracheal.toml",
    ]
    assert set(params.values) == set(exopk.parameter_names())
    assert "mouse" in exopk.available("species")
    assert "msc" in exopk.available("ev")


def test_bundled_files_load_from_their_paths(params):
    """A path to a .toml file loads the same values as the bundled name."""
    by_path = exopk.load_parameters(species=Path(params.files[0]), ev=params.files[1])

    assert dict(by_path.values) == dict(params.values)


def test_every_value_has_a_non_empty_source(params):
    assert set(params.sources) == set(params.values)
    empty = [name for name, source in params.sources.items() if not source.strip()]
    assert empty == []


def test_every_value_is_finite_except_infinite_capacities(params):
    for name, value in params.values.items():
        if name.endswith("_capacity_particles"):
            assert value > 0
        else:
            assert math.isfinite(value), name


def test_flows_are_converted_from_ml_per_min_to_ml_per_h(params):
    """The species file gives 13.98 mL/min cardiac output; internally it is mL/h."""
    assert params["cardiac_output_ml_per_h"] == pytest.approx(13.98 * 60.0, rel=1e-15)
    assert params["liver_hepatic_artery_flow_ml_per_h"] == pytest.approx(0.2796 * 60.0, rel=1e-15)


def test_default_model_is_linear(params):
    assert params.is_linear
    assert not params.replace(liver_capacity_particles=1e12).is_linear


@pytest.mark.parametrize(
    "name",
    [
        "rest_volume_ml",
        "circulating_blood_volume_ml",
        "rest_blood_flow_ml_per_h",
        "liver_blood_flow_ml_per_h",
        "liver_arterial_flow_ml_per_h",
        "lung_blood_flow_ml_per_h",
        "rest_nonportal_flow_ml_per_h",
    ],
)
def test_derived_values_follow_from_mass_and_flow_balance(params, name):
    expected = reference_derived(params.values)[name]

    assert params[name] == pytest.approx(expected, rel=1e-14)
    assert params[name] > 0


def test_table_lists_every_stored_and_derived_value(params):
    table = params.table()

    assert list(table.columns) == ["name", "value", "unit", "source", "description", "extrapolated"]
    derived = {
        "rest_volume_ml",
        "circulating_blood_volume_ml",
        "liver_blood_flow_ml_per_h",
        "rest_blood_flow_ml_per_h",
        "liver_arterial_flow_ml_per_h",
        "lung_blood_flow_ml_per_h",
        "rest_nonportal_flow_ml_per_h",
    }
    assert set(table["name"]) == set(exopk.parameter_names()) | derived
    assert table["name"].is_unique
    by_name = table.set_index("name")
    assert by_name.loc["cardiac_output_ml_per_h", "unit"] == "mL/h"
    assert by_name.loc["rest_volume_ml", "value"] == pytest.approx(params["rest_volume_ml"])
    assert (table["source"].str.strip() != "").all()


# --------------------------------------------------------------------------------------
# Flow balance, read off the rate matrix
# --------------------------------------------------------------------------------------


def _without_ev_kinetics(params: exopk.ModelParameters) -> exopk.ModelParameters:
    """Physiology only: no uptake, exchange, release, degradation or clearance."""
    changes = {f"{organ}_{suffix}": 0.0 for organ in exopk.ORGANS for suffix in EV_KINETIC_SUFFIXES}
    changes["liver_biliary_clearance_ml_per_h"] = 0.0
    changes["kidney_urinary_clearance_ml_per_h"] = 0.0
    changes.update({name: 0.0 for names in ROUTE_PARAMETERS.values() for name in names})
    return params.replace(**changes)


PHYSIOLOGY_VARIANTS = [
    {},
    {"cardiac_output_ml_per_h": 1500.0},
    {"gut_blood_flow_ml_per_h": 0.0},
    {"arterial_blood_fraction": 0.5, "blood_volume_ml": 2.0},
    {"kidney_blood_flow_ml_per_h": 200.0, "brain_blood_flow_ml_per_h": 10.0, "spleen_vascular_fraction": 0.6},
]


@pytest.fixture(params=PHYSIOLOGY_VARIANTS, ids=lambda v: ",".join(v) or "default")
def circulation(request, params):
    """Rate matrix and volumes of the circulation alone (all EV kinetics zeroed)."""
    physiology = _without_ev_kinetics(params.replace(**request.param))
    K, E = rate_matrices(physiology.values)
    # Depots (nasal cavity, ...) have no blood volume (NaN) and no blood flows through them.
    return physiology, K[0], E[0], np.nan_to_num(volumes(physiology.values).state_ml)


def test_circulation_alone_conserves_mass(circulation):
    """Every column of K sums to zero and nothing reaches a sink."""
    _, K, E, _ = circulation

    np.testing.assert_allclose(K.sum(axis=0), 0.0, atol=1e-9 * np.abs(K).max())
    assert np.all(E == 0.0)


def test_uniform_concentration_is_stationary(circulation):
    """Inflow equals outflow for every compartment: K applied to the volumes is zero."""
    _, K, _, vol_ml = circulation

    flux = K @ vol_ml  # mL/h of blood, per compartment, at unit concentration

    np.testing.assert_allclose(flux, 0.0, atol=1e-12 * np.abs(K * vol_ml).max())


def test_venous_return_equals_cardiac_output(circulation):
    """Blood entering the venous pool from the organs (mL/h) sums to the cardiac output."""
    physiology, K, _, vol_ml = circulation
    venous = state_index("blood_venous")
    arterial = state_index("blood_arterial")
    co = physiology["cardiac_output_ml_per_h"]

    inflow_ml_per_h = K[venous, :] * vol_ml
    inflow_ml_per_h[venous] = 0.0
    sources = {exopk.model.STATES[j] for j in np.flatnonzero(inflow_ml_per_h)}

    assert inflow_ml_per_h.sum() == pytest.approx(co, rel=1e-12)
    assert sources == {"liver_vascular", "kidney_vascular", "brain_vascular", "rest_vascular"}
    assert -K[venous, venous] * vol_ml[venous] == pytest.approx(co, rel=1e-12)
    # The arterial pool receives the whole cardiac output from the lung and gives it all out.
    assert K[arterial, state_index("lung_vascular")] * vol_ml[state_index("lung_vascular")] == pytest.approx(
        co, rel=1e-12
    )
    assert -K[arterial, arterial] * vol_ml[arterial] == pytest.approx(co, rel=1e-12)


def test_liver_receives_hepatic_artery_spleen_and_gut(circulation):
    physiology, K, _, vol_ml = circulation
    liver = state_index("liver_vascular")

    def into_liver(src: str) -> float:
        return K[liver, state_index(src)] * vol_ml[state_index(src)]

    assert into_liver("blood_arterial") == pytest.approx(physiology["liver_arterial_flow_ml_per_h"], rel=1e-12)
    assert into_liver("spleen_vascular") == pytest.approx(physiology["spleen_blood_flow_ml_per_h"], rel=1e-12)
    assert into_liver("rest_vascular") == pytest.approx(physiology["gut_blood_flow_ml_per_h"], rel=1e-12, abs=1e-12)
    assert -K[liver, liver] * vol_ml[liver] == pytest.approx(physiology["liver_blood_flow_ml_per_h"], rel=1e-12)


def test_ev_kinetics_conserve_mass_between_live_states_and_sinks(params):
    """With EV kinetics on, what K loses from each column, E puts into the sinks."""
    K, E = rate_matrices(params.values)

    np.testing.assert_allclose(-K.sum(axis=1), E.sum(axis=1), rtol=1e-12, atol=1e-12 * np.abs(K).max())
    assert np.all(E >= 0)


# --------------------------------------------------------------------------------------
# replace
# --------------------------------------------------------------------------------------


def test_replace_changes_only_the_named_value(params):
    changed = params.replace(liver_uptake_vascular_per_h=50.0)

    assert changed["liver_uptake_vascular_per_h"] == 50.0
    assert changed.sources["liver_uptake_vascular_per_h"] == "set by user"
    differing = {name for name in params.values if changed.values[name] != params.values[name]}
    assert differing == {"liver_uptake_vascular_per_h"}
    assert {name for name in params.sources if changed.sources[name] != params.sources[name]} == differing
    # The original is untouched.
    assert params["liver_uptake_vascular_per_h"] != 50.0


def test_replace_records_the_given_source(params):
    changed = params.replace(source="test fixture", lung_degradation_per_h=1.0)

    assert changed.sources["lung_degradation_per_h"] == "test fixture"


def test_replace_of_physiology_updates_derived_values(params):
    changed = params.replace(kidney_blood_flow_ml_per_h=params["kidney_blood_flow_ml_per_h"] + 10.0)

    assert changed["rest_blood_flow_ml_per_h"] == pytest.approx(params["rest_blood_flow_ml_per_h"] - 10.0, rel=1e-14)


def test_parameters_are_frozen(params):
    with pytest.raises(TypeError):
        params.values["liver_uptake_vascular_per_h"] = 1.0  # type: ignore[index]
    with pytest.raises(AttributeError):
        params.species = "rat"  # type: ignore[misc]


# Regression test for a bug found while writing the suite (numpy numbers and booleans).
def test_replace_accepts_numpy_integers(params):
    changed = params.replace(liver_uptake_vascular_per_h=np.int64(5))

    assert changed["liver_uptake_vascular_per_h"] == 5.0


# Regression test for a bug found while writing the suite (numpy numbers and booleans).
def test_replace_rejects_booleans(params):
    with pytest.raises(exopk.ParameterError, match=r"`liver_release_to_vascular_fraction` must be a number; got True"):
        params.replace(liver_release_to_vascular_fraction=True)


def test_replace_rejects_unknown_parameter(params):
    with pytest.raises(exopk.ParameterError, match=r"unknown parameter\(s\): 'liver_colour'.*parameter_names\(\)"):
        params.replace(liver_colour=1.0)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("liver_uptake_vascular_per_h", -1.0, r"`liver_uptake_vascular_per_h` must be non-negative; got -1\.0"),
        ("liver_degradation_per_h", math.nan, r"`liver_degradation_per_h` must be finite; got nan"),
        ("lung_release_per_h", math.inf, r"`lung_release_per_h` must be finite; got inf"),
        (
            "spleen_release_to_vascular_fraction",
            1.5,
            r"`spleen_release_to_vascular_fraction` must lie in \[0, 1\]; got 1\.5",
        ),
        ("kidney_vascular_fraction", 1.0, r"`kidney_vascular_fraction` must lie strictly between 0 and 1; got 1\.0"),
        ("liver_partition_coefficient", 0.0, r"`liver_partition_coefficient` must be positive; got 0\.0"),
        (
            "liver_capacity_particles",
            0.0,
            r"`liver_capacity_particles` must be positive \(inf for no limit\); got 0\.0",
        ),
        (
            "liver_capacity_particles",
            math.nan,
            r"`liver_capacity_particles` must be positive \(inf for no limit\); got nan",
        ),
        ("body_weight_g", "25", r"`body_weight_g` must be a number; got '25'"),
    ],
)
def test_replace_validates_the_new_value(params, name, value, message):
    with pytest.raises(exopk.ParameterError, match=message):
        params.replace(**{name: value})


def test_replace_rejects_organ_flows_exceeding_cardiac_output(params):
    with pytest.raises(
        exopk.ParameterError, match=r"derived `rest_blood_flow_ml_per_h`.*organ flows exceed the cardiac output"
    ):
        params.replace(kidney_blood_flow_ml_per_h=params["cardiac_output_ml_per_h"])


def test_hepatic_artery_flow_must_be_positive(params):
    with pytest.raises(exopk.ParameterError, match=r"`liver_hepatic_artery_flow_ml_per_h` must be positive; got 0"):
        params.replace(liver_hepatic_artery_flow_ml_per_h=0.0)


def test_replace_rejects_residual_blood_exceeding_total_blood(params):
    """Organ residual blood is part of the total blood volume, so it cannot exceed it."""
    with pytest.raises(
        exopk.ParameterError, match=r"derived `circulating_blood_volume_ml`.*residual blood.*exceeds the total"
    ):
        params.replace(liver_vascular_fraction=0.99)


def test_replace_rejects_gut_flow_exceeding_rest_flow(params):
    """Arterial inflows leave the rest of body half the gut flow: rest flow is less than gut flow."""
    hepatic_artery = (
        params["cardiac_output_ml_per_h"]
        - params["spleen_blood_flow_ml_per_h"]
        - params["kidney_blood_flow_ml_per_h"]
        - params["brain_blood_flow_ml_per_h"]
        - 0.5 * params["gut_blood_flow_ml_per_h"]
    )

    with pytest.raises(
        exopk.ParameterError, match=r"derived `rest_nonportal_flow_ml_per_h`.*gut flow must be a part of the rest"
    ):
        params.replace(liver_hepatic_artery_flow_ml_per_h=hepatic_artery)


def test_replace_rejects_organs_heavier_than_the_body(params):
    with pytest.raises(exopk.ParameterError, match=r"derived `rest_volume_ml`.*raise `body_weight_g`"):
        params.replace(body_weight_g=2.0)


def test_unknown_name_lookup_is_an_error(params):
    with pytest.raises(exopk.ParameterError, match=r"unknown parameter 'liver_colour'"):
        params["liver_colour"]


def test_parameter_error_is_a_value_error():
    assert issubclass(exopk.ParameterError, ValueError)
    assert issubclass(exopk.ParameterError, exopk.ExopkError)


def test_direct_construction_rejects_missing_and_unknown_names(params):
    values = dict(params.values)
    del values["brain_volume_ml"]
    with pytest.raises(exopk.ParameterError, match=r"missing parameter\(s\): brain_volume_ml\."):
        exopk.ModelParameters(values, dict(params.sources))
    with pytest.raises(exopk.ParameterError, match=r"unknown parameter\(s\): 'heart_volume_ml'"):
        exopk.ModelParameters({**params.values, "heart_volume_ml": 0.1}, dict(params.sources))


# --------------------------------------------------------------------------------------
# Broken files: each error names the file and the key (or table) at fault
# --------------------------------------------------------------------------------------


@pytest.fixture
def files(params, tmp_path):
    """Editable copies of the bundled files: ``files.write(kind, edit)`` returns the path."""

    class Files:
        species = Path(params.files[0]).read_text(encoding="utf-8")
        ev = Path(params.files[1]).read_text(encoding="utf-8")

        @staticmethod
        def write(kind: str, text: str) -> Path:
            path = tmp_path / f"{kind}.toml"
            path.write_text(text, encoding="utf-8")
            return path

        def load(self, species: str | None = None, ev: str | None = None) -> exopk.ModelParameters:
            species_path = self.write("species", species if species is not None else self.species)
            ev_path = self.write("ev", ev if ev is not None else self.ev)
            return exopk.load_parameters(species=species_path, ev=ev_path)

    return Files()


def _sub_line(text: str, key: str, new_line: str, section: str | None = None) -> str:
    """Replace the first line starting with ``key =`` (inside ``[section]`` if given)."""
    start = 0
    if section is not None:
        start = text.index(f"[{section}]\n")
    match = re.compile(rf"^{re.escape(key)} = .*$", re.M).search(text, start)
    assert match is not None, f"{key} not found"
    return text[: match.start()] + new_line + text[match.end() :]


def _set_value(text: str, key: str, value: str, section: str | None = None) -> str:
    return _sub_line(text, key, f'{key} = {{ value = {value}, source = "test" }}', section)


def _pattern(path: Path, *parts: str) -> str:
    """Regex: the file path, then each part in order."""
    return re.escape(str(path)) + "".join(".*" + part for part in parts)


def test_copies_of_the_bundled_files_load(files, params):
    assert dict(files.load().values) == dict(params.values)


def test_malformed_toml(files, tmp_path):
    broken = files.species.replace("[body]", "[body", 1)

    with pytest.raises(exopk.ParameterError, match=_pattern(tmp_path / "species.toml", "not valid TOML")):
        files.load(species=broken)


def test_unknown_key(files, tmp_path):
    broken = files.species.replace("[body]\n", '[body]\nbody_colour = { value = 1, source = "x" }\n', 1)

    with pytest.raises(
        exopk.ParameterError,
        match=_pattern(
            tmp_path / "species.toml", r"\[body\]", "unknown key 'body_colour'", "expected keys: body_weight_g"
        ),
    ):
        files.load(species=broken)


def test_missing_key(files, tmp_path):
    broken = _sub_line(files.ev, "degradation_per_h", "", section="organs.spleen")

    with pytest.raises(
        exopk.ParameterError,
        match=_pattern(tmp_path / "ev.toml", r"\[organs\.spleen\]", "missing key 'degradation_per_h'"),
    ):
        files.load(ev=broken)


def test_value_without_source(files, tmp_path):
    broken = _sub_line(files.species, "body_weight_g", "body_weight_g = { value = 25.0 }")

    with pytest.raises(
        exopk.ParameterError,
        match=_pattern(tmp_path / "species.toml", r"\[body\]", "key 'body_weight_g' must be", "source"),
    ):
        files.load(species=broken)


def test_value_with_empty_source(files, tmp_path):
    broken = _sub_line(files.species, "body_weight_g", 'body_weight_g = { value = 25.0, source = "  " }')

    with pytest.raises(
        exopk.ParameterError,
        match=_pattern(tmp_path / "species.toml", "key 'body_weight_g' needs a non-empty `source`"),
    ):
        files.load(species=broken)


def test_negative_rate(files, tmp_path):
    broken = _set_value(files.ev, "uptake_vascular_per_h", "-1.0", section="organs.liver")

    with pytest.raises(
        exopk.ParameterError,
        match=_pattern(
            tmp_path / "ev.toml", r"\[organs\.liver\]", "`uptake_vascular_per_h` must be non-negative; got -1.0"
        ),
    ):
        files.load(ev=broken)


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_non_finite_value(files, tmp_path, value):
    broken = _set_value(files.species, "cardiac_output_ml_min", value)

    with pytest.raises(
        exopk.ParameterError,
        match=_pattern(tmp_path / "species.toml", r"\[body\]", "`cardiac_output_ml_min` must be finite"),
    ):
        files.load(species=broken)


def test_non_finite_rate(files, tmp_path):
    broken = _set_value(files.ev, "degradation_per_h", "inf", section="organs.kidney")

    with pytest.raises(
        exopk.ParameterError,
        match=_pattern(tmp_path / "ev.toml", r"\[organs\.kidney\]", "`degradation_per_h` must be finite"),
    ):
        files.load(ev=broken)


def test_infinite_capacity_is_accepted_nan_capacity_is_not(files, tmp_path):
    assert math.isinf(files.load()["liver_capacity_particles"])
    broken = _set_value(files.ev, "capacity_particles", "nan", section="organs.liver")

    with pytest.raises(
        exopk.ParameterError,
        match=_pattern(tmp_path / "ev.toml", r"\[organs\.liver\]", "`capacity_particles` must be positive"),
    ):
        files.load(ev=broken)


def test_fraction_above_one(files, tmp_path):
    broken = _set_value(files.ev, "release_to_vascular_fraction", "1.2", section="organs.lung")

    with pytest.raises(
        exopk.ParameterError,
        match=_pattern(
            tmp_path / "ev.toml", r"\[organs\.lung\]", r"`release_to_vascular_fraction` must lie in \[0, 1\]; got 1.2"
        ),
    ):
        files.load(ev=broken)


def test_vascular_fraction_of_one(files, tmp_path):
    broken = _set_value(files.species, "vascular_fraction", "1.0", section="organs.brain")

    with pytest.raises(
        exopk.ParameterError,
        match=_pattern(
            tmp_path / "species.toml", r"\[organs\.brain\]", "`vascular_fraction` must lie strictly between 0 and 1"
        ),
    ):
        files.load(species=broken)


def test_boolean_value(files, tmp_path):
    broken = _set_value(files.ev, "release_to_vascular_fraction", "true", section="organs.rest")

    with pytest.raises(
        exopk.ParameterError,
        match=_pattern(
            tmp_path / "ev.toml", r"\[organs\.rest\]", "`release_to_vascular_fraction` must be a number; got True"
        ),
    ):
        files.load(ev=broken)


def test_value_that_is_not_a_number(files, tmp_path):
    broken = _set_value(files.species, "blood_volume_ml", '"1.2"')

    with pytest.raises(
        exopk.ParameterError,
        match=_pattern(tmp_path / "species.toml", r"\[body\]", "`blood_volume_ml` must be a number; got '1.2'"),
    ):
        files.load(species=broken)


def test_organ_flows_exceeding_cardiac_output(files, tmp_path):
    """Kidney flow alone (20 mL/min) above the cardiac output (13.98 mL/min)."""
    broken = _set_value(files.species, "blood_flow_ml_min", "20.0", section="organs.kidney")

    with pytest.raises(
        exopk.ParameterError,
        match=r"derived `rest_blood_flow_ml_per_h`.*must be positive.*"
        + re.escape(str(tmp_path / "species.toml"))
        + ".*organ flows exceed the cardiac output",
    ):
        files.load(species=broken)


def test_unknown_organ_table(files, tmp_path):
    broken = files.ev + '\n[organs.heart]\nuptake_vascular_per_h = { value = 1.0, source = "x" }\n'

    with pytest.raises(exopk.ParameterError, match=_pattern(tmp_path / "ev.toml", r"unknown organ \[organs\.heart\]")):
        files.load(ev=broken)


def test_missing_organ_table(files, tmp_path):
    start = files.species.index("[organs.spleen]")
    end = files.species.index("[organs.kidney]")
    broken = files.species[:start] + files.species[end:]

    with pytest.raises(
        exopk.ParameterError, match=_pattern(tmp_path / "species.toml", r"missing table \[organs\.spleen\]")
    ):
        files.load(species=broken)


def test_unknown_top_level_table(files, tmp_path):
    broken = files.species + '\n[routes]\nx = { value = 1, source = "x" }\n'

    with pytest.raises(
        exopk.ParameterError, match=_pattern(tmp_path / "species.toml", "unknown table or key 'routes'")
    ):
        files.load(species=broken)


def test_unknown_species_name():
    with pytest.raises(exopk.ParameterError, match=r"unknown species 'hamster'.*expected one of: human, mouse, rat"):
        exopk.load_parameters(species="hamster")


def test_unknown_ev_name():
    with pytest.raises(exopk.ParameterError, match=r"unknown ev 'platelet'.*expected one of: msc"):
        exopk.load_parameters(ev="platelet")


def test_missing_file(tmp_path):
    missing = tmp_path / "nowhere.toml"

    with pytest.raises(exopk.ParameterError, match=r"species parameter file '.*nowhere\.toml' does not exist"):
        exopk.load_parameters(species=missing)
