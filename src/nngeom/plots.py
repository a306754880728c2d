"""Pictures of nngeom's results, each drawn into one matplotlib Axes.

* :func:`regions` — the exact partition of a 2-D slice (:class:`~nngeom.regions.Regions2D`):
  polygons coloured by linear piece or predicted class, the decision boundary, the three points
  a :func:`~nngeom.regions.plane_through` plane was made through, and data points projected
  onto the slice.
* :func:`knots` — the function of a one-input network (:class:`~nngeom.knots.Knots`) with its
  knots marked.
* :func:`spectrum` — Hessian eigenvalues (histogram) and/or a stochastic Lanczos density
  (:class:`~nngeom.hessian.SpectralDensity`).
* :func:`sensitivity` — per-example tangent sensitivity, one histogram per class.
* :func:`activation` — the shape of an element-wise activation module (e.g. a
  :class:`~nngeom.activations.VAF`) against ReLU.
* :func:`forecast` — a chaotic series and the forecasts of several predictors.

Every function takes ``ax`` (a matplotlib Axes; ``None`` makes a new figure), draws into it,
labels its axes and returns it; none calls ``plt.show()``. matplotlib is imported inside the
functions, so ``import nngeom`` never loads it.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ._checks import check_bool, check_int, check_number
from ._errors import InvalidInput

__all__ = [
    "regions",
    "slice_coordinates",
    "knots",
    "spectrum",
    "sensitivity",
    "activation",
    "forecast",
]

# Most points a curve may be sampled at, and most histogram bins (a plot, not a computation).
MAX_SAMPLES = 1_000_000
MAX_BINS = 10_000


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------
def agg_pyplot() -> Any:
    """``matplotlib.pyplot`` with matplotlib on the non-interactive Agg backend (for figures
    that are only saved to files: the studies' and ``nngeom analyze``'s)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _axes(ax: Any, figsize: tuple[float, float] = (5.0, 4.0)) -> Any:
    """``ax`` checked to be a matplotlib Axes, or a new figure's Axes when ``ax`` is None."""
    import matplotlib.pyplot as plt
    from matplotlib.axes import Axes

    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
        return ax
    if not isinstance(ax, Axes):
        raise InvalidInput(
            f"ax must be a matplotlib Axes (e.g. from plt.subplots()) or None, got "
            f"{type(ax).__name__}"
        )
    return ax


def _real_array(name: str, x: object, *, finite: bool = True) -> np.ndarray:
    """``x`` (tensor, array or sequence of numbers) as a float64 numpy array."""
    import torch

    if isinstance(x, torch.Tensor):
        if x.is_complex():
            raise InvalidInput(f"{name} is complex: pass real numbers")
        if x.device.type == "meta":
            raise InvalidInput(f"{name} is on the meta device (no values)")
        x = x.detach().cpu().double().numpy()
    try:
        a = np.asarray(x)
    except (TypeError, ValueError, OverflowError) as exc:  # ragged or unconvertible
        raise InvalidInput(f"{name} must be an array of numbers ({exc})") from None
    if np.iscomplexobj(a):
        raise InvalidInput(f"{name} is complex: pass real numbers")
    if a.dtype == object or not (
        np.issubdtype(a.dtype, np.number) or np.issubdtype(a.dtype, np.bool_)
    ):
        raise InvalidInput(f"{name} must be an array of numbers, got dtype {a.dtype}")
    a = a.astype(np.float64)
    if finite and not np.isfinite(a).all():
        raise InvalidInput(f"{name} contains NaN or inf; pass finite values")
    return a


def _vector(name: str, x: object, *, finite: bool = True, allow_empty: bool = False) -> np.ndarray:
    a = _real_array(name, x, finite=finite)
    if a.ndim == 2 and a.shape[1] == 1:
        a = a[:, 0]
    if a.ndim != 1:
        raise InvalidInput(f"{name} must be 1-D (N,), got shape {a.shape}")
    if a.size == 0 and not allow_empty:
        raise InvalidInput(f"{name} is empty: pass at least one value")
    return a


def _symlog_spaced(a: float, b: float, num: int, c: float) -> np.ndarray:
    """``num`` points from ``a`` to ``b`` evenly spaced on matplotlib's symlog axis (base 10,
    linear threshold ``c``, linscale 1: ``y = x k`` within ``c``, else
    ``sign(x) c (k + log10(|x| / c))``, ``k = 1 / (1 - 1/10)``)."""
    k = 1.0 / (1.0 - 0.1)
    x = np.array([a, b], dtype=np.float64)
    ax_ = np.abs(x)
    with np.errstate(divide="ignore"):
        y = np.where(ax_ <= c, x * k, np.sign(x) * c * (k + np.log10(np.maximum(ax_, c) / c)))
    ya, yb = float(y[0]), float(y[1])
    if not yb > ya:
        ya, yb = ya - 0.5 * c, yb + 0.5 * c
    Y = np.linspace(ya, yb, num)
    aY = np.abs(Y)
    with np.errstate(over="ignore"):
        X = np.where(aY <= c * k, Y / k, np.sign(Y) * c * 10.0 ** (np.maximum(aY / c, k) - k))
    X[0], X[-1] = (a, b) if b > a else (X[0], X[-1])  # the ends exactly
    return X


def _palette(n: int) -> list:
    """``n`` colours from qualitative colormaps (tab10 first, then tab20's light shades)."""
    import matplotlib

    base = list(matplotlib.colormaps["tab10"].colors)
    light = list(matplotlib.colormaps["tab20"].colors)[1::2]
    cols = base + light
    return [cols[i % len(cols)] for i in range(n)]


