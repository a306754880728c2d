"""Tests of permutation symmetry on the dense hidden layers of graph models (nngeom.symmetry):
residual MLPs (BatchNorm in eval mode, per-unit PReLU, Dropout) and a conv net with a dense head."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.func import functional_call

import nngeom as ng
from _oracles import autograd_hessian
from nngeom._errors import InvalidInput, NngeomError, UnsupportedModel
from nngeom.symmetry import (
    canonical_form,
    dense_hidden_layers,
    embed_merged,
    find_permutation_saddle,
    flat_directions,
    merge_neurons,
    permute_all,
    split_neuron,
)

pytestmark = pytest.mark.usefixtures("one_thread")

F64 = torch.float64


def _lin(i: int, o: int, bias: bool = True) -> nn.Linear:
    return nn.Linear(i, o, bias=bias, device="meta", dtype=F64)


def _fill(model: nn.Module, seed: int) -> nn.Module:
    """Materialise a meta-device model with values from a seeded generator (no global RNG)."""
    g = torch.Generator().manual_seed(seed)
    model = model.to_empty(device="cpu")
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype))
            if name.endswith("act1.weight"):  # PReLU slopes in (0, 0.5)
                p.copy_(0.5 * torch.rand(p.shape, generator=g, dtype=p.dtype))
        for name, b in model.named_buffers():
            if name.endswith("running_mean"):
                b.copy_(0.3 * torch.randn(b.shape, generator=g, dtype=b.dtype))
            elif name.endswith("running_var"):
                b.copy_(0.5 + torch.rand(b.shape, generator=g, dtype=b.dtype))
            elif name.endswith("num_batches_tracked"):
                b.zero_()
    return model.eval()


class ResMLP(nn.Module):
    """h = relu(L0 x); h += L1b(drop(prelu(bn(L1 h)))) relu'd; h += L2b(relu(L2 h)); out = head h.

    Dense hidden layers: the PReLU after L1 (width h1) and the ReLU after L2 (width h2); the
    ReLUs whose outputs feed the residual sums are not dense.
    """

    def __init__(self, d: int = 2, w: int = 4, h1: int = 5, h2: int = 3, out: int = 2) -> None:
        super().__init__()
        self.l0 = _lin(d, w)
        self.l1 = _lin(w, h1)
        self.bn1 = nn.BatchNorm1d(h1, device="meta", dtype=F64)
        self.act1 = nn.PReLU(h1, device="meta", dtype=F64)
        self.drop = nn.Dropout(0.3)
        self.l1b = _lin(h1, w)
        self.l2 = _lin(w, h2)
        self.l2b = _lin(h2, w)
        self.head = _lin(w, out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.l0(x))
        h = h + F.relu(self.l1b(self.drop(self.act1(self.bn1(self.l1(h))))))
        h = h + self.l2b(torch.relu(self.l2(h)))
        return self.head(h)


class SmallRes(nn.Module):
    """A 1-input residual MLP: h = relu(L0 x); h = h + L1b(relu(L1 h)); out = head h."""

    def __init__(self, w: int = 3, h: int = 3) -> None:
        super().__init__()
        self.l0 = _lin(1, w)
        self.l1 = _lin(w, h)
        self.l1b = _lin(h, w)
        self.head = _lin(w, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.l0(x))
        h = h + self.l1b(F.relu(self.l1(h)))
        return self.head(h)


class Skip(nn.Module):
    """h + relu(L h): the ReLU's output feeds a sum, not a Linear: no dense hidden layer."""

    def __init__(self) -> None:
        super().__init__()
        self.l0 = _lin(2, 3)
        self.l1 = _lin(3, 3)
        self.l2 = _lin(3, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.l0(x))
        return self.l2(h + torch.relu(self.l1(h)))


class Reused(nn.Module):
    """A Linear called twice: its units cannot be permuted alone."""

    def __init__(self) -> None:
        super().__init__()
        self.l0 = _lin(3, 3)
        self.l1 = _lin(3, 3)
        self.l2 = _lin(3, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.l0(x))
        return self.l2(torch.relu(self.l1(torch.relu(self.l1(h)))))


def _convnet(seed: int) -> nn.Sequential:
    net = nn.Sequential(
        nn.Conv2d(1, 2, 3, device="meta", dtype=F64),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        _lin(18, 6),
        nn.ReLU(),
        _lin(6, 5),
        nn.Tanh(),
        _lin(5, 3),
    )
    return _fill(net, seed)


def _x(shape: tuple[int, ...], n: int = 16, seed: int = 1) -> torch.Tensor:
    return torch.randn(n, *shape, generator=torch.Generator().manual_seed(seed), dtype=F64)


