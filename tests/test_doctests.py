"""The ``>>>`` examples in nngeom's docstrings run and pass, and every public name has one.

Public names: the re-exports of ``nngeom/__init__``, of ``nngeom.chaos`` and ``nngeom.plots``'s
``__all__``. The examples run with ``ELLIPSIS | NORMALIZE_WHITESPACE``, matplotlib on Agg, in a
temporary working directory, and must leave torch's global random state as they found it.
"""

from __future__ import annotations

import doctest
import importlib
import inspect
import pkgutil

import matplotlib
import pytest
import torch

import nngeom

matplotlib.use("Agg")

FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE

# Public names that need no example of their own, with the reason.
NO_EXAMPLE = {
    # exceptions: raised, not called; their use shows in the functions that raise them
    "DataError": "exception class",
    "InvalidInput": "exception class",
    "InvalidModel": "exception class",
    "ModelFileError": "exception class",
    "NngeomError": "exception class",
    "RunError": "exception class",
    "StudyError": "exception class",
    "UnsupportedModel": "exception class",
    "__version__": "a string, not a function",
    "chaos": "a subpackage; its names are checked one by one",
    "plots": "a module; its names are checked one by one",
    "chaos.LYAPUNOV_EXPONENTS": "a constant dict, not a function",
}

# Examples of functions that themselves draw from torch's global generator (they build layers
# with ``nn.Linear``, whose default initialisation draws, then overwrite the weights); the test
# restores the state after them.
DRAWS_GLOBAL_RNG: set[str] = set()  # no example may touch torch's global random state


def _modules() -> list[str]:
    names = ["nngeom"]
    for info in pkgutil.walk_packages(nngeom.__path__, prefix="nngeom."):
        names.append(info.name)
    return sorted(names)


def _public() -> dict[str, object]:
    import nngeom.chaos
    import nngeom.plots

    out: dict[str, object] = {}
    for name in dir(nngeom):
        if not name.startswith("_") or name == "__version__":
            if name in ("annotations",):
                continue
            obj = getattr(nngeom, name)
            if inspect.ismodule(obj) and not callable(obj) and name not in ("chaos", "plots"):
                continue  # a module that is also its function (ng.knots) is checked as one
            out[name] = obj
    for name in dir(nngeom.chaos):
        obj = getattr(nngeom.chaos, name)
        if name.startswith("_") or name == "annotations" or inspect.ismodule(obj):
            continue
        out[f"chaos.{name}"] = obj
    for name in nngeom.plots.__all__:
        out[f"plots.{name}"] = getattr(nngeom.plots, name)
    return out


def _has_example(obj: object) -> bool:
    return ">>>" in (inspect.getdoc(obj) or "")


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    yield tmp_path


@pytest.mark.parametrize("modname", _modules())
def test_doctests_pass(modname, in_tmp):
    """Every docstring example of every nngeom module passes (and leaves global RNG alone)."""
    import matplotlib.pyplot as plt

    module = importlib.import_module(modname)
    finder = doctest.DocTestFinder(exclude_empty=True)
    tests = [t for t in finder.find(module, modname) if t.examples]
    if not tests:
        return  # nothing to run (e.g. a private helper module)
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    used_rng = []
    for t in tests:
        rng = torch.random.get_rng_state()
        runner.run(t)
        if not torch.equal(torch.random.get_rng_state(), rng):
            torch.random.set_rng_state(rng)
            if t.name not in DRAWS_GLOBAL_RNG:
                used_rng.append(t.name)
    plt.close("all")
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {modname}"
    assert not used_rng, f"examples that changed torch's global random state: {used_rng}"


def test_every_public_name_has_an_example():
    public = _public()
    missing = [n for n, obj in public.items() if n not in NO_EXAMPLE and not _has_example(obj)]
    assert not missing, f"public names without a >>> example: {missing}"
    stale = [n for n in NO_EXAMPLE if n not in public]
    assert not stale, f"NO_EXAMPLE lists names that are not public: {stale}"
