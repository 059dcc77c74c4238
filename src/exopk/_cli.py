"""The ``exopk`` command line.

Errors print one line on stderr (``exopk: error: ...``) and exit with status 2 for usage
errors (bad options or argument values) or 1 for everything else (bad files, failed
simulations, unwritable outputs). Output files are written whole or not at all: each is
written to a temporary file beside its target and renamed into place only when every output
of the command is complete.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from ._errors import ExopkError

EXIT_FAILURE = 1
EXIT_USAGE = 2


class UsageError(Exception):
    """A command-line argument has an invalid value (exit status 2)."""


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors and exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(message)


def _float_arg(name: str, *, allow_zero: bool):
    """argparse type: a finite number, positive (or non-negative with ``allow_zero``)."""
    rule = "finite and non-negative" if allow_zero else "positive and finite"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"`{name}` must be a number; got {text!r}") from None
        if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
            raise argparse.ArgumentTypeError(f"`{name}` must be {rule}; got {text!r}")
        return value

    return parse


def _positive_float(name: str):
    return _float_arg(name, allow_zero=False)


def _non_negative_float(name: str):
    return _float_arg(name, allow_zero=True)


def _assignment(text: str) -> tuple[str, float]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"`--set` takes NAME=VALUE; got {text!r}")
    try:
        return name.strip(), float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"`--set {name}` needs a number; got {value!r}") from None


def add_model_arguments(command: argparse.ArgumentParser) -> None:
    """The arguments that configure a model (species, EV preparation, overrides); read by :func:`_load`.

    Every simulating command calls this, so that options added here reach all of them.
    """
    model = command.add_argument_group("model")
    model.add_argument(
        "--species", default="mouse", help="bundled species name or path to a .toml file (default: mouse)"
    )
    model.add_argument("--ev", default="msc", help="bundled EV preparation or path to a .toml file (default: msc)")
    model.add_argument(
        "--set",
        dest="overrides",
        action="append",
        type=_assignment,
        default=[],
        metavar="NAME=VALUE",
        help="change one parameter, e.g. --set liver_capacity_particles=1e12 (repeatable)",
    )


def build_parser() -> argparse.ArgumentParser:
    from . import __version__
    from ._dosing import ROUTES

    parser = _Parser(
        prog="exopk",
        description="Simulate where extracellular vesicles go in the body (physiologically based PK).",
    )
    parser.add_argument("--version", action="version", version=f"exopk {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True

    sim = commands.add_parser(
        "simulate",
        help="simulate a dose; write a tidy CSV and a plot of organ curves",
        description="Simulate a dose or regimen. Times in hours; doses in particles unless --dose-unit ug.",
    )
    add_model_arguments(sim)
    dosing = sim.add_argument_group("dosing (one dose, or --regimen)")
    dosing.add_argument("--route", choices=ROUTES, default="iv_bolus", help="administration route (default: iv_bolus)")
    dosing.add_argument("--dose", type=_positive_float("--dose"), help="dose, in particles (or µg with --dose-unit ug)")
    dosing.add_argument("--dose-unit", choices=("particles", "ug"), default="particles", help="unit of --dose")
    dosing.add_argument(
        "--particles-per-ug",
        type=_positive_float("--particles-per-ug"),
        help="particles per µg EV protein; required with --dose-unit ug or dose_ug in a regimen (no default)",
    )
    dosing.add_argument("--duration", type=_positive_float("--duration"), help="infusion duration (h), for iv_infusion")
    dosing.add_argument(
        "--dose-time", type=_non_negative_float("--dose-time"), default=0.0, help="time of the dose (h)"
    )
    dosing.add_argument(
        "--regimen", type=Path, help="CSV with columns time_h, route, dose_particles or dose_ug, duration_h"
    )
    grid = sim.add_argument_group("output")
    grid.add_argument("--t-end", type=_positive_float("--t-end"), default=48.0, help="end time (h, default 48)")
    grid.add_argument("--dt", type=_positive_float("--dt"), default=0.05, help="output step (h, default 0.05)")
    grid.add_argument("--method", choices=("exact", "expm", "ode"), help="solver (default: exact if linear, else ode)")
    grid.add_argument("--out", type=Path, help="tidy CSV: time_h, organ, quantity, value, unit")
    grid.add_argument("--plot", type=Path, help="PNG of organ curves (log y)")
    grid.add_argument(
        "--organs",
        default="blood,lung,liver,spleen,kidney,brain,rest",
        help="comma-separated organs to plot (default: all)",
    )
    grid.add_argument(
        "--quantity",
        choices=("percent_id", "percent_id_per_g", "amount_particles"),
        default="percent_id",
        help="quantity to plot (default: percent_id)",
    )

    params = commands.add_parser("params", help="parameter sets")
    params_commands = params.add_subparsers(dest="params_command", metavar="ACTION", parser_class=_Parser)
    params_commands.required = True
    show = params_commands.add_parser("show", help="print the resolved parameters with units and sources")
    show.add_argument("--species", default="mouse", help="bundled species name or path (default: mouse)")
    show.add_argument("--ev", default="msc", help="bundled EV preparation or path (default: msc)")
    show.add_argument("--csv", action="store_true", help="print CSV instead of a text table")
    params_commands.add_parser("list", help="list the bundled species and EV parameter files")
    _add_export_sbml_parser(commands)
    return parser


def _add_export_sbml_parser(commands) -> None:
    """``exopk export-sbml``: the model and a dose or regimen as SBML (needs exopk[sbml])."""
    export = commands.add_parser(
        "export-sbml",
        help="write the configured model and dose as SBML Level 3 (needs exopk[sbml])",
        description="Export the model (species, EV preparation, overrides) and a dose or regimen to SBML Level 3 "
        "Version 2: amounts in particles, time in hours, volumes in mL, parameters with their sources.",
    )
    add_model_arguments(export)
    # The dose options are exactly those of `exopk simulate` (shared argparse actions, as argparse's
    # `parents=` does), so that options added there for new routes reach this command too.
    simulate = commands.choices["simulate"]
    for group in simulate._action_groups:
        if group.title and group.title.startswith("dosing"):
            copy = export.add_argument_group(group.title, group.description)
            for action in group._group_actions:
                copy._add_action(action)
    export.add_argument("--out", type=Path, required=True, help="SBML file to write (e.g. model.xml)")


def _check_bundled_name(kind: str, name: str) -> None:
    """An unknown bundled name given on the command line is a usage error."""
    from ._parameters import available

    looks_like_path = name.endswith(".toml") or "/" in name or "\\" in name
    if not looks_like_path and name not in available(kind):  # type: ignore[arg-type]
        flag = "--species" if kind == "species" else "--ev"
        raise UsageError(
            f"unknown {kind} {name!r} (`{flag}`); expected one of: {', '.join(available(kind))}, or a .toml path"
        )  # type: ignore[arg-type]


def _load(args):
    from ._errors import ParameterError
    from ._parameters import load_parameters, parameter_names

    _check_bundled_name("species", args.species)
    _check_bundled_name("ev", args.ev)
    params = load_parameters(args.species, args.ev)
    overrides = dict(getattr(args, "overrides", []))
    for name in overrides:
        if name not in parameter_names():
            raise UsageError(f"unknown parameter {name!r} in `--set`; run `exopk params show` for the names")
    if overrides:
        try:
            params = params.replace(source="set on the command line (--set)", **overrides)
        except ParameterError as err:
            raise UsageError(f"`--set`: {err}") from None
    return params


def _regimen(args):
    from ._dosing import IVBolus, IVInfusion, Regimen, particles_from_protein

    if args.regimen is not None:
        if args.dose is not None:
            raise UsageError("give either --dose or --regimen, not both")
        if not args.regimen.is_file():
            raise UsageError(f"`--regimen` file {str(args.regimen)!r} does not exist")
        return Regimen.from_csv(args.regimen, particles_per_ug=args.particles_per_ug)
    if args.dose is None:
        raise UsageError("give a dose with --dose (particles) or a regimen file with --regimen")
    if args.dose_unit == "ug":
        if args.particles_per_ug is None:
            raise UsageError("`--dose-unit ug` needs `--particles-per-ug` (no default conversion is assumed)")
        dose_particles = particles_from_protein(args.dose, args.particles_per_ug)
    else:
        dose_particles = args.dose
    if args.route == "iv_infusion":
        if args.duration is None:
            raise UsageError("`--route iv_infusion` needs `--duration` (h)")
        return Regimen([IVInfusion(dose_particles=dose_particles, duration_h=args.duration, t_h=args.dose_time)])
    if args.duration is not None:
        raise UsageError(f"`--duration` applies to iv_infusion only; got --route {args.route}")
    return Regimen([IVBolus(dose_particles=dose_particles, t_h=args.dose_time)])


def _check_writable(path: Path, flag: str) -> None:
    parent = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise ExopkError(f"`{flag}` {str(path)!r} is a directory; expected a file path")
    if parent.exists() and not parent.is_dir():
        raise ExopkError(f"`{flag}` {str(path)!r}: {str(parent)!r} is not a directory")
    if parent.exists() and not os.access(parent, os.W_OK | os.X_OK):
        raise ExopkError(f"`{flag}` {str(path)!r}: directory {str(parent)!r} is not writable")


class _AtomicOutputs:
    """Collect outputs in temporary files; move them into place only if all succeed."""

    def __init__(self) -> None:
        self._pending: list[tuple[Path, Path]] = []

    def temp_for(self, target: Path, flag: str) -> Path:
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
        except OSError as err:
            raise ExopkError(f"`{flag}` {str(target)!r} cannot be written: {err.strerror}") from None
        os.close(fd)
        self._pending.append((Path(name), target))
        return Path(name)

    def commit(self) -> None:
        umask = os.umask(0)
        os.umask(umask)
        for temp, target in self._pending:
            os.chmod(temp, 0o666 & ~umask)  # mkstemp creates 0600; give outputs the usual mode
            os.replace(temp, target)
        self._pending.clear()

    def discard(self) -> None:
        for temp, _ in self._pending:
            temp.unlink(missing_ok=True)
        self._pending.clear()


def _simulate(args) -> int:
    import numpy as np

    from ._model import REPORTED_ORGANS
    from ._simulate import simulate

    organs = [o.strip() for o in args.organs.split(",") if o.strip()]
    for organ in organs:
        if organ not in REPORTED_ORGANS[:-1]:
            raise UsageError(
                f"unknown organ {organ!r} in `--organs`; expected some of: {', '.join(REPORTED_ORGANS[:-1])}"
            )
    if args.dt > args.t_end:
        raise UsageError(f"`--dt` ({args.dt} h) must not exceed `--t-end` ({args.t_end} h)")
    n_steps = int(round(args.t_end / args.dt))
    if n_steps > 1_000_000:
        raise UsageError(f"--t-end/--dt gives {n_steps} output times; at most 1,000,000 (raise --dt)")
    for path, flag in ((args.out, "--out"), (args.plot, "--plot")):
        if path is not None:
            _check_writable(path, flag)
    params = _load(args)
    regimen = _regimen(args)
    t_h = np.linspace(0.0, n_steps * args.dt, n_steps + 1)
    result = simulate(params, regimen, t_h, method=args.method)

    outputs = _AtomicOutputs()
    try:
        if args.out is not None:
            temp = outputs.temp_for(args.out, "--out")
            result.to_frame().to_csv(temp, index=False, float_format="%.10g")
        if args.plot is not None:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt

            from ._plot import plot_organ_curves

            fig = plot_organ_curves(result, organs=organs, quantity=args.quantity)
            temp = outputs.temp_for(args.plot, "--plot")
            fig.savefig(temp, format="png", dpi=120)
            plt.close(fig)
        outputs.commit()
    except BaseException:
        outputs.discard()
        raise
    _print_summary(result, args)
    return 0


def _print_summary(result, args) -> None:
    import numpy as np

    t = result.t_h
    marks = [x for x in (0.5, 4.0, 24.0) if x <= t[-1]]
    header = "organ        " + "".join(f"{f'%ID at {x:g} h':>14s}" for x in marks)
    lines = [
        f"exopk: {result.metadata['species']} / {result.metadata['ev']}, "
        f"{', '.join(sorted({d.route for d in result.regimen.doses}))}, "
        f"total dose {result.dose_particles:.4g} particles, {t.size} times to {t[-1]:g} h, method {result.method}",
        header,
    ]
    for organ in result.organs:
        values = (
            result.percent_id(organ) if organ != "eliminated" else 100 * result.eliminated() / result.dose_particles
        )
        row = "".join(f"{np.interp(x, t, values):14.4g}" for x in marks)
        lines.append(f"{organ:13s}{row}")
    for path, what in ((args.out, "table"), (args.plot, "plot")):
        if path is not None:
            lines.append(f"wrote {what}: {path}")
    print("\n".join(lines))


def _params(args) -> int:
    from ._parameters import available

    if args.params_command == "list":
        print("species: " + ", ".join(available("species")))
        print("ev:      " + ", ".join(available("ev")))
        return 0
    params = _load(args)
    table = params.table()
    if args.csv:
        table.to_csv(sys.stdout, index=False)
        return 0
    print(f"# species {params.species} ({params.files[0]})\n# ev {params.ev} ({params.files[1]})")
    for row in table.itertuples(index=False):
        print(f"{row.name:40s} {row.value:>12.6g} {row.unit:10s} {row.source}")
    return 0


def _export_sbml(args) -> int:
    from ._sbml import export_sbml

    _check_writable(args.out, "--out")
    params = _load(args)
    regimen = _regimen(args)
    outputs = _AtomicOutputs()
    try:
        temp = outputs.temp_for(args.out, "--out")
        text = export_sbml(params, regimen)
        temp.write_text(text, encoding="utf-8")
        outputs.commit()
    except BaseException:
        outputs.discard()
        raise
    print(
        f"exopk: wrote SBML Level 3 Version 2 ({params.species} / {params.ev}, "
        f"{len(regimen.doses)} dose(s), total {regimen.total_particles:.4g} particles): {args.out}"
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if args.command == "simulate":
            return _simulate(args)
        if args.command == "export-sbml":
            return _export_sbml(args)
        return _params(args)
    except UsageError as err:
        print(f"exopk: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except ExopkError as err:
        print(f"exopk: error: {err}", file=sys.stderr)
        return EXIT_FAILURE
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
        print(f"exopk: error: {err.strerror or err}{where}", file=sys.stderr)
        return EXIT_FAILURE
