"""The chaos study's verdicts on synthetic results (no training): both sides of every criterion,
the valid times' censoring, and no outcome word outside the verdicts."""

from __future__ import annotations

import re

import pytest

from nngeom._random import numpy_rng
from nngeom.studies._verdicts import Claim, Measured, Outcome, graded_vs
from nngeom.studies.chaos import analysis as A
from nngeom.studies.chaos.tasks import (
    DirectMLP,
    DirectResult,
    Forecast,
    ForecastResult,
    IntegratorOrder,
    LogisticMap,
    LogisticResult,
    OrderResult,
    window_lags,
)

OUTCOME_WORDS = re.compile(r"\b(reproduced|refuted|confirmed|holds)\b", re.IGNORECASE)
ROWS = 200


def _task(tau: int, predictor: str, seed: int, n_train: int = 500, starts: int = 10) -> Forecast:
    return Forecast(
        tau=tau,
        predictor=predictor,
        seed=seed,
        n_train=n_train,
        lags=window_lags(tau),
        starts=starts,
        steps=100 if starts else 0,
    )


def _result(
    err: float,
    seed: int,
    *,
    noise: float = 0.2,
    valid: tuple[int, ...] = (50,) * 10,
    censored: tuple[bool, ...] | None = None,
    converged: bool | None = None,
) -> ForecastResult:
    rng = numpy_rng(seed)
    sq = err**2 * (1.0 + noise * (2.0 * rng.random(ROWS) - 1.0))
    return ForecastResult(
        nrmse_T=err,
        sq_err=tuple(float(v) for v in sq),
        curve=tuple(err * (1.05**k) for k in range(100)),
        valid_steps=valid,
        censored=censored if censored is not None else tuple(v >= 100 for v in valid),
        chosen="",
        val_nrmse=None,
        converged=converged,
        train_mse=None,
        loss_drop=None,
        iterations=None,
        fit_seconds=0.0,
        seconds=0.0,
    )


def _grid(errors: dict[tuple[int, str], float], seeds=(0, 1, 2), n_train=500, starts=10):
    """Forecast pairs with the given NRMSE per (tau, predictor) for every seed."""
    pairs = []
    for (tau, p), e in errors.items():
        for s in seeds:
            conv = True if p == "mlp" else None
            pairs.append(
                (_task(tau, p, s, n_train, starts), _result(e, 100 * s + len(p), converged=conv))
            )
    return pairs


def _v(pairs, key):
    return next(v for v in A.verdicts(pairs) if v.key == key)


BASE = {
    (17, "mlp"): 0.005,
    (17, "poly3"): 0.05,
    (17, "local"): 0.012,
    (17, "esn"): 0.003,
    (30, "mlp"): 0.04,
    (30, "esn"): 0.1,
}


@pytest.mark.parametrize(
    ("linear", "outcome"),
    [
        (1.0, Outcome.REPRODUCED),  # 200x
        (0.25, Outcome.PARTLY),  # 50x
        (0.02, Outcome.REFUTED),  # 4x
        (0.05, Outcome.NOT_REPRODUCED),  # 10x: the interval contains 10
    ],
)
def test_orders_of_magnitude_over_linear(linear, outcome):
    pairs = _grid({**BASE, (17, "linear"): linear, (30, "linear"): 0.4})
    v = _v(pairs, "chaos.linear")
    assert v.outcome is outcome, v.why
    assert v.measured.value == pytest.approx(linear / 0.005, rel=0.05)
    assert v.measured.low <= v.measured.value <= v.measured.high
    assert "100" in v.criterion and "10" in v.criterion


@pytest.mark.parametrize(
    ("poly", "outcome"),
    [
        (1.0, Outcome.REPRODUCED),
        (0.25, Outcome.PARTLY),
        (0.02, Outcome.NOT_REPRODUCED),  # never refuted: the paper's polynomial is not known
    ],
)
def test_orders_of_magnitude_over_the_polynomial(poly, outcome):
    pairs = _grid({**BASE, (17, "linear"): 0.4, (17, "poly3"): poly, (30, "linear"): 0.4})
    assert _v(pairs, "chaos.polynomial").outcome is outcome


@pytest.mark.parametrize(
    ("linear30", "outcome"),
    [(8.0, Outcome.REPRODUCED), (1.0, Outcome.PARTLY), (0.2, Outcome.REFUTED)],
)
def test_tau30_claim(linear30, outcome):
    pairs = _grid({**BASE, (17, "linear"): 0.4, (30, "linear"): linear30})
    assert _v(pairs, "chaos.linear30").outcome is outcome


