"""The saddles study's verdicts on synthetic results (no training, no matplotlib): each criterion
from both sides, and no protocol / note / departure / table text stating an outcome."""

from __future__ import annotations

import re

import pytest

from nngeom.studies._verdicts import Claim, Outcome, some_of
from nngeom.studies.saddles import (
    CountingResult,
    CountingTask,
    MnistTask,
    MultilayerResult,
    TeacherMultilayerTask,
    ToyResult,
    ToyTask,
    departures,
    notes,
    protocol,
    tables,
    verdicts,
)

OUTCOME_WORDS = re.compile(r"\b(reproduced|refuted|confirmed|holds)\b", re.IGNORECASE)


def _toy(rows, *, outputs=1, width=3, seed=0, path=True, valley=(0.5, 0.5, 0.5)):
    """rows: (converged, index, zeros, flat_rank[, grad_norm, reduced_grad_norm]) per pair."""
    n = len(rows)
    col = list(zip(*[(*r, *((1e-12, 1e-12) if len(r) == 4 else ())) for r in rows]))
    conv, index, zeros, rank, grad, red = col
    with_path = path and outputs == 1
    return (
        ToyTask(width, seed, outputs=outputs),
        ToyResult(
            width=width,
            outputs=outputs,
            seed=seed,
            n_points=441,
            attempts=1,
            n_next=outputs,
            student_loss=1e-3,
            student_grad_norm=1e-12,
            student_index=0,
            student_zeros=0,
            student_converged=True,
            pair_i=tuple(range(n)),
            pair_j=tuple(k + 1 for k in range(n)),
            loss=(0.5,) * n,
            grad_norm=tuple(grad),
            reduced_grad_norm=tuple(red),
            converged=tuple(conv),
            index=tuple(index),
            zeros=tuple(zeros),
            flat_rank=tuple(rank),
            flat_quad=(0.0,) * n,
            eigenvalues=((-1.0, 0.0, 1.0),) * n,
            valley=tuple(valley) if with_path else (),
            valley_breaks=(0, 1, 2) if with_path else (),
            point_loss=valley[0] if with_path else None,
            line_t=(0.0, 0.5, 1.0) if with_path else (),
            line=(0.1, 0.4, 0.1) if with_path else (),
            bezier=(0.1, 0.2, 0.1) if with_path else (),
            line_barrier=0.3 if with_path else None,
            bezier_barrier=0.1 if with_path else None,
        ),
    )


def _multi(
    case="onehot",
    *,
    converged=True,
    index=9,
    exact=True,
    zeros=None,
    rank=9,
    full=False,
    grad=1e-10,
):
    task = MnistTask() if case == "onehot" else TeacherMultilayerTask()
    return (
        task,
        MultilayerResult(
            case=case,
            dataset="fashion-mnist",
            sizes=(784, 100, 100, 10),
            n_parameters=89610,
            n_train=10000,
            image_side=28,
            pooled_side=28,
            standardized=False,
            n_inputs=784,
            layer=1,
            i=3,
            j=7,
            n_next=10,
            train_loss=0.01,
            train_accuracy=0.9,
            loss=0.01,
            grad_norm=grad,
            reduced_grad_norm=grad,
            converged=converged,
            full_spectrum=full,
            index=index,
            index_exact=exact,
            zeros=zeros,
            zeros_free=zeros,
            data_null=6700,
            zero_gap=(1e-16, 1e-5) if full else (),
            flat_rank=rank,
            flat_quad=1e-17,
            flat_singular=(1.0,) * rank + (0.0,) * (10 - rank),
            smallest=(-1.0,) * index + (0.5,) * (10 - index) if index < 10 else (-1.0,) * 10,
            largest=(1.0,) * 10,
            lanczos_iterations=300,
            lanczos_converged=True,
            lanczos_residuals=(1e-9,) * 20,
            lanczos_check=None,
            eigenvalues=(),
            preactivations=((-3.0, 3.0), (-2.0, 2.0)),
        ),
    )


def _counting(enum_points=(6, 18), formula_points=(6, 18), enum_minima=(12, 36)):
    return (
        CountingTask(((100, 100),), (1,), ((2, 3), (3, 3)), 0),
        CountingResult(
            widths=((100, 100),),
            order=(1,),
            minima=(str(10**300),),
            points=(str(99 * 10**300),),
            factor=("99",),
            factor_float=(99.0,),
            enum_widths=((2, 3), (3, 3)),
            enum_order=(1, 1),
            enum_minima=tuple(enum_minima),
            enum_points=tuple(enum_points),
            formula_minima=(12, 36),
            formula_points=tuple(formula_points),
        ),
    )


