"""The ``nngeom`` command line.

    nngeom reproduce [STUDY|all] --scale quick|paper|full --out DIR [--resume [--retry-failed]]
                     [--seed N] [--n-jobs N] [--executor local|ray] [--ray-address ADDR]
                     [--ray-timeout SECONDS]
    nngeom report DIR
    nngeom studies
    nngeom <analysis> MODEL ...      (one command per module in nngeom/commands/)
                                     MODEL: a .pt2 torch.export program, an nngeom.save_model
                                     file, or a state dict with --arch SIZES:ACT [--key K]
    nngeom --version

Errors are one line on stderr and a non-zero exit; ``--debug`` (or NNGEOM_DEBUG=1) shows the traceback.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import sys
from pathlib import Path
from typing import Optional

import typer

from . import commands
from . import studies as registry
from ._checks import check_positive_int, check_seed
from ._errors import NngeomError, StudyError
from ._version import __version__
from .executors import DEFAULT_CONNECT_TIMEOUT, make_executor
from .report import build_report
from .runs import reproduce as run_reproduce

EXIT_INTERRUPTED = 130  # the shell's exit code of a process stopped by Ctrl-C (128 + SIGINT)
MAX_JOBS = 4096  # the most worker processes --n-jobs may ask for
PATH_MAX = 4096  # bytes of a path, the terminating NUL included (Linux)
NAME_MAX = 255  # bytes of one file name (Linux)

app = typer.Typer(
    name="nngeom",
    help="The geometry of neural networks: knots and regions, permutation saddles, tangent "
    "sensitivity, trainable activations, chaotic time-series prediction.\n\n"
    "Analyses of a saved MODEL (knots, regions, hessian, sensitivity) never guess its "
    "architecture. Recommended for any model (F.relu, residual, conv nets...): a torch.export "
    "program captured in eval mode with a dynamic batch dimension, "
    "torch.export.save(torch.export.export(model.eval(), (x,), "
    "dynamic_shapes=({0: torch.export.Dim('batch')},)), 'model.pt2'). Also read: files of "
    "nngeom.save_model (an MLP with its architecture recorded), and a plain state dict or "
    "checkpoint with --arch SIZES:ACT (e.g. 784-100-10:leaky_relu(0.1)) [--key "
    "model_state_dict]. Files are read without running code from them. Every analysis prints "
    "the architecture it analysed.",
    add_completion=False,
    pretty_exceptions_enable=False,
    no_args_is_help=True,
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"nngeom {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Show the version."
    ),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks of errors."),
) -> None:
    """nngeom: the geometry of neural networks."""


@app.command()
def studies() -> None:
    """List the registered studies."""
    for name, study in registry.available().items():
        typer.echo(f"{name:12s} {study.title}")


@app.command()
def reproduce(
    study: Optional[str] = typer.Argument(
        None, help="A study name or 'all' (omit to list the studies)."
    ),
    scale: str = typer.Option(
        "quick",
        "--scale",
        help="quick (minutes on a laptop), paper (at most an hour a study on 2 cores) or full (the paper's sizes, for a cluster).",
    ),
    out: Optional[Path] = typer.Option(None, "--out", help="Run directory (created)."),
    resume: bool = typer.Option(
        False,
        "--resume",
        help="Complete the run in --out, skipping finished tasks (and failed ones, unless "
        "--retry-failed).",
    ),
    retry_failed: bool = typer.Option(
        False, "--retry-failed", help="With --resume: run the tasks that failed before again."
    ),
    seed: int = typer.Option(0, "--seed", help="Base seed of every study."),
    n_jobs: Optional[int] = typer.Option(
        None, "--n-jobs", help="Worker processes (local) or CPUs (local Ray); default: all cores."
    ),
    executor: str = typer.Option("local", "--executor", help="local (process pool) or ray."),
    ray_address: Optional[str] = typer.Option(
        None, "--ray-address", help="Address of an existing Ray cluster."
    ),
    ray_timeout: float = typer.Option(
        DEFAULT_CONNECT_TIMEOUT,
        "--ray-timeout",
        help="Seconds to wait for the Ray connection (any address).",
    ),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
) -> None:
    """Reproduce a paper's results (tables, figures, report.html) at a chosen scale."""
    registered = registry.available()
    if study is None:
        typer.echo("studies: " + (", ".join(registered) or "none yet") + " (or 'all')")
        return
    if out is None:
        raise StudyError("--out DIR is required: the run directory to write")
    check_seed(seed, "--seed")
    _check_dir_path(out, "--out")
    if ray_address and executor != "ray":
        raise StudyError("--ray-address needs --executor ray")
    chosen = list(registered.values()) if study == "all" else [registry.get(study)]
    if not chosen:
        raise StudyError("no study is registered yet")
    if retry_failed and not resume:
        raise StudyError("--retry-failed completes an existing run: pass it with --resume")
    if n_jobs is not None:
        check_positive_int("--n-jobs", n_jobs, maximum=MAX_JOBS)
    ex = make_executor(executor, n_jobs=n_jobs, ray_address=ray_address, ray_timeout=ray_timeout)
    summary = run_reproduce(
        chosen,
        out,
        scale=scale,
        seed=seed,
        resume=resume,
        retry_failed=retry_failed,
        executor=ex,
        progress=not quiet,
    )
    err = typer.echo
    if summary.malformed:
        err(
            f"{len(summary.malformed)} unreadable rows of results.sqlite were dropped and their "
            "tasks run again: " + "; ".join(f"{k}: {w}" for k, w in summary.malformed.items()),
            err=True,
        )
    if summary.interrupted:
        err(
            f"interrupted: {summary.skipped + summary.finished} of {summary.total} tasks are saved in "
            f"{summary.path}; rerun with --resume to finish",
            err=True,
        )
        raise typer.Exit(EXIT_INTERRUPTED)
    before = (
        f", {len(summary.failed_before)} failed before and skipped" if summary.failed_before else ""
    )
    err(
        f"{summary.finished} tasks run, {summary.skipped} already done, {len(summary.failed)} failed"
        f"{before} in {summary.wall_s:.1f} s"
    )
    if summary.report is not None:
        err(f"report: {summary.report.resolve()}")
    for name, config, error in summary.failed:
        err(f"failed: {name} {config}: {error}", err=True)
    for name, config, error in summary.failed_before:
        err(f"failed before (not rerun): {name} {config}: {error}", err=True)
    if summary.failed_before:
        err("run the failed tasks again with --resume --retry-failed", err=True)
    if summary.failed or summary.failed_before:
        raise typer.Exit(1)


