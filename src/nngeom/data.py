"""Datasets: an IDX reader (MNIST / Fashion-MNIST), sklearn's bundled sets, teacher tasks, splits.

Nothing is downloaded at run time. Fashion-MNIST is read from the Debian package
``dataset-fashion-mnist`` (``/usr/share/datasets/fashion-mnist``) or from any folder holding the
four IDX files (gzipped or not); MNIST files in the same layout are read the same way.
"""

from __future__ import annotations

import gzip
import math
import os
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ._checks import check_float_dtype, check_number, check_positive_int, check_real_tensor
from ._errors import DataError, InvalidInput
from ._random import torch_generator

__all__ = [
    "read_idx",
    "Dataset",
    "load_idx_dataset",
    "fashion_mnist",
    "fashion_mnist_available",
    "digits",
    "image_classification",
    "pool_images",
    "teacher_student_grid",
    "split",
    "load_arrays",
    "load_inputs",
]

_IDX_TYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
FASHION_MNIST_DIRS = ("/usr/share/datasets/fashion-mnist",)
# The largest IDX payload read (bytes): refuses headers that declare absurd shapes before reading.
MAX_IDX_BYTES = 8 * 2**30
# teacher_student_grid: the most grid points
MAX_GRID_POINTS = 10_000_000


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read one IDX file (``.gz`` or plain) into an array of its declared type and shape.

    The format: two zero bytes, a type code, the number of dimensions ``D``, then ``D`` big-endian
    uint32 sizes, then the data. Raises :class:`DataError` on a wrong magic number, an unknown
    type code, or a file whose length does not match its header (truncated or padded).
    """
    if not isinstance(path, (str, os.PathLike)):
        raise DataError(f"path must be a file path, got {path!r}")
    path = Path(path)
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as fh:
            head = fh.read(4)
            if len(head) < 4 or head[0] != 0 or head[1] != 0:
                raise DataError(
                    f"{path} is not an IDX file (bad magic number {head.hex() or 'empty'}; "
                    "expected 0x0000 then a type code)"
                )
            code, ndim = head[2], head[3]
            if code not in _IDX_TYPES:
                raise DataError(f"{path}: unknown IDX data type code 0x{code:02x}")
            if ndim == 0:
                raise DataError(f"{path}: IDX header declares zero dimensions")
            dims = fh.read(4 * ndim)
            if len(dims) < 4 * ndim:
                raise DataError(f"{path} is truncated inside its header")
            shape = tuple(int(v) for v in np.frombuffer(dims, dtype=">u4", count=ndim))
            dtype = _IDX_TYPES[code]
            expected = math.prod(shape) * dtype.itemsize
            if expected > MAX_IDX_BYTES:
                raise DataError(
                    f"{path}: header shape {shape} declares {expected:,} data bytes, more than "
                    f"nngeom reads ({MAX_IDX_BYTES:,}); the file is corrupt or not an IDX file"
                )
            data = fh.read(expected + 1)
    except DataError:
        raise
    except FileNotFoundError as exc:
        raise DataError(f"IDX file not found: {path}") from exc
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"cannot read IDX file {path}: {exc}") from exc
    header = 4 + 4 * ndim
    if len(data) != expected:
        what = "truncated" if len(data) < expected else "longer than its header says"
        shown = len(data) if len(data) <= expected else "more"
        raise DataError(
            f"{path} is {what}: header shape {shape} needs {expected} data bytes, "
            f"file has {shown}; re-download or reinstall it"
        )
    raw = head + dims + data
    return (
        np.frombuffer(raw, dtype=dtype, offset=header)
        .reshape(shape)
        .astype(dtype.newbyteorder("="))
    )


@dataclass(frozen=True)
class Dataset:
    """A train/test split. ``X_*``: float32 ``(N, D)``; ``y_*``: int64 labels ``(N,)`` or float targets."""

    name: str
    X_train: Tensor
    y_train: Tensor
    X_test: Tensor
    y_test: Tensor
    n_classes: int | None = None

    @property
    def n_features(self) -> int:
        return int(self.X_train.shape[1])


def _find(folder: Path, stem: str) -> Path:
    for name in (
        stem,
        stem + ".gz",
        stem.replace("-idx", ".idx"),
        stem.replace("-idx", ".idx") + ".gz",
    ):
        if (folder / name).exists():
            return folder / name
    raise DataError(f"{folder} has no {stem}[.gz]")


def _read_idx_parts(folder: Path) -> dict[str, np.ndarray]:
    """The four MNIST-layout IDX arrays of ``folder`` (uint8 images, integer labels), checked."""
    if not folder.is_dir():
        raise DataError(f"{folder} is not a folder with MNIST-layout IDX files")
    parts = {}
    for key, stem in (
        ("X_train", "train-images-idx3-ubyte"),
        ("y_train", "train-labels-idx1-ubyte"),
        ("X_test", "t10k-images-idx3-ubyte"),
        ("y_test", "t10k-labels-idx1-ubyte"),
    ):
        parts[key] = read_idx(_find(folder, stem))
    for split_name in ("train", "test"):
        X, y = parts[f"X_{split_name}"], parts[f"y_{split_name}"]
        if X.ndim != 3 or y.ndim != 1 or X.shape[0] != y.shape[0]:
            raise DataError(
                f"{folder}: {split_name} images {X.shape} and labels {y.shape} do not match"
            )
        if X.dtype != np.uint8:
            raise DataError(f"{folder}: {split_name} images are {X.dtype}, expected uint8 pixels")
        if y.dtype.kind not in "iu" or (y.size and (int(y.min()) < 0 or int(y.max()) > 9)):
            raise DataError(f"{folder}: {split_name} labels must be integers 0..9")
    return parts


# The largest uint8 pixel value, scaled to 1
_PIXEL_MAX = 255.0


def _idx_split(X: np.ndarray, y: np.ndarray, idx: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Rows ``idx`` (all when None) of uint8 images ``(N, s, s)`` and labels ``(N,)``, as float32
    pixels in [0, 1] of shape ``(n, s * s)`` and int64 labels (only the chosen rows converted)."""
    Xt = torch.from_numpy(X).reshape(X.shape[0], -1)
    yt = torch.from_numpy(y)
    if idx is not None:
        Xt, yt = Xt[idx], yt[idx]
    return Xt.to(torch.float32).div_(_PIXEL_MAX), yt.to(torch.int64)


