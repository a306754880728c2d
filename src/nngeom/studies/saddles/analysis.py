"""The saddles study's verdicts, protocol, departures, notes and tables: pure functions of the
finished ``(task, result)`` pairs (no training, no matplotlib).

What ``index + zeros >= n_{k+1}`` implies (derived here, not in the paper). At a permutation
point of neurons ``i, j`` of layer ``k`` (equal incoming vectors), the loss is constant along
the ``n_{k+1}`` directions ``D`` = ``(delta on a_i, -delta on a_j)``, so ``D^T H D = 0``. Let
``r = rank(H D)``. Then

* ``n_{k+1} - r`` of these directions lie in the Hessian's kernel: ``zeros >= n_{k+1} - r``;
* ``H D`` is orthogonal to ``D``, and on the ``2r``-dimensional span of the ``r`` directions
  with ``H d != 0`` and their images the Hessian's compression is ``[[0, B^T], [B, C]]`` with
  ``B`` invertible, which has ``r`` negative and ``r`` positive eigenvalues; by Cauchy
  interlacing ``index >= r`` (and ``positives >= r``).

Hence ``index + zeros >= n_{k+1}``, and a first-order saddle (index 1) needs ``r <= 1``: at
least ``n_{k+1} - 1`` zero modes among the flat directions. ``H (delta, -delta)`` is
``(G delta, -G delta)`` on the pair's incoming vectors, ``G`` the ``(fan-in) x n_{k+1}``
matrix of per-output gradients; a critical point makes ``G a = 0`` (``a``: the merged
outgoing vector), so ``r <= min(n_{k+1} - 1, fan-in)``, ``r = 0`` when ``n_{k+1} = 1`` and,
for generic data, ``r = min(n_{k+1} - 1, fan-in)``: a permutation point of a layer feeding
``n_{k+1} >= 3`` units is then a saddle of index at least 2, not a first-order saddle, and has
fewer than ``n_{k+1}`` zero eigenvalues unless other degeneracies add some.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..._checks import TINY
from .._base import Table
from .._typed import Pairs, pairs_of
from .._verdicts import Claim, Measured, Verdict, beyond, count_of, not_run, some_of
from .tasks import (
    CRITICAL_GRAD,
    FLAT_RANK_RTOL,
    GLOBAL_LOSS,
    ZERO_RTOL,
    CountingResult,
    CountingTask,
    MnistTask,
    MultilayerResult,
    TeacherMultilayerTask,
    ToyResult,
    ToyTask,
)

PAPER = (
    'J. Brea, B. Simsek, B. Illing, W. Gerstner, "Weight-space symmetry in deep networks gives '
    'rise to permutation saddles, connected by equal-loss valleys across the loss landscape", '
    "arXiv:1907.02911 (2019)"
)

PATH_RTOL = 1e-9  # a path has constant loss: relative variation at most this ...
PATH_ATOL = 1e-15  # ... or absolute variation at most this (a point at numerically zero loss)
EMBED_FACTOR = 2.0  # the embedded point's gradient norm is at most sqrt(2) x the reduced net's

CLAIM_CRITICAL = Claim(
    "Permutation points (a critical point of the net with neurons i, j merged, split back) are "
    "critical points of the loss",
    "Abstract; Sec. 3",
)
CLAIM_ZEROS = "Such permutation points are critical points with at least n_{k+1} vanishing Hessian eigenvalues"
CLAIM_ZEROS_SINGLE = Claim(
    CLAIM_ZEROS + " -- layers feeding one unit (n_{k+1} = 1)", "Abstract; Sec. 3"
)
CLAIM_ZEROS_MULTI = Claim(
    CLAIM_ZEROS + " -- layers feeding several units (n_{k+1} > 1)", "Abstract; Sec. 3"
)
CLAIM_FIRST_TOY = Claim(
    "Some permutation points are first-order saddles: first, in a toy network with a single "
    "hidden layer on a function approximation task",
    "Abstract; toy experiment",
)
CLAIM_FIRST_MNIST = Claim(
    "Some permutation points are first-order saddles: second, in a multilayer network on the "
    "MNIST task (784-100-100-10; here Fashion-MNIST as the stand-in)",
    "Abstract; MNIST experiment",
)
CLAIM_VALLEY = Claim(
    "A permutation point transits into a flat valley that enables all n_k! permutations of "
    "the layer's neurons at the same loss value",
    "Abstract; Sec. 3",
)
CLAIM_COUNT = Claim(
    "The number of K-th order permutation points exceeds the number of equivalent global minima "
    "by at least the factor sum_k C(n_k - K, K) / 2!^K",
    "Abstract; Sec. 4",
)
CLAIM_BOUND = Claim(
    "Derived here: at a permutation point index >= rank(H D) and zeros >= n_{k+1} - rank(H D) "
    "(so index + zeros >= n_{k+1}); a first-order saddle needs rank(H D) <= 1",
    "this study (see the notes)",
)
CLAIM_BARRIER = Claim(
    "Between a student and its (0 1)-swapped copy, the straight line crosses a loss barrier "
    "that an optimised Bezier curve lowers (mode connectivity, Garipov et al. 2018)",
    "not in the paper",
)


# ------------------------------------------------------------------------------------------
# the permutation points of all tasks, in one shape


@dataclass(frozen=True)
class Point:
    """One permutation point of any task (see :func:`points`)."""

    case: str  # "toy" (single output), "toy-multi", "teacher", "onehot"
    label: str
    n_next: int
    grad_norm: float
    reduced_grad_norm: float
    tol: float
    converged: bool
    full: bool
    index: int
    index_exact: bool
    zeros: int | None  # zero eigenvalues without the data-null directions (full spectrum only)
    flat_rank: int
    # a lower bound on the n_{k+1}-th smallest |eigenvalue| / max|eigenvalue| (full spectra)
    nth_abs: float | None = None

    @property
    def reduced_converged(self) -> bool:
        return self.reduced_grad_norm <= self.tol

    @property
    def bound_ok(self) -> bool | None:
        """``index >= rank(H D)`` and ``zeros >= n_next - rank(H D)`` (None: not checkable)."""
        if not (self.full and self.index_exact and self.zeros is not None):
            return None
        return self.index >= self.flat_rank and self.zeros >= self.n_next - self.flat_rank


def _toys(pairs: Pairs) -> list[tuple[ToyTask, ToyResult]]:
    out = pairs_of(pairs, ToyTask, ToyResult)
    return sorted(out, key=lambda p: (p[1].outputs, p[1].width, p[1].seed))


def _multis(pairs: Pairs) -> list[tuple[object, MultilayerResult]]:
    return pairs_of(pairs, result=MultilayerResult)


def _counting(pairs: Pairs) -> list[CountingResult]:
    return [r for _, r in pairs_of(pairs, CountingTask, CountingResult)]


def points(pairs: Pairs) -> list[Point]:
    """Every permutation point of the run: toy pairs and multilayer points."""
    out: list[Point] = []
    for t, r in _toys(pairs):
        case = "toy" if r.outputs == 1 else "toy-multi"
        for k in range(len(r.pair_i)):
            out.append(
                Point(
                    case=case,
                    label=f"toy {r.outputs} output(s), width {r.width}, seed {r.seed}, "
                    f"pair ({r.pair_i[k]} {r.pair_j[k]})",
                    n_next=r.n_next,
                    grad_norm=r.grad_norm[k],
                    reduced_grad_norm=r.reduced_grad_norm[k],
                    tol=t.grad_tol,
                    converged=r.converged[k],
                    full=True,
                    index=r.index[k],
                    index_exact=True,
                    zeros=r.zeros[k],
                    flat_rank=r.flat_rank[k],
                    nth_abs=_nth_abs(r.eigenvalues[k], r.n_next),
                )
            )
    for t, r in _multis(pairs):
        out.append(
            Point(
                case=r.case,
                label=f"{'constructed' if r.case == 'teacher' else 'one-hot'} "
                f"{_sizes(r)} on {r.dataset}, pair ({r.i} {r.j}) of layer 2",
                n_next=r.n_next,
                grad_norm=r.grad_norm,
                reduced_grad_norm=r.reduced_grad_norm,
                tol=getattr(t, "grad_tol", CRITICAL_GRAD),
                converged=r.converged,
                full=r.full_spectrum,
                index=r.index,
                index_exact=r.index_exact,
                zeros=r.zeros_free,
                flat_rank=r.flat_rank,
                nth_abs=(
                    r.zero_gap[1]
                    if r.zero_gap and r.zeros_free is not None and r.zeros_free < r.n_next
                    else None
                ),
            )
        )
    return out


def _nth_abs(eigenvalues: Sequence[float], n: int) -> float | None:
    a = np.sort(np.abs(np.asarray(eigenvalues, dtype=float)))
    if a.size < n or a.size == 0:
        return None
    return float(a[n - 1] / max(a[-1], TINY))


def _sizes(r: MultilayerResult) -> str:
    return "-".join(map(str, r.sizes))


def _tol(x: float) -> str:
    """A tolerance as written in the report: ``1e-8``, not ``1e-08``."""
    return f"{x:.0e}".replace("e-0", "e-")


# ------------------------------------------------------------------------------------------
# verdicts


def verdicts(pairs: Pairs) -> list[Verdict]:
    """One verdict per claim, computed from the results (see the module docstring)."""
    pts = points(pairs)
    out: list[Verdict] = []

    # critical points: among points whose reduced net met the criterion
    base = [p for p in pts if p.reduced_converged]
    held = sum(1 for p in base if p.grad_norm <= EMBED_FACTOR * p.tol)
    out.append(
        count_of(
            "saddles.critical",
            CLAIM_CRITICAL,
            held,
            len(base),
            what=f"points whose reduced net met the criterion with gradient norm <= "
            f"{EMBED_FACTOR:g} x {_tol(CRITICAL_GRAD)} after splitting",
        )
    )

    certified = [p for p in pts if p.converged and p.full and p.zeros is not None]
    single = [p for p in certified if p.n_next == 1]
    multi = [p for p in certified if p.n_next > 1]
    for key, claim, group, label in (
        ("saddles.zeros_single", CLAIM_ZEROS_SINGLE, single, "n_{k+1} = 1"),
        ("saddles.zeros_multi", CLAIM_ZEROS_MULTI, multi, "n_{k+1} > 1"),
    ):
        out.append(
            count_of(
                key,
                claim,
                sum(1 for p in group if (p.zeros or 0) >= p.n_next),
                len(group),
                what=f"certified critical points ({label}, full spectrum) with >= n_{{k+1}} "
                f"zero eigenvalues (|lambda| <= {_tol(ZERO_RTOL)} max|lambda|)",
            )
        )

    toy1 = [p for p in pts if p.case == "toy" and p.converged]
    out.append(
        some_of(
            "saddles.first_order_toy",
            CLAIM_FIRST_TOY,
            sum(1 for p in toy1 if p.index == 1),
            len(toy1),
            what="first-order saddles (index 1) among certified toy permutation points",
        )
    )

    out.append(_first_order_mnist(pts))
    out.append(_valley(pairs))
    out.append(_count_verdict(pairs))
    out.append(_bound_verdict(pts))
    out.append(_barrier_verdict(pairs))
    return out


MNIST_CRITERION = (
    "reproduced if a certified critical point of the 784-100-100-10 net has index exactly 1; "
    "a point with at least 2 negative Ritz values or rank(H D) >= 2 has index >= 2"
)


def _first_order_mnist(pts: Sequence[Point]) -> Verdict:
    """Index 1 at a certified 784-100-100-10 point; a point is decided when its index is exact,
    or at least 2 (two negative Ritz values, or rank(H D) >= 2, both lower bounds)."""
    onehot = [p for p in pts if p.case == "onehot"]
    if not onehot:
        return not_run(
            "saddles.first_order_mnist",
            CLAIM_FIRST_MNIST,
            "the 784-100-100-10 case runs at the paper and full scales only",
            criterion=MNIST_CRITERION,
        )
    certified = [p for p in onehot if p.converged]
    if not certified:
        p = onehot[0]
        return not_run(
            "saddles.first_order_mnist",
            CLAIM_FIRST_MNIST,
            f"the {p.label} point did not meet the criterion (gradient norm {p.grad_norm:.1e} > "
            f"{_tol(p.tol)}): not a certified critical point",
            criterion=MNIST_CRITERION,
        )
    decided = [p for p in certified if p.index_exact or p.index >= 2 or p.flat_rank >= 2]
    if not decided:
        return not_run(
            "saddles.first_order_mnist",
            CLAIM_FIRST_MNIST,
            f"Lanczos found {certified[0].index} negative eigenvalue(s) without converging, so the "
            "index is only bounded from below",
            criterion=MNIST_CRITERION,
        )
    return some_of(
        "saddles.first_order_mnist",
        CLAIM_FIRST_MNIST,
        sum(1 for p in decided if p.index_exact and p.index == 1),
        len(decided),
        what="first-order saddles (index 1) among certified 784-100-100-10 points",
    )


def path_variation(r: ToyResult) -> tuple[float, float]:
    """``(relative, absolute)`` loss variation along the equal-loss path of a toy result."""
    absolute = float(np.ptp(r.valley))
    return absolute / max(abs(r.point_loss or 0.0), GLOBAL_LOSS), absolute


def _valley(pairs: Pairs) -> Verdict:
    withpath = [r for _, r in _toys(pairs) if r.valley]
    held = 0
    for r in withpath:
        rel, ab = path_variation(r)
        held += rel <= PATH_RTOL or ab <= PATH_ATOL
    return count_of(
        "saddles.valley",
        CLAIM_VALLEY,
        held,
        len(withpath),
        what=f"three-segment paths to the (0 1)-swapped student with loss variation <= "
        f"{_tol(PATH_RTOL)} (relative) or {_tol(PATH_ATOL)} (absolute)",
    )


def _count_verdict(pairs: Pairs) -> Verdict:
    held = total = 0
    for r in _counting(pairs):
        for k in range(len(r.enum_widths)):
            total += 1
            held += (
                r.enum_minima[k] == r.formula_minima[k] and r.enum_points[k] >= r.formula_points[k]
            )
    return count_of(
        "saddles.counting",
        CLAIM_COUNT,
        held,
        total,
        what="tiny nets (widths, K) where enumeration finds prod n_k! minima and at least "
        "factor x minima K-th order permutation points",
    )


def bound_counts(pts: Sequence[Point]) -> dict[str, int]:
    """Counts behind the derived bound: checkable points, those satisfying it, and the
    multi-output certified points by ``rank(H D)`` and index."""
    checkable = [p for p in pts if p.converged and p.bound_ok is not None]
    multi = [p for p in pts if p.converged and p.n_next > 1 and p.index_exact]
    return {
        "checkable": len(checkable),
        "ok": sum(1 for p in checkable if p.bound_ok),
        "multi": len(multi),
        "multi_rank2": sum(1 for p in multi if p.flat_rank >= 2),
        "multi_first": sum(1 for p in multi if p.index == 1),
        "multi_rank_le1": sum(1 for p in multi if p.flat_rank <= 1),
    }


def _bound_verdict(pts: Sequence[Point]) -> Verdict:
    c = bound_counts(pts)
    m = Measured(
        c["ok"] / c["checkable"] if c["checkable"] else None,
        n=c["checkable"],
        what="share of certified points (full spectrum) with index >= rank(H D) and "
        "zeros >= n_{k+1} - rank(H D)",
    )
    why = (
        f"{c['ok']} of {c['checkable']} certified full-spectrum points satisfy both inequalities; "
        f"of {c['multi']} certified points of multi-output layers (exact index), "
        f"{c['multi_rank2']} have rank(H D) >= 2 (index >= 2: not first-order) and "
        f"{c['multi_first']} have index 1"
    )
    return beyond("saddles.index_bound", CLAIM_BOUND, m, why)


def _barrier_verdict(pairs: Pairs) -> Verdict:
    withpath = [r for _, r in _toys(pairs) if r.valley and r.line_barrier is not None]
    if not withpath:
        return not_run("saddles.barrier", CLAIM_BARRIER, "no toy paths were computed")
    line = float(np.median([r.line_barrier for r in withpath]))
    bez = float(np.median([r.bezier_barrier for r in withpath]))
    m = Measured(bez, n=len(withpath), what="median Bezier barrier")
    return beyond(
        "saddles.barrier",
        CLAIM_BARRIER,
        m,
        f"median barrier {line:.3g} on the straight line, {bez:.3g} on the Bezier curve",
    )


# ------------------------------------------------------------------------------------------
# protocol, departures, notes


def protocol(pairs: Pairs) -> str:
    """What was run: sizes, seeds, criteria (no outcomes)."""
    parts: list[str] = []
    toys = _toys(pairs)
    single = [(t, r) for t, r in toys if r.outputs == 1]
    multi = [(t, r) for t, r in toys if r.outputs > 1]
    if single:
        t0, r0 = single[0]
        widths = sorted({r.width for _, r in single})
        seeds = sorted({r.seed for _, r in single})
        n_pts = sum(len(r.pair_i) for _, r in single)
        parts.append(
            f"Toy task: softplus students of widths {_list(widths)} (seeds {_list(seeds)}) on "
            f"the {r0.n_points}-point grid -5:{t0.step:g}:5 squared, fitting the paper's "
            "4-neuron softplus teacher (no biases), float64, loss 0.5 sum (f - y)^2 / N; "
            "students of width >= 4 retrained (up to "
            f"{t0.attempts} initialisations) until one reaches loss < {_tol(GLOBAL_LOSS)}. "
            f"For every pair of neurons ({n_pts} pairs) the two neurons were merged, the reduced "
            "net driven to a critical point (L-BFGS, trust region, Levenberg-Marquardt; criterion: "
            f"gradient norm <= {_tol(t0.grad_tol)}) and split back; full Hessian spectrum, "
            f"zero meaning |lambda| <= {_tol(ZERO_RTOL)} max|lambda|; rank(H D) of the flat "
            f"directions D with singular values above {_tol(FLAT_RANK_RTOL)} max|lambda|. "
            "Pair (0 1): the loss along the three-segment equal-loss path, the straight line "
            "and an optimised Bezier curve to the (0 1)-swapped student."
        )
    if multi:
        outs = sorted({r.outputs for _, r in multi})
        widths = sorted({r.width for _, r in multi})
        seeds = sorted({r.seed for _, r in multi})
        parts.append(
            f"Multi-output toy (not in the paper): the same grid and teacher neurons with "
            f"{_list(outs)} outputs (first output weights 1, the others N(0, 1)), students of "
            f"width {_list(widths)}, seeds {_list(seeds)}, every pair as above (n_2 = outputs)."
        )
    for t, r in _multis(pairs):
        if isinstance(t, TeacherMultilayerTask):
            parts.append(
                f"Constructed multilayer case: {_sizes(r)} softplus net on {r.n_train} "
                f"{r.dataset} images average-pooled {r.image_side}x{r.image_side} -> "
                f"{r.pooled_side}x{r.pooled_side} and standardised, targets from a softplus "
                f"teacher {r.sizes[0]}-{r.sizes[1]}-{r.sizes[2] - 1}-10 plus Gaussian noise (std "
                f"{t.noise:g}), MSE, float64; neurons 0, 1 of layer 2 merged, the reduced net "
                "started at the teacher and driven to a critical point (criterion: gradient norm "
                f"<= {_tol(t.grad_tol)}); full Hessian spectrum ({r.n_parameters} parameters), "
                f"extremes cross-checked by Lanczos ({t.lanczos_k} at each end)."
            )
        elif isinstance(t, MnistTask):
            parts.append(
                f"Paper's multilayer case: {_sizes(r)} softplus net on {r.n_train} raw "
                f"{r.dataset} training images (pixels in [0, 1]), one-hot targets, MSE, float64; "
                f"Adam ({t.adam_epochs} epochs, minibatches of {t.batch_size}, learning rate "
                f"{t.adam_lr:g}) then L-BFGS ({t.lbfgs_epochs} outer steps); the layer-2 pair "
                f"with the closest incoming vectors ({r.i}, {r.j}) merged, the reduced net "
                f"driven to a critical point (L-BFGS {t.search_lbfgs}, trust region "
                f"{t.search_trust}, Levenberg-Marquardt {t.search_newton} steps; criterion: "
                f"gradient norm <= {_tol(t.grad_tol)}); the {t.lanczos_k} smallest and largest "
                f"Hessian eigenvalues ({r.n_parameters} parameters) by Lanczos (residual "
                "tolerance 1e-8 relative); rank(H D) and D^T H D of the n_3 = 10 flat directions."
            )
    for r in _counting(pairs):
        parts.append(
            f"Counting: exact integers for {len(r.widths)} (widths, K) rows, and enumeration of "
            f"every permutation of constructed K-th order permutation points on "
            f"{len(r.enum_widths)} tiny nets."
        )
    return " ".join(parts)


def _list(xs: Sequence) -> str:
    return ", ".join(str(x) for x in xs)


def departures(pairs: Pairs) -> list[str]:
    """Where the run departs from the paper's protocol."""
    out = [
        "The paper's text beyond its abstract (its exact MNIST protocol: loss, activation, "
        "training, which layer and pair) was not found in the searchable sources; the toy task "
        "follows the authors' follow-up code (jbrea/SymmetrySaddles.jl: grid, teacher, float64, "
        "a second-order finish), the MNIST case the architecture 784-100-100-10 named in the "
        "project notes, with softplus units and MSE on one-hot targets.",
        "MNIST is not available offline: the multilayer cases use Fashion-MNIST (same format, "
        "28x28 images, 10 classes) as its stand-in.",
    ]
    multis = _multis(pairs)
    mn = [(t, r) for t, r in multis if isinstance(t, MnistTask)]
    if mn:
        t, r = mn[0]
        out.append(
            f"The 784-100-100-10 case uses {r.n_train} of the 60,000 training images (full-batch "
            "float64 Hessian-vector products over all of them are the cost), one pair of layer 2 "
            f"(the closest incoming vectors), and {t.lanczos_k} Lanczos eigenvalues at each end: "
            "its zero eigenvalues are not counted (they lie inside the spectrum); the flat "
            "directions' zero modes (n_3 - rank(H D)) are."
            + (
                f" Its critical-point search is L-BFGS only ({t.search_lbfgs} outer steps), "
                "without the trust-region and Levenberg-Marquardt finish (each of their steps "
                "costs hundreds of Hessian-vector products at this size)."
                if t.search_trust == 0 and t.search_newton == 0
                else ""
            )
        )
    else:
        out.append(
            "The 784-100-100-10 case (the paper's MNIST network) runs at the paper and full "
            "scales only; this run has none."
        )
    for t, r in multis:
        if isinstance(t, TeacherMultilayerTask):
            out.append(
                f"The {_sizes(r)} multilayer case is constructed, not the paper's: images "
                f"average-pooled to {r.pooled_side}x{r.pooled_side} and standardised, targets "
                "from a noisy softplus teacher (one-hot MSE drives small softplus nets towards "
                "infinity: no finite critical point), and the student started at the teacher "
                "with one layer-2 neuron split in two. It serves the full-spectrum test of the "
                "zero count in a layer feeding 10 units."
            )
    toys = _toys(pairs)
    if any(r.outputs > 1 for _, r in toys):
        out.append(
            "The multi-output toy students (2-D grid, teacher with several outputs) are not in "
            "the paper: they test the zero count and the first-order property in layers feeding "
            "n_2 > 1 units with full spectra."
        )
    if toys:
        per: dict[int, int] = {}
        for _, r in toys:
            if r.outputs == 1:
                per[r.width] = per.get(r.width, 0) + 1
        out.append(
            "The number of students per width in the paper is not known here; this run has "
            + ", ".join(f"{n} for width {w}" for w, n in sorted(per.items()))
            + "."
        )
        t = toys[0][0]
        if t.step != 0.25:
            out.append(
                f"The toy grid has step {t.step:g} ({toys[0][1].n_points} points) instead of the "
                "paper's 0.25 (1681 points)."
            )
    return out


