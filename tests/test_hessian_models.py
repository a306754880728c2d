"""Hessian analyses on models that are not MLPs: small conv nets (pooling, residual blocks,
batch norm in eval mode) on image-shaped X, checked against the autograd oracle of
tests/_oracles.py; the model is never modified; bad inputs get nngeom errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import nngeom as ng
from _oracles import autograd_hessian
from nngeom._random import rademacher
from nngeom.hessian import (
    HessianOperator,
    hessian,
    hessian_eigenvalues,
    lanczos,
    spectral_density,
)

pytestmark = pytest.mark.usefixtures("one_thread")

F64 = torch.float64


class Residual(nn.Module):
    """``x + conv2(tanh(conv1(x)))`` (same channels and size)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(torch.tanh(self.conv1(x)))


def build(make, seed: int = 0) -> nn.Module:
    """``make()`` built without initialising (the global RNG is untouched), in float64, with
    parameters and buffers drawn from a generator seeded by ``seed``."""
    with torch.device("meta"):
        net = make()
    net = net.to_empty(device="cpu").to(F64)
    gen = torch.Generator().manual_seed(seed)

    def draw(t, scale=1.0, shift=0.0, uniform=False):
        r = torch.rand if uniform else torch.randn
        t.copy_(r(t.shape, generator=gen, dtype=F64) * scale + shift)

    with torch.no_grad():
        for mod in net.modules():
            own = dict(mod.named_parameters(recurse=False))
            if isinstance(mod, (nn.modules.batchnorm._BatchNorm, nn.InstanceNorm2d)):
                if "weight" in own:
                    draw(own.pop("weight"), 1.0, 0.5, uniform=True)
                if mod.running_mean is not None:
                    draw(mod.running_mean)
                    draw(mod.running_var, 1.0, 0.5, uniform=True)
                    mod.num_batches_tracked.fill_(7)
            elif isinstance(mod, (nn.Conv2d, nn.Linear)):
                draw(own.pop("weight"), mod.weight[0].numel() ** -0.5)
            for t in own.values():
                draw(t, 0.3)
            for name, b in mod.named_buffers(recurse=False):
                if name not in ("running_mean", "running_var", "num_batches_tracked"):
                    b.zero_()
    return net


def conv_net(kind: str, seed: int = 0, outputs: int = 3) -> nn.Module:
    """Small float64 conv nets on (N, 1, 6, 6) images, in eval mode."""
    return build(lambda: _conv_layers(kind, outputs), seed).eval()


def _conv_layers(kind: str, outputs: int) -> nn.Module:
    if kind == "tanh-avgpool":
        layers = [
            nn.Conv2d(1, 2, 3),
            nn.Tanh(),
            nn.AvgPool2d(2),
            nn.Flatten(),
            nn.Linear(8, outputs),
        ]
    elif kind == "relu-maxpool":
        layers = [
            nn.Conv2d(1, 2, 3),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(8, outputs),
        ]
    elif kind == "residual":
        layers = [
            nn.Conv2d(1, 2, 3),
            nn.Tanh(),
            Residual(2),
            nn.AvgPool2d(2),
            nn.Flatten(),
            nn.Linear(8, outputs),
        ]
    elif kind == "bn-eval":
        layers = [
            nn.Conv2d(1, 2, 3),
            nn.BatchNorm2d(2),
            nn.Tanh(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(8, outputs),
        ]
    else:
        raise AssertionError(kind)
    return nn.Sequential(*layers)


def _randn(*shape: int) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(sum(shape)), dtype=F64)


def _images(n=12, seed=0, outputs=3, labels=False):
    g = torch.Generator().manual_seed(seed + 100)
    X = torch.randn(n, 1, 6, 6, generator=g, dtype=F64)
    if labels:
        y = torch.arange(n) % outputs  # every class present
    else:
        y = torch.randn(n, outputs, generator=g, dtype=F64)
    return X, y


def _state(net: nn.Module) -> dict[str, torch.Tensor]:
    return {k: t.detach().clone() for k, t in net.state_dict(keep_vars=True).items()}


def _same_state(net: nn.Module, before: dict[str, torch.Tensor]) -> bool:
    now = net.state_dict(keep_vars=True)
    return now.keys() == before.keys() and all(
        now[k].dtype == before[k].dtype and torch.equal(now[k].detach(), before[k]) for k in now
    )


KINDS = ["tanh-avgpool", "relu-maxpool", "residual", "bn-eval"]