def load_idx_dataset(folder: str | os.PathLike[str], name: str = "idx") -> Dataset:
    """Load the four standard MNIST-layout IDX files from ``folder`` (pixels scaled to [0, 1])."""
    parts = _read_idx_parts(Path(folder))
    return Dataset(
        name,
        *_idx_split(parts["X_train"], parts["y_train"]),
        *_idx_split(parts["X_test"], parts["y_test"]),
        n_classes=10,
    )


def fashion_mnist_available(folder: str | os.PathLike[str] | None = None) -> Path | None:
    """The folder holding Fashion-MNIST's IDX files, or None if it is not installed."""
    candidates = (
        [folder]
        if folder is not None
        else [os.environ.get("NNGEOM_FASHION_MNIST"), *FASHION_MNIST_DIRS]
    )
    for c in candidates:
        if c and any(
            Path(c, f).exists() for f in ("train-images-idx3-ubyte.gz", "train-images-idx3-ubyte")
        ):
            return Path(c)
    return None


def fashion_mnist(folder: str | os.PathLike[str] | None = None) -> Dataset:
    """Fashion-MNIST (60k train / 10k test, 784 features in [0, 1], 10 classes).

    Looks in ``folder``, then ``$NNGEOM_FASHION_MNIST``, then the Debian package's folder.
    """
    return load_idx_dataset(_fashion_mnist_folder(folder), name="fashion-mnist")


