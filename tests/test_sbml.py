"""SBML export: valid SBML, built from the model's own description, and the same answers in libroadrunner and COPASI."""

from __future__ import annotations

import sys

import numpy as np
import pytest

import exopk
from exopk.cli import main
from exopk.io.sbml import ANNOTATION_NS, DEPOT_COMPARTMENT_ML, copasi_amounts, export_sbml, roadrunner_amounts
from exopk.model import graph as _model

SKIP_REASON = "SBML extra not installed (pip install 'exopk[sbml]'); `make test` installs it"
libsbml = pytest.importorskip("libsbml", reason=SKIP_REASON)

DOSE = 1e10
T_H = np.linspace(0.0, 24.0, 49)
FLOOR = 1e-9  # compare relative to max(|exopk|, FLOOR × total dose): states below ~10 particles per 1e10 don't count


@pytest.fixture(scope="module")
def params():
    """One EV population (the default is a mixture since issue 13; see test_mixture_...)."""
    return exopk.load_parameters().single()


def test_mixture_of_subpopulations_round_trips_through_libroadrunner():
    """Each subpopulation is its own set of states (ids suffixed __<name>); their amounts add."""
    pytest.importorskip("roadrunner", reason=SKIP_REASON)
    mixture = exopk.load_parameters()
    assert len(mixture.subpopulations) == 2
    regimen = REGIMENS["multi_dose"]
    sbml = export_sbml(mixture, regimen)
    model = _document(sbml).getModel()

    assert model.getSpecies("blood_venous__stealth") is not None
    assert model.getSpecies("blood_venous__ps_exposing") is not None
    reference = exopk.simulate(mixture, regimen, T_H).amounts_particles
    other = roadrunner_amounts(sbml, T_H, atol_particles=1e-8)
    assert _relative_error(reference, other, regimen.total_particles) < 1e-6


REGIMENS = {
    "iv_bolus": exopk.Regimen([exopk.IVBolus(dose_particles=DOSE)]),
    "iv_infusion": exopk.Regimen([exopk.IVInfusion(dose_particles=DOSE, duration_h=2.0)]),
    "multi_dose": exopk.Regimen(
        [
            exopk.IVBolus(dose_particles=DOSE),
            exopk.IVBolus(dose_particles=0.5 * DOSE, t_h=6.0),
            exopk.IVInfusion(dose_particles=2 * DOSE, duration_h=2.0, t_h=12.0),
            exopk.IVInfusion(dose_particles=DOSE, duration_h=3.0, t_h=13.0),
        ]
    ),
    # Repeats (ii/addl), lag and bioavailability, exported as events; 14 administrations, so
    # exopk solves it by event stepping (issue 14).
    "repeated": exopk.Regimen(
        [
            exopk.IVBolus(dose_particles=DOSE, ii_h=2.0, addl=9),
            exopk.Infusion(
                dose_particles=DOSE, duration_h=1.0, into="subcutaneous", t_h=1.0, ii_h=6.0, addl=3, lag_h=0.5, f=0.8
            ),
        ]
    ),
}


def _document(text: str):
    doc = libsbml.readSBMLFromString(text)
    assert doc.getNumErrors() == 0
    return doc


def _problems(doc) -> list[str]:
    doc.setConsistencyChecks(libsbml.LIBSBML_CAT_MODELING_PRACTICE, True)
    doc.checkConsistency()
    return [
        f"{doc.getError(i).getSeverityAsString()}: {doc.getError(i).getMessage()}" for i in range(doc.getNumErrors())
    ]


def _relative_error(reference: np.ndarray, other: np.ndarray, total_particles: float) -> float:
    return float(np.max(np.abs(other - reference) / np.maximum(np.abs(reference), FLOOR * total_particles)))


@pytest.mark.parametrize("name", sorted(REGIMENS))
def test_export_passes_libsbml_consistency_checks_with_no_errors_or_warnings(params, name):
    doc = _document(export_sbml(params, REGIMENS[name]))

    assert _problems(doc) == []
    assert (doc.getLevel(), doc.getVersion()) == (3, 2)


