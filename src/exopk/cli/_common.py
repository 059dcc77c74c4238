"""What the commands share: the parser class, argument types, model and dose options, loading.

Library errors name Python arguments (``species``, ``rtol``); this module knows the flags
(``--species``, ``--rtol``) and says them to the user.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from exopk.errors import ExopkError

EXIT_FAILURE = 1
EXIT_USAGE = 2

#: The flag that sets each kind of bundled file.
FLAGS = {"species": "--species", "ev": "--ev", "scenarios": "--scenario", "routes": "--route"}


class UsageError(Exception):
    """A command-line argument has an invalid value (exit status 2)."""


# argparse takes a token that starts with "-" for an option unless it is a plain negative integer
# or decimal ("-1", "-0.5"): "--dose -1e10" then fails with "expected one argument", without the
# value. Any token that starts like a number ("-1e10", "-inf", "-1,2") is a value, so that it
# reaches the argument's type, whose message names the flag, the value and the rule. No exopk
# option looks like a negative number, so none is shadowed.
_NEGATIVE_NUMBER = re.compile(r"^-(\d|\.\d|inf|nan)", re.IGNORECASE)


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors (raised as :class:`UsageError`) and number-like negative values."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._negative_number_matcher = _NEGATIVE_NUMBER

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(message)


def float_arg(name: str, *, allow_zero: bool):
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


def positive_float(name: str):
    return float_arg(name, allow_zero=False)


def non_negative_float(name: str):
    return float_arg(name, allow_zero=True)


def positive_int(name: str):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"`{name}` must be a positive integer; got {text!r}") from None
        if value < 1:
            raise argparse.ArgumentTypeError(f"`{name}` must be a positive integer; got {text!r}")
        return value

    return parse


def comma_list(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def _assignment(text: str) -> tuple[str, float]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"`--set` takes NAME=VALUE; got {text!r}")
    try:
        return name.strip(), float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"`--set {name}` needs a number; got {value!r}") from None


def add_model_arguments(command: argparse.ArgumentParser) -> None:
    """The arguments that configure a model (species, EV preparation, overrides); read by :func:`load`.

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


def add_nasal_volume_arguments(group) -> None:
    group.add_argument(
        "--nasal-volume-ul",
        type=non_negative_float("--nasal-volume-ul"),
        help="intranasal: total instilled volume (µL, both nostrils, at most 50); the share reaching the "
        "lungs follows mouse data (Southam et al. 2002); default: none reaches the lungs",
    )
    group.add_argument(
        "--anaesthetised", action="store_true", help="intranasal with --nasal-volume-ul: dosed under anaesthesia"
    )


DOSING_GROUP = "dosing (one dose, or --regimen)"


def add_dosing_arguments(command: argparse.ArgumentParser, default_dose: float | None = None) -> None:
    """The dose options (one dose by any route, or --regimen); read by :func:`regimen`.

    Shared by every command that simulates a dose, so that route options reach all of them.
    """
    from exopk.dosing import ROUTES

    dosing = command.add_argument_group(DOSING_GROUP)
    dosing.add_argument("--route", choices=ROUTES, default="iv_bolus", help="administration route (default: iv_bolus)")
    default = "" if default_dose is None else f" (default {default_dose:g} unless --regimen)"
    dosing.add_argument(
        "--dose", type=positive_float("--dose"), help=f"dose, in particles (or µg with --dose-unit ug){default}"
    )
    command.set_defaults(default_dose_particles=default_dose)
    dosing.add_argument("--dose-unit", choices=("particles", "ug"), default="particles", help="unit of --dose")
    dosing.add_argument(
        "--particles-per-ug",
        type=positive_float("--particles-per-ug"),
        help="particles per µg EV protein; required with --dose-unit ug or dose_ug in a regimen (no default)",
    )
    dosing.add_argument("--duration", type=positive_float("--duration"), help="infusion duration (h), for iv_infusion")
    dosing.add_argument(
        "--site",
        help="target of --route local: <organ>_<vascular|tissue>, e.g. kidney_vascular (intra-arterial), brain_tissue",
    )
    add_nasal_volume_arguments(dosing)
    dosing.add_argument("--dose-time", type=non_negative_float("--dose-time"), default=0.0, help="time of the dose (h)")
    dosing.add_argument(
        "--regimen",
        type=Path,
        help="CSV with columns time_h, route, dose_particles or dose_ug, duration_h, site, lower_airway_fraction",
    )
    add_regimen_arguments(dosing, command)


def add_grid_arguments(group, *, dt_h: float) -> None:
    """``--t-end`` and ``--dt`` (h): the output times, read by :func:`time_grid`."""
    group.add_argument("--t-end", type=positive_float("--t-end"), default=48.0, help="end time (h, default 48)")
    group.add_argument("--dt", type=positive_float("--dt"), default=dt_h, help=f"output step (h, default {dt_h:g})")


