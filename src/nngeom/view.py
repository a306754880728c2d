"""The model view: one traced graph of a PyTorch model behind every exact analysis.

:func:`model_view` turns a model into a small directed acyclic graph (``torch.fx``) whose
tensor operations are classified as

* **affine** -- Linear, Conv1d/2d/3d, ConvTranspose, AvgPool / AdaptiveAvgPool, BatchNorm in
  evaluation mode (a fixed affine map), Flatten / view / reshape / permute, Dropout and Identity
  in evaluation mode, ``+``, ``-``, multiplication by a constant, ``cat``, ``mean``, ``sum``,
  indexing, residual branches (any DAG, not only a chain);
* **element-wise** -- ReLU in every spelling (``nn.ReLU``, ``F.relu``, ``torch.relu``,
  ``x.relu()``, ``clamp(min=0)``), LeakyReLU with its own slope, PReLU, Hardtanh / ReLU6,
  ``abs``, VAF and any module declaring ``nngeom_piecewise_linear_form`` (piecewise linear), and
  smooth activations (tanh, sigmoid, softplus, GELU, ...; accepted by the analyses that do not
  need piecewise linearity);
* **max** -- MaxPool1d/2d/3d, ``torch.max`` / ``amax`` over dimensions and ``torch.maximum`` of
  two tensors, handled exactly (the engines split where the argmax changes).

Anything else raises :class:`~nngeom.UnsupportedModel` naming the operation, where it is in the
forward, and the generic alternative. The graph's own forward equals the model's (checked on a
probe input when the view is built).

A model that ``torch.fx`` cannot trace (data-dependent control flow) is refused with the
tracing error and the way out, unless it is an ``nn.Sequential``: then its children are walked
in order (each child must itself be a supported operation).
"""

from __future__ import annotations

import copy
import math
import operator
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, fx, nn

from ._checks import check_finite_parameters, check_model_tensors
from ._errors import UnsupportedModel

__all__ = [
    "ModelView",
    "ViewNode",
    "model_view",
    "Abs",
    "Clamp",
]

_GENERIC = (
    "use the generic functions instead (ng.hessian_eigenvalues, ng.tangent_sensitivity, "
    "ng.pattern_statistics on sampled points do not need this)"
)


# --------------------------------------------------------------------------------------------
# element-wise modules the view synthesises for functional spellings
# --------------------------------------------------------------------------------------------
class Abs(nn.Module):
    """``|x|`` as a module (the view's stand-in for ``torch.abs`` / ``x.abs()``)."""

    nngeom_elementwise = True
    nngeom_name = "abs"
    nngeom_piecewise_linear = True

    def forward(self, x: Tensor) -> Tensor:
        return torch.abs(x)

    def nngeom_piecewise_linear_form(self, width: int) -> tuple[Tensor, Tensor, Tensor]:
        f64 = torch.float64
        return (
            torch.zeros(width, 1, dtype=f64),
            torch.tensor([[-1.0, 1.0]], dtype=f64).expand(width, 2).clone(),
            torch.zeros(width, 2, dtype=f64),
        )


class Clamp(nn.Module):
    """``clamp(x, min, max)`` with constant bounds (either may be None) as a module."""

    nngeom_elementwise = True
    nngeom_piecewise_linear = True

    def __init__(self, lo: float | None, hi: float | None) -> None:
        super().__init__()
        if lo is None and hi is None:
            raise UnsupportedModel("clamp without min and max is the identity; remove it")
        if lo is not None and hi is not None and not lo <= hi:
            raise UnsupportedModel(f"clamp(min={lo}, max={hi}) has min > max")
        self.lo, self.hi = lo, hi
        self.nngeom_name = "relu" if (lo == 0 and hi is None) else "clamp"

    def forward(self, x: Tensor) -> Tensor:
        return torch.clamp(x, min=self.lo, max=self.hi)

    def extra_repr(self) -> str:
        return f"min={self.lo}, max={self.hi}"

    def nngeom_piecewise_linear_form(self, width: int) -> tuple[Tensor, Tensor, Tensor]:
        lo, hi = self.lo, self.hi
        if hi is None:
            bps, slopes, icpts = [lo], [0.0, 1.0], [lo, 0.0]
        elif lo is None:
            bps, slopes, icpts = [hi], [1.0, 0.0], [0.0, hi]
        else:
            bps, slopes, icpts = [lo, hi], [0.0, 1.0, 0.0], [lo, 0.0, hi]

        def rows(v: list) -> Tensor:
            return torch.tensor([v], dtype=torch.float64).expand(width, len(v)).clone()

        return rows(bps), rows(slopes), rows(icpts)


# --------------------------------------------------------------------------------------------
# classification tables
# --------------------------------------------------------------------------------------------
_TRAIN_SENSITIVE = (
    nn.modules.dropout._DropoutNd,
    nn.modules.batchnorm._BatchNorm,
    nn.modules.instancenorm._InstanceNorm,
)
_AFFINE_MODULES: tuple[type, ...] = (
    nn.Linear,
    nn.Conv1d,
    nn.Conv2d,
    nn.Conv3d,
    nn.ConvTranspose1d,
    nn.ConvTranspose2d,
    nn.ConvTranspose3d,
    nn.BatchNorm1d,
    nn.BatchNorm2d,
    nn.BatchNorm3d,
)
_LINEAR_MODULES: tuple[type, ...] = (
    nn.AvgPool1d,
    nn.AvgPool2d,
    nn.AvgPool3d,
    nn.AdaptiveAvgPool1d,
    nn.AdaptiveAvgPool2d,
    nn.AdaptiveAvgPool3d,
    nn.Flatten,
    nn.Unflatten,
    nn.Identity,
    nn.Dropout,
    nn.Dropout1d,
    nn.Dropout2d,
    nn.Dropout3d,
    nn.AlphaDropout,
    nn.ZeroPad1d,
    nn.ZeroPad2d,
    nn.ZeroPad3d,
)
_PL_MODULES: tuple[type, ...] = (nn.ReLU, nn.LeakyReLU, nn.PReLU, nn.Hardtanh, nn.ReLU6)
_SMOOTH_MODULES: tuple[type, ...] = (
    nn.Tanh,
    nn.Sigmoid,
    nn.Softplus,
    nn.GELU,
    nn.SiLU,
    nn.ELU,
    nn.CELU,
    nn.SELU,
    nn.Mish,
    nn.Hardswish,
    nn.Hardsigmoid,
    nn.LogSigmoid,
    nn.Softsign,
    nn.Tanhshrink,
)
_MAXPOOL_MODULES: tuple[type, ...] = (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d)

