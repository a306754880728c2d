"""The run directory: config, results database, figures, lock; written atomically, never
through links.

A run directory holds::

    config.json       what was asked (studies, scale, seed, executor) + versions of Python,
                      torch, numpy and nngeom, the platform and the device
    results.sqlite    one row per finished task, keyed by the hash of (study, task config),
                      each written in its own transaction by the driver; failures in their own table
    figures/<study>/  PNG and SVG figures made by each study's summarize()
    report.html       the self-contained report (``nngeom report DIR`` rebuilds it)
    .lock             the advisory lock (``fcntl.flock``) of the process using the directory

Every finished task is committed in its own transaction, so killing a run at any moment loses at
most the tasks in flight. A row that cannot be read back (malformed JSON, a task that does not
hash to its key) is reported in :attr:`RunDir.malformed` and skipped.

One process at a time: :meth:`RunDir.lock` is an exclusive ``flock`` on ``.lock`` (taken before
anything else is written) and a second process gets an error naming the holder's pid. Writes
never follow a symbolic link planted in the directory: files are written to a fresh temporary
name (``O_EXCL | O_NOFOLLOW``) and renamed over the old name (a link is replaced, its target
untouched), figures are staged in a fresh folder and moved in through directory descriptors
opened with ``O_NOFOLLOW``, and a linked database or lock file is refused. A full disk, a
read-only file system or a permission problem is reported as such, and the temporary files of a
failed write are removed.

The driver (:mod:`nngeom.runs`) and the report (:mod:`nngeom.report`) both build on this module.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import errno
import fcntl
import hashlib
import json
import os
import platform
import shutil
import sqlite3
import stat
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from ._errors import RunError, StudyError
from ._version import __version__
from .studies import Figure, Study

__all__ = [
    "RunDir",
    "task_key",
    "environment",
    "dumps",
    "utc_now",
    "atomic_write",
    "plan_tasks",
    "load_results",
]

CONFIG = "config.json"
DATABASE = "results.sqlite"
LOCK = ".lock"
KEY_LENGTH = 32  # hex digits of a task key (the first 128 bits of a sha256)
DB_TIMEOUT_S = 30  # seconds SQLite waits for another connection's lock before failing
_LOCK_NOTE_BYTES = 200  # most bytes of the lock holder's "pid host" note that are read
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
SCHEMA = """
CREATE TABLE IF NOT EXISTS results (
    key TEXT PRIMARY KEY, study TEXT NOT NULL, task TEXT NOT NULL, result TEXT NOT NULL,
    wall_s REAL NOT NULL, finished_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS failures (
    key TEXT PRIMARY KEY, study TEXT NOT NULL, task TEXT NOT NULL, error TEXT NOT NULL,
    traceback TEXT, failed_at TEXT NOT NULL);
"""


def dumps(obj: Any) -> str:
    """Canonical JSON of a task config or result (sorted keys; NaN and inf kept as JSON
    extensions): the text stored in ``results.sqlite`` and hashed by :func:`task_key`."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=True)


def task_key(study: str, config: dict[str, Any]) -> str:
    """The key of a task: sha256 of the study name and its canonical JSON config
    (``KEY_LENGTH`` hex digits)."""
    return hashlib.sha256(dumps({"study": study, "config": config}).encode()).hexdigest()[
        :KEY_LENGTH
    ]


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


def utc_now() -> str:
    """The current UTC time, ISO 8601 to the second (the timestamps of rows and configs)."""
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _os_error(exc: OSError, what: str, where: Path) -> RunError:
    """A :class:`RunError` that says what an ``OSError`` while writing ``what`` means."""
    code = exc.errno
    reason = exc.strerror or str(exc)
    if code in (errno.ENOSPC, getattr(errno, "EDQUOT", -1)):
        msg = (
            f"no space left on the disk holding {where} (writing {what}): free some space or "
            "choose another --out; finished tasks are saved, rerun with --resume"
        )
    elif code == errno.EROFS:
        msg = (
            f"{where} is on a read-only file system (writing {what}): copy the run directory "
            "to a writable place and use that copy, or choose another --out"
        )
    elif code in (errno.EACCES, errno.EPERM):
        msg = (
            f"permission denied writing {what} in {where}: give this user write access, or "
            "choose another --out"
        )
    elif code == errno.ELOOP:
        msg = (
            f"{what} in {where} is a symbolic link: nngeom never writes through links in a run "
            "directory; remove the link (its target is not touched) and rerun"
        )
    else:
        msg = f"cannot write {what} in {where} ({reason}); check the disk, or choose another --out"
    err = RunError(msg)
    err.__cause__ = exc
    return err


def _sqlite_error(exc: sqlite3.Error, db_path: Path) -> RunError:
    """A :class:`RunError` that says what an SQLite error on ``results.sqlite`` means."""
    name = getattr(exc, "sqlite_errorname", "") or ""
    text = str(exc)
    low = text.lower()
    where = db_path.parent
    if name == "SQLITE_FULL" or "disk is full" in low:
        msg = (
            f"no space left on the disk holding {where} (writing {db_path.name}): free some "
            "space, then rerun with --resume; finished tasks are saved"
        )
    elif name.startswith("SQLITE_READONLY") or "readonly database" in low:
        msg = (
            f"{db_path} cannot be written (read-only file or file system): copy the run "
            "directory to a writable place and use that copy, or choose another --out"
        )
    elif name.startswith("SQLITE_CANTOPEN") or "unable to open" in low:
        msg = (
            f"cannot open {db_path} ({text}): check that the directory exists and is writable, "
            "or choose another --out"
        )
    elif name.startswith("SQLITE_IOERR") or "disk i/o error" in low:
        msg = (
            f"disk I/O error on {db_path} ({text}): the disk may be full or failing; check it, "
            "then rerun with --resume"
        )
    elif name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or "database is locked" in low:
        msg = (
            f"{db_path} is locked by another process ({text}); wait for it to finish, or "
            "choose another --out"
        )
    elif name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")) or (
        not name and type(exc) is sqlite3.DatabaseError
    ):
        msg = (
            f"{db_path} is corrupted or not an SQLite database ({text}); move it away and "
            "rerun with --resume to recompute, or start a new run with another --out"
        )
    else:
        msg = f"cannot use {db_path} ({type(exc).__name__}: {text}); check the disk and rerun"
    err = RunError(msg)
    err.__cause__ = exc
    return err


