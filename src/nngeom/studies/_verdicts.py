"""Verdicts: what a study concludes about its paper's claims, computed from the numbers.

Every study has a pure ``verdicts(results) -> list[Verdict]``. A :class:`Verdict` names the
paper's claim (its words, where in the paper), the measured value with its interval, the
criterion as a rule with its numbers, and the :class:`Outcome` that the rule gives. The
report's text about outcomes is generated from the verdicts (:func:`verdict_table`,
:func:`outcome_sentence`), so it cannot say more than they do.

The rule builders below (:func:`interval_vs`, :func:`close_to`, :func:`count_of`,
:func:`not_run`) are the only places where an outcome is decided; a study picks one per claim
and states its threshold.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

__all__ = [
    "Claim",
    "Measured",
    "Outcome",
    "Verdict",
    "beyond",
    "close_to",
    "count_of",
    "graded_vs",
    "interval_vs",
    "not_run",
    "outcome_sentence",
    "some_of",
    "verdict_rows",
]


class Outcome(str, Enum):
    """How a measured value stands to a paper's claim."""

    REPRODUCED = "reproduced"
    PARTLY = "partly"
    NOT_REPRODUCED = "not reproduced"  # the evidence does not support the claim
    REFUTED = "refuted"  # the evidence contradicts it
    BEYOND = "beyond the paper"  # a finding the paper does not make (no claim to test)
    NOT_RUN = "not run"


@dataclass(frozen=True)
class Claim:
    """A paper's claim: ``text`` in the paper's words (or closest paraphrase), ``where`` it is
    made (section, theorem, figure, table)."""

    text: str
    where: str


@dataclass(frozen=True)
class Measured:
    """A measured value, with its interval (``low``, ``high``; e.g. a 95% bootstrap interval) and
    the number of independent units it comes from (``n``: nets, seeds, examples)."""

    value: float | None
    low: float | None = None
    high: float | None = None
    n: int | None = None
    what: str = ""  # what the value is, e.g. "Kendall tau(TS, gap)"

    def text(self, fmt: str = ".3g") -> str:
        if self.value is None or not math.isfinite(self.value):
            return "n/a"
        s = f"{self.value:{fmt}}"
        if self.low is not None and self.high is not None:
            s += f" [{self.low:{fmt}}, {self.high:{fmt}}]"
        if self.n is not None:
            s += f" (n={self.n})"
        return s


@dataclass(frozen=True)
class Verdict:
    """The outcome of testing one claim: see the module docstring."""

    key: str  # a stable id, e.g. "tangent.primary"
    claim: Claim
    measured: Measured
    criterion: str  # the rule with its numbers, e.g. "reproduced if the 95% interval > 0"
    outcome: Outcome
    why: str  # the rule applied to the numbers, e.g. "0.12 > 0"

    def sentence(self) -> str:
        """One sentence for the report: the claim, its outcome and why."""
        return f"{self.claim.text} ({self.claim.where}): {self.outcome.value}; {self.why}."


def _sign(direction: str) -> float:
    """1 for ``"above"``, -1 for ``"below"``; anything else is refused."""
    if direction not in ("above", "below"):
        raise ValueError(f"direction must be 'above' or 'below', got {direction!r}")
    return 1.0 if direction == "above" else -1.0


