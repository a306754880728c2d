"""How a two-hidden-layer sigmoid net "works" (Lapedes & Farber): ridges, slabs, bumps.

* a first-layer sigmoid ``s(k (w . x - a))`` is a *ridge*: a soft step along ``w``;
* two opposite ridges make a *slab*: ``s(k (w . x - a)) - s(k (w . x - c))``, about 1 for
  ``a < w . x < c`` and 0 outside;
* a second-layer sigmoid of the sum of ``d`` slabs (one per axis) thresholded at ``d - 1/2`` is a
  *bump*, about 1 in a box and 0 outside;
* the linear output sums bumps: :func:`bump_network` builds that net (an ordinary
  ``nn.Sequential``) for given box centres, half-widths and heights.

:func:`decompose` splits any trained ``Linear-act-Linear-act-Linear`` net into the contributions
of its second-layer units, ``out = bias + sum_j w_j h_j(x)``, to show which "bumps" a trained
predictor uses where on the attractor.
"""

from __future__ import annotations

import numbers

import numpy as np
import torch
from torch import nn
from torch.nn.utils import skip_init

from .._checks import as_real_array, check_model_tensors, check_number
from .._errors import InvalidInput, UnsupportedModel
from ..nets import as_mlp
from ._validate import check_entries

__all__ = ["ridge", "slab", "bump", "bump_network", "decompose"]


