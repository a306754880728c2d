"""Real series: the Santa Fe laser (bundled with reservoirpy), yearly sunspots (bundled with
statsmodels) and any numeric column of a CSV file. The two bundled sets are optional extras
(``pip install 'nngeom[chaos]'``); without them the loaders raise :class:`DataError` saying so.
"""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path

import numpy as np

from .._errors import DataError

__all__ = ["santafe_laser", "sunspots", "read_csv_column", "write_csv_column"]


def santafe_laser() -> np.ndarray:
    """The Santa Fe competition laser series (data set A, 10093 intensity values), float64 ``(n,)``.

    >>> from nngeom import chaos
    >>> s = chaos.santafe_laser()
    >>> s.shape, s.dtype
    ((10093,), dtype('float64'))
    """
    import importlib.resources
    import importlib.util

    try:
        found = importlib.util.find_spec("reservoirpy.datasets") is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        raise DataError(
            "the Santa Fe laser series ships with reservoirpy, which is not installed; "
            "run `pip install 'nngeom[chaos]'` (or `pip install reservoirpy`)"
        )
    # read the bundled .npy ourselves (reservoirpy's loader leaves the file handle open)
    ref = importlib.resources.files("reservoirpy.datasets").joinpath("santafe_laser.npy")
    try:
        with ref.open("rb") as fh:
            data = np.load(fh, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise DataError(
            f"reservoirpy's santafe_laser.npy cannot be read ({exc}); reinstall reservoirpy"
        ) from None
    return np.asarray(data, dtype=np.float64).reshape(-1)


def sunspots() -> np.ndarray:
    """Yearly mean sunspot numbers 1700-2008 (309 values, statsmodels), float64 ``(n,)``.

    >>> from nngeom import chaos
    >>> s = chaos.sunspots()
    >>> s.shape, s.dtype
    ((309,), dtype('float64'))
    """
    try:
        from statsmodels.datasets import sunspots as _sun
    except ImportError:
        raise DataError(
            "the yearly sunspot series ships with statsmodels, which is not installed; "
            "run `pip install 'nngeom[chaos]'` (or `pip install statsmodels`)"
        ) from None
    data = _sun.load_pandas().data
    return np.asarray(data["SUNACTIVITY"], dtype=np.float64)


def read_csv_column(path: str | os.PathLike[str], column: str | int = 0) -> np.ndarray:
    """One numeric column of a CSV file (by header name, or 0-based index), float64 ``(n,)``.

    A first row that is not numeric in that column is taken as the header.

    Raises:
        DataError: missing file, unknown column, a non-numeric or empty cell, or no rows.

    >>> import numpy as np
    >>> from nngeom import chaos
    >>> _ = chaos.write_csv_column("x.csv", np.array([0.5, 1.0, 1.5]), name="x")
    >>> chaos.read_csv_column("x.csv", "x")
    array([0.5, 1. , 1.5])
    """
    if not isinstance(path, (str, os.PathLike)):
        raise DataError(f"path must be a file path, got {path!r}")
    if isinstance(column, bool) or not isinstance(column, (str, int, np.integer)):
        raise DataError(f"column must be a header name or a 0-based index, got {column!r}")
    p = Path(path)
    if not p.is_file():
        raise DataError(f"no CSV file at {p}")
    try:
        with p.open(newline="") as fh:
            rows = [r for r in csv.reader(fh) if r and any(c.strip() for c in r)]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"cannot read {p} as CSV: {exc}") from None
    if not rows:
        raise DataError(f"{p} has no rows")
    header = rows[0]
    has_header = not all(_is_number(c) for c in header)
    if isinstance(column, str) and not column.lstrip("-").isdigit():
        names = [h.strip() for h in header]
        if not has_header or column not in names:
            raise DataError(
                f"{p} has no column named {column!r}; its header is {names if has_header else 'absent'}"
            )
        j = names.index(column)
    else:
        j = int(column)
        if j < 0 or j >= len(header):
            raise DataError(f"column index {j} is out of range: {p} has {len(header)} columns")
    body = rows[1:] if has_header else rows
    if not body:
        raise DataError(f"{p} has a header but no data rows")
    out = np.empty(len(body))
    for i, r in enumerate(body):
        cell = r[j].strip() if j < len(r) else ""
        if not _is_number(cell):
            line = i + 1 + (1 if has_header else 0)
            raise DataError(
                f"{p}, line {line}, column {column!r}: {cell!r} is not a number; "
                "pick a numeric column or clean the file"
            )
        out[i] = float(cell)
        if not np.isfinite(out[i]):
            line = i + 1 + (1 if has_header else 0)
            raise DataError(
                f"{p}, line {line}, column {column!r}: {cell!r} is not a finite number; "
                "clean the file (drop or fill missing values)"
            )
    return out


def write_csv_column(path: str | os.PathLike[str], values: np.ndarray, name: str = "x") -> Path:
    """Write a 1-D series as a one-column CSV with header ``name`` (repr precision, round-trips).

    >>> import numpy as np
    >>> from nngeom import chaos
    >>> path = chaos.write_csv_column("x.csv", np.array([0.5, 1.0, 1.5]), name="x")
    >>> path.read_text().split()
    ['x', '0.5', '1.0', '1.5']
    """
    from .._checks import as_real_array
    from .._errors import InvalidInput
    from .._paths import output_path, write_bytes

    p = output_path(path, "path", what="CSV file")
    if not isinstance(name, str) or not name or any(c in name for c in ',\r\n"\0'):
        raise InvalidInput(
            f"name must be a non-empty header without commas, quotes, newlines or NUL bytes, "
            f"got {name!r:.60}"
        )
    arr = as_real_array(values, "values").reshape(-1)
    try:
        header = name.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInput(f"name {name!r:.60} cannot be written as UTF-8 text") from None
    body = "".join(repr(float(v)) + "\n" for v in arr).encode("ascii")
    write_bytes(p, header + b"\n" + body, what="CSV file")
    return p


def _is_number(cell: str) -> bool:
    try:
        v = float(cell)
    except ValueError:
        return False
    return not math.isnan(v) or cell.strip().lower() == "nan"
