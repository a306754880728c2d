"""The ReLU rescaling directions of an MLP, in the flat parameter vector (:mod:`nngeom._params`).

For a positively homogeneous activation (ReLU, LeakyReLU, Identity) a hidden neuron's function
is unchanged by ``(w, b, a) -> (c w, c b, a / c)`` (incoming weights and bias scaled by ``c > 0``,
outgoing weights by ``1 / c``); the tangent at ``c = 1`` is the direction ``(w, b, -a)``. The
Hessian spectrum projects these out (:func:`nngeom.hessian_eigenvalues` with
``project="rescaling"``); :mod:`nngeom.symmetry` re-exports :func:`rescaling_directions`.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ._errors import UnsupportedModel
from ._params import check_basis_size, count, module_of, offsets

# Activations with a rescaling symmetry (positively homogeneous of degree 1).
_HOMOGENEOUS = (nn.ReLU, nn.LeakyReLU, nn.Identity)


def rescaling_directions(model: nn.Module) -> Tensor:
    """The ReLU rescaling directions ``(w, b, -a)`` of every hidden neuron: ``(n, r)``.

    ``n`` is the number of trainable parameters (rows in flat-parameter order, see
    :func:`nngeom.symmetry.flatten_parameters`); ``r = sum(widths)``, except that a hidden layer
    whose incoming weights, bias or outgoing weights are frozen has no rescaling direction in
    the trainable parameters and is left out.

    Raises:
        UnsupportedModel: not an MLP chain, or an activation that is not positively homogeneous.

    >>> import nngeom as ng
    >>> from nngeom.symmetry import rescaling_directions
    >>> rescaling_directions(ng.mlp([2, 3, 1])).shape
    torch.Size([13, 3])
    """
    from .nets import as_mlp

    module = module_of(model)
    try:
        view = as_mlp(module)
    except UnsupportedModel as exc:
        raise UnsupportedModel(f"{exc}. Rescaling directions need an MLP chain") from exc
    for act in view.activations:
        if type(act) not in _HOMOGENEOUS:
            raise UnsupportedModel(
                f"{type(act).__name__} is not positively homogeneous: the net has no rescaling "
                "symmetry to project out (only ReLU, LeakyReLU, Identity have one)"
            )
    off = offsets(module)
    n = count(module)
    check_basis_size(n, sum(view.widths), "the rescaling directions")
    cols = []
    for l, width in enumerate(view.widths):
        lin, nxt = view.linears[l], view.linears[l + 1]
        moved = [lin.weight, nxt.weight] + ([lin.bias] if lin.bias is not None else [])
        if any(id(p) not in off for p in moved):
            continue  # a frozen (or folded) tensor: no direction of theta rescales this layer
        for m in range(width):
            d = torch.zeros(n, dtype=view.dtype, device=view.device)
            o = off[id(lin.weight)] + m * lin.in_features
            d[o : o + lin.in_features] = lin.weight.detach()[m]
            if lin.bias is not None:
                d[off[id(lin.bias)] + m] = lin.bias.detach()[m]
            o2 = off[id(nxt.weight)]
            for r in range(nxt.out_features):
                d[o2 + r * nxt.in_features + m] = -nxt.weight.detach()[r, m]
            cols.append(d)
    if not cols:
        return torch.zeros(n, 0, dtype=view.dtype, device=view.device)
    return torch.stack(cols, dim=1)
