"""Tangent-space sensitivity of a network and its bounds (Daróczy, arXiv 2006.06780).

The tangent sensitivity of output ``k`` at input ``x`` is the Frobenius norm of the ``P x d``
mixed second derivative of the network output with respect to its ``P`` parameters and its ``d``
inputs::

    TS_k(x) = || d/dx grad_theta f_k(x) ||_F

It needs no labels: it measures how much the parameter update an example would induce changes
when the example is perturbed.

Two exact paths compute it:

* a **closed form** for MLPs with piecewise-linear activations (ReLU, LeakyReLU, Identity, or
  modules declaring ``nngeom_piecewise_linear_form``). Write ``z_l = W_l h_l + b_l`` for the
  ``L + 1`` Linear layers (``h_0 = x``, ``h_{l+1} = sigma(z_l)``, ``f = z_L``), ``s_l(x)`` for the
  slopes of the activation at ``z_l`` and ``delta_l = df_k/dz_l``, so ``df_k/dW_l = delta_l h_l^T``.
  Inside an activation region ``delta_l`` is constant in ``x`` and ``h_l = J_l x + c`` with
  ``J_0 = I`` and ``J_{l+1} = diag(s_l) W_l J_l``. Hence ``d/dx (delta_l h_l^T) = delta_l (x) J_l``
  (a Kronecker product) and the bias gradients ``delta_l`` are locally constant::

      TS_k(x)^2 = sum_{l=0..L} ||delta_l^(k)(x)||^2 * ||J_l(x)||_F^2

  exactly, wherever ``x`` is not on a region boundary (there autograd's one-sided convention,
  slope 0 at a ReLU kink, is used, like torch's own ReLU backward).
* a **generic** path for any differentiable model (any per-example input shape): reverse-over-
  forward, the parameter gradient (``torch.func.vjp``) of the directional derivative
  (``torch.func.jvp``) along each of the ``d`` input basis directions, for every selected output,
  vmapped over blocks of examples x directions sized from a memory budget. Each example is fed
  alone; layers whose output depends on the batch or on random draws (train-mode Dropout,
  BatchNorm with batch statistics) are refused.

An unbiased **Hutchinson** estimate of ``TS_k^2`` (``E_v ||M v||^2`` for Rademacher probes ``v``)
with its standard error is offered for both paths (:func:`tangent_sensitivity_hutchinson`).

Bounds (:func:`tangent_sensitivity_bounds`): upper bounds on ``TS_k(x)`` in the families the paper
describes -- input-free layer-wise ``l_inf`` norm bounds ("Sens^1_tan"), input-output path bounds,
operator-norm products, and data-dependent bounds that use the activation pattern of ``x``. They
are derived here from the closed form (each step is stated in the function's docstring) and every
one is checked numerically in the tests.
"""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ._checks import (
    all_finite,
    check_finite_parameters,
    check_int,
    check_module,
    check_positive_int,
    check_X,
)
from ._errors import InvalidInput, InvalidModel, UnsupportedModel
from ._loss_data import check_eval_mode
from ._random import rademacher, random_bits, torch_generator
from .nets import MLP, as_mlp, piecewise_linear_form

__all__ = [
    "tangent_sensitivity",
    "tangent_sensitivity_squared",
    "tangent_sensitivity_autodiff",
    "tangent_sensitivity_hutchinson",
    "HutchinsonEstimate",
    "tangent_sensitivity_bounds",
    "SensitivityBounds",
    "activation_slopes",
]

_METHODS = ("auto", "closed_form", "autodiff")


# --------------------------------------------------------------------------------------------
# input checks
# --------------------------------------------------------------------------------------------


def _check_model(model: nn.Module) -> None:
    check_module(model)
    if not any(p.numel() > 0 for p in model.parameters()):
        raise InvalidModel(
            f"{type(model).__name__} has no parameters: tangent sensitivity is a derivative with "
            "respect to the parameters, so pass a model with at least one trainable tensor"
        )
    check_finite_parameters(model)


def _check_X(X: Tensor, n_features: int | None = None) -> Tensor:
    """``X`` as a floating-point batch ``(N, ...)``, ``(N, n_features)`` when given."""
    return check_X(X, example_shape=None if n_features is None else (n_features,))


def _outputs_of(output: int | Sequence[int] | str | None, p: int) -> list[int]:
    if output is None or (isinstance(output, str) and output in ("all", "mean")):
        return list(range(p))
    if isinstance(output, str):
        raise InvalidInput(
            f"output={output!r} is not understood; pass None, 'all', 'mean', an int or a list of ints"
        )
    if isinstance(output, numbers.Integral) and not isinstance(output, bool):
        ks = [output]
    else:
        try:
            ks = list(output)  # type: ignore[arg-type]
        except TypeError:
            raise InvalidInput(
                f"output must be None, 'all', 'mean', an int or a list of ints, got {output!r}"
            ) from None
    for k in ks:
        if isinstance(k, bool) or not isinstance(k, numbers.Integral) or not 0 <= k < p:
            raise InvalidInput(f"output index {k!r} is out of range: the model has {p} outputs")
    if not ks:
        raise InvalidInput("output is an empty list; pass None for every output")
    return [int(k) for k in ks]


def _check_chunk(chunk_size: object, name: str = "chunk_size") -> int | None:
    """None (automatic) or a positive int (examples per block)."""
    if chunk_size is None:
        return None
    return check_positive_int(name, chunk_size)


def _cast_X(X: Tensor, dtype: torch.dtype, device: torch.device) -> Tensor:
    """``X`` in the model's dtype and device; refuses values the model's dtype cannot hold."""
    out = X.to(dtype=dtype, device=device)
    if out.dtype != X.dtype and not all_finite(out):
        raise InvalidInput(
            f"X ({X.dtype}) has values beyond the range of the model's {dtype}: rescale X or "
            f"call model.to({X.dtype})"
        )
    return out


def _finite_result(t: Tensor, what: str) -> Tensor:
    """Refuse a non-finite result computed from finite weights and inputs (an overflow)."""
    if not all_finite(t):
        raise InvalidModel(
            f"the {what} overflowed: NaN/inf from finite weights and inputs ({t.dtype} cannot "
            "hold the intermediate products); rescale the weights or inputs, or use "
            "model.double() with float64 inputs"
        )
    return t


