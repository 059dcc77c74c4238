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

from exopk.errors import ExopkError

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
    model.add_argument(
        "--scenario",
        dest="scenarios",
        action="append",
        default=[],
        metavar="NAME",
        help="condition overlay applied before --set, e.g. acute_kidney_injury; bundled name or .toml path "
        "(repeatable; applied in order; `exopk params list` lists them)",
    )


def _add_nasal_volume_arguments(group) -> None:
    group.add_argument(
        "--nasal-volume-ul",
        type=_non_negative_float("--nasal-volume-ul"),
        help="intranasal: total instilled volume (µL, both nostrils, at most 50); the share reaching the "
        "lungs follows mouse data (Southam et al. 2002); default: none reaches the lungs",
    )
    group.add_argument(
        "--anaesthetised", action="store_true", help="intranasal with --nasal-volume-ul: dosed under anaesthesia"
    )


def add_dosing_arguments(command: argparse.ArgumentParser, default_dose: float | None = None) -> None:
    """The dose options (one dose by any route, or --regimen); read by :func:`_regimen`.

    Shared by every command that simulates a dose, so that route options reach all of them.
    """
    from exopk.dosing import ROUTES

    dosing = command.add_argument_group("dosing (one dose, or --regimen)")
    dosing.add_argument("--route", choices=ROUTES, default="iv_bolus", help="administration route (default: iv_bolus)")
    default = "" if default_dose is None else f" (default {default_dose:g} unless --regimen)"
    dosing.add_argument(
        "--dose", type=_positive_float("--dose"), help=f"dose, in particles (or µg with --dose-unit ug){default}"
    )
    command.set_defaults(default_dose_particles=default_dose)
    dosing.add_argument("--dose-unit", choices=("particles", "ug"), default="particles", help="unit of --dose")
    dosing.add_argument(
        "--particles-per-ug",
        type=_positive_float("--particles-per-ug"),
        help="particles per µg EV protein; required with --dose-unit ug or dose_ug in a regimen (no default)",
    )
    dosing.add_argument("--duration", type=_positive_float("--duration"), help="infusion duration (h), for iv_infusion")
    dosing.add_argument(
        "--site",
        help="target of --route local: <organ>_<vascular|tissue>, e.g. kidney_vascular (intra-arterial), brain_tissue",
    )
    _add_nasal_volume_arguments(dosing)
    dosing.add_argument(
        "--dose-time", type=_non_negative_float("--dose-time"), default=0.0, help="time of the dose (h)"
    )
    dosing.add_argument(
        "--regimen",
        type=Path,
        help="CSV with columns time_h, route, dose_particles or dose_ug, duration_h, site, lower_airway_fraction",
    )
    from exopk.cli.dosing import add_regimen_arguments

    add_regimen_arguments(dosing, command)


def build_parser() -> argparse.ArgumentParser:
    from exopk._version import __version__

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
    add_dosing_arguments(sim)
    grid = sim.add_argument_group("output")
    grid.add_argument("--t-end", type=_positive_float("--t-end"), default=48.0, help="end time (h, default 48)")
    grid.add_argument("--dt", type=_positive_float("--dt"), default=0.05, help="output step (h, default 0.05)")
    grid.add_argument("--method", choices=("exact", "expm", "ode"), help="solver (default: exact if linear, else ode)")
    grid.add_argument("--out", type=Path, help="tidy CSV: time_h, organ, quantity, value, unit")
    grid.add_argument("--plot", type=Path, help="PNG of organ curves (log y)")
    grid.add_argument(
        "--organs",
        help="comma-separated organs to plot (default: blood and the six organs, plus the dosed administration site)",
    )
    grid.add_argument(
        "--quantity",
        choices=("percent_id", "percent_id_per_g", "amount_particles"),
        default="percent_id",
        help="quantity to plot (default: percent_id)",
    )
    _add_tracer_argument(sim)
    _add_image_parser(commands)

    _add_compare_parser(commands)

    params = commands.add_parser("params", help="parameter sets")
    params_commands = params.add_subparsers(dest="params_command", metavar="ACTION", parser_class=_Parser)
    params_commands.required = True
    show = params_commands.add_parser("show", help="print the resolved parameters with units and sources")
    add_model_arguments(show)
    show.add_argument("--csv", action="store_true", help="print CSV instead of a text table")
    params_commands.add_parser("list", help="list the bundled species, EV and scenario parameter files")
    _add_scale_dose_parser(commands)
    _add_export_sbml_parser(commands)
    _add_analysis_commands(commands)
    _add_datasets_parser(commands)
    _add_fit_parser(commands)
    from exopk.cli.dosing import add_design_parser

    add_design_parser(commands)
    return parser


def _add_compare_parser(commands) -> None:
    from exopk.analysis.compare import EXPOSURE_COMPARTMENTS
    from exopk.dosing import ROUTES

    cmp = commands.add_parser(
        "compare",
        help="give the same dose by several routes; exposure per organ, bioavailability, DTE/DTP",
        description=(
            "Simulate one dose by each route; write the curves (tidy CSV with a route column), the "
            "metrics (exact AUCs, bioavailability, brain:blood AUC ratio, DTE %% and DTP %% against "
            "iv_bolus) and a figure. Brain exposure is brain tissue (extravascular)."
        ),
    )
    add_model_arguments(cmp)
    dosing = cmp.add_argument_group("dosing")
    dosing.add_argument(
        "--routes",
        default="iv_bolus,intranasal",
        help=f"comma-separated routes (default: iv_bolus,intranasal); any of: {', '.join(ROUTES)}",
    )
    dosing.add_argument("--dose", type=_positive_float("--dose"), default=1e10, help="dose per route (default 1e10)")
    dosing.add_argument("--dose-unit", choices=("particles", "ug"), default="particles", help="unit of --dose")
    dosing.add_argument("--particles-per-ug", type=_positive_float("--particles-per-ug"), help="for --dose-unit ug")
    dosing.add_argument("--duration", type=_positive_float("--duration"), help="infusion duration (h), for iv_infusion")
    dosing.add_argument("--site", help="target of route local: <organ>_<vascular|tissue>, e.g. kidney_vascular")
    _add_nasal_volume_arguments(dosing)
    out = cmp.add_argument_group("output")
    out.add_argument("--t-end", type=_positive_float("--t-end"), default=48.0, help="end time (h, default 48)")
    out.add_argument("--dt", type=_positive_float("--dt"), default=0.01, help="output step (h, default 0.01)")
    out.add_argument("--out", type=Path, help="tidy CSV of the curves: time_h, route, organ, quantity, value, unit")
    out.add_argument("--metrics", type=Path, help="tidy CSV of the metrics: route, organ, quantity, value, unit")
    out.add_argument("--plot", type=Path, help="PNG: curves of --organs per route, and AUC per organ and route")
    out.add_argument(
        "--organs",
        default="brain_extravascular,blood",
        help="places to draw as curves (default: brain_extravascular,blood); any of: "
        + ", ".join(EXPOSURE_COMPARTMENTS),
    )


