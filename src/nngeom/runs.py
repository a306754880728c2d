"""The driver of a run: plan the studies' tasks, execute them, resume, retry, build the report.

:func:`reproduce` fills a run directory (:mod:`nngeom._rundir` describes it and stores it):
it locks the directory, records the config, hands every unfinished task to an executor, commits
each outcome as it arrives, and builds ``report.html``. Killing a run at any moment loses at
most the tasks in flight: ``--resume`` runs only the tasks whose key has no row (tasks that
failed only with ``retry_failed``), and a row that cannot be read back is dropped and its task
run again.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._checks import check_seed
from ._errors import RunError, StudyError
from ._progress import progress_bar
from ._rundir import RunDir, dumps, environment, plan_tasks, task_key, utc_now
from .executors import Executor, Job, LocalExecutor
from .report import build_report
from .studies import SCALES, Study

__all__ = ["RunDir", "RunSummary", "task_key", "environment", "reproduce"]


@dataclass
class RunSummary:
    """What a call of :func:`reproduce` did."""

    path: Path
    total: int = 0
    skipped: int = 0  # already finished before this call (resume)
    finished: int = 0
    failed: list[tuple[str, dict[str, Any], str]] = field(default_factory=list)
    # tasks that failed in an earlier call and were not run again (resume without retry_failed)
    failed_before: list[tuple[str, dict[str, Any], str]] = field(default_factory=list)
    malformed: dict[str, str] = field(default_factory=dict)  # rows dropped and run again
    interrupted: bool = False
    report: Path | None = None
    wall_s: float = 0.0


class _SigtermAsInterrupt:
    """Turn SIGTERM into KeyboardInterrupt while the driver runs, so `kill` stops it cleanly."""

    def __enter__(self):
        self._old = None
        try:
            self._old = signal.signal(signal.SIGTERM, self._raise)
        except ValueError:  # not in the main thread
            pass
        return self

    @staticmethod
    def _raise(signum, frame):
        raise KeyboardInterrupt

    def __exit__(self, *exc):
        if self._old is not None:
            signal.signal(signal.SIGTERM, self._old)


def reproduce(
    studies: Sequence[Study],
    out: str | os.PathLike[str],
    *,
    scale: str = "quick",
    seed: int = 0,
    resume: bool = False,
    retry_failed: bool = False,
    executor: Executor | None = None,
    progress: bool = True,
    report: bool = True,
    device: str = "cpu",
) -> RunSummary:
    """Run ``studies`` at ``scale`` into the run directory ``out`` and build its report.

    Args:
        studies: the studies to run (``nngeom.studies.available()`` values).
        out: the run directory; must not hold a run unless ``resume``.
        scale: ``"quick"`` or ``"paper"``.
        seed: the base seed handed to every study's ``tasks``.
        resume: complete the run in ``out``: tasks whose key has a row are skipped, and so are
            tasks that failed before (listed in ``RunSummary.failed_before``) unless
            ``retry_failed``.
        retry_failed: with ``resume``, run the tasks that failed before again.
        executor: defaults to ``LocalExecutor(1)`` (in-process).
        progress: show a rich progress bar on stderr.

    Returns:
        :class:`RunSummary`; failures are listed there (the run goes on past them).

    Raises:
        RunError: ``out`` holds a run (without ``resume``), is used by another process (its pid
            is named), or cannot be written (full disk, read-only, links), or its database is
            unusable.
        InvalidInput: ``seed`` is not an int in ``[0, 2**64 - 1]``.
    """
    if scale not in SCALES:
        raise StudyError(f"unknown scale {scale!r}; use one of {', '.join(SCALES)}")
    if not studies:
        raise StudyError("no study to run")
    if retry_failed and not resume:
        raise RunError("--retry-failed completes an existing run: pass it with --resume")
    check_seed(seed)
    t0 = time.perf_counter()
    run = RunDir(out)
    executor = executor or LocalExecutor(1)
    lock = None
    if run.path.is_dir():  # lock first: a second process is told who holds the directory
        lock = run.lock("running nngeom reproduce").__enter__()
    try:
        if run.exists() and not resume:
            raise RunError(
                f"{run.path} already holds a run; pass --resume to complete it, or choose a new --out"
            )
        executor.start()  # an unreachable cluster fails here, before anything is written
        try:
            if lock is None:
                run.create()
                lock = run.lock("running nngeom reproduce").__enter__()
            return _reproduce_locked(
                run,
                studies,
                executor,
                scale,
                seed,
                resume,
                retry_failed,
                progress,
                report,
                device,
                t0,
            )
        finally:
            executor.close()
    finally:
        run.close()
        if lock is not None:
            lock.__exit__(None, None, None)


def _reproduce_locked(
    run: RunDir, studies, executor, scale, seed, resume, retry_failed, progress, report, device, t0
) -> RunSummary:
    names = [s.name for s in studies]
    created = None
    if run.exists():
        if not resume:
            raise RunError(
                f"{run.path} already holds a run; pass --resume to complete it, or choose a new --out"
            )
        old = run.read_config()
        for what, new in (("scale", scale), ("seed", seed)):
            if old.get(what) != new:
                raise RunError(
                    f"{run.path} was run with {what}={old.get(what)!r}, not {new!r}; "
                    "resume with the same settings or choose a new --out"
                )
        names = list(dict.fromkeys([*old.get("studies", []), *names]))
        created = old.get("created")
    _ = run.db  # validate the database before any work
    plan = plan_tasks(studies, scale, seed)
    done = run.finished_keys()
    malformed = dict(run.malformed)
    if malformed:  # unreadable rows: their tasks run again
        run.drop_rows(malformed)
    now = utc_now()
    config = {
        "studies": names,
        "scale": scale,
        "seed": seed,
        **executor.describe(),
        "command": " ".join(sys.argv) if sys.argv and sys.argv[0].endswith("nngeom") else None,
        "environment": environment(device),
        "updated": now,
        "created": created or now,
    }
    run.write_config(config)

    failed_keys = set() if retry_failed else run.failed_keys()
    todo = [(s, c, k) for s, c, k in plan if k not in done and k not in failed_keys]
    summary = RunSummary(run.path, total=len(plan), malformed=malformed)
    summary.skipped = sum(1 for _, _, k in plan if k in done)
    if failed_keys:
        errors = run.failure_errors()
        summary.failed_before = [
            (s.name, c, errors.get(k, "")) for s, c, k in plan if k in failed_keys and k not in done
        ]
    try:
        with _SigtermAsInterrupt():
            _execute(run, todo, executor, summary, progress)
    except KeyboardInterrupt:
        summary.interrupted = True
    finally:
        executor.close()
        summary.wall_s = time.perf_counter() - t0
    if report and not summary.interrupted:
        summary.report = build_report(run.path, studies)
    return summary


def _execute(run: RunDir, todo, executor: Executor, summary: RunSummary, show: bool) -> None:
    names = list(dict.fromkeys(s.name for s, _, _ in todo))
    failed = dict.fromkeys(names, 0)
    with progress_bar(show, name_width=12, eta=True) as bar:
        overall = bar.add_task("all tasks", total=len(todo), status="running 0 · failed 0")
        rows = {
            n: bar.add_task(n, total=sum(1 for s, _, _ in todo if s.name == n), status="failed 0")
            for n in names
        }
        jobs = [
            Job((s.run_task.__module__, s.run_task.__name__), c, s.resources) for s, c, _ in todo
        ]
        for outcome in executor.run(jobs):
            study, config, key = todo[outcome.index]
            name = study.name
            if outcome.retry:  # recorded now (a killed driver keeps it), the task runs again
                run.add_failure(key, name, config, outcome.error or "", outcome.traceback)
                if show:
                    bar.console.print(
                        f"[yellow]worker died[/yellow] {name} {dumps(config)}: {outcome.error}"
                    )
                continue
            if outcome.ok:
                run.add_result(key, name, config, outcome.result, outcome.wall_s)
                summary.finished += 1
            else:
                run.add_failure(key, name, config, outcome.error or "", outcome.traceback)
                summary.failed.append((name, config, outcome.error or ""))
                failed[name] += 1
                if show:
                    bar.console.print(
                        f"[red]task failed[/red] {name} {dumps(config)}: {outcome.error}"
                    )
            bar.update(rows[name], advance=1, status=f"failed {failed[name]}")
            bar.update(
                overall,
                advance=1,
                status=f"running {executor.running()} · failed {sum(failed.values())}",
            )
        bar.update(overall, status=f"running 0 · failed {sum(failed.values())}")
