"""The knots study's tasks (configs) and results: frozen dataclasses, one ``run()`` each.

Every count is exact (:func:`nngeom.knots`); the narrow-width lower bounds are recounted in
rational arithmetic. Trained networks record whether they met their criterion
(``converged``: the training MSE fell to ``mse_target`` within ``epochs``).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from ..._random import numpy_rng, torch_generator
from ...knots import knots, tight_knot_network
from ...nets import mlp
from ...regions import regions_2d, regions_along_lines
from .._typed import Result, Task
from . import bounds, search

__all__ = [
    "TightTask",
    "TightResult",
    "BigTask",
    "BigResult",
    "OneLayerTask",
    "OneLayerResult",
    "NarrowTask",
    "NarrowResult",
    "RandomTask",
    "RandomResult",
    "TrainingTask",
    "TrainingResult",
    "Regions2DTask",
    "Regions2DResult",
    "target_1d",
    "DATA_LO",
    "DATA_HI",
]

DATA_LO, DATA_HI = -1.0, 1.0  # the 1-D task's inputs (and the interval "where the data lie")
N_POINTS_1D = 256  # training points of the 1-D task
N_POINTS_2D = 400  # training points of the 2-D task
N_LINES_2D = 32  # lines through the 2-D data for regions per unit length
CURVE_GRID = 400  # points at which the trained 1-D fit is recorded for the figure
CURVE_MARGIN = 1.2  # the recorded fit covers [-CURVE_MARGIN, CURVE_MARGIN]


def target_1d(x: torch.Tensor) -> torch.Tensor:
    """The 1-D regression task: a smooth wiggly function on [-1, 1]."""
    return torch.sin(3.0 * x) + 0.5 * torch.cos(7.0 * x) + 0.3 * x**2


def _data_1d() -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.linspace(DATA_LO, DATA_HI, N_POINTS_1D, dtype=torch.float64)[:, None]
    return x, target_1d(x)


def _mse(net: torch.nn.Module, X: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return float(((net(X) - y) ** 2).mean())


def fit(
    net: torch.nn.Module,
    X: torch.Tensor,
    y: torch.Tensor,
    *,
    epochs: int,
    lr: float,
    mse_target: float,
    callback: Callable[[int, float], None] | None = None,
    stop_at_target: bool = True,
) -> tuple[int, bool]:
    """Full-batch Adam on the MSE until it is at most ``mse_target`` (the convergence criterion)
    or ``epochs`` steps have run (every step when ``stop_at_target`` is False): ``(steps run,
    criterion met at the end)``. Deterministic (full batch).

    A plain loop rather than :func:`nngeom.train`: these nets are tiny and the study trains
    hundreds of them, so the per-step checks of the general loop would dominate its cost.
    ``callback(step, loss)`` is called after each step with the loss before it.
    """
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    for step in range(epochs):
        opt.zero_grad(set_to_none=True)
        loss = ((net(X) - y) ** 2).mean()
        value = float(loss.detach())
        if stop_at_target and value <= mse_target:
            return step, True
        loss.backward()
        opt.step()
        if callback is not None:
            callback(step, value)
    return epochs, _mse(net, X, y) <= mse_target


# --------------------------------------------------------------------------------------------
# the folding construction against the product bound
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TightResult(Result):
    widths: tuple[tuple[int, ...], ...]
    bound: tuple[int, ...]  # prod(n + 1) - 1
    serra_regions: tuple[int, ...]  # Serra et al.'s upper bound on activation regions (n0 = 1)
    knots: tuple[int, ...]  # exact knots of tight_knot_network(widths)
    breakpoints: tuple[int, ...]  # its activation breakpoints
    ambiguous: tuple[bool, ...]


@dataclass(frozen=True)
class TightTask(Task):
    """The construction :func:`nngeom.tight_knot_network` for every width list of ``depth`` with
    entries ``1..max_width`` (or, with ``sample``, the equal-width lists and ``sample`` others
    drawn with ``seed``)."""

    depth: int
    max_width: int
    sample: int | None
    seed: int

    def width_lists(self) -> list[tuple[int, ...]]:
        allw = list(itertools.product(range(1, self.max_width + 1), repeat=self.depth))
        if self.sample is None or len(allw) <= self.sample + self.max_width:
            return allw
        equal = [(n,) * self.depth for n in range(1, self.max_width + 1)]
        rest = [w for w in allw if len(set(w)) > 1]
        pick = numpy_rng(self.seed + self.depth).choice(len(rest), size=self.sample, replace=False)
        return equal + [rest[i] for i in sorted(pick)]

    def run(self) -> TightResult:
        cols: dict[str, list] = {k: [] for k in ("w", "b", "s", "k", "bp", "a")}
        for w in self.width_lists():
            k = knots(tight_knot_network(list(w)))
            cols["w"].append(tuple(w))
            cols["b"].append(bounds.product_bound(w))
            cols["s"].append(bounds.serra_regions(w))
            cols["k"].append(int(k.count))
            cols["bp"].append(int(k.n_breakpoints))
            cols["a"].append(bool(k.ambiguous))
        return TightResult(
            tuple(cols["w"]),
            tuple(cols["b"]),
            tuple(cols["s"]),
            tuple(cols["k"]),
            tuple(cols["bp"]),
            tuple(cols["a"]),
        )


@dataclass(frozen=True)
class BigResult(Result):
    widths: tuple[int, ...]
    bound: int
    knots: int
    seconds: float  # median wall time of one exact count
    ambiguous: bool


@dataclass(frozen=True)
class BigTask(Task):
    """The bound-attaining 1 -> 64 -> 64 -> 64 -> 1 construction, counted and timed."""

    widths: tuple[int, ...] = (64, 64, 64)
    repeats: int = 3

    def run(self) -> BigResult:
        net = tight_knot_network(list(self.widths))
        times, k = [], None
        for _ in range(self.repeats):
            t0 = time.perf_counter()
            k = knots(net)
            times.append(time.perf_counter() - t0)
        assert k is not None
        return BigResult(
            self.widths,
            bounds.product_bound(self.widths),
            int(k.count),
            float(np.median(times)),
            bool(k.ambiguous),
        )


# --------------------------------------------------------------------------------------------
# narrow widths: proven upper bounds, exhaustive one-layer facts, searched lower bounds
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class OneLayerResult(Result):
    n: tuple[int, ...]
    max_runs: tuple[int, ...]
    max_relu_knots: tuple[int, ...]
    patterns: tuple[int, ...]
    feasible: tuple[int, ...]


@dataclass(frozen=True)
class OneLayerTask(Task):
    """:func:`.bounds.one_layer_exhaustive` for widths ``1..max_n``."""

    max_n: int

    def run(self) -> OneLayerResult:
        facts = [bounds.one_layer_exhaustive(n) for n in range(1, self.max_n + 1)]
        return OneLayerResult(
            tuple(f.n for f in facts),
            tuple(f.max_runs for f in facts),
            tuple(f.max_relu_knots for f in facts),
            tuple(f.patterns for f in facts),
            tuple(f.feasible for f in facts),
        )


@dataclass(frozen=True)
class NarrowResult(Result):
    widths: tuple[int, ...]
    product_bound: int
    serra_regions: int
    upper_knots: int  # the refined bound (proven)
    upper_breakpoints: int
    construction_knots: int  # exact (rational) counts of tight_knot_network(widths)
    construction_breakpoints: int
    search_knots: int  # best exact count found by the hill climb (a lower bound)
    search_breakpoints: int
    evaluations: int
    best_theta: tuple[float, ...]  # the net with search_knots knots ([1, *widths, 1], flat)


@dataclass(frozen=True)
class NarrowTask(Task):
    """One narrow width list: bounds, the construction, and the hill climb (both objectives)."""

    widths: tuple[int, ...]
    steps: int
    starts: int
    seed: int

    def run(self) -> NarrowResult:
        w = list(self.widths)
        ref = bounds.refined_bound(w)
        c = knots(tight_knot_network(w), exact=True)
        sk = search.hill_climb(
            w,
            objective="knots",
            steps=self.steps,
            starts=self.starts,
            seed=self.seed,
            target=ref.knots,
        )
        sb = search.hill_climb(
            w,
            objective="breakpoints",
            steps=self.steps,
            starts=self.starts,
            seed=self.seed + 1,
            target=ref.breakpoints,
        )
        return NarrowResult(
            widths=self.widths,
            product_bound=bounds.product_bound(w),
            serra_regions=bounds.serra_regions(w),
            upper_knots=ref.knots,
            upper_breakpoints=ref.breakpoints,
            construction_knots=int(c.count),
            construction_breakpoints=int(c.n_breakpoints),
            search_knots=sk.knots,
            search_breakpoints=max(sb.breakpoints, sk.breakpoints),
            evaluations=sk.evaluations + sb.evaluations,
            best_theta=sk.theta,
        )

    @staticmethod
    def lower_knots(r: NarrowResult) -> int:
        return max(r.construction_knots, r.search_knots)

    @staticmethod
    def lower_breakpoints(r: NarrowResult) -> int:
        return max(r.construction_breakpoints, r.search_breakpoints)


# --------------------------------------------------------------------------------------------
# random networks: knots at initialisation and after training (Hanin & Rolnick)
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RandomResult(Result):
    widths: tuple[int, ...]
    seeds: tuple[int, ...]
    bound: int
    knots_init: tuple[int, ...]  # on the whole line
    knots_init_data: tuple[int, ...]  # in (DATA_LO, DATA_HI)
    knots_trained: tuple[int, ...]
    knots_trained_data: tuple[int, ...]
    pieces_init: tuple[tuple[int, ...], ...]  # P_0..P_L per seed (the derivation's step 1)
    pieces_trained: tuple[tuple[int, ...], ...]
    converged: tuple[bool, ...]
    final_mse: tuple[float, ...]
    epochs_run: tuple[int, ...]


@dataclass(frozen=True)
class RandomTask(Task):
    """``[1, width x depth, 1]`` ReLU nets at PyTorch's default initialisation (one per seed),
    then trained full batch with Adam (``lr``) on the 1-D task until the training MSE is at most
    ``mse_target`` or ``epochs`` have run."""

    depth: int
    width: int
    seeds: tuple[int, ...]
    epochs: int
    lr: float
    mse_target: float

    def run(self) -> RandomResult:
        X, y = _data_1d()
        w = (self.width,) * self.depth
        cols: dict[str, list] = {
            k: [] for k in ("k0", "k0d", "k1", "k1d", "p0", "p1", "c", "m", "e")
        }
        for s in self.seeds:
            net = mlp([1, *w, 1], seed=s, dtype=torch.float64)
            cols["k0"].append(knots(net).count)
            cols["k0d"].append(knots(net, DATA_LO, DATA_HI).count)
            cols["p0"].append(tuple(bounds.pieces_per_layer(net)))
            steps, _ = fit(net, X, y, epochs=self.epochs, lr=self.lr, mse_target=self.mse_target)
            mse = _mse(net, X, y)
            cols["k1"].append(knots(net).count)
            cols["k1d"].append(knots(net, DATA_LO, DATA_HI).count)
            cols["p1"].append(tuple(bounds.pieces_per_layer(net)))
            cols["c"].append(bool(mse <= self.mse_target))
            cols["m"].append(mse)
            cols["e"].append(int(steps))
        return RandomResult(
            widths=w,
            seeds=self.seeds,
            bound=bounds.product_bound(w),
            knots_init=tuple(int(v) for v in cols["k0"]),
            knots_init_data=tuple(int(v) for v in cols["k0d"]),
            knots_trained=tuple(int(v) for v in cols["k1"]),
            knots_trained_data=tuple(int(v) for v in cols["k1d"]),
            pieces_init=tuple(cols["p0"]),
            pieces_trained=tuple(cols["p1"]),
            converged=tuple(cols["c"]),
            final_mse=tuple(float(v) for v in cols["m"]),
            epochs_run=tuple(cols["e"]),
        )


@dataclass(frozen=True)
class TrainingResult(Result):
    widths: tuple[int, ...]
    epochs: tuple[int, ...]  # when the curve was recorded
    knots_line: tuple[int, ...]
    knots_data: tuple[int, ...]
    loss: tuple[float, ...]
    xs: tuple[float, ...]
    fit: tuple[float, ...]
    target: tuple[float, ...]
    knot_positions: tuple[float, ...]
    converged: bool
    final_mse: float


@dataclass(frozen=True)
class TrainingTask(Task):
    """One ``[1, width, width, 1]`` net's knots every ``every`` epochs of Adam training on the 1-D
    task, for all ``epochs`` (``converged``: the training MSE is at most ``mse_target`` at the
    end)."""

    width: int
    epochs: int
    every: int
    lr: float
    mse_target: float
    seed: int

    def run(self) -> TrainingResult:
        X, y = _data_1d()
        w = (self.width, self.width)
        net = mlp([1, *w, 1], seed=self.seed, dtype=torch.float64)
        rec = [(0, knots(net).count, knots(net, DATA_LO, DATA_HI).count, _mse(net, X, y))]

        def cb(epoch: int, loss: float) -> None:
            if (epoch + 1) % self.every == 0:
                rec.append(
                    (epoch + 1, knots(net).count, knots(net, DATA_LO, DATA_HI).count, float(loss))
                )

        fit(
            net,
            X,
            y,
            epochs=self.epochs,
            lr=self.lr,
            mse_target=self.mse_target,
            callback=cb,
            stop_at_target=False,
        )
        mse = _mse(net, X, y)
        xs = torch.linspace(-CURVE_MARGIN, CURVE_MARGIN, CURVE_GRID, dtype=torch.float64)[:, None]
        with torch.no_grad():
            fitted = net(xs)[:, 0].tolist()
        kp = knots(net, -CURVE_MARGIN, CURVE_MARGIN).positions.tolist()
        return TrainingResult(
            widths=w,
            epochs=tuple(int(r[0]) for r in rec),
            knots_line=tuple(int(r[1]) for r in rec),
            knots_data=tuple(int(r[2]) for r in rec),
            loss=tuple(float(r[3]) for r in rec),
            xs=tuple(float(v) for v in xs[:, 0].tolist()),
            fit=tuple(float(v) for v in fitted),
            target=tuple(float(v) for v in target_1d(xs)[:, 0].tolist()),
            knot_positions=tuple(float(v) for v in kp),
            converged=bool(mse <= self.mse_target),
            final_mse=mse,
        )


# --------------------------------------------------------------------------------------------
# a 2-D slice: exact activation regions at init and after training
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Regions2DResult(Result):
    width: int
    n_regions: tuple[int, int]  # init, trained
    n_pieces: tuple[int, int]
    per_unit_length: tuple[float, float]  # regions along lines through the data
    polygons: tuple[tuple[tuple[tuple[float, ...], ...], ...], ...]  # per stage, per region
    pattern_ids: tuple[tuple[int, ...], ...]
    converged: bool
    final_mse: float


@dataclass(frozen=True)
class Regions2DTask(Task):
    """A ``[2, width, width, 1]`` net on a radial regression task on [-1, 1]^2: exact regions of
    the square at init and after Adam training (until ``mse_target`` or ``epochs``)."""

    width: int
    epochs: int
    lr: float
    mse_target: float
    seed: int

    def run(self) -> Regions2DResult:
        g = torch_generator(self.seed)
        X = torch.rand(N_POINTS_2D, 2, generator=g, dtype=torch.float64) * 2 - 1
        y = torch.sin(4.0 * X.norm(dim=1, keepdim=True)) + 0.5 * X[:, :1]
        net = mlp([2, self.width, self.width, 1], seed=self.seed, dtype=torch.float64)
        stages = []
        for stage in ("init", "trained"):
            if stage == "trained":
                fit(net, X, y, epochs=self.epochs, lr=self.lr, mse_target=self.mse_target)
            R = regions_2d(net, extent=1.0)
            lines = regions_along_lines(net, X, n_lines=N_LINES_2D, length=1.0, seed=self.seed)
            ids = np.unique(R.patterns, axis=0, return_inverse=True)[1].ravel()
            polys = tuple(
                tuple(tuple(float(v) for v in pt) for pt in np.round(R.polygon(i), 6))
                for i in range(R.n_regions)
            )
            stages.append(
                (
                    R.n_regions,
                    R.n_pieces,
                    float(lines["regions_per_unit_length"]),
                    polys,
                    tuple(int(v) for v in ids),
                )
            )
        mse = _mse(net, X, y)
        return Regions2DResult(
            width=self.width,
            n_regions=(int(stages[0][0]), int(stages[1][0])),
            n_pieces=(int(stages[0][1]), int(stages[1][1])),
            per_unit_length=(stages[0][2], stages[1][2]),
            polygons=(stages[0][3], stages[1][3]),
            pattern_ids=(stages[0][4], stages[1][4]),
            converged=bool(mse <= self.mse_target),
            final_mse=mse,
        )
