"""The activations study's tasks: one :class:`MethodRun` per (problem, method).

A task chooses its method's learning rate on the validation split (a geometric grid, extended
while the choice lands on an edge), then trains every seed at that rate with early stopping on
the validation loss, and returns a :class:`MethodResult`. Every method of a problem trains the
same seeds, and a seed fixes the initial weights of the linear / conv layers and the minibatch
order, so results of two methods pair seed by seed.
"""

from __future__ import annotations

import copy
import functools
import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor, nn

from ..._errors import StudyError
from ..._random import torch_generator
from ...activations import VAF, Rational, SwishBeta, param_groups
from ...data import digits, fashion_mnist, fashion_mnist_available, split
from ...knots import knots
from .._typed import Result, Task

METHODS = ("relu", "prelu", "silu", "swish", "rational", "vaf")
EQUAL = "relu-equal"  # the 1-D task's ReLU net with (nearly) the VAF net's parameter count
IMAGE = ("image-mlp", "image-conv")
REGRESSION = ("diabetes", "sine1d")
PROBLEMS = (*IMAGE, *REGRESSION)
PIECEWISE_LINEAR = ("relu", EQUAL, "prelu", "vaf")  # methods whose 1-D nets have exact knots

# learning rates: a geometric grid with this ratio, never extended beyond [LR_MIN, LR_MAX]
LR_STEP = math.sqrt(10.0)
LR_MIN, LR_MAX = 1e-5, 1.0
# early stopping: an evaluation improves on the best validation loss when it is lower by more
# than this fraction of it
MIN_IMPROVEMENT = 1e-3
VAF_K = 3  # hidden units of the VAF subnetwork: 3k + 1 = 10 parameters, as the rational (5, 4)
ACT_GRID = tuple(float(x) for x in np.linspace(-3.0, 3.0, 121))  # where learned shapes are drawn
KNOT_RANGE = (-3.0, 3.0)  # the 1-D task's input interval
SINE_DATA_SEED = 1234  # seed of the 1-D task's samples: the same data in every run
SINE_SIZES = (256, 128)  # 1-D task: training and validation samples
SINE_NOISE = 0.05  # standard deviation of the 1-D task's label noise
SINE_TEST_POINTS = 1001  # the dense test grid of the 1-D task (noise-free targets)
DIABETES_TEST_FRACTION = 0.2  # diabetes: test part of the data, then validation part of the rest
# the 1-D nets: 1-16-16-1 (321 weights, + 2 x 10 VAF parameters = 341) and the ReLU
# comparator 1-16-17-1 (339 weights)
SINE_WIDTHS = (16, 16)
EQUAL_WIDTHS = (16, 17)


# ----------------------------------------------------------------------------------------------
# the task and its result
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MethodResult(Result):
    """What one method did on one problem.

    Per learning rate tried (``lrs``, ascending): ``lr_scores``, the mean over the selection
    seeds of the best validation loss (None where a run diverged). ``lr`` is the rate chosen
    (lowest score), ``extended_low``/``extended_high`` count grid points added below / above the
    initial grid because the choice was on an edge, and ``bracketed`` says whether the chosen rate
    has a tried rate on each side.

    Per seed (``seeds``) at the chosen rate: the best validation loss (the early-stopping point,
    whose weights are evaluated), the test loss, the test metric (accuracy for classification,
    MSE for regression), epochs run, the epoch of the best validation loss, ``converged`` (the
    early-stopping criterion was met before the epoch cap) and ``diverged`` (a non-finite loss
    stopped training). ``knots``: exact knot counts of the trained 1-D nets (piecewise-linear
    methods only, per seed, None where counting failed; empty otherwise). ``curve``: validation loss at each evaluation of the first
    seed's run; ``shapes``: its learned activations on :data:`ACT_GRID`, one per hidden layer.
    """

    lrs: tuple[float, ...]
    lr_scores: tuple[float | None, ...]
    lr: float
    extended_low: int
    extended_high: int
    bracketed: bool
    seeds: tuple[int, ...]
    val_loss: tuple[float | None, ...]
    test_loss: tuple[float | None, ...]
    test_metric: tuple[float | None, ...]
    epochs: tuple[int, ...]
    best_epoch: tuple[int, ...]
    converged: tuple[bool, ...]
    diverged: tuple[bool, ...]
    n_params: int
    n_act_params: int
    curve: tuple[float | None, ...] = ()
    shapes: tuple[tuple[float, ...], ...] = ()
    knots: tuple[int | None, ...] = ()
    knots_error: str = ""
    cpu_seconds: float = 0.0  # CPU time of the whole task (selection included)
    cpu_per_epoch: float = 0.0  # median CPU seconds of one training epoch over its runs


