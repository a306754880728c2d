"""Benchmark: chaotic time-series prediction (accuracy and time), in ONE process.

1. Mackey-Glass tau=17, T=6, inputs x(t), x(t-6), x(t-12), x(t-18), 500 training rows, the next 500
   rows as test (NRMSE by the std of the whole series): the Lapedes-Farber MLP (4-10-10-1 sigmoid,
   L-BFGS, 5 restarts screened for 2000 iterations, the best one continued to 40000) against linear AR (least squares and LMS), the cubic
   polynomial, NVAR and local linear prediction (k=10, ridge). Targets: MLP NRMSE <= 6e-3, >= 50x
   better than linear AR, >= 5x better than the cubic polynomial.
2. Data efficiency: the MLP against local linear prediction at N = 100, 250, 500 training rows.
3. Echo state network against reservoirpy's ESN of the same size (400 units) on the same data:
   2000 teacher-forced steps (washout 100), ridge readout on [1, u, r], then 84 free-running steps
   from 50 start points in later data; NRMSE84 = sqrt(mean over starts of err_84^2) / std (Jaeger &
   Haas). reservoirpy gets the same hyper-parameters with its own random matrices (5 seeds), and
   once the very same matrices (an implementation check). Fit and forecast times: medians of
   repeats, interleaved.
4. The Mackey-Glass generator's convergence order (ours) against reservoirpy's generator
   (measured the same way against a fine reference of ours, same constant history 1.2).

Run: .venv/bin/python benchmarks/chaos.py   (writes benchmarks/results/chaos.json)
"""

from __future__ import annotations

import json
import math
import platform
import statistics
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

import nngeom as ng
from nngeom.chaos import predictors as P

OUT = Path(__file__).parent / "results" / "chaos.json"
# L-BFGS iterations of the MLP in all: 5 restarts screened for 2000 iterations each, then the best
# one continues (the net is still improving slowly at this point)
MLP_ITER = 40000


def _timed(fn, repeats: int) -> tuple[list[float], object]:
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return times, out


def accuracy(x: np.ndarray) -> dict:
    scale = float(x.std())
    sp = ng.chaos.split(x, 500, 500, 4, 6, 6)
    makers = {
        "linear_ar": lambda: P.LinearAR(),
        "lms": lambda: P.LinearAR("lms"),
        "poly2": lambda: P.Polynomial(2),
        "poly3": lambda: P.Polynomial(3),
        "poly4": lambda: P.Polynomial(4),
        "nvar": lambda: P.NVAR(ridge=1e-6),
        "local_linear_k10": lambda: P.LocalLinear(10, ridge=1e-6),
        "mlp": lambda: P.LapedesFarberMLP(
            (10, 10), max_iter=MLP_ITER, restarts=5, screen_iter=2000, seed=0
        ),
    }
    out = {}
    for name, make in makers.items():
        reps = 1 if name == "mlp" else 5
        times, model = _timed(lambda make=make: make().fit(sp.X_train, sp.y_train), reps)
        err = ng.chaos.nrmse(sp.y_test, model.predict(sp.X_test), scale=scale)
        out[name] = {"nrmse": err, "fit_seconds_median": statistics.median(times), "repeats": reps}
        if name == "mlp":
            out[name]["restart_train_mse"] = model.restart_losses_
        print(f"  {name:18s} NRMSE {err:.3e}  fit {statistics.median(times):.3f} s", flush=True)
    mlp = out["mlp"]["nrmse"]
    out["ratios"] = {
        "linear_ar_over_mlp": out["linear_ar"]["nrmse"] / mlp,
        "poly3_over_mlp": out["poly3"]["nrmse"] / mlp,
        "local_linear_over_mlp": out["local_linear_k10"]["nrmse"] / mlp,
    }
    out["targets"] = {
        "mlp_nrmse_le_6e-3": mlp <= 6e-3,
        "linear_over_mlp_ge_50": out["ratios"]["linear_ar_over_mlp"] >= 50,
        "poly3_over_mlp_ge_5": out["ratios"]["poly3_over_mlp"] >= 5,
    }
    return out


def data_efficiency(x: np.ndarray, mlp_500: float) -> dict:
    scale = float(x.std())
    rows = {}
    for n in (100, 250, 500):
        sp = ng.chaos.split(x, n, 500, 4, 6, 6)
        loc = P.LocalLinear(10, ridge=1e-6).fit(sp.X_train, sp.y_train)
        e_loc = ng.chaos.nrmse(sp.y_test, loc.predict(sp.X_test), scale=scale)
        if n == 500:
            e_mlp = mlp_500
        else:
            m = P.LapedesFarberMLP(
                (10, 10), max_iter=MLP_ITER, restarts=5, screen_iter=2000, seed=0
            ).fit(sp.X_train, sp.y_train)
            e_mlp = ng.chaos.nrmse(sp.y_test, m.predict(sp.X_test), scale=scale)
        rows[str(n)] = {"mlp": e_mlp, "local_linear": e_loc, "local_over_mlp": e_loc / e_mlp}
        print(f"  N={n:4d}  MLP {e_mlp:.3e}  local linear {e_loc:.3e}", flush=True)
    return rows


