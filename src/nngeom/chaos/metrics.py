"""Forecast error metrics.

NRMSE convention (stated, because papers differ): ``nrmse = RMS(y_pred - y_true) / scale`` where
``scale`` is the population standard deviation (``ddof=0``) of ``y_true`` unless given; pass the
std of the whole series (``scale=series.std()``) for Lapedes & Farber's normalisation. For
free-running forecasts of shape ``(S, K)`` (S start points, K steps), :func:`nrmse_curve` gives the
NRMSE at every step over the S starts (Jaeger & Haas: ``NRMSE_k = sqrt(mean_s err_sk^2) / scale``).
"""

from __future__ import annotations

import math

import numpy as np

from .._checks import as_real_array, check_int, check_number
from .._errors import InvalidInput

__all__ = [
    "nrmse",
    "nrmse_curve",
    "log10_nrmse_curve",
    "nrmse_at",
    "valid_prediction_time",
    "smape",
    "mean_spread",
]


def _pair(y_true: object, y_pred: object) -> tuple[np.ndarray, np.ndarray]:
    a = as_real_array(y_true, "y_true")
    b = as_real_array(y_pred, "y_pred")
    if a.shape != b.shape:
        raise InvalidInput(
            f"y_true has shape {a.shape} but y_pred has shape {b.shape}; they must match"
        )
    if a.size == 0:
        raise InvalidInput("y_true is empty")
    if not np.isfinite(a).all():
        raise InvalidInput("y_true contains NaN or inf")
    return a, b


def _scale(a: np.ndarray, scale: float | None, axis: int | None = None) -> float:
    if scale is None:
        m = float(np.max(np.abs(a)))
        s = m * float(np.std(a / m)) if m > 0 else 0.0
    else:
        s = check_number("scale", scale, minimum=0.0, strict_min=True)
    if not (s > 0 and math.isfinite(s)):
        raise InvalidInput(
            f"the normalising std is {s}: y_true is constant; pass scale= (e.g. the series std)"
        )
    return s


def nrmse(y_true: object, y_pred: object, scale: float | None = None) -> float:
    """``sqrt(mean((y_pred - y_true)^2)) / scale`` over all entries; ``scale`` defaults to
    ``std(y_true)`` (population std). NaN/inf predictions give ``inf``.

    >>> from nngeom import chaos
    >>> chaos.nrmse([1.0, 2.0, 3.0], [1.0, 2.0, 4.0], scale=1.0)
    0.5773502691896257
    """
    a, b = _pair(y_true, y_pred)
    s = _scale(a, scale)
    if not np.isfinite(b).all():
        return math.inf
    return float(_rms(b, a, s, None))


def _rms(b: np.ndarray, a: np.ndarray, s: float, axis: int | None) -> np.ndarray:
    """``sqrt(mean(((b - a) / s)^2))`` without spurious overflow (scaled by the largest error).

    A value beyond float64's range (an error above about 1e308 times ``s``) is ``inf``: the
    forecast diverged, as for non-finite predictions."""
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        d = (b / s - a / s) if s > 1 else (b - a) / s
        m = np.max(np.abs(d), axis=axis, keepdims=True)
        safe = np.where((m > 0) & np.isfinite(m), m, 1.0)
        r = np.sqrt(np.mean((d / safe) ** 2, axis=axis, keepdims=True)) * safe
        r = np.where(np.isfinite(m), r, np.inf)
    return r.reshape(()) if axis is None else np.squeeze(r, axis=axis)


def nrmse_curve(y_true: object, y_pred: object, scale: float | None = None) -> np.ndarray:
    """NRMSE per forecast step: inputs ``(S, K)`` -> ``(K,)``; ``scale`` defaults to ``std(y_true)``
    over all entries. Non-finite predictions make their step ``inf``.

    >>> import numpy as np
    >>> from nngeom import chaos
    >>> truth = np.array([[0.0, 1.0], [2.0, 3.0]])
    >>> chaos.nrmse_curve(truth, truth + [[0.0, 1.0], [0.0, 1.0]], scale=1.0)
    array([0., 1.])
    """
    a, b = _pair(y_true, y_pred)
    if a.ndim != 2:
        raise InvalidInput(f"expected forecasts of shape (starts, steps), got {a.shape}")
    s = _scale(a, scale)
    err = np.asarray(_rms(b, a, s, 0), dtype=np.float64)
    err[~np.isfinite(err)] = np.inf
    return err


def log10_nrmse_curve(y_true: object, y_pred: object, scale: float | None = None) -> np.ndarray:
    """``log10`` of :func:`nrmse_curve` (``(K,)``): Lapedes & Farber's error vs prediction time.

    >>> import numpy as np
    >>> from nngeom import chaos
    >>> truth = np.array([[0.0, 1.0], [2.0, 3.0]])
    >>> chaos.log10_nrmse_curve(truth, truth + [[0.1, 1.0], [0.1, 1.0]], scale=1.0)
    array([-1.,  0.])
    """
    with np.errstate(divide="ignore"):
        return np.log10(nrmse_curve(y_true, y_pred, scale))