def _compare(args) -> int:

    from exopk.analysis.compare import EXPOSURE_COMPARTMENTS, compare_routes
    from exopk.dosing import ROUTES
    from exopk.plots.compare import plot_route_comparison

    routes = [r.strip() for r in args.routes.split(",") if r.strip()]
    for route in routes:
        if route not in ROUTES:
            raise UsageError(f"unknown route {route!r} in `--routes`; expected some of: {', '.join(ROUTES)}")
    if len(set(routes)) != len(routes):
        raise UsageError(f"`--routes` lists a route twice: {args.routes!r}")
    _check_route_options(args, routes)
    organs = [o.strip() for o in args.organs.split(",") if o.strip()]
    for organ in organs:
        if organ not in EXPOSURE_COMPARTMENTS:
            raise UsageError(
                f"unknown place {organ!r} in `--organs`; expected some of: {', '.join(EXPOSURE_COMPARTMENTS)}"
            )
    t_h = _time_grid(args, 200_000, "per route")
    for path, flag in ((args.out, "--out"), (args.metrics, "--metrics"), (args.plot, "--plot")):
        if path is not None:
            _check_writable(path, flag)
    params = _load(args)
    dose = _dose_particles(args)
    doses = [_single_dose(route, dose, args) for route in routes]
    comparison = compare_routes(params, doses, dose, t_h)
    metrics = comparison.metrics_frame()

    outputs = _AtomicOutputs()
    try:
        if args.out is not None:
            temp = outputs.temp_for(args.out, "--out")
            comparison.to_frame().to_csv(temp, index=False, float_format="%.10g")
        if args.metrics is not None:
            temp = outputs.temp_for(args.metrics, "--metrics")
            metrics.to_csv(temp, index=False, float_format="%.10g")
        if args.plot is not None:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt

            fig = plot_route_comparison(comparison, organs)
            temp = outputs.temp_for(args.plot, "--plot")
            fig.savefig(temp, format="png", dpi=110)
            plt.close(fig)
        outputs.commit()
    except BaseException:
        outputs.discard()
        raise
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
    lines += _model_notes(params)
    for path, what in ((args.out, "curves"), (args.metrics, "metrics"), (args.plot, "plot")):
        if path is not None:
            lines.append(f"wrote {what}: {path}")
    print("\n".join(lines))
    return 0


def _add_scale_dose_parser(commands) -> None:
    scale = commands.add_parser(
        "scale-dose",
        help="re-express a dose for another species (per kg and by body surface area), with the assumptions",
        description="Scale a dose in particles from one species to another: per kg of body weight and by body "
        "surface area (FDA 2005 Km factors). Prints both, and what each assumes.",
    )
    scale.add_argument("--dose", required=True, type=_positive_float("--dose"), help="dose in particles per animal")
    scale.add_argument("--from", dest="from_species", default="mouse", help="species dosed (default: mouse)")
    scale.add_argument("--to", dest="to_species", default="human", help="species to scale to (default: human)")
    scale.add_argument(
        "--from-weight-g", type=_positive_float("--from-weight-g"), help="body weight of the dosed animal (g)"
    )
    scale.add_argument("--to-weight-g", type=_positive_float("--to-weight-g"), help="body weight to scale to (g)")


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


def _check_bundled_name(kind: str, name: str, flag: str | None = None) -> None:
    """An unknown bundled name given on the command line is a usage error."""
    from exopk.model.parameters import _FLAGS, available

    looks_like_path = name.endswith(".toml") or "/" in name or "\\" in name
    if not looks_like_path and name not in available(kind):  # type: ignore[arg-type]
        flag = flag or _FLAGS[kind]
        what = "scenario" if kind == "scenarios" else kind
        raise UsageError(
            f"unknown {what} {name!r} (`{flag}`); expected one of: {', '.join(available(kind))}, or a .toml path"
        )  # type: ignore[arg-type]


def _load(args):
    from exopk.errors import ParameterError
    from exopk.model.load import load_parameters
    from exopk.model.parameters import parameter_names

    _check_bundled_name("species", args.species)
    _check_bundled_name("ev", args.ev)
    scenarios = getattr(args, "scenarios", [])
    for scenario in scenarios:
        _check_bundled_name("scenarios", scenario)
    params = load_parameters(args.species, args.ev, scenarios=scenarios)
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


def _time_grid(args, max_points: int, what: str = ""):
    """Output times 0, --dt, ..., --t-end (h), refusing grids that are inverted or too large."""
    import numpy as np

    if args.dt > args.t_end:
        raise UsageError(f"`--dt` ({args.dt} h) must not exceed `--t-end` ({args.t_end} h)")
    n_steps = int(round(args.t_end / args.dt))
    if n_steps > max_points:
        where = f" {what}" if what else ""
        raise UsageError(f"--t-end/--dt gives {n_steps} output times{where}; at most {max_points:,} (raise --dt)")
    return np.linspace(0.0, n_steps * args.dt, n_steps + 1)