@dataclass(frozen=True)
class MethodRun(Task):
    """Train ``method`` on ``problem``: choose the learning rate, then train every seed.

    Fields: the problem (``"image-mlp"``, ``"image-conv"``, ``"diabetes"``, ``"sine1d"``) and its
    data (``dataset`` for images: ``"fashion-mnist"`` or ``"digits"``; ``n_train``/``n_val``/
    ``n_test`` examples, None for all; ``data_seed`` draws the subsets, the same for every
    method); ``widths``: hidden widths of an MLP, or the two conv layers' channels;
    ``seeds``: the training seeds, of which the first ``select_seeds`` choose the learning rate;
    ``lr_grid``: the initial grid (ascending, ratio :data:`LR_STEP`), extended by at most
    ``max_extend`` points; training: Adam, ``batch_size`` (None: full batch), at most
    ``max_epochs`` epochs, the validation loss evaluated every ``eval_every`` epochs; the
    convergence criterion: ``patience`` evaluations in a row without improvement (early stopping)
    before the epoch cap.
    """

    problem: str
    method: str
    widths: tuple[int, ...]
    seeds: tuple[int, ...]
    select_seeds: int
    lr_grid: tuple[float, ...]
    max_extend: int
    max_epochs: int
    patience: int
    eval_every: int = 1
    batch_size: int | None = None
    dataset: str | None = None
    n_train: int | None = None
    n_val: int | None = None
    n_test: int | None = None
    data_seed: int = 0

    def run(self) -> MethodResult:
        return run_method(self)


# ----------------------------------------------------------------------------------------------
# data
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Data:
    X_train: Tensor
    y_train: Tensor
    X_val: Tensor
    y_val: Tensor
    X_test: Tensor
    y_test: Tensor
    classes: int | None  # None for regression


def image_dataset() -> str:
    """Fashion-MNIST when it is installed, else sklearn's 8x8 digits (the report says which)."""
    return "fashion-mnist" if fashion_mnist_available() else "digits"


def _target_1d(x: Tensor) -> Tensor:
    """The 1-D task: a damped oscillation on a slope, with a kink: smooth and non-smooth parts."""
    return torch.sin(3 * x) * torch.exp(-(x**2) / 4) + 0.3 * x + 0.5 * (x - 1).abs()


@functools.lru_cache(maxsize=2)
def _images(name: str) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    if name == "fashion-mnist":
        ds = fashion_mnist()
    elif name == "digits":
        ds = digits(seed=0)
    else:
        raise StudyError(f"unknown image dataset {name!r}; use 'fashion-mnist' or 'digits'")
    return ds.X_train, ds.y_train, ds.X_test, ds.y_test


def _take(n: int | None, available: int, what: str) -> int:
    if n is None:
        return available
    if n > available:
        raise StudyError(f"{what}: {n} examples asked, {available} available")
    return n