# --------------------------------------------------------------------------------------------
# regions of a 2-D slice
# --------------------------------------------------------------------------------------------
def slice_coordinates(r: Any, points: object) -> np.ndarray:
    """Input points projected onto the slice of ``r``: slice coordinates ``(N, 2)``.

    The least-squares ``(s, t)`` minimising ``||origin + s u + t v - x||`` for each point (exact
    for a point on the plane: ``to_input`` of the result gives it back).

    Args:
        r: a :class:`~nngeom.regions.Regions2D`.
        points: ``(N, *input_shape)`` or ``(N, d)`` flat (``d`` = prod(input_shape)); one point
            of shape ``input_shape`` is taken as ``N = 1``.

    >>> import torch, nngeom as ng
    >>> r = ng.regions_2d(ng.mlp([2, 4, 1], dtype=torch.float64), extent=1.0)
    >>> ng.plots.slice_coordinates(r, [[0.5, -0.25]])
    array([[ 0.5 , -0.25]])
    """
    _check_regions(r)
    P = _real_array("points", points)
    d = int(r.origin.size)
    shape = tuple(r.input_shape) or (d,)
    if P.shape == shape:  # one point
        P = P[None]
    if P.ndim < 1 or P.shape[0] == 0:
        raise InvalidInput("points is empty: pass at least one point")
    if int(np.prod(P.shape[1:], dtype=np.int64)) != d or P.ndim < 2:
        raise InvalidInput(
            f"points must have shape (N, {', '.join(map(str, shape))}) or (N, {d}) for this "
            f"slice, got {P.shape}"
        )
    X = P.reshape(P.shape[0], d) - r.origin.reshape(1, d)
    UV = np.stack([r.u.reshape(-1), r.v.reshape(-1)], 1)  # (d, 2)
    st, *_ = np.linalg.lstsq(UV, X.T, rcond=None)
    return st.T


# What each picture reads from its result (checked by attribute, so that this module imports
# none of the modules whose results it draws: they import it for their .plot()).
_REGIONS_FIELDS = ("vertices", "n_vertices", "piece_ids", "slopes", "bounds", "origin", "u", "v")
_KNOTS_FIELDS = ("positions", "count", "slopes", "intercepts", "lo", "hi")
_DENSITY_FIELDS = ("nodes", "weights")


def _has_fields(obj: Any, fields: tuple[str, ...]) -> bool:
    return all(hasattr(obj, f) for f in fields)


def _check_regions(r: Any) -> None:
    if not _has_fields(r, _REGIONS_FIELDS):
        raise InvalidInput(f"expected a Regions2D (from ng.regions_2d), got {type(r).__name__}")


def _edges(V: np.ndarray, nv: np.ndarray):
    """Per polygon edge: start, end, validity mask (``(P, M, 2)``, ``(P, M, 2)``, ``(P, M)``)."""
    P, M, _ = V.shape
    j = np.arange(M)[None, :]
    valid = j < nv[:, None]
    nxt = np.where(j + 1 < nv[:, None], j + 1, 0)
    Vn = np.take_along_axis(V, nxt[:, :, None], 1)
    return V, Vn, valid


_ANCHOR_SPAN = 200.0  # widest slice on which the three anchors are drawn (1 apart)
_LOCATE_BLOCK = 500_000  # polygon edges tested at once when locating points (memory bound)
# Piece colouring: the most (point, polygon) pairs tested, colours in the palette, and the
# geometry of the neighbour probes (relative to the slice): a point is inside a polygon up to
# _INSIDE_RTOL, edges shorter than _MIN_EDGE_RTOL are skipped, and each probe sits
# _PROBE_OFFSET (at most _PROBE_EDGE_FRACTION of its edge's length) outside the edge's middle
_MAX_LOCATE_PAIRS = 5_000_000
_PALETTE_SIZE = 20
_INSIDE_RTOL = 1e-12
_MIN_EDGE_RTOL = 1e-9
_PROBE_OFFSET = 1e-7
_PROBE_EDGE_FRACTION = 1e-3