def _rpy_forecast(model, u_ctx: np.ndarray, steps: int) -> np.ndarray:
    out = np.empty((u_ctx.shape[0], steps))
    for s in range(u_ctx.shape[0]):
        model.reset()
        y = np.ravel(model.run(u_ctx[s][:, None])[-1])
        for k in range(steps):
            out[s, k] = y[0]
            if k + 1 < steps:
                y = np.ravel(model.step(y))
    return out


def esn_vs_reservoirpy(units: int = 400) -> dict:
    from reservoirpy import ESN as RESN
    from reservoirpy.nodes import Reservoir, Ridge

    x = ng.chaos.mackey_glass(5000, 17, seed=0)
    train = x[:2000]
    scale = float(x.std())
    starts = np.linspace(2300, 4800, 50).astype(int)
    ctx, truth = ng.chaos.contexts(x, starts, 200, 84)
    hp = {
        "spectral_radius": 0.8,
        "input_scaling": 0.5,
        "bias_scaling": 0.2,
        "connectivity": 0.1,
        "ridge": 1e-8,
    }
    res: dict = {
        "units": units,
        "hyperparameters": hp,
        "train_steps": 2000,
        "washout": 100,
        "starts": 50,
    }
    mean, sd = float(train.mean()), float(train.std())
    u = (x - mean) / sd

    def ours_fit(seed: int):
        return P.ESN(units, seed=seed, **hp).fit_series(train)

    def rpy_model(seed: int, same_as: P.ESN | None = None):
        if same_as is not None:
            rv = Reservoir(
                units=units, W=same_as.W_, Win=same_as.W_in_, bias=same_as.b_, lr=1.0
            )
        else:
            from reservoirpy.mat_gen import uniform

            rv = Reservoir(
                units=units,
                sr=hp["spectral_radius"],
                lr=1.0,
                input_scaling=hp["input_scaling"],
                input_connectivity=1.0,
                rc_connectivity=hp["connectivity"],
                Win=uniform,
                bias=uniform(
                    units, low=-hp["bias_scaling"], high=hp["bias_scaling"], seed=seed + 1000
                ),
                seed=seed,
            )
        return RESN(reservoir=rv, readout=Ridge(ridge=hp["ridge"]), input_to_readout=True)

    def rpy_fit(model):
        model.fit(u[:1999, None], u[1:2000, None], warmup=100)
        return model

    ours_err, rpy_err = [], []
    for seed in range(5):
        o = ours_fit(seed)
        ours_err.append(ng.chaos.nrmse_at(truth, o.forecast(ctx, 84), 84, scale=scale))
        m = rpy_fit(rpy_model(seed))
        f = mean + sd * _rpy_forecast(m, (ctx - mean) / sd, 84)
        rpy_err.append(ng.chaos.nrmse_at(truth, f, 84, scale=scale))
        print(
            f"  seed {seed}: NRMSE84 ours {ours_err[-1]:.3e}  reservoirpy {rpy_err[-1]:.3e}",
            flush=True,
        )
    res["nrmse84_ours"] = ours_err
    res["nrmse84_reservoirpy"] = rpy_err
    res["log10_nrmse84_ours_mean"] = float(np.log10(np.mean(ours_err)))
    res["log10_nrmse84_reservoirpy_mean"] = float(np.log10(np.mean(rpy_err)))
    # the same matrices in both: an implementation check
    o = ours_fit(0)
    m = rpy_fit(rpy_model(0, same_as=o))
    f_ours = o.forecast(ctx, 84)
    f_rpy = mean + sd * _rpy_forecast(m, (ctx - mean) / sd, 84)
    res["same_matrices"] = {
        "nrmse84_ours": ng.chaos.nrmse_at(truth, f_ours, 84, scale=scale),
        "nrmse84_reservoirpy": ng.chaos.nrmse_at(truth, f_rpy, 84, scale=scale),
        "max_abs_forecast_difference": float(np.max(np.abs(f_ours - f_rpy))),
    }
    # timing, interleaved, medians (matrix generation excluded on both sides where possible:
    # ours builds its matrices in the constructor, reservoirpy at the first fit)
    t_ours_fit, t_rpy_fit, t_ours_fc, t_rpy_fc = [], [], [], []
    for r in range(5):
        esn = P.ESN(units, seed=r, **hp)
        t0 = time.perf_counter()
        esn.fit_series(train)
        t_ours_fit.append(time.perf_counter() - t0)
        mdl = rpy_model(r, same_as=esn)
        t0 = time.perf_counter()
        rpy_fit(mdl)
        t_rpy_fit.append(time.perf_counter() - t0)
        if r < 3:
            t0 = time.perf_counter()
            esn.forecast(ctx, 84)
            t_ours_fc.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            _rpy_forecast(mdl, (ctx - mean) / sd, 84)
            t_rpy_fc.append(time.perf_counter() - t0)
    res["fit_seconds_median"] = {
        "ours": statistics.median(t_ours_fit),
        "reservoirpy": statistics.median(t_rpy_fit),
    }
    res["forecast_seconds_median"] = {
        "ours": statistics.median(t_ours_fc),
        "reservoirpy": statistics.median(t_rpy_fc),
    }
    res["fit_speedup"] = (
        res["fit_seconds_median"]["reservoirpy"] / res["fit_seconds_median"]["ours"]
    )
    res["forecast_speedup"] = (
        res["forecast_seconds_median"]["reservoirpy"] / res["forecast_seconds_median"]["ours"]
    )
    res["fit_repeats"], res["forecast_repeats"] = 5, 3
    res["targets"] = {
        "at_least_as_accurate": float(np.mean(ours_err)) <= float(np.mean(rpy_err)),
        "faster_to_fit": res["fit_speedup"] > 1.0,
    }
    print(
        f"  fit: ours {res['fit_seconds_median']['ours']:.3f} s, reservoirpy "
        f"{res['fit_seconds_median']['reservoirpy']:.3f} s ({res['fit_speedup']:.1f}x); forecast 50x84: "
        f"ours {res['forecast_seconds_median']['ours']:.3f} s, reservoirpy "
        f"{res['forecast_seconds_median']['reservoirpy']:.3f} s ({res['forecast_speedup']:.1f}x)",
        flush=True,
    )
    return res


