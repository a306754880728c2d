"""Lower bounds on the most knots: a seeded hill climb over the weights of small 1-input nets.

A search result is a *lower bound* on the maximum (some network has that many knots), never the
maximum itself; it is reported as a maximum only where it attains a proven upper bound
(:mod:`.bounds`). Every reported count is recounted in exact rational arithmetic
(:func:`nngeom.knots` with ``exact=True``), so a lower bound is never a rounding artifact.

:func:`count_small` is a plain-Python exact-up-to-rounding counter for networks of a few units
(no array overhead; the hill climb calls it hundreds of thousands of times); the test suite
checks it against :func:`nngeom.knots`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ..._checks import TINY
from ..._random import numpy_rng
from ...knots import knots, tight_knot_network
from ...nets import mlp

__all__ = ["count_small", "theta_of", "net_of", "exact_counts", "SearchOutcome", "hill_climb"]

KNOT_RTOL = 1e-9  # a slope change above this times the largest slope is a knot (knots' default)
X_RTOL = 1e-11  # crossings closer than this (relative to max(1, |x|)) to an edge are not inside
# The hill climb's step: Gaussian, of size sigma * (|theta| + STEP_OFFSET); sigma starts at
# STEP_START, grows by STEP_GROW after an accepted step (at most STEP_MAX) and shrinks by
# STEP_SHRINK after a rejected one (at least STEP_MIN).
STEP_START, STEP_OFFSET = 0.3, 0.1
STEP_GROW, STEP_MAX = 1.2, 2.0
STEP_SHRINK, STEP_MIN = 0.95, 1e-3
# Random starts are drawn with seeds seed * START_SEED_STRIDE + start (a prime stride).
START_SEED_STRIDE = 7919
MAX_WEIGHT = 1e6  # a candidate with a larger weight is rejected (keeps every count in range)


def _layers(theta: Sequence[float], sizes: Sequence[int]) -> list[tuple[list, list]]:
    out, i = [], 0
    for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=True):
        W = [list(map(float, theta[i + r * n_in : i + (r + 1) * n_in])) for r in range(n_out)]
        i += n_in * n_out
        b = list(map(float, theta[i : i + n_out]))
        i += n_out
        out.append((W, b))
    return out


def _mid(lo: float, hi: float) -> float:
    if lo == -math.inf and hi == math.inf:
        return 0.0
    if lo == -math.inf:
        return hi - max(1.0, abs(hi))
    if hi == math.inf:
        return lo + max(1.0, abs(lo))
    return 0.5 * (lo + hi)


def count_small(theta: Sequence[float], sizes: Sequence[int]) -> tuple[int, int]:
    """``(knots, breakpoints)`` of the ReLU net ``sizes = [1, n_1, ..., n_L, p]`` with flat
    parameters ``theta`` (per layer: weight rows, then biases), on the whole line."""
    layers = _layers(theta, sizes)
    edges: list[float] = []
    A: list[list[float]] = [[1.0]]  # per piece: slopes of the current layer's outputs
    C: list[list[float]] = [[0.0]]  # per piece: their intercepts
    for W, b in layers[:-1]:
        new_edges: list[float] = []
        nA: list[list[float]] = []
        nC: list[list[float]] = []
        for k in range(len(A)):
            lo = edges[k - 1] if k > 0 else -math.inf
            hi = edges[k] if k < len(edges) else math.inf
            a_k, c_k = A[k], C[k]
            za = [sum(w * a for w, a in zip(row, a_k, strict=True)) for row in W]
            zc = [
                sum(w * c for w, c in zip(row, c_k, strict=True)) + bj
                for row, bj in zip(W, b, strict=True)
            ]
            ts = []
            for a, c in zip(za, zc, strict=True):
                if a != 0.0:
                    t = -c / a
                    tol = X_RTOL * max(1.0, abs(t))
                    if lo + tol < t < hi - tol:
                        ts.append(t)
            ts.sort()
            merged: list[float] = []
            for t in ts:
                if not merged or t - merged[-1] > X_RTOL * max(1.0, abs(t)):
                    merged.append(t)
            bounds = [lo, *merged, hi]
            for s in range(len(bounds) - 1):
                m = _mid(bounds[s], bounds[s + 1])
                on = [a * m + c > 0.0 for a, c in zip(za, zc, strict=True)]
                nA.append([a if o else 0.0 for a, o in zip(za, on, strict=True)])
                nC.append([c if o else 0.0 for c, o in zip(zc, on, strict=True)])
            new_edges.extend(merged)
            if k < len(edges):
                new_edges.append(edges[k])
        edges, A, C = new_edges, nA, nC
    Wo, _ = layers[-1]
    slopes = [[sum(w * a for w, a in zip(row, a_k, strict=True)) for row in Wo] for a_k in A]
    scale = max((abs(v) for row in slopes for v in row), default=0.0)
    tol = KNOT_RTOL * max(scale, TINY)
    n_knots = sum(
        1
        for s0, s1 in zip(slopes[:-1], slopes[1:], strict=True)
        if max(abs(u - v) for u, v in zip(s0, s1, strict=True)) > tol
    )
    return n_knots, len(edges)


def theta_of(net: torch.nn.Module) -> list[float]:
    """The flat parameters of a ``Sequential(Linear, ReLU, ..., Linear)`` (the order
    :func:`count_small` reads)."""
    return [float(v) for p in net.parameters() for v in p.detach().double().reshape(-1)]


def net_of(theta: Sequence[float], sizes: Sequence[int]) -> torch.nn.Sequential:
    """The float64 ``Sequential`` with these flat parameters."""
    mods: list[torch.nn.Module] = []
    for li, (W, b) in enumerate(_layers(theta, sizes)):
        lin = torch.nn.Linear(len(W[0]), len(W), dtype=torch.float64)
        with torch.no_grad():
            lin.weight.copy_(torch.tensor(W, dtype=torch.float64))
            lin.bias.copy_(torch.tensor(b, dtype=torch.float64))
        mods.append(lin)
        if li < len(sizes) - 2:
            mods.append(torch.nn.ReLU())
    return torch.nn.Sequential(*mods)


def exact_counts(theta: Sequence[float], sizes: Sequence[int]) -> tuple[int, int]:
    """``(knots, breakpoints)`` in exact rational arithmetic (the float64 weights taken as exact
    binary fractions): :func:`nngeom.knots` with ``exact=True``."""
    k = knots(net_of(theta, sizes), exact=True)
    return int(k.count), int(k.n_breakpoints)


@dataclass(frozen=True)
class SearchOutcome:
    """The best network found for one objective (counts exact, rational recount)."""

    knots: int
    breakpoints: int
    theta: tuple[float, ...]
    evaluations: int
    reached_target: bool


def hill_climb(
    widths: Sequence[int],
    *,
    objective: str,
    steps: int,
    starts: int,
    seed: int,
    target: int | None = None,
) -> SearchOutcome:
    """Maximise ``objective`` (``"knots"`` or ``"breakpoints"``) of a ``[1, *widths, 1]`` ReLU
    net by hill climbing (a step is kept when the count does not drop), from the construction
    :func:`nngeom.tight_knot_network` and ``starts`` random nets (:func:`nngeom.mlp`, seeds
    ``seed * START_SEED_STRIDE + s``). Stops early once ``target`` (a proven upper bound) is
    reached. Each restart's best net is recounted exactly; the best exact count is returned."""
    if objective not in ("knots", "breakpoints"):
        raise ValueError(f"objective must be 'knots' or 'breakpoints', got {objective!r}")
    idx = 0 if objective == "knots" else 1
    sizes = [1, *widths, 1]
    rng = numpy_rng(seed)
    inits = [np.array(theta_of(tight_knot_network(list(widths))))]
    for s in range(starts):
        net = mlp(sizes, seed=seed * START_SEED_STRIDE + s, dtype=torch.float64)
        inits.append(np.array(theta_of(net)))
    evals = 0
    finalists: list[np.ndarray] = []
    for theta in inits:
        cur = count_small(theta, sizes)[idx]
        evals += 1
        sigma = STEP_START
        for _ in range(steps):
            if target is not None and cur >= target:
                break
            cand = theta + sigma * rng.standard_normal(theta.size) * (np.abs(theta) + STEP_OFFSET)
            if not np.abs(cand).max() <= MAX_WEIGHT:  # also rejects NaN
                sigma = max(sigma * STEP_SHRINK, STEP_MIN)
                continue
            k = count_small(cand, sizes)[idx]
            evals += 1
            if k >= cur:
                theta, cur = cand, k
                sigma = min(sigma * STEP_GROW, STEP_MAX)
            else:
                sigma = max(sigma * STEP_SHRINK, STEP_MIN)
        finalists.append(theta)
        if target is not None and cur >= target:
            break
    best: tuple[int, int, tuple[float, ...]] | None = None
    for theta in finalists:
        kn, bp = exact_counts(theta.tolist(), sizes)
        score = (kn, bp) if idx == 0 else (bp, kn)
        if best is None or score > ((best[0], best[1]) if idx == 0 else (best[1], best[0])):
            best = (kn, bp, tuple(float(v) for v in theta))
    assert best is not None
    got = best[idx]
    return SearchOutcome(
        knots=best[0],
        breakpoints=best[1],
        theta=best[2],
        evaluations=evals,
        reached_target=target is not None and got >= target,
    )