def _open_dir_nofollow(parent_fd: int, name: str, create: bool, label: str) -> int:
    """Open the directory ``name`` under ``parent_fd`` without following a link (made if absent)."""
    if create:
        try:
            os.mkdir(name, dir_fd=parent_fd)
        except FileExistsError:
            pass
    try:
        return os.open(name, os.O_RDONLY | os.O_DIRECTORY | _NOFOLLOW | _CLOEXEC, dir_fd=parent_fd)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise RunError(
                f"{label} is a symbolic link or not a directory: nngeom writes only inside the "
                "run directory and never through links; remove it (a link's target is not "
                "touched) and rerun"
            ) from exc
        raise _os_error(exc, label, Path(label).parent) from exc


def _write_new(dir_fd: int | None, name: str, data: bytes) -> None:
    """Write ``data`` to a file ``name`` that must not exist yet (never a link), fsync'd."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC
    fd = os.open(name, flags, 0o644, dir_fd=dir_fd)
    try:
        view = memoryview(data)
        while view:
            n = os.write(fd, view)
            view = view[n:]
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, text: str) -> None:
    """Replace ``path`` by ``text`` atomically; a symbolic link at ``path`` is replaced, not
    followed; the temporary file is removed when the write fails."""
    path = Path(path)
    tmp = f".{path.name}.tmp{os.getpid()}"
    try:
        dir_fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | _CLOEXEC)
    except OSError as exc:
        raise _os_error(exc, path.name, path.parent) from exc
    try:
        try:
            try:
                os.unlink(tmp, dir_fd=dir_fd)  # a leftover of a killed writer with our pid
            except FileNotFoundError:
                pass
            _write_new(dir_fd, tmp, text.encode())
            os.replace(tmp, path.name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        except OSError as exc:
            try:
                os.unlink(tmp, dir_fd=dir_fd)
            except OSError:
                pass
            raise _os_error(exc, path.name, path.parent) from exc
    finally:
        os.close(dir_fd)


# -- the advisory lock: one process per run directory ---------------------------------------
_HELD: dict[str, list] = {}  # realpath of the run directory -> [fd, depth] held by this process


class _RunLock:
    """An exclusive ``flock`` on ``DIR/.lock`` (re-entrant within this process)."""

    def __init__(self, path: Path, what: str) -> None:
        self.path = path
        self.what = what
        self.key = os.path.realpath(path)

    def __enter__(self) -> _RunLock:
        held = _HELD.get(self.key)
        if held is not None:
            held[1] += 1
            return self
        name = self.path / LOCK
        try:
            fd = os.open(name, os.O_RDWR | os.O_CREAT | _NOFOLLOW | _CLOEXEC, 0o644)
        except OSError as exc:
            raise _os_error(exc, LOCK, self.path) from exc
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise RunError(f"{name} is not a regular file; remove it and rerun")
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, _LOCK_NOTE_BYTES, 0).decode(errors="replace").split()
                pid = holder[0] if holder else "unknown"
                raise RunError(
                    f"{self.path} is in use by another nngeom process (pid {pid}); one run "
                    f"directory takes one process at a time: wait for it to finish (or stop it) "
                    f"before {self.what}, or choose another --out"
                ) from None
            try:
                os.ftruncate(fd, 0)
                os.pwrite(fd, f"{os.getpid()} {platform.node()}\n".encode(), 0)
            except OSError:
                pass  # the lock is held; the pid note is informative only
        except BaseException:
            os.close(fd)
            raise
        _HELD[self.key] = [fd, 1]
        return self

    def __exit__(self, *exc: object) -> None:
        held = _HELD.get(self.key)
        if held is None:
            return
        held[1] -= 1
        if held[1] == 0:
            del _HELD[self.key]
            fcntl.flock(held[0], fcntl.LOCK_UN)
            os.close(held[0])


class RunDir:
    """A run directory (see the module docstring). Opening it validates the database."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._db: sqlite3.Connection | None = None
        self.malformed: dict[str, str] = {}  # key -> why its row cannot be used (last scan)

    # -- files ---------------------------------------------------------------------------
    @property
    def config_path(self) -> Path:
        return self.path / CONFIG

    @property
    def db_path(self) -> Path:
        return self.path / DATABASE

    def figures(self, study: str) -> Path:
        """``figures/<study>`` (made if absent); refused if it or ``figures`` is a link."""
        root = self._dir_fd()
        try:
            figs = _open_dir_nofollow(root, "figures", True, str(self.path / "figures"))
            try:
                os.close(_open_dir_nofollow(figs, study, True, str(self.path / "figures" / study)))
            finally:
                os.close(figs)
        finally:
            os.close(root)
        return self.path / "figures" / study

    def _dir_fd(self) -> int:
        try:
            return os.open(self.path, os.O_RDONLY | os.O_DIRECTORY | _CLOEXEC)
        except OSError as exc:
            raise _os_error(exc, "the run directory", self.path) from exc

    def summarize_into(self, study: str, summarize) -> Any:
        """Run ``summarize(figdir)`` on a fresh staging folder, then move what it wrote into
        ``figures/<study>`` without following links; Figure paths are rewritten accordingly."""
        final = self.figures(study)
        root = self._dir_fd()
        try:
            figs = _open_dir_nofollow(root, "figures", False, str(self.path / "figures"))
        finally:
            os.close(root)
        try:
            try:
                staging = Path(
                    tempfile.mkdtemp(prefix=f".staging-{study}-", dir=self.path / "figures")
                )
            except OSError as exc:
                raise _os_error(exc, "figures", self.path) from exc
            try:
                section = summarize(staging)
                self._move_figures(figs, staging, study)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
        finally:
            os.close(figs)
        return _rebase_figures(section, staging, final)

    def _move_figures(self, figs_fd: int, staging: Path, study: str) -> None:
        label = self.path / "figures" / study
        dst = _open_dir_nofollow(figs_fd, study, True, str(label))
        try:
            src = os.open(staging, os.O_RDONLY | os.O_DIRECTORY | _NOFOLLOW | _CLOEXEC)
            try:
                _move_tree(src, dst, label)
            finally:
                os.close(src)
        finally:
            os.close(dst)

    def exists(self) -> bool:
        return self.config_path.is_file()

    def create(self) -> RunDir:
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RunError(
                f"cannot write to run directory {self.path}: {exc.strerror or exc}; choose another --out"
            ) from exc
        if not self.path.is_dir():  # pragma: no cover - mkdir(exist_ok) raises for files
            raise RunError(f"{self.path} is not a directory; choose another --out")
        return self

    def lock(self, what: str = "running") -> _RunLock:
        """The run directory's exclusive lock (a context manager; the directory must exist)."""
        return _RunLock(self.path, what)

    def read_config(self) -> dict[str, Any]:
        try:
            return json.loads(self.config_path.read_text())
        except FileNotFoundError as exc:
            raise RunError(f"{self.path} is not a run directory (no {CONFIG})") from exc
        except (OSError, ValueError) as exc:
            raise RunError(
                f"{self.config_path} is unreadable ({exc}); start a new run with another --out"
            ) from exc

    def write_config(self, config: dict[str, Any]) -> None:
        atomic_write(self.config_path, json.dumps(config, indent=2, sort_keys=True) + "\n")

    # -- database ------------------------------------------------------------------------
    @property
    def db(self) -> sqlite3.Connection:
        if self._db is None:
            self._db = self._open_db()
        return self._db

    def _open_db(self) -> sqlite3.Connection:
        for suffix in ("", "-journal", "-wal", "-shm"):
            p = Path(str(self.db_path) + suffix)
            if p.is_symlink():
                raise RunError(
                    f"{p} is a symbolic link: nngeom never writes through links in a run "
                    "directory; remove the link (its target is not touched) and rerun"
                )
        conn = None
        try:
            conn = sqlite3.connect(self.db_path, timeout=DB_TIMEOUT_S, isolation_level=None)
            conn.execute("PRAGMA synchronous=FULL")
            status = conn.execute("PRAGMA quick_check").fetchone()[0]
            if status != "ok":
                raise sqlite3.DatabaseError(status)
            conn.executescript(SCHEMA)
            return conn
        except sqlite3.Error as exc:
            if conn is not None:
                conn.close()
            raise _sqlite_error(exc, self.db_path) from exc

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def _query(self, sql: str, args: tuple = ()) -> list[tuple]:
        try:
            self.db.text_factory = bytes  # decode per row: one bad row must not stop the query
            try:
                return self.db.execute(sql, args).fetchall()
            finally:
                self.db.text_factory = str
        except sqlite3.Error as exc:
            raise _sqlite_error(exc, self.db_path) from exc

    def _scan(self, study: str | None = None) -> dict[str, tuple[str, dict, dict, float]]:
        """Valid rows ``{key: (study, task, result, wall_s)}``; malformed ones go to
        :attr:`malformed` (of this scan)."""
        q = "SELECT key, study, task, result, wall_s FROM results"
        rows = self._query(q + " WHERE study = ?", (study,)) if study else self._query(q)
        good: dict[str, tuple[str, dict, dict, float]] = {}
        self.malformed = {}
        for key, name, task, result, wall in rows:
            key = _text(key)
            try:
                name, task_obj, result_obj = (
                    _text(name),
                    json.loads(_text(task)),
                    json.loads(_text(result)),
                )
                if not isinstance(task_obj, dict) or not isinstance(result_obj, dict):
                    raise ValueError("task or result is not a JSON object")
                if task_key(name, task_obj) != key:
                    raise ValueError("the stored task does not hash to the row's key")
                good[key] = (name, task_obj, result_obj, float(wall))
            except (TypeError, ValueError) as exc:
                self.malformed[key] = f"{type(exc).__name__}: {exc}"
        return good

    def finished_keys(self) -> set[str]:
        return set(self._scan())

    def failed_keys(self) -> set[str]:
        return {_text(row[0]) for row in self._query("SELECT key FROM failures")}

    def drop_rows(self, keys: Iterable[str]) -> None:
        """Delete the result rows of ``keys`` (malformed rows, before their tasks run again)."""
        with self._transaction() as db:
            db.executemany("DELETE FROM results WHERE key = ?", [(k,) for k in keys])

    def add_result(
        self, key: str, study: str, task: dict[str, Any], result: dict[str, Any], wall_s: float
    ) -> None:
        """Store one finished task in its own transaction (an existing key is left untouched)."""
        payload = dumps(result)
        with self._transaction() as db:
            db.execute(
                "INSERT OR IGNORE INTO results VALUES (?, ?, ?, ?, ?, ?)",
                (key, study, dumps(task), payload, float(wall_s), utc_now()),
            )
            db.execute("DELETE FROM failures WHERE key = ?", (key,))

    def add_failure(
        self, key: str, study: str, task: dict[str, Any], error: str, tb: str | None
    ) -> None:
        with self._transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO failures VALUES (?, ?, ?, ?, ?, ?)",
                (key, study, dumps(task), error, tb, utc_now()),
            )

    def _transaction(self):
        db = self.db
        db_path = self.db_path

        class _Tx:
            def __enter__(self_inner):
                try:
                    db.execute("BEGIN IMMEDIATE")
                except sqlite3.Error as exc:
                    raise _sqlite_error(exc, db_path) from exc
                return db

            def __exit__(self_inner, exc_type, exc, tb):
                try:
                    db.execute("COMMIT" if exc_type is None else "ROLLBACK")
                except sqlite3.Error as err:
                    if exc_type is None:
                        try:
                            db.execute("ROLLBACK")
                        except sqlite3.Error:
                            pass
                        raise _sqlite_error(err, db_path) from err
                if isinstance(exc, sqlite3.Error):
                    raise _sqlite_error(exc, db_path) from exc
                return False

        return _Tx()

    def results(
        self, study: str | None = None
    ) -> dict[str, tuple[dict[str, Any], dict[str, Any], float]]:
        """``{key: (task, result, wall_s)}`` of finished tasks (of one study, or all).

        Rows that cannot be read back are skipped and listed in :attr:`malformed`."""
        return {k: (t, r, w) for k, (_, t, r, w) in self._scan(study).items()}

    def failures(self) -> list[tuple[str, dict[str, Any], str]]:
        rows = self._query("SELECT study, task, error FROM failures ORDER BY study, failed_at")
        out = []
        for s, t, e in rows:
            try:
                task = json.loads(_text(t))
            except (TypeError, ValueError):
                task = {"unreadable": _text(t)}
            out.append((_text(s), task, _text(e)))
        return out

    def failure_errors(self) -> dict[str, str]:
        """``{key: error}`` of the failures table."""
        return {_text(k): _text(e) for k, e in self._query("SELECT key, error FROM failures")}


