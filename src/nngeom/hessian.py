"""Hessians of a training loss: Hessian-vector products, the full Hessian, its spectrum.

Everything here works on the flat parameter vector ``theta`` of a model (its trainable
parameters in ``named_parameters()`` order, concatenated; :mod:`nngeom._params`), of length
``n``:

* :class:`HessianOperator` — the loss ``L(theta) = loss(model(X; theta), y)`` with its gradient,
  as a linear operator (:class:`nngeom._linop.LinearOperator`): Hessian-vector products
  ``H @ v`` (``torch.func`` forward-over-reverse, or a cached double backward), blocks
  ``H @ V`` (``vmap``), the full ``(n, n)`` Hessian, a scipy operator, restriction to a subspace.
* :func:`hessian_eigenvalues` — the full spectrum (small nets) or k extreme eigenvalues by
  Lanczos (:func:`lanczos`), as a float64 tensor.
* :func:`spectral_density` — stochastic Lanczos quadrature (the eigenvalue density).

Optionally, known symmetry directions (the ReLU rescaling directions of
:func:`nngeom.symmetry.rescaling_directions`, or any ``(n, r)`` tensor) are projected out: the
spectrum is then that of the Hessian restricted to their orthogonal complement (``n - r``
eigenvalues), and the result says so.

Any differentiable model works (MLPs, conv nets with pooling, residual blocks, batch norm in
eval mode), with ``X`` of any per-example shape ``(N, ...)``. The model is run on a few
examples first (:func:`nngeom._loss_data.check_loss_data`), so that inputs it cannot take and
targets that do not fit its output and the loss are refused with a clear error; layers that are
random or batch-dependent in training mode must be in eval mode; the model (parameters and
buffers) is never modified.

The data loss is taken to be a *mean over examples* (true for "mse", "sse" and "ce"): with
``chunk_size`` the data are processed in chunks of that many examples, weighted by their size.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor, nn
from torch.func import functional_call, grad, jvp, vmap

from ._callable import make_callable
from ._checks import (
    TINY,
    all_finite,
    check_number,
    check_positive_int,
    check_real_tensor,
)
from ._errors import InvalidInput, InvalidModel
from ._lanczos import WHICH, LanczosResult, SpectralDensity, complement_of, lanczos, slq
from ._linop import LinearOperator, check_finite
from ._loss_data import check_loss_data
from ._losses import LossFn, loss_fn, loss_name
from ._params import Layout, trainable
from ._random import torch_generator
from ._rescaling import rescaling_directions

__all__ = [
    "HessianOperator",
    "hessian",
    "hvp",
    "lanczos",
    "LanczosResult",
    "spectral_density",
    "SpectralDensity",
    "hessian_eigenvalues",
    "count_eigenvalues",
    "eigvalsh",
    "MAX_FULL_PARAMETERS",
]

# Above this many parameters, the full Hessian (n^2 float64 entries) is refused without k.
MAX_FULL_PARAMETERS = 20_000
# Batched Hessian-vector products (vmap) hold about this many activation entries per block:
# vectors per block = _BLOCK_ENTRIES // (examples in a data chunk * _ENTRIES_PER_EXAMPLE), within
# [_MIN_VECTORS, _MAX_VECTORS] (about 64 MB per block).
_BLOCK_ENTRIES = 8_000_000
_ENTRIES_PER_EXAMPLE = 64
_MIN_VECTORS = 16
_MAX_VECTORS = 1024
# The zero threshold of count_eigenvalues, relative to the largest |eigenvalue|.
ZERO_TOL = 1e-7
_HVP_METHODS = ("auto", "func", "autograd")


def _overflow(what: str, dtype: torch.dtype) -> InvalidModel:
    return InvalidModel(
        f"{what} has NaN or inf entries although the weights and the data are finite: the "
        f"loss or its derivatives overflow {dtype}; rescale the weights or the data, or use "
        "float64 (model.double() with X.double())"
    )


def _load_jvp_decompositions() -> None:
    # torch loads its forward-AD decompositions lazily on the first jvp, scripting them with
    # torch.jit (which warns that it is deprecated); load them once here, quietly.
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from torch.autograd.forward_ad import _maybe_load_decompositions

        _maybe_load_decompositions()


class HessianOperator(LinearOperator):
    """The Hessian of ``loss(model(X), y)`` with respect to the model's trainable parameters.

    The model is first run (under ``no_grad``) on a few examples of ``X``: an input it cannot
    take, an output that does not fit ``y`` and ``loss``, or a dtype/device mismatch is refused
    with :class:`~nngeom.InvalidInput`. A submodule that is random or batch-dependent in training
    mode (dropout, batch norm with running statistics, RReLU, ...) must be in eval mode
    (:class:`~nngeom.InvalidModel` otherwise, naming it): the Hessian of a random loss is not
    defined. Losses and products use copies of the model's buffers, so it is never modified.

    A :class:`nngeom._linop.LinearOperator`: ``H @ v`` for ``v`` ``(n,)`` and ``H @ V`` for
    ``V`` ``(n, k)``, :meth:`full`, ``to_scipy()``, ``restrict(subspace)``.

    Args:
        model: any module whose forward maps ``X`` ``(N, ...)`` to one tensor ``(N, p)`` (an MLP
            from :func:`nngeom.mlp`, a conv net, ...); not modified.
        X: inputs ``(N, ...)`` of any per-example shape (``(N, d)``, ``(N, C, H, W)``, ...), the
            same dtype (not cast) and device as the model.
        y: for ``"mse"``/``"sse"``: float targets of the output's shape ``(N, p)`` (``(N,)`` if
            the model outputs ``(N,)``). For ``"ce"``: integer class labels ``(N,)`` in
            ``[0, p)`` with ``p >= 2`` (converted to int64), or float class probabilities
            ``(N, p)``. A callable loss is only checked to return a scalar on a few examples.
        loss: ``"mse"``, ``"sse"``, ``"ce"`` or a callable ``(output, y) -> mean loss``.
        chunk_size: process the data in chunks of this many examples (None: all at once).
        method: implementation of :meth:`matvec`: ``"func"`` (torch.func jvp of grad),
            ``"autograd"`` (double backward through a cached gradient graph, like PyHessian;
            one data chunk only; faster per product on MLPs), or ``"auto"`` (autograd for one
            chunk, func otherwise). Blocks (``H @ V``) and :meth:`full` always use torch.func
            (vmap over batched products).

    Attributes:
        n: number of trainable parameters; ``theta``: the point ``(n,)`` the Hessian is taken
            at (a detached copy of the model's trainable parameters); ``layout``: where each
            parameter lives in ``theta``.

    >>> import torch, nngeom as ng
    >>> from nngeom.hessian import HessianOperator
    >>> net = ng.mlp([2, 3, 1], dtype=torch.float64)
    >>> X = torch.randn(8, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    >>> H = HessianOperator(net, X, X[:, :1] ** 2)
    >>> H.n, (H @ torch.ones(13, dtype=torch.float64)).shape
    (13, torch.Size([13]))
    """

    def __init__(
        self,
        model: nn.Module,
        X: Tensor,
        y: Tensor,
        *,
        loss: str | LossFn = "mse",
        chunk_size: int | None = None,
        method: str = "auto",
    ) -> None:
        if not isinstance(method, str) or method not in _HVP_METHODS:
            raise InvalidInput(f"unknown HVP method {method!r}; use 'auto', 'func' or 'autograd'")
        if chunk_size is not None:
            chunk_size = check_positive_int("chunk_size", chunk_size)
        y = check_loss_data(model, X, y, loss)
        _load_jvp_decompositions()
        self.model = model
        self.loss_name = loss_name(loss)
        self._f = loss_fn(loss, for_torch_func=True)
        if not trainable(model):
            raise InvalidInput("the model has no trainable parameters: its Hessian is empty")
        self.layout = Layout.of(model)
        theta = torch.cat([p.detach().reshape(-1) for _, p in trainable(model)])
        super().__init__(self.layout.n, theta.dtype, theta.device)
        self.theta = theta
        self._frozen = {k: p.detach() for k, p in model.named_parameters() if not p.requires_grad}
        # copies: whatever the forward pass does to a buffer, the model's own stay untouched
        self._buffers = {k: b.detach().clone() for k, b in model.named_buffers()}
        N = X.shape[0]
        cs = N if chunk_size is None else min(chunk_size, N)
        self.chunks = [(X[s : s + cs], y[s : s + cs], min(cs, N - s) / N) for s in range(0, N, cs)]
        if method == "auto":
            method = "autograd" if len(self.chunks) == 1 else "func"
        if method == "autograd" and len(self.chunks) > 1:
            raise InvalidInput("method='autograd' caches one gradient graph: use chunk_size=None")
        self.method = method
        self._graph: tuple[list[Tensor], list[Tensor]] | None = None

    def at(self, theta: Tensor) -> HessianOperator:
        """The same loss's Hessian at another point ``theta`` ``(n,)`` (no new checks of the
        data; ``theta`` is used as given)."""
        other = copy.copy(self)
        other.theta = theta
        other._graph = None
        return other

    # -- the loss as a function of theta -----------------------------------------------------
    def unflatten(self, theta: Tensor) -> dict[str, Tensor]:
        """``theta`` ``(n,)`` -> ``{name: tensor}`` for every parameter (views of ``theta`` for
        the trainable ones, the frozen ones as they are)."""
        return {**self.layout.split(theta), **self._frozen}

    def loss_at(self, theta: Tensor, X: Tensor, y: Tensor) -> Tensor:
        """The loss of the model with parameters ``theta`` on ``(X, y)`` (differentiable)."""
        out = functional_call(self.model, (self.unflatten(theta), self._buffers), (X,))
        return self._f(out, y)

    def loss(self, theta: Tensor | None = None) -> float:
        """The loss on all the data (at ``theta``, default the operator's point).

        Raises:
            InvalidModel: the loss overflows (NaN/inf) at these finite parameters.
        """
        value = self._loss(self._point(theta))
        if not math.isfinite(value):
            raise _overflow(f"the loss ({value})", self.dtype)
        return value

    def gradient(self, theta: Tensor | None = None) -> Tensor:
        """The gradient ``(n,)`` of the loss on all the data.

        Raises:
            InvalidModel: the gradient overflows (NaN/inf) at these finite parameters.
        """
        g = self._gradient(self._point(theta))
        if not all_finite(g):
            raise _overflow("the gradient", self.dtype)
        return g

    def _point(self, theta: Tensor | None) -> Tensor:
        return self.theta if theta is None else self._checked(theta, "theta", 1)

    # unchecked versions for searches that may try points where the loss overflows
    def _loss(self, theta: Tensor) -> float:
        with torch.no_grad():
            return float(sum(w * self.loss_at(theta, Xc, yc) for Xc, yc, w in self.chunks))

    def _gradient(self, theta: Tensor) -> Tensor:
        g = torch.zeros_like(theta)
        for Xc, yc, w in self.chunks:
            g += w * grad(self.loss_at)(theta, Xc, yc)
        return g.detach()

    # -- products ------------------------------------------------------------------------
    def _hvp_chunk(self, v: Tensor, Xc: Tensor, yc: Tensor) -> Tensor:
        return jvp(lambda t: grad(self.loss_at)(t, Xc, yc), (self.theta,), (v,))[1]

    def _matvec(self, v: Tensor) -> Tensor:
        if self.method == "autograd":
            params, grads = self._cached_graph()
            parts = self.layout.split(v)
            hv = torch.autograd.grad(grads, params, list(parts.values()), retain_graph=True)
            out = torch.cat([h.reshape(-1) for h in hv]).detach()
        else:
            out = torch.zeros_like(v)
            for Xc, yc, w in self.chunks:
                out += w * self._hvp_chunk(v, Xc, yc)
            out = out.detach()
        if not all_finite(out):
            raise _overflow("the Hessian-vector product", self.dtype)
        return out

    def _vectors_per_block(self) -> int:
        examples = int(self.chunks[0][0].shape[0])
        per_vector = max(1, examples * _ENTRIES_PER_EXAMPLE)
        return int(max(_MIN_VECTORS, min(_MAX_VECTORS, _BLOCK_ENTRIES // per_vector)))

    def _matmat(self, V: Tensor, chunk_size: int | None = None) -> Tensor:
        cs = self._vectors_per_block() if chunk_size is None else chunk_size
        rows = V.T
        blocks = []
        for s in range(0, rows.shape[0], cs):
            block = rows[s : s + cs]
            acc = torch.zeros_like(block)
            for Xc, yc, w in self.chunks:
                acc += w * vmap(lambda v, Xc=Xc, yc=yc: self._hvp_chunk(v, Xc, yc))(block)
            blocks.append(acc.detach())
        out = torch.cat(blocks).T if blocks else V.new_zeros(self.n, 0)
        if not all_finite(out):
            raise _overflow("the Hessian-matrix product", self.dtype)
        return out

    def matmat(self, V: Tensor, *, chunk_size: int | None = None) -> Tensor:
        """``H @ V`` for ``V`` ``(n, k)`` by batched products (vmap), ``chunk_size`` columns at a
        time (default: a block of about 64 MB of activations)."""
        if chunk_size is not None:
            chunk_size = check_positive_int("chunk_size", chunk_size)
        return self._matmat(self._checked(V, "V", 2), chunk_size)

    def full(self, chunk_size: int | None = None) -> Tensor:
        """The full symmetric Hessian ``(n, n)``, from batched products on identity columns
        (``chunk_size`` columns at a time)."""
        if self.n > MAX_FULL_PARAMETERS:
            raise InvalidInput(
                f"the model has {self.n:,} parameters: its full Hessian would take "
                f"{self.n**2 * 8 / 1e9:.1f} GB; use Lanczos (k=...) for the extreme eigenvalues"
            )
        if chunk_size is not None:
            chunk_size = check_positive_int("chunk_size", chunk_size)
        cs = self._vectors_per_block() if chunk_size is None else chunk_size
        H = torch.empty(self.n, self.n, dtype=self.dtype, device=self.device)
        for s in range(0, self.n, cs):
            e = min(self.n, s + cs)
            E = torch.zeros(self.n, e - s, dtype=self.dtype, device=self.device)
            E[torch.arange(s, e), torch.arange(e - s)] = 1.0
            H[:, s:e] = self._matmat(E, cs)
        return 0.5 * (H + H.T)

    def to_dense(self) -> Tensor:
        return self.full()

    def _cached_graph(self) -> tuple[list[Tensor], list[Tensor]]:
        if self._graph is None:
            split = self.layout.split(self.theta.detach().clone())
            params = [t.requires_grad_(True) for t in (p.clone() for p in split.values())]
            Xc, yc, _ = self.chunks[0]
            mapping = {**dict(zip(split, params)), **self._frozen}
            out = functional_call(self.model, (mapping, self._buffers), (Xc,))
            grads = torch.autograd.grad(self._f(out, yc), params, create_graph=True)
            self._graph = (params, list(grads))
        return self._graph


def hvp(
    model: nn.Module,
    X: Tensor,
    y: Tensor,
    v: Tensor,
    *,
    loss: str | LossFn = "mse",
    method: str = "func",
) -> Tensor:
    """One Hessian-vector product ``H @ v`` (``v``: flat ``(n,)``, parameters in model order).

    ``model``, ``X`` ``(N, ...)``, ``y``, ``loss``, ``method``: as in :class:`HessianOperator`.

    >>> import torch, nngeom as ng
    >>> from nngeom.hessian import hvp
    >>> net = ng.mlp([2, 3, 1], dtype=torch.float64)
    >>> X = torch.randn(8, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    >>> hvp(net, X, X[:, :1], torch.zeros(13, dtype=torch.float64)).abs().max().item()
    0.0
    """
    return HessianOperator(model, X, y, loss=loss, method=method).matvec(v)


def hessian(
    model: nn.Module,
    X: Tensor,
    y: Tensor,
    *,
    loss: str | LossFn = "mse",
    chunk_size: int | None = None,
) -> Tensor:
    """The full Hessian ``(n, n)`` of the loss with respect to the trainable parameters.

    ``model``, ``X`` ``(N, ...)``, ``y``, ``loss``, ``chunk_size``: as in
    :class:`HessianOperator` (any model with one tensor output, e.g. a conv net in eval mode).

    >>> import torch, nngeom as ng
    >>> net = ng.mlp([2, 3, 1], dtype=torch.float64)
    >>> X = torch.randn(8, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    >>> H = ng.hessian(net, X, X[:, :1] ** 2)
    >>> H.shape, torch.allclose(H, H.T)
    (torch.Size([13, 13]), True)
    """
    return HessianOperator(model, X, y, loss=loss, chunk_size=chunk_size).full()


def spectral_density(
    matvec: Callable[[Tensor], Tensor] | LinearOperator | nn.Module,
    n: int | Tensor | None = None,
    y: Tensor | None = None,
    *,
    loss: str | LossFn = "mse",
    n_probes: int = 4,
    steps: int = 80,
    seed: int = 0,
    generator: torch.Generator | None = None,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
    chunk_size: int | None = None,
) -> SpectralDensity:
    """Spectral density by stochastic Lanczos quadrature (Rademacher probes, ``steps`` Lanczos
    steps each; the probes drawn from ``seed`` or a CPU ``generator``).

    Three forms:

    * ``spectral_density(model, X, y, loss="mse")``: the density of the Hessian of the loss at the
      model's weights, in one call (``X`` ``(N, ...)`` any per-example shape, ``y`` the targets,
      ``chunk_size`` as in :class:`HessianOperator`; the model is not modified). ``.plot()``
      draws it.
    * ``spectral_density(operator)``: a :class:`HessianOperator` (or any linear operator).
    * ``spectral_density(matvec, n)``: any symmetric operator ``v (n,) -> A v (n,)`` (vectors of
      ``dtype`` on ``device``: float64 on the CPU by default).

    >>> import torch, nngeom as ng
    >>> net = ng.mlp([2, 4, 1], dtype=torch.float64)
    >>> X = torch.randn(16, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    >>> sd = ng.spectral_density(net, X, X[:, :1] ** 2, n_probes=2, steps=8)
    >>> sd.nodes.shape
    (2, 8)
    """
    if isinstance(matvec, nn.Module):
        if not isinstance(n, Tensor) or y is None:
            raise InvalidInput(
                "spectral_density(model, X, y, loss=...) needs the data X and the targets y"
            )
        matvec = HessianOperator(matvec, n, y, loss=loss, chunk_size=chunk_size)
        n = None
    elif y is not None:
        raise InvalidInput("y is for spectral_density(model, X, y); a matvec takes (matvec, n)")
    return slq(
        matvec,
        n,
        n_probes=n_probes,
        steps=steps,
        seed=seed,
        generator=generator,
        dtype=dtype,
        device=device,
    )


def hessian_eigenvalues(
    model: nn.Module,
    X: Tensor,
    y: Tensor,
    *,
    loss: str | LossFn = "mse",
    k: int | None = None,
    which: str = "largest",
    tol: float = 1e-6,
    max_iter: int | None = None,
    chunk_size: int | None = None,
    project: Tensor | str | None = None,
    seed: int = 0,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Eigenvalues of the loss Hessian, ascending: a float64 tensor on the model's device.

    Args:
        model, X, y, loss, chunk_size: as in :class:`HessianOperator` (``X`` ``(N, ...)``, any
            model with one tensor output ``(N, p)``, random/batch-dependent layers in eval mode).
        k: None for the full spectrum (``n <= MAX_FULL_PARAMETERS``); otherwise the ``k``
            extreme eigenvalues by Lanczos: top-k (``which="largest"``), bottom-k
            (``"smallest"``: the most negative) or both ends (``"both"``: ``2k`` values).
        tol, max_iter: Lanczos' residual tolerance (relative to the largest ``|eigenvalue|``)
            and its most matvecs (see :func:`lanczos`).
        project: ``"rescaling"`` to project out the ReLU rescaling directions
            (:func:`nngeom.symmetry.rescaling_directions`), or an ``(n, r)`` tensor of
            directions; the spectrum is then that of the Hessian restricted to their
            orthogonal complement (``n - r`` eigenvalues for the full spectrum).
        seed, generator: the Lanczos start vector's source (a CPU generator takes precedence).

    >>> import torch, nngeom as ng
    >>> net = ng.mlp([2, 3, 1], dtype=torch.float64)
    >>> X = torch.randn(8, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    >>> ev = ng.hessian_eigenvalues(net, X, X[:, :1] ** 2)
    >>> ev.shape, ev.dtype, bool(ev[-1] >= ev[0])
    (torch.Size([13]), torch.float64, True)
    >>> ng.hessian_eigenvalues(net, X, X[:, :1] ** 2, k=2).shape
    torch.Size([2])
    """
    if k is not None:
        k = check_positive_int("k", k)
    if not isinstance(which, str) or which not in WHICH:
        raise InvalidInput(f"which must be 'largest', 'smallest' or 'both', got {which!r}")
    gen = torch_generator(seed, generator)
    op = HessianOperator(model, X, y, loss=loss, chunk_size=chunk_size)
    D = None
    if isinstance(project, str):
        if project != "rescaling":
            raise InvalidInput(
                f"project must be 'rescaling' or a tensor of directions, got {project!r}"
            )
        D = rescaling_directions(model)
    elif project is not None:
        D = project
    if k is None:
        if D is None:
            return eigvalsh(op.full())
        complement = complement_of(D, op.n, op.dtype, op.device)
        return eigvalsh(op.full() if complement is None else op.restrict(complement).to_dense())
    res = lanczos(op, k=k, which=which, tol=tol, max_iter=max_iter, generator=gen, project=D)
    return res.eigenvalues


def eigvalsh(H: Tensor) -> Tensor:
    """All eigenvalues of a symmetric matrix ``(P, P)``, ascending: float64, on ``H``'s device.

    ``torch.linalg.eigvalsh`` (MKL on x86 CPU builds: faster than scipy's and numpy's LAPACK
    drivers on large matrices).

    >>> import torch
    >>> from nngeom.hessian import eigvalsh
    >>> eigvalsh(torch.diag(torch.tensor([2.0, -1.0])))
    tensor([-1.,  2.], dtype=torch.float64)
    """
    if isinstance(H, np.ndarray):
        H = torch.as_tensor(H)
    if not isinstance(H, Tensor) or H.ndim != 2 or H.shape[0] != H.shape[1]:
        raise InvalidInput(
            f"H must be a square matrix (P, P), got {getattr(H, 'shape', type(H).__name__)!r}"
        )
    check_finite(H, "H")
    return torch.linalg.eigvalsh(H.detach().to(torch.float64))


def count_eigenvalues(
    eigenvalues: Tensor | np.ndarray, zero_tol: float = ZERO_TOL
) -> tuple[int, int, int]:
    """``(n_negative, n_zero, n_positive)`` with ``|lambda| <= zero_tol * max|lambda|`` counted
    as zero.

    >>> import torch
    >>> from nngeom.hessian import count_eigenvalues
    >>> count_eigenvalues(torch.tensor([-2.0, 0.0, 3.0]))
    (1, 1, 1)
    """
    zero_tol = check_number("zero_tol", zero_tol, minimum=0.0)
    if isinstance(eigenvalues, Tensor):
        check_real_tensor("eigenvalues", eigenvalues)
        eigenvalues = eigenvalues.detach().cpu().numpy()
    try:
        if np.iscomplexobj(eigenvalues):
            raise TypeError("complex eigenvalues")
        ev = np.asarray(eigenvalues, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as e:
        raise InvalidInput(f"eigenvalues must be an array of real numbers ({e})") from None
    if ev.size == 0:
        return 0, 0, 0
    if not np.isfinite(ev).all():
        raise InvalidInput("eigenvalues contain NaN or inf; they come from an overflowing Hessian")
    thr = zero_tol * max(float(np.abs(ev).max()), TINY)
    n_zero = int(np.sum(np.abs(ev) <= thr))
    n_neg = int(np.sum(ev < -thr))
    return n_neg, n_zero, int(ev.size - n_neg - n_zero)


# `ng.hessian(...)` calls the function; `import nngeom.hessian` gives this module
make_callable(__name__, hessian)
