"""An MLP view of a torch module, the ``mlp()`` builder, and model validation.

Every analysis in nngeom that needs weights works on :class:`MLP`, a read-only view of a
module made of ``nn.Linear`` layers separated by element-wise activations. The view holds
*references* to the module's parameters: it never copies them, so gradients still flow.

Conventions: hidden layers are numbered from 0 (the first hidden layer); a net with sizes
``(d, n_0, ..., n_{L-1}, p)`` has ``L`` hidden layers of widths ``n_0..n_{L-1}``,
``L + 1`` Linear layers, weights ``W_l`` of shape ``(sizes[l+1], sizes[l])``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from ._activation_forms import (
    activation_name,
    is_piecewise_linear,
    make_activation,
    piecewise_linear_form,
)
from ._checks import (
    all_finite,
    check_bool,
    check_device,
    check_float_dtype,
    check_module,
    check_positive_int,
)
from ._errors import InvalidInput, InvalidModel, UnsupportedModel
from ._random import torch_generator
from .view import ModelView, cached_by_guard, check_input_shape, model_view

__all__ = [
    "MLP",
    "as_mlp",
    "mlp",
    "activation_name",
    "is_piecewise_linear",
    "make_activation",
    "piecewise_linear_form",
    "resolve",
]

# Layers that are the identity in evaluation mode: skipped by the view.
_NO_OPS = (nn.Dropout, nn.Flatten)
# The most parameters nngeom builds or loads (4 GB in float32): checked from the declared sizes,
# before anything is allocated.
MAX_PARAMETERS = 1_000_000_000
# Entries of a layer drawn per float64 row block at initialisation (the temporary stays <= 64 MiB).
_INIT_BLOCK_ENTRIES = 8_388_608
# as_mlp's check that a custom module's forward is its layers in order: the probe (rows of
# standard normal inputs from a fixed seed) and the tolerances of the comparison
_PROBE_ROWS = 4
_PROBE_SEED = 0
_PROBE_RTOL = 1e-4
_PROBE_ATOL = 1e-5


@dataclass(frozen=True, eq=False)
class MLP:
    """Read-only view of a fully connected network.

    Attributes:
        module: the viewed module (unchanged).
        linears: the ``L + 1`` ``nn.Linear`` layers in order.
        activations: the ``L`` hidden activations (``activations[l]`` follows ``linears[l]``).
        output_activation: activation after the last Linear, or None.

    >>> import nngeom as ng
    >>> m = ng.as_mlp(ng.mlp([1, 4, 4, 1]))
    >>> type(m).__name__, len(m.linears), len(m.activations)
    ('MLP', 3, 2)
    """

    module: nn.Module
    linears: tuple[nn.Linear, ...]
    activations: tuple[nn.Module, ...]
    output_activation: nn.Module | None = None

    @property
    def weights(self) -> list[Tensor]:
        """``W_l`` of shape ``(sizes[l+1], sizes[l])`` for ``l = 0..L`` (live parameters)."""
        return [lin.weight for lin in self.linears]

    @property
    def biases(self) -> list[Tensor]:
        """``b_l`` of shape ``(sizes[l+1],)``; zeros (not parameters) where a layer has no bias."""
        return [
            lin.bias
            if lin.bias is not None
            else torch.zeros(lin.out_features, dtype=lin.weight.dtype, device=lin.weight.device)
            for lin in self.linears
        ]

    @property
    def sizes(self) -> tuple[int, ...]:
        """``(input_dim, n_0, ..., n_{L-1}, output_dim)``."""
        return (self.linears[0].in_features, *(lin.out_features for lin in self.linears))

    @property
    def widths(self) -> tuple[int, ...]:
        """Hidden widths ``(n_0, ..., n_{L-1})``."""
        return self.sizes[1:-1]

    @property
    def input_dim(self) -> int:
        return self.sizes[0]

    @property
    def output_dim(self) -> int:
        return self.sizes[-1]

    @property
    def depth(self) -> int:
        """Number of hidden layers ``L``."""
        return len(self.activations)

    @property
    def activation(self) -> str:
        """The hidden activation's name, or ``"mixed"`` if the layers differ."""
        names = {activation_name(a) for a in self.activations}
        return names.pop() if len(names) == 1 else ("none" if not names else "mixed")

    @property
    def piecewise_linear(self) -> bool:
        """True if every hidden (and output) activation is piecewise linear."""
        acts = list(self.activations)
        if self.output_activation is not None:
            acts.append(self.output_activation)
        return all(is_piecewise_linear(a) for a in acts)

    @property
    def dtype(self) -> torch.dtype:
        return self.linears[0].weight.dtype

    @property
    def device(self) -> torch.device:
        return self.linears[0].weight.device

    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.module.parameters())

    def _check_input(self, x: Tensor) -> None:
        if not isinstance(x, Tensor) or x.ndim == 0 or x.shape[-1] != self.input_dim:
            raise InvalidInput(
                f"x must be a tensor of shape (N, {self.input_dim}), got "
                f"{getattr(x, 'shape', type(x).__name__)!r}"
            )
        if x.dtype != self.dtype or x.device != self.device:
            raise InvalidInput(
                f"x is {x.dtype} on {x.device} but the model is {self.dtype} on {self.device}: "
                f"pass x.to({self.dtype}) on the model's device (nngeom does not cast silently)"
            )

    def forward(self, x: Tensor) -> Tensor:
        """Evaluate the network layer by layer. ``x``: ``(N, input_dim)`` -> ``(N, output_dim)``."""
        self._check_input(x)
        h = x
        for lin, act in zip(self.linears[:-1], self.activations):
            h = act(lin(h))
        h = self.linears[-1](h)
        return self.output_activation(h) if self.output_activation is not None else h

    __call__ = forward

    def pre_activations(self, x: Tensor) -> list[Tensor]:
        """Hidden pre-activations ``z_l``, each ``(N, n_l)``, for ``l = 0..L-1``."""
        self._check_input(x)
        zs = []
        h = x
        for lin, act in zip(self.linears[:-1], self.activations):
            z = lin(h)
            zs.append(z)
            h = act(z)
        return zs

    def patterns(self, x: Tensor) -> Tensor:
        """Activation pattern ``z > 0`` of every hidden unit: bool ``(N, sum(widths))``."""
        zs = self.pre_activations(x)
        if not zs:
            return torch.zeros(x.shape[0], 0, dtype=torch.bool, device=x.device)
        return torch.cat([z > 0 for z in zs], dim=1)

    def check_finite(self) -> MLP:
        """Raise :class:`InvalidModel` if any weight or bias is NaN or infinite."""
        for l, lin in enumerate(self.linears):
            for what, p in (("weight", lin.weight), ("bias", lin.bias)):
                if p is not None and not all_finite(p):
                    raise InvalidModel(
                        f"Linear layer {l} has a non-finite {what} (NaN or inf); "
                        "re-initialise or retrain the model before analysing it"
                    )
        return self


