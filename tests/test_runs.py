"""Run directories: results database, resume, interruption, bad input."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

import nngeom as ng
import nngeom.report
import nngeom.studies
from nngeom.executors import LocalExecutor
from nngeom.runs import RunDir, reproduce, task_key
from nngeom.studies._probe import mixed_probe_study, probe_study

RUNNER = Path(__file__).with_name("_runner.py")


def _rows(path) -> dict:
    return {k: v[1] for k, v in RunDir(path).results().items()}


def test_fresh_run_writes_config_results_and_report(tmp_path):
    s = reproduce([probe_study(4, epochs=5)], tmp_path / "run", progress=False)
    assert (s.finished, s.skipped, s.failed, s.interrupted) == (4, 0, [], False)
    cfg = json.loads((tmp_path / "run" / "config.json").read_text())
    assert cfg["studies"] == ["probe"] and cfg["scale"] == "quick" and cfg["seed"] == 0
    for key in ("python", "torch", "numpy", "nngeom", "device"):
        assert key in cfg["environment"]
    assert len(_rows(tmp_path / "run")) == 4
    assert (tmp_path / "run" / "report.html").is_file()


def test_task_key_is_canonical():
    assert task_key("a", {"x": 1, "y": [1, 2]}) == task_key("a", {"y": [1, 2], "x": 1})
    assert task_key("a", {"x": 1}) != task_key("b", {"x": 1}) != task_key("a", {"x": 2})


def test_resume_skips_finished_tasks_and_existing_dir_needs_resume(tmp_path):
    out = tmp_path / "run"
    reproduce([probe_study(3, epochs=5)], out, progress=False)
    with pytest.raises(ng.RunError, match="--resume"):
        reproduce([probe_study(3, epochs=5)], out, progress=False)
    s = reproduce([probe_study(3, epochs=5)], out, resume=True, progress=False)
    assert (s.finished, s.skipped) == (0, 3)
    with pytest.raises(ng.RunError, match="seed"):
        reproduce([probe_study(3, epochs=5)], out, resume=True, seed=1, progress=False)


def test_parallel_equals_serial(tmp_path):
    reproduce([probe_study(4, epochs=20)], tmp_path / "a", progress=False)
    reproduce(
        [probe_study(4, epochs=20)], tmp_path / "b", executor=LocalExecutor(2), progress=False
    )
    assert _rows(tmp_path / "a") == _rows(tmp_path / "b")


def test_failed_task_is_recorded_and_the_others_go_on(tmp_path):
    failing = mixed_probe_study()
    s = reproduce([failing], tmp_path / "run", progress=False)
    assert s.finished == 1 and len(s.failed) == 2
    errors = sorted(e for _, _, e in s.failed)
    assert "asked to fail" in errors[0] and "not serialisable" in errors[1]
    run = RunDir(tmp_path / "run")
    assert len(run.results()) == 1 and len(run.failures()) == 2
    # the report lists the unfinished study and the failures instead of crashing
    html = (tmp_path / "run" / "report.html").read_text()
    assert "1 of 3 tasks finished" in html and "asked to fail" in html


def test_unwritable_output_directory(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(ng.RunError, match="cannot write"):
        reproduce([probe_study(1)], blocker / "run", progress=False)


def test_corrupted_results_database(tmp_path):
    out = tmp_path / "run"
    reproduce([probe_study(2, epochs=5)], out, progress=False)
    (out / "results.sqlite").write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(ng.RunError, match="corrupted"):
        reproduce([probe_study(2, epochs=5)], out, resume=True, progress=False)
    with pytest.raises(ng.RunError, match="corrupted"):
        ng.report.build_report(out)


def test_unknown_scale_and_empty(tmp_path):
    with pytest.raises(ng.StudyError, match="scale"):
        reproduce([probe_study(1)], tmp_path / "r", scale="huge", progress=False)
    with pytest.raises(ng.StudyError, match="no study"):
        reproduce([], tmp_path / "r", progress=False)


def _wait_rows(db: Path, n: int, proc: subprocess.Popen, timeout: float = 60) -> None:
    t0 = time.time()
    while time.time() - t0 < timeout:
        if proc.poll() is not None:
            raise AssertionError(f"runner exited early with code {proc.returncode}")
        if db.exists():
            try:
                with sqlite3.connect(db, timeout=5) as c:
                    if c.execute("SELECT COUNT(*) FROM results").fetchone()[0] >= n:
                        return
            except sqlite3.OperationalError:
                pass
        time.sleep(0.05)
    raise AssertionError("runner made no progress")


@pytest.mark.parametrize("executor", ["1", "2"])
def test_kill_mid_run_then_resume_loses_and_duplicates_nothing(tmp_path, executor):
    n = 10
    out = tmp_path / "run"
    before = _forkservers()
    with open(tmp_path / "log", "w") as log:
        proc = subprocess.Popen(
            [sys.executable, str(RUNNER), str(out), str(n), "0.25", executor],
            stdout=log,
            stderr=log,
        )
        _wait_rows(out / "results.sqlite", 3, proc)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    partial = _rows(out)
    assert 3 <= len(partial) < n
    s = reproduce([probe_study(n, sleep=0.25, epochs=5)], out, resume=True, progress=False)
    assert s.skipped == len(partial) and s.finished == n - len(partial)
    reference = tmp_path / "ref"
    reproduce([probe_study(n, sleep=0.0, epochs=5)], reference, progress=False)
    done = _rows(out)
    assert len(done) == n
    assert sorted(r["loss"] for r in done.values()) == sorted(
        r["loss"] for r in _rows(reference).values()
    )
    with sqlite3.connect(out / "results.sqlite") as c:
        assert c.execute("SELECT COUNT(*), COUNT(DISTINCT key) FROM results").fetchone() == (n, n)
    # the killed driver's pool workers (and their fork server) do not linger
    deadline = time.time() + 20
    while _forkservers() > before and time.time() < deadline:
        time.sleep(0.25)
    assert _forkservers() <= before


def _forkservers() -> int:
    """How many multiprocessing fork-server processes (servers and pool workers) exist."""
    proc = subprocess.run(
        ["pgrep", "-fc", "multiprocessing.forkserver"], capture_output=True, text=True
    )
    return int(proc.stdout.strip() or 0)


def test_sigint_stops_cleanly_and_keeps_finished_rows(tmp_path):
    out = tmp_path / "run"
    proc = subprocess.Popen(
        [sys.executable, str(RUNNER), str(out), "12", "0.25", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    _wait_rows(out / "results.sqlite", 2, proc)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "interrupted=True" in stdout and "Traceback" not in stderr
    kept = _rows(out)
    assert 2 <= len(kept) < 12
    with sqlite3.connect(out / "results.sqlite") as c:
        assert c.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    # the SIGINT left no worker behind: resume in a fresh process finishes the rest
    proc = subprocess.run(
        [sys.executable, str(RUNNER), str(out), "12", "0.25", "2", "resume"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0 and f"skipped={len(kept)}" in proc.stdout
    assert len(_rows(out)) == 12


def test_a_killed_pool_worker_stops_the_run_with_a_clear_error(tmp_path):
    import os
    import threading

    pid_dir = tmp_path / "pids"
    pid_dir.mkdir()

    def assassin() -> None:
        deadline = time.time() + 60
        while time.time() < deadline:
            for marker in pid_dir.iterdir():
                os.kill(int(marker.name.split("-")[0]), signal.SIGKILL)
                return
            time.sleep(0.02)

    thread = threading.Thread(target=assassin)
    thread.start()
    study = probe_study(6, epochs=5, sleep=0.5, pid_dir=str(pid_dir))
    with pytest.raises(ng.RunError, match="worker process died.*--resume"):
        reproduce([study], tmp_path / "run", executor=LocalExecutor(2), progress=False)
    thread.join()
    s = reproduce([study], tmp_path / "run", resume=True, progress=False)
    assert s.skipped + s.finished == 6 and not s.failed