def nrmse_at(y_true: object, y_pred: object, step: int = 84, scale: float | None = None) -> float:
    """NRMSE of the free-running forecast at ``step`` (1-based: step 84 is column 83).

    >>> import numpy as np
    >>> from nngeom import chaos
    >>> truth = np.zeros((2, 3))
    >>> chaos.nrmse_at(truth, truth + [0.0, 0.5, 1.0], step=2, scale=1.0)
    0.5
    """
    step = check_int("step", step)
    curve = nrmse_curve(y_true, y_pred, scale)
    if not (1 <= step <= curve.size):
        raise InvalidInput(f"step must be in 1..{curve.size} (the forecast length), got {step}")
    return float(curve[step - 1])


def valid_prediction_time(
    y_true: object,
    y_pred: object,
    dt: float = 1.0,
    lyapunov_exponent: float | None = None,
    threshold: float = 0.4,
    scale: float | None = None,
) -> np.ndarray:
    """Time until each free-running forecast's normalised error first exceeds ``threshold``.

    Inputs ``(S, K)``; returns ``(S,)``: ``dt * (first step with |err| / scale > threshold)``
    (``K dt`` if never), multiplied by ``lyapunov_exponent`` when given, i.e. in Lyapunov times.

    >>> import numpy as np
    >>> from nngeom import chaos
    >>> truth = np.zeros((1, 5))
    >>> chaos.valid_prediction_time(truth, truth + [[0.0, 0.1, 0.2, 0.5, 1.0]], scale=1.0)
    array([3.])
    """
    dt = check_number("dt", dt, minimum=0.0, strict_min=True)
    threshold = check_number("threshold", threshold, minimum=0.0, strict_min=True)
    if lyapunov_exponent is not None:
        lyapunov_exponent = check_number(
            "lyapunov_exponent", lyapunov_exponent, minimum=0.0, strict_min=True
        )
    a, b = _pair(y_true, y_pred)
    if a.ndim == 1:
        a, b = a[None, :], b[None, :]
    if a.ndim != 2:
        raise InvalidInput(
            f"expected forecasts of shape (starts, steps) or (steps,), got {a.shape}"
        )
    s = _scale(a, scale)
    # an error beyond float64 (huge finite values of opposite signs) is past any threshold
    with np.errstate(over="ignore", invalid="ignore"):
        bad = ~(np.abs(b - a) / s <= threshold)
    k = np.where(bad.any(axis=1), bad.argmax(axis=1), a.shape[1]).astype(np.float64)
    with np.errstate(over="ignore"):
        t = k * dt
        if lyapunov_exponent is not None:
            t = t * lyapunov_exponent
    if not np.isfinite(t).all():
        lam = "" if lyapunov_exponent is None else f" x lyapunov_exponent={lyapunov_exponent:g}"
        raise InvalidInput(
            f"the valid prediction times ({int(k.max())} steps x dt={dt:g}{lam}) exceed "
            "float64's range; pass dt and lyapunov_exponent in sensible units"
        )
    return t


def smape(y_true: object, y_pred: object) -> float:
    """Symmetric MAPE in percent: ``100 mean(2 |p - t| / (|t| + |p|))`` (0/0 terms count as 0).

    >>> from nngeom import chaos
    >>> chaos.smape([1.0, 2.0], [1.0, 2.0]), round(chaos.smape([1.0], [3.0]), 2)
    (0.0, 100.0)
    """
    a, b = _pair(y_true, y_pred)
    if not np.isfinite(b).all():
        raise InvalidInput("y_pred contains NaN or inf: sMAPE is undefined for it")
    # halves: |t|/2 + |p|/2 and (p - t)/2 cannot overflow for finite inputs
    den = np.abs(a) / 2 + np.abs(b) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(den > 0, 2.0 * np.abs(b / 2 - a / 2) / den, 0.0)
    return float(100.0 * np.mean(terms))


def mean_spread(values: object) -> dict[str, float]:
    """Mean, sample std, min, max and count of a list of values (e.g. an error over seeds).

    >>> from nngeom import chaos
    >>> chaos.mean_spread([1.0, 2.0, 3.0])
    {'mean': 2.0, 'std': 1.0, 'min': 1.0, 'max': 3.0, 'n': 3}
    """
    v = as_real_array(values, "values").reshape(-1)
    if v.size == 0:
        raise InvalidInput("mean_spread needs at least one value")
    if np.isnan(v).any():
        raise InvalidInput("values contain NaN; drop them (or count them) first")
    if not np.isfinite(v).all():  # inf (a diverged run): mean and spread are infinite too
        pos, neg = bool(np.isposinf(v).any()), bool(np.isneginf(v).any())
        if pos and neg:
            raise InvalidInput("values contain both +inf and -inf: their mean is undefined")
        mean, std = (math.inf if pos else -math.inf), math.inf
    else:
        m = float(np.max(np.abs(v)))
        m = m if m > 0 else 1.0
        mean = m * float(np.mean(v / m))
        std = m * float(np.std(v / m, ddof=1)) if v.size > 1 else 0.0
    return {
        "mean": mean,
        "std": std if v.size > 1 else 0.0,
        "min": float(v.min()),
        "max": float(v.max()),
        "n": int(v.size),
    }
