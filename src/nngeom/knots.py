"""Exact knots of one-input piecewise-linear networks; Chen's upper bound and its tight networks.

Definitions kept apart (Chen 2016, "The Upper Bound on Knots in Neural Networks"):

* an **activation breakpoint** is a point where some hidden unit changes piece (for ReLU: where
  its pre-activation changes sign);
* a **knot** is a point where the slope of at least one output changes.

Every knot is a breakpoint; a breakpoint need not be a knot (``relu(z) - relu(-z) = z``, dead
downstream units, cancellations). :func:`knots` reports both.

Algorithm (exact up to float64 rounding, no sampling): keep the sorted breakpoints found so far and,
on each of the ``K + 1`` pieces between them, the affine coefficients (slope, intercept) of every
unit of the current layer. For layer ``l``: multiply the coefficients by ``W_l`` (one matmul for all
pieces), find every unit's crossings of its activation breakpoints strictly inside each piece from
that piece's own affine form (``t = (beta - c) / a``), merge them into the sorted breakpoints, find
each new piece's parent piece and the unit's activation piece at its midpoint, and apply the
activation's slope and intercept. Cost ``O(sum_l n_l n_{l-1} K_l + K log K)``, all vectorised.
Numerical decisions are judged against a scale-aware tolerance and flagged when close to it;
``exact=True`` recomputes everything in rational arithmetic (:class:`fractions.Fraction`).
"""

from __future__ import annotations

import bisect
import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np
import torch
from torch import nn
from torch.nn.utils import skip_init

from ._callable import make_callable
from ._checks import check_widths
from ._errors import InvalidInput, UnsupportedModel
from ._pieces import _EPS, _TINY, _midpoints, _midpoints_of, _xtol
from .nets import MLP, as_mlp, piecewise_linear_form, resolve
from .slices import line_partition
from .view import ModelView, model_view

__all__ = [
    "Knots",
    "knots",
    "knot_upper_bound",
    "tight_knot_network",
    "layer_forms",
]


# A layer: weight (n_out, n_in), bias (n_out,), activation form (breakpoints (n, m), slopes (n, m+1),
# intercepts (n, m+1)) or None for the affine output layer.
Form = tuple[np.ndarray, np.ndarray, np.ndarray]
Layer = tuple[np.ndarray, np.ndarray, "Form | None"]


# --------------------------------------------------------------------------------------------
# layers of a model
# --------------------------------------------------------------------------------------------
def layer_forms(model: nn.Module | MLP) -> tuple[MLP, list[Layer]]:
    """The float64 numpy layers of a piecewise-linear MLP: ``[(W, b, form or None), ...]``.

    ``W``: ``(n_out, n_in)``; ``b``: ``(n_out,)``; ``form`` is
    :func:`nngeom.nets.piecewise_linear_form` of the layer's activation as numpy arrays, None for
    the last (affine) layer unless the model has an output activation.

    Raises:
        UnsupportedModel: not an MLP, or an activation that is not piecewise linear.
        InvalidModel: NaN or infinite weights.
    """
    view = as_mlp(model, check_finite=False)
    layers: list[Layer] = []
    n_lin = len(view.linears)
    for li, lin in enumerate(view.linears):
        W = lin.weight.detach().to("cpu", torch.float64).numpy()
        b = (
            lin.bias.detach().to("cpu", torch.float64).numpy()
            if lin.bias is not None
            else np.zeros(W.shape[0])
        )
        if not (np.isfinite(W).all() and np.isfinite(b).all()):
            view.check_finite()  # raises InvalidModel with the foundation's message
        act = view.activations[li] if li < n_lin - 1 else view.output_activation
        form: Form | None = None
        if act is not None:
            form = _form_of(act, W.shape[0], li)
        layers.append((W, b, form))
    return view, layers


@functools.lru_cache(maxsize=256)
def _builtin_form(kind: type, slope: float, width: int) -> Form:
    act = nn.LeakyReLU(slope) if kind is nn.LeakyReLU else kind()
    out = tuple(t.numpy().astype(np.float64) for t in piecewise_linear_form(act, width))
    for a in out:
        a.flags.writeable = False
    return out  # type: ignore[return-value]


def _form_of(act: nn.Module, width: int, li: int) -> Form:
    """numpy piecewise-linear form of one activation (cached for ReLU/LeakyReLU/Identity)."""
    if type(act) in (nn.ReLU, nn.Identity):
        return _builtin_form(type(act), 0.0, width)
    if type(act) is nn.LeakyReLU:
        return _builtin_form(nn.LeakyReLU, float(act.negative_slope), width)
    try:
        bp, sl, ic = piecewise_linear_form(act, width)
    except UnsupportedModel as exc:
        raise UnsupportedModel(
            f"knots and linear regions are undefined for a smooth activation: {exc}"
        ) from exc
    form = (
        bp.detach().cpu().numpy().astype(np.float64),
        sl.detach().cpu().numpy().astype(np.float64),
        ic.detach().cpu().numpy().astype(np.float64),
    )
    if (
        form[0].ndim != 2
        or form[1].shape != (width, form[0].shape[1] + 1)
        or form[2].shape != form[1].shape
    ):
        raise UnsupportedModel(
            f"the activation of hidden layer {li} returned a piecewise-linear form of shapes "
            f"{[f.shape for f in form]}; expected (width, m), (width, m+1), (width, m+1)"
        )
    if not all(np.isfinite(f).all() for f in form):
        raise UnsupportedModel(
            f"the activation of hidden layer {li} has a non-finite piecewise-linear form"
        )
    if form[0].shape[1] > 1 and np.any(np.diff(form[0], axis=1) < 0):
        raise UnsupportedModel(
            f"the activation of hidden layer {li} has unsorted breakpoints; sort them ascending"
        )
    return form


