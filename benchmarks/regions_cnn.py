"""Benchmark: the exact partition of a plane through three test images by a LeNet-5-size CNN.

Run: ``.venv/bin/python benchmarks/regions_cnn.py`` (writes benchmarks/results/regions_cnn.json).
Options: ``--repeats N`` (the conv path; default 3), ``--anchor-repeats N`` (the unrolled and
Berzins columns; default 1: each run takes minutes), ``--margin M``, ``--no-berzins``.

The CNN (Conv2d(1,6,5), ReLU, MaxPool2d(2), Conv2d(6,16,5), ReLU, MaxPool2d(2), Flatten,
Linear(256,120), ReLU, Linear(120,84), ReLU, Linear(84,10)) is trained on Fashion-MNIST (a local
``torch.Generator``, Adam; the weights are cached in a temporary folder outside the repository),
then analysed in float64 on the plane ``x0 + s (x1 - x0) + t (x2 - x0)``, ``(s, t)`` in
``[-margin, 1 + margin]^2``, three ways, side by side in ONE process run:

(a) nngeom's conv path: ``ng.regions_2d(cnn, ng.plane_through(x0, x1, x2), decision_boundary=True)``
    (regions: equal ReLU patterns and equal argmax of every max-pool window);
(b) the same network unrolled into Linear + ReLU layers (benchmarks/_lenet.py: conv layers as
    dense matrices, each 2x2 max-pool as a two-stage ``max(a, b) = relu(a - b) + relu(b)``
    tournament, Flatten as a permutation), checked equal to the CNN to 1e-10 on test images, and
    analysed by the MLP path ``ng.regions_2d(mlp, origin, u, v, extent)``;
(c) Berzins' edge subdivision (github.com/arturs-berzins/relu_edge_subdivision, ICML 2023; a
    checkout under /work/anchors or $BERZINS_DIR, never part of this repository) on the 2-D
    restriction of the unrolled net (the slice folded into the first Linear), hidden layers only
    so that its cells are the activation regions; in float64 on the CPU.

The three test images are the closest triple (nearest neighbours in pixel space) that the CNN
does not classify alike, so the plane has a decision boundary; any plane through three unrelated
images has ~10^6 regions from the first conv layer alone (measured: 942,698 for test images 0-2),
far beyond what the unrolled or Berzins columns finish in minutes.

Counts: (a) and (b) partition the plane differently (the tournament's ``a - b`` and ``c - d``
comparisons split argmax cells that the argmax view keeps whole, e.g. the ``c - d`` line inside
the cell where ``a`` wins); the linear pieces (polygons with equal affine maps merged) are the
same function's and should agree, and so should the decision boundary's length. Berzins' cells
should equal (b)'s regions (same arrangement, same net).
"""

from __future__ import annotations

import argparse
import contextlib
import inspect
import io
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import nngeom as ng  # noqa: E402
from _lenet import train_lenet, unroll  # noqa: E402
from _machine import machine  # noqa: E402
from _planar import decision_boundary_length, segments_length  # noqa: E402
from nngeom import data  # noqa: E402

TRAIN = {"seed": 0, "epochs": 3, "batch_size": 128, "lr": 2e-3}
ANCHOR_DIRS = ("/work/anchors/relu_edge_subdivision",)
MIRROR = "/work/.mirror/arturs-berzins+relu_edge_subdivision/repo"  # where the checkout came from


def median_time(fn, repeats: int) -> tuple[float, list[float], object]:
    ts, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts), ts, out


