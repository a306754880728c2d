"""A tiny training task for testing the run driver, the executors and the CLI (a test workload,
registered only by the tests: see ``conftest.register_studies``).

``run_task({"seed": 3, "width": 8, "epochs": 50})`` trains a ``2 -> width -> 1`` tanh net with
full-batch Adam on 400 points of the permutation-saddles teacher task and returns its final loss:
real, deterministic work. Test switches: ``"sleep"`` seconds before returning,
``"fail"`` raises, ``"unserialisable"`` returns an object that JSON cannot hold, ``"pid_dir"``
writes a file named after the worker's pid there while the task runs, ``"kill"`` kills the
task's own process with SIGKILL (as the kernel's out-of-memory killer does; use a worker pool, never
in-process), ``"kill_once"`` (a folder) does so only on the first attempt (a marker file there
remembers it), ``"gate"`` (a file path) makes every task but the first ``"gate_free"`` wait until
that file exists (so a test knows exactly which tasks can have finished when it interrupts a run).
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

import torch

from nngeom import InvalidInput
from nngeom._rundir import RunDir
from nngeom.data import teacher_student_grid
from nngeom.nets import mlp
from nngeom.studies import Section, Study
from nngeom.train import train

# How long a gated task waits for its gate file before it fails
GATE_TIMEOUT = 120.0


def _wait_at_gate(gate: Path) -> None:
    deadline = time.monotonic() + GATE_TIMEOUT
    while not gate.exists():
        if time.monotonic() > deadline:
            raise InvalidInput(f"the gate {gate} was not opened within {GATE_TIMEOUT:g} s")
        time.sleep(0.02)


def run_task(config: dict[str, Any]) -> dict[str, Any]:
    if config.get("gate") and int(config["seed"]) >= int(config.get("gate_free", 0)):
        _wait_at_gate(Path(config["gate"]))
    if config.get("kill_once"):
        seen = Path(config["kill_once"], f"killed-{config['seed']}")
        if not seen.exists():
            seen.write_text(str(os.getpid()))
            os.kill(os.getpid(), signal.SIGKILL)
    if config.get("kill"):
        os.kill(os.getpid(), signal.SIGKILL)
    marker = None
    if config.get("pid_dir"):
        marker = Path(config["pid_dir"], f"{os.getpid()}-{config['seed']}")
        marker.write_text(str(os.getpid()))
    X, y, _ = teacher_student_grid("tanh", step=0.5, dtype=torch.float32)
    net = mlp([2, int(config.get("width", 8)), 1], "tanh", seed=int(config["seed"]))
    hist = train(net, X, y, epochs=int(config.get("epochs", 50)), lr=1e-2, seed=int(config["seed"]))
    if config.get("sleep"):
        time.sleep(float(config["sleep"]))
    if marker is not None:
        marker.unlink(missing_ok=True)
    if config.get("fail"):
        raise InvalidInput(f"task {config['seed']} was asked to fail")
    if config.get("unserialisable"):
        return {"loss": object()}
    return {"seed": int(config["seed"]), "loss": hist.final_loss, "losses": hist.losses[-3:]}


def tasks(scale: str, seed: int, n: int = 8, **extra: Any) -> list[dict[str, Any]]:
    return [{"seed": seed + i, **extra} for i in range(n)]


def summarize(results, figdir: Path) -> Section:
    return Section(
        title="Probe",
        paper="(test workload)",
        summary=f"{len(results)} probe tasks; mean final loss "
        f"{sum(r['loss'] for _, r in results) / max(1, len(results)):.4g}",
    )


def probe_study(n: int = 8, **extra: Any) -> Study:
    """A :class:`Study` of ``n`` probe tasks (``extra`` keys go into every task config)."""
    return Study(
        name="probe",
        title="Probe",
        paper="(test workload)",
        tasks=lambda scale, seed: tasks(scale, seed, n, **extra),
        run_task=run_task,
        summarize=summarize,
    )


def mixed_probe_study() -> Study:
    """Three probe tasks: one succeeds, one raises, one returns an unserialisable result."""
    ok = probe_study()
    return Study(
        name="probe",
        title="Probe",
        paper="(test workload)",
        tasks=lambda scale, seed: [
            {"seed": 0, "epochs": 5},
            {"seed": 1, "epochs": 5, "fail": True},
            {"seed": 2, "epochs": 5, "unserialisable": True},
        ],
        run_task=ok.run_task,
        summarize=ok.summarize,
    )


def rows(path: Path) -> dict:
    """The stored results of the run directory ``path``, by task key."""
    return {k: v[1] for k, v in RunDir(path).results().items()}


def wait_rows(
    run: Path, n: int, proc: subprocess.Popen, log: Path | None = None, timeout: float = 60
) -> None:
    """Wait (at most ``timeout`` s) until the run directory ``run`` holds ``n`` result rows; fail
    if the runner ``proc`` exits first (quoting its ``log``, when given) or makes no progress."""
    db = Path(run) / "results.sqlite"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            told = Path(log).read_text() if log is not None else ""
            raise AssertionError(f"runner exited early with code {proc.returncode}\n{told}")
        if db.exists():
            try:
                with sqlite3.connect(db, timeout=5) as c:
                    if c.execute("SELECT COUNT(*) FROM results").fetchone()[0] >= n:
                        return
            except sqlite3.OperationalError:
                pass
        time.sleep(0.05)
    raise AssertionError("runner made no progress")
