"""``exopk params``: the bundled parameter files, and the resolved parameters with units and sources."""

from __future__ import annotations

import argparse
import sys

from exopk.cli import _common as c

NAME = "params"


def add_parser(commands) -> argparse.ArgumentParser:
    params = commands.add_parser(NAME, help="parameter sets")
    actions = params.add_subparsers(dest="params_command", metavar="ACTION", parser_class=c.Parser)
    actions.required = True
    show = actions.add_parser("show", help="print the resolved parameters with units and sources")
    c.add_model_arguments(show)
    show.add_argument("--csv", action="store_true", help="print CSV instead of a text table")
    actions.add_parser("list", help="list the bundled species, EV and scenario parameter files")
    return params


def run(args) -> int:
    from exopk.model.parameters import available

    if args.params_command == "list":
        print("species:   " + ", ".join(available("species")))
        print("ev:        " + ", ".join(available("ev")))
        print("scenarios: " + ", ".join(available("scenarios")))
        return 0
    params = c.load(args)
    table = params.table()
    if args.csv:
        table.to_csv(sys.stdout, index=False)
        return 0
    print(f"# species {params.species} ({params.files[0]})\n# ev {params.ev} ({params.files[1]})")
    for name, path in zip(params.scenarios, params.files[2:], strict=False):
        print(f"# scenario {name} ({path})")
    if params.extrapolated:
        print(
            f"# ~ marks {len(params.extrapolated)} values extrapolated to {params.species} from another species "
            "(rule in the `extrapolated` column of --csv, exponents and their sources in the EV file's [allometry])"
        )
    for row in table.itertuples(index=False):
        mark = "~" if row.extrapolated else " "
        print(f"{mark} {row.name:40s} {row.value:>12.6g} {row.unit:10s} {row.source}")
    _print_reference(args.species)
    return 0


def _print_reference(species: str) -> None:
    from exopk.model.allometry import species_reference

    reference = {k: v for k, v in species_reference(species).items() if k != "body_weight_g"}
    if reference:
        print("# reference physiology (not used by the model equations)")
        for name, (value, unit, source) in reference.items():
            print(f"  {name:40s} {value:>12.6g} {unit:10s} {source}")
