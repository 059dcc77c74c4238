"""``exopk fit``: fit named parameters (one value may be shared by several) to tidy observations."""

from __future__ import annotations

import argparse
from collections.abc import Collection, Mapping
from pathlib import Path

from exopk.cli import _common as c
from exopk.cli._outputs import Outputs

NAME = "fit"
SHARE = "+"


def add_parser(commands) -> argparse.ArgumentParser:
    from exopk.analysis.fit import BLQ_RULES

    cmd = commands.add_parser(
        NAME,
        help="fit named parameters to tidy data; write a fitted parameter file and a report",
        description="Fit named model parameters to a tidy CSV (time_h, organ, quantity, value, unit; optional sd, "
        "n, loq, weight). Residuals on the log scale; below-LOQ rows censored (M3-like) unless --blq. "
        "Names joined by '+' in --params share one fitted value, e.g. "
        "--params liver_uptake_vascular_per_h+spleen_uptake_vascular_per_h,kidney_uptake_vascular_per_h "
        "fits two values: one for liver and spleen together, one for the kidney.",
    )
    cmd.add_argument(
        "data",
        type=Path,
        help="tidy CSV of observations ('#' lines are a 'key: value' header), or a shipped dataset name",
    )
    cmd.add_argument(
        "--from-header",
        action="store_true",
        help="take species, route, label and scenario from the data file's header (as the shipped "
        "datasets carry them), instead of --species/--route/--tracer/--scenario",
    )
    cmd.add_argument(
        "--params",
        dest="fit_params",
        required=True,
        metavar="NAME[+NAME...][,...]",
        help="comma-separated parameters to fit, e.g. liver_uptake_vascular_per_h; names joined by '+' "
        "share one value (same unit), e.g. liver_uptake_vascular_per_h+spleen_uptake_vascular_per_h",
    )
    c.add_model_arguments(cmd)
    c.add_dosing_arguments(cmd, default_dose=1e10)
    c.add_tracer_argument(cmd)
    opts = cmd.add_argument_group("fit")
    opts.add_argument("--scale", choices=("log", "linear"), default="log", help="residual scale (default log)")
    opts.add_argument("--blq", choices=BLQ_RULES, default="censored", help="below-LOQ rule (default censored)")
    opts.add_argument("--starts", type=c.positive_int("--starts"), default=4, help="optimiser starts (default 4)")
    opts.add_argument("--seed", type=int, default=0, help="seed of the random starts (default 0)")
    opts.add_argument(
        "--absolute-sd",
        action="store_true",
        help="take the sd column as the true error (CIs from the SDs, not the residual variance)",
    )
    opts.add_argument(
        "--profile", help="fitted name (as in --params, e.g. a+b) whose profile likelihood goes into the report"
    )
    opts.add_argument(
        "--out",
        type=Path,
        default=Path("fitted.toml"),
        help="fitted parameter file, a scenario overlay (default fitted.toml; use with --scenario; `-`: stdout)",
    )
    opts.add_argument(
        "--report",
        type=Path,
        default=Path("fit_report.md"),
        help="Markdown report (default fit_report.md; `-`: standard output)",
    )
    opts.add_argument("--plot", type=Path, help="figure: observed vs predicted, and fitted curves with the data")
    return cmd


def parse_fit_parameters(text: str, known: Collection[str]) -> dict[str, tuple[str, ...]]:
    """``--params`` as the groups of :func:`exopk.analysis.fit.fit`: ``{fitted name: model names}``.

    ``a,b+c`` gives ``{"a": ("a",), "b+c": ("b", "c")}``: ``b`` and ``c`` share one fitted value.

    Parameters
    ----------
    text : str
        The value of ``--params``.
    known : collection of str
        The model's parameter names.

    Raises
    ------
    UsageError
        No name, an empty or unknown name, or a name given twice.
    """
    groups: dict[str, tuple[str, ...]] = {}
    seen: set[str] = set()
    for item in c.comma_list(text):
        names = tuple(n.strip() for n in item.split(SHARE))
        if any(not n for n in names):
            raise c.UsageError(f"`--params`: {item!r} has an empty name around '{SHARE}'")
        for name in names:
            if name not in known:
                raise c.UsageError(f"unknown parameter {name!r} in `--params`; run `exopk params show` for the names")
            if name in seen:
                raise c.UsageError(f"`--params` names {name!r} twice; each parameter may be fitted once")
            seen.add(name)
        groups[SHARE.join(names)] = names
    if not groups:
        raise c.UsageError("`--params` names no parameter")
    return groups


