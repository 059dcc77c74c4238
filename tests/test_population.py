"""Virtual populations: draws, covariates, percentiles, per-subject NCA, errors, executors, CLI."""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import exopk
from exopk.cli import main

DOSE = exopk.IVBolus(dose_particles=1e10)
T_H = np.linspace(0.0, 24.0, 25)
CV = {"liver_uptake_vascular_per_h": 0.3, "brain_uptake_tissue_per_h": 0.5, "spleen_uptake_vascular_per_h": 0.4}


@pytest.fixture(scope="module")
def params():
    return exopk.load_parameters()


def test_lognormal_draws_have_the_median_and_cv(params):
    pop = exopk.analysis.sample_population(params, 20_000, CV, seed=1)
    for name, cv in CV.items():
        x = pop.variations[name]
        log = np.log(x / params[name])
        assert abs(np.median(x) / params[name] - 1) < 0.03
        assert np.std(log) == pytest.approx(np.sqrt(np.log1p(cv**2)), rel=0.03)
        assert np.std(x) / np.mean(x) == pytest.approx(cv, rel=0.06)


def test_seeded_and_reproducible(params):
    a = exopk.analysis.sample_population(params, 100, CV, seed=7)
    b = exopk.analysis.sample_population(params, 100, CV, seed=7)
    c = exopk.analysis.sample_population(params, 100, CV, seed=8)
    for name in CV:
        np.testing.assert_array_equal(a.variations[name], b.variations[name])
        assert not np.array_equal(a.variations[name], c.variations[name])


def test_correlation_is_reproduced(params):
    names = ["liver_uptake_vascular_per_h", "spleen_uptake_vascular_per_h"]
    r = np.array([[1.0, 0.8], [0.8, 1.0]])
    pop = exopk.analysis.sample_population(params, 20_000, dict.fromkeys(names, 0.3), correlation=r, seed=2)
    logs = np.log([pop.variations[n] for n in names])
    assert np.corrcoef(logs)[0, 1] == pytest.approx(0.8, abs=0.02)


def test_body_weight_scales_flows_and_volumes_allometrically(params):
    weights = np.array([12.5, 25.0, 50.0])
    pop = exopk.analysis.sample_population(params, 3, body_weight_g=weights)
    ratio = weights / params["body_weight_g"]
    np.testing.assert_allclose(
        pop.variations["cardiac_output_ml_per_h"], params["cardiac_output_ml_per_h"] * ratio**0.75
    )
    np.testing.assert_allclose(pop.variations["liver_volume_ml"], params["liver_volume_ml"] * ratio)
    np.testing.assert_allclose(pop.variations["body_weight_g"], weights)
    assert "liver_uptake_vascular_per_h" not in pop.variations  # rate constants do not scale
    assert exopk.analysis.allometric_exponent("kidney_urinary_clearance_ml_per_h") == 0.75
    assert exopk.analysis.allometric_exponent("liver_partition_coefficient") is None


def test_body_weight_cv_draws_weights(params):
    pop = exopk.analysis.sample_population(params, 5000, body_weight_cv=0.2, seed=3)
    assert np.median(pop.body_weight_g) == pytest.approx(params["body_weight_g"], rel=0.02)
    np.testing.assert_allclose(pop.variations["body_weight_g"], pop.body_weight_g)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"cv": {"liver_uptake_per_h": 0.3}}, "unknown parameter 'liver_uptake_per_h'"),
        ({"cv": {"liver_uptake_vascular_per_h": 0.0}}, r"must be > 0"),
        ({"cv": {"liver_uptake_vascular_per_h": -0.2}}, r"must be > 0"),
        ({"cv": {"liver_uptake_vascular_per_h": float("nan")}}, "finite"),
        ({"cv": {"liver_uptake_vascular_per_h": float("inf")}}, "finite"),
        ({"cv": {"liver_capacity_particles": 0.3}}, "capacities cannot vary"),
        ({"cv": {}}, "nothing varies"),
        (
            {"cv": {"liver_uptake_vascular_per_h": 0.3, "spleen_uptake_vascular_per_h": 0.3}, "correlation": np.eye(3)},
            "must be 2x2",
        ),
        (
            {"cv": {"liver_uptake_vascular_per_h": 0.3, "spleen_uptake_vascular_per_h": 0.3},
             "correlation": [[1.0, 0.5], [0.4, 1.0]]},
            "symmetric",
        ),
        (
            {"cv": {"liver_uptake_vascular_per_h": 0.3, "spleen_uptake_vascular_per_h": 0.3},
             "correlation": [[2.0, 0.5], [0.5, 1.0]]},
            "unit diagonal",
        ),
        (
            {"cv": dict.fromkeys(["liver_uptake_vascular_per_h", "spleen_uptake_vascular_per_h",
                                  "lung_macrophage_uptake_per_h"], 0.3),
             "correlation": [[1, 0.9, -0.9], [0.9, 1, 0.9], [-0.9, 0.9, 1]]},
            "positive definite",
        ),
        ({"cv": {"liver_vascular_fraction": 3.0}}, "invalid `liver_vascular_fraction`"),
        ({"body_weight_g": [25.0, -1.0]}, "one value per subject"),
    ],
)  # fmt: skip
def test_invalid_specifications(params, kwargs, match):
    with pytest.raises(exopk.PopulationError, match=match):
        exopk.analysis.sample_population(params, 100, **kwargs, seed=0)