def _by_key(pairs):
    return {v.key: v for v in verdicts(pairs)}


def test_critical_points_from_both_sides():
    ok = _by_key([_toy([(True, 1, 1, 0), (True, 2, 1, 0)])])["saddles.critical"]
    assert ok.outcome is Outcome.REPRODUCED
    # reduced net critical but the split point is not: the claim fails
    bad = _by_key([_toy([(False, 1, 1, 0, 1e-3, 1e-12)])])["saddles.critical"]
    assert bad.outcome is Outcome.REFUTED
    # the reduced net never met the criterion: nothing to test
    none = _by_key([_toy([(False, 1, 1, 0, 1e-3, 1e-3)])])["saddles.critical"]
    assert none.outcome is Outcome.NOT_RUN


def test_zero_count_single_and_multi_output():
    v = _by_key([_toy([(True, 1, 1, 0), (True, 0, 2, 0)])])
    assert v["saddles.zeros_single"].outcome is Outcome.REPRODUCED
    assert v["saddles.zeros_multi"].outcome is Outcome.NOT_RUN
    v = _by_key([_toy([(True, 1, 0, 0)])])
    assert v["saddles.zeros_single"].outcome is Outcome.REFUTED
    # n_2 = 3: zeros >= 3 agree, fewer do not; not-converged points are left out
    v = _by_key([_toy([(True, 0, 3, 0), (True, 0, 3, 0)], outputs=3)])
    assert v["saddles.zeros_multi"].outcome is Outcome.REPRODUCED
    v = _by_key([_toy([(True, 2, 1, 2), (True, 2, 1, 2), (False, 0, 3, 0)], outputs=3)])
    assert v["saddles.zeros_multi"].outcome is Outcome.REFUTED
    v = _by_key([_toy([(True, 0, 3, 0), (True, 2, 1, 2), (True, 2, 1, 2)], outputs=3)])
    assert v["saddles.zeros_multi"].outcome is Outcome.NOT_REPRODUCED
    # a full-spectrum multilayer point counts among the multi-output ones
    v = _by_key([_multi("teacher", index=9, zeros=1, rank=9, full=True)])
    assert v["saddles.zeros_multi"].outcome is Outcome.REFUTED
    v = _by_key([_multi("teacher", index=0, zeros=10, rank=0, full=True)])
    assert v["saddles.zeros_multi"].outcome is Outcome.REPRODUCED


def test_first_order_toy():
    v = _by_key([_toy([(True, 2, 1, 0), (True, 1, 1, 0)])])["saddles.first_order_toy"]
    assert v.outcome is Outcome.REPRODUCED and v.measured.value == 1
    v = _by_key([_toy([(True, 2, 1, 0), (True, 0, 1, 0)])])["saddles.first_order_toy"]
    assert v.outcome is Outcome.NOT_REPRODUCED
    # a first-order point that did not meet the criterion does not count
    v = _by_key([_toy([(False, 1, 1, 0)])])["saddles.first_order_toy"]
    assert v.outcome is Outcome.NOT_RUN
    # multi-output students are not the paper's toy network
    v = _by_key([_toy([(True, 1, 3, 0)], outputs=3)])["saddles.first_order_toy"]
    assert v.outcome is Outcome.NOT_RUN


def test_first_order_mnist():
    assert _by_key([_toy([(True, 1, 1, 0)])])["saddles.first_order_mnist"].outcome is (
        Outcome.NOT_RUN
    )
    v = _by_key([_multi(index=1, rank=1)])["saddles.first_order_mnist"]
    assert v.outcome is Outcome.REPRODUCED
    v = _by_key([_multi(index=9, rank=9)])["saddles.first_order_mnist"]
    assert v.outcome is Outcome.NOT_REPRODUCED
    v = _by_key([_multi(index=1, converged=False, grad=1e-4)])["saddles.first_order_mnist"]
    assert v.outcome is Outcome.NOT_RUN and "1.0e-04" in v.why
    # ten negative Ritz values: index >= 10, decided although not exact
    v = _by_key([_multi(index=10, exact=False)])["saddles.first_order_mnist"]
    assert v.outcome is Outcome.NOT_REPRODUCED
    v = _by_key([_multi(index=1, exact=False, rank=1)])["saddles.first_order_mnist"]
    assert v.outcome is Outcome.NOT_RUN and "bounded from below" in v.why
    # rank(H D) >= 2 forces index >= 2 even when Lanczos saw one negative value
    v = _by_key([_multi(index=1, exact=False, rank=9)])["saddles.first_order_mnist"]
    assert v.outcome is Outcome.NOT_REPRODUCED
    # the constructed case is not the paper's MNIST experiment
    v = _by_key([_multi("teacher", index=1, zeros=9, rank=1, full=True)])
    assert v["saddles.first_order_mnist"].outcome is Outcome.NOT_RUN


