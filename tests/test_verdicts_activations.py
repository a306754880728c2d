"""Verdicts of the activations study on synthetic results (no training): both sides of every
criterion, exclusions of nets that did not converge, and no outcome words outside the verdicts."""

from __future__ import annotations

import re

import pytest

from nngeom.studies import activations as S
from nngeom.studies._verdicts import Outcome
from nngeom.studies.activations import _report as R

SEEDS = tuple(range(10))


def _task(problem: str, method: str, seeds=SEEDS) -> S.MethodRun:
    image = problem.startswith("image")
    return S.MethodRun(
        problem=problem,
        method=method,
        widths=(16, 17) if method == S.EQUAL else (16, 16),
        seeds=tuple(seeds),
        select_seeds=2,
        lr_grid=(3e-4, 1e-3, 3e-3),
        max_extend=2,
        max_epochs=50,
        patience=5,
        batch_size=128 if image else None,
        dataset="fashion-mnist" if image else None,
        n_train=1000 if image else None,
    )


def _result(metric, *, converged=None, n_params=1000, n_act=0, knots=(), **kw):
    n = len(metric)
    fields = dict(
        lrs=(3e-4, 1e-3, 3e-3),
        lr_scores=(0.5, 0.4, 0.45),
        lr=1e-3,
        extended_low=0,
        extended_high=0,
        bracketed=True,
        seeds=SEEDS[:n],
        val_loss=tuple(0.4 for _ in range(n)),
        test_loss=tuple(0.4 for _ in range(n)),
        test_metric=tuple(metric),
        epochs=tuple(20 for _ in range(n)),
        best_epoch=tuple(15 for _ in range(n)),
        converged=tuple(converged if converged is not None else [True] * n),
        diverged=tuple(False for _ in range(n)),
        n_params=n_params,
        n_act_params=n_act,
        knots=tuple(knots),
    )
    fields.update(kw)
    return S.MethodResult(**fields)


# paired differences with a small spread around a shift
NOISE = (0.001, -0.002, 0.0015, -0.001, 0.0005, 0.002, -0.0015, 0.001, -0.0005, 0.0)


def _pairs(problem: str, shift: float, *, converged=None, vaf_params=1020):
    """ReLU and VAF results on ``problem``: VAF better by ``shift`` (in the metric's good
    direction) plus noise."""
    base = (
        [0.85 + 0.01 * i for i in range(10)]
        if problem.startswith("image")
        else [0.5 + 0.01 * i for i in range(10)]
    )
    sign = 1.0 if problem.startswith("image") else -1.0
    vaf = [b + sign * (shift + e) for b, e in zip(base, NOISE)]
    return [
        (_task(problem, "relu"), _result(base, n_params=1000)),
        (_task(problem, "vaf"), _result(vaf, converged=converged, n_params=vaf_params, n_act=20)),
    ]


def _verdict(vs, key):
    found = [v for v in vs if v.key == key]
    assert len(found) == 1, [v.key for v in vs]
    return found[0]


@pytest.mark.parametrize("problem", S.CLAIM_PROBLEMS)
@pytest.mark.parametrize(
    ("shift", "outcome"),
    [(0.01, Outcome.REPRODUCED), (-0.01, Outcome.REFUTED), (0.0, Outcome.NOT_REPRODUCED)],
)
def test_better_claim_on_both_sides(problem, shift, outcome):
    v = _verdict(S.verdicts(_pairs(problem, shift)), f"activations.better.{problem}")
    assert v.outcome is outcome
    assert v.measured.n == 10
    assert "positive: vaf better" in v.measured.what
    assert "lies above 0" in v.criterion
    # the sign convention: a positive measured value means VAF is better, for both metrics
    if shift:
        assert (v.measured.value > 0) == (shift > 0)


def test_regression_orientation_is_base_minus_method():
    p = S.paired(_pairs("diabetes", 0.01), "diabetes", "vaf")
    assert p is not None and p.mean == pytest.approx(0.01 + sum(NOISE) / 10)
    assert "relu - vaf" in p.measured().what


def test_nets_that_did_not_converge_are_excluded_and_counted():
    conv = [True] * 10
    conv[3] = conv[7] = False
    pairs = _pairs("image-mlp", 0.01, converged=conv)
    p = S.paired(pairs, "image-mlp", "vaf")
    assert p.n == 8 and p.excluded == (3, 7)
    v = _verdict(S.verdicts(pairs), "activations.better.image-mlp")
    assert v.measured.n == 8 and v.outcome is Outcome.REPRODUCED
    # too few converged pairs: no interval, the claim is not run on that problem
    none = _pairs("image-mlp", 0.01, converged=[True] + [False] * 9)
    v = _verdict(S.verdicts(none), "activations.better.image-mlp")
    assert v.outcome is Outcome.NOT_RUN and "1 converged pair" in v.why