def _is_relu(form: Form) -> bool:
    bp, sl, ic = form
    return (
        bp.shape[1] == 1
        and not bp.any()
        and not ic.any()
        and bool((sl[:, 0] == 0).all())
        and bool((sl[:, 1] == 1).all())
    )


# --------------------------------------------------------------------------------------------
# the float64 engine
# --------------------------------------------------------------------------------------------
@dataclass
class _Partition:
    edges: np.ndarray  # (K,) sorted activation breakpoints
    A: np.ndarray  # (K+1, p) output slopes per activation piece
    C: np.ndarray  # (K+1, p) output intercepts
    errA: float  # estimated rounding error of A
    notes: list[str]
    patterns: list[np.ndarray] | None  # per activated layer: (K+1, n_l) piece index (int8/int16)


def _partition(
    layers: Sequence[Layer],
    lo: float,
    hi: float,
    *,
    xrtol: float = 1e-11,
    want_patterns: bool = False,
) -> _Partition:
    """Exact (float64) partition of ``(lo, hi)`` by the activation breakpoints of a 1-input net."""
    edges = np.empty(0)
    A = np.ones((1, 1))
    C = np.zeros((1, 1))
    notes: list[str] = []
    patterns: list[np.ndarray] | None = [] if want_patterns else None
    fan = 1
    errA = 0.0
    for li, (W, b, form) in enumerate(layers):
        Az = A @ W.T
        Cz = C @ W.T + b
        fan += W.shape[1]
        rowsum = float(np.abs(W).sum(1).max()) if W.size else 0.0
        errA = 4.0 * _EPS * fan * max(float(np.abs(A).max()) * rowsum, _TINY)
        errC = (
            4.0 * _EPS * fan * (float(np.abs(C).max()) * rowsum + float(np.abs(b).max(initial=0.0)))
        )
        if form is None:
            A, C = Az, Cz
            continue
        bp, sl, ic = form
        n, m = bp.shape
        if m == 0:  # affine activation (Identity)
            A, C = Az * sl[:, 0], Cz * sl[:, 0] + ic[:, 0]
            if patterns is not None:
                patterns.append(np.zeros(Az.shape, dtype=np.int8))
            continue
        relu = _is_relu(form)
        left = np.concatenate(([lo], edges))[:, None]
        right = np.concatenate((edges, [hi]))[:, None]
        Aeff = np.where(np.abs(Az) > errA, Az, 0.0)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            if relu:
                T = -Cz / Aeff
                xt = _xtol(T, xrtol)
                inside = (T > left + xt) & (T < right - xt)
            else:
                T = (bp[None, :, :] - Cz[:, :, None]) / Aeff[:, :, None]
                xt = _xtol(T, xrtol)
                inside = (T > left[:, :, None] + xt) & (T < right[:, :, None] - xt)
        new = T[inside]
        parent = None
        if new.size:
            new.sort()
            gaps = np.diff(new)
            xtol = _xtol(np.maximum(np.abs(new[1:]), np.abs(new[:-1])), xrtol)
            keep = np.empty(new.size, dtype=bool)
            keep[0] = True
            keep[1:] = gaps > xtol
            if np.any((gaps > 1e-3 * xtol) & (gaps <= xtol)):
                notes.append(
                    f"layer {li}: breakpoints closer than the merge tolerance (relative "
                    f"{xrtol:g}) but not equal in float64 were merged"
                )
            if np.any((gaps > xtol) & (gaps <= 100.0 * xtol)):
                notes.append(f"layer {li}: distinct breakpoints within 100x the merge tolerance")
            new = new[keep]
            merged = np.concatenate((edges, new))
            merged.sort(kind="mergesort")
            parent = np.empty(merged.size + 1, dtype=np.intp)
            parent[0] = 0
            parent[1:] = np.searchsorted(edges, merged, side="right")
            edges = merged
            Az, Cz = Az[parent], Cz[parent]
            if patterns is not None:
                patterns = [q[parent] for q in patterns]
        mids = _midpoints(edges, lo, hi)
        with np.errstate(over="ignore", invalid="ignore"):
            zm = Az * mids[:, None] + Cz
        # ambiguity of the piece decisions: the midpoint value too close to a breakpoint
        errz = errA * np.abs(mids)[:, None] + errC
        if relu:
            close = (np.abs(zm) <= 4.0 * errz) & (np.abs(Az) > errA)
            on = zm > 0
            A = Az * on
            C = Cz * on
            if patterns is not None:
                patterns.append(on.astype(np.int8))
        else:
            r = (zm[:, :, None] > bp[None, :, :]).sum(-1)
            dist = np.abs(zm[:, :, None] - bp[None, :, :]).min(-1)
            close = (dist <= 4.0 * errz) & (np.abs(Az) > errA)
            cols = np.arange(n)[None, :]
            s = sl[cols, r]
            A = s * Az
            C = s * Cz + ic[cols, r]
            if patterns is not None:
                patterns.append(r.astype(np.int16 if m >= 127 else np.int8))
        if close.any():
            notes.append(
                f"layer {li}: {int(close.sum())} unit(s) within rounding of a breakpoint at a "
                "piece's midpoint"
            )
    return _Partition(edges, A, C, errA, notes, patterns)


