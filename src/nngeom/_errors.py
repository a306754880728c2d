"""The exceptions nngeom raises. Every message says what was wrong and what to do."""

from __future__ import annotations

__all__ = [
    "NngeomError",
    "InvalidInput",
    "UnsupportedModel",
    "InvalidModel",
    "DataError",
    "RunError",
    "StudyError",
    "ModelFileError",
]


class NngeomError(Exception):
    """Base class of every error nngeom raises on purpose."""


class InvalidInput(NngeomError, ValueError):
    """An argument has the wrong shape, type or value."""


class UnsupportedModel(NngeomError, TypeError):
    """The model has a layer or structure the analysis cannot handle."""


class InvalidModel(NngeomError, ValueError):
    """The model is of a supported kind but its parameters are unusable (NaN, inf, empty)."""


class DataError(NngeomError, OSError):
    """A data file or data set is missing, truncated or malformed."""


class RunError(NngeomError, RuntimeError):
    """A run directory or its results database cannot be used."""


class StudyError(NngeomError, ValueError):
    """An unknown study, scale, or a study configuration that cannot run."""


class ModelFileError(NngeomError, ValueError):
    """A saved model file cannot be read safely."""
