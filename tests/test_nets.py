"""The MLP view and the mlp() builder."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import nngeom as ng
from nngeom.nets import activation_name, make_activation, piecewise_linear_form

ACTS = ["relu", "leaky_relu", "tanh", "sigmoid", "softplus", "identity"]


@settings(max_examples=40)
@given(
    sizes=st.lists(st.integers(1, 6), min_size=2, max_size=5),
    act=st.sampled_from(ACTS),
    seed=st.integers(0, 10_000),
)
def test_view_computes_the_same_function(sizes, act, seed):
    net = ng.mlp(sizes, act, seed=seed, dtype=torch.float64)
    view = ng.as_mlp(net)
    assert view.sizes == tuple(sizes)
    assert view.widths == tuple(sizes[1:-1])
    x = torch.randn(7, sizes[0], dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    assert torch.equal(view(x), net(x))
    # pre-activations are the Linear outputs, computed independently here
    h = x
    for l, z in enumerate(view.pre_activations(x)):
        want = h @ view.weights[l].T + view.biases[l]
        assert torch.allclose(z, want, atol=1e-12)
        h = view.activations[l](want)
    assert view.patterns(x).shape == (7, sum(sizes[1:-1]))


def test_mlp_is_seeded_and_leaves_the_global_rng_alone():
    state = torch.random.get_rng_state()
    a, b, c = ng.mlp([3, 5, 2], seed=1), ng.mlp([3, 5, 2], seed=1), ng.mlp([3, 5, 2], seed=2)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert not torch.equal(a[0].weight, c[0].weight)
    # PyTorch's default range: |w| <= 1/sqrt(fan_in)
    assert a[0].weight.abs().max() <= 3**-0.5 and a[2].weight.abs().max() <= 5**-0.5


def test_mlp_builds_fresh_activation_modules_per_layer():
    act = nn.LeakyReLU(0.2)
    net = ng.mlp([2, 3, 3, 1], act)
    assert net[1] is act and net[3] is not act and net[3].negative_slope == 0.2


@pytest.mark.parametrize("sizes", [[], [3], [3, 0, 1], [3, -1], [2.5, 1], [True, 2]])
def test_mlp_rejects_bad_sizes(sizes):
    with pytest.raises(ng.InvalidInput):
        ng.mlp(sizes)


def test_mlp_rejects_absurd_sizes():
    with pytest.raises(ng.InvalidInput, match="parameters"):
        ng.mlp([100_000, 100_000, 1])


def test_unknown_activation():
    with pytest.raises(ng.InvalidInput, match="unknown activation"):
        make_activation("swishy")


def test_as_mlp_flattens_nested_sequentials_and_skips_dropout():
    net = nn.Sequential(
        nn.Sequential(nn.Linear(2, 4), nn.Tanh()), nn.Dropout(0.1), nn.Linear(4, 3), nn.Sigmoid()
    )
    with pytest.raises(ng.UnsupportedModel, match=r"training mode.*model\.eval\(\)"):
        ng.as_mlp(net)  # train-mode Dropout is random: refused, not silently skipped
    view = ng.as_mlp(net.eval())
    assert view.sizes == (2, 4, 3) and activation_name(view.activations[0]) == "tanh"
    assert isinstance(view.output_activation, nn.Sigmoid)
    assert not view.piecewise_linear


def test_consecutive_linears_get_an_identity():
    view = ng.as_mlp(nn.Sequential(nn.Linear(2, 3), nn.Linear(3, 1)))
    assert view.sizes == (2, 3, 1) and isinstance(view.activations[0], nn.Identity)


class Ordered(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(2, 5)
        self.act = nn.ReLU()
        self.b = nn.Linear(5, 1)

    def forward(self, x):
        return self.b(self.act(self.a(x)))


class Scrambled(Ordered):
    def forward(self, x):  # adds a skip connection: not an MLP
        return self.b(self.act(self.a(x))) + x.sum(dim=1, keepdim=True)


def test_custom_module_in_registration_order_is_accepted():
    view = ng.as_mlp(Ordered())
    assert view.sizes == (2, 5, 1)


def test_custom_module_whose_forward_differs_is_refused():
    with pytest.raises(ng.UnsupportedModel, match="graph, not a chain"):
        ng.as_mlp(Scrambled())


class Custom(nn.Module):
    def forward(self, x):
        return x * x


class Doubling(nn.Module):
    def forward(self, x):
        return x * 2


def test_affine_custom_modules_are_folded_into_the_linear_layers():
    net = nn.Sequential(nn.Linear(2, 3), Doubling(), nn.ReLU(), nn.Linear(3, 1)).double()
    view = ng.as_mlp(net)
    assert view.sizes == (2, 3, 1)
    x = torch.randn(5, 2, dtype=torch.float64)
    assert torch.allclose(view.forward(x), net(x), atol=1e-12)


@pytest.mark.parametrize(
    "net, match",
    [
        (nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Linear(2, 1)), "Conv2d"),
        (nn.Sequential(nn.Linear(2, 2), Custom(), nn.Linear(2, 1)), "Custom"),
        (nn.Sequential(nn.ReLU(), nn.Linear(2, 1)), "starts with an activation"),
        (nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Tanh(), nn.Linear(2, 1)), "two activations"),
        (nn.Sequential(nn.ReLU()), "no nn.Linear"),
        (nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(4, 1)), "do not chain"),
    ],
)
def test_unsupported_models(net, match):
    with pytest.raises(ng.UnsupportedModel, match=match):
        ng.as_mlp(net)


def test_not_a_module():
    with pytest.raises(ng.UnsupportedModel):
        ng.as_mlp("a model")


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_weights(bad):
    net = ng.mlp([2, 3, 1])
    with torch.no_grad():
        net[2].bias[0] = bad
    with pytest.raises(ng.InvalidModel, match="layer 1 has a non-finite bias"):
        ng.as_mlp(net)
    assert ng.as_mlp(net, check_finite=False).sizes == (2, 3, 1)


@pytest.mark.parametrize("act", [nn.ReLU(), nn.LeakyReLU(0.3), nn.Identity()])
def test_piecewise_linear_form_evaluates_to_the_activation(act):
    bp, slopes, icpt = piecewise_linear_form(act, 4)
    z = torch.linspace(-5, 5, 1001, dtype=torch.float64)
    piece = torch.searchsorted(bp[0].contiguous(), z)
    got = slopes[0][piece] * z + icpt[0][piece]
    assert torch.allclose(got, act(z))
    assert bp.shape[0] == slopes.shape[0] == 4 and slopes.shape[1] == bp.shape[1] + 1


def test_piecewise_linear_form_refuses_smooth_activations():
    with pytest.raises(ng.UnsupportedModel, match="not piecewise linear"):
        piecewise_linear_form(nn.Tanh(), 3)


def test_plug_in_activation_joins_the_view():
    class Twice(nn.Module):
        nngeom_elementwise = True
        nngeom_name = "twice"

        def forward(self, z):
            return 2 * z

    view = ng.as_mlp(nn.Sequential(nn.Linear(1, 2), Twice(), nn.Linear(2, 1)))
    assert view.activation == "twice"
