"""The tangent study's verdicts on synthetic results (no training, no matplotlib): each criterion
from both sides, the exclusion of nets that missed the training criterion, and no outcome word
outside the verdicts."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

import nngeom as ng
from nngeom.studies._verdicts import Outcome
from nngeom.studies.tangent import (
    BOUND_FAMILIES,
    GRID_MEASURES,
    CurveResult,
    GridNet,
    NetResult,
    TrainingCurve,
    departures,
    notes,
    protocol,
    tables,
    verdicts,
)
from nngeom.studies.tangent.analysis import kendall_tau

OUTCOME_WORDS = re.compile(r"reproduced|refuted|confirmed|holds", re.IGNORECASE)
CLASSES = 3
PER_CLASS = 6
EPOCHS = 8


def _curve_task() -> TrainingCurve:
    return TrainingCurve(
        dataset="fashion-mnist",
        width=16,
        depth=2,
        n_train=100,
        per_class=PER_CLASS,
        per_class_bounds=1,
        epochs=EPOCHS,
        lr=1e-3,
        batch_size=32,
    )


def _curve(
    *,
    ts_trend: np.ndarray | None = None,
    gap_sign: float = 1.0,
    bound_sign: float = 1.0,
    class_signs: tuple[float, ...] | None = None,
    ts_noise: float = 0.0,
    violated: int = 0,
    train_acc_last: float = 0.995,
) -> CurveResult:
    """A synthetic training curve: the gap rises over the epochs (falls with ``gap_sign=-1``);
    TS follows ``ts_trend`` (default: rising), each example with its own scale; class ``c``'s
    gap follows ``class_signs[c]``."""
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(CLASSES), PER_CLASS)
    n = labels.size
    s = np.linspace(0.0, 1.0, EPOCHS)
    train = 0.05 - 0.03 * s
    signs = np.asarray(class_signs if class_signs is not None else (gap_sign,) * CLASSES)
    gap_c = 0.03 + 0.02 * signs[None, :] * (s[:, None] - 0.5)  # (E, C)
    held = train[:, None] + gap_c[:, labels] + 1e-4 * rng.standard_normal((EPOCHS, n))
    trend = 1.0 + s if ts_trend is None else np.asarray(ts_trend, dtype=np.float64)
    scale = 1.0 + 0.1 * rng.random(n)
    ts = trend[:, None] * scale[None, :] + ts_noise * rng.standard_normal((EPOCHS, n))
    jac = 0.1 * ts
    bound = 3.0 + bound_sign * s
    fams = len(BOUND_FAMILIES)
    checks = (EPOCHS * n,) * 3 + (EPOCHS * CLASSES * 10,) * 2
    met = tuple(c - (violated if j == 0 else 0) for j, c in enumerate(checks))
    return CurveResult(
        dataset="fashion-mnist",
        n_params=1000,
        labels=tuple(int(v) for v in labels),
        train_loss=tuple(train),
        test_loss=tuple(train + 0.03),
        train_acc=tuple(np.linspace(0.8, train_acc_last, EPOCHS)),
        test_acc=tuple(np.full(EPOCHS, 0.8)),
        train_loss_class=tuple(tuple(train[e] for _ in range(CLASSES)) for e in range(EPOCHS)),
        heldout_loss=tuple(tuple(row) for row in held),
        ts=tuple(tuple(row) for row in ts),
        jac=tuple(tuple(row) for row in jac),
        log_bound_linf=tuple(bound),
        log_bound_path=tuple(bound - 1),
        log_bound_spectral=tuple(bound - 2),
        log_bound_active_paths=tuple(bound - 1.5),
        dist_init=tuple(1.0 + s),
        bound_met=met,
        bound_checks=checks,
        bound_min_ratio=(0.5 if violated else 2.0,) * fams,
        bound_median_ratio=tuple((3.0,) * fams for _ in range(EPOCHS)),
        converged=train_acc_last >= 0.99,
    )


def _net(width: int, lr: float, **measures: float) -> tuple[GridNet, NetResult]:
    task = GridNet(
        dataset="fashion-mnist",
        width=width,
        depth=1,
        lr=lr,
        batch_size=64,
        n_train=100,
        max_epochs=10,
        n_measure=10,
        n_bounds=2,
        n_sharp=10,
    )
    converged = measures.pop("converged", True)
    values = {k: measures.get(k, 1.0) for k in GRID_MEASURES}
    gap = measures["gap"]
    result = NetResult(
        train_acc=1.0 if converged else 0.9,
        test_acc=1.0 - gap,
        train_ce=0.005 if converged else 0.3,
        test_ce=0.5,
        gap=gap,
        epochs=10,
        stopped="ce" if converged else "cap",
        converged=converged,
        bound_met=(10,) * len(BOUND_FAMILIES),
        bound_checks=(10,) * len(BOUND_FAMILIES),
        **values,
    )
    return task, result


def _grid(ts_of, jac_of, *, extra: list | None = None) -> list[tuple[GridNet, NetResult]]:
    """A 3 x 3 grid (width x lr); the gap grows with both; TS and the Jacobian norm are
    functions of the gap (and of the net's index)."""
    out = []
    for i, (w, lr) in enumerate((w, lr) for w in (8, 16, 32) for lr in (1e-3, 3e-3, 1e-2)):
        gap = 0.1 + 0.01 * (w // 8) + 0.003 * round(math.log10(lr) * 3)
        out.append(
            _net(w, lr, gap=gap, ts_test=ts_of(gap, i), jac_test=jac_of(gap, i), log_bound_linf=gap)
        )
    return out + (extra or [])


def _by_key(vs):
    return {v.key: v for v in vs}


def test_fast_kendall_tau_matches_nngeom():
    rng = np.random.default_rng(3)
    for n in (2, 3, 7, 40):
        x = rng.integers(0, 4, n).astype(float)  # ties
        y = rng.standard_normal(n)
        x[0] = np.nan
        ours, ref = kendall_tau(x, y), ng.kendall_tau(x, y)
        assert (math.isnan(ours) and math.isnan(ref)) or ours == pytest.approx(ref, abs=1e-12)
    assert math.isnan(kendall_tau(np.ones(5), np.arange(5.0)))


def test_curve_association_both_sides():
    task = _curve_task()
    up = _by_key(verdicts([(task, _curve())]))
    assert up["tangent.curve.ts_gap"].outcome is Outcome.REPRODUCED
    assert up["tangent.curve.bound_gap"].outcome is Outcome.REPRODUCED
    assert up["tangent.curve.per_class"].outcome is Outcome.REPRODUCED
    assert up["tangent.curve.ts_gap"].measured.n == CLASSES * PER_CLASS
    down = _by_key(verdicts([(task, _curve(gap_sign=-1.0))]))
    assert down["tangent.curve.ts_gap"].outcome is Outcome.REFUTED
    assert down["tangent.curve.bound_gap"].outcome is Outcome.REFUTED
    assert down["tangent.curve.per_class"].outcome is Outcome.REFUTED
    # the bound against a rising gap: a falling bound contradicts the claim
    falling = _by_key(verdicts([(task, _curve(bound_sign=-1.0))]))
    assert falling["tangent.curve.bound_gap"].outcome is Outcome.REFUTED
    assert falling["tangent.curve.ts_gap"].outcome is Outcome.REPRODUCED


def test_curve_without_association_is_not_reproduced():
    # TS up and down around a rising gap (tau 0 without noise), noisy from example to example:
    # the interval over examples contains 0
    zigzag = np.array([1.0, 4.0, 8.0, 5.0, 7.0, 3.0, 6.0, 2.0])
    curve = _curve(ts_trend=zigzag, ts_noise=3.0)
    v = _by_key(verdicts([(_curve_task(), curve)]))["tangent.curve.ts_gap"]
    assert v.outcome is Outcome.NOT_REPRODUCED
    assert v.measured.low < 0 < v.measured.high


def test_curve_per_class_partly_and_not():
    task = _curve_task()
    two_of_three = verdicts([(task, _curve(class_signs=(1.0, 1.0, -1.0)))])
    assert _by_key(two_of_three)["tangent.curve.per_class"].outcome is Outcome.PARTLY
    one_of_three = verdicts([(task, _curve(class_signs=(1.0, -1.0, -1.0)))])
    assert _by_key(one_of_three)["tangent.curve.per_class"].outcome is Outcome.NOT_REPRODUCED


def test_grid_primary_and_association_both_sides():
    good = _by_key(verdicts(_grid(lambda g, i: g, lambda g, i: -g)))
    assert good["tangent.grid.primary"].outcome is Outcome.REPRODUCED
    assert good["tangent.grid.ts_gap"].outcome is Outcome.REPRODUCED
    assert good["tangent.grid.psi"].outcome is Outcome.REPRODUCED
    assert good["tangent.grid.bound_gap"].outcome is Outcome.REPRODUCED
    bad = _by_key(verdicts(_grid(lambda g, i: -g, lambda g, i: g)))
    assert bad["tangent.grid.primary"].outcome is Outcome.REFUTED
    assert bad["tangent.grid.ts_gap"].outcome is Outcome.REFUTED
    assert bad["tangent.grid.psi"].outcome is Outcome.REFUTED
    # TS and the Jacobian norm equal: the primary difference is 0, not above it
    tie = _by_key(verdicts(_grid(lambda g, i: g, lambda g, i: 2 * g)))
    assert tie["tangent.grid.primary"].outcome is Outcome.NOT_REPRODUCED
    # TS falls with the gap, the Jacobian norm falls faster: a larger tau than the Jacobian's is
    # not a better ranking when TS itself does not rank the nets in the claimed direction
    both_down = _by_key(verdicts(_grid(lambda g, i: -g + 0.008 * (i % 3), lambda g, i: -g)))
    assert both_down["tangent.grid.ts_gap"].outcome is Outcome.REFUTED
    v = both_down["tangent.grid.primary"]
    assert v.measured.low > 0  # the difference alone would say "reproduced"
    assert v.outcome is Outcome.NOT_REPRODUCED and "not above 0" in v.why
    assert "tau(TS, gap) lies above 0" in v.criterion


def test_grid_excludes_nets_that_missed_the_criterion():
    # two unconverged nets that would reverse the association if they were counted
    extra = [
        _net(8, 3e-2, gap=0.9, ts_test=-5.0, jac_test=5.0, log_bound_linf=0.0, converged=False),
        _net(64, 3e-2, gap=0.95, ts_test=-6.0, jac_test=6.0, log_bound_linf=0.0, converged=False),
    ]
    pairs = _grid(lambda g, i: g, lambda g, i: -g, extra=extra)
    vs = _by_key(verdicts(pairs))
    assert vs["tangent.grid.ts_gap"].outcome is Outcome.REPRODUCED
    assert vs["tangent.grid.ts_gap"].measured.n == 9
    assert any("2 of 11 grid nets did not meet" in s for s in notes(pairs))
    excluded = next(t for t in tables(pairs) if "did not meet" in t.caption)
    assert len(excluded.rows) == 2


def test_missing_parts_are_not_run():
    only_curve = _by_key(verdicts([(_curve_task(), _curve())]))
    assert only_curve["tangent.grid.primary"].outcome is Outcome.NOT_RUN
    only_grid = _by_key(verdicts(_grid(lambda g, i: g, lambda g, i: -g)))
    assert only_grid["tangent.curve.ts_gap"].outcome is Outcome.NOT_RUN
    # too few converged nets for a tau: not run rather than a verdict on noise
    few = _by_key(verdicts(_grid(lambda g, i: g, lambda g, i: -g)[:3]))
    assert few["tangent.grid.primary"].outcome is Outcome.NOT_RUN


def test_bound_check_is_reported_as_beyond_the_paper_with_its_count():
    ok = _by_key(verdicts([(_curve_task(), _curve())]))["tangent.bounds.check"]
    assert ok.outcome is Outcome.BEYOND and ok.measured.value == 1.0
    bad = _by_key(verdicts([(_curve_task(), _curve(violated=3))]))["tangent.bounds.check"]
    assert bad.outcome is Outcome.BEYOND and bad.measured.value < 1.0
    made = EPOCHS * CLASSES * PER_CLASS * 3 + EPOCHS * CLASSES * 10 * 2
    assert f"{made - 3} of {made} checks met" in bad.why
    assert "not the paper's statements" in bad.claim.text


def test_no_outcome_words_outside_the_verdicts(tmp_path):
    curve_pairs = [(_curve_task(), _curve(train_acc_last=0.9))]
    grid = _grid(
        lambda g, i: g,
        lambda g, i: -g,
        extra=[_net(8, 3e-2, gap=0.2, ts_test=1.0, jac_test=1.0, converged=False)],
    )
    for pairs in (curve_pairs, grid, curve_pairs + grid, []):
        texts = [protocol(pairs), *departures(pairs), *notes(pairs)]
        for t in tables(pairs):
            texts.append(t.caption)
            texts.extend(str(c) for row in t.rows for c in row)
        for text in texts:
            assert not OUTCOME_WORDS.search(text), text
