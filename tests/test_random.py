"""The randomness rule (docs/DESIGN.md; ``nngeom._random``) for every public function and class
that draws random numbers.

The callables are found, not listed: every public name of ``nngeom``, ``nngeom.chaos``,
``nngeom.data`` and ``nngeom.plots`` (and every public method of those classes) whose signature
has a ``seed`` parameter. Each must also take ``generator``, both keyword-only with the defaults
``seed=0`` and ``generator=None``, and its small call in :data:`CALLS` must give

(a) the same result for the same seed twice,
(b) the same result for two generators in the same state (which end in the same state),
(c) a different result for another seed (except the names in :data:`SEED_INSENSITIVE`),
(d) with the global random states of torch, numpy and Python untouched (from the second call
    on: the first may import a library that draws at import, such as rich).

A new random function without an entry in :data:`CALLS` fails here until one is added.
"""

from __future__ import annotations

import dataclasses
import inspect
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

import nngeom as ng
import nngeom.data

F64 = torch.float64
MODULES = {"": ng, "chaos.": ng.chaos, "data.": nngeom.data, "plots.": ng.plots}


def _public(mod: Any) -> list[str]:
    names = getattr(mod, "__all__", None) or [n for n in vars(mod) if not n.startswith("_")]
    return [n for n in names if not n.startswith("_")]


def _takes_seed(obj: Any) -> inspect.Signature | None:
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return None
    return sig if "seed" in sig.parameters else None


def random_callables() -> dict[str, Any]:
    """Every public function, class and public method of a public class taking ``seed``."""
    found: dict[str, Any] = {}
    for prefix, mod in MODULES.items():
        for name in _public(mod):
            obj = getattr(mod, name)
            if inspect.ismodule(obj) or not callable(obj):
                continue
            if inspect.isclass(obj) and issubclass(obj, BaseException):
                continue
            if _takes_seed(obj) is not None:
                found[prefix + name] = obj
            if inspect.isclass(obj):
                for meth, fn in vars(obj).items():
                    if not meth.startswith("_") and callable(fn) and _takes_seed(fn) is not None:
                        found[f"{prefix}{name}.{meth}"] = fn
    return found


# --------------------------------------------------------------------------------------------
# small inputs (built from explicit generators: the global random states are never used)
# --------------------------------------------------------------------------------------------
def _x(n: int = 12, d: int = 2) -> torch.Tensor:
    return torch.randn(n, d, generator=torch.Generator().manual_seed(1), dtype=F64)


def _net(sizes: tuple[int, ...] = (2, 6, 1)) -> nn.Module:
    return ng.mlp(list(sizes), dtype=F64)


def _series(n: int = 160) -> np.ndarray:
    t = np.arange(n, dtype=np.float64)
    return np.sin(0.3 * t) + 0.5 * np.sin(0.07 * t + 1.0)


def _xy_series() -> tuple[np.ndarray, np.ndarray]:
    return ng.chaos.embed(_series(), lags=4, delay=2, horizon=1)


def _analyze_lines(tmp: Path, **rk: Any) -> Any:
    X = torch.randn(30, 2, generator=torch.Generator().manual_seed(2), dtype=F64)
    a = ng.analyze(_net((2, 6, 3)), X, out=tmp, quick=True, parts=["lines"], progress=False, **rk)
    return a.results["lines"]


def _esn(**rk: Any) -> np.ndarray:
    X, y = _xy_series()
    return ng.chaos.ESN(20, washout=10, **rk).fit(X, y).predict(X)


def _lapedes_farber(**rk: Any) -> np.ndarray:
    X, y = _xy_series()
    return ng.chaos.LapedesFarberMLP((4,), max_iter=5, **rk).fit(X, y).predict(X)


def _saddle(**rk: Any) -> np.ndarray:
    X = torch.linspace(-1, 1, 8, dtype=F64)[:, None]
    # too few steps to converge, so the seeded restart runs
    search = ng.CriticalPointSearch(lbfgs_steps=2, newton_steps=1, trust_steps=2, restarts=1)
    net = _net((1, 3, 1))
    return ng.find_permutation_saddle(
        net, X, torch.sin(2 * X), 0, 0, 1, search=search, **rk
    ).eigenvalues


def _mean_of(values: np.ndarray) -> Callable[[np.ndarray], float]:
    return lambda idx: float(values[idx].mean())


