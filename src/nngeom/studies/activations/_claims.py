"""The activations study's verdicts: the paper's claims tested by paired comparisons over seeds.

Pure (no matplotlib, no training): :func:`verdicts` reads finished ``(MethodRun,
MethodResult)`` pairs. A comparison of two methods on a problem pairs their nets seed by seed
(the same layer weights at start and the same minibatch order) and keeps the pairs where both
nets met the convergence criterion (early stopping before the epoch cap) without diverging; the
others are counted as excluded. Its interval is the 95% Student-t interval of the mean paired
difference, oriented so that a positive difference favours the method (accuracy: method - base;
MSE: base - method); the Wilcoxon signed-rank p-value is reported beside it.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from .._verdicts import Claim, Measured, Verdict, beyond, count_of, interval_vs, not_run
from ._runs import EQUAL, IMAGE, MethodResult, MethodRun

__all__ = [
    "CLAIM_PROBLEMS",
    "PARAM_SHARE_MAX",
    "Paired",
    "paired",
    "result_of",
    "verdicts",
]

# the problems on which the paper's claim of better results is tested (the 1-D task is ours)
CLAIM_PROBLEMS = ("image-mlp", "image-conv", "diabetes")
# "not a large amount of extra parameters": the VAF parameters are at most this share of the
# ReLU net's parameters
PARAM_SHARE_MAX = 0.02
CONFIDENCE = 0.95
MIN_PAIRS = 2  # fewer converged pairs than this give no interval: the comparison is not run
PAPER_WHERE = "abstract (arXiv 1902.03306; Neurocomputing 370, 2019)"
CLAIM_BETTER = (
    '"this approach could lead to better results than using a pre-defined activation '
    'function": VAF vs ReLU on {label}'
)
CLAIM_PARAMS = (
    '"without introducing a large amount of extra parameters that need to be learned": '
    "VAF parameters at most {share:.0%} of the ReLU net's, in the nets of the tests above"
)
LABELS = {
    "image-mlp": "the image MLP",
    "image-conv": "the image conv net",
    "diabetes": "diabetes regression (stand-in for the paper's Delve sets)",
    "sine1d": "the 1-D regression task",
}


def metric_name(problem: str) -> str:
    return "accuracy" if problem in IMAGE else "MSE"


def higher_is_better(problem: str) -> bool:
    return problem in IMAGE


@dataclass(frozen=True)
class Paired:
    """A seed-by-seed comparison of ``method`` with ``base`` on ``problem``: ``diffs`` oriented
    so that positive favours ``method``; ``low``/``high`` the 95% t-interval of their mean
    (None with fewer than :data:`MIN_PAIRS`); ``excluded``: seeds where either net missed the
    convergence criterion, diverged, or has no metric."""

    problem: str
    method: str
    base: str
    diffs: tuple[float, ...]
    excluded: tuple[int, ...]
    mean: float | None
    low: float | None
    high: float | None
    p_wilcoxon: float | None

    @property
    def n(self) -> int:
        return len(self.diffs)

    def measured(self) -> Measured:
        orient = (
            f"{self.method} - {self.base}"
            if higher_is_better(self.problem)
            else f"{self.base} - {self.method}"
        )
        return Measured(
            self.mean,
            self.low,
            self.high,
            n=self.n,
            what=(
                f"mean paired difference of test {metric_name(self.problem)}, {orient} "
                f"(positive: {self.method} better)"
            ),
        )

    def text(self) -> str:
        """The comparison's numbers in words (no outcome)."""
        p = "n/a" if self.p_wilcoxon is None else f"{self.p_wilcoxon:.3g}"
        return (
            f"{self.measured().text()} over {self.n} converged pair(s), "
            f"{len(self.excluded)} excluded; Wilcoxon p={p}"
        )


def result_of(pairs: Sequence[tuple[object, object]], problem: str, method: str):
    """The ``(MethodRun, MethodResult)`` of ``method`` on ``problem``, or None."""
    for task, res in pairs:
        if isinstance(task, MethodRun) and isinstance(res, MethodResult):
            if task.problem == problem and task.method == method:
                return task, res
    return None


def _usable(res: MethodResult) -> dict[int, float]:
    out = {}
    for s, m, c, d in zip(res.seeds, res.test_metric, res.converged, res.diverged):
        if m is not None and math.isfinite(m) and c and not d:
            out[s] = float(m)
    return out


def t_interval(diffs: Sequence[float]) -> tuple[float | None, float | None, float | None]:
    """Mean and 95% Student-t interval of ``diffs`` (None without :data:`MIN_PAIRS`)."""
    if len(diffs) < MIN_PAIRS:
        return None, None, None
    from scipy.stats import t as student_t

    m = statistics.fmean(diffs)
    sd = statistics.stdev(diffs)
    half = float(student_t.ppf(0.5 + CONFIDENCE / 2, len(diffs) - 1)) * sd / math.sqrt(len(diffs))
    return m, m - half, m + half


def wilcoxon_p(diffs: Sequence[float]) -> float | None:
    """Two-sided Wilcoxon signed-rank p of ``diffs`` (exact without zeros and ties, else the
    normal approximation); 1.0 when every difference is zero; None without data."""
    if not diffs:
        return None
    nonzero = [d for d in diffs if d != 0]
    if not nonzero:
        return 1.0
    from scipy.stats import wilcoxon

    ties = len({abs(d) for d in nonzero}) < len(nonzero)
    method = "approx" if ties or len(nonzero) < len(diffs) else "exact"
    return float(wilcoxon(list(diffs), zero_method="wilcox", method=method).pvalue)