def _partition_fast(
    layers: Sequence[Layer], lo: float, hi: float, *, xrtol: float = 1e-11
) -> _Partition:
    """Like :func:`_partition` (no patterns) but fused with the next layer's weights.

    On each parent piece the next layer's pre-activation is computed once (at the parent's
    leftmost sub-piece, one matmul over parents), and every crossing adds a rank-one update
    ``delta = (jump of the activation's slope / intercept) * W_next[:, i]``; a cumulative sum of
    these updates gives the next layer's coefficients on every new piece. Cost per layer:
    ``O(K n_l n_{l+1} + E n_{l+1})`` with ``E`` crossings, instead of ``O((K + E) n_l n_{l+1})``.
    """
    layers = list(layers)
    if layers[-1][2] is not None:  # an output activation: add the identity readout
        p = layers[-1][0].shape[0]
        layers.append((np.eye(p), np.zeros(p), None))
    edges = np.empty(0)
    notes: list[str] = []
    W0, b0, _ = layers[0]
    Az = np.ascontiguousarray(W0.T)  # (1, n0): pre-activation slope on the single piece
    Cz = b0[None, :].copy()
    fan = 1 + W0.shape[1]
    errA = 4.0 * _EPS * fan * max(float(np.abs(W0).max(initial=0.0)), _TINY)
    errC = 4.0 * _EPS * fan * max(float(np.abs(b0).max(initial=0.0)), _TINY)
    for li in range(len(layers) - 1):
        form = layers[li][2]
        W2, b2, _ = layers[li + 1]
        fan += W2.shape[1]
        n = Az.shape[1]
        bp, sl, ic = form
        m = bp.shape[1]
        K1 = Az.shape[0]
        if m == 0:
            Az = (Az * sl[:, 0]) @ W2.T
            Cz = (Cz * sl[:, 0] + ic[:, 0]) @ W2.T + b2
            continue
        relu = _is_relu(form)
        left = np.concatenate(([lo], edges))
        right = np.concatenate((edges, [hi]))
        Aeff = np.where(np.abs(Az) > errA, Az, 0.0)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            if relu:  # one breakpoint at 0: 2-D arrays
                T = -Cz / Aeff
                xt = _xtol(T, xrtol)
                inside = (T > left[:, None] + xt) & (T < right[:, None] - xt)
            else:
                T = (bp[None, :, :] - Cz[:, :, None]) / Aeff[:, :, None]
                xt = _xtol(T, xrtol)
                inside = (T > left[:, None, None] + xt) & (T < right[:, None, None] - xt)
        if relu:
            pi, ui = np.nonzero(inside)
            t = T[pi, ui]
            order = np.argsort(t, kind="stable")
            t, pi, ui = t[order], pi[order], ui[order]
            ki = None
        else:
            pi, ui, ki = np.nonzero(inside)
            t = T[pi, ui, ki]
            order = np.argsort(t, kind="stable")
            t, pi, ui, ki = t[order], pi[order], ui[order], ki[order]
        E = pi.size
        start = np.searchsorted(pi, np.arange(K1), side="left")  # first event of each parent
        # the state on each parent's leftmost sub-piece, judged at that sub-piece's midpoint
        # (at least half the merge tolerance away from every crossing)
        has = start < np.concatenate((start[1:], [E]))
        sub_right = right.copy()
        sub_right[has] = t[start[has]]
        mids = _midpoints_of(left, sub_right)
        with np.errstate(over="ignore", invalid="ignore"):
            zmid = Az * mids[:, None] + Cz
        errz = errA * np.abs(mids)[:, None] + errC
        if relu:
            on = zmid > 0
            dist = np.abs(zmid)
        else:
            r_left = (zmid[:, :, None] > bp[None, :, :]).sum(-1)
            dist = np.abs(zmid[:, :, None] - bp[None, :, :]).min(-1)
        close = (dist <= 4.0 * errz) & (np.abs(Az) > errA)
        if close.any():
            notes.append(
                f"layer {li}: {int(close.sum())} unit(s) within rounding of a breakpoint at a "
                "piece's midpoint"
            )
        if relu:
            baseA = (Az * on) @ W2.T  # (K+1, n2)
            baseC = (Cz * on) @ W2.T + b2
        else:
            cols = np.arange(n)[None, :]
            s_left = sl[cols, r_left]
            baseA = (s_left * Az) @ W2.T
            baseC = (s_left * Cz + ic[cols, r_left]) @ W2.T + b2
        if E == 0:
            Az, Cz = baseA, baseC
            errA = 4.0 * _EPS * fan * max(float(np.abs(Az).max(initial=0.0)), _TINY)
            errC = 4.0 * _EPS * fan * max(float(np.abs(Cz).max(initial=0.0)), _TINY)
            continue
        a, c = Az[pi, ui], Cz[pi, ui]
        if relu:  # off -> on moving right when a > 0, on -> off when a < 0
            gA = np.abs(a)
            gC = np.where(a > 0, c, -c)
        else:
            dsl = sl[ui, ki + 1] - sl[ui, ki]
            dic = ic[ui, ki + 1] - ic[ui, ki]
            up = a > 0
            # crossing breakpoint ki of unit ui moving right: up -> piece ki+1, down -> piece ki
            gA = np.where(up, dsl * a, -dsl * a)
            gC = np.where(up, dsl * c + dic, -(dsl * c + dic))
        WT = W2.T  # (n, n2)
        dA = gA[:, None] * WT[ui]  # (E, n2)
        dC = gC[:, None] * WT[ui]
        gaps = np.diff(t)
        xtol = _xtol(np.maximum(np.abs(t[1:]), np.abs(t[:-1])), xrtol)
        newc = np.empty(E, dtype=bool)
        newc[0] = True
        newc[1:] = gaps > xtol
        if np.any((gaps > 1e-3 * xtol) & (gaps <= xtol)):
            notes.append(
                f"layer {li}: breakpoints closer than the merge tolerance (relative {xrtol:g}) "
                "but not equal in float64 were merged"
            )
        if np.any((gaps > xtol) & (gaps <= 100.0 * xtol)):
            notes.append(f"layer {li}: distinct breakpoints within 100x the merge tolerance")
        cid = np.cumsum(newc) - 1  # cluster of each event
        reps = t[newc]
        cparent = pi[newc]
        ncl = reps.size
        # pieces after merging: old edges and cluster representatives, in order
        merged = np.concatenate((edges, reps))
        is_new = np.concatenate((np.zeros(edges.size, bool), np.ones(ncl, bool)))
        idx_new = np.concatenate((np.full(edges.size, -1), np.arange(ncl)))
        o = np.argsort(merged, kind="stable")
        merged, is_new, idx_new = merged[o], is_new[o], idx_new[o]
        # parent of every new piece
        parent = np.empty(merged.size + 1, dtype=np.intp)
        parent[0] = 0
        parent[1:] = np.searchsorted(edges, merged, side="right")
        cumA = np.zeros((E + 1, dA.shape[1]))
        np.cumsum(dA, axis=0, out=cumA[1:])
        cumC = np.zeros((E + 1, dC.shape[1]))
        np.cumsum(dC, axis=0, out=cumC[1:])
        cnt = start[parent].copy()
        ends = np.searchsorted(cid, np.arange(ncl), side="right")  # events up to cluster c
        new_piece = np.flatnonzero(is_new) + 1
        cnt[new_piece] = ends[idx_new[is_new]]
        sp = start[parent]
        Az = baseA[parent] + (cumA[cnt] - cumA[sp])
        Cz = baseC[parent] + (cumC[cnt] - cumC[sp])
        del cparent
        edges = merged
        mag = max(float(np.abs(Az).max(initial=0.0)), _TINY)
        errA = 4.0 * _EPS * (fan + E) * mag
        errC = 4.0 * _EPS * (fan + E) * max(float(np.abs(Cz).max(initial=0.0)), _TINY)
    return _Partition(edges, Az, Cz, errA, notes, None)


