"""Permutation symmetry of MLPs: permutations, permutation points, saddles, valleys, counting.

After Brea, Simsek, Illing & Gerstner (2019), "Weight-space symmetry in deep networks gives rise
to permutation saddles, connected by equal-loss valleys across the loss landscape".

Conventions: hidden layers are numbered from 0; neuron ``m`` of hidden layer ``l`` has the
*incoming* vector ``(W_l[m, :], b_l[m])`` and the *outgoing* vector ``W_{l+1}[:, m]`` (of length
``n_{l+1}``, the next layer's width or the output size). Functions return new modules (an
``nn.Sequential`` of Linear + activation layers) and never modify their inputs.

* :func:`permute`, :func:`canonical_form`, :func:`match_weights`, :func:`equivalent` —
  the ``prod n_l!`` equivalent copies of a network, and finding the permutation between two.
* :func:`merge_neurons` / :func:`split_neuron` / :func:`embed_merged` — a permutation point is
  a net in which two neurons of a layer have equal incoming vectors; it is the image of a net
  with one neuron fewer (the *reduced* net: incoming averaged, outgoing summed) under a split
  ``a -> (lam a, (1 - lam) a)``; every ``lam`` gives the same function.
* :func:`find_permutation_saddle` — optimise the reduced net to a critical point (float64
  L-BFGS, then Newton steps with a pseudo-inverse / MINRES), embed it back, and report its loss,
  gradient norm, Hessian spectrum, saddle index and zero eigenvalues against the paper's
  ``n_{l+1}`` (the loss is constant along the ``n_{l+1}`` directions ``(delta, -delta)``; at a
  critical point that makes ``n_negative + n_zero >= n_{l+1}``, and ``n_{l+1} - rank(H D) >= 1``
  of them are zero modes: all of them when ``n_{l+1} = 1``, not in general).
* :func:`equal_loss_path` — the three-segment constant-loss path from a configuration to its
  ``(i j)``-swapped copy; :func:`linear_path_losses`, :func:`bezier_path` for comparison.
* :func:`count_equivalent_minima`, :func:`count_permutation_points`,
  :func:`permutation_point_factor` — exact counts (Python ints / Fractions).

Graph models (residual MLPs, conv nets with a dense head, anything :func:`nngeom.model_view`
traces that is not an MLP chain): :func:`dense_hidden_layers` finds the layers whose units can
be permuted alone (an activation between one ``nn.Linear`` and ``nn.Linear`` consumers only,
with BatchNorm1d in eval mode, Dropout, Identity and per-unit PReLU handled). :func:`permute`,
:func:`permute_all`, :func:`merge_neurons`, :func:`split_neuron`, :func:`embed_merged`,
:func:`flat_directions` and :func:`find_permutation_saddle` number those layers and return a
deep copy of the model (same class, same forward) with the layer's tensors reordered, merged or
split. The other functions (canonical form, weight matching, equal-loss paths, rescaling
directions, the data-null subspace) need an MLP chain and raise ``UnsupportedModel`` otherwise.
"""

from __future__ import annotations

import copy
import math
import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from fractions import Fraction

import numpy as np
import torch
from torch import Tensor, fx, nn
from torch.nn.utils import skip_init

from ._checks import (
    all_finite,
    check_int,
    check_model_tensors,
    check_number,
    check_positive_int,
    check_real_tensor,
    check_seed,
)
from ._errors import InvalidInput, InvalidModel, UnsupportedModel
from .hessian import (
    MAX_BASIS_ENTRIES,
    MAX_FULL_PARAMETERS,
    HessianOperator,
    _check_data,
    count_eigenvalues,
    eigvalsh,
    lanczos,
)
from .nets import MLP, as_mlp
from .train import LossFn, loss_fn, train

__all__ = [
    "DenseLayer",
    "dense_hidden_layers",
    "permute",
    "permute_all",
    "canonical_form",
    "match_weights",
    "equivalent",
    "merge_neurons",
    "split_neuron",
    "embed_merged",
    "merge_pairs",
    "flat_directions",
    "rescaling_directions",
    "find_critical_point",
    "find_permutation_saddle",
    "FreeSubspace",
    "data_null_subspace",
    "PermutationPoint",
    "CriticalPoint",
    "equal_loss_path",
    "EqualLossPath",
    "path_losses",
    "linear_path_losses",
    "bezier_path",
    "BezierPath",
    "count_equivalent_minima",
    "count_permutation_points",
    "permutation_point_factor",
    "flatten_parameters",
    "load_flat_parameters",
]


# ------------------------------------------------------------------------------------------
# helpers


def _view(model: nn.Module, *, need_hidden: bool = True) -> MLP:
    try:
        view = as_mlp(model)
    except UnsupportedModel as exc:
        if "training mode" in str(exc) or isinstance(model, MLP):
            raise
        raise UnsupportedModel(
            f"{exc}. This function needs an MLP chain; on a model that is a graph (residual "
            "MLP, conv net with a dense head) permute, permute_all, merge_neurons, "
            "split_neuron, embed_merged, flat_directions and find_permutation_saddle work on "
            "its dense hidden layers (nngeom.symmetry.dense_hidden_layers)"
        ) from exc
    if need_hidden and view.depth == 0:
        raise UnsupportedModel(
            "the model has no hidden layer: permutation symmetry needs at least one hidden layer "
            "(Linear, activation, Linear)"
        )
    return view


def _check_layer(view: MLP, layer: int) -> int:
    if isinstance(layer, bool) or not isinstance(layer, (int, np.integer)):
        raise InvalidInput(
            f"layer must be an int (hidden layers are numbered from 0), got {layer!r}"
        )
    if not 0 <= int(layer) < view.depth:
        raise InvalidInput(
            f"hidden layer {layer} does not exist: the model has {view.depth} hidden layer(s), "
            f"numbered 0..{view.depth - 1}"
        )
    return int(layer)


def _check_neuron(view: MLP, layer: int, i: int, what: str = "neuron") -> int:
    width = view.widths[layer]
    if isinstance(i, bool) or not isinstance(i, (int, np.integer)) or not 0 <= int(i) < width:
        raise InvalidInput(
            f"{what} {i!r} is out of range: hidden layer {layer} has neurons 0..{width - 1}"
        )
    return int(i)


def _check_pair(view: MLP, layer: int, i: int, j: int) -> tuple[int, int]:
    layer = _check_layer(view, layer)
    if view.widths[layer] < 2:
        raise InvalidInput(
            f"hidden layer {layer} has width 1: a permutation point needs two neurons in the layer"
        )
    i, j = _check_neuron(view, layer, i, "neuron i"), _check_neuron(view, layer, j, "neuron j")
    if i == j:
        raise InvalidInput(f"i and j must be two different neurons, got i == j == {i}")
    return i, j


def _check_result(model: nn.Module, what: str = "the result") -> nn.Module:
    """Refuse a result whose weights overflowed (NaN/inf from finite inputs)."""
    for name, p in model.named_parameters():
        if not all_finite(p):
            raise InvalidInput(
                f"{what} would have NaN or inf in '{name}' (the arithmetic overflowed "
                f"{p.dtype}); use smaller factors (lam) or weights, or float64"
            )
    return model


def _check_module(model: object, name: str = "model") -> nn.Module:
    if isinstance(model, MLP):
        return model.module
    if not isinstance(model, nn.Module):
        raise UnsupportedModel(f"{name} must be a torch nn.Module, got {type(model).__name__}")
    check_model_tensors(model)
    return model


def _check_basis_size(rows: int, n: int, what: str) -> None:
    if rows * n > MAX_BASIS_ENTRIES:
        raise InvalidInput(
            f"{what} would hold {rows:,} x {n:,} = {rows * n:,} entries, more than nngeom's "
            f"limit of {MAX_BASIS_ENTRIES:,}; use fewer steps or a smaller model"
        )


def _same_architecture(model_a: nn.Module, model_b: nn.Module) -> None:
    sa = [(k, tuple(p.shape), p.dtype) for k, p in model_a.named_parameters()]
    sb = [(k, tuple(p.shape), p.dtype) for k, p in model_b.named_parameters()]
    if sa != sb:
        raise InvalidInput(
            "the two models must have the same parameters (names, shapes and dtypes): "
            f"{[(k, s, str(d)) for k, s, d in sa][:4]}... vs "
            f"{[(k, s, str(d)) for k, s, d in sb][:4]}..."
        )


def _rebuild(view: MLP, weights: list[Tensor], biases: list[Tensor | None]) -> nn.Sequential:
    """A new Sequential with the given weights/biases and copies of the view's activations."""
    layers: list[nn.Module] = []
    for idx, (W, b) in enumerate(zip(weights, biases)):
        lin = skip_init(
            nn.Linear, W.shape[1], W.shape[0], bias=b is not None, dtype=W.dtype, device=W.device
        )
        with torch.no_grad():
            lin.weight.copy_(W)
            if b is not None:
                lin.bias.copy_(b)
        layers.append(lin)
        if idx < len(view.activations):
            layers.append(copy.deepcopy(view.activations[idx]))
    if view.output_activation is not None:
        layers.append(copy.deepcopy(view.output_activation))
    return _check_result(nn.Sequential(*layers))


def _parts(view: MLP) -> tuple[list[Tensor], list[Tensor | None]]:
    W = [lin.weight.detach().clone() for lin in view.linears]
    b = [lin.bias.detach().clone() if lin.bias is not None else None for lin in view.linears]
    return W, b


def flatten_parameters(model: nn.Module) -> Tensor:
    """The model's parameters concatenated in ``named_parameters()`` order: ``(n,)``."""
    model = _check_module(model)
    ps = [p.detach().reshape(-1) for p in model.parameters()]
    if not ps:
        raise InvalidInput(f"{type(model).__name__} has no parameters to flatten")
    return torch.cat(ps)


