"""``nngeom analyze MODEL --data FILE --out DIR``: one geometric report of a saved model.

MODEL: a .pt2 torch.export program, an nngeom.save_model file, or a state dict with
--arch SIZES:ACT [--key K] (see ``nngeom.modelfile``); the architecture is printed.
FILE: .npz with ``X`` (the model's input shape, or flat with the same size per example) and
optionally ``y`` (class labels or targets); a .npy holds ``X`` only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
import typer

from .._errors import DataError
from . import _args
from ._model import arch_option, key_option, load, model_argument


def _read_data(path: Path) -> tuple:
    """``X`` and, when the file has it, ``y`` (checked: numeric, finite)."""
    path = _args.input_file(path, "--data", what="data file")
    has_y = False
    if path.suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as z:
                has_y = "y" in z.files
        except (ValueError, OSError, EOFError) as exc:
            raise DataError(f"--data: {path} is not a plain numpy file ({exc})") from None
    arrays = _args.read_arrays(path, "--data", ("X", "y") if has_y else ("X",))
    X = arrays["X"]
    if X.ndim < 2 or X.shape[0] == 0:
        raise DataError(
            f"--data: X in {path} must have shape (N, ...) with N >= 1 examples, got "
            f"{tuple(X.shape)}"
        )
    if not X.is_floating_point():
        X = X.double()
    return X, arrays.get("y")


def register(app: typer.Typer) -> None:
    """Add ``nngeom analyze``."""

    @app.command("analyze")
    def analyze_cmd(
        model: Path = model_argument(),
        data: Path = typer.Option(
            ...,
            "--data",
            help="Data: X (the model's input shape, or flat) and optional labels y; "
            + _args.types_text(_args.INPUT_TYPES),
        ),
        out: Path = typer.Option(..., "--out", help="Run directory for report.html."),
        quick: bool = typer.Option(
            False, "--quick", help="Small sizes, for a LeNet with 1000 examples on a laptop."
        ),
        resume: bool = typer.Option(False, "--resume", help="Complete the run in --out."),
        retry_failed: bool = typer.Option(
            False, "--retry-failed", help="With --resume: run failed parts again."
        ),
        part: Optional[list[str]] = typer.Option(
            None, "--part", help="Run only this part (repeatable); default all."
        ),
        seed: int = typer.Option(0, "--seed", help="Seed of every random choice."),
        arch: Optional[str] = arch_option(),
        key: Optional[str] = key_option(),
    ) -> None:
        """One report of a model's geometry: regions, knots, patterns, Hessian, sensitivity."""
        from ..analyze import PARTS, analyze, prepare_data

        seed = _args.seed(seed)
        if part:
            bad = [p for p in part if p not in PARTS]
            if bad:
                raise DataError(f"--part: unknown {bad[0]!r}; choose from {', '.join(PARTS)}")
        X, y = _read_data(data)
        loaded = load(model, arch, key)
        prepare_data(loaded.module, X, y)  # bad data: one error line before anything is written
        typer.echo(f"architecture  {loaded.architecture}", err=True)
        result = analyze(
            loaded.module,
            X,
            y,
            out,
            quick=quick,
            seed=seed,
            resume=resume,
            retry_failed=retry_failed,
            parts=part or None,
            architecture=loaded.architecture,
        )
        for note in result.notes:
            typer.echo(f"note          {note}", err=True)
        for p, why in result.skipped.items():
            typer.echo(f"skipped       {p}: {why}", err=True)
        if result.resumed:
            typer.echo(f"resumed       {', '.join(result.resumed)} (stored before)", err=True)
        typer.echo(f"report        {result.report}")
        if result.interrupted:
            typer.echo(
                f"interrupted: finished parts are saved; rerun with --resume --out {out}", err=True
            )
            raise typer.Exit(130)
        if result.failed:
            typer.echo(
                "failed parts: " + "; ".join(f"{p} ({e[:200]})" for p, e in result.failed.items()),
                err=True,
            )
            raise typer.Exit(1)
