"""Symmetric linear operators on torch vectors, applied and never stored (as in curvlinops).

A :class:`LinearOperator` is a symmetric ``(n, n)`` matrix ``A`` known through its products:

* ``A @ v`` for a vector ``(n,)`` and ``A @ V`` for a block of columns ``(n, k)``
  (:meth:`~LinearOperator.matvec`, :meth:`~LinearOperator.matmat`; arguments checked: real,
  finite, the right shape; cast to the operator's dtype and device);
* :meth:`~LinearOperator.to_dense` the ``(n, n)`` matrix, :meth:`~LinearOperator.to_scipy` a
  ``scipy.sparse.linalg.LinearOperator`` on float numpy vectors (for scipy's solvers);
* :meth:`~LinearOperator.restrict` the operator ``B^T A B`` on a subspace with orthonormal basis
  ``B`` ``(n, m)``, itself a linear operator of size ``m``.

A :class:`Subspace` is such a basis, applied and never stored: ``to_full(z) = B z`` and
``to_free(v) = B^T v``. :class:`ColumnBasis` holds ``B`` explicitly; :class:`Complement` is the
orthogonal complement of given directions (Householder reflectors, ``O(n r)`` per product);
:class:`nngeom.symmetry.FreeSubspace` is another one.

The Hessian of a loss (:class:`nngeom.hessian.HessianOperator`), the Lanczos iteration and the
critical-point search all speak this protocol.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor

from ._checks import all_finite, check_real_tensor
from ._errors import InvalidInput, NngeomError

# A column of a QR factor whose diagonal entry is below this fraction of the largest is dependent.
_DEPENDENT = 1e-12


def check_finite(t: object, name: str) -> Tensor:
    """``t`` as a real, finite, non-bool tensor (else :class:`~nngeom.InvalidInput`)."""
    if not isinstance(t, Tensor):
        raise InvalidInput(f"{name} must be a torch tensor, got {type(t).__name__}")
    check_real_tensor(name, t)
    if t.dtype == torch.bool:
        raise InvalidInput(f"{name} is a bool tensor; pass numbers (e.g. {name}.double())")
    if not all_finite(t):
        raise InvalidInput(f"{name} contains NaN or inf; pass a finite tensor")
    return t


# ------------------------------------------------------------------------------------------
# subspaces


class Subspace:
    """An ``m``-dimensional subspace of ``R^n`` with an orthonormal basis ``B`` ``(n, m)``.

    Subclasses define :meth:`to_full` (``B z``) and :meth:`to_free` (``B^T v``) for a vector or
    a block of columns. The base class is the whole space (``B = I``).
    """

    def __init__(self, n: int, m: int | None = None) -> None:
        self.n = int(n)
        self.m = self.n if m is None else int(m)

    @property
    def is_whole(self) -> bool:
        """Whether this is all of ``R^n`` (``B = I``: restricting to it changes nothing)."""
        return type(self) is Subspace

    def to_full(self, z: Tensor) -> Tensor:
        """``B z``: ``(m,)`` or ``(m, k)`` -> ``(n,)`` or ``(n, k)``."""
        return z

    def to_free(self, v: Tensor) -> Tensor:
        """``B^T v``: ``(n,)`` or ``(n, k)`` -> ``(m,)`` or ``(m, k)``."""
        return v

    def basis(self, dtype: torch.dtype, device: torch.device | str) -> Tensor:
        """``B`` ``(n, m)`` as a dense matrix."""
        return self.to_full(torch.eye(self.m, dtype=dtype, device=device))


class ColumnBasis(Subspace):
    """The span of the orthonormal columns of ``Q`` ``(n, m)``, held explicitly."""

    def __init__(self, Q: Tensor) -> None:
        super().__init__(Q.shape[0], Q.shape[1])
        self.Q = Q

    def to_full(self, z: Tensor) -> Tensor:
        return self.Q @ z

    def to_free(self, v: Tensor) -> Tensor:
        return self.Q.T @ v


def orthonormal_columns(D: Tensor) -> Tensor:
    """An orthonormal basis ``(n, r')`` of the span of ``D``'s columns (dependent ones dropped)."""
    Q, R = torch.linalg.qr(D)
    diag = R.diagonal().abs()
    keep = diag > _DEPENDENT * max(1.0, float(diag.max()) if diag.numel() else 0.0)
    return Q[:, keep]


class Complement(Subspace):
    """The orthogonal complement of the span of ``D``'s columns ``(n, r)``: ``m = n - rank(D)``.

    Its basis is the last ``m`` columns of the Householder ``Q`` of ``D``'s orthonormalised
    columns, applied through the reflectors (``torch.ormqr``), never formed.
    """

    def __init__(self, D: Tensor) -> None:
        Q = orthonormal_columns(D)
        super().__init__(D.shape[0], D.shape[0] - Q.shape[1])
        self.r = Q.shape[1]
        self.dtype = D.dtype
        # LAPACK's reflectors need float32 or float64
        work = torch.promote_types(D.dtype, torch.float32)
        self._a, self._tau = torch.geqrf(Q.to(work))

    def _apply(self, w: Tensor, transpose: bool) -> Tensor:
        one = w.ndim == 1
        w2 = (w[:, None] if one else w).to(self._a.dtype)
        out = torch.ormqr(self._a, self._tau, w2, left=True, transpose=transpose).to(w.dtype)
        return out[:, 0] if one else out

    def to_full(self, z: Tensor) -> Tensor:
        pad = z.new_zeros((self.r, *z.shape[1:]))
        return self._apply(torch.cat([pad, z]), transpose=False)

    def to_free(self, v: Tensor) -> Tensor:
        return self._apply(v, transpose=True)[self.r :]


# ------------------------------------------------------------------------------------------
# operators


class LinearOperator:
    """A symmetric ``(n, n)`` operator on torch vectors of ``dtype`` on ``device``.

    Subclasses define :meth:`_matmat` (``(n, k) -> (n, k)``, unchecked) and may define
    :meth:`_matvec` (``(n,) -> (n,)``) and :meth:`to_dense` when they have something faster.
    """

    def __init__(self, n: int, dtype: torch.dtype, device: torch.device | str) -> None:
        self.n = int(n)
        self.dtype = dtype
        self.device = torch.device(device)

    @property
    def shape(self) -> tuple[int, int]:
        return (self.n, self.n)

    # -- what subclasses define ----------------------------------------------------------
    def _matmat(self, V: Tensor) -> Tensor:
        raise NotImplementedError

    def _matvec(self, v: Tensor) -> Tensor:
        return self._matmat(v[:, None])[:, 0]

    # -- checked products -----------------------------------------------------------------
    def _checked(self, t: object, name: str, ndim: int) -> Tensor:
        want = f"({self.n},)" if ndim == 1 else f"({self.n}, k)"
        if not isinstance(t, Tensor) or t.ndim != ndim or t.shape[0] != self.n:
            raise InvalidInput(
                f"{name} must be a tensor of shape {want}, got "
                f"{getattr(t, 'shape', type(t).__name__)!r}"
            )
        return check_finite(t, name).to(dtype=self.dtype, device=self.device)

    def matvec(self, v: Tensor) -> Tensor:
        """``A @ v`` for ``v`` of shape ``(n,)``."""
        return self._matvec(self._checked(v, "v", 1))

    def matmat(self, V: Tensor) -> Tensor:
        """``A @ V`` for a block of columns ``V`` ``(n, k)``."""
        return self._matmat(self._checked(V, "V", 2))

    def __matmul__(self, x: Tensor) -> Tensor:
        if isinstance(x, Tensor) and x.ndim == 2:
            return self.matmat(x)
        return self.matvec(x)

    # -- other forms ------------------------------------------------------------------------
    def to_dense(self) -> Tensor:
        """The ``(n, n)`` matrix (``A @ I``, symmetrised)."""
        A = self._matmat(torch.eye(self.n, dtype=self.dtype, device=self.device))
        return 0.5 * (A + A.T)

    def to_scipy(self):
        """A ``scipy.sparse.linalg.LinearOperator`` on numpy vectors (float64 unless the
        operator is float32), for scipy's iterative solvers."""
        from scipy.sparse.linalg import LinearOperator as ScipyOperator

        np_dtype = np.float32 if self.dtype == torch.float32 else np.float64

        def as_tensor(x: np.ndarray) -> Tensor:
            return torch.as_tensor(np.asarray(x), dtype=self.dtype, device=self.device)

        def mv(x: np.ndarray) -> np.ndarray:
            return self._matvec(as_tensor(x).reshape(-1)).cpu().numpy().astype(np_dtype)

        def mm(X: np.ndarray) -> np.ndarray:
            return self._matmat(as_tensor(X)).cpu().numpy().astype(np_dtype)

        return ScipyOperator(
            self.shape, matvec=mv, rmatvec=mv, matmat=mm, rmatmat=mm, dtype=np_dtype
        )

    def restrict(self, subspace: Subspace) -> LinearOperator:
        """``B^T A B`` on ``subspace`` (basis ``B`` ``(n, m)``): an operator of size ``m``."""
        if subspace.n != self.n:
            raise InvalidInput(
                f"the subspace lives in R^{subspace.n} but the operator acts on R^{self.n}"
            )
        if subspace.is_whole:
            return self
        return RestrictedOperator(self, subspace)


class MatrixOperator(LinearOperator):
    """A symmetric matrix ``A`` ``(n, n)`` held as a tensor."""

    def __init__(self, A: Tensor) -> None:
        super().__init__(A.shape[0], A.dtype, A.device)
        self.A = A

    def _matmat(self, V: Tensor) -> Tensor:
        return self.A @ V

    def _matvec(self, v: Tensor) -> Tensor:
        return self.A @ v

    def to_dense(self) -> Tensor:
        return self.A


class FunctionOperator(LinearOperator):
    """The operator of a function ``matvec: v (n,) -> A v (n,)`` given by a caller.

    Its results are checked (a real finite tensor of shape ``(n,)``); a failure is reported as
    :class:`~nngeom.InvalidInput` saying what the function returned.
    """

    def __init__(
        self,
        matvec: Callable[[Tensor], Tensor],
        n: int,
        dtype: torch.dtype,
        device: torch.device | str,
    ) -> None:
        if not callable(matvec):
            raise InvalidInput(f"matvec must be a function v (n,) -> A v (n,), got {matvec!r}")
        super().__init__(n, dtype, device)
        self.function = matvec

    def _matvec(self, v: Tensor) -> Tensor:
        n, dtype = self.n, self.dtype
        try:
            w = self.function(v)
        except NngeomError:
            raise
        except Exception as e:
            raise InvalidInput(
                f"matvec failed on a vector of shape ({n},) and dtype {dtype}: "
                f"{type(e).__name__}: {e}"
            ) from e
        if not isinstance(w, Tensor) or tuple(w.shape) != (n,):
            raise InvalidInput(
                f"matvec must return a tensor of shape ({n},), got "
                f"{getattr(w, 'shape', type(w).__name__)!r}"
            )
        if w.is_complex() or w.device.type == "meta" or w.dtype == torch.bool:
            raise InvalidInput(
                f"matvec returned a {w.dtype} tensor on {w.device}: it must return real numbers "
                "(a symmetric real operator)"
            )
        if not all_finite(w):
            raise InvalidInput(
                "matvec returned NaN or inf for a finite unit vector: the operator overflows "
                f"{dtype}; rescale it (or use float64)"
            )
        return w.to(dtype=dtype, device=self.device)

    def _matmat(self, V: Tensor) -> Tensor:
        return torch.stack([self._matvec(V[:, c]) for c in range(V.shape[1])], 1)


class RestrictedOperator(LinearOperator):
    """``B^T A B`` for an operator ``A`` and a :class:`Subspace` with basis ``B``."""

    def __init__(self, operator: LinearOperator, subspace: Subspace) -> None:
        super().__init__(subspace.m, operator.dtype, operator.device)
        self.operator = operator
        self.subspace = subspace

    def _matmat(self, Z: Tensor) -> Tensor:
        return self.subspace.to_free(self.operator._matmat(self.subspace.to_full(Z)))

    def _matvec(self, z: Tensor) -> Tensor:
        return self.subspace.to_free(self.operator._matvec(self.subspace.to_full(z)))


def as_operator(
    A: LinearOperator | Callable[[Tensor], Tensor],
    n: int | None,
    dtype: torch.dtype,
    device: torch.device | str,
) -> LinearOperator:
    """``A`` itself when it is a :class:`LinearOperator` (``n``, if given, must match), else the
    :class:`FunctionOperator` of the function ``A`` on ``R^n``."""
    if isinstance(A, LinearOperator):
        if n is not None and int(n) != A.n:
            raise InvalidInput(f"n = {n} but the operator has size {A.n}; leave n out")
        return A
    if n is None:
        raise InvalidInput("n (the dimension) is needed when the operator is a function")
    return FunctionOperator(A, n, dtype, device)
