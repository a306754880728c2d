"""Paths in parameter space between equivalent networks, and the loss along them.

* :func:`equal_loss_path` — the paper's three-segment path of constant loss from a configuration
  at a permutation point to its ``(i j)``-swapped copy;
* :func:`linear_path_losses` — the loss along the straight line between two models;
* :func:`bezier_path` — an optimised quadratic Bezier curve between two minima (Garipov et al.
  2018), for comparison;
* :func:`path_losses` — the loss at each row of a ``(T, n)`` tensor of flat parameters.

Rows are flat parameter vectors (:mod:`nngeom._params`: the trainable parameters); losses are
numpy arrays (one float per point of the path).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn
from torch.func import functional_call

from .._checks import all_finite, check_int, check_number, check_positive_int
from .._errors import InvalidInput, InvalidModel
from .._linop import check_finite
from .._loss_data import check_loss_data
from .._losses import LossFn, loss_fn
from .._params import (
    Layout,
    check_basis_size,
    flatten_parameters,
    load_flat_parameters,
    module_of,
    offsets,
)
from .._random import torch_generator
from ..nets import as_mlp
from ._mlp import check_pair, mlp_chain, same_architecture

# Incoming vectors closer than this (relative and absolute) are equal: a permutation point.
_EQUAL_INCOMING = 1e-9


@dataclass
class EqualLossPath:
    """A piecewise-linear path in parameter space: ``params`` ``(T, n)`` (flat trainable
    parameters); ``breaks`` are the indices where its segments start (for plotting); ``start``
    and ``end`` the models at its two ends (see :func:`equal_loss_path`)."""

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
    view = mlp_chain(point)
    i, j = check_pair(view, layer, i, j)
    lin, nxt = view.linears[layer], view.linears[layer + 1]
    inc = (
        lin.weight.detach()
        if lin.bias is None
        else torch.cat([lin.weight.detach(), lin.bias.detach()[:, None]], 1)
    )
    if not torch.allclose(inc[i], inc[j], rtol=_EQUAL_INCOMING, atol=_EQUAL_INCOMING):
        raise InvalidInput(
            f"neurons {i} and {j} of layer {layer} do not have equal incoming vectors: not a "
            "permutation point (use find_permutation_saddle or embed_merged first)"
        )
    steps = check_positive_int("steps", steps)
    off = offsets(point)
    moved = [lin.weight, nxt.weight] + ([lin.bias] if lin.bias is not None else [])
    if any(id(p) not in off for p in moved):
        raise InvalidInput(
            f"the path moves the weights of hidden layer {layer} and the next layer's weights, "
            "but some of them are frozen (requires_grad=False): unfreeze them first"
        )
    check_basis_size(3 * steps + 1, len(flatten_parameters(point)), "the path")
    w = inc[i].clone()
    if target is not None:
        if not isinstance(target, Tensor) or tuple(target.shape) != tuple(w.shape):
            raise InvalidInput(
                f"target must be a tensor of shape {tuple(w.shape)} (incoming weights then "
                f"bias), got {getattr(target, 'shape', type(target).__name__)!r}"
            )
        check_finite(target, "target")
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
    model: nn.Module, X: Tensor, y: Tensor, params: Tensor, *, loss: str | LossFn = "mse"
) -> np.ndarray:
    """The loss at each row of ``params`` ``(T, n)`` (flat trainable parameters of ``model``).

    >>> import torch, nngeom as ng
    >>> from nngeom.symmetry import flatten_parameters, path_losses
    >>> net = ng.mlp([1, 2, 1], dtype=torch.float64)
    >>> X = torch.linspace(-1, 1, 8, dtype=torch.float64)[:, None]
    >>> path_losses(net, X, X, flatten_parameters(net)[None]).shape
    (1,)
    """
    model = module_of(model)
    y = check_loss_data(model, X, y, loss)
    f = loss_fn(loss)
    layout = Layout.of(model)
    n = layout.n
    if not isinstance(params, Tensor) or params.ndim != 2 or params.shape[1] != n:
        raise InvalidInput(
            f"params must be a tensor of shape (T, {n}) (one row of the model's parameters "
            f"per point), got {getattr(params, 'shape', type(params).__name__)!r}"
        )
    check_finite(params, "params")
    dtype = next(model.parameters()).dtype
    if params.dtype != dtype:
        raise InvalidInput(
            f"params is {params.dtype} but the model's parameters are {dtype}; pass "
            f"params.to({dtype}) (nngeom does not cast silently)"
        )
    out = []
    with torch.no_grad():
        for row in params:
            out.append(float(f(functional_call(model, layout.split(row), (X,)), y)))
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
    *,
    loss: str | LossFn = "mse",
    steps: int = 50,
) -> tuple[np.ndarray, np.ndarray]:
    """``(t, loss)`` along the straight line between two models of the same architecture
    (``steps + 1`` points, numpy arrays).

    >>> import torch, nngeom as ng
    >>> from nngeom.symmetry import linear_path_losses
    >>> a, b = ng.mlp([1, 2, 1], dtype=torch.float64), ng.mlp([1, 2, 1], dtype=torch.float64, seed=1)
    >>> X = torch.linspace(-1, 1, 8, dtype=torch.float64)[:, None]
    >>> t, losses = linear_path_losses(a, b, X, X, steps=4)
    >>> t.shape, losses.shape
    ((5,), (5,))
    """
    steps = check_positive_int("steps", steps)
    ta, tb = flatten_parameters(model_a), flatten_parameters(model_b)
    same_architecture(model_a, model_b)
    check_basis_size(steps + 1, ta.numel(), "the path")
    t = torch.linspace(0, 1, steps + 1, dtype=ta.dtype)
    params = (1 - t)[:, None] * ta + t[:, None] * tb
    return t.numpy(), path_losses(model_a, X, y, params, loss=loss)


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
    *,
    loss: str | LossFn = "mse",
    epochs: int = 300,
    lr: float = 1e-2,
    samples: int = 8,
    steps: int = 50,
    seed: int = 0,
    generator: torch.Generator | None = None,
) -> BezierPath:
    """A low-loss curve between two minima (Garipov et al. 2018): the control point ``c`` of a
    quadratic Bezier curve minimises the mean loss at ``samples`` random ``t`` per Adam step
    (``t`` drawn from ``seed``, or from ``generator`` when given); initialised at the midpoint.

    >>> import torch, nngeom as ng
    >>> from nngeom.symmetry import bezier_path
    >>> a, b = ng.mlp([1, 2, 1], dtype=torch.float64), ng.mlp([1, 2, 1], dtype=torch.float64, seed=1)
    >>> X = torch.linspace(-1, 1, 8, dtype=torch.float64)[:, None]
    >>> bezier_path(a, b, X, X, epochs=2, steps=4).losses.shape
    (5,)
    """
    epochs = check_int("epochs", epochs, minimum=0)
    lr = check_number("lr", lr, minimum=0.0, strict_min=True)
    samples = check_positive_int("samples", samples)
    steps = check_positive_int("steps", steps)
    gen = torch_generator(seed, generator)
    ta, tb = flatten_parameters(model_a), flatten_parameters(model_b)
    same_architecture(model_a, model_b)
    check_basis_size(steps + 1, ta.numel(), "the path")
    y = check_loss_data(model_a, X, y, loss)
    f = loss_fn(loss)
    layout = Layout.of(model_a)
    c = (0.5 * (ta + tb)).clone().requires_grad_(True)
    opt = torch.optim.Adam([c], lr=lr)

    def at(t: Tensor) -> Tensor:
        return (1 - t) ** 2 * ta + 2 * t * (1 - t) * c + t**2 * tb

    for _ in range(epochs):
        opt.zero_grad()
        ts = torch.rand(samples, generator=gen, dtype=ta.dtype)
        total = 0.0
        for t in ts:
            total = total + f(functional_call(model_a, layout.split(at(t)), (X,)), y)
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
    return BezierPath(c.detach().clone(), t.numpy(), path_losses(model_a, X, y, params, loss=loss))
