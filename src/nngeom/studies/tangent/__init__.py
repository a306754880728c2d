"""Study: tangent sensitivity and the generalization gap (Daróczy, arXiv 2006.06780).

The paper defines tangent sensitivity ``TS_k(x) = ||d/dx grad_theta f_k(x)||_F``, derives easily
computable bounds on it for ReLU MLPs, relates it to the activation regions around the data,
and reports (on CIFAR-10) that even simple bounds and measures are associated with the
empirical generalization gap.

Two parts, both on Fashion-MNIST (CIFAR-10 is not available offline):

* **the training curve** (the paper's experiment, following the authors' public code): one
  wide ReLU MLP trained for a fixed number of epochs; after every epoch, tangent sensitivity,
  the input-Jacobian norm and nngeom's bounds on held-out examples, per class, against the gap
  between held-out and training loss (:class:`~.tasks.TrainingCurve`);
* **the cross-model grid** (Jiang et al. 2020's protocol): a 3^k grid of MLPs, each trained to
  one criterion (cross-entropy 0.01 or 99% training accuracy; nets that miss it are excluded
  and counted), and one comparison declared primary beforehand: tangent sensitivity against the
  input-Jacobian norm as predictors of the gap (:class:`~.tasks.GridNet`).

The verdicts (:func:`~.analysis.verdicts`) are computed from the numbers; the report's text
comes from them. Scales: ``test`` (the test suite), ``quick``, ``paper``, ``full``.
"""

from __future__ import annotations

from .._typed import typed_study
from .analysis import (
    CURVE_PREDICTORS,
    GRID_MEASURES,
    curve_stats,
    departures,
    grid_stats,
    notes,
    protocol,
    tables,
    verdicts,
)
from .figures import figures
from .tasks import (
    BOUND_FAMILIES,
    SCALE_NAMES,
    CurveResult,
    GridNet,
    NetResult,
    TrainingCurve,
    tasks,
)

__all__ = [
    "BOUND_FAMILIES",
    "CURVE_PREDICTORS",
    "CurveResult",
    "GRID_MEASURES",
    "GridNet",
    "NetResult",
    "PAPER",
    "SCALE_NAMES",
    "STUDY",
    "TrainingCurve",
    "curve_stats",
    "departures",
    "figures",
    "grid_stats",
    "notes",
    "protocol",
    "tables",
    "tasks",
    "verdicts",
]

PAPER = (
    'B. Daróczy, "Tangent Space Sensitivity and Distribution of Linear Regions in ReLU Networks", '
    'arXiv:2006.06780 (2020); journal version "Gaussian Perturbations in ReLU Networks and the '
    'Arrangement of Activation Regions", Mathematics 10(7):1123 (2022). Protocol of the training '
    "curve after the authors' code for D. Rácz, M. Petreczky, A. Csertán, B. Daróczy, "
    '"Optimization dependent generalization bound for ReLU networks based on sensitivity in the '
    'tangent bundle", arXiv:2310.17378 (2023); grid after Y. Jiang et al., "Fantastic '
    'generalization measures and where to find them", ICLR 2020'
)

STUDY = typed_study(
    name="tangent",
    title="Tangent sensitivity and generalization",
    paper=PAPER,
    task_types=[TrainingCurve, GridNet],
    result_types={TrainingCurve: CurveResult, GridNet: NetResult},
    tasks=tasks,
    verdicts=verdicts,
    figures=figures,
    tables=tables,
    protocol=protocol,
    departures=departures,
    notes=notes,
    order=30,
)
