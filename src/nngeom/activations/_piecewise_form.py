"""What a VAF and its standard-ops export share: parameters per unit, their broadcasting against
an input, and the exact piecewise-linear form of ReLU-hidden units.

:class:`VAFUnits` is the common base of :class:`~nngeom.activations.VAF` (one packed parameter
tensor, fast kernels) and :class:`~nngeom.activations.VAFExport` (four plain parameters, standard
ops): both expose ``a0`` (shape ``S``) and ``a, b, c`` (shape ``S + (k,)``) and the attributes
``k, share, hidden, channel_dim, unit_shape``; the base turns them into per-unit numbers and into
the breakpoints / slopes / intercepts that :func:`nngeom.nets.piecewise_linear_form` reads.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .._checks import check_positive_int
from .._errors import InvalidInput, UnsupportedModel

__all__ = ["VAFUnits", "unit_form"]


def unit_form(
    a0: float, a: list[float], b: list[float], c: list[float]
) -> tuple[list[float], list[float], list[float]]:
    """Piecewise-linear form of one ReLU-hidden copy: (breakpoints, slopes, intercepts), float64.

    Only breakpoints with a nonzero slope change are kept (coincident ones merged); there is one
    more slope and intercept than breakpoints.

    >>> unit_form(0.0, [1.0], [1.0], [0.0])  # ReLU
    ([-0.0], [0.0, 1.0], [0.0, 0.0])
    """
    slope0, icept0 = 0.0, float(a0)
    changes: dict[float, list[float]] = {}
    for aj, bj, cj in zip(a, b, c):
        if bj == 0.0:
            icept0 += aj * max(cj, 0.0)
            continue
        if bj < 0:  # active on the left
            slope0 += aj * bj
            icept0 += aj * cj
        t = -cj / bj
        d = changes.setdefault(t, [0.0, 0.0])
        # crossing t rightwards switches the unit on (b > 0) or off (b < 0)
        sgn = 1.0 if bj > 0 else -1.0
        d[0] += sgn * aj * bj
        d[1] += sgn * aj * cj
    bps, slopes, icepts = [], [slope0], [icept0]
    for t in sorted(changes):
        ds, di = changes[t]
        if ds == 0.0:
            continue
        bps.append(t)
        slopes.append(slopes[-1] + ds)
        icepts.append(icepts[-1] + di)
    return bps, slopes, icepts


class VAFUnits(nn.Module):
    """Base of the VAF modules: per-unit parameters, broadcasting and the piecewise-linear form.

    Subclasses set ``k, share, hidden, channel_dim, unit_shape`` and provide ``a0, a, b, c``.
    """

    nngeom_elementwise = True
    nngeom_name = "vaf"
    nngeom_trainable_activation = True

    k: int
    share: str
    hidden: str
    channel_dim: int
    unit_shape: tuple[int, ...] | None
    a0: Tensor
    a: Tensor
    b: Tensor
    c: Tensor

    def _require_materialized(self) -> None:
        if self.unit_shape is None:
            raise InvalidInput(
                f"this share={self.share!r} VAF has no parameters yet: pass num_channels= or run one "
                "forward pass first"
            )

    @property
    def nngeom_piecewise_linear(self) -> bool:
        return self.hidden == "relu"

    def nngeom_piecewise_linear_form(self, width: int) -> tuple[Tensor, Tensor, Tensor]:
        """Exact piecewise-linear form on a layer of ``width`` units (see ``nets.piecewise_linear_form``).

        Returns float64 ``(breakpoints (width, m), slopes (width, m+1), intercepts (width, m+1))``.
        Only breakpoints where the slope really changes are listed (units with ``b_j = 0`` or
        ``a_j = 0`` add none; coincident breakpoints are merged); units with fewer than ``m``
        breakpoints are padded by repeating their last one (a zero-width piece, same slope).
        """
        if self.hidden != "relu":
            raise UnsupportedModel(
                "a VAF with hidden='tanh' is not piecewise linear: knots and linear regions are "
                "undefined for it (use VAF(hidden='relu'))"
            )
        self._require_materialized()
        forms = [unit_form(*p) for p in self._unit_params(width)]
        m = max((len(f[0]) for f in forms), default=0)
        bps, sls, ics = [], [], []
        for bp, sl, ic in forms:
            if len(bp) < m:
                pad = m - len(bp)
                last = bp[-1] if len(bp) else 0.0
                bp = bp + [last] * pad
                sl = sl + [sl[-1]] * pad
                ic = ic + [ic[-1]] * pad
            bps.append(bp)
            sls.append(sl)
            ics.append(ic)
        f64 = torch.float64
        return (
            torch.tensor(bps, dtype=f64).reshape(width, m),
            torch.tensor(sls, dtype=f64).reshape(width, m + 1),
            torch.tensor(ics, dtype=f64).reshape(width, m + 1),
        )

    def _unit_params(self, width: int) -> list[tuple[float, list[float], list[float], list[float]]]:
        """``(a0, a, b, c)`` as float64 Python numbers for each of ``width`` units of a (N, width) layer."""
        width = check_positive_int("width", width)
        a0 = self.a0.detach().double().cpu()
        a, b, c = (p.detach().double().cpu() for p in (self.a, self.b, self.c))
        if self.share == "layer":
            one = (float(a0), a.tolist(), b.tolist(), c.tolist())
            return [one] * width
        if self.unit_shape != (width,) or (
            self.share == "channel" and self.channel_dim not in (1, -1)
        ):
            raise InvalidInput(
                f"this VAF has per-{self.share} parameters of shape {self.unit_shape} (channel_dim="
                f"{self.channel_dim}); a fully connected layer of width {width} needs shape ({width},)"
            )
        return [(float(a0[i]), a[i].tolist(), b[i].tolist(), c[i].tolist()) for i in range(width)]

    def _broadcast(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Parameters viewed for broadcasting against ``x``: ``a0`` of shape ``B``, ``a, b, c`` of
        shape ``(k, *B)`` (``B`` empty for layer sharing)."""
        if self.share == "layer":
            return self.a0, self.a, self.b, self.c
        assert self.unit_shape is not None
        if self.share == "channel":
            cd = self.channel_dim % x.ndim
            bshape = (self.unit_shape[0], *((1,) * (x.ndim - cd - 1)))
        else:
            bshape = self.unit_shape
        a0 = self.a0.reshape(bshape)
        a, b, c = (p.movedim(-1, 0).reshape(self.k, *bshape) for p in (self.a, self.b, self.c))
        return a0, a, b, c