def _dose_particles(args) -> float:
    """The --dose in particles (converting µg with --particles-per-ug)."""
    from exopk.dosing import particles_from_protein

    if args.dose is None:
        raise UsageError("give a dose with --dose (particles)")
    if args.dose_unit == "ug":
        if args.particles_per_ug is None:
            raise UsageError("`--dose-unit ug` needs `--particles-per-ug` (no default conversion is assumed)")
        return particles_from_protein(args.dose, args.particles_per_ug)
    return args.dose


def _check_route_options(args, routes: list[str]) -> None:
    """--duration belongs to iv_infusion and --site to local; each needs its route and vice versa."""
    flag = "--routes" if hasattr(args, "routes") else "--route"
    if hasattr(args, "routes"):
        if args.duration is not None and "iv_infusion" not in routes:
            raise UsageError(f"`--duration` applies to iv_infusion only; got {flag} {','.join(routes)}")
        if "iv_infusion" in routes and args.duration is None:
            raise UsageError("route iv_infusion needs `--duration` (h)")
    else:  # one dose: --duration or --rate make an infusion into any route's depot or site (exopk.cli.dosing)
        rate = getattr(args, "rate", None)
        if (args.duration is not None or rate is not None) and "iv_bolus" in routes:
            raise UsageError(
                "`--duration`/`--rate` make an infusion; route iv_bolus has none (use --route iv_infusion)"
            )
        if "iv_infusion" in routes and args.duration is None and rate is None:
            raise UsageError("route iv_infusion needs `--duration` (h) or `--rate` (particles/h)")
    if args.site is not None and "local" not in routes:
        raise UsageError(f"`--site` applies to route local only; got {flag} {','.join(routes)}")
    if "local" in routes and args.site is None:
        raise UsageError("route local needs `--site <organ>_<vascular|tissue>`, e.g. kidney_vascular")
    volume = getattr(args, "nasal_volume_ul", None)
    if volume is not None and "intranasal" not in routes:
        raise UsageError(f"`--nasal-volume-ul` applies to route intranasal only; got {flag} {','.join(routes)}")
    if volume is not None and volume > 50.0:
        raise UsageError(
            f"`--nasal-volume-ul` must be at most 50 µL (the range measured by Southam 2002); got {volume:g}"
        )
    if getattr(args, "anaesthetised", False) and volume is None:
        raise UsageError("`--anaesthetised` needs `--nasal-volume-ul`")


def _single_dose(route: str, dose_particles: float, args, t_h: float = 0.0):
    """One dose from the command-line options (--duration for iv_infusion, --site for local)."""
    from exopk.analysis.compare import route_dose
    from exopk.dosing import LOCAL_SPACES
    from exopk.model.parameters import ORGANS

    organ, space = None, "tissue"
    if route == "local":
        organ, _, space = args.site.rpartition("_")
        if organ not in ORGANS or space not in LOCAL_SPACES:
            raise UsageError(
                f"`--site` must be <organ>_<vascular|tissue> with organ one of {', '.join(ORGANS)}; got {args.site!r}"
            )
    volume = getattr(args, "nasal_volume_ul", None)
    if route == "intranasal" and volume is not None:
        from exopk.dosing import Intranasal

        dose = Intranasal.from_volume(dose_particles, volume, anaesthetised=args.anaesthetised, t_h=t_h)
        if hasattr(args, "routes"):
            return dose
        from exopk.cli.dosing import with_regimen_options

        return with_regimen_options(dose, args)
    if not hasattr(args, "routes"):
        from exopk.cli.dosing import single_dose

        return single_dose(route, dose_particles, args, t_h=t_h)
    duration = args.duration if route == "iv_infusion" else None
    return route_dose(route, dose_particles, t_h=t_h, duration_h=duration, organ=organ, space=space)


def _regimen(args):
    from exopk.dosing import Regimen

    if args.regimen is not None:
        if args.dose is not None:
            raise UsageError("give either --dose or --regimen, not both")
        if not args.regimen.is_file():
            raise UsageError(f"`--regimen` file {str(args.regimen)!r} does not exist")
        from exopk.cli.dosing import uses_regimen_options

        if uses_regimen_options(args):
            raise UsageError(
                "repeat, lag, --f, --rate and --per-kg options apply to --dose; a --regimen file has columns for them"
            )
        return Regimen.from_csv(args.regimen, particles_per_ug=args.particles_per_ug)
    if args.dose is None:
        if getattr(args, "default_dose_particles", None) is None:
            raise UsageError("give a dose with --dose (particles) or a regimen file with --regimen")
        args.dose, args.dose_unit = args.default_dose_particles, "particles"
    _check_route_options(args, [args.route])
    return Regimen([_single_dose(args.route, _dose_particles(args), args, t_h=args.dose_time)])


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
    if getattr(args, "events", None) is not None:
        from exopk.cli.dosing import simulate_events

        return simulate_events(args)

    from exopk.model.graph import REPORTED_ORGANS
    from exopk.simulation import simulate

    organs_given = args.organs is not None
    organs = [o.strip() for o in (args.organs or "blood,lung,liver,spleen,kidney,brain,rest").split(",") if o.strip()]
    for organ in organs:
        if organ not in REPORTED_ORGANS[:-1]:
            raise UsageError(
                f"unknown organ {organ!r} in `--organs`; expected some of: {', '.join(REPORTED_ORGANS[:-1])}"
            )
    t_h = _time_grid(args, 1_000_000)
    for path, flag in ((args.out, "--out"), (args.plot, "--plot")):
        if path is not None:
            _check_writable(path, flag)
    params = _load(args)
    regimen = _regimen(args)
    from exopk.cli.dosing import check_late_doses

    check_late_doses(regimen, float(t_h[-1]), args)
    labelled = _simulate_tracer(args, params, regimen, t_h)
    result = (
        simulate(params, regimen, t_h, method=args.method, doses_after_end=args.doses_after_end)
        if labelled is None
        else labelled.ev
    )

    outputs = _AtomicOutputs()
    try:
        if args.out is not None:
            temp = outputs.temp_for(args.out, "--out")
            (result if labelled is None else labelled).to_frame().to_csv(temp, index=False, float_format="%.10g")
        if args.plot is not None:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt

            from exopk.plots.organs import plot_organ_curves

            if not organs_given and args.quantity != "percent_id_per_g":  # sites have no mass, hence no %ID/g
                organs = organs + list(result.dosed_sites)
            fig = plot_organ_curves(result, organs=organs, quantity=args.quantity)
            temp = outputs.temp_for(args.plot, "--plot")
            fig.savefig(temp, format="png", dpi=120)
            plt.close(fig)
        outputs.commit()
    except BaseException:
        outputs.discard()
        raise
    _print_summary(result, args)
    if labelled is not None:
        _print_label_summary(labelled)
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
    for organ in filter(result.is_shown, result.organs):
        values = (
            result.percent_id(organ) if organ != "eliminated" else 100 * result.eliminated() / result.dose_particles
        )
        row = "".join(f"{np.interp(x, t, values):14.4g}" for x in marks)
        lines.append(f"{organ:13s}{row}")
        if organ == "brain":
            row = "".join(f"{np.interp(x, t, result.extravascular_percent_id('brain')):14.4g}" for x in marks)
            lines.append(f"{'  tissue':13s}{row}")
    lines += _model_notes(result.params)
    from exopk.cli.dosing import late_dose_note

    lines += late_dose_note(result)
    for path, what in ((args.out, "table"), (args.plot, "plot")):
        if path is not None:
            lines.append(f"wrote {what}: {path}")
    print("\n".join(lines))