def load_flat_parameters(model: nn.Module, theta: Tensor) -> nn.Module:
    """A copy of ``model`` with parameters ``theta`` ``(n,)`` (inverse of :func:`flatten_parameters`)."""
    model = _check_module(model)
    n = sum(p.numel() for p in model.parameters())
    if n == 0:
        raise InvalidInput(f"{type(model).__name__} has no parameters to load")
    if not isinstance(theta, Tensor) or tuple(theta.shape) != (n,):
        raise InvalidInput(
            f"theta must be a tensor of shape ({n},), got "
            f"{getattr(theta, 'shape', type(theta).__name__)!r}"
        )
    check_real_tensor("theta", theta)
    if theta.dtype == torch.bool or not all_finite(theta):
        raise InvalidInput("theta must hold finite numbers (no NaN, inf or bools)")
    out = copy.deepcopy(model)
    torch.nn.utils.vector_to_parameters(
        theta.detach().to(next(out.parameters()).dtype), out.parameters()
    )
    return out


# ------------------------------------------------------------------------------------------
# dense hidden layers of any traced model (graphs: residual MLPs, conv nets with a dense head)

_PASS_MODULES: tuple[type, ...] = (
    nn.Identity,
    nn.Dropout,
    nn.Dropout1d,
    nn.AlphaDropout,
    nn.FeatureAlphaDropout,
)


@dataclass(frozen=True)
class DenseLayer:
    """A dense hidden layer of a model's traced graph (see :func:`dense_hidden_layers`).

    Its ``width`` units are the outputs of the ``nn.Linear`` module ``linear_in``, through
    optional per-unit affine modules (``BatchNorm1d`` in evaluation mode) and Dropout / Identity,
    into one element-wise activation (``activation``: the same function for every unit, or an
    ``nn.PReLU`` with one slope per unit), whose output (through Dropout / Identity) is read only
    by the ``nn.Linear`` modules ``linear_out``.

    Attributes:
        index: the layer's number (0, 1, ... in graph order).
        width: the number of units.
        activation: the element-wise operation and where it is in the forward.
        linear_in, linear_out: qualified module names (as in ``model.named_modules()``).
        between: qualified names of the per-unit affine modules between ``linear_in`` and the
            activation (BatchNorm1d).
        activation_module: the qualified name of a per-unit activation module (PReLU with
            ``num_parameters == width``), else None.
        incoming: ``(qualified tensor name, axis)`` of every parameter / buffer indexed by the
            layer's units on the way in (Linear weight rows and bias, BatchNorm weight, bias,
            running mean and variance, PReLU slopes).
        outgoing: ``(qualified tensor name, axis)`` of the consumers' weight columns.
        next_width: ``sum of out_features`` of ``linear_out`` (the paper's ``n_{l+1}``).

    >>> import nngeom as ng
    >>> layer = ng.dense_hidden_layers(ng.mlp([2, 5, 1]))[0]
    >>> type(layer).__name__, layer.width, layer.linear_in
    ('DenseLayer', 5, '0')
    """

    index: int
    width: int
    activation: str
    linear_in: str
    linear_out: tuple[str, ...]
    between: tuple[str, ...]
    activation_module: str | None
    incoming: tuple[tuple[str, int], ...]
    outgoing: tuple[tuple[str, int], ...]
    next_width: int

    @property
    def units(self) -> tuple[tuple[str, int], ...]:
        """Every ``(qualified tensor name, axis)`` indexed by the layer's units."""
        return self.incoming + self.outgoing


def dense_hidden_layers(
    model: nn.Module, input_shape: Sequence[int] | None = None
) -> list[DenseLayer]:
    """The dense hidden layers of any model the model view can trace, in graph order.

    A dense hidden layer is an element-wise activation node whose input comes from one
    ``nn.Linear`` module (possibly through ``BatchNorm1d`` in evaluation mode, Dropout or
    Identity modules) and whose output is read only by ``nn.Linear`` modules (possibly through
    Dropout / Identity). Its units can be permuted, merged and split without changing the other
    layers. Not dense (and not listed): an activation whose output also feeds a residual ``+``,
    a pooling or the model's output, or whose pre-activation is also used elsewhere; an
    activation module with parameters other than ``nn.PReLU`` (its parameters could depend on
    the unit in ways nngeom cannot permute); a Linear / BatchNorm / PReLU module that is called
    more than once, shared under two names, or whose tensors are read directly in the forward;
    functional layers (``F.linear``).

    For a chain MLP the dense hidden layers are its hidden layers. ``input_shape`` (the
    per-example input shape) is needed only for a model that does not start with an
    ``nn.Linear`` and has a BatchNorm between a Linear and its activation (to check that the
    BatchNorm normalises the Linear's units).

    Raises:
        UnsupportedModel: the model view cannot be built (see :func:`nngeom.model_view`), or a
            BatchNorm between a Linear and an activation with an unknown input shape.

    >>> import nngeom as ng
    >>> [(l.index, l.width, l.activation) for l in ng.dense_hidden_layers(ng.mlp([2, 5, 3, 1]))]
    [(0, 5, "relu at module '1'"), (1, 3, "relu at module '3'")]
    """
    from .view import model_view

    model = _check_module(model)
    if input_shape is not None:
        try:
            if isinstance(input_shape, (str, bytes)):
                raise TypeError
            input_shape = tuple(input_shape)
        except TypeError:
            raise InvalidInput(
                f"input_shape must be a sequence of positive ints (the per-example shape), got "
                f"{input_shape!r}"
            ) from None
        input_shape = tuple(
            check_int(f"input_shape[{k}]", v, minimum=1) for k, v in enumerate(input_shape)
        )
    view = model_view(model, input_shape)
    gm = view.graph_module
    root = view.module
    names: dict[int, list[str]] = {}
    for qn, m in root.named_modules(remove_duplicate=False):
        names.setdefault(id(m), []).append(qn)
    tensor_uses: dict[int, int] = {}
    for _, t in list(root.named_parameters(remove_duplicate=False)) + list(
        root.named_buffers(remove_duplicate=False)
    ):
        tensor_uses[id(t)] = tensor_uses.get(id(t), 0) + 1
    calls: dict[str, int] = {}
    attrs: list[str] = []
    for node in gm.graph.nodes:
        if node.op == "call_module":
            calls[str(node.target)] = calls.get(str(node.target), 0) + 1
        elif node.op == "get_attr":
            attrs.append(str(node.target))

    def module(node: fx.Node) -> nn.Module | None:
        if node.op != "call_module":
            return None
        return gm.get_submodule(str(node.target))

    def owned(node: fx.Node) -> str | None:
        """The module's unique qualified name in the model, if nngeom may edit it."""
        m = module(node)
        qn = names.get(id(m), [])
        target = str(node.target)
        if m is None or len(qn) != 1 or calls.get(target, 0) != 1:
            return None
        if any(a == target or a.startswith(target + ".") for a in attrs):
            return None
        for t in list(m.parameters()) + list(m.buffers()):
            if tensor_uses.get(id(t), 0) != 1:
                return None
        return qn[0]

    def single_input(node: fx.Node) -> fx.Node | None:
        ins = node.all_input_nodes
        if len(ins) != 1 or not node.args or node.args[0] is not ins[0]:
            return None
        return ins[0]

    shapes: dict[str, tuple[int, ...]] | None = None

    def out_shape(node: fx.Node) -> tuple[int, ...]:
        nonlocal shapes
        if shapes is None:
            if view.input_shape is None:
                raise UnsupportedModel(
                    f"a BatchNorm sits between a Linear and an activation ({_where_of(node)}) "
                    "and the model's input shape is unknown: pass input_shape= (the per-example "
                    "input shape) so that nngeom can check which axis it normalises"
                )
            shapes = _shapes(gm, view.input_shape)
        return shapes[node.name]

    found: list[tuple[int, DenseLayer]] = []
    order = {vn.node.name: k for k, vn in enumerate(view.nodes)}
    for vn in view.nodes:
        if vn.kind != "elementwise":
            continue
        E = vn.node
        src = single_input(E) if E.op == "call_module" else None
        if E.op != "call_module":
            if len(vn.inputs) != 1 or not E.args or not isinstance(E.args[0], fx.Node):
                continue
            src = E.args[0] if E.args[0].name == vn.inputs[0] else None
        if src is None:
            continue
        act_mod = module(E)
        act_name: str | None = None
        if act_mod is not None:
            has_tensors = any(True for _ in act_mod.parameters()) or any(
                True for _ in act_mod.buffers()
            )
            if isinstance(act_mod, nn.PReLU):
                if act_mod.num_parameters > 1:
                    act_name = owned(E)
                    if act_name is None:
                        continue
            elif has_tensors:
                continue
        # backwards: (BatchNorm1d | Dropout | Identity)* then the incoming Linear
        between: list[tuple[fx.Node, nn.Module]] = []
        cur: fx.Node | None = src
        lin_in = None
        while cur is not None:
            if len(cur.users) != 1:
                break
            m = module(cur)
            if isinstance(m, nn.Linear):
                lin_in = cur
                break
            if isinstance(m, (nn.BatchNorm1d, *_PASS_MODULES)):
                between.append((cur, m))
                cur = single_input(cur)
                continue
            break
        if lin_in is None:
            continue
        L_in = module(lin_in)
        width = L_in.out_features
        in_name = owned(lin_in)
        if in_name is None:
            continue
        ok = True
        bn_names: list[str] = []
        for node, m in between:
            if isinstance(m, nn.BatchNorm1d):
                qn = owned(node)
                if qn is None or m.num_features != width or len(out_shape(node)) != 2:
                    ok = False
                    break
                bn_names.append(qn)
        if not ok:
            continue
        if act_name is not None and act_mod.num_parameters != width:
            continue
        # forwards: (Dropout | Identity)* then only Linear consumers
        outs: list[fx.Node] = []
        stack = list(E.users)
        if not stack:
            continue
        while stack and ok:
            u = stack.pop()
            m = module(u)
            if isinstance(m, _PASS_MODULES) and single_input(u) is not None:
                if not u.users:
                    ok = False
                stack.extend(u.users)
            elif isinstance(m, nn.Linear) and single_input(u) is not None:
                outs.append(u)
            else:
                ok = False
        out_names = [owned(u) for u in outs]
        if not ok or any(n is None for n in out_names):
            continue
        if any(module(u).in_features != width for u in outs):
            continue
        incoming = [(f"{in_name}.weight", 0)]
        if L_in.bias is not None:
            incoming.append((f"{in_name}.bias", 0))
        for (_, m), qn in zip([b for b in between if isinstance(b[1], nn.BatchNorm1d)], bn_names):
            for t in ("weight", "bias", "running_mean", "running_var"):
                if getattr(m, t, None) is not None:
                    incoming.append((f"{qn}.{t}", 0))
        if act_name is not None:
            incoming.append((f"{act_name}.weight", 0))
        outs_sorted = sorted(zip(outs, out_names), key=lambda t: order[t[0].name])
        found.append(
            (
                order[E.name],
                DenseLayer(
                    index=0,
                    width=int(width),
                    activation=f"{vn.op} at {vn.where}",
                    linear_in=in_name,
                    linear_out=tuple(str(n) for _, n in outs_sorted),
                    between=tuple(bn_names),
                    activation_module=act_name,
                    incoming=tuple(incoming),
                    outgoing=tuple((f"{n}.weight", 1) for _, n in outs_sorted),
                    next_width=int(sum(module(u).out_features for u, _ in outs_sorted)),
                ),
            )
        )
    found.sort(key=lambda t: t[0])
    return [replace(dl, index=k) for k, (_, dl) in enumerate(found)]


