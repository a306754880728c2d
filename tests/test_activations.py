"""Tests of the trainable activation subnetworks (VAF) and the baselines.

Oracles: ``nn.ReLU`` (exact at init), ``vaf_reference`` differentiated by autograd (the custom
backward), finite differences (gradcheck, float64), dense sampling (piecewise form and knots).
"""

from __future__ import annotations

import io
import math
import shutil
import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import nngeom as ng
from nngeom import activations as A
from nngeom.nets import as_mlp, piecewise_linear_form

SHARES = ["layer", "channel", "neuron"]
HIDDEN = ["relu", "tanh"]


def _vaf(*args, kernel: str | None = "generic", **kwargs) -> A.VAF:
    """A VAF whose forward runs ``kernel`` whatever the input's size: the custom autograd
    Functions are the code under test (``vaf_reference``, the plain-autograd kernel small inputs
    take in production, is the oracle)."""
    v = A.VAF(*args, **kwargs)
    v.kernel = kernel
    return v


pytestmark = pytest.mark.usefixtures("one_thread")


def _perturb(v: nn.Module, seed: int, scale: float = 0.5) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in v.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g, dtype=p.dtype))


def _x(shape, seed=0, dtype=torch.float64, scale=2.0):
    g = torch.Generator().manual_seed(seed)
    return (scale * torch.randn(shape, generator=g, dtype=dtype)).requires_grad_(True)


def _reference(v: A.VAF, x: torch.Tensor) -> torch.Tensor:
    a0, a, b, c = v._broadcast(x)
    return A.vaf_reference(x, a0, a, b, c, v.hidden)


# -- exactness at initialisation ------------------------------------------------------------


@pytest.mark.parametrize(
    "share,kernel",
    [(s, k) for s in SHARES for k in ("reference", "generic")] + [("layer", "hinge")],
)
def test_relu_init_equals_relu_exactly(share, kernel):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(64, 8, 5, generator=g) * torch.logspace(-30, 30, 5)  # fp32, wide range
    x[0, 0, :3] = torch.tensor([0.0, -0.0, 1e-45])
    v = _vaf(k=3, share=share, kernel=kernel)
    xr = x.clone().requires_grad_(True)
    xv = x.clone().requires_grad_(True)
    want = torch.relu(xr)
    got = v(xv)
    assert got.dtype == torch.float32
    assert torch.equal(got, want)  # max difference 0
    gout = torch.randn(x.shape, generator=g)
    want.backward(gout)
    got.backward(gout)
    assert torch.equal(xv.grad, xr.grad)


def test_exact_tanh_init_and_fitted_inits():
    z = torch.linspace(-3, 3, 301)
    assert torch.equal(A.VAF(init="tanh", hidden="tanh")(z), torch.tanh(z))
    # least-squares fits: identity is representable exactly by ReLU units on the range
    for init, fn, tol in [
        ("identity", lambda t: t, 1e-3),
        ("tanh", torch.tanh, 0.08),
        ("gelu", nn.functional.gelu, 0.08),
    ]:
        v = A.VAF(k=3, init=init)
        err = (v(z) - fn(z)).abs().max().item()
        assert err < tol, (init, err)
    v = A.VAF(k=4, init=lambda t: t.abs(), hidden="relu", fit_range=(-2.0, 2.0))
    zz = torch.linspace(-2, 2, 101)
    assert (v(zz) - zz.abs()).abs().max().item() < 1e-3


def test_relu_init_extra_units_get_gradients():
    v = A.VAF(k=3)
    x = torch.linspace(-3, 3, 101)
    (v(x) - torch.sin(x)).pow(2).sum().backward()
    grad_a = v.theta.grad[1 : v.k + 1]  # theta = [a0, a, b, c]
    assert (grad_a[1:] != 0).all()  # the a_j = 0 units are alive


# -- gradients ------------------------------------------------------------------------------


