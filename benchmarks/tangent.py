"""Benchmark: tangent sensitivity on a 784-512-512-10 ReLU MLP, batch 256, fp32, in ONE process.

Side by side:
  * nngeom closed form (exact, all 10 outputs, whole batch);
  * nngeom Hutchinson estimate (exact deltas, 2 and 8 Rademacher probes per example);
  * anchor 1: the torch.func jvp-of-vjp path (forward-over-reverse along the 784 input basis
    directions, vmapped in chunks of 64: the authors' trace trick in torch), timed on ONE example
    and ONE output and scaled to examples/s for all 10 outputs;
  * anchor 2: materialising the P x d mixed derivative with torch.func (jacrev over the parameters
    of jacrev over the input, vmapped in chunks), ONE example and ONE output (~2.1 GB).

Peak memory is the largest increase of this process's resident set size over the level before
the call, sampled every 2 ms by a thread (an estimate; short spikes may be missed).

Generic path (``--section generic``): ``tangent_sensitivity_squared`` on a small conv net that
is not an MLP (Conv2d(1,4,3), ReLU, MaxPool2d(2), Conv2d(4,8,3), ReLU, Flatten, Linear(..,10)),
100 fp32 examples of shape (1, 14, 14) (``--batch``, ``--side``), all 10 outputs, against the
generic path as it was before (a Python loop over examples and outputs of vmapped jvp-of-grad
chunks, copied below as ``_old_generic``), timed alternately in this process, one intra-op thread.

Run: .venv/bin/python benchmarks/tangent.py [--section all|mlp|generic] [--side 14] [--batch 100]
     (writes benchmarks/results/tangent.json; one section updates only its own keys;
     the 28x28 figure: --section generic --side 28 --batch 2)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import threading
import time
import warnings
from pathlib import Path

import torch

import nngeom as ng
from nngeom.sensitivity import tangent_sensitivity_hutchinson, tangent_sensitivity_squared

SIZES = (784, 512, 512, 10)
BATCH = 256
OUT = Path(__file__).parent / "results" / "tangent.json"


def _rss() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class PeakRSS:
    """Largest RSS increase (bytes) over the level at entry, sampled every 2 ms."""

    def __enter__(self) -> PeakRSS:
        self.base = _rss()
        self.peak = self.base
        self._stop = False
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()
        return self

    def _run(self) -> None:
        while not self._stop:
            self.peak = max(self.peak, _rss())
            time.sleep(0.002)

    def __exit__(self, *exc: object) -> None:
        self._stop = True
        self._t.join()
        self.peak = max(self.peak, _rss())

    @property
    def increase(self) -> int:
        return self.peak - self.base


def timed(fn, repeats: int) -> tuple[float, list[float], int, object]:
    """Median time of ``repeats`` plain calls, then the peak RSS increase of one more call.

    The RSS sampler is a Python thread that competes for the GIL and a core: it runs only during
    the memory call, so it does not slow the timed calls (it inflated a 17 ms call to 26 ms).
    """
    times, out = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    with PeakRSS() as m:
        fn()
    return statistics.median(times), times, m.increase, out


def main_mlp() -> dict:
    warnings.filterwarnings("ignore", message=".*torch.jit.script.*", category=DeprecationWarning)
    net = ng.mlp(SIZES, seed=0)  # fp32
    g = torch.Generator().manual_seed(0)
    X = torch.rand(BATCH, SIZES[0], generator=g)  # pixel-like inputs in [0, 1]
    params = {k: v.detach() for k, v in net.named_parameters()}
    P = sum(v.numel() for v in params.values())
    d = SIZES[0]
    res: dict = {
        "model": "784-512-512-10 ReLU MLP (nngeom.mlp, seed 0), fp32",
        "batch": BATCH,
        "parameters": P,
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "machine": platform.machine(),
        "peak_memory_method": "max RSS increase over the pre-call level, sampled every 2 ms, "
        "in one extra call after the timed ones (the sampler thread would slow the timed calls)",
        "note": "timings are medians of repeats (5 for the closed form, 21 for Hutchinson)",
    }

    # ---- nngeom closed form: exact, 10 outputs, whole batch (public API: strategy "auto", which
    # for this net is the per-example active-block path), and the batched path for comparison
    from nngeom.nets import as_mlp
    from nngeom.sensitivity import _closed_form_sq

    view = as_mlp(net)
    ks = list(range(SIZES[-1]))

    def closed(strategy: str):
        return lambda: _closed_form_sq(view, X, ks, 64, strategy)

    tangent_sensitivity_squared(net, X[:8])  # warm-up
    cf_t, cf_all, cf_mem, exact = timed(lambda: tangent_sensitivity_squared(net, X), 5)
    exact = exact.double()
    b_t, b_all, b_mem, b_val = timed(closed("batched"), 5)
    res["closed_form"] = {
        "what": "tangent_sensitivity_squared (auto -> active-block path, batched over examples), default threads",
        "median_s_batch": cf_t,
        "times_s": cf_all,
        "examples_per_s": BATCH / cf_t,
        "peak_rss_increase_mb": cf_mem / 2**20,
    }
    res["closed_form_batched"] = {
        "what": "the batched Gram path (all units, chunks of 64 examples), default threads",
        "median_s_batch": b_t,
        "times_s": b_all,
        "examples_per_s": BATCH / b_t,
        "peak_rss_increase_mb": b_mem / 2**20,
        "max_relative_difference_from_auto": float(((b_val.double() - exact).abs() / exact).max()),
    }
    print(
        f"closed form: {cf_t:.3f} s per batch of {BATCH} -> {BATCH / cf_t:.1f} examples/s (10 outputs), "
        f"peak +{cf_mem / 2**20:.0f} MB; batched path {b_t:.3f} s"
    )

    # ---- Hutchinson (2 and 8 Rademacher probes per example)
    ts_exact = exact.sqrt()
    hut = {}
    for m in (2, 8):
        tangent_sensitivity_hutchinson(net, X[:8], probes=m)
        h_t, h_all, h_mem, est = timed(
            lambda m=m: tangent_sensitivity_hutchinson(net, X, probes=m, seed=1), 21
        )
        ts_est = est.values.double()
        err_mean_ts = float((ts_est.mean() - ts_exact.mean()).abs() / ts_exact.mean())
        err_mean_sq = float((est.squared.double().mean() - exact.mean()).abs() / exact.mean())
        per_ex_rel = float(((ts_est - ts_exact).abs() / ts_exact).median())
        hut[m] = {
            "probes": m,
            "median_s_batch": h_t,
            "times_s": h_all,
            "examples_per_s": BATCH / h_t,
            "speedup_vs_closed_form": cf_t / h_t,
            "speedup_vs_closed_form_batched": b_t / h_t,
            "relative_error_of_mean_TS": err_mean_ts,
            "relative_error_of_mean_TS_squared": err_mean_sq,
            "median_relative_error_per_example_output": per_ex_rel,
            "peak_rss_increase_mb": h_mem / 2**20,
        }
        print(
            f"hutchinson ({m} probes): {h_t:.4f} s per batch -> {BATCH / h_t:.0f} examples/s, "
            f"{cf_t / h_t:.1f}x the closed form; error of the mean TS {100 * err_mean_ts:.3f}% "
            f"(TS^2: {100 * err_mean_sq:.3f}%)"
        )
    res["hutchinson_2_probes"] = hut[2]
    res["hutchinson_8_probes"] = hut[8]
    h_t = hut[2]["median_s_batch"]
    err_mean_ts = hut[2]["relative_error_of_mean_TS"]

    # ---- anchor 1: torch.func jvp of vjp (grad), one example, one output
    from torch.func import functional_call, grad, jacrev, jvp, vmap

    def f_k(p, x, k: int = 0):
        return functional_call(net, p, (x.unsqueeze(0),))[0, k]

    x0 = X[0]

    def jvp_of_vjp(chunk: int = 64) -> torch.Tensor:
        def gx(xx):
            return grad(f_k)(params, xx)

        def col_sq(v):
            _, t = jvp(gx, (x0,), (v,))
            return sum((tt**2).sum() for tt in t.values())

        total = torch.zeros(())
        eye = torch.eye(d)
        for s in range(0, d, chunk):
            total = total + vmap(col_sq)(eye[s : s + chunk]).sum()
        return total

    a_t, a_all, a_mem, a_val = timed(jvp_of_vjp, 3)
    a_err = float((a_val.double() - exact[0, 0]).abs() / exact[0, 0])
    res["anchor_jvp_of_vjp"] = {
        "what": "torch.func jvp(grad) along 784 basis directions, vmap chunks of 64; 1 example x 1 output",
        "median_s_per_example_per_output": a_t,
        "times_s": a_all,
        "examples_per_s_all_outputs": 1.0 / (10 * a_t),
        "relative_difference_from_closed_form": a_err,
        "peak_rss_increase_mb": a_mem / 2**20,
    }
    print(
        f"jvp-of-vjp anchor: {a_t:.2f} s per example per output (agrees with closed form to {a_err:.1e})"
    )

    # ---- anchor 2: materialise the d x P mixed derivative (reverse over reverse), one example, one output
    def materialise() -> torch.Tensor:
        def dfdx(p):
            return jacrev(f_k, argnums=1)(p, x0)  # (d,)

        M = jacrev(dfdx, chunk_size=16)(params)  # dict of (d, *shape): d x P in all
        return sum(torch.linalg.vector_norm(m).double() ** 2 for m in M.values())

    try:
        m_t, m_all, m_mem, m_val = timed(materialise, 2)
        m_err = float((m_val - exact[0, 0]).abs() / exact[0, 0])
        res["anchor_materialise"] = {
            "what": "torch.func jacrev(params) of jacrev(x), chunk_size 16: the full 784 x P matrix; 1 example x 1 output",
            "median_s_per_example_per_output": m_t,
            "times_s": m_all,
            "examples_per_s_all_outputs": 1.0 / (10 * m_t),
            "matrix_gb": d * P * 4 / 1e9,
            "relative_difference_from_closed_form": m_err,
            "peak_rss_increase_mb": m_mem / 2**20,
        }
        print(
            f"materialise anchor: {m_t:.2f} s per example per output, peak +{m_mem / 2**20:.0f} MB"
        )
    except RuntimeError as exc:  # out of memory on a small machine
        res["anchor_materialise"] = {"error": str(exc)[:300]}

    # ---- the same nngeom paths with one intra-op thread (small per-example products lose to
    # thread synchronisation when the 2 cores are shared)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        one = {}
        for name, fn in (
            ("closed_form_auto", lambda: tangent_sensitivity_squared(net, X)),
            ("closed_form_batched", closed("batched")),
            (
                "hutchinson_8_probes",
                lambda: tangent_sensitivity_hutchinson(net, X, probes=8, seed=1),
            ),
        ):
            t1, all1, mem1, _ = timed(fn, 5)
            one[name] = {
                "median_s_batch": t1,
                "times_s": all1,
                "examples_per_s": BATCH / t1,
                "peak_rss_increase_mb": mem1 / 2**20,
            }
            print(f"1 thread, {name}: {t1:.3f} s -> {BATCH / t1:.0f} examples/s")
        res["one_thread"] = one
    finally:
        torch.set_num_threads(threads)

    # ---- ratios and targets
    per_ex_all_outputs_anchor = 10 * a_t
    per_ex_closed = cf_t / BATCH
    res["ratios"] = {
        "closed_form_speedup_vs_jvp_of_vjp": per_ex_all_outputs_anchor / per_ex_closed,
        "closed_form_speedup_vs_materialise": (
            10 * res["anchor_materialise"]["median_s_per_example_per_output"] / per_ex_closed
            if "median_s_per_example_per_output" in res["anchor_materialise"]
            else None
        ),
        "hutchinson_speedup_vs_closed_form": cf_t / h_t,
    }
    res["targets"] = {
        "closed_form_>=1000x_jvp_of_vjp": res["ratios"]["closed_form_speedup_vs_jvp_of_vjp"]
        >= 1000,
        "closed_form_>=50_examples_per_s": BATCH / cf_t >= 50,
        "closed_form_peak_<=1GB": cf_mem <= 2**30,
        "hutchinson_2_probes_>=10x_closed_form": cf_t / h_t >= 10,
        "hutchinson_2_probes_error_of_mean_<=2%": err_mean_ts <= 0.02,
    }
    print(json.dumps(res["ratios"], indent=2))
    print(json.dumps(res["targets"], indent=2))
    return res


# ------------------------------------------------------------------------------------------------
# generic path on a small conv net
# ------------------------------------------------------------------------------------------------


def conv_net(side: int) -> torch.nn.Module:
    """Conv2d(1,4,3), ReLU, MaxPool2d(2), Conv2d(4,8,3), ReLU, Flatten, Linear(.., 10), fp32."""
    from torch import nn

    s = (side - 2) // 2 - 2
    torch.manual_seed(0)  # the benchmark script's own weights; library code never does this
    return nn.Sequential(
        nn.Conv2d(1, 4, 3),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(4, 8, 3),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(8 * s * s, 10),
    )


def _old_generic(model: torch.nn.Module, X: torch.Tensor, chunk_size: int = 64) -> torch.Tensor:
    """The generic path before the rewrite (anchor): for every example and output, torch.func.jvp
    of torch.func.grad along the input basis directions, ``chunk_size`` directions vmapped."""
    from torch.func import functional_call, grad, jvp, vmap

    params = {k: v.detach() for k, v in model.named_parameters()}
    buffers = {k: v.detach() for k, v in model.named_buffers()}

    def out_k(p, x, k):
        return functional_call(model, (p, buffers), (x.unsqueeze(0),)).reshape(-1)[k]

    with torch.no_grad():
        n_out = model(X[:1])[0].numel()
    d = int(X[0].numel())
    shape = X.shape[1:]
    rows = []
    for x in X:
        row = []
        for k in range(n_out):
            kt = torch.tensor(k, device=X.device)

            def g(xx, kt=kt):
                return grad(out_k)(params, xx, kt)

            def col_sq(v, x=x, g=g):
                _, t = jvp(g, (x,), (v,))
                return sum((tt**2).sum() for tt in t.values())

            total = torch.zeros((), dtype=X.dtype, device=X.device)
            for start in range(0, d, chunk_size):
                idx = torch.arange(start, min(start + chunk_size, d), device=X.device)
                basis = torch.zeros(len(idx), d, dtype=X.dtype, device=X.device)
                basis[torch.arange(len(idx)), idx] = 1.0
                total = total + vmap(col_sq)(basis.reshape(len(idx), *shape)).sum()
            row.append(total)
        rows.append(torch.stack(row))
    return torch.stack(rows)


def main_generic(side: int = 14, batch: int = 100, repeats_old: int = 3, repeats_new: int = 7):
    warnings.filterwarnings("ignore", message=".*torch.jit.script.*", category=DeprecationWarning)
    net = conv_net(side)
    g = torch.Generator().manual_seed(0)
    X = torch.rand(batch, 1, side, side, generator=g)
    P = sum(p.numel() for p in net.parameters())
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:

        def new():
            return tangent_sensitivity_squared(net, X)

        def old():
            return _old_generic(net, X)

        with PeakRSS() as m:  # first call: the allocator grows to the block size here
            new()  # (and torch scripts its forward-mode decompositions once per process)
        _old_generic(net, X[:1])
        t_new, t_old = [], []
        ref = val = None
        # alternate the two so that a change in the load of the shared machine hits both
        for r in range(max(repeats_old, repeats_new)):
            if r < repeats_new:
                t = time.perf_counter()
                val = new()
                t_new.append(time.perf_counter() - t)
            if r < repeats_old:
                t = time.perf_counter()
                ref = old()
                t_old.append(time.perf_counter() - t)
            print(f"  repeat {r}: new {t_new[-1]:.3f} s, old {t_old[-1]:.2f} s", flush=True)
    finally:
        torch.set_num_threads(threads)
    med_new, med_old = statistics.median(t_new), statistics.median(t_old)
    rel = float(((val.double() - ref.double()).abs() / ref.double().abs()).max())
    res = {
        "model": f"Conv2d(1,4,3) ReLU MaxPool2d(2) Conv2d(4,8,3) ReLU Flatten Linear(..,10), "
        f"fp32, inputs (N, 1, {side}, {side}) uniform in [0, 1]",
        "batch": batch,
        "outputs": 10,
        "parameters": P,
        "input_dim": side * side,
        "torch_threads": 1,
        "threads_note": "one intra-op thread for both: the 2 cores are shared with other work "
        "and two threads made single calls up to 16x slower under contention",
        "new": {
            "what": "tangent_sensitivity_squared (auto -> generic path: vjp of jvp, vmapped over "
            "blocks of examples x directions x outputs; default chunk from the memory budget)",
            "median_s_batch": med_new,
            "times_s": t_new,
            "examples_per_s": batch / med_new,
            "peak_rss_increase_mb_first_call": m.increase / 2**20,
        },
        "anchor_old_generic": {
            "what": "the previous generic path (loop over examples and outputs, jvp of grad "
            "along the input directions in vmapped chunks of 64)",
            "median_s_batch": med_old,
            "times_s": t_old,
            "examples_per_s": batch / med_old,
        },
        "max_relative_difference_new_vs_old": rel,
        "speedup_vs_old": med_old / med_new,
        "targets": {"speedup_>=10x_old": med_old / med_new >= 10},
    }
    print(
        f"generic path, conv net {batch} x (1, {side}, {side}), 10 outputs: "
        f"new {med_new:.3f} s, old {med_old:.2f} s -> {med_old / med_new:.1f}x "
        f"(max relative difference {rel:.1e}), peak +{m.increase / 2**20:.0f} MB"
    )
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--section", choices=("all", "mlp", "generic"), default="all")
    ap.add_argument("--side", type=int, default=14, help="image side of the generic section")
    ap.add_argument("--batch", type=int, default=100, help="examples of the generic section")
    args = ap.parse_args()
    res = json.loads(OUT.read_text()) if OUT.exists() and args.section != "all" else {}
    if args.section in ("all", "mlp"):
        res.update(main_mlp())
    if args.section in ("all", "generic"):
        res[f"generic_conv_net_{args.side}px"] = main_generic(args.side, args.batch)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(res, indent=2) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
