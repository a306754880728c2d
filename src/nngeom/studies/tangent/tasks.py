"""The tangent study's tasks: their configs, results, scales and runs (no summary code here).

Two kinds of task:

* :class:`TrainingCurve` -- the paper's experiment: one wide ReLU MLP trained for a fixed number
  of epochs; after every epoch, tangent sensitivity, the input-Jacobian norm and nngeom's
  bounds on tangent sensitivity are measured on held-out examples (a fixed, class-stratified
  sample of the test set), with the training and test losses.
* :class:`GridNet` -- one net of the cross-model grid (Jiang et al. 2020): trained until the
  cross-entropy on its training set is at most ``target_ce`` or its training accuracy at least
  ``target_acc`` (or the epoch cap), then measured once.

Every task is deterministic given its fields (the seeds are fields).
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from ..._checks import TINY
from ..._errors import StudyError
from ..._random import torch_generator
from ...data import Dataset, digits, fashion_mnist
from ...measures import (
    distance_from_init,
    input_jacobian_norm,
    log_frobenius_product,
    log_spectral_product,
    path_norm,
    sharpness,
)
from ...nets import mlp
from ...regions import pattern_statistics
from ...sensitivity import tangent_sensitivity, tangent_sensitivity_bounds
from .._typed import Result, Task

__all__ = [
    "BOUND_FAMILIES",
    "BOUND_RTOL",
    "CurveResult",
    "GRID_FACTORS",
    "GridNet",
    "NetResult",
    "TrainingCurve",
    "tasks",
]

# A bound is counted as met at an example when TS <= bound * (1 + BOUND_RTOL): tangent
# sensitivity is computed in float32, the bounds in float64
BOUND_RTOL = 1e-4
# The bound families of nngeom.tangent_sensitivity_bounds: three input-free, two that use the
# activation pattern of the example
BOUND_FAMILIES = ("linf", "path", "spectral", "active_paths", "active_counts")
# The grid's hyperparameters (the first four are among Jiang et al. 2020's); a factor a scale
# varies has >= 3 values
GRID_FACTORS = ("width", "depth", "lr", "batch_size", "n_train")
# Offsets of the random streams drawn from a task's seeds
_ORDER_STREAM = 7919  # minibatch order (added to the net's seed)
_TRAIN_SUBSET_STREAM = 1  # the training subset (added to the data seed)
_MEASURE_STREAM = 2  # the held-out examples measured (added to the data seed)
# Sharpness search (Jiang et al.'s pacbayes.flatness): noise draws and bisection steps
_SHARP_SAMPLES = 4
_SHARP_ITERS = 10


# --------------------------------------------------------------------------------------------
# configs and results
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CurveResult(Result):
    """What :class:`TrainingCurve` measured after every epoch (index ``e`` = after epoch ``e+1``).

    Per-example tables are ``[epoch][example]`` over the held-out examples (their labels in
    ``labels``); ``heldout_loss`` is each example's squared error (mean over outputs) against its
    one-hot target, ``ts`` its tangent sensitivity (mean over outputs of ``TS_k(x)``), ``jac``
    its input-Jacobian Frobenius norm.
    """

    dataset: str
    n_params: int
    labels: tuple[int, ...]
    train_loss: tuple[float, ...]
    test_loss: tuple[float, ...]  # the whole test set
    train_acc: tuple[float, ...]
    test_acc: tuple[float, ...]
    train_loss_class: tuple[tuple[float, ...], ...]  # [epoch][class], the whole training subset
    heldout_loss: tuple[tuple[float, ...], ...]
    ts: tuple[tuple[float, ...], ...]
    jac: tuple[tuple[float, ...], ...]
    log_bound_linf: tuple[float, ...]  # log10 of the input-free bounds, per epoch
    log_bound_path: tuple[float, ...]
    log_bound_spectral: tuple[float, ...]
    log_bound_active_paths: tuple[float, ...]  # log10 of the mean over the bound subset
    dist_init: tuple[float, ...]
    # per bound family (BOUND_FAMILIES order): checks where the bound was >= TS, checks made,
    # and the smallest ratio bound / TS met (over examples, outputs and epochs)
    bound_met: tuple[int, ...]
    bound_checks: tuple[int, ...]
    bound_min_ratio: tuple[float, ...]
    bound_median_ratio: tuple[tuple[float, ...], ...]  # [epoch][family]: median bound / TS
    converged: bool  # the fit criterion of the config was met after the last epoch


@dataclass(frozen=True)
class TrainingCurve(Task):
    """The paper's experiment: one wide ReLU MLP, measured after every epoch of training.

    Loss: squared error against one-hot targets (the authors' code, ``optax.l2_loss``), Adam
    with a constant learning rate, minibatches in a seeded order. ``per_class`` held-out test
    examples of each class are measured (tangent sensitivity, Jacobian norm, input-free bounds);
    ``per_class_bounds`` of them also with the data-dependent bounds. ``fit_accuracy``: the net
    counts as trained when its training accuracy after the last epoch is at least this (a
    record, not a stopping rule: the paper trains for a fixed number of epochs).
    """

    dataset: str
    width: int
    depth: int
    n_train: int
    per_class: int
    per_class_bounds: int
    epochs: int
    lr: float
    batch_size: int
    fit_accuracy: float = 0.99
    seed: int = 0
    data_seed: int = 0

    def run(self) -> CurveResult:
        return _run_curve(self)


@dataclass(frozen=True)
class NetResult(Result):
    """One trained net of the grid and its measures (``nan`` where training diverged).

    ``gap`` is training accuracy minus test accuracy (Jiang et al.'s generalization gap);
    ``stopped`` says what ended training: ``"ce"``, ``"acc"``, ``"cap"`` or ``"diverged"``.
    """

    train_acc: float
    test_acc: float
    train_ce: float
    test_ce: float
    gap: float
    epochs: int
    stopped: str
    converged: bool
    ts_test: float
    ts_train: float
    jac_test: float
    log_bound_linf: float
    log_bound_path: float
    log_bound_spectral: float
    log_bound_active_paths: float
    dist_init: float
    log_path_norm: float
    log_spec: float
    log_frob: float
    sharpness: float
    pattern_entropy: float
    fraction_active: float
    bound_met: tuple[int, ...]
    bound_checks: tuple[int, ...]


@dataclass(frozen=True)
class GridNet(Task):
    """One net of the cross-model grid: trained to a fixed criterion, then measured.

    Training (cross-entropy, Adam, minibatches) stops after the first epoch at which the
    training subset's cross-entropy is at most ``target_ce`` or its accuracy at least
    ``target_acc`` (Jiang et al. 2020); ``max_epochs`` caps it, and a net stopped by the cap
    has ``converged=False``. Measures: tangent sensitivity on ``n_measure`` test and training
    examples, the input-Jacobian norm, nngeom's bounds (data-dependent ones on ``n_bounds``
    test examples), norms, distance from initialization, sharpness on ``n_sharp`` training
    examples, activation-pattern statistics.
    """

    dataset: str
    width: int
    depth: int
    lr: float
    batch_size: int
    n_train: int
    max_epochs: int
    n_measure: int
    n_bounds: int
    n_sharp: int
    target_ce: float = 0.01
    target_acc: float = 0.99
    seed: int = 0
    data_seed: int = 0

    def run(self) -> NetResult:
        return _run_grid_net(self)


# --------------------------------------------------------------------------------------------
# scales
# --------------------------------------------------------------------------------------------

# "test": tiny, on sklearn digits, for the test suite. "quick": minutes on a laptop. "paper": at
# most an hour on 2 cores (the reductions are listed in the study's departures). "full": the
# paper's sizes (one 3000-wide net as in the authors' code) and a larger grid, for a cluster.
_CURVE = {
    "test": dict(
        dataset="digits",
        width=32,
        depth=2,
        n_train=300,
        per_class=4,
        per_class_bounds=1,
        epochs=4,
        lr=3e-3,
        batch_size=32,
    ),
    "quick": dict(
        dataset="fashion-mnist",
        width=256,
        depth=2,
        n_train=3000,
        per_class=20,
        per_class_bounds=1,
        epochs=20,
        lr=3e-4,
        batch_size=32,
    ),
    "paper": dict(
        dataset="fashion-mnist",
        width=1024,
        depth=3,
        n_train=10000,
        per_class=50,
        per_class_bounds=2,
        epochs=40,
        lr=1e-4,
        batch_size=32,
    ),
    "full": dict(
        dataset="fashion-mnist",
        width=3000,
        depth=3,
        n_train=60000,
        per_class=1000,
        per_class_bounds=10,
        epochs=60,
        lr=1e-5,
        batch_size=32,
    ),
}

_GRID: dict[str, dict] = {
    "test": dict(
        dataset="digits",
        factors={
            "width": (8, 16, 32),
            "depth": (1,),
            "lr": (3e-3, 1e-2, 3e-2),
            "batch_size": (64,),
            "n_train": (200,),
        },
        seeds=(0,),
        max_epochs=60,
        n_measure=32,
        n_bounds=4,
        n_sharp=100,
    ),
    "quick": dict(
        dataset="fashion-mnist",
        factors={
            "width": (32, 64, 128),
            "depth": (1,),
            "lr": (3e-3,),
            "batch_size": (64,),
            "n_train": (300, 600, 1200),
        },
        seeds=(0,),
        max_epochs=150,
        n_measure=100,
        n_bounds=5,
        n_sharp=300,
    ),
    # the training-set size varies (Jiang et al. keep it fixed) because at one size the gaps of
    # nets trained to 99% training accuracy spread too little: 0.162-0.177 over nine nets of
    # the width x depth x lr x batch-size grid at 2,000 examples
    "paper": dict(
        dataset="fashion-mnist",
        factors={
            "width": (128, 256, 512),
            "depth": (1, 2, 3),
            "lr": (3e-4, 1e-3, 3e-3),
            "batch_size": (64,),
            "n_train": (1000, 2000, 4000),
        },
        seeds=(0,),
        max_epochs=300,
        n_measure=500,
        n_bounds=20,
        n_sharp=1000,
    ),
    "full": dict(
        dataset="fashion-mnist",
        factors={
            "width": (256, 512, 1024),
            "depth": (1, 2, 3),
            "lr": (1e-4, 3e-4, 1e-3),
            "batch_size": (32, 64, 128),
            "n_train": (15000, 30000, 60000),
        },
        seeds=(0, 1, 2),
        max_epochs=300,
        n_measure=10000,
        n_bounds=200,
        n_sharp=5000,
    ),
}
SCALE_NAMES = tuple(_CURVE)


def tasks(scale: str, seed: int) -> list[Task]:
    """The training curve first (the longest task), then one :class:`GridNet` per grid point."""
    if scale not in _CURVE:
        raise StudyError(f"unknown scale {scale!r} for the tangent study; use {list(_CURVE)}")
    out: list[Task] = [TrainingCurve(**_CURVE[scale], seed=int(seed), data_seed=int(seed))]
    g = _GRID[scale]
    f = g["factors"]
    for width, depth, lr, bs, n_train, s in itertools.product(
        *(f[name] for name in GRID_FACTORS), g["seeds"]
    ):
        out.append(
            GridNet(
                dataset=g["dataset"],
                width=int(width),
                depth=int(depth),
                lr=float(lr),
                batch_size=int(bs),
                n_train=int(n_train),
                max_epochs=int(g["max_epochs"]),
                n_measure=int(g["n_measure"]),
                n_bounds=int(g["n_bounds"]),
                n_sharp=int(g["n_sharp"]),
                seed=int(seed) + int(s),
                data_seed=int(seed),
            )
        )
    return out


# --------------------------------------------------------------------------------------------
# data, training
# --------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=2)
def _dataset(name: str, data_seed: int) -> Dataset:
    """The whole dataset (cached per worker process)."""
    if name == "fashion-mnist":
        return fashion_mnist()
    if name == "digits":
        return digits(seed=data_seed)
    raise StudyError(
        f"unknown dataset {name!r} for the tangent study; use 'fashion-mnist' or 'digits'"
    )


def _train_subset(ds: Dataset, n_train: int, data_seed: int) -> tuple[Tensor, Tensor]:
    """A seeded random subset of the training set (prefixes of one permutation: nested sets)."""
    g = torch_generator(int(data_seed) + _TRAIN_SUBSET_STREAM)
    idx = torch.randperm(ds.X_train.shape[0], generator=g)[: min(n_train, ds.X_train.shape[0])]
    return ds.X_train[idx], ds.y_train[idx]


def _stratified(y: Tensor, per_class: int, n_classes: int, data_seed: int) -> Tensor:
    """Indices of ``per_class`` examples of every class (fewer where a class has fewer), in
    class order, drawn from a seeded permutation."""
    g = torch_generator(int(data_seed) + _MEASURE_STREAM)
    perm = torch.randperm(y.shape[0], generator=g)
    picks = [perm[y[perm] == c][:per_class] for c in range(n_classes)]
    return torch.cat(picks)


def _fit(
    net: nn.Module,
    X: Tensor,
    T: Tensor,
    *,
    loss: Callable[[Tensor, Tensor], Tensor],
    lr: float,
    batch_size: int,
    max_epochs: int,
    seed: int,
    after_epoch: Callable[[int], bool],
) -> int:
    """Adam on minibatches in a seeded order; ``after_epoch(epoch)`` (1-based) returns True to
    stop. Returns the number of epochs run. Stops early (returning it) on a non-finite loss."""
    g = torch_generator(int(seed) + _ORDER_STREAM)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    n = X.shape[0]
    for epoch in range(1, max_epochs + 1):
        net.train()
        perm = torch.randperm(n, generator=g)
        for s in range(0, n, batch_size):
            idx = perm[s : s + batch_size]
            opt.zero_grad(set_to_none=True)
            value = loss(net(X[idx]), T[idx])
            if not torch.isfinite(value):
                net.eval()
                return -epoch  # diverged
            value.backward()
            opt.step()
        net.eval()
        if after_epoch(epoch):
            return epoch
    return max_epochs


def _finite_weights(net: nn.Module) -> bool:
    return all(bool(torch.isfinite(p).all()) for p in net.parameters())


def _log10(v: float) -> float:
    return math.log10(v) if v > 0 and math.isfinite(v) else math.nan


def _bound_checks(
    net: nn.Module, ts_all: Tensor, X_bounds_idx: Tensor, X_bounds: Tensor
) -> tuple[dict[str, float], list[int], list[int], list[float], list[float]]:
    """nngeom's bounds against the measured ``TS_k(x)`` (``ts_all``: ``(N, p)``).

    Input-free bounds are compared with ``max_k TS_k(x)`` at every measured example; the
    data-dependent ones with every ``TS_k(x)`` at the examples ``X_bounds_idx`` (``X_bounds``).
    Returns the log10 bounds, and per family (``BOUND_FAMILIES``) the checks met, the checks
    made, the smallest and the median ratio bound / TS.
    """
    b = tangent_sensitivity_bounds(net, X_bounds)
    ts64 = ts_all.detach().double().cpu()
    top = ts64.max(1).values
    sub = ts64[X_bounds_idx]
    met, made, low, med = [], [], [], []
    for fam in BOUND_FAMILIES:
        if fam in ("linf", "path", "spectral"):
            bound = torch.full_like(top, float(getattr(b, fam)))
            value = top
        else:
            bound = getattr(b, fam).double().cpu()
            value = sub
        ok = value <= bound * (1 + BOUND_RTOL)
        met.append(int(ok.sum()))
        made.append(int(ok.numel()))
        ratio = (bound / value.clamp_min(TINY)).flatten()
        low.append(float(ratio.min()))
        med.append(float(ratio.median()))
    logs = {
        "linf": _log10(b.linf),
        "path": _log10(b.path),
        "spectral": _log10(b.spectral),
        "active_paths": _log10(float(b.active_paths.mean())),
    }
    return logs, met, made, low, med


# --------------------------------------------------------------------------------------------
# the training curve
# --------------------------------------------------------------------------------------------


def _per_example_sq(out: Tensor, T: Tensor) -> Tensor:
    return ((out - T) ** 2).mean(1)


def _row(t: Tensor) -> tuple[float, ...]:
    """A per-example row for the results database, at float32's 7 significant digits (the
    values are float32 computations; this halves the stored JSON)."""
    return tuple(float(f"{v:.7g}") for v in t.detach().double().cpu().tolist())


def _run_curve(t: TrainingCurve) -> CurveResult:
    ds = _dataset(t.dataset, t.data_seed)
    X, y = _train_subset(ds, t.n_train, t.data_seed)
    p = int(ds.n_classes or int(ds.y_train.max()) + 1)
    T = nn.functional.one_hot(y, p).to(X.dtype)
    Xte, yte = ds.X_test, ds.y_test
    Tte = nn.functional.one_hot(yte, p).to(Xte.dtype)
    pick = _stratified(yte, t.per_class, p, t.data_seed)
    Xm, ym, Tm = Xte[pick], yte[pick], Tte[pick]
    # the data-dependent bounds' examples: the first per_class_bounds of every class
    bidx = torch.cat([torch.nonzero(ym == c).flatten()[: t.per_class_bounds] for c in range(p)])
    net = mlp([X.shape[1]] + [t.width] * t.depth + [p], "relu", seed=t.seed)
    init = {k: v.detach().clone() for k, v in net.named_parameters()}
    rec: dict[str, list] = {
        k: []
        for k in (
            "train_loss test_loss train_acc test_acc train_loss_class heldout_loss ts jac "
            "log_bound_linf log_bound_path log_bound_spectral log_bound_active_paths dist_init "
            "bound_median_ratio"
        ).split()
    }
    met = np.zeros(len(BOUND_FAMILIES), dtype=np.int64)
    made = np.zeros(len(BOUND_FAMILIES), dtype=np.int64)
    low = np.full(len(BOUND_FAMILIES), math.inf)

    def measure(epoch: int) -> bool:
        with torch.no_grad():
            out = net(X)
            sq = _per_example_sq(out, T)
            out_te = net(Xte)
            rec["train_loss"].append(float(sq.mean()))
            rec["train_acc"].append(float((out.argmax(1) == y).double().mean()))
            rec["test_loss"].append(float(_per_example_sq(out_te, Tte).mean()))
            rec["test_acc"].append(float((out_te.argmax(1) == yte).double().mean()))
            rec["train_loss_class"].append(
                tuple(float(sq[y == c].mean()) if (y == c).any() else math.nan for c in range(p))
            )
            rec["heldout_loss"].append(_row(_per_example_sq(net(Xm), Tm)))
        ts_all = tangent_sensitivity(net, Xm, output="all")
        rec["ts"].append(_row(ts_all.mean(1)))
        rec["jac"].append(_row(input_jacobian_norm(net, Xm)))
        logs, m, n, lo, md = _bound_checks(net, ts_all, bidx, Xm[bidx])
        met[:] += m
        made[:] += n
        low[:] = np.minimum(low, lo)
        rec["bound_median_ratio"].append(tuple(md))
        for fam in ("linf", "path", "spectral", "active_paths"):
            rec[f"log_bound_{fam}"].append(logs[fam])
        rec["dist_init"].append(distance_from_init(net, init))
        return False

    ran = _fit(
        net,
        X,
        T,
        loss=nn.functional.mse_loss,
        lr=t.lr,
        batch_size=t.batch_size,
        max_epochs=t.epochs,
        seed=t.seed,
        after_epoch=measure,
    )
    if ran < 0 or not _finite_weights(net):
        raise StudyError(
            f"the training curve's net diverged at epoch {-ran} (lr={t.lr:g}); lower lr"
        )
    return CurveResult(
        dataset=ds.name,
        n_params=sum(q.numel() for q in net.parameters()),
        labels=tuple(int(v) for v in ym.tolist()),
        converged=bool(rec["train_acc"][-1] >= t.fit_accuracy),
        bound_met=tuple(int(v) for v in met),
        bound_checks=tuple(int(v) for v in made),
        bound_min_ratio=tuple(float(v) for v in low),
        **{k: tuple(v) for k, v in rec.items()},
    )


# --------------------------------------------------------------------------------------------
# one net of the grid
# --------------------------------------------------------------------------------------------


def _nan_result(epochs: int, stopped: str, train_acc: float = math.nan) -> NetResult:
    nan = math.nan
    return NetResult(
        train_acc=train_acc,
        test_acc=nan,
        train_ce=nan,
        test_ce=nan,
        gap=nan,
        epochs=epochs,
        stopped=stopped,
        converged=False,
        ts_test=nan,
        ts_train=nan,
        jac_test=nan,
        log_bound_linf=nan,
        log_bound_path=nan,
        log_bound_spectral=nan,
        log_bound_active_paths=nan,
        dist_init=nan,
        log_path_norm=nan,
        log_spec=nan,
        log_frob=nan,
        sharpness=nan,
        pattern_entropy=nan,
        fraction_active=nan,
        bound_met=tuple(0 for _ in BOUND_FAMILIES),
        bound_checks=tuple(0 for _ in BOUND_FAMILIES),
    )


def _run_grid_net(t: GridNet) -> NetResult:
    ds = _dataset(t.dataset, t.data_seed)
    X, y = _train_subset(ds, t.n_train, t.data_seed)
    Xte, yte = ds.X_test, ds.y_test
    p = int(ds.n_classes or int(ds.y_train.max()) + 1)
    net = mlp([X.shape[1]] + [t.width] * t.depth + [p], "relu", seed=t.seed)
    init = {k: v.detach().clone() for k, v in net.named_parameters()}
    state = {"stopped": "cap"}

    def check(epoch: int) -> bool:
        with torch.no_grad():
            out = net(X)
            ce = float(nn.functional.cross_entropy(out, y))
            acc = float((out.argmax(1) == y).double().mean())
        if not math.isfinite(ce):
            state["stopped"] = "diverged"
            return True
        if ce <= t.target_ce:
            state["stopped"] = "ce"
            return True
        if acc >= t.target_acc:
            state["stopped"] = "acc"
            return True
        return False

    ran = _fit(
        net,
        X,
        y,
        loss=nn.functional.cross_entropy,
        lr=t.lr,
        batch_size=t.batch_size,
        max_epochs=t.max_epochs,
        seed=t.seed,
        after_epoch=check,
    )
    if ran < 0 or state["stopped"] == "diverged" or not _finite_weights(net):
        return _nan_result(abs(ran), "diverged")
    with torch.no_grad():
        out, out_te = net(X), net(Xte)
        train_acc = float((out.argmax(1) == y).double().mean())
        test_acc = float((out_te.argmax(1) == yte).double().mean())
        train_ce = float(nn.functional.cross_entropy(out, y))
        test_ce = float(nn.functional.cross_entropy(out_te, yte))
    m = t.n_measure
    Xm_te, Xm_tr = Xte[:m], X[:m]
    ts_all = tangent_sensitivity(net, Xm_te, output="all")
    ts_train = tangent_sensitivity(net, Xm_tr)
    nb = min(t.n_bounds, Xm_te.shape[0])
    logs, met, made, _, _ = _bound_checks(net, ts_all, torch.arange(nb), Xm_te[:nb])
    stats = pattern_statistics(net, Xm_te)
    sharp = sharpness(
        net,
        X[: t.n_sharp],
        y[: t.n_sharp],
        samples=_SHARP_SAMPLES,
        iters=_SHARP_ITERS,
        seed=t.seed,
    )
    return NetResult(
        train_acc=train_acc,
        test_acc=test_acc,
        train_ce=train_ce,
        test_ce=test_ce,
        gap=train_acc - test_acc,
        epochs=int(ran),
        stopped=state["stopped"],
        converged=state["stopped"] in ("ce", "acc"),
        ts_test=float(ts_all.mean()),
        ts_train=float(ts_train.mean()),
        jac_test=float(input_jacobian_norm(net, Xm_te).mean()),
        log_bound_linf=logs["linf"],
        log_bound_path=logs["path"],
        log_bound_spectral=logs["spectral"],
        log_bound_active_paths=logs["active_paths"],
        dist_init=distance_from_init(net, init),
        log_path_norm=_log10(path_norm(net)),
        log_spec=log_spectral_product(net),
        log_frob=log_frobenius_product(net),
        sharpness=float(sharp),
        pattern_entropy=float(stats["entropy_nats"]),
        fraction_active=float(stats["fraction_active"]),
        bound_met=tuple(int(v) for v in met),
        bound_checks=tuple(int(v) for v in made),
    )
