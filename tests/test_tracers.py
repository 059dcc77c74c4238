"""Labels: conservation, the ideal-label limit, decay correction, label files, and what labels show."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import log_uniform, model_parameters

import exopk
from exopk.model.graph import LIVE_STATES, SINK_STATES, TISSUES
from exopk.observe.labels import label_system, places

DOSE_PARTICLES = 1e10
T_H = np.concatenate([[0.0], np.geomspace(1.0 / 3600.0, 24.0 * 14, 60)])
BUNDLED = exopk.observe.available_labels()


def _bolus(params, label, t_h=T_H, **kwargs) -> exopk.observe.TracerResult:
    return exopk.observe.simulate_label(params, exopk.IVBolus(dose_particles=DOSE_PARTICLES), t_h, label, **kwargs)


def _regimen():
    return exopk.Regimen(
        [
            exopk.IVBolus(dose_particles=DOSE_PARTICLES),
            exopk.IVInfusion(dose_particles=2 * DOSE_PARTICLES, duration_h=3.0, t_h=5.0),
            exopk.IVBolus(dose_particles=0.5 * DOSE_PARTICLES, t_h=30.0),
        ]
    )


# --- the bundled label files -----------------------------------------------------------------


def test_every_label_the_issue_names_ships():
    for name in ("DiR", "DiD", "DiI", "PKH26", "PKH67", "Gluc-lactadherin", "NanoLuc", "I-125", "I-124", "I-131"):
        assert name in BUNDLED
    for name in ("In-111", "Tc-99m", "Zr-89", "Cu-64", "SPIO", "gold"):
        assert name in BUNDLED


@pytest.mark.parametrize("name", BUNDLED)
def test_label_file_loads_with_a_source_for_every_value(name):
    label = exopk.observe.load_label(name)

    assert set(label.sources) == set(label.values)
    assert all(s.strip() for s in label.sources.values())
    assert label.family in ("lipophilic_dye", "luciferase", "radiolabel", "particle")


# Physical half-lives, NNDC NuDat 3 (textbook values).
PHYSICAL_HALF_LIFE_H = {
    "I-125": 59.4 * 24,
    "I-124": 4.176 * 24,
    "I-131": 8.0252 * 24,
    "In-111": 2.8047 * 24,
    "Tc-99m": 6.0067,
    "Zr-89": 78.41,
    "Cu-64": 12.701,
}


@pytest.mark.parametrize("name", list(PHYSICAL_HALF_LIFE_H))
def test_radionuclide_half_lives_are_the_textbook_values(name):
    assert exopk.observe.load_label(name)["physical_half_life_h"] == pytest.approx(PHYSICAL_HALF_LIFE_H[name], rel=1e-3)


def test_names_are_case_insensitive():
    assert exopk.observe.load_label("dir").name == "DiR"


# --- bad label files -------------------------------------------------------------------------

GOOD = """
[metadata]
label = "test"
family = "radiolabel"
modality = "nuclear"

