"""Cheap input checks shared by the public functions."""

from __future__ import annotations

import torch
from torch import Tensor


def all_finite(t: Tensor) -> bool:
    """True when every entry of ``t`` is finite (no NaN, no +-inf).

    One reduction pass: NaN and inf propagate through a sum, so a finite sum proves every entry
    finite. Only a non-finite sum (a NaN/inf entry, or finite entries whose sum overflows) falls
    back to the exact element-wise test. ``torch.isfinite(t).all()`` costs several passes and
    temporaries, which dominated fast paths such as the Hutchinson estimate.
    """
    if t.numel() == 0 or not (t.is_floating_point() or t.is_complex()):
        return True
    if bool(torch.isfinite(t.sum())):
        return True
    return bool(torch.isfinite(t).all())


# --------------------------------------------------------------------------------------------
# argument checks shared by the public functions (each raises InvalidInput saying what to do)
# --------------------------------------------------------------------------------------------
# The largest seed numpy and torch both accept (torch: uint64; numpy.random: < 2**128, but
# torch.Generator.manual_seed takes at most 2**64 - 1).
MAX_SEED = 2**64 - 1


def check_int(
    name: str, value: object, *, minimum: int | None = None, maximum: int | None = None
) -> int:
    """``value`` as a Python int within ``[minimum, maximum]``; bools and floats are refused."""
    import numbers

    from ._errors import InvalidInput

    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise InvalidInput(f"{name} must be an int, got {value!r}")
    v = int(value)
    if minimum is not None and v < minimum:
        raise InvalidInput(f"{name} must be >= {minimum}, got {v}")
    if maximum is not None and v > maximum:
        raise InvalidInput(f"{name} must be <= {maximum:,} (nngeom's limit), got {v:,}")
    return v


def check_positive_int(name: str, value: object, *, maximum: int | None = None) -> int:
    """A positive int (``>= 1``), at most ``maximum`` when given."""
    return check_int(name, value, minimum=1, maximum=maximum)


def check_seed(seed: object, name: str = "seed") -> int:
    """A seed numpy and torch both accept: an int in ``[0, 2**64 - 1]``."""
    return check_int(name, seed, minimum=0, maximum=MAX_SEED)


def check_number(
    name: str,
    value: object,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    strict_min: bool = False,
    finite: bool = True,
) -> float:
    """``value`` as a float: a real number (not bool), finite unless ``finite=False``, within
    bounds (``strict_min``: ``> minimum``)."""
    import math
    import numbers

    from ._errors import InvalidInput

    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InvalidInput(f"{name} must be a number, got {value!r}")
    try:
        v = float(value)
    except (OverflowError, ValueError, TypeError):  # an int beyond float64, e.g. 10**400
        raise InvalidInput(f"{name} is too large for a float64, got {value!r:.40}") from None
    if math.isnan(v) or (finite and math.isinf(v)):
        raise InvalidInput(f"{name} must be a finite number, got {value!r}")
    if minimum is not None and (v <= minimum if strict_min else v < minimum):
        raise InvalidInput(f"{name} must be {'>' if strict_min else '>='} {minimum}, got {v}")
    if maximum is not None and v > maximum:
        raise InvalidInput(f"{name} must be <= {maximum}, got {v}")
    return v


def check_device(device: object) -> torch.device:
    """A usable torch device: refuses unavailable CUDA/MPS and the meta device."""
    from ._errors import InvalidInput

    try:
        dev = torch.device(device)  # type: ignore[arg-type]
    except (TypeError, RuntimeError, ValueError) as exc:
        raise InvalidInput(f"device {device!r} is not a torch device ({exc})") from None
    if dev.type == "meta":
        raise InvalidInput("the meta device holds no values: use 'cpu' or an accelerator")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InvalidInput(
            f"device {device!r}: CUDA is not available in this torch build or machine; use 'cpu'"
        )
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise InvalidInput(f"device {device!r}: MPS is not available here; use 'cpu'")
    return dev


def check_real_tensor(name: str, t: Tensor) -> Tensor:
    """Refuse complex and meta tensors (their real part would be taken silently elsewhere)."""
    from ._errors import InvalidInput

    if t.is_complex():
        raise InvalidInput(f"{name} is complex ({t.dtype}): pass a real tensor")
    if t.device.type == "meta":
        raise InvalidInput(f"{name} is on the meta device (no values): load real data")
    return t


def check_model_tensors(model: torch.nn.Module) -> None:
    """Refuse models with complex or meta parameters/buffers (with their name)."""
    from ._errors import InvalidModel

    tensors = [*model.parameters(), *model.buffers()]
    if not any(t.is_complex() or t.device.type == "meta" for t in tensors):
        return  # the common case, without building every qualified name
    for name, p in list(model.named_parameters()) + list(model.named_buffers()):
        if p.is_complex():
            raise InvalidModel(
                f"the model's '{name}' is complex ({p.dtype}): nngeom needs real weights"
            )
        if p.device.type == "meta":
            raise InvalidModel(
                f"the model's '{name}' is on the meta device (no values): load real weights first"
            )


def check_same_dtype(model: torch.nn.Module, X: Tensor, name: str = "X") -> None:
    """Refuse a float dtype mismatch between the model and ``X`` (naming both)."""
    from ._errors import InvalidInput

    for p in model.parameters():
        if p.is_floating_point() and X.is_floating_point() and p.dtype != X.dtype:
            raise InvalidInput(
                f"the model is {p.dtype} but {name} is {X.dtype}: call model.to({X.dtype}) or "
                f"pass {name}.to({p.dtype})"
            )
        return
