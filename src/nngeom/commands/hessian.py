"""``nngeom hessian MODEL --data ...``: the Hessian spectrum of a saved model's loss on data.

``--json`` prints one line of JSON (see ``nngeom.commands._json``); its keys are described by
``JSON_SCHEMAS["hessian"]``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch
import typer

from .._checks import check_Xy
from .._errors import InvalidInput
from . import _args, _json
from ._json import BOOL, COUNT, NUMBER, NUMBER_OR_NULL, STRING, numbers
from ._model import arch_option, key_option, load, model_argument

DATASETS = ("auto", "fashion-mnist", "digits", "teacher-grid")
LOSSES = ("mse", "sse", "ce")
WHICH = ("largest", "smallest", "both")
MAX_EXAMPLES = 10_000_000  # --n: far more than a dense Hessian is ever computed on
DEFAULT_EXAMPLES = 1000  # --n of a named dataset: training examples drawn at random


def load_xy(
    spec: str, *, n: int | None = None, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor, str]:
    """``(X, y, default loss)`` from a dataset name or a file.

    Names: ``auto`` / ``fashion-mnist`` / ``digits`` (training images and integer labels, loss
    ``ce``) and ``teacher-grid`` (the permutation-saddles toy task, loss ``sse``). Files: ``.npz``
    with arrays ``X`` and ``y`` (read without pickle), or ``.pt``/``.pth`` holding a dict with
    tensors ``X`` and ``y`` (read with ``weights_only=True``). Integer ``y`` means labels (``ce``),
    float ``y`` targets (``mse``). ``n`` keeps the first ``n`` rows (a seeded subset for datasets).
    """
    if n is not None:
        n = _args.count(n, "--n", maximum=MAX_EXAMPLES)
    if spec in DATASETS:
        if spec == "teacher-grid":
            from ..data import teacher_student_grid

            X, y, _ = teacher_student_grid("softplus")
            default = "sse"
        else:
            from ..data import image_classification

            ds = image_classification(
                spec, n_train=n if n is not None else DEFAULT_EXAMPLES, n_test=1, seed=seed
            )
            X, y, default = ds.X_train, ds.y_train, "ce"
    else:
        path = _args.data_file(spec, DATASETS, _args.XY_TYPES, holding=" holding X and y")
        arrays = _args.read_arrays(path, "--data", ("X", "y"), _args.XY_TYPES)
        X, y = arrays["X"], arrays["y"]
        if not X.is_floating_point():
            X = X.double()
        default = "mse" if y.is_floating_point() else "ce"
        if y.is_floating_point() and y.ndim == 1:
            y = y[:, None]
    if X.ndim != 2:
        raise InvalidInput(f"X must be a 2-D array (N, features), got shape {tuple(X.shape)}")
    X, y = check_Xy(X, y)
    if n is not None and spec not in ("auto", "fashion-mnist", "digits"):
        X, y = X[:n], y[:n]
    return X, y, default


#: JSON Schema (draft 2020-12) of ``nngeom hessian --json``
JSON_SCHEMAS: dict[str, dict[str, Any]] = {
    "hessian": _json.schema(
        "hessian",
        {
            "model": STRING,
            "architecture": STRING,
            "data": STRING,
            "loss": {"enum": list(LOSSES)},
            "n_examples": COUNT,
            "n_parameters": COUNT,
            "loss_value": NUMBER_OR_NULL,
            "grad_norm": NUMBER_OR_NULL,
            "method": STRING,  # "full" or "lanczos (WHICH, k=K)"
            "k": COUNT,  # 0: the full spectrum
            "which": {"enum": [*WHICH, None]},  # null: the full spectrum
            "projected_rescaling": BOOL,
            "eigenvalues": numbers(),
            # the full spectrum only (k = 0):
            "n_negative": COUNT,
            "n_zero": COUNT,
            "n_positive": COUNT,
            "zero_tol": NUMBER,
        },
        optional=("n_negative", "n_zero", "n_positive", "zero_tol"),
    )
}

DATA_HELP = (
    f"Inputs X and targets y: a {_args.types_text(_args.XY_TYPES)} file (.npz: arrays X and y; "
    ".pt/.pth: a dict with tensors X and y; integer y: labels), or a dataset name: "
    f"{', '.join(DATASETS)}."
)


def register(app: typer.Typer) -> None:
    @app.command("hessian")
    def hessian_cmd(
        model: Path = model_argument(),
        data: str = typer.Option(..., "--data", help=DATA_HELP),
        loss: str = typer.Option(
            "", "--loss", help="mse, sse or ce (default: ce for labels, mse for targets)"
        ),
        k: int = typer.Option(
            0, "--k", help="extreme eigenvalues by Lanczos (0: the full spectrum)"
        ),
        which: str = typer.Option("both", "--which", help="largest, smallest or both (with --k)"),
        n: int = typer.Option(
            None, "--n", help="use the first N examples (a seeded subset for datasets)"
        ),
        arch: Optional[str] = arch_option(),
        key: Optional[str] = key_option(),
        project_rescaling: bool = typer.Option(
            False, "--project-rescaling", help="project out ReLU rescalings"
        ),
        float64: bool = typer.Option(
            True, "--float64/--native", help="compute in float64 (default)"
        ),
        zero_tol: float = typer.Option(
            1e-7, "--zero-tol", help="relative threshold for a zero eigenvalue"
        ),
        seed: int = typer.Option(0, "--seed"),
        as_json: bool = typer.Option(False, "--json", help=_json.JSON_HELP),
    ) -> None:
        """Hessian eigenvalues of the model's loss on data: full spectrum, or k extreme ones by Lanczos."""
        from ..hessian import HessianOperator, count_eigenvalues, hessian_eigenvalues

        k = _args.count(k, "--k", minimum=0)
        seed = _args.seed(seed)
        zero_tol = _args.number(zero_tol, "--zero-tol", minimum=0.0, maximum=1.0)
        if loss and loss not in LOSSES:
            raise InvalidInput(f"--loss must be one of {', '.join(LOSSES)}, got {loss[:40]!r}")
        if which not in WHICH:
            raise InvalidInput(f"--which must be one of {', '.join(WHICH)}, got {which[:40]!r}")
        X, y, default = load_xy(data, n=n, seed=seed)
        loaded = load(model, arch, key)
        net = loaded.module
        loss_name = loss or default
        if float64:
            net = net.double()
            X = X.double()
            y = y.double() if y.is_floating_point() else y
        else:
            dtype = next(net.parameters()).dtype
            X = X.to(dtype)
            y = y.to(dtype) if y.is_floating_point() else y
        if loss_name == "ce":
            y = y.long().reshape(-1)
        op = HessianOperator(net, X, y, loss=loss_name)
        ev = hessian_eigenvalues(
            net,
            X,
            y,
            loss=loss_name,
            k=k or None,
            which=which,
            project="rescaling" if project_rescaling else None,
            seed=seed,
        ).numpy()
        out = {
            "model": str(model),
            "architecture": loaded.architecture,
            "data": data,
            "loss": loss_name,
            "n_examples": int(X.shape[0]),
            "n_parameters": op.n,
            "loss_value": op.loss(),
            "grad_norm": float(torch.linalg.vector_norm(op.gradient())),
            "method": "full" if not k else f"lanczos ({which}, k={k})",
            "k": k,
            "which": which if k else None,
            "projected_rescaling": bool(project_rescaling),
            "eigenvalues": ev.tolist(),
        }
        if not k:
            neg, zero, pos = count_eigenvalues(ev, zero_tol)
            out.update({"n_negative": neg, "n_zero": zero, "n_positive": pos, "zero_tol": zero_tol})
        if as_json:
            _json.emit("hessian", out)
            return
        typer.echo(f"architecture: {loaded.architecture}")
        typer.echo(
            f"{out['n_parameters']} parameters, {out['n_examples']} examples, loss {loss_name} = "
            f"{out['loss_value']:.6g}, gradient norm {out['grad_norm']:.3e}"
        )
        typer.echo(
            f"method: {out['method']}"
            + (" (ReLU rescaling directions projected out)" if project_rescaling else "")
        )
        if not k:
            typer.echo(
                f"negative: {out['n_negative']}  zero (|l| <= {zero_tol:g} max|l|): {out['n_zero']}  "
                f"positive: {out['n_positive']}"
            )
            shown = ev if ev.size <= 20 else np.concatenate([ev[:10], ev[-10:]])
            typer.echo(
                ("eigenvalues: " if ev.size <= 20 else "10 smallest and 10 largest: ")
                + " ".join(f"{v:.4g}" for v in shown)
            )
        else:
            typer.echo("eigenvalues: " + " ".join(f"{v:.6g}" for v in ev))
