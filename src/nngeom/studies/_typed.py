"""Typed studies: task configs and results as dataclasses, verdicts as data.

A study written this way declares:

* its task configs as frozen dataclasses deriving from :class:`Task`, each with a
  ``run() -> Result`` method (a module-level class, so it pickles to worker processes and Ray);
* its results as dataclasses deriving from :class:`Result`;
* ``tasks(scale, seed) -> list[Task]``;
* ``verdicts(pairs) -> list[Verdict]``: pure, no matplotlib (see ``_verdicts``);
* ``figures(pairs, figdir) -> list[Figure]`` and ``tables(pairs) -> list[Table]``;
* ``protocol(scale) -> str`` (what was run, no outcomes) and ``departures(scale) -> list[str]``
  (where the run departs from the paper's protocol).

:func:`typed_study` turns these into the :class:`~nngeom.studies._base.Study` that the run
directory and the executors know (JSON dicts in, JSON dicts out): a config is stored as
``{"task": "<module>:<class>", **fields}`` and a result as its fields; one module-level
:func:`run_task` runs any such record (the executors import it by module and name). The report's section is built
from the verdicts, so its text cannot state an outcome that a verdict does not.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from .._errors import StudyError
from ._base import Figure, Section, Study, Table
from ._verdicts import Verdict, outcome_sentence

__all__ = [
    "Task",
    "Result",
    "Pairs",
    "pairs_of",
    "typed_study",
    "to_record",
    "from_record",
    "run_task",
]


@dataclass(frozen=True)
class Result:
    """Base of a study's result dataclasses: fields of JSON-able values."""


@dataclass(frozen=True)
class Task:
    """Base of a study's task configs: a frozen dataclass of JSON-able fields (str, int, float,
    bool, None and tuples of these), deterministic given its fields (seeds are fields)."""

    def run(self) -> Result:
        raise NotImplementedError(f"{type(self).__name__}.run")


Pairs = Sequence[tuple[Task, Result]]
_T = TypeVar("_T")


def pairs_of(
    pairs: Sequence[tuple[object, object]], task: type = Task, result: type = Result
) -> list[tuple[Any, Any]]:
    """The ``(task, result)`` pairs whose task is a ``task`` and whose result is a ``result``
    (a failed or stale record's result is of neither of a study's result types)."""
    return [(t, r) for t, r in pairs if isinstance(t, task) and isinstance(r, result)]


def to_record(obj: Task | Result) -> dict[str, Any]:
    """The JSON-able dict of a task (with its class name under ``"task"``) or of a result."""
    d = {f.name: _plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, Task):
        if "task" in d:
            raise StudyError(f"{type(obj).__name__} must not have a field named 'task'")
        d = {"task": task_id(type(obj)), **d}
    return d


def task_id(cls: type) -> str:
    """``"<module>:<qualified class name>"``: where a worker imports a task's class from."""
    return f"{cls.__module__}:{cls.__qualname__}"


def task_class(tid: object) -> type[Task]:
    """The :class:`Task` class of a record's ``"task"`` id (imported)."""
    import importlib

    mod, _, qual = str(tid).partition(":")
    try:
        obj: Any = importlib.import_module(mod)
        for part in qual.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError, ValueError) as exc:
        raise StudyError(
            f"unknown task {tid!r}: no such class; the run directory was written by another "
            "version of this study; start a new run directory"
        ) from exc
    if not (isinstance(obj, type) and issubclass(obj, Task)):
        raise StudyError(f"{tid!r} is not a study task class")
    return obj


def run_task(config: dict[str, Any]) -> dict[str, Any]:
    """Run one task record (any typed study's): its class from ``config["task"]``, its result as
    a record. Module-level, so the local pool and Ray import it by module and name."""
    task = from_record(task_class(config.get("task")), config)
    result = task.run()
    if not isinstance(result, Result):
        raise StudyError(
            f"{type(task).__name__}.run returned {type(result).__name__}, not a Result"
        )
    return to_record(result)


