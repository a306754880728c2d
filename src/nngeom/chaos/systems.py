"""Chaotic systems with exact, reproducible generators.

* :func:`mackey_glass` integrates the delay differential equation
  ``dx/dt = a x(t - tau) / (1 + x(t - tau)^p) - b x(t)`` with the classical RK4 scheme on a grid
  of step ``step`` that divides ``tau``; the delayed value needed at a half step comes from the
  cubic Hermite interpolant of the stored solution and its derivative (dense output), so the
  global error is O(step^4) (:func:`mackey_glass_convergence` measures the order). The history
  ``x(t), t <= 0`` is explicit: a constant drawn from ``seed`` / ``generator`` (the default),
  the classic ``1.2``, any constant or a callable.
* :func:`logistic_map`, :func:`henon_map` (exact iterations) and :func:`lorenz` (RK4).

Every generator is pure Python/NumPy float64 arithmetic in a fixed order: the same arguments give
the same array on every run. Random initial states are drawn from ``generator`` when given (it is
advanced), else from ``seed`` (``nngeom._random.numpy_rng``).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from .._checks import check_int, check_number, check_real_tensor
from .._errors import InvalidInput
from .._random import numpy_rng

__all__ = [
    "mackey_glass",
    "mackey_glass_convergence",
    "ConvergenceResult",
    "logistic_map",
    "henon_map",
    "lorenz",
    "LYAPUNOV_EXPONENTS",
]

# Largest Lyapunov exponents (per time unit / per iteration) of the standard parameter sets.
# logistic r=4: ln 2 (exact); Henon (1.4, 0.3): 0.419 (Henon 1976 / Sprott 2003); Lorenz
# (10, 28, 8/3): 0.9056 (Sprott 2003); Mackey-Glass tau=17: about 0.006-0.009 per time unit in the
# literature (Farmer 1982): we use 0.0086 and say so wherever it is used.
LYAPUNOV_EXPONENTS: dict[str, float] = {
    "logistic": math.log(2.0),
    "henon": 0.419,
    "lorenz": 0.9056,
    "mackey_glass_17": 0.0086,
}

# The most samples one call generates.
MAX_SAMPLES = 50_000_000
# The most integration steps / iterations one call runs (pure-Python loops, checked from the
# declared sizes before any work).
MAX_STEPS = 20_000_000
# Mackey-Glass history x(t), t <= 0: the classic constant, and the half-width of the uniform
# draw around it of history="random".
CLASSIC_HISTORY = 1.2
HISTORY_SPREAD = 0.2
# The random starting points: the logistic map's x0 in (0.1, 0.9); the Henon map's (x, y) in
# +-0.1; the Lorenz state (1, 1, 1) +- 0.5.
LOGISTIC_START = (0.1, 0.9)
HENON_START = 0.1
LORENZ_CENTRE = 1.0
LORENZ_SPREAD = 0.5
# A Henon orbit beyond this |x| has escaped the attractor (it diverges).
HENON_ESCAPE = 1e6
# The relative tolerance of "tau (or dt) is a whole number of steps".
STEP_TOLERANCE = 1e-9
# Mackey-Glass: the history's derivative by central differences of step EPS_FRACTION * step.
EPS_FRACTION = 1e-4


def _check_n(n: object, name: str = "n") -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or int(n) < 1:
        raise InvalidInput(f"{name} must be a positive int (the number of samples), got {n!r}")
    if int(n) > MAX_SAMPLES:
        raise InvalidInput(
            f"{name}={n} is more samples than nngeom generates at once ({MAX_SAMPLES:,}); "
            "generate fewer samples"
        )
    return int(n)


def _positive(x: object, name: str) -> float:
    return check_number(name, x, minimum=0.0, strict_min=True)


def _finite(x: object, name: str) -> float:
    return check_number(name, x)


def _steps_of(span: float, h: float, what: str) -> int:
    """``round(span / h)`` grid steps, refused above :data:`MAX_STEPS` (before any allocation)."""
    r = span / h
    if not math.isfinite(r) or r > MAX_STEPS:
        raise InvalidInput(
            f"{what}={span:g} with step={h:g} is {r:.3g} integration steps, more than nngeom's "
            f"limit of {MAX_STEPS:,} per call; use a larger step or a smaller {what}"
        )
    return round(r)


def _check_total(total: int, what: str) -> None:
    if total > MAX_STEPS:
        raise InvalidInput(
            f"{what} needs {total:,} integration steps / iterations, more than nngeom's limit of "
            f"{MAX_STEPS:,} per call; generate fewer samples, sample less often or use a larger step"
        )


def _ratio(big: float, small: float, what: str) -> int:
    m = _steps_of(big, small, what)
    if m < 1 or abs(m * small - big) > STEP_TOLERANCE * max(1.0, big):
        raise InvalidInput(
            f"{what}: {big} is not an integer multiple of step={small}; choose a step that divides it "
            f"(e.g. step={big / max(1, math.ceil(big / small)):.6g})"
        )
    return int(m)


def mackey_glass(
    n: int,
    tau: float = 17.0,
    *,
    a: float = 0.2,
    b: float = 0.1,
    p: float = 10.0,
    dt: float = 1.0,
    step: float = 0.1,
    history: str | float | Callable[[float], float] = "random",
    transient: float = 500.0,
    seed: int = 0,
    generator: torch.Generator | None = None,
) -> np.ndarray:
    """Sample the Mackey-Glass delay differential equation every ``dt`` time units.

    Args:
        n: number of samples returned.
        tau: the delay (17: mildly chaotic; 30: more chaotic).
        a, b, p: the equation's parameters (0.2, 0.1, 10 are the standard ones).
        dt: sampling interval; must be a multiple of ``step``.
        step: RK4 step; must divide ``tau`` (and ``dt``) so the grid meets the history's
            derivative discontinuities at ``t = k tau``.
        history: ``x(t)`` for ``t <= 0``: ``"random"`` (the default: the constant
            ``1.2 + 0.2 u``, ``u ~ U(-1, 1)`` drawn from ``generator`` or ``seed``),
            ``"classic"`` (``x(t) = 1.2``), a constant, or a callable of ``t``.
        transient: time units integrated and dropped before the first returned sample.
        seed, generator: the draw of ``history="random"`` (``generator``, when given, is
            advanced; otherwise ``seed``); unused by the other histories.

    Returns:
        float64 array of shape ``(n,)``: ``x(transient + i dt)`` for ``i = 0..n-1``.

    >>> from nngeom import chaos
    >>> x = chaos.mackey_glass(200, tau=17.0, seed=0)
    >>> x.shape, bool(0.2 < x.min() and x.max() < 1.5)
    ((200,), True)
    """
    n = _check_n(n)
    tau = _positive(tau, "tau")
    dt = _positive(dt, "dt")
    h = _positive(step, "step")
    a, b, p = _finite(a, "a"), _finite(b, "b"), _finite(p, "p")
    transient = check_number("transient", transient, minimum=0.0)
    m = _ratio(tau, h, "tau")
    every = _ratio(dt, h, "dt")
    skip = _steps_of(transient, h, "transient")
    total = skip + (n - 1) * every  # grid index of the last sample
    _check_total(total + m, "mackey_glass")
    hist = _history(history, seed, generator)
    try:
        xs = _integrate_mg(hist, m, h, total, a, b, p)
    except (OverflowError, ZeroDivisionError):
        xs = [math.inf]
    out = np.asarray(xs[skip : total + 1 : every], dtype=np.float64)
    if out.size != n or not np.isfinite(out).all():
        raise InvalidInput(
            "the Mackey-Glass integration diverged (non-finite values); check a, b, p, the "
            "history and the step"
        )
    return out


HISTORIES = ("random", "classic")


def _history(history: object, seed: object, generator: object) -> Callable[[float], float]:
    if isinstance(history, str):
        if history not in HISTORIES:
            raise InvalidInput(
                f"history must be one of {list(HISTORIES)}, a number or a callable of t, got "
                f"{history!r:.60}"
            )
        c = CLASSIC_HISTORY
        if history == "random":
            c += HISTORY_SPREAD * float(numpy_rng(seed, generator).uniform(-1.0, 1.0))
        return lambda t: c
    if callable(history):
        user = history

        def checked(t: float) -> float:
            v = user(t)
            if isinstance(v, torch.Tensor):
                if v.numel() != 1 or v.is_complex() or v.device.type == "meta":
                    raise InvalidInput(
                        f"history({t}) returned {v!r:.60}, not one real number; history must "
                        "map t to a float"
                    )
                v = v.detach().cpu().item()
            if isinstance(v, bool) or not isinstance(v, numbers.Real):
                raise InvalidInput(
                    f"history({t}) returned {v!r:.60}, not a real number; history must map t "
                    "to a float"
                )
            try:
                return float(v)
            except (OverflowError, TypeError, ValueError):
                raise InvalidInput(
                    f"history({t}) returned {v!r:.40}, not a float64 number; history must map t "
                    "to a float"
                ) from None

        return checked
    c = check_number("history", history)
    return lambda t: c


def _integrate_mg(
    hist: Callable[[float], float], m: int, h: float, total: int, a: float, b: float, p: float
) -> list[float]:
    """RK4 on the grid ``t_g = g h``, ``g = 0..total``, with delay ``tau = m h`` (``m >= 1``).

    The step from ``t_k`` to ``t_{k+1}`` needs ``x(t_k - tau) = x_{k-m}`` and
    ``x(t_{k+1} - tau) = x_{k+1-m}`` (grid values) and the half-step value
    ``x(t_k + h/2 - tau)``: the cubic Hermite midpoint ``(x0 + x1)/2 + h (f0 - f1)/8`` of the
    interval ``[k-m, k+1-m]``, with ``f`` the derivative of the history (left of 0) or of the
    solution (right of 0, the ODE's right-hand side). Returns ``x_0..x_total``.
    """
    eps = h * EPS_FRACTION
    hx = [float(hist(-(m - i) * h)) for i in range(m + 1)]  # grid -m..0
    if not all(math.isfinite(v) for v in hx):
        raise InvalidInput("history(t) returned a non-finite value")
    hf = [
        (float(hist(-(m - i) * h + eps)) - float(hist(-(m - i) * h - eps))) / (2 * eps)
        for i in range(m)
    ]
    hf.append((3.0 * hx[m] - 4.0 * float(hist(-eps)) + float(hist(-2.0 * eps))) / (2.0 * eps))

    def rhs(xk: float, xd: float) -> float:
        return a * xd / (1.0 + abs(xd) ** p) - b * xk

    xs = [hx[m]]  # solution x_0, x_1, ...
    fo = [rhs(hx[m], hx[0])]  # its derivative (ODE right-hand side) at grid 0, 1, ...
    half, h8, h6 = 0.5 * h, h / 8.0, h / 6.0
    for k in range(total):
        j = k - m  # delayed interval [j, j+1]
        if j + 1 <= 0:
            d0, d1 = hx[j + m], hx[j + 1 + m]
            dm = 0.5 * (d0 + d1) + h8 * (hf[j + m] - hf[j + 1 + m])
        else:
            d0, d1 = xs[j], xs[j + 1]
            dm = 0.5 * (d0 + d1) + h8 * (fo[j] - fo[j + 1])
        xk = xs[k]
        k1 = fo[k]
        k2 = rhs(xk + half * k1, dm)
        k3 = rhs(xk + half * k2, dm)
        k4 = rhs(xk + h * k3, d1)
        xn = xk + h6 * (k1 + 2.0 * k2 + 2.0 * k3 + k4)
        xs.append(xn)
        fo.append(rhs(xn, d1))
    return xs


@dataclass(frozen=True)
class ConvergenceResult:
    """Errors of :func:`mackey_glass` against a fine reference, per step size.

    ``errors[i]`` is the max abs difference over the samples ``x(0..t_end)`` between step
    ``steps[i]`` and the reference step; ``orders[i] = log2(errors[i] / errors[i+1]) /
    log2(steps[i] / steps[i+1])``; ``order`` is their least-squares slope of log error vs log step.
    """

    steps: tuple[float, ...]
    errors: tuple[float, ...]
    orders: tuple[float, ...]
    order: float
    reference_step: float


def mackey_glass_convergence(
    tau: float = 17.0,
    t_end: float = 100.0,
    steps: tuple[float, ...] = (1.0, 0.5, 0.25, 0.125),
    reference_step: float = 1.0 / 256.0,
    *,
    history: str | float | Callable[[float], float] = "random",
    seed: int = 0,
    generator: torch.Generator | None = None,
) -> ConvergenceResult:
    """Measure the convergence order of the Mackey-Glass integrator (RK4 + Hermite: about 4).

    Every step size integrates the same history (``history``, ``seed``, ``generator`` as in
    :func:`mackey_glass`; a random one is drawn once).

    >>> from nngeom import chaos
    >>> res = chaos.mackey_glass_convergence(t_end=20.0, steps=(1.0, 0.5), reference_step=0.125)
    >>> res.steps, round(res.order, 1)
    ((1.0, 0.5), 4.0)
    """
    try:
        steps = tuple(steps)
    except TypeError:
        raise InvalidInput(f"steps must be a sequence of step sizes, got {steps!r}") from None
    if len(steps) < 2:
        raise InvalidInput("steps needs at least two step sizes")
    steps = tuple(_positive(s, "each step") for s in steps)
    if len(set(steps)) != len(steps):
        raise InvalidInput(f"steps must be distinct step sizes (an order needs two), got {steps}")
    t_end = check_number("t_end", t_end, minimum=1.0, maximum=float(MAX_SAMPLES - 1))
    reference_step = _positive(reference_step, "reference_step")
    if reference_step >= min(steps):
        raise InvalidInput(f"reference_step={reference_step} must be finer than every step {steps}")
    n = int(t_end) + 1
    hist = _history(history, seed, generator)  # one draw for every step size
    ref = mackey_glass(n, tau, step=reference_step, transient=0.0, history=hist)
    errors = tuple(
        float(np.max(np.abs(mackey_glass(n, tau, step=s, transient=0.0, history=hist) - ref)))
        for s in steps
    )
    if not all(e > 0 for e in errors):
        raise InvalidInput(
            f"a step equals the reference to the last bit (errors {errors}): no order can be "
            "measured; use coarser steps or a finer reference_step"
        )
    orders = tuple(
        math.log(errors[i] / errors[i + 1]) / math.log(steps[i] / steps[i + 1])
        for i in range(len(steps) - 1)
    )
    slope = float(np.polyfit(np.log(steps), np.log(errors), 1)[0])
    return ConvergenceResult(tuple(float(s) for s in steps), errors, orders, slope, reference_step)


def logistic_map(
    n: int,
    r: float = 4.0,
    x0: float | None = None,
    *,
    seed: int = 0,
    generator: torch.Generator | None = None,
) -> np.ndarray:
    """Iterate ``x -> r x (1 - x)``. ``x0`` (in (0, 1)) or drawn uniformly in (0.1, 0.9) from
    ``generator`` (advanced) or ``seed``.

    Returns float64 ``(n,)``: ``x_0, ..., x_{n-1}``.

    >>> from nngeom import chaos
    >>> chaos.logistic_map(4, x0=0.3).round(4)
    array([0.3   , 0.84  , 0.5376, 0.9943])
    """
    n = _check_n(n)
    r = check_number("r", r)
    if not (0 < r <= 4):
        raise InvalidInput(f"r must be in (0, 4] so the map keeps [0, 1], got {r}")
    if x0 is None:
        x0 = float(numpy_rng(seed, generator).uniform(*LOGISTIC_START))
    x = check_number("x0", x0)
    if not (0.0 < x < 1.0):
        raise InvalidInput(f"x0 must be in (0, 1), got {x0}")
    out = np.empty(n)
    for i in range(n):
        out[i] = x
        x = r * x * (1.0 - x)
    return out


def henon_map(
    n: int,
    a: float = 1.4,
    b: float = 0.3,
    x0: tuple[float, float] | None = None,
    transient: int = 100,
    *,
    seed: int = 0,
    generator: torch.Generator | None = None,
) -> np.ndarray:
    """Iterate ``(x, y) -> (1 - a x^2 + y, b x)``; returns float64 ``(n, 2)`` after ``transient``.

    ``x0``, or drawn uniformly in ``+-0.1`` from ``generator`` (advanced) or ``seed``.

    >>> from nngeom import chaos
    >>> xy = chaos.henon_map(100, seed=0)
    >>> xy.shape, bool(abs(xy[:, 0]).max() < 1.5)
    ((100, 2), True)
    """
    n = _check_n(n)
    a, b = _finite(a, "a"), _finite(b, "b")
    transient = check_int("transient", transient, minimum=0, maximum=MAX_STEPS)
    _check_total(transient + n, "henon_map")
    if x0 is None:
        rng = numpy_rng(seed, generator)
        x, y = (float(v) for v in rng.uniform(-HENON_START, HENON_START, size=2))
    else:
        x, y = _point(x0, 2)
    out = np.empty((n, 2))
    for i in range(transient + n):
        if i >= transient:
            out[i - transient] = (x, y)
        x, y = 1.0 - a * x * x + y, b * x
        if not math.isfinite(x) or abs(x) > HENON_ESCAPE:
            raise InvalidInput(
                "the Henon orbit escaped to infinity; use a, b, x0 near the attractor"
            )
    return out


def lorenz(
    n: int,
    dt: float = 0.02,
    step: float = 0.005,
    sigma: float = 10.0,
    rho: float = 28.0,
    beta: float = 8.0 / 3.0,
    x0: tuple[float, float, float] | None = None,
    transient: float = 20.0,
    *,
    seed: int = 0,
    generator: torch.Generator | None = None,
) -> np.ndarray:
    """Integrate the Lorenz system with RK4 (step ``step``), sampled every ``dt``: float64 ``(n, 3)``.

    ``x0``, or drawn uniformly in ``(1, 1, 1) +- 0.5`` from ``generator`` (advanced) or ``seed``.

    >>> from nngeom import chaos
    >>> xyz = chaos.lorenz(50, seed=0, transient=1.0)
    >>> xyz.shape, xyz.dtype
    ((50, 3), dtype('float64'))
    """
    n = _check_n(n)
    h = _positive(step, "step")
    every = _ratio(_positive(dt, "dt"), h, "dt")
    transient = check_number("transient", transient, minimum=0.0)
    skip = _steps_of(transient, h, "transient")
    sigma, rho, beta = _finite(sigma, "sigma"), _finite(rho, "rho"), _finite(beta, "beta")
    _check_total(skip + (n - 1) * every, "lorenz")
    if x0 is None:
        rng = numpy_rng(seed, generator)
        s = np.full(3, LORENZ_CENTRE) + rng.uniform(-LORENZ_SPREAD, LORENZ_SPREAD, size=3)
    else:
        s = np.array(_point(x0, 3), dtype=np.float64)

    out = np.empty((n, 3))
    total = skip + (n - 1) * every
    _lorenz_loop(tuple(float(v) for v in s), out, h, skip, every, total, sigma, rho, beta)
    if not np.isfinite(out).all():
        raise InvalidInput(
            "the Lorenz integration diverged (non-finite values); use a smaller step or "
            "parameters and x0 near the attractor"
        )
    return out


def _lorenz_loop(
    s: tuple[float, ...],
    out: np.ndarray,
    h: float,
    skip: int,
    every: int,
    total: int,
    sigma: float,
    rho: float,
    beta: float,
) -> None:
    """RK4 in Python floats (the same operations in the same order as the array form)."""
    x, y, z = s
    half, sixth = 0.5 * h, h / 6.0
    j = 0
    for k in range(total + 1):
        if k >= skip and (k - skip) % every == 0:
            out[j] = (x, y, z)
            j += 1
        if k == total:
            break
        a1, b1, c1 = sigma * (y - x), x * (rho - z) - y, x * y - beta * z
        x2, y2, z2 = x + half * a1, y + half * b1, z + half * c1
        a2, b2, c2 = sigma * (y2 - x2), x2 * (rho - z2) - y2, x2 * y2 - beta * z2
        x3, y3, z3 = x + half * a2, y + half * b2, z + half * c2
        a3, b3, c3 = sigma * (y3 - x3), x3 * (rho - z3) - y3, x3 * y3 - beta * z3
        x4, y4, z4 = x + h * a3, y + h * b3, z + h * c3
        a4, b4, c4 = sigma * (y4 - x4), x4 * (rho - z4) - y4, x4 * y4 - beta * z4
        x = x + sixth * (a1 + 2 * a2 + 2 * a3 + a4)
        y = y + sixth * (b1 + 2 * b2 + 2 * b3 + b4)
        z = z + sixth * (c1 + 2 * c2 + 2 * c3 + c4)
        if not (abs(x) + abs(y) + abs(z) < math.inf):
            out[j:] = np.nan
            return


def _point(x0: object, dim: int) -> tuple[float, ...]:
    """``x0`` as ``dim`` finite floats (a tensor is read without its autograd graph)."""
    if isinstance(x0, torch.Tensor):
        check_real_tensor("x0", x0)
        x0 = x0.detach().cpu().numpy()
    try:
        vals = np.asarray(x0)
    except (TypeError, ValueError, RuntimeError, OverflowError):
        vals = None
    if vals is None or vals.dtype.kind not in "biuf" or vals.size != dim:
        raise InvalidInput(f"x0 must be {dim} real numbers, got {x0!r:.60}")
    out = tuple(float(v) for v in vals.reshape(-1))
    if not all(math.isfinite(v) for v in out):
        raise InvalidInput(f"x0 must be finite, got {x0!r:.60}")
    return out
