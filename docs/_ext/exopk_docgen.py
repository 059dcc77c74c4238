"""Pages generated at build time from the code, the parameter files and the examples.

Everything here is derived from what the repository holds when the docs are built:
the compartment diagram from ``exopk.model.graph.transfers``, the parameter tables from every
TOML file under ``params/``, the tutorials from every script in ``examples/`` (each one run,
its output and figure included), the API page from ``exopk.__all__``. New states, parameter
files and examples appear without editing this file.
"""

from __future__ import annotations

import inspect
import os
import subprocess
import sys
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
OUT = DOCS / "_generated"

# Unit of a parameter-file key, from the end of its name (longest suffix first).
_KEY_UNITS = (
    ("_fraction_of_flow", "1"),
    ("_ml_per_min", "mL/min"),
    ("_ml_min", "mL/min"),
    ("_ml_per_h", "mL/h"),
    ("_g_per_ml", "g/mL"),
    ("_particles_per_ug", "particles/µg"),
    ("_per_h", "1/h"),
    ("_per_min", "1/min"),
    ("_per_day", "1/day"),
    ("_particles", "particles"),
    ("_fraction", "1"),
    ("_coefficient", "1"),
    ("_ratio", "1"),
    ("_ml", "mL"),
    ("_ug", "µg"),
    ("_kg", "kg"),
    ("_g", "g"),
    ("_h", "h"),
    ("_min", "min"),
    ("_um", "µm"),
    ("_nm", "nm"),
)


def key_unit(key: str) -> str:
    """Unit of a parameter-file key, read from its name ('?' if the name carries none)."""
    for suffix, unit in _KEY_UNITS:
        if key.endswith(suffix):
            return unit
    return "?"


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _write(path: Path, text: str) -> None:
    """Write only when changed, so Sphinx does not rebuild unchanged pages."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        path.write_text(text, encoding="utf-8")


# Compartment diagram --------------------------------------------------------------------------

_KIND_COLOURS = {
    "flow": "#c0392b",
    "exchange": "#2471a3",
    "uptake": "#7d3c98",
    "release": "#239b56",
    "elimination": "#616a6b",
}


def compartment_diagram(path: Path) -> None:
    """Draw every state and every transfer of the default model (layout: one row per reported organ)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    import exopk
    from exopk.model import graph as _model

    params = exopk.load_parameters()
    member = _model.organ_membership()
    rows = [o for o in _model.REPORTED_ORGANS if o != "eliminated"]
    position: dict[str, tuple[float, float]] = {}
    n_cols = 1
    for r in range(len(rows)):
        states = [s for j, s in enumerate(_model.STATES) if member[r, j] and s in _model.LIVE_STATES]
        n_cols = max(n_cols, len(states))
        for c, state in enumerate(states):
            position[state] = (c * 2.6, -r * 1.3)
    sinks = list(_model.SINK_STATES)
    sink_x = n_cols * 2.6 + 1.2
    span = (len(rows) - 1) * 1.3
    for k, state in enumerate(sinks):
        position[state] = (sink_x, -k * span / max(len(sinks) - 1, 1))

    fig, ax = plt.subplots(figsize=(2.2 * n_cols + 4.5, 1.05 * len(rows) + 1.6))
    pairs: dict[tuple[str, str], str] = {}
    for t in _model.transfers(params.values):
        pairs.setdefault((t.source, t.target), t.kind)
    half_w, half_h = 1.0, 0.28  # half box size (data units)

    def edge(x0: float, y0: float, x1: float, y1: float) -> tuple[float, float]:
        """Where the segment from the centre (x0, y0) towards (x1, y1) leaves the box around (x0, y0)."""
        dx, dy = x1 - x0, y1 - y0
        scale = min(half_w / abs(dx) if dx else float("inf"), half_h / abs(dy) if dy else float("inf"))
        return x0 + dx * scale, y0 + dy * scale

    for (src, dst), kind in pairs.items():
        (x0, y0), (x1, y1) = position[src], position[dst]
        ax.add_patch(
            FancyArrowPatch(
                edge(x0, y0, x1, y1),
                edge(x1, y1, x0, y0),
                arrowstyle="-|>",
                mutation_scale=9,
                shrinkA=0,
                shrinkB=1,
                zorder=3,
                connectionstyle="arc3,rad=0.18",
                color=_KIND_COLOURS.get(kind, "#b9770e"),
                lw=0.9,
                alpha=0.85,
            )
        )
    for state, (x, y) in position.items():
        sink = state in _model.SINK_STATES
        ax.add_patch(
            FancyBboxPatch(
                (x - 1.0, y - 0.28),
                2.0,
                0.56,
                boxstyle="round,pad=0.02",
                fc="#f2f3f4" if sink else "#fdfefe",
                ec="#7b7d7d" if sink else "#17202a",
                lw=0.8,
                zorder=2,
            )
        )
        ax.text(x, y, state, ha="center", va="center", fontsize=6.5, zorder=4)
    for r, organ in enumerate(rows):
        ax.text(-1.35, -r * 1.3, organ, ha="right", va="center", fontsize=9, weight="bold")
    for kind, colour in _KIND_COLOURS.items():
        ax.plot([], [], color=colour, label=kind)
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False, title="transfer kind")
    ax.set_xlim(-3.2, sink_x + 1.3)
    ax.set_ylim(-span - 0.8, 0.8)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title(f"{len(_model.STATES)} states, {len(pairs)} first-order transfers (generated from the model)")
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)