def _flatten(module: nn.Module) -> list[nn.Module]:
    if isinstance(module, (nn.Sequential, nn.ModuleList)):
        out: list[nn.Module] = []
        for child in module:
            out.extend(_flatten(child))
        return out
    if isinstance(module, nn.Linear) or activation_name(module) is not None:
        return [module]
    if isinstance(module, _NO_OPS):
        if isinstance(module, nn.Dropout) and module.training and module.p > 0:
            raise UnsupportedModel(
                f"Dropout(p={module.p}) is in training mode (random): call model.eval() first -- "
                "the analyses describe the deterministic evaluation-mode network"
            )
        return []
    children = list(module.children())
    if (
        children
        and not isinstance(module, nn.Linear)
        and type(module).forward is not nn.Module.forward
    ):
        # a container-like custom module: look inside (its forward is checked afterwards)
        out = []
        for child in children:
            out.extend(_flatten(child))
        return out
    return [module]


def _describe(module: nn.Module) -> str:
    return type(module).__name__


def as_mlp(module: nn.Module, *, check_finite: bool = True, verify: bool = True) -> MLP:
    """View ``module`` as an MLP of Linear layers and element-wise activations.

    Accepts an ``nn.Sequential`` (nested ones are flattened) or any module whose
    registered children, in order, are Linear layers and activations (ReLU, LeakyReLU, Tanh,
    Sigmoid, Softplus, Identity, or modules declaring ``nngeom_elementwise``). Dropout and
    Flatten are skipped (evaluation-mode view). Two Linears in a row get an Identity between.

    Args:
        module: the model.
        check_finite: raise :class:`InvalidModel` on NaN/inf parameters.
        verify: for a custom (non-Sequential) module, check on a random probe that its forward
            equals the view's forward, so a module that calls its layers in another order is refused.

    Raises:
        UnsupportedModel: a layer that is not Linear or a known element-wise activation.
        InvalidModel: non-finite parameters (with ``check_finite``).

    >>> import torch, nngeom as ng
    >>> m = ng.as_mlp(ng.mlp([3, 5, 2], "tanh"))
    >>> m.sizes, m.widths, m.depth
    ((3, 5, 2), (5,), 1)
    """
    if isinstance(module, MLP):
        return module
    check_module(module)
    try:
        if not isinstance(module, (nn.Sequential, nn.ModuleList)):
            # a custom module: its forward decides the order, so read it from the trace
            raise UnsupportedModel(f"{type(module).__name__} is not an nn.Sequential")
        view = _walk(module, verify)
    except UnsupportedModel as walk_exc:
        walk_error = walk_exc  # kept for the closure below (the except name is cleared)

        # not a plain walk of Linear + activation children: ask the traced model view, which
        # reads F.relu, reused modules, BatchNorm in eval (folded), Dropout, Flatten, ...
        def chain() -> MLP:
            try:
                mv = model_view(module, verify=False)  # the MLP view is checked below
            except UnsupportedModel as exc:
                if "training mode" in str(exc) or "traced" in str(exc) or "trace" in str(exc):
                    raise
                raise walk_error from exc
            try:
                linears, acts, out_act = mv.as_chain()
            except Exception as exc:  # the walk's message names the offending Sequential layer
                if isinstance(module, (nn.Sequential, nn.ModuleList)):
                    raise walk_error from exc
                if isinstance(exc, UnsupportedModel):
                    raise
                raise UnsupportedModel(
                    f"{type(module).__name__} cannot be read as an MLP ({type(exc).__name__}: {exc})"
                ) from exc
            view = MLP(module, tuple(linears), tuple(acts), out_act)
            if verify:
                _verify_forward(module, view)
            return view

        # the chain of a verified trace is reused while the module's guard key holds
        view = cached_by_guard(module, chain) if verify else chain()
    for l, lin in enumerate(view.linears):
        if lin.in_features == 0 or lin.out_features == 0:
            raise InvalidModel(
                f"Linear layer {l} has zero width ({lin.in_features} inputs, "
                f"{lin.out_features} outputs): every layer needs at least one unit"
            )
    if check_finite:
        view.check_finite()
    return view


