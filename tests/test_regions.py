"""Oracle tests of nngeom.regions: lines, statistics around data, exact 2-D slices."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import nngeom as ng
from nngeom.nets import as_mlp
from nngeom.regions import (
    activation_patterns,
    boundary_distances,
    pattern_statistics,
    regions_along_lines,
    regions_on_line,
)

pytestmark = pytest.mark.usefixtures("one_thread")


def _patterns(model, x: torch.Tensor) -> np.ndarray:
    """Brute-force activation patterns in float64 (piece index per unit)."""
    view = as_mlp(model)
    h = x.to(torch.float64)
    cols = []
    for lin, act in zip(view.linears[:-1], view.activations, strict=False):
        z = h @ lin.weight.detach().double().T + lin.bias.detach().double()
        bp, _, _ = ng.nets.piecewise_linear_form(act, z.shape[1])
        cols.append((z[..., None] > bp).sum(-1))
        h = act(z)
    return torch.cat(cols, 1).numpy()


def _line_changes(model, x0, x1, n=20001) -> list[float]:
    """Dense sampling + bisection: parameters t in (0, 1) where the pattern changes."""
    x0 = torch.as_tensor(x0, dtype=torch.float64)
    x1 = torch.as_tensor(x1, dtype=torch.float64)
    ts = torch.linspace(0, 1, n, dtype=torch.float64)
    P = _patterns(model, x0[None] + ts[:, None] * (x1 - x0)[None])
    idx = np.flatnonzero((P[1:] != P[:-1]).any(1))
    if idx.size == 0:
        return []
    a, b = ts[idx].clone(), ts[idx + 1].clone()
    pa = P[idx]
    for _ in range(60):  # all intervals bisected at once
        m = 0.5 * (a + b)
        same = (_patterns(model, x0[None] + m[:, None] * (x1 - x0)[None]) == pa).all(1)
        same = torch.from_numpy(same)
        a = torch.where(same, m, a)
        b = torch.where(same, b, m)
    return (0.5 * (a + b)).tolist()


def test_pattern_statistics_matches_brute_force():
    net = ng.mlp([5, 7, 6, 3], seed=2)
    X = torch.randn(300, 5, generator=torch.Generator().manual_seed(1))
    s = pattern_statistics(net, X)
    P = _patterns(net, X)
    rows = Counter(map(tuple, P.tolist()))
    assert s["n_patterns"] == len(rows)
    assert s["n_samples"] == 300 and s["n_units"] == 13
    p = np.array(list(rows.values())) / 300
    assert s["entropy_nats"] == pytest.approx(float(-(p * np.log(p)).sum()), rel=1e-12)
    assert s["entropy_bits"] == pytest.approx(s["entropy_nats"] / math.log(2))
    assert s["fraction_active"] == pytest.approx(float((P > 0).mean()))
    assert s["fraction_active_per_layer"][0] == pytest.approx(float((P[:, :7] > 0).mean()))
    assert s["n_patterns_per_layer"][1] == len(set(map(tuple, P[:, 7:].tolist())))
    assert s["fraction_dead"] == pytest.approx(float(1 - (P > 0).any(0).mean()))
    # the view's own patterns agree for ReLU
    assert (activation_patterns(net, X).numpy() == as_mlp(net).patterns(X.float()).numpy()).all()


def test_pattern_statistics_high_dimensional_and_leaky():
    net = ng.mlp([784, 32, 10], activation=nn.LeakyReLU(0.1), seed=0)
    X = torch.rand(64, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    s = pattern_statistics(net, X)
    assert s["n_patterns"] == len(set(map(tuple, _patterns(net, X.reshape(64, -1)).tolist())))
    assert 0 < s["fraction_active"] < 1


def test_boundary_distances_directions_match_bisection():
    net = ng.mlp([3, 6, 5, 2], seed=4, dtype=torch.float64)
    X = torch.randn(6, 3, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    K = 4
    got = boundary_distances(net, X, n_directions=K, seed=7)
    assert got.shape == (6,) and got.dtype == torch.float64
    from nngeom.regions import _unit_directions

    D = _unit_directions(K, 3, torch.Generator().manual_seed(7))
    for i in range(6):
        best = math.inf
        for k in range(K):
            for sign in (1.0, -1.0):
                # first change along x + t u, t in (0, 20): dense + bisection
                ch = _line_changes(net, X[i], X[i] + sign * 20.0 * D[k], n=4001)
                if ch:
                    best = min(best, 20.0 * ch[0])
        assert float(got[i]) == pytest.approx(best, rel=1e-6, abs=1e-9)


def test_boundary_distances_euclidean_is_the_limit_of_directions():
    net = ng.mlp([2, 8, 8, 1], seed=5, dtype=torch.float64)
    X = torch.randn(5, 2, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    euc = boundary_distances(net, X, method="euclidean")
    many = boundary_distances(net, X, n_directions=4000, seed=1)
    few = boundary_distances(net, X, n_directions=3, seed=1)
    assert (few >= euc - 1e-12).all() and (many >= euc - 1e-12).all()
    assert torch.allclose(many, euc, rtol=1e-4)


def test_boundary_distances_bad_input():
    net = ng.mlp([3, 4, 1], seed=0)
    with pytest.raises(ng.InvalidInput):
        boundary_distances(net, torch.zeros(2, 4))
    with pytest.raises(ng.InvalidInput):
        boundary_distances(net, torch.zeros(0, 3))
    with pytest.raises(ng.InvalidInput):
        boundary_distances(net, torch.zeros(2, 3), n_directions=0)
    with pytest.raises(ng.InvalidInput):
        boundary_distances(net, torch.full((2, 3), math.nan))
    with pytest.raises(ng.UnsupportedModel):
        boundary_distances(ng.mlp([3, 4, 1], activation="tanh"), torch.zeros(2, 3))
    with pytest.raises(ng.UnsupportedModel):
        pattern_statistics(ng.mlp([3, 4, 1], activation="sigmoid"), torch.zeros(2, 3))


def test_regions_on_line_matches_dense_sampling():
    net = ng.mlp([3, 6, 6, 2], seed=8, dtype=torch.float64)
    x0, x1 = [-2.0, 1.0, 0.5], [2.0, -1.5, 1.0]
    lr = regions_on_line(net, x0, x1, with_patterns=True)
    brute = _line_changes(net, x0, x1)
    assert lr.n_regions == len(brute) + 1
    np.testing.assert_allclose(lr.t, brute, atol=1e-7)
    # the pattern of each region equals the pattern at its midpoint
    edges = np.concatenate(([0.0], lr.t, [1.0]))
    mids = torch.as_tensor(0.5 * (edges[1:] + edges[:-1]))
    pts = torch.tensor(x0)[None] + mids[:, None] * (torch.tensor(x1) - torch.tensor(x0))[None]
    assert (lr.patterns == _patterns(net, pts)).all()
    assert set(lr.knots_t.tolist()) <= set(lr.t.tolist())
    with pytest.raises(ng.InvalidInput):
        regions_on_line(net, x0, x0)
    with pytest.raises(ng.InvalidInput):
        regions_on_line(net, [0.0, 1.0], x1)


@settings(max_examples=25)
@given(seed=st.integers(0, 10_000), d=st.integers(1, 4), w=st.integers(1, 5))
def test_regions_along_lines_counts_are_exact(seed, d, w):
    net = ng.mlp([d, w, w, 1], seed=seed, dtype=torch.float64)
    X = torch.randn(10, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    r = regions_along_lines(net, X, n_lines=3, length=3.0, seed=seed)
    assert len(r["n_regions"]) == 3 and r["n_neurons"] == 2 * w
    g = torch.Generator(device="cpu").manual_seed(seed)
    idx = torch.randint(0, 10, (3,), generator=g)
    D = torch.randn(3, d, generator=g, dtype=torch.float64)
    D = D / D.norm(dim=1, keepdim=True)
    assert r["centers"] == idx.tolist()
    for k in range(3):
        x0, x1 = X[idx[k]] - 1.5 * D[k], X[idx[k]] + 1.5 * D[k]
        assert r["n_regions"][k] == len(_line_changes(net, x0, x1, n=3001)) + 1
    assert r["regions_per_unit_length"] == pytest.approx(np.mean(r["n_regions"]) / 3.0)


def _segment_polygons(R, a: np.ndarray, b: np.ndarray) -> int:
    """Number of polygons the segment a->b crosses with positive length (Cyrus-Beck clipping)."""
    count = 0
    d = b - a
    for i in range(R.n_regions):
        poly = R.polygon(i)
        lo, hi = 0.0, 1.0
        for k in range(len(poly)):
            p, q = poly[k], poly[(k + 1) % len(poly)]
            e = q - p
            nrm = np.array([e[1], -e[0]])  # outward for counter-clockwise polygons
            num, den = nrm @ (p - a), nrm @ d
            if abs(den) < 1e-15:
                if num < 0:
                    lo, hi = 1.0, 0.0
                continue
            t = num / den
            if den > 0:
                hi = min(hi, t)
            else:
                lo = max(lo, t)
        if hi - lo > 1e-9:
            count += 1
    return count


@pytest.mark.parametrize(
    ("sizes", "act", "seed"),
    [([2, 8, 8, 1], "relu", 1), ([2, 6, 5, 2], "leaky", 2), ([4, 7, 7, 1], "relu", 3)],
)
def test_regions_2d_partition_is_exact(sizes, act, seed):
    activation = nn.LeakyReLU(0.1) if act == "leaky" else act
    net = ng.mlp(sizes, activation, seed=seed, dtype=torch.float64)
    g = torch.Generator().manual_seed(seed)
    if sizes[0] == 2:
        origin, u, v, extent = None, None, None, 2.0
    else:
        origin, u, v = (torch.randn(sizes[0], generator=g, dtype=torch.float64) for _ in range(3))
        extent = 1.5
    R = ng.regions_2d(net, origin, u, v, extent)
    # areas sum to the slice's area, every polygon counter-clockwise with positive area
    assert R.areas.sum() == pytest.approx((2 * extent) ** 2, rel=1e-12)
    assert (R.areas > 0).all()
    # every polygon's pattern is the pattern at its centroid; patterns are distinct (convexity)
    assert (
        activation_patterns(net, torch.from_numpy(R.to_input(R.centroids))).numpy() == R.patterns
    ).all()
    assert len({p.tobytes() for p in R.patterns}) == R.n_regions
    # the affine maps reproduce the network at the centroids
    with torch.no_grad():
        out = net(torch.from_numpy(R.to_input(R.centroids))).numpy()
    np.testing.assert_allclose(
        np.einsum("pok,pk->po", R.slopes, R.centroids) + R.intercepts, out, atol=1e-9
    )
    # dense sampling finds no pattern that is not a polygon's
    s = np.linspace(-extent, extent, 151)
    grid = np.stack(np.meshgrid(s, s), -1).reshape(-1, 2)
    seen = {
        p.tobytes() for p in activation_patterns(net, torch.from_numpy(R.to_input(grid))).numpy()
    }
    assert seen <= {p.tobytes() for p in R.patterns}
    # the polygons crossed by random segments of the slice = regions_on_line on those segments
    rng = np.random.default_rng(seed)
    for _ in range(5):
        a, b = rng.uniform(-extent, extent, 2), rng.uniform(-extent, extent, 2)
        lr = regions_on_line(net, R.to_input(a[None])[0], R.to_input(b[None])[0])
        assert _segment_polygons(R, a, b) == lr.n_regions
    assert 1 <= R.n_pieces <= R.n_regions


def test_regions_2d_merges_equal_affine_neighbours():
    # relu(x) - relu(-x) = x: two activation regions, one linear piece; plus a dead-looking split
    net = nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 1)).double()
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[1.0, 0.0], [-1.0, 0.0]]))
        net[0].bias.zero_()
        net[2].weight.copy_(torch.tensor([[1.0, -1.0]]))
        net[2].bias.zero_()
    R = ng.regions_2d(net, extent=1.0)
    assert R.n_regions == 2 and R.n_pieces == 1
    # a V shape |x|: two regions, two pieces
    with torch.no_grad():
        net[2].weight.copy_(torch.tensor([[1.0, 1.0]]))
    R2 = ng.regions_2d(net, extent=1.0)
    assert R2.n_regions == 2 and R2.n_pieces == 2


def test_regions_2d_bad_input():
    net = ng.mlp([3, 4, 1])
    with pytest.raises(ng.InvalidInput, match="origin, u and v"):
        ng.regions_2d(net)
    with pytest.raises(ng.InvalidInput, match="independent"):
        ng.regions_2d(net, [0, 0, 0], [1, 0, 0], [2, 0, 0])
    with pytest.raises(ng.InvalidInput):
        ng.regions_2d(ng.mlp([2, 4, 1]), extent=-1.0)
    with pytest.raises(ng.InvalidInput):
        ng.regions_2d(ng.mlp([2, 4, 1]), extent=(1, 0, 0, 1))
    with pytest.raises(ng.UnsupportedModel):
        ng.regions_2d(ng.mlp([2, 4, 1], activation="softplus"))


def _cplx_model():
    net = ng.mlp([2, 4, 2], seed=0)
    net[0].weight = torch.nn.Parameter(net[0].weight.to(torch.complex128))
    return net


_X = torch.randn(5, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
_NET = ng.mlp([2, 4, 4, 2], seed=0)
_BAD_X = {
    "complex": _X.to(torch.complex128),
    "meta": _X.to("meta"),
    "strings": "ab",
    "empty": torch.zeros(0, 2),
    "nan": _X * float("nan"),
}
_FUNCS = {
    "activation_patterns": lambda m, X: ng.regions.activation_patterns(m, X),
    "pattern_statistics": lambda m, X: ng.pattern_statistics(m, X),
    "boundary_distances": lambda m, X: ng.boundary_distances(m, X),
    "regions_along_lines": lambda m, X: ng.regions_along_lines(m, X),
    "regions_on_line": lambda m, X: ng.regions_on_line(m, X, [1.0, 1.0]),
    "regions_2d": lambda m, X: ng.regions_2d(m, X, [1.0, 0.0], [0.0, 1.0]),
    "plane_through": lambda m, X: ng.plane_through(X, [1.0, 0.0], [0.0, 1.0]),
}


@pytest.mark.parametrize("func", sorted(_FUNCS))
@pytest.mark.parametrize("case", sorted(_BAD_X))
def test_bad_data_raises_nngeom_errors(func, case):
    with pytest.raises(ng.NngeomError):
        _FUNCS[func](_NET, _BAD_X[case])


@pytest.mark.parametrize("func", sorted(set(_FUNCS) - {"plane_through"}))
@pytest.mark.parametrize("model", ["complex", "meta"])
def test_complex_and_meta_models_are_refused(func, model):
    m = _cplx_model() if model == "complex" else ng.mlp([2, 4, 2], seed=0).to("meta")
    with pytest.raises(ng.InvalidModel, match=model):
        _FUNCS[func](m, _X if func != "regions_on_line" else [0.0, 0.0])


@pytest.mark.parametrize(
    "call",
    [
        lambda: ng.regions.activation_patterns(_NET, _X, chunk_size=0),
        lambda: ng.pattern_statistics(_NET, _X, chunk_size="a"),
        lambda: ng.boundary_distances(_NET, _X, n_directions=0),
        lambda: ng.boundary_distances(_NET, _X, n_directions=10**9),
        lambda: ng.boundary_distances(_NET, _X, seed=-1),
        lambda: ng.boundary_distances(_NET, _X, max_elements=0),
        lambda: ng.regions_along_lines(_NET, _X, n_lines=10**12),
        lambda: ng.regions_along_lines(_NET, _X, length=float("inf")),
        lambda: ng.regions_along_lines(_NET, _X, seed=2**70),
        lambda: ng.regions_2d(_NET, extent=1j),
        lambda: ng.regions_2d(_NET, max_memory=0),
        lambda: ng.regions_2d(_NET, merge_pieces="x"),
        lambda: ng.regions_2d(_NET, extent=1e300, decision_boundary=True),
        lambda: ng.plane_through([0, 0], [1, 0], [0, 1], margin="a"),
        lambda: ng.plane_through([0, 0], [1e300, 0], [0, 1e300]),
        lambda: ng.model_view(_NET, (0,)),
        lambda: ng.model_view(_NET, (10**12,)),
    ],
)
def test_bad_arguments_raise_invalid_input(call):
    with pytest.raises(ng.InvalidInput):
        call()


def test_float32_model_with_float64_data_is_cast():
    net32 = ng.mlp([2, 4, 4, 2], seed=0, dtype=torch.float32)
    net64 = ng.mlp([2, 4, 4, 2], seed=0, dtype=torch.float64)
    a = ng.pattern_statistics(net32, _X)
    b = ng.pattern_statistics(net64, _X.float())
    assert a["n_samples"] == b["n_samples"] == 5
