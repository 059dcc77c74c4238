"""``exopk datasets``: the literature datasets shipped with exopk, with their provenance."""

from __future__ import annotations

import argparse

from exopk.cli import _common as c

NAME = "datasets"


def add_parser(commands) -> argparse.ArgumentParser:
    data = commands.add_parser(NAME, help="literature datasets shipped with exopk (with provenance)")
    actions = data.add_subparsers(dest="datasets_command", metavar="ACTION", parser_class=c.Parser)
    actions.required = True
    actions.add_parser("list", help="list the datasets: name, species, route, label, citation")
    show = actions.add_parser("show", help="print one dataset: provenance header and observations")
    show.add_argument("name", help="dataset name (see `exopk datasets list`)")
    show.add_argument("--csv", action="store_true", help="print the observations as CSV (no header)")
    return data


def run(args) -> int:
    from exopk.io.datasets import list_datasets, load_dataset

    if args.datasets_command == "list":
        for name in list_datasets():
            meta = load_dataset(name).metadata
            print(f"{name:40s} {meta['species']:6s} {meta['route']:11s} label {meta['label']:8s} {meta['citation']}")
        return 0
    if args.name not in list_datasets():
        raise c.UsageError(f"unknown dataset {args.name!r}; expected one of: {', '.join(list_datasets())}")
    dataset = load_dataset(args.name)
    if args.csv:
        print(dataset.data.to_csv(index=False), end="")
    else:
        print(dataset.describe())
    return 0
