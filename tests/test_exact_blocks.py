"""The block-wise exact solution (issue 15): blocks, real basis, stretches, chunked products.

``exact_single`` decomposes each diagonal block of the rate matrix on its own (one per
subpopulation of a mixture), in LAPACK's real basis (a complex pair evaluated once), and
evaluates a bolus only over the modes still alive. These tests hold it to the matrix
exponential (``expm_single``, no eigenvectors) and to itself solved block by block.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import exopk
from exopk.dosing import Events
from exopk.simulation import regimen_events
from exopk.solve.driver import model_system
from exopk.solve.linear import (
    _ONE_THREAD_MNK,
    _product,
    diagonal_blocks,
    eigen_modes,
    exact_single,
    expm_single,
    restrict_to_reached,
)

DOSE = 1e10


def stacked(params, regimen, t_h):
    events, _ = regimen_events(exopk.dosing.as_regimen(regimen), t_h)
    K, E, ev, _, _ = model_system(params, events)
    return restrict_to_reached(K, E, ev)


@given(
    m=st.integers(1, 30),
    k=st.integers(0, 30),
    n=st.integers(1, 5000),
    seed=st.integers(0, 2**32 - 1),
)
@settings(max_examples=40, deadline=None)
def test_chunked_product_equals_the_product(m, k, n, seed):
    rng = np.random.default_rng(seed)
    a, b = rng.standard_normal((m, k)), rng.standard_normal((k, n))
    np.testing.assert_allclose(_product(a, b), a @ b, rtol=1e-13, atol=1e-12)


def test_chunks_stay_below_the_one_thread_size():
    a, b = np.ones((20, 20)), np.ones((20, 2881))
    assert 20 * 20 * 2881 > _ONE_THREAD_MNK  # this model's size would be threaded whole
    np.testing.assert_array_equal(_product(a, b), np.full((20, 2881), 20.0))


def test_a_mixture_has_one_block_per_subpopulation():
    params = exopk.load_parameters()
    t_h = np.linspace(0.0, 48.0, 49)
    keep, K, E, ev = stacked(params, exopk.IVBolus(dose_particles=DOSE), t_h)
    blocks = diagonal_blocks(K)
    assert len(blocks) == len(params.subpopulations) == 2
    assert sorted(np.concatenate(blocks).tolist()) == list(range(K.shape[0]))
    for block in blocks:  # nothing couples two blocks
        outside = np.setdiff1d(np.arange(K.shape[0]), block)
        assert not K[np.ix_(block, outside)].any() and not K[np.ix_(outside, block)].any()


def test_blocks_solved_together_equal_blocks_solved_alone():
    params = exopk.load_parameters()
    t_h = np.linspace(0.0, 48.0, 577)
    keep, K, E, ev = stacked(params, exopk.IVBolus(dose_particles=DOSE), t_h)
    together, _ = exact_single(K, E, ev, t_h)
    assert together is not None
    n_live = K.shape[0]
    for block in diagonal_blocks(K):
        sinks = np.flatnonzero((E[:, block] != 0).any(axis=1))
        alone, _ = exact_single(K[np.ix_(block, block)], E[np.ix_(sinks, block)], ev.restricted(block), t_h)
        assert alone is not None
        np.testing.assert_allclose(together[:, block], alone[:, : block.size], rtol=0, atol=1e-15 * DOSE)
        np.testing.assert_allclose(together[:, n_live + sinks], alone[:, block.size :], rtol=0, atol=1e-15 * DOSE)


def test_exact_equals_expm_on_short_and_long_grids_and_several_doses():
    """Short grids take one product, long grids the stretches.

    The reference, scipy's ``expm`` stepping, is itself off by up to 3.8e-12 of the dose here
    (measured: the block-wise answer and the former whole-matrix one differ by 8e-16, and each
    is 3.8e-12 from expm): the bound is 1e-11 of what was given, and the mass balance 1e-12.
    """
    params = exopk.load_parameters()
    regimen = [
        exopk.IVBolus(dose_particles=DOSE),
        exopk.IVBolus(dose_particles=DOSE / 2, t_h=6.0),
        exopk.IVInfusion(dose_particles=DOSE, t_h=12.0, duration_h=2.0),
    ]
    for n_t in (49, 2881):
        t_h = np.linspace(0.0, 48.0, n_t)
        keep, K, E, ev = stacked(params, regimen, t_h)
        exact, cond = exact_single(K, E, ev, t_h)
        assert exact is not None and cond < 1e4
        reference = expm_single(K, E, ev, t_h)
        assert np.abs(exact - reference).max() < 1e-11 * 2.5 * DOSE
        given = ev.administered(t_h)
        assert np.abs(exact.sum(axis=1) - given).max() < 1e-12 * 2.5 * DOSE


def test_a_complex_pair_is_evaluated_once_and_right():
    """A cycle of three states has a complex pair: its real basis gives the matrix exponential's answer."""
    K = np.array([[-5.0, 0.0, 4.0], [5.0, -4.0, 0.0], [0.0, 4.0, -4.5]])
    E = np.array([[0.0, 0.0, 0.5]])
    modes = eigen_modes(K, E)
    (block,) = modes.blocks
    assert block.lam_pair.size == 1 and block.lam_pair[0].imag > 0  # one of the conjugates only
    ev = Events(np.array([0.0]), np.array([[DOSE, 0.0, 0.0]]), np.zeros(0), np.zeros(0), np.zeros((0, 3)))
    for t_h in (np.linspace(0.0, 30.0, 61), np.linspace(0.0, 30.0, 3001)):
        exact, _ = exact_single(K, E, ev, t_h, modes)
        assert exact is not None
        assert np.abs(exact - expm_single(K, E, ev, t_h)).max() < 1e-12 * DOSE
        np.testing.assert_allclose(exact.sum(axis=1), DOSE, rtol=1e-12)


