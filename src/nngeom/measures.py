"""Baseline generalization measures and the rank statistics that compare measures with gaps.

Measures (same conventions as :mod:`nngeom.sensitivity`: a model plus data in, numbers out):

* :func:`input_jacobian_norm` -- Frobenius norm of ``df/dx`` per example (Novak et al. 2018).
* :func:`distance_from_init` -- ``||theta - theta_0||_2``.
* :func:`path_norm` -- the l2 path norm ``sqrt(sum over input-output paths of prod w^2)``.
* :func:`log_spectral_product`, :func:`log_frobenius_product` -- ``sum_l log ||W_l||``.
* :func:`sharpness` -- PAC-Bayes flavoured flatness ``1 / sigma^2`` for the largest Gaussian
  weight noise ``sigma`` that changes the training error by at most a target (Jiang et al. 2020).

Rank statistics:

* :func:`kendall_tau` -- Kendall's tau-b (``scipy.stats.kendalltau`` on the finite pairs).
* :func:`granulated_psi` -- Jiang et al.'s granulated Kendall coefficient: for each hyperparameter,
  the mean tau over groups of models that differ only in that hyperparameter; Psi is their mean.
* :func:`bootstrap_ci` -- a bootstrap interval (``scipy.stats.bootstrap``, BCa by default) of a
  statistic of resampled indices.

Quantities about a model are torch tensors (:func:`input_jacobian_norm`) or Python floats;
statistics over a collection of results are Python floats and NumPy arrays.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from ._checks import (
    as_real_array,
    check_list,
    check_number,
    check_positive_int,
    check_real_tensor,
)
from ._errors import InvalidInput, InvalidModel
from ._random import numpy_rng, torch_generator
from .nets import as_mlp
from .sensitivity import (
    _cast_X,
    _check_eval_mode,
    _check_model,
    _check_X,
    _finite_result,
    _generic_run,
    _pwl_view,
    activation_slopes,
)

# bootstrap_ci: the most resamples, and the most index draws in all (n_boot * n, plus the
# n * (n - 1) of BCa's jackknife)
MAX_BOOT = 1_000_000
MAX_BOOT_DRAWS = 1_000_000_000
# bootstrap_ci: index entries per batch of resamples handed to scipy (8 MB of int64)
BOOT_BATCH_ENTRIES = 1_000_000
# bootstrap_ci's methods (scipy.stats.bootstrap's names)
BOOT_METHODS = ("BCa", "percentile", "basic")
# sharpness: the most noise values drawn in all (samples x parameters)
MAX_NOISE_VALUES = 100_000_000

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

    >>> import torch, nngeom as ng
    >>> net = ng.mlp([3, 2], bias=False, dtype=torch.float64)
    >>> _ = net[0].weight.data.copy_(torch.tensor([[3.0, 0, 0], [0, 4.0, 0]]))
    >>> ng.input_jacobian_norm(net, torch.zeros(2, 3, dtype=torch.float64))
    tensor([5., 5.], dtype=torch.float64)
    """
    chunk_size = check_positive_int("chunk_size", chunk_size)
    _check_model(model)
    _check_eval_mode(model)  # a train-mode Dropout/BatchNorm would make the Jacobian random
    view = _pwl_view(model)
    if view is not None:
        X = _cast_X(_check_X(X, view.input_dim), view.dtype, view.device)
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
        return _finite_result(torch.cat(out), "input Jacobian norm")
    X = _check_X(X)
    first = next(p for p in model.parameters() if p.numel() > 0)
    if first.is_floating_point():
        X = _cast_X(X, first.dtype, first.device)
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
    return _finite_result(_generic_run(run, "input Jacobian"), "input Jacobian norm")


