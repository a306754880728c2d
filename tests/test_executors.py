"""The local executor and task calling."""

from __future__ import annotations

import contextlib
import re
import socket
import threading
import time

import numpy as np
import pytest
import torch

import nngeom as ng
from nngeom.executors import (
    Job,
    LocalExecutor,
    RayExecutor,
    _init_with_deadline,
    call_task,
    death_cause,
    make_executor,
    to_jsonable,
)

PROBE = ("_probe_study", "run_task")  # the probe workload of tests/_probe_study.py


def test_to_jsonable():
    got = to_jsonable(
        {"a": np.float64(1.5), "b": np.arange(3), "c": torch.tensor([1.0, 2.0]), "d": (1, None)}
    )
    assert got == {"a": 1.5, "b": [0, 1, 2], "c": [1.0, 2.0], "d": [1, None]}
    with pytest.raises(TypeError):
        to_jsonable({"x": object()})
    with pytest.raises(TypeError, match="keys"):
        to_jsonable({1: 2})


def test_call_task_captures_errors():
    ok = call_task(PROBE, 0, {"seed": 0, "epochs": 2})
    assert ok.ok and ok.result["seed"] == 0 and ok.wall_s > 0
    bad = call_task(PROBE, 1, {"seed": 0, "epochs": 2, "fail": True})
    assert not bad.ok and "InvalidInput" in bad.error and "Traceback" in bad.traceback
    missing = call_task(("nngeom.nothing_here", "f"), 2, {})
    assert not missing.ok and "ModuleNotFoundError" in missing.error


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_local_executor_yields_every_job_once(n_jobs):
    jobs = [Job(PROBE, {"seed": i, "epochs": 2}) for i in range(5)]
    with LocalExecutor(n_jobs) as ex:
        outcomes = list(ex.run(jobs))
    assert sorted(o.index for o in outcomes) == list(range(5))
    assert all(o.ok for o in outcomes)
    assert [o.result["seed"] for o in sorted(outcomes, key=lambda o: o.index)] == list(range(5))


@pytest.mark.parametrize("bad", [0, -1, 1.5, True])
def test_bad_n_jobs(bad):
    with pytest.raises(ng.InvalidInput, match="n_jobs"):
        LocalExecutor(bad)


@pytest.mark.parametrize(
    "kwargs, name", [({"num_cpus": 0}, "num_cpus"), ({"max_retries": -1}, "max_retries")]
)
def test_bad_ray_executor_arguments(kwargs, name):
    with pytest.raises(ng.InvalidInput, match=name):
        RayExecutor(**kwargs)


def test_make_executor():
    assert isinstance(make_executor("local", n_jobs=2), LocalExecutor)
    assert isinstance(make_executor("ray"), RayExecutor)
    with pytest.raises(ng.InvalidInput, match="unknown executor"):
        make_executor("slurm")


def test_ray_missing_is_explained(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_ray(name, *args, **kwargs):
        if name == "ray":
            raise ImportError("no ray")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    with pytest.raises(ng.RunError, match=r"nngeom\[ray\]"):
        RayExecutor().start()


def test_bad_ray_address_form():
    with pytest.raises(ng.RunError, match="HOST:PORT"):
        RayExecutor("not-an-address").start()


# ----------------------------------------------------------------- a worker that dies (OOM kill)


def test_a_killed_worker_is_retried_once_then_reported_and_the_others_finish():
    jobs = [Job(PROBE, {"seed": i, "epochs": 2, "kill": i == 1}) for i in range(4)]
    with LocalExecutor(2) as ex:
        outcomes = list(ex.run(jobs))
    assert sorted(o.index for o in outcomes if not o.retry) == [0, 1, 2, 3]
    retries = [o for o in outcomes if o.retry]
    assert [o.index for o in retries] == [1] and "retrying once" in retries[0].error
    final = next(o for o in outcomes if o.index == 1 and not o.retry)
    assert not final.ok and "signal 9 (SIGKILL): memory?" in final.error and "twice" in final.error
    assert all(o.ok for o in outcomes if o.index != 1)


def test_one_worker_process_instead_of_in_process():
    ex = LocalExecutor(1, in_process=False)
    with ex:
        outcomes = list(ex.run([Job(PROBE, {"seed": 0, "epochs": 2, "kill": True})]))
    assert [o.retry for o in outcomes] == [True, False] and "signal 9" in outcomes[-1].error
    assert make_executor("local").in_process is False
    assert make_executor("local", n_jobs=1).in_process is True


def test_death_cause_words():
    assert death_cause(-9).startswith("worker killed, signal 9 (SIGKILL): memory?")
    assert "signal 11 (SIGSEGV)" in death_cause(-11)
    assert "exited with code 3" in death_cause(3)


def threads_task(config):
    return {"threads": torch.get_num_threads()}


def test_tasks_run_with_their_declared_thread_count_in_process_too():
    before = torch.get_num_threads()
    ref = (__name__, "threads_task")
    out = list(
        LocalExecutor(1).run([Job(ref, {}), Job(ref, {}, {"num_cpus": 2}), Job(ref, {}, {})])
    )
    assert [o.result["threads"] for o in out] == [1, 2, 1]
    assert torch.get_num_threads() == before


# --------------------------------------------------- --ray-address: deadlines, listeners not Ray


@contextlib.contextmanager
def _listener(reply: bytes | None, *, close: bool = False, lifetime: float = 15.0):
    """A TCP listener on 127.0.0.1 that is not Ray: it stays silent, replies ``reply``, or closes
    each connection; it stops by itself after ``lifetime`` seconds."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.1)
    stop = threading.Event()
    conns = []

    def serve() -> None:
        deadline = time.monotonic() + lifetime
        while not stop.is_set() and time.monotonic() < deadline:
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            if reply:
                conn.sendall(reply)
            if close:
                conn.close()
            else:
                conns.append(conn)
        for c in conns:
            c.close()
        server.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(5)


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "reply, close, words",
    [
        (None, False, "no gRPC greeting within 2 s"),
        (b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n", False, "not a gRPC server"),
        (None, True, "closed the connection|reset by peer"),
    ],
)
def test_a_listener_that_is_not_ray_is_a_clear_error_within_the_deadline(reply, close, words):
    pytest.importorskip("ray")
    with _listener(reply, close=close) as address:
        t0 = time.monotonic()
        with pytest.raises(ng.RunError, match="is not a Ray cluster") as info:
            RayExecutor(address, connect_timeout=2).start()
        assert time.monotonic() - t0 < 10
    assert re.search(words, str(info.value)) and address in str(info.value)


def test_ray_init_that_never_returns_stops_at_the_deadline():
    release = threading.Event()

    class HangingRay:
        @staticmethod
        def init(**kwargs):
            release.wait(10)

    t0 = time.monotonic()
    try:
        with pytest.raises(ng.RunError, match=r"within 0 s \(--ray-timeout\)"):
            _init_with_deadline(HangingRay, {}, 0.3, "the Ray cluster at 127.0.0.1:6379")
    finally:
        release.set()
    assert time.monotonic() - t0 < 5


@pytest.mark.parametrize("bad", [0, -1, float("nan"), "10"])
def test_bad_connect_timeout(bad):
    with pytest.raises(ng.InvalidInput, match="connect_timeout"):
        RayExecutor("127.0.0.1:6379", connect_timeout=bad)