def model_page() -> None:
    compartment_diagram(OUT / "compartments.png")
    from exopk.model import graph as _model

    lines = [
        "# The model",
        "",
        "```{figure} compartments.png",
        ":alt: compartment diagram",
        "",
        "Every state of the model (boxes; one row per reported organ, elimination sinks on the right)",
        "and every first-order transfer between them (arrows, coloured by kind). Drawn at build time",
        "from `exopk.model.graph.transfers()` for the default parameters.",
        "```",
        "",
        f"States ({len(_model.STATES)}): " + ", ".join(f"`{s}`" for s in _model.STATES) + ".",
        "",
        "```{include} ../model.md",
        ":heading-offset: 1",
        ":relative-docs: ./",
        "```",
        "",
    ]
    _write(OUT / "model.md", "\n".join(lines))


# Parameter tables -----------------------------------------------------------------------------


def _leaves(table: dict, prefix: tuple[str, ...] = ()):
    """(section, key, entry) for every ``{ value, source }`` entry, and (section, key, value) for the rest."""
    for key, entry in table.items():
        if isinstance(entry, dict) and "value" in entry and "source" in entry:
            yield prefix, key, entry
        elif isinstance(entry, dict):
            yield from _leaves(entry, prefix + (key,))
        else:
            yield prefix, key, {"value": entry, "source": None}


def parameters_page() -> None:
    import exopk

    files = sorted((ROOT / "params").rglob("*.toml"))
    lines = [
        "# Parameters",
        "",
        "Generated at build time from every file under `params/` "
        f"({len(files)} files). Each value is `{{ value, source }}` with its unit in the key name; "
        "files publish flows in mL/min, converted once on loading to mL/h. "
        "`exopk params show --species NAME --ev NAME` prints the resolved values in internal units.",
        "",
    ]
    for path in files:
        rel = path.relative_to(ROOT)
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        lines += [f"## `{rel}`", ""]
        meta = [(".".join(sec + (key,)), e["value"]) for sec, key, e in _leaves(data) if e["source"] is None]
        sourced = [(sec, key, e) for sec, key, e in _leaves(data) if e["source"] is not None]
        for name, value in meta:
            lines.append(f"- {name}: {value}")
        if meta:
            lines.append("")
        lines += ["| section | key | value | unit | source |", "|---|---|---|---|---|"]
        for sec, key, entry in sourced:
            lines.append(
                f"| {_cell('.'.join(sec))} | `{key}` | {_cell(entry['value'])} | {key_unit(key)} | "
                f"{_cell(entry['source'])} |"
            )
        lines.append("")
    params = exopk.load_parameters()
    lines += [
        f"## Resolved model parameters (`{params.species}` / `{params.ev}`, internal units)",
        "",
        "Stored and derived values as the model uses them (`ModelParameters.table()`).",
        "",
        "| name | value | unit | description | source |",
        "|---|---|---|---|---|",
    ]
    for row in params.table().itertuples(index=False):
        lines.append(
            f"| `{row.name}` | {row.value:.6g} | {row.unit} | {_cell(row.description)} | {_cell(row.source)} |"
        )
    _write(OUT / "parameters.md", "\n".join(lines) + "\n")


# Tutorials from examples/ ---------------------------------------------------------------------