# --------------------------------------------------------------------------------------------
# the exact (rational) engine
# --------------------------------------------------------------------------------------------
def _to_frac(x: float) -> Fraction:
    return Fraction(float(x))


def _exact_partition(
    layers: Sequence[Layer], lo: float, hi: float
) -> tuple[list[Fraction], list[list[Fraction]], list[list[Fraction]]]:
    """Rational version of :func:`_partition`: (breakpoints, output slopes, intercepts per piece)."""
    L0 = None if not math.isfinite(lo) else _to_frac(lo)
    H0 = None if not math.isfinite(hi) else _to_frac(hi)
    edges: list[Fraction] = []
    A: list[list[Fraction]] = [[Fraction(1)]]
    C: list[list[Fraction]] = [[Fraction(0)]]
    for W, b, form in layers:
        Wf = [[_to_frac(w) for w in row] for row in W]
        bf = [_to_frac(v) for v in b]
        Az = [[sum((a[k] * row[k] for k in range(len(row))), Fraction(0)) for row in Wf] for a in A]
        Cz = [
            [
                sum((c[k] * row[k] for k in range(len(row))), Fraction(0)) + bi
                for row, bi in zip(Wf, bf, strict=False)
            ]
            for c in C
        ]
        if form is None:
            A, C = Az, Cz
            continue
        bp = [[_to_frac(v) for v in row] for row in form[0]]
        sl = [[_to_frac(v) for v in row] for row in form[1]]
        ic = [[_to_frac(v) for v in row] for row in form[2]]
        found = set(edges)
        for j, (az, cz) in enumerate(zip(Az, Cz, strict=False)):
            lft = L0 if j == 0 else edges[j - 1]
            rgt = H0 if j == len(edges) else edges[j]
            for i, (a, c) in enumerate(zip(az, cz, strict=False)):
                if a == 0:
                    continue
                for beta in bp[i]:
                    t = (beta - c) / a
                    if (lft is None or t > lft) and (rgt is None or t < rgt):
                        found.add(t)
        new_edges = sorted(found)
        nA, nC = [], []
        for j in range(len(new_edges) + 1):
            lft = L0 if j == 0 else new_edges[j - 1]
            rgt = H0 if j == len(new_edges) else new_edges[j]
            if lft is None and rgt is None:
                mid = Fraction(0)
            elif lft is None:
                mid = rgt - 1
            elif rgt is None:
                mid = lft + 1
            else:
                mid = (lft + rgt) / 2
            p = 0 if j == 0 else bisect.bisect_right(edges, new_edges[j - 1])
            rowA, rowC = [], []
            for i, (a, c) in enumerate(zip(Az[p], Cz[p], strict=False)):
                z = a * mid + c
                r = sum(1 for beta in bp[i] if beta < z)
                rowA.append(sl[i][r] * a)
                rowC.append(sl[i][r] * c + ic[i][r])
            nA.append(rowA)
            nC.append(rowC)
        edges, A, C = new_edges, nA, nC
    return edges, A, C


