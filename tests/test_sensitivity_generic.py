"""Oracle tests for the generic (torch.func) tangent-sensitivity path on conv nets and other
non-MLP models: against a double-backward brute force written here with torch.autograd."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from nngeom import InvalidInput, InvalidModel
from nngeom.sensitivity import (
    tangent_sensitivity,
    tangent_sensitivity_autodiff,
    tangent_sensitivity_hutchinson,
    tangent_sensitivity_squared,
)

F64 = torch.float64
pytestmark = pytest.mark.usefixtures("one_thread")


def _oracle(model: nn.Module, X: torch.Tensor, ks: list[int]) -> torch.Tensor:
    """``||d/dx grad_theta f_k(x)||_F^2`` by double backward: for every example and output, the
    input gradient with a graph, then one parameter gradient per input coordinate."""
    params = list(model.parameters())
    out = torch.zeros(X.shape[0], len(ks), dtype=F64)
    for i in range(X.shape[0]):
        x = X[i].detach().clone().requires_grad_(True)
        y = model(x.unsqueeze(0)).reshape(-1)
        for c, k in enumerate(ks):
            (gx,) = torch.autograd.grad(y[k], x, create_graph=True, retain_graph=True)
            total = 0.0
            for gj in gx.reshape(-1):
                if not gj.requires_grad:  # an input coordinate the output does not see
                    continue
                rows = torch.autograd.grad(gj, params, retain_graph=True, allow_unused=True)
                total += sum(float((r.double() ** 2).sum()) for r in rows if r is not None)
            out[i, c] = total
    return out


def _randomise(model: nn.Module, seed: int, scale: float = 0.6) -> nn.Module:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(scale * torch.randn(p.shape, generator=g, dtype=p.dtype))
    return model


def _conv_net(act: nn.Module | None = None, seed: int = 0) -> nn.Module:
    """Conv -> act -> MaxPool -> Conv -> act -> Flatten -> Linear on (N, 1, 8, 8): 3 outputs."""
    act = act if act is not None else nn.ReLU()
    net = nn.Sequential(
        nn.Conv2d(1, 2, 3),
        act,
        nn.MaxPool2d(2),
        nn.Conv2d(2, 3, 2),
        act,
        nn.Flatten(),
        nn.Linear(3 * 2 * 2, 3),
    ).double()
    return _randomise(net, seed)


def _images(n: int, *shape: int, seed: int = 1) -> torch.Tensor:
    return torch.randn(n, *shape, generator=torch.Generator().manual_seed(seed), dtype=F64)


@pytest.mark.parametrize("act", [nn.ReLU(), nn.Tanh(), nn.Softplus()])
def test_conv_net_equals_double_backward(act: nn.Module) -> None:
    net = _conv_net(act, seed=2)
    X = _images(3, 1, 8, 8)
    got = tangent_sensitivity_autodiff(net, X)
    want = _oracle(net, X, [0, 1, 2])
    assert got.shape == (3, 3) and got.dtype == F64
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)


def test_output_selections() -> None:
    net = _conv_net(nn.Tanh(), seed=5)
    X = _images(4, 1, 8, 8, seed=3)
    want = _oracle(net, X, [0, 1, 2])
    torch.testing.assert_close(tangent_sensitivity_autodiff(net, X), want, rtol=1e-10, atol=0)
    for sel, cols in ((1, [1]), ([2, 0], [2, 0]), ([1, 1], [1, 1]), (None, [0, 1, 2])):
        got = tangent_sensitivity_autodiff(net, X, output=sel)
        torch.testing.assert_close(got, want[:, cols], rtol=1e-10, atol=0)
    # the public entry points dispatch here and aggregate
    ts = want.sqrt()
    torch.testing.assert_close(tangent_sensitivity(net, X), ts.mean(1), rtol=1e-10, atol=0)
    torch.testing.assert_close(tangent_sensitivity(net, X, output=2), ts[:, 2], rtol=1e-10, atol=0)
    torch.testing.assert_close(
        tangent_sensitivity(net, X, output="all", chunk_size=3), ts, rtol=1e-10, atol=0
    )


def test_image_shaped_inputs_of_any_per_example_shape() -> None:
    # two-channel images, not square, with batch norm (eval) and average pooling
    net = nn.Sequential(
        nn.Conv2d(2, 3, 3, padding=1),
        nn.BatchNorm2d(3),
        nn.ELU(),
        nn.AvgPool2d(2),
        nn.Flatten(),
        nn.Linear(3 * 2 * 3, 2),
    ).double()
    _randomise(net, 7)
    with torch.no_grad():
        net[1].running_mean.uniform_(-0.5, 0.5)
        net[1].running_var.uniform_(0.5, 2.0)
    net.eval()
    X = _images(3, 2, 4, 6, seed=4)
    torch.testing.assert_close(
        tangent_sensitivity_autodiff(net, X), _oracle(net, X, [0, 1]), rtol=1e-10, atol=0
    )
    # sequences (N, C, L) through a Conv1d, and an (N, 2, 3, 2) block flattened by the model
    seq = _randomise(
        nn.Sequential(nn.Conv1d(2, 3, 3), nn.Tanh(), nn.Flatten(), nn.Linear(9, 2)).double(), 8
    )
    S = _images(2, 2, 5, seed=5)
    torch.testing.assert_close(
        tangent_sensitivity_autodiff(seq, S), _oracle(seq, S, [0, 1]), rtol=1e-10, atol=0
    )
    blk = _randomise(
        nn.Sequential(nn.Flatten(), nn.Linear(12, 4), nn.Sigmoid(), nn.Linear(4, 3)).double(), 9
    )
    B = _images(3, 2, 3, 2, seed=6)
    torch.testing.assert_close(
        tangent_sensitivity_squared(blk, B), _oracle(blk, B, [0, 1, 2]), rtol=1e-10, atol=0
    )


def test_chunk_sizes_and_direction_blocks_agree() -> None:
    net = _conv_net(nn.Tanh(), seed=11)
    X = _images(7, 1, 8, 8, seed=12)
    ref = tangent_sensitivity_autodiff(net, X)
    for cs in (1, 3, 7, 50):
        torch.testing.assert_close(
            tangent_sensitivity_autodiff(net, X, chunk_size=cs), ref, rtol=1e-12, atol=0
        )
    # a tiny budget splits each example's 64 input directions into blocks (1 direction at least)
    for budget in (1, 200_000):
        got = tangent_sensitivity_autodiff(net, X, chunk_size=3, memory_budget=budget)
        torch.testing.assert_close(got, ref, rtol=1e-12, atol=0)
    torch.testing.assert_close(
        tangent_sensitivity_autodiff(net, X, memory_budget=300_000), ref, rtol=1e-12, atol=0
    )


def test_plan_respects_the_budget() -> None:
    from nngeom.sensitivity import _generic_plan

    # (n, d, P, A, K, itemsize): one pair costs 8 * (2*10 + 2*(2*100 + 3*10)) = 3840 bytes
    assert _generic_plan(50, 64, 100, 10, 2, 8, None, 64 * 3840 * 5) == (5, 64)
    assert _generic_plan(3, 64, 100, 10, 2, 8, None, 64 * 3840 * 5) == (3, 64)
    assert _generic_plan(50, 64, 100, 10, 2, 8, None, 16 * 3840) == (1, 16)
    assert _generic_plan(50, 64, 100, 10, 2, 8, 4, 16 * 3840) == (4, 4)
    assert _generic_plan(50, 64, 100, 10, 2, 8, 4, 1) == (4, 1)
    # the widest tensor (2 outputs x 40 values x 8 bytes = 640 bytes per pair) under a cap
    assert _generic_plan(50, 64, 100, 10, 2, 8, None, 64 * 3840 * 5, 40, 640 * 128) == (2, 64)
    assert _generic_plan(50, 64, 100, 10, 2, 8, None, 64 * 3840 * 5, 40, 640 * 10) == (1, 10)
    assert _generic_plan(50, 64, 100, 10, 2, 8, None, 64 * 3840 * 5, 40, None) == (5, 64)


@settings(max_examples=12)
@given(
    c1=st.integers(1, 3),
    c2=st.integers(1, 3),
    k=st.integers(1, 3),
    side=st.integers(5, 7),
    pool=st.booleans(),
    act=st.sampled_from(["relu", "tanh", "softplus"]),
    p=st.integers(1, 3),
    seed=st.integers(0, 10_000),
    chunk=st.sampled_from([None, 1, 2]),
)
def test_random_conv_nets_equal_double_backward(c1, c2, k, side, pool, act, p, seed, chunk):
    acts = {"relu": nn.ReLU, "tanh": nn.Tanh, "softplus": nn.Softplus}
    layers: list[nn.Module] = [nn.Conv2d(1, c1, k), acts[act]()]
    s = side - k + 1
    if pool:
        layers.append(nn.MaxPool2d(2))
        s //= 2
    layers += [nn.Conv2d(c1, c2, 1), acts[act](), nn.Flatten(), nn.Linear(c2 * s * s, p)]
    net = _randomise(nn.Sequential(*layers).double(), seed)
    X = _images(2, 1, side, side, seed=seed + 1)
    got = tangent_sensitivity_autodiff(net, X, chunk_size=chunk)
    torch.testing.assert_close(got, _oracle(net, X, list(range(p))), rtol=1e-10, atol=1e-12)


def test_float32_inputs_follow_the_model_dtype() -> None:
    net = _conv_net(nn.Tanh(), seed=1)
    X = _images(2, 1, 8, 8).float()
    got = tangent_sensitivity_autodiff(net, X)
    assert got.dtype == F64
    torch.testing.assert_close(got, _oracle(net, X.double(), [0, 1, 2]), rtol=1e-10, atol=0)


# ------------------------------------------------------------------ refused models and inputs


@pytest.mark.parametrize(
    "layer,what",
    [
        (nn.Dropout(0.3), "drops units at random"),
        (nn.Dropout2d(0.5), "drops units at random"),
        (nn.BatchNorm2d(2), "training mode"),
        (nn.BatchNorm2d(2, track_running_stats=False), "statistics of the batch"),
    ],
)
def test_batch_dependent_or_random_layers_are_refused(layer: nn.Module, what: str) -> None:
    net = nn.Sequential(
        nn.Conv2d(1, 2, 3), layer, nn.Tanh(), nn.Flatten(), nn.Linear(2 * 6 * 6, 2)
    ).double()
    X = _images(2, 1, 8, 8)
    with pytest.raises(InvalidModel, match=what) as info:
        tangent_sensitivity_autodiff(net, X)
    assert "model.eval()" in str(info.value) and "'1'" in str(info.value)
    with pytest.raises(InvalidModel, match="eval"):
        tangent_sensitivity(net, X)
    with pytest.raises(InvalidModel, match="eval"):
        tangent_sensitivity_hutchinson(net, X, probes=2)
    net.eval()
    if isinstance(layer, nn.BatchNorm2d) and not layer.track_running_stats:
        with pytest.raises(InvalidModel, match="without running statistics"):
            tangent_sensitivity_autodiff(net, X)
    else:
        torch.testing.assert_close(
            tangent_sensitivity_autodiff(net, X), _oracle(net, X, [0, 1]), rtol=1e-10, atol=0
        )


def test_train_mode_rrelu_is_refused_like_the_hessians_refuse_it() -> None:
    net = nn.Sequential(nn.Flatten(), nn.Linear(4, 3), nn.RReLU(), nn.Linear(3, 2)).double()
    X = _images(2, 1, 2, 2)
    with pytest.raises(InvalidModel, match=r"'2' \(RReLU\) is in training mode.*random negative"):
        tangent_sensitivity_autodiff(net, X)


def test_dropout_with_zero_rate_is_accepted_in_training_mode() -> None:
    net = nn.Sequential(nn.Flatten(), nn.Linear(4, 3), nn.Dropout(0.0), nn.Tanh(), nn.Linear(3, 2))
    net = _randomise(net.double(), 3)
    X = _images(2, 2, 2)
    torch.testing.assert_close(
        tangent_sensitivity_autodiff(net, X), _oracle(net, X, [0, 1]), rtol=1e-10, atol=0
    )


def test_bad_arguments() -> None:
    net = _conv_net()
    X = _images(2, 1, 8, 8)
    for cs in (0, -1, 2.5, True):
        with pytest.raises(InvalidInput, match="chunk_size"):
            tangent_sensitivity_autodiff(net, X, chunk_size=cs)
    for mb in (0, -5, 1.5, True):
        with pytest.raises(InvalidInput, match="memory_budget"):
            tangent_sensitivity_autodiff(net, X, memory_budget=mb)
    with pytest.raises(InvalidInput, match="evaluated"):
        tangent_sensitivity_autodiff(net, _images(2, 1, 2, 2))
    with pytest.raises(InvalidInput, match="out of range"):
        tangent_sensitivity_autodiff(net, X, output=3)
    with pytest.raises(InvalidInput, match="batch"):
        tangent_sensitivity_autodiff(net, X[0, 0, 0])
