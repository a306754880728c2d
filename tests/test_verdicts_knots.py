"""The knots study's verdicts on synthetic results (no training, no matplotlib): each criterion
from both sides, and no protocol / note / table text stating an outcome."""

from __future__ import annotations

import re

import pytest

from nngeom.studies._verdicts import Outcome
from nngeom.studies.knots import (
    MSE_TARGET,
    departures,
    notes,
    protocol,
    tables,
    verdicts,
)
from nngeom.studies.knots.experiments import (
    BigResult,
    BigTask,
    NarrowResult,
    NarrowTask,
    RandomResult,
    RandomTask,
    TightResult,
    TightTask,
)

OUTCOME_WORDS = re.compile(r"\b(reproduced|refuted|confirmed|holds)\b", re.IGNORECASE)


def _tight(rows, depth=2):
    """rows: (widths, knots, breakpoints); bounds computed as the study does."""
    from nngeom.studies.knots import bounds

    return (
        TightTask(depth, 8, None, 0),
        TightResult(
            widths=tuple(tuple(w) for w, _, _ in rows),
            bound=tuple(bounds.product_bound(w) for w, _, _ in rows),
            serra_regions=tuple(bounds.serra_regions(w) for w, _, _ in rows),
            knots=tuple(k for _, k, _ in rows),
            breakpoints=tuple(bp for _, _, bp in rows),
            ambiguous=tuple(False for _ in rows),
        ),
    )


def _narrow(widths, upper, lower, *, product, serra=None, upper_bp=None, lower_bp=None):
    return (
        NarrowTask(tuple(widths), 10, 1, 0),
        NarrowResult(
            widths=tuple(widths),
            product_bound=product,
            serra_regions=serra if serra is not None else product + 1,
            upper_knots=upper,
            upper_breakpoints=upper_bp if upper_bp is not None else upper,
            construction_knots=lower,
            construction_breakpoints=lower_bp if lower_bp is not None else lower,
            search_knots=lower,
            search_breakpoints=lower_bp if lower_bp is not None else lower,
            evaluations=10,
            best_theta=(0.0,),
        ),
    )


def _random(
    width, depth, knots_init, knots_trained, *, converged=True, init_data=None, trained_data=None
):
    n = len(knots_init)
    w = (width,) * depth
    return (
        RandomTask(depth, width, tuple(range(n)), 100, 1e-2, MSE_TARGET),
        RandomResult(
            widths=w,
            seeds=tuple(range(n)),
            bound=(width + 1) ** depth - 1,
            knots_init=tuple(knots_init),
            knots_init_data=tuple(init_data if init_data is not None else knots_init),
            knots_trained=tuple(knots_trained),
            knots_trained_data=tuple(trained_data if trained_data is not None else knots_trained),
            pieces_init=tuple(tuple((width + 1) ** i for i in range(depth + 1)) for _ in range(n)),
            pieces_trained=tuple(tuple(width**i for i in range(depth + 1)) for _ in range(n)),
            converged=tuple(converged for _ in range(n)),
            final_mse=tuple(1e-3 if converged else 1.0 for _ in range(n)),
            epochs_run=tuple(100 for _ in range(n)),
        ),
    )


def _by_key(pairs):
    return {v.key: v for v in verdicts(pairs)}


# --------------------------------------------------------------------------------------------
def test_bound_verdict_both_sides():
    ok = [_tight([((3, 3), 15, 15), ((1, 1), 1, 1)])]
    assert _by_key(ok)["knots.bound"].outcome == Outcome.REPRODUCED
    bad = [_tight([((3, 3), 16, 16), ((1, 1), 1, 1)])]  # one net above its bound: no "partly"
    assert _by_key(bad)["knots.bound"].outcome == Outcome.NOT_REPRODUCED
    worse = [_tight([((3, 3), 16, 16)])]
    assert _by_key(worse)["knots.bound"].outcome == Outcome.REFUTED
    # every counted network enters: a searched net above the bound is caught too
    p = [_tight([((3, 3), 15, 15)]), _narrow((1, 1), upper=2, lower=4, product=3)]
    assert _by_key(p)["knots.bound"].outcome == Outcome.NOT_REPRODUCED


def test_tight_verdict_both_sides():
    ok = [_tight([((3, 3), 15, 15), ((4, 3), 19, 19), ((1, 2), 3, 3)])]
    v = _by_key(ok)["knots.tight"]
    assert v.outcome == Outcome.REPRODUCED and v.measured.n == 2  # only lists with widths >= 3
    short = [_tight([((3, 3), 15, 15), ((4, 3), 18, 18)])]
    assert _by_key(short)["knots.tight"].outcome == Outcome.PARTLY
    big = [
        _tight([((3, 3), 15, 15)]),
        (BigTask(), BigResult((64, 64, 64), 274624, 274623, 1.0, False)),
    ]
    assert _by_key(big)["knots.tight"].outcome == Outcome.PARTLY
    assert _by_key([_tight([((1, 1), 2, 2)])])["knots.tight"].outcome == Outcome.NOT_RUN


