"""Benchmark: Berzins' edge subdivision on the unrolled LeNet-5, put in general position.

Run: ``.venv/bin/python benchmarks/regions_cnn_berzins.py [--cap SECONDS] [--jitter REL]``
(writes benchmarks/results/regions_cnn_berzins.json).

``benchmarks/regions_cnn.py`` times nngeom's conv path and the same net unrolled into dense
matrices on the MLP path; Berzins' implementation (arturs-berzins/relu_edge_subdivision) cannot
run on that unrolled net: its max-pool tournament has units that are exactly zero on open sets
of the plane, which breaks its face search (reason and diagnostics in regions_cnn.json). Here the
unrolled net is put in general position by adding to every hidden unit's bias a seeded random
amount of relative size ``--jitter`` (default 1e-9 of the layer's largest bias), which changes
the function by about that much and leaves the size of the problem unchanged, and Berzins' code
is run on it in a child process whose CPU time is capped (``--cap`` CPU seconds). The machine
may be shared, so CPU time is what is compared: on 2 cores a run needing C CPU seconds takes
at least C / 2 wall seconds, which is compared with the conv path's wall time of
``regions_cnn.json`` (another process run: only a large ratio carries weight).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import sys
import time
from pathlib import Path

import torch
from torch import nn

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _lenet import train_lenet, unroll  # noqa: E402
from _machine import machine  # noqa: E402
from nngeom import data  # noqa: E402
from regions_cnn import TRAIN, _Restricted2D, berzins_root, run_berzins  # noqa: E402

RESULTS = HERE / "results"


def jittered(net: _Restricted2D, rel: float, seed: int) -> _Restricted2D:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for lin in net.fcs:
            scale = float(lin.bias.abs().max()) or 1.0
            lin.bias.add_(rel * scale * (2 * torch.rand(lin.bias.shape, generator=g) - 1))
    return net


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` so far (Linux /proc), 0 when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _child(root: str, net: _Restricted2D, bbox, q) -> None:
    torch.set_num_threads(2)
    t0 = time.perf_counter()
    try:
        cnt, warned = run_berzins(Path(root), net, bbox)
        q.put({"ok": True, "seconds": time.perf_counter() - t0, **cnt, "warned": warned})
    except Exception as exc:  # its failure is the result
        q.put({"ok": False, "seconds": time.perf_counter() - t0, "error": f"{exc!r}"[:500]})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cap", type=float, default=1200.0, help="CPU seconds")
    ap.add_argument("--jitter", type=float, default=1e-9)
    args = ap.parse_args()
    prev = json.loads((RESULTS / "regions_cnn.json").read_text())
    triple = prev["config"]["test_images"]
    ds = data.fashion_mnist()
    model, _ = train_lenet(ds, **TRAIN)
    cnn = model.double().eval()
    Xte = ds.X_test.double().reshape(-1, 1, 28, 28)
    x0, x1, x2 = (Xte[i] for i in triple)
    mlp: nn.Sequential = unroll(cnn)
    o, u, v = (a.reshape(-1).numpy() for a in (x0, x1 - x0, x2 - x0))
    net = jittered(_Restricted2D(mlp, o, u, v), args.jitter, seed=0)
    root = berzins_root()
    out: dict = {
        "machine": machine(),
        "config": {
            "test_images": triple,
            "bounds": [0.0, 1.0],
            "hidden_units": net.Ks[-1],
            "jitter_relative": args.jitter,
            "cap_cpu_seconds": args.cap,
            "berzins_source": str(root),
        },
    }
    if root is None:
        out["berzins"] = {"run": False, "why": "no checkout of relu_edge_subdivision"}
    else:
        q: mp.Queue = mp.get_context("fork").Queue()
        p = mp.get_context("fork").Process(target=_child, args=(str(root), net, (0.0, 1.0), q))
        t0 = time.perf_counter()
        p.start()
        cpu = 0.0
        while p.is_alive() and cpu < args.cap:  # the cap is on the child's CPU time
            p.join(2.0)
            cpu = max(cpu, cpu_seconds(p.pid))
        if p.is_alive():
            p.kill()
            p.join()
            out["berzins"] = {
                "run": True,
                "finished": False,
                "cpu_seconds_at_least": cpu,
                "wall_seconds": time.perf_counter() - t0,
            }
        else:
            r = q.get() if not q.empty() else {"ok": False, "error": "no result"}
            out["berzins"] = {
                "run": True,
                "finished": bool(r.pop("ok")),
                "cpu_seconds": cpu,
                "wall_seconds": time.perf_counter() - t0,
                **r,
            }
    conv = prev["results"]["conv"]["seconds"]
    b = out["berzins"]
    out["conv_path_wall_seconds_from_regions_cnn_json"] = conv
    # the conv path used at most 2 cores: its CPU time is at most 2 x its wall time, and a run
    # that needs C CPU seconds takes at least C / 2 wall seconds on 2 cores
    cpu = b.get("cpu_seconds", b.get("cpu_seconds_at_least"))
    if cpu:
        key = "berzins_min_wall_on_2_cores_over_conv_wall" + (
            "" if b.get("finished") else "_at_least"
        )
        out[key] = (cpu / 2.0) / conv
    out["machine"]["load_average_end"] = list(os.getloadavg())
    dest = RESULTS / "regions_cnn_berzins.json"
    dest.write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
