"""``exopk sensitivity``: local (tornado) and global Sobol sensitivity of model outputs."""

from __future__ import annotations

import argparse
from pathlib import Path

from exopk.cli import _common as c
from exopk.cli._outputs import Outputs
from exopk.errors import ExopkError

NAME = "sensitivity"


def add_parser(commands) -> argparse.ArgumentParser:
    sens = commands.add_parser(
        NAME,
        help="local (tornado) and global Sobol sensitivity of model outputs",
        description=(
            "Normalised local sensitivity coefficients of the outputs to every parameter, and Sobol first- and "
            "total-order indices (Saltelli/Jansen estimators, bootstrap intervals) over log-uniform ranges "
            "[p/factor, p*factor]. Outputs are <organ>_<metric>, metric one of auc, cmax, tmax, final."
        ),
    )
    c.add_model_arguments(sens)
    c.add_analysis_dosing(sens)
    an = sens.add_argument_group("analysis")
    an.add_argument("--outputs", type=c.comma_list, default=["brain_auc", "liver_cmax", "blood_auc"])
    an.add_argument("--sobol-parameters", type=c.comma_list, help="Sobol inputs (default: the --sobol-top by |local|)")
    an.add_argument("--sobol-top", type=c.positive_int("--sobol-top"), default=10, help="default 10")
    an.add_argument("--sobol-n", type=c.positive_int("--sobol-n"), default=1024, help="base sample, power of 2")
    an.add_argument("--factor", type=c.positive_float("--factor"), default=2.0, help="Sobol range factor (default 2)")
    an.add_argument("--no-sobol", action="store_true", help="local coefficients only")
    an.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    out = sens.add_argument_group("outputs")
    out.add_argument("--local-out", type=Path, help="CSV of local coefficients (dimensionless; `-`: standard output)")
    out.add_argument(
        "--sobol-out", type=Path, help="CSV of Sobol indices (unit column: 1, a share of variance; `-`: stdout)"
    )
    out.add_argument("--tornado", type=Path, help="tornado figure (first output); format from the extension")
    out.add_argument("--sobol-plot", type=Path, help="bar figure of Sobol indices (first output)")
    c.add_runner_arguments(sens)
    return sens


def run(args) -> int:
    import numpy as np

    from exopk.analysis.sensitivity import local_sensitivity, parse_outputs, sobol_sensitivity

    outputs = Outputs(
        [
            (args.local_out, "--local-out", "csv"),
            (args.sobol_out, "--sobol-out", "csv"),
            (args.tornado, "--tornado", "figure"),
            (args.sobol_plot, "--sobol-plot", "figure"),
        ]
    )
    try:
        parse_outputs(args.outputs)
    except ExopkError as err:
        raise c.UsageError(f"`--outputs`: {err}") from None
    params = c.load(args)
    regimen = c.regimen(args)
    t_h = c.time_grid(args, 100_000)
    progress = False if args.no_progress else None
    with c.Runner(args) as executor:
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
    with outputs:
        if outputs.wants("--local-out"):
            outputs.frame("--local-out", local.to_frame(), float_format="%.8g")
        if outputs.wants("--sobol-out") and sobol is not None:
            outputs.frame("--sobol-out", sobol.to_frame(), float_format="%.6g")
        if outputs.wants("--tornado") or (outputs.wants("--sobol-plot") and sobol is not None):
            import matplotlib

            matplotlib.use("Agg")
            from exopk.plots.analysis import plot_sobol, plot_tornado

            if outputs.wants("--tornado"):
                outputs.figure("--tornado", plot_tornado(local))
            if outputs.wants("--sobol-plot") and sobol is not None:
                outputs.figure("--sobol-plot", plot_sobol(sobol))
    say = outputs.messages
    for j, output in enumerate(local.outputs):
        order = np.argsort(-np.abs(np.nan_to_num(local.coefficients[:, j])))[:5]
        top = ", ".join(f"{local.parameters[i]} {local.coefficients[i, j]:+.3g}" for i in order)
        print(f"{output} = {local.nominal_outputs[j]:.4g}; largest local coefficients: {top}", file=say)
        if sobol is not None:
            order = np.argsort(-sobol.total_order[:, j])[:5]
            top = ", ".join(f"{sobol.names[i]} ST {sobol.total_order[i, j]:.3f}" for i in order)
            print(f"  Sobol (N={sobol.n_base}, {sobol.n_evaluations} runs): {top}", file=say)
    return 0
