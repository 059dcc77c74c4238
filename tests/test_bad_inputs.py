"""A catalogue of malformed inputs, kept as tests (issue 12).

Each row is one thing a user can get wrong: a parameter, label or scenario file, a regimen or data
CSV, a command-line option or a Python argument. Each must give exactly one line naming the
argument, file or key, the value and what was expected; on the command line, a non-zero exit
status, no traceback, no output file created and an existing output left as it was. Output-path
handling (symlinks, FIFOs, duplicate outputs, ``--out -``), negative numbers as flag values and
plot formats are catalogued with the CLI's own tests (tests/test_cli*.py).

Regression tests for #12 (the catalogue, and item 3: non-UTF-8 files).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import exopk
from exopk.cli import main
from exopk.model.files import MAX_TABLE_BYTES, MAX_TOML_BYTES
from exopk.model.parameters import params_dir

SIM = ["simulate", "--t-end", "1", "--dt", "0.5"]
SIM_DOSE = [*SIM, "--dose", "1e10"]
FIT = ["fit", "--params", "liver_uptake_vascular_per_h", "--starts", "1"]
NCA_GOOD = "time_h,value\n0,10\n1,5\n2,2.5\n4,0.6\n"
DATA_HEADER = "time_h,organ,quantity,value,unit"
EXISTING = b"an earlier result the user wants to keep\n"


# --- building input files ---------------------------------------------------------------------


def bundled(kind: str, name: str) -> str:
    return (params_dir() / kind / f"{name}.toml").read_text(encoding="utf-8")


def write(tmp: Path, name: str, data: str | bytes) -> str:
    path = tmp / name
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return str(path)


def species_with(tmp: Path, old: str, new: str, *, count: int = 1) -> str:
    """The bundled mouse file with one regex substitution (which must match)."""
    text, n = re.subn(old, new, bundled("species", "mouse"), count=count, flags=re.M)
    assert n, f"mutation {old!r} did not match the bundled mouse file"
    return write(tmp, "species.toml", text)


def ev_with(tmp: Path, old: str, new: str) -> str:
    text, n = re.subn(old, new, bundled("ev", "msc"), count=1, flags=re.M)
    assert n, f"mutation {old!r} did not match the bundled EV file"
    return write(tmp, "ev.toml", text)


def label_with(tmp: Path, old: str, new: str) -> str:
    text, n = re.subn(old, new, bundled("tracers", "DiR"), count=1, flags=re.M)
    assert n, f"mutation {old!r} did not match the bundled DiR file"
    return write(tmp, "label.toml", text)


def sparse(tmp: Path, name: str, n_bytes: int) -> str:
    """A file of ``n_bytes`` zero bytes that takes no disk space (the size check comes before reading)."""
    path = tmp / name
    with path.open("wb") as fh:
        fh.truncate(n_bytes)
    return str(path)


NON_UTF8_TOML = "# Mouse physiology \xff\n".encode("latin-1")  # a Latin-1 'ÿ' in a comment, as an editor may save it


def latin1(text: str) -> bytes:
    """Text saved as Latin-1 (as a spreadsheet or an old editor may), with an accented character."""
    return text.encode("latin-1")


def regimen(tmp: Path, text: str | bytes) -> list[str]:
    return ["--regimen", write(tmp, "regimen.csv", text)]


def data(tmp: Path, rows: str, header: str = DATA_HEADER) -> str:
    return write(tmp, "data.csv", f"{header}\n{rows}\n")


# --- the command-line catalogue -----------------------------------------------------------------


@dataclass(frozen=True)
class CLICase:
    """One bad command line; ``argv`` builds its input files in the test's folder."""

    id: str
    argv: Callable[[Path], list[str]]
    mentions: tuple[str, ...]
    outputs: tuple[tuple[str, str], ...] = (("--out", "out.csv"),)


def case(id, argv, *mentions, outputs=(("--out", "out.csv"),)):
    return CLICase(id, argv, tuple(mentions), tuple(outputs))


FIT_OUTPUTS = (("--out", "fitted.toml"), ("--report", "report.md"))

