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

from ._checks import all_finite
from ._errors import InvalidInput

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
    """History of a training run: ``losses[i]`` is the training loss after epoch/step ``i``."""

    losses: list[float] = field(default_factory=list)
    steps: int = 0
    converged: bool = False
    stopped_reason: str = ""

    @property
    def final_loss(self) -> float:
        return self.losses[-1] if self.losses else math.nan


def _check_data(model: nn.Module, X: Tensor, y: Tensor) -> None:
    if not isinstance(X, Tensor) or not isinstance(y, Tensor):
        raise InvalidInput("X and y must be torch tensors")
    if X.ndim < 2 or X.shape[0] == 0:
        raise InvalidInput(f"X must have shape (N, ...) with N >= 1, got {tuple(X.shape)}")
    if y.shape[0] != X.shape[0]:
        raise InvalidInput(f"X has {X.shape[0]} examples but y has {y.shape[0]}")
    if X.is_floating_point() and not all_finite(X):
        raise InvalidInput("X contains NaN or inf; clean the data first")
    if not any(True for _ in model.parameters()):
        raise InvalidInput("the model has no parameters to train")


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
        X: inputs ``(N, ...)``; y: targets ``(N, ...)`` (floats) or labels ``(N,)`` (ints for "ce").
        loss: see :func:`loss_fn`.
        optimizer: ``"adam"``, ``"sgd"`` or ``"lbfgs"`` (full batch, strong-Wolfe line search).
        epochs: passes over the data (for L-BFGS: outer steps of up to 20 iterations each).
        batch_size: None for full batch.
        param_groups: optional optimizer parameter groups (e.g. from ``VAF.param_groups``).
        tol: stop when the full-batch loss falls below ``tol`` (L-BFGS also stops on no progress).
        callback: called as ``callback(epoch, loss)`` after each epoch.

    Returns:
        :class:`TrainResult` with the loss after every epoch.
    """
    _check_data(model, X, y)
    if epochs < 0:
        raise InvalidInput(f"epochs must be >= 0, got {epochs}")
    if not (lr > 0 and math.isfinite(lr)):
        raise InvalidInput(f"lr must be a positive finite number, got {lr}")
    if batch_size is not None and batch_size < 1:
        raise InvalidInput(f"batch_size must be >= 1 or None, got {batch_size}")
    f = loss_fn(loss)
    params = (
        param_groups
        if param_groups is not None
        else [p for p in model.parameters() if p.requires_grad]
    )
    result = TrainResult()
    n = X.shape[0]

    if optimizer == "lbfgs":
        opt = torch.optim.LBFGS(
            params,
            lr=lr,
            max_iter=20,
            history_size=50,
            line_search_fn="strong_wolfe",
            tolerance_grad=1e-12,
            tolerance_change=1e-15,
        )

        def closure() -> Tensor:
            opt.zero_grad()
            value = f(model(X), y)
            value.backward()
            return value

        previous = math.inf
        for epoch in range(epochs):
            value = float(opt.step(closure).detach())
            with torch.no_grad():
                value = float(f(model(X), y))
            result.losses.append(value)
            result.steps = epoch + 1
            if callback:
                callback(epoch, value)
            if not math.isfinite(value):
                result.stopped_reason = "non-finite loss"
                break
            if value <= tol:
                result.converged, result.stopped_reason = True, "loss below tol"
                break
            if abs(previous - value) <= 1e-15 * max(1.0, abs(value)):
                result.converged, result.stopped_reason = True, "no progress"
                break
            previous = value
        return result

    if optimizer == "adam":
        opt = torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    elif optimizer == "sgd":
        opt = torch.optim.SGD(params, lr=lr, weight_decay=weight_decay, momentum=0.9)
    else:
        raise InvalidInput(f"unknown optimizer {optimizer!r}; use 'adam', 'sgd' or 'lbfgs'")

    g = torch.Generator(device="cpu").manual_seed(int(seed))
    bs = n if batch_size is None else min(batch_size, n)
    for epoch in range(epochs):
        order = torch.randperm(n, generator=g).to(X.device) if bs < n else None
        total = 0.0
        for start in range(0, n, bs):
            idx = order[start : start + bs] if order is not None else slice(None)
            opt.zero_grad(set_to_none=True)
            value = f(model(X[idx]), y[idx])
            value.backward()
            opt.step()
            total += float(value.detach()) * (min(start + bs, n) - start)
        epoch_loss = total / n
        result.losses.append(epoch_loss)
        result.steps = epoch + 1
        if callback:
            callback(epoch, epoch_loss)
        if not math.isfinite(epoch_loss):
            result.stopped_reason = "non-finite loss"
            break
        if epoch_loss <= tol:
            result.converged, result.stopped_reason = True, "loss below tol"
            break
    return result
