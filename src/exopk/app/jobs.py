"""Long runs (virtual populations) in a worker thread, with progress and cancellation.

:func:`exopk.analysis.simulate_population` accepts any :class:`concurrent.futures.Executor`; the page
gives it one (:class:`_ProgressExecutor`) that runs each chunk of subjects in the worker thread,
counts the chunks done and refuses further chunks once the user cancels. The numbers are those
of any other executor run (the library guarantees executor-independent results).
"""

from __future__ import annotations

import concurrent.futures
import math
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from exopk.app.form import FormError, RunSpec
from exopk.errors import ExopkError

#: Largest population the page runs (``exopk population`` has no limit).
MAX_SUBJECTS = 20_000
#: Most output times of a population run: bands are drawn on at most this many of the curve times.
MAX_POPULATION_TIMES = 241
#: Variability used when the user gives none: illustrative, not measured (stated on the page).
DEFAULT_CV = "liver_uptake_vascular_per_h=30, spleen_uptake_vascular_per_h=30, lung_macrophage_uptake_per_h=30"
_N_CHUNKS = 20  # progress steps of a run
# Memory of the gathered block of times (simulate_population's `memory_mb`): each block of times
# is one pass over all subjects, and each pass repeats the subjects' eigen-decompositions, so
# fewer, larger blocks are faster. 20,000 subjects x 241 times fit in two blocks.
_MEMORY_MB = 512.0


class Cancelled(ExopkError):
    """The user cancelled the run."""


class _ProgressExecutor(concurrent.futures.Executor):
    """Runs each submitted call at once, in the calling thread; counts calls; stops when cancelled."""

    def __init__(self, job: Job) -> None:
        self._job = job

    def submit(self, fn, /, *args, **kwargs):
        future: concurrent.futures.Future = concurrent.futures.Future()
        if self._job.cancel_requested.is_set():
            future.set_exception(Cancelled("cancelled by the user"))
            return future
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as err:  # handed to simulate_population through the future
            future.set_exception(err)
        with self._job.lock:
            self._job.done += 1
        return future


@dataclass(frozen=True, slots=True, kw_only=True)
class PopulationSpec:
    """A validated population request.

    Parameters
    ----------
    n_subjects : int
    cv : dict of str to float
        Coefficient of variation (fraction) by parameter name.
    body_weight_cv : float or None
        CV of body weight (fraction).
    seed : int
    """

    n_subjects: int
    cv: Mapping[str, float]
    body_weight_cv: float | None
    seed: int


def parse_population(form: Mapping[str, Any]) -> PopulationSpec:
    """Check the population fields: ``n_subjects``, ``population_cv`` (``name=percent, ...``),
    ``body_weight_cv_percent``, ``seed``.

    Raises
    ------
    FormError
        Every invalid field, with its message.
    """
    from exopk.model.parameters import parameter_names

    errors: dict[str, str] = {}
    text = str(form.get("n_subjects", "1000")).strip() or "1000"
    n = 0
    try:
        n = int(float(text))
        if float(text) != n or not 2 <= n <= MAX_SUBJECTS:
            raise ValueError
    except ValueError:
        errors["n_subjects"] = f"must be a whole number from 2 to {MAX_SUBJECTS:,}; got {text!r}"
    cv: dict[str, float] = {}
    cv_text = str(form.get("population_cv", DEFAULT_CV)).strip()
    for part in (p.strip() for p in cv_text.replace(";", ",").split(",")):
        if not part:
            continue
        name, sep, value = part.partition("=")
        name = name.strip()
        if not sep or name not in parameter_names():
            errors["population_cv"] = f"expected NAME=PERCENT with a parameter name (see the table below); got {part!r}"
            break
        try:
            percent = float(value)
        except ValueError:
            errors["population_cv"] = f"the CV of {name} must be a number in %; got {value.strip()!r}"
            break
        if not math.isfinite(percent) or percent <= 0:
            errors["population_cv"] = f"the CV of {name} must be positive (%); got {value.strip()}"
            break
        cv[name] = percent / 100.0
    bw_text = str(form.get("body_weight_cv_percent", "")).strip()
    body_weight_cv = None
    if bw_text:
        try:
            body_weight_cv = float(bw_text) / 100.0
            if not math.isfinite(body_weight_cv) or body_weight_cv <= 0:
                raise ValueError
        except ValueError:
            errors["body_weight_cv_percent"] = f"must be a positive number (%) or blank; got {bw_text!r}"
    if not cv and body_weight_cv is None and "population_cv" not in errors:
        errors["population_cv"] = "nothing varies: give a CV for some parameter or for body weight"
    seed_text = str(form.get("seed", "1")).strip() or "1"
    seed = 1
    try:
        seed = int(seed_text)
        if seed < 0:
            raise ValueError
    except ValueError:
        errors["seed"] = f"must be a whole number >= 0; got {seed_text!r}"
    if errors:
        raise FormError(errors)
    return PopulationSpec(n_subjects=n, cv=cv, body_weight_cv=body_weight_cv, seed=seed)


