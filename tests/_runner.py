"""Run a probe sweep in a subprocess (for the kill / Ctrl-C / resume tests).

usage: python _runner.py OUT N SLEEP EXECUTOR [resume] [gate=PATH,FREE]

``gate=PATH,FREE``: every task but the first FREE waits until the file PATH exists.
"""

from __future__ import annotations

import sys

from _probe_study import probe_study
from nngeom.executors import LocalExecutor, RayExecutor
from nngeom.runs import reproduce

if __name__ == "__main__":
    out, n, sleep, executor = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
    ex = RayExecutor(num_cpus=2) if executor == "ray" else LocalExecutor(int(executor))
    extra = {}
    for arg in sys.argv[5:]:
        if arg.startswith("gate="):
            path, free = arg.removeprefix("gate=").rsplit(",", 1)
            extra = {"gate": path, "gate_free": int(free)}
    summary = reproduce(
        [probe_study(n, sleep=sleep, epochs=5, **extra)],
        out,
        executor=ex,
        resume="resume" in sys.argv,
        progress=False,
    )
    print(
        f"finished={summary.finished} skipped={summary.skipped} interrupted={summary.interrupted}",
        flush=True,
    )
    sys.exit(130 if summary.interrupted else 0)
