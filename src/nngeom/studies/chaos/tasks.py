"""The chaos study's tasks: typed configs, their results, and how each one runs.

Every Mackey-Glass task generates the same layout of the series (:data:`SERIES_LENGTH` samples
every time unit after a transient, the constant history drawn from the task's ``seed``):

* the training segment ends at series index :data:`TEST_START` (its ``n_train`` rows, inputs and
  targets, lie before it), so every training size shares one test segment;
* the test segment: ``n_test`` delay-embedded rows from :data:`TEST_START` on (the direct
  ``horizon``-step error), and the free-running forecasts from ``starts`` start points spaced
  :data:`START_SPACING` apart after it, each driven by the :data:`CONTEXT` values before it.

Errors are NRMSE: RMS error over the std of the whole generated series (Lapedes & Farber's
normalisation, population std).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..._errors import StudyError
from .._typed import Result, Task

__all__ = [
    "PREDICTORS",
    "LABELS",
    "Forecast",
    "ForecastResult",
    "DirectMLP",
    "DirectResult",
    "EmbeddingCheck",
    "EmbeddingResult",
    "IntegratorOrder",
    "OrderResult",
    "LogisticMap",
    "LogisticResult",
    "Laser",
    "LaserResult",
    "window_lags",
]

HORIZON = 6  # the paper's prediction time T
DELAY = 6  # the paper's spacing of the delay coordinates
HIDDEN = (10, 10)  # the paper's two sigmoid hidden layers
TEST_START = 8100  # series index where every Mackey-Glass test segment starts
CONTEXT = 100  # values driving a forecast (the ESN's warm-up; >= every embedding's window)
START_SPACING = 25  # time units between the start points of free-running forecasts
SERIES_LENGTH = 12_200  # samples of every Mackey-Glass series (its std is the NRMSE's scale)
VALID_THRESHOLD = 0.4  # a forecast is valid while |error| / std <= this (valid prediction time)
DIVERGED = 1e300  # the stored value of an error that is not finite (JSON has no inf)
# Share of the training rows (at least MIN_VALIDATION_ROWS) held out, last in time, to pick the
# hyper-parameters of the ESN and of local linear prediction.
VALIDATION_SHARE = 0.2
MIN_VALIDATION_ROWS = 50
# The validation grids: ESN leak rate x ridge x spectral radius; local linear neighbours (as
# multiples of the affine fit's d + 1 parameters) x ridge.
ESN_GRID = {"leak": (1.0, 0.5), "ridge": (1e-8, 1e-6, 1e-4), "spectral_radius": (0.8, 0.95)}
LOCAL_GRID = {"k_per_parameter": (2, 4, 8, 16), "ridge": (1e-6, 1e-3)}
NVAR_RIDGE = 1e-6
ESN_INPUT_SCALING = 0.5
SIG = 6  # significant digits kept of per-row squared errors
# A net whose training MSE (standardised target) ends below this has converged whatever its
# last relative fall (an RMS error of 1e-4 of the target's std).
MSE_FLOOR = 1e-8

PREDICTORS = ("linear", "lms", "poly3", "local", "nvar", "mlp", "esn")
LABELS = {
    "linear": "linear AR (least squares)",
    "lms": "linear AR (LMS / Widrow-Hoff)",
    "poly3": "cubic polynomial (GVW)",
    "local": "local linear (Farmer-Sidorowich)",
    "nvar": "NVAR (quadratic, ridge)",
    "mlp": "Lapedes-Farber MLP (4-10-10-1 sigmoid)",
    "esn": "echo state network",
}


def window_lags(tau: float, delay: int = DELAY) -> int:
    """The embedding rule: the fewest delay coordinates spaced ``delay`` apart whose window
    reaches back one delay of the equation, ``(lags - 1) delay >= tau`` (the Mackey-Glass
    right-hand side at time ``s`` needs ``x(s - tau)``). tau=17 -> 4 (the paper's x(t), x(t-6),
    x(t-12), x(t-18)); tau=30 -> 6."""
    return 1 + math.ceil(tau / delay - 1e-9)


def _finite(v: float) -> float:
    return float(v) if math.isfinite(v) else DIVERGED


def _round(a: np.ndarray) -> tuple[float, ...]:
    return tuple(float(f"{v:.{SIG}g}") if math.isfinite(v) else DIVERGED for v in a)


# ------------------------------------------------------------------------------ the MLP


@dataclass(frozen=True)
class MLPFit:
    """A trained Lapedes-Farber net and whether it met the plateau criterion."""

    model: Any
    train_mse: float  # standardised-target MSE after the whole budget
    loss_drop: float  # relative fall of the training MSE over the last `check` iterations
    converged: bool
    iterations: int


def fit_mlp(
    X: np.ndarray,
    y: np.ndarray,
    *,
    hidden: tuple[int, ...],
    iterations: int,
    restarts: int,
    screen: int | None,
    check: int,
    plateau_rtol: float,
    seed: int,
    mse_floor: float = MSE_FLOOR,
) -> MLPFit:
    """Train the net by L-BFGS for ``iterations`` in all: ``restarts`` screened for ``screen``
    iterations each, the best continued, its last ``check`` iterations a separate L-BFGS run.
    Converged: the training MSE (standardised target) fell by less than ``plateau_rtol`` of
    itself over those last iterations, or ended below ``mse_floor``."""
    from ...chaos import LapedesFarberMLP
    from ...chaos._mlp import flat_parameters, lbfgs_fit, mlp_loss_grad

    first = iterations - check
    if first < 1 or check < 1:
        raise StudyError(f"MLP budget {iterations} must exceed its check window {check}")
    use_screen = screen if screen is not None and screen < first else None
    model = LapedesFarberMLP(
        hidden, max_iter=first, restarts=restarts, screen_iter=use_screen, seed=seed
    ).fit(X, y)
    Z = model.standardize(X)
    mean, std = model.target_scale
    t = (y - mean) / std
    theta, shapes = flat_parameters(model.model_)
    before = mlp_loss_grad(theta, shapes, Z, t)[0]
    after, done = lbfgs_fit(model.model_, Z, t, check)
    drop = (before - after) / before if before > 0 else 0.0
    converged = drop < plateau_rtol or after < mse_floor
    return MLPFit(model, float(after), float(drop), bool(converged), first + done)


# ------------------------------------------------------------------------- the series


def _series(tau: float, seed: int) -> tuple[np.ndarray, float]:
    from ...chaos import mackey_glass

    x = mackey_glass(SERIES_LENGTH, tau, seed=seed)
    return x, float(x.std())


def start_points(n: int) -> np.ndarray:
    """Series indices of the ``n`` free-running start points (the same for every task)."""
    return TEST_START + CONTEXT + START_SPACING * np.arange(n)


def _check_layout(n_train: int, span: int, n_test: int, starts: int, steps: int) -> None:
    if n_train + span > TEST_START:
        raise StudyError(f"{n_train} training rows do not fit before index {TEST_START}")
    end = max(TEST_START + span + n_test, TEST_START + CONTEXT + START_SPACING * starts + steps)
    if end >= SERIES_LENGTH:
        raise StudyError(
            f"the test layout needs {end} samples, more than the series' {SERIES_LENGTH}"
        )


# ------------------------------------------------------------------ Mackey-Glass forecast


@dataclass(frozen=True)
class ForecastResult(Result):
    """One predictor on one Mackey-Glass series (see :class:`Forecast`)."""

    nrmse_T: float  # direct horizon-step NRMSE on the test rows
    sq_err: tuple[float, ...]  # per test row, (error / std)^2
    curve: tuple[float, ...]  # NRMSE of the free-running forecast at steps 1..steps
    valid_steps: tuple[int, ...]  # per start: steps before |error|/std first exceeds the threshold
    censored: tuple[bool, ...]  # per start: never exceeded it within `steps`
    chosen: str  # the hyper-parameters picked on the validation rows ("" if none)
    val_nrmse: float | None  # their validation NRMSE
    converged: bool | None  # MLP: met the plateau criterion; None: not trained iteratively
    train_mse: float | None
    loss_drop: float | None
    iterations: int | None
    fit_seconds: float
    seconds: float
    dec_target: tuple[float, ...] = ()
    dec_xt: tuple[float, ...] = ()
    dec_xt6: tuple[float, ...] = ()
    dec_contrib: tuple[tuple[float, ...], ...] = ()  # per second-layer unit, in series units
    dec_offset: float = 0.0


@dataclass(frozen=True)
class Forecast(Task):
    """One predictor trained on ``n_train`` rows of Mackey-Glass(``tau``), inputs ``lags`` delay
    coordinates ``delay`` apart, target ``horizon`` ahead; tested on the fixed test segment
    (direct error on ``n_test`` rows; free-running from ``starts`` points for ``steps`` steps,
    the predictor iterated -- the ESN runs free on its own output)."""

    tau: int
    predictor: str
    seed: int
    n_train: int
    lags: int
    delay: int = DELAY
    horizon: int = HORIZON
    n_test: int = 500
    starts: int = 0
    steps: int = 0
    mlp_iter: int = 40_000
    mlp_restarts: int = 5
    mlp_screen: int | None = 2000
    mlp_check: int = 4000
    plateau_rtol: float = 0.05
    esn_units: int = 400
    decompose: bool = False

    def run(self) -> ForecastResult:
        from threadpoolctl import threadpool_limits

        if self.predictor not in PREDICTORS:
            raise StudyError(f"unknown predictor {self.predictor!r}; use one of {PREDICTORS}")
        with threadpool_limits(1):  # small matrices: BLAS threads only contend with workers
            return _run_forecast(self)


def _regressor(name: str) -> Any:
    from ...chaos import NVAR, LinearAR, Polynomial

    if name == "linear":
        return LinearAR()
    if name == "lms":
        return LinearAR("lms")
    if name == "poly3":
        return Polynomial(3)
    if name == "nvar":
        return NVAR(ridge=NVAR_RIDGE)
    raise StudyError(f"no fixed regressor called {name!r}")


@dataclass(frozen=True)
class _Embedding:
    lags: int
    delay: int
    horizon: int
    n_train: int


def _inner_split(seg: np.ndarray, t: _Embedding) -> Any:
    """The training segment split into fitting rows and the last validation rows."""
    from ...chaos import split

    span = (t.lags - 1) * t.delay + t.horizon
    n_val = max(int(VALIDATION_SHARE * t.n_train), MIN_VALIDATION_ROWS)
    n_fit = t.n_train - n_val - span
    if n_fit < 2 * (t.lags + 1):
        raise StudyError(f"{t.n_train} training rows leave too few to fit after validation")
    return split(seg, n_fit, n_val, t.lags, t.delay, t.horizon)


def _fit_task_mlp(t: Any, sp: Any) -> Any:
    """The Lapedes-Farber MLP of task ``t`` (a Forecast, DirectMLP or Laser) fitted on its training rows
    with the task's budget (restarts screened, the best continued)."""
    return fit_mlp(
        sp.X_train,
        sp.y_train,
        hidden=HIDDEN,
        iterations=t.mlp_iter,
        restarts=t.mlp_restarts,
        screen=t.mlp_screen,
        check=t.mlp_check,
        plateau_rtol=t.plateau_rtol,
        seed=t.seed,
    )


