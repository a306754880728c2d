"""The activations a VAF is compared with, and :func:`make_baseline` to build any of them by name.

:class:`SwishBeta` (``x * sigmoid(beta x)``, trainable ``beta``) and :class:`Rational` (a Padé
activation of degree (5, 4) in the "safe" form ``Q = 1 + sum_i |q_i x^i|``; 10 parameters, the
same as a VAF with ``k = 3``); ``nn.ReLU``, ``nn.PReLU`` and ``nn.SiLU`` come from torch.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from .._checks import check_number
from .._errors import InvalidInput
from .._lbfgs import minimize_lbfgs, torch_loss_grad
from ._init_fits import FIT_POINTS, INITS, check_fit_range
from ._vaf import VAF

__all__ = ["SwishBeta", "Rational", "BASELINES", "make_baseline"]

BASELINES = ("relu", "prelu", "silu", "swish", "rational", "vaf")
# The rational activation's degrees: numerator P of degree 5, denominator Q of degree 4.
P_DEGREE = 5
Q_DEGREE = 4
# Starting value of every denominator coefficient q_i of the fit.
Q_START = 0.01
# L-BFGS iterations of the rational fit.
RATIONAL_FIT_ITERATIONS = 500


class SwishBeta(nn.Module):
    """Swish with a trainable ``beta``: ``x * sigmoid(beta * x)`` (one parameter, init ``beta``).

    >>> import torch, nngeom as ng
    >>> act = ng.SwishBeta(beta=1.0)
    >>> act(torch.tensor([0.0, 1.0], dtype=torch.float64)).detach().round(decimals=4)
    tensor([0.0000, 0.7311], dtype=torch.float64)
    """

    nngeom_trainable_activation = True

    def __init__(self, beta: float = 1.0) -> None:
        super().__init__()
        self.beta = nn.Parameter(torch.tensor(check_number("beta", beta)))

    def forward(self, x: Tensor) -> Tensor:
        return x * torch.sigmoid(self.beta * x)


def _rational(x: Tensor, p: Tensor, q: Tensor) -> Tensor:
    """``P(x) / Q(x)`` with ``P = sum_i p_i x^i`` (``p``: ``(6,)``) and
    ``Q = 1 + sum_i |q_i x^(i+1)|`` (``q``: ``(4,)``), element-wise on ``x``."""
    num = p[P_DEGREE]
    for i in range(P_DEGREE - 1, -1, -1):
        num = num * x + p[i]
    den = 1.0 + (q[0] * x).abs()
    xi = x
    for i in range(1, Q_DEGREE):
        xi = xi * x
        den = den + (q[i] * xi).abs()
    return num / den


@functools.lru_cache(maxsize=8)
def _rational_init(target: str, lo: float, hi: float) -> tuple[float, ...]:
    """Safe-PAU (5, 4) coefficients ``[p_0..p_5, q_0..q_3]`` fitted to ``target`` on ``[lo, hi]``
    (float64): least squares for ``P`` with ``Q = 1``, then L-BFGS on ``P`` and ``Q`` jointly."""
    z = torch.linspace(lo, hi, FIT_POINTS, dtype=torch.float64)
    y = INITS[target](z)
    V = torch.stack([z**i for i in range(P_DEGREE + 1)], dim=1)
    p0 = torch.linalg.lstsq(V, y[:, None]).solution[:, 0]
    start = torch.cat([p0, torch.full((Q_DEGREE,), Q_START, dtype=torch.float64)]).numpy()

    def err(p: Tensor) -> Tensor:
        return ((_rational(z, p[: P_DEGREE + 1], p[P_DEGREE + 1 :]) - y) ** 2).mean()

    p, _ = minimize_lbfgs(torch_loss_grad(err), start, RATIONAL_FIT_ITERATIONS)
    return tuple((p if np.isfinite(p).all() else start).tolist())


class Rational(nn.Module):
    """Padé activation ``P(x) / Q(x)`` of degree (5, 4), "safe" form ``Q = 1 + sum_i |q_i x^i|``.

    10 parameters shared per layer (same as ``VAF(k=3)``); ``Q >= 1`` so there are no poles.
    ``init``: the activation it is least-squares fitted to on ``fit_range`` (default ReLU).

    >>> import torch, nngeom as ng
    >>> act = ng.Rational(init="relu")
    >>> act(torch.tensor([-2.0, 0.0, 2.0])).shape, sum(p.numel() for p in act.parameters())
    (torch.Size([3]), 10)
    """

    nngeom_trainable_activation = True

    def __init__(self, init: str = "relu", fit_range: tuple[float, float] = (-3.0, 3.0)) -> None:
        super().__init__()
        if not isinstance(init, str) or init not in INITS:
            raise InvalidInput(f"unknown init {init!r}; use one of {sorted(INITS)}")
        lo, hi = check_fit_range(fit_range)
        coef = torch.tensor(_rational_init(init, lo, hi))
        if not bool(torch.isfinite(coef.float()).all()):
            raise InvalidInput(
                f"fitting init={init!r} on fit_range={fit_range!r} gave coefficients beyond "
                "float32; use a smaller fit_range"
            )
        self.p = nn.Parameter(coef[: P_DEGREE + 1].float())
        self.q = nn.Parameter(coef[P_DEGREE + 1 :].float())

    def forward(self, x: Tensor) -> Tensor:
        return _rational(x, self.p, self.q)


def make_baseline(name: str, **kwargs: Any) -> nn.Module:
    """A fresh activation module by name: one of :data:`BASELINES` (``"vaf"``, ``"rational"``
    and ``"swish"`` pass ``kwargs`` to their class; the others take none).

    >>> import nngeom as ng
    >>> type(ng.make_baseline("vaf")).__name__, type(ng.make_baseline("rational")).__name__
    ('VAF', 'Rational')
    """
    if not isinstance(name, str) or name not in BASELINES:
        raise InvalidInput(f"unknown activation {name!r}; use one of {list(BASELINES)}")
    plain: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "prelu": nn.PReLU, "silu": nn.SiLU}
    if name in plain:
        if kwargs:
            raise InvalidInput(f"activation {name!r} takes no options, got {sorted(kwargs)}")
        return plain[name]()
    options: dict[str, type[nn.Module]] = {"swish": SwishBeta, "rational": Rational, "vaf": VAF}
    try:
        return options[name](**kwargs)
    except TypeError as exc:
        raise InvalidInput(f"activation {name!r} does not take these options: {exc}") from None
