"""Global predictors fitted by least squares on features of the delay vector: linear
(:class:`LinearAR`, also by the LMS rule), polynomial (:class:`Polynomial`) and next-generation
reservoir computing (:class:`NVAR`)."""

from __future__ import annotations

import itertools
import math

import numpy as np

from .._checks import check_int, check_number, check_positive_int
from .._errors import InvalidInput
from ._estimators import ChaosRegressor, Standardizer, check_ridge, finite_coef, ridge_solve
from ._validate import check_entries
from .systems import MAX_STEPS

__all__ = ["LinearAR", "Polynomial", "NVAR", "polynomial_features"]

# LMS: the normalised step divides by EPS + |x|^2 (EPS keeps an all-zero row finite).
LMS_EPS = 1e-12
# The highest polynomial degree (the number of monomials grows as C(lags + degree, degree)).
MAX_DEGREE = 10
# NVAR's features: the monomials of degree 0, 1 and 2.
NVAR_DEGREE = 2


class LinearAR(ChaosRegressor):
    """Linear autoregressive predictor ``y = w0 + w . x``.

    ``method="lstsq"``: least squares (optional ``ridge``). ``method="lms"``: the Widrow-Hoff rule,
    normalised (``w += mu e x / (eps + |x|^2)``), ``epochs`` passes over the rows in time order,
    starting from zero, on standardised inputs. A constant step leaves a misadjustment on data a
    linear model cannot fit exactly (chaotic series): the default small step (0.05, 100 passes)
    ends near the least-squares solution; large steps (0.5-1) end far from it.

    Fitted attributes: ``coef_`` (``[w0, w]`` on the standardised scale), ``scaling_``,
    ``n_features_in_``.

    >>> import numpy as np
    >>> from nngeom import chaos
    >>> X = np.arange(10.0)[:, None]
    >>> chaos.LinearAR().fit(X, 2 * X[:, 0] + 1).predict([[20.0]]).round(6)
    array([41.])
    """

    def __init__(
        self, method: str = "lstsq", ridge: float = 0.0, mu: float = 0.05, epochs: int = 100
    ) -> None:
        self.method = method
        self.ridge = ridge
        self.mu = mu
        self.epochs = epochs

    def _fit(self, X: np.ndarray, y: np.ndarray) -> None:
        if self.method not in ("lstsq", "lms"):
            raise InvalidInput(f"method must be 'lstsq' or 'lms', got {self.method!r}")
        ridge = check_ridge(self.ridge)
        epochs = check_positive_int("epochs", self.epochs, maximum=MAX_STEPS)
        mu = check_number("mu", self.mu)
        if not (0 < mu < 2):
            raise InvalidInput(f"LMS needs 0 < mu < 2 (normalised step), got mu={mu}")
        scaling = Standardizer(X, y)
        A = np.hstack([np.ones((X.shape[0], 1)), scaling.x(X)])
        t = (y - scaling.my) / scaling.sy
        if self.method == "lstsq":
            coef = finite_coef(ridge_solve(A, t, ridge), "LinearAR")
        else:
            if epochs * A.shape[0] > MAX_STEPS:
                raise InvalidInput(
                    f"LMS with epochs={epochs} over {A.shape[0]} rows is "
                    f"{epochs * A.shape[0]:,} updates, more than nngeom's limit of "
                    f"{MAX_STEPS:,}; use fewer epochs or rows"
                )
            w = np.zeros(A.shape[1])
            rows = [np.ascontiguousarray(r) for r in A]
            norms = [float(r @ r) for r in rows]
            for _ in range(epochs):
                for r, nr, target in zip(rows, norms, t, strict=False):
                    e = target - float(r @ w)
                    w += (mu * e / (LMS_EPS + nr)) * r
            coef = finite_coef(w, "LinearAR (LMS)")
        self.scaling_, self.coef_ = scaling, coef

    def _predict_rows(self, X: np.ndarray) -> np.ndarray:
        s = self.scaling_
        return s.my + s.sy * (self.coef_[0] + s.x(X) @ self.coef_[1:])


