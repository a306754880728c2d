"""Sphinx configuration of nngeom's documentation site (``make docs``).

Sphinx + autodoc/napoleon (the docstrings use Sphinx roles such as :func: and Google-style
``Args:`` sections) + sphinx-gallery (examples/*.py run at build time, their figures captured) +
the furo theme (its assets ship with the package: the site needs no network to build or view).
``NNGEOM_QUICK=1`` shrinks every example (the test suite builds the site that way).
"""

from __future__ import annotations

import inspect
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import public_api  # noqa: E402  (docs/public_api.py)

import nngeom  # noqa: E402

project = "nngeom"
author = "nngeom developers"
copyright = "nngeom developers"  # noqa: A001
release = nngeom.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
    "sphinx_gallery.gen_gallery",
]

root_doc = "index"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "gallery/*.ipynb", "gallery/*.py"]
templates_path: list[str] = []
html_theme = "furo"
html_title = f"nngeom {release}"
html_static_path: list[str] = []
html_show_sourcelink = False
# No MathJax (it would load from a CDN); the docs and docstrings use no math markup.
html_copy_source = False

autodoc_default_options = {"members": False}
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_preserve_defaults = True
napoleon_google_docstring = True
napoleon_numpy_docstring = False
# "Attributes:" sections as :ivar: fields, not separate attribute entries (which would collide
# with the dataclass fields autodoc finds).
napoleon_use_ivar = True

# --------------------------------------------------------------------------------------------
# the gallery
# --------------------------------------------------------------------------------------------
QUICK = os.environ.get("NNGEOM_QUICK", "") not in ("", "0")


sphinx_gallery_conf = {
    "examples_dirs": ["../examples"],
    "gallery_dirs": ["gallery"],
    "filename_pattern": r"/plot_",
    "ignore_pattern": r"__init__\.py|/_",
    "within_subsection_order": "FileNameSortKey",
    "download_all_examples": False,
    "backreferences_dir": None,
    "abort_on_example_error": True,
    "reset_modules": ("matplotlib", "gallery_setup.reset_torch"),
    "image_scrapers": ("matplotlib",),
    "matplotlib_animations": False,
    "remove_config_comments": True,
    "show_memory": False,
    # the computation-times page loads bootstrap and DataTables from CDNs: the site is offline
    "write_computation_times": False,
    "show_signature": False,
    "line_numbers": False,
}

# --------------------------------------------------------------------------------------------
# the API reference: one page per section of nngeom/__init__.py (and one for nngeom.chaos),
# written from the re-exports, so every public name has an entry
# --------------------------------------------------------------------------------------------
API_DIR = HERE / "api"  # generated at every build (git-ignored)
API_INDEX = """\
API reference
=============

Everything here is importable as ``import nngeom as ng; ng.<name>`` (and ``ng.chaos.<name>``).
These pages are written at build time from the re-exports in ``nngeom/__init__.py`` (one page per
section of that file, one for :mod:`nngeom.chaos`), so every public name has an entry; the text is
the object's own docstring.
"""


def _slug(title: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in title.lower()).strip("-")


def _summary(obj: object) -> str:
    """The first paragraph of ``obj``'s docstring on one line (a whole paragraph, so its inline
    markup is balanced; autosummary's first-sentence cut splits literals like ``w . x``)."""
    doc = inspect.getdoc(obj) or ""
    return " ".join(doc.strip().split("\n\n")[0].split())


def _data_comment(package: str, name: str) -> str:
    """The comment block above ``name = ...`` in the module that defines it."""
    import ast

    where = _defining_module(package, name)
    source = Path(sys.modules[where].__file__).read_text(encoding="utf-8")
    lines = source.splitlines()
    for node in ast.parse(source).body:
        targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
        if any(isinstance(t, ast.Name) and t.id == name for t in targets):
            i, comment = node.lineno - 2, []
            while i >= 0 and lines[i].lstrip().startswith("#"):
                comment.insert(0, lines[i].lstrip().lstrip("#:").strip())
                i -= 1
            return " ".join(comment)
    return ""


def _callable_module(obj: object) -> bool:
    """A module that is also its main function (``nngeom.knots``): documented as the function."""
    return inspect.ismodule(obj) and callable(obj)


def _directive(package: str, name: str, obj: object) -> list[str]:
    if isinstance(obj, type) and issubclass(obj, BaseException):
        return [f".. autoexception:: {name}", ""]
    if isinstance(obj, type):
        return [f".. autoclass:: {name}", "   :members:", ""]
    if inspect.isroutine(obj) or _callable_module(obj):
        return [f".. autofunction:: {name}", ""]
    # a constant: autodoc would show its type's docstring (a dict's), so write the entry from
    # the comment above its definition and its value
    text = _data_comment(package, name) or f"A constant of :mod:`{package}`."
    value = repr(obj).replace("\n", " ")
    return [f".. py:data:: {name}", f"   :value: {value}", "", f"   {text}", ""]


