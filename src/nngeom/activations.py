"""Trainable activation subnetworks (VAF) and the baselines they are compared with.

A VAF ("variable activation function", Apicella et al. 2019) is an element-wise activation computed
by a tiny ``1 -> k -> 1`` network::

    VAF(z) = a_0 + sum_{j=1..k} a_j * g(b_j * z + c_j),      g = ReLU (default) or tanh

with ``3k + 1`` parameters shared per layer (the paper), per channel, or per neuron. With the
ReLU hidden unit a VAF is a learned piecewise-linear function with at most ``k`` breakpoints, so a
network using it stays piecewise linear: :func:`nngeom.nets.as_mlp` accepts it and
:func:`nngeom.knots` counts its knots.

Shapes: one parameter tensor ``theta`` of shape ``S + (3k + 1,)`` holds ``[a0, a_1..a_k,
b_1..b_k, c_1..c_k]`` (one tensor per activation: an optimizer step costs one tensor, not four);
``a0`` (shape ``S``) and ``a, b, c`` (shape ``S + (k,)``) are views of it. ``S = ()`` for
``share="layer"``, ``(C,)`` for ``share="channel"`` (``C`` = size of ``channel_dim``) and the
per-example feature shape (``x.shape[1:]``) for ``share="neuron"``.

Baselines: :class:`SwishBeta` (``x * sigmoid(beta x)``, trainable ``beta``) and :class:`Rational`
(a Padé activation of degree (5, 4) in the "safe" form ``Q = 1 + sum_i |b_i x^i|``; 10 parameters,
the same as a VAF with ``k = 3``); ``nn.ReLU``, ``nn.PReLU`` and ``nn.SiLU`` come from torch
(:func:`make_baseline` builds any of them by name).
"""

from __future__ import annotations

import copy
import functools
import math
import threading
import warnings
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from ._checks import (
    check_device,
    check_int,
    check_model_tensors,
    check_number,
    check_real_tensor,
)
from ._errors import InvalidInput, UnsupportedModel

__all__ = [
    "VAF",
    "VAFExport",
    "SwishBeta",
    "Rational",
    "make_baseline",
    "BASELINES",
    "param_groups",
    "export_activations",
    "vaf_reference",
    "is_trainable_activation",
]

SHARES = ("layer", "channel", "neuron")
HIDDEN = ("relu", "tanh")
INITS: dict[str, Callable[[Tensor], Tensor]] = {
    "relu": torch.relu,
    "tanh": torch.tanh,
    "identity": lambda z: z,
    "gelu": nn.functional.gelu,
    "silu": nn.functional.silu,
}
# Elements per chunk in the fast (layer-shared ReLU) path: keeps temporaries cache-sized and far
# below one input-sized tensor. Its scratch rows (one per hinge) come from a reused per-thread
# buffer of at most SCRATCH elements, so a call allocates nothing but its outputs.
CHUNK = 1 << 17
SCRATCH = 1 << 19
# Inputs of at least FUSED_MIN elements on CPU take kernels that torch.compile (inductor) generates
# once per process (the fused forward is one pass, the backward one pass with all parameter sums),
# on the leading multiple of FUSED_COLS elements; the rest, and every input where compiling fails
# (no C++ compiler), take the eager chunked kernels. ``VAF(fused=False)`` opts out.
FUSED_MIN = 1 << 20
FUSED_COLS = 4096
# Inputs with fewer elements than SMALL are differentiated by plain autograd through
# vaf_reference (fewer Python-level ops: faster on tiny tensors, where memory does not matter);
# larger ones use the memory-lean Functions (the chunked layer/ReLU path from FAST_MIN elements).
SMALL = 1 << 14
FAST_MIN = 1 << 14


# The most parameters one activation module may hold (num_channels x (3k + 1)).
MAX_PARAMETERS = 100_000_000


def _fit_range(fit_range: object) -> tuple[float, float]:
    """``(lo, hi)``: two finite numbers with ``lo < hi`` (at most 1e6 in size: the fit of the
    init is least squares on that interval, whose powers / products must stay finite)."""
    try:
        lo_raw, hi_raw = fit_range  # type: ignore[misc]
    except (TypeError, ValueError):
        raise InvalidInput(f"fit_range must be two numbers (lo, hi), got {fit_range!r}") from None
    lo = check_number("fit_range[0]", lo_raw, minimum=-1e6, maximum=1e6)
    hi = check_number("fit_range[1]", hi_raw, minimum=-1e6, maximum=1e6)
    if not lo < hi:
        raise InvalidInput(f"fit_range must be a finite interval (lo < hi), got {fit_range!r}")
    return lo, hi


def _g(hidden: str) -> Callable[[Tensor], Tensor]:
    return torch.relu if hidden == "relu" else torch.tanh


def vaf_reference(
    x: Tensor, a0: Tensor, a: Tensor, b: Tensor, c: Tensor, hidden: str = "relu"
) -> Tensor:
    """The VAF formula in plain torch ops (autograd differentiates it; the export uses it).

    ``x``: any shape; ``a0``: broadcastable to ``x``; ``a, b, c``: ``(k, *B)`` with each slice
    ``a[j]`` broadcastable to ``x``. Returns ``a0 + sum_j a[j] * g(b[j] * x + c[j])``, shape of ``x``.
    """
    g = _g(hidden)
    out = a0 + a[0] * g(b[0] * x + c[0])
    for j in range(1, a.shape[0]):
        out = out + a[j] * g(b[j] * x + c[j])
    return out


# ----------------------------------------------------------------------------------------------
# The memory-lean autograd Function: saves only its input, recomputes the rest in backward.
# ----------------------------------------------------------------------------------------------


def _sum_to(t: Tensor, like: Tensor) -> Tensor:
    return t.sum_to_size(like.shape) if t.shape != like.shape else t


class _VAFFunction(torch.autograd.Function):
    """Generic path: any sharing, either hidden unit. ``a, b, c``: ``(k, *B)``, ``a0``: ``B``."""

    @staticmethod
    def forward(x: Tensor, a0: Tensor, a: Tensor, b: Tensor, c: Tensor, hidden: str) -> Tensor:  # type: ignore[override]
        out = torch.empty_like(x)
        out.copy_(a0.expand_as(x))
        for j in range(a.shape[0]):
            u = x * b[j]
            u.add_(c[j])
            u = u.clamp_min_(0) if hidden == "relu" else u.tanh_()
            out.addcmul_(u, a[j])
        return out

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple, output: Tensor) -> None:
        x, a0, a, b, c, hidden = inputs
        ctx.save_for_backward(x, a0, a, b, c)
        ctx.hidden = hidden

    @staticmethod
    def backward(ctx: Any, grad: Tensor):  # type: ignore[override]
        x, a0, a, b, c = ctx.saved_tensors
        hidden = ctx.hidden
        need_x, need_a0, need_a, need_b, need_c = ctx.needs_input_grad[:5]
        gx = torch.zeros_like(x) if need_x else None
        ga = torch.zeros_like(a) if need_a else None
        gb = torch.zeros_like(b) if need_b else None
        gc = torch.zeros_like(c) if need_c else None
        for j in range(a.shape[0]):
            u = b[j] * x + c[j]
            if hidden == "relu":
                gd = grad * (u > 0)  # grad * g'(u)
                h = u.clamp_min_(0) if need_a else None
            else:
                h = torch.tanh(u)
                gd = grad * (1 - h * h)
            if need_a:
                ga[j] = _sum_to(grad * h, a[j])
            gda = gd * a[j]
            if need_b:
                gb[j] = _sum_to(gda * x, b[j])
            if need_c:
                gc[j] = _sum_to(gda, c[j])
            if need_x:
                gx.add_(gda * b[j])
        ga0 = _sum_to(grad, a0) if need_a0 else None
        return gx, ga0, ga, gb, gc, None