def _where_of(node: fx.Node) -> str:
    from .view import _where

    return _where(node)


def _shapes(gm: fx.GraphModule, input_shape: tuple[int, ...]) -> dict[str, tuple[int, ...]]:
    """Output shapes of every tensor node on a probe input of per-example ``input_shape``."""
    from torch.fx.passes.shape_prop import ShapeProp

    p = next(iter(gm.parameters()), None)
    dtype = p.dtype if p is not None else torch.float32
    device = p.device if p is not None else torch.device("cpu")
    x = torch.zeros(2, *input_shape, dtype=dtype, device=device)
    with torch.no_grad():
        ShapeProp(gm).propagate(x)
    out = {}
    for node in gm.graph.nodes:
        meta = node.meta.get("tensor_meta")
        if meta is not None and hasattr(meta, "shape"):
            out[node.name] = tuple(int(s) for s in meta.shape)
    return out


def _is_chain(model: nn.Module) -> bool:
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


class _Widths:
    """The depth / widths of a graph model's dense layers, for the ``_check_*`` helpers."""

    def __init__(self, layers: list[DenseLayer]) -> None:
        self.depth = len(layers)
        self.widths = [dl.width for dl in layers]


def _dense_layers(model: nn.Module, input_shape: Sequence[int] | None = None) -> list[DenseLayer]:
    layers = dense_hidden_layers(model, input_shape)
    for name, p in model.named_parameters():
        if not all_finite(p):
            raise InvalidModel(
                f"parameter {name} has NaN or inf entries; re-initialise or retrain the model "
                "before analysing it"
            )
    if not layers:
        raise UnsupportedModel(
            f"{type(model).__name__} is not an MLP chain and has no dense hidden layer (an "
            "activation between an nn.Linear and nn.Linear consumers only; see "
            "nngeom.symmetry.dense_hidden_layers): permutation symmetry needs one. An activation "
            "whose output also feeds a skip connection cannot be permuted alone"
        )
    return layers


def _graph_layer(
    model: nn.Module, layer: int, input_shape: Sequence[int] | None = None
) -> tuple[DenseLayer, _Widths]:
    """Dense hidden layer ``layer`` of a graph model, and the depth / widths of all of them."""
    layers = _dense_layers(model, input_shape)
    if isinstance(layer, bool) or not isinstance(layer, (int, np.integer)):
        raise InvalidInput(
            f"layer must be an int (dense hidden layers are numbered from 0), got {layer!r}"
        )
    if not 0 <= int(layer) < len(layers):
        raise InvalidInput(
            f"dense hidden layer {layer} does not exist: {type(model).__name__} has "
            f"{len(layers)} dense hidden layer(s), numbered 0..{len(layers) - 1} (see "
            "nngeom.symmetry.dense_hidden_layers)"
        )
    return layers[int(layer)], _Widths(layers)


def _set_tensor(model: nn.Module, name: str, value: Tensor) -> None:
    owner, _, attr = name.rpartition(".")
    mod = model.get_submodule(owner) if owner else model
    old = getattr(mod, attr)
    if attr in mod._parameters:
        setattr(mod, attr, nn.Parameter(value.detach().clone(), requires_grad=old.requires_grad))
    else:
        mod._buffers[attr] = value.detach().clone()


