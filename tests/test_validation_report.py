"""The validation report (validation/validate.py): runs end to end, and docs/validation.md is current."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "validation" / "validate.py"


@pytest.fixture(scope="module")
def validate():
    spec = importlib.util.spec_from_file_location("validate", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.validation
def test_report_covers_every_dataset_and_shows_failures(validate, tmp_path):
    import exopk

    assert validate.main(["--out-dir", str(tmp_path)]) == 0
    text = (tmp_path / "validation.md").read_text(encoding="utf-8")
    for name in exopk.io.list_datasets():
        assert f"`{name}`" in text
        assert (tmp_path / f"validation_{name}.png").stat().st_size < 60_000  # small enough to commit
    assert "within 2-fold" in text and "What the model gets wrong" in text
    assert "**fail**" in text  # known failures are shown, not removed


@pytest.mark.validation
def test_committed_report_equals_a_fresh_run(validate):
    """Rerun `python validation/validate.py` after changing parameters or datasets."""
    fresh = validate.render(ROOT / "docs", write_figures=False)
    committed = (ROOT / "docs" / "validation.md").read_text(encoding="utf-8")
    assert fresh == committed, "docs/validation.md is stale: run python validation/validate.py"