# --------------------------------------------------------------------------------------------
# public: knots
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class Knots:
    """The exact knots of a one-input piecewise-linear network on ``(lo, hi)``.

    Attributes:
        positions: sorted knot positions, ``(count,)`` float64 (points in the open interval
            ``(lo, hi)`` where the slope of at least one output changes).
        count: number of knots (a Python int).
        breakpoints: sorted activation breakpoints, ``(n_breakpoints,)``: points where some unit
            (of any layer) changes piece. ``positions`` is a subset of ``breakpoints``.
        n_breakpoints: their number.
        edges: ``(count + 2,)``: ``lo, positions..., hi`` (may start/end with ``-inf``/``inf``).
        slopes, intercepts: ``(count + 1, n_outputs)``: on the ``j``-th linear piece
            ``(edges[j], edges[j+1])`` the network is ``slopes[j] * x + intercepts[j]``.
        ambiguous: True when a numerical decision was within a factor of the tolerance
            (see ``notes``); then rerun with ``exact=True`` for a small net.
        exact: True when computed in rational arithmetic (``exact_positions`` holds the
            positions as :class:`fractions.Fraction`).

    >>> import torch, nngeom as ng
    >>> k = ng.knots(ng.mlp([1, 4, 1], dtype=torch.float64), -2.0, 2.0)
    >>> type(k).__name__, k.count == len(k.positions), k.lo, k.hi
    ('Knots', True, -2.0, 2.0)
    """

    positions: np.ndarray
    count: int
    breakpoints: np.ndarray
    n_breakpoints: int
    edges: np.ndarray
    slopes: np.ndarray
    intercepts: np.ndarray
    lo: float
    hi: float
    ambiguous: bool = False
    notes: tuple[str, ...] = ()
    exact: bool = False
    exact_positions: tuple[Fraction, ...] | None = None
    float_agrees: bool | None = None  # with exact=True: did the float64 engine agree?
    extra: dict = field(default_factory=dict)

    def plot(self, ax=None, **kwargs):
        """Draw the network's function with its knots (see :func:`nngeom.plots.knots`).
        Returns the matplotlib Axes."""
        from . import plots

        return plots.knots(self, ax, **kwargs)

    def __len__(self) -> int:
        return self.count

    def evaluate(self, x: np.ndarray | float) -> np.ndarray:
        """The network's output from its pieces: ``x`` ``(N,)`` -> ``(N, n_outputs)``."""
        x = np.atleast_1d(np.asarray(x, dtype=np.float64))
        j = np.searchsorted(self.positions, x, side="right")
        return self.slopes[j] * x[:, None] + self.intercepts[j]

    def to_dict(self) -> dict:
        """JSON-able summary (positions as floats; ``inf`` bounds as strings)."""

        def num(v: float) -> float | str:
            return float(v) if math.isfinite(v) else ("inf" if v > 0 else "-inf")

        return {
            "lo": num(self.lo),
            "hi": num(self.hi),
            "count": int(self.count),
            "positions": [float(v) for v in self.positions],
            "n_breakpoints": int(self.n_breakpoints),
            "breakpoints": [float(v) for v in self.breakpoints],
            "slopes": self.slopes.tolist(),
            "intercepts": self.intercepts.tolist(),
            "ambiguous": bool(self.ambiguous),
            "notes": list(self.notes),
            "exact": bool(self.exact),
        }


def _check_interval(lo: float, hi: float) -> tuple[float, float]:
    for name, v in (("lo", lo), ("hi", hi)):
        if isinstance(v, (complex, np.complexfloating)) or (
            isinstance(v, torch.Tensor) and v.is_complex()
        ):
            raise InvalidInput(f"{name} is complex ({v!r}): pass a real number")
        if isinstance(v, (str, bytes, bool)):
            raise InvalidInput(f"{name} must be a number, got {v!r}")
    try:
        lo, hi = float(lo), float(hi)  # type: ignore[arg-type]
    except (TypeError, ValueError, RuntimeError) as exc:
        raise InvalidInput(f"lo and hi must be numbers, got {lo!r} and {hi!r}") from exc
    except OverflowError as exc:
        raise InvalidInput(
            f"lo and hi must be numbers within float64's range (about 1.8e308), got {lo!r} and "
            f"{hi!r}; pass -inf / inf for the whole line"
        ) from exc
    if math.isnan(lo) or math.isnan(hi):
        raise InvalidInput("lo and hi must not be NaN")
    if not lo < hi:
        raise InvalidInput(f"need lo < hi, got lo={lo} and hi={hi}")
    if lo == math.inf or hi == -math.inf:
        raise InvalidInput(f"the interval ({lo}, {hi}) is empty")
    return lo, hi


def _checked(what: str, fn, *args, **kwargs):
    """Run a partition engine; refuse (InvalidModel) results that overflowed float64."""
    from ._errors import InvalidModel

    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        part = fn(*args, **kwargs)
    for name in ("edges", "A", "C", "V", "slopes", "intercepts"):
        a = getattr(part, name, None)
        if a is not None and not np.isfinite(a).all():
            raise InvalidModel(
                f"{what}: the model's values overflow float64 on this slice (NaN or inf from "
                "finite weights, e.g. weights near 1e300); rescale the weights (divide each "
                "layer by a constant: knots and regions do not change) and retry"
            )
    return part


def _window(edges: np.ndarray, lo: float, hi: float) -> tuple[int, int]:
    """``edges[j0:j1]`` are the edges strictly inside ``(lo, hi)``; pieces ``j0..j1`` meet it."""
    return int(np.searchsorted(edges, lo, side="right")), int(
        np.searchsorted(edges, hi, side="left")
    )


