"""The ``exopk`` command line: one module per command, one dispatch (:func:`main`).

Each command module offers ``NAME``, ``add_parser(subparsers)`` and ``run(args) -> int``.
Errors print one line on stderr (``exopk: error: ...``) and exit with status 2 for usage errors
(bad options or argument values) or 1 for everything else (bad files, failed simulations,
unwritable outputs); never a traceback. Output files are written whole or not at all
(:mod:`exopk.cli._outputs`).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from exopk.cli import (
    app,
    compare,
    datasets,
    design,
    export_sbml,
    fit,
    image,
    nca,
    params,
    population,
    scale_dose,
    sensitivity,
    simulate,
)
from exopk.cli._common import EXIT_FAILURE, EXIT_USAGE, Parser, UsageError, translate_hint
from exopk.errors import ExopkError

__all__ = ["COMMANDS", "build_parser", "main"]

#: The command modules, in the order ``exopk --help`` lists them.
COMMANDS = (
    simulate,
    image,
    compare,
    params,
    scale_dose,
    export_sbml,
    nca,
    population,
    sensitivity,
    datasets,
    fit,
    design,
    app,
)


def build_parser() -> argparse.ArgumentParser:
    """The parser of every command; ``args.run`` is the command's ``run`` and ``args.parser`` its parser."""
    from exopk._version import __version__

    parser = Parser(
        prog="exopk",
        description="Simulate where extracellular vesicles go in the body (physiologically based PK).",
    )
    parser.add_argument("--version", action="version", version=f"exopk {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    commands.required = True
    for module in COMMANDS:
        command = module.add_parser(commands)
        command.set_defaults(run=module.run, parser=command)
    return parser


def _options(parser: argparse.ArgumentParser | None) -> set[str]:
    return set() if parser is None else {s for a in parser._actions for s in a.option_strings}


def _fail(message: str, status: int) -> int:
    print(f"exopk: error: {' '.join(str(message).split())}", file=sys.stderr)
    return status


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = None
    try:
        args = build_parser().parse_args(argv)
        return args.run(args)
    except UsageError as err:
        return _fail(str(err), EXIT_USAGE)
    except ExopkError as err:
        return _fail(translate_hint(str(err), _options(getattr(args, "parser", None))), EXIT_FAILURE)
    except BrokenPipeError:
        # Output piped into a closed reader (e.g. `| head`): stop quietly.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print("exopk: interrupted", file=sys.stderr)
        return 130
    except OSError as err:
        where = f" ({err.filename})" if err.filename else ""
        return _fail(f"{err.strerror or err}{where}", EXIT_FAILURE)
    except ValueError as err:  # input that no check above caught: still one line, never a traceback
        return _fail(str(err), EXIT_FAILURE)
