"""Study: the upper bound on knots (Chen, arXiv 1611.09448), its attainment, and knots in practice.

Chen's paper body was not available here: the bound ``prod(n_l + 1) - 1`` is *derived in this
project* (:mod:`.bounds`, each step checked on networks by exact counting), and the study tests
the paper's claims (abstract) about it against exact counts, never against its own derivation:

* **the bound holds**: no network of the study (constructions, searched networks, random and
  trained networks) has more knots than ``prod(n_l + 1) - 1``;
* **the bound is tight**: for every width list with all widths >= 3 the folding construction
  :func:`nngeom.tight_knot_network` attains it, up to the 1 -> 64 -> 64 -> 64 -> 1 net (274,624
  knots);
* **narrow widths** (a width 1 or 2, or a last width 1): the maximum over all weights is
  *proven* where an exactly counted network attains the finer upper bound derived in
  :mod:`.bounds` (which rests on an exhaustive search over the slope-sign sequences of one layer),
  and otherwise only *bracketed*: a lower bound (the best network found by a hill climb,
  recounted in rational arithmetic) and an upper bound. A search result is never reported as a
  maximum unless it attains a proven upper bound;
* **Serra, Tjandraatmadja & Ramalingam (2018)**: their upper bound on activation regions, which
  their abstract calls exact for one-dimensional inputs, against the most activation regions
  found (breakpoints + 1);
* **Hanin & Rolnick (2019)**: knots of random ReLU nets grow linearly in the number of neurons at
  initialisation, and stay far below exponential after training (the exponent of knots against
  neurons, at init and on the trained nets that met the convergence criterion); the exact
  activation regions of a 2-D slice before and after training (figure).

Scales: ``quick`` (a sample of the width lists, few seeds; ``make demo``), ``paper`` (every width
list up to width 8 and depth 4, the narrow lists up to depth 4, more seeds and longer searches;
reduced from ``full`` to fit an hour on 2 cores), ``full`` (wider random nets, more seeds, longer
searches; for a cluster), ``test`` (the smallest, for the test suite).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..._errors import StudyError
from .._base import Table
from .._typed import Pairs, Result, Task, pairs_of, typed_study
from .._verdicts import (
    Claim,
    Measured,
    Verdict,
    beyond,
    close_to,
    count_of,
    not_run,
)
from . import bounds
from .experiments import (
    BigResult,
    BigTask,
    NarrowResult,
    NarrowTask,
    OneLayerResult,
    OneLayerTask,
    RandomResult,
    RandomTask,
    Regions2DResult,
    Regions2DTask,
    TightResult,
    TightTask,
    TrainingResult,
    TrainingTask,
)
from .figures import figures

__all__ = [
    "STUDY",
    "PAPER",
    "SCALES",
    "tasks",
    "verdicts",
    "tables",
    "protocol",
    "departures",
]

PAPER = (
    'K. K. Chen, "The Upper Bound on Knots in Neural Networks", arXiv:1611.09448 (2016); with '
    'T. Serra, C. Tjandraatmadja and S. Ramalingam, "Bounding and Counting Linear Regions of Deep '
    'Neural Networks", ICML 2018, and B. Hanin and D. Rolnick, "Complexity of Linear Regions in '
    'Deep Networks", ICML 2019'
)

MSE_TARGET = 2e-2  # convergence criterion of the 1-D task (R^2 >= 0.97: its variance is 0.69)
MSE_TARGET_2D = 2e-2  # of the 2-D task
LR_1D, LR_2D = 1e-2, 5e-3  # Adam learning rates
ALPHA_RTOL = 0.25  # Hanin & Rolnick: knots ~ neurons^alpha, reproduced if alpha within 25% of 1
N_BOOT = 2000  # bootstrap resamples of the verdicts' intervals
BOOT_SEED = 0

SCALES: dict[str, dict[str, Any]] = {
    "test": {
        "tight_depths": (1, 2),
        "tight_max": 3,
        "tight_sample": 0,
        "big": False,
        "one_layer": 2,
        "narrow": ((1, 1), (2, 1)),
        "steps": 30,
        "starts": 1,
        "random_depths": (2,),
        "random_widths": (4,),
        "random_seeds": 2,
        "random_epochs": 50,
        "curve": (8, 60, 20),
        "r2d": (6, 40),
    },
    "quick": {
        "tight_depths": (1, 2, 3, 4),
        "tight_max": 8,
        "tight_sample": 60,
        "big": True,
        "one_layer": 3,
        "narrow_depths": {2: (1, 2, 3), 3: (1, 2)},
        "narrow_extra": ((1, 1, 1, 1),),
        "steps": 300,
        "starts": 3,
        "random_depths": (1, 2, 3),
        "random_widths": (4, 8, 16, 32),
        "random_seeds": 3,
        "random_epochs": 1000,
        "curve": (32, 1500, 50),
        "r2d": (16, 600),
    },
    "paper": {
        "tight_depths": (1, 2, 3, 4),
        "tight_max": 8,
        "tight_sample": None,
        "big": True,
        "one_layer": 5,
        "narrow_depths": {2: (1, 2, 3, 4), 3: (1, 2, 3), 4: (1, 2)},
        "narrow_extra": (),
        "steps": 3000,
        "starts": 8,
        "random_depths": (1, 2, 3, 4),
        "random_widths": (4, 8, 16, 32, 64),
        "random_seeds": 6,
        "random_epochs": 3000,
        "curve": (64, 5000, 100),
        "r2d": (32, 3000),
    },
    "full": {
        "tight_depths": (1, 2, 3, 4, 5),
        "tight_max": 8,
        "tight_sample": None,
        "big": True,
        "one_layer": 6,
        "narrow_depths": {2: (1, 2, 3, 4, 5), 3: (1, 2, 3, 4), 4: (1, 2, 3), 5: (1, 2)},
        "narrow_extra": (),
        "steps": 20000,
        "starts": 20,
        "random_depths": (1, 2, 3, 4, 5),
        "random_widths": (4, 8, 16, 32, 64, 128, 256),
        "random_seeds": 20,
        "random_epochs": 10000,
        "curve": (128, 10000, 100),
        "r2d": (64, 5000),
    },
}


def attains_product(widths: Sequence[int]) -> bool:
    """Whether :func:`nngeom.tight_knot_network` attains the product bound (found here, verified
    by exact counting in the tight task): every width but the last >= 3, and the last >= 2 when
    there is more than one hidden layer."""
    return all(n >= 3 for n in widths[:-1]) and (len(widths) == 1 or widths[-1] >= 2)


def _narrow_lists(g: dict[str, Any]) -> list[tuple[int, ...]]:
    if "narrow" in g:
        return [tuple(w) for w in g["narrow"]]
    out: list[tuple[int, ...]] = []
    for depth, entries in g["narrow_depths"].items():
        for w in itertools.product(entries, repeat=depth):
            if not attains_product(w):
                out.append(tuple(w))
    out += [tuple(w) for w in g["narrow_extra"] if tuple(w) not in out]
    return out


def tasks(scale: str, seed: int) -> list[Task]:
    """The study's tasks at ``scale`` (``quick``, ``paper``, ``full``; ``test`` for the tests)."""
    if scale not in SCALES:
        raise StudyError(
            f"unknown scale {scale!r} for the knots study; use one of {', '.join(SCALES)}"
        )
    g = SCALES[scale]
    out: list[Task] = [OneLayerTask(g["one_layer"])]
    out += [TightTask(d, g["tight_max"], g["tight_sample"], seed) for d in g["tight_depths"]]
    if g["big"]:
        out.append(BigTask())
    out += [NarrowTask(w, g["steps"], g["starts"], seed) for w in _narrow_lists(g)]
    seeds = tuple(seed * 1000 + s for s in range(g["random_seeds"]))
    for depth in g["random_depths"]:
        for width in g["random_widths"]:
            out.append(RandomTask(depth, width, seeds, g["random_epochs"], LR_1D, MSE_TARGET))
    cw, ce, every = g["curve"]
    out.append(TrainingTask(cw, ce, every, 3e-3, MSE_TARGET, seed))
    rw, re_ = g["r2d"]
    out.append(Regions2DTask(rw, re_, LR_2D, MSE_TARGET_2D, seed))
    return out