def _knots_from(part: _Partition, lo: float, hi: float, rtol: float) -> Knots:
    A, C, edges = part.A, part.C, part.edges
    notes = list(part.notes)
    scale = max(float(np.abs(A).max()), _TINY)
    tol = max(rtol * scale, 64.0 * part.errA)
    if edges.size:
        dA = np.abs(np.diff(A, axis=0)).max(1)
        is_knot = dA > tol
        if np.any((dA > tol / 100.0) & (dA <= tol * 100.0)):
            notes.append(
                f"a slope change within 100x of the knot tolerance {tol:.3g} (relative {rtol:g})"
            )
    else:
        is_knot = np.zeros(0, dtype=bool)
    # ``part`` may cover more than (lo, hi) (the whole line): keep the open interval's share
    j0, j1 = _window(edges, lo, hi)
    edges, is_knot, A, C = edges[j0:j1], is_knot[j0:j1], A[j0 : j1 + 1], C[j0 : j1 + 1]
    positions = edges[is_knot]
    first = np.concatenate(([0], np.flatnonzero(is_knot) + 1))
    return Knots(
        positions=positions,
        count=int(positions.size),
        breakpoints=edges,
        n_breakpoints=int(edges.size),
        edges=np.concatenate(([lo], positions, [hi])),
        slopes=A[first],
        intercepts=C[first],
        lo=lo,
        hi=hi,
        ambiguous=bool(notes),
        notes=tuple(notes),
    )


def knots(
    model: nn.Module | MLP,
    lo: float = -math.inf,
    hi: float = math.inf,
    *,
    exact: bool = False,
    rtol: float = 1e-9,
    max_exact_pieces: int = 20_000,
    input_shape: Sequence[int] | None = None,
) -> Knots:
    """Exact knots of a one-input piecewise-linear network on the open interval ``(lo, hi)``.

    Works for any piecewise-linear model (:mod:`nngeom.view`): ReLU in every spelling,
    LeakyReLU, PReLU, Hardtanh, abs, max-pool, any activation defining
    ``nngeom_piecewise_linear_form`` (several breakpoints per unit), BatchNorm in eval, residual
    branches; any number of outputs, and the whole real line (``lo=-inf, hi=inf``, the
    defaults). Computation is float64; a chain of dense layers runs the vectorised layer-by-layer
    engine (see the module docstring), any other graph the engine of :mod:`nngeom.slices`.

    Args:
        model: a model with one input number (per-example input shape ``(1,)``, or any shape
            of one element given as ``input_shape``).
        lo, hi: the interval (``lo < hi``; may be infinite).
        exact: recompute in rational arithmetic (weights taken as exact binary fractions) and
            return the exact result; ``float_agrees`` says whether the float64 engine agreed.
            Meant for small nets (pure Python; refused above ``max_exact_pieces`` pieces).
        rtol: relative tolerance (to the largest output slope) under which a slope change is
            rounding, not a knot.
        input_shape: the per-example input shape, for a model that does not start with a
            Linear layer.

    Returns:
        :class:`Knots` (positions sorted; ``count`` a Python int; breakpoints separately).

    Raises:
        InvalidInput: ``lo >= hi`` or NaN bounds.
        UnsupportedModel: not one input, not an MLP, or a smooth activation (knots undefined).
        InvalidModel: NaN/inf weights.

    >>> import torch, nngeom as ng
    >>> net = ng.mlp([1, 8, 1], dtype=torch.float64, seed=0)
    >>> k = ng.knots(net, -3.0, 3.0)
    >>> k.count, k.positions.round(3)
    (8, array([-1.16 , -0.419, -0.398, -0.173, -0.056,  0.768,  0.998,  1.019]))
    """
    from ._checks import check_number, check_positive_int

    lo, hi = _check_interval(lo, hi)
    if not isinstance(exact, (bool, np.bool_)):
        raise InvalidInput(f"exact must be True or False, got {exact!r}")
    rtol = check_number("rtol", rtol, minimum=0.0, strict_min=True)
    max_exact_pieces = check_positive_int("max_exact_pieces", max_exact_pieces)
    try:
        src = resolve(model, input_shape)
    except UnsupportedModel:
        if input_shape is not None or isinstance(model, MLP):
            raise
        # one input number: a model that does not start with a Linear layer (e.g. a residual
        # block of its own) takes per-example shape (1,)
        src = resolve(model, (1,))
    if isinstance(src, ModelView):
        return _graph_knots(src, lo, hi, exact=exact, rtol=rtol)
    view, layers = layer_forms(src)
    if view.input_dim != 1:
        raise UnsupportedModel(
            f"knots needs a network with ONE input, this one has {view.input_dim}; use "
            "nngeom.regions_on_line(model, x0, x1) for a line through a higher-dimensional input"
        )
    if not (rtol > 0 and math.isfinite(rtol)):
        raise InvalidInput(f"rtol must be a positive finite number, got {rtol}")
    # the whole line first, then its share of (lo, hi): every breakpoint is found where it is
    # well conditioned (a huge finite interval such as (-1e300, 1e300) scales no tolerance),
    # and the knots in (lo, hi) are exactly the whole line's knots that lie inside it
    # (an interval of moderate size is partitioned directly: the same breakpoints, found
    # without the pieces of the line outside it)
    moderate = max(abs(lo), abs(hi)) <= _MODERATE
    a, b = (lo, hi) if moderate else (-math.inf, math.inf)
    part = _checked("knots", _partition_fast, layers, a, b)
    result = _knots_from(part, lo, hi, rtol)
    if not exact:
        return result
    if result.n_breakpoints + 1 > max_exact_pieces:
        raise InvalidInput(
            f"exact=True is for small nets: this one has {result.n_breakpoints + 1} pieces (more than "
            f"max_exact_pieces={max_exact_pieces}); raise max_exact_pieces or use the float64 result"
        )
    return _exact_knots(layers, lo, hi, result)


