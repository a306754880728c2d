"""Chaotic time-series prediction after Lapedes & Farber ("How Neural Nets Work", NIPS 1987).

Systems with exact generators (:mod:`.systems`), a leakage-proof delay embedding
(:mod:`.embedding`), predictors behind one interface (:mod:`.predictors`: scikit-learn
estimators), metrics (:mod:`.metrics`), real series (:mod:`.series`) and the bump construction
(:mod:`.bumps`). Results are NumPy arrays and Python floats (the NumPy / scikit-learn world).

The predictors import scikit-learn (and with it pandas and scipy.stats), the heaviest import of
the package: they are loaded on first use (``nngeom.chaos.LinearAR`` and the other predictor names
come from :mod:`.predictors` when first asked for), so ``import nngeom`` does not pay for it.
"""

from __future__ import annotations

import typing

from .bumps import bump as bump
from .bumps import bump_network as bump_network
from .bumps import decompose as decompose
from .bumps import ridge as ridge
from .bumps import slab as slab
from .embedding import Split as Split
from .embedding import as_series as as_series
from .embedding import embed as embed
from .embedding import embed_indices as embed_indices
from .embedding import split as split
from .metrics import log10_nrmse_curve as log10_nrmse_curve
from .metrics import mean_spread as mean_spread
from .metrics import nrmse as nrmse
from .metrics import nrmse_at as nrmse_at
from .metrics import nrmse_curve as nrmse_curve
from .metrics import smape as smape
from .metrics import valid_prediction_time as valid_prediction_time
from .series import read_csv_column as read_csv_column
from .series import santafe_laser as santafe_laser
from .series import sunspots as sunspots
from .series import write_csv_column as write_csv_column
from .systems import LYAPUNOV_EXPONENTS as LYAPUNOV_EXPONENTS
from .systems import henon_map as henon_map
from .systems import logistic_map as logistic_map
from .systems import lorenz as lorenz
from .systems import mackey_glass as mackey_glass
from .systems import mackey_glass_convergence as mackey_glass_convergence

# The names of :mod:`.predictors` re-exported here, imported on first use.
_PREDICTORS = (
    "DirectForecaster",
    "ESN",
    "IteratedForecaster",
    "LapedesFarberMLP",
    "LinearAR",
    "LocalLinear",
    "NVAR",
    "Polynomial",
    "contexts",
    "make_regressor",
)

__all__ = [
    "LYAPUNOV_EXPONENTS",
    "Split",
    "as_series",
    "bump",
    "bump_network",
    "decompose",
    "embed",
    "embed_indices",
    "henon_map",
    "log10_nrmse_curve",
    "logistic_map",
    "lorenz",
    "mackey_glass",
    "mackey_glass_convergence",
    "mean_spread",
    "nrmse",
    "nrmse_at",
    "nrmse_curve",
    "read_csv_column",
    "ridge",
    "santafe_laser",
    "slab",
    "smape",
    "split",
    "sunspots",
    "valid_prediction_time",
    "write_csv_column",
    *_PREDICTORS,
]

if typing.TYPE_CHECKING:
    from .predictors import ESN as ESN
    from .predictors import NVAR as NVAR
    from .predictors import DirectForecaster as DirectForecaster
    from .predictors import IteratedForecaster as IteratedForecaster
    from .predictors import LapedesFarberMLP as LapedesFarberMLP
    from .predictors import LinearAR as LinearAR
    from .predictors import LocalLinear as LocalLinear
    from .predictors import Polynomial as Polynomial
    from .predictors import contexts as contexts
    from .predictors import make_regressor as make_regressor


def __getattr__(name: str) -> typing.Any:
    if name in _PREDICTORS:
        from . import predictors

        return getattr(predictors, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_PREDICTORS))