def distance_from_init(model: nn.Module, init: nn.Module | Mapping[str, Tensor]) -> float:
    """``||theta - theta_0||_2`` over all parameters (``init``: a module or a state dict)."""
    _check_model(model)
    if isinstance(init, nn.Module):
        ref = dict(init.named_parameters())
    elif isinstance(init, Mapping):
        ref = dict(init)
    else:
        raise InvalidInput(
            f"init must be a module or a state dict of tensors, got {type(init).__name__}"
        )
    norms = []
    for name, p in model.named_parameters():
        if name not in ref:
            raise InvalidInput(
                f"the initial parameters have no {name!r}; pass the same architecture"
            )
        q = ref[name]
        if not isinstance(q, Tensor):
            raise InvalidInput(f"init[{name!r}] is {type(q).__name__}, not a tensor")
        check_real_tensor(f"init[{name!r}]", q)
        if q.shape != p.shape:
            raise InvalidInput(
                f"parameter {name!r} has shape {tuple(p.shape)} but {tuple(q.shape)} at init"
            )
        qd = q.detach().double().cpu()
        if not bool(torch.isfinite(qd).all()):
            raise InvalidInput(f"init[{name!r}] has NaN or inf entries")
        diff = p.detach().double().cpu() - qd
        norms.append(_norm64(diff))
    out = math.hypot(*norms) if norms else 0.0
    if not math.isfinite(out):
        raise InvalidModel(
            "the distance from init overflows float64 (weights around 1e308); rescale them"
        )
    return out


def _norm64(t: Tensor) -> float:
    """Euclidean norm of a float64 tensor without overflow (scaled by its largest entry)."""
    if t.numel() == 0:
        return 0.0
    m = float(t.abs().max())
    if m == 0.0 or not math.isfinite(m):
        return m
    return m * float(torch.linalg.vector_norm(t / m))


def _weights64(model: nn.Module) -> list[Tensor]:
    _check_model(model)
    view = as_mlp(model)
    return [w.detach().double().cpu() for w in view.weights]


def path_norm(model: nn.Module) -> float:
    """l2 path norm of an MLP: ``sqrt(1^T W_L^2 ... W_0^2 1)`` (entry-wise squares, no biases).

    Computed with each layer scaled by its largest weight (the scales multiplied back in log
    space), so it overflows only when the path norm itself exceeds float64's range (refused).
    """
    W = _weights64(model)
    v = torch.ones(W[0].shape[1], dtype=torch.float64)
    log_scale = 0.0
    for w in W:
        m = float(w.abs().max())
        if m == 0.0:
            return 0.0
        v = ((w / m) ** 2) @ v
        s = float(v.max())
        if s == 0.0:
            return 0.0
        v = v / s
        log_scale += 2 * math.log(m) + math.log(s)
    total = 0.5 * (log_scale + math.log(float(v.sum())))
    if total > math.log(torch.finfo(torch.float64).max):
        raise InvalidModel(
            f"the path norm is about e^{total:.1f}, beyond float64's range; the weights are too "
            "large (compare log path norms instead)"
        )
    return math.exp(total)


def _log_norm(w: Tensor, ord: str | int, layer: int) -> float:
    m = float(w.abs().max())
    if m == 0.0:
        raise InvalidModel(
            f"layer {layer}'s weights are all zero: the log of its norm is -inf; the log-norm "
            "product is undefined for this model"
        )
    return math.log(m) + math.log(float(torch.linalg.matrix_norm(w / m, ord=ord)))


def log_spectral_product(model: nn.Module) -> float:
    """``sum_l log ||W_l||_2`` (log of the product of spectral norms; no overflow)."""
    return float(sum(_log_norm(w, 2, i) for i, w in enumerate(_weights64(model))))