def _tensor(model: nn.Module, name: str) -> torch.Tensor:
    owner, _, attr = name.rpartition(".")
    return getattr(model.get_submodule(owner), attr)


# ------------------------------------------------------------------------------------------
# finding the dense hidden layers


def test_dense_hidden_layers_of_a_residual_mlp_and_a_conv_net():
    layers = dense_hidden_layers(_fill(ResMLP(), 0))
    assert [dl.index for dl in layers] == [0, 1]
    assert [dl.width for dl in layers] == [5, 3]
    a, b = layers
    assert (a.linear_in, a.linear_out, a.between, a.activation_module) == (
        "l1",
        ("l1b",),
        ("bn1",),
        "act1",
    )
    assert set(a.incoming) == {
        ("l1.weight", 0),
        ("l1.bias", 0),
        ("bn1.weight", 0),
        ("bn1.bias", 0),
        ("bn1.running_mean", 0),
        ("bn1.running_var", 0),
        ("act1.weight", 0),
    }
    assert a.outgoing == (("l1b.weight", 1),) and a.next_width == 4
    assert (b.linear_in, b.linear_out, b.between, b.activation_module) == ("l2", ("l2b",), (), None)
    assert b.units == (("l2.weight", 0), ("l2.bias", 0), ("l2b.weight", 1))

    conv = dense_hidden_layers(_convnet(0))
    assert [(dl.linear_in, dl.width, dl.linear_out, dl.next_width) for dl in conv] == [
        ("4", 6, ("6",), 5),
        ("6", 5, ("8",), 3),
    ]


def test_a_chain_mlp_has_its_hidden_layers_as_dense_layers():
    net = ng.mlp([2, 4, 3, 1], "relu", dtype=F64, seed=0)
    assert [(dl.linear_in, dl.width) for dl in dense_hidden_layers(net)] == [("0", 4), ("2", 3)]
    # the chain path is kept: an nn.Sequential comes back
    assert type(ng.permute(net, 0, [3, 2, 1, 0])) is nn.Sequential


def test_skip_connections_and_reused_layers_are_not_dense():
    assert dense_hidden_layers(_fill(Skip(), 0)) == []
    with pytest.raises(UnsupportedModel, match="no dense hidden layer"):
        ng.permute(_fill(Skip(), 0), 0, [2, 1, 0])
    # l1 is called twice: neither ReLU around it is a dense hidden layer
    assert dense_hidden_layers(_fill(Reused(), 0)) == []


# ------------------------------------------------------------------------------------------
# permutations


@settings(max_examples=15)
@given(seed=st.integers(0, 10_000), which=st.sampled_from(["res", "conv"]), data=st.data())
def test_permute_keeps_the_function_and_reorders_every_unit_tensor(seed, which, data):
    model = _fill(ResMLP(), seed) if which == "res" else _convnet(seed)
    X = _x((2,) if which == "res" else (1, 8, 8), seed=seed)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    layers = dense_hidden_layers(model)
    layer = data.draw(st.integers(0, len(layers) - 1))
    dl = layers[layer]
    perm = data.draw(st.permutations(range(dl.width)).filter(lambda p: p != sorted(p)))
    p = ng.permute(model, layer, perm)
    assert type(p) is type(model)
    with torch.no_grad():
        assert (p(X) - model(X)).abs().max() <= 1e-12
    idx = torch.tensor(perm)
    for name, axis in dl.units:
        new, old = _tensor(p, name), _tensor(model, name)
        assert torch.equal(new, old.index_select(axis, idx))
        assert not torch.equal(new, old)  # the parameters did change
    # the user's model is untouched
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    # all layers at once
    perms = [data.draw(st.permutations(range(d.width))) for d in layers]
    q = permute_all(model, perms)
    with torch.no_grad():
        assert (q(X) - model(X)).abs().max() <= 1e-12


# ------------------------------------------------------------------------------------------
# permutation points


def _make_equal(model: nn.Module, layer: int, i: int, j: int) -> nn.Module:
    """A copy with unit j's incoming tensors set to unit i's (a permutation point)."""
    out = ng.permute(model, layer, list(range(dense_hidden_layers(model)[layer].width)))
    with torch.no_grad():
        for name, _ in dense_hidden_layers(out)[layer].incoming:
            t = _tensor(out, name)
            t[j] = t[i]
    return out