def _hinges(
    a0: float, a: list[float], b: list[float], c: list[float]
) -> tuple[float, float, list[tuple[float, float]]]:
    """Rewrite ``a0 + sum_j a_j relu(b_j x + c_j)`` as ``alpha x + beta + sum_j w_j max(x, t_j)``.

    ``t_j = -c_j / b_j``, ``w_j = a_j |b_j|`` (units with ``b_j = 0`` are constants). Returns
    ``(alpha, beta, [(t_j, w_j) for units with b_j != 0]])`` as Python floats (float64 arithmetic).
    """
    alpha, beta, hinges = 0.0, float(a0), []
    for aj, bj, cj in zip(a, b, c):
        if bj == 0.0:
            beta += aj * max(cj, 0.0)
            continue
        t, w = -cj / bj, aj * abs(bj)
        if bj > 0:  # a relu(b x + c) = w (max(x, t) - t)
            beta -= w * t
        else:  # a relu(b x + c) = w (max(x, t) - x)
            alpha -= w
        hinges.append((t, w))
    return alpha, beta, hinges


_SCRATCH = threading.local()


def _functorch_active() -> bool:
    """True inside a torch.func transform (vmap, grad, jvp, ...): the plain formula is used there."""
    probe = getattr(torch._C, "_are_functorch_transforms_active", None)
    return bool(probe()) if probe is not None else False


