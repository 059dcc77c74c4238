"""Parameter uncertainty: sampled parameter sets from the calibration covariance and the interspecies rule.

The joint calibration (``calibration/calibrate.py``) stores the covariance of the log constants
in ``params/ev/<ev>_calibration.toml``. :func:`calibration_samples` draws parameter sets from it
(multivariate log-normal) as ``variations`` for :func:`exopk.simulate_batch`, so predictions
come with bands. For a species other than the calibration species, the allometric exponents
are uncertain too and are drawn as well:

.. math::

    k_{species} = k_{ref} (BW_{species}/BW_{ref})^{b},\\quad
    b_{uptake} \\sim U(-0.29, -0.24),\\quad b_{deg} \\sim U(-0.25, 0)

The uptake (rate) range is the 99 % CI of the clearance exponent, 0.71-0.76 (Hu & Hayton 2001
AAPS PharmSci 3(4):E29), less 1; the degradation range is an assumption: intracellular
degradation is a cellular process that may not slow with body size at all (b = 0) or may follow
the rate rule (b = -0.25). So human outputs are ranges, never bare points.

Not sampled: the stealth subpopulation's multiplier (it is not a flat parameter, and the fit
leaves it at its bound) and the subpopulation shares.
"""

from __future__ import annotations

import math
import tomllib
from pathlib import Path

import numpy as np

from exopk.errors import ParameterError
from exopk.model.parameters import ORGANS, ModelParameters, params_dir

MACROPHAGE_SHARE = {"liver": 0.67, "spleen": 0.76, "lung": 0.0}
"""Macrophage share of vascular uptake clearance (literature-3.md B6); the lung has none."""
EXTRAHEPATIC = ("lung", "spleen", "kidney", "brain", "rest")
RATE_EXPONENT_RANGE = (-0.29, -0.24)
"""Hu & Hayton 2001: clearance exponent 99 % CI 0.71-0.76, so first-order rates BW^(b-1)."""
DEGRADATION_EXPONENT_RANGE = (-0.25, 0.0)
"""Assumption: intracellular degradation between 'does not scale' and the rate rule."""


def load_calibration(ev: str = "msc") -> dict:
    """The stored calibration uncertainty of an EV preparation (``params/ev/<ev>_calibration.toml``)."""
    path = Path(params_dir()) / "ev" / f"{ev}_calibration.toml"
    if not path.is_file():
        raise ParameterError(f"no calibration uncertainty for EV {ev!r}: {path} does not exist.")
    with path.open("rb") as fh:
        return tomllib.load(fh)


def calibration_samples(
    params: ModelParameters, n_sets: int, *, seed: int | None = 0, interspecies: bool | None = None
) -> dict[str, np.ndarray]:
    """Parameter sets drawn from the calibration covariance, as ``variations`` for ``simulate_batch``.

    Parameters
    ----------
    params : ModelParameters
        The model to predict with (any species; scenarios already applied are kept: the
        sampled constants are multiplied by the ratio of ``params`` to the calibrated values).
    n_sets : int
        Number of parameter sets.
    seed : int or None, default 0
        Random seed (reproducible bands).
    interspecies : bool, optional
        Also draw the allometric exponents; default: when ``params.species`` is not the
        calibration species (the mouse).

    Returns
    -------
    dict of str to ndarray, shape (n_sets,)
        Values of the uptake and degradation constants by flat name (1/h).
    """
    if not isinstance(n_sets, int) or isinstance(n_sets, bool) or n_sets < 2:
        raise ParameterError(f"`n_sets` must be an integer >= 2; got {n_sets!r}.")
    stored = load_calibration(params.ev)
    names = list(stored["constants"])
    mean = np.array([stored["constants"][k]["log_value"] for k in names])
    cov = np.array([stored["covariance"][k] for k in names])
    # Constants the fit left at a bound have a meaningless (huge) variance: keep them fixed.
    keep = np.sqrt(np.diag(cov)) < 2.0
    rng = np.random.default_rng(seed)
    draws = np.tile(mean, (n_sets, 1))
    sub = np.ix_(keep, keep)
    draws[:, keep] = rng.multivariate_normal(mean[keep], cov[sub], size=n_sets, method="svd")
    ratio = draws - mean  # log multiplier of each sampled constant relative to the calibrated value
    factor = {name: np.exp(ratio[:, i]) for i, name in enumerate(names)}
    out: dict[str, np.ndarray] = {}
    for organ in ("liver", "spleen", "lung"):
        f = factor[f"{organ}_total_vascular_uptake_per_h"]
        for term in ("macrophage_uptake_per_h", "uptake_vascular_per_h"):
            out[f"{organ}_{term}"] = params[f"{organ}_{term}"] * f
    out["liver_degradation_per_h"] = params["liver_degradation_per_h"] * factor["liver_degradation_per_h"]
    for organ in EXTRAHEPATIC:
        out[f"{organ}_degradation_per_h"] = (
            params[f"{organ}_degradation_per_h"] * factor["extrahepatic_degradation_per_h"]
        )
    if interspecies is None:
        interspecies = bool(params.extrapolated)
    if interspecies:
        bw_ratio = params["body_weight_g"] / 25.0  # reference mouse of the calibration (params/ev/msc.toml)
        b_up = rng.uniform(*RATE_EXPONENT_RANGE, size=n_sets)
        b_deg = rng.uniform(*DEGRADATION_EXPONENT_RANGE, size=n_sets)
        shipped = -0.25  # the exponent the loaded values were extrapolated with
        for organ in ORGANS:
            for term in ("macrophage_uptake_per_h", "uptake_vascular_per_h", "uptake_tissue_per_h"):
                name = f"{organ}_{term}"
                if name in params.extrapolated:
                    out[name] = out.get(name, np.full(n_sets, params[name])) * bw_ratio ** (b_up - shipped)
            name = f"{organ}_degradation_per_h"
            if name in params.extrapolated:
                out[name] = out[name] * bw_ratio ** (b_deg - shipped)
    return out


def log_sd(ev: str = "msc") -> dict[str, float]:
    """Standard deviation of each calibrated log constant (``inf`` where the fit hit a bound)."""
    stored = load_calibration(ev)
    names = list(stored["constants"])
    cov = np.array([stored["covariance"][k] for k in names])
    return {k: (math.sqrt(c) if c < 4.0 else math.inf) for k, c in zip(names, np.diag(cov), strict=True)}