def _model_notes(params) -> list[str]:
    """Lines naming the scenarios applied and the values extrapolated from another species."""
    notes = []
    if params.scenarios:
        notes.append(f"scenarios: {', '.join(params.scenarios)}")
    if params.extrapolated:
        notes.append(
            f"note: {len(params.extrapolated)} EV constants are extrapolated to {params.species} from another "
            "species (allometry), not measured; see `exopk params show` (marked ~)"
        )
    return notes


def _params(args) -> int:
    from exopk.model.parameters import available

    if args.params_command == "list":
        print("species:   " + ", ".join(available("species")))
        print("ev:        " + ", ".join(available("ev")))
        print("scenarios: " + ", ".join(available("scenarios")))
        return 0
    params = _load(args)
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


def _scale_dose(args) -> int:
    from exopk.model.allometry import scale_dose

    _check_bundled_name("species", args.from_species, "--from")
    _check_bundled_name("species", args.to_species, "--to")
    print(
        scale_dose(
            args.dose,
            args.from_species,
            args.to_species,
            from_body_weight_g=args.from_weight_g,
            to_body_weight_g=args.to_weight_g,
        ).summary()
    )
    return 0


def _export_sbml(args) -> int:
    from exopk.io.sbml import export_sbml

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


# --- analysis commands (issue 7): nca, population, sensitivity -------------------------------


def _comma_list(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def _cv_assignment(text: str) -> tuple[str, float]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"`--cv` takes NAME=CV, e.g. liver_uptake_vascular_per_h=0.3; got {text!r}")
    try:
        return name.strip(), float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"`--cv {name}` needs a number; got {value!r}") from None


def _positive_int(name: str):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"`{name}` must be a positive integer; got {text!r}") from None
        if value < 1:
            raise argparse.ArgumentTypeError(f"`{name}` must be a positive integer; got {text!r}")
        return value

    return parse


def _add_analysis_dosing(command: argparse.ArgumentParser) -> None:
    """Dose and output-grid options of the analysis commands (same names as `simulate`, read by `_regimen`)."""
    add_dosing_arguments(command, default_dose=1e10)
    grid = command.add_argument_group("output times")
    grid.add_argument("--t-end", type=_positive_float("--t-end"), default=48.0, help="end time (h, default 48)")
    grid.add_argument("--dt", type=_positive_float("--dt"), default=0.5, help="output step (h, default 0.5)")


def _add_runner_arguments(command: argparse.ArgumentParser) -> None:
    run = command.add_argument_group("running")
    where = run.add_mutually_exclusive_group()
    where.add_argument("--processes", type=_positive_int("--processes"), help="run chunks in N worker processes")
    where.add_argument(
        "--dask", metavar="ADDRESS", help="run chunks on a dask.distributed scheduler (needs exopk[distributed])"
    )
    run.add_argument("--chunk-size", type=_positive_int("--chunk-size"), help="parameter sets per task")
    run.add_argument("--no-progress", action="store_true", help="no progress bar (default: shown on a terminal)")


