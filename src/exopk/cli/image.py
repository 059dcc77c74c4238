"""``exopk image``: simulated whole-body optical images of a labelled-EV dose."""

from __future__ import annotations

import argparse
from pathlib import Path

from exopk.cli import _common as c
from exopk.cli._outputs import Outputs

NAME = "image"


def _times_arg(text: str) -> list[float]:
    parse = c.non_negative_float("--times")
    values = [parse(part.strip()) for part in text.split(",")]
    if not values:
        raise argparse.ArgumentTypeError("`--times` needs at least one time (h)")
    return values


def add_parser(commands) -> argparse.ArgumentParser:
    from exopk.dosing import ROUTES

    image = commands.add_parser(
        NAME,
        help="simulated whole-body optical images of a labelled-EV dose (schematic IVIS-like phantom)",
        description="Simulate a dose of labelled EVs (IV bolus unless --route) and draw the optical signal on a "
        "schematic mouse phantom at the given times (dorsal and ventral views). Needs an optical label "
        "(dye or luciferase).",
    )
    c.add_model_arguments(image)
    image.add_argument("--tracer", type=c.tracer_name, required=True, help="optical label, e.g. DiR, DiD, NanoLuc")
    image.add_argument("--dose", type=c.positive_float("--dose"), default=1e10, help="dose (particles, default 1e10)")
    image.add_argument("--route", choices=ROUTES, default="iv_bolus", help="administration route (default: iv_bolus)")
    image.add_argument("--duration", type=c.positive_float("--duration"), help="infusion duration (h), for iv_infusion")
    image.add_argument("--site", help="target of --route local: <organ>_<vascular|tissue>, e.g. brain_tissue")
    image.add_argument("--times", type=_times_arg, default=[1.0, 24.0, 72.0], help="comma-separated times (h)")
    image.add_argument(
        "--views", choices=("dorsal", "ventral", "both"), default="both", help="which side(s) to image (default both)"
    )
    image.add_argument("--out", type=Path, required=True, help="figure file to write; format from the extension")
    return image


def run(args) -> int:
    import numpy as np

    from exopk.observe.labels import load_label, simulate_label

    outputs = Outputs([(args.out, "--out", "figure")])
    params = c.load(args)
    label = load_label(args.tracer)
    if label.modality != "optical":
        raise c.UsageError(
            f"`--tracer {args.tracer}` is a {label.modality} label; optical images need a dye or luciferase label"
        )
    times = sorted(set(args.times))
    t_h = np.unique(np.concatenate([[0.0], times]))
    c.check_route_options(args, [args.route])
    labelled = simulate_label(params, c.single_dose(args.route, args.dose, args), t_h, label)
    import matplotlib

    matplotlib.use("Agg")
    from exopk.plots.imaging import plot_whole_body

    views = ("dorsal", "ventral") if args.views == "both" else (args.views,)
    with outputs:
        outputs.figure("--out", plot_whole_body(labelled, times, views=views))
    print(f"exopk: {label.name} images, {args.route}, at {', '.join(f'{t:g}' for t in times)} h ({', '.join(views)})")
    print(f"wrote image: {args.out}")
    return 0