def tutorials() -> list[str]:
    scripts = sorted((ROOT / "examples").glob("*.py"))
    names = []
    for script in scripts:
        figure = OUT / "tutorials" / f"{script.stem}.png"
        figure.parent.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, str(script), figure.name],  # relative: the printed output shows no build path
            capture_output=True,
            text=True,
            cwd=figure.parent,
            env={**os.environ, "MPLBACKEND": "Agg"},
            timeout=600,
        )
        elapsed = time.perf_counter() - t0
        if proc.returncode != 0:
            raise RuntimeError(f"example {script.name} failed (exit {proc.returncode}):\n{proc.stderr}")
        if not figure.is_file():
            raise RuntimeError(f"example {script.name} wrote no figure at {figure}")
        source = script.read_text(encoding="utf-8")
        module = compile(source, str(script), "exec")
        doc = inspect.cleandoc(module.co_consts[0]) if module.co_consts and isinstance(module.co_consts[0], str) else ""
        title, _, body = doc.partition("\n")
        lines = [
            f"# {title or script.stem}",
            "",
            body.strip(),
            "",
            f"Script: `examples/{script.name}` (run during this build in {elapsed:.1f} s).",
            "",
            f"```{{literalinclude}} ../../../examples/{script.name}",
            ":language: python",
            "```",
            "",
            "Output:",
            "",
            "```text",
            proc.stdout.rstrip(),
            "```",
            "",
            f"![figure of {script.stem}]({script.stem}.png)",
            "",
        ]
        _write(OUT / "tutorials" / f"{script.stem}.md", "\n".join(lines))
        names.append(script.stem)
    index = ["# Tutorials", "", "Made from the scripts in `examples/`, each run while the docs were built.", ""]
    index += ["```{toctree}", ":maxdepth: 1", ""] + names + ["```", ""]
    _write(OUT / "tutorials" / "index.md", "\n".join(index))
    return names


# First run on the shell -----------------------------------------------------------------------


def first_run() -> None:
    exe = Path(sys.executable).with_name("exopk")
    command = [str(exe) if exe.exists() else "exopk", "simulate", "--dose", "1e10", "--t-end", "24"]
    command += ["--out", "sim.csv", "--plot", "sim.png"]
    proc = subprocess.run(command, capture_output=True, text=True, cwd=OUT, timeout=300)
    if proc.returncode != 0:
        raise RuntimeError(f"`exopk simulate` failed: {proc.stderr}")
    _write(
        OUT / "first_run.txt", "$ exopk simulate --dose 1e10 --t-end 24 --out sim.csv --plot sim.png\n" + proc.stdout
    )
    import pandas as pd

    head = pd.read_csv(OUT / "sim.csv").head(8).to_string(index=False)
    _write(OUT / "first_run_csv.txt", "$ head sim.csv   (as a table)\n" + head + "\n")


# API reference --------------------------------------------------------------------------------


def api_page() -> None:
    import importlib

    lines = [
        "# API reference",
        "",
        "The core is in the `exopk` namespace; the rest in its subpackages (`exopk.model`, `exopk.observe`, "
        "`exopk.analysis`, `exopk.io`, `exopk.plots`), each listing its public names in `__all__` "
        "(see the architecture page). Modules starting with `_` are private. Generated from the docstrings "
        "(numpydoc).",
        "",
    ]
    documented: set[int] = set()  # a name offered by two namespaces is documented in the first
    for module_name in ("exopk", "exopk.model", "exopk.observe", "exopk.analysis", "exopk.io", "exopk.plots"):
        module = importlib.import_module(module_name)
        lines += [f"## `{module_name}`", "", "```{eval-rst}", f".. currentmodule:: {module_name}", ""]
        names = [
            n
            for n in module.__all__
            if not inspect.ismodule(getattr(module, n))
            and (
                id(getattr(module, n)) not in documented
                or not (inspect.isclass(getattr(module, n)) or inspect.isroutine(getattr(module, n)))
            )
        ]
        documented.update(
            id(getattr(module, n))
            for n in names
            if inspect.isclass(getattr(module, n)) or inspect.isroutine(getattr(module, n))
        )
        for name in sorted(names, key=lambda n: (not inspect.isroutine(getattr(module, n)), n.lower())):
            obj = getattr(module, name)
            if inspect.isclass(obj):
                lines += [f".. autoclass:: {name}", "   :members:", ""]
            elif inspect.isroutine(obj):
                lines += [f".. autofunction:: {name}", ""]
            else:
                lines += [f".. autodata:: {name}", "   :annotation:", ""]
        lines += ["```", ""]
    _write(OUT / "api.md", "\n".join(lines))


def validation_page() -> None:
    report = DOCS / "validation.md"
    if report.is_file():
        text = "```{include} ../validation.md\n:relative-images:\n```\n"
    else:
        text = (
            "# Validation\n\n"
            "The validation report of the fitting work (`docs/validation.md`) does not exist yet; "
            "when it does, this page includes it. Until then see *Known limits and disagreements* "
            "on the model page.\n"
        )
    _write(OUT / "validation.md", text)


def generate(app) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    model_page()
    parameters_page()
    first_run()
    api_page()
    validation_page()
    names = tutorials()
    print(f"exopk_docgen: generated pages and {len(names)} tutorials in {time.perf_counter() - t0:.1f} s")


def setup(app):
    app.connect("builder-inited", generate)
    return {"version": "1", "parallel_read_safe": True}