def _add_analysis_commands(commands) -> None:
    nca = commands.add_parser(
        "nca",
        help="non-compartmental analysis of concentration-time data in a CSV",
        description=(
            "NCA per group of rows (e.g. per organ, or per subject): Cmax, Tmax, AUC (linear-up/log-down), "
            "lambda_z (adjusted R2 rule of PKNCA/Phoenix), AUC0-inf, half-life, MRT, CL and Vss. "
            "Reads tidy CSVs such as `exopk simulate --out`. With --sparse: one sample per animal, "
            "NCA of the mean profile with Bailer's standard error of AUC."
        ),
    )
    nca.add_argument("csv", type=Path, help="input CSV")
    nca.add_argument("--time-column", default="time_h", help="time column, in hours (default: time_h)")
    nca.add_argument("--value-column", default="value", help="concentration column (default: value)")
    nca.add_argument("--group-by", type=_comma_list, help="columns that identify a curve (default: organ, subject, id)")
    nca.add_argument("--quantity", help="keep only rows with this `quantity` (e.g. percent_id)")
    nca.add_argument("--organs", type=_comma_list, help="keep only these organs (rows of an `organ` column)")
    nca.add_argument("--unit", help="concentration unit when the CSV has no `unit` column")
    nca.add_argument("--dose", type=_positive_float("--dose"), help="dose, in the amount unit of the concentration")
    nca.add_argument("--dose-unit", help="unit of --dose (e.g. particles, %%ID)")
    nca.add_argument("--infusion-h", type=_non_negative_float("--infusion-h"), default=0.0, help="infusion time (h)")
    nca.add_argument("--extravascular", action="store_true", help="the dose is not intravascular: no CL, Vss")
    nca.add_argument("--sparse", action="store_true", help="destructive sampling: one row per animal")
    nca.add_argument("--out", type=Path, help="CSV of results: group columns, parameter, value, unit")

    pop = commands.add_parser(
        "population",
        help="simulate a virtual population: percentile bands and per-subject NCA",
        description=(
            "Lognormal between-subject variability (--cv NAME=CV, CV 0.3 = 30 %%) and allometric body-weight "
            "scaling (--body-weight-cv), seeded. Percentiles per organ and time; per-subject Cmax, Tmax, AUC "
            "and blood NCA."
        ),
    )
    add_model_arguments(pop)
    _add_analysis_dosing(pop)
    spec = pop.add_argument_group("population")
    spec.add_argument("--n", type=_positive_int("--n"), default=1000, help="virtual subjects (default 1000)")
    spec.add_argument("--cv", type=_cv_assignment, action="append", default=[], metavar="NAME=CV", help="repeatable")
    spec.add_argument("--correlation", type=Path, help="CSV correlation matrix of the --cv parameters (no header)")
    spec.add_argument("--body-weight-cv", type=_positive_float("--body-weight-cv"), help="lognormal body weights")
    spec.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    spec.add_argument("--percentiles", type=_comma_list, default=["5", "50", "95"], help="default: 5,50,95")
    out = pop.add_argument_group("outputs")
    out.add_argument("--out", type=Path, help="tidy CSV of the percentile bands")
    out.add_argument("--subjects", type=Path, help="tidy CSV of per-subject summaries")
    out.add_argument("--plot", type=Path, help="PNG of the prediction bands")
    out.add_argument("--organs", type=_comma_list, default=["blood", "liver", "spleen", "lung", "brain"])
    _add_runner_arguments(pop)

    sens = commands.add_parser(
        "sensitivity",
        help="local (tornado) and global Sobol sensitivity of model outputs",
        description=(
            "Normalised local sensitivity coefficients of the outputs to every parameter, and Sobol first- and "
            "total-order indices (Saltelli/Jansen estimators, bootstrap intervals) over log-uniform ranges "
            "[p/factor, p*factor]. Outputs are <organ>_<metric>, metric one of auc, cmax, tmax, final."
        ),
    )
    add_model_arguments(sens)
    _add_analysis_dosing(sens)
    an = sens.add_argument_group("analysis")
    an.add_argument("--outputs", type=_comma_list, default=["brain_auc", "liver_cmax", "blood_auc"])
    an.add_argument("--sobol-parameters", type=_comma_list, help="Sobol inputs (default: the --sobol-top by |local|)")
    an.add_argument("--sobol-top", type=_positive_int("--sobol-top"), default=10, help="default 10")
    an.add_argument("--sobol-n", type=_positive_int("--sobol-n"), default=1024, help="base sample, power of 2")
    an.add_argument("--factor", type=_positive_float("--factor"), default=2.0, help="Sobol range factor (default 2)")
    an.add_argument("--no-sobol", action="store_true", help="local coefficients only")
    an.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    out = sens.add_argument_group("outputs")
    out.add_argument("--local-out", type=Path, help="CSV of local coefficients")
    out.add_argument("--sobol-out", type=Path, help="CSV of Sobol indices")
    out.add_argument("--tornado", type=Path, help="PNG tornado plot (first output)")
    out.add_argument("--sobol-plot", type=Path, help="PNG bar plot of Sobol indices (first output)")
    _add_runner_arguments(sens)


class _Runner:
    """The executor asked for on the command line (closed on exit)."""

    def __init__(self, args) -> None:
        self.executor = None
        self._close = None
        if getattr(args, "processes", None):
            from concurrent.futures import ProcessPoolExecutor

            self.executor = ProcessPoolExecutor(args.processes)
            self._close = self.executor.shutdown
        elif getattr(args, "dask", None):
            try:
                from distributed import Client
            except ImportError:
                raise UsageError("`--dask` needs dask.distributed: pip install 'exopk[distributed]'") from None
            try:
                self.executor = Client(args.dask, timeout=10)
            except OSError as err:
                raise ExopkError(f"`--dask` {args.dask!r}: cannot reach the scheduler ({err})") from None
            self._close = self.executor.close

    def __enter__(self):
        return self.executor

    def __exit__(self, *exc) -> None:
        if self._close is not None:
            self._close()


def _write_outputs(items) -> None:
    """items: (path, flag, writer(temp_path)) for each requested output; all or nothing."""
    outputs = _AtomicOutputs()
    try:
        for path, flag, writer in items:
            if path is not None:
                writer(outputs.temp_for(path, flag))
        outputs.commit()
    except BaseException:
        outputs.discard()
        raise


def _figure_writer(fig):
    def write(temp: Path) -> None:
        import matplotlib.pyplot as plt

        fig.savefig(temp, format="png", dpi=120)
        plt.close(fig)

    return write


