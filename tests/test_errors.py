"""One exception family: ExopkError; input errors are ValueErrors, solver failures RuntimeErrors (#12)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import numpy as np
import pytest

import exopk
import exopk.errors
import exopk.solve.linear

SRC = Path(exopk.__file__).parent

INPUT_ERRORS = {
    "InputError": (exopk.ExopkError, ValueError),
    "ParameterError": (exopk.InputError,),
    "PopulationError": (exopk.ParameterError,),
    "SensitivityError": (exopk.ParameterError,),
    "DosingError": (exopk.InputError,),
    "DataError": (exopk.InputError,),
    "FitError": (exopk.InputError,),
    "NCAError": (exopk.InputError,),
    "ExecutorError": (exopk.InputError, TypeError),
}
OTHER_ERRORS = {
    "SimulationError": (exopk.ExopkError, RuntimeError),
    "DependencyError": (exopk.ExopkError, ImportError),
    "OutputError": (exopk.ExopkError, OSError),
}


@pytest.mark.parametrize(("name", "bases"), [*INPUT_ERRORS.items(), *OTHER_ERRORS.items()])
def test_each_class_has_its_bases_and_is_public(name, bases):
    cls = getattr(exopk, name)

    assert cls is getattr(exopk.errors, name)
    assert name in exopk.__all__ and name in exopk.errors.__all__
    assert cls.__bases__ == bases
    assert issubclass(cls, exopk.ExopkError)


@pytest.mark.parametrize("name", INPUT_ERRORS)
def test_input_errors_are_value_errors_and_not_runtime_errors(name):
    cls = getattr(exopk, name)
    assert issubclass(cls, ValueError)
    assert not issubclass(cls, RuntimeError)


def test_simulation_error_is_not_an_input_error():
    assert not issubclass(exopk.SimulationError, ValueError)


def test_old_import_locations_still_work():
    from exopk.analysis.fit import FitError
    from exopk.analysis.nca import NCAError
    from exopk.analysis.observations import DataError
    from exopk.analysis.population import PopulationError
    from exopk.analysis.sensitivity import SensitivityError
    from exopk.solve.executors import ExecutorError

    assert (FitError, NCAError, DataError, PopulationError, SensitivityError, ExecutorError) == (
        exopk.FitError,
        exopk.NCAError,
        exopk.DataError,
        exopk.PopulationError,
        exopk.SensitivityError,
        exopk.ExecutorError,
    )


def test_exception_classes_are_defined_only_in_errors_py():
    """No library module keeps its own exception class, so there is one family.

    The presentation layers are exempt: the CLI's UsageError (exit status 2) and the web page's
    FormError (a message per field), Cancelled and HTTP errors never leave their layer.
    """
    scattered = []
    for path in SRC.rglob("*.py"):
        if path.name == "errors.py" or {"cli", "app"} & set(path.relative_to(SRC).parts):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef) and any(
                isinstance(b, ast.Name) and (b.id.endswith("Error") or b.id == "Exception") for b in node.bases
            ):
                scattered.append(f"{path.relative_to(SRC)}:{node.name}")
    assert scattered == []


@pytest.fixture(scope="module")
def params():
    return exopk.load_parameters()


BOLUS = exopk.IVBolus(dose_particles=1e10)


def test_bad_output_times_are_input_errors_not_simulation_errors(params):
    # Regression test for #12: these were SimulationError (a RuntimeError) before.
    with pytest.raises(ValueError, match=r"`t_h` must be strictly increasing; got 2.0 then 1.0 at index 2"):
        exopk.simulate(params, BOLUS, [0.0, 2.0, 1.0])


def test_unknown_organ_asked_of_a_result_is_an_input_error(params):
    # Regression test for #12: results accessors raised SimulationError for an unknown organ.
    result = exopk.simulate(params, BOLUS, [0.0, 1.0])
    with pytest.raises(exopk.InputError, match=r"unknown organ 'heart'; expected one of: blood"):
        result.percent_id("heart")
    labelled = exopk.observe.simulate_label(params, BOLUS, [0.0, 1.0], "DiR")
    with pytest.raises(exopk.InputError, match=r"unknown organ 'heart'"):
        labelled.label_percent_id("heart")


def test_a_wrong_executor_is_both_an_input_error_and_a_type_error(params):
    population = exopk.analysis.sample_population(params, 2, {"liver_uptake_vascular_per_h": 0.3}, seed=1)
    with pytest.raises(TypeError, match=r"`executor` must be a concurrent.futures.Executor"):
        exopk.analysis.simulate_population(population, BOLUS, [0.0, 1.0], executor=object())


def test_zero_dose_is_a_dosing_error(params):
    with pytest.raises(exopk.DosingError, match=r"total dose is 0 particles"):
        exopk.simulate(params, exopk.IVBolus(dose_particles=0.0), [0.0, 1.0])


def test_a_solver_failure_is_a_simulation_error(params, monkeypatch):
    """A stiff solve that stops early is a numerical failure: RuntimeError, not ValueError."""

    class Failed:  # what solve_ivp returns when it cannot meet its tolerance
        success = False
        message = "Required step size is less than spacing between numbers."
        t = np.array([0.0, 0.1])

    monkeypatch.setattr(exopk.solve.linear, "solve_ivp", lambda *args, **kwargs: Failed())
    with pytest.raises(RuntimeError, match=r"ODE solver \(BDF\) stopped early") as info:
        exopk.simulate(
            params, exopk.IVBolus(dose_particles=1e10, t_h=1.0), np.linspace(0, 24, 49), method="ode", solver="BDF"
        )
    assert type(info.value) is exopk.SimulationError
    assert not isinstance(info.value, ValueError)


def test_a_missing_optional_dependency_is_a_dependency_error(params, monkeypatch):
    monkeypatch.setitem(sys.modules, "libsbml", None)  # import libsbml now raises ImportError
    with pytest.raises(ImportError, match=r"pip install 'exopk\[sbml\]'") as info:
        exopk.io.export_sbml(params, BOLUS)
    assert type(info.value) is exopk.DependencyError


def test_an_unwritable_output_is_an_output_error(params, tmp_path):
    pytest.importorskip("libsbml")
    target = tmp_path / "missing-folder" / "model.xml"
    with pytest.raises(OSError, match=r"SBML file '.*model.xml' cannot be written") as info:
        exopk.io.export_sbml(params, BOLUS, target)
    assert type(info.value) is exopk.OutputError