# functions/methods/aten packets that are linear (f(0) = 0) in their tensor arguments
_LINEAR_NAMES = {
    "flatten",
    "view",
    "reshape",
    "permute",
    "transpose",
    "t",
    "squeeze",
    "unsqueeze",
    "contiguous",
    "clone",
    "expand",
    "expand_as",
    "view_as",
    "reshape_as",
    "unflatten",
    "cat",
    "concat",
    "concatenate",
    "stack",
    "mean",
    "sum",
    "neg",
    "negative",
    "getitem",
    "__getitem__",
    "avg_pool1d",
    "avg_pool2d",
    "avg_pool3d",
    "adaptive_avg_pool1d",
    "adaptive_avg_pool2d",
    "adaptive_avg_pool3d",
    "_adaptive_avg_pool2d",
    "dropout",
    "alias",
    "detach",
    "_unsafe_view",
    "select",
    "slice",
    "split",
    "chunk",
    "unbind",
    "narrow",
    "_to_copy",
    "to",
    "type_as",
    "float",
    "double",
    "pad",
    "constant_pad_nd",
    "pos",
}
# affine in their tensor arguments provided the listed arguments are constant
_AFFINE_NAMES = {
    "linear",
    "addmm",
    "conv1d",
    "conv2d",
    "conv3d",
    "convolution",
    "_convolution",
    "conv_transpose1d",
    "conv_transpose2d",
    "conv_transpose3d",
    "batch_norm",
    "_native_batch_norm_legit_no_training",
    "add",
    "iadd",
    "sub",
    "isub",
    "rsub",
    "mul",
    "imul",
    "div",
    "truediv",
    "itruediv",
    "matmul",
    "mm",
    "bmm",
    "einsum",
}
_PL_NAMES = {
    "relu",
    "relu_",
    "leaky_relu",
    "leaky_relu_",
    "prelu",
    "_prelu_kernel",
    "hardtanh",
    "hardtanh_",
    "relu6",
    "clamp",
    "clamp_",
    "clip",
    "clamp_min",
    "clamp_max",
    "abs",
    "absolute",
    "maximum",
    "minimum",
    "max",
    "amax",
    "max_pool1d",
    "max_pool2d",
    "max_pool3d",
    "max_pool2d_with_indices",
    "max_pool1d_with_indices",
    "max_pool3d_with_indices",
}
_SMOOTH_NAMES = {
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "softplus": nn.Softplus,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "elu": nn.ELU,
    "celu": nn.CELU,
    "selu": nn.SELU,
    "mish": nn.Mish,
    "hardswish": nn.Hardswish,
    "hardsigmoid": nn.Hardsigmoid,
    "logsigmoid": nn.LogSigmoid,
    "softsign": nn.Softsign,
}
_META_NAMES = {"size", "dim", "numel", "shape", "getattr", "sym_size", "_assert", "_assert_async"}


def _name_of(node: fx.Node) -> str:
    """A plain name for a call_function / call_method target (aten overloads by packet name)."""
    t = node.target
    if node.op == "call_method":
        return str(t)
    if t is operator.getitem:
        return "getitem"
    if t is operator.add or t is operator.iadd:
        return "add"
    if t is operator.sub or t is operator.isub:
        return "sub"
    if t is operator.mul or t is operator.imul:
        return "mul"
    if t is operator.truediv or t is operator.itruediv:
        return "div"
    if t is operator.neg:
        return "neg"
    if t is operator.pos:
        return "pos"
    if t is operator.matmul:
        return "matmul"
    if t is getattr:
        return "getattr"
    packet = getattr(t, "overloadpacket", None)
    if packet is not None:
        return str(packet.__name__)
    return str(getattr(t, "__name__", t))


def _where(node: fx.Node) -> str:
    """Where a node is in the model's forward, for error messages."""
    stack = node.meta.get("stack_trace") if hasattr(node, "meta") else None
    line = ""
    if stack:
        last = [s for s in str(stack).strip().splitlines() if s.strip()]
        if last:
            line = f" (forward: {last[-1].strip()})"
    if node.op == "call_module":
        return f"module '{node.target}'{line}"
    return f"node '{node.name}' of the traced forward{line}"


# --------------------------------------------------------------------------------------------
# the view
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class MaxSpec:
    """How a max node picks its candidates.

    ``kind``: ``"pool"`` (max-pool windows), ``"reduce"`` (max over dimensions) or ``"binary"``
    (element-wise maximum of two tensors). ``params``: the pool's kernel, stride, padding,
    dilation and ceil mode; or the reduced dims and keepdim.
    """

    kind: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, eq=False)
class ViewNode:
    """One tensor operation of the view.

    Attributes:
        node: the ``torch.fx`` node.
        kind: ``"input"``, ``"affine"`` (``linear`` says ``f(0) = 0``), ``"elementwise"``,
            ``"max"``, ``"const"`` (does not depend on the input), ``"meta"`` (sizes),
            ``"guard"`` (an unused result: torch.export input guards, asserts; skipped),
            ``"unsupported"``, ``"output"``.
        op: a short name (``"linear"``, ``"relu"``, ``"max_pool2d"``, ...).
        where: where it is in the forward (for messages).
        activation: for element-wise nodes, an equivalent module (the model's own module when it
            is one).
        piecewise_linear: element-wise node with an exact piecewise-linear form.
        max_spec: for max nodes.
        inputs: names of the input-dependent fx nodes among the arguments.
    """

    node: fx.Node
    kind: str
    op: str
    where: str
    linear: bool = False
    activation: nn.Module | None = None
    piecewise_linear: bool = False
    max_spec: MaxSpec | None = None
    inputs: tuple[str, ...] = ()


