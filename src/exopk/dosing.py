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

from exopk.errors import DosingError
from exopk.model.graph import N_LIVE, state_index
from exopk.model.parameters import ORGANS, is_real_number

ROUTES: tuple[str, ...] = (
    "iv_bolus",
    "iv_infusion",
    "intranasal",
    "intraperitoneal",
    "subcutaneous",
    "intratracheal",
    "local",
)
"""Administration routes. Depot routes (intranasal, intraperitoneal, subcutaneous,
intratracheal) take their rates from ``params/routes/<route>.toml``; ``local`` injects into
an organ's vascular or tissue space."""

DEPOT_ROUTES: tuple[str, ...] = ("intranasal", "intraperitoneal", "subcutaneous", "intratracheal")
LOCAL_SPACES: tuple[str, ...] = ("vascular", "tissue")


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
class _Instant:
    """A dose given at one instant into one state (shared checks of the bolus-like doses)."""

    dose_particles: float
    t_h: float = 0.0

    route = ""
    state = ""

    def __post_init__(self) -> None:
        _require_finite_non_negative("dose_particles", self.dose_particles)
        _require_finite_non_negative("t_h", self.t_h)

    @property
    def end_h(self) -> float:
        """Time the dose is complete (h)."""
        return self.t_h

    @property
    def inputs(self) -> dict[str, float]:
        """Share of the dose entering each state."""
        return {self.state: 1.0}


@dataclass(frozen=True, slots=True, kw_only=True)
class IVBolus(_Instant):
    """Intravenous bolus into venous blood.

    Parameters
    ----------
    dose_particles : float
        Number of EVs injected.
    t_h : float, default 0.0
        Time of injection (h).
    """

    route = "iv_bolus"
    state = "blood_venous"


# Mouse: share of an intranasal instillation found in the lower respiratory tract 5 min after
# dosing, by total volume (Southam DS et al. 2002 Am J Physiol Lung 282:L833, 99mTc-sulfur colloid;
# literature-2.md §1d). Volume in µL -> percent of the dose.
_SOUTHAM_2002_VOLUME_UL = (5.0, 25.0, 50.0)
_SOUTHAM_2002_LOWER_AIRWAY_PERCENT = {"awake": (0.0, 5.3, 55.7), "anaesthetised": (0.0, 30.1, 55.7)}


@dataclass(frozen=True, slots=True, kw_only=True)
class Intranasal(_Instant):
    """Intranasal instillation into the nasal cavity.

    From the cavity, EVs reach brain tissue directly (olfactory and trigeminal pathways,
    bypassing the blood-brain barrier), are absorbed into venous blood, are cleared by the
    mucociliary escalator and swallowed (eliminated), or are lost locally. Rates per species
    in ``params/routes/intranasal.toml``. Part of a large instilled volume runs into the lungs:
    ``lower_airway_fraction`` of the dose enters the lung airspace instead (see
    :meth:`from_volume`).

    Parameters
    ----------
    dose_particles : float
        Number of EVs given (both nostrils together).
    t_h : float, default 0.0
        Time of dosing (h).
    lower_airway_fraction : float, default 0.0
        Share of the dose reaching the lower airways at dosing, in [0, 1]. It depends on the
        volume and on anaesthesia, not on the EVs: 0 for 5 µL in mice, 5 % (awake) or 30 %
        (anaesthetised) for 25 µL, 56 % for 50 µL (Southam et al. 2002).
    """

    lower_airway_fraction: float = 0.0

    route = "intranasal"
    state = "nasal_cavity"

    def __post_init__(self) -> None:
        _Instant.__post_init__(self)
        f = self.lower_airway_fraction
        if not is_real_number(f) or not math.isfinite(f) or not 0.0 <= f <= 1.0:
            raise DosingError(f"`lower_airway_fraction` must be a fraction in [0, 1]; got {f!r}.")

    @property
    def inputs(self) -> dict[str, float]:
        """Share of the dose entering the nasal cavity and the lung airspace."""
        return {"nasal_cavity": 1.0 - self.lower_airway_fraction, "lung_airspace": self.lower_airway_fraction}

    @classmethod
    def from_volume(
        cls, dose_particles: float, volume_ul: float, *, anaesthetised: bool = False, t_h: float = 0.0
    ) -> Intranasal:
        """An intranasal dose whose lower-airway share follows the instilled volume (mouse).

        Linear interpolation of the share found in the lower respiratory tract 5 min after
        instillation: 5 µL: 0 %; 25 µL: 5.3 % awake, 30.1 % anaesthetised; 50 µL: 55.7 %
        (Southam DS et al. 2002 Am J Physiol Lung Cell Mol Physiol 282:L833, mice). The mouse
        nasal cavity holds about 32 µL (Gross et al. 1982).

        Parameters
        ----------
        dose_particles : float
            Number of EVs given.
        volume_ul : float
            Total instilled volume (µL, both nostrils), between 0 and 50.
        anaesthetised : bool, default False
            Dosing under anaesthesia (more reaches the lungs).
        t_h : float, default 0.0
            Time of dosing (h).
        """
        _require_finite_non_negative("volume_ul", volume_ul)
        if volume_ul > _SOUTHAM_2002_VOLUME_UL[-1]:
            raise DosingError(
                f"`volume_ul` above {_SOUTHAM_2002_VOLUME_UL[-1]:g} µL is outside the measured range "
                f"(Southam et al. 2002); got {volume_ul!r}."
            )
        table = _SOUTHAM_2002_LOWER_AIRWAY_PERCENT["anaesthetised" if anaesthetised else "awake"]
        percent = float(np.interp(volume_ul, _SOUTHAM_2002_VOLUME_UL, table, left=0.0))
        return cls(dose_particles=dose_particles, t_h=t_h, lower_airway_fraction=percent / 100.0)