def _locate(
    V: np.ndarray, nv: np.ndarray, q: np.ndarray, bounds, max_pairs: int, exclude: np.ndarray
):
    """Index of the polygon holding each point ``q`` (Q, 2) (-1: none; polygon ``exclude[i]``
    is never reported for point ``i``), through a bucket grid of the polygons' bounding boxes;
    None when the candidate pairs would exceed ``max_pairs``."""
    P = V.shape[0]
    A, B, valid = _edges(V, nv)
    big = np.where(valid[..., None], V, np.nan)
    lo, hi = np.nanmin(big, 1), np.nanmax(big, 1)  # (P, 2)
    s0, s1, t0, t1 = bounds
    G = max(1, min(int(math.sqrt(P)), 512))
    span = np.array([s1 - s0, t1 - t0])
    base = np.array([s0, t0])

    def cell(x: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore", over="ignore"):
            c = np.floor((x - base) / span * G)
        return np.clip(np.nan_to_num(c, nan=0.0), 0, G - 1).astype(np.int64)

    c0, c1 = cell(lo), cell(hi)
    nx, ny = c1[:, 0] - c0[:, 0] + 1, c1[:, 1] - c0[:, 1] + 1
    counts = nx * ny
    if int(counts.sum()) > max_pairs:
        return None
    owner = np.repeat(np.arange(P), counts)
    k = np.arange(owner.size) - np.repeat(np.cumsum(counts) - counts, counts)
    cx = c0[owner, 0] + k % nx[owner]
    cy = c0[owner, 1] + k // nx[owner]
    cid = cx * G + cy
    order = np.argsort(cid, kind="stable")
    cid, owner = cid[order], owner[order]
    qc = cell(q)
    qid = qc[:, 0] * G + qc[:, 1]
    start = np.searchsorted(cid, qid, side="left")
    stop = np.searchsorted(cid, qid, side="right")
    n = stop - start
    if int(n.sum()) > max_pairs:
        return None
    qi = np.repeat(np.arange(q.shape[0]), n)
    ci = owner[np.repeat(start, n) + (np.arange(qi.size) - np.repeat(np.cumsum(n) - n, n))]
    keep = (q[qi] >= lo[ci]).all(1) & (q[qi] <= hi[ci]).all(1)  # inside the bounding box
    keep &= ci != exclude[qi]
    qi, ci = qi[keep], ci[keep]
    out = np.full(q.shape[0], -1, dtype=np.int64)
    step = max(1, _LOCATE_BLOCK // max(V.shape[1], 1))
    for b in range(0, qi.size, step):  # blocks of (pairs, M, 2): memory stays small
        qb, cb = qi[b : b + step], ci[b : b + step]
        e = B[cb] - A[cb]  # (K, M, 2)
        w = q[qb][:, None, :] - A[cb]
        cross = e[..., 0] * w[..., 1] - e[..., 1] * w[..., 0]
        L = np.hypot(e[..., 0], e[..., 1])
        scale = np.abs(A[cb]).max((1, 2)) + 1.0
        inside = np.where(valid[cb], cross >= -_INSIDE_RTOL * L * scale[:, None], True).all(1)
        out[qb[inside]] = cb[inside]
    return out


def _piece_colours(r: Any, max_pairs: int = _MAX_LOCATE_PAIRS) -> list:
    """A colour per polygon: one per linear piece, neighbouring pieces in different colours.

    Neighbours are found by probing just outside the middle of every polygon edge; the pieces are
    then coloured greedily (each piece takes the first palette colour, starting from its own
    index, that no already-coloured neighbour has).
    """
    ids = np.asarray(r.piece_ids).reshape(-1)
    _, piece = np.unique(ids, return_inverse=True)
    piece = piece.reshape(-1)
    n = int(piece.max()) + 1 if piece.size else 0
    pal = _palette(_PALETTE_SIZE)
    V, nv = np.asarray(r.vertices, dtype=np.float64), np.asarray(r.n_vertices)
    neighbours: list[set[int]] = [set() for _ in range(n)]
    if n > 1:
        A, B, valid = _edges(V, nv)
        e = B - A
        L = np.hypot(e[..., 0], e[..., 1])
        s0, s1, t0, t1 = r.bounds
        scale = max(s1 - s0, t1 - t0)
        ok = valid & (L > _MIN_EDGE_RTOL * scale)
        normal = np.stack([e[..., 1], -e[..., 0]], 2) / np.where(L > 0, L, 1.0)[..., None]
        delta = np.minimum(_PROBE_OFFSET * scale, _PROBE_EDGE_FRACTION * L)[..., None]
        probes = (A + 0.5 * e + delta * normal)[ok]
        own = np.broadcast_to(np.arange(V.shape[0])[:, None], ok.shape)[ok]
        found = _locate(V, nv, probes, r.bounds, max_pairs, own)
        if found is not None:
            hit = found >= 0
            a, b = piece[own[hit]], piece[found[hit]]
            for x, y in set(zip(a[a != b].tolist(), b[a != b].tolist(), strict=True)):
                neighbours[x].add(y)
                neighbours[y].add(x)
    colour = np.full(n, -1, dtype=np.int64)
    for p in sorted(range(n), key=lambda i: -len(neighbours[i])):
        used = {int(colour[q]) for q in neighbours[p] if colour[q] >= 0}
        choice = p % len(pal)
        for k in range(len(pal)):
            c = (p + k) % len(pal)
            if c not in used:
                choice = c
                break
        colour[p] = choice
    return [pal[c] for c in colour[piece]]


def _polygon_classes(r: Any) -> np.ndarray:
    """The predicted class of each polygon: ``r.classes``, or the argmax of the polygon's affine
    map at its centroid (``intercepts + slopes @ centroid``)."""
    if r.classes is not None:
        return np.asarray(r.classes).reshape(-1).astype(np.int64)
    slopes = np.asarray(r.slopes, dtype=np.float64)
    icpt = np.asarray(r.intercepts, dtype=np.float64)
    if icpt.ndim != 2 or icpt.shape[1] < 2:
        raise InvalidInput(
            "color_by='class' needs a model with at least 2 outputs (class scores); this one has "
            f"{icpt.shape[1] if icpt.ndim == 2 else 1}: use color_by='piece'"
        )
    cen = np.asarray(r.centroids, dtype=np.float64)
    logits = icpt + np.einsum("pkj,pj->pk", slopes, cen)
    return logits.argmax(1)


def regions(
    r: Any,
    ax: Any = None,
    *,
    color_by: str = "piece",
    points: object = None,
    point_labels: Sequence[object] | None = None,
    boundary: bool = True,
    anchors: bool = True,
) -> Any:
    """Draw the exact partition of a 2-D slice.

    Args:
        r: a :class:`~nngeom.regions.Regions2D` (``ng.regions_2d``); polygons ``vertices``
            ``(n_regions, M, 2)`` in slice coordinates ``(s, t)``.
        ax: the matplotlib Axes to draw into (None: a new figure).
        color_by: ``"piece"`` (each linear piece its own colour from a cycling qualitative
            palette, neighbouring pieces distinct) or ``"class"`` (the predicted class of each
            polygon, with a legend; taken from ``r.classes`` when the slice was computed with
            ``decision_boundary=True``, else the argmax of the polygon's affine map at its
            centroid).
        points: data points in input space, ``(N, *input_shape)`` or ``(N, d)``, drawn at their
            least-squares projection onto the slice (:func:`slice_coordinates`).
        point_labels: ``N`` labels written next to the points (e.g. their classes).
        boundary: draw ``r.decision_boundary`` (segments ``(K, 2, 2)``) as a thick line, when
            the slice has one.
        anchors: mark ``(0, 0), (1, 0), (0, 1)``, where ``ng.plane_through(x0, x1, x2)`` put its
            three points, as x0, x1, x2 (those inside the bounds; none on a slice wider than
            ``_ANCHOR_SPAN`` = 200, where they would sit on one spot).

    Returns:
        the Axes: polygons as its first ``PolyCollection`` (one path per region, in the order
        of ``r.vertices``), the boundary as a ``LineCollection``; limits are ``r.bounds``,
        aspect equal.

    >>> import torch, nngeom as ng
    >>> r = ng.regions_2d(ng.mlp([2, 4, 1], dtype=torch.float64), extent=1.0)
    >>> ax = ng.plots.regions(r)
    >>> type(ax).__name__
    'Axes'
    """
    from matplotlib.collections import LineCollection, PolyCollection
    from matplotlib.patches import Patch

    _check_regions(r)
    if not isinstance(color_by, str) or color_by not in ("piece", "class"):
        raise InvalidInput(f"color_by must be 'piece' or 'class', got {color_by!r}")
    boundary = check_bool("boundary", boundary)
    anchors = check_bool("anchors", anchors)
    st = None
    if points is not None:
        st = slice_coordinates(r, points)
        if point_labels is not None:
            if isinstance(point_labels, (str, bytes)) or not hasattr(point_labels, "__len__"):
                raise InvalidInput("point_labels must be a sequence with one label per point")
            if len(point_labels) != st.shape[0]:
                raise InvalidInput(
                    f"point_labels has {len(point_labels)} labels for {st.shape[0]} points"
                )
    elif point_labels is not None:
        raise InvalidInput("point_labels given without points")
    ax = _axes(ax, (5.0, 5.0))
    polys = [r.polygon(i) for i in range(r.n_regions)]
    handles = []
    if color_by == "piece":
        faces = _piece_colours(r)
        title = f"{r.n_regions} regions, {r.n_pieces} linear pieces"
    else:
        cls = _polygon_classes(r)
        present = sorted(set(cls.tolist()))
        pal = _palette(max(present) + 1 if present else 1)
        faces = [pal[c] for c in cls]
        handles = [
            Patch(facecolor=pal[c], edgecolor="k", lw=0.3, label=f"class {c}") for c in present
        ]
        title = f"{r.n_regions} regions, predicted class"
    coll = PolyCollection(
        polys, facecolors=faces, edgecolors=(0.0, 0.0, 0.0, 0.35), linewidths=0.3, zorder=1
    )
    ax.add_collection(coll)
    if boundary and r.decision_boundary is not None and len(r.decision_boundary):
        lc = LineCollection(
            np.asarray(r.decision_boundary),
            colors="k",
            linewidths=2.2,
            zorder=3,
            label="decision boundary",
        )
        ax.add_collection(lc)
        handles.append(lc)
    s0, s1, t0, t1 = r.bounds
    if anchors and max(s1 - s0, t1 - t0) <= _ANCHOR_SPAN:
        for name, (s, t) in zip(
            ("x0", "x1", "x2"), ((0.0, 0.0), (1.0, 0.0), (0.0, 1.0)), strict=True
        ):
            if s0 <= s <= s1 and t0 <= t <= t1:
                ax.plot([s], [t], marker="*", ms=12, color="w", mec="k", mew=1.0, ls="", zorder=5)
                ax.annotate(
                    name,
                    (s, t),
                    xytext=(5, 5),
                    textcoords="offset points",
                    fontsize=10,
                    fontweight="bold",
                    zorder=6,
                )
    if st is not None:
        ax.scatter(
            st[:, 0],
            st[:, 1],
            s=28,
            c="w",
            edgecolors="k",
            linewidths=1.0,
            zorder=5,
            label="points",
        )
        if point_labels is not None:
            for (s, t), lab in zip(st, point_labels, strict=True):
                ax.annotate(
                    str(lab),
                    (s, t),
                    xytext=(4, -10),
                    textcoords="offset points",
                    fontsize=8,
                    zorder=6,
                )
    ax.set_xlim(s0, s1)
    ax.set_ylim(t0, t1)
    ax.set_aspect("equal")
    ax.set_xlabel("s (along u)")
    ax.set_ylabel("t (along v)")
    ax.set_title(title)
    if handles:  # the polygons fill the axes: "best" would only cost time
        ax.legend(handles=handles, loc="upper right", fontsize=8, framealpha=0.8)
    return ax


# --------------------------------------------------------------------------------------------
# knots of a one-input net
# --------------------------------------------------------------------------------------------
def _window(k: Any) -> tuple[float, float]:
    """The x-range to draw: ``(lo, hi)`` where finite, else around the knots."""
    lo, hi = float(k.lo), float(k.hi)
    pos = np.asarray(k.positions, dtype=np.float64)
    anchors = [v for v in (lo, hi) if math.isfinite(v)] + pos.tolist()
    if not anchors:
        return -1.0, 1.0
    a, b = min(anchors), max(anchors)
    pad = 0.2 * (b - a) if b > a else max(1.0, 0.1 * abs(a))
    wl = lo if math.isfinite(lo) else a - pad
    wh = hi if math.isfinite(hi) else b + pad
    if not wl < wh:  # one finite end beyond every knot
        wl, wh = (wl, wl + pad) if math.isfinite(lo) else (wh - pad, wh)
    return wl, wh


def knots(k: Any, ax: Any = None, *, output: int = 0, model: Any = None, n: int = 2000) -> Any:
    """Draw the function of a one-input network from its :class:`~nngeom.knots.Knots`.

    The curve is ``k.evaluate(x)[:, output]`` on ``[lo, hi]`` (for an infinite end: a window
    reaching 20% of the knots' span beyond the outermost knot), sampled at ``n`` points plus
    every knot (so its corners are exact); the knots are dots on the curve with thin vertical
    lines. With ``model`` (the torch module the knots came from, one input) its own output is
    drawn dashed on top, as a check.

    Returns:
        the Axes (x / f(x) labels; the curve is its first line).

    >>> import torch, nngeom as ng
    >>> k = ng.knots(ng.mlp([1, 4, 1], dtype=torch.float64), -2.0, 2.0)
    >>> ax = ng.plots.knots(k)
    >>> type(ax).__name__
    'Axes'
    """
    if not _has_fields(k, _KNOTS_FIELDS):
        raise InvalidInput(f"expected a Knots result (from ng.knots), got {type(k).__name__}")
    slopes = np.asarray(k.slopes)
    n_out = slopes.shape[1] if slopes.ndim == 2 else 1
    output = check_int("output", output, minimum=0)
    if output >= n_out:
        raise InvalidInput(f"output must be in 0..{n_out - 1} (the net has {n_out}), got {output}")
    n = check_int("n", n, minimum=2, maximum=MAX_SAMPLES)
    if model is not None:
        import torch

        if not isinstance(model, torch.nn.Module):
            raise InvalidInput(f"model must be a torch.nn.Module, got {type(model).__name__}")
    ax = _axes(ax)
    with np.errstate(over="ignore"):
        wl, wh = _window(k)
        wide = not math.isfinite(wh - wl)
    if wide:
        raise InvalidInput(
            "the knots span more than float64 can sample (beyond about +-1e307); pass finite "
            "lo and hi around the part to draw to ng.knots"
        )
    pos = np.asarray(k.positions, dtype=np.float64)
    inside = pos[(pos >= wl) & (pos <= wh)]
    x = np.union1d(np.linspace(wl, wh, n), inside)
    y = k.evaluate(x)[:, output]
    ax.plot(x, y, color="C0", lw=1.5, label="network", zorder=2)
    if model is not None:
        import torch

        p = next(iter(model.parameters()), None)
        dt = p.dtype if p is not None and p.is_floating_point() else torch.get_default_dtype()
        dev = p.device if p is not None else torch.device("cpu")
        with torch.no_grad():
            out = model(torch.as_tensor(x, dtype=dt, device=dev)[:, None])
        ym = out.detach().reshape(x.size, -1)[:, output].cpu().double().numpy()
        ax.plot(x, ym, color="C1", lw=1.0, ls="--", label="model", zorder=3)
    if inside.size:
        yk = k.evaluate(inside)[:, output]
        ax.vlines(inside, 0, 1, transform=ax.get_xaxis_transform(), colors="0.6", lw=0.6, zorder=1)
        ax.plot(inside, yk, "o", ms=4, color="C3", label=f"knots ({k.count})", zorder=4)
    ax.set_xlim(wl, wh)
    ax.set_xlabel("x")
    ax.set_ylabel("f(x)" if n_out == 1 else f"f(x)[{output}]")
    ax.set_title(f"{k.count} knots")
    ax.legend(loc="best", fontsize=8)
    return ax


# --------------------------------------------------------------------------------------------
# Hessian spectra
# --------------------------------------------------------------------------------------------
# spectrum: a single eigenvalue is drawn over a span of _POINT_SPAN_FRACTION of its size; the
# density's default width is _SIGMA_FRACTION of the span; eigenvalues beyond _MAX_EIGENVALUE
# cannot be binned; the symlog axis is linear within _LINEAR_FRACTION of the largest
# |eigenvalue| (at least _MIN_LINEAR_THRESHOLD); the log density axis shows _DENSITY_DECADES
# decades below the highest bar or peak and _DENSITY_HEADROOM times above it
_POINT_SPAN_FRACTION = 1e-2
_SIGMA_FRACTION = 0.01
_MAX_EIGENVALUE = 1e300
_LINEAR_FRACTION = 1e-3
_MIN_LINEAR_THRESHOLD = 1e-200
_DENSITY_DECADES = 6
_DENSITY_HEADROOM = 3.0


def spectrum(
    eigenvalues: object = None,
    density: Any = None,
    ax: Any = None,
    *,
    bins: int = 50,
    log: bool = False,
    sigma: float | None = None,
    n: int = 1000,
) -> Any:
    """Draw a Hessian spectrum: eigenvalues as a histogram and/or a spectral density as a curve.

    Args:
        eigenvalues: ``(n,)`` eigenvalues (e.g. ``ng.hessian_eigenvalues``), drawn as a
            density-normalised histogram.
        density: a :class:`~nngeom.hessian.SpectralDensity` (stochastic Lanczos quadrature:
            ``nodes``/``weights`` ``(n_probes, m)``), drawn as ``density.density(grid, sigma)``.
        bins: histogram bins.
        log: a symmetric-log eigenvalue axis (bins and grid evenly spaced on it; linear within
            ``1e-3`` of the largest ``|eigenvalue|`` of zero) and a log density axis (six decades
            below the highest bar or peak): the bulk near zero and the few outliers both show.
        sigma: Gaussian broadening of the density (default: 1% of the spectrum's span).
        n: grid points of the density curve.

    Returns:
        the Axes ("eigenvalue" / "density").

    >>> import numpy as np, nngeom as ng
    >>> ax = ng.plots.spectrum(np.array([-0.1, 0.0, 0.5, 2.0]), bins=5)
    >>> type(ax).__name__
    'Axes'
    """
    if eigenvalues is None and density is None:
        raise InvalidInput("pass eigenvalues, a SpectralDensity (density=), or both")
    if density is not None and not _has_fields(density, _DENSITY_FIELDS):
        raise InvalidInput(
            f"density must be a SpectralDensity (nngeom.hessian.spectral_density), got "
            f"{type(density).__name__}"
        )
    log = check_bool("log", log)
    bins = check_int("bins", bins, minimum=1, maximum=MAX_BINS)
    n = check_int("n", n, minimum=2, maximum=MAX_SAMPLES)
    ev = None if eigenvalues is None else _vector("eigenvalues", eigenvalues)
    nodes = None
    if density is not None:
        nd = np.asarray(density.nodes, dtype=np.float64)
        wt = np.asarray(density.weights, dtype=np.float64)
        if nd.shape != wt.shape or nd.size == 0:
            raise InvalidInput("the SpectralDensity's nodes and weights must be equal, non-empty")
        if not (np.isfinite(nd).all() and np.isfinite(wt).all()):
            raise InvalidInput("the SpectralDensity holds NaN or inf")
        nodes = nd[wt > 0] if (wt > 0).any() else nd.reshape(-1)
    pts = np.concatenate([a for a in (ev, nodes) if a is not None])
    lo, hi = float(pts.min()), float(pts.max())
    big = max(abs(lo), abs(hi))
    span = hi - lo if hi > lo else max(big, 1.0) * _POINT_SPAN_FRACTION
    if sigma is None:
        sig = _SIGMA_FRACTION * span
    else:
        sig = check_number("sigma", sigma, minimum=0.0, strict_min=True)
    if not math.isfinite(hi - lo) or big > _MAX_EIGENVALUE:
        raise InvalidInput(
            f"the spectrum spans {lo:.3g} .. {hi:.3g}: beyond +-1e300 it cannot be binned; rescale "
            "the loss"
        )
    c = max(big * _LINEAR_FRACTION, _MIN_LINEAR_THRESHOLD) if big > 0 else 1.0
    ax = _axes(ax)
    tops: list[float] = []
    if ev is not None:
        if log:
            edges = _symlog_spaced(lo, hi, bins + 1, c)
        else:
            edges = bins if hi > lo else np.linspace(lo - span / 2, hi + span / 2, bins + 1)
        heights, _, _ = ax.hist(
            ev, bins=edges, density=True, color="C0", alpha=0.6, label=f"eigenvalues ({ev.size})"
        )
        tops.append(float(np.max(heights)))
    if density is not None:
        reach = 4.0 * sig
        if log:
            grid = _symlog_spaced(lo - reach, hi + reach, n, c)
        else:
            grid = np.linspace(lo - reach, hi + reach, n)
        grid = np.union1d(grid, nodes[(nodes >= grid[0]) & (nodes <= grid[-1])])
        dens = density.density(grid, sig)
        tops.append(float(np.max(dens)))
        ax.plot(grid, dens, color="C3", lw=1.3, label=f"spectral density (sigma {sig:.2g})")
    if log:
        ax.set_xscale("symlog", linthresh=c)
        ax.set_yscale("log")
        top = max(tops)
        if top > 0 and math.isfinite(top):
            ax.set_ylim(top * 10.0**-_DENSITY_DECADES, top * _DENSITY_HEADROOM)
    ax.set_xlabel("eigenvalue")
    ax.set_ylabel("density")
    ax.set_title("Hessian spectrum")
    ax.legend(loc="best", fontsize=8)
    return ax


# --------------------------------------------------------------------------------------------
# tangent sensitivity
# --------------------------------------------------------------------------------------------
def sensitivity(values: object, classes: object = None, ax: Any = None, *, bins: int = 30) -> Any:
    """Histogram of per-example tangent sensitivity (``ng.tangent_sensitivity``, ``(N,)``).

    With ``classes`` (``(N,)`` labels) one step histogram per class, on common bins, with a
    legend (class and number of examples).

    Returns:
        the Axes ("tangent sensitivity" / "examples").

    >>> import numpy as np, nngeom as ng
    >>> ax = ng.plots.sensitivity(np.array([0.1, 0.2, 0.4]), classes=[0, 1, 1], bins=3)
    >>> type(ax).__name__
    'Axes'
    """
    v = _vector("values", values)
    bins = check_int("bins", bins, minimum=1, maximum=MAX_BINS)
    labels = None
    if classes is not None:
        import torch

        if isinstance(classes, torch.Tensor):
            if classes.device.type == "meta":
                raise InvalidInput("classes is on the meta device (no values)")
            classes = classes.detach().cpu().numpy()
        try:
            labels = np.asarray(classes)
        except (TypeError, ValueError) as exc:
            raise InvalidInput(f"classes must be one label per example ({exc})") from None
        if labels.ndim == 2 and labels.shape[1] == 1:
            labels = labels[:, 0]
        if labels.ndim != 1 or labels.shape[0] != v.shape[0]:
            raise InvalidInput(
                f"classes must have shape ({v.shape[0]},) like values, got {labels.shape}"
            )
        if labels.dtype == object or np.iscomplexobj(labels):
            raise InvalidInput("classes must be numbers or strings, one label per example")
        if np.issubdtype(labels.dtype, np.floating) and not np.isfinite(labels).all():
            raise InvalidInput("classes contains NaN or inf")
    ax = _axes(ax)
    lo, hi = float(v.min()), float(v.max())
    if not math.isfinite(hi - lo):
        raise InvalidInput(f"values span {lo:.3g} .. {hi:.3g}: too wide to bin in float64")
    edges = np.histogram_bin_edges(
        v, bins=bins, range=(lo, hi) if hi > lo else (lo - 0.5, hi + 0.5)
    )
    if labels is None:
        ax.hist(v, bins=edges, color="C0", alpha=0.75, label=f"{v.size} examples")
    else:
        present = np.unique(labels)
        pal = _palette(len(present))
        for i, c in enumerate(present):
            sel = v[labels == c]
            name = c.item() if hasattr(c, "item") else c
            ax.hist(
                sel,
                bins=edges,
                histtype="step",
                lw=1.5,
                color=pal[i],
                label=f"class {name} ({sel.size})",
            )
        ax.legend(loc="best", fontsize=8)
    ax.set_xlabel("tangent sensitivity")
    ax.set_ylabel("examples")
    ax.set_title("tangent sensitivity per example")
    return ax


# --------------------------------------------------------------------------------------------
# activation shapes
# --------------------------------------------------------------------------------------------
_REFERENCES = {
    "relu": ("ReLU", lambda z: np.maximum(z, 0.0)),
    "identity": ("identity", lambda z: z),
    "tanh": ("tanh", np.tanh),
    "silu": ("SiLU", lambda z: z / (1.0 + np.exp(-z))),
    "gelu": (
        "GELU",
        lambda z: 0.5 * z * (1.0 + np.vectorize(math.erf)(z / math.sqrt(2.0))),
    ),
}


def _activation_curves(module: Any, z: np.ndarray, max_curves: int):
    """``(curves (C, n), knots per curve or None, VAF unit per curve, total copies)`` of an
    element-wise module."""
    import torch

    from .activations import VAF

    if isinstance(module, VAF):
        total = module.n_units
        units = [None] if module.share == "layer" else list(range(min(total, max_curves)))
        ys = [module.evaluate(z, u) for u in units]
        kn = [module.knots(u) for u in units] if module.hidden == "relu" else None
        return np.stack(ys), kn, units, total
    p = next(iter(module.parameters()), None)
    dt = p.dtype if p is not None and p.is_floating_point() else torch.get_default_dtype()
    dev = p.device if p is not None else torch.device("cpu")
    channels = getattr(module, "num_parameters", None)  # nn.PReLU
    total = channels if isinstance(channels, int) and channels > 1 else 1
    C = min(total, max_curves)
    x = torch.as_tensor(z, dtype=dt, device=dev)[:, None].expand(z.size, total).contiguous()
    try:
        with torch.no_grad():
            y = module(x)
    except Exception as exc:  # any failure of the user's module on (n, C) inputs
        raise InvalidInput(
            f"cannot evaluate {type(module).__name__} on inputs of shape {tuple(x.shape)} "
            f"({type(exc).__name__}: {exc}); pass an element-wise activation module"
        ) from None
    if not isinstance(y, torch.Tensor) or tuple(y.shape) != tuple(x.shape):
        raise InvalidInput(
            f"{type(module).__name__} is not element-wise: input {tuple(x.shape)} gave "
            f"{tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__}"
        )
    # element-wise: half of the batch gives the same outputs (no coupling across examples) and,
    # for a shared module, a second feature column does not change the first (none across
    # features); a cheap check, not a proof
    h = max(1, z.size // 2)
    probes = [(x[:h], lambda out: out[:h])]
    if total == 1:
        x2 = torch.cat([x, x.flip(0)], 1)
        probes.append((x2, lambda out: np.concatenate([out, out[::-1]], 1)))
    full = y.detach().cpu().double().numpy()
    finite = np.abs(full[np.isfinite(full)])
    eps = 64 * torch.finfo(y.dtype).eps if y.is_floating_point() else 0.0
    atol = eps * max(1.0, float(finite.max()) if finite.size else 1.0)
    for xin, expect in probes:
        try:
            with torch.no_grad():
                got = module(xin)
            ok = isinstance(got, torch.Tensor) and tuple(got.shape) == tuple(xin.shape)
            ok = ok and np.allclose(
                got.detach().cpu().double().numpy(),
                expect(full),
                rtol=eps,
                atol=atol,
                equal_nan=True,
            )
        except Exception:  # the user's module refused another shape
            ok = False
        if not ok:
            raise InvalidInput(
                f"{type(module).__name__} is not element-wise (its output at one input depends "
                "on the others, or it refuses other shapes); pass an element-wise activation "
                "module"
            )
    Y = full[:, :C].T
    return Y, None, [None] * C, total


def activation(
    module: Any,
    ax: Any = None,
    *,
    lo: float = -3.0,
    hi: float = 3.0,
    reference: str | None = "relu",
    n: int = 401,
    max_curves: int = 8,
) -> Any:
    """Draw the shape of an element-wise activation module on ``[lo, hi]``.

    Args:
        module: an element-wise ``nn.Module``: a :class:`~nngeom.activations.VAF` (each shared
            copy of a per-channel/per-neuron VAF is its own curve, knots marked for ReLU hidden
            units), ``Rational``, ``SwishBeta``, ``nn.PReLU(C)`` (one curve per channel), ...
        reference: a reference activation drawn dashed: ``"relu"``, ``"identity"``, ``"tanh"``,
            ``"silu"``, ``"gelu"``, or None.
        n: sample points.
        max_curves: draw at most this many copies (the title says how many there are).

    Returns:
        the Axes ("z" / "activation(z)"); the module's curves are its first lines.

    >>> import nngeom as ng
    >>> ax = ng.plots.activation(ng.VAF(k=3), n=51)
    >>> type(ax).__name__
    'Axes'
    """
    import torch

    if not isinstance(module, torch.nn.Module):
        raise InvalidInput(f"module must be a torch.nn.Module, got {type(module).__name__}")
    lo = check_number("lo", lo)
    hi = check_number("hi", hi)
    if not lo < hi:
        raise InvalidInput(f"need lo < hi, got lo={lo} and hi={hi}")
    if reference is not None and (not isinstance(reference, str) or reference not in _REFERENCES):
        raise InvalidInput(
            f"reference must be one of {sorted(_REFERENCES)} or None, got {reference!r}"
        )
    n = check_int("n", n, minimum=2, maximum=MAX_SAMPLES)
    max_curves = check_int("max_curves", max_curves, minimum=1, maximum=1000)
    z = np.linspace(lo, hi, n)
    Y, kn, units, total = _activation_curves(module, z, max_curves)
    ax = _axes(ax)
    name = type(module).__name__
    pal = _palette(Y.shape[0])
    for i, y in enumerate(Y):
        label = name if Y.shape[0] == 1 else f"{name} copy {i}"
        line = ax.plot(z, y, color=pal[i], lw=1.5, label=label)[0]
        if kn is not None:
            k_in = kn[i][(kn[i] > lo) & (kn[i] < hi)]
            if k_in.size:
                ax.plot(k_in, module.evaluate(k_in, units[i]), "o", ms=3, color=line.get_color())
    if reference is not None:
        rname, f = _REFERENCES[reference]
        ax.plot(z, f(z), color="0.4", lw=1.0, ls="--", label=rname)
    ax.set_xlabel("z")
    ax.set_ylabel("activation(z)")
    shown = f" (first {Y.shape[0]} of {total} copies)" if total > Y.shape[0] else ""
    ax.set_title(f"{name}{shown}")
    ax.legend(loc="best", fontsize=8)
    return ax


# --------------------------------------------------------------------------------------------
# chaotic time-series forecasts
# --------------------------------------------------------------------------------------------
def forecast(y_true: object, predictions: object, ax: Any = None, *, t: object = None) -> Any:
    """Draw a series and the forecasts of several predictors.

    Args:
        y_true: the true series ``(T,)``.
        predictions: ``{name: forecast (T,)}`` (or one array ``(T,)``); a diverged forecast
            may hold NaN/inf (drawn where finite). The legend gives each one's NRMSE
            (``ng.chaos.nrmse``: RMS error / std of ``y_true``).
        t: times ``(T,)`` (default: steps ``0 .. T-1``).

    Returns:
        the Axes ("t" / "x(t)"); the true series is its first line.

    >>> import numpy as np, nngeom as ng
    >>> ax = ng.plots.forecast(np.arange(5.0), {"linear": np.arange(5.0) + 0.1})
    >>> type(ax).__name__, len(ax.lines)
    ('Axes', 2)
    """
    y = _vector("y_true", y_true)
    if isinstance(predictions, Mapping):
        preds = dict(predictions)
    elif predictions is None or isinstance(predictions, (str, bytes, numbers.Number)):
        raise InvalidInput("predictions must be a dict {name: forecast (T,)} or one array (T,)")
    else:
        preds = {"forecast": predictions}
    if not preds:
        raise InvalidInput("predictions is empty: pass at least one forecast")
    arrays = {}
    for name, p in preds.items():
        a = _vector(f"predictions[{name!r}]", p, finite=False)
        if a.shape != y.shape:
            raise InvalidInput(
                f"predictions[{name!r}] has shape {a.shape}; it must match y_true {y.shape}"
            )
        arrays[str(name)] = a
    if t is None:
        tt = np.arange(y.size, dtype=np.float64)
    else:
        tt = _vector("t", t)
        if tt.shape != y.shape:
            raise InvalidInput(f"t has shape {tt.shape}; it must match y_true {y.shape}")
    from .chaos import nrmse

    ax = _axes(ax, (7.0, 3.5))
    ax.plot(tt, y, color="k", lw=1.6, label="true")
    pal = _palette(len(arrays))
    for i, (name, a) in enumerate(arrays.items()):
        err = nrmse(y, a) if float(np.std(y)) > 0 else math.nan
        shown = np.where(np.isfinite(a), a, np.nan)
        ax.plot(tt, shown, color=pal[i], lw=1.1, ls="--", label=f"{name} (NRMSE {err:.3g})")
    ax.set_xlabel("t")
    ax.set_ylabel("x(t)")
    ax.set_title("forecast")
    ax.legend(loc="best", fontsize=8)
    return ax