def _graph_edit(
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
        new = f_in(out.get_parameter(name) if _is_param(out, name) else out.get_buffer(name))
        width = new.shape[0]
        _set_tensor(out, name, new)
    for name, _ in dl.outgoing:
        _set_tensor(out, name, f_out(out.get_parameter(name)))
    assert width is not None
    out.get_submodule(dl.linear_in).out_features = width
    for qn in dl.between:
        out.get_submodule(qn).num_features = width
    if dl.activation_module is not None:
        out.get_submodule(dl.activation_module).num_parameters = width
    for qn in dl.linear_out:
        out.get_submodule(qn).in_features = width
    return _check_result(out)


def _is_param(model: nn.Module, name: str) -> bool:
    owner, _, attr = name.rpartition(".")
    mod = model.get_submodule(owner) if owner else model
    return attr in mod._parameters


def _graph_permute(model: nn.Module, dl: DenseLayer, perm: Sequence[int]) -> nn.Module:
    def rows(t: Tensor) -> Tensor:
        return t.detach().index_select(0, torch.as_tensor(perm, device=t.device))

    def cols(t: Tensor) -> Tensor:
        return t.detach().index_select(1, torch.as_tensor(perm, device=t.device))

    return _graph_edit(model, dl, rows, cols)


def _graph_merge(model: nn.Module, dl: DenseLayer, lo: int, hi: int) -> nn.Module:
    keep = [m for m in range(dl.width) if m != hi]

    def rows(t: Tensor) -> Tensor:
        t = t.detach().clone()
        t[lo] = 0.5 * (t[lo] + t[hi])
        return t[keep]

    def cols(t: Tensor) -> Tensor:
        t = t.detach().clone()
        t[:, lo] = t[:, lo] + t[:, hi]
        return t[:, keep]

    return _graph_edit(model, dl, rows, cols)


def _graph_split(model: nn.Module, dl: DenseLayer, i: int, lam: float, position: int) -> nn.Module:
    def rows(t: Tensor) -> Tensor:
        t = t.detach()
        return torch.cat([t[:position], t[i : i + 1], t[position:]])

    def cols(t: Tensor) -> Tensor:
        t = t.detach().clone()
        a = t[:, i].clone()
        t[:, i] = lam * a
        return torch.cat([t[:, :position], ((1.0 - lam) * a)[:, None], t[:, position:]], dim=1)

    return _graph_edit(model, dl, rows, cols)


def _graph_flat_directions(model: nn.Module, dl: DenseLayer, i: int, j: int) -> Tensor:
    off = _param_offsets(model)
    n = sum(p.numel() for p in model.parameters())
    _check_basis_size(n, dl.next_width, "the flat directions")
    p0 = next(model.parameters())
    D = torch.zeros(n, dl.next_width, dtype=p0.dtype, device=p0.device)
    s = 1.0 / math.sqrt(2.0)
    c = 0
    for name, _ in dl.outgoing:
        W = model.get_parameter(name)
        o = off[id(W)]
        rows, cols = W.shape
        for r in range(rows):
            D[o + r * cols + i, c] = s
            D[o + r * cols + j, c] = -s
            c += 1
    return D


# ------------------------------------------------------------------------------------------
# permutations


def _as_int(v: object) -> int | None:
    """``v`` as an int if it is an integer (Python, numpy or a 0-d integer tensor), else None."""
    if isinstance(v, Tensor) and v.ndim == 0 and not v.is_floating_point() and not v.is_complex():
        v = v.item()
    if isinstance(v, bool) or not isinstance(v, numbers.Integral):
        return None
    return int(v)


def _check_perm(perm: Sequence[int], width: int, layer: int) -> list[int]:
    try:
        if isinstance(perm, (str, bytes)):
            raise TypeError
        p = [_as_int(v) for v in perm]
    except TypeError:
        p = [None]
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
    if not _is_chain(model):
        dl, _ = _graph_layer(model, layer, input_shape)
        return _graph_permute(model, dl, _check_perm(perm, dl.width, dl.index))
    view = _view(model)
    layer = _check_layer(view, layer)
    p = torch.tensor(_check_perm(perm, view.widths[layer], layer), device=view.device)
    W, b = _parts(view)
    W[layer] = W[layer][p]
    if b[layer] is not None:
        b[layer] = b[layer][p]
    W[layer + 1] = W[layer + 1][:, p]
    return _rebuild(view, W, b)


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
    try:
        if isinstance(perms, (str, bytes)):
            raise TypeError
        perms = list(perms)
    except TypeError:
        raise InvalidInput(
            f"perms must be a list with one permutation (or None) per hidden layer, got {perms!r}"
        ) from None
    if not _is_chain(model):
        layers = _dense_layers(model, input_shape)
        if len(perms) != len(layers):
            raise InvalidInput(
                f"need one permutation per dense hidden layer ({len(layers)}), got {len(perms)}"
            )
        out = copy.deepcopy(model)
        for dl, perm in zip(layers, perms):
            if perm is not None:
                out = _graph_permute(out, dl, _check_perm(perm, dl.width, dl.index))
        return out
    view = _view(model)
    if len(perms) != view.depth:
        raise InvalidInput(
            f"need one permutation per hidden layer ({view.depth}), got {len(perms)}"
        )
    out: nn.Module = model
    for layer, perm in enumerate(perms):
        if perm is not None:
            out = permute(out, layer, perm)
    return out if out is not model else _rebuild(view, *_parts(view))


def canonical_form(model: nn.Module) -> tuple[nn.Sequential, list[list[int]]]:
    """The representative of the model's permutation class with sorted neurons.

    Layer by layer (0 first), neurons are sorted lexicographically by their incoming vector
    ``(W_l[m, :], b_l[m])`` (after the previous layer has been sorted). Two nets with distinct
    neurons compute the same function up to permutation iff their canonical forms are equal.
    Returns ``(canonical model, perms)`` with ``canonical = permute_all(model, perms)``.
    """
    view = _view(model)
    W, b = _parts(view)
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
    return _rebuild(view, W, b), perms


def match_weights(
    model_a: nn.Module, model_b: nn.Module, *, max_iter: int = 100, seed: int = 0
) -> list[list[int]]:
    """Permutations that bring ``model_b``'s weights closest to ``model_a``'s (weight matching).

    A forward pass first matches each layer's incoming vectors (least squares), then coordinate
    descent over layers (Ainsworth et al. 2023, "Git Re-Basin"): each layer's
    permutation maximises ``<incoming_a, incoming_b P> + <outgoing_a, P outgoing_b>`` with the
    other layers fixed, solved exactly by ``scipy.optimize.linear_sum_assignment``; layers are
    visited in a seeded random order until no permutation changes. For two nets that are exact
    permutations of each other with distinct neurons, the result is that permutation.

    Returns one permutation per hidden layer, to be used as ``permute_all(model_b, perms)``.
    """
    from scipy.optimize import linear_sum_assignment

    max_iter = check_int("max_iter", max_iter, minimum=0)
    seed = check_seed(seed)
    va, vb = _view(model_a), _view(model_b)
    if va.sizes != vb.sizes:
        raise InvalidInput(f"the two models have different sizes: {va.sizes} vs {vb.sizes}")
    Wa, ba = _parts(va)
    Wb, bb = _parts(vb)
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
    rng = np.random.default_rng(seed)
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
    va, vb = _view(model_a), _view(model_b)
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


# ------------------------------------------------------------------------------------------
# merge and split


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
    if not _is_chain(model):
        dl, shape = _graph_layer(model, layer, input_shape)
        i, j = _check_pair(shape, dl.index, i, j)
        return _graph_merge(model, dl, min(i, j), max(i, j))
    view = _view(model)
    i, j = _check_pair(view, layer, i, j)
    lo, hi = min(i, j), max(i, j)
    W, b = _parts(view)
    keep = [m for m in range(view.widths[layer]) if m != hi]
    W[layer][lo] = 0.5 * (W[layer][lo] + W[layer][hi])
    if b[layer] is not None:
        b[layer][lo] = 0.5 * (b[layer][lo] + b[layer][hi])
        b[layer] = b[layer][keep]
    W[layer] = W[layer][keep]
    W[layer + 1][:, lo] = W[layer + 1][:, lo] + W[layer + 1][:, hi]
    W[layer + 1] = W[layer + 1][:, keep]
    return _rebuild(view, W, b)


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
    chain = _is_chain(model)
    if chain:
        view = _view(model)
    else:
        dl, view = _graph_layer(model, layer, input_shape)
    layer = _check_layer(view, layer)
    i = _check_neuron(view, layer, i)
    lam = check_number("lam", lam)
    n = view.widths[layer]
    position = n if position is None else check_int("position", position)
    if not 0 <= position <= n:
        raise InvalidInput(f"position must be in 0..{n}, got {position}")
    if not chain:
        return _graph_split(model, dl, i, float(lam), position)
    W, b = _parts(view)
    a = W[layer + 1][:, i].clone()
    W[layer + 1][:, i] = lam * a
    W[layer] = torch.cat([W[layer][:position], W[layer][i : i + 1], W[layer][position:]])
    if b[layer] is not None:
        b[layer] = torch.cat([b[layer][:position], b[layer][i : i + 1], b[layer][position:]])
    col = ((1.0 - lam) * a)[:, None]
    W[layer + 1] = torch.cat([W[layer + 1][:, :position], col, W[layer + 1][:, position:]], dim=1)
    return _rebuild(view, W, b)


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
    view = _view(reduced) if _is_chain(reduced) else _Widths(_dense_layers(reduced, input_shape))
    layer = _check_layer(view, layer)
    n = view.widths[layer] + 1
    ii, jj = _as_int(i), _as_int(j)
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
    view = _view(model)
    seen: dict[int, set[int]] = {}
    checked = []
    try:
        if isinstance(merges, (str, bytes)):
            raise TypeError
        merges = list(merges)
    except TypeError:
        raise InvalidInput(
            f"merges must be a list of (layer, i, j) triples, got {merges!r}"
        ) from None
    for item in merges:
        if not isinstance(item, (tuple, list)) or len(item) != 3:
            raise InvalidInput(f"each merge is (layer, i, j), got {item!r}")
        layer, i, j = item
        i, j = _check_pair(view, layer, i, j)
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
    return out if out is not model else _rebuild(view, *_parts(view))


# ------------------------------------------------------------------------------------------
# special directions


def _param_offsets(model: nn.Module) -> dict[int, int]:
    offsets, o = {}, 0
    for p in model.parameters():
        offsets[id(p)] = o
        o += p.numel()
    return offsets


def flat_directions(
    model: nn.Module, layer: int, i: int, j: int, *, input_shape: Sequence[int] | None = None
) -> Tensor:
    """The ``n_{layer+1}`` directions ``(delta on a_i, -delta on a_j)`` of the outgoing weights.

    At a permutation point (equal incoming vectors of ``i`` and ``j``) the loss is constant
    along each (``d^T H d = 0``). ``H d = 0`` only for ``sum_k delta_k G_k = 0`` (``G_k``: the
    gradient with respect to the pair's incoming vector through output ``k``); a critical point
    guarantees it for ``delta`` along the merged outgoing vector, so at least one (all when
    ``n_{layer+1} = 1``) lies in the Hessian's kernel. Returns an ``(n, n_{layer+1})`` matrix of
    unit columns in :func:`flatten_parameters` order. A model that is not an MLP chain: the
    columns ``i, j`` of every consumer of dense hidden layer ``layer`` (``next_width`` columns).
    """
    if not _is_chain(model):
        dl, shape = _graph_layer(model, layer, input_shape)
        i, j = _check_pair(shape, dl.index, i, j)
        return _graph_flat_directions(model, dl, i, j)
    view = _view(model)
    i, j = _check_pair(view, layer, i, j)
    lin = view.linears[layer + 1]
    off = _param_offsets(model)[id(lin.weight)]
    n = sum(p.numel() for p in model.parameters())
    rows, cols = lin.weight.shape
    _check_basis_size(n, rows, "the flat directions")
    D = torch.zeros(n, rows, dtype=view.dtype, device=view.device)
    s = 1.0 / math.sqrt(2.0)
    for r in range(rows):
        D[off + r * cols + i, r] = s
        D[off + r * cols + j, r] = -s
    return D


def rescaling_directions(model: nn.Module) -> Tensor:
    """The ReLU rescaling directions ``(w, b, -a)`` of every hidden neuron: ``(n, sum(widths))``.

    For positively homogeneous activations (ReLU, LeakyReLU, Identity) the function is unchanged
    by ``(w, b, a) -> (c w, c b, a / c)``; the tangent at ``c = 1`` is this direction.

    Raises:
        UnsupportedModel: an activation that is not positively homogeneous.
    """
    view = _view(model)
    for act in view.activations:
        if type(act) not in (nn.ReLU, nn.LeakyReLU, nn.Identity):
            raise UnsupportedModel(
                f"{type(act).__name__} is not positively homogeneous: the net has no rescaling "
                "symmetry to project out (only ReLU, LeakyReLU, Identity have one)"
            )
    off = _param_offsets(model)
    n = sum(p.numel() for p in model.parameters())
    _check_basis_size(n, sum(view.widths), "the rescaling directions")
    cols = []
    for l, width in enumerate(view.widths):
        lin, nxt = view.linears[l], view.linears[l + 1]
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
    return torch.stack(cols, dim=1)


# ------------------------------------------------------------------------------------------
# critical points


@dataclass
class CriticalPoint:
    """A critical point found by :func:`find_critical_point` (model is a float64 copy).

    Attributes:
        converged: ``grad_norm <= accept_tol`` (the issue's definition: ``< 1e-8``).
        n_data_null: parameters held fixed because they are exactly flat (see
            :func:`data_null_subspace`); 0 when nothing was projected out.
        restarts: perturbed restarts used (0 when the first round converged).
        history: gradient norm after each Newton / Levenberg-Marquardt step.
    """

    model: nn.Module
    loss: float
    grad_norm: float
    lbfgs_steps: int
    newton_steps: int
    history: list[float] = field(default_factory=list)
    converged: bool = False
    n_data_null: int = 0
    restarts: int = 0


class FreeSubspace:
    """The parameters of an MLP minus the exactly flat first-layer directions of the data.

    With ``Xa = [X, 1]`` (or ``X`` when the first Linear has no bias), a first-layer incoming
    vector ``(w_m, b_m)`` enters the net only through ``Xa (w_m, b_m)``: every component in the
    null space of ``Xa`` (input pixels that are 0 in every example, and ``d + 1 - rank(Xa)`` in
    all, e.g. when there are fewer examples than inputs) has zero gradient and zero curvature at
    *every* point. ``theta = theta_0 + B z`` with orthonormal ``B`` ``(n, m)`` keeps the incoming
    vectors in the row space ``V`` ``(d_a, r)`` of ``Xa`` and every other parameter free:
    ``m = n - n_null``, ``n_null = width_0 * (d_a - r)``. ``B`` is applied, never stored.
    """

    def __init__(self, model: nn.Module, X: Tensor, *, rtol: float | None = None) -> None:
        view = _view(model)
        lin = view.linears[0]
        offsets = _param_offsets(model)
        self.n = sum(p.numel() for p in model.parameters())
        self.h, self.d = lin.out_features, lin.in_features
        self.off_w = offsets[id(lin.weight)]
        self.off_b = offsets[id(lin.bias)] if lin.bias is not None else None
        Xa = X.detach().to(torch.float64)
        if lin.bias is not None:
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
        self.m = self.n - self.n_null
        self.constant_zero_inputs = int((X == 0).all(0).sum())

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

    @classmethod
    def whole(cls, n: int) -> FreeSubspace:
        """All ``n`` parameters free (``B = I``)."""
        sub = cls.__new__(cls)
        sub.n = sub.m = int(n)
        sub.n_null = sub.rank = sub.constant_zero_inputs = 0
        return sub

    def to_free(self, v: Tensor) -> Tensor:
        """``B^T v``: ``(n,)`` or ``(n, k)`` -> ``(m,)`` or ``(m, k)``."""
        if self.n_null == 0:
            return v
        one = v.ndim == 1
        v2 = v[:, None] if one else v
        W, rest = self._first(v2)
        Z = torch.einsum("hdk,dr->hrk", W, self.V).reshape(self.h * self.rank, -1)
        out = torch.cat([Z, rest])
        return out[:, 0] if one else out

    def to_full(self, z: Tensor) -> Tensor:
        """``B z``: ``(m,)`` or ``(m, k)`` -> ``(n,)`` or ``(n, k)``."""
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

    def hessian(self, op: HessianOperator) -> Tensor:
        """``B^T H B`` ``(m, m)`` from ``m`` batched Hessian-vector products."""
        if self.n_null == 0:
            return op.full()
        B = self.to_full(torch.eye(self.m, dtype=op.dtype, device=op.device))  # (n, m)
        HB = op.matmat(B.T)  # (m, n): row c is (H b_c)^T
        Hm = self.to_free(HB.T)
        return 0.5 * (Hm + Hm.T)


def data_null_subspace(model: nn.Module, X: Tensor) -> FreeSubspace:
    """The :class:`FreeSubspace` of ``model`` on inputs ``X`` ``(N, input_dim)``."""
    view = _view(model, need_hidden=False)
    if not isinstance(X, Tensor) or X.ndim != 2 or X.shape[1] != view.input_dim:
        raise InvalidInput(
            f"X must be a tensor of shape (N, {view.input_dim}), got {getattr(X, 'shape', X)}"
        )
    check_real_tensor("X", X)
    if X.shape[0] == 0:
        raise InvalidInput("X is empty (N = 0): pass at least one example")
    if X.dtype == torch.bool or not all_finite(X):
        raise InvalidInput("X must hold finite numbers (no NaN, inf or bools); clean the data")
    if X.device != view.device:
        raise InvalidInput(f"X is on {X.device} but the model is on {view.device}; move one")
    return FreeSubspace(model, X)


def _lm_steps(
    net: nn.Module,
    Xd: Tensor,
    yd: Tensor,
    loss: str | LossFn,
    theta: Tensor,
    sub: FreeSubspace,
    steps: int,
    grad_tol: float,
    dense: bool,
    batch_size: int | None,
    history: list[float],
) -> tuple[Tensor, int]:
    """Levenberg-Marquardt on ``||grad||^2`` (Gauss-Newton with Jacobian ``H``) in the free
    subspace: ``s = -(H^2 + mu I)^{-1} H g``; ``mu = 0`` is Newton with the pseudo-inverse.

    Dense (``m`` up to the dense limit): one ``eigh`` of ``B^T H B`` per step, then trial
    ``mu`` values, each costing one gradient. Matrix-free above: CG on the normal equations with
    Hessian-vector products. A step is accepted when it lowers the gradient norm; ``mu`` shrinks
    after a success and grows after a failure; three accepted steps in a row that do not halve
    the gradient norm count as a stall and end the loop. Returns ``(theta, steps taken)``.
    """
    params = list(net.parameters())
    op = HessianOperator(net, Xd, yd, loss, batch_size=batch_size)
    g = op.gradient(theta)
    gn = float(torch.linalg.vector_norm(g))
    mu = 0.0
    taken = slow = 0
    while taken < steps and gn > grad_tol and slow < 3:
        torch.nn.utils.vector_to_parameters(theta, params)
        op = HessianOperator(net, Xd, yd, loss, batch_size=batch_size, method="func")
        gz = sub.to_free(g)
        if dense:
            lam, U = torch.linalg.eigh(sub.hessian(op))
            c = U.T @ gz
            top = max(float(lam.abs().max()), 1e-300)
            cut = 1e-14 * top

            def solve(mu: float, lam=lam, U=U, c=c, cut=cut) -> Tensor:
                if mu == 0.0:
                    inv = torch.where(lam.abs() > cut, 1.0 / lam, torch.zeros_like(lam))
                else:
                    inv = lam / (lam * lam + mu)
                return -(U @ (inv * c))
        else:
            top = _top_eigenvalue(op, sub)

            def solve(mu: float, op=op, gz=gz, top=top) -> Tensor:
                return _lm_matrix_free(op, sub, gz, mu if mu > 0 else 1e-20 * top * top)

        accepted = False
        trial_mus = ([0.0] if mu == 0.0 else [mu]) + [
            max(mu, (1e-8 * top) ** 2) * 100.0**e for e in range(1, 10)
        ]
        for trial in trial_mus:
            cand = theta + sub.to_full(solve(trial))
            gc = op._gradient(cand)  # trial points may overflow: checked below
            gcn = float(torch.linalg.vector_norm(gc))
            if math.isfinite(gcn) and gcn < gn:
                slow = slow + 1 if gcn > 0.5 * gn else 0
                theta, g, gn, accepted = cand, gc, gcn, True
                mu = 0.0 if trial <= (1e-8 * top) ** 2 else trial / 100.0
                break
        taken += 1
        history.append(gn)
        if not accepted:
            break
    return theta, taken


def _top_eigenvalue(op: HessianOperator, sub: FreeSubspace) -> float:
    res = lanczos(
        lambda v: sub.to_free(op.matvec(sub.to_full(v))),
        sub.m,
        1,
        "largest",
        tol=1e-3,
        seed=0,
        dtype=op.dtype,
        device=op.device,
    )
    return max(abs(float(res.eigenvalues[-1])), 1e-300)


def _lm_matrix_free(
    op: HessianOperator, sub: FreeSubspace, gz: Tensor, mu: float, maxiter: int = 200
) -> Tensor:
    """CG on ``(H^2 + mu I) s = -H g`` in the free subspace (two products per iteration)."""
    from scipy.sparse.linalg import LinearOperator, cg

    def Hz(v: Tensor) -> Tensor:
        return sub.to_free(op.matvec(sub.to_full(v)))

    def A(v: np.ndarray) -> np.ndarray:
        t = torch.as_tensor(np.asarray(v).ravel(), dtype=op.dtype, device=op.device)
        return (Hz(Hz(t)) + mu * t).cpu().numpy()

    rhs = -Hz(gz).cpu().numpy()
    s, _ = cg(
        LinearOperator((sub.m, sub.m), matvec=A, dtype=np.float64), rhs, maxiter=maxiter, rtol=1e-10
    )
    return torch.as_tensor(s, dtype=op.dtype, device=op.device)


def _trust_region(
    op: HessianOperator, theta: Tensor, maxiter: int, gtol: float, *, exact: bool
) -> Tensor:
    """scipy's ``trust-exact`` (dense Hessian) or ``trust-krylov`` (Hessian-vector products)."""
    from scipy.optimize import minimize

    def as_t(v: np.ndarray) -> Tensor:
        return torch.as_tensor(v, dtype=op.dtype, device=op.device)

    def hess(v: np.ndarray) -> np.ndarray:
        op.theta = as_t(v).clone()
        return op.full().cpu().numpy()

    def hessp(v: np.ndarray, p: np.ndarray) -> np.ndarray:
        op.theta = as_t(v).clone()  # a "func" operator: its products use op.theta
        return op.matvec(as_t(p)).cpu().numpy()

    curvature = {"hess": hess} if exact else {"hessp": hessp}
    res = minimize(
        lambda v: op._loss(as_t(v)),  # unchecked: trial points where it overflows are rejected
        theta.cpu().numpy(),
        jac=lambda v: op._gradient(as_t(v)).cpu().numpy(),
        method="trust-exact" if exact else "trust-krylov",
        options={"maxiter": int(maxiter), "gtol": gtol},
        **curvature,
    )
    out = as_t(res.x).clone()
    if not torch.isfinite(out).all():
        raise InvalidModel(
            "the trust-region search produced non-finite weights; check the data scale"
        )
    return out


def find_critical_point(
    model: nn.Module,
    X: Tensor,
    y: Tensor,
    loss: str | LossFn = "mse",
    *,
    lbfgs_steps: int = 50,
    newton_steps: int = 30,
    grad_tol: float = 1e-12,
    accept_tol: float = 1e-8,
    trust_steps: int = 300,
    restarts: int = 2,
    dense_limit: int = 3000,
    project_data_null: bool = True,
    batch_size: int | None = None,
    seed: int = 0,
) -> CriticalPoint:
    """Drive a float64 copy of ``model`` to a critical point of the loss.

    1. L-BFGS (``nngeom.train``, strong Wolfe), ``lbfgs_steps`` iterations.
    2. A trust-region minimisation, at most ``trust_steps`` iterations: scipy ``trust-exact``
       (dense Hessian) for nets up to ``dense_limit`` parameters, ``trust-krylov``
       (Hessian-vector products) above.
    3. Levenberg-Marquardt on the squared gradient norm, at most ``newton_steps`` steps
       (:func:`_lm_steps`: Newton with the eigenvalue pseudo-inverse when it lowers the gradient
       norm, damped ``(H^2 + mu I)^{-1} H g`` steps otherwise). With ``project_data_null``
       (MLPs only) the steps are taken in the :class:`FreeSubspace`: the first-layer directions
       along the null space of ``[X, 1]`` (exactly flat: zero gradient and zero curvature
       everywhere) are held fixed, which keeps the Newton system nonsingular there. The dense
       path is used when the free subspace has at most ``dense_limit`` dimensions.
    4. While the gradient norm is above ``accept_tol``: another round of steps 2-3 from the
       best point, then up to ``restarts`` rounds from seeded perturbations of it (relative
       size 1e-5, in the free subspace). The point with the smallest gradient norm is kept.

    Newton/LM converges to a nearby critical point whatever its index, so the result may be a
    saddle; ``converged`` says whether ``grad_norm <= accept_tol``. Nothing is hidden: a search
    that fails returns its best point with ``converged=False``.

    Raises:
        InvalidModel: the loss becomes NaN or infinite during the search.
    """
    lbfgs_steps = check_int("lbfgs_steps", lbfgs_steps, minimum=0)
    newton_steps = check_int("newton_steps", newton_steps, minimum=0)
    grad_tol = check_number("grad_tol", grad_tol, minimum=0.0)
    accept_tol = check_number("accept_tol", accept_tol, minimum=0.0)
    trust_steps = check_int("trust_steps", trust_steps, minimum=0)
    restarts = check_int("restarts", restarts, minimum=0, maximum=1000)
    dense_limit = check_int("dense_limit", dense_limit, minimum=0)
    if batch_size is not None:
        batch_size = check_positive_int("batch_size", batch_size)
    seed = check_seed(seed)
    if not isinstance(project_data_null, bool):
        raise InvalidInput(f"project_data_null must be True or False, got {project_data_null!r}")
    y = _check_data(_check_module(model), X, y, loss)
    net = copy.deepcopy(model).double()
    Xd = X.double() if X.is_floating_point() else X
    yd = y.double() if y.is_floating_point() else y
    f = loss_fn(loss)

    def finite_loss(where: str) -> float:
        with torch.no_grad():
            val = float(f(net(Xd), yd))
        if not math.isfinite(val):
            raise InvalidModel(
                f"the loss became {val} during the critical-point search ({where}); check the data "
                "scale and the model's weights (or lower the number of L-BFGS steps)"
            )
        return val

    finite_loss("at the start")
    res = (
        train(net, Xd, yd, loss=loss, optimizer="lbfgs", epochs=lbfgs_steps, lr=1.0)
        if lbfgs_steps
        else None
    )
    finite_loss("after L-BFGS")
    params = list(net.parameters())
    op = HessianOperator(net, Xd, yd, loss, batch_size=batch_size)
    n = op.n
    sub = None
    if project_data_null:
        try:
            sub = FreeSubspace(net, Xd)
        except (UnsupportedModel, InvalidModel):
            sub = None
    if sub is None or sub.n_null == 0:
        sub = FreeSubspace.whole(n)
    dense_trust = n <= dense_limit
    dense_lm = sub.m <= dense_limit

    def grad_norm(theta: Tensor) -> float:
        return float(torch.linalg.vector_norm(op.gradient(theta)))

    def one_round(theta: Tensor, history: list[float]) -> tuple[Tensor, int]:
        if trust_steps > 0:
            torch.nn.utils.vector_to_parameters(theta, params)
            top = HessianOperator(net, Xd, yd, loss, batch_size=batch_size, method="func")
            theta = _trust_region(top, theta, trust_steps, grad_tol, exact=dense_trust)
            torch.nn.utils.vector_to_parameters(theta, params)
            finite_loss("after the trust-region steps")
        history.append(grad_norm(theta))
        return _lm_steps(
            net, Xd, yd, loss, theta, sub, newton_steps, grad_tol, dense_lm, batch_size, history
        )

    history: list[float] = []
    best, steps = one_round(op.theta.clone(), history)
    best_gn = grad_norm(best)
    used = 0
    gen = torch.Generator().manual_seed(seed)
    for attempt in range(int(restarts) + 1):
        if best_gn <= accept_tol:
            break
        if attempt == 0:
            start = best  # continue: more trust-region and LM steps from the best point
        else:
            used += 1
            z = torch.randn(sub.m, generator=gen, dtype=torch.float64).to(best)
            scale = 1e-5 * float(torch.linalg.vector_norm(best)) / math.sqrt(sub.m)
            start = best + sub.to_full(scale * z)
        theta, k = one_round(start, history)
        steps += k
        gn = grad_norm(theta)
        if gn < best_gn:
            best, best_gn = theta, gn
    torch.nn.utils.vector_to_parameters(best, params)
    value = finite_loss("after the Newton steps")
    return CriticalPoint(
        net,
        value,
        best_gn,
        res.steps if res else 0,
        steps,
        history,
        converged=best_gn <= accept_tol,
        n_data_null=sub.n_null,
        restarts=used,
    )


@dataclass
class PermutationPoint:
    """A permutation point of ``layer``'s neurons ``i, j`` (see :func:`find_permutation_saddle`).

    Attributes:
        model: the full-width float64 net at the permutation point.
        reduced: the reduced net (one neuron fewer) at its critical point.
        loss, grad_norm: loss and gradient norm of ``model`` on the data.
        reduced_grad_norm: gradient norm of the reduced net.
        eigenvalues: Hessian eigenvalues of ``model`` (ascending; the full spectrum when
            ``full_spectrum``, else the ``k`` smallest and ``k`` largest by Lanczos).
        n_negative: saddle index (negative eigenvalues found; a lower bound when not full).
        n_zero: eigenvalues with ``|lambda| <= zero_tol * max|lambda|`` (full spectrum only, else
            the zero eigenvalues are certified through the flat directions, see ``flat_residual``).
        n_zero_theory: ``n_{layer+1}``, the paper's count: the dimension of the equal-loss
            subspace of flat directions, which bounds ``n_negative + n_zero`` from below; the
            zero eigenvalues it certifies are ``n_{layer+1} - rank(H D)`` (>= 1, see
            :func:`flat_directions`).
        flat_residual: ``max ||H d|| / max|lambda|`` over the flat directions ``d``.
        converged: the reduced net's search converged and ``grad_norm <= accept_tol``; a point
            with ``converged=False`` is *not* a certified critical point.
        n_data_null: first-layer directions along the null space of ``[X, 1]`` (exactly flat
            everywhere, see :class:`FreeSubspace`); held fixed by the search and included in
            ``n_zero``.
        n_zero_free: zero eigenvalues of the Hessian restricted to the complement of those
            directions (full spectrum only); this is the count to compare with the theory.
        eigenvalues_free: the spectrum behind ``n_zero_free`` (None when it equals ``eigenvalues``).
    """

    model: nn.Module
    reduced: nn.Module
    layer: int
    i: int
    j: int
    lam: float
    loss: float
    grad_norm: float
    reduced_grad_norm: float
    eigenvalues: np.ndarray
    full_spectrum: bool
    n_negative: int
    n_zero: int | None
    n_zero_theory: int
    zero_tol: float
    flat_residual: float
    converged: bool = False
    n_data_null: int = 0
    n_zero_free: int | None = None
    eigenvalues_free: np.ndarray | None = None

    @property
    def is_saddle(self) -> bool:
        return self.n_negative > 0

    @property
    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.model.parameters())


