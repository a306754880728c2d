"""Activation regions of piecewise-linear networks: lines, exact 2-D slices, statistics around data.

* :func:`regions_on_line` — exact breakpoints of the activation pattern along a segment of any
  input dimension (the 1-D engine of :mod:`nngeom.knots` on the restricted net).
* :func:`regions_2d` — the exact partition of a 2-D slice into convex polygons (activation
  regions) and linear pieces (neighbouring regions with equal affine maps merged).
* Statistics around data (vectorised over the batch, any input dimension, e.g. 784):
  :func:`pattern_statistics` (distinct activation patterns, entropy, fraction of active units),
  :func:`boundary_distances` (distance to the nearest region boundary, along seeded random
  directions or exact Euclidean), :func:`regions_along_lines` (Hanin & Rolnick 2019: regions per
  unit length along lines through data).

An activation *pattern* assigns every hidden unit the index of its activation piece (for ReLU:
1 if the pre-activation is > 0, else 0). An activation region is the set of inputs sharing one
pattern; it is convex (an intersection of half-spaces), so a pattern names exactly one region.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from ._checks import (
    all_finite,
    as_real_array,
    check_bool,
    check_number,
    check_positive_int,
    check_real_tensor,
    check_X,
)
from ._errors import InvalidInput, InvalidModel, UnsupportedModel
from ._pieces import _MAX_COORDINATE, _TINY, _pad, _shoelace, _split
from ._random import torch_generator
from .knots import Layer, _checked, _partition, _partition_fast, layer_forms
from .nets import MLP, as_mlp, piecewise_linear_form, resolve
from .slices import (
    check_point,
    line_partition,
    plane_partition,
    view_patterns,
)
from .view import ModelView

__all__ = [
    "pattern_statistics",
    "boundary_distances",
    "regions_along_lines",
    "LineRegions",
    "regions_on_line",
    "activation_patterns",
    "Regions2D",
    "regions_2d",
    "Plane",
    "plane_through",
]


# Examples per chunk of the activation-pattern computations (activation_patterns,
# pattern_statistics)
DEFAULT_CHUNK_SIZE = 8192
# What regions_2d's graph engine may carry on all pieces of a slice (bytes)
DEFAULT_MAX_MEMORY = 4 * 2**30
# Relative tolerance of the slice geometry: a vertex on a breakpoint line, a degenerate edge,
# two directions that do not span a plane (about 10^4 float64 roundings)
_GEOMETRY_RTOL = 1e-12
# Relative tolerance under which two affine maps (slopes and intercepts) are equal: a knot, two
# polygons of one linear piece, two outputs that tie
_MAP_RTOL = 1e-9
# A knot's slope change must also exceed this multiple of the partition's rounding-error bound
_KNOT_ERROR_FACTOR = 64.0
# The largest coordinate the float64 slice geometry takes (products of two stay finite)
# How far off an edge (relative to the slice or the edge) piece merging probes the neighbour
_PROBE_OFFSET = 1e-7
# Piece merging on the graph engine evaluates its probes in chunks of about this many bytes,
# counting this many bytes of carried tensors per input entry of a probe
_PROBE_CHUNK_BYTES = 2**24
_PROBE_BYTES_PER_INPUT = 64
# Pattern lookup: the fixed seed of the random hash of an activation pattern, and the entries
# hashed or compared per row block
_PATTERN_HASH_SEED = 12345
_PATTERN_BLOCK_ENTRIES = 2**25


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------
def _check_X(X: Tensor, view: MLP) -> Tensor:
    """``X`` as float inputs ``(N, d)`` of the MLP: one flat example ``(d,)`` and examples of
    any shape with ``d`` entries are accepted; integers become float64."""
    X = _tensor_X(X)
    if X.ndim == 1 and view.input_dim == X.shape[0]:
        X = X[None, :]
    if X.ndim > 2:
        X = X.reshape(X.shape[0], math.prod(X.shape[1:]))
    return check_X(X, example_shape=(view.input_dim,), integers="float64")


def _tensor_X(X) -> Tensor:
    """``X`` as a real tensor (complex, meta and non-numeric data refused)."""
    if not isinstance(X, Tensor):
        X = torch.from_numpy(as_real_array(X, "X"))
    check_real_tensor("X", X)
    return X


def _source(model: nn.Module | MLP, X: Tensor | None = None) -> MLP | ModelView:
    """The MLP view (chains of dense layers) or the model view, for inputs shaped like ``X``."""
    shape = None
    if isinstance(X, Tensor) and X.ndim >= 2 and X.shape[0] > 0 and X[0].numel() > 0:
        shape = tuple(X.shape[1:])
    return resolve(model, shape)


def _check_X_view(X: Tensor, view: ModelView) -> Tensor:
    """``X`` as float inputs ``(N, *input_shape)`` of the model view (one example without the
    batch dimension is accepted; integers become float64)."""
    X = _tensor_X(X)
    shape = view.input_shape
    if shape is None:
        raise InvalidInput("the model's input shape cannot be inferred: pass X of shape (N, ...)")
    if X.ndim == len(shape) and tuple(X.shape) == tuple(shape):
        X = X[None]
    return check_X(X, example_shape=tuple(shape), integers="float64")


def _view_patterns(view: ModelView, X: Tensor, chunk_size: int):
    """``(patterns (N, units), blocks)`` of the model view on ``X``, in chunks of examples."""
    from .slices import _f64_view

    v64 = _f64_view(view)
    parts, blocks = [], []
    for start in range(0, X.shape[0], chunk_size):
        q, blocks = view_patterns(view, X[start : start + chunk_size], v64=v64)
        parts.append(q)
    return np.concatenate(parts, 0), blocks


def _overflow_message(what: str) -> str:
    return (
        f"{what}: the model's values overflow float64 (NaN or inf from finite weights, e.g. "
        "weights near 1e300); rescale the weights (divide each layer by a constant) and retry"
    )


def _require_finite_t(t: Tensor, what: str) -> None:
    if not all_finite(t):
        raise InvalidModel(_overflow_message(what))


def _require_finite(arrays, what: str) -> None:
    for a in arrays:
        if a is not None and not np.isfinite(a).all():
            raise InvalidModel(_overflow_message(what))


def _forms_torch(view: MLP, device: torch.device) -> list[tuple[Tensor, Tensor, Tensor]]:
    """Per hidden layer: (breakpoints (n, m), slopes (n, m+1), intercepts (n, m+1)) float64."""
    out = []
    for li, act in enumerate(view.activations):
        try:
            bp, sl, ic = piecewise_linear_form(act, view.widths[li])
        except UnsupportedModel as exc:
            raise UnsupportedModel(
                f"activation regions are undefined for a smooth activation: {exc}"
            ) from exc
        out.append((bp.to(device), sl.to(device), ic.to(device)))
    return out


def _piece_index(z: Tensor, bp: Tensor) -> Tensor:
    """Activation piece of each unit: ``z`` (B, n), ``bp`` (n, m) -> (B, n) int64 (count bp < z)."""
    if bp.shape[1] == 1:
        return (z > bp[:, 0]).long()
    return (z[..., None] > bp).sum(-1)


def _weights64(view: MLP, device: torch.device) -> list[tuple[Tensor, Tensor]]:
    return [
        (w.detach().to(device, torch.float64), b.detach().to(device, torch.float64))
        for w, b in zip(view.weights, view.biases, strict=False)
    ]


def activation_patterns(
    model: nn.Module | MLP, X: Tensor, *, chunk_size: int = DEFAULT_CHUNK_SIZE
) -> Tensor:
    """The activation pattern of every example: ``X`` (N, d) -> (N, sum(widths)) int8 piece indices.

    For a model that is a graph (conv, residual, max-pool; :mod:`nngeom.view`), ``X`` has the
    model's input shape ``(N, *input_shape)`` and the pattern holds the piece of every
    element-wise unit and the argmax of every max window (int16), node by node.
    Computed in float64 (the model's weights converted), so a pattern names the exact region of
    the float64 network. For ReLU the entries are ``1`` where the pre-activation is > 0.
    ``chunk_size`` examples are computed at a time.

    >>> import torch, nngeom as ng
    >>> net = ng.mlp([2, 4, 1], dtype=torch.float64)
    >>> X = torch.randn(5, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    >>> P = ng.activation_patterns(net, X)
    >>> P.shape, P.dtype
    (torch.Size([5, 4]), torch.int8)
    """
    chunk_size = check_positive_int("chunk_size", chunk_size)
    X = _tensor_X(X)
    src = _source(model, X)
    if isinstance(src, ModelView):
        src.require_piecewise_linear("activation patterns")
        return torch.from_numpy(_view_patterns(src, _check_X_view(X, src), chunk_size)[0])
    view = src
    X = _check_X(X, view)
    device = view.device
    forms = _forms_torch(view, device)
    params = _weights64(view, device)
    parts = []
    for start in range(0, X.shape[0], chunk_size):
        h = X[start : start + chunk_size].to(device, torch.float64)
        cols = []
        for (W, b), (bp, sl, ic) in zip(params[:-1], forms, strict=False):
            z = h @ W.T + b
            _require_finite_t(z, "activation patterns")
            r = _piece_index(z, bp)
            cols.append(r.to(torch.int8))
            rows = torch.arange(z.shape[1], device=device)[None, :]
            h = sl[rows, r] * z + ic[rows, r]
        parts.append(torch.cat(cols, 1) if cols else torch.zeros(h.shape[0], 0, dtype=torch.int8))
    return torch.cat(parts, 0).cpu()


# --------------------------------------------------------------------------------------------
# statistics around data
# --------------------------------------------------------------------------------------------
def pattern_statistics(
    model: nn.Module | MLP, X: Tensor, *, chunk_size: int = DEFAULT_CHUNK_SIZE
) -> dict:
    """Distinct activation patterns over a batch and the fraction of active units.

    Args:
        model: a piecewise-linear model: an MLP (``X`` ``(N, d)``, extra trailing dims are
            flattened) or any graph of :mod:`nngeom.view` (``X`` of the model's input shape;
            a "layer" is then one element-wise or max node, and the "pattern" of a max window
            is its argmax).
        X: the examples.
        chunk_size: examples whose patterns are computed at a time.

    Returns:
        a dict of plain Python values:
        ``n_samples`` (N), ``n_units`` (hidden units), ``n_patterns`` (distinct patterns, a lower
        bound on the regions the data touch), ``fraction_unique`` (``n_patterns / N``),
        ``entropy_nats`` / ``entropy_bits`` (of the empirical pattern distribution; ``log N`` when
        every example has its own region), ``fraction_active`` (mean over examples and units of
        "not on the unit's first piece", i.e. pre-activation > 0 for ReLU/LeakyReLU),
        ``fraction_active_per_layer`` (list), ``n_patterns_per_layer`` (list),
        ``fraction_dead`` (units never active on X), ``fraction_always_active``.

    >>> import torch, nngeom as ng
    >>> net = ng.mlp([2, 4, 1], dtype=torch.float64)
    >>> X = torch.randn(100, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    >>> stats = ng.pattern_statistics(net, X)
    >>> sorted(stats)
    ['entropy_bits', 'entropy_nats', 'fraction_active', 'fraction_active_per_layer', 'fraction_always_active', 'fraction_dead', 'fraction_unique', 'n_patterns', 'n_patterns_per_layer', 'n_samples', 'n_units']
    """
    chunk_size = check_positive_int("chunk_size", chunk_size)
    X = _tensor_X(X)
    src = _source(model, X)
    if isinstance(src, ModelView):
        src.require_piecewise_linear("pattern statistics")
        P, blocks = _view_patterns(src, _check_X_view(X, src), chunk_size)
        widths = [w for _, w, _ in blocks]
    else:
        P = activation_patterns(src, X, chunk_size=chunk_size).numpy()
        widths = list(src.widths)
    N, U = P.shape
    if U == 0:
        raise UnsupportedModel("the model has no hidden layer: it has a single linear region")
    _, counts = np.unique(P, axis=0, return_counts=True)
    p = counts / N
    entropy = float(-(p * np.log(p)).sum())
    active = P > 0
    per_layer, per_layer_patterns = [], []
    start = 0
    for w in widths:
        block = P[:, start : start + w]
        per_layer.append(float(active[:, start : start + w].mean()))
        per_layer_patterns.append(int(np.unique(block, axis=0).shape[0]))
        start += w
    ever = active.any(0)
    always = active.all(0)
    return {
        "n_samples": int(N),
        "n_units": int(U),
        "n_patterns": int(counts.size),
        "fraction_unique": float(counts.size / N),
        "entropy_nats": entropy,
        "entropy_bits": entropy / math.log(2.0),
        "fraction_active": float(active.mean()),
        "fraction_active_per_layer": per_layer,
        "n_patterns_per_layer": per_layer_patterns,
        "fraction_dead": float(1.0 - ever.mean()),
        "fraction_always_active": float(always.mean()),
    }


# boundary_distances / regions_along_lines: at most this many random directions or lines
MAX_DIRECTIONS = 2**20


def _unit_directions(n: int, d: int, g: torch.Generator) -> Tensor:
    """``n`` random unit vectors of ``d`` entries (float64 ``(n, d)``, on ``g``'s device)."""
    D = torch.randn(n, d, generator=g, dtype=torch.float64, device=g.device)
    return D / D.norm(dim=1, keepdim=True).clamp_min(_TINY)


def boundary_distances(
    model: nn.Module | MLP,
    X: Tensor,
    n_directions: int = 16,
    *,
    seed: int = 0,
    generator: torch.Generator | None = None,
    method: str = "directions",
    max_elements: int = 4_000_000,
) -> Tensor:
    """Distance from each example to the boundary of its activation region.

    ``method="directions"`` (default): along ``n_directions`` seeded random unit directions
    (the same directions for every example), the distance ``|t|`` from ``x`` to the first change
    of the activation pattern on the line ``x + t u`` (either sense), minimised over directions.
    Exact for each line (the region-local affine form of every unit holds until the first
    crossing); an upper bound on the Euclidean distance.

    ``method="euclidean"``: the exact Euclidean distance to the region's boundary,
    ``min_units gap / ||grad z||`` with the region-local gradients (the region is the
    intersection of these half-spaces). Costs ``O(N n d)`` memory per layer (chunked).

    Args:
        model: a piecewise-linear MLP (any input dimension).
        X: ``(N, d)``.
        n_directions: number of random directions (``method="directions"``).
        seed: seed of the directions (a fresh CPU ``torch.Generator``; the global RNG is
            untouched).
        generator: a CPU ``torch.Generator`` to draw the directions from instead (it advances).
        max_elements: the most float64 entries one chunk of examples may carry (per layer).

    Returns:
        float64 tensor ``(N,)`` on the model's device (``inf`` where the region is unbounded in
        every probed direction, e.g. a net whose units never change piece).

    >>> import torch, nngeom as ng
    >>> net = ng.mlp([2, 4, 1], dtype=torch.float64)
    >>> X = torch.randn(5, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    >>> d = ng.boundary_distances(net, X, method="euclidean")
    >>> d.shape, bool((d > 0).all())
    (torch.Size([5]), True)
    """
    if isinstance(model, nn.Module):
        resolve(model)  # complex / meta parameters refused with their name
    view = as_mlp(model)
    X = _check_X(X, view)
    if method not in ("directions", "euclidean"):
        raise InvalidInput(f"method must be 'directions' or 'euclidean', got {method!r}")
    g = torch_generator(seed, generator, device="cpu")
    max_elements = check_positive_int("max_elements", max_elements)
    if method == "directions":
        n_directions = check_positive_int("n_directions", n_directions, maximum=MAX_DIRECTIONS)
        if n_directions * max(1, X.shape[1]) > max_elements:
            raise InvalidInput(
                f"n_directions={n_directions:,} directions of {X.shape[1]:,} numbers need "
                f"{n_directions * X.shape[1]:,} elements, more than max_elements={max_elements:,}; "
                "use fewer directions or raise max_elements"
            )
    device = view.device
    forms = _forms_torch(view, device)
    params = _weights64(view, device)
    N, d = X.shape
    width = max(view.widths) if view.widths else 1
    if method == "directions":
        D = _unit_directions(n_directions, d, g).to(device)  # (K, d)
        per = n_directions * max(width, d)
    else:
        D = None
        per = width * d
    bs = max(1, max_elements // max(per, 1))
    out = []
    for start in range(0, N, bs):
        x = X[start : start + bs].to(device, torch.float64)
        B = x.shape[0]
        h = x
        # derivative of the current layer's input along each direction / w.r.t. the input
        dh = D.T[None].expand(B, d, n_directions) if D is not None else None  # (B, d, K)
        J = None
        best = torch.full(
            (B,) if D is None else (B, n_directions), math.inf, dtype=torch.float64, device=device
        )
        for li, ((W, b), (bp, sl, ic)) in enumerate(zip(params[:-1], forms, strict=False)):
            z = h @ W.T + b  # (B, n)
            _require_finite_t(z, "boundary distances")
            r = _piece_index(z, bp)
            m = bp.shape[1]
            rows = torch.arange(z.shape[1], device=device)[None, :]
            bp_pad = torch.cat(
                [
                    torch.full((bp.shape[0], 1), -math.inf, dtype=torch.float64, device=device),
                    bp,
                    torch.full((bp.shape[0], 1), math.inf, dtype=torch.float64, device=device),
                ],
                1,
            )
            lower = bp_pad[rows, r]  # breakpoint below z (or -inf)
            upper = bp_pad[rows, torch.clamp(r + 1, max=m + 1)]
            gap = torch.minimum(z - lower, upper - z).clamp_min(0.0)  # (B, n)
            if D is not None:
                a = (
                    torch.einsum("nd,bdk->bkn", W, dh)
                    if li > 0
                    else (D @ W.T)[None].expand(B, -1, -1)
                )
                with torch.no_grad():
                    dist = gap[:, None, :] / a.abs()
                dist = torch.where(a != 0, dist, torch.full_like(dist, math.inf))
                best = torch.minimum(best, dist.min(-1).values)
                s = sl[rows, r]  # (B, n)
                dh = (s[:, None, :] * a).transpose(1, 2)  # (B, n, K)
            else:
                J = W[None].expand(B, -1, -1) if J is None else torch.einsum("nm,bmd->bnd", W, J)
                norm = J.norm(dim=2)
                dist = torch.where(norm > 0, gap / norm, torch.full_like(gap, math.inf))
                best = torch.minimum(best, dist.min(-1).values)
                s = sl[rows, r]
                J = s[:, :, None] * J
            h = s * z + ic[rows, r]
        out.append(best.min(-1).values if D is not None else best)
    res = torch.cat(out)
    if torch.isnan(res).any():
        raise InvalidModel(_overflow_message("boundary distances"))
    return res


@dataclass(frozen=True)
class LineRegions:
    """Activation regions along the segment ``x0 + t (x1 - x0)``, ``t`` in ``(0, 1)``.

    Attributes:
        t: sorted parameters ``(n_regions - 1,)`` where the activation pattern changes.
        n_regions: number of activation regions the open segment meets (``len(t) + 1``).
        knots_t: the subset of ``t`` where the slope of some output changes (linear pieces).
        n_pieces: number of linear pieces (``len(knots_t) + 1``).
        length: Euclidean length of the segment.
        patterns: ``(n_regions, sum(widths))`` piece indices per region (``with_patterns=True``).
        ambiguous: a numerical decision was close to its tolerance.

    >>> import torch, nngeom as ng
    >>> r = ng.regions_on_line(ng.mlp([2, 8, 1], dtype=torch.float64), [-2.0, 0.0], [2.0, 0.0])
    >>> type(r).__name__, r.n_regions == len(r.knots_t) + 1, r.length
    ('LineRegions', True, 4.0)
    """

    t: np.ndarray
    n_regions: int
    knots_t: np.ndarray
    n_pieces: int
    length: float
    patterns: np.ndarray | None = None
    ambiguous: bool = False
    notes: tuple[str, ...] = ()

    def points(self, x0: np.ndarray, x1: np.ndarray) -> np.ndarray:
        """The breakpoints in input space: ``(len(t), d)``."""
        x0, x1 = np.asarray(x0, dtype=np.float64), np.asarray(x1, dtype=np.float64)
        return x0[None, :] + self.t[:, None] * (x1 - x0)[None, :]


def _restrict(layers: list[Layer], x0: np.ndarray, x1: np.ndarray) -> list[Layer]:
    """The 1-input net ``t -> f(x0 + t (x1 - x0))``."""
    W, b, form = layers[0]
    d = x1 - x0
    return [((W @ d)[:, None], W @ x0 + b, form), *layers[1:]]


def _restrict_frame(layers: list[Layer], p: np.ndarray, u: np.ndarray) -> list[Layer]:
    """The 1-input net ``lam -> f(p + lam u)``."""
    W, b, form = layers[0]
    return [((W @ u)[:, None], W @ p + b, form), *layers[1:]]


@dataclass(frozen=True)
class _Frame:
    """The segment ``x0 -> x1`` as ``p + lam u`` (``u`` a unit vector, ``lam`` in
    ``(lam0, lam1)``), ``p`` the point of the segment nearest the origin: the line's parameter
    is well conditioned there however long the segment (``x0 = -1e300 u``) or far its ends."""

    p: np.ndarray
    u: np.ndarray
    lam0: float
    lam1: float
    t_star: float  # t of p
    half_len_n: float  # |x1 - x0| = 2 * half_m * n, kept in two factors (no overflow)
    half_m: float

    def to_t(self, lam: np.ndarray) -> np.ndarray:
        """Segment parameter ``t`` in ``[0, 1]`` of line parameters ``lam``."""
        with np.errstate(over="ignore", under="ignore"):
            return np.clip(self.t_star + (lam / (2.0 * self.half_len_n)) / self.half_m, 0.0, 1.0)


def _line_frame(a: np.ndarray, b: np.ndarray) -> _Frame:
    """:class:`_Frame` of the segment ``a -> b`` (flat float64, ``a != b``).

    Ends up to ``2**20`` in size are handled in float64; larger ones in exact rational
    arithmetic (``b - a``, the nearest point ``p`` and its ``t`` are exact before rounding, so
    ``x0 = c - 1e15 u, x1 = c + 1e15 u`` does not lose ``c``).
    """
    from fractions import Fraction

    big = max(float(np.abs(a).max()), float(np.abs(b).max())) > 2.0**20
    if not big:
        d = b - a
        dd = float(d @ d)
        ts = min(1.0, max(0.0, -float(a @ d) / dd))
        nd = math.sqrt(dd)
        return _Frame(a + ts * d, d / nd, -ts * nd, (1.0 - ts) * nd, ts, nd / 2.0, 1.0)
    fa = [Fraction(float(x)) for x in a]
    fd = [Fraction(float(y)) - x for x, y in zip(fa, (Fraction(float(y)) for y in b))]
    m = max(abs(x) for x in fd)
    dn = np.array([float(x / m) for x in fd])
    n = float(np.linalg.norm(dn))
    dd = sum((x * x for x in fd), Fraction(0))
    ad = sum((x * y for x, y in zip(fa, fd)), Fraction(0))
    ts = min(Fraction(1), max(Fraction(0), -ad / dd))
    p = np.array([float(x + ts * y) for x, y in zip(fa, fd)])
    with np.errstate(over="ignore"):
        lam0 = -float(ts * m / 2) * 2.0 * n
        lam1 = float((1 - ts) * m / 2) * 2.0 * n
    return _Frame(p, dn / n, lam0, lam1, float(ts), n, float(m / 2))


def _as_point(x, d: int, name: str) -> np.ndarray:
    a = as_real_array(x, name).reshape(-1)
    if a.shape[0] != d:
        raise InvalidInput(
            f"{name} must have {d} entries (the model's input size), got {a.shape[0]}"
        )
    if not np.isfinite(a).all():
        raise InvalidInput(f"{name} contains NaN or inf")
    return a


def _line(layers: list[Layer], x0: np.ndarray, x1: np.ndarray, with_patterns: bool) -> LineRegions:
    fr = _line_frame(x0, x1)
    part = _checked(
        "regions on a line",
        _partition,
        _restrict_frame(layers, fr.p, fr.u),
        fr.lam0,
        fr.lam1,
        want_patterns=with_patterns,
    )
    A = part.A
    if part.edges.size:
        dA = np.abs(np.diff(A, axis=0)).max(1)
        tol = max(_MAP_RTOL * max(float(np.abs(A).max()), _TINY), _KNOT_ERROR_FACTOR * part.errA)
        kt = part.edges[dA > tol]
    else:
        kt = part.edges
    pats = None
    if with_patterns and part.patterns is not None:
        hidden = part.patterns[: len(layers) - 1] if layers[-1][2] is not None else part.patterns
        pats = np.concatenate(hidden, 1) if hidden else np.zeros((part.edges.size + 1, 0), np.int8)
    return _line_result(fr, part.edges, kt, pats, part.notes)


def _line_result(fr: _Frame, edges, kt, pats, notes) -> LineRegions:
    t = fr.to_t(edges)
    notes = list(notes)
    ambiguous = bool(notes)
    if t.size > 1 and np.any(np.diff(t) <= 0):
        notes.append(
            "the segment is so long that distinct breakpoints share one float64 t in (0, 1); "
            "n_regions counts them all (they are distinct along the line)"
        )
    with np.errstate(over="ignore"):
        length = 2.0 * fr.half_len_n * fr.half_m
    return LineRegions(
        t=t,
        n_regions=int(edges.size + 1),
        knots_t=fr.to_t(kt),
        n_pieces=int(kt.size + 1),
        length=float(length),
        patterns=pats,
        ambiguous=ambiguous,
        notes=tuple(notes),
    )


def _point_shape(x) -> tuple[int, ...] | None:
    shape = getattr(x, "shape", None)
    if shape is not None and len(shape) >= 2:
        return tuple(int(s) for s in shape)
    return None


def _graph_line(view: ModelView, x0, x1, with_patterns: bool) -> LineRegions:
    view.require_piecewise_linear("regions on a line")
    shape = view.input_shape
    if shape is None:
        raise InvalidInput(
            "the model's input shape cannot be inferred: pass x0 and x1 shaped as inputs"
        )
    a = check_point(x0, shape, "x0")
    b = check_point(x1, shape, "x1")
    if np.array_equal(a, b):
        raise InvalidInput("x0 and x1 are the same point: a line needs two distinct points")
    fr = _line_frame(a.reshape(-1), b.reshape(-1))
    lp = _checked(
        "regions on a line",
        line_partition,
        view,
        fr.p.reshape(shape),
        fr.u.reshape(shape),
        fr.lam0,
        fr.lam1,
    )
    A = lp.A
    if lp.edges.size:
        dA = np.abs(np.diff(A, axis=0)).max(1)
        kt = lp.edges[dA > _MAP_RTOL * max(float(np.abs(A).max()), _TINY)]
    else:
        kt = lp.edges
    return _line_result(fr, lp.edges, kt, lp.patterns if with_patterns else None, lp.notes)


def regions_on_line(model: nn.Module | MLP, x0, x1, *, with_patterns: bool = False) -> LineRegions:
    """Exact activation regions along the segment from ``x0`` to ``x1`` (any input dimension).

    Args:
        model: a piecewise-linear model (any graph of :mod:`nngeom.view`: MLPs, F.relu,
            residual blocks, conv nets with max-pool, ...).
        x0, x1: end points in the model's input shape (or flat, ``(d,)``), ``x0 != x1``.
        with_patterns: also return each region's activation pattern.

    Returns:
        :class:`LineRegions`; ``.t`` are the points ``t`` in ``(0, 1)`` where the pattern changes.

    >>> import torch, nngeom as ng
    >>> net = ng.mlp([2, 8, 1], dtype=torch.float64)
    >>> r = ng.regions_on_line(net, [-2.0, 0.0], [2.0, 0.0])
    >>> r.n_regions, r.knots_t.round(3)
    (5, array([0.215, 0.549, 0.722, 0.827]))
    """
    src = resolve(model, _point_shape(x0))
    if isinstance(src, ModelView):
        return _graph_line(src, x0, x1, with_patterns)
    view, layers = layer_forms(src)
    a = _as_point(x0, view.input_dim, "x0")
    b = _as_point(x1, view.input_dim, "x1")
    if np.array_equal(a, b):
        raise InvalidInput("x0 and x1 are the same point: a line needs two distinct points")
    return _line(layers, a, b, with_patterns)


def regions_along_lines(
    model: nn.Module | MLP,
    X: Tensor,
    n_lines: int = 16,
    length: float = 1.0,
    *,
    seed: int = 0,
    generator: torch.Generator | None = None,
) -> dict:
    """Hanin & Rolnick's statistic: activation regions along random lines through the data.

    Each line is centred at an example drawn (seeded) from ``X`` with a seeded random unit
    direction; the segment has Euclidean ``length``. Regions along each segment are counted
    exactly (:func:`regions_on_line`). The centres and directions are drawn from ``generator``
    (a CPU ``torch.Generator``, which advances) or from a fresh generator seeded with ``seed``.

    Returns:
        a dict of plain values: ``n_regions`` (list of ints, one per line), ``n_breakpoints``
        (list), ``length``, ``mean_regions``, ``regions_per_unit_length`` (mean regions / length),
        ``breakpoints_per_unit_length`` (mean boundary crossings / length: the boundary density
        that Hanin & Rolnick show scales with the number of neurons), ``n_neurons``, ``centers``
        (indices into X).

    >>> import torch, nngeom as ng
    >>> net = ng.mlp([2, 8, 1], dtype=torch.float64)
    >>> X = torch.randn(20, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    >>> stats = ng.regions_along_lines(net, X, n_lines=4, seed=0)
    >>> sorted(stats)
    ['breakpoints_per_unit_length', 'centers', 'length', 'mean_regions', 'n_breakpoints', 'n_neurons', 'n_regions', 'regions_per_unit_length']
    """
    X = _tensor_X(X)
    src = _source(model, X)
    graph = isinstance(src, ModelView)
    if graph:
        src.require_piecewise_linear("regions along lines")
        X = _check_X_view(X, src)
        n_neurons = sum(
            w for _, w, kind in _view_patterns(src, X[:1], 1)[1] if kind == "elementwise"
        )
    else:
        view, layers = layer_forms(src)
        X = _check_X(X, view)
        n_neurons = int(sum(view.widths))
    n_lines = check_positive_int("n_lines", n_lines, maximum=MAX_DIRECTIONS)
    length = check_number("length", length, minimum=0.0, strict_min=True)
    g = torch_generator(seed, generator, device="cpu")
    idx = torch.randint(0, X.shape[0], (n_lines,), generator=g)
    d = int(np.prod(X.shape[1:]))
    D = _unit_directions(n_lines, d, g).numpy()
    Xc = X[idx].detach().cpu().to(torch.float64).numpy().reshape(n_lines, d)
    counts, bps = [], []
    half = 0.5 * float(length)
    for k in range(n_lines):
        # the line Xc + lam D, lam in (-half, half), parametrised from its point nearest the
        # origin within the segment (well conditioned for any length)
        ls = min(half, max(-half, -float(Xc[k] @ D[k])))
        p, lo, hi = Xc[k] + ls * D[k], -half - ls, half - ls
        if graph:
            shape = tuple(X.shape[1:])
            edges = _checked(
                "regions along lines",
                line_partition,
                src,
                p.reshape(shape),
                D[k].reshape(shape),
                lo,
                hi,
            ).edges
        else:
            edges = _checked(
                "regions along lines", _partition_fast, _restrict_frame(layers, p, D[k]), lo, hi
            ).edges
        bps.append(int(edges.size))
        counts.append(int(edges.size + 1))
    return {
        "n_regions": counts,
        "n_breakpoints": bps,
        "length": float(length),
        "mean_regions": float(np.mean(counts)),
        "regions_per_unit_length": float(np.mean(counts) / length),
        "breakpoints_per_unit_length": float(np.mean(bps) / length),
        "n_neurons": int(n_neurons),
        "centers": [int(i) for i in idx],
    }


# --------------------------------------------------------------------------------------------
# exact 2-D slices
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class Regions2D:
    """The exact partition of a 2-D slice ``x = origin + s u + t v`` of the input space.

    Slice coordinates ``(s, t)`` range over ``bounds = (s_min, s_max, t_min, t_max)``.

    Attributes:
        vertices: ``(n_regions, M, 2)`` polygon vertices in slice coordinates, counter-clockwise,
            padded (only the first ``n_vertices[i]`` rows of region ``i`` are used).
        n_vertices: ``(n_regions,)``.
        n_regions: number of activation regions (convex polygons) meeting the slice.
        patterns: ``(n_regions, sum(widths))`` int8 activation pattern of each polygon.
        areas: ``(n_regions,)`` polygon areas (they sum to the slice's area).
        centroids: ``(n_regions, 2)``.
        slopes: ``(n_regions, n_outputs, 2)``; intercepts: ``(n_regions, n_outputs)``: on polygon
            ``i`` the network is ``slopes[i] @ (s, t) + intercepts[i]``.
        piece_ids: ``(n_regions,)`` label of the linear piece of each polygon (neighbouring
            polygons with equal affine maps merged, connected components).
        n_pieces: number of linear pieces.

    >>> import torch, nngeom as ng
    >>> r = ng.regions_2d(ng.mlp([2, 4, 1], dtype=torch.float64), extent=1.0)
    >>> type(r).__name__, r.vertices.shape[0] == r.n_regions, r.centroids.shape == (r.n_regions, 2)
    ('Regions2D', True, True)
    """

    vertices: np.ndarray
    n_vertices: np.ndarray
    n_regions: int
    patterns: np.ndarray
    areas: np.ndarray
    centroids: np.ndarray
    slopes: np.ndarray
    intercepts: np.ndarray
    piece_ids: np.ndarray
    n_pieces: int
    bounds: tuple[float, float, float, float]
    origin: np.ndarray
    u: np.ndarray
    v: np.ndarray
    input_shape: tuple[int, ...] = ()
    decision_boundary: np.ndarray | None = None
    classes: np.ndarray | None = None
    ambiguous: bool = False
    notes: tuple[str, ...] = ()

    def plot(self, ax=None, **kwargs):
        """Draw the slice: polygons by linear piece (or ``color_by="class"``), the decision
        boundary, the plane's anchors and any ``points`` (see :func:`nngeom.plots.regions`).
        Returns the matplotlib Axes."""
        from . import plots

        return plots.regions(self, ax, **kwargs)

    def polygon(self, i: int) -> np.ndarray:
        """Vertices of region ``i``: ``(n_vertices[i], 2)``."""
        return self.vertices[i, : self.n_vertices[i]]

    def to_input(self, st: np.ndarray) -> np.ndarray:
        """Slice coordinates ``(N, 2)`` -> input points ``(N, *input_shape)`` (``(N, d)`` flat)."""
        st = np.asarray(st, dtype=np.float64)
        flat = self.origin[None] + st[:, :1] * self.u[None] + st[:, 1:2] * self.v[None]
        shape = self.input_shape or (self.origin.size,)
        return flat.reshape(flat.shape[0], *shape)


@dataclass(frozen=True, eq=False)
class Plane:
    """The plane ``origin + s u + t v`` of the input space and a rectangle of it.

    ``origin``, ``u``, ``v``: arrays of the model's input shape; ``bounds``:
    ``(s_min, s_max, t_min, t_max)``. :func:`plane_through` makes the plane through three data
    points, which sit at ``(s, t) = (0, 0), (1, 0), (0, 1)``.

    >>> import numpy as np, nngeom as ng
    >>> p = ng.plane_through([0.0, 0.0], [2.0, 0.0], [0.0, 2.0])
    >>> type(p).__name__, p.u, p.bounds
    ('Plane', array([2., 0.]), (-0.25, 1.25, -0.25, 1.25))
    """

    origin: np.ndarray
    u: np.ndarray
    v: np.ndarray
    bounds: tuple[float, float, float, float]

    @property
    def anchors(self) -> np.ndarray:
        """Slice coordinates of the three points a plane was made through: ``(3, 2)``."""
        return np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])


def plane_through(x0, x1, x2, *, margin: float = 0.25) -> Plane:
    """The plane through three inputs (e.g. three images), as SplineCam slices a network.

    The plane is ``x0 + s (x1 - x0) + t (x2 - x0)``; the three points sit at ``(0, 0)``,
    ``(1, 0)`` and ``(0, 1)``, and the rectangle is ``[-margin, 1 + margin]^2``.

    Args:
        x0, x1, x2: points of the same shape (the model's per-example input shape, e.g.
            ``(1, 28, 28)``; tensors or arrays).
        margin: how far the rectangle reaches beyond the three points (``>= 0``).

    Raises:
        InvalidInput: different shapes, NaN/inf, or the three points on one line.

    >>> import nngeom as ng
    >>> p = ng.plane_through([0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0])
    >>> p.origin, p.u, p.v, p.bounds
    (array([0., 0., 0.]), array([1., 0., 0.]), array([0., 1., 0.]), (-0.25, 1.25, -0.25, 1.25))
    """
    pts = []
    for name, x in (("x0", x0), ("x1", x1), ("x2", x2)):
        a = as_real_array(x, name)
        if not np.isfinite(a).all():
            raise InvalidInput(f"{name} contains NaN or inf")
        pts.append(a)
    if not (pts[0].shape == pts[1].shape == pts[2].shape) or pts[0].size == 0:
        raise InvalidInput(
            f"x0, x1 and x2 must have the same (non-empty) shape, got {[p.shape for p in pts]}"
        )
    margin = check_number("margin", margin, minimum=0.0)
    with np.errstate(over="ignore", invalid="ignore"):
        u, v = pts[1] - pts[0], pts[2] - pts[0]
    if (
        not (np.isfinite(u).all() and np.isfinite(v).all())
        or max(float(np.abs(u).max()), float(np.abs(v).max())) * (1.0 + margin) > _MAX_COORDINATE
    ):
        raise InvalidInput(
            "x0, x1 and x2 are too far apart for float64 slice geometry (differences beyond "
            f"{_MAX_COORDINATE:g}): scale the inputs down"
        )
    uf, vf = u.reshape(-1), v.reshape(-1)
    G = np.array([[uf @ uf, uf @ vf], [uf @ vf, vf @ vf]])
    if abs(np.linalg.det(G)) <= _GEOMETRY_RTOL * max(G[0, 0] * G[1, 1], _TINY):
        raise InvalidInput("x0, x1 and x2 lie on one line: they do not span a plane")
    m = float(margin)
    return Plane(pts[0], u, v, (-m, 1.0 + m, -m, 1.0 + m))


def _decision_boundary(
    vertices: np.ndarray, n_vertices: np.ndarray, slopes: np.ndarray, intercepts: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The decision boundary on a partitioned slice: where the two largest outputs tie.

    Each polygon is split into the convex cells where the argmax of the (affine) outputs is
    constant; a cell edge on which the cell's class ties with another class is a boundary
    segment.

    Args:
        vertices, n_vertices: polygons ``(P, M, 2)`` / ``(P,)``.
        slopes, intercepts: ``(P, p, 2)`` / ``(P, p)``, the outputs on each polygon.

    Returns:
        ``(segments (K, 2, 2), classes (P,))``: boundary segments in slice coordinates and the
        predicted class at each polygon's centroid.
    """
    from .slices import _Plane

    P, p = intercepts.shape
    if p < 2:
        raise InvalidInput(
            "a decision boundary needs at least 2 outputs (class scores); this model has 1"
        )
    C = np.stack([intercepts, slopes[:, :, 0], slopes[:, :, 1]], 1)  # (P, 3, p)
    geom = _Plane((0.0, 1.0, 0.0, 1.0))
    geom.V, geom.nv = vertices.copy(), n_vertices.copy()
    geom.scale = max(float(np.abs(vertices).max()), _TINY)
    _, cen0 = _shoelace(vertices, n_vertices)
    L0 = C[:, 0] + cen0[:, :1] * C[:, 1] + cen0[:, 1:] * C[:, 2]
    classes = L0.argmax(1)
    anc = geom.split_max(C[:, :, None, :], np.ones((1, p), dtype=bool))
    V, nv = geom.V, geom.nv
    Cc = C if anc is None else C[anc]
    _, cen = _shoelace(V, nv)
    Lc = Cc[:, 0] + cen[:, :1] * Cc[:, 1] + cen[:, 1:] * Cc[:, 2]
    cls = Lc.argmax(1)
    M = V.shape[1]
    j = np.arange(M)[None, :]
    valid = j < nv[:, None]
    nxt = np.where(j + 1 < nv[:, None], j + 1, 0)
    Vn = np.take_along_axis(V, nxt[:, :, None], 1)
    scale = np.abs(Cc[:, 0]).max(1) + (np.abs(Cc[:, 1]) + np.abs(Cc[:, 2])).max(1) * geom.scale
    tol = _MAP_RTOL * scale + _TINY

    def logits(E: np.ndarray) -> np.ndarray:  # (Q, M, 2) -> (Q, M, p)
        return Cc[:, None, 0] + E[..., :1] * Cc[:, None, 1] + E[..., 1:] * Cc[:, None, 2]

    L_a, L_b = logits(V), logits(Vn)
    own_a = np.take_along_axis(L_a, cls[:, None, None].repeat(M, 1), 2)
    own_b = np.take_along_axis(L_b, cls[:, None, None].repeat(M, 1), 2)
    higher = np.arange(p)[None, None, :] > cls[:, None, None]
    tie = (np.abs(L_a - own_a) <= tol[:, None, None]) & (np.abs(L_b - own_b) <= tol[:, None, None])
    is_b = valid & (tie & higher).any(2)
    segs = np.stack([V[is_b], Vn[is_b]], 1)
    length = np.linalg.norm(segs[:, 1] - segs[:, 0], axis=1)
    segs = segs[length > _GEOMETRY_RTOL * geom.scale]
    return segs, classes


def regions_2d(
    model: nn.Module | MLP,
    origin=None,
    u=None,
    v=None,
    extent: float | tuple[float, float, float, float] = 1.0,
    *,
    merge_pieces: bool = True,
    decision_boundary: bool = False,
    max_memory: float = DEFAULT_MAX_MEMORY,
) -> Regions2D:
    """Exact partition of a 2-D slice of the input space into activation regions (polygons).

    The slice is ``x = origin + s u + t v`` with ``(s, t)`` in ``[-extent, extent]^2`` (or
    ``extent = (s_min, s_max, t_min, t_max)``); or pass a :class:`Plane` (e.g.
    ``ng.plane_through(x0, x1, x2)``) as ``origin``. ``origin``, ``u``, ``v`` have the model's
    input shape (e.g. ``(1, 28, 28)`` images) or are flat. For a 2-input net the defaults
    (origin 0, ``u``, ``v`` the unit vectors) slice the input plane itself.

    Any piecewise-linear model of :mod:`nngeom.view` works: a chain of dense layers runs the
    MLP engine below, any other graph (conv, pooling, residual, max) the graph engine of
    :mod:`nngeom.slices`; there a region is a set of equal patterns over every element-wise
    unit *and* the argmax of every max window. Polygons are clipped layer by layer by
    every unit's breakpoint lines (vectorised over polygons, in float64), each polygon carrying
    the affine map from the slice to the current layer; then neighbouring polygons with equal
    output affine maps are merged into linear pieces (connected components). A piecewise-linear
    output activation (e.g. a ReLU after the last Linear) splits the polygons too (then two
    polygons may share a hidden-layer pattern); this matches cell complexes that include the
    output's zero level, such as Berzins' edge subdivision.

    ``max_memory`` (bytes) bounds what the graph engine may carry on all pieces; a slice that
    would need more is refused (shrink it) rather than exhausting memory.

    With ``decision_boundary=True`` (a model with >= 2 outputs) the result also holds the
    segments where the two largest outputs tie (``decision_boundary``, ``(K, 2, 2)`` in slice
    coordinates) and the predicted class of each polygon (``classes``).

    Returns:
        :class:`Regions2D` (polygons, patterns, areas, affine maps, piece labels, counts).

    Raises:
        InvalidInput: wrong shapes, ``u``/``v`` parallel, empty extent.
        UnsupportedModel: a smooth activation or an operation that is not piecewise linear.

    >>> import torch, nngeom as ng
    >>> net = ng.mlp([2, 6, 1], dtype=torch.float64)
    >>> r = ng.regions_2d(net, extent=2.0)
    >>> r.n_regions, r.patterns.shape[0] == r.n_regions, round(float(r.areas.sum()), 6)
    (19, True, 16.0)
    """
    merge_pieces = check_bool("merge_pieces", merge_pieces)
    decision_boundary = check_bool("decision_boundary", decision_boundary)
    max_memory = check_number("max_memory", max_memory, minimum=0.0, strict_min=True)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        R = _regions_2d(model, origin, u, v, extent, merge_pieces, decision_boundary, max_memory)
    _require_finite([R.slopes, R.intercepts], "linear regions")
    return R


def _regions_2d(model, origin, u, v, extent, merge_pieces, decision_boundary, max_memory):
    if isinstance(origin, Plane):
        if u is not None or v is not None:
            raise InvalidInput("pass either a Plane or origin, u and v, not both")
        plane = origin
        origin, u, v = plane.origin, plane.u, plane.v
        if extent == 1.0:
            extent = plane.bounds
    src = resolve(model, _point_shape(origin))
    if isinstance(src, ModelView):
        return _graph_regions_2d(
            src, origin, u, v, extent, merge_pieces, decision_boundary, max_memory
        )
    view, layers = layer_forms(src)
    d = view.input_dim
    if origin is None:
        origin = np.zeros(d)
    if u is None or v is None:
        if d != 2:
            raise InvalidInput(
                f"the model has {d} inputs: pass the slice's origin, u and v (each {d} numbers)"
            )
        u = [1.0, 0.0] if u is None else u
        v = [0.0, 1.0] if v is None else v
    o = _as_point(origin, d, "origin")
    uu = _as_point(u, d, "u")
    vv = _as_point(v, d, "v")
    _check_span(uu, vv)
    bounds = _bounds(extent)
    s0, s1, t0, t1 = bounds
    scale_st = max(abs(s0), abs(s1), abs(t0), abs(t1), _TINY)
    W0, b0, _ = layers[0]
    UV = np.stack([uu, vv], 1)  # (d, 2)
    V, nv = _ring_cells(bounds, _plane_center(o, UV, bounds))
    ladder = V.shape[0] > 1
    notes: list[str] = []
    ZA = (W0 @ UV)[None]  # (P, n, 2)
    Zc = (W0 @ o + b0)[None]  # (P, n)
    ZA, Zc = np.repeat(ZA, V.shape[0], 0), np.repeat(Zc, V.shape[0], 0)
    pats: list[np.ndarray] = []
    for li, (_, _, form) in enumerate(layers):
        if form is None:
            break
        bp, sl, ic = form
        n, m = bp.shape
        # during the layer every polygon keeps the affine map of its ancestor at the layer start
        anc = np.arange(V.shape[0])
        ZA_t = np.ascontiguousarray(ZA.transpose(1, 0, 2))  # (n, P0, 2)
        Zc_t = np.ascontiguousarray(Zc.T)  # (n, P0)
        for i in range(n):
            for k in range(m):
                a = ZA_t[i][anc]  # (P, 2)
                c = Zc_t[i][anc] - bp[i, k]
                f = V[:, :, 0] * a[:, :1] + V[:, :, 1] * a[:, 1:] + c[:, None]
                # a huge slice is cut into rings (see _ring_cells): each polygon's own size
                sc = np.abs(V).max((1, 2)) if ladder else scale_st
                tol = _GEOMETRY_RTOL * (
                    (np.abs(a[:, 0]) + np.abs(a[:, 1])) * sc + np.abs(c) + abs(bp[i, k])
                )
                M = V.shape[1]
                valid = np.arange(M)[None, :] < nv[:, None]
                fv = np.where(valid, f, 0.0)
                pos = (fv > tol[:, None]).any(1)
                neg = (fv < -tol[:, None]).any(1)
                sp = np.flatnonzero(pos & neg)
                if sp.size == 0:
                    continue
                Vp, nvp, Vn, nvn = _split(V[sp], nv[sp], f[sp], tol[sp])
                Mx = max(V.shape[1], Vp.shape[1], Vn.shape[1])
                V = _pad(V, Mx)
                V[sp] = _pad(Vp, Mx)
                nv = nv.copy()
                nv[sp] = nvp
                V = np.concatenate([V, _pad(Vn, Mx)], 0)
                nv = np.concatenate([nv, nvn])
                anc = np.concatenate([anc, anc[sp]])
        ZA, Zc = ZA[anc], Zc[anc]
        pats = [q[anc] for q in pats]
        _, cen = _shoelace(V, nv)
        z = ZA[:, :, 0] * cen[:, :1] + ZA[:, :, 1] * cen[:, 1:] + Zc
        r = (z[:, :, None] > bp[None]).sum(-1)
        pats.append(r.astype(np.int8))
        cols = np.arange(n)[None, :]
        s = sl[cols, r]
        HA = s[:, :, None] * ZA
        Hc = s * Zc + ic[cols, r]
        if li + 1 < len(layers):
            W2, b2, _ = layers[li + 1]
            ZA = (HA.transpose(0, 2, 1) @ W2.T).transpose(0, 2, 1)  # (P, n2, 2)
            Zc = Hc @ W2.T + b2
        else:
            ZA, Zc = HA, Hc
    # ZA/Zc now hold the output's affine map on each polygon (after an output activation if any)
    outA, outc = ZA, Zc
    if ladder:  # polygons of one region cut by the rings: one convex polygon again
        V, nv, keep = _merge_equal_patterns(V, nv, np.concatenate(pats, 1) if pats else None)
        outA, outc, pats = outA[keep], outc[keep], [q[keep] for q in pats]
    areas, cen = _shoelace(V, nv)
    P = V.shape[0]
    hidden = pats[: view.depth]
    patterns = np.concatenate(hidden, 1) if hidden else np.zeros((P, 0), np.int8)
    if merge_pieces and P > 1:
        piece_ids, n_pieces = _merge_pieces(
            lambda X: activation_patterns(view, torch.from_numpy(X)).numpy(),
            V,
            nv,
            patterns,
            outA,
            outc,
            bounds,
            o,
            UV,
            scale_st,
            local=ladder,
        )
    else:
        piece_ids, n_pieces = np.arange(P), P
    if decision_boundary:
        _check_boundary_extent(scale_st)
    segs, classes = _decision_boundary(V, nv, outA, outc) if decision_boundary else (None, None)
    if ladder and decision_boundary:
        notes.append(
            "the decision boundary of a slice this wide is judged with tolerances relative to "
            f"its extent ({scale_st:.3g}): ties of the outputs finer than about "
            f"{_GEOMETRY_RTOL * scale_st:.3g} may be missed; use a smaller extent for the boundary"
        )
    return Regions2D(
        vertices=V,
        n_vertices=nv,
        n_regions=int(P),
        patterns=patterns,
        areas=areas,
        centroids=cen,
        slopes=outA,
        intercepts=outc,
        piece_ids=piece_ids,
        n_pieces=int(n_pieces),
        bounds=bounds,
        origin=o,
        u=uu,
        v=vv,
        input_shape=(d,),
        decision_boundary=segs,
        classes=classes,
        ambiguous=bool(notes),
        notes=tuple(notes),
    )


# A slice wider than _RING_R0 (in slice units) around its centre is cut into square rings whose
# size grows by _RING_Q: polygon vertices in float64 round relative to their own size, so a
# single square of extent 1e50 would blur every feature near the origin (all its splits computed
# from vertices at 1e50). In a ring no point is more than _RING_Q times nearer the centre than
# the ring's vertices, and each polygon is judged with its own size.
_RING_R0 = 1e4
_RING_Q = 1e4


def _plane_center(o: np.ndarray, UV: np.ndarray, bounds) -> tuple[float, float]:
    """Slice coordinates of the plane's point nearest the input origin, clamped to ``bounds``."""
    G = UV.T @ UV
    try:
        st = np.linalg.solve(G, -(UV.T @ o))
    except np.linalg.LinAlgError:
        st = np.zeros(2)
    if not np.isfinite(st).all():
        st = np.zeros(2)
    s0, s1, t0, t1 = bounds
    return float(min(max(st[0], s0), s1)), float(min(max(st[1], t0), t1))


def _ring_cells(bounds, center: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """The rectangle ``bounds`` as rectangles: one square around ``center`` and square rings."""
    s0, s1, t0, t1 = bounds
    cs, ct = center
    far = max(cs - s0, s1 - cs, ct - t0, t1 - ct)
    rects = []
    if far <= _RING_R0 * 10:
        rects.append((s0, s1, t0, t1))
    else:
        r_in = _RING_R0
        rects.append((cs - r_in, cs + r_in, ct - r_in, ct + r_in))
        while r_in < far:
            r_out = r_in * _RING_Q
            if r_out * 10 >= far:  # the last ring reaches the bounds (no sliver ring)
                r_out = math.inf
            a, b, c, d = cs - r_out, cs - r_in, cs + r_in, cs + r_out
            e, f, g, h = ct - r_out, ct - r_in, ct + r_in, ct + r_out
            for xs in ((a, b), (b, c), (c, d)):
                for ys in ((e, f), (f, g), (g, h)):
                    if xs == (b, c) and ys == (f, g):
                        continue
                    rects.append((*xs, *ys))
            r_in = r_out
        rects = [(max(a, s0), min(b, s1), max(c, t0), min(d, t1)) for a, b, c, d in rects]
        rects = [r for r in rects if r[0] < r[1] and r[2] < r[3]]
    R = np.array(rects, dtype=np.float64)
    V = np.stack(
        [R[:, [0, 2]], R[:, [1, 2]], R[:, [1, 3]], R[:, [0, 3]]], 1
    )  # (P, 4, 2) counter-clockwise
    return V, np.full(V.shape[0], 4)


def _hull(pts: np.ndarray) -> np.ndarray:
    """Convex hull (counter-clockwise, monotone chain) of points ``(n, 2)``."""
    pts = np.unique(pts, axis=0)
    if pts.shape[0] <= 2:
        return pts
    m = float(np.abs(pts).max())
    if m > _MAX_COORDINATE:  # cross products of huge coordinates would overflow
        return _hull(pts / m) * m

    def half(points):
        out: list = []
        for q in points:
            while len(out) >= 2:
                (x1, y1), (x2, y2) = out[-2], out[-1]
                if (x2 - x1) * (q[1] - y1) - (y2 - y1) * (q[0] - x1) > 0:
                    break
                out.pop()
            out.append(q)
        return out

    lower = half(pts)
    upper = half(pts[::-1])
    return np.array(lower[:-1] + upper[:-1])


def _merge_equal_patterns(V: np.ndarray, nv: np.ndarray, pats: np.ndarray | None):
    """Polygons with one full pattern are pieces of one convex region: their hull, once.

    Returns ``(V, nv, keep)``, ``keep`` the index of one polygon per region (for its data).
    """
    P = V.shape[0]
    if pats is None or pats.shape[1] == 0:
        groups = np.zeros(P, dtype=np.intp)
    else:
        _, groups = np.unique(pats, axis=0, return_inverse=True)
        groups = groups.reshape(-1)
    order = np.argsort(groups, kind="stable")
    starts = np.flatnonzero(np.r_[True, np.diff(groups[order]) != 0])
    keep = order[starts]
    polys = []
    for gi, st in enumerate(starts):
        end = starts[gi + 1] if gi + 1 < starts.size else P
        members = order[st:end]
        if members.size == 1:
            i = members[0]
            polys.append(V[i, : nv[i]])
        else:
            polys.append(_hull(np.concatenate([V[i, : nv[i]] for i in members], 0)))
    M = max(p.shape[0] for p in polys)
    Vout = np.zeros((len(polys), M, 2))
    for i, p in enumerate(polys):
        Vout[i, : p.shape[0]] = p
    return Vout, np.array([p.shape[0] for p in polys]), keep


def _check_boundary_extent(scale: float) -> None:
    if scale > _MAX_COORDINATE:
        raise InvalidInput(
            f"decision_boundary=True needs a slice within {_MAX_COORDINATE:g} of the origin "
            f"(this one reaches "
            f"{scale:.3g}: the boundary's tie tests would overflow float64); use a smaller extent"
        )


def _check_span(uu: np.ndarray, vv: np.ndarray) -> None:
    uf, vf = uu.reshape(-1), vv.reshape(-1)
    G = np.array([[uf @ uf, uf @ vf], [uf @ vf, vf @ vf]])
    if abs(np.linalg.det(G)) <= _GEOMETRY_RTOL * max(G[0, 0] * G[1, 1], _TINY):
        raise InvalidInput("u and v must be linearly independent (they span the slice)")


def _bounds(extent) -> tuple[float, float, float, float]:
    if isinstance(extent, (int, float)) and not isinstance(extent, bool):
        e = check_number("extent", extent, minimum=0.0, strict_min=True)
        return (-e, e, -e, e)
    try:
        bounds = tuple(float(e) for e in extent)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"extent must be a number or 4 numbers, got {extent!r}") from exc
    if len(bounds) != 4 or not all(map(math.isfinite, bounds)):
        raise InvalidInput(f"extent must be a number or 4 finite numbers, got {extent!r}")
    if not (bounds[0] < bounds[1] and bounds[2] < bounds[3]):
        raise InvalidInput(f"extent {bounds} is empty: need s_min < s_max and t_min < t_max")
    return bounds  # type: ignore[return-value]


def _graph_regions_2d(
    view: ModelView,
    origin,
    u,
    v,
    extent,
    merge_pieces: bool,
    want_boundary: bool,
    max_memory: float,
) -> Regions2D:
    """regions_2d on the graph engine (conv, pooling, residual, max)."""
    from .slices import _f64_view

    view.require_piecewise_linear("linear regions")
    shape = view.input_shape
    if shape is None:
        raise InvalidInput(
            "the model's input shape cannot be inferred (it does not start with a Linear layer): "
            "pass origin, u and v shaped like one input, e.g. (1, 28, 28), or a Plane"
        )
    if origin is None or u is None or v is None:
        raise InvalidInput(
            f"this model takes inputs of shape {tuple(shape)}: pass a Plane "
            "(ng.plane_through(x0, x1, x2)) or origin, u and v of that shape"
        )
    o = check_point(origin, shape, "origin")
    uu = check_point(u, shape, "u")
    vv = check_point(v, shape, "v")
    _check_span(uu, vv)
    bounds = _bounds(extent)
    notes: list[str] = []
    of0, UV0 = o.reshape(-1), np.stack([uu.reshape(-1), vv.reshape(-1)], 1)
    cs, ct = _plane_center(of0, UV0, bounds)
    far = max(cs - bounds[0], bounds[1] - cs, ct - bounds[2], bounds[3] - ct)
    if far > _RING_R0 * 10:
        notes.append(
            f"the slice reaches {far:.3g} from the plane's point nearest the input origin; the "
            "graph engine rounds polygon vertices relative to the whole slice, so regions "
            f"narrower than about {_GEOMETRY_RTOL * far:.3g} may be merged or lost: use an "
            "extent up to "
            f"{_RING_R0 * 10:g} (the count stops changing once the slice holds every vertex)"
        )
    if max(abs(b) for b in bounds) > _MAX_COORDINATE:
        raise InvalidInput(
            f"the graph engine needs a slice within {_MAX_COORDINATE:g} of the origin (extent "
            f"{bounds}: its "
            "polygon geometry would overflow float64); use a smaller extent (the region count "
            "stops changing once the slice holds every vertex)"
        )
    pp = _checked("linear regions", plane_partition, view, o, uu, vv, bounds, max_memory=max_memory)
    V, nv = pp.V, pp.nv
    areas, cen = _shoelace(V, nv)
    P = V.shape[0]
    of, UV = o.reshape(-1), np.stack([uu.reshape(-1), vv.reshape(-1)], 1)
    if merge_pieces and P > 1:
        v64 = _f64_view(view)

        def pattern_fn(X: np.ndarray) -> np.ndarray:
            # in chunks: each probe carries every tensor of the forward (a conv net's are large)
            per = max(1, int(np.prod(shape)))
            step = max(1, min(X.shape[0], _PROBE_CHUNK_BYTES // (_PROBE_BYTES_PER_INPUT * per)))
            out = [
                view_patterns(view, torch.from_numpy(X[i : i + step].reshape(-1, *shape)), v64=v64)[
                    0
                ]
                for i in range(0, X.shape[0], step)
            ]
            return np.concatenate(out, 0)

        scale_st = max(abs(b) for b in bounds)
        piece_ids, n_pieces = _merge_pieces(
            pattern_fn, V, nv, pp.patterns, pp.slopes, pp.intercepts, bounds, of, UV, scale_st
        )
    else:
        piece_ids, n_pieces = np.arange(P), P
    segs, classes = (
        _decision_boundary(V, nv, pp.slopes, pp.intercepts) if want_boundary else (None, None)
    )
    return Regions2D(
        vertices=V,
        n_vertices=nv,
        n_regions=int(P),
        patterns=pp.patterns,
        areas=areas,
        centroids=cen,
        slopes=pp.slopes,
        intercepts=pp.intercepts,
        piece_ids=piece_ids,
        n_pieces=int(n_pieces),
        bounds=bounds,
        origin=of,
        u=UV[:, 0].copy(),
        v=UV[:, 1].copy(),
        input_shape=tuple(shape),
        decision_boundary=segs,
        classes=classes,
        ambiguous=bool(notes),
        notes=tuple(notes),
    )


def _lookup(patterns: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Index of each row of ``q`` among the (distinct) rows of ``patterns``, -1 if absent."""
    rng = np.random.default_rng(_PATTERN_HASH_SEED)
    R = rng.integers(1, 2**62, size=(patterns.shape[1], 2), dtype=np.int64).astype(np.uint64)

    def keys(rows: np.ndarray) -> np.ndarray:
        # in row blocks: a uint64 copy of all patterns at once can take tens of GB
        out = np.empty(rows.shape[0], dtype=np.uint64)
        step = max(1, _PATTERN_BLOCK_ENTRIES // max(1, rows.shape[1]))
        with np.errstate(over="ignore"):
            for i in range(0, rows.shape[0], step):
                h = rows[i : i + step].astype(np.uint64) @ R
                out[i : i + step] = h[:, 0] ^ (h[:, 1] << np.uint64(1))
        return out

    kp, kq = keys(patterns), keys(q)
    order = np.argsort(kp)
    pos = np.clip(np.searchsorted(kp[order], kq), 0, len(order) - 1)
    cand = order[pos]
    ok = kp[cand] == kq
    idx = np.flatnonzero(ok)
    step = max(1, _PATTERN_BLOCK_ENTRIES // max(1, q.shape[1]))
    for i in range(0, idx.size, step):  # confirm the hash matches row by row, in blocks
        j = idx[i : i + step]
        ok[j] = (patterns[cand[j]] == q[j]).all(1)
    return np.where(ok, cand, -1)


def _merge_pieces(
    pattern_fn, V, nv, patterns, outA, outc, bounds, o, UV, scale_st, local: bool = False
):
    """Connected components of neighbouring polygons with equal output affine maps.

    ``local``: probe each edge relative to its own size and place (a slice cut into rings),
    not to the whole slice's extent ``scale_st``.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    P, M, _ = V.shape
    j = np.arange(M)[None, :]
    valid = j < nv[:, None]
    nxt = np.where(j + 1 < nv[:, None], j + 1, 0)
    Vn = np.take_along_axis(V, nxt[:, :, None], 1)
    with np.errstate(over="ignore", invalid="ignore"):
        e = Vn - V
        L = np.hypot(e[..., 0], e[..., 1])
    if local:
        sc = np.maximum(np.abs(V + 0.5 * e).max(2), L)
    else:
        sc = scale_st
    ok = valid & (L > _GEOMETRY_RTOL * sc) & np.isfinite(L)
    normal = np.stack([e[..., 1], -e[..., 0]], 2) / np.where(L > 0, L, 1.0)[..., None]
    delta = (_PROBE_OFFSET * sc)[..., None] if local else _PROBE_OFFSET * scale_st
    # the midpoint of every edge, stepped outwards; both polygons of a shared edge probe it, so
    # T-junctions are covered
    probes = (V + 0.5 * e + delta * normal)[ok]
    owner = np.broadcast_to(np.arange(P)[:, None], (P, M))[ok]
    s0, s1, t0, t1 = bounds
    inside = (probes[:, 0] > s0) & (probes[:, 0] < s1) & (probes[:, 1] > t0) & (probes[:, 1] < t1)
    owner, probes = owner[inside], probes[inside]
    X = o[None] + probes @ UV.T
    q = pattern_fn(X)
    other = _lookup(patterns, q)
    good = (other >= 0) & (other != owner)
    a, b = owner[good], other[good]
    mapA = np.concatenate([outA.reshape(P, -1), outc], 1)
    scale = max(float(np.abs(mapA).max()), _TINY)
    same = np.abs(mapA[a] - mapA[b]).max(1) <= _MAP_RTOL * scale
    a, b = a[same], b[same]
    graph = coo_matrix((np.ones(a.size), (a, b)), shape=(P, P))
    n, labels = connected_components(graph, directed=False)
    return labels, n
