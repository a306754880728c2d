"""End-to-end test of the tangent study at its tiny "test" scale (tasks -> run_task -> summarize)."""

from __future__ import annotations

import json
import math

import pytest

from nngeom import StudyError
from nngeom.studies import available
from nngeom.studies.tangent import GRIDS, MEASURES, STUDY, tasks


def test_tasks_are_json_deterministic_and_complete() -> None:
    quick = tasks("quick", 0)
    assert len(quick) == 32
    assert quick == tasks("quick", 0)
    json.dumps(quick)
    assert {c["seed"] for c in tasks("quick", 5)} == {5}
    paper = tasks("paper", 0)
    assert len(paper) >= 400
    assert {c["dataset"] for c in paper} == {"fashion-mnist", "digits"}
    assert set(GRIDS) == {"test", "quick", "paper"}
    with pytest.raises(StudyError):
        tasks("huge", 0)
    assert available()["tangent"] is STUDY and STUDY.order == 30


def test_study_end_to_end_tiny(tmp_path) -> None:
    configs = tasks("test", 0)
    results = [(c, STUDY.run_task(c)) for c in configs]
    for _, r in results:
        json.dumps(r)
        assert r["bounds_hold"] is True
        assert 0.0 <= r["train_acc"] <= 1.0 and 0.0 <= r["test_acc"] <= 1.0
        assert math.isclose(r["gap"], r["train_acc"] - r["test_acc"])
        assert r["ts_test"] > 0 and r["sharpness"] > 0
        assert set(MEASURES) <= set(r)
    # deterministic given its config
    assert STUDY.run_task(configs[0]) == results[0][1]
    section = STUDY.summarize(results, tmp_path)
    assert section.tables and section.key_numbers and section.summary
    assert len(section.tables[0].rows) == len(MEASURES)
    for fig in section.figures:
        assert fig.path.exists() and fig.path.with_suffix(".svg").exists()
    assert "bounds held on 4/4" in section.summary