# --------------------------------------------------------------------------------------------
# pairs by type
# --------------------------------------------------------------------------------------------
def _of(pairs: Pairs, cls: type[Result]) -> list[Any]:
    return [r for _, r in pairs_of(pairs, result=cls)]


def _tasks_of(pairs: Pairs, cls: type[Task]) -> list[Any]:
    return [t for t, _ in pairs_of(pairs, cls, object)]


def _tight_rows(pairs: Pairs) -> list[tuple[tuple[int, ...], int, int, int, int, bool]]:
    rows = []
    for r in _of(pairs, TightResult):
        rows += list(
            zip(
                r.widths, r.bound, r.serra_regions, r.knots, r.breakpoints, r.ambiguous, strict=True
            )
        )
    return rows


def _all_counts(pairs: Pairs) -> list[tuple[str, tuple[int, ...], int]]:
    """Every exactly counted network of the study: (what, widths, knots)."""
    out: list[tuple[str, tuple[int, ...], int]] = []
    for w, _b, _s, k, _bp, _a in _tight_rows(pairs):
        out.append(("construction", w, k))
    for r in _of(pairs, BigResult):
        out.append(("construction", r.widths, r.knots))
    for r in _of(pairs, NarrowResult):
        out.append(("construction", r.widths, r.construction_knots))
        out.append(("searched", r.widths, r.search_knots))
    for r in _of(pairs, RandomResult):
        for k0, k1 in zip(r.knots_init, r.knots_trained, strict=True):
            out.append(("random init", r.widths, k0))
            out.append(("trained", r.widths, k1))
    for r in _of(pairs, TrainingResult):
        for k in r.knots_line:
            out.append(("during training", r.widths, k))
    return out


