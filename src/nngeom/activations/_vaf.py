"""The VAF module: an element-wise activation computed by a trainable ``1 -> k -> 1`` network.

Shapes: one parameter tensor ``theta`` of shape ``S + (3k + 1,)`` holds ``[a0, a_1..a_k,
b_1..b_k, c_1..c_k]`` (one tensor per activation: an optimizer step costs one tensor, not four);
``a0`` (shape ``S``) and ``a, b, c`` (shape ``S + (k,)``) are views of it. ``S = ()`` for
``share="layer"``, ``(C,)`` for ``share="channel"`` (``C`` = size of ``channel_dim``) and the
per-example feature shape (``x.shape[1:]``) for ``share="neuron"``. The forward pass runs the
kernel :func:`~nngeom.activations.choose_kernel` picks.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from .._checks import (
    check_device,
    check_float_dtype,
    check_int,
    check_number,
    check_positive_int,
    check_real_tensor,
)
from .._errors import InvalidInput, UnsupportedModel
from ._export import VAFExport
from ._init_fits import HIDDEN, INITS, check_fit_range, initial_theta
from ._kernels import (
    FUSED_KERNELS,
    choose_kernel,
    functorch_active,
    generic_vaf,
    hinge_vaf,
    vaf_reference,
)
from ._piecewise_form import VAFUnits, unit_form

__all__ = ["VAF", "SHARES", "MAX_PARAMETERS", "MAX_K"]

SHARES = ("layer", "channel", "neuron")
# The most parameters one activation module may hold (units x (3k + 1)).
MAX_PARAMETERS = 100_000_000
# The most hidden units of one subnetwork.
MAX_K = 10_000
# The most points VAF.plot evaluates.
MAX_PLOT_POINTS = 1_000_000
# VAF.plot draws at most this many copies of a per-channel / per-neuron VAF by default.
PLOT_UNITS = 8


def _check_size(shape: tuple[int, ...], k: int) -> None:
    total = math.prod(shape) * (3 * k + 1)
    if total > MAX_PARAMETERS:
        raise InvalidInput(
            f"a VAF with k={k} over units {shape} holds {total:,} parameters, more than nngeom's "
            f"limit of {MAX_PARAMETERS:,}; share per layer or per channel instead"
        )


def _unit_shape(share: str, num_channels: object) -> tuple[int, ...] | None:
    """The parameter shape ``S`` fixed at construction (None: set by the first forward pass)."""
    if share == "layer":
        return ()
    if num_channels is None:
        return None
    if share == "channel":
        return (check_positive_int("num_channels", num_channels),)
    try:
        shape = (num_channels,) if isinstance(num_channels, int) else tuple(num_channels)  # type: ignore[arg-type]
    except TypeError:
        shape = ()
    if not shape or any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in shape):
        raise InvalidInput(f"num_channels must be a positive int or shape, got {num_channels!r}")
    return shape


class VAF(VAFUnits):
    """Trainable activation ``a_0 + sum_j a_j g(b_j z + c_j)`` computed by a 1 -> k -> 1 subnetwork.

    Args:
        k: hidden units of the subnetwork (``k >= 1``); ``3k + 1`` parameters per shared copy.
        share: ``"layer"`` (one copy, the paper), ``"channel"`` (one per entry of ``channel_dim``)
            or ``"neuron"`` (one per feature, i.e. per entry of ``x.shape[1:]``).
        init: ``"relu"`` (exact: ``a_1 = b_1 = 1``, ``c_1 = 0``, the other ``a_j = 0`` with
            spread-out ``b_j, c_j``; with ``hidden="relu"`` the module equals ``nn.ReLU`` bit for
            bit), ``"tanh"`` (exact with ``hidden="tanh"``), ``"identity"``, ``"gelu"``, ``"silu"``
            or a callable ``f(z: Tensor) -> Tensor``: least-squares fit on ``fit_range``.
        hidden: the hidden unit ``g``: ``"relu"`` (piecewise linear) or ``"tanh"``.
        channel_dim: the channel dimension for ``share="channel"`` (1 for ``(N, C, ...)``).
        num_channels: for ``share="channel"``, the number of channels; for ``share="neuron"``, the
            per-example feature shape (int or tuple). If None the parameters are created on the first
            call (run one forward pass before building the optimizer).
        fit_range: the interval of the least-squares fit for non-exact inits.
        fused: layer sharing with ReLU units only: ``None`` (default) runs inputs of at least
            ``FUSED_MIN`` elements on CPU through two kernels that ``torch.compile`` generates
            once per process (one pass forward, one backward), falling back to the eager kernels
            with a warning where compiling fails; ``True`` uses them from
            ``FUSED_MIN_ROWS * FUSED_COLS`` elements; ``False`` never (eager kernels only).

    Input ``x``: any shape ``(N, ...)``; output: same shape. Parameters: ``a0`` (shape ``S``),
    ``a, b, c`` (shape ``S + (k,)``), see the module docstring.

    Differentiation: :func:`~nngeom.activations.choose_kernel` picks the code path from the
    input's size, device and dtype: plain autograd on :func:`vaf_reference` for small inputs,
    under ``torch.compile`` and inside torch.func transforms; otherwise custom autograd Functions
    that save only ``x`` and recompute the rest in backward (layer sharing with ReLU units takes a
    chunked path whose temporaries stay far below one input-sized tensor). The attribute
    ``kernel`` (default None: automatic) names a kernel to use instead (tests, benchmarks).
    Double backward (``create_graph=True``) is exact on every path.

    >>> import torch, nngeom as ng
    >>> act = ng.VAF(k=3, init="relu")
    >>> x = torch.linspace(-2, 2, 5)
    >>> act(x).shape, sum(p.numel() for p in act.parameters())
    (torch.Size([5]), 10)
    """

    def __init__(
        self,
        k: int = 3,
        share: str = "layer",
        init: str | Callable[[Tensor], Tensor] = "relu",
        hidden: str = "relu",
        channel_dim: int = 1,
        num_channels: int | Sequence[int] | None = None,
        *,
        fit_range: tuple[float, float] = (-3.0, 3.0),
        dtype: torch.dtype | None = None,
        device: torch.device | str | None = None,
        fused: bool | None = None,
    ) -> None:
        super().__init__()
        if fused not in (None, True, False):
            raise InvalidInput(f"fused must be None (automatic), True or False, got {fused!r}")
        self.fused = fused
        self.kernel: str | None = None
        k = check_positive_int("k", k, maximum=MAX_K)
        if share not in SHARES:
            raise InvalidInput(f"unknown sharing mode share={share!r}; use one of {list(SHARES)}")
        if hidden not in HIDDEN:
            raise InvalidInput(f"unknown hidden unit hidden={hidden!r}; use one of {list(HIDDEN)}")
        if not callable(init) and not (isinstance(init, str) and init in INITS):
            raise InvalidInput(
                f"unknown init {init!r}; use one of {sorted(INITS)} or a callable f(z) -> tensor"
            )
        channel_dim = check_int("channel_dim", channel_dim)
        lo, hi = check_fit_range(fit_range)
        if dtype is not None:
            dtype = check_float_dtype(dtype)
        if device is not None:
            device = check_device(device)
        self.k, self.share, self.hidden, self.channel_dim = k, share, hidden, channel_dim
        self.init = init if isinstance(init, str) else getattr(init, "__name__", "callable")
        self.fit_range = (lo, hi)
        self._base = torch.tensor(initial_theta(init, k, hidden, lo, hi), dtype=torch.float64)
        if not bool(torch.isfinite(self._base).all()):
            raise InvalidInput(
                f"fitting init={self.init!r} on fit_range={fit_range!r} gave non-finite "
                "parameters; use a smaller fit_range"
            )
        self._factory = {"dtype": dtype or torch.get_default_dtype(), "device": device}
        shape = _unit_shape(share, num_channels)
        self.unit_shape: tuple[int, ...] | None = None
        if shape is not None:
            _check_size(shape, k)
            self._materialize(shape)
        else:
            self.register_parameter("theta", None)

    def _materialize(self, shape: tuple[int, ...]) -> None:
        base = self._base.to(**self._factory)
        self.theta = nn.Parameter(base.expand((*shape, 3 * self.k + 1)).clone())
        self.unit_shape = shape

    # -- the parameters, as views of theta ------------------------------------------------------
    def _theta(self) -> Tensor:
        self._require_materialized()
        return self.theta

    @property
    def a0(self) -> Tensor:  # type: ignore[override]
        """Output bias ``a_0``, shape ``S`` (a view of ``theta``)."""
        return self._theta()[..., 0]

    @property
    def a(self) -> Tensor:  # type: ignore[override]
        """Output weights ``a_j``, shape ``S + (k,)`` (a view of ``theta``)."""
        return self._theta()[..., 1 : self.k + 1]

    @property
    def b(self) -> Tensor:  # type: ignore[override]
        """Hidden weights ``b_j``, shape ``S + (k,)`` (a view of ``theta``)."""
        return self._theta()[..., self.k + 1 : 2 * self.k + 1]

    @property
    def c(self) -> Tensor:  # type: ignore[override]
        """Hidden biases ``c_j``, shape ``S + (k,)`` (a view of ``theta``)."""
        return self._theta()[..., 2 * self.k + 1 :]

    # -- forward -----------------------------------------------------------------------------
    def _shape_for(self, x: Tensor) -> tuple[int, ...]:
        if self.share == "layer":
            return ()
        if x.ndim < 2:
            raise InvalidInput(
                f"share={self.share!r} needs an input of shape (N, ...) with at least 2 dimensions, "
                f"got shape {tuple(x.shape)}"
            )
        if self.share == "channel":
            cd = self.channel_dim
            if not -x.ndim < cd < x.ndim or cd in (0, -x.ndim):
                raise InvalidInput(
                    f"channel_dim={cd} is out of range for an input of shape {tuple(x.shape)} "
                    f"(valid: 1..{x.ndim - 1}, dimension 0 is the batch)"
                )
            return (int(x.shape[cd]),)
        return tuple(int(s) for s in x.shape[1:])

    def forward(self, x: Tensor) -> Tensor:
        if not isinstance(x, Tensor) or not x.is_floating_point():
            raise InvalidInput(
                f"VAF expects a real floating-point tensor, got "
                f"{x.dtype if isinstance(x, Tensor) else type(x).__name__}"
            )
        shape = self._shape_for(x)
        if self.unit_shape is None:
            _check_size(shape, self.k)
            self._factory = {"dtype": x.dtype, "device": x.device}
            self._materialize(shape)
        elif shape != self.unit_shape:
            what = "channel count" if self.share == "channel" else "per-example feature shape"
            raise InvalidInput(
                f"share={self.share!r} VAF has parameters for {what} {self.unit_shape} (fixed at "
                f"construction or on the first call) but got an input of shape {tuple(x.shape)} "
                f"with {what} {shape}; use one VAF per layer"
            )
        kernel = choose_kernel(
            x.numel(),
            share=self.share,
            hidden=self.hidden,
            device=x.device,
            dtype=x.dtype,
            fused=self.fused,
            transformed=torch.compiler.is_compiling() or functorch_active(),
            forced=self.kernel,
        )
        if kernel == "hinge":
            return hinge_vaf(x, self.theta)
        if kernel == "hinge_fused":
            return hinge_vaf(x, self.theta, FUSED_KERNELS)
        a0, a, b, c = self._broadcast(x)
        if kernel == "reference":
            return vaf_reference(x, a0, a, b, c, self.hidden)
        return generic_vaf(x, a0, a, b, c, self.hidden)

    def extra_repr(self) -> str:
        return (
            f"k={self.k}, share={self.share!r}, init={self.init!r}, hidden={self.hidden!r}"
            + (f", channel_dim={self.channel_dim}" if self.share == "channel" else "")
            + (f", units={self.unit_shape}" if self.share != "layer" else "")
        )

    # -- analysis and display ----------------------------------------------------------------
    def evaluate(
        self, z: Tensor | np.ndarray | Sequence[float], unit: int | None = None
    ) -> np.ndarray:
        """The activation's values at scalar inputs ``z`` (1-D), for one unit (layer: ignored).

        Returns a float64 array of shape ``(len(z),)``.
        """
        self._require_materialized()
        if isinstance(z, Tensor):
            check_real_tensor("z", z)
            z = z.detach().cpu().numpy()
        try:
            raw = np.asarray(z)
            if raw.dtype.kind == "c":
                raise InvalidInput("z is complex: pass real numbers")
            zt = torch.as_tensor(raw.astype(np.float64))
        except (TypeError, ValueError) as exc:
            if isinstance(exc, InvalidInput):
                raise
            raise InvalidInput("z must be a 1-D sequence of real numbers") from None
        if zt.ndim != 1:
            raise InvalidInput(f"z must be 1-D, got shape {tuple(zt.shape)}")
        a0, a, b, c = self._unit(unit)
        return vaf_reference(zt, a0, a[:, None], b[:, None], c[:, None], self.hidden).numpy()

    def _unit(self, unit: int | None) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        ps = [p.detach().double().cpu() for p in (self.a0, self.a, self.b, self.c)]
        if self.share == "layer":
            return ps[0], ps[1], ps[2], ps[3]
        n = self.n_units
        u = 0 if unit is None else check_int("unit", unit)
        if not 0 <= u < n:
            raise InvalidInput(f"unit must be in 0..{n - 1}, got {unit}")
        return ps[0].reshape(-1)[u], *(p.reshape(n, self.k)[u] for p in ps[1:])

    @property
    def n_units(self) -> int:
        """Number of independent copies of the subnetwork (1 for layer sharing)."""
        self._require_materialized()
        return math.prod(self.unit_shape) if self.unit_shape else 1

    def knots(self, unit: int | None = None) -> np.ndarray:
        """Sorted positions where the learned (ReLU-hidden) activation's slope changes.

        For per-channel / per-neuron sharing, ``unit`` selects the copy (flat index; default 0).
        Raises :class:`UnsupportedModel` for ``hidden="tanh"`` (not piecewise linear).
        """
        if self.hidden != "relu":
            raise UnsupportedModel("a VAF with hidden='tanh' is smooth: it has no knots")
        self._require_materialized()
        a0, a, b, c = self._unit(unit)
        bp, _, _ = unit_form(float(a0), a.tolist(), b.tolist(), c.tolist())
        return np.asarray(bp, dtype=np.float64)

    def plot(
        self,
        ax: Any = None,
        lo: float = -3.0,
        hi: float = 3.0,
        units: Iterable[int] | None = None,
        n: int = 401,
        **kwargs: Any,
    ) -> Any:
        """Plot the learned shape on ``[lo, hi]`` (knots marked for ReLU hidden units).

        ``units``: which copies to draw for per-channel/neuron sharing (default: up to the first
        ``PLOT_UNITS``). Returns the matplotlib Axes.
        """
        import matplotlib.pyplot as plt

        lo, hi = check_number("lo", lo), check_number("hi", hi)
        n = check_int("n", n, minimum=2, maximum=MAX_PLOT_POINTS)
        if not lo < hi:
            raise InvalidInput(f"need lo < hi, got {lo}, {hi}")
        if ax is None:
            _, ax = plt.subplots(figsize=(4, 3))
        z = np.linspace(lo, hi, n)
        chosen = (
            [None]
            if self.share == "layer"
            else list(units if units is not None else range(min(PLOT_UNITS, self.n_units)))
        )
        for u in chosen:
            label = kwargs.pop("label", None) if u is None or u == chosen[0] else None
            line = ax.plot(
                z,
                self.evaluate(z, u),
                label=label or (None if u is None else f"unit {u}"),
                **kwargs,
            )
            if self.hidden == "relu":
                kn = self.knots(u)
                kn = kn[(kn > lo) & (kn < hi)]
                ax.plot(kn, self.evaluate(kn, u), "o", ms=3, color=line[0].get_color())
        ax.set_xlabel("z")
        ax.set_ylabel("VAF(z)")
        return ax

    def export(self) -> VAFExport:
        """This activation in standard ops only (a sum of ReLUs / tanhs): for ONNX, TorchScript,
        ``torch.export``. The result computes the same function (parameters copied)."""
        self._require_materialized()
        return VAFExport(self)
