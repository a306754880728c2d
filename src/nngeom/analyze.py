"""One geometric report of your own model: ``analyze(model, X, y, out=DIR)``.

The analysis is split into *parts*, each one task whose result is stored in the run directory's
``results.sqlite`` (keyed by the part, its sizes, the seed and hashes of the model and the data):

* ``planes_within`` / ``planes_across``: exact activation regions and decision boundaries
  (:func:`nngeom.regions_2d`) on planes through data triplets of one class / of three classes,
  drawn with the three points;
* ``lines``: knots (slope changes) along segments between data points
  (:func:`nngeom.regions_on_line`) and Hanin & Rolnick's density of regions along random lines
  through the data (:func:`nngeom.regions_along_lines`);
* ``patterns``: activation-pattern statistics over the data (:func:`nngeom.pattern_statistics`);
* ``hessian``: the loss Hessian's extreme eigenvalues (Lanczos) and its spectral density
  (stochastic Lanczos quadrature) at the model's weights (needs labels ``y``);
* ``sensitivity``: tangent sensitivity per class and its bounds (bounds for piecewise-linear MLPs);
* ``measures``: the generalization measures that apply (input-Jacobian norm; path norm and
  norm products for MLPs; sharpness with labels);
* ``permutation``: pairs of hidden units close to a permutation point (near-identical incoming
  weight vectors) in every dense hidden layer.

A part that does not apply (no labels, a graph model where a measure needs an MLP) is stored as
skipped with its reason; a part that fails is recorded with its error and the others go on.
Killing the run loses at most the part in flight; ``resume=True`` runs only the parts without a
row. ``report.html`` (self-contained, figures embedded) is rebuilt from the stored results.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import html
import json
import math
import os
import signal
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ._callable import make_callable
from ._checks import check_bool
from ._errors import DataError, InvalidInput, NngeomError, RunError, UnsupportedModel
from ._progress import progress_bar
from ._random import derived_seed, torch_generator
from .plots import agg_pyplot

__all__ = ["analyze", "Analysis", "PARTS", "QUICK", "FULL", "sizes_for", "prepare_data"]

STUDY = "analyze"  # the name the parts are stored under in results.sqlite
PARTS = (
    "planes_within",
    "planes_across",
    "lines",
    "patterns",
    "hessian",
    "sensitivity",
    "measures",
    "permutation",
)
TITLES = {
    "planes_within": "Regions on planes through one class",
    "planes_across": "Regions on planes across classes",
    "lines": "Knots along lines between data points",
    "patterns": "Activation patterns over the data",
    "hessian": "Hessian spectrum at the weights",
    "sensitivity": "Tangent sensitivity per class",
    "measures": "Generalization measures",
    "permutation": "Hidden units near a permutation point",
}

# Sizes of each part. Quick: sized for a LeNet-size CNN with 1000 examples on a laptop; the
# planes are then small windows of the triangle of the three points (the regions of a conv net
# crowd around each data point, where every zero pixel's unit crosses its breakpoint, so a full
# plane is many times more work).
QUICK = {
    "n_planes": 1,
    "plane_window": [0.3, 0.31, 0.3, 0.31],
    "n_segments": 1,
    "n_lines": 4,
    "line_length_fraction": 0.05,
    "n_pattern_examples": 1000,
    "n_hessian_examples": 64,
    "lanczos_k": 2,
    "slq_probes": 2,
    "slq_steps": 12,
    "n_sensitivity_examples": 20,
    "ts_probes": 2,
    "n_measure_examples": 200,
    "sharpness_samples": 2,
    "sharpness_iters": 6,
    "top_pairs": 10,
}
FULL = {
    "n_planes": 3,
    "plane_window": [-0.1, 1.1, -0.1, 1.1],
    "n_segments": 8,
    "n_lines": 32,
    "line_length_fraction": 0.25,
    "n_pattern_examples": 100_000,
    "n_hessian_examples": 2000,
    "lanczos_k": 10,
    "slq_probes": 8,
    "slq_steps": 60,
    "n_sensitivity_examples": 500,
    "ts_probes": 4,
    "n_measure_examples": 2000,
    "sharpness_samples": 8,
    "sharpness_iters": 14,
    "top_pairs": 10,
}
SIZE_HELP = {
    "n_planes": "planes per kind (within one class, across classes)",
    "plane_window": "rectangle (s0, s1, t0, t1) of each plane; the points sit at (0,0), (1,0), (0,1)",
    "n_segments": "segments between pairs of data points for knots",
    "n_lines": "random lines through the data (Hanin-Rolnick)",
    "line_length_fraction": "line length as a fraction of the median distance between examples",
    "n_pattern_examples": "examples for activation-pattern statistics",
    "n_hessian_examples": "examples in the Hessian's loss",
    "lanczos_k": "extreme eigenvalues at each end (Lanczos)",
    "slq_probes": "probe vectors of the spectral density",
    "slq_steps": "Lanczos steps per probe of the spectral density",
    "n_sensitivity_examples": "examples for tangent sensitivity",
    "ts_probes": "Hutchinson probes per example (graph models; MLPs are exact)",
    "n_measure_examples": "examples for the generalization measures",
    "sharpness_samples": "noise draws per sharpness step",
    "sharpness_iters": "bisection steps of sharpness",
    "top_pairs": "closest unit pairs listed per layer",
}


def sizes_for(quick: bool, **overrides: Any) -> dict[str, Any]:
    """The sizes of every part (``QUICK`` or ``FULL``), with ``overrides`` replacing entries."""
    sizes = dict(QUICK if quick else FULL)
    for k, v in overrides.items():
        if k not in sizes:
            raise InvalidInput(f"unknown size {k!r}; the sizes are {', '.join(sizes)}")
        sizes[k] = v
    return sizes


@dataclass
class Analysis:
    """What :func:`analyze` did: the run directory, its report and each part's outcome.

    >>> import tempfile, torch, nngeom as ng
    >>> X = torch.randn(20, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    >>> with tempfile.TemporaryDirectory() as d:
    ...     a = ng.analyze(ng.mlp([2, 6, 2], dtype=torch.float64), X, out=d + "/r",
    ...                    quick=True, parts=["patterns"], progress=False)
    ...     print(type(a).__name__, a.report.name)
    Analysis report.html
    """

    path: Path
    report: Path | None
    results: dict[str, dict[str, Any]] = field(default_factory=dict)  # part -> stored result
    failed: dict[str, str] = field(default_factory=dict)  # part -> error
    skipped: dict[str, str] = field(default_factory=dict)  # part -> why it does not apply
    ran: list[str] = field(default_factory=list)  # parts computed by this call
    resumed: list[str] = field(default_factory=list)  # parts already stored before this call
    notes: list[str] = field(default_factory=list)
    interrupted: bool = False
    wall_s: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failed and not self.interrupted


# --------------------------------------------------------------------------------------------
# inputs
# --------------------------------------------------------------------------------------------
def model_input_shape(model: nn.Module) -> tuple[int, ...] | None:
    """The per-example input shape the model declares, when it does (else None).

    A torch.export program records the shape of its example input; a model whose first layer is
    an ``nn.Linear`` takes ``(in_features,)``.
    """
    graph = getattr(model, "graph", None)
    if graph is not None:
        for node in graph.nodes:
            if node.op != "placeholder":
                continue
            val = node.meta.get("val") if hasattr(node, "meta") else None
            shape = getattr(val, "shape", None)
            if shape is not None and len(shape) >= 2:
                try:
                    return tuple(int(s) for s in shape[1:])
                except (TypeError, ValueError):  # symbolic non-batch dimension
                    return None
            break
    for m in model.modules():
        if isinstance(m, nn.Linear):
            return (int(m.in_features),)
        if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
            return None
    return None


def prepare_data(
    model: nn.Module, X: Any, y: Any = None, input_shape: Sequence[int] | None = None
) -> tuple[torch.Tensor, torch.Tensor | None, list[str]]:
    """``X`` in the model's input shape and dtype (reshaped when only the size matches, with a
    note), ``y`` checked against it; raises :class:`DataError` with what to do otherwise."""
    notes: list[str] = []
    if not isinstance(model, nn.Module):
        raise InvalidInput(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if isinstance(X, np.ndarray):
        X = torch.from_numpy(np.ascontiguousarray(X))
    if not isinstance(X, torch.Tensor):
        raise InvalidInput(f"X must be a tensor or numpy array, got {type(X).__name__}")
    if X.is_complex() or X.dtype == torch.bool or X.device.type == "meta":
        raise DataError(f"X must hold real numbers, got {X.dtype} on {X.device.type}")
    if X.ndim < 2 or X.shape[0] == 0:
        raise DataError(f"X must have shape (N, ...) with N >= 1 examples, got {tuple(X.shape)}")
    if X.shape[0] < 3:
        raise DataError(f"X holds {X.shape[0]} examples; the analysis needs at least 3")
    params = list(model.parameters())
    dtype = params[0].dtype if params and params[0].is_floating_point() else torch.float32
    X = X.detach().to(dtype)
    if not torch.isfinite(X).all():
        raise DataError("X contains NaN or inf; remove or replace those examples")
    shape = tuple(int(s) for s in input_shape) if input_shape is not None else None
    if shape is None:
        shape = model_input_shape(model)
    per = tuple(X.shape[1:])
    if shape is not None and per != shape:
        if math.prod(per) == math.prod(shape):
            notes.append(
                f"X of shape {tuple(X.shape)} reshaped to the model's input shape "
                f"{(X.shape[0], *shape)} (same size per example)"
            )
            X = X.reshape(X.shape[0], *shape)
        else:
            raise DataError(
                f"X has {math.prod(per)} numbers per example {per}, the model takes "
                f"{math.prod(shape)} {shape}: give X of shape (N, {', '.join(map(str, shape))}) "
                "or flat (N, d) with the same size"
            )
    try:
        with torch.no_grad():
            out = model(X[:2])
    except Exception as exc:  # noqa: BLE001 - any failure of the user's model on X
        raise DataError(
            f"the model does not accept X of per-example shape {tuple(X.shape[1:])} "
            f"({type(exc).__name__}: {' '.join(str(exc).split())[:160]}); reshape X to the "
            "model's input shape"
        ) from None
    if not isinstance(out, torch.Tensor) or out.ndim != 2:
        raise UnsupportedModel(
            "the model must return one tensor of shape (N, outputs); got "
            f"{getattr(out, 'shape', type(out).__name__)}"
        )
    if y is not None:
        if isinstance(y, np.ndarray):
            y = torch.from_numpy(np.ascontiguousarray(y))
        if not isinstance(y, torch.Tensor) or y.is_complex():
            raise DataError("y must be a real tensor or numpy array (labels or targets)")
        if y.ndim == 2 and y.shape[1] == 1 and out.shape[1] != 1:
            y = y[:, 0]
        if y.shape[0] != X.shape[0]:
            raise DataError(f"y has {y.shape[0]} entries for {X.shape[0]} examples in X")
        if y.is_floating_point() and not torch.isfinite(y).all():
            raise DataError("y contains NaN or inf")
        if y.is_floating_point() and y.ndim == 1 and torch.equal(y, y.round()) and out.shape[1] > 1:
            y = y.long()  # integer labels stored as floats
        if not y.is_floating_point():
            y = y.long()
            if y.ndim != 1:
                raise DataError(f"integer labels y must have shape (N,), got {tuple(y.shape)}")
            if int(y.min()) < 0 or (out.shape[1] > 1 and int(y.max()) >= out.shape[1]):
                raise DataError(
                    f"labels y must be class indices 0..{out.shape[1] - 1} for a model with "
                    f"{out.shape[1]} outputs, got {int(y.min())}..{int(y.max())}"
                )
        else:
            y = y.to(dtype)
    return X, y, notes


def _fingerprint(*tensors: torch.Tensor | None, text: str = "") -> str:
    h = hashlib.sha256(text.encode())
    for t in tensors:
        if t is None:
            h.update(b"none")
            continue
        a = t.detach().cpu().contiguous()
        h.update(str((tuple(a.shape), str(a.dtype))).encode())
        h.update(a.numpy().tobytes() if a.dtype != torch.bfloat16 else a.float().numpy().tobytes())
    return h.hexdigest()[:16]


def model_fingerprint(model: nn.Module) -> str:
    state = model.state_dict()
    code = getattr(model, "code", None) or repr(model)
    return _fingerprint(*(state[k] for k in sorted(state)), text=f"{sorted(state)}{code}")


# --------------------------------------------------------------------------------------------
# helpers of the parts
# --------------------------------------------------------------------------------------------
# Examples the model is run on at a time to predict classes
_PREDICT_CHUNK_SIZE = 512
# One numpy random stream per use of the seed: the seed plus this offset
_STREAM_PLANES_WITHIN, _STREAM_PLANES_ACROSS, _STREAM_SEGMENTS = 0, 1, 2
# Tries per wanted plane to draw a triplet not drawn before
_TRIPLET_TRIES = 50
# Examples sampled for the median distance between examples (the lines' length scale)
_MEDIAN_DISTANCE_SAMPLE = 200
# Points of each output curve drawn along a segment, and the segments drawn
_CURVE_POINTS = 400
_CURVES_DRAWN = 3


def _classes(model: nn.Module, X: torch.Tensor, y: torch.Tensor | None) -> tuple[np.ndarray, str]:
    """Class of every example: the labels, else the model's prediction."""
    if y is not None and not y.is_floating_point():
        return y.cpu().numpy(), "labels"
    step = _PREDICT_CHUNK_SIZE
    with torch.no_grad():
        out = torch.cat([model(X[i : i + step]) for i in range(0, X.shape[0], step)])
    if out.shape[1] < 2:
        return np.zeros(X.shape[0], dtype=np.int64), "none (one output)"
    return out.argmax(1).cpu().numpy(), "predicted"


