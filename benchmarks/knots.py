"""Benchmark: exact knots (nngeom.knots) against a line walk and dense sampling; 2-D partitions.

Run: ``.venv/bin/python benchmarks/knots.py`` (writes benchmarks/results/knots.json).

Measured in ONE process, medians of repeats:

1. 1->64->64->64->1 ReLU net at random init on [-10, 10]: ``ng.knots`` vs
   (a) a line walk that finds the next breakpoint with one forward pass per piece (the forward
       pass also propagates d/dx, so each step jumps exactly to the next breakpoint), written
       twice: with the model's torch layers (what a user would write) and in lean numpy float64;
   (b) dense sampling of the activation pattern (batched torch forward) at the coarsest
       resolution (doubling) that finds the same number of breakpoints.
2. The bound-attaining 1->64->64->64->1 net (274,624 knots): ``ng.knots`` time, the line walk
   (once), and the floor: one batched forward pass (numpy, float64) at all final pieces.
3. 2-D: exact partition of a 2->100->100->1 net on [-1, 1]^2 (regions per second).
"""

from __future__ import annotations

import json
import math
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

import nngeom as ng
from _machine import machine
from nngeom.knots import layer_forms


def median_time(fn, repeats: int, warmup: int = 2) -> tuple[float, object]:
    out = None
    for _ in range(warmup):
        out = fn()
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts), out


def line_walk(layers, lo: float, hi: float) -> tuple[int, int]:
    """(knots, breakpoints) by walking piece to piece: one forward pass (with d/dx) per piece."""
    x = lo
    n_bp = n_knots = 0
    prev_slope = None
    step = 1e-9 * max(1.0, abs(lo), abs(hi))
    while True:
        h = np.array([x])
        dh = np.array([1.0])
        t_next = hi
        for W, b, form in layers:
            z = W @ h + b
            dz = W @ dh
            if form is None:
                h, dh = z, dz
                break
            with np.errstate(divide="ignore", invalid="ignore"):
                t = -z / dz
            ok = (dz != 0) & (t > step * 0.5)
            if ok.any():
                t_next = min(t_next, x + float(t[ok].min()))
            on = z > 0
            h, dh = np.where(on, z, 0.0), np.where(on, dz, 0.0)
        if prev_slope is not None and np.abs(dh - prev_slope).max() > 1e-9 * max(
            1.0, np.abs(dh).max()
        ):
            n_knots += 1
        prev_slope = dh
        if t_next >= hi:
            return n_knots, n_bp
        n_bp += 1
        x = t_next + step


def line_walk_torch(net: torch.nn.Module, lo: float, hi: float) -> tuple[int, int]:
    """The same walk with the model's own torch layers: one forward pass (value and d/dx) per piece."""
    view = ng.as_mlp(net)
    lins = view.linears
    x = lo
    n_bp = n_knots = 0
    prev = None
    step = 1e-9 * max(1.0, abs(lo), abs(hi))
    with torch.no_grad():
        while True:
            h = torch.tensor([[x]], dtype=torch.float64)
            dh = torch.ones(1, 1, dtype=torch.float64)
            best = torch.tensor(hi - x, dtype=torch.float64)
            for i, lin in enumerate(lins):
                z = lin(h)
                dz = dh @ lin.weight.T
                if i == len(lins) - 1:
                    h, dh = z, dz
                    break
                t = -z / dz
                ok = (dz != 0) & (t > step * 0.5)
                best = torch.minimum(best, torch.where(ok, t, torch.inf).min())
                on = z > 0
                h, dh = z * on, dz * on
            if prev is not None and bool(
                (dh - prev).abs().max() > 1e-9 * max(1.0, float(dh.abs().max()))
            ):
                n_knots += 1
            prev = dh
            t_next = x + float(best)
            if t_next >= hi:
                return n_knots, n_bp
            n_bp += 1
            x = t_next + step


def dense_count(net: torch.nn.Module, lo: float, hi: float, n: int) -> int:
    view = ng.as_mlp(net)
    with torch.no_grad():
        xs = torch.linspace(lo, hi, n, dtype=torch.float64)[:, None]
        P = view.patterns(xs)
        return int((P[1:] != P[:-1]).any(1).sum())


def forward_at(layers, x: np.ndarray) -> np.ndarray:
    h = x[:, None]
    for W, b, form in layers:
        h = h @ W.T + b
        if form is not None:
            np.maximum(h, 0.0, out=h)
    return h


def berzins_anchor() -> dict:
    """Side by side with Berzins' relu_edge_subdivision (ICML 2023) on its own shipped models.

    Needs a checkout of github.com/arturs-berzins/relu_edge_subdivision in $BERZINS_DIR (kept
    outside this project, never committed). Its cell complex also splits by the output's zero
    level (the models are SDFs), so nngeom is run with a ReLU after the output to count the same
    cells; faces of its planar graph = edges - vertices + 1.
    """
    root = os.environ.get("BERZINS_DIR")
    if not root or not Path(root, "edge_subdivision.py").exists():
        return {
            "run": False,
            "why": "set BERZINS_DIR to a checkout of arturs-berzins/relu_edge_subdivision",
        }
    import contextlib
    import io

    from torch import nn

    sys.path.insert(0, root)
    cwd = os.getcwd()
    os.chdir(root)
    try:
        from edge_subdivision import skeletal_subdivision  # type: ignore[import-not-found]
        from NN import NetBunny  # type: ignore[import-not-found]

        rows = {}
        for depth, width in [(2, 100), (4, 32)]:
            with contextlib.redirect_stdout(io.StringIO()):
                f = NetBunny(dim=2, depth=depth, width=width)

            def run_b(f=f):
                with torch.no_grad(), contextlib.redirect_stdout(io.StringIO()):
                    return skeletal_subdivision(f, device="cpu", plot=0, prune=0, bbox=(-0.5, 0.5))

            t_b, (vs, edges, _) = median_time(run_b, repeats=5, warmup=1)
            layers: list = []
            for i, lin in enumerate(f.fcs):
                layers += [lin] + ([nn.ReLU()] if i < len(f.fcs) - 1 else [])
            seq = nn.Sequential(*layers, nn.ReLU())
            t_n, R = median_time(
                lambda seq=seq: ng.regions_2d(seq, extent=0.5, merge_pieces=False),
                repeats=5,
                warmup=1,
            )
            faces = len(edges) - len(vs) + 1
            rows[f"2-{depth}x{width} on [-0.5,0.5]^2"] = {
                "berzins_cells": int(faces),
                "nngeom_cells": R.n_regions,
                "same_count": int(faces) == R.n_regions,
                "berzins_s": t_b,
                "nngeom_s": t_n,
                "berzins_regions_per_s": faces / t_b,
                "nngeom_regions_per_s": R.n_regions / t_n,
                "speedup": t_b / t_n,
            }
        return {"run": True, **rows}
    finally:
        os.chdir(cwd)