def notes(pairs: Pairs) -> list[str]:
    """Notes generated from the results: the derived bound with its numbers, points that did
    not meet the criterion, tolerances."""
    pts = points(pairs)
    out: list[str] = []
    c = bound_counts(pts)
    out.append(
        "What index + zeros >= n_{k+1} implies (derived here). Along the n_{k+1} flat directions "
        "D = (delta, -delta) on the pair's outgoing weights the loss is constant, so "
        "D^T H D = 0. With r = rank(H D): n_{k+1} - r of them are zero modes, and the Hessian "
        "restricted to those with H d != 0 and their images has r negative and r positive "
        "eigenvalues, so index >= r (Cauchy interlacing); hence index + zeros >= n_{k+1}. "
        "A first-order saddle therefore needs r <= 1, i.e. at least n_{k+1} - 1 zero modes. "
        "H (delta, -delta) = (G delta, -G delta) on the pair's incoming vectors, with G the "
        "fan-in x n_{k+1} matrix of per-output gradients, and a critical point gives G a = 0, so "
        "r <= min(n_{k+1} - 1, fan-in): r = 0 for a layer feeding one unit (the toy task), while "
        "for generic data a layer feeding n_{k+1} >= 3 units has r >= 2 and its permutation "
        "points are saddles of index >= 2, not first-order. Measured here: "
        f"{c['ok']} of {c['checkable']} certified full-spectrum points satisfy index >= r and "
        f"zeros >= n_{{k+1}} - r; among {c['multi']} certified points of multi-output layers "
        f"(exact index), {c['multi_rank2']} have r >= 2, {c['multi_rank_le1']} have r <= 1, and "
        f"{c['multi_first']} have index 1."
    )
    short = [
        p for p in pts if p.converged and p.full and p.zeros is not None and p.zeros < p.n_next
    ]
    if short:
        gaps = [p.nth_abs for p in short if p.nth_abs is not None]
        out.append(
            f"{len(short)} certified points have fewer than n_{{k+1}} zero eigenvalues"
            + (
                f"; at each of them the n_{{k+1}}-th smallest |lambda| is at least "
                f"{min(gaps):.1e} max|lambda|, above the zero tolerance {_tol(ZERO_RTOL)}"
                if gaps and len(gaps) == len(short)
                else ""
            )
            + "."
        )
    failed = [p for p in pts if not p.converged]
    if failed:
        shown = "; ".join(f"{p.label}: gradient norm {p.grad_norm:.1e}" for p in failed[:8])
        more = f" (and {len(failed) - 8} more)" if len(failed) > 8 else ""
        out.append(
            f"Permutation points that did not meet the criterion (gradient norm <= "
            f"{_tol(CRITICAL_GRAD)}), {len(failed)} of {len(pts)}, are left out of the verdicts "
            f"on zeros, index and first-order saddles: {shown}{more}."
        )
    toys = _toys(pairs)
    bad_students = [r for _, r in toys if not r.student_converged]
    if bad_students:
        out.append(
            f"{len(bad_students)} toy students did not meet the criterion themselves: "
            + "; ".join(
                f"width {r.width}, outputs {r.outputs}, seed {r.seed}: gradient norm "
                f"{r.student_grad_norm:.1e}"
                for r in bad_students
            )
            + ". Their permutation points are searched from the merged net all the same."
        )
    for _, r in _multis(pairs):
        if r.full_spectrum and r.zero_gap:
            out.append(
                f"{_sizes(r)} ({r.case}): the counted zero eigenvalues are <= "
                f"{r.zero_gap[0]:.1e} max|lambda| and the next one is {r.zero_gap[1]:.1e} "
                "max|lambda|, so the count does not depend on the tolerance in between"
                + (
                    f"; Lanczos reproduces the extreme eigenvalues to {r.lanczos_check:.1e} "
                    "max|lambda|."
                    if r.lanczos_check is not None
                    else "."
                )
            )
        if not r.full_spectrum:
            k = len(r.smallest)
            if r.index_exact:
                found = "a non-negative one among them and Lanczos converged: the index is exact"
            elif r.index >= k:
                found = "all of them negative: the index is at least this"
            else:
                found = "Lanczos did not converge: the index is at least this"
            trained = (
                f" Before merging, the trained net had training loss {r.train_loss:.4g} and "
                f"training accuracy {r.train_accuracy:.3f}."
                if r.train_loss is not None and r.train_accuracy is not None
                else ""
            )
            out.append(
                f"{_sizes(r)} ({r.case}): Lanczos ({r.lanczos_iterations} Hessian-vector "
                f"products, {'converged' if r.lanczos_converged else 'NOT converged'}) gives "
                f"lambda_min = {r.smallest[0]:.3e}, lambda_max = {r.largest[-1]:.3e} and "
                f"{r.index} negative Ritz values among the {k} smallest ({found}; each "
                "negative Ritz value guarantees a negative eigenvalue). rank(H D) = "
                f"{r.flat_rank}, so index >= {r.flat_rank} (this needs no critical point) and the "
                f"flat directions give {r.n_next - r.flat_rank} zero modes; max |D^T H D| = "
                f"{r.flat_quad:.1e} max|lambda|; loss at the point {r.loss:.4g}, gradient norm "
                f"{r.grad_norm:.1e}.{trained} {r.data_null} first-layer directions along "
                "constant pixels are exactly flat."
            )
        if r.dataset != "fashion-mnist":
            out.append(f"Fashion-MNIST was not installed: {_sizes(r)} used {r.dataset}.")
    return out