def _triplets(cls: np.ndarray, n: int, within: bool, seed: int) -> list[list[int]]:
    rng = np.random.default_rng(seed + (_STREAM_PLANES_WITHIN if within else _STREAM_PLANES_ACROSS))
    labels = np.unique(cls)
    out: list[list[int]] = []
    for _ in range(_TRIPLET_TRIES * n):
        if len(out) == n:
            break
        if within:
            big = [c for c in labels if (cls == c).sum() >= 3]
            if not big:
                break
            c = big[rng.integers(len(big))]
            idx = rng.choice(np.flatnonzero(cls == c), 3, replace=False)
        else:
            if len(labels) < 3:
                break
            cs = rng.choice(labels, 3, replace=False)
            idx = np.array([rng.choice(np.flatnonzero(cls == c)) for c in cs])
        trip = [int(i) for i in idx]
        if trip not in out:
            out.append(trip)
    return out


class _Figures:
    """Writes figures into the run directory (fresh temporary name, then renamed in)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def save(self, fig: Any, name: str) -> str:
        import matplotlib.pyplot as plt

        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".png", dir=self.folder)
        try:
            with os.fdopen(fd, "wb") as fh:
                fig.savefig(fh, dpi=100, bbox_inches="tight", format="png")
            os.chmod(tmp, 0o644)
            os.replace(tmp, self.folder / name)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        finally:
            plt.close(fig)
        return name


@dataclass
class _Context:
    model: nn.Module
    X: torch.Tensor
    y: torch.Tensor | None
    cls: np.ndarray
    cls_source: str
    sizes: dict[str, Any]
    seed: int
    figures: _Figures
    n_outputs: int


def _skip(reason: str) -> dict[str, Any]:
    return {"skipped": reason}


def _part_planes(ctx: _Context, within: bool) -> dict[str, Any]:
    from .plots import regions as plot_regions
    from .regions import plane_through, regions_2d

    trips = _triplets(ctx.cls, int(ctx.sizes["n_planes"]), within, ctx.seed)
    if not trips:
        why = (
            "no class has 3 examples"
            if within
            else f"the data has fewer than 3 classes ({ctx.cls_source})"
        )
        return _skip(why)
    window = tuple(float(v) for v in ctx.sizes["plane_window"])
    planes, figures = [], []
    plt = agg_pyplot()
    kind = "within" if within else "across"
    for j, trip in enumerate(trips):
        pts = ctx.X[trip].detach().double()
        plane = plane_through(pts[0], pts[1], pts[2])
        t0 = time.perf_counter()
        r = regions_2d(ctx.model, plane, extent=window, decision_boundary=ctx.n_outputs > 1)
        wall = time.perf_counter() - t0
        boundary = 0.0
        if r.decision_boundary is not None and len(r.decision_boundary):
            seg = np.asarray(r.decision_boundary)
            boundary = float(np.linalg.norm(seg[:, 1] - seg[:, 0], axis=1).sum())
        classes_present = (
            sorted({int(c) for c in np.asarray(r.classes).tolist()})
            if r.classes is not None
            else []
        )
        planes.append(
            {
                "examples": trip,
                "classes": [int(ctx.cls[i]) for i in trip],
                "n_regions": int(r.n_regions),
                "n_pieces": int(r.n_pieces),
                "boundary_length": boundary,
                "predicted_classes": classes_present,
                "window": list(window),
                "ambiguous": bool(r.ambiguous),
                "wall_s": wall,
            }
        )
        fig, ax = plt.subplots(figsize=(5.2, 5.2))
        color_by = "class" if ctx.n_outputs > 1 else "piece"
        plot_regions(
            r,
            ax,
            color_by=color_by,
            points=pts.numpy(),
            point_labels=[f"#{i} ({ctx.cls[i]})" for i in trip],
        )
        ax.set_title(f"{r.n_regions} regions, {r.n_pieces} pieces; examples {trip}", fontsize=9)
        figures.append(ctx.figures.save(fig, f"planes_{kind}_{j}.png"))
    return {"planes": planes, "figures": figures, "class_source": ctx.cls_source}


def _median_distance(X: torch.Tensor, seed: int, n: int = _MEDIAN_DISTANCE_SAMPLE) -> float:
    """Median Euclidean distance between ``n`` examples drawn at random (1 if fewer than 2)."""
    idx = torch.randperm(X.shape[0], generator=torch_generator(seed))[:n]
    F = X[idx].reshape(len(idx), -1).double()
    D = torch.cdist(F, F)
    vals = D[torch.triu(torch.ones_like(D, dtype=torch.bool), 1)]
    return float(vals.median()) if vals.numel() else 1.0


def _part_lines(ctx: _Context) -> dict[str, Any]:
    from .regions import regions_along_lines, regions_on_line

    rng = np.random.default_rng(ctx.seed + _STREAM_SEGMENTS)
    N = ctx.X.shape[0]
    segments, figures = [], []
    plt = agg_pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for j in range(int(ctx.sizes["n_segments"])):
        a, b = (int(i) for i in rng.choice(N, 2, replace=False))
        x0, x1 = ctx.X[a].double(), ctx.X[b].double()
        lr = regions_on_line(ctx.model, x0, x1)
        dist = float((x1 - x0).norm())
        knots_t = np.asarray(lr.knots_t, dtype=np.float64)
        segments.append(
            {
                "from": a,
                "to": b,
                "classes": [int(ctx.cls[a]), int(ctx.cls[b])],
                "length": dist,
                "n_regions": int(lr.n_regions),
                "n_pieces": int(lr.n_pieces),
                "n_knots": int(knots_t.size),
                "knots_per_unit_length": float(knots_t.size / dist) if dist > 0 else 0.0,
            }
        )
        if j < _CURVES_DRAWN:
            t = np.linspace(0.0, 1.0, _CURVE_POINTS)
            with torch.no_grad():
                pts = (
                    x0[None]
                    + torch.from_numpy(t)[:, None].reshape(-1, *[1] * x0.ndim) * (x1 - x0)[None]
                )
                out = ctx.model(pts.to(ctx.X.dtype)).double().numpy()
            ax = axes[0]
            top = int(out[0].argmax()) if out.shape[1] > 1 else 0
            ax.plot(t, out[:, top], lw=1.0, label=f"#{a}->#{b} output {top}")
            ax.plot(knots_t, np.interp(knots_t, t, out[:, top]), "|", ms=6, color="k")
    axes[0].set_xlabel("t along the segment (0: first example, 1: second)")
    axes[0].set_ylabel("output")
    axes[0].set_title("outputs along segments (ticks: knots)", fontsize=9)
    axes[0].legend(fontsize=7)
    length = float(ctx.sizes["line_length_fraction"]) * _median_distance(ctx.X, ctx.seed)
    hr = regions_along_lines(
        ctx.model, ctx.X.double(), n_lines=int(ctx.sizes["n_lines"]), length=length, seed=ctx.seed
    )
    axes[1].hist(hr["n_regions"], bins=min(20, max(3, len(hr["n_regions"]))), color="#4c72b0")
    axes[1].set_xlabel(f"regions along a random line of length {length:.3g}")
    axes[1].set_ylabel("lines")
    axes[1].set_title(
        f"Hanin-Rolnick: {hr['breakpoints_per_unit_length']:.3g} boundaries per unit length",
        fontsize=9,
    )
    figures.append(ctx.figures.save(fig, "lines.png"))
    return {"segments": segments, "hanin_rolnick": hr, "figures": figures}


def _part_patterns(ctx: _Context) -> dict[str, Any]:
    from .regions import pattern_statistics

    n = min(int(ctx.sizes["n_pattern_examples"]), ctx.X.shape[0])
    stats = pattern_statistics(ctx.model, ctx.X[:n].double())
    plt = agg_pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.2))
    per = stats["fraction_active_per_layer"]
    ax.bar(range(len(per)), per, color="#55a868")
    ax.set_xlabel("layer (element-wise or max node)")
    ax.set_ylabel("fraction active")
    ax.set_ylim(0, 1)
    ax.set_title(f"{stats['n_patterns']} distinct patterns over {n} examples", fontsize=9)
    return {"stats": stats, "figures": [ctx.figures.save(fig, "patterns.png")]}


def _loss_for(ctx: _Context) -> tuple[str, torch.Tensor | None]:
    y = ctx.y
    if y is None:
        return "", None
    if not y.is_floating_point():
        if ctx.n_outputs < 2:
            return "", None
        return "ce", y
    y = y.reshape(y.shape[0], -1)
    if y.shape[1] != ctx.n_outputs:
        return "", None
    return "mse", y


def _part_hessian(ctx: _Context) -> dict[str, Any]:
    from .hessian import HessianOperator, hessian_eigenvalues, spectral_density
    from .plots import spectrum

    loss, y = _loss_for(ctx)
    if y is None:
        return _skip(
            "no labels y in the data (the Hessian is that of the loss on labelled data)"
            if ctx.y is None
            else "y matches neither class labels nor the model's outputs"
        )
    n = min(int(ctx.sizes["n_hessian_examples"]), ctx.X.shape[0])
    X, yy = ctx.X[:n], y[:n]
    k = int(ctx.sizes["lanczos_k"])
    ev = hessian_eigenvalues(ctx.model, X, yy, loss=loss, k=k, which="both", seed=ctx.seed)
    op = HessianOperator(ctx.model, X, yy, loss=loss)
    sd = spectral_density(
        op.matvec,
        op.n,
        n_probes=int(ctx.sizes["slq_probes"]),
        steps=int(ctx.sizes["slq_steps"]),
        seed=ctx.seed,
        dtype=op.dtype,
    )
    plt = agg_pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.4))
    spectrum(ev, sd, ax, log=True)
    ax.set_title(
        f"Hessian of the {loss} loss: {2 * k} extreme eigenvalues and SLQ density", fontsize=9
    )
    ev = np.sort(np.asarray(ev, dtype=np.float64))
    return {
        "loss": loss,
        "loss_value": float(op.loss()),
        "n_examples": n,
        "n_parameters": int(op.n),
        "smallest": ev[:k].tolist(),
        "largest": ev[-k:].tolist(),
        "density_nodes": sd.nodes.tolist(),
        "density_weights": sd.weights.tolist(),
        "figures": [ctx.figures.save(fig, "hessian.png")],
    }


def _is_mlp(model: nn.Module) -> bool:
    from .nets import as_mlp

    try:
        as_mlp(model)
        return True
    except NngeomError:
        return False


def _part_sensitivity(ctx: _Context) -> dict[str, Any]:
    from .plots import sensitivity as plot_sensitivity
    from .sensitivity import tangent_sensitivity, tangent_sensitivity_bounds

    n = min(int(ctx.sizes["n_sensitivity_examples"]), ctx.X.shape[0])
    X = ctx.X[:n]
    cls = ctx.cls[:n]
    own = ctx.n_outputs > 1 and ctx.cls_source != "none (one output)"
    if _is_mlp(ctx.model):
        method = "exact closed form"
        allk = tangent_sensitivity(ctx.model, X, output="all").detach().double().cpu().numpy()
        ts = allk[np.arange(n), cls] if own else allk.mean(1)
    else:
        # a graph model: the exact generic form costs one jvp-of-grad per input dimension
        # (784 for an image); Hutchinson's estimate costs `ts_probes` per example and output
        from .sensitivity import tangent_sensitivity_hutchinson

        probes = int(ctx.sizes["ts_probes"])
        method = f"Hutchinson estimate, {probes} Rademacher probes per example"
        ts = np.zeros(n)
        groups = (
            [(c, np.flatnonzero(cls == c)) for c in np.unique(cls)]
            if own
            else [(None, np.arange(n))]
        )
        for c, idx in groups:
            est = tangent_sensitivity_hutchinson(
                ctx.model,
                X[idx],
                probes=probes,
                output=None if c is None else int(c),
                seed=ctx.seed,
            )
            vals = est.values.detach().double().cpu().numpy()
            ts[idx] = vals[:, 0] if c is not None else vals.mean(1)
    what = "TS of the example's own class output" if own else "TS averaged over outputs"
    per_class = []
    for c in np.unique(cls):
        v = ts[cls == c]
        per_class.append(
            [int(c), int(v.size), float(v.mean()), float(np.median(v)), float(v.max())]
        )
    bounds: dict[str, float] | None = None
    bounds_note = ""
    try:
        b = tangent_sensitivity_bounds(ctx.model, X)
        bounds = b.as_dict()
    except NngeomError as exc:
        bounds_note = f"bounds not computed: {exc}"
    plt = agg_pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.4))
    plot_sensitivity(ts, cls, ax)
    ax.set_title(f"tangent sensitivity of {n} examples by class ({ctx.cls_source})", fontsize=9)
    return {
        "n_examples": n,
        "method": method,
        "quantity": what,
        "mean": float(ts.mean()),
        "max": float(ts.max()),
        "per_class": per_class,
        "class_source": ctx.cls_source,
        "bounds": bounds,
        "bounds_note": bounds_note,
        "figures": [ctx.figures.save(fig, "sensitivity.png")],
    }


def _part_measures(ctx: _Context) -> dict[str, Any]:
    from . import measures

    n = min(int(ctx.sizes["n_measure_examples"]), ctx.X.shape[0])
    X = ctx.X[:n]
    values: list[list[Any]] = []
    skipped: list[list[str]] = []
    jn = measures.input_jacobian_norm(ctx.model, X).double()
    values.append(["input-Jacobian norm (mean over examples)", float(jn.mean())])
    if _is_mlp(ctx.model):
        values.append(["l2 path norm", measures.path_norm(ctx.model)])
        values.append(["log product of spectral norms", measures.log_spectral_product(ctx.model)])
        values.append(["log product of Frobenius norms", measures.log_frobenius_product(ctx.model)])
    else:
        why = "defined here for MLP chains (Linear + activation); this model is a graph"
        for name in ("l2 path norm", "norm products"):
            skipped.append([name, why])
    if ctx.y is not None:
        s = measures.sharpness(
            ctx.model,
            X,
            ctx.y[:n],
            samples=int(ctx.sizes["sharpness_samples"]),
            iters=int(ctx.sizes["sharpness_iters"]),
            seed=ctx.seed,
        )
        values.append(["sharpness 1/sigma^2 (PAC-Bayes flatness)", float(s)])
    else:
        skipped.append(["sharpness", "needs labels y"])
    skipped.append(["distance from initialisation", "needs the initial weights"])
    return {"n_examples": n, "values": values, "not_applicable": skipped}


def _dense_rows(model: nn.Module, input_shape: tuple[int, ...]) -> list[tuple[str, torch.Tensor]]:
    """(name, incoming vectors (width, fan_in + 1)) of every dense hidden layer."""
    from .symmetry import dense_hidden_layers

    out = []
    try:
        layers = dense_hidden_layers(model, input_shape)
    except NngeomError:
        layers = []
    mods = dict(model.named_modules())
    for layer in layers:
        lin = mods[layer.linear_in]
        rows = lin.weight.detach().double().reshape(lin.weight.shape[0], -1)
        b = lin.bias.detach().double()[:, None] if lin.bias is not None else None
        out.append(
            (
                f"{layer.linear_in} ({layer.activation})",
                rows if b is None else torch.cat([rows, b], 1),
            )
        )
    if out or not hasattr(model, "graph"):
        return out
    # a torch.export program: aten.linear nodes -> element-wise op -> aten.linear nodes
    linear = {torch.ops.aten.linear.default}
    attrs = dict(model.named_parameters()) | dict(model.named_buffers())

    def tensor(node: Any) -> torch.Tensor | None:
        if getattr(node, "op", None) == "get_attr":
            return attrs.get(str(node.target))
        return None

    for node in model.graph.nodes:
        if node.op != "call_function" or node.target not in linear or len(node.users) != 1:
            continue
        act = next(iter(node.users))
        if act.op != "call_function" or not act.users:
            continue
        if not all(u.op == "call_function" and u.target in linear for u in act.users):
            continue
        W = tensor(node.args[1])
        b = tensor(node.args[2]) if len(node.args) > 2 else None
        if W is None or W.ndim != 2:
            continue
        rows = W.detach().double()
        if b is not None:
            rows = torch.cat([rows, b.detach().double()[:, None]], 1)
        out.append((f"{node.args[1].target} ({getattr(act.target, '__name__', act.target)})", rows))
    return out


def _part_permutation(ctx: _Context) -> dict[str, Any]:
    layers = _dense_rows(ctx.model, tuple(ctx.X.shape[1:]))
    if not layers:
        return _skip("the model has no dense hidden layer (Linear -> activation -> Linear)")
    top = int(ctx.sizes["top_pairs"])
    found = []
    for name, R in layers:
        n = R.shape[0]
        if n < 2:
            continue
        norms = R.norm(dim=1)
        unit = torch.nn.functional.normalize(R, dim=1)  # a zero row stays zero
        C = unit @ unit.T
        E = torch.cdist(R, R)
        i, j = torch.triu_indices(n, n, 1)
        cos_d = (1.0 - C[i, j]).clamp_min(0.0)
        order = torch.argsort(cos_d)[:top]
        scale = float(norms.mean())
        pairs = [
            [
                int(i[o]),
                int(j[o]),
                float(cos_d[o]),
                float(E[i[o], j[o]]),
                float(E[i[o], j[o]]) / scale,
            ]
            for o in order
        ]
        found.append(
            {
                "layer": name,
                "width": int(n),
                "fan_in": int(R.shape[1] - 1),
                "pairs": pairs,
                "median_cosine_distance": float(cos_d.median()),
            }
        )
    return {"layers": found}


def _run_part(part: str, ctx: _Context) -> dict[str, Any]:
    if part == "planes_within":
        return _part_planes(ctx, True)
    if part == "planes_across":
        return _part_planes(ctx, False)
    return {
        "lines": _part_lines,
        "patterns": _part_patterns,
        "hessian": _part_hessian,
        "sensitivity": _part_sensitivity,
        "measures": _part_measures,
        "permutation": _part_permutation,
    }[part](ctx)


# --------------------------------------------------------------------------------------------
# the driver
# --------------------------------------------------------------------------------------------
class _TermAsInterrupt:
    """SIGTERM raises KeyboardInterrupt while parts run (a `kill` stops as cleanly as Ctrl-C)."""

    def __enter__(self) -> _TermAsInterrupt:
        self._old = None
        with contextlib.suppress(ValueError):  # not the main thread
            self._old = signal.signal(signal.SIGTERM, self._raise)
        return self

    @staticmethod
    def _raise(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    def __exit__(self, *exc: object) -> None:
        if self._old is not None:
            signal.signal(signal.SIGTERM, self._old)


def analyze(
    model: nn.Module,
    X: Any,
    y: Any = None,
    out: str | os.PathLike[str] = "analysis",
    *,
    quick: bool = False,
    seed: int = 0,
    generator: torch.Generator | None = None,
    resume: bool = False,
    retry_failed: bool = False,
    parts: Sequence[str] | None = None,
    sizes: dict[str, Any] | None = None,
    input_shape: Sequence[int] | None = None,
    progress: bool = True,
    architecture: str | None = None,
    _hook: Callable[[str], None] | None = None,
) -> Analysis:
    """Analyse ``model`` on the data ``X`` (labels ``y`` optional) into the run directory ``out``.

    >>> import tempfile, torch, nngeom as ng
    >>> net = ng.mlp([2, 8, 3], dtype=torch.float64)
    >>> X = torch.randn(30, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    >>> with tempfile.TemporaryDirectory() as d:
    ...     a = ng.analyze(net, X, out=d + "/run", quick=True, parts=["patterns"], progress=False)
    ...     print(sorted(a.results), a.report.name)
    ['patterns'] report.html

    Args:
        model: a piecewise-linear model (MLP, conv net, residual graph, torch.export program)
            in evaluation mode; the Hessian and tangent-sensitivity parts take any differentiable
            model, the exact parts report their refusal as a failed part.
        X: inputs ``(N, *input_shape)`` or flat ``(N, d)`` (reshaped when the size matches).
        y: integer class labels ``(N,)`` or regression targets ``(N, outputs)``; without them the
            classes are the model's predictions and the Hessian / sharpness are skipped.
        out: the run directory (must not hold a run unless ``resume``).
        quick: the small sizes of :data:`QUICK` (sized for a LeNet with 1000 examples on a
            laptop) instead of :data:`FULL`.
        seed: seed of every random choice (triplets, segments, lines, probes); it keys the
            stored results, so ``resume`` needs the same seed.
        generator: a ``torch.Generator`` to draw that seed from instead (62 random bits; it
            advances).
        resume: complete the run in ``out``: stored parts are skipped, and so are parts that
            failed before unless ``retry_failed``.
        parts: a subset of :data:`PARTS` (default all).
        sizes: overrides of the sizes (see :data:`SIZE_HELP`).
        input_shape: the model's per-example input shape when it cannot be read off the model.
        progress: a rich progress bar on stderr.

    Returns:
        :class:`Analysis` (failures listed there; the run goes on past them).

    Raises:
        DataError / InvalidInput: bad data or arguments (before anything is written).
        RunError: ``out`` holds a run (without ``resume``), of another model or data, is used by
            another process, or cannot be written.
    """
    from .runs import RunDir, environment, task_key

    t_start = time.perf_counter()
    seed = derived_seed(seed, generator)
    quick = check_bool("quick", quick)
    resume = check_bool("resume", resume)
    retry_failed = check_bool("retry_failed", retry_failed)
    if retry_failed and not resume:
        raise RunError("--retry-failed completes an existing run: pass it with --resume")
    chosen = list(PARTS) if parts is None else list(dict.fromkeys(parts))
    unknown = [p for p in chosen if p not in PARTS]
    if unknown or not chosen:
        raise InvalidInput(f"unknown parts {unknown}; choose from {', '.join(PARTS)}")
    size = sizes_for(quick, **(sizes or {}))
    X, y, notes = prepare_data(model, X, y, input_shape)
    with torch.no_grad():
        n_outputs = int(model(X[:1]).shape[1])
    if architecture is None:
        try:
            from .view import model_view

            architecture = model_view(model, tuple(X.shape[1:])).describe()
        except NngeomError as exc:
            architecture = f"{type(model).__name__} (no exact model view: {exc})"
    m_hash = model_fingerprint(model)
    d_hash = _fingerprint(X, y)
    run = RunDir(out)
    if run.path.exists() and not run.path.is_dir():
        raise RunError(f"{run.path} is not a directory; choose another --out")
    run.create()
    summary = Analysis(run.path, None, notes=notes)
    with run.lock("running nngeom analyze"):
        try:
            if run.exists():
                if not resume:
                    raise RunError(
                        f"{run.path} already holds a run; pass --resume to complete it, or "
                        "choose a new --out"
                    )
                old = run.read_config()
                a = old.get("analysis")
                if not isinstance(a, dict):
                    raise RunError(
                        f"{run.path} holds a `nngeom reproduce` run, not an analysis; choose a "
                        "new --out"
                    )
                for what, new in (("model", m_hash), ("data", d_hash), ("seed", seed)):
                    if a.get(what) != new:
                        raise RunError(
                            f"{run.path} was analysed with another {what} ({a.get(what)!r}, now "
                            f"{new!r}); resume with the same model, data and seed, or choose a "
                            "new --out"
                        )
            _ = run.db  # validate the database before any work
            config = {
                "studies": [STUDY],
                "kind": "analysis",
                "scale": "quick" if quick else "full",
                "seed": seed,
                "analysis": {
                    "model": m_hash,
                    "data": d_hash,
                    "seed": seed,
                    "architecture": architecture,
                    "n_examples": int(X.shape[0]),
                    "input_shape": list(X.shape[1:]),
                    "n_outputs": n_outputs,
                    "labels": "none"
                    if y is None
                    else ("classes" if not y.is_floating_point() else "targets"),
                    "sizes": size,
                    "parts": chosen,
                    "notes": notes,
                },
                "environment": environment(),
                "updated": _dt_now(),
            }
            run.write_config(config)
            figdir = run.figures(STUDY)
            cls, cls_source = _classes(model, X, y)
            ctx = _Context(model, X, y, cls, cls_source, size, seed, _Figures(figdir), n_outputs)
            keys = {p: task_key(STUDY, _part_config(p, size, seed, m_hash, d_hash)) for p in chosen}
            done = run.results(STUDY)
            failed_before = set() if retry_failed else run.failed_keys()
            errors = run.failure_errors()
            todo = []
            for p in chosen:
                if keys[p] in done:
                    summary.resumed.append(p)
                elif keys[p] in failed_before:
                    summary.failed[p] = errors.get(keys[p], "failed before")
                else:
                    todo.append(p)
            try:
                with _TermAsInterrupt():
                    _execute(
                        run, ctx, todo, keys, size, seed, m_hash, d_hash, summary, progress, _hook
                    )
            except KeyboardInterrupt:
                summary.interrupted = True
            stored = run.results(STUDY)
            for p in chosen:
                if keys[p] in stored:
                    res = stored[keys[p]][1]
                    summary.results[p] = res
                    if "skipped" in res:
                        summary.skipped[p] = str(res["skipped"])
            summary.report = _write_report(run, config, chosen, keys, summary)
        finally:
            run.close()
    summary.wall_s = time.perf_counter() - t_start
    return summary


def _dt_now() -> str:
    import datetime as dt

    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def _part_config(part: str, size: dict[str, Any], seed: int, m: str, d: str) -> dict[str, Any]:
    return {"part": part, "sizes": size, "seed": seed, "model": m, "data": d}


def _execute(run, ctx, todo, keys, size, seed, m_hash, d_hash, summary, show, hook) -> None:
    with progress_bar(show, name_width=16) as bar:
        task = bar.add_task("analyze", total=len(todo), status="")
        for part in todo:
            bar.update(task, description=part, status=f"failed {len(summary.failed)}")
            config = _part_config(part, size, seed, m_hash, d_hash)
            t0 = time.perf_counter()
            try:
                if hook is not None:
                    hook(part)
                result = _run_part(part, ctx)
                json.dumps(result)  # JSON-able, or a failure of the part
            except KeyboardInterrupt:
                raise
            except Exception as exc:  # noqa: BLE001 - a failed part is recorded, the rest go on
                error = f"{type(exc).__name__}: {' '.join(str(exc).split())}"
                run.add_failure(keys[part], STUDY, config, error, traceback.format_exc())
                summary.failed[part] = error
                if show:
                    bar.console.print(f"[red]part failed[/red] {part}: {error}")
            else:
                run.add_result(keys[part], STUDY, config, result, time.perf_counter() - t0)
                summary.failed.pop(part, None)
                summary.ran.append(part)
            bar.update(task, advance=1, status=f"failed {len(summary.failed)}")
        bar.update(task, description="analyze", status=f"failed {len(summary.failed)}")


# --------------------------------------------------------------------------------------------
# the report
# --------------------------------------------------------------------------------------------
CSS = """
body { font: 15px/1.5 -apple-system, "Segoe UI", Roboto, Arial, sans-serif; color: #1d2433;
       background: #fbfcfe; margin: 0; }
header { background: #14213d; color: #fff; padding: 22px 40px; }
header h1 { margin: 0 0 4px; font-size: 24px; } header p { margin: 0; color: #c9d3ea; }
nav { padding: 8px 40px; background: #eef2f9; } nav a { margin-right: 14px; color: #2f5fb3; }
main { max-width: 1180px; margin: 0 auto; padding: 10px 40px 50px; }
section { margin-top: 30px; border-top: 3px solid #2f5fb3; }
table { border-collapse: collapse; margin: 12px 0; background: #fff; font-size: 14px; }
caption { text-align: left; font-weight: 600; padding: 4px 0; }
th, td { border: 1px solid #d9dee8; padding: 4px 9px; text-align: left; vertical-align: top; }
th { background: #f1f4fa; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
figure { margin: 14px 0; background: #fff; border: 1px solid #d9dee8; padding: 10px; }
figure img { max-width: 100%; height: auto; } figcaption { color: #5b6478; font-size: 14px; }
.summary { background: #fff; border: 1px solid #d9dee8; padding: 10px 14px; }
.warn { background: #fff4e5; border: 1px solid #f0c36d; padding: 8px 12px; }
.fail { background: #fdecec; border: 1px solid #e5a3a3; padding: 8px 12px; }
"""


def _esc(v: Any) -> str:
    return html.escape(str(v))


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        if not math.isfinite(v):
            return str(v)
        return f"{v:.4g}" if v == 0 or 1e-3 <= abs(v) < 1e6 else f"{v:.3e}"
    if isinstance(v, (list, tuple)):
        return ", ".join(_fmt(x) for x in v)
    return str(v)


def _table(caption: str, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    head = "".join(f"<th>{_esc(h)}</th>" for h in header)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="num">{_esc(_fmt(v))}</td>'
            if isinstance(v, (int, float)) and not isinstance(v, bool)
            else f"<td>{_esc(_fmt(v))}</td>"
            for v in row
        )
        + "</tr>"
        for row in rows
    )
    return f"<table><caption>{_esc(caption)}</caption><tr>{head}</tr>{body}</table>"


def _figure(folder: Path, name: str, caption: str) -> str:
    path = folder / name
    if not path.is_file() or path.is_symlink():
        return f'<p class="warn">figure missing: {_esc(name)} (rerun the part to redraw it)</p>'
    data = base64.b64encode(path.read_bytes()).decode()
    return (
        f'<figure><img src="data:image/png;base64,{data}" alt="{_esc(name)}">'
        f"<figcaption>{_esc(caption)}</figcaption></figure>"
    )


def _render(part: str, r: dict[str, Any], folder: Path) -> tuple[str, list[str]]:
    """(summary, html blocks) of one stored part."""
    blocks: list[str] = []
    figs = r.get("figures", [])
    if part in ("planes_within", "planes_across"):
        rows = [
            [
                _fmt(p["examples"]),
                _fmt(p["classes"]),
                p["n_regions"],
                p["n_pieces"],
                p["boundary_length"],
                _fmt(p["predicted_classes"]),
                _fmt(p["window"]),
                round(p["wall_s"], 2),
            ]
            for p in r["planes"]
        ]
        blocks.append(
            _table(
                "planes x0 + s (x1 - x0) + t (x2 - x0) through three examples",
                [
                    "examples",
                    f"classes ({r['class_source']})",
                    "regions",
                    "linear pieces",
                    "decision boundary length (s,t units)",
                    "predicted classes",
                    "window",
                    "seconds",
                ],
                rows,
            )
        )
        for name, p in zip(figs, r["planes"], strict=False):
            blocks.append(
                _figure(
                    folder,
                    name,
                    f"exact regions coloured by predicted class, the decision "
                    f"boundary in black, examples {p['examples']} at (0,0), (1,0), (0,1) "
                    f"(marked when inside the window {p['window']})",
                )
            )
        mean = np.mean([p["n_regions"] for p in r["planes"]])
        kind = "one class" if part == "planes_within" else "three classes"
        return (
            f"{len(r['planes'])} plane(s) through examples of {kind}: {mean:.0f} regions on average.",
            blocks,
        )
    if part == "lines":
        segs = r["segments"]
        blocks.append(
            _table(
                "segments between two examples (knots: changes of the linear piece)",
                [
                    "from",
                    "to",
                    "classes",
                    "length",
                    "regions",
                    "pieces",
                    "knots",
                    "knots per unit length",
                ],
                [
                    [
                        s["from"],
                        s["to"],
                        _fmt(s["classes"]),
                        s["length"],
                        s["n_regions"],
                        s["n_pieces"],
                        s["n_knots"],
                        s["knots_per_unit_length"],
                    ]
                    for s in segs
                ],
            )
        )
        hr = r["hanin_rolnick"]
        blocks.append(
            _table(
                "Hanin & Rolnick: regions along random lines through the data",
                [
                    "lines",
                    "length",
                    "mean regions",
                    "regions per unit length",
                    "boundaries per unit length",
                    "neurons",
                ],
                [
                    [
                        len(hr["n_regions"]),
                        hr["length"],
                        hr["mean_regions"],
                        hr["regions_per_unit_length"],
                        hr["breakpoints_per_unit_length"],
                        hr["n_neurons"],
                    ]
                ],
            )
        )
        blocks += [
            _figure(folder, f, "outputs along segments with their knots; regions per line")
            for f in figs
        ]
        return (
            f"{len(segs)} segments, {np.mean([s['n_knots'] for s in segs]):.1f} knots on average; "
            f"{hr['breakpoints_per_unit_length']:.4g} region boundaries per unit length."
        ), blocks
    if part == "patterns":
        s = r["stats"]
        keys = [
            "n_samples",
            "n_units",
            "n_patterns",
            "fraction_unique",
            "entropy_bits",
            "fraction_active",
            "fraction_dead",
            "fraction_always_active",
        ]
        blocks.append(
            _table(
                "activation-pattern statistics", ["statistic", "value"], [[k, s[k]] for k in keys]
            )
        )
        blocks.append(
            _table(
                "per layer",
                ["layer", "fraction active", "distinct patterns"],
                [
                    [i, a, n]
                    for i, (a, n) in enumerate(
                        zip(s["fraction_active_per_layer"], s["n_patterns_per_layer"], strict=False)
                    )
                ],
            )
        )
        blocks += [_figure(folder, f, "fraction of active units per layer") for f in figs]
        return (
            f"{s['n_patterns']} distinct activation patterns over {s['n_samples']} examples.",
            blocks,
        )
    if part == "hessian":
        blocks.append(
            _table(
                "extreme eigenvalues (Lanczos)",
                ["end", "eigenvalues"],
                [["most negative", _fmt(r["smallest"])], ["largest", _fmt(r["largest"])]],
            )
        )
        blocks += [
            _figure(folder, f, "Lanczos extremes and the SLQ spectral density (symlog)")
            for f in figs
        ]
        return (
            f"{r['loss']} loss {r['loss_value']:.4g} on {r['n_examples']} examples, "
            f"{r['n_parameters']} parameters: largest eigenvalue {r['largest'][-1]:.4g}, "
            f"smallest {r['smallest'][0]:.4g}."
        ), blocks
    if part == "sensitivity":
        blocks.append(
            _table(
                f"per class ({r['class_source']})",
                ["class", "examples", "mean", "median", "max"],
                r["per_class"],
            )
        )
        if r.get("bounds"):
            blocks.append(
                _table("upper bounds", ["bound", "value"], [[k, v] for k, v in r["bounds"].items()])
            )
        if r.get("bounds_note"):
            blocks.append(f'<p class="warn">{_esc(r["bounds_note"])}</p>')
        blocks += [_figure(folder, f, "tangent sensitivity by class") for f in figs]
        return (
            f"{r.get('quantity', 'tangent sensitivity')} ({r.get('method', '')}): mean "
            f"{r['mean']:.4g} over {r['n_examples']} examples."
        ), blocks
    if part == "measures":
        blocks.append(_table("measures", ["measure", "value"], r["values"]))
        if r["not_applicable"]:
            blocks.append(_table("not computed", ["measure", "why"], r["not_applicable"]))
        return f"{len(r['values'])} measures on {r['n_examples']} examples.", blocks
    if part == "permutation":
        for L in r["layers"]:
            blocks.append(
                _table(
                    f"layer {L['layer']}: width {L['width']}, fan-in {L['fan_in']}; median cosine "
                    f"distance of all pairs {L['median_cosine_distance']:.4g}",
                    [
                        "unit i",
                        "unit j",
                        "cosine distance",
                        "euclidean distance",
                        "relative to mean row norm",
                    ],
                    L["pairs"],
                )
            )
        closest = min((L["pairs"][0][2] for L in r["layers"] if L["pairs"]), default=float("nan"))
        return (
            f"{len(r['layers'])} dense hidden layer(s); the closest pair of incoming weight vectors "
            f"(weights and bias) has cosine distance {closest:.4g}."
        ), blocks
    return "", blocks  # pragma: no cover


def _write_report(run: Any, config: dict, chosen, keys, summary: Analysis) -> Path:
    folder = run.path / "figures" / STUDY
    a = config["analysis"]
    stored = run.results(STUDY)
    failures = run.failure_errors()
    nav, body = [], []
    size_rows = [[k, _fmt(v), SIZE_HELP.get(k, "")] for k, v in a["sizes"].items()]
    intro = [
        f"<p><b>Model:</b> {_esc(a['architecture'])}</p>",
        f"<p><b>Data:</b> {a['n_examples']} examples of shape {_esc(tuple(a['input_shape']))}, "
        f"{a['n_outputs']} outputs, labels: {_esc(a['labels'])}.</p>",
    ]
    intro += [f'<p class="warn">{_esc(n)}</p>' for n in a.get("notes", [])]
    intro.append(_table(f"sizes ({config['scale']})", ["size", "value", "meaning"], size_rows))
    body.append('<section id="overview"><h2>Overview</h2>' + "".join(intro) + "</section>")
    for p in chosen:
        nav.append(f'<a href="#{p}">{_esc(TITLES[p])}</a>')
        head = f'<section id="{p}"><h2>{_esc(TITLES[p])}</h2>'
        k = keys[p]
        if k in stored:
            res = stored[k][1]
            if "skipped" in res:
                body.append(head + f'<p class="warn">skipped: {_esc(res["skipped"])}</p></section>')
                continue
            try:
                text, blocks = _render(p, res, folder)
            except Exception as exc:  # noqa: BLE001 - a stored row of another version
                body.append(
                    head
                    + f'<p class="fail">cannot show the stored result: {_esc(exc)}</p></section>'
                )
                continue
            body.append(
                head + f'<div class="summary">{_esc(text)}</div>' + "".join(blocks) + "</section>"
            )
        elif k in failures:
            body.append(
                head + f'<p class="fail">failed: {_esc(failures[k])}<br>after fixing the cause, '
                "rerun with --resume --retry-failed</p></section>"
            )
        else:
            body.append(
                head
                + '<p class="warn">not computed yet (interrupted): rerun with --resume</p></section>'
            )
    env = config.get("environment", {})
    body.append(
        '<section id="run"><h2>Run</h2>'
        + _table("versions and machine", ["key", "value"], sorted(env.items()))
        + f"<p>Model hash {_esc(a['model'])}, data hash {_esc(a['data'])}, seed {a['seed']}. "
        "Rebuild this page (nothing recomputed) with <code>nngeom analyze ... --resume</code>.</p>"
        "</section>"
    )
    page = (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>nngeom analysis</title><style>{CSS}</style></head><body>"
        f"<header><h1>nngeom — geometry of your model</h1><p>{_esc(a['architecture'])} · "
        f"nngeom {_esc(env.get('nngeom', '?'))} · torch {_esc(env.get('torch', '?'))}</p></header>"
        f"<nav>{''.join(nav)}<a href='#run'>Run</a></nav><main>{''.join(body)}</main></body></html>"
    )
    out = run.path / "report.html"
    fd, tmp = tempfile.mkstemp(prefix=".report.html.", dir=run.path)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(page)
        os.chmod(tmp, 0o644)
        os.replace(tmp, out)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return out


# `ng.analyze(...)` calls the function; `import nngeom.analyze` gives this module
make_callable(__name__, analyze)
