"""What nngeom knows about element-wise activations: their names, which are piecewise linear,
and their exact piecewise-linear forms (breakpoints, slopes, intercepts per unit).

The lowest layer of the model readers: both the MLP view (``nets``) and the traced model view
(``view``) import it, and it imports neither.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from ._checks import check_int
from ._errors import InvalidInput, UnsupportedModel

# The most units a layer's form is built for (its float64 tables stay below 8 GB).
MAX_FORM_UNITS = 1_000_000_000 // 8

_ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "softplus": nn.Softplus,
    "identity": nn.Identity,
    "prelu": nn.PReLU,
    "hardtanh": nn.Hardtanh,
    "relu6": nn.ReLU6,
}
_NAMES: dict[type, str] = {
    nn.ReLU: "relu",
    nn.LeakyReLU: "leaky_relu",
    nn.Tanh: "tanh",
    nn.Sigmoid: "sigmoid",
    nn.Softplus: "softplus",
    nn.Identity: "identity",
    nn.PReLU: "prelu",
    nn.Hardtanh: "hardtanh",
    nn.ReLU6: "relu6",
}


def activation_name(act: nn.Module) -> str | None:
    """Name of an element-wise activation module, or None if it is not one nngeom knows.

    A third-party module joins by setting ``nngeom_elementwise = True`` and ``nngeom_name``.
    """
    for cls, name in _NAMES.items():
        if type(act) is cls:
            return name
    if getattr(act, "nngeom_elementwise", False):
        return str(getattr(act, "nngeom_name", type(act).__name__.lower()))
    return None


def is_piecewise_linear(act: nn.Module) -> bool:
    """True for ReLU, LeakyReLU, PReLU, Hardtanh, ReLU6, Identity and modules that declare
    ``nngeom_piecewise_linear``."""
    if type(act) in (nn.ReLU, nn.LeakyReLU, nn.Identity, nn.PReLU, nn.Hardtanh, nn.ReLU6):
        return True
    return bool(getattr(act, "nngeom_piecewise_linear", False))


def make_activation(activation: str | nn.Module | type) -> nn.Module:
    """An activation module from a name (``"relu"``, ``"tanh"``, ...), a class or an instance."""
    if isinstance(activation, nn.Module):
        return activation
    if isinstance(activation, type) and issubclass(activation, nn.Module):
        return activation()
    if isinstance(activation, str) and activation.lower() in _ACTIVATIONS:
        return _ACTIVATIONS[activation.lower()]()
    raise InvalidInput(
        f"unknown activation {activation!r}; use one of {sorted(_ACTIVATIONS)} "
        "or pass an nn.Module instance"
    )


def piecewise_linear_form(act: nn.Module, width: int) -> tuple[Tensor, Tensor, Tensor]:
    """The exact piecewise-linear form of an element-wise activation on a layer of ``width`` units.

    Returns ``(breakpoints, slopes, intercepts)`` of shapes ``(width, m)``, ``(width, m + 1)``,
    ``(width, m + 1)`` (float64, breakpoints sorted ascending per unit): on the ``r``-th piece
    (between breakpoints ``r-1`` and ``r``) the activation is ``slopes[:, r] * z + intercepts[:, r]``.
    ReLU: one breakpoint at 0, slopes (0, 1). A module joins by defining
    ``nngeom_piecewise_linear_form(width)`` with the same contract.

    Raises:
        UnsupportedModel: the activation is not piecewise linear (Tanh, Sigmoid, Softplus, ...).
    """
    if not isinstance(act, nn.Module):
        raise UnsupportedModel(f"act must be an activation nn.Module, got {type(act).__name__}")
    width = check_int("width", width, minimum=1, maximum=MAX_FORM_UNITS)
    f64 = torch.float64
    if type(act) is nn.ReLU:
        bp, sl = (
            torch.zeros(width, 1, dtype=f64),
            torch.tensor([[0.0, 1.0]], dtype=f64).expand(width, 2),
        )
        return bp, sl.clone(), torch.zeros(width, 2, dtype=f64)
    if type(act) is nn.LeakyReLU:
        a = float(act.negative_slope)
        sl = torch.tensor([[a, 1.0]], dtype=f64).expand(width, 2).clone()
        return torch.zeros(width, 1, dtype=f64), sl, torch.zeros(width, 2, dtype=f64)
    if type(act) is nn.Identity:
        return (
            torch.zeros(width, 0, dtype=f64),
            torch.ones(width, 1, dtype=f64),
            torch.zeros(width, 1, dtype=f64),
        )
    if type(act) is nn.PReLU:
        w = act.weight.detach().to("cpu", f64).reshape(-1)
        if w.numel() not in (1, width):
            raise UnsupportedModel(
                f"PReLU has {w.numel()} slopes but the layer has {width} units; use "
                "num_parameters=1 or one per unit"
            )
        sl = torch.stack([w.expand(width), torch.ones(width, dtype=f64)], 1)
        return torch.zeros(width, 1, dtype=f64), sl, torch.zeros(width, 2, dtype=f64)
    if type(act) in (nn.Hardtanh, nn.ReLU6):
        lo, hi = float(act.min_val), float(act.max_val)

        def rows(v: list[float]) -> Tensor:
            return torch.tensor([v], dtype=f64).expand(width, len(v)).clone()

        return rows([lo, hi]), rows([0.0, 1.0, 0.0]), rows([lo, 0.0, hi])
    form = getattr(act, "nngeom_piecewise_linear_form", None)
    if callable(form):
        bp, sl, ic = form(width)
        return bp.to(f64), sl.to(f64), ic.to(f64)
    raise UnsupportedModel(
        f"activation {type(act).__name__} is not piecewise linear: knots and linear regions are "
        "undefined for it (use ReLU, LeakyReLU, Identity or a piecewise-linear VAF)"
    )