# --------------------------------------------------------------------------------------------
# closed form for piecewise-linear MLPs
# --------------------------------------------------------------------------------------------


def activation_slopes(view: MLP, X: Tensor) -> tuple[list[Tensor], Tensor | None]:
    """Slopes of every hidden activation at ``X`` (and of the output activation, if any).

    Args:
        view: a piecewise-linear MLP view (:func:`nngeom.nets.as_mlp`).
        X: inputs ``(N, d)``.

    Returns:
        ``(slopes, out_slope)``: ``slopes[l]`` has shape ``(N, n_l)``; ``out_slope`` is ``(N, p)``
        or None when the net has no output activation. At a breakpoint the slope of the piece on
        the left is used (for ReLU: 0 at 0, as torch's ReLU backward does).
    """
    slopes = []
    h = X
    for lin, act in zip(view.linears[:-1], view.activations, strict=True):
        z = lin(h)
        slopes.append(_slope(act, z))
        h = act(z)
    out = None
    if view.output_activation is not None:
        out = _slope(view.output_activation, view.linears[-1](h))
    return slopes, out


def _slope(act: nn.Module, z: Tensor) -> Tensor:
    if type(act) is nn.ReLU:
        return torch.gt(z, 0, out=torch.empty_like(z))  # 1.0 / 0.0 in one pass
    if type(act) is nn.LeakyReLU:
        return torch.where(z > 0, torch.ones_like(z), torch.full_like(z, act.negative_slope))
    if type(act) is nn.Identity:
        return torch.ones_like(z)
    bp, sl, _ = piecewise_linear_form(act, z.shape[-1])
    bp = bp.to(device=z.device, dtype=z.dtype)
    sl = sl.to(device=z.device, dtype=z.dtype)
    piece = (z.unsqueeze(-1) > bp).sum(-1)  # (N, n): index of the piece z lies on
    return torch.gather(sl.expand(z.shape[0], -1, -1), 2, piece.unsqueeze(-1)).squeeze(-1)


def _pwl_view(model: nn.Module) -> MLP | None:
    """The MLP view if the closed form applies, else None (call :func:`_check_model` first)."""
    try:
        view = as_mlp(model, check_finite=False)  # _check_model has checked every parameter
    except UnsupportedModel:
        return None
    if not view.piecewise_linear:
        return None
    return view


def _sq_norm(t: Tensor) -> Tensor:
    """Squared Euclidean norm over the last axis, without a squared temporary."""
    return torch.linalg.vector_norm(t, dim=-1).square_()


def _delta_norms(
    view: MLP, slopes: list[Tensor], out_slope: Tensor | None, ks: list[int]
) -> list[Tensor]:
    """``||delta_l^(k)||^2`` for ``l = 0..L``: list of ``(N, len(ks))`` tensors (index l)."""
    W = view.weights
    L = view.depth
    N = slopes[0].shape[0] if slopes else (out_slope.shape[0] if out_slope is not None else None)
    dtype, device = view.dtype, view.device
    p = view.output_dim
    eye = torch.eye(p, dtype=dtype, device=device)[ks]  # (K, p)
    if out_slope is not None:
        delta = eye.unsqueeze(0) * out_slope[:, ks].unsqueeze(-1)  # (N, K, p)
    else:
        delta = eye.unsqueeze(0)  # (1, K, p), broadcast over N
    norms: list[Tensor] = [torch.empty(0)] * (L + 1)
    norms[L] = _sq_norm(delta)
    for li in range(L - 1, -1, -1):
        delta = (delta @ W[li + 1]) * slopes[li].unsqueeze(1)  # (N, K, n_l)
        norms[li] = _sq_norm(delta)
    if N is not None:
        norms = [n.expand(N, len(ks)) for n in norms]
    return norms


def _jacobian_norms(view: MLP, slopes: list[Tensor], n: int) -> list[Tensor]:
    """``||J_l(x)||_F^2`` for ``l = 0..L``: list of ``(N,)`` tensors.

    ``J_0 = I`` (norm ``d``), ``J_1 = diag(s_0) W_0``. For deeper layers the chain
    ``T_l = diag(s_l) W_l T_{l-1}`` is carried either as ``J_l`` itself (``n_l x d``) or, when the
    first hidden layer is narrower than the input, as ``M_l`` with ``J_l = M_l W_0`` (``n_l x n_0``)
    and ``||J_l||_F^2 = sum((M_l G) * M_l)`` for the Gram matrix ``G = W_0 W_0^T``: for a
    784-512-512 net this is the cheaper of the two.
    """
    W = view.weights
    L = view.depth
    d = view.input_dim
    dtype, device = view.dtype, view.device
    out = [torch.full((n,), float(d), dtype=dtype, device=device)]
    if L == 0:
        return out
    s0 = slopes[0]
    row_sq = (W[0] ** 2).sum(1)  # (n_0,)
    out.append((s0**2) @ row_sq)
    if L == 1:
        return out
    gram = W[0].shape[0] < d
    if gram:
        G = W[0] @ W[0].T
        T = slopes[1].unsqueeze(-1) * W[1].unsqueeze(0) * s0.unsqueeze(1)  # (N, n_1, n_0)
    else:
        T = slopes[1].unsqueeze(-1) * (W[1] @ (s0.unsqueeze(-1) * W[0]))  # (N, n_1, d)
    for li in range(2, L + 1):
        if gram:
            out.append(((T @ G) * T).sum((1, 2)))
        else:
            out.append((T * T).sum((1, 2)))
        if li < L:
            T = slopes[li].unsqueeze(-1) * (W[li] @ T)
    return out


def _active_indices(s: Tensor) -> tuple[Tensor, Tensor]:
    """Per example, the units of non-zero slope first: ``(idx, slopes)`` of shape ``(N, A)``.

    ``A`` is the largest number of such units over the batch; shorter rows are padded with
    units of zero slope, so the padded entries of ``slopes`` are exactly 0.
    """
    nz = s != 0
    A = max(int(nz.sum(1).max()), 1)
    idx = torch.argsort((~nz).to(torch.int8), dim=1, stable=True)[:, :A]
    return idx, torch.gather(s, 1, idx)


def _block(M: Tensor, rows: Tensor, cols: Tensor) -> Tensor:
    """``M[rows[n]][:, cols[n]]`` for every example ``n``: ``(N, R, C)``."""
    return M[rows.unsqueeze(2), cols.unsqueeze(1)]


