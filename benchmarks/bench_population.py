"""Benchmark: ``exopk population`` end to end, and where its time goes (issue 15).

Run from the repository root::

    .venv/bin/python benchmarks/bench_population.py            # 10,000 subjects x 2881 times
    .venv/bin/python benchmarks/bench_population.py --quick    # smoke run: 500 subjects x 97 times

Case: default mouse / MSC-EVs, IV bolus, ``--cv liver_uptake_vascular_per_h=0.3 --body-weight-cv 0.15``,
48 h every minute (2881 output times; ``--quick``: every 30 min, 97 times), with ``--out``,
``--subjects`` and ``--plot``.

Printed:

- the end-to-end wall clock of the command in a fresh process (``python -m exopk population``,
  imports included), median of the runs;
- the split of one in-process run (``exopk.cli.main``), timed by wrapping the functions the
  command calls: parameter sampling (``sample_population``), solver (``simulate_batch``, with the
  per-block Cmax/Tmax and curve gathering it calls back), NCA (``nca``), the rest of
  ``simulate_population`` (summaries), writing outputs (staging and renaming the files, i.e. the
  ``Outputs`` block minus the figure), plotting (``write_plot``: importing matplotlib, building and
  saving the figure), and the rest (argument parsing, model loading, the printed summary); wall
  clock, and CPU time of all threads (``time.process_time``, less sensitive to a loaded machine);
- in the same process, the writers against the baseline they replaced: the tidy long frames
  (one row per subject x organ x parameter, one per time x organ x percentile) written with
  ``DataFrame.to_csv``, as ``exopk population`` wrote them before issue 15; median of
  alternating runs, and the ratio.

Timings are wall clock on a shared machine; the load average is printed.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def _argv(n: int, dt_h: float, folder: Path, *, plot: bool = True) -> list[str]:
    argv = [
        "population", "--n", str(n), "--cv", "liver_uptake_vascular_per_h=0.3", "--body-weight-cv", "0.15",
        "--seed", "1", "--t-end", "48", "--dt", repr(dt_h), "--no-progress",
        "--out", str(folder / "bands.csv"), "--subjects", str(folder / "subjects.csv"),
    ]  # fmt: skip
    if plot:
        argv += ["--plot", str(folder / "bands.png")]
    return argv


def end_to_end_s(argv: list[str]) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "exopk", *argv], capture_output=True, text=True, encoding="utf-8")
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"exopk population failed:\n{proc.stderr}")
    return elapsed


class Split:
    """Wall-clock and CPU time (all threads) inside wrapped functions, by stage (outermost call only)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.cpu_seconds: dict[str, float] = {}
        self.depth: dict[str, int] = {}
        self.captured: dict[str, object] = {}

    def wrap(self, stage: str, function, capture: str | None = None):
        def timed(*args, **kwargs):
            outer = self.depth.get(stage, 0) == 0
            self.depth[stage] = self.depth.get(stage, 0) + 1
            t0, c0 = time.perf_counter(), time.process_time()
            try:
                value = function(*args, **kwargs)
            finally:
                self.depth[stage] -= 1
                if outer:
                    self.seconds[stage] = self.seconds.get(stage, 0.0) + time.perf_counter() - t0
                    self.cpu_seconds[stage] = self.cpu_seconds.get(stage, 0.0) + time.process_time() - c0
            if capture is not None:
                self.captured[capture] = value
            return value

        return timed


def split_run(argv: list[str]) -> tuple[dict[str, float], dict[str, float], object]:
    """One in-process run of ``exopk population`` with its stages timed (wall, CPU); and its PopulationResult."""
    import exopk.analysis.population as analysis
    import exopk.cli._outputs as outputs_module
    import exopk.cli.population as command
    from exopk.cli import main

    split = Split()
    Outputs = outputs_module.Outputs
    saved = {
        (analysis, "sample_population"): analysis.sample_population,
        (analysis, "simulate_population"): analysis.simulate_population,
        (analysis, "simulate_batch"): analysis.simulate_batch,
        (analysis, "nca"): analysis.nca,
        (command, "write_plot"): command.write_plot,
        (Outputs, "__enter__"): Outputs.__enter__,
        (Outputs, "__exit__"): Outputs.__exit__,
    }
    marks: dict[str, float] = {}

    def enter(self):
        marks["enter"], marks["enter cpu"] = time.perf_counter(), time.process_time()
        return saved[(Outputs, "__enter__")](self)

    def exit_(self, *exc):
        try:
            return saved[(Outputs, "__exit__")](self, *exc)
        finally:
            split.seconds["outputs block"] = time.perf_counter() - marks["enter"]
            split.cpu_seconds["outputs block"] = time.process_time() - marks["enter cpu"]

    replacements = {
        (analysis, "sample_population"): split.wrap("sampling", analysis.sample_population),
        (analysis, "simulate_population"): split.wrap(
            "simulate_population", analysis.simulate_population, capture="result"
        ),
        (analysis, "simulate_batch"): split.wrap("solver", analysis.simulate_batch),
        (analysis, "nca"): split.wrap("nca", analysis.nca),
        (command, "write_plot"): split.wrap("plotting", command.write_plot),
        (Outputs, "__enter__"): enter,
        (Outputs, "__exit__"): exit_,
    }
    for (owner, name), value in replacements.items():
        setattr(owner, name, value)
    try:
        t0, c0 = time.perf_counter(), time.process_time()
        with contextlib.redirect_stdout(io.StringIO()):
            code = main(argv)
        total, total_cpu = time.perf_counter() - t0, time.process_time() - c0
    finally:
        for (owner, name), value in saved.items():
            setattr(owner, name, value)
    if code != 0:
        raise SystemExit(f"exopk population returned {code}")

    def stages(s: dict[str, float], total: float) -> dict[str, float]:
        out = {
            "parameter sampling": s.get("sampling", 0.0),
            "solver (simulate_batch)": s.get("solver", 0.0),
            "NCA": s.get("nca", 0.0),
            "other summaries": s.get("simulate_population", 0.0) - s.get("solver", 0.0) - s.get("nca", 0.0),
            "writing outputs": s.get("outputs block", 0.0) - s.get("plotting", 0.0),
            "plotting": s.get("plotting", 0.0),
        }
        out["rest (parse, load, print)"] = total - sum(out.values())
        out["total in process"] = total
        return out

    return stages(split.seconds, total), stages(split.cpu_seconds, total_cpu), split.captured["result"]