@pytest.mark.parametrize("which,layer", [("res", 0), ("res", 1), ("conv", 0), ("conv", 1)])
def test_merge_embed_and_split_keep_the_function_at_a_permutation_point(which, layer):
    model = _fill(ResMLP(), 3) if which == "res" else _convnet(3)
    X = _x((2,) if which == "res" else (1, 8, 8))
    i, j = 2, 0
    point = _make_equal(model, layer, i, j)
    reduced = merge_neurons(point, layer, i, j)
    assert type(reduced) is type(model)
    width = dense_hidden_layers(model)[layer].width
    assert dense_hidden_layers(reduced)[layer].width == width - 1
    back = embed_merged(reduced, layer, i, j, lam=0.3)
    assert dense_hidden_layers(back)[layer].width == width
    split = split_neuron(reduced, layer, 1, lam=-0.7, position=1)
    with torch.no_grad():
        assert (reduced(X) - point(X)).abs().max() <= 1e-12
        assert (back(X) - point(X)).abs().max() <= 1e-12
        assert (split(X) - point(X)).abs().max() <= 1e-12
    dl = dense_hidden_layers(back)[layer]
    for name, _ in dl.incoming:
        t = _tensor(back, name)
        assert torch.equal(t[i], t[j])
    # outgoing split lam : 1 - lam of the merged column
    for name, _ in dl.outgoing:
        W, W0 = _tensor(back, name), _tensor(point, name)
        torch.testing.assert_close(W[:, i] + W[:, j], W0[:, i] + W0[:, j], rtol=0, atol=1e-14)
        torch.testing.assert_close(W[:, i], 0.3 * (W0[:, i] + W0[:, j]), rtol=0, atol=1e-14)
    # a BatchNorm / PReLU of the layer changed width with it
    if which == "res" and layer == 0:
        assert reduced.bn1.num_features == reduced.act1.num_parameters == width - 1
        assert reduced.bn1.running_var.shape == (width - 1,)


def test_flat_directions_of_a_graph_model_are_flat_at_a_permutation_point():
    model = _fill(SmallRes(), 0)
    point = embed_merged(merge_neurons(model, 0, 0, 1), 0, 0, 1, lam=0.4)
    D = flat_directions(point, 0, 0, 1)
    assert D.shape == (sum(p.numel() for p in point.parameters()), 3)
    X = _x((1,))
    theta = torch.nn.utils.parameters_to_vector(point.parameters()).detach()
    names = [k for k, _ in point.named_parameters()]
    shapes = [p.shape for p in point.parameters()]
    numels = [p.numel() for p in point.parameters()]

    def f(t):
        d = {k: v.reshape(s) for k, v, s in zip(names, torch.split(t, numels), shapes)}
        return functional_call(point, d, (X,))

    with torch.no_grad():
        for c in range(D.shape[1]):
            assert (f(theta + 0.5 * D[:, c]) - f(theta)).abs().max() <= 1e-12


def test_find_permutation_saddle_on_a_residual_mlp_matches_autograd():
    model = _fill(SmallRes(), 2)
    X = torch.linspace(-2, 2, 12, dtype=F64)[:, None]
    y = torch.sin(2 * X)
    search = ng.CriticalPointSearch(lbfgs_steps=20, trust_steps=60, newton_steps=10, restarts=0)
    res = find_permutation_saddle(model, X, y, 0, 0, 2, search=search)
    point = res.model
    assert type(point) is SmallRes and res.n_data_null == 0
    assert res.converged and res.grad_norm <= 1e-8 and res.flat_residual <= 1e-8
    assert res.n_negative + res.n_zero >= res.n_zero_theory
    assert res.n_zero_theory == 3 and res.full_spectrum
    assert torch.equal(point.l1.weight[0], point.l1.weight[2])
    names = [k for k, _ in point.named_parameters()]
    shapes = [p.shape for p in point.parameters()]
    numels = [p.numel() for p in point.parameters()]

    def loss(t):
        d = {k: v.reshape(s) for k, v, s in zip(names, torch.split(t, numels), shapes)}
        return ((functional_call(point, d, (X,)) - y) ** 2).mean()

    theta = torch.nn.utils.parameters_to_vector(point.parameters()).detach().clone()
    g = torch.autograd.grad(loss(theta.requires_grad_(True)), theta)[0]
    assert abs(float(g.norm()) - res.grad_norm) <= 1e-10 + 1e-6 * res.grad_norm
    ev = np.linalg.eigvalsh(autograd_hessian(point, X, y).numpy())
    scale = np.abs(ev).max()
    np.testing.assert_allclose(res.eigenvalues, ev, rtol=0, atol=1e-9 * scale)
    assert res.loss == pytest.approx(float(loss(theta.detach())), rel=1e-12)
    # the original model was not modified and the reduced net is one unit narrower
    assert model.l1.out_features == 3 and res.reduced.l1.out_features == 2