class ModelView:
    """A model as a traced graph of affine, element-wise and max operations.

    Build one with :func:`model_view`. Attributes: ``module`` (the user's model, unchanged),
    ``graph_module`` (the traced ``torch.fx.GraphModule``, sharing the model's parameters),
    ``nodes`` (:class:`ViewNode` per fx node, in topological order), ``input_shape`` (the
    per-example input shape, when known), ``traced`` (False when built by walking an
    ``nn.Sequential``).

    >>> import nngeom as ng
    >>> v = ng.model_view(ng.mlp([2, 3, 1]))
    >>> type(v).__name__, v.traced, v.input_shape
    ('ModelView', True, (2,))
    """

    def __init__(
        self,
        module: nn.Module,
        graph_module: fx.GraphModule,
        nodes: list[ViewNode],
        input_shape: tuple[int, ...] | None,
        traced: bool,
    ) -> None:
        self.module = module
        self.graph_module = graph_module
        self.nodes = nodes
        self.by_name = {vn.node.name: vn for vn in nodes}
        self.input_shape = input_shape
        self.traced = traced

    # ---------------------------------------------------------------- inspection
    @property
    def unsupported(self) -> list[ViewNode]:
        return [vn for vn in self.nodes if vn.kind == "unsupported"]

    @property
    def smooth(self) -> list[ViewNode]:
        """Element-wise nodes that are not piecewise linear (tanh, GELU, ...)."""
        return [vn for vn in self.nodes if vn.kind == "elementwise" and not vn.piecewise_linear]

    @property
    def is_piecewise_linear(self) -> bool:
        return not self.unsupported and not self.smooth

    def require_piecewise_linear(self, analysis: str) -> None:
        """Raise :class:`UnsupportedModel` naming the first operation that is not PL."""
        for vn in self.nodes:
            if vn.kind == "unsupported":
                raise UnsupportedModel(
                    f"{analysis} cannot handle {vn.op} at {vn.where}: it is not an affine, "
                    f"piecewise-linear element-wise or max operation; {_GENERIC}"
                )
            if vn.kind == "elementwise" and not vn.piecewise_linear:
                raise UnsupportedModel(
                    f"{analysis} is undefined for a smooth activation: {vn.op} at {vn.where} is "
                    "not piecewise linear (knots and linear regions exist only for piecewise-"
                    "linear nets: ReLU, LeakyReLU, PReLU, Hardtanh, abs, max-pool, VAF); "
                    f"{_GENERIC}"
                )

    def describe(self) -> str:
        """A one-line summary of the operations, e.g. ``conv2d relu max_pool2d ... linear``."""
        parts = []
        for vn in self.nodes:
            if vn.kind in ("affine", "elementwise", "max"):
                if vn.node.op == "call_module":
                    m = self.graph_module.get_submodule(str(vn.node.target))
                    parts.append(_short(m))
                elif vn.op not in ("getitem", "contiguous", "view", "reshape", "flatten"):
                    parts.append(vn.op)
                else:
                    parts.append(vn.op)
        return " ".join(parts) if parts else "identity"

    def as_chain(self) -> tuple[list[nn.Linear], list[nn.Module], nn.Module | None]:
        """The view as an MLP: ``(linears, hidden activations, output activation or None)``.

        Succeeds when the graph is a chain ``affine -> element-wise -> affine -> ... -> affine``
        on flat ``(N, d)`` inputs. A block of affine operations that is one ``nn.Linear`` keeps
        that module (the MLP view then shares its parameters); any other block (BatchNorm folded
        into a Linear, ``F.linear``, scaling, Dropout in eval) becomes a new ``nn.Linear`` with
        the folded weights (a copy: gradients do not reach the model's own parameters).

        Raises:
            UnsupportedModel: a residual branch, a max, an unsupported operation, non-flat
                inputs, two element-wise operations in a row, or no affine layer first.
        """
        if self.input_shape is None or len(self.input_shape) != 1:
            raise UnsupportedModel(
                f"an MLP view needs flat (N, d) inputs; this model's input shape is "
                f"{self.input_shape}"
            )
        cur = next(vn.node.name for vn in self.nodes if vn.kind == "input")
        blocks: list[list[ViewNode]] = [[]]
        acts: list[ViewNode] = []
        for vn in self.nodes:
            if vn.kind in ("input", "const", "meta", "guard"):
                continue
            if vn.kind == "output":
                if vn.inputs != (cur,):
                    raise UnsupportedModel("the model's output is not the end of a chain")
                break
            if vn.kind in ("max", "unsupported"):
                raise UnsupportedModel(
                    f"{vn.op} at {vn.where} is not part of an MLP (Linear + activation chain)"
                )
            users = [u for u in self.nodes if cur in u.inputs and u.kind not in ("meta",)]
            if vn.inputs != (cur,) or len(users) != 1:
                raise UnsupportedModel(
                    f"{vn.op} at {vn.where} makes the forward a graph, not a chain (a residual or "
                    "branching connection): the MLP view does not apply; the exact analyses "
                    "(knots, regions) work on the graph itself"
                )
            if vn.kind == "affine":
                blocks[-1].append(vn)
            else:
                acts.append(vn)
                blocks.append([])
            cur = vn.node.name
        linears: list[nn.Linear] = []
        dims = [self.input_shape[0]]
        f64: fx.GraphModule | None = None
        for bi, block in enumerate(blocks):
            if not block:
                if bi == len(blocks) - 1 and bi > 0:
                    continue  # an output activation
                what = "the model starts with" if bi == 0 else "two activations in a row at"
                where = acts[bi - 1].where if bi else acts[0].where if acts else "the input"
                raise UnsupportedModel(
                    f"{what} {where}: an MLP view needs an affine layer between activations; "
                    "the exact analyses (knots, regions) work on the graph itself"
                )
            mods = [self.module_of(vn) for vn in block]
            real = [m for m in mods if not isinstance(m, (nn.Flatten, nn.Dropout, nn.Identity))]
            if (
                len(real) == 1
                and isinstance(real[0], nn.Linear)
                and real[0].in_features == dims[-1]
            ):
                lin = real[0]
            else:
                if f64 is None:
                    f64 = _deepcopy_f64(self.graph_module)
                lin = self._fold(f64, block, dims[-1])
            linears.append(lin)
            dims.append(lin.out_features)
        out_act = acts[-1].activation if len(acts) == len(linears) else None
        hidden = [vn.activation for vn in acts[: len(linears) - 1]]
        if any(a is None for a in hidden) or (len(acts) == len(linears) and out_act is None):
            raise UnsupportedModel("an activation of the model has no module equivalent")
        return linears, hidden, out_act  # type: ignore[return-value]

    def _fold(self, gm: fx.GraphModule, block: list[ViewNode], d: int) -> nn.Linear:
        """One ``nn.Linear`` equal to a chain of affine nodes on ``(N, d)`` inputs."""
        start = block[0].inputs[0]
        names = {vn.node.name for vn in block}
        env: dict[str, Any] = {start: torch.cat([torch.zeros(1, d), torch.eye(d)]).double()}
        by = {n.name: n for n in gm.graph.nodes}
        for vn in self.nodes:
            name = vn.node.name
            node = by[name]
            needed = name in names or vn.kind in ("const", "meta")
            if not needed or name in env:
                continue
            if any(a.name not in env for a in node.all_input_nodes):
                continue
            args = fx.node.map_arg(node.args, lambda n: env[n.name])
            kwargs = fx.node.map_arg(node.kwargs, lambda n: env[n.name])
            with torch.no_grad():
                if node.op == "call_module":
                    env[name] = gm.get_submodule(str(node.target))(*args, **kwargs)
                elif node.op == "call_function":
                    env[name] = node.target(*args, **kwargs)  # type: ignore[operator]
                elif node.op == "call_method":
                    env[name] = getattr(args[0], str(node.target))(*args[1:], **kwargs)
                elif node.op == "get_attr":
                    env[name] = _fetch_attr(gm, str(node.target))
        y = env[block[-1].node.name]
        if not isinstance(y, Tensor) or y.ndim != 2:
            raise UnsupportedModel(
                f"the affine block ending at {block[-1].where} does not give flat (N, n) outputs"
            )
        b, W = y[0], (y[1:] - y[0]).T
        dtype, device = _probe_dtype(self.module), _probe_device(self.module)
        lin = nn.Linear(d, W.shape[0], dtype=dtype, device="meta").to_empty(device=device)
        with torch.no_grad():
            lin.weight.copy_(W)
            lin.bias.copy_(b)
        return lin

    def __repr__(self) -> str:
        return f"ModelView({self.describe()})"

    # ---------------------------------------------------------------- evaluation
    def __call__(self, x: Tensor) -> Tensor:
        """The graph's forward (equals the model's): ``x`` ``(N, *input_shape)``."""
        return self.graph_module(x)

    def module_of(self, vn: ViewNode) -> nn.Module | None:
        if vn.node.op == "call_module":
            return self.graph_module.get_submodule(str(vn.node.target))
        return None

    def elementwise_form(
        self, vn: ViewNode, shape: Sequence[int]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Piecewise-linear form of an element-wise node over a per-example ``shape``.

        Returns float64 ``(breakpoints (U, m), slopes (U, m + 1), intercepts (U, m + 1))``
        with ``U = prod(shape)``, units in row-major order.
        """
        from ._activation_forms import piecewise_linear_form

        act = vn.activation
        U = int(np.prod(shape)) if len(shape) else 1
        if isinstance(act, nn.PReLU):
            w = act.weight.detach().to("cpu", torch.float64)
            if w.numel() == 1:
                slopes = w.expand(U)
            else:
                if len(shape) < 1 or shape[0] != w.numel():
                    raise UnsupportedModel(
                        f"PReLU at {vn.where} has {w.numel()} slopes but its input has per-example "
                        f"shape {tuple(shape)} (channel dimension must match)"
                    )
                slopes = w.reshape(-1, *([1] * (len(shape) - 1))).expand(*shape).reshape(U)
            bp = torch.zeros(U, 1, dtype=torch.float64)
            sl = torch.stack([slopes, torch.ones(U, dtype=torch.float64)], 1)
            ic = torch.zeros(U, 2, dtype=torch.float64)
            return bp.numpy(), sl.numpy(), ic.numpy()
        if act is None:
            raise UnsupportedModel(f"{vn.op} at {vn.where} has no piecewise-linear form")
        try:
            bp, sl, ic = piecewise_linear_form(act, U)
        except UnsupportedModel as exc:
            raise UnsupportedModel(f"{vn.op} at {vn.where}: {exc}") from exc
        out = tuple(t.detach().cpu().numpy().astype(np.float64) for t in (bp, sl, ic))
        if out[0].shape[0] != U or out[1].shape != (U, out[0].shape[1] + 1):
            raise UnsupportedModel(
                f"the activation at {vn.where} gave a piecewise-linear form of shapes "
                f"{[o.shape for o in out]} for {U} units; expected ({U}, m), ({U}, m+1), ({U}, m+1)"
            )
        if not all(np.isfinite(o).all() for o in out):
            raise UnsupportedModel(f"the activation at {vn.where} has a non-finite form")
        if out[0].shape[1] > 1 and np.any(np.diff(out[0], axis=1) < 0):
            raise UnsupportedModel(f"the activation at {vn.where} has unsorted breakpoints")
        return out  # type: ignore[return-value]

    def max_index(self, vn: ViewNode, in_shapes: Sequence[tuple[int, ...]]) -> tuple[Tensor, tuple]:
        """Candidate indices of a max node.

        Args:
            in_shapes: per-example shapes of the node's input-dependent arguments.

        Returns:
            ``(idx, out_shape)``: ``idx`` is a LongTensor ``(prod(out_shape), m)`` indexing the
            concatenation of the flattened inputs (``-1``: padding, never a candidate); the
            node's output at ``o`` is the max of the indexed entries.
        """
        spec = vn.max_spec
        assert spec is not None
        if spec.kind == "binary":
            n = int(np.prod(in_shapes[0]))
            ar = torch.arange(n)
            return torch.stack([ar, ar + n], 1), tuple(in_shapes[0])
        shape = tuple(in_shapes[0])
        n = int(np.prod(shape))
        ar = torch.arange(n, dtype=torch.float64).reshape(shape)
        if spec.kind == "reduce":
            nd = len(shape)
            # the node's dims count the batch dimension; per-example dims are one less
            dims = sorted({(d if d >= 0 else d + nd + 1) - 1 for d in spec.params["dims"]})
            if not dims or dims[0] < 0 or dims[-1] >= nd:
                raise UnsupportedModel(
                    f"{vn.op} at {vn.where} reduces over dims {spec.params['dims']}: the max must "
                    "be over per-example dimensions, not the batch"
                )
            keep = [d for d in range(nd) if d not in dims]
            t = ar.permute(*keep, *dims).reshape(*[shape[d] for d in keep], -1)
            out_shape = [shape[d] for d in keep]
            if spec.params.get("keepdim"):
                out_shape = [1 if d in dims else shape[d] for d in range(nd)]
            return t.reshape(-1, t.shape[-1]).long(), tuple(out_shape)
        # pool
        p = spec.params
        k = p["nd"]
        if len(shape) not in (k + 1,):
            raise UnsupportedModel(
                f"{vn.op} at {vn.where}: expected a per-example input of {k + 1} dimensions "
                f"(C, ...), got {shape}"
            )
        t = ar
        spatial = shape[1:]
        pads = []
        for d in range(k):
            ker, st, pad, dil = p["kernel"][d], p["stride"][d], p["padding"][d], p["dilation"][d]
            span = (ker - 1) * dil + 1
            L = spatial[d] + 2 * pad
            if p["ceil_mode"]:
                n_out = math.ceil((L - span) / st) + 1
                if (n_out - 1) * st >= spatial[d] + pad:
                    n_out -= 1
            else:
                n_out = (L - span) // st + 1
            extra = max(0, (n_out - 1) * st + span - L)
            pads.append((pad, pad + extra))
        pad_arg: list[int] = []
        for lo, hi in reversed(pads):
            pad_arg += [lo, hi]
        t = F.pad(t.unsqueeze(0), pad_arg, value=-1.0)[0]
        for d in range(k):
            ker, st, dil = p["kernel"][d], p["stride"][d], p["dilation"][d]
            span = (ker - 1) * dil + 1
            t = t.unfold(1 + d, span, st)
            if dil > 1:
                t = t[..., ::dil]
        # t: (C, o1..ok, w1..wk)
        out_shape = tuple(t.shape[: 1 + k])
        idx = t.reshape(int(np.prod(out_shape)), -1).long()
        return idx, out_shape


def _short(m: nn.Module) -> str:
    if isinstance(m, nn.Linear):
        return f"linear({m.in_features}->{m.out_features})"
    if isinstance(m, nn.modules.conv._ConvNd):
        ks = "x".join(str(k) for k in m.kernel_size)
        name = type(m).__name__.lower()
        return f"{name}({m.in_channels}->{m.out_channels},{ks})"
    if isinstance(m, nn.LeakyReLU):
        return f"leaky_relu({m.negative_slope:g})"
    if isinstance(m, _MAXPOOL_MODULES + (nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d)):
        ks = m.kernel_size
        return f"{type(m).__name__.lower()}({ks})"
    if isinstance(m, nn.modules.batchnorm._BatchNorm):
        return f"batchnorm({m.num_features})"
    name = getattr(m, "nngeom_name", None)
    return str(name) if name else type(m).__name__.lower()


# --------------------------------------------------------------------------------------------
# tracing and classification
# --------------------------------------------------------------------------------------------
class _Tracer(fx.Tracer):
    """Keeps torch.nn layers and nngeom element-wise modules as leaves."""

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        if getattr(m, "nngeom_elementwise", False) or hasattr(m, "nngeom_piecewise_linear_form"):
            return True
        return super().is_leaf_module(m, qualname)


def _flatten_sequential(module: nn.Module) -> list[tuple[str, nn.Module]] | None:
    if not isinstance(module, nn.Sequential):
        return None
    out: list[tuple[str, nn.Module]] = []

    def walk(m: nn.Module, prefix: str) -> None:
        for name, child in m.named_children():
            q = f"{prefix}{name}"
            if isinstance(child, nn.Sequential):
                walk(child, q + ".")
            else:
                out.append((q, child))

    walk(module, "")
    return out


def _walk_graph(module: nn.Module) -> fx.GraphModule:
    """A chain graph from an ``nn.Sequential``'s children (the fallback when tracing fails)."""
    children = _flatten_sequential(module)
    assert children is not None
    graph = fx.Graph()
    x = graph.placeholder("x")
    for q, _ in children:
        x = graph.call_module(q, (x,))
    graph.output(x)
    return fx.GraphModule(module, graph)


def _trace(module: nn.Module) -> tuple[fx.GraphModule, bool]:
    if isinstance(module, fx.GraphModule):
        return module, True
    try:
        graph = _Tracer().trace(module)
        return fx.GraphModule(module, graph), True
    except Exception as exc:  # torch.fx raises many kinds on untraceable code
        if isinstance(module, nn.Sequential):
            return _walk_graph(module), False
        raise UnsupportedModel(
            f"{type(module).__name__}.forward cannot be traced by torch.fx ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''}); the usual cause is control flow "
            "that depends on the input (if/for on tensor values). Rewrite that part without "
            "data-dependent branches, or wrap the untraceable layer in an nn.Sequential of "
            f"supported layers; {_GENERIC}"
        ) from exc


def _is_dynamic(arg: Any, dynamic: set[str]) -> bool:
    found = False

    def visit(a: Any) -> Any:
        nonlocal found
        if isinstance(a, fx.Node) and a.name in dynamic:
            found = True
        return a

    fx.node.map_aggregate(arg, visit)
    return found


def _dyn_inputs(node: fx.Node, dynamic: set[str]) -> tuple[str, ...]:
    names: list[str] = []
    for a in node.all_input_nodes:
        if a.name in dynamic and a.name not in names:
            names.append(a.name)
    return tuple(names)


def _arg(node: fx.Node, i: int, name: str, default: Any = None) -> Any:
    if name in node.kwargs:
        return node.kwargs[name]
    if len(node.args) > i:
        return node.args[i]
    return default


def _const_number(v: Any) -> float | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, (int, float)):
        return float(v)
    return None