def _fashion_mnist_folder(folder: str | os.PathLike[str] | None = None) -> Path:
    found = fashion_mnist_available(folder)
    if found is None:
        raise DataError(
            "Fashion-MNIST is not installed: run `apt-get install dataset-fashion-mnist` "
            "or set NNGEOM_FASHION_MNIST to a folder with its four IDX files"
        )
    return found


# The pixel range of sklearn's 8x8 digits (0..16), scaled to [0, 1]
_DIGITS_MAX_PIXEL = 16.0


def digits(
    test_fraction: float = 0.25, *, seed: int = 0, generator: torch.Generator | None = None
) -> Dataset:
    """sklearn's bundled 8x8 digits (1797 images, 64 features scaled to [0, 1], 10 classes),
    split at random into train and test parts (see :func:`split` for ``seed`` / ``generator``).

    >>> ds = digits(seed=0)
    >>> ds.X_train.shape, ds.X_test.shape, ds.n_classes
    (torch.Size([1348, 64]), torch.Size([449, 64]), 10)
    """
    test_fraction = check_number("test_fraction", test_fraction)
    g = torch_generator(seed, generator)
    from sklearn.datasets import load_digits

    bunch = load_digits()
    X = torch.from_numpy(bunch.data.astype(np.float32) / _DIGITS_MAX_PIXEL)
    y = torch.from_numpy(bunch.target.astype(np.int64))
    return split(X, y, test_fraction=test_fraction, generator=g, name="digits", n_classes=10)


def image_classification(
    name: str = "auto",
    *,
    n_train: int | None = None,
    n_test: int | None = None,
    seed: int = 0,
    generator: torch.Generator | None = None,
) -> Dataset:
    """Fashion-MNIST if installed (``name="auto"`` or ``"fashion-mnist"``), else digits.

    ``n_train``/``n_test`` take random subsets drawn from ``generator`` (a CPU
    ``torch.Generator``, which advances) or from a fresh generator seeded with ``seed``. With
    ``name="auto"`` the returned dataset's ``name`` tells which one was used, so a study can
    say so in its report.

    >>> ds = image_classification("digits", n_train=100, n_test=50, seed=0)
    >>> ds.name, ds.X_train.shape, ds.X_test.shape
    ('digits', torch.Size([100, 64]), torch.Size([50, 64]))
    """
    g = torch_generator(seed, generator)
    for label, n in (("n_train", n_train), ("n_test", n_test)):
        if n is not None:
            check_positive_int(label, n)
    if not isinstance(name, str):
        raise InvalidInput(f"name must be a string, got {name!r}")
    if name == "auto":
        name = "fashion-mnist" if fashion_mnist_available() else "digits"

    def pick(n_rows: int, n: int | None) -> Tensor | None:
        if n is None or n >= n_rows:
            return None
        return torch.randperm(n_rows, generator=g)[:n]

    if name == "fashion-mnist":
        # the subsets are drawn before the pixels are converted (a full conversion of the 70,000
        # images costs seconds and a quarter of a gigabyte)
        parts = _read_idx_parts(_fashion_mnist_folder())

        def part(split: str, n: int | None) -> tuple[Tensor, Tensor]:
            y = parts[f"y_{split}"]
            return _idx_split(parts[f"X_{split}"], y, pick(len(y), n))

        return Dataset(name, *part("train", n_train), *part("test", n_test), n_classes=10)
    if name != "digits":
        raise InvalidInput(f"unknown dataset {name!r}; use 'auto', 'fashion-mnist' or 'digits'")
    ds = digits(seed=seed, generator=generator)

    def subset(X: Tensor, y: Tensor, n: int | None) -> tuple[Tensor, Tensor]:
        idx = pick(X.shape[0], n)
        return (X, y) if idx is None else (X[idx], y[idx])

    Xtr, ytr = subset(ds.X_train, ds.y_train, n_train)
    Xte, yte = subset(ds.X_test, ds.y_test, n_test)
    return Dataset(ds.name, Xtr, ytr, Xte, yte, ds.n_classes)


