"""The exact shell commands and Python code that reproduce a page's result.

Both are generated from the :class:`~exopk.app.form.RunSpec` alone, with every number written
as ``repr(float)`` (which reads back bit for bit), so a downloaded script gives the page's
numbers exactly. Uploaded files are referred to by their file name: run the commands in the
folder that holds them.
"""

from __future__ import annotations

import shlex

from exopk.app.compute import DOSE_CLASSES, dose_times_h, scale_body_weight
from exopk.app.form import RunSpec


def _num(value: float | None) -> str:
    """A float as text that reads back exactly (``1e10`` rather than ``10000000000.0``)."""
    if value is None:
        raise ValueError("a number is missing from the request")  # parse_form guarantees it is there
    text = repr(float(value))
    if text.endswith(".0") and abs(value) >= 1e6:
        short = f"{value:g}".replace("e+", "e")
        text = short if float(short) == value else text
    return text


def regimen_csv_name(route: str) -> str:
    """File name of the regimen table the CLI command of a repeated ``route`` reads."""
    return f"regimen_{route}.csv"


def regimen_csv(spec: RunSpec, route: str) -> str:
    """The repeated doses of ``route`` as a regimen CSV (columns of :meth:`exopk.Regimen.from_frame`)."""
    header = ["time_h", "route", "dose_particles", "duration_h", "site"]
    lines = [",".join(header)]
    for t in dose_times_h(spec):
        duration = _num(spec.infusion_duration_h) if route == "iv_infusion" else ""
        site = spec.site if route == "local" else ""
        lines.append(",".join([_num(t), route, _num(spec.dose_particles), duration, site or ""]))
    return "\n".join(lines) + "\n"


def _model_arguments(spec: RunSpec, params=None) -> list[str]:
    """``--species --ev --scenario --set`` for the model of ``spec``."""
    import exopk

    args = ["--species", spec.species]
    if spec.ev != "msc":
        args += ["--ev", spec.ev]
    for scenario in spec.scenarios:
        args += ["--scenario", scenario]
    if spec.body_weight_g is not None:
        base = exopk.load_parameters(
            spec.species,
            spec.files.get(spec.ev, spec.ev),
            scenarios=tuple(spec.files.get(s, s) for s in spec.scenarios),
        )
        if spec.body_weight_g != base["body_weight_g"]:
            scaled = scale_body_weight(base, spec.body_weight_g)
            for name in exopk.parameter_names():
                if name in scaled.values and scaled.values[name] != base.values[name]:
                    args += ["--set", f"{name}={scaled.values[name]!r}"]
    return args


def _dose_arguments(spec: RunSpec, route: str) -> list[str]:
    if spec.dose_unit == "ug":
        args = ["--dose", _num(spec.dose_value), "--dose-unit", "ug", "--particles-per-ug", _num(spec.particles_per_ug)]
    else:
        args = ["--dose", _num(spec.dose_particles)]
    if route == "iv_infusion":
        args += ["--duration", _num(spec.infusion_duration_h)]
    if route == "local":
        args += ["--site", spec.site or ""]
    return args


def csv_name(route: str) -> str:
    """File name of the tidy CSV the CLI command of ``route`` writes."""
    return f"exopk_{route}.csv"


