"""Oracle tests of nngeom.knots: exact knots vs rational arithmetic and dense sampling + bisection."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import nngeom as ng
from nngeom.knots import _knots_from, _partition, knot_upper_bound, knots, layer_forms
from nngeom.knots import tight_knot_network as tight

pytestmark = pytest.mark.usefixtures("one_thread")


class HardTanh3(nn.Module):
    """A piecewise-linear activation with 2 breakpoints per unit (a test double of a VAF)."""

    nngeom_elementwise = True
    nngeom_piecewise_linear = True
    nngeom_name = "hardtanh3"

    def forward(self, z):
        return torch.clamp(z, -1.0, 0.5) + 0.25 * torch.relu(z - 0.5)

    def nngeom_piecewise_linear_form(self, width):
        bp = torch.tensor([[-1.0, 0.5]], dtype=torch.float64).expand(width, 2).clone()
        sl = torch.tensor([[0.0, 1.0, 0.25]], dtype=torch.float64).expand(width, 3).clone()
        ic = torch.tensor([[-1.0, 0.0, 0.375]], dtype=torch.float64).expand(width, 3).clone()
        return bp, sl, ic


def _set(net: nn.Sequential, params: list[tuple[list, list]]) -> nn.Sequential:
    lins = [m for m in net if isinstance(m, nn.Linear)]
    with torch.no_grad():
        for lin, (w, b) in zip(lins, params, strict=True):
            lin.weight.copy_(torch.tensor(w, dtype=lin.weight.dtype))
            lin.bias.copy_(torch.tensor(b, dtype=lin.bias.dtype))
    return net


def _pattern(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    view = ng.as_mlp(net)
    h, cols = x, []
    for lin, act in zip(view.linears[:-1], view.activations, strict=True):
        z = lin(h)
        bp, _, _ = ng.nets.piecewise_linear_form(act, z.shape[1])
        cols.append((z[..., None] > bp).sum(-1))
        h = act(z)
    return torch.cat(cols, 1)


def dense_oracle(net: nn.Module, lo: float, hi: float, n: int = 20001) -> tuple[int, int]:
    """(knots, breakpoints) by dense sampling of patterns, bisection, and piece slopes."""
    net = net.double()
    xs = torch.linspace(lo, hi, n, dtype=torch.float64)[:, None]
    with torch.no_grad():
        P = _pattern(net, xs)
        idx = torch.nonzero((P[1:] != P[:-1]).any(1)).flatten()
        a, b = xs[idx, 0].clone(), xs[idx + 1, 0].clone()
        pa = P[idx]
        for _ in range(64):
            m = 0.5 * (a + b)
            same = (_pattern(net, m[:, None]) == pa).all(1)
            a, b = torch.where(same, m, a), torch.where(same, b, m)
        bps = (0.5 * (a + b)).numpy()
        edges = np.concatenate(([lo], bps, [hi]))
        x1 = torch.from_numpy(edges[:-1] + (edges[1:] - edges[:-1]) / 3)[:, None]
        x2 = torch.from_numpy(edges[:-1] + 2 * (edges[1:] - edges[:-1]) / 3)[:, None]
        slopes = ((net(x2) - net(x1)) / (x2 - x1)).numpy()
    scale = max(1.0, float(np.abs(slopes).max()))
    change = np.abs(np.diff(slopes, axis=0)).max(1) > 1e-7 * scale
    return int(change.sum()), int(bps.size)


def _random_net(seed: int, depth: int, width: int, outputs: int, act: str) -> nn.Sequential:
    rng = np.random.default_rng(seed)
    sizes = [1, *(int(rng.integers(1, width + 1)) for _ in range(depth)), outputs]
    activation = nn.LeakyReLU(0.25) if act == "leaky" else (HardTanh3() if act == "ht3" else "relu")
    net = ng.mlp(sizes, activation, seed=seed, dtype=torch.float64)
    # plant zero weights / dead units in some nets
    if seed % 5 == 0:
        with torch.no_grad():
            net[0].weight[0, 0] = 0.0
    if seed % 7 == 0:
        with torch.no_grad():
            net[0].bias[-1] = -100.0
    return net


@settings(max_examples=300)
@given(
    seed=st.integers(0, 10**6),
    depth=st.integers(1, 3),
    width=st.integers(1, 5),
    outputs=st.integers(1, 2),
    act=st.sampled_from(["relu", "leaky", "ht3"]),
    bounded=st.booleans(),
)
def test_float_engine_agrees_with_rational_arithmetic(seed, depth, width, outputs, act, bounded):
    net = _random_net(seed, depth, width, outputs, act)
    lo, hi = (-2.0, 3.0) if bounded else (-math.inf, math.inf)
    got = knots(net, lo, hi)
    ref = knots(net, lo, hi, exact=True)
    assert ref.exact and ref.float_agrees
    assert got.count == ref.count and got.n_breakpoints == ref.n_breakpoints
    np.testing.assert_allclose(got.positions, ref.positions, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(got.slopes, ref.slopes, rtol=1e-9, atol=1e-12)
    assert not got.ambiguous


@settings(max_examples=30)
@given(
    seed=st.integers(0, 10**6),
    depth=st.integers(1, 3),
    width=st.integers(1, 6),
    outputs=st.integers(1, 2),
    act=st.sampled_from(["relu", "leaky", "ht3"]),
)
def test_counts_match_dense_sampling_and_bisection(seed, depth, width, outputs, act):
    net = _random_net(seed, depth, width, outputs, act)
    got = knots(net, -3.0, 3.0)
    assert (got.count, got.n_breakpoints) == dense_oracle(net, -3.0, 3.0)
    # the pieces reproduce the network
    xs = torch.linspace(-3, 3, 1001, dtype=torch.float64)[:, None]
    with torch.no_grad():
        np.testing.assert_allclose(got.evaluate(xs[:, 0].numpy()), net(xs).numpy(), atol=1e-9)
    assert set(got.positions.tolist()) <= set(got.breakpoints.tolist())


def _rational_sweep(n_nets: int) -> list[int]:
    bad = []
    for seed in range(n_nets):
        net = _random_net(seed, 1 + seed % 3, 3, 1 + seed % 2, ["relu", "leaky", "ht3"][seed % 3])
        a, e = knots(net, -4.0, 4.0), knots(net, -4.0, 4.0, exact=True)
        if a.count != e.count or a.n_breakpoints != e.n_breakpoints:
            bad.append(seed)
    return bad


def test_a_thousand_small_nets_against_rationals():
    assert _rational_sweep(1000) == []


@pytest.mark.slow
def test_ten_thousand_small_nets_against_rationals():
    assert _rational_sweep(10_000) == []


def test_planted_coincident_breakpoints():
    # two first-layer units with the same kink at x = 0.5, a third at 0.5 too via scaling
    net = _set(
        ng.mlp([1, 3, 1], dtype=torch.float64),
        [([[2.0], [-4.0], [1.0]], [-1.0, 2.0, -0.5]), ([[1.0, 1.0, 3.0]], [0.0])],
    )
    k = knots(net, -2, 2, exact=True)
    assert k.count == 1 and k.n_breakpoints == 1 and k.positions[0] == 0.5
    assert knots(net, -2, 2).count == 1


def test_planted_cancelling_neurons_give_breakpoints_but_no_knot():
    # relu(z) - relu(-z) = z: a breakpoint at 0.25 that is not a knot
    net = _set(
        ng.mlp([1, 2, 1], dtype=torch.float64),
        [([[1.0], [-1.0]], [-0.25, 0.25]), ([[1.0, -1.0]], [0.0])],
    )
    k = knots(net)
    assert k.count == 0 and k.n_breakpoints == 1 and k.breakpoints[0] == 0.25
    assert knots(net, exact=True).count == 0
    assert dense_oracle(net, -1, 1) == (0, 1)
    # a downstream dead unit hides a layer-1 kink from the output
    net2 = _set(
        ng.mlp([1, 2, 1, 1], dtype=torch.float64),
        [([[1.0], [1.0]], [0.0, -1.0]), ([[1.0, 1.0]], [-100.0]), ([[1.0]], [0.0])],
    )
    k2 = knots(net2, -5, 5)
    assert k2.count == 0 and k2.n_breakpoints == 2


def test_knots_exactly_at_the_interval_ends_are_excluded():
    net = _set(
        ng.mlp([1, 3, 1], dtype=torch.float64),
        [([[1.0], [1.0], [1.0]], [1.0, 0.0, -2.0]), ([[1.0, -2.0, 1.5]], [0.0])],
    )
    assert knots(net).positions.tolist() == [-1.0, 0.0, 2.0]
    assert knots(net, -1.0, 2.0).positions.tolist() == [0.0]
    assert knots(net, -1.0, 2.0, exact=True).count == 1
    assert knots(net, 0.0, 5.0).positions.tolist() == [2.0]


def test_zero_weights_and_dead_units():
    net = _set(
        ng.mlp([1, 3, 2], dtype=torch.float64),
        [
            ([[0.0], [0.0], [3.0]], [0.0, 1.0, -1.5]),
            ([[1.0, 2.0, 0.0], [0.0, 0.0, 0.0]], [0.0, 1.0]),
        ],
    )
    k = knots(net)
    # the only unit that crosses is the third; no output reads it
    assert k.count == 0 and k.n_breakpoints == 1
    assert k.slopes.shape == (1, 2)


def test_multiple_outputs_union_of_knots():
    net = _set(
        ng.mlp([1, 2, 2], dtype=torch.float64),
        [([[1.0], [1.0]], [0.0, -1.0]), ([[1.0, 0.0], [0.0, 1.0]], [0.0, 0.0])],
    )
    assert knots(net).positions.tolist() == [0.0, 1.0]


def test_whole_line_restricts_to_intervals():
    net = ng.mlp([1, 16, 16, 2], seed=3, dtype=torch.float64)
    full = knots(net)
    for lo, hi in [(-1.0, 1.0), (-10.0, 0.3), (0.0, math.inf), (-math.inf, -0.5)]:
        part = knots(net, lo, hi)
        inside = full.positions[(full.positions > lo) & (full.positions < hi)]
        np.testing.assert_allclose(part.positions, inside, rtol=1e-12)


def test_float32_model_and_to_dict():
    net = ng.mlp([1, 8, 8, 1], seed=1)
    k = knots(net, -5, 5)
    d = k.to_dict()
    assert d["count"] == k.count == len(d["positions"]) and isinstance(d["count"], int)
    assert knots(net, -5, 5, exact=True).count == k.count
    assert knots(net).to_dict()["lo"] == "-inf"


def test_bound_formula_and_big_ints():
    assert knot_upper_bound([]) == 0
    assert knot_upper_bound([3]) == 3
    assert knot_upper_bound([64, 64, 64]) == 65**3 - 1 == 274_624
    big = knot_upper_bound([1000] * 10)
    assert isinstance(big, int) and big == 1001**10 - 1
    for bad in ([0], [2, -1], [1.5], "ab", [True]):
        with pytest.raises(ng.InvalidInput):
            knot_upper_bound(bad)


def test_tight_networks_attain_the_bound_for_widths_3_to_8_depths_1_to_4():
    for depth in range(1, 5):
        for widths in itertools.product(range(3, 9), repeat=depth):
            k = knots(tight(list(widths)))
            assert k.count == knot_upper_bound(widths), widths
            assert not k.ambiguous


def test_tight_networks_exactly_in_rationals():
    for widths in ([3], [3, 3], [4, 3], [3, 5], [3, 3, 2]):
        k = knots(tight(widths), exact=True)
        assert k.count == knot_upper_bound(widths) and k.float_agrees


def test_last_width_two_still_attains_but_narrow_inner_layers_do_not():
    assert knots(tight([5, 2])).count == knot_upper_bound([5, 2])
    assert knots(tight([7])).count == 7
    # width 1 or 2 before the last layer: strictly below the product bound
    for widths in ([1, 3], [2, 3], [3, 1], [2, 2]):
        assert knots(tight(widths), exact=True).count < knot_upper_bound(widths)


def test_bad_input():
    net = ng.mlp([1, 4, 1], seed=0)
    with pytest.raises(ng.UnsupportedModel, match="ONE input"):
        knots(ng.mlp([2, 4, 1]))
    with pytest.raises(ng.InvalidInput):
        knots(net, 1.0, 1.0)
    with pytest.raises(ng.InvalidInput):
        knots(net, 2.0, -1.0)
    with pytest.raises(ng.InvalidInput):
        knots(net, math.nan, 1.0)
    with pytest.raises(ng.UnsupportedModel, match="smooth"):
        knots(ng.mlp([1, 4, 1], activation="tanh"))
    nan_net = ng.mlp([1, 4, 1])
    with torch.no_grad():
        nan_net[0].weight[0, 0] = math.nan
    with pytest.raises(ng.InvalidModel):
        knots(nan_net)
    with pytest.raises(ng.UnsupportedModel):
        knots(nn.Conv1d(1, 1, 3))
    with pytest.raises(ng.InvalidInput):
        knots(tight([8, 8, 8]), exact=True, max_exact_pieces=100)
    with pytest.raises(ng.InvalidInput):
        tight([])


def test_dense_engine_agrees_with_fused_engine():
    for seed in range(100):
        net = _random_net(seed, 3, 8, 2, ["relu", "leaky", "ht3"][seed % 3])
        _, layers = layer_forms(net)
        a = _knots_from(_partition(layers, -5.0, 5.0), -5.0, 5.0, 1e-9)
        b = knots(net, -5.0, 5.0)
        assert (a.count, a.n_breakpoints) == (b.count, b.n_breakpoints)
        np.testing.assert_allclose(a.slopes, b.slopes, atol=1e-10)


@pytest.mark.parametrize("share", ["layer", "neuron"])
def test_trainable_piecewise_linear_activation_vaf(share):
    from nngeom.activations import VAF

    for seed in range(3):
        vaf = VAF(k=3, share=share, init="gelu", num_channels=5 if share == "neuron" else None)
        net = ng.mlp([1, 5, 5, 2], vaf, seed=seed, dtype=torch.float64)
        if share == "neuron":
            net(torch.zeros(1, 1, dtype=torch.float64))
        got = knots(net, -4.0, 4.0)
        ref = knots(net, -4.0, 4.0, exact=True)
        assert ref.float_agrees and got.count == ref.count
        assert (got.count, got.n_breakpoints) == dense_oracle(net, -4.0, 4.0)
    with pytest.raises(ng.UnsupportedModel, match="smooth"):
        knots(ng.mlp([1, 4, 1], VAF(k=2, init="tanh", hidden="tanh"), dtype=torch.float64))


def test_tight_knot_network_refuses_unbuildable_sizes_at_once():
    import time

    t0 = time.perf_counter()
    with pytest.raises(ng.InvalidInput, match="MAX_TIGHT_WEIGHTS"):
        tight([10**6] * 3)
    assert time.perf_counter() - t0 < 1.0
    assert knot_upper_bound([10**6] * 3) == (10**6 + 1) ** 3 - 1  # exact big int
    for bad in ("ab", None, 3, [0], [1.5], [True]):
        with pytest.raises(ng.InvalidInput):
            tight(bad)
        with pytest.raises(ng.InvalidInput):
            knot_upper_bound(bad)
    with pytest.raises(ng.InvalidInput, match="dtype"):
        tight([3], dtype=torch.complex128)
    with pytest.raises(ng.InvalidInput, match="eps"):
        tight([3], eps="x")


@pytest.mark.parametrize(
    "args, kwargs",
    [
        ((1j, 2.0), {}),
        (("a", 1.0), {}),
        ((10**400, 10**401), {}),
        ((-1.0, 1.0), {"rtol": "x"}),
        ((-1.0, 1.0), {"rtol": float("nan")}),
        ((-1.0, 1.0), {"max_exact_pieces": 0}),
        ((-1.0, 1.0), {"exact": "yes"}),
        ((-1.0, 1.0), {"input_shape": "ab"}),
        ((-1.0, 1.0), {"input_shape": (-1,)}),
        ((-1.0, 1.0), {"input_shape": (10**12,)}),
    ],
)
def test_knots_bad_arguments_raise_nngeom_errors(args, kwargs):
    with pytest.raises(ng.InvalidInput):
        knots(ng.mlp([1, 4, 4, 1], seed=0), *args, **kwargs)


def test_knots_refuse_complex_and_meta_models():
    net = ng.mlp([1, 4, 1], seed=0)
    net[0].weight = nn.Parameter(net[0].weight.to(torch.complex128))
    with pytest.raises(ng.InvalidModel, match="complex"):
        knots(net)
    with pytest.raises(ng.InvalidModel, match="meta"):
        knots(ng.mlp([1, 4, 1], seed=0).to("meta"))
