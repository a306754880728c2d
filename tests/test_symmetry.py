"""Tests of nngeom.symmetry: permutations, merge/split, permutation saddles, paths, counting."""

from __future__ import annotations

import itertools
import math
from fractions import Fraction

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.func import functional_call

import nngeom as ng
from _oracles import autograd_hessian
from nngeom._params import Layout
from nngeom.data import teacher_student_grid
from nngeom.symmetry import (
    bezier_path,
    canonical_form,
    embed_merged,
    equal_loss_path,
    equivalent,
    flat_directions,
    flatten_parameters,
    linear_path_losses,
    match_weights,
    merge_neurons,
    merge_pairs,
    path_losses,
    permutation_point_factor,
    permute_all,
    rescaling_directions,
    split_neuron,
)

pytestmark = pytest.mark.usefixtures("one_thread")


def _x(d, n=50, seed=0):
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


@settings(max_examples=30)
@given(
    widths=st.lists(st.integers(1, 5), min_size=1, max_size=3),
    act=st.sampled_from(["relu", "tanh", "softplus"]),
    seed=st.integers(0, 10_000),
    data=st.data(),
)
def test_permute_preserves_the_function_and_matching_recovers_it(widths, act, seed, data):
    net = ng.mlp([3, *widths, 2], act, dtype=torch.float64, seed=seed)
    layer = data.draw(st.integers(0, len(widths) - 1))
    perm = data.draw(st.permutations(range(widths[layer])))
    X = _x(3, seed=seed)
    p = ng.permute(net, layer, perm)
    assert (p(X) - net(X)).abs().max() <= 1e-12
    assert torch.equal(p[2 * layer].weight, net[2 * layer].weight[list(perm)])
    # all layers at once; matching finds the permutation back; canonical forms agree
    perms = [data.draw(st.permutations(range(w))) for w in widths]
    q = permute_all(net, perms)
    assert (q(X) - net(X)).abs().max() <= 1e-12
    back = match_weights(net, q)
    assert all(
        torch.equal(a.weight, b.weight)
        for a, b in zip(ng.as_mlp(net).linears, ng.as_mlp(permute_all(q, back)).linears)
    )
    assert equivalent(net, q)
    ca, _ = canonical_form(net)
    cb, _ = canonical_form(q)
    assert all(
        torch.equal(a, b) for a, b in zip(ca.state_dict().values(), cb.state_dict().values())
    )


def test_equivalent_is_false_for_a_different_net():
    a = ng.mlp([3, 4, 2], "tanh", dtype=torch.float64, seed=0)
    b = ng.mlp([3, 4, 2], "tanh", dtype=torch.float64, seed=1)
    assert not equivalent(a, b)
    assert not equivalent(a, ng.mlp([3, 5, 2], "tanh", dtype=torch.float64, seed=0))


@settings(max_examples=25)
@given(
    widths=st.lists(st.integers(2, 5), min_size=1, max_size=3),
    seed=st.integers(0, 10_000),
    lam=st.floats(-3, 3, allow_nan=False),
    bias=st.booleans(),
    data=st.data(),
)
def test_merged_and_split_nets_compute_the_reduced_function_for_every_lambda(
    widths, seed, lam, bias, data
):
    reduced = ng.mlp([3, *widths, 2], "tanh", dtype=torch.float64, seed=seed, bias=bias)
    layer = data.draw(st.integers(0, len(widths) - 1))
    n = widths[layer] + 1
    i, j = data.draw(st.lists(st.integers(0, n - 1), min_size=2, max_size=2, unique=True))
    X = _x(3, seed=seed)
    point = embed_merged(reduced, layer, i, j, lam)
    v = ng.as_mlp(point)
    assert v.widths[layer] == n
    assert torch.equal(v.linears[layer].weight[i], v.linears[layer].weight[j])
    a = ng.as_mlp(reduced).linears[layer + 1].weight[:, min(i, j)]
    assert torch.allclose(v.linears[layer + 1].weight[:, i], lam * a, atol=1e-15)
    assert torch.allclose(v.linears[layer + 1].weight[:, j], (1 - lam) * a, atol=1e-15)
    assert (point(X) - reduced(X)).abs().max() <= 1e-12 * max(1.0, abs(lam))
    # merging i and j gives the reduced net back (same weights)
    back = merge_neurons(point, layer, i, j)
    for a, b in zip(back.parameters(), reduced.parameters()):
        assert torch.allclose(a, b, atol=1e-12 * max(1.0, abs(lam)))
    # split any neuron anywhere: same function
    pos = data.draw(st.integers(0, widths[layer]))
    s = split_neuron(
        reduced, layer, data.draw(st.integers(0, widths[layer] - 1)), lam, position=pos
    )
    assert (s(X) - reduced(X)).abs().max() <= 1e-12 * max(1.0, abs(lam))


