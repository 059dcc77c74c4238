"""Fuzzing the file loaders: random bytes, random TOML and CSV structures, and mutated real files.

Whatever a file holds, a loader either succeeds or raises one clean, one-line
:class:`exopk.ExopkError` (#12). Anything else (a ``KeyError`` from a missing table, a
``UnicodeDecodeError``, a pandas or numpy exception, a warning: pytest turns warnings into errors)
is a bug. Deterministic under the ``ci`` profile (derandomised), about 100 examples per loader.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import tomllib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import exopk
from exopk.cli import main
from exopk.model.parameters import params_dir

FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

# --- values and keys a user (or a corrupted file) may write ----------------------------------------

REAL_TOML_KEYS = sorted(
    {
        key
        for kind, name in (
            ("species", "mouse"),
            ("ev", "msc"),
            ("tracers", "DiR"),
            ("scenarios", "acute_kidney_injury"),
        )
        for key in (params_dir() / kind / f"{name}.toml").read_text(encoding="utf-8").split()
        if key.isidentifier()
    }
)
scalars = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.booleans(),
    st.text(max_size=12),
    st.sampled_from(["", "inf", "-1", "1e400", "mouse", "optical", "nuclear"]),
)
keys = st.one_of(st.sampled_from(REAL_TOML_KEYS), st.text(min_size=1, max_size=10))
sourced = st.fixed_dictionaries({"value": scalars, "source": st.one_of(st.text(max_size=8), scalars)})
values = st.recursive(
    st.one_of(scalars, sourced),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(keys, inner, max_size=3)),
    max_leaves=8,
)
tables = st.dictionaries(
    st.one_of(
        st.sampled_from(["metadata", "body", "organs", "label", "optical", "changes", "species", "attenuation"]), keys
    ),
    st.dictionaries(keys, values, max_size=5),
    max_size=4,
)


def toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return (
            "nan"
            if math.isnan(value)
            else ("inf" if value == math.inf else "-inf" if value == -math.inf else repr(value))
        )
    if isinstance(value, str):
        return json.dumps(value)  # a TOML basic string (escapes it cannot read are the parser's to refuse)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return "{ " + ", ".join(f"{json.dumps(k)} = {toml_value(v)}" for k, v in value.items()) + " }"


def toml_text(data: dict) -> str:
    lines = []
    for table, body in data.items():
        lines.append(f"[{json.dumps(table)}]")
        lines += [f"{json.dumps(k)} = {toml_value(v)}" for k, v in body.items()]
    return "\n".join(lines) + "\n"


@st.composite
def mutated(draw, kind: str, name: str) -> str:
    """A bundled file with one entry replaced by a random value or removed: gets past the structure checks."""
    data = tomllib.loads((params_dir() / kind / f"{name}.toml").read_text(encoding="utf-8"))
    node = data
    while True:
        key = draw(st.sampled_from(sorted(node)))
        if isinstance(node[key], dict) and node[key] and draw(st.booleans()):
            node = node[key]
            continue
        if draw(st.integers(0, 3)) == 0:
            del node[key]
        else:
            node[key] = draw(values)
        break
    return _nested(data)


def _nested(data: dict, prefix: str = "") -> str:
    """TOML for nested tables ([organs.liver]): sub-tables of tables become headers."""
    out, plain = [], {}
    for key, value in data.items():
        name = f"{prefix}.{json.dumps(key)}" if prefix else json.dumps(key)
        if isinstance(value, dict) and not ("value" in value or "factor" in value):
            out.append(_nested(value, name))
        else:
            plain[key] = value
    head = [f"[{prefix}]"] if prefix and plain else []
    body = [f"{json.dumps(k)} = {toml_value(v)}" for k, v in plain.items()]
    return "\n".join(head + body + out) + "\n"


file_bytes = st.one_of(
    st.binary(max_size=200),
    st.text(max_size=200).map(lambda s: s.encode("utf-8")),
    st.text(max_size=60).map(lambda s: s.encode("utf-16")),
)


def check(load, path: Path) -> None:
    """``load(path)`` succeeds or raises one clean, one-line ExopkError."""
    try:
        load(path)
    except exopk.ExopkError as err:
        assert "\n" not in str(err), str(err)


# --- TOML loaders --------------------------------------------------------------------------------

TOML_LOADERS = {
    "species": lambda p: exopk.load_parameters(species=p),
    "ev": lambda p: exopk.load_parameters(ev=p),
    "scenario": exopk.model.load_scenario,
    "label": exopk.observe.load_label,
    "imaging": exopk.observe.load_imaging,
}
BUNDLED = {
    "species": ("species", "mouse"),
    "ev": ("ev", "msc"),
    "scenario": ("scenarios", "acute_kidney_injury"),
    "label": ("tracers", "I-125"),
    "imaging": ("imaging", "mouse"),
}


@pytest.mark.parametrize("loader", TOML_LOADERS)
@FUZZ
@given(content=st.one_of(file_bytes, tables.map(lambda t: toml_text(t).encode("utf-8"))))
def test_toml_loaders_on_random_bytes_and_tables(loader, content, tmp_path):
    path = tmp_path / "fuzz.toml"
    path.write_bytes(content)
    check(TOML_LOADERS[loader], path)


@pytest.mark.parametrize("loader", TOML_LOADERS)
@FUZZ
@given(data=st.data())
def test_toml_loaders_on_mutated_bundled_files(loader, data, tmp_path):
    path = tmp_path / "fuzz.toml"
    path.write_text(data.draw(mutated(*BUNDLED[loader])), encoding="utf-8")
    check(TOML_LOADERS[loader], path)


# --- CSV loaders ---------------------------------------------------------------------------------

REGIMEN_COLUMNS = ["time_h", "route", "dose_particles", "dose_ug", "duration_h", "site", "lower_airway_fraction"]
DATA_COLUMNS = ["time_h", "organ", "quantity", "value", "unit", "sd", "n", "loq", "weight"]
cells = st.one_of(
    st.sampled_from(
        ["", "0", "1", "-1", "1e10", "1e400", "nan", "inf", "true", "iv_bolus", "iv_infusion", "local", "intranasal"]
        + ["liver", "blood", "heart", "percent_id", "%ID", "%ID/g", "signal", "a.u.", "kidney_vascular", '"', "#"]
    ),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.text(max_size=6),
)


@st.composite
def csv_tables(draw, columns: list[str]) -> bytes:
    header = draw(st.lists(st.one_of(st.sampled_from(columns), st.text(max_size=6)), min_size=1, max_size=7))
    n_rows = draw(st.integers(0, 5))
    rows = [draw(st.lists(cells, min_size=len(header) - 1, max_size=len(header) + 1)) for _ in range(n_rows)]
    return ("\n".join(",".join(r) for r in [header, *rows]) + "\n").encode("utf-8")


@st.composite
def well_formed(draw, columns: list[str], required: list[str]) -> bytes:
    """Tables with the right header and random cells: past the column checks, into the row checks."""
    extra = draw(st.lists(st.sampled_from([c for c in columns if c not in required]), unique=True, max_size=3))
    header = required + extra
    rows = draw(st.lists(st.lists(cells, min_size=len(header), max_size=len(header)), min_size=1, max_size=4))
    return ("\n".join(",".join(r) for r in [header, *rows]) + "\n").encode("utf-8")


def regimen_loader(path):
    return exopk.Regimen.from_csv(path, particles_per_ug=1e9)


def nca_loader(path):
    """The NCA command's reader and checks, in-process: an exit status, never an exception."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        status = main(["nca", str(path)])
    assert len(err.getvalue().splitlines()) <= 1, err.getvalue()
    assert status == 0 or err.getvalue().startswith("exopk: error: ")


CSV_LOADERS = {
    "regimen": (regimen_loader, REGIMEN_COLUMNS, ["time_h", "route", "dose_particles"]),
    "observations": (exopk.datasets.read_observations, DATA_COLUMNS, ["time_h", "organ", "quantity", "value", "unit"]),
    "nca": (nca_loader, ["time_h", "value", "organ", "quantity", "unit", "subject"], ["time_h", "value"]),
}


@pytest.mark.parametrize("loader", CSV_LOADERS)
@FUZZ
@given(data=st.data())
def test_csv_loaders_on_random_bytes_and_tables(loader, data, tmp_path):
    load, columns, required = CSV_LOADERS[loader]
    content = data.draw(st.one_of(file_bytes, csv_tables(columns), well_formed(columns, required)))
    path = tmp_path / "fuzz.csv"
    path.write_bytes(content)
    check(load, path)
