"""The tangent study's numbers: associations, intervals, verdicts, tables and text (no plotting).

Everything here is a pure function of the finished ``(task, result)`` pairs.

Training curve (the paper's experiment): per epoch ``e``, the mean over held-out examples of
tangent sensitivity ``TS_e`` and the gap ``gap_e = (mean held-out loss)_e - (training loss)_e``;
Kendall's tau over epochs between a predictor and the gap, with a 95% BCa bootstrap interval
over the held-out examples (a resample recomputes both the predictor's means and the held-out
losses; the training loss, a mean over the whole training subset, is kept).

Grid (Jiang et al. 2020): nets that met the training criterion; Kendall's tau across nets
between a measure and the gap (training accuracy minus test accuracy), BCa bootstrap over nets;
the granulated coefficient Psi over groups of at least ``GROUP_MIN`` nets that differ in one
hyperparameter only, with a bootstrap interval over groups. The primary comparison, declared
before any run: ``tau(TS, gap) - tau(input-Jacobian norm, gap)``, paired bootstrap over nets.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from ...measures import bootstrap_ci
from .._base import Table
from .._typed import Pairs
from .._verdicts import (
    Claim,
    Measured,
    Outcome,
    Verdict,
    beyond,
    count_of,
    interval_vs,
    not_run,
)
from .tasks import (
    BOUND_FAMILIES,
    BOUND_RTOL,
    GRID_FACTORS,
    CurveResult,
    GridNet,
    NetResult,
    TrainingCurve,
)

__all__ = [
    "CURVE_PREDICTORS",
    "GRID_MEASURES",
    "GROUP_MIN",
    "N_BOOT",
    "curve_stats",
    "departures",
    "grid_stats",
    "kendall_tau",
    "notes",
    "protocol",
    "split",
    "tables",
    "verdicts",
]

N_BOOT = 1000  # bootstrap resamples of every interval
LEVEL = 0.95  # their confidence level
GROUP_MIN = 3  # the fewest nets of a granulated-Psi group (Jiang et al.: one factor varied)
GRID_MIN = 4  # the fewest converged nets for a tau across nets

# Training-curve predictors of the gap over epochs: key -> label
CURVE_PREDICTORS: dict[str, str] = {
    "ts": "tangent sensitivity (held-out mean)",
    "jac": "input-Jacobian norm (held-out mean)",
    "log_bound_linf": "nngeom bound: layer-wise l_inf (Sens^1 family), log10",
    "log_bound_path": "nngeom bound: |W| paths, log10",
    "log_bound_spectral": "nngeom bound: operator norms, log10",
    "log_bound_active_paths": "nngeom bound: active paths (data-dependent), log10",
    "dist_init": "distance from initialization",
    "epoch": "epoch index (a pure trend)",
}

# Grid measures, in the order declared before the run: the primary pair first, then the
# secondary measures (listed, none singled out afterwards). key -> (label, role)
GRID_MEASURES: dict[str, tuple[str, str]] = {
    "ts_test": ("tangent sensitivity (test)", "primary"),
    "jac_test": ("input-Jacobian norm (test; Novak et al. 2018)", "primary comparator"),
    "ts_train": ("tangent sensitivity (train)", "secondary"),
    "log_bound_linf": ("nngeom bound: layer-wise l_inf (Sens^1 family), log10", "secondary"),
    "log_bound_path": ("nngeom bound: |W| paths, log10", "secondary"),
    "log_bound_spectral": ("nngeom bound: operator norms, log10", "secondary"),
    "log_bound_active_paths": ("nngeom bound: active paths (data-dependent), log10", "secondary"),
    "dist_init": ("distance from initialization", "secondary"),
    "log_path_norm": ("l2 path norm, log10", "secondary"),
    "log_spec": ("product of spectral norms, ln", "secondary"),
    "log_frob": ("product of Frobenius norms, ln", "secondary"),
    "sharpness": ("sharpness (PAC-Bayes 1/sigma^2, Jiang et al.)", "secondary"),
    "pattern_entropy": ("activation-pattern entropy (test), nats", "secondary"),
    "fraction_active": ("fraction of active units (test)", "secondary"),
}

BOUND_LABELS = {
    "linf": "layer-wise l_inf (Sens^1 family): input-free",
    "path": "|W| input-output paths: input-free",
    "spectral": "operator-norm product: input-free",
    "active_paths": "active paths at x: data-dependent",
    "active_counts": "active-unit counts at x: data-dependent",
}

# ---- the claims -------------------------------------------------------------------------------

_ABSTRACT = "abstract (arXiv 2006.06780); journal version Sec. 2 (contributions)"
CLAIM_CURVE_TS = Claim(
    "tangent sensitivity is associated with the empirical generalization gap (over the epochs "
    "of training one wide ReLU MLP, the authors' experimental design)",
    _ABSTRACT + "; the authors' code tansens_public/plot.py (per-epoch TS vs the loss gap)",
)
CLAIM_BOUND = Claim(
    "even simple upper bounds of tangent sensitivity are connected to the empirical "
    "generalisation gap",
    "journal version Sec. 2 (contributions) and Sec. 3.4 (layer-wise norm sensitivity "
    "Sens^1_tan, input-free); tested with nngeom's layer-wise l_inf bound, the same family",
)
CLAIM_PER_CLASS = Claim(
    "tangent sensitivity follows the gap class by class (TS per class and per output)",
    "the authors' code tansens_public: metrics.tan_sens_by_label, plot.py (class gaps)",
)
CLAIM_GRID_TS = Claim(
    "tangent sensitivity is associated with the generalization gap across trained networks",
    _ABSTRACT + "; tested across nets trained to one criterion (Jiang et al. 2020)",
)
CLAIM_PSI = Claim(
    "tangent sensitivity is associated with the generalization gap when one hyperparameter "
    "varies and the others are held fixed",
    _ABSTRACT + "; tested with Jiang et al.'s granulated Kendall Psi (secondary)",
)
CLAIM_PRIMARY = Claim(
    "tangent sensitivity ranks trained nets by generalization gap better than the "
    "input-Jacobian norm it refines (Novak et al. 2018)",
    "this study's primary comparison, declared before the run (the paper proposes TS as a "
    "measure beside input sensitivity; it reports no such comparison)",
)
CLAIM_DETREND = Claim(
    "over training, epoch-to-epoch changes of tangent sensitivity go with changes of the gap "
    "(more than a shared drift)",
    "not in the paper: a check on the curve test, since two quantities that both drift "
    "during training are associated over epochs whatever they measure",
)
CLAIM_CURVE_JAC = Claim(
    "over training, tangent sensitivity follows the gap more closely than the input-Jacobian "
    "norm does",
    "not in the paper (Novak et al. 2018's measure as a baseline)",
)
CLAIM_BOUNDS_CHECK = Claim(
    "nngeom's upper bounds on TS_k(x) (derived in nngeom.sensitivity from the closed form; "
    "not the paper's statements, which were not retrieved) are at least the measured TS at "
    "every held-out example",
    "nngeom.tangent_sensitivity_bounds; the paper states bounds of these families in Sec. 3.2 "
    "(Theorems 1-2)",
)

# ---- Kendall tau -------------------------------------------------------------------------------


def kendall_tau(x: np.ndarray, y: np.ndarray) -> float:
    """Kendall's tau-b of the finite pairs of ``x`` and ``y`` (NaN when fewer than two remain or
    either side is constant): the value of :func:`nngeom.kendall_tau`, computed over all pairs
    at once (``O(n^2)`` memory, for the short series and few nets here, where the bootstrap
    calls it thousands of times and scipy's per-call overhead would dominate)."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    keep = np.isfinite(x) & np.isfinite(y)
    if not keep.all():
        x, y = x[keep], y[keep]
    if x.size < 2:
        return math.nan
    dx = np.sign(x[:, None] - x[None, :])
    dy = np.sign(y[:, None] - y[None, :])
    # over ordered pairs: sum(dx * dy) = 2 (C - D); nonzero(dx) = 2 (n0 - ties in x)
    tx = np.count_nonzero(dx)
    ty = np.count_nonzero(dy)
    if tx == 0 or ty == 0:
        return math.nan
    return float((dx * dy).sum() / math.sqrt(float(tx) * float(ty)))


# ---- splitting the pairs ----------------------------------------------------------------------


def split(
    pairs: Pairs,
) -> tuple[list[tuple[TrainingCurve, CurveResult]], list[tuple[GridNet, NetResult]]]:
    """The training-curve pairs and the grid pairs, in task order."""
    curves = [(t, r) for t, r in pairs if isinstance(t, TrainingCurve)]
    grid = [(t, r) for t, r in pairs if isinstance(t, GridNet)]
    return curves, grid  # type: ignore[return-value]


def _interval(stat: Callable[[np.ndarray], float], n: int, seed: int) -> tuple[float, float, float]:
    """``(value, low, high)``: the statistic on all ``n`` units and its BCa bootstrap interval."""
    value = stat(np.arange(n))
    if n < 3 or not math.isfinite(value):
        return value, math.nan, math.nan
    lo, hi = bootstrap_ci(stat, n, n_boot=N_BOOT, level=LEVEL, seed=seed)
    return value, lo, hi


def _measured(v: tuple[float, float, float], n: int, what: str) -> Measured:
    value, lo, hi = v
    fin = [x if math.isfinite(x) else None for x in (value, lo, hi)]
    return Measured(fin[0], fin[1], fin[2], n=n, what=what)


# ---- the training curve -----------------------------------------------------------------------


@dataclass(frozen=True)
class CurveStats:
    """The curve's associations (value, low, high) and what they come from."""

    n_epochs: int
    n_examples: int
    tau: dict[str, tuple[float, float, float]]  # predictor -> tau(predictor, gap) over epochs
    tau_diff: dict[str, tuple[float, float, float]]  # the same on epoch-to-epoch changes
    ts_minus_jac: tuple[float, float, float]
    per_class: list[tuple[int, int, tuple[float, float, float]]]  # (class, n, tau)


def _curve_arrays(r: CurveResult) -> dict[str, np.ndarray]:
    a = {
        "ts": np.asarray(r.ts, dtype=np.float64),
        "jac": np.asarray(r.jac, dtype=np.float64),
        "loss": np.asarray(r.heldout_loss, dtype=np.float64),
        "train": np.asarray(r.train_loss, dtype=np.float64),
        "train_class": np.asarray(r.train_loss_class, dtype=np.float64),
        "labels": np.asarray(r.labels, dtype=np.int64),
    }
    for key in ("log_bound_linf", "log_bound_path", "log_bound_spectral"):
        a[key] = np.asarray(getattr(r, key), dtype=np.float64)
    a["log_bound_active_paths"] = np.asarray(r.log_bound_active_paths, dtype=np.float64)
    a["dist_init"] = np.asarray(r.dist_init, dtype=np.float64)
    a["epoch"] = np.arange(1, len(r.train_loss) + 1, dtype=np.float64)
    return a


def _series(a: dict[str, np.ndarray], key: str, idx: np.ndarray) -> np.ndarray:
    """Predictor ``key`` per epoch, from the held-out examples ``idx`` where it is per example."""
    if key in ("ts", "jac"):
        return a[key][:, idx].mean(1)
    return a[key]


def _gap(a: dict[str, np.ndarray], idx: np.ndarray) -> np.ndarray:
    return a["loss"][:, idx].mean(1) - a["train"]


@functools.lru_cache(maxsize=4)
def curve_stats(r: CurveResult) -> CurveStats:
    """Kendall tau over epochs of every predictor with the gap, with intervals over examples
    (cached: the verdicts, tables and figures of one report share it)."""
    a = _curve_arrays(r)
    n = a["ts"].shape[1]
    tau, tau_diff = {}, {}
    for i, key in enumerate(CURVE_PREDICTORS):

        def level(idx: np.ndarray, key: str = key) -> float:
            return kendall_tau(_series(a, key, idx), _gap(a, idx))

        def change(idx: np.ndarray, key: str = key) -> float:
            return kendall_tau(np.diff(_series(a, key, idx)), np.diff(_gap(a, idx)))

        tau[key] = _interval(level, n, seed=100 + i)
        tau_diff[key] = _interval(change, n, seed=200 + i)

    def ts_jac(idx: np.ndarray) -> float:
        g = _gap(a, idx)
        return kendall_tau(_series(a, "ts", idx), g) - kendall_tau(_series(a, "jac", idx), g)

    per_class = []
    labels = a["labels"]
    for c in range(a["train_class"].shape[1]):
        members = np.flatnonzero(labels == c)
        if members.size == 0:
            continue

        def cls(idx: np.ndarray, members: np.ndarray = members, c: int = c) -> float:
            sel = members[idx]
            return kendall_tau(
                a["ts"][:, sel].mean(1), a["loss"][:, sel].mean(1) - a["train_class"][:, c]
            )

        per_class.append((c, int(members.size), _interval(cls, members.size, seed=300 + c)))
    return CurveStats(
        n_epochs=int(a["ts"].shape[0]),
        n_examples=int(n),
        tau=tau,
        tau_diff=tau_diff,
        ts_minus_jac=_interval(ts_jac, n, seed=400),
        per_class=per_class,
    )


# ---- the grid ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class GridStats:
    """The grid's associations across the converged nets."""

    n_nets: int
    n_converged: int
    n_diverged: int
    vary: list[str]  # the factors varied with >= GROUP_MIN values
    tau: dict[str, tuple[float, float, float]]
    psi: dict[str, tuple[float, float, float]]
    psi_per_factor: dict[str, dict[str, float]]
    psi_groups: dict[str, dict[str, int]]  # measure -> factor -> usable groups
    primary: tuple[float, float, float]  # tau(TS, gap) - tau(Jacobian, gap)


def _factor_values(t: GridNet) -> dict[str, object]:
    return {f: getattr(t, f) for f in GRID_FACTORS} | {"seed": t.seed}


def _primary_verdict(g: GridStats, n: int) -> Verdict:
    """The primary comparison: TS ranks nets by gap better than the input-Jacobian norm only if
    it ranks them in the claimed direction at all. Reproduced when the interval of the
    difference of taus lies above 0 AND the interval of tau(TS, gap) lies above 0; a larger tau
    than the Jacobian's while TS itself is not positively associated is not a better ranking."""
    v = interval_vs(
        "tangent.grid.primary",
        CLAIM_PRIMARY,
        _measured(g.primary, n, "tau(TS, gap) - tau(Jacobian norm, gap) across nets"),
        0.0,
    )
    lo_ts = g.tau["ts_test"][1]
    criterion = v.criterion + ", and the interval of tau(TS, gap) lies above 0"
    if v.outcome is Outcome.REPRODUCED and not lo_ts > 0:
        why = (
            f"{v.why}, but tau(TS, gap) = {_fmt_interval(g.tau['ts_test'])} is not above 0: "
            "TS does not rank the nets by gap in the claimed direction"
        )
        return dataclasses.replace(v, criterion=criterion, outcome=Outcome.NOT_REPRODUCED, why=why)
    return dataclasses.replace(v, criterion=criterion)


def grid_stats(grid: Sequence[tuple[GridNet, NetResult]]) -> GridStats:
    """Tau, granulated Psi and the primary difference over the nets that met the criterion
    (cached: the verdicts, tables and figures of one report share it)."""
    return _grid_stats(tuple(grid))


@functools.lru_cache(maxsize=4)
def _grid_stats(grid: tuple[tuple[GridNet, NetResult], ...]) -> GridStats:
    kept = [(t, r) for t, r in grid if r.converged and math.isfinite(r.gap)]
    n = len(kept)
    gap = np.array([r.gap for _, r in kept], dtype=np.float64)
    vals = {k: np.array([getattr(r, k) for _, r in kept], dtype=np.float64) for k in GRID_MEASURES}
    levels: dict[str, set] = {f: {getattr(t, f) for t, _ in grid} for f in GRID_FACTORS}
    vary = [f for f in GRID_FACTORS if len(levels[f]) >= GROUP_MIN]
    tau: dict[str, tuple[float, float, float]] = {}
    psi: dict[str, tuple[float, float, float]] = {}
    per_factor: dict[str, dict[str, float]] = {}
    groups_used: dict[str, dict[str, int]] = {}
    # the groups of nets equal in every factor but one (the same for every measure)
    groups: list[tuple[str, np.ndarray]] = []
    for f in vary:
        by: dict[tuple, list[int]] = {}
        for i, (t, _) in enumerate(kept):
            fv = _factor_values(t)
            by.setdefault(tuple(v for k, v in fv.items() if k != f), []).append(i)
        for members in by.values():
            if len(members) >= GROUP_MIN:
                groups.append((f, np.array(members)))
    g_fac = np.array([f for f, _ in groups])
    for j, key in enumerate(GRID_MEASURES):
        v = vals[key]

        def stat(idx: np.ndarray, v: np.ndarray = v) -> float:
            return kendall_tau(v[idx], gap[idx])

        tau[key] = _interval(stat, n, seed=500 + j) if n >= GRID_MIN else (math.nan,) * 3
        g_tau = np.array([kendall_tau(v[m], gap[m]) for _, m in groups], dtype=np.float64)
        ok = np.isfinite(g_tau)

        def psi_of(idx: np.ndarray, g_tau: np.ndarray = g_tau, ok: np.ndarray = ok) -> float:
            means = [
                float(g_tau[idx][ok[idx] & (g_fac[idx] == f)].mean())
                for f in vary
                if (ok[idx] & (g_fac[idx] == f)).any()
            ]
            return float(np.mean(means)) if means else math.nan

        psi[key] = _interval(psi_of, len(groups), seed=600 + j) if groups else (math.nan,) * 3
        per_factor[key] = {
            f: float(g_tau[ok & (g_fac == f)].mean()) if (ok & (g_fac == f)).any() else math.nan
            for f in vary
        }
        groups_used[key] = {f: int((ok & (g_fac == f)).sum()) for f in vary}

    ts, jac = vals["ts_test"], vals["jac_test"]

    def primary(idx: np.ndarray) -> float:
        return kendall_tau(ts[idx], gap[idx]) - kendall_tau(jac[idx], gap[idx])

    return GridStats(
        n_nets=len(grid),
        n_converged=n,
        n_diverged=sum(r.stopped == "diverged" for _, r in grid),
        vary=vary,
        tau=tau,
        psi=psi,
        psi_per_factor=per_factor,
        psi_groups=groups_used,
        primary=_interval(primary, n, seed=700) if n >= GRID_MIN else (math.nan,) * 3,
    )


# ---- bounds -----------------------------------------------------------------------------------


def _bound_totals(pairs: Pairs) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per bound family over every task: checks met, checks made, smallest ratio bound / TS."""
    met = np.zeros(len(BOUND_FAMILIES), dtype=np.int64)
    made = np.zeros(len(BOUND_FAMILIES), dtype=np.int64)
    low = np.full(len(BOUND_FAMILIES), math.inf)
    for _, r in pairs:
        met += np.asarray(r.bound_met, dtype=np.int64)
        made += np.asarray(r.bound_checks, dtype=np.int64)
        if isinstance(r, CurveResult):
            low = np.minimum(low, np.asarray(r.bound_min_ratio, dtype=np.float64))
    return met, made, low


# ---- verdicts ---------------------------------------------------------------------------------


def verdicts(pairs: Pairs) -> list[Verdict]:
    """The study's verdicts, in a fixed order (see the module docstring for the statistics)."""
    curves, grid = split(pairs)
    out: list[Verdict] = []
    what_curve = "Kendall tau over epochs"
    if curves:
        s = curve_stats(curves[0][1])
        n = s.n_examples
        out.append(
            interval_vs(
                "tangent.curve.ts_gap",
                CLAIM_CURVE_TS,
                _measured(s.tau["ts"], n, f"{what_curve} of held-out TS with the loss gap"),
                0.0,
            )
        )
        out.append(
            interval_vs(
                "tangent.curve.bound_gap",
                CLAIM_BOUND,
                _measured(
                    s.tau["log_bound_linf"], n, f"{what_curve} of the l_inf bound with the loss gap"
                ),
                0.0,
            )
        )
        above = sum(1 for _, _, v in s.per_class if math.isfinite(v[1]) and v[1] > 0)
        out.append(
            count_of(
                "tangent.curve.per_class",
                CLAIM_PER_CLASS,
                above,
                len(s.per_class),
                what="classes (interval of tau of the class's TS with its loss gap over epochs "
                "above 0)",
            )
        )
        d = s.tau_diff["ts"]
        out.append(
            beyond(
                "tangent.curve.changes",
                CLAIM_DETREND,
                _measured(d, n, "Kendall tau of epoch-to-epoch changes of TS and of the gap"),
                f"tau of the changes {_fmt_interval(d)}; tau of the epoch index itself with the "
                f"gap {_fmt_interval(s.tau['epoch'])}",
            )
        )
        out.append(
            beyond(
                "tangent.curve.ts_vs_jacobian",
                CLAIM_CURVE_JAC,
                _measured(s.ts_minus_jac, n, "tau(TS, gap) - tau(Jacobian norm, gap) over epochs"),
                f"difference {_fmt_interval(s.ts_minus_jac)} (paired over held-out examples)",
            )
        )
    else:
        for key, claim in (
            ("tangent.curve.ts_gap", CLAIM_CURVE_TS),
            ("tangent.curve.bound_gap", CLAIM_BOUND),
            ("tangent.curve.per_class", CLAIM_PER_CLASS),
        ):
            out.append(not_run(key, claim, "the training-curve task has no result in this run"))
    if grid:
        g = grid_stats(grid)
        n = g.n_converged
        out.append(_primary_verdict(g, n))
        out.append(
            interval_vs(
                "tangent.grid.ts_gap",
                CLAIM_GRID_TS,
                _measured(g.tau["ts_test"], n, "Kendall tau of test TS with the gap across nets"),
                0.0,
            )
        )
        out.append(
            interval_vs(
                "tangent.grid.psi",
                CLAIM_PSI,
                _measured(
                    g.psi["ts_test"],
                    sum(g.psi_groups["ts_test"].values()),
                    "granulated Psi of test TS with the gap (n = groups)",
                ),
                0.0,
            )
        )
        out.append(
            interval_vs(
                "tangent.grid.bound_gap",
                CLAIM_BOUND,
                _measured(
                    g.tau["log_bound_linf"],
                    n,
                    "Kendall tau of the l_inf bound with the gap across nets",
                ),
                0.0,
            )
        )
    else:
        for key, claim in (
            ("tangent.grid.primary", CLAIM_PRIMARY),
            ("tangent.grid.ts_gap", CLAIM_GRID_TS),
            ("tangent.grid.psi", CLAIM_PSI),
            ("tangent.grid.bound_gap", CLAIM_BOUND),
        ):
            out.append(not_run(key, claim, "no grid net has a result in this run"))
    met, made, low = _bound_totals(pairs)
    total_met, total = int(met.sum()), int(made.sum())
    worst = float(low.min()) if np.isfinite(low).any() else math.nan
    out.append(
        beyond(
            "tangent.bounds.check",
            CLAIM_BOUNDS_CHECK,
            Measured(total_met / total if total else None, n=total, what="share of checks met"),
            f"{total_met} of {total} checks met (bound >= TS within a relative {BOUND_RTOL:g}); "
            + "; ".join(f"{f}: {int(a)}/{int(b)}" for f, a, b in zip(BOUND_FAMILIES, met, made))
            + (
                f"; smallest ratio bound / TS on the curve {worst:.3g}"
                if math.isfinite(worst)
                else ""
            ),
        )
    )
    return out


# ---- text -------------------------------------------------------------------------------------


def _fmt(v: float, spec: str = "+.3f") -> str:
    return "n/a" if v is None or not math.isfinite(v) else format(v, spec)


def _fmt_interval(v: tuple[float, float, float]) -> str:
    value, lo, hi = v
    if not math.isfinite(value):
        return "n/a"
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return _fmt(value)
    return f"{_fmt(value)} [{_fmt(lo, '+.2f')}, {_fmt(hi, '+.2f')}]"


def _g(v: float) -> str:
    return f"{v:g}"


def protocol(pairs: Pairs) -> str:
    """What was run: sizes, seeds, criteria and statistics (no outcomes)."""
    curves, grid = split(pairs)
    parts = []
    if curves:
        t, r = curves[0]
        arch = "-".join(
            str(v)
            for v in [784 if r.dataset == "fashion-mnist" else 64] + [t.width] * t.depth + [10]
        )
        n_held = len(r.labels)
        n_b = t.per_class_bounds * 10
        parts.append(
            f"Training curve (the paper's experiment): one ReLU MLP {arch} ({r.n_params:,} "
            f"parameters) trained on {t.n_train:,} {r.dataset} examples for {t.epochs} epochs "
            f"(Adam, lr {_g(t.lr)}, batch {t.batch_size}, squared error on one-hot targets, "
            f"seed {t.seed}); after every epoch, tangent sensitivity (mean over the 10 outputs), "
            f"the input-Jacobian norm and nngeom's bounds on {n_held} held-out test examples "
            f"({t.per_class} per class; the data-dependent bounds on {n_b} of them), the loss on "
            "them and on the whole training subset. The gap of an epoch is the held-out loss "
            "minus the training loss; Kendall tau over epochs with 95% BCa bootstrap intervals "
            f"over held-out examples ({N_BOOT} resamples). Training criterion recorded: training "
            f"accuracy >= {_g(t.fit_accuracy)} after the last epoch."
        )
    if grid:
        t0 = grid[0][0]
        levels = {f: sorted({getattr(t, f) for t, _ in grid}) for f in GRID_FACTORS}
        seeds = sorted({t.seed for t, _ in grid})
        n_conv = sum(r.converged for _, r in grid)
        parts.append(
            f"Grid (Jiang et al. 2020's protocol): {len(grid)} ReLU MLPs, "
            + ", ".join(f"{f} in {[_g(v) for v in levels[f]]}" for f in GRID_FACTORS)
            + f", seeds {seeds}, each trained with cross-entropy on its n_train {t0.dataset} "
            f"examples until its training cross-entropy was <= {_g(t0.target_ce)} or its "
            f"training accuracy >= {_g(t0.target_acc)} (cap {t0.max_epochs} epochs); {n_conv} "
            f"of {len(grid)} met the criterion and only those enter the statistics. Gap = "
            "training accuracy minus test accuracy (the whole test set); tangent sensitivity and "
            f"the Jacobian norm on {t0.n_measure} test examples. Primary comparison, declared "
            "before the run: tau(TS, gap) minus tau(input-Jacobian norm, gap), paired BCa "
            f"bootstrap over nets ({N_BOOT} resamples); every other measure is secondary. "
            f"Granulated Psi over groups of >= {GROUP_MIN} nets differing in one factor, "
            "interval by resampling groups."
        )
    if not parts:
        return "No tangent task has finished."
    return " ".join(parts)


def departures(pairs: Pairs) -> list[str]:
    """Where this run departs from the paper's protocol."""
    curves, grid = split(pairs)
    out = [
        "CIFAR-10 (the paper's data) is not available offline here, nor is MNIST (the follow-up "
        "paper's): Fashion-MNIST stands in for both.",
        "The paper's exact bound statements (Theorems 1-2 and Eq. (1) of the journal version) "
        "were not retrieved: the journal page and the arXiv HTML reachable here hold the "
        "section headings and the description of Sens^1_tan (input-free, built from layer-wise "
        "l_inf norms of the parameters) but not the formulas. The bounds used are nngeom's own: "
        "from the closed form TS_k(x)^2 = sum_l ||delta_l||^2 ||J_l||_F^2, the triangle "
        "inequality over input-output paths (|W| paths; layer-wise l_inf with path counts), "
        "submultiplicativity (operator norms), and the same with the units active at x "
        "(data-dependent).",
        "The paper's own experimental protocol (architecture, optimiser, epochs) was not "
        "retrieved either; the training curve follows the authors' public code for the "
        "follow-up paper (Rácz et al. 2023, tansens_public: 3 hidden ReLU layers of width "
        "3000 with dropout 0.25/0.5/0.5, LeCun-normal init, Adam lr 1e-5, batch 32, 60 "
        "epochs, squared error on one-hot targets, TS per class on the whole test set, "
        "Pearson correlation over epochs with |train loss - test loss|). Here: no dropout, "
        "PyTorch's default init, Kendall tau (with intervals) instead of Pearson, and the "
        "signed gap (held-out loss minus training loss) measured on the held-out examples "
        "whose TS is measured, so that one bootstrap resample moves both.",
    ]
    if curves:
        t, r = curves[0]
        if (t.width, t.n_train, t.epochs) != (3000, 60000, 60):
            out.append(
                f"This scale's curve is reduced: width {t.width} (authors: 3000), "
                f"{t.n_train:,} training examples (the whole set: 60,000), {t.epochs} epochs "
                f"(60) at lr {_g(t.lr)} (1e-5), TS on {len(r.labels)} held-out examples (the "
                "whole test set); `--scale full` keeps the authors' sizes."
            )
    if grid:
        sizes = sorted({t.n_train for t, _ in grid})
        out.append(
            "The cross-model grid is not in the paper: it applies Jiang et al. 2020's protocol "
            "(one training criterion, Kendall tau, granulated Psi) to the paper's claim, on "
            f"{len(grid)} fully connected nets trained on {', '.join(f'{n:,}' for n in sizes)} "
            "examples (Jiang et al.: thousands of convolutional nets on the whole of CIFAR-10 "
            "and SVHN)."
        )
        batches = sorted({t.batch_size for t, _ in grid})
        if len(sizes) > 1:
            out.append(
                "The grid varies the training-set size, which Jiang et al. hold fixed: at one "
                "size (2,000 examples) the gaps of nets trained to 99% training accuracy "
                "spread by less than 0.02 over width, depth, learning rate and batch size, "
                "too little for a rank correlation to separate from noise"
                + (f"; the batch size is held at {batches[0]}." if len(batches) == 1 else ".")
            )
    return out


def notes(pairs: Pairs) -> list[str]:
    """Facts of this run the reader needs next to the verdicts (generated from the results)."""
    curves, grid = split(pairs)
    out = []
    if curves:
        t, r = curves[0]
        state = "met" if r.converged else "did not meet"
        out.append(
            f"Training curve: training accuracy {r.train_acc[-1]:.4f} and test accuracy "
            f"{r.test_acc[-1]:.4f} after epoch {len(r.train_acc)}; the net {state} the recorded "
            f"criterion (training accuracy >= {_g(t.fit_accuracy)})."
        )
    if grid:
        missed = [(t, r) for t, r in grid if not r.converged]
        if missed:
            out.append(
                f"{len(missed)} of {len(grid)} grid nets did not meet the training criterion and "
                "are excluded from every grid statistic (listed in the table of excluded nets)."
            )
        else:
            out.append(f"All {len(grid)} grid nets met the training criterion.")
    return out


def tables(pairs: Pairs) -> list[Table]:
    """The curve's associations, per-epoch values and classes; the grid's measures and its
    excluded nets; the bounds' checks."""
    curves, grid = split(pairs)
    out: list[Table] = []
    if curves:
        t, r = curves[0]
        s = curve_stats(r)
        out.append(
            Table(
                caption="Training curve: Kendall tau over epochs of each predictor with the gap "
                "(held-out loss minus training loss), and of their epoch-to-epoch changes; 95% "
                f"BCa intervals over the {s.n_examples} held-out examples",
                header=["predictor", "tau with the gap", "tau of the changes"],
                rows=[
                    [label, _fmt_interval(s.tau[k]), _fmt_interval(s.tau_diff[k])]
                    for k, label in CURVE_PREDICTORS.items()
                ],
            )
        )
        gap = np.asarray(r.heldout_loss).mean(1) - np.asarray(r.train_loss)
        out.append(
            Table(
                caption="Training curve, per epoch (losses: squared error on one-hot targets)",
                header=[
                    "epoch",
                    "train loss",
                    "held-out loss",
                    "gap",
                    "train acc",
                    "test acc",
                    "TS",
                    "Jacobian",
                    "log10 l_inf bound",
                ],
                rows=[
                    [
                        e + 1,
                        f"{r.train_loss[e]:.4f}",
                        f"{float(np.mean(r.heldout_loss[e])):.4f}",
                        f"{gap[e]:+.4f}",
                        f"{r.train_acc[e]:.3f}",
                        f"{r.test_acc[e]:.3f}",
                        f"{float(np.mean(r.ts[e])):.4g}",
                        f"{float(np.mean(r.jac[e])):.4g}",
                        f"{r.log_bound_linf[e]:.2f}",
                    ]
                    for e in range(len(r.train_loss))
                ],
            )
        )
        out.append(
            Table(
                caption="Training curve per class: Kendall tau over epochs of the class's mean TS "
                "with its loss gap (held-out loss of the class minus its training loss), 95% BCa "
                "interval over the class's held-out examples",
                header=["class", "held-out examples", "tau [95% CI]"],
                rows=[[c, n, _fmt_interval(v)] for c, n, v in s.per_class],
            )
        )
    if grid:
        g = grid_stats(grid)
        out.append(
            Table(
                caption=f"Grid: each measure against the gap across the {g.n_converged} nets "
                f"that met the criterion (of {g.n_nets}), in the order declared before the run; "
                "tau with 95% BCa interval over nets, granulated Psi with its interval over "
                f"groups of >= {GROUP_MIN} nets, psi per varied factor",
                header=["measure", "role", "tau [95% CI]", "Psi [95% CI]", "psi per factor"],
                rows=[
                    [
                        label,
                        role,
                        _fmt_interval(g.tau[k]),
                        _fmt_interval(g.psi[k]),
                        " ".join(
                            f"{f}={_fmt(g.psi_per_factor[k][f], '+.2f')}({g.psi_groups[k][f]})"
                            for f in g.vary
                        ),
                    ]
                    for k, (label, role) in GRID_MEASURES.items()
                ],
            )
        )
        missed = [(t, r) for t, r in grid if not r.converged]
        out.append(
            Table(
                caption="Grid nets that did not meet the training criterion (excluded)",
                header=[*GRID_FACTORS, "seed", "stopped", "epochs", "train acc", "train CE"],
                rows=[
                    [
                        *(_g(getattr(t, f)) for f in GRID_FACTORS),
                        t.seed,
                        r.stopped,
                        r.epochs,
                        _fmt(r.train_acc, ".4f"),
                        _fmt(r.train_ce, ".4f"),
                    ]
                    for t, r in missed
                ]
                or [["none", *([""] * (len(GRID_FACTORS) + 4))]],
            )
        )
    met, made, low = _bound_totals(pairs)
    out.append(
        Table(
            caption="nngeom's bounds on tangent sensitivity (its own derivation, not the paper's "
            "statements) against the measured TS: input-free bounds against max_k TS_k(x) at "
            "every measured example, data-dependent ones against every TS_k(x) at their "
            f"examples; a check is met when TS <= bound * (1 + {BOUND_RTOL:g})",
            header=["bound", "checks met", "checks made", "smallest bound / TS (curve)"],
            rows=[
                [BOUND_LABELS[f], int(a), int(b), _fmt(float(lo), ".3g")]
                for f, a, b, lo in zip(BOUND_FAMILIES, met, made, low)
            ],
        )
    )
    return out