def _nca_command(args) -> int:
    import numpy as np
    import pandas as pd

    from exopk.analysis.nca import NCA_PARAMETERS, nca, nca_units, sparse_nca

    if args.out is not None:
        _check_writable(args.out, "--out")
    if not args.csv.is_file():
        raise UsageError(f"input file {str(args.csv)!r} does not exist")
    try:
        table = pd.read_csv(args.csv, comment="#")
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as err:
        raise ExopkError(f"{args.csv}: not a readable CSV ({err})") from None
    for column, flag in ((args.time_column, "--time-column"), (args.value_column, "--value-column")):
        if column not in table.columns:
            raise UsageError(
                f"{args.csv}: no column {column!r} (`{flag}`); columns: {', '.join(map(str, table.columns))}"
            )
    if args.quantity is not None:
        if "quantity" not in table.columns:
            raise UsageError(f"`--quantity` given but {args.csv} has no `quantity` column")
        table = table[table["quantity"] == args.quantity]
        if table.empty:
            raise UsageError(f"`--quantity` {args.quantity!r}: no rows in {args.csv}")
    if args.organs is not None:
        if "organ" not in table.columns:
            raise UsageError(f"`--organs` given but {args.csv} has no `organ` column")
        table = table[table["organ"].isin(args.organs)]
        if table.empty:
            raise UsageError(f"`--organs` {','.join(args.organs)}: no rows in {args.csv}")
    if args.group_by is not None:
        groups = args.group_by
        for column in groups:
            if column not in table.columns:
                raise UsageError(f"`--group-by`: no column {column!r} in {args.csv}")
    else:
        groups = [c for c in ("organ", "quantity", "subject", "id") if c in table.columns]
        if args.sparse:
            groups = [c for c in groups if c not in ("subject", "id")]
        if "quantity" in groups and table["quantity"].nunique() == 1:
            groups.remove("quantity")
    for column in (args.time_column, args.value_column):
        if not pd.api.types.is_numeric_dtype(table[column]):
            raise ExopkError(f"{args.csv}: column {column!r} must be numeric")
    rows = []
    grouped = table.groupby(groups, sort=False) if groups else [((), table)]
    dose_unit = args.dose_unit or ("particles" if args.dose is not None else None)
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
        units = nca_units(unit, dose_unit)
        order = group.sort_values(args.time_column)
        t = order[args.time_column].to_numpy(dtype=float)
        c = order[args.value_column].to_numpy(dtype=float)
        try:
            if args.sparse:
                sparse = sparse_nca(
                    t, c, dose=args.dose, infusion_h=args.infusion_h, intravascular=not args.extravascular
                )
                result = sparse.profile
                extra = [
                    ("auc_0_tlast_linear_mean", sparse.auc_0_tlast, units["auc_0_tlast"]),
                    ("auc_0_tlast_se_bailer", sparse.auc_se, units["auc_0_tlast"]),
                ]
            else:
                if np.unique(t).size != t.size:
                    raise ExopkError(
                        f"{args.csv} ({where}): repeated times in one curve; add --group-by, or --sparse for "
                        "one sample per animal"
                    )
                result = nca(t, c, dose=args.dose, infusion_h=args.infusion_h, intravascular=not args.extravascular)
                extra = []
        except ExopkError as err:
            raise ExopkError(f"{args.csv} ({where}): {err}") from None
        for name in NCA_PARAMETERS:
            rows.append({**label, "parameter": name, "value": float(getattr(result, name)[0]), "unit": units[name]})
        for name, value, u in extra:
            rows.append({**label, "parameter": name, "value": value, "unit": u})
    frame = pd.DataFrame(rows)
    if args.out is not None:
        _write_outputs([(args.out, "--out", lambda p: frame.to_csv(p, index=False, float_format="%.8g"))])
        print(f"wrote {len(frame)} rows: {args.out}")
    else:
        frame.to_csv(sys.stdout, index=False, float_format="%.6g")
    return 0


def _population_command(args) -> int:
    import numpy as np

    from exopk.analysis.population import sample_population, simulate_population
    from exopk.model.graph import REPORTED_ORGANS

    for path, flag in ((args.out, "--out"), (args.subjects, "--subjects"), (args.plot, "--plot")):
        if path is not None:
            _check_writable(path, flag)
    for organ in args.organs:
        if organ not in REPORTED_ORGANS[:-1]:
            raise UsageError(
                f"unknown organ {organ!r} in `--organs`; expected some of {', '.join(REPORTED_ORGANS[:-1])}"
            )
    try:
        percentiles = [float(x) for x in args.percentiles]
    except ValueError:
        raise UsageError(f"`--percentiles` must be numbers; got {','.join(args.percentiles)}") from None
    if not args.cv and args.body_weight_cv is None:
        raise UsageError("nothing varies: give --cv NAME=CV (repeatable) and/or --body-weight-cv")
    params = _load(args)
    regimen = _regimen(args)
    t_h = _time_grid(args, 100_000)
    correlation = None
    if args.correlation is not None:
        if not args.correlation.is_file():
            raise UsageError(f"`--correlation` file {str(args.correlation)!r} does not exist")
        try:
            correlation = np.loadtxt(args.correlation, delimiter=",", ndmin=2)
        except ValueError as err:
            raise ExopkError(f"`--correlation` {args.correlation}: not a numeric CSV matrix ({err})") from None
    cv = dict(args.cv)
    if len(cv) != len(args.cv):
        raise UsageError("`--cv` names a parameter twice")
    population = sample_population(
        params, args.n, cv, correlation=correlation, body_weight_cv=args.body_weight_cv, seed=args.seed
    )
    with _Runner(args) as executor:
        kwargs = {"chunk_size": args.chunk_size} if args.chunk_size else {}
        result = simulate_population(
            population, regimen, t_h, percentiles=percentiles, executor=executor,
            progress=False if args.no_progress else None, **kwargs,
        )  # fmt: skip
    items = [
        (args.out, "--out", lambda p: result.to_frame().to_csv(p, index=False, float_format="%.8g")),
        (args.subjects, "--subjects", lambda p: result.subjects_frame().to_csv(p, index=False, float_format="%.8g")),
    ]
    if args.plot is not None:
        import matplotlib

        matplotlib.use("Agg")
        from exopk.plots.analysis import plot_population_bands

        items.append((args.plot, "--plot", _figure_writer(plot_population_bands(result, organs=args.organs))))
    _write_outputs(items)
    q = result.percentiles
    print(f"exopk population: {args.n} subjects, seed {args.seed}, {t_h.size} times to {t_h[-1]:g} h")
    print(f"{'organ':12s}" + "".join(f"{f'AUC P{x:g} (%ID·h)':>18s}" for x in q))
    for j, organ in enumerate(REPORTED_ORGANS):
        values = np.percentile(result.auc_percent_id_h[:, j], q)
        print(f"{organ:12s}" + "".join(f"{v:18.4g}" for v in values))
    half = result.nca["blood"].half_life_h
    print(f"blood terminal half-life (h): median {np.nanmedian(half):.4g}, P5-P95 {np.nanpercentile(half, 5):.4g}-"
          f"{np.nanpercentile(half, 95):.4g}")  # fmt: skip
    for path, what in ((args.out, "bands"), (args.subjects, "subjects"), (args.plot, "plot")):
        if path is not None:
            print(f"wrote {what}: {path}")
    return 0


