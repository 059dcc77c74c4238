"""A dask.distributed LocalCluster runs populations and Sobol runs with the same numbers as serial runs.

Needs the `distributed` extra (`pip install -e ".[test,distributed]"`, which `make test` does).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import exopk

distributed = pytest.importorskip("distributed")

DOSE = exopk.IVBolus(dose_particles=1e10)
T_H = np.linspace(0.0, 24.0, 25)


@pytest.fixture(scope="module")
def client():
    # Two worker processes: chunks are pickled and solved in other interpreters, as on a cluster.
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=40
    ) as cluster, distributed.Client(cluster) as client:  # fmt: skip
        yield client


@pytest.mark.slow
def test_population_on_dask_equals_serial(client):
    params = exopk.load_parameters()
    pop = exopk.analysis.sample_population(
        params, 400, {"liver_uptake_vascular_per_h": 0.3, "brain_uptake_tissue_per_h": 0.5}, body_weight_cv=0.1, seed=8
    )
    with ThreadPoolExecutor(1) as pool:  # chunks one after another, in this process
        serial = exopk.analysis.simulate_population(pop, DOSE, T_H, chunk_size=100, executor=pool, progress=False)
    on_dask = exopk.analysis.simulate_population(pop, DOSE, T_H, chunk_size=100, executor=client, progress=False)
    assert on_dask.metadata["executor"] == "Client" and on_dask.metadata["n_chunks"] == 4
    np.testing.assert_array_equal(on_dask.percent_id_percentiles, serial.percent_id_percentiles)
    np.testing.assert_array_equal(on_dask.auc_percent_id_h, serial.auc_percent_id_h)
    np.testing.assert_array_equal(on_dask.cmax_percent_id, serial.cmax_percent_id)
    np.testing.assert_array_equal(on_dask.nca["blood"].auc_0_inf, serial.nca["blood"].auc_0_inf)
    in_process = exopk.analysis.simulate_population(pop, DOSE, T_H, progress=False)  # no executor: round-off only
    np.testing.assert_allclose(
        on_dask.percent_id_percentiles, in_process.percent_id_percentiles, rtol=1e-12, atol=1e-14
    )


@pytest.mark.slow
def test_sobol_on_dask_equals_serial(client):
    params = exopk.load_parameters()
    names = ["liver_uptake_vascular_per_h", "spleen_uptake_vascular_per_h", "brain_degradation_per_h"]
    serial = exopk.analysis.sobol_sensitivity(params, DOSE, T_H, names, n=64, seed=1, chunk_size=160, progress=False)
    on_dask = exopk.analysis.sobol_sensitivity(params, DOSE, T_H, names, n=64, seed=1, chunk_size=160, executor=client)
    np.testing.assert_array_equal(on_dask.first_order, serial.first_order)
    np.testing.assert_array_equal(on_dask.total_order, serial.total_order)
    np.testing.assert_array_equal(on_dask.second_order, serial.second_order)


@pytest.mark.slow
def test_errors_on_workers_reach_the_caller(client):
    params = exopk.load_parameters()
    values = {"liver_uptake_vascular_per_h": np.array([1.0, 2.0])}
    with pytest.raises(exopk.DosingError, match="total dose is 0"):
        exopk.analysis.evaluate_outputs(
            params, exopk.IVBolus(dose_particles=0.0), T_H, values, ["blood_auc"], executor=client
        )
