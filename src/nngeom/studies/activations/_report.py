"""The activations study's report: protocol, departures, notes, tables and figures.

Nothing here states an outcome: the outcomes are the verdicts' (``_claims``); these texts say
what was run, where it departs from the paper, and which nets missed the convergence criterion.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .._base import Figure, Table, save_figure
from .._figures import make_figures
from .._typed import pairs_of
from ._claims import CLAIM_PROBLEMS, LABELS, metric_name, paired, result_of, t_interval
from ._runs import (
    ACT_GRID,
    EQUAL,
    EQUAL_WIDTHS,
    IMAGE,
    LR_STEP,
    METHODS,
    PROBLEMS,
    SINE_SIZES,
    VAF_K,
    MethodResult,
    MethodRun,
)

Pairs = Sequence[tuple[MethodRun, MethodResult]]
FULL_TRAIN = 50_000  # Fashion-MNIST training images at scale "full" (the rest: validation)


def _typed(pairs: Sequence[tuple[object, object]]) -> list[tuple[MethodRun, MethodResult]]:
    return pairs_of(pairs, MethodRun, MethodResult)


def _problems(pairs: Pairs) -> list[str]:
    present = {t.problem for t, _ in pairs}
    return [p for p in PROBLEMS if p in present]


def _methods(pairs: Pairs, problem: str) -> list[str]:
    present = {t.method for t, _ in pairs if t.problem == problem}
    return [m for m in (*METHODS, EQUAL) if m in present]


def _arch(task: MethodRun, n_in: str) -> str:
    if task.problem == "image-conv":
        c1, c2 = task.widths
        return f"conv 3x3 {c1} ch + max-pool 2, conv 3x3 {c2} ch + max-pool 2, linear to 10"
    out = "10" if task.problem in IMAGE else "1"
    return "-".join([n_in, *map(str, task.widths), out])


def _n(v: int | None, default: str) -> str:
    return default if v is None else f"{v:,}"


def _describe(task: MethodRun) -> str:
    if task.problem in IMAGE:
        n_in = "784" if task.dataset == "fashion-mnist" else "64"
        return (
            f"{task.problem} ({task.dataset}; {_arch(task, n_in)}; "
            f"{_n(task.n_train, 'all')} training, {_n(task.n_val, 'a sixth of the')} validation, "
            f"{_n(task.n_test, 'all')} test images; minibatch {task.batch_size})"
        )
    if task.problem == "diabetes":
        return (
            f"diabetes (sklearn, 442 rows split 64/16/20% train/validation/test, standardised; "
            f"MLP {_arch(task, '10')}; minibatch {task.batch_size})"
        )
    return (
        f"sine1d (1-D function with a kink, {SINE_SIZES[0]} noisy training and {SINE_SIZES[1]} "
        f"validation samples, test MSE on a dense noise-free grid; MLP {_arch(task, '1')}, "
        f"the ReLU comparator 1-{'-'.join(map(str, EQUAL_WIDTHS))}-1; full batch, validation "
        f"every {task.eval_every} steps)"
    )


def protocol(pairs: Sequence[tuple[object, object]]) -> str:
    """What was run: problems, nets, sizes, seeds, learning-rate choice, stopping criterion and
    tests (no outcome)."""
    tp = _typed(pairs)
    if not tp:
        return "No activations task finished."
    parts = []
    for problem in _problems(tp):
        runs = [t for t, _ in tp if t.problem == problem]
        t0 = runs[0]
        parts.append(
            f"{_describe(t0)}: methods {', '.join(_methods(tp, problem))}; {len(t0.seeds)} seeds "
            f"(the first {t0.select_seeds} choose the learning rate); initial grid "
            f"{', '.join(f'{lr:.2g}' for lr in t0.lr_grid)} extended by up to {t0.max_extend} "
            f"point(s); at most {t0.max_epochs} {'steps' if t0.batch_size is None else 'epochs'}"
            f", patience {t0.patience} evaluations"
        )
    return (
        f"Trainable activations: VAF (k={VAF_K}, one 1-{VAF_K}-1 ReLU subnetwork per layer, "
        "equal to ReLU at the start) against ReLU, PReLU, SiLU, Swish-beta and the rational "
        "(5, 4) activation, each method trained under one protocol on each problem. "
        + "; ".join(parts)
        + ". Every method of a problem trains the same seeds (a seed fixes the layer weights at "
        "the start and the minibatch order). Adam; the learning rate is chosen per method and "
        f"problem from a geometric grid (ratio {LR_STEP:.3g}) by the mean best validation loss of "
        "the selection seeds, the grid extended by one point at a time while the choice is on an "
        "edge; training stops early when the validation loss has not improved for `patience` "
        "evaluations, and the weights of the best validation loss are tested. A net counts as "
        "converged when early stopping ended its training before the epoch cap. Comparisons pair "
        "the nets seed by seed, keep the pairs where both converged, and give the 95% Student-t "
        "interval of the mean paired difference of the test metric (accuracy for images, MSE for "
        "regression) and the Wilcoxon signed-rank p-value."
    )


def departures(pairs: Sequence[tuple[object, object]]) -> list[str]:
    tp = _typed(pairs)
    out = [
        "Only the paper's abstract was found in the sources searched (arXiv 1902.03306; "
        "Neurocomputing 370, 2019): its claims are quoted from the abstract, and its own "
        "datasets, architectures, k, optimiser, stopping rule and numbers are not compared. The "
        "project's notes list Delve regression sets for its experiments; an excerpt of a thesis "
        "chapter on VAF networks describes 10-fold cross-validation, replaced here by seeds on "
        "one fixed split.",
        "The paper's Delve regression sets (CPU-Small, DeltaElevator, Elevators, Kinematics, "
        "Puma-8NH, Puma-32NH) are not available offline: sklearn's diabetes (442 rows) stands in.",
        "MNIST and CIFAR-10 are not reachable offline; the image problems use Fashion-MNIST.",
        "Baselines beyond the paper's fixed activation: PReLU, SiLU, Swish-beta and the rational "
        "(5, 4) activation; the 1-D task and its exact knot counts are beyond the paper too.",
    ]
    datasets = {t.dataset for t, _ in tp if t.problem in IMAGE}
    if "digits" in datasets:
        out.append(
            "Fashion-MNIST is not installed on the machine of this run: the image problems used "
            "sklearn's 8x8 digits (1,797 images) instead."
        )
    for problem in IMAGE:
        runs = [t for t, _ in tp if t.problem == problem]
        if runs and runs[0].dataset == "fashion-mnist" and runs[0].n_train is not None:
            t = runs[0]
            sizes = f"(validation {_n(t.n_val, 'a sixth')}, test {_n(t.n_test, 'all 10,000')})"
            out.append(
                f"{problem}: trained on a random subset of {t.n_train:,} of Fashion-MNIST's "
                f"60,000 training images {sizes} and {len(t.seeds)} seeds, to fit the scale's "
                f"time budget; scale 'full' trains on {FULL_TRAIN:,}."
                if t.n_train < FULL_TRAIN
                else f"{problem}: trained on {t.n_train:,} of Fashion-MNIST's 60,000 training "
                f"images {sizes}, {len(t.seeds)} seeds."
            )
        missing = [m for m in METHODS if runs and m not in _methods(tp, problem)]
        if runs and missing:
            out.append(f"{problem}: {', '.join(missing)} not trained at this scale (time budget).")
    return out


def _mean(values: Sequence[float | None]) -> float | None:
    v = [x for x in values if x is not None and math.isfinite(x)]
    return statistics.fmean(v) if v else None


def _f(v: float | None, fmt: str = ".4f") -> str:
    return "n/a" if v is None or not math.isfinite(v) else f"{v:{fmt}}"


def notes(pairs: Sequence[tuple[object, object]]) -> list[str]:
    """Generated from the results: nets that missed the convergence criterion, diverged runs,
    learning-rate grids extended or left unbracketed, the conv net's validation losses."""
    tp = _typed(pairs)
    out: list[str] = []
    missed = []
    for t, r in tp:
        bad = [s for s, c in zip(r.seeds, r.converged) if not c]
        if bad:
            missed.append(f"{t.problem}/{t.method}: {len(bad)} of {len(r.seeds)} (seeds {bad})")
    if missed:
        out.append(
            "Nets that stopped at the epoch cap (or diverged) without meeting the early-stopping "
            "criterion, excluded from the paired comparisons: " + "; ".join(missed) + "."
        )
    else:
        out.append(
            "Every net met the early-stopping criterion before its epoch cap."
            if tp
            else "No nets were trained."
        )
    div = [f"{t.problem}/{t.method}" for t, r in tp if any(r.diverged)]
    if div:
        out.append("Runs with a non-finite loss (at the chosen rate): " + ", ".join(div) + ".")
    for t, r in tp:
        if r.extended_low or r.extended_high:
            added = [lr for lr in r.lrs if lr not in t.lr_grid]
            out.append(
                f"{t.problem}/{t.method}: the learning-rate choice was on the initial grid's "
                f"{'lower' if r.extended_low else 'upper'} edge; the grid was extended by "
                f"{', '.join(f'{lr:.2g}' for lr in added)}; chosen {r.lr:.2g}"
                + ("." if r.bracketed else ", still on an edge (the optimum is not bracketed).")
            )
        elif not r.bracketed:
            out.append(
                f"{t.problem}/{t.method}: the chosen learning rate {r.lr:.2g} is on an edge of "
                "the grid (no extension allowed at this scale): the optimum is not bracketed."
            )
    conv = [(t, r) for t, r in tp if t.problem == "image-conv"]
    if conv:
        out.append(
            "image-conv: best validation loss (mean over seeds) by method: "
            + ", ".join(f"{t.method} {_f(_mean(r.val_loss), '.3f')}" for t, r in conv)
            + "."
        )
    errs = [f"{t.method}: {r.knots_error}" for t, r in tp if r.knots_error]
    if errs:
        out.append("Knot counting failed for " + "; ".join(errs) + ".")
    return out