def _active_block_sq(
    view: MLP, slopes: list[Tensor], out_slope: Tensor | None, ks: list[int], gram: Tensor | None
) -> Tensor:
    """The closed form on the active sub-blocks of every layer, batched over examples.

    Same formula as the batched path, but every per-example matrix is restricted to the units of
    non-zero slope (``W_l[a_l][:, a_{l-1}]``, padded to the largest active count in the chunk):
    for ReLU nets about half the units are inactive, so the dominant ``n^3`` products shrink to
    about ``|a|^3`` (roughly 8x fewer flops at half activity).
    """
    W = view.weights
    L = view.depth
    d = view.input_dim
    dtype, device = view.dtype, view.device
    p = view.output_dim
    n = slopes[0].shape[0]
    act = [_active_indices(s) for s in slopes]
    idx = [a for a, _ in act]
    sv = [v for _, v in act]
    # ||delta_l||^2 for l = L .. 0: D has shape (N, K, A_l)
    eye = torch.eye(p, dtype=dtype, device=device)[ks].unsqueeze(0)
    D = eye * out_slope[:, ks].unsqueeze(-1) if out_slope is not None else eye.expand(n, -1, -1)
    dn = [torch.empty(0)] * (L + 1)
    dn[L] = (D**2).sum(-1)
    WLt = W[L].T[idx[L - 1]]  # (N, A_{L-1}, p)
    D = (D @ WLt.transpose(1, 2)) * sv[L - 1].unsqueeze(1)
    dn[L - 1] = (D**2).sum(-1)
    blocks = {li: _block(W[li], idx[li], idx[li - 1]) for li in range(1, L)}
    for li in range(L - 2, -1, -1):
        D = (D @ blocks[li + 1]) * sv[li].unsqueeze(1)
        dn[li] = (D**2).sum(-1)
    # ||J_l||_F^2 for l = 0 .. L
    row_sq = (W[0] ** 2).sum(1)
    total = dn[0] * float(d) + dn[1] * ((sv[0] ** 2) * row_sq[idx[0]]).sum(1, keepdim=True)
    if L >= 2:
        if gram is not None:
            G = _block(gram, idx[0], idx[0])
            T = sv[1].unsqueeze(2) * blocks[1] * sv[0].unsqueeze(1)  # (N, A_1, A_0)
        else:
            J1 = sv[0].unsqueeze(2) * W[0][idx[0]]  # (N, A_0, d)
            T = sv[1].unsqueeze(2) * (blocks[1] @ J1)
        for li in range(2, L + 1):
            norm = ((T @ G) * T).sum((1, 2)) if gram is not None else (T * T).sum((1, 2))
            total = total + dn[li] * norm.unsqueeze(1)
            if li < L:
                T = sv[li].unsqueeze(2) * (blocks[li] @ T)
    return total


def _closed_form_sq(
    view: MLP, X: Tensor, ks: list[int], chunk_size: int, strategy: str = "auto"
) -> Tensor:
    X = _cast_X(X, view.dtype, view.device)
    if strategy == "auto":
        # the active-block path pays for gathers; it wins when the n^3 block products
        # dominate (two or more hidden layers of a few hundred units)
        wide = min(view.widths[:2], default=0) >= _ACTIVE_PATH_MIN_WIDTH
        strategy = "active" if view.depth >= 2 and wide else "batched"
    gram = None
    if strategy == "active" and view.widths[0] < view.input_dim:
        with torch.no_grad():
            gram = view.weights[0] @ view.weights[0].T
    parts = []
    with torch.no_grad():
        for start in range(0, X.shape[0], chunk_size):
            xb = X[start : start + chunk_size]
            slopes, out_slope = activation_slopes(view, xb)
            if strategy == "active" and view.depth >= 1:
                parts.append(_active_block_sq(view, slopes, out_slope, ks, gram))
                continue
            dn = _delta_norms(view, slopes, out_slope, ks)
            if out_slope is None and not slopes:
                dn = [t.expand(xb.shape[0], len(ks)) for t in dn]
            jn = _jacobian_norms(view, slopes, xb.shape[0])
            total = torch.zeros(xb.shape[0], len(ks), dtype=view.dtype, device=view.device)
            for a, b in zip(dn, jn, strict=True):
                total = total + a * b.unsqueeze(1)
            parts.append(total)
    return torch.cat(parts)


# The closed form's chunk: at most _MAX_CHUNK examples, and the (chunk, n_1, min(n_0, d))
# tensors it carries (about three of them, 4-byte entries) near _CHUNK_BYTES
_MAX_CHUNK = 4096
_CHUNK_BYTES = 64 * 2**20
# Hidden widths from which the active-block path beats the batched one (first two layers)
_ACTIVE_PATH_MIN_WIDTH = 192