def _sensitivity_command(args) -> int:
    import numpy as np

    from exopk.analysis.sensitivity import local_sensitivity, parse_outputs, sobol_sensitivity

    for path, flag in (
        (args.local_out, "--local-out"),
        (args.sobol_out, "--sobol-out"),
        (args.tornado, "--tornado"),
        (args.sobol_plot, "--sobol-plot"),
    ):
        if path is not None:
            _check_writable(path, flag)
    try:
        parse_outputs(args.outputs)
    except ExopkError as err:
        raise UsageError(f"`--outputs`: {err}") from None
    params = _load(args)
    regimen = _regimen(args)
    t_h = _time_grid(args, 100_000)
    progress = False if args.no_progress else None
    with _Runner(args) as executor:
        local = local_sensitivity(params, regimen, t_h, args.outputs, executor=executor, progress=progress)
        sobol = None
        if not args.no_sobol:
            if args.sobol_parameters:
                names = args.sobol_parameters
            else:
                # The largest |local coefficients| of the first output among the EV kinetic parameters
                # that a factor range suits: unbounded above, and not flows or volumes (which must
                # keep the flow and volume balances).
                from exopk.model.parameters import _SPECS

                coef = np.abs(np.nan_to_num(local.coefficients[:, 0]))
                ranked = [local.parameters[i] for i in np.argsort(-coef)]
                names = [
                    n
                    for n in ranked
                    if _SPECS[n].rule in ("positive", "non_negative")
                    and _SPECS[n].unit not in ("mL", "mL/h", "g", "g/mL")
                ][: args.sobol_top]
            kwargs = {"chunk_size": args.chunk_size} if args.chunk_size else {}
            sobol = sobol_sensitivity(
                params, regimen, t_h, names, args.outputs, n=args.sobol_n, factor=args.factor, seed=args.seed,
                executor=executor, progress=progress, **kwargs,
            )  # fmt: skip
    items = [(args.local_out, "--local-out", lambda p: local.to_frame().to_csv(p, index=False, float_format="%.8g"))]
    if sobol is not None:
        items.append(
            (args.sobol_out, "--sobol-out", lambda p: sobol.to_frame().to_csv(p, index=False, float_format="%.6g"))
        )
    if args.tornado is not None or (args.sobol_plot is not None and sobol is not None):
        import matplotlib

        matplotlib.use("Agg")
        from exopk.plots.analysis import plot_sobol, plot_tornado

        if args.tornado is not None:
            items.append((args.tornado, "--tornado", _figure_writer(plot_tornado(local))))
        if args.sobol_plot is not None and sobol is not None:
            items.append((args.sobol_plot, "--sobol-plot", _figure_writer(plot_sobol(sobol))))
    _write_outputs(items)
    for j, output in enumerate(local.outputs):
        order = np.argsort(-np.abs(np.nan_to_num(local.coefficients[:, j])))[:5]
        top = ", ".join(f"{local.parameters[i]} {local.coefficients[i, j]:+.3g}" for i in order)
        print(f"{output} = {local.nominal_outputs[j]:.4g}; largest local coefficients: {top}")
        if sobol is not None:
            order = np.argsort(-sobol.total_order[:, j])[:5]
            top = ", ".join(f"{sobol.names[i]} ST {sobol.total_order[i, j]:.3f}" for i in order)
            print(f"  Sobol (N={sobol.n_base}, {sobol.n_evaluations} runs): {top}")
    return 0


_ANALYSIS_COMMANDS = {"nca": _nca_command, "population": _population_command, "sensitivity": _sensitivity_command}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if args.command == "simulate":
            return _simulate(args)
        if args.command == "compare":
            return _compare(args)
        if args.command == "scale-dose":
            return _scale_dose(args)
        if args.command == "image":
            return _image(args)
        if args.command == "export-sbml":
            return _export_sbml(args)
        if args.command == "design":
            from exopk.cli.dosing import run_design

            return run_design(args)
        if args.command in _ANALYSIS_COMMANDS:
            return _ANALYSIS_COMMANDS[args.command](args)
        if args.command in _FIT_COMMANDS:
            return _FIT_COMMANDS[args.command](args)
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


# --- tracers and imaging (issue 4) -----------------------------------------------------------


def _tracer_name(text: str) -> str:
    """argparse type: a bundled label name (case-insensitive) or a path to a .toml file."""
    from exopk.observe.labels import available_labels

    looks_like_path = text.endswith(".toml") or "/" in text or "\\" in text
    if not looks_like_path and text.lower() not in {n.lower() for n in available_labels()}:
        raise argparse.ArgumentTypeError(
            f"unknown label {text!r} (`--tracer`); expected one of: {', '.join(available_labels())}, or a .toml path"
        )
    return text


def _add_tracer_argument(command: argparse.ArgumentParser) -> None:
    command.add_argument_group("label").add_argument(
        "--tracer",
        type=_tracer_name,
        help="simulate the EVs seen through a label (e.g. DiR, I-125, In-111, Tc-99m); adds label and signal rows",
    )