# --------------------------------------------------------------------------------------------
# verdicts (pure: no matplotlib, no training)
# --------------------------------------------------------------------------------------------
CLAIM_BOUND = Claim(
    "An induction on the number of layers reveals a tight upper bound on the number of knots in "
    "R -> R^p deep networks (bound of size prod(n_i + 1) - 1, derived here)",
    "Chen 2016, abstract",
)
CLAIM_TIGHT = Claim(
    "We then show that the exact upper bound is tight, and we demonstrate the upper bound with "
    "an example (tested for width lists with every width >= 3)",
    "Chen 2016, abstract",
)
CLAIM_NARROW = Claim(
    "For narrow widths (a width 1 or 2, or a last width of 1) the maximum number of knots, "
    "proven here or bracketed, against prod(n_i + 1) - 1",
    "not in the paper (its body was not available)",
)
CLAIM_SERRA = Claim(
    "Tighter upper and lower bounds for the maximum number of linear regions on rectifier "
    "networks, which are exact for inputs of dimension one (tested for width lists with every "
    "width >= 3)",
    "Serra, Tjandraatmadja & Ramalingam 2018, abstract",
)
CLAIM_SERRA_NARROW = Claim(
    "Serra et al.'s upper bound on activation regions (n0 = 1) against the most activation "
    "regions of narrow width lists, proven here or bracketed",
    "not in Serra et al. (their exactness is stated for one-dimensional input in general)",
)
CLAIM_LINEAR = Claim(
    "For networks at initialization, the average number of regions along any one-dimensional "
    "subspace grows linearly in the total number of neurons, far below the exponential upper "
    "bound",
    "Hanin & Rolnick 2019, abstract",
)
CLAIM_TRAINED = Claim(
    "Even after training, the number of linear regions is far below exponential, an intuition "
    "that matches our empirical observations",
    "Hanin & Rolnick 2019, abstract",
)
CLAIM_RATIO = Claim(
    "Knots in the data interval after training against at initialisation, on the same networks",
    "not a claim of the papers (Hanin & Rolnick 2019 report regions during training)",
)


def _narrow_status(r: NarrowResult) -> tuple[str, str]:
    """(knots status, breakpoints status): ``exact`` or ``bracketed``."""
    return (
        bounds.status(NarrowTask.lower_knots(r), r.upper_knots),
        bounds.status(NarrowTask.lower_breakpoints(r), r.upper_breakpoints),
    )


def _fmt_w(w: Sequence[int]) -> str:
    return "[" + ",".join(map(str, w)) + "]"


def _log_log_slope(neurons: np.ndarray, counts: np.ndarray) -> float:
    ok = (neurons > 0) & (counts > 0)
    if ok.sum() < 2 or np.unique(neurons[ok]).size < 2:
        return float("nan")
    return float(np.polyfit(np.log(neurons[ok]), np.log(counts[ok]), 1)[0])


def _boot(stat, n: int) -> tuple[float, float]:
    from ...measures import bootstrap_ci

    if n < 2:
        return (float("nan"), float("nan"))
    return bootstrap_ci(stat, n, n_boot=N_BOOT, method="percentile", seed=BOOT_SEED)