def _check_xy(view: MLP, X: Tensor, y: Tensor) -> None:
    if not isinstance(X, Tensor) or not isinstance(y, Tensor):
        raise InvalidInput("X and y must be torch tensors")
    if X.ndim != 2 or X.shape[1] != view.input_dim:
        raise InvalidInput(
            f"X must have shape (N, {view.input_dim}) for this model, got {tuple(X.shape)}"
        )
    if X.shape[0] == 0:
        raise InvalidInput("X is empty (N = 0)")
    if y.ndim == 0 or y.shape[0] != X.shape[0]:
        got = y.shape[0] if y.ndim else "a scalar"
        raise InvalidInput(f"X has {X.shape[0]} examples but y has {got}; pass matching rows")


def _check_graph_xy(X: Tensor, y: Tensor) -> None:
    if not isinstance(X, Tensor) or not isinstance(y, Tensor):
        raise InvalidInput("X and y must be torch tensors")
    if X.ndim < 2 or X.shape[0] == 0:
        raise InvalidInput(f"X must have shape (N, *input_shape) with N >= 1, got {tuple(X.shape)}")
    if y.ndim == 0 or y.shape[0] != X.shape[0]:
        raise InvalidInput(f"X has {X.shape[0]} examples but y has shape {tuple(y.shape)}")