def _walk(module: nn.Module, verify: bool) -> MLP:
    """The MLP view from the registered children, in order (the fast path, no tracing)."""
    layers = _flatten(module)
    linears: list[nn.Linear] = []
    acts: list[nn.Module] = []
    pending: nn.Module | None = None
    for layer in layers:
        if isinstance(layer, nn.Linear):
            if linears:
                acts.append(pending if pending is not None else nn.Identity())
            elif pending is not None:
                raise UnsupportedModel(
                    f"the model starts with an activation ({_describe(pending)}) before any Linear "
                    "layer; nngeom's MLP view needs Linear first"
                )
            linears.append(layer)
            pending = None
        elif activation_name(layer) is not None:
            if pending is not None:
                raise UnsupportedModel(
                    f"two activations in a row ({_describe(pending)}, {_describe(layer)}); "
                    "merge them into one module or use an nn.Sequential of Linear + activation"
                )
            pending = layer
        else:
            raise UnsupportedModel(
                f"layer {_describe(layer)} is not supported: nngeom's MLP view takes Linear layers "
                "and element-wise activations (ReLU, LeakyReLU, Tanh, Sigmoid, Softplus, Identity); "
                "use the generic (autograd) functions for other models"
            )
    if not linears:
        raise UnsupportedModel(
            f"{_describe(module)} has no nn.Linear layer; nngeom's MLP view needs at least one"
        )
    for a, b in zip(linears, linears[1:]):
        if a.out_features != b.in_features:
            raise UnsupportedModel(
                f"Linear layers do not chain: {a.out_features} outputs feed {b.in_features} inputs"
            )
    view = MLP(module, tuple(linears), tuple(acts), pending)
    if verify and not isinstance(module, (nn.Sequential, nn.ModuleList)):
        _verify_forward(module, view)
    return view


def _verify_forward(module: nn.Module, view: MLP) -> None:
    g = torch_generator(_PROBE_SEED)
    x = torch.randn(_PROBE_ROWS, view.input_dim, generator=g, dtype=view.dtype).to(view.device)
    try:
        with torch.no_grad():
            got = module(x)
            want = view.forward(x)
    except Exception as exc:  # the module's own forward failed on a plain (N, d) input
        raise UnsupportedModel(
            f"{_describe(module)} cannot be evaluated on an (N, {view.input_dim}) input ({exc}); "
            "pass an nn.Sequential of Linear + activation layers"
        ) from exc
    if (
        not isinstance(got, Tensor)
        or got.shape != want.shape
        or not torch.allclose(got, want, rtol=_PROBE_RTOL, atol=_PROBE_ATOL)
    ):
        raise UnsupportedModel(
            f"{_describe(module)}.forward does not apply its Linear and activation layers in "
            "registration order (or does something else besides); pass an equivalent nn.Sequential"
        )


