"""Tests of nngeom.plots: each function draws into the given Axes, labels it, draws what it says."""

from __future__ import annotations

import dataclasses
import math

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from matplotlib.collections import LineCollection, PathCollection, PolyCollection
from matplotlib.path import Path
from torch import nn

import nngeom as ng
from nngeom import plots
from nngeom.hessian import HessianOperator, spectral_density

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def ax():
    fig, ax = plt.subplots()
    yield ax
    plt.close(fig)


def _labelled(ax) -> bool:
    return bool(ax.get_xlabel()) and bool(ax.get_ylabel())


# --------------------------------------------------------------------------------------------
# models and slices (computed once per module)
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def mlp_slice():
    model = ng.mlp([4, 8, 8, 3], seed=1).double().eval()
    x = np.random.default_rng(1).normal(size=(3, 4)) * 3
    r = ng.regions_2d(model, ng.plane_through(*x), decision_boundary=True)
    return model, x, r


def _conv_net() -> nn.Module:
    with torch.random.fork_rng():
        torch.manual_seed(2)
        net = nn.Sequential(
            nn.Conv2d(1, 2, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(2 * 2 * 2, 3)
        )
    return net.double().eval()


@pytest.fixture(scope="module")
def conv_slice():
    model = _conv_net()
    X = torch.randn(3, 1, 6, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    X = X * 2
    r = ng.regions_2d(model, ng.plane_through(X[0], X[1], X[2]), decision_boundary=True)
    return model, X, r


def _polys(ax) -> PolyCollection:
    found = [c for c in ax.collections if isinstance(c, PolyCollection)]
    assert found, "no polygons drawn"
    return found[0]


def _neighbours(r) -> set[tuple[int, int]]:
    """Pairs of polygons sharing an edge, by brute force: a probe just outside the middle of each
    edge, located with matplotlib's point-in-polygon test against every polygon."""
    owners, probes = [], []
    s0, s1, t0, t1 = r.bounds
    for i in range(r.n_regions):
        p = r.polygon(i)
        for a, b in zip(p, np.roll(p, -1, 0), strict=True):
            e = b - a
            L = float(np.hypot(*e))
            if L < 1e-9:
                continue
            q = (a + b) / 2 + 1e-7 * np.array([e[1], -e[0]]) / L
            if s0 < q[0] < s1 and t0 < q[1] < t1:
                owners.append(i)
                probes.append(q)
    probes = np.array(probes)
    owners = np.array(owners)
    pairs = set()
    for j in range(r.n_regions):
        inside = Path(r.polygon(j)).contains_points(probes)
        for i in owners[inside]:
            if i != j:
                pairs.add((int(min(i, j)), int(max(i, j))))
    return pairs


# --------------------------------------------------------------------------------------------
# regions
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("which", ["mlp", "conv"])
def test_regions_by_piece(which, mlp_slice, conv_slice, ax):
    _, _, r = mlp_slice if which == "mlp" else conv_slice
    out = plots.regions(r, ax=ax)
    assert out is ax
    assert ax.get_xlabel() == "s (along u)" and ax.get_ylabel() == "t (along v)"
    coll = _polys(ax)
    assert len(coll.get_paths()) == r.n_regions
    faces = coll.get_facecolors()
    assert faces.shape[0] == r.n_regions
    # one colour per linear piece
    for p in np.unique(r.piece_ids):
        rows = faces[r.piece_ids == p]
        assert np.allclose(rows, rows[0])
    # neighbouring polygons of different pieces are told apart
    pairs = _neighbours(r)
    assert pairs
    for i, j in pairs:
        if r.piece_ids[i] != r.piece_ids[j]:
            assert not np.allclose(faces[i], faces[j]), (i, j)
    # the decision boundary, the three anchors, the limits and aspect
    lines = [c for c in ax.collections if isinstance(c, LineCollection)]
    assert len(lines) == 1 and len(lines[0].get_segments()) == len(r.decision_boundary) > 0
    assert {t.get_text() for t in ax.texts} >= {"x0", "x1", "x2"}
    assert ax.get_xlim() == pytest.approx(r.bounds[:2])
    assert ax.get_ylim() == pytest.approx(r.bounds[2:])
    assert ax.get_aspect() == 1.0


@pytest.mark.parametrize("which", ["mlp", "conv"])
def test_regions_by_class(which, mlp_slice, conv_slice, ax):
    _, _, r = mlp_slice if which == "mlp" else conv_slice
    assert plots.regions(r, ax=ax, color_by="class") is ax
    assert _labelled(ax)
    faces = _polys(ax).get_facecolors()
    for c in np.unique(r.classes):
        rows = faces[r.classes == c]
        assert np.allclose(rows, rows[0])
    firsts = [faces[np.flatnonzero(r.classes == c)[0]] for c in np.unique(r.classes)]
    for i in range(len(firsts)):
        for j in range(i):
            assert not np.allclose(firsts[i], firsts[j])
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert {f"class {c}" for c in np.unique(r.classes)} <= set(legend)
    assert "decision boundary" in legend
    # without stored classes: the same colours from the polygons' affine maps at their centroids
    fig2, ax2 = plt.subplots()
    try:
        bare = dataclasses.replace(r, classes=None, decision_boundary=None)
        plots.regions(bare, ax=ax2, color_by="class")
        assert np.allclose(_polys(ax2).get_facecolors(), faces)
        assert not [c for c in ax2.collections if isinstance(c, LineCollection)]
    finally:
        plt.close(fig2)


def test_regions_points_projected(mlp_slice, conv_slice, ax):
    _, x, r = mlp_slice
    pts = np.stack([x[1], x[2], x[0], x[0] + 0.5 * (x[1] - x[0]) + 0.25 * (x[2] - x[0])])
    plots.regions(r, ax=ax, points=pts, point_labels=["a", "b", "c", "d"])
    (sc,) = [c for c in ax.collections if isinstance(c, PathCollection)]
    assert np.asarray(sc.get_offsets()) == pytest.approx(
        np.array([[1, 0], [0, 1], [0, 0], [0.5, 0.25]]), abs=1e-9
    )
    assert {"a", "b", "c", "d"} <= {t.get_text() for t in ax.texts}
    # a point off the plane lands at its least-squares projection
    st = np.array([[0.3, 0.7]])
    off = r.to_input(st) + np.linalg.svd(np.stack([r.u, r.v]))[2][-1]  # + a normal direction
    assert plots.slice_coordinates(r, off) == pytest.approx(st, abs=1e-9)
    # conv: points of the input shape (N, 1, 6, 6), and one point of that shape
    _, X, rc = conv_slice
    fig2, ax2 = plt.subplots()
    try:
        plots.regions(rc, ax=ax2, points=X[[1, 2]], point_labels=[1, 2])
        (sc,) = [c for c in ax2.collections if isinstance(c, PathCollection)]
        assert np.asarray(sc.get_offsets()) == pytest.approx(np.array([[1, 0], [0, 1]]), abs=1e-9)
    finally:
        plt.close(fig2)
    assert plots.slice_coordinates(rc, X[1]) == pytest.approx(np.array([[1.0, 0.0]]), abs=1e-9)


def test_regions_options(mlp_slice, ax):
    _, _, r = mlp_slice
    narrow = dataclasses.replace(r, bounds=(-0.2, 0.5, -0.2, 1.2))  # holds x0 and x2, not x1
    plots.regions(narrow, ax=ax, boundary=False)
    assert not [c for c in ax.collections if isinstance(c, LineCollection)]
    names = {t.get_text() for t in ax.texts}
    assert {"x0", "x2"} <= names and "x1" not in names
    for option in ({"anchors": False}, {"r": dataclasses.replace(r, bounds=(-1e3, 1e3, -1, 1))}):
        fig2, ax2 = plt.subplots()
        try:
            plots.regions(**{"r": r, "ax": ax2, **option})
            assert not ax2.texts  # not asked for, or too close together to tell apart
        finally:
            plt.close(fig2)


def test_regions_bad_input(mlp_slice, ax):
    _, x, r = mlp_slice
    with pytest.raises(ng.InvalidInput, match="Regions2D"):
        plots.regions(ng.knots(ng.mlp([1, 2, 1]), -1, 1), ax=ax)
    with pytest.raises(ng.InvalidInput, match="Regions2D"):
        plots.regions("regions", ax=ax)
    with pytest.raises(ng.InvalidInput, match="color_by"):
        plots.regions(r, ax=ax, color_by="layer")
    with pytest.raises(ng.InvalidInput, match="points"):
        plots.regions(r, ax=ax, points=np.zeros((2, 5)))
    with pytest.raises(ng.InvalidInput, match="NaN"):
        plots.regions(r, ax=ax, points=np.full((1, 4), np.nan))
    with pytest.raises(ng.InvalidInput, match="labels"):
        plots.regions(r, ax=ax, points=x, point_labels=["a"])
    with pytest.raises(ng.InvalidInput, match="Axes"):
        plots.regions(r, ax="axes")
    one_output = dataclasses.replace(
        r, classes=None, slopes=r.slopes[:, :1], intercepts=r.intercepts[:, :1]
    )
    with pytest.raises(ng.InvalidInput, match="2 outputs"):
        plots.regions(one_output, ax=ax, color_by="class")


# --------------------------------------------------------------------------------------------
# knots
# --------------------------------------------------------------------------------------------
def test_knots_infinite_and_finite(ax):
    net = ng.mlp([1, 6, 6, 1], seed=0).double()
    k = ng.knots(net, -math.inf, math.inf)
    assert k.count > 0
    assert plots.knots(k, ax=ax, model=net) is ax
    assert ax.get_xlabel() == "x" and ax.get_ylabel() == "f(x)"
    curve, model_line, dots = ax.lines
    lo, hi = ax.get_xlim()
    assert math.isfinite(lo) and math.isfinite(hi)
    assert lo < k.positions.min() and hi > k.positions.max()
    assert len(dots.get_xdata()) == k.count
    assert np.asarray(dots.get_ydata()) == pytest.approx(k.evaluate(k.positions)[:, 0])
    # the pieces are the network: the model's own output on the same grid
    assert np.asarray(model_line.get_ydata()) == pytest.approx(
        np.asarray(curve.get_ydata()), abs=1e-9
    )
    fig2, ax2 = plt.subplots()
    try:
        kf = ng.knots(net, -1.0, 2.0)
        plots.knots(kf, ax=ax2)
        assert ax2.get_xlim() == pytest.approx((-1.0, 2.0))
        assert len(ax2.lines[0].get_xdata()) >= 2000
    finally:
        plt.close(fig2)


def test_knots_multi_output_and_bad_input(ax):
    net = ng.mlp([1, 4, 2], seed=3).double()
    k = ng.knots(net, -math.inf, 0.5)
    plots.knots(k, ax=ax, output=1)
    assert ax.get_ylabel() == "f(x)[1]"
    assert ax.get_xlim()[1] == 0.5
    with pytest.raises(ng.InvalidInput, match="output"):
        plots.knots(k, ax=ax, output=2)
    with pytest.raises(ng.InvalidInput, match="Knots"):
        plots.knots(np.zeros(3), ax=ax)
    with pytest.raises(ng.InvalidInput, match="n must"):
        plots.knots(k, ax=ax, n=1)


# --------------------------------------------------------------------------------------------
# spectrum
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_hessian():
    net = ng.mlp([2, 3, 1], seed=0).double()
    g = torch.Generator().manual_seed(0)
    X = torch.randn(12, 2, dtype=torch.float64, generator=g)
    y = torch.randn(12, 1, dtype=torch.float64, generator=g)
    ev = ng.hessian_eigenvalues(net, X, y)
    op = HessianOperator(net, X, y)
    sd = spectral_density(op.matvec, op.n, n_probes=2, steps=8)
    return ev, sd


def test_spectrum(tiny_hessian, ax):
    ev, sd = tiny_hessian
    assert plots.spectrum(ev, ax=ax, bins=20) is ax
    assert ax.get_xlabel() == "eigenvalue" and ax.get_ylabel() == "density"
    assert len(ax.patches) == 20
    heights = np.array([p.get_height() for p in ax.patches])
    widths = np.array([p.get_width() for p in ax.patches])
    assert (heights * widths).sum() == pytest.approx(1.0)  # a density
    fig2, ax2 = plt.subplots()
    try:
        plots.spectrum(ev, sd, ax=ax2, log=True, bins=10)
        assert ax2.get_xscale() == "symlog" and _labelled(ax2)
        assert len(ax2.patches) == 10 and len(ax2.lines) == 1
    finally:
        plt.close(fig2)
    fig3, ax3 = plt.subplots()
    try:
        plots.spectrum(density=sd, ax=ax3)
        (line,) = ax3.lines
        x, y = np.asarray(line.get_xdata()), np.asarray(line.get_ydata())
        assert np.trapezoid(y, x) == pytest.approx(1.0, abs=0.02)
    finally:
        plt.close(fig3)


def test_spectrum_bad_input(tiny_hessian, ax):
    ev, _ = tiny_hessian
    with pytest.raises(ng.InvalidInput, match="eigenvalues"):
        plots.spectrum(ax=ax)
    with pytest.raises(ng.InvalidInput, match="SpectralDensity"):
        plots.spectrum(density=ev, ax=ax)
    with pytest.raises(ng.InvalidInput, match="NaN"):
        plots.spectrum(np.array([1.0, np.nan]), ax=ax)
    with pytest.raises(ng.InvalidInput, match="1-D"):
        plots.spectrum(np.zeros((2, 2)), ax=ax)
    with pytest.raises(ng.InvalidInput, match="bins"):
        plots.spectrum(ev, ax=ax, bins=0)


# --------------------------------------------------------------------------------------------
# sensitivity
# --------------------------------------------------------------------------------------------
def test_sensitivity(mlp_slice, ax):
    model, _, _ = mlp_slice
    X = torch.randn(40, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(4)) * 3
    values = ng.tangent_sensitivity(model, X)
    with torch.no_grad():
        classes = model(X).argmax(1)
    n_classes = len(torch.unique(classes))
    assert plots.sensitivity(values, classes, ax=ax, bins=12) is ax
    assert _labelled(ax)
    assert len(ax.patches) == n_classes  # one step outline per class
    assert len(ax.get_legend().get_texts()) == n_classes
    fig2, ax2 = plt.subplots()
    try:
        plots.sensitivity(values, ax=ax2, bins=12)
        assert len(ax2.patches) == 12
        assert sum(p.get_height() for p in ax2.patches) == 40
    finally:
        plt.close(fig2)
    with pytest.raises(ng.InvalidInput, match="classes"):
        plots.sensitivity(values, classes[:5], ax=ax)
    with pytest.raises(ng.InvalidInput, match="empty"):
        plots.sensitivity(np.zeros(0), ax=ax)


# --------------------------------------------------------------------------------------------
# activation
# --------------------------------------------------------------------------------------------
def test_activation_vaf(ax):
    vaf = ng.VAF(k=3)
    assert plots.activation(vaf, ax=ax) is ax
    assert _labelled(ax)
    curve = ax.lines[0]
    z = np.asarray(curve.get_xdata())
    assert np.asarray(curve.get_ydata()) == pytest.approx(np.maximum(z, 0.0))  # init "relu"
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["VAF", "ReLU"]


def test_activation_copies(ax):
    vaf = ng.VAF(k=3, share="channel", num_channels=3)
    with torch.no_grad():
        vaf.theta.add_(torch.randn(vaf.theta.shape, generator=torch.Generator().manual_seed(0)))
    plots.activation(vaf, ax=ax, reference=None)
    curves = [ln for ln in ax.lines if ln.get_label().startswith("VAF copy")]
    assert len(curves) == 3
    z = np.asarray(curves[2].get_xdata())
    assert np.asarray(curves[2].get_ydata()) == pytest.approx(vaf.evaluate(z, 2))
    fig2, ax2 = plt.subplots()
    try:
        plots.activation(ng.VAF(k=2, share="neuron", num_channels=20), ax=ax2, max_curves=4)
        assert "first 4 of 20" in ax2.get_title()
        plots.activation(nn.PReLU(3), ax=ax2)
        plots.activation(ng.SwishBeta(1.5), ax=ax2, reference="silu")
        assert _labelled(ax2)
    finally:
        plt.close(fig2)


def test_activation_bad_input(ax):
    with pytest.raises(ng.InvalidInput, match="Module"):
        plots.activation(lambda z: z, ax=ax)
    with pytest.raises(ng.InvalidInput, match="element-wise"):
        plots.activation(nn.Linear(1, 2), ax=ax)
    with pytest.raises(ng.InvalidInput, match="element-wise"):
        plots.activation(nn.Softmax(dim=0), ax=ax)
    with pytest.raises(ng.InvalidInput, match="lo < hi"):
        plots.activation(nn.ReLU(), ax=ax, lo=1.0, hi=-1.0)
    with pytest.raises(ng.InvalidInput, match="reference"):
        plots.activation(nn.ReLU(), ax=ax, reference="sigmoid")


# --------------------------------------------------------------------------------------------
# forecast
# --------------------------------------------------------------------------------------------
def test_forecast(ax):
    y = ng.chaos.mackey_glass(120)
    preds = {"good": y + 0.01, "diverged": np.where(np.arange(120) < 60, y, np.inf)}
    assert plots.forecast(y, preds, ax=ax, t=np.arange(120) * 0.5) is ax
    assert _labelled(ax)
    assert len(ax.lines) == 3
    assert np.asarray(ax.lines[0].get_ydata()) == pytest.approx(y)
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels[0] == "true"
    assert labels[1] == f"good (NRMSE {ng.chaos.nrmse(y, y + 0.01):.3g})"
    assert labels[2] == "diverged (NRMSE inf)"
    assert np.isnan(np.asarray(ax.lines[2].get_ydata(), dtype=float)[60:]).all()
    with pytest.raises(ng.InvalidInput, match="match"):
        plots.forecast(y, {"short": y[:10]}, ax=ax)
    with pytest.raises(ng.InvalidInput, match="empty"):
        plots.forecast(y, {}, ax=ax)
    with pytest.raises(ng.InvalidInput, match="t has shape"):
        plots.forecast(y, y, ax=ax, t=np.arange(3))


# --------------------------------------------------------------------------------------------
# common behaviour
# --------------------------------------------------------------------------------------------
def test_new_figure_and_no_show(mlp_slice, tiny_hessian, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("plt.show() called")

    monkeypatch.setattr(plt, "show", refuse)
    _, _, r = mlp_slice
    ev, sd = tiny_hessian
    y = np.sin(np.arange(50) / 5.0)
    axes = [
        plots.regions(r),
        plots.knots(ng.knots(ng.mlp([1, 3, 1], seed=0), -1.0, 1.0)),
        plots.spectrum(ev, sd),
        plots.sensitivity(np.arange(10.0)),
        plots.activation(ng.VAF(k=3)),
        plots.forecast(y, {"same": y}),
    ]
    figs = {a.figure for a in axes}
    try:
        assert len(figs) == len(axes)  # each made its own figure
        assert all(_labelled(a) for a in axes)
    finally:
        for f in figs:
            plt.close(f)


def test_matplotlib_imported_lazily():
    """``import nngeom.plots`` must not load matplotlib: no module-level import of it."""
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(plots))
    top = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    names = [a.name for n in top if isinstance(n, ast.Import) for a in n.names]
    names += [n.module or "" for n in top if isinstance(n, ast.ImportFrom)]
    assert names and not [m for m in names if m.startswith("matplotlib")]


def test_result_objects_plot_themselves_into_a_given_axes():
    import matplotlib.pyplot as plt
    import torch

    import nngeom as ng

    net = ng.mlp([2, 6, 3], dtype=torch.float64)
    r = ng.regions_2d(net, extent=2.0, decision_boundary=True)
    k = ng.knots(ng.mlp([1, 6, 1], dtype=torch.float64), -3.0, 3.0)
    X = torch.randn(12, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    sd = ng.spectral_density(net, X, X[:, :1].repeat(1, 3), n_probes=2, steps=6)
    for obj in (r, k, sd):
        fig, ax = plt.subplots()
        assert obj.plot(ax=ax) is ax
        assert ax.get_xlabel() and ax.get_ylabel()
        plt.close(fig)
