"""Study: chaotic time-series prediction after Lapedes & Farber, "How Neural Nets Work" (NIPS 1987).

Tasks (typed configs in :mod:`.tasks`, each with its own seeds):

* :class:`~.tasks.Forecast` -- one predictor (linear AR, LMS, cubic polynomial, local linear,
  NVAR, the Lapedes-Farber MLP, an echo state network) on one Mackey-Glass series (tau 17 or 30):
  the direct T=6 error on the test rows, and the free-running forecast from many start points
  (error curve and valid prediction times with their censoring). At other training sizes (no
  free running) they make the learning curve.
* :class:`~.tasks.DirectMLP` -- the MLP trained directly for a long horizon.
* :class:`~.tasks.EmbeddingCheck`, :class:`~.tasks.IntegratorOrder` -- the embedding
  diagnostics and the integrator's convergence order.
* :class:`~.tasks.LogisticMap`, :class:`~.tasks.Laser` -- the logistic map and the Santa Fe laser.

The verdicts, tables and text are computed in :mod:`.analysis` (pure), the figures in
:mod:`.figures`. Scales: ``quick``, ``paper``, ``full`` (and ``test`` for the test suite).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..._errors import StudyError
from .._typed import Task, typed_study
from .analysis import departures, notes, protocol, tables, verdicts
from .figures import figures
from .tasks import (
    PREDICTORS,
    DirectMLP,
    DirectResult,
    EmbeddingCheck,
    EmbeddingResult,
    Forecast,
    ForecastResult,
    IntegratorOrder,
    Laser,
    LaserResult,
    LogisticMap,
    LogisticResult,
    OrderResult,
    window_lags,
)

__all__ = [
    "STUDY",
    "PAPER",
    "SCALES",
    "Scale",
    "tasks",
    "verdicts",
    "tables",
    "protocol",
    "departures",
    "notes",
    "figures",
    "Forecast",
    "DirectMLP",
    "EmbeddingCheck",
    "IntegratorOrder",
    "LogisticMap",
    "Laser",
]

PAPER = (
    'A. Lapedes and R. Farber, "How Neural Nets Work", Neural Information Processing Systems '
    '(NIPS 1987), pp. 442-456; companion LANL report LA-UR-87-2662 (1987), "Nonlinear signal '
    'processing using neural networks: prediction and system modelling".'
)
LEARNING_PREDICTORS = ("linear", "poly3", "local", "nvar", "mlp", "esn")


@dataclass(frozen=True)
class Scale:
    """The sizes of one scale of the study."""

    seeds: int
    starts: int
    steps: int
    mlp_iter: int
    mlp_restarts: int
    mlp_screen: int | None
    mlp_check: int
    esn_units: int
    direct: tuple[int, ...]
    direct_seeds: int
    learning_n: tuple[int, ...]
    learning_seeds: int
    logistic_seeds: int
    logistic_iter: int
    laser_train: int
    taus: tuple[int, ...] = (17, 30)
    n_train: int = 500
    laser: bool = True


SCALES: dict[str, Scale] = {
    "test": Scale(
        seeds=1,
        starts=6,
        steps=120,
        mlp_iter=300,
        mlp_restarts=1,
        mlp_screen=None,
        mlp_check=30,
        esn_units=40,
        direct=(12,),
        direct_seeds=1,
        learning_n=(250,),
        learning_seeds=1,
        logistic_seeds=1,
        logistic_iter=300,
        laser_train=300,
        taus=(17,),
        n_train=300,
    ),
    "quick": Scale(
        seeds=2,
        starts=40,
        steps=400,
        mlp_iter=12_000,
        mlp_restarts=3,
        mlp_screen=1000,
        mlp_check=1200,
        esn_units=400,
        direct=(24, 84),
        direct_seeds=1,
        learning_n=(250, 1000),
        learning_seeds=1,
        logistic_seeds=2,
        logistic_iter=3000,
        laser_train=1000,
    ),
    "paper": Scale(
        seeds=10,
        starts=100,
        steps=1000,
        mlp_iter=40_000,
        mlp_restarts=5,
        mlp_screen=2000,
        mlp_check=4000,
        esn_units=400,
        direct=(12, 24, 48, 84),
        direct_seeds=3,
        learning_n=(250, 1000, 2000),
        learning_seeds=3,
        logistic_seeds=3,
        logistic_iter=3000,
        laser_train=1000,
    ),
    "full": Scale(
        seeds=30,
        starts=100,
        steps=1000,
        mlp_iter=40_000,
        mlp_restarts=5,
        mlp_screen=2000,
        mlp_check=4000,
        esn_units=1000,
        direct=(12, 24, 48, 84),
        direct_seeds=10,
        learning_n=(125, 250, 1000, 2000, 4000, 8000),
        learning_seeds=10,
        logistic_seeds=10,
        logistic_iter=3000,
        laser_train=2000,
    ),
}


def tasks(scale: str, seed: int = 0) -> list[Task]:
    """The study's tasks at ``scale`` (``quick``, ``paper``, ``full``; ``test`` for the test
    suite); ``seed`` offsets every seed."""
    if scale not in SCALES:
        raise StudyError(
            f"unknown scale {scale!r} for the chaos study; use one of {', '.join(SCALES)}"
        )
    s = SCALES[scale]
    mlp = {
        "mlp_iter": s.mlp_iter,
        "mlp_restarts": s.mlp_restarts,
        "mlp_screen": s.mlp_screen,
        "mlp_check": s.mlp_check,
    }
    out: list[Task] = [IntegratorOrder(s.taus, scale)]
    for tau in s.taus:
        out.append(EmbeddingCheck(tau, seed, s.n_train))
        lags = window_lags(tau)
        for i in range(s.seeds):
            for p in PREDICTORS:
                out.append(
                    Forecast(
                        tau=tau,
                        predictor=p,
                        seed=seed + i,
                        n_train=s.n_train,
                        lags=lags,
                        starts=s.starts,
                        steps=s.steps,
                        esn_units=s.esn_units,
                        decompose=p == "mlp" and tau == 17 and i == 0,
                        **(mlp if p == "mlp" else {}),
                    )
                )
        for i in range(s.direct_seeds):
            for h in s.direct:
                out.append(
                    DirectMLP(tau, seed + i, s.n_train, lags, h, s.starts, **mlp)  # type: ignore[arg-type]
                )
    if 17 in s.taus:
        for n in s.learning_n:
            if n == s.n_train:
                continue  # the main forecasts are this size's points
            for i in range(s.learning_seeds):
                for p in LEARNING_PREDICTORS:
                    out.append(
                        Forecast(
                            tau=17,
                            predictor=p,
                            seed=seed + i,
                            n_train=n,
                            lags=window_lags(17),
                            esn_units=s.esn_units,
                            **(mlp if p == "mlp" else {}),
                        )
                    )
    for i in range(s.logistic_seeds):
        out.append(LogisticMap(seed + i, iterations=s.logistic_iter, check=s.logistic_iter // 10))
    if s.laser:
        for p in PREDICTORS:
            out.append(
                Laser(
                    p,
                    seed,
                    s.laser_train,
                    esn_units=s.esn_units,
                    **(mlp if p == "mlp" else {}),
                )
            )
    return out


STUDY = typed_study(
    name="chaos",
    title="Chaotic time-series prediction (Lapedes & Farber 1987)",
    paper=PAPER,
    task_types=[Forecast, DirectMLP, EmbeddingCheck, IntegratorOrder, LogisticMap, Laser],
    result_types={
        Forecast: ForecastResult,
        DirectMLP: DirectResult,
        EmbeddingCheck: EmbeddingResult,
        IntegratorOrder: OrderResult,
        LogisticMap: LogisticResult,
        Laser: LaserResult,
    },
    tasks=tasks,
    verdicts=verdicts,
    figures=figures,
    tables=tables,
    protocol=protocol,
    departures=departures,
    notes=notes,
    order=50,
)
