"""exopk: a physiologically based model of where extracellular vesicles go in the body.

Public API; everything else is private.
"""

from . import datasets
from ._analysis_plots import plot_population_bands, plot_sobol, plot_tornado
from ._compare import (
    EXPOSURE_COMPARTMENTS,
    RouteComparison,
    auc_to_infinity,
    auc_to_time,
    compare_routes,
    plot_route_comparison,
    targeting_metrics,
)
from ._dosing import (
    ROUTES,
    Intranasal,
    Intraperitoneal,
    Intratracheal,
    IVBolus,
    IVInfusion,
    LocalInjection,
    Regimen,
    Subcutaneous,
    particles_from_protein,
)
from ._errors import DosingError, ExopkError, ParameterError, SimulationError
from ._executors import ExecutorError
from ._fit import FitError, FitResult, fit
from ._imaging import (
    ImagingParameters,
    load_imaging,
    optical_radiance,
    plot_apparent_vs_true,
    plot_whole_body,
    transmission,
)
from ._model import ELIMINATION_PATHWAYS, REPORTED_ORGANS, STATES
from ._nca import NCA_PARAMETERS, NCAError, NCAResult, SparseNCAResult, nca, sparse_nca
from ._observations import DataError
from ._parameters import ORGANS, ModelParameters, available, load_parameters, parameter_names
from ._plot import plot_organ_curves
from ._population import (
    PopulationError,
    PopulationResult,
    VirtualPopulation,
    allometric_exponent,
    sample_population,
    simulate_population,
)
from ._result import BatchResult, SimulationResult
from ._sbml import export_sbml
from ._scaling import DoseScaling, scale_dose, species_reference
from ._scenarios import Scenario, ScenarioChange, apply_scenario, load_scenario
from ._sensitivity import (
    OUTPUT_METRICS,
    LocalSensitivity,
    SensitivityError,
    SobolIndices,
    evaluate_outputs,
    local_sensitivity,
    saltelli_design,
    sobol_analyze,
    sobol_indices,
    sobol_sensitivity,
)
from ._simulate import simulate, simulate_batch
from ._tracer import Label, TracerResult, available_labels, ideal_label, load_label, simulate_label
from .datasets import Dataset, list_datasets, load_dataset

__version__ = "0.1.0"

__all__ = [
    "ELIMINATION_PATHWAYS",
    "EXPOSURE_COMPARTMENTS",
    "ORGANS",
    "REPORTED_ORGANS",
    "ROUTES",
    "STATES",
    "BatchResult",
    "DosingError",
    "ExopkError",
    "IVBolus",
    "IVInfusion",
    "Intranasal",
    "Intraperitoneal",
    "Intratracheal",
    "LocalInjection",
    "ModelParameters",
    "ParameterError",
    "Regimen",
    "RouteComparison",
    "SimulationError",
    "SimulationResult",
    "Subcutaneous",
    "auc_to_infinity",
    "auc_to_time",
    "available",
    "compare_routes",
    "export_sbml",
    "load_parameters",
    "parameter_names",
    "particles_from_protein",
    "plot_organ_curves",
    "plot_route_comparison",
    "simulate",
    "simulate_batch",
    "targeting_metrics",
    "DoseScaling",
    "Scenario",
    "ScenarioChange",
    "apply_scenario",
    "load_scenario",
    "scale_dose",
    "species_reference",
    "Label",
    "TracerResult",
    "available_labels",
    "ideal_label",
    "load_label",
    "simulate_label",
    "ImagingParameters",
    "load_imaging",
    "optical_radiance",
    "plot_apparent_vs_true",
    "plot_whole_body",
    "transmission",
    "NCA_PARAMETERS",
    "NCAError",
    "NCAResult",
    "SparseNCAResult",
    "nca",
    "sparse_nca",
    "ExecutorError",
    "PopulationError",
    "PopulationResult",
    "VirtualPopulation",
    "allometric_exponent",
    "sample_population",
    "simulate_population",
    "OUTPUT_METRICS",
    "LocalSensitivity",
    "SensitivityError",
    "SobolIndices",
    "evaluate_outputs",
    "local_sensitivity",
    "saltelli_design",
    "sobol_analyze",
    "sobol_indices",
    "sobol_sensitivity",
    "plot_population_bands",
    "plot_sobol",
    "plot_tornado",
    "datasets",
    "Dataset",
    "DataError",
    "FitError",
    "FitResult",
    "fit",
    "list_datasets",
    "load_dataset",
]
