"""The knots study's figures (matplotlib, through :func:`nngeom.studies._base.save_figure`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..._random import numpy_rng
from .._base import Figure, save_figure
from .._figures import make_figures
from .._typed import Pairs, pairs_of
from .experiments import (
    NarrowResult,
    NarrowTask,
    RandomResult,
    Regions2DResult,
    TightResult,
    TrainingResult,
)

__all__ = ["figures"]

FIGURE_DPI = 110  # resolution of this study's PNG figures, dots per inch
COLOUR_SEED = 0  # the 2-D regions' colours: the same permutation in every report


def figures(pairs: Pairs, figdir: Path) -> list[Figure]:
    return make_figures(pairs, figdir, (_tight, _narrow, _random, _training, _regions2d))


def _tight(pairs: Pairs, figdir: Path) -> Figure | None:
    import matplotlib.pyplot as plt

    from . import attains_product

    rows = [
        (w, b, k)
        for _, r in pairs
        if isinstance(r, TightResult)
        for w, b, k in zip(r.widths, r.bound, r.knots, strict=True)
    ]
    if not rows:
        return None
    b = np.array([r[1] for r in rows], float)
    k = np.array([r[2] for r in rows], float)
    ok = np.array([attains_product(r[0]) for r in rows])
    fig, ax = plt.subplots(figsize=(5.2, 4))
    ax.loglog(b[ok], k[ok], "o", ms=3, label="widths before the last >= 3 (last >= 2)")
    ax.loglog(
        b[~ok],
        np.maximum(k[~ok], 0.8),
        "x",
        ms=4,
        label="a width 1-2 before the last, or a last width 1",
    )
    lim = [0.8, b.max() * 1.3]
    ax.plot(lim, lim, "k--", lw=0.8, label="count = bound")
    ax.set_xlabel("product bound prod(n_i+1)-1 (derived here)")
    ax.set_ylabel("exact knots of the construction")
    ax.legend(fontsize=7)
    ax.set_title(f"Folding construction, {len(rows)} width lists", fontsize=9)
    return Figure(
        save_figure(fig, figdir, "knots_tight", dpi=FIGURE_DPI, tight=True),
        "Exact knot counts of nngeom's folding construction against the product bound; on the "
        "diagonal the bound is attained.",
        paper="Chen 2016 states a tight bound and demonstrates it with an example network (its "
        "figure was not available); this figure shows the attained counts over all width lists",
    )


def _narrow(pairs: Pairs, figdir: Path) -> Figure | None:
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    rs = sorted(
        (r for _, r in pairs if isinstance(r, NarrowResult)),
        key=lambda r: (len(r.widths), r.widths),
    )
    if not rs:
        return None
    x = np.arange(len(rs))
    lo = np.array([NarrowTask.lower_knots(r) for r in rs], float)
    up = np.array([r.upper_knots for r in rs], float)
    pb = np.array([r.product_bound for r in rs], float)
    exact = lo == up
    over = lo > up
    fig, ax = plt.subplots(figsize=(max(6.0, 0.28 * len(rs)), 3.8))
    br = ~exact & ~over
    ax.vlines(
        x[br],
        lo[br],
        up[br],
        color="tab:orange",
        lw=3,
        label="bracketed: [lower bound, refined upper bound]",
    )
    ax.plot(x[exact], lo[exact], "o", color="tab:green", ms=5, label="proven maximum")
    if over.any():
        ax.plot(
            x[over], lo[over], "x", color="tab:red", ms=7, label="counted above the refined bound"
        )
    ax.plot(x, pb, "_", color="k", ms=10, mew=1.5, label="product bound")
    ax.set_xticks(x)
    ax.set_xticklabels(
        ["[" + ",".join(map(str, r.widths)) + "]" for r in rs], rotation=90, fontsize=7
    )
    ax.set_ylabel("knots")
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
    ax.legend(fontsize=7)
    return Figure(
        save_figure(fig, figdir, "knots_narrow", dpi=FIGURE_DPI, tight=True),
        "Narrow widths: the most knots over all weights, proven (green: a counted net attains the "
        "refined upper bound derived here) or bracketed (orange: between the best counted net "
        "and that bound), against the product bound (black).",
        paper="not in Chen 2016 (its body was not available)",
    )


def _random(pairs: Pairs, figdir: Path) -> Figure | None:
    import matplotlib.pyplot as plt

    rs = [r for _, r in pairs_of(pairs, result=RandomResult)]
    if not rs:
        return None
    fig, ax = plt.subplots(1, 2, figsize=(9, 3.6))
    for depth in sorted({len(r.widths) for r in rs}):
        sub = [r for r in rs if len(r.widths) == depth]
        N = np.array([sum(r.widths) for r in sub for _ in r.seeds], float)
        K0 = np.array([k for r in sub for k in r.knots_init], float)
        K1 = np.array([k for r in sub for k in r.knots_trained], float)
        B = np.array([r.bound for r in sub for _ in r.seeds], float)
        col = f"C{depth - 1}"
        ax[0].loglog(N, np.maximum(K0, 0.8), "o", ms=3, color=col, label=f"depth {depth} init")
        ax[0].loglog(
            N, np.maximum(K1, 0.8), "^", ms=3, mfc="none", color=col, label=f"depth {depth} trained"
        )
        ax[1].semilogy(N, np.maximum(K0, 0.8), "o", ms=3, color=col, label=f"depth {depth} init")
        ax[1].semilogy(N, B, "_", ms=8, color=col, label=f"depth {depth} bound")
    Nall = np.array([sum(r.widths) for r in rs], float)
    xs = np.array([Nall.min(), Nall.max()])
    ax[0].plot(xs, xs, "k--", lw=0.8, label="knots = neurons")
    ax[0].set_xlabel("hidden neurons")
    ax[0].set_ylabel("exact knots on R")
    ax[0].legend(fontsize=6)
    ax[1].set_xlabel("hidden neurons")
    ax[1].set_ylabel("knots (log)")
    ax[1].legend(fontsize=6)
    return Figure(
        save_figure(fig, figdir, "knots_random", dpi=FIGURE_DPI, tight=True),
        "Exact knots of random ReLU nets at init and after training against the number of hidden "
        "neurons (left, log-log), and against the product bound (right).",
        paper="Hanin & Rolnick 2019 show regions along lines at initialisation growing "
        "linearly with the number of neurons",
    )


def _training(pairs: Pairs, figdir: Path) -> Figure | None:
    import matplotlib.pyplot as plt

    rs = [r for _, r in pairs_of(pairs, result=TrainingResult)]
    if not rs:
        return None
    r = rs[0]
    fig, ax = plt.subplots(1, 2, figsize=(9, 3.4))
    ax[0].plot(r.epochs, r.knots_line, label="knots on R")
    ax[0].plot(r.epochs, r.knots_data, label="knots in [-1, 1]")
    ax[0].set_xlabel("epoch")
    ax[0].set_ylabel("exact knots")
    ax2 = ax[0].twinx()
    ax2.semilogy(r.epochs, r.loss, "k:", lw=0.8)
    ax2.set_ylabel("training MSE (dotted)")
    ax[0].legend(fontsize=7)
    ax[1].plot(r.xs, r.target, "k--", lw=0.8, label="target")
    ax[1].plot(r.xs, r.fit, label="net")
    kp = np.array(r.knot_positions)
    ax[1].plot(kp, np.interp(kp, r.xs, r.fit), "r.", ms=4, label="knots")
    ax[1].legend(fontsize=7)
    w = "->".join(map(str, r.widths))
    return Figure(
        save_figure(fig, figdir, "knots_training", dpi=FIGURE_DPI, tight=True),
        f"Exact knots of a 1->{w}->1 ReLU net during training (left; "
        f"{'criterion met' if r.converged else 'criterion not met'}, final MSE "
        f"{r.final_mse:.2g}) and its final fit with its knots (right).",
        paper="Hanin & Rolnick 2019 count regions during training",
    )


def _regions2d(pairs: Pairs, figdir: Path) -> Figure | None:
    import matplotlib.pyplot as plt
    from matplotlib.collections import PolyCollection

    rs = [r for _, r in pairs_of(pairs, result=Regions2DResult)]
    if not rs:
        return None
    r = rs[0]
    fig, ax = plt.subplots(1, 2, figsize=(9, 4.4))
    cmap = plt.get_cmap("tab20")
    for i, (a, stage) in enumerate(zip(ax, ("init", "trained"), strict=True)):
        ids = np.array(r.pattern_ids[i], dtype=int)
        colours = cmap(numpy_rng(COLOUR_SEED).permutation(max(len(ids), 1)) % 20)
        coll = PolyCollection(
            [np.array(p) for p in r.polygons[i]],
            facecolors=colours[ids % len(colours)] if ids.size else None,
            edgecolors="k",
            linewidths=0.2,
        )
        a.add_collection(coll)
        a.set_xlim(-1, 1)
        a.set_ylim(-1, 1)
        a.set_aspect("equal")
        a.set_title(f"{stage}: {r.n_regions[i]} regions, {r.n_pieces[i]} linear pieces", fontsize=9)
    return Figure(
        save_figure(fig, figdir, "regions_2d", dpi=FIGURE_DPI, tight=True),
        f"Exact activation regions of a 2->{r.width}->{r.width}->1 ReLU net on [-1,1]^2 at init "
        f"and after training on a radial regression task (each polygon one pattern; "
        f"{'criterion met' if r.converged else 'criterion not met'}).",
        paper="Hanin & Rolnick 2019 draw the regions of 2-D input slices",
    )