def mlp(
    sizes: Sequence[int],
    activation: str | nn.Module | type = "relu",
    *,
    seed: int = 0,
    generator: torch.Generator | None = None,
    bias: bool = True,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
    output_activation: str | nn.Module | type | None = None,
) -> nn.Sequential:
    """Build ``Sequential(Linear, act, Linear, act, ..., Linear)`` with sizes ``(d, n_0, ..., p)``.

    Initialisation is PyTorch's default (uniform in ``±1/sqrt(fan_in)`` for weights and biases)
    drawn from ``generator`` (a CPU ``torch.Generator``, which advances) or from a fresh
    generator seeded with ``seed``: the global RNG is never touched, so the same seed gives the
    same net everywhere.

    >>> import torch, nngeom as ng
    >>> net = ng.mlp([2, 8, 8, 1], "relu", seed=0)
    >>> net
    Sequential(
      (0): Linear(in_features=2, out_features=8, bias=True)
      (1): ReLU()
      (2): Linear(in_features=8, out_features=8, bias=True)
      (3): ReLU()
      (4): Linear(in_features=8, out_features=1, bias=True)
    )
    >>> net(torch.zeros(5, 2)).shape
    torch.Size([5, 1])
    """
    try:
        if isinstance(sizes, (str, bytes)):
            raise TypeError
        sizes = list(sizes)
    except TypeError:
        raise InvalidInput(
            f"sizes must be a sequence of positive ints (input, hidden..., output), got {sizes!r}"
        ) from None
    sizes = [check_positive_int(f"sizes[{k}]", s) for k, s in enumerate(sizes)]
    if len(sizes) < 2:
        raise InvalidInput(f"sizes needs at least an input and an output size, got {sizes}")
    bias = check_bool("bias", bias)
    n_params = sum(a * b + (b if bias else 0) for a, b in zip(sizes, sizes[1:]))
    if n_params > MAX_PARAMETERS:
        raise InvalidInput(
            f"sizes {sizes} give {n_params:,} parameters, more than nngeom's limit of "
            f"{MAX_PARAMETERS:,}; use smaller layers"
        )
    dtype = check_float_dtype(dtype)
    if device is not None:
        device = check_device(device)
    generator = torch_generator(seed, generator, device="cpu")  # float64 draws on the CPU
    hidden_act = make_activation(activation) if len(sizes) > 2 else None
    out_act = make_activation(output_activation) if output_activation is not None else None
    layers: list[nn.Module] = []
    for l, (fan_in, fan_out) in enumerate(zip(sizes, sizes[1:])):
        lin = nn.Linear(fan_in, fan_out, bias=bias, dtype=dtype, device="meta")
        lin = lin.to_empty(device="cpu")
        bound = 1.0 / fan_in**0.5
        with torch.no_grad():
            # float64 draws (the same net in every dtype), in row blocks: the float64
            # temporary stays small whatever the layer's size, and the values are those of
            # one draw of the whole matrix
            rows = max(1, _INIT_BLOCK_ENTRIES // fan_in)
            for r in range(0, fan_out, rows):
                w = torch.empty(min(rows, fan_out - r), fan_in, dtype=torch.float64)
                lin.weight[r : r + rows].copy_(w.uniform_(-bound, bound, generator=generator))
            del w
            if bias:
                lin.bias.copy_(
                    torch.empty(fan_out, dtype=torch.float64).uniform_(
                        -bound, bound, generator=generator
                    )
                )
        layers.append(lin)
        if l < len(sizes) - 2:
            assert hidden_act is not None
            layers.append(hidden_act if l == 0 else _fresh(activation, hidden_act))
    if out_act is not None:
        layers.append(out_act)
    net = nn.Sequential(*layers)
    if device is not None:
        net = net.to(device)
    return net


def _fresh(activation: str | nn.Module | type, first: nn.Module) -> nn.Module:
    """A new activation module per layer (so trainable activations are not shared by accident)."""
    if isinstance(activation, nn.Module):
        import copy

        return copy.deepcopy(first)
    return make_activation(activation)


def resolve(model: Any, input_shape: Sequence[int] | None = None) -> Any:
    """The fastest exact representation of ``model``: its MLP view when it is a chain of dense
    layers (the MLP engines), else its :class:`ModelView` (the graph engines).

    ``input_shape``: the per-example input shape (needed for a model that does not start with
    an ``nn.Linear``, e.g. a conv net). Returns an :class:`nngeom.nets.MLP` or a ``ModelView``.
    """
    if isinstance(model, (MLP, ModelView)):
        return model
    if not isinstance(model, nn.Module):
        raise UnsupportedModel(f"expected a torch nn.Module, got {type(model).__name__}")
    input_shape = check_input_shape(input_shape)
    try:
        view = as_mlp(model, check_finite=False)  # checks complex / meta tensors
        if input_shape is None or int(np.prod(input_shape)) == view.input_dim:
            return view
    except UnsupportedModel as exc:
        if "training mode" in str(exc):
            raise
    return model_view(model, input_shape)
