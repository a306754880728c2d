"""``nngeom sensitivity MODEL --data ...``: tangent sensitivity of a saved model on data.

``--json`` prints one line of JSON (see ``nngeom.commands._json``); its keys are described by
``JSON_SCHEMAS["sensitivity"]``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import torch
import typer

from .._errors import InvalidInput, UnsupportedModel
from . import _args, _json
from ._json import COUNT, NUMBER_OR_NULL, STRING, numbers, obj
from ._model import arch_option, key_option, load, model_argument

DATASETS = ("auto", "fashion-mnist", "digits")
METHODS = ("auto", "closed_form", "autodiff", "hutchinson")
MAX_EXAMPLES = 10_000_000  # --n
MAX_PROBES = 10_000  # --probes


def load_inputs(
    spec: str, *, split: str = "test", n: int | None = None, seed: int = 0
) -> torch.Tensor:
    """Inputs ``(N, d)`` from a dataset name (``auto``, ``fashion-mnist``, ``digits``) or a file.

    Files (:data:`_args.INPUT_TYPES`): ``.npy`` (an ``(N, d)`` array), ``.npz`` (array ``"X"``)
    or ``.pt``/``.pth`` (a tensor, or a dict with key ``"X"``, read with ``weights_only=True``).
    ``n`` keeps the first ``n`` rows (a seeded subset for datasets).
    """
    if n is not None:
        n = _args.count(n, "--n", maximum=MAX_EXAMPLES)
    if split not in ("train", "test"):
        raise InvalidInput(f"--split must be 'train' or 'test', got {split[:40]!r}")
    if spec in DATASETS:
        from ..data import image_classification

        ds = image_classification(
            spec,
            n_train=n if split == "train" else 1,
            n_test=n if split == "test" else 1,
            seed=seed,
        )
        X = ds.X_train if split == "train" else ds.X_test
    else:
        path = _args.data_file(spec, DATASETS, _args.INPUT_TYPES)
        X = _args.read_inputs(path, "--data")
        if n is not None:
            X = X[:n]
    if X.ndim != 2:
        X = X.reshape(X.shape[0], -1) if X.ndim > 2 else X
    if not X.is_floating_point():
        X = X.float()
    return X


_NAMED_NUMBERS: dict[str, Any] = {"type": "object", "additionalProperties": NUMBER_OR_NULL}

#: JSON Schema (draft 2020-12) of ``nngeom sensitivity --json``
JSON_SCHEMAS: dict[str, dict[str, Any]] = {
    "sensitivity": _json.schema(
        "sensitivity",
        {
            "model": STRING,
            "architecture": STRING,
            "data": STRING,
            "n_examples": COUNT,
            "method": {"enum": list(METHODS)},
            "outputs": {"type": "array", "items": COUNT},
            "mean": NUMBER_OR_NULL,
            "quantiles": obj({"0.1": NUMBER_OR_NULL, "0.5": NUMBER_OR_NULL, "0.9": NUMBER_OR_NULL}),
            "max": NUMBER_OR_NULL,
            "per_output_mean": numbers(),
            "input_jacobian_mean": NUMBER_OR_NULL,
            "mean_squared_stderr": NUMBER_OR_NULL,  # --method hutchinson only
            # --bounds (default): upper bounds by name (linf, path, spectral, ...), or null when
            # the model has none (then "bounds_unavailable" says why)
            "bounds": {"oneOf": [_NAMED_NUMBERS, {"type": "null"}]},
            "bounds_unavailable": STRING,
        },
        optional=("mean_squared_stderr", "bounds", "bounds_unavailable"),
    )
}

DATA_HELP = (
    f"Inputs X: a dataset name ({', '.join(DATASETS)}) or a "
    f"{_args.types_text(_args.INPUT_TYPES)} file (.npy: the (N, d) array; .npz: array X; "
    ".pt/.pth: a tensor or a dict with X)."
)


def register(app: typer.Typer) -> None:
    """Add ``nngeom sensitivity`` to ``app``."""

    @app.command("sensitivity")
    def sensitivity(
        model: Path = model_argument(),
        data: str = typer.Option(..., "--data", help=DATA_HELP),
        n: int = typer.Option(256, "--n", help="number of examples"),
        split: str = typer.Option("test", "--split", help="train or test (dataset names only)"),
        output: int | None = typer.Option(None, "--output", help="one output index (default: all)"),
        method: str = typer.Option(
            "auto", "--method", help="auto | closed_form | autodiff | hutchinson"
        ),
        probes: int = typer.Option(16, "--probes", help="Hutchinson probes per example"),
        seed: int = typer.Option(0, "--seed", help="seed of the data subset and the probes"),
        bounds: bool = typer.Option(True, "--bounds/--no-bounds", help="also compute the bounds"),
        as_json: bool = typer.Option(False, "--json", help=_json.JSON_HELP),
        arch: Optional[str] = arch_option(),
        key: Optional[str] = key_option(),
    ) -> None:
        """Tangent sensitivity ||d/dx grad_theta f_k(x)||_F of MODEL on data: summary and bounds."""
        from ..measures import input_jacobian_norm
        from ..sensitivity import (
            tangent_sensitivity,
            tangent_sensitivity_bounds,
            tangent_sensitivity_hutchinson,
        )

        seed = _args.seed(seed)
        probes = _args.count(probes, "--probes", maximum=MAX_PROBES)
        if output is not None:
            output = _args.count(output, "--output", minimum=0)
        if method not in METHODS:
            raise InvalidInput(f"--method must be one of {', '.join(METHODS)}, got {method[:40]!r}")
        X = load_inputs(data, split=split, n=n, seed=seed)
        loaded = load(model, arch, key)
        net = loaded.module
        sel = None if output is None else [output]
        stderr = None
        if method == "hutchinson":
            est = tangent_sensitivity_hutchinson(net, X, probes=probes, output=sel, seed=seed)
            per = est.values
            stderr = est.mean_stderr()
        else:
            per = tangent_sensitivity(
                net, X, output=sel if sel is not None else "all", method=method
            )
        per = per.detach().double().cpu()
        ts = per.mean(1)
        ks = sel if sel is not None else list(range(per.shape[1]))
        result: dict = {
            "model": str(model),
            "architecture": loaded.architecture,
            "data": data,
            "n_examples": int(X.shape[0]),
            "method": method,
            "outputs": ks,
            "mean": float(ts.mean()),
            "quantiles": {
                str(q): float(v)
                for q, v in zip(
                    (0.1, 0.5, 0.9),
                    ts.quantile(torch.tensor([0.1, 0.5, 0.9], dtype=torch.float64)),
                    strict=True,
                )
            },
            "max": float(ts.max()),
            "per_output_mean": [float(v) for v in per.mean(0)],
            "input_jacobian_mean": float(input_jacobian_norm(net, X).mean()),
        }
        if stderr is not None:
            result["mean_squared_stderr"] = stderr
        if bounds:
            try:
                b = tangent_sensitivity_bounds(net, X[:64])
                result["bounds"] = b.as_dict()
            except UnsupportedModel as exc:
                result["bounds"] = None
                result["bounds_unavailable"] = str(exc)
        if as_json:
            _json.emit("sensitivity", result)
            return
        typer.echo(f"architecture: {loaded.architecture}")
        typer.echo(f"tangent sensitivity of {model} on {X.shape[0]} examples ({data}, {method})")
        typer.echo(f"  mean over examples and outputs: {result['mean']:.6g}")
        q = result["quantiles"]
        typer.echo(
            f"  10% / 50% / 90%: {q['0.1']:.6g} / {q['0.5']:.6g} / {q['0.9']:.6g}   max {result['max']:.6g}"
        )
        typer.echo(
            "  per output: "
            + ", ".join(f"{k}: {v:.4g}" for k, v in zip(ks, result["per_output_mean"], strict=True))
        )
        typer.echo(f"  input-Jacobian norm (mean): {result['input_jacobian_mean']:.6g}")
        if "bounds" in result:
            if isinstance(result["bounds"], dict):
                typer.echo(
                    "  upper bounds: "
                    + ", ".join(f"{k} {v:.4g}" for k, v in result["bounds"].items())
                )
            else:
                typer.echo(f"  bounds not available: {result['bounds_unavailable']}")