def _default_chunk(view: MLP) -> int:
    if view.depth < 2:
        return _MAX_CHUNK
    per = view.widths[1] * min(view.widths[0], view.input_dim) * 4 * 3
    return max(1, min(_MAX_CHUNK, _CHUNK_BYTES // max(per, 1)))


# --------------------------------------------------------------------------------------------
# generic path (torch.func)
# --------------------------------------------------------------------------------------------


# Memory one vmapped block of the generic path may use (an estimate, see _generic_plan).
GENERIC_MEMORY_BUDGET = 256 * 2**20

#: The end of the message that refuses a random or batch-dependent model.
_NEEDS_EVAL = (
    "call model.eval() first (and, for a BatchNorm built with track_running_stats=False, "
    "rebuild it with running statistics): tangent sensitivity is a property of the function "
    "each example is mapped by, which must not depend on the other examples or on random draws"
)


def _check_eval_mode(model: nn.Module) -> None:
    """Refuse layers whose output depends on random draws or on the batch (the shared
    :func:`~nngeom._loss_data.check_eval_mode`): the per-example derivative would be a different
    (or random) function's."""
    check_eval_mode(model, _NEEDS_EVAL)


def _functional(model: nn.Module):
    """``(params, out_k)``: detached parameters and ``out_k(params, x, k)``, output ``k`` of the
    model on ONE example ``x`` (shape ``input_shape``; fed as a batch of one)."""
    from torch.func import functional_call

    _check_eval_mode(model)
    params = {k: v.detach() for k, v in model.named_parameters()}
    buffers = {k: v.detach() for k, v in model.named_buffers()}

    def out_k(p: dict[str, Tensor], x: Tensor, k: Tensor) -> Tensor:
        y = functional_call(model, (p, buffers), (x.unsqueeze(0),))
        return y.reshape(-1)[k]

    return params, out_k


_OOM_MARKERS = ("out of memory", "not enough memory", "failed to allocate")


def _generic_run(fn, what: str):
    try:
        with warnings.catch_warnings():
            # torch's first forward-mode AD call scripts its jvp decompositions with the
            # deprecated torch.jit.script: a torch-internal warning, not the user's concern
            warnings.filterwarnings(
                "ignore", message=".*torch.jit.script.*", category=DeprecationWarning
            )
            return fn()
    except (InvalidInput, InvalidModel, UnsupportedModel):
        raise
    except (RuntimeError, NotImplementedError, TypeError) as exc:
        if any(m in str(exc).lower() for m in _OOM_MARKERS):
            raise InvalidInput(
                f"ran out of memory computing the {what} ({exc}); pass a smaller chunk_size "
                "or fewer examples at a time"
            ) from exc
        raise UnsupportedModel(
            f"cannot differentiate the model twice with torch.func ({what}): {exc}. Every layer "
            "must be differentiable in both its input and its parameters and support forward-mode "
            "AD and vmap (a custom autograd.Function needs jvp and vmap staticmethods; .item(), "
            "numpy calls and in-place writes to inputs are not allowed)"
        ) from exc


def _probe(model: nn.Module, X: Tensor) -> tuple[int, int, int]:
    """``(p, A, A_max)``: the number of outputs of one example, the number of values all layers
    output for it (the activations a derivative of one example carries) and the largest of them."""
    sizes: list[int] = []

    def hook(_m: nn.Module, _inp: object, out: object) -> None:
        if isinstance(out, Tensor):
            sizes.append(out.numel())

    handles = [m.register_forward_hook(hook) for m in model.modules()]
    try:
        with torch.no_grad():
            y = model(X[:1])
    except (RuntimeError, ValueError, TypeError, IndexError) as exc:
        raise InvalidInput(
            f"the model cannot be evaluated on X of shape {tuple(X.shape)} ({exc}); "
            "check the number of features / the input shape"
        ) from exc
    finally:
        for h in handles:
            h.remove()
    if not isinstance(y, Tensor) or y.ndim == 0 or y.shape[0] != 1:
        raise UnsupportedModel("the model must return one tensor with a batch dimension")
    return int(y[0].numel()), sum(sizes), max(sizes, default=0)


def _n_outputs(model: nn.Module, X: Tensor) -> int:
    return _probe(model, X)[0]


# On CPU, no single tensor of a block should pass this size: glibc hands allocations above its
# mmap threshold (at most 32 MiB) back to the system on free, so every block would page-fault
# its largest tensors afresh. Measured on the 28x28 conv net of benchmarks/tangent.py: the
# outer products of the Linear layer's gradients ran 3.5x slower at 54 MB than at 6-24 MB.
_CPU_TENSOR_CAP = 24 * 2**20


def _generic_plan(
    n: int,
    d: int,
    n_params: int,
    n_act: int,
    n_out: int,
    itemsize: int,
    chunk_size: int | None,
    budget: int,
    widest: int = 0,
    cap: int | None = None,
) -> tuple[int, int]:
    """``(examples, directions)`` per vmapped block.

    One (example, input direction) pair carries the tangents of the activations and, per selected
    output, the cotangents of the activations and of the primal and tangent paths and a full
    parameter gradient: about ``itemsize * (2 A + K (2 P + 3 A))`` bytes (``A`` activation values,
    ``P`` parameters, ``K`` outputs); the block holds ``budget`` bytes of pairs and, with ``cap``,
    its widest tensor (``K * widest`` values per pair: the largest parameter or layer output)
    stays under ``cap`` bytes. Blocks take every direction of as many examples as that allows; an
    example too big alone is split along directions.
    """
    per_pair = itemsize * (2 * n_act + n_out * (2 * n_params + 3 * n_act))
    pairs = budget // max(per_pair, 1)
    if cap is not None and widest > 0:
        pairs = min(pairs, cap // (itemsize * n_out * widest))
    pairs = max(1, pairs)
    if chunk_size is None:
        chunk_size = max(1, min(n, pairs // d))
    directions = max(1, min(d, pairs // chunk_size))
    return chunk_size, directions


def tangent_sensitivity_autodiff(
    model: nn.Module,
    X: Tensor,
    *,
    output: int | Sequence[int] | None = None,
    chunk_size: int | None = None,
    memory_budget: int = GENERIC_MEMORY_BUDGET,
) -> Tensor:
    """Exact ``TS_k(x)^2`` of any differentiable model by reverse-over-forward autodiff.

    ``TS_k(x)^2 = ||M||_F^2 = sum_j ||M e_j||^2`` over the input basis directions ``e_j``, and
    ``M e_j = grad_theta (d f_k(x) / d x_j)``: the parameter gradient (``torch.func.vjp``) of the
    directional derivative (``torch.func.jvp``) along ``e_j``. The directional derivatives of all
    outputs share one forward pass, and ``torch.func.vmap`` runs a block of examples x directions
    x selected outputs as one batched computation. Each example is fed to the model alone (a
    batch of one), so examples never interact.

    Args:
        model: any module mapping ``(N, *input_shape)`` to ``(N, ...)`` (``p`` outputs per
            example). It must be in evaluation mode where that matters: Dropout in training mode
            and BatchNorm using batch statistics are refused.
        X: inputs ``(N, *input_shape)`` (any per-example shape, e.g. ``(N, C, H, W)``); converted
            to the dtype and device of the model's parameters.
        output: an output index, a list of them, or None for all ``p`` outputs.
        chunk_size: examples per vmapped block; default: as many as ``memory_budget`` allows
            (an example too large for the budget alone is split along input directions).
        memory_budget: bytes one block may use, estimated as ``(2 A + K (2 P + 3 A))`` values per
            (example, input direction) pair for ``A`` layer-output values per example, ``P``
            parameters and ``K`` selected outputs. On CPU a block also keeps its widest tensor
            under 24 MiB (larger ones go back to the system on free and page-fault afresh).

    Returns:
        ``TS_k(x)^2`` of shape ``(N, K)`` (``K`` selected outputs), in the model's dtype.

    Raises:
        InvalidInput: bad ``X``, output index, ``chunk_size`` or ``memory_budget``; or the
            computation ran out of memory (lower ``chunk_size`` / ``memory_budget``).
        InvalidModel: no parameters, NaN/inf parameters, or a layer in training mode.
        UnsupportedModel: a layer that cannot be differentiated twice by torch.func.
    """
    _check_model(model)
    X = _check_X(X)
    chunk_size = _check_chunk(chunk_size)
    memory_budget = check_positive_int("memory_budget", memory_budget)
    from torch.func import functional_call, jvp, vjp, vmap

    _check_eval_mode(model)
    params = {k: v.detach() for k, v in model.named_parameters()}
    buffers = {k: v.detach() for k, v in model.named_buffers()}
    first = next(iter(params.values()))
    if first.is_floating_point():
        X = _cast_X(X, first.dtype, first.device)
    p, n_act, widest = _probe(model, X)
    ks = _outputs_of(output, p)
    n, shape, d = X.shape[0], X.shape[1:], int(X[0].numel())
    n_params = sum(v.numel() for v in params.values())
    widest = max([widest, *(v.numel() for v in params.values())])
    n_ex, n_dir = _generic_plan(
        n,
        d,
        n_params,
        n_act,
        len(ks),
        X.element_size(),
        chunk_size,
        memory_budget,
        widest,
        _CPU_TENSOR_CAP if X.device.type == "cpu" else None,
    )
    E = torch.eye(p, dtype=X.dtype, device=X.device)[ks]  # (K, p): one cotangent per output

    def f(prm: dict[str, Tensor], x: Tensor) -> Tensor:
        return functional_call(model, (prm, buffers), (x.unsqueeze(0),)).reshape(-1)

    def column_sq(x: Tensor, v: Tensor) -> Tensor:
        # ||M_k v||^2 for every selected k: (K,)
        def directional(prm: dict[str, Tensor]) -> Tensor:
            return jvp(lambda xx: f(prm, xx), (x,), (v,))[1]

        _, back = vjp(directional, params)
        (g,) = vmap(back)(E)
        return sum(
            torch.linalg.vector_norm(t.reshape(len(ks), -1), dim=1).square() for t in g.values()
        )

    per_block = vmap(vmap(column_sq, in_dims=(None, 0)), in_dims=(0, None))

    def run() -> Tensor:
        out = torch.zeros(n, len(ks), dtype=X.dtype, device=X.device)
        for s in range(0, n, n_ex):
            xb = X[s : s + n_ex]
            for t in range(0, d, n_dir):
                m = min(n_dir, d - t)
                V = torch.zeros(m, d, dtype=X.dtype, device=X.device)
                V[torch.arange(m, device=X.device), torch.arange(t, t + m, device=X.device)] = 1
                out[s : s + n_ex] += per_block(xb, V.reshape(m, *shape)).sum(1)
        return out

    return _finite_result(_generic_run(run, "jvp then vjp"), "tangent sensitivity")


# --------------------------------------------------------------------------------------------
# public entry points
# --------------------------------------------------------------------------------------------


def tangent_sensitivity_squared(
    model: nn.Module,
    X: Tensor,
    *,
    output: int | Sequence[int] | None = None,
    method: str = "auto",
    chunk_size: int | None = None,
) -> Tensor:
    """``TS_k(x)^2`` for every example and selected output: shape ``(N, K)``.

    ``method``: ``"closed_form"`` (piecewise-linear MLPs only), ``"autodiff"`` (any model) or
    ``"auto"`` (closed form when it applies). See :func:`tangent_sensitivity`.
    """
    if not isinstance(method, str) or method not in _METHODS:
        raise InvalidInput(f"unknown method {method!r}; use one of {_METHODS}")
    chunk_size = _check_chunk(chunk_size)
    _check_model(model)
    view = _pwl_view(model) if method != "autodiff" else None
    if method == "closed_form" and view is None:
        as_mlp(model)  # raises UnsupportedModel with the reason, if that is the reason
        raise UnsupportedModel(
            "the closed form needs an MLP with piecewise-linear activations (ReLU, LeakyReLU, "
            "Identity); use method='autodiff' for other models"
        )
    if view is None:
        return tangent_sensitivity_autodiff(model, X, output=output, chunk_size=chunk_size)
    X = _check_X(X, view.input_dim)
    ks = _outputs_of(output, view.output_dim)
    cs = chunk_size or _default_chunk(view)
    return _finite_result(_closed_form_sq(view, X, ks, cs), "tangent sensitivity")


def tangent_sensitivity(
    model: nn.Module,
    X: Tensor,
    *,
    output: int | Sequence[int] | str | None = None,
    method: str = "auto",
    chunk_size: int | None = None,
) -> Tensor:
    """Tangent sensitivity ``TS_k(x) = ||d/dx grad_theta f_k(x)||_F`` per example.

    Args:
        model: a module. Piecewise-linear MLPs (``nn.Sequential`` of Linear + ReLU/LeakyReLU/
            Identity) use the exact closed form; any other differentiable model uses torch.func.
        X: inputs ``(N, d)`` (or ``(N, *input_shape)`` for a generic model).
        output: ``None`` -> the mean over all outputs of ``TS_k`` (shape ``(N,)``);
            an int ``k`` -> ``TS_k`` (shape ``(N,)``); ``"all"`` -> every output (``(N, p)``);
            a list of ints -> those outputs (``(N, K)``).
        method: ``"auto"``, ``"closed_form"`` or ``"autodiff"``.
        chunk_size: examples per block (default: chosen from a memory budget).

    Returns:
        A tensor in the model's dtype, shape as described under ``output``.

    Raises:
        InvalidInput: wrong feature count, empty batch, NaN inputs, bad output index.
        InvalidModel: a model without parameters or with NaN/inf parameters.
        UnsupportedModel: a layer that cannot be differentiated twice.

    >>> import torch, nngeom as ng
    >>> net = ng.mlp([2, 4, 1], dtype=torch.float64)
    >>> X = torch.randn(3, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    >>> ng.tangent_sensitivity(net, X).round(decimals=4)
    tensor([0.8846, 0.8031, 0.5079], dtype=torch.float64)
    """
    named = isinstance(output, str) and output in ("all", "mean")
    sel = None if output is None or named else output
    sq = tangent_sensitivity_squared(model, X, output=sel, method=method, chunk_size=chunk_size)
    ts = sq.clamp_min(0).sqrt()
    if output is None or (named and output == "mean"):
        return ts.mean(1)
    if isinstance(output, numbers.Integral) and not isinstance(output, bool):
        return ts[:, 0]
    return ts


# --------------------------------------------------------------------------------------------
# Hutchinson estimate
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HutchinsonEstimate:
    """A Hutchinson estimate of ``TS_k(x)^2``.

    Attributes:
        squared: unbiased estimate of ``TS_k(x)^2``, shape ``(N, K)``.
        stderr: its standard error (sample std over probes / sqrt(probes)), shape ``(N, K)``.
        probes: number of Rademacher probes per example.
    """

    squared: Tensor
    stderr: Tensor
    probes: int

    @property
    def values(self) -> Tensor:
        """``sqrt`` of the estimate (slightly biased low by Jensen), shape ``(N, K)``."""
        return self.squared.clamp_min(0).sqrt()

    def mean_stderr(self) -> float:
        """Standard error of ``squared.mean()`` (the mean over examples and outputs).

        Examples have independent probes; the outputs of one example share theirs, so their
        errors are combined as perfectly correlated (an upper bound: exact when they are).
        """
        per_example = self.stderr.mean(1)  # (N,): sd bound of the example's mean over outputs
        return float(per_example.square().sum().sqrt() / per_example.numel())


# The fewest Rademacher probes per example (a standard error needs two) and the most (each
# costs a forward JVP per example)
MIN_PROBES = 2
MAX_PROBES = 100_000
# Examples per block of the closed-form Hutchinson estimate (it carries (block, probes, n_l))
_HUTCHINSON_CHUNK = 256


def tangent_sensitivity_hutchinson(
    model: nn.Module,
    X: Tensor,
    *,
    probes: int = 8,
    output: int | Sequence[int] | None = None,
    seed: int = 0,
    generator: torch.Generator | None = None,
    method: str = "auto",
    chunk_size: int | None = None,
) -> HutchinsonEstimate:
    """Hutchinson estimate of ``TS_k(x)^2 = E_v ||M v||^2`` with Rademacher probes ``v`` in input space.

    Closed form (piecewise-linear MLPs): ``||delta_l||^2`` is exact, and so are ``||J_0||_F^2 = d``
    and ``||J_1||_F^2 = sum_i s_0i^2 ||W_0i||^2`` (cheap); only ``||J_l||_F^2`` for ``l >= 2`` is
    estimated, by ``probes`` forward JVPs ``J_l v`` per example (independent probes per example,
    so the error of a mean over examples shrinks like ``1/sqrt(N * probes)``).
    Generic models: ``probes`` jvp-of-grad products per example and output.

    Args:
        model, X, output, method, chunk_size: as in :func:`tangent_sensitivity`.
        probes: Rademacher probes per example (``>= 2``, for a standard error).
        seed: seed of the probes (a fresh CPU generator; the global RNG is untouched).
        generator: a CPU ``torch.Generator`` to draw the probes from instead (it advances).

    Returns:
        :class:`HutchinsonEstimate` with ``(N, K)`` estimates of ``TS^2`` and standard errors.

    >>> import torch, nngeom as ng
    >>> net = ng.mlp([2, 4, 1], dtype=torch.float64)
    >>> X = torch.randn(3, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    >>> h = ng.tangent_sensitivity_hutchinson(net, X, probes=4, seed=0)
    >>> h.probes, h.squared.shape
    (4, torch.Size([3, 1]))
    >>> h.squared.sqrt().squeeze(1).round(decimals=4)
    tensor([0.8846, 0.8031, 0.5079], dtype=torch.float64)
    """
    probes = check_int("probes", probes, minimum=MIN_PROBES, maximum=MAX_PROBES)
    if not isinstance(method, str) or method not in _METHODS:
        raise InvalidInput(f"unknown method {method!r}; use one of {_METHODS}")
    chunk_size = _check_chunk(chunk_size)
    g = torch_generator(seed, generator, device="cpu")  # the probes are drawn on the CPU
    _check_model(model)
    view = _pwl_view(model) if method != "autodiff" else None
    if method == "closed_form" and view is None:
        raise UnsupportedModel(
            "the closed form needs a piecewise-linear MLP; use method='autodiff'"
        )
    if view is not None:
        X = _cast_X(_check_X(X, view.input_dim), view.dtype, view.device)
        ks = _outputs_of(output, view.output_dim)
        cs = chunk_size or _HUTCHINSON_CHUNK
        per_probe = []
        with torch.no_grad():
            for start in range(0, X.shape[0], cs):
                xb = X[start : start + cs]
                n = xb.shape[0]
                slopes, out_slope = activation_slopes(view, xb)
                dn = _delta_norms(view, slopes, out_slope, ks)
                dn = [t.expand(n, len(ks)) for t in dn]
                # exact where cheap: J_0 = I (norm^2 d) and J_1 = diag(s_0) W_0 (row norms)
                exact = dn[0] * float(view.input_dim)  # (n, K)
                if view.depth >= 1:
                    row_sq = _sq_norm(view.weights[0])  # (n_0,)
                    exact = exact + dn[1] * ((slopes[0] ** 2) @ row_sq).unsqueeze(-1)
                est = exact.unsqueeze(-1).expand(n, len(ks), probes)
                if view.depth >= 2:
                    # Rademacher v = 2 B - 1 with B in {0, 1}: W_0 v = 2 W_0 B - W_0 1, so the
                    # first product needs no +-1 tensor (one pass fewer to draw and convert)
                    B = random_bits(
                        (n * probes, view.input_dim), g, dtype=view.dtype, device=view.device
                    )
                    W0 = view.weights[0]
                    U = torch.addmm(W0.sum(1), B, W0.T, beta=-1, alpha=2).view(n, probes, -1)
                    U = U * slopes[0].unsqueeze(1)  # (n, m, n_0)
                    for li in range(1, view.depth):
                        U = (U @ view.weights[li].T) * slopes[li].unsqueeze(1)  # (n, m, n_l)
                        est = est + dn[li + 1].unsqueeze(-1) * _sq_norm(U).unsqueeze(1)
                per_probe.append(est)
        samples = torch.cat(per_probe)  # (N, K, m)
    else:
        X = _check_X(X)
        first = next(p for p in model.parameters() if p.numel() > 0)
        if first.is_floating_point():
            X = _cast_X(X, first.dtype, first.device)
        p = _n_outputs(model, X)
        ks = _outputs_of(output, p)
        from torch.func import grad, jvp

        params, out_k = _functional(model)
        V = rademacher(
            (X.shape[0], len(ks), probes, *X.shape[1:]), g, dtype=X.dtype, device=X.device
        )

        def run() -> Tensor:
            rows = []
            for i, x in enumerate(X):
                row = []
                for j, k in enumerate(ks):
                    kt = torch.tensor(k, device=X.device)

                    def gfn(xx: Tensor, kt: Tensor = kt) -> dict[str, Tensor]:
                        return grad(out_k)(params, xx, kt)

                    vals = []
                    for r in range(probes):
                        _, t = jvp(gfn, (x,), (V[i, j, r],))
                        vals.append(sum((tt**2).sum() for tt in t.values()))
                    row.append(torch.stack(vals))
                rows.append(torch.stack(row))
            return torch.stack(rows)

        samples = _generic_run(run, "Hutchinson jvp of grad")
    mean = samples.mean(-1)
    # sample variance shifted by the first probe (torch.std is slow on a short last axis; the
    # shift keeps it stable, and exactly 0 when every probe gives the same value)
    d = samples - samples[..., :1]
    var = (d.square().sum(-1) - d.sum(-1).square() / probes).clamp_min(0) / (probes - 1)
    stderr = var.sqrt() / math.sqrt(probes)
    _finite_result(mean, "Hutchinson estimate")
    _finite_result(stderr, "Hutchinson estimate's standard error")
    return HutchinsonEstimate(mean, stderr, probes)


# --------------------------------------------------------------------------------------------
# bounds
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SensitivityBounds:
    """Upper bounds on ``TS_k(x)`` (all in the model's units, not squared).

    Input-free (one number each, valid for every ``x`` and every output ``k``):
        linf: layer-wise ``l_inf`` bound (the paper's "Sens^1_tan" family).
        path: input-output path bound with ``|W_l|`` (entry-wise absolute weights).
        spectral: operator-norm bound (spectral norms; Frobenius for the first layer).

    Data-dependent (float64, shape ``(N, p)``, one per example and output, on the model's
    device; ``None`` without ``X``):
        active_paths: the path bound restricted to the active units of ``x``'s region.
        active_counts: the ``l_inf`` bound with layer widths replaced by the numbers of units of
            non-zero slope at ``x``.
    """

    linf: float
    path: float
    spectral: float
    active_paths: Tensor | None = None
    active_counts: Tensor | None = None

    def as_dict(self) -> dict[str, float]:
        """The input-free bounds and the means of the data-dependent ones, as plain floats."""
        out = {"linf": self.linf, "path": self.path, "spectral": self.spectral}
        if self.active_paths is not None:
            out["active_paths_mean"] = float(self.active_paths.mean())
        if self.active_counts is not None:
            out["active_counts_mean"] = float(self.active_counts.mean())
        return out


def _max_abs_slope(act: nn.Module, width: int) -> float:
    _, sl, _ = piecewise_linear_form(act, width)
    return float(sl.abs().max()) if sl.numel() else 0.0


def tangent_sensitivity_bounds(
    model: nn.Module, X: Tensor | None = None, *, chunk_size: int = 32
) -> SensitivityBounds:
    """Upper bounds on the tangent sensitivity of a piecewise-linear MLP without an output activation.

    With the closed form ``TS_k^2 = sum_l ||delta_l||^2 ||J_l||_F^2``, ``delta_l^T =
    e_k^T W_L S_{L-1} W_{L-1} ... W_{l+1} S_l`` and ``J_l = S_{l-1} W_{l-1} ... S_0 W_0``
    (``S_t = diag(s_t)``, ``|s_t| <= c_t``, the largest absolute slope of layer ``t``'s activation):

    * **path**: entry-wise, ``|delta_l| <= c.. |W_L[k]| |W_{L-1}| ... |W_{l+1}|`` and
      ``|J_l| <= c.. |W_{l-1}| ... |W_0|`` (each entry is a sum over input-output paths of weight
      products; the triangle inequality bounds it by the same sum of absolute products). The
      bound is ``max_k sqrt(sum_l ||a_l^(k)||^2 ||B_l||_F^2)`` with those absolute products.
    * **linf** (layer-wise ``l_inf`` norms, the paper's Sens^1_tan family): every absolute weight
      of layer ``t`` is at most ``m_t = max|W_t|``, so each path product is at most the product of
      the ``m_t`` and the number of paths is a product of widths:
      ``||delta_l||^2 <= n_l (prod_{t>l} m_t c_{t-1})^2 (prod_{l<t<L} n_t)^2`` and
      ``||J_l||_F^2 <= n_{l-1} d (prod_{t<l} m_t c_t)^2 (prod_{0<t<l} n_{t-1})^2`` (``d`` for ``l=0``).
    * **spectral**: ``||delta_l|| <= prod_{t>l} ||W_t||_2 c_{t-1}`` (for ``l < L``; ``||W_L[k]||``
      enters through ``||W_L||_2``) and ``||J_l||_F <= ||W_0||_F c_0 prod_{0<t<l} ||W_t||_2 c_t``.
    * **active_paths** / **active_counts** (data-dependent): as path / linf, with ``|S_t|`` (the
      actual slopes at ``x``) in place of ``c_t`` and the number of units of non-zero slope in
      place of the width; they bound ``TS_k(x)`` at that ``x`` only.

    Args:
        model: a piecewise-linear MLP (``nn.Sequential`` of Linear and ReLU/LeakyReLU/Identity).
        X: optional inputs ``(N, d)`` for the data-dependent bounds.
        chunk_size: examples per block of the active-path bound (it carries ``(chunk, n, d)``
            absolute path products and costs ``sum_l n_l n_{l-1} d`` per example).

    Raises:
        UnsupportedModel: not a piecewise-linear MLP, or it has an output activation.

    >>> import torch, nngeom as ng
    >>> net = ng.mlp([2, 4, 1], dtype=torch.float64)
    >>> X = torch.randn(3, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    >>> b = ng.tangent_sensitivity_bounds(net, X)
    >>> round(b.linf, 4), round(b.path, 4)
    (1.9243, 1.1948)
    >>> bool((ng.tangent_sensitivity(net, X) <= b.path).all())
    True
    """
    chunk_size = check_positive_int("chunk_size", chunk_size)
    _check_model(model)
    view = as_mlp(model)
    if not view.piecewise_linear:
        raise UnsupportedModel(
            "tangent-sensitivity bounds are derived for piecewise-linear MLPs (ReLU, LeakyReLU, "
            f"Identity); this one uses {view.activation}"
        )
    if view.output_activation is not None:
        raise UnsupportedModel(
            "the bounds assume a linear output layer; remove the output activation"
        )
    L = view.depth
    d = view.input_dim
    sizes = view.sizes
    with torch.no_grad():
        W = [w.detach().double().cpu() for w in view.weights]
        c = [_max_abs_slope(a, sizes[t + 1]) for t, a in enumerate(view.activations)]
        absW = [w.abs() for w in W]
        m = [float(w.max()) for w in absW]

        # path bound: a_l^(k) = |W_L[k]| c_{L-1} |W_{L-1}| ... c_l  (row vectors), B_l = c|W|...|W_0|
        def path_bound(scales: list[Tensor] | None) -> Tensor:
            # scales[t]: (N, n_t) absolute slopes, or None -> constants c_t
            N = 1 if scales is None else scales[0].shape[0] if scales else 1

            def sc(t: int) -> Tensor:
                if scales is None:
                    return torch.full((1, sizes[t + 1]), c[t], dtype=torch.float64)
                return scales[t]

            p = view.output_dim
            a = absW[L].unsqueeze(0).expand(N, p, -1)  # (N, p, n_{L-1}) before slope
            dn = [torch.empty(0)] * (L + 1)
            dn[L] = torch.ones(N, p, dtype=torch.float64)
            for li in range(L - 1, -1, -1):
                a_l = a * sc(li).unsqueeze(1)  # |delta_l| bound, (N, p, n_l)
                dn[li] = (a_l**2).sum(-1)
                if li > 0:
                    a = a_l @ absW[li]
            jn = [torch.full((N,), float(d), dtype=torch.float64)]
            B = absW[0].unsqueeze(0)
            for li in range(1, L + 1):
                if li > 1:
                    B = absW[li - 1] @ B
                B = B * sc(li - 1).unsqueeze(-1)  # |J_l| bound, (N, n_{l-1}, d)
                jn.append((B**2).sum((1, 2)))
            total = sum(dn[li] * jn[li].unsqueeze(1) for li in range(L + 1))
            return total.sqrt()

        path = float(path_bound(None).max())

        # linf bound
        widths = list(view.widths)

        def linf_bound(counts: list[Tensor] | None, slope_max: list[Tensor] | None) -> Tensor:
            def nn_(t: int) -> Tensor:
                return (
                    torch.tensor(float(widths[t]), dtype=torch.float64)
                    if counts is None
                    else counts[t]
                )

            def cc(t: int) -> Tensor:
                return (
                    torch.tensor(c[t], dtype=torch.float64) if slope_max is None else slope_max[t]
                )

            total = 0.0
            for li in range(L + 1):
                # ||delta_l||^2 bound
                if li == L:
                    dn = torch.tensor(1.0, dtype=torch.float64)
                else:
                    prod = torch.tensor(m[L], dtype=torch.float64)
                    paths = torch.tensor(1.0, dtype=torch.float64)
                    for t in range(li + 1, L):
                        prod = prod * m[t]
                        paths = paths * nn_(t)
                    for t in range(li, L):
                        prod = prod * cc(t)
                    dn = nn_(li) * (prod * paths) ** 2
                if li == 0:
                    jn = torch.tensor(float(d), dtype=torch.float64)
                else:
                    prod = torch.tensor(1.0, dtype=torch.float64)
                    paths = torch.tensor(1.0, dtype=torch.float64)
                    for t in range(li):
                        prod = prod * m[t] * cc(t)
                    for t in range(li - 1):
                        paths = paths * nn_(t)
                    jn = nn_(li - 1) * d * (prod * paths) ** 2
                total = total + dn * jn
            return torch.as_tensor(total).sqrt()

        linf = float(linf_bound(None, None))

        spec = [float(torch.linalg.matrix_norm(w, ord=2)) for w in W]
        total = 0.0
        for li in range(L + 1):
            dn = 1.0
            for t in range(li + 1, L + 1):
                dn *= spec[t] * c[t - 1]
            if li == 0:
                jn = math.sqrt(d)
            else:
                jn = float(torch.linalg.matrix_norm(W[0])) * c[0]
                for t in range(1, li):
                    jn *= spec[t] * c[t]
            v = dn * jn  # (a Python float ** 2 raises OverflowError instead of giving inf)
            total += v * v
        spectral = math.sqrt(total)

        active_paths = active_counts = None
        if X is not None:
            Xc = _cast_X(_check_X(X, d), view.dtype, view.device)
            slopes, _ = activation_slopes(view, Xc)
            abs_s = [s.detach().double().abs().cpu() for s in slopes]
            active_paths = torch.cat(
                [
                    path_bound([s[i : i + chunk_size] for s in abs_s])
                    for i in range(0, Xc.shape[0], max(1, chunk_size))
                ]
            )
            counts = [(s > 0).sum(1).double() for s in abs_s]
            smax = [s.max(1).values for s in abs_s]
            ac = linf_bound(counts, smax)
            active_counts = ac.reshape(-1, 1).expand(Xc.shape[0], view.output_dim).clone()
    what = "tangent-sensitivity bounds (float64)"
    _finite_result(torch.tensor([linf, path, spectral], dtype=torch.float64), what)
    for t in (active_paths, active_counts):
        if t is not None:
            _finite_result(t, what)
    if active_paths is not None and active_counts is not None:
        active_paths, active_counts = active_paths.to(view.device), active_counts.to(view.device)
    return SensitivityBounds(linf, path, spectral, active_paths, active_counts)