def test_nonlinear_export_passes_consistency_checks(params):
    # capacity couples the EV subpopulations: one population (issue 13)
    capped = params.single().replace(liver_capacity_particles=1e9, spleen_capacity_particles=2e8)

    doc = _document(export_sbml(capped, REGIMENS["multi_dose"]))

    assert _problems(doc) == []
    assert doc.getModel().getReaction("saturation_liver") is not None
    assert doc.getModel().getReaction("saturation_spleen") is not None
    assert doc.getModel().getReaction("saturation_lung") is None


def test_species_compartments_and_units_follow_the_model(params):
    model = _document(export_sbml(params, REGIMENS["iv_bolus"])).getModel()
    state_ml = _model.volumes(params.values).state_ml

    assert [model.getSpecies(i).getId() for i in range(model.getNumSpecies())] == list(_model.STATES)
    for state, volume_ml in zip(_model.LIVE_STATES, state_ml, strict=True):
        species = model.getSpecies(state)
        assert species.getHasOnlySubstanceUnits()
        expected_ml = volume_ml if volume_ml > 0 else DEPOT_COMPARTMENT_ML  # depots: no volume in the model
        assert model.getCompartment(species.getCompartment()).getSize() == pytest.approx(expected_ml, rel=1e-14)
    for state in _model.SINK_STATES:
        assert model.getSpecies(state).getCompartment() == "sinks"
    assert model.getSpecies("blood_venous").getInitialAmount() == DOSE
    assert (model.getTimeUnits(), model.getSubstanceUnits(), model.getVolumeUnits()) == ("hour", "particle", "mL")
    hour = model.getUnitDefinition("hour").getUnit(0)
    assert (hour.getKind(), hour.getMultiplier()) == (libsbml.UNIT_KIND_SECOND, 3600.0)


def test_every_parameter_is_exported_with_value_unit_and_source(params):
    model = _document(export_sbml(params, REGIMENS["iv_bolus"])).getModel()
    table = params.table()

    for row in table.itertuples(index=False):
        p = model.getParameter(row.name)
        assert p is not None, row.name
        assert p.getValue() == pytest.approx(row.value, rel=1e-14) or (np.isinf(row.value) and np.isinf(p.getValue()))
        assert row.source[:40] in p.getNotesString().replace("&amp;", "&")
        assert ANNOTATION_NS in p.getAnnotationString()
    assert model.getParameter("liver_uptake_vascular_per_h").getUnits() == "per_hour"
    assert model.getParameter("liver_volume_ml").getUnits() == "mL"


def test_one_reaction_per_transfer_with_rate_and_source_parameters(params):
    model = _document(export_sbml(params, REGIMENS["iv_bolus"])).getModel()
    moves = _model.transfers(params.values)

    assert model.getNumReactions() == len(moves)
    for k, t in enumerate(moves):
        reaction = model.getReaction(f"transfer_{k}_{t.source}_to_{t.target}")
        assert reaction.getReactant(0).getSpecies() == t.source
        assert reaction.getProduct(0).getSpecies() == t.target
        rate = model.getParameter(f"rate_{k}_{t.source}_to_{t.target}")
        assert rate.getValue() == pytest.approx(float(t.rate_per_h[0]), rel=1e-14)  # libsbml writes 15 digits
        annotation = rate.getAnnotationString()
        assert f'kind="{t.kind}"' in annotation
        for name in t.parameters:
            assert name in annotation


def test_rate_matrix_rebuilt_from_the_file_equals_exopk(params):
    """The reactions, read back as a rate matrix, are exopk's rate matrix (no transfer lost or doubled)."""
    model = _document(export_sbml(params, REGIMENS["iv_bolus"])).getModel()
    index = {s: i for i, s in enumerate(_model.STATES)}
    rebuilt = np.zeros((len(_model.STATES), len(_model.STATES)))
    for i in range(model.getNumReactions()):
        r = model.getReaction(i)
        src, dst = index[r.getReactant(0).getSpecies()], index[r.getProduct(0).getSpecies()]
        rate = model.getParameter(libsbml.formulaToL3String(r.getKineticLaw().getMath()).split(" * ")[0]).getValue()
        rebuilt[src, src] -= rate
        rebuilt[dst, src] += rate
    K, E = _model.rate_matrices(params.values)
    n = _model.N_LIVE

    np.testing.assert_allclose(rebuilt[:n, :n], K[0], rtol=1e-14, atol=0)
    np.testing.assert_allclose(rebuilt[n:, :n], E[0], rtol=1e-14, atol=0)


