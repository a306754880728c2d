"""Run directories: config, results database, resume, and the driver that fills them.

A run directory holds::

    config.json       what was asked (studies, scale, seed, executor) + versions of Python,
                      torch, numpy and nngeom, the platform and the device
    results.sqlite    one row per finished task, keyed by the hash of (study, task config),
                      each written in its own transaction by the driver; failures in their own table
    figures/<study>/  PNG and SVG figures made by each study's summarize()
    report.html       the self-contained report (``nngeom report DIR`` rebuilds it)

Killing a run at any moment loses at most the tasks in flight: every finished task is already
committed, and ``--resume`` runs only the tasks whose key has no row.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import platform
import signal
import sqlite3
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._errors import RunError, StudyError
from ._version import __version__
from .executors import Executor, Job, LocalExecutor, dumps
from .studies import SCALES, Study

__all__ = ["RunDir", "RunSummary", "task_key", "environment", "reproduce"]

CONFIG = "config.json"
DATABASE = "results.sqlite"
SCHEMA = """
CREATE TABLE IF NOT EXISTS results (
    key TEXT PRIMARY KEY, study TEXT NOT NULL, task TEXT NOT NULL, result TEXT NOT NULL,
    wall_s REAL NOT NULL, finished_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS failures (
    key TEXT PRIMARY KEY, study TEXT NOT NULL, task TEXT NOT NULL, error TEXT NOT NULL,
    traceback TEXT, failed_at TEXT NOT NULL);
"""


def task_key(study: str, config: dict[str, Any]) -> str:
    """The key of a task: sha256 of the study name and its canonical JSON config (32 hex chars)."""
    return hashlib.sha256(dumps({"study": study, "config": config}).encode()).hexdigest()[:32]


def environment(device: str = "cpu") -> dict[str, Any]:
    """Versions and machine facts recorded in every run's config.json."""
    import numpy
    import torch

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "nngeom": __version__,
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "device": device,
        "torch_threads": torch.get_num_threads(),
    }


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