def pool_images(X: Tensor, factor: int) -> Tensor:
    """Average-pool flattened square images: ``(N, s * s)`` -> ``(N, (s // factor) ** 2)``.

    Each output pixel is the mean of a ``factor x factor`` block (28x28 with ``factor=4`` gives
    7x7 = 49 inputs). ``factor=1`` returns ``X`` unchanged. Raises :class:`InvalidInput` when the
    rows are not square images or ``s`` is not a multiple of ``factor``.
    """
    factor = check_positive_int("factor", factor)
    if not isinstance(X, Tensor) or X.ndim != 2:
        raise InvalidInput(
            f"X must be a tensor of shape (N, side * side), got {getattr(X, 'shape', X)}"
        )
    check_real_tensor("X", X)
    if not X.is_floating_point():
        raise InvalidInput(f"X must be floating point to average, got {X.dtype}; call X.float()")
    side = int(round(X.shape[1] ** 0.5))
    if side * side != X.shape[1]:
        raise InvalidInput(f"rows of X are not square images: {X.shape[1]} is not a square")
    if side % factor:
        raise InvalidInput(f"image side {side} is not a multiple of the pooling factor {factor}")
    if factor == 1:
        return X
    f = factor
    out = X.reshape(X.shape[0], side // f, f, side // f, f).mean(dim=(2, 4))
    return out.reshape(X.shape[0], -1)


def split(
    X: Tensor,
    y: Tensor,
    *,
    test_fraction: float = 0.25,
    seed: int = 0,
    generator: torch.Generator | None = None,
    name: str = "data",
    n_classes: int | None = None,
) -> Dataset:
    """Shuffle and split into train and test parts (a ``test_fraction`` of the rows, rounded).

    The permutation is drawn from ``generator`` (a CPU ``torch.Generator``, which advances) or
    from a fresh generator seeded with ``seed``.

    >>> import torch
    >>> ds = split(torch.arange(10.0)[:, None], torch.arange(10), test_fraction=0.3, seed=0)
    >>> ds.X_train.shape, ds.X_test.shape
    (torch.Size([7, 1]), torch.Size([3, 1]))
    """
    for label, t in (("X", X), ("y", y)):
        if not isinstance(t, Tensor) or t.ndim == 0:
            raise InvalidInput(f"{label} must be a tensor with a batch dimension, got {t!r:.80}")
        check_real_tensor(label, t)
    if X.shape[0] != y.shape[0]:
        raise InvalidInput(f"X has {X.shape[0]} rows but y has {y.shape[0]}")
    test_fraction = check_number("test_fraction", test_fraction)
    g = torch_generator(seed, generator)
    if not 0.0 < test_fraction < 1.0:
        raise InvalidInput(f"test_fraction must be in (0, 1), got {test_fraction}")
    n = X.shape[0]
    n_test = int(round(n * test_fraction))
    if n_test < 1 or n - n_test < 1:
        raise InvalidInput(f"cannot split {n} examples with test_fraction={test_fraction}")
    perm = torch.randperm(n, generator=g)
    te, tr = perm[:n_test], perm[n_test:]
    return Dataset(name, X[tr], y[tr], X[te], y[te], n_classes)


# The teacher of the permutation-saddles toy task (Brea et al. 2019; SymmetrySaddles.jl).
TEACHER_INCOMING = ((0.6, 0.5), (-0.5, 0.5), (-0.2, -0.6), (0.1, -0.6))


def teacher_student_grid(
    activation: str = "softplus",
    *,
    step: float = 0.25,
    extent: float = 5.0,
    dtype: torch.dtype = torch.float64,
) -> tuple[Tensor, Tensor, torch.nn.Sequential]:
    """The 2-D teacher-student toy task of the permutation-saddles paper.

    Inputs: the grid ``-extent:step:extent`` squared (1681 points for the defaults), shape ``(N, 2)``.
    Teacher: ``2 -> 4 -> 1`` without biases, incoming vectors ``TEACHER_INCOMING``, output
    weights all 1, the given activation. Returns ``(X, y, teacher)`` with ``y`` of shape ``(N, 1)``.
    """
    from .nets import make_activation

    step = check_number("step", step, minimum=0.0, strict_min=True)
    extent = check_number("extent", extent, minimum=0.0, strict_min=True)
    dtype = check_float_dtype(dtype)
    per_side = 2 * extent / step + 1
    if per_side**2 > MAX_GRID_POINTS:
        raise InvalidInput(
            f"step={step:g} over extent={extent:g} is about {per_side**2:.3g} grid points, more "
            f"than nngeom's limit of {MAX_GRID_POINTS:,}; use a larger step or smaller extent"
        )
    ticks = torch.arange(-extent, extent + step / 2, step, dtype=dtype)
    gx, gy = torch.meshgrid(ticks, ticks, indexing="ij")
    X = torch.stack([gx.reshape(-1), gy.reshape(-1)], dim=1)
    first = torch.nn.Linear(2, 4, bias=False, dtype=dtype)
    second = torch.nn.Linear(4, 1, bias=False, dtype=dtype)
    with torch.no_grad():
        first.weight.copy_(torch.tensor(TEACHER_INCOMING, dtype=dtype))
        second.weight.fill_(1.0)
    teacher = torch.nn.Sequential(first, make_activation(activation), second)
    with torch.no_grad():
        y = teacher(X)
    return X, y, teacher


def load_arrays(
    path: str | os.PathLike[str], require: tuple[str, ...] = ("X",)
) -> dict[str, Tensor]:
    """Read named arrays from a data file without executing code.

    ``.npy``: one array, named ``X``. ``.npz``: its arrays by name (``allow_pickle=False``).
    ``.pt``/``.pth``: a tensor (named ``X``) or a dict of tensors (``weights_only=True``).
    Raises :class:`DataError` if the file is missing, unreadable, or lacks a name in ``require``.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise DataError(f"path must be a file path, got {path!r}")
    path = Path(path)
    if not path.is_file():
        raise DataError(f"data file not found: {path}")
    arrays: dict[str, Tensor] = {}
    if path.suffix in (".npy", ".npz"):
        try:
            with path.open("rb") as fh:  # closed even when np.load fails half-way
                loaded = np.load(fh, allow_pickle=False)
                if isinstance(loaded, np.ndarray):
                    arrays = {"X": torch.from_numpy(np.ascontiguousarray(loaded))}
                else:
                    with loaded:
                        arrays = {k: torch.from_numpy(np.array(loaded[k])) for k in loaded.files}
        except Exception as exc:  # zipfile.BadZipFile, EOFError, TypeError (structured dtypes), ...
            raise DataError(f"{path} is not a plain numpy file ({exc})") from exc
    elif path.suffix in (".pt", ".pth"):
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise DataError(f"{path} is not a tensor file nngeom can read safely ({exc})") from exc
        if isinstance(obj, Tensor):
            arrays = {"X": obj}
        elif isinstance(obj, dict):
            arrays = {k: v for k, v in obj.items() if isinstance(k, str) and isinstance(v, Tensor)}
    else:
        raise DataError(
            f"{path}: unsupported data file type {path.suffix!r}; use .npy, .npz or .pt"
        )
    missing = [k for k in require if k not in arrays]
    if missing:
        raise DataError(
            f"{path} must hold {' and '.join(repr(k) for k in require)} "
            f"(found {sorted(arrays) or 'nothing usable'})"
        )
    return arrays


def load_inputs(path: str | os.PathLike[str]) -> Tensor:
    """Inputs ``X`` of shape ``(N, d)`` (floating point; images flattened) from a data file."""
    X = load_arrays(path)["X"]
    if X.is_complex():
        raise DataError(f"{path}: X is complex ({X.dtype}); nngeom needs real inputs")
    if X.dtype == torch.bool:
        X = X.to(torch.uint8)
    if X.ndim <= 1:
        raise DataError(f"{path}: X must have shape (N, d), got {tuple(X.shape)}")
    if X.ndim > 2:
        X = X.reshape(X.shape[0], -1)
    return X if X.is_floating_point() else X.double()
