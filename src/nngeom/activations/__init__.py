"""Trainable activation subnetworks (VAF) and the baselines they are compared with.

A VAF ("variable activation function", Apicella et al. 2019) is an element-wise activation computed
by a tiny ``1 -> k -> 1`` network::

    VAF(z) = a_0 + sum_{j=1..k} a_j * g(b_j * z + c_j),      g = ReLU (default) or tanh

with ``3k + 1`` parameters shared per layer (the paper), per channel, or per neuron. With the
ReLU hidden unit a VAF is a learned piecewise-linear function with at most ``k`` breakpoints, so a
network using it stays piecewise linear: :func:`nngeom.nets.as_mlp` accepts it and
:func:`nngeom.knots` counts its knots.

The modules, each about one thing:

* ``_vaf``: the :class:`VAF` module (parameters, validation, forward, analysis and display);
* ``_kernels``: the formula and its code paths, chosen by :func:`choose_kernel`;
* ``_init_fits``: the initial parameters (exact, or least-squares fits to a target activation);
* ``_piecewise_form``: what VAF and its export share (per-unit parameters, the exact
  piecewise-linear form);
* ``_export``: :class:`VAFExport` and :func:`export_activations` (standard ops only);
* ``_baselines``: :class:`SwishBeta`, :class:`Rational` and :func:`make_baseline`;
* ``_param_groups``: :func:`param_groups` and :func:`is_trainable_activation`.
"""

from __future__ import annotations

from ._baselines import BASELINES as BASELINES
from ._baselines import Rational as Rational
from ._baselines import SwishBeta as SwishBeta
from ._baselines import make_baseline as make_baseline
from ._export import VAFExport as VAFExport
from ._export import export_activations as export_activations
from ._init_fits import HIDDEN as HIDDEN
from ._init_fits import INITS as INITS
from ._kernels import CHUNK as CHUNK
from ._kernels import FUSED_COLS as FUSED_COLS
from ._kernels import FUSED_KERNELS as FUSED_KERNELS
from ._kernels import FUSED_MIN as FUSED_MIN
from ._kernels import KERNELS as KERNELS
from ._kernels import SCRATCH as SCRATCH
from ._kernels import SMALL as SMALL
from ._kernels import FusedKernels as FusedKernels
from ._kernels import choose_kernel as choose_kernel
from ._kernels import generic_vaf as generic_vaf
from ._kernels import hinge_vaf as hinge_vaf
from ._kernels import scratch_bytes as scratch_bytes
from ._kernels import vaf_reference as vaf_reference
from ._param_groups import is_trainable_activation as is_trainable_activation
from ._param_groups import param_groups as param_groups
from ._vaf import MAX_PARAMETERS as MAX_PARAMETERS
from ._vaf import SHARES as SHARES
from ._vaf import VAF as VAF

__all__ = [
    "VAF",
    "VAFExport",
    "SwishBeta",
    "Rational",
    "make_baseline",
    "BASELINES",
    "param_groups",
    "export_activations",
    "vaf_reference",
    "is_trainable_activation",
    "choose_kernel",
    "KERNELS",
    "generic_vaf",
    "hinge_vaf",
    "FusedKernels",
    "FUSED_KERNELS",
    "scratch_bytes",
]