def test_valley_from_both_sides():
    v = _by_key([_toy([(True, 1, 1, 0)], valley=(0.5, 0.5, 0.5))])["saddles.valley"]
    assert v.outcome is Outcome.REPRODUCED
    v = _by_key([_toy([(True, 1, 1, 0)], valley=(0.5, 0.5 + 1e-6, 0.5))])["saddles.valley"]
    assert v.outcome is Outcome.REFUTED
    v = _by_key([_toy([(True, 1, 1, 0)], valley=(1e-20, 5e-16, 1e-20))])["saddles.valley"]
    assert v.outcome is Outcome.REPRODUCED  # absolute criterion at numerically zero loss
    assert _by_key([_toy([(True, 1, 1, 0)], path=False)])["saddles.valley"].outcome is (
        Outcome.NOT_RUN
    )


def test_counting_from_both_sides():
    assert _by_key([_counting()])["saddles.counting"].outcome is Outcome.REPRODUCED
    v = _by_key([_counting(enum_points=(6, 17))])["saddles.counting"]
    assert v.outcome is Outcome.PARTLY
    v = _by_key([_counting(enum_points=(5, 17))])["saddles.counting"]
    assert v.outcome is Outcome.REFUTED
    v = _by_key([_counting(enum_minima=(11, 36))])["saddles.counting"]
    assert v.outcome is Outcome.PARTLY
    assert _by_key([_toy([(True, 1, 1, 0)])])["saddles.counting"].outcome is Outcome.NOT_RUN


def test_derived_bound_is_reported_not_judged():
    pairs = [
        _toy([(True, 2, 1, 2), (True, 1, 2, 1)], outputs=3),
        _multi("teacher", index=9, zeros=1, rank=9, full=True),
    ]
    v = _by_key(pairs)["saddles.index_bound"]
    assert v.outcome is Outcome.BEYOND
    assert v.measured.value == 1.0 and v.measured.n == 3
    assert "2 have rank(H D) >= 2" in v.why and "1 have index 1" in v.why
    # a point below the bound shows up in the share
    v = _by_key([_toy([(True, 1, 1, 2)], outputs=3)])["saddles.index_bound"]
    assert v.measured.value == 0.0
    # Lanczos points (no zero count) are not checkable
    v = _by_key([_multi(index=9, rank=9)])["saddles.index_bound"]
    assert v.measured.value is None and v.measured.n == 0


def test_barrier_is_beyond_or_not_run():
    assert _by_key([_toy([(True, 1, 1, 0)])])["saddles.barrier"].outcome is Outcome.BEYOND
    assert _by_key([_counting()])["saddles.barrier"].outcome is Outcome.NOT_RUN


def test_some_of_rule():
    c = Claim("some x exist", "here")
    assert some_of("k", c, 1, 5, what="x").outcome is Outcome.REPRODUCED
    assert some_of("k", c, 0, 5, what="x").outcome is Outcome.NOT_REPRODUCED
    assert some_of("k", c, 0, 0, what="x").outcome is Outcome.NOT_RUN


@pytest.mark.parametrize(
    "pairs",
    [
        [_toy([(True, 1, 1, 0)]), _toy([(True, 2, 1, 2), (False, 1, 1, 2, 1e-3, 1e-3)], outputs=3)],
        [_multi(index=1, rank=1), _multi("teacher", index=9, zeros=1, rank=9, full=True)],
        [_multi(converged=False, grad=1e-3), _counting()],
    ],
)
def test_no_outcome_words_outside_verdicts(pairs):
    texts = [protocol(pairs), *notes(pairs), *departures(pairs)]
    for t in tables(pairs):
        texts.append(t.caption)
        texts += [str(x) for row in t.rows for x in row]
        texts += list(t.header)
    for text in texts:
        assert not OUTCOME_WORDS.search(text), text


def test_notes_state_the_implication_and_mark_unconverged_points():
    pairs = [
        _toy([(True, 2, 1, 2), (False, 1, 1, 2, 1e-3, 1e-3)], outputs=3),
        _multi(converged=False, grad=1e-3),
    ]
    text = " ".join(notes(pairs))
    assert "index + zeros >= n_{k+1}" in text and "first-order" in text
    assert "did not meet the criterion (gradient norm <= 1e-8), 2 of 3," in text
    assert "gradient norm 1.0e-03" in text
    assert any("10000 of the 60,000" in d for d in departures(pairs))
    assert any("stand-in" in d for d in departures(pairs))