def test_later_boluses_and_infusions_are_events(params):
    model = _document(export_sbml(params, REGIMENS["multi_dose"])).getModel()

    event_ids = sorted(model.getEvent(i).getId() for i in range(model.getNumEvents()))
    assert event_ids == [
        "bolus_0",
        "infusion_0_blood_venous_end",
        "infusion_0_blood_venous_start",
        "infusion_1_blood_venous_end",
        "infusion_1_blood_venous_start",
    ]
    assert model.getSpecies("blood_venous").getInitialAmount() == DOSE
    assert model.getParameter("infusion_0_blood_venous_particles_per_h").getValue() == 0.0


def test_organ_totals_are_assignment_rules(params):
    model = _document(export_sbml(params, REGIMENS["iv_bolus"])).getModel()

    for organ in _model.REPORTED_ORGANS:
        assert model.getAssignmentRuleByVariable(f"total_{organ}_particles") is not None


def test_writes_the_file_and_returns_the_same_text(params, tmp_path):
    path = tmp_path / "model.xml"

    text = export_sbml(params, REGIMENS["iv_bolus"], path)

    assert path.read_text(encoding="utf-8") == text
    assert [p.name for p in tmp_path.iterdir()] == ["model.xml"]


def test_unwritable_path_is_a_clear_error(params, tmp_path):
    with pytest.raises(exopk.ExopkError, match="cannot be written"):
        export_sbml(params, REGIMENS["iv_bolus"], tmp_path / "missing" / "model.xml")


def test_zero_dose_is_refused(params):
    with pytest.raises(exopk.DosingError, match="0 particles"):
        export_sbml(params, exopk.IVBolus(dose_particles=0.0))


def test_missing_libsbml_names_the_extra(params, monkeypatch):
    monkeypatch.setitem(sys.modules, "libsbml", None)

    with pytest.raises(exopk.ExopkError, match=r"exopk\[sbml\]"):
        export_sbml(params, REGIMENS["iv_bolus"])


def test_cli_export_sbml_writes_a_consistent_file(tmp_path, capsys):
    out = tmp_path / "model.xml"

    status = main(
        ["export-sbml", "--route", "iv_infusion", "--dose", "1e10", "--duration", "2", "--dose-time", "1"]
        + ["--set", "liver_degradation_per_h=0.5", "--out", str(out)]
    )

    assert status == 0
    assert "wrote SBML" in capsys.readouterr().out
    model = _document(out.read_text(encoding="utf-8")).getModel()
    assert model.getParameter("liver_degradation_per_h").getValue() == 0.5
    assert "--set" in model.getParameter("liver_degradation_per_h").getNotesString()
    # the default EVs are a mixture (issue 13): one infusion per subpopulation
    assert model.getEvent("infusion_0_blood_venous__stealth_start") is not None


def test_cli_export_sbml_usage_errors_write_nothing(tmp_path, capsys):
    out = tmp_path / "model.xml"

    assert main(["export-sbml", "--out", str(out)]) == 2
    assert main(["export-sbml", "--dose", "1e10", "--set", "nope=1", "--out", str(out)]) == 2
    assert main(["export-sbml", "--dose", "1e10"]) == 2

    err = capsys.readouterr().err
    assert "give a dose" in err and "unknown parameter 'nope'" in err and "--out" in err
    assert not out.exists()


# Cross-check in an independent simulator -------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(REGIMENS))
def test_libroadrunner_reproduces_exopk_within_1e_6(params, name):
    pytest.importorskip("roadrunner", reason=SKIP_REASON)
    regimen = REGIMENS[name]
    exact = exopk.simulate(params, regimen, T_H).amounts_particles

    other = roadrunner_amounts(export_sbml(params, regimen), T_H)

    assert other.shape == exact.shape
    assert _relative_error(exact, other, regimen.total_particles) < 1e-6


def test_libroadrunner_reproduces_exopk_on_the_fine_grid(params):
    pytest.importorskip("roadrunner", reason=SKIP_REASON)
    t_h = np.linspace(0.0, 48.0, 2881)
    regimen = REGIMENS["iv_bolus"]
    exact = exopk.simulate(params, regimen, t_h).amounts_particles

    other = roadrunner_amounts(export_sbml(params, regimen), t_h)

    assert _relative_error(exact, other, regimen.total_particles) < 1e-6