@pytest.mark.parametrize("loss", ["mse", "ce"])
@pytest.mark.parametrize("kind", KINDS)
def test_full_hessian_of_conv_nets_equals_autograd(kind, loss):
    net = conv_net(kind, seed=1)
    X, y = _images(labels=loss == "ce")
    before = _state(net)
    ref = autograd_hessian(net, X, y, loss)
    H = hessian(net, X, y, loss=loss)
    assert H.shape == ref.shape == (sum(p.numel() for p in net.parameters()),) * 2
    assert torch.allclose(H, ref, rtol=1e-10, atol=1e-12)
    # data in chunks (mean losses weighted by chunk size) give the same Hessian
    assert torch.allclose(hessian(net, X, y, loss=loss, chunk_size=5), ref, rtol=1e-10, atol=1e-12)
    # both Hessian-vector product methods
    v = torch.randn(ref.shape[0], generator=torch.Generator().manual_seed(2), dtype=F64)
    for method in ("func", "autograd"):
        op = HessianOperator(net, X, y, loss=loss, method=method)
        assert torch.allclose(op.matvec(v), ref @ v, rtol=1e-10, atol=1e-12)
    assert _same_state(net, before)


@pytest.mark.parametrize("kind", KINDS)
def test_lanczos_top_k_and_full_spectrum_match_the_oracle(kind):
    net = conv_net(kind, seed=2)
    X, y = _images(n=16, labels=True)
    ev = np.linalg.eigvalsh(autograd_hessian(net, X, y, "ce").numpy())
    scale = np.abs(ev).max()
    assert np.allclose(hessian_eigenvalues(net, X, y, loss="ce"), ev, atol=1e-11 * scale)
    top = hessian_eigenvalues(net, X, y, loss="ce", k=4, tol=1e-10)
    assert np.allclose(top, ev[-4:], atol=1e-8 * scale)
    both = hessian_eigenvalues(net, X, y, loss="ce", k=2, which="both", tol=1e-10)
    assert np.allclose(both, np.concatenate([ev[:2], ev[-2:]]), atol=1e-8 * scale)


def test_spectral_density_of_a_conv_net():
    net = conv_net("bn-eval", seed=3)
    X, y = _images(n=16)
    before = _state(net)
    H = autograd_hessian(net, X, y, "mse")
    op = HessianOperator(net, X, y, loss="mse")
    n = op.n
    sd = spectral_density(op.matvec, n, n_probes=3, steps=n, seed=4)
    assert np.allclose(sd.weights.sum(axis=1), 1.0)
    # each probe's quadrature reproduces its Rayleigh quotient v^T H v / n exactly
    gen = torch.Generator().manual_seed(4)
    for p in range(3):
        v = rademacher((n,), gen, dtype=torch.float64)
        assert np.isclose((sd.weights[p] * sd.nodes[p]).sum(), float(v @ H @ v) / n, atol=1e-10)
    ev = np.linalg.eigvalsh(H.numpy())
    pad = 0.1 * (ev[-1] - ev[0]) + 1e-3
    grid = np.linspace(ev[0] - pad, ev[-1] + pad, 4001)
    sigma = (ev[-1] - ev[0]) / 200 + 1e-6
    assert np.isclose(np.trapezoid(sd.density(grid, sigma), grid), 1.0, atol=1e-3)
    assert _same_state(net, before)


@settings(max_examples=6)
@given(
    channels=st.integers(1, 3),
    kernel=st.integers(2, 3),
    pool=st.sampled_from(["avg", "max", "none"]),
    act=st.sampled_from([nn.Tanh, nn.Softplus, nn.ReLU]),
    loss=st.sampled_from(["mse", "ce"]),
    seed=st.integers(0, 1000),
)
def test_random_conv_nets_match_autograd(channels, kernel, pool, act, loss, seed):
    side = 6 - kernel + 1
    if pool != "none":
        side //= 2

    def make():
        layers = [nn.Conv2d(1, channels, kernel), act()]
        if pool != "none":
            layers.append((nn.AvgPool2d if pool == "avg" else nn.MaxPool2d)(2))
        return nn.Sequential(*layers, nn.Flatten(), nn.Linear(channels * side * side, 2))

    net = build(make, seed)
    X, y = _images(n=8, seed=seed, outputs=2, labels=loss == "ce")
    assert torch.allclose(
        hessian(net, X, y, loss=loss), autograd_hessian(net, X, y, loss), rtol=1e-10, atol=1e-12
    )


def test_buffers_are_never_modified():
    net = conv_net("bn-eval", seed=5)
    X, y = _images(n=10, labels=True)
    before = _state(net)
    op = HessianOperator(net, X, y, loss="ce", chunk_size=4)
    op.loss()
    op.gradient()
    op.matvec(torch.ones(op.n, dtype=F64))
    op.full()
    HessianOperator(net, X, y, loss="ce", method="autograd").matvec(torch.ones(op.n, dtype=F64))
    hessian_eigenvalues(net, X, y, loss="ce", k=2)
    lanczos(op.matvec, op.n, 2)
    assert _same_state(net, before)
    assert int(net[1].num_batches_tracked) == 7
    assert not net.training


