"""Permutations of hidden neurons: the ``prod n_l!`` equivalent copies of a network.

:func:`permute` / :func:`permute_all` reorder the neurons of hidden layers (the same function);
:func:`canonical_form` picks one representative of a permutation class; :func:`match_weights`
finds the permutation between two nets (weight matching) and :func:`equivalent` decides whether
one is a permutation of the other. ``permute`` and ``permute_all`` also act on the dense hidden
layers of graph models (:func:`dense_hidden_layers`).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from .._checks import all_finite, check_int, check_list, check_number
from .._errors import InvalidInput, InvalidModel
from .._random import numpy_rng
from ..nets import as_mlp
from ._graph_edits import graph_permute
from ._layers import dense_layers, graph_layer
from ._mlp import as_int, check_layer, is_chain, mlp_chain, parts, rebuild


def check_perm(perm: Sequence[int], width: int, layer: int) -> list[int]:
    """``perm`` as a list of ints that is a permutation of ``0..width - 1``."""
    p = [as_int(v) for v in check_list("perm", perm, what="a sequence of ints")]
    if any(v is None for v in p):
        raise InvalidInput(f"perm must be a sequence of ints, got {perm!r}")
    if sorted(p) != list(range(width)):
        raise InvalidInput(
            f"perm {p} is not a permutation of 0..{width - 1} (hidden layer {layer} has {width} neurons)"
        )
    return p


def permute(
    model: nn.Module,
    layer: int,
    perm: Sequence[int],
    *,
    input_shape: Sequence[int] | None = None,
) -> nn.Module:
    """The same function with the neurons of hidden ``layer`` reordered.

    New neuron ``m`` is old neuron ``perm[m]``: rows of ``W_layer``/``b_layer`` and columns of
    ``W_{layer+1}`` are permuted. For an MLP chain (:func:`nngeom.as_mlp`) returns a new
    ``nn.Sequential``. For any other model (a residual MLP, a conv net with a dense head)
    ``layer`` numbers its dense hidden layers (:func:`dense_hidden_layers`) and the result is a
    deep copy of the model (same class, same forward) with every tensor indexed by that layer's
    units (Linear rows and columns, BatchNorm statistics, PReLU slopes) reordered.
    ``input_shape`` is passed to :func:`dense_hidden_layers` (graph models only).

    Raises:
        InvalidInput: a layer out of range, or ``perm`` not a permutation of the layer's units.
        UnsupportedModel: not an MLP chain and no such dense hidden layer.

    >>> import torch, nngeom as ng
    >>> net = ng.mlp([2, 3, 1], dtype=torch.float64)
    >>> swapped = ng.permute(net, 0, [2, 0, 1])
    >>> x = torch.randn(4, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    >>> torch.allclose(swapped(x), net(x)), torch.equal(swapped[0].weight[0], net[0].weight[2])
    (True, True)
    """
    if not is_chain(model):
        dl, _ = graph_layer(model, layer, input_shape)
        return graph_permute(model, dl, check_perm(perm, dl.width, dl.index))
    view = mlp_chain(model)
    layer = check_layer(view, layer)
    p = torch.tensor(check_perm(perm, view.widths[layer], layer), device=view.device)
    W, b = parts(view)
    W[layer] = W[layer][p]
    if b[layer] is not None:
        b[layer] = b[layer][p]
    W[layer + 1] = W[layer + 1][:, p]
    return rebuild(view, W, b)


def permute_all(
    model: nn.Module,
    perms: Sequence[Sequence[int] | None],
    *,
    input_shape: Sequence[int] | None = None,
) -> nn.Module:
    """Apply one permutation per hidden layer (``None`` leaves a layer as it is).

    For a model that is not an MLP chain, one permutation per dense hidden layer
    (:func:`dense_hidden_layers`); the result is a deep copy of the model.
    """
    perms = check_list(
        "perms", perms, what="a list with one permutation (or None) per hidden layer"
    )
    if not is_chain(model):
        layers = dense_layers(model, input_shape)
        if len(perms) != len(layers):
            raise InvalidInput(
                f"need one permutation per dense hidden layer ({len(layers)}), got {len(perms)}"
            )
        out = copy.deepcopy(model)
        for dl, perm in zip(layers, perms):
            if perm is not None:
                out = graph_permute(out, dl, check_perm(perm, dl.width, dl.index))
        return out
    view = mlp_chain(model)
    if len(perms) != view.depth:
        raise InvalidInput(
            f"need one permutation per hidden layer ({view.depth}), got {len(perms)}"
        )
    out: nn.Module = model
    for layer, perm in enumerate(perms):
        if perm is not None:
            out = permute(out, layer, perm)
    return out if out is not model else rebuild(view, *parts(view))


def canonical_form(model: nn.Module) -> tuple[nn.Sequential, list[list[int]]]:
    """The representative of the model's permutation class with sorted neurons.

    Layer by layer (0 first), neurons are sorted lexicographically by their incoming vector
    ``(W_l[m, :], b_l[m])`` (after the previous layer has been sorted). Two nets with distinct
    neurons compute the same function up to permutation iff their canonical forms are equal.
    Returns ``(canonical model, perms)`` with ``canonical = permute_all(model, perms)``.
    """
    view = mlp_chain(model)
    W, b = parts(view)
    perms = []
    for l in range(view.depth):
        inc = W[l] if b[l] is None else torch.cat([W[l], b[l][:, None]], dim=1)
        keys = inc.cpu().numpy()
        order = np.lexsort(keys.T[::-1])
        perms.append([int(v) for v in order])
        p = torch.as_tensor(order, device=W[l].device)
        W[l] = W[l][p]
        if b[l] is not None:
            b[l] = b[l][p]
        W[l + 1] = W[l + 1][:, p]
    return rebuild(view, W, b), perms


def match_weights(
    model_a: nn.Module,
    model_b: nn.Module,
    *,
    max_iter: int = 100,
    seed: int = 0,
    generator: torch.Generator | None = None,
) -> list[list[int]]:
    """Permutations that bring ``model_b``'s weights closest to ``model_a``'s (weight matching).

    A forward pass first matches each layer's incoming vectors (least squares), then coordinate
    descent over layers (Ainsworth et al. 2023, "Git Re-Basin"): each layer's
    permutation maximises ``<incoming_a, incoming_b P> + <outgoing_a, P outgoing_b>`` with the
    other layers fixed, solved exactly by ``scipy.optimize.linear_sum_assignment``; layers are
    visited in a random order (from ``seed``, or ``generator`` when given) until no permutation
    changes. For two nets that are exact permutations of each other with distinct neurons, the
    result is that permutation.

    Returns one permutation per hidden layer, to be used as ``permute_all(model_b, perms)``.
    """
    from scipy.optimize import linear_sum_assignment

    max_iter = check_int("max_iter", max_iter, minimum=0)
    rng = numpy_rng(seed, generator)
    va, vb = mlp_chain(model_a), mlp_chain(model_b)
    if va.sizes != vb.sizes:
        raise InvalidInput(f"the two models have different sizes: {va.sizes} vs {vb.sizes}")
    Wa, ba = parts(va)
    Wb, bb = parts(vb)
    Wa = [w.double().cpu() for w in Wa]
    Wb = [w.double().cpu() for w in Wb]
    ba = [x.double().cpu() if x is not None else None for x in ba]
    bb = [x.double().cpu() if x is not None else None for x in bb]
    L = va.depth
    perms = [torch.arange(n) for n in va.widths]
    # start with a forward pass matching incoming vectors only (exact for exact permutations)
    for l in range(L):
        inc_b = Wb[l] if l == 0 else Wb[l][:, perms[l - 1]]
        cost = Wa[l] @ inc_b.T - 0.5 * (inc_b * inc_b).sum(1)[None, :]
        if ba[l] is not None:
            cost = cost + torch.outer(ba[l], bb[l]) - 0.5 * (bb[l] ** 2)[None, :]
        if not all_finite(cost):
            raise InvalidModel(
                "weight matching overflows float64 (the weights are too large, e.g. 1e300): "
                "rescale the models before matching them"
            )
        rows, cols = linear_sum_assignment(cost.numpy(), maximize=True)
        perms[l] = torch.as_tensor(cols[np.argsort(rows)])
    for _ in range(max_iter):
        changed = False
        for l in rng.permutation(L):
            l = int(l)
            # incoming of b with the previous layer's permutation applied to its columns
            inc_b = Wb[l] if l == 0 else Wb[l][:, perms[l - 1]]
            cost = Wa[l] @ inc_b.T
            if ba[l] is not None:
                cost = cost + torch.outer(ba[l], bb[l])
            out_b = Wb[l + 1] if l + 1 == L else Wb[l + 1][perms[l + 1]]
            cost = cost + Wa[l + 1].T @ out_b
            if not all_finite(cost):
                raise InvalidModel(
                    "weight matching overflows float64 (the weights are too large, e.g. 1e300): "
                    "rescale the models before matching them"
                )
            rows, cols = linear_sum_assignment(cost.numpy(), maximize=True)
            new = torch.as_tensor(cols[np.argsort(rows)])
            if not torch.equal(new, perms[l]):
                perms[l], changed = new, True
        if not changed:
            break
    return [[int(v) for v in p] for p in perms]


def equivalent(model_a: nn.Module, model_b: nn.Module, *, atol: float = 1e-10) -> bool:
    """Whether ``model_b`` is a neuron permutation of ``model_a`` (weights equal to ``atol``)."""
    atol = check_number("atol", atol, minimum=0.0)
    va, vb = mlp_chain(model_a), mlp_chain(model_b)
    if va.sizes != vb.sizes:
        return False
    perms = match_weights(model_a, model_b)
    pb = as_mlp(permute_all(model_b, perms))
    for la, lb in zip(va.linears, pb.linears):
        if not torch.allclose(la.weight.double(), lb.weight.double(), rtol=0, atol=atol):
            return False
        if (la.bias is None) != (lb.bias is None):
            return False
        if la.bias is not None and not torch.allclose(
            la.bias.double(), lb.bias.double(), rtol=0, atol=atol
        ):
            return False
    return True