def _metric_ci(r: MethodResult) -> str:
    vals = [
        v
        for v, c, d in zip(r.test_metric, r.converged, r.diverged)
        if v is not None and c and not d
    ]
    if not vals:
        return "n/a"
    if len(vals) == 1:
        return f"{vals[0]:.4f}"
    m, lo, hi = t_interval(vals)
    return f"{m:.4f} [{lo:.4f}, {hi:.4f}]"


def tables(pairs: Sequence[tuple[object, object]]) -> list[Table]:
    tp = _typed(pairs)
    rows = []
    for problem in _problems(tp):
        for method in _methods(tp, problem):
            found = result_of(tp, problem, method)
            if found is None:
                continue
            t, r = found
            grid = ", ".join(
                f"{lr:.2g}" + ("" if s is None else f" ({s:.3g})")
                for lr, s in zip(r.lrs, r.lr_scores)
            )
            ext = f"-{r.extended_low} / +{r.extended_high}"
            rows.append(
                [
                    problem, method, r.n_params, r.n_act_params, grid, f"{r.lr:.2g}", ext,
                    "yes" if r.bracketed else "no", f"{sum(r.converged)}/{len(r.seeds)}",
                    _f(_mean(r.val_loss)), f"{metric_name(problem)} {_metric_ci(r)}",
                    statistics.median(r.epochs) if r.epochs else "n/a",
                    _f(r.cpu_per_epoch, ".3f"),
                ]
            )  # fmt: skip
    out = [
        Table(
            "Per problem and method: parameters (all / of the activations); learning rates tried "
            "with their selection score (mean best validation loss of the selection seeds); the "
            "rate chosen; grid points added below / above; whether the choice has a tried rate "
            "on each side; nets that met the early-stopping criterion; best validation loss "
            "(mean over seeds); test metric of the converged nets (mean [95% t-interval]); median "
            "epochs; median CPU seconds per training epoch",
            [
                "problem",
                "method",
                "params",
                "act. params",
                "lr tried (score)",
                "lr",
                "added",
                "bracketed",
                "converged",
                "val loss",
                "test metric",
                "epochs",
                "CPU s/epoch",
            ],
            rows,
        )  # fmt: skip
    ]
    prow = []
    for problem in _problems(tp):
        others = [m for m in _methods(tp, problem) if m != "relu"]
        comps = [(m, "relu") for m in others] + (
            [("vaf", "rational")] if "rational" in others and "vaf" in others else []
        )
        for method, base in comps:
            p = paired(tp, problem, method, base)
            if p is None:
                continue
            prow.append(
                [
                    problem, f"{method} vs {base}", metric_name(problem), p.n, len(p.excluded),
                    _f(p.mean, "+.4f"), f"[{_f(p.low, '+.4f')}, {_f(p.high, '+.4f')}]",
                    _f(p.p_wilcoxon, ".3g"),
                ]
            )  # fmt: skip
    out.append(
        Table(
            "Paired comparisons seed by seed (pairs where both nets converged): mean difference "
            "of the test metric, positive when the first method is better (accuracy: first - "
            "second; MSE: second - first), its 95% Student-t interval, and the Wilcoxon "
            "signed-rank p-value",
            ["problem", "comparison", "metric", "pairs", "excluded", "mean diff", "95% CI", "p"],
            prow,
        )
    )
    krow = []
    for method in ("relu", EQUAL, "prelu", "vaf"):
        found = result_of(tp, "sine1d", method)
        if found is None or not found[1].knots:
            continue
        t, r = found
        ks = [k for k in r.knots if k is not None]
        net = "1-" + "-".join(map(str, t.widths)) + "-1"
        krow.append(
            [f"{method} {net}", r.n_params, _f(_mean([float(k) for k in ks]), ".1f"),
             f"{min(ks)}-{max(ks)}" if ks else "n/a", len(ks)]
        )  # fmt: skip
    if krow:
        out.append(
            Table(
                "Exact knots on [-3, 3] (nngeom.knots) of the trained 1-D nets",
                ["net", "parameters", "mean knots", "range", "seeds"],
                krow,
            )
        )
    return out


