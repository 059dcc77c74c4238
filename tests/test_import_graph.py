"""The package's layers: no import cycle, no import upwards (STYLE.md §1, docs/architecture.md).

Every ``import`` of a package module counts, including those inside functions ("lazy" imports):
a lazy import still ties two modules together. A module's layer is the first component of its
path below ``exopk`` (``exopk.model.graph`` -> ``model``); a module may import its own layer and
the layers listed before it. The top-level ``exopk/__init__.py`` (the public namespace) sits above
every layer.
"""

from __future__ import annotations

import ast
from pathlib import Path

import exopk

# Lowest first. A new subpackage or top-level module must be placed here (the test says so).
LAYERS = (
    "_version",
    "errors",
    "model",
    "dosing",
    "solve",
    "results",
    "simulation",
    "observe",
    "analysis",
    "io",
    "datasets",
    "plots",
    "app",
    "cli",
    "__main__",
)

PACKAGE = Path(exopk.__file__).resolve().parent


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _graph() -> dict[str, set[str]]:
    files = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    known = set(files)
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        is_package = path.name == "__init__.py"
        anchor = name if is_package else name.rpartition(".")[0]
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            found: list[str] = []
            if isinstance(node, ast.Import):
                found = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = anchor.split(".")[: len(anchor.split(".")) - (node.level - 1)]
                    base = ".".join(up + ([base] if base else []))
                subs = [f"{base}.{a.name}" for a in node.names]
                found = subs + ([base] if any(s not in known for s in subs) else [])
            for target in found:
                while target and target not in known:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    targets.add(target)
        graph[name] = targets
    return graph


def _layer(module: str) -> str | None:
    rest = module.split(".")[1:]
    return rest[0] if rest else None


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_every_module_is_in_a_layer():
    unplaced = sorted({_layer(m) for m in _graph()} - set(LAYERS) - {None})
    assert not unplaced, f"place these in LAYERS (tests/test_import_graph.py, docs/architecture.md): {unplaced}"


def test_no_import_cycles():
    assert _cycles(_graph()) == []


def test_no_upward_imports():
    order = {name: i for i, name in enumerate(LAYERS)}
    upward = [
        f"{a} ({_layer(a)}) -> {b} ({_layer(b)})"
        for a, targets in _graph().items()
        for b in sorted(targets)
        if _layer(a) in order and _layer(b) in order and order[_layer(b)] > order[_layer(a)]
    ]
    assert upward == []


def test_the_checker_sees_a_cycle_and_an_upward_import():
    """The rules above can fail: a made-up graph with both faults is caught."""
    graph = {"exopk.model.a": {"exopk.solve.b"}, "exopk.solve.b": {"exopk.model.a"}}
    assert _cycles(graph) == [["exopk.model.a", "exopk.solve.b"]]
    order = {name: i for i, name in enumerate(LAYERS)}
    assert order[_layer("exopk.solve.b")] > order[_layer("exopk.model.a")]
