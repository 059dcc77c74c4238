"""Output files of the command line: checked before any work, written whole or not at all.

Every command declares its outputs up front (:class:`Outputs`), which refuses, before anything is
simulated:

- a target that exists and is not a regular file (symbolic link, directory, FIFO, device, socket):
  outputs are put in place by renaming, which would replace a link or a pipe by a file;
- the same file named by two output options (``--out X --plot X`` would destroy the CSV);
- a figure whose extension matplotlib cannot honour (``--plot out.pdf`` writes PDF bytes);
- a table to ``.parquet`` when pyarrow (``pip install "exopk[parquet]"``) is not installed.

``-`` names standard output for text outputs (CSV, TOML, Markdown, SBML). Files are written to a
temporary file beside the target and renamed into place only when every output of the command is
complete; standard output is written last, after the renames.
"""

from __future__ import annotations

import io
import os
import stat
import sys
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TextIO

from exopk.cli._common import UsageError
from exopk.errors import ExopkError, SimulationError

Kind = Literal["csv", "table", "text", "figure"]

STDOUT = "-"

#: Figure formats by file extension: the matplotlib format each writes.
FIGURE_FORMATS = {
    "png": "png",
    "pdf": "pdf",
    "svg": "svg",
    "eps": "eps",
    "ps": "ps",
    "jpg": "jpeg",
    "jpeg": "jpeg",
    "tif": "tiff",
    "tiff": "tiff",
}
_RASTER = {"png", "jpeg", "tiff"}

#: Negative values whose magnitude is at most this fraction of the dose are solver round-off
#: (the exact solution's cancellation leaves ~1e-14 of the dose) and are written as 0.
ROUND_OFF_FRACTION_OF_DOSE = 1e-9