def test_serra_verdict_both_sides():
    ok = [_tight([((3, 3), 15, 15)])]  # 16 regions = Serra's bound for [3, 3]
    assert _by_key(ok)["serra.exact"].outcome == Outcome.REPRODUCED
    low = [_tight([((3, 3), 15, 14)])]
    assert _by_key(low)["serra.exact"].outcome == Outcome.REFUTED


def test_narrow_verdicts_are_beyond_and_count_proven_maxima():
    pairs = [
        _narrow((1, 1), upper=2, lower=2, product=3, serra=3, upper_bp=2, lower_bp=2),
        _narrow((2, 1), upper=4, lower=4, product=5, serra=6, upper_bp=4, lower_bp=4),
        _narrow((2, 2, 2), upper=20, lower=14, product=26, serra=27, upper_bp=20, lower_bp=14),
    ]
    v = _by_key(pairs)
    assert v["knots.narrow"].outcome == Outcome.BEYOND
    assert v["knots.narrow"].measured.value == 2  # [1,1] and [2,1] proven below the bound
    assert "[2,2,2] in [14, 20]" in v["knots.narrow"].why
    assert v["serra.narrow"].outcome == Outcome.BEYOND
    assert v["serra.narrow"].measured.value == 1  # [2,1]: 5 regions < 6
    assert _by_key([_tight([((3, 3), 15, 15)])])["knots.narrow"].outcome == Outcome.NOT_RUN


def test_linear_growth_verdict_both_sides():
    linear = [_random(w, d, [w * d] * 3, [w * d] * 3) for w in (4, 8, 16, 32) for d in (1, 2)]
    assert _by_key(linear)["hanin.linear"].outcome == Outcome.REPRODUCED
    square = [
        _random(w, d, [(w * d) ** 2] * 3, [w * d] * 3) for w in (4, 8, 16, 32) for d in (2, 3)
    ]
    v = _by_key(square)["hanin.linear"]
    assert v.outcome == Outcome.NOT_REPRODUCED and v.measured.value == pytest.approx(2.0)
    # one hidden layer only (knots = neurons by construction): nothing to test
    shallow = [_random(w, 1, [w] * 3, [w] * 3) for w in (4, 8)]
    assert _by_key(shallow)["hanin.linear"].outcome == Outcome.NOT_RUN


def test_trained_growth_verdict_both_sides():
    ok = [_random(w, 2, [2 * w] * 3, [2 * w + 1] * 3) for w in (4, 8, 16, 32)]
    assert _by_key(ok)["hanin.trained"].outcome == Outcome.REPRODUCED
    fast = [_random(w, 2, [2 * w] * 3, [(2 * w) ** 2] * 3) for w in (4, 8, 16, 32)]
    assert _by_key(fast)["hanin.trained"].outcome == Outcome.NOT_REPRODUCED
    # nets that missed the criterion are excluded: none left, nothing to test
    missed = [_random(w, 2, [2 * w] * 3, [2 * w] * 3, converged=False) for w in (4, 8)]
    v = _by_key(missed)
    assert v["hanin.trained"].outcome == Outcome.NOT_RUN
    assert "hanin.ratio" not in v
    ratio = _by_key([_random(8, 2, [10, 12, 9], [20, 24, 18])])["hanin.ratio"]
    assert ratio.outcome == Outcome.BEYOND and ratio.measured.value == pytest.approx(2.0)


def test_no_text_states_an_outcome():
    pairs = [
        _tight([((3, 3), 15, 15), ((1, 1), 2, 2)]),
        (BigTask(), BigResult((64, 64, 64), 274624, 274624, 1.0, False)),
        _narrow((2, 1), upper=4, lower=4, product=5),
        _narrow((2, 2, 2), upper=20, lower=14, product=26),
        _random(8, 2, [10, 12, 9], [11, 12, 10]),
        _random(4, 1, [4, 4, 4], [4, 4, 4], converged=False),
    ]
    texts = [protocol(pairs), *notes(pairs), *departures(pairs)]
    for t in tables(pairs):
        texts.append(t.caption)
        texts += [str(h) for h in t.header]
        texts += [str(c) for row in t.rows for c in row]
    for text in texts:
        assert not OUTCOME_WORDS.search(text), text
    assert protocol([]) == "No finished tasks."


def test_a_net_above_the_refined_bound_is_shown_as_exceeded_not_proven():
    pairs = [_narrow((2, 1), upper=4, lower=5, product=5)]
    v = _by_key(pairs)["knots.narrow"]
    assert v.outcome == Outcome.BEYOND and v.measured.value == 0
    assert any("exceeds the refined upper bound" in n for n in notes(pairs))
    rows = [t for t in tables(pairs) if t.caption.startswith("Narrow widths")][0].rows
    assert rows[0][5] == "5 counted > upper bound 4"