def pick_triple(cnn: nn.Module, X: torch.Tensor, n_candidates: int = 500) -> tuple[int, int, int]:
    """The test images i, j, k (j, k among i's 8 nearest neighbours) not all classified alike,
    with the fewest first-conv-layer regions on the unit square of their plane."""
    with torch.no_grad():
        pred = torch.cat([cnn(X[a : a + 2000]).argmax(1) for a in range(0, X.shape[0], 2000)])
        Z = cnn[0](X).reshape(X.shape[0], -1).numpy()
    flat = X.reshape(X.shape[0], -1)
    D = torch.cdist(flat, flat)
    D.fill_diagonal_(float("inf"))
    top = D.topk(8, largest=False)
    order = top.values[:, :2].sum(1).argsort()[:n_candidates].tolist()
    corners = np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])
    best = None
    for i in order:
        nb = top.indices[i].tolist()
        for a in range(len(nb)):
            for b in range(a + 1, len(nb)):
                j, k = nb[a], nb[b]
                if len({int(pred[i]), int(pred[j]), int(pred[k])}) == 1:
                    continue
                c = Z[i]
                A = np.stack([Z[j] - c, Z[k] - c], 1)
                vals = corners @ A.T + c
                cross = (vals.max(0) > 0) & (vals.min(0) < 0)
                Ac, cc = A[cross], c[cross]
                det = Ac[:, None, 0] * Ac[None, :, 1] - Ac[:, None, 1] * Ac[None, :, 0]
                with np.errstate(all="ignore"):
                    s = (-cc[:, None] * Ac[None, :, 1] + cc[None, :] * Ac[:, None, 1]) / det
                    t = (-Ac[:, None, 0] * cc[None, :] + Ac[None, :, 0] * cc[:, None]) / det
                inside = (s > 0) & (s < 1) & (t > 0) & (t < 1)
                n = 1 + len(cc) + int(np.triu(inside, 1).sum())
                if best is None or n < best[0]:
                    best = (n, i, j, k)
    assert best is not None
    return best[1], best[2], best[3]


def check_unrolled(cnn: nn.Module, mlp: nn.Sequential, X: torch.Tensor) -> float:
    with torch.no_grad():
        err = float((cnn(X) - mlp(X.reshape(X.shape[0], -1))).abs().max())
    if not err <= 1e-10:
        raise SystemExit(f"FAIL: the unrolled net differs from the CNN by {err:.3g} (> 1e-10)")
    return err


# --- (c) Berzins' edge subdivision ----------------------------------------------------------------
def berzins_root() -> Path | None:
    for c in (os.environ.get("BERZINS_DIR"), *ANCHOR_DIRS):
        if c and Path(c, "edge_subdivision.py").exists():
            return Path(c)
    return None


class _Restricted2D(nn.Module):
    """The unrolled net's hidden layers on the slice, in the interface of Berzins' ``NN.Net``.

    ``ks = [2, n_1, ..., n_L]``, ``fcs`` the Linear layers (the first one folded with the slice:
    ``W0 @ [u v]`` and ``W0 @ x0 + b0``), ``ls``/``Ks`` as in ``NN.Net``; ``eval_block`` returns
    every neuron's pre-activation in float64 (its vertices arrive as float32 corners, exact for
    dyadic bounds, and float64 subdivision points).
    """

    def __init__(self, mlp: nn.Sequential, x0: np.ndarray, u: np.ndarray, v: np.ndarray):
        super().__init__()
        lins = [m for m in mlp if isinstance(m, nn.Linear)][:-1]  # hidden layers only
        W0, b0 = lins[0].weight.detach(), lins[0].bias.detach()
        UV = torch.from_numpy(np.stack([u, v], 1))
        first = nn.Linear(2, W0.shape[0], dtype=torch.float64)
        with torch.no_grad():
            first.weight.copy_(W0 @ UV)
            first.bias.copy_(W0 @ torch.from_numpy(x0) + b0)
        self.fcs = nn.ModuleList([first, *lins[1:]])
        self.ks = [2] + [lin.out_features for lin in self.fcs]
        self.D = len(self.fcs)
        self.ls = list(range(1, self.D + 1))
        self.Ks = [sum(self.ks[1:l]) for l in self.ls] + [sum(self.ks[1:])]

    def eval_block(self, x: torch.Tensor, device="cpu") -> torch.Tensor:
        x = x.to(torch.float64)
        Ks = self.Ks
        fs = torch.empty(len(x), Ks[-1], dtype=torch.float64, device=device)
        fs[:, Ks[0] : Ks[1]] = self.fcs[0](x)
        for i in range(1, self.D):
            fs[:, Ks[i] : Ks[i + 1]] = self.fcs[i](torch.relu(fs[:, Ks[i - 1] : Ks[i]]))
        return fs