def _tuple(v: Any, k: int) -> tuple[int, ...]:
    if isinstance(v, (list, tuple)):
        if len(v) == 1:
            return tuple(int(v[0]) for _ in range(k))
        return tuple(int(x) for x in v)
    return tuple(int(v) for _ in range(k))


def _pool_params(k: int, kernel, stride, padding, dilation, ceil_mode) -> dict[str, Any]:
    kernel = _tuple(kernel, k)
    stride = _tuple(stride if stride not in (None, [], ()) else kernel, k)
    return {
        "nd": k,
        "kernel": kernel,
        "stride": stride,
        "padding": _tuple(padding, k),
        "dilation": _tuple(dilation, k),
        "ceil_mode": bool(ceil_mode),
    }


def _classify_module(node: fx.Node, m: nn.Module, dyn: tuple[str, ...], where: str) -> ViewNode:
    name = type(m).__name__
    if isinstance(m, _TRAIN_SENSITIVE) and m.training:
        raise UnsupportedModel(
            f"{name} at {where} is in training mode (random or batch-dependent): call "
            "model.eval() first -- the analyses describe the deterministic evaluation-mode network"
        )
    if isinstance(m, nn.modules.batchnorm._BatchNorm) and not m.track_running_stats:
        return ViewNode(node, "unsupported", name, where, inputs=dyn)
    if isinstance(m, nn.modules.instancenorm._InstanceNorm):
        return ViewNode(node, "unsupported", name, where, inputs=dyn)
    if isinstance(m, _AFFINE_MODULES):
        return ViewNode(node, "affine", _short(m), where, linear=False, inputs=dyn)
    if isinstance(m, _LINEAR_MODULES):
        return ViewNode(node, "affine", name.lower(), where, linear=True, inputs=dyn)
    if isinstance(m, _MAXPOOL_MODULES):
        if m.return_indices:
            return ViewNode(node, "unsupported", f"{name}(return_indices=True)", where, inputs=dyn)
        k = {nn.MaxPool1d: 1, nn.MaxPool2d: 2, nn.MaxPool3d: 3}[type(m)]
        params = _pool_params(k, m.kernel_size, m.stride, m.padding, m.dilation, m.ceil_mode)
        return ViewNode(node, "max", _short(m), where, max_spec=MaxSpec("pool", params), inputs=dyn)
    if isinstance(m, _PL_MODULES):
        return ViewNode(
            node, "elementwise", _short(m), where, activation=m, piecewise_linear=True, inputs=dyn
        )
    if getattr(m, "nngeom_elementwise", False) or hasattr(m, "nngeom_piecewise_linear_form"):
        from ._activation_forms import is_piecewise_linear

        return ViewNode(
            node,
            "elementwise",
            _short(m),
            where,
            activation=m,
            piecewise_linear=is_piecewise_linear(m),
            inputs=dyn,
        )
    if isinstance(m, _SMOOTH_MODULES):
        return ViewNode(node, "elementwise", _short(m), where, activation=m, inputs=dyn)
    return ViewNode(node, "unsupported", name, where, inputs=dyn)


