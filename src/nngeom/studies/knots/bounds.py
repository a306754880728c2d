"""Bounds on the knots of one-input ReLU networks: derived here, each step checkable.

Everything in this module is exact integer arithmetic on hidden widths ``n_1, ..., n_L``
(or, in :func:`pieces_per_layer`, exact counting on a given network); nothing is trained.

Notation. A network ``R -> R^p`` with ``L`` hidden ReLU layers; ``h_l(x)`` is the vector of
layer ``l``'s outputs; a *functional* of layer ``l`` is ``w . h_l(x) + c`` (what a unit of layer
``l + 1`` or the affine output layer computes before its activation). A *breakpoint* is a point
where some unit changes activation (so the breakpoints cut the line into *activation pieces*);
a *knot* is a point where the slope of the output changes (every knot is a breakpoint).

The product bound (derived here; Chen 2016 states a bound of this size)
-----------------------------------------------------------------------
Let ``P_l`` be the number of activation pieces of the network truncated after layer ``l``
(``P_0 = 1``: the input line). On each of the ``P_{l-1}`` pieces every unit of layer ``l`` has an
affine pre-activation, which changes sign at most once there; so layer ``l`` cuts each piece into
at most ``n_l + 1`` pieces:

    (step 1)  P_l <= (n_l + 1) P_{l-1},   hence  P_L <= prod_l (n_l + 1);
    (step 2)  knots <= breakpoints = P_L - 1   (the affine output layer adds no breakpoint);

so a network has at most ``prod_l (n_l + 1) - 1`` knots (:func:`product_bound`, the same number
as :func:`nngeom.knot_upper_bound`). :func:`pieces_per_layer` measures ``P_l`` exactly on a given
network, so each step can be checked on any net (the test suite does, on random nets).

A finer bound for narrow widths (derived here)
----------------------------------------------
Step 1 lets every unit cross zero on every piece. For narrow layers that cannot happen: a
functional of a width-1 or width-2 layer fed by one number cannot zigzag. :func:`refined_bound`
runs the recursion below over upper bounds ``(B, K, Q, E)`` of the network truncated after layer
``l``: ``B`` breakpoints; ``K`` zero crossings of any functional; ``Q`` knots of any functional;
``E`` end rays (0-2) on which a functional can be non-constant. Start ``(0, 1, 0, 2)`` (the input
``x``). Layer ``l`` of width ``n``:

* (R1) a unit crosses zero at most ``min(K, B + 1)`` times (once per activation piece, and at
  most ``K`` times in all): ``B' = B + n min(K, B + 1)``;
* (R2) if the layer's input is one number ``y`` (the input ``x``, or a width-1 layer), a
  functional of the layer is ``g(y)`` with ``g`` a one-layer width-``n`` net, which crosses a level
  at most ``r(n)`` times, each level of ``y`` being crossed at most ``K`` times:
  ``K' = r(n) K``, where ``r(1) = 1``, ``r(2) = 2``, ``r(n) = n + 1`` (``n >= 3``); ``r(1), r(2)``
  are proven by the exhaustive search :func:`one_layer_exhaustive` (``n + 1`` pieces bound the
  rest). A width-1 layer: ``K' = K`` (a level ``> 0`` of ``relu(z)`` is a level of ``z``; levels
  ``<= 0`` are not crossed). Otherwise ``K' = B' + 1`` (one crossing per piece);
* (R3) ``Q`` and ``E`` are kept together, as a table: the most kinks of a functional that is
  non-constant on exactly ``j`` end rays (``j = 0, 1, 2``). A layer of width >= 2: ``B'`` kinks for
  every ``j`` up to the previous layer's largest. A width-1 layer: its output ``relu(z)`` has a
  knot only where ``z`` crosses zero or where ``z`` has a kink at which ``z > 0``; with ``q``
  kinks of ``z``, ``c`` sign changes of ``z`` between consecutive kinks and ``e`` crossings on the
  end rays (``c + e <= K``), at least ``floor((c + 1) / 2)`` kinks lie where ``z < 0``, so at most
  ``c + e + q - floor((c + 1) / 2)`` knots; ``relu(z)`` is non-constant only on the end rays
  where ``z -> +inf``, which have no crossing (:func:`relu_step`).
* (R4) a width-1 layer fed by a monotone functional (``K = 1``) leaves one end flat.

The bound on knots is the largest entry of the table when the last hidden layer has width 1,
``B_L`` otherwise. A leading width-1 layer is also reduced (:func:`_leading_one`): the network is
``G(relu(x))`` for a network ``G`` of the remaining widths, and its knots are ``G``'s knots on
``(0, inf)`` plus one knot at 0 when ``G`` is not flat there; this tracks which end rays can be
non-constant. Every rule gives an upper bound, so :func:`refined_bound` is one; where it equals
the count of an exactly counted network the maximum is proven (:func:`status`), otherwise the
maximum is only bracketed.

Serra, Tjandraatmadja & Ramalingam (2018) bound the *activation regions* (here: breakpoints + 1,
an activation region of a one-input net being an interval); :func:`serra_regions` is their
upper bound with input dimension ``n_0 = 1``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

import numpy as np

from ..._checks import TINY
from ...knots import knot_upper_bound, knots

__all__ = [
    "Refined",
    "OneLayerFacts",
    "product_bound",
    "serra_regions",
    "refined_bound",
    "relu_knots_bound",
    "runs_bound",
    "one_layer_exhaustive",
    "one_layer_knots_and_runs",
    "pieces_per_layer",
    "status",
]

NEG = -1  # "no network satisfies the requirement" in the end-ray tables of _leading_one


def product_bound(widths: Sequence[int]) -> int:
    """``prod(n_l + 1) - 1``: the bound derived in the module docstring (steps 1-2); the same
    number as :func:`nngeom.knot_upper_bound`, which it calls."""
    return int(knot_upper_bound(list(widths)))


def serra_regions(widths: Sequence[int], n0: int = 1) -> int:
    """Serra, Tjandraatmadja & Ramalingam (ICML 2018): the upper bound on the number of activation
    regions of a rectifier network with input dimension ``n0`` and hidden widths ``widths``:

        sum over (j_1..j_L) in J of prod_l C(n_l, j_l),
        J = {0 <= j_l <= min(n0, n_1 - j_1, ..., n_{l-1} - j_{l-1}, n_l)}.

    For ``n0 = 1`` every ``j_l`` is 0 or 1, and a ``j_l = 1`` in a width-1 layer forces every
    later ``j`` to 0. With every width >= 2 it equals ``prod(n_l + 1)``.
    """
    ws = [int(n) for n in widths]
    total = 0
    for js in itertools.product(*[range(min(n0, n) + 1) for n in ws]):
        ok = True
        for li, j in enumerate(js):
            cap = min([n0, ws[li]] + [ws[k] - js[k] for k in range(li)])
            if j > cap:
                ok = False
                break
        if ok:
            total += math.prod(math.comb(n, j) for n, j in zip(ws, js, strict=True))
    return total


def runs_bound(n: int) -> int:
    """``r(n)``: the most monotone runs (hence level crossings) of ``w . relu(a x + b) + c`` with
    ``n`` units and one input: 1, 2 for ``n = 1, 2`` (proven by :func:`one_layer_exhaustive`),
    ``n + 1`` (its pieces) otherwise."""
    return n if n <= 2 else n + 1


def relu_step(qe: Sequence[int], k: int) -> tuple[int, int, int]:
    """Rule R3: the knot bounds of ``relu(z)`` for a functional ``z`` of the previous layer.

    ``qe[j]``: the most kinks of a functional that is non-constant on exactly ``j`` end rays
    (``NEG`` if none is); ``k``: the most zero crossings of a functional. Returns the same table
    for ``relu(z)``. ``z`` is affine between consecutive kinks, so it crosses zero there only where
    its sign at the kinks changes (``c`` times; then at least ``floor((c + 1) / 2)`` kinks lie where
    ``z < 0`` and are not knots of ``relu(z)``), plus at most once on each non-constant end ray
    (``e`` times, ``c + e <= k``). ``relu(z)`` is non-constant exactly on the end rays where
    ``z -> +inf``, which then have no crossing, so its count ``j'`` obeys ``j' + e <= j``; a
    monotone ``z`` (``k = 1``) cannot grow on both ends. An affine ``z`` (no kink) crosses at most
    once.
    """
    out = [NEG, NEG, NEG]
    for j, q in enumerate(qe):
        if q == NEG:
            continue
        for j_out in range(j + 1):
            if k == 1 and j_out == 2:
                continue
            best = NEG
            if q == 0:
                if j == 2 and j_out == 2:
                    continue  # a non-constant affine z falls below 0 on one end
                best = 1 if j == 2 else 0  # it crosses zero at most once
            else:
                for e in range(j - j_out + 1):
                    for c in range(q):
                        if c + e <= k:
                            best = max(best, c + e + q - (c + 1) // 2)
            out[j_out] = max(out[j_out], best)
    return (out[0], out[1], out[2])


def relu_knots_bound(q: int, k: int, e: int) -> int:
    """The most knots of ``relu(z)`` when ``z`` has at most ``q`` kinks, crosses zero at most
    ``k`` times and is non-constant on at most ``e`` end rays (:func:`relu_step`)."""
    return max(relu_step([q if j <= e else NEG for j in range(3)], k))


@dataclass(frozen=True)
class Refined:
    """Upper bounds derived for one width list (see the module docstring)."""

    knots: int  # on the knots of any network with these widths
    breakpoints: int  # on its activation breakpoints
    recursion: tuple[tuple[int, int, int, int], ...]  # (B, K, Q, E) after each layer


def _state_recursion(widths: Sequence[int]) -> Refined:
    b, k = 0, 1
    qe: tuple[int, int, int] = (0, NEG, 0)  # functionals of x: constant, or affine (both ends)
    scalar = True  # the layer's input is one number
    steps = []
    for n in widths:
        cross = min(k, b + 1)
        b2 = b + n * cross
        if n == 1:
            qe2 = relu_step(qe, k)
            k2 = k
        else:
            emax = max(j for j in range(3) if qe[j] != NEG)
            qe2 = (b2, b2 if emax >= 1 else NEG, b2 if emax >= 2 else NEG)
            k2 = runs_bound(n) * k if scalar else b2 + 1
        b, k = b2, min(k2, b2 + 1)
        qe = (
            min(qe2[0], b) if qe2[0] != NEG else NEG,
            min(qe2[1], b) if qe2[1] != NEG else NEG,
            min(qe2[2], b) if qe2[2] != NEG else NEG,
        )
        scalar = n == 1
        steps.append((b, k, max(qe), max(j for j in range(3) if qe[j] != NEG)))
    last = widths[-1] if widths else 2
    return Refined(knots=(max(qe) if last == 1 else b), breakpoints=b, recursion=tuple(steps))


@cache
def _leading_one(widths: tuple[int, ...]) -> tuple[int, int, int]:
    """Upper bounds on the knots of ``widths``-networks that are non-constant on (no end ray,
    a given end ray, both end rays): ``(M00, M10, M11)``; ``NEG`` where none exists.

    One layer of width ``n``: ``n`` knots with both ends non-constant, except ``n = 1`` (a ramp
    is flat on one side). A leading width-1 layer: the network is ``G(relu(+-x))`` (the unit's
    scale folded into ``G``), flat on one end; its knots are ``G``'s knots on ``(0, inf)`` plus a
    knot at 0 when ``G`` has slope there. If ``G`` has a knot at or below 0 the total is at most
    ``G``'s knots; if not, ``G`` is non-constant on its left end and the total is at most its
    knots + 1. So ``M00 = max(M00(G), M10(G) + 1)``, ``M10 = max(M10(G), M11(G) + 1)``,
    ``M11 = NEG``. Other leading widths: the state recursion's bound for every requirement.
    """
    if len(widths) == 1:
        n = widths[0]
        return (n, n, n if n >= 2 else NEG)
    if widths[0] != 1:
        u = _state_recursion(widths).knots
        return (u, u, u)
    g00, g10, g11 = _leading_one(widths[1:])
    m00 = max(g00, g10 + 1 if g10 != NEG else NEG)
    m10 = max(g10, g11 + 1 if g11 != NEG else NEG)
    u = _state_recursion(widths).knots
    return (min(m00, u), min(m10, u) if m10 != NEG else NEG, NEG)


def refined_bound(widths: Sequence[int]) -> Refined:
    """The finer upper bounds on knots and breakpoints derived in the module docstring (never
    above :func:`product_bound`)."""
    ws = tuple(int(n) for n in widths)
    r = _state_recursion(ws)
    kn = min(r.knots, _leading_one(ws)[0], product_bound(ws))
    return Refined(
        knots=kn, breakpoints=min(r.breakpoints, product_bound(ws)), recursion=r.recursion
    )


def status(lower: int, upper: int) -> str:
    """``"exact"`` when an exactly counted network attains the proven upper bound,
    ``"bracketed"`` when it stays below (the maximum lies in ``[lower, upper]``), ``"exceeded"``
    when a counted network has more than the upper bound (the bound would be wrong)."""
    if lower > upper:
        return "exceeded"
    return "exact" if lower == upper else "bracketed"


# --------------------------------------------------------------------------------------------
# the exhaustive search over slope-sign sequences of one layer
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class OneLayerFacts:
    """What :func:`one_layer_exhaustive` proved for one width ``n``."""

    n: int
    max_runs: int  # most monotone runs of w . relu(a x + b) + c
    max_relu_knots: int  # most knots of relu(w . relu(a x + b) + c): the [n, 1] network
    patterns: int  # slope-sign patterns enumerated
    feasible: int  # of which realizable


def _slope_feasible(signs: tuple[int, ...]) -> bool:
    """Is there a one-layer net with ``n = len(signs) - 1`` units at distinct kinks, each with a
    nonzero slope change, whose slopes on its ``n + 1`` pieces have these signs?

    A unit ``v relu(f (x - p))`` (``f = +-1``) changes the slope by ``v`` at ``p`` whichever way it
    faces; on the left end only the left-facing units (set ``F``) have slope, ``-v`` each. So
    slopes ``s_0..s_n`` are realizable iff ``s_k != s_{k-1}`` and ``s_0 = -sum_{k in F}(s_k -
    s_{k-1})`` for some ``F``: a linear system in ``s`` per ``F`` and per direction of each
    ``s_k - s_{k-1}`` that the signs leave open, solved as a linear program (homogeneous, so
    strict inequalities become ``>= 1``).
    """
    from scipy.optimize import linprog

    n = len(signs) - 1
    open_dirs = [k for k in range(1, n + 1) if signs[k] == signs[k - 1]]
    if any(signs[k] == 0 for k in open_dirs):
        return False  # two zero slopes in a row: no slope change
    for fset in itertools.product((0, 1), repeat=n):
        for dirs in itertools.product((1, -1), repeat=len(open_dirs)):
            A_ub, b_ub, A_eq, b_eq = [], [], [], []
            bounds = []
            for sg in signs:
                bounds.append((1, None) if sg > 0 else (None, -1) if sg < 0 else (0, 0))
            for k, dr in zip(open_dirs, dirs, strict=True):
                row = [0.0] * (n + 1)
                row[k], row[k - 1] = -dr, dr  # dr * (s_k - s_{k-1}) >= 1
                A_ub.append(row)
                b_ub.append(-1.0)
            eq = [0.0] * (n + 1)
            eq[0] = 1.0
            for k in range(1, n + 1):
                if fset[k - 1]:
                    eq[k] += 1.0
                    eq[k - 1] -= 1.0
            A_eq.append(eq)
            b_eq.append(0.0)
            res = linprog(
                np.zeros(n + 1),
                A_ub=np.array(A_ub) if A_ub else None,
                b_ub=np.array(b_ub) if b_ub else None,
                A_eq=np.array(A_eq),
                b_eq=np.array(b_eq),
                bounds=bounds,
                method="highs",
            )
            if res.status == 0:
                return True
    return False


def _runs(signs: Sequence[int]) -> int:
    nz = [s for s in signs if s != 0]
    return 1 + sum(1 for a, b in itertools.pairwise(nz) if a != b) if nz else 0


def _best_relu_knots(signs: tuple[int, ...]) -> int:
    """Most knots of ``relu(z)`` over the values of ``z`` at its kinks, for these slope signs.

    ``z``'s values ``u_1..u_n`` at its kinks must satisfy ``sign(u_{k+1} - u_k) = sign(s_k)``;
    given such values the gaps between kinks (``(u_{k+1} - u_k) / s_k``) are positive, so every
    sign pattern of the values that obeys these transitions is realizable (a value exactly 0 is
    never needed: moving it off 0 does not lower the count). Knots: sign changes between kinks,
    crossings on the end rays (left when ``sign(u_1) = sign(s_0)``, right when
    ``sign(u_n) = -sign(s_n)``), and the kinks where ``z > 0``.
    """
    n = len(signs) - 1
    best = 0
    for vals in itertools.product((1, -1), repeat=n):
        ok = True
        for k in range(1, n):  # between kink k and k+1 the slope is s_k
            s = signs[k]
            if (s == 0 and vals[k] != vals[k - 1]) or (
                s != 0 and vals[k - 1] == s and vals[k] != s
            ):
                ok = False
                break
        if not ok:
            continue
        cross = sum(1 for a, b in itertools.pairwise(vals) if a != b)
        cross += int(signs[0] != 0 and vals[0] == signs[0])
        cross += int(signs[n] != 0 and vals[-1] == -signs[n])
        best = max(best, cross + sum(1 for v in vals if v > 0))
    return best


@cache
def one_layer_exhaustive(n: int) -> OneLayerFacts:
    """Exhaustive search over the slope-sign sequences of a one-input, one-layer ReLU network
    ``z(x) = sum_i v_i relu(a_i x + b_i) + c`` with ``n`` units.

    The argument. A unit with ``a_i = 0`` or ``v_i = 0`` is a constant, and units with equal kinks
    merge into one kink plus a linear term; either way there are fewer distinct kinks, and the
    counts below are bounded by those of fewer kinks (they grow with the number of kinks). So
    take ``n`` distinct kinks ``p_1 < ... < p_n`` and nonzero slope changes. On its ``n + 1``
    pieces ``z`` has slopes ``s_0..s_n``; every sign sequence in ``{-, 0, +}^(n+1)`` is checked for
    realizability by a linear program (:func:`_slope_feasible`). The monotone runs of ``z`` (and
    so the most times it crosses a level) and the knots of ``relu(z)`` depend only on the slope
    signs and on the signs of ``z`` at its kinks (:func:`_best_relu_knots`), so their maxima over
    all realizable sequences are the maxima over all networks.
    """
    best_runs = best_knots = feasible = patterns = 0
    for signs in itertools.product((-1, 0, 1), repeat=n + 1):
        patterns += 1
        if not _slope_feasible(signs):
            continue
        feasible += 1
        best_runs = max(best_runs, _runs(signs))
        best_knots = max(best_knots, _best_relu_knots(signs))
    return OneLayerFacts(n, best_runs, best_knots, patterns, feasible)


def one_layer_knots_and_runs(v, a, b, c: float = 0.0) -> tuple[int, int]:
    """Brute force for one network ``z = sum v_i relu(a_i x + b_i) + c``: (monotone runs of ``z``,
    knots of ``relu(z)``), by exact counting (:func:`nngeom.knots` on the two networks). Used to
    test :func:`one_layer_exhaustive`."""
    import torch

    v, a, b = (np.asarray(t, dtype=np.float64) for t in (v, a, b))
    n = v.size
    lin1 = torch.nn.Linear(1, n, dtype=torch.float64)
    lin2 = torch.nn.Linear(n, 1, dtype=torch.float64)
    with torch.no_grad():
        lin1.weight.copy_(torch.from_numpy(a[:, None]))
        lin1.bias.copy_(torch.from_numpy(b))
        lin2.weight.copy_(torch.from_numpy(v[None, :]))
        lin2.bias.fill_(float(c))
    z = torch.nn.Sequential(lin1, torch.nn.ReLU(), lin2)
    kz = knots(z)
    slopes = kz.slopes[:, 0]
    tol = 1e-9 * max(float(np.abs(slopes).max()), TINY)
    runs = _runs([int(np.sign(s)) if abs(s) > tol else 0 for s in slopes])
    relu_net = torch.nn.Sequential(z, torch.nn.ReLU(), torch.nn.Linear(1, 1, dtype=torch.float64))
    with torch.no_grad():
        relu_net[2].weight.fill_(1.0)
        relu_net[2].bias.fill_(0.0)
    return runs, knots(relu_net).count


# --------------------------------------------------------------------------------------------
# the derivation's steps on a given network
# --------------------------------------------------------------------------------------------
def pieces_per_layer(model) -> list[int]:
    """``[P_0, P_1, ..., P_L]``: exact activation pieces of ``model`` truncated after each hidden
    layer (``P_0 = 1``), counted by :func:`nngeom.knots` (``n_breakpoints + 1``) on the truncated
    networks (each given an identity readout)."""
    import torch

    mods = list(model)
    lin_idx = [i for i, m in enumerate(mods) if isinstance(m, torch.nn.Linear)]
    out = [1]
    for li in range(len(lin_idx) - 1):
        end = lin_idx[li + 1]  # the hidden layer li's Linear and activation come before it
        width = mods[lin_idx[li]].out_features
        dtype = mods[lin_idx[li]].weight.dtype
        readout = torch.nn.Linear(width, width, dtype=dtype)
        with torch.no_grad():
            readout.weight.copy_(torch.eye(width, dtype=dtype))
            readout.bias.zero_()
        trunc = torch.nn.Sequential(*mods[:end], readout)
        out.append(knots(trunc).n_breakpoints + 1)
    return out
