"""Modules that are also their main function.

``nngeom.knots``, ``nngeom.hessian``, ``nngeom.train`` and ``nngeom.analyze`` are each a module
(``import nngeom.knots`` gives it: its result types and helpers) and the function of the same
name (``ng.knots(model, lo, hi)`` calls ``nngeom.knots.knots``). Each of these modules ends with
``make_callable(__name__, <function>)``: calling the module calls the function, and the module
carries the function's signature and docstring, so ``help(ng.knots)`` and
``inspect.signature(ng.knots)`` describe the function.
"""

from __future__ import annotations

import inspect
import sys
import types
from collections.abc import Callable
from typing import Any


class CallableModule(types.ModuleType):
    """A module whose call is its main function's (see the module docstring)."""

    __wrapped__: Callable[..., Any]

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.__wrapped__(*args, **kwargs)


def make_callable(module_name: str, fn: Callable[..., Any]) -> None:
    """Make the module ``module_name`` call ``fn`` (with its signature and docstring)."""
    module = sys.modules[module_name]
    module.__class__ = CallableModule
    module.__wrapped__ = fn  # type: ignore[attr-defined]
    module.__signature__ = inspect.signature(fn)  # type: ignore[attr-defined]
    module.__doc__ = fn.__doc__
