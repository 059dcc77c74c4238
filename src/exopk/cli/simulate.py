"""``exopk simulate``: a dose or regimen; a tidy CSV, a figure, and a summary at stated times."""

from __future__ import annotations

import argparse
from pathlib import Path

from exopk.cli import _common as c
from exopk.cli._outputs import Outputs, clip_round_off

NAME = "simulate"
#: Times (h) of the printed summary, those within the run (the end of a run shorter than 0.5 h).
SUMMARY_TIMES_H = (0.5, 4.0, 24.0)
_DEFAULT_ORGANS = "blood,lung,liver,spleen,kidney,brain,rest"


def add_parser(commands) -> argparse.ArgumentParser:
    sim = commands.add_parser(
        NAME,
        help="simulate a dose; write a tidy CSV and a plot of organ curves",
        description="Simulate a dose or regimen. Times in hours; doses in particles unless --dose-unit ug. "
        "The summary printed at 0.5, 4 and 24 h is simulated at those times exactly.",
    )
    c.add_model_arguments(sim)
    c.add_dosing_arguments(sim)
    grid = sim.add_argument_group("output")
    c.add_grid_arguments(grid, dt_h=0.05)
    grid.add_argument("--method", choices=("exact", "expm", "ode"), help="solver (default: exact if linear, else ode)")
    grid.add_argument("--out", type=Path, help="tidy CSV: time_h, organ, quantity, value, unit (`-`: standard output)")
    grid.add_argument("--plot", type=Path, help="figure of organ curves (log y); format from the extension")
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
    ode = sim.add_argument_group("stiff solver (--method ode, the capacity-limited model)")
    ode.add_argument(
        "--solver",
        choices=("BDF", "Radau", "LSODA"),
        default=None,
        help="integrator (default: LSODA for the capacity-limited model, BDF otherwise; measured in "
        "benchmarks/bench_capacity.py)",
    )
    ode.add_argument("--rtol", type=c.positive_float("--rtol"), default=1e-8, help="relative tolerance (default 1e-8)")
    c.add_tracer_argument(sim)
    return sim


def _labelled(args, params, regimen, t_h):
    """The labelled simulation asked for by ``--tracer``, or None."""
    if getattr(args, "tracer", None) is None:
        return None
    from exopk.observe.labels import simulate_label

    if args.method == "ode":
        raise c.UsageError("`--tracer` needs the linear model (--method exact or expm), not --method ode")
    return simulate_label(params, regimen, t_h, args.tracer, method=args.method)


def _solve(args, params, regimen, t_h):
    from exopk.simulation import simulate

    return simulate(
        params,
        regimen,
        t_h,
        method=args.method,
        rtol=args.rtol,
        solver=args.solver,
        doses_after_end=args.doses_after_end,
    )


def run(args) -> int:
    if getattr(args, "events", None) is not None:
        return run_events(args)
    from exopk.model.graph import REPORTED_ORGANS

    organs_given = args.organs is not None
    organs = c.comma_list(args.organs or _DEFAULT_ORGANS)
    for organ in organs:
        if organ not in REPORTED_ORGANS[:-1]:
            raise c.UsageError(
                f"unknown organ {organ!r} in `--organs`; expected some of: {', '.join(REPORTED_ORGANS[:-1])}"
            )
    t_h = c.time_grid(args, 1_000_000)
    outputs = Outputs([(args.out, "--out", "csv"), (args.plot, "--plot", "figure")])
    params = c.load(args)
    regimen = c.regimen(args)
    c.check_late_doses(regimen, float(t_h[-1]), args)
    labelled = _labelled(args, params, regimen, t_h)
    result = _solve(args, params, regimen, t_h) if labelled is None else labelled.ev

    with outputs:
        if outputs.wants("--out"):
            frame = (result if labelled is None else labelled).to_frame()
            remedy = "try another --method, or with --method ode a tighter --rtol or --solver Radau"
            outputs.frame("--out", clip_round_off(frame, result.dose_particles, remedy))
        if outputs.wants("--plot"):
            import matplotlib

            matplotlib.use("Agg")
            from exopk.plots.organs import plot_organ_curves

            if not organs_given and args.quantity != "percent_id_per_g":  # sites have no mass, hence no %ID/g
                organs = organs + list(result.dosed_sites)
            outputs.figure("--plot", plot_organ_curves(result, organs=organs, quantity=args.quantity))
    marks = [x for x in SUMMARY_TIMES_H if x <= t_h[-1]] or [float(t_h[-1])]  # a short run: its end
    if regimen.last_h > marks[-1]:
        # Doses after the last summary time: summarise the end too, so that the summary simulation
        # gives the same doses (and the same %ID reference) as the table.
        marks.append(float(t_h[-1]))
    at = _at_marks(args, params, regimen, marks, labelled)
    lines = summary_lines(result, at if labelled is None or at is None else at.ev)
    lines += c.model_notes(result.params)
    lines += c.late_dose_note(result)
    lines += outputs.written((("--out", "table"), ("--plot", "plot")))
    if labelled is not None:
        lines += label_summary_lines(at)
    print("\n".join(lines), file=outputs.messages)
    return 0


