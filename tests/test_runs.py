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
import nngeom._rundir
import nngeom.report
import nngeom.studies
from _probe_study import mixed_probe_study, probe_study, rows, wait_rows
from nngeom.executors import LocalExecutor
from nngeom.runs import RunDir, reproduce, task_key

RUNNER = Path(__file__).with_name("_runner.py")


def test_fresh_run_writes_config_results_and_report(tmp_path):
    s = reproduce([probe_study(4, epochs=5)], tmp_path / "run", progress=False)
    assert (s.finished, s.skipped, s.failed, s.interrupted) == (4, 0, [], False)
    cfg = json.loads((tmp_path / "run" / "config.json").read_text())
    assert cfg["studies"] == ["probe"] and cfg["scale"] == "quick" and cfg["seed"] == 0
    for key in ("python", "torch", "numpy", "nngeom", "device"):
        assert key in cfg["environment"]
    assert len(rows(tmp_path / "run")) == 4
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
    assert rows(tmp_path / "a") == rows(tmp_path / "b")


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
    with pytest.raises(ng.InvalidInput, match="seed"):
        reproduce([probe_study(1)], tmp_path / "r", seed=-1, progress=False)
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("executor", ["1", "2"])
def test_kill_mid_run_then_resume_loses_and_duplicates_nothing(tmp_path, executor):
    # the first 3 tasks run; the others wait at a closed gate, so exactly 3 rows exist when the
    # driver is killed, however late this process is scheduled
    n, free = 10, 3
    out, gate = tmp_path / "run", tmp_path / "gate"
    before = _forkservers()
    with open(tmp_path / "log", "w") as log:
        proc = subprocess.Popen(
            [sys.executable, str(RUNNER), str(out), str(n), "0", executor, f"gate={gate},{free}"],
            stdout=log,
            stderr=log,
        )
        wait_rows(out, free, proc)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    partial = rows(out)
    assert len(partial) == free
    gate.touch()
    study = probe_study(n, sleep=0.0, epochs=5, gate=str(gate), gate_free=free)
    s = reproduce([study], out, resume=True, progress=False)
    assert s.skipped == free and s.finished == n - free
    reference = tmp_path / "ref"
    reproduce([probe_study(n, sleep=0.0, epochs=5)], reference, progress=False)
    done = rows(out)
    assert len(done) == n
    assert sorted(r["loss"] for r in done.values()) == sorted(
        r["loss"] for r in rows(reference).values()
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


def _default_sigint() -> None:
    """In the runner's process: Ctrl-C as a terminal delivers it, whatever disposition or mask
    this test process inherited from earlier tests (a child inherits an ignored or blocked
    SIGINT, and Python then installs no KeyboardInterrupt handler)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def test_sigint_stops_cleanly_and_keeps_finished_rows(tmp_path):
    # the first 2 tasks run; the others wait at a closed gate, so the run is still going when the
    # signal arrives, and exactly 2 rows are finished
    out, gate = tmp_path / "run", tmp_path / "gate"
    args = [sys.executable, str(RUNNER), str(out), "8", "0", "2", f"gate={gate},2"]
    proc = subprocess.Popen(
        args,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_default_sigint,
    )
    wait_rows(out, 2, proc)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stdout + stderr
    assert "interrupted=True" in stdout and "Traceback" not in stderr
    assert len(rows(out)) == 2
    with sqlite3.connect(out / "results.sqlite") as c:
        assert c.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    # the SIGINT left no worker behind: resume in a fresh process finishes the rest
    gate.touch()
    proc = subprocess.run([*args, "resume"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "skipped=2" in proc.stdout, proc.stdout + proc.stderr
    assert len(rows(out)) == 8


def test_a_worker_killed_from_outside_costs_nothing_its_task_is_retried(tmp_path):
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
    s = reproduce([study], tmp_path / "run", executor=LocalExecutor(2), progress=False)
    thread.join()
    assert s.finished == 6 and not s.failed
    assert len(rows(tmp_path / "run")) == 6 and not RunDir(tmp_path / "run").failures()


def _study_with(extra_of_seed: dict[int, dict], n: int) -> ng.studies.Study:
    """``n`` probe tasks; task ``i`` gets the keys ``extra_of_seed.get(i, {})``."""
    import dataclasses

    return dataclasses.replace(
        probe_study(),
        tasks=lambda scale, seed: [
            {"seed": seed + i, "epochs": 5, **extra_of_seed.get(i, {})} for i in range(n)
        ],
    )


def test_a_task_that_kills_its_worker_costs_only_that_task(tmp_path):
    study = _study_with({7: {"kill": True}}, 20)
    out = tmp_path / "run"
    t0 = time.perf_counter()
    s = reproduce([study], out, executor=LocalExecutor(2), progress=False)
    wall = time.perf_counter() - t0
    print(
        f"20 tasks, one kills its worker: {s.finished} rows, {len(s.failed)} failed, {wall:.1f} s"
    )
    assert s.finished == 19 and len(s.failed) == 1 and not s.interrupted
    name, config, error = s.failed[0]
    assert config["seed"] == 7 and "signal 9" in error and "memory" in error and "twice" in error
    run = RunDir(out)
    assert len(run.results()) == 19
    assert [(c["seed"], "signal 9" in e) for _, c, e in run.failures()] == [(7, True)]
    assert "signal 9" in (out / "report.html").read_text()
    # --resume skips the failed task (and says so); --retry-failed runs it again
    s = reproduce([study], out, resume=True, executor=LocalExecutor(2), progress=False)
    assert (s.skipped, s.finished, s.failed) == (19, 0, [])
    assert [c["seed"] for _, c, _ in s.failed_before] == [7]
    s = reproduce(
        [study], out, resume=True, retry_failed=True, executor=LocalExecutor(2), progress=False
    )
    assert s.finished == 0 and [c["seed"] for _, c, _ in s.failed] == [7]
    with pytest.raises(ng.RunError, match="--resume"):
        reproduce([study], out, retry_failed=True, progress=False)


def test_a_worker_that_dies_once_is_retried_and_the_task_finishes(tmp_path):
    marks = tmp_path / "marks"
    marks.mkdir()
    study = _study_with({2: {"kill_once": str(marks)}}, 5)
    s = reproduce([study], tmp_path / "run", executor=LocalExecutor(2), progress=False)
    assert s.finished == 5 and not s.failed
    assert (marks / "killed-2").is_file()  # it did die once
    assert len(rows(tmp_path / "run")) == 5 and not RunDir(tmp_path / "run").failures()


def test_a_second_process_on_the_run_directory_is_refused_naming_the_holder(tmp_path):
    out = tmp_path / "run"
    with open(tmp_path / "log", "w") as log:
        proc = subprocess.Popen(
            [sys.executable, str(RUNNER), str(out), "8", "0.5", "1"], stdout=log, stderr=log
        )
        try:
            wait_rows(out, 1, proc)
            study = probe_study(8, sleep=0.5, epochs=5)
            for resume in (True, False):
                with pytest.raises(ng.RunError, match=f"in use .*pid {proc.pid}"):
                    reproduce([study], out, resume=resume, progress=False)
            with pytest.raises(ng.RunError, match=f"pid {proc.pid}"):
                ng.report.build_report(out)
            assert json.loads((out / "config.json").read_text())["seed"] == 0
        finally:
            proc.kill()
            proc.wait()
    # the lock dies with its holder: the run can be completed
    s = reproduce([probe_study(8, sleep=0.0, epochs=5)], out, resume=True, progress=False)
    assert s.skipped + s.finished == 8


def test_a_malformed_row_is_reported_skipped_and_rerun_on_resume(tmp_path):
    out = tmp_path / "run"
    reproduce([probe_study(4, epochs=5)], out, progress=False)
    with sqlite3.connect(out / "results.sqlite") as c:
        keys = [k for (k,) in c.execute("SELECT key FROM results ORDER BY key")]
        c.execute("UPDATE results SET result = '{not json' WHERE key = ?", (keys[0],))
        c.execute("UPDATE results SET task = X'ff00' WHERE key = ?", (keys[1],))
    run = RunDir(out)
    assert len(run.results()) == 2 and set(run.malformed) == set(keys[:2])
    run.close()
    html = ng.report.build_report(out, [probe_study(4, epochs=5)]).read_text()
    assert "Unreadable results" in html and keys[0] in html and "2 of 4 tasks finished" in html
    s = reproduce([probe_study(4, epochs=5)], out, resume=True, progress=False)
    assert set(s.malformed) == set(keys[:2]) and (s.skipped, s.finished) == (2, 2)
    run = RunDir(out)
    assert len(run.results()) == 4 and not run.malformed


def _no_temporaries(path: Path) -> None:
    left = [p.name for p in path.rglob("*") if ".tmp" in p.name or ".staging" in p.name]
    assert not left, left


def test_a_full_disk_while_writing_files_is_named_and_leaves_no_temporaries(tmp_path, monkeypatch):
    import errno
    import os

    out = tmp_path / "run"
    reproduce([probe_study(2, epochs=5)], out, progress=False)

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(nngeom._rundir.os, "fsync", full)
    with pytest.raises(ng.RunError, match="no space left on the disk") as info:
        reproduce([probe_study(2, epochs=5)], out, resume=True, progress=False)
    assert "corrupted" not in str(info.value)
    with pytest.raises(ng.RunError, match="no space left on the disk"):
        ng.report.build_report(out)
    monkeypatch.undo()
    _no_temporaries(out)
    assert os.listdir(out)


def test_a_full_database_is_named_not_called_corrupted(tmp_path, monkeypatch):
    out = tmp_path / "run"
    reproduce([probe_study(2, epochs=5)], out, progress=False)
    real_open = nngeom._rundir.RunDir._open_db

    def capped(self):  # SQLite's own SQLITE_FULL: no page may be added to the file
        conn = real_open(self)
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        conn.execute(f"PRAGMA max_page_count = {pages}")
        return conn

    monkeypatch.setattr(nngeom._rundir.RunDir, "_open_db", capped)
    big = probe_study(40, epochs=2)
    with pytest.raises(ng.RunError, match="no space left.*--resume"):
        reproduce([big], out, resume=True, progress=False)
    monkeypatch.undo()
    s = reproduce([big], out, resume=True, progress=False)  # space again: the run completes
    assert s.skipped + s.finished == 40 and not s.failed


def test_a_read_only_database_is_named(tmp_path, monkeypatch):
    out = tmp_path / "run"
    reproduce([probe_study(2, epochs=5)], out, progress=False)
    real_connect = sqlite3.connect

    def read_only(path, **kw):
        return real_connect(f"file:{path}?mode=ro", uri=True, **kw)

    monkeypatch.setattr(nngeom._rundir.sqlite3, "connect", read_only)
    with pytest.raises(ng.RunError, match="read-only") as info:
        reproduce([probe_study(3, epochs=5)], out, resume=True, progress=False)
    assert "corrupted" not in str(info.value)


def _mount(tmp_path: Path, *args: str) -> Path:
    import os
    import shutil

    if os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("needs root and mount(8) to mount a tiny file system")
    target = Path(args[-1])
    proc = subprocess.run(["mount", *args], capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount here: {proc.stderr.strip()}")
    return target


def test_a_real_full_disk_and_a_real_read_only_directory(tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    _mount(tmp_path, "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(disk))
    try:
        out = disk / "run"
        reproduce([probe_study(2, epochs=5)], out, progress=False)
        with open(disk / "filler", "wb") as f:  # fill the disk
            try:
                while True:
                    f.write(b"\0" * 65536)
                    f.flush()
            except OSError:
                pass
        with pytest.raises(ng.RunError, match="no space left") as info:
            reproduce([probe_study(4, epochs=5)], out, resume=True, progress=False)
        assert "corrupted" not in str(info.value)
        _no_temporaries(out)
        (disk / "filler").unlink()
        s = reproduce([probe_study(4, epochs=5)], out, resume=True, progress=False)
        assert s.skipped + s.finished == 4
        ro = tmp_path / "ro"
        ro.mkdir()
        _mount(tmp_path, "--bind", "-o", "ro", str(out), str(ro))
        try:
            subprocess.run(["mount", "-o", "remount,bind,ro", str(ro)], check=True)
            with pytest.raises(ng.RunError, match="read-only"):
                ng.report.build_report(ro)
            with pytest.raises(ng.RunError, match="read-only"):
                reproduce([probe_study(5, epochs=5)], ro, resume=True, progress=False)
        finally:
            subprocess.run(["umount", "-l", str(ro)], check=False)
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def test_links_in_the_run_directory_are_never_written_through(tmp_path):
    import os

    out = tmp_path / "run"
    reproduce([probe_study(2, epochs=5)], out, progress=False)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    # a planted temporary name and a linked config.json / report.html: replaced, not followed
    (out / f".report.html.tmp{os.getpid()}").symlink_to(victim)
    (out / "config.json").rename(out / "config.real")
    (out / "config.json").symlink_to(out / "config.real")
    (out / "report.html").unlink()
    (out / "report.html").symlink_to(victim)
    reproduce([probe_study(2, epochs=5)], out, resume=True, progress=False)
    assert victim.read_text() == "precious"
    assert not (out / "report.html").is_symlink() and not (out / "config.json").is_symlink()
    # a linked database is refused
    (out / "results.sqlite").rename(tmp_path / "elsewhere.sqlite")
    (out / "results.sqlite").symlink_to(tmp_path / "elsewhere.sqlite")
    with pytest.raises(ng.RunError, match="symbolic link"):
        reproduce([probe_study(2, epochs=5)], out, resume=True, progress=False)
