"""An echo state network (Jaeger's protocol): a regressor on time-ordered rows, and a forecaster
of a scalar series."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .._checks import check_int, check_number, check_positive_int
from .._errors import InvalidInput
from .._random import numpy_rng
from ._estimators import (
    ChaosRegressor,
    Standardizer,
    check_ridge,
    finite_coef,
    require_fitted,
    ridge_solve,
)
from ._forecasters import check_context
from ._validate import MAX_ENTRIES, check_entries
from .embedding import as_series
from .systems import MAX_STEPS

__all__ = ["ESN"]

# The most reservoir units (the spectral radius costs an eigendecomposition, units^3).
MAX_UNITS = 5000
# The largest spectral_radius, input_scaling and bias_scaling: tanh units are saturated far
# below this, and the weights stay finite (no float64 overflow in the draws).
MAX_SCALE = 1e6


class ESN(ChaosRegressor):
    """Echo state network (Jaeger's protocol): a random reservoir driven by its input, ridge readout.

    State update ``r(n+1) = (1 - leak) r(n) + leak tanh(W r(n) + W_in u(n+1) + b)`` with ``W``
    sparse (``connectivity``) Gaussian scaled to ``spectral_radius``, ``W_in`` uniform in
    ``±input_scaling``, ``b`` uniform in ``±bias_scaling``; ``u`` is the standardised input.
    Readout ``w . [1, u(n), r(n)]`` by ridge regression after ``washout`` teacher-forced steps.
    float64 NumPy. The reservoir is drawn when fitting, from ``generator`` (advanced), else from
    ``seed``. Two ways to fit:

    * ``fit_series(series)``: one-step-ahead prediction of a scalar series (input ``x(n)``,
      target ``x(n+1)``, both standardised by the series' mean and std); ``forecast(context,
      steps)`` then drives the reservoir with each context and runs free, feeding back its output.
    * ``fit(X, y)`` / ``predict(X)`` (a scikit-learn regressor): the rows of ``X (N, d)`` are the
      inputs ``u(1..N)`` *in time order* and ``y (N,)`` the targets; ``predict`` drives a fresh
      reservoir with the rows of its ``X`` in order, so a row's prediction depends on the rows
      before it.

    Fitted attributes: ``W_ (units, units)``, ``W_in_ (units, d)``, ``b_ (units,)``,
    ``W_out_ (d + 1 + units,)``, ``scaling_``, ``train_nrmse_`` (on the standardised targets),
    ``n_features_in_``.

    >>> from nngeom import chaos
    >>> x = chaos.mackey_glass(600, seed=0)
    >>> esn = chaos.ESN(units=50, washout=50, seed=0).fit_series(x[:500])
    >>> ctx, truth = chaos.contexts(x, [499], length=100, steps=10)
    >>> pred = esn.forecast(ctx, 10)
    >>> import numpy as np
    >>> pred.shape, bool(np.isfinite(pred).all())
    ((1, 10), True)
    """

    def __init__(
        self,
        units: int = 400,
        spectral_radius: float = 0.8,
        leak: float = 1.0,
        input_scaling: float = 0.5,
        bias_scaling: float = 0.2,
        connectivity: float = 0.1,
        ridge: float = 1e-8,
        washout: int = 100,
        *,
        seed: int = 0,
        generator: torch.Generator | None = None,
    ) -> None:
        self.units = units
        self.spectral_radius = spectral_radius
        self.leak = leak
        self.input_scaling = input_scaling
        self.bias_scaling = bias_scaling
        self.connectivity = connectivity
        self.ridge = ridge
        self.washout = washout
        self.seed = seed
        self.generator = generator

    def _checked_params(self) -> dict[str, Any]:
        units = self.units
        if isinstance(units, bool) or not isinstance(units, int) or not 1 <= units <= MAX_UNITS:
            raise InvalidInput(
                f"units must be an int in 1..{MAX_UNITS} (the reservoir's eigenvalues cost "
                f"units^3), got {units!r}"
            )
        leak = check_number("leak", self.leak)
        connectivity = check_number("connectivity", self.connectivity)
        if not 0 < leak <= 1 or not 0 < connectivity <= 1:
            raise InvalidInput(
                f"need 0 < leak <= 1 and 0 < connectivity <= 1, got leak={leak}, "
                f"connectivity={connectivity}"
            )

        def scale(name: str, value: object) -> float:
            # + 0.0 turns -0.0 into 0.0 (numpy's uniform(0.0, -0.0) refuses high < low)
            return check_number(name, value, minimum=0.0, maximum=MAX_SCALE) + 0.0

        return {
            "units": units,
            "leak": leak,
            "connectivity": connectivity,
            "spectral_radius": scale("spectral_radius", self.spectral_radius),
            "input_scaling": scale("input_scaling", self.input_scaling),
            "bias_scaling": scale("bias_scaling", self.bias_scaling),
            "ridge": check_ridge(self.ridge),
            "washout": check_int("washout", self.washout, minimum=0, maximum=MAX_STEPS),
        }

    def _draw_reservoir(self, p: dict[str, Any], n_inputs: int) -> None:
        units = p["units"]
        rng = numpy_rng(self.seed, self.generator)
        W = rng.standard_normal((units, units)) * (rng.random((units, units)) < p["connectivity"])
        rho = float(np.max(np.abs(np.linalg.eigvals(W)))) if units > 1 else float(abs(W[0, 0]))
        self.W_ = W * (p["spectral_radius"] / rho) if rho > 0 else W
        self.W_in_ = rng.uniform(-p["input_scaling"], p["input_scaling"], size=(units, n_inputs))
        self.b_ = rng.uniform(-p["bias_scaling"], p["bias_scaling"], size=units)
        self.leak_ = p["leak"]

    def _run(self, U: np.ndarray, r: np.ndarray) -> np.ndarray:
        """Teacher-forced states: inputs ``U (S, T, d)``, start states ``r (S, units)`` ->
        states ``(S, T, units)`` (after each input)."""
        S, T, _ = U.shape
        out = np.empty((S, T, self.W_.shape[0]))
        WT, WinT, a = self.W_.T, self.W_in_.T, self.leak_
        for t in range(T):
            pre = r @ WT + U[:, t] @ WinT + self.b_
            r = np.tanh(pre) if a == 1.0 else (1 - a) * r + a * np.tanh(pre)
            out[:, t] = r
        return out

    def _features(self, Z: np.ndarray) -> np.ndarray:
        """Readout features ``[1, u(n), r(n)]`` of standardised inputs ``Z (T, d)`` driving a
        reservoir from rest: ``(T, 1 + d + units)``."""
        states = self._run(Z[None], np.zeros((1, self.W_.shape[0])))[0]
        return np.hstack([np.ones((Z.shape[0], 1)), Z, states])

    def _fit_readout(self, Z: np.ndarray, t: np.ndarray, p: dict[str, Any]) -> None:
        F = self._features(Z)[p["washout"] :]
        target = t[p["washout"] :]
        W_out = finite_coef(ridge_solve(F, target, p["ridge"]), "the ESN readout")
        self.W_out_ = W_out
        self.train_nrmse_ = float(np.sqrt(np.mean((F @ W_out - target) ** 2)))

    def _fit(self, X: np.ndarray, y: np.ndarray) -> None:
        p = self._checked_params()
        check_entries(X.shape[0] * (p["units"] + X.shape[1] + 1), "the ESN's training states")
        if X.shape[0] <= p["washout"]:
            raise InvalidInput(
                f"ESN(washout={p['washout']}) needs more rows than washout, got "
                f"n_samples={X.shape[0]}"
            )
        self._draw_reservoir(p, X.shape[1])
        scaling = Standardizer(X, y)
        self._fit_readout(scaling.x(X), (y - scaling.my) / scaling.sy, p)
        self.scaling_ = scaling

    def _predict_rows(self, X: np.ndarray) -> np.ndarray:
        s = self.scaling_
        return s.my + s.sy * (self._features(s.x(X)) @ self.W_out_)

    def fit_series(self, series: object) -> ESN:
        """Draw the reservoir, drive it with ``series`` (1-D) and fit the one-step readout; ``self``."""
        p = self._checked_params()
        x = as_series(series)
        check_entries(x.size * (p["units"] + 2), "the ESN's training states")
        if x.size <= p["washout"] + 2:
            raise InvalidInput(
                f"the series ({x.size} points) must be longer than washout + 2 = {p['washout'] + 2}"
            )
        self._draw_reservoir(p, 1)
        mean, sd = float(x.mean()), float(x.std())
        std = sd if sd > 0 else 1.0
        u = (x - mean) / std
        self._fit_readout(u[:-1, None], u[1:], p)
        self.scaling_ = Standardizer.of(np.array([mean]), np.array([std]), mean, std)
        self.n_features_in_ = 1
        return self

    def forecast(self, context: object, steps: int) -> np.ndarray:
        """Drive the reservoir with each context ``(S, L)``, then run free for ``steps``, each
        prediction the next input: ``(S, steps)``. Needs a one-input fit (``fit_series``)."""
        require_fitted(self, "W_out_", "fit_series(series)")
        if self.n_features_in_ != 1:
            raise InvalidInput(
                f"forecast feeds the ESN's output back as its input: it needs a fit on one "
                f"input (fit_series), not on {self.n_features_in_} columns"
            )
        c = check_context(context, 1)
        steps = check_positive_int("steps", steps, maximum=MAX_ENTRIES)
        check_entries(c.shape[0] * max(steps, c.shape[1] * self.W_.shape[0]), "the ESN forecast")
        with np.errstate(over="ignore", invalid="ignore"):
            return self._forecast(c, steps)

    def _forecast(self, c: np.ndarray, steps: int) -> np.ndarray:
        s = self.scaling_
        mx, sx = float(s.mx[0]), float(s.sx[0])
        same_scale = (mx, sx) == (s.my, s.sy)  # fit_series: outputs are inputs as they are
        u = (c - mx) / sx
        S = c.shape[0]
        r = self._run(u[:, :, None], np.zeros((S, self.W_.shape[0])))[:, -1]
        w0, wu, wr = self.W_out_[0], self.W_out_[1], self.W_out_[2:]
        win, a, WT = self.W_in_[:, 0], self.leak_, self.W_.T
        last = u[:, -1]
        out = np.empty((S, steps))
        for k in range(steps):
            y = w0 + wu * last + r @ wr
            out[:, k] = y
            nxt = y if same_scale else (s.my + s.sy * y - mx) / sx
            pre = r @ WT + nxt[:, None] * win + self.b_
            r = np.tanh(pre) if a == 1.0 else (1 - a) * r + a * np.tanh(pre)
            last = nxt
        return s.my + s.sy * out
