"""Many subjects from one NONMEM-style event table, each with its own body weight and doses."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike

from exopk.analysis.population import allometric_exponent
from exopk.dosing import Events, Subject, read_event_csv, read_event_table
from exopk.errors import DosingError, InputError
from exopk.model.graph import REPORTED_ORGANS
from exopk.model.parameters import ModelParameters, parameter_names
from exopk.results import UNITS
from exopk.simulation import check_times, regimen_events, simulate, simulate_batch
from exopk.solve.events import STEPPING_MIN_EVENTS


@dataclass(frozen=True)
class SubjectsResult:
    """Simulations of the subjects of an event table.

    Attributes
    ----------
    ids : tuple
        Subject IDs, in table order.
    t_h : dict
        ID -> output times (h), shape (n_times,): the subject's ``EVID 0`` times.
    amounts_particles : dict
        ID -> amounts per reported organ (``REPORTED_ORGANS`` order, ``eliminated`` last),
        shape (n_times, n_organs).
    dose_particles : dict
        ID -> the %ID reference of the subject (its doses up to its last output time).
    body_weight_kg : dict
        ID -> body weight used (kg): ``WT``, or the species' reference weight.
    metadata : dict
        ``n_batches`` (batches of subjects sharing a dosing structure) and ``n_single``
        (subjects simulated on their own).
    """

    ids: tuple
    t_h: dict
    amounts_particles: dict
    dose_particles: dict
    body_weight_kg: dict
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def organs(self) -> tuple[str, ...]:
        """Reported organs, the last axis of the amounts."""
        return REPORTED_ORGANS

    def percent_id(self, subject, organ: str) -> np.ndarray:
        """%ID of ``organ`` over the subject's times."""
        k = REPORTED_ORGANS.index(organ)
        return 100.0 * self.amounts_particles[subject][:, k] / self.dose_particles[subject]

    def to_frame(self):
        """One tidy table: ``id, body_weight_kg, time_h, organ, quantity, value, unit``.

        Quantities ``amount_particles`` and ``percent_id`` per reported organ.
        """
        import pandas as pd

        blocks = []
        for sid in self.ids:
            t = self.t_h[sid]
            amounts = self.amounts_particles[sid]
            for k, organ in enumerate(REPORTED_ORGANS):
                for quantity, values in (
                    ("amount_particles", amounts[:, k]),
                    ("percent_id", 100.0 * amounts[:, k] / self.dose_particles[sid]),
                ):
                    blocks.append(
                        pd.DataFrame(
                            {
                                "id": sid,
                                "body_weight_kg": self.body_weight_kg[sid],
                                "time_h": t,
                                "organ": organ,
                                "quantity": quantity,
                                "value": values,
                                "unit": UNITS[quantity],
                            }
                        )
                    )
        return pd.concat(blocks, ignore_index=True)


def allometric_values(params: ModelParameters, body_weight_kg: float) -> dict[str, float]:
    """Parameter values of a subject of ``body_weight_kg``, scaled as populations scale them.

    Flows and clearances (mL/h) scale with (BW/BW_ref)^0.75, volumes (mL) with (BW/BW_ref)^1
    (:func:`exopk.analysis.population.allometric_exponent`); nothing else changes.
    """
    ratio = body_weight_kg * 1000.0 / params.values["body_weight_g"]
    out = {}
    for name in parameter_names():
        b = allometric_exponent(name)
        if b is not None and params.values[name] != 0:
            out[name] = float(params.values[name] * ratio**b)
    return out


def _structure(events: Events, reference: float) -> tuple:
    return (
        events.bolus_t_h,
        events.bolus_amounts / reference,
        events.infusion_start_h,
        events.infusion_end_h,
        events.infusion_rates / reference,
    )


def _same(a: tuple, b: tuple) -> bool:
    return all(x.shape == y.shape and np.allclose(x, y, rtol=1e-12, atol=0.0) for x, y in zip(a, b, strict=True))


