"""Permutation saddles: the permutation point of two neurons at a critical point, and its spectrum.

:func:`find_permutation_saddle` merges two neurons of a hidden layer (:func:`merge_neurons`),
drives the reduced net to a critical point (:func:`find_critical_point`), splits the merged
neuron back (:func:`embed_merged`) and measures the Hessian spectrum there
(:func:`spectrum_at`): the saddle index, the zero eigenvalues and the flat directions of the
paper (Brea et al. 2019), in a :class:`PermutationPoint`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import Tensor, nn

from .._checks import TINY, check_int, check_number, check_positive_int, check_seed, check_Xy
from .._errors import InvalidInput
from .._lanczos import lanczos
from .._loss_data import check_loss_data
from .._losses import LossFn
from .._params import count, module_of
from .._random import torch_generator
from ..hessian import MAX_FULL_PARAMETERS, ZERO_TOL, HessianOperator, count_eigenvalues, eigvalsh
from ._critical_points import CriticalPointSearch, find_critical_point
from ._flat_directions import FreeSubspace, flat_directions, graph_flat_directions
from ._graph_edits import graph_merge, graph_split
from ._layers import dense_layers, graph_layer
from ._merging import embed_merged, merge_neurons
from ._mlp import check_pair, is_chain, mlp_chain

# Without k, spectra of nets up to this many parameters are full; above, Lanczos finds
# _LANCZOS_K eigenvalues at each end with residual tolerance _LANCZOS_TOL.
FULL_LIMIT = 5000
_LANCZOS_K = 20
_LANCZOS_TOL = 1e-6


@dataclass
class PermutationPoint:
    """A permutation point of ``layer``'s neurons ``i, j`` (see :func:`find_permutation_saddle`).

    Attributes:
        model: the full-width float64 net at the permutation point.
        reduced: the reduced net (one neuron fewer) at its critical point.
        loss, grad_norm: loss and gradient norm of ``model`` on the data.
        reduced_grad_norm: gradient norm of the reduced net.
        eigenvalues: Hessian eigenvalues of ``model``, ascending, a float64 tensor (the full
            spectrum when ``full_spectrum``, else the ``k`` smallest and ``k`` largest by
            Lanczos).
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
        eigenvalues_free: the spectrum behind ``n_zero_free`` (a float64 tensor; None when it
            equals ``eigenvalues``).

    >>> import torch, nngeom as ng
    >>> net = ng.mlp([1, 3, 1], "tanh", dtype=torch.float64)
    >>> X = torch.linspace(-1, 1, 16, dtype=torch.float64)[:, None]
    >>> fast = ng.CriticalPointSearch(lbfgs_steps=20, newton_steps=10, trust_steps=30, restarts=1)
    >>> p = ng.find_permutation_saddle(net, X, torch.sin(2 * X), 0, 0, 1, search=fast)
    >>> type(p).__name__, p.n_parameters, p.eigenvalues.dtype
    ('PermutationPoint', 10, torch.float64)
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
    eigenvalues: Tensor
    full_spectrum: bool
    n_negative: int
    n_zero: int | None
    n_zero_theory: int
    zero_tol: float
    flat_residual: float
    converged: bool = False
    n_data_null: int = 0
    n_zero_free: int | None = None
    eigenvalues_free: Tensor | None = None

    @property
    def is_saddle(self) -> bool:
        return self.n_negative > 0

    @property
    def n_parameters(self) -> int:
        """Trainable parameters of ``model`` (the Hessian's size)."""
        return count(self.model)