def test_tau30_missing_is_not_run():
    pairs = _grid({(17, "mlp"): 0.005, (17, "linear"): 0.4, (17, "poly3"): 0.05})
    assert _v(pairs, "chaos.linear30").outcome is Outcome.NOT_RUN
    assert _v(pairs, "chaos.linear").outcome is Outcome.PARTLY
    assert all(v.key != "chaos.esn30" for v in A.verdicts(pairs))


def test_no_forecasts_gives_not_run():
    vs = A.verdicts([])
    assert {v.key: v.outcome for v in vs}["chaos.linear"] is Outcome.NOT_RUN
    assert {v.outcome for v in vs} == {Outcome.NOT_RUN}


@pytest.mark.parametrize(
    ("local", "outcome"), [(0.06, Outcome.REPRODUCED), (0.02, Outcome.REFUTED)]
)
def test_parsimony_at_the_fewest_rows(local, outcome):
    main = _grid({**BASE, (17, "linear"): 0.4})
    small = _grid({(17, "mlp"): 0.03, (17, "local"): local}, n_train=250, starts=0)
    v = _v(main + small, "chaos.parsimony")
    assert v.outcome is outcome
    assert "250 rows" in v.measured.what


def _logistic(values):
    pairs = []
    for s, e in enumerate(values):
        r = LogisticResult((0.0,), (0.0,), (0.0,), e, e, 0.0, True, 0.0)
        pairs.append((LogisticMap(s), r))
    return pairs


@pytest.mark.parametrize(
    ("values", "outcome"),
    [
        ((0.01, 0.02), Outcome.REPRODUCED),
        ((0.2, 0.3), Outcome.REFUTED),
        ((0.01, 0.2), Outcome.NOT_REPRODUCED),
        ((0.01,), Outcome.PARTLY),  # one seed: no interval
    ],
)
def test_logistic_map(values, outcome):
    assert _v(_logistic(values), "chaos.logistic").outcome is outcome


def test_bumps_are_not_scored():
    assert _v([], "chaos.bumps").outcome is Outcome.NOT_RUN


@pytest.mark.parametrize(("esn", "lower"), [(0.002, "ESN"), (0.02, "MLP")])
def test_esn_is_reported_beyond_the_paper(esn, lower):
    pairs = _grid({**BASE, (17, "linear"): 0.4, (17, "esn"): esn})
    v = _v(pairs, "chaos.esn17")
    assert v.outcome is Outcome.BEYOND
    assert f"the {lower}'s error is the lower one" in v.why
    assert v.measured.value == pytest.approx(0.005 / esn, rel=0.05)
    # the ESN is in the summary's numbers
    assert "ESN" in A.protocol(pairs)


def test_no_difference_is_said_when_the_interval_contains_one():
    pairs = _grid({**BASE, (17, "linear"): 0.4, (17, "esn"): 0.005})
    assert "contains 1" in _v(pairs, "chaos.esn17").why


def test_kaplan_meier_and_censoring():
    times = [10, 20, 20, 30, 100, 100]
    cens = [False, False, False, False, True, True]
    km = A.kaplan_meier(times, cens)
    assert km == [
        (10.0, pytest.approx(5 / 6)),
        (20.0, pytest.approx(3 / 6)),
        (30.0, pytest.approx(2 / 6)),
    ]
    assert A.km_median(times, cens) == 20.0
    # most forecasts censored: no median, never the cap reported as one
    assert A.km_median([10, 100, 100], [False, True, True]) is None
    # a censored forecast leaves the risk set: survival steps by the at-risk count
    assert A.kaplan_meier([5, 8, 9], [True, False, False]) == [(8.0, 0.5), (9.0, 0.0)]


def test_valid_time_text_shows_the_censoring():
    r_cens = _result(0.005, 0, valid=(100,) * 8 + (40, 60))
    assert A.valid_time_text({0: r_cens}) == ">= 100; 8/10 censored at 100"
    r_open = _result(0.005, 0, valid=(40, 50, 60, 70, 100, 100, 100, 30, 20, 10))
    assert A.valid_time_text({0: r_open}) == "50; 3/10 censored at 100"
    assert A.valid_time_text({0: r_open}, 0.01) == "50 (0.50 Lyapunov times); 3/10 censored at 100"


