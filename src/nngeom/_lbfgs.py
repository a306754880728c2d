"""Deterministic full-batch L-BFGS on a function of one float64 vector (SciPy's L-BFGS-B).

nngeom fits a few small things in float64 by L-BFGS: the initial shapes of the trainable
activations (a VAF or a rational function least-squares fitted to a target activation) and the
Lapedes-Farber network of the chaos predictors. :func:`minimize_lbfgs` runs SciPy's L-BFGS-B for a
fixed budget (no tolerance stops: ``ftol = gtol = 0``) with single-threaded BLAS, so a fit gives
the same numbers however loaded the machine is; :func:`torch_loss_grad` turns a torch function of
a float64 tensor into the ``(loss, gradient)`` pair SciPy wants.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor

__all__ = ["minimize_lbfgs", "torch_loss_grad"]

# L-BFGS memory: the number of past (step, gradient change) pairs in the inverse-Hessian estimate.
MEMORY = 30
# Function evaluations allowed per iteration (line-search trials) before L-BFGS-B stops.
EVALUATIONS_PER_ITERATION = 2


def minimize_lbfgs(
    loss_grad: Callable[[np.ndarray], tuple[float, np.ndarray]],
    x0: np.ndarray,
    max_iter: int,
) -> tuple[np.ndarray, int]:
    """Minimise ``loss_grad(x)[0]`` from ``x0`` by ``max_iter`` L-BFGS-B iterations.

    ``loss_grad`` maps a float64 vector ``(P,)`` to ``(loss, gradient (P,))``. Returns the last
    iterate ``(P,)`` (float64) and the number of iterations run: the search stops early only when
    the line search cannot descend.

    >>> import numpy as np
    >>> x, _ = minimize_lbfgs(lambda v: (float(((v - 3.0) ** 2).sum()), 2 * (v - 3.0)), np.zeros(2), 20)
    >>> np.round(x, 6)
    array([3., 3.])
    """
    from scipy.optimize import minimize
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        res = minimize(
            loss_grad,
            np.asarray(x0, dtype=np.float64),
            jac=True,
            method="L-BFGS-B",
            options={
                "maxiter": max_iter,
                "maxfun": EVALUATIONS_PER_ITERATION * max_iter,
                "ftol": 0.0,
                "gtol": 0.0,
                "maxcor": MEMORY,
            },
        )
    return np.asarray(res.x, dtype=np.float64), int(res.nit)


def torch_loss_grad(
    fn: Callable[[Tensor], Tensor],
) -> Callable[[np.ndarray], tuple[float, np.ndarray]]:
    """``fn`` (a scalar torch function of a float64 vector ``(P,)``) as ``x -> (loss, grad)`` on
    NumPy float64 vectors, the gradient by autograd.

    >>> loss_grad = torch_loss_grad(lambda p: (p**2).sum())
    >>> loss_grad(np.array([1.0, 2.0]))
    (5.0, array([2., 4.]))
    """

    def loss_grad(x: np.ndarray) -> tuple[float, np.ndarray]:
        p = torch.tensor(x, dtype=torch.float64, requires_grad=True)
        value = fn(p)
        (grad,) = torch.autograd.grad(value, p)
        return float(value.detach()), grad.numpy()

    return loss_grad
