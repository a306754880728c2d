"""Pieces of lines and planes in float64: the numerics shared by the MLP engines (``knots``,
``regions``) and the graph engines (``slices``).

Intervals: a point inside each piece, the merge tolerance of a crossing. Polygons (padded
``(P, M, 2)`` vertex arrays with counts ``(P,)``): split by a line, pad, area and centroid.
"""

from __future__ import annotations

import math

import numpy as np

from ._checks import TINY as _TINY

# float64's machine epsilon.
_EPS = float(np.finfo(np.float64).eps)
# The largest coordinate a polygon is computed with unscaled (squares stay finite).
_MAX_COORDINATE = 1e150


def _midpoints(edges: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """A point strictly inside each of the ``len(edges) + 1`` pieces of ``(lo, hi)``."""
    return _midpoints_of(np.concatenate(([lo], edges)), np.concatenate((edges, [hi])))


def _midpoints_of(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """A point strictly inside each interval ``(left[j], right[j])`` (pieces in order).

    Only ``left[0]`` may be ``-inf`` and only ``right[-1]`` may be ``inf``. The first and last
    pieces may be far wider than the features of the net (``lo = -1e300``): their point is
    taken within ``max(1, |edge|)`` of their inner edge, so that the pattern there is judged
    where it is well conditioned (no overflow, no rounding of ``a t + c`` at huge ``t``); the
    end pieces of a finite interval then see the same pattern as those of the whole line.
    """
    with np.errstate(invalid="ignore", over="ignore"):
        mid = 0.5 * left + 0.5 * right  # no overflow for bounds near the float64 limit
    l0, r0, l1, r1 = float(left[0]), float(right[0]), float(left[-1]), float(right[-1])
    if math.isfinite(r0):
        mid[0] = max(float(mid[0]), r0 - max(1.0, abs(r0)))
    if math.isfinite(l1):
        mid[-1] = min(float(mid[-1]), l1 + max(1.0, abs(l1)))
    if mid.size == 1 and l0 == -math.inf and r1 == math.inf:
        mid[0] = 0.0
    return mid


def _xtol(T: np.ndarray, xrtol: float) -> np.ndarray:
    """Merge / inside tolerance of crossings ``T``: relative to ``max(1, |T|)``, per crossing.

    Local on purpose: a tolerance relative to the interval's bounds or to the farthest
    breakpoint (``lo = -1e15``, one unit with a tiny weight) would merge distinct breakpoints
    near the origin.
    """
    with np.errstate(invalid="ignore", over="ignore"):
        return xrtol * np.maximum(1.0, np.abs(T))


def _split(V: np.ndarray, nv: np.ndarray, f: np.ndarray, tol: np.ndarray):
    """Split convex polygons by the zero line of ``f`` (values at the vertices).

    V: (S, M, 2); nv: (S,); f: (S, M); tol: (S,). Returns (Vpos, nvpos, Vneg, nvneg), each padded.
    """
    S, M, _ = V.shape
    j = np.arange(M)[None, :]
    valid = j < nv[:, None]
    sg = np.where(f > tol[:, None], 1, np.where(f < -tol[:, None], -1, 0))
    sg = np.where(valid, sg, 0)
    nxt = np.where(j + 1 < nv[:, None], j + 1, 0)
    f_n = np.take_along_axis(f, nxt, 1)
    sg_n = np.take_along_axis(sg, nxt, 1)
    V_n = np.take_along_axis(V, nxt[:, :, None], 1)
    cross = valid & (sg * sg_n < 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        w = np.where(cross, f / (f - f_n), 0.0)
    X = V + w[:, :, None] * (V_n - V)
    out = []
    for side in (1, -1):
        keep_v = valid & (sg * side >= 0)
        emit = np.stack([keep_v, cross], 2).reshape(S, 2 * M)
        pts = np.stack([V, X], 2).reshape(S, 2 * M, 2)
        order = np.argsort(~emit, axis=1, kind="stable")
        pts = np.take_along_axis(pts, order[:, :, None], 1)
        cnt = emit.sum(1)
        Mx = int(cnt.max())
        out += [pts[:, :Mx], cnt]
    return out[0], out[1], out[2], out[3]


def _pad(V: np.ndarray, M: int) -> np.ndarray:
    if V.shape[1] >= M:
        return V
    return np.concatenate([V, np.zeros((V.shape[0], M - V.shape[1], 2))], 1)


def _shoelace(V: np.ndarray, nv: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Areas (P,) and centroids (P, 2) of padded polygons (each scaled by its own size first, so
    vertices near the float64 limit give an ``inf`` area, never NaN)."""
    m = np.abs(V).max((1, 2)) if V.size else np.zeros(V.shape[0])
    m = np.where(m > 0, m, 1.0)
    if float(m.max(initial=1.0)) > _MAX_COORDINATE:
        area, cen = _shoelace(V / m[:, None, None], nv)
        with np.errstate(over="ignore"):
            return area * m * m, cen * m[:, None]
    M = V.shape[1]
    j = np.arange(M)[None, :]
    nxt = np.where(j + 1 < nv[:, None], j + 1, 0)
    Vn = np.take_along_axis(V, nxt[:, :, None], 1)
    valid = j < nv[:, None]
    cr = np.where(valid, V[..., 0] * Vn[..., 1] - Vn[..., 0] * V[..., 1], 0.0)
    area2 = cr.sum(1)
    with np.errstate(divide="ignore", invalid="ignore"):
        cx = ((V[..., 0] + Vn[..., 0]) * cr).sum(1) / (3.0 * area2)
        cy = ((V[..., 1] + Vn[..., 1]) * cr).sum(1) / (3.0 * area2)
    mean = np.where(valid[..., None], V, 0.0).sum(1) / nv[:, None]
    cen = np.stack([cx, cy], 1)
    bad = ~np.isfinite(cen).all(1) | (np.abs(area2) < _TINY)
    cen[bad] = mean[bad]
    return 0.5 * area2, cen
