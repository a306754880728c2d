"""Predictors recover known linear / quadratic systems; gradients against autograd; forecasting."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import nngeom as ng
from nngeom import InvalidInput
from nngeom.chaos import predictors as P


def _linear_data(seed=0, n=300, d=4):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    w = rng.normal(size=d)
    return X, 0.7 + X @ w, rng


def test_linear_ar_lstsq_and_lms_recover_linear_map():
    X, y, rng = _linear_data()
    Xq = rng.normal(size=(50, 4))
    w = np.linalg.lstsq(np.hstack([np.ones((300, 1)), X]), y, rcond=None)[0]
    exact = w[0] + Xq @ w[1:]
    assert np.allclose(ng.chaos.LinearAR().fit(X, y).predict(Xq), exact, atol=1e-10)
    lms = ng.chaos.LinearAR("lms", mu=0.5, epochs=60).fit(X, y)
    assert np.allclose(lms.predict(Xq), exact, atol=1e-6)


def test_polynomial_and_nvar_recover_logistic_map_exactly():
    x = ng.chaos.logistic_map(400, seed=0)
    X, y = ng.chaos.embed(x, lags=1, delay=1, horizon=1)
    q = np.linspace(0.01, 0.99, 37)[:, None]
    parabola = 4 * q[:, 0] * (1 - q[:, 0])
    for model in (ng.chaos.Polynomial(2), ng.chaos.Polynomial(3), ng.chaos.NVAR(ridge=0.0)):
        assert np.allclose(model.fit(X, y).predict(q), parabola, atol=1e-9)
    assert np.allclose(ng.chaos.NVAR(ridge=1e-10).fit(X, y).predict(q), parabola, atol=1e-6)


def test_polynomial_features_count_and_values():
    Z = np.array([[2.0, 3.0]])
    F = P.polynomial_features(Z, 2)
    assert list(F[0]) == [1.0, 2.0, 3.0, 4.0, 6.0, 9.0]
    assert P.polynomial_features(np.ones((1, 4)), 3).shape == (1, 35)  # C(7, 3)


def test_local_linear_exact_on_affine_data_and_brute_force():
    X, y, rng = _linear_data(1)
    Xq = rng.normal(size=(20, 4)) * 0.5
    ll = ng.chaos.LocalLinear(k=12, ridge=0.0).fit(X, y)
    assert np.allclose(ll.predict(Xq), ng.chaos.LinearAR().fit(X, y).predict(Xq), atol=1e-9)
    # on a nonlinear target: brute-force neighbours and least squares
    y2 = np.sin(X[:, 0]) + X[:, 1] ** 2
    ll = ng.chaos.LocalLinear(k=15, ridge=1e-3).fit(X, y2)
    got = ll.predict(Xq)
    Z = (X - X.mean(0)) / X.std(0)
    Q = (Xq - X.mean(0)) / X.std(0)
    for i in range(Xq.shape[0]):
        nb = np.argsort(((Z - Q[i]) ** 2).sum(1))[:15]
        A = np.hstack([np.ones((15, 1)), Z[nb] - Q[i]])
        pen = np.diag([0.0, 1e-3, 1e-3, 1e-3, 1e-3])
        w = np.linalg.solve(A.T @ A + pen, A.T @ y2[nb])
        assert got[i] == pytest.approx(w[0], abs=1e-9)


@settings(max_examples=15)
@given(seed=st.integers(0, 10_000), h1=st.integers(1, 6), h2=st.integers(1, 6))
def test_mlp_loss_grad_matches_autograd(seed, h1, h2):
    rng = np.random.default_rng(seed)
    X, y = rng.normal(size=(17, 3)), rng.normal(size=17)
    net = ng.mlp((3, h1, h2, 1), "sigmoid", seed=seed, dtype=torch.float64)
    params = list(net.parameters())
    theta = np.concatenate([p.detach().numpy().ravel() for p in params])
    loss, grad = P.mlp_loss_grad(theta, [tuple(p.shape) for p in params], X, y)
    out = net(torch.from_numpy(X))[:, 0]
    ref = torch.mean((out - torch.from_numpy(y)) ** 2)
    ref.backward()
    ref_grad = np.concatenate([p.grad.numpy().ravel() for p in params])
    assert loss == pytest.approx(float(ref.detach()), rel=1e-12)
    assert np.allclose(grad, ref_grad, rtol=1e-10, atol=1e-13)


def test_mlp_learns_logistic_map():
    x = ng.chaos.logistic_map(300, seed=1)
    X, y = ng.chaos.embed(x, lags=1, delay=1, horizon=1)
    m = ng.chaos.LapedesFarberMLP(hidden=(5, 5), max_iter=800, restarts=2, seed=0).fit(X, y)
    q = np.linspace(0.02, 0.98, 50)[:, None]
    assert ng.chaos.nrmse(4 * q[:, 0] * (1 - q[:, 0]), m.predict(q)) < 2e-2
    assert len(m.restart_losses_) == 2 and m.train_loss_ == min(m.restart_losses_)
    # predict == the torch model on the standardised scale
    mean, std = m.target_scale
    with torch.no_grad():
        direct = m.model_(torch.from_numpy(m.standardize(q)))[:, 0].numpy()
    assert np.allclose(m.predict(q), mean + std * direct)


def test_mlp_adam_path_runs():
    X, y, _ = _linear_data(2, n=64, d=2)
    m0 = ng.chaos.LapedesFarberMLP(hidden=(4, 4), optimizer="adam", max_iter=1).fit(X, y)
    m = ng.chaos.LapedesFarberMLP(hidden=(4, 4), optimizer="adam", max_iter=40, lr=0.05).fit(X, y)
    assert m.train_loss_ < 0.5 * m0.train_loss_


def test_iterated_forecaster_follows_exact_model():
    x = ng.chaos.logistic_map(300, seed=4)
    f = ng.chaos.IteratedForecaster(ng.chaos.Polynomial(2), lags=1, delay=1, horizon=1).fit_series(
        x
    )
    ctx, truth = ng.chaos.contexts(x, [100, 150, 200], f.context_length, 8)
    assert np.allclose(f.forecast(ctx, 8), truth, atol=1e-6)


def test_iterated_blocks_equal_manual_iteration():
    # horizon = delay = 2, lags = 2: x(t+2) = g(x(t), x(t-2)) iterated by hand
    rng = np.random.default_rng(0)
    series = rng.normal(size=40)
    model = ng.chaos.LinearAR().fit(*ng.chaos.embed(series, 2, 2, 2))
    f = ng.chaos.IteratedForecaster(model, lags=2, delay=2, horizon=2)
    ctx = series[None, 10:14]
    buf = list(ctx[0])
    for _ in range(6):
        s = len(buf)
        buf.append(float(model.predict(np.array([[buf[s - 2], buf[s - 4]]]))[0]))
    assert np.allclose(f.forecast(ctx, 6)[0], buf[4:], atol=1e-12)


def test_direct_forecaster_linear_recurrence():
    # x_t = cos(w t): x(t+h) = a_h x(t) + b_h x(t-1) exactly for every h
    t = np.arange(300)
    x = np.cos(0.3 * t)
    d = ng.chaos.DirectForecaster(
        ng.chaos.LinearAR, horizons=(1, 5, 13), lags=2, delay=1
    ).fit_series(x)
    ctx, truth = ng.chaos.contexts(x, [50, 120], 2, 13)
    out = d.forecast_at(ctx)
    for h in (1, 5, 13):
        assert np.allclose(out[h], truth[:, h - 1], atol=1e-9)


def test_esn_free_runs_a_sine():
    x = np.sin(2 * np.pi * np.arange(1200) / 25.0)
    esn = ng.chaos.ESN(units=100, ridge=1e-10, seed=0).fit_series(x[:800])
    ctx, truth = ng.chaos.contexts(x, [900, 1000], 100, 50)
    assert ng.chaos.nrmse(truth, esn.forecast(ctx, 50)) < 1e-2
    assert np.array_equal(esn.forecast(ctx, 5), esn.forecast(ctx, 5))
    short = x[:200]
    assert np.array_equal(
        ng.chaos.ESN(50, seed=3).fit_series(short).W_, ng.chaos.ESN(50, seed=3).fit_series(short).W_
    )


def test_esn_regressor_on_rows_matches_fit_series():
    """fit(X, y) on the rows (x(n), x(n+1)) drives the same reservoir as fit_series(x): the
    one-step predictions after the washout agree (the scalings differ by one value)."""
    x = ng.chaos.mackey_glass(700, seed=1)
    by_series = ng.chaos.ESN(60, washout=50, seed=2).fit_series(x[:600])
    X, y = x[:599, None], x[1:600]
    by_rows = ng.chaos.ESN(60, washout=50, seed=2).fit(X, y)
    assert np.array_equal(by_rows.W_, by_series.W_) and np.array_equal(by_rows.b_, by_series.b_)
    np.testing.assert_allclose(by_rows.predict(X)[50:], by_series.predict(X)[50:], atol=1e-3)
    assert by_series.n_features_in_ == 1
    assert ng.chaos.nrmse(y[50:], by_rows.predict(X)[50:]) < 0.05
    with pytest.raises(InvalidInput, match="one input"):
        ng.chaos.ESN(20, washout=5).fit(np.ones((30, 2)), np.ones(30)).forecast(x[None, :10], 2)


def test_make_regressor_and_errors():
    for name in P.REGRESSORS:
        assert hasattr(ng.chaos.make_regressor(name), "fit")
    with pytest.raises(InvalidInput, match="unknown predictor"):
        ng.chaos.make_regressor("gpt")
    with pytest.raises(InvalidInput, match="not fitted"):
        ng.chaos.Polynomial(2).predict(np.ones((3, 2)))
    X, y, _ = _linear_data()
    m = ng.chaos.LinearAR().fit(X, y)
    with pytest.raises(InvalidInput, match="columns"):
        m.predict(np.ones((3, 2)))
    with pytest.raises(InvalidInput, match="NaN"):
        m.fit(np.full((5, 4), np.nan), np.ones(5))
    with pytest.raises(InvalidInput, match="rows"):
        m.fit(X, y[:10])
    with pytest.raises(InvalidInput, match="degree"):
        ng.chaos.Polynomial(0).fit(X, y)
    with pytest.raises(InvalidInput, match="k"):
        ng.chaos.LocalLinear(k=50).fit(X[:10], y[:10])
    with pytest.raises(InvalidInput, match="hidden"):
        ng.chaos.LapedesFarberMLP(hidden=(0, 3)).fit(X, y)
    with pytest.raises(InvalidInput, match="units"):
        ng.chaos.ESN(units=0).fit(X, y)
    with pytest.raises(InvalidInput, match="context"):
        ng.chaos.IteratedForecaster(m, 4, 6, 6).forecast(np.ones((2, 5)), 3)


def test_mlp_screened_restarts_continue_the_best():
    x = ng.chaos.logistic_map(200, seed=2)
    X, y = ng.chaos.embed(x, lags=1, delay=1, horizon=1)
    m = ng.chaos.LapedesFarberMLP((4, 4), max_iter=400, restarts=3, screen_iter=50, seed=1).fit(
        X, y
    )
    assert len(m.restart_losses_) == 3
    assert m.train_loss_ <= min(m.restart_losses_)
    assert 0 < m.n_iter_ <= 400
    with pytest.raises(InvalidInput, match="screen_iter"):
        ng.chaos.LapedesFarberMLP(screen_iter=0).fit(X, y)
