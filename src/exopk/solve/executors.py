"""Running many independent chunks of work: in this process, on any executor, or on a dask cluster.

A chunk is a call ``function(*args)`` of a module-level function with picklable arguments, so
that it can travel to another process or machine. Results come back in submission order, so a
computation gives the same numbers whichever executor ran its chunks.
"""

from __future__ import annotations

import concurrent.futures
import sys
from collections.abc import Callable, Sequence
from typing import Any

from exopk.errors import DependencyError, ExecutorError


def as_executor(executor: Any) -> concurrent.futures.Executor | None:
    """``None``, a :class:`concurrent.futures.Executor`, or a ``dask.distributed.Client`` (wrapped).

    A dask client becomes ``client.get_executor()``: an Executor whose futures are standard
    :class:`concurrent.futures.Future` objects.
    """
    if executor is None or isinstance(executor, concurrent.futures.Executor):
        return executor
    distributed = sys.modules.get("distributed")
    if distributed is not None and isinstance(executor, distributed.Client):
        return executor.get_executor()
    raise ExecutorError(
        "`executor` must be a concurrent.futures.Executor (e.g. ProcessPoolExecutor) or a "
        f"dask.distributed.Client; got {type(executor).__name__}."
    )


def progress_bar(total: int, description: str, progress: bool | None):
    """A tqdm bar on stderr, or ``None``.

    ``progress=None`` shows it only when stderr is a terminal (and tqdm is installed);
    ``True`` always shows it (needs tqdm); ``False`` never.
    """
    if progress is False or (progress is None and not (hasattr(sys.stderr, "isatty") and sys.stderr.isatty())):
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        if progress:
            raise DependencyError("progress bars need tqdm: pip install tqdm (or exopk[progress]).") from None
        return None
    return tqdm(total=total, desc=description, unit="chunk", file=sys.stderr, leave=False)


def map_chunks(
    function: Callable[..., Any],
    arguments: Sequence[tuple],
    *,
    executor: Any = None,
    bar: Any = None,
) -> list[Any]:
    """``[function(*a) for a in arguments]``, possibly on an executor, with a progress bar.

    Parameters
    ----------
    function : callable
        Module-level (picklable) function.
    arguments : sequence of tuple
        Arguments of each call.
    executor : concurrent.futures.Executor or dask.distributed.Client, optional
        Where the calls run; default: one after another in this process.
    bar : tqdm progress bar, optional
        Advanced by one per finished call (see :func:`progress_bar`).

    Returns
    -------
    list
        The results, in the order of ``arguments``.
    """
    pool = as_executor(executor)
    if pool is None:
        results = []
        for args in arguments:
            results.append(function(*args))
            if bar is not None:
                bar.update(1)
        return results
    futures = [pool.submit(function, *args) for args in arguments]
    try:
        for future in concurrent.futures.as_completed(futures):
            future.result()  # raise the first failure at once
            if bar is not None:
                bar.update(1)
    except BaseException:
        for future in futures:
            future.cancel()
        raise
    return [future.result() for future in futures]
