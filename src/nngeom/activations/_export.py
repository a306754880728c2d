"""A VAF in standard ops only (:class:`VAFExport`) and a model with every VAF replaced by one
(:func:`export_activations`): for TorchScript, ``torch.export`` and ONNX, which do not know the
VAF's custom autograd Functions."""

from __future__ import annotations

import copy

from torch import Tensor, nn

from .._checks import check_model_tensors
from .._errors import InvalidInput
from ._kernels import vaf_reference
from ._piecewise_form import VAFUnits

__all__ = ["VAFExport", "export_activations"]


def _is_vaf(module: object) -> bool:
    """A trainable VAF (any :class:`VAFUnits` but an exported one)."""
    return isinstance(module, VAFUnits) and not isinstance(module, VAFExport)


class VAFExport(VAFUnits):
    """A VAF written with standard ops only (``a0 + sum_j a_j g(b_j x + c_j)`` by broadcasting).

    Built from a :class:`~nngeom.activations.VAF` (its parameters copied into ``a0, a, b, c``).
    Scriptable and traceable; joins nngeom's MLP view like the VAF for ``share="layer"`` and
    for per-unit sharing on fully connected layers.

    >>> import torch, nngeom as ng
    >>> act = ng.VAF(k=3)
    >>> exp = ng.VAFExport(act)
    >>> x = torch.linspace(-2, 2, 5)
    >>> torch.allclose(exp(x), act(x), atol=1e-6)
    True
    """

    def __init__(self, vaf: nn.Module) -> None:
        if not _is_vaf(vaf):
            raise InvalidInput(
                f"VAFExport needs an nngeom.VAF to export, got {type(vaf).__name__}; to export "
                "every VAF inside a model use nngeom.export_activations(model)"
            )
        assert isinstance(vaf, VAFUnits)
        vaf._require_materialized()
        check_model_tensors(vaf)
        super().__init__()
        self.k, self.share, self.hidden = vaf.k, vaf.share, vaf.hidden
        self.channel_dim, self.unit_shape = vaf.channel_dim, vaf.unit_shape
        for name in ("a0", "a", "b", "c"):
            setattr(self, name, nn.Parameter(getattr(vaf, name).detach().clone()))

    def forward(self, x: Tensor) -> Tensor:
        a0, a, b, c = self._broadcast(x)
        return vaf_reference(x, a0, a, b, c, self.hidden)


def export_activations(model: nn.Module) -> nn.Module:
    """A deep copy of ``model`` with every VAF replaced by its standard-ops :class:`VAFExport`.

    >>> import torch, nngeom as ng
    >>> net = torch.nn.Sequential(ng.mlp([2, 4]), ng.VAF(k=3))
    >>> plain = ng.export_activations(net)
    >>> type(plain[1]).__name__, type(net[1]).__name__
    ('VAFExport', 'VAF')
    >>> x = torch.ones(3, 2)
    >>> torch.allclose(plain(x), net(x), atol=1e-6)
    True
    """
    if not isinstance(model, nn.Module):
        raise InvalidInput(f"export_activations needs an nn.Module, got {type(model).__name__}")
    for m in model.modules():
        if _is_vaf(m):
            m._require_materialized()  # type: ignore[operator]
    if _is_vaf(model):
        return VAFExport(model)
    out = copy.deepcopy(model)

    def swap(parent: nn.Module) -> None:
        for name, child in parent.named_children():
            if _is_vaf(child):
                setattr(parent, name, VAFExport(child))
            else:
                swap(child)

    swap(out)
    return out