def test_valid_time_verdict_names_the_censoring():
    pairs = _grid({**BASE, (17, "linear"): 0.4})
    pairs = [
        (t, _result(0.005, 1, valid=(100,) * 10) if t.predictor == "mlp" else r) for t, r in pairs
    ]
    v = _v(pairs, "chaos.valid17")
    assert v.outcome is Outcome.BEYOND
    assert v.measured.value is None  # the median is not reached
    assert "in time units: MLP >= 100 (>= 0.86 Lyapunov times); 30/30 censored at 100" in v.why


def test_direct_vs_iterated():
    pairs = _grid({**BASE, (17, "linear"): 0.4})
    for s in (0, 1, 2):
        pairs.append(
            (
                DirectMLP(17, s, 500, 4, 84, 10),
                DirectResult(0.005 * 1.05**83 / 2, True, 1e-5, 0.01, 100, 0.0),
            )
        )
    v = _v(pairs, "chaos.direct84")
    assert v.outcome is Outcome.BEYOND
    assert v.measured.value == pytest.approx(0.5)


def test_integrator_order_is_beyond():
    pairs = [
        (
            IntegratorOrder((17, 30), "quick"),
            OrderResult((1.0, 0.5), ((1e-6, 6e-8), (2e-6, 1e-7)), (4.0, 3.9)),
        )
    ]
    v = _v(pairs, "chaos.integrator")
    assert v.outcome is Outcome.BEYOND and v.measured.value == 3.9
    assert any("quick scale" in d for d in A.departures(pairs))


def test_unconverged_nets_are_counted():
    pairs = _grid({**BASE, (17, "linear"): 0.4})
    pairs = [
        (
            t,
            _result(0.005, 3, converged=False)
            if (t.tau, t.predictor, t.seed) == (17, "mlp", 1)
            else r,
        )
        for t, r in pairs
    ]
    text = " ".join(A.notes(pairs))
    assert "1 of 6 trained nets did not meet the plateau criterion" in text
    assert "Forecast tau=17 n=500 seed 1" in text
    main = next(t for t in A.tables(pairs) if t.caption.startswith("Mackey-Glass"))
    mlp17 = next(r for r in main.rows if r[0] == 17 and r[2].startswith("Lapedes"))
    assert mlp17[7] == "2/3"


def test_no_outcome_words_outside_the_verdicts():
    for linear in (1.0, 0.02):
        pairs = _grid({**BASE, (17, "linear"): linear, (30, "linear"): 0.4}) + _logistic(
            (0.01, 0.02)
        )
        texts = [A.protocol(pairs), *A.departures(pairs), *A.notes(pairs)]
        texts += [t.caption for t in A.tables(pairs)]
        texts += [str(c) for t in A.tables(pairs) for row in t.rows for c in row]
        for s in texts:
            assert not OUTCOME_WORDS.search(s), s
    assert not OUTCOME_WORDS.search(A.protocol([]))


def test_ratio_interval_is_paired_and_reproducible():
    pairs = _grid({(17, "mlp"): 0.005, (17, "linear"): 0.4})
    num = {t.seed: r for t, r in pairs if t.predictor == "linear"}
    den = {t.seed: r for t, r in pairs if t.predictor == "mlp"}
    a, b = A.ratio_interval(num, den), A.ratio_interval(num, den)
    assert a == b and a.n == 3
    assert a.low < 80 < a.high
    assert A.ratio_interval(num, {}) is None


@pytest.mark.parametrize(
    ("m", "outcome"),
    [
        (Measured(150, 120, 200), Outcome.REPRODUCED),
        (Measured(75, 50, 110), Outcome.PARTLY),
        (Measured(5, 3, 8), Outcome.REFUTED),
        (Measured(12, 8, 20), Outcome.NOT_REPRODUCED),
        (Measured(20), Outcome.PARTLY),
        (Measured(5), Outcome.NOT_REPRODUCED),
        (Measured(None), Outcome.NOT_RUN),
    ],
)
def test_graded_vs(m, outcome):
    assert graded_vs("k", Claim("c", "w"), m, 100, 10).outcome is outcome


def test_graded_vs_below_and_refute_off():
    c = Claim("c", "w")
    below = [
        graded_vs("k", c, Measured(v, lo, hi), 0.02, 0.1, direction="below").outcome
        for v, lo, hi in ((0.01, 0.005, 0.015), (0.07, 0.03, 0.08), (0.2, 0.15, 0.3))
    ]
    assert below == [Outcome.REPRODUCED, Outcome.PARTLY, Outcome.REFUTED]
    assert (
        graded_vs("k", c, Measured(5, 3, 8), 100, 10, refute=False).outcome
        is Outcome.NOT_REPRODUCED
    )
    with pytest.raises(ValueError):
        graded_vs("k", c, Measured(5), 10, 100)
