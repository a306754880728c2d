"""The tangent study's figures, each saved through ``studies._base.save_figure``."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from .._base import Figure, save_figure
from .._figures import pyplot as _plt
from .._typed import Pairs
from .analysis import (
    GRID_MEASURES,
    curve_stats,
    grid_stats,
    split,
)
from .tasks import BOUND_FAMILIES, CurveResult

__all__ = ["figures"]

_AUTHORS_PLOT = (
    "The authors' plot (tansens_public/plot.py, for the follow-up paper on CIFAR-10 and "
    "MNIST): training loss, test loss, their gap and the mean tangent sensitivity (scaled) "
    "over 60 epochs, and TS per output neuron with its correlation with the gap. The 2020 "
    "paper's own figure was not retrieved."
)


def figures(pairs: Pairs, figdir: Path) -> list[Figure]:
    """Training curve (losses and predictors, per class, bound tightness); grid (primary pair,
    every measure's tau)."""
    figdir = Path(figdir)
    figdir.mkdir(parents=True, exist_ok=True)
    curves, grid = split(pairs)
    out: list[Figure] = []
    if curves:
        r = curves[0][1]
        out.append(_curve(r, figdir))
        out.append(_per_class(r, figdir))
        out.append(_tightness(r, figdir))
    if grid:
        out.append(_grid_primary(grid, figdir))
        out.append(_grid_taus(grid, figdir))
    return out


def _curve(r: CurveResult, figdir: Path) -> Figure:
    plt = _plt()
    e = np.arange(1, len(r.train_loss) + 1)
    held = np.asarray(r.heldout_loss).mean(1)
    train = np.asarray(r.train_loss)
    fig, (a0, a1) = plt.subplots(1, 2, figsize=(11, 4))
    a0.plot(e, train, label="training loss")
    a0.plot(e, held, label="held-out loss")
    a0.plot(e, np.asarray(r.test_loss), ":", label="test loss (whole test set)")
    a0.plot(e, held - train, "k", lw=2, label="gap (held-out - training)")
    a0.set_xlabel("epoch")
    a0.set_ylabel("squared error (one-hot targets)")
    a0.legend(fontsize=8)
    s = curve_stats(r)
    series = {
        "ts": ("tangent sensitivity", np.asarray(r.ts).mean(1)),
        "jac": ("input-Jacobian norm", np.asarray(r.jac).mean(1)),
        "log_bound_linf": ("nngeom's l_inf bound", 10.0 ** np.asarray(r.log_bound_linf)),
        "dist_init": ("distance from init", np.asarray(r.dist_init)),
    }
    for key, (label, v) in series.items():
        a1.plot(e, v / v[0], label=f"{label} (tau {s.tau[key][0]:+.2f})")
    a1.set_yscale("log")
    a1.set_xlabel("epoch")
    a1.set_ylabel("value / value after epoch 1")
    a1.legend(fontsize=7)
    fig.tight_layout()
    png = save_figure(fig, figdir, "tangent_curve")
    return Figure(
        png,
        "The training curve: left, the losses and the gap per epoch; right, tangent "
        "sensitivity, the input-Jacobian norm, nngeom's l_inf bound and the distance from "
        "initialization relative to their values after epoch 1 (tau: Kendall tau over epochs "
        "with the gap).",
        paper=_AUTHORS_PLOT,
    )


def _per_class(r: CurveResult, figdir: Path) -> Figure:
    plt = _plt()
    e = np.arange(1, len(r.train_loss) + 1)
    labels = np.asarray(r.labels)
    ts = np.asarray(r.ts)
    loss = np.asarray(r.heldout_loss)
    tc = np.asarray(r.train_loss_class)
    fig, (a0, a1) = plt.subplots(1, 2, figsize=(11, 4))
    cmap = plt.get_cmap("tab10")
    for c in range(tc.shape[1]):
        sel = labels == c
        if not sel.any():
            continue
        a0.plot(e, ts[:, sel].mean(1), color=cmap(c % 10), label=f"class {c}")
        a1.plot(e, loss[:, sel].mean(1) - tc[:, c], color=cmap(c % 10), label=f"class {c}")
    a0.set_xlabel("epoch")
    a0.set_ylabel("mean tangent sensitivity of the class's held-out examples")
    a1.set_xlabel("epoch")
    a1.set_ylabel("class loss gap (held-out - training)")
    a1.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    png = save_figure(fig, figdir, "tangent_curve_per_class")
    return Figure(
        png,
        "Per class: the mean tangent sensitivity of each class's held-out examples (left) and "
        "the class's loss gap (right) per epoch.",
        paper="The authors' code computes TS per class and per output neuron and plots it "
        "with the class gaps (tansens_public: metrics.tan_sens_by_label, plot.py).",
    )


def _tightness(r: CurveResult, figdir: Path) -> Figure:
    plt = _plt()
    e = np.arange(1, len(r.train_loss) + 1)
    med = np.asarray(r.bound_median_ratio, dtype=np.float64)
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for j, fam in enumerate(BOUND_FAMILIES):
        ax.plot(e, med[:, j], label=fam)
    ax.axhline(1.0, color="black", lw=0.8)
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("median bound / TS over held-out examples")
    ax.legend(fontsize=8)
    fig.tight_layout()
    png = save_figure(fig, figdir, "tangent_bound_tightness")
    return Figure(
        png,
        "How loose nngeom's bounds on tangent sensitivity are during training: the median "
        "ratio bound / TS over the held-out examples per epoch (1 = tight; a value below 1 "
        "would be a violated bound).",
        paper="The paper derives bounds of these families (Sec. 3.2) but its figures of them "
        "were not retrieved; these are nngeom's own bounds.",
    )


def _grid_primary(grid, figdir: Path) -> Figure:
    plt = _plt()
    g = grid_stats(grid)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, key in zip(axes, ("ts_test", "jac_test"), strict=True):
        for conv, marker, color, lab in (
            (True, "o", "tab:blue", "met the criterion"),
            (False, "x", "tab:red", "excluded"),
        ):
            pts = [
                (getattr(r, key), r.gap)
                for _, r in grid
                if r.converged == conv and math.isfinite(r.gap)
            ]
            if pts:
                x, y = zip(*pts, strict=True)
                ax.scatter(x, y, marker=marker, color=color, s=18, label=lab)
        ax.set_xscale("log")
        ax.set_xlabel(GRID_MEASURES[key][0])
        ax.set_ylabel("gap (train acc - test acc)")
        ax.set_title(f"tau {g.tau[key][0]:+.3f}", fontsize=9)
        ax.legend(fontsize=8)
    fig.tight_layout()
    png = save_figure(fig, figdir, "tangent_grid_primary")
    return Figure(
        png,
        "The grid's primary comparison: tangent sensitivity (left) and the input-Jacobian "
        "norm (right) against the gap, one point per net (crosses: excluded nets, which did "
        "not meet the training criterion).",
        paper="Not in the paper (Jiang et al. 2020's cross-model protocol applied to its claim).",
    )


def _grid_taus(grid, figdir: Path) -> Figure:
    plt = _plt()
    g = grid_stats(grid)
    keys = list(GRID_MEASURES)
    fig, ax = plt.subplots(figsize=(7.5, 0.38 * len(keys) + 1.2))
    ys = np.arange(len(keys))[::-1]
    t = np.array([g.tau[k][0] for k in keys])
    lo = np.array([g.tau[k][1] for k in keys])
    hi = np.array([g.tau[k][2] for k in keys])
    colors = ["tab:red" if GRID_MEASURES[k][1].startswith("primary") else "tab:gray" for k in keys]
    ax.barh(ys, np.nan_to_num(t), color=colors)
    err = np.array([np.nan_to_num(t - lo), np.nan_to_num(hi - t)])
    ax.errorbar(np.nan_to_num(t), ys, xerr=np.clip(err, 0, None), fmt="none", color="k", lw=1)
    ax.set_yticks(ys, [GRID_MEASURES[k][0] for k in keys], fontsize=8)
    ax.axvline(0, color="black", lw=0.5)
    ax.set_xlabel("Kendall tau with the gap across nets (95% BCa interval)")
    fig.tight_layout()
    png = save_figure(fig, figdir, "tangent_grid_tau")
    return Figure(
        png,
        "Every grid measure's Kendall tau with the gap, in the order declared before the run "
        "(red: the primary pair; grey: secondary measures, not ranked).",
        paper="The paper reports an association of TS and its bounds with the gap on CIFAR-10; "
        "no cross-model figure of it was retrieved.",
    )