# name -> call(tmp_path, **rk) with rk = {"seed": s} or {"generator": g}
CALLS: dict[str, Callable[..., Any]] = {
    "mlp": lambda tmp, **rk: ng.mlp([2, 4, 1], **rk),
    "boundary_distances": lambda tmp, **rk: ng.boundary_distances(
        _net(), _x(), n_directions=3, **rk
    ),
    "regions_along_lines": lambda tmp, **rk: ng.regions_along_lines(_net(), _x(), n_lines=4, **rk),
    "tangent_sensitivity_hutchinson": lambda tmp, **rk: ng.tangent_sensitivity_hutchinson(
        _net((2, 4, 4, 1)), _x(), probes=3, **rk
    ),
    "analyze": _analyze_lines,
    "bootstrap_ci": lambda tmp, **rk: ng.bootstrap_ci(
        _mean_of(np.arange(20.0) ** 1.5), 20, n_boot=50, **rk
    ),
    "find_permutation_saddle": lambda tmp, **rk: _saddle(**rk),
    "hessian_eigenvalues": lambda tmp, **rk: ng.hessian_eigenvalues(
        _net(), _x(), _x(d=1), k=2, **rk
    ),
    "spectral_density": lambda tmp, **rk: ng.spectral_density(
        _net(), _x(), _x(d=1), n_probes=2, steps=4, **rk
    ),
    "train": lambda tmp, **rk: (
        lambda net: (ng.train(net, _x(), _x(d=1), epochs=2, batch_size=4, **rk), net)
    )(_net()),
    "chaos.ESN": lambda tmp, **rk: _esn(**rk),
    "chaos.LapedesFarberMLP": lambda tmp, **rk: _lapedes_farber(**rk),
    "chaos.henon_map": lambda tmp, **rk: ng.chaos.henon_map(30, **rk),
    "chaos.logistic_map": lambda tmp, **rk: ng.chaos.logistic_map(30, **rk),
    "chaos.lorenz": lambda tmp, **rk: ng.chaos.lorenz(30, transient=1.0, **rk),
    "chaos.mackey_glass": lambda tmp, **rk: ng.chaos.mackey_glass(40, transient=20.0, **rk),
    "chaos.mackey_glass_convergence": lambda tmp, **rk: ng.chaos.mackey_glass_convergence(
        t_end=5.0, steps=(1.0, 0.5), reference_step=0.125, **rk
    ),
    "data.digits": lambda tmp, **rk: nngeom.data.digits(**rk),
    "data.image_classification": lambda tmp, **rk: nngeom.data.image_classification(
        "digits", n_train=20, n_test=10, **rk
    ),
    "data.split": lambda tmp, **rk: nngeom.data.split(
        torch.arange(20.0)[:, None], torch.arange(20), **rk
    ),
}
# Converged results that do not depend on the seed (it only chooses where an iteration starts):
# (c) is not asked of them
SEED_INSENSITIVE = {
    "hessian_eigenvalues": "Lanczos converges to the same extreme eigenvalues from any start",
}


# --------------------------------------------------------------------------------------------
# comparing results
# --------------------------------------------------------------------------------------------
def _plain(obj: Any) -> Any:
    """``obj`` as nested dicts/lists of numpy arrays and Python scalars."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu().numpy()
    if isinstance(obj, np.ndarray):
        return obj
    if isinstance(obj, nn.Module):
        return {k: _plain(v) for k, v in obj.state_dict().items()}
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: _plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, (Path, str, bytes, bool, int, float, complex, type(None), np.generic)):
        return obj
    raise TypeError(f"cannot compare a {type(obj).__name__}: make the call return its numbers")


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        a, b = np.asarray(a), np.asarray(b)
        numeric = a.dtype.kind in "biufc" and b.dtype.kind in "biufc"
        return a.shape == b.shape and bool(np.array_equal(a, b, equal_nan=numeric))
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (a != a and b != b)
    return type(a) is type(b) and a == b


def _global_states() -> tuple[torch.Tensor, Any, Any]:
    return torch.get_rng_state(), np.random.get_state(), random.getstate()  # noqa: NPY002


def _same_states(a: tuple, b: tuple) -> bool:
    (ta, na, pa), (tb, nb, pb) = a, b
    numpy_same = na[0] == nb[0] and np.array_equal(na[1], nb[1]) and na[2:] == nb[2:]
    return torch.equal(ta, tb) and numpy_same and pa == pb


RANDOM = random_callables()


def test_rademacher_entries_are_fair_signs_from_the_generator():
    from nngeom._random import rademacher, random_bits

    v = rademacher((4000,), torch.Generator().manual_seed(0), dtype=F64)
    assert set(v.unique().tolist()) == {-1.0, 1.0} and abs(float(v.mean())) < 0.05
    bits = random_bits((3, 7), torch.Generator().manual_seed(1), dtype=torch.int64)
    assert bits.shape == (3, 7) and set(bits.unique().tolist()) <= {0, 1}
    assert torch.equal(
        bits, random_bits((3, 7), torch.Generator().manual_seed(1), dtype=torch.int64)
    )


def test_discovery_finds_the_known_random_functions():
    """The discovery itself: it sees functions, classes and data loaders."""
    assert {"mlp", "boundary_distances", "chaos.ESN", "data.split"} <= set(RANDOM)
    assert "plane_through" not in RANDOM


@pytest.mark.parametrize("name", sorted(RANDOM))
def test_seed_and_generator(name: str, tmp_path: Path) -> None:
    params = inspect.signature(RANDOM[name]).parameters
    assert "generator" in params, (
        f"{name} takes seed= but not generator=: add a keyword-only "
        "`generator: torch.Generator | None = None` (see nngeom._random)"
    )
    for arg, default in (("seed", 0), ("generator", None)):
        p = params[arg]
        assert p.kind is inspect.Parameter.KEYWORD_ONLY and p.default == default, (
            f"{name}: {arg} must be keyword-only with default {default!r}, got {p}"
        )
    assert name in CALLS, f"add a small call of {name} to CALLS in tests/test_random.py"
    call = CALLS[name]
    runs = iter(range(1000))

    def run(**rk: Any) -> Any:
        return _plain(call(tmp_path / f"run{next(runs)}", **rk))

    first = run(seed=3)
    before = _global_states()
    assert _same(first, run(seed=3)), f"{name}: the same seed gave different results"
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    assert _same(run(generator=g1), run(generator=g2)), (
        f"{name}: two generators in the same state gave different results"
    )
    assert torch.equal(g1.get_state(), g2.get_state())
    if name not in SEED_INSENSITIVE:
        assert not _same(first, run(seed=4)), f"{name}: seeds 3 and 4 gave the same result"
    assert _same_states(before, _global_states()), (
        f"{name} changed a global random state (torch, numpy or Python)"
    )