def _random_arrays(pairs: Pairs) -> dict[str, np.ndarray]:
    rows = []
    for r in _of(pairs, RandomResult):
        for i in range(len(r.seeds)):
            rows.append(
                (
                    sum(r.widths),
                    len(r.widths),
                    r.knots_init[i],
                    r.knots_init_data[i],
                    r.knots_trained[i],
                    r.knots_trained_data[i],
                    r.converged[i],
                )
            )
    a = np.array(rows, dtype=float).reshape(-1, 7)
    return {
        "neurons": a[:, 0],
        "depth": a[:, 1],
        "k0": a[:, 2],
        "k0d": a[:, 3],
        "k1": a[:, 4],
        "k1d": a[:, 5],
        "conv": a[:, 6].astype(bool),
    }


def _exponent_verdict(
    key: str, claim: Claim, neurons: np.ndarray, counts: np.ndarray, when: str
) -> Verdict:
    """``knots ~ neurons^alpha``: reproduced if alpha's 95% interval comes within ALPHA_RTOL of 1
    (linear growth, not exponential)."""
    if np.unique(neurons).size < 2:
        return not_run(key, claim, f"fewer than two network sizes counted {when}")
    alpha = _log_log_slope(neurons, counts)
    lo, hi = _boot(lambda idx: _log_log_slope(neurons[idx], counts[idx]), neurons.size)
    m = Measured(
        alpha, lo, hi, n=int(neurons.size), what=f"exponent alpha of knots ~ neurons^alpha {when}"
    )
    return close_to(key, claim, m, 1.0, rtol=ALPHA_RTOL)


def verdicts(pairs: Pairs) -> list[Verdict]:
    """One verdict per claim, computed from the results (see the module docstring)."""
    out: list[Verdict] = []
    # 1. no network exceeds the bound
    counted = _all_counts(pairs)
    held = sum(1 for _, w, k in counted if k <= bounds.product_bound(w))
    out.append(
        count_of(
            "knots.bound",
            CLAIM_BOUND,
            held,
            len(counted),
            what="networks (count <= bound)",
            partly_at=1.0,
        )
    )

    # 2. the construction attains it where every width >= 3
    wide = [(w, k, b) for w, b, _s, k, _bp, _a in _tight_rows(pairs) if min(w) >= 3]
    wide += [(r.widths, r.knots, r.bound) for r in _of(pairs, BigResult)]
    out.append(
        count_of(
            "knots.tight",
            CLAIM_TIGHT,
            sum(1 for _, k, b in wide if k == b),
            len(wide),
            what="width lists with all widths >= 3 (construction count = bound)",
        )
    )

    # 3. narrow widths: proven maxima and brackets (beyond the paper)
    narrow = _of(pairs, NarrowResult)
    if narrow:
        below = [r for r in narrow if r.upper_knots < r.product_bound]
        exact = [r for r in narrow if _narrow_status(r)[0] == "exact"]
        exact_below = [r for r in exact if r.upper_knots < r.product_bound]
        brack = [r for r in narrow if _narrow_status(r)[0] == "bracketed"]
        ex = ", ".join(
            f"{_fmt_w(r.widths)}: {r.upper_knots} < {r.product_bound}" for r in exact_below[:4]
        )
        br = ", ".join(
            f"{_fmt_w(r.widths)} in [{NarrowTask.lower_knots(r)}, {r.upper_knots}]"
            for r in brack[:3]
        )
        out.append(
            beyond(
                "knots.narrow",
                CLAIM_NARROW,
                Measured(
                    len(exact_below),
                    n=len(narrow),
                    what="narrow lists with a proven maximum below the bound",
                ),
                f"proven maxima below the bound on {len(exact_below)} of {len(narrow)} narrow "
                f"width lists ({ex or 'none'}); the proven upper bound is below the product bound "
                f"on {len(below)}; bracketed on {len(brack)} ({br or 'none'})",
            )
        )
    else:
        out.append(not_run("knots.narrow", CLAIM_NARROW, "no narrow width list was run"))

    # 4. Serra et al.: exact for 1-D input (every width >= 3: the construction's regions)
    wide_s = [(w, bp, s) for w, _b, s, _k, bp, _a in _tight_rows(pairs) if min(w) >= 3]
    out.append(
        count_of(
            "serra.exact",
            CLAIM_SERRA,
            sum(1 for _, bp, s in wide_s if bp + 1 == s),
            len(wide_s),
            what="width lists with all widths >= 3 (construction regions = upper bound)",
        )
    )
    if narrow:
        gap = [
            r
            for r in narrow
            if _narrow_status(r)[1] == "exact" and r.upper_breakpoints + 1 < r.serra_regions
        ]
        agree = [
            r
            for r in narrow
            if _narrow_status(r)[1] == "exact" and r.upper_breakpoints + 1 == r.serra_regions
        ]
        ex = ", ".join(
            f"{_fmt_w(r.widths)}: {r.upper_breakpoints + 1} < {r.serra_regions}" for r in gap[:4]
        )
        out.append(
            beyond(
                "serra.narrow",
                CLAIM_SERRA_NARROW,
                Measured(
                    len(gap),
                    n=len(narrow),
                    what="narrow lists whose proven most regions lie below the upper bound",
                ),
                f"proven most activation regions below Serra et al.'s upper bound on {len(gap)} "
                f"narrow width lists ({ex or 'none'}), equal to it on {len(agree)}",
            )
        )

    # 5-6. Hanin & Rolnick
    ra = _random_arrays(pairs)
    deep = ra["depth"] >= 2  # one hidden layer: knots = neurons by construction
    out.append(
        _exponent_verdict(
            "hanin.linear",
            CLAIM_LINEAR,
            ra["neurons"][deep],
            ra["k0"][deep],
            "at init (nets of depth >= 2)",
        )
    )
    conv = deep & ra["conv"]
    out.append(
        _exponent_verdict(
            "hanin.trained",
            CLAIM_TRAINED,
            ra["neurons"][conv],
            ra["k1"][conv],
            f"after training (nets of depth >= 2 that met MSE <= {MSE_TARGET:g})",
        )
    )
    both = ra["conv"] & (ra["k0d"] > 0)
    if both.sum() >= 2:
        ratio = ra["k1d"][both] / ra["k0d"][both]
        gm = float(np.exp(np.log(np.maximum(ratio, 1e-12)).mean()))
        lo, hi = _boot(
            lambda idx: float(np.exp(np.log(np.maximum(ratio[idx], 1e-12)).mean())), ratio.size
        )
        m = Measured(
            gm,
            lo,
            hi,
            n=int(ratio.size),
            what="geometric mean of trained / initial knots in [-1, 1] (converged nets)",
        )
        out.append(
            beyond(
                "hanin.ratio",
                CLAIM_RATIO,
                m,
                f"training multiplied the knots in [-1, 1] by {m.text()} on the networks that "
                "met the criterion",
            )
        )
    return out