def test_order_k_merges_across_layers():
    net = ng.mlp([3, 6, 5, 2], "tanh", dtype=torch.float64, seed=3)
    # make (0,1,4), (0,2,3) and (1,0,3) permutation points, then merge all three pairs
    with torch.no_grad():
        net[0].weight[4] = net[0].weight[1]
        net[0].bias[4] = net[0].bias[1]
        net[0].weight[3] = net[0].weight[2]
        net[0].bias[3] = net[0].bias[2]
        net[2].weight[3] = net[2].weight[0]
        net[2].bias[3] = net[2].bias[0]
    red = merge_pairs(net, [(0, 1, 4), (0, 3, 2), (1, 0, 3)])
    assert ng.as_mlp(red).widths == (4, 4)
    X = _x(3)
    assert (red(X) - net(X)).abs().max() <= 1e-12
    with pytest.raises(ng.InvalidInput, match="disjoint"):
        merge_pairs(net, [(0, 1, 4), (0, 1, 2)])


def _toy():
    X, y, teacher = teacher_student_grid("softplus", step=1.0)
    return X, y


def test_permutation_saddle_is_a_critical_point_with_the_predicted_flat_directions():
    X, y = _toy()
    student = ng.mlp([2, 3, 1], "softplus", bias=False, dtype=torch.float64, seed=4)
    pp = ng.find_permutation_saddle(
        student, X, y, 0, 0, 2, loss="sse", search=ng.CriticalPointSearch(lbfgs_steps=20)
    )
    assert pp.grad_norm < 1e-8
    assert pp.full_spectrum
    assert pp.n_zero_theory == 1
    assert pp.n_zero >= pp.n_zero_theory
    assert pp.flat_residual < 1e-10
    # the incoming vectors of 0 and 2 are equal and the outgoing split as lam = 1/2
    v = ng.as_mlp(pp.model)
    assert torch.equal(v.weights[0][0], v.weights[0][2])
    assert torch.allclose(v.weights[1][:, 0], v.weights[1][:, 2])
    # the spectrum is that of the autograd Hessian at the point
    H = autograd_hessian(pp.model, X, y, "sse")
    assert np.allclose(pp.eigenvalues, torch.linalg.eigvalsh(H).numpy(), atol=1e-12)
    assert pp.n_negative == int((pp.eigenvalues < -pp.zero_tol * pp.eigenvalues.abs().max()).sum())
    # the loss equals the reduced net's loss; every lambda gives the same loss
    other = embed_merged(pp.reduced, 0, 0, 2, lam=0.9)
    assert (
        abs(path_losses(other, X, y, flatten_parameters(other)[None], loss="sse")[0] - pp.loss)
        < 1e-14
    )
    # the equal-loss path from C to its (0 2)-swapped copy
    path = equal_loss_path(pp.model, 0, 0, 2, steps=10)
    losses = path_losses(pp.model, X, y, path.params, loss="sse")
    assert np.ptp(losses) <= 1e-12 * max(1.0, pp.loss)
    assert abs(losses[0] - pp.loss) <= 1e-12 * max(1.0, pp.loss)
    swapped = ng.permute(path.start, 0, [2, 1, 0])
    assert torch.allclose(flatten_parameters(swapped), path.params[-1], atol=1e-15)
    # flat directions are unit, orthogonal, one per output
    D = flat_directions(pp.model, 0, 0, 2)
    assert torch.allclose(D.T @ D, torch.eye(1, dtype=torch.float64))


