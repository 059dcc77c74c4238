"""``exopk population``: a virtual population; percentile bands and per-subject NCA."""

from __future__ import annotations

import argparse
from pathlib import Path

from exopk.cli import _common as c
from exopk.cli._outputs import ROUND_OFF_FRACTION_OF_DOSE, Outputs
from exopk.errors import ExopkError, SimulationError

NAME = "population"


def _cv_assignment(text: str) -> tuple[str, float]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"`--cv` takes NAME=CV, e.g. liver_uptake_vascular_per_h=0.3; got {text!r}")
    try:
        return name.strip(), float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"`--cv {name}` needs a number; got {value!r}") from None


def add_parser(commands) -> argparse.ArgumentParser:
    pop = commands.add_parser(
        NAME,
        help="simulate a virtual population: percentile bands and per-subject NCA",
        description=(
            "Lognormal between-subject variability (--cv NAME=CV, CV 0.3 = 30 %) and allometric body-weight "
            "scaling (--body-weight-cv), seeded. Percentiles per organ and time; per-subject Cmax, Tmax, AUC "
            "and blood NCA."
        ),
    )
    c.add_model_arguments(pop)
    c.add_analysis_dosing(pop)
    spec = pop.add_argument_group("population")
    spec.add_argument("--n", type=c.positive_int("--n"), default=1000, help="virtual subjects (default 1000)")
    spec.add_argument("--cv", type=_cv_assignment, action="append", default=[], metavar="NAME=CV", help="repeatable")
    spec.add_argument("--correlation", type=Path, help="CSV correlation matrix of the --cv parameters (no header)")
    spec.add_argument("--body-weight-cv", type=c.positive_float("--body-weight-cv"), help="lognormal body weights")
    spec.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    spec.add_argument("--percentiles", type=c.comma_list, default=["5", "50", "95"], help="default: 5,50,95")
    out = pop.add_argument_group("outputs")
    out.add_argument(
        "--out", type=Path,
        help="percentile bands, a row per time, a column per organ and percentile (%%ID): CSV, or Parquet for "
        "a .parquet path (needs exopk[parquet]); `-`: CSV on standard output",
    )  # fmt: skip
    out.add_argument(
        "--subjects", type=Path,
        help="per-subject summaries, a row per subject, a column per organ and summary (unit in the name): "
        "CSV or .parquet; `-`: standard output",
    )  # fmt: skip
    out.add_argument("--plot", type=Path, help="figure of the prediction bands; format from the extension")
    out.add_argument("--organs", type=c.comma_list, default=["blood", "liver", "spleen", "lung", "brain"])
    c.add_runner_arguments(pop)
    return pop


def clip_bands(columns: list[str], values):
    """Percentile bands (%ID, after ``time_h``) with solver round-off below zero set to 0.

    Percentiles of %ID: the dose of every subject is 100 %ID, so the round-off bound is
    ``ROUND_OFF_FRACTION_OF_DOSE`` x 100 %ID (as :func:`exopk.cli._outputs.clip_round_off`).

    Raises
    ------
    SimulationError
        A value more negative than the bound: a solver error the output must not hide.
    """
    import numpy as np

    bound = ROUND_OFF_FRACTION_OF_DOSE * 100.0
    bands = values[:, 1:]
    real = bands < -bound
    if np.any(real):
        i, j = np.unravel_index(int(np.flatnonzero(real)[0]), bands.shape)
        raise SimulationError(
            f"the solution is negative beyond round-off ({bands[i, j]:.3g} %ID at time_h {values[i, 0]:g}, "
            f"{columns[j + 1]}; bound {bound:.3g}, {ROUND_OFF_FRACTION_OF_DOSE:g} of the dose): the solver is "
            "inaccurate here"
        )
    out = values.copy()
    np.maximum(out[:, 1:], 0.0, out=out[:, 1:])
    return out


def write_outputs(outputs: Outputs, result) -> None:
    """Stage ``--out`` (percentile bands) and ``--subjects`` (per-subject summaries) when asked for.

    Both are wide tables (:meth:`PopulationResult.bands_table`, :meth:`PopulationResult.subjects_table`),
    written with vectorised formatting, 8 significant digits.
    """
    if outputs.wants("--out"):
        columns, values = result.bands_table()
        outputs.table("--out", columns, clip_bands(columns, values), float_format="%.8g")
    if outputs.wants("--subjects"):
        columns, values = result.subjects_table()
        outputs.table("--subjects", columns, values, float_format="%.8g", int_columns=(0,))