class _Counter(nn.Module):
    """Updates a buffer on every forward pass (a stateful model the Hessian cannot be of)."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(3, 2)
        self.register_buffer("calls", torch.zeros((), dtype=torch.long))

    def forward(self, x):
        self.calls += 1
        return self.lin(x)


def test_a_model_that_changes_its_buffers_is_refused_and_restored():
    net = build(_Counter)
    with pytest.raises(ng.InvalidModel, match="calls"):
        hessian(net, _randn(5, 3), _randn(5, 2))
    assert int(net.calls) == 0


def test_train_mode_layers_that_are_deterministic_are_accepted():
    # dropout with p = 0 and instance norm without running statistics do not depend on the mode
    net = build(
        lambda: nn.Sequential(
            nn.Conv2d(1, 2, 3),
            nn.InstanceNorm2d(2, affine=True),
            nn.Dropout(0.0),
            nn.Tanh(),
            nn.Flatten(),
            nn.Linear(32, 3),
        )
    )
    assert net.training
    X, y = _images(n=6, labels=True)
    assert torch.allclose(
        hessian(net, X, y, loss="ce"), autograd_hessian(net, X, y, "ce"), rtol=1e-10
    )


def test_one_dimensional_outputs_and_int32_labels():
    net = build(lambda: nn.Sequential(nn.Flatten(), nn.Linear(36, 1), nn.Flatten(0)))  # (N,)
    X, _ = _images(n=7)
    y = _randn(7)
    assert torch.allclose(
        hessian(net, X, y, loss="mse"), autograd_hessian(net, X, y, "mse"), rtol=1e-10
    )
    net3 = conv_net("tanh-avgpool")
    X, y = _images(n=9, labels=True)
    assert torch.equal(hessian(net3, X, y.int(), loss="ce"), hessian(net3, X, y, loss="ce"))


def test_dropout_in_eval_mode_is_the_net_without_it():
    without = conv_net("tanh-avgpool")
    with_dropout = nn.Sequential(*without[:4], nn.Dropout(0.5), without[4]).eval()
    X, y = _images(n=8, labels=True)
    H1 = hessian(with_dropout, X, y, loss="ce")
    assert torch.equal(H1, hessian(with_dropout, X, y, loss="ce"))
    assert torch.allclose(H1, hessian(without, X, y, loss="ce"), rtol=1e-12, atol=1e-14)


# ---------------------------------------------------------------------------------------------
# bad input: nngeom errors, never raw exceptions


def test_conv_net_with_wrong_X_shape():
    net = conv_net("relu-maxpool")
    _, y = _images(labels=True)
    with pytest.raises(ng.InvalidInput, match=r"could not be evaluated on X of shape \(12, 36\)"):
        hessian(net, _randn(12, 36), y, loss="ce")
    with pytest.raises(ng.InvalidInput, match=r"in_channels=1.*\(N, 1, H, W\)"):
        hessian_eigenvalues(net, _randn(12, 3, 6, 6), y, loss="ce", k=2)
    with pytest.raises(ng.InvalidInput, match="could not be evaluated"):
        HessianOperator(net, _randn(12, 1, 9, 9), y, loss="ce")


def test_integer_targets_with_mse():
    net = conv_net("tanh-avgpool")
    X, y = _images(labels=True)
    with pytest.raises(ng.InvalidInput, match=r"integers.*loss='ce'.*one_hot\(y, 3\)\.double\(\)"):
        hessian(net, X, y, loss="mse")
    with pytest.raises(ng.InvalidInput, match="integers"):
        hessian(net, X, y, loss="sse")


def test_target_shape_with_mse():
    net = conv_net("tanh-avgpool", outputs=1)
    X, y = _images(outputs=1)
    with pytest.raises(ng.InvalidInput, match=r"reshape\(-1, 1\)"):
        hessian(net, X, y[:, 0], loss="mse")
    with pytest.raises(ng.InvalidInput, match=r"output has shape \(N, 3\)"):
        hessian(conv_net("tanh-avgpool"), X, y, loss="mse")


def test_out_of_range_class_labels():
    net = conv_net("tanh-avgpool")
    X, y = _images(labels=True)
    with pytest.raises(ng.InvalidInput, match=r"\[0, 2\].*\[1, 3\]"):
        hessian(net, X, y + 1, loss="ce")
    with pytest.raises(ng.InvalidInput, match=r"\[0, 2\].*\[-1, 1\]"):
        hessian_eigenvalues(net, X, y - 1, loss="ce", k=1)
    with pytest.raises(ng.InvalidInput, match="labels of shape"):
        hessian(net, X, torch.zeros(12, 3, dtype=torch.long), loss="ce")


def test_cross_entropy_of_one_output():
    net = conv_net("tanh-avgpool", outputs=1)
    X, _ = _images()
    with pytest.raises(ng.InvalidInput, match="one output.*constant.*'mse'.*2 outputs"):
        hessian(net, X, torch.zeros(12, dtype=torch.long), loss="ce")


@pytest.mark.parametrize(
    ("model_dtype", "x_dtype", "hint"),
    [
        (torch.float32, F64, r"model\.double\(\) or pass X\.float\(\)"),
        (F64, torch.float32, r"model\.float\(\) or pass X\.double\(\)"),
    ],
)
def test_mixed_dtypes(model_dtype, x_dtype, hint):
    net = conv_net("tanh-avgpool").to(model_dtype)
    X, y = _images(labels=True)
    with pytest.raises(ng.InvalidInput, match=hint):
        hessian(net, X.to(x_dtype), y, loss="ce")
    with pytest.raises(ng.InvalidInput, match=str(x_dtype)):
        HessianOperator(net, X.to(x_dtype), y, loss="ce")


def test_float_targets_of_another_dtype():
    net = conv_net("tanh-avgpool")
    X, y = _images()
    with pytest.raises(ng.InvalidInput, match=r"y is torch.float32.*y\.double\(\)"):
        hessian(net, X, y.float(), loss="mse")


def test_train_mode_dropout():
    net = build(
        lambda: nn.Sequential(
            nn.Conv2d(1, 2, 3), nn.Tanh(), nn.Flatten(), nn.Dropout(0.3), nn.Linear(32, 3)
        )
    )
    X, y = _images(labels=True)
    with pytest.raises(ng.InvalidModel, match=r"'3' \(Dropout\).*training mode.*model\.eval\(\)"):
        hessian(net, X, y, loss="ce")
    with pytest.raises(ng.InvalidModel, match="Dropout"):
        HessianOperator(net, X, y, loss="ce")


def test_train_mode_batch_norm():
    net = conv_net("bn-eval").train()
    X, y = _images(labels=True)
    before = _state(net)
    with pytest.raises(ng.InvalidModel, match=r"'1' \(BatchNorm2d\).*model\.eval\(\)"):
        hessian_eigenvalues(net, X, y, loss="ce", k=2)
    assert _same_state(net, before)  # refused before anything ran
    nested = build(
        lambda: nn.Sequential(
            nn.Sequential(nn.Conv2d(1, 2, 3), nn.InstanceNorm2d(2, track_running_stats=True))
        )
    )
    with pytest.raises(ng.InvalidModel, match=r"'0\.1' \(InstanceNorm2d\)"):
        hessian(nested, X, _randn(12, 2, 4, 4))


def test_the_tests_leave_the_global_rng_alone():
    state = torch.random.get_rng_state()
    net = conv_net("bn-eval", seed=9)
    hessian_eigenvalues(net, *_images(n=6, labels=True), loss="ce", k=2)
    assert torch.equal(torch.random.get_rng_state(), state)


def test_bad_model_outputs_and_losses():
    X, y = _images(labels=True)
    with pytest.raises(ng.UnsupportedModel, match="returned a tuple"):
        hessian(build(lambda: nn.LSTM(6, 3, batch_first=True)), X[:, 0], y, loss="ce")
    net = conv_net("tanh-avgpool")
    with pytest.raises(ng.InvalidInput, match="scalar"):
        hessian(net, X, y, loss=lambda f, t: nn.functional.cross_entropy(f, t, reduction="none"))
    with pytest.raises(ng.InvalidInput, match="loss could not be computed"):
        hessian(net, X, y, loss=lambda f, t: f @ t)
    with pytest.raises(ng.InvalidInput, match=r"\(N, \.\.\.\)"):
        hessian(net, _randn(12), y, loss="ce")


@pytest.mark.parametrize("train_mode", [False, True])
def test_batchnorm_without_running_statistics_is_refused(train_mode):
    """Batch statistics couple the examples: a chunk's loss is not part of the whole's, so the
    Hessian would depend on chunk_size; refused in eval mode as in training mode."""
    net = nn.Sequential(
        nn.Linear(3, 4), nn.BatchNorm1d(4, track_running_stats=False), nn.ReLU(), nn.Linear(4, 1)
    ).double()
    net.train(train_mode)
    X = torch.randn(8, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    y = torch.zeros(8, 1, dtype=torch.float64)
    with pytest.raises(ng.InvalidModel, match="statistics of the batch"):
        ng.hessian(net, X, y)
