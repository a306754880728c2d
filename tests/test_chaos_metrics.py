"""Metrics against hand computations."""

from __future__ import annotations

import math

import numpy as np
import pytest

import nngeom as ng
from nngeom import InvalidInput


def test_nrmse_by_hand():
    y, p = [1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0, 5.0]
    mean = sum(y) / 4
    std = math.sqrt(sum((v - mean) ** 2 for v in y) / 4)  # population std (ddof=0)
    rms = math.sqrt(sum((a - b) ** 2 for a, b in zip(y, p, strict=True)) / 4)
    assert ng.chaos.nrmse(y, p) == pytest.approx(rms / std, rel=1e-15)
    assert ng.chaos.nrmse(y, p, scale=2.0) == pytest.approx(rms / 2.0, rel=1e-15)
    assert ng.chaos.nrmse(y, y) == 0.0
    assert ng.chaos.nrmse(y, [1.0, 2.0, float("nan"), 4.0]) == math.inf


def test_curve_and_step84_by_loops():
    rng = np.random.default_rng(0)
    truth = rng.normal(size=(7, 90))
    pred = truth + rng.normal(scale=0.1, size=truth.shape) * np.arange(1, 91)[None, :] / 90
    scale = 1.7
    curve = ng.chaos.nrmse_curve(truth, pred, scale=scale)
    for k in range(90):
        by_hand = math.sqrt(sum((pred[s, k] - truth[s, k]) ** 2 for s in range(7)) / 7) / scale
        assert curve[k] == pytest.approx(by_hand, rel=1e-12)
    assert ng.chaos.nrmse_at(truth, pred, 84, scale=scale) == pytest.approx(curve[83])
    assert np.allclose(ng.chaos.log10_nrmse_curve(truth, pred, scale), np.log10(curve))
    with pytest.raises(InvalidInput, match="step"):
        ng.chaos.nrmse_at(truth, pred, 91)


def test_valid_time_smape_spread():
    truth = np.zeros((2, 5))
    pred = np.array([[0.0, 0.1, 0.5, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0, 0.0]])
    t = ng.chaos.valid_prediction_time(truth, pred, dt=2.0, threshold=0.4, scale=1.0)
    assert list(t) == [4.0, 10.0]  # first bad step index 2 -> 2 * dt; never -> 5 * dt
    t_lyap = ng.chaos.valid_prediction_time(truth, pred, dt=2.0, lyapunov_exponent=0.5, scale=1.0)
    assert list(t_lyap) == [2.0, 5.0]
    s = ng.chaos.smape([1.0, 2.0, 0.0], [1.0, 4.0, 0.0])
    assert s == pytest.approx(100 * (0 + 2 * 2 / 6 + 0) / 3)
    ms = ng.chaos.mean_spread([1.0, 2.0, 3.0])
    assert ms == {"mean": 2.0, "std": 1.0, "min": 1.0, "max": 3.0, "n": 3}


def test_metric_errors():
    with pytest.raises(InvalidInput, match="shape"):
        ng.chaos.nrmse([1.0, 2.0], [1.0])
    with pytest.raises(InvalidInput, match="constant"):
        ng.chaos.nrmse([1.0, 1.0], [1.0, 2.0])
    with pytest.raises(InvalidInput, match="empty"):
        ng.chaos.nrmse([], [])
    with pytest.raises(InvalidInput, match="NaN"):
        ng.chaos.nrmse([1.0, float("nan")], [1.0, 2.0])