def _fit_predictor(
    t: Any, seg: np.ndarray, sp: Any, emb: _Embedding
) -> tuple[Any, Any, str, float | None]:
    """Task ``t``'s predictor (a Forecast or Laser) fitted on the training segment ``seg`` and
    rows ``sp``: ``(ESN or regressor, the MLP's fit or None, the hyperparameters chosen on
    validation or "", their validation NRMSE or None)``."""
    if t.predictor == "esn":
        esn, chosen, val = _pick_esn(seg, emb, t.esn_units, t.seed)
        esn.fit_series(seg)
        return esn, None, chosen, val
    if t.predictor == "mlp":
        fit = _fit_task_mlp(t, sp)
        return fit.model, fit, "", None
    if t.predictor == "local":
        reg, chosen, val = _pick_local(seg, emb)
        return reg.fit(sp.X_train, sp.y_train), None, chosen, val
    return _regressor(t.predictor).fit(sp.X_train, sp.y_train), None, "", None


def _pick_local(seg: np.ndarray, t: _Embedding) -> tuple[Any, str, float]:
    from ...chaos import LocalLinear, nrmse

    inner = _inner_split(seg, t)
    scale = float(seg.std())
    best: tuple[float, int, float] | None = None
    for mult in LOCAL_GRID["k_per_parameter"]:
        k = mult * (t.lags + 1)
        if k > inner.X_train.shape[0]:
            continue
        for ridge in LOCAL_GRID["ridge"]:
            pred = LocalLinear(k, ridge=ridge).fit(inner.X_train, inner.y_train)
            e = nrmse(inner.y_test, pred.predict(inner.X_test), scale=scale)
            if best is None or e < best[0]:
                best = (e, k, ridge)
    assert best is not None
    e, k, ridge = best
    return LocalLinear(k, ridge=ridge), f"k={k}, ridge={ridge:g}", e


