"""A VAF's initial parameters: exact for its own hidden unit, least-squares fits otherwise.

``init == hidden`` (``"relu"`` with ReLU units, ``"tanh"`` with tanh units) is exact: unit 0
reproduces the activation and the other units start with ``a_j = 0`` and spread-out
breakpoints (ReLU) or centres (tanh), so they receive gradients. Any other target (a name of
:data:`INITS` or a callable) is fitted on an interval ``fit_range``: linear least squares for
``(a0, a)`` with spread-out units, then float64 L-BFGS on every parameter (kept only where it
lowers the error).
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor, nn

from .._checks import check_number
from .._errors import InvalidInput
from .._lbfgs import minimize_lbfgs, torch_loss_grad
from ._kernels import split_theta, vaf_reference

__all__ = ["INITS", "HIDDEN", "check_fit_range", "initial_theta"]

HIDDEN = ("relu", "tanh")
INITS: dict[str, Callable[[Tensor], Tensor]] = {
    "relu": torch.relu,
    "tanh": torch.tanh,
    "identity": lambda z: z,
    "gelu": nn.functional.gelu,
    "silu": nn.functional.silu,
}
# The largest |end| of a fit interval: the least-squares fit's powers / products stay finite.
MAX_FIT_RANGE = 1e6
# Points of the fit interval the least-squares error is measured on.
FIT_POINTS = 801
# L-BFGS iterations of the refinement.
FIT_ITERATIONS = 300
# tanh units get slopes +-TANH_SLOPE * sqrt(k) / (hi - lo): their transitions overlap across the
# interval. MIN_WIDTH guards the division.
TANH_SLOPE = 4.0
MIN_WIDTH = 1e-12


def check_fit_range(fit_range: object) -> tuple[float, float]:
    """``(lo, hi)``: two finite numbers with ``lo < hi``, each within ``+-MAX_FIT_RANGE``.

    >>> check_fit_range((-3, 3))
    (-3.0, 3.0)
    """
    try:
        lo_raw, hi_raw = fit_range  # type: ignore[misc]
    except (TypeError, ValueError):
        raise InvalidInput(f"fit_range must be two numbers (lo, hi), got {fit_range!r}") from None
    lo = check_number("fit_range[0]", lo_raw, minimum=-MAX_FIT_RANGE, maximum=MAX_FIT_RANGE)
    hi = check_number("fit_range[1]", hi_raw, minimum=-MAX_FIT_RANGE, maximum=MAX_FIT_RANGE)
    if not lo < hi:
        raise InvalidInput(f"fit_range must be a finite interval (lo < hi), got {fit_range!r}")
    return lo, hi


def default_units(k: int, hidden: str, lo: float, hi: float) -> tuple[np.ndarray, np.ndarray]:
    """Spread-out hidden units ``(b, c)`` (each ``(k,)``): breakpoints (ReLU) or centres (tanh)
    evenly inside ``(lo, hi)``, slopes of alternating sign."""
    t = np.linspace(lo, hi, k + 2)[1:-1] if k > 0 else np.zeros(0)
    sign = np.where(np.arange(k) % 2 == 0, 1.0, -1.0)
    scale = 1.0 if hidden == "relu" else TANH_SLOPE / max(hi - lo, MIN_WIDTH) * max(k, 1) ** 0.5
    b = sign * scale
    return b, -b * t


def initial_theta(
    init: str | Callable[[Tensor], Tensor], k: int, hidden: str, lo: float, hi: float
) -> np.ndarray:
    """``[a0, a_1..a_k, b_1..b_k, c_1..c_k]`` (float64 ``(3k + 1,)``) for ``init`` on ``[lo, hi]``.

    >>> initial_theta("relu", 1, "relu", -3.0, 3.0)
    array([0., 1., 1., 0.])
    """
    if isinstance(init, str) and init == hidden:  # exact
        b, c = default_units(k, hidden, lo, hi)
        if hidden == "relu" and k > 1:  # the a_j = 0 units: breakpoints away from unit 0's
            t = lo + (hi - lo) * (np.arange(1, k) - 0.5) / (k - 0.5)
            b[1:] = np.where(np.arange(1, k) % 2 == 0, 1.0, -1.0)
            c[1:] = -b[1:] * t
        a = np.zeros(k)
        a[0], b[0], c[0] = 1.0, 1.0, 0.0
        return np.concatenate([[0.0], a, b, c])
    if isinstance(init, str):
        return np.array(_fit_cached(init, k, hidden, lo, hi))
    return _fit(init, k, hidden, lo, hi)


@functools.lru_cache(maxsize=64)
def _fit_cached(name: str, k: int, hidden: str, lo: float, hi: float) -> tuple[float, ...]:
    return tuple(_fit(INITS[name], k, hidden, lo, hi).tolist())


def _fit(fn: Callable[[Tensor], Tensor], k: int, hidden: str, lo: float, hi: float) -> np.ndarray:
    """Least-squares fit of ``(a0, a, b, c)`` (flattened, ``3k + 1``) to ``fn`` on ``[lo, hi]``."""
    z = torch.linspace(lo, hi, FIT_POINTS, dtype=torch.float64)
    with torch.no_grad():
        target = torch.as_tensor(fn(z), dtype=torch.float64)
    if target.shape != z.shape or not torch.isfinite(target).all():
        raise InvalidInput(
            "init callable must map a 1-D float tensor to a finite tensor of the same shape"
        )
    b0, c0 = default_units(k, hidden, lo, hi)
    b = torch.tensor(b0, dtype=torch.float64)
    c = torch.tensor(c0, dtype=torch.float64)
    g = torch.relu if hidden == "relu" else torch.tanh
    basis = torch.cat(
        [torch.ones(z.shape[0], 1, dtype=torch.float64), g(z[:, None] * b + c)], dim=1
    )
    coef = torch.linalg.lstsq(basis, target[:, None]).solution[:, 0]
    start = torch.cat([coef, b, c]).numpy()

    def err(p: Tensor) -> Tensor:
        a0, a, bb, cc = split_theta(p)
        return (
            (vaf_reference(z, a0, a[:, None], bb[:, None], cc[:, None], hidden) - target) ** 2
        ).mean()

    loss_grad = torch_loss_grad(err)
    p, _ = minimize_lbfgs(loss_grad, start, FIT_ITERATIONS)
    if not (np.isfinite(p).all() and loss_grad(p)[0] < loss_grad(start)[0]):
        return start
    return p
