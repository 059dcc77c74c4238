"""``exopk compare``: one dose by several routes; exposure per organ, bioavailability, DTE/DTP."""

from __future__ import annotations

import argparse
from pathlib import Path

from exopk.cli import _common as c
from exopk.cli._outputs import Outputs, clip_round_off

NAME = "compare"


def add_parser(commands) -> argparse.ArgumentParser:
    from exopk.analysis.compare import EXPOSURE_COMPARTMENTS
    from exopk.dosing import ROUTES

    cmp = commands.add_parser(
        NAME,
        help="give the same dose by several routes; exposure per organ, bioavailability, DTE/DTP",
        description=(
            "Simulate one dose by each route; write the curves (tidy CSV with a route column), the "
            "metrics (exact AUCs, bioavailability, brain:blood AUC ratio, DTE % and DTP % against "
            "iv_bolus) and a figure. Brain exposure is brain tissue (extravascular)."
        ),
    )
    c.add_model_arguments(cmp)
    dosing = cmp.add_argument_group("dosing")
    dosing.add_argument(
        "--routes",
        default="iv_bolus,intranasal",
        help=f"comma-separated routes (default: iv_bolus,intranasal); any of: {', '.join(ROUTES)}",
    )
    dosing.add_argument("--dose", type=c.positive_float("--dose"), default=1e10, help="dose per route (default 1e10)")
    dosing.add_argument("--dose-unit", choices=("particles", "ug"), default="particles", help="unit of --dose")
    dosing.add_argument("--particles-per-ug", type=c.positive_float("--particles-per-ug"), help="for --dose-unit ug")
    dosing.add_argument(
        "--duration", type=c.positive_float("--duration"), help="infusion duration (h), for iv_infusion"
    )
    dosing.add_argument("--site", help="target of route local: <organ>_<vascular|tissue>, e.g. kidney_vascular")
    c.add_nasal_volume_arguments(dosing)
    out = cmp.add_argument_group("output")
    c.add_grid_arguments(out, dt_h=0.01)
    out.add_argument(
        "--out", type=Path, help="tidy CSV of the curves: time_h, route, organ, quantity, value, unit (`-`: stdout)"
    )
    out.add_argument(
        "--metrics", type=Path, help="tidy CSV of the metrics: route, organ, quantity, value, unit (`-`: stdout)"
    )
    out.add_argument("--plot", type=Path, help="figure: curves of --organs per route, and AUC per organ and route")
    out.add_argument(
        "--organs",
        default="brain_extravascular,blood",
        help="places to draw as curves (default: brain_extravascular,blood); any of: "
        + ", ".join(EXPOSURE_COMPARTMENTS),
    )
    return cmp


def run(args) -> int:
    from exopk.analysis.compare import EXPOSURE_COMPARTMENTS, compare_routes
    from exopk.dosing import ROUTES

    routes = c.comma_list(args.routes)
    for route in routes:
        if route not in ROUTES:
            raise c.UsageError(f"unknown route {route!r} in `--routes`; expected some of: {', '.join(ROUTES)}")
    if len(set(routes)) != len(routes):
        raise c.UsageError(f"`--routes` lists a route twice: {args.routes!r}")
    c.check_route_options(args, routes)
    organs = c.comma_list(args.organs)
    for organ in organs:
        if organ not in EXPOSURE_COMPARTMENTS:
            raise c.UsageError(
                f"unknown place {organ!r} in `--organs`; expected some of: {', '.join(EXPOSURE_COMPARTMENTS)}"
            )
    t_h = c.time_grid(args, 200_000, "per route")
    outputs = Outputs([(args.out, "--out", "csv"), (args.metrics, "--metrics", "csv"), (args.plot, "--plot", "figure")])
    params = c.load(args)
    dose = c.dose_particles(args)
    doses = [c.single_dose(route, dose, args) for route in routes]
    comparison = compare_routes(params, doses, dose, t_h)
    metrics = comparison.metrics_frame()

    with outputs:
        if outputs.wants("--out"):
            outputs.frame("--out", clip_round_off(comparison.to_frame(), dose))
        if outputs.wants("--metrics"):
            outputs.frame("--metrics", metrics)
        if outputs.wants("--plot"):
            import matplotlib

            matplotlib.use("Agg")
            from exopk.plots.compare import plot_route_comparison

            outputs.figure("--plot", plot_route_comparison(comparison, organs), dpi=110)
    lines = [
        f"exopk compare: {params.species} / {params.ev}, {dose:.4g} particles per route, reference iv_bolus",
        f"{'route':24s}{'F':>8s}{'blood AUC':>12s}{'brain tissue AUC':>18s}{'liver AUC':>12s}"
        f"{'brain:blood':>13s}{'DTE %':>10s}{'DTP %':>9s}",
    ]
    for route in comparison.routes:
        auc = comparison.auc_inf_percent_id_h[route]
        dte = dtp = ""
        if route != comparison.reference:
            target = comparison.targeting(route)
            dte, dtp = f"{target['dte_percent']:.1f}", f"{target['dtp_percent']:.1f}"
        lines.append(
            f"{route:24s}{comparison.bioavailability(route):8.3g}{auc['blood']:12.4g}"
            f"{auc['brain_extravascular']:18.4g}{auc['liver']:12.4g}"
            f"{comparison.brain_to_blood_auc_ratio(route):13.4g}{dte:>10s}{dtp:>9s}"
        )
    lines.append("AUCs are exact, dose to infinity, in %ID·h; F = blood AUC / blood AUC after iv_bolus")
    lines += c.model_notes(params)
    lines += outputs.written((("--out", "curves"), ("--metrics", "metrics"), ("--plot", "plot")))
    print("\n".join(lines), file=outputs.messages)
    return 0
