"""The saddles study's figures, each saved through :func:`nngeom.studies._base.save_figure`."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..._checks import TINY
from .._base import Figure, save_figure
from .._figures import make_figures
from .._typed import Pairs
from .analysis import _multis, _sizes, _toys, points
from .tasks import ZERO_RTOL

FIGURE_DPI = 110


def figures(pairs: Pairs, figdir: Path) -> list[Figure]:
    return make_figures(pairs, figdir, (_spectra, _paths, _bound, _multilayer))


def _spectra(pairs: Pairs, figdir: Path) -> Figure | None:
    import matplotlib.pyplot as plt

    toys = [r for _, r in _toys(pairs) if r.outputs == 1]
    if not toys:
        return None
    toys = toys[:6]
    fig, axes = plt.subplots(1, len(toys), figsize=(3.0 * len(toys), 3.2), squeeze=False)
    for ax, r in zip(axes[0], toys):
        for idx, ev in enumerate(r.eigenvalues):
            e = np.asarray(ev)
            top = max(float(np.abs(e).max()), TINY)
            colour = np.where(
                e < -ZERO_RTOL * top,
                "tab:red",
                np.where(np.abs(e) <= ZERO_RTOL * top, "k", "tab:blue"),
            )
            ax.scatter(np.full(e.size, idx), e, s=10, c=colour)
        ax.set_yscale("symlog", linthresh=1e-6)
        ax.set_xticks(
            range(len(r.pair_i)), [f"{i}{j}" for i, j in zip(r.pair_i, r.pair_j)], fontsize=7
        )
        ax.set_title(f"width {r.width}, seed {r.seed}", fontsize=9)
        ax.set_xlabel("pair (i j)")
    axes[0][0].set_ylabel("Hessian eigenvalue (symlog)")
    fig.tight_layout()
    return Figure(
        save_figure(fig, figdir, "saddles_spectra", dpi=FIGURE_DPI),
        "Full Hessian spectra at the permutation point of every pair of toy students (red: "
        "negative, black: zero, blue: positive); the number of red points is the saddle index.",
        "The paper's toy-task figure: spectra at permutation points, some with one negative "
        "eigenvalue (first-order saddles)",
    )


def _paths(pairs: Pairs, figdir: Path) -> Figure | None:
    import matplotlib.pyplot as plt

    withpath = [r for _, r in _toys(pairs) if r.valley]
    if not withpath:
        return None
    r = withpath[0]
    fig, ax = plt.subplots(1, 2, figsize=(9, 3.4))
    ax[0].plot(np.linspace(0, 1, len(r.valley)), r.valley, label="equal-loss valley path")
    for b in r.valley_breaks[1:]:
        ax[0].axvline(b / (len(r.valley) - 1), color="0.7", lw=0.8)
    ax[0].set_title(f"3-segment path (width {r.width}): loss {r.point_loss:.3e}", fontsize=9)
    ax[0].set_xlabel("path parameter")
    ax[0].ticklabel_format(useOffset=False)
    ax[1].plot(r.line_t, r.line, label="straight line")
    ax[1].plot(r.line_t, r.bezier, label="optimised Bezier curve")
    ax[1].axhline(r.point_loss, color="k", ls="--", lw=0.8, label="permutation-point loss")
    ax[1].set_yscale("log")
    ax[1].set_xlabel("t (student -> its (0 1)-swapped copy)")
    ax[1].legend(fontsize=7)
    fig.tight_layout()
    return Figure(
        save_figure(fig, figdir, "saddles_paths", dpi=FIGURE_DPI),
        "Left: the loss along the three-segment path through the permutation point (0 1) to the "
        "(0 1)-swapped configuration. Right: the loss between the student and its swapped copy "
        "along the straight line and an optimised Bezier curve.",
        "The paper's sketch of the equal-loss valley connecting equivalent minima",
    )


def _bound(pairs: Pairs, figdir: Path) -> Figure | None:
    import matplotlib.pyplot as plt

    pts = [p for p in points(pairs) if p.converged and p.index_exact]
    if not pts:
        return None
    fig, ax = plt.subplots(1, 2, figsize=(9, 3.6))
    colours = {n: f"C{k}" for k, n in enumerate(sorted({p.n_next for p in pts}))}
    rng = np.random.default_rng(0)  # jitter of the markers only
    for n, c in colours.items():
        sel = [p for p in pts if p.n_next == n]
        jit = rng.uniform(-0.15, 0.15, size=(len(sel), 2))
        ax[0].scatter(
            [p.flat_rank + jit[k, 0] for k, p in enumerate(sel)],
            [p.index + jit[k, 1] for k, p in enumerate(sel)],
            s=14,
            c=c,
            label=f"n_{{k+1}} = {n}",
        )
        full = [p for p in sel if p.zeros is not None]
        ax[1].scatter(
            [n - p.flat_rank + jit[k, 0] for k, p in enumerate(full)],
            [p.zeros + jit[k, 1] for k, p in enumerate(full)],
            s=14,
            c=c,
        )
    top = max(max(p.flat_rank for p in pts), max(p.index for p in pts)) + 1
    ax[0].plot([0, top], [0, top], "k--", lw=0.8, label="index = rank(H D)")
    ax[0].axhline(1, color="0.6", lw=0.8, ls=":")
    ax[0].set_xlabel("rank(H D)")
    ax[0].set_ylabel("saddle index")
    ax[0].legend(fontsize=7)
    zs = [p.zeros for p in pts if p.zeros is not None] or [0]
    top1 = max(max(zs), max(p.n_next for p in pts)) + 1
    ax[1].plot([0, top1], [0, top1], "k--", lw=0.8)
    ax[1].set_xlabel("n_{k+1} - rank(H D)")
    ax[1].set_ylabel("zero eigenvalues")
    fig.tight_layout()
    return Figure(
        save_figure(fig, figdir, "saddles_index_bound", dpi=FIGURE_DPI),
        "Not in the paper: at every certified permutation point, the saddle index against "
        "rank(H D) (left; derived bound: on or above the dashed line; dotted: index 1) and the "
        "zero eigenvalues against n_{k+1} - rank(H D) (right, full spectra only); markers "
        "jittered. A first-order saddle needs rank(H D) <= 1.",
        None,
    )


def _multilayer(pairs: Pairs, figdir: Path) -> Figure | None:
    import matplotlib.pyplot as plt

    multis = [r for _, r in _multis(pairs)]
    if not multis:
        return None
    fig, axes = plt.subplots(1, len(multis), figsize=(4.6 * len(multis), 3.4), squeeze=False)
    for ax, r in zip(axes[0], multis):
        if r.eigenvalues:
            ev = np.asarray(r.eigenvalues)
            ax.plot(np.arange(ev.size), ev, ".", ms=2)
            ax.set_xlabel("index (ascending)")
        else:
            ev = np.concatenate([r.smallest, r.largest])
            ax.plot(np.arange(len(r.smallest)), r.smallest, "o", ms=3, label="smallest (Lanczos)")
            ax.plot(
                np.arange(len(r.smallest), ev.size), r.largest, "s", ms=3, label="largest (Lanczos)"
            )
            ax.legend(fontsize=7)
            ax.set_xlabel("Ritz value (smallest ... largest)")
        ax.set_yscale("symlog", linthresh=1e-8)
        ax.axhline(0, color="0.6", lw=0.8)
        ax.set_title(
            f"{_sizes(r)} ({'constructed' if r.case == 'teacher' else 'one-hot'}): index "
            f"{r.index if r.index_exact else '>= ' + str(r.index)}, grad {r.grad_norm:.0e}",
            fontsize=8,
        )
    axes[0][0].set_ylabel("Hessian eigenvalue (symlog)")
    fig.tight_layout()
    return Figure(
        save_figure(fig, figdir, "saddles_multilayer", dpi=FIGURE_DPI),
        "Hessian eigenvalues at the layer-2 permutation point of each multilayer net: the full "
        "spectrum, or the Lanczos extremes (the paper's size); the title gives the saddle index "
        "and the gradient norm.",
        "The paper's MNIST figure: the spectrum at a permutation point of a multilayer net",
    )
