"""The studies: one module per paper, each defining ``STUDY`` (see ``_base``).

Studies register themselves by existing: every module in this package that defines a
module-level ``STUDY`` is found by :func:`available`.
"""

from __future__ import annotations

import importlib
import pkgutil

from .._errors import StudyError
from ._base import SCALES, Figure, KeyNumber, Section, Study, Table

__all__ = ["Study", "Section", "Table", "Figure", "KeyNumber", "SCALES", "available", "get"]


def available() -> dict[str, Study]:
    """All registered studies by name, in report order."""
    found: list[Study] = []
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        study = getattr(module, "STUDY", None)
        if isinstance(study, Study):
            found.append(study)
    found.sort(key=lambda s: (s.order, s.name))
    return {s.name: s for s in found}


def get(name: str) -> Study:
    """The study called ``name``; :class:`StudyError` listing the known ones otherwise."""
    studies = available()
    if name not in studies:
        known = ", ".join(studies) or "none yet"
        raise StudyError(f"unknown study {name!r}; available studies: {known} (or 'all')")
    return studies[name]
