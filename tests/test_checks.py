"""``all_finite`` against the element-wise oracle ``torch.isfinite(t).all()``."""

from __future__ import annotations

import torch
from hypothesis import given
from hypothesis import strategies as st

from nngeom._checks import all_finite

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