# --------------------------------------------------------------------------------------------
# tables
# --------------------------------------------------------------------------------------------
def tables(pairs: Pairs) -> list[Table]:
    out: list[Table] = []
    tight = _tight_rows(pairs)
    if tight:
        eq = sorted((r for r in tight if len(set(r[0])) == 1), key=lambda r: (len(r[0]), r[0][0]))
        out.append(
            Table(
                "Equal widths: the product bound prod(n+1)-1 (derived here) against the exact "
                "knots of the folding construction; Serra et al.'s bound on activation regions "
                "(n0 = 1) against its regions",
                [
                    "widths",
                    "product bound",
                    "construction knots",
                    "attained",
                    "Serra regions bound",
                    "construction regions",
                ],
                [
                    [_fmt_w(w), b, k, "yes" if k == b else "no", s, bp + 1]
                    for w, b, s, k, bp, _a in eq
                ],
            )
        )
        by_depth: dict[int, list] = {}
        for w, b, _s, k, _bp, a in tight:
            by_depth.setdefault(len(w), []).append((w, b, k, a))
        out.append(
            Table(
                "All width lists counted: the construction attains the product bound exactly "
                "where every width before the last is >= 3 and the last is >= 2 (depth > 1)",
                [
                    "depth",
                    "width lists",
                    "attained",
                    "predicted by that rule",
                    "rule exceptions",
                    "numerically ambiguous",
                ],
                [
                    [
                        d,
                        len(v),
                        sum(1 for w, b, k, _ in v if k == b),
                        sum(1 for w, *_ in v if attains_product(w)),
                        sum(1 for w, b, k, _ in v if (k == b) != attains_product(w)),
                        sum(1 for *_, a in v if a),
                    ]
                    for d, v in sorted(by_depth.items())
                ],
            )
        )
    big = _of(pairs, BigResult)
    for r in big:
        out.append(
            Table(
                "The 1 -> 64 -> 64 -> 64 -> 1 construction",
                ["widths", "product bound", "exact knots", "seconds per count", "ambiguous"],
                [
                    [
                        _fmt_w(r.widths),
                        f"{r.bound:,}",
                        f"{r.knots:,}",
                        f"{r.seconds:.3f}",
                        "yes" if r.ambiguous else "no",
                    ]
                ],
            )
        )
    one = _of(pairs, OneLayerResult)
    for r in one:
        out.append(
            Table(
                "Exhaustive search over the slope-sign sequences of one layer of n units "
                "(each sequence's realizability decided by a linear program): the most monotone "
                "runs of w.relu(ax+b)+c and the most knots of relu(w.relu(ax+b)+c) (the [n,1] net)",
                [
                    "n",
                    "sign sequences",
                    "realizable",
                    "most runs",
                    "most knots of [n,1]",
                    "product bound of [n,1]",
                ],
                [
                    [n, p, f, mr, mk, bounds.product_bound((n, 1))]
                    for n, p, f, mr, mk in zip(
                        r.n, r.patterns, r.feasible, r.max_runs, r.max_relu_knots, strict=True
                    )
                ],
            )
        )
    narrow = sorted(_of(pairs, NarrowResult), key=lambda r: (len(r.widths), r.widths))
    if narrow:
        rows = []
        for r in narrow:
            sk, sb = _narrow_status(r)
            lk, lb = NarrowTask.lower_knots(r), NarrowTask.lower_breakpoints(r)
            rows.append(
                [
                    _fmt_w(r.widths),
                    r.product_bound,
                    r.upper_knots,
                    r.construction_knots,
                    r.search_knots,
                    _max_text(sk, lk, r.upper_knots),
                    r.serra_regions,
                    _max_text(sb, lb + 1, r.upper_breakpoints + 1),
                ]
            )
        out.append(
            Table(
                "Narrow widths: upper bounds (product bound; refined bound, proven here) and lower "
                "bounds (the construction; the best searched net, recounted exactly). The maximum "
                "is stated only where a counted net attains the refined bound; elsewhere it is "
                "bracketed. Right: activation regions (breakpoints + 1) against Serra et al.'s "
                "upper bound (n0 = 1)",
                [
                    "widths",
                    "product bound",
                    "refined upper bound",
                    "construction",
                    "search (lower bound)",
                    "most knots",
                    "Serra regions bound",
                    "most regions",
                ],
                rows,
            )
        )
    rand = _of(pairs, RandomResult)
    if rand:
        rows = []
        for r in sorted(rand, key=lambda r: (len(r.widths), r.widths[0])):
            conv = np.array(r.converged)
            rows.append(
                [
                    len(r.widths),
                    r.widths[0],
                    sum(r.widths),
                    r.bound,
                    round(float(np.mean(r.knots_init)), 1),
                    round(float(np.mean(r.knots_init_data)), 1),
                    round(float(np.mean(r.knots_trained)), 1),
                    round(float(np.mean(r.knots_trained_data)), 1),
                    f"{int(conv.sum())}/{conv.size}",
                ]
            )
        out.append(
            Table(
                f"Random nets (mean over seeds): exact knots at init and after training, on the "
                f"whole line and in [-1, 1]; converged: training MSE <= {MSE_TARGET:g}",
                [
                    "depth",
                    "width",
                    "neurons",
                    "product bound",
                    "init (R)",
                    "init [-1,1]",
                    "trained (R)",
                    "trained [-1,1]",
                    "converged",
                ],
                rows,
            )
        )
        out.append(_steps_table(rand))
    missed = _missed(pairs)
    if missed:
        out.append(
            Table(
                "Trained networks that missed their convergence criterion (excluded from the "
                "training verdict)",
                ["network", "seed", "criterion", "final training MSE", "epochs run"],
                missed,
            )
        )
    return out


