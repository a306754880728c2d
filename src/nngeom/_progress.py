"""The rich progress display of long runs (``nngeom reproduce`` and ``nngeom analyze``), on stderr.

Each row shows its name, a bar, ``done/total``, a status text (the row's ``status`` field) and
the elapsed time, and with ``eta=True`` the estimated time left.
"""

from __future__ import annotations

from typing import Any


def progress_bar(show: bool, *, name_width: int, eta: bool = False) -> Any:
    """A ``rich.progress.Progress`` (use it as a context manager), hidden when ``show`` is False.
    Rows are added with ``bar.add_task(name, total=..., status="...")``."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = [
        TextColumn(f"[bold]{{task.description:>{int(name_width)}}}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
    ]
    if eta:
        columns += [TextColumn("ETA"), TimeRemainingColumn()]
    return Progress(*columns, console=Console(stderr=True), disable=not show, transient=False)
