"""The training losses: their names, their functions, and what they need from the targets.

A loss is ``"mse"`` (``mean((f - y)^2)`` over every entry), ``"sse"`` (``0.5 * sum((f - y)^2) / N``,
the saddles paper's convention), ``"ce"`` / ``"cross_entropy"`` (cross-entropy of logits against
integer class labels or class probabilities), or any callable ``(output, y) -> scalar`` that is a
mean over the examples. :func:`loss_fn` turns a name into the function; :func:`check_targets`
checks ``y`` against a model's output and the loss before anything expensive runs, and
:func:`probe_loss` evaluates the loss on a few examples so that a callable that fails or does not
return a scalar is refused with a clear message.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from ._errors import InvalidInput, UnsupportedModel

#: A loss function: ``(model output (N, ...), targets (N, ...)) -> scalar tensor``.
LossFn = Callable[[Tensor, Tensor], Tensor]

#: The loss names :func:`loss_fn` knows.
LOSS_NAMES = ("mse", "sse", "ce", "cross_entropy")
_CROSS_ENTROPY = ("ce", "cross_entropy")
_SQUARED = ("mse", "sse")


def _mse_written_out(f: Tensor, y: Tensor) -> Tensor:
    # nn.functional.mse_loss fails under torch.func forward-over-reverse in torch 2.13
    # ("ZeroTensors are immutable"); this is the same quantity, written out.
    return ((f - y) ** 2).mean()


def _sse(f: Tensor, y: Tensor) -> Tensor:
    return 0.5 * ((f - y) ** 2).sum() / f.shape[0]


def loss_fn(loss: str | LossFn, *, for_torch_func: bool = False) -> LossFn:
    """The loss function named by ``loss``, or ``loss`` itself if it is callable.

    ``"mse"`` is ``mean((f - y)^2)`` over all entries (``nn.MSELoss``); ``"sse"`` is
    ``0.5 * sum((f - y)^2) / N`` (the paper convention for the saddles study); ``"ce"`` is the
    cross-entropy of logits against integer labels (or class probabilities).

    Args:
        loss: a name in :data:`LOSS_NAMES` or a callable ``(output, y) -> scalar``.
        for_torch_func: the function is differentiated twice by ``torch.func`` (Hessian-vector
            products): ``"mse"`` is then the same mean written out with tensor operations.

    >>> float(loss_fn("sse")(torch.tensor([[1.0], [3.0]]), torch.tensor([[0.0], [1.0]])))
    1.25
    """
    if callable(loss):
        return loss
    if loss == "mse":
        return _mse_written_out if for_torch_func else nn.functional.mse_loss
    if loss == "sse":
        return _sse
    if loss in _CROSS_ENTROPY:
        return nn.functional.cross_entropy
    raise InvalidInput(f"unknown loss {loss!r}; use 'mse', 'sse', 'ce' or a callable")


def loss_name(loss: str | LossFn) -> str:
    """A printable name of ``loss``: the name itself, or a callable's ``__name__``."""
    return loss if isinstance(loss, str) else getattr(loss, "__name__", "callable")


def is_cross_entropy(loss: str | LossFn) -> bool:
    """Whether ``loss`` names the cross-entropy (whose integer labels are passed as int64)."""
    return isinstance(loss, str) and loss in _CROSS_ENTROPY


_DTYPE_METHOD = {
    torch.float64: "double",
    torch.float32: "float",
    torch.float16: "half",
    torch.bfloat16: "bfloat16",
}


def dtype_hint(dtype: torch.dtype) -> str:
    """The tensor method that casts to ``dtype``: ``".double()"``, ``".float()"``, ..."""
    m = _DTYPE_METHOD.get(dtype)
    return f".{m}()" if m else f".to({dtype})"


def _nshape(per: tuple[int, ...]) -> str:
    """``(N, 3)`` for per-example shape ``(3,)``; ``(N,)`` for ``()``."""
    return "(N,)" if not per else "(N, " + ", ".join(map(str, per)) + ")"


