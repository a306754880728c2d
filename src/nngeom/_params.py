"""The flat parameter vector of a model, defined once for the whole package.

``theta`` is the concatenation of the model's *trainable* parameters (``requires_grad``), in
``model.named_parameters()`` order, each flattened row-major; its length ``n`` is what the
Hessian (:mod:`nngeom.hessian`), the symmetry directions (:mod:`nngeom.symmetry`) and the paths
in parameter space are measured in. Frozen parameters are constants of the loss: they are not in
``theta``, and a direction that would have to move one is not a direction of ``theta``.

:class:`Layout` maps ``theta`` to the parameters' names and shapes and back;
:func:`flatten_parameters` / :func:`load_flat_parameters` are the public pair (a detached copy
of ``theta``; a copy of the model with another ``theta``).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ._checks import check_module
from ._errors import InvalidInput
from ._linop import check_finite

# The most entries a dense basis of directions in parameter space may hold (``rows * n``;
# 4 GB in float64), checked before it is allocated.
MAX_BASIS_ENTRIES = 500_000_000


def module_of(model: object) -> nn.Module:
    """The torch module behind ``model`` (an :class:`nngeom.MLP` view's ``.module``), checked
    (no complex or meta tensors)."""
    from .nets import MLP

    if isinstance(model, MLP):
        return model.module
    return check_module(model)


def trainable(model: nn.Module) -> list[tuple[str, nn.Parameter]]:
    """``(name, parameter)`` of every parameter with ``requires_grad``, in model order."""
    return [(k, p) for k, p in model.named_parameters() if p.requires_grad]


@dataclass(frozen=True)
class Layout:
    """Where each trainable parameter lives in ``theta``.

    Attributes:
        names: qualified parameter names, in ``named_parameters()`` order.
        shapes: their shapes.
        offsets: the index in ``theta`` of each one's first entry.
        n: the length of ``theta``.
    """

    names: tuple[str, ...]
    shapes: tuple[torch.Size, ...]
    offsets: tuple[int, ...]
    n: int

    @classmethod
    def of(cls, model: nn.Module) -> Layout:
        named = trainable(model)
        offsets, o = [], 0
        for _, p in named:
            offsets.append(o)
            o += p.numel()
        return cls(tuple(k for k, _ in named), tuple(p.shape for _, p in named), tuple(offsets), o)

    @property
    def numels(self) -> tuple[int, ...]:
        return tuple(s.numel() for s in self.shapes)

    def offset(self, name: str) -> int | None:
        """The offset of parameter ``name`` in ``theta``, or None when it is frozen / absent."""
        try:
            return self.offsets[self.names.index(name)]
        except ValueError:
            return None

    def split(self, theta: Tensor) -> dict[str, Tensor]:
        """``theta`` ``(n,)`` -> ``{name: view of the parameter's shape}``."""
        return {
            k: t.view(s)
            for k, t, s in zip(self.names, torch.split(theta, self.numels), self.shapes)
        }


def offsets(model: nn.Module) -> dict[int, int]:
    """``id(parameter) -> offset in theta`` for the trainable parameters (frozen ones absent)."""
    out, o = {}, 0
    for _, p in trainable(model):
        out[id(p)] = o
        o += p.numel()
    return out


def count(model: nn.Module) -> int:
    """``n``: the number of trainable parameter entries."""
    return sum(p.numel() for _, p in trainable(model))


def flatten(model: nn.Module) -> Tensor:
    """``theta`` ``(n,)``, a detached copy (unchecked; see :func:`flatten_parameters`)."""
    ps = [p.detach().reshape(-1) for _, p in trainable(model)]
    return torch.cat(ps) if ps else torch.zeros(0)


def load_(model: nn.Module, theta: Tensor) -> None:
    """Write ``theta`` ``(n,)`` into the model's trainable parameters, in place."""
    with torch.no_grad():
        for (_, p), t in zip(trainable(model), torch.split(theta, Layout.of(model).numels)):
            p.copy_(t.view(p.shape))


def _require_trainable(model: nn.Module, verb: str) -> None:
    if count(model) == 0:
        why = "all are frozen: requires_grad=False" if list(model.parameters()) else "none at all"
        raise InvalidInput(f"{type(model).__name__} has no parameters to {verb} ({why})")


def flatten_parameters(model: nn.Module) -> Tensor:
    """The model's trainable parameters concatenated in ``named_parameters()`` order: ``(n,)``.

    Frozen parameters (``requires_grad=False``) are not included.

    >>> import torch, nngeom as ng
    >>> from nngeom.symmetry import flatten_parameters
    >>> flatten_parameters(ng.mlp([2, 3, 1])).shape
    torch.Size([13])
    """
    model = module_of(model)
    _require_trainable(model, "flatten")
    return flatten(model)


def load_flat_parameters(model: nn.Module, theta: Tensor) -> nn.Module:
    """A copy of ``model`` with trainable parameters ``theta`` ``(n,)`` (the inverse of
    :func:`flatten_parameters`); frozen parameters are copied as they are.

    >>> import torch, nngeom as ng
    >>> from nngeom.symmetry import flatten_parameters, load_flat_parameters
    >>> net = ng.mlp([2, 3, 1])
    >>> zero = load_flat_parameters(net, torch.zeros(13))
    >>> float(flatten_parameters(zero).abs().sum())
    0.0
    """
    model = module_of(model)
    _require_trainable(model, "load")
    n = count(model)
    if not isinstance(theta, Tensor) or tuple(theta.shape) != (n,):
        raise InvalidInput(
            f"theta must be a tensor of shape ({n},) (one entry per trainable parameter), got "
            f"{getattr(theta, 'shape', type(theta).__name__)!r}"
        )
    check_finite(theta, "theta")
    out = copy.deepcopy(model)
    load_(out, theta.detach())
    return out


def check_basis_size(rows: int, n: int, what: str, fewer: str = "fewer steps") -> None:
    """Refuse a dense basis of ``rows x n`` entries above :data:`MAX_BASIS_ENTRIES` before it is
    allocated; ``fewer`` says what to ask for instead (e.g. ``"fewer steps (steps=)"``)."""
    if rows * n > MAX_BASIS_ENTRIES:
        raise InvalidInput(
            f"{what} would hold {rows:,} x {n:,} = {rows * n:,} entries, more than nngeom's "
            f"limit of {MAX_BASIS_ENTRIES:,}; ask for {fewer} or use a smaller model"
        )
