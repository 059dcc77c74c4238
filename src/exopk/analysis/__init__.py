"""Analysis of simulated (and measured) curves: non-compartmental analysis, route comparison and
targeting metrics, fitting to data, virtual populations, and sensitivity.
"""

from exopk.analysis.compare import (
    EXPOSURE_COMPARTMENTS,
    RouteComparison,
    auc_to_infinity,
    auc_to_time,
    compare_routes,
    targeting_metrics,
)
from exopk.analysis.design import RegimenDesign, design_regimen
from exopk.analysis.fit import FitError, FitResult, fit
from exopk.analysis.nca import NCA_PARAMETERS, NCAError, NCAResult, SparseNCAResult, nca, sparse_nca
from exopk.analysis.population import (
    PopulationError,
    PopulationResult,
    VirtualPopulation,
    allometric_exponent,
    sample_population,
    simulate_population,
)
from exopk.analysis.sensitivity import (
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
from exopk.analysis.subjects import SubjectsResult, simulate_subjects

__all__ = [
    "EXPOSURE_COMPARTMENTS",
    "NCA_PARAMETERS",
    "OUTPUT_METRICS",
    "FitError",
    "FitResult",
    "LocalSensitivity",
    "NCAError",
    "NCAResult",
    "PopulationError",
    "PopulationResult",
    "RegimenDesign",
    "RouteComparison",
    "SensitivityError",
    "SobolIndices",
    "SparseNCAResult",
    "SubjectsResult",
    "VirtualPopulation",
    "allometric_exponent",
    "auc_to_infinity",
    "auc_to_time",
    "compare_routes",
    "design_regimen",
    "evaluate_outputs",
    "fit",
    "local_sensitivity",
    "nca",
    "saltelli_design",
    "sample_population",
    "simulate_population",
    "simulate_subjects",
    "sobol_analyze",
    "sobol_indices",
    "sobol_sensitivity",
    "sparse_nca",
    "targeting_metrics",
]
