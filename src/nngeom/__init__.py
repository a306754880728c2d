"""nngeom: the geometry of neural networks.

Knots and linear regions, permutation symmetry and Hessian spectra, tangent sensitivity,
trainable activation subnetworks, and chaotic time-series prediction; each on your own PyTorch
model in a few lines, from the shell on a saved model, and as a reproduction of its paper
(``nngeom reproduce ...``).
"""

from __future__ import annotations

# --- foundation -------------------------------------------------------------------------
from ._errors import (
    DataError as DataError,
    InvalidInput as InvalidInput,
    InvalidModel as InvalidModel,
    ModelFileError as ModelFileError,
    NngeomError as NngeomError,
    RunError as RunError,
    StudyError as StudyError,
    UnsupportedModel as UnsupportedModel,
)
from ._version import __version__ as __version__
from .modelfile import load_model as load_model, save_model as save_model
from .nets import MLP as MLP, as_mlp as as_mlp, mlp as mlp
from .view import ModelView as ModelView, model_view as model_view
from .train import TrainResult as TrainResult
from . import train as train  # a module that is also the function (see _callable.py)

# --- knots and regions (knots.py, regions.py) ---------------------------------------------
from .knots import (
    Knots as Knots,
    knot_upper_bound as knot_upper_bound,
    tight_knot_network as tight_knot_network,
)
from . import knots as knots  # a module that is also the function
from .regions import (
    LineRegions as LineRegions,
    Plane as Plane,
    activation_patterns as activation_patterns,
    plane_through as plane_through,
    Regions2D as Regions2D,
    boundary_distances as boundary_distances,
    pattern_statistics as pattern_statistics,
    regions_2d as regions_2d,
    regions_along_lines as regions_along_lines,
    regions_on_line as regions_on_line,
)

# --- symmetry and Hessians (symmetry.py, hessian.py) --------------------------------------
from .hessian import (
    SpectralDensity as SpectralDensity,
    hessian_eigenvalues as hessian_eigenvalues,
    spectral_density as spectral_density,
)
from . import hessian as hessian  # a module that is also the function
from .symmetry import (
    count_equivalent_minima as count_equivalent_minima,
    count_permutation_points as count_permutation_points,
    CriticalPointSearch as CriticalPointSearch,
    DenseLayer as DenseLayer,
    dense_hidden_layers as dense_hidden_layers,
    find_permutation_saddle as find_permutation_saddle,
    permute as permute,
)

# --- tangent sensitivity (sensitivity.py) --------------------------------------------------
from .measures import (
    bootstrap_ci as bootstrap_ci,
    granulated_psi as granulated_psi,
    input_jacobian_norm as input_jacobian_norm,
    kendall_tau as kendall_tau,
)
from .sensitivity import (
    tangent_sensitivity as tangent_sensitivity,
    tangent_sensitivity_bounds as tangent_sensitivity_bounds,
    tangent_sensitivity_hutchinson as tangent_sensitivity_hutchinson,
)

# --- trainable activations (activations.py) ------------------------------------------------
from .activations import (
    VAF as VAF,
    Rational as Rational,
    SwishBeta as SwishBeta,
    VAFExport as VAFExport,
    export_activations as export_activations,
    make_baseline as make_baseline,
    param_groups as param_groups,
)

# --- chaotic time series (chaos/) -----------------------------------------------------------
from . import chaos as chaos

# --- pictures (plots.py) and a report about your own model (analyze.py) ----------------------
from . import plots as plots
from .analyze import Analysis as Analysis
from . import analyze as analyze  # a module that is also the function
