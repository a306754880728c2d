"""Bad arguments to nets / train / hessian / symmetry: every one gets an nngeom error that says
what was wrong, and training never commits a non-finite step."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import nngeom as ng
from nngeom import nets
from nngeom.hessian import (
    HessianOperator,
    count_eigenvalues,
    eigvalsh,
    hessian,
    hessian_eigenvalues,
    lanczos,
    spectral_density,
)
from nngeom.symmetry import (
    bezier_path,
    embed_merged,
    find_critical_point,
    linear_path_losses,
    match_weights,
    merge_pairs,
    path_losses,
    permute_all,
    split_neuron,
)

pytestmark = pytest.mark.usefixtures("one_thread")


def _data(dtype=torch.float32, n=6):
    g = torch.Generator().manual_seed(0)
    return torch.randn(n, 3, generator=g, dtype=dtype), torch.randn(n, 2, generator=g, dtype=dtype)


def _net(sizes=(3, 4, 2), dtype=torch.float32, act="relu"):
    return ng.mlp(list(sizes), act, seed=0, dtype=dtype)


def _huge(dtype=torch.float64, value=1e300):
    net = _net(dtype=dtype)
    with torch.no_grad():
        net[0].weight.fill_(value)
    return net


X, Y = _data()
X64, Y64 = _data(torch.float64)
LABELS = torch.tensor([0, 1, 0, 1, 1, 0])
DIAG = torch.diag(torch.arange(10.0, dtype=torch.float64))
FAST = dict(search=ng.CriticalPointSearch(lbfgs_steps=1, newton_steps=1, trust_steps=1, restarts=0))


# ------------------------------------------------------------------------------------------
# train: NaN targets, non-finite steps


def test_nan_targets_are_refused_and_the_weights_are_untouched():
    net = _net()
    before = [p.detach().clone() for p in net.parameters()]
    y = Y.clone()
    y[2, 1] = float("nan")
    with pytest.raises(ng.InvalidInput, match="y contains NaN"):
        ng.train(net, X, y, epochs=3)
    assert all(torch.equal(a, b) for a, b in zip(before, net.parameters()))


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "lbfgs"])
def test_a_diverging_run_keeps_the_last_finite_weights_and_says_so(optimizer):
    net = _net()
    lr = 1e10 if optimizer != "lbfgs" else 1e30
    res = ng.train(net, X, Y * 1e15, epochs=30, lr=lr, optimizer=optimizer)
    assert all(bool(torch.isfinite(p).all()) for p in net.parameters())
    if not res.finite:  # divergence met: flagged, with the reason, the last loss not finite
        assert "non-finite" in res.stopped_reason and "last finite weights" in res.stopped_reason
        assert not np.isfinite(res.final_loss) and all(np.isfinite(res.losses[:-1]))
    else:
        assert all(np.isfinite(res.losses))


def test_sgd_divergence_is_flagged():
    net = _net()
    res = ng.train(net, X, Y * 1e15, epochs=30, lr=1e10, optimizer="sgd")
    assert res.finite is False and res.steps < 30
    assert all(bool(torch.isfinite(p).all()) for p in net.parameters())


def test_a_model_whose_loss_overflows_at_the_start_is_left_unchanged():
    net = _huge(torch.float32, 1e30)
    before = [p.detach().clone() for p in net.parameters()]
    res = ng.train(net, X, Y, epochs=2, optimizer="sgd")
    assert res.finite is False and res.steps == 0 and not np.isfinite(res.final_loss)
    assert all(torch.equal(a, b) for a, b in zip(before, net.parameters()))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(y=torch.tensor([0, 5, 0, 1, 1, 0]), loss="ce"), "class labels must lie"),
        (dict(y=torch.tensor([0, -1, 0, 1, 1, 0]), loss="ce"), "class labels must lie"),
        (dict(y=LABELS, loss="mse"), "integers"),
        (dict(y=torch.randn(6, 3)), "shape"),
        (dict(y=Y.to(torch.complex64)), "complex"),
        (dict(y=torch.empty(6, 2, device="meta")), "meta"),
        (dict(y=Y64), "float64"),
        (dict(X=X64, y=Y64), "float32.*float64|float64.*float32"),
        (dict(X=X.to(torch.complex64)), "complex"),
        (dict(X=torch.empty(6, 3, device="meta")), "meta"),
        (dict(X=torch.randn(6, 5)), "could not be evaluated"),
        (dict(y=Y[:5]), "examples"),
        (dict(y=torch.tensor(1.0)), "scalar"),
        (dict(X=X.numpy()), "torch tensors"),
        (dict(batch_size=0), "batch_size"),
        (dict(epochs=-1), "epochs"),
        (dict(epochs=1.5), "epochs"),
        (dict(lr="a"), "lr"),
        (dict(lr=0), "lr"),
        (dict(weight_decay=float("nan")), "weight_decay"),
        (dict(seed="abc"), "seed"),
        (dict(seed=2**64), "seed"),
        (dict(seed=-1), "seed"),
        (dict(seed=None), "seed"),
        (dict(optimizer=None), "optimizer"),
        (dict(callback=5), "callback"),
        (dict(param_groups=[5]), "param_groups"),
        (dict(loss=None), "loss"),
        (dict(loss=lambda f, y: (f - y) ** 2), "scalar"),
    ],
)
def test_train_refuses_bad_arguments(kwargs, match):
    args = dict(model=_net(), X=X, y=Y, epochs=1)
    args.update(kwargs)
    m, x, y = args.pop("model"), args.pop("X"), args.pop("y")
    with pytest.raises(ng.NngeomError, match=match):
        ng.train(m, x, y, **args)


def test_train_refuses_bad_models():
    with pytest.raises(ng.InvalidModel, match="complex"):
        ng.train(nn.Sequential(nn.Linear(3, 2, dtype=torch.complex64)), X, Y)
    with pytest.raises(ng.InvalidModel, match="meta"):
        ng.train(nn.Sequential(nn.Linear(3, 2, device="meta")), X, Y)
    with pytest.raises(ng.InvalidModel, match="NaN"):
        ng.train(
            ng.mlp([3, 2]).apply(
                lambda m: m.weight.data.fill_(float("nan")) if isinstance(m, nn.Linear) else None
            ),
            X,
            Y,
        )
    with pytest.raises(ng.UnsupportedModel):
        ng.train(5, X, Y)


def test_train_seed_accepts_the_whole_range():
    ng.train(_net(), X, Y, epochs=1, batch_size=2, seed=2**64 - 1)
    ng.train(_net(), X, Y, epochs=1, batch_size=2, seed=np.int64(3))


def test_an_optimizer_step_that_overflows_is_an_nngeom_error():
    net = _net()
    with pytest.raises(ng.NngeomError):
        r = ng.train(net, X, Y, epochs=2, lr=1e300)
        assert r.finite is False  # either refused or flagged, never silent
        raise ng.InvalidInput("flagged")
    assert all(bool(torch.isfinite(p).all()) for p in net.parameters())


# ------------------------------------------------------------------------------------------
# mlp / as_mlp


def test_mlp_checks_its_size_from_the_declared_shapes():
    with pytest.raises(ng.InvalidInput, match="limit of 1,000,000,000"):
        ng.mlp([40_000, 40_000])  # 1.6e9 parameters: refused before any allocation


def test_mlp_blockwise_initialisation_equals_one_draw(monkeypatch):
    monkeypatch.setattr(nets, "_INIT_BLOCK_ENTRIES", 7)  # several blocks per layer
    net = ng.mlp([5, 6, 3], seed=11, dtype=torch.float32)
    g = torch.Generator().manual_seed(11)
    for lin in (net[0], net[2]):
        b = 1.0 / lin.in_features**0.5
        w = torch.empty(lin.out_features, lin.in_features, dtype=torch.float64)
        w = w.uniform_(-b, b, generator=g)
        bias = torch.empty(lin.out_features, dtype=torch.float64).uniform_(-b, b, generator=g)
        assert torch.equal(lin.weight, w.float()) and torch.equal(lin.bias, bias.float())


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(sizes=[3, 0, 2]), "sizes"),
        (dict(sizes=[3, 2.0]), "sizes"),
        (dict(sizes=None), "sizes"),
        (dict(sizes="ab"), "sizes"),
        (dict(sizes=[3]), "at least"),
        (dict(seed="abc"), "seed"),
        (dict(seed=2**64), "seed"),
        (dict(seed=-1), "seed"),
        (dict(seed=None), "seed"),
        (dict(device="meta"), "meta"),
        (dict(device="xyz"), "device"),
        (dict(dtype=torch.int64), "dtype"),
        (dict(dtype=torch.complex64), "dtype"),
        (dict(dtype="float32"), "dtype"),
        (dict(generator=5), "generator"),
        (dict(bias="no"), "bias"),
        (dict(activation="xyz"), "activation"),
    ],
)
def test_mlp_refuses_bad_arguments(kwargs, match):
    args = dict(sizes=[3, 4, 2])
    args.update(kwargs)
    with pytest.raises(ng.InvalidInput, match=match):
        ng.mlp(**args)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_mlp_on_unavailable_cuda():
    with pytest.raises(ng.InvalidInput, match="CUDA"):
        ng.mlp([3, 2], device="cuda")


def test_mlp_seed_range_and_numpy_sizes():
    ng.mlp([3, np.int64(4), 2], seed=2**64 - 1)


def test_as_mlp_refuses_complex_meta_and_zero_width_models():
    with pytest.raises(ng.InvalidModel, match="complex"):
        ng.as_mlp(nn.Sequential(nn.Linear(3, 2, dtype=torch.complex64)))
    with pytest.raises(ng.InvalidModel, match="meta"):
        ng.as_mlp(nn.Sequential(nn.Linear(3, 4, device="meta"), nn.ReLU(), nn.Linear(4, 2)))
    with pytest.warns(UserWarning):  # torch warns about initialising an empty tensor
        zero = nn.Sequential(nn.Linear(3, 0), nn.ReLU(), nn.Linear(0, 2))
    with pytest.raises(ng.InvalidModel, match="zero width"):
        ng.as_mlp(zero)


def test_mlp_view_forward_checks_its_input():
    view = ng.as_mlp(_net())
    with pytest.raises(ng.InvalidInput, match="float64"):
        view.forward(X64)
    with pytest.raises(ng.InvalidInput, match=r"\(N, 3\)"):
        view.patterns(torch.randn(6, 5))
    with pytest.raises(ng.InvalidInput):
        view(X.numpy())


def test_piecewise_linear_form_width():
    with pytest.raises(ng.InvalidInput, match="width"):
        nets.piecewise_linear_form(nn.ReLU(), -1)
    with pytest.raises(ng.InvalidInput, match="width"):
        nets.piecewise_linear_form(nn.ReLU(), 10**12)


# ------------------------------------------------------------------------------------------
# hessian


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda: hessian(_net(), X64, Y64), ng.InvalidInput, "float64.*float32"),
        (lambda: hessian(_net(), X.to(torch.complex64), Y), ng.InvalidInput, "complex"),
        (lambda: hessian(_net(), torch.empty(6, 3, device="meta"), Y), ng.InvalidInput, "meta"),
        (lambda: hessian(_net(), X, Y.to(torch.complex64)), ng.InvalidInput, "complex"),
        (
            lambda: hessian(_net(), X, torch.tensor([0, 9, 0, 1, 1, 0]), loss="ce"),
            ng.InvalidInput,
            "class labels",
        ),
        (lambda: hessian(_net(), X, Y, chunk_size=0), ng.InvalidInput, "chunk_size"),
        (lambda: hessian(_net(), X, Y, chunk_size="a"), ng.InvalidInput, "chunk_size"),
        (lambda: hessian(_huge(), X64, Y64), ng.InvalidModel, "overflow"),
        (
            lambda: hessian(nn.Sequential(nn.Linear(3, 2, dtype=torch.complex64)), X, Y),
            ng.InvalidModel,
            "complex",
        ),
        (lambda: hessian_eigenvalues(_net(), X, Y, k=0), ng.InvalidInput, "k"),
        (lambda: hessian_eigenvalues(_net(), X, Y, k=2.5), ng.InvalidInput, "k"),
        (lambda: hessian_eigenvalues(_net(), X, Y, k=2, seed="abc"), ng.InvalidInput, "seed"),
        (lambda: hessian_eigenvalues(_net(), X, Y, k=2, seed=2**64), ng.InvalidInput, "seed"),
        (lambda: hessian_eigenvalues(_net(), X, Y, k=2, which=5), ng.InvalidInput, "which"),
        (lambda: hessian_eigenvalues(_net(), X, Y, k=2, tol=float("nan")), ng.InvalidInput, "tol"),
        (lambda: hessian_eigenvalues(_net(), X, Y, k=2, max_iter=0), ng.InvalidInput, "max_iter"),
        (
            lambda: hessian_eigenvalues(_net(), X, Y, project=torch.full((26, 1), float("nan"))),
            ng.InvalidInput,
            "NaN",
        ),
        (lambda: hessian_eigenvalues(_net(), X, Y, project=5), ng.InvalidInput, "project"),
        (lambda: HessianOperator(_net(), X, Y, method=5), ng.InvalidInput, "method"),
    ],
)
def test_hessian_refuses_bad_arguments(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_hessian_operator_methods_check_their_arguments():
    op = HessianOperator(_net(), X, Y)
    for bad in (
        torch.ones(3),
        np.ones(op.n),
        torch.ones(op.n, dtype=torch.complex64),
        torch.empty(op.n, device="meta"),
        torch.full((op.n,), float("nan")),
    ):
        with pytest.raises(ng.InvalidInput):
            op.matvec(bad)
        with pytest.raises(ng.InvalidInput):
            op.gradient(bad)
    with pytest.raises(ng.InvalidInput, match="chunk_size"):
        op.matmat(torch.eye(op.n)[:, :3], chunk_size=0)
    with pytest.raises(ng.InvalidInput, match="chunk_size"):
        op.full(chunk_size=0)
    with pytest.raises(ng.InvalidInput, match="V must be"):
        op.matmat(np.ones((2, op.n)))


def test_overflowing_hessian_products_are_refused():
    net = _net(dtype=torch.float64)
    op = HessianOperator(net, X64, Y64, method="func")
    big = op.theta.clone()
    big[:12] = 1e300
    op.theta = big
    with pytest.raises(ng.InvalidModel, match="overflow"):
        op.matvec(torch.ones(op.n, dtype=torch.float64))
    with pytest.raises(ng.InvalidModel, match="overflow"):
        op.gradient(big)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(n=0), "n"),
        (dict(n="a"), "n"),
        (dict(k=0), "k"),
        (dict(seed="abc"), "seed"),
        (dict(seed=2**64), "seed"),
        (dict(dtype=torch.int64), "dtype"),
        (dict(dtype=torch.complex128), "dtype"),
        (dict(device="meta"), "meta"),
        (dict(check_every=0), "check_every"),
        (dict(max_iter=-5), "max_iter"),
        (dict(tol=float("nan")), "tol"),
        (dict(project=torch.ones(10, 1, dtype=torch.complex64)), "complex"),
        (dict(matvec=5), "matvec"),
        (dict(matvec=lambda v: torch.ones(3, dtype=torch.float64)), "shape"),
        (dict(matvec=lambda v: v.to(torch.complex128)), "real"),
        (dict(matvec=lambda v: v * float("nan")), "NaN"),
        (dict(matvec=lambda v: (v * 1e300) * 1e300), "NaN or inf"),
        (dict(matvec=lambda v: v * 1e300), "overflow"),
        (dict(matvec=lambda v: 1 / 0), "ZeroDivisionError"),
        (dict(n=10**12), "limit"),
    ],
)
def test_lanczos_refuses_bad_arguments(kwargs, match):
    args = dict(matvec=lambda v: DIAG @ v, n=10, k=2)
    args.update(kwargs)
    with pytest.raises(ng.InvalidInput, match=match):
        lanczos(**args)


def test_lanczos_accepts_the_largest_seed():
    res = lanczos(lambda v: DIAG @ v, 10, 2, seed=2**64 - 1)
    assert np.allclose(res.eigenvalues, [8.0, 9.0])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(n=0), "n"),
        (dict(n_probes=0), "n_probes"),
        (dict(steps=0), "steps"),
        (dict(steps=2.5), "steps"),
        (dict(seed="abc"), "seed"),
        (dict(seed=-1), "seed"),
        (dict(seed=None), "seed"),
        (dict(device="meta"), "meta"),
        (dict(matvec=lambda v: v * float("nan")), "NaN"),
        (dict(n=10**12), "limit"),
    ],
)
def test_spectral_density_refuses_bad_arguments(kwargs, match):
    args = dict(matvec=lambda v: DIAG @ v, n=10)
    args.update(kwargs)
    with pytest.raises(ng.InvalidInput, match=match):
        spectral_density(**args)


def test_spectrum_helpers_refuse_bad_values():
    sd = spectral_density(lambda v: DIAG @ v, 10, n_probes=1, steps=4)
    with pytest.raises(ng.InvalidInput, match="sigma"):
        sd.density(np.linspace(0, 1, 3), 0.0)
    with pytest.raises(ng.InvalidInput, match="NaN"):
        count_eigenvalues(np.array([np.nan, 1.0]))
    with pytest.raises(ng.InvalidInput, match="real"):
        count_eigenvalues(np.array([1j, 1.0]))
    with pytest.raises(ng.InvalidInput, match="zero_tol"):
        count_eigenvalues(np.array([1.0]), zero_tol=-1)
    with pytest.raises(ng.InvalidInput, match="square"):
        eigvalsh(torch.ones(3, 2))
    with pytest.raises(ng.InvalidInput, match="NaN"):
        eigvalsh(torch.full((3, 3), float("nan")))
    with pytest.raises(ng.InvalidInput, match="complex"):
        eigvalsh(torch.eye(3, dtype=torch.complex64))


# ------------------------------------------------------------------------------------------
# symmetry


@pytest.mark.parametrize(
    "call, error, match",
    [
        (
            lambda: ng.find_permutation_saddle(_net(), X64, Y64, 0, 0, 1, **FAST),
            ng.InvalidInput,
            "float64.*float32",
        ),
        (
            lambda: ng.find_permutation_saddle(_net(), X, Y.to(torch.complex64), 0, 0, 1, **FAST),
            ng.InvalidInput,
            "complex",
        ),
        (
            lambda: ng.find_permutation_saddle(_net(), X, torch.tensor(1.0), 0, 0, 1),
            ng.InvalidInput,
            "scalar",
        ),
        (
            lambda: ng.find_permutation_saddle(_net(), X, LABELS * 7, 0, 0, 1, loss="ce", **FAST),
            ng.InvalidInput,
            "class labels",
        ),
        (
            lambda: ng.find_permutation_saddle(_net(), X, Y, 0, 0, 1, seed="abc"),
            ng.InvalidInput,
            "seed",
        ),
        (
            lambda: ng.find_permutation_saddle(_net(), X, Y, 0, 0, 1, seed=2**64),
            ng.InvalidInput,
            "seed",
        ),
        (
            lambda: ng.find_permutation_saddle(_net(), X, Y, 0, 0, 1, lam="a"),
            ng.InvalidInput,
            "lam",
        ),
        (lambda: ng.find_permutation_saddle(_net(), X, Y, 0, 0, 1, k=0), ng.InvalidInput, "k"),
        (
            lambda: ng.CriticalPointSearch(restarts="a"),
            ng.InvalidInput,
            "restarts",
        ),
        (
            lambda: ng.find_permutation_saddle(_net(), X, Y, 0, 0, 1, chunk_size=0),
            ng.InvalidInput,
            "chunk_size",
        ),
        (
            lambda: find_critical_point(_net(), X, torch.full((6, 2), float("nan"))),
            ng.InvalidInput,
            "NaN",
        ),
        (lambda: ng.CriticalPointSearch(grad_tol="a"), ng.InvalidInput, "grad_tol"),
        (lambda: ng.permute(_net(), 0, [1, 0, 2, 3.7]), ng.InvalidInput, "ints"),
        (lambda: ng.permute(_net(), 0, "abcd"), ng.InvalidInput, "ints"),
        (
            lambda: ng.permute(
                nn.Sequential(
                    nn.Linear(3, 4, dtype=torch.complex64),
                    nn.ReLU(),
                    nn.Linear(4, 2, dtype=torch.complex64),
                ),
                0,
                [1, 0, 2, 3],
            ),
            ng.InvalidModel,
            "complex",
        ),
        (lambda: permute_all(_net(), None), ng.InvalidInput, "perms"),
        (lambda: permute_all(_net(), 5), ng.InvalidInput, "perms"),
        (lambda: merge_pairs(_net(), [5]), ng.InvalidInput, "layer, i, j"),
        (lambda: merge_pairs(_net(), None), ng.InvalidInput, "merges"),
        (lambda: embed_merged(_net(), 0, "a", 1), ng.InvalidInput, "two different"),
        (lambda: split_neuron(_net(), 0, 0, lam="a"), ng.InvalidInput, "lam"),
        (lambda: split_neuron(_net(), 0, 0, position="a"), ng.InvalidInput, "position"),
        (lambda: split_neuron(_net(), 0, 0, lam=1e300), ng.InvalidInput, "overflow"),
        (lambda: match_weights(_net(), _net(), seed="abc"), ng.InvalidInput, "seed"),
        (lambda: match_weights(_net(), _net(), max_iter="a"), ng.InvalidInput, "max_iter"),
        (lambda: match_weights(_huge(), _huge()), ng.InvalidModel, "overflow"),
        (lambda: ng.count_permutation_points([3] * 2000), ng.InvalidInput, "too many"),
        (lambda: ng.count_equivalent_minima("ab"), ng.InvalidInput, "widths"),
        (lambda: ng.count_permutation_points([4, 4], order="a"), ng.InvalidInput, "order"),
        (
            lambda: linear_path_losses(
                _net(), nn.Sequential(nn.Linear(3, 2), nn.ReLU(), nn.Linear(2, 6)), X, Y
            ),
            ng.InvalidInput,
            "same parameters",
        ),
        (lambda: linear_path_losses(_net(), _net(), X, Y, steps=0), ng.InvalidInput, "steps"),
        (lambda: path_losses(_net(), X, Y, torch.ones(2, 3)), ng.InvalidInput, "params"),
        (
            lambda: path_losses(_net(), X, Y, torch.ones(2, 26, dtype=torch.float64)),
            ng.InvalidInput,
            "float64",
        ),
        (
            lambda: path_losses(
                _net(dtype=torch.float64), X64, Y64, torch.full((1, 26), 1e300, dtype=torch.float64)
            ),
            ng.InvalidModel,
            "overflow",
        ),
        (lambda: bezier_path(_net(), _net(), X, Y, epochs=1, seed=2**64), ng.InvalidInput, "seed"),
        (lambda: bezier_path(_net(), _net(), X, Y, samples=0), ng.InvalidInput, "samples"),
        (lambda: bezier_path(_net(), _net(), X, Y, epochs=3, lr=1e30), ng.InvalidInput, "lower lr"),
        (
            lambda: ng.symmetry.data_null_subspace(_net(), X.to(torch.complex64)),
            ng.InvalidInput,
            "complex",
        ),
        (
            lambda: ng.symmetry.load_flat_parameters(_net(), torch.full((26,), float("nan"))),
            ng.InvalidInput,
            "finite",
        ),
        (lambda: ng.symmetry.flatten_parameters(nn.ReLU()), ng.InvalidInput, "no parameters"),
        (
            lambda: ng.symmetry.dense_hidden_layers(_net(), input_shape="abc"),
            ng.InvalidInput,
            "input_shape",
        ),
    ],
)
def test_symmetry_refuses_bad_arguments(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_symmetry_seeds_take_the_whole_range():
    assert match_weights(_net(), _net(), seed=2**64 - 1) == [[0, 1, 2, 3]]


def test_the_tests_leave_the_global_rng_alone():
    state = torch.get_rng_state()
    ng.train(_net(), X, Y, epochs=2, batch_size=2, seed=5)
    ng.mlp([3, 4, 2], seed=3)
    assert torch.equal(state, torch.get_rng_state())


def test_absurd_epochs_and_restarts_are_refused_not_run():
    import nngeom as ng

    net = ng.mlp([2, 3, 1])
    X = torch.randn(4, 2, generator=torch.Generator().manual_seed(0))
    with pytest.raises(ng.InvalidInput, match="epochs"):
        ng.train(net, X, X[:, :1], epochs=2**31)
    with pytest.raises(ng.InvalidInput, match="restarts"):
        ng.CriticalPointSearch(restarts=2**31)
    with pytest.raises(ng.InvalidInput, match="extent"):
        ng.regions_2d(net, extent=10**400)
