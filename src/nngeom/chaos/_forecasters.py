"""Forecasting a whole series with regressors: iterated (:class:`IteratedForecaster`) and one
regressor per horizon (:class:`DirectForecaster`), and the context windows they start from
(:func:`contexts`).

A forecaster is a scikit-learn estimator (``get_params`` / ``set_params`` / ``clone``) fitted on a
series: ``fit_series(series) -> self``; ``forecast(context, steps)`` with ``context (S, L)`` the
last ``L`` values before each of ``S`` start points returns ``(S, steps)``, the values 1..steps
after each context.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, clone

from .._checks import as_real_array, check_int, check_positive_int
from .._errors import InvalidInput
from ._estimators import raw_predict, require_fitted
from ._validate import MAX_ENTRIES, check_entries
from .embedding import as_series, embed

__all__ = ["contexts", "check_context", "IteratedForecaster", "DirectForecaster"]


def contexts(
    series: object, starts: Sequence[int], length: int, steps: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Context windows ``series[s-length+1 : s+1]`` ``(S, length)`` and the truths
    ``series[s+1 : s+1+steps]`` ``(S, steps)`` for each start index ``s``.

    >>> import numpy as np
    >>> from nngeom import chaos
    >>> ctx, truth = chaos.contexts(np.arange(10.0), [3, 5], length=3, steps=2)
    >>> ctx, truth
    (array([[1., 2., 3.],
           [3., 4., 5.]]), array([[4., 5.],
           [6., 7.]]))
    """
    x = as_series(series)
    length = check_positive_int("length", length, maximum=x.size)
    steps = check_int("steps", steps, minimum=0, maximum=x.size)
    raw = as_real_array(starts, "starts").reshape(-1)
    if raw.size and (
        not np.isfinite(raw).all() or (raw != np.round(raw)).any() or np.abs(raw).max() > x.size
    ):
        raise InvalidInput(
            f"starts must be integer indices into the series (0..{x.size - 1}), got {starts!r:.80}"
        )
    st = raw.astype(np.int64)
    if st.size == 0:
        raise InvalidInput("starts is empty")
    check_entries(st.size * (length + steps), "the context windows")
    if st.min() - length + 1 < 0 or st.max() + steps >= x.size:
        raise InvalidInput(
            f"start indices must leave {length} values before and {steps} after them in a series of {x.size}"
        )
    ctx = x[st[:, None] + np.arange(-length + 1, 1)[None, :]]
    truth = x[st[:, None] + np.arange(1, steps + 1)[None, :]]
    return ctx, truth


def check_context(context: object, need: int) -> np.ndarray:
    """``context`` as a finite float64 ``(S, L)`` array with ``L >= need`` (1-D: one context)."""
    c = as_real_array(context, "context")
    if c.ndim == 1:
        c = c[None, :]
    if c.ndim != 2 or c.shape[1] < need:
        raise InvalidInput(f"context must have shape (S, L) with L >= {need}, got {c.shape}")
    if not np.isfinite(c).all():
        raise InvalidInput("context contains NaN or inf")
    return c


def _check_embedding(lags: object, delay: object) -> tuple[int, int]:
    return (
        check_positive_int("lags", lags, maximum=MAX_ENTRIES),
        check_positive_int("delay", delay, maximum=MAX_ENTRIES),
    )


