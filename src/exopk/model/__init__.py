"""The model: parameters (load, validate, freeze), species and allometry, scenarios, and the
compartment graph that turns parameters into rate matrices.

Nothing here knows of doses, solvers, results or the command line.
"""

from exopk.model.allometry import DoseScaling, scale_dose, species_reference
from exopk.model.graph import ELIMINATION_PATHWAYS, REPORTED_ORGANS, STATES, rate_matrices, transfers
from exopk.model.load import load_parameters
from exopk.model.parameters import ORGANS, ModelParameters, available, parameter_names, params_dir
from exopk.model.scenarios import Scenario, ScenarioChange, apply_scenario, load_scenario

__all__ = [
    "ELIMINATION_PATHWAYS",
    "ORGANS",
    "REPORTED_ORGANS",
    "STATES",
    "DoseScaling",
    "ModelParameters",
    "Scenario",
    "ScenarioChange",
    "apply_scenario",
    "available",
    "load_parameters",
    "load_scenario",
    "parameter_names",
    "params_dir",
    "rate_matrices",
    "scale_dose",
    "species_reference",
    "transfers",
]