class RunDir:
    """A run directory (see the module docstring). Opening it validates the database."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._db: sqlite3.Connection | None = None

    # -- files ---------------------------------------------------------------------------
    @property
    def config_path(self) -> Path:
        return self.path / CONFIG

    @property
    def db_path(self) -> Path:
        return self.path / DATABASE

    def figures(self, study: str) -> Path:
        d = self.path / "figures" / study
        d.mkdir(parents=True, exist_ok=True)
        return d

    def exists(self) -> bool:
        return self.config_path.is_file()

    def create(self) -> RunDir:
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            probe = self.path / f".write-test-{os.getpid()}"
            probe.write_text("")
            probe.unlink()
        except OSError as exc:
            raise RunError(
                f"cannot write to run directory {self.path}: {exc.strerror or exc}; choose another --out"
            ) from exc
        return self

    def read_config(self) -> dict[str, Any]:
        try:
            return json.loads(self.config_path.read_text())
        except FileNotFoundError as exc:
            raise RunError(f"{self.path} is not a run directory (no {CONFIG})") from exc
        except (OSError, json.JSONDecodeError) as exc:
            raise RunError(
                f"{self.config_path} is unreadable ({exc}); start a new run with another --out"
            ) from exc

    def write_config(self, config: dict[str, Any]) -> None:
        _atomic_write(self.config_path, json.dumps(config, indent=2, sort_keys=True) + "\n")

    # -- database ------------------------------------------------------------------------
    @property
    def db(self) -> sqlite3.Connection:
        if self._db is None:
            self._db = self._open_db()
        return self._db

    def _open_db(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(self.db_path, timeout=30, isolation_level=None)
            conn.execute("PRAGMA synchronous=FULL")
            status = conn.execute("PRAGMA quick_check").fetchone()[0]
            if status != "ok":
                raise sqlite3.DatabaseError(status)
            conn.executescript(SCHEMA)
            return conn
        except sqlite3.DatabaseError as exc:
            raise RunError(
                f"{self.db_path} is corrupted or not an SQLite database ({exc}); move it away and "
                "rerun with --resume to recompute, or start a new run with another --out"
            ) from exc

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def finished_keys(self) -> set[str]:
        return {row[0] for row in self.db.execute("SELECT key FROM results")}

    def add_result(
        self, key: str, study: str, task: dict[str, Any], result: dict[str, Any], wall_s: float
    ) -> None:
        """Store one finished task in its own transaction (an existing key is left untouched)."""
        payload = dumps(result)
        with self._transaction() as db:
            db.execute(
                "INSERT OR IGNORE INTO results VALUES (?, ?, ?, ?, ?, ?)",
                (key, study, dumps(task), payload, float(wall_s), _now()),
            )
            db.execute("DELETE FROM failures WHERE key = ?", (key,))

    def add_failure(
        self, key: str, study: str, task: dict[str, Any], error: str, tb: str | None
    ) -> None:
        with self._transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO failures VALUES (?, ?, ?, ?, ?, ?)",
                (key, study, dumps(task), error, tb, _now()),
            )

    def _transaction(self):
        db = self.db

        class _Tx:
            def __enter__(self_inner):
                db.execute("BEGIN IMMEDIATE")
                return db

            def __exit__(self_inner, exc_type, *rest):
                db.execute("COMMIT" if exc_type is None else "ROLLBACK")

        return _Tx()

    def results(
        self, study: str | None = None
    ) -> dict[str, tuple[dict[str, Any], dict[str, Any], float]]:
        """``{key: (task, result, wall_s)}`` of finished tasks (of one study, or all)."""
        q = "SELECT key, task, result, wall_s FROM results"
        rows = self.db.execute(q + " WHERE study = ?", (study,)) if study else self.db.execute(q)
        try:
            return {k: (json.loads(t), json.loads(r), w) for k, t, r, w in rows}
        except json.JSONDecodeError as exc:
            raise RunError(
                f"{self.db_path} holds a malformed row ({exc}); start a new run"
            ) from exc

    def failures(self) -> list[tuple[str, dict[str, Any], str]]:
        rows = self.db.execute("SELECT study, task, error FROM failures ORDER BY study, failed_at")
        return [(s, json.loads(t), e) for s, t, e in rows]

    def count(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM results").fetchone()[0])


@dataclass
class RunSummary:
    """What a call of :func:`reproduce` did."""

    path: Path
    total: int = 0
    skipped: int = 0  # already finished before this call (resume)
    finished: int = 0
    failed: list[tuple[str, dict[str, Any], str]] = field(default_factory=list)
    interrupted: bool = False
    report: Path | None = None
    wall_s: float = 0.0


def _plan(
    studies: Sequence[Study], scale: str, seed: int
) -> list[tuple[Study, dict[str, Any], str]]:
    plan = []
    for study in studies:
        try:
            configs = study.tasks(scale, seed)
        except StudyError:
            raise
        except Exception as exc:
            raise StudyError(f"study {study.name!r} could not list its tasks: {exc}") from exc
        keys = set()
        for config in configs:
            key = task_key(study.name, config)
            if key in keys:
                raise StudyError(f"study {study.name!r} lists the same task twice: {config}")
            keys.add(key)
            plan.append((study, config, key))
    return plan


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
        resume: complete the run in ``out``: tasks whose key has a row are skipped.
        executor: defaults to ``LocalExecutor(1)`` (in-process).
        progress: show a rich progress bar on stderr.

    Returns:
        :class:`RunSummary`; failures are listed there (the run goes on past them).
    """
    if scale not in SCALES:
        raise StudyError(f"unknown scale {scale!r}; use one of {', '.join(SCALES)}")
    if not studies:
        raise StudyError("no study to run")
    t0 = time.perf_counter()
    run = RunDir(out)
    executor = executor or LocalExecutor(1)
    names = [s.name for s in studies]
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
    executor.start()  # an unreachable cluster fails here, before anything is written
    run.create()
    _ = run.db  # validate the database before any work
    config = {
        "studies": names,
        "scale": scale,
        "seed": seed,
        **executor.describe(),
        "command": " ".join(sys.argv) if sys.argv and sys.argv[0].endswith("nngeom") else None,
        "environment": environment(device),
        "updated": _now(),
    }
    if run.exists():
        config["created"] = run.read_config().get("created", config["updated"])
    else:
        config["created"] = config["updated"]
    run.write_config(config)

    plan = _plan(studies, scale, seed)
    done = run.finished_keys()
    todo = [(s, c, k) for s, c, k in plan if k not in done]
    summary = RunSummary(run.path, total=len(plan), skipped=len(plan) - len(todo))
    try:
        with _SigtermAsInterrupt():
            _execute(run, todo, executor, summary, progress)
    except KeyboardInterrupt:
        summary.interrupted = True
    finally:
        executor.close()
        summary.wall_s = time.perf_counter() - t0
    if report and not summary.interrupted:
        from .report import build_report

        summary.report = build_report(run.path, studies)
    run.close()
    return summary


def _execute(run: RunDir, todo, executor: Executor, summary: RunSummary, show: bool) -> None:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    console = Console(stderr=True)
    columns = [
        TextColumn("[bold]{task.description:>12}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    ]
    names = list(dict.fromkeys(s.name for s, _, _ in todo))
    failed = dict.fromkeys(names, 0)
    with Progress(*columns, console=console, disable=not show, transient=False) as bar:
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
            if outcome.ok:
                run.add_result(key, name, config, outcome.result, outcome.wall_s)
                summary.finished += 1
            else:
                run.add_failure(key, name, config, outcome.error or "", outcome.traceback)
                summary.failed.append((name, config, outcome.error or ""))
                failed[name] += 1
                if show:
                    console.print(f"[red]task failed[/red] {name} {dumps(config)}: {outcome.error}")
            bar.update(rows[name], advance=1, status=f"failed {failed[name]}")
            bar.update(
                overall,
                advance=1,
                status=f"running {executor.running()} · failed {sum(failed.values())}",
            )
        bar.update(overall, status=f"running 0 · failed {sum(failed.values())}")


def load_results(
    run: RunDir, study: Study, scale: str, seed: int
) -> tuple[list[tuple[dict, dict]], int]:
    """The finished ``(config, result)`` pairs of ``study`` in task order, and its task count."""
    plan = _plan([study], scale, seed)
    stored = run.results(study.name)
    pairs = [(c, stored[k][1]) for _, c, k in plan if k in stored]
    return pairs, len(plan)


def iter_studies(names: Iterable[str]) -> list[Study]:
    from .studies import get

    return [get(n) for n in names]
