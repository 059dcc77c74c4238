"""Shipped literature datasets: provenance header, tidy units, loader and `exopk datasets`."""

from __future__ import annotations

import pytest

import exopk
from exopk.analysis.observations import QUANTITY_UNITS
from exopk.cli import main
from exopk.datasets import METADATA_KEYS

OBTAINED = ("from text", "from a table", "digitised", "derived")


def test_the_literature_datasets_are_shipped():
    names = exopk.io.list_datasets()
    assert {"morishita2015_iv_mouse", "kumar2018_igg_intranasal_rat", "belayev1996_evans_blue_mcao_rat"} <= set(names)


@pytest.mark.parametrize("name", exopk.io.list_datasets())
def test_every_dataset_has_provenance_and_a_model_to_compare_with(name):
    dataset = exopk.io.load_dataset(name)
    assert set(METADATA_KEYS) <= set(dataset.metadata)
    assert all(dataset.metadata[key].strip() for key in METADATA_KEYS), "empty provenance field"
    assert dataset.metadata["obtained"].startswith(OBTAINED)
    assert dataset.metadata["species"] in exopk.available("species")
    assert dataset.metadata["route"] in exopk.ROUTES
    assert dataset.label is None or dataset.label in exopk.observe.available_labels()
    assert dataset.scenario is None or dataset.scenario in exopk.available("scenarios")
    data = dataset.data
    assert list(data.columns[:7]) == ["time_h", "organ", "quantity", "value", "sd", "n", "unit"]
    for quantity, unit in zip(data["quantity"], data["unit"], strict=True):
        assert unit in QUANTITY_UNITS[quantity]
    assert (data["value"] > 0).all()


def test_morishita_numbers_are_copied_exactly():
    """literature.md §2a / §7 DS1: liver 28, lung 7, spleen 1.6 %ID per organ at 4 h."""
    data = exopk.io.load_dataset("morishita2015_iv_mouse").data.set_index("organ")
    assert data.loc["liver", "value"] == 28.0
    assert data.loc["lung", "value"] == 7.0
    assert data.loc["spleen", "value"] == 1.6
    assert set(data["time_h"]) == {4.0}
    assert set(data["unit"]) == {"%ID"}


def test_unknown_dataset_is_a_clear_error():
    with pytest.raises(exopk.DataError, match="unknown dataset 'nope'.*morishita2015_iv_mouse"):
        exopk.io.load_dataset("nope")


def test_cli_lists_and_shows_datasets(capsys):
    assert main(["datasets", "list"]) == 0
    out = capsys.readouterr().out
    assert "morishita2015_iv_mouse" in out and "J Pharm Sci 104:705" in out
    assert main(["datasets", "show", "morishita2015_iv_mouse"]) == 0
    out = capsys.readouterr().out
    assert "obtained: from text" in out and "liver" in out
    assert main(["datasets", "show", "morishita2015_iv_mouse", "--csv"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == "time_h,organ,quantity,value,sd,n,unit"


def test_cli_unknown_dataset_is_a_usage_error(capsys):
    assert main(["datasets", "show", "nope"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown dataset 'nope'" in err


def _script(name):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "calibration" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_calibration_targets_are_the_shipped_data():
    """The calibration scripts fit the numbers of the shipped datasets, not copies that could drift."""
    iv = _script("calibrate")
    data = exopk.io.load_dataset("morishita2015_iv_mouse").data.set_index("organ")
    for organ in ("liver", "lung", "spleen"):
        observed, _sd, _unit, label, _source = iv.POINTS[f"morishita2015_{organ}_percent_id_4h"]
        assert observed == data.loc[organ, "value"]
        assert label == exopk.io.load_dataset("morishita2015_iv_mouse").label
    nasal = _script("calibrate_intranasal")
    kumar = exopk.io.load_dataset("kumar2018_igg_intranasal_rat").data
    assert nasal.BRAIN_PERCENT_ID_30MIN == kumar["value"].iloc[0]
    assert kumar["time_h"].iloc[0] == 0.5