def test_simulate_keeps_the_decomposition_on_the_parameter_set():
    params = exopk.load_parameters()
    dose = exopk.IVBolus(dose_particles=DOSE)
    first = exopk.simulate(params, dose, np.linspace(0.0, 48.0, 49))
    kept = [key for key in (params._cache or {}) if key.startswith("modes:")]
    assert len(kept) == 1
    again = exopk.simulate(params, dose, np.linspace(0.0, 48.0, 97))  # other times: the same modes
    assert [key for key in params._cache if key.startswith("modes:")] == kept
    np.testing.assert_array_equal(again.amounts_particles[::2], first.amounts_particles)
    changed = params.replace(liver_degradation_per_h=2 * params["liver_degradation_per_h"])
    assert not [key for key in (changed._cache or {}) if key.startswith("modes:")]  # a variant starts afresh


def test_a_simulation_leaves_no_reference_cycle():
    """Reference cycles would keep the solution arrays alive until the garbage collector ran
    (measured: a cycle between a mixture's result and its parts made simulate() ~1.6x slower)."""
    import gc

    params = exopk.load_parameters()
    dose = exopk.IVBolus(dose_particles=DOSE)
    t_h = np.linspace(0.0, 48.0, 97)
    exopk.simulate(params, dose, t_h)  # fills the caches
    gc.collect()
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        result = exopk.simulate(params, dose, t_h)
        assert len(result.parts) == 2 and result.parts["ps_exposing"].amounts_particles.shape[0] == t_h.size
        del result
        assert gc.collect() == 0
    finally:
        if was_enabled:
            gc.enable()


def test_all_blocks_at_once_equal_block_by_block_on_short_grids():
    """On a short grid every mode of every block is evaluated at once (``Modes.combined``)."""
    import dataclasses

    params = exopk.load_parameters()
    regimen = [exopk.IVBolus(dose_particles=DOSE), exopk.IVBolus(dose_particles=DOSE / 3, t_h=2.5)]
    t_h = np.concatenate([[0.0], np.geomspace(0.01, 48.0, 60)])
    keep, K, E, ev = stacked(params, regimen, t_h)
    modes = eigen_modes(K, E)
    assert len(modes.blocks) == 2 and modes.combined() is not None
    together, _ = exact_single(K, E, ev, t_h, modes)
    apart, _ = exact_single(K, E, ev, t_h, dataclasses.replace(modes, blocks=modes.blocks[:1]))
    apart_2, _ = exact_single(K, E, ev, t_h, dataclasses.replace(modes, blocks=modes.blocks[1:]))
    assert together is not None and apart is not None and apart_2 is not None
    # each block alone (a single block takes the block-by-block path); at t = 0 (the dose time)
    # each answer holds the whole bolus, so that row is compared on its own
    np.testing.assert_allclose(together[1:], (apart + apart_2)[1:], rtol=0, atol=1e-15 * DOSE)
    np.testing.assert_array_equal(together[0], apart[0])
