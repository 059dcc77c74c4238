"""Exception types raised by exopk: one family, rooted at :class:`ExopkError`.

Every error names the argument, file or key at fault, the value received and what was
expected, so that the message alone tells the user what to change. The family::

    ExopkError
    ├── InputError (ValueError)          bad input: an argument, a file, a value in a file
    │   ├── ParameterError               parameters, parameter files (species, EV, route, label, ...)
    │   │   ├── PopulationError          virtual-population specifications
    │   │   └── SensitivityError         sensitivity-analysis specifications
    │   ├── DosingError                  doses, infusions, regimens, regimen files
    │   ├── DataError                    observation tables and data files
    │   ├── FitError                     fit set-up (names, bounds, too few data)
    │   ├── NCAError                     data given to the non-compartmental analysis
    │   └── ExecutorError (TypeError)    an ``executor`` that is not one
    ├── SimulationError (RuntimeError)   a solver failed on valid input
    ├── DependencyError (ImportError)    an optional extra is not installed
    └── OutputError (OSError)            an output cannot be written

Input errors subclass :class:`ValueError` (like pint and scipy), so that ``except ValueError``
keeps working; numerical failures subclass :class:`RuntimeError`. Catch :class:`ExopkError` to
catch everything exopk raises on purpose; anything else escaping exopk is a bug.
"""

from __future__ import annotations

__all__ = [
    "DataError",
    "DesignError",
    "DependencyError",
    "DosingError",
    "ExecutorError",
    "ExopkError",
    "FitError",
    "InputError",
    "NCAError",
    "OutputError",
    "ParameterError",
    "PopulationError",
    "SensitivityError",
    "SimulationError",
]


class ExopkError(Exception):
    """Base class for all errors raised by exopk."""


class InputError(ExopkError, ValueError):
    """Bad input: an argument, an option, a file, or a value or key in one.

    Base of every input error below; raised itself for arguments that belong to no more
    specific family (output times, method names, an unknown organ asked of a result).
    Subclasses :class:`ValueError` so that ``except ValueError`` keeps working.
    """


class ParameterError(InputError):
    """A parameter value, parameter file or key is invalid."""


class PopulationError(ParameterError):
    """A virtual-population specification is invalid (names, CVs, correlation matrix, body weights)."""


class SensitivityError(ParameterError):
    """A sensitivity-analysis specification is invalid (names, ranges, outputs, sample sizes)."""


class DosingError(InputError):
    """A dose, infusion, regimen or regimen file is invalid."""


class DesignError(DosingError):
    """A regimen-design request (:func:`exopk.analysis.design.design_regimen`) is invalid."""


class DataError(InputError):
    """An observation table or data file is malformed: the message names the column, row and value at fault."""


class FitError(InputError):
    """A fit cannot be set up (unknown parameter, bad bounds, too few data) or left its valid range."""


class NCAError(InputError):
    """Data given to the non-compartmental analysis are invalid (times, concentrations, dose)."""


class ExecutorError(InputError, TypeError):
    """The ``executor`` argument is neither a ``concurrent.futures.Executor`` nor a dask client.

    Also a :class:`TypeError` (it is the wrong kind of object), as it was before the family was unified.
    """


class SimulationError(ExopkError, RuntimeError):
    """A solver failed on valid input (e.g. the stiff ODE solver stopped early)."""


class DependencyError(ExopkError, ImportError):
    """An optional dependency (an ``exopk[...]`` extra) is needed but not installed."""


class OutputError(ExopkError, OSError):
    """An output file cannot be written (the message names the file and the reason)."""


class SolverAccuracyWarning(UserWarning):
    """A solution was returned, but it conserves mass less well than the solvers' self-check asks.

    Raised as a warning (not an error) when every solver tried missed the self-check limit but
    the best answer is still within the documented accuracy; the result's metadata says which
    solvers were tried and their errors.
    """
