"""The check of a model and the data a loss is evaluated on, by running the model on a few examples.

:func:`check_loss_data` is the one front door of training (:func:`nngeom.train`), the Hessians
(:mod:`nngeom.hessian`) and the symmetry searches: the model, ``X`` and ``y`` are checked
(types, shapes, finite values, dtypes and devices), then the model runs on the first
:data:`PROBE_EXAMPLES` examples, so that an input it cannot take, targets that do not fit its
output and the loss (:func:`nngeom._losses.check_targets`) and a loss that does not return a
scalar are refused with a clear message before anything expensive runs.

For a Hessian (``training=False``) the loss must be a fixed function of the parameters: layers
that are random or depend on the batch in training mode must be in eval mode
(:func:`check_eval_mode`), and a model that changes its buffers when evaluated is refused. For
training, both are allowed; the probe leaves the global RNG and the buffers as they were.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ._checks import all_finite, check_finite_parameters, check_module, check_Xy
from ._errors import InvalidInput, InvalidModel
from ._losses import LossFn, check_targets, dtype_hint, is_cross_entropy, loss_fn, probe_loss

#: Examples the model is first run on, to check that it accepts ``X`` and that ``y`` fits.
PROBE_EXAMPLES = 8


def train_mode_problem(m: nn.Module) -> str | None:
    """Why ``m`` (in training mode) computes a random or batch-dependent function, or None."""
    if isinstance(m, nn.modules.dropout._DropoutNd) and m.p > 0:
        return "it drops units at random"
    if isinstance(m, nn.modules.batchnorm._BatchNorm):
        return "it normalises with the statistics of the batch (not running statistics)" + (
            " and updates them on every forward pass" if m.track_running_stats else ""
        )
    if isinstance(m, nn.modules.instancenorm._InstanceNorm) and m.track_running_stats:
        return "it updates its running statistics on every forward pass"
    if isinstance(m, nn.RReLU):
        return "it draws random negative slopes"
    if isinstance(m, nn.MultiheadAttention) and m.dropout > 0:
        return "it applies attention dropout"
    if isinstance(m, nn.RNNBase) and m.dropout > 0 and m.num_layers > 1:
        return "it applies dropout between its layers"
    return None


#: Why a random or batch-dependent loss has no Hessian: the end of :func:`check_eval_mode`'s
#: message for the Hessians and the symmetry searches.
HESSIAN_NEEDS_EVAL = (
    "the Hessian of such a loss is not defined (or not reproducible), and the loss of a chunk "
    "of the data would not be part of the loss of the whole. Call model.eval() first (and "
    "rebuild a BatchNorm made with track_running_stats=False with running statistics); the "
    "Hessian is then that of the deterministic eval-mode loss"
)


def check_eval_mode(model: nn.Module, consequence: str = HESSIAN_NEEDS_EVAL) -> None:
    """Refuse a submodule whose forward is random or depends on the other examples of the batch,
    naming it: one in training mode for which :func:`train_mode_problem` gives a reason, or a
    BatchNorm without running statistics (which uses the batch's statistics even in eval mode).
    ``consequence`` says why that matters to the caller; it ends the message."""
    for name, m in model.named_modules():
        where = f"submodule {name!r}" if name else "the model itself"
        where += f" ({type(m).__name__})"
        if (
            isinstance(m, nn.modules.batchnorm._BatchNorm)
            and not m.training
            and (not m.track_running_stats or m.running_mean is None)
        ):
            raise InvalidModel(
                f"{where} is without running statistics, so even in eval mode it normalises "
                f"with the statistics of the batch; {consequence}"
            )
        why = train_mode_problem(m) if m.training else None
        if why is not None:
            raise InvalidModel(f"{where} is in training mode: {why}; {consequence}")


def model_dtype_device(model: nn.Module) -> tuple[torch.dtype | None, torch.device | None]:
    """The dtype and device of the model's first floating-point parameter or buffer."""
    for t in [*model.parameters(), *model.buffers()]:
        if t.is_floating_point():
            return t.dtype, t.device
    return None, None


def _first_layer_hint(model: nn.Module, X: Tensor) -> str:
    """A hint when the first registered leaf layer plainly does not fit X (else "")."""
    first = next((m for m in model.modules() if next(m.children(), None) is None), None)
    if isinstance(first, nn.Linear) and first.in_features != X.shape[-1]:
        return (
            f" (the model's first layer, a Linear, takes {first.in_features} features but X "
            f"has {X.shape[-1]}; pass data of shape (N, {first.in_features}))"
        )
    convs = {nn.Conv1d: "L", nn.Conv2d: "H, W", nn.Conv3d: "D, H, W"}
    for kind, dims in convs.items():
        if type(first) is kind:
            nd = dims.count(",") + 1
            if X.ndim != nd + 2 or X.shape[1] != first.in_channels:
                return (
                    f" (the model's first layer, a {kind.__name__} with "
                    f"in_channels={first.in_channels}, takes X of shape "
                    f"(N, {first.in_channels}, {dims}))"
                )
    return ""


def _probe(model: nn.Module, X: Tensor, m: int, *, training: bool) -> Tensor:
    """``model(X[:m])`` under no_grad, its buffers restored afterwards (and, unless
    ``training``, a change refused); the global RNG is left as it was."""
    saved = {k: b.detach().clone() for k, b in model.named_buffers()}
    try:
        with torch.no_grad(), torch.random.fork_rng(devices=[]):
            out = model(X[:m])
    except Exception as e:  # the model's own error, whatever it is, with the shape it got
        raise InvalidInput(
            f"the model could not be evaluated on X of shape {tuple(X.shape)} "
            f"(tried on its first {m} examples): {type(e).__name__}: {e}"
            f"{_first_layer_hint(model, X)}. Pass X of the shape (N, ...) the model takes"
        ) from e
    finally:
        changed = []
        with torch.no_grad():
            for k, b in model.named_buffers():
                old = saved.get(k)
                if old is not None and not torch.equal(b, old):
                    b.copy_(old)
                    changed.append(k)
    if changed and not training:
        raise InvalidModel(
            f"running the model changed its buffer(s) {', '.join(map(repr, changed))} (restored "
            "now): a model that updates its state when evaluated (e.g. a normalisation layer in "
            "training mode) has no fixed loss to differentiate; call model.eval() first"
        )
    return out


def _max_abs_weight(model: nn.Module) -> float:
    vals = [float(p.detach().abs().max()) for p in model.parameters() if p.numel()]
    return max(vals) if vals else 0.0


def check_loss_data(
    model: nn.Module, X: Tensor, y: Tensor, loss: str | LossFn = "mse", *, training: bool = False
) -> Tensor:
    """Check ``(model, X, y, loss)`` by running the model on a few examples.

    Args:
        model: any module mapping ``X`` ``(N, ...)`` to one tensor ``(N, ...)``; finite
            parameters, the same device as the data and the same float dtype as ``X``.
        X: inputs ``(N, ...)``, ``N >= 1``, finite (integer inputs are kept as they are).
        y: targets with one row per example (see :func:`nngeom._losses.check_targets`).
        loss: a loss name or callable (:func:`nngeom._losses.loss_fn`).
        training: the data are for training: train-mode layers are allowed, and the loss on the
            probe is not required to be finite (training stops on a non-finite loss itself).

    Returns:
        ``y``, with integer class labels as int64 for the cross-entropy (nothing else converted).

    Raises:
        UnsupportedModel: not a module, or its output is not one tensor with a batch dimension.
        InvalidModel: non-finite parameters, a random/batch-dependent layer in training mode or
            a model that changes its buffers (``training=False``), a loss that overflows.
        InvalidInput: bad ``X`` / ``y`` / ``loss`` (the message says what to pass instead).
    """
    check_module(model)
    X, y = check_Xy(X, y)
    check_finite_parameters(model)
    dtype, device = model_dtype_device(model)
    if device is not None:
        for what, t in (("X", X), ("y", y)):
            if t.device != device:
                raise InvalidInput(
                    f"{what} is on {t.device} but the model is on {device}; move one of them "
                    f"(e.g. {what}.to({str(device)!r}))"
                )
    if dtype is not None and X.is_floating_point() and X.dtype != dtype:
        raise InvalidInput(
            f"X is {X.dtype} but the model's parameters are {dtype}; call "
            f"model{dtype_hint(X.dtype)} or pass X{dtype_hint(dtype)} (nngeom does not cast "
            "silently)"
        )
    f = loss_fn(loss, for_torch_func=not training)
    if not training:
        check_eval_mode(model)
    m = min(int(X.shape[0]), PROBE_EXAMPLES)
    out = _probe(model, X, m, training=training)
    check_targets(out, y, loss, m)
    if is_cross_entropy(loss) and not y.is_floating_point():
        y = y.long()
    value = probe_loss(f, out, y, m)
    if training:
        return y
    if value.is_complex() or not value.is_floating_point():
        raise InvalidInput(f"the loss must return a real floating-point scalar, got {value.dtype}")
    if not all_finite(value):
        big_x = float(X[:m].abs().max()) if X.is_floating_point() else float("nan")
        raise InvalidModel(
            f"the loss became {float(value)} on the first {m} examples although the weights "
            f"and the data are finite: the model's outputs overflow {out.dtype} (largest "
            f"|weight| {_max_abs_weight(model):.3g}, largest |X| {big_x:.3g}); rescale the "
            "weights or the data, or use float64"
        )
    return y
