"""Planar helpers for the region benchmarks: convex-polygon clipping and decision-boundary length.

Polygons are padded arrays: ``V`` of shape ``(P, M, 2)`` (counter-clockwise) with ``nv`` of shape
``(P,)`` giving how many leading vertices of each row are used.
"""

from __future__ import annotations

import numpy as np


def clip_halfplanes(V: np.ndarray, nv: np.ndarray, a: np.ndarray, c: np.ndarray):
    """Clip each convex polygon ``i`` to ``{x : a[i] @ x + c[i] >= 0}`` (Sutherland-Hodgman).

    a: (P, 2); c: (P,). Returns the clipped ``(V, nv)`` (``nv`` may be 0: empty).
    """
    P, M, _ = V.shape
    if P == 0:
        return V, nv
    j = np.arange(M)[None, :]
    valid = j < nv[:, None]
    f = V[..., 0] * a[:, None, 0] + V[..., 1] * a[:, None, 1] + c[:, None]
    scale = np.abs(a).sum(1) * np.abs(V).max((1, 2)) + np.abs(c)
    tol = 1e-12 * scale
    inside = valid & (f >= -tol[:, None])
    nxt = np.where(j + 1 < nv[:, None], j + 1, 0)
    f_n = np.take_along_axis(f, nxt, 1)
    in_n = np.take_along_axis(inside, nxt, 1)
    V_n = np.take_along_axis(V, nxt[:, :, None], 1)
    cross = valid & (inside != in_n) & (np.abs(f - f_n) > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        w = np.where(cross, f / (f - f_n), 0.0)
    X = V + w[:, :, None] * (V_n - V)
    emit = np.stack([inside, cross], 2).reshape(P, 2 * M)
    pts = np.stack([V, X], 2).reshape(P, 2 * M, 2)
    order = np.argsort(~emit, axis=1, kind="stable")
    pts = np.take_along_axis(pts, order[:, :, None], 1)
    cnt = emit.sum(1)
    Mx = max(int(cnt.max()), 1)
    return pts[:, :Mx], cnt


def perimeters(V: np.ndarray, nv: np.ndarray) -> np.ndarray:
    P, M, _ = V.shape
    j = np.arange(M)[None, :]
    nxt = np.where(j + 1 < nv[:, None], j + 1, 0)
    Vn = np.take_along_axis(V, nxt[:, :, None], 1)
    L = np.linalg.norm(Vn - V, axis=2)
    return np.where((j < nv[:, None]) & (nv[:, None] >= 2), L, 0.0).sum(1)


def decision_boundary_length(
    V: np.ndarray, nv: np.ndarray, slopes: np.ndarray, intercepts: np.ndarray
) -> tuple[float, int]:
    """Total length of the argmax decision boundary inside a partition into affine pieces.

    On polygon ``i`` the logits are ``slopes[i] @ (s, t) + intercepts[i]`` (slopes ``(P, K, 2)``).
    Polygons whose vertices all have the same winner lie in that class's (convex) cell; the others
    are clipped into the ``K`` cells ``{l_k >= l_j for all j}``, and the boundary inside a polygon
    is half of (sum of its cells' perimeters - its perimeter). Returns (length, polygons crossed).
    """
    P, M, _ = V.shape
    K = slopes.shape[1]
    logits = np.einsum("pmd,pkd->pmk", V, slopes) + intercepts[:, None, :]
    win = logits.argmax(2)
    valid = np.arange(M)[None, :] < nv[:, None]
    first = win[:, :1]
    mixed = np.flatnonzero((valid & (win != first)).any(1))
    if mixed.size == 0:
        return 0.0, 0
    Vm, nvm = V[mixed], nv[mixed]
    A, c = slopes[mixed], intercepts[mixed]
    total = 0.0
    for k in range(K):
        Vc, nc = Vm, nvm
        for j2 in range(K):
            if j2 == k:
                continue
            Vc, nc = clip_halfplanes(Vc, nc, A[:, k] - A[:, j2], c[:, k] - c[:, j2])
        total += float(perimeters(Vc, nc).sum())
    total -= float(perimeters(Vm, nvm).sum())
    return 0.5 * total, int(mixed.size)


def segments_length(seg: np.ndarray) -> float:
    """Total length of segments ``(K, 2, 2)``."""
    seg = np.asarray(seg, dtype=np.float64).reshape(-1, 2, 2)
    return float(np.linalg.norm(seg[:, 1] - seg[:, 0], axis=1).sum())