def log_frobenius_product(model: nn.Module) -> float:
    """``sum_l log ||W_l||_F`` (log of the product of Frobenius norms)."""
    return float(sum(_log_norm(w, "fro", i) for i, w in enumerate(_weights64(model))))


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
    generator: torch.Generator | None = None,
) -> float:
    """PAC-Bayes flavoured sharpness ``1 / sigma^2`` (Jiang et al. 2020, "pacbayes.flatness").

    ``sigma`` is the largest standard deviation of isotropic Gaussian noise on every parameter
    such that the mean (over ``samples`` draws) training error of the perturbed model exceeds the
    unperturbed one by at most ``target``; found by bisection on ``log sigma`` with the same noise
    directions at every step (common random numbers, so the search is monotone and deterministic).
    The error is the 0-1 error for integer labels ``y`` and the mean squared error otherwise.
    Larger is sharper. The noise is drawn on the CPU from ``generator``, else from a generator
    seeded with ``seed``.
    """
    target = check_number("target", target, minimum=0.0, strict_min=True)
    samples = check_positive_int("samples", samples, maximum=10_000)
    iters = check_positive_int("iters", iters, maximum=1_000)
    g = torch_generator(seed, generator)
    try:
        s_lo, s_hi = (
            check_number("sigma_range", v, minimum=0.0, strict_min=True) for v in sigma_range
        )
    except (TypeError, ValueError) as exc:
        if isinstance(exc, InvalidInput):
            raise
        raise InvalidInput(
            f"sigma_range must be two numbers (lo, hi), got {sigma_range!r}"
        ) from None
    if not s_lo < s_hi:
        raise InvalidInput(f"sigma_range must have 0 < lo < hi, got {sigma_range!r}")
    _check_model(model)
    _check_eval_mode(model)  # random (Dropout) or batch-dependent layers would make it noisy
    X = _check_X(X)
    if not isinstance(y, Tensor):
        raise InvalidInput(f"y must be a torch tensor, got {type(y).__name__}")
    check_real_tensor("y", y)
    if y.ndim == 0 or y.shape[0] != X.shape[0]:
        raise InvalidInput(f"X has {X.shape[0]} examples but y has shape {tuple(y.shape)}")
    if y.is_floating_point() and not bool(torch.isfinite(y).all()):
        raise InvalidInput("y contains NaN or inf; clean the targets first")
    from torch.func import functional_call

    params = {k: v.detach() for k, v in model.named_parameters()}
    buffers = {k: v.detach() for k, v in model.named_buffers()}
    first = next(v for v in params.values() if v.numel() > 0)
    if first.is_floating_point():
        X = _cast_X(X, first.dtype, first.device)
    n_params = sum(v.numel() for v in params.values())
    if samples * n_params > MAX_NOISE_VALUES:
        raise InvalidInput(
            f"samples={samples} noise draws of {n_params:,} parameters is more than nngeom's "
            f"limit of {MAX_NOISE_VALUES:,} values; use fewer samples"
        )
    noise = [
        {k: torch.randn(v.shape, generator=g, dtype=torch.float64).to(v) for k, v in params.items()}
        for _ in range(samples)
    ]
    classify = not y.is_floating_point()
    y = y.to(device=X.device)

    def error(p: dict[str, Tensor]) -> float:
        with torch.no_grad():
            out = functional_call(model, (p, buffers), (X,))
        if classify:
            return float((out.argmax(1) != y).double().mean())
        return float((out.double() - y.double()).pow(2).mean())

    try:
        with torch.no_grad():
            out0 = functional_call(model, (params, buffers), (X,))
    except (RuntimeError, ValueError, TypeError, IndexError) as exc:
        raise InvalidInput(
            f"the model cannot be evaluated on X of shape {tuple(X.shape)} ({exc})"
        ) from exc
    if classify:
        if out0.ndim != 2 or y.ndim != 1:
            raise InvalidInput(
                f"integer labels need outputs (N, classes) and y (N,); got outputs "
                f"{tuple(out0.shape)} and y {tuple(y.shape)}"
            )
        if int(y.min()) < 0 or int(y.max()) >= out0.shape[1]:
            raise InvalidInput(f"labels must be in 0..{out0.shape[1] - 1}")
    elif out0.shape != y.shape:
        raise InvalidInput(
            f"the model's outputs have shape {tuple(out0.shape)} but y has {tuple(y.shape)}; "
            "pass targets of the output's shape"
        )

    base = error(params)
    if not math.isfinite(base):
        raise InvalidModel(
            "the model's training error is NaN/inf on finite data (an overflow); rescale the "
            "weights or inputs"
        )

    def deviation(sigma: float) -> float:
        vals = [error({k: v + sigma * n[k] for k, v in params.items()}) for n in noise]
        return float(np.mean(vals)) - base

    lo, hi = math.log(s_lo), math.log(s_hi)
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
    arr = as_real_array(a, name)
    if arr.ndim != 1:
        raise InvalidInput(f"{name} must be one-dimensional, got shape {arr.shape}")
    return arr