def spectrum_at(
    model: nn.Module,
    X: Tensor,
    y: Tensor,
    loss: str | LossFn,
    *,
    k: int | None = None,
    full_limit: int = 5000,
    seed: int = 0,
    batch_size: int | None = None,
) -> tuple[np.ndarray, bool, HessianOperator]:
    """Full spectrum when ``n <= full_limit`` (and ``k`` is None), else ``k`` at both ends."""
    if k is not None:
        k = check_positive_int("k", k)
    full_limit = check_int("full_limit", full_limit, minimum=0)
    seed = check_seed(seed)
    op = HessianOperator(model, X, y, loss, batch_size=batch_size)
    if k is None and op.n <= min(full_limit, MAX_FULL_PARAMETERS):
        return eigvalsh(op.full()), True, op
    kk = 20 if k is None else k
    res = lanczos(
        op.matvec, op.n, kk, "both", tol=1e-6, seed=seed, dtype=op.dtype, device=op.device
    )
    return res.eigenvalues, False, op


def find_permutation_saddle(
    model: nn.Module,
    X: Tensor,
    y: Tensor,
    layer: int,
    i: int,
    j: int,
    loss: str | LossFn = "mse",
    *,
    lam: float = 0.5,
    lbfgs_steps: int = 50,
    newton_steps: int = 30,
    trust_steps: int = 300,
    restarts: int = 2,
    dense_limit: int = 3000,
    project_data_null: bool = True,
    accept_tol: float = 1e-8,
    k: int | None = None,
    full_limit: int = 5000,
    zero_tol: float = 1e-7,
    batch_size: int | None = None,
    seed: int = 0,
) -> PermutationPoint:
    """The permutation point of neurons ``i, j`` of hidden ``layer`` at a critical point.

    Merges ``i`` and ``j`` (:func:`merge_neurons`), drives the reduced net to a critical point
    in float64 (:func:`find_critical_point`), embeds it back with the split ``lam``
    (:func:`embed_merged`), and reports the loss, gradient norm and Hessian spectrum there.
    Whether the point is a saddle is *measured* (``n_negative``), not assumed.

    Args:
        model: an MLP (``as_mlp``) with at least one hidden layer, or any model the model
            view traces with at least one dense hidden layer (:func:`dense_hidden_layers`: a
            residual MLP, a conv net with a dense head); it is not modified. For such a graph
            model ``model`` / ``reduced`` of the result are float64 deep copies of it (same
            class) with the layer's modules widened / narrowed, and ``project_data_null`` is
            ignored: the data-null subspace (:class:`FreeSubspace`) is defined through the first
            Linear layer of an MLP chain, so the search runs in all parameters
            (``n_data_null = 0``).
        X, y: data ``(N, input_dim)`` (``(N, *input_shape)`` for a graph model) and targets
            (``(N, out)`` floats or ``(N,)`` labels for "ce").
        layer, i, j: hidden layer (from 0; for a graph model its dense hidden layers are
            numbered) and two different neurons of it.
        k: number of eigenvalues at each end by Lanczos; None: the full spectrum if the net has
            at most ``full_limit`` parameters, else 20 at each end.
        zero_tol: relative threshold for a zero eigenvalue.
        search: ``lbfgs_steps``, ``newton_steps``, ``trust_steps``, ``restarts``,
            ``dense_limit``, ``project_data_null`` and ``accept_tol`` are passed to
            :func:`find_critical_point` (``seed`` seeds its restarts).

    Raises:
        InvalidInput: i == j, out-of-range layer or neuron, a layer of width 1, bad data shapes.
        UnsupportedModel: not an MLP chain and no dense hidden layer, or no hidden layer.
        InvalidModel: non-finite weights, or the loss becomes non-finite during the search.

    >>> import torch, nngeom as ng
    >>> net = ng.mlp([1, 3, 1], "tanh", dtype=torch.float64)
    >>> X = torch.linspace(-1, 1, 16, dtype=torch.float64)[:, None]
    >>> kw = dict(restarts=1, lbfgs_steps=20, newton_steps=10, trust_steps=30)
    >>> res = ng.find_permutation_saddle(net, X, torch.sin(2 * X), layer=0, i=0, j=1, **kw)
    >>> res.converged, bool(res.grad_norm < 1e-6), res.reduced[0].out_features
    (True, True, 2)
    """
    lam = check_number("lam", lam)
    if k is not None:
        k = check_positive_int("k", k)
    full_limit = check_int("full_limit", full_limit, minimum=0)
    zero_tol = check_number("zero_tol", zero_tol, minimum=0.0)
    accept_tol = check_number("accept_tol", accept_tol, minimum=0.0)
    seed = check_seed(seed)
    model = _check_module(model)
    chain = _is_chain(model)
    if chain:
        view = _view(model)
        i, j = _check_pair(view, layer, i, j)
        _check_xy(view, X, y)
        y = _check_data(model, X, y, loss)
        n_next = int(view.sizes[layer + 2])
    else:
        _check_graph_xy(X, y)
        y = _check_data(model, X, y, loss)
        dl, shape = _graph_layer(model, layer, tuple(X.shape[1:]))
        i, j = _check_pair(shape, dl.index, i, j)
        layer, n_next = dl.index, dl.next_width
        project_data_null = False  # the data-null subspace is defined for MLP chains only
    reduced0 = (
        merge_neurons(model, layer, i, j)
        if chain
        else _graph_merge(model, dl, min(i, j), max(i, j))
    )
    crit = find_critical_point(
        reduced0,
        X,
        y,
        loss,
        lbfgs_steps=lbfgs_steps,
        newton_steps=newton_steps,
        trust_steps=trust_steps,
        restarts=restarts,
        dense_limit=dense_limit,
        project_data_null=project_data_null,
        accept_tol=accept_tol,
        batch_size=batch_size,
        seed=seed,
    )
    if chain:
        point = embed_merged(crit.model, layer, i, j, lam)
    else:
        rdl = _dense_layers(crit.model, tuple(X.shape[1:]))[layer]
        lo, hi = min(i, j), max(i, j)
        point = _graph_split(crit.model, rdl, lo, float(lam if i == lo else 1.0 - lam), hi)
    Xd = X.double() if X.is_floating_point() else X
    yd = y.double() if y.is_floating_point() else y
    ev, full, op = spectrum_at(
        point, Xd, yd, loss, k=k, full_limit=full_limit, seed=seed, batch_size=batch_size
    )
    g = op.gradient()
    gn = float(torch.linalg.vector_norm(g))
    n_neg, n_zero, _ = count_eigenvalues(ev, zero_tol)
    sub = FreeSubspace(point, Xd) if project_data_null else FreeSubspace.whole(op.n)
    ev_free, n_zero_free = None, (n_zero if full else None)
    if full and sub.n_null > 0:
        fop = HessianOperator(point, Xd, yd, loss, batch_size=batch_size, method="func")
        ev_free = eigvalsh(sub.hessian(fop))
        n_neg, n_zero_free, _ = count_eigenvalues(ev_free, zero_tol)
    D = flat_directions(point, layer, i, j) if chain else _graph_flat_directions(point, dl, i, j)
    scale = max(float(np.abs(ev).max()), 1e-300)
    flat = (
        max(float(torch.linalg.vector_norm(op.matvec(D[:, c]))) for c in range(D.shape[1])) / scale
    )
    return PermutationPoint(
        model=point,
        reduced=crit.model,
        layer=layer,
        i=i,
        j=j,
        lam=float(lam),
        loss=op.loss(),
        grad_norm=gn,
        reduced_grad_norm=crit.grad_norm,
        eigenvalues=ev,
        full_spectrum=full,
        n_negative=n_neg,
        n_zero=n_zero if full else None,
        n_zero_theory=n_next,
        zero_tol=zero_tol,
        flat_residual=flat,
        converged=bool(crit.converged and gn <= accept_tol),
        n_data_null=sub.n_null,
        n_zero_free=n_zero_free,
        eigenvalues_free=ev_free,
    )


