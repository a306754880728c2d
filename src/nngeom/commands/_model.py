"""The MODEL argument and the ``--arch`` / ``--key`` options shared by the analysis commands."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any, Optional

import typer

from .._errors import ModelFileError
from ..modelfile import ARCH_HELP, LoadedModel, open_model
from . import _args

__all__ = ["model_argument", "arch_option", "key_option", "load", "LoadedModel", "MODEL_HELP"]

MODEL_HELP = (
    f"A model file of type {_args.types_text(_args.MODEL_TYPES)}: a torch.export program "
    "(.pt2, recommended for any model: torch.export.save(torch.export.export(model.eval(), "
    "(x,), dynamic_shapes=({0: torch.export.Dim('batch')},)), 'model.pt2')), a file written by "
    "nngeom.save_model (.safetensors or .pt), or a torch.save'd state dict / checkpoint "
    "(.pt, .pth, .ckpt, .bin) with --arch [--key]."
)


def model_argument() -> Any:
    return typer.Argument(..., help=MODEL_HELP)


def arch_option() -> Any:
    return typer.Option(None, "--arch", help=ARCH_HELP)


def key_option() -> Any:
    return typer.Option(
        None,
        "--key",
        help="Entry of a checkpoint dictionary that holds the state dict (e.g. model_state_dict; "
        "a.b for nested entries); with --arch.",
    )


def _is_file(path: Path) -> bool:
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except (OSError, ValueError):
        return False  # missing, too long, ...: the loader says which


def load(model: Path, arch: Optional[str], key: Optional[str]) -> LoadedModel:
    """Load MODEL without running code from it; the architecture comes from the file or --arch.

    A file whose type is not one of :data:`_args.MODEL_TYPES` is refused (a missing path or a
    directory is left to the loader, which says so)."""
    if _is_file(Path(model)):
        _args.file_type(model, "MODEL", _args.MODEL_TYPES, what="model file", error=ModelFileError)
    return open_model(model, arch=arch, key=key)
