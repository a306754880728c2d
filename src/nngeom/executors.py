"""Executors: run a study's tasks in-process, on a local process pool, or on a Ray cluster.

An executor takes a task function (by module and name, so it can be imported in a worker) and a
list of task configs, and yields an :class:`Outcome` for each task as it finishes, in any order.
Executors never write results: the driver (``runs.py``) alone writes ``results.sqlite``.

* ``LocalExecutor(n_jobs=1)`` runs tasks one after another in this process (tests, debugging).
* ``LocalExecutor(n_jobs=N)`` runs them on ``N`` worker processes (``forkserver`` start), each
  with ``cpu_count // N`` torch threads. Workers ignore Ctrl-C; the driver stops them.
* ``RayExecutor(address=None)`` runs each task as a Ray remote function on an existing cluster
  (``address``) or on a local Ray runtime; Ray retries a task whose worker died.
"""

from __future__ import annotations

import importlib
import json
import multiprocessing as mp
import os
import signal
import socket
import threading
import time
import traceback
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

from ._errors import InvalidInput, RunError

__all__ = [
    "Job",
    "Outcome",
    "Executor",
    "LocalExecutor",
    "RayExecutor",
    "make_executor",
    "call_task",
    "to_jsonable",
]

TaskRef = tuple[str, str]  # (module, function name)


@dataclass(frozen=True)
class Job:
    """One task to run: the task function (by reference), its config, and its resources (Ray)."""

    ref: TaskRef
    config: dict[str, Any]
    resources: dict[str, float] | None = None


@dataclass(frozen=True)
class Outcome:
    """What came back for task ``index``: a JSON-able ``result``, or an ``error`` message."""

    index: int
    result: dict[str, Any] | None
    error: str | None = None
    traceback: str | None = None
    wall_s: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None


def to_jsonable(obj: Any) -> Any:
    """Convert numpy/torch scalars and arrays to plain Python; raise TypeError for anything else."""
    if obj is None or isinstance(obj, (bool, int, str)):
        return obj
    if isinstance(obj, float):
        return obj
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            if not isinstance(k, str):
                raise TypeError(f"result dict keys must be str, got {type(k).__name__} key {k!r}")
            out[k] = to_jsonable(v)
        return out
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    tolist = getattr(obj, "tolist", None)  # numpy arrays and scalars, torch tensors
    if callable(tolist) and type(obj).__module__.split(".")[0] in ("numpy", "torch"):
        return to_jsonable(tolist())
    raise TypeError(f"a {type(obj).__module__}.{type(obj).__name__} is not JSON-serialisable")


def dumps(obj: Any) -> str:
    """Canonical JSON (sorted keys; NaN and inf kept as JSON extensions)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=True)


def _resolve(ref: TaskRef):
    module, name = ref
    return getattr(importlib.import_module(module), name)


def call_task(ref: TaskRef, index: int, config: dict[str, Any]) -> Outcome:
    """Run one task and capture its result or error. Runs in whichever process executes it."""
    start = time.perf_counter()
    try:
        fn = _resolve(ref)
        raw = fn(config)
        if not isinstance(raw, dict):
            raise TypeError(f"task returned a {type(raw).__name__}, not a dict")
        try:
            result = to_jsonable(raw)
            dumps(result)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"task result is not serialisable: {exc}") from exc
        return Outcome(index, result, wall_s=time.perf_counter() - start)
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # noqa: BLE001 - any task failure is reported, never fatal
        return Outcome(
            index,
            None,
            error=f"{type(exc).__name__}: {exc}",
            traceback=traceback.format_exc(),
            wall_s=time.perf_counter() - start,
        )


class Executor(ABC):
    """Runs tasks and yields their outcomes as they finish."""

    name = "executor"

    @abstractmethod
    def run(self, jobs: Sequence[Job]) -> Iterator[Outcome]:
        """Yield one :class:`Outcome` per job (``Outcome.index`` is its position), in completion order."""

    def running(self) -> int:
        """Tasks currently executing (for the progress bar)."""
        return 0

    def start(self) -> None:
        """Connect to the workers' backend; errors here come before anything is written."""
        return None

    def close(self) -> None:
        """Stop workers and drop pending tasks (called on Ctrl-C and at the end)."""
        return None

    def describe(self) -> dict[str, Any]:
        return {"executor": self.name}

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _watch_driver(driver_pid: int) -> None:
    while True:  # a worker whose driver was killed (SIGKILL, OOM) must not linger
        time.sleep(1.0)
        try:
            os.kill(driver_pid, 0)
        except ProcessLookupError:
            os._exit(1)
        except PermissionError:  # pragma: no cover - the pid was reused by another user
            os._exit(1)