def spectrum_at(
    model: nn.Module,
    X: Tensor,
    y: Tensor,
    *,
    loss: str | LossFn = "mse",
    k: int | None = None,
    full_limit: int = FULL_LIMIT,
    chunk_size: int | None = None,
    seed: int = 0,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, bool, HessianOperator]:
    """``(eigenvalues, full, operator)``: the full spectrum when ``n <= full_limit`` (and ``k``
    is None), else ``k`` (default 20) at both ends by Lanczos (start vector from ``seed`` /
    ``generator``).

    >>> import torch, nngeom as ng
    >>> from nngeom.symmetry import spectrum_at
    >>> X = torch.linspace(-1, 1, 8, dtype=torch.float64)[:, None]
    >>> ev, full, op = spectrum_at(ng.mlp([1, 2, 1], dtype=torch.float64), X, X)
    >>> ev.shape, full
    (torch.Size([7]), True)
    """
    if k is not None:
        k = check_positive_int("k", k)
    full_limit = check_int("full_limit", full_limit, minimum=0)
    gen = torch_generator(seed, generator)
    op = HessianOperator(model, X, y, loss=loss, chunk_size=chunk_size)
    if k is None and op.n <= min(full_limit, MAX_FULL_PARAMETERS):
        return eigvalsh(op.full()), True, op
    kk = _LANCZOS_K if k is None else k
    res = lanczos(op, k=kk, which="both", tol=_LANCZOS_TOL, generator=gen)
    return res.eigenvalues, False, op


