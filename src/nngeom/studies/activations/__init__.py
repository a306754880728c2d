"""Study: trainable activation subnetworks (VAF) against fixed and trainable baselines.

Apicella, Isgrò, Prevete, "A simple and efficient architecture for trainable activation
functions" (Neurocomputing 2019; arXiv 1902.03306) replace a fixed activation by a tiny
``1 -> k -> 1`` subnetwork trained with the rest of the net, and report (abstract) that this
"could lead to better results than using a pre-defined activation function, without
introducing a large amount of extra parameters".

Problems: an MLP and a small conv net on Fashion-MNIST (sklearn's 8x8 digits only where
Fashion-MNIST is not installed, and the report says so), sklearn's diabetes regression (a
stand-in for the paper's Delve sets) and a 1-D regression task whose trained nets' exact knots
are counted. Methods: ReLU, PReLU, SiLU, Swish-beta, the rational (5, 4) activation and VAF
(k=3, shared per layer, equal to ReLU at the start; both trainable ones have 10 parameters per
layer); on the 1-D task also a ReLU net of (nearly) the VAF net's parameter count.

One task (:class:`MethodRun`) = one method on one problem: it chooses the learning rate on a
validation split from a geometric grid that it extends while the choice is on an edge, then
trains every seed at that rate with early stopping (see ``_runs``). The verdicts (``_claims``)
pair the methods seed by seed. Scales: ``quick`` (3 seeds, small subsets), ``paper`` (10 seeds,
subsets of Fashion-MNIST sized for an hour on 2 cores) and ``full`` (10 seeds on 50,000
Fashion-MNIST training images, every method everywhere; for a cluster).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..._errors import StudyError
from .._typed import Task, typed_study
from ._claims import CLAIM_PROBLEMS, Paired, paired, verdicts
from ._report import departures, figures, notes, protocol, tables
from ._runs import (
    ACT_GRID,
    EQUAL,
    EQUAL_WIDTHS,
    LR_STEP,
    METHODS,
    PROBLEMS,
    MethodResult,
    MethodRun,
    build_model,
    choose_lr,
    image_dataset,
    problem_data,
    run_method,
)

__all__ = [
    "ACT_GRID",
    "CLAIM_PROBLEMS",
    "EQUAL",
    "METHODS",
    "PAPER",
    "PROBLEMS",
    "SCALE_PLANS",
    "STUDY",
    "MethodResult",
    "MethodRun",
    "Paired",
    "Plan",
    "build_model",
    "choose_lr",
    "paired",
    "problem_data",
    "run_method",
    "tasks",
    "verdicts",
]

PAPER = (
    "A. Apicella, F. Isgrò, R. Prevete, 'A simple and efficient architecture for trainable "
    "activation functions', Neurocomputing 370 (2019) 1-15, doi:10.1016/j.neucom.2019.08.065 "
    "(arXiv 1902.03306)"
)


@dataclass(frozen=True)
class Plan:
    """How one problem is run at one scale (see :class:`MethodRun` for the fields)."""

    methods: tuple[str, ...]
    widths: tuple[int, ...]
    seeds: int
    select_seeds: int
    lr_center: float  # the initial grid: lr_center * LR_STEP ** (-1, 0, 1)
    max_extend: int
    max_epochs: int
    patience: int
    eval_every: int = 1
    batch_size: int | None = None
    n_train: int | None = None
    n_val: int | None = None
    n_test: int | None = None


ALL = METHODS
SINE = (*METHODS, EQUAL)
CONV_LR = 10**-2.75  # the conv nets' grid centre (about 1.8e-3)
SCALE_PLANS: dict[str, dict[str, Plan]] = {
    "quick": {
        "image-mlp": Plan(("relu", "prelu", "rational", "vaf"), (64, 64), 3, 1, 1e-3, 2, 60, 3,
                          batch_size=128, n_train=2000, n_val=1000, n_test=2000),
        "image-conv": Plan(("relu", "vaf"), (4, 8), 3, 1, CONV_LR, 2, 20, 3,
                           batch_size=128, n_train=1000, n_val=500, n_test=1000),
        "diabetes": Plan(("relu", "prelu", "rational", "vaf"), (32, 32), 3, 1, 3e-3, 2, 300, 10,
                         batch_size=32),
        "sine1d": Plan(("relu", EQUAL, "vaf"), (16, 16), 3, 1, 3e-3, 2, 2000, 10, eval_every=10),
    },
    "paper": {
        "image-mlp": Plan(ALL, (128, 128), 10, 2, 1e-3, 3, 50, 5,
                          batch_size=128, n_train=10000, n_val=2000),
        "image-conv": Plan(("relu", "prelu", "vaf"), (6, 12), 10, 2, CONV_LR, 3, 40, 5,
                           batch_size=128, n_train=4000, n_val=2000),
        "diabetes": Plan(ALL, (32, 32), 10, 2, 3e-3, 3, 500, 20, batch_size=32),
        "sine1d": Plan(("relu", EQUAL, "prelu", "rational", "vaf"), (16, 16), 10, 2, 3e-3, 3,
                       5000, 20, eval_every=10),
    },
    "full": {
        "image-mlp": Plan(ALL, (256, 256), 10, 3, 1e-3, 4, 200, 10,
                          batch_size=128, n_train=50000, n_val=10000),
        "image-conv": Plan(ALL, (16, 32), 10, 3, CONV_LR, 4, 200, 10,
                           batch_size=128, n_train=50000, n_val=10000),
        "diabetes": Plan(ALL, (32, 32), 20, 3, 3e-3, 4, 2000, 50, batch_size=32),
        "sine1d": Plan(SINE, (16, 16), 20, 3, 3e-3, 4, 20000, 50, eval_every=10),
    },
}  # fmt: skip


def tasks(scale: str = "quick", seed: int = 0) -> list[Task]:
    """One :class:`MethodRun` per (problem, method) of ``scale``; seeds ``seed, seed + 1, ...``."""
    if scale not in SCALE_PLANS:
        raise StudyError(
            f"unknown scale {scale!r} for the activations study; use {list(SCALE_PLANS)}"
        )
    dataset = image_dataset()
    out: list[Task] = []
    for problem in PROBLEMS:
        p = SCALE_PLANS[scale][problem]
        image = problem.startswith("image")
        subset = image and dataset == "fashion-mnist"  # the digits are small: all of them
        for method in p.methods:
            out.append(
                MethodRun(
                    problem=problem,
                    method=method,
                    widths=EQUAL_WIDTHS if method == EQUAL else p.widths,
                    seeds=tuple(int(seed) + i for i in range(p.seeds)),
                    select_seeds=p.select_seeds,
                    lr_grid=tuple(p.lr_center * LR_STEP**i for i in (-1, 0, 1)),
                    max_extend=p.max_extend,
                    max_epochs=p.max_epochs,
                    patience=p.patience,
                    eval_every=p.eval_every,
                    batch_size=p.batch_size,
                    dataset=dataset if image else None,
                    n_train=p.n_train if subset else None,
                    n_val=p.n_val if subset else None,
                    n_test=p.n_test if subset else None,
                )
            )
    return out


STUDY = typed_study(
    name="activations",
    title="Trainable activations (VAF) head to head",
    paper=PAPER,
    task_types=[MethodRun],
    result_types={MethodRun: MethodResult},
    tasks=tasks,
    verdicts=verdicts,
    figures=figures,
    tables=tables,
    protocol=protocol,
    departures=departures,
    notes=notes,
    order=40,
)
