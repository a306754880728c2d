"""The traced model view and the graph engines: oracle tests against hand-built MLPs.

Every model of ``pl_problems`` is paired with an ``nn.Sequential`` of Linear + ReLU built by hand
(conv layers unrolled into dense matrices, BatchNorm folded, LeakyReLU as two ReLUs, the skip
carried by relu(h) - relu(-h), max-pool as a ReLU tournament): the view's forward must equal the
model's, and knots, line and 2-D region counts and linear pieces must equal the MLP's. Max-pool
nets (whose MLP has extra tournament cuts) are checked directly: the polygons tile the slice and
on each polygon the model equals the claimed affine map.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.nn.utils import skip_init

import nngeom as ng
import pl_problems as P

pytestmark = pytest.mark.usefixtures("one_thread")
F64 = torch.float64


def _points(shape, seed, n=3):
    g = np.random.default_rng(seed)
    return [g.normal(size=shape) for _ in range(n)]


def _lin(g: torch.Generator, n_in: int, n_out: int, bias: bool = True) -> nn.Linear:
    lin = skip_init(nn.Linear, n_in, n_out, bias=bias, dtype=F64)
    with torch.no_grad():
        lin.weight.copy_(torch.randn(n_out, n_in, generator=g, dtype=F64))
        if bias:
            lin.bias.copy_(torch.randn(n_out, generator=g, dtype=F64))
    return lin


# ----------------------------------------------------------------------------------------------
# the view's forward equals the model's
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(P.ALL))
@given(seed=st.integers(0, 10_000))
@settings(max_examples=8)
def test_view_forward_equals_model(name, seed):
    pb = P.ALL[name](seed)
    view = ng.model_view(pb.model, pb.input_shape)
    x = torch.randn(7, *pb.input_shape, generator=torch.Generator().manual_seed(seed), dtype=F64)
    assert torch.allclose(view(x), pb.model(x), rtol=0, atol=1e-12)
    assert view.is_piecewise_linear


# ----------------------------------------------------------------------------------------------
# knots and lines
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(P.ONE_INPUT))
@pytest.mark.parametrize("seed", range(4))
def test_knots_equal_the_hand_built_mlp(name, seed):
    pb = P.ALL[name](seed)
    got, want = ng.knots(pb.model), ng.knots(pb.mlp)
    assert got.count == want.count
    np.testing.assert_allclose(got.positions, want.positions, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(got.slopes, want.slopes, rtol=1e-9, atol=1e-9)
    if pb.same_regions:
        assert got.n_breakpoints == want.n_breakpoints
    # a finite interval too
    got, want = ng.knots(pb.model, -2.0, 3.0), ng.knots(pb.mlp, -2.0, 3.0)
    assert got.count == want.count


@pytest.mark.parametrize("name", sorted(P.MULTI_INPUT))
@pytest.mark.parametrize("seed", range(3))
def test_regions_on_line_equal_the_hand_built_mlp(name, seed):
    pb = P.ALL[name](seed)
    x0, x1 = _points(pb.input_shape, seed, 2)
    got = ng.regions_on_line(pb.model, x0, x1)
    want = ng.regions_on_line(pb.mlp, x0.reshape(-1), x1.reshape(-1))
    assert got.n_pieces == want.n_pieces
    np.testing.assert_allclose(got.knots_t, want.knots_t, rtol=1e-9, atol=1e-9)
    if pb.same_regions:
        assert got.n_regions == want.n_regions
    else:
        assert got.n_regions <= want.n_regions


def _graph_residual_1d(seed: int) -> nn.Module:
    """A residual block the MLP view refuses (its forward is a graph)."""
    g = torch.Generator().manual_seed(seed)

    class Res(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b, self.c = _lin(g, 1, 6), _lin(g, 6, 6), _lin(g, 6, 2)

        def forward(self, x):
            h = torch.relu(self.a(x))
            return self.c(h + F.relu(self.b(h)))

    return Res().eval()


def test_graph_knots_are_the_slope_changes_by_dense_sampling():
    """Independent oracle: slopes from dense sampling change exactly at the reported knots."""
    net = _graph_residual_1d(3)
    k = ng.knots(net, -4.0, 4.0)
    assert k.count > 0
    edges = np.concatenate(([-4.0], k.positions, [4.0]))
    for a, b, sl in zip(edges[:-1], edges[1:], k.slopes):
        xs = torch.linspace(a, b, 41, dtype=F64)[1:-1, None]
        y = net(xs).detach().numpy()
        fd = np.diff(y, axis=0) / np.diff(xs.numpy(), axis=0)
        np.testing.assert_allclose(fd, np.broadcast_to(sl, fd.shape), rtol=1e-7, atol=1e-9)
    # adjacent pieces really differ
    assert (np.abs(np.diff(k.slopes, axis=0)).max(1) > 1e-9).all()


def test_exact_knots_on_a_graph_is_refused():
    with pytest.raises(ng.InvalidInput, match="exact=True"):
        ng.knots(_graph_residual_1d(0), -1.0, 1.0, exact=True)


@pytest.mark.parametrize(
    "spelling",
    ["module", "F.relu", "torch.relu", "method", "clamp", "clamp_min"],
)
def test_every_spelling_of_relu_gives_the_same_knots(spelling):
    g = torch.Generator().manual_seed(5)
    a, b, c = _lin(g, 1, 7), _lin(g, 7, 7), _lin(g, 7, 1)

    def act(z):
        if spelling == "F.relu":
            return F.relu(z)
        if spelling == "torch.relu":
            return torch.relu(z)
        if spelling == "method":
            return z.relu()
        if spelling == "clamp":
            return torch.clamp(z, min=0)
        if spelling == "clamp_min":
            return z.clamp_min(0.0)
        raise AssertionError(spelling)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b, self.c = a, b, c
            self.act = nn.ReLU()  # one module used twice

        def forward(self, x):
            f = self.act if spelling == "module" else act
            return self.c(f(self.b(f(self.a(x)))))

    want = ng.knots(nn.Sequential(a, nn.ReLU(), b, nn.ReLU(), c))
    got = ng.knots(Net().eval())
    assert got.count == want.count
    np.testing.assert_allclose(got.positions, want.positions, rtol=1e-12)


def _pair_mlp(act: str, g: torch.Generator) -> tuple[nn.Module, nn.Sequential]:
    """1 -> n -> 1 with a piecewise-linear activation, and the same function with ReLUs only."""
    n = 5
    L1, L2 = _lin(g, 1, n), _lin(g, n, 1)
    W, b, V, c = L1.weight, L1.bias, L2.weight, L2.bias
    if act == "abs":  # |z| = relu(z) + relu(-z)
        model = nn.Sequential(L1, ng.view.Abs(), L2)
        A = _mk(torch.cat([W, -W]), torch.cat([b, -b]))
        B = _mk(torch.cat([V, V], 1), c)
    elif act == "hardtanh":  # clamp(z, lo, hi) = relu(z - lo) - relu(z - hi) + lo
        lo, hi = -0.5, 0.7
        model = nn.Sequential(L1, nn.Hardtanh(lo, hi), L2)
        A = _mk(torch.cat([W, W]), torch.cat([b - lo, b - hi]))
        B = _mk(torch.cat([V, -V], 1), c + lo * V.sum())
    elif act == "relu6":
        model = nn.Sequential(L1, nn.ReLU6(), L2)
        A = _mk(torch.cat([W, W]), torch.cat([b, b - 6.0]))
        B = _mk(torch.cat([V, -V], 1), c)
    else:  # prelu with per-unit slopes a: prelu(z) = relu(z) - a relu(-z)
        pre = nn.PReLU(n, dtype=F64)
        with torch.no_grad():
            pre.weight.copy_(torch.linspace(-0.3, 0.6, n, dtype=F64))
        model = nn.Sequential(L1, pre, L2)
        A = _mk(torch.cat([W, -W]), torch.cat([b, -b]))
        B = _mk(torch.cat([V, -V * pre.weight[None]], 1), c)
    return model.eval(), nn.Sequential(A, nn.ReLU(), B)


def _mk(W, b) -> nn.Linear:
    lin = skip_init(nn.Linear, W.shape[1], W.shape[0], dtype=F64)
    with torch.no_grad():
        lin.weight.copy_(W)
        lin.bias.copy_(b)
    return lin


@pytest.mark.parametrize("act", ["abs", "hardtanh", "relu6", "prelu"])
@pytest.mark.parametrize("seed", range(3))
def test_other_piecewise_linear_activations(act, seed):
    model, mlp = _pair_mlp(act, torch.Generator().manual_seed(seed))
    x = torch.linspace(-5, 5, 101, dtype=F64)[:, None]
    assert torch.allclose(model(x), mlp(x), atol=1e-12)
    got, want = ng.knots(model), ng.knots(mlp)
    assert got.count == want.count
    np.testing.assert_allclose(got.positions, want.positions, rtol=1e-9, atol=1e-12)


# ----------------------------------------------------------------------------------------------
# 2-D slices
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(P.MULTI_INPUT))
@pytest.mark.parametrize("seed", range(3))
def test_regions_2d_equal_the_hand_built_mlp(name, seed):
    pb = P.ALL[name](seed)
    plane = ng.plane_through(*_points(pb.input_shape, seed))
    got = ng.regions_2d(pb.model, plane, decision_boundary=True)
    want = ng.regions_2d(
        pb.mlp,
        plane.origin.reshape(-1),
        plane.u.reshape(-1),
        plane.v.reshape(-1),
        plane.bounds,
        decision_boundary=True,
    )
    assert got.n_pieces == want.n_pieces
    if pb.same_regions:
        assert got.n_regions == want.n_regions
    else:
        assert got.n_regions <= want.n_regions
    area = (plane.bounds[1] - plane.bounds[0]) * (plane.bounds[3] - plane.bounds[2])
    assert math.isclose(got.areas.sum(), area, rel_tol=1e-9)
    # the same decision boundary: equal total length, and ties at its points
    length = [
        np.linalg.norm(r.decision_boundary[:, 1] - r.decision_boundary[:, 0], axis=1).sum()
        for r in (got, want)
    ]
    assert math.isclose(length[0], length[1], rel_tol=1e-7, abs_tol=1e-9)
    assert got.to_input(np.zeros((1, 2))).shape == (1, *pb.input_shape)
    _check_tiling_and_maps(pb.model, got, seed)


def _check_tiling_and_maps(model, r, seed, n=400):
    """Random points of the slice lie in exactly one polygon (up to boundary hits), and on each
    polygon the model equals its claimed affine map at interior points."""
    rng = np.random.default_rng(seed)
    s0, s1, t0, t1 = r.bounds
    pts = np.stack([rng.uniform(s0, s1, n), rng.uniform(t0, t1, n)], 1)
    inside = np.zeros((n, r.n_regions), dtype=bool)
    for i in range(r.n_regions):
        poly = r.polygon(i)
        e = np.roll(poly, -1, 0) - poly
        rel = pts[:, None, :] - poly[None]
        cross = e[None, :, 0] * rel[..., 1] - e[None, :, 1] * rel[..., 0]
        inside[:, i] = (cross >= -1e-12).all(1)
    assert (inside.sum(1) >= 1).all()
    assert (inside.sum(1) == 1).mean() > 0.97
    # interior points: centroid and points pulled from each vertex toward it
    checks = []
    for i in range(r.n_regions):
        poly, c = r.polygon(i), r.centroids[i]
        checks.append((i, c))
        checks.append((i, 0.7 * poly[0] + 0.3 * c))
    idx = np.array([i for i, _ in checks])
    st_ = np.array([p for _, p in checks])
    X = torch.from_numpy(r.to_input(st_))
    y = model(X).detach().numpy().reshape(len(checks), -1)
    claimed = r.intercepts[idx] + np.einsum("kpj,kj->kp", r.slopes[idx], st_)
    np.testing.assert_allclose(y, claimed, rtol=1e-8, atol=1e-8)
    # neighbouring polygons differ in pattern (each pattern names one region)
    assert np.unique(r.patterns, axis=0).shape[0] <= r.n_regions


def _max_models(seed: int) -> list[tuple[nn.Module, tuple[int, ...]]]:
    g = torch.Generator().manual_seed(seed)

    class Amax(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = _lin(g, 2, 12), _lin(g, 4, 3)

        def forward(self, x):
            h = self.a(x).view(-1, 4, 3)
            return self.b(torch.amax(h, dim=2))

    class TorchMax(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = _lin(g, 2, 12), _lin(g, 3, 2)

        def forward(self, x):
            return self.b(torch.max(F.relu(self.a(x)).view(x.shape[0], 3, 4), dim=-1)[0])

    class Maximum(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.c, self.b = _lin(g, 2, 6), _lin(g, 2, 6), _lin(g, 6, 2)

        def forward(self, x):
            return self.b(torch.maximum(self.a(x), self.c(x)))

    conv = nn.Sequential(
        _conv(g, 1, 2, 3),
        nn.ReLU(),
        nn.MaxPool2d(2, stride=2, padding=1),
        nn.Flatten(),
        _lin(g, 2 * 3 * 3, 3),
    )
    return [
        (Amax().eval(), (2,)),
        (TorchMax().eval(), (2,)),
        (Maximum().eval(), (2,)),
        (conv.eval(), (1, 6, 6)),
    ]


def _conv(g, cin, cout, k) -> nn.Conv2d:
    conv = skip_init(nn.Conv2d, cin, cout, k, dtype=F64)
    with torch.no_grad():
        conv.weight.copy_(torch.randn(conv.weight.shape, generator=g, dtype=F64) * 0.5)
        conv.bias.copy_(torch.randn(cout, generator=g, dtype=F64) * 0.3)
    return conv


@pytest.mark.parametrize("which", range(4))
@pytest.mark.parametrize("seed", range(3))
def test_max_models_tile_the_slice_with_exact_affine_maps(which, seed):
    model, shape = _max_models(seed)[which]
    x0, x1, x2 = _points(shape, seed + 10)
    plane = ng.plane_through(x0, x1, x2, margin=0.5)
    r = ng.regions_2d(model, plane)
    assert r.n_regions > 1
    _check_tiling_and_maps(model, r, seed)
    # the line engine agrees with the plane's edge: pieces along s (t = 0)
    line = ng.regions_on_line(
        model, plane.origin + plane.bounds[0] * plane.u, plane.origin + plane.bounds[1] * plane.u
    )
    assert line.n_pieces >= 1


# ----------------------------------------------------------------------------------------------
# patterns and statistics on graphs
# ----------------------------------------------------------------------------------------------
def test_pattern_statistics_on_a_conv_net():
    pb = P.ALL["conv_avgpool_1x6x6"](0)
    X = torch.randn(50, *pb.input_shape, generator=torch.Generator().manual_seed(0), dtype=F64)
    stats = ng.pattern_statistics(pb.model, X)
    assert stats["n_samples"] == 50 and 1 <= stats["n_patterns"] <= 50
    # patterns of the graph: the conv's ReLU units, whose pattern is relu-on at the same units as
    # the unrolled MLP's first layer
    q = ng.regions.activation_patterns(pb.model, X).numpy()
    z = pb.mlp[0](X.reshape(50, -1)).detach().numpy()
    np.testing.assert_array_equal(q[:, : z.shape[1]], (z > 0).astype(q.dtype))


def test_regions_along_lines_on_a_graph():
    pb = P.ALL["residual_2d"](0)
    X = torch.randn(20, 2, generator=torch.Generator().manual_seed(1), dtype=F64)
    got = ng.regions_along_lines(pb.model, X, n_lines=4, seed=0)
    want = ng.regions_along_lines(pb.mlp, X, n_lines=4, seed=0)
    assert got["n_regions"] == want["n_regions"]


# ----------------------------------------------------------------------------------------------
# what is refused, and how
# ----------------------------------------------------------------------------------------------
class _Smooth(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(1, 4), nn.Linear(4, 1)

    def forward(self, x):
        h = self.a(x)
        return self.b(torch.tanh(h) + h)


class _Branchy(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(1, 3)

    def forward(self, x):
        h = self.a(x)
        if h.sum() > 0:  # data-dependent control flow
            return h
        return -h


def test_smooth_activation_is_named_with_its_place():
    with pytest.raises(ng.UnsupportedModel, match=r"tanh.*not piecewise linear"):
        ng.knots(_Smooth())
    with pytest.raises(ng.UnsupportedModel, match="GELU|gelu"):
        ng.regions_2d(nn.Sequential(nn.Linear(2, 3), nn.GELU(), nn.Linear(3, 1)))


def test_untraceable_control_flow_says_why_and_what_to_do():
    with pytest.raises(ng.UnsupportedModel, match=r"cannot be traced.*control flow"):
        ng.knots(_Branchy())


@pytest.mark.parametrize("layer", [nn.Dropout(0.5), nn.BatchNorm1d(4)])
def test_train_mode_layers_are_refused(layer):
    net = nn.Sequential(nn.Linear(1, 4), layer, nn.ReLU(), nn.Linear(4, 1))
    net.train()
    with pytest.raises(ng.UnsupportedModel, match=r"model\.eval\(\)"):
        ng.knots(net)
    net.eval()
    assert ng.knots(net).count >= 0


def test_unsupported_operation_names_the_generic_way_out():
    class Mul(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Linear(1, 3)

        def forward(self, x):
            h = self.a(x)
            return h * h

    with pytest.raises(ng.UnsupportedModel, match="generic"):
        ng.knots(Mul())


def test_view_describes_the_model():
    model, _ = _max_models(0)[3]
    text = ng.model_view(model, (1, 6, 6)).describe()
    assert "conv2d(1->2,3x3)" in text and "maxpool2d" in text and "linear" in text


def test_exported_programs_are_viewed():
    pb = P.ALL["conv_maxpool_1x6x6"](0)
    x = torch.randn(2, *pb.input_shape, dtype=F64)
    batch = torch.export.Dim("batch")
    gm = torch.export.export(pb.model, (x,), dynamic_shapes=({0: batch},)).module()
    view = ng.model_view(gm, pb.input_shape)
    assert torch.allclose(view(x), pb.model(x), atol=1e-12)
    plane = ng.plane_through(*_points(pb.input_shape, 0))
    assert ng.regions_2d(gm, plane).n_pieces == ng.regions_2d(pb.model, plane).n_pieces


def test_a_slice_too_large_for_memory_is_refused_not_attempted():
    pb = P.ALL["conv_avgpool_1x6x6"](0)
    plane = ng.plane_through(*_points(pb.input_shape, 0))
    with pytest.raises(ng.InvalidInput, match="max_memory"):
        ng.regions_2d(pb.model, plane, max_memory=10_000)


def test_a_reused_trace_never_hides_a_changed_python_value():
    g = torch.Generator().manual_seed(2)

    class Scaled(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b, self.c = _lin(g, 1, 5), _lin(g, 5, 5), _lin(g, 5, 1)
            self.shift = 0.0  # a Python float: fixed into the graph by tracing

        def forward(self, x):
            h = F.relu(self.a(x))
            return self.c(h + F.relu(self.b(h) + self.shift))

    net = Scaled().eval()
    first = ng.knots(net)
    net.shift = 3.0
    second = ng.knots(net)
    x = torch.linspace(-3, 3, 7, dtype=F64)[:, None]
    np.testing.assert_allclose(
        second.evaluate(x.numpy()[:, 0]), net(x).detach().numpy(), atol=1e-10
    )
    assert not np.array_equal(first.slopes, second.slopes)


# --- the trace cache: reused while the guard key holds, re-traced when a Python value changes ---

_SCALE = 2.0  # read by _GlobalScaled.forward


class _AttrSlope(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(2, 4), nn.Linear(4, 1)
        self.slope = 0.1
        self.calls: list[int] = []  # a list is keyed by identity: appending keeps the key

    def forward(self, x):
        self.calls.append(1)
        return self.b(F.leaky_relu(self.a(x), self.slope))


class _GlobalScaled(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(2, 4), nn.Linear(4, 1)

    def forward(self, x):
        return self.b(F.relu(self.a(x)) * _SCALE)


def test_cached_trace_is_not_rerun_but_follows_python_values():
    m = _AttrSlope().double()
    X = torch.randn(5, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    v1 = ng.model_view(m)
    calls = len(m.calls)
    v2 = ng.model_view(m)
    assert v2.graph_module is v1.graph_module
    assert len(m.calls) == calls  # the cached, verified trace is not checked again
    m.slope = 0.3  # the trace fixed 0.1: the key changes, so it is traced again
    v3 = ng.model_view(m)
    assert v3.graph_module is not v1.graph_module
    with torch.no_grad():
        torch.testing.assert_close(v3.graph_module(X), m(X))
    m.a.weight.data.mul_(2.0)  # parameters are read live: same trace, right values
    v4 = ng.model_view(m)
    assert v4.graph_module is v3.graph_module
    with torch.no_grad():
        torch.testing.assert_close(v4.graph_module(X), m(X))


def test_cached_trace_follows_globals_read_by_forward():
    global _SCALE
    m = _GlobalScaled().double()
    X = torch.randn(5, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    v1 = ng.model_view(m)
    try:
        _SCALE = 3.0
        v2 = ng.model_view(m)
        assert v2.graph_module is not v1.graph_module
        with torch.no_grad():
            torch.testing.assert_close(v2.graph_module(X), m(X))
        k = ng.knots(nn.Sequential(nn.Linear(1, 2)).double(), -1, 1)  # unrelated call
        assert k.count == 0
    finally:
        _SCALE = 2.0


def test_cached_trace_refuses_non_finite_weights():
    m = _GlobalScaled().double()
    ng.model_view(m)
    with torch.no_grad():
        m.a.weight[0, 0] = float("nan")
    with pytest.raises(ng.InvalidModel, match="NaN or inf"):
        ng.model_view(m)