class IteratedForecaster(BaseEstimator):
    """Iterate a regressor trained on ``embed(series, lags, delay, horizon)``.

    ``forecast`` predicts the values 1..steps after each context in blocks of ``horizon``: every
    value in a block depends only on known or earlier-predicted values. With ``horizon = delay``
    this is Lapedes & Farber's iteration of the T-step predictor.

    ``fit_series`` fits a clone of ``regressor`` (``regressor_``); without it, ``forecast`` uses
    ``regressor`` as given, which must then be fitted already.

    >>> from nngeom import chaos
    >>> x = chaos.logistic_map(300, x0=0.3)
    >>> f = chaos.IteratedForecaster(chaos.Polynomial(degree=2), lags=1, delay=1, horizon=1)
    >>> _ = f.fit_series(x)
    >>> ctx, truth = chaos.contexts(x, [100, 200], length=f.context_length, steps=5)
    >>> bool(abs(f.forecast(ctx, 5) - truth).max() < 1e-6)
    True
    """

    def __init__(self, regressor: Any, lags: int = 4, delay: int = 6, horizon: int = 6) -> None:
        self.regressor = regressor
        self.lags = lags
        self.delay = delay
        self.horizon = horizon

    def _checked(self) -> tuple[int, int, int]:
        """``(lags, delay, horizon)``, checked with the regressor."""
        reg = self.regressor
        if not (callable(getattr(reg, "fit", None)) and callable(getattr(reg, "predict", None))):
            raise InvalidInput(
                f"regressor must have fit(X, y) and predict(X) methods, got {type(reg).__name__}"
            )
        lags, delay = _check_embedding(self.lags, self.delay)
        return lags, delay, check_positive_int("horizon", self.horizon, maximum=MAX_ENTRIES)

    @property
    def context_length(self) -> int:
        """The context values one forecast needs: ``(lags - 1) delay + horizon``."""
        lags, delay, horizon = self._checked()
        return (lags - 1) * delay + horizon

    def fit_series(self, series: object) -> IteratedForecaster:
        """Fit a clone of the regressor on ``embed(series, lags, delay, horizon)``; ``self``."""
        lags, delay, horizon = self._checked()
        X, y = embed(series, lags, delay, horizon)
        self.regressor_ = clone(self.regressor, safe=False).fit(X, y)
        return self

    def forecast(self, context: object, steps: int) -> np.ndarray:
        """The values 1..steps after each context ``(S, L)``: ``(S, steps)``; a diverged
        forecast stays ``inf``."""
        lags, delay, horizon = self._checked()
        c = check_context(context, (lags - 1) * delay + horizon)
        steps = check_positive_int("steps", steps, maximum=MAX_ENTRIES)
        check_entries(c.shape[0] * (c.shape[1] + steps), "the forecast")
        model = getattr(self, "regressor_", self.regressor)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            return self._forecast(model, c, steps, lags, delay, horizon)

    @staticmethod
    def _forecast(
        model: Any, c: np.ndarray, steps: int, lags: int, delay: int, horizon: int
    ) -> np.ndarray:
        S, L = c.shape
        buf = np.concatenate([c, np.full((S, steps), np.nan)], axis=1)
        lag_off = delay * np.arange(lags)
        pos = L
        while pos < L + steps:
            block = np.arange(pos, min(pos + horizon, L + steps))
            idx = block[:, None] - horizon - lag_off[None, :]  # (B, lags)
            X = buf[:, idx].reshape(S * block.size, lags)
            if not np.isfinite(X).all():  # a diverged forecast: keep it diverged
                pred = np.full(S * block.size, np.inf)
                ok = np.isfinite(X).all(axis=1)
                if ok.any():
                    pred[ok] = raw_predict(model, X[ok])
            else:
                pred = raw_predict(model, X)
            pred[~np.isfinite(pred)] = np.inf
            buf[:, block] = pred.reshape(S, block.size)
            pos = block[-1] + 1
        return buf[:, L:]


class DirectForecaster(BaseEstimator):
    """One regressor per horizon, each trained on ``embed(series, lags, delay, h)``.

    ``factory()`` builds a fresh regressor; ``models_`` maps each horizon to its fitted one.

    >>> from nngeom import chaos
    >>> x = chaos.logistic_map(300, x0=0.3)
    >>> f = chaos.DirectForecaster(lambda: chaos.Polynomial(degree=2), horizons=[1], lags=1, delay=1)
    >>> ctx, truth = chaos.contexts(x, [100, 200], length=1, steps=1)
    >>> out = f.fit_series(x).forecast_at(ctx)
    >>> sorted(out), bool(abs(out[1] - truth[:, 0]).max() < 1e-6)
    ([1], True)
    """

    def __init__(
        self, factory: Callable[[], Any], horizons: Sequence[int], lags: int = 4, delay: int = 6
    ) -> None:
        self.factory = factory
        self.horizons = horizons
        self.lags = lags
        self.delay = delay

    def _checked(self) -> tuple[tuple[int, ...], int, int]:
        """``(horizons, lags, delay)``, checked with the factory."""
        if not callable(self.factory):
            raise InvalidInput(
                f"factory must be a callable returning a regressor, got {self.factory!r}"
            )
        try:
            raw = tuple(self.horizons)
        except TypeError:
            raise InvalidInput(
                f"horizons must be a sequence of ints, got {self.horizons!r}"
            ) from None
        if not raw:
            raise InvalidInput("horizons is empty; pass at least one forecast horizon")
        horizons = tuple(check_positive_int("each horizon", h, maximum=MAX_ENTRIES) for h in raw)
        return (horizons, *_check_embedding(self.lags, self.delay))

    def fit_series(self, series: object) -> DirectForecaster:
        """Fit one new regressor per horizon on ``series``; ``self``."""
        horizons, lags, delay = self._checked()
        models = {}
        for h in horizons:
            X, y = embed(series, lags, delay, h)
            models[h] = self.factory().fit(X, y)
        self.models_ = models
        return self

    def forecast_at(self, context: object) -> dict[int, np.ndarray]:
        """``{h: (S,)}``: the value ``h`` steps after each context ``(S, L)``, per horizon."""
        require_fitted(self, "models_", "fit_series(series)")
        _, lags, delay = self._checked()
        c = check_context(context, (lags - 1) * delay + 1)
        X = c[:, c.shape[1] - 1 - delay * np.arange(lags)]
        return {h: m.predict(X) for h, m in self.models_.items()}
