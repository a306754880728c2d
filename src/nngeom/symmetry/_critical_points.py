"""The critical-point search: drive a net to a point where the loss gradient vanishes.

:func:`find_critical_point` runs, on a float64 copy of the model,

1. L-BFGS (:func:`nngeom.train`, strong Wolfe line search);
2. a trust-region minimisation (scipy ``trust-exact`` on the dense Hessian for small nets,
   ``trust-krylov`` on Hessian-vector products above);
3. Levenberg-Marquardt on the squared gradient norm (:func:`_levenberg_marquardt`), which also
   converges to saddles: the step ``-(H^2 + mu I)^{-1} H g`` is Newton's with the eigenvalue
   pseudo-inverse at ``mu = 0``;

then more rounds of 2-3 from the best point and from small perturbations of it while the
gradient norm is above the acceptance threshold. For MLPs the steps are taken in the
:class:`FreeSubspace` (exactly flat first-layer directions held fixed). Every Hessian here is a
:class:`nngeom.hessian.HessianOperator` (a :class:`nngeom._linop.LinearOperator`): dense
``to_dense()`` of its restriction to the free subspace, or matrix-free ``to_scipy()`` for CG.
The knobs are gathered in :class:`CriticalPointSearch`.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor, nn

from .._checks import TINY, check_bool, check_int, check_number
from .._errors import InvalidInput, InvalidModel, UnsupportedModel
from .._lanczos import lanczos
from .._linop import LinearOperator
from .._loss_data import check_loss_data
from .._losses import LossFn, loss_fn
from .._params import load_, module_of
from .._random import torch_generator
from ..hessian import HessianOperator
from ..train import train
from ._flat_directions import FreeSubspace

# The most restarts a search may take (each one a full round of trust region and LM steps).
MAX_RESTARTS = 1000
# A restart starts from the best point plus a random step of this size relative to its norm.
_RESTART_PERTURBATION = 1e-5
# Dense eigenvalue pseudo-inverse: eigenvalues below this fraction of the largest count as 0.
_PSEUDO_INVERSE_CUT = 1e-14
# Levenberg-Marquardt damping: the smallest nonzero mu is (_MU_FLOOR * |top eigenvalue|)^2 and
# a failed trial multiplies mu by _MU_GROWTH (at most _MU_TRIALS trials per step).
_MU_FLOOR = 1e-8
_MU_GROWTH = 100.0
_MU_TRIALS = 9
# The matrix-free solve's damping when mu = 0 (relative to the top eigenvalue squared).
_MU_MATRIX_FREE = 1e-20
# An accepted step that does not halve the gradient norm is slow; this many in a row stop LM.
_SLOW_STEPS = 3
# CG on the normal equations: iterations and relative tolerance; the top eigenvalue's Lanczos
# tolerance (it only scales the damping).
_CG_ITERATIONS = 200
_CG_RTOL = 1e-10
_TOP_EIGENVALUE_TOL = 1e-3


@dataclass(frozen=True)
class CriticalPointSearch:
    """How hard :func:`find_critical_point` (and :func:`find_permutation_saddle`) search.

    >>> from nngeom.symmetry import CriticalPointSearch
    >>> CriticalPointSearch(restarts=0).trust_steps
    300
    """

    lbfgs_steps: int = 50  # L-BFGS outer steps first (each up to 20 iterations)
    trust_steps: int = 300  # trust-region iterations per round
    newton_steps: int = 30  # Levenberg-Marquardt steps per round
    restarts: int = 2  # extra rounds from perturbations of the best point
    dense_limit: int = 3000  # dense Hessians (trust-exact, eigh) up to this many parameters
    project_data_null: bool = True  # hold the exactly flat first-layer directions fixed (MLPs)
    grad_tol: float = 1e-12  # the steps stop below this gradient norm
    accept_tol: float = 1e-8  # a point with gradient norm <= this counts as critical

    def __post_init__(self) -> None:
        for name, minimum, maximum in (
            ("lbfgs_steps", 0, None),
            ("trust_steps", 0, None),
            ("newton_steps", 0, None),
            ("restarts", 0, MAX_RESTARTS),
            ("dense_limit", 0, None),
        ):
            value = check_int(name, getattr(self, name), minimum=minimum, maximum=maximum)
            object.__setattr__(self, name, value)
        for name in ("grad_tol", "accept_tol"):
            object.__setattr__(self, name, check_number(name, getattr(self, name), minimum=0.0))
        object.__setattr__(
            self, "project_data_null", check_bool("project_data_null", self.project_data_null)
        )


@dataclass
class CriticalPoint:
    """A critical point found by :func:`find_critical_point` (model is a float64 copy).

    Attributes:
        converged: ``grad_norm <= accept_tol``.
        n_data_null: parameters held fixed because they are exactly flat (see
            :func:`data_null_subspace`); 0 when nothing was projected out.
        restarts: perturbed restarts used (0 when the first round converged).
        history: gradient norm after each Levenberg-Marquardt step.

    >>> import torch, nngeom as ng
    >>> from nngeom.symmetry import CriticalPointSearch, find_critical_point
    >>> X = torch.linspace(-1, 1, 8, dtype=torch.float64)[:, None]
    >>> crit = find_critical_point(ng.mlp([1, 1], dtype=torch.float64), X, 2 * X + 1)
    >>> type(crit).__name__, crit.converged
    ('CriticalPoint', True)
    """

    model: nn.Module
    loss: float
    grad_norm: float
    lbfgs_steps: int
    newton_steps: int
    history: list[float] = field(default_factory=list)
    converged: bool = False
    n_data_null: int = 0
    restarts: int = 0


def _levenberg_marquardt(
    op: HessianOperator,
    theta: Tensor,
    sub: FreeSubspace,
    steps: int,
    grad_tol: float,
    dense: bool,
    history: list[float],
) -> tuple[Tensor, int]:
    """Levenberg-Marquardt on ``||grad||^2`` (Gauss-Newton with Jacobian ``H``) in the free
    subspace: ``s = -(H^2 + mu I)^{-1} H g``; ``mu = 0`` is Newton with the pseudo-inverse.

    Dense (``m`` up to the dense limit): one ``eigh`` of ``B^T H B`` per step, then trial
    ``mu`` values, each costing one gradient. Matrix-free above: CG on the normal equations with
    Hessian-vector products. A step is accepted when it lowers the gradient norm; ``mu`` shrinks
    after a success and grows after a failure; ``_SLOW_STEPS`` accepted steps in a row that do
    not halve the gradient norm count as a stall and end the loop. Returns
    ``(theta, steps taken)``.
    """
    g = op.gradient(theta)
    gn = float(torch.linalg.vector_norm(g))
    mu = 0.0
    taken = slow = 0
    while taken < steps and gn > grad_tol and slow < _SLOW_STEPS:
        H = op.at(theta).restrict(sub)
        gz = sub.to_free(g)
        if dense:
            lam, U = torch.linalg.eigh(H.to_dense())
            c = U.T @ gz
            top = max(float(lam.abs().max()), TINY)
            cut = _PSEUDO_INVERSE_CUT * top

            def solve(mu: float, lam=lam, U=U, c=c, cut=cut) -> Tensor:
                if mu == 0.0:
                    inv = torch.where(lam.abs() > cut, 1.0 / lam, torch.zeros_like(lam))
                else:
                    inv = lam / (lam * lam + mu)
                return -(U @ (inv * c))
        else:
            top = _top_eigenvalue(H)

            def solve(mu: float, H=H, gz=gz, top=top) -> Tensor:
                return _damped_gauss_newton(H, gz, mu if mu > 0 else _MU_MATRIX_FREE * top * top)

        accepted = False
        floor = (_MU_FLOOR * top) ** 2
        trial_mus = ([0.0] if mu == 0.0 else [mu]) + [
            max(mu, floor) * _MU_GROWTH**e for e in range(1, _MU_TRIALS + 1)
        ]
        for trial in trial_mus:
            cand = theta + sub.to_full(solve(trial))
            gc = op._gradient(cand)  # trial points may overflow: checked below
            gcn = float(torch.linalg.vector_norm(gc))
            if math.isfinite(gcn) and gcn < gn:
                slow = slow + 1 if gcn > 0.5 * gn else 0
                theta, g, gn, accepted = cand, gc, gcn, True
                mu = 0.0 if trial <= floor else trial / _MU_GROWTH
                break
        taken += 1
        history.append(gn)
        if not accepted:
            break
    return theta, taken


def _top_eigenvalue(H: LinearOperator) -> float:
    res = lanczos(H, k=1, which="largest", tol=_TOP_EIGENVALUE_TOL, seed=0)
    return max(abs(float(res.eigenvalues[-1])), TINY)


def _damped_gauss_newton(H: LinearOperator, gz: Tensor, mu: float) -> Tensor:
    """CG on ``(H^2 + mu I) s = -H g`` (two products per iteration, through scipy)."""
    from scipy.sparse import identity
    from scipy.sparse.linalg import aslinearoperator, cg

    Hs = H.to_scipy()
    normal = Hs @ Hs + mu * aslinearoperator(identity(H.n, dtype=Hs.dtype))
    rhs = -(H @ gz).cpu().numpy()
    s, _ = cg(normal, rhs, maxiter=_CG_ITERATIONS, rtol=_CG_RTOL)
    return torch.as_tensor(s, dtype=H.dtype, device=H.device)


def _trust_region(
    op: HessianOperator, theta: Tensor, maxiter: int, gtol: float, *, exact: bool
) -> Tensor:
    """scipy's ``trust-exact`` (dense Hessian) or ``trust-krylov`` (Hessian-vector products)."""
    from scipy.optimize import minimize

    def as_t(v: np.ndarray) -> Tensor:
        return torch.as_tensor(v, dtype=op.dtype, device=op.device)

    def hess(v: np.ndarray) -> np.ndarray:
        return op.at(as_t(v).clone()).to_dense().cpu().numpy()

    def hessp(v: np.ndarray, p: np.ndarray) -> np.ndarray:
        return (op.at(as_t(v).clone()) @ as_t(p)).cpu().numpy()

    curvature = {"hess": hess} if exact else {"hessp": hessp}
    res = minimize(
        lambda v: op._loss(as_t(v)),  # unchecked: trial points where it overflows are rejected
        theta.cpu().numpy(),
        jac=lambda v: op._gradient(as_t(v)).cpu().numpy(),
        method="trust-exact" if exact else "trust-krylov",
        options={"maxiter": int(maxiter), "gtol": gtol},
        **curvature,
    )
    out = as_t(res.x).clone()
    if not torch.isfinite(out).all():
        raise InvalidModel(
            "the trust-region search produced non-finite weights; check the data scale"
        )
    return out


