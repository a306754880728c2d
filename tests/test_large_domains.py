"""Knots and regions on huge finite domains (up to +-1e300) equal the well-conditioned answers.

Regression tests for counts that used to collapse on wide intervals (``(-1e15, 1e15)`` gave 1
knot of 14; ``regions_2d(extent=1e50)`` lost most regions) and property tests (hypothesis)
against the whole-line answer, for the MLP engines and the graph engine (residual, conv).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

import nngeom as ng

pytestmark = pytest.mark.usefixtures("one_thread")
F64 = torch.float64


def _lin(g: torch.Generator, n_in: int, n_out: int) -> nn.Linear:
    lin = nn.Linear(n_in, n_out, dtype=F64)
    with torch.no_grad():
        lin.weight.copy_(torch.randn(n_out, n_in, generator=g, dtype=F64))
        lin.bias.copy_(torch.randn(n_out, generator=g, dtype=F64))
    return lin


class _Res(nn.Module):
    """A residual block (a graph: the MLP view refuses it, the graph engine runs it)."""

    def __init__(self, d: int, seed: int) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.a, self.b, self.c = _lin(g, d, 6), _lin(g, 6, 6), _lin(g, 6, 2)

    def forward(self, x):
        h = torch.relu(self.a(x))
        return self.c(h + F.relu(self.b(h)))


def _conv(seed: int) -> nn.Module:
    g = torch.Generator().manual_seed(seed)
    conv = nn.Conv2d(1, 2, 3, dtype=F64)
    with torch.no_grad():
        conv.weight.copy_(torch.randn(conv.weight.shape, generator=g, dtype=F64) * 0.5)
        conv.bias.copy_(torch.randn(2, generator=g, dtype=F64) * 0.3)
    return nn.Sequential(conv, nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), _lin(g, 8, 2)).eval()


def _bound(sign: int, exponent: float, mantissa: float) -> float:
    return sign * mantissa * 10.0**exponent


# ----------------------------------------------------------------------------------------------
# the audit's cases
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("lo, hi", [(-1e15, 1e15), (-1e308, 1e308), (-1.7e308, 1e10)])
def test_knots_on_a_huge_interval_are_the_whole_lines(lo, hi):
    net = ng.mlp([1, 8, 8, 1], seed=0)
    whole = ng.knots(net)
    k = ng.knots(net, lo, hi)
    assert whole.count == 14
    assert k.count == whole.count and not k.ambiguous
    np.testing.assert_array_equal(k.positions, whole.positions)


def test_a_far_breakpoint_does_not_merge_the_near_ones():
    """A unit with a tiny weight puts a breakpoint at 1e13; the next layer's breakpoints at 0 and
    1e-5 stay distinct (tolerances are local, not relative to the farthest breakpoint)."""
    net = ng.mlp([1, 2, 2, 1], seed=0, dtype=F64)
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[1.0], [1e-13]], dtype=F64))
        net[0].bias.copy_(torch.tensor([1.0, -1.0], dtype=F64))
        net[2].weight.copy_(torch.tensor([[1.0, 0.0], [1.0, 0.0]], dtype=F64))
        net[2].bias.copy_(torch.tensor([-1.0, -1.0 - 1e-5], dtype=F64))
        net[4].weight.copy_(torch.tensor([[1.0, 2.0]], dtype=F64))
    k = ng.knots(net)
    assert k.count == 2  # -1 and 1e13 are breakpoints, not knots
    np.testing.assert_allclose(k.positions, [0.0, 1e-5], rtol=1e-9, atol=1e-15)
    assert 1e13 * 0.99 < k.breakpoints[-1] < 1e13 * 1.01


def test_regions_on_a_huge_line_and_plane_match_moderate_ones():
    net = ng.mlp([2, 8, 8, 1], seed=0)
    ref = ng.regions_on_line(net, [-1e3, 0.3], [1e3, 0.3]).n_regions
    for E in (1e15, 1e300):
        r = ng.regions_on_line(net, [-E, 0.3], [E, 0.3])
        assert r.n_regions == ref
    ref2 = ng.regions_2d(net, extent=1e4).n_regions
    for E in (1e10, 1e50, 1e300):
        assert ng.regions_2d(net, extent=E).n_regions == ref2


def test_regions_along_long_lines_keep_their_counts():
    net = ng.mlp([2, 8, 8, 1], seed=0)
    X = torch.zeros(2, 2, dtype=F64)
    ref = ng.regions_along_lines(net, X, n_lines=4, length=1e4)["n_regions"]
    assert ng.regions_along_lines(net, X, n_lines=4, length=1e300)["n_regions"] == ref


def test_graph_knots_on_a_huge_interval_are_the_whole_lines():
    net = _Res(1, 0).eval()
    whole = ng.knots(net)
    k = ng.knots(net, -1e300, 1e300)
    assert k.count == whole.count > 0
    np.testing.assert_array_equal(k.positions, whole.positions)


def test_a_graph_slice_too_wide_is_flagged_or_refused():
    net = _Res(2, 1).eval()
    o, u, v = np.zeros(2), np.array([1.0, 0.0]), np.array([0.0, 1.0])
    assert not ng.regions_2d(net, o, u, v, extent=10.0).ambiguous
    r = ng.regions_2d(net, o, u, v, extent=1e50)
    assert r.ambiguous and "extent" in r.notes[0]
    with pytest.raises(ng.InvalidInput, match=r"within 1e\+150 of the origin"):
        ng.regions_2d(net, o, u, v, extent=1e300)


# ----------------------------------------------------------------------------------------------
# properties: any interval up to +-1e300
# ----------------------------------------------------------------------------------------------
_interval = st.tuples(
    st.sampled_from([-1, 1]),
    st.floats(-3.0, 300.0),
    st.floats(1.0, 1.7),
    st.sampled_from([-1, 1]),
    st.floats(-3.0, 300.0),
    st.floats(1.0, 1.7),
)


def _lohi(iv) -> tuple[float, float]:
    a, b = _bound(*iv[:3]), _bound(*iv[3:])
    if a == b:
        b = a + max(1.0, abs(a))
    return min(a, b), max(a, b)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), w=st.integers(1, 8), depth=st.integers(1, 3), iv=_interval)
def test_knots_inside_any_interval_are_the_whole_lines_inside(seed, w, depth, iv):
    lo, hi = _lohi(iv)
    net = ng.mlp([1] + [w] * depth + [1], seed=seed)
    whole = ng.knots(net)
    k = ng.knots(net, lo, hi)
    inside = whole.positions[(whole.positions > lo) & (whole.positions < hi)]
    # the same knots (a moderate interval is partitioned directly: positions may differ in the
    # last bit from the whole line's)
    assert k.count == inside.size
    np.testing.assert_allclose(k.positions, inside, rtol=1e-12, atol=1e-300)
    bp = whole.breakpoints
    np.testing.assert_allclose(k.breakpoints, bp[(bp > lo) & (bp < hi)], rtol=1e-12, atol=1e-300)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 1000), iv=_interval)
def test_graph_knots_inside_any_interval_are_the_whole_lines_inside(seed, iv):
    lo, hi = _lohi(iv)
    net = _Res(1, seed).eval()
    whole = ng.knots(net)
    k = ng.knots(net, lo, hi)
    np.testing.assert_array_equal(
        k.positions, whole.positions[(whole.positions > lo) & (whole.positions < hi)]
    )


def _restricted(net: nn.Sequential, c: float) -> nn.Sequential:
    """The 1-input net ``s -> net((s, c))`` (the line y = c of a 2-input net)."""
    first = net[0]
    lin = nn.Linear(1, first.out_features, dtype=F64)
    with torch.no_grad():
        lin.weight.copy_(first.weight[:, :1].to(F64))
        lin.bias.copy_(first.bias.to(F64) + c * first.weight[:, 1].to(F64))
    rest = [m.to(F64) for m in list(net)[1:]]
    return nn.Sequential(lin, *rest)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10_000),
    w=st.integers(1, 8),
    c=st.floats(-3.0, 3.0),
    ea=st.floats(5.0, 300.0),
    eb=st.floats(5.0, 300.0),
)
def test_regions_on_any_long_line_match_the_whole_line(seed, w, c, ea, eb):
    """Horizontal lines y = c (exact in float64 at any length) against the whole-line engine."""
    net = ng.mlp([2, w, w, 1], seed=seed, dtype=F64)
    a, b = -(10.0**ea), 10.0**eb
    bp = ng.knots(_restricted(net, c)).breakpoints
    ref = 1 + int(((bp > a) & (bp < b)).sum())
    r = ng.regions_on_line(net, [a, c], [b, c])
    assert r.n_regions == ref


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 1000), c=st.floats(-2.0, 2.0), e=st.floats(5.0, 300.0))
def test_graph_regions_on_any_long_line_match_a_moderate_one(seed, c, e):
    net = _Res(2, seed).eval()
    ref = ng.regions_on_line(net, [-1e4, c], [1e4, c]).n_regions
    ref5 = ng.regions_on_line(net, [-1e5, c], [1e5, c]).n_regions
    if ref != ref5:  # a breakpoint beyond 1e4: the moderate reference is not the whole line
        return
    assert ng.regions_on_line(net, [-(10.0**e), c], [10.0**e, c]).n_regions == ref


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 1000), w=st.integers(2, 6), e=st.floats(5.0, 300.0))
def test_regions_2d_on_any_huge_extent_match_a_moderate_one(seed, w, e):
    net = ng.mlp([2, w, w, 1], seed=seed)
    ref = ng.regions_2d(net, extent=1e4).n_regions
    if ng.regions_2d(net, extent=1e5).n_regions != ref:  # a vertex beyond 1e4
        return
    r = ng.regions_2d(net, extent=10.0**e)
    assert r.n_regions == ref
    assert not r.ambiguous


def test_conv_knots_line_is_consistent_on_huge_segments():
    net = _conv(0)
    g = np.random.default_rng(0)
    c = g.normal(size=(1, 6, 6))
    u = np.zeros((1, 6, 6))
    u[0, 2, 3] = 1.0  # an axis direction: x0, x1 keep c exactly at any length
    ref = ng.regions_on_line(net, c - 1e3 * u, c + 1e3 * u).n_regions
    assert ng.regions_on_line(net, c - 1e4 * u, c + 1e4 * u).n_regions == ref
    big = ng.regions_on_line(net, c - 1e200 * u, c + 1e200 * u)
    assert big.n_regions == ref


# ----------------------------------------------------------------------------------------------
# overflow from finite weights is refused, never a silent number
# ----------------------------------------------------------------------------------------------
def _huge(sizes, scale=1e300):
    net = ng.mlp(sizes, seed=0, dtype=F64)
    with torch.no_grad():
        for p in net.parameters():
            p.mul_(scale)
    return net


@pytest.mark.parametrize(
    "call",
    [
        lambda: ng.knots(_huge([1, 4, 4, 1])),
        lambda: ng.knots(_huge([1, 4, 4, 1]), -1.0, 1.0, exact=True),
        lambda: ng.regions_on_line(_huge([2, 4, 4, 1]), [0.0, 0.0], [1.0, 1.0]),
        lambda: ng.regions_2d(_huge([2, 4, 4, 1])),
        lambda: ng.regions_along_lines(_huge([2, 4, 4, 1]), torch.zeros(2, 2, dtype=F64)),
        lambda: ng.boundary_distances(_huge([2, 4, 4, 1]), torch.ones(2, 2, dtype=F64)),
        lambda: ng.pattern_statistics(_huge([2, 4, 4, 1]), torch.ones(2, 2, dtype=F64)),
        lambda: ng.knots(_huge_res()),
    ],
)
def test_overflowing_weights_are_refused(call):
    with pytest.raises(ng.InvalidModel, match="overflow"):
        call()


def _huge_res():
    net = _Res(1, 0).eval()
    with torch.no_grad():
        for p in net.parameters():
            p.mul_(1e300)
    return net