def test_straight_line_and_bezier_between_a_minimum_and_its_swapped_copy():
    X, y = _toy()
    net = ng.mlp([2, 3, 1], "softplus", bias=False, dtype=torch.float64, seed=1)
    ng.train(net, X, y, loss="sse", optimizer="lbfgs", epochs=10, lr=1.0)
    swapped = ng.permute(net, 0, [1, 0, 2])
    t, lin = linear_path_losses(net, swapped, X, y, loss="sse", steps=20)
    assert t[0] == 0 and t[-1] == 1
    assert abs(lin[0] - lin[-1]) < 1e-12
    bz = bezier_path(net, swapped, X, y, loss="sse", epochs=60, lr=0.05, steps=20, seed=0)
    assert bz.losses.shape == (21,)
    assert abs(bz.losses[0] - lin[0]) < 1e-12 and abs(bz.losses[-1] - lin[-1]) < 1e-12
    assert bz.barrier <= lin.max() - lin[0] + 1e-12


# ---- counting -----------------------------------------------------------------------------


def _brute_force_points(widths, layer, K, seed=0):
    """Distinct K-th order permutation points of ``layer`` by enumeration (numpy)."""
    rng = np.random.default_rng(seed)
    sizes = [2, *widths, 1]
    sizes_red = list(sizes)
    sizes_red[layer + 1] -= K
    W = [rng.standard_normal((sizes_red[l + 1], sizes_red[l] + 1)) for l in range(len(sizes) - 1)]
    seen = set()
    n = widths[layer]
    for dup in itertools.combinations(range(n - K), K):
        Wl = np.concatenate([W[layer], W[layer][list(dup)]], axis=0)
        out = W[layer + 1].copy()
        out[:, [c + 1 for c in dup]] *= 0.5  # column 0 is the bias
        Wn = np.concatenate([out, out[:, [c + 1 for c in dup]]], axis=1)
        base = list(W)
        base[layer], base[layer + 1] = Wl, Wn
        for perms in itertools.product(*[itertools.permutations(range(w)) for w in widths]):
            Ws = [m.copy() for m in base]
            for l, p in enumerate(perms):
                Ws[l] = Ws[l][list(p)]
                Ws[l + 1] = np.concatenate([Ws[l + 1][:, :1], Ws[l + 1][:, 1:][:, list(p)]], axis=1)
            seen.add(tuple(np.round(np.concatenate([m.ravel() for m in Ws]), 9)))
    return len(seen)


def _brute_force_minima(widths, seed=0):
    rng = np.random.default_rng(seed)
    sizes = [2, *widths, 1]
    W = [rng.standard_normal((sizes[l + 1], sizes[l] + 1)) for l in range(len(sizes) - 1)]
    seen = set()
    for perms in itertools.product(*[itertools.permutations(range(w)) for w in widths]):
        Ws = [m.copy() for m in W]
        for l, p in enumerate(perms):
            Ws[l] = Ws[l][list(p)]
            Ws[l + 1] = np.concatenate([Ws[l + 1][:, :1], Ws[l + 1][:, 1:][:, list(p)]], axis=1)
        seen.add(tuple(np.round(np.concatenate([m.ravel() for m in Ws]), 9)))
    return len(seen)


@pytest.mark.parametrize("widths", [(2, 3), (3, 3), (4, 2), (4, 4), (3, 4)])
def test_counting_formulas_equal_enumeration(widths):
    assert ng.count_equivalent_minima(widths) == _brute_force_minima(widths)
    for K in (1, 2):
        brute = sum(
            _brute_force_points(widths, layer, K) for layer in range(2) if widths[layer] >= 2 * K
        )
        assert ng.count_permutation_points(widths, order=K) == brute
        assert permutation_point_factor(widths, K) * ng.count_equivalent_minima(widths) == brute


def test_counting_paper_values():
    assert permutation_point_factor([100, 100], 1) == 99
    assert permutation_point_factor([100, 100], 2) == Fraction(4753, 2)
    minima = ng.count_equivalent_minima([100, 100])
    assert minima == math.factorial(100) ** 2
    digits = str(minima)
    assert len(digits) == 316 and digits.startswith("87")  # ~8.7e315, as in the paper
    assert isinstance(ng.count_permutation_points([100, 100], 2), int)
    assert ng.count_permutation_points([100, 100], 2) * 2 == 4753 * minima
    assert ng.count_permutation_points([3], order=2) == 0


