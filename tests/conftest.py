"""Shared fixtures and Hypothesis profiles.

Profiles: ``ci`` (default; deterministic, sized so the whole suite runs well under two
minutes on two cores) and ``thorough`` (more examples, for a local hunt). Pick one with
``HYPOTHESIS_PROFILE=thorough python -m pytest``.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import settings

import exopk

# Scripts and commands the tests start (examples, benchmarks, `python -m exopk`) print µ, ×, ≤ ...:
# run them in Python's UTF-8 mode, whatever the locale of the machine (a bare C/POSIX locale in CI).
os.environ["PYTHONUTF8"] = "1"

settings.register_profile("ci", max_examples=50, deadline=None, derandomize=True, print_blob=True)
settings.register_profile("thorough", max_examples=1000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

DOSE_PARTICLES = 1e10
"""Reference dose of the tests; the linear model's %ID does not depend on it."""


@pytest.fixture(scope="session")
def params() -> exopk.ModelParameters:
    """The bundled default parameters (mouse physiology, MSC-EV kinetics)."""
    return exopk.load_parameters("mouse", "msc")


@pytest.fixture(scope="session")
def t_h() -> np.ndarray:
    """Output times over 48 h, dense early (the distribution phase lasts minutes)."""
    return np.concatenate([[0.0], np.geomspace(1e-3, 48.0, 40)])


@pytest.fixture(scope="session")
def bolus_result(params, t_h) -> exopk.SimulationResult:
    """The default mouse IV bolus of 1e10 particles."""
    return exopk.simulate(params, exopk.IVBolus(dose_particles=DOSE_PARTICLES), t_h)