def _classify_call(node: fx.Node, dynamic: set[str], where: str) -> ViewNode:
    op = _name_of(node)
    dyn = _dyn_inputs(node, dynamic)
    args = list(node.args)
    first_dyn = bool(args) and _is_dynamic(args[0], dynamic)

    def others_const(skip: int = 0) -> bool:
        rest = list(node.args[skip + 1 :]) + list(node.kwargs.values())
        return not any(_is_dynamic(a, dynamic) for a in rest)

    if op in _META_NAMES:
        return ViewNode(node, "meta", op, where, inputs=dyn)
    if op in _LINEAR_NAMES:
        if op in ("dropout",):
            training = _arg(node, 2, "training", True if node.op == "call_function" else False)
            if node.op == "call_function" and node.target is F.dropout and training:
                raise UnsupportedModel(
                    f"F.dropout at {where} is called with training=True (random): pass "
                    "training=self.training and call model.eval(), or use nn.Dropout"
                )
        if op in ("pad", "constant_pad_nd"):
            mode = _arg(node, 2, "mode", "constant")
            value = _arg(node, 3, "value", 0.0) if op == "pad" else _arg(node, 2, "value", 0.0)
            if mode != "constant":
                return ViewNode(node, "unsupported", f"pad(mode={mode})", where, inputs=dyn)
            return ViewNode(node, "affine", op, where, linear=not value, inputs=dyn)
        if op in ("cat", "concat", "concatenate", "stack"):
            # constant tensors among the pieces make the op affine, not linear
            parts = args[0] if args else node.kwargs.get("tensors", [])
            all_dyn = all(_is_dynamic(p, dynamic) for p in parts)
            return ViewNode(node, "affine", op, where, linear=all_dyn, inputs=dyn)
        if not first_dyn and op not in ("getitem", "__getitem__"):
            return ViewNode(node, "unsupported", op, where, inputs=dyn)
        return ViewNode(node, "affine", op, where, linear=True, inputs=dyn)
    if op in _AFFINE_NAMES:
        if op in ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d"):
            ok = first_dyn and others_const(0)
        elif op in ("convolution", "_convolution"):
            ok = first_dyn and others_const(0)
        elif op == "addmm":
            ok = (
                (not _is_dynamic(args[0], dynamic))
                and others_const(1)
                and _is_dynamic(args[1], dynamic)
            )
        elif op in ("batch_norm", "_native_batch_norm_legit_no_training"):
            training = _arg(node, 5, "training", False) if op == "batch_norm" else False
            if training:
                raise UnsupportedModel(
                    f"batch_norm at {where} is called with training=True (batch-dependent): "
                    "call model.eval() first"
                )
            ok = first_dyn and others_const(0)
        elif op in ("add", "iadd", "sub", "isub", "rsub"):
            alpha = node.kwargs.get("alpha", 1)
            ok = not isinstance(alpha, fx.Node)
        elif op in ("mul", "imul", "matmul", "mm", "bmm", "einsum"):
            tensors = [a for a in list(node.args) + list(node.kwargs.values())]
            ok = sum(_is_dynamic(a, dynamic) for a in tensors) <= 1
            if op == "einsum":
                ok = sum(_is_dynamic(a, dynamic) for a in tensors[1:]) <= 1
        elif op in ("div", "truediv", "itruediv"):
            ok = first_dyn and others_const(0)
        else:
            ok = False
        if not ok:
            return ViewNode(
                node, "unsupported", f"{op} (not affine in the input)", where, inputs=dyn
            )
        linear = op in (
            "mul",
            "imul",
            "matmul",
            "mm",
            "bmm",
            "einsum",
            "div",
            "truediv",
            "itruediv",
        )
        if op == "linear" or op in ("conv1d", "conv2d", "conv3d"):
            bias = _arg(node, 2, "bias", None)
            linear = bias is None
        return ViewNode(node, "affine", op, where, linear=linear, inputs=dyn)
    if op in _SMOOTH_NAMES:
        if not (first_dyn and others_const(0)):
            return ViewNode(node, "unsupported", op, where, inputs=dyn)
        act = _SMOOTH_NAMES[op]()
        if op == "softplus":
            act = nn.Softplus(
                beta=float(_arg(node, 1, "beta", 1.0)),
                threshold=float(_arg(node, 2, "threshold", 20.0)),
            )
        return ViewNode(node, "elementwise", op, where, activation=act, inputs=dyn)
    if op in _PL_NAMES:
        return _classify_pl(node, op, dyn, dynamic, where, first_dyn, others_const)
    return ViewNode(node, "unsupported", op, where, inputs=dyn)