def cli_commands(spec: RunSpec) -> list[list[str]]:
    """The ``exopk`` command lines (argument lists, without the program name) that reproduce ``spec``.

    One ``exopk simulate`` per route (``--regimen regimen_<route>.csv`` for repeated doses: the
    page offers that file), then ``exopk compare`` for two or more routes, and ``exopk image``
    for an optical label.
    """
    model = _model_arguments(spec)
    grid = ["--t-end", _num(spec.t_end_h), "--dt", _num(spec.dt_h)]
    tracer = ["--tracer", spec.label] if spec.label else []
    commands = []
    routes = ("regimen",) if spec.regimen_file else spec.routes
    for route in routes:
        if spec.regimen_file:
            dosing = ["--regimen", spec.regimen_file]
            if spec.particles_per_ug is not None:
                dosing += ["--particles-per-ug", _num(spec.particles_per_ug)]
        elif spec.n_doses > 1:
            dosing = ["--regimen", regimen_csv_name(route)]
        else:
            dosing = ["--route", route] + _dose_arguments(spec, route)
        commands.append(["simulate", *model, *dosing, *tracer, *grid, "--out", csv_name(route)])
    if len(spec.routes) >= 2 and not spec.regimen_file:
        dose = _dose_arguments(spec, "")
        extra = []
        if "iv_infusion" in spec.routes:
            extra += ["--duration", _num(spec.infusion_duration_h)]
        if "local" in spec.routes:
            extra += ["--site", spec.site or ""]
        commands.append(
            [
                "compare",
                *model,
                "--routes",
                ",".join(spec.routes),
                *dose,
                *extra,
                *grid,
                "--metrics",
                "exopk_route_metrics.csv",
            ]  # fmt: skip
        )
    return commands


def cli_text(spec: RunSpec) -> str:
    """:func:`cli_commands` as shell lines (quoted with :func:`shlex.join`)."""
    lines = ["# exopk: the command line that reproduces this result (run where your uploaded files are)"]
    if spec.n_doses > 1 and not spec.regimen_file:
        names = ", ".join(regimen_csv_name(r) for r in spec.routes)
        lines.append(f"# repeated doses: the page offers {names} for download")
    lines += [shlex.join(["exopk", *command]) for command in cli_commands(spec)]
    return "\n".join(lines) + "\n"


def _dose_code(spec: RunSpec, route: str, t_code: str) -> str:
    cls = DOSE_CLASSES[route]
    dose = "dose_particles"
    if route == "iv_infusion":
        return f"exopk.{cls}(dose_particles={dose}, duration_h={_num(spec.infusion_duration_h)}, t_h={t_code})"
    if route == "local":
        organ, _, space = (spec.site or "").rpartition("_")
        return f"exopk.{cls}(dose_particles={dose}, organ={organ!r}, space={space!r}, t_h={t_code})"
    return f"exopk.{cls}(dose_particles={dose}, t_h={t_code})"