def _max_text(st: str, lower: int, upper: int) -> str:
    if st == "exact":
        return f"{lower} (proven maximum)"
    if st == "bracketed":
        return f"in [{lower}, {upper}]"
    return f"{lower} counted > upper bound {upper}"


def _steps_table(rand: list[RandomResult]) -> Table:
    """Step 1 of the derivation, P_l <= (n_l + 1) P_{l-1}, on the random nets (exact pieces)."""
    rows = []
    for r in sorted(rand, key=lambda r: (len(r.widths), r.widths[0])):
        worst, held, total = 0.0, 0, 0
        for pieces in (*r.pieces_init, *r.pieces_trained):
            for li, n in enumerate(r.widths):
                ratio = pieces[li + 1] / ((n + 1) * pieces[li])
                worst = max(worst, ratio)
                held += ratio <= 1.0
                total += 1
        rows.append([_fmt_w(r.widths), total, held, round(worst, 3)])
    return Table(
        "The derivation's step 1 on the random and trained nets: exact activation pieces P_l of "
        "the net truncated after layer l against (n_l + 1) P_{l-1}",
        [
            "widths",
            "layer steps",
            "steps with P_l <= (n_l+1) P_{l-1}",
            "largest P_l / ((n_l+1) P_{l-1})",
        ],
        rows,
    )


