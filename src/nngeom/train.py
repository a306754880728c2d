"""Small deterministic training loops: Adam or L-BFGS, full batch or minibatch, fp32 or fp64.

Determinism: the minibatch order comes from a ``torch.Generator`` seeded by ``seed``; the global
RNG is never touched. The same model, data and seed give the same weights on every run (on the
same device and torch build).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from ._checks import (
    all_finite,
    check_int,
    check_model_tensors,
    check_number,
    check_positive_int,
    check_real_tensor,
    check_seed,
)
from ._errors import InvalidInput, InvalidModel, UnsupportedModel

# more epochs than this is a mistake, not a training budget (a tiny net needs hours for it)
MAX_EPOCHS = 10_000_000

__all__ = ["TrainResult", "train", "loss_fn"]

LossFn = Callable[[Tensor, Tensor], Tensor]


def loss_fn(loss: str | LossFn) -> LossFn:
    """The loss function named by ``loss``, or ``loss`` itself if it is callable.

    ``"mse"`` is ``mean((f - y)^2)`` over all entries (``nn.MSELoss``); ``"sse"`` is
    ``0.5 * sum((f - y)^2) / N`` (the paper convention for the saddles study); ``"ce"`` is the
    cross-entropy of logits against integer labels.
    """
    if callable(loss):
        return loss
    if loss == "mse":
        return nn.functional.mse_loss
    if loss == "sse":
        return lambda f, y: 0.5 * ((f - y) ** 2).sum() / f.shape[0]
    if loss in ("ce", "cross_entropy"):
        return nn.functional.cross_entropy
    raise InvalidInput(f"unknown loss {loss!r}; use 'mse', 'sse', 'ce' or a callable")


@dataclass
class TrainResult:
    """History of a training run: ``losses[i]`` is the training loss after epoch/step ``i``.

    Attributes:
        losses: the loss of every completed epoch; when training stopped on a non-finite value
            (``finite=False``) the last entry is that NaN/inf (or NaN when a gradient or a
            weight was the non-finite one), so ``final_loss`` is not finite.
        steps: epochs (L-BFGS: outer steps) completed.
        converged: the loss fell below ``tol`` (or, for L-BFGS, stopped changing).
        stopped_reason: why training ended early ("" when it ran every epoch).
        finite: False when a NaN/inf loss, gradient or weight was met: that step was *not*
            taken (the model keeps the last finite weights) and ``stopped_reason`` says where.

    >>> import torch, nngeom as ng
    >>> X = torch.linspace(-1, 1, 8, dtype=torch.float64)[:, None]
    >>> res = ng.train(ng.mlp([1, 4, 1], dtype=torch.float64), X, X, epochs=3)
    >>> type(res).__name__, len(res.losses), res.finite
    ('TrainResult', 3, True)
    """

    losses: list[float] = field(default_factory=list)
    steps: int = 0
    converged: bool = False
    stopped_reason: str = ""
    finite: bool = True

    @property
    def final_loss(self) -> float:
        return self.losses[-1] if self.losses else math.nan


_OPTIMIZERS = ("adam", "sgd", "lbfgs")


def _check_inputs(model: nn.Module, X: Tensor, y: Tensor, loss: str | LossFn) -> Tensor:
    """Check the model, ``X`` and ``y`` (against the model's output on a few examples and the
    loss); returns ``y`` (integer class labels for cross-entropy as int64)."""
    from .hessian import _check_targets, _probe_loss, _to

    if not isinstance(model, nn.Module):
        raise UnsupportedModel(f"expected a torch nn.Module, got {type(model).__name__}")
    check_model_tensors(model)
    if not isinstance(X, Tensor) or not isinstance(y, Tensor):
        raise InvalidInput(
            f"X and y must be torch tensors, got {type(X).__name__} and {type(y).__name__} "
            "(convert with torch.as_tensor)"
        )
    check_real_tensor("X", X)
    check_real_tensor("y", y)
    if X.ndim < 2 or X.shape[0] == 0:
        raise InvalidInput(
            f"X must have shape (N, ...) with N >= 1 (one row per example), got "
            f"{tuple(X.shape)}; for one feature pass X.reshape(-1, 1)"
        )
    if y.ndim == 0 or y.shape[0] != X.shape[0]:
        got = y.shape[0] if y.ndim else "a scalar"
        raise InvalidInput(f"X has {X.shape[0]} examples but y has {got}; pass matching rows")
    if X.dtype == torch.bool or y.dtype == torch.bool:
        raise InvalidInput("X and y must be numbers, not bool tensors: convert them with .float()")
    if X.is_floating_point() and not all_finite(X):
        raise InvalidInput("X contains NaN or inf; clean the data first")
    if y.is_floating_point() and not all_finite(y):
        raise InvalidInput(
            "y contains NaN or inf: every step would turn the weights into NaN; clean the "
            "targets first"
        )
    params = list(model.parameters())
    if not params:
        raise InvalidInput("the model has no parameters to train")
    for name, p in model.named_parameters():
        if not all_finite(p):
            raise InvalidModel(
                f"parameter {name} has NaN or inf entries: training cannot recover from them; "
                "re-initialise the model"
            )
    p0 = next((p for p in params if p.is_floating_point()), params[0])
    for what, t in (("X", X), ("y", y)):
        if t.device != p0.device:
            raise InvalidInput(
                f"{what} is on {t.device} but the model is on {p0.device}; move one of them "
                f"(e.g. {what}.to({str(p0.device)!r}))"
            )
    if X.is_floating_point() and p0.is_floating_point() and X.dtype != p0.dtype:
        raise InvalidInput(
            f"X is {X.dtype} but the model's parameters are {p0.dtype}; call "
            f"model{_to(X.dtype)} or pass X{_to(p0.dtype)} (nngeom does not cast silently)"
        )
    # run the model on a few examples (its buffers restored: a probe is not a training step)
    m = min(int(X.shape[0]), 8)
    saved = {k: b.detach().clone() for k, b in model.named_buffers()}
    try:
        # the probe leaves the global RNG (train-mode dropout draws from it) as it was
        with torch.no_grad(), torch.random.fork_rng(devices=[]):
            out = model(X[:m])
    except Exception as e:  # the model's own error, with the shape it got
        raise InvalidInput(
            f"the model could not be evaluated on X of shape {tuple(X.shape)} (tried on its "
            f"first {m} examples): {type(e).__name__}: {e}. Pass X of the shape (N, ...) the "
            "model takes"
        ) from e
    finally:
        with torch.no_grad():
            for k, b in model.named_buffers():
                if k in saved:
                    b.copy_(saved[k])
    _check_targets(out, y, loss, m)
    if isinstance(loss, str) and loss in ("ce", "cross_entropy") and not y.is_floating_point():
        y = y.long()
    _probe_loss(loss_fn(loss), out, y, m)
    return y


def _stop_message(what: str, epoch: int) -> str:
    return (
        f"non-finite {what} at epoch {epoch}: the step was not taken and the model keeps the "
        "last finite weights; lower lr (or rescale the data / targets)"
    )


def train(
    model: nn.Module,
    X: Tensor,
    y: Tensor,
    *,
    loss: str | LossFn = "mse",
    optimizer: str = "adam",
    epochs: int = 100,
    lr: float = 1e-3,
    batch_size: int | None = None,
    weight_decay: float = 0.0,
    param_groups: list[dict] | None = None,
    seed: int = 0,
    tol: float = 0.0,
    callback: Callable[[int, float], None] | None = None,
) -> TrainResult:
    """Train ``model`` in place on ``(X, y)``.

    Args:
        model: any module; its dtype decides the precision (``model.double()`` for float64).
        X: inputs ``(N, ...)`` of the model's dtype (not cast); y: float targets of the model's
            output shape and dtype (``"mse"``, ``"sse"``), or integer class labels ``(N,)`` in
            ``[0, C)`` / float class probabilities ``(N, C)`` for ``"ce"``. Checked (finite,
            shapes, dtypes) by running the model on a few examples first.
        loss: see :func:`loss_fn`.
        optimizer: ``"adam"``, ``"sgd"`` or ``"lbfgs"`` (full batch, strong-Wolfe line search).
        epochs: passes over the data (for L-BFGS: outer steps of up to 20 iterations each).
        batch_size: None for full batch.
        param_groups: optional optimizer parameter groups (e.g. from ``VAF.param_groups``).
        seed: seeds the minibatch order (any int in ``[0, 2**64 - 1]``).
        tol: stop when the full-batch loss falls below ``tol`` (L-BFGS also stops on no progress).
        callback: called as ``callback(epoch, loss)`` after each epoch.

    A step is never committed when the loss or a gradient is NaN/inf, or when it would make a
    weight NaN/inf: training stops there, the model keeps the last finite weights, and the
    result has ``finite=False`` with the reason in ``stopped_reason``.

    Returns:
        :class:`TrainResult` with the loss after every epoch.

    >>> import torch, nngeom as ng
    >>> net = ng.mlp([1, 8, 1], dtype=torch.float64)
    >>> X = torch.linspace(-1, 1, 32, dtype=torch.float64)[:, None]
    >>> res = ng.train(net, X, X ** 2, epochs=50, lr=0.01, seed=0)
    >>> res.steps, len(res.losses), res.losses[-1] < res.losses[0]
    (50, 50, True)
    """
    epochs = check_int("epochs", epochs, minimum=0, maximum=MAX_EPOCHS)
    lr = check_number("lr", lr, minimum=0.0, strict_min=True)
    if batch_size is not None:
        batch_size = check_positive_int("batch_size", batch_size)
    weight_decay = check_number("weight_decay", weight_decay, minimum=0.0)
    tol = check_number("tol", tol, finite=False)
    seed = check_seed(seed)
    if not isinstance(optimizer, str) or optimizer not in _OPTIMIZERS:
        raise InvalidInput(f"unknown optimizer {optimizer!r}; use 'adam', 'sgd' or 'lbfgs'")
    if callback is not None and not callable(callback):
        raise InvalidInput(f"callback must be callable as callback(epoch, loss), got {callback!r}")
    f = loss_fn(loss)
    y = _check_inputs(model, X, y, loss)
    params = (
        param_groups
        if param_groups is not None
        else [p for p in model.parameters() if p.requires_grad]
    )
    if param_groups is None and not params:
        raise InvalidInput("the model has no trainable parameters (all have requires_grad=False)")
    try:
        if optimizer == "lbfgs":
            opt: torch.optim.Optimizer = torch.optim.LBFGS(
                params,
                lr=lr,
                max_iter=20,
                history_size=50,
                line_search_fn="strong_wolfe",
                tolerance_grad=1e-12,
                tolerance_change=1e-15,
            )
        elif optimizer == "adam":
            opt = torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
        else:
            opt = torch.optim.SGD(params, lr=lr, weight_decay=weight_decay, momentum=0.9)
    except (TypeError, ValueError, KeyError) as e:
        raise InvalidInput(
            f"the optimizer could not be built from these parameters ({type(e).__name__}: {e}); "
            "param_groups must be a list of dicts with a 'params' list of the model's tensors"
        ) from e
    trained = [p for group in opt.param_groups for p in group["params"]]
    last = [p.detach().clone() for p in trained]  # the last finite weights

    def commit() -> bool:
        """Keep the weights if every one is finite (True); else restore the last finite ones."""
        if all(all_finite(p) for p in trained):
            for keep, p in zip(last, trained):
                keep.copy_(p.detach())
            return True
        with torch.no_grad():
            for keep, p in zip(last, trained):
                p.copy_(keep)
        return False

    def grads_finite() -> bool:
        return all(p.grad is None or all_finite(p.grad) for p in trained)

    result = TrainResult()
    n = X.shape[0]

    def stop(what: str, epoch: int, value: float = math.nan) -> None:
        result.finite = False
        result.stopped_reason = _stop_message(what, epoch)
        result.losses.append(value if not math.isfinite(value) else math.nan)

    if optimizer == "lbfgs":

        def closure() -> Tensor:
            opt.zero_grad()
            value = f(model(X), y)
            value.backward()
            return value

        previous = math.inf
        for epoch in range(epochs):
            # L-BFGS evaluates the loss several times per step: check the result afterwards
            # and go back to the weights before the step if anything became non-finite
            start_value = float(opt.step(closure).detach())
            with torch.no_grad():
                value = float(f(model(X), y))
            if not (math.isfinite(start_value) and math.isfinite(value) and commit()):
                with torch.no_grad():
                    for keep, p in zip(last, trained):
                        p.copy_(keep)
                opt.zero_grad(set_to_none=True)
                bad = value if not math.isfinite(value) else start_value
                stop("loss" if math.isfinite(start_value) else "loss (before the step)", epoch, bad)
                break
            result.losses.append(value)
            result.steps = epoch + 1
            if callback:
                callback(epoch, value)
            if value <= tol:
                result.converged, result.stopped_reason = True, "loss below tol"
                break
            if abs(previous - value) <= 1e-15 * max(1.0, abs(value)):
                result.converged, result.stopped_reason = True, "no progress"
                break
            previous = value
        return result

    g = torch.Generator(device="cpu").manual_seed(seed)
    bs = n if batch_size is None else min(batch_size, n)
    for epoch in range(epochs):
        order = torch.randperm(n, generator=g).to(X.device) if bs < n else None
        total = 0.0
        failed, bad = "", math.nan
        for start in range(0, n, bs):
            idx = order[start : start + bs] if order is not None else slice(None)
            opt.zero_grad(set_to_none=True)
            value = f(model(X[idx]), y[idx])
            v = float(value.detach())
            if not math.isfinite(v):
                failed, bad = "loss", v
                break
            value.backward()
            if not grads_finite():
                failed = "gradient"
                break
            try:
                opt.step()
            except RuntimeError as e:  # e.g. lr too large for the dtype ("overflow")
                commit()
                raise InvalidInput(
                    f"the optimizer step failed ({e}); the model keeps its last finite "
                    f"weights. Is lr={lr:g} too large?"
                ) from e
            if not commit():
                failed = "weight after the step"
                break
            total += v * (min(start + bs, n) - start)
        if failed:
            opt.zero_grad(set_to_none=True)
            stop(failed, epoch, bad)
            break
        epoch_loss = total / n
        result.losses.append(epoch_loss)
        result.steps = epoch + 1
        if callback:
            callback(epoch, epoch_loss)
        if epoch_loss <= tol:
            result.converged, result.stopped_reason = True, "loss below tol"
            break
    return result
