"""The local executor and task calling."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import nngeom as ng
from nngeom.executors import Job, LocalExecutor, RayExecutor, call_task, make_executor, to_jsonable

PROBE = ("nngeom.studies._probe", "run_task")


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
