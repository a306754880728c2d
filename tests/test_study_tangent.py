"""The tangent study end to end at its tiny "test" scale (tasks -> run_task -> summarize), and
the shapes of its scales."""

from __future__ import annotations

import json

import pytest

from nngeom import StudyError
from nngeom.studies import available
from nngeom.studies._typed import to_record
from nngeom.studies._verdicts import Outcome
from nngeom.studies.tangent import (
    BOUND_FAMILIES,
    GRID_MEASURES,
    STUDY,
    GridNet,
    TrainingCurve,
    tasks,
)
from nngeom.studies.tangent.tasks import GRID_FACTORS

pytestmark = pytest.mark.usefixtures("one_thread")


def test_scales_are_json_deterministic_and_sized():
    for scale in ("test", "quick", "paper", "full"):
        ts = tasks(scale, 0)
        assert isinstance(ts[0], TrainingCurve)
        assert all(isinstance(t, GridNet) for t in ts[1:])
        assert ts == tasks(scale, 0)
        json.dumps([to_record(t) for t in ts])
        grid = ts[1:]
        varied = [f for f in GRID_FACTORS if len({getattr(t, f) for t in grid}) > 1]
        # every varied factor has >= 3 values, so every granulated-Psi group holds >= 3 nets
        assert varied and all(len({getattr(t, f) for t in grid}) >= 3 for f in varied)
    assert len(tasks("paper", 0)) == 1 + 81
    assert tasks("full", 0)[0].width == 3000 and tasks("full", 0)[0].epochs == 60
    assert {t.seed for t in tasks("quick", 5)} == {5}
    with pytest.raises(StudyError, match="unknown scale"):
        tasks("huge", 0)
    assert available()["tangent"] is STUDY and STUDY.order == 30


def test_study_end_to_end_tiny(tmp_path):
    configs = STUDY.tasks("test", 0)
    results = [(c, STUDY.run_task(c)) for c in configs]
    json.dumps(results)
    curve = results[0][1]
    n_epochs = configs[0]["epochs"]
    assert len(curve["train_loss"]) == len(curve["ts"]) == n_epochs
    assert len(curve["ts"][0]) == len(curve["labels"]) == 10 * configs[0]["per_class"]
    assert curve["bound_met"] == curve["bound_checks"]  # every bound >= TS
    assert min(curve["bound_min_ratio"]) >= 1.0
    for c, r in results[1:]:
        assert r["converged"] == (r["stopped"] in ("ce", "acc"))
        assert r["epochs"] <= c["max_epochs"]
        if r["converged"]:
            assert r["train_ce"] <= c["target_ce"] or r["train_acc"] >= c["target_acc"]
            assert r["gap"] == pytest.approx(r["train_acc"] - r["test_acc"])
            assert set(GRID_MEASURES) <= set(r) and r["ts_test"] > 0
        assert len(r["bound_met"]) == len(BOUND_FAMILIES)
    assert STUDY.run_task(configs[1]) == results[1][1]  # deterministic given its config
    section = STUDY.summarize(results, tmp_path)
    keys = [v.key for v in section.verdicts]
    assert keys[:3] == [
        "tangent.curve.ts_gap",
        "tangent.curve.bound_gap",
        "tangent.curve.per_class",
    ]
    assert "tangent.grid.primary" in keys and "tangent.bounds.check" in keys
    bounds = next(v for v in section.verdicts if v.key == "tangent.bounds.check")
    assert bounds.outcome is Outcome.BEYOND and bounds.measured.value == 1.0
    n_tested = sum(v.outcome not in (Outcome.BEYOND, Outcome.NOT_RUN) for v in section.verdicts)
    assert section.summary.endswith(".") and f"{n_tested} claims tested" in section.summary
    assert any("CIFAR-10" in d for d in section.departures)
    assert len(section.figures) == 5
    for fig in section.figures:
        assert fig.path.exists() and fig.path.with_suffix(".svg").exists()
