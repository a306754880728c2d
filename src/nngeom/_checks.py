"""Cheap input checks shared by the public functions."""

from __future__ import annotations

import numpy as np
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
# The smallest positive scale nngeom divides by or takes a relative tolerance against (far above
# float64's smallest normal, 2.2e-308, so that a ratio of two such numbers stays finite; an
# all-zero operator or slope list has scale 0).
TINY = 1e-300
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


# --------------------------------------------------------------------------------------------
# flags, dtypes, models and data (X, y)
# --------------------------------------------------------------------------------------------
# The floating-point dtypes nngeom builds and analyses models in.
FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
# What check_X does with an integer X: refuse it, convert it to float64, or keep it.
_INTEGER_POLICIES = ("refuse", "float64", "keep")


def check_bool(name: str, value: object) -> bool:
    """``value`` as a Python bool: ``True`` or ``False`` (numpy's bools too); ints, strings and
    ``None`` are refused."""
    import numpy as np

    from ._errors import InvalidInput

    if not isinstance(value, (bool, np.bool_)):
        raise InvalidInput(f"{name} must be True or False, got {value!r}")
    return bool(value)


def check_float_dtype(dtype: object, name: str = "dtype") -> torch.dtype:
    """A real floating-point torch dtype (float16, bfloat16, float32 or float64)."""
    from ._errors import InvalidInput

    if not isinstance(dtype, torch.dtype) or dtype not in FLOAT_DTYPES:
        raise InvalidInput(
            f"{name} must be a real floating-point torch dtype (torch.float32, torch.float64, "
            f"torch.float16, torch.bfloat16), got {dtype!r}"
        )
    return dtype


def check_module(model: object) -> torch.nn.Module:
    """A torch ``nn.Module`` without complex or meta parameters/buffers."""
    from ._errors import UnsupportedModel

    if not isinstance(model, torch.nn.Module):
        raise UnsupportedModel(f"expected a torch nn.Module, got {type(model).__name__}")
    check_model_tensors(model)
    return model


def check_finite_parameters(model: torch.nn.Module) -> None:
    """Refuse a model with a NaN or inf parameter (naming the parameter)."""
    from ._errors import InvalidModel

    for name, p in model.named_parameters():
        if not all_finite(p):
            raise InvalidModel(
                f"parameter {name!r} has NaN or inf entries; re-initialise or retrain the model"
            )


def _shape_text(example_shape: tuple[int, ...]) -> str:
    return "(N, " + ", ".join(str(s) for s in example_shape) + ")"


def check_X(
    X: object,
    name: str = "X",
    *,
    example_shape: tuple[int, ...] | None = None,
    integers: str = "refuse",
) -> Tensor:
    """A batch of examples: a real tensor of shape ``(N, ...)`` with ``N >= 1`` and finite entries.

    Args:
        X: the batch (a torch tensor; bool tensors are refused).
        name: the argument's name in messages.
        example_shape: the shape one example must have (``X`` is then ``(N, *example_shape)``).
        integers: what an integer ``X`` gets: ``"refuse"`` (a float is required), ``"float64"``
            (converted) or ``"keep"``.

    Returns:
        ``X`` (converted to float64 when it held integers and ``integers="float64"``).
    """
    from ._errors import InvalidInput

    if integers not in _INTEGER_POLICIES:
        raise ValueError(f"integers must be one of {_INTEGER_POLICIES}, got {integers!r}")
    if not isinstance(X, Tensor):
        raise InvalidInput(
            f"{name} must be a torch tensor, got {type(X).__name__} (convert with torch.as_tensor)"
        )
    check_real_tensor(name, X)
    if X.dtype == torch.bool:
        raise InvalidInput(f"{name} must hold numbers, not bool: convert it with {name}.float()")
    if X.ndim < 2:
        want = _shape_text(example_shape) if example_shape else "(N, ...)"
        raise InvalidInput(
            f"{name} must have shape {want} with a batch dimension (one row per example), got "
            f"{tuple(X.shape)}; use {name}.unsqueeze(0) for one example or "
            f"{name}.reshape(-1, 1) for one feature"
        )
    if X.shape[0] == 0:
        raise InvalidInput(f"{name} is empty (N = 0): pass at least one example")
    if example_shape is not None and tuple(X.shape[1:]) != tuple(example_shape):
        raise InvalidInput(
            f"{name} must have shape {_shape_text(example_shape)} for this model, got "
            f"{tuple(X.shape)}"
        )
    if not X.is_floating_point():
        if integers == "refuse":
            raise InvalidInput(
                f"{name} must be a floating-point tensor, got {X.dtype}; convert it with "
                f"{name}.float()"
            )
        if integers == "float64":
            X = X.to(torch.float64)
    if not all_finite(X):
        raise InvalidInput(f"{name} contains NaN or inf; clean the data first")
    return X


