"""Doses, infusions and regimens.

A dose is given in particles. Doses measured as µg of EV protein convert with an explicit
particles-per-µg factor (:func:`particles_from_protein`); exopk has no default factor,
because it varies by orders of magnitude between preparations and counting methods.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ._errors import DosingError
from ._model import N_LIVE, state_index
from ._parameters import is_real_number

ROUTES: tuple[str, ...] = ("iv_bolus", "iv_infusion")
"""Administration routes available in this version."""


def _require_finite_non_negative(name: str, value: float) -> None:
    if not is_real_number(value):
        raise DosingError(f"`{name}` must be a number; got {value!r}.")
    if not math.isfinite(value) or value < 0:
        raise DosingError(f"`{name}` must be finite and non-negative; got {value!r}.")


def particles_from_protein(dose_ug: float, particles_per_ug: float) -> float:
    """Convert a dose in µg of EV protein to particles.

    Parameters
    ----------
    dose_ug : float
        Dose as µg of EV protein.
    particles_per_ug : float
        Particles per µg of protein for this preparation (measured, e.g. by nanoparticle
        tracking analysis and a protein assay on the same batch). No default is assumed.

    Returns
    -------
    float
        Dose in particles, ``dose_ug * particles_per_ug``.
    """
    _require_finite_non_negative("dose_ug", dose_ug)
    if not is_real_number(particles_per_ug):
        raise DosingError(f"`particles_per_ug` must be a number; got {particles_per_ug!r}.")
    if not math.isfinite(particles_per_ug) or particles_per_ug <= 0:
        raise DosingError(f"`particles_per_ug` must be positive and finite; got {particles_per_ug!r}.")
    return float(dose_ug) * float(particles_per_ug)


@dataclass(frozen=True, slots=True, kw_only=True)
class IVBolus:
    """Intravenous bolus into venous blood.

    Parameters
    ----------
    dose_particles : float
        Number of EVs injected.
    t_h : float, default 0.0
        Time of injection (h).
    """

    dose_particles: float
    t_h: float = 0.0

    route = "iv_bolus"

    def __post_init__(self) -> None:
        _require_finite_non_negative("dose_particles", self.dose_particles)
        _require_finite_non_negative("t_h", self.t_h)

    @property
    def end_h(self) -> float:
        """Time the dose is complete (h)."""
        return self.t_h


@dataclass(frozen=True, slots=True, kw_only=True)
class IVInfusion:
    """Intravenous infusion at a constant rate into venous blood.

    Parameters
    ----------
    dose_particles : float
        Total number of EVs infused.
    duration_h : float
        Length of the infusion (h), positive.
    t_h : float, default 0.0
        Start of the infusion (h).
    """

    dose_particles: float
    duration_h: float
    t_h: float = 0.0

    route = "iv_infusion"

    def __post_init__(self) -> None:
        _require_finite_non_negative("dose_particles", self.dose_particles)
        _require_finite_non_negative("t_h", self.t_h)
        if not is_real_number(self.duration_h):
            raise DosingError(f"`duration_h` must be a number; got {self.duration_h!r}.")
        if not math.isfinite(self.duration_h) or self.duration_h <= 0:
            raise DosingError(f"`duration_h` of an infusion must be positive and finite; got {self.duration_h!r}.")

    @classmethod
    def from_rate(cls, rate_particles_per_h: float, duration_h: float, t_h: float = 0.0) -> IVInfusion:
        """An infusion given by its rate (particles/h) and duration (h) instead of its total dose."""
        _require_finite_non_negative("rate_particles_per_h", rate_particles_per_h)
        _require_finite_non_negative("duration_h", duration_h)
        return cls(dose_particles=float(rate_particles_per_h) * float(duration_h), duration_h=duration_h, t_h=t_h)

    @property
    def rate_particles_per_h(self) -> float:
        """Infusion rate, ``dose_particles / duration_h``."""
        return self.dose_particles / self.duration_h

    @property
    def end_h(self) -> float:
        """Time the infusion stops (h)."""
        return self.t_h + self.duration_h


Dose = IVBolus | IVInfusion


@dataclass(frozen=True, slots=True)
class Events:
    """A regimen as input vectors over the live states, for the solvers.

    ``bolus_amounts[k]`` (particles) enters at ``bolus_t_h[k]``; ``infusion_rates[k]``
    (particles/h) flows in over ``[infusion_start_h[k], infusion_end_h[k])``.
    """

    bolus_t_h: np.ndarray  # (n_bolus,)
    bolus_amounts: np.ndarray  # (n_bolus, n_live)
    infusion_start_h: np.ndarray  # (n_infusion,)
    infusion_end_h: np.ndarray  # (n_infusion,)
    infusion_rates: np.ndarray  # (n_infusion, n_live)

    def administered(self, t_h: np.ndarray) -> np.ndarray:
        """Particles administered up to each time, shape (n_times,)."""
        t = np.asarray(t_h, dtype=float)[:, None]
        bolus = (t >= self.bolus_t_h[None, :]) @ self.bolus_amounts.sum(axis=1)
        given_h = np.clip(t, self.infusion_start_h[None, :], self.infusion_end_h[None, :]) - self.infusion_start_h
        infusion = given_h @ self.infusion_rates.sum(axis=1)
        return bolus + infusion


@dataclass(frozen=True, slots=True)
class Regimen:
    """Any number of doses, in any order, by any route.

    Parameters
    ----------
    doses : sequence of IVBolus or IVInfusion
        The doses; a regimen may be empty only if it is not simulated.
    """

    doses: tuple[Dose, ...]

    def __init__(self, doses: Iterable[Dose]) -> None:
        doses = tuple(doses)
        for k, dose in enumerate(doses):
            if not isinstance(dose, (IVBolus, IVInfusion)):
                raise DosingError(f"regimen entry {k} must be IVBolus or IVInfusion; got {type(dose).__name__}.")
        object.__setattr__(self, "doses", tuple(sorted(doses, key=lambda d: d.t_h)))

    @property
    def total_particles(self) -> float:
        """Sum of all doses (particles); the reference for %ID."""
        return float(sum(d.dose_particles for d in self.doses))

    @property
    def first_h(self) -> float:
        """Time of the first dose (h)."""
        return min(d.t_h for d in self.doses) if self.doses else 0.0

    def events(self) -> Events:
        """Input vectors for the solvers."""
        venous = state_index("blood_venous")
        boluses = [d for d in self.doses if isinstance(d, IVBolus)]
        infusions = [d for d in self.doses if isinstance(d, IVInfusion)]
        bolus_amounts = np.zeros((len(boluses), N_LIVE))
        for k, d in enumerate(boluses):
            bolus_amounts[k, venous] = d.dose_particles
        rates = np.zeros((len(infusions), N_LIVE))
        for k, d in enumerate(infusions):
            rates[k, venous] = d.rate_particles_per_h
        return Events(
            bolus_t_h=np.array([d.t_h for d in boluses], dtype=float),
            bolus_amounts=bolus_amounts,
            infusion_start_h=np.array([d.t_h for d in infusions], dtype=float),
            infusion_end_h=np.array([d.end_h for d in infusions], dtype=float),
            infusion_rates=rates,
        )

    @classmethod
    def from_frame(cls, table, *, particles_per_ug: float | None = None, where: str = "regimen") -> Regimen:
        """Build a regimen from a table with one row per dose.

        Parameters
        ----------
        table : pandas.DataFrame
            Columns ``time_h``, ``route`` (``iv_bolus`` or ``iv_infusion``), one of
            ``dose_particles`` or ``dose_ug``, and ``duration_h`` (0 or empty for a bolus).
        particles_per_ug : float, optional
            Required when doses are given as ``dose_ug``.
        where : str
            Name of the table's origin, used in error messages (e.g. a file name).
        """
        columns = set(table.columns)
        expected = "expected time_h, route, dose_particles or dose_ug, duration_h"
        for required in ("time_h", "route"):
            if required not in columns:
                raise DosingError(f"{where}: missing column `{required}`; {expected}.")
        has_particles, has_ug = "dose_particles" in columns, "dose_ug" in columns
        if has_particles == has_ug:
            raise DosingError(
                f"{where}: give exactly one of the columns `dose_particles` or `dose_ug`; got {sorted(columns)}."
            )
        if has_ug and particles_per_ug is None:
            raise DosingError(
                f"{where}: doses in `dose_ug` need an explicit `particles_per_ug` factor (no default is assumed)."
            )
        unknown = columns - {"time_h", "route", "dose_particles", "dose_ug", "duration_h"}
        if unknown:
            raise DosingError(f"{where}: unknown column(s) {sorted(unknown)}; {expected}.")
        if len(table) == 0:
            raise DosingError(f"{where}: the regimen has no doses.")
        doses: list[Dose] = []
        for row_number, row in enumerate(table.to_dict("records"), start=1):
            try:
                route = row["route"]
                t_h = float(row["time_h"])
                amount = (
                    float(row["dose_particles"])
                    if has_particles
                    else particles_from_protein(float(row["dose_ug"]), particles_per_ug)
                )
                duration = row.get("duration_h", 0.0)
                duration = (
                    0.0
                    if duration is None or (isinstance(duration, float) and math.isnan(duration))
                    else float(duration)
                )
                if route == "iv_bolus":
                    if duration != 0.0:
                        raise DosingError(f"`duration_h` of an iv_bolus must be 0 or empty; got {duration!r}.")
                    doses.append(IVBolus(dose_particles=amount, t_h=t_h))
                elif route == "iv_infusion":
                    doses.append(IVInfusion(dose_particles=amount, duration_h=duration, t_h=t_h))
                else:
                    raise DosingError(f"unknown route {route!r}; expected one of: {', '.join(ROUTES)}.")
            except (TypeError, ValueError) as err:
                raise DosingError(f"{where}, dose row {row_number}: {err}") from None
        return cls(doses)

    @classmethod
    def from_csv(cls, path: str | Path, *, particles_per_ug: float | None = None) -> Regimen:
        """Read a regimen table from a CSV file (see :meth:`from_frame` for the columns)."""
        import pandas as pd

        try:
            table = pd.read_csv(path)
        except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
            raise DosingError(f"regimen file {str(path)!r} cannot be read: {err}") from None
        return cls.from_frame(table, particles_per_ug=particles_per_ug, where=str(path))


def as_regimen(regimen: Regimen | Dose | Sequence[Dose]) -> Regimen:
    """Accept a single dose, a list of doses or a :class:`Regimen`."""
    if isinstance(regimen, Regimen):
        out = regimen
    elif isinstance(regimen, (IVBolus, IVInfusion)):
        out = Regimen([regimen])
    elif isinstance(regimen, (list, tuple)):
        out = Regimen(regimen)
    else:
        raise DosingError(f"`regimen` must be a dose, a list of doses or a Regimen; got {type(regimen).__name__}.")
    if not out.doses:
        raise DosingError("`regimen` has no doses.")
    return out
