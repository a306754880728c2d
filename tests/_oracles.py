"""Independent references the tests check nngeom against (shared by the test files).

:func:`autograd_hessian` is the loss Hessian by ``torch.autograd.functional.hessian`` of the loss
written out here, with respect to the trainable parameters in ``named_parameters()`` order (the
order of nngeom's flat parameter vector); buffers are copies, so the model is not modified.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.func import functional_call


def _sse(f: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return 0.5 * ((f - y) ** 2).sum() / f.shape[0]


LOSSES: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "mse": nn.functional.mse_loss,
    "sse": _sse,
    "ce": nn.functional.cross_entropy,
}


def autograd_hessian(
    model: nn.Module,
    X: torch.Tensor,
    y: torch.Tensor,
    loss: str | Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = "mse",
) -> torch.Tensor:
    """The ``(n, n)`` Hessian of ``loss(model(X), y)`` in the trainable parameters."""
    f = LOSSES[loss] if isinstance(loss, str) else loss
    named = [(k, p) for k, p in model.named_parameters() if p.requires_grad]
    names = [k for k, _ in named]
    params = tuple(p.detach().clone() for _, p in named)
    buffers = {k: b.detach().clone() for k, b in model.named_buffers()}

    def L(*ps: torch.Tensor) -> torch.Tensor:
        return f(functional_call(model, {**dict(zip(names, ps)), **buffers}, (X,)), y)

    blocks = torch.autograd.functional.hessian(L, params)
    sizes = [p.numel() for p in params]
    return torch.cat(
        [
            torch.cat([blocks[a][b].reshape(sizes[a], sizes[b]) for b in range(len(sizes))], 1)
            for a in range(len(sizes))
        ]
    )