def simulate_subjects(
    params: ModelParameters,
    table,
    *,
    particles_per_ug: float | None = None,
    t_h: ArrayLike | None = None,
    doses_after_end: Literal["error", "drop"] = "error",
) -> SubjectsResult:
    """Simulate every subject (``ID``) of a NONMEM-style event table.

    Each subject gets its own physiology from its body weight ``WT`` (kg; the species'
    reference weight when absent), scaled allometrically as :func:`exopk.analysis.sample_population`
    scales body weights, and its own doses (per-kg doses scaled by its weight). Subjects
    whose regimens share a structure (the same times, routes and relative amounts) are solved
    in one batch (:func:`exopk.simulate_batch`), the others one by one (:func:`exopk.simulate`;
    also when the model is capacity-limited, or a regimen has more than
    :data:`exopk.solve.events.STEPPING_MIN_EVENTS` administrations, a reset or a steady state).

    Parameters
    ----------
    params : ModelParameters
        The reference subject.
    table : pandas.DataFrame, path, or sequence of Subject
        The event table (see :func:`exopk.dosing.read_event_table`) or its CSV file.
    particles_per_ug : float, optional
        For ``AMT_UNIT`` ``ug`` or ``ug/kg``.
    t_h : array_like, optional
        Output times (h) for subjects without ``EVID 0`` rows.
    doses_after_end : {"error", "drop"}, default "error"
        For doses after a subject's last output time, as in :func:`exopk.simulate`.

    Returns
    -------
    SubjectsResult

    Raises
    ------
    DosingError
        Invalid table, a subject without doses or without output times.
    """
    if not isinstance(params, ModelParameters):
        raise InputError(f"`params` must be ModelParameters; got {type(params).__name__}.")
    if isinstance(table, (str, Path)):
        subjects = read_event_csv(table, particles_per_ug=particles_per_ug)
    elif isinstance(table, Sequence) and all(isinstance(s, Subject) for s in table):
        subjects = tuple(table)
    else:
        subjects = read_event_table(table, particles_per_ug=particles_per_ug)
    default_t = None if t_h is None else check_times(t_h)
    reference_kg = params.values["body_weight_g"] / 1000.0

    prepared = []
    for s in subjects:
        if s.regimen is None:
            raise DosingError(f"subject {s.id!r} has no dose (EVID 1 or 4) rows.")
        times = s.observation_t_h if s.observation_t_h.size else default_t
        if times is None:
            raise DosingError(f"subject {s.id!r} has no observation (EVID 0) rows; add them or pass `t_h`.")
        times = check_times(times, name=f"observation times of subject {s.id!r}")
        weight = reference_kg if s.body_weight_kg is None else float(s.body_weight_kg)
        regimen = s.regimen.for_body_weight(weight)
        kept, _ = regimen_events(regimen, times, doses_after_end)  # the subject's own rule and reference
        reference = kept.reference_particles()
        if reference <= 0:
            raise DosingError(f"subject {s.id!r}: the total dose is 0 particles; %ID is undefined.")
        full = regimen.events()
        full_reference = full.reference_particles()
        batchable = params.is_linear and not full.has_boundaries and full.n_events <= STEPPING_MIN_EVENTS
        prepared.append((s, times, weight, regimen, reference, full, batchable, full_reference))

    # Groups of subjects with the same dosing structure (relative to their own reference).
    groups: list[list[int]] = []
    keys: list[tuple] = []
    for i, (_, _, _, _, _, full, batchable, full_reference) in enumerate(prepared):
        key = _structure(full, full_reference)
        for g, other in zip(groups, keys, strict=True):
            if batchable and prepared[g[0]][6] and _same(key, other):
                g.append(i)
                break
        else:
            groups.append([i])
            keys.append(key)

    ids, out_t, amounts, doses, weights = [], {}, {}, {}, {}
    n_batches = n_single = 0
    for g in groups:
        if len(g) == 1 or not prepared[g[0]][6]:
            for i in g:
                s, times, weight, regimen, _, _, _, _ = prepared[i]
                p = (
                    params
                    if weight == reference_kg
                    else params.replace(
                        source=f"allometric scaling to WT {weight:g} kg (event table)",
                        **allometric_values(params, weight),
                    )
                )
                result = simulate(p, regimen, times, doses_after_end=doses_after_end)
                amounts[s.id] = result.organ_amounts_particles()
                n_single += 1
            continue
        n_batches += 1
        union = np.unique(np.concatenate([prepared[i][1] for i in g]))
        first = prepared[g[0]]
        names = list(allometric_values(params, 1.0))
        variations = {
            name: np.array([allometric_values(params, prepared[i][2])[name] for i in g], dtype=float) for name in names
        }
        batch = simulate_batch(
            params, first[3], union, variations, keep_amounts=True, doses_after_end="drop", workers=1
        )
        for j, i in enumerate(g):
            s, times = prepared[i][0], prepared[i][1]
            rows = np.searchsorted(union, times)
            # linear model: the response scales with the dose (same structure, own total)
            amounts[s.id] = batch.amounts_particles[j, rows] * (prepared[i][7] / first[7])  # type: ignore[index]
    for s, times, weight, _, reference, _, _, _ in prepared:
        ids.append(s.id)
        out_t[s.id] = times
        doses[s.id] = reference
        weights[s.id] = weight
    return SubjectsResult(
        ids=tuple(ids),
        t_h=out_t,
        amounts_particles=amounts,
        dose_particles=doses,
        body_weight_kg=weights,
        metadata={"n_batches": n_batches, "n_single": n_single},
    )