def check_targets(out: Tensor, y: Tensor, loss: str | LossFn, m: int) -> None:
    """``y`` (all of it) against the model's output ``out`` on its first ``m`` examples.

    ``"mse"``/``"sse"``: float targets of the output's per-example shape and dtype. ``"ce"``:
    integer class labels ``(N, ...)`` in ``[0, C)`` for logits ``(N, C, ...)`` with ``C >= 2``, or
    float class probabilities of the logits' shape. A callable loss: only the output is checked.

    Raises:
        UnsupportedModel: the output is not one floating-point tensor with a batch dimension.
        InvalidInput: ``y`` does not fit the output and the loss (the message says how to fix it).
    """
    name = loss if isinstance(loss, str) else None
    if not isinstance(out, Tensor):
        raise UnsupportedModel(
            f"the model returned a {type(out).__name__}, not a tensor; nngeom's analyses need a "
            "model whose forward returns one tensor of shape (N, outputs) (wrap it if needed)"
        )
    if out.ndim == 0 or out.shape[0] != m:
        raise UnsupportedModel(
            f"the model's output on {m} examples has shape {tuple(out.shape)}: its first "
            "dimension must be the batch (one row per example); check the model's reshapes"
        )
    if not out.is_floating_point():
        raise UnsupportedModel(
            f"the model's output has dtype {out.dtype}; the loss needs a floating-point output"
        )
    per = tuple(out.shape[1:])
    if name in _SQUARED:
        _check_squared_targets(name, per, out.dtype, y)
    elif name in _CROSS_ENTROPY:
        _check_class_targets(out, per, y)
    if y.is_floating_point() and y.dtype != out.dtype:
        raise InvalidInput(
            f"y is {y.dtype} but the model's output is {out.dtype}; pass y{dtype_hint(out.dtype)} "
            "(nngeom does not cast silently)"
        )


def _check_squared_targets(name: str, per: tuple[int, ...], dtype: torch.dtype, y: Tensor) -> None:
    if not y.is_floating_point():
        raise InvalidInput(
            f"y holds integers ({y.dtype}) but loss {name!r} needs float targets of the "
            f"model's output shape {_nshape(per)}; for class labels use "
            f"loss='ce', or pass float one-hot targets "
            f"(torch.nn.functional.one_hot(y, {per[0] if per else 'C'}){dtype_hint(dtype)})"
        )
    if tuple(y.shape[1:]) != per:
        hint = ""
        if per == (1,) and y.ndim == 1:
            hint = "; pass y.reshape(-1, 1)"
        elif per == () and tuple(y.shape[1:]) == (1,):
            hint = "; pass y.reshape(-1)"
        raise InvalidInput(
            f"y has shape {tuple(y.shape)} but the model's output has shape "
            f"{_nshape(per)}: loss {name!r} needs targets of the output's shape{hint}"
        )


def _check_class_targets(out: Tensor, per: tuple[int, ...], y: Tensor) -> None:
    if out.ndim < 2:
        raise InvalidInput(
            f"loss 'ce' needs logits of shape (N, C) with C >= 2 classes, but the model "
            f"outputs shape {tuple(out.shape)}; use loss='mse' with float targets, or a "
            "model with one output per class"
        )
    C = int(out.shape[1])
    if C < 2:
        raise InvalidInput(
            "the model has one output, and the cross-entropy of one logit is constant "
            "(its log-softmax is 0), so its Hessian is all zeros; use loss='mse' (or 'sse') "
            "with float targets, or a model with 2 outputs (one logit per class)"
        )
    if y.is_floating_point():
        if tuple(y.shape[1:]) != per:
            raise InvalidInput(
                f"float y for loss 'ce' means class probabilities of the logits' shape "
                f"{_nshape(per)}, got {tuple(y.shape)}; pass integer class "
                f"labels of shape (N,) in [0, {C})"
            )
        return
    if y.dtype == torch.bool or y.is_complex():
        raise InvalidInput(f"y has dtype {y.dtype}; pass integer class labels in [0, {C})")
    want = (y.shape[0], *out.shape[2:])
    if tuple(y.shape) != want:
        raise InvalidInput(
            f"loss 'ce' needs integer class labels of shape {want} (one per example), "
            f"got y of shape {tuple(y.shape)}"
        )
    lo, hi = int(y.min()), int(y.max())
    if lo < 0 or hi >= C:
        raise InvalidInput(
            f"class labels must lie in [0, {C - 1}] (the model has {C} outputs), but y "
            f"ranges over [{lo}, {hi}]; relabel the classes 0..{C - 1} or give the "
            f"model one output per class"
        )


def probe_loss(f: LossFn, out: Tensor, y: Tensor, m: int) -> Tensor:
    """The loss ``f`` on the probe's output ``out`` and ``y[:m]``: a scalar tensor, or a clear
    :class:`~nngeom.InvalidInput` when it fails or is not a scalar."""
    try:
        with torch.no_grad():
            value = f(out, y[:m])
    except Exception as e:
        raise InvalidInput(
            f"the loss could not be computed on the model's output of shape "
            f"{tuple(out.shape)} and y of shape {tuple(y[:m].shape)}: {type(e).__name__}: {e}"
        ) from e
    if not isinstance(value, Tensor) or value.numel() != 1:
        shape = tuple(value.shape) if isinstance(value, Tensor) else type(value).__name__
        raise InvalidInput(
            f"the loss must return a scalar (the mean over examples), got {shape}; "
            "reduce it with .mean()"
        )
    return value