def test_libroadrunner_reproduces_capacity_limited_uptake(params):
    """Non-linear model, driven into the sliding motion along A_m = capacity (a kink in the right-hand side)."""
    pytest.importorskip("roadrunner", reason=SKIP_REASON)
    # capacity couples the EV subpopulations: one population (issue 13)
    capped = params.single().replace(liver_capacity_particles=1e9, spleen_capacity_particles=2e8)
    regimen = exopk.Regimen([exopk.IVBolus(dose_particles=DOSE), exopk.IVBolus(dose_particles=0.5 * DOSE, t_h=6.0)])
    # LSODA: with blood counted once (issue 13) the circulating pools are small (0.2 mL in the mouse) and
    # BDF at rtol 1e-12 cannot restart after the second bolus on the capacity kink.
    reference = exopk.simulate(capped, regimen, T_H, rtol=1e-12, atol_particles=1e-4, solver="LSODA").amounts_particles
    linear = exopk.simulate(params.single(), regimen, T_H).amounts_particles

    other = roadrunner_amounts(export_sbml(capped, regimen), T_H)

    assert _relative_error(reference, other, regimen.total_particles) < 1e-6
    assert _relative_error(reference, linear, regimen.total_particles) > 0.1  # the capacity matters here


def test_cli_export_sbml_takes_exactly_the_dose_options_of_simulate():
    from exopk.cli import build_parser

    commands = next(a for a in build_parser()._actions if a.dest == "command").choices

    def options(parser) -> set[str]:
        return {s for a in parser._actions for s in a.option_strings} - {"-h", "--help", "--out", "--plot"}

    # Output-grid and plot options, and --tracer (the label layer is not exported yet), are simulate's own.
    simulate_only = {
        "--t-end",
        "--dt",
        "--method",
        "--solver",
        "--rtol",
        "--organs",
        "--quantity",
        "--tracer",
        "--events",
    }
    assert options(commands["export-sbml"]) == options(commands["simulate"]) - simulate_only


def test_cli_export_sbml_from_a_regimen_file(tmp_path):
    regimen = tmp_path / "regimen.csv"
    regimen.write_text(
        "time_h,route,dose_particles,duration_h\n0,iv_bolus,1e10,\n4,iv_bolus,1e10,\n8,iv_infusion,1e10,2\n",
        encoding="utf-8",
    )
    out = tmp_path / "model.xml"

    assert main(["export-sbml", "--regimen", str(regimen), "--out", str(out)]) == 0

    model = _document(out.read_text(encoding="utf-8")).getModel()
    assert model.getNumEvents() == 2 * 3  # bolus at 4 h, infusion start and end; per subpopulation (issue 13)


ROUTE_REGIMENS = {
    "intranasal_with_lungs": exopk.Regimen([exopk.Intranasal(dose_particles=DOSE, lower_airway_fraction=0.2)]),
    "iv_then_sc_then_intracerebral": exopk.Regimen(
        [
            exopk.IVBolus(dose_particles=DOSE),
            exopk.Subcutaneous(dose_particles=DOSE, t_h=2.0),
            exopk.LocalInjection(dose_particles=0.1 * DOSE, organ="brain", space="tissue", t_h=3.0),
        ]
    ),
    "intraperitoneal_and_intratracheal": exopk.Regimen(
        [exopk.Intraperitoneal(dose_particles=DOSE), exopk.Intratracheal(dose_particles=DOSE, t_h=1.0)]
    ),
}


@pytest.mark.parametrize("name", sorted(ROUTE_REGIMENS))
def test_libroadrunner_reproduces_exopk_for_every_route(params, name):
    """Depots, nose-to-brain transport and local injections survive the export."""
    pytest.importorskip("roadrunner", reason=SKIP_REASON)
    regimen = ROUTE_REGIMENS[name]
    reference = exopk.simulate(params, regimen, T_H).amounts_particles

    # atol 1e-8 particles: with blood counted once (issue 13) the circulating pools are small and
    # CVODE's default 1e-6 left 1.7e-6 of the dose of error on the SC depot after its bolus.
    other = roadrunner_amounts(export_sbml(params, regimen), T_H, atol_particles=1e-8)

    assert _relative_error(reference, other, regimen.total_particles) < 1e-6