def _classify_pl(node, op, dyn, dynamic, where, first_dyn, others_const) -> ViewNode:
    def elem(act: nn.Module, name: str) -> ViewNode:
        return ViewNode(
            node, "elementwise", name, where, activation=act, piecewise_linear=True, inputs=dyn
        )

    if op in ("relu", "relu_"):
        return elem(nn.ReLU(), "relu")
    if op in ("leaky_relu", "leaky_relu_"):
        slope = _const_number(_arg(node, 1, "negative_slope", 0.01))
        if slope is None:
            return ViewNode(
                node, "unsupported", "leaky_relu (non-constant slope)", where, inputs=dyn
            )
        return elem(nn.LeakyReLU(slope), f"leaky_relu({slope:g})")
    if op in ("hardtanh", "hardtanh_"):
        lo = _const_number(_arg(node, 1, "min_val", -1.0))
        hi = _const_number(_arg(node, 2, "max_val", 1.0))
        if lo is None or hi is None:
            return ViewNode(
                node, "unsupported", "hardtanh (non-constant bounds)", where, inputs=dyn
            )
        return elem(Clamp(lo, hi), f"hardtanh({lo:g},{hi:g})")
    if op == "relu6":
        return elem(Clamp(0.0, 6.0), "relu6")
    if op in ("abs", "absolute"):
        return elem(Abs(), "abs")
    if op in ("prelu", "_prelu_kernel"):
        return ViewNode(node, "unsupported", "F.prelu (use nn.PReLU)", where, inputs=dyn)
    if op in ("clamp", "clamp_", "clip", "clamp_min", "clamp_max"):
        if op == "clamp_min":
            lo, hi = _arg(node, 1, "min", None), None
        elif op == "clamp_max":
            lo, hi = None, _arg(node, 1, "max", None)
        else:
            lo, hi = _arg(node, 1, "min", None), _arg(node, 2, "max", None)
        lo_n = None if lo is None else _const_number(lo)
        hi_n = None if hi is None else _const_number(hi)
        if (lo is not None and lo_n is None) or (hi is not None and hi_n is None) or not first_dyn:
            return ViewNode(node, "unsupported", f"{op} (non-constant bounds)", where, inputs=dyn)
        act = Clamp(lo_n, hi_n)
        return elem(act, "relu" if (lo_n == 0 and hi_n is None) else op)
    if op in ("maximum", "minimum") or (
        op == "max" and len(node.args) >= 2 and isinstance(node.args[1], fx.Node)
    ):
        a, b = node.args[0], node.args[1]
        da, db = _is_dynamic(a, dynamic), _is_dynamic(b, dynamic)
        if op == "minimum":
            return ViewNode(node, "unsupported", "minimum (write -max(-a, -b))", where, inputs=dyn)
        if da and db:
            return ViewNode(node, "max", op, where, max_spec=MaxSpec("binary"), inputs=dyn)
        return ViewNode(
            node, "unsupported", f"{op} with a constant (use clamp(min=c))", where, inputs=dyn
        )
    if op in ("max", "amax"):
        if not first_dyn or not others_const(0):
            return ViewNode(node, "unsupported", op, where, inputs=dyn)
        dim = _arg(node, 1, "dim", None)
        keepdim = bool(_arg(node, 2, "keepdim", False))
        if dim is None or (isinstance(dim, (list, tuple)) and len(dim) == 0):
            return ViewNode(
                node, "unsupported", f"{op} over all dimensions (give dim=)", where, inputs=dyn
            )
        dims = tuple(dim) if isinstance(dim, (list, tuple)) else (dim,)
        # torch.max(x, dim) returns (values, indices): only values (getitem 0) may be used
        kind = "reduce_tuple" if op == "max" else "reduce"
        return ViewNode(
            node,
            "max",
            op,
            where,
            max_spec=MaxSpec(
                "reduce", {"dims": dims, "keepdim": keepdim, "tuple": kind == "reduce_tuple"}
            ),
            inputs=dyn,
        )
    if op.startswith("max_pool"):
        k = int(op[len("max_pool")])
        with_idx = op.endswith("with_indices") or bool(_arg(node, 6, "return_indices", False))
        params = _pool_params(
            k,
            _arg(node, 1, "kernel_size"),
            _arg(node, 2, "stride", None),
            _arg(node, 3, "padding", 0),
            _arg(node, 4, "dilation", 1),
            _arg(node, 5, "ceil_mode", False),
        )
        params["tuple"] = with_idx
        return ViewNode(
            node, "max", f"max_pool{k}d", where, max_spec=MaxSpec("pool", params), inputs=dyn
        )
    return ViewNode(node, "unsupported", op, where, inputs=dyn)