def _at_marks(args, params, regimen, marks, labelled):
    """The same simulation at the summary times themselves (not interpolated between output points)."""
    import numpy as np

    if not marks:
        return None
    t_h = np.asarray(marks, dtype=float)
    if labelled is not None:
        from exopk.observe.labels import simulate_label

        return simulate_label(params, regimen, t_h, labelled.label, method=args.method)
    return _solve(args, params, regimen, t_h)


def _round(value: float) -> float:
    """Solver round-off below zero (at most 1e-9 of the dose, in %ID) is shown as 0."""
    from exopk.cli._outputs import ROUND_OFF_FRACTION_OF_DOSE

    return 0.0 if -100 * ROUND_OFF_FRACTION_OF_DOSE <= value < 0 else value


def summary_lines(result, at) -> list[str]:
    """The summary table: %ID per organ at the summary times, read from ``at`` (simulated at them)."""
    t = result.t_h
    marks = [] if at is None else list(at.t_h)
    ev = at
    header = "organ        " + "".join(f"{f'%ID at {x:g} h':>14s}" for x in marks)
    lines = [
        f"exopk: {result.metadata['species']} / {result.metadata['ev']}, "
        f"{', '.join(sorted({d.route for d in result.regimen.doses}))}, "
        f"total dose {result.dose_particles:.4g} particles, {t.size} times to {t[-1]:g} h, method {result.method}",
        header,
    ]
    for organ in filter(result.is_shown, result.organs):
        if ev is None:
            lines.append(organ)
            continue
        values = ev.percent_id(organ) if organ != "eliminated" else 100 * ev.eliminated() / ev.dose_particles
        lines.append(f"{organ:13s}" + "".join(f"{_round(v):14.4g}" for v in values))
        if organ == "brain":
            tissue = ev.extravascular_percent_id("brain")
            lines.append(f"{'  tissue':13s}" + "".join(f"{_round(v):14.4g}" for v in tissue))
    return lines


def label_summary_lines(labelled) -> list[str]:
    """Label %ID (decay-corrected) and intact-EV %ID per organ at the times of ``labelled``."""
    if labelled is None:
        return []
    marks = list(labelled.t_h)
    lines = [
        f"label {labelled.label.name} ({labelled.label.family}, {labelled.label.modality}): "
        "label %ID (decay-corrected) / intact-EV %ID",
        "organ        " + "".join(f"{f'at {x:g} h':>20s}" for x in marks),
    ]
    for organ in filter(labelled.ev.is_shown, labelled.organs):
        label = labelled.label_percent_id(organ, decay_corrected=True)
        true = labelled.true_percent_id(organ)
        row = "".join(f"{_round(a):11.4g} /{_round(b):7.3g}" for a, b in zip(label, true, strict=True))
        lines.append(f"{organ:13s}{row}")
    return lines


def run_events(args) -> int:
    """``exopk simulate --events table.csv``: every ID at its observation times; one tidy CSV with an id column."""

    from exopk.analysis.subjects import simulate_subjects
    from exopk.dosing import read_event_csv

    if args.regimen is not None or args.dose is not None or c.uses_regimen_options(args):
        raise c.UsageError("`--events` gives every dose; do not combine it with --dose, --regimen or repeat options")
    if args.plot is not None:
        raise c.UsageError("`--events` writes a table (--out); plot subjects from it")
    if not args.events.exists():  # a directory or FIFO is named as such by the reader
        raise c.UsageError(f"`--events` file {str(args.events)!r} does not exist")
    outputs = Outputs([(args.out, "--out", "csv")])
    params = c.load(args)
    subjects = read_event_csv(args.events, particles_per_ug=args.particles_per_ug)
    grid = c.time_grid(args, 1_000_000)
    result = simulate_subjects(params, subjects, t_h=grid, doses_after_end=args.doses_after_end)
    with outputs:
        if outputs.wants("--out"):
            outputs.frame("--out", result.to_frame())
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
    lines += outputs.written((("--out", "table"),))
    print("\n".join(lines), file=outputs.messages)
    return 0
