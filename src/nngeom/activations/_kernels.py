"""The VAF formula ``a0 + sum_j a_j g(b_j x + c_j)`` and the kernels (code paths) computing it.

One formula, four kernels; :func:`choose_kernel` is the one place that picks a kernel for an
input (its thresholds are this module's constants):

* ``"reference"``: :func:`vaf_reference` in plain torch ops, differentiated by autograd. Small
  inputs (fewer Python-level operations), ``torch.compile`` (the compiler fuses the formula and
  plans its own recomputation) and torch.func transforms (vmap, jvp, grad) use it.
* ``"generic"``: :func:`generic_vaf`, any sharing and either hidden unit; an autograd Function
  that saves only its inputs and recomputes the rest in backward.
* ``"hinge"``: :func:`hinge_vaf` for one layer-shared parameter vector and ReLU units. The
  formula is rewritten as ``alpha x + beta + sum_j w_j max(x, t_j)`` and computed in chunks on a
  reused scratch matrix, so its temporaries stay far below one input-sized tensor.
* ``"hinge_fused"``: the same, with the leading ``FUSED_COLS``-multiple of a large CPU input
  computed by two kernels that ``torch.compile`` generates once per process (:class:`FusedKernels`:
  one pass forward, one pass backward with every parameter sum); the rest of the input, and all
  of it once compiling has failed, by the ``"hinge"`` chunks.

Every kernel's double backward (``create_graph=True``) is exact: the custom backwards are
differentiable through the reference formula when a graph is being built.
"""

from __future__ import annotations

import math
import threading
import warnings
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from .._errors import InvalidInput

__all__ = [
    "KERNELS",
    "choose_kernel",
    "vaf_reference",
    "generic_vaf",
    "hinge_vaf",
    "FusedKernels",
    "FUSED_KERNELS",
    "split_theta",
    "SMALL",
    "CHUNK",
    "SCRATCH",
    "FUSED_MIN",
    "FUSED_COLS",
]

KERNELS = ("reference", "generic", "hinge", "hinge_fused")

# Inputs with fewer elements than SMALL take the "reference" kernel: plain autograd costs fewer
# Python-level operations there, and memory does not matter at that size.
SMALL = 1 << 14
# Elements per chunk of the "hinge" kernel: temporaries stay cache-sized. Its scratch rows (one
# per hinge) come from a reused per-thread buffer of at least SCRATCH elements, so a call
# allocates nothing but its outputs.
CHUNK = 1 << 17
SCRATCH = 1 << 19
# The smallest chunk the scratch buffer is cut into when many hinges share it.
MIN_CHUNK = 1024
# Automatic choice: CPU inputs of at least FUSED_MIN elements take the fused kernels, on their
# leading multiple of FUSED_COLS elements (rows of a (R, FUSED_COLS) matrix, R >= 2: a single row
# would be compiled as a special case).
FUSED_MIN = 1 << 20
FUSED_COLS = 4096
FUSED_MIN_ROWS = 2
# The dtypes the fused kernels are compiled for.
FUSED_DTYPES = (torch.float32, torch.float64)


def vaf_reference(
    x: Tensor, a0: Tensor, a: Tensor, b: Tensor, c: Tensor, hidden: str = "relu"
) -> Tensor:
    """The VAF formula in plain torch ops (autograd differentiates it; the export uses it).

    ``x``: any shape; ``a0``: broadcastable to ``x``; ``a, b, c``: ``(k, *B)`` with each slice
    ``a[j]`` broadcastable to ``x``. Returns ``a0 + sum_j a[j] * g(b[j] * x + c[j])``, shape of ``x``.

    >>> x = torch.tensor([-1.0, 0.5, 2.0])
    >>> one = torch.ones(1)
    >>> vaf_reference(x, torch.tensor(0.0), one, one, torch.zeros(1))  # ReLU itself
    tensor([0.0000, 0.5000, 2.0000])
    """
    g = torch.relu if hidden == "relu" else torch.tanh
    out = a0 + a[0] * g(b[0] * x + c[0])
    for j in range(1, a.shape[0]):
        out = out + a[j] * g(b[j] * x + c[j])
    return out


