"""Executors: run a study's tasks in-process, on a local process pool, or on a Ray cluster.

An executor takes a task function (by module and name, so it can be imported in a worker) and a
list of task configs, and yields an :class:`Outcome` for each task as it finishes, in any order.
Executors never write results: the driver (``runs.py``) alone writes ``results.sqlite``.

* ``LocalExecutor(n_jobs=1)`` runs tasks one after another in this process (tests, debugging).
* ``LocalExecutor(n_jobs=N)`` runs them on ``N`` worker processes (``forkserver`` start). Workers
  ignore Ctrl-C; the driver stops them. A worker that dies while running a task (the kernel's
  OOM killer, a segfault, ``os._exit``) costs only that task: the task is reported with the cause
  and retried once in a fresh worker, then reported failed; the other tasks go on.
* ``RayExecutor(address=None)`` runs each task as a Ray remote function on an existing cluster
  (``address``) or on a local Ray runtime; Ray retries a task whose worker died. Connecting has a
  deadline (``connect_timeout``), and an address that does not speak gRPC (not Ray) is refused.

Every executor runs a task with as many torch threads as the task declares CPUs (its
``resources["num_cpus"]``, default 1), in this process too: float results depend on the thread
count in their last bits, so the same task gives the same row under every executor and ``n_jobs``.
"""

from __future__ import annotations

import collections
import importlib
import multiprocessing as mp
import multiprocessing.connection as mpc
import os
import signal
import socket
import threading
import time
import traceback
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from ._checks import check_int, check_number, check_positive_int
from ._errors import InvalidInput, RunError
from ._rundir import dumps

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
DEFAULT_CONNECT_TIMEOUT = 60.0  # seconds to connect to a Ray cluster (--ray-timeout)
POLL_S = 0.5  # seconds between two looks at the running tasks (pool workers, Ray)
JOIN_TIMEOUT_S = 5.0  # seconds a stopping worker process gets to exit before it is killed
DRIVER_CHECK_S = 1.0  # seconds between a worker's checks that its driver is alive
MAX_ATTEMPTS = 100  # the most attempts a task whose worker died may be given
GREETING_TIMEOUT_S = 5.0  # seconds a Ray address gets to answer with a gRPC greeting


@dataclass(frozen=True)
class Job:
    """One task to run: the task function (by reference), its config, and its resources (Ray)."""

    ref: TaskRef
    config: dict[str, Any]
    resources: dict[str, float] | None = None

    @property
    def threads(self) -> int:
        """Torch threads the task runs with: its declared CPUs (at least 1)."""
        return task_threads(self.resources)


def task_threads(resources: dict[str, float] | None) -> int:
    """The torch thread count of a task declaring ``resources`` (``num_cpus``, default 1)."""
    try:
        return max(1, int((resources or {}).get("num_cpus", 1)))
    except (TypeError, ValueError):
        return 1


@dataclass(frozen=True)
class Outcome:
    """What came back for task ``index``: a JSON-able ``result``, or an ``error`` message.

    ``retry``: this attempt failed (its worker died) and the executor runs the task once more;
    another outcome for the same index follows.
    """

    index: int
    result: dict[str, Any] | None
    error: str | None = None
    traceback: str | None = None
    wall_s: float = 0.0
    retry: bool = False

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


def run_job(ref: TaskRef, index: int, config: dict[str, Any], threads: int = 1) -> Outcome:
    """:func:`call_task` with ``threads`` torch threads (restored afterwards)."""
    import torch

    before = torch.get_num_threads()
    if before != threads:
        torch.set_num_threads(threads)
    try:
        return call_task(ref, index, config)
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)


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
        time.sleep(DRIVER_CHECK_S)
        try:
            os.kill(driver_pid, 0)
        except ProcessLookupError:
            os._exit(1)
        except PermissionError:  # pragma: no cover - the pid was reused by another user
            os._exit(1)


