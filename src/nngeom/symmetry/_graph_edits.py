"""Edits of a dense hidden layer of a graph model: permute, merge and split its units.

Each returns a deep copy of the model (same class, same forward) in which every tensor indexed
by the layer's units (:attr:`DenseLayer.incoming`: Linear rows and bias, BatchNorm parameters
and statistics, PReLU slopes; :attr:`DenseLayer.outgoing`: the consumers' weight columns) is
edited, and the modules' widths are updated.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from ._layers import DenseLayer
from ._mlp import check_result


def set_tensor(model: nn.Module, name: str, value: Tensor) -> None:
    """Replace the parameter or buffer ``name`` by a copy of ``value`` (a parameter keeps its
    ``requires_grad``)."""
    owner, _, attr = name.rpartition(".")
    mod = model.get_submodule(owner) if owner else model
    old = getattr(mod, attr)
    if attr in mod._parameters:
        setattr(mod, attr, nn.Parameter(value.detach().clone(), requires_grad=old.requires_grad))
    else:
        mod._buffers[attr] = value.detach().clone()


def graph_edit(
    model: nn.Module,
    dl: DenseLayer,
    f_in: Callable[[Tensor], Tensor],
    f_out: Callable[[Tensor], Tensor],
) -> nn.Module:
    """A deep copy of ``model`` with ``f_in`` applied to every incoming tensor (units on axis
    0) and ``f_out`` to every outgoing weight (units on axis 1); the widths of the modules are
    updated to the result's."""
    out = copy.deepcopy(model)
    width = None
    for name, _ in dl.incoming:
        new = f_in(out.get_parameter(name) if is_param(out, name) else out.get_buffer(name))
        width = new.shape[0]
        set_tensor(out, name, new)
    for name, _ in dl.outgoing:
        set_tensor(out, name, f_out(out.get_parameter(name)))
    assert width is not None
    out.get_submodule(dl.linear_in).out_features = width
    for qn in dl.between:
        out.get_submodule(qn).num_features = width
    if dl.activation_module is not None:
        out.get_submodule(dl.activation_module).num_parameters = width
    for qn in dl.linear_out:
        out.get_submodule(qn).in_features = width
    return check_result(out)


def is_param(model: nn.Module, name: str) -> bool:
    owner, _, attr = name.rpartition(".")
    mod = model.get_submodule(owner) if owner else model
    return attr in mod._parameters


def graph_permute(model: nn.Module, dl: DenseLayer, perm: Sequence[int]) -> nn.Module:
    """New unit ``m`` is old unit ``perm[m]``."""

    def rows(t: Tensor) -> Tensor:
        return t.detach().index_select(0, torch.as_tensor(perm, device=t.device))

    def cols(t: Tensor) -> Tensor:
        return t.detach().index_select(1, torch.as_tensor(perm, device=t.device))

    return graph_edit(model, dl, rows, cols)


def graph_merge(model: nn.Module, dl: DenseLayer, lo: int, hi: int) -> nn.Module:
    """Units ``lo < hi`` merged into ``lo`` (incoming averaged, outgoing summed)."""
    keep = [m for m in range(dl.width) if m != hi]

    def rows(t: Tensor) -> Tensor:
        t = t.detach().clone()
        t[lo] = 0.5 * (t[lo] + t[hi])
        return t[keep]

    def cols(t: Tensor) -> Tensor:
        t = t.detach().clone()
        t[:, lo] = t[:, lo] + t[:, hi]
        return t[:, keep]

    return graph_edit(model, dl, rows, cols)


def graph_split(model: nn.Module, dl: DenseLayer, i: int, lam: float, position: int) -> nn.Module:
    """Unit ``i`` duplicated at ``position`` (outgoing ``lam a`` and ``(1 - lam) a``)."""

    def rows(t: Tensor) -> Tensor:
        t = t.detach()
        return torch.cat([t[:position], t[i : i + 1], t[position:]])

    def cols(t: Tensor) -> Tensor:
        t = t.detach().clone()
        a = t[:, i].clone()
        t[:, i] = lam * a
        return torch.cat([t[:, :position], ((1.0 - lam) * a)[:, None], t[:, position:]], dim=1)

    return graph_edit(model, dl, rows, cols)
