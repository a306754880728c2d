"""End-to-end test of the knots study at its tiny "test" scale (tasks -> run_task -> summarize)."""

from __future__ import annotations

import json

import pytest

from nngeom import StudyError, knot_upper_bound
from nngeom.studies import available
from nngeom.studies.knots import STUDY, _attainable, tasks

pytestmark = pytest.mark.usefixtures("one_thread")


def test_tasks_are_json_and_deterministic() -> None:
    for scale in ("test", "quick", "paper"):
        configs = tasks(scale, 0)
        assert configs == tasks(scale, 0)
        json.dumps(configs)
        assert {c["kind"] for c in configs} >= {
            "tight",
            "search",
            "random",
            "training",
            "regions2d",
        }
    assert len(tasks("paper", 0)) > len(tasks("quick", 0))
    with pytest.raises(StudyError):
        tasks("huge", 0)
    with pytest.raises(StudyError):
        STUDY.run_task({"kind": "nope"})
    assert available()["knots"] is STUDY and STUDY.order == 20


def test_study_end_to_end_tiny(tmp_path) -> None:
    configs = tasks("test", 0)
    results = [(c, STUDY.run_task(c)) for c in configs]
    for _, r in results:
        json.dumps(r)
    tight = [row for c, r in results if c["kind"] == "tight" for row in r["rows"]]
    for widths, bound, count, _bp, ambiguous in tight:
        assert bound == knot_upper_bound(widths) and not ambiguous
        assert (count == bound) == _attainable(widths)
    search = [row for c, r in results if c["kind"] == "search" for row in r["rows"]]
    for _widths, bound, construction, found in search:
        assert construction <= bound and found >= construction and found <= bound
    # a task is deterministic given its config
    small = next(c for c in configs if c["kind"] == "search")
    assert STUDY.run_task(small) == dict(results[configs.index(small)][1])
    section = STUDY.summarize(results, tmp_path)
    assert section.summary and section.key_numbers and section.tables
    assert len(section.figures) == 4
    for fig in section.figures:
        assert fig.path.exists() and fig.path.with_suffix(".svg").exists()
    assert "attained on" in section.summary
