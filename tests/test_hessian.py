"""Oracle tests of nngeom.hessian against torch.autograd.functional.hessian and eigvalsh."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.func import functional_call

import nngeom as ng
from _oracles import autograd_hessian
from nngeom._linop import ColumnBasis, Complement, MatrixOperator
from nngeom._random import rademacher
from nngeom.hessian import (
    HessianOperator,
    count_eigenvalues,
    hessian,
    hessian_eigenvalues,
    hvp,
    lanczos,
    spectral_density,
)
from nngeom.symmetry import rescaling_directions

pytestmark = pytest.mark.usefixtures("one_thread")


def _data(d, out, n=40, seed=0, labels=False):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d, generator=g, dtype=torch.float64)
    if labels:
        y = torch.randint(0, out, (n,), generator=g)
    else:
        y = torch.randn(n, out, generator=g, dtype=torch.float64)
    return X, y


@settings(max_examples=8)
@given(
    sizes=st.lists(st.integers(1, 4), min_size=1, max_size=2),
    act=st.sampled_from(["tanh", "softplus", "sigmoid"]),
    seed=st.integers(0, 1000),
    loss=st.sampled_from(["mse", "ce"]),
)
def test_full_hessian_equals_autograd(sizes, act, seed, loss):
    d, out = 3, 3
    net = ng.mlp([d, *sizes, out], act, dtype=torch.float64, seed=seed)
    X, y = _data(d, out, seed=seed, labels=loss == "ce")
    H = hessian(net, X, y, loss=loss)
    ref = autograd_hessian(net, X, y, loss)
    assert torch.allclose(H, ref, atol=1e-12, rtol=1e-10)
    # chunked data gives the same Hessian (mean losses weighted by chunk size)
    assert torch.allclose(
        HessianOperator(net, X, y, loss=loss, chunk_size=7).full(), ref, atol=1e-12, rtol=1e-10
    )


def test_hvp_methods_agree_with_full_hessian():
    net = ng.mlp([3, 6, 5, 2], "tanh", dtype=torch.float64, seed=1)
    X, y = _data(3, 2)
    H = autograd_hessian(net, X, y, "mse")
    v = torch.randn(H.shape[0], generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    assert torch.allclose(hvp(net, X, y, v), H @ v, atol=1e-13)
    assert torch.allclose(hvp(net, X, y, v, method="autograd"), H @ v, atol=1e-13)
    op = HessianOperator(net, X, y)
    V = torch.randn(op.n, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    assert torch.allclose(op.matmat(V, chunk_size=2), H @ V, atol=1e-13)
    assert torch.allclose(op @ V, H @ V, atol=1e-13) and torch.allclose(op @ v, H @ v, atol=1e-13)


def test_lanczos_matches_full_spectrum_on_a_net_of_1700_parameters():
    net = ng.mlp([20, 40, 20, 3], "tanh", dtype=torch.float64, seed=2)
    X, y = _data(20, 3, n=64)
    assert sum(p.numel() for p in net.parameters()) == 1723
    full = hessian_eigenvalues(net, X, y)
    ref = torch.linalg.eigvalsh(autograd_hessian(net, X, y, "mse")).numpy()
    assert np.allclose(full, ref, atol=1e-12)
    scale = np.abs(ref).max()
    top = hessian_eigenvalues(net, X, y, k=6, which="largest", tol=1e-8)
    assert np.allclose(top, ref[-6:], atol=1e-9 * scale)
    bottom = hessian_eigenvalues(net, X, y, k=6, which="smallest", tol=1e-8)
    assert np.allclose(bottom, ref[:6], atol=1e-9 * scale)
    assert bottom[0] < 0  # a random net is not at a minimum: the most negative one is found
    both = hessian_eigenvalues(net, X, y, k=3, which="both", tol=1e-8)
    assert np.allclose(both, np.concatenate([ref[:3], ref[-3:]]), atol=1e-9 * scale)


@settings(max_examples=15)
@given(n=st.integers(2, 60), k=st.integers(1, 4), seed=st.integers(0, 10_000))
def test_lanczos_on_random_matrices_including_low_rank(n, k, seed):
    rng = np.random.default_rng(seed)
    rank = int(rng.integers(1, n + 1))
    B = rng.standard_normal((n, rank))
    A = torch.as_tensor(B @ B.T - B[:, : rank // 2] @ B[:, : rank // 2].T * 2)
    ev = np.linalg.eigvalsh(A.numpy())
    k = min(k, n)
    res = lanczos(lambda v: A @ v, n, k, "largest", tol=1e-10, seed=seed, return_vectors=True)
    scale = max(np.abs(ev).max(), 1e-12)
    assert np.allclose(res.eigenvalues, ev[-k:], atol=1e-7 * scale)
    res = lanczos(lambda v: A @ v, n, k, "smallest", tol=1e-10, seed=seed)
    assert np.allclose(res.eigenvalues, ev[:k], atol=1e-7 * scale)


def test_projection_of_rescaling_directions():
    net = ng.mlp([3, 4, 2], "relu", dtype=torch.float64, seed=5)
    X, y = _data(3, 2, n=30)
    D = rescaling_directions(net)
    assert D.shape == (sum(p.numel() for p in net.parameters()), 4)
    # the function is invariant along each direction: its first-order change vanishes
    names = [k for k, _ in net.named_parameters()]
    shapes = [p.shape for p in net.parameters()]
    theta = torch.cat([p.detach().reshape(-1) for p in net.parameters()])

    def out(t):
        parts = torch.split(t, [s.numel() for s in shapes])
        return functional_call(
            net, {k: p.reshape(s) for k, p, s in zip(names, parts, shapes)}, (X,)
        )

    for c in range(D.shape[1]):
        jv = torch.func.jvp(out, (theta,), (D[:, c],))[1]
        assert jv.abs().max() < 1e-12
    ev = hessian_eigenvalues(net, X, y, project="rescaling")
    assert ev.shape == (theta.numel() - 4,)
    H = autograd_hessian(net, X, y, "mse")
    Q, _ = torch.linalg.qr(D, mode="complete")
    B = Q[:, 4:]
    assert np.allclose(ev, torch.linalg.eigvalsh(B.T @ H @ B).numpy(), atol=1e-12)
    top = hessian_eigenvalues(net, X, y, k=3, project="rescaling", tol=1e-10)
    assert np.allclose(top, ev[-3:], atol=1e-9)


def test_spectral_density_quadrature_is_exact_for_the_rayleigh_quotient():
    rng = np.random.default_rng(0)
    B = rng.standard_normal((30, 30))
    A = torch.as_tensor((B + B.T) / 2)
    sd = spectral_density(lambda v: A @ v, 30, n_probes=3, steps=30, seed=1)
    assert np.allclose(sd.weights.sum(axis=1), 1.0)
    gen = torch.Generator().manual_seed(1)
    for p in range(3):
        v = rademacher((30,), gen, dtype=torch.float64)
        assert np.isclose((sd.weights[p] * sd.nodes[p]).sum(), float(v @ A @ v) / 30, atol=1e-10)
    grid = np.linspace(-15, 15, 3001)
    dens = sd.density(grid, sigma=0.3)
    assert np.isclose(np.trapezoid(dens, grid), 1.0, atol=1e-3)


def test_count_eigenvalues():
    assert count_eigenvalues(np.array([-2.0, -1e-12, 0.0, 3.0, 5.0]), 1e-9) == (1, 2, 2)
    assert count_eigenvalues(np.array([])) == (0, 0, 0)


def test_bad_input_is_refused_clearly():
    net = ng.mlp([3, 4, 2], "tanh", dtype=torch.float64)
    X, y = _data(3, 2)
    with pytest.raises(ng.InvalidInput, match="features"):
        hessian(net, torch.randn(5, 4, dtype=torch.float64), y[:5])
    with pytest.raises(ng.InvalidInput, match="shape"):
        hessian(net, torch.randn(5, dtype=torch.float64), y[:5])
    with pytest.raises(ng.InvalidInput, match="empty"):
        hessian(net, X[:0], y[:0])
    with pytest.raises(ng.InvalidInput, match="examples"):
        hessian(net, X, y[:3])
    with pytest.raises(ng.InvalidInput, match="NaN"):
        hessian(net, X * float("nan"), y)
    bad = ng.mlp([3, 4, 2], "tanh", dtype=torch.float64)
    with torch.no_grad():
        bad[0].weight[0, 0] = float("inf")
    with pytest.raises(ng.InvalidModel, match="NaN or inf"):
        hessian(bad, X, y)
    with pytest.raises(ng.InvalidInput, match="k must"):
        hessian_eigenvalues(net, X, y, k=0)
    with pytest.raises(ng.InvalidInput, match="which"):
        hessian_eigenvalues(net, X, y, k=2, which="middle")
    with pytest.raises(ng.InvalidInput, match="asked for"):
        hessian_eigenvalues(net, X, y, k=100)
    with pytest.raises(ng.InvalidInput, match="unknown loss"):
        hessian(net, X, y, loss="hinge")
    with pytest.raises(ng.UnsupportedModel, match="not positively homogeneous"):
        hessian_eigenvalues(net, X, y, project="rescaling")
    big = ng.mlp([200, 120, 10], "tanh", dtype=torch.float64)
    with pytest.raises(ng.InvalidInput, match="Lanczos"):
        HessianOperator(
            big, torch.zeros(2, 200, dtype=torch.float64), torch.zeros(2, 10, dtype=torch.float64)
        ).full()


# ---- the linear-operator protocol ------------------------------------------------------------


def _sym(n, seed):
    B = torch.randn(n, n, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    return B + B.T


def test_linear_operators_match_their_dense_matrices():
    net = ng.mlp([3, 4, 2], "tanh", dtype=torch.float64, seed=3)
    X, y = _data(3, 2, n=20)
    H = autograd_hessian(net, X, y)
    n = H.shape[0]
    g = torch.Generator().manual_seed(5)
    V = torch.randn(n, 3, dtype=torch.float64, generator=g)
    D = torch.randn(n, 4, dtype=torch.float64, generator=g)
    Q, _ = torch.linalg.qr(D)
    Qc = torch.linalg.qr(D, mode="complete")[0][:, 4:]  # a basis of the complement of D
    for A, dense in ((HessianOperator(net, X, y), H), (MatrixOperator(_sym(n, 1)), _sym(n, 1))):
        assert A.shape == (n, n)
        assert torch.allclose(A @ V[:, 0], dense @ V[:, 0], atol=1e-12)
        assert torch.allclose(A @ V, dense @ V, atol=1e-12)
        assert torch.allclose(A.to_dense(), dense, atol=1e-12)
        S = A.to_scipy()
        x = V[:, 0].numpy()
        assert S.shape == (n, n) and np.allclose(S @ x, (dense @ V[:, 0]).numpy(), atol=1e-12)
        assert np.allclose(S.matmat(V.numpy()), (dense @ V).numpy(), atol=1e-12)
        # restriction to the span of Q: Q^T A Q; to the complement of D: the same spectrum as
        # with an explicit orthonormal basis of it
        R = A.restrict(ColumnBasis(Q))
        assert R.shape == (4, 4)
        assert torch.allclose(R.to_dense(), Q.T @ dense @ Q, atol=1e-12)
        z = torch.ones(4, dtype=torch.float64)
        assert torch.allclose(R @ z, Q.T @ dense @ Q @ z, atol=1e-12)
        C = Complement(D)
        assert (C.n, C.m) == (n, n - 4)
        B = C.basis(torch.float64, "cpu")
        assert torch.allclose(B.T @ B, torch.eye(n - 4, dtype=torch.float64), atol=1e-12)
        assert float((D.T @ B).abs().max()) < 1e-12
        ev = torch.linalg.eigvalsh(A.restrict(C).to_dense())
        assert torch.allclose(ev, torch.linalg.eigvalsh(Qc.T @ dense @ Qc), atol=1e-10)
    with pytest.raises(ng.InvalidInput, match="shape"):
        MatrixOperator(H) @ torch.ones(n + 1, dtype=torch.float64)


def test_hessian_results_are_float64_tensors_and_lanczos_takes_operators():
    net = ng.mlp([3, 4, 2], "tanh", dtype=torch.float32, seed=3)
    X, y = _data(3, 2, n=20)
    X, y = X.float(), y.float()
    ev = hessian_eigenvalues(net, X, y)
    assert isinstance(ev, torch.Tensor) and ev.dtype == torch.float64
    op = HessianOperator(net, X, y)
    res = lanczos(op, k=2, tol=1e-5)
    assert res.eigenvalues.dtype == torch.float64 and res.residuals.dtype == torch.float64
    assert torch.allclose(res.eigenvalues, ev[-2:], rtol=1e-3)
    assert lanczos(op.matvec, op.n, 2, dtype=torch.float32).eigenvalues.shape == (2,)


def test_random_functions_take_a_generator():
    net = ng.mlp([3, 4, 2], "tanh", dtype=torch.float64, seed=3)
    X, y = _data(3, 2, n=20)

    def run(**kw):
        return hessian_eigenvalues(net, X, y, k=2, tol=1e-3, max_iter=3, **kw)

    assert torch.equal(run(seed=4), run(seed=4))
    g1, g2 = torch.Generator().manual_seed(9), torch.Generator().manual_seed(9)
    assert torch.equal(run(generator=g1), run(generator=g2))
    sd = [
        spectral_density(net, X, y, n_probes=2, steps=3, generator=torch.Generator().manual_seed(2))
        for _ in range(2)
    ]
    assert np.array_equal(sd[0].nodes, sd[1].nodes)
    with pytest.raises(ng.InvalidInput, match="generator"):
        run(generator=3)
