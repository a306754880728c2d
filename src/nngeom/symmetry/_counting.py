"""Exact counts: equivalent minima and permutation points of a network with given widths.

After Brea et al. (2019): a network with hidden widths ``n_1..n_L`` and distinct neurons has
``prod n_l!`` equivalent copies (:func:`count_equivalent_minima`); the K-th order permutation
points number at least ``permutation_point_factor(widths, K)`` times that
(:func:`count_permutation_points`). Counts are Python ints (big integers), factors Fractions.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from fractions import Fraction

from .._checks import check_positive_int, check_widths
from .._errors import InvalidInput

# Exact counts are products of factorials: beyond these sizes the big integers take minutes.
_MAX_COUNT_LAYERS = 1_000
_MAX_COUNT_WIDTH = 100_000
_MAX_COUNT_UNITS = 200_000


def _check_widths(widths: Sequence[int]) -> list[int]:
    """Hidden widths (at least one layer) small enough to count exactly."""
    ws = check_widths(widths, allow_empty=False)
    if len(ws) > _MAX_COUNT_LAYERS:
        raise InvalidInput(
            f"{len(ws):,} hidden layers are too many to count exactly (limit {_MAX_COUNT_LAYERS})"
        )
    for w in ws:
        if w > _MAX_COUNT_WIDTH:
            raise InvalidInput(
                f"width {w} is too large to count exactly (limit {_MAX_COUNT_WIDTH})"
            )
    if sum(ws) > _MAX_COUNT_UNITS:
        raise InvalidInput(
            f"the widths add up to {sum(ws):,} units, too many to count exactly "
            f"(limit {_MAX_COUNT_UNITS:,})"
        )
    return ws


def count_equivalent_minima(widths: Sequence[int]) -> int:
    """``prod_k n_k!``: the permutation copies of a minimum with distinct neurons (exact int).

    >>> import nngeom as ng
    >>> ng.count_equivalent_minima([3, 4])
    144
    """
    out = 1
    for w in _check_widths(widths):
        out *= math.factorial(w)
    return out


def permutation_point_factor(widths: Sequence[int], order: int = 1) -> Fraction:
    """The paper's factor ``sum_k C(n_k - K, K) / 2!^K`` (exact Fraction).

    784-100-100-10: 99 for K = 1, 4753/2 = 2376.5 for K = 2.

    >>> from nngeom.symmetry import permutation_point_factor
    >>> permutation_point_factor([100, 100]), permutation_point_factor([100, 100], 2)
    (Fraction(99, 1), Fraction(4753, 2))
    """
    K = check_positive_int("order", order)
    return sum(
        (Fraction(math.comb(n - K, K), 2**K) for n in _check_widths(widths) if n >= 2 * K),
        Fraction(0),
    )


def count_permutation_points(widths: Sequence[int], order: int = 1) -> int:
    """The number of K-th order permutation points (the paper's lower bound), an exact int.

    A K-th order permutation point of layer ``k`` comes from a critical point of the net with
    ``n_k - K`` neurons in layer ``k`` (with distinct neurons) by duplicating ``K`` of them:
    ``C(n_k - K, K)`` choices, and ``n_k! / 2!^K`` distinct orderings of the layer, times the
    ``prod_{l != k} n_l!`` orderings of the other layers; summed over the layers. This equals
    ``permutation_point_factor(widths, K) * count_equivalent_minima(widths)``.

    >>> import nngeom as ng
    >>> ng.count_permutation_points([3, 4])
    360
    """
    K = check_positive_int("order", order)
    ws = _check_widths(widths)
    facts = {w: math.factorial(w) for w in set(ws)}
    everything = math.prod(facts[w] for w in ws)  # prod_l n_l!
    total = 0
    for n in ws:
        if n < 2 * K:
            continue
        # n! / 2^K orderings of this layer times prod_{l != k} n_l! of the others
        total += math.comb(n - K, K) * (everything // facts[n]) * facts[n] // 2**K
    return total
