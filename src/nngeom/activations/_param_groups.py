"""Optimizer parameter groups that keep trainable activations apart (their own learning rate,
no weight decay), and the test of what counts as a trainable activation."""

from __future__ import annotations

from typing import Any

from torch import nn

from .._checks import check_number
from .._errors import InvalidInput
from ._piecewise_form import VAFUnits

__all__ = ["is_trainable_activation", "param_groups"]


def is_trainable_activation(module: nn.Module) -> bool:
    """True for VAF, the trainable baselines and ``nn.PReLU``.

    >>> import torch, nngeom as ng
    >>> from nngeom.activations import is_trainable_activation
    >>> is_trainable_activation(ng.VAF()), is_trainable_activation(torch.nn.ReLU())
    (True, False)
    """
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
            if isinstance(m, VAFUnits) and m.unit_shape is None:
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