@functools.lru_cache(maxsize=8)
def problem_data(
    problem: str,
    dataset: str | None,
    n_train: int | None,
    n_val: int | None,
    n_test: int | None,
    data_seed: int,
) -> Data:
    """Train / validation / test tensors of a problem (independent of the training seed)."""
    if problem in IMAGE:
        Xtr, ytr, Xte, yte = _images(str(dataset))
        g = torch_generator(data_seed)
        perm = torch.randperm(Xtr.shape[0], generator=g)
        n_v = _take(n_val, Xtr.shape[0] // 6, f"{dataset} validation")
        n_t = _take(n_train, Xtr.shape[0] - n_v, f"{dataset} training")
        tr, va = perm[:n_t], perm[n_t : n_t + n_v]
        te = torch.randperm(Xte.shape[0], generator=g)[: _take(n_test, Xte.shape[0], "test")]
        return Data(Xtr[tr], ytr[tr], Xtr[va], ytr[va], Xte[te], yte[te], 10)
    if problem == "diabetes":
        from sklearn.datasets import load_diabetes

        bunch = load_diabetes()
        X = torch.tensor(bunch.data, dtype=torch.float32)
        y = torch.tensor(bunch.target, dtype=torch.float32)[:, None]
        full = split(X, y, test_fraction=DIABETES_TEST_FRACTION, seed=data_seed)
        tv = split(
            full.X_train, full.y_train, test_fraction=DIABETES_TEST_FRACTION, seed=data_seed + 1
        )
        mx, sx = tv.X_train.mean(0), tv.X_train.std(0)
        my, sy = tv.y_train.mean(0), tv.y_train.std(0)
        return Data(
            (tv.X_train - mx) / sx, (tv.y_train - my) / sy,
            (tv.X_test - mx) / sx, (tv.y_test - my) / sy,
            (full.X_test - mx) / sx, (full.y_test - my) / sy,
            None,
        )  # fmt: skip
    if problem == "sine1d":
        g = torch_generator(SINE_DATA_SEED + data_seed)

        def sample(n: int) -> tuple[Tensor, Tensor]:
            x = torch.rand(n, 1, generator=g) * 6 - 3
            return x, _target_1d(x) + SINE_NOISE * torch.randn(n, 1, generator=g)

        Xtr, ytr = sample(SINE_SIZES[0])
        Xva, yva = sample(SINE_SIZES[1])
        Xte = torch.linspace(*KNOT_RANGE, SINE_TEST_POINTS)[:, None]
        return Data(Xtr, ytr, Xva, yva, Xte, _target_1d(Xte), None)
    raise StudyError(f"unknown problem {problem!r}; use one of {list(PROBLEMS)}")


# ----------------------------------------------------------------------------------------------
# models
# ----------------------------------------------------------------------------------------------


def activation(method: str) -> nn.Module:
    """A fresh activation module for ``method`` (VAF: k=3, shared per layer, ReLU at start)."""
    if method in ("relu", EQUAL):
        return nn.ReLU()
    if method == "prelu":
        return nn.PReLU()
    if method == "silu":
        return nn.SiLU()
    if method == "swish":
        return SwishBeta()
    if method == "rational":
        return Rational()
    if method == "vaf":
        # eager kernels (fused=False): the same arithmetic on every machine
        return VAF(k=VAF_K, share="layer", init="relu", hidden="relu", fused=False)
    raise StudyError(f"unknown method {method!r}; use one of {[*METHODS, EQUAL]}")


def _init_(model: nn.Module, g: torch.Generator) -> None:
    """PyTorch's default uniform(+-1/sqrt(fan_in)) init for Linear/Conv, drawn from ``g``."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Linear, nn.Conv2d)):
                bound = 1.0 / math.sqrt(m.weight[0].numel())
                m.weight.copy_(torch.empty(m.weight.shape).uniform_(-bound, bound, generator=g))
                if m.bias is not None:
                    m.bias.copy_(torch.empty(m.bias.shape).uniform_(-bound, bound, generator=g))


def _empty(module: nn.Module) -> nn.Module:
    return module.to_empty(device="cpu")


def build_model(
    problem: str, method: str, widths: tuple[int, ...], n_in: int, n_out: int, seed: int
) -> nn.Module:
    """The problem's net with ``method``'s activation; the same layer weights for every method
    at the same ``seed``."""
    if problem == "image-conv":
        if len(widths) != 2:
            raise StudyError(f"image-conv takes two channel counts, got {widths}")
        side = int(round(math.sqrt(n_in)))
        c1, c2 = widths
        pooled = side // 4
        model: nn.Module = nn.Sequential(
            nn.Unflatten(1, (1, side, side)),
            _empty(nn.Conv2d(1, c1, 3, padding=1, device="meta")),
            activation(method),
            nn.MaxPool2d(2),
            _empty(nn.Conv2d(c1, c2, 3, padding=1, device="meta")),
            activation(method),
            nn.MaxPool2d(2),
            nn.Flatten(),
            _empty(nn.Linear(c2 * pooled * pooled, n_out, device="meta")),
        )
    else:
        sizes = [n_in, *widths, n_out]
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(sizes, sizes[1:])):
            layers.append(_empty(nn.Linear(a, b, device="meta")))
            if i < len(widths):
                layers.append(activation(method))
        model = nn.Sequential(*layers)
    _init_(model, torch_generator(seed))
    return model


def _activations(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(m, (VAF, Rational, SwishBeta, nn.PReLU))]


def _shape(act: nn.Module) -> tuple[float, ...]:
    with torch.no_grad():
        return tuple(float(v) for v in act(torch.tensor(ACT_GRID, dtype=torch.float32)))


# ----------------------------------------------------------------------------------------------
# one training run: Adam with early stopping on the validation loss
# ----------------------------------------------------------------------------------------------


@dataclass
class Fit:
    """One trained net (internal): the metrics at its best validation loss."""

    val_loss: float  # inf when diverged before any finite evaluation
    test_loss: float
    test_metric: float
    epochs: int
    best_epoch: int
    converged: bool
    diverged: bool
    curve: list[float] = field(default_factory=list)
    shapes: tuple[tuple[float, ...], ...] = ()
    knots: int | None = None
    knots_error: str = ""
    epoch_seconds: list[float] = field(default_factory=list)


def _finite(v: float) -> float | None:
    return v if math.isfinite(v) else None


def fit(task: MethodRun, data: Data, seed: int, lr: float) -> Fit:
    """Train one net of ``task`` at ``lr`` from ``seed``; keep the weights of the best
    validation loss (early stopping) and evaluate them."""
    regression = data.classes is None
    n_out = 1 if regression else int(data.classes or 0)
    model = build_model(task.problem, task.method, task.widths, data.X_train.shape[1], n_out, seed)
    lossf: Callable[[Tensor, Tensor], Tensor] = (
        nn.functional.mse_loss if regression else nn.functional.cross_entropy
    )
    opt = torch.optim.Adam(param_groups(model), lr=lr)
    g = torch_generator(seed)
    n = data.X_train.shape[0]
    bs = n if task.batch_size is None else min(task.batch_size, n)

    def evaluate(X: Tensor, y: Tensor) -> tuple[float, float]:
        model.eval()
        with torch.no_grad():
            out = model(X)
            loss = float(lossf(out, y))
            metric = loss if regression else float((out.argmax(1) == y).float().mean())
        model.train()
        return loss, metric

    best, best_state, best_epoch, bad = math.inf, None, 0, 0
    converged = diverged = False
    curve: list[float] = []
    seconds: list[float] = []
    epoch = 0
    for epoch in range(1, task.max_epochs + 1):
        t0 = time.process_time()
        order = torch.randperm(n, generator=g) if bs < n else None
        for start in range(0, n, bs):
            idx = order[start : start + bs] if order is not None else slice(None)
            opt.zero_grad(set_to_none=True)
            loss = lossf(model(data.X_train[idx]), data.y_train[idx])
            if not math.isfinite(float(loss.detach())):
                diverged = True
                break
            loss.backward()
            opt.step()
        seconds.append(time.process_time() - t0)
        if diverged:
            break
        if epoch % task.eval_every and epoch != task.max_epochs:
            continue
        v, _ = evaluate(data.X_val, data.y_val)
        curve.append(v)
        if not math.isfinite(v):
            diverged = True
            break
        if not math.isfinite(best) or v < best - MIN_IMPROVEMENT * abs(best):
            best, best_epoch, bad = v, epoch, 0
            best_state = copy.deepcopy(model.state_dict())
        else:
            bad += 1
            if bad >= task.patience:
                converged = True
                break
    if best_state is not None:
        model.load_state_dict(best_state)
    test_loss, test_metric = evaluate(data.X_test, data.y_test)
    if best_state is None:  # diverged before the first finite evaluation
        test_loss = test_metric = math.nan
    out = Fit(
        best, test_loss, test_metric, epoch, best_epoch, converged, diverged, curve,
        tuple(_shape(a) for a in _activations(model)), epoch_seconds=seconds,
    )  # fmt: skip
    if task.problem == "sine1d" and task.method in PIECEWISE_LINEAR and best_state is not None:
        try:
            out.knots = int(knots(copy.deepcopy(model).double(), *KNOT_RANGE).count)
        except Exception as exc:  # a failure to count is reported, not hidden
            out.knots_error = f"{type(exc).__name__}: {exc}"
    return out


# ----------------------------------------------------------------------------------------------
# learning-rate choice and the task
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LRChoice:
    lrs: tuple[float, ...]  # ascending
    scores: tuple[float, ...]  # inf where a run diverged
    lr: float
    extended_low: int
    extended_high: int
    bracketed: bool


def choose_lr(
    score: Callable[[float], float], grid: tuple[float, ...], max_extend: int
) -> LRChoice:
    """The rate of lowest ``score`` (ties: the smaller rate) on ``grid``, extended by a factor
    :data:`LR_STEP` beyond whichever edge holds the choice, at most ``max_extend`` times and never
    outside ``[LR_MIN, LR_MAX]``; ``bracketed`` when the choice ends with a tried rate on each
    side."""
    if not grid:
        raise StudyError("the learning-rate grid is empty")
    scores = {float(lr): score(float(lr)) for lr in sorted(grid)}
    low = high = 0

    def best() -> float:
        return min(scores, key=lambda lr: (scores[lr], lr))

    while low + high < max_extend:
        b = best()
        if b == min(scores) and b / LR_STEP >= LR_MIN * (1 - 1e-9):
            new, low = b / LR_STEP, low + 1
        elif b == max(scores) and b * LR_STEP <= LR_MAX * (1 + 1e-9):
            new, high = b * LR_STEP, high + 1
        else:
            break
        scores[new] = score(new)
    b = best()
    lrs = tuple(sorted(scores))
    return LRChoice(lrs, tuple(scores[lr] for lr in lrs), b, low, high, min(lrs) < b < max(lrs))


def run_method(task: MethodRun) -> MethodResult:
    """Choose ``task``'s learning rate on the selection seeds, then train every seed at it."""
    t_start = time.process_time()
    if task.problem not in PROBLEMS:
        raise StudyError(f"unknown problem {task.problem!r}; use one of {list(PROBLEMS)}")
    if not 1 <= task.select_seeds <= len(task.seeds):
        raise StudyError(f"select_seeds must be in [1, {len(task.seeds)}], got {task.select_seeds}")
    data = problem_data(
        task.problem, task.dataset, task.n_train, task.n_val, task.n_test, task.data_seed
    )
    fits: dict[tuple[float, int], Fit] = {}

    def run(lr: float, seed: int) -> Fit:
        if (lr, seed) not in fits:
            fits[(lr, seed)] = fit(task, data, seed, lr)
        return fits[(lr, seed)]

    def score(lr: float) -> float:
        runs = [run(lr, s) for s in task.seeds[: task.select_seeds]]
        if any(r.diverged or not math.isfinite(r.val_loss) for r in runs):
            return math.inf
        return statistics.fmean(r.val_loss for r in runs)

    choice = choose_lr(score, task.lr_grid, task.max_extend)
    final = [run(choice.lr, s) for s in task.seeds]
    first = final[0]
    model = build_model(
        task.problem, task.method, task.widths, data.X_train.shape[1],
        1 if data.classes is None else data.classes, task.seeds[0],
    )  # fmt: skip
    n_params = sum(p.numel() for p in model.parameters())
    n_act = sum(p.numel() for a in _activations(model) for p in a.parameters())
    per_epoch = [s for f in fits.values() for s in f.epoch_seconds]
    errors = [f.knots_error for f in final if f.knots_error]
    return MethodResult(
        lrs=choice.lrs,
        lr_scores=tuple(_finite(s) for s in choice.scores),
        lr=choice.lr,
        extended_low=choice.extended_low,
        extended_high=choice.extended_high,
        bracketed=choice.bracketed,
        seeds=tuple(task.seeds),
        val_loss=tuple(_finite(f.val_loss) for f in final),
        test_loss=tuple(_finite(f.test_loss) for f in final),
        test_metric=tuple(_finite(f.test_metric) for f in final),
        epochs=tuple(f.epochs for f in final),
        best_epoch=tuple(f.best_epoch for f in final),
        converged=tuple(f.converged for f in final),
        diverged=tuple(f.diverged for f in final),
        n_params=int(n_params),
        n_act_params=int(n_act),
        curve=tuple(_finite(v) for v in first.curve),
        shapes=first.shapes,
        knots=tuple(f.knots for f in final) if any(f.knots is not None for f in final) else (),
        knots_error=errors[0] if errors else "",
        cpu_seconds=time.process_time() - t_start,
        cpu_per_epoch=statistics.median(per_epoch) if per_epoch else 0.0,
    )
