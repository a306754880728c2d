"""Checks of the analysis commands' arguments: numbers, counts, seeds, file paths, data files.

Every check raises an :class:`nngeom.NngeomError` whose message names the option, says what was
wrong and what to give instead; the CLI prints it as one line. They run before any model is
loaded or any work starts, so bad input is refused at once.
"""

from __future__ import annotations

import errno
import os
import stat
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .._checks import check_int, check_number, check_seed
from .._errors import DataError, InvalidInput
from .._paths import check_length, output_path, short, too_long

__all__ = [
    "seed",
    "count",
    "number",
    "data_file",
    "input_file",
    "output_file",
    "plot_file",
    "read_arrays",
    "read_inputs",
    "finite_series",
    "MODEL_TYPES",
    "INPUT_TYPES",
    "XY_TYPES",
    "SERIES_TYPES",
    "CHAOS_MODEL_TYPES",
    "PLOT_TYPES",
    "types_text",
    "file_type",
]

# The largest count options take (lines, directions, probes...): far beyond useful, well below
# sizes that would exhaust memory before any check in the library runs.
MAX_COUNT = 100_000


# --------------------------------------------------------------------------------------------
# file types: each file option accepts exactly these suffixes; its help text lists them (from
# these tuples) and a file of any other type is refused with a message that names them
# --------------------------------------------------------------------------------------------

#: MODEL: a torch.export program (.pt2), safetensors, or a torch.save file (nngeom.save_model,
#: a state dict or a checkpoint dictionary: .pt, .pth, .ckpt, .bin)
MODEL_TYPES = (".pt2", ".safetensors", ".pt", ".pth", ".ckpt", ".bin")
#: inputs X: .npy (the array), .npz (array "X"), .pt/.pth (a tensor or a dict with "X")
INPUT_TYPES = (".npy", ".npz", ".pt", ".pth")
#: inputs and targets X, y: .npz (arrays "X" and "y") or .pt/.pth (a dict with "X" and "y")
XY_TYPES = (".npz", ".pt", ".pth")
#: a time series: a CSV text file
SERIES_TYPES = (".csv",)
#: a model of ``nngeom chaos fit``
CHAOS_MODEL_TYPES = (".json",)
#: pictures: formats matplotlib always writes (a name without a suffix gets .png)
PLOT_TYPES = (".png", ".svg", ".pdf", ".eps", ".ps", ".jpg", ".jpeg", ".tif", ".tiff")


def types_text(types: tuple[str, ...]) -> str:
    """``".npy, .npz, .pt or .pth"``: the accepted types, for help texts and messages."""
    return types[0] if len(types) == 1 else f"{', '.join(types[:-1])} or {types[-1]}"


def file_type(
    path: Path | str,
    option: str,
    types: tuple[str, ...],
    *,
    what: str = "file",
    error: type[Exception] = DataError,
) -> Path:
    """``path`` if its suffix is one of ``types`` (case matters: the loaders dispatch on it);
    otherwise ``error`` with a message naming the accepted types."""
    path = Path(path)
    if path.suffix not in types:
        kind = f"type {path.suffix!r}" if path.suffix else "no file type (suffix)"
        raise error(
            f"{option}: {short(path)} has {kind}; a {what} must be a {types_text(types)} file"
        )
    return path


def seed(value: int, option: str = "--seed") -> int:
    """A seed numpy and torch both accept (an int in ``[0, 2**64 - 1]``)."""
    return check_seed(value, option)


def count(value: int, option: str, *, minimum: int = 1, maximum: int = MAX_COUNT) -> int:
    """An int option within ``[minimum, maximum]``."""
    return check_int(option, value, minimum=minimum, maximum=maximum)


def number(value: float, option: str, **bounds: Any) -> float:
    """A finite float option (bounds as in :func:`nngeom._checks.check_number`)."""
    return check_number(option, value, **bounds)


def exists(path: Path | str, option: str) -> bool:
    """Whether ``path`` names anything (a too-long path is refused, not taken as missing)."""
    path = Path(path)
    check_length(path, option)
    return os.path.lexists(path)


def data_file(
    spec: str, datasets: tuple[str, ...], types: tuple[str, ...], *, holding: str = ""
) -> Path:
    """The file ``--data`` names when ``spec`` is none of the dataset names ``datasets``: an
    existing path, or a DataError that lists the names and the file types (``holding``: what
    the file must hold, for the message)."""
    path = Path(spec)
    if not exists(path, "--data"):
        raise DataError(
            f"--data {spec[:200]!r} is neither a dataset name ({', '.join(datasets)}) nor an "
            f"existing {types_text(types)} file{holding}"
        )
    return path


def input_file(path: Path | str, option: str, *, what: str = "file") -> Path:
    """An existing, readable regular file (not a directory), or a one-line error."""
    path = Path(path)
    check_length(path, option)
    try:
        st = path.stat()
    except (FileNotFoundError, NotADirectoryError):
        raise DataError(f"{option}: no {what} at {short(path)}") from None
    except OSError as exc:
        if exc.errno == errno.ENAMETOOLONG:
            raise too_long(path, option) from None
        raise DataError(f"{option}: cannot read {short(path)}: {exc.strerror or exc}") from None
    if stat.S_ISDIR(st.st_mode):
        raise DataError(f"{option}: {short(path)} is a directory; give a {what} inside it")
    if not stat.S_ISREG(st.st_mode):
        raise DataError(f"{option}: {short(path)} is not a regular file")
    if not os.access(path, os.R_OK):
        raise DataError(f"{option}: {short(path)} is not readable (permission denied)")
    return path


