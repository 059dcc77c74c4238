"""exopk: a physiologically based model of where extracellular vesicles go in the body.

Public API; everything else is private.
"""

from ._dosing import ROUTES, IVBolus, IVInfusion, Regimen, particles_from_protein
from ._errors import DosingError, ExopkError, ParameterError, SimulationError
from ._imaging import (
    ImagingParameters,
    load_imaging,
    optical_radiance,
    plot_apparent_vs_true,
    plot_whole_body,
    transmission,
)
from ._model import ELIMINATION_PATHWAYS, REPORTED_ORGANS, STATES
from ._parameters import ORGANS, ModelParameters, available, load_parameters, parameter_names
from ._plot import plot_organ_curves
from ._result import BatchResult, SimulationResult
from ._simulate import simulate, simulate_batch
from ._tracer import Label, TracerResult, available_labels, ideal_label, load_label, simulate_label

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
]