def check_shared_units(groups: Mapping[str, tuple[str, ...]], units: Mapping[str, str]) -> None:
    """A shared value needs one unit: refuse ``a+b`` when ``a`` and ``b`` have different units."""
    for item, names in groups.items():
        if len({units[n] for n in names}) > 1:
            raise c.UsageError(
                f"`--params` {item!r} shares one value between parameters in different units "
                f"({', '.join(f'{n} {units[n]}' for n in names)}); share only parameters of one unit"
            )


def run(args) -> int:
    from exopk.analysis.fit import fit
    from exopk.io.datasets import read_observations
    from exopk.model.parameters import parameter_names

    groups = parse_fit_parameters(args.fit_params, set(parameter_names()))
    if args.profile is not None and args.profile not in groups:
        raise c.UsageError(f"`--profile {args.profile}` is not among --params ({', '.join(groups)})")
    outputs = Outputs([(args.out, "--out", "text"), (args.report, "--report", "text"), (args.plot, "--plot", "figure")])
    if not args.data.exists():  # a directory or FIFO is named as such by the reader
        from exopk.io.datasets import list_datasets, load_dataset

        if str(args.data) not in list_datasets():
            raise c.UsageError(
                f"data file {str(args.data)!r} does not exist (and is not a shipped dataset: "
                f"{', '.join(list_datasets())})"
            )
        args.data = load_dataset(str(args.data)).path
    frame, header = read_observations(args.data)
    if args.from_header:
        missing = [key for key in ("species", "route", "label", "scenario") if key not in header]
        if missing:
            raise c.UsageError(f"`--from-header`: {args.data} has no header line(s) for {', '.join(missing)}")
        args.species, args.route = header["species"], header["route"]
        args.tracer = None if header["label"].lower() == "none" else header["label"]
        if header["scenario"].lower() != "none":
            args.scenarios = [header["scenario"], *args.scenarios]
    params = c.load(args)
    table = params.table()
    check_shared_units(groups, dict(zip(table["name"], table["unit"], strict=True)))
    regimen = c.regimen(args)
    result = fit(
        params,
        regimen,
        frame,
        groups,
        label=args.tracer,
        scale=args.scale,
        blq=args.blq,
        n_starts=args.starts,
        seed=args.seed,
        data_name=args.data.name,
        absolute_sd=args.absolute_sd,
    )
    flags = {"--absolute-sd"}
    with outputs:
        outputs.text("--out", result.to_scenario_toml(args.data.name))
        outputs.text("--report", c.translate_hint(result.report(profile=args.profile), flags, anywhere=True))
        if outputs.wants("--plot"):
            import matplotlib

            matplotlib.use("Agg")
            from exopk.plots.analysis import plot_fit

            outputs.figure("--plot", plot_fit(result), dpi=110)
    say = outputs.messages
    print(result.table().drop(columns=["targets"]).to_string(index=False), file=say)
    files = [str(outputs.path(f)) for f in ("--out", "--report", "--plot") if outputs.wants(f)]
    files = [f for f in files if f != "-"]
    print(
        f"within 2-fold: {100 * result.share_within_2_fold:.0f} %, AIC {result.aic:.4g}"
        + (f"; wrote {', '.join(files)}" if files else ""),
        file=say,
    )
    return 0
