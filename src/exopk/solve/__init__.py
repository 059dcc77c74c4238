"""Solvers of the model, and the driver that checks and falls back between them.

- :func:`solve_with_fallback` (:mod:`exopk.solve.driver`): solve with a chosen method, check
  mass balance, fall back ``exact -> expm -> ode``, keep the best answer and say which it is.
  Used by :func:`exopk.simulate` for the EVs and by :func:`exopk.observe.simulate_label` for labels.
- per-method solvers (:mod:`exopk.solve.linear`), which do not check themselves:
  :func:`exact_single` (eigen-decomposition, closed form), :func:`expm_single`
  (matrix-exponential stepping), :func:`ode_single` (stiff integrator with the analytic
  Jacobian of :func:`ode_system`, the only one for capacity-limited uptake);
- batches of parameter sets (:func:`batch_modal`, :func:`batch_amounts`, :func:`batch_auc`);
- executors for batches beyond one process (:mod:`exopk.solve.executors`).
"""

from exopk.solve.driver import (
    ACCURACY_LIMIT,
    MASS_BALANCE_LIMIT,
    ODE_ATOL_FRACTION,
    ODE_RTOL,
    Attempt,
    Solution,
    balance_error,
    solve_with_fallback,
)
from exopk.solve.linear import (
    EIGENVECTOR_COND_LIMIT,
    OdeSystem,
    batch_amounts,
    batch_auc,
    batch_modal,
    exact_single,
    expm_single,
    ode_single,
    ode_system,
)

__all__ = [
    "ACCURACY_LIMIT",
    "EIGENVECTOR_COND_LIMIT",
    "MASS_BALANCE_LIMIT",
    "ODE_ATOL_FRACTION",
    "ODE_RTOL",
    "Attempt",
    "OdeSystem",
    "Solution",
    "balance_error",
    "batch_amounts",
    "batch_auc",
    "batch_modal",
    "exact_single",
    "expm_single",
    "ode_single",
    "ode_system",
    "solve_with_fallback",
]