def add_analysis_dosing(command: argparse.ArgumentParser) -> None:
    """Dose and output-grid options of the analysis commands (same names as `simulate`, read by `regimen`)."""
    add_dosing_arguments(command, default_dose=1e10)
    add_grid_arguments(command.add_argument_group("output times"), dt_h=0.5)


def add_runner_arguments(command: argparse.ArgumentParser) -> None:
    run = command.add_argument_group("running")
    where = run.add_mutually_exclusive_group()
    where.add_argument("--processes", type=positive_int("--processes"), help="run chunks in N worker processes")
    where.add_argument(
        "--dask", metavar="ADDRESS", help="run chunks on a dask.distributed scheduler (needs exopk[distributed])"
    )
    run.add_argument("--chunk-size", type=positive_int("--chunk-size"), help="parameter sets per task")
    run.add_argument("--no-progress", action="store_true", help="no progress bar (default: shown on a terminal)")


def tracer_name(text: str) -> str:
    """argparse type: a bundled label name (case-insensitive) or a path to a .toml file."""
    from exopk.observe.labels import available_labels

    looks_like_path = text.endswith(".toml") or "/" in text or "\\" in text
    if not looks_like_path and text.lower() not in {n.lower() for n in available_labels()}:
        raise argparse.ArgumentTypeError(
            f"unknown label {text!r} (`--tracer`); expected one of: {', '.join(available_labels())}, or a .toml path"
        )
    return text


def add_tracer_argument(command: argparse.ArgumentParser) -> None:
    command.add_argument_group("label").add_argument(
        "--tracer",
        type=tracer_name,
        help="simulate the EVs seen through a label (e.g. DiR, I-125, In-111, Tc-99m); adds label and signal rows",
    )


def check_bundled_name(kind: str, name: str, flag: str | None = None) -> None:
    """An unknown bundled name given on the command line is a usage error."""
    from exopk.model.parameters import available

    looks_like_path = name.endswith(".toml") or "/" in name or "\\" in name
    if not looks_like_path and name not in available(kind):  # type: ignore[arg-type]
        flag = flag or FLAGS[kind]
        what = "scenario" if kind == "scenarios" else kind
        raise UsageError(
            f"unknown {what} {name!r} (`{flag}`); expected one of: {', '.join(available(kind))}, or a .toml path"  # type: ignore[arg-type]
        )


def load(args):
    """The model the options describe: species, EV, scenarios, then ``--set`` overrides."""
    from exopk.errors import ParameterError
    from exopk.model.load import load_parameters
    from exopk.model.parameters import parameter_names

    check_bundled_name("species", args.species)
    check_bundled_name("ev", args.ev)
    scenarios = getattr(args, "scenarios", [])
    for scenario in scenarios:
        check_bundled_name("scenarios", scenario)
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


def time_grid(args, max_points: int, what: str = ""):
    """Output times 0, --dt, ..., --t-end (h), refusing grids that are inverted or too large."""
    import numpy as np

    if args.dt > args.t_end:
        raise UsageError(f"`--dt` ({args.dt} h) must not exceed `--t-end` ({args.t_end} h)")
    n_steps = int(round(args.t_end / args.dt))
    if n_steps > max_points:
        where = f" {what}" if what else ""
        raise UsageError(f"--t-end/--dt gives {n_steps} output times{where}; at most {max_points:,} (raise --dt)")
    return np.linspace(0.0, n_steps * args.dt, n_steps + 1)


def dose_particles(args) -> float:
    """The --dose in particles (converting µg with --particles-per-ug)."""
    from exopk.dosing import particles_from_protein

    if args.dose is None:
        raise UsageError("give a dose with --dose (particles)")
    if args.dose_unit == "ug":
        if args.particles_per_ug is None:
            raise UsageError("`--dose-unit ug` needs `--particles-per-ug` (no default conversion is assumed)")
        return particles_from_protein(args.dose, args.particles_per_ug)
    return args.dose


def check_route_options(args, routes: list[str]) -> None:
    """--duration belongs to iv_infusion and --site to local; each needs its route and vice versa."""
    flag = "--routes" if hasattr(args, "routes") else "--route"
    if hasattr(args, "routes"):
        if args.duration is not None and "iv_infusion" not in routes:
            raise UsageError(f"`--duration` applies to iv_infusion only; got {flag} {','.join(routes)}")
        if "iv_infusion" in routes and args.duration is None:
            raise UsageError("route iv_infusion needs `--duration` (h)")
    else:  # one dose: --duration or --rate make an infusion into any route's depot or site
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


