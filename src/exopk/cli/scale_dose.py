"""``exopk scale-dose``: a dose re-expressed for another species, with what each rule assumes."""

from __future__ import annotations

import argparse

from exopk.cli import _common as c

NAME = "scale-dose"


def add_parser(commands) -> argparse.ArgumentParser:
    scale = commands.add_parser(
        NAME,
        help="re-express a dose for another species (per kg and by body surface area), with the assumptions",
        description="Scale a dose in particles from one species to another: per kg of body weight and by body "
        "surface area (FDA 2005 Km factors). Prints both, and what each assumes.",
    )
    scale.add_argument("--dose", required=True, type=c.positive_float("--dose"), help="dose in particles per animal")
    scale.add_argument("--from", dest="from_species", default="mouse", help="species dosed (default: mouse)")
    scale.add_argument("--to", dest="to_species", default="human", help="species to scale to (default: human)")
    scale.add_argument(
        "--from-weight-g", type=c.positive_float("--from-weight-g"), help="body weight of the dosed animal (g)"
    )
    scale.add_argument("--to-weight-g", type=c.positive_float("--to-weight-g"), help="body weight to scale to (g)")
    return scale


def run(args) -> int:
    from exopk.model.allometry import scale_dose

    c.check_bundled_name("species", args.from_species, "--from")
    c.check_bundled_name("species", args.to_species, "--to")
    scaled = scale_dose(
        args.dose,
        args.from_species,
        args.to_species,
        from_body_weight_g=args.from_weight_g,
        to_body_weight_g=args.to_weight_g,
    )
    print(scaled.summary())
    return 0