# ---- bad input ----------------------------------------------------------------------------


def test_bad_input_is_refused_clearly():
    X, y = _toy()
    net = ng.mlp([2, 3, 1], "softplus", bias=False, dtype=torch.float64)
    with pytest.raises(ng.InvalidInput, match="different"):
        ng.find_permutation_saddle(net, X, y, 0, 1, 1)
    with pytest.raises(ng.InvalidInput, match="does not exist"):
        ng.find_permutation_saddle(net, X, y, 1, 0, 1)
    with pytest.raises(ng.InvalidInput, match="out of range"):
        ng.find_permutation_saddle(net, X, y, 0, 0, 3)
    with pytest.raises(ng.InvalidInput, match="width 1"):
        ng.find_permutation_saddle(ng.mlp([2, 1, 1], "softplus"), X, y, 0, 0, 1)
    with pytest.raises(ng.UnsupportedModel, match="no hidden layer"):
        ng.find_permutation_saddle(torch.nn.Sequential(torch.nn.Linear(2, 1)), X, y, 0, 0, 1)
    with pytest.raises(ng.InvalidInput, match=r"shape \(N, 2\)"):
        ng.find_permutation_saddle(net, X[:, :1], y, 0, 0, 1)
    with pytest.raises(ng.InvalidInput, match="examples"):
        ng.find_permutation_saddle(net, X, y[:5], 0, 0, 1)
    with pytest.raises(ng.InvalidModel, match="loss became"):
        ng.find_permutation_saddle(
            net, X * 1e200, y, 0, 0, 1, search=ng.CriticalPointSearch(lbfgs_steps=1)
        )
    with pytest.raises(ng.InvalidInput, match="not a permutation"):
        ng.permute(net, 0, [0, 0, 1])
    with pytest.raises(ng.InvalidInput, match="not a permutation point"):
        equal_loss_path(net, 0, 0, 1)
    with pytest.raises(ng.InvalidInput, match="positive int"):
        ng.count_permutation_points([3, 0])
    with pytest.raises(ng.InvalidInput, match="order"):
        ng.count_permutation_points([3, 3], order=0)
    with pytest.raises(ng.InvalidInput, match="empty"):
        ng.count_equivalent_minima([])
    with pytest.raises(ng.UnsupportedModel):
        ng.permute(torch.nn.Conv1d(1, 1, 1), 0, [0])


def test_constant_zero_inputs_are_held_fixed_and_the_search_converges():
    # inputs 3 and 4 are 0 in every example: the first-layer weights from them (and nothing
    # else here) are exactly flat, a singular Hessian for Newton; the reduced net is a
    # perturbed teacher, so a critical point exists nearby
    g = torch.Generator().manual_seed(0)
    X = 2 * torch.randn(60, 5, generator=g, dtype=torch.float64)
    X[:, 3:] = 0.0
    teacher = ng.mlp([5, 3, 2, 2], "softplus", dtype=torch.float64, seed=1)
    with torch.no_grad():
        for p in teacher.parameters():
            p.mul_(3.0)
        y = teacher(X)
    net = embed_merged(teacher, 1, 0, 2, lam=0.3)
    th = flatten_parameters(net)
    net = ng.symmetry.load_flat_parameters(
        net, th + 0.02 * torch.randn(th.shape, generator=g, dtype=torch.float64)
    )
    search = ng.CriticalPointSearch(lbfgs_steps=20, trust_steps=50)
    pp = ng.find_permutation_saddle(net, X, y, 1, 0, 2, search=search)
    assert pp.converged and pp.grad_norm < 1e-8
    # [X, 1] has rank 4 of 6 columns: 2 null directions per first-layer neuron
    assert pp.n_data_null == 3 * 2
    assert pp.n_zero_theory == 2
    assert pp.n_zero_free >= pp.n_zero_theory
    assert pp.n_zero >= pp.n_zero_theory + pp.n_data_null
    # oracle: the spectrum is the autograd Hessian's, and the restricted spectrum is that of
    # B^T H B with B the explicit orthonormal basis of the free subspace
    H = autograd_hessian(pp.model, X, y)
    assert np.allclose(pp.eigenvalues, torch.linalg.eigvalsh(H).numpy(), atol=1e-12)
    sub = ng.symmetry.data_null_subspace(pp.model, X)
    B = sub.to_full(torch.eye(sub.m, dtype=torch.float64))
    assert torch.allclose(B.T @ B, torch.eye(sub.m, dtype=torch.float64), atol=1e-12)
    free = torch.linalg.eigvalsh(B.T @ H @ B).numpy()
    assert np.allclose(pp.eigenvalues_free, free, atol=1e-12)
    # the null directions are exactly flat: H annihilates them and the gradient has no part there
    N = torch.linalg.svd(torch.eye(sub.n, dtype=torch.float64) - B @ B.T).U[:, : sub.n_null]
    assert float((H @ N).abs().max()) < 1e-12
    n_per = 5 * 3  # first-layer weights are the first 15 parameters, inputs 3, 4 of each row
    assert float(H[:n_per].reshape(3, 5, -1)[:, 3:].abs().max()) == 0.0
    # the returned point is a permutation point of the input net's shape
    assert [p.shape for p in pp.model.parameters()] == [p.shape for p in net.parameters()]