def single_dose(route: str, dose: float, args, t_h: float = 0.0):
    """One dose of ``dose`` particles from the options (--duration for iv_infusion, --site for local)."""
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

        nasal = Intranasal.from_volume(dose, volume, anaesthetised=args.anaesthetised, t_h=t_h)
        return nasal if hasattr(args, "routes") else with_regimen_options(nasal, args)
    if not hasattr(args, "routes"):
        return _regimen_dose(route, dose, args, t_h=t_h)
    duration = args.duration if route == "iv_infusion" else None
    return route_dose(route, dose, t_h=t_h, duration_h=duration, organ=organ, space=space)


def regimen(args):
    """The regimen the options describe: ``--regimen FILE``, or one dose (``--dose`` by ``--route``)."""
    from exopk.dosing import Regimen

    if args.regimen is not None:
        if args.dose is not None:
            raise UsageError("give either --dose or --regimen, not both")
        if not args.regimen.exists():  # a directory or FIFO is named as such by the reader
            raise UsageError(f"`--regimen` file {str(args.regimen)!r} does not exist")
        if uses_regimen_options(args):
            raise UsageError(
                "repeat, lag, --f, --rate and --per-kg options apply to --dose; a --regimen file has columns for them"
            )
        return Regimen.from_csv(args.regimen, particles_per_ug=args.particles_per_ug)
    if args.dose is None:
        if getattr(args, "default_dose_particles", None) is None:
            raise UsageError("give a dose with --dose (particles) or a regimen file with --regimen")
        args.dose, args.dose_unit = args.default_dose_particles, "particles"
    check_route_options(args, [args.route])
    return Regimen([single_dose(args.route, dose_particles(args), args, t_h=args.dose_time)])


def model_notes(params) -> list[str]:
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


class Runner:
    """The executor asked for on the command line (closed on exit)."""

    def __init__(self, args) -> None:
        self.executor: Any = None
        self._close: Callable[[], object] | None = None
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


# Python arguments named in library messages, and the flag that sets each on the command line.
_ARGUMENT_FLAGS = (
    ("solver='Radau'", "--solver Radau"),
    ("`rtol`", "`--rtol`"),
    ("`atol_particles`", "`--atol-particles`"),
    ("method='ode'", "--method ode"),
    ("method='expm'", "--method expm"),
    ("`absolute_sd=True`", "`--absolute-sd`"),
)
# A library hint sentence starts with "Try " and ends the message.
_HINT = re.compile(r"\s*Try [^.]*\.?\s*$")


def translate_hint(message: str, available: set[str], *, anywhere: bool = False) -> str:
    """A library message with its Python-argument hint said in flags, or dropped if a flag is missing.

    Parameters
    ----------
    message : str
        The library's error message (or, with ``anywhere``, a text such as a report).
    available : set of str
        The option strings of the command that was run.
    anywhere : bool
        Replace every argument the command has a flag for, wherever it is in the text, instead of
        translating (or dropping) the final "Try ..." sentence.
    """
    if anywhere:
        for argument, flag in _ARGUMENT_FLAGS:
            if flag.strip("`").split()[0] in available:
                message = message.replace(argument, flag)
        return message
    match = _HINT.search(message)
    if match is None:
        return message
    hint = match.group(0)
    translated = hint
    for argument, flag in _ARGUMENT_FLAGS:
        if argument in translated:
            if flag.strip("`").split()[0] not in available:
                return message[: match.start()].rstrip()
            translated = translated.replace(argument, flag)
    if translated == hint and ("=" in hint or "`" in hint):
        return message[: match.start()].rstrip()  # names an argument the command line does not offer
    return message[: match.start()] + translated


# --- repeats, lag, bioavailability, rate and per-kg doses on the command line ---------------------


def fraction_arg(name: str):
    """argparse type: a number in [0, 1] (e.g. a bioavailability)."""

    def parse(text: str) -> float:
        value = non_negative_float(name)(text)
        if value > 1:
            raise argparse.ArgumentTypeError(f"`{name}` must be a fraction in [0, 1]; got {text!r}")
        return value

    return parse