def polynomial_features(Z: np.ndarray, degree: int) -> np.ndarray:
    """All monomials of the columns of ``Z (N, d)`` of total degree ``0..degree``:
    ``(N, C(d + degree, degree))``, the constant first, then by degree.

    >>> import numpy as np
    >>> polynomial_features(np.array([[2.0, 3.0]]), 2)
    array([[1., 2., 3., 4., 6., 9.]])
    """
    cols = [np.ones(Z.shape[0])]
    for deg in range(1, degree + 1):
        for combo in itertools.combinations_with_replacement(range(Z.shape[1]), deg):
            cols.append(np.prod(Z[:, combo], axis=1))
    return np.stack(cols, axis=1)


def _check_features(X: np.ndarray, degree: int) -> None:
    n_terms = math.comb(X.shape[1] + degree, degree)
    check_entries(n_terms * X.shape[0], f"the degree-{degree} polynomial features")


class Polynomial(ChaosRegressor):
    """Global polynomial predictor of total degree ``degree`` (Gabor-Volterra-Wiener), least squares
    on standardised inputs (optional ``ridge`` on the non-constant terms).

    Fitted attributes: ``coef_`` (one per monomial of :func:`polynomial_features`), ``scaling_``,
    ``n_features_in_``.

    >>> from nngeom import chaos
    >>> X, y = chaos.embed(chaos.logistic_map(300, x0=0.3), lags=1, delay=1, horizon=1)
    >>> model = chaos.Polynomial(degree=2).fit(X, y)
    >>> round(chaos.nrmse(y, model.predict(X)), 6)
    0.0
    """

    def __init__(self, degree: int = 3, ridge: float = 0.0) -> None:
        self.degree = degree
        self.ridge = ridge

    def _fit(self, X: np.ndarray, y: np.ndarray) -> None:
        degree = check_int("degree", self.degree, minimum=1, maximum=MAX_DEGREE)
        ridge = check_ridge(self.ridge)
        _check_features(X, degree)
        scaling = Standardizer(X, y)
        A = polynomial_features(scaling.x(X), degree)
        self.coef_ = finite_coef(ridge_solve(A, (y - scaling.my) / scaling.sy, ridge), "Polynomial")
        self.scaling_ = scaling

    def _predict_rows(self, X: np.ndarray) -> np.ndarray:
        degree = check_int("degree", self.degree, minimum=1, maximum=MAX_DEGREE)
        _check_features(X, degree)
        s = self.scaling_
        return s.my + s.sy * (polynomial_features(s.x(X), degree) @ self.coef_)


class NVAR(ChaosRegressor):
    """Next-generation reservoir computer on the delay vector: features ``[1, x, x_i x_j (i<=j)]``
    of the standardised inputs, ridge readout; with ``residual`` the target is ``y - x(t)``.

    Fitted attributes: ``coef_``, ``scaling_``, ``n_features_in_``.

    >>> from nngeom import chaos
    >>> X, y = chaos.embed(chaos.logistic_map(300, x0=0.3), lags=1, delay=1, horizon=1)
    >>> model = chaos.NVAR(ridge=1e-9).fit(X, y)
    >>> round(chaos.nrmse(y, model.predict(X)), 4)
    0.0
    """

    def __init__(self, ridge: float = 1e-6, residual: bool = True) -> None:
        self.ridge = ridge
        self.residual = residual

    def _fit(self, X: np.ndarray, y: np.ndarray) -> None:
        ridge = check_ridge(self.ridge)
        _check_features(X, NVAR_DEGREE)
        with np.errstate(over="ignore", invalid="ignore"):
            t = y - X[:, 0] if bool(self.residual) else y
        if not np.isfinite(t).all():
            raise InvalidInput("y - X[:, 0] overflows; rescale the series")
        scaling = Standardizer(X, t)
        A = polynomial_features(scaling.x(X), NVAR_DEGREE)
        self.coef_ = finite_coef(ridge_solve(A, (t - scaling.my) / scaling.sy, ridge), "NVAR")
        self.scaling_ = scaling

    def _predict_rows(self, X: np.ndarray) -> np.ndarray:
        _check_features(X, NVAR_DEGREE)
        s = self.scaling_
        out = s.my + s.sy * (polynomial_features(s.x(X), NVAR_DEGREE) @ self.coef_)
        return out + X[:, 0] if bool(self.residual) else out