# ------------------------------------------------------------------------------------------
# tables


def _sci(s: str) -> str:
    n = int(s)
    if n < 10**6:
        return str(n)
    digits = str(n)
    return f"{digits[0]}.{digits[1:3]}e{len(digits) - 1}"


def _yes(b: bool | None) -> str:
    return "n/a" if b is None else ("yes" if b else "NO")


def tables(pairs: Pairs) -> list[Table]:
    out: list[Table] = []
    toys = _toys(pairs)
    if toys:
        out.append(
            Table(
                f"Toy students at their critical points (float64). 'global': loss < "
                f"{_tol(GLOBAL_LOSS)}; 'met criterion': gradient norm <= "
                f"{_tol(toys[0][0].grad_tol)}.",
                [
                    "outputs",
                    "width",
                    "seed",
                    "grid points",
                    "attempts",
                    "loss",
                    "grad norm",
                    "global",
                    "met criterion",
                    "index",
                    "zeros",
                ],
                [
                    [
                        r.outputs,
                        r.width,
                        r.seed,
                        r.n_points,
                        r.attempts,
                        f"{r.student_loss:.3e}",
                        f"{r.student_grad_norm:.1e}",
                        _yes(r.student_loss < GLOBAL_LOSS),
                        _yes(r.student_converged),
                        r.student_index,
                        r.student_zeros,
                    ]
                    for _, r in toys
                ],
            )
        )
        rows = []
        for p in points(pairs):
            if p.case not in ("toy", "toy-multi"):
                continue
            rows.append(_point_row(p))
        out.append(
            Table(
                "Toy permutation points (every pair): gradient norm, whether the search met the "
                f"criterion, index (negative eigenvalues), zeros (|lambda| <= {_tol(ZERO_RTOL)} "
                "max|lambda|), n_{k+1}, rank(H D), and the derived inequalities.",
                POINT_HEADER,
                rows,
            )
        )
    multis = _multis(pairs)
    if multis:
        out.append(
            Table(
                "Multilayer permutation points (layer 2, MSE, float64). Index: exact from the full "
                "spectrum, or the negative Ritz values among the Lanczos smallest ('>=' when all "
                "of them are negative). Zeros without the data-null directions; n/a without the "
                "full spectrum. Zero modes of D: n_3 - rank(H D).",
                [
                    "case",
                    "dataset",
                    "sizes",
                    "params",
                    "images",
                    "inputs",
                    "loss",
                    "grad norm",
                    "met criterion",
                    "spectrum",
                    "lambda_min",
                    "lambda_max",
                    "index",
                    "zeros",
                    "n_3",
                    "rank(H D)",
                    "zero modes of D",
                    "max|D^T H D| (rel.)",
                    "data-null dirs",
                ],
                [
                    [
                        "constructed (teacher)" if r.case == "teacher" else "paper (one-hot)",
                        r.dataset,
                        _sizes(r),
                        r.n_parameters,
                        r.n_train,
                        f"{r.n_inputs} ({r.pooled_side}x{r.pooled_side}"
                        + (", standardised)" if r.standardized else ", raw)"),
                        f"{r.loss:.4e}",
                        f"{r.grad_norm:.1e}",
                        _yes(r.converged),
                        "full"
                        if r.full_spectrum
                        else f"Lanczos {len(r.smallest)}+{len(r.largest)}",
                        f"{r.smallest[0]:.3e}",
                        f"{r.largest[-1]:.3e}",
                        str(r.index) if r.index_exact else f">= {r.index}",
                        "n/a" if r.zeros_free is None else r.zeros_free,
                        r.n_next,
                        r.flat_rank,
                        r.n_next - r.flat_rank,
                        f"{r.flat_quad:.1e}",
                        r.data_null,
                    ]
                    for _, r in multis
                ],
            )
        )
    for r in _counting(pairs):
        out.append(
            Table(
                "Counting (exact): equivalent minima prod n_k!, K-th order permutation points, "
                "and their ratio sum_k C(n_k - K, K) / 2!^K.",
                ["hidden widths", "K", "equivalent minima", "permutation points", "factor"],
                [
                    [
                        "-".join(map(str, r.widths[k])),
                        r.order[k],
                        _sci(r.minima[k]),
                        _sci(r.points[k]),
                        r.factor[k],
                    ]
                    for k in range(len(r.widths))
                ],
            )
        )
        out.append(
            Table(
                "Counting by enumeration (tiny nets, 2 inputs, 1 output): distinct permuted copies "
                "of a random net and of constructed K-th order permutation points, against the "
                "formulas.",
                [
                    "hidden widths",
                    "K",
                    "minima (enumerated)",
                    "minima (prod n_k!)",
                    "points (enumerated)",
                    "points (formula)",
                ],
                [
                    [
                        "-".join(map(str, r.enum_widths[k])),
                        r.enum_order[k],
                        r.enum_minima[k],
                        r.formula_minima[k],
                        r.enum_points[k],
                        r.formula_points[k],
                    ]
                    for k in range(len(r.enum_widths))
                ],
            )
        )
    return out


POINT_HEADER = [
    "point",
    "grad norm",
    "met criterion",
    "index",
    "zeros",
    "n_{k+1}",
    "rank(H D)",
    "index >= rank",
    "zeros >= n_{k+1} - rank",
    "first-order",
]


def _point_row(p: Point) -> list:
    checkable = p.full and p.index_exact and p.zeros is not None
    return [
        p.label,
        f"{p.grad_norm:.1e}",
        _yes(p.converged),
        p.index,
        "n/a" if p.zeros is None else p.zeros,
        p.n_next,
        p.flat_rank,
        _yes(p.index >= p.flat_rank) if checkable else "n/a",
        _yes((p.zeros or 0) >= p.n_next - p.flat_rank) if checkable else "n/a",
        _yes(p.index == 1) if p.index_exact else "n/a",
    ]


def _finite(x: float | None) -> bool:
    return x is not None and math.isfinite(x)


__all__ = [
    "PAPER",
    "Point",
    "bound_counts",
    "departures",
    "notes",
    "path_variation",
    "points",
    "protocol",
    "tables",
    "verdicts",
]
