"""Lanczos on a symmetric linear operator: extreme eigenvalues, and the spectral density.

* :func:`lanczos` — Lanczos with full reorthogonalisation for the top-k / bottom-k eigenvalues
  (the extreme eigenvalues at both ends converge together; there is no need for the shift that
  power iteration needs for the most negative one), optionally on the orthogonal complement of
  given directions (the operator restricted there, :class:`nngeom._linop.Complement`).
* :func:`slq` — stochastic Lanczos quadrature: Ritz nodes and weights per Rademacher probe, whose
  average approximates the eigenvalue density (:class:`SpectralDensity`).

Both take any :class:`nngeom._linop.LinearOperator` (the Hessian of a loss, a matrix, a caller's
function ``v -> A v``) and draw their random vectors from ``seed=`` / ``generator=``
(:mod:`nngeom._random`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from ._checks import (
    TINY,
    check_device,
    check_float_dtype,
    check_number,
    check_positive_int,
)
from ._errors import InvalidInput
from ._linop import Complement, LinearOperator, as_operator, check_finite
from ._params import check_basis_size
from ._random import rademacher, torch_generator

# Default number of matvecs for k wanted eigenvalues: max(_ITER_PER_EIGENVALUE * k +
# _ITER_EXTRA, _ITER_MIN), capped by the dimension.
_ITER_PER_EIGENVALUE = 20
_ITER_EXTRA = 40
_ITER_MIN = 200
# A Lanczos residual below this fraction of the largest Ritz value means an invariant subspace.
_INVARIANT = 1e-10
# A restart vector whose norm after reorthogonalisation is below this has no new direction left.
_RESTART_NORM = 1e-8
# Stochastic Lanczos quadrature stops a probe's recurrence when the residual norm is below this.
_SLQ_BREAKDOWN = 1e-12
#: The ends of the spectrum :func:`lanczos` finds.
WHICH = ("largest", "smallest", "both")


@dataclass
class LanczosResult:
    """Extreme eigenvalues found by :func:`lanczos`.

    Attributes:
        eigenvalues: the wanted Ritz values, ascending: float64 tensor ``(w,)`` on the
            operator's device.
        eigenvectors: Ritz vectors ``(n, w)`` (the operator's dtype and device), or None.
        residuals: ``||A x - theta x||`` bound for each Ritz pair: float64 tensor ``(w,)``.
        iterations: number of matvecs used.
        converged: whether every wanted pair met the tolerance.

    >>> import torch
    >>> from nngeom.hessian import lanczos
    >>> res = lanczos(lambda v: torch.arange(5.0, dtype=torch.float64) * v, 5, 2)
    >>> res.eigenvalues.round(decimals=6).tolist(), res.converged
    ([3.0, 4.0], True)
    """

    eigenvalues: Tensor
    eigenvectors: Tensor | None
    residuals: Tensor
    iterations: int
    converged: bool


def _operator_overflow(dtype: torch.dtype) -> InvalidInput:
    return InvalidInput(
        f"the operator's values overflow {dtype} (NaN or inf in the Lanczos recurrence from "
        "finite unit vectors); rescale the operator (or use float64)"
    )


def _tridiag_eig(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    T = np.diag(a) + np.diag(b, 1) + np.diag(b, -1)
    return np.linalg.eigh(T)


def _wanted_indices(m: int, k: int, which: str) -> np.ndarray:
    k = min(k, m)
    if which == "largest":
        return np.arange(m - k, m)
    if which == "smallest":
        return np.arange(0, k)
    lo = np.arange(0, min(k, m))
    hi = np.arange(max(m - k, k), m)
    return np.concatenate([lo, hi])


def _operator(
    matvec: LinearOperator | Callable[[Tensor], Tensor],
    n: int | None,
    dtype: torch.dtype | None,
    device: torch.device | str | None,
) -> LinearOperator:
    """The operator of :func:`lanczos` / :func:`slq`'s arguments (dtype and device checked)."""
    if not isinstance(matvec, LinearOperator) and not callable(matvec):
        raise InvalidInput(f"matvec must be a function v (n,) -> A v (n,), got {matvec!r}")
    if n is not None:
        n = check_positive_int("n", n)
    if dtype is not None:
        dtype = check_float_dtype(dtype)
    if device is not None:
        device = check_device(device)
    if isinstance(matvec, LinearOperator):
        if dtype is not None and dtype != matvec.dtype:
            raise InvalidInput(f"dtype {dtype} differs from the operator's {matvec.dtype}")
        if device is not None and device != matvec.device:
            raise InvalidInput(f"device {device} differs from the operator's {matvec.device}")
    return as_operator(
        matvec, n, dtype or torch.float64, device if device is not None else torch.device("cpu")
    )


def lanczos(
    matvec: LinearOperator | Callable[[Tensor], Tensor],
    n: int | None = None,
    k: int = 10,
    which: str = "largest",
    *,
    tol: float = 1e-6,
    max_iter: int | None = None,
    seed: int = 0,
    generator: torch.Generator | None = None,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
    project: Tensor | None = None,
    return_vectors: bool = False,
    check_every: int = 5,
) -> LanczosResult:
    """Extreme eigenvalues of a symmetric operator by Lanczos with full reorthogonalisation.

    Args:
        matvec: a :class:`~nngeom._linop.LinearOperator` (e.g. a
            :class:`~nngeom.hessian.HessianOperator`), or a function ``v (n,) -> A v (n,)``.
        n: the dimension (needed for a function; the operator's own otherwise).
        k: number of eigenvalues wanted (at each end for ``which="both"``).
        which: ``"largest"`` (algebraic), ``"smallest"`` (algebraic, i.e. the most negative) or
            ``"both"`` (k at each end).
        tol: stop when every wanted Ritz pair has residual ``<= tol * max|theta|``
            (eigenvalue errors are about ``residual^2 / gap``, far smaller).
        max_iter: at most this many matvecs (default ``max(20 k + 40, 200)``, capped by the
            dimension).
        seed, generator: the random start vector's source (a CPU ``torch.Generator`` takes
            precedence over ``seed``; see :mod:`nngeom._random`).
        dtype, device: of the vectors, for a function (float64 on the CPU by default); an
            operator's own otherwise.
        project: optional ``(n, r)`` directions; the operator is restricted to their orthogonal
            complement (``n - r`` dimensions) and the Ritz vectors lie in it.
        return_vectors: also return the Ritz vectors.
        check_every: test convergence every this many steps.

    Returns:
        :class:`LanczosResult` with ascending eigenvalues.
    """
    A = _operator(matvec, n, dtype, device)
    n = A.n
    if not isinstance(which, str) or which not in WHICH:
        raise InvalidInput(f"which must be 'largest', 'smallest' or 'both', got {which!r}")
    k = check_positive_int("k", k)
    tol = check_number("tol", tol, minimum=0.0)
    if max_iter is not None:
        max_iter = check_positive_int("max_iter", max_iter)
    gen = torch_generator(seed, generator)
    check_every = check_positive_int("check_every", check_every)
    wanted = k if which != "both" else 2 * k
    if wanted > n:
        raise InvalidInput(f"asked for {wanted} eigenvalues of an {n}-dimensional operator")
    if max_iter is None:
        max_iter = max(_ITER_PER_EIGENVALUE * wanted + _ITER_EXTRA, _ITER_MIN)
    check_basis_size(
        min(n, max(max_iter, wanted)) + 1, n, "lanczos", "fewer iterations (max_iter=, k=)"
    )
    space = complement_of(project, n, A.dtype, A.device)
    if space is not None:
        A = A.restrict(space)
    dim = A.n
    if wanted > dim:
        raise InvalidInput(f"asked for {wanted} eigenvalues of a {dim}-dimensional operator")
    theta, S, V, res, m, converged = _iterate(A, wanted, k, which, tol, max_iter, gen, check_every)
    vecs = None
    if return_vectors:
        idx = _wanted_indices(m, k, which)
        vecs = V[:m].T @ torch.as_tensor(S[:, idx], dtype=A.dtype, device=A.device)
        if space is not None:
            vecs = space.to_full(vecs)
    idx = _wanted_indices(m, k, which)
    as64 = dict(dtype=torch.float64, device=A.device)
    return LanczosResult(
        torch.as_tensor(theta[idx].copy(), **as64), vecs, torch.as_tensor(res, **as64), m, converged
    )


def complement_of(
    project: Tensor | None, n: int, dtype: torch.dtype, device: torch.device
) -> Complement | None:
    """The orthogonal complement of ``project``'s columns (None when there is nothing to
    project out)."""
    if project is None:
        return None
    if not isinstance(project, Tensor) or project.ndim != 2 or project.shape[0] != n:
        raise InvalidInput(
            f"directions to project out must be a tensor of shape ({n}, r), got "
            f"{getattr(project, 'shape', type(project).__name__)!r}"
        )
    check_finite(project, "project")
    if project.shape[1] == 0:
        return None
    return Complement(project.to(dtype=dtype, device=device))


def _iterate(
    A: LinearOperator,
    wanted: int,
    k: int,
    which: str,
    tol: float,
    max_iter: int,
    gen: torch.Generator,
    check_every: int,
) -> tuple[np.ndarray, np.ndarray, Tensor, np.ndarray, int, bool]:
    """The Lanczos recurrence: ``(Ritz values, tridiagonal eigenvectors, basis V, residuals of
    the wanted pairs, steps m, converged)``."""
    dim, dtype, device = A.n, A.dtype, A.device
    m_max = int(min(dim, max(max_iter, wanted)))
    V = torch.zeros(m_max + 1, dim, dtype=dtype, device=device)
    alpha = np.zeros(m_max)
    beta = np.zeros(m_max)
    v = torch.randn(dim, generator=gen, dtype=dtype).to(device)
    V[0] = v / torch.linalg.vector_norm(v)
    m = 0
    converged = False
    for j in range(m_max):
        w = A._matvec(V[j])
        alpha[j] = float(V[j] @ w)
        # full reorthogonalisation (classical Gram-Schmidt, twice)
        for _ in range(2):
            w = w - V[: j + 1].T @ (V[: j + 1] @ w)
        b = float(torch.linalg.vector_norm(w))
        if not (math.isfinite(alpha[j]) and math.isfinite(b)):
            raise _operator_overflow(dtype)
        m = j + 1
        beta[j] = b
        if m == m_max:
            break
        scale = max(float(np.abs(alpha[:m]).max()), float(beta[: m - 1].max()) if m > 1 else 0.0)
        if b <= _INVARIANT * max(scale, TINY):
            # invariant subspace found: continue with a random vector orthogonal to it
            r = torch.randn(dim, generator=gen, dtype=dtype).to(device)
            for _ in range(2):
                r = r - V[:m].T @ (V[:m] @ r)
            rn = float(torch.linalg.vector_norm(r))
            beta[j] = 0.0
            if rn <= _RESTART_NORM:
                break
            V[m] = r / rn
            continue
        V[m] = w / b
        if m >= wanted and m % check_every == 0:
            theta, S = _tridiag_eig(alpha[:m], beta[: m - 1])
            idx = _wanted_indices(m, k, which)
            res = np.abs(b * S[-1, idx])
            if np.all(res <= tol * max(float(np.abs(theta).max()), TINY)):
                converged = True
                break
    theta, S = _tridiag_eig(alpha[:m], beta[: m - 1])
    idx = _wanted_indices(m, k, which)
    res = np.abs(beta[m - 1] * S[-1, idx]) if m < dim else np.zeros(len(idx))
    converged = converged or bool(np.all(res <= tol * max(np.abs(theta).max(), TINY)))
    return theta, S, V, res, m, converged


# ------------------------------------------------------------------------------------------
# Spectral density


@dataclass
class SpectralDensity:
    """Stochastic Lanczos quadrature: Ritz nodes and weights per probe vector.

    ``nodes[p]`` and ``weights[p]`` (each of length ``m``) give a quadrature rule for
    ``v_p^T f(H) v_p / n``; their average over probes approximates the eigenvalue density. A
    density estimate (a statistic over random probes, drawn and integrated with numpy), so its
    fields are numpy arrays.

    >>> import torch, nngeom as ng
    >>> sd = ng.spectral_density(lambda v: 2.0 * v, 10, n_probes=2, steps=3)
    >>> type(sd).__name__, sd.nodes.shape, sd.weights.shape
    ('SpectralDensity', (2, 3), (2, 3))
    >>> sd.nodes.round(6)
    array([[2., 0., 0.],
           [2., 0., 0.]])
    """

    nodes: np.ndarray  # (n_probes, m)
    weights: np.ndarray  # (n_probes, m), each row sums to 1

    def plot(self, ax=None, **kwargs):
        """Draw the spectral density (see :func:`nngeom.plots.spectrum`). Returns the Axes."""
        from . import plots

        return plots.spectrum(density=self, ax=ax, **kwargs)

    def density(self, grid: np.ndarray, sigma: float) -> np.ndarray:
        """Gaussian-broadened density on ``grid`` (integrates to ~1)."""
        sigma = check_number("sigma", sigma, minimum=0.0, strict_min=True)
        try:
            grid = np.asarray(grid, dtype=np.float64)
        except (TypeError, ValueError) as e:
            raise InvalidInput(f"grid must be an array of real numbers ({e})") from None
        if not np.isfinite(grid).all():
            raise InvalidInput("grid contains NaN or inf; pass finite points")
        diff = grid[None, None, :] - self.nodes[:, :, None]
        g = np.exp(-0.5 * (diff / sigma) ** 2) / (sigma * math.sqrt(2 * math.pi))
        return (self.weights[:, :, None] * g).sum(axis=1).mean(axis=0)


# The most probe vectors a spectral density may take.
MAX_PROBES = 100_000


def slq(
    matvec: LinearOperator | Callable[[Tensor], Tensor],
    n: int | None = None,
    *,
    n_probes: int = 4,
    steps: int = 80,
    seed: int = 0,
    generator: torch.Generator | None = None,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> SpectralDensity:
    """Stochastic Lanczos quadrature of a symmetric operator: ``n_probes`` Rademacher probes
    (drawn with :func:`nngeom._random.rademacher` from ``seed`` / a CPU ``generator``),
    ``steps`` Lanczos steps each. Arguments as in :func:`lanczos`."""
    A = _operator(matvec, n, dtype, device)
    n, dtype, device = A.n, A.dtype, A.device
    n_probes = check_positive_int("n_probes", n_probes, maximum=MAX_PROBES)
    steps = min(check_positive_int("steps", steps), n)
    gen = torch_generator(seed, generator)
    check_basis_size(steps, n, "spectral_density", "fewer steps (steps=)")
    all_nodes, all_weights = [], []
    for _ in range(n_probes):
        v = rademacher((n,), gen, dtype=dtype, device=device)
        V = torch.zeros(steps, n, dtype=dtype, device=device)
        V[0] = v / math.sqrt(n)
        a: list[float] = []
        b: list[float] = []
        m = steps
        for j in range(steps):
            w = A._matvec(V[j])
            a.append(float(V[j] @ w))
            w = w - a[-1] * V[j] - (b[-1] * V[j - 1] if j > 0 else 0.0)
            w = w - V[: j + 1].T @ (V[: j + 1] @ w)
            bn = float(torch.linalg.vector_norm(w))
            if not (math.isfinite(a[-1]) and math.isfinite(bn)):
                raise _operator_overflow(dtype)
            if j == steps - 1 or bn < _SLQ_BREAKDOWN:
                m = j + 1
                break
            b.append(bn)
            V[j + 1] = w / bn
        theta, S = _tridiag_eig(np.array(a[:m]), np.array(b[: m - 1]))
        nodes = np.zeros(steps)
        weights = np.zeros(steps)
        nodes[:m], weights[:m] = theta, S[0] ** 2
        all_nodes.append(nodes)
        all_weights.append(weights)
    return SpectralDensity(np.array(all_nodes), np.array(all_weights))
