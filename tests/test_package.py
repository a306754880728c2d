"""The package's shape: no import cycle, every submodule imports as a module, and the modules
that are also functions (``ng.knots``, ``ng.hessian``, ``ng.train``, ``ng.analyze``) are both."""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import subprocess
import sys
import types
from pathlib import Path

import pytest

import nngeom

ROOT = Path(nngeom.__file__).parent


def _modules() -> dict[str, tuple[Path, bool]]:
    out = {}
    for p in ROOT.rglob("*.py"):
        parts = list(p.relative_to(ROOT.parent).with_suffix("").parts)
        is_pkg = parts[-1] == "__init__"
        out[".".join(parts[:-1] if is_pkg else parts)] = (p, is_pkg)
    return out


def _import_graph() -> dict[str, set[str]]:
    """Who imports whom inside the package, imports inside functions included."""
    mods = _modules()
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for m, (path, is_pkg) in mods.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.ImportFrom):
                base = m.split(".") if is_pkg else m.split(".")[:-1]
                if node.level:
                    base = base[: len(base) - (node.level - 1)]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                subs = [f"{target}.{a.name}" for a in node.names if f"{target}.{a.name}" in mods]
                targets = subs or ([target] if target in mods else [])
                if subs and len(subs) < len(node.names) and target in mods:
                    targets.append(target)
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names if a.name in mods]
            for t in targets:
                if t != m and not m.startswith(t + "."):  # a parent package runs first anyway
                    graph[m].add(t)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for v in graph:
        if v not in index:
            visit(v)
    return out


def test_no_import_cycle_inside_the_package():
    graph = _import_graph()
    assert len(graph) > 50
    assert "nngeom.view" in graph["nngeom.nets"]  # the graph sees real imports
    assert _cycles(graph) == []


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


FUNCTION_MODULES = ["hessian", "knots", "train", "analyze"]


def test_import_gives_modules_in_a_fresh_interpreter():
    names = ", ".join(f"nngeom.{n}" for n in FUNCTION_MODULES)
    code = f"import types, {names}; print(all(isinstance(m, types.ModuleType) for m in [{names}]))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "True"


@pytest.mark.parametrize("name", FUNCTION_MODULES)
def test_modules_that_are_also_functions(name):
    mod = importlib.import_module(f"nngeom.{name}")
    assert isinstance(mod, types.ModuleType) and callable(mod)
    assert getattr(nngeom, name) is mod
    fn = getattr(mod, name)
    assert inspect.isfunction(fn) and mod.__wrapped__ is fn
    assert inspect.signature(mod) == inspect.signature(fn)
    assert ">>>" in (inspect.getdoc(mod) or "")


def test_every_submodule_imports_as_a_module():
    for info in pkgutil.walk_packages(nngeom.__path__, prefix="nngeom."):
        assert isinstance(importlib.import_module(info.name), types.ModuleType), info.name


def test_calling_the_module_calls_the_function():
    import torch

    net = nngeom.mlp([1, 4, 1], dtype=torch.float64)
    assert nngeom.knots(net, -1.0, 1.0).count == nngeom.knots.knots(net, -1.0, 1.0).count
