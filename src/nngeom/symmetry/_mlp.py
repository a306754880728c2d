"""MLP chains for the symmetry functions: the view, index checks, and rebuilding a new net.

Hidden layers are numbered from 0; neuron ``m`` of hidden layer ``l`` has the *incoming* vector
``(W_l[m, :], b_l[m])`` and the *outgoing* vector ``W_{l+1}[:, m]``. The functions of this
package that edit an MLP chain take its weights apart (:func:`parts`), edit the tensors and
build a new ``nn.Sequential`` with copies of the activations (:func:`rebuild`).
"""

from __future__ import annotations

import copy
import numbers

import torch
from torch import Tensor, nn
from torch.nn.utils import skip_init

from .._checks import all_finite, check_int
from .._errors import InvalidInput, UnsupportedModel
from ..nets import MLP, as_mlp

# Functions that also work on graph models (their dense hidden layers), named in messages.
GRAPH_FUNCTIONS = (
    "permute, permute_all, merge_neurons, split_neuron, embed_merged, flat_directions and "
    "find_permutation_saddle"
)


def mlp_chain(model: nn.Module, *, need_hidden: bool = True) -> MLP:
    """The MLP view of ``model``, or :class:`~nngeom.UnsupportedModel` naming the functions
    that work on graph models instead."""
    try:
        view = as_mlp(model)
    except UnsupportedModel as exc:
        if "training mode" in str(exc) or isinstance(model, MLP):
            raise
        raise UnsupportedModel(
            f"{exc}. This function needs an MLP chain; on a model that is a graph (residual "
            f"MLP, conv net with a dense head) {GRAPH_FUNCTIONS} work on its dense hidden "
            "layers (nngeom.symmetry.dense_hidden_layers)"
        ) from exc
    if need_hidden and view.depth == 0:
        raise UnsupportedModel(
            "the model has no hidden layer: permutation symmetry needs at least one hidden layer "
            "(Linear, activation, Linear)"
        )
    return view


def is_chain(model: nn.Module) -> bool:
    """Whether ``model`` has an MLP view (then the MLP code, which returns an nn.Sequential)."""
    if isinstance(model, MLP):
        return True
    try:
        as_mlp(model, check_finite=False)
    except UnsupportedModel as exc:
        if "training mode" in str(exc):
            raise
        return False
    return True


def as_int(v: object) -> int | None:
    """``v`` as an int if it is an integer (Python, numpy or a 0-d integer tensor), else None."""
    if isinstance(v, Tensor) and v.ndim == 0 and not v.is_floating_point() and not v.is_complex():
        v = v.item()
    if isinstance(v, bool) or not isinstance(v, numbers.Integral):
        return None
    return int(v)


def check_layer(view: MLP, layer: int) -> int:
    """``layer`` as a hidden layer index of ``view`` (anything with ``depth`` and ``widths``)."""
    layer = check_int("layer", layer)
    if not 0 <= layer < view.depth:
        raise InvalidInput(
            f"hidden layer {layer} does not exist: the model has {view.depth} hidden layer(s), "
            f"numbered 0..{view.depth - 1}"
        )
    return layer


def check_neuron(view: MLP, layer: int, i: int, what: str = "neuron") -> int:
    """``i`` as a neuron index of hidden ``layer``."""
    width = view.widths[layer]
    if as_int(i) is None or not 0 <= int(i) < width:
        raise InvalidInput(
            f"{what} {i!r} is out of range: hidden layer {layer} has neurons 0..{width - 1}"
        )
    return int(i)


def check_pair(view: MLP, layer: int, i: int, j: int) -> tuple[int, int]:
    """Two different neurons ``i, j`` of hidden ``layer`` (a layer of width >= 2)."""
    layer = check_layer(view, layer)
    if view.widths[layer] < 2:
        raise InvalidInput(
            f"hidden layer {layer} has width 1: a permutation point needs two neurons in the layer"
        )
    i, j = check_neuron(view, layer, i, "neuron i"), check_neuron(view, layer, j, "neuron j")
    if i == j:
        raise InvalidInput(f"i and j must be two different neurons, got i == j == {i}")
    return i, j


def check_result(model: nn.Module, what: str = "the result") -> nn.Module:
    """Refuse a result whose weights overflowed (NaN/inf from finite inputs)."""
    for name, p in model.named_parameters():
        if not all_finite(p):
            raise InvalidInput(
                f"{what} would have NaN or inf in '{name}' (the arithmetic overflowed "
                f"{p.dtype}); use smaller factors (lam) or weights, or float64"
            )
    return model


def same_architecture(model_a: nn.Module, model_b: nn.Module) -> None:
    """Refuse two models whose parameters differ in names, shapes or dtypes."""
    sa = [(k, tuple(p.shape), p.dtype) for k, p in model_a.named_parameters()]
    sb = [(k, tuple(p.shape), p.dtype) for k, p in model_b.named_parameters()]
    if sa != sb:
        raise InvalidInput(
            "the two models must have the same parameters (names, shapes and dtypes): "
            f"{[(k, s, str(d)) for k, s, d in sa][:4]}... vs "
            f"{[(k, s, str(d)) for k, s, d in sb][:4]}..."
        )


def parts(view: MLP) -> tuple[list[Tensor], list[Tensor | None]]:
    """Copies of the view's weights and biases (None for a Linear without bias)."""
    W = [lin.weight.detach().clone() for lin in view.linears]
    b = [lin.bias.detach().clone() if lin.bias is not None else None for lin in view.linears]
    return W, b


def rebuild(view: MLP, weights: list[Tensor], biases: list[Tensor | None]) -> nn.Sequential:
    """A new Sequential with the given weights/biases and copies of the view's activations;
    a frozen weight or bias of the view stays frozen (``requires_grad=False``)."""
    layers: list[nn.Module] = []
    for idx, (W, b) in enumerate(zip(weights, biases)):
        old = view.linears[idx]
        lin = skip_init(
            nn.Linear, W.shape[1], W.shape[0], bias=b is not None, dtype=W.dtype, device=W.device
        )
        with torch.no_grad():
            lin.weight.copy_(W)
            if b is not None:
                lin.bias.copy_(b)
        lin.weight.requires_grad_(old.weight.requires_grad)
        if b is not None and old.bias is not None:
            lin.bias.requires_grad_(old.bias.requires_grad)
        layers.append(lin)
        if idx < len(view.activations):
            layers.append(copy.deepcopy(view.activations[idx]))
    if view.output_activation is not None:
        layers.append(copy.deepcopy(view.output_activation))
    return check_result(nn.Sequential(*layers))
