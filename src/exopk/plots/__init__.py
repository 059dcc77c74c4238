"""Figures (matplotlib): organ curves, route comparisons, population bands, sensitivity, images."""

from exopk.plots.analysis import plot_population_bands, plot_sobol, plot_tornado
from exopk.plots.compare import plot_route_comparison
from exopk.plots.imaging import plot_apparent_vs_true, plot_whole_body
from exopk.plots.organs import plot_organ_curves

__all__ = [
    "plot_apparent_vs_true",
    "plot_organ_curves",
    "plot_population_bands",
    "plot_route_comparison",
    "plot_sobol",
    "plot_tornado",
    "plot_whole_body",
]
