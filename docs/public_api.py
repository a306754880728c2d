"""The public names of nngeom, read from the explicit re-exports of its ``__init__`` files.

``src/nngeom/__init__.py`` (and ``chaos/__init__.py``) re-export every public name as
``from .x import name as name``; this module lists those names, in file order, grouped by the
``# --- section ---`` comments. ``docs/conf.py`` writes the API pages from it and
``tests/test_docs.py`` checks the built site against it, so a name added to ``__init__`` appears
in the reference without editing the docs.
"""

from __future__ import annotations

import ast
import importlib.util
import re
from dataclasses import dataclass, field
from pathlib import Path

_SECTION = re.compile(r"^#\s*-+\s*(.+?)\s*-*\s*$")


@dataclass
class Section:
    title: str
    names: list[str] = field(default_factory=list)


def _init_file(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise ImportError(f"cannot find the package {package!r}")
    return Path(spec.origin)


def sections(package: str = "nngeom") -> list[Section]:
    """Sections of ``package``'s explicit re-exports (``import x as x``), in file order.

    A re-exported subpackage (``from . import chaos as chaos``) is listed as a name too.
    """
    path = _init_file(package)
    if path.name != "__init__.py":  # a plain module (e.g. nngeom.plots): its __all__
        import importlib

        return [Section("API", list(getattr(importlib.import_module(package), "__all__", [])))]
    source = path.read_text(encoding="utf-8")
    tree = ast.parse(source)
    titles: dict[int, str] = {}
    for lineno, line in enumerate(source.splitlines(), start=1):
        m = _SECTION.match(line.strip())
        if m:
            titles[lineno] = re.sub(r"\s*\(.*\)\s*$", "", m.group(1)).strip()
    out: list[Section] = []
    for node in tree.body:
        if not isinstance(node, ast.ImportFrom) or node.module == "__future__":
            continue
        names = [a.asname for a in node.names if a.asname is not None and a.asname == a.name]
        names = [n for n in names if not n.startswith("_")]
        if not names:
            continue
        above = [ln for ln in titles if ln < node.lineno]
        title = titles[max(above)] if above else "API"
        if not out or out[-1].title != title:
            out.append(Section(title))
        out[-1].names.extend(names)
    return out


def public_names(package: str = "nngeom") -> list[str]:
    """Every public name re-exported by ``package`` (in file order)."""
    return [n for s in sections(package) for n in s.names]


def subpackages(package: str = "nngeom") -> list[str]:
    """Re-exported names of ``package`` that are modules (e.g. ``chaos``); a module that is also
    its main function (``knots``, ``hessian``, ``train``, ``analyze``) is documented as that
    function, not here."""
    import importlib
    import types

    mod = importlib.import_module(package)
    return [
        n
        for n in public_names(package)
        if isinstance(getattr(mod, n), types.ModuleType) and not callable(getattr(mod, n))
    ]


def all_public(package: str = "nngeom") -> list[str]:
    """Dotted paths of every public object: ``nngeom.knots``, ``nngeom.chaos.embed``, ..."""
    subs = set(subpackages(package))
    out = []
    for n in public_names(package):
        if n in subs:
            out.extend(all_public(f"{package}.{n}"))
        else:
            out.append(f"{package}.{n}")
    return out