def _worker_init(driver_pid: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the driver handles Ctrl-C and stops workers
    threading.Thread(target=_watch_driver, args=(driver_pid,), daemon=True).start()


def _worker_main(conn: mpc.Connection, driver_pid: int) -> None:
    """A pool worker: run the tasks the driver sends until it sends ``None`` or goes away."""
    _worker_init(driver_pid)
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        ref, index, config, threads = message
        conn.send(run_job(ref, index, config, threads))


def death_cause(exitcode: int | None) -> str:
    """Why a worker process ended, in words (``exitcode`` as :class:`multiprocessing.Process`)."""
    if exitcode is None:
        return "worker process vanished"
    if exitcode < 0:
        sig = -exitcode
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = "unknown signal"
        hint = (
            ": memory? (the kernel's out-of-memory killer sends SIGKILL)"
            if sig == signal.SIGKILL
            else ""
        )
        return f"worker killed, signal {sig} ({name}){hint}"
    return f"worker process exited with code {exitcode} while running the task"


class _Worker:
    def __init__(self, ctx, driver_pid: int) -> None:
        self.conn, child = ctx.Pipe(duplex=True)
        self.proc = ctx.Process(target=_worker_main, args=(child, driver_pid), daemon=True)
        self.proc.start()
        child.close()
        self.index: int | None = None  # the task it runs, None when idle

    def stop(self, *, now: bool) -> None:
        if now:
            if self.proc.is_alive():
                self.proc.terminate()
        else:
            try:
                self.conn.send(None)
            except OSError:
                pass
        self.proc.join(timeout=JOIN_TIMEOUT_S)
        if self.proc.is_alive():  # pragma: no cover - a worker that ignores SIGTERM
            self.proc.kill()
            self.proc.join(timeout=JOIN_TIMEOUT_S)
        self.conn.close()


class LocalExecutor(Executor):
    """Tasks in this process (``n_jobs=1``) or on a pool of ``n_jobs`` worker processes.

    ``in_process``: run tasks in this process (default: when ``n_jobs == 1``). ``False`` with
    ``n_jobs=1`` uses one worker process, so a task that kills its process cannot stop the run.
    ``attempts``: how often a task whose worker died is run in all (default 2: one retry).
    """

    name = "local"

    def __init__(
        self, n_jobs: int = 1, *, in_process: bool | None = None, attempts: int = 2
    ) -> None:
        self.n_jobs = check_positive_int("n_jobs", n_jobs)
        self.in_process = n_jobs == 1 if in_process is None else bool(in_process)
        self.attempts = check_positive_int("attempts", attempts, maximum=MAX_ATTEMPTS)
        self._workers: list[_Worker] = []
        self._ctx = None
        self._running = 0

    def describe(self) -> dict[str, Any]:
        return {"executor": self.name, "n_jobs": self.n_jobs}

    def running(self) -> int:
        if self.in_process:
            return self._running
        return sum(1 for w in self._workers if w.index is not None)

    def run(self, jobs: Sequence[Job]) -> Iterator[Outcome]:
        if self.in_process:
            for i, job in enumerate(jobs):
                self._running = 1
                outcome = run_job(job.ref, i, job.config, job.threads)
                self._running = 0
                yield outcome
            return
        if not jobs:
            return
        queue = collections.deque(range(len(jobs)))
        tries = collections.Counter()
        while queue or any(w.index is not None for w in self._workers):
            # hand out work; the pool grows to n_jobs workers and stays up until close()
            while queue:
                idle = next((w for w in self._workers if w.index is None), None)
                if idle is None and len(self._workers) < self.n_jobs:
                    idle = self._spawn()
                if idle is None:
                    break
                i = queue.popleft()
                job = jobs[i]
                tries[i] += 1
                idle.index = i
                try:
                    idle.conn.send((job.ref, i, job.config, job.threads))
                except OSError:  # the idle worker had died: its sentinel reports it below
                    pass
            busy = [w for w in self._workers if w.index is not None]
            ready = set(mpc.wait([w.conn for w in busy] + [w.proc.sentinel for w in busy], POLL_S))
            for w in busy:
                if w.conn not in ready and w.proc.sentinel not in ready:
                    continue
                i = w.index
                outcome = None
                if w.conn.poll():
                    try:
                        outcome = w.conn.recv()
                    except (EOFError, OSError):
                        outcome = None
                if outcome is not None:
                    w.index = None
                    yield outcome
                    continue
                if w.proc.is_alive() and w.conn not in ready:
                    continue
                # the worker died while running task i: only that task is affected
                w.proc.join(timeout=JOIN_TIMEOUT_S)
                cause = death_cause(w.proc.exitcode)
                self._workers.remove(w)
                w.index = None
                w.stop(now=True)
                if tries[i] < self.attempts:
                    queue.appendleft(i)
                    yield Outcome(i, None, error=f"{cause}; retrying once", retry=True)
                else:
                    times = "twice" if tries[i] == 2 else f"{tries[i]} times"
                    yield Outcome(i, None, error=f"{cause} ({times}; the task is skipped)")

    def _spawn(self) -> _Worker:
        if self._ctx is None:
            if "forkserver" in mp.get_all_start_methods():
                ctx = mp.get_context("forkserver")
                ctx.set_forkserver_preload(["torch", "nngeom.executors"])  # workers start warm
            else:  # pragma: no cover - platforms without fork
                ctx = mp.get_context("spawn")
            self._ctx = ctx
        worker = _Worker(self._ctx, os.getpid())
        self._workers.append(worker)
        return worker

    def close(self) -> None:
        workers, self._workers = self._workers, []
        for w in workers:  # stop tasks in flight now, not after they finish
            if w.index is not None and w.proc.is_alive():
                w.proc.terminate()
        for w in workers:
            w.stop(now=w.index is not None)


class RayExecutor(Executor):
    """Tasks as Ray remote functions, on the cluster at ``address`` or a local Ray runtime.

    ``resources`` per task (``{"num_cpus": 1, "num_gpus": 0.25}``) come from the study. A task
    whose worker process dies is retried by Ray up to ``max_retries`` times. Connecting gives up
    after ``connect_timeout`` seconds, whether the address answers or not; an address whose
    listener does not speak gRPC (Ray's protocol) is refused at once.
    """

    name = "ray"

    def __init__(
        self,
        address: str | None = None,
        *,
        num_cpus: int | None = None,
        max_retries: int = 3,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
    ) -> None:
        self.address = address
        self.num_cpus = None if num_cpus is None else check_positive_int("num_cpus", num_cpus)
        self.max_retries = check_int("max_retries", max_retries, minimum=0)
        self.connect_timeout = check_number(
            "connect_timeout (--ray-timeout)", connect_timeout, minimum=0, strict_min=True
        )
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
        deadline = time.monotonic() + self.connect_timeout
        if self.address:
            _check_ray_listener(self.address, self.connect_timeout)
        if not ray.is_initialized():
            kwargs: dict[str, Any] = {
                "include_dashboard": False,
                "log_to_driver": False,
                "configure_logging": False,
            }
            if self.address:
                kwargs["address"] = self.address
            else:  # "local": a new runtime, never a cluster some other process left running
                kwargs["address"] = "local"
                kwargs["num_cpus"] = self.num_cpus or os.cpu_count() or 1
            where = f"the Ray cluster at {self.address}" if self.address else "a local Ray runtime"
            if self.address:  # Ray retries a cluster's address for minutes: a deadline
                _init_with_deadline(ray, kwargs, max(0.0, deadline - time.monotonic()), where)
            else:  # a local runtime starts in the main thread (its signal handlers need it)
                _init(ray, kwargs, where)
            self._started_ray = True
        self._slots = max(1, int(ray.cluster_resources().get("CPU", 1)))
        return ray

    def running(self) -> int:
        return min(len(self._refs), self._slots)

    def start(self) -> None:
        self._ray()

    def run(self, jobs: Sequence[Job]) -> Iterator[Outcome]:
        ray = self._ray()
        remote = ray.remote(run_job)
        self._refs = {}
        for i, job in enumerate(jobs):
            opts = {"num_cpus": 1, **(job.resources or {})}
            task = remote.options(max_retries=self.max_retries, retry_exceptions=False, **opts)
            self._refs[task.remote(job.ref, i, job.config, job.threads)] = i
        while self._refs:
            ready, _ = ray.wait(list(self._refs), num_returns=1, timeout=POLL_S)
            for obj in ready:
                index = self._refs.pop(obj)
                try:
                    yield ray.get(obj)
                except Exception as exc:  # retries exhausted, or the result could not be moved
                    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
                    yield Outcome(
                        index, None, error=f"ray task failed: {type(exc).__name__}: {first}"
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


def _init(ray, kwargs: dict[str, Any], where: str) -> None:
    try:
        ray.init(**kwargs)
    except Exception as exc:
        raise _init_error(exc, where) from exc


def _init_error(exc: BaseException, where: str) -> RunError:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return RunError(
        f"cannot connect to {where} ({type(exc).__name__}: {text}); "
        "check the address (`ray status` on the head node) or omit --ray-address"
    )


def _init_with_deadline(ray, kwargs: dict[str, Any], timeout: float, where: str) -> None:
    """``ray.init(**kwargs)``, giving up after ``timeout`` seconds (Ray itself retries for minutes).

    ``ray.init`` runs in a daemon thread; when the deadline passes the driver stops waiting for it
    (the thread cannot be cancelled: it ends when Ray gives up, or with the process).
    """
    box: dict[str, BaseException | bool] = {}

    def target() -> None:
        try:
            ray.init(**kwargs)
            box["ok"] = True
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=target, name="nngeom-ray-init", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise RunError(
            f"no connection to {where} within {timeout:.0f} s (--ray-timeout); check that the "
            "address is the head node's GCS port (`ray status` there) and that this machine runs "
            "the same Ray version, or raise --ray-timeout"
        )
    exc = box.get("error")
    if isinstance(exc, BaseException):
        raise _init_error(exc, where) from exc


# The HTTP/2 connection preface and an empty SETTINGS frame: a gRPC server (Ray's GCS and Ray
# Client server) answers with its own SETTINGS frame before anything else.
_H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"
# An HTTP/2 frame header: 3 bytes of length, the type (SETTINGS is 4), flags, 4 bytes of stream id.
_H2_HEADER_BYTES, _H2_TYPE, _H2_SETTINGS, _H2_STREAM = 9, 3, 0x04, slice(5, 9)
_MIN_SOCKET_TIMEOUT_S = 0.01  # a socket timeout is never set to 0 (that would make it non-blocking)


def _check_ray_listener(address: str, timeout: float) -> None:
    """Fail fast when ``host:port`` does not answer, or answers without speaking gRPC (not Ray)."""
    if address == "auto":
        return
    hostport = address.split("://", 1)[-1]
    host, sep, port = hostport.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise RunError(
            f"--ray-address {address!r} is not of the form HOST:PORT (or ray://HOST:PORT)"
        )
    deadline = time.monotonic() + timeout
    wait = min(timeout, GREETING_TIMEOUT_S)
    try:
        conn = socket.create_connection((host.strip("[]"), int(port)), timeout=wait)
    except OSError as exc:
        raise RunError(
            f"cannot reach the Ray cluster at {address} ({exc.strerror or exc}); start it with "
            "`ray start --head` there, check the address and firewall, or omit --ray-address"
        ) from exc
    not_ray = (
        f"the listener at {address} is not a Ray cluster (%s); give the head node's GCS "
        "address (`ray start --head` prints it, default port 6379) or ray://HOST:10001"
    )
    header = b""
    with conn:
        try:
            conn.sendall(_H2_PREFACE)
            while len(header) < _H2_HEADER_BYTES:
                left = deadline - time.monotonic()
                conn.settimeout(max(_MIN_SOCKET_TIMEOUT_S, min(wait, left)))
                chunk = conn.recv(_H2_HEADER_BYTES - len(header))
                if not chunk:
                    raise RunError(not_ray % "it closed the connection without a gRPC greeting")
                header += chunk
        except TimeoutError as exc:
            raise RunError(not_ray % f"no gRPC greeting within {min(wait, timeout):.0f} s") from exc
        except OSError as exc:
            raise RunError(not_ray % f"the connection failed: {exc.strerror or exc}") from exc
    if header[_H2_TYPE] != _H2_SETTINGS or any(header[_H2_STREAM]):
        raise RunError(not_ray % f"it answered {header!r}, not a gRPC server's SETTINGS")


def make_executor(
    name: str = "local",
    *,
    n_jobs: int | None = None,
    ray_address: str | None = None,
    ray_timeout: float = DEFAULT_CONNECT_TIMEOUT,
) -> Executor:
    """An executor by CLI name: ``"local"`` (``n_jobs`` processes; default: all cores) or ``"ray"``.

    ``n_jobs=1`` runs the tasks in this process; without ``n_jobs`` the tasks always run in
    worker processes (even on one core), so a task whose process is killed cannot stop the run.
    """
    if name == "local":
        if n_jobs is not None:
            return LocalExecutor(n_jobs)
        return LocalExecutor(max(1, os.cpu_count() or 1), in_process=False)
    if name == "ray":
        return RayExecutor(ray_address, num_cpus=n_jobs, connect_timeout=ray_timeout)
    raise InvalidInput(f"unknown executor {name!r}; use 'local' or 'ray'")
