"""Exception types raised by exopk.

Every error names the argument, file or key at fault, the value received and
what was expected, so that the message alone tells the user what to change.
"""

from __future__ import annotations


class ExopkError(Exception):
    """Base class for all errors raised by exopk."""


class ParameterError(ExopkError, ValueError):
    """A parameter value, parameter file or key is invalid.

    Subclasses :class:`ValueError` so that ``except ValueError`` keeps working.
    """


class DosingError(ExopkError, ValueError):
    """A dose, infusion or regimen is invalid."""


class SimulationError(ExopkError, RuntimeError):
    """The solver failed, or a simulation was asked for something it cannot do."""
