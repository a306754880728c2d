"""Cheap input checks shared by the public functions."""

from __future__ import annotations

import torch
from torch import Tensor


def all_finite(t: Tensor) -> bool:
    """True when every entry of ``t`` is finite (no NaN, no +-inf).

    One reduction pass: NaN and inf propagate through a sum, so a finite sum proves every entry
    finite. Only a non-finite sum (a NaN/inf entry, or finite entries whose sum overflows) falls
    back to the exact element-wise test. ``torch.isfinite(t).all()`` costs several passes and
    temporaries, which dominated fast paths such as the Hutchinson estimate.
    """
    if t.numel() == 0 or not (t.is_floating_point() or t.is_complex()):
        return True
    if bool(torch.isfinite(t.sum())):
        return True
    return bool(torch.isfinite(t).all())