def _entries(package: str, names: list[str]) -> list[str]:
    """A summary table of ``names`` (link + first paragraph), then one entry per name."""
    mod = sys.modules[package]
    lines = [".. list-table::", "   :widths: 30 70", ""]
    for n in names:
        obj = getattr(mod, n)
        documented = inspect.isroutine(obj) or isinstance(obj, type) or _callable_module(obj)
        summary = _summary(obj) if documented else ""
        lines += [f"   * - :py:obj:`{n}`", f"     - {summary or ' '}"]
    lines.append("")
    for n in names:
        lines += _directive(package, n, getattr(mod, n))
    return lines


def _page(title: str, package: str, names: list[str]) -> str:
    lines = [f".. currentmodule:: {package}", "", title, "=" * len(title), ""]
    return "\n".join(lines + _entries(package, names))


def _chaos_groups(package: str) -> list[public_api.Section]:
    """A subpackage without section comments: its names grouped by defining module."""
    mod = sys.modules[package]
    groups: dict[str, public_api.Section] = {}
    for sec in public_api.sections(package):
        for n in sec.names:
            obj = getattr(mod, n)
            where = getattr(obj, "__module__", None) or package
            if not inspect.isroutine(obj) and not isinstance(obj, type):
                where = _defining_module(package, n)
            key = where.rsplit(".", 1)[-1]
            groups.setdefault(key, public_api.Section(key)).names.append(n)
    return list(groups.values())


def _defining_module(package: str, name: str) -> str:
    """The submodule of ``package`` a constant was imported from (by the __init__ source)."""
    import ast

    tree = ast.parse(Path(sys.modules[package].__file__).read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and any(a.name == name for a in node.names):
            return f"{package}.{(node.module or '').lstrip('.')}"
    return package


def write_api_pages() -> list[str]:
    """Write docs/api/<section>.rst for every section of the public API; return the slugs."""
    API_DIR.mkdir(exist_ok=True)
    pages: dict[str, str] = {}
    subs = set(public_api.subpackages("nngeom"))
    for sec in public_api.sections("nngeom"):
        names = [n for n in sec.names if n not in subs]
        if names:
            pages[_slug(sec.title)] = _page(sec.title[:1].upper() + sec.title[1:], "nngeom", names)
        for sub in (n for n in sec.names if n in subs):
            package = f"nngeom.{sub}"
            mod = sys.modules[package]
            intro = (inspect.getdoc(mod) or "").split("\n\n")[0].replace("\n", " ")
            title = f"nngeom.{sub}"
            text = [f".. currentmodule:: {package}", "", title, "=" * len(title), "", intro, ""]
            for g in _chaos_groups(package):
                text += [g.title, "-" * len(g.title), ""]
                text += _entries(package, g.names)
            pages[_slug(sub)] = "\n".join(text)
    toc = ["   " + slug for slug in pages]
    pages["index"] = "\n".join(
        [API_INDEX.rstrip("\n"), "", ".. toctree::", "   :maxdepth: 1", ""] + toc
    )
    for slug, text in pages.items():
        path = API_DIR / f"{slug}.rst"
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
    for stale in API_DIR.glob("*.rst"):
        if stale.stem not in pages:
            stale.unlink()
    return list(pages)


API_PAGES = write_api_pages()


# --------------------------------------------------------------------------------------------
# Known docstring problems in src/ (reported to the module owners; the docs cannot edit src/).
# The build fails on every warning (-W) EXCEPT the docutils warnings raised inside exactly these
# docstrings, which are printed as "known docstring problem" instead. Remove an entry as soon as
# its docstring is fixed: the build then fails again if the problem comes back.
# --------------------------------------------------------------------------------------------
KNOWN_DOCSTRING_PROBLEMS: dict[str, str] = {}  # none left: every docstring builds cleanly


def _known_problem(record) -> bool:
    import logging

    if record.levelno < logging.WARNING:
        return False
    location = getattr(record, "location", None)
    where = " ".join(
        str(x) for x in (location, getattr(location, "source", None), getattr(record, "msg", ""))
    )
    message = record.getMessage()
    return any(doc in where and text in message for doc, text in KNOWN_DOCSTRING_PROBLEMS.items())


class _KnownProblems:
    def __init__(self) -> None:
        self.seen: list[str] = []

    def filter(self, record) -> bool:
        if _known_problem(record):
            self.seen.append(f"{getattr(record, 'location', '')}: {record.getMessage()}")
            return False
        return True


def setup(app):
    import logging

    known = _KnownProblems()
    for handler in logging.getLogger("sphinx").handlers:
        handler.filters.insert(0, known)

    def _report(app, exc):
        for line in sorted(set(known.seen)):
            print(f"known docstring problem (src/, not fatal): {line}", file=sys.stderr)

    app.connect("build-finished", _report)
