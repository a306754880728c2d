"""Deterministic training loops."""

from __future__ import annotations

import pytest
import torch

import nngeom as ng
from nngeom._losses import loss_fn


def _data(n=64, d=3, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d, generator=g, dtype=dtype)
    w = torch.tensor([[1.0], [-2.0], [0.5]], dtype=dtype)
    return X, X @ w + 0.3


def test_same_seed_same_weights_minibatch_adam():
    X, y = _data(dtype=torch.float32)
    nets = [ng.mlp([3, 8, 1], seed=0) for _ in range(2)]
    for net in nets:
        ng.train(net, X, y, epochs=5, lr=1e-2, batch_size=16, seed=7)
    assert all(torch.equal(p, q) for p, q in zip(nets[0].parameters(), nets[1].parameters()))
    other = ng.mlp([3, 8, 1], seed=0)
    ng.train(other, X, y, epochs=5, lr=1e-2, batch_size=16, seed=8)
    assert not torch.equal(other[0].weight, nets[0][0].weight)
    # a generator takes the place of the seed: two in the same state give the same weights
    for net in (a := [ng.mlp([3, 8, 1], seed=0) for _ in range(2)]):
        ng.train(
            net, X, y, epochs=2, lr=1e-2, batch_size=16, generator=torch.Generator().manual_seed(3)
        )
    assert all(torch.equal(p, q) for p, q in zip(a[0].parameters(), a[1].parameters()))


def test_lbfgs_float64_reaches_the_least_squares_solution():
    X, y = _data()
    net = ng.mlp([3, 1], seed=0, dtype=torch.float64)  # a linear model
    hist = ng.train(net, X, y, optimizer="lbfgs", epochs=20, lr=1.0)
    A = torch.cat([X, torch.ones(len(X), 1, dtype=X.dtype)], dim=1)
    sol = torch.linalg.lstsq(A, y).solution
    assert torch.allclose(net[0].weight.detach().T, sol[:3], atol=1e-8)
    assert hist.final_loss < 1e-16 and hist.converged


def test_adam_decreases_loss_and_records_history():
    X, y = _data(dtype=torch.float32)
    net = ng.mlp([3, 16, 1], seed=1)
    hist = ng.train(net, X, y, epochs=200, lr=1e-2)
    assert len(hist.losses) == 200 and hist.losses[-1] < 0.1 * hist.losses[0]


def test_cross_entropy_and_sse():
    f = loss_fn("sse")
    a, b = torch.tensor([[1.0], [3.0]]), torch.tensor([[0.0], [1.0]])
    assert float(f(a, b)) == pytest.approx(0.5 * (1 + 4) / 2)
    X = torch.randn(30, 4, generator=torch.Generator().manual_seed(0))
    y = (X[:, 0] > 0).long()
    net = ng.mlp([4, 8, 2], seed=0)
    hist = ng.train(net, X, y, loss="ce", epochs=100, lr=1e-2)
    assert hist.final_loss < hist.losses[0]


def test_callback_and_tol():
    X, y = _data()
    seen = []
    net = ng.mlp([3, 1], dtype=torch.float64)
    hist = ng.train(
        net, X, y, optimizer="lbfgs", epochs=50, tol=1e-6, callback=lambda e, v: seen.append(v)
    )
    assert hist.converged and hist.steps == len(seen) < 50


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"optimizer": "rmsprop"}, "unknown optimizer"),
        ({"loss": "hinge"}, "unknown loss"),
        ({"epochs": -1}, "epochs"),
        ({"lr": 0.0}, "lr"),
        ({"batch_size": 0}, "batch_size"),
    ],
)
def test_bad_arguments(kwargs, match):
    X, y = _data()
    with pytest.raises(ng.InvalidInput, match=match):
        ng.train(ng.mlp([3, 1], dtype=torch.float64), X, y, **kwargs)


def test_bad_data():
    net = ng.mlp([3, 1])
    with pytest.raises(ng.InvalidInput, match="examples"):
        ng.train(net, torch.zeros(4, 3), torch.zeros(5, 1))
    with pytest.raises(ng.InvalidInput, match="empty"):
        ng.train(net, torch.zeros(0, 3), torch.zeros(0, 1))
    with pytest.raises(ng.InvalidInput, match="NaN"):
        ng.train(net, torch.full((4, 3), float("nan")), torch.zeros(4, 1))
    with pytest.raises(ng.InvalidInput, match="no parameters"):
        ng.train(torch.nn.ReLU(), torch.zeros(4, 3), torch.zeros(4, 3))


def test_frozen_parameters_are_not_trained():
    X, y = _data()
    net = ng.mlp([3, 4, 1], dtype=torch.float64)
    net[0].weight.requires_grad_(False)
    before = net[0].weight.clone()
    ng.train(net, X, y, epochs=3, lr=1e-2)
    assert torch.equal(net[0].weight, before)
    with pytest.raises(ng.InvalidInput, match="no trainable parameters"):
        ng.train(net.requires_grad_(False), X, y)