def baseline_write(result, folder: Path) -> None:
    """The writers before issue 15: tidy long frames, ``DataFrame.to_csv`` (one row per value)."""
    bands = result.to_frame()
    bands["value"] = np.maximum(bands["value"].to_numpy(), 0.0)  # the command clipped round-off below 0
    bands.to_csv(folder / "baseline_bands.csv", index=False, float_format="%.8g")
    result.subjects_frame().to_csv(folder / "baseline_subjects.csv", index=False, float_format="%.8g")


def current_write(result, folder: Path, suffix: str = ".csv") -> None:
    """The writers of ``exopk population`` as built (what the command stages for --out and --subjects)."""
    from exopk.cli._outputs import Outputs
    from exopk.cli.population import write_outputs

    outputs = Outputs(
        [(folder / f"bands{suffix}", "--out", "table"), (folder / f"subjects{suffix}", "--subjects", "table")]
    )
    with outputs:
        write_outputs(outputs, result)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="500 subjects x 97 times (smoke run)")
    parser.add_argument("--repeats", type=int, default=None, help="end-to-end runs (default 3; --quick 1)")
    args = parser.parse_args()
    n, dt_h = (500, 0.5) if args.quick else (10_000, 1.0 / 60.0)
    repeats = args.repeats or (1 if args.quick else 3)
    print(f"exopk population benchmark ({'quick' if args.quick else 'full'}): {n} subjects, 48 h every {dt_h:.4g} h")
    print(f"python {platform.python_version()}, numpy {np.__version__}, {os.cpu_count()} CPUs, "
          f"load average {', '.join(f'{x:.2f}' for x in os.getloadavg())}")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        argv = _argv(n, dt_h, folder)
        runs = [end_to_end_s(argv) for _ in range(repeats)]
        print(f"end to end (fresh process, imports included): median {statistics.median(runs):.2f} s "
              f"of {repeats} ({', '.join(f'{r:.2f}' for r in runs)})")  # fmt: skip
        sizes = {p.name: p.stat().st_size for p in sorted(folder.iterdir())}
        print("outputs: " + ", ".join(f"{name} {size / 1e6:.2f} MB" for name, size in sizes.items()))

        wall, cpu, result = split_run(argv)
        total = wall["total in process"]
        print("split of one in-process run (wall clock; CPU time of all threads in brackets):")
        for stage, seconds in wall.items():
            share = "" if stage == "total in process" else f" {100 * seconds / total:4.1f} %"
            print(f"  {stage:28s} {seconds:7.2f} s{share:7s} [{cpu[stage]:6.2f} s]")

        baseline, current = [], []
        for _ in range(max(3, repeats)):
            t0, c0 = time.perf_counter(), time.process_time()
            baseline_write(result, folder)
            baseline.append((time.perf_counter() - t0, time.process_time() - c0))
            t0, c0 = time.perf_counter(), time.process_time()
            current_write(result, folder)
            current.append((time.perf_counter() - t0, time.process_time() - c0))
        for k, what in ((0, "wall"), (1, "CPU")):
            b, c = statistics.median(x[k] for x in baseline), statistics.median(x[k] for x in current)
            print(f"writers (--out + --subjects), {what}, median of {len(current)} alternating: baseline long "
                  f"frames + to_csv {b:.3f} s, as built {c:.3f} s, ratio {b / c:.1f}x")  # fmt: skip
        if importlib.util.find_spec("pyarrow") is not None:
            parquet = folder / "parquet"
            parquet.mkdir()
            seconds = []
            for _ in range(max(3, repeats)):
                t0 = time.perf_counter()
                current_write(result, parquet, suffix=".parquet")
                seconds.append(time.perf_counter() - t0)
            sizes = ", ".join(f"{p.name} {p.stat().st_size / 1e6:.2f} MB" for p in sorted(parquet.iterdir()))
            print(f"writers to .parquet (pyarrow): median {statistics.median(seconds):.3f} s wall ({sizes})")
        else:
            print("writers to .parquet: pyarrow not installed (pip install 'exopk[parquet]')")


if __name__ == "__main__":
    main()
