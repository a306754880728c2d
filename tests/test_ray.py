"""The Ray executor against a real local Ray runtime (2 CPUs)."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import nngeom as ng
import nngeom.report
import nngeom.studies
from _probe_study import mixed_probe_study, probe_study, rows, wait_rows
from nngeom.executors import RayExecutor
from nngeom.runs import RunDir, reproduce

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.ray
RUNNER = Path(__file__).with_name("_runner.py")


@pytest.fixture(scope="module", autouse=True)
def ray_runtime():
    ray.init(
        address="local",  # never a cluster that another process left behind
        num_cpus=2,
        # the workers import the probe workload (tests/_probe_study.py) by module name
        runtime_env={"env_vars": {"PYTHONPATH": str(Path(__file__).parent)}},
        include_dashboard=False,
        log_to_driver=False,
        configure_logging=False,
    )
    yield
    ray.shutdown()


def test_ray_gives_the_same_rows_as_local(tmp_path):
    study = probe_study(6, epochs=10)
    reproduce([study], tmp_path / "local", progress=False)
    s = reproduce([study], tmp_path / "ray", executor=RayExecutor(), progress=False)
    assert s.finished == 6 and not s.failed
    assert rows(tmp_path / "ray") == rows(tmp_path / "local")


def test_killing_a_ray_worker_mid_sweep_loses_and_duplicates_nothing(tmp_path):
    pid_dir = tmp_path / "pids"
    pid_dir.mkdir()
    killed: list[int] = []

    def assassin() -> None:  # kill the first worker seen running a task
        deadline = time.time() + 60
        while time.time() < deadline and not killed:
            for marker in pid_dir.iterdir():
                pid = int(marker.name.split("-")[0])
                try:
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
                except ProcessLookupError:
                    continue
                return
            time.sleep(0.02)

    thread = threading.Thread(target=assassin)
    thread.start()
    n = 6
    s = reproduce(
        [probe_study(n, epochs=5, sleep=1.0, pid_dir=str(pid_dir))],
        tmp_path / "run",
        executor=RayExecutor(max_retries=3),
        progress=False,
    )
    thread.join()
    assert killed, "no worker was killed"
    assert s.finished == n and not s.failed
    with sqlite3.connect(tmp_path / "run" / "results.sqlite") as c:
        assert c.execute("SELECT COUNT(*), COUNT(DISTINCT key) FROM results").fetchone() == (n, n)
    assert sorted(r["seed"] for r in rows(tmp_path / "run").values()) == list(range(n))


def test_failing_and_unserialisable_tasks_on_ray(tmp_path):
    bad = mixed_probe_study()
    s = reproduce([bad], tmp_path / "run", executor=RayExecutor(), progress=False)
    errors = sorted(e for _, _, e in s.failed)
    assert s.finished == 1 and len(errors) == 2
    assert "asked to fail" in errors[0] and "not serialisable" in errors[1]
    assert len(RunDir(tmp_path / "run").results()) == 1


def test_unreachable_address_fails_fast_and_writes_nothing(tmp_path):
    t0 = time.time()
    with pytest.raises(ng.RunError, match="cannot reach the Ray cluster"):
        reproduce(
            [probe_study(2)], tmp_path / "run", executor=RayExecutor("127.0.0.1:1"), progress=False
        )
    assert time.time() - t0 < 10
    assert not (tmp_path / "run").exists()


def test_killing_the_driver_then_resume_completes(tmp_path):
    # the first 2 tasks run; the others wait at a closed gate until the resume
    out, gate, n, free = tmp_path / "run", tmp_path / "gate", 8, 2
    env = {**os.environ, "RAY_ADDRESS": ""}
    with open(tmp_path / "log", "w") as log:
        proc = subprocess.Popen(
            [sys.executable, str(RUNNER), str(out), str(n), "0", "ray", f"gate={gate},{free}"],
            stdout=log,
            stderr=log,
            env=env,
        )
        wait_rows(out, free, proc, tmp_path / "log", timeout=120)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert len(rows(out)) == free
    gate.touch()
    s = reproduce(
        [probe_study(n, sleep=0.0, epochs=5, gate=str(gate), gate_free=free)],
        out,
        resume=True,
        executor=RayExecutor(),
        progress=False,
    )
    assert s.skipped == free and s.finished == n - free
    with sqlite3.connect(out / "results.sqlite") as c:
        assert c.execute("SELECT COUNT(*), COUNT(DISTINCT key) FROM results").fetchone() == (n, n)


def test_a_real_ray_gcs_passes_the_listener_check():
    from nngeom.executors import _check_ray_listener

    address = ray.get_runtime_context().gcs_address
    t0 = time.time()
    _check_ray_listener(address, 5.0)  # answers with gRPC: no error
    assert time.time() - t0 < 5
