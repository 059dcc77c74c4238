"""Simulation results: amounts to %ID, %ID/g and concentrations, and tidy tables."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from exopk.dosing import Regimen
from exopk.errors import InputError
from exopk.model.graph import (
    ELIMINATION_PATHWAYS,
    N_LIVE,
    ORGAN_POOLS,
    REPORTED_ORGANS,
    SITES,
    STATES,
    TISSUES,
    organ_membership,
    state_index,
)
from exopk.model.parameters import ModelParameters

UNITS = {
    "amount_particles": "particles",
    "percent_id": "%ID",
    "percent_id_per_g": "%ID/g",
    "concentration_particles_per_ml": "particles/mL",
    "extravascular_percent_id": "%ID",
}


def tidy_block(t_h: np.ndarray, organ: str, quantity: str, values: np.ndarray, unit: str):
    """One quantity of one organ over time as rows of the tidy table ``time_h, organ, quantity, value, unit``."""
    import pandas as pd

    n = t_h.size
    return pd.DataFrame(
        {
            "time_h": t_h,
            "organ": np.repeat(organ, n),
            "quantity": np.repeat(quantity, n),
            "value": values,
            "unit": np.repeat(unit, n),
        }
    )


def percentile_frame(t_h: np.ndarray, percentiles, percent_id_percentiles: np.ndarray):
    """Percentile bands, shape (n_percentiles, n_times, n_organs), as a tidy table (``percent_id_p<q>``, %ID)."""
    import pandas as pd

    n_q, n_t, n_o = percent_id_percentiles.shape
    q_names = [f"percent_id_p{q:g}" for q in percentiles]
    return pd.DataFrame(
        {
            "time_h": np.tile(np.repeat(t_h, n_o), n_q),
            "organ": np.tile(np.array(REPORTED_ORGANS), n_q * n_t),
            "quantity": np.repeat(q_names, n_t * n_o),
            "value": percent_id_percentiles.reshape(-1),
            "unit": "%ID",
        }
    )


def _check_organ(organ: str, allowed: tuple[str, ...] = REPORTED_ORGANS) -> int:
    if organ not in allowed:
        raise InputError(f"unknown organ {organ!r}; expected one of: {', '.join(allowed)}.")
    return allowed.index(organ)


@dataclass(frozen=True, slots=True)
class SimulationResult:
    """Amounts of intact EVs in every compartment over time, and what follows from them.

    Reported organs partition the dose: ``blood`` is the circulating arterial and venous
    pools; each organ includes its vascular space (as unperfused ex vivo counting sees it),
    tissue space and cell-associated pool; ``eliminated`` is everything degraded or
    excreted. At every time the organs' ``percent_id`` plus ``eliminated`` sum to the
    percentage of the total dose administered so far (100 after the last dose).

    Attributes
    ----------
    t_h : ndarray, shape (n_times,)
        Output times (h).
    amounts_particles : ndarray, shape (n_times, n_states)
        Amount in each state of :attr:`states` (particles).
    states : tuple of str
        State names: live pools, then elimination sinks.
    dose_particles : float
        Total dose of the regimen, the reference for %ID.
    administered_particles : ndarray, shape (n_times,)
        Particles given up to each time.
    params : ModelParameters
    regimen : Regimen
    method : str
        ``"exact"`` (eigen-decomposition), ``"expm"`` (matrix-exponential stepping) or
        ``"ode"`` (stiff integrator).
    metadata : Mapping[str, Any]
        Species, EV preparation, parameter files, eigenvector condition number; for a mixture,
        ``"subpopulations"`` (name -> share).
    parts : Mapping[str, SimulationResult]
        For a mixture of EV subpopulations, each one's part (amounts weighted by its share);
        ``amounts_particles`` is their sum. Empty for a single population.
    """

    t_h: np.ndarray
    amounts_particles: np.ndarray
    dose_particles: float
    administered_particles: np.ndarray
    params: ModelParameters
    regimen: Regimen
    method: str
    state_volumes_ml: np.ndarray
    organ_volumes_ml: np.ndarray
    metadata: Mapping[str, Any] = field(default_factory=dict)
    states: tuple[str, ...] = STATES
    parts: Mapping[str, SimulationResult] = field(default_factory=dict)

    def subpopulation(self, name: str) -> SimulationResult:
        """The part of this result carried by one EV subpopulation (its share of the dose, %ID of the whole dose).

        Raises
        ------
        InputError
            No subpopulation of that name (a single population has none).
        """
        if name not in self.parts:
            choices = ", ".join(self.parts) or "none: the parameters have no subpopulations"
            raise InputError(f"unknown subpopulation {name!r}; expected one of: {choices}.")
        return self.parts[name]

    @property
    def organs(self) -> tuple[str, ...]:
        """Reported organs: ``blood``, the six organs, the administration sites and ``eliminated``."""
        return REPORTED_ORGANS

    @property
    def dosed_sites(self) -> tuple[str, ...]:
        """Administration sites (``nasal_cavity``, ...) that the regimen doses."""
        used = {getattr(d, "state", "") for d in self.regimen.doses}
        return tuple(site for site in SITES if site in used)

    def is_shown(self, organ: str) -> bool:
        """Whether tables and summaries list ``organ``: every organ, but a site only when dosed."""
        return organ not in SITES or organ in self.dosed_sites

    def organ_amounts_particles(self) -> np.ndarray:
        """Amounts per reported organ, shape (n_times, n_organs), in :attr:`organs` order."""
        return self.amounts_particles @ organ_membership().T

    def amount(self, organ: str) -> np.ndarray:
        """Particles in ``organ`` (all its pools) over time, shape (n_times,)."""
        # A plain sum over the organ's pools (not a 0/1 matrix product, whose summation order
        # is BLAS's): the organ amount is then exactly the sum of its pools.
        member = organ_membership()[_check_organ(organ)] == 1.0
        return self.amounts_particles[:, member].sum(axis=1)

    def extravascular_amount(self, organ: str) -> np.ndarray:
        """Particles outside the blood of ``organ``: tissue space and cells (lung: also airspace).

        This is what "reached the organ" means for the brain: EVs that crossed the
        blood-brain barrier or arrived by the nose-to-brain pathway, not those in its blood.
        """
        _check_organ(organ, tuple(ORGAN_POOLS))
        columns = [state_index(state) for state in ORGAN_POOLS[organ] if not state.endswith("_vascular")]
        return self.amounts_particles[:, columns].sum(axis=1)

    def extravascular_percent_id(self, organ: str) -> np.ndarray:
        """:meth:`extravascular_amount` as a percentage of the total dose."""
        return 100.0 * self.extravascular_amount(organ) / self.dose_particles

    def percent_id(self, organ: str) -> np.ndarray:
        """Percentage of the total dose in ``organ``, :math:`100 A/D`."""
        return 100.0 * self.amount(organ) / self.dose_particles

    def concentration_particles_per_ml(self, organ: str) -> np.ndarray:
        """Concentration in ``organ`` (particles/mL of organ).

        For ``blood`` this is the venous pool, as a blood sample measures it.
        """
        k = _check_organ(organ, TISSUES)
        if organ == "blood":
            venous = state_index("blood_venous")
            return self.amounts_particles[:, venous] / self.state_volumes_ml[venous]
        return self.amount(organ) / self.organ_volumes_ml[k]

    def percent_id_per_g(self, organ: str) -> np.ndarray:
        """Percentage of the dose per gram of ``organ`` (blood: per gram of blood sample).

        .. math:: \\%ID/g = 100\\, C / (D \\rho)

        with concentration *C* (particles/mL), dose *D* and density :math:`\\rho` (g/mL).
        """
        density = self.params["tissue_density_g_per_ml"]
        return 100.0 * self.concentration_particles_per_ml(organ) / (self.dose_particles * density)

    def eliminated(self, pathway: str | None = None) -> np.ndarray:
        """Cumulative particles eliminated, in total or by one pathway.

        Parameters
        ----------
        pathway : str, optional
            One of ``degraded_<organ>``, ``degraded_<site>``, ``urine``, ``feces``,
            ``swallowed``; all pathways when omitted.
        """
        if pathway is None:
            return self.amounts_particles[:, N_LIVE:].sum(axis=1)
        if pathway not in ELIMINATION_PATHWAYS:
            raise InputError(
                f"unknown elimination pathway {pathway!r}; expected one of: {', '.join(ELIMINATION_PATHWAYS)}."
            )
        return self.amounts_particles[:, state_index(pathway)]

    def mass_balance_error(self) -> float:
        """Largest ``abs(in body + eliminated - administered)`` over time, relative to the dose."""
        total = self.amounts_particles.sum(axis=1)
        return float(np.max(np.abs(total - self.administered_particles)) / self.dose_particles)

    def to_frame(self):
        """Tidy table of every reported quantity.

        Returns
        -------
        pandas.DataFrame
            Columns ``time_h, organ, quantity, value, unit``. Organs ``blood, lung, liver,
            spleen, kidney, brain, rest`` carry ``amount_particles``, ``percent_id``,
            ``percent_id_per_g`` and ``concentration_particles_per_ml``, and the six organs
            also ``extravascular_percent_id`` (tissue space and cells); administration sites
            the regimen doses (``nasal_cavity``, ``peritoneal_cavity``,
            ``subcutaneous_site``) carry ``amount_particles`` and ``percent_id``;
            ``eliminated`` carries ``amount_particles`` and ``percent_id`` in total and, per
            pathway, ``<pathway>_amount_particles`` and ``<pathway>_percent_id`` (pathways
            :data:`ELIMINATION_PATHWAYS`).
        """
        import pandas as pd

        blocks = []

        def add(organ: str, quantity: str, values: np.ndarray, unit: str) -> None:
            blocks.append(tidy_block(self.t_h, organ, quantity, values, unit))

        for organ in TISSUES:
            add(organ, "amount_particles", self.amount(organ), UNITS["amount_particles"])
            add(organ, "percent_id", self.percent_id(organ), UNITS["percent_id"])
            add(organ, "percent_id_per_g", self.percent_id_per_g(organ), UNITS["percent_id_per_g"])
            add(
                organ,
                "concentration_particles_per_ml",
                self.concentration_particles_per_ml(organ),
                UNITS["concentration_particles_per_ml"],
            )
            if organ != "blood":
                add(organ, "extravascular_percent_id", self.extravascular_percent_id(organ), UNITS["percent_id"])
        for site in self.dosed_sites:
            add(site, "amount_particles", self.amount(site), UNITS["amount_particles"])
            add(site, "percent_id", self.percent_id(site), UNITS["percent_id"])
        add("eliminated", "amount_particles", self.eliminated(), UNITS["amount_particles"])
        add("eliminated", "percent_id", 100.0 * self.eliminated() / self.dose_particles, UNITS["percent_id"])
        for pathway in ELIMINATION_PATHWAYS:
            amount = self.eliminated(pathway)
            add("eliminated", f"{pathway}_amount_particles", amount, UNITS["amount_particles"])
            add("eliminated", f"{pathway}_percent_id", 100.0 * amount / self.dose_particles, UNITS["percent_id"])
        frame = pd.concat(blocks, ignore_index=True)
        frame["organ"] = frame["organ"].astype(str)
        return frame


@dataclass(frozen=True, slots=True)
class BatchResult:
    """Summary of many simulations of one regimen with varied parameters.

    Attributes
    ----------
    t_h : ndarray, shape (n_times,)
    percentiles : tuple of float
        The percentiles computed, e.g. ``(5, 50, 95)``.
    percent_id_percentiles : ndarray, shape (n_percentiles, n_times, n_organs)
        Percentiles over parameter sets of %ID per reported organ (:attr:`organs` order).
    auc_percent_id_h : ndarray, shape (n_sets, n_organs)
        Exact area under each organ's %ID curve from time 0 to the last output time (%ID·h).
    amounts_particles : ndarray, shape (n_sets, n_times, n_organs) or None
        Full trajectories, only when asked for (``keep_amounts=True``).
    dose_particles : float
    varied : tuple of str
        Names of the parameters that vary between sets.
    n_sets : int
    metadata : Mapping[str, Any]
        Including ``n_expm_fallback``: sets solved by matrix-exponential stepping.
    """

    t_h: np.ndarray
    percentiles: tuple[float, ...]
    percent_id_percentiles: np.ndarray
    auc_percent_id_h: np.ndarray
    amounts_particles: np.ndarray | None
    dose_particles: float
    varied: tuple[str, ...]
    n_sets: int
    metadata: Mapping[str, Any] = field(default_factory=dict)

    @property
    def organs(self) -> tuple[str, ...]:
        """Reported organs, the last axis of the arrays."""
        return REPORTED_ORGANS

    def to_frame(self):
        """Percentiles as a tidy table ``time_h, organ, quantity, value, unit``.

        Quantities are named ``percent_id_p<percentile>``, e.g. ``percent_id_p50``.
        """
        return percentile_frame(self.t_h, self.percentiles, self.percent_id_percentiles)
