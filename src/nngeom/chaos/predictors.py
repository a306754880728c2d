"""Predictors of chaotic series behind one interface, and direct / iterated forecasting.

Regressors on a delay embedding (``fit(X, y) -> self``, ``predict(X) -> y``, ``X (N, lags)``,
``y (N,)``):

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
``"local"``, ``"nvar"``).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np
import torch

from .._checks import (
    MAX_SEED,
    check_device,
    check_int,
    check_number,
    check_positive_int,
    check_seed,
)
from .._errors import InvalidInput, StudyError
from ..nets import mlp as build_mlp
from ..train import train
from ._validate import MAX_ENTRIES, check_entries, real_array
from .embedding import as_series, embed
from .systems import MAX_STEPS

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
    "make_regressor",
    "REGRESSORS",
    "polynomial_features",
    "mlp_loss_grad",
    "contexts",
]


class Regressor(Protocol):
    def fit(self, X: np.ndarray, y: np.ndarray) -> Regressor: ...

    def predict(self, X: np.ndarray) -> np.ndarray: ...


def _xy(X: object, y: object | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    Xa = real_array(X, "X")
    if Xa.ndim != 2 or Xa.shape[0] == 0 or Xa.shape[1] == 0:
        raise InvalidInput(f"X must have shape (N, lags) with N, lags >= 1, got {Xa.shape}")
    if not np.isfinite(Xa).all():
        raise InvalidInput("X contains NaN or inf; clean the series first")
    if y is None:
        return Xa, None
    ya = real_array(y, "y")
    if ya.ndim > 2 or (ya.ndim == 2 and ya.shape[1] != 1):
        raise InvalidInput(f"y must have shape (N,) (one target per row), got {ya.shape}")
    ya = ya.reshape(-1)
    if ya.shape[0] != Xa.shape[0]:
        raise InvalidInput(f"X has {Xa.shape[0]} rows but y has {ya.shape[0]} values")
    if not np.isfinite(ya).all():
        raise InvalidInput("y contains NaN or inf; clean the series first")
    return Xa, ya


def _fit_xy(X: object, y: object) -> tuple[np.ndarray, np.ndarray]:
    """``fit``'s ``(X, y)``: ``y`` is required (one target per row of ``X``)."""
    if y is None:
        raise InvalidInput(
            "fit needs the targets y (one value per row of X), got None; for a series use "
            "embed(series, ...) to build (X, y)"
        )
    Xa, ya = _xy(X, y)
    if ya is None:  # pragma: no cover - _xy returns y whenever it is given
        raise InvalidInput("fit needs the targets y (one value per row of X)")
    return Xa, ya