def _sig(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def _points(x: object) -> np.ndarray:
    a = as_real_array(x, "x")
    if a.ndim == 1:
        a = a[:, None]
    if a.ndim != 2:
        raise InvalidInput(f"x must have shape (N, d), got {a.shape}")
    if not np.isfinite(a).all():
        raise InvalidInput("x contains NaN or inf")
    return a


def _vector(v: object, name: str, size: int | None = None) -> np.ndarray:
    a = as_real_array(v, name).reshape(-1)
    if size is not None and a.size != size:
        raise InvalidInput(f"{name} has {a.size} entries but x has {size} coordinates")
    if not np.isfinite(a).all():
        raise InvalidInput(f"{name} contains NaN or inf")
    return a


def _z(values: np.ndarray) -> np.ndarray:
    if not np.isfinite(values).all():
        raise InvalidInput(
            "the ridge's argument overflowed (non-finite from finite inputs); use a smaller "
            "steepness or smaller inputs"
        )
    return values


def ridge(x: object, w: object, a: float = 0.0, steepness: float = 10.0) -> np.ndarray:
    """``s(k (w . x - a))`` for points ``x (N, d)``, direction ``w (d,)``: ``(N,)``.

    >>> import numpy as np
    >>> from nngeom import chaos
    >>> chaos.ridge(np.array([[-1.0], [0.0], [1.0]]), [1.0], steepness=10.0).round(4)
    array([0. , 0.5, 1. ])
    """
    X = _points(x)
    wv = _vector(w, "w", X.shape[1])
    a = check_number("a", a)
    k = check_number("steepness", steepness)
    with np.errstate(over="ignore", invalid="ignore"):
        return _sig(_z(k * (X @ wv - a)))


def slab(x: object, w: object, lo: float, hi: float, steepness: float = 10.0) -> np.ndarray:
    """Two opposite ridges: ``s(k (w.x - lo)) - s(k (w.x - hi))``, about 1 on ``lo < w.x < hi``: ``(N,)``.

    >>> import numpy as np
    >>> from nngeom import chaos
    >>> chaos.slab(np.array([[-2.0], [0.0], [2.0]]), [1.0], -1.0, 1.0).round(4)
    array([0.    , 0.9999, 0.    ])
    """
    lo, hi = check_number("lo", lo), check_number("hi", hi)
    if not lo < hi:
        raise InvalidInput(f"a slab needs lo < hi, got {lo}, {hi}")
    return ridge(x, w, lo, steepness) - ridge(x, w, hi, steepness)


def bump(
    x: object,
    center: object,
    half_width: float | object,
    steepness: float = 10.0,
    sharpness: float = 10.0,
) -> np.ndarray:
    """A localised bump: ``s(K (sum_i slab_i(x) - (d - 1/2)))`` with one slab per axis around
    ``center (d,)`` of half-width ``half_width`` (scalar or ``(d,)``): ``(N,)``.

    >>> import numpy as np
    >>> from nngeom import chaos
    >>> chaos.bump(np.array([[0.0, 0.0], [3.0, 0.0]]), [0.0, 0.0], 1.0).round(4)
    array([0.9933, 0.0067])
    """
    X = _points(x)
    c = _vector(center, "center")
    if c.size != X.shape[1]:
        raise InvalidInput(f"center has {c.size} coordinates but x has {X.shape[1]}")
    if isinstance(half_width, numbers.Real):  # one number: refused with check_number's words
        half_width = check_number("half_width", half_width)
    hw_raw = _vector(half_width, "half_width")
    if hw_raw.size not in (1, c.size) or not (hw_raw > 0).all():
        raise InvalidInput(
            f"half_width must be one positive number or {c.size} of them, got {half_width!r}"
        )
    hw = np.broadcast_to(hw_raw if hw_raw.size == c.size else hw_raw[0], c.shape)
    sharpness = check_number("sharpness", sharpness)
    with np.errstate(over="ignore", invalid="ignore"):
        lo, hi = c - hw, c + hw
    if not (np.isfinite(lo).all() and np.isfinite(hi).all()):
        raise InvalidInput(
            "center +- half_width overflows float64; use a smaller half_width or center"
        )
    total = sum(
        slab(X, np.eye(c.size)[i], float(lo[i]), float(hi[i]), steepness) for i in range(c.size)
    )
    with np.errstate(over="ignore", invalid="ignore"):
        return _sig(_z(sharpness * (total - (c.size - 0.5))))


def bump_network(
    centers: object,
    half_width: float,
    heights: object,
    steepness: float = 10.0,
    sharpness: float = 10.0,
    bias: float = 0.0,
) -> nn.Sequential:
    """The sum of bumps ``bias + sum_m heights[m] bump(x; centers[m])`` as a sigmoid MLP
    ``d -> 2 d M -> M -> 1`` (float64), ``centers (M, d)``, ``heights (M,)``.

    >>> import torch
    >>> from nngeom import chaos
    >>> net = chaos.bump_network([[0.0], [3.0]], 0.5, [1.0, 2.0])
    >>> y = net(torch.tensor([[0.0], [3.0], [10.0]], dtype=torch.float64)).detach()
    >>> y.squeeze(1).round(decimals=3)
    tensor([1.0060, 1.9910, 0.0200], dtype=torch.float64)
    """
    C = as_real_array(centers, "centers")
    if C.ndim == 1:
        C = C[:, None]
    hgt = _vector(heights, "heights")
    if C.ndim != 2 or hgt.size != C.shape[0] or C.shape[0] == 0 or C.shape[1] == 0:
        raise InvalidInput(
            f"centers must be (M, d) and heights (M,), got {C.shape} and {hgt.shape}"
        )
    if not np.isfinite(C).all():
        raise InvalidInput("centers contain NaN or inf")
    half_width = check_number("half_width", half_width, minimum=0.0, strict_min=True)
    steepness = check_number("steepness", steepness)
    sharpness = check_number("sharpness", sharpness)
    bias = check_number("bias", bias)
    M, d = C.shape
    check_entries(2 * (2 * d * M) * (d + M), "the bump network's weights")
    W1 = np.zeros((2 * d * M, d))
    b1 = np.zeros(2 * d * M)
    W2 = np.zeros((M, 2 * d * M))
    # an overflow gives inf/NaN weights, refused below with a message (not a numpy warning)
    with np.errstate(over="ignore", invalid="ignore"):
        for m in range(M):
            for i in range(d):
                r = 2 * (m * d + i)
                W1[r, i] = W1[r + 1, i] = steepness
                b1[r] = -steepness * (C[m, i] - half_width)  # rising edge
                b1[r + 1] = -steepness * (C[m, i] + half_width)  # falling edge (subtracted)
                W2[m, r], W2[m, r + 1] = sharpness, -sharpness
        b2 = -sharpness * (d - 0.5) * np.ones(M)
    net = nn.Sequential(
        skip_init(nn.Linear, d, 2 * d * M, dtype=torch.float64),
        nn.Sigmoid(),
        skip_init(nn.Linear, 2 * d * M, M, dtype=torch.float64),
        nn.Sigmoid(),
        skip_init(nn.Linear, M, 1, dtype=torch.float64),
    )
    with torch.no_grad():
        for lin, (W, b) in zip(
            (net[0], net[2], net[4]),
            ((W1, b1), (W2, b2), (hgt[None, :], np.array([bias]))),
            strict=False,
        ):
            lin.weight.copy_(torch.from_numpy(W))
            lin.bias.copy_(torch.from_numpy(b))
    if not all(bool(torch.isfinite(p).all()) for p in net.parameters()):
        raise InvalidInput(
            "the bump network's weights overflow float64 (steepness or sharpness times the "
            "centres +- half_width is too large); use smaller values"
        )
    return net


def decompose(model: nn.Module, x: object) -> tuple[np.ndarray, float]:
    """Contributions of the last hidden layer's units to a one-output net's output.

    ``model`` must be an MLP with at least one hidden layer and one output; ``x (N, d)`` its input.
    Returns ``(contributions (N, n_last), bias)`` with ``output = bias + contributions.sum(1)``.

    >>> from nngeom import chaos
    >>> net = chaos.bump_network([[0.0], [3.0]], 0.5, [1.0, 2.0])
    >>> parts, bias = chaos.decompose(net, [[3.0]])
    >>> parts.shape, round(bias, 4)
    ((1, 2), 0.0)
    """
    if isinstance(model, nn.Module):
        check_model_tensors(model)
    view = as_mlp(model)
    if view.depth < 1 or view.output_dim != 1 or view.output_activation is not None:
        raise UnsupportedModel(
            "decompose needs hidden layers, one output and a linear output layer"
        )
    X = torch.as_tensor(_points(x), dtype=view.dtype, device=view.device)
    if X.shape[1] != view.input_dim:
        raise InvalidInput(f"x has {X.shape[1]} columns but the model takes {view.input_dim}")
    with torch.no_grad():
        h = X
        for lin, act in zip(view.linears[:-1], view.activations, strict=False):
            h = act(lin(h))
        w = view.linears[-1].weight[0]
        contrib = (h * w[None, :]).cpu().numpy().astype(np.float64)
        b = float(view.biases[-1][0])
    if not (np.isfinite(contrib).all() and np.isfinite(b)):
        raise InvalidInput(
            "the contributions overflow (non-finite values from finite weights and inputs); "
            "the weights or inputs are too large for the model's dtype"
        )
    return contrib, b
