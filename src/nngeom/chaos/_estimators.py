"""What the chaos regressors share: scikit-learn's estimator contract and nngeom's input checks.

:class:`ChaosRegressor` is the base of every regressor on a delay embedding (``fit(X, y) ->
self``, ``predict(X) -> y``, ``X (N, lags)``, ``y (N,)``). It is a scikit-learn estimator
(``RegressorMixin``, ``BaseEstimator``): the constructor only stores its parameters, which are
checked when ``fit`` runs; what ``fit`` learns ends in ``_`` (``n_features_in_`` always);
``clone``, ``get_params`` / ``set_params``, pipelines and cross-validation work. Subclasses
implement ``_fit(X, y)`` and ``_predict_rows(X)`` on checked float64 arrays.

Errors are nngeom's (:class:`~nngeom.InvalidInput`, a ``ValueError``); predicting before ``fit``
raises :class:`NotFittedError`, which is both an ``InvalidInput`` and scikit-learn's
``NotFittedError``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.exceptions import NotFittedError as _SklearnNotFitted

from .._checks import as_real_array, check_number
from .._errors import InvalidInput

__all__ = ["ChaosRegressor", "NotFittedError", "Standardizer", "ridge_solve", "check_rows"]


class NotFittedError(InvalidInput, _SklearnNotFitted):
    """A predictor was asked to predict or forecast before it was fitted."""


def check_rows(X: object, name: str = "X") -> np.ndarray:
    """``X`` as a float64 ``(N, d)`` array with ``N, d >= 1`` and finite entries."""
    if hasattr(X, "toarray") and hasattr(X, "nnz"):  # scipy.sparse
        raise InvalidInput(
            f"{name} is a sparse matrix: sparse input is not supported; pass {name}.toarray()"
        )
    Xa = as_real_array(X, name)
    if Xa.ndim != 2 or Xa.shape[0] == 0 or Xa.shape[1] == 0:
        count, hint = "", ""
        if Xa.ndim == 2:
            what = "sample(s)" if Xa.shape[0] == 0 else "feature(s)"
            count = f"{name} has 0 {what} (shape={Xa.shape}) while a minimum of 1 is required: "
        elif Xa.ndim == 1:
            hint = (
                f"; Reshape your data: {name}.reshape(-1, 1) for one feature, "
                f"{name}.reshape(1, -1) for one row"
            )
        raise InvalidInput(
            f"{count}{name} must have shape (N, lags) with N, lags >= 1, got {Xa.shape}{hint}"
        )
    if not np.isfinite(Xa).all():
        raise InvalidInput(f"{name} contains NaN or inf; clean the series first")
    return Xa


def check_targets(y: object, n_rows: int, estimator: str) -> np.ndarray:
    """``y`` as a finite float64 ``(N,)`` array for ``N = n_rows`` (a ``(N, 1)`` column too)."""
    if y is None:
        raise InvalidInput(
            f"{estimator} requires y to be passed, but the target y is None: fit needs the "
            "targets y, one value per row of X (for a series, embed(series, ...) builds (X, y))"
        )
    ya = as_real_array(y, "y")
    if ya.ndim > 2 or (ya.ndim == 2 and ya.shape[1] != 1):
        raise InvalidInput(f"y must have shape (N,) (one target per row), got {ya.shape}")
    ya = ya.reshape(-1)
    if ya.shape[0] != n_rows:
        raise InvalidInput(f"X has {n_rows} rows but y has {ya.shape[0]} values")
    if not np.isfinite(ya).all():
        raise InvalidInput("y contains NaN or inf; clean the series first")
    return ya


def check_ridge(value: object) -> float:
    """A ridge penalty: a finite number ``>= 0``."""
    return check_number("ridge", value, minimum=0.0)


def _mean_std(A: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column means and population stds without overflow (columns scaled by their largest |value|)."""
    m = np.max(np.abs(A), axis=0)
    m = np.where(m > 0, m, 1.0)
    Z = A / m
    return Z.mean(axis=0) * m, Z.std(axis=0) * m


class Standardizer:
    """Column means ``mx`` and stds ``sx`` of the training inputs ``X (N, d)`` (a zero std
    counts as 1), and the mean ``my`` and std ``sy`` of the targets ``y (N,)`` (0 and 1 without
    targets)."""

    def __init__(self, X: np.ndarray, y: np.ndarray | None = None) -> None:
        self.mx, sx = _mean_std(X)
        self.sx = np.where(sx > 0, sx, 1.0)
        my, sy = _mean_std(y[:, None]) if y is not None else (np.zeros(1), np.ones(1))
        self.my = float(my[0])
        self.sy = float(sy[0]) if sy[0] > 0 else 1.0

    @classmethod
    def of(cls, mx: np.ndarray, sx: np.ndarray, my: float, sy: float) -> Standardizer:
        """A scaling with the given means and stds (``mx, sx``: ``(d,)``)."""
        s = cls.__new__(cls)
        s.mx, s.sx, s.my, s.sy = mx, sx, my, sy
        return s

    def x(self, X: np.ndarray) -> np.ndarray:
        """``(X - mx) / sx``, shape of ``X``."""
        return (X - self.mx) / self.sx