def check_Xy(
    X: object,
    y: object,
    *,
    example_shape: tuple[int, ...] | None = None,
    integers: str = "keep",
) -> tuple[Tensor, Tensor]:
    """Examples and their targets: ``X`` as in :func:`check_X`, ``y`` a real, non-bool tensor
    with one row per example (``(N, ...)``) and finite entries.

    Returns:
        ``(X, y)`` (``X`` converted as :func:`check_X` says; ``y`` unchanged).
    """
    from ._errors import InvalidInput

    if not isinstance(X, Tensor) or not isinstance(y, Tensor):
        raise InvalidInput(
            f"X and y must be torch tensors, got {type(X).__name__} and {type(y).__name__} "
            "(convert with torch.as_tensor)"
        )
    X = check_X(X, example_shape=example_shape, integers=integers)
    check_real_tensor("y", y)
    if y.dtype == torch.bool:
        raise InvalidInput("y must hold numbers, not bool: convert it with y.float()")
    if y.ndim == 0 or y.shape[0] != X.shape[0]:
        got = y.shape[0] if y.ndim else "a scalar"
        raise InvalidInput(f"X has {X.shape[0]} examples but y has {got}; pass matching rows")
    if not all_finite(y):
        raise InvalidInput("y contains NaN or inf; clean the data first")
    return X, y


def as_real_array(x: object, name: str) -> np.ndarray:
    """``x`` (a tensor, array, nested lists or a number) as a float64 NumPy array.

    Refused with a message: complex values (never reduced to their real part), meta tensors, and
    anything NumPy does not hold as bools, integers or floats (strings, objects, ragged lists).

    >>> as_real_array([1, 2], "x")
    array([1., 2.])
    """
    from ._errors import InvalidInput

    if isinstance(x, Tensor):
        check_real_tensor(name, x)
        x = x.detach().to("cpu", torch.float64).numpy()
    try:
        a = np.asarray(x)
    except (TypeError, ValueError, RuntimeError, OverflowError) as exc:
        raise InvalidInput(f"{name} must be real numbers, got {type(x).__name__}") from exc
    if a.dtype.kind == "c":
        raise InvalidInput(f"{name} is complex ({a.dtype}): pass real numbers")
    if a.dtype.kind not in "fiub":
        raise InvalidInput(f"{name} must be real numbers, got an array of {a.dtype}")
    try:
        return a.astype(np.float64)
    except (TypeError, ValueError, OverflowError) as exc:
        raise InvalidInput(f"{name} must be real numbers ({exc})") from exc


def check_widths(widths: object, *, allow_empty: bool, name: str = "widths") -> list[int]:
    """Hidden-layer widths ``n_1..n_L``: a sequence (not a string) of positive ints (Python or
    numpy ints; bools and floats refused), as a list of Python ints.

    ``allow_empty``: whether ``[]`` (no hidden layer) is a valid answer for the caller (it is
    for a bound that is then 0, not for a count of permutations of hidden neurons).
    """
    import numbers

    from ._errors import InvalidInput

    try:
        if isinstance(widths, (str, bytes)):
            raise TypeError
        ws = list(widths)  # type: ignore[call-overload]
    except TypeError:
        raise InvalidInput(f"{name} must be a sequence of positive ints, got {widths!r}") from None
    for w in ws:
        if isinstance(w, bool) or not isinstance(w, numbers.Integral) or w < 1:
            raise InvalidInput(f"every hidden width must be a positive int, got {ws!r}")
    if not ws and not allow_empty:
        raise InvalidInput(f"{name} is empty: give the hidden widths n_1..n_L (at least one)")
    return [int(w) for w in ws]


def check_list(name: str, value: object, *, what: str) -> list:
    """``value`` (any iterable but a string or bytes) as a list; ``what`` says in the message
    what it must be, e.g. ``"a list of (layer, i, j) triples"``."""
    from ._errors import InvalidInput

    try:
        if isinstance(value, (str, bytes)):
            raise TypeError
        return list(value)  # type: ignore[call-overload]
    except TypeError:
        raise InvalidInput(f"{name} must be {what}, got {value!r}") from None
