"""File path arguments: one check of a path given by a user (type, length, NUL bytes), of a file
to be written (its folder exists and is writable), and one short form of a path for messages.

Used by the model files (:mod:`nngeom.modelfile`), the CSV series (:mod:`nngeom.chaos.series`)
and the command-line options (:mod:`nngeom.commands._args`). Every refusal is an
:class:`~nngeom.InvalidInput` naming the argument (``name``: ``"path"``, ``"--out"``...).
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from ._errors import DataError, InvalidInput

# The longest file name (one path component) most file systems take, in bytes
MAX_NAME_BYTES = 255
# The longest whole path when the system does not say (Linux's PATH_MAX)
_DEFAULT_PATH_MAX = 4096
# Paths in messages: longer ones show their first and last characters only
_SHORT_CHARS = 200
_SHORT_HEAD = 120
_SHORT_TAIL = 60


def path_max() -> int:
    """The longest path the system takes, in bytes."""
    try:
        return int(os.pathconf("/", "PC_PATH_MAX"))
    except (OSError, ValueError):  # pragma: no cover - platforms without pathconf
        return _DEFAULT_PATH_MAX


def short(path: Path | str) -> str:
    """``path`` for a message: itself, or its head and tail when it is very long.

    >>> short("a" * 300)[-20:]
    'a... (300 characters)'
    """
    text = str(path)
    if len(text) <= _SHORT_CHARS:
        return text
    return f"{text[:_SHORT_HEAD]}...{text[-_SHORT_TAIL:]} ({len(text)} characters)"


def too_long(path: Path, name: str) -> InvalidInput:
    """The error for a path longer than the system takes (in all, or in one name)."""
    return InvalidInput(
        f"{name}: the path is too long ({len(str(path))} characters; the system allows "
        f"{path_max()} in all and {MAX_NAME_BYTES} per name): {short(path)}"
    )


def check_length(path: Path, name: str) -> None:
    """Refuse a path longer than the system takes (see :func:`too_long`)."""
    if len(os.fsencode(path)) >= path_max() or any(
        len(os.fsencode(part)) > MAX_NAME_BYTES for part in path.parts
    ):
        raise too_long(path, name)


def path_arg(path: object, name: str = "path") -> Path:
    """``path`` (a str, bytes or os.PathLike) as a Path; other types, '' and NUL bytes refused.

    >>> path_arg(b"model.pt").name
    'model.pt'
    """
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    if not isinstance(path, (str, os.PathLike)):
        raise InvalidInput(f"{name} must be a file path (str or os.PathLike), got {path!r:.60}")
    try:
        text = os.fspath(path)
    except TypeError as exc:  # an os.PathLike whose __fspath__ misbehaves
        raise InvalidInput(f"{name} is not a usable file path ({exc})") from None
    if isinstance(text, bytes):
        text = os.fsdecode(text)
    if not isinstance(text, str) or text == "":
        raise InvalidInput(f"{name} must be a non-empty file path, got {path!r:.60}")
    if "\0" in text:
        raise InvalidInput(f"{name} contains a NUL byte, which no file name can: {text!r:.80}")
    return Path(text)


def output_path(path: object, name: str = "path", *, what: str = "file") -> Path:
    """A path a file can be written to: it names a file (not a directory) whose folder exists
    and is writable.

    >>> import tempfile
    >>> output_path(tempfile.gettempdir() + "/out.csv").name
    'out.csv'
    """
    p = path_arg(path, name)
    src = short(p)
    check_length(p, name)
    if p.name in ("", ".", ".."):
        raise InvalidInput(f"{name}: {src} names a folder; give a {what} name")
    parent = p.parent
    try:
        if p.is_dir():
            raise InvalidInput(f"{name}: {src} is a directory; give a {what} name inside it")
        if not parent.is_dir():
            raise InvalidInput(
                f"{name}: the folder {short(parent)} does not exist; create it first "
                f"(mkdir -p {short(parent)}) or write the {what} elsewhere"
            )
    except OSError as exc:
        if exc.errno == errno.ENAMETOOLONG:
            raise too_long(p, name) from None
        raise InvalidInput(f"{name}: cannot use {src}: {exc.strerror or exc}") from None
    if not os.access(parent, os.W_OK):
        raise InvalidInput(f"{name}: the folder {short(parent)} is not writable")
    return p


def write_bytes(p: Path, data: bytes, *, what: str = "file") -> None:
    """Write ``data`` to ``p`` (checked by :func:`output_path`); an OS failure (permission,
    disk full) is a :class:`~nngeom.DataError` naming the file."""
    try:
        with open(p, "wb") as fh:
            fh.write(data)
    except OSError as exc:
        raise DataError(f"cannot write the {what} {short(p)}: {exc.strerror or exc}") from None