# intervals within +-_MODERATE are partitioned directly; wider ones via the whole line
_MODERATE = 1e6


def _graph_knots(view: ModelView, lo: float, hi: float, *, exact: bool, rtol: float) -> Knots:
    """Knots of a model that is a graph (residual, max, ...) rather than a chain."""
    view.require_piecewise_linear("knots")
    shape = view.input_shape
    if shape is None:
        view = model_view(view.module, (1,))
        shape = (1,)
    if int(np.prod(shape)) != 1:
        raise UnsupportedModel(
            f"knots needs a network with ONE input, this one takes shape {tuple(shape)}; use "
            "nngeom.regions_on_line(model, x0, x1) for a line through a higher-dimensional input"
        )
    if not (rtol > 0 and math.isfinite(rtol)):
        raise InvalidInput(f"rtol must be a positive finite number, got {rtol}")
    if exact:
        raise InvalidInput(
            "exact=True (rational arithmetic) is available for chains of dense layers; this "
            f"model is a graph ({view.describe()}): use the float64 result and its "
            "`ambiguous` flag"
        )
    # the whole line, then its share of (lo, hi) (see knots())
    lp = _checked(
        "knots", line_partition, view, np.zeros(shape), np.ones(shape), -math.inf, math.inf
    )
    part = _Partition(lp.edges, lp.A, lp.C, 0.0, list(lp.notes), None)
    return _knots_from(part, lo, hi, rtol)


def _exact_knots(layers: Sequence[Layer], lo: float, hi: float, approx: Knots) -> Knots:
    edges, A, C = _exact_partition(layers, lo, hi)
    is_knot = [A[j] != A[j + 1] for j in range(len(edges))]
    knot_pos = [e for e, k in zip(edges, is_knot, strict=False) if k]
    first = [0] + [j + 1 for j, k in enumerate(is_knot) if k]
    pos = np.array([float(v) for v in knot_pos], dtype=np.float64)
    agrees = approx.count == len(knot_pos) and bool(
        np.allclose(
            approx.positions,
            pos,
            rtol=1e-9,
            atol=1e-9 * max(1.0, float(np.abs(pos).max(initial=0))),
        )
    )
    return Knots(
        positions=pos,
        count=len(knot_pos),
        breakpoints=np.array([float(v) for v in edges], dtype=np.float64),
        n_breakpoints=len(edges),
        edges=np.concatenate(([lo], pos, [hi])),
        slopes=np.array([[float(v) for v in A[j]] for j in first], dtype=np.float64),
        intercepts=np.array([[float(v) for v in C[j]] for j in first], dtype=np.float64),
        lo=lo,
        hi=hi,
        ambiguous=False,
        notes=approx.notes,
        exact=True,
        exact_positions=tuple(knot_pos),
        float_agrees=agrees,
    )


# --------------------------------------------------------------------------------------------
# Chen's bound and networks that attain it
# --------------------------------------------------------------------------------------------
# tight_knot_network builds its weights in memory: at most this many numbers (2 GiB in float64)
MAX_TIGHT_WEIGHTS = 2**28


def knot_upper_bound(widths: Sequence[int]) -> int:
    """Chen's upper bound on the knots of a one-input ReLU net with hidden widths ``n_1..n_L``.

    Theorem (Chen 2016, derived and verified here): a network ``R -> R^p`` with ``L`` hidden
    ReLU layers of widths ``n_1, ..., n_L`` (any output layer) has at most
    ``prod_{i=1..L} (n_i + 1) - 1`` knots. Proof: let ``t_l`` be the knots of the net truncated
    after layer ``l`` (``t_0 = 0``); on each of its ``t_{l-1} + 1`` linear pieces a layer-``l``
    pre-activation is affine, so it crosses zero at most once: ``t_l <= t_{l-1} + n_l (t_{l-1}+1)``,
    i.e. ``t_l + 1 <= (n_l + 1)(t_{l-1} + 1)``. The affine output layer adds no knots.

    When it is attained (found here, verified by exact counting): :func:`tight_knot_network`
    attains it whenever every hidden width except the last is at least 3 and, for more than one
    hidden layer, the last width is at least 2. It cannot be attained otherwise: with a width of
    1 or 2 before the last layer, on each piece a following unit's pre-activation cannot alternate
    in slope over the three sub-pieces (so it misses a crossing), and with a last width of 1 the
    output is flat wherever its single unit is off, so the earlier breakpoints lying in those
    stretches are not knots. Widths ``()`` (no hidden layer) give 0.

    Returns:
        a Python int (exact for any size).

    >>> import nngeom as ng
    >>> ng.knot_upper_bound([3, 3])
    15
    """
    ws = check_widths(widths, allow_empty=True)
    prod = 1
    for w in ws:
        prod *= w + 1
    return prod - 1


