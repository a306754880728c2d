"""Generators: convergence order, exact special cases, determinism, map identities, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import nngeom as ng
from nngeom import InvalidInput
from nngeom.chaos import systems


def test_mackey_glass_convergence_order_at_least_3_5():
    res = ng.chaos.mackey_glass_convergence(
        tau=17, t_end=60, steps=(1.0, 0.5, 0.25), reference_step=1 / 64
    )
    assert res.order >= 3.5, res
    assert all(o >= 3.5 for o in res.orders), res
    assert res.errors[0] > res.errors[1] > res.errors[2]


def test_mackey_glass_convergence_tau30():
    res = ng.chaos.mackey_glass_convergence(
        tau=30, t_end=60, steps=(1.0, 0.5), reference_step=1 / 32
    )
    assert res.order >= 3.5


def test_no_feedback_is_exponential_decay():
    # a = 0: dx/dt = -b x, x(0) = c  ->  c exp(-b t) exactly
    x = ng.chaos.mackey_glass(40, tau=5, a=0.0, b=0.1, history=1.3, transient=0.0, step=0.05)
    t = np.arange(40.0)
    assert np.allclose(x, 1.3 * np.exp(-0.1 * t), rtol=0, atol=1e-11)


def test_first_delay_interval_matches_closed_form():
    # p = 0: dx/dt = a x(t-tau)/2 - b x; with constant history c, on [0, tau]:
    # x(t) = a c/(2b) + (c - a c/(2b)) exp(-b t)
    a, b, c, tau = 0.2, 0.1, 0.9, 17.0
    x = ng.chaos.mackey_glass(18, tau=tau, a=a, b=b, p=0.0, history=c, transient=0.0, step=0.5)
    t = np.arange(18.0)
    exact = a * c / (2 * b) + (c - a * c / (2 * b)) * np.exp(-b * t)
    assert np.allclose(x, exact, rtol=0, atol=1e-9)


def test_second_interval_against_quadrature():
    # p = 0 and constant history: on [tau, 2 tau] x' = a x(t - tau)/2 - b x is a linear ODE with a
    # known forcing; integrate it by the variation-of-constants formula with fine Simpson quadrature.
    a, b, c, tau = 0.2, 0.1, 0.9, 4.0
    x = ng.chaos.mackey_glass(9, tau=tau, a=a, b=b, p=0.0, history=c, transient=0.0, step=0.25)

    def first(t):
        return a * c / (2 * b) + (c - a * c / (2 * b)) * math.exp(-b * t)

    x_tau = first(tau)
    for t_end in (5.0, 6.0, 8.0):
        s = np.linspace(tau, t_end, 2001)
        f = np.exp(-b * (t_end - s)) * np.array([a * first(v - tau) / 2 for v in s])
        h = s[1] - s[0]
        integral = h / 3 * (f[0] + f[-1] + 4 * f[1:-1:2].sum() + 2 * f[2:-1:2].sum())
        exact = x_tau * math.exp(-b * (t_end - tau)) + integral
        assert abs(x[int(t_end)] - exact) < 1e-8


def test_same_array_for_a_seed():
    a = ng.chaos.mackey_glass(500, 17, seed=3)
    b = ng.chaos.mackey_glass(500, 17, seed=3)
    c = ng.chaos.mackey_glass(500, 17, seed=4)
    assert a.dtype == np.float64 and a.shape == (500,)
    assert np.array_equal(a, b)
    assert not np.allclose(a, c)
    assert 0.2 < a.min() and a.max() < 1.5


def test_history_classic_random_and_generator():
    classic = ng.chaos.mackey_glass(60, history="classic", transient=0.0)
    assert np.array_equal(classic, ng.chaos.mackey_glass(60, history=1.2, transient=0.0))
    assert np.array_equal(ng.chaos.mackey_glass(60, seed=3), ng.chaos.mackey_glass(60, seed=3))
    g1, g2 = torch.Generator().manual_seed(7), torch.Generator().manual_seed(7)
    assert np.array_equal(ng.chaos.mackey_glass(60, generator=g1),
                          ng.chaos.mackey_glass(60, generator=g2))  # fmt: skip
    assert not np.array_equal(ng.chaos.mackey_glass(60, seed=3), ng.chaos.mackey_glass(60, seed=4))
    with pytest.raises(InvalidInput, match="seed"):
        ng.chaos.mackey_glass(10, seed=None)
    with pytest.raises(InvalidInput, match="history"):
        ng.chaos.mackey_glass(10, history="warm")
    for draw in (ng.chaos.logistic_map, ng.chaos.henon_map, ng.chaos.lorenz):
        h1, h2 = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
        assert np.array_equal(draw(20, generator=h1), draw(20, generator=h2))


def test_callable_history_and_bad_step():
    x = ng.chaos.mackey_glass(50, 17, history=lambda t: 1.0 + 0.1 * math.sin(t), transient=0)
    assert np.isfinite(x).all() and x[0] == pytest.approx(1.0)
    with pytest.raises(InvalidInput, match="multiple of step"):
        ng.chaos.mackey_glass(10, tau=17, step=0.3)
    with pytest.raises(InvalidInput, match="positive int"):
        ng.chaos.mackey_glass(0)
    with pytest.raises(InvalidInput, match="tau"):
        ng.chaos.mackey_glass(10, tau=-1)
    with pytest.raises(InvalidInput, match="history"):
        ng.chaos.mackey_glass(10, history=float("nan"))


def test_logistic_and_henon_identities():
    x = ng.chaos.logistic_map(200, seed=1)
    assert np.allclose(x[1:], 4 * x[:-1] * (1 - x[:-1]), atol=0)
    assert np.all((x >= 0) & (x <= 1))
    h = ng.chaos.henon_map(300, seed=2)
    assert np.allclose(h[1:, 0], 1 - 1.4 * h[:-1, 0] ** 2 + h[:-1, 1], atol=1e-15)
    assert np.allclose(h[1:, 1], 0.3 * h[:-1, 0], atol=1e-15)
    with pytest.raises(InvalidInput):
        ng.chaos.logistic_map(10, r=5.0)
    with pytest.raises(InvalidInput):
        ng.chaos.logistic_map(10, x0=1.5)


def test_lorenz_rk4_order():
    ref = ng.chaos.lorenz(26, dt=0.04, step=0.04 / 64, transient=0.0, x0=(1.0, 1.0, 1.0))
    errs = [
        np.abs(ng.chaos.lorenz(26, dt=0.04, step=s, transient=0.0, x0=(1.0, 1.0, 1.0)) - ref).max()
        for s in (0.02, 0.01)
    ]
    assert math.log2(errs[0] / errs[1]) > 3.5


def test_lyapunov_table_is_consistent():
    assert systems.LYAPUNOV_EXPONENTS["logistic"] == pytest.approx(math.log(2))
    # the logistic map at r=4: mean log|f'(x)| over an orbit is ln 2
    x = ng.chaos.logistic_map(20000, seed=0)
    est = float(np.mean(np.log(np.abs(4 - 8 * x[100:]))))
    assert est == pytest.approx(math.log(2), abs=0.05)