[label]
physical_half_life_h = { value = 6.0, source = "s" }
dissociation_per_h = { value = 0.01, source = "s" }
free_at_injection_fraction = { value = 0.0, source = "s" }
free_blood_half_life_h = { value = 1.0, source = "s" }
free_to_urine_fraction = { value = 0.5, source = "s" }
free_to_feces_fraction = { value = 0.1, source = "s" }
free_to_thyroid_fraction = { value = 0.0, source = "s" }
free_retention_half_life_h = { value = 10.0, source = "s" }
free_inactivation_half_life_h = { value = inf, source = "s" }
thyroid_retention_half_life_h = { value = inf, source = "s" }
"""


def _write(tmp_path, text):
    path = tmp_path / "label.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_good_file_loads(tmp_path):
    label = exopk.observe.load_label(_write(tmp_path, GOOD))

    assert label.name == "test"
    assert label["liver_free_retention_half_life_h"] == 10.0  # default carried to every organ
    assert label["liver_free_affinity"] == 1.0


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda t: t.replace('dissociation_per_h = { value = 0.01, source = "s" }\n', ""),
            "missing key 'dissociation_per_h'",
        ),
        (lambda t: t.replace("value = 0.01", "value = -0.01"), "dissociation_per_h` must be non-negative"),
        (lambda t: t.replace("value = 0.5,", "value = 1.5,"), "free_to_urine_fraction` must lie in [0, 1]"),
        (lambda t: t.replace("value = 0.5,", "value = 0.95,"), "must sum to at most 1"),
        (lambda t: t.replace('source = "s" }\ndissociation', 'source = "" }\ndissociation'), "non-empty `source`"),
        (lambda t: t + 'colour_nm = { value = 1, source = "s" }\n', "unknown key 'colour_nm'"),
        (lambda t: t.replace("radiolabel", "magic"), "family must be one of"),
        (lambda t: t.replace('"nuclear"', '"optical"'), "needs a table [optical]"),
        (lambda t: t + "\n[organs.heart]\n", "unknown organ [organs.heart]"),
        (lambda t: t + '\n[organs.liver]\nfree_affinity = { value = -1, source = "s" }\n', "free_affinity` must be"),
        (lambda t: t.replace("value = 6.0", 'value = "six"'), "must be a number"),
        (lambda t: t.replace("[label]", "[lable]"), "unknown table or key 'lable'"),
        (lambda t: t.replace("value = 6.0, source", "value = 6.0, sauce"), "must be { value = <number>"),
        (lambda t: t + "oops = [", "not valid TOML"),
    ],
)
def test_bad_label_files_get_clear_errors_naming_file_and_key(tmp_path, edit, message):
    path = _write(tmp_path, edit(GOOD))

    with pytest.raises(exopk.ParameterError) as err:
        exopk.observe.load_label(path)

    assert message in str(err.value)
    assert str(path) in str(err.value)


def test_unknown_label_name_lists_the_choices():
    with pytest.raises(exopk.ParameterError, match="unknown label 'XYZ'.*DiR"):
        exopk.observe.load_label("XYZ")


def test_replace_rejects_unknown_and_invalid_values():
    label = exopk.observe.load_label("DiR")
    with pytest.raises(exopk.ParameterError, match="unknown label value"):
        label.replace(nonsense=1.0)
    with pytest.raises(exopk.ParameterError, match="must be non-negative"):
        label.replace(dissociation_per_h=-1.0)


def test_labelled_simulation_of_a_nonlinear_model_is_refused(params):
    saturable = params.single().replace(liver_capacity_particles=1e12)
    with pytest.raises(exopk.InputError, match="linear EV model"):
        _bolus(saturable, "DiR")


# --- conservation, ideal label, decay correction ----------------------------------------------


@pytest.mark.parametrize("name", BUNDLED)
def test_label_is_conserved_for_every_bundled_label(params, name):
    """Injected = bound + free + excreted + decayed + inactivated, at every time, to 1e-9 of the dose."""
    result = exopk.observe.simulate_label(params, _regimen(), T_H, name)

    assert result.conservation_error() < 1e-9
    bound = sum(result.bound_amount(o) for o in result.organs)
    free = sum(result.free_amount(o) for o in result.organs)
    gone = sum(result.sink_amount(s) for s in result.sinks)
    np.testing.assert_allclose(bound + free + gone, result.ev.administered_particles, rtol=0, atol=1e-9 * 3.5e10)


label_rates = st.fixed_dictionaries(
    {
        "physical_half_life_h": log_uniform(1e-2, 1e5),
        "dissociation_per_h": log_uniform(1e-4, 1e2),
        "free_at_injection_fraction": st.floats(0.0, 1.0),
        "free_blood_half_life_h": log_uniform(1e-3, 1e3),
        "free_to_urine_fraction": st.floats(0.0, 0.5),
        "free_to_feces_fraction": st.floats(0.0, 0.3),
        "free_to_thyroid_fraction": st.floats(0.0, 0.2),
        "free_retention_half_life_h": log_uniform(1e-2, 1e4),
        "free_inactivation_half_life_h": log_uniform(1e-2, 1e4),
        "liver_free_affinity": log_uniform(1e-2, 1e2),
    }
)


@given(params=model_parameters(), rates=label_rates)
def test_label_is_conserved_for_random_kinetics(params, rates):
    label = exopk.observe.load_label("I-125").replace(**rates)

    result = exopk.observe.simulate_label(params, _regimen(), T_H, label)

    assert result.conservation_error() < 1e-9
    assert np.all(result.amounts >= -1e-9 * DOSE_PARTICLES)


def test_ideal_label_reproduces_the_intact_ev_curves(params):
    result = exopk.observe.simulate_label(params, _regimen(), T_H, exopk.observe.ideal_label())

    # Bound label is the EV state itself: the same matrix, the same solver, the same numbers.
    n = len(LIVE_STATES)
    assert result.method == result.ev.method == "exact"
    np.testing.assert_array_equal(result.amounts[:, :n], result.ev.amounts_particles[:, :n])

    for organ in places():
        np.testing.assert_allclose(result.label_percent_id(organ), result.true_percent_id(organ), rtol=0, atol=1e-11)
        if organ in TISSUES:  # organs with a mass (not the administration sites)
            np.testing.assert_allclose(
                result.label_percent_id_per_g(organ), result.ev.percent_id_per_g(organ), rtol=1e-12, atol=1e-12
            )
        assert np.all(result.free_amount(organ) == 0.0)
    # Excreted and degraded label leaves as the vesicles do.
    np.testing.assert_allclose(result.excreted_amount(), result.ev.eliminated(), rtol=1e-12, atol=1e-3)


@given(params=model_parameters())
def test_ideal_label_reproduces_random_ev_models(params):
    result = _bolus(params, exopk.observe.ideal_label(), t_h=np.linspace(0.0, 48.0, 25))

    for organ in places():
        np.testing.assert_allclose(result.label_percent_id(organ), result.true_percent_id(organ), rtol=0, atol=1e-9)


def test_a_nearly_ideal_label_approaches_the_ev_curves(params):
    """The ideal label is the limit of real ones: no dissociation, free label excreted at once."""
    near = exopk.observe.load_label("In-111").replace(
        dissociation_per_h=0.0,
        physical_half_life_h=math.inf,
        free_blood_half_life_h=1e-6,
        free_to_urine_fraction=1.0,
        free_to_feces_fraction=0.0,
        **{f"{o}_free_retention_half_life_h": 1e-6 for o in exopk.ORGANS},
    )
    result = _bolus(params, near)

    for organ in ("liver", "lung", "spleen"):
        np.testing.assert_allclose(result.label_percent_id(organ), result.true_percent_id(organ), rtol=0, atol=1e-4)


@pytest.mark.parametrize("name", ["Tc-99m", "I-124", "Cu-64", "In-111"])
def test_decay_correction_recovers_the_undecayed_curve(params, name):
    label = exopk.observe.load_label(name)
    decaying = _bolus(params, label)
    stable = _bolus(params, label.replace(physical_half_life_h=math.inf))

    for organ in decaying.organs:
        undecayed = stable.label_percent_id(organ)
        np.testing.assert_allclose(
            decaying.label_percent_id(organ, decay_corrected=True), undecayed, rtol=1e-8, atol=1e-12
        )
        assert np.all(decaying.label_percent_id(organ) <= undecayed + 1e-12)
    for organ in ("liver", "blood"):
        np.testing.assert_allclose(
            decaying.label_percent_id_per_g(organ, decay_corrected=True),
            stable.label_percent_id_per_g(organ),
            rtol=1e-8,
            atol=1e-12,
        )
    # Decay acts on bound label too: it is not vesicle loss.
    assert decaying.bound_percent_id("liver")[-20] < stable.bound_percent_id("liver")[-20]
    np.testing.assert_allclose(decaying.true_percent_id("liver"), stable.true_percent_id("liver"))


def test_expm_and_exact_agree_for_the_label(params):
    exact = exopk.observe.simulate_label(params, _regimen(), T_H, "I-125")
    expm = exopk.observe.simulate_label(params, _regimen(), T_H, "I-125", method="expm")

    assert exact.method == "exact" and expm.method == "expm"
    np.testing.assert_allclose(exact.amounts, expm.amounts, rtol=0, atol=1e-9 * DOSE_PARTICLES)


def test_label_system_is_block_triangular_and_built_from_the_ev_model(params):
    """Bound label is the EV rate matrix (with dissociation and decay); free label never feeds back."""
    label = exopk.observe.load_label("Tc-99m")
    K, E = exopk.model.graph.rate_matrices(params.values)
    system = label_system(params.values, label, K[0], E[0])
    n = len(LIVE_STATES)
    shift = label["dissociation_per_h"] + label.decay_per_h

    np.testing.assert_allclose(system.M[:n, :n], K[0] - shift * np.eye(n), rtol=1e-14, atol=1e-12)
    assert np.all(system.M[:n, n:] == 0.0)
    for sink in SINK_STATES:
        if sink.startswith("degraded_"):
            assert f"excreted_{sink}" not in system.sinks
        else:
            assert f"excreted_{sink}" in system.sinks
    # Column sums: every loss goes somewhere (states or sinks).
    np.testing.assert_allclose(system.M.sum(axis=0) + system.G.sum(axis=0), 0.0, atol=1e-9)


def test_free_label_injected_goes_to_the_free_pool_where_the_dose_enters(params):
    label = exopk.observe.load_label("Tc-99m").replace(free_at_injection_fraction=0.25)
    result = _bolus(params, label, t_h=np.array([0.0]))

    assert result.free_percent_id("blood")[0] == pytest.approx(25.0)
    assert result.bound_percent_id("blood")[0] == pytest.approx(75.0)


# --- what labels show (calibration checks, literature.md §3) ----------------------------------


@pytest.mark.validation
@pytest.mark.parametrize("name", ["In-111", "DiR", "Gluc-lactadherin", "NanoLuc"])
def test_blood_signal_half_life_under_10_min(params, name):
    """Lázaro-Ibáñez et al. 2021: blood half-life < 10 min for 111In, DiR and luciferase-labelled EVs."""
    t_min = np.array([1.0, 5.0])
    blood = _bolus(params, name, t_h=t_min / 60.0).label_percent_id("blood", decay_corrected=True)

    half_life_min = (t_min[1] - t_min[0]) * math.log(2) / math.log(blood[0] / blood[1])

    assert 0 < half_life_min < 10.0


@pytest.mark.validation
@pytest.mark.xfail(
    strict=True,
    reason="issue 13: the stealth subpopulation keeps labelled EVs in the brain's residual blood "
    "(~0.1 %ID, 37x below free HMPAO instead of the 50x asked); Hwang 2015 saw no brain signal",
)
def test_free_hmpao_gives_a_brain_signal_labelled_evs_do_not(params):
    """Hwang et al. 2015 (qualitative): free 99mTc-HMPAO enters the brain, 99mTc-HMPAO-EVs do not."""
    label = exopk.observe.load_label("Tc-99m")
    t_h = np.array([0.0, 0.5, 1.0, 3.0])
    evs = _bolus(params, label, t_h=t_h)
    free = _bolus(params, label.replace(free_at_injection_fraction=1.0), t_h=t_h)

    brain_evs = evs.label_percent_id("brain", decay_corrected=True)[1:]
    brain_free = free.label_percent_id("brain", decay_corrected=True)[1:]
    assert np.all(brain_free > 1.0)  # a few %ID, as a perfusion agent
    assert np.all(brain_free > 50 * brain_evs)


@pytest.mark.validation
@pytest.mark.parametrize("name", ["DiR", "DiD", "DiI", "PKH26", "PKH67"])
def test_dye_signal_persists_for_days_after_intact_evs_are_gone(params, name):
    """literature.md §3a: lipophilic dye signal outlives the vesicles (free dye stays in tissue).

    One population (the PS-exposing majority): the stealth minority of the default mixture
    (issue 13) circulates for hours, so intact EVs of the mixture are not gone by day 3.
    """
    params = params.single()
    # Day 7, not day 3: the joint fit (issue 13) gives extrahepatic cells a 9-h degradation half-life.
    result = _bolus(params, name, t_h=np.array([0.0, 4.0, 168.0, 336.0]))

    for organ in ("liver", "spleen", "lung"):
        true, dye = result.true_percent_id(organ), result.label_percent_id(organ)
        assert true[2] < 1e-3 * true[1]  # intact EVs gone by day 7
        assert dye[2] > 0.5 * dye[1]  # the dye signal is not
        assert dye[3] > 100 * true[3]
    assert result.free_percent_id("liver")[2] > 0.99 * result.label_percent_id("liver")[2]


def test_free_dye_persists_longer_than_intact_evs(params):
    """Terminal half-lives in the liver: free dye (days 3-7) >> intact EVs (hours 4-24)."""
    t_h = np.array([4.0, 24.0, 72.0, 168.0])
    result = _bolus(params, "DiR", t_h=t_h)

    def half_life(y, i, j):
        return (t_h[j] - t_h[i]) * math.log(2) / math.log(y[i] / y[j])

    free_dye = half_life(result.free_amount("liver"), 2, 3)
    intact = half_life(result.ev.amount("liver"), 0, 1)
    assert free_dye > 20 * intact > 0


def test_luciferase_signal_dies_with_the_vesicles(params):
    """Morishita 2015 moved to 125I because the gLuc-LA signal was lost: the enzyme signal does not outlive the EVs."""
    result = _bolus(params, "Gluc-lactadherin", t_h=np.array([0.0, 4.0, 24.0]))

    for organ in ("liver", "lung", "spleen"):
        assert result.label_percent_id(organ)[2] < 2 * result.true_percent_id(organ)[2] + 1e-6
    assert result.sink_amount("inactivated")[2] > 0.5 * DOSE_PARTICLES


def test_free_iodide_reaches_thyroid_and_urine_not_indium(params):
    iodine = _bolus(params, "I-125", t_h=np.array([0.0, 24.0]))
    indium = _bolus(params, "In-111", t_h=np.array([0.0, 24.0]))

    assert "thyroid" in iodine.organs and "thyroid" not in indium.organs
    assert iodine.label_percent_id("thyroid")[1] > 1.0
    assert iodine.sink_amount("excreted_urine")[1] > 0.1 * DOSE_PARTICLES
    # Residualising indium stays in the organs that degraded the vesicles.
    assert indium.label_percent_id("liver")[1] > 2 * iodine.label_percent_id("liver")[1]


# --- outputs ---------------------------------------------------------------------------------


def test_to_frame_adds_label_rows_with_units(params):
    result = _bolus(params, "DiR", t_h=np.array([0.0, 1.0, 24.0]))
    frame = result.to_frame()

    assert list(frame.columns) == ["time_h", "organ", "quantity", "value", "unit"]
    units = dict(zip(frame["quantity"], frame["unit"], strict=False))
    assert units["label_percent_id"] == "%ID"
    assert units["label_percent_id_per_g_decay_corrected"] == "%ID/g"
    assert units["radiance_dorsal_au"] == "a.u."
    assert units["percent_id"] == "%ID"  # the intact-EV rows are still there
    liver = frame[(frame.organ == "liver") & (frame.quantity == "label_percent_id")]["value"].to_numpy()
    np.testing.assert_allclose(liver, result.label_percent_id("liver"))


def test_nuclear_labels_have_no_radiance(params):
    frame = _bolus(params, "I-125", t_h=np.array([0.0, 1.0])).to_frame()

    assert not frame["quantity"].str.startswith("radiance").any()
    assert (frame.organ == "thyroid").any()


def test_public_tracer_functions_document_their_parameters():
    import inspect

    for name in (
        "simulate_label",
        "load_label",
        "load_imaging",
        "transmission",
        "optical_radiance",
        "plot_whole_body",
        "plot_apparent_vs_true",
    ):
        function = next(getattr(m, name) for m in (exopk, exopk.model, exopk.observe, exopk.plots) if name in m.__all__)
        doc = inspect.getdoc(function)
        for parameter in inspect.signature(function).parameters:
            assert parameter in doc, f"exopk.{name}: parameter `{parameter}` is not documented"


def test_radiance_rows_need_an_imaging_file_for_the_species(params, monkeypatch):
    import exopk.observe.imaging

    result = _bolus(params, "DiR", t_h=np.array([0.0, 1.0]))
    monkeypatch.setattr(exopk.observe.imaging, "imaging_available", lambda species: False)

    frame = result.to_frame()

    assert not frame["quantity"].str.startswith("radiance").any()
    assert (frame["quantity"] == "label_percent_id").any()
