"""The size limit shared by the chaos modules, checked before anything is allocated."""

from __future__ import annotations

from .._errors import InvalidInput

# The most array entries one call builds (an embedding's rows x lags, a forecast's starts x
# steps, a network's weights): about 800 MB of float64. Checked before allocating.
MAX_ENTRIES = 100_000_000


def check_entries(count: int, what: str) -> None:
    """Refuse building more than :data:`MAX_ENTRIES` values."""
    if count > MAX_ENTRIES:
        raise InvalidInput(
            f"{what} would hold {count:,} values, more than nngeom's limit of {MAX_ENTRIES:,}; "
            "use fewer rows or steps"
        )