def _worker_init(threads: int, driver_pid: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the driver handles Ctrl-C and stops workers
    threading.Thread(target=_watch_driver, args=(driver_pid,), daemon=True).start()
    try:
        import torch

        torch.set_num_threads(threads)
    except ImportError:  # pragma: no cover - torch is a dependency
        pass


class LocalExecutor(Executor):
    """Tasks in this process (``n_jobs=1``) or on a pool of ``n_jobs`` worker processes."""

    name = "local"

    def __init__(self, n_jobs: int = 1) -> None:
        if isinstance(n_jobs, bool) or not isinstance(n_jobs, int) or n_jobs < 1:
            raise InvalidInput(f"n_jobs must be a positive int, got {n_jobs!r}")
        self.n_jobs = n_jobs
        self._pool: ProcessPoolExecutor | None = None
        self._pending: set[Future] = set()
        self._in_process_running = 0

    def describe(self) -> dict[str, Any]:
        return {"executor": self.name, "n_jobs": self.n_jobs}

    def running(self) -> int:
        if self._pool is None:
            return self._in_process_running
        return sum(1 for f in self._pending if f.running())

    def run(self, jobs: Sequence[Job]) -> Iterator[Outcome]:
        if self.n_jobs == 1 or len(jobs) <= 1:
            for i, job in enumerate(jobs):
                self._in_process_running = 1
                outcome = call_task(job.ref, i, job.config)
                self._in_process_running = 0
                yield outcome
            return
        if self._pool is None:  # the pool stays up across run() calls until close()
            self._pool = self._start_pool()
        futures = {self._pool.submit(call_task, j.ref, i, j.config): i for i, j in enumerate(jobs)}
        self._pending = set(futures)
        while self._pending:
            done, self._pending = wait(self._pending, timeout=0.5, return_when=FIRST_COMPLETED)
            for fut in done:
                exc = fut.exception()
                if exc is not None:  # the worker process died (killed, out of memory)
                    self.close()  # a broken pool cannot take more work: the rest are lost too
                    raise RunError(
                        f"a worker process died ({exc}); finished tasks are saved, rerun with --resume"
                    ) from exc
                yield fut.result()

    def _start_pool(self) -> ProcessPoolExecutor:
        threads = max(1, (os.cpu_count() or 1) // self.n_jobs)
        if "forkserver" in mp.get_all_start_methods():
            ctx = mp.get_context("forkserver")
            ctx.set_forkserver_preload(["torch", "nngeom.executors"])  # workers start warm
        else:  # pragma: no cover - platforms without fork
            ctx = mp.get_context("spawn")
        return ProcessPoolExecutor(
            max_workers=self.n_jobs,
            mp_context=ctx,
            initializer=_worker_init,
            initargs=(threads, os.getpid()),
        )

    def close(self) -> None:
        pool, self._pool = self._pool, None
        self._pending = set()
        if pool is None:
            return
        processes = list(getattr(pool, "_processes", {}).values())
        pool.shutdown(wait=False, cancel_futures=True)
        for p in processes:  # stop tasks in flight now, not after they finish
            if p.is_alive():
                p.terminate()
        for p in processes:
            p.join(timeout=5)


class RayExecutor(Executor):
    """Tasks as Ray remote functions, on the cluster at ``address`` or a local Ray runtime.

    ``resources`` per task (``{"num_cpus": 1, "num_gpus": 0.25}``) come from the study. A task
    whose worker process dies is retried by Ray up to ``max_retries`` times.
    """

    name = "ray"

    def __init__(
        self, address: str | None = None, *, num_cpus: int | None = None, max_retries: int = 3
    ) -> None:
        self.address = address
        self.num_cpus = num_cpus
        self.max_retries = max_retries
        self._refs: dict[Any, int] = {}
        self._started_ray = False
        self._slots = 1

    def describe(self) -> dict[str, Any]:
        return {"executor": self.name, "ray_address": self.address or "local"}

    def _ray(self):
        try:
            import ray
        except ImportError as exc:
            raise RunError(
                "--executor ray needs Ray, which is not installed: pip install 'nngeom[ray]'"
            ) from exc
        if self.address:
            _check_reachable(self.address)
        if not ray.is_initialized():
            kwargs: dict[str, Any] = {
                "include_dashboard": False,
                "log_to_driver": False,
                "configure_logging": False,
            }
            if self.address:
                kwargs["address"] = self.address
            else:
                kwargs["num_cpus"] = self.num_cpus or os.cpu_count() or 1
            try:
                ray.init(**kwargs)
            except Exception as exc:
                where = (
                    f"the Ray cluster at {self.address}" if self.address else "a local Ray runtime"
                )
                raise RunError(
                    f"cannot connect to {where} ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); "
                    "check the address (`ray status` on the head node) or omit --ray-address"
                ) from exc
            self._started_ray = True
        self._slots = max(1, int(ray.cluster_resources().get("CPU", 1)))
        return ray

    def running(self) -> int:
        return min(len(self._refs), self._slots)

    def start(self) -> None:
        self._ray()

    def run(self, jobs: Sequence[Job]) -> Iterator[Outcome]:
        ray = self._ray()
        remote = ray.remote(call_task)
        self._refs = {}
        for i, job in enumerate(jobs):
            opts = {"num_cpus": 1, **(job.resources or {})}
            task = remote.options(max_retries=self.max_retries, retry_exceptions=False, **opts)
            self._refs[task.remote(job.ref, i, job.config)] = i
        while self._refs:
            ready, _ = ray.wait(list(self._refs), num_returns=1, timeout=0.5)
            for obj in ready:
                index = self._refs.pop(obj)
                try:
                    yield ray.get(obj)
                except Exception as exc:  # retries exhausted, or the result could not be moved
                    yield Outcome(
                        index, None, error=f"ray task failed: {type(exc).__name__}: {exc}"
                    )

    def close(self) -> None:
        refs, self._refs = self._refs, {}
        if not refs:
            if self._started_ray:
                self._shutdown()
            return
        try:
            import ray

            for obj in refs:
                ray.cancel(obj, force=True)
        except Exception:  # noqa: BLE001 - best effort on shutdown
            pass
        if self._started_ray:
            self._shutdown()

    def _shutdown(self) -> None:
        import ray

        if ray.is_initialized():
            ray.shutdown()
        self._started_ray = False


def _check_reachable(address: str, timeout: float = 5.0) -> None:
    """Fail fast (instead of Ray's long connection retries) when ``host:port`` does not answer."""
    if address == "auto":
        return
    hostport = address.split("://", 1)[-1]
    host, sep, port = hostport.rpartition(":")
    if not sep or not port.isdigit():
        raise RunError(
            f"--ray-address {address!r} is not of the form HOST:PORT (or ray://HOST:PORT)"
        )
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            pass
    except OSError as exc:
        raise RunError(
            f"cannot reach the Ray cluster at {address} ({exc.strerror or exc}); start it with "
            "`ray start --head` there, check the address and firewall, or omit --ray-address"
        ) from exc


def make_executor(
    name: str = "local", *, n_jobs: int | None = None, ray_address: str | None = None
) -> Executor:
    """An executor by CLI name: ``"local"`` (``n_jobs`` processes; default: all cores) or ``"ray"``."""
    if name == "local":
        return LocalExecutor(n_jobs if n_jobs is not None else max(1, os.cpu_count() or 1))
    if name == "ray":
        return RayExecutor(ray_address, num_cpus=n_jobs)
    raise InvalidInput(f"unknown executor {name!r}; use 'local' or 'ray'")
