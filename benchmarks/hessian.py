"""Benchmark: Hessian spectra, nngeom vs PyHessian, in one process run.

1. Top-10 Hessian eigenvalues of a 784-100-100-10 ReLU net (89,610 parameters, float32, the
   cross-entropy loss) on 1000 Fashion-MNIST images (digits padded to 784 features when
   Fashion-MNIST is missing): PyHessian's power iteration with deflation (``top_n=10``, its
   defaults ``maxIter=100, tol=1e-3``; and once with ``maxIter=1000, tol=1e-6``) against nngeom's
   Lanczos (``tol=1e-3`` on the residual; HVPs by double backward through a cached gradient
   graph). Accuracy: all against a float64 Lanczos reference at ``tol=1e-10``, both the 10
   largest eigenvalues and (power iteration's actual target) the 10 largest in magnitude.
2. The full spectrum of a ~10k-parameter net (784-12-10 tanh, 9,550 parameters, float64) on
   256 images: building the Hessian from batched HVPs (vmap) and ``eigvalsh``, timed apart.

Timings are medians of repeats; the machine's cores are shared, so absolute times are noisy
and the ratio is the number to read. Writes ``benchmarks/results/hessian.json``.

    .venv/bin/python benchmarks/hessian.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import torch

import nngeom as ng
from nngeom.data import image_classification
from nngeom.hessian import HessianOperator, eigvalsh, lanczos

OUT = Path(__file__).parent / "results" / "hessian.json"


def _data(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, str]:
    ds = image_classification("auto", n_train=n, n_test=1, seed=seed)
    X = ds.X_train
    if X.shape[1] < 784:
        X = torch.nn.functional.pad(X, (0, 784 - X.shape[1]))
    return X, ds.y_train, ds.name


def _timed(fn, repeats: int) -> tuple[float, list[float], object]:
    times, out = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), times, out


def top_eigenvalues(repeats: int) -> dict:
    from pyhessian import hessian as pyhessian

    X, y, name = _data(1000)
    net = ng.mlp([784, 100, 100, 10], "relu", seed=0)
    n_params = sum(p.numel() for p in net.parameters())
    crit = torch.nn.CrossEntropyLoss()

    # reference: float64 Lanczos, tight tolerance
    ref_net = ng.mlp([784, 100, 100, 10], "relu", seed=0, dtype=torch.float64)
    ref_op = HessianOperator(ref_net, X.double(), y, loss="ce")
    ref = lanczos(
        ref_op, k=10, which="largest", tol=1e-10, max_iter=400, seed=1
    ).eigenvalues.numpy()[::-1]
    # power iteration finds the largest |lambda|: the top-10 by magnitude, for PyHessian's target
    ends = lanczos(ref_op, k=10, which="both", tol=1e-10, max_iter=400, seed=1).eigenvalues.numpy()
    ref_mag = np.sort(ends[np.argsort(-np.abs(ends))[:10]])[::-1]

    def run_pyhessian():
        h = pyhessian(net, crit, data=(X, y), cuda=False)
        vals, _ = h.eigenvalues(top_n=10)
        return np.sort(np.array(vals))[::-1]

    def run_nngeom():
        op = HessianOperator(net, X, y, loss="ce")
        res = lanczos(op, k=10, which="largest", tol=1e-3, seed=0)
        return res.eigenvalues.numpy()[::-1], res.iterations

    def run_pyhessian_tight():
        h = pyhessian(net, crit, data=(X, y), cuda=False)
        vals, _ = h.eigenvalues(top_n=10, maxIter=1000, tol=1e-6)
        return np.sort(np.array(vals))[::-1]

    t_tight, all_tight, vals_tight = _timed(run_pyhessian_tight, 1)
    t_py, all_py, vals_py = _timed(run_pyhessian, repeats)
    t_ng, all_ng, (vals_ng, iters) = _timed(run_nngeom, repeats)
    err_py = float(np.max(np.abs(vals_py - ref) / np.abs(ref)))
    err_ng = float(np.max(np.abs(vals_ng - ref) / np.abs(ref)))
    err_tight = float(np.max(np.abs(vals_tight - ref) / np.abs(ref)))
    err_py_mag = float(np.max(np.abs(vals_py - ref_mag) / np.abs(ref_mag)))
    err_tight_mag = float(np.max(np.abs(vals_tight - ref_mag) / np.abs(ref_mag)))
    # the HVP itself, both ways
    op = HessianOperator(net, X, y, loss="ce", method="func")
    v = torch.randn(op.n, generator=torch.Generator().manual_seed(0))
    t_func, _, _ = _timed(lambda: op.matvec(v), max(5, repeats))
    op2 = HessianOperator(net, X, y, loss="ce", method="autograd")
    op2.matvec(v)
    t_auto, _, _ = _timed(lambda: op2.matvec(v), max(5, repeats))
    return {
        "task": "top-10 Hessian eigenvalues, 784-100-100-10 ReLU, cross-entropy, float32",
        "dataset": name,
        "n_samples": int(X.shape[0]),
        "n_parameters": n_params,
        "pyhessian_seconds_median": t_py,
        "pyhessian_seconds_all": all_py,
        "nngeom_seconds_median": t_ng,
        "nngeom_seconds_all": all_ng,
        "speedup": t_py / t_ng,
        "pyhessian_tight_settings": "top_n=10, maxIter=1000, tol=1e-6 (one run)",
        "pyhessian_tight_seconds": t_tight,
        "pyhessian_tight_max_rel_error": err_tight,
        "pyhessian_tight_top10": vals_tight.tolist(),
        "speedup_vs_tight": t_tight / t_ng,
        "nngeom_lanczos_iterations": int(iters),
        "pyhessian_max_rel_error": err_py,
        "nngeom_max_rel_error": err_ng,
        "reference_top10": ref.tolist(),
        "reference_top10_by_magnitude": ref_mag.tolist(),
        "pyhessian_max_rel_error_vs_magnitude_top10": err_py_mag,
        "pyhessian_tight_max_rel_error_vs_magnitude_top10": err_tight_mag,
        "pyhessian_top10": vals_py.tolist(),
        "nngeom_top10": vals_ng.tolist(),
        "hvp_seconds_torch_func": t_func,
        "hvp_seconds_cached_double_backward": t_auto,
    }


def full_spectrum(repeats: int) -> dict:
    X, y, name = _data(256)
    net = ng.mlp([784, 12, 10], "tanh", seed=0, dtype=torch.float64)
    op = HessianOperator(net, X.double(), y, loss="ce")
    t_build, all_build, H = _timed(op.full, repeats)
    t_eig, all_eig, ev = _timed(lambda: eigvalsh(H), repeats)
    t_np, all_np, ev_np = _timed(lambda: np.linalg.eigvalsh(H.numpy()), 1)
    return {
        "task": "full Hessian spectrum, 784-12-10 tanh, cross-entropy, float64",
        "dataset": name,
        "n_samples": int(X.shape[0]),
        "n_parameters": op.n,
        "build_seconds_median": t_build,
        "build_seconds_all": all_build,
        "eigvalsh_seconds_median": t_eig,
        "eigvalsh_seconds_all": all_eig,
        "numpy_eigvalsh_seconds": t_np,
        "total_seconds": t_build + t_eig,
        "target_seconds": 60.0,
        "max_abs_diff_vs_numpy": float(np.max(np.abs(ev.numpy() - ev_np))),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    out = {
        "benchmark": "hessian",
        "anchor": "PyHessian 0.1 (pip install pyhessian)",
        "machine": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "cpu": platform.processor() or platform.machine(),
        },
        "note": "CPU cores shared with other jobs while measuring: medians of repeats; read the ratios.",
        "top_eigenvalues": top_eigenvalues(args.repeats),
        "full_spectrum": full_spectrum(max(1, args.repeats - 1)),
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(out, indent=2))
    te, fs = out["top_eigenvalues"], out["full_spectrum"]
    print(
        f"top-10 eigenvalues ({te['n_parameters']} params, {te['n_samples']} samples): PyHessian "
        f"{te['pyhessian_seconds_median']:.2f} s (max rel err {te['pyhessian_max_rel_error']:.1e}), nngeom "
        f"{te['nngeom_seconds_median']:.2f} s (max rel err {te['nngeom_max_rel_error']:.1e}): "
        f"{te['speedup']:.2f}x"
    )
    print(
        f"full spectrum ({fs['n_parameters']} params): build {fs['build_seconds_median']:.1f} s + eigvalsh "
        f"{fs['eigvalsh_seconds_median']:.1f} s = {fs['total_seconds']:.1f} s (target < 60 s)"
    )
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
