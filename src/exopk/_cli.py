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
    model.add_argument(
        "--scenario",
        dest="scenarios",
        action="append",
        default=[],
        metavar="NAME",
        help="condition overlay applied before --set, e.g. acute_kidney_injury; bundled name or .toml path "
        "(repeatable; applied in order; `exopk params list` lists them)",
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
        "--site",
        help="target of --route local: <organ>_<vascular|tissue>, e.g. kidney_vascular (intra-arterial), brain_tissue",
    )
    dosing.add_argument(
        "--dose-time", type=_non_negative_float("--dose-time"), default=0.0, help="time of the dose (h)"
    )
    dosing.add_argument(
        "--regimen", type=Path, help="CSV with columns time_h, route, dose_particles or dose_ug, duration_h, site"
    )
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
    return parser


def _add_compare_parser(commands) -> None:
    from ._compare import EXPOSURE_COMPARTMENTS
    from ._dosing import ROUTES

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

    from ._compare import EXPOSURE_COMPARTMENTS, compare_routes, plot_route_comparison
    from ._dosing import ROUTES

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
    from ._parameters import _FLAGS, available

    looks_like_path = name.endswith(".toml") or "/" in name or "\\" in name
    if not looks_like_path and name not in available(kind):  # type: ignore[arg-type]
        flag = flag or _FLAGS[kind]
        what = "scenario" if kind == "scenarios" else kind
        raise UsageError(
            f"unknown {what} {name!r} (`{flag}`); expected one of: {', '.join(available(kind))}, or a .toml path"
        )  # type: ignore[arg-type]


def _load(args):
    from ._errors import ParameterError
    from ._parameters import load_parameters, parameter_names

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
    from ._dosing import particles_from_protein

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
    if args.duration is not None and "iv_infusion" not in routes:
        raise UsageError(f"`--duration` applies to iv_infusion only; got {flag} {','.join(routes)}")
    if "iv_infusion" in routes and args.duration is None:
        raise UsageError("route iv_infusion needs `--duration` (h)")
    if args.site is not None and "local" not in routes:
        raise UsageError(f"`--site` applies to route local only; got {flag} {','.join(routes)}")
    if "local" in routes and args.site is None:
        raise UsageError("route local needs `--site <organ>_<vascular|tissue>`, e.g. kidney_vascular")


def _single_dose(route: str, dose_particles: float, args, t_h: float = 0.0):
    """One dose from the command-line options (--duration for iv_infusion, --site for local)."""
    from ._compare import route_dose
    from ._dosing import LOCAL_SPACES
    from ._parameters import ORGANS

    organ, space = None, "tissue"
    if route == "local":
        organ, _, space = args.site.rpartition("_")
        if organ not in ORGANS or space not in LOCAL_SPACES:
            raise UsageError(
                f"`--site` must be <organ>_<vascular|tissue> with organ one of {', '.join(ORGANS)}; got {args.site!r}"
            )
    duration = args.duration if route == "iv_infusion" else None
    return route_dose(route, dose_particles, t_h=t_h, duration_h=duration, organ=organ, space=space)


def _regimen(args):
    from ._dosing import Regimen

    if args.regimen is not None:
        if args.dose is not None:
            raise UsageError("give either --dose or --regimen, not both")
        if not args.regimen.is_file():
            raise UsageError(f"`--regimen` file {str(args.regimen)!r} does not exist")
        return Regimen.from_csv(args.regimen, particles_per_ug=args.particles_per_ug)
    if args.dose is None:
        raise UsageError("give a dose with --dose (particles) or a regimen file with --regimen")
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

    from ._model import REPORTED_ORGANS
    from ._simulate import simulate

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
    labelled = _simulate_tracer(args, params, regimen, t_h)
    result = simulate(params, regimen, t_h, method=args.method) if labelled is None else labelled.ev

    outputs = _AtomicOutputs()
    try:
        if args.out is not None:
            temp = outputs.temp_for(args.out, "--out")
            (result if labelled is None else labelled).to_frame().to_csv(temp, index=False, float_format="%.10g")
        if args.plot is not None:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt

            from ._plot import plot_organ_curves

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
    sites = {"nasal_cavity", "peritoneal_cavity", "subcutaneous_site"} - set(result.dosed_sites)
    for organ in (o for o in result.organs if o not in sites):
        values = (
            result.percent_id(organ) if organ != "eliminated" else 100 * result.eliminated() / result.dose_particles
        )
        row = "".join(f"{np.interp(x, t, values):14.4g}" for x in marks)
        lines.append(f"{organ:13s}{row}")
        if organ == "brain":
            row = "".join(f"{np.interp(x, t, result.extravascular_percent_id('brain')):14.4g}" for x in marks)
            lines.append(f"{'  tissue':13s}{row}")
    lines += _model_notes(result.params)
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
    from ._parameters import available

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
    from ._scaling import species_reference

    reference = {k: v for k, v in species_reference(species).items() if k != "body_weight_g"}
    if reference:
        print("# reference physiology (not used by the model equations)")
        for name, (value, unit, source) in reference.items():
            print(f"  {name:40s} {value:>12.6g} {unit:10s} {source}")


def _scale_dose(args) -> int:
    from ._scaling import scale_dose

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
        if args.command == "compare":
            return _compare(args)
        if args.command == "scale-dose":
            return _scale_dose(args)
        if args.command == "image":
            return _image(args)
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


# --- tracers and imaging (issue 4) -----------------------------------------------------------


def _tracer_name(text: str) -> str:
    """argparse type: a bundled label name (case-insensitive) or a path to a .toml file."""
    from ._tracer import available_labels

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
    from ._tracer import simulate_label

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
    undosed = {"nasal_cavity", "peritoneal_cavity", "subcutaneous_site"} - set(labelled.ev.dosed_sites)
    for organ in (o for o in labelled.organs if o not in undosed):
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
    from ._dosing import ROUTES

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

    from ._tracer import load_label, simulate_label

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

    from ._imaging import plot_whole_body

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
