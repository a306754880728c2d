"""Oracle tests for nngeom.sensitivity: closed form vs torch.func autodiff, bounds, bad input."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import nngeom as ng
from nngeom import InvalidInput, InvalidModel, UnsupportedModel
from nngeom.sensitivity import (
    tangent_sensitivity,
    tangent_sensitivity_autodiff,
    tangent_sensitivity_bounds,
    tangent_sensitivity_hutchinson,
    tangent_sensitivity_squared,
)

F64 = torch.float64


def _x(n: int, d: int, seed: int = 0, scale: float = 1.0) -> torch.Tensor:
    return scale * torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=F64)


def _mixed_derivative_bruteforce(model: nn.Module, x: torch.Tensor, k: int) -> torch.Tensor:
    """The full P x d mixed derivative by double backward (one autograd.grad per parameter entry)."""
    x = x.clone().requires_grad_(True)
    params = [p for p in model.parameters()]
    out = model(x.unsqueeze(0))[0, k]
    grads = torch.autograd.grad(out, params, create_graph=True)
    flat = torch.cat([g.reshape(-1) for g in grads])
    rows = []
    for i in range(flat.numel()):
        if flat[i].requires_grad:
            (gx,) = torch.autograd.grad(flat[i], x, retain_graph=True, allow_unused=True)
            rows.append(torch.zeros_like(x) if gx is None else gx)
        else:
            rows.append(torch.zeros_like(x))
    return torch.stack(rows)


@pytest.mark.parametrize(
    "sizes,act",
    [
        ((3, 5, 2), nn.ReLU()),
        ((4, 6, 5, 3), nn.ReLU()),
        ((5, 3, 4, 6, 2), nn.LeakyReLU(0.1)),
        ((2, 7, 7, 7, 3), nn.ReLU()),
        ((6, 9, 4, 1), nn.Identity()),
    ],
)
def test_closed_form_equals_double_backward(sizes, act) -> None:
    net = ng.mlp(sizes, act, seed=3, dtype=F64)
    X = _x(3, sizes[0], seed=1)
    got = tangent_sensitivity_squared(net, X, method="closed_form")
    for i in range(X.shape[0]):
        for k in range(sizes[-1]):
            M = _mixed_derivative_bruteforce(net, X[i], k)
            want = float((M**2).sum())
            assert got[i, k].item() == pytest.approx(want, rel=1e-9, abs=1e-12)


@settings(max_examples=15)
@given(
    widths=st.lists(st.integers(1, 7), min_size=1, max_size=4),
    d=st.integers(1, 9),
    p=st.integers(1, 4),
    seed=st.integers(0, 10_000),
    leaky=st.booleans(),
)
def test_closed_form_equals_torch_func_property(widths, d, p, seed, leaky) -> None:
    act = nn.LeakyReLU(0.2) if leaky else nn.ReLU()
    net = ng.mlp([d, *widths, p], act, seed=seed, dtype=F64)
    X = _x(4, d, seed=seed + 1)
    a = tangent_sensitivity_squared(net, X, method="closed_form")
    b = tangent_sensitivity_autodiff(net, X, chunk_size=4)
    assert a.shape == b.shape == (4, p)
    torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-12)


def test_gram_and_direct_paths_agree() -> None:
    # first hidden layer narrower than the input uses the Gram path; wider uses the direct chain
    for sizes in ((12, 4, 5, 3, 2), (3, 12, 5, 4, 2)):
        net = ng.mlp(sizes, seed=0, dtype=F64)
        X = _x(6, sizes[0])
        a = tangent_sensitivity_squared(net, X, method="closed_form", chunk_size=2)
        b = tangent_sensitivity_autodiff(net, X)
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize(
    "sizes,act",
    [
        ((12, 4, 5, 3, 2), nn.ReLU()),
        ((3, 12, 5, 4, 2), nn.ReLU()),
        ((5, 6, 2), nn.ReLU()),
        ((6, 5, 5, 5, 5, 3), nn.LeakyReLU(0.1)),
    ],
)
def test_active_block_path_equals_batched(sizes, act) -> None:
    from nngeom.nets import as_mlp
    from nngeom.sensitivity import _closed_form_sq

    net = ng.mlp(sizes, act, seed=4, dtype=F64)
    with torch.no_grad():
        net[-1].bias.add_(0.3)
    X = _x(9, sizes[0], seed=3)
    view = as_mlp(net)
    ks = list(range(sizes[-1]))
    a = _closed_form_sq(view, X, ks, 4, "active")
    b = _closed_form_sq(view, X, ks, 4, "batched")
    torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(a, tangent_sensitivity_autodiff(net, X), rtol=1e-9, atol=1e-14)


def test_output_selection_and_aggregation() -> None:
    net = ng.mlp((4, 6, 3), seed=2, dtype=F64)
    X = _x(5, 4)
    allk = tangent_sensitivity(net, X, output="all")
    assert allk.shape == (5, 3)
    torch.testing.assert_close(tangent_sensitivity(net, X), allk.mean(1))
    torch.testing.assert_close(tangent_sensitivity(net, X, output=1), allk[:, 1])
    torch.testing.assert_close(tangent_sensitivity(net, X, output=[2, 0]), allk[:, [2, 0]])


def test_generic_path_on_conv_net() -> None:
    g = torch.Generator().manual_seed(0)
    conv = nn.Sequential(
        nn.Conv2d(1, 2, 3),
        nn.Tanh(),
        nn.Flatten(),
        nn.Linear(2 * 3 * 3, 3),
    ).double()
    with torch.no_grad():
        for p in conv.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=F64) * 0.5)
    X = torch.randn(2, 1, 5, 5, generator=g, dtype=F64)
    got = tangent_sensitivity(conv, X, output="all")
    assert got.shape == (2, 3)
    for i in range(2):
        for k in range(3):
            M = _mixed_derivative_bruteforce(conv, X[i], k)
            assert got[i, k].item() ** 2 == pytest.approx(float((M**2).sum()), rel=1e-9)


def test_smooth_mlp_uses_autodiff() -> None:
    net = ng.mlp((3, 4, 2), "tanh", seed=0, dtype=F64)
    X = _x(2, 3)
    got = tangent_sensitivity_squared(net, X)
    M = _mixed_derivative_bruteforce(net, X[0], 1)
    assert got[0, 1].item() == pytest.approx(float((M**2).sum()), rel=1e-9)
    with pytest.raises(UnsupportedModel):
        tangent_sensitivity(net, X, method="closed_form")


def test_hutchinson_is_unbiased_with_honest_stderr() -> None:
    net = ng.mlp((10, 16, 16, 3), seed=5, dtype=F64)
    X = _x(40, 10, seed=2)
    exact = tangent_sensitivity_squared(net, X)
    est = tangent_sensitivity_hutchinson(net, X, probes=16, seed=1)
    assert est.squared.shape == exact.shape == est.stderr.shape
    # mean over examples and outputs: error within 4 standard errors of the mean (the outputs of
    # one example share probes, so their errors are correlated: mean_stderr accounts for it)
    err = (est.squared - exact).mean()
    assert abs(float(err)) <= 4 * est.mean_stderr() + 1e-12
    sd = est.stderr.mean(1)
    assert est.mean_stderr() == pytest.approx(float(sd.square().sum().sqrt() / sd.numel()))
    # same seed -> same estimate; different seed -> different
    again = tangent_sensitivity_hutchinson(net, X, probes=16, seed=1)
    torch.testing.assert_close(again.squared, est.squared)
    other = tangent_sensitivity_hutchinson(net, X, probes=16, seed=2)
    assert not torch.equal(other.squared, est.squared)


def test_hutchinson_exact_terms() -> None:
    """The J_0 and J_1 terms are exact: one hidden layer gives the closed form with zero error."""
    net = ng.mlp((7, 9, 4), seed=3, dtype=F64)
    X = _x(12, 7, seed=4)
    est = tangent_sensitivity_hutchinson(net, X, probes=2, seed=0)
    torch.testing.assert_close(est.squared, tangent_sensitivity_squared(net, X), rtol=1e-12, atol=0)
    assert float(est.stderr.abs().max()) == 0.0
    deep = ng.mlp((7, 9, 9, 4), seed=3, dtype=F64)
    assert float(tangent_sensitivity_hutchinson(deep, X, probes=2, seed=0).stderr.max()) > 0


def test_hutchinson_generic_path() -> None:
    net = ng.mlp((4, 5, 2), "tanh", seed=1, dtype=F64)
    X = _x(6, 4)
    exact = tangent_sensitivity_squared(net, X)
    est = tangent_sensitivity_hutchinson(net, X, probes=64, seed=0)
    z = (est.squared - exact) / est.stderr.clamp_min(1e-15)
    assert float(z.abs().mean()) < 3.0


def _check_bounds(net: nn.Module, X: torch.Tensor) -> None:
    ts = tangent_sensitivity(net, X, output="all")
    b = tangent_sensitivity_bounds(net, X)
    tol = 1e-9
    assert (ts <= b.active_paths + tol).all()
    assert (b.active_paths <= b.active_counts + tol).all()
    assert (b.active_paths <= b.path + tol).all()
    assert (b.active_counts <= b.linf * (1 + 1e-12) + tol).all()
    assert b.path <= b.linf * (1 + 1e-12) + tol
    assert float(ts.max()) <= b.spectral * (1 + 1e-12) + tol


@settings(max_examples=20)
@given(
    widths=st.lists(st.integers(1, 6), min_size=1, max_size=4),
    d=st.integers(1, 6),
    p=st.integers(1, 3),
    seed=st.integers(0, 10_000),
    leaky=st.booleans(),
)
def test_bounds_hold_on_random_nets(widths, d, p, seed, leaky) -> None:
    act = nn.LeakyReLU(0.3) if leaky else nn.ReLU()
    net = ng.mlp([d, *widths, p], act, seed=seed, dtype=F64)
    _check_bounds(net, _x(20, d, seed=seed, scale=3.0))


def test_bounds_hold_on_trained_net() -> None:
    # a teacher-labelled task, trained full batch until the weights have moved far from init
    X = _x(200, 8, seed=4)
    teacher = ng.mlp((8, 6, 3), seed=9, dtype=F64)
    with torch.no_grad():
        y = teacher(X).argmax(1)
    net = ng.mlp((8, 12, 12, 3), seed=0, dtype=F64)
    init = [p.detach().clone() for p in net.parameters()]
    ng.train(net, X, y, loss="ce", epochs=60, lr=3e-2, seed=0)
    moved = sum(float((p.detach() - q).norm()) for p, q in zip(net.parameters(), init, strict=True))
    assert moved > 1.0
    _check_bounds(net, _x(100, 8, seed=5, scale=2.0))


def test_bounds_are_attained_by_one_layer_identity_net() -> None:
    # no hidden layer: TS_k^2 = ||J_0||_F^2 = d for every x, and every bound equals sqrt(d)
    net = ng.mlp((5, 2), seed=0, dtype=F64)
    X = _x(3, 5)
    ts = tangent_sensitivity(net, X, output="all")
    torch.testing.assert_close(ts, torch.full((3, 2), 5**0.5, dtype=F64))
    b = tangent_sensitivity_bounds(net, X)
    assert b.linf == pytest.approx(5**0.5) and b.path == pytest.approx(5**0.5)
    assert b.spectral == pytest.approx(5**0.5)


# ------------------------------------------------------------------ bad input


class _Rounding(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(3, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(self.lin(x).detach().numpy().round())


def test_bad_inputs() -> None:
    net = ng.mlp((3, 4, 2), seed=0)
    with pytest.raises(InvalidInput, match="shape \\(N, 3\\) for this model"):
        tangent_sensitivity(net, torch.randn(4, 5))
    with pytest.raises(InvalidInput, match="empty"):
        tangent_sensitivity(net, torch.randn(0, 3))
    with pytest.raises(InvalidInput, match="NaN"):
        tangent_sensitivity(net, torch.tensor([[0.0, float("nan"), 1.0]]))
    with pytest.raises(InvalidInput, match="batch"):
        tangent_sensitivity(net, torch.randn(3))
    with pytest.raises(InvalidInput, match="out of range"):
        tangent_sensitivity(net, torch.randn(2, 3), output=7)
    with pytest.raises(InvalidInput, match="method"):
        tangent_sensitivity(net, torch.randn(2, 3), method="magic")
    with pytest.raises(InvalidModel, match="no parameters"):
        tangent_sensitivity(nn.Sequential(nn.ReLU()), torch.randn(2, 3))
    bad = ng.mlp((3, 4, 2), seed=0)
    with torch.no_grad():
        bad[0].weight[0, 0] = float("inf")
    with pytest.raises(InvalidModel):
        tangent_sensitivity(bad, torch.randn(2, 3))
    with pytest.raises(UnsupportedModel, match="differentiate"):
        tangent_sensitivity(_Rounding(), torch.randn(2, 3))
    with pytest.raises(InvalidInput, match="evaluated"):
        tangent_sensitivity(nn.Sequential(nn.Conv2d(1, 1, 2), nn.Flatten()), torch.randn(2, 3))
    with pytest.raises(InvalidInput, match="probes"):
        tangent_sensitivity_hutchinson(net, torch.randn(2, 3), probes=1)
    with pytest.raises(UnsupportedModel):
        tangent_sensitivity_bounds(ng.mlp((3, 4, 2), "tanh"))
