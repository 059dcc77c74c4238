"""The compiled rate matrices reproduce the transfer list, and what they build is kept per parameter set."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import default_parameters, model_parameters

import exopk
from exopk.model.graph import (
    N_LIVE,
    N_SINK,
    STATES,
    linear_system,
    mixture_system,
    parameter_mixture,
    parameter_volumes,
    rate_matrices,
    reachable_live_states,
    reached_along,
    state_index,
    transfers,
    volumes,
)
from exopk.model.parameters import ORGANS, derived_values


def matrices_from_transfers(values) -> tuple[np.ndarray, np.ndarray]:
    """K and E added up from :func:`transfers`, one transfer at a time (the reference)."""
    moves = transfers(values)
    n_sets = moves[0].rate_per_h.shape[0]
    K = np.zeros((n_sets, N_LIVE, N_LIVE))
    E = np.zeros((n_sets, N_SINK, N_LIVE))
    for t in moves:
        src, dst = state_index(t.source), state_index(t.target)
        K[:, src, src] -= t.rate_per_h
        if dst < N_LIVE:
            K[:, dst, src] += t.rate_per_h
        else:
            E[:, dst - N_LIVE, src] += t.rate_per_h
    return K, E


def assert_same_matrices(values) -> None:
    K, E = rate_matrices(values)
    K_ref, E_ref = matrices_from_transfers(values)
    np.testing.assert_allclose(K, K_ref, rtol=1e-15, atol=0.0)
    np.testing.assert_allclose(E, E_ref, rtol=1e-15, atol=0.0)


def test_default_parameters_match_transfers():
    params = default_parameters()
    assert_same_matrices(params.values)
    for _, _, part in params.parts():
        assert_same_matrices(part.values)


@settings(max_examples=25, deadline=None)
@given(params=model_parameters())
def test_random_parameters_match_transfers(params):
    assert_same_matrices(params.values)


@settings(max_examples=10, deadline=None)
@given(sets=st.lists(model_parameters(), min_size=2, max_size=4))
def test_batches_match_transfers(sets):
    values = {name: np.array([p.values[name] for p in sets]) for name in sets[0].values}
    assert_same_matrices(values)
    K, E = rate_matrices(values)
    for k, p in enumerate(sets):  # each set of a batch as on its own
        K_one, E_one = rate_matrices(p.values)
        np.testing.assert_array_equal(K[k], K_one[0])
        np.testing.assert_array_equal(E[k], E_one[0])


def test_batch_with_shared_scalars_broadcasts():
    params = default_parameters()
    values = dict(params.values)
    values["liver_macrophage_uptake_per_h"] = np.array([1.0, 10.0, 100.0])
    assert_same_matrices(values)
    assert rate_matrices(values)[0].shape == (3, N_LIVE, N_LIVE)


def test_species_without_route_parameters():
    """Route rates a species has no parameters for are 0, as in the transfer list."""
    params = default_parameters()
    values = {name: v for name, v in params.values.items() if not name.startswith("intranasal_")}
    assert_same_matrices(values)
    nasal = state_index("nasal_cavity")
    assert rate_matrices(values)[0][0, nasal, nasal] == 0.0


@settings(max_examples=10, deadline=None)
@given(params=model_parameters())
def test_mixture_blocks_match_transfers(params):
    parts = [p for _, _, p in params.parts()]
    mixture = mixture_system(parts, [w for _, w, _ in params.parts()])
    for k, part in enumerate(parts):
        K_ref, E_ref = matrices_from_transfers(part.values)
        live, sink = slice(k * N_LIVE, (k + 1) * N_LIVE), slice(k * N_SINK, (k + 1) * N_SINK)
        np.testing.assert_allclose(mixture.K[live, live], K_ref[0], rtol=1e-15, atol=0.0)
        np.testing.assert_allclose(mixture.E[sink, live], E_ref[0], rtol=1e-15, atol=0.0)
    off_block = mixture.K.copy()
    for k in range(len(parts)):
        off_block[k * N_LIVE : (k + 1) * N_LIVE, k * N_LIVE : (k + 1) * N_LIVE] = 0.0
    assert not off_block.any()


def test_reachable_states_follow_the_transfers():
    params = default_parameters()
    linked = np.zeros((N_LIVE, N_LIVE), dtype=bool)
    for t in transfers(params.values):
        if state_index(t.target) < N_LIVE and np.any(t.rate_per_h != 0.0):
            linked[state_index(t.target), state_index(t.source)] = True
    for entered_state in ("blood_venous", "nasal_cavity", "subcutaneous_site", "lung_airspace"):
        entered = np.zeros(N_LIVE, dtype=bool)
        entered[state_index(entered_state)] = True
        expected = np.flatnonzero(reached_along(linked, entered))
        np.testing.assert_array_equal(reachable_live_states(params.values, entered), expected)


def test_volumes_by_their_definition():
    params = default_parameters()
    values = dict(params.values)
    values["liver_volume_ml"] = np.array([1.0, 1.5])
    vol = volumes(values)
    assert vol.state_ml.shape == (2, N_LIVE) and vol.organ_ml.shape == (2, 1 + len(ORGANS))
    derived = derived_values(values)
    blood = derived["circulating_blood_volume_ml"]
    f_art = values["arterial_blood_fraction"]
    np.testing.assert_array_equal(vol.state_ml[:, state_index("blood_arterial")], blood * f_art)
    np.testing.assert_array_equal(vol.state_ml[:, state_index("blood_venous")], blood * (1.0 - f_art))
    for organ in ORGANS:
        organ_ml = derived["rest_volume_ml"] if organ == "rest" else values[f"{organ}_volume_ml"]
        f_vas = values[f"{organ}_vascular_fraction"]
        np.testing.assert_array_equal(vol.state_ml[:, state_index(f"{organ}_vascular")], organ_ml * f_vas)
        for pool in ("tissue", "cells"):
            np.testing.assert_array_equal(vol.state_ml[:, state_index(f"{organ}_{pool}")], organ_ml * (1.0 - f_vas))
        np.testing.assert_array_equal(vol.organ_ml[:, 1 + ORGANS.index(organ)], organ_ml)
    assert not vol.state_ml[:, STATES.index("lung_airspace") :].any()  # depots hold no volume
    one = volumes(params.values)
    assert one.state_ml.shape == (N_LIVE,) and one.organ_ml.shape == (1 + len(ORGANS),)


def test_matrices_and_volumes_are_built_once_per_parameter_set():
    params = default_parameters()
    single = params.single()
    K, E = linear_system(single)
    assert linear_system(single)[0] is K
    np.testing.assert_array_equal(K, rate_matrices(single.values)[0][0])
    with pytest.raises(ValueError):
        K[0, 0] = 1.0  # read-only: a caller cannot corrupt the kept matrices
    assert parameter_volumes(single) is parameter_volumes(single)
    assert parameter_mixture(params) is parameter_mixture(params)
    changed = single.replace(liver_macrophage_uptake_per_h=single["liver_macrophage_uptake_per_h"] * 2)
    assert not np.array_equal(linear_system(changed)[0], K)  # a variant starts with no cache
    for _, _, part in params.parts():  # the parts do not share their parent's cache
        np.testing.assert_array_equal(linear_system(part)[0], rate_matrices(part.values)[0][0])


def test_repeated_simulations_agree():
    params = exopk.load_parameters("mouse", "msc")  # a fresh set: its cache starts empty
    t_h = np.linspace(0.0, 48.0, 49)
    dose = exopk.IVBolus(dose_particles=1e10)
    first = exopk.simulate(params, dose, t_h)
    again = exopk.simulate(params, dose, t_h)
    np.testing.assert_array_equal(first.amounts_particles, again.amounts_particles)
    for name in first.parts:
        np.testing.assert_array_equal(first.parts[name].amounts_particles, again.parts[name].amounts_particles)
    fresh = exopk.simulate(exopk.load_parameters("mouse", "msc"), dose, t_h)
    np.testing.assert_array_equal(first.amounts_particles, fresh.amounts_particles)