def test_missing_problem_is_not_run():
    vs = S.verdicts(_pairs("image-mlp", 0.01))
    for problem in ("image-conv", "diabetes"):
        assert _verdict(vs, f"activations.better.{problem}").outcome is Outcome.NOT_RUN


def test_parameter_claim_threshold():
    ok = _pairs("image-mlp", 0.0, vaf_params=1020)  # 20 extra of 1000: 2%
    assert _verdict(S.verdicts(ok), "activations.parameters").outcome is Outcome.REPRODUCED
    big = _pairs("image-mlp", 0.0, vaf_params=1021)  # 2.1%
    assert _verdict(S.verdicts(big), "activations.parameters").outcome is Outcome.REFUTED
    mixed = _pairs("image-mlp", 0.0, vaf_params=1020) + _pairs("diabetes", 0.0, vaf_params=1100)
    assert _verdict(S.verdicts(mixed), "activations.parameters").outcome is Outcome.PARTLY
    assert _verdict(S.verdicts([]), "activations.parameters").outcome is Outcome.NOT_RUN


def test_beyond_the_paper_rows():
    pairs = _pairs("image-conv", 0.01)
    pairs.append((_task("image-conv", "rational"), _result([0.9] * 10, n_params=1020)))
    rel = [0.3] * 10
    pairs += [
        (_task("sine1d", S.EQUAL), _result(rel, knots=[10] * 10)),
        (_task("sine1d", "vaf"), _result([0.2] * 10, knots=[14, 16] * 5)),
    ]
    vs = S.verdicts(pairs)
    r = _verdict(vs, "activations.rational.image-conv")
    assert r.outcome is Outcome.BEYOND and r.measured.n == 10
    mse = _verdict(vs, "activations.sine1d.mse")
    assert mse.outcome is Outcome.BEYOND and mse.measured.value == pytest.approx(0.1)
    k = _verdict(vs, "activations.sine1d.knots")
    assert k.outcome is Outcome.BEYOND and k.measured.value == pytest.approx(5.0)


def test_wilcoxon_and_interval_helpers():
    from nngeom.studies.activations._claims import t_interval, wilcoxon_p

    assert wilcoxon_p([]) is None and wilcoxon_p([0.0, 0.0]) == 1.0
    assert wilcoxon_p([0.1 * (i + 1) for i in range(10)]) == pytest.approx(2 / 2**10)
    assert wilcoxon_p([0.1, 0.1, 0.0, -0.2, 0.3]) > 0.05  # ties and a zero: approximation
    m, lo, hi = t_interval([1.0, 1.0, 1.0])
    assert (m, lo, hi) == (1.0, 1.0, 1.0)
    assert t_interval([1.0]) == (None, None, None)


OUTCOME_WORDS = re.compile(r"\b(reproduced|refuted|confirmed|holds)\b", re.IGNORECASE)


def test_texts_state_no_outcome(tmp_path):
    conv = [True] * 10
    conv[0] = False
    pairs = _pairs("image-mlp", 0.01, converged=conv) + _pairs("image-conv", -0.01)
    pairs.append((_task("diabetes", "vaf"), _result([0.5] * 10, extended_low=1, bracketed=False)))
    texts = [R.protocol(pairs), *R.departures(pairs)]
    texts += R.notes(pairs)
    for table in R.tables(pairs):
        texts.append(table.caption)
        texts += [str(c) for row in table.rows for c in row]
    for fig in R.figures(pairs, tmp_path):
        texts += [fig.caption, fig.paper or ""]
        assert fig.path.exists() and fig.path.with_suffix(".svg").exists()
    for text in texts:
        assert not OUTCOME_WORDS.search(text), text
    notes = " ".join(R.notes(pairs))
    assert "image-mlp/vaf: 1 of 10 (seeds [0])" in notes
    assert "not bracketed" in notes


def test_section_text_comes_from_the_verdicts(tmp_path):
    from nngeom.studies._typed import to_record

    pairs = _pairs("image-mlp", 0.01) + _pairs("image-conv", -0.01) + _pairs("diabetes", 0.0)
    results = [(to_record(t), to_record(r)) for t, r in pairs]
    sec = S.STUDY.summarize(results, tmp_path)
    outcomes = [v.outcome for v in sec.verdicts[:3]]
    assert outcomes == [Outcome.REPRODUCED, Outcome.REFUTED, Outcome.NOT_REPRODUCED]
    assert "2 reproduced, 1 not reproduced, 1 refuted." in sec.summary
    assert sec.summary.startswith(R.protocol(pairs))
    assert sec.departures == R.departures(pairs)