def _plain(v: Any) -> Any:
    if isinstance(v, tuple):
        return [_plain(x) for x in v]
    if dataclasses.is_dataclass(v) and not isinstance(v, type):
        return {f.name: _plain(getattr(v, f.name)) for f in dataclasses.fields(v)}
    return v


def from_record(cls: type[_T], d: dict[str, Any]) -> _T:
    """``cls`` (a Task or Result dataclass) from its record; lists become tuples where the field
    is annotated as a tuple, unknown keys are refused (a stale run directory), missing keys take
    the field's default."""
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    extra = set(d) - set(fields) - {"task"}
    if extra:
        raise StudyError(
            f"{cls.__name__} has no field(s) {sorted(extra)}: the run directory was written by "
            "another version of this study; start a new run directory"
        )
    hints = typing.get_type_hints(cls)
    kw = {}
    for name, value in d.items():
        if name == "task":
            continue
        kw[name] = _typed(hints.get(name), value)
    return cls(**kw)


def _typed(hint: Any, value: Any) -> Any:
    if isinstance(value, list) and _is_tuple_hint(hint):
        return tuple(_typed(_tuple_item(hint), x) for x in value)
    return value


def _is_tuple_hint(hint: Any) -> bool:
    if hint is tuple or typing.get_origin(hint) is tuple:
        return True
    return any(_is_tuple_hint(a) for a in typing.get_args(hint)) if hint is not None else False


def _tuple_item(hint: Any) -> Any:
    for h in (hint, *typing.get_args(hint)):
        if typing.get_origin(h) is tuple:
            args = typing.get_args(h)
            if len(args) == 2 and args[1] is Ellipsis:
                return args[0]
    return None


def typed_study(
    *,
    name: str,
    title: str,
    paper: str,
    task_types: Sequence[type[Task]],
    result_types: dict[type[Task], type[Result]],
    tasks: Callable[[str, int], list[Task]],
    verdicts: Callable[[Pairs], list[Verdict]],
    figures: Callable[[Pairs, Path], list[Figure]],
    tables: Callable[[Pairs], list[Table]],
    protocol: Callable[[Pairs], str],
    departures: Callable[[Pairs], list[str]],
    notes: Callable[[Pairs], list[str]] | None = None,
    order: int = 100,
    resources: dict[str, float] | None = None,
) -> Study:
    """The :class:`Study` of a typed study (see the module docstring).

    ``result_types`` maps each task type to its result type. ``protocol``/``departures``/
    ``notes`` see the finished pairs (a run's scale and sizes are in its tasks).
    """
    known = {task_id(t): t for t in task_types}

    def load(config: dict[str, Any]) -> Task:
        cls = known.get(config.get("task", ""))
        if cls is None:
            raise StudyError(
                f"unknown {name} task {config.get('task')!r}; use one of {sorted(known)}"
            )
        return from_record(cls, config)

    def dict_tasks(scale: str, seed: int) -> list[dict[str, Any]]:
        return [to_record(t) for t in tasks(scale, seed)]

    def summarize(results: list[tuple[dict[str, Any], dict[str, Any]]], figdir: Path) -> Section:
        pairs: list[tuple[Task, Result]] = []
        for c, r in results:
            t = load(c)
            pairs.append((t, from_record(result_types[type(t)], r)))
        vs = verdicts(pairs)
        return Section(
            title=title,
            paper=paper,
            summary=protocol(pairs) + " " + outcome_sentence(vs),
            tables=tables(pairs),
            figures=figures(pairs, figdir),
            notes=(notes(pairs) if notes else []),
            verdicts=vs,
            departures=departures(pairs),
        )

    return Study(
        name=name,
        title=title,
        paper=paper,
        tasks=dict_tasks,
        run_task=run_task,
        summarize=summarize,
        order=order,
        resources=resources or {"num_cpus": 1},
    )