@dataclass(slots=True, eq=False)
class Job:
    """A population run: its state, progress and result.

    ``state`` is ``"running"``, ``"done"``, ``"cancelled"`` or ``"failed"``.
    """

    spec: RunSpec
    population: PopulationSpec
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    state: str = "running"
    done: int = 0
    total: int = 1
    message: str = ""
    result: Any = None
    started_s: float = field(default_factory=time.perf_counter)
    elapsed_s: float = 0.0
    cancel_requested: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    thread: threading.Thread | None = None

    def status(self) -> dict:
        """JSON-ready state: ``state, done, total, fraction, message, elapsed_s``."""
        with self.lock:
            return {
                "id": self.id,
                "state": self.state,
                "done": self.done,
                "total": self.total,
                "fraction": min(1.0, self.done / self.total) if self.total else 1.0,
                "message": self.message,
                "elapsed_s": round(self.elapsed_s or time.perf_counter() - self.started_s, 3),
            }


def population_times(spec: RunSpec):
    """At most :data:`MAX_POPULATION_TIMES` of the curve times (every k-th, and the last), h."""
    import numpy as np

    from exopk.app.compute import time_grid

    t_h = time_grid(spec)
    step = max(1, math.ceil((t_h.size - 1) / (MAX_POPULATION_TIMES - 1)))
    return np.unique(np.append(t_h[::step], t_h[-1]))


def _run(job: Job) -> None:
    import exopk
    from exopk.app.compute import build_params, build_regimens

    try:
        params = build_params(job.spec)
        regimen = next(iter(build_regimens(job.spec, params).values()))
        pop = job.population
        population = exopk.analysis.sample_population(
            params, pop.n_subjects, pop.cv, body_weight_cv=pop.body_weight_cv, seed=pop.seed
        )
        t_h = population_times(job.spec)
        chunk = max(1, math.ceil(pop.n_subjects / _N_CHUNKS))
        n_chunks = math.ceil(pop.n_subjects / chunk)
        # The same block rule as simulate_population: gathered block = subjects x times x organs x 2 copies.
        per_time = pop.n_subjects * len(exopk.model.REPORTED_ORGANS) * 8.0 * 2
        n_blocks = math.ceil(t_h.size / max(1, int(_MEMORY_MB * 1e6 // per_time)))
        with job.lock:
            job.total = n_chunks * n_blocks
        result = exopk.analysis.simulate_population(
            population, regimen, t_h, executor=_ProgressExecutor(job), chunk_size=chunk, memory_mb=_MEMORY_MB,
            workers=1, progress=False,
        )  # fmt: skip
        with job.lock:
            job.result, job.state = result, "done"
            job.message = f"{pop.n_subjects} subjects in {time.perf_counter() - job.started_s:.1f} s"
    except Cancelled:
        with job.lock:
            job.state, job.message = "cancelled", f"cancelled after {job.done} of {job.total} chunks"
    except FormError as err:
        with job.lock:
            job.state, job.message = "failed", str(err)
    except ExopkError as err:
        with job.lock:
            job.state, job.message = "failed", str(err)
    except Exception as err:  # reported on the page; the server keeps running
        with job.lock:
            job.state, job.message = "failed", f"{type(err).__name__}: {err}"
    finally:
        job.elapsed_s = time.perf_counter() - job.started_s


class JobManager:
    """Starts population jobs in daemon threads and keeps the latest few.

    Parameters
    ----------
    keep : int, default 8
        Finished jobs kept for download; older ones are forgotten.
    """

    def __init__(self, keep: int = 8) -> None:
        self._jobs: dict[str, Job] = {}
        self._keep = keep
        self._lock = threading.Lock()

    def start(self, spec: RunSpec, population: PopulationSpec) -> Job:
        """Start a job; returns at once."""
        job = Job(spec=spec, population=population)
        job.thread = threading.Thread(target=_run, args=(job,), name=f"exopk-population-{job.id}", daemon=True)
        with self._lock:
            self._jobs[job.id] = job
            finished = [k for k, j in self._jobs.items() if j.state != "running"]
            for key in finished[: max(0, len(self._jobs) - self._keep)]:
                del self._jobs[key]
        job.thread.start()
        return job

    def get(self, job_id: str) -> Job | None:
        """The job with ``job_id``, or None."""
        with self._lock:
            return self._jobs.get(job_id)

    def cancel(self, job_id: str) -> Job | None:
        """Ask a running job to stop after its current chunk."""
        job = self.get(job_id)
        if job is not None:
            job.cancel_requested.set()
        return job

    def cancel_all(self) -> None:
        """Ask every running job to stop (the server is shutting down)."""
        with self._lock:
            jobs = list(self._jobs.values())
        for job in jobs:
            job.cancel_requested.set()
