"""Literature data shipped with exopk, with their provenance.

Each dataset is a tidy CSV file in ``params/datasets/`` (installed as ``exopk/params/datasets``):
a header of ``# key: value`` comment lines, then the observations with columns
``time_h, organ, quantity, value, sd, n, unit`` (see :mod:`exopk.analysis.observations` for the
quantities and units). The header says where every number came from:

``name``, ``title``, ``citation``, ``source`` (figure, table or abstract, with its address),
``obtained`` (from text, from a table, digitised, or derived — with the arithmetic),
``species``, ``route``, ``label`` (a bundled label name, or ``none`` to compare with intact
EVs), ``dose``, ``ev``, ``scenario`` (a bundled scenario or ``none``) and ``notes``.

Only numbers printed in a source (or derived from printed numbers by stated arithmetic) are
datasets; qualitative statements ("liver peaks within 1 h") are checks in the validation report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from exopk.analysis.observations import DataError, check_observations

__all__ = ["METADATA_KEYS", "Dataset", "list_datasets", "load_dataset", "read_observations"]

METADATA_KEYS = (
    "name",
    "title",
    "citation",
    "source",
    "obtained",
    "species",
    "route",
    "label",
    "dose",
    "ev",
    "scenario",
    "notes",
)
"""Header keys every shipped dataset carries."""


def _dir() -> Path:
    from exopk.model.parameters import params_dir

    return params_dir() / "datasets"


@dataclass(frozen=True)
class Dataset:
    """One literature dataset: the observations and where they came from.

    Attributes
    ----------
    name : str
    data : pandas.DataFrame
        Tidy observations, columns ``time_h, organ, quantity, value, sd, n, unit``.
    metadata : Mapping[str, str]
        The provenance header (keys :data:`METADATA_KEYS`).
    path : Path
        The CSV file.
    """

    name: str
    data: Any
    metadata: MappingProxyType = field(repr=False)
    path: Path = field(repr=False)

    @property
    def label(self) -> str | None:
        """The label the data were measured through, or None for a comparison with intact EVs."""
        label = self.metadata["label"]
        return None if label.lower() == "none" else label

    @property
    def scenario(self) -> str | None:
        """The scenario the data were measured in, or None for healthy animals."""
        scenario = self.metadata["scenario"]
        return None if scenario.lower() == "none" else scenario

    def describe(self) -> str:
        """The provenance header and the data as text."""
        lines = [f"{key}: {value}" for key, value in self.metadata.items()]
        return "\n".join(lines) + "\n\n" + self.data.to_string(index=False)


def read_observations(path: str | Path):
    """Read a tidy observation CSV (``#`` lines are a ``key: value`` header) and check it.

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    (pandas.DataFrame, dict)
        The observations as written (checked with the rules of :func:`exopk.analysis.fit`) and the header.

    Raises
    ------
    DataError
        File missing or unreadable, or a malformed table (the message names the column and row).
    """
    from exopk.model.files import MAX_TABLE_BYTES, parse_csv, read_text

    path = Path(path)
    text = read_text(path, "observation file", error=DataError, max_bytes=MAX_TABLE_BYTES)
    header: dict[str, str] = {}
    body = []
    for line in text.splitlines():
        if line.startswith("#"):
            key, sep, value = line[1:].partition(":")
            if sep:
                header[key.strip()] = value.strip()
        elif line.strip():
            body.append(line)
    if not body:
        raise DataError(f"{path}: no table (expected a CSV header line with columns time_h, organ, quantity, ...)")
    frame = parse_csv(
        "\n".join(body),
        f"observation file {str(path)!r}",
        error=DataError,
        dtype={"organ": str, "quantity": str, "unit": str},
        keep_default_na=False,
        na_values=[""],
    )
    frame.columns = [str(c).strip() for c in frame.columns]
    check_observations(frame, where=str(path))
    return frame, header


def list_datasets() -> tuple[str, ...]:
    """Names of the shipped literature datasets, sorted.

    Returns
    -------
    tuple of str
    """
    return tuple(sorted(p.stem for p in _dir().glob("*.csv")))


def load_dataset(name: str) -> Dataset:
    """Load a shipped literature dataset by name.

    Parameters
    ----------
    name : str
        One of :func:`list_datasets`.

    Returns
    -------
    Dataset
        ``.data`` (tidy DataFrame, values in the units of the ``unit`` column) and ``.metadata``
        (provenance header).

    Raises
    ------
    DataError
        Unknown name, or a file missing a provenance key.
    """
    if name not in list_datasets():
        raise DataError(f"unknown dataset {name!r}; expected one of: {', '.join(list_datasets())}")
    path = _dir() / f"{name}.csv"
    frame, header = read_observations(path)
    missing = [k for k in METADATA_KEYS if k not in header]
    if missing:
        raise DataError(f"{path}: provenance header lacks {', '.join(missing)}")
    if header["name"] != name:
        raise DataError(f"{path}: header name {header['name']!r} differs from the file name {name!r}")
    return Dataset(name=name, data=frame, metadata=MappingProxyType(dict(header)), path=path)