# ------------------------------------------------------------------------------------------
# bad inputs


def test_bad_inputs_give_nngeom_errors():
    model = _fill(ResMLP(), 0)
    X, y = _x((2,)), torch.zeros(16, 2, dtype=F64)
    with pytest.raises(InvalidInput, match="dense hidden layer 2 does not exist"):
        ng.permute(model, 2, [0, 1, 2])
    with pytest.raises(InvalidInput, match="not a permutation"):
        ng.permute(model, 1, [0, 1, 1])
    with pytest.raises(InvalidInput, match="i == j"):
        merge_neurons(model, 0, 1, 1)
    with pytest.raises(InvalidInput, match="out of range"):
        merge_neurons(model, 1, 0, 3)
    with pytest.raises(InvalidInput, match="i == j"):
        find_permutation_saddle(model, X, y, 0, 2, 2)
    with pytest.raises(InvalidInput, match="does not exist"):
        find_permutation_saddle(model, X, y, 5, 0, 1)
    with pytest.raises(InvalidInput, match="examples"):
        find_permutation_saddle(model, X, y[:3], 0, 0, 1)
    with pytest.raises(NngeomError):
        find_permutation_saddle(model, _x((3,)), y, 0, 0, 1)
    with pytest.raises(InvalidInput, match="must be an int"):
        ng.permute(model, "0", [0, 1, 2])
    with pytest.raises(UnsupportedModel, match="no dense hidden layer"):
        find_permutation_saddle(_fill(Skip(), 0), X, y[:, :1], 0, 0, 1)
    # functions that need an MLP chain say so and name the ones that work on graphs
    with pytest.raises(UnsupportedModel, match="needs an MLP chain.*dense_hidden_layers"):
        canonical_form(model)
    with pytest.raises(UnsupportedModel, match="training mode"):
        ng.permute(_fill(ResMLP(), 0).train(), 0, [0, 1, 2, 3, 4])


def _conv_bn_head(seed: int) -> nn.Sequential:
    net = nn.Sequential(
        nn.Conv2d(1, 2, 3, device="meta", dtype=F64),
        nn.ReLU(),
        nn.Flatten(),
        _lin(72, 5),
        nn.BatchNorm1d(5, device="meta", dtype=F64),
        nn.ReLU(),
        nn.Dropout(0.2),
        _lin(5, 2),
    )
    return _fill(net, seed)


def test_a_batchnorm_in_a_conv_head_needs_the_input_shape_and_is_permuted_with_the_layer():
    model = _conv_bn_head(0)
    with pytest.raises(UnsupportedModel, match="input_shape"):
        dense_hidden_layers(model)
    shape = (1, 8, 8)
    (dl,) = dense_hidden_layers(model, shape)
    assert (dl.linear_in, dl.between, dl.linear_out, dl.width) == ("3", ("4",), ("7",), 5)
    X = _x(shape)
    p = ng.permute(model, 0, [4, 0, 3, 1, 2], input_shape=shape)
    assert torch.equal(p[4].running_mean, model[4].running_mean[[4, 0, 3, 1, 2]])
    point = _make_equal_shape(model, shape, 1, 3)
    reduced = merge_neurons(point, 0, 1, 3, input_shape=shape)
    back = embed_merged(reduced, 0, 1, 3, lam=0.25, input_shape=shape)
    with torch.no_grad():
        assert (p(X) - model(X)).abs().max() <= 1e-12
        assert (reduced(X) - point(X)).abs().max() <= 1e-12
        assert (back(X) - point(X)).abs().max() <= 1e-12
    assert reduced[4].num_features == 4 and back[4].running_var.shape == (5,)


def _make_equal_shape(model, shape, i, j):
    out = ng.permute(model, 0, list(range(5)), input_shape=shape)
    with torch.no_grad():
        for name, _ in dense_hidden_layers(out, shape)[0].incoming:
            t = _tensor(out, name)
            t[j] = t[i]
    return out


def test_a_batchnorm_that_normalises_another_axis_than_the_units_is_not_a_dense_layer():
    # on (N, 4, 3) inputs, Linear(3, 4) gives (N, 4, 4): BatchNorm1d(4) normalises axis 1, the
    # Linear's units are on axis 2, so permuting the units would change the function
    model = nn.Sequential(
        _lin(3, 4), nn.BatchNorm1d(4, device="meta", dtype=F64), nn.ReLU(), _lin(4, 2)
    )
    model = _fill(model, 0)
    assert dense_hidden_layers(model, (4, 3)) == []
