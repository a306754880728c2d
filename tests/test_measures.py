"""Oracle tests for nngeom.measures: baselines vs brute force, tau vs scipy, Psi by hand."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import scipy.stats
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import nngeom as ng
from nngeom import InvalidInput
from nngeom.measures import (
    bootstrap_ci,
    distance_from_init,
    granulated_psi,
    input_jacobian_norm,
    kendall_tau,
    log_frobenius_product,
    log_spectral_product,
    path_norm,
    sharpness,
)

F64 = torch.float64


def _x(n: int, d: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=F64)


@pytest.mark.parametrize("sizes,act", [((5, 7, 3), nn.ReLU()), ((4, 6, 6, 2), nn.LeakyReLU(0.1))])
def test_input_jacobian_matches_autograd(sizes, act) -> None:
    net = ng.mlp(sizes, act, seed=1, dtype=F64)
    X = _x(6, sizes[0])
    got = input_jacobian_norm(net, X, chunk_size=4)
    for i in range(6):
        J = torch.autograd.functional.jacobian(net, X[i : i + 1])
        assert got[i].item() == pytest.approx(float(J.norm()), rel=1e-10)


def test_input_jacobian_generic_model() -> None:
    net = ng.mlp((3, 5, 2), "tanh", seed=0, dtype=F64)
    X = _x(4, 3)
    got = input_jacobian_norm(net, X)
    want = torch.stack(
        [torch.autograd.functional.jacobian(net, X[i : i + 1]).norm() for i in range(4)]
    )
    torch.testing.assert_close(got, want)
    with pytest.raises(InvalidInput):
        input_jacobian_norm(net, _x(4, 7))


def test_path_norm_enumerates_paths() -> None:
    net = ng.mlp((3, 4, 2, 2), seed=2, dtype=F64)
    W = [m.weight.detach() for m in net if isinstance(m, nn.Linear)]
    total = 0.0
    for path in itertools.product(range(3), range(4), range(2), range(2)):
        prod = 1.0
        for li, (i, o) in enumerate(zip(path[:-1], path[1:], strict=True)):
            prod *= float(W[li][o, i]) ** 2
        total += prod
    assert path_norm(net) == pytest.approx(math.sqrt(total), rel=1e-12)


def test_norm_products_and_distance() -> None:
    net = ng.mlp((4, 5, 3), seed=0, dtype=F64)
    init = ng.mlp((4, 5, 3), seed=0, dtype=F64)
    W = [m.weight.detach() for m in net if isinstance(m, nn.Linear)]
    spec = sum(math.log(float(np.linalg.svd(w.numpy(), compute_uv=False)[0])) for w in W)
    frob = sum(math.log(float(np.sqrt((w.numpy() ** 2).sum()))) for w in W)
    assert log_spectral_product(net) == pytest.approx(spec, rel=1e-12)
    assert log_frobenius_product(net) == pytest.approx(frob, rel=1e-12)
    assert distance_from_init(net, init) == 0.0
    with torch.no_grad():
        net[0].weight[0, 0] += 3.0
        net[2].bias[1] -= 4.0
    assert distance_from_init(net, init) == pytest.approx(5.0)
    assert distance_from_init(net, init.state_dict()) == pytest.approx(5.0)
    with pytest.raises(InvalidInput):
        distance_from_init(net, ng.mlp((4, 6, 3)))


def test_sharpness_is_deterministic_and_orders_scaled_nets() -> None:
    X = _x(300, 6, seed=3)
    teacher = ng.mlp((6, 8, 3), seed=4, dtype=F64)
    with torch.no_grad():
        y = teacher(X).argmax(1)
    a = sharpness(teacher, X, y, seed=1)
    assert a == sharpness(teacher, X, y, seed=1)
    # rescale layer 0 by c and layer 1 by (c, c^2 for its bias): f becomes c^2 f, the same
    # predictions, but absolute weight noise now moves the output relatively more: sharper
    c = 0.25
    small = ng.mlp((6, 8, 3), seed=4, dtype=F64)
    with torch.no_grad():
        small[0].weight.mul_(c)
        small[0].bias.mul_(c)
        small[2].weight.mul_(c)
        small[2].bias.mul_(c * c)
        assert torch.equal(small(X).argmax(1), y)
    assert sharpness(small, X, y, seed=1) > a
    assert 1e-2 <= a <= 1e8  # inside the searched sigma range (1e-4, 10)


@settings(max_examples=60)
@given(
    data=st.lists(
        st.tuples(st.integers(0, 4), st.floats(-3, 3, allow_nan=False)), min_size=2, max_size=40
    )
)
def test_kendall_tau_matches_scipy(data) -> None:
    x = [a for a, _ in data]
    y = [b for _, b in data]
    want = scipy.stats.kendalltau(x, y).statistic
    got = kendall_tau(x, y)
    if math.isnan(want):
        assert math.isnan(got)
    else:
        assert got == pytest.approx(want, abs=1e-12)


def test_kendall_tau_large_and_bad_input() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=5000)
    y = x + rng.normal(size=5000)
    assert kendall_tau(x, y) == pytest.approx(scipy.stats.kendalltau(x, y).statistic, abs=1e-12)
    with pytest.raises(InvalidInput):
        kendall_tau([1, 2, 3], [1, 2])
    assert math.isnan(kendall_tau([1, 1, 1], [1, 2, 3]))
    assert math.isnan(kendall_tau([1.0], [2.0]))


def test_kendall_tau_drops_nan_pairs_like_scipy() -> None:
    rng = np.random.default_rng(2)
    x = rng.integers(0, 5, size=60).astype(float)  # ties: tau-b
    y = x + rng.integers(0, 3, size=60)
    x[[3, 17]] = np.nan
    y[[17, 40]] = np.nan
    want = scipy.stats.kendalltau(x, y, nan_policy="omit").statistic
    assert kendall_tau(x, y) == pytest.approx(want, abs=1e-12)
    assert kendall_tau(torch.from_numpy(x), y) == kendall_tau(x, y)


def test_granulated_psi_by_hand() -> None:
    # 2 x 2 x 2 grid: gap = width + 0.1 * lr; measure agrees on width, disagrees on lr
    rows = list(itertools.product([1, 2], [0.1, 0.2], [0, 1]))
    width = [r[0] for r in rows]
    lr = [r[1] for r in rows]
    seed = [r[2] for r in rows]
    gap = [w + li for w, li in zip(width, lr, strict=True)]
    measure = [w - 10 * li for w, li in zip(width, lr, strict=True)]
    res = granulated_psi(
        measure, gap, {"width": width, "lr": lr, "seed": seed}, vary=["width", "lr"]
    )
    assert res.per_factor == {"width": 1.0, "lr": -1.0}
    assert res.groups == {"width": 4, "lr": 4}
    assert res.psi == 0.0
    with pytest.raises(InvalidInput):
        granulated_psi(measure, gap, {"width": width[:3]})
    with pytest.raises(InvalidInput):
        granulated_psi(measure, gap, {"width": width}, vary=["depth"])


def test_bootstrap_ci_is_seeded_and_covers() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=400)
    y = 0.5 * x + rng.normal(size=400)

    def stat(idx: np.ndarray) -> float:
        return kendall_tau(x[idx], y[idx])

    lo, hi = bootstrap_ci(stat, 400, n_boot=200, seed=3)
    assert (lo, hi) == bootstrap_ci(stat, 400, n_boot=200, seed=3)
    assert lo < kendall_tau(x, y) < hi
    assert hi - lo < 0.2
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    assert bootstrap_ci(stat, 400, n_boot=50, generator=g1) == bootstrap_ci(
        stat, 400, n_boot=50, generator=g2
    )
    with pytest.raises(InvalidInput):
        bootstrap_ci(stat, 0)
    with pytest.raises(InvalidInput):
        bootstrap_ci(stat, 10, level=1.5)
    with pytest.raises(InvalidInput, match="method"):
        bootstrap_ci(stat, 10, method="bca")


@pytest.mark.parametrize("method", ["BCa", "percentile", "basic"])
def test_bootstrap_ci_equals_scipy(method) -> None:
    x = np.random.default_rng(4).exponential(size=60)

    def stat(idx: np.ndarray) -> float:
        return float(x[idx].mean())

    got = bootstrap_ci(stat, 60, n_boot=300, level=0.9, method=method, seed=7)
    want = scipy.stats.bootstrap(
        (x,),
        lambda s: float(s.mean()),
        n_resamples=300,
        confidence_level=0.9,
        method=method,
        vectorized=False,
        rng=np.random.default_rng(7),
    ).confidence_interval
    assert got == pytest.approx((want.low, want.high), rel=1e-12)


def test_bootstrap_ci_drops_nan_draws_and_constant_statistics() -> None:
    x = np.arange(30.0)

    def mean_or_nan(idx: np.ndarray) -> float:
        return math.nan if idx[0] % 3 == 0 else float(x[idx].mean())

    lo, hi = bootstrap_ci(mean_or_nan, 30, n_boot=400, method="percentile", seed=1)
    rng = np.random.default_rng(1)
    draws = [mean_or_nan(rng.integers(0, 30, 30)) for _ in range(400)]
    finite = [d for d in draws if math.isfinite(d)]
    assert 0 < len(finite) < 400
    assert (lo, hi) == pytest.approx(tuple(np.percentile(finite, [2.5, 97.5])), rel=1e-12)
    assert math.isfinite(bootstrap_ci(mean_or_nan, 30, n_boot=400, seed=1)[0])  # BCa
    assert bootstrap_ci(lambda idx: 2.5, 30, n_boot=50) == (2.5, 2.5)
    assert bootstrap_ci(lambda idx: float(idx.sum()), 1) == (0.0, 0.0)
    assert all(math.isnan(v) for v in bootstrap_ci(lambda idx: math.nan, 10, n_boot=20))
