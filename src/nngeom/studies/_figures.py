"""Helpers shared by the studies' figure modules: matplotlib on the Agg backend, and a study's
figures made by a list of figure functions (each may have nothing to draw)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TypeVar

from ..plots import agg_pyplot as pyplot
from ._base import Figure

__all__ = ["pyplot", "make_figures"]

_P = TypeVar("_P")


def make_figures(
    pairs: _P,
    figdir: Path,
    makers: Iterable[Callable[[_P, Path], Figure | None]],
) -> list[Figure]:
    """The figures of ``makers(pairs, figdir)`` in order, those that return None left out
    (``figdir`` is created; matplotlib is put on the Agg backend first)."""
    pyplot()
    figdir = Path(figdir)
    figdir.mkdir(parents=True, exist_ok=True)
    out: list[Figure] = []
    for make in makers:
        fig = make(pairs, figdir)
        if fig is not None:
            out.append(fig)
    return out
