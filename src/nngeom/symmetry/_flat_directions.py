"""Directions along which the loss is flat: at a permutation point, and in the data's null space.

* :func:`flat_directions` — at a permutation point (neurons ``i, j`` of a layer with equal
  incoming vectors) the loss is constant along the ``n_{layer+1}`` directions
  ``(delta on a_i, -delta on a_j)`` of the pair's outgoing weights.
* :class:`FreeSubspace` / :func:`data_null_subspace` — first-layer directions along the null
  space of ``[X, 1]`` are exactly flat at *every* point; the critical-point search holds them
  fixed by working in their complement (a :class:`nngeom._linop.Subspace`).
* :func:`nngeom.symmetry.rescaling_directions` (in :mod:`nngeom._rescaling`, below the Hessian
  that projects them out) — the ReLU rescaling directions.

Directions are columns in the flat parameter vector of :mod:`nngeom._params` (trainable
parameters only): a direction that would move a frozen parameter does not exist there.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from .._checks import check_X
from .._errors import InvalidInput
from .._linop import Subspace
from .._params import check_basis_size, count, offsets
from ._layers import DenseLayer, graph_layer
from ._mlp import check_pair, is_chain, mlp_chain

# Entries of a flat direction: (1, -1) / sqrt(2) on the two outgoing weights.
_UNIT = 1.0 / math.sqrt(2.0)


def _frozen(what: str) -> InvalidInput:
    return InvalidInput(
        f"{what} are frozen (requires_grad=False) or not parameters of the model itself: the "
        "flat directions move them, so they are not directions of the trainable parameters; "
        "unfreeze them (requires_grad_(True))"
    )


def flat_directions(
    model: nn.Module, layer: int, i: int, j: int, *, input_shape: Sequence[int] | None = None
) -> Tensor:
    """The ``n_{layer+1}`` directions ``(delta on a_i, -delta on a_j)`` of the outgoing weights.

    At a permutation point (equal incoming vectors of ``i`` and ``j``) the loss is constant
    along each (``d^T H d = 0``). ``H d = 0`` only for ``sum_k delta_k G_k = 0`` (``G_k``: the
    gradient with respect to the pair's incoming vector through output ``k``); a critical point
    guarantees it for ``delta`` along the merged outgoing vector, so at least one (all when
    ``n_{layer+1} = 1``) lies in the Hessian's kernel. Returns an ``(n, n_{layer+1})`` matrix of
    unit columns in :func:`flatten_parameters` order (``n`` trainable parameters). A model that
    is not an MLP chain: the columns ``i, j`` of every consumer of dense hidden layer ``layer``
    (``next_width`` columns).

    Raises:
        InvalidInput: the outgoing weights are frozen (they are not in the trainable parameters).

    >>> import nngeom as ng
    >>> from nngeom.symmetry import flat_directions
    >>> flat_directions(ng.mlp([2, 3, 2]), 0, 0, 1).shape
    torch.Size([17, 2])
    """
    if not is_chain(model):
        dl, shape = graph_layer(model, layer, input_shape)
        i, j = check_pair(shape, dl.index, i, j)
        return graph_flat_directions(model, dl, i, j)
    view = mlp_chain(model)
    i, j = check_pair(view, layer, i, j)
    lin = view.linears[layer + 1]
    off = offsets(model).get(id(lin.weight))
    if off is None:
        raise _frozen(f"the outgoing weights of hidden layer {layer}")
    n = count(model)
    rows, cols = lin.weight.shape
    check_basis_size(n, rows, "the flat directions")
    D = torch.zeros(n, rows, dtype=view.dtype, device=view.device)
    for r in range(rows):
        D[off + r * cols + i, r] = _UNIT
        D[off + r * cols + j, r] = -_UNIT
    return D


def graph_flat_directions(model: nn.Module, dl: DenseLayer, i: int, j: int) -> Tensor:
    """:func:`flat_directions` of dense hidden layer ``dl`` of a graph model."""
    off = offsets(model)
    n = count(model)
    check_basis_size(n, dl.next_width, "the flat directions")
    p0 = next(model.parameters())
    D = torch.zeros(n, dl.next_width, dtype=p0.dtype, device=p0.device)
    c = 0
    for name, _ in dl.outgoing:
        W = model.get_parameter(name)
        o = off.get(id(W))
        if o is None:
            raise _frozen(f"the outgoing weights {name!r} of dense hidden layer {dl.index}")
        rows, cols = W.shape
        for r in range(rows):
            D[o + r * cols + i, c] = _UNIT
            D[o + r * cols + j, c] = -_UNIT
            c += 1
    return D


class FreeSubspace(Subspace):
    """The parameters of an MLP minus the exactly flat first-layer directions of the data.

    With ``Xa = [X, 1]`` (or ``X`` when the first Linear has no trainable bias), a first-layer
    incoming vector ``(w_m, b_m)`` enters the net only through ``Xa (w_m, b_m)``: every component
    in the null space of ``Xa`` (input pixels that are 0 in every example, and
    ``d + 1 - rank(Xa)`` in all, e.g. when there are fewer examples than inputs) has zero
    gradient and zero curvature at *every* point. ``theta = theta_0 + B z`` with orthonormal
    ``B`` ``(n, m)`` keeps the incoming vectors in the row space ``V`` ``(d_a, r)`` of ``Xa`` and
    every other parameter free: ``m = n - n_null``, ``n_null = width_0 * (d_a - r)``. ``B`` is
    applied, never stored. When the first layer's weights are frozen nothing is held fixed
    (``n_null = 0``).
    """

    def __init__(self, model: nn.Module, X: Tensor, *, rtol: float | None = None) -> None:
        view = mlp_chain(model)
        lin = view.linears[0]
        offs = offsets(model)
        n = count(model)
        self.h, self.d = lin.out_features, lin.in_features
        self.constant_zero_inputs = int((X == 0).all(0).sum())
        self.off_w = offs.get(id(lin.weight))
        self.off_b = offs.get(id(lin.bias)) if lin.bias is not None else None
        if self.off_w is None:  # a frozen first layer: no flat direction of theta to hold fixed
            super().__init__(n)
            self.n_null = self.rank = 0
            return
        Xa = X.detach().to(torch.float64)
        if self.off_b is not None:
            Xa = torch.cat([Xa, torch.ones(Xa.shape[0], 1, dtype=Xa.dtype, device=Xa.device)], 1)
        _, s, Vh = torch.linalg.svd(Xa, full_matrices=False)
        tol = (max(Xa.shape) * torch.finfo(Xa.dtype).eps if rtol is None else rtol) * float(
            s.max() if s.numel() else 0.0
        )
        r = int((s > tol).sum())
        self.V = Vh[:r].T.to(dtype=view.dtype, device=view.device).contiguous()  # (d_a, r)
        self.d_a = Xa.shape[1]
        self.rank = r
        self.n_null = self.h * (self.d_a - r)
        super().__init__(n, n - self.n_null)

    @classmethod
    def whole(cls, n: int) -> FreeSubspace:
        """All ``n`` parameters free (``B = I``)."""
        sub = cls.__new__(cls)
        Subspace.__init__(sub, n)
        sub.n_null = sub.rank = sub.constant_zero_inputs = 0
        return sub

    @property
    def is_whole(self) -> bool:
        return self.n_null == 0

    def _first(self, v: Tensor) -> tuple[Tensor, Tensor]:
        """``v`` ``(n, k)`` -> the first layer's incoming block ``(h, d_a, k)`` and the rest."""
        hd = self.h * self.d
        W = v[self.off_w : self.off_w + hd].reshape(self.h, self.d, -1)
        mask = torch.ones(self.n, dtype=torch.bool, device=v.device)
        mask[self.off_w : self.off_w + hd] = False
        if self.off_b is not None:
            W = torch.cat([W, v[self.off_b : self.off_b + self.h].reshape(self.h, 1, -1)], 1)
            mask[self.off_b : self.off_b + self.h] = False
        return W, v[mask]

    def to_free(self, v: Tensor) -> Tensor:
        if self.n_null == 0:
            return v
        one = v.ndim == 1
        v2 = v[:, None] if one else v
        W, rest = self._first(v2)
        Z = torch.einsum("hdk,dr->hrk", W, self.V).reshape(self.h * self.rank, -1)
        out = torch.cat([Z, rest])
        return out[:, 0] if one else out

    def to_full(self, z: Tensor) -> Tensor:
        if self.n_null == 0:
            return z
        one = z.ndim == 1
        z2 = z[:, None] if one else z
        k = z2.shape[1]
        hr = self.h * self.rank
        W = torch.einsum("hrk,dr->hdk", z2[:hr].reshape(self.h, self.rank, k), self.V)
        out = torch.zeros(self.n, k, dtype=z2.dtype, device=z2.device)
        hd = self.h * self.d
        mask = torch.ones(self.n, dtype=torch.bool, device=z2.device)
        out[self.off_w : self.off_w + hd] = W[:, : self.d].reshape(hd, k)
        mask[self.off_w : self.off_w + hd] = False
        if self.off_b is not None:
            out[self.off_b : self.off_b + self.h] = W[:, self.d]
            mask[self.off_b : self.off_b + self.h] = False
        out[mask] = z2[hr:]
        return out[:, 0] if one else out


def data_null_subspace(model: nn.Module, X: Tensor) -> FreeSubspace:
    """The :class:`FreeSubspace` of ``model`` on inputs ``X`` ``(N, input_dim)``.

    >>> import torch, nngeom as ng
    >>> from nngeom.symmetry import data_null_subspace
    >>> X = torch.zeros(4, 3)
    >>> X[:, 0] = torch.arange(4.0)
    >>> sub = data_null_subspace(ng.mlp([3, 2, 1]), X)  # inputs 1 and 2 are always 0
    >>> sub.n, sub.n_null, sub.m
    (11, 4, 7)
    """
    view = mlp_chain(model, need_hidden=False)
    X = check_X(X, example_shape=(view.input_dim,), integers="keep")
    if X.device != view.device:
        raise InvalidInput(f"X is on {X.device} but the model is on {view.device}; move one")
    return FreeSubspace(model, X)
