"""The chaos study's figures, each saved through :func:`~nngeom.studies._base.save_figure`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .._base import Figure, save_figure
from .._figures import make_figures
from .._figures import pyplot as _plt
from .._typed import Pairs, pairs_of
from .analysis import (
    DIVERGED_ABOVE,
    _by_seed,
    _forecasts,
    _main,
    _main_n,
    _valid_of,
    kaplan_meier,
    pooled_nrmse,
)
from .tasks import (
    LABELS,
    PREDICTORS,
    DirectMLP,
    DirectResult,
    ForecastResult,
    Laser,
    LaserResult,
    LogisticMap,
    LogisticResult,
)

__all__ = ["figures"]

_Panel = tuple[Any, int, dict[str, dict[int, ForecastResult]]]


def _color(predictor: str) -> str:
    """One colour per predictor in every figure."""
    return f"C{PREDICTORS.index(predictor)}"


def figures(pairs: Pairs, figdir: Path) -> list[Figure]:
    return make_figures(
        pairs,
        figdir,
        (
            horizon_figure,
            valid_time_figure,
            decomposition_figure,
            bump_figure,
            learning_figure,
            logistic_figure,
            laser_figure,
        ),
    )


def _tau_panels(pairs: Pairs, height: float) -> tuple[Any, list[_Panel], list] | None:
    """A row of panels ``height`` high, one per tau of the main forecasts: ``(figure, panels,
    main forecasts)``, each panel ``(axes, tau, {predictor: its results by seed})``; None
    without main forecasts."""
    runs = _main(pairs)
    n = _main_n(pairs)
    if not runs or n is None:
        return None
    taus = sorted({t.tau for t, _ in runs})
    fig, axes = _plt().subplots(1, len(taus), figsize=(6.5 * len(taus), height), squeeze=False)
    panels = [
        (ax, tau, {p: _by_seed(runs, tau, p, n) for p in PREDICTORS})
        for ax, tau in zip(axes[0], taus, strict=True)
    ]
    return fig, panels, runs


def horizon_figure(pairs: Pairs, figdir: Path) -> Figure | None:
    made = _tau_panels(pairs, 4.2)
    if made is None:
        return None
    fig, panels, _ = made
    for ax, tau, by_predictor in panels:
        for p, rs in by_predictor.items():
            curves = [np.asarray(r.curve) for r in rs.values() if r.curve]
            if not curves:
                continue
            c = np.sqrt(np.mean(np.minimum(np.array(curves), 10.0) ** 2, axis=0))
            ax.plot(np.arange(1, c.size + 1), np.log10(c), color=_color(p), label=LABELS[p])
        direct = pairs_of(pairs, DirectMLP, DirectResult)
        hs = sorted({t.horizon for t, _ in direct if t.tau == tau})
        if hs:
            ys = [
                np.sqrt(np.mean([r.nrmse**2 for t, r in direct if t.tau == tau and t.horizon == h]))
                for h in hs
            ]
            ax.plot(hs, np.log10(ys), "k*", ms=10, label="MLP, direct (one net per horizon)")
        ax.axvline(84, color="grey", lw=0.5, ls="--")
        ax.set_xscale("log")
        ax.set_xlabel("prediction time (time units)")
        ax.set_ylabel("log10 NRMSE")
        ax.set_title(f"Mackey-Glass tau={tau}: T=6 predictors iterated")
        ax.set_ylim(-4, 1.1)
    panels[0][0].legend(fontsize=7)
    fig.tight_layout()
    return Figure(
        save_figure(fig, figdir, "chaos_horizon", tight=True),
        "log10 NRMSE vs prediction time (log axis): each T=6 predictor iterated (the ESN runs "
        "free on its own output), pooled over seeds and start points; stars: the MLP trained "
        "directly per horizon at the same start points.",
        paper="Lapedes & Farber: log10 normalised error vs prediction time for the net, the linear "
        "predictive method and the Gabor-Volterra-Wiener polynomial (Mackey-Glass).",
    )


def valid_time_figure(pairs: Pairs, figdir: Path) -> Figure | None:
    made = _tau_panels(pairs, 4.0)
    if made is None:
        return None
    fig, panels, runs = made
    for ax, tau, by_predictor in panels:
        for p, rs in by_predictor.items():
            t, c, cap = _valid_of(rs)
            if t.size == 0:
                continue
            km = kaplan_meier(t, c)
            xs = [0.0] + [u for u, _ in km] + [float(cap)]
            ys = [1.0] + [s for _, s in km] + [km[-1][1] if km else 1.0]
            (line,) = ax.step(
                xs, ys, where="post", color=_color(p), label=f"{LABELS[p]} ({int(c.sum())} cens.)"
            )
            if c.any():
                ax.plot([cap], [ys[-1]], "|", ms=14, mew=2, color=line.get_color())
        ax.axhline(0.5, color="grey", lw=0.5, ls="--")
        ax.set_xscale("symlog", linthresh=10)
        ax.set_xlim(0, 1.1 * max((len(r.curve) for _, r in runs), default=1))
        ax.set_xlabel("valid prediction time (time units)")
        ax.set_ylabel("share of forecasts still valid")
        ax.set_title(f"tau={tau}: Kaplan-Meier, censored at the forecast's end (|)")
    panels[0][0].legend(fontsize=7)
    fig.tight_layout()
    return Figure(
        save_figure(fig, figdir, "chaos_valid_time", tight=True),
        "Valid prediction time of each free-running predictor: share of forecasts whose error "
        "has stayed within 0.4 std (Kaplan-Meier). Forecasts still valid when the run ends are "
        "censored there (tick); the median is where a curve crosses 1/2, and is only a lower "
        "bound when it does not.",
        paper=None,
    )


def decomposition_figure(pairs: Pairs, figdir: Path) -> Figure | None:
    dec = [r for _, r in _forecasts(pairs) if r.dec_contrib]
    if not dec:
        return None
    plt = _plt()
    d = dec[0]
    contrib = np.array(d.dec_contrib)
    target = np.array(d.dec_target)
    order = np.argsort(-np.abs(contrib).max(axis=1))[:4]
    fig, axes = plt.subplots(2, 2, figsize=(12, 7.5))
    ax = axes[0][0]
    t = np.arange(target.size)
    ax.plot(t, target, "k", lw=2, label="target x(t+6)")
    ax.plot(t, d.dec_offset + contrib.sum(0), "r--", label="net = offset + sum of units")
    for j in order:
        ax.plot(t, contrib[j], lw=0.8, label=f"2nd-layer unit {j}")
    ax.set_xlabel("test row (time)")
    ax.set_title("trained MLP decomposed into its second-layer units")
    ax.legend(fontsize=7)
    xs, x6 = np.array(d.dec_xt), np.array(d.dec_xt6)
    for ax, j in zip([axes[0][1], axes[1][0], axes[1][1]], order[:3], strict=False):
        sc = ax.scatter(xs, x6, c=contrib[j], s=8, cmap="coolwarm")
        ax.set_xlabel("x(t)")
        ax.set_ylabel("x(t-6)")
        ax.set_title(f"unit {j}'s contribution over the attractor")
        fig.colorbar(sc, ax=ax)
    fig.tight_layout()
    return Figure(
        save_figure(fig, figdir, "chaos_decomposition", tight=True),
        "A trained Lapedes-Farber net (tau=17) as a sum of its second-layer units over 300 test "
        "rows, and three units' contributions over the attractor (projected on x(t), x(t-6)).",
        paper="Lapedes & Farber's explanation: second-layer units are localised bumps whose sum "
        "is the prediction function ('a kind of generalized mode decomposition').",
    )


def bump_figure(pairs: Pairs, figdir: Path) -> Figure | None:
    import torch

    from ...chaos import bump, bump_network, ridge, slab

    plt = _plt()
    g = np.linspace(-2, 2, 61)
    XX, YY = np.meshgrid(g, g)
    P = np.stack([XX.ravel(), YY.ravel()], axis=1)
    panels = [
        ("one sigmoid: a ridge", ridge(P, [1.0, 0.6], 0.2, 4.0)),
        ("two opposite sigmoids: a slab", slab(P, [1.0, 0.0], -0.5, 0.5, 8.0)),
        ("2nd-layer sigmoid of 2 slabs: a bump", bump(P, [0.0, 0.0], 0.5, 8.0, 10.0)),
    ]
    net = bump_network([[-1.0, -0.8], [0.6, 0.9], [0.9, -0.9]], 0.45, [1.0, 0.7, -0.6], 8.0, 10.0)
    with torch.no_grad():
        total = net(torch.from_numpy(P))[:, 0].numpy()
    panels.append(("linear output: a sum of bumps", total))
    fig, axes = plt.subplots(1, 4, figsize=(15, 3.6))
    for ax, (title, z) in zip(axes, panels, strict=True):
        im = ax.contourf(XX, YY, z.reshape(XX.shape), levels=12, cmap="viridis")
        ax.set_title(title, fontsize=10)
        ax.set_aspect("equal")
        fig.colorbar(im, ax=ax, shrink=0.8)
    fig.tight_layout()
    return Figure(
        save_figure(fig, figdir, "chaos_bumps", tight=True),
        "The bump construction: a first-layer sigmoid is a ridge; two opposite ridges make a "
        "slab; a second-layer sigmoid of slabs in both directions makes a localised bump; the "
        "linear output sums bumps (a net built by nngeom.chaos.bump_network).",
        paper="Lapedes & Farber, 'How Neural Nets Work': why two hidden layers suffice.",
    )


def learning_figure(pairs: Pairs, figdir: Path) -> Figure | None:
    runs = [(t, r) for t, r in _forecasts(pairs) if t.tau == 17]
    ns = sorted({t.n_train for t, _ in runs})
    if len(ns) < 2:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for p in PREDICTORS:
        per_n = {n: _by_seed(runs, 17, p, n) for n in ns}
        common = set.intersection(*(set(v) for v in per_n.values()))
        if not common:
            continue
        ivs = [pooled_nrmse({s: per_n[n][s] for s in sorted(common)}) for n in ns]
        ys = np.array([iv.value if iv else np.nan for iv in ivs])
        lo = np.array([iv.low if iv else np.nan for iv in ivs])
        hi = np.array([iv.high if iv else np.nan for iv in ivs])
        if (ys >= DIVERGED_ABOVE).any():
            continue
        (line,) = ax.loglog(ns, ys, "o-", color=_color(p), label=LABELS[p])
        ax.fill_between(ns, lo, hi, color=line.get_color(), alpha=0.15)
    ax.set_xlabel("training rows")
    ax.set_ylabel("NRMSE at T=6 (same test rows)")
    ax.legend(fontsize=7)
    ax.set_title("Data efficiency (Mackey-Glass tau=17)")
    fig.tight_layout()
    return Figure(
        save_figure(fig, figdir, "chaos_learning_curve", tight=True),
        "NRMSE at T=6 vs training rows, every predictor, with 95% bootstrap bands.",
        paper="Lapedes & Farber: the net is 'extremely parsimonious in its requirements for data "
        "points' (about 500 points).",
    )


def logistic_figure(pairs: Pairs, figdir: Path) -> Figure | None:
    lg = pairs_of(pairs, LogisticMap, LogisticResult)
    if not lg:
        return None
    plt = _plt()
    _, r = lg[0]
    g = np.array(r.grid)
    tx = np.array(r.train_x)
    fig, ax = plt.subplots(figsize=(5, 4.5))
    ax.plot(g, 4 * g * (1 - g), "k", lw=3, alpha=0.4, label="parabola 4x(1-x)")
    for t, res in lg:
        ax.plot(g, res.learned, "--", lw=1, label=f"learned by a 1-5-5-1 net (seed {t.seed})")
    ax.plot(tx, 4 * tx * (1 - tx), "b.", ms=2, label="training points")
    ax.set_xlabel("x(t)")
    ax.set_ylabel("x(t+1)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return Figure(
        save_figure(fig, figdir, "chaos_logistic", tight=True),
        "The nets' learned logistic maps against the parabola.",
        paper="Lapedes & Farber: the map learned from the logistic series is the parabola.",
    )


def laser_figure(pairs: Pairs, figdir: Path) -> Figure | None:
    ex = [r for _, r in pairs_of(pairs, Laser, LaserResult) if r.ex_truth]
    if not ex:
        return None
    plt = _plt()
    e = ex[0]
    fig, ax = plt.subplots(figsize=(8, 3.5))
    n0 = len(e.ex_ctx)
    ax.plot(range(n0), e.ex_ctx, "k", label="context")
    ax.plot(range(n0, n0 + len(e.ex_truth)), e.ex_truth, "k", alpha=0.4, label="truth")
    ax.plot(range(n0, n0 + len(e.ex_pred)), e.ex_pred, "r--", label="MLP, iterated")
    ax.legend(fontsize=8)
    ax.set_xlabel("time step")
    fig.tight_layout()
    return Figure(
        save_figure(fig, figdir, "chaos_laser", tight=True),
        "Santa Fe laser (real data, not in the paper): a free-running MLP forecast.",
        paper=None,
    )
