"""README.md, executed: every ```python block in order in one namespace, and every shell line of the
```sh blocks (bar the two that need the network or a fresh clone), in one temporary directory.

So the README cannot drift from the code. ``make run`` is replaced by the command the README says
it is (and that command is checked against the Makefile, and run through the installed ``exopk``
script once); ``make test`` (this suite) and ``pip install`` (network) are skipped, and
``exopk app`` (a server that runs until interrupted) is run as ``exopk app --help``. Other
``exopk ...`` lines (with at most a ``> file`` redirection) run in this process through the
console script's entry point, ``exopk.cli:main``, which saves ~1 s of imports per line; any
other shell line runs in ``bash`` with this interpreter's ``exopk`` first on the PATH. Plots
use ``MPLBACKEND=Agg``.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)
MAKE_RUN = re.compile(r"`make run` is `([^`]+)`")
# The commands of the README that take longest (~20 s together on the shared 2-core VM): the
# route comparison, 10,000-subject populations and a Sobol design.
SLOW = ("exopk compare", "exopk population", "exopk sensitivity")
IN_PROCESS = re.compile(r"^exopk ([^|&;<>`$]*?)(?:\s*>\s*(\S+))?\s*(?:#.*)?$")


def readme_blocks() -> list[tuple[str, str]]:
    """(language, code) of every fenced block, in order."""
    return [(lang, code) for lang, code in FENCE.findall(README.read_text(encoding="utf-8"))]


def shell_lines(code: str) -> list[str]:
    """The commands of a shell block, continuation lines joined."""
    lines, current = [], ""
    for raw in code.splitlines():
        current += raw.rstrip()
        if current.endswith("\\"):
            current = current[:-1] + " "
            continue
        if current.strip() and not current.lstrip().startswith("#"):
            lines.append(current.strip())
        current = ""
    return lines


def _make_run_command() -> str:
    match = MAKE_RUN.search(README.read_text(encoding="utf-8"))
    assert match, "README no longer says what `make run` is"
    return match.group(1)


def _plan(include_slow: bool) -> list[tuple[str, str]]:
    steps = []
    for lang, code in readme_blocks():
        if lang == "python":
            steps.append(("python", code))
        elif lang == "sh":
            for line in shell_lines(code):
                command = line.split("#")[0].strip()
                if command.startswith("make run"):
                    steps.append(("script", _make_run_command()))
                elif command.startswith(("make test", "pip install")):
                    continue  # this suite itself; the network
                elif command.startswith("exopk app"):
                    # a server that runs until Ctrl-C; its options are parsed here, and the page is
                    # tested end to end in a real browser by tests/test_app_browser.py
                    steps.append(("sh", command.replace("exopk app", "exopk app --help", 1)))
                elif include_slow or not command.startswith(SLOW):
                    steps.append(("sh", line))
    return steps


def _run(steps: list[tuple[str, str]], cwd: Path) -> None:
    env = dict(os.environ, MPLBACKEND="Agg", PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    namespace: dict = {"__name__": "__readme__"}
    old_cwd, old_backend = Path.cwd(), os.environ.get("MPLBACKEND")
    os.chdir(cwd)
    os.environ["MPLBACKEND"] = "Agg"
    try:
        import matplotlib

        matplotlib.use("Agg")
        for kind, code in steps:
            if kind == "python":
                exec(compile(code, str(README), "exec"), namespace)  # noqa: S102 - the README's own code
            elif (match := IN_PROCESS.match(code)) and kind == "sh":
                _run_in_process(code, shlex.split(match.group(1)), match.group(2))
            else:
                proc = subprocess.run(
                    code, shell=True, cwd=cwd, env=env, capture_output=True, text=True, encoding="utf-8", timeout=600
                )
                assert proc.returncode == 0, f"README line failed ({proc.returncode}): {code}\n{proc.stderr}"
                assert "Traceback" not in proc.stderr, f"README line printed a traceback: {code}\n{proc.stderr}"
    finally:
        os.chdir(old_cwd)
        if old_backend is None:
            os.environ.pop("MPLBACKEND", None)
        else:
            os.environ["MPLBACKEND"] = old_backend
        import matplotlib.pyplot as plt

        plt.close("all")


def _run_in_process(line: str, argv: list[str], stdout_path: str | None) -> None:
    from exopk.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            status = main(argv)
        except SystemExit as exit_:  # argparse
            status = exit_.code
    assert status == 0, f"README line failed ({status}): {line}\n{err.getvalue()}"
    if stdout_path is not None:
        Path(stdout_path).write_text(out.getvalue(), encoding="utf-8")


def test_make_run_is_what_the_readme_says():
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    recipe = re.search(r"^run:.*\n\t(.+)$", makefile, re.MULTILINE).group(1)
    assert shlex.split(recipe.replace("$(BIN)/", "")) == shlex.split(_make_run_command())


def test_readme_blocks_are_all_seen():
    """The parser finds the README's blocks: python and sh, and no unlabelled command block."""
    kinds = [lang for lang, _ in readme_blocks()]
    assert kinds.count("python") >= 4 and kinds.count("sh") >= 6
    unlabelled = [code for lang, code in readme_blocks() if lang == "" and "exopk " in code]
    assert unlabelled == [], "label every command block ```sh or ```python so this test runs it"


def test_readme_runs_as_pasted(tmp_path):
    """Every python block and shell line of README.md, in order, except the slow commands."""
    _run(_plan(include_slow=False), tmp_path)
    assert (tmp_path / "out" / "sim.csv").is_file() and (tmp_path / "fitted.toml").is_file()


@pytest.mark.slow
def test_readme_slow_commands_run_as_pasted(tmp_path):
    """The population and sensitivity commands (10,000 subjects; a Sobol design), after what they need."""
    steps = [s for s in _plan(include_slow=True) if s[0] == "sh" and s[1].startswith(SLOW)]
    assert len(steps) >= 3
    _run([("sh", _make_run_command()), *steps], tmp_path)
    # the comparison table went to files, whole
    assert (tmp_path / "curves.csv").stat().st_size > 0 and (tmp_path / "metrics.csv").stat().st_size > 0
    assert (tmp_path / "out" / "bands.csv").is_file() and (tmp_path / "out" / "tornado.png").is_file()
