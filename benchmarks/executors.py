"""Executors: a sweep of 64 short training tasks, serial vs local process pool vs local Ray.

One process run; each configuration is timed REPEATS times and the medians are compared.
Targets (issue 8): local pool >= 1.8x the serial loop on 2 cores; report Ray's overhead per task.
"local" is a started pool (the steady state of a sweep); "local_cold" starts a fresh pool each
time (start-up included, as a short `nngeom reproduce` pays it once).
Writes benchmarks/results/executors.json.

    .venv/bin/python benchmarks/executors.py
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from pathlib import Path

from nngeom.executors import Job, LocalExecutor, RayExecutor
from nngeom.runs import environment

N_TASKS = 64
REPEATS = 3
EPOCHS = 400  # ~0.2 s of training per task on one core
TESTS = Path(__file__).resolve().parents[1] / "tests"  # the probe workload: tests/_probe_study.py
sys.path.insert(0, str(TESTS))
REF = ("_probe_study", "run_task")


def sweep(executor) -> float:
    jobs = [Job(REF, {"seed": i, "epochs": EPOCHS}) for i in range(N_TASKS)]
    t0 = time.perf_counter()
    outcomes = list(executor.run(jobs))
    elapsed = time.perf_counter() - t0
    assert len(outcomes) == N_TASKS and all(o.ok for o in outcomes), [
        o.error for o in outcomes if not o.ok
    ]
    return elapsed


def main() -> None:
    import ray
    import torch

    cores = os.cpu_count() or 1
    results: dict[str, list[float]] = {"serial": [], "local": [], "local_cold": [], "ray": []}
    torch.set_num_threads(1)  # the serial baseline uses one core per task, like each worker
    t0 = time.perf_counter()
    ray.init(
        num_cpus=cores,
        include_dashboard=False,
        log_to_driver=False,
        configure_logging=False,
        runtime_env={"env_vars": {"PYTHONPATH": str(TESTS)}},
    )
    ray_start = time.perf_counter() - t0
    ray_ex = RayExecutor(num_cpus=cores)
    sweep(ray_ex)  # warm the Ray workers (imports) once, reported separately
    pool = LocalExecutor(cores)
    sweep(pool)  # start the pool once: "local" is the steady state of a long sweep
    for _ in range(REPEATS):
        results["serial"].append(sweep(LocalExecutor(1)))
        results["local"].append(sweep(pool))
        with LocalExecutor(cores) as cold:  # a fresh pool: start-up included, as in a short run
            results["local_cold"].append(sweep(cold))
        results["ray"].append(sweep(ray_ex))
    pool.close()
    ray.shutdown()
    med = {k: statistics.median(v) for k, v in results.items()}
    out = {
        "benchmark": "executors",
        "tasks": N_TASKS,
        "epochs_per_task": EPOCHS,
        "repeats": REPEATS,
        "cores": cores,
        "seconds": results,
        "median_seconds": med,
        "speedup_local_vs_serial": med["serial"] / med["local"],
        "speedup_local_cold_vs_serial": med["serial"] / med["local_cold"],
        "local_pool_startup_s": med["local_cold"] - med["local"],
        "speedup_ray_vs_serial": med["serial"] / med["ray"],
        "ray_overhead_per_task_s": (med["ray"] - med["serial"] / cores) / N_TASKS,
        "ray_init_s": ray_start,
        "serial_seconds_per_task": med["serial"] / N_TASKS,
        "target_local_speedup": 1.8,
        "environment": environment(),
    }
    path = Path(__file__).with_name("results") / "executors.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(
        json.dumps({k: v for k, v in out.items() if k not in ("seconds", "environment")}, indent=2)
    )


if __name__ == "__main__":
    main()