def paired(
    pairs: Sequence[tuple[object, object]], problem: str, method: str, base: str = "relu"
) -> Paired | None:
    """Compare ``method`` with ``base`` on ``problem`` seed by seed (None if either is missing)."""
    a, b = result_of(pairs, problem, method), result_of(pairs, problem, base)
    if a is None or b is None:
        return None
    ua, ub = _usable(a[1]), _usable(b[1])
    seeds = sorted(set(a[1].seeds) & set(b[1].seeds))
    sign = 1.0 if higher_is_better(problem) else -1.0
    kept = [s for s in seeds if s in ua and s in ub]
    diffs = tuple(sign * (ua[s] - ub[s]) for s in kept)
    m, lo, hi = t_interval(diffs)
    return Paired(
        problem,
        method,
        base,
        diffs,
        tuple(s for s in seeds if s not in kept),
        m,
        lo,
        hi,
        wilcoxon_p(diffs),
    )


def _better(pairs: Sequence[tuple[object, object]], problem: str) -> Verdict:
    key = f"activations.better.{problem}"
    claim = Claim(CLAIM_BETTER.format(label=LABELS[problem]), PAPER_WHERE)
    p = paired(pairs, problem, "vaf")
    if p is None:
        return not_run(key, claim, f"VAF and ReLU were not both run on {problem}")
    if p.n < MIN_PAIRS:
        return not_run(
            key,
            claim,
            f"{p.n} converged pair(s) on {problem} ({len(p.excluded)} excluded); "
            f"at least {MIN_PAIRS} are needed for an interval",
        )
    return interval_vs(key, claim, p.measured(), 0.0, direction="above", refute=True)


def _params(pairs: Sequence[tuple[object, object]]) -> Verdict:
    key = "activations.parameters"
    claim = Claim(CLAIM_PARAMS.format(share=PARAM_SHARE_MAX), PAPER_WHERE)
    held = total = 0
    for problem in CLAIM_PROBLEMS:
        v, r = result_of(pairs, problem, "vaf"), result_of(pairs, problem, "relu")
        if v is None or r is None:
            continue
        total += 1
        extra = v[1].n_params - r[1].n_params
        held += extra <= PARAM_SHARE_MAX * r[1].n_params
    return count_of(
        key,
        claim,
        held,
        total,
        what=f"nets whose VAF parameters are at most {PARAM_SHARE_MAX:.0%} of the ReLU net's",
    )


def _vs_rational(pairs: Sequence[tuple[object, object]], problem: str) -> Verdict | None:
    p = paired(pairs, problem, "vaf", base="rational")
    if p is None:
        return None
    claim = Claim(
        f"VAF (k=3) vs the rational (5, 4) activation, both 10 parameters per layer, on "
        f"{LABELS[problem]}",
        "not in the paper",
    )
    return beyond(f"activations.rational.{problem}", claim, p.measured(), p.text())


def _sine(pairs: Sequence[tuple[object, object]]) -> list[Verdict]:
    out: list[Verdict] = []
    p = paired(pairs, "sine1d", "vaf", base=EQUAL)
    if p is not None:
        claim = Claim(
            "VAF net 1-16-16-1 vs ReLU net 1-16-17-1 of (nearly) equal parameter count on "
            "the 1-D regression task",
            "not in the paper",
        )
        out.append(beyond("activations.sine1d.mse", claim, p.measured(), p.text()))
    v, r = result_of(pairs, "sine1d", "vaf"), result_of(pairs, "sine1d", EQUAL)
    if v is not None and r is not None and v[1].knots and r[1].knots:
        kv = dict(zip(v[1].seeds, v[1].knots))
        kr = dict(zip(r[1].seeds, r[1].knots))
        seeds = [s for s in sorted(kv) if kv[s] is not None and kr.get(s) is not None]
        diffs = [float(kv[s] - kr[s]) for s in seeds]  # type: ignore[operator]
        m, lo, hi = t_interval(diffs)
        if m is None and diffs:
            m = diffs[0]
        measured = Measured(
            m, lo, hi, n=len(diffs), what="mean paired difference of exact knots, VAF - ReLU"
        )
        mean_v = statistics.fmean(kv[s] for s in seeds) if seeds else math.nan  # type: ignore[misc]
        mean_r = statistics.fmean(kr[s] for s in seeds) if seeds else math.nan  # type: ignore[misc]
        claim = Claim(
            "exact knots on [-3, 3] (nngeom.knots) of the trained VAF net 1-16-16-1 vs the "
            "ReLU net 1-16-17-1",
            "not in the paper",
        )
        out.append(
            beyond(
                "activations.sine1d.knots",
                claim,
                measured,
                f"mean knots {mean_v:.1f} (VAF) vs {mean_r:.1f} (ReLU) over {len(seeds)} seeds",
            )
        )
    return out


def verdicts(pairs: Sequence[tuple[object, object]]) -> list[Verdict]:
    """The study's verdicts: the paper's two claims (better results than a fixed activation, on
    each claim problem; few extra parameters), then findings beyond the paper."""
    out = [_better(pairs, problem) for problem in CLAIM_PROBLEMS]
    out.append(_params(pairs))
    for problem in (*CLAIM_PROBLEMS, "sine1d"):
        v = _vs_rational(pairs, problem)
        if v is not None:
            out.append(v)
    out.extend(_sine(pairs))
    return out