# ----------------------------------------------------------------------------------------------
# figures
# ----------------------------------------------------------------------------------------------

_PAPER_FIGS = "The paper's figures were not available here (only its abstract was found)"


def _legend(ax) -> None:
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=6)


COLOURS = {
    "relu": "tab:blue",
    "prelu": "tab:orange",
    "silu": "tab:green",
    "swish": "tab:purple",
    "rational": "tab:brown",
    "vaf": "tab:red",
    EQUAL: "tab:gray",
}


def _colour(method: str) -> str:
    return "tab:red" if method == "vaf" else "tab:gray"


def figures(pairs: Sequence[tuple[object, object]], figdir: Path) -> list[Figure]:
    tp = _typed(pairs)
    if not tp:
        return []
    return make_figures(tp, figdir, (_fig_paired, _fig_lr, _fig_curves, _fig_shapes, _fig_knots))


def _axes(n: int, height: float = 3.0):
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, n, figsize=(3.6 * n, height), squeeze=False)
    return fig, list(axes[0])


def _fig_paired(tp: Pairs, figdir: Path) -> Figure | None:
    problems = [p for p in _problems(tp) if result_of(tp, p, "relu") is not None]
    if not problems:
        return None
    fig, axes = _axes(len(problems), 3.3)
    for ax, problem in zip(axes, problems):
        methods = [m for m in _methods(tp, problem) if m != "relu"]
        for i, method in enumerate(methods):
            p = paired(tp, problem, method)
            if p is None or not p.diffs:
                continue
            ax.scatter([i] * p.n, p.diffs, s=10, color=_colour(method), alpha=0.6)
            if p.low is not None and p.high is not None and p.mean is not None:
                ax.errorbar(
                    [i + 0.25], [p.mean], yerr=[[p.mean - p.low], [p.high - p.mean]],
                    fmt="o", color="k", capsize=3, ms=4,
                )  # fmt: skip
        ax.axhline(0.0, color="k", lw=0.8, ls=":")
        ax.set_xticks(range(len(methods)), methods, rotation=45, fontsize=7)
        orient = "method - ReLU" if problem in IMAGE else "ReLU - method"
        ax.set_ylabel(f"test {metric_name(problem)}, {orient}", fontsize=7)
        ax.set_title(problem, fontsize=9)
    fig.tight_layout()
    return Figure(
        save_figure(fig, figdir, "activations_paired"),
        "Paired differences with ReLU, seed by seed (dots; positive: the method is better), with "
        "the mean and its 95% Student-t interval (black) over the pairs where both nets "
        "converged; VAF in red.",
        paper=f"{_PAPER_FIGS}; its abstract reports VAF nets giving better results than nets "
        "with a pre-defined activation.",
    )