# ------------------------------------------------------------------------------------------
# paths


@dataclass
class EqualLossPath:
    """A piecewise-linear path in parameter space: ``params`` ``(T, n)``; ``breaks`` are the
    indices where its segments start (for plotting)."""

    params: Tensor
    breaks: list[int]
    start: nn.Module
    end: nn.Module


def equal_loss_path(
    point: nn.Module, layer: int, i: int, j: int, *, target: Tensor | None = None, steps: int = 20
) -> EqualLossPath:
    """The constant-loss path from a configuration to its ``(i j)``-swapped copy.

    ``point`` must be a permutation point: neurons ``i`` and ``j`` of ``layer`` have equal
    incoming vectors ``w`` and outgoing vectors ``lam a`` and ``(1 - lam) a``. With ``u`` =
    ``target`` (an incoming vector, default ``-w``), the start configuration ``C`` has neuron
    ``i = (w, a)`` and ``j = (u, 0)``; the end is ``C`` with ``i`` and ``j`` swapped. Segments:
    (1) move ``j``'s incoming ``u -> w`` (its outgoing is 0, so the loss does not change);
    (2) move the outgoing ``(a, 0) -> (0, a)`` (flat: equal incoming vectors), passing through
    the permutation point; (3) move ``i``'s incoming ``w -> u`` (its outgoing is now 0).
    """
    view = _view(point)
    i, j = _check_pair(view, layer, i, j)
    lin, nxt = view.linears[layer], view.linears[layer + 1]
    inc = (
        lin.weight.detach()
        if lin.bias is None
        else torch.cat([lin.weight.detach(), lin.bias.detach()[:, None]], 1)
    )
    if not torch.allclose(inc[i], inc[j], rtol=1e-9, atol=1e-9):
        raise InvalidInput(
            f"neurons {i} and {j} of layer {layer} do not have equal incoming vectors: not a "
            "permutation point (use find_permutation_saddle or embed_merged first)"
        )
    steps = check_positive_int("steps", steps)
    n_par = sum(p.numel() for p in point.parameters())
    _check_basis_size(3 * steps + 1, n_par, "the path")
    w = inc[i].clone()
    if target is not None:
        if not isinstance(target, Tensor) or tuple(target.shape) != tuple(w.shape):
            raise InvalidInput(
                f"target must be a tensor of shape {tuple(w.shape)} (incoming weights then "
                f"bias), got {getattr(target, 'shape', type(target).__name__)!r}"
            )
        check_real_tensor("target", target)
        if target.dtype == torch.bool or not all_finite(target):
            raise InvalidInput("target must hold finite numbers (no NaN, inf or bools)")
    u = -w if target is None else target.to(w)
    a = (nxt.weight.detach()[:, i] + nxt.weight.detach()[:, j]).clone()
    base = copy.deepcopy(point)
    bview = as_mlp(base)
    d_in = lin.in_features

    def config(inc_i: Tensor, inc_j: Tensor, out_i: Tensor, out_j: Tensor) -> Tensor:
        with torch.no_grad():
            bl, bn = bview.linears[layer], bview.linears[layer + 1]
            bl.weight[i], bl.weight[j] = inc_i[:d_in], inc_j[:d_in]
            if bl.bias is not None:
                bl.bias[i], bl.bias[j] = inc_i[d_in], inc_j[d_in]
            bn.weight[:, i], bn.weight[:, j] = out_i, out_j
        return flatten_parameters(base).clone()

    zero = torch.zeros_like(a)
    ts = torch.linspace(0, 1, steps + 1, dtype=w.dtype)
    rows, breaks = [], []
    breaks.append(0)
    for t in ts:
        rows.append(config(w, (1 - t) * u + t * w, a, zero))
    breaks.append(len(rows))
    for t in ts[1:]:
        rows.append(config(w, w, (1 - t) * a, t * a))
    breaks.append(len(rows))
    for t in ts[1:]:
        rows.append(config((1 - t) * w + t * u, w, zero, a))
    params = torch.stack(rows)
    if not all_finite(params):
        raise InvalidInput(
            f"the path's parameters overflow {params.dtype} (NaN or inf from finite weights); "
            "use a smaller target or float64"
        )
    start = load_flat_parameters(point, params[0])
    end = load_flat_parameters(point, params[-1])
    return EqualLossPath(params, breaks, start, end)


