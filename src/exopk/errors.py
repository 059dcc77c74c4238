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


class SolverAccuracyWarning(UserWarning):
    """A solution was returned, but it conserves mass less well than the solvers' self-check asks.

    Raised as a warning (not an error) when every solver tried missed the self-check limit but
    the best answer is still within the documented accuracy; the result's metadata says which
    solvers were tried and their errors.
    """
