"""Benchmark: the model view costs plain MLPs nothing; models people write run at MLP speed.

Run: ``.venv/bin/python benchmarks/view.py [REF]`` (writes benchmarks/results/view.json).

The MLPs of ``benchmarks/knots.py`` (1->64->64->64->1 knots on [-10, 10], the bound-attaining
1->64^3->1 net, 2->100->100->1 regions on [-1, 1]^2, a 2->100->100->1 line) are timed in ONE
process, repeats interleaved, with:

* ``before``: nngeom as of git commit REF (default: the last commit before the model view),
  extracted into a temporary directory and imported as the package ``nngeom_prev``;
* ``now``: this checkout on the same ``nn.Sequential``;
* ``traced``: this checkout on the same weights written as an ``nn.Module`` whose forward calls
  ``F.relu`` (traced by torch.fx, folded into the MLP engines).

Ratios are of medians (``now / before``, ``traced / before``, and ``traced / now``: what the
traced path costs over the same engines on a Sequential); the target is <= 1.2.
"""

from __future__ import annotations

import importlib
import json
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

import nngeom as ng

ROOT = Path(__file__).resolve().parents[1]
REF = sys.argv[1] if len(sys.argv) > 1 else "0ae0a6e"


def load_previous(ref: str, tmp: Path):
    """nngeom at commit ``ref`` as the package ``nngeom_prev`` (relative imports only)."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", ref, "src/nngeom"], check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(tmp)], input=archive, check=True)
    shutil.move(str(tmp / "src" / "nngeom"), str(tmp / "nngeom_prev"))
    sys.path.insert(0, str(tmp))
    return importlib.import_module("nngeom_prev")


class FunctionalNet(nn.Module):
    """The same weights as a Sequential MLP, with F.relu in forward (what tutorials write)."""

    def __init__(self, seq: nn.Sequential) -> None:
        super().__init__()
        self.layers = nn.ModuleList(m for m in seq if isinstance(m, nn.Linear))

    def forward(self, x):
        for lin in self.layers[:-1]:
            x = F.relu(lin(x))
        return self.layers[-1](x)


def interleaved(fns: dict, repeats: int, warmup: int = 1) -> dict:
    out = {k: [] for k in fns}
    for _ in range(warmup):
        for f in fns.values():
            f()
    for _ in range(repeats):
        for k, f in fns.items():
            t0 = time.perf_counter()
            f()
            out[k].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in out.items()}


def case(name: str, prev_fn, now_fn, seq, traced, repeats: int) -> dict:
    t = interleaved(
        {
            "before": lambda: prev_fn(seq),
            "now": lambda: now_fn(seq),
            "traced": lambda: now_fn(traced),
        },
        repeats,
    )
    a, b, c = prev_fn(seq), now_fn(seq), now_fn(traced)
    res = {
        "median_s": t,
        "now_over_before": t["now"] / t["before"],
        "traced_over_before": t["traced"] / t["before"],
        "traced_over_now": t["traced"] / t["now"],
        "results_equal": bool(a == b == c),
        "result": a,
    }
    print(name, json.dumps(res))
    return res


def main() -> None:
    torch.set_num_threads(2)
    tmp = Path(tempfile.mkdtemp())
    try:
        prev = load_previous(REF, tmp)
        out: dict = {
            "ref": REF,
            "python": platform.python_version(),
            "torch": torch.__version__,
            "nngeom": ng.__version__,
            "threads": torch.get_num_threads(),
        }
        net = ng.mlp([1, 64, 64, 64, 1], seed=0, dtype=torch.float64)
        out["knots_1x64x64x64x1"] = case(
            "knots",
            lambda m, p=prev: p.knots(m, -10.0, 10.0).count,
            lambda m: ng.knots(m, -10.0, 10.0).count,
            net,
            FunctionalNet(net),
            repeats=501,
        )
        tight = ng.tight_knot_network([64, 64, 64])
        out["knots_tight_64x3"] = case(
            "tight",
            lambda m, p=prev: p.knots(m).count,
            lambda m: ng.knots(m).count,
            tight,
            FunctionalNet(tight),
            repeats=5,
        )
        net2 = ng.mlp([2, 100, 100, 1], seed=0)
        out["regions_2d_2x100x100x1"] = case(
            "regions_2d",
            lambda m, p=prev: p.regions_2d(m, extent=1.0).n_regions,
            lambda m: ng.regions_2d(m, extent=1.0).n_regions,
            net2,
            FunctionalNet(net2),
            repeats=5,
        )
        out["regions_on_line_2x100x100x1"] = case(
            "line",
            lambda m, p=prev: p.regions_on_line(m, [-1.0, -1.0], [1.0, 1.0]).n_regions,
            lambda m: ng.regions_on_line(m, [-1.0, -1.0], [1.0, 1.0]).n_regions,
            net2,
            FunctionalNet(net2),
            repeats=501,
        )
        dest = ROOT / "benchmarks" / "results" / "view.json"
        dest.write_text(json.dumps(out, indent=1) + "\n")
        print(f"wrote {dest}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