def _mean_std(A: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column means and population stds without overflow (columns scaled by their largest |value|)."""
    m = np.max(np.abs(A), axis=0)
    m = np.where(m > 0, m, 1.0)
    Z = A / m
    return Z.mean(axis=0) * m, Z.std(axis=0) * m


class _Standardizer:
    def __init__(self, X: np.ndarray, y: np.ndarray | None = None) -> None:
        self.mx, sx = _mean_std(X)
        self.sx = np.where(sx > 0, sx, 1.0)
        my, sy = _mean_std(y[:, None]) if y is not None else (np.zeros(1), np.ones(1))
        self.my = float(my[0])
        self.sy = float(sy[0]) if sy[0] > 0 else 1.0

    def x(self, X: np.ndarray) -> np.ndarray:
        return (X - self.mx) / self.sx


def _ridge(value: object) -> float:
    return check_number("ridge", value, minimum=0.0)


def _finite_coef(coef: np.ndarray, what: str) -> np.ndarray:
    if not np.isfinite(coef).all():
        raise InvalidInput(
            f"fitting {what} gave non-finite coefficients (the least-squares problem overflowed "
            "or is degenerate); rescale the data or pass a positive ridge"
        )
    return coef


def _checked_prediction(pred: np.ndarray, what: str) -> np.ndarray:
    """Refuse a non-finite prediction from finite inputs (an overflow), saying where."""
    if not np.isfinite(pred).all():
        bad = int((~np.isfinite(pred)).sum())
        raise InvalidInput(
            f"{what} predicted {bad} non-finite value(s) from finite inputs (overflow: the inputs "
            "are far outside the training range); predict on inputs like the training data"
        )
    return pred


def _raw_predict(regressor: Any, X: np.ndarray) -> np.ndarray:
    """A regressor's prediction with overflowing rows as ``inf`` (a diverged forecast)."""
    raw = getattr(regressor, "_predict", None)
    if raw is not None:
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            return np.asarray(raw(X), dtype=np.float64)
    return np.asarray(regressor.predict(X), dtype=np.float64)


def _fitted(obj: Any, attr: str) -> None:
    if getattr(obj, attr, None) is None:
        raise InvalidInput(f"{type(obj).__name__} is not fitted yet; call fit(...) first")


def _check_dim(obj: Any, X: np.ndarray) -> None:
    if X.shape[1] != obj.n_features_:
        raise InvalidInput(
            f"X has {X.shape[1]} columns but the model was fitted on {obj.n_features_}"
        )


def _ridge_solve(
    A: np.ndarray, y: np.ndarray, ridge: float, penalize_first: bool = False
) -> np.ndarray:
    """``argmin |A w - y|^2 + ridge |w[1:]|^2`` (the first column, the constant, is not penalised)."""
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


class LinearAR:
    """Linear autoregressive predictor ``y = w0 + w . x``.

    ``method="lstsq"``: least squares (optional ``ridge``). ``method="lms"``: the Widrow-Hoff rule,
    normalised (``w += mu e x / (eps + |x|^2)``), ``epochs`` passes over the rows in time order,
    starting from zero, on standardised inputs. A constant step leaves a misadjustment on data a
    linear model cannot fit exactly (chaotic series): the default small step (0.05, 100 passes)
    ends near the least-squares solution; large steps (0.5-1) end far from it.

    >>> import numpy as np
    >>> from nngeom import chaos
    >>> X = np.arange(10.0)[:, None]
    >>> chaos.LinearAR().fit(X, 2 * X[:, 0] + 1).predict([[20.0]]).round(6)
    array([41.])
    """

    def __init__(
        self, method: str = "lstsq", ridge: float = 0.0, mu: float = 0.05, epochs: int = 100
    ) -> None:
        if method not in ("lstsq", "lms"):
            raise InvalidInput(f"method must be 'lstsq' or 'lms', got {method!r}")
        epochs = check_positive_int("epochs", epochs, maximum=MAX_STEPS)
        mu = check_number("mu", mu)
        if not (0 < mu < 2):
            raise InvalidInput(f"LMS needs 0 < mu < 2 (normalised step), got mu={mu}")
        self.method, self.ridge, self.mu, self.epochs = method, _ridge(ridge), mu, epochs
        self.coef_: np.ndarray | None = None

    def fit(self, X: object, y: object) -> LinearAR:
        Xa, ya = _fit_xy(X, y)
        self.n_features_ = Xa.shape[1]
        self._s = _Standardizer(Xa, ya)
        A = np.hstack([np.ones((Xa.shape[0], 1)), self._s.x(Xa)])
        t = (ya - self._s.my) / self._s.sy
        if self.method == "lstsq":
            self.coef_ = _finite_coef(_ridge_solve(A, t, self.ridge), "LinearAR")
        else:
            if self.epochs * A.shape[0] > MAX_STEPS:
                raise InvalidInput(
                    f"LMS with epochs={self.epochs} over {A.shape[0]} rows is "
                    f"{self.epochs * A.shape[0]:,} updates, more than nngeom's limit of "
                    f"{MAX_STEPS:,}; use fewer epochs or rows"
                )
            w = np.zeros(A.shape[1])
            rows = [np.ascontiguousarray(r) for r in A]
            norms = [float(r @ r) for r in rows]
            mu = self.mu
            for _ in range(self.epochs):
                for r, nr, target in zip(rows, norms, t, strict=False):
                    e = target - float(r @ w)
                    w += (mu * e / (1e-12 + nr)) * r
            self.coef_ = _finite_coef(w, "LinearAR (LMS)")
        return self

    def predict(self, X: object) -> np.ndarray:
        with np.errstate(over="ignore", invalid="ignore"):
            return _checked_prediction(self._predict(X), "LinearAR")

    def _predict(self, X: object) -> np.ndarray:
        _fitted(self, "coef_")
        Xa, _ = _xy(X)
        _check_dim(self, Xa)
        assert self.coef_ is not None
        return self._s.my + self._s.sy * (self.coef_[0] + self._s.x(Xa) @ self.coef_[1:])


def polynomial_features(Z: np.ndarray, degree: int) -> np.ndarray:
    """All monomials of the columns of ``Z (N, d)`` of total degree ``0..degree``:
    ``(N, C(d + degree, degree))``, the constant first, then by degree."""
    cols = [np.ones(Z.shape[0])]
    for deg in range(1, degree + 1):
        for combo in itertools.combinations_with_replacement(range(Z.shape[1]), deg):
            cols.append(np.prod(Z[:, combo], axis=1))
    return np.stack(cols, axis=1)


def _check_features(Xa: np.ndarray, degree: int) -> None:
    n_terms = math.comb(Xa.shape[1] + degree, degree)
    check_entries(n_terms * Xa.shape[0], f"the degree-{degree} polynomial features")


class Polynomial:
    """Global polynomial predictor of total degree ``degree`` (Gabor-Volterra-Wiener), least squares
    on standardised inputs (optional ``ridge`` on the non-constant terms).

    >>> from nngeom import chaos
    >>> X, y = chaos.embed(chaos.logistic_map(300, x0=0.3), lags=1, delay=1, horizon=1)
    >>> model = chaos.Polynomial(degree=2).fit(X, y)
    >>> round(chaos.nrmse(y, model.predict(X)), 6)
    0.0
    """

    def __init__(self, degree: int = 3, ridge: float = 0.0) -> None:
        if isinstance(degree, bool) or not isinstance(degree, int) or not 1 <= degree <= 10:
            raise InvalidInput(f"degree must be an int in 1..10, got {degree!r}")
        self.degree, self.ridge = degree, _ridge(ridge)
        self.coef_: np.ndarray | None = None

    def fit(self, X: object, y: object) -> Polynomial:
        Xa, ya = _fit_xy(X, y)
        _check_features(Xa, self.degree)
        self.n_features_ = Xa.shape[1]
        self._s = _Standardizer(Xa, ya)
        A = polynomial_features(self._s.x(Xa), self.degree)
        self.coef_ = _finite_coef(
            _ridge_solve(A, (ya - self._s.my) / self._s.sy, self.ridge), "Polynomial"
        )
        return self

    def predict(self, X: object) -> np.ndarray:
        with np.errstate(over="ignore", invalid="ignore"):
            return _checked_prediction(self._predict(X), "Polynomial")

    def _predict(self, X: object) -> np.ndarray:
        _fitted(self, "coef_")
        Xa, _ = _xy(X)
        _check_dim(self, Xa)
        _check_features(Xa, self.degree)
        return self._s.my + self._s.sy * (
            polynomial_features(self._s.x(Xa), self.degree) @ self.coef_
        )


class NVAR:
    """Next-generation reservoir computer on the delay vector: features ``[1, x, x_i x_j (i<=j)]``
    of the standardised inputs, ridge readout; with ``residual`` the target is ``y - x(t)``.

    >>> from nngeom import chaos
    >>> X, y = chaos.embed(chaos.logistic_map(300, x0=0.3), lags=1, delay=1, horizon=1)
    >>> model = chaos.NVAR(ridge=1e-9).fit(X, y)
    >>> round(chaos.nrmse(y, model.predict(X)), 4)
    0.0
    """

    def __init__(self, ridge: float = 1e-6, residual: bool = True) -> None:
        self.ridge, self.residual = _ridge(ridge), bool(residual)
        self.coef_: np.ndarray | None = None

    def fit(self, X: object, y: object) -> NVAR:
        Xa, ya = _fit_xy(X, y)
        _check_features(Xa, 2)
        self.n_features_ = Xa.shape[1]
        with np.errstate(over="ignore", invalid="ignore"):
            t = ya - Xa[:, 0] if self.residual else ya
        if not np.isfinite(t).all():
            raise InvalidInput("y - X[:, 0] overflows; rescale the series")
        self._s = _Standardizer(Xa, t)
        A = polynomial_features(self._s.x(Xa), 2)
        self.coef_ = _finite_coef(
            _ridge_solve(A, (t - self._s.my) / self._s.sy, self.ridge), "NVAR"
        )
        return self

    def predict(self, X: object) -> np.ndarray:
        with np.errstate(over="ignore", invalid="ignore"):
            return _checked_prediction(self._predict(X), "NVAR")

    def _predict(self, X: object) -> np.ndarray:
        _fitted(self, "coef_")
        Xa, _ = _xy(X)
        _check_dim(self, Xa)
        _check_features(Xa, 2)
        out = self._s.my + self._s.sy * (polynomial_features(self._s.x(Xa), 2) @ self.coef_)
        return out + Xa[:, 0] if self.residual else out


class LocalLinear:
    """Local linear prediction (Farmer & Sidorowich 1987): for each query, the affine least-squares
    fit ``y ~ w0 + w . (x - q)`` on its ``k`` nearest training rows (Euclidean, standardised
    inputs), ridge ``ridge`` on the slopes; the prediction is ``w0``.

    >>> from nngeom import chaos
    >>> X, y = chaos.embed(chaos.logistic_map(300, x0=0.3), lags=1, delay=1, horizon=1)
    >>> model = chaos.LocalLinear(k=5).fit(X[:250], y[:250])
    >>> bool(chaos.nrmse(y[250:], model.predict(X[250:])) < 0.05)
    True
    """

    def __init__(self, k: int = 10, ridge: float = 1e-6) -> None:
        k = check_positive_int("k", k, maximum=MAX_ENTRIES)
        self.k, self.ridge = k, _ridge(ridge)
        self.tree_: Any = None

    def fit(self, X: object, y: object) -> LocalLinear:
        from scipy.spatial import cKDTree

        Xa, ya = _fit_xy(X, y)
        if Xa.shape[0] < self.k:
            raise InvalidInput(
                f"LocalLinear(k={self.k}) needs at least k training rows, got {Xa.shape[0]}"
            )
        self.n_features_ = Xa.shape[1]
        self._s = _Standardizer(Xa, ya)
        self._Z = self._s.x(Xa)
        self._y = ya
        self.tree_ = cKDTree(self._Z)
        return self

    def predict(self, X: object, chunk: int = 4096) -> np.ndarray:
        with np.errstate(over="ignore", invalid="ignore"):
            return _checked_prediction(self._predict(X, chunk), "LocalLinear")

    def _predict(self, X: object, chunk: int = 4096) -> np.ndarray:
        chunk = check_positive_int("chunk", chunk)
        _fitted(self, "tree_")
        Xa, _ = _xy(X)
        _check_dim(self, Xa)
        chunk = max(1, min(chunk, MAX_ENTRIES // max(1, self.k * (Xa.shape[1] + 1) * 2)))
        Q = self._s.x(Xa)
        out = np.empty(Q.shape[0])
        d = Q.shape[1]
        for lo in range(0, Q.shape[0], chunk):
            q = Q[lo : lo + chunk]
            _, idx = self.tree_.query(q, k=self.k)
            idx = idx.reshape(q.shape[0], self.k)
            # a query whose distances overflow gets no neighbours (index n): its prediction is inf
            lost = (idx >= self._Z.shape[0]).any(axis=1)
            idx = np.minimum(idx, self._Z.shape[0] - 1)
            A = np.concatenate(
                [np.ones((q.shape[0], self.k, 1)), self._Z[idx] - q[:, None, :]], axis=2
            )
            t = self._y[idx]
            if self.ridge > 0:
                pen = np.zeros((d, d + 1))
                pen[:, 1:] = math.sqrt(self.ridge) * np.eye(d)
                A = np.concatenate([A, np.broadcast_to(pen, (q.shape[0], d, d + 1))], axis=1)
                t = np.concatenate([t, np.zeros((q.shape[0], d))], axis=1)
            w = np.linalg.pinv(A) @ t[:, :, None]
            out[lo : lo + chunk] = np.where(lost, np.inf, w[:, 0, 0])
        return out


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # no overflow for large |z|


def mlp_loss_grad(
    theta: np.ndarray, shapes: Sequence[tuple[int, ...]], X: np.ndarray, y: np.ndarray
) -> tuple[float, np.ndarray]:
    """Mean squared error of a sigmoid MLP with linear output and its gradient, in NumPy.

    ``theta`` is the flat concatenation of ``W_0, b_0, W_1, b_1, ...`` (``W_l (out, in)``, PyTorch's
    ``parameters()`` order); ``X (N, d)``, ``y (N,)``. Returns ``(loss, grad)``, ``grad`` like ``theta``.
    """
    params, i = [], 0
    for s in shapes:
        n = int(np.prod(s))
        params.append(theta[i : i + n].reshape(s))
        i += n
    Ws, bs = params[0::2], params[1::2]
    acts = [X]
    for W, b in zip(Ws[:-1], bs[:-1], strict=False):
        acts.append(_sigmoid(acts[-1] @ W.T + b))
    out = acts[-1] @ Ws[-1].T + bs[-1]
    r = out[:, 0] - y
    loss = float(r @ r) / y.size
    delta = (2.0 / y.size) * r[:, None]
    grads: list[np.ndarray] = []
    for layer in range(len(Ws) - 1, -1, -1):
        grads.append(delta.sum(axis=0))
        grads.append(delta.T @ acts[layer])
        if layer > 0:
            h = acts[layer]
            delta = (delta @ Ws[layer]) * h * (1.0 - h)
    grads.reverse()  # now W_0, b_0, W_1, b_1, ...
    return loss, np.concatenate([g.ravel() for g in grads])


def _lbfgs(net: torch.nn.Module, Z: np.ndarray, t: np.ndarray, iters: int) -> float:
    """Run SciPy's L-BFGS-B on ``net``'s parameters for ``iters`` iterations (in place); final MSE."""
    from scipy.optimize import minimize
    from threadpoolctl import threadpool_limits

    params = list(net.parameters())
    shapes = [tuple(p.shape) for p in params]
    theta0 = np.concatenate([p.detach().cpu().numpy().astype(np.float64).ravel() for p in params])
    with threadpool_limits(1):
        res = minimize(
            mlp_loss_grad,
            theta0,
            args=(shapes, Z, t),
            jac=True,
            method="L-BFGS-B",
            options={"maxiter": iters, "maxfun": 2 * iters, "ftol": 0.0, "gtol": 0.0, "maxcor": 30},
        )
        loss = float(mlp_loss_grad(res.x, shapes, Z, t)[0])
    with torch.no_grad():
        i = 0
        for p in params:
            p.copy_(torch.from_numpy(res.x[i : i + p.numel()].reshape(p.shape)))
            i += p.numel()
    return loss


class LapedesFarberMLP:
    """The Lapedes-Farber net: ``lags -> hidden[0] -> hidden[1] -> 1``, sigmoid hidden layers,
    linear output, float64, inputs and target standardised (``model_`` is the torch
    ``nn.Sequential`` on the standardised scale; :meth:`predict` undoes the scaling).

    Training, full batch, from ``nngeom.mlp(..., seed=seed + r)`` for restart ``r``; the restart
    with the lowest training MSE is kept:

    * ``optimizer="lbfgs"``: SciPy's L-BFGS-B on a NumPy forward/backward (:func:`mlp_loss_grad`,
      single-threaded BLAS), ``max_iter`` iterations -- fast and deterministic on a CPU.
      With ``screen_iter``, every restart first runs ``screen_iter`` iterations, and only the best
      one continues to ``max_iter`` in all (cheap restarts: the paper's "restarts").
    * ``optimizer="adam"``: :func:`nngeom.train` (torch) for ``max_iter`` full-batch steps at ``lr``,
      on ``device``.

    >>> from nngeom import chaos
    >>> X, y = chaos.embed(chaos.logistic_map(200, x0=0.3), lags=1, delay=1, horizon=1)
    >>> model = chaos.LapedesFarberMLP(hidden=(5, 5), max_iter=200, seed=0).fit(X, y)
    >>> model.predict(X[:3]).shape, bool(chaos.nrmse(y, model.predict(X)) < 0.2)
    ((3,), True)
    """

    def __init__(
        self,
        hidden: Sequence[int] = (10, 10),
        optimizer: str = "lbfgs",
        max_iter: int = 3000,
        restarts: int = 1,
        lr: float = 1e-2,
        seed: int = 0,
        device: str | torch.device | None = None,
        screen_iter: int | None = None,
    ) -> None:
        try:
            hidden = tuple(hidden)
        except TypeError:
            raise InvalidInput(
                f"hidden must be a sequence of positive ints, got {hidden!r}"
            ) from None
        if not hidden:
            raise InvalidInput("hidden must name at least one hidden layer width, got ()")
        hidden = tuple(check_positive_int("each hidden width", h, maximum=100_000) for h in hidden)
        if optimizer not in ("lbfgs", "adam"):
            raise InvalidInput(f"optimizer must be 'lbfgs' or 'adam', got {optimizer!r}")
        restarts = check_positive_int("restarts", restarts, maximum=10_000)
        max_iter = check_positive_int("max_iter", max_iter, maximum=10_000_000)
        self.hidden, self.optimizer, self.max_iter, self.restarts = (
            hidden,
            optimizer,
            max_iter,
            restarts,
        )
        self.lr = check_number("lr", lr, minimum=0.0, strict_min=True)
        self.seed = check_seed(seed)
        self.device = check_device(device) if device is not None else None
        if screen_iter is not None:
            screen_iter = check_positive_int("screen_iter", screen_iter, maximum=10_000_000)
        self.screen_iter = screen_iter
        self.model_: torch.nn.Sequential | None = None
        self.train_loss_: float = math.nan
        self.restart_losses_: list[float] = []

    def fit(self, X: object, y: object) -> LapedesFarberMLP:

        Xa, ya = _fit_xy(X, y)
        self.n_features_ = Xa.shape[1]
        self._s = _Standardizer(Xa, ya)
        Z = self._s.x(Xa)
        t = (ya - self._s.my) / self._s.sy
        best: tuple[float, Any] | None = None
        self.restart_losses_ = []
        for r in range(self.restarts):
            net = build_mlp(
                (Xa.shape[1], *self.hidden, 1),
                "sigmoid",
                seed=(self.seed + r) % (MAX_SEED + 1),
                dtype=torch.float64,
            )
            if self.optimizer == "lbfgs":
                first = (
                    self.max_iter
                    if self.screen_iter is None
                    else min(self.screen_iter, self.max_iter)
                )
                loss = _lbfgs(net, Z, t, first)
            else:
                dev = torch.device(self.device) if self.device is not None else torch.device("cpu")
                net = net.to(dev)
                Xt = torch.as_tensor(Z, dtype=torch.float64, device=dev)
                yt = torch.as_tensor(t, dtype=torch.float64, device=dev)[:, None]
                threads = torch.get_num_threads()
                if dev.type == "cpu":  # tiny nets: extra threads only contend with each other
                    torch.set_num_threads(1)
                try:
                    res = train(
                        net, Xt, yt, loss="mse", optimizer="adam", epochs=self.max_iter, lr=self.lr
                    )
                finally:
                    torch.set_num_threads(threads)
                with torch.no_grad():
                    loss = float(torch.nn.functional.mse_loss(net(Xt), yt))
                if not res.finite:  # diverged: its weights are the last finite ones, not a fit
                    loss = math.inf
            self.restart_losses_.append(loss)
            if math.isfinite(loss) and (best is None or loss < best[0]):
                best = (loss, net)
        if best is None:
            raise StudyError("every MLP restart diverged (non-finite loss); lower lr or use lbfgs")
        loss, net = best
        if (
            self.optimizer == "lbfgs"
            and self.screen_iter is not None
            and self.screen_iter < self.max_iter
        ):
            loss = _lbfgs(net, Z, t, self.max_iter - self.screen_iter)  # continue the best one
        self.train_loss_, self.model_ = loss, net
        return self

    def predict(self, X: object) -> np.ndarray:
        with np.errstate(over="ignore", invalid="ignore"):
            return _checked_prediction(self._predict(X), "LapedesFarberMLP")

    def _predict(self, X: object) -> np.ndarray:
        _fitted(self, "model_")
        Xa, _ = _xy(X)
        _check_dim(self, Xa)
        assert self.model_ is not None
        dev = next(self.model_.parameters()).device
        with torch.no_grad():
            z = self.model_(torch.as_tensor(self._s.x(Xa), dtype=torch.float64, device=dev))
        return self._s.my + self._s.sy * z[:, 0].cpu().numpy()

    def standardize(self, X: object) -> np.ndarray:
        """The network's input for ``X``: ``(X - mean) / std`` of the training inputs."""
        _fitted(self, "model_")
        Xa, _ = _xy(X)
        _check_dim(self, Xa)
        return self._s.x(Xa)

    @property
    def target_scale(self) -> tuple[float, float]:
        """``(mean, std)`` of the training target: ``y = mean + std * model_(standardize(x))``."""
        return self._s.my, self._s.sy


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
    raw = real_array(starts, "starts").reshape(-1)
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


def _check_context(context: object, need: int) -> np.ndarray:
    c = real_array(context, "context")
    if c.ndim == 1:
        c = c[None, :]
    if c.ndim != 2 or c.shape[1] < need:
        raise InvalidInput(f"context must have shape (S, L) with L >= {need}, got {c.shape}")
    if not np.isfinite(c).all():
        raise InvalidInput("context contains NaN or inf")
    return c


class IteratedForecaster:
    """Iterate a regressor trained on ``embed(series, lags, delay, horizon)``.

    ``forecast`` predicts the values 1..steps after each context in blocks of ``horizon``: every
    value in a block depends only on known or earlier-predicted values. With ``horizon = delay``
    this is Lapedes & Farber's iteration of the T-step predictor.

    >>> from nngeom import chaos
    >>> x = chaos.logistic_map(300, x0=0.3)
    >>> f = chaos.IteratedForecaster(chaos.Polynomial(degree=2), lags=1, delay=1, horizon=1)
    >>> _ = f.fit_series(x)
    >>> ctx, truth = chaos.contexts(x, [100, 200], length=f.context_length, steps=5)
    >>> bool(abs(f.forecast(ctx, 5) - truth).max() < 1e-6)
    True
    """

    def __init__(self, regressor: Any, lags: int = 4, delay: int = 6, horizon: int = 6) -> None:
        if not (
            callable(getattr(regressor, "fit", None))
            and callable(getattr(regressor, "predict", None))
        ):
            raise InvalidInput(
                f"regressor must have fit(X, y) and predict(X) methods, got {type(regressor).__name__}"
            )
        lags = check_positive_int("lags", lags, maximum=MAX_ENTRIES)
        delay = check_positive_int("delay", delay, maximum=MAX_ENTRIES)
        horizon = check_positive_int("horizon", horizon, maximum=MAX_ENTRIES)
        self.regressor, self.lags, self.delay, self.horizon = regressor, lags, delay, horizon

    @property
    def context_length(self) -> int:
        return (self.lags - 1) * self.delay + self.horizon

    def fit_series(self, series: object) -> IteratedForecaster:
        X, y = embed(series, self.lags, self.delay, self.horizon)
        self.regressor.fit(X, y)
        return self

    def forecast(self, context: object, steps: int) -> np.ndarray:
        c = _check_context(context, self.context_length)
        steps = check_positive_int("steps", steps, maximum=MAX_ENTRIES)
        check_entries(c.shape[0] * (c.shape[1] + steps), "the forecast")
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            return self._forecast(c, steps)

    def _forecast(self, c: np.ndarray, steps: int) -> np.ndarray:
        S, L = c.shape
        buf = np.concatenate([c, np.full((S, steps), np.nan)], axis=1)
        lag_off = self.delay * np.arange(self.lags)
        pos = L
        while pos < L + steps:
            block = np.arange(pos, min(pos + self.horizon, L + steps))
            idx = block[:, None] - self.horizon - lag_off[None, :]  # (B, lags)
            X = buf[:, idx].reshape(S * block.size, self.lags)
            if not np.isfinite(X).all():  # a diverged forecast: keep it diverged
                pred = np.full(S * block.size, np.inf)
                ok = np.isfinite(X).all(axis=1)
                if ok.any():
                    pred[ok] = _raw_predict(self.regressor, X[ok])
            else:
                pred = _raw_predict(self.regressor, X)
            pred[~np.isfinite(pred)] = np.inf
            buf[:, block] = pred.reshape(S, block.size)
            pos = block[-1] + 1
        return buf[:, L:]


class DirectForecaster:
    """One regressor per horizon, each trained on ``embed(series, lags, delay, h)``.

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
        if not callable(factory):
            raise InvalidInput(f"factory must be a callable returning a regressor, got {factory!r}")
        try:
            horizons = tuple(horizons)
        except TypeError:
            raise InvalidInput(f"horizons must be a sequence of ints, got {horizons!r}") from None
        if not horizons:
            raise InvalidInput("horizons is empty; pass at least one forecast horizon")
        self.factory, self.horizons, self.lags, self.delay = (
            factory,
            tuple(check_positive_int("each horizon", h, maximum=MAX_ENTRIES) for h in horizons),
            check_positive_int("lags", lags, maximum=MAX_ENTRIES),
            check_positive_int("delay", delay, maximum=MAX_ENTRIES),
        )
        self.models_: dict[int, Any] = {}

    def fit_series(self, series: object) -> DirectForecaster:
        for h in self.horizons:
            X, y = embed(series, self.lags, self.delay, h)
            self.models_[h] = self.factory().fit(X, y)
        return self

    def forecast_at(self, context: object) -> dict[int, np.ndarray]:
        """``{h: (S,)}``: the value ``h`` steps after each context, per trained horizon."""
        if not self.models_:
            raise InvalidInput("DirectForecaster is not fitted yet; call fit_series(...) first")
        need = (self.lags - 1) * self.delay + 1
        c = _check_context(context, need)
        X = c[:, c.shape[1] - 1 - self.delay * np.arange(self.lags)]
        return {h: m.predict(X) for h, m in self.models_.items()}


# The largest spectral_radius, input_scaling and bias_scaling an ESN takes: tanh units are
# saturated far below this, and the weights stay finite (no float64 overflow in the draws).
_MAX_ESN_SCALE = 1e6


class ESN:
    """Echo state network (Jaeger's protocol) for one-step-ahead prediction of a scalar series.

    State update ``r(n+1) = (1 - leak) r(n) + leak tanh(W r(n) + W_in u(n+1) + b)`` with ``W``
    sparse (``connectivity``) Gaussian scaled to ``spectral_radius``, ``W_in`` uniform in
    ``±input_scaling``, ``b`` uniform in ``±bias_scaling``; ``u`` is the standardised series.
    Readout ``u(n+1) ~ w . [1, u(n), r(n)]`` by ridge regression after ``washout`` teacher-forced
    steps. ``forecast`` drives the reservoir with each context, then runs free, feeding back its
    output. float64 NumPy; everything random comes from ``seed``.

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
        seed: int = 0,
    ) -> None:
        if isinstance(units, bool) or not isinstance(units, int) or not 1 <= units <= 5000:
            raise InvalidInput(
                f"units must be an int in 1..5000 (the reservoir's eigenvalues cost units^3), "
                f"got {units!r}"
            )
        leak = check_number("leak", leak)
        connectivity = check_number("connectivity", connectivity)
        # the reservoir saturates (tanh = +-1) long before these caps; beyond them the random
        # draws and the scaled weights would overflow float64
        spectral_radius = check_number(
            "spectral_radius", spectral_radius, minimum=0.0, maximum=_MAX_ESN_SCALE
        )
        ridge = _ridge(ridge)
        if not 0 < leak <= 1 or not 0 < connectivity <= 1:
            raise InvalidInput(
                f"need 0 < leak <= 1 and 0 < connectivity <= 1, got leak={leak}, "
                f"connectivity={connectivity}"
            )
        # + 0.0 turns -0.0 into 0.0 (numpy's uniform(0.0, -0.0) refuses high < low)
        input_scaling = (
            check_number("input_scaling", input_scaling, minimum=0.0, maximum=_MAX_ESN_SCALE) + 0.0
        )
        bias_scaling = (
            check_number("bias_scaling", bias_scaling, minimum=0.0, maximum=_MAX_ESN_SCALE) + 0.0
        )
        spectral_radius += 0.0
        self.units, self.spectral_radius, self.leak = units, spectral_radius, leak
        self.input_scaling, self.bias_scaling = input_scaling, bias_scaling
        self.connectivity, self.ridge, self.washout, self.seed = (
            connectivity,
            ridge,
            check_int("washout", washout, minimum=0, maximum=MAX_STEPS),
            check_seed(seed),
        )
        rng = np.random.default_rng(self.seed)
        W = rng.standard_normal((units, units)) * (rng.random((units, units)) < connectivity)
        rho = float(np.max(np.abs(np.linalg.eigvals(W)))) if units > 1 else float(abs(W[0, 0]))
        self.W = W * (self.spectral_radius / rho) if rho > 0 else W
        self.W_in = rng.uniform(-self.input_scaling, self.input_scaling, size=units)
        self.b = rng.uniform(-self.bias_scaling, self.bias_scaling, size=units)
        self.W_out: np.ndarray | None = None

    def _run(self, u: np.ndarray, r: np.ndarray) -> np.ndarray:
        """Teacher-forced states: ``u (S, T)``, ``r (S, N)`` -> states ``(S, T, N)`` (after each input)."""
        S, T = u.shape
        out = np.empty((S, T, self.units))
        WT, a = self.W.T, self.leak
        for t in range(T):
            pre = r @ WT + u[:, t : t + 1] * self.W_in + self.b
            r = np.tanh(pre) if a == 1.0 else (1 - a) * r + a * np.tanh(pre)
            out[:, t] = r
        return out

    def fit_series(self, series: object) -> ESN:
        x = as_series(series)
        check_entries(x.size * (self.units + 2), "the ESN's training states")
        if x.size <= self.washout + 2:
            raise InvalidInput(
                f"the series ({x.size} points) must be longer than washout + 2 = {self.washout + 2}"
            )
        self.mean_, sd = float(x.mean()), float(x.std())
        self.std_ = sd if sd > 0 else 1.0
        u = (x - self.mean_) / self.std_
        states = self._run(u[None, :-1], np.zeros((1, self.units)))[0]
        F = np.hstack([np.ones((u.size - 1, 1)), u[:-1, None], states])[self.washout :]
        target = u[1:][self.washout :]
        self.W_out = _finite_coef(_ridge_solve(F, target, self.ridge), "the ESN readout")
        self.train_nrmse_ = float(np.sqrt(np.mean((F @ self.W_out - target) ** 2)))
        return self

    def forecast(self, context: object, steps: int) -> np.ndarray:
        _fitted(self, "W_out")
        assert self.W_out is not None
        c = _check_context(context, 1)
        steps = check_positive_int("steps", steps, maximum=MAX_ENTRIES)
        check_entries(c.shape[0] * max(steps, c.shape[1] * self.units), "the ESN forecast")
        with np.errstate(over="ignore", invalid="ignore"):
            return self._forecast(c, steps)

    def _forecast(self, c: np.ndarray, steps: int) -> np.ndarray:
        assert self.W_out is not None
        u = (c - self.mean_) / self.std_
        S = c.shape[0]
        r = self._run(u, np.zeros((S, self.units)))[:, -1]
        w0, wu, wr = self.W_out[0], self.W_out[1], self.W_out[2:]
        last = u[:, -1]
        out = np.empty((S, steps))
        WT, a = self.W.T, self.leak
        for k in range(steps):
            y = w0 + wu * last + r @ wr
            out[:, k] = y
            pre = r @ WT + y[:, None] * self.W_in + self.b
            r = np.tanh(pre) if a == 1.0 else (1 - a) * r + a * np.tanh(pre)
            last = y
        return self.mean_ + self.std_ * out