CLI_CASES = [
    # non-UTF-8 and other encodings (item 3)
    case(
        "species-not-utf8",
        lambda t: [*SIM, "--species", write(t, "species.toml", NON_UTF8_TOML + bundled("species", "mouse").encode())],
        "species.toml",
        "not UTF-8 text at byte 19",
        "expected UTF-8",
    ),
    case(
        "ev-not-utf8",
        lambda t: [*SIM, "--ev", write(t, "ev.toml", bundled("ev", "msc").encode() + b"\n# \xe9\n")],
        "ev.toml",
        "not UTF-8 text at byte",
        "expected UTF-8",
    ),
    case(
        "scenario-not-utf8",
        lambda t: [*SIM, "--scenario", write(t, "fitted.toml", latin1("# fitted to données\n[changes]\n"))],
        "fitted.toml",
        "not UTF-8 text at byte 16 (line 1, byte 0xe9)",
    ),
    case(
        "tracer-not-utf8",
        lambda t: [*SIM_DOSE, "--tracer", write(t, "label.toml", b"\x80" + bundled("tracers", "DiR").encode())],
        "label.toml",
        "not UTF-8 text at byte 0",
    ),
    case(
        "species-utf16",
        lambda t: [*SIM, "--species", write(t, "species.toml", bundled("species", "mouse").encode("utf-16"))],
        "species.toml",
        "UTF-16",
        "expected UTF-8",
    ),
    case(
        "regimen-not-utf8",
        lambda t: [*SIM, *regimen(t, latin1("time_h,route,dose_particles\n0,iv_bolus,1e10 # µ\n"))],
        "regimen.csv",
        "not UTF-8 text at byte",
        "line 2",
    ),
    case(
        "nca-data-not-utf8",
        lambda t: ["nca", write(t, "conc.csv", latin1("time_h,value,note\n0,10,\n1,5,pâle\n2,2,\n"))],
        "conc.csv",
        "not UTF-8 text at byte",
        "line 3",
    ),
    case(
        "fit-data-not-utf8",
        lambda t: [*FIT, write(t, "data.csv", latin1(f"# source: Müller\n{DATA_HEADER}\n1,liver,percent_id,50,%ID\n"))],
        "data.csv",
        "not UTF-8 text at byte 11",
        outputs=FIT_OUTPUTS,
    ),
    case(
        "correlation-not-utf8",
        lambda t: [
            "population",
            "--n",
            "4",
            "--t-end",
            "1",
            "--cv",
            "liver_uptake_vascular_per_h=0.3",
            "--correlation",
            write(t, "corr.csv", b"1\xa0\n"),
        ],
        "corr.csv",
        "not UTF-8 text at byte 1",
    ),
    case(
        "species-binary-nul",
        lambda t: [*SIM, "--species", write(t, "species.toml", b"[body]\x00\x00\n")],
        "species.toml",
        "NUL byte at byte 6",
        "expected text",
    ),
    # empty, huge and non-regular files
    case("species-empty", lambda t: [*SIM, "--species", write(t, "species.toml", "")], "species.toml", "[body]"),
    case(
        "species-huge",
        lambda t: [*SIM, "--species", sparse(t, "species.toml", MAX_TOML_BYTES + 1)],
        "species.toml",
        "16.0 MiB",
        "expected at most 16.0 MiB",
    ),
    case(
        "species-is-a-directory",
        lambda t: [*SIM, "--species", str((t / "mouse.toml").mkdir() or t / "mouse.toml")],
        "mouse.toml",
        "is a directory",
        "expected a file",
    ),
    case(
        "regimen-is-a-directory",
        lambda t: [*SIM, "--regimen", str((t / "doses").mkdir() or t / "doses")],
        "doses",
        "is a directory",
        "expected a file",
    ),
    case(
        "nca-data-is-a-fifo",
        lambda t: ["nca", str(os.mkfifo(t / "conc.csv") or t / "conc.csv")],
        "conc.csv",
        "not a regular file",
        "expected a file",
    ),
    case(
        "fit-data-is-a-directory",
        lambda t: [*FIT, str((t / "data").mkdir() or t / "data")],
        "'",
        "data",
        "is a directory",
        outputs=FIT_OUTPUTS,
    ),
    case("regimen-empty", lambda t: [*SIM, *regimen(t, "")], "regimen.csv", "is empty", "expected a CSV table"),
    case(
        "regimen-header-only",
        lambda t: [*SIM, *regimen(t, "time_h,route,dose_particles\n")],
        "regimen.csv",
        "no doses",
    ),
    case(
        "regimen-huge",
        lambda t: [*SIM, "--regimen", sparse(t, "regimen.csv", MAX_TABLE_BYTES + 1)],
        "regimen.csv",
        "512.0 MiB",
        "expected at most 512.0 MiB",
    ),
    case("nca-empty", lambda t: ["nca", write(t, "conc.csv", "")], "conc.csv", "is empty", "expected a CSV table"),
    case(
        "fit-data-only-comments",
        lambda t: [*FIT, write(t, "data.csv", "# name: x\n# source: y\n")],
        "data.csv",
        "no table",
        outputs=FIT_OUTPUTS,
    ),
    # parameter files: TOML structure and values
    case(
        "species-invalid-toml",
        lambda t: [*SIM, "--species", species_with(t, r"^\[body\]$", "[body")],
        "species.toml",
        "not valid TOML",
        "line",
    ),
    case(
        "species-unknown-table",
        lambda t: [*SIM, "--species", species_with(t, r"^\[body\]$", "[bodyweight]\nx = 1\n\n[body]")],
        "species.toml",
        "'bodyweight'",
        "expected: body, metadata, organs",
    ),
    case(
        # found by tests/test_fuzz_loaders.py: was an AttributeError traceback
        "species-metadata-not-a-table",
        lambda t: [*SIM, "--species", species_with(t, r"^\[metadata\]$", "metadata = 0.0\n[old_metadata]")],
        "species.toml",
        "'metadata' must be a table [metadata]",
        "0.0",
    ),
    case(
        "species-value-is-text",
        lambda t: [*SIM, "--species", species_with(t, r"(body_weight_g = \{ value = )[^,]+", r'\1"25 g"')],
        "species.toml",
        "`body_weight_g`",
        "'25 g'",
        "must be a number",
    ),
    case(
        "species-value-negative",
        lambda t: [*SIM, "--species", species_with(t, r"(body_weight_g = \{ value = )[^,]+", r"\1-25.0")],
        "`body_weight_g`",
        "-25.0",
        "must be positive",
    ),
    case(
        "species-value-nan",
        lambda t: [*SIM, "--species", species_with(t, r"(body_weight_g = \{ value = )[^,]+", r"\1nan")],
        "`body_weight_g`",
        "nan",
        "must be finite",
    ),
    case(
        "species-value-inf",
        lambda t: [*SIM, "--species", species_with(t, r"(cardiac_output_ml_min = \{ value = )[^,]+", r"\1inf")],
        "`cardiac_output",
        "inf",
        "must be finite",
    ),
    case(
        "species-value-bool",
        lambda t: [*SIM, "--species", species_with(t, r"(body_weight_g = \{ value = )[^,]+", r"\1true")],
        "`body_weight_g`",
        "True",
        "must be a number",
    ),
    case(
        "species-empty-source",
        lambda t: [
            *SIM,
            "--species",
            species_with(t, r'(body_weight_g = \{ value = [^,]+, source = )"[^"]*"', r'\1""'),
        ],
        "'body_weight_g'",
        "non-empty `source`",
        "''",
    ),
    case(
        "species-missing-key",
        lambda t: [*SIM, "--species", species_with(t, r"^body_weight_g = .*\n", "")],
        "species.toml",
        "missing key 'body_weight_g'",
    ),
    case(
        "species-unknown-key",
        lambda t: [
            *SIM,
            "--species",
            species_with(t, r"^\[body\]$", '[body]\nbody_weight_kg = { value = 0.025, source = "x" }'),
        ],
        "species.toml",
        "unknown key 'body_weight_kg'",
        "expected keys",
    ),
    case(
        "species-unknown-organ",
        lambda t: [*SIM, "--species", species_with(t, r"^\[organs\.lung\]$", "[organs.heart]\n\n[organs.lung]")],
        "species.toml",
        "[organs.heart]",
        "expected one of: lung",
    ),
    case(
        "ev-negative-rate",
        lambda t: [*SIM, "--ev", ev_with(t, r"(degradation_per_h = \{ value = )[^,]+", r"\1-0.5")],
        "ev.toml",
        "`degradation_per_h`",
        "-0.5",
        "must be non-negative",
    ),
    case(
        "scenario-unknown-parameter",
        lambda t: [
            *SIM,
            "--scenario",
            write(t, "fitted.toml", '[changes]\nliver_uptake_per_hour = { factor = 2.0, source = "a fit" }\n'),
        ],
        "fitted.toml",
        "'liver_uptake_per_hour'",
    ),
    case(
        "scenario-negative-factor",
        lambda t: [
            *SIM,
            "--scenario",
            write(t, "fitted.toml", '[changes]\nliver_uptake_vascular_per_h = { factor = -2.0, source = "a fit" }\n'),
        ],
        "fitted.toml",
        "liver_uptake_vascular_per_h",
        "-2.0",
        "positive",
    ),
    case(
        "label-fraction-above-one",
        lambda t: [*SIM_DOSE, "--tracer", label_with(t, r"(free_to_feces_fraction = \{ value = )[^,]+", r"\g<1>1.5")],
        "label.toml",
        "free_to_feces_fraction",
        "1.5",
    ),
    case(
        "label-file-missing",
        lambda t: [*SIM_DOSE, "--tracer", str(t / "nolabel.toml")],
        "nolabel.toml",
        "does not exist",
    ),
    # regimen CSV contents
    case(
        "regimen-time-nan",
        lambda t: [*SIM, *regimen(t, "time_h,route,dose_particles\nnan,iv_bolus,1e10\n")],
        "regimen.csv",
        "row 1",
        "`t_h`",
        "nan",
        "finite and non-negative",
    ),
    case(
        "regimen-time-negative",
        lambda t: [*SIM, *regimen(t, "time_h,route,dose_particles\n0,iv_bolus,1e10\n-2,iv_bolus,1e10\n")],
        "regimen.csv",
        "row 2",
        "-2.0",
        "finite and non-negative",
    ),
    case(
        "regimen-dose-negative",
        lambda t: [*SIM, *regimen(t, "time_h,route,dose_particles\n0,iv_bolus,-1e10\n")],
        "regimen.csv",
        "`dose_particles`",
        "-10000000000.0",
        "non-negative",
    ),
    case(
        "regimen-dose-text",
        lambda t: [*SIM, *regimen(t, "time_h,route,dose_particles\n0,iv_bolus,1e10 EVs\n")],
        "regimen.csv",
        "`dose_particles`",
        "'1e10 EVs'",
        "must be a number",
    ),
    case(
        "regimen-dose-true",
        lambda t: [*SIM, *regimen(t, "time_h,route,dose_particles\n0,iv_bolus,true\n")],
        "regimen.csv",
        "`dose_particles`",
        "True",
        "must be a number",
    ),
    case(
        "regimen-dose-overflow",
        lambda t: [*SIM, *regimen(t, "time_h,route,dose_particles\n0,iv_bolus,1e400\n")],
        "`dose_particles`",
        "inf",
        "finite",
    ),
    case(
        "regimen-unknown-route",
        lambda t: [*SIM, *regimen(t, "time_h,route,dose_particles\n0,iv_push,1e10\n")],
        "regimen.csv",
        "'iv_push'",
        "expected one of: iv_bolus",
    ),
    case(
        "regimen-missing-route",
        lambda t: [*SIM, *regimen(t, "time_h,route,dose_particles\n0,,1e10\n")],
        "regimen.csv",
        "missing `route`",
        "expected one of",
    ),
    case(
        "regimen-no-route-column",
        lambda t: [*SIM, *regimen(t, "time_h,dose_particles\n0,1e10\n")],
        "regimen.csv",
        "missing column `route`",
    ),
    case(
        "regimen-both-dose-columns",
        lambda t: [*SIM, *regimen(t, "time_h,route,dose_particles,dose_ug\n0,iv_bolus,1e10,5\n")],
        "regimen.csv",
        "exactly one of the columns `dose_particles`, `dose_ug` or `dose_particles_per_kg`",
    ),
    case(
        "regimen-ug-without-factor",
        lambda t: [*SIM, *regimen(t, "time_h,route,dose_ug\n0,iv_bolus,5\n")],
        "regimen.csv",
        "`particles_per_ug`",
    ),
    case(
        "regimen-extra-field",
        lambda t: [*SIM, *regimen(t, "time_h,route,dose_particles\n0,iv_bolus,1e10,2\n")],
        "regimen.csv",
        "more fields than the header",
    ),
    case(
        "regimen-duplicate-column",
        lambda t: [*SIM, *regimen(t, "time_h,route,dose_particles,time_h\n0,iv_bolus,1e10,1\n")],
        "regimen.csv",
        "'time_h'",
        "more than once",
    ),
    case(
        "regimen-unknown-column",
        lambda t: [*SIM, *regimen(t, "time_h,route,dose_particles,volume_ul\n0,iv_bolus,1e10,100\n")],
        "regimen.csv",
        "'volume_ul'",
        "expected time_h, route",
    ),
    case(
        "regimen-infusion-zero-duration",
        lambda t: [*SIM, *regimen(t, "time_h,route,dose_particles,duration_h\n0,iv_infusion,1e10,0\n")],
        "`duration_h`",
        "0.0",
        "positive and finite",
    ),
    case(
        "regimen-local-unknown-organ",
        lambda t: [*SIM, *regimen(t, "time_h,route,dose_particles,site\n0,local,1e10,heart_tissue\n")],
        "`organ`",
        "'heart'",
        "must be one of: lung",
    ),
    case(
        "regimen-airway-fraction-above-one",
        lambda t: [*SIM, *regimen(t, "time_h,route,dose_particles,lower_airway_fraction\n0,intranasal,1e10,2\n")],
        "`lower_airway_fraction`",
        "2.0",
        "[0, 1]",
    ),
    # observation CSV for fit
    case(
        "data-unknown-organ",
        lambda t: [*FIT, data(t, "1,heart,percent_id,5,%ID")],
        "data.csv",
        "column 'organ'",
        "'heart'",
        "expected one of blood",
        outputs=FIT_OUTPUTS,
    ),
    case(
        "data-wrong-unit",
        lambda t: [*FIT, data(t, "1,liver,percent_id,5,%ID/g")],
        "column 'unit'",
        "'%ID/g'",
        "expected one of %ID",
        outputs=FIT_OUTPUTS,
    ),
    case(
        "data-negative-value",
        lambda t: [*FIT, data(t, "1,liver,percent_id,-5,%ID")],
        "column 'value'",
        "-5.0",
        "expected a finite value >= 0",
        outputs=FIT_OUTPUTS,
    ),
    case(
        "data-value-inf",
        lambda t: [*FIT, data(t, "1,liver,percent_id,inf,%ID")],
        "column 'value'",
        "inf",
        "expected a finite value",
        outputs=FIT_OUTPUTS,
    ),
    case(
        "data-value-text",
        lambda t: [*FIT, data(t, "1,liver,percent_id,high,%ID")],
        "column 'value'",
        "'high'",
        "not a number",
        outputs=FIT_OUTPUTS,
    ),
    case(
        "data-negative-time",
        lambda t: [*FIT, data(t, "-1,liver,percent_id,5,%ID")],
        "column 'time_h'",
        "-1.0",
        "expected a finite time >= 0",
        outputs=FIT_OUTPUTS,
    ),
    case(
        "data-missing-unit-column",
        lambda t: [*FIT, data(t, "1,liver,percent_id,5", header="time_h,organ,quantity,value")],
        "data.csv",
        "missing column(s) unit",
        outputs=FIT_OUTPUTS,
    ),
    case(
        "data-fractional-n",
        lambda t: [*FIT, data(t, "1,liver,percent_id,5,%ID,1.5", header=DATA_HEADER + ",n")],
        "column 'n'",
        "1.5",
        "whole number",
        outputs=FIT_OUTPUTS,
    ),
    case(
        "data-negative-sd",
        lambda t: [*FIT, data(t, "1,liver,percent_id,5,%ID,-1", header=DATA_HEADER + ",sd")],
        "column 'sd'",
        "-1.0",
        "expected a finite SD >= 0",
        outputs=FIT_OUTPUTS,
    ),
    case(
        "data-extra-field",
        lambda t: [*FIT, data(t, "1,liver,percent_id,5,%ID,3")],
        "data.csv",
        "more fields than the header",
        outputs=FIT_OUTPUTS,
    ),
    # NCA CSV
    case(
        "nca-nan-concentration",
        lambda t: ["nca", write(t, "conc.csv", "time_h,value\n0,10\n1,nan\n2,2\n4,1\n")],
        "conc.csv",
        "`conc`",
        "NaN",
    ),
    case(
        "nca-negative-concentration",
        lambda t: ["nca", write(t, "conc.csv", "time_h,value\n0,10\n1,-5\n2,2\n4,1\n")],
        "conc.csv",
        "-5.0",
        "non-negative",
    ),
    case(
        "nca-repeated-times",
        lambda t: ["nca", write(t, "conc.csv", "time_h,value\n0,10\n1,5\n1,4\n4,1\n")],
        "conc.csv",
        "repeated times",
    ),
    case(
        "nca-unknown-value-column",
        lambda t: ["nca", write(t, "conc.csv", NCA_GOOD), "--value-column", "conc_ng_per_ml"],
        "conc.csv",
        "'conc_ng_per_ml'",
        "`--value-column`",
        "columns: time_h, value",
    ),
    case(
        "nca-text-times",
        lambda t: ["nca", write(t, "conc.csv", "time_h,value\n0,10\n1 h,5\n2,2\n")],
        "conc.csv",
        "'time_h'",
        "numeric",
    ),
    # command-line options
    case(
        "set-unknown-parameter",
        lambda t: [*SIM, "--set", "liver_uptake=2"],
        "'liver_uptake'",
        "`--set`",
    ),
    case(
        "set-nan",
        lambda t: [*SIM, "--set", "liver_uptake_vascular_per_h=nan"],
        "`liver_uptake_vascular_per_h`",
        "nan",
        "must be finite",
    ),
    case(
        "set-not-a-number",
        lambda t: [*SIM, "--set", "liver_uptake_vascular_per_h=fast"],
        "`--set liver_uptake_vascular_per_h`",
        "'fast'",
        "needs a number",
    ),
    case("dose-nan", lambda t: [*SIM, "--dose", "nan"], "`--dose`", "'nan'", "positive and finite"),
    case("dose-inf", lambda t: [*SIM, "--dose", "inf"], "`--dose`", "'inf'", "positive and finite"),
    case("dose-text", lambda t: [*SIM, "--dose", "1e10EVs"], "`--dose`", "'1e10EVs'", "must be a number"),
    case("dt-zero", lambda t: [*SIM, "--dt", "0"], "`--dt`", "'0'", "positive and finite"),
    case("dt-above-t-end", lambda t: [*SIM, "--dt", "5"], "`--dt`", "5.0", "must not exceed `--t-end`"),
    case("species-unknown-name", lambda t: [*SIM, "--species", "dog"], "'dog'", "--species", "expected one of"),
    case("ev-unknown-name", lambda t: [*SIM, "--ev", "platelet"], "'platelet'", "--ev", "expected one of: msc"),
    case("scenario-unknown-name", lambda t: [*SIM, "--scenario", "sepsis"], "'sepsis'", "--scenario", "expected"),
    case("tracer-unknown-name", lambda t: [*SIM, "--tracer", "Xe-133"], "'Xe-133'", "`--tracer`", "expected one of"),
    case("organs-unknown", lambda t: [*SIM, "--organs", "liver,heart"], "'heart'", "`--organs`", "expected some of"),
    case("route-unknown", lambda t: [*SIM, "--route", "oral"], "--route", "'oral'", "choose from"),
    case(
        "dose-and-regimen",
        lambda t: [*SIM, "--dose", "1e10", *regimen(t, "time_h,route,dose_particles\n0,iv_bolus,1e10\n")],
        "--dose",
        "--regimen",
        "not both",
    ),
    case(
        "regimen-file-missing",
        lambda t: [*SIM, "--regimen", str(t / "doses.csv")],
        "`--regimen`",
        "doses.csv",
        "does not exist",
    ),
    case(
        "duration-with-bolus",
        lambda t: [*SIM_DOSE, "--duration", "2"],
        "`--duration`",
        "route iv_bolus has none",
        "iv_bolus",
    ),
    case(
        "exact-method-with-capacity",
        lambda t: [*SIM_DOSE, "--method", "exact", "--set", "liver_capacity_particles=1e12"],
        "`method`='exact'",
        "capacity_particles",
        "use method='ode'",
    ),
    case(
        "tracer-with-ode",
        lambda t: [*SIM_DOSE, "--tracer", "DiR", "--method", "ode"],
        "`--tracer`",
        "--method ode",
        "exact or expm",
    ),
    case(
        "image-nuclear-label",
        lambda t: ["image", "--tracer", "I-125", "--times", "1"],
        "`--tracer I-125`",
        "nuclear",
        "optical images need",
        outputs=(("--out", "image.png"),),
    ),
    case(
        "population-negative-cv",
        lambda t: ["population", "--n", "4", "--t-end", "1", "--cv", "liver_uptake_vascular_per_h=-0.3"],
        "liver_uptake_vascular_per_h",
        "-0.3",
        "must be > 0",
    ),
    case(
        "population-correlation-shape",
        lambda t: [
            "population",
            "--n",
            "4",
            "--t-end",
            "1",
            "--cv",
            "liver_uptake_vascular_per_h=0.3",
            "--correlation",
            write(t, "corr.csv", "1,0.5\n0.5,1\n"),
        ],
        "`correlation`",
        "1x1",
        "(2, 2)",
    ),
    case(
        "fit-unknown-parameter",
        lambda t: ["fit", "--params", "liver_uptake", data(t, "1,liver,percent_id,5,%ID")],
        "'liver_uptake'",
        "`--params`",
        outputs=FIT_OUTPUTS,
    ),
    case(
        "fit-profile-not-fitted",
        lambda t: [*FIT, "--profile", "spleen_uptake_vascular_per_h", data(t, "1,liver,percent_id,5,%ID")],
        "`--profile spleen_uptake_vascular_per_h`",
        "not among --params",
        outputs=FIT_OUTPUTS,
    ),
    case(
        # found by the catalogue: the repeat was dropped silently and the fit ran
        "fit-parameter-twice",
        lambda t: [
            "fit",
            "--params",
            "liver_uptake_vascular_per_h,liver_uptake_vascular_per_h",
            data(t, "1,liver,percent_id,5,%ID"),
        ],
        "'liver_uptake_vascular_per_h'",
        "twice",
        outputs=FIT_OUTPUTS,
    ),
    case(
        "sensitivity-unknown-output",
        lambda t: ["sensitivity", "--no-sobol", "--t-end", "1", "--outputs", "heart_auc"],
        "'heart_auc'",
        "`--outputs`",
        "expected <organ>_<metric>",
        outputs=(("--sobol-out", "sobol.csv"),),
    ),
    case(
        "compare-route-twice",
        lambda t: ["compare", "--t-end", "1", "--routes", "iv_bolus,iv_bolus"],
        "`--routes`",
        "'iv_bolus,iv_bolus'",
        "twice",
    ),
    case(
        "dataset-unknown",
        lambda t: ["datasets", "show", "lai2014"],
        "'lai2014'",
        "expected one of",
        outputs=(),
    ),
    case(
        "export-sbml-species-not-utf8",
        lambda t: ["export-sbml", "--species", write(t, "species.toml", NON_UTF8_TOML)],
        "species.toml",
        "not UTF-8 text at byte 19",
        outputs=(("--out", "model.xml"),),
    ),
]


