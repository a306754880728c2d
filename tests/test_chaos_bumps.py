"""Bump construction and decomposition; series loaders and CSV reading."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import nngeom as ng
from nngeom import DataError, InvalidInput, UnsupportedModel


def _sig(z):
    return 1.0 / (1.0 + np.exp(-z))


def test_ridge_slab_bump_by_hand():
    x = np.array([[0.0, 0.0], [0.3, -0.2], [2.0, 0.0], [0.0, 2.0]])
    w = np.array([1.0, 0.0])
    assert np.allclose(ng.chaos.ridge(x, w, 0.1, 7.0), _sig(7.0 * (x[:, 0] - 0.1)))
    sl = ng.chaos.slab(x, w, -0.5, 0.5, 10.0)
    assert np.allclose(sl, _sig(10 * (x[:, 0] + 0.5)) - _sig(10 * (x[:, 0] - 0.5)))
    b = ng.chaos.bump(x, [0.0, 0.0], 0.5, steepness=20, sharpness=20)
    assert b[0] > 0.99 and b[1] > 0.9 and b[2] < 0.01 and b[3] < 0.01
    with pytest.raises(InvalidInput):
        ng.chaos.slab(x, w, 1.0, 0.0)


def test_bump_network_is_sum_of_bumps():
    rng = np.random.default_rng(0)
    centers = rng.uniform(-1, 1, size=(4, 2))
    heights = rng.normal(size=4)
    net = ng.chaos.bump_network(centers, 0.3, heights, steepness=8.0, sharpness=6.0, bias=0.25)
    x = rng.uniform(-1.5, 1.5, size=(100, 2))
    want = 0.25 + sum(heights[m] * ng.chaos.bump(x, centers[m], 0.3, 8.0, 6.0) for m in range(4))
    with torch.no_grad():
        got = net(torch.from_numpy(x))[:, 0].numpy()
    assert np.allclose(got, want, atol=1e-12)
    assert ng.as_mlp(net).sizes == (2, 16, 4, 1)


@settings(max_examples=25)
@given(seed=st.integers(0, 1000), w1=st.integers(1, 6), w2=st.integers(1, 6))
def test_decompose_sums_to_output(seed, w1, w2):
    net = ng.mlp((3, w1, w2, 1), "sigmoid", seed=seed, dtype=torch.float64)
    x = np.random.default_rng(seed).normal(size=(20, 3))
    contrib, bias = ng.chaos.decompose(net, x)
    assert contrib.shape == (20, w2)
    with torch.no_grad():
        out = net(torch.from_numpy(x))[:, 0].numpy()
    assert np.allclose(contrib.sum(1) + bias, out, atol=1e-12)


def test_decompose_refuses_multi_output():
    with pytest.raises(UnsupportedModel):
        ng.chaos.decompose(ng.mlp((2, 3, 2)), np.ones((1, 2)))


def test_csv_roundtrip_and_errors(tmp_path):
    x = ng.chaos.mackey_glass(30)
    p = ng.chaos.write_csv_column(tmp_path / "s.csv", x, "mg")
    assert np.array_equal(ng.chaos.read_csv_column(p, "mg"), x)
    assert np.array_equal(ng.chaos.read_csv_column(p, 0), x)
    q = tmp_path / "t.csv"
    q.write_text("date,value,label\n2020,1.5,a\n2021,2.5,b\n2022,oops,c\n")
    with pytest.raises(DataError, match="not a number"):
        ng.chaos.read_csv_column(q, "value")
    with pytest.raises(DataError, match="not a number"):
        ng.chaos.read_csv_column(q, "label")
    with pytest.raises(DataError, match="no column"):
        ng.chaos.read_csv_column(q, "price")
    with pytest.raises(DataError, match="out of range"):
        ng.chaos.read_csv_column(q, 7)
    with pytest.raises(DataError, match="no CSV"):
        ng.chaos.read_csv_column(tmp_path / "missing.csv")
    headerless = tmp_path / "h.csv"
    headerless.write_text("1.0\n2.0\n3.0\n")
    assert list(ng.chaos.read_csv_column(headerless)) == [1.0, 2.0, 3.0]


def test_bundled_series():
    pytest.importorskip("reservoirpy")
    pytest.importorskip("statsmodels")
    laser = ng.chaos.santafe_laser()
    sun = ng.chaos.sunspots()
    assert laser.shape == (10093,) and np.isfinite(laser).all()
    assert sun.shape == (309,) and sun.min() >= 0


def test_missing_extras_give_data_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "reservoirpy.datasets", None)
    monkeypatch.setitem(sys.modules, "statsmodels.datasets", None)
    with pytest.raises(DataError, match="reservoirpy"):
        ng.chaos.santafe_laser()
    with pytest.raises(DataError, match="statsmodels"):
        ng.chaos.sunspots()
