"""Array checks shared by the chaos modules (each raises InvalidInput saying what to do)."""

from __future__ import annotations

import numpy as np
import torch

from .._checks import check_real_tensor
from .._errors import InvalidInput

# The most array entries one call builds (an embedding's rows x lags, a forecast's starts x
# steps, a network's weights): about 800 MB of float64. Checked before allocating.
MAX_ENTRIES = 100_000_000


def real_array(obj: object, name: str) -> np.ndarray:
    """``obj`` as a float64 array; complex, meta, non-numeric and object data are refused."""
    if isinstance(obj, torch.Tensor):
        check_real_tensor(name, obj)
        obj = obj.detach().cpu().numpy()
    try:
        raw = np.asarray(obj)
    except (TypeError, ValueError, OverflowError, RuntimeError) as exc:
        raise InvalidInput(f"{name} must be an array of real numbers ({exc})") from None
    if raw.dtype.kind == "c":
        raise InvalidInput(f"{name} is complex ({raw.dtype}): pass real numbers")
    if raw.dtype.kind not in "biuf":
        try:
            raw = raw.astype(np.float64)
        except OverflowError:  # Python ints beyond float64, e.g. 10**400
            raise InvalidInput(
                f"{name} holds a number too large for a float64 (|x| > 1.8e308)"
            ) from None
        except (TypeError, ValueError, RuntimeError):
            raise InvalidInput(
                f"{name} must be an array of real numbers, got {raw.dtype} data"
            ) from None
    return raw.astype(np.float64, copy=False)


def check_entries(count: int, what: str) -> None:
    """Refuse building more than :data:`MAX_ENTRIES` values."""
    if count > MAX_ENTRIES:
        raise InvalidInput(
            f"{what} would hold {count:,} values, more than nngeom's limit of {MAX_ENTRIES:,}; "
            "use fewer rows or steps"
        )