@dataclass(frozen=True, slots=True, kw_only=True)
class Intraperitoneal(_Instant):
    """Intraperitoneal injection: a peritoneal depot absorbed into venous blood (lymphatics), with local loss.

    Parameters
    ----------
    dose_particles : float
        Number of EVs injected.
    t_h : float, default 0.0
        Time of injection (h).
    """

    route = "intraperitoneal"
    state = "peritoneal_cavity"


@dataclass(frozen=True, slots=True, kw_only=True)
class Subcutaneous(_Instant):
    """Subcutaneous injection: a depot at the injection site absorbed into venous blood (lymphatics), with local loss.

    Parameters
    ----------
    dose_particles : float
        Number of EVs injected.
    t_h : float, default 0.0
        Time of injection (h).
    """

    route = "subcutaneous"
    state = "subcutaneous_site"


@dataclass(frozen=True, slots=True, kw_only=True)
class Intratracheal(_Instant):
    """Intratracheal instillation into the lung airspace.

    From the airspace EVs are taken up by alveolar macrophages (lung cells), cross the
    air-blood barrier slowly into lung blood, or are cleared up the airways and swallowed.

    Parameters
    ----------
    dose_particles : float
        Number of EVs instilled.
    t_h : float, default 0.0
        Time of dosing (h).
    """

    route = "intratracheal"
    state = "lung_airspace"


@dataclass(frozen=True, slots=True, kw_only=True)
class LocalInjection(_Instant):
    """Injection into one organ's vascular or tissue space.

    Examples: intra-arterial into the renal artery is ``LocalInjection(organ="kidney",
    space="vascular")`` (the dose first meets the kidney's vascular space); intracerebral is
    ``LocalInjection(organ="brain", space="tissue")``.

    Parameters
    ----------
    dose_particles : float
        Number of EVs injected.
    organ : str
        One of ``lung, liver, spleen, kidney, brain, rest``.
    space : str, default "tissue"
        ``"vascular"`` or ``"tissue"``.
    t_h : float, default 0.0
        Time of injection (h).
    """

    organ: str
    space: str = "tissue"

    route = "local"

    def __post_init__(self) -> None:
        _Instant.__post_init__(self)
        if self.organ not in ORGANS:
            raise DosingError(f"`organ` of a local injection must be one of: {', '.join(ORGANS)}; got {self.organ!r}.")
        if self.space not in LOCAL_SPACES:
            raise DosingError(
                f"`space` of a local injection must be one of: {', '.join(LOCAL_SPACES)}; got {self.space!r}."
            )

    @property
    def state(self) -> str:  # type: ignore[override]
        """The state the dose enters, ``<organ>_<space>``."""
        return f"{self.organ}_{self.space}"