def finite_coef(coef: np.ndarray, what: str) -> np.ndarray:
    """Refuse non-finite fitted coefficients (an overflowed or degenerate least-squares problem)."""
    if not np.isfinite(coef).all():
        raise InvalidInput(
            f"fitting {what} gave non-finite coefficients (the least-squares problem overflowed "
            "or is degenerate); rescale the data or pass a positive ridge"
        )
    return coef


def ridge_solve(
    A: np.ndarray, y: np.ndarray, ridge: float, penalize_first: bool = False
) -> np.ndarray:
    """``argmin |A w - y|^2 + ridge |w[1:]|^2`` for ``A (N, P)``, ``y (N,)``: ``w (P,)`` (the
    first column, the constant, is not penalised unless ``penalize_first``)."""
    try:
        if ridge <= 0:
            w, *_ = np.linalg.lstsq(A, y, rcond=None)
            return w
        P = np.eye(A.shape[1]) * ridge
        if not penalize_first:
            P[0, 0] = 0.0
        with np.errstate(over="ignore", invalid="ignore"):
            return np.linalg.solve(A.T @ A + P, A.T @ y)
    except np.linalg.LinAlgError as exc:
        raise InvalidInput(
            f"the least-squares problem cannot be solved ({exc}); pass a larger ridge or "
            "rescale the data"
        ) from None


def require_fitted(obj: Any, attr: str, how: str = "fit(X, y)") -> None:
    """Raise :class:`NotFittedError` unless ``obj`` has the fitted attribute ``attr``."""
    if getattr(obj, attr, None) is None:
        raise NotFittedError(f"{type(obj).__name__} is not fitted yet; call {how} first")


def raw_predict(regressor: Any, X: np.ndarray) -> np.ndarray:
    """A regressor's prediction with overflowing rows as ``inf`` (a diverged forecast)."""
    if isinstance(regressor, ChaosRegressor):
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            return np.asarray(regressor._predict(X), dtype=np.float64)
    return np.asarray(regressor.predict(X), dtype=np.float64)


class ChaosRegressor(RegressorMixin, BaseEstimator):
    """Base of the chaos regressors (see the module docstring).

    Subclasses define ``__init__`` (storing each parameter under its own name),
    ``_fit(X, y)`` (checked ``X (N, d)``, ``y (N,)``; parameters checked there) and
    ``_predict_rows(X) -> (N,)``.
    """

    def fit(self, X: object, y: object) -> ChaosRegressor:
        """Fit on rows ``X (N, lags)`` and targets ``y (N,)``; returns ``self``."""
        Xa = check_rows(X)
        ya = check_targets(y, Xa.shape[0], type(self).__name__)
        self._fit(Xa, ya)
        self.n_features_in_ = Xa.shape[1]
        return self

    def predict(self, X: object) -> np.ndarray:
        """Predictions ``(N,)`` for rows ``X (N, lags)``; a non-finite prediction from finite
        inputs (an overflow far outside the training range) is refused."""
        with np.errstate(over="ignore", invalid="ignore"):
            return self._refuse_overflow(self._predict(X))

    def _refuse_overflow(self, pred: np.ndarray) -> np.ndarray:
        if not np.isfinite(pred).all():
            bad = int((~np.isfinite(pred)).sum())
            raise InvalidInput(
                f"{type(self).__name__} predicted {bad} non-finite value(s) from finite inputs "
                "(overflow: the inputs are far outside the training range); predict on inputs "
                "like the training data"
            )
        return pred

    def _predict(self, X: object) -> np.ndarray:
        """The prediction, overflowing rows as ``inf`` (for iterated forecasts)."""
        return self._predict_rows(self._checked_rows(X))

    def _checked_rows(self, X: object) -> np.ndarray:
        """``X`` checked for prediction: the estimator is fitted, ``X`` has its columns."""
        require_fitted(self, "n_features_in_")
        Xa = check_rows(X)
        if Xa.shape[1] != self.n_features_in_:
            raise InvalidInput(
                f"X has {Xa.shape[1]} features, but {type(self).__name__} is expecting "
                f"{self.n_features_in_} features as input (the columns it was fitted on)"
            )
        return Xa

    def _fit(self, X: np.ndarray, y: np.ndarray) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _predict_rows(self, X: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError
