"""Study: the upper bound on knots (Chen, arXiv 1611.09448) and linear regions in practice.

What is run (each a task; all counts exact, by :func:`nngeom.knots`):

* ``tight``: for every hidden-width list of a depth, Chen's bound ``prod(n_i + 1) - 1`` against
  the exact knot count of :func:`nngeom.tight_knot_network` (all lists with entries 1..8 at
  depths 1-2, equal widths and a sample of mixed lists at depths 3-4; every list at paper scale),
  plus the 1->64->64->64 bound-attaining net (274,624 knots) timed.
* ``search``: for narrow widths (1 and 2, where the construction falls short of the bound), a
  seeded hill-climbing search over the weights maximising the exact knot count, started from
  random nets and from the construction: the true maximum is bracketed (search <= max <= bound).
* ``random``: random nets at initialisation and after training on a 1-D regression task: knots
  vs total neurons vs the bound (Hanin & Rolnick: the count grows linearly in the neurons, far
  below the exponential bound).
* ``training``: knots of nets trained on the 1-D task, counted over training time.
* ``regions2d``: the exact activation regions of a 2-input net trained on a 2-D task, at init
  and after training (polygons coloured by pattern), with regions along lines through the data.

Scales: ``"quick"`` (a sample of the width lists, a few seeds), ``"paper"`` (all width lists,
more seeds, wider nets), ``"test"`` (the smallest, for the test suite).
"""

from __future__ import annotations

import itertools
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .._errors import StudyError
from .._random import numpy_rng, torch_generator
from ..knots import (
    _knots_from,
    _partition_fast,
    knot_upper_bound,
    knots,
    tight_knot_network,
)
from ..nets import mlp
from ..regions import regions_2d, regions_along_lines
from ..train import train
from ._base import Figure, KeyNumber, Section, Study, Table, run_kind, save_figure

PAPER = (
    'K. K. Chen, "The Upper Bound on Knots in Neural Networks", arXiv:1611.09448 (2016); with '
    'B. Hanin and D. Rolnick, "Complexity of Linear Regions in Deep Networks" (ICML 2019) for the '
    "regions along lines"
)

KNOT_RTOL = 1e-9  # a slope change above this times the largest slope is a knot (knots' default)
FIGURE_DPI = 110  # resolution of this study's PNG figures, dots per inch
# The search's seed for width list ``i`` is ``seed * SEARCH_SEED_STRIDE + i`` (a prime stride).
SEARCH_SEED_STRIDE = 7919
# The hill-climbing search's step: a Gaussian step of size sigma * (|theta| + STEP_OFFSET), sigma
# starting at STEP_START, times STEP_GROW after an accepted step (at most STEP_MAX), times
# STEP_SHRINK after a rejected one (at least STEP_MIN).
STEP_START, STEP_OFFSET = 0.3, 0.1
STEP_GROW, STEP_MAX = 1.2, 2.0
STEP_SHRINK, STEP_MIN = 0.95, 1e-3

SCALES = {
    "test": {
        "tight_depths": [1, 2],
        "tight_max": 3,
        "tight_sample": 0,
        "big": False,
        "search_widths": [[1, 1], [2, 2]],
        "search_steps": 30,
        "search_starts": 1,
        "random_widths": [4, 8],
        "random_depths": [2],
        "random_seeds": 1,
        "train_epochs": 20,
        "curve_width": 8,
        "curve_epochs": 60,
        "curve_every": 20,
        "r2d_width": 6,
        "r2d_epochs": 40,
    },
    "quick": {
        "tight_depths": [1, 2, 3, 4],
        "tight_max": 8,
        "tight_sample": 60,
        "big": True,
        "search_widths": [
            [1, 1],
            [1, 2],
            [2, 1],
            [2, 2],
            [1, 3],
            [3, 1],
            [2, 3],
            [1, 1, 1],
            [2, 2, 2],
        ],
        "search_steps": 400,
        "search_starts": 3,
        "random_widths": [4, 8, 16, 32, 64],
        "random_depths": [1, 2, 3],
        "random_seeds": 3,
        "train_epochs": 300,
        "curve_width": 32,
        "curve_epochs": 1500,
        "curve_every": 50,
        "r2d_width": 16,
        "r2d_epochs": 600,
    },
    "paper": {
        "tight_depths": [1, 2, 3, 4],
        "tight_max": 8,
        "tight_sample": None,  # every width list
        "big": True,
        "search_widths": [
            [1, 1],
            [1, 2],
            [2, 1],
            [2, 2],
            [1, 3],
            [3, 1],
            [2, 3],
            [3, 2],
            [1, 4],
            [2, 4],
            [1, 1, 1],
            [2, 2, 2],
            [1, 2, 3],
            [3, 2, 3],
            [2, 3, 3],
        ],
        "search_steps": 3000,
        "search_starts": 8,
        "random_widths": [4, 8, 16, 32, 64, 128],
        "random_depths": [1, 2, 3, 4],
        "random_seeds": 10,
        "train_epochs": 2000,
        "curve_width": 64,
        "curve_epochs": 5000,
        "curve_every": 100,
        "r2d_width": 32,
        "r2d_epochs": 3000,
    },
}


def _target(x: torch.Tensor) -> torch.Tensor:
    """The 1-D regression task: a smooth wiggly function on [-1, 1]."""
    return torch.sin(3.0 * x) + 0.5 * torch.cos(7.0 * x) + 0.3 * x**2


def tasks(scale: str, seed: int) -> list[dict[str, Any]]:
    """Task configs (JSON-able) for ``scale`` in ``test``, ``quick``, ``paper``."""
    if scale not in SCALES:
        raise StudyError(f"unknown scale {scale!r} for the knots study; use quick, paper or test")
    g = SCALES[scale]
    out: list[dict[str, Any]] = []
    for depth in g["tight_depths"]:
        out.append(
            {
                "kind": "tight",
                "depth": depth,
                "max_width": g["tight_max"],
                "sample": g["tight_sample"],
                "seed": seed,
            }
        )
    if g["big"]:
        out.append({"kind": "tight_big", "widths": [64, 64, 64]})
    # split the search into a few tasks so it parallelises
    sw = g["search_widths"]
    for i in range(0, len(sw), 3):
        out.append(
            {
                "kind": "search",
                "widths": sw[i : i + 3],
                "steps": g["search_steps"],
                "starts": g["search_starts"],
                "seed": seed,
            }
        )
    for depth in g["random_depths"]:
        out.append(
            {
                "kind": "random",
                "depth": depth,
                "widths": g["random_widths"],
                "seeds": [seed * 1000 + s for s in range(g["random_seeds"])],
                "epochs": g["train_epochs"],
            }
        )
    out.append(
        {
            "kind": "training",
            "width": g["curve_width"],
            "depth": 2,
            "epochs": g["curve_epochs"],
            "every": g["curve_every"],
            "seed": seed,
        }
    )
    out.append(
        {"kind": "regions2d", "width": g["r2d_width"], "epochs": g["r2d_epochs"], "seed": seed}
    )
    return out


# --------------------------------------------------------------------------------------------
# tasks
# --------------------------------------------------------------------------------------------
def _width_lists(depth: int, max_width: int, sample: int | None, seed: int) -> list[list[int]]:
    allw = [list(w) for w in itertools.product(range(1, max_width + 1), repeat=depth)]
    if sample is None or len(allw) <= sample + max_width:
        return allw
    equal = [[n] * depth for n in range(1, max_width + 1)]
    rng = numpy_rng(seed + depth)
    rest = [w for w in allw if len(set(w)) > 1]
    pick = rng.choice(len(rest), size=sample, replace=False)
    return equal + [rest[i] for i in sorted(pick)]


def _attainable(widths: list[int]) -> bool:
    """Our finding: the bound is attained iff every width but the last is >= 3, and the last is
    >= 2 when there is more than one hidden layer."""
    return all(n >= 3 for n in widths[:-1]) and (len(widths) == 1 or widths[-1] >= 2)


def _run_tight(c: dict[str, Any]) -> dict[str, Any]:
    rows = []
    for w in _width_lists(c["depth"], c["max_width"], c["sample"], c["seed"]):
        k = knots(tight_knot_network(w))
        rows.append([w, knot_upper_bound(w), k.count, k.n_breakpoints, bool(k.ambiguous)])
    return {"rows": rows}


def _run_tight_big(c: dict[str, Any]) -> dict[str, Any]:
    net = tight_knot_network(c["widths"])
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        k = knots(net)
        times.append(time.perf_counter() - t0)
    return {
        "widths": c["widths"],
        "bound": knot_upper_bound(c["widths"]),
        "count": k.count,
        "seconds": float(np.median(times)),
        "ambiguous": bool(k.ambiguous),
    }


def _layers_from(theta: np.ndarray, sizes: list[int]) -> list:
    layers, i = [], 0
    for l_in, l_out, last in zip(
        sizes[:-1], sizes[1:], [False] * (len(sizes) - 2) + [True], strict=True
    ):
        W = theta[i : i + l_in * l_out].reshape(l_out, l_in)
        i += l_in * l_out
        b = theta[i : i + l_out]
        i += l_out
        form = None
        if not last:
            form = (np.zeros((l_out, 1)), np.tile([0.0, 1.0], (l_out, 1)), np.zeros((l_out, 2)))
        layers.append((W, b, form))
    return layers


def _count(theta: np.ndarray, sizes: list[int]) -> int:
    inf = math.inf
    return _knots_from(
        _partition_fast(_layers_from(theta, sizes), -inf, inf), -inf, inf, KNOT_RTOL
    ).count


def _theta_of(net: torch.nn.Module) -> np.ndarray:
    return np.concatenate([p.detach().double().numpy().ravel() for p in net.parameters()])


def _run_search(c: dict[str, Any]) -> dict[str, Any]:
    rows = []
    for wi, w in enumerate(c["widths"]):
        sizes = [1, *w, 1]
        rng = numpy_rng(c["seed"] * SEARCH_SEED_STRIDE + wi)
        construction = knots(tight_knot_network(w)).count
        best = construction
        starts = [_theta_of(tight_knot_network(w))]
        for s in range(c["starts"]):
            starts.append(_theta_of(mlp(sizes, seed=c["seed"] * 100 + s, dtype=torch.float64)))
        for theta in starts:
            cur = _count(theta, sizes)
            sigma = STEP_START
            for _ in range(c["steps"]):
                scale = np.abs(theta) + STEP_OFFSET
                cand = theta + sigma * rng.standard_normal(theta.size) * scale
                k = _count(cand, sizes)
                if k >= cur:
                    theta, cur = cand, k
                    sigma = min(sigma * STEP_GROW, STEP_MAX)
                else:
                    sigma = max(sigma * STEP_SHRINK, STEP_MIN)
            best = max(best, cur)
        rows.append([w, knot_upper_bound(w), construction, int(best)])
    return {"rows": rows}


def _data_1d(n: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.linspace(-1, 1, n)[:, None]
    return x, _target(x)


def _run_random(c: dict[str, Any]) -> dict[str, Any]:
    X, y = _data_1d()
    rows = []
    for n in c["widths"]:
        for s in c["seeds"]:
            w = [n] * c["depth"]
            net = mlp([1, *w, 1], seed=s)
            k0, k0b = knots(net).count, knots(net, -1.0, 1.0).count
            train(net, X, y, epochs=c["epochs"], lr=1e-2, seed=s)
            k1, k1b = knots(net).count, knots(net, -1.0, 1.0).count
            rows.append([w, s, sum(w), knot_upper_bound(w), k0, k0b, k1, k1b])
    return {"rows": rows}


def _run_training(c: dict[str, Any]) -> dict[str, Any]:
    X, y = _data_1d()
    w = [c["width"]] * c["depth"]
    net = mlp([1, *w, 1], seed=c["seed"])
    with torch.no_grad():
        loss0 = float(((net(X) - y) ** 2).mean())
    curve = [[0, knots(net).count, knots(net, -1.0, 1.0).count, loss0]]

    def cb(epoch: int, loss: float) -> None:
        if (epoch + 1) % c["every"] == 0:
            curve.append([epoch + 1, knots(net).count, knots(net, -1.0, 1.0).count, float(loss)])

    train(net, X, y, epochs=c["epochs"], lr=3e-3, seed=c["seed"], callback=cb)
    xs = torch.linspace(-1.2, 1.2, 400)[:, None]
    with torch.no_grad():
        fit = net(xs)[:, 0].tolist()
    k = knots(net, -1.2, 1.2)
    return {
        "widths": w,
        "curve": curve,
        "xs": xs[:, 0].tolist(),
        "fit": fit,
        "target": _target(xs)[:, 0].tolist(),
        "knots": k.positions.tolist(),
    }


def _data_2d(seed: int, n: int = 400) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch_generator(seed)
    X = torch.rand(n, 2, generator=g) * 2 - 1
    r = X.norm(dim=1, keepdim=True)
    y = torch.sin(4.0 * r) + 0.5 * X[:, :1]
    return X, y


def _polys(R) -> list[list[list[float]]]:
    return [np.round(R.polygon(i), 6).tolist() for i in range(R.n_regions)]


def _run_regions2d(c: dict[str, Any]) -> dict[str, Any]:
    X, y = _data_2d(c["seed"])
    net = mlp([2, c["width"], c["width"], 1], seed=c["seed"])
    out: dict[str, Any] = {"width": c["width"]}
    for stage in ("init", "trained"):
        if stage == "trained":
            train(net, X, y, epochs=c["epochs"], lr=5e-3, seed=c["seed"])
        t0 = time.perf_counter()
        R = regions_2d(net, extent=1.0)
        dt = time.perf_counter() - t0
        lines = regions_along_lines(net, X, n_lines=32, length=1.0, seed=c["seed"])
        out[stage] = {
            "n_regions": R.n_regions,
            "n_pieces": R.n_pieces,
            "seconds": dt,
            "polygons": _polys(R),
            "pattern_ids": [
                int(v) for v in np.unique(R.patterns, axis=0, return_inverse=True)[1].ravel()
            ],
            "regions_per_unit_length": lines["regions_per_unit_length"],
        }
    return out


_RUNNERS = {
    "tight": _run_tight,
    "tight_big": _run_tight_big,
    "search": _run_search,
    "random": _run_random,
    "training": _run_training,
    "regions2d": _run_regions2d,
}


def run_task(config: dict[str, Any]) -> dict[str, Any]:
    """Run one task (deterministic given its config); returns plain JSON-able values."""
    return run_kind("knots", _RUNNERS, config)


# --------------------------------------------------------------------------------------------
# summary
# --------------------------------------------------------------------------------------------
def _verdict_2d(before: int, after: int) -> str:
    ratio = after / max(before, 1)
    if 0.5 <= ratio <= 2.0:
        return "consistent (within 2x)"
    return f"differs: x{ratio:.1f} after training on this task"


def summarize(results: list[tuple[dict[str, Any], dict[str, Any]]], figdir: Path) -> Section:
    """Tables, figures and key numbers of the knots study."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.collections import PolyCollection

    figdir = Path(figdir)
    figdir.mkdir(parents=True, exist_ok=True)
    by: dict[str, list[tuple[dict, dict]]] = {}
    for c, r in results:
        if r is not None:
            by.setdefault(c["kind"], []).append((c, r))
    sec = Section(title="Knots and linear regions", paper=PAPER, summary="")
    said: list[str] = []

    # --- tight networks -------------------------------------------------------------------
    tight_rows = [row for _, r in by.get("tight", []) for row in r["rows"]]
    if tight_rows:
        att = [r for r in tight_rows if r[2] == r[1]]
        pred = [r for r in tight_rows if _attainable(r[0])]
        pred_ok = all(r[2] == r[1] for r in pred)
        unpred_below = all(r[2] < r[1] for r in tight_rows if not _attainable(r[0]))
        amb = sum(1 for r in tight_rows if r[4])
        sec.key_numbers.append(
            KeyNumber(
                "width lists where the tight construction attains prod(n_i+1)-1",
                f"{len(att)}/{len(tight_rows)} (all {len(pred)} with inner widths >= 3 and last >= 2)"
                if pred_ok
                else f"{len(att)}/{len(tight_rows)}",
                "bound ~ n_1...n_L (abstract); exact statement derived here",
                "reproduced" if pred_ok else "differs",
            )
        )
        said.append(
            f"Chen's bound prod(n_i+1)-1 was checked against the exact knot count of our folding "
            f"construction on {len(tight_rows)} width lists (depths "
            f"{sorted({len(r[0]) for r in tight_rows})}): it is attained on {len(att)}, exactly those "
            f"whose widths before the last layer are all >= 3 and whose last width is >= 2 (depth > 1)"
            + ("" if pred_ok and unpred_below else " (with exceptions, see the table)")
            + f"; {amb} counts were flagged numerically ambiguous."
        )
        eq = sorted(
            (r for r in tight_rows if len(set(r[0])) == 1), key=lambda r: (len(r[0]), r[0][0])
        )
        sec.tables.append(
            Table(
                "Equal-width nets: Chen's bound vs the exact knots of the tight construction",
                ["widths", "bound prod(n+1)-1", "construction (exact)", "breakpoints", "attained"],
                [[str(r[0]), r[1], r[2], r[3], "yes" if r[2] == r[1] else "no"] for r in eq],
            )
        )
        fig, ax = plt.subplots(figsize=(5.2, 4))
        b = np.array([r[1] for r in tight_rows], float)
        k = np.array([r[2] for r in tight_rows], float)
        ok = np.array([_attainable(r[0]) for r in tight_rows])
        ax.loglog(b[ok], k[ok], "o", ms=3, label="inner widths >= 3 (last >= 2)")
        ax.loglog(b[~ok], np.maximum(k[~ok], 0.8), "x", ms=4, label="a width 1-2 before the end")
        lim = [0.8, b.max() * 1.3]
        ax.plot(lim, lim, "k--", lw=0.8, label="count = bound")
        ax.set_xlabel("Chen's bound prod(n_i+1)-1")
        ax.set_ylabel("exact knots of the construction")
        ax.legend(fontsize=7)
        ax.set_title("Tight networks (depth 1-4, widths 1-8)", fontsize=9)
        sec.figures.append(
            Figure(
                save_figure(fig, figdir, "knots_tight", dpi=FIGURE_DPI, tight=True),
                "Exact knot counts of the folding construction against the bound; on the diagonal "
                "the bound is attained.",
                paper="Chen 2016 states the bound; no figure of attained counts",
            )
        )
    for _, r in by.get("tight_big", []):
        sec.key_numbers.append(
            KeyNumber(
                "1->64->64->64->1 tight net: exact knots (time)",
                f"{r['count']:,} = bound {r['bound']:,} ({r['seconds']:.2f} s)",
                "65^3 - 1 = 274,624 if the product bound is attained",
                "reproduced" if r["count"] == r["bound"] else "differs",
            )
        )

    # --- search ---------------------------------------------------------------------------
    srows = [row for _, r in by.get("search", []) for row in r["rows"]]
    if srows:
        srows.sort(key=lambda r: (len(r[0]), r[0]))
        sec.tables.append(
            Table(
                "Narrow widths: bound vs construction vs weight search (max found over restarts)",
                ["widths", "bound", "construction", "search max", "verdict"],
                [
                    [
                        str(r[0]),
                        r[1],
                        r[2],
                        r[3],
                        "bound attained" if r[3] == r[1] else f"max >= {max(r[2], r[3])} < bound",
                    ]
                    for r in srows
                ],
            )
        )
        beat = [r for r in srows if r[3] > r[2]]
        said.append(
            "For narrow widths the weight search (hill climbing on the exact count) "
            + (
                "never beat the construction"
                if not beat
                else f"beat the construction on {len(beat)} of {len(srows)} width lists"
            )
            + f" and attained the bound on {sum(1 for r in srows if r[3] == r[1])} of {len(srows)}; "
            "with a width 1 or 2 before the last layer the product bound is not reached."
        )

    # --- random nets: count vs neurons ----------------------------------------------------
    rrows = [row for _, r in by.get("random", []) for row in r["rows"]]
    if rrows:
        agg: dict[tuple, list] = {}
        for w, _s, nn_, bound, k0, k0b, k1, k1b in rrows:
            agg.setdefault((len(w), w[0], nn_, bound), []).append((k0, k0b, k1, k1b))
        table = []
        for (depth, width, nn_, bound), v in sorted(agg.items()):
            a = np.array(v, float).mean(0)
            table.append([depth, width, nn_, bound, *(round(float(x), 1) for x in a)])
        sec.tables.append(
            Table(
                "Random nets (mean over seeds): knots at init and after training vs neurons and bound",
                [
                    "depth",
                    "width",
                    "neurons",
                    "bound",
                    "init (R)",
                    "init [-1,1]",
                    "trained (R)",
                    "trained [-1,1]",
                ],
                table,
            )
        )
        N = np.array([r[2] for r in rrows], float)
        K0 = np.array([r[4] for r in rrows], float)
        K1 = np.array([r[6] for r in rrows], float)
        slope0 = float((N @ K0) / (N @ N))
        slope1 = float((N @ K1) / (N @ N))
        sec.key_numbers.append(
            KeyNumber(
                "knots per neuron, random init (whole line, least-squares slope)",
                f"{slope0:.2f} (trained: {slope1:.2f})",
                "Hanin & Rolnick: linear in #neurons at init, changed little by training",
                "reproduced" if np.corrcoef(N, K0)[0, 1] > 0.9 else "differs",
            )
        )
        fig, ax = plt.subplots(1, 2, figsize=(9, 3.6))
        for depth in sorted({len(r[0]) for r in rrows}):
            m = np.array([len(r[0]) == depth for r in rrows])
            ax[0].plot(N[m], K0[m], "o", ms=3, label=f"depth {depth} init")
            ax[0].plot(N[m], K1[m], "^", ms=3, label=f"depth {depth} trained")
            bnd = np.array([r[3] for r in rrows], float)[m]
            ax[1].semilogy(N[m], np.maximum(K0[m], 1), "o", ms=3, label=f"depth {depth} count")
            ax[1].semilogy(N[m], bnd, "_", ms=8, label=f"depth {depth} bound")
        xs = np.array([0, N.max()])
        ax[0].plot(xs, slope0 * xs, "k--", lw=0.8, label=f"{slope0:.2f} x neurons")
        ax[0].set_xlabel("hidden neurons")
        ax[0].set_ylabel("knots on R")
        ax[0].legend(fontsize=6)
        ax[1].set_xlabel("hidden neurons")
        ax[1].set_ylabel("knots (log)")
        ax[1].legend(fontsize=6)
        sec.figures.append(
            Figure(
                save_figure(fig, figdir, "knots_random", dpi=FIGURE_DPI, tight=True),
                "Knots of random ReLU nets grow linearly with the number of neurons (left), "
                "orders of magnitude below Chen's exponential bound (right).",
                paper="Hanin & Rolnick 2019, Fig. 1-2 (regions along lines at init)",
            )
        )
        said.append(
            f"Random nets (ReLU, PyTorch init) have about {slope0:.2f} knots per hidden neuron on the "
            f"whole line at init ({slope1:.2f} after training on a 1-D regression task): linear in "
            "the neurons, far below the bound, as Hanin & Rolnick predict."
        )

    # --- over training --------------------------------------------------------------------
    for _c, r in by.get("training", []):
        curve = np.array(r["curve"], float)
        fig, ax = plt.subplots(1, 2, figsize=(9, 3.4))
        ax[0].plot(curve[:, 0], curve[:, 1], label="knots on R")
        ax[0].plot(curve[:, 0], curve[:, 2], label="knots in [-1, 1]")
        ax[0].set_xlabel("epoch")
        ax[0].set_ylabel("exact knots")
        ax2 = ax[0].twinx()
        ax2.semilogy(curve[:, 0], curve[:, 3], "k:", lw=0.8)
        ax2.set_ylabel("training MSE (dotted)")
        ax[0].legend(fontsize=7)
        ax[1].plot(r["xs"], r["target"], "k--", lw=0.8, label="target")
        ax[1].plot(r["xs"], r["fit"], label="net")
        kp = np.array(r["knots"])
        ax[1].plot(kp, np.interp(kp, r["xs"], r["fit"]), "r.", ms=4, label="knots")
        ax[1].legend(fontsize=7)
        sec.figures.append(
            Figure(
                save_figure(fig, figdir, "knots_training", dpi=FIGURE_DPI, tight=True),
                f"Knots of a 1->{'->'.join(map(str, r['widths']))}->1 ReLU net during training "
                "(left) and its final fit with its knots (right).",
            )
        )
        said.append(
            f"Over training, the {r['widths']} net went from {int(curve[0, 2])} to "
            f"{int(curve[-1, 2])} knots inside the data interval [-1, 1] ({int(curve[0, 1])} -> "
            f"{int(curve[-1, 1])} on the whole line)."
        )

    # --- 2-D regions ----------------------------------------------------------------------
    for _c, r in by.get("regions2d", []):
        fig, ax = plt.subplots(1, 2, figsize=(9, 4.4))
        cmap = plt.get_cmap("tab20")
        for a, stage in zip(ax, ("init", "trained"), strict=True):
            s = r[stage]
            ids = np.array(s["pattern_ids"])
            rng = numpy_rng(0)  # the same colours in every report
            colours = cmap(rng.permutation(max(len(ids), 1)) % 20)
            coll = PolyCollection(
                [np.array(p) for p in s["polygons"]],
                facecolors=colours[ids % len(colours)],
                edgecolors="k",
                linewidths=0.2,
            )
            a.add_collection(coll)
            a.set_xlim(-1, 1)
            a.set_ylim(-1, 1)
            a.set_aspect("equal")
            a.set_title(
                f"{stage}: {s['n_regions']} regions, {s['n_pieces']} linear pieces", fontsize=9
            )
        sec.figures.append(
            Figure(
                save_figure(fig, figdir, "regions_2d", dpi=FIGURE_DPI, tight=True),
                f"Exact activation regions of a 2->{r['width']}->{r['width']}->1 ReLU net on [-1,1]^2 "
                "at init and after training on a radial regression task (each polygon one pattern).",
                paper="Hanin & Rolnick 2019, Fig. 3 (regions of a 2-D input slice)",
            )
        )
        sec.key_numbers.append(
            KeyNumber(
                f"2->{r['width']}->{r['width']}->1 regions on [-1,1]^2, init -> trained",
                f"{r['init']['n_regions']} -> {r['trained']['n_regions']} "
                f"(along lines: {r['init']['regions_per_unit_length']:.1f} -> "
                f"{r['trained']['regions_per_unit_length']:.1f} per unit length)",
                "Hanin & Rolnick: training changes the count little",
                _verdict_2d(r["init"]["n_regions"], r["trained"]["n_regions"]),
            )
        )
        said.append(
            f"The 2-D slice of a 2->{r['width']}->{r['width']}->1 net had {r['init']['n_regions']} "
            f"exact regions at init and {r['trained']['n_regions']} after training."
        )
    sec.summary = " ".join(said) if said else "No finished tasks."
    sec.notes.append(
        "Chen's paper body was not available: the bound prod(n_i+1)-1 and its attainability were "
        "derived here and verified by exact counting (float64 engine checked against rational "
        "arithmetic and dense sampling in the test suite)."
    )
    return sec


STUDY = Study(
    name="knots",
    title="The upper bound on knots; linear regions in practice",
    paper=PAPER,
    tasks=tasks,
    run_task=run_task,
    summarize=summarize,
    order=20,
)