def generator_order() -> dict:
    from reservoirpy.datasets import mackey_glass as rpy_mg

    ref = ng.chaos.mackey_glass(101, 17, history=1.2, transient=0.0, step=1 / 128)
    out: dict = {"ours": {}, "reservoirpy": {}}
    for h in (1.0, 0.5, 0.25):
        ours = ng.chaos.mackey_glass(101, 17, history=1.2, transient=0.0, step=h)
        out["ours"][str(h)] = float(np.max(np.abs(ours - ref)))
        every = round(1 / h)
        hist = np.full(round(17 / h), 1.2)
        theirs = np.ravel(rpy_mg(100 * every + 1, tau=17, h=h, x0=1.2, history=hist))[::every]
        out["reservoirpy"][str(h)] = float(np.max(np.abs(theirs[:101] - ref)))
    for k in ("ours", "reservoirpy"):
        e = [out[k][s] for s in ("1.0", "0.5", "0.25")]
        out[k + "_order"] = float(np.polyfit(np.log([1.0, 0.5, 0.25]), np.log(e), 1)[0])
    print(
        f"  convergence order: ours {out['ours_order']:.2f}, reservoirpy {out['reservoirpy_order']:.2f}",
        flush=True,
    )
    return out


def main() -> None:
    t_start = time.perf_counter()
    result: dict = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "note": "CPU shared with other jobs: timings are medians of repeats and noisy",
    }
    with threadpool_limits(1):
        x = ng.chaos.mackey_glass(3000, 17, seed=0)
        print("1. accuracy, Mackey-Glass tau=17, T=6, 500 training rows", flush=True)
        result["accuracy"] = accuracy(x)
        print("2. data efficiency", flush=True)
        result["data_efficiency"] = data_efficiency(x, result["accuracy"]["mlp"]["nrmse"])
        print("3. ESN vs reservoirpy", flush=True)
        result["esn"] = esn_vs_reservoirpy()
        print("4. generator", flush=True)
        try:
            result["generator"] = generator_order()
        except Exception as exc:  # reservoirpy's signature differs across versions
            result["generator"] = {"error": f"{type(exc).__name__}: {exc}"}
    result["total_seconds"] = time.perf_counter() - t_start
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(
        json.dumps(
            result, indent=1, default=lambda o: bool(o) if isinstance(o, np.bool_) else str(o)
        )
    )
    print(f"wrote {OUT} in {result['total_seconds']:.0f} s")
    if not math.isfinite(result["accuracy"]["mlp"]["nrmse"]):
        raise SystemExit("MLP diverged")


if __name__ == "__main__":
    main()
