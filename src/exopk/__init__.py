"""exopk: a physiologically based model of where extracellular vesicles go in the body.

Public API; everything else is private.
"""

from ._analysis_plots import plot_population_bands, plot_sobol, plot_tornado
from ._dosing import ROUTES, IVBolus, IVInfusion, Regimen, particles_from_protein
from ._errors import DosingError, ExopkError, ParameterError, SimulationError
from ._executors import ExecutorError
from ._model import ELIMINATION_PATHWAYS, REPORTED_ORGANS, STATES
from ._nca import NCA_PARAMETERS, NCAError, NCAResult, SparseNCAResult, nca, sparse_nca
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

__version__ = "0.1.0"

__all__ = [
    "ELIMINATION_PATHWAYS",
    "ORGANS",
    "REPORTED_ORGANS",
    "ROUTES",
    "STATES",
    "BatchResult",
    "DosingError",
    "ExopkError",
    "IVBolus",
    "IVInfusion",
    "ModelParameters",
    "ParameterError",
    "Regimen",
    "SimulationError",
    "SimulationResult",
    "available",
    "load_parameters",
    "parameter_names",
    "particles_from_protein",
    "plot_organ_curves",
    "simulate",
    "simulate_batch",
    # issue 7: analysis
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
]
