"""The MODEL argument and the ``--arch`` / ``--key`` options shared by the analysis commands."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from ..modelfile import ARCH_HELP, MODEL_HELP, LoadedModel, open_model

__all__ = ["model_argument", "arch_option", "key_option", "load", "LoadedModel"]


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


def load(model: Path, arch: Optional[str], key: Optional[str]) -> LoadedModel:
    """Load MODEL without running code from it; the architecture comes from the file or --arch."""
    return open_model(model, arch=arch, key=key)