def _method_panels(
    tp: Pairs, draw: Callable[[Any, str, MethodRun, MethodResult], None], ylabel: str
) -> tuple[Any, list[tuple[Any, str]]]:
    """One panel per problem (log y axis, ``ylabel``), ``draw(axes, method, task, result)`` for
    each method with a result there, the legend in the first: ``(figure, [(axes, problem)])``."""
    problems = _problems(tp)
    fig, axes = _axes(len(problems))
    for ax, problem in zip(axes, problems):
        for method in _methods(tp, problem):
            found = result_of(tp, problem, method)
            if found is not None:
                draw(ax, method, *found)
        ax.set_yscale("log")
        ax.set_ylabel(ylabel, fontsize=8)
        ax.set_title(problem, fontsize=9)
    _legend(axes[0])
    return fig, list(zip(axes, problems))


def _fig_lr(tp: Pairs, figdir: Path) -> Figure:
    def draw(ax: Any, method: str, _t: MethodRun, r: MethodResult) -> None:
        xs = [lr for lr, s in zip(r.lrs, r.lr_scores) if s is not None]
        ys = [s for s in r.lr_scores if s is not None]
        colour = COLOURS.get(method)
        ax.plot(xs, ys, "o-", ms=3, lw=2 if method == "vaf" else 1, label=method, color=colour)
        score = dict(zip(r.lrs, r.lr_scores)).get(r.lr)
        if score is not None:
            ax.plot([r.lr], [score], "*", ms=10, color=colour)

    fig, panels = _method_panels(tp, draw, "mean best validation loss")
    for ax, _ in panels:
        ax.set_xscale("log")
        ax.set_xlabel("learning rate", fontsize=8)
    fig.tight_layout()
    return Figure(
        save_figure(fig, figdir, "activations_lr"),
        "Learning-rate choice: the selection score (mean best validation loss of the selection "
        "seeds) of every rate tried, per method; the star marks the rate chosen. A choice with a "
        "tried rate on each side is bracketed.",
        paper=f"{_PAPER_FIGS}.",
    )


