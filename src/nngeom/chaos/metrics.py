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
    try:
        a = np.asarray(y_true, dtype=np.float64)
        b = np.asarray(y_pred, dtype=np.float64)
    except (TypeError, ValueError):
        raise InvalidInput("y_true and y_pred must be arrays of numbers") from None
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
    s = float(np.std(a)) if scale is None else float(scale)
    if not (s > 0 and math.isfinite(s)):
        raise InvalidInput(
            f"the normalising std is {s}: y_true is constant; pass scale= (e.g. the series std)"
        )
    return s


def nrmse(y_true: object, y_pred: object, scale: float | None = None) -> float:
    """``sqrt(mean((y_pred - y_true)^2)) / scale`` over all entries; ``scale`` defaults to
    ``std(y_true)`` (population std). NaN/inf predictions give ``inf``."""
    a, b = _pair(y_true, y_pred)
    s = _scale(a, scale)
    if not np.isfinite(b).all():
        return math.inf
    return float(np.sqrt(np.mean((b - a) ** 2)) / s)


def nrmse_curve(y_true: object, y_pred: object, scale: float | None = None) -> np.ndarray:
    """NRMSE per forecast step: inputs ``(S, K)`` -> ``(K,)``; ``scale`` defaults to ``std(y_true)``
    over all entries. Non-finite predictions make their step ``inf``."""
    a, b = _pair(y_true, y_pred)
    if a.ndim != 2:
        raise InvalidInput(f"expected forecasts of shape (starts, steps), got {a.shape}")
    s = _scale(a, scale)
    with np.errstate(over="ignore", invalid="ignore"):
        err = np.sqrt(np.mean((b - a) ** 2, axis=0)) / s
    err[~np.isfinite(err)] = np.inf
    return err


def log10_nrmse_curve(y_true: object, y_pred: object, scale: float | None = None) -> np.ndarray:
    """``log10`` of :func:`nrmse_curve` (``(K,)``): Lapedes & Farber's error vs prediction time."""
    with np.errstate(divide="ignore"):
        return np.log10(nrmse_curve(y_true, y_pred, scale))


def nrmse_at(y_true: object, y_pred: object, step: int = 84, scale: float | None = None) -> float:
    """NRMSE of the free-running forecast at ``step`` (1-based: step 84 is column 83)."""
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
    """
    a, b = _pair(y_true, y_pred)
    if a.ndim == 1:
        a, b = a[None, :], b[None, :]
    s = _scale(a, scale)
    with np.errstate(invalid="ignore"):
        bad = ~(np.abs(b - a) / s <= threshold)
    k = np.where(bad.any(axis=1), bad.argmax(axis=1), a.shape[1]).astype(np.float64)
    t = k * float(dt)
    return t * float(lyapunov_exponent) if lyapunov_exponent is not None else t


def smape(y_true: object, y_pred: object) -> float:
    """Symmetric MAPE in percent: ``100 mean(2 |p - t| / (|t| + |p|))`` (0/0 terms count as 0)."""
    a, b = _pair(y_true, y_pred)
    den = np.abs(a) + np.abs(b)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(den > 0, 2.0 * np.abs(b - a) / den, 0.0)
    return float(100.0 * np.mean(terms))


def mean_spread(values: object) -> dict[str, float]:
    """Mean, sample std, min, max and count of a list of values (e.g. an error over seeds)."""
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    if v.size == 0:
        raise InvalidInput("mean_spread needs at least one value")
    return {
        "mean": float(v.mean()),
        "std": float(v.std(ddof=1)) if v.size > 1 else 0.0,
        "min": float(v.min()),
        "max": float(v.max()),
        "n": int(v.size),
    }
