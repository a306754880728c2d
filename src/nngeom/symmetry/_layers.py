"""The dense hidden layers of any traced model (residual MLPs, conv nets with a dense head).

A dense hidden layer is an element-wise activation between one ``nn.Linear`` (through
BatchNorm1d in eval mode, Dropout, Identity) and ``nn.Linear`` consumers only: its units can be
permuted, merged and split without changing the other layers (:func:`dense_hidden_layers`
finds them in the model view's fx graph; :mod:`._graph_edits` edits them). For an MLP chain
they are its hidden layers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import torch
from torch import fx, nn

from .._checks import check_finite_parameters, check_int, check_list
from .._errors import InvalidInput, UnsupportedModel
from .._params import module_of

# Modules that pass a unit's value through unchanged (in eval mode) between the layers.
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
    from ..view import model_view

    model = module_of(model)
    if input_shape is not None:
        shape = check_list(
            "input_shape", input_shape, what="a sequence of positive ints (the per-example shape)"
        )
        input_shape = tuple(
            check_int(f"input_shape[{k}]", v, minimum=1) for k, v in enumerate(shape)
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
    from ..view import _where

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


class Widths:
    """The depth / widths of a graph model's dense layers, for the ``check_*`` helpers of
    :mod:`._mlp`."""

    def __init__(self, layers: list[DenseLayer]) -> None:
        self.depth = len(layers)
        self.widths = [dl.width for dl in layers]


def dense_layers(model: nn.Module, input_shape: Sequence[int] | None = None) -> list[DenseLayer]:
    """The dense hidden layers of a graph model with finite parameters; at least one."""
    layers = dense_hidden_layers(model, input_shape)
    check_finite_parameters(model)
    if not layers:
        raise UnsupportedModel(
            f"{type(model).__name__} is not an MLP chain and has no dense hidden layer (an "
            "activation between an nn.Linear and nn.Linear consumers only; see "
            "nngeom.symmetry.dense_hidden_layers): permutation symmetry needs one. An activation "
            "whose output also feeds a skip connection cannot be permuted alone"
        )
    return layers


def graph_layer(
    model: nn.Module, layer: int, input_shape: Sequence[int] | None = None
) -> tuple[DenseLayer, Widths]:
    """Dense hidden layer ``layer`` of a graph model, and the depth / widths of all of them."""
    layers = dense_layers(model, input_shape)
    layer = check_int("layer", layer)
    if not 0 <= layer < len(layers):
        raise InvalidInput(
            f"dense hidden layer {layer} does not exist: {type(model).__name__} has "
            f"{len(layers)} dense hidden layer(s), numbered 0..{len(layers) - 1} (see "
            "nngeom.symmetry.dense_hidden_layers)"
        )
    return layers[layer], Widths(layers)