@app.command()
def report(
    run_dir: Path = typer.Argument(..., help="A run directory written by `nngeom reproduce`."),
) -> None:
    """(Re)build RUN_DIR/report.html from its results."""
    _check_dir_path(run_dir, "the run directory")
    typer.echo(f"report: {build_report(run_dir).resolve()}")


def _check_dir_path(path: Path, what: str) -> None:
    """A folder path that can exist: not too long, and no ancestor is a file."""
    text = os.fsencode(str(path))
    if len(text) >= PATH_MAX or any(len(part) > NAME_MAX for part in text.split(b"/")):
        raise StudyError(
            f"{what} path is too long ({len(text)} bytes; at most {PATH_MAX - 1}, {NAME_MAX} per name)"
        )
    if path.exists() and not path.is_dir():
        raise StudyError(f"{what} {path} is a file, not a folder")
    for parent in path.absolute().parents:
        if parent.exists():
            if not parent.is_dir():
                raise StudyError(f"{what} {path} cannot be created: {parent} is a file")
            break


def _register_commands() -> None:
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        register = getattr(module, "register", None)
        if callable(register):
            register(app)


_register_commands()


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the CLI; errors become one line on stderr and a non-zero exit code."""
    args = list(sys.argv[1:] if argv is None else argv) or ["--help"]
    debug = "--debug" in args or os.environ.get("NNGEOM_DEBUG") == "1"
    command = typer.main.get_command(app)
    try:
        rv = command.main(args=args, prog_name="nngeom", standalone_mode=False)
        return int(rv) if isinstance(rv, int) else 0
    except NngeomError as exc:
        if debug:
            raise
        typer.echo(f"error: {_one_line(str(exc))}", err=True)
        return 1
    except KeyboardInterrupt:
        typer.echo("error: interrupted", err=True)
        return EXIT_INTERRUPTED
    except OSError as exc:
        if debug:
            raise
        where = f": {exc.filename}" if getattr(exc, "filename", None) else ""
        typer.echo(f"error: {_one_line(exc.strerror or str(exc))}{where}", err=True)
        return 1
    except Exception as exc:  # noqa: BLE001 - the CLI never shows a traceback unless asked
        # click's (or typer's vendored click's) control-flow exceptions, matched by shape so that
        # any typer version works
        kind = type(exc).__name__
        if kind == "Exit" and hasattr(exc, "exit_code"):
            return int(exc.exit_code)
        if kind == "Abort":
            typer.echo("error: aborted", err=True)
            return EXIT_INTERRUPTED
        if hasattr(exc, "format_message") and hasattr(exc, "exit_code"):
            typer.echo(f"error: {_one_line(exc.format_message())} (see nngeom --help)", err=True)
            return 2
        if debug:
            raise
        typer.echo(
            f"error: unexpected {kind}: {_one_line(str(exc))} (rerun with --debug for the traceback)",
            err=True,
        )
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
