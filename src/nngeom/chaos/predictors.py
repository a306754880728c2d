"""Predictors of chaotic series behind one interface, and direct / iterated forecasting.

Every predictor is a scikit-learn estimator: the constructor stores its parameters (checked when
fitting), what fitting learns ends in ``_``, and ``clone``, ``get_params`` / ``set_params``,
``Pipeline`` and ``cross_val_score`` work. Regressors on a delay embedding (``fit(X, y) -> self``,
``predict(X) -> y``, ``X (N, lags)``, ``y (N,)``; ``RegressorMixin``, so ``score`` is R^2):

* :class:`LapedesFarberMLP` -- two sigmoid hidden layers and a linear output (Lapedes & Farber),
  trained full batch by L-BFGS (or Adam) with restarts, best training loss kept.
* :class:`LinearAR` -- the linear predictor: least squares (``method="lstsq"``) or the
  Widrow-Hoff / LMS rule (``method="lms"``, normalised step, passes in time order).
* :class:`Polynomial` -- global polynomial of a given degree (Gabor-Volterra-Wiener), least squares.
* :class:`LocalLinear` -- Farmer-Sidorowich: affine least squares on the ``k`` nearest training
  neighbours of each query in delay space, with ridge.
* :class:`NVAR` -- next-generation reservoir computing (Gauthier et al. 2021): constant, linear and
  quadratic monomials of the delay vector, ridge readout, predicting the increment ``y - x(t)``.

Forecasters of a whole series (``fit_series(series) -> self``, ``forecast(context, steps)``
with ``context (S, L)`` the last ``L`` values before each of ``S`` start points, returning
``(S, steps)``, the values 1..steps after each context):

* :class:`IteratedForecaster` wraps a regressor trained for ``horizon`` and iterates it.
* :class:`DirectForecaster` trains one regressor per horizon (``forecast_at``).
* :class:`ESN` -- an echo state network (Jaeger's protocol: teacher-forced one-step training,
  ridge readout, then free running with its own output fed back).

:func:`make_regressor` builds a regressor by name (``"mlp"``, ``"linear"``, ``"lms"``, ``"poly"``,
``"local"``, ``"nvar"``). The classes live in private modules by what they compute
(``_least_squares``, ``_local_linear``, ``_mlp``, ``_forecasters``, ``_esn``; the shared
estimator base and checks in ``_estimators``) and are re-exported here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from .._errors import InvalidInput
from ._esn import ESN
from ._estimators import NotFittedError, Standardizer
from ._forecasters import DirectForecaster, IteratedForecaster, contexts
from ._least_squares import NVAR, LinearAR, Polynomial, polynomial_features
from ._local_linear import LocalLinear
from ._mlp import LapedesFarberMLP, mlp_loss_grad

__all__ = [
    "Regressor",
    "LapedesFarberMLP",
    "LinearAR",
    "Polynomial",
    "LocalLinear",
    "NVAR",
    "IteratedForecaster",
    "DirectForecaster",
    "ESN",
    "NotFittedError",
    "make_regressor",
    "REGRESSORS",
    "polynomial_features",
    "mlp_loss_grad",
    "contexts",
    "Standardizer",
]


class Regressor(Protocol):
    """What a forecaster needs of a regressor: ``fit(X, y) -> self`` and ``predict(X) -> y``."""

    def fit(self, X: np.ndarray, y: np.ndarray) -> Regressor: ...

    def predict(self, X: np.ndarray) -> np.ndarray: ...


REGRESSORS: dict[str, Callable[..., Any]] = {
    "mlp": LapedesFarberMLP,
    "linear": lambda **kw: LinearAR("lstsq", **kw),
    "lms": lambda **kw: LinearAR("lms", **kw),
    "poly": Polynomial,
    "local": LocalLinear,
    "nvar": NVAR,
}


def make_regressor(name: str, **kwargs: Any) -> Any:
    """A regressor by name: ``mlp``, ``linear``, ``lms``, ``poly``, ``local``, ``nvar``.

    >>> from nngeom import chaos
    >>> type(chaos.make_regressor("poly", degree=2)).__name__
    'Polynomial'
    >>> type(chaos.make_regressor("linear")).__name__
    'LinearAR'
    """
    if not isinstance(name, str) or name not in REGRESSORS:
        raise InvalidInput(f"unknown predictor {name!r}; use one of {sorted(REGRESSORS)} (or ESN)")
    try:
        return REGRESSORS[name](**kwargs)
    except TypeError as exc:
        raise InvalidInput(f"predictor {name!r} does not take these options: {exc}") from None