def _missed(pairs: Pairs) -> list[list[Any]]:
    rows: list[list[Any]] = []
    for t, r in pairs:
        if isinstance(r, RandomResult):
            assert isinstance(t, RandomTask)
            for s, c, m, e in zip(r.seeds, r.converged, r.final_mse, r.epochs_run, strict=True):
                if not c:
                    rows.append(
                        [f"random {_fmt_w(r.widths)}", s, f"MSE <= {t.mse_target:g}", f"{m:.3g}", e]
                    )
        elif isinstance(r, TrainingResult) and not r.converged:
            assert isinstance(t, TrainingTask)
            rows.append(
                [
                    f"curve {_fmt_w(r.widths)}",
                    t.seed,
                    f"MSE <= {t.mse_target:g}",
                    f"{r.final_mse:.3g}",
                    t.epochs,
                ]
            )
        elif isinstance(r, Regions2DResult) and not r.converged:
            assert isinstance(t, Regions2DTask)
            rows.append(
                [
                    f"2-D [{r.width},{r.width}]",
                    t.seed,
                    f"MSE <= {t.mse_target:g}",
                    f"{r.final_mse:.3g}",
                    t.epochs,
                ]
            )
    return rows


# --------------------------------------------------------------------------------------------
# protocol, departures, notes (no outcome words: outcomes come from the verdicts)
# --------------------------------------------------------------------------------------------
def protocol(pairs: Pairs) -> str:
    parts = []
    tt = _tasks_of(pairs, TightTask)
    tight = _tight_rows(pairs)
    if tt:
        parts.append(
            f"Exact knot counts (nngeom.knots) of the folding construction for {len(tight)} width "
            f"lists (depths {min(t.depth for t in tt)}-{max(t.depth for t in tt)}, widths "
            f"1-{max(t.max_width for t in tt)}), compared with the product bound prod(n+1)-1 "
            "derived here and with Serra et al.'s bound on activation regions for input dimension 1"
            + (", and of the 1->64->64->64->1 construction" if _of(pairs, BigResult) else "")
            + "."
        )
    ol = _tasks_of(pairs, OneLayerTask)
    if ol:
        parts.append(
            f"An exhaustive search over the slope-sign sequences of one layer of n = 1-"
            f"{max(t.max_n for t in ol)} units (a linear program per sequence) gives the facts the "
            "refined upper bound for narrow widths rests on."
        )
    nt = _tasks_of(pairs, NarrowTask)
    if nt:
        parts.append(
            f"{len(nt)} narrow width lists (a width 1 or 2, or a last width 1): refined upper "
            f"bound, the construction, and a hill climb over the weights from the construction "
            f"and {nt[0].starts} random starts of up to {nt[0].steps} steps per objective (knots; "
            f"breakpoints), stopped at the refined bound, seed {nt[0].seed}; every lower bound "
            "recounted in rational arithmetic."
        )
    rt = _tasks_of(pairs, RandomTask)
    if rt:
        depths = sorted({t.depth for t in rt})
        widths = sorted({t.width for t in rt})
        parts.append(
            f"Random ReLU nets [1, width x depth, 1] (depths {depths}, widths {widths}, "
            f"{len(rt[0].seeds)} seeds each, PyTorch's default initialisation): exact knots at "
            f"init and after full-batch Adam (lr {rt[0].lr:g}) on a 1-D regression task (256 "
            f"points in [-1, 1]) until the training MSE is at most {rt[0].mse_target:g} "
            f"(convergence criterion) or {rt[0].epochs} epochs; the exponent of knots against "
            f"neurons and the trained/init ratio with {N_BOOT} bootstrap resamples (95%)."
        )
    for t in _tasks_of(pairs, TrainingTask):
        parts.append(
            f"Knots of one [1, {t.width}, {t.width}, 1] net every {t.every} epochs of {t.epochs} "
            f"epochs of training (criterion: MSE <= {t.mse_target:g} at the end)."
        )
    for t in _tasks_of(pairs, Regions2DTask):
        parts.append(
            f"Exact activation regions of a [2, {t.width}, {t.width}, 1] net on [-1, 1]^2 at init "
            f"and after training on a radial 2-D task (up to {t.epochs} epochs, criterion MSE <= "
            f"{t.mse_target:g})."
        )
    return " ".join(parts) if parts else "No finished tasks."