_NOT_REGULAR = (
    (stat.S_ISLNK, "a symbolic link"),
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def figure_format(path: Path, flag: str) -> str:
    """The matplotlib format for a figure path, from its extension (a usage error if unknown)."""
    suffix = path.suffix.lower().lstrip(".")
    if suffix not in FIGURE_FORMATS:
        got = f"extension {path.suffix!r}" if path.suffix else "no extension"
        raise UsageError(
            f"`{flag}` {str(path)!r} has {got}; expected a figure file ending in "
            + ", ".join(f".{s}" for s in FIGURE_FORMATS)
        )
    return FIGURE_FORMATS[suffix]


def table_format(path: Path, flag: str) -> Literal["csv", "parquet"]:
    """``"parquet"`` for a ``.parquet`` path (a usage error without pyarrow), else ``"csv"``."""
    if path.suffix.lower() != ".parquet":
        return "csv"
    import importlib.util

    if importlib.util.find_spec("pyarrow") is None:
        raise UsageError(
            f'`{flag}` {str(path)!r}: Parquet output needs pyarrow (pip install "exopk[parquet]"); or give a .csv path'
        )
    return "parquet"


def csv_text(columns: list[str], values, float_format: str = "%.10g", int_columns: Iterable[int] = ()) -> str:
    """A wide numeric table as CSV text: a header of ``columns``, a row per row of ``values``.

    Formatting is vectorised (:func:`numpy.savetxt`, one format string per row), not per cell
    in Python. NaN is written ``nan`` (read back as NaN by pandas and numpy).

    Parameters
    ----------
    columns : list of str
    values : ndarray, shape (n_rows, len(columns))
    float_format : str
        printf format of every column not in ``int_columns``.
    int_columns : iterable of int
        Columns written as integers (``%d``), such as subject numbers.
    """
    import numpy as np

    values = np.asarray(values, dtype=float)
    if values.ndim != 2 or values.shape[1] != len(columns):
        raise ValueError(f"`values` must have shape (n_rows, {len(columns)}); got {values.shape}")
    ints = set(int_columns)
    fmt = ",".join("%d" if j in ints else float_format for j in range(len(columns)))
    buffer = io.StringIO()
    buffer.write(",".join(columns) + "\n")
    if values.shape[0]:
        np.savetxt(buffer, values, fmt=fmt, delimiter=",")
    return buffer.getvalue()


def _what_is(path: Path, flag: str) -> str | None:
    """What a non-regular existing path is (None if it is a regular file or does not exist)."""
    try:
        mode = os.lstat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return None  # a missing or non-directory parent is reported by _check_target
    except OSError as err:
        raise ExopkError(f"`{flag}` {str(path)!r} cannot be examined: {err.strerror}") from None
    if stat.S_ISREG(mode):
        return None
    for test, what in _NOT_REGULAR:
        if test(mode):
            return what
    return "not a regular file"


def _check_target(path: Path, flag: str) -> None:
    what = _what_is(path, flag)
    if what is not None:
        hint = "; use `-` for standard output" if what != "a directory" else ""
        raise ExopkError(f"`{flag}` {str(path)!r} is {what}; expected a regular file or a new path{hint}")
    parent = path.parent if str(path.parent) else Path(".")
    if parent.exists() and not parent.is_dir():
        raise ExopkError(f"`{flag}` {str(path)!r}: {str(parent)!r} is not a directory")
    if parent.exists() and not os.access(parent, os.W_OK | os.X_OK):
        raise ExopkError(f"`{flag}` {str(path)!r}: directory {str(parent)!r} is not writable")


def _identity(path: Path) -> str:
    """A key equal for two spellings of one file (``a/../x`` and ``x``, links in the directory part)."""
    if str(path) == STDOUT:
        return STDOUT
    parent = os.path.realpath(path.parent if str(path.parent) else ".")
    return os.path.normcase(os.path.join(parent, path.name))


@dataclass(frozen=True)
class _Declared:
    path: Path
    flag: str
    kind: Kind


class Outputs:
    """The outputs of one command: checked when declared, committed together.

    Parameters
    ----------
    items : iterable of (path or None, flag, kind)
        Each output option: its value (``None`` when not given), its flag (for messages), and
        ``"csv"``, ``"table"`` (CSV, or Parquet for a ``.parquet`` path), ``"text"`` or ``"figure"``.

    Raises
    ------
    UsageError
        Two options name one file, a figure with an unknown extension, or a figure to ``-``.
    ExopkError
        A target that is not a regular file, or a directory that cannot be written.
    """

    def __init__(self, items: Iterable[tuple[Path | None, str, Kind]]) -> None:
        self._declared: dict[str, _Declared] = {}
        seen: dict[str, str] = {}
        given = [(Path(path), flag, kind) for path, flag, kind in items if path is not None]
        for path, flag, _ in given:
            key = _identity(path)
            if key in seen:
                where = "standard output" if key == STDOUT else repr(str(path))
                raise UsageError(f"`{seen[key]}` and `{flag}` both write {where}; give each output its own path")
            seen[key] = flag
        for path, flag, kind in given:
            if str(path) == STDOUT:
                if kind == "figure":
                    raise UsageError(f"`{flag} -`: figures cannot go to standard output; give a file name")
            else:
                _check_target(path, flag)
                if kind == "figure":
                    figure_format(path, flag)
                if kind == "table":
                    table_format(path, flag)
            self._declared[flag] = _Declared(path, flag, kind)
        self._pending: list[tuple[Path, Path, str]] = []
        self._stdout: list[str] = []

    @property
    def to_stdout(self) -> bool:
        """True when an output goes to standard output (messages then go to standard error)."""
        return any(str(d.path) == STDOUT for d in self._declared.values())

    @property
    def messages(self) -> TextIO:
        """Where a command prints its summary: standard error when standard output carries data."""
        return sys.stderr if self.to_stdout else sys.stdout

    def wants(self, flag: str) -> bool:
        """Whether the output of ``flag`` was asked for."""
        return flag in self._declared

    def path(self, flag: str) -> Path:
        return self._declared[flag].path

    def _temp_for(self, flag: str) -> Path:
        target = self._declared[flag].path
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
        except OSError as err:
            raise ExopkError(f"`{flag}` {str(target)!r} cannot be written: {err.strerror}") from None
        os.close(fd)
        self._pending.append((Path(name), target, flag))
        return Path(name)

    def text(self, flag: str, text: str) -> None:
        """Stage ``text`` (UTF-8) for the output of ``flag``."""
        if str(self._declared[flag].path) == STDOUT:
            self._stdout.append(text)
            return
        self._temp_for(flag).write_text(text, encoding="utf-8")

    def frame(self, flag: str, frame, float_format: str = "%.10g") -> None:
        """Stage a pandas DataFrame as CSV (no index) for the output of ``flag``."""
        buffer = io.StringIO()
        frame.to_csv(buffer, index=False, float_format=float_format)
        self.text(flag, buffer.getvalue())

    def table(
        self, flag: str, columns: list[str], values, float_format: str = "%.10g", int_columns: Iterable[int] = ()
    ) -> None:
        """Stage a wide numeric table (a column per name) for the output of ``flag``.

        CSV (:func:`csv_text`) for a ``.csv`` path or standard output; Parquet for a ``.parquet``
        path (pandas with pyarrow; ``int_columns`` as int64, the rest float64).
        """
        path = self._declared[flag].path
        if str(path) == STDOUT or table_format(path, flag) == "csv":
            self.text(flag, csv_text(columns, values, float_format, int_columns))
            return
        import numpy as np
        import pandas as pd

        values = np.asarray(values, dtype=float)
        ints = set(int_columns)
        frame = pd.DataFrame(
            {name: values[:, j].astype(np.int64) if j in ints else values[:, j] for j, name in enumerate(columns)},
            copy=False,
        )
        temp = self._temp_for(flag)
        try:
            frame.to_parquet(temp, index=False)
        except OSError as err:
            raise ExopkError(f"`{flag}` {str(path)!r} cannot be written: {err}") from None

    def figure(self, flag: str, fig, dpi: int = 120) -> None:
        """Stage a matplotlib figure in the format its extension names, and close the figure."""
        import matplotlib.pyplot as plt

        path = self._declared[flag].path
        fmt = figure_format(path, flag)
        try:
            fig.savefig(self._temp_for(flag), format=fmt, dpi=dpi if fmt in _RASTER else "figure")
        finally:
            plt.close(fig)

    def write(self, flag: str, writer: Callable[[Path], None]) -> None:
        """Stage an output written by ``writer(temporary_path)``."""
        writer(self._temp_for(flag))

    def commit(self) -> None:
        """Move every staged file into place, then write what goes to standard output."""
        umask = os.umask(0)
        os.umask(umask)
        for _, target, flag in self._pending:
            _check_target(target, flag)  # the target may have changed since it was declared
        for temp, target, _ in self._pending:
            os.chmod(temp, 0o666 & ~umask)  # mkstemp creates 0600; give outputs the usual mode
            os.replace(temp, target)
        self._pending.clear()
        for text in self._stdout:
            sys.stdout.write(text)
        sys.stdout.flush()
        self._stdout.clear()

    def discard(self) -> None:
        """Remove every staged file; nothing is written."""
        for temp, _, _ in self._pending:
            temp.unlink(missing_ok=True)
        self._pending.clear()
        self._stdout.clear()

    def __enter__(self) -> Outputs:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            try:
                self.commit()
            except BaseException:
                self.discard()
                raise
        else:
            self.discard()

    def written(self, names: Iterable[tuple[str, str]]) -> list[str]:
        """Lines ``wrote <what>: <path>`` for the file outputs among ``(flag, what)``."""
        return [
            f"wrote {what}: {self.path(flag)}"
            for flag, what in names
            if self.wants(flag) and str(self.path(flag)) != STDOUT
        ]


def clip_round_off(frame, dose_particles: float, remedy: str = ""):
    """Set solver round-off below zero to 0 in a tidy ``value``/``unit`` frame; raise on a real negative.

    A negative value is round-off when its magnitude is at most
    :data:`ROUND_OFF_FRACTION_OF_DOSE` of the dose: 1e-7 for ``%ID`` rows, 1e-9 × ``dose_particles``
    for ``particles`` rows, and 1e-9 of the largest magnitude of the same quantity for rows in
    other units (%ID/g, particles/mL, signal), whose largest value is at most the dose per unit.

    Parameters
    ----------
    frame : pandas.DataFrame
        Columns ``value`` and ``unit`` (and ``quantity`` to group other units by).
    dose_particles : float
        Total dose (particles).
    remedy : str, optional
        What the user can try, in the command's own options (ends the error message).

    Returns
    -------
    pandas.DataFrame
        A copy with round-off set to 0.

    Raises
    ------
    SimulationError
        A value more negative than the bound: a solver error the output must not hide.
    """
    import numpy as np

    values = frame["value"].to_numpy(dtype=float, copy=True)
    units = frame["unit"].astype(str).to_numpy()
    groups = frame["quantity"].astype(str).to_numpy() if "quantity" in frame.columns else units
    bound = np.zeros(values.size)
    for group in np.unique(groups):
        rows = groups == group
        largest = float(np.nanmax(np.abs(values[rows]), initial=0.0))
        bound[rows] = ROUND_OFF_FRACTION_OF_DOSE * largest
    bound[units == "%ID"] = ROUND_OFF_FRACTION_OF_DOSE * 100.0
    bound[units == "particles"] = ROUND_OFF_FRACTION_OF_DOSE * dose_particles
    real = values < -bound
    if np.any(real):
        i = int(np.flatnonzero(real)[0])
        where = ", ".join(f"{c} {frame[c].iloc[i]}" for c in ("time_h", "organ", "quantity") if c in frame.columns)
        raise SimulationError(
            f"the solution is negative beyond round-off ({values[i]:.3g} {units[i]} at {where}; bound "
            f"{bound[i]:.3g}, {ROUND_OFF_FRACTION_OF_DOSE:g} of the dose): the solver is inaccurate here"
            + (f"; {remedy}" if remedy else "")
        )
    values[values < 0] = 0.0
    out = frame.copy()
    out["value"] = values
    return out
