"""The one JSON writer of the analysis commands (``--json``): a format scripts can rely on.

Every JSON output of ``nngeom`` is written by :func:`emit` and follows these rules:

* **One document, one line.** Compact JSON (no indentation; ``", "`` and ``": "`` separators),
  UTF-8, followed by one newline, on stdout. Nothing else is printed on stdout with ``--json``.
* **Envelope.** The object starts with ``"schema_version"`` (an int, :data:`SCHEMA_VERSION`;
  raised whenever a key is renamed or removed or its meaning changes, never for added keys) and
  ``"command"`` (the command line's command, e.g. ``"knots"`` or ``"chaos evaluate"``), and ends
  with ``"nonfinite"`` (below). The keys of each command are described by a JSON Schema
  (draft 2020-12) in ``JSON_SCHEMAS`` of the command's module, built with :func:`schema`.
* **Numbers are numbers.** A value that is a number is always a JSON number (an int for counts,
  exact even beyond 2**53; a float otherwise), never a string; the output never holds the
  non-standard ``NaN`` / ``Infinity`` tokens (``json.dumps(..., allow_nan=False)`` succeeds).
* **Infinite or undefined numbers** are written as ``null``, and the top-level object
  ``"nonfinite"`` says which and what they were: it maps the JSON Pointer (RFC 6901) of each
  such value to ``"inf"``, ``"-inf"`` or ``"nan"``. ``nonfinite`` is always present (``{}``
  when every number is finite). Example (``nngeom knots`` over the whole real line)::

      {"schema_version": 1, "command": "knots", "lo": null, "hi": null, ...,
       "nonfinite": {"/lo": "-inf", "/hi": "inf"}}

  A script reads ``d["lo"]`` (``None`` means: see ``d["nonfinite"]["/lo"]``). A ``null``
  without a ``nonfinite`` entry means "not applicable" (e.g. Chen's bound of a non-MLP).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import PurePath
from typing import Any

import numpy as np
import torch
import typer

__all__ = [
    "SCHEMA_VERSION",
    "encode",
    "dumps",
    "emit",
    "schema",
    "obj",
    "numbers",
    "JSON_HELP",
    "NUMBER",
    "NUMBER_OR_NULL",
    "INT",
    "INT_OR_NULL",
    "COUNT",
    "STRING",
    "BOOL",
]

SCHEMA_VERSION = 1

#: the help text of every ``--json`` option
JSON_HELP = (
    "Print the result as one line of JSON: schema_version, command, the results (numbers "
    "always as numbers; an infinite or undefined one as null, named in the object nonfinite)."
)

_JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def _pointer_part(key: str | int) -> str:
    return str(key).replace("~", "~0").replace("/", "~1")


def _float(value: float, where: str, nonfinite: dict[str, str]) -> float | None:
    if math.isfinite(value):
        return value
    nonfinite[where or "/"] = "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return None


def _encode(value: Any, where: str, nonfinite: dict[str, str]) -> Any:
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (np.bool_,)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return _float(float(value), where, nonfinite)
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "biuf":
            raise TypeError(f"cannot write an array of dtype {value.dtype} as JSON numbers")
        value = value.tolist()
        if not isinstance(value, list):  # a 0-d array
            return _encode(value, where, nonfinite)
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise TypeError(f"JSON object keys must be strings, got {k!r} at {where or '/'}")
            out[k] = _encode(v, f"{where}/{_pointer_part(k)}", nonfinite)
        return out
    if isinstance(value, (list, tuple)):
        return [_encode(v, f"{where}/{i}", nonfinite) for i, v in enumerate(value)]
    raise TypeError(f"cannot write a {type(value).__name__} as JSON (at {where or '/'})")


def encode(command: str, payload: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON object of ``command``'s result ``payload``: envelope added, numpy / torch values
    turned into plain numbers and lists, infinite and NaN numbers into ``null`` + ``nonfinite``."""
    reserved = {"schema_version", "command", "nonfinite"} & set(payload)
    if reserved:
        raise ValueError(f"the payload may not set {sorted(reserved)}: the writer sets them")
    nonfinite: dict[str, str] = {}
    body = _encode(dict(payload), "", nonfinite)
    return {"schema_version": SCHEMA_VERSION, "command": command, **body, "nonfinite": nonfinite}


def dumps(document: Mapping[str, Any]) -> str:
    """The one text form of every JSON output (compact, one line, no NaN/Infinity tokens)."""
    return json.dumps(document, allow_nan=False, ensure_ascii=False)


def emit(command: str, payload: Mapping[str, Any]) -> None:
    """Print ``command``'s result as one JSON line on stdout (see the module docstring)."""
    typer.echo(dumps(encode(command, payload)))


# --------------------------------------------------------------------------------------------
# JSON Schema building blocks
# --------------------------------------------------------------------------------------------

NUMBER: dict[str, Any] = {"type": "number"}
NUMBER_OR_NULL: dict[str, Any] = {"type": ["number", "null"]}
INT: dict[str, Any] = {"type": "integer"}
INT_OR_NULL: dict[str, Any] = {"type": ["integer", "null"]}
COUNT: dict[str, Any] = {"type": "integer", "minimum": 0}
STRING: dict[str, Any] = {"type": "string"}
BOOL: dict[str, Any] = {"type": "boolean"}


def numbers(item: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """An array of numbers (each ``null`` where non-finite) or of ``item``."""
    return {"type": "array", "items": dict(item) if item is not None else NUMBER_OR_NULL}


def obj(properties: Mapping[str, Any], *, required: bool | list[str] = True) -> dict[str, Any]:
    """A closed object: exactly ``properties`` (all required unless ``required`` says)."""
    names = list(properties) if required is True else (list(required) if required else [])
    return {
        "type": "object",
        "properties": dict(properties),
        "required": names,
        "additionalProperties": False,
    }


_NONFINITE = {
    "type": "object",
    "propertyNames": {"pattern": "^(/([^~]|~[01])*)+$"},
    "additionalProperties": {"enum": ["inf", "-inf", "nan"]},
}


def schema(
    command: str,
    properties: Mapping[str, Any],
    *,
    optional: tuple[str, ...] = (),
    title: str | None = None,
    variants: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The JSON Schema of ``command``'s output: the envelope plus ``properties`` (every one
    required except ``optional``; no other key allowed). ``variants`` (optional) are further
    schemas of which exactly one must hold (``oneOf``), e.g. one per mode of a command."""
    props = {
        "schema_version": {"const": SCHEMA_VERSION},
        "command": {"const": command},
        **properties,
        "nonfinite": _NONFINITE,
    }
    out: dict[str, Any] = {
        "$schema": _JSON_SCHEMA_DIALECT,
        "title": title or f"nngeom {command} --json",
        "type": "object",
        "properties": props,
        "required": [k for k in props if k not in optional],
    }
    if variants:
        out["oneOf"] = variants
        # the keys of the variants are allowed too; each variant says which it needs
        out["unevaluatedProperties"] = False
    else:
        out["additionalProperties"] = False
    return out
