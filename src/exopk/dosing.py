"""Doses, infusions and regimens.

A dose is given in particles. Doses measured as µg of EV protein convert with an explicit
particles-per-µg factor (:func:`particles_from_protein`); exopk has no default factor,
because it varies by orders of magnitude between preparations and counting methods.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping, Sequence
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


def _require_fraction(name: str, value: float) -> None:
    if not is_real_number(value) or not math.isfinite(value) or not 0.0 <= value <= 1.0:
        raise DosingError(f"`{name}` must be a fraction in [0, 1]; got {value!r}.")


@dataclass(frozen=True, slots=True, kw_only=True)
class _DoseBase:
    """Fields every dose has: amount (absolute or per kg), time, lag, bioavailability, repeats, steady state."""

    dose_particles: float | None = None
    dose_particles_per_kg: float | None = None
    t_h: float = 0.0
    lag_h: float = 0.0
    f: float = 1.0
    ii_h: float = 0.0
    addl: int = 0
    ss: int = 0

    route = ""

    def __post_init__(self) -> None:
        if (self.dose_particles is None) == (self.dose_particles_per_kg is None):
            raise DosingError(
                "give exactly one of `dose_particles` or `dose_particles_per_kg`; got "
                f"dose_particles={self.dose_particles!r}, dose_particles_per_kg={self.dose_particles_per_kg!r}."
            )
        if self.dose_particles is not None:
            _require_finite_non_negative("dose_particles", self.dose_particles)
        else:
            _require_finite_non_negative("dose_particles_per_kg", self.dose_particles_per_kg)  # type: ignore[arg-type]
        _require_finite_non_negative("t_h", self.t_h)
        _require_finite_non_negative("lag_h", self.lag_h)
        _require_fraction("f", self.f)
        _require_finite_non_negative("ii_h", self.ii_h)
        if isinstance(self.addl, bool) or not isinstance(self.addl, (int, np.integer)) or self.addl < 0:
            raise DosingError(f"`addl` (additional doses) must be a non-negative integer; got {self.addl!r}.")
        if isinstance(self.ss, bool) or self.ss not in (0, 1):
            raise DosingError(
                f"`ss` must be 0 or 1 (1: at periodic steady state before this dose); got {self.ss!r}. "
                "ss=2 (steady state added to the current state) is not supported."
            )
        if (self.addl > 0 or self.ss == 1) and self.ii_h <= 0:
            what = f"addl={self.addl}" if self.addl > 0 else "ss=1"
            raise DosingError(f"{what} needs a positive dosing interval `ii_h`; got ii_h={self.ii_h!r}.")

    @property
    def n_doses(self) -> int:
        """Administrations this entry stands for, ``1 + addl``."""
        return 1 + int(self.addl)

    @property
    def amount_particles(self) -> float:
        """Particles per administration (nominal, before bioavailability ``f``)."""
        if self.dose_particles is None:
            raise DosingError(
                f"a {self.route} dose is given per kg ({self.dose_particles_per_kg:g} particles/kg): resolve it "
                "for a body weight first (Regimen.for_body_weight, done by simulate from the model's body weight)."
            )
        return float(self.dose_particles)

    def for_body_weight(self, body_weight_kg: float) -> _DoseBase:
        """The same dose in particles for a subject of ``body_weight_kg`` (unchanged if not per kg)."""
        if self.dose_particles_per_kg is None:
            return self
        return dataclasses.replace(
            self, dose_particles=float(self.dose_particles_per_kg) * float(body_weight_kg), dose_particles_per_kg=None
        )

    def repeated(self, every_h: float, n: int) -> _DoseBase:
        """This dose given ``n`` times, every ``every_h`` hours (``ii_h = every_h``, ``addl = n - 1``)."""
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise DosingError(f"`n` (number of doses) must be a positive integer; got {n!r}.")
        if not is_real_number(every_h) or not math.isfinite(every_h) or every_h <= 0:
            raise DosingError(f"`every_h` must be positive and finite; got {every_h!r}.")
        return dataclasses.replace(self, ii_h=float(every_h), addl=int(n) - 1)


@dataclass(frozen=True, slots=True, kw_only=True)
class _Instant(_DoseBase):
    """A dose given at one instant into one state (shared checks of the bolus-like doses).

    Every dose also takes ``lag_h`` (delay before the dose enters, h), ``f`` (bioavailability:
    share of the dose that enters, in [0, 1]), ``ii_h`` and ``addl`` (``addl`` more doses every
    ``ii_h`` hours), ``ss`` (1: the system is at periodic steady state of this dose and interval
    before it is given) and ``dose_particles_per_kg`` instead of ``dose_particles`` (scaled by
    the subject's body weight). See docs/dosing.md.
    """

    state = ""

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
        Number of EVs injected (or ``dose_particles_per_kg``).
    t_h : float, default 0.0
        Time of injection (h).
    lag_h, f, ii_h, addl, ss : optional
        Lag time (h), bioavailability, repeats and steady state, as for every dose (docs/dosing.md).
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


_DEPOT_STATE = {
    "intranasal": "nasal_cavity",
    "intraperitoneal": "peritoneal_cavity",
    "subcutaneous": "subcutaneous_site",
    "intratracheal": "lung_airspace",
}


def infusion_target(into: str) -> tuple[str, str]:
    """Route and state of an infusion target: ``"iv"``, a depot route, or ``<organ>_<vascular|tissue>``."""
    if into == "iv":
        return "iv_infusion", "blood_venous"
    if into in _DEPOT_STATE:
        return into, _DEPOT_STATE[into]
    organ, _, space = str(into).rpartition("_")
    if organ in ORGANS and space in LOCAL_SPACES:
        return "local", str(into)
    raise DosingError(
        f"`into` of an infusion must be 'iv', a depot route ({', '.join(DEPOT_ROUTES)}) or "
        f"<organ>_<vascular|tissue> with organ one of {', '.join(ORGANS)}; got {into!r}."
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class Infusion(_DoseBase):
    """A constant-rate infusion into venous blood, a route's depot or an organ space.

    Give the amount (``dose_particles`` or ``dose_particles_per_kg``) and either
    ``duration_h`` or ``rate_particles_per_h`` (for a per-kg dose: particles/kg/h; the
    duration is then the same for every body weight). Subcutaneous infusion is
    ``Infusion(..., into="subcutaneous")``, intra-arterial infusion into the kidney
    ``Infusion(..., into="kidney_vascular")``. Takes ``lag_h``, ``f``, ``ii_h``, ``addl``, ``ss``
    as every dose does (see :class:`IVBolus`).

    Parameters
    ----------
    dose_particles : float
        Total number of EVs infused.
    duration_h : float, optional
        Length of the infusion (h), positive.
    rate_particles_per_h : float, optional
        Infusion rate (particles/h) instead of ``duration_h``.
    into : str, default "iv"
        ``"iv"`` (venous blood), a depot route (``intranasal``, ``intraperitoneal``,
        ``subcutaneous``, ``intratracheal``) or ``<organ>_<vascular|tissue>``.
    t_h : float, default 0.0
        Start of the infusion (h).
    """

    duration_h: float | None = None
    rate_particles_per_h: float | None = None
    into: str = "iv"

    def __post_init__(self) -> None:
        _DoseBase.__post_init__(self)
        infusion_target(self.into)
        amount = self.dose_particles if self.dose_particles is not None else self.dose_particles_per_kg
        duration, rate = self.duration_h, self.rate_particles_per_h
        if duration is None and rate is None:
            raise DosingError("an infusion needs `duration_h` (h) or `rate_particles_per_h`; got neither.")
        if rate is not None:
            if not is_real_number(rate) or not math.isfinite(rate) or rate <= 0:
                raise DosingError(f"`rate_particles_per_h` of an infusion must be positive and finite; got {rate!r}.")
            from_rate = float(amount) / float(rate)  # type: ignore[arg-type]
            if duration is not None and not math.isclose(float(duration), from_rate, rel_tol=1e-9):
                raise DosingError(
                    f"`duration_h` {duration!r} and `rate_particles_per_h` {rate!r} disagree with the dose {amount!r} "
                    "(dose = rate x duration); give one of them."
                )
            duration = from_rate
            object.__setattr__(self, "duration_h", duration)
        if not is_real_number(duration):
            raise DosingError(f"`duration_h` must be a number; got {duration!r}.")
        duration = float(duration)
        if not math.isfinite(duration) or duration <= 0:
            raise DosingError(f"`duration_h` of an infusion must be positive and finite; got {duration!r}.")
        if amount is not None and not math.isfinite(float(amount) / duration):
            raise DosingError(
                f"`dose_particles` / `duration_h` = {amount!r} / {duration!r} h overflows; "
                "expected a finite infusion rate (particles/h)."
            )
        if self.dose_particles is not None:
            object.__setattr__(self, "rate_particles_per_h", float(self.dose_particles) / float(duration))
        else:
            object.__setattr__(self, "rate_particles_per_h", None)
        if (self.ss == 1 or self.addl > 0) and float(duration) > self.ii_h:
            raise DosingError(
                f"a repeated infusion must end before the next one starts: `duration_h` {duration:g} h > "
                f"`ii_h` {self.ii_h:g} h (overlapping infusions in one entry are not supported)."
            )

    @property
    def route(self) -> str:  # type: ignore[override]
        """``iv_infusion``, the depot route, or ``local``."""
        return infusion_target(self.into)[0]

    @property
    def state(self) -> str:
        """The state the infusion enters."""
        return infusion_target(self.into)[1]

    @property
    def end_h(self) -> float:
        """Time the (first) infusion stops (h), without lag."""
        return self.t_h + float(self.duration_h)  # type: ignore[arg-type]

    def for_body_weight(self, body_weight_kg: float) -> Infusion:
        """The same infusion in particles for a subject of ``body_weight_kg``."""
        if self.dose_particles_per_kg is None:
            return self
        return dataclasses.replace(
            self,
            dose_particles=float(self.dose_particles_per_kg) * float(body_weight_kg),
            dose_particles_per_kg=None,
            rate_particles_per_h=None,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class IVInfusion(Infusion):
    """Intravenous infusion at a constant rate into venous blood.

    Parameters
    ----------
    dose_particles : float
        Total number of EVs infused.
    duration_h : float
        Length of the infusion (h), positive (or give ``rate_particles_per_h``).
    t_h : float, default 0.0
        Start of the infusion (h).
    """

    def __post_init__(self) -> None:
        if self.into != "iv":
            raise DosingError(f"an IVInfusion goes into venous blood; for `into`={self.into!r} use Infusion.")
        Infusion.__post_init__(self)

    @classmethod
    def from_rate(cls, rate_particles_per_h: float, duration_h: float, t_h: float = 0.0) -> IVInfusion:
        """An infusion given by its rate (particles/h) and duration (h) instead of its total dose."""
        _require_finite_non_negative("rate_particles_per_h", rate_particles_per_h)
        _require_finite_non_negative("duration_h", duration_h)
        return cls(dose_particles=float(rate_particles_per_h) * float(duration_h), duration_h=duration_h, t_h=t_h)


Dose = IVBolus | IVInfusion | Infusion | Intranasal | Intraperitoneal | Subcutaneous | Intratracheal | LocalInjection


@dataclass(frozen=True, slots=True)
class SteadyState:
    """A dose given at periodic steady state (``ss=1``): before ``t_h`` the system is reset to the
    state just before a dose of the periodic regimen (this input every ``ii_h`` hours, forever).

    ``amounts`` (particles, per live state) is the bolus part and ``rates`` (particles/h) the
    infusion part, given over ``duration_h``.
    """

    t_h: float
    ii_h: float
    amounts: np.ndarray  # (n_live,)
    rates: np.ndarray  # (n_live,)
    duration_h: float

    def restricted(self, keep: np.ndarray) -> SteadyState:
        """The same steady state over the live states ``keep`` only."""
        return SteadyState(self.t_h, self.ii_h, self.amounts[keep], self.rates[keep], self.duration_h)


_NO_TIMES = np.zeros(0)
_NO_TIMES.setflags(write=False)


@dataclass(frozen=True, slots=True)
class Events:
    """A regimen as input vectors over the live states, for the solvers.

    ``bolus_amounts[k]`` (particles) enters at ``bolus_t_h[k]``; ``infusion_rates[k]``
    (particles/h) flows in over ``[infusion_start_h[k], infusion_end_h[k])``. Amounts are what
    enters (bioavailability applied); ``bolus_nominal`` / ``infusion_nominal`` are the doses as
    given (the %ID reference). At each ``reset_t_h`` every state, sinks included, returns to 0
    (NONMEM EVID 3/4); at each ``steady[k].t_h`` the state is set to the periodic steady state.
    Boluses are sorted by time. Memory is one row per administration (``addl`` expanded).
    """

    bolus_t_h: np.ndarray  # (n_bolus,)
    bolus_amounts: np.ndarray  # (n_bolus, n_live)
    infusion_start_h: np.ndarray  # (n_infusion,)
    infusion_end_h: np.ndarray  # (n_infusion,)
    infusion_rates: np.ndarray  # (n_infusion, n_live)
    bolus_nominal: np.ndarray | None = None  # (n_bolus,) particles as given; None: = row sums
    infusion_nominal: np.ndarray | None = None  # (n_infusion,)
    reset_t_h: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0))
    steady: tuple[SteadyState, ...] = ()

    @property
    def n_events(self) -> int:
        """Number of administrations (bolus and infusion rows)."""
        return int(self.bolus_t_h.size + self.infusion_start_h.size)

    @property
    def has_boundaries(self) -> bool:
        """Whether the state is reset or set to a steady state somewhere."""
        return bool(self.reset_t_h.size or self.steady)

    @property
    def boundaries_h(self) -> np.ndarray:
        """Sorted times where the state is reset (EVID 3/4) or set to a steady state (ss=1)."""
        if not self.steady:
            return np.unique(self.reset_t_h) if self.reset_t_h.size else _NO_TIMES
        return np.unique(np.concatenate([self.reset_t_h, [s.t_h for s in self.steady]]))

    def nominal(self) -> tuple[np.ndarray, np.ndarray]:
        """Nominal dose of each bolus and infusion row (particles)."""
        b = self.bolus_amounts.sum(axis=1) if self.bolus_nominal is None else self.bolus_nominal
        r = self.infusion_rates.sum(axis=1) * (self.infusion_end_h - self.infusion_start_h)
        i = r if self.infusion_nominal is None else self.infusion_nominal
        return b, i

    @property
    def entered(self) -> np.ndarray:
        """Boolean mask of the live states that receive any dose."""
        out = (self.bolus_amounts != 0).any(axis=0) | (self.infusion_rates != 0).any(axis=0)
        for s in self.steady:
            out = out | (s.amounts != 0) | (s.rates != 0)
        return out

    def restricted(self, keep: np.ndarray) -> Events:
        """The same events over the live states ``keep`` only (indices)."""
        b, i = self.nominal()
        return Events(
            self.bolus_t_h,
            self.bolus_amounts[:, keep],
            self.infusion_start_h,
            self.infusion_end_h,
            self.infusion_rates[:, keep],
            b,
            i,
            self.reset_t_h,
            tuple(s.restricted(keep) for s in self.steady),
        )

    def mixed(self, shares: np.ndarray) -> Events:
        """The same events for a stack of subpopulations: every input split by ``shares``.

        Live state ``j`` of subpopulation ``p`` is column ``p * n_live + j``
        (:func:`exopk.model.graph.mixture_system`); the nominal doses stay as given.
        """
        w = np.asarray(shares, dtype=float)

        def stack(a: np.ndarray) -> np.ndarray:
            return (w[:, None] * a[..., None, :]).reshape(*a.shape[:-1], w.size * a.shape[-1])

        b, i = self.nominal()
        return Events(
            self.bolus_t_h,
            stack(self.bolus_amounts),
            self.infusion_start_h,
            self.infusion_end_h,
            stack(self.infusion_rates),
            b,
            i,
            self.reset_t_h,
            tuple(SteadyState(s.t_h, s.ii_h, stack(s.amounts), stack(s.rates), s.duration_h) for s in self.steady),
        )

    def until(self, t_end_h: float) -> tuple[Events, int, float]:
        """The events starting at or before ``t_end_h``; also the number and nominal particles of the others."""
        b, i = self.nominal()
        kb, ki = self.bolus_t_h <= t_end_h, self.infusion_start_h <= t_end_h
        n_late = int((~kb).sum() + (~ki).sum())
        late = float(b[~kb].sum() + i[~ki].sum())
        if n_late == 0:
            return self, 0, 0.0
        kept = Events(
            self.bolus_t_h[kb],
            self.bolus_amounts[kb],
            self.infusion_start_h[ki],
            self.infusion_end_h[ki],
            self.infusion_rates[ki],
            b[kb],
            i[ki],
            self.reset_t_h[self.reset_t_h <= t_end_h],
            tuple(s for s in self.steady if s.t_h <= t_end_h),
        )
        return kept, n_late, late

    def reference_particles(self) -> float:
        """The %ID reference: the nominal dose given, in the occasion (between resets) that gives most.

        Without resets this is the sum of all doses; each ss=1 dose counts once.
        """
        b, i = self.nominal()
        bounds = self.boundaries_h
        if bounds.size == 0:
            return float(b.sum() + i.sum())
        occasion_b = np.searchsorted(bounds, self.bolus_t_h, side="right")
        occasion_i = np.searchsorted(bounds, self.infusion_start_h, side="right")
        totals = np.bincount(occasion_b, weights=b, minlength=bounds.size + 1).astype(float)
        totals += np.bincount(occasion_i, weights=i, minlength=bounds.size + 1).astype(float)
        return float(totals.max())

    def administered(self, t_h: np.ndarray) -> np.ndarray:
        """Particles entered up to each time since the last reset or steady-state time, shape (n_times,).

        Bolus amounts count from their time on; infusions pro rata. An infusion that started
        before a reset is stopped by it. (The amount a steady state puts in the body is added
        by the solver.) Cost O((n_times + n_events) log n_events), no (n_times, n_events) array.
        """
        t = np.asarray(t_h, dtype=float)
        bounds = self.boundaries_h
        if bounds.size == 0 and self.infusion_start_h.size == 0:  # boluses only, no resets: one cumulative sum
            order = np.argsort(self.bolus_t_h, kind="stable")
            cum = np.concatenate([[0.0], np.cumsum(self.bolus_amounts.sum(axis=1)[order])])
            return cum[np.searchsorted(self.bolus_t_h[order], t, side="right")]
        edges = np.concatenate([[-np.inf], bounds, [np.inf]])
        seg = np.searchsorted(bounds, t, side="right")  # segment index of each time
        lower = edges[seg]
        out = np.zeros(t.size)
        if self.bolus_t_h.size:
            order = np.argsort(self.bolus_t_h, kind="stable")
            bt = self.bolus_t_h[order]
            cum = np.concatenate([[0.0], np.cumsum(self.bolus_amounts.sum(axis=1)[order])])
            out += cum[np.searchsorted(bt, t, side="right")] - cum[np.searchsorted(bt, lower, side="left")]
        if self.infusion_start_h.size:
            r_all = self.infusion_rates.sum(axis=1)
            for k in range(bounds.size + 1):
                times = seg == k
                inside = (self.infusion_start_h >= edges[k]) & (self.infusion_start_h < edges[k + 1])
                if not times.any() or not inside.any():
                    continue
                s, e, r = self.infusion_start_h[inside], self.infusion_end_h[inside], r_all[inside]
                out[times] += _infusion_given(t[times], s, e, r)
        return out


def _infusion_given(t: np.ndarray, s: np.ndarray, e: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Particles infused by each (sorted) time: completed infusions whole, running ones pro rata.

    Completed infusions add r (e - s) (a running sum over their ends); running ones add
    r (t - s), computed directly (not as r t - r s, which loses digits just after a start),
    between consecutive starts and ends, where the set of running infusions is fixed. Cost
    O(n_times + n_infusions x running), no (n_times, n_infusions) array.
    """
    out = np.zeros(t.size)
    oe = np.argsort(e, kind="stable")
    completed = np.concatenate([[0.0], np.cumsum((r * (e - s))[oe])])
    out += completed[np.searchsorted(e[oe], t, side="right")]
    points = np.unique(np.concatenate([s, e]))
    first = np.searchsorted(t, points, side="left")
    os_ = np.argsort(s, kind="stable")
    running: set[int] = set()
    i_s = i_e = 0
    for k, p in enumerate(points):
        while i_s < s.size and s[os_[i_s]] <= p:
            running.add(int(os_[i_s]))
            i_s += 1
        while i_e < e.size and e[oe[i_e]] <= p:
            running.discard(int(oe[i_e]))
            i_e += 1
        j0, j1 = first[k], (first[k + 1] if k + 1 < points.size else t.size)
        if running and j1 > j0:
            ids = np.fromiter(running, dtype=np.intp)
            out[j0:j1] += (t[j0:j1, None] - s[ids][None, :]) @ r[ids]
    return out


def _effective(value: float | None, default: float) -> float:
    return default if value is None else float(value)


@dataclass(frozen=True, slots=True)
class Regimen:
    """Any number of doses, in any order, by any route.

    Parameters
    ----------
    doses : sequence of doses
        ``IVBolus``, ``IVInfusion``, ``Infusion``, ``Intranasal``, ``Intraperitoneal``,
        ``Subcutaneous``, ``Intratracheal`` or ``LocalInjection``, by any mix of routes, each
        possibly repeated (``ii_h``, ``addl``) or at steady state (``ss=1``); a regimen may be
        empty only if it is not simulated.
    resets_h : sequence of float, optional
        Times (h) at which every state returns to 0 (NONMEM EVID 3; EVID 4 is a reset and a
        dose at the same time).
    f_by_route : mapping of str to float, optional
        Bioavailability per route (e.g. ``{"subcutaneous": 0.6}``), multiplying each dose's own ``f``.
    lag_h_by_route : mapping of str to float, optional
        Lag time per route (h), added to each dose's own ``lag_h``.
    """

    doses: tuple[Dose, ...]
    resets_h: tuple[float, ...] = ()
    f_by_route: Mapping[str, float] = dataclasses.field(default_factory=dict)
    lag_h_by_route: Mapping[str, float] = dataclasses.field(default_factory=dict)

    def __init__(
        self,
        doses: Iterable[Dose],
        *,
        resets_h: Iterable[float] = (),
        f_by_route: Mapping[str, float] | None = None,
        lag_h_by_route: Mapping[str, float] | None = None,
    ) -> None:
        doses = tuple(doses)
        for k, dose in enumerate(doses):
            if not isinstance(dose, (_Instant, Infusion)):
                raise DosingError(
                    f"regimen entry {k} must be a dose (e.g. IVBolus, Intranasal); got {type(dose).__name__}."
                )
        resets = tuple(float(t) for t in resets_h)
        for t in resets:
            _require_finite_non_negative("resets_h", t)
        for name, table, check in (
            ("f_by_route", f_by_route or {}, _require_fraction),
            ("lag_h_by_route", lag_h_by_route or {}, _require_finite_non_negative),
        ):
            for route, value in table.items():
                if route not in ROUTES:
                    raise DosingError(f"`{name}`: unknown route {route!r}; expected one of: {', '.join(ROUTES)}.")
                check(f"{name}[{route!r}]", value)
        object.__setattr__(self, "doses", tuple(sorted(doses, key=lambda d: d.t_h)))
        object.__setattr__(self, "resets_h", tuple(sorted(resets)))
        object.__setattr__(self, "f_by_route", dict(f_by_route or {}))
        object.__setattr__(self, "lag_h_by_route", dict(lag_h_by_route or {}))

    @classmethod
    def repeat(cls, dose: Dose, every_h: float, n: int) -> Regimen:
        """``dose`` given ``n`` times, every ``every_h`` hours from its ``t_h`` (NONMEM ``II``, ``ADDL = n - 1``).

        Example: ``Regimen.repeat(IVBolus(dose_particles=1e10), every_h=24, n=7)``, a week of daily doses.
        """
        if not isinstance(dose, (_Instant, Infusion)):
            raise DosingError(f"`dose` must be a dose (e.g. IVBolus); got {type(dose).__name__}.")
        return cls([dose.repeated(every_h, n)])  # type: ignore[list-item]

    def _replaced(self, doses: Iterable[Dose]) -> Regimen:
        return Regimen(doses, resets_h=self.resets_h, f_by_route=self.f_by_route, lag_h_by_route=self.lag_h_by_route)

    @property
    def per_kg(self) -> bool:
        """Whether some dose is given per kg of body weight (resolve with :meth:`for_body_weight`)."""
        return any(d.dose_particles_per_kg is not None for d in self.doses)

    def for_body_weight(self, body_weight_kg: float) -> Regimen:
        """The regimen with every per-kg dose in particles for a subject of ``body_weight_kg``."""
        if not self.per_kg:
            return self
        if not is_real_number(body_weight_kg) or not math.isfinite(body_weight_kg) or body_weight_kg <= 0:
            raise DosingError(f"`body_weight_kg` must be positive and finite; got {body_weight_kg!r}.")
        return self._replaced(d.for_body_weight(body_weight_kg) for d in self.doses)  # type: ignore[misc]

    def scaled(self, factor: float) -> Regimen:
        """Every dose multiplied by ``factor`` (for dose-finding in the linear model)."""
        out = []
        for d in self.doses:
            if d.dose_particles_per_kg is not None:
                out.append(dataclasses.replace(d, dose_particles_per_kg=d.dose_particles_per_kg * factor))
            elif isinstance(d, Infusion):
                out.append(
                    dataclasses.replace(d, dose_particles=d.amount_particles * factor, rate_particles_per_h=None)
                )
            else:
                out.append(dataclasses.replace(d, dose_particles=d.amount_particles * factor))
        return self._replaced(out)

    @property
    def total_particles(self) -> float:
        """Sum of all doses as given (particles, every repeat counted); the reference for %ID."""
        return float(sum(d.amount_particles * d.n_doses for d in self.doses))

    @property
    def n_administrations(self) -> int:
        """Administrations in the regimen, repeats (``addl``) included."""
        return sum(d.n_doses for d in self.doses)

    @property
    def routes(self) -> tuple[str, ...]:
        """Routes used by the regimen, in order of first use."""
        return tuple(dict.fromkeys(d.route for d in self.doses))

    @property
    def first_h(self) -> float:
        """Time of the first dose (h)."""
        return min(d.t_h for d in self.doses) if self.doses else 0.0

    def _lag_f(self, dose: Dose) -> tuple[float, float]:
        lag = dose.lag_h + float(self.lag_h_by_route.get(dose.route, 0.0))
        return lag, dose.f * float(self.f_by_route.get(dose.route, 1.0))

    @property
    def last_h(self) -> float:
        """Time of the last administration (h), repeats and lag times included."""
        return max((d.t_h + self._lag_f(d)[0] + d.ii_h * d.addl for d in self.doses), default=0.0)

    def events(self) -> Events:
        """Input vectors for the solvers (repeats expanded, lag times and bioavailability applied)."""
        bolus_t, bolus_vec, bolus_nom, bolus_n = [], [], [], []
        inf_t, inf_d, inf_vec, inf_nom, inf_n = [], [], [], [], []
        steady = []
        for d in self.doses:
            amount = d.amount_particles
            lag, f = self._lag_f(d)
            times = d.t_h + lag + d.ii_h * np.arange(d.n_doses, dtype=float)
            vec = np.zeros(N_LIVE)
            if isinstance(d, Infusion):
                vec[state_index(d.state)] = f * float(d.rate_particles_per_h)  # type: ignore[arg-type]
                inf_t.append(times)
                inf_d.append(np.full(d.n_doses, float(d.duration_h)))  # type: ignore[arg-type]
                inf_vec.append(vec)
                inf_nom.append(amount)
                inf_n.append(d.n_doses)
                if d.ss:
                    steady.append(
                        SteadyState(float(times[0]), float(d.ii_h), np.zeros(N_LIVE), vec, float(d.duration_h or 0.0))
                    )
            else:
                for state, share in d.inputs.items():
                    vec[state_index(state)] += share * f * amount
                bolus_t.append(times)
                bolus_vec.append(vec)
                bolus_nom.append(amount)
                bolus_n.append(d.n_doses)
                if d.ss:
                    steady.append(SteadyState(float(times[0]), float(d.ii_h), vec, np.zeros(N_LIVE), 0.0))

        def stack(vectors, counts):
            if not vectors:
                return np.zeros((0, N_LIVE))
            return np.repeat(np.array(vectors), counts, axis=0)

        bt = np.concatenate(bolus_t) if bolus_t else np.zeros(0)
        order = np.argsort(bt, kind="stable")
        starts = np.concatenate(inf_t) if inf_t else np.zeros(0)
        return Events(
            bolus_t_h=bt[order],
            bolus_amounts=stack(bolus_vec, bolus_n)[order],
            infusion_start_h=starts,
            infusion_end_h=starts + (np.concatenate(inf_d) if inf_d else np.zeros(0)),
            infusion_rates=stack(inf_vec, inf_n),
            bolus_nominal=np.repeat(np.array(bolus_nom, dtype=float), bolus_n)[order],
            infusion_nominal=np.repeat(np.array(inf_nom, dtype=float), inf_n),
            reset_t_h=np.array(self.resets_h, dtype=float),
            steady=tuple(sorted(steady, key=lambda s: s.t_h)),
        )

    @classmethod
    def from_frame(cls, table, *, particles_per_ug: float | None = None, where: str = "regimen") -> Regimen:
        """Build a regimen from a table with one row per dose.

        Parameters
        ----------
        table : pandas.DataFrame
            Columns ``time_h``, ``route`` (one of :data:`ROUTES`), one of ``dose_particles``,
            ``dose_ug`` or ``dose_particles_per_kg``; optionally ``duration_h`` or
            ``rate_particles_per_h`` (an infusion: required for iv_infusion; for a depot route
            or ``local`` an infusion into the depot or site; not for iv_bolus), ``site``
            (``local`` only: ``<organ>_<vascular|tissue>``, e.g. ``kidney_vascular``),
            ``lower_airway_fraction`` (intranasal bolus only; see :class:`Intranasal`), and the
            per-dose ``ii_h``, ``addl``, ``ss``, ``lag_h``, ``f`` (see docs/dosing.md).
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
        known = (
            "time_h",
            "route",
            "dose_particles",
            "dose_ug",
            "dose_particles_per_kg",
            "duration_h",
            "rate_particles_per_h",
            "site",
            "lower_airway_fraction",
            "ii_h",
            "addl",
            "ss",
            "lag_h",
            "f",
        )
        expected = "expected " + ", ".join(known)
        for required in ("time_h", "route"):
            if required not in columns:
                raise DosingError(f"{where}: missing column `{required}`; {expected}.")
        amount_columns = [c for c in ("dose_particles", "dose_ug", "dose_particles_per_kg") if c in columns]
        if len(amount_columns) != 1:
            raise DosingError(
                f"{where}: give exactly one of the columns `dose_particles`, `dose_ug` or `dose_particles_per_kg`; "
                f"got {sorted(columns)}."
            )
        amount_column = amount_columns[0]
        if amount_column == "dose_ug" and particles_per_ug is None:
            raise DosingError(
                f"{where}: doses in `dose_ug` need an explicit `particles_per_ug` factor (no default is assumed)."
            )
        unknown = columns - set(known)
        if unknown:
            raise DosingError(f"{where}: unknown column(s) {sorted(unknown)}; {expected}.")
        if len(table) == 0:
            raise DosingError(f"{where}: the regimen has no doses.")
        doses: list[Dose] = []
        for row_number, row in enumerate(table.to_dict("records"), start=1):
            try:

                def cell(name, row=row):
                    value = row.get(name)
                    return None if value is None or (isinstance(value, float) and math.isnan(value)) else value

                number = _number_cell(cell)
                route = row["route"]
                if route is None or (isinstance(route, float) and math.isnan(route)):
                    raise DosingError(f"missing `route`; expected one of: {', '.join(ROUTES)}.")
                amount = _cell_number(row[amount_column], amount_column)
                amount_kw: dict[str, float] = (
                    {"dose_particles_per_kg": amount}
                    if amount_column == "dose_particles_per_kg"
                    else {
                        "dose_particles": amount
                        if amount_column == "dose_particles"
                        else particles_from_protein(amount, particles_per_ug)  # type: ignore[arg-type]
                    }
                )
                duration = number("duration_h")
                doses.append(
                    dose_for_route(
                        row["route"],
                        t_h=_cell_number(row["time_h"], "time_h"),
                        duration_h=None if duration == 0.0 and row["route"] != "iv_infusion" else duration,
                        rate_particles_per_h=number("rate_particles_per_h"),
                        site=None if cell("site") is None else str(cell("site")),
                        lower_airway_fraction=number("lower_airway_fraction"),
                        ii_h=number("ii_h") or 0.0,
                        addl=_integer(number("addl") or 0, "addl"),
                        ss=_integer(number("ss") or 0, "ss"),
                        lag_h=number("lag_h") or 0.0,
                        f=_effective(number("f"), 1.0),
                        **amount_kw,
                    )
                )
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
        table = _read_csv(path, "regimen file")
        return cls.from_frame(table, particles_per_ug=particles_per_ug, where=str(path))

    @classmethod
    def from_events(
        cls, table, *, particles_per_ug: float | None = None, subject=None, where: str = "event table"
    ) -> Regimen:
        """The regimen of one subject of a NONMEM-style event table (see :func:`read_event_table`).

        Parameters
        ----------
        table : pandas.DataFrame
            Columns ``ID, TIME, AMT, CMT, EVID, RATE, II, ADDL, SS`` and optional ``DUR, LAG,
            F, WT, AMT_UNIT`` (case-insensitive).
        subject : optional
            The ``ID`` to take; needed when the table has several subjects.
        """
        subjects = read_event_table(table, particles_per_ug=particles_per_ug, where=where)
        if subject is None:
            if len(subjects) != 1:
                ids = ", ".join(str(s.id) for s in subjects[:5])
                raise DosingError(
                    f"{where} has {len(subjects)} subjects (ID {ids}...): pass `subject=` or simulate them all "
                    "with exopk.analysis.simulate_subjects."
                )
            chosen = subjects[0]
        else:
            matches = [s for s in subjects if s.id == subject]
            if not matches:
                raise DosingError(f"{where}: no subject with ID {subject!r}.")
            chosen = matches[0]
        if chosen.regimen is None:
            raise DosingError(f"{where}: subject {chosen.id!r} has no dose (EVID 1 or 4) rows.")
        return chosen.regimen


def _integer(value: float, name: str) -> int:
    if float(value) != int(value):
        raise DosingError(f"`{name}` must be a whole number; got {value!r}.")
    return int(value)


def _number_cell(cell):
    def number(name):
        value = cell(name)
        return None if value is None else _cell_number(value, name)

    return number


def _read_csv(path: str | Path, what: str):
    from exopk.model.files import read_csv

    return read_csv(path, what, error=DosingError)


def dose_for_route(
    route: str,
    *,
    t_h: float = 0.0,
    duration_h: float | None = None,
    rate_particles_per_h: float | None = None,
    site: str | None = None,
    lower_airway_fraction: float | None = None,
    **common,
) -> Dose:
    """One dose by route name, as tables and the command line give it.

    A ``duration_h`` or ``rate_particles_per_h`` makes it an infusion: into venous blood for
    ``iv_infusion``, into the depot of a depot route, into ``site`` for ``local``. ``common``
    holds the amount (``dose_particles`` or ``dose_particles_per_kg``) and ``ii_h``, ``addl``,
    ``ss``, ``lag_h``, ``f``.
    """
    if route not in ROUTES:
        raise DosingError(f"unknown route {route!r}; expected one of: {', '.join(ROUTES)}.")
    infused = duration_h is not None or rate_particles_per_h is not None
    if route == "iv_bolus" and infused:
        given = (
            f"`duration_h` {duration_h!r}"
            if duration_h is not None
            else f"`rate_particles_per_h` {rate_particles_per_h!r}"
        )
        raise DosingError(
            f"an iv_bolus dose has no duration or rate (0 or empty); got {given}. An IV infusion is route iv_infusion."
        )
    if route == "iv_infusion" and not infused:
        raise DosingError("an iv_infusion needs `duration_h` (h) or `rate_particles_per_h`.")
    if route != "local" and site is not None:
        raise DosingError(f"`site` applies to route local only; got {site!r} for {route}.")
    if lower_airway_fraction is not None and (route != "intranasal" or infused):
        raise DosingError(f"`lower_airway_fraction` applies to route intranasal only (a bolus); got {route}.")
    if route == "local":
        organ, _, space = (site or "").rpartition("_")
        if not organ:
            raise DosingError(
                f"a local dose needs `site` = <organ>_<vascular|tissue> (e.g. kidney_vascular); got {site!r}."
            )
    if infused:
        into = "iv" if route == "iv_infusion" else ((site or "") if route == "local" else route)
        return (IVInfusion if into == "iv" else Infusion)(
            t_h=t_h, duration_h=duration_h, rate_particles_per_h=rate_particles_per_h, into=into, **common
        )
    if route == "local":
        return LocalInjection(organ=organ, space=space, t_h=t_h, **common)
    if route == "intranasal":
        return Intranasal(t_h=t_h, lower_airway_fraction=lower_airway_fraction or 0.0, **common)
    return _INSTANT_BY_ROUTE[route](t_h=t_h, **common)


# ---------------------------------------------------------------------------------------
# NONMEM-style event tables
# ---------------------------------------------------------------------------------------

EVENT_COLUMNS: tuple[str, ...] = (
    "ID",
    "TIME",
    "AMT",
    "CMT",
    "EVID",
    "RATE",
    "II",
    "ADDL",
    "SS",
    "DUR",
    "LAG",
    "F",
    "WT",
    "AMT_UNIT",
)
"""Columns of an event table (case-insensitive); ``DV`` and ``MDV`` are accepted and ignored."""

AMT_UNITS: tuple[str, ...] = ("particles", "ug", "particles/kg", "ug/kg")


@dataclass(frozen=True, slots=True)
class Subject:
    """One ``ID`` of an event table.

    Attributes
    ----------
    id : object
        The ``ID`` value as in the table.
    regimen : Regimen or None
        Its doses (``None`` if it has none); per-kg doses are left per kg.
    observation_t_h : ndarray, shape (n_obs,)
        Its ``EVID 0`` times (h), sorted, unique.
    body_weight_kg : float or None
        Its ``WT`` (kg), if given.
    """

    id: object
    regimen: Regimen | None
    observation_t_h: np.ndarray
    body_weight_kg: float | None


def read_event_table(
    table, *, particles_per_ug: float | None = None, where: str = "event table"
) -> tuple[Subject, ...]:
    """Read a NONMEM-style event table into one :class:`Subject` per ``ID``.

    Column names are case-insensitive. ``TIME`` in h, ``AMT`` in ``AMT_UNIT`` (``particles``
    by default, ``ug`` with ``particles_per_ug``, ``particles/kg``, ``ug/kg``), ``RATE`` in
    ``AMT_UNIT`` per h, ``II``, ``DUR``, ``LAG`` in h, ``WT`` in kg. ``CMT`` is a route name
    (``iv_bolus``, ``iv_infusion``, ``intranasal``, ``intraperitoneal``, ``subcutaneous``,
    ``intratracheal``) or ``local:<organ>_<space>``. ``EVID`` 0 observation, 1 dose, 3 reset,
    4 reset and dose. Not supported, and refused with the row and column: ``EVID 2``, ``SS 2``,
    ``RATE`` -1/-2 (modelled rate or duration), time-varying ``WT``, decreasing ``TIME`` within
    an ``ID``. See docs/dosing.md for each field against NONMEM and mrgsolve.

    Returns
    -------
    tuple of Subject
        In order of first appearance.
    """
    import pandas as pd

    if not isinstance(table, pd.DataFrame):
        raise DosingError(f"{where} must be a pandas DataFrame; got {type(table).__name__}.")
    by_upper: dict[str, str] = {}
    for column in table.columns:
        key = str(column).strip().upper()
        if key in by_upper:
            raise DosingError(
                f"{where}: columns {by_upper[key]!r} and {column!r} are the same (names are case-insensitive)."
            )
        by_upper[key] = column
    unknown = sorted(set(by_upper) - set(EVENT_COLUMNS) - {"DV", "MDV"})
    if unknown:
        raise DosingError(f"{where}: unknown column(s) {unknown}; expected {', '.join(EVENT_COLUMNS)} (and DV, MDV).")
    for required in ("TIME",):
        if required not in by_upper:
            raise DosingError(f"{where}: missing column `{required}`; expected {', '.join(EVENT_COLUMNS)}.")
    if len(table) == 0:
        raise DosingError(f"{where}: the table has no rows.")

    records = table.rename(columns={v: k for k, v in by_upper.items()}).to_dict("records")
    per_id: dict[object, dict] = {}
    for n, row in enumerate(records, start=1):
        here = f"{where}, row {n} (line {n + 1})"

        def cell(name, _row=row):
            value = _row.get(name)
            if value is None or (isinstance(value, float) and math.isnan(value)):
                return None
            if isinstance(value, str) and not value.strip():
                return None
            return value

        def number(name, default=None, _here=here, _cell=cell):
            value = _cell(name)
            if value is None:
                return default
            try:
                out = float(value)
            except (TypeError, ValueError):
                raise DosingError(f"{_here}, column {name}: expected a number; got {value!r}.") from None
            if not math.isfinite(out):
                raise DosingError(f"{_here}, column {name}: must be finite; got {value!r}.")
            return out

        subject_id = cell("ID") if "ID" in by_upper else 1
        if subject_id is None:
            raise DosingError(f"{here}, column ID: empty; every row needs a subject ID.")
        if isinstance(subject_id, float) and subject_id.is_integer():
            subject_id = int(subject_id)
        here = f"{here}, ID {subject_id}"
        state = per_id.setdefault(subject_id, {"doses": [], "obs": [], "resets": [], "wt": None, "last_t": -np.inf})
        t = number("TIME", _here=here)
        if t is None or t < 0:
            raise DosingError(f"{here}, column TIME: must be a non-negative number of hours; got {cell('TIME')!r}.")
        if t < state["last_t"]:
            raise DosingError(
                f"{here}, column TIME: {t:g} h is before the previous row's {state['last_t']:g} h; "
                "sort each ID by TIME (as NONMEM requires)."
            )
        state["last_t"] = t
        evid = number("EVID", 1.0 if number("AMT", 0.0, _here=here) else 0.0, _here=here)
        if evid not in (0, 1, 3, 4):
            extra = " (other-type events) is not supported" if evid == 2 else " is not a known event type"
            raise DosingError(
                f"{here}, column EVID: EVID {evid:g}{extra}; use 0 (observation), 1 (dose), 3 or 4 (reset)."
            )
        wt = number("WT", _here=here)
        if wt is not None:
            if wt <= 0:
                raise DosingError(f"{here}, column WT: body weight must be positive (kg); got {wt:g}.")
            if state["wt"] is not None and wt != state["wt"]:
                raise DosingError(
                    f"{here}, column WT: {wt:g} kg differs from {state['wt']:g} kg earlier in this ID; "
                    "time-varying body weight is not supported."
                )
            state["wt"] = wt
        if evid == 0:
            if number("AMT", 0.0, _here=here) != 0:
                raise DosingError(
                    f"{here}, column AMT: an observation row (EVID 0) has no amount; got {cell('AMT')!r}."
                )
            state["obs"].append(t)
            continue
        if evid in (3, 4):
            state["resets"].append(t)
            if evid == 3:
                continue
        amt = number("AMT", _here=here)
        if amt is None or amt < 0:
            raise DosingError(f"{here}, column AMT: a dose needs a non-negative amount; got {cell('AMT')!r}.")
        unit = str(cell("AMT_UNIT") or "particles").strip().lower()
        if unit not in AMT_UNITS:
            raise DosingError(
                f"{here}, column AMT_UNIT: unknown unit {unit!r}; expected one of {', '.join(AMT_UNITS)}."
            )
        factor = 1.0
        if unit.startswith("ug"):
            if particles_per_ug is None:
                raise DosingError(
                    f"{here}, column AMT_UNIT: doses in {unit} need an explicit `particles_per_ug` factor "
                    "(no default is assumed)."
                )
            factor = particles_from_protein(1.0, particles_per_ug)
        amount_kw = {"dose_particles_per_kg" if unit.endswith("/kg") else "dose_particles": amt * factor}
        cmt = cell("CMT")
        if cmt is None:
            raise DosingError(f"{here}, column CMT: a dose needs a route (e.g. iv_bolus) or local:<organ>_<space>.")
        cmt = str(cmt).strip()
        route, site = ("local", cmt.split(":", 1)[1]) if cmt.lower().startswith("local:") else (cmt.lower(), None)
        if route not in ROUTES or route == "local" and site is None:
            raise DosingError(
                f"{here}, column CMT: unknown compartment {cmt!r}; expected a route "
                f"({', '.join(r for r in ROUTES if r != 'local')}) or local:<organ>_<vascular|tissue>."
            )
        rate = number("RATE", 0.0, _here=here)
        if rate in (-1.0, -2.0):
            raise DosingError(
                f"{here}, column RATE: RATE {rate:g} (rate or duration estimated in the model) is not supported; "
                "give RATE > 0 or DUR."
            )
        if rate < 0:
            raise DosingError(f"{here}, column RATE: must be 0 (bolus) or positive; got {rate:g}.")
        dur = number("DUR", 0.0, _here=here)
        if dur < 0:
            raise DosingError(f"{here}, column DUR: must be 0 (bolus) or positive (h); got {dur:g}.")
        if rate > 0 and dur > 0:
            raise DosingError(f"{here}, columns RATE and DUR: give one of them for an infusion, not both.")
        ss = number("SS", 0.0, _here=here)
        if ss not in (0.0, 1.0):
            raise DosingError(
                f"{here}, column SS: SS {ss:g} is not supported; use 0 or 1 (steady state before this dose)."
            )
        try:
            dose = dose_for_route(
                route,
                t_h=t,
                duration_h=dur if dur > 0 else None,
                rate_particles_per_h=rate * factor if rate > 0 else None,
                site=site,
                ii_h=number("II", 0.0, _here=here),
                addl=_integer(number("ADDL", 0.0, _here=here), "ADDL"),
                ss=int(ss),
                lag_h=number("LAG", 0.0, _here=here),
                f=number("F", 1.0, _here=here),
                **amount_kw,
            )
        except DosingError as err:
            raise DosingError(f"{here}: {err}") from None
        state["doses"].append(dose)

    subjects = []
    for subject_id, state in per_id.items():
        regimen = Regimen(state["doses"], resets_h=state["resets"]) if state["doses"] else None
        subjects.append(Subject(subject_id, regimen, np.unique(np.array(state["obs"], dtype=float)), state["wt"]))
    return tuple(subjects)


def read_event_csv(path: str | Path, *, particles_per_ug: float | None = None) -> tuple[Subject, ...]:
    """Read an event-table CSV file (see :func:`read_event_table`)."""
    return read_event_table(_read_csv(path, "event table"), particles_per_ug=particles_per_ug, where=str(path))


def _cell_number(value: object, column: str) -> float:
    """One cell of a regimen table as a float; DosingError naming the column for text or true/false."""
    if isinstance(value, (bool, np.bool_)):
        raise DosingError(f"`{column}` must be a number; got {value!r}.")
    try:
        return float(value)  # type: ignore[arg-type]  # anything else raises, and is answered below
    except (TypeError, ValueError):
        raise DosingError(f"`{column}` must be a number; got {value!r}.") from None


def as_regimen(regimen: Regimen | Dose | Sequence[Dose]) -> Regimen:
    """Accept a single dose, a list of doses or a :class:`Regimen`."""
    if isinstance(regimen, Regimen):
        out = regimen
    elif isinstance(regimen, (_Instant, Infusion)):
        out = Regimen([regimen])
    elif isinstance(regimen, (list, tuple)):
        out = Regimen(regimen)
    else:
        raise DosingError(f"`regimen` must be a dose, a list of doses or a Regimen; got {type(regimen).__name__}.")
    if not out.doses:
        raise DosingError("`regimen` has no doses.")
    return out
