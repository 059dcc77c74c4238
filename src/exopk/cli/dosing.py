"""Command-line dosing: repeats, steady state, lag, bioavailability, infusions by rate, per-kg doses,
event tables (``exopk simulate --events``) and regimen design (``exopk design``)."""

from __future__ import annotations

import argparse
import dataclasses
import math
from pathlib import Path


def _number(name: str, *, positive: bool = False, fraction: bool = False):
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"`{name}` must be a number; got {text!r}") from None
        if not math.isfinite(value) or value < 0 or (positive and value == 0) or (fraction and value > 1):
            rule = "a fraction in [0, 1]" if fraction else ("positive" if positive else "non-negative") + " and finite"
            raise argparse.ArgumentTypeError(f"`{name}` must be {rule}; got {text!r}")
        return value

    return parse


def _count(name: str):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"`{name}` must be a whole number; got {text!r}") from None
        if value < 1:
            raise argparse.ArgumentTypeError(f"`{name}` must be at least 1; got {text!r}")
        return value

    return parse


def add_regimen_arguments(group, command: argparse.ArgumentParser) -> None:
    """Options that turn the one dose into a regimen; read by :func:`apply_regimen_options`."""
    group.add_argument("--every", type=_number("--every", positive=True), metavar="H", help="repeat the dose every H h")
    group.add_argument(
        "--n-doses", type=_count("--n-doses"), metavar="N", help="number of doses with --every (default 1)"
    )
    group.add_argument(
        "--ss", action="store_true", help="with --every: at periodic steady state before the first dose (NONMEM SS=1)"
    )
    group.add_argument("--lag", type=_number("--lag"), metavar="H", help="lag time before the dose enters (h)")
    group.add_argument(
        "--f", dest="bioavailability", type=_number("--f", fraction=True), help="bioavailability: share that enters"
    )
    group.add_argument(
        "--rate",
        type=_number("--rate", positive=True),
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


def single_dose(route: str, dose_particles: float, args, t_h: float = 0.0):
    """The command-line dose (route, site, infusion by --duration or --rate, per kg, lag, f, repeats)."""
    from exopk.cli.main import UsageError
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


def with_regimen_options(dose, args, *, lag_f: bool = True):
    """``dose`` with --every/--n-doses/--ss (and --lag/--f when ``lag_f``) applied."""
    from exopk.cli.main import UsageError
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


def simulate_events(args) -> int:
    """``exopk simulate --events table.csv``: every ID at its observation times; one tidy CSV with an id column."""
    from exopk.analysis.subjects import simulate_subjects
    from exopk.cli.main import UsageError, _AtomicOutputs, _check_writable, _load
    from exopk.dosing import read_event_csv

    if args.regimen is not None or args.dose is not None or uses_regimen_options(args):
        raise UsageError("`--events` gives every dose; do not combine it with --dose, --regimen or repeat options")
    if args.plot is not None:
        raise UsageError("`--events` writes a table (--out); plot subjects from it")
    if not args.events.is_file():
        raise UsageError(f"`--events` file {str(args.events)!r} does not exist")
    if args.out is not None:
        _check_writable(args.out, "--out")
    params = _load(args)
    subjects = read_event_csv(args.events, particles_per_ug=args.particles_per_ug)
    import numpy as np

    grid = np.arange(0.0, args.t_end + args.dt / 2, args.dt)
    result = simulate_subjects(params, subjects, t_h=grid, doses_after_end=args.doses_after_end)
    frame = result.to_frame()
    outputs = _AtomicOutputs()
    try:
        if args.out is not None:
            temp = outputs.temp_for(args.out, "--out")
            frame.to_csv(temp, index=False, float_format="%.10g")
        outputs.commit()
    except BaseException:
        outputs.discard()
        raise
    lines = [
        f"exopk: {len(result.ids)} subject(s) from {args.events} ({params.species} / {params.ev}); "
        f"{result.metadata['n_batches']} batch(es), {result.metadata['n_single']} simulated one by one",
        f"{'id':>8s} {'WT (kg)':>9s} {'dose (particles)':>17s} {'times':>6s} {'liver %ID at last time':>23s}",
    ]
    for sid in result.ids:
        liver = result.percent_id(sid, "liver")[-1]
        lines.append(
            f"{sid!s:>8s} {result.body_weight_kg[sid]:9.4g} {result.dose_particles[sid]:17.4g} "
            f"{result.t_h[sid].size:6d} {liver:23.4g}"
        )
    if args.out is not None:
        lines.append(f"wrote table: {args.out}")
    print("\n".join(lines))
    return 0


def late_dose_note(result) -> list[str]:
    """A line saying how many doses after the last output time were left out (never silent)."""
    n = result.metadata.get("doses_after_end", 0)
    if not n:
        return []
    return [
        f"note: {n} administration(s) after {result.t_h[-1]:g} h not simulated (--doses-after-end drop); "
        f"%ID is relative to the {result.dose_particles:.4g} particles given up to then"
    ]


# --- exopk design ----------------------------------------------------------------------------


def add_design_parser(commands) -> None:
    """``exopk design``: dose and interval keeping an organ's steady-state exposure in a window."""
    from exopk.analysis.design import DEFAULT_INTERVALS_H, DESIGN_QUANTITIES
    from exopk.cli.main import _add_nasal_volume_arguments, _positive_float, add_model_arguments
    from exopk.dosing import ROUTES

    cmd = commands.add_parser(
        "design",
        help="find the dose and interval that keep an organ's steady-state exposure inside a window",
        description="Design a regimen: for each candidate interval, the periodic steady state of the dose, its "
        "trough and peak in --organ, and the doses that keep both in [--low, --high]. Recommends the longest "
        "feasible interval. %%ID windows select the interval only (%%ID does not depend on the dose).",
    )
    add_model_arguments(cmd)
    dosing = cmd.add_argument_group("dose")
    dosing.add_argument("--route", choices=[r for r in ROUTES if r != "iv_infusion"], default="iv_bolus")
    dosing.add_argument("--dose", type=_positive_float("--dose"), default=1e10, help="dose to start from (particles)")
    dosing.add_argument("--duration", type=_positive_float("--duration"), help="give the dose as an infusion (h)")
    dosing.add_argument("--site", help="target of --route local: <organ>_<vascular|tissue>")
    _add_nasal_volume_arguments(dosing)
    target = cmd.add_argument_group("target")
    target.add_argument("--organ", required=True, help="organ whose exposure is kept in the window (e.g. kidney)")
    target.add_argument("--low", type=_positive_float("--low"), required=True, help="lowest acceptable trough")
    target.add_argument("--high", type=_positive_float("--high"), required=True, help="highest acceptable peak")
    target.add_argument("--quantity", choices=tuple(DESIGN_QUANTITIES), default="amount_particles")
    target.add_argument("--tissue", action="store_true", help="intact EVs outside the organ's blood only")
    target.add_argument("--tracer", help="keep a label's signal in the window (e.g. DiR) instead of intact EVs")
    target.add_argument(
        "--intervals",
        default=",".join(f"{v:g}" for v in DEFAULT_INTERVALS_H),
        help="candidate intervals (h), comma-separated (default: %(default)s)",
    )
    out = cmd.add_argument_group("output")
    out.add_argument("--out", type=Path, help="CSV of the candidates")
    out.add_argument("--plot", type=Path, help="PNG of the steady-state curve and the window")


def run_design(args) -> int:
    from exopk.analysis.design import design_regimen
    from exopk.cli.main import UsageError, _AtomicOutputs, _check_writable, _load

    try:
        intervals = [float(x) for x in args.intervals.split(",") if x.strip()]
    except ValueError:
        raise UsageError(f"`--intervals` must be comma-separated hours; got {args.intervals!r}") from None
    for path, flag in ((args.out, "--out"), (args.plot, "--plot")):
        if path is not None:
            _check_writable(path, flag)
    if args.out is not None and args.plot is not None and args.out.resolve() == args.plot.resolve():
        raise UsageError("`--out` and `--plot` name the same file")
    params = _load(args)
    for name in ("rate", "per_kg", "lag", "bioavailability", "every", "n_doses", "ss"):
        setattr(args, name, None)
    if args.route == "local" and args.site is None:
        raise UsageError("route local needs `--site <organ>_<vascular|tissue>`, e.g. kidney_vascular")
    volume = getattr(args, "nasal_volume_ul", None)
    if args.route == "intranasal" and volume is not None:
        from exopk.dosing import Intranasal

        dose = Intranasal.from_volume(args.dose, volume, anaesthetised=args.anaesthetised)
    else:
        dose = single_dose(args.route, args.dose, args)
    design = design_regimen(
        params,
        dose,
        args.organ,
        args.low,
        args.high,
        quantity=args.quantity,
        intervals_h=intervals,
        label=args.tracer,
        extravascular=args.tissue,
    )
    outputs = _AtomicOutputs()
    try:
        if args.out is not None:
            temp = outputs.temp_for(args.out, "--out")
            table = design.candidates.copy()
            table.insert(0, "unit", design.unit)
            table.to_csv(temp, index=False, float_format="%.10g")
        if args.plot is not None:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt

            from exopk.plots.design import plot_regimen_design

            fig = plot_regimen_design(design)
            temp = outputs.temp_for(args.plot, "--plot")
            fig.savefig(temp, format="png", dpi=120)
            plt.close(fig)
        outputs.commit()
    except BaseException:
        outputs.discard()
        raise
    lines = [
        f"exopk design: {params.species} / {params.ev}, {dose.route}, {design.organ} {design.quantity} "
        f"({design.measure}) in [{design.low:g}, {design.high:g}] {design.unit} at steady state",
        f"{'interval (h)':>12s} {'trough':>11s} {'peak':>11s} {'dose min':>11s} {'dose max':>11s}  feasible",
    ]
    for row in design.candidates.itertuples(index=False):
        lines.append(
            f"{row.interval_h:12g} {row.trough:11.4g} {row.peak:11.4g} {row.dose_min_particles:11.4g} "
            f"{row.dose_max_particles:11.4g}  {'yes' if row.feasible else 'no'}"
        )
    lines.append(design.summary())
    for path, what in ((args.out, "table"), (args.plot, "plot")):
        if path is not None:
            lines.append(f"wrote {what}: {path}")
    print("\n".join(lines))
    return 0


def check_late_doses(regimen, t_end_h: float, args) -> None:
    """Refuse, in command-line terms, doses after --t-end unless --doses-after-end drop."""
    from exopk.cli.main import UsageError

    if getattr(args, "doses_after_end", "error") != "error" or regimen.last_h <= t_end_h:
        return
    events = regimen.for_body_weight(1.0).events()
    starts = [t for t in list(events.bolus_t_h) + list(events.infusion_start_h) if t > t_end_h]
    raise UsageError(
        f"{len(starts)} administration(s) start after --t-end {t_end_h:g} h (the first at {min(starts):g} h, "
        f"the last at {max(starts):g} h); raise --t-end, or pass --doses-after-end drop to leave them out "
        "of the simulation and of the %ID reference"
    )
