"""Embedding: no leakage, contiguous splits, exact rows, clear errors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import nngeom as ng
from nngeom import InvalidInput


@settings(max_examples=60)
@given(
    n=st.integers(2, 200),
    lags=st.integers(1, 5),
    delay=st.integers(1, 7),
    horizon=st.integers(1, 9),
)
def test_every_target_is_later_than_every_input(n, lags, delay, horizon):
    span = (lags - 1) * delay + horizon
    if n <= span:
        with pytest.raises(InvalidInput, match="too short"):
            ng.chaos.embed_indices(n, lags, delay, horizon)
        return
    inputs, targets = ng.chaos.embed_indices(n, lags, delay, horizon)
    assert inputs.shape == (n - span, lags) and targets.shape == (n - span,)
    assert (targets[:, None] > inputs).all()
    assert (targets - inputs.max(axis=1) == horizon).all()
    assert inputs.min() >= 0 and targets.max() <= n - 1
    series = np.arange(n, dtype=float) * 0.5
    X, y = ng.chaos.embed(series, lags, delay, horizon)
    # brute force: row r at time t has x(t - j delay) and x(t + horizon)
    for r in range(X.shape[0]):
        t = (lags - 1) * delay + r
        assert list(X[r]) == [series[t - j * delay] for j in range(lags)]
        assert y[r] == series[t + horizon]


@settings(max_examples=40)
@given(
    n_train=st.integers(1, 60),
    n_test=st.integers(1, 60),
    lags=st.integers(1, 4),
    delay=st.integers(1, 6),
    horizon=st.integers(1, 6),
    start=st.integers(0, 10),
)
def test_split_is_contiguous_and_disjoint(n_train, n_test, lags, delay, horizon, start):
    span = (lags - 1) * delay + horizon
    series = np.sin(np.arange(start + 2 * span + n_train + n_test + 3) * 0.3)
    sp = ng.chaos.split(series, n_train, n_test, lags, delay, horizon, start=start)
    tr_in, tr_t = sp.train_index
    te_in, te_t = sp.test_index
    assert sp.X_train.shape == (n_train, lags) and sp.X_test.shape == (n_test, lags)
    train_max = max(tr_in.max(), tr_t.max())
    test_min = min(te_in.min(), te_t.min())
    assert train_max < test_min
    assert sp.boundary == test_min
    assert np.array_equal(sp.X_train, series[tr_in]) and np.array_equal(sp.y_test, series[te_t])
    # rows are consecutive in time
    assert (np.diff(tr_t) == 1).all() and (np.diff(te_t) == 1).all()


def test_bad_series():
    with pytest.raises(InvalidInput, match="NaN"):
        ng.chaos.embed([1.0, 2.0, float("nan")] * 20)
    with pytest.raises(InvalidInput, match="too short"):
        ng.chaos.embed(np.ones(20), lags=4, delay=6, horizon=6)
    with pytest.raises(InvalidInput, match="horizon"):
        ng.chaos.embed(np.ones(100), horizon=0)
    with pytest.raises(InvalidInput, match="horizon"):
        ng.chaos.embed(np.ones(100), horizon=-3)
    with pytest.raises(InvalidInput, match="1-D"):
        ng.chaos.embed(np.ones((50, 3)))
    with pytest.raises(InvalidInput, match="empty"):
        ng.chaos.embed([])
    with pytest.raises(InvalidInput, match="numbers"):
        ng.chaos.embed(["a", "b"])
    with pytest.raises(InvalidInput, match="too short"):
        ng.chaos.split(np.ones(100), 90, 50)