def plane_genericity(net: _Restricted2D, bounds, tol: float = 1e-12) -> dict:
    """Why the slice is not in general position: lines of first-layer units (conv1 units and the
    max-pool tournament's differences of two of them, all affine on the plane) that coincide
    with another unit's line or pass through a corner of the box."""
    A = net.fcs[0].weight.detach().numpy()
    c = net.fcs[0].bias.detach().numpy()
    n = A.shape[0]
    rows = [np.concatenate([A, c[:, None]], 1)]
    side = int(round((n // 6) ** 0.5))  # conv1: 6 channels of side x side, channel-major
    for k in range(n // 4):  # differences within each 2x2 pooling window
        ch, rest = divmod(k, (side // 2) ** 2)
        i, j = divmod(rest, side // 2)
        idx = [(ch * side + 2 * i + di) * side + 2 * j + dj for di in (0, 1) for dj in (0, 1)]
        W = rows[0][idx]
        rows.append(np.array([W[q] - W[p] for p in range(4) for q in range(p + 1, 4)]))
    L = np.concatenate(rows)
    L = L[np.abs(L[:, :2]).max(1) > tol * np.abs(L).max()]  # non-constant on the plane
    s0, s1, t0, t1 = bounds
    corners = np.array([[s0, t0, 1.0], [s1, t0, 1.0], [s1, t1, 1.0], [s0, t1, 1.0]])
    scale = np.abs(L[:, :2]).sum(1) * max(map(abs, bounds)) + np.abs(L[:, 2])
    through_corner = (np.abs(L @ corners.T) <= tol * scale[:, None]).any(1)
    lead = np.where(np.abs(L[:, 0]) > np.abs(L[:, 1]), L[:, 0], L[:, 1])
    key = np.round(L / lead[:, None], 9)
    _, inv, cnt = np.unique(key, axis=0, return_inverse=True, return_counts=True)
    return {
        "lines_checked": int(L.shape[0]),
        "through_a_box_corner": int(through_corner.sum()),
        "sharing_their_line_with_another_unit": int((cnt[inv.reshape(-1)] > 1).sum()),
    }


def run_berzins(root: Path, net: _Restricted2D, bbox: tuple[float, float]):
    sys.path.insert(0, str(root))
    from edge_subdivision import skeletal_subdivision  # type: ignore[import-not-found]

    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)  # its working arrays are allocated in the default dtype
    log = io.StringIO()
    try:
        with torch.no_grad(), contextlib.redirect_stdout(log):
            vs, edges, _ = skeletal_subdivision(
                net, bbox=bbox, device="cpu", verbose=False, plot=False, prune=False
            )
    finally:
        torch.set_default_dtype(old)
    warned = "not generic" in log.getvalue()
    # a connected planar graph: faces = edges - vertices + 1 (the outer face left out)
    return {
        "cells": int(len(edges) - len(vs) + 1),
        "vertices": len(vs),
        "edges": len(edges),
    }, warned


def degenerate_units(net: _Restricted2D, bounds, n: int = 101) -> int:
    """Units whose pre-activation is exactly 0 at some points of an n x n grid, nonzero at others."""
    g = np.linspace(bounds[0], bounds[1], n)
    S, T = np.meshgrid(g, np.linspace(bounds[2], bounds[3], n))
    with torch.no_grad():
        Z = net.eval_block(torch.from_numpy(np.stack([S.ravel(), T.ravel()], 1)))
    zero = (Z == 0).any(0) & (Z != 0).any(0)
    return int(zero.sum())


def berzins_column(root: Path, net: _Restricted2D, bounds, repeats: int) -> dict:
    commit = ""
    for git in (["-C", str(root)], ["--git-dir", MIRROR]):
        if not commit:
            commit = subprocess.run(
                ["git", *git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True
            ).stdout.strip()
    info = {"source": str(root), "commit": commit or None, "hidden_units": net.Ks[-1]}
    try:
        t_c, ts_c, (cnt, warned) = median_time(
            lambda: run_berzins(root, net, (bounds[0], bounds[1])), repeats
        )
    except (RuntimeError, AssertionError, IndexError) as exc:
        return {
            "run": False,
            **info,
            "why": "its implementation assumes a generic arrangement (a hyperplane never passes "
            "through a vertex) and fails on the unrolled net: the max-pool tournament's units "
            "relu(a - b) with a = b = 0 (both pooled units dead) and the carriers relu(b) have "
            "pre-activations exactly 0 on open sets of the plane, so vertices get the value 0 "
            "(which it treats as +) and an edge between such a vertex and a negative one gets an "
            "extra zero in its sign vector, which breaks the face search",
            "error": f"{type(exc).__name__}: {exc}",
            "units_exactly_zero_on_part_of_a_grid": degenerate_units(net, bounds),
            "plane_not_in_general_position": plane_genericity(net, bounds),
        }
    return {
        "run": True,
        **info,
        "seconds": t_c,
        "all_seconds": ts_c,
        **cnt,
        "regions_per_second": cnt["cells"] / t_c,
        "warned_non_generic": warned,
        "counts": "hidden units only (its cells = activation regions); faces = E - V + 1; "
        "no linear pieces or decision boundary",
    }


def save(out: dict) -> Path:
    """Write the results (also after each column, marked partial, so a cut-off run leaves them)."""
    path = HERE / "results" / "regions_cnn.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2) + "\n")
    return path


# --- main -------------------------------------------------------------------------------------------
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--anchor-repeats", type=int, default=1)
    ap.add_argument("--margin", type=float, default=0.0)
    ap.add_argument("--no-berzins", action="store_true")
    ap.add_argument("--triple", type=int, nargs=3, default=None)
    args = ap.parse_args()
    torch.set_num_threads(2)
    t_start = time.perf_counter()
    out: dict = {
        "machine": {
            **machine(),
            "nngeom": ng.__version__,
            "nngeom_commit": subprocess.run(
                ["git", "-C", str(HERE), "rev-parse", "--short", "HEAD"],
                capture_output=True,
                text=True,
            ).stdout.strip(),
            "threads": torch.get_num_threads(),
        },
        "notes": "times in seconds, medians of the repeats listed; float64; CPU only; other work "
        "may share the machine",
    }

    ds = data.fashion_mnist()
    model, info = train_lenet(ds, **TRAIN)
    cnn = model.double().eval()
    Xte = ds.X_test.double().reshape(-1, 1, 28, 28)
    triple = tuple(args.triple) if args.triple else pick_triple(cnn, Xte)
    with torch.no_grad():
        preds = cnn(Xte[list(triple)]).argmax(1).tolist()
    x0, x1, x2 = (Xte[i] for i in triple)
    margin = float(args.margin)
    bounds = (0.0 - margin, 1.0 + margin, 0.0 - margin, 1.0 + margin)
    out["config"] = {
        "model": str(model).replace("\n", " "),
        "training": {**info["config"], "optimizer": "Adam", "dataset": "fashion-mnist (60k)"},
        "trained_this_run": not info["cached"],
        "train_seconds": info["train_seconds"],
        "test_accuracy": info["test_accuracy"],
        "test_images": list(triple),
        "labels": ds.y_test[list(triple)].tolist(),
        "predicted": preds,
        "plane": "x0 + s (x1 - x0) + t (x2 - x0)",
        "margin": margin,
        "bounds": list(bounds),
        "dtype": "float64",
        "repeats_conv": args.repeats,
        "repeats_anchors": args.anchor_repeats,
    }
    print(json.dumps(out["config"], indent=1), flush=True)

    # (b) unrolled net, checked -------------------------------------------------------------------
    mlp = unroll(cnn)
    err = check_unrolled(cnn, mlp, Xte[:500])
    widths = [m.out_features for m in mlp if isinstance(m, nn.Linear)]
    out["unrolled"] = {"widths": widths, "hidden_units": sum(widths[:-1]), "max_abs_diff": err}
    o, u, v = (a.reshape(-1).numpy() for a in (x0, x1 - x0, x2 - x0))
    db_kw = (
        {"decision_boundary": True}
        if "decision_boundary" in inspect.signature(ng.regions_2d).parameters
        else {}
    )

    # (a) conv path ---------------------------------------------------------------------------------
    res: dict = {}
    merge = True  # (a) and (b) are timed with the same options
    if hasattr(ng, "plane_through"):
        plane = ng.plane_through(x0, x1, x2, margin=margin)
        first_error = None
        for merge in (True, False):
            try:
                t_a, ts_a, Ra = median_time(
                    lambda m=merge: ng.regions_2d(
                        cnn, plane, decision_boundary=True, merge_pieces=m
                    ),
                    args.repeats,
                )
            except Exception as exc:  # the conv path is new: record it, try without merging
                first_error = first_error or f"{type(exc).__name__}: {exc}"
                continue
            seg = np.asarray(Ra.decision_boundary)
            res["conv"] = {
                "run": True,
                "merge_pieces": merge,
                "seconds": t_a,
                "all_seconds": ts_a,
                "regions": Ra.n_regions,
                "pieces": Ra.n_pieces if merge else None,
                "regions_per_second": Ra.n_regions / t_a,
                "decision_boundary_segments": int(seg.shape[0]),
                "decision_boundary_length": segments_length(seg),
                "decision_boundary_length_recomputed": decision_boundary_length(
                    Ra.vertices, Ra.n_vertices, Ra.slopes, Ra.intercepts
                )[0],
            }
            if first_error:
                res["conv"]["failed_with_merge_pieces"] = first_error
            break
        else:
            res["conv"] = {"run": False, "why": f"the conv path failed: {first_error}"}
            merge = True
    else:
        res["conv"] = {"run": False, "why": "ng.plane_through is not in this nngeom yet"}
    print("(a)", json.dumps(res["conv"], indent=1), flush=True)
    save(out | {"results": res, "partial": True})

    t_b, ts_b, Rb = median_time(
        lambda: ng.regions_2d(mlp, o, u, v, bounds, merge_pieces=merge, **db_kw),
        args.anchor_repeats,
    )
    res["unrolled_mlp_path"] = {
        "run": True,
        "seconds": t_b,
        "all_seconds": ts_b,
        "regions": Rb.n_regions,
        "merge_pieces": merge,
        "pieces": Rb.n_pieces if merge else None,
        "regions_per_second": Rb.n_regions / t_b,
        "decision_boundary_length_recomputed": decision_boundary_length(
            Rb.vertices, Rb.n_vertices, Rb.slopes, Rb.intercepts
        )[0],
        "includes_decision_boundary": bool(db_kw),
    }
    if db_kw:
        seg = np.asarray(Rb.decision_boundary)
        res["unrolled_mlp_path"]["decision_boundary_segments"] = int(seg.shape[0])
        res["unrolled_mlp_path"]["decision_boundary_length"] = segments_length(seg)
    print("(b)", json.dumps(res["unrolled_mlp_path"], indent=1), flush=True)
    save(out | {"results": res, "partial": True})

    # (c) Berzins ---------------------------------------------------------------------------------
    root = berzins_root()
    if args.no_berzins:
        res["berzins"] = {"run": False, "why": "--no-berzins"}
    elif root is None:
        res["berzins"] = {
            "run": False,
            "why": "no checkout of arturs-berzins/relu_edge_subdivision in /work/anchors or "
            "$BERZINS_DIR",
        }
    elif bounds[0] != bounds[2] or bounds[1] != bounds[3]:
        res["berzins"] = {"run": False, "why": "its bbox is the same interval in every input"}
    else:
        res["berzins"] = berzins_column(
            root, _Restricted2D(mlp, o, u, v), bounds, args.anchor_repeats
        )
    print("(c)", json.dumps(res["berzins"], indent=1), flush=True)
    out["results"] = res

    # ratios and agreement --------------------------------------------------------------------------
    a, b, c = res["conv"], res["unrolled_mlp_path"], res["berzins"]
    ratios: dict = {}
    if a["run"]:
        ratios["unrolled_over_conv_seconds"] = b["seconds"] / a["seconds"]
        ratios["conv_over_unrolled_regions_per_second"] = (
            a["regions_per_second"] / b["regions_per_second"]
        )
        if c["run"]:
            ratios["berzins_over_conv_seconds"] = c["seconds"] / a["seconds"]
            ratios["conv_over_berzins_regions_per_second"] = (
                a["regions_per_second"] / c["regions_per_second"]
            )
    if c["run"]:
        ratios["berzins_over_unrolled_seconds"] = c["seconds"] / b["seconds"]
    out["ratios"] = ratios
    agree: dict = {}
    if a["run"]:
        agree["pieces_conv_vs_unrolled"] = [a["pieces"], b["pieces"]]
        agree["regions_conv_vs_unrolled"] = [a["regions"], b["regions"]]
        agree["decision_boundary_length_conv_vs_unrolled"] = [
            a["decision_boundary_length"],
            b.get("decision_boundary_length", b["decision_boundary_length_recomputed"]),
        ]
    if c["run"]:
        agree["cells_berzins_vs_unrolled_regions"] = [c["cells"], b["regions"]]
    out["agreement"] = agree
    out["target"] = "the conv path faster than both the unrolled MLP path and Berzins"
    out["machine"]["load_average_end"] = list(os.getloadavg())
    out["machine"]["script_seconds"] = time.perf_counter() - t_start
    print(json.dumps({"ratios": ratios, "agreement": agree}, indent=1))
    print(f"wrote {save(out)}")


if __name__ == "__main__":
    main()