def test_percentiles_match_numpy_and_summaries_match_single_runs(params):
    pop = exopk.analysis.sample_population(params, 300, CV, body_weight_cv=0.1, seed=4)
    result = exopk.analysis.simulate_population(pop, DOSE, T_H, chunk_size=128, progress=False)
    frames = []
    for i in range(pop.n_subjects):
        p_i = params.replace(**{k: float(v[i]) for k, v in pop.variations.items()})
        frames.append(exopk.simulate(p_i, DOSE, T_H))
    pct = np.stack(
        [np.stack([f.percent_id(o) if o != "eliminated" else 100 * f.eliminated() / 1e10 for o in f.organs], -1)
         for f in frames]
    )  # fmt: skip
    np.testing.assert_allclose(result.percent_id_percentiles, np.percentile(pct, [5, 50, 95], axis=0), atol=1e-9)
    np.testing.assert_allclose(result.cmax_percent_id, pct.max(axis=1), atol=1e-9)
    blood_ml = np.array([f.organ_volumes_ml[0] for f in frames])
    blood = exopk.analysis.nca(T_H, pct[:, :, 0] / blood_ml[:, None], dose=100.0)
    np.testing.assert_allclose(result.nca["blood"].lambda_z_per_h, blood.lambda_z_per_h, rtol=1e-6)
    np.testing.assert_allclose(result.nca["blood"].cl, blood.cl, rtol=1e-6)
    subjects = result.subjects_frame()
    assert set(subjects.columns) == {"subject", "organ", "parameter", "value", "unit"}
    cl = subjects.query("organ == 'blood' and parameter == 'nca_cl'")
    assert (cl.unit == "mL/h").all() and np.all(cl.value > 0)