def _simulate_tracer(args, params, regimen, t_h):
    """The labelled simulation asked for by ``--tracer``, or None."""
    if getattr(args, "tracer", None) is None:
        return None
    from exopk.observe.labels import simulate_label

    if args.method == "ode":
        raise UsageError("`--tracer` needs the linear model (--method exact or expm), not --method ode")
    return simulate_label(params, regimen, t_h, args.tracer, method=args.method)


def _print_label_summary(labelled) -> None:
    import numpy as np

    t = labelled.t_h
    marks = [x for x in (0.5, 4.0, 24.0) if x <= t[-1]]
    lines = [
        f"label {labelled.label.name} ({labelled.label.family}, {labelled.label.modality}): "
        "label %ID (decay-corrected) / intact-EV %ID",
        "organ        " + "".join(f"{f'at {x:g} h':>20s}" for x in marks),
    ]
    for organ in filter(labelled.ev.is_shown, labelled.organs):
        label = labelled.label_percent_id(organ, decay_corrected=True)
        true = labelled.true_percent_id(organ)
        row = "".join(f"{np.interp(x, t, label):11.4g} /{np.interp(x, t, true):7.3g}" for x in marks)
        lines.append(f"{organ:13s}{row}")
    print("\n".join(lines))


def _times_arg(text: str) -> list[float]:
    values = []
    for part in text.split(","):
        parse = _non_negative_float("--times")
        values.append(parse(part.strip()))
    if not values:
        raise argparse.ArgumentTypeError("`--times` needs at least one time (h)")
    return values


def _add_image_parser(commands) -> None:
    from exopk.dosing import ROUTES

    image = commands.add_parser(
        "image",
        help="simulated whole-body optical images of a labelled-EV dose (schematic IVIS-like phantom)",
        description="Simulate a dose of labelled EVs (IV bolus unless --route) and draw the optical signal on a "
        "schematic mouse phantom at the given times (dorsal and ventral views). Needs an optical label "
        "(dye or luciferase).",
    )
    add_model_arguments(image)
    image.add_argument("--tracer", type=_tracer_name, required=True, help="optical label, e.g. DiR, DiD, NanoLuc")
    image.add_argument("--dose", type=_positive_float("--dose"), default=1e10, help="dose (particles, default 1e10)")
    image.add_argument("--route", choices=ROUTES, default="iv_bolus", help="administration route (default: iv_bolus)")
    image.add_argument("--duration", type=_positive_float("--duration"), help="infusion duration (h), for iv_infusion")
    image.add_argument("--site", help="target of --route local: <organ>_<vascular|tissue>, e.g. brain_tissue")
    image.add_argument("--times", type=_times_arg, default=[1.0, 24.0, 72.0], help="comma-separated times (h)")
    image.add_argument(
        "--views", choices=("dorsal", "ventral", "both"), default="both", help="which side(s) to image (default both)"
    )
    image.add_argument("--out", type=Path, required=True, help="PNG file to write")


def _image(args) -> int:
    import numpy as np

    from exopk.observe.labels import load_label, simulate_label

    _check_writable(args.out, "--out")
    params = _load(args)
    label = load_label(args.tracer)
    if label.modality != "optical":
        raise UsageError(
            f"`--tracer {args.tracer}` is a {label.modality} label; optical images need a dye or luciferase label"
        )
    times = sorted(set(args.times))
    t_h = np.unique(np.concatenate([[0.0], times]))
    _check_route_options(args, [args.route])
    labelled = simulate_label(params, _single_dose(args.route, args.dose, args), t_h, label)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from exopk.plots.imaging import plot_whole_body

    views = ("dorsal", "ventral") if args.views == "both" else (args.views,)
    fig = plot_whole_body(labelled, times, views=views)
    outputs = _AtomicOutputs()
    try:
        temp = outputs.temp_for(args.out, "--out")
        fig.savefig(temp, format="png", dpi=120)
        plt.close(fig)
        outputs.commit()
    except BaseException:
        outputs.discard()
        raise
    print(f"exopk: {label.name} images, {args.route}, at {', '.join(f'{t:g}' for t in times)} h ({', '.join(views)})")
    print(f"wrote image: {args.out}")
    return 0


# --- datasets and fitting (issue 6) ----------------------------------------------------------


def _add_datasets_parser(commands) -> None:
    data = commands.add_parser("datasets", help="literature datasets shipped with exopk (with provenance)")
    actions = data.add_subparsers(dest="datasets_command", metavar="ACTION", parser_class=_Parser)
    actions.required = True
    actions.add_parser("list", help="list the datasets: name, species, route, label, citation")
    show = actions.add_parser("show", help="print one dataset: provenance header and observations")
    show.add_argument("name", help="dataset name (see `exopk datasets list`)")
    show.add_argument("--csv", action="store_true", help="print the observations as CSV (no header)")


def _datasets_command(args) -> int:
    from exopk.io.datasets import list_datasets, load_dataset

    if args.datasets_command == "list":
        for name in list_datasets():
            meta = load_dataset(name).metadata
            print(f"{name:40s} {meta['species']:6s} {meta['route']:11s} label {meta['label']:8s} {meta['citation']}")
        return 0
    if args.name not in list_datasets():
        raise UsageError(f"unknown dataset {args.name!r}; expected one of: {', '.join(list_datasets())}")
    dataset = load_dataset(args.name)
    if args.csv:
        print(dataset.data.to_csv(index=False), end="")
    else:
        print(dataset.describe())
    return 0


def _add_fit_parser(commands) -> None:
    from exopk.cli.fit import add_fit_parser

    add_fit_parser(commands)


def _fit_command(args) -> int:
    from exopk.cli.fit import fit_command

    return fit_command(args)


_FIT_COMMANDS = {"datasets": _datasets_command, "fit": _fit_command}
