"""The verdict rules: synthetic numbers on both sides of every criterion give the right outcome."""

from __future__ import annotations

import pytest

from nngeom.studies._verdicts import (
    Claim,
    Measured,
    Outcome,
    beyond,
    close_to,
    count_of,
    interval_vs,
    not_run,
    outcome_sentence,
    verdict_rows,
)

C = Claim("TS correlates positively with the gap", "Sec. 4")


@pytest.mark.parametrize(
    ("low", "high", "direction", "want"),
    [
        (0.1, 0.5, "above", Outcome.REPRODUCED),
        (-0.1, 0.5, "above", Outcome.NOT_REPRODUCED),
        (-0.5, -0.1, "above", Outcome.REFUTED),
        (-0.5, -0.1, "below", Outcome.REPRODUCED),
        (0.1, 0.5, "below", Outcome.REFUTED),
        (0.0, 0.5, "above", Outcome.NOT_REPRODUCED),  # touching the threshold is not beyond it
    ],
)
def test_interval_vs(low, high, direction, want):
    m = Measured(0.5 * (low + high), low, high, n=30, what="tau")
    v = interval_vs("k", C, m, 0.0, direction=direction)
    assert v.outcome is want
    assert "0" in v.criterion and v.why


def test_interval_vs_without_interval_is_at_most_partly():
    assert interval_vs("k", C, Measured(0.3), 0.0).outcome is Outcome.PARTLY
    assert interval_vs("k", C, Measured(-0.3), 0.0).outcome is Outcome.NOT_REPRODUCED
    assert interval_vs("k", C, Measured(None), 0.0).outcome is Outcome.NOT_RUN
    assert interval_vs("k", C, Measured(float("nan")), 0.0).outcome is Outcome.NOT_RUN


def test_interval_vs_without_refutation():
    m = Measured(-0.3, -0.5, -0.1)
    assert interval_vs("k", C, m, 0.0, refute=False).outcome is Outcome.NOT_REPRODUCED


@pytest.mark.parametrize(
    ("value", "low", "high", "want"),
    [
        (100.0, None, None, Outcome.REPRODUCED),
        (104.9, None, None, Outcome.REPRODUCED),
        (108.0, None, None, Outcome.PARTLY),
        (130.0, None, None, Outcome.NOT_REPRODUCED),
        (120.0, 104.0, 130.0, Outcome.REPRODUCED),  # the interval reaches the band
        (120.0, 112.0, 130.0, Outcome.NOT_REPRODUCED),
    ],
)
def test_close_to(value, low, high, want):
    v = close_to("k", C, Measured(value, low, high), 100.0, rtol=0.05, partly_rtol=0.1)
    assert v.outcome is want


@pytest.mark.parametrize(
    ("held", "total", "want"),
    [
        (5, 5, Outcome.REPRODUCED),
        (3, 5, Outcome.PARTLY),
        (1, 5, Outcome.NOT_REPRODUCED),
        (0, 5, Outcome.REFUTED),
        (0, 0, Outcome.NOT_RUN),
    ],
)
def test_count_of(held, total, want):
    assert count_of("k", C, held, total, what="nets").outcome is want


def test_report_text_follows_the_verdicts():
    vs = [
        interval_vs("a", C, Measured(0.3, 0.1, 0.5), 0.0),
        count_of("b", C, 0, 4, what="nets"),
        not_run("c", C, "no data"),
        beyond("d", C, Measured(1.0), "an extra finding"),
    ]
    rows = verdict_rows(vs)
    assert [r[-1] for r in rows] == ["reproduced", "refuted", "not run", "beyond the paper"]
    s = outcome_sentence(vs)
    assert s.startswith("2 claims tested") and "1 reproduced" in s and "1 refuted" in s
    for v in vs:
        assert v.outcome.value in v.sentence()


def test_interval_vs_without_refutation_says_which_side():
    v = interval_vs("k", C, Measured(-0.3, -0.5, -0.1), 0.0, refute=False)
    assert v.outcome is Outcome.NOT_REPRODUCED and "other side" in v.why


def test_count_of_all_or_nothing_has_no_partly_clause():
    v = count_of("k", C, 3, 5, what="nets", partly_at=1.0)
    assert "partly" not in v.criterion and v.outcome is Outcome.NOT_REPRODUCED