def test_time_blocks_and_chunks_do_not_change_results(params):
    pop = exopk.analysis.sample_population(params, 200, CV, seed=5)
    one = exopk.analysis.simulate_population(pop, DOSE, T_H, progress=False)
    with ThreadPoolExecutor(2) as pool:
        many = exopk.analysis.simulate_population(pop, DOSE, T_H, chunk_size=64, memory_mb=0.05, executor=pool)
    assert many.metadata["n_time_blocks"] > 1 and many.metadata["n_chunks"] == 4
    np.testing.assert_allclose(many.percent_id_percentiles, one.percent_id_percentiles, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(many.auc_percent_id_h, one.auc_percent_id_h, rtol=1e-10)
    np.testing.assert_array_equal(many.tmax_h, one.tmax_h)


def test_percentiles_converge_with_n(params):
    """The median band of the liver from growing populations approaches that of a very large one."""
    t = np.array([0.0, 1.0, 4.0, 24.0])
    ref = exopk.analysis.simulate_population(
        exopk.analysis.sample_population(params, 16_000, CV, seed=99), DOSE, t, progress=False
    )
    errors = []
    for n in (100, 400, 1600):
        r = exopk.analysis.simulate_population(
            exopk.analysis.sample_population(params, n, CV, seed=n), DOSE, t, progress=False
        )
        # P5 and P95 of the liver at 1, 4 and 24 h
        errors.append(np.max(np.abs(r.band("liver")[[0, 2], 1:] - ref.band("liver")[[0, 2], 1:])))
    assert errors[2] < errors[1] < errors[0]
    assert errors[2] < 0.5 * errors[0]  # sampling error ~ 1/sqrt(N): a quarter expected


def test_serial_threads_and_processes_identical(params):
    """Executors give the same numbers bit for bit; the in-process path agrees to round-off."""
    pop = exopk.analysis.sample_population(params, 300, CV, seed=6)
    serial = exopk.analysis.simulate_population(pop, DOSE, T_H, progress=False)
    with ThreadPoolExecutor(1) as pool:  # one thread: the chunks run one after another
        in_turn = exopk.analysis.simulate_population(pop, DOSE, T_H, chunk_size=100, executor=pool, progress=False)
    with ThreadPoolExecutor(2) as pool:
        threads = exopk.analysis.simulate_population(pop, DOSE, T_H, chunk_size=100, executor=pool, progress=False)
    with ProcessPoolExecutor(2) as pool:
        procs = exopk.analysis.simulate_population(pop, DOSE, T_H, chunk_size=100, executor=pool, progress=False)
    for other in (threads, procs):
        np.testing.assert_array_equal(other.percent_id_percentiles, in_turn.percent_id_percentiles)
        np.testing.assert_array_equal(other.auc_percent_id_h, in_turn.auc_percent_id_h)
        np.testing.assert_array_equal(other.cmax_percent_id, in_turn.cmax_percent_id)
        np.testing.assert_array_equal(other.nca["blood"].half_life_h, in_turn.nca["blood"].half_life_h)
    np.testing.assert_allclose(in_turn.percent_id_percentiles, serial.percent_id_percentiles, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(in_turn.auc_percent_id_h, serial.auc_percent_id_h, rtol=1e-12)
    np.testing.assert_allclose(in_turn.cmax_percent_id, serial.cmax_percent_id, rtol=1e-12, atol=1e-14)
    np.testing.assert_array_equal(in_turn.tmax_h, serial.tmax_h)
    np.testing.assert_allclose(in_turn.nca["blood"].half_life_h, serial.nca["blood"].half_life_h, rtol=1e-10)


def test_bad_executor_and_arguments(params):
    pop = exopk.analysis.sample_population(params, 10, CV, seed=0)
    with pytest.raises(exopk.ExecutorError, match="Executor"):
        exopk.analysis.simulate_population(pop, DOSE, T_H, executor="dask")
    with pytest.raises(exopk.InputError, match="chunk_size"):
        exopk.analysis.simulate_population(pop, DOSE, T_H, chunk_size=0)
    with pytest.raises(exopk.InputError, match="nca_organs"):
        exopk.analysis.simulate_population(pop, DOSE, T_H, nca_organs=("heart",))


def test_progress_bar_when_asked(params, capsys):
    pop = exopk.analysis.sample_population(params, 20, CV, seed=0)
    exopk.analysis.simulate_population(pop, DOSE, T_H, progress=True)
    assert "population" in capsys.readouterr().err
    with ThreadPoolExecutor(1) as pool:
        exopk.analysis.simulate_population(pop, DOSE, T_H, chunk_size=10, executor=pool, progress=True)
    assert "population" in capsys.readouterr().err
    exopk.analysis.simulate_population(pop, DOSE, T_H)  # not a terminal: no bar
    assert capsys.readouterr().err == ""


def test_cli_population(tmp_path, capsys):
    bands, subjects, plot = tmp_path / "b.csv", tmp_path / "s.csv", tmp_path / "b.png"
    rc = main(
        ["population", "--n", "50", "--cv", "liver_uptake_vascular_per_h=0.3", "--body-weight-cv", "0.1",
         "--seed", "3", "--t-end", "24", "--dt", "1", "--out", str(bands), "--subjects", str(subjects),
         "--plot", str(plot), "--no-progress"]
    )  # fmt: skip
    assert rc == 0
    frame = pd.read_csv(bands)  # wide: a row per time, a column per organ and percentile
    assert frame.time_h.tolist() == list(range(25))
    percentile_columns = [c for c in frame.columns if c != "time_h"]
    assert len(percentile_columns) == 3 * len(exopk.model.REPORTED_ORGANS)
    assert {c.rsplit("_", 1)[1] for c in percentile_columns} == {"p5", "p50", "p95"}
    assert all("_percent_id_p" in c for c in percentile_columns)
    assert (frame[percentile_columns] >= 0).all().all()
    assert pd.read_csv(subjects).subject.tolist() == list(range(50))
    assert plot.read_bytes()[:4] == b"\x89PNG"
    assert "50 subjects" in capsys.readouterr().out


def test_cli_population_errors(capsys):
    assert main(["population", "--n", "5"]) == 2
    assert "nothing varies" in capsys.readouterr().err
    assert main(["population", "--n", "5", "--cv", "nope_per_h=0.3"]) == 1
    assert "unknown parameter 'nope_per_h'" in capsys.readouterr().err
    assert main(["population", "--n", "5", "--cv", "liver_uptake_vascular_per_h=-1"]) == 1
    assert "> 0" in capsys.readouterr().err


def _tidy_from_wide(path: Path, id_column: str) -> pd.DataFrame:
    """A wide population table read back as ``id, column, value`` (how an old tidy reader recovers its rows)."""
    frame = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    return frame.melt(id_vars=id_column, var_name="column", value_name="value")


def test_population_tables_hold_the_tidy_frames_numbers(params, tmp_path):
    # Regression test for #15: the wide --out/--subjects tables carry every number of the tidy frames.
    from exopk.cli._outputs import Outputs
    from exopk.cli.population import write_outputs

    pop = exopk.analysis.sample_population(params, 30, CV, body_weight_cv=0.1, seed=4)
    result = exopk.analysis.simulate_population(pop, DOSE, T_H)
    bands, subjects = tmp_path / "b.csv", tmp_path / "s.csv"
    with Outputs([(bands, "--out", "table"), (subjects, "--subjects", "table")]) as outputs:
        write_outputs(outputs, result)

    wide = pd.read_csv(bands).set_index("time_h")
    tidy = result.to_frame()
    for organ, quantity, t_h, value in tidy[["organ", "quantity", "time_h", "value"]].itertuples(index=False):
        written = wide.loc[t_h, f"{organ}_{quantity}"]
        assert written == pytest.approx(max(value, 0.0), rel=1e-7, abs=1e-300), (organ, quantity, t_h)

    wide = pd.read_csv(subjects).set_index("subject")
    tidy = result.subjects_frame()
    assert wide.shape == (30, tidy.groupby(["organ", "parameter"]).ngroups)
    # The unit of the tidy row, as the wide column names it (already in the name, or dimensionless: bare).
    suffix = {"%ID/mL": "_percent_id_per_ml", "%ID/mL·h": "_percent_id_h_per_ml", "%ID/mL·h²": "_percent_id_h2_per_ml",
              "mL/h": "_ml_per_h", "mL": "_ml"}  # fmt: skip
    in_name = {"%ID": "_percent_id", "%ID·h": "_percent_id_h", "h": "_h", "1/h": "_per_h", "%": "_percent", "1": ""}
    for (organ, parameter, unit), rows in tidy.groupby(["organ", "parameter", "unit"], sort=False):
        column = f"{organ}_{parameter}{suffix.get(unit, '')}"
        assert column.endswith(in_name.get(unit, suffix.get(unit))), (column, unit)
        np.testing.assert_allclose(wide[column].to_numpy(), rows.value.to_numpy(dtype=float), rtol=1e-7)
    assert "blood_nca_half_life_h" in wide.columns
    assert "blood_nca_cmax_percent_id_per_ml" in wide.columns
    assert "blood_nca_cl_ml_per_h" in wide.columns and "blood_nca_vss_ml" in wide.columns
    assert "blood_nca_auc_0_inf_percent_id_h_per_ml" in wide.columns


def test_cli_population_parquet_matches_csv(tmp_path, capsys):
    pytest.importorskip("pyarrow")
    common = ["population", "--n", "20", "--cv", "liver_uptake_vascular_per_h=0.3", "--seed", "2", "--t-end", "6",
              "--dt", "1", "--no-progress"]  # fmt: skip
    assert main([*common, "--out", str(tmp_path / "b.csv"), "--subjects", str(tmp_path / "s.csv")]) == 0
    assert main([*common, "--out", str(tmp_path / "b.parquet"), "--subjects", str(tmp_path / "s.parquet")]) == 0
    capsys.readouterr()
    for name in ("b", "s"):
        csv = pd.read_csv(tmp_path / f"{name}.csv")
        parquet = pd.read_parquet(tmp_path / f"{name}.parquet")
        assert list(parquet.columns) == list(csv.columns)
        np.testing.assert_allclose(parquet.to_numpy(dtype=float), csv.to_numpy(dtype=float), rtol=1e-7)
    assert pd.read_parquet(tmp_path / "s.parquet").subject.dtype == np.int64


def test_cli_population_parquet_without_pyarrow_is_refused_before_simulating(tmp_path, capsys, monkeypatch):
    import importlib.util

    find_spec = importlib.util.find_spec
    without = lambda name, *a: None if name == "pyarrow" else find_spec(name, *a)  # noqa: E731
    monkeypatch.setattr(importlib.util, "find_spec", without)
    status = main(["population", "--n", "5", "--cv", "liver_uptake_vascular_per_h=0.3", "--no-progress",
                   "--out", str(tmp_path / "b.parquet")])  # fmt: skip
    assert status == 2
    err = capsys.readouterr().err
    assert "`--out`" in err and "needs pyarrow" in err and "exopk[parquet]" in err
    assert not list(tmp_path.iterdir())


def test_cli_population_bands_to_standard_output(capsys):
    status = main(["population", "--n", "5", "--cv", "liver_uptake_vascular_per_h=0.3", "--t-end", "2", "--dt", "1",
                   "--no-progress", "--out", "-"])  # fmt: skip
    assert status == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert lines[0].startswith("time_h,blood_percent_id_p5,") and len(lines) == 4
    assert "5 subjects" in captured.err