def _esn_t(esn: Any, x: np.ndarray, t_idx: np.ndarray, horizon: int) -> np.ndarray:
    """The ESN's ``horizon``-step prediction for rows whose last input is ``x[t_idx]``."""
    from ...chaos import contexts

    ctx, _ = contexts(x, t_idx, CONTEXT, 0)
    return esn.forecast(ctx, horizon)[:, horizon - 1]


def _pick_esn(seg: np.ndarray, t: _Embedding, units: int, seed: int) -> tuple[Any, str, float]:
    from ...chaos import ESN, nrmse

    inner = _inner_split(seg, t)
    scale = float(seg.std())
    rows = inner.test_index[0][:, 0]
    keep = rows >= CONTEXT - 1
    best: tuple[float, dict[str, float]] | None = None
    for leak in ESN_GRID["leak"]:
        for ridge in ESN_GRID["ridge"]:
            for rho in ESN_GRID["spectral_radius"]:
                hp = {"leak": leak, "ridge": ridge, "spectral_radius": rho}
                esn = ESN(units, input_scaling=ESN_INPUT_SCALING, seed=seed, **hp)
                esn.fit_series(seg[: inner.boundary])
                pred = _esn_t(esn, seg, rows[keep], t.horizon)
                e = nrmse(inner.y_test[keep], pred, scale=scale)
                if best is None or e < best[0]:
                    best = (e, hp)
    assert best is not None
    e, hp = best
    esn = ESN(units, input_scaling=ESN_INPUT_SCALING, seed=seed, **hp)
    text = f"leak={hp['leak']:g}, ridge={hp['ridge']:g}, spectral radius={hp['spectral_radius']:g}"
    return esn, text, e