_INSTANT_BY_ROUTE = {cls.route: cls for cls in (IVBolus, Intranasal, Intraperitoneal, Subcutaneous, Intratracheal)}


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
        if not math.isfinite(self.dose_particles / self.duration_h):
            raise DosingError(
                f"`dose_particles` / `duration_h` = {self.dose_particles!r} / {self.duration_h!r} h overflows; "
                "expected a finite infusion rate (particles/h)."
            )

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


Dose = IVBolus | IVInfusion | Intranasal | Intraperitoneal | Subcutaneous | Intratracheal | LocalInjection


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

    @property
    def entered(self) -> np.ndarray:
        """Boolean mask of the live states that receive any dose."""
        return (self.bolus_amounts != 0).any(axis=0) | (self.infusion_rates != 0).any(axis=0)

    def restricted(self, keep: np.ndarray) -> Events:
        """The same events over the live states ``keep`` only (indices)."""
        return Events(
            self.bolus_t_h,
            self.bolus_amounts[:, keep],
            self.infusion_start_h,
            self.infusion_end_h,
            self.infusion_rates[:, keep],
        )

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
    doses : sequence of doses
        ``IVBolus``, ``IVInfusion``, ``Intranasal``, ``Intraperitoneal``, ``Subcutaneous``,
        ``Intratracheal`` or ``LocalInjection``, by any mix of routes; a regimen may be empty
        only if it is not simulated.
    """

    doses: tuple[Dose, ...]

    def __init__(self, doses: Iterable[Dose]) -> None:
        doses = tuple(doses)
        for k, dose in enumerate(doses):
            if not isinstance(dose, (_Instant, IVInfusion)):
                raise DosingError(
                    f"regimen entry {k} must be a dose (e.g. IVBolus, Intranasal); got {type(dose).__name__}."
                )
        object.__setattr__(self, "doses", tuple(sorted(doses, key=lambda d: d.t_h)))

    @property
    def total_particles(self) -> float:
        """Sum of all doses (particles); the reference for %ID."""
        return float(sum(d.dose_particles for d in self.doses))

    @property
    def routes(self) -> tuple[str, ...]:
        """Routes used by the regimen, in order of first use."""
        return tuple(dict.fromkeys(d.route for d in self.doses))

    @property
    def first_h(self) -> float:
        """Time of the first dose (h)."""
        return min(d.t_h for d in self.doses) if self.doses else 0.0

    def events(self) -> Events:
        """Input vectors for the solvers."""
        venous = state_index("blood_venous")
        boluses = [d for d in self.doses if isinstance(d, _Instant)]
        infusions = [d for d in self.doses if isinstance(d, IVInfusion)]
        bolus_amounts = np.zeros((len(boluses), N_LIVE))
        for k, d in enumerate(boluses):
            for state, share in d.inputs.items():
                bolus_amounts[k, state_index(state)] += share * d.dose_particles
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
            Columns ``time_h``, ``route`` (one of :data:`ROUTES`), one of ``dose_particles``
            or ``dose_ug``, optionally ``duration_h`` (iv_infusion only; 0 or empty
            otherwise), ``site`` (``local`` only: ``<organ>_<vascular|tissue>``, e.g.
            ``kidney_vascular``) and ``lower_airway_fraction`` (intranasal only; see
            :class:`Intranasal`).
        particles_per_ug : float, optional
            Required when doses are given as ``dose_ug``.
        where : str
            Name of the table's origin, used in error messages (e.g. a file name).
        """
        import pandas as pd

        if not isinstance(table, pd.DataFrame):
            raise DosingError(
                f"{where}: expected a pandas DataFrame with one row per dose; got {type(table).__name__}."
            )
        columns = set(table.columns)
        expected = "expected time_h, route, dose_particles or dose_ug, duration_h, site, lower_airway_fraction"
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
        unknown = columns - {
            "time_h",
            "route",
            "dose_particles",
            "dose_ug",
            "duration_h",
            "site",
            "lower_airway_fraction",
        }
        if unknown:
            raise DosingError(f"{where}: unknown column(s) {sorted(unknown)}; {expected}.")
        if len(table) == 0:
            raise DosingError(f"{where}: the regimen has no doses.")
        doses: list[Dose] = []
        for row_number, row in enumerate(table.to_dict("records"), start=1):
            try:
                route = row["route"]
                if route is None or (isinstance(route, float) and math.isnan(route)):
                    raise DosingError(f"missing `route`; expected one of: {', '.join(ROUTES)}.")
                t_h = _cell_number(row["time_h"], "time_h")
                amount = (
                    _cell_number(row["dose_particles"], "dose_particles")
                    if has_particles
                    else particles_from_protein(_cell_number(row["dose_ug"], "dose_ug"), particles_per_ug)
                )
                duration = row.get("duration_h", 0.0)
                duration = (
                    0.0
                    if duration is None or (isinstance(duration, float) and math.isnan(duration))
                    else _cell_number(duration, "duration_h")
                )
                site = row.get("site")
                site = None if site is None or (isinstance(site, float) and math.isnan(site)) else str(site)
                if route not in ROUTES:
                    raise DosingError(f"unknown route {route!r}; expected one of: {', '.join(ROUTES)}.")
                if route != "iv_infusion" and duration != 0.0:
                    raise DosingError(f"`duration_h` of a {route} dose must be 0 or empty; got {duration!r}.")
                if route != "local" and site is not None:
                    raise DosingError(f"`site` applies to route local only; got {site!r} for {route}.")
                lungs = row.get("lower_airway_fraction")
                lungs = (
                    None
                    if lungs is None or (isinstance(lungs, float) and math.isnan(lungs))
                    else _cell_number(lungs, "lower_airway_fraction")
                )
                if route != "intranasal" and lungs is not None:
                    raise DosingError(f"`lower_airway_fraction` applies to route intranasal only; got {route}.")
                if route == "iv_infusion":
                    doses.append(IVInfusion(dose_particles=amount, duration_h=duration, t_h=t_h))
                elif route == "local":
                    organ, _, space = (site or "").rpartition("_")
                    if not organ:
                        raise DosingError(
                            "a local dose needs `site` = <organ>_<vascular|tissue> (e.g. kidney_vascular); "
                            f"got {site!r}."
                        )
                    doses.append(LocalInjection(dose_particles=amount, organ=organ, space=space, t_h=t_h))
                elif route == "intranasal":
                    doses.append(Intranasal(dose_particles=amount, t_h=t_h, lower_airway_fraction=lungs or 0.0))
                else:
                    doses.append(_INSTANT_BY_ROUTE[route](dose_particles=amount, t_h=t_h))
            except (TypeError, ValueError) as err:
                raise DosingError(f"{where}, dose row {row_number}: {err}") from None
        return cls(doses)

    @classmethod
    def from_csv(cls, path: str | Path, *, particles_per_ug: float | None = None) -> Regimen:
        """Read a regimen table from a CSV file (see :meth:`from_frame` for the columns).

        Raises
        ------
        DosingError
            The file is missing, not a regular file, not UTF-8 text, empty or not a CSV table,
            or a row is invalid (the message names the file, row and column).
        """
        from exopk.model.files import read_csv

        table = read_csv(path, "regimen file", error=DosingError)
        return cls.from_frame(table, particles_per_ug=particles_per_ug, where=str(path))


def _cell_number(value: object, column: str) -> float:
    """One cell of a regimen table as a float; DosingError naming the column for text or true/false."""
    if isinstance(value, (bool, np.bool_)):
        raise DosingError(f"`{column}` must be a number; got {value!r}.")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise DosingError(f"`{column}` must be a number; got {value!r}.") from None


def as_regimen(regimen: Regimen | Dose | Sequence[Dose]) -> Regimen:
    """Accept a single dose, a list of doses or a :class:`Regimen`."""
    if isinstance(regimen, Regimen):
        out = regimen
    elif isinstance(regimen, (_Instant, IVInfusion)):
        out = Regimen([regimen])
    elif isinstance(regimen, (list, tuple)):
        out = Regimen(regimen)
    else:
        raise DosingError(f"`regimen` must be a dose, a list of doses or a Regimen; got {type(regimen).__name__}.")
    if not out.doses:
        raise DosingError("`regimen` has no doses.")
    return out
