"""exopk: a physiologically based model of where extracellular vesicles go in the body.

Public API; everything else is private.
"""

import exopk.io.datasets as datasets
from exopk._version import __version__ as __version__
from exopk.analysis.compare import (
    EXPOSURE_COMPARTMENTS,
    RouteComparison,
    auc_to_infinity,
    auc_to_time,
    compare_routes,
    targeting_metrics,
)
from exopk.analysis.design import RegimenDesign, design_regimen
from exopk.analysis.fit import FitResult, fit
from exopk.analysis.nca import NCA_PARAMETERS, NCAResult, SparseNCAResult, nca, sparse_nca
from exopk.analysis.population import (
    PopulationResult,
    VirtualPopulation,
    allometric_exponent,
    sample_population,
    simulate_population,
)
from exopk.analysis.sensitivity import (
    OUTPUT_METRICS,
    LocalSensitivity,
    SobolIndices,
    evaluate_outputs,
    local_sensitivity,
    saltelli_design,
    sobol_analyze,
    sobol_indices,
    sobol_sensitivity,
)
from exopk.analysis.subjects import SubjectsResult, simulate_subjects
from exopk.dosing import (
    ROUTES,
    Infusion,
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
from exopk.errors import (
    DataError,
    DependencyError,
    DosingError,
    ExecutorError,
    ExopkError,
    FitError,
    InputError,
    NCAError,
    OutputError,
    ParameterError,
    PopulationError,
    SensitivityError,
    SimulationError,
)
from exopk.io.datasets import Dataset, list_datasets, load_dataset
from exopk.io.sbml import export_sbml
from exopk.model.allometry import DoseScaling, scale_dose, species_reference
from exopk.model.graph import ELIMINATION_PATHWAYS, REPORTED_ORGANS, STATES
from exopk.model.load import load_parameters
from exopk.model.parameters import ORGANS, ModelParameters, available, parameter_names
from exopk.model.scenarios import Scenario, ScenarioChange, apply_scenario, load_scenario
from exopk.observe.imaging import ImagingParameters, load_imaging, transmission
from exopk.observe.labels import (
    Label,
    TracerResult,
    available_labels,
    ideal_label,
    load_label,
    optical_radiance,
    simulate_label,
)
from exopk.plots.analysis import plot_population_bands, plot_sobol, plot_tornado
from exopk.plots.compare import plot_route_comparison
from exopk.plots.imaging import plot_apparent_vs_true, plot_whole_body
from exopk.plots.organs import plot_organ_curves
from exopk.results import BatchResult, SimulationResult
from exopk.simulation import simulate, simulate_batch

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
    "InputError",
    "DependencyError",
    "OutputError",
    "IVBolus",
    "IVInfusion",
    "Infusion",
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
    "RegimenDesign",
    "design_regimen",
    "SubjectsResult",
    "simulate_subjects",
]