def write_plot(outputs: Outputs, result, organs) -> None:
    """Stage ``--plot``: the prediction bands of ``organs`` (matplotlib, Agg backend)."""
    import matplotlib

    matplotlib.use("Agg")
    from exopk.plots.analysis import plot_population_bands

    outputs.figure("--plot", plot_population_bands(result, organs=organs))


def run(args) -> int:
    import numpy as np

    from exopk.analysis.population import sample_population, simulate_population
    from exopk.model.graph import REPORTED_ORGANS

    outputs = Outputs(
        [(args.out, "--out", "table"), (args.subjects, "--subjects", "table"), (args.plot, "--plot", "figure")]
    )
    for organ in args.organs:
        if organ not in REPORTED_ORGANS[:-1]:
            raise c.UsageError(
                f"unknown organ {organ!r} in `--organs`; expected some of {', '.join(REPORTED_ORGANS[:-1])}"
            )
    try:
        percentiles = [float(x) for x in args.percentiles]
    except ValueError:
        raise c.UsageError(f"`--percentiles` must be numbers; got {','.join(args.percentiles)}") from None
    if not args.cv and args.body_weight_cv is None:
        raise c.UsageError("nothing varies: give --cv NAME=CV (repeatable) and/or --body-weight-cv")
    params = c.load(args)
    regimen = c.regimen(args)
    t_h = c.time_grid(args, 100_000)
    correlation = None
    if args.correlation is not None:
        if not args.correlation.exists():  # a directory or FIFO is named as such by the reader
            raise c.UsageError(f"`--correlation` file {str(args.correlation)!r} does not exist")
        import io

        from exopk.errors import PopulationError
        from exopk.model.files import MAX_TABLE_BYTES, read_text

        text = read_text(args.correlation, "`--correlation` file", error=PopulationError, max_bytes=MAX_TABLE_BYTES)
        try:
            correlation = np.loadtxt(io.StringIO(text), delimiter=",", ndmin=2)
        except ValueError as err:
            raise ExopkError(f"`--correlation` {args.correlation}: not a numeric CSV matrix ({err})") from None
    cv = dict(args.cv)
    if len(cv) != len(args.cv):
        raise c.UsageError("`--cv` names a parameter twice")
    population = sample_population(
        params, args.n, cv, correlation=correlation, body_weight_cv=args.body_weight_cv, seed=args.seed
    )
    with c.Runner(args) as executor:
        kwargs = {"chunk_size": args.chunk_size} if args.chunk_size else {}
        result = simulate_population(
            population, regimen, t_h, percentiles=percentiles, executor=executor,
            progress=False if args.no_progress else None, **kwargs,
        )  # fmt: skip
    with outputs:
        write_outputs(outputs, result)
        if outputs.wants("--plot"):
            write_plot(outputs, result, args.organs)
    q = result.percentiles
    say = outputs.messages
    print(f"exopk population: {args.n} subjects, seed {args.seed}, {t_h.size} times to {t_h[-1]:g} h", file=say)
    print(f"{'organ':12s}" + "".join(f"{f'AUC P{x:g} (%ID·h)':>18s}" for x in q), file=say)
    for j, organ in enumerate(REPORTED_ORGANS):
        values = np.percentile(result.auc_percent_id_h[:, j], q)
        print(f"{organ:12s}" + "".join(f"{v:18.4g}" for v in values), file=say)
    half = np.asarray(result.nca["blood"].half_life_h, dtype=float)
    half = half[np.isfinite(half)]
    if half.size:
        print(f"blood terminal half-life (h): median {np.median(half):.4g}, P5-P95 {np.percentile(half, 5):.4g}-"
              f"{np.percentile(half, 95):.4g} ({half.size} of {args.n} subjects)", file=say)  # fmt: skip
    else:
        print("blood terminal half-life (h): not estimable (no terminal phase within --t-end)", file=say)
    for line in outputs.written((("--out", "bands"), ("--subjects", "subjects"), ("--plot", "plot"))):
        print(line, file=say)
    return 0
