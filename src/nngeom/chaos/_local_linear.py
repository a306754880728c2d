"""Local linear prediction (Farmer & Sidorowich 1987): an affine least-squares fit on the nearest
training neighbours of each query."""

from __future__ import annotations

import math

import numpy as np

from .._checks import check_positive_int
from .._errors import InvalidInput
from ._estimators import ChaosRegressor, Standardizer, check_ridge
from ._validate import MAX_ENTRIES

__all__ = ["LocalLinear"]

# Queries per block of LocalLinear.predict (each holds k x (lags + 1) numbers, twice).
CHUNK_SIZE = 4096


class LocalLinear(ChaosRegressor):
    """Local linear prediction (Farmer & Sidorowich 1987): for each query, the affine least-squares
    fit ``y ~ w0 + w . (x - q)`` on its ``k`` nearest training rows (Euclidean, standardised
    inputs), ridge ``ridge`` on the slopes; the prediction is ``w0``.

    Fitted attributes: ``tree_`` (a ``scipy.spatial.cKDTree`` of the standardised training rows),
    ``train_targets_`` (their targets), ``scaling_``, ``n_features_in_``.

    >>> from nngeom import chaos
    >>> X, y = chaos.embed(chaos.logistic_map(300, x0=0.3), lags=1, delay=1, horizon=1)
    >>> model = chaos.LocalLinear(k=5).fit(X[:250], y[:250])
    >>> bool(chaos.nrmse(y[250:], model.predict(X[250:])) < 0.05)
    True
    """

    def __init__(self, k: int = 10, ridge: float = 1e-6) -> None:
        self.k = k
        self.ridge = ridge

    def _fit(self, X: np.ndarray, y: np.ndarray) -> None:
        from scipy.spatial import cKDTree

        k = check_positive_int("k", self.k, maximum=MAX_ENTRIES)
        check_ridge(self.ridge)
        if X.shape[0] < k:
            raise InvalidInput(
                f"LocalLinear(k={k}) needs at least k training rows, got n_samples={X.shape[0]}"
            )
        scaling = Standardizer(X, y)
        self.scaling_, self.train_targets_ = scaling, y
        self.tree_ = cKDTree(scaling.x(X))

    def predict(self, X: object, chunk_size: int = CHUNK_SIZE) -> np.ndarray:  # type: ignore[override]
        """Predictions ``(N,)`` for rows ``X (N, lags)``, ``chunk_size`` queries at a time."""
        chunk_size = check_positive_int("chunk_size", chunk_size)
        rows = self._checked_rows(X)
        with np.errstate(over="ignore", invalid="ignore"):
            return self._refuse_overflow(self._local_fits(rows, chunk_size))

    def _predict_rows(self, X: np.ndarray) -> np.ndarray:
        return self._local_fits(X, CHUNK_SIZE)

    def _local_fits(self, X: np.ndarray, chunk_size: int) -> np.ndarray:
        """``w0`` of each query's neighbourhood fit, ``(N,)``; ``inf`` where the distances
        overflow (no neighbours)."""
        k = check_positive_int("k", self.k, maximum=MAX_ENTRIES)
        ridge = check_ridge(self.ridge)
        chunk = max(1, min(chunk_size, MAX_ENTRIES // max(1, k * (X.shape[1] + 1) * 2)))
        Q = self.scaling_.x(X)
        Z = np.asarray(self.tree_.data)
        n_train = Z.shape[0]
        out = np.empty(Q.shape[0])
        d = Q.shape[1]
        for lo in range(0, Q.shape[0], chunk):
            q = Q[lo : lo + chunk]
            _, idx = self.tree_.query(q, k=k)
            idx = idx.reshape(q.shape[0], k)
            # a query whose distances overflow gets no neighbours (index n): its prediction is inf
            lost = (idx >= n_train).any(axis=1)
            idx = np.minimum(idx, n_train - 1)
            A = np.concatenate([np.ones((q.shape[0], k, 1)), Z[idx] - q[:, None, :]], axis=2)
            t = self.train_targets_[idx]
            if ridge > 0:
                pen = np.zeros((d, d + 1))
                pen[:, 1:] = math.sqrt(ridge) * np.eye(d)
                A = np.concatenate([A, np.broadcast_to(pen, (q.shape[0], d, d + 1))], axis=1)
                t = np.concatenate([t, np.zeros((q.shape[0], d))], axis=1)
            w = np.linalg.pinv(A) @ t[:, :, None]
            out[lo : lo + chunk] = np.where(lost, np.inf, w[:, 0, 0])
        return out