def test_critical_point_search_reports_failure_instead_of_hiding_it():
    X, y = _toy()
    student = ng.mlp([2, 3, 1], "softplus", bias=False, dtype=torch.float64, seed=4)
    nothing = ng.CriticalPointSearch(lbfgs_steps=0, trust_steps=0, newton_steps=0, restarts=0)
    crit = ng.symmetry.find_critical_point(student, X, y, loss="sse", search=nothing)
    assert not crit.converged and crit.grad_norm > 1e-8
    done = ng.symmetry.find_critical_point(
        student, X, y, loss="sse", search=ng.CriticalPointSearch(lbfgs_steps=20)
    )
    assert done.converged and done.grad_norm < 1e-8
    assert done.n_data_null == 0  # 2-D inputs on a grid: [X] has full rank


def test_frozen_parameters_are_not_in_the_flat_vector_and_directions_fit_the_hessian():
    g = torch.Generator().manual_seed(1)
    X = _x(3, n=30)
    y = torch.randn(30, 2, generator=g, dtype=torch.float64)
    net = ng.mlp([3, 4, 4, 2], "relu", dtype=torch.float64, seed=2)
    point = embed_merged(merge_neurons(net, 1, 0, 2), 1, 0, 2, lam=0.3)  # a permutation point
    point[0].weight.requires_grad_(False)
    point[0].bias.requires_grad_(False)
    n = sum(p.numel() for p in point.parameters() if p.requires_grad)
    H = ng.hessian(point, X, y)
    assert H.shape == (n, n) and flatten_parameters(point).shape == (n,)
    assert torch.allclose(H, autograd_hessian(point, X, y), atol=1e-12)
    # rescaling hidden layer 0 would move the frozen first layer: only layer 1's 4 directions,
    # each leaving the function unchanged to first order
    R = rescaling_directions(point)
    assert R.shape == (n, 4)
    layout = Layout.of(point)

    def out(t):
        return functional_call(point, layout.split(t), (X,))

    theta = flatten_parameters(point)
    for c in range(R.shape[1]):
        assert torch.func.jvp(out, (theta,), (R[:, c],))[1].abs().max() < 1e-12
    assert ng.hessian_eigenvalues(point, X, y, project="rescaling").shape == (n - 4,)
    # the flat directions of the permutation point: the loss is constant along each
    D = flat_directions(point, 1, 0, 2)
    assert D.shape == (n, 2)
    assert float((D.T @ H @ D).abs().max()) <= 1e-12 * float(H.abs().max())
    # the search moves the trainable parameters only
    fast = ng.CriticalPointSearch(lbfgs_steps=3, trust_steps=3, newton_steps=2, restarts=0)
    pp = ng.find_permutation_saddle(point, X, y, 1, 0, 2, search=fast)
    assert pp.eigenvalues.shape == (n,) and pp.n_parameters == n
    assert torch.equal(pp.model[0].weight, point[0].weight)
    assert not pp.model[0].weight.requires_grad and pp.model[2].weight.requires_grad
