"""``exopk nca``: non-compartmental analysis of concentration-time data in a CSV."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from exopk.cli import _common as c
from exopk.cli._outputs import Outputs
from exopk.errors import ExopkError

NAME = "nca"


def add_parser(commands) -> argparse.ArgumentParser:
    nca = commands.add_parser(
        NAME,
        help="non-compartmental analysis of concentration-time data in a CSV",
        description=(
            "NCA per group of rows (e.g. per organ, or per subject): Cmax, Tmax, C0 (IV bolus; back-extrapolated "
            "when there is no sample at t = 0), AUC (linear-up/log-down or linear), lambda_z (adjusted R2 rule "
            "of PKNCA/Phoenix), AUC0-inf, half-life, MRT, and for blood or plasma concentrations with --dose: "
            "CL, Vss, Vz (or CL/F, Vz/F with --extravascular), in the concentration's volume unit. "
            "Reads tidy CSVs such as `exopk simulate --out`. With --sparse: one sample per animal, "
            "NCA of the mean profile with Bailer's standard error of AUC."
        ),
    )
    nca.add_argument("csv", type=Path, help="input CSV")
    nca.add_argument("--time-column", default="time_h", help="time column, in hours (default: time_h)")
    nca.add_argument("--value-column", default="value", help="concentration column (default: value)")
    nca.add_argument(
        "--group-by", type=c.comma_list, help="columns that identify a curve (default: organ, subject, id)"
    )
    nca.add_argument("--quantity", help="keep only rows with this `quantity` (e.g. percent_id)")
    nca.add_argument("--organs", type=c.comma_list, help="keep only these organs (rows of an `organ` column)")
    nca.add_argument("--unit", help="concentration unit when the CSV has no `unit` column")
    nca.add_argument("--dose", type=c.positive_float("--dose"), help="dose, in the amount unit of the concentration")
    nca.add_argument("--dose-unit", help="unit of --dose (e.g. particles, %%ID)")
    nca.add_argument("--infusion-h", type=c.non_negative_float("--infusion-h"), default=0.0, help="infusion time (h)")
    nca.add_argument("--extravascular", action="store_true", help="the dose is not intravascular: CL/F, Vz/F")
    nca.add_argument(
        "--auc-method", choices=("linear-up/log-down", "linear"), default="linear-up/log-down", help="trapezoid rule"
    )
    nca.add_argument(
        "--lambda-z-rule",
        choices=("pknca", "winnonlin"),
        default="pknca",
        help="pknca: lambda_z fit strictly after Tmax (default); winnonlin: Tmax may enter after an IV bolus",
    )
    nca.add_argument(
        "--blq",
        choices=("zero", "drop", "zero-before-tmax", "loq/2"),
        default="zero",
        help="samples below --loq (or zero): set to 0 (default), drop, 0 before Tmax and dropped after, or LOQ/2",
    )
    nca.add_argument("--loq", type=c.positive_float("--loq"), help="limit of quantification, in the concentration unit")
    nca.add_argument("--no-c0", action="store_true", help="IV bolus: do not back-extrapolate C0 to t = 0")
    nca.add_argument("--sparse", action="store_true", help="destructive sampling: one row per animal")
    nca.add_argument(
        "--out",
        type=Path,
        help="CSV of results: group columns, parameter, value, unit (default, or `-`: standard output)",
    )
    return nca


def run(args) -> int:
    import numpy as np
    import pandas as pd

    from exopk.analysis.nca import (
        DOSE_PARAMETERS,
        NCA_PARAMETERS,
        dose_in_concentration_amount,
        nca,
        nca_units,
        sparse_nca,
    )

    outputs = Outputs([(args.out, "--out", "csv")])
    if not args.csv.exists():  # a directory or FIFO is named as such by the reader
        raise c.UsageError(f"input file {str(args.csv)!r} does not exist")
    from exopk.errors import DataError
    from exopk.model.files import read_csv

    table = read_csv(args.csv, "input file", error=DataError, comment="#")
    for column, flag in ((args.time_column, "--time-column"), (args.value_column, "--value-column")):
        if column not in table.columns:
            raise c.UsageError(
                f"{args.csv}: no column {column!r} (`{flag}`); columns: {', '.join(map(str, table.columns))}"
            )
    if args.quantity is not None:
        if "quantity" not in table.columns:
            raise c.UsageError(f"`--quantity` given but {args.csv} has no `quantity` column")
        table = table[table["quantity"] == args.quantity]
        if table.empty:
            raise c.UsageError(f"`--quantity` {args.quantity!r}: no rows in {args.csv}")
    if args.organs is not None:
        if "organ" not in table.columns:
            raise c.UsageError(f"`--organs` given but {args.csv} has no `organ` column")
        table = table[table["organ"].isin(args.organs)]
        if table.empty:
            raise c.UsageError(f"`--organs` {','.join(args.organs)}: no rows in {args.csv}")
    if args.group_by is not None:
        groups = args.group_by
        for column in groups:
            if column not in table.columns:
                raise c.UsageError(f"`--group-by`: no column {column!r} in {args.csv}")
    else:
        groups = [col for col in ("organ", "quantity", "subject", "id") if col in table.columns]
        if args.sparse:
            groups = [col for col in groups if col not in ("subject", "id")]
        if "quantity" in groups and table["quantity"].nunique() == 1:
            groups.remove("quantity")
    for column in (args.time_column, args.value_column):
        if not pd.api.types.is_numeric_dtype(table[column]):
            raise ExopkError(f"{args.csv}: column {column!r} must be numeric")
    rows = []
    grouped = table.groupby(groups, sort=False) if groups else [((), table)]
    dose_unit = args.dose_unit or ("particles" if args.dose is not None else None)
    bolus = not args.extravascular and args.infusion_h == 0.0
    if (args.blq == "loq/2") and args.loq is None:
        raise c.UsageError("`--blq loq/2` needs `--loq`, the limit of quantification")
    for key, group in grouped:
        key = key if isinstance(key, tuple) else (key,)
        label = dict(zip(groups, key, strict=True))
        where = ", ".join(f"{k}={v}" for k, v in label.items()) or "all rows"
        if "unit" in group.columns and group["unit"].nunique() == 1:
            unit = str(group["unit"].iloc[0])
        elif "unit" in group.columns:
            raise ExopkError(f"{args.csv} ({where}): several units in one curve; group or filter by quantity")
        else:
            unit = args.unit or "C"
        # CL and volumes only for a concentration (amount/volume) in blood or plasma: not for organ curves.
        organ = str(label.get("organ", "blood"))
        systemic = organ in ("blood", "plasma", "serum") and "/" in unit
        dose = None
        if args.dose is not None and not systemic:
            why = f"organ {organ!r} is not blood or plasma" if "/" in unit else f"unit {unit!r} is not amount/volume"
            print(f"note ({where}): no CL or volumes: {why}", file=sys.stderr)
        elif args.dose is not None:
            try:
                dose = dose_in_concentration_amount(args.dose, str(dose_unit), unit)
            except ExopkError as err:
                raise c.UsageError(f"`--dose-unit` {dose_unit!r}: {err}") from None
        units = nca_units(unit, dose_unit if dose is not None else None)
        shown = [
            name
            for name in NCA_PARAMETERS
            if (name not in DOSE_PARAMETERS or dose is not None)
            and (name not in ("cl", "vss", "vz") or not args.extravascular)
            and (name not in ("cl_f", "vz_f") or args.extravascular)
            and (name not in ("c0", "c0_back_extrapolated", "auc_back_extrapolated_percent") or bolus and systemic)
        ]
        order = group.sort_values(args.time_column)
        t = order[args.time_column].to_numpy(dtype=float)
        conc = order[args.value_column].to_numpy(dtype=float)
        options = {
            "dose": dose,
            "infusion_h": args.infusion_h,
            "intravascular": not args.extravascular,
            "systemic": systemic,
            "auc_method": args.auc_method,
            "lambda_z_rule": args.lambda_z_rule,
        }
        try:
            if args.sparse:
                sparse = sparse_nca(t, conc, **options)
                result = sparse.profile
                extra = [
                    ("auc_0_tlast_linear_mean", sparse.auc_0_tlast, units["auc_0_tlast"]),
                    ("auc_0_tlast_se_bailer", sparse.auc_se, units["auc_0_tlast"]),
                ]
            else:
                if np.unique(t).size != t.size:
                    raise ExopkError(
                        "repeated times in one curve; add --group-by, or --sparse for one sample per animal"
                    )
                result = nca(
                    t, conc, **options, blq=args.blq, loq=args.loq, back_extrapolate_c0=not args.no_c0
                )  # fmt: skip
                extra = []
        except ExopkError as err:
            raise ExopkError(f"{args.csv} ({where}): {err}") from None
        for note in result.metadata.get("notes", ()):
            print(f"note ({where}): {note}", file=sys.stderr)
        for name in shown:
            rows.append({**label, "parameter": name, "value": float(getattr(result, name)[0]), "unit": units[name]})
        for name, value, u in extra:
            rows.append({**label, "parameter": name, "value": value, "unit": u})
    frame = pd.DataFrame(rows)
    if outputs.wants("--out") and str(args.out) != "-":
        with outputs:
            outputs.frame("--out", frame, float_format="%.8g")
        print(f"wrote {len(frame)} rows: {args.out}")
    else:
        frame.to_csv(sys.stdout, index=False, float_format="%.6g")
    return 0
