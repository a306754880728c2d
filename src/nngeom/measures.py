"""Baseline generalization measures and the rank statistics that compare measures with gaps.

Measures (same conventions as :mod:`nngeom.sensitivity`: a model plus data in, numbers out):

* :func:`input_jacobian_norm` -- Frobenius norm of ``df/dx`` per example (Novak et al. 2018).
* :func:`distance_from_init` -- ``||theta - theta_0||_2``.
* :func:`path_norm` -- the l2 path norm ``sqrt(sum over input-output paths of prod w^2)``.
* :func:`log_spectral_product`, :func:`log_frobenius_product` -- ``sum_l log ||W_l||``.
* :func:`sharpness` -- PAC-Bayes flavoured flatness ``1 / sigma^2`` for the largest Gaussian
  weight noise ``sigma`` that changes the training error by at most a target (Jiang et al. 2020).

Rank statistics:

* :func:`kendall_tau` -- Kendall's tau-b (equal to ``scipy.stats.kendalltau``'s default).
* :func:`granulated_psi` -- Jiang et al.'s granulated Kendall coefficient: for each hyperparameter,
  the mean tau over groups of models that differ only in that hyperparameter; Psi is their mean.
* :func:`bootstrap_ci` -- a percentile bootstrap interval with a seeded numpy Generator.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from ._errors import InvalidInput
from .nets import as_mlp
from .sensitivity import (
    _check_eval_mode,
    _check_model,
    _check_X,
    _generic_run,
    _pwl_view,
    activation_slopes,
)

__all__ = [
    "input_jacobian_norm",
    "distance_from_init",
    "path_norm",
    "log_spectral_product",
    "log_frobenius_product",
    "sharpness",
    "kendall_tau",
    "granulated_psi",
    "GranulatedPsi",
    "bootstrap_ci",
]


def input_jacobian_norm(model: nn.Module, X: Tensor, *, chunk_size: int = 256) -> Tensor:
    """Frobenius norm of the input-output Jacobian ``df/dx`` per example: shape ``(N,)``.

    Piecewise-linear MLPs use the exact product ``W_L S_{L-1} ... S_0 W_0`` (a backward chain of
    ``p x n`` matrices); any other model uses ``torch.func.vmap(jacrev)`` in chunks.
    """
    _check_model(model)
    _check_eval_mode(model)  # a train-mode Dropout/BatchNorm would make the Jacobian random
    view = _pwl_view(model)
    if view is not None:
        X = _check_X(X, view.input_dim).to(dtype=view.dtype, device=view.device)
        out = []
        with torch.no_grad():
            for start in range(0, X.shape[0], chunk_size):
                xb = X[start : start + chunk_size]
                slopes, out_slope = activation_slopes(view, xb)
                A = view.weights[-1].unsqueeze(0)
                if out_slope is not None:
                    A = A * out_slope.unsqueeze(-1)
                A = A.expand(xb.shape[0], -1, -1)
                for li in range(view.depth - 1, -1, -1):
                    A = (A * slopes[li].unsqueeze(1)) @ view.weights[li]
                out.append(A.pow(2).sum((1, 2)).sqrt())
        return torch.cat(out)
    X = _check_X(X)
    from torch.func import functional_call, jacrev, vmap

    params = {k: v.detach() for k, v in model.named_parameters()}
    buffers = {k: v.detach() for k, v in model.named_buffers()}

    def f(x: Tensor) -> Tensor:
        return functional_call(model, (params, buffers), (x.unsqueeze(0),)).reshape(-1)

    def run() -> Tensor:
        J = vmap(jacrev(f), chunk_size=chunk_size)(X)
        return J.reshape(X.shape[0], -1).pow(2).sum(1).sqrt()

    try:
        with torch.no_grad():
            model(X[:1])
    except (RuntimeError, ValueError, TypeError, IndexError) as exc:
        raise InvalidInput(
            f"the model cannot be evaluated on X of shape {tuple(X.shape)} ({exc})"
        ) from exc
    return _generic_run(run, "input Jacobian")


def distance_from_init(model: nn.Module, init: nn.Module | Mapping[str, Tensor]) -> float:
    """``||theta - theta_0||_2`` over all parameters (``init``: a module or a state dict)."""
    _check_model(model)
    ref = dict(init.named_parameters()) if isinstance(init, nn.Module) else dict(init)
    total = 0.0
    for name, p in model.named_parameters():
        if name not in ref:
            raise InvalidInput(
                f"the initial parameters have no {name!r}; pass the same architecture"
            )
        q = ref[name]
        if q.shape != p.shape:
            raise InvalidInput(
                f"parameter {name!r} has shape {tuple(p.shape)} but {tuple(q.shape)} at init"
            )
        total += float((p.detach().double() - q.detach().double().to(p.device)).pow(2).sum())
    return math.sqrt(total)


def _weights64(model: nn.Module) -> list[Tensor]:
    _check_model(model)
    view = as_mlp(model)
    return [w.detach().double().cpu() for w in view.weights]


def path_norm(model: nn.Module) -> float:
    """l2 path norm of an MLP: ``sqrt(1^T W_L^2 ... W_0^2 1)`` (entry-wise squares, no biases)."""
    W = _weights64(model)
    v = torch.ones(W[0].shape[1], dtype=torch.float64)
    for w in W:
        v = (w**2) @ v
    return math.sqrt(float(v.sum()))


def log_spectral_product(model: nn.Module) -> float:
    """``sum_l log ||W_l||_2`` (log of the product of spectral norms; no overflow)."""
    return float(
        sum(math.log(float(torch.linalg.matrix_norm(w, ord=2))) for w in _weights64(model))
    )


def log_frobenius_product(model: nn.Module) -> float:
    """``sum_l log ||W_l||_F`` (log of the product of Frobenius norms)."""
    return float(sum(math.log(float(torch.linalg.matrix_norm(w))) for w in _weights64(model)))


def sharpness(
    model: nn.Module,
    X: Tensor,
    y: Tensor,
    *,
    target: float = 0.1,
    samples: int = 8,
    iters: int = 14,
    sigma_range: tuple[float, float] = (1e-4, 10.0),
    seed: int = 0,
) -> float:
    """PAC-Bayes flavoured sharpness ``1 / sigma^2`` (Jiang et al. 2020, "pacbayes.flatness").

    ``sigma`` is the largest standard deviation of isotropic Gaussian noise on every parameter
    such that the mean (over ``samples`` draws) training error of the perturbed model exceeds the
    unperturbed one by at most ``target``; found by bisection on ``log sigma`` with the same noise
    directions at every step (common random numbers, so the search is monotone and deterministic).
    The error is the 0-1 error for integer labels ``y`` and the mean squared error otherwise.
    Larger is sharper.
    """
    _check_model(model)
    X = _check_X(X)
    if y.shape[0] != X.shape[0]:
        raise InvalidInput(f"X has {X.shape[0]} examples but y has {y.shape[0]}")
    if not (0 < target and math.isfinite(target)):
        raise InvalidInput(f"target must be a positive number, got {target}")
    if samples < 1 or iters < 1:
        raise InvalidInput("samples and iters must be >= 1")
    from torch.func import functional_call

    params = {k: v.detach() for k, v in model.named_parameters()}
    buffers = {k: v.detach() for k, v in model.named_buffers()}
    g = torch.Generator().manual_seed(int(seed))
    noise = [
        {k: torch.randn(v.shape, generator=g, dtype=torch.float64).to(v) for k, v in params.items()}
        for _ in range(samples)
    ]
    classify = not y.is_floating_point()

    def error(p: dict[str, Tensor]) -> float:
        with torch.no_grad():
            out = functional_call(model, (p, buffers), (X,))
        if classify:
            return float((out.argmax(1) != y).double().mean())
        return float((out - y).double().pow(2).mean())

    base = error(params)

    def deviation(sigma: float) -> float:
        vals = [error({k: v + sigma * n[k] for k, v in params.items()}) for n in noise]
        return float(np.mean(vals)) - base

    lo, hi = math.log(sigma_range[0]), math.log(sigma_range[1])
    if deviation(math.exp(hi)) <= target:
        return 1.0 / math.exp(hi) ** 2
    if deviation(math.exp(lo)) > target:
        return 1.0 / math.exp(lo) ** 2
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        if deviation(math.exp(mid)) <= target:
            lo = mid
        else:
            hi = mid
    return 1.0 / math.exp(lo) ** 2


# --------------------------------------------------------------------------------------------
# rank statistics
# --------------------------------------------------------------------------------------------


def _as_1d(a: Sequence[float] | np.ndarray | Tensor, name: str) -> np.ndarray:
    if isinstance(a, Tensor):
        a = a.detach().cpu().numpy()
    arr = np.asarray(a, dtype=np.float64)
    if arr.ndim != 1:
        raise InvalidInput(f"{name} must be one-dimensional, got shape {arr.shape}")
    return arr


def kendall_tau(
    x: Sequence[float] | np.ndarray | Tensor, y: Sequence[float] | np.ndarray | Tensor
) -> float:
    """Kendall's tau-b between ``x`` and ``y`` (ties corrected, as ``scipy.stats.kendalltau``).

    ``tau_b = (C - D) / sqrt((n0 - T_x) (n0 - T_y))`` over all pairs; NaN where either input is
    constant. Pairs holding NaN are dropped. Cost ``O(n^2)`` in blocks (fine for thousands).
    """
    a, b = _as_1d(x, "x"), _as_1d(y, "y")
    if a.shape != b.shape:
        raise InvalidInput(f"x and y have different lengths ({a.size} and {b.size})")
    keep = np.isfinite(a) & np.isfinite(b)
    a, b = a[keep], b[keep]
    n = a.size
    if n < 2:
        return math.nan
    s = 0
    tx = ty = 0
    block = max(1, 2_000_000 // n)
    for start in range(0, n, block):
        da = np.sign(a[start : start + block, None] - a[None, :])
        db = np.sign(b[start : start + block, None] - b[None, :])
        s += int((da * db).sum())
        tx += int((da == 0).sum())
        ty += int((db == 0).sum())
    # every unordered pair was counted twice, and each diagonal entry once in the tie counts
    s //= 2
    n0 = n * (n - 1) // 2
    ties_x = (tx - n) // 2
    ties_y = (ty - n) // 2
    denom = math.sqrt(float(n0 - ties_x) * float(n0 - ties_y))
    if denom == 0:
        return math.nan
    return float(s / denom)


@dataclass(frozen=True)
class GranulatedPsi:
    """Jiang et al.'s granulated Kendall coefficient.

    Attributes:
        psi: mean of ``per_factor`` over the factors that had at least one usable group.
        per_factor: ``psi_i`` per varied factor: mean tau over the groups of models that share
            every other factor's value.
        groups: number of usable groups per factor.
    """

    psi: float
    per_factor: dict[str, float]
    groups: dict[str, int]


def granulated_psi(
    measure: Sequence[float] | np.ndarray,
    gap: Sequence[float] | np.ndarray,
    factors: Mapping[str, Sequence],
    vary: Sequence[str] | None = None,
) -> GranulatedPsi:
    """Granulated Kendall coefficient Psi (Jiang et al. 2020, Eq. 4).

    Args:
        measure, gap: one value per model (length ``n``).
        factors: the hyperparameters of each model (name -> ``n`` values), including any seed.
        vary: the factors to vary one at a time (default: all). A group is a set of models with
            equal values of every other factor; its tau is between measure and gap within it.
            Groups with fewer than two distinct values of the varied factor, or a constant
            measure or gap, are skipped.
    """
    m, gp = _as_1d(measure, "measure"), _as_1d(gap, "gap")
    if m.shape != gp.shape:
        raise InvalidInput("measure and gap have different lengths")
    names = list(factors)
    for name in names:
        if len(factors[name]) != m.size:
            raise InvalidInput(
                f"factor {name!r} has {len(factors[name])} values for {m.size} models"
            )
    vary = list(vary) if vary is not None else names
    for name in vary:
        if name not in factors:
            raise InvalidInput(f"cannot vary {name!r}: it is not among the factors {names}")
    per: dict[str, float] = {}
    counts: dict[str, int] = {}
    for name in vary:
        others = [o for o in names if o != name]
        groups: dict[tuple, list[int]] = {}
        for i in range(m.size):
            groups.setdefault(tuple(factors[o][i] for o in others), []).append(i)
        taus = []
        for idx in groups.values():
            if len({factors[name][i] for i in idx}) < 2:
                continue
            t = kendall_tau(m[idx], gp[idx])
            if not math.isnan(t):
                taus.append(t)
        counts[name] = len(taus)
        per[name] = float(np.mean(taus)) if taus else math.nan
    usable = [v for v in per.values() if not math.isnan(v)]
    return GranulatedPsi(float(np.mean(usable)) if usable else math.nan, per, counts)


def bootstrap_ci(
    statistic: Callable[[np.ndarray], float],
    n: int,
    *,
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap interval of ``statistic(indices)`` over resamples of ``range(n)``.

    ``statistic`` receives an index array (drawn with replacement by
    ``np.random.default_rng(seed)``) and returns a float; NaN draws are ignored.
    """
    if n < 1:
        raise InvalidInput("bootstrap needs at least one sample")
    if not 0 < level < 1:
        raise InvalidInput(f"level must be in (0, 1), got {level}")
    if n_boot < 1:
        raise InvalidInput(f"n_boot must be >= 1, got {n_boot}")
    rng = np.random.default_rng(seed)
    vals = np.array([statistic(rng.integers(0, n, n)) for _ in range(n_boot)], dtype=np.float64)
    vals = vals[np.isfinite(vals)]
    if vals.size == 0:
        return (math.nan, math.nan)
    alpha = (1 - level) / 2
    return (float(np.quantile(vals, alpha)), float(np.quantile(vals, 1 - alpha)))
