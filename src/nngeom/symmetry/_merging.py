"""Merging and splitting neurons: permutation points and the reduced net.

A permutation point is a net in which two neurons of a layer have equal incoming vectors; it is
the image of a net with one neuron fewer (the *reduced* net: incoming vectors averaged, outgoing
summed, :func:`merge_neurons`) under a split ``a -> (lam a, (1 - lam) a)`` of the outgoing
vector (:func:`split_neuron`, :func:`embed_merged`); every ``lam`` gives the same function.
:func:`merge_pairs` merges several disjoint pairs (a K-th order permutation point's reduction).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .._checks import check_int, check_list, check_number
from .._errors import InvalidInput
from ._graph_edits import graph_merge, graph_split
from ._layers import Widths, dense_layers, graph_layer
from ._mlp import (
    as_int,
    check_layer,
    check_neuron,
    check_pair,
    is_chain,
    mlp_chain,
    parts,
    rebuild,
)


def merge_neurons(
    model: nn.Module, layer: int, i: int, j: int, *, input_shape: Sequence[int] | None = None
) -> nn.Module:
    """The reduced net: neurons ``i`` and ``j`` of ``layer`` merged into one (width ``n - 1``).

    The merged neuron's incoming vector is the average of the two, its outgoing vector the sum;
    it takes the place of ``min(i, j)`` and neuron ``max(i, j)`` is removed. When the two
    incoming vectors are equal (a permutation point) the reduced net computes the same function.

    A model that is not an MLP chain: ``layer`` numbers its dense hidden layers
    (:func:`dense_hidden_layers`); every incoming tensor (Linear rows and bias, BatchNorm
    parameters and statistics, PReLU slopes) is averaged, the consumers' columns summed, and
    the result is a deep copy of the model with those modules one unit narrower.
    ``input_shape`` (graph models only): see :func:`dense_hidden_layers`.
    """
    if not is_chain(model):
        dl, shape = graph_layer(model, layer, input_shape)
        i, j = check_pair(shape, dl.index, i, j)
        return graph_merge(model, dl, min(i, j), max(i, j))
    view = mlp_chain(model)
    i, j = check_pair(view, layer, i, j)
    lo, hi = min(i, j), max(i, j)
    W, b = parts(view)
    keep = [m for m in range(view.widths[layer]) if m != hi]
    W[layer][lo] = 0.5 * (W[layer][lo] + W[layer][hi])
    if b[layer] is not None:
        b[layer][lo] = 0.5 * (b[layer][lo] + b[layer][hi])
        b[layer] = b[layer][keep]
    W[layer] = W[layer][keep]
    W[layer + 1][:, lo] = W[layer + 1][:, lo] + W[layer + 1][:, hi]
    W[layer + 1] = W[layer + 1][:, keep]
    return rebuild(view, W, b)


def split_neuron(
    model: nn.Module,
    layer: int,
    i: int,
    lam: float = 0.5,
    position: int | None = None,
    *,
    input_shape: Sequence[int] | None = None,
) -> nn.Module:
    """Duplicate neuron ``i`` of ``layer`` (width ``n + 1``); the same function for every ``lam``.

    Neuron ``i`` keeps the outgoing vector ``lam * a`` and the copy, inserted at index
    ``position`` of the new layer (default: last), gets ``(1 - lam) * a``; both have neuron
    ``i``'s incoming vector. A model that is not an MLP chain: as in :func:`merge_neurons`
    (every incoming tensor of the layer is duplicated; a deep copy of the model).
    """
    chain = is_chain(model)
    if chain:
        view = mlp_chain(model)
    else:
        dl, view = graph_layer(model, layer, input_shape)
    layer = check_layer(view, layer)
    i = check_neuron(view, layer, i)
    lam = check_number("lam", lam)
    n = view.widths[layer]
    position = n if position is None else check_int("position", position)
    if not 0 <= position <= n:
        raise InvalidInput(f"position must be in 0..{n}, got {position}")
    if not chain:
        return graph_split(model, dl, i, float(lam), position)
    W, b = parts(view)
    a = W[layer + 1][:, i].clone()
    W[layer + 1][:, i] = lam * a
    W[layer] = torch.cat([W[layer][:position], W[layer][i : i + 1], W[layer][position:]])
    if b[layer] is not None:
        b[layer] = torch.cat([b[layer][:position], b[layer][i : i + 1], b[layer][position:]])
    col = ((1.0 - lam) * a)[:, None]
    W[layer + 1] = torch.cat([W[layer + 1][:, :position], col, W[layer + 1][:, position:]], dim=1)
    return rebuild(view, W, b)


def embed_merged(
    reduced: nn.Module,
    layer: int,
    i: int,
    j: int,
    lam: float = 0.5,
    *,
    input_shape: Sequence[int] | None = None,
) -> nn.Module:
    """Inverse of :func:`merge_neurons`: split the merged neuron ``min(i, j)`` back into ``i, j``.

    Neuron ``i`` gets outgoing ``lam * a`` and neuron ``j`` gets ``(1 - lam) * a``; both get the
    merged incoming vector. The result is a permutation point of the full-width net.
    """
    view = mlp_chain(reduced) if is_chain(reduced) else Widths(dense_layers(reduced, input_shape))
    layer = check_layer(view, layer)
    n = view.widths[layer] + 1
    ii, jj = as_int(i), as_int(j)
    if ii is None or jj is None or not (0 <= ii < n and 0 <= jj < n) or ii == jj:
        raise InvalidInput(f"i, j must be two different neurons in 0..{n - 1}, got {i!r}, {j!r}")
    i, j = ii, jj
    lam = check_number("lam", lam)
    lo, hi = min(i, j), max(i, j)
    lam_lo = lam if i == lo else 1.0 - lam
    return split_neuron(reduced, layer, lo, lam_lo, position=hi, input_shape=input_shape)


def merge_pairs(model: nn.Module, merges: Sequence[tuple[int, int, int]]) -> nn.Sequential:
    """A K-th order merge: several disjoint pairs ``(layer, i, j)`` (original indices), any layers.

    Within a layer the pairs must be disjoint. The merges are applied in an order that keeps
    the original indices valid; merged neuron ``min(i, j)`` survives, ``max(i, j)`` is removed.
    """
    view = mlp_chain(model)
    seen: dict[int, set[int]] = {}
    checked = []
    merges = check_list("merges", merges, what="a list of (layer, i, j) triples")
    for item in merges:
        if not isinstance(item, (tuple, list)) or len(item) != 3:
            raise InvalidInput(f"each merge is (layer, i, j), got {item!r}")
        layer, i, j = item
        i, j = check_pair(view, layer, i, j)
        used = seen.setdefault(int(layer), set())
        if i in used or j in used:
            raise InvalidInput(
                f"merges in layer {layer} must be disjoint pairs; neuron reused in {item}"
            )
        used.update((i, j))
        checked.append((int(layer), i, j))
    out: nn.Module = model
    # remove higher indices first so that lower ones keep their meaning
    for layer, i, j in sorted(checked, key=lambda t: (t[0], -max(t[1], t[2]))):
        out = merge_neurons(out, layer, i, j)
    return out if out is not model else rebuild(view, *parts(view))