def main() -> None:
    torch.set_num_threads(1)
    out: dict = {
        "machine": machine(),
        "notes": "medians of repeats; times in seconds; CPU only; other work may share the machine",
    }

    # 1. random init ----------------------------------------------------------------------
    net = ng.mlp([1, 64, 64, 64, 1], seed=0, dtype=torch.float64)
    _, layers = layer_forms(net)
    t_ng, k = median_time(lambda: ng.knots(net, -10.0, 10.0), repeats=101, warmup=5)
    t_walk, (wk, wbp) = median_time(lambda: line_walk(layers, -10.0, 10.0), repeats=11)
    t_twalk_r, (twk, twbp) = median_time(
        lambda: line_walk_torch(net, -10.0, 10.0), repeats=5, warmup=1
    )
    n = 256
    while dense_count(net, -10.0, 10.0, n) < k.n_breakpoints and n < 2**26:
        n *= 2
    t_dense, dc = median_time(lambda: dense_count(net, -10.0, 10.0, n), repeats=7, warmup=1)
    out["random_init_1x64x64x64x1"] = {
        "interval": [-10.0, 10.0],
        "knots": k.count,
        "breakpoints": k.n_breakpoints,
        "nngeom_s": t_ng,
        "line_walk_numpy_s": t_walk,
        "line_walk_counts": [wk, wbp],
        "line_walk_torch_s": t_twalk_r,
        "line_walk_torch_counts": [twk, twbp],
        "speedup_vs_line_walk_torch": t_twalk_r / t_ng,
        "dense_samples_needed": n,
        "dense_s": t_dense,
        "dense_breakpoints_found": dc,
        "speedup_vs_line_walk_numpy": t_walk / t_ng,
        "speedup_vs_dense": t_dense / t_ng,
        "target_ms": 2.0,
        "target_speedup_vs_line_walk": 20.0,
    }
    print(json.dumps(out["random_init_1x64x64x64x1"], indent=1))

    # 2. tight net ------------------------------------------------------------------------
    tight = ng.tight_knot_network([64, 64, 64])
    _, tlayers = layer_forms(tight)
    t_tight, tk = median_time(lambda: ng.knots(tight), repeats=7, warmup=1)
    edges = tk.edges.copy()
    mids = 0.5 * (np.clip(edges[:-1], -2, 3) + np.clip(edges[1:], -2, 3))
    t_fwd, _ = median_time(lambda: forward_at(tlayers, mids), repeats=7, warmup=1)
    t0 = time.perf_counter()
    tw, tbp = line_walk(tlayers, -1.0, 2.0)
    t_twalk = time.perf_counter() - t0
    out["tight_1x64x64x64x1"] = {
        "knots": tk.count,
        "bound": ng.knot_upper_bound([64, 64, 64]),
        "nngeom_s": t_tight,
        "target_s": 2.0,
        "forward_all_pieces_s": t_fwd,
        "ratio_to_forward_floor": t_tight / t_fwd,
        "target_ratio_to_forward_floor": 5.0,
        "line_walk_s_single_run": t_twalk,
        "line_walk_counts_on_[-1,2]": [tw, tbp],
        "speedup_vs_line_walk": t_twalk / t_tight,
        "ns_per_knot": 1e9 * t_tight / tk.count,
    }
    print(json.dumps(out["tight_1x64x64x64x1"], indent=1))

    # 3. 2-D ------------------------------------------------------------------------------
    net2 = ng.mlp([2, 100, 100, 1], seed=0)
    t2d, R = median_time(lambda: ng.regions_2d(net2, extent=1.0), repeats=3, warmup=1)
    t2n, Rn = median_time(
        lambda: ng.regions_2d(net2, extent=1.0, merge_pieces=False), repeats=3, warmup=0
    )
    out["regions_2d_2x100x100x1"] = {
        "extent": [-1, 1, -1, 1],
        "regions": R.n_regions,
        "pieces": R.n_pieces,
        "seconds_with_piece_merging": t2d,
        "seconds_partition_only": t2n,
        "regions_per_second": R.n_regions / t2n,
        "anchor_note": "Berzins' edge subdivision is compared on its own models below",
    }
    print(json.dumps(out["regions_2d_2x100x100x1"], indent=1))
    out["berzins_edge_subdivision"] = berzins_anchor()
    print(json.dumps(out["berzins_edge_subdivision"], indent=1))
    out["machine"]["load_average_end"] = list(os.getloadavg())
    path = Path(__file__).parent / "results" / "knots.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {path}")
    if not math.isfinite(t_ng):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
