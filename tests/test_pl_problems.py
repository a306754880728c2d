"""The piecewise-linear test problems of pl_problems.py: each model equals its hand-built MLP."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import Tensor, nn

import nngeom as ng
import pl_problems as P

pytestmark = pytest.mark.usefixtures("one_thread")

SEEDS = range(4)
NAMES = sorted(P.ALL)


def _preacts(mlp: nn.Sequential, X: Tensor) -> Tensor:
    """Pre-activations of every ReLU unit of ``mlp`` at ``X``: ``(N, total hidden units)``."""
    out, h = [], X
    for m in mlp:
        if isinstance(m, nn.ReLU):
            out.append(h)
        h = m(h)
    return torch.cat(out, dim=1)


def _crossings(mlp: nn.Sequential, x0: Tensor, x1: Tensor, n: int = 257) -> Tensor:
    """Points of the segment x0 -> x1 where some unit of the MLP (any layer) changes sign, found by
    a grid and 60 bisection steps (to ~1e-18 in t): ``(n_crossings, d)``."""

    def at(t: Tensor) -> Tensor:
        return x0 + t[:, None] * (x1 - x0)

    t = torch.linspace(0.0, 1.0, n, dtype=torch.float64)
    Z = _preacts(mlp, at(t))
    cell, unit = torch.nonzero((Z[:-1] > 0) != (Z[1:] > 0), as_tuple=True)
    lo, hi = t[cell], t[cell + 1]
    lo_pos = Z[cell, unit] > 0
    for _ in range(60):
        mid = (lo + hi) / 2
        pos = _preacts(mlp, at(mid))[torch.arange(len(mid)), unit] > 0
        same = pos == lo_pos
        lo, hi = torch.where(same, mid, lo), torch.where(same, hi, mid)
    return at(torch.cat([lo, hi]))


def _inputs(p: P.Problem, seed: int) -> tuple[Tensor, int]:
    """Random flattened inputs: Gaussian points, zero, and points on and within 1e-9 .. 1e-6 of
    every unit's switching set along a few random segments; and the number of crossings found."""
    g = torch.Generator().manual_seed(1000 + seed)
    d = p.in_dim
    X = [
        torch.randn(64, d, generator=g, dtype=torch.float64) * 1.5,
        torch.zeros(1, d, dtype=torch.float64),
    ]
    n_cross = 0
    with torch.no_grad():
        for _ in range(3):
            x0, x1 = (torch.randn(2, d, generator=g, dtype=torch.float64) * 3.0).unbind(0)
            C = _crossings(p.mlp, x0, x1)
            step = (x1 - x0) / (x1 - x0).norm()
            X.append(C)
            n_cross += len(C) // 2
            for eps in (1e-9, 1e-6):
                X += [C + eps * step, C - eps * step]
    return torch.cat(X), n_cross


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("name", NAMES)
def test_model_equals_mlp(name, seed):
    p = P.ALL[name](seed)
    X, n_cross = _inputs(p, seed)
    assert n_cross >= 3, "the segments should cross switching sets"
    with torch.no_grad():
        y_model = p.model(X.reshape(len(X), *p.input_shape))
        y_mlp = p.mlp(X)
    assert y_model.dtype == y_mlp.dtype == torch.float64
    assert y_model.shape == y_mlp.shape
    torch.testing.assert_close(y_mlp, y_model, rtol=0, atol=1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_problem_structure(name):
    p = P.ALL[name](0)
    assert p.name == name and p.note
    assert not p.model.training and not any(m.training for m in p.model.modules())
    assert not p.mlp.training and not any(m.training for m in p.mlp.modules())
    assert isinstance(p.mlp, nn.Sequential)
    assert all(type(m) in (nn.Linear, nn.ReLU, nn.Identity) for m in p.mlp)
    lins = [m for m in p.mlp if isinstance(m, nn.Linear)]
    assert isinstance(p.mlp[0], nn.Linear) and isinstance(p.mlp[-1], nn.Linear)
    assert lins[0].in_features == p.in_dim
    assert all(t.dtype == torch.float64 for t in [*p.model.parameters(), *p.mlp.parameters()])
    assert all(t.dtype == torch.float64 for t in p.model.buffers() if t.is_floating_point())
    # the MLP is ng's kind of network, with its own copies of the weights
    assert ng.as_mlp(p.mlp).sizes[0] == p.in_dim
    model_ptrs = {t.data_ptr() for t in p.model.parameters()}
    assert not model_ptrs & {t.data_ptr() for t in p.mlp.parameters()}


@pytest.mark.parametrize("name", NAMES)
def test_problems_are_not_trivial(name):
    """Every hidden unit of the MLP's first layer is on somewhere and off somewhere in the box the
    tests sample (so the comparisons exercise the nonlinearity)."""
    p = P.ALL[name](0)
    g = torch.Generator().manual_seed(7)
    X = torch.randn(2000, p.in_dim, generator=g, dtype=torch.float64) * 1.5
    with torch.no_grad():
        Z = p.mlp[0](X)
    on = (Z > 0).float().mean(0)
    assert ((on > 0) & (on < 1)).float().mean() > 0.5


def test_deterministic_and_seeded_locally():
    state = torch.random.get_rng_state()
    for name, build in P.ALL.items():
        a, b, c = build(3), build(3), build(4)
        sa = a.model.state_dict()
        assert all(torch.equal(sa[k], v) for k, v in b.model.state_dict().items()), name
        assert all(torch.equal(x, y) for x, y in zip(a.mlp.parameters(), b.mlp.parameters()))
        assert any(not torch.equal(sa[k], v) for k, v in c.model.state_dict().items()), name
    assert torch.equal(torch.random.get_rng_state(), state)


def test_registry():
    assert len(P.ALL) == len(set(P.ALL))
    assert set(P.ONE_INPUT) | set(P.MULTI_INPUT) == set(P.ALL)
    assert all(P.ONE_INPUT[k](0).input_shape == (1,) for k in P.ONE_INPUT)
    assert all(P.MULTI_INPUT[k](0).in_dim >= 2 for k in P.MULTI_INPUT)
    bases = {k.rsplit("_", 1)[0] for k in P.ONE_INPUT}
    assert bases == {
        "functional_relu", "reused_relu", "batchnorm_eval", "leaky", "residual", "residual_pre"
    }  # fmt: skip
    assert [k for k in P.ALL if not P.ALL[k](0).same_regions] == ["conv_maxpool_1x6x6"]


def test_sizes_are_configurable():
    p = P.make_functional_relu(3, seed=1, hidden=(2, 6), out_dim=4)
    assert [m.out_features for m in p.mlp if isinstance(m, nn.Linear)] == [2, 6, 4]
    p = P.make_leaky(1, seed=1, hidden=(3, 2), negative_slope=0.25)
    assert [m.out_features for m in p.mlp if isinstance(m, nn.Linear)] == [6, 4, 2]
    p = P.make_conv_maxpool((2, 7, 5), seed=2, channels=3, kernel=2, pool=3, out_dim=1)
    assert p.input_shape == (2, 7, 5)
    X = torch.randn(50, 70, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(p.mlp(X), p.model(X.reshape(50, 2, 7, 5)), rtol=0, atol=1e-12)
    assert sum(isinstance(m, nn.ReLU) for m in p.mlp) == 1 + 4  # ceil(log2(9)) tournament rounds
    with pytest.raises(ValueError, match="too small"):
        P.make_conv_avgpool((1, 3, 3))
    with pytest.raises(ValueError, match="skip"):
        P.make_residual(skip="input")


# --- counts: the MLPs' regions and breakpoints equal the model's where `same_regions` says so -----
# (checked with nngeom's exact engines on models it already reads: the leaky Sequential, and for a
# residual block the plain Sequential of its own Linear layers, whose units switch where the
# block's do: a skip changes no pre-activation of a ReLU)


@pytest.mark.parametrize("seed", range(3))
def test_leaky_counts_match(seed):
    p1, p2 = P.make_leaky(1, seed), P.make_leaky(2, seed)
    a, b = ng.knots(p1.model, -4.0, 4.0), ng.knots(p1.mlp, -4.0, 4.0)
    assert (a.count, a.n_breakpoints) == (b.count, b.n_breakpoints)
    np.testing.assert_allclose(b.breakpoints, a.breakpoints, rtol=0, atol=1e-12)
    ra, rb = ng.regions_2d(p2.model, extent=2.0), ng.regions_2d(p2.mlp, extent=2.0)
    assert (ra.n_regions, ra.n_pieces) == (rb.n_regions, rb.n_pieces)


@pytest.mark.parametrize("skip", ["post", "pre"])
@pytest.mark.parametrize("seed", range(3))
def test_residual_counts_match(seed, skip):
    def skeleton(m: P.ResidualNet) -> nn.Sequential:
        return nn.Sequential(m.l0, nn.ReLU(), m.l1, nn.ReLU(), m.l2)

    p1, p2 = P.make_residual(1, seed, skip=skip), P.make_residual(2, seed, skip=skip)
    a, b = ng.knots(skeleton(p1.model), -4.0, 4.0), ng.knots(p1.mlp, -4.0, 4.0)
    assert a.n_breakpoints == b.n_breakpoints
    np.testing.assert_allclose(b.breakpoints, a.breakpoints, rtol=0, atol=1e-12)
    ra, rb = ng.regions_2d(skeleton(p2.model), extent=2.0), ng.regions_2d(p2.mlp, extent=2.0)
    assert ra.n_regions == rb.n_regions