def output_file(path: Path | str, option: str, *, what: str = "file") -> Path:
    """A path a file can be written to: its folder exists, it is not a directory itself."""
    return output_path(path, option, what=what)


def plot_file(path: Path | str, option: str = "--plot") -> tuple[Path, str]:
    """The picture file really written and its format: the extension must be a format
    matplotlib writes; a name without one gets ``.png`` (and the returned path says so)."""
    from matplotlib.figure import Figure

    path = Path(path)
    check_length(path, option)
    if path.is_dir():
        output_file(path, option, what="picture file")  # refuses: a directory
    supported = Figure().canvas.get_supported_filetypes()
    fmt = path.suffix[1:].lower()
    if not path.suffix:
        path, fmt = path.with_name(path.name + ".png"), "png"
    elif path.suffix.lower() not in PLOT_TYPES or fmt not in supported:
        raise InvalidInput(
            f"{option}: cannot write a picture of type {path.suffix!r} "
            f"({short(path)}); use a {types_text(PLOT_TYPES)} file"
        )
    return output_file(path, option, what="picture file"), fmt


# --------------------------------------------------------------------------------------------
# data files
# --------------------------------------------------------------------------------------------

_KINDS = {
    "b": "booleans",
    "c": "complex numbers",
    "U": "strings",
    "S": "byte strings",
    "O": "Python objects",
    "V": "records (a structured array)",
    "M": "dates",
    "m": "time spans",
}


def _numeric(arr: np.ndarray | torch.Tensor, label: str) -> None:
    """Refuse arrays that are not real numbers (strings, booleans, complex, records)."""
    if isinstance(arr, torch.Tensor):
        if arr.is_complex() or arr.dtype == torch.bool:
            kind = "complex numbers" if arr.is_complex() else "booleans"
            raise DataError(f"{label} holds {kind} ({arr.dtype}); it must hold real numbers")
        return
    kind = arr.dtype.kind
    if kind not in "fiu":
        raise DataError(
            f"{label} holds {_KINDS.get(kind, str(arr.dtype))} (dtype {arr.dtype}); "
            "it must hold real numbers (float or int)"
        )


def _finite(t: torch.Tensor, label: str) -> None:
    if t.is_floating_point() and t.numel() and not bool(torch.isfinite(t).all()):
        bad = int((~torch.isfinite(t)).sum())
        raise DataError(f"{label} has {bad} NaN or infinite value(s); clean the data first")


def read_arrays(
    path: Path | str,
    option: str,
    require: tuple[str, ...],
    types: tuple[str, ...] = INPUT_TYPES,
) -> dict[str, torch.Tensor]:
    """Named arrays of a data file (``.npy``: ``X``; ``.npz``: by name; ``.pt``/``.pth``), read
    without running code, each checked to hold finite real numbers; ``types``: the accepted
    file types (a subset of :data:`INPUT_TYPES`)."""
    from ..data import load_arrays

    path = input_file(path, option, what="data file")
    file_type(path, option, types, what="data file")
    src = short(path)
    if path.suffix in (".npy", ".npz"):
        try:
            loaded = np.load(path, allow_pickle=False)
            if isinstance(loaded, np.ndarray):
                raw = {"X": loaded}
            else:
                with loaded:
                    raw = {k: loaded[k] for k in loaded.files}
        except (ValueError, OSError, EOFError, zipfile.BadZipFile, KeyError) as exc:
            raise DataError(
                f"{option}: {src} is not a plain numpy file ({' '.join(str(exc).split())[:120]})"
            ) from None
        missing = [k for k in require if k not in raw]
        if missing:
            raise DataError(
                f"{option}: {src} must hold {' and '.join(repr(k) for k in require)} "
                f"(found {sorted(raw) or 'nothing'})"
            )
        arrays = {}
        for k in require:
            _numeric(raw[k], f"{option}: {k} in {src}")
            arrays[k] = torch.from_numpy(np.ascontiguousarray(raw[k]))
    else:
        arrays = load_arrays(path, require=require)
    for k in require:
        _numeric(arrays[k], f"{option}: {k} in {src}")
        _finite(arrays[k], f"{option}: {k} in {src}")
    return arrays


def read_inputs(path: Path | str, option: str = "--data") -> torch.Tensor:
    """Inputs ``X`` of shape ``(N, d)`` (images flattened) from a data file of one of
    :data:`INPUT_TYPES`, floating point."""
    X = read_arrays(path, option, ("X",), INPUT_TYPES)["X"]
    if X.ndim < 2:
        raise DataError(
            f"{option}: X in {short(Path(path))} must have shape (N, d) (one row per example), "
            f"got {tuple(X.shape)}"
        )
    if X.shape[0] == 0:
        raise DataError(f"{option}: X in {short(Path(path))} is empty (N = 0)")
    if X.ndim > 2:
        X = X.reshape(X.shape[0], -1)
    return X if X.is_floating_point() else X.double()


def finite_series(x: np.ndarray, source: Path | str) -> np.ndarray:
    """Refuse a series with NaN or infinite values (a chaotic series is never one)."""
    bad = ~np.isfinite(x)
    if bad.any():
        first = int(np.argmax(bad))
        raise DataError(
            f"{short(Path(source))} has {int(bad.sum())} NaN or infinite value(s) (the first "
            f"at data row {first + 1}); clean the series first"
        )
    return x