def python_code(spec: RunSpec) -> str:
    """A Python script that reproduces ``spec`` with the public API.

    Running it defines ``params``, ``results`` (one per route), ``table`` (the %ID table of the
    page) and ``frame`` (the tidy CSV of the page), and writes ``exopk_result.csv``.
    """
    ev = repr(spec.ev)
    scenarios = repr(tuple(spec.scenarios))
    label = repr(spec.label)
    lines = [
        '"""Reproduces an exopk web-page result (exopk ' + _version() + ')."""',
        "",
        "import numpy as np",
        "import pandas as pd",
        "",
        "import exopk",
        "",
        f"params = exopk.load_parameters({spec.species!r}, {ev}, scenarios={scenarios})",
    ]
    if spec.body_weight_g is not None:
        bw = _num(spec.body_weight_g)
        lines += [
            f"body_weight_g = {bw}",
            'if body_weight_g != params["body_weight_g"]:',
            "    # One animal of another weight, by exopk's population rule: flows x ratio^0.75, volumes x ratio",
            '    reference_g = params["body_weight_g"]',
            "    ratio = body_weight_g / reference_g",
            "    scaled = {",
            "        name: params[name] * ratio ** exopk.analysis.allometric_exponent(name)",
            "        for name in exopk.parameter_names()",
            "        if name in params.values",
            "        and exopk.analysis.allometric_exponent(name) is not None",
            "        and params[name] != 0",
            "    }",
            '    source = f"body weight {body_weight_g:g} g: flows x (BW/{reference_g:g} g)^0.75, '
            'volumes x (BW/{reference_g:g} g) (exopk population rule)"',
            "    params = params.replace(source=source, **scaled)",
        ]
    if spec.regimen_file:
        ppu = "None" if spec.particles_per_ug is None else _num(spec.particles_per_ug)
        lines.append(f"regimens = {{'regimen': exopk.Regimen.from_csv({spec.regimen_file!r}, particles_per_ug={ppu})}}")
    else:
        if spec.dose_unit == "ug":
            lines.append(
                f"dose_particles = exopk.particles_from_protein(dose_ug={_num(spec.dose_value)}, "
                f"particles_per_ug={_num(spec.particles_per_ug)})"
            )
        else:
            lines.append(f"dose_particles = {_num(spec.dose_particles)}")
        times = [_num(t) for t in dose_times_h(spec)]
        lines.append(f"dose_times_h = [{', '.join(times)}]")
        lines.append("regimens = {")
        for route in spec.routes:
            lines.append(f"    {route!r}: exopk.Regimen([{_dose_code(spec, route, 't')} for t in dose_times_h]),")
        lines.append("}")
    lines += [
        f"label = {label}  # None: intact EVs only",
        f"n_steps = int(round({_num(spec.t_end_h)} / {_num(spec.dt_h)}))",
        f"t_h = np.linspace(0.0, n_steps * {_num(spec.dt_h)}, n_steps + 1)",
        f"sacrifice_h = np.array([{', '.join(_num(t) for t in spec.times_h)}])",
        "",
        "",
        "def solve(regimen, times_h):",
        "    if label is None:",
        "        return exopk.simulate(params, regimen, times_h), None",
        "    labelled = exopk.observe.simulate_label(params, regimen, times_h, label)",
        "    return labelled.ev, labelled",
        "",
        "",
        "results, frames, tables = {}, [], []",
        "for route, regimen in regimens.items():",
        "    result, labelled = solve(regimen, t_h)",
        "    results[route] = labelled or result",
        "    frame = (labelled or result).to_frame()",
        '    frame.insert(0, "route", route)',
        "    frames.append(frame)",
        "    ev, tracer = solve(regimen, sacrifice_h)  # exact at the sacrifice times",
        "    rows = []",
        '    for organ in [o for o in ev.organs if o != "eliminated" and ev.is_shown(o)]:',
        "        pct = ev.percent_id(organ)",
        "        try:",
        "            per_g = ev.percent_id_per_g(organ)",
        "        except exopk.InputError:  # administration sites have no mass",
        "            per_g = np.full(pct.shape, np.nan)",
        "        if tracer is not None:",
        "            label_pct = tracer.label_percent_id(organ, decay_corrected=True)",
        "            try:",
        "                label_per_g = tracer.label_percent_id_per_g(organ, decay_corrected=True)",
        "            except exopk.InputError:",
        "                label_per_g = np.full(pct.shape, np.nan)",
        "        for i, t in enumerate(sacrifice_h):",
        '            row = {"route": route, "time_h": t, "organ": organ, "ev_percent_id": pct[i],',
        '                   "ev_percent_id_per_g": per_g[i]}',
        "            if tracer is not None:",
        "                row.update(label_percent_id=label_pct[i], label_percent_id_per_g=label_per_g[i])",
        "            rows.append(row)",
        '    tables.append(pd.DataFrame(rows).sort_values("time_h", kind="stable"))',
        "table = pd.concat(tables, ignore_index=True)",
        "frame = pd.concat(frames, ignore_index=True)",
        'frame.to_csv("exopk_result.csv", index=False, float_format="%.10g")',
        "print(table.to_string(index=False))",
    ]
    if len(spec.routes) >= 2 and not spec.regimen_file:
        doses = ", ".join(_dose_code(spec, route, "0.0") for route in spec.routes)
        lines += [
            "",
            "# Route comparison: one dose per route; exact AUCs, bioavailability, DTE % and DTP % against IV",
            f"comparison = exopk.analysis.compare_routes(params, [{doses}], dose_particles, t_h)",
            "print(comparison.metrics_frame().to_string(index=False))",
        ]
    return "\n".join(lines) + "\n"


def _version() -> str:
    from exopk._version import __version__

    return __version__