def _text(value: Any) -> str:
    """A column read with ``text_factory=bytes`` as text (strict UTF-8: ValueError otherwise)."""
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if value is None:
        raise TypeError("NULL where text was expected")
    return str(value)


def _move_tree(src_fd: int, dst_fd: int, label: Path) -> None:
    """Move every entry of the directory ``src_fd`` into ``dst_fd`` (renames replace links at the
    destination instead of following them; subfolders are opened with ``O_NOFOLLOW``)."""
    for entry in os.listdir(src_fd):
        st = os.stat(entry, dir_fd=src_fd, follow_symlinks=False)
        if stat.S_ISDIR(st.st_mode):
            sub_src = os.open(
                entry, os.O_RDONLY | os.O_DIRECTORY | _NOFOLLOW | _CLOEXEC, dir_fd=src_fd
            )
            try:
                sub_dst = _open_dir_nofollow(dst_fd, entry, True, str(label / entry))
                try:
                    _move_tree(sub_src, sub_dst, label / entry)
                finally:
                    os.close(sub_dst)
            finally:
                os.close(sub_src)
            continue
        try:
            os.replace(entry, entry, src_dir_fd=src_fd, dst_dir_fd=dst_fd)
        except IsADirectoryError as exc:
            raise RunError(
                f"{label / entry} is a directory where a figure goes; remove it and rerun"
            ) from exc
        except OSError as exc:
            raise _os_error(exc, f"figures/{label.name}/{entry}", label.parent.parent) from exc


