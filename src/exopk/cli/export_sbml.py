"""``exopk export-sbml``: the model and a dose or regimen as SBML Level 3 (needs exopk[sbml])."""

from __future__ import annotations

import argparse
from pathlib import Path

from exopk.cli import _common as c
from exopk.cli._outputs import Outputs

NAME = "export-sbml"


def add_parser(commands) -> argparse.ArgumentParser:
    export = commands.add_parser(
        NAME,
        help="write the configured model and dose as SBML Level 3 (needs exopk[sbml])",
        description="Export the model (species, EV preparation, overrides) and a dose or regimen to SBML Level 3 "
        "Version 2: amounts in particles, time in hours, volumes in mL, parameters with their sources.",
    )
    c.add_model_arguments(export)
    # The dose options are exactly those of `exopk simulate` (the same add_dosing_arguments), so that
    # options added there for new routes reach this command too.
    c.add_dosing_arguments(export)
    export.add_argument("--out", type=Path, required=True, help="SBML file to write, e.g. model.xml (`-`: stdout)")
    return export


def run(args) -> int:
    from exopk.io.sbml import export_sbml

    outputs = Outputs([(args.out, "--out", "text")])
    params = c.load(args)
    regimen = c.regimen(args)
    with outputs:
        outputs.text("--out", export_sbml(params, regimen))
    print(
        f"exopk: wrote SBML Level 3 Version 2 ({params.species} / {params.ev}, "
        f"{len(regimen.doses)} dose(s), total {regimen.total_particles:.4g} particles): "
        + ("standard output" if str(args.out) == "-" else str(args.out)),
        file=outputs.messages,
    )
    return 0
