"""The chaos predictors are scikit-learn estimators: sklearn's own estimator checks, clone,
get_params / set_params, cross_val_score and Pipeline; parameters checked at fit, never in the
constructor."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.model_selection import KFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import check_estimator

import nngeom as ng
from nngeom import InvalidInput, chaos

# Small instances: every check fits them dozens of times.
REGRESSORS = [
    chaos.LinearAR(),
    chaos.LinearAR("lms", epochs=20),
    chaos.Polynomial(2),
    chaos.NVAR(),
    chaos.LocalLinear(k=3),
    chaos.LapedesFarberMLP((4,), max_iter=30),
    chaos.ESN(20, washout=0),
]

# The checks a chaos regressor fails on purpose, and why.
DOCUMENTED_FAILURES = {
    "check_complex_data": "complex X is refused with nngeom's InvalidInput (a ValueError) and "
    "its own wording ('X is complex (complex128): pass real numbers'), not sklearn's",
    "check_dtype_object": "nngeom refuses object arrays (_checks.as_real_array): a float64 "
    "array is built by the caller, never guessed from Python objects",
    "check_supervised_y_2d": "a (N, 1) column y is read as (N,) without a DataConversionWarning "
    "(nngeom's documented convenience for one target per row)",
}
TIME_ORDERED = {
    "check_methods_sample_order_invariance": "the ESN's rows are a time-ordered sequence: a "
    "row's prediction depends on the rows before it",
    "check_methods_subset_invariance": "the ESN's rows are a time-ordered sequence: a subset "
    "drives the reservoir through other states",
}


def _expected_failures(estimator) -> dict[str, str]:
    if isinstance(estimator, chaos.ESN):
        return {**DOCUMENTED_FAILURES, **TIME_ORDERED}
    return DOCUMENTED_FAILURES


@pytest.mark.parametrize("estimator", REGRESSORS, ids=repr)
def test_sklearn_estimator_checks(estimator):
    """Every check of ``sklearn.utils.estimator_checks.check_estimator`` passes, except the
    documented ones, which must still fail (so the list stays true)."""
    expected = _expected_failures(estimator)
    results = check_estimator(
        estimator, expected_failed_checks=expected, on_skip=None, on_fail=None
    )
    failed = [(r["check_name"], r["exception"]) for r in results if r["status"] == "failed"]
    assert not failed
    assert {r["check_name"] for r in results if r["status"] == "xfail"} == set(expected)


def _series_xy(n: int = 300) -> tuple[np.ndarray, np.ndarray]:
    return chaos.embed(chaos.logistic_map(n, x0=0.3), lags=2, delay=1, horizon=1)


ALL = [
    *REGRESSORS,
    chaos.IteratedForecaster(chaos.Polynomial(2), lags=1, delay=1, horizon=1),
    chaos.DirectForecaster(chaos.LinearAR, horizons=(1, 2), lags=2, delay=1),
]


@pytest.mark.parametrize("estimator", ALL, ids=lambda e: type(e).__name__)
def test_clone_and_params_round_trip(estimator):
    params = estimator.get_params()
    copy = clone(estimator)
    assert type(copy) is type(estimator) and copy is not estimator
    assert copy.get_params().keys() == params.keys()
    for name, value in params.items():
        if not hasattr(value, "get_params"):
            assert copy.get_params()[name] is value or copy.get_params()[name] == value
    assert copy.set_params(**params) is copy


def test_constructors_store_bad_parameters_and_fit_refuses_them():
    X, y = _series_xy()
    cases = [
        (chaos.Polynomial(0), "degree"),
        (chaos.LinearAR("lms", mu=3.0), "mu"),
        (chaos.LocalLinear(k=0), "k"),
        (chaos.LapedesFarberMLP(hidden=(0, 3)), "hidden"),
        (chaos.LapedesFarberMLP(seed=-1), "seed"),
        (chaos.ESN(units=0), "units"),
    ]
    for estimator, word in cases:
        with pytest.raises(InvalidInput, match=word):
            estimator.fit(X, y)
    with pytest.raises(InvalidInput, match="units"):
        chaos.ESN(units=0).fit_series(chaos.logistic_map(300, x0=0.3))
    with pytest.raises(InvalidInput, match="lags"):
        chaos.IteratedForecaster(chaos.LinearAR(), lags="a").fit_series(np.arange(50.0))


def test_cross_val_score_and_pipeline():
    X, y = _series_xy()
    scores = cross_val_score(chaos.Polynomial(2), X, y, cv=KFold(3))
    assert scores.shape == (3,) and (scores > 0.999).all()  # the logistic map is quadratic
    pipe = make_pipeline(StandardScaler(), chaos.LocalLinear(k=6)).fit(X[:250], y[:250])
    assert chaos.nrmse(y[250:], pipe.predict(X[250:])) < 0.05
    assert pipe.score(X[250:], y[250:]) > 0.99


def test_unfitted_predictors_raise_sklearn_and_nngeom_errors():
    from sklearn.exceptions import NotFittedError

    X, _ = _series_xy()
    for estimator in REGRESSORS:
        with pytest.raises(NotFittedError, match="not fitted"):
            estimator.predict(X)
        with pytest.raises(ng.NngeomError):
            clone(estimator).predict(X)
    with pytest.raises(NotFittedError, match="fit_series"):
        chaos.ESN(10).forecast(np.ones((1, 5)), 3)
    with pytest.raises(NotFittedError, match="fit_series"):
        chaos.DirectForecaster(chaos.LinearAR, [1]).forecast_at(np.ones((1, 40)))


def test_iterated_forecaster_fits_a_clone_and_accepts_a_fitted_regressor():
    x = chaos.logistic_map(300, x0=0.3)
    given = chaos.Polynomial(2)
    f = chaos.IteratedForecaster(given, lags=1, delay=1, horizon=1).fit_series(x)
    assert not hasattr(given, "coef_") and hasattr(f.regressor_, "coef_")
    ctx, _ = chaos.contexts(x, [100, 200], length=1, steps=4)
    prefit = chaos.IteratedForecaster(f.regressor_, lags=1, delay=1, horizon=1)
    assert np.array_equal(prefit.forecast(ctx, 4), f.forecast(ctx, 4))


@pytest.mark.parametrize("make", [chaos.ESN, chaos.LapedesFarberMLP], ids=["ESN", "MLP"])
def test_randomness_is_drawn_in_fit_from_seed_or_generator(make):
    X, y = _series_xy(120)
    kw = {"units": 30, "washout": 5} if make is chaos.ESN else {"hidden": (3,), "max_iter": 5}

    def fitted(**rk):
        return make(**kw, **rk).fit(X, y).predict(X)

    assert np.array_equal(fitted(seed=4), fitted(seed=4))
    assert not np.array_equal(fitted(seed=4), fitted(seed=5))
    g1, g2 = torch.Generator().manual_seed(9), torch.Generator().manual_seed(9)
    assert np.array_equal(fitted(generator=g1), fitted(generator=g2))
    assert torch.equal(g1.get_state(), g2.get_state())