@pytest.mark.parametrize("share", SHARES)
@pytest.mark.parametrize("hidden", HIDDEN)
def test_gradcheck_float64(share, hidden):
    v = _vaf(k=3, share=share, hidden=hidden, init="tanh", num_channels=None).double()
    x = _x((3, 4, 2), seed=2)
    v(x)  # materialise lazily
    _perturb(v, 3)
    names = [n for n, _ in v.named_parameters()]
    params = tuple(p.detach().clone().requires_grad_(True) for p in v.parameters())

    def f(xx, *ps):
        return torch.func.functional_call(v, dict(zip(names, ps)), (xx,))

    assert torch.autograd.gradcheck(f, (x, *params))


@pytest.mark.parametrize(
    "share,hidden,kernel",
    [(s, h, "generic") for s in SHARES for h in HIDDEN] + [("layer", "relu", "hinge")],
)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_custom_backward_equals_autograd(share, hidden, kernel, dtype):
    shape = 6 if share == "channel" else (6, 5)
    v = _vaf(k=4, share=share, hidden=hidden, num_channels=shape, kernel=kernel).to(dtype)
    _perturb(v, 4)
    x = _x((7, 6, 5), seed=5, dtype=dtype)
    gout = torch.randn(7, 6, 5, generator=torch.Generator().manual_seed(6), dtype=dtype)
    got = v(x)
    grads = torch.autograd.grad(got, (x, *v.parameters()), gout)
    want = _reference(v, x)
    wgrads = torch.autograd.grad(want, (x, *v.parameters()), gout)
    tol = dict(rtol=1e-4, atol=1e-4) if dtype == torch.float32 else dict(rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(got, want, **tol)
    for g1, g2 in zip(grads, wgrads):
        torch.testing.assert_close(g1, g2, **tol)


def test_fast_path_chunked_large_input():
    """More elements than two chunks: the chunked layer/ReLU kernel equals autograd's."""
    n = 2 * A.CHUNK + 4321
    v = _vaf(k=3, kernel="hinge").double()
    _perturb(v, 7)
    x = _x((n,), seed=8)
    gout = torch.randn(n, generator=torch.Generator().manual_seed(9), dtype=torch.float64)
    grads = torch.autograd.grad(v(x), (x, *v.parameters()), gout)
    wgrads = torch.autograd.grad(_reference(v, x), (x, *v.parameters()), gout)
    for g1, g2 in zip(grads, wgrads):
        torch.testing.assert_close(g1, g2, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize(
    "share,hidden", [("layer", "relu"), ("channel", "tanh"), ("neuron", "relu")]
)
def test_backward_saves_only_the_input(share, hidden):
    kernel = "hinge" if share == "layer" and hidden == "relu" else "generic"
    v = _vaf(
        k=3,
        share=share,
        hidden=hidden,
        num_channels=8 if share == "channel" else (8,),
        kernel=kernel,
    )
    x = torch.randn(32, 8, requires_grad=True)
    saved = []

    def pack(t):
        saved.append(t)
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        y = v(x)
    big = [t for t in saved if t.numel() >= x.numel()]
    assert len(big) == 1 and big[0].data_ptr() == x.data_ptr()
    assert sum(t.numel() for t in saved if t.data_ptr() != x.data_ptr()) <= 4 * 3 * 8 + 8
    y.sum().backward()


# -- property tests over random parameters ---------------------------------------------------


def _random_vaf(data, k, share="layer", width=1):
    v = _vaf(k=k, share=share, num_channels=None if share == "layer" else width).double()
    shape = (k,) if share == "layer" else (width, k)
    ints = st.integers(-3, 3)
    with torch.no_grad():
        for name in ("a", "b", "c"):
            vals = data.draw(
                st.lists(
                    ints,
                    min_size=k * (1 if share == "layer" else width),
                    max_size=k * (1 if share == "layer" else width),
                )
            )
            getattr(v, name).copy_(torch.tensor(vals, dtype=torch.float64).reshape(shape) / 2)
        v.a0.fill_(data.draw(ints) / 4)
    return v


@settings(max_examples=60)
@given(st.data(), st.integers(1, 5))
def test_piecewise_form_matches_forward(data, k):
    """Small-integer parameters give b_j = 0 units and coincident breakpoints; the form must hold."""
    width = 3
    share = data.draw(st.sampled_from(SHARES))
    v = _random_vaf(data, k, share, width)
    bp, sl, ic = piecewise_linear_form(v, width)
    assert bp.shape[0] == width and sl.shape == (width, bp.shape[1] + 1) == ic.shape
    assert (bp[:, 1:] >= bp[:, :-1]).all()
    z = torch.linspace(-8, 8, 3201, dtype=torch.float64)
    with torch.no_grad():
        fz = v(z[:, None].expand(-1, width).contiguous())
    for i in range(width):
        piece = torch.searchsorted(bp[i].contiguous(), z)
        form = sl[i][piece] * z + ic[i][piece]
        torch.testing.assert_close(form, fz[:, i], rtol=0, atol=1e-9)


@settings(max_examples=60)
@given(st.data(), st.integers(1, 5))
def test_knots_equal_dense_sampling(data, k):
    v = _random_vaf(data, k)
    kn = v.knots()
    # brute force: slope changes between consecutive cells of a fine grid whose step divides the
    # possible breakpoints (multiples of 1/6 for half-integer b, c)
    step = 1.0 / 48
    z = torch.arange(-400, 401, dtype=torch.float64) * step
    with torch.no_grad():
        f = v(z)
    slopes = torch.diff(f) / step
    change = (torch.diff(slopes).abs() > 1e-7).nonzero().flatten()
    brute = (z[change + 1]).numpy()
    inside = kn[(kn > -8.3) & (kn < 8.3)]
    np.testing.assert_allclose(np.sort(inside), brute, atol=1e-9)


@settings(max_examples=40)
@given(st.integers(0, 10_000), st.sampled_from(SHARES), st.sampled_from(HIDDEN))
def test_forward_matches_reference_random(seed, share, hidden):
    v = _vaf(
        k=3, share=share, hidden=hidden, num_channels=4 if share == "channel" else (4, 3)
    ).double()
    _perturb(v, seed, scale=1.0)
    x = _x((5, 4, 3), seed=seed + 1)
    with torch.no_grad():
        torch.testing.assert_close(v(x), _reference(v, x), rtol=1e-12, atol=1e-12)


# -- the MLP view and knots ----------------------------------------------------------------


def test_as_mlp_accepts_vaf_nets_and_sees_piecewise_linear():
    net = ng.mlp([1, 5, 4, 1], A.VAF(k=3), seed=0)
    view = as_mlp(net)
    assert view.activation == "vaf" and view.piecewise_linear
    assert view.activations[0] is not view.activations[1]  # one VAF per layer
    smooth = ng.mlp([1, 5, 1], A.VAF(hidden="tanh"), seed=0)
    assert not as_mlp(smooth).piecewise_linear
    with pytest.raises(ng.UnsupportedModel):
        piecewise_linear_form(smooth[1], 5)


def _dense_knot_count(net: nn.Module, lo: float, hi: float, n: int = 200_001) -> int:
    z = torch.linspace(lo, hi, n, dtype=torch.float64)[:, None]
    with torch.no_grad():
        f = net(z)[:, 0]
    slopes = torch.diff(f) / (z[1, 0] - z[0, 0])
    jumps = (torch.diff(slopes).abs() > 1e-6).nonzero().flatten()
    if len(jumps) == 0:
        return 0
    # consecutive flagged cells belong to one knot
    return int(1 + (torch.diff(jumps) > 1).sum())


@settings(max_examples=12)
@given(st.integers(0, 10**6), st.sampled_from(["layer", "neuron"]))
def test_knots_of_vaf_net_equal_dense_sampling(seed, share):
    """ng.knots on a (trained-looking) VAF net equals a dense-sampling count of slope changes."""
    net = ng.mlp([1, 6, 5, 1], A.VAF(k=3), seed=seed).double()
    if share == "neuron":
        net[1] = A.VAF(k=3, share="neuron", num_channels=6).double()
        net[3] = A.VAF(k=3, share="neuron", num_channels=5).double()
    for i, m in enumerate(net):
        if isinstance(m, A.VAF):
            _perturb(m, seed + i)
    got = ng.knots(net, -3.0, 3.0)
    assert got.count == _dense_knot_count(net, -3.0, 3.0)
    # and every reported knot is a real slope change of the net
    z = torch.tensor(np.asarray(got.positions, dtype=np.float64))
    h = 1e-7
    with torch.no_grad():
        f = lambda t: net(t[:, None])[:, 0]  # noqa: E731
        left = (f(z) - f(z - h)) / h
        right = (f(z + h) - f(z)) / h
    assert ((right - left).abs() > 1e-6).all()


def test_per_neuron_form_on_fully_connected_layer():
    net = nn.Sequential(
        nn.Linear(1, 4), A.VAF(k=2, share="neuron", num_channels=4), nn.Linear(4, 1)
    ).double()
    _perturb(net[1], 11)
    view = as_mlp(net)
    bp, sl, ic = piecewise_linear_form(view.activations[0], 4)
    assert bp.shape[0] == 4
    z = torch.linspace(-5, 5, 1001, dtype=torch.float64)
    with torch.no_grad():
        fz = net[1](z[:, None].expand(-1, 4).contiguous())
    for i in range(4):
        piece = torch.searchsorted(bp[i].contiguous(), z)
        torch.testing.assert_close(sl[i][piece] * z + ic[i][piece], fz[:, i], rtol=0, atol=1e-9)


# -- export --------------------------------------------------------------------------------


@pytest.mark.parametrize("share", SHARES)
@pytest.mark.parametrize("hidden", HIDDEN)
def test_export_round_trip(share, hidden):
    net = nn.Sequential(
        nn.Linear(3, 6),
        A.VAF(k=3, share=share, hidden=hidden, num_channels=6 if share == "channel" else (6,)),
        nn.Linear(6, 2),
    )
    _perturb(net[1], 12)
    x = torch.randn(17, 3, generator=torch.Generator().manual_seed(13))
    want = net(x).detach()
    plain = A.export_activations(net)
    assert isinstance(plain[1], A.VAFExport) and isinstance(net[1], A.VAF)
    torch.testing.assert_close(plain(x), want, rtol=0, atol=1e-6)
    with warnings.catch_warnings():  # TorchScript is deprecated in torch 2.13 but still works
        warnings.simplefilter("ignore", DeprecationWarning)
        traced = torch.jit.trace(plain, x)
        buf = io.BytesIO()
        torch.jit.save(traced, buf)
        buf.seek(0)
        loaded = torch.jit.load(buf)
    torch.testing.assert_close(loaded(x), want, rtol=0, atol=1e-6)
    exported = torch.export.export(plain, (x,))
    buf = io.BytesIO()
    torch.export.save(exported, buf)
    buf.seek(0)
    torch.testing.assert_close(torch.export.load(buf).module()(x), want, rtol=0, atol=1e-6)
    if hidden == "relu" and share != "channel":
        bp1, sl1, ic1 = piecewise_linear_form(net[1], 6)
        bp2, sl2, ic2 = piecewise_linear_form(plain[1], 6)
        assert torch.equal(bp1, bp2) and torch.equal(sl1, sl2) and torch.equal(ic1, ic2)


@pytest.mark.parametrize("share", SHARES)
def test_onnx_export_round_trip(share):
    ort = pytest.importorskip("onnxruntime")
    net = nn.Sequential(
        nn.Linear(3, 6),
        A.VAF(k=3, share=share, num_channels=6 if share == "channel" else (6,)),
        nn.Linear(6, 2),
    )
    _perturb(net[1], 20)
    x = torch.randn(17, 3, generator=torch.Generator().manual_seed(21))
    buf = io.BytesIO()
    with warnings.catch_warnings():  # the TorchScript-based exporter warns that it is legacy
        warnings.simplefilter("ignore")
        torch.onnx.export(
            A.export_activations(net), (x,), buf, dynamo=False,
            input_names=["x"], output_names=["y"], dynamic_axes={"x": {0: "n"}},
        )  # fmt: skip
    sess = ort.InferenceSession(buf.getvalue())
    for xx in (x, x[:5]):
        got = torch.from_numpy(sess.run(None, {"x": xx.numpy()})[0])
        torch.testing.assert_close(got, net(xx).detach(), rtol=0, atol=1e-6)


def test_export_conv_channel_sharing():
    net = nn.Sequential(nn.Conv2d(1, 4, 3), A.VAF(share="channel"), nn.Conv2d(4, 2, 3))
    x = torch.randn(2, 1, 8, 8, generator=torch.Generator().manual_seed(14))
    net(x)
    _perturb(net[1], 15)
    want = net(x).detach()
    torch.testing.assert_close(A.export_activations(net)(x), want, rtol=0, atol=1e-6)


# -- training -----------------------------------------------------------------------------


def test_param_groups_and_training():
    net = ng.mlp([2, 8, 8, 1], A.VAF(k=3), seed=0)
    groups = A.param_groups(net, weight_decay=1e-2, activation_lr=5e-3)
    vaf_ids = {id(p) for m in net if isinstance(m, A.VAF) for p in m.parameters()}
    assert {id(p) for p in groups[1]["params"]} == vaf_ids
    assert groups[1]["weight_decay"] == 0.0 and groups[1]["lr"] == 5e-3
    assert groups[0]["weight_decay"] == 1e-2 and not vaf_ids & {id(p) for p in groups[0]["params"]}
    assert len(groups[0]["params"]) + len(groups[1]["params"]) == len(list(net.parameters()))
    mixed = nn.Sequential(
        nn.Linear(2, 4), nn.PReLU(), nn.Linear(4, 4), A.Rational(), nn.Linear(4, 1)
    )
    assert len(A.param_groups(mixed)[1]["params"]) == 3
    g = torch.Generator().manual_seed(0)
    X = torch.rand(64, 2, generator=g) * 2 - 1
    y = (X[:, :1] * X[:, 1:]).abs()
    before = [p.detach().clone() for m in net if isinstance(m, A.VAF) for p in m.parameters()]
    res = ng.train(net, X, y, epochs=30, lr=1e-2, param_groups=A.param_groups(net))
    after = [p.detach() for m in net if isinstance(m, A.VAF) for p in m.parameters()]
    assert res.final_loss < res.losses[0]
    assert any(not torch.equal(b, a) for b, a in zip(before, after))


def test_deep_net_large_lr_no_nan():
    g = torch.Generator().manual_seed(0)
    X = torch.randn(128, 4, generator=g)
    y = torch.sin(X.sum(1, keepdim=True))
    for share in SHARES:
        net = ng.mlp(
            [4] + [16] * 12 + [1],
            A.VAF(k=3, share=share, num_channels=16 if share != "layer" else None),
            seed=1,
        )
        res = ng.train(
            net, X, y, epochs=8, lr=0.05, batch_size=32, param_groups=A.param_groups(net)
        )
        assert all(math.isfinite(v) for v in res.losses), share
        assert all(torch.isfinite(p).all() for p in net.parameters())


# -- baselines ----------------------------------------------------------------------------


def test_rational_baseline():
    r = A.Rational()
    assert (
        sum(p.numel() for p in r.parameters())
        == 10
        == sum(p.numel() for p in A.VAF(k=3).parameters())
    )
    z = torch.linspace(-3, 3, 601, dtype=torch.float64)
    with torch.no_grad():
        err = (r(z.float()).double() - torch.relu(z)).abs().max()
        # independent evaluation of the safe form with numpy polynomials
        p, q = r.p.double().numpy(), r.q.double().numpy()
        zn = z.numpy()
        num = np.polynomial.polynomial.polyval(zn, p)
        den = 1 + sum(np.abs(q[i] * zn ** (i + 1)) for i in range(4))
        np.testing.assert_allclose(r(z.float()).double().numpy(), num / den, rtol=1e-5, atol=1e-5)
    assert err < 0.1
    x = torch.randn(50, dtype=torch.float64, requires_grad=True)
    rd = A.Rational().double()
    assert torch.autograd.gradcheck(rd, (x,))


def test_swish_beta_and_make_baseline():
    s = A.SwishBeta(beta=1.0)
    z = torch.linspace(-4, 4, 81)
    torch.testing.assert_close(s(z), nn.functional.silu(z))
    for name in A.BASELINES:
        m = A.make_baseline(name)
        assert m(z).shape == z.shape
    with pytest.raises(ng.InvalidInput):
        A.make_baseline("softsign")


# -- display ------------------------------------------------------------------------------


def test_plot_and_knots(tmp_path):
    import matplotlib.pyplot as plt

    v = A.VAF(k=3)
    assert v.knots().tolist() == [0.0]
    with torch.no_grad():
        v.a.copy_(torch.tensor([1.0, 0.5, -0.25]))
    assert len(v.knots()) == 3
    ax = v.plot()
    assert len(ax.lines) == 2
    ax.figure.savefig(tmp_path / "vaf.png")
    plt.close(ax.figure)
    vc = A.VAF(share="channel", num_channels=3, hidden="tanh")
    ax = vc.plot()
    assert len(ax.lines) == 3
    plt.close(ax.figure)
    with pytest.raises(ng.UnsupportedModel):
        vc.knots()


# -- bad input ----------------------------------------------------------------------------


def test_bad_input():
    for kwargs in [
        dict(k=0),
        dict(k=-2),
        dict(k=2.5),
        dict(share="row"),
        dict(init="sine"),
        dict(hidden="sigmoid"),
        dict(fit_range=(1.0, -1.0)),
        dict(share="channel", num_channels=0),
    ]:
        with pytest.raises(ng.InvalidInput):
            A.VAF(**kwargs)
    v = A.VAF(share="channel", channel_dim=3)
    with pytest.raises(ng.InvalidInput, match="channel_dim"):
        v(torch.randn(2, 3))
    v = A.VAF(share="channel")
    v(torch.randn(2, 4, 5))
    with pytest.raises(ng.InvalidInput, match="channel count"):
        v(torch.randn(2, 3, 5))
    v = A.VAF(share="neuron")
    with pytest.raises(ng.InvalidInput):
        v(torch.randn(5))
    with pytest.raises(ng.InvalidInput):
        A.VAF(share="channel").knots()
    with pytest.raises(ng.InvalidInput):
        A.param_groups(nn.Sequential(nn.Linear(2, 2), A.VAF(share="neuron")))
    with pytest.raises(ng.InvalidInput):
        A.VAF()(torch.arange(3))
    with pytest.raises(ng.InvalidInput):
        A.VAF(init=lambda t: t[:2])


# -- torch.compile --------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated:DeprecationWarning")
@pytest.mark.parametrize("share", ["layer", "channel"])
def test_torch_compile(share):
    v = A.VAF(k=3, share=share, num_channels=4 if share == "channel" else None)
    _perturb(v, 16)
    x = torch.randn(8, 4, generator=torch.Generator().manual_seed(17), requires_grad=True)
    want = v(x)
    wg = torch.autograd.grad(want.sum(), (x, *v.parameters()))
    compiled = torch.compile(v, backend="inductor")
    got = compiled(x)
    gg = torch.autograd.grad(got.sum(), (x, *v.parameters()))
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    for a, b in zip(gg, wg):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_torch_compile_eager_backend():
    """Quick check that dynamo traces the module (the inductor run is the slow test)."""
    v = A.VAF(k=3)
    _perturb(v, 18)
    x = torch.randn(16, generator=torch.Generator().manual_seed(19), requires_grad=True)
    want = v(x)
    got = torch.compile(v, backend="eager")(x)
    torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-6)
    g1 = torch.autograd.grad(got.sum(), x)[0]
    g2 = torch.autograd.grad(want.sum(), x)[0]
    torch.testing.assert_close(g1, g2)


# -- the fused (torch.compile-generated) kernels of the layer/ReLU fast path ------------------


def _hinge_vaf(dtype, fused):
    v = A.VAF(k=3, fused=fused).to(dtype)
    with torch.no_grad():  # three active units, one with b < 0, and a non-zero linear part
        v.a.copy_(torch.tensor([1.0, 0.4, -0.3]))
        v.b.copy_(torch.tensor([1.0, -0.7, 1.3]))
        v.c.copy_(torch.tensor([0.1, -0.9, -0.6]))
        v.a0.fill_(0.05)
    return v


_NO_CXX = not any(shutil.which(c) for c in ("g++", "c++", "clang++"))


@pytest.mark.skipif(_NO_CXX, reason="no C++ compiler: torch.compile cannot build the fused kernels")
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_fused_kernels_equal_autograd(dtype):
    """Forward and every gradient of the fused path (and its eager tail) equal plain autograd."""
    n = 5 * A.FUSED_COLS + 123  # 5 fused rows and an eager tail
    for fused, want_kernel in ((True, "hinge_fused"), (False, "hinge")):
        got_kernel = A.choose_kernel(
            n, share="layer", hidden="relu", device=torch.device("cpu"), dtype=dtype, fused=fused
        )
        assert got_kernel == want_kernel
    g = torch.Generator().manual_seed(31)
    x = (2 * torch.randn(n, generator=g, dtype=dtype)).requires_grad_(True)
    gout = torch.randn(n, generator=g, dtype=dtype)
    results = {}
    for fused in (True, False):
        v = _hinge_vaf(dtype, fused)
        y = v(x)
        results[fused] = (y, *torch.autograd.grad(y, (x, *v.parameters()), gout))
    assert A.FUSED_KERNELS.failure is None
    want_v = _hinge_vaf(dtype, False)
    want_y = _reference(want_v, x)
    want = (want_y, *torch.autograd.grad(want_y, (x, *want_v.parameters()), gout))
    tol = dict(rtol=1e-12, atol=1e-10) if dtype == torch.float64 else dict(rtol=1e-5, atol=2e-4)
    for fused in (True, False):
        for got, ref in zip(results[fused], want):
            torch.testing.assert_close(got, ref, **tol)


def test_fused_kernels_fall_back_when_compiling_fails():
    """No working compiler: one RuntimeWarning, then the eager kernels, with the same numbers."""

    def broken(fn):
        raise RuntimeError("no C++ compiler found")

    kernels = A.FusedKernels(compiler=broken)
    n = 5 * A.FUSED_COLS + 5
    x = torch.randn(n, generator=torch.Generator().manual_seed(32), dtype=torch.float64)
    x.requires_grad_(True)
    v = _hinge_vaf(torch.float64, True)
    with pytest.warns(RuntimeWarning, match="could not be compiled"):
        y = A.hinge_vaf(x, v.theta, kernels)
    grads = torch.autograd.grad(y.sum(), (x, *v.parameters()))  # no second warning
    assert not kernels.available and "no C++ compiler" in kernels.failure
    assert A.FUSED_KERNELS.available  # the process-wide kernels are not affected
    want_y = _reference(v, x)
    want = torch.autograd.grad(want_y.sum(), (x, *v.parameters()))
    torch.testing.assert_close(y, want_y)
    for a, b in zip(grads, want):
        torch.testing.assert_close(a, b)


def test_fast_path_double_backward_and_torch_func():
    """create_graph=True and torch.func transforms get exact higher derivatives on the fast path."""
    v = _hinge_vaf(torch.float64, False)
    v.kernel = "hinge"
    x = _x((64,), seed=33)
    params = tuple(v.parameters())

    def second(fn):
        y = fn(x)
        g = torch.autograd.grad((y**2).sum(), params, create_graph=True)
        flat = torch.cat([t.reshape(-1) for t in g])
        return torch.autograd.grad(flat.sum(), (x, *params))

    got = second(v)
    want = second(lambda xx: _reference(v, xx))
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    # jvp of grad (the tangent-sensitivity generic path) through the module
    from torch.func import functional_call, grad, jvp

    p = dict(v.named_parameters())

    def loss(pp, xx):
        return (functional_call(v, pp, (xx,)) ** 2).sum()

    direction = torch.ones_like(x)
    _, got_t = jvp(lambda xx: grad(loss)(p, xx), (x.detach(),), (direction,))

    def loss_ref(pp, xx):
        t = pp["theta"]  # [a0, a_1..a_3, b_1..b_3, c_1..c_3]
        a0, a, b, c = t[0], t[1:4, None], t[4:7, None], t[7:10, None]
        return (A.vaf_reference(xx, a0, a, b, c) ** 2).sum()

    _, want_t = jvp(lambda xx: grad(loss_ref)(p, xx), (x.detach(),), (direction,))
    for k in got_t:
        torch.testing.assert_close(got_t[k], want_t[k], rtol=1e-12, atol=1e-12)


def test_fused_argument_is_checked():
    with pytest.raises(ng.InvalidInput, match="fused"):
        A.VAF(fused="yes")


# -- the kernel choice ----------------------------------------------------------------------


def test_choose_kernel_picks_each_path():
    cpu, f32 = torch.device("cpu"), torch.float32

    def choose(n, share="layer", hidden="relu", device=cpu, dtype=f32, **kw):
        return A.choose_kernel(n, share=share, hidden=hidden, device=device, dtype=dtype, **kw)

    big = A.FUSED_MIN
    assert choose(A.SMALL - 1) == "reference"
    assert choose(big, transformed=True) == "reference"
    assert choose(big, share="channel") == choose(big, hidden="tanh") == "generic"
    assert choose(A.SMALL) == choose(big - 1) == "hinge"
    assert choose(big) == "hinge_fused"
    assert choose(big, fused=False) == "hinge"
    assert choose(big, dtype=torch.float16) == "hinge"
    assert choose(big, device=torch.device("meta")) == "hinge"  # fused kernels: CPU only
    assert choose(A.SMALL, fused=True) == "hinge_fused"
    assert choose(10, forced="hinge") == "hinge"
    assert choose(10, forced="generic", transformed=True) == "reference"
    with pytest.raises(ng.InvalidInput, match="unknown VAF kernel"):
        choose(10, forced="fast")
    with pytest.raises(ng.InvalidInput, match="share='layer'"):
        choose(10, share="neuron", forced="hinge")


def test_forward_runs_the_chosen_kernel():
    """A large input takes the hinge kernel by default and equals the reference formula."""
    v = A.VAF(k=3, fused=False).double()
    _perturb(v, 40)
    x = _x((A.SMALL + 7,), seed=41)
    assert (
        A.choose_kernel(
            x.numel(), share="layer", hidden="relu", device=x.device, dtype=x.dtype, fused=False
        )
        == "hinge"
    )
    y = v(x)
    assert y.grad_fn.name().endswith("_VAFLayerReLUBackward")
    torch.testing.assert_close(y, _reference(v, x), rtol=1e-12, atol=1e-12)