def _fig_curves(tp: Pairs, figdir: Path) -> Figure:
    def draw(ax: Any, method: str, t: MethodRun, r: MethodResult) -> None:
        if not r.curve:
            return
        ys = [np.nan if v is None else v for v in r.curve]
        xs = [t.eval_every * (i + 1) for i in range(len(ys))]
        ax.plot(xs, ys, lw=2 if method == "vaf" else 1, label=method, color=COLOURS.get(method))

    fig, panels = _method_panels(tp, draw, "validation loss")
    for ax, problem in panels:
        ax.set_xlabel("epoch" if problem != "sine1d" else "step", fontsize=8)
    fig.tight_layout()
    return Figure(
        save_figure(fig, figdir, "activations_curves"),
        "Validation loss during training of the first seed at the chosen learning rate, per "
        "method, until early stopping (the weights of the lowest point are tested).",
        paper=f"{_PAPER_FIGS}.",
    )


def _fig_shapes(tp: Pairs, figdir: Path) -> Figure:
    import matplotlib.pyplot as plt

    problems = _problems(tp)
    fig, axes = plt.subplots(2, len(problems), figsize=(3.4 * len(problems), 5.6), squeeze=False)
    grid = np.asarray(ACT_GRID)
    for col, problem in enumerate(problems):
        for row, method in enumerate(("vaf", "rational")):
            ax = axes[row][col]
            found = result_of(tp, problem, method)
            if found is not None:
                for layer, shape in enumerate(found[1].shapes):
                    ax.plot(grid, shape, label=f"layer {layer}")
            ax.plot(grid, np.maximum(grid, 0), "k:", lw=0.8, label="ReLU")
            ax.set_title(f"{problem}: {method}" + ("" if found else " (not trained)"), fontsize=9)
            ax.legend(fontsize=6)
    fig.tight_layout()
    return Figure(
        save_figure(fig, figdir, "activations_shapes"),
        "Learned activations per hidden layer (first seed, chosen learning rate): VAF (starts "
        "equal to ReLU) and the rational (5, 4) (starts at a least-squares fit to ReLU).",
        paper=f"{_PAPER_FIGS}.",
    )


def _fig_knots(tp: Pairs, figdir: Path) -> Figure | None:
    import matplotlib.pyplot as plt

    names, values = [], []
    for method in ("relu", EQUAL, "prelu", "vaf"):
        found = result_of(tp, "sine1d", method)
        if found is None or not found[1].knots:
            continue
        t, r = found
        names.append(f"{method}\n1-{'-'.join(map(str, t.widths))}-1\n({r.n_params} params)")
        values.append([k for k in r.knots if k is not None])
    if not names:
        return None
    fig, ax = plt.subplots(figsize=(4.8, 3.4))
    for i, (name, ks) in enumerate(zip(names, values)):
        ax.scatter([i] * len(ks), ks, s=12, color=_colour("vaf" if "vaf" in name else ""))
        if ks:
            ax.plot([i - 0.2, i + 0.2], [statistics.fmean(ks)] * 2, "k-")
    ax.set_xticks(range(len(names)), names, fontsize=7)
    ax.set_ylabel("exact knots on [-3, 3]")
    fig.tight_layout()
    return Figure(
        save_figure(fig, figdir, "activations_knots"),
        "Exact knot counts (nngeom.knots) of the trained 1-D nets, one dot per seed, the bar at "
        "the mean: VAF vs ReLU nets of equal and (nearly) equal parameter count.",
        paper="Not in the paper: a VAF net stays piecewise linear, so its knots are exact.",
    )


__all__ = ["protocol", "departures", "notes", "tables", "figures", "CLAIM_PROBLEMS", "LABELS"]