def test_steady_state_doses_are_refused_with_the_reason(params):
    with pytest.raises(exopk.DosingError, match=r"SBML export does not take steady-state \(ss=1\) doses or resets"):
        export_sbml(params, exopk.IVBolus(dose_particles=DOSE, ii_h=24.0, ss=1))


def test_repeated_regimen_is_solved_by_stepping_and_exported_as_events(params):
    assert exopk.simulate(params, REGIMENS["repeated"], T_H).metadata["n_propagators"] >= 1
    doc = _document(export_sbml(params, REGIMENS["repeated"]))
    # 9 later boluses, 4 infusion starts after 0 h and 4 stops
    assert doc.getModel().getNumEvents() == 9 + 4 + 4


# Regression test for #12 item 9: the four depot compartments had size 0, and COPASI stopped at its
# first step ("Invalid state at time 1").
def test_depot_compartments_have_a_stated_non_zero_size(params):
    model = _document(export_sbml(params, ROUTE_REGIMENS["intraperitoneal_and_intratracheal"])).getModel()

    sizes = {
        model.getCompartment(i).getId(): model.getCompartment(i).getSize() for i in range(model.getNumCompartments())
    }

    assert min(sizes.values()) > 0.0
    for depot in ("lung_airspace", "nasal_cavity", "peritoneal_cavity", "subcutaneous_site"):
        assert sizes[f"V_{depot}"] == DEPOT_COMPARTMENT_ML
        assert "changes no result" in model.getCompartment(f"V_{depot}").getNotesString()
    assert sizes["V_liver_vascular"] != DEPOT_COMPARTMENT_ML  # organs keep their physiological volumes


COPASI_REGIMENS = {
    "iv_bolus": REGIMENS["iv_bolus"],
    "intraperitoneal_then_iv_infusion": exopk.Regimen(
        [exopk.Intraperitoneal(dose_particles=DOSE), exopk.IVInfusion(dose_particles=DOSE, duration_h=2.0, t_h=6.0)]
    ),
}
COPASI_T_H = np.array([0.0, 0.01, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 6.0, 7.0, 8.0, 12.0, 24.0])


# Regression test for #12 item 9 (COPASI beside libroadrunner).
@pytest.mark.parametrize("name", sorted(COPASI_REGIMENS))
def test_copasi_reproduces_exopk(params, name):
    """COPASI's LSODA at rtol 1e-12 against the exact solution: measured 2-7e-10; bound 1e-8."""
    pytest.importorskip("basico", reason=SKIP_REASON)
    regimen = COPASI_REGIMENS[name]
    exact = exopk.simulate(params, regimen, COPASI_T_H).amounts_particles

    other = copasi_amounts(export_sbml(params, regimen), COPASI_T_H)

    assert other.shape == exact.shape
    assert _relative_error(exact, other, regimen.total_particles) < 1e-8


def test_copasi_reproduces_capacity_limited_uptake(params):
    """Non-linear model: exopk's default ODE settings are accurate to 1e-6 (README), COPASI to ~1e-10."""
    pytest.importorskip("basico", reason=SKIP_REASON)
    capped = params.replace(liver_capacity_particles=1e9, spleen_capacity_particles=2e8)
    regimen = exopk.Regimen([exopk.IVBolus(dose_particles=DOSE)])
    result = exopk.simulate(capped, regimen, COPASI_T_H).amounts_particles

    other = copasi_amounts(export_sbml(capped, regimen), COPASI_T_H)

    assert _relative_error(result, other, regimen.total_particles) < 1e-6
    linear = exopk.simulate(params, regimen, COPASI_T_H).amounts_particles
    assert _relative_error(result, linear, regimen.total_particles) > 0.1  # the capacity matters here


def test_missing_basico_names_the_extra(params, monkeypatch):
    monkeypatch.setitem(sys.modules, "basico", None)

    with pytest.raises(exopk.ExopkError, match=r"COPASI \(basico\) is not installed.*exopk\[sbml\]"):
        copasi_amounts(export_sbml(params, REGIMENS["iv_bolus"]), COPASI_T_H)