def departures(pairs: Pairs) -> list[str]:
    out = [
        "Chen's paper body (its proof, its exact bound and its example network) was not available: "
        "the bound prod(n_i+1)-1 and its proof are derived here (each step checked by exact "
        "counting on the study's networks), the bound-attaining networks are this project's "
        "folding construction, and the paper's claims are taken from its abstract.",
        "Serra et al.'s text could not be retrieved here: their upper bound is implemented as "
        "published (sum over j in J of prod C(n_l, j_l), with n0 = 1) and their claim is taken "
        "from the abstract; an activation region of a one-input net is an interval, so regions = "
        "breakpoints + 1.",
        "Hanin & Rolnick count regions along lines through the input space of networks with "
        "high-dimensional inputs; here the networks have one input (regions along the whole line "
        "and in [-1, 1]), PyTorch's default initialisation and a synthetic 1-D task, and the 2-D "
        "slice comes from a synthetic 2-D task.",
    ]
    nt = _tasks_of(pairs, NarrowTask)
    if nt:
        out.append(
            "The narrow-width lower bounds come from a hill climb with a finite budget; where it "
            "does not reach the proven upper bound the maximum is only bracketed."
        )
    scale = _scale_of(pairs)
    if scale in ("quick", "test"):
        out.append(
            "Quick scale: a sample of the width lists of depth 3-4, short searches, widths up to "
            "32 and 3 seeds for the random nets."
        )
    elif scale == "paper":
        out.append(
            "Paper scale (fits an hour on 2 cores): random nets up to width 64 and depth 4 with 6 "
            "seeds, searches of 3,000 steps from 9 starts, narrow lists up to depth 4, the "
            "one-layer exhaustive search up to 5 units; the full scale (for a cluster) goes to "
            "width 256, depth 5, 20 seeds, 20,000-step searches and 6 units."
        )
    return out


def _scale_of(pairs: Pairs) -> str | None:
    nts = _tasks_of(pairs, NarrowTask)
    for name, g in SCALES.items():
        if nts and nts[0].steps == g["steps"] and nts[0].starts == g["starts"]:
            return name
    return None


def notes(pairs: Pairs) -> list[str]:
    out = []
    amb = [w for w, *_rest, a in _tight_rows(pairs) if a]
    if amb:
        out.append(
            f"{len(amb)} construction counts were flagged numerically ambiguous by the float64 "
            "engine (first: " + ", ".join(_fmt_w(w) for w in amb[:3]) + ")."
        )
    narrow = _of(pairs, NarrowResult)
    over = [r for r in narrow if "exceeded" in _narrow_status(r)]
    if over:
        out.append(
            f"A counted network exceeds the refined upper bound on {len(over)} narrow width "
            "lists (" + ", ".join(_fmt_w(r.widths) for r in over[:5]) + "): that bound's "
            "derivation has an error there, and those lists are shown as exceeded, not proven."
        )
    if narrow:
        out.append(
            "How the refined upper bound is proven: a unit crosses zero at most once per "
            "activation piece and at most as often as a functional of the previous layer crosses "
            "a level; a functional of one layer of width 1 or 2 fed by one number is monotone or "
            "has two monotone runs (the exhaustive one-layer search), so it crosses a level at "
            "most once or twice; a last layer of width 1 loses the breakpoints where its unit is "
            "off. See nngeom/studies/knots/bounds.py for the full argument."
        )
    missed = _missed(pairs)
    if missed:
        out.append(
            f"{len(missed)} trained networks did not meet their convergence criterion (listed in "
            "a table); the training verdict uses only those that did."
        )
    return out


STUDY = typed_study(
    name="knots",
    title="The upper bound on knots; linear regions in practice",
    paper=PAPER,
    task_types=[
        TightTask,
        BigTask,
        OneLayerTask,
        NarrowTask,
        RandomTask,
        TrainingTask,
        Regions2DTask,
    ],
    result_types={
        TightTask: TightResult,
        BigTask: BigResult,
        OneLayerTask: OneLayerResult,
        NarrowTask: NarrowResult,
        RandomTask: RandomResult,
        TrainingTask: TrainingResult,
        Regions2DTask: Regions2DResult,
    },
    tasks=tasks,
    verdicts=verdicts,
    figures=figures,
    tables=tables,
    protocol=protocol,
    departures=departures,
    notes=notes,
    order=20,
)
