"""Reading the files users give exopk: whole, as UTF-8 text, or one clear error.

Every reader of a user file (parameter, label, imaging, route and scenario TOML; regimen,
observation and NCA CSV tables) goes through :func:`read_text`, so that a missing file, a
directory, a FIFO, a file too large to be what it claims, or bytes that are not UTF-8 give one
line naming the file and what was wrong ("not UTF-8 text at byte 12 (line 2)"), never a
traceback from a decoder deep inside ``tomllib`` or pandas.
"""

from __future__ import annotations

import codecs
import io
import stat
import tomllib
from pathlib import Path
from typing import Any

from exopk.errors import InputError

__all__ = ["MAX_TABLE_BYTES", "MAX_TOML_BYTES", "decode_utf8", "parse_csv", "read_csv", "read_text", "read_toml"]

MAX_TOML_BYTES = 16 * 2**20
"""Largest parameter file read (16 MiB); the bundled files are a few kB."""
MAX_TABLE_BYTES = 512 * 2**20
"""Largest CSV table read (512 MiB): millions of rows, far beyond any regimen or data set."""


def _size(n_bytes: int) -> str:
    for unit, factor in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n_bytes >= factor:
            return f"{n_bytes / factor:.1f} {unit}"
    return f"{n_bytes} bytes"


def decode_utf8(data: bytes, where: str, error: type[InputError] = InputError) -> str:
    """Decode file contents as UTF-8 text (a leading byte-order mark is dropped).

    Parameters
    ----------
    data : bytes
        The file contents.
    where : str
        What and where the data are, for messages (e.g. ``"regimen file 'doses.csv'"``).
    error : type of InputError
        The exception class raised (e.g. :class:`~exopk.errors.ParameterError` for parameter files).

    Returns
    -------
    str

    Raises
    ------
    InputError (of class ``error``)
        UTF-16 text, bytes that are not UTF-8, or a NUL byte (a binary file); the message gives
        the byte offset and line of the first offending byte.
    """
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise error(
            f"{where}: UTF-16 text (it starts with a UTF-16 byte-order mark); expected UTF-8: save it as UTF-8."
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise error(
            f"{where}: not UTF-8 text at byte {err.start} (line {line}, byte 0x{data[err.start]:02x}); "
            "expected UTF-8: save the file as UTF-8."
        ) from None
    nul = data.find(b"\x00")
    if nul >= 0:
        line = data.count(b"\n", 0, nul) + 1
        raise error(f"{where}: NUL byte at byte {nul} (line {line}); expected text, not a binary file.")
    return text.removeprefix("\ufeff")  # the byte-order mark spreadsheet programs write


def read_text(path: str | Path, what: str, *, error: type[InputError] = InputError, max_bytes: int) -> str:
    """The whole text of a user file, checked to be a regular file of UTF-8 text.

    Parameters
    ----------
    path : str or Path
        The file.
    what : str
        What the file is, for messages (e.g. ``"regimen file"``).
    error : type of InputError
        The exception class raised.
    max_bytes : int
        Largest size accepted (bytes); larger files are refused before they are read.

    Returns
    -------
    str

    Raises
    ------
    InputError (of class ``error``)
        Missing, a directory or other non-regular file, unreadable, larger than ``max_bytes``,
        or not UTF-8 text. The message names ``what``, the path and the reason.
    """
    path = Path(path)
    where = f"{what} {str(path)!r}"
    try:
        info = path.stat()
    except FileNotFoundError:
        raise error(f"{where} does not exist.") from None
    except OSError as err:
        raise error(f"{where} cannot be read: {err.strerror or err}.") from None
    if stat.S_ISDIR(info.st_mode):
        raise error(f"{where} is a directory; expected a file.")
    if not stat.S_ISREG(info.st_mode):
        raise error(f"{where} is not a regular file (a FIFO, socket or device); expected a file.")
    if info.st_size > max_bytes:
        raise error(f"{where} is {_size(info.st_size)}; expected at most {_size(max_bytes)} for a {what}.")
    try:
        data = path.read_bytes()
    except OSError as err:
        raise error(f"{where} cannot be read: {err.strerror or err}.") from None
    return decode_utf8(data, where, error)


def read_toml(path: str | Path, what: str = "parameter file", *, error: type[InputError] = InputError) -> dict:
    """Parse a user TOML file (see :func:`read_text` for the checks).

    Raises
    ------
    InputError (of class ``error``)
        As :func:`read_text`, or not valid TOML (with the line and column).
    """
    text = read_text(path, what, error=error, max_bytes=MAX_TOML_BYTES)
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise error(f"{path}: not valid TOML: {_one_line(err)}.") from None


def read_csv(path: str | Path, what: str, *, error: type[InputError] = InputError, **kwargs: Any):
    """Read a user CSV table into a DataFrame (see :func:`read_text` and :func:`parse_csv` for the checks).

    ``kwargs`` go to :func:`pandas.read_csv`.

    Raises
    ------
    InputError (of class ``error``)
        As :func:`read_text` and :func:`parse_csv`.
    """
    text = read_text(path, what, error=error, max_bytes=MAX_TABLE_BYTES)
    return parse_csv(text, f"{what} {str(path)!r}", error=error, **kwargs)


def parse_csv(text: str, where: str, *, error: type[InputError] = InputError, **kwargs: Any):
    """Parse CSV text into a DataFrame, strictly: every row has the header's fields, names are unique.

    pandas alone would read a table whose rows all have one field more than the header by
    making the first column the index, shifting every value one column to the left; here that
    is an error, as are duplicate column names (pandas renames the second ``x`` to ``x.1``).

    Parameters
    ----------
    text : str
        The CSV text.
    where : str
        What and where the text is, for messages.
    error : type of InputError
        The exception class raised.
    **kwargs
        Passed to :func:`pandas.read_csv` (e.g. ``comment="#"``).

    Raises
    ------
    InputError (of class ``error``)
        Empty text, no header line, rows with more or fewer fields than the header, duplicate
        column names, or anything else pandas cannot parse.
    """
    import warnings

    import pandas as pd

    if not text.strip():
        raise error(f"{where} is empty; expected a CSV table with a header line.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", pd.errors.ParserWarning)
            frame = pd.read_csv(io.StringIO(text), index_col=False, **kwargs)
    except pd.errors.EmptyDataError:
        raise error(f"{where} has no table (only comments or blank lines); expected a CSV header line.") from None
    except pd.errors.ParserWarning:
        raise error(f"{where}: a row has more fields than the header line; expected one field per column.") from None
    except (pd.errors.ParserError, ValueError, OverflowError) as err:
        raise error(f"{where}: not a readable CSV table: {_one_line(err)}.") from None
    header = _header_fields(text, kwargs.get("comment"))
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        raise error(f"{where}: column(s) {', '.join(map(repr, repeated))} appear more than once in the header line.")
    return frame


def _header_fields(text: str, comment: str | None) -> list[str]:
    import csv

    for line in text.splitlines():
        if line.strip() and not (comment and line.lstrip().startswith(comment)):
            return [field.strip() for field in next(csv.reader([line]))]
    return []


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split()).rstrip(".")
