"""What a study is: a pure function from a config to results, split into tasks.

A study module in ``nngeom/studies/`` defines one module-level ``STUDY = Study(...)``:

* ``tasks(scale, seed)`` -> list of task configs (JSON-able dicts). Each task is run by
  ``run_task(config) -> dict`` (a module-level, picklable function: it runs in a worker process
  or on a Ray worker), whose JSON-able result is stored in ``results.sqlite`` keyed by the hash
  of the config. A task must be deterministic given its config (seeds live in the config).
* ``summarize(results, figdir) -> Section`` turns the finished ``(config, result)`` pairs into
  the tables, figures and key numbers of the report. It runs in the driver, may be rerun at any
  time (``nngeom report DIR``), and must not train anything heavy.

Scales: ``"quick"`` is sized for a 2-core laptop (``make demo`` runs all five studies at this
scale); ``"paper"`` finishes in at most an hour on 2 cores (the paper's sizes where they fit,
each reduction stated in the study's departures); ``"full"`` keeps the paper's sizes, for a
cluster.

Helper shared by the study modules: :func:`save_figure` (a figure as PNG + SVG).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Study", "Section", "Table", "Figure", "KeyNumber", "SCALES"]

SCALES = ("quick", "paper", "full")
TaskConfig = dict[str, Any]
TaskResult = dict[str, Any]


@dataclass(frozen=True)
class Table:
    """A table of the report. ``rows`` hold plain values (str, int, float)."""

    caption: str
    header: Sequence[str]
    rows: Sequence[Sequence[Any]]


@dataclass(frozen=True)
class Figure:
    """A figure of the report: a PNG (an SVG beside it is linked when present).

    ``paper`` describes the paper's own figure it reproduces ("Fig. 2 of Chen 2016: ..."),
    and ``paper_path`` is an optional image of the paper's figure redrawn from its reported numbers.
    """

    path: Path
    caption: str
    paper: str | None = None
    paper_path: Path | None = None


@dataclass(frozen=True)
class KeyNumber:
    """One headline number of a study beside the paper's value."""

    label: str
    ours: str
    paper: str
    verdict: str = ""  # e.g. "reproduced", "differs: ...", "not in paper"


@dataclass
class Section:
    """A study's part of the report."""

    title: str
    paper: str  # full citation
    summary: str  # a short paragraph: what was run and what was found (plain text)
    key_numbers: list[KeyNumber] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    verdicts: list[Any] = field(default_factory=list)  # _verdicts.Verdict, one per claim
    departures: list[str] = field(default_factory=list)  # where the run departs from the paper


@dataclass(frozen=True)
class Study:
    """A reproducible study of one paper. See the module docstring for the contract."""

    name: str  # the CLI name: `nngeom reproduce <name>`
    title: str
    paper: str
    tasks: Callable[[str, int], list[TaskConfig]]
    run_task: Callable[[TaskConfig], TaskResult]
    summarize: Callable[[list[tuple[TaskConfig, TaskResult]], Path], Section]
    order: int = 100  # position in `reproduce all` and in the report
    # per-task resources for the Ray executor, e.g. {"num_cpus": 1, "num_gpus": 0.25}
    resources: dict[str, float] = field(default_factory=lambda: {"num_cpus": 1})


FIGURE_DPI = 100  # resolution of a study's PNG figures, dots per inch


def save_figure(
    fig: Any, figdir: Path, stem: str, *, dpi: int = FIGURE_DPI, tight: bool = False
) -> Path:
    """Save the matplotlib figure ``fig`` as ``figdir/stem.png`` (``dpi``) and ``figdir/stem.svg``,
    close it, and return the PNG's path. ``tight``: crop to the drawn area."""
    import matplotlib.pyplot as plt

    bbox = "tight" if tight else None
    png = Path(figdir) / f"{stem}.png"
    fig.savefig(png, dpi=dpi, bbox_inches=bbox)
    fig.savefig(Path(figdir) / f"{stem}.svg", bbox_inches=bbox)
    plt.close(fig)
    return png