def interval_vs(
    key: str,
    claim: Claim,
    m: Measured,
    threshold: float,
    *,
    direction: str = "above",
    refute: bool = True,
) -> Verdict:
    """A claim that a quantity lies ``direction`` (``"above"``/``"below"``) ``threshold``.

    Rule: reproduced when the whole interval lies beyond the threshold; refuted (when
    ``refute``) when the whole interval lies on the other side; otherwise not reproduced (the
    interval contains the threshold: no evidence either way). Without an interval the point
    value is used and the outcome is at best ``partly``.
    """
    sign = _sign(direction)
    rel = ">" if direction == "above" else "<"
    other = "<" if direction == "above" else ">"
    criterion = (
        f"reproduced if the interval of {m.what or 'the value'} lies {direction} {threshold:g}"
        + (f"; refuted if it lies entirely {'below' if sign > 0 else 'above'}" if refute else "")
    )
    if m.value is None or not math.isfinite(m.value):
        return Verdict(key, claim, m, criterion, Outcome.NOT_RUN, "no finite value was measured")
    if m.low is None or m.high is None:
        beyond = sign * (m.value - threshold) > 0
        out = Outcome.PARTLY if beyond else Outcome.NOT_REPRODUCED
        why = f"{m.value:.3g} {rel if beyond else other} {threshold:g}, without an interval"
        return Verdict(key, claim, m, criterion, out, why)
    lo, hi = (m.low, m.high) if sign > 0 else (-m.high, -m.low)
    t = sign * threshold
    if lo > t:
        out, why = Outcome.REPRODUCED, f"interval {m.text()} lies {direction} {threshold:g}"
    elif hi < t:
        why = f"interval {m.text()} lies on the other side of {threshold:g}"
        out = Outcome.REFUTED if refute else Outcome.NOT_REPRODUCED
    else:
        out, why = Outcome.NOT_REPRODUCED, f"interval {m.text()} contains {threshold:g}"
    return Verdict(key, claim, m, criterion, out, why)


def close_to(
    key: str,
    claim: Claim,
    m: Measured,
    target: float,
    *,
    rtol: float,
    partly_rtol: float | None = None,
) -> Verdict:
    """A claim that a quantity equals the paper's ``target``.

    Rule: reproduced when ``|value - target| <= rtol * |target|`` (or the interval, when given,
    contains a point of that band); partly within ``partly_rtol``; otherwise not reproduced.
    """
    band = rtol * abs(target)
    criterion = f"reproduced if within {rtol:.3g} (relative) of the paper's {target:.4g}"
    if partly_rtol is not None:
        criterion += f"; partly if within {partly_rtol:.3g}"
    if m.value is None or not math.isfinite(m.value):
        return Verdict(key, claim, m, criterion, Outcome.NOT_RUN, "no finite value was measured")
    lo = m.low if m.low is not None else m.value
    hi = m.high if m.high is not None else m.value
    dist = max(0.0, lo - target, target - hi)  # from the interval to the target
    rel = dist / abs(target) if target else dist
    if dist <= band:
        out = Outcome.REPRODUCED
    elif partly_rtol is not None and dist <= partly_rtol * abs(target):
        out = Outcome.PARTLY
    else:
        out = Outcome.NOT_REPRODUCED
    why = f"measured {m.text()} vs the paper's {target:.4g}: relative distance {rel:.3g}"
    return Verdict(key, claim, m, criterion, out, why)


def count_of(
    key: str,
    claim: Claim,
    held: int,
    total: int,
    *,
    what: str,
    partly_at: float = 0.5,
) -> Verdict:
    """A claim checked case by case (``held`` of ``total`` cases agree).

    Rule: reproduced when every case holds; partly when at least ``partly_at`` of them do;
    refuted when none does; otherwise not reproduced. ``total == 0``: not run.
    """
    m = Measured(held / total if total else None, n=total, what=f"share of {what}")
    partly = f"; partly if at least {partly_at:.0%}" if partly_at < 1 else ""
    criterion = f"reproduced if all {what} agree{partly}; refuted if none"
    if total == 0:
        return Verdict(key, claim, m, criterion, Outcome.NOT_RUN, f"no {what} were run")
    if held == total:
        out = Outcome.REPRODUCED
    elif held == 0:
        out = Outcome.REFUTED
    elif held >= partly_at * total:
        out = Outcome.PARTLY
    else:
        out = Outcome.NOT_REPRODUCED
    return Verdict(key, claim, m, criterion, out, f"{held} of {total} {what} agree")


def not_run(key: str, claim: Claim, why: str, *, criterion: str = "") -> Verdict:
    """A claim this run did not test (``why``: what was missing)."""
    return Verdict(key, claim, Measured(None), criterion or "not tested", Outcome.NOT_RUN, why)


def beyond(key: str, claim: Claim, m: Measured, why: str) -> Verdict:
    """A finding of this run that the paper does not make (reported, not judged)."""
    return Verdict(key, claim, m, "no claim in the paper to test", Outcome.BEYOND, why)


