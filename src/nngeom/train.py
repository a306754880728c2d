"""Small deterministic training loops: Adam or L-BFGS, full batch or minibatch, fp32 or fp64.

Determinism: the minibatch order comes from ``seed`` or a given ``torch.Generator``
(:mod:`nngeom._random`); the global RNG is never touched. The same model, data and seed give the
same weights on every run (on the same device and torch build). The losses are those of
:mod:`nngeom._losses`; the model and data are checked by :func:`nngeom._loss_data.check_loss_data`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from ._callable import make_callable
from ._checks import all_finite, check_int, check_number, check_positive_int
from ._errors import InvalidInput
from ._loss_data import check_loss_data
from ._losses import LossFn, loss_fn
from ._random import torch_generator

# more epochs than this is a mistake, not a training budget (a tiny net needs hours for it)
MAX_EPOCHS = 10_000_000
# L-BFGS (torch.optim.LBFGS, strong Wolfe line search): iterations per outer step, history
# length, and its gradient / change tolerances (tiny: float64 searches drive them to ~1e-12)
LBFGS_ITERATIONS = 20
_LBFGS_HISTORY = 50
_LBFGS_TOLERANCE_GRAD = 1e-12
_LBFGS_TOLERANCE_CHANGE = 1e-15
# L-BFGS stops when an outer step changes the loss by at most this, relative to max(1, |loss|)
_NO_PROGRESS = 1e-15
# SGD's momentum
_SGD_MOMENTUM = 0.9

__all__ = ["TrainResult", "train"]


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
    generator: torch.Generator | None = None,
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
        loss: ``"mse"``, ``"sse"``, ``"ce"`` or a callable (see :func:`nngeom._losses.loss_fn`).
        optimizer: ``"adam"``, ``"sgd"`` or ``"lbfgs"`` (full batch, strong-Wolfe line search).
        epochs: passes over the data (for L-BFGS: outer steps of up to ``LBFGS_ITERATIONS``
            iterations each).
        batch_size: None for full batch.
        param_groups: optional optimizer parameter groups (e.g. from ``VAF.param_groups``).
        seed, generator: the minibatch order's source: a CPU ``torch.Generator`` when given
            (it is advanced), else a fresh one seeded with ``seed`` (any int in
            ``[0, 2**64 - 1]``); see :mod:`nngeom._random`.
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
    gen = torch_generator(seed, generator)
    if not isinstance(optimizer, str) or optimizer not in _OPTIMIZERS:
        raise InvalidInput(f"unknown optimizer {optimizer!r}; use 'adam', 'sgd' or 'lbfgs'")
    if callback is not None and not callable(callback):
        raise InvalidInput(f"callback must be callable as callback(epoch, loss), got {callback!r}")
    f = loss_fn(loss)
    y = check_loss_data(model, X, y, loss, training=True)
    if not any(True for _ in model.parameters()):
        raise InvalidInput("the model has no parameters to train")
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
                max_iter=LBFGS_ITERATIONS,
                history_size=_LBFGS_HISTORY,
                line_search_fn="strong_wolfe",
                tolerance_grad=_LBFGS_TOLERANCE_GRAD,
                tolerance_change=_LBFGS_TOLERANCE_CHANGE,
            )
        elif optimizer == "adam":
            opt = torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
        else:
            opt = torch.optim.SGD(params, lr=lr, weight_decay=weight_decay, momentum=_SGD_MOMENTUM)
    except (TypeError, ValueError, KeyError) as e:
        raise InvalidInput(
            f"the optimizer could not be built from these parameters ({type(e).__name__}: {e}); "
            "param_groups must be a list of dicts with a 'params' list of the model's tensors"
        ) from e
    trained = [p for group in opt.param_groups for p in group["params"]]
    last = [p.detach().clone() for p in trained]  # the last finite weights

    def restore() -> None:
        """Put the last finite weights back."""
        with torch.no_grad():
            for keep, p in zip(last, trained):
                p.copy_(keep)

    def commit() -> bool:
        """Keep the weights if every one is finite (True); else restore the last finite ones."""
        if all(all_finite(p) for p in trained):
            for keep, p in zip(last, trained):
                keep.copy_(p.detach())
            return True
        restore()
        return False

    def grads_finite() -> bool:
        return all(p.grad is None or all_finite(p.grad) for p in trained)

    result = TrainResult()
    n = X.shape[0]

    def stop(what: str, epoch: int, value: float = math.nan) -> None:
        result.finite = False
        result.stopped_reason = _stop_message(what, epoch)
        result.losses.append(value if not math.isfinite(value) else math.nan)

    def below_tol(epoch: int, value: float) -> bool:
        """Record the epoch's loss; True when it is below ``tol`` (training stops there)."""
        result.losses.append(value)
        result.steps = epoch + 1
        if callback:
            callback(epoch, value)
        if value <= tol:
            result.converged, result.stopped_reason = True, "loss below tol"
            return True
        return False

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
                restore()
                opt.zero_grad(set_to_none=True)
                bad = value if not math.isfinite(value) else start_value
                stop("loss" if math.isfinite(start_value) else "loss (before the step)", epoch, bad)
                break
            if below_tol(epoch, value):
                break
            if abs(previous - value) <= _NO_PROGRESS * max(1.0, abs(value)):
                result.converged, result.stopped_reason = True, "no progress"
                break
            previous = value
        return result

    bs = n if batch_size is None else min(batch_size, n)
    for epoch in range(epochs):
        order = torch.randperm(n, generator=gen).to(X.device) if bs < n else None
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
        if below_tol(epoch, total / n):
            break
    return result


# `ng.train(...)` calls the function; `import nngeom.train` gives this module
make_callable(__name__, train)
