"""Study: permutation saddles, equal-loss valleys and Hessian spectra (Brea et al. 2019).

The paper: swapping two neurons of a hidden layer leaves a network's function unchanged, so
every minimum has ``prod n_k!`` equivalent copies; between them lie *permutation points*
(two neurons of layer ``k`` with equal incoming vectors), which the paper shows to be critical
points with at least ``n_{k+1}`` zero Hessian eigenvalues, connected by equal-loss valleys, more
numerous than the minima by a stated factor, and (numerically, in a toy network and on MNIST)
sometimes first-order saddles.

What is run (:mod:`.tasks`): the paper's toy task with every pair of neurons of several
students (plus students with several outputs, not in the paper), a constructed small
multilayer net with full Hessian spectra, the paper's ``784-100-100-10`` net on Fashion-MNIST
(the stand-in for MNIST) with Lanczos extreme eigenvalues and the zero-mode analysis of the
flat directions, and the counting formulas against enumeration. The verdicts
(:func:`.analysis.verdicts`) are computed from the numbers; :mod:`.analysis` also derives what
``index + zeros >= n_{k+1}`` implies for first-order saddles in multi-output layers.
"""

from __future__ import annotations

from .._typed import typed_study
from .analysis import PAPER, Point, departures, notes, points, protocol, tables, verdicts
from .figures import figures
from .tasks import (
    SCALE_NAMES,
    CountingResult,
    CountingTask,
    MnistTask,
    MultilayerResult,
    TeacherMultilayerTask,
    ToyResult,
    ToyTask,
    tasks,
)

STUDY = typed_study(
    name="saddles",
    title="Permutation saddles, equal-loss valleys and Hessian spectra",
    paper=PAPER,
    task_types=[ToyTask, TeacherMultilayerTask, MnistTask, CountingTask],
    result_types={
        ToyTask: ToyResult,
        TeacherMultilayerTask: MultilayerResult,
        MnistTask: MultilayerResult,
        CountingTask: CountingResult,
    },
    tasks=tasks,
    verdicts=verdicts,
    figures=figures,
    tables=tables,
    protocol=protocol,
    departures=departures,
    notes=notes,
    order=10,
)

__all__ = [
    "PAPER",
    "SCALE_NAMES",
    "STUDY",
    "CountingResult",
    "CountingTask",
    "MnistTask",
    "MultilayerResult",
    "Point",
    "TeacherMultilayerTask",
    "ToyResult",
    "ToyTask",
    "departures",
    "figures",
    "notes",
    "points",
    "protocol",
    "tables",
    "tasks",
    "verdicts",
]