def _snapshot(folder: Path) -> dict[str, bytes | None]:
    return {
        str(p.relative_to(folder)): (p.read_bytes() if p.is_file() and p.stat().st_size < 2**20 else None)
        for p in sorted(folder.rglob("*"))
    }


def test_catalogue_is_large_and_unique():
    for cases in (CLI_CASES, API_CASES):
        ids = [c.id for c in cases]
        assert len(ids) == len(set(ids))
    assert len(CLI_CASES) + len(API_CASES) >= 60


@pytest.mark.parametrize("bad", CLI_CASES, ids=lambda c: c.id)
def test_cli_refuses_bad_input_with_one_line(bad: CLICase, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # any default output would land here, where the snapshot sees it
    argv = bad.argv(tmp_path)
    for flag, name in bad.outputs:
        (tmp_path / name).write_bytes(EXISTING)
        argv += [flag, str(tmp_path / name)]
    before = _snapshot(tmp_path)

    status = main(argv)

    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert status != 0
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("exopk: error: "), lines[0]
    assert "Traceback" not in captured.err + captured.out
    for mention in bad.mentions:
        assert mention in lines[0], f"{mention!r} not in: {lines[0]}"
    assert _snapshot(tmp_path) == before  # nothing created, nothing changed
    for _, name in bad.outputs:
        assert (tmp_path / name).read_bytes() == EXISTING


@pytest.mark.parametrize(
    ("argv", "mention"),
    [
        (["simulate", "--species", "species.toml"], "not UTF-8 text at byte 19"),
        (["simulate", "--regimen", "regimen.csv"], "more fields than the header"),
        (["simulate", "--organs", "heart"], "unknown organ 'heart'"),
    ],
)
def test_no_traceback_reaches_the_terminal(argv, mention, tmp_path):
    """The installed entry point (``python -m exopk``), not only ``main()``, prints one line."""
    write(tmp_path, "species.toml", NON_UTF8_TOML)
    write(tmp_path, "regimen.csv", "time_h,route,dose_particles\n0,iv_bolus,1e10,1\n")
    proc = subprocess.run(
        [sys.executable, "-m", "exopk", *argv, "--t-end", "1", "--dt", "0.5", "--out", "out.csv"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=120,
    )
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.splitlines()) == 1, proc.stderr
    assert mention in proc.stderr
    assert not (tmp_path / "out.csv").exists()


# --- the Python API catalogue ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def params():
    return exopk.load_parameters()


BOLUS = exopk.IVBolus(dose_particles=1e10)
GOOD_DATA = pd.DataFrame({"time_h": [1.0], "organ": ["liver"], "quantity": ["percent_id"], "value": [50.0]}).assign(
    unit="%ID"
)


@dataclass(frozen=True)
class APICase:
    id: str
    call: Callable  # (params, tmp_path) -> anything; must raise
    error: type[Exception]
    mentions: tuple[str, ...] = field(default=())


def api(id, call, error, *mentions):
    return APICase(id, call, error, tuple(mentions))


API_CASES = [
    api("t-nan", lambda p, t: exopk.simulate(p, BOLUS, [0, np.nan]), exopk.InputError, "`t_h`", "nan", "finite"),
    api(
        "t-negative", lambda p, t: exopk.simulate(p, BOLUS, [-1, 0]), exopk.InputError, "`t_h`", "-1.0", "non-negative"
    ),
    api(
        "t-unsorted",
        lambda p, t: exopk.simulate(p, BOLUS, [0, 2, 1]),
        exopk.InputError,
        "`t_h`",
        "2.0 then 1.0",
        "strictly increasing",
    ),
    api("t-duplicate", lambda p, t: exopk.simulate(p, BOLUS, [0, 1, 1]), exopk.InputError, "1.0 then 1.0"),
    api("t-2d", lambda p, t: exopk.simulate(p, BOLUS, [[0, 1]]), exopk.InputError, "`t_h`", "(1, 2)", "1-D"),
    api("t-empty", lambda p, t: exopk.simulate(p, BOLUS, []), exopk.InputError, "`t_h`", "(0,)", "non-empty"),
    api("t-text", lambda p, t: exopk.simulate(p, BOLUS, "0,1,2"), exopk.InputError, "`t_h`", "'0,1,2'", "array"),
    api("t-none", lambda p, t: exopk.simulate(p, BOLUS, None), exopk.InputError, "`t_h`", "None", "array"),
    api("dose-negative", lambda p, t: exopk.IVBolus(dose_particles=-1), exopk.DosingError, "`dose_particles`", "-1"),
    api("dose-nan", lambda p, t: exopk.IVBolus(dose_particles=float("nan")), exopk.DosingError, "nan", "finite"),
    api("dose-text", lambda p, t: exopk.IVBolus(dose_particles="1e10"), exopk.DosingError, "'1e10'", "a number"),
    api("dose-bool", lambda p, t: exopk.IVBolus(dose_particles=True), exopk.DosingError, "True", "a number"),
    api("dose-time-inf", lambda p, t: exopk.IVBolus(dose_particles=1e10, t_h=np.inf), exopk.DosingError, "`t_h`"),
    api(
        "infusion-zero-duration",
        lambda p, t: exopk.IVInfusion(dose_particles=1e10, duration_h=0),
        exopk.DosingError,
        "`duration_h`",
        "0",
        "positive",
    ),
    api(
        "local-unknown-space",
        lambda p, t: exopk.LocalInjection(dose_particles=1e10, organ="kidney", space="blood"),
        exopk.DosingError,
        "`space`",
        "'blood'",
        "vascular, tissue",
    ),
    api("regimen-of-ints", lambda p, t: exopk.Regimen([1]), exopk.DosingError, "entry 0", "int", "must be a dose"),
    api("regimen-empty", lambda p, t: exopk.simulate(p, [], [0, 1]), exopk.DosingError, "`regimen`", "no doses"),
    api(
        "regimen-from-text",
        lambda p, t: exopk.Regimen.from_frame("time_h,route\n0,iv_bolus"),
        exopk.DosingError,
        "DataFrame",
        "str",
    ),
    api(
        "regimen-csv-not-utf8",
        lambda p, t: exopk.Regimen.from_csv(write(t, "r.csv", latin1("time_h,route,dose_particles # é\n"))),
        exopk.DosingError,
        "r.csv",
        "not UTF-8 text at byte 30",
    ),
    api("zero-total-dose", lambda p, t: exopk.simulate(p, exopk.IVBolus(dose_particles=0), [0, 1]), exopk.DosingError),
    api("params-not-params", lambda p, t: exopk.simulate({}, BOLUS, [0, 1]), exopk.InputError, "`params`", "dict"),
    api("method-unknown", lambda p, t: exopk.simulate(p, BOLUS, [0, 1], method="euler"), exopk.InputError, "'euler'"),
    api(
        "method-exact-nonlinear",
        lambda p, t: exopk.simulate(p.replace(liver_capacity_particles=1e12), BOLUS, [0, 1], method="exact"),
        exopk.InputError,
        "needs the linear model",
    ),
    api(
        "result-unknown-organ",
        lambda p, t: exopk.simulate(p, BOLUS, [0, 1]).percent_id("heart"),
        exopk.InputError,
        "'heart'",
        "expected one of: blood",
    ),
    api(
        "result-unknown-pathway",
        lambda p, t: exopk.simulate(p, BOLUS, [0, 1]).eliminated("sweat"),
        exopk.InputError,
        "'sweat'",
        "expected one of",
    ),
    api("replace-unknown", lambda p, t: p.replace(liver_uptake=1.0), exopk.ParameterError, "'liver_uptake'"),
    api(
        "replace-negative",
        lambda p, t: p.replace(liver_uptake_vascular_per_h=-1.0),
        exopk.ParameterError,
        "`liver_uptake_vascular_per_h`",
        "-1.0",
        "non-negative",
    ),
    api(
        "replace-text",
        lambda p, t: p.replace(liver_uptake_vascular_per_h="fast"),
        exopk.ParameterError,
        "'fast'",
        "a number",
    ),
    api("load-unknown-species", lambda p, t: exopk.load_parameters("dog"), exopk.ParameterError, "'dog'", "expected"),
    api(
        "load-species-not-utf8",
        lambda p, t: exopk.load_parameters(write(t, "s.toml", NON_UTF8_TOML)),
        exopk.ParameterError,
        "s.toml",
        "not UTF-8 text at byte 19",
    ),
    api("load-label-unknown", lambda p, t: exopk.observe.load_label("Xe-133"), exopk.ParameterError, "'Xe-133'"),
    api(
        "load-label-not-utf8",
        lambda p, t: exopk.observe.load_label(write(t, "l.toml", b'[metadata]\nlabel = "D\xefR"\n')),
        exopk.ParameterError,
        "l.toml",
        "not UTF-8 text at byte 21 (line 2, byte 0xef)",
    ),
    api(
        "load-imaging-not-utf8",
        lambda p, t: exopk.observe.load_imaging(write(t, "i.toml", b"\xfe")),
        exopk.ParameterError,
        "i.toml",
        "not UTF-8 text at byte 0",
    ),
    api(
        "load-scenario-not-utf8",
        lambda p, t: exopk.model.load_scenario(write(t, "sc.toml", b"[changes]\n\xc3\x28\n")),
        exopk.ParameterError,
        "sc.toml",
        "not UTF-8 text at byte 10",
    ),
    api(
        "read-observations-directory",
        lambda p, t: exopk.datasets.read_observations(t),
        exopk.DataError,
        "is a directory",
        "expected a file",
    ),
    api(
        "read-observations-not-utf8",
        lambda p, t: exopk.datasets.read_observations(
            write(t, "d.csv", latin1(f"{DATA_HEADER}\n1,liver,percent_id,5,%ID # ±\n"))
        ),
        exopk.DataError,
        "d.csv",
        "not UTF-8 text at byte",
    ),
    api("dataset-unknown", lambda p, t: exopk.io.load_dataset("lai2014"), exopk.DataError, "'lai2014'", "expected"),
    api(
        "nca-unsorted",
        lambda p, t: exopk.analysis.nca([0, 2, 1], [1.0, 0.5, 0.7]),
        exopk.NCAError,
        "`t_h`",
        "strictly increasing",
    ),
    api(
        "nca-length-mismatch",
        lambda p, t: exopk.analysis.nca([0, 1, 2], [1.0, 0.5]),
        exopk.NCAError,
        "`conc`",
        "(2,)",
        "n_times = 3",
    ),
    api(
        "nca-negative-dose",
        lambda p, t: exopk.analysis.nca([0, 1, 2], [1, 0.7, 0.5], dose=-1),
        exopk.NCAError,
        "`dose`",
        "-1",
    ),
    api(
        "fit-unknown-parameter",
        lambda p, t: exopk.analysis.fit(p, BOLUS, GOOD_DATA, ["liver_uptake"]),
        exopk.FitError,
        "'liver_uptake'",
    ),
    api(
        "fit-data-not-a-frame",
        lambda p, t: exopk.analysis.fit(p, BOLUS, "data.csv", ["liver_uptake_vascular_per_h"]),
        exopk.DataError,
        "DataFrame",
        "str",
    ),
    api(
        "population-negative-cv",
        lambda p, t: exopk.analysis.sample_population(p, 10, {"liver_uptake_vascular_per_h": -0.3}),
        exopk.PopulationError,
        "-0.3",
        "> 0",
    ),
    api(
        "population-zero-subjects",
        lambda p, t: exopk.analysis.sample_population(p, 0, {"liver_uptake_vascular_per_h": 0.3}),
        exopk.PopulationError,
        "`n_subjects`",
        "0",
        "positive integer",
    ),
    api(
        "population-not-sampled",
        lambda p, t: exopk.analysis.simulate_population(p, BOLUS, [0, 1]),
        exopk.PopulationError,
        "`population`",
        "ModelParameters",
    ),
    api(
        "batch-zero-workers",
        lambda p, t: exopk.simulate_batch(p, BOLUS, [0, 1], {"liver_uptake_vascular_per_h": [1.0]}, workers=0),
        exopk.InputError,
        "`workers`",
        "0",
        "positive integer",
    ),
    api(
        "batch-unknown-parameter",
        lambda p, t: exopk.simulate_batch(p, BOLUS, [0, 1], {"liver_uptake": [1.0]}),
        exopk.ParameterError,
        "'liver_uptake'",
    ),
    api(
        "executor-wrong-kind",
        lambda p, t: exopk.analysis.simulate_population(
            exopk.analysis.sample_population(p, 2, {"liver_uptake_vascular_per_h": 0.3}),
            BOLUS,
            [0, 1],
            executor="threads",
        ),
        exopk.ExecutorError,
        "`executor`",
        "str",
    ),
    api(
        "sobol-n-not-power-of-two",
        lambda p, t: exopk.analysis.sobol_sensitivity(p, BOLUS, [0, 1], ["liver_uptake_vascular_per_h"], n=3),
        exopk.SensitivityError,
        "`n`",
        "3",
        "power of 2",
    ),
    api(
        "compare-route-twice",
        lambda p, t: exopk.analysis.compare_routes(p, ["iv_bolus", "iv_bolus"], 1e10, [0, 1]),
        exopk.InputError,
        "'iv_bolus'",
        "twice",
    ),
    api(
        "t-beyond-114-years",
        lambda p, t: exopk.simulate(p, BOLUS, [0.0, 1e300]),
        exopk.InputError,
        "`t_h` ends at 1e+300 h",
        "expected at most 1e+06 h",
    ),
    api(
        "auc-to-time-beyond-114-years",
        lambda p, t: exopk.analysis.auc_to_time(p, BOLUS, 1e300),
        exopk.InputError,
        "`t_end_h`",
        "1e+300",
        "expected at most 1e+06 h",
    ),
    api(
        "infusion-rate-overflows",
        lambda p, t: exopk.IVInfusion(dose_particles=1e10, duration_h=1e-300),
        exopk.DosingError,
        "`dose_particles` / `duration_h`",
        "1e-300",
        "expected a finite infusion rate",
    ),
    api(
        "scenarios-not-names",
        lambda p, t: exopk.load_parameters(scenarios=5),
        exopk.ParameterError,
        "`scenarios`",
        "5",
        "scenario name or path",
    ),
    api(
        "scale-dose-negative",
        lambda p, t: exopk.model.scale_dose(-1.0, "mouse", "human"),
        exopk.ParameterError,
        "`dose_particles`",
        "-1",
    ),
]


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
def test_an_overflowing_batch_is_a_simulation_error_not_nan(params):
    # Regression test for #12 (catalogue): a rate of 1e30 /h gave NaN %ID, which passed the
    # mass-balance self-check (NaN > limit is False) and reached the user as an answer.
    with pytest.raises(exopk.SimulationError, match=r"solution is not finite \(an overflow\).*1e\+30"):
        exopk.simulate_batch(params, BOLUS, [0.0, 1.0], {"liver_uptake_vascular_per_h": [1.0, 1e30]})


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
@pytest.mark.parametrize("population", ["single", "mixture"])
def test_an_overflowing_single_simulation_is_answered_by_the_stiff_solver_or_refused(params, population):
    """The same rate in one simulation: exact and expm overflow (never returned as NaN), and the
    driver's last fallback, the stiff ODE, answers with mass conserved; the metadata says so.

    The default EVs are a mixture, solved as one block-diagonal system; there the eigenvectors
    (one rate 1e30, the stealth part's 1e24) are too ill-conditioned for the exact solver, which
    declines before it computes anything."""
    model = params.single() if population == "single" else params
    result = exopk.simulate(model.replace(liver_uptake_vascular_per_h=1e30), BOLUS, [0.0, 1.0])

    attempts = result.metadata["solver_attempts"]
    assert [a["method"] for a in attempts] == ["exact", "expm", "ode"]
    # exact either overflows (inf) or declines on the eigenvector condition (no answer: NaN);
    # which one depends on the other rates (measured: both occur), never a returned answer
    assert not np.isfinite(attempts[0]["mass_balance_error"])
    assert attempts[1]["mass_balance_error"] == np.inf
    assert result.method == "ode" and attempts[2]["mass_balance_error"] <= 1e-10
    assert np.all(np.isfinite(result.amounts_particles))


@pytest.mark.parametrize("bad", API_CASES, ids=lambda c: c.id)
def test_api_raises_the_documented_error(bad: APICase, params, tmp_path):
    with pytest.raises(exopk.ExopkError) as info:
        bad.call(params, tmp_path)

    assert type(info.value) is bad.error, f"{type(info.value).__name__}: {info.value}"
    assert isinstance(info.value, ValueError)  # every catalogued case is an input error
    message = str(info.value)
    assert "\n" not in message
    for mention in bad.mentions:
        assert mention in message, f"{mention!r} not in: {message}"
