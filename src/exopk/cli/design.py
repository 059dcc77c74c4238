"""``exopk design``: the dose and interval that keep an organ's steady-state exposure in a window."""

from __future__ import annotations

import argparse
from pathlib import Path

from exopk.cli import _common as c
from exopk.cli._outputs import Outputs

NAME = "design"


def add_parser(commands) -> argparse.ArgumentParser:
    """``exopk design``: dose and interval keeping an organ's steady-state exposure in a window."""
    from exopk.analysis.design import DEFAULT_INTERVALS_H, DESIGN_QUANTITIES
    from exopk.dosing import ROUTES

    cmd = commands.add_parser(
        NAME,
        help="find the dose and interval that keep an organ's steady-state exposure inside a window",
        description="Design a regimen: for each candidate interval, the periodic steady state of the dose, its "
        "trough and peak in --organ, and the doses that keep both in [--low, --high]. Recommends the longest "
        "feasible interval. %ID windows select the interval only (%ID does not depend on the dose).",
    )
    c.add_model_arguments(cmd)
    dosing = cmd.add_argument_group("dose")
    dosing.add_argument("--route", choices=[r for r in ROUTES if r != "iv_infusion"], default="iv_bolus")
    dosing.add_argument("--dose", type=c.positive_float("--dose"), default=1e10, help="dose to start from (particles)")
    dosing.add_argument("--duration", type=c.positive_float("--duration"), help="give the dose as an infusion (h)")
    dosing.add_argument("--site", help="target of --route local: <organ>_<vascular|tissue>")
    c.add_nasal_volume_arguments(dosing)
    target = cmd.add_argument_group("target")
    target.add_argument("--organ", required=True, help="organ whose exposure is kept in the window (e.g. kidney)")
    target.add_argument("--low", type=c.positive_float("--low"), required=True, help="lowest acceptable trough")
    target.add_argument("--high", type=c.positive_float("--high"), required=True, help="highest acceptable peak")
    target.add_argument("--quantity", choices=tuple(DESIGN_QUANTITIES), default="amount_particles")
    target.add_argument("--tissue", action="store_true", help="intact EVs outside the organ's blood only")
    target.add_argument("--tracer", help="keep a label's signal in the window (e.g. DiR) instead of intact EVs")
    target.add_argument(
        "--intervals",
        default=",".join(f"{v:g}" for v in DEFAULT_INTERVALS_H),
        help="candidate intervals (h), comma-separated (default: %(default)s)",
    )
    out = cmd.add_argument_group("output")
    out.add_argument("--out", type=Path, help="CSV of the candidates")
    out.add_argument(
        "--plot", type=Path, help="figure of the steady-state curve and the window (format from extension)"
    )
    return cmd


def run(args) -> int:
    from exopk.analysis.design import design_regimen

    try:
        intervals = [float(x) for x in args.intervals.split(",") if x.strip()]
    except ValueError:
        raise c.UsageError(f"`--intervals` must be comma-separated hours; got {args.intervals!r}") from None
    outputs = Outputs([(args.out, "--out", "csv"), (args.plot, "--plot", "figure")])
    params = c.load(args)
    for name in ("rate", "per_kg", "lag", "bioavailability", "every", "n_doses", "ss"):
        setattr(args, name, None)
    if args.route == "local" and args.site is None:
        raise c.UsageError("route local needs `--site <organ>_<vascular|tissue>`, e.g. kidney_vascular")
    volume = getattr(args, "nasal_volume_ul", None)
    if args.route == "intranasal" and volume is not None:
        from exopk.dosing import Intranasal

        dose = Intranasal.from_volume(args.dose, volume, anaesthetised=args.anaesthetised)
    else:
        dose = c.single_dose(args.route, args.dose, args)
    design = design_regimen(
        params,
        dose,
        args.organ,
        args.low,
        args.high,
        quantity=args.quantity,
        intervals_h=intervals,
        label=args.tracer,
        extravascular=args.tissue,
    )
    with outputs:
        if outputs.wants("--out"):
            table = design.candidates.copy()
            table.insert(0, "unit", design.unit)
            outputs.frame("--out", table)
        if outputs.wants("--plot"):
            import matplotlib

            matplotlib.use("Agg")
            from exopk.plots.design import plot_regimen_design

            outputs.figure("--plot", plot_regimen_design(design))
    lines = [
        f"exopk design: {params.species} / {params.ev}, {dose.route}, {design.organ} {design.quantity} "
        f"({design.measure}) in [{design.low:g}, {design.high:g}] {design.unit} at steady state",
        f"{'interval (h)':>12s} {'trough':>11s} {'peak':>11s} {'dose min':>11s} {'dose max':>11s}  feasible",
    ]
    for row in design.candidates.itertuples(index=False):
        lines.append(
            f"{row.interval_h:12g} {row.trough:11.4g} {row.peak:11.4g} {row.dose_min_particles:11.4g} "
            f"{row.dose_max_particles:11.4g}  {'yes' if row.feasible else 'no'}"
        )
    lines.append(design.summary())
    lines += outputs.written((("--out", "table"), ("--plot", "plot")))
    print("\n".join(lines), file=outputs.messages)
    return 0
