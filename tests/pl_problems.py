"""Piecewise-linear test problems declared as data: a model as people write it, each paired with an
equivalent plain ``nn.Sequential`` MLP (``nn.Linear`` + ``nn.ReLU``, ``nn.Identity`` if needed)
built by hand.

Oracle tests of the exact analyses (knots of 1-input nets, exact 2-D regions) on general
piecewise-linear models compare each ``Problem.model`` with its ``Problem.mlp``. The MLP computes
the same function on flattened inputs: ``model(x) == mlp(x.flatten(1))`` for ``x`` of shape
``(N, *input_shape)`` (tested to 1e-12 in float64 by tests/test_pl_problems.py).

What is comparable between model and MLP:

- the function, hence the knots of a 1-input problem (slope changes) and the linear pieces, always;
- the activation-region partition (2-D region count, points where the pattern changes on a line)
  when ``Problem.same_regions`` is True. The MLP may then have more units than the model (the
  leaky and residual MLPs), but every extra unit switches exactly where a model unit does, or never.
  Caveat for exact region code: some extra units (the residual carries, the max-pool carries) have
  a pre-activation that is IDENTICALLY ZERO on open sets (a carried post-ReLU value where that ReLU
  is off): such a zero affine function must count as no cut, not as a boundary everywhere.
- ``same_regions`` False (max-pool): the MLP's tournament adds cuts that the model's max does not
  have (where a losing pair swaps order); only the function and the pieces compare.

Everything is float64 and deterministic from ``seed`` (a local ``torch.Generator``; the global RNG
is never touched). Each builder is ``make_<name>(in_dim | input_shape, seed, ...) -> Problem``;
``ALL`` maps a problem name to a one-argument ``seed -> Problem`` builder with default sizes (1-input
and 2-input versions of the vector problems, small images for the conv problems); ``ONE_INPUT``
and ``MULTI_INPUT`` split it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils import skip_init

DTYPE = torch.float64


@dataclass
class Problem:
    """A piecewise-linear model and an equivalent Linear/ReLU ``nn.Sequential``.

    Attributes:
        name: unique name (the key in ``ALL``).
        model: the model as people write it, float64, eval mode; input ``(N, *input_shape)``.
        mlp: ``nn.Sequential`` of ``nn.Linear`` and ``nn.ReLU`` (``nn.Identity`` if needed), float64,
            eval mode, equal to ``model`` as a function of the flattened input ``(N, prod(shape))``.
        input_shape: per-example shape of the model's input, e.g. ``(1,)``, ``(2,)``, ``(1, 6, 6)``.
        note: how the MLP was built, and what that means for counts.
        same_regions: whether the MLP's activation regions equal the model's (see module doc).
    """

    name: str
    model: nn.Module
    mlp: nn.Sequential
    input_shape: tuple[int, ...]
    note: str
    same_regions: bool = True

    @property
    def in_dim(self) -> int:
        """Number of inputs of the MLP (the flattened input size)."""
        return math.prod(self.input_shape)


# ---------------------------------------------------------------------------------------------
# helpers


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(int(seed))


def _randn(g: torch.Generator, *shape: int) -> Tensor:
    return torch.randn(*shape, generator=g, dtype=DTYPE)


def _rand(g: torch.Generator, *shape: int) -> Tensor:
    return torch.rand(*shape, generator=g, dtype=DTYPE)


def _random_linear(g: torch.Generator, n_in: int, n_out: int) -> nn.Linear:
    """A Linear layer with Gaussian weights (variance 2 / n_in) and biases (sd 0.5), so ReLUs
    switch inside the unit box."""
    lin = skip_init(nn.Linear, n_in, n_out, dtype=DTYPE)
    with torch.no_grad():
        lin.weight.copy_(_randn(g, n_out, n_in) * math.sqrt(2.0 / n_in))
        lin.bias.copy_(_randn(g, n_out) * 0.5)
    return lin


def _linear(W: Tensor, b: Tensor) -> nn.Linear:
    """A Linear layer holding copies of ``W`` (out, in) and ``b`` (out,)."""
    W = W.detach().to(DTYPE)
    b = b.detach().to(DTYPE)
    lin = skip_init(nn.Linear, W.shape[1], W.shape[0], dtype=DTYPE)
    with torch.no_grad():
        lin.weight.copy_(W)
        lin.bias.copy_(b)
    return lin


def _copy(lin: nn.Linear) -> nn.Linear:
    return _linear(lin.weight, lin.bias)


def _sequential(layers: Sequence[nn.Linear]) -> nn.Sequential:
    """Linear, ReLU, Linear, ..., Linear (ReLU between consecutive Linear layers)."""
    mods: list[nn.Module] = []
    for i, lin in enumerate(layers):
        if i:
            mods.append(nn.ReLU())
        mods.append(lin)
    return nn.Sequential(*mods).eval()


def _check_sizes(in_dim: int, hidden: Sequence[int], out_dim: int, n_hidden: int) -> None:
    if in_dim < 1 or out_dim < 1 or any(h < 1 for h in hidden):
        raise ValueError(f"sizes must be positive: in_dim={in_dim}, hidden={hidden}, out={out_dim}")
    if len(hidden) != n_hidden:
        raise ValueError(f"this problem has {n_hidden} hidden layers, got hidden={tuple(hidden)}")


# ---------------------------------------------------------------------------------------------
# 1. F.relu in forward


class FunctionalReLUNet(nn.Module):
    """Three Linear layers with ``F.relu`` called in ``forward`` (no activation modules)."""

    def __init__(self, l0: nn.Linear, l1: nn.Linear, l2: nn.Linear):
        super().__init__()
        self.l0, self.l1, self.l2 = l0, l1, l2

    def forward(self, x: Tensor) -> Tensor:
        return self.l2(F.relu(self.l1(F.relu(self.l0(x)))))


def make_functional_relu(
    in_dim: int = 2, seed: int = 0, hidden: Sequence[int] = (5, 4), out_dim: int = 2
) -> Problem:
    """Linear layers with ``F.relu`` between them in ``forward`` (2 hidden layers)."""
    _check_sizes(in_dim, hidden, out_dim, 2)
    g = _gen(seed)
    sizes = [in_dim, *hidden, out_dim]
    lins = [_random_linear(g, a, b) for a, b in zip(sizes[:-1], sizes[1:])]
    model = FunctionalReLUNet(*lins).eval()
    return Problem(
        name=f"functional_relu_{in_dim}d",
        model=model,
        mlp=_sequential([_copy(lin) for lin in lins]),
        input_shape=(in_dim,),
        note="same Linear weights (copied), nn.ReLU modules where forward calls F.relu",
    )


# ---------------------------------------------------------------------------------------------
# 2. one nn.ReLU module used twice


class ReusedReLUNet(nn.Module):
    """Three Linear layers and ONE ``self.act = nn.ReLU()`` applied after each hidden layer."""

    def __init__(self, l0: nn.Linear, l1: nn.Linear, l2: nn.Linear):
        super().__init__()
        self.l0, self.l1, self.l2 = l0, l1, l2
        self.act = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        return self.l2(self.act(self.l1(self.act(self.l0(x)))))


def make_reused_relu(
    in_dim: int = 2, seed: int = 0, hidden: Sequence[int] = (4, 5), out_dim: int = 2
) -> Problem:
    """One ``nn.ReLU`` module called after both hidden layers."""
    _check_sizes(in_dim, hidden, out_dim, 2)
    g = _gen(seed)
    sizes = [in_dim, *hidden, out_dim]
    lins = [_random_linear(g, a, b) for a, b in zip(sizes[:-1], sizes[1:])]
    return Problem(
        name=f"reused_relu_{in_dim}d",
        model=ReusedReLUNet(*lins).eval(),
        mlp=_sequential([_copy(lin) for lin in lins]),
        input_shape=(in_dim,),
        note="same Linear weights (copied), one fresh nn.ReLU per use of the shared module",
    )


# ---------------------------------------------------------------------------------------------
# 3. BatchNorm1d in eval mode


def _random_batchnorm(g: torch.Generator, n: int) -> nn.BatchNorm1d:
    """BatchNorm1d with random running statistics and affine parameters; |weight| >= 0.5 (with
    random signs), so no unit is made constant and every boundary of the model stays a boundary."""
    bn = nn.BatchNorm1d(n, eps=1e-5, dtype=DTYPE)
    with torch.no_grad():
        bn.running_mean.copy_(_randn(g, n) * 0.3)
        bn.running_var.copy_(0.5 + 1.5 * _rand(g, n))
        sign = torch.where(_rand(g, n) < 0.25, -1.0, 1.0).to(DTYPE)
        bn.weight.copy_(sign * (0.5 + _rand(g, n)))
        bn.bias.copy_(_randn(g, n) * 0.3)
    return bn.eval()


def _fold_batchnorm(lin: nn.Linear, bn: nn.BatchNorm1d) -> nn.Linear:
    """The Linear layer equal to ``bn(lin(x))`` in eval mode:
    ``s = gamma / sqrt(var + eps)``, ``W' = diag(s) W``, ``b' = s (b - mean) + beta``."""
    s = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    W = s[:, None] * lin.weight
    b = s * (lin.bias - bn.running_mean) + bn.bias
    return _linear(W, b)


def make_batchnorm_eval(
    in_dim: int = 2, seed: int = 0, hidden: Sequence[int] = (5, 4), out_dim: int = 2
) -> Problem:
    """Linear -> BatchNorm1d -> ReLU -> Linear -> BatchNorm1d -> ReLU -> Linear, in eval mode."""
    _check_sizes(in_dim, hidden, out_dim, 2)
    g = _gen(seed)
    sizes = [in_dim, *hidden, out_dim]
    lins = [_random_linear(g, a, b) for a, b in zip(sizes[:-1], sizes[1:])]
    bns = [_random_batchnorm(g, h) for h in hidden]
    model = nn.Sequential(lins[0], bns[0], nn.ReLU(), lins[1], bns[1], nn.ReLU(), lins[2]).eval()
    mlp = _sequential(
        [_fold_batchnorm(lins[0], bns[0]), _fold_batchnorm(lins[1], bns[1]), _copy(lins[2])]
    )
    return Problem(
        name=f"batchnorm_eval_{in_dim}d",
        model=model,
        mlp=mlp,
        input_shape=(in_dim,),
        note="each BatchNorm1d (eval: running stats) folded into the Linear before it: "
        "s = weight / sqrt(running_var + eps), W' = s W, b' = s (b - running_mean) + bias",
    )


# ---------------------------------------------------------------------------------------------
# 4. LeakyReLU as two ReLUs


def make_leaky(
    in_dim: int = 2,
    seed: int = 0,
    hidden: Sequence[int] = (4, 3),
    out_dim: int = 2,
    negative_slope: float = 0.1,
) -> Problem:
    """Linear -> LeakyReLU -> Linear -> LeakyReLU -> Linear.

    MLP: ``leaky(z) = relu(z) - a relu(-z)``: each hidden Linear (W, b) becomes ([W; -W], [b; -b])
    (twice the units), and the next Linear takes ``W_next [I, -a I]``."""
    _check_sizes(in_dim, hidden, out_dim, 2)
    a = float(negative_slope)
    g = _gen(seed)
    sizes = [in_dim, *hidden, out_dim]
    lins = [_random_linear(g, p, q) for p, q in zip(sizes[:-1], sizes[1:])]
    model = nn.Sequential(lins[0], nn.LeakyReLU(a), lins[1], nn.LeakyReLU(a), lins[2]).eval()
    new: list[nn.Linear] = []
    combine: Tensor | None = None  # (n_prev, 2 n_prev): leaky outputs from the doubled relu units
    for i, lin in enumerate(lins):
        W, b = lin.weight.detach(), lin.bias.detach()
        if combine is not None:
            W = W @ combine
        if i < len(lins) - 1:
            n = lin.out_features
            W, b = torch.cat([W, -W]), torch.cat([b, -b])
            eye = torch.eye(n, dtype=DTYPE)
            combine = torch.cat([eye, -a * eye], dim=1)
        new.append(_linear(W, b))
    return Problem(
        name=f"leaky_{in_dim}d",
        model=model,
        mlp=_sequential(new),
        input_shape=(in_dim,),
        note=f"LeakyReLU({a}) as relu(z) - {a} relu(-z): each hidden layer doubled (W stacked with "
        "-W), the combination folded into the next Linear. Twice the units, but z and -z switch "
        "on the same set, so the activation regions (and knots) equal the model's.",
    )


# ---------------------------------------------------------------------------------------------
# 5. a residual block


class ResidualNet(nn.Module):
    """``z1 = L0 x``, ``h1 = relu(z1)``, ``h2 = s + relu(L1 h1)``, ``out = L2 h2`` with the skip
    ``s = h1`` (``skip="post"``, the usual block) or ``s = z1`` (``skip="pre"``)."""

    def __init__(self, l0: nn.Linear, l1: nn.Linear, l2: nn.Linear, skip: str = "post"):
        super().__init__()
        self.l0, self.l1, self.l2 = l0, l1, l2
        self.skip = skip

    def forward(self, x: Tensor) -> Tensor:
        z1 = self.l0(x)
        h1 = torch.relu(z1)
        s = h1 if self.skip == "post" else z1
        return self.l2(s + torch.relu(self.l1(h1)))


def make_residual(
    in_dim: int = 2, seed: int = 0, width: int = 4, out_dim: int = 2, skip: str = "post"
) -> Problem:
    """A residual block with a skip around one ReLU layer (see :class:`ResidualNet`).

    MLP (general carry, valid for any sign of the skipped value ``s``): ``s = relu(s) - relu(-s)``.
    Layer 1: ``relu(z1)`` (the model's units), plus ``relu(-z1)`` when ``skip="pre"``.
    Layer 2: ``[relu(L1 h1); relu(s); relu(-s)]`` with ``s`` a linear function of layer 1's outputs.
    Output: ``L2 (relu(L1 h1) + relu(s) - relu(-s))``.
    """
    if skip not in ("post", "pre"):
        raise ValueError(f"skip must be 'post' or 'pre', got {skip!r}")
    _check_sizes(in_dim, (width,), out_dim, 1)
    g = _gen(seed)
    l0 = _random_linear(g, in_dim, width)
    l1 = _random_linear(g, width, width)
    l2 = _random_linear(g, width, out_dim)
    model = ResidualNet(l0, l1, l2, skip=skip).eval()

    n = width
    eye = torch.eye(n, dtype=DTYPE)
    zero = torch.zeros(n, n, dtype=DTYPE)
    W0, b0 = l0.weight.detach(), l0.bias.detach()
    W1, b1 = l1.weight.detach(), l1.bias.detach()
    W2, b2 = l2.weight.detach(), l2.bias.detach()
    zb = torch.zeros(n, dtype=DTYPE)
    if skip == "post":
        # layer-1 outputs a1 = h1;  h1 = a1, s = a1
        first = _linear(W0, b0)
        take_h1, take_s = eye, eye
    else:
        # layer-1 outputs a1 = [relu(z1); relu(-z1)];  h1 = relu(z1), s = z1 = relu(z1) - relu(-z1)
        first = _linear(torch.cat([W0, -W0]), torch.cat([b0, -b0]))
        take_h1 = torch.cat([eye, zero], dim=1)
        take_s = torch.cat([eye, -eye], dim=1)
    second = _linear(torch.cat([W1 @ take_h1, take_s, -take_s]), torch.cat([b1, zb, zb]))
    last = _linear(W2 @ torch.cat([eye, eye, -eye], dim=1), b2)
    if skip == "post":
        note = (
            "skip from the post-ReLU h1 carried through the second ReLU layer as relu(h1) - "
            "relu(-h1) (the general carry; here h1 >= 0, so relu(-h1) is 0 everywhere and "
            "relu(h1) switches where h1's own unit does): the activation regions and knots equal "
            "the model's. The carry units' pre-activations are identically 0 wherever the carried "
            "unit is off (a zero affine function, no cut)."
        )
    else:
        note = (
            "skip from the pre-activation z1, carried as relu(z1) - relu(-z1): layer 1 doubled "
            "([W0; -W0]), layer 2 carries z1 again as relu(z1) - relu(-z1). Every carry unit "
            "switches where z1 = 0, i.e. where the model's own unit relu(z1) does, so the "
            "activation regions and knots equal the model's. (A skip from a value no ReLU of the "
            "model thresholds, e.g. the input, would add cuts where it crosses 0.)"
        )
    return Problem(
        name=f"residual_{skip}_{in_dim}d" if skip != "post" else f"residual_{in_dim}d",
        model=model,
        mlp=_sequential([first, second, last]),
        input_shape=(in_dim,),
        note=note,
    )


# ---------------------------------------------------------------------------------------------
# 6-7. convolutions and pooling, unrolled by explicit index loops


def _conv_matrix(conv: nn.Conv2d, c_in: int, h: int, w: int) -> tuple[Tensor, Tensor, int, int]:
    """Dense (W, b) of a Conv2d (stride 1, no padding, no dilation, groups 1) on ``(c_in, h, w)``
    inputs, built by explicit index loops in PyTorch's flatten order ``(c, i, j)``.
    Returns W (c_out*ho*wo, c_in*h*w), b (c_out*ho*wo,), ho, wo."""
    K = conv.weight.detach()  # (c_out, c_in, kh, kw)
    c_out, _, kh, kw = K.shape
    ho, wo = h - kh + 1, w - kw + 1
    W = torch.zeros(c_out * ho * wo, c_in * h * w, dtype=DTYPE)
    b = torch.zeros(c_out * ho * wo, dtype=DTYPE)
    for o in range(c_out):
        for i in range(ho):
            for j in range(wo):
                row = (o * ho + i) * wo + j
                b[row] = conv.bias[o]
                for c in range(c_in):
                    for p in range(kh):
                        for q in range(kw):
                            W[row, (c * h + i + p) * w + j + q] = K[o, c, p, q]
    return W, b, ho, wo


def _pool_windows(c: int, h: int, w: int, k: int) -> tuple[list[list[int]], int, int]:
    """Flat indices (``(c, i, j)`` order) of each ``k x k`` pooling window (stride k, floor mode),
    windows in the pooled output's flatten order. Returns windows, pooled h, pooled w."""
    hp, wp = h // k, w // k
    windows = []
    for ch in range(c):
        for i in range(hp):
            for j in range(wp):
                windows.append(
                    [(ch * h + i * k + p) * w + j * k + q for p in range(k) for q in range(k)]
                )
    return windows, hp, wp


def _check_image(input_shape: Sequence[int], kernel: int, pool: int) -> tuple[int, int, int]:
    if len(input_shape) != 3:
        raise ValueError(f"input_shape must be (channels, height, width), got {input_shape}")
    c, h, w = (int(s) for s in input_shape)
    if c < 1 or kernel < 1 or pool < 1 or h - kernel + 1 < pool or w - kernel + 1 < pool:
        raise ValueError(f"image {input_shape} too small for kernel {kernel} and pool {pool}")
    return c, h, w


def _conv_model_parts(g, c_in, channels, kernel, n_pooled, out_dim):
    conv = skip_init(nn.Conv2d, c_in, channels, kernel, dtype=DTYPE)
    with torch.no_grad():
        conv.weight.copy_(_randn(g, *conv.weight.shape) * math.sqrt(2.0 / (c_in * kernel**2)))
        conv.bias.copy_(_randn(g, channels) * 0.5)
    head = _random_linear(g, n_pooled, out_dim)
    return conv, head


def make_conv_avgpool(
    input_shape: Sequence[int] = (1, 6, 6),
    seed: int = 0,
    channels: int = 2,
    kernel: int = 3,
    pool: int = 2,
    out_dim: int = 3,
) -> Problem:
    """Conv2d -> ReLU -> AvgPool2d -> Flatten -> Linear on small images.

    MLP: the conv unrolled into a dense Linear (index loops), ReLU, then the average pooling (a
    linear map, built by index loops) folded into the head Linear."""
    c_in, h, w = _check_image(input_shape, kernel, pool)
    g = _gen(seed)
    ho, wo = h - kernel + 1, w - kernel + 1
    windows, _, _ = _pool_windows(channels, ho, wo, pool)
    conv, head = _conv_model_parts(g, c_in, channels, kernel, len(windows), out_dim)
    model = nn.Sequential(conv, nn.ReLU(), nn.AvgPool2d(pool), nn.Flatten(), head).eval()

    Wc, bc, _, _ = _conv_matrix(conv, c_in, h, w)
    P = torch.zeros(len(windows), channels * ho * wo, dtype=DTYPE)
    for r, win in enumerate(windows):
        for col in win:
            P[r, col] = 1.0 / len(win)
    mlp = _sequential([_linear(Wc, bc), _linear(head.weight.detach() @ P, head.bias)])
    return Problem(
        name=f"conv_avgpool_{c_in}x{h}x{w}",
        model=model,
        mlp=mlp,
        input_shape=(c_in, h, w),
        note="Conv2d unrolled into a dense Linear by explicit index loops (flatten order c, i, j); "
        "AvgPool2d (a linear map, index loops) folded into the head Linear. Same units as the "
        "model's conv ReLUs: activation regions and knots equal.",
    )


def make_conv_maxpool(
    input_shape: Sequence[int] = (1, 6, 6),
    seed: int = 0,
    channels: int = 2,
    kernel: int = 3,
    pool: int = 2,
    out_dim: int = 3,
) -> Problem:
    """Conv2d -> ReLU -> MaxPool2d -> Flatten -> Linear on small images.

    MLP: the conv unrolled (index loops), ReLU, then each pooling window's max by a tournament of
    ``max(a, b) = relu(a - b) + b`` with ``b`` carried as ``relu(b)`` (exact: the values are
    post-ReLU, >= 0; an odd one out is carried as ``relu(r)``), one ReLU layer per round
    (``ceil(log2(pool**2))`` rounds: two for 2x2), the last round folded into the head Linear."""
    c_in, h, w = _check_image(input_shape, kernel, pool)
    g = _gen(seed)
    ho, wo = h - kernel + 1, w - kernel + 1
    windows, _, _ = _pool_windows(channels, ho, wo, pool)
    conv, head = _conv_model_parts(g, c_in, channels, kernel, len(windows), out_dim)
    model = nn.Sequential(conv, nn.ReLU(), nn.MaxPool2d(pool), nn.Flatten(), head).eval()

    Wc, bc, _, _ = _conv_matrix(conv, c_in, h, w)
    layers = [_linear(Wc, bc)]
    # each window's candidates as rows (linear forms) over the current layer's outputs
    n_cur = channels * ho * wo
    forms: list[list[Tensor]] = []
    for win in windows:
        rows = []
        for col in win:
            e = torch.zeros(n_cur, dtype=DTYPE)
            e[col] = 1.0
            rows.append(e)
        forms.append(rows)
    while len(forms[0]) > 1:  # one tournament round: a ReLU layer
        unit_rows: list[Tensor] = []
        next_forms: list[list[Tensor]] = []
        for rows in forms:
            nxt = []
            for k in range(0, len(rows) - 1, 2):
                a, b = rows[k], rows[k + 1]
                nxt.append([len(unit_rows), len(unit_rows) + 1])  # relu(a - b) + relu(b)
                unit_rows += [a - b, b]
            if len(rows) % 2:
                nxt.append([len(unit_rows)])  # relu(r) = r
                unit_rows.append(rows[-1])
            next_forms.append(nxt)
        n_units = len(unit_rows)
        layers.append(_linear(torch.stack(unit_rows), torch.zeros(n_units, dtype=DTYPE)))
        forms = []
        for win in next_forms:
            rows = []
            for idx in win:
                e = torch.zeros(n_units, dtype=DTYPE)
                e[idx] = 1.0
                rows.append(e)
            forms.append(rows)
    M = torch.stack([rows[0] for rows in forms])  # (n_windows, n_units): the maxima
    layers.append(_linear(head.weight.detach() @ M, head.bias))
    rounds = len(layers) - 2
    return Problem(
        name=f"conv_maxpool_{c_in}x{h}x{w}",
        model=model,
        mlp=_sequential(layers),
        input_shape=(c_in, h, w),
        note="Conv2d unrolled by index loops; each MaxPool2d window's max of post-ReLU values by a "
        f"tournament max(a, b) = relu(a - b) + relu(b) ({rounds} extra ReLU layers), exact since "
        "the values are >= 0. The function is equal (and so are its linear pieces), but the MLP "
        "has MORE regions: it also cuts where a losing pair swaps order. Carry units relu(b) "
        "and relu(a - b) have identically-0 pre-activations where the conv units are off.",
        same_regions=False,
    )


# ---------------------------------------------------------------------------------------------
# the registry

Builder = Callable[[int], Problem]


def _entry(make: Callable[..., Problem], **kwargs) -> tuple[str, Builder]:
    def build(seed: int = 0) -> Problem:
        return make(seed=seed, **kwargs)

    return build(0).name, build


def _registry() -> dict[str, Builder]:
    entries = []
    for in_dim in (1, 2):
        entries += [
            _entry(make_functional_relu, in_dim=in_dim),
            _entry(make_reused_relu, in_dim=in_dim),
            _entry(make_batchnorm_eval, in_dim=in_dim),
            _entry(make_leaky, in_dim=in_dim),
            _entry(make_residual, in_dim=in_dim),
            _entry(make_residual, in_dim=in_dim, skip="pre"),
        ]
    entries += [_entry(make_conv_avgpool), _entry(make_conv_maxpool)]
    return dict(entries)


ALL: dict[str, Builder] = _registry()
"""Problem name -> ``seed -> Problem`` with default sizes."""

ONE_INPUT: dict[str, Builder] = {k: f for k, f in ALL.items() if k.endswith("_1d")}
"""The 1-input problems (for knots)."""

MULTI_INPUT: dict[str, Builder] = {k: f for k, f in ALL.items() if k not in ONE_INPUT}
"""The problems with 2 or more inputs (for 2-D regions, on a slice when more than 2)."""
