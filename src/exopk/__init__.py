"""exopk: a physiologically based model of where extracellular vesicles go in the body.

This namespace holds the core: parameters, doses, simulation, results and errors. Everything else
is reached through its subpackage (docs/architecture.md):

- :mod:`exopk.model` — species, scenarios, allometric dose scaling, the compartment graph;
- :mod:`exopk.observe` — labels (tracers) and imaging: what an experiment sees;
- :mod:`exopk.analysis` — NCA, route comparison, fitting, populations, sensitivity, regimen design;
- :mod:`exopk.io` (and :mod:`exopk.datasets`) — shipped literature datasets, SBML export;
- :mod:`exopk.plots` — figures.
"""

from exopk import analysis, datasets, io, model, observe, plots
from exopk._version import __version__ as __version__
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
    DesignError,
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
from exopk.model import ORGANS, ModelParameters, available, load_parameters, parameter_names
from exopk.results import BatchResult, SimulationResult
from exopk.simulation import simulate, simulate_batch

__all__ = [
    "analysis",
    "datasets",
    "io",
    "model",
    "observe",
    "plots",
    "ORGANS",
    "ROUTES",
    "BatchResult",
    "DataError",
    "DependencyError",
    "DesignError",
    "DosingError",
    "ExecutorError",
    "ExopkError",
    "FitError",
    "IVBolus",
    "IVInfusion",
    "Infusion",
    "InputError",
    "Intranasal",
    "Intraperitoneal",
    "Intratracheal",
    "LocalInjection",
    "ModelParameters",
    "NCAError",
    "OutputError",
    "ParameterError",
    "PopulationError",
    "Regimen",
    "SensitivityError",
    "SimulationError",
    "SimulationResult",
    "Subcutaneous",
    "available",
    "load_parameters",
    "parameter_names",
    "particles_from_protein",
    "simulate",
    "simulate_batch",
]

# Names that lived here before the layered package (0.1): still found, with a warning naming the
# new home, so scripts keep working while they move.
_MOVED = {
    **dict.fromkeys(model.__all__, "model"),
    **dict.fromkeys(observe.__all__, "observe"),
    **dict.fromkeys(analysis.__all__, "analysis"),
    **dict.fromkeys(io.__all__, "io"),
    **dict.fromkeys(plots.__all__, "plots"),
}


def __getattr__(name: str):
    home = _MOVED.get(name)
    if home is None:
        raise AttributeError(f"module 'exopk' has no attribute {name!r}")
    import warnings

    warnings.warn(
        f"`exopk.{name}` moved to `exopk.{home}.{name}`; the old name will be removed.",
        DeprecationWarning,
        stacklevel=2,
    )
    return getattr(globals()[home], name)