def find_critical_point(
    model: nn.Module,
    X: Tensor,
    y: Tensor,
    *,
    loss: str | LossFn = "mse",
    search: CriticalPointSearch = CriticalPointSearch(),
    chunk_size: int | None = None,
    seed: int = 0,
    generator: torch.Generator | None = None,
) -> CriticalPoint:
    """Drive a float64 copy of ``model`` to a critical point of the loss.

    1. L-BFGS (``nngeom.train``, strong Wolfe), ``search.lbfgs_steps`` iterations.
    2. A trust-region minimisation, at most ``search.trust_steps`` iterations: scipy
       ``trust-exact`` (dense Hessian) for nets up to ``search.dense_limit`` parameters,
       ``trust-krylov`` (Hessian-vector products) above.
    3. Levenberg-Marquardt on the squared gradient norm, at most ``search.newton_steps`` steps
       (Newton with the eigenvalue pseudo-inverse when it lowers the gradient norm, damped
       ``(H^2 + mu I)^{-1} H g`` steps otherwise). With ``search.project_data_null`` (MLPs only)
       the steps are taken in the :class:`FreeSubspace`: the first-layer directions along the
       null space of ``[X, 1]`` (exactly flat: zero gradient and zero curvature everywhere) are
       held fixed, which keeps the Newton system nonsingular there. The dense path is used
       when the free subspace has at most ``search.dense_limit`` dimensions.
    4. While the gradient norm is above ``search.accept_tol``: another round of steps 2-3 from
       the best point, then up to ``search.restarts`` rounds from random perturbations of it
       (relative size 1e-5, in the free subspace; drawn from ``seed`` or ``generator``). The
       point with the smallest gradient norm is kept.

    Newton/LM converges to a nearby critical point whatever its index, so the result may be a
    saddle; ``converged`` says whether ``grad_norm <= search.accept_tol``. Nothing is hidden: a
    search that fails returns its best point with ``converged=False``. Only trainable
    parameters move; ``chunk_size`` processes the data in chunks (see
    :class:`~nngeom.hessian.HessianOperator`).

    Raises:
        InvalidModel: the loss becomes NaN or infinite during the search.
    """
    if not isinstance(search, CriticalPointSearch):
        raise InvalidInput(
            f"search must be a CriticalPointSearch (nngeom.symmetry.CriticalPointSearch), got "
            f"{type(search).__name__}"
        )
    gen = torch_generator(seed, generator)
    y = check_loss_data(module_of(model), X, y, loss)
    net = copy.deepcopy(model).double()
    Xd = X.double() if X.is_floating_point() else X
    yd = y.double() if y.is_floating_point() else y
    f = loss_fn(loss)

    def finite_loss(where: str) -> float:
        with torch.no_grad():
            val = float(f(net(Xd), yd))
        if not math.isfinite(val):
            raise InvalidModel(
                f"the loss became {val} during the critical-point search ({where}); check the data "
                "scale and the model's weights (or lower the number of L-BFGS steps)"
            )
        return val

    finite_loss("at the start")
    res = (
        train(net, Xd, yd, loss=loss, optimizer="lbfgs", epochs=search.lbfgs_steps, lr=1.0)
        if search.lbfgs_steps
        else None
    )
    finite_loss("after L-BFGS")
    op = HessianOperator(net, Xd, yd, loss=loss, chunk_size=chunk_size, method="func")
    sub = None
    if search.project_data_null:
        try:
            sub = FreeSubspace(net, Xd)
        except (UnsupportedModel, InvalidModel):
            sub = None
    if sub is None or sub.n_null == 0:
        sub = FreeSubspace.whole(op.n)
    dense_trust = op.n <= search.dense_limit
    dense_lm = sub.m <= search.dense_limit

    def grad_norm(theta: Tensor) -> float:
        return float(torch.linalg.vector_norm(op.gradient(theta)))

    def one_round(theta: Tensor, history: list[float]) -> tuple[Tensor, int]:
        if search.trust_steps > 0:
            theta = _trust_region(op, theta, search.trust_steps, search.grad_tol, exact=dense_trust)
            load_(net, theta)
            finite_loss("after the trust-region steps")
        history.append(grad_norm(theta))
        return _levenberg_marquardt(
            op, theta, sub, search.newton_steps, search.grad_tol, dense_lm, history
        )

    history: list[float] = []
    best, steps = one_round(op.theta.clone(), history)
    best_gn = grad_norm(best)
    used = 0
    for attempt in range(search.restarts + 1):
        if best_gn <= search.accept_tol:
            break
        if attempt == 0:
            start = best  # continue: more trust-region and LM steps from the best point
        else:
            used += 1
            z = torch.randn(sub.m, generator=gen, dtype=torch.float64).to(best)
            scale = _RESTART_PERTURBATION * float(torch.linalg.vector_norm(best)) / math.sqrt(sub.m)
            start = best + sub.to_full(scale * z)
        theta, k = one_round(start, history)
        steps += k
        gn = grad_norm(theta)
        if gn < best_gn:
            best, best_gn = theta, gn
    load_(net, best)
    value = finite_loss("after the Newton steps")
    return CriticalPoint(
        net,
        value,
        best_gn,
        res.steps if res else 0,
        steps,
        history,
        converged=best_gn <= search.accept_tol,
        n_data_null=sub.n_null,
        restarts=used,
    )