def _rebase_figures(section: Any, staging: Path, final: Path) -> Any:
    """``section`` with Figure paths under ``staging`` moved to ``final``."""

    def move(p: Any) -> Any:
        if p is None:
            return None
        try:
            rel = Path(p).relative_to(staging)
        except ValueError:
            return p
        return final / rel

    figures = getattr(section, "figures", None)
    if not isinstance(figures, list):
        return section
    section.figures = [
        dataclasses.replace(f, path=move(f.path), paper_path=move(f.paper_path))
        if isinstance(f, Figure)
        else f
        for f in figures
    ]
    return section


def plan_tasks(
    studies: Sequence[Study], scale: str, seed: int
) -> list[tuple[Study, dict[str, Any], str]]:
    """Every task of ``studies`` at ``scale`` as ``(study, config, key)``, in the studies' order.

    Raises:
        StudyError: a study cannot list its tasks, or lists the same task twice.
    """
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


def load_results(
    run: RunDir, study: Study, scale: str, seed: int
) -> tuple[list[tuple[dict, dict]], int]:
    """The finished ``(config, result)`` pairs of ``study`` in task order, and its task count."""
    plan = plan_tasks([study], scale, seed)
    stored = run.results(study.name)
    pairs = [(c, stored[k][1]) for _, c, k in plan if k in stored]
    return pairs, len(plan)
