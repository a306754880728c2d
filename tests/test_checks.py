"""The shared validators of ``nngeom._checks``: ``all_finite`` against the element-wise oracle
``torch.isfinite(t).all()``, and what each check accepts and refuses (with its message)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

from nngeom import InvalidInput, InvalidModel, UnsupportedModel
from nngeom._checks import (
    all_finite,
    check_bool,
    check_finite_parameters,
    check_float_dtype,
    check_module,
    check_X,
    check_Xy,
)

SPECIAL = [float("nan"), float("inf"), -float("inf"), 3e38, -3e38, 1e308, 0.0, -0.0, 1.0]


@given(
    st.lists(st.sampled_from(SPECIAL) | st.floats(-1e6, 1e6), min_size=0, max_size=40),
    st.sampled_from([torch.float32, torch.float64, torch.float16, torch.bfloat16]),
)
def test_all_finite_equals_elementwise_oracle(values, dtype):
    t = torch.tensor(values, dtype=torch.float64).to(dtype)  # 1e308 -> inf in fp32, as intended
    assert all_finite(t) == bool(torch.isfinite(t).all())


def test_overflowing_sum_of_finite_values_is_finite():
    t = torch.full((10,), 3e38, dtype=torch.float32)  # the sum overflows to inf
    assert not torch.isfinite(t.sum())
    assert all_finite(t)
    assert all_finite(torch.arange(5))  # integers are always finite
    assert all_finite(torch.empty(0))


# --------------------------------------------------------------------------------------------
# flags, dtypes, models and data
# --------------------------------------------------------------------------------------------
def test_check_bool():
    assert check_bool("flag", True) is True
    assert check_bool("flag", np.bool_(False)) is False
    for bad in (1, 0, "yes", None, 1.0):
        with pytest.raises(InvalidInput, match="flag must be True or False"):
            check_bool("flag", bad)


def test_check_float_dtype():
    for dt in (torch.float16, torch.bfloat16, torch.float32, torch.float64):
        assert check_float_dtype(dt) is dt
    for bad in (torch.int64, torch.complex64, torch.bool, "float32", np.float64):
        with pytest.raises(InvalidInput, match="real floating-point torch dtype"):
            check_float_dtype(bad)


def test_check_module_and_finite_parameters():
    net = nn.Linear(2, 1)
    assert check_module(net) is net
    with pytest.raises(UnsupportedModel, match="nn.Module"):
        check_module(torch.zeros(2))
    with pytest.raises(InvalidModel, match="complex"):
        check_module(nn.Linear(2, 1, dtype=torch.complex64))
    check_finite_parameters(net)
    with torch.no_grad():
        net.bias.fill_(float("nan"))
    with pytest.raises(InvalidModel, match="'bias' has NaN or inf"):
        check_finite_parameters(net)


def test_check_X_accepts_batches_and_applies_the_integer_rule():
    X = torch.randn(3, 2)
    assert check_X(X) is X
    assert check_X(torch.ones(2, 1, 4, 4), example_shape=(1, 4, 4)).shape == (2, 1, 4, 4)
    ints = torch.ones(3, 2, dtype=torch.int64)
    assert check_X(ints, integers="float64").dtype == torch.float64
    assert check_X(ints, integers="keep").dtype == torch.int64
    with pytest.raises(InvalidInput, match="floating-point"):
        check_X(ints)


@pytest.mark.parametrize(
    ("X", "match"),
    [
        (np.ones((3, 2)), "must be a torch tensor"),
        (torch.ones(3, dtype=torch.complex64), "complex"),
        (torch.ones(3, 2, device="meta"), "meta"),
        (torch.ones(3, 2, dtype=torch.bool), "not bool"),
        (torch.ones(3), "batch dimension"),
        (torch.ones(0, 2), r"empty \(N = 0\)"),
        (torch.ones(3, 5), r"shape \(N, 2\) for this model"),
        (torch.full((3, 2), float("inf")), "NaN or inf"),
    ],
)
def test_check_X_refuses(X, match):
    with pytest.raises(InvalidInput, match=match):
        check_X(X, example_shape=(2,))


def test_check_Xy():
    X, y = torch.randn(4, 2), torch.tensor([0, 1, 0, 1])
    assert check_Xy(X, y) == (X, y)
    with pytest.raises(InvalidInput, match="must be torch tensors"):
        check_Xy(X, [0, 1, 0, 1])
    with pytest.raises(InvalidInput, match="4 examples but y has 3"):
        check_Xy(X, y[:3])
    with pytest.raises(InvalidInput, match="y has a scalar"):
        check_Xy(X, torch.tensor(1.0))
    with pytest.raises(InvalidInput, match="y contains NaN"):
        check_Xy(X, torch.full((4,), float("nan")))
    with pytest.raises(InvalidInput, match="y must hold numbers"):
        check_Xy(X, torch.ones(4, dtype=torch.bool))
    with pytest.raises(InvalidInput, match=r"shape \(N, 3\)"):
        check_Xy(X, y, example_shape=(3,))