def split_theta(p: Any) -> tuple[Any, Any, Any, Any]:
    """``[a0, a_1..a_k, b_1..b_k, c_1..c_k]`` -> ``(a0, a, b, c)`` (a list, or a 1-D tensor).

    >>> split_theta([0.0, 1.0, 2.0, 3.0])
    (0.0, [1.0], [2.0], [3.0])
    """
    k = (len(p) - 1) // 3
    return p[0], p[1 : k + 1], p[k + 1 : 2 * k + 1], p[2 * k + 1 :]


# ----------------------------------------------------------------------------------------------
# The choice
# ----------------------------------------------------------------------------------------------


def functorch_active() -> bool:
    """True inside a torch.func transform (vmap, grad, jvp, ...)."""
    probe = getattr(torch._C, "_are_functorch_transforms_active", None)
    return bool(probe()) if probe is not None else False


def choose_kernel(
    numel: int,
    *,
    share: str,
    hidden: str,
    device: torch.device,
    dtype: torch.dtype,
    fused: bool | None = None,
    transformed: bool = False,
    forced: str | None = None,
) -> str:
    """The kernel (one of :data:`KERNELS`) that computes a VAF on an input of ``numel`` elements.

    Args:
        numel: the number of elements of the input.
        share, hidden: the VAF's sharing mode and hidden unit: the ``"hinge"`` kernels need
            ``share="layer"`` and ``hidden="relu"``.
        device, dtype: the input's; the fused kernels run on CPU in float32 / float64 only.
        fused: the VAF's ``fused`` option: ``None`` takes the fused kernels from ``FUSED_MIN``
            elements, ``True`` from ``FUSED_MIN_ROWS * FUSED_COLS``, ``False`` never.
        transformed: True under ``torch.compile`` or inside a torch.func transform: the
            ``"reference"`` kernel, whatever else is asked.
        forced: a kernel to use instead of the automatic choice (outside transforms).

    Returns:
        ``"reference"`` below ``SMALL`` elements; ``"generic"`` unless the VAF is layer-shared
        with ReLU units; otherwise ``"hinge_fused"`` where the fused kernels apply and ``"hinge"``
        elsewhere.

    >>> cpu, f32 = torch.device("cpu"), torch.float32
    >>> choose_kernel(100, share="layer", hidden="relu", device=cpu, dtype=f32)
    'reference'
    >>> choose_kernel(SMALL, share="channel", hidden="relu", device=cpu, dtype=f32)
    'generic'
    >>> choose_kernel(SMALL, share="layer", hidden="relu", device=cpu, dtype=f32)
    'hinge'
    """
    if transformed:
        return "reference"
    if forced is not None:
        if forced not in KERNELS:
            raise InvalidInput(f"unknown VAF kernel {forced!r}; use one of {list(KERNELS)}")
        if forced.startswith("hinge") and (share != "layer" or hidden != "relu"):
            raise InvalidInput(
                f"the {forced!r} kernel needs share='layer' and hidden='relu', got "
                f"share={share!r}, hidden={hidden!r}; use 'generic' or 'reference'"
            )
        return forced
    if numel < SMALL:
        return "reference"
    if share != "layer" or hidden != "relu":
        return "generic"
    if (
        fused is False
        or not FUSED_KERNELS.available
        or device.type != "cpu"
        or dtype not in FUSED_DTYPES
        or numel < (FUSED_MIN_ROWS * FUSED_COLS if fused else FUSED_MIN)
    ):
        return "hinge"
    return "hinge_fused"


# ----------------------------------------------------------------------------------------------
# "generic": the memory-lean autograd Function, any sharing
# ----------------------------------------------------------------------------------------------


def _sum_to(t: Tensor, like: Tensor) -> Tensor:
    return t.sum_to_size(like.shape) if t.shape != like.shape else t


class _VAFFunction(torch.autograd.Function):
    """Any sharing, either hidden unit. ``a, b, c``: ``(k, *B)``, ``a0``: ``B``."""

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


