"""What an experiment sees: the label carried by the vesicles (and freed when they are degraded),
and the signal a modality reports (%ID, counts, optical radiance through tissue).
"""

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

__all__ = [
    "ImagingParameters",
    "Label",
    "TracerResult",
    "available_labels",
    "ideal_label",
    "load_imaging",
    "load_label",
    "optical_radiance",
    "simulate_label",
    "transmission",
]