def _valid(truth: np.ndarray, free: np.ndarray, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Per start: the steps before ``|error| / scale`` first exceeds the threshold, and whether
    it never did (censored at the forecast's length)."""
    with np.errstate(over="ignore", invalid="ignore"):
        bad = ~(np.abs(free - truth) / scale <= VALID_THRESHOLD)
    ever = bad.any(axis=1)
    steps = np.where(ever, bad.argmax(axis=1), truth.shape[1])
    return steps.astype(int), ~ever


def _run_forecast(t: Forecast) -> ForecastResult:
    from ...chaos import IteratedForecaster, contexts, nrmse, nrmse_curve, split

    t0 = time.perf_counter()
    x, scale = _series(t.tau, t.seed)
    span = (t.lags - 1) * t.delay + t.horizon
    _check_layout(t.n_train, span, t.n_test, t.starts, t.steps)
    start = TEST_START - span - t.n_train
    sp = split(x, t.n_train, t.n_test, t.lags, t.delay, t.horizon, start=start)
    seg = x[start : sp.boundary]  # the training segment: every value a training row touches
    emb = _Embedding(t.lags, t.delay, t.horizon, t.n_train)
    t_fit = time.perf_counter()
    model, fit, chosen, val = _fit_predictor(t, seg, sp, emb)
    fit_seconds = time.perf_counter() - t_fit
    if t.predictor == "esn":
        pred = _esn_t(model, x, sp.test_index[0][:, 0], t.horizon)
        forecaster: Any = model
    else:
        pred = model.predict(sp.X_test)
        forecaster = IteratedForecaster(model, t.lags, t.delay, t.horizon)
    with np.errstate(over="ignore", invalid="ignore"):
        sq = ((pred - sp.y_test) / scale) ** 2
    curve: tuple[float, ...] = ()
    valid: tuple[int, ...] = ()
    cens: tuple[bool, ...] = ()
    if t.starts and t.steps:
        ctx, truth = contexts(x, start_points(t.starts), CONTEXT, t.steps)
        free = forecaster.forecast(ctx, t.steps)
        curve = tuple(_finite(v) for v in nrmse_curve(truth, free, scale=scale))
        vs, cs = _valid(truth, free, scale)
        valid, cens = tuple(int(v) for v in vs), tuple(bool(c) for c in cs)
    dec: dict[str, Any] = {}
    if t.decompose and fit is not None:
        dec = _decomposition(fit.model, sp)
    return ForecastResult(
        nrmse_T=_finite(nrmse(sp.y_test, pred, scale=scale)),
        sq_err=_round(sq),
        curve=curve,
        valid_steps=valid,
        censored=cens,
        chosen=chosen,
        val_nrmse=None if val is None else _finite(val),
        converged=None if fit is None else fit.converged,
        train_mse=None if fit is None else fit.train_mse,
        loss_drop=None if fit is None else fit.loss_drop,
        iterations=None if fit is None else fit.iterations,
        fit_seconds=fit_seconds,
        seconds=time.perf_counter() - t0,
        **dec,
    )


def _decomposition(model: Any, sp: Any, rows: int = 300) -> dict[str, Any]:
    from ...chaos import decompose

    seg = sp.X_test[:rows]
    contrib, bias = decompose(model.model_, model.standardize(seg))
    mean, std = model.target_scale
    return {
        "dec_target": _round(sp.y_test[:rows]),
        "dec_xt": _round(seg[:, 0]),
        "dec_xt6": _round(seg[:, 1]),
        "dec_contrib": tuple(_round(std * c) for c in contrib.T),
        "dec_offset": float(mean + std * bias),
    }


# ------------------------------------------------------------------ direct long horizons


@dataclass(frozen=True)
class DirectResult(Result):
    nrmse: float  # at the free-running start points, `horizon` steps ahead
    converged: bool
    train_mse: float
    loss_drop: float
    iterations: int
    seconds: float


@dataclass(frozen=True)
class DirectMLP(Task):
    """The MLP trained directly for ``horizon`` (one net per horizon), evaluated at the same
    start points as the iterated forecasts of :class:`Forecast`."""

    tau: int
    seed: int
    n_train: int
    lags: int
    horizon: int
    starts: int
    delay: int = DELAY
    mlp_iter: int = 40_000
    mlp_restarts: int = 5
    mlp_screen: int | None = 2000
    mlp_check: int = 4000
    plateau_rtol: float = 0.05

    def run(self) -> DirectResult:
        from threadpoolctl import threadpool_limits

        from ...chaos import contexts, nrmse, split

        t0 = time.perf_counter()
        with threadpool_limits(1):
            x, scale = _series(self.tau, self.seed)
            span = (self.lags - 1) * self.delay + self.horizon
            _check_layout(self.n_train, span, 1, self.starts, self.horizon)
            start = TEST_START - span - self.n_train
            sp = split(x, self.n_train, 1, self.lags, self.delay, self.horizon, start=start)
            fit = _fit_task_mlp(self, sp)
            ctx, truth = contexts(x, start_points(self.starts), CONTEXT, self.horizon)
            X = ctx[:, ctx.shape[1] - 1 - self.delay * np.arange(self.lags)]
            e = nrmse(truth[:, -1], fit.model.predict(X), scale=scale)
        return DirectResult(
            _finite(e),
            fit.converged,
            fit.train_mse,
            fit.loss_drop,
            fit.iterations,
            time.perf_counter() - t0,
        )


# ------------------------------------------------------------------ embedding diagnostics


@dataclass(frozen=True)
class EmbeddingResult(Result):
    fnn: tuple[float, ...]  # false-nearest-neighbour share for 1..max_dim coordinates
    ami_first_min: int  # first local minimum of the average mutual information (lag)


@dataclass(frozen=True)
class EmbeddingCheck(Task):
    """False nearest neighbours (Kennel et al. 1992: ratio 10, attractor size 2) of the
    training segment at ``delay``, and the first minimum of its average mutual information
    (8 equiprobable bins): the standard embedding diagnostics, beside the window rule."""

    tau: int
    seed: int
    n_train: int
    delay: int = DELAY
    max_dim: int = 8
    max_lag: int = 60

    def run(self) -> EmbeddingResult:
        x, _ = _series(self.tau, self.seed)
        span = (window_lags(self.tau, self.delay) - 1) * self.delay + HORIZON
        seg = x[TEST_START - self.n_train - span : TEST_START]  # the training segment
        return EmbeddingResult(
            tuple(false_neighbours(seg, self.delay, self.max_dim)),
            first_minimum(mutual_information(seg, self.max_lag)),
        )


def mutual_information(x: np.ndarray, max_lag: int, bins: int = 8) -> np.ndarray:
    """Average mutual information (nats) between ``x(t)`` and ``x(t + lag)``, lag 0..max_lag,
    from a histogram of ``bins`` equiprobable bins."""
    edges = np.quantile(x, np.linspace(0.0, 1.0, bins + 1))[1:-1]
    b = np.searchsorted(edges, x, side="right")
    out = np.empty(max_lag + 1)
    for lag in range(max_lag + 1):
        joint = np.zeros((bins, bins))
        np.add.at(joint, (b[: b.size - lag], b[lag:]), 1.0)
        p = joint / joint.sum()
        pa, pb = p.sum(axis=1), p.sum(axis=0)
        nz = p > 0
        out[lag] = float((p[nz] * np.log(p[nz] / np.outer(pa, pb)[nz])).sum())
    return out


def first_minimum(v: np.ndarray) -> int:
    """Index of the first local minimum of ``v`` after index 0 (the global one if none)."""
    for i in range(1, v.size - 1):
        if v[i] < v[i - 1] and v[i] <= v[i + 1]:
            return i
    return int(np.argmin(v[1:])) + 1


def false_neighbours(
    x: np.ndarray, delay: int, max_dim: int, rtol: float = 10.0, atol: float = 2.0
) -> list[float]:
    """Share of false nearest neighbours for 1..max_dim delay coordinates (Kennel et al. 1992)."""
    from scipy.spatial import cKDTree

    sd = float(x.std())
    out = []
    for m in range(1, max_dim + 1):
        n = x.size - m * delay
        idx = np.arange((m - 1) * delay, (m - 1) * delay + n)
        Y = np.stack([x[idx - j * delay] for j in range(m)], axis=1)
        nxt = x[idx + delay]
        d, j = cKDTree(Y).query(Y, k=2)
        d, j = d[:, 1], j[:, 1]
        ok = d > 0
        extra = np.abs(nxt - nxt[j])[ok]
        false = (extra / d[ok] > rtol) | (np.sqrt(d[ok] ** 2 + extra**2) / sd > atol)
        out.append(float(false.mean()) if ok.any() else math.nan)
    return out


# --------------------------------------------------------------------- integrator order


@dataclass(frozen=True)
class OrderResult(Result):
    steps: tuple[float, ...]
    errors: tuple[tuple[float, ...], ...]  # per tau
    orders: tuple[float, ...]  # per tau


@dataclass(frozen=True)
class IntegratorOrder(Task):
    """The measured convergence order of the Mackey-Glass integrator (max error over
    x(0..100) against a step of 1/128)."""

    taus: tuple[int, ...]
    scale: str = ""  # the run's scale, for the report's departures

    def run(self) -> OrderResult:
        from ...chaos import mackey_glass_convergence

        steps = (1.0, 0.5, 0.25, 0.125)
        errors, orders = [], []
        for tau in self.taus:
            r = mackey_glass_convergence(float(tau), t_end=100, steps=steps, reference_step=1 / 128)
            errors.append(tuple(float(e) for e in r.errors))
            orders.append(float(r.order))
        return OrderResult(steps, tuple(errors), tuple(orders))


# ------------------------------------------------------------------------- logistic map


@dataclass(frozen=True)
class LogisticResult(Result):
    grid: tuple[float, ...]
    learned: tuple[float, ...]
    train_x: tuple[float, ...]
    nrmse_map: float  # learned map vs the parabola on [0, 1], by the parabola's std there
    nrmse_test: float
    nrmse_test_poly2: float
    converged: bool
    loss_drop: float


@dataclass(frozen=True)
class LogisticMap(Task):
    """A 1-5-5-1 sigmoid net learns the logistic map x -> 4x(1-x) from ``n_train`` iterates."""

    seed: int
    n_train: int = 200
    iterations: int = 3000
    restarts: int = 2
    check: int = 300
    plateau_rtol: float = 0.05

    def run(self) -> LogisticResult:
        from threadpoolctl import threadpool_limits

        from ...chaos import Polynomial, embed, logistic_map, nrmse

        with threadpool_limits(1):
            x = logistic_map(self.n_train + 1 + 300, seed=self.seed)
            X, y = embed(x, 1, 1, 1)
            n = self.n_train
            fit = fit_mlp(
                X[:n],
                y[:n],
                hidden=(5, 5),
                iterations=self.iterations,
                restarts=self.restarts,
                screen=None,
                check=self.check,
                plateau_rtol=self.plateau_rtol,
                seed=self.seed,
            )
            grid = np.linspace(0.0, 1.0, 201)
            learned = fit.model.predict(grid[:, None])
            poly = Polynomial(2).fit(X[:n], y[:n])
            return LogisticResult(
                grid=_round(grid),
                learned=_round(learned),
                train_x=_round(X[:n, 0]),
                nrmse_map=_finite(nrmse(4 * grid * (1 - grid), learned)),
                nrmse_test=_finite(nrmse(y[n:], fit.model.predict(X[n:]))),
                nrmse_test_poly2=_finite(nrmse(y[n:], poly.predict(X[n:]))),
                converged=fit.converged,
                loss_drop=fit.loss_drop,
            )


# ----------------------------------------------------------------------- Santa Fe laser


@dataclass(frozen=True)
class LaserResult(Result):
    nrmse_1: float
    curve: tuple[float, ...]
    converged: bool | None
    fit_seconds: float
    ex_truth: tuple[float, ...] = ()
    ex_pred: tuple[float, ...] = ()
    ex_ctx: tuple[float, ...] = ()


@dataclass(frozen=True)
class Laser(Task):
    """One predictor on the Santa Fe laser series (real data; 8 lags, one step ahead), and its
    free-running forecast for 50 steps (not in the paper)."""

    predictor: str
    seed: int
    n_train: int
    mlp_iter: int = 40_000
    mlp_restarts: int = 5
    mlp_screen: int | None = 2000
    mlp_check: int = 4000
    plateau_rtol: float = 0.05
    esn_units: int = 400

    def run(self) -> LaserResult:
        from threadpoolctl import threadpool_limits

        with threadpool_limits(1):
            return _run_laser(self)


def _run_laser(t: Laser) -> LaserResult:
    from ...chaos import IteratedForecaster, contexts, nrmse, nrmse_curve, santafe_laser, split

    x = santafe_laser()
    lags, delay, h, steps = 8, 1, 1, 50
    scale = float(x.std())
    sp = split(x, t.n_train, 1000, lags, delay, h)
    starts = np.arange(sp.boundary + 200, sp.boundary + 1000 - steps, 25)
    ctx, truth = contexts(x, starts, 200, steps)
    t0 = time.perf_counter()
    emb = _Embedding(lags, delay, h, t.n_train)
    seg = x[: sp.boundary]
    model, fit, _, _ = _fit_predictor(t, seg, sp, emb)
    fit_s = time.perf_counter() - t0
    conv = None if fit is None else fit.converged
    if t.predictor == "esn":
        fc = model
        one = nrmse(truth[:, 0], fc.forecast(ctx, 1)[:, 0], scale=scale)
    else:
        one = nrmse(sp.y_test, model.predict(sp.X_test), scale=scale)
        fc = IteratedForecaster(model, lags, delay, h)
    free = fc.forecast(ctx, steps)
    curve = tuple(_finite(v) for v in nrmse_curve(truth, free, scale=scale))
    ex: dict[str, Any] = {}
    if t.predictor == "mlp":
        k = int(np.argmin(np.abs(starts - (sp.boundary + 500))))
        ex = {
            "ex_truth": _round(truth[k]),
            "ex_pred": _round(free[k]),
            "ex_ctx": _round(ctx[k, -50:]),
        }
    return LaserResult(_finite(one), curve, conv, fit_s, **ex)