def generic_vaf(
    x: Tensor, a0: Tensor, a: Tensor, b: Tensor, c: Tensor, hidden: str = "relu"
) -> Tensor:
    """The ``"generic"`` kernel: :func:`vaf_reference`'s value (same arguments and shapes) by an
    autograd Function that saves only its inputs.

    >>> x = torch.tensor([-1.0, 0.5, 2.0])
    >>> one = torch.ones(1)
    >>> generic_vaf(x, torch.tensor(0.0), one, one, torch.zeros(1))
    tensor([0.0000, 0.5000, 2.0000])
    """
    return _VAFFunction.apply(x, a0, a, b, c, hidden)


# ----------------------------------------------------------------------------------------------
# "hinge" and "hinge_fused": one layer-shared parameter vector, ReLU units
# ----------------------------------------------------------------------------------------------


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


def _scratch(rows: int, n: int, dtype: torch.dtype, device: torch.device) -> Tensor:
    """A ``(rows, chunk)`` work matrix, ``chunk = min(n, CHUNK, SCRATCH // rows)`` (at least
    ``MIN_CHUNK``).

    Reuses one buffer per thread, dtype and device instead of allocating per call: on machines
    where malloc returns freed memory to the OS, a fresh multi-MB temporary per call costs page
    faults that can exceed the arithmetic. Callers in one thread never overlap (a Function's
    forward returns before its backward starts), so the reuse is safe.
    """
    chunk = max(1, min(n, CHUNK, max(MIN_CHUNK, SCRATCH // rows)))
    cache = getattr(_SCRATCH, "bufs", None)
    if cache is None:
        cache = _SCRATCH.bufs = {}
    key = (dtype, device)
    buf = cache.get(key)
    if buf is None or buf.numel() < rows * chunk:
        buf = cache[key] = torch.empty(max(rows * chunk, SCRATCH), dtype=dtype, device=device)
    return buf[: rows * chunk].view(rows, chunk)


def scratch_bytes() -> int:
    """Bytes held by this thread's reused scratch buffers (the ``"hinge"`` kernels' work space).

    >>> scratch_bytes() >= 0
    True
    """
    bufs = getattr(_SCRATCH, "bufs", {})
    return sum(b.numel() * b.element_size() for b in bufs.values())


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


def _compile_static(fn: Callable[..., Any]) -> Callable[..., Any]:
    return torch.compile(fn, dynamic=False)


class FusedKernels:
    """The two kernels of ``"hinge_fused"``, each compiled on its first use.

    ``compiler`` turns a kernel function into a callable (``torch.compile`` by default). When
    compiling or running fails (no C++ compiler, an unsupported platform, ...), :attr:`failure`
    keeps the reason, one ``RuntimeWarning`` says so, and :attr:`available` is False from then
    on: the eager ``"hinge"`` chunks take over with the same numbers.

    >>> FusedKernels().available
    True
    """

    def __init__(self, compiler: Callable[[Callable[..., Any]], Callable[..., Any]] | None = None):
        self._compiler = compiler or _compile_static
        self._compiled: dict[str, Callable[..., Any]] = {}
        self._seen: set[tuple[Any, ...]] = set()  # the specialisations compiled so far
        self.failure: str | None = None

    @property
    def available(self) -> bool:
        return self.failure is None

    def run(self, which: str, *args: Tensor) -> tuple[bool, Any]:
        """Call the ``"forward"`` or ``"backward"`` kernel on ``(R, C)`` views (``R`` dynamic):
        ``(ok, its result)``; ``(False, None)`` once compiling has failed."""
        if self.failure is not None:
            return False, None
        for t in args:
            if t.dim() == 2:
                torch._dynamo.mark_dynamic(t, 0)
        key = (which, args[0].dtype, args[0].device, args[-2].shape[0])  # what a recompile keys on
        try:
            if key in self._seen:
                return True, self._compiled[which](*args)
            with warnings.catch_warnings():  # (not thread-safe, so only around compiling)
                warnings.simplefilter("ignore")  # torch's own deprecation notices while compiling
                if which not in self._compiled:
                    fn = _fused_forward_kernel if which == "forward" else _fused_backward_kernel
                    self._compiled[which] = self._compiler(fn)
                out = self._compiled[which](*args)
            self._seen.add(key)
            return True, out
        except Exception as exc:  # no working compiler, an unsupported platform, ...
            self.failure = f"{type(exc).__name__}: {exc}"
            warnings.warn(
                f"nngeom: the fused VAF kernels could not be compiled ({self.failure[:200]}); "
                "using the eager kernels (correct, slower). Pass VAF(fused=False) to skip them.",
                RuntimeWarning,
                stacklevel=4,
            )
            return False, None


#: The fused kernels of this process (compiled once, shared by every VAF).
FUSED_KERNELS = FusedKernels()


def _fused_split(x: Tensor, fused: FusedKernels | None) -> int:
    """How many leading elements of ``x`` the fused kernels take (0: none)."""
    n = x.numel()
    if (
        fused is None
        or not fused.available
        or x.device.type != "cpu"
        or x.dtype not in FUSED_DTYPES
        or n < FUSED_MIN_ROWS * FUSED_COLS
    ):
        return 0
    return (n // FUSED_COLS) * FUSED_COLS


def _chunks(start: int, n: int, chunk: int) -> list[tuple[int, int]]:
    """``[(s, e), ...]`` covering ``start..n`` in pieces of at most ``chunk``."""
    return [(s, min(s + chunk, n)) for s in range(start, n, chunk)]


def _hinge_forward(
    x: Tensor,
    a0: float,
    a: list[float],
    b: list[float],
    c: list[float],
    fused: FusedKernels | None,
) -> Tensor:
    """Layer-shared ReLU-hidden VAF of ``x`` (any shape); parameters as Python floats (``k`` each).

    ``alpha x + beta + sum_j w_j max(x, t_j)`` (:func:`_hinges`; ``x`` itself is the row
    ``t = -inf`` when ``alpha != 0``). Eager: per chunk ``T = max(x, t)`` (``(r, chunk)`` scratch)
    and one matrix-vector product ``beta + T^T w``; a single hinge (ReLU itself) is one clamp.
    With ``fused``: its forward kernel on the leading rows.
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
        if fused is None or not fused.run("forward", *rows, ts, ws, b0)[0]:
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
    fused: FusedKernels | None,
) -> tuple[Tensor | None, Tensor]:
    """Gradients of :func:`_hinge_forward`: ``dL/dx`` (or None) and, packed like ``theta``,
    ``[dL/da0, dL/da, dL/db, dL/dc]`` (a float64 ``(3k + 1,)`` tensor on ``x``'s device).

    Eager, per chunk: step masks ``M = [x > t]`` (``(r, chunk)``; row 0 is ``t = -inf``, all
    ones), the sums ``M g`` and ``M (g x)`` (chunk sums added in float64), and
    ``dL/dx = g * (M^T [alpha, w])``; with ``fused``: one fused pass on the leading rows. On unit
    ``j``'s active set ``P_j`` (``x > t_j`` for ``b_j > 0``, ``x < t_j`` for ``b_j < 0``):
    ``dL/da_j = b_j S^x_j + c_j S^1_j``, ``dL/db_j = a_j S^x_j``, ``dL/dc_j = a_j S^1_j`` with
    ``S^1_j = sum_{P_j} g``, ``S^x_j = sum_{P_j} g x``; ``dL/da0 = sum g``.
    """
    k = len(a)
    alpha, _, _ = _hinges(0.0, a, b, c)
    units = [j for j in range(k) if b[j] != 0.0]
    xf, gf = x.reshape(-1), grad.reshape(-1)
    n = xf.numel()
    r = len(units) + 1
    packed = torch.tensor(
        [-math.inf, *(-c[j] / b[j] for j in units), alpha, *(a[j] * abs(b[j]) for j in units)],
        dtype=x.dtype,
        device=x.device,
    )
    ts, slopes = packed[:r], packed[r:]  # (r,), (r,)
    gx = torch.empty_like(xf)
    parts: list[Tensor] = []  # (rows, 2, r) partial sums: M g, M (g x)
    start = _fused_split(xf, fused)
    if start:
        views = (t[:start].view(-1, FUSED_COLS) for t in (xf, gf, gx))
        ok, got = (False, None) if fused is None else fused.run("backward", *views, ts[1:], slopes)
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
        if b[j] < 0:  # active on the other side
            s1[j], sx[j] = total1 - s1[j], totalx - sx[j]
        elif b[j] == 0.0:
            s1[j], sx[j] = (total1, totalx) if c[j] > 0 else (0.0, 0.0)
    grads = torch.tensor(
        [
            total1,
            *(b[j] * sx[j] + c[j] * s1[j] for j in range(k)),
            *(a[j] * sx[j] for j in range(k)),
            *(a[j] * s1[j] for j in range(k)),
        ],
        dtype=torch.float64,
    ).to(device=x.device)
    return (gx.view_as(x) if need_x else None), grads


def _reference_vjp(ctx: Any, grad: Tensor, x: Tensor, theta: Tensor) -> tuple[Tensor | None, ...]:
    """``grad^T d vaf_reference / d (x, theta)`` built with a graph (double backward), ReLU units.

    Inside a ``create_graph=True`` backward the saved inputs keep their autograd identity, so the
    returned gradients are differentiable functions of them.
    """
    needs = ctx.needs_input_grad[:2]
    with torch.enable_grad():
        a0, a, b, c = split_theta(theta)
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


class _VAFLayerReLU(torch.autograd.Function):
    """One shared ``theta = [a0, a, b, c]`` (``(3k + 1,)``) and ReLU hidden units.

    Saves only ``x`` and ``theta``; eager temporaries are ``(r, chunk)`` scratch rows
    (:func:`_scratch`); the gradient of ``theta`` comes back as one packed tensor.
    Old-style (``forward(ctx, ...)``, no ``setup_context``): ``apply`` then skips a per-call
    ``inspect.signature`` bind, which is a measurable share of a small layer's time. With
    ``create_graph=True`` the backward is the reference formula's, so it is differentiable.
    """

    @staticmethod
    def forward(ctx: Any, x: Tensor, theta: Tensor, fused: FusedKernels | None) -> Tensor:  # type: ignore[override]
        ctx.save_for_backward(x, theta)
        ctx.fused = fused
        a0, a, b, c = split_theta(theta.tolist())
        return _hinge_forward(x, a0, a, b, c, fused)

    @staticmethod
    def backward(ctx: Any, grad: Tensor):  # type: ignore[override]
        x, theta = ctx.saved_tensors
        if torch.is_grad_enabled():  # create_graph=True: a backward that is itself differentiable
            return (*_reference_vjp(ctx, grad, x, theta), None)
        _, a, b, c = split_theta(theta.tolist())
        gx, gtheta = _hinge_backward(x, a, b, c, grad, ctx.needs_input_grad[0], ctx.fused)
        return gx, gtheta.to(dtype=theta.dtype, device=theta.device), None


def hinge_vaf(x: Tensor, theta: Tensor, fused: FusedKernels | None = None) -> Tensor:
    """The ``"hinge"`` kernel (``fused=None``) or ``"hinge_fused"`` (``fused``: the compiled
    kernels to use on the leading rows, :data:`FUSED_KERNELS` in a VAF).

    ``x``: any shape; ``theta``: the layer-shared ``[a0, a_1..a_k, b_1..b_k, c_1..c_k]``
    (``(3k + 1,)``), ReLU hidden units. Returns the VAF of ``x``, shape of ``x``.

    >>> theta = torch.tensor([0.0, 1.0, 1.0, 1.0])  # a0 = 0, a = b = c = 1: relu(x + 1)
    >>> hinge_vaf(torch.tensor([-2.0, 1.0]), theta)
    tensor([0., 2.])
    """
    return _VAFLayerReLU.apply(x, theta, fused)
