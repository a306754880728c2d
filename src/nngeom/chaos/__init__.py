"""Chaotic time-series prediction after Lapedes & Farber ("How Neural Nets Work", NIPS 1987).

Systems with exact generators (:mod:`.systems`), a leakage-proof delay embedding
(:mod:`.embedding`), predictors behind one interface (:mod:`.predictors`), metrics
(:mod:`.metrics`), real series (:mod:`.series`) and the bump construction (:mod:`.bumps`).
"""

from __future__ import annotations

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
from .predictors import ESN as ESN
from .predictors import NVAR as NVAR
from .predictors import DirectForecaster as DirectForecaster
from .predictors import (
    IteratedForecaster as IteratedForecaster,
)
from .predictors import (
    LapedesFarberMLP as LapedesFarberMLP,
)
from .predictors import LinearAR as LinearAR
from .predictors import LocalLinear as LocalLinear
from .predictors import Polynomial as Polynomial
from .predictors import contexts as contexts
from .predictors import make_regressor as make_regressor
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