def verdict_rows(verdicts: Sequence[Verdict]) -> list[list[str]]:
    """Rows ``[claim, where, measured, criterion, outcome]`` for the report's verdict table."""
    return [
        [v.claim.text, v.claim.where, v.measured.text(), v.criterion, v.outcome.value]
        for v in verdicts
    ]


def outcome_sentence(verdicts: Sequence[Verdict]) -> str:
    """``"3 claims tested: 2 reproduced, 1 not reproduced."`` (counts of each outcome)."""
    counts: dict[Outcome, int] = {}
    for v in verdicts:
        counts[v.outcome] = counts.get(v.outcome, 0) + 1
    tested = sum(n for o, n in counts.items() if o not in (Outcome.NOT_RUN, Outcome.BEYOND))
    parts = [f"{counts[o]} {o.value}" for o in Outcome if o in counts]
    return f"{tested} claim{'s' if tested != 1 else ''} tested: {', '.join(parts)}."


def graded_vs(
    key: str,
    claim: Claim,
    m: Measured,
    full: float,
    partial: float,
    *,
    direction: str = "above",
    refute: bool = True,
) -> Verdict:
    """A claim with a strong reading (the quantity lies ``direction`` ``full``) and a weak one
    (``direction`` ``partial``), e.g. "orders of magnitude": 100x in full, 10x in part.

    Rule: reproduced when the whole interval lies beyond ``full``; partly when it lies beyond
    ``partial`` (but not wholly beyond ``full``); refuted (when ``refute``) when it lies
    entirely on the other side of ``partial``; otherwise not reproduced. Without an interval
    the point value is used and the outcome is at best ``partly``.
    """
    sign = _sign(direction)
    if sign * (full - partial) < 0:
        raise ValueError(f"full={full:g} must lie {direction} partial={partial:g}")
    other = "below" if sign > 0 else "above"
    what = m.what or "the value"
    criterion = (
        f"reproduced if the interval of {what} lies {direction} {full:g}; partly if it lies "
        f"{direction} {partial:g}"
        + (f"; refuted if it lies entirely {other} {partial:g}" if refute else "")
    )
    if m.value is None or not math.isfinite(m.value):
        return Verdict(key, claim, m, criterion, Outcome.NOT_RUN, "no finite value was measured")
    if m.low is None or m.high is None:
        past = sign * (m.value - partial) > 0
        out = Outcome.PARTLY if past else Outcome.NOT_REPRODUCED
        rel = direction if past else other
        why = f"{m.value:.3g} lies {rel} {partial:g}, without an interval"
        return Verdict(key, claim, m, criterion, out, why)
    lo, hi = (m.low, m.high) if sign > 0 else (-m.high, -m.low)
    if lo > sign * full:
        out, why = Outcome.REPRODUCED, f"interval {m.text()} lies {direction} {full:g}"
    elif lo > sign * partial:
        out = Outcome.PARTLY
        why = (
            f"interval {m.text()} lies {direction} {partial:g} but not wholly {direction} {full:g}"
        )
    elif hi < sign * partial:
        why = f"interval {m.text()} lies entirely {other} {partial:g}"
        out = Outcome.REFUTED if refute else Outcome.NOT_REPRODUCED
    else:
        out, why = Outcome.NOT_REPRODUCED, f"interval {m.text()} contains {partial:g}"
    return Verdict(key, claim, m, criterion, out, why)


def some_of(key: str, claim: Claim, found: int, total: int, *, what: str) -> Verdict:
    """A claim that *some* cases exist (e.g. "some permutation points are first-order saddles"),
    looked for among ``total`` cases of which ``found`` qualify.

    Rule: reproduced when at least one is found; not reproduced when none is (a sample of cases
    cannot refute a claim of existence); not run when ``total == 0``.
    """
    m = Measured(float(found), n=total, what=f"number of {what}")
    criterion = f"reproduced if at least one of the cases examined is one of the {what}"
    if total == 0:
        return Verdict(key, claim, m, criterion, Outcome.NOT_RUN, f"no cases for {what} were run")
    if found > 0:
        return Verdict(
            key, claim, m, criterion, Outcome.REPRODUCED, f"{found} of {total} cases are {what}"
        )
    return Verdict(
        key, claim, m, criterion, Outcome.NOT_REPRODUCED, f"none of {total} cases are {what}"
    )