def kendall_tau(
    x: Sequence[float] | np.ndarray | Tensor, y: Sequence[float] | np.ndarray | Tensor
) -> float:
    """Kendall's tau-b between ``x`` and ``y`` (ties corrected): ``scipy.stats.kendalltau``.

    ``tau_b = (C - D) / sqrt((n0 - T_x) (n0 - T_y))`` over all pairs, ``O(n log n)``. Pairs
    holding NaN or inf are dropped; NaN where fewer than two pairs remain or either input is
    constant.

    >>> import nngeom as ng
    >>> round(ng.kendall_tau([1, 2, 3, 4], [1, 3, 2, 4]), 6)
    0.666667
    """
    from scipy.stats import kendalltau

    a, b = _as_1d(x, "x"), _as_1d(y, "y")
    if a.shape != b.shape:
        raise InvalidInput(f"x and y have different lengths ({a.size} and {b.size})")
    keep = np.isfinite(a) & np.isfinite(b)
    a, b = a[keep], b[keep]
    if a.size < 2 or np.all(a == a[0]) or np.all(b == b[0]):
        return math.nan
    # scipy also computes a p-value (unused here): the asymptotic one is the cheapest, and is
    # defined from three pairs on
    method = "asymptotic" if a.size > 2 else "exact"
    return float(kendalltau(a, b, method=method).statistic)


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

    >>> import nngeom as ng
    >>> factors = {"width": [8, 8, 16, 16], "depth": [1, 2, 1, 2]}
    >>> res = ng.granulated_psi([1, 2, 3, 4], [1, 2, 3, 4], factors)
    >>> res
    GranulatedPsi(psi=1.0, per_factor={'width': 1.0, 'depth': 1.0}, groups={'width': 2, 'depth': 2})
    """
    m, gp = _as_1d(measure, "measure"), _as_1d(gap, "gap")
    if m.shape != gp.shape:
        raise InvalidInput("measure and gap have different lengths")
    if not isinstance(factors, Mapping):
        raise InvalidInput(
            f"factors must map each hyperparameter name to its values, got {type(factors).__name__}"
        )
    names = list(factors)
    cols: dict[object, list] = {}
    for name in names:
        try:
            col = list(factors[name])
        except TypeError:
            raise InvalidInput(f"factor {name!r} must be a sequence of values") from None
        try:
            for v in col:
                hash(v)
        except TypeError:
            raise InvalidInput(
                f"factor {name!r} holds unhashable values; use numbers or strings"
            ) from None
        if len(col) != m.size:
            raise InvalidInput(f"factor {name!r} has {len(col)} values for {m.size} models")
        cols[name] = col
    if vary is None:
        vary = names
    elif isinstance(vary, str):
        vary = [vary]
    else:
        vary = check_list("vary", vary, what="a factor name or a list of factor names")
    for name in vary:
        try:
            known = name in cols
        except TypeError:  # unhashable
            known = False
        if not known:
            raise InvalidInput(f"cannot vary {name!r:.60}: it is not among the factors {names}")
    per: dict[str, float] = {}
    counts: dict[str, int] = {}
    for name in vary:
        others = [o for o in names if o != name]
        groups: dict[tuple, list[int]] = {}
        for i in range(m.size):
            groups.setdefault(tuple(cols[o][i] for o in others), []).append(i)
        taus = []
        for idx in groups.values():
            if len({cols[name][i] for i in idx}) < 2:
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
    method: str = "BCa",
    seed: int = 0,
    generator: torch.Generator | None = None,
) -> tuple[float, float]:
    """Bootstrap confidence interval of ``statistic(indices)`` over resamples of ``range(n)``.

    ``scipy.stats.bootstrap`` on the index sample ``0..n-1``: ``statistic`` receives an int64
    index array of length ``n`` (drawn with replacement; for BCa's jackknife also of length
    ``n - 1``) and returns a float. ``method``: ``"BCa"`` (bias-corrected and accelerated, the
    default), ``"percentile"`` or ``"basic"``; the resamples come from ``generator``, else from
    ``seed``.

    Resamples whose statistic is NaN or inf are dropped; where every finite value is the same
    (a constant statistic, ``n = 1``) the interval is that value; where BCa is undefined (the
    statistic of the whole sample outside the bootstrap distribution) the percentile interval
    is returned. ``(nan, nan)`` when no resample gives a finite value.

    >>> import numpy as np, nngeom as ng
    >>> x = np.arange(20.0)
    >>> lo, hi = ng.bootstrap_ci(lambda idx: float(x[idx].mean()), 20, n_boot=200, seed=0)
    >>> round(lo, 2), round(hi, 2)
    (7.05, 11.81)
    """
    if not callable(statistic):
        raise InvalidInput(f"statistic must be a callable of an index array, got {statistic!r}")
    n = check_positive_int("n", n, maximum=MAX_BOOT_DRAWS)
    n_boot = check_positive_int("n_boot", n_boot, maximum=MAX_BOOT)
    if method not in BOOT_METHODS:
        raise InvalidInput(f"method must be one of {list(BOOT_METHODS)}, got {method!r}")
    draws = n * n_boot + (n * (n - 1) if method == "BCa" else 0)
    if draws > MAX_BOOT_DRAWS:
        raise InvalidInput(
            f"n_boot={n_boot:,} resamples of n={n:,} ({method}) is {draws:,} index draws, more "
            f"than nngeom's limit of {MAX_BOOT_DRAWS:,}; use fewer resamples"
            + (" or method='percentile' (no jackknife)" if method == "BCa" else "")
        )
    level = check_number("level", level)
    if not 0 < level < 1:
        raise InvalidInput(f"level must be in (0, 1), got {level}")
    rng = numpy_rng(seed, generator)

    def value(idx: np.ndarray) -> float:
        v = statistic(idx)
        if (
            isinstance(v, (complex, np.complexfloating))
            or (isinstance(v, np.ndarray) and np.iscomplexobj(v))
            or (isinstance(v, Tensor) and v.is_complex())
        ):
            raise InvalidInput(f"statistic returned a complex value {v!r:.60}, not a real number")
        try:
            return float(v)  # type: ignore[arg-type]
        except OverflowError:  # an int beyond float64
            raise InvalidInput(f"statistic returned {v!r:.40}, too large for a float64") from None
        except (TypeError, ValueError, RuntimeError):
            raise InvalidInput(f"statistic returned {v!r:.60}, not a number") from None

    if n == 1:  # every resample is [0]
        v = value(np.zeros(1, dtype=np.int64))
        return (v, v) if math.isfinite(v) else (math.nan, math.nan)
    return _bootstrap_interval(value, n, n_boot, level, method, rng)


def _bootstrap_interval(
    value: Callable[[np.ndarray], float],
    n: int,
    n_boot: int,
    level: float,
    method: str,
    rng: np.random.Generator,
) -> tuple[float, float]:
    """The interval of :func:`bootstrap_ci` for ``n >= 2``: the resamples drawn once (percentile
    pass), their finite values then given to scipy again for ``method``'s interval."""
    import warnings

    from scipy.stats import DegenerateDataWarning, bootstrap

    data = (np.arange(n, dtype=np.int64),)
    batch = max(1, BOOT_BATCH_ENTRIES // n)
    common = {"confidence_level": level, "vectorized": False, "batch": batch}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DegenerateDataWarning)  # NaN draws: handled below
        res = bootstrap(data, value, n_resamples=n_boot, method="percentile", rng=rng, **common)
    dist = np.asarray(res.bootstrap_distribution, dtype=np.float64)
    finite = dist[np.isfinite(dist)]
    if finite.size == 0:
        return (math.nan, math.nan)
    if np.all(finite == finite[0]):
        return (float(finite[0]), float(finite[0]))
    if method == "percentile" and finite.size == dist.size:
        ci = res.confidence_interval
        return (float(ci.low), float(ci.high))
    kept = type(res)(res.confidence_interval, finite, res.standard_error)
    for how in (method, "percentile"):
        # an undefined BCa (equal or NaN jackknife values: 0 / 0) falls back to the percentile
        with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
            warnings.simplefilter("ignore", DegenerateDataWarning)
            ci = bootstrap(
                data, value, n_resamples=0, method=how, bootstrap_result=kept, rng=rng, **common
            ).confidence_interval
        lo, hi = float(ci.low), float(ci.high)
        if math.isfinite(lo) and math.isfinite(hi):
            break
    return (lo, hi)
