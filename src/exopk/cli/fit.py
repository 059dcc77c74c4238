"""Moved from _fit."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from exopk.analysis.fit import (
    BLQ_RULES,
    FitResult,
    _unit_factor,
    fit,
)


def add_fit_parser(commands) -> None:
    from exopk.cli.main import _positive_int, add_dosing_arguments, add_model_arguments

    cmd = commands.add_parser(
        "fit",
        help="fit named parameters to tidy data; write a fitted parameter file and a report",
        description="Fit named model parameters to a tidy CSV (time_h, organ, quantity, value, unit; optional sd, "
        "n, loq, weight). Residuals on the log scale; below-LOQ rows censored (M3-like) unless --blq.",
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
        help="comma-separated names of the parameters to fit, e.g. liver_uptake_vascular_per_h",
    )
    add_model_arguments(cmd)
    add_dosing_arguments(cmd, default_dose=1e10)
    from exopk.cli.main import _add_tracer_argument

    _add_tracer_argument(cmd)
    opts = cmd.add_argument_group("fit")
    opts.add_argument("--scale", choices=("log", "linear"), default="log", help="residual scale (default log)")
    opts.add_argument("--blq", choices=BLQ_RULES, default="censored", help="below-LOQ rule (default censored)")
    opts.add_argument("--starts", type=_positive_int("--starts"), default=4, help="optimiser starts (default 4)")
    opts.add_argument("--seed", type=int, default=0, help="seed of the random starts (default 0)")
    opts.add_argument(
        "--absolute-sd",
        action="store_true",
        help="take the sd column as the true error (CIs from the SDs, not the residual variance)",
    )
    opts.add_argument("--profile", help="fitted name whose profile likelihood goes into the report")
    opts.add_argument(
        "--out",
        type=Path,
        default=Path("fitted.toml"),
        help="fitted parameter file, a scenario overlay (default fitted.toml; use with --scenario)",
    )
    opts.add_argument(
        "--report", type=Path, default=Path("fit_report.md"), help="Markdown report (default fit_report.md)"
    )
    opts.add_argument("--plot", type=Path, help="PNG: observed vs predicted and fitted curves with the data")


def fit_command(args) -> int:
    from exopk.cli.main import UsageError, _AtomicOutputs, _check_writable, _comma_list, _load, _regimen
    from exopk.io.datasets import read_observations
    from exopk.model.parameters import parameter_names

    names = _comma_list(args.fit_params)
    if not names:
        raise UsageError("`--params` names no parameter")
    for name in names:
        if name not in parameter_names():
            raise UsageError(f"unknown parameter {name!r} in `--params`; run `exopk params show` for the names")
    if args.profile is not None and args.profile not in names:
        raise UsageError(f"`--profile {args.profile}` is not among --params ({', '.join(names)})")
    for path, flag in ((args.out, "--out"), (args.report, "--report"), (args.plot, "--plot")):
        if path is not None:
            _check_writable(path, flag)
    if not args.data.exists():  # a directory or FIFO is named as such by the reader
        from exopk.io.datasets import list_datasets, load_dataset

        if str(args.data) not in list_datasets():
            raise UsageError(
                f"data file {str(args.data)!r} does not exist (and is not a shipped dataset: "
                f"{', '.join(list_datasets())})"
            )
        args.data = load_dataset(str(args.data)).path
    frame, header = read_observations(args.data)
    if args.from_header:
        missing = [key for key in ("species", "route", "label", "scenario") if key not in header]
        if missing:
            raise UsageError(f"`--from-header`: {args.data} has no header line(s) for {', '.join(missing)}")
        args.species, args.route = header["species"], header["route"]
        args.tracer = None if header["label"].lower() == "none" else header["label"]
        if header["scenario"].lower() != "none":
            args.scenarios = [header["scenario"], *args.scenarios]
    params = _load(args)
    regimen = _regimen(args)
    result = fit(
        params,
        regimen,
        frame,
        names,
        label=args.tracer,
        scale=args.scale,
        blq=args.blq,
        n_starts=args.starts,
        seed=args.seed,
        data_name=args.data.name,
        absolute_sd=args.absolute_sd,
    )
    outputs = _AtomicOutputs()
    try:
        outputs.temp_for(args.out, "--out").write_text(result.to_scenario_toml(args.data.name))
        outputs.temp_for(args.report, "--report").write_text(result.report(profile=args.profile))
        if args.plot is not None:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt

            fig = plt.figure(figsize=(11, 4.5))
            result.plot_observed_vs_predicted(fig.add_subplot(1, 2, 1))
            ax = fig.add_subplot(1, 2, 2)
            _curves_on(result, ax)
            fig.tight_layout()
            fig.savefig(outputs.temp_for(args.plot, "--plot"), format="png", dpi=110)
            plt.close(fig)
        outputs.commit()
    except BaseException:
        outputs.discard()
        raise
    print(result.table().drop(columns=["targets"]).to_string(index=False))
    print(
        f"within 2-fold: {100 * result.share_within_2_fold:.0f} %, AIC {result.aic:.4g}; "
        f"wrote {args.out}, {args.report}" + (f", {args.plot}" if args.plot else "")
    )
    return 0


def _curves_on(result: FitResult, ax) -> None:
    """Curves with data of the first quantity, on an existing axis."""
    from exopk.analysis.observations import _series

    p = result._problem
    data = result.observations
    quantity = data["quantity"].iloc[0]
    rows = data[data["quantity"] == quantity]
    t = np.linspace(0.0, float(data["time_h"].max()) * 1.1, 300)
    if p.label is None:
        from exopk.simulation import simulate

        ev, labelled = simulate(result.params, p.regimen, t), None
    else:
        from exopk.observe.labels import simulate_label

        labelled = simulate_label(result.params, p.regimen, t, p.label)
        ev = labelled.ev
    factor = _unit_factor(quantity, rows["unit"].iloc[0])
    for organ in dict.fromkeys(rows["organ"]):
        curve = _series(ev, labelled, organ, quantity) * (result.signal_scale if quantity == "signal" else 1.0)
        (line,) = ax.plot(t[1:], curve[1:] / factor, label=organ)
        pts = rows[(rows["organ"] == organ) & ~rows["below_loq"]]
        ax.plot(pts["time_h"], pts["value"], "o", color=line.get_color())
    ax.set_yscale("log")
    ax.set_xlabel("time (h)")
    ax.set_ylabel(f"{quantity} ({rows['unit'].iloc[0]})")
    ax.legend(fontsize=7)