def _scratch(rows: int, n: int, dtype: torch.dtype, device: torch.device) -> Tensor:
    """A ``(rows, chunk)`` work matrix, ``chunk = min(n, CHUNK, SCRATCH // rows)`` (at least 1024).

    Reuses one buffer per thread, dtype and device instead of allocating per call: on machines
    where malloc returns freed memory to the OS, a fresh multi-MB temporary per call costs page
    faults that can exceed the arithmetic. Callers in one thread never overlap (a Function's
    forward returns before its backward starts), so the reuse is safe.
    """
    chunk = max(1, min(n, CHUNK, max(1024, SCRATCH // rows)))
    cache = getattr(_SCRATCH, "bufs", None)
    if cache is None:
        cache = _SCRATCH.bufs = {}
    key = (dtype, device)
    buf = cache.get(key)
    if buf is None or buf.numel() < rows * chunk:
        buf = cache[key] = torch.empty(max(rows * chunk, SCRATCH), dtype=dtype, device=device)
    return buf[: rows * chunk].view(rows, chunk)


def _fused_forward_kernel(x: Tensor, out: Tensor, ts: Tensor, ws: Tensor, beta: Tensor) -> None:
    """``out = beta + sum_j ws[j] max(x, ts[j])`` for ``x, out: (R, C)``, ``ts, ws: (r,)``."""
    y = beta + ws[0] * torch.maximum(x, ts[0])
    for j in range(1, ts.shape[0]):
        y = y + ws[j] * torch.maximum(x, ts[j])
    out.copy_(y)


def _fused_backward_kernel(
    x: Tensor, g: Tensor, gx: Tensor, ts: Tensor, slopes: Tensor
) -> tuple[Tensor, Tensor]:
    """One pass: ``gx = g (slopes[0] + sum_j slopes[j + 1] [x > ts[j]])`` and per-row sums.

    ``x, g, gx: (R, C)``, ``ts: (r - 1,)``, ``slopes: (r,)``. Returns ``(S1, SX)``, each
    ``(R, r)``: column 0 the row sums of ``g`` and ``g x``, column ``1 + j`` the same over
    ``x > ts[j]``.
    """
    gp = g * x
    slope = slopes[0] + torch.zeros_like(x)
    s1, sx = [g.sum(1)], [gp.sum(1)]
    for j in range(ts.shape[0]):
        m = x > ts[j]
        slope = slope + torch.where(m, slopes[j + 1], 0.0)
        s1.append(torch.where(m, g, 0.0).sum(1))
        sx.append(torch.where(m, gp, 0.0).sum(1))
    gx.copy_(g * slope)
    return torch.stack(s1, 1), torch.stack(sx, 1)


_FUSED_FAILED: list[str] = []  # the reason, once compiling failed in this process
_FUSED_SEEN: set[tuple[Any, ...]] = set()  # kernels compiled in this process


@functools.cache
def _compiled(which: str) -> Callable[..., Any]:
    fn = _fused_forward_kernel if which == "forward" else _fused_backward_kernel
    return torch.compile(fn, dynamic=False)


def _run_fused(which: str, *args: Tensor) -> tuple[bool, Any]:
    """Call the compiled kernel on ``(R, C)`` views (R dynamic): ``(ok, its result)``."""
    if _FUSED_FAILED:
        return False, None
    for t in args:
        if t.dim() == 2:
            torch._dynamo.mark_dynamic(t, 0)
    key = (which, args[0].dtype, args[0].device, args[-2].shape[0])  # what a recompile keys on
    try:
        if key in _FUSED_SEEN:
            return True, _compiled(which)(*args)
        with warnings.catch_warnings():  # (not thread-safe, so only around compiling)
            warnings.simplefilter("ignore")  # torch's own deprecation notices while compiling
            out = _compiled(which)(*args)
        _FUSED_SEEN.add(key)
        return True, out
    except Exception as exc:  # no working compiler, an unsupported platform, ...
        _FUSED_FAILED.append(f"{type(exc).__name__}: {exc}")
        warnings.warn(
            f"nngeom: the fused VAF kernels could not be compiled ({_FUSED_FAILED[0][:200]}); "
            "using the eager kernels (correct, slower). Pass VAF(fused=False) to skip them.",
            RuntimeWarning,
            stacklevel=4,
        )
        return False, None


def _fused_split(x: Tensor, fused: bool | None) -> int:
    """How many leading elements of ``x`` the fused kernels take (0: none)."""
    n = x.numel()
    if fused is False or _FUSED_FAILED or x.device.type != "cpu":
        return 0
    if (fused is None and n < FUSED_MIN) or n < 2 * FUSED_COLS:  # (R = 1 would be specialised)
        return 0
    if x.dtype not in (torch.float32, torch.float64):
        return 0
    return (n // FUSED_COLS) * FUSED_COLS


def _chunks(start: int, n: int, chunk: int) -> list[tuple[int, int]]:
    """``[(s, e), ...]`` covering ``start..n`` in pieces of at most ``chunk``."""
    return [(s, min(s + chunk, n)) for s in range(start, n, chunk)]


def _hinge_forward(
    x: Tensor, a0: float, a: list[float], b: list[float], c: list[float], fused: bool | None = None
) -> Tensor:
    """Layer-shared ReLU-hidden VAF of ``x`` (any shape); parameters as Python floats (``k`` each).

    ``alpha x + beta + sum_j w_j max(x, t_j)`` (:func:`_hinges`; ``x`` itself is the row
    ``t = -inf`` when ``alpha != 0``). Eager: per chunk ``T = max(x, t)`` (``(r, chunk)`` scratch)
    and one matrix-vector product ``beta + T^T w``; a single hinge (ReLU itself) is one clamp.
    Large CPU inputs: the fused kernel (see ``FUSED_MIN``).
    """
    alpha, beta, hinges = _hinges(a0, a, b, c)
    hinges = [(t, w) for t, w in hinges if w != 0.0]
    if alpha != 0.0:
        hinges.append((-math.inf, alpha))  # max(x, -inf) = x
    xf = x.reshape(-1)
    n = xf.numel()
    if not hinges:
        return torch.full_like(x, beta)
    if len(hinges) == 1:  # e.g. ReLU itself: one clamp, then scale and shift only if needed
        t, w = hinges[0]
        out = torch.clamp_min(xf, t)
        if w != 1.0:
            out.mul_(w)
        if beta != 0.0:
            out.add_(beta)
        return out.view_as(x)
    r = len(hinges)
    packed = torch.tensor(  # each float rounded once, straight to x's dtype
        [*(t for t, _ in hinges), *(w for _, w in hinges), beta], dtype=x.dtype, device=x.device
    )
    ts, ws, b0 = packed[:r], packed[r : 2 * r], packed[2 * r]  # (r,), (r,), ()
    out = torch.empty_like(xf)
    start = _fused_split(xf, fused)
    if start:
        rows = (xf[:start].view(-1, FUSED_COLS), out[:start].view(-1, FUSED_COLS))
        if not _run_fused("forward", *rows, ts, ws, b0)[0]:
            start = 0
    if start < n:
        T = _scratch(r, n - start, x.dtype, x.device)
        chunk, tcol = T.shape[1], ts.unsqueeze(1)
        for s, e in _chunks(start, n, chunk):
            xc = xf if e - s == n else xf[s:e]  # one chunk: no slicing (a small layer)
            Tc = T if e - s == chunk else T[:, : e - s]
            torch.maximum(xc, tcol, out=Tc)
            torch.addmv(b0, Tc.T, ws, out=out if e - s == n else out[s:e])
    return out.view_as(x)


def _hinge_backward(
    x: Tensor,
    a: list[float],
    b: list[float],
    c: list[float],
    grad: Tensor,
    need_x: bool,
    fused: bool | None = None,
) -> tuple[Tensor | None, Tensor]:
    """Gradients of :func:`_hinge_forward`: ``dL/dx`` (or None) and, packed like ``theta``,
    ``[dL/da0, dL/da, dL/db, dL/dc]`` (a float64 ``(3k + 1,)`` tensor on ``x``'s device).

    Eager, per chunk: step masks ``M = [x > t]`` (``(r, chunk)``; row 0 is ``t = -inf``, all
    ones), the sums ``M g`` and ``M (g x)`` (chunk sums added in float64), and
    ``dL/dx = g * (M^T [alpha, w])``; large CPU inputs: one fused pass. On unit ``j``'s active
    set ``P_j`` (``x > t_j`` for ``b_j > 0``, ``x < t_j`` for ``b_j < 0``):
    ``dL/da_j = b_j S^x_j + c_j S^1_j``, ``dL/db_j = a_j S^x_j``, ``dL/dc_j = a_j S^1_j`` with
    ``S^1_j = sum_{P_j} g``, ``S^x_j = sum_{P_j} g x``; ``dL/da0 = sum g``.
    """
    al, bl, cl = a, b, c  # short names for the formulas below
    k = len(al)
    alpha, _, _ = _hinges(0.0, al, bl, cl)
    units = [j for j in range(k) if bl[j] != 0.0]
    xf, gf = x.reshape(-1), grad.reshape(-1)
    n = xf.numel()
    r = len(units) + 1
    packed = torch.tensor(
        [-math.inf, *(-cl[j] / bl[j] for j in units), alpha, *(al[j] * abs(bl[j]) for j in units)],
        dtype=x.dtype,
        device=x.device,
    )
    ts, slopes = packed[:r], packed[r:]  # (r,), (r,)
    gx = torch.empty_like(xf)
    parts: list[Tensor] = []  # (rows, 2, r) partial sums: M g, M (g x)
    start = _fused_split(xf, fused)
    if start:
        views = (t[:start].view(-1, FUSED_COLS) for t in (xf, gf, gx))
        ok, got = _run_fused("backward", *views, ts[1:], slopes)
        if ok:
            parts.append(torch.stack(got, 1))
        else:
            start = 0
    if start < n:
        work = _scratch(r + 1, n - start, x.dtype, x.device)
        M, gp = work[:-1], work[-1]  # step masks (r, chunk) and g * x (chunk,)
        chunk, tcol = work.shape[1], ts.unsqueeze(1)
        sums = torch.empty(-(-(n - start) // chunk), 2, r, dtype=x.dtype, device=x.device)
        for i, (s, e) in enumerate(_chunks(start, n, chunk)):
            whole = e - s == n  # one chunk: no slicing (a small layer)
            xc, gc, gxc = (xf, gf, gx) if whole else (xf[s:e], gf[s:e], gx[s:e])
            Mc, gpc = (M, gp) if e - s == chunk else (M[:, : e - s], gp[: e - s])
            torch.gt(xc, tcol, out=Mc)
            torch.mul(gc, xc, out=gpc)
            torch.mv(Mc, gc, out=sums[i, 0])
            torch.mv(Mc, gpc, out=sums[i, 1])
            torch.mv(Mc.T, slopes, out=gxc)
            gxc.mul_(gc)
        parts.append(sums)
    tot = (parts[0] if len(parts) == 1 else torch.cat(parts)).to(torch.float64).sum(0).tolist()
    total1, totalx = tot[0][0], tot[1][0]
    s1, sx = [0.0] * k, [0.0] * k
    for i, j in enumerate(units):
        s1[j], sx[j] = tot[0][i + 1], tot[1][i + 1]
    for j in range(k):
        if bl[j] < 0:  # active on the other side
            s1[j], sx[j] = total1 - s1[j], totalx - sx[j]
        elif bl[j] == 0.0:
            s1[j], sx[j] = (total1, totalx) if cl[j] > 0 else (0.0, 0.0)
    grads = torch.tensor(
        [
            total1,
            *(bl[j] * sx[j] + cl[j] * s1[j] for j in range(k)),
            *(al[j] * sx[j] for j in range(k)),
            *(al[j] * s1[j] for j in range(k)),
        ],
        dtype=torch.float64,
    ).to(device=x.device)
    return (gx.view_as(x) if need_x else None), grads


class _VAFLayerReLU(torch.autograd.Function):
    """Fast path: one shared ``theta = [a0, a, b, c]`` (``(3k + 1,)``) and ReLU hidden units.

    Saves only ``x`` and ``theta``; eager temporaries are ``(r, chunk)`` scratch rows
    (:func:`_scratch`); the gradient of ``theta`` comes back as one packed tensor.
    Old-style (``forward(ctx, ...)``, no ``setup_context``): ``apply`` then skips a per-call
    ``inspect.signature`` bind, which is a measurable share of a small layer's time. The module
    routes torch.func transforms and torch.compile to :func:`vaf_reference` instead. With
    ``create_graph=True`` the backward is the reference formula's, so it is differentiable.
    """

    @staticmethod
    def forward(ctx: Any, x: Tensor, theta: Tensor, fused: bool | None) -> Tensor:  # type: ignore[override]
        ctx.save_for_backward(x, theta)
        ctx.fused = fused
        a0, a, b, c = _split(theta.tolist())
        return _hinge_forward(x, a0, a, b, c, fused)

    @staticmethod
    def backward(ctx: Any, grad: Tensor):  # type: ignore[override]
        x, theta = ctx.saved_tensors
        if torch.is_grad_enabled():  # create_graph=True: a backward that is itself differentiable
            return (*_reference_vjp(ctx, grad, x, theta), None)
        _, a, b, c = _split(theta.tolist())
        gx, gtheta = _hinge_backward(x, a, b, c, grad, ctx.needs_input_grad[0], ctx.fused)
        return gx, gtheta.to(dtype=theta.dtype, device=theta.device), None


def _split(p: Any) -> tuple[Any, Any, Any, Any]:
    """``[a0, a_1..a_k, b_1..b_k, c_1..c_k]`` -> ``(a0, a, b, c)`` (a list, or a 1-D tensor)."""
    k = (len(p) - 1) // 3
    return p[0], p[1 : k + 1], p[k + 1 : 2 * k + 1], p[2 * k + 1 :]


def _reference_vjp(ctx: Any, grad: Tensor, x: Tensor, theta: Tensor) -> tuple[Tensor | None, ...]:
    """``grad^T d vaf_reference / d (x, theta)`` built with a graph (double backward), ReLU units.

    Inside a ``create_graph=True`` backward the saved inputs keep their autograd identity, so the
    returned gradients are differentiable functions of them.
    """
    needs = ctx.needs_input_grad[:2]
    with torch.enable_grad():
        a0, a, b, c = _split(theta)
        y = vaf_reference(x, a0, a, b, c, "relu")
        inputs = (x, theta)
        got = iter(
            torch.autograd.grad(
                y,
                [t for t, need in zip(inputs, needs) if need],
                grad,
                create_graph=True,
                allow_unused=True,
            )
        )
    return tuple(next(got) if need else None for need in needs)


# ----------------------------------------------------------------------------------------------
# Initialisation
# ----------------------------------------------------------------------------------------------


def _default_units(k: int, hidden: str, lo: float, hi: float) -> tuple[np.ndarray, np.ndarray]:
    """Spread-out hidden units: breakpoints (ReLU) or centres (tanh) evenly in ``(lo, hi)``."""
    t = np.linspace(lo, hi, k + 2)[1:-1] if k > 0 else np.zeros(0)
    sign = np.where(np.arange(k) % 2 == 0, 1.0, -1.0)
    scale = 1.0 if hidden == "relu" else 4.0 / max(hi - lo, 1e-12) * max(k, 1) ** 0.5
    b = sign * scale
    return b, -b * t


@functools.lru_cache(maxsize=64)
def _fit_cached(name: str, k: int, hidden: str, lo: float, hi: float) -> tuple[float, ...]:
    return tuple(_fit(INITS[name], k, hidden, lo, hi).tolist())


def _lbfgs(params: Tensor, err: Callable[[Tensor], Tensor], max_iter: int) -> Tensor:
    """Minimise ``err(params)`` (a leaf requiring grad) by deterministic full-batch L-BFGS."""
    opt = torch.optim.LBFGS([params], lr=1.0, max_iter=max_iter, line_search_fn="strong_wolfe")

    def closure() -> Tensor:
        opt.zero_grad()
        v = err(params)
        v.backward()
        return v

    opt.step(closure)
    return params.detach()


def _fit(fn: Callable[[Tensor], Tensor], k: int, hidden: str, lo: float, hi: float) -> np.ndarray:
    """Least-squares fit of ``(a0, a, b, c)`` (flattened, ``3k + 1``) to ``fn`` on ``[lo, hi]``.

    Linear least squares for ``(a0, a)`` with spread-out units, then a deterministic float64
    L-BFGS refinement of all parameters (kept only if it lowers the error).
    """
    z = torch.linspace(lo, hi, 801, dtype=torch.float64)
    with torch.no_grad():
        target = torch.as_tensor(fn(z), dtype=torch.float64)
    if target.shape != z.shape or not torch.isfinite(target).all():
        raise InvalidInput(
            "init callable must map a 1-D float tensor to a finite tensor of the same shape"
        )
    b0, c0 = _default_units(k, hidden, lo, hi)
    b = torch.tensor(b0, dtype=torch.float64)
    c = torch.tensor(c0, dtype=torch.float64)
    g = _g(hidden)
    basis = torch.cat(
        [torch.ones(z.shape[0], 1, dtype=torch.float64), g(z[:, None] * b + c)], dim=1
    )
    coef = torch.linalg.lstsq(basis, target[:, None]).solution[:, 0]
    params = torch.cat([coef, b, c]).clone().requires_grad_(True)

    def err(p: Tensor) -> Tensor:
        a0, a, bb, cc = _split(p)
        return (
            (vaf_reference(z, a0, a[:, None], bb[:, None], cc[:, None], hidden) - target) ** 2
        ).mean()

    start = float(err(params.detach()))
    p = _lbfgs(params, err, max_iter=300)
    if not (torch.isfinite(p).all() and float(err(p)) < start):
        p = torch.cat([coef, b, c])
    return p.numpy()


# ----------------------------------------------------------------------------------------------
# The module
# ----------------------------------------------------------------------------------------------


def _check_size(shape: tuple[int, ...], k: int) -> None:
    total = math.prod(shape) * (3 * k + 1)
    if total > MAX_PARAMETERS:
        raise InvalidInput(
            f"a VAF with k={k} over units {shape} holds {total:,} parameters, more than nngeom's "
            f"limit of {MAX_PARAMETERS:,}; share per layer or per channel instead"
        )


class VAF(nn.Module):
    """Trainable activation ``a_0 + sum_j a_j g(b_j z + c_j)`` computed by a 1 -> k -> 1 subnetwork.

    Args:
        k: hidden units of the subnetwork (``k >= 1``); ``3k + 1`` parameters per shared copy.
        share: ``"layer"`` (one copy, the paper), ``"channel"`` (one per entry of ``channel_dim``)
            or ``"neuron"`` (one per feature, i.e. per entry of ``x.shape[1:]``).
        init: ``"relu"`` (exact: ``a_1 = b_1 = 1``, ``c_1 = 0``, the other ``a_j = 0`` with
            spread-out ``b_j, c_j``; with ``hidden="relu"`` the module equals ``nn.ReLU`` bit for
            bit), ``"tanh"`` (exact with ``hidden="tanh"``), ``"identity"``, ``"gelu"``, ``"silu"``
            or a callable ``f(z: Tensor) -> Tensor``: least-squares fit on ``fit_range``.
        hidden: the hidden unit ``g``: ``"relu"`` (piecewise linear) or ``"tanh"``.
        channel_dim: the channel dimension for ``share="channel"`` (1 for ``(N, C, ...)``).
        num_channels: for ``share="channel"``, the number of channels; for ``share="neuron"``, the
            per-example feature shape (int or tuple). If None the parameters are created on the first
            call (run one forward pass before building the optimizer).
        fit_range: the interval of the least-squares fit for non-exact inits.
        fused: layer sharing with ReLU units only: ``None`` (default) runs inputs of at least
            ``FUSED_MIN`` elements on CPU through two kernels that ``torch.compile`` generates
            once per process (a few seconds on first use; one pass forward, one backward),
            falling back to the eager kernels with a warning where compiling fails; ``True``
            uses them from ``2 * FUSED_COLS`` elements; ``False`` never (eager kernels only).

    Input ``x``: any shape ``(N, ...)``; output: same shape. Parameters: ``a0`` (shape ``S``),
    ``a, b, c`` (shape ``S + (k,)``), see the module docstring.

    Differentiation: inputs of at least ``SMALL`` elements go through custom autograd Functions
    that save only ``x`` and recompute the rest in backward (layer sharing with ReLU units takes a
    chunked path whose temporaries stay far below one input-sized tensor); smaller inputs use plain
    autograd on :func:`vaf_reference` (fewer Python-level ops, faster there); under
    ``torch.compile`` the plain formula is traced and fused by the compiler, and inside torch.func
    transforms (vmap, jvp, grad) the plain formula is used too. Double backward
    (``create_graph=True``) is exact on every path.

    >>> import torch, nngeom as ng
    >>> act = ng.VAF(k=3, init="relu")
    >>> x = torch.linspace(-2, 2, 5)
    >>> act(x).shape, sum(p.numel() for p in act.parameters())
    (torch.Size([5]), 10)
    """

    nngeom_elementwise = True
    nngeom_name = "vaf"
    nngeom_trainable_activation = True

    def __init__(
        self,
        k: int = 3,
        share: str = "layer",
        init: str | Callable[[Tensor], Tensor] = "relu",
        hidden: str = "relu",
        channel_dim: int = 1,
        num_channels: int | Sequence[int] | None = None,
        *,
        fit_range: tuple[float, float] = (-3.0, 3.0),
        dtype: torch.dtype | None = None,
        device: torch.device | str | None = None,
        fused: bool | None = None,
    ) -> None:
        super().__init__()
        if fused not in (None, True, False):
            raise InvalidInput(f"fused must be None (automatic), True or False, got {fused!r}")
        self.fused = fused
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise InvalidInput(f"VAF needs k >= 1 hidden units (an int), got k={k!r}")
        if k > 10_000:
            raise InvalidInput(f"k={k} hidden units per activation is absurd; use k <= 10000")
        if share not in SHARES:
            raise InvalidInput(f"unknown sharing mode share={share!r}; use one of {list(SHARES)}")
        if hidden not in HIDDEN:
            raise InvalidInput(f"unknown hidden unit hidden={hidden!r}; use one of {list(HIDDEN)}")
        if not callable(init) and not (isinstance(init, str) and init in INITS):
            raise InvalidInput(
                f"unknown init {init!r}; use one of {sorted(INITS)} or a callable f(z) -> tensor"
            )
        if isinstance(channel_dim, bool) or not isinstance(channel_dim, int):
            raise InvalidInput(f"channel_dim must be an int, got {channel_dim!r}")
        lo, hi = _fit_range(fit_range)
        if dtype is not None and (
            not isinstance(dtype, torch.dtype) or not dtype.is_floating_point
        ):
            raise InvalidInput(f"dtype must be a real floating-point torch dtype, got {dtype!r}")
        if device is not None:
            device = check_device(device)
        self.k, self.share, self.hidden, self.channel_dim = k, share, hidden, channel_dim
        self.init = init if isinstance(init, str) else getattr(init, "__name__", "callable")
        self.fit_range = (lo, hi)
        self._base = torch.tensor(self._initial(init, k, hidden, lo, hi), dtype=torch.float64)
        if not bool(torch.isfinite(self._base).all()):
            raise InvalidInput(
                f"fitting init={self.init!r} on fit_range={fit_range!r} gave non-finite "
                "parameters; use a smaller fit_range"
            )
        self._factory = {"dtype": dtype or torch.get_default_dtype(), "device": device}
        shape: tuple[int, ...] | None
        if share == "layer":
            shape = ()
        elif num_channels is None:
            shape = None
        elif share == "channel":
            if (
                isinstance(num_channels, bool)
                or not isinstance(num_channels, int)
                or num_channels < 1
            ):
                raise InvalidInput(f"num_channels must be a positive int, got {num_channels!r}")
            shape = (num_channels,)
        else:
            try:
                shape = (num_channels,) if isinstance(num_channels, int) else tuple(num_channels)
            except TypeError:
                shape = ()
            if not shape or any(
                isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in shape
            ):
                raise InvalidInput(
                    f"num_channels must be a positive int or shape, got {num_channels!r}"
                )
        self.unit_shape: tuple[int, ...] | None = None
        if shape is not None:
            _check_size(shape, k)
            self._materialize(shape)
        else:
            self.register_parameter("theta", None)

    @staticmethod
    def _initial(init: Any, k: int, hidden: str, lo: float, hi: float) -> np.ndarray:
        if isinstance(init, str) and init == hidden:  # exact
            b, c = _default_units(k, hidden, lo, hi)
            if hidden == "relu" and k > 1:  # the a_j = 0 units: breakpoints away from unit 0's
                t = lo + (hi - lo) * (np.arange(1, k) - 0.5) / (k - 0.5)
                b[1:] = np.where(np.arange(1, k) % 2 == 0, 1.0, -1.0)
                c[1:] = -b[1:] * t
            a = np.zeros(k)
            a[0], b[0], c[0] = 1.0, 1.0, 0.0
            return np.concatenate([[0.0], a, b, c])
        if isinstance(init, str):
            return np.array(_fit_cached(init, k, hidden, lo, hi))
        return _fit(init, k, hidden, lo, hi)

    def _materialize(self, shape: tuple[int, ...]) -> None:
        k, base = self.k, self._base
        f = self._factory

        self.theta = nn.Parameter(base.to(**f).expand((*shape, 3 * k + 1)).clone())
        self.unit_shape = shape

    # -- the parameters, as views of theta ------------------------------------------------------
    def _theta(self) -> Tensor:
        self._require_materialized()
        return self.theta

    @property
    def a0(self) -> Tensor:
        """Output bias ``a_0``, shape ``S`` (a view of ``theta``)."""
        return self._theta()[..., 0]

    @property
    def a(self) -> Tensor:
        """Output weights ``a_j``, shape ``S + (k,)`` (a view of ``theta``)."""
        return self._theta()[..., 1 : self.k + 1]

    @property
    def b(self) -> Tensor:
        """Hidden weights ``b_j``, shape ``S + (k,)`` (a view of ``theta``)."""
        return self._theta()[..., self.k + 1 : 2 * self.k + 1]

    @property
    def c(self) -> Tensor:
        """Hidden biases ``c_j``, shape ``S + (k,)`` (a view of ``theta``)."""
        return self._theta()[..., 2 * self.k + 1 :]

    # -- nngeom's MLP view ---------------------------------------------------------------------
    @property
    def nngeom_piecewise_linear(self) -> bool:
        return self.hidden == "relu"

    def nngeom_piecewise_linear_form(self, width: int) -> tuple[Tensor, Tensor, Tensor]:
        """Exact piecewise-linear form on a layer of ``width`` units (see ``nets.piecewise_linear_form``).

        Returns float64 ``(breakpoints (width, m), slopes (width, m+1), intercepts (width, m+1))``.
        Only breakpoints where the slope really changes are listed (units with ``b_j = 0`` or
        ``a_j = 0`` add none; coincident breakpoints are merged); units with fewer than ``m``
        breakpoints are padded by repeating their last one (a zero-width piece, same slope).
        """
        if self.hidden != "relu":
            raise UnsupportedModel(
                "a VAF with hidden='tanh' is not piecewise linear: knots and linear regions are "
                "undefined for it (use VAF(hidden='relu'))"
            )
        self._require_materialized()
        per_unit = self._unit_params(width)
        forms = [_unit_form(*p) for p in per_unit]
        m = max((len(f[0]) for f in forms), default=0)
        bps, sls, ics = [], [], []
        for bp, sl, ic in forms:
            if len(bp) < m:
                pad = m - len(bp)
                last = bp[-1] if len(bp) else 0.0
                bp = bp + [last] * pad
                sl = sl + [sl[-1]] * pad
                ic = ic + [ic[-1]] * pad
            bps.append(bp)
            sls.append(sl)
            ics.append(ic)
        f64 = torch.float64
        return (
            torch.tensor(bps, dtype=f64).reshape(width, m),
            torch.tensor(sls, dtype=f64).reshape(width, m + 1),
            torch.tensor(ics, dtype=f64).reshape(width, m + 1),
        )

    def _unit_params(self, width: int) -> list[tuple[float, list[float], list[float], list[float]]]:
        """``(a0, a, b, c)`` as float64 Python numbers for each of ``width`` units of a (N, width) layer."""
        if isinstance(width, bool) or not isinstance(width, int) or width < 1:
            raise InvalidInput(f"width must be a positive int, got {width!r}")
        a0 = self.a0.detach().double().cpu()
        a, b, c = (p.detach().double().cpu() for p in (self.a, self.b, self.c))
        if self.share == "layer":
            one = (float(a0), a.tolist(), b.tolist(), c.tolist())
            return [one] * width
        if self.unit_shape != (width,) or (
            self.share == "channel" and self.channel_dim not in (1, -1)
        ):
            raise InvalidInput(
                f"this VAF has per-{self.share} parameters of shape {self.unit_shape} (channel_dim="
                f"{self.channel_dim}); a fully connected layer of width {width} needs shape ({width},)"
            )
        return [(float(a0[i]), a[i].tolist(), b[i].tolist(), c[i].tolist()) for i in range(width)]

    # -- forward -----------------------------------------------------------------------------
    def _require_materialized(self) -> None:
        if self.unit_shape is None:
            raise InvalidInput(
                f"this share={self.share!r} VAF has no parameters yet: pass num_channels= or run one "
                "forward pass first"
            )

    def _shape_for(self, x: Tensor) -> tuple[int, ...]:
        if self.share == "layer":
            return ()
        if x.ndim < 2:
            raise InvalidInput(
                f"share={self.share!r} needs an input of shape (N, ...) with at least 2 dimensions, "
                f"got shape {tuple(x.shape)}"
            )
        if self.share == "channel":
            cd = self.channel_dim
            if not -x.ndim < cd < x.ndim or cd in (0, -x.ndim):
                raise InvalidInput(
                    f"channel_dim={cd} is out of range for an input of shape {tuple(x.shape)} "
                    f"(valid: 1..{x.ndim - 1}, dimension 0 is the batch)"
                )
            return (int(x.shape[cd]),)
        return tuple(int(s) for s in x.shape[1:])

    def _broadcast(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Parameters viewed for broadcasting against ``x``: a0 ``B``, a/b/c ``(k, *B)``."""
        if self.share == "layer":
            return self.a0, self.a, self.b, self.c
        k = self.k
        if self.share == "channel":
            cd = self.channel_dim % x.ndim
            tail = (1,) * (x.ndim - cd - 1)
            bshape = (self.unit_shape[0], *tail)
        else:
            bshape = self.unit_shape
        a0 = self.a0.reshape(bshape)
        a, b, c = (p.movedim(-1, 0).reshape(k, *bshape) for p in (self.a, self.b, self.c))
        return a0, a, b, c

    def forward(self, x: Tensor) -> Tensor:
        if not isinstance(x, Tensor) or not x.is_floating_point():
            raise InvalidInput(
                f"VAF expects a real floating-point tensor, got "
                f"{x.dtype if isinstance(x, Tensor) else type(x).__name__}"
            )
        shape = self._shape_for(x)
        if self.unit_shape is None:
            _check_size(shape, self.k)
            self._factory = {"dtype": x.dtype, "device": x.device}
            self._materialize(shape)
        elif shape != self.unit_shape:
            what = "channel count" if self.share == "channel" else "per-example feature shape"
            raise InvalidInput(
                f"share={self.share!r} VAF has parameters for {what} {self.unit_shape} (fixed at "
                f"construction or on the first call) but got an input of shape {tuple(x.shape)} "
                f"with {what} {shape}; use one VAF per layer"
            )
        # under torch.compile the plain formula is traced (the compiler fuses it and plans its own
        # recomputation); inside torch.func transforms it is differentiated like any formula
        plain = x.numel() < SMALL or torch.compiler.is_compiling() or _functorch_active()
        if not plain and self.share == "layer" and self.hidden == "relu" and x.numel() >= FAST_MIN:
            return _VAFLayerReLU.apply(x, self.theta, self.fused)
        a0, a, b, c = self._broadcast(x)
        if plain:
            return vaf_reference(x, a0, a, b, c, self.hidden)
        return _VAFFunction.apply(x, a0, a, b, c, self.hidden)

    def extra_repr(self) -> str:
        return (
            f"k={self.k}, share={self.share!r}, init={self.init!r}, hidden={self.hidden!r}"
            + (f", channel_dim={self.channel_dim}" if self.share == "channel" else "")
            + (f", units={self.unit_shape}" if self.share != "layer" else "")
        )

    # -- analysis and display ----------------------------------------------------------------
    def evaluate(
        self, z: Tensor | np.ndarray | Sequence[float], unit: int | None = None
    ) -> np.ndarray:
        """The activation's values at scalar inputs ``z`` (1-D), for one unit (layer: ignored).

        Returns a float64 array of shape ``(len(z),)``.
        """
        self._require_materialized()
        if isinstance(z, Tensor):
            check_real_tensor("z", z)
            z = z.detach().cpu().numpy()
        try:
            raw = np.asarray(z)
            if raw.dtype.kind == "c":
                raise InvalidInput("z is complex: pass real numbers")
            zt = torch.as_tensor(raw.astype(np.float64))
        except (TypeError, ValueError) as exc:
            if isinstance(exc, InvalidInput):
                raise
            raise InvalidInput("z must be a 1-D sequence of real numbers") from None
        if zt.ndim != 1:
            raise InvalidInput(f"z must be 1-D, got shape {tuple(zt.shape)}")
        a0, a, b, c = self._unit(unit)
        return vaf_reference(zt, a0, a[:, None], b[:, None], c[:, None], self.hidden).numpy()

    def _unit(self, unit: int | None) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        ps = [p.detach().double().cpu() for p in (self.a0, self.a, self.b, self.c)]
        if self.share == "layer":
            return ps[0], ps[1], ps[2], ps[3]
        n = int(np.prod(self.unit_shape))
        u = 0 if unit is None else check_int("unit", unit)
        if not 0 <= u < n:
            raise InvalidInput(f"unit must be in 0..{n - 1}, got {unit}")
        return ps[0].reshape(-1)[u], *(p.reshape(n, self.k)[u] for p in ps[1:])

    @property
    def n_units(self) -> int:
        """Number of independent copies of the subnetwork (1 for layer sharing)."""
        self._require_materialized()
        return int(np.prod(self.unit_shape)) if self.unit_shape else 1

    def knots(self, unit: int | None = None) -> np.ndarray:
        """Sorted positions where the learned (ReLU-hidden) activation's slope changes.

        For per-channel / per-neuron sharing, ``unit`` selects the copy (flat index; default 0).
        Raises :class:`UnsupportedModel` for ``hidden="tanh"`` (not piecewise linear).
        """
        if self.hidden != "relu":
            raise UnsupportedModel("a VAF with hidden='tanh' is smooth: it has no knots")
        self._require_materialized()
        a0, a, b, c = self._unit(unit)
        bp, _, _ = _unit_form(float(a0), a.tolist(), b.tolist(), c.tolist())
        return np.asarray(bp, dtype=np.float64)

    def plot(
        self,
        ax: Any = None,
        lo: float = -3.0,
        hi: float = 3.0,
        units: Iterable[int] | None = None,
        n: int = 401,
        **kwargs: Any,
    ) -> Any:
        """Plot the learned shape on ``[lo, hi]`` (knots marked for ReLU hidden units).

        ``units``: which copies to draw for per-channel/neuron sharing (default: up to the first 8).
        Returns the matplotlib Axes.
        """
        import matplotlib.pyplot as plt

        lo, hi = check_number("lo", lo), check_number("hi", hi)
        n = check_int("n", n, minimum=2, maximum=1_000_000)
        if not lo < hi:
            raise InvalidInput(f"need lo < hi, got {lo}, {hi}")
        if ax is None:
            _, ax = plt.subplots(figsize=(4, 3))
        z = np.linspace(lo, hi, n)
        chosen = (
            [None]
            if self.share == "layer"
            else list(units if units is not None else range(min(8, self.n_units)))
        )
        for u in chosen:
            label = kwargs.pop("label", None) if u is None or u == chosen[0] else None
            line = ax.plot(
                z,
                self.evaluate(z, u),
                label=label or (None if u is None else f"unit {u}"),
                **kwargs,
            )
            if self.hidden == "relu":
                kn = self.knots(u)
                kn = kn[(kn > lo) & (kn < hi)]
                ax.plot(kn, self.evaluate(kn, u), "o", ms=3, color=line[0].get_color())
        ax.set_xlabel("z")
        ax.set_ylabel("VAF(z)")
        return ax

    def export(self) -> VAFExport:
        """This activation in standard ops only (a sum of ReLUs / tanhs): for ONNX, TorchScript,
        ``torch.export``. The result computes the same function (parameters copied)."""
        self._require_materialized()
        return VAFExport(self)


def _unit_form(
    a0: float, a: list[float], b: list[float], c: list[float]
) -> tuple[list[float], list[float], list[float]]:
    """Piecewise-linear form of one ReLU-hidden copy: (breakpoints, slopes, intercepts), float64.

    Only breakpoints with a nonzero slope change are kept (coincident ones merged).
    """
    slope0, icept0 = 0.0, float(a0)
    changes: dict[float, list[float]] = {}
    for aj, bj, cj in zip(a, b, c):
        if bj == 0.0:
            icept0 += aj * max(cj, 0.0)
            continue
        if bj < 0:  # active on the left
            slope0 += aj * bj
            icept0 += aj * cj
        t = -cj / bj
        d = changes.setdefault(t, [0.0, 0.0])
        sgn = (
            1.0 if bj > 0 else -1.0
        )  # crossing t rightwards switches the unit on (b>0) / off (b<0)
        d[0] += sgn * aj * bj
        d[1] += sgn * aj * cj
    bps, slopes, icepts = [], [slope0], [icept0]
    for t in sorted(changes):
        ds, di = changes[t]
        if ds == 0.0:
            continue
        bps.append(t)
        slopes.append(slopes[-1] + ds)
        icepts.append(icepts[-1] + di)
    return bps, slopes, icepts


class VAFExport(nn.Module):
    """A VAF written with standard ops only (``a0 + sum_j a_j g(b_j x + c_j)`` by broadcasting).

    Scriptable and traceable; joins nngeom's MLP view like :class:`VAF` for ``share="layer"`` and
    for per-unit sharing on fully connected layers.

    >>> import torch, nngeom as ng
    >>> act = ng.VAF(k=3)
    >>> exp = ng.VAFExport(act)
    >>> x = torch.linspace(-2, 2, 5)
    >>> torch.allclose(exp(x), act(x), atol=1e-6)
    True
    """

    nngeom_elementwise = True
    nngeom_name = "vaf"
    nngeom_trainable_activation = True

    def __init__(self, vaf: VAF) -> None:
        if not isinstance(vaf, VAF):
            raise InvalidInput(
                f"VAFExport needs an nngeom.VAF to export, got {type(vaf).__name__}; to export "
                "every VAF inside a model use nngeom.export_activations(model)"
            )
        vaf._require_materialized()
        check_model_tensors(vaf)
        super().__init__()
        self.k, self.share, self.hidden, self.channel_dim = (
            vaf.k,
            vaf.share,
            vaf.hidden,
            vaf.channel_dim,
        )
        self.unit_shape = vaf.unit_shape
        self.use_relu = vaf.hidden == "relu"
        for name in ("a0", "a", "b", "c"):
            setattr(self, name, nn.Parameter(getattr(vaf, name).detach().clone()))

    @property
    def nngeom_piecewise_linear(self) -> bool:
        return self.hidden == "relu"

    def nngeom_piecewise_linear_form(self, width: int) -> tuple[Tensor, Tensor, Tensor]:
        return VAF.nngeom_piecewise_linear_form(self, width)  # type: ignore[arg-type]

    def _require_materialized(self) -> None:  # same interface as VAF for the form
        return None

    _unit_params = VAF._unit_params

    def forward(self, x: Tensor) -> Tensor:
        a0, a, b, c = self.a0, self.a, self.b, self.c
        if self.share == "channel":
            cd = self.channel_dim % x.dim()
            n_tail = x.dim() - cd - 1
            shape = [a0.shape[0]] + [1] * n_tail
            a0 = a0.reshape(shape)
            a = a.t().reshape([self.k] + shape)
            b = b.t().reshape([self.k] + shape)
            c = c.t().reshape([self.k] + shape)
        elif self.share == "neuron":
            a = a.movedim(-1, 0)
            b = b.movedim(-1, 0)
            c = c.movedim(-1, 0)
        out = a0 + torch.zeros_like(x)
        for j in range(self.k):
            h = b[j] * x + c[j]
            h = torch.relu(h) if self.use_relu else torch.tanh(h)
            out = out + a[j] * h
        return out


# ----------------------------------------------------------------------------------------------
# Baselines
# ----------------------------------------------------------------------------------------------


class SwishBeta(nn.Module):
    """Swish with a trainable ``beta``: ``x * sigmoid(beta * x)`` (one parameter, init ``beta``).

    >>> import torch, nngeom as ng
    >>> act = ng.SwishBeta(beta=1.0)
    >>> act(torch.tensor([0.0, 1.0], dtype=torch.float64)).detach().round(decimals=4)
    tensor([0.0000, 0.7311], dtype=torch.float64)
    """

    nngeom_trainable_activation = True

    def __init__(self, beta: float = 1.0) -> None:
        super().__init__()
        self.beta = nn.Parameter(torch.tensor(check_number("beta", beta)))

    def forward(self, x: Tensor) -> Tensor:
        return x * torch.sigmoid(self.beta * x)


@functools.lru_cache(maxsize=8)
def _rational_init(target: str, lo: float, hi: float) -> tuple[float, ...]:
    """Safe-PAU (5, 4) coefficients fitted to ``target`` on ``[lo, hi]`` (float64, L-BFGS)."""
    z = torch.linspace(lo, hi, 801, dtype=torch.float64)
    y = INITS[target](z)
    # start: least squares for P with Q = 1, then refine P and Q jointly
    V = torch.stack([z**i for i in range(6)], dim=1)
    p0 = torch.linalg.lstsq(V, y[:, None]).solution[:, 0]
    q0 = torch.full((4,), 0.01, dtype=torch.float64)
    params = torch.cat([p0, q0]).requires_grad_(True)

    def err(p: Tensor) -> Tensor:
        return ((_rational(z, p[:6], p[6:]) - y) ** 2).mean()

    p = _lbfgs(params, err, max_iter=500)
    if not torch.isfinite(p).all():
        p = torch.cat([p0, q0])
    return tuple(p.tolist())


def _rational(x: Tensor, p: Tensor, q: Tensor) -> Tensor:
    num = p[5]
    for i in range(4, -1, -1):
        num = num * x + p[i]
    den = 1.0 + (q[0] * x).abs()
    xi = x
    for i in range(1, 4):
        xi = xi * x
        den = den + (q[i] * xi).abs()
    return num / den


class Rational(nn.Module):
    """Padé activation ``P(x) / Q(x)`` of degree (5, 4), "safe" form ``Q = 1 + sum_i |q_i x^i|``.

    10 parameters shared per layer (same as ``VAF(k=3)``); ``Q >= 1`` so there are no poles.
    ``init``: the activation it is least-squares fitted to on ``fit_range`` (default ReLU).

    >>> import torch, nngeom as ng
    >>> act = ng.Rational(init="relu")
    >>> act(torch.tensor([-2.0, 0.0, 2.0])).shape, sum(p.numel() for p in act.parameters())
    (torch.Size([3]), 10)
    """

    nngeom_trainable_activation = True

    def __init__(self, init: str = "relu", fit_range: tuple[float, float] = (-3.0, 3.0)) -> None:
        super().__init__()
        if not isinstance(init, str) or init not in INITS:
            raise InvalidInput(f"unknown init {init!r}; use one of {sorted(INITS)}")
        lo, hi = _fit_range(fit_range)
        coef = torch.tensor(_rational_init(init, lo, hi))
        if not bool(torch.isfinite(coef.float()).all()):
            raise InvalidInput(
                f"fitting init={init!r} on fit_range={fit_range!r} gave coefficients beyond "
                "float32; use a smaller fit_range"
            )
        self.p = nn.Parameter(coef[:6].float())
        self.q = nn.Parameter(coef[6:].float())

    def forward(self, x: Tensor) -> Tensor:
        return _rational(x, self.p, self.q)


BASELINES = ("relu", "prelu", "silu", "swish", "rational", "vaf")


def make_baseline(name: str, **kwargs: Any) -> nn.Module:
    """A fresh activation module by name: one of :data:`BASELINES` (``"vaf"``, ``"rational"``
    and ``"swish"`` pass ``kwargs`` to their class; the others take none).

    >>> import nngeom as ng
    >>> type(ng.make_baseline("vaf")).__name__, type(ng.make_baseline("rational")).__name__
    ('VAF', 'Rational')
    """
    if not isinstance(name, str) or name not in BASELINES:
        raise InvalidInput(f"unknown activation {name!r}; use one of {list(BASELINES)}")
    if kwargs and name in ("relu", "prelu", "silu"):
        raise InvalidInput(f"activation {name!r} takes no options, got {sorted(kwargs)}")
    try:
        return _make_baseline(name, **kwargs)
    except TypeError as exc:
        raise InvalidInput(f"activation {name!r} does not take these options: {exc}") from None


def _make_baseline(name: str, **kwargs: Any) -> nn.Module:
    if name == "relu":
        return nn.ReLU()
    if name == "prelu":
        return nn.PReLU()
    if name == "silu":
        return nn.SiLU()
    if name == "swish":
        return SwishBeta(**kwargs)
    if name == "rational":
        return Rational(**kwargs)
    if name == "vaf":
        return VAF(**kwargs)
    raise InvalidInput(f"unknown activation {name!r}; use one of {list(BASELINES)}")


def is_trainable_activation(module: nn.Module) -> bool:
    """True for VAF, the trainable baselines and ``nn.PReLU``."""
    return isinstance(module, nn.PReLU) or bool(
        getattr(module, "nngeom_trainable_activation", False)
    )


def param_groups(
    model: nn.Module,
    *,
    weight_decay: float = 0.0,
    activation_lr: float | None = None,
    activation_weight_decay: float = 0.0,
) -> list[dict[str, Any]]:
    """Optimizer parameter groups: the activation parameters apart, without weight decay.

    Returns ``[{"params": other, "weight_decay": weight_decay},
    {"params": activation params, "weight_decay": activation_weight_decay[, "lr": activation_lr]}]``
    (empty groups omitted). Pass it to ``torch.optim.*`` or ``nngeom.train(param_groups=...)``.
    Lazily-created VAF parameters must exist first (run one forward pass).

    >>> import torch, nngeom as ng
    >>> net = torch.nn.Sequential(ng.mlp([2, 4]), ng.VAF(k=3))
    >>> groups = ng.param_groups(net, weight_decay=1e-4)
    >>> [(len(g["params"]), g["weight_decay"]) for g in groups]
    [(2, 0.0001), (1, 0.0)]
    """
    if not isinstance(model, nn.Module):
        raise InvalidInput(f"param_groups needs an nn.Module, got {type(model).__name__}")
    if activation_lr is not None:
        activation_lr = check_number("activation_lr", activation_lr, minimum=0.0, strict_min=True)
    weight_decay = check_number("weight_decay", weight_decay, minimum=0.0)
    activation_weight_decay = check_number(
        "activation_weight_decay", activation_weight_decay, minimum=0.0
    )
    act_ids: set[int] = set()
    for m in model.modules():
        if is_trainable_activation(m):
            if isinstance(m, VAF) and m.unit_shape is None:
                raise InvalidInput(
                    "a VAF in the model has no parameters yet (share='channel'/'neuron' without "
                    "num_channels): run one forward pass before param_groups"
                )
            act_ids.update(id(p) for p in m.parameters())
    act, other = [], []
    for p in model.parameters():
        if p.requires_grad:
            (act if id(p) in act_ids else other).append(p)
    groups: list[dict[str, Any]] = []
    if other:
        groups.append({"params": other, "weight_decay": float(weight_decay)})
    if act:
        g: dict[str, Any] = {"params": act, "weight_decay": float(activation_weight_decay)}
        if activation_lr is not None:
            g["lr"] = float(activation_lr)
        groups.append(g)
    return groups


def export_activations(model: nn.Module) -> nn.Module:
    """A deep copy of ``model`` with every :class:`VAF` replaced by its standard-ops :class:`VAFExport`.

    >>> import torch, nngeom as ng
    >>> net = torch.nn.Sequential(ng.mlp([2, 4]), ng.VAF(k=3))
    >>> plain = ng.export_activations(net)
    >>> type(plain[1]).__name__, type(net[1]).__name__
    ('VAFExport', 'VAF')
    >>> x = torch.ones(3, 2)
    >>> torch.allclose(plain(x), net(x), atol=1e-6)
    True
    """
    if not isinstance(model, nn.Module):
        raise InvalidInput(f"export_activations needs an nn.Module, got {type(model).__name__}")
    for m in model.modules():
        if isinstance(m, VAF):
            m._require_materialized()
    out = copy.deepcopy(model)

    def swap(parent: nn.Module) -> None:
        for name, child in parent.named_children():
            if isinstance(child, VAF):
                setattr(parent, name, child.export())
            else:
                swap(child)

    if isinstance(out, VAF):
        return out.export()
    swap(out)
    return out