def find_permutation_saddle(
    model: nn.Module,
    X: Tensor,
    y: Tensor,
    layer: int,
    i: int,
    j: int,
    *,
    loss: str | LossFn = "mse",
    lam: float = 0.5,
    search: CriticalPointSearch = CriticalPointSearch(),
    k: int | None = None,
    full_limit: int = FULL_LIMIT,
    zero_tol: float = ZERO_TOL,
    chunk_size: int | None = None,
    seed: int = 0,
    generator: torch.Generator | None = None,
) -> PermutationPoint:
    """The permutation point of neurons ``i, j`` of hidden ``layer`` at a critical point.

    Merges ``i`` and ``j`` (:func:`merge_neurons`), drives the reduced net to a critical point
    in float64 (:func:`find_critical_point`: L-BFGS, then trust-region minimisation, then
    Levenberg-Marquardt steps on the squared gradient norm, with restarts), embeds it back with
    the split ``lam`` (:func:`embed_merged`), and reports the loss, gradient norm and Hessian
    spectrum there. Whether the point is a saddle is *measured* (``n_negative``), not assumed.

    Args:
        model: an MLP (``as_mlp``) with at least one hidden layer, or any model the model
            view traces with at least one dense hidden layer (:func:`dense_hidden_layers`: a
            residual MLP, a conv net with a dense head); it is not modified. For such a graph
            model ``model`` / ``reduced`` of the result are float64 deep copies of it (same
            class) with the layer's modules widened / narrowed, and
            ``search.project_data_null`` is ignored: the data-null subspace
            (:class:`FreeSubspace`) is defined through the first Linear layer of an MLP chain,
            so the search runs in all trainable parameters (``n_data_null = 0``).
        X, y: data ``(N, input_dim)`` (``(N, *input_shape)`` for a graph model) and targets
            (``(N, out)`` floats or ``(N,)`` labels for "ce").
        layer, i, j: hidden layer (from 0; for a graph model its dense hidden layers are
            numbered) and two different neurons of it.
        loss: ``"mse"``, ``"sse"``, ``"ce"`` or a callable (see :func:`nngeom.train`).
        lam: the split of the merged outgoing vector: ``lam a`` to ``i``, ``(1 - lam) a`` to ``j``.
        search: the critical-point search's effort and tolerances
            (:class:`CriticalPointSearch`; its ``accept_tol`` decides ``converged``).
        k: number of eigenvalues at each end by Lanczos; None: the full spectrum if the net has
            at most ``full_limit`` parameters, else 20 at each end.
        zero_tol: relative threshold for a zero eigenvalue.
        chunk_size: process the data in chunks of this many examples (memory).
        seed, generator: the source of the search's restart perturbations and of the Lanczos
            start vector (a given generator is used for both, in turn).

    Raises:
        InvalidInput: i == j, out-of-range layer or neuron, a layer of width 1, bad data shapes.
        UnsupportedModel: not an MLP chain and no dense hidden layer, or no hidden layer.
        InvalidModel: non-finite weights, or the loss becomes non-finite during the search.

    >>> import torch, nngeom as ng
    >>> net = ng.mlp([1, 3, 1], "tanh", dtype=torch.float64)
    >>> X = torch.linspace(-1, 1, 16, dtype=torch.float64)[:, None]
    >>> fast = ng.CriticalPointSearch(lbfgs_steps=20, newton_steps=10, trust_steps=30, restarts=1)
    >>> res = ng.find_permutation_saddle(net, X, torch.sin(2 * X), 0, 0, 1, search=fast)
    >>> res.converged, bool(res.grad_norm < 1e-6), res.reduced[0].out_features
    (True, True, 2)
    """
    lam = check_number("lam", lam)
    if k is not None:
        k = check_positive_int("k", k)
    full_limit = check_int("full_limit", full_limit, minimum=0)
    zero_tol = check_number("zero_tol", zero_tol, minimum=0.0)
    if not isinstance(search, CriticalPointSearch):
        raise InvalidInput(
            f"search must be a CriticalPointSearch (nngeom.CriticalPointSearch), got "
            f"{type(search).__name__}"
        )
    # one source for the search and the spectrum: a given generator is advanced by both in
    # turn; a seed gives each its own generator seeded with it
    if generator is None:
        randomness: dict = {"seed": check_seed(seed)}
    else:
        randomness = {"generator": torch_generator(seed, generator)}
    model = module_of(model)
    chain = is_chain(model)
    if chain:
        view = mlp_chain(model)
        i, j = check_pair(view, layer, i, j)
        check_Xy(X, y, example_shape=(view.input_dim,))
        y = check_loss_data(model, X, y, loss)
        n_next = int(view.sizes[layer + 2])
    else:
        check_Xy(X, y)
        y = check_loss_data(model, X, y, loss)
        dl, shape = graph_layer(model, layer, tuple(X.shape[1:]))
        i, j = check_pair(shape, dl.index, i, j)
        layer, n_next = dl.index, dl.next_width
    project_data_null = search.project_data_null and chain  # defined for MLP chains only
    lo, hi = min(i, j), max(i, j)
    reduced0 = merge_neurons(model, layer, i, j) if chain else graph_merge(model, dl, lo, hi)
    crit = find_critical_point(
        reduced0,
        X,
        y,
        loss=loss,
        search=_with_projection(search, project_data_null),
        chunk_size=chunk_size,
        **randomness,
    )
    if chain:
        point = embed_merged(crit.model, layer, i, j, lam)
    else:
        rdl = dense_layers(crit.model, tuple(X.shape[1:]))[layer]
        point = graph_split(crit.model, rdl, lo, float(lam if i == lo else 1.0 - lam), hi)
    Xd = X.double() if X.is_floating_point() else X
    yd = y.double() if y.is_floating_point() else y
    ev, full, op = spectrum_at(
        point,
        Xd,
        yd,
        loss=loss,
        k=k,
        full_limit=full_limit,
        chunk_size=chunk_size,
        **randomness,
    )
    gn = float(torch.linalg.vector_norm(op.gradient()))
    n_neg, n_zero, _ = count_eigenvalues(ev, zero_tol)
    sub = FreeSubspace(point, Xd) if project_data_null else FreeSubspace.whole(op.n)
    ev_free, n_zero_free = None, (n_zero if full else None)
    if full and sub.n_null > 0:
        ev_free = eigvalsh(op.restrict(sub).to_dense())
        n_neg, n_zero_free, _ = count_eigenvalues(ev_free, zero_tol)
    D = flat_directions(point, layer, i, j) if chain else graph_flat_directions(point, dl, i, j)
    scale = max(float(ev.abs().max()), TINY)
    flat = float(torch.linalg.vector_norm(op @ D, dim=0).max()) / scale
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
        converged=bool(crit.converged and gn <= search.accept_tol),
        n_data_null=sub.n_null,
        n_zero_free=n_zero_free,
        eigenvalues_free=ev_free,
    )


def _with_projection(search: CriticalPointSearch, project: bool) -> CriticalPointSearch:
    if search.project_data_null == project:
        return search
    return replace(search, project_data_null=project)