def _zigzag(n: int, eps: float) -> tuple[list[float], list[int], list[float], float]:
    """A ReLU zigzag of ``n`` units on ``[0, 1]``: (kinks p_i, facing +-1, coefficients v_i, c).

    ``u(x) = c + sum_i v_i relu(facing_i * (x - p_i))``. For ``n >= 3`` it has ``n + 1`` teeth on
    ``[0, 1]`` with all kinks inside and values alternating between ``-eps`` and ``1 + eps`` at
    ``0, p_1, ..., p_n, 1``. For ``n <= 2`` it has ``n`` such teeth on ``[0, 1]`` and is constant
    (``-eps``) below 0 (kink at 0): the most teeth possible with one or two units.
    """
    span = 1.0 + 2.0 * eps
    if n <= 2:
        if n == 1:
            return [0.0], [1], [span], -eps
        s = 2.0 * span
        return [0.0, 0.5], [1, 1], [s, -2.0 * s], -eps
    m = [1.0] * (n + 1)
    if n % 2 == 1:
        m[0] = 2.0
        left = {n}
    else:
        m[n - 2] = 2.0
        left = {n - 1, n}
    lam = span * sum(1.0 / v for v in m)
    s = [lam * (-1) ** j * m[j] for j in range(n + 1)]
    lengths = [span / (lam * m[j]) for j in range(n + 1)]
    p = list(np.cumsum(lengths[:n]).tolist())
    d = [s[i] - s[i - 1] for i in range(1, n + 1)]
    facing = [-1 if (i + 1) in left else 1 for i in range(n)]
    c = -eps - sum(d[i] * p[i] for i in range(n) if facing[i] < 0)
    return p, facing, d, c


def tight_knot_network(
    widths: Sequence[int], *, dtype: torch.dtype = torch.float64, eps: float = 0.05
) -> nn.Sequential:
    """A 1-input, 1-output ReLU net with hidden ``widths`` and the most knots we can construct.

    Construction (a "folding" net): every hidden layer computes a scalar zigzag of the previous
    layer's scalar, ``u_l = c_l + sum_i v_i relu(a_i u_{l-1} + beta_i)``, folded into the next
    layer's weights. A layer of width ``n >= 3`` has ``n + 1`` teeth, each covering ``[0, 1]``
    (where all later kinks lie), so every later unit crosses zero once on every piece; the last
    hidden layer uses plain ramps ``relu(u - p_i)``. Its exact knot count is therefore
    ``prod (n_i + 1) - 1 = knot_upper_bound(widths)`` whenever all widths but the last are >= 3
    and the last is >= 2 (or there is one hidden layer); verified by exact counting in the tests
    for widths 3..8, depths 1..4. Elsewhere the bound is not attainable; the construction then
    uses ``n`` teeth (plus one constant piece) for a narrow layer, and the study compares it with
    a weight search (which sometimes does better, e.g. widths (1, 1): 2 knots vs 1).

    Returns:
        ``nn.Sequential(Linear(1, n_1), ReLU(), ..., Linear(n_L, 1))`` in ``dtype``.

    >>> import nngeom as ng
    >>> net = ng.tight_knot_network([3, 3])
    >>> ng.knots(net, -10, 10).count
    15
    """
    from ._checks import check_number

    ws = check_widths(widths, allow_empty=True)
    if not ws:
        raise InvalidInput("widths must name at least one hidden layer")
    eps = check_number("eps", eps)
    if not 0 < eps < 0.5:
        raise InvalidInput(f"eps must be in (0, 0.5), got {eps}")
    if not (isinstance(dtype, torch.dtype) and dtype.is_floating_point and not dtype.is_complex):
        raise InvalidInput(f"dtype must be a real floating torch dtype, got {dtype!r}")
    # sizes from the declared widths, before anything is allocated
    sizes = [1, *ws, 1]
    n_weights = sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:], strict=False))
    if n_weights > MAX_TIGHT_WEIGHTS:
        raise InvalidInput(
            f"tight_knot_network{tuple(ws)} would hold {n_weights:,} weights, more than nngeom's "
            f"limit of {MAX_TIGHT_WEIGHTS:,} (MAX_TIGHT_WEIGHTS); knot_upper_bound(widths) "
            "gives the bound for any widths without building the network"
        )
    layers: list[nn.Module] = []
    prev_v = np.ones(1)  # u_{l-1} = prev_c + prev_v . h_{l-1}; u_0 = x
    prev_c = 0.0
    for li, n in enumerate(ws):
        last = li == len(ws) - 1
        if last:
            # ramps at p_i inside (0, 1); for n >= 2 the one at the largest kink faces left with
            # weight 1/2, so the output's slope is nonzero at every tooth end of u_{L-1} (both
            # at -eps and at 1 + eps) and every earlier breakpoint stays a knot
            p = [(i + 0.5) / n for i in range(n)]
            facing = [1] * n
            v = [1.0] * n
            if n >= 2:
                facing[-1], v[-1] = -1, 0.5
            c = 0.0
        else:
            p, facing, v, c = _zigzag(n, eps)
        a = np.array(facing, dtype=np.float64)
        beta = -a * np.array(p)
        W = a[:, None] * prev_v[None, :]
        b = a * prev_c + beta
        lin = skip_init(nn.Linear, W.shape[1], n, dtype=dtype)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(W))
            lin.bias.copy_(torch.from_numpy(b))
        layers += [lin, nn.ReLU()]
        prev_v, prev_c = np.array(v, dtype=np.float64), float(c)
    out = skip_init(nn.Linear, len(prev_v), 1, dtype=dtype)
    with torch.no_grad():
        out.weight.copy_(torch.from_numpy(prev_v[None, :]))
        out.bias.fill_(prev_c)
    layers.append(out)
    return nn.Sequential(*layers)


# `ng.knots(...)` calls the function; `import nngeom.knots` gives this module
make_callable(__name__, knots)
