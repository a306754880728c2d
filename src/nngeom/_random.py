"""One way to draw random numbers: ``seed=`` or ``generator=`` on every public function.

The rule (``docs/DESIGN.md``, "Randomness"): a public function that draws random numbers takes
``seed: int = 0`` and ``generator: torch.Generator | None = None``, keyword-only.

- ``generator`` given: it is used (and advanced), ``seed`` is ignored. Calling twice with two
  generators in the same state gives the same result.
- ``generator`` not given: a fresh generator seeded with ``seed`` is used, so the same seed gives
  the same result everywhere, whatever else the program did. The global RNGs of torch, numpy
  and Python are never read nor seeded.

Code that draws with numpy (scipy, scikit-learn, the chaos systems) gets its
``numpy.random.Generator`` from :func:`numpy_rng`, which derives it from the same two arguments.
"""

from __future__ import annotations

import numpy as np
import torch

from ._checks import check_seed
from ._errors import InvalidInput

#: The one default seed: ``seed=0`` unless the caller says otherwise.
DEFAULT_SEED = 0


def _check_generator(generator: object) -> torch.Generator | None:
    if generator is not None and not isinstance(generator, torch.Generator):
        raise InvalidInput(
            f"generator must be a torch.Generator or None, got {type(generator).__name__}; "
            "pass torch.Generator().manual_seed(k), or seed=k instead"
        )
    return generator


def torch_generator(
    seed: object = DEFAULT_SEED,
    generator: object = None,
    *,
    device: torch.device | str | None = None,
) -> torch.Generator:
    """The ``torch.Generator`` a function draws from: ``generator`` itself, else a fresh one seeded
    with ``seed`` on ``device`` (CPU by default).

    A given ``generator`` on another device than ``device`` is refused (torch draws on the
    generator's own device), with a message that says so.

    >>> g = torch_generator(3)
    >>> torch.rand(2, generator=g).tolist() == torch.rand(2, generator=torch_generator(3)).tolist()
    True
    """
    g = _check_generator(generator)
    dev = torch.device("cpu" if device is None else device)
    if g is not None:
        if g.device.type != dev.type:
            raise InvalidInput(
                f"generator is on {g.device.type} but the numbers are drawn on {dev.type}; "
                f"pass a torch.Generator(device={dev.type!r}) or seed= instead"
            )
        return g
    return torch.Generator(device=dev).manual_seed(check_seed(seed))


def numpy_rng(seed: object = DEFAULT_SEED, generator: object = None) -> np.random.Generator:
    """A ``numpy.random.Generator`` for the same ``seed=`` / ``generator=`` pair.

    From a torch ``generator``, 64 random bits are drawn (advancing it) to seed numpy's PCG64;
    from ``seed``, numpy's generator is seeded with ``seed`` directly.

    >>> float(numpy_rng(0).random()) == float(np.random.default_rng(0).random())
    True
    """
    g = _check_generator(generator)
    if g is None:
        return np.random.default_rng(check_seed(seed))
    bits = torch.randint(0, 2**62, (2,), generator=g, device=g.device, dtype=torch.int64)
    return np.random.default_rng([int(b) for b in bits.tolist()])


def derived_seed(seed: object = DEFAULT_SEED, generator: object = None) -> int:
    """An int seed for code that only takes ints (a library's ``random_state``): ``seed`` itself,
    or 62 bits drawn from ``generator``."""
    g = _check_generator(generator)
    if g is None:
        return check_seed(seed)
    return int(torch.randint(0, 2**62, (1,), generator=g, device=g.device).item())


# The bit positions of one byte: a random byte unpacks into 8 independent fair bits.
_BIT_POSITIONS = torch.arange(8, dtype=torch.uint8)


def random_bits(
    shape: tuple[int, ...],
    generator: torch.Generator,
    *,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Independent fair 0/1 entries of ``shape`` in ``dtype`` on ``device``.

    Random bytes drawn from ``generator`` (on its own device) and unpacked to 8 bits each: one
    draw per 8 entries.

    >>> random_bits((2, 3), torch_generator(0)).shape
    torch.Size([2, 3])
    """
    import math

    n = math.prod(shape)
    raw = torch.randint(
        0, 256, ((n + 7) // 8,), generator=generator, dtype=torch.uint8, device=generator.device
    )
    bits = ((raw.unsqueeze(1) >> _BIT_POSITIONS.to(raw.device)) & 1).reshape(-1)[:n]
    return bits.view(shape).to(dtype=dtype, device=device if device is not None else raw.device)


def rademacher(
    shape: tuple[int, ...],
    generator: torch.Generator,
    *,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Independent Rademacher (+-1, each with probability 1/2) entries of ``shape``:
    ``2 B - 1`` for :func:`random_bits` ``B``.

    >>> sorted(set(rademacher((100,), torch_generator(0)).tolist()))
    [-1.0, 1.0]
    """
    return random_bits(shape, generator, dtype=dtype, device=device).mul_(2).sub_(1)