def _classify(gm: fx.GraphModule) -> list[ViewNode]:
    dynamic: set[str] = set()
    nodes: list[ViewNode] = []
    placeholders = [n for n in gm.graph.nodes if n.op == "placeholder"]
    if len(placeholders) != 1:
        raise UnsupportedModel(
            f"the model's forward takes {len(placeholders)} inputs; the exact analyses need a "
            "model of one tensor input"
        )
    for node in gm.graph.nodes:
        where = _where(node)
        if node.op == "placeholder":
            dynamic.add(node.name)
            nodes.append(ViewNode(node, "input", "input", where))
            continue
        if node.op == "output":
            nodes.append(
                ViewNode(node, "output", "output", where, inputs=_dyn_inputs(node, dynamic))
            )
            continue
        if node.op == "get_attr" or not _is_dynamic((node.args, node.kwargs), dynamic):
            nodes.append(ViewNode(node, "const", "const", where))
            continue
        if not node.users and node.op in ("call_module", "call_function"):
            # a result nobody uses: torch.export's input guards, runtime asserts
            nodes.append(ViewNode(node, "guard", _name_of(node), where))
            continue
        dyn = _dyn_inputs(node, dynamic)
        if node.op == "call_module":
            vn = _classify_module(node, gm.get_submodule(str(node.target)), dyn, where)
        else:
            vn = _classify_call(node, dynamic, where)
        if vn.kind != "meta":
            dynamic.add(node.name)
        nodes.append(vn)
    # torch.max(x, dim) / max_pool(..., return_indices=True) give (values, indices): only
    # values may be used
    for vn in nodes:
        if vn.kind == "max" and vn.max_spec is not None and vn.max_spec.params.get("tuple"):
            for user in vn.node.users:
                if not (
                    user.op == "call_function"
                    and user.target is operator.getitem
                    and user.args[1] == 0
                ):
                    raise UnsupportedModel(
                        f"the argmax indices of {vn.op} at {vn.where} are used: only the max "
                        "values are piecewise linear"
                    )
    return nodes


def model_view(
    model: nn.Module,
    input_shape: Sequence[int] | None = None,
    *,
    verify: bool = True,
) -> ModelView:
    """The traced model view of ``model`` (see the module docstring).

    Args:
        model: any ``nn.Module`` (evaluation mode for Dropout / BatchNorm) or an
            ``fx.GraphModule`` (e.g. ``torch.export.load(path).module()``).
        input_shape: the per-example input shape (e.g. ``(1, 28, 28)``); inferred from a first
            ``nn.Linear`` layer when omitted.
        verify: check on a seeded probe input that the graph's forward equals the model's.

    Returns:
        :class:`ModelView`.

    Raises:
        UnsupportedModel: not a module, an untraceable forward, a train-mode Dropout/BatchNorm,
            or a forward whose graph does not reproduce the model.

    >>> import torch, nngeom as ng
    >>> v = ng.model_view(ng.mlp([2, 3, 1]))
    >>> v
    ModelView(linear(2->3) relu linear(3->1))
    """
    if not isinstance(model, nn.Module):
        raise UnsupportedModel(f"expected a torch nn.Module, got {type(model).__name__}")
    check_model_tensors(model)
    input_shape = check_input_shape(input_shape)
    key = guard_key(model)
    cached = _CACHE.get(model)
    hit = cached is not None and cached[0] == key
    if hit:
        gm, traced, nodes, inferred, verified = cached[1]
    else:
        gm, traced = _trace(model)
        nodes = _classify(gm)
        inferred, verified = _infer_shape(gm), set()
    shape = tuple(int(s) for s in input_shape) if input_shape is not None else inferred
    view = ModelView(model, gm, nodes, shape, traced)
    if verify and shape is not None and gm is not model:
        if hit and shape in verified:
            check_finite_parameters(model)
        else:
            try:
                _verify(view, shape)
            except UnsupportedModel:
                if not hit:
                    raise
                _CACHE.pop(model, None)  # state the key does not see has changed: trace again
                return model_view(model, input_shape, verify=verify)
            verified.add(shape)
    _CACHE[model] = (key, (gm, traced, nodes, inferred, verified))
    return view


# Traces by model object, reused while its guard key (:func:`guard_key`) is unchanged;
# parameters are read live. A trace is checked against the model's forward on a probe once per
# input shape; a changed Python value that the trace fixed changes the key and traces again.
_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

_PLAIN = (bool, int, float, complex, str, bytes, type(None), torch.dtype, torch.device)


def _plain(v: object) -> bool:
    return isinstance(v, _PLAIN) or (
        isinstance(v, tuple) and len(v) <= 16 and all(isinstance(x, _PLAIN) for x in v)
    )


def _value_key(v: object) -> object:
    """A plain value by value, anything else by identity."""
    return v if _plain(v) else ("id", id(v))


def _forward_state(fn: Any) -> tuple:
    """The globals and closure values a ``forward`` function reads (by value or identity)."""
    code = getattr(fn, "__code__", None)
    if code is None:
        return ()
    g = getattr(fn, "__globals__", {})
    names = tuple((n, _value_key(g[n])) for n in code.co_names if n in g)
    cells = tuple(_value_key(c.cell_contents) for c in (fn.__closure__ or ()) if _has_contents(c))
    return names + cells


def _has_contents(cell: Any) -> bool:
    try:
        _ = cell.cell_contents
    except ValueError:  # an empty cell
        return False
    return True


def guard_key(model: nn.Module) -> tuple:
    """Everything a trace of ``model`` depends on besides its tensors' values.

    Per submodule: its name, identity, type, training flag, ``forward`` (class or instance), its
    plain Python attributes by value (ints, floats, strings, ... as ``self.alpha = 0.1``) and the
    others by identity, its number of hooks; per user-defined ``forward``: the globals and
    closure values it reads. Plus the dtype and device of the first parameter (the probe's).
    A trace is reused only while this key is unchanged; parameter values are read live.
    """
    key: list[tuple] = []
    forwards: dict[int, Any] = {}
    for name, m in model.named_modules():
        d = m.__dict__
        fwd = d.get("forward", type(m).forward)
        attrs = tuple(
            (k, _value_key(v))
            for k, v in d.items()
            if not k.startswith("_") and k != "training" and k != "forward"
        )
        hooks = (len(m._forward_hooks), len(m._forward_pre_hooks))
        key.append((name, id(m), type(m), m.training, fwd, attrs, hooks))
        if not (getattr(fwd, "__module__", None) or "torch.").startswith("torch."):
            forwards[id(fwd)] = fwd
    state = tuple(_forward_state(f) for f in forwards.values())
    first = next(model.parameters(), None)
    probe = (first.dtype, first.device) if first is not None else None
    return (tuple(key), state, probe)