def add_regimen_arguments(group, command: argparse.ArgumentParser) -> None:
    """Options that turn the one dose into a regimen; read by :func:`apply_regimen_options`."""
    group.add_argument("--every", type=positive_float("--every"), metavar="H", help="repeat the dose every H h")
    group.add_argument(
        "--n-doses", type=positive_int("--n-doses"), metavar="N", help="number of doses with --every (default 1)"
    )
    group.add_argument(
        "--ss", action="store_true", help="with --every: at periodic steady state before the first dose (NONMEM SS=1)"
    )
    group.add_argument(
        "--lag", type=non_negative_float("--lag"), metavar="H", help="lag time before the dose enters (h)"
    )
    group.add_argument(
        "--f", dest="bioavailability", type=fraction_arg("--f"), help="bioavailability: share that enters"
    )
    group.add_argument(
        "--rate",
        type=positive_float("--rate"),
        help="infusion rate (particles/h; per kg with --per-kg) instead of --duration; any route but iv_bolus",
    )
    group.add_argument("--per-kg", action="store_true", help="--dose is per kg of body weight")
    group.add_argument(
        "--doses-after-end",
        choices=("error", "drop"),
        default="error",
        help="doses after --t-end: refuse (default) or leave out of the simulation and the %%ID reference",
    )
    if command.prog.endswith(" simulate"):
        group.add_argument(
            "--events",
            type=Path,
            help="NONMEM-style event table (CSV: ID, TIME, AMT, CMT, EVID, RATE, II, ADDL, SS, DUR, LAG, F, WT, "
            "AMT_UNIT); one simulation per ID at its EVID 0 times",
        )


def infused(args) -> bool:
    """Whether the command-line dose is an infusion (--duration or --rate)."""
    return args.duration is not None or getattr(args, "rate", None) is not None


def with_regimen_options(dose, args, *, lag_f: bool = True):
    """``dose`` with --every/--n-doses/--ss (and --lag/--f when ``lag_f``) applied."""
    from exopk.errors import DosingError

    if getattr(args, "n_doses", None) is not None and args.every is None and args.n_doses > 1:
        raise UsageError("`--n-doses` needs `--every H` (the dosing interval)")
    if getattr(args, "ss", False) and args.every is None:
        raise UsageError("`--ss` needs `--every H` (the dosing interval of the steady state)")
    try:
        if lag_f and getattr(args, "lag", None) is not None:
            dose = dataclasses.replace(dose, lag_h=args.lag)
        if lag_f and getattr(args, "bioavailability", None) is not None:
            dose = dataclasses.replace(dose, f=args.bioavailability)
        if getattr(args, "every", None) is not None:
            dose = dose.repeated(args.every, args.n_doses or 1)
        if getattr(args, "ss", False):
            dose = dataclasses.replace(dose, ss=1)
    except DosingError as err:
        raise UsageError(str(err).rstrip(".")) from None
    return dose


def uses_regimen_options(args) -> bool:
    """Whether any of the regimen options were given (they apply to --dose, not to --regimen files)."""
    return any(
        getattr(args, name, None) not in (None, False)
        for name in ("every", "n_doses", "ss", "lag", "bioavailability", "rate", "per_kg")
    )


def check_late_doses(regimen, t_end_h: float, args) -> None:
    """Refuse, in command-line terms, doses after --t-end unless --doses-after-end drop."""

    if getattr(args, "doses_after_end", "error") != "error" or regimen.last_h <= t_end_h:
        return
    events = regimen.for_body_weight(1.0).events()
    starts = [t for t in list(events.bolus_t_h) + list(events.infusion_start_h) if t > t_end_h]
    raise UsageError(
        f"{len(starts)} administration(s) start after --t-end {t_end_h:g} h (the first at {min(starts):g} h, "
        f"the last at {max(starts):g} h); raise --t-end, or pass --doses-after-end drop to leave them out "
        "of the simulation and of the %ID reference"
    )


def late_dose_note(result) -> list[str]:
    """A line saying how many doses after the last output time were left out (never silent)."""
    n = result.metadata.get("doses_after_end", 0)
    if not n:
        return []
    return [
        f"note: {n} administration(s) after {result.t_h[-1]:g} h not simulated (--doses-after-end drop); "
        f"%ID is relative to the {result.dose_particles:.4g} particles given up to then"
    ]


def _regimen_dose(route: str, dose_particles: float, args, t_h: float = 0.0):
    """The command-line dose (route, site, infusion by --duration or --rate, per kg, lag, f, repeats)."""
    from exopk.dosing import dose_for_route
    from exopk.errors import DosingError

    common = {"dose_particles_per_kg" if getattr(args, "per_kg", False) else "dose_particles": dose_particles}
    if getattr(args, "lag", None) is not None:
        common["lag_h"] = args.lag
    if getattr(args, "bioavailability", None) is not None:
        common["f"] = args.bioavailability
    try:
        dose = dose_for_route(
            route,
            t_h=t_h,
            duration_h=args.duration,
            rate_particles_per_h=getattr(args, "rate", None),
            site=args.site if route == "local" else None,
            **common,
        )
    except DosingError as err:
        raise UsageError(str(err).rstrip(".")) from None
    return with_regimen_options(dose, args, lag_f=False)
