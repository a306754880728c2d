"""Delay embedding with no leakage, and train/test splits that are contiguous in time.

A row of the embedding at time ``t`` has inputs ``x(t), x(t - delay), ..., x(t - (lags-1) delay)``
and the target ``x(t + horizon)``: every target index is later than every input index of its row
(``horizon >= 1``). :func:`split` cuts the series into a training segment followed by a test segment
and embeds each separately, so every index a training row touches precedes every index a test
row touches.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._checks import as_real_array, check_int
from .._errors import InvalidInput
from ._validate import MAX_ENTRIES, check_entries

__all__ = ["embed", "embed_indices", "as_series", "split", "Split"]


def as_series(series: object, name: str = "series") -> np.ndarray:
    """Validate a 1-D real series; returns a float64 copy of shape ``(n,)``.

    >>> from nngeom import chaos
    >>> chaos.as_series([1, 2, 3])
    array([1., 2., 3.])
    """
    arr = as_real_array(series, name)
    if arr.ndim == 2 and 1 in arr.shape:
        arr = arr.reshape(-1)
    if arr.ndim != 1:
        raise InvalidInput(
            f"{name} must be 1-D (one scalar per time step), got shape {arr.shape}; "
            "pick one column (e.g. series[:, 0])"
        )
    if arr.size == 0:
        raise InvalidInput(f"{name} is empty")
    bad = ~np.isfinite(arr)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise InvalidInput(
            f"{name} has {int(bad.sum())} NaN/inf values (first at index {first}); "
            "fill or drop them before embedding"
        )
    return arr.copy()


def _check_int(v: object, name: str, lo: int) -> int:
    return check_int(name, v, minimum=lo, maximum=MAX_ENTRIES)


def embed_indices(
    n: int, lags: int = 4, delay: int = 6, horizon: int = 6
) -> tuple[np.ndarray, np.ndarray]:
    """Indices of a delay embedding of a series of length ``n``.

    Returns ``(inputs, targets)``: int64 arrays of shapes ``(N, lags)`` and ``(N,)`` with
    ``inputs[r, j] = t_r - j * delay`` and ``targets[r] = t_r + horizon`` for
    ``t_r = (lags - 1) delay + r``, ``N = n - (lags - 1) delay - horizon``.

    >>> from nngeom import chaos
    >>> rows, targets = chaos.embed_indices(10, lags=2, delay=3, horizon=1)
    >>> rows[:2], targets[:2]
    (array([[3, 0],
           [4, 1]]), array([4, 5]))
    """
    n = _check_int(n, "n", 1)
    lags = _check_int(lags, "lags", 1)
    delay = _check_int(delay, "delay", 1)
    horizon = _check_int(horizon, "horizon", 1)
    span = (lags - 1) * delay + horizon
    if n <= span:
        raise InvalidInput(
            f"the series is too short for this embedding: {n} points, but lags={lags}, delay={delay}, "
            f"horizon={horizon} need more than {span}; use a longer series or a smaller embedding"
        )
    check_entries((n - span) * (lags + 1), "the embedding")
    t = np.arange((lags - 1) * delay, n - horizon, dtype=np.int64)
    inputs = t[:, None] - delay * np.arange(lags, dtype=np.int64)[None, :]
    return inputs, t + horizon


def embed(
    series: object, lags: int = 4, delay: int = 6, horizon: int = 6
) -> tuple[np.ndarray, np.ndarray]:
    """Delay-embed a 1-D series.

    Args:
        series: shape ``(n,)``.
        lags, delay: inputs ``x(t), x(t - delay), ..., x(t - (lags - 1) delay)``.
        horizon: the target is ``x(t + horizon)`` (``horizon >= 1``).

    Returns:
        ``(X, y)`` of shapes ``(N, lags)`` and ``(N,)``, rows in time order,
        ``N = n - (lags - 1) delay - horizon``.

    >>> import numpy as np
    >>> from nngeom import chaos
    >>> X, y = chaos.embed(np.arange(10.0), lags=2, delay=3, horizon=1)
    >>> X[:2], y[:2]
    (array([[3., 0.],
           [4., 1.]]), array([4., 5.]))
    """
    x = as_series(series)
    inputs, targets = embed_indices(x.size, lags, delay, horizon)
    return x[inputs], x[targets]


@dataclass(frozen=True)
class Split:
    """A contiguous train/test split of an embedded series.

    ``X_train (N_train, lags)``, ``y_train (N_train,)``, ``X_test (N_test, lags)``,
    ``y_test (N_test,)``; ``train_index``/``test_index`` are ``(inputs, targets)`` index arrays into
    the original series; ``boundary`` is the first series index of the test segment.

    >>> import numpy as np
    >>> from nngeom import chaos
    >>> s = chaos.split(np.arange(50.0), n_train=10, lags=2, delay=1, horizon=1)
    >>> type(s).__name__, s.y_train.shape
    ('Split', (10,))
    """

    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    train_index: tuple[np.ndarray, np.ndarray]
    test_index: tuple[np.ndarray, np.ndarray]
    boundary: int


def split(
    series: object,
    n_train: int,
    n_test: int | None = None,
    lags: int = 4,
    delay: int = 6,
    horizon: int = 6,
    start: int = 0,
) -> Split:
    """Embed ``n_train`` training rows, then ``n_test`` test rows strictly later in time.

    The training segment is ``series[start : start + span + n_train]`` (``span = (lags-1) delay +
    horizon``); the test segment starts right after it, so no index is shared. ``n_test=None``
    uses the rest of the series.

    >>> import numpy as np
    >>> from nngeom import chaos
    >>> s = chaos.split(np.arange(100.0), n_train=20, n_test=10, lags=2, delay=3, horizon=1)
    >>> s.X_train.shape, s.X_test.shape, s.boundary
    ((20, 2), (10, 2), 24)
    """
    x = as_series(series)
    n_train = _check_int(n_train, "n_train", 1)
    start = _check_int(start, "start", 0)
    lags = _check_int(lags, "lags", 1)
    delay = _check_int(delay, "delay", 1)
    horizon = _check_int(horizon, "horizon", 1)
    span = (lags - 1) * delay + horizon
    boundary = start + span + n_train
    if n_test is None:
        n_test = x.size - boundary - span
    else:
        n_test = _check_int(n_test, "n_test", 1)
    need = boundary + span + n_test
    if n_test < 1 or need > x.size:
        raise InvalidInput(
            f"the series is too short: {n_train} training and {max(n_test, 1)} test rows with "
            f"lags={lags}, delay={delay}, horizon={horizon} need {need} points from index {start}, "
            f"it has {x.size}; use a longer series or fewer rows"
        )
    tr_in, tr_t = embed_indices(span + n_train, lags, delay, horizon)
    te_in, te_t = embed_indices(span + n_test, lags, delay, horizon)
    tr = (tr_in + start, tr_t + start)
    te = (te_in + boundary, te_t + boundary)
    return Split(x[tr[0]], x[tr[1]], x[te[0]], x[te[1]], tr, te, boundary)