_T = TypeVar("_T")

# Derived views of custom modules (their MLP chain), by model object and guard key.
_DERIVED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def cached_by_guard(model: nn.Module, build: Callable[[], _T]) -> _T:
    """``build()``, reused for ``model`` while its :func:`guard_key` is unchanged (a view
    derived from a verified trace, e.g. the MLP chain of a module whose forward calls F.relu)."""
    key = guard_key(model)
    hit = _DERIVED.get(model)
    if hit is not None and hit[0] == key:
        return hit[1]
    value = build()
    _DERIVED[model] = (key, value)
    return value


def _infer_shape(gm: fx.GraphModule) -> tuple[int, ...] | None:
    for node in gm.graph.nodes:
        if node.op == "placeholder":
            val = node.meta.get("val") if hasattr(node, "meta") else None
            shape = getattr(val, "shape", None)
            if shape is not None and len(shape) >= 2:
                try:  # a torch.export program records its input's (symbolic) shape
                    return tuple(int(s) for s in shape[1:])
                except (TypeError, ValueError):
                    pass
    for node in gm.graph.nodes:
        if node.op == "call_module":
            m = gm.get_submodule(str(node.target))
            if isinstance(m, nn.Linear):
                return (m.in_features,)
            if isinstance(m, (nn.Flatten, nn.Dropout, nn.Identity)) or _is_elementwise(m):
                continue
            return None
        if node.op in ("call_function", "call_method"):
            if _name_of(node) in (
                "flatten",
                "view",
                "reshape",
                "getattr",
                "size",
                "dropout",
                "contiguous",
            ):
                continue
            if _name_of(node) == "linear":
                w = node.args[1] if len(node.args) > 1 else node.kwargs.get("weight")
                if isinstance(w, fx.Node) and w.op == "get_attr":
                    t = _fetch_attr(gm, str(w.target))
                    if isinstance(t, Tensor) and t.ndim == 2:
                        return (int(t.shape[1]),)
            if _name_of(node) in _PL_NAMES or _name_of(node) in _SMOOTH_NAMES:
                continue
            return None
    return None


def _is_elementwise(m: nn.Module) -> bool:
    return isinstance(m, _PL_MODULES + _SMOOTH_MODULES) or bool(
        getattr(m, "nngeom_elementwise", False)
    )


def _fetch_attr(gm: nn.Module, target: str) -> Any:
    obj: Any = gm
    for part in target.split("."):
        obj = getattr(obj, part)
    return obj


def _probe_dtype(model: nn.Module) -> torch.dtype:
    for p in model.parameters():
        if p.is_floating_point():
            return p.dtype
    for b in model.buffers():
        if b.is_floating_point():
            return b.dtype
    return torch.float32


def _probe_device(model: nn.Module) -> torch.device:
    for p in model.parameters():
        return p.device
    return torch.device("cpu")


def _verify(view: ModelView, shape: tuple[int, ...]) -> None:
    g = torch.Generator(device="cpu").manual_seed(0)
    dtype, device = _probe_dtype(view.module), _probe_device(view.module)
    if device.type == "meta":
        raise UnsupportedModel("the model's parameters are on the meta device: load real weights")
    x = torch.randn(3, *shape, generator=g, dtype=torch.float64).to(dtype=dtype, device=device)
    try:
        with torch.no_grad():
            want = view.module(x)
            got = view.graph_module(x)
    except Exception as exc:
        hint = "pass the right input shape"
        if isinstance(view.module, fx.GraphModule):
            hint += (
                "; a torch.export program must be exported with a dynamic batch dimension: "
                "torch.export.export(model, (x,), dynamic_shapes=({0: torch.export.Dim('batch')},))"
            )
        raise UnsupportedModel(
            f"the model cannot be evaluated on a batch of 3 inputs of per-example shape {shape} "
            f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); {hint}"
        ) from exc
    if not isinstance(want, Tensor) or not isinstance(got, Tensor):
        raise UnsupportedModel("the model's forward must return one tensor")
    if want.is_floating_point() and got.shape == want.shape and not torch.isfinite(want).all():
        from ._errors import InvalidModel

        # finite weights whose values overflow (e.g. 1e300): not a tracing problem
        if not all(
            torch.isfinite(p).all() for p in view.module.parameters() if p.is_floating_point()
        ):
            raise InvalidModel(
                f"{type(view.module).__name__} has NaN or infinite parameters; re-initialise "
                "or retrain it before analysing it"
            )
        raise InvalidModel(
            f"{type(view.module).__name__} gives NaN or inf on a standard normal probe input: "
            f"its values overflow {dtype} (weights too large, e.g. near 1e300); rescale the "
            "weights (divide each layer by a constant) and retry"
        )
    if got.shape != want.shape or not torch.allclose(got, want, rtol=1e-5, atol=1e-6):
        raise UnsupportedModel(
            f"the traced graph of {type(view.module).__name__} does not reproduce its forward "
            "(the forward may depend on state or on Python values that tracing fixed); "
            "use torch.export or an nn.Sequential"
        )


def input_dependent(view: ModelView) -> Callable[[str], bool]:
    names = {vn.node.name for vn in view.nodes if vn.kind not in ("const", "meta")}
    return names.__contains__


def float64_copy(view: ModelView) -> fx.GraphModule:
    """A float64 copy of the traced graph module (the engines compute in float64)."""
    return _deepcopy_f64(view.graph_module)


def _deepcopy_f64(gm: fx.GraphModule) -> fx.GraphModule:
    import warnings

    with warnings.catch_warnings():
        # deep-copying a torch.export module touches torch's own deprecated pytree classes
        warnings.simplefilter("ignore", FutureWarning)
        gm = copy.deepcopy(gm)
    return gm.to(torch.float64)


# the per-example input the graph engines carry on every piece: at most this many numbers
MAX_INPUT_ELEMENTS = 2**24


def check_input_shape(input_shape: Any) -> tuple[int, ...] | None:
    """``input_shape`` as a tuple of positive ints (None passes), refused with InvalidInput when
    malformed or larger than ``MAX_INPUT_ELEMENTS`` numbers per example."""
    from ._errors import InvalidInput

    if input_shape is None:
        return None
    if isinstance(input_shape, (str, bytes)) or not hasattr(input_shape, "__iter__"):
        raise InvalidInput(
            f"input_shape must be a tuple of positive ints (e.g. (1, 28, 28)), got {input_shape!r}"
        )
    shape = tuple(input_shape)
    for s_ in shape:
        if isinstance(s_, bool) or not isinstance(s_, (int, np.integer)) or s_ < 1:
            raise InvalidInput(
                f"input_shape must be a tuple of positive ints (e.g. (1, 28, 28)), got {shape!r}"
            )
    n = math.prod(int(s_) for s_ in shape)
    if n > MAX_INPUT_ELEMENTS:
        raise InvalidInput(
            f"input_shape {shape} has {n:,} numbers per example, more than nngeom's limit of "
            f"{MAX_INPUT_ELEMENTS:,} (MAX_INPUT_ELEMENTS)"
        )
    return tuple(int(s_) for s_ in shape)