def path_losses(
    model: nn.Module, X: Tensor, y: Tensor, params: Tensor, loss: str | LossFn = "mse"
) -> np.ndarray:
    """The loss at each row of ``params`` ``(T, n)`` (parameters of ``model``'s shape)."""
    from torch.func import functional_call

    model = _check_module(model)
    y = _check_data(model, X, y, loss)
    f = loss_fn(loss)
    names = [k for k, _ in model.named_parameters()]
    shapes = [p.shape for p in model.parameters()]
    numels = [p.numel() for p in model.parameters()]
    n = sum(numels)
    if not isinstance(params, Tensor) or params.ndim != 2 or params.shape[1] != n:
        raise InvalidInput(
            f"params must be a tensor of shape (T, {n}) (one row of the model's parameters "
            f"per point), got {getattr(params, 'shape', type(params).__name__)!r}"
        )
    check_real_tensor("params", params)
    if params.dtype == torch.bool or not all_finite(params):
        raise InvalidInput("params must hold finite numbers (no NaN, inf or bools)")
    dtype = next(model.parameters()).dtype
    if params.dtype != dtype:
        raise InvalidInput(
            f"params is {params.dtype} but the model's parameters are {dtype}; pass "
            f"params.to({dtype}) (nngeom does not cast silently)"
        )
    out = []
    with torch.no_grad():
        for row in params:
            d = {k: t.reshape(s) for k, t, s in zip(names, torch.split(row, numels), shapes)}
            out.append(float(f(functional_call(model, d, (X,)), y)))
    losses = np.array(out)
    if not np.isfinite(losses).all():
        bad = int(np.flatnonzero(~np.isfinite(losses))[0])
        raise InvalidModel(
            f"the loss is {losses[bad]} at row {bad} of params although the parameters and the "
            f"data are finite: the model's outputs overflow {dtype}; use float64 or smaller "
            "weights"
        )
    return losses


def linear_path_losses(
    model_a: nn.Module,
    model_b: nn.Module,
    X: Tensor,
    y: Tensor,
    loss: str | LossFn = "mse",
    steps: int = 50,
) -> tuple[np.ndarray, np.ndarray]:
    """``(t, loss)`` along the straight line between two models of the same architecture."""
    steps = check_positive_int("steps", steps)
    ta, tb = flatten_parameters(model_a), flatten_parameters(model_b)
    _same_architecture(model_a, model_b)
    _check_basis_size(steps + 1, ta.numel(), "the path")
    t = torch.linspace(0, 1, steps + 1, dtype=ta.dtype)
    params = (1 - t)[:, None] * ta + t[:, None] * tb
    return t.numpy(), path_losses(model_a, X, y, params, loss)


@dataclass
class BezierPath:
    """An optimised quadratic Bezier curve ``(1-t)^2 a + 2t(1-t) c + t^2 b`` between two models."""

    control: Tensor
    t: np.ndarray
    losses: np.ndarray

    @property
    def barrier(self) -> float:
        """``max_t loss(t) - max(loss(0), loss(1))``."""
        return float(self.losses.max() - max(self.losses[0], self.losses[-1]))


def bezier_path(
    model_a: nn.Module,
    model_b: nn.Module,
    X: Tensor,
    y: Tensor,
    loss: str | LossFn = "mse",
    *,
    epochs: int = 300,
    lr: float = 1e-2,
    samples: int = 8,
    steps: int = 50,
    seed: int = 0,
) -> BezierPath:
    """A low-loss curve between two minima (Garipov et al. 2018): the control point ``c`` of a
    quadratic Bezier curve minimises the mean loss at ``samples`` random ``t`` per Adam step
    (``t`` drawn from a generator seeded with ``seed``); initialised at the midpoint."""
    from torch.func import functional_call

    epochs = check_int("epochs", epochs, minimum=0)
    lr = check_number("lr", lr, minimum=0.0, strict_min=True)
    samples = check_positive_int("samples", samples)
    steps = check_positive_int("steps", steps)
    seed = check_seed(seed)
    ta, tb = flatten_parameters(model_a), flatten_parameters(model_b)
    _same_architecture(model_a, model_b)
    _check_basis_size(steps + 1, ta.numel(), "the path")
    y = _check_data(model_a, X, y, loss)
    f = loss_fn(loss)
    names = [k for k, _ in model_a.named_parameters()]
    shapes = [p.shape for p in model_a.parameters()]
    numels = [p.numel() for p in model_a.parameters()]
    c = (0.5 * (ta + tb)).clone().requires_grad_(True)
    opt = torch.optim.Adam([c], lr=lr)
    gen = torch.Generator().manual_seed(seed)

    def at(t: Tensor) -> Tensor:
        return (1 - t) ** 2 * ta + 2 * t * (1 - t) * c + t**2 * tb

    for _ in range(epochs):
        opt.zero_grad()
        ts = torch.rand(samples, generator=gen, dtype=ta.dtype)
        total = 0.0
        for t in ts:
            row = at(t)
            d = {k: v.reshape(s) for k, v, s in zip(names, torch.split(row, numels), shapes)}
            total = total + f(functional_call(model_a, d, (X,)), y)
        mean = total / samples
        if not all_finite(mean.detach()):
            raise InvalidInput(
                f"the Bezier curve's loss became {float(mean.detach())} during the optimisation: the "
                "control point diverged or the loss overflows; lower lr (or use float64)"
            )
        mean.backward()
        opt.step()
        if not all_finite(c.detach()):
            raise InvalidInput(
                "the Bezier control point became NaN/inf during the optimisation; lower lr"
            )
    t = torch.linspace(0, 1, steps + 1, dtype=ta.dtype)
    with torch.no_grad():
        params = torch.stack([at(s) for s in t])
    return BezierPath(c.detach().clone(), t.numpy(), path_losses(model_a, X, y, params, loss))


# ------------------------------------------------------------------------------------------
# counting


# exact counts are products of factorials: beyond these sizes the big integers take minutes
_MAX_COUNT_LAYERS = 1_000
_MAX_COUNT_UNITS = 200_000


def _check_widths(widths: Sequence[int]) -> list[int]:
    try:
        if isinstance(widths, (str, bytes)):
            raise TypeError
        ws = list(widths)
    except TypeError as exc:
        raise InvalidInput(f"widths must be a sequence of positive ints, got {widths!r}") from exc
    if not ws:
        raise InvalidInput("widths is empty: give the hidden widths n_1..n_{d-1}")
    if len(ws) > _MAX_COUNT_LAYERS:
        raise InvalidInput(
            f"{len(ws):,} hidden layers are too many to count exactly (limit {_MAX_COUNT_LAYERS})"
        )
    for w in ws:
        if isinstance(w, bool) or not isinstance(w, (int, np.integer)) or w < 1:
            raise InvalidInput(f"every hidden width must be a positive int, got {widths!r}")
        if w > 100_000:
            raise InvalidInput(f"width {w} is too large to count exactly (limit 100000)")
    if sum(int(w) for w in ws) > _MAX_COUNT_UNITS:
        raise InvalidInput(
            f"the widths add up to {sum(int(w) for w in ws):,} units, too many to count exactly "
            f"(limit {_MAX_COUNT_UNITS:,})"
        )
    return [int(w) for w in ws]


def _check_order(order: int) -> int:
    if isinstance(order, bool) or not isinstance(order, (int, np.integer)) or order < 1:
        raise InvalidInput(f"order must be a positive int, got {order!r}")
    return int(order)


def count_equivalent_minima(widths: Sequence[int]) -> int:
    """``prod_k n_k!``: the permutation copies of a minimum with distinct neurons (exact int).

    >>> import nngeom as ng
    >>> ng.count_equivalent_minima([3, 4])
    144
    """
    out = 1
    for w in _check_widths(widths):
        out *= math.factorial(w)
    return out


def permutation_point_factor(widths: Sequence[int], order: int = 1) -> Fraction:
    """The paper's factor ``sum_k C(n_k - K, K) / 2!^K`` (exact Fraction).

    784-100-100-10: 99 for K = 1, 4753/2 = 2376.5 for K = 2.
    """
    K = _check_order(order)
    return sum(
        (Fraction(math.comb(n - K, K), 2**K) for n in _check_widths(widths) if n >= 2 * K),
        Fraction(0),
    )


def count_permutation_points(widths: Sequence[int], order: int = 1) -> int:
    """The number of K-th order permutation points (the paper's lower bound), an exact int.

    A K-th order permutation point of layer ``k`` comes from a critical point of the net with
    ``n_k - K`` neurons in layer ``k`` (with distinct neurons) by duplicating ``K`` of them:
    ``C(n_k - K, K)`` choices, and ``n_k! / 2!^K`` distinct orderings of the layer, times the
    ``prod_{l != k} n_l!`` orderings of the other layers; summed over the layers. This equals
    ``permutation_point_factor(widths, K) * count_equivalent_minima(widths)``.

    >>> import nngeom as ng
    >>> ng.count_permutation_points([3, 4])
    360
    """
    K = _check_order(order)
    ws = _check_widths(widths)
    facts = {w: math.factorial(w) for w in set(ws)}
    everything = math.prod(facts[w] for w in ws)  # prod_l n_l!
    total = 0
    for n in ws:
        if n < 2 * K:
            continue
        # n! / 2^K orderings of this layer times prod_{l != k} n_l! of the others
        total += math.comb(n - K, K) * (everything // facts[n]) * facts[n] // 2**K
    return total
