"""Typed studies: records round-trip, stale records are refused, the section comes from verdicts."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

import nngeom as ng
from nngeom.studies._typed import Result, Task, from_record, to_record, typed_study
from nngeom.studies._verdicts import Claim, Measured, Outcome, interval_vs


@dataclass(frozen=True)
class SquareResult(Result):
    value: float
    trace: tuple[float, ...]


@dataclass(frozen=True)
class Square(Task):
    x: float
    steps: tuple[int, ...] = (1, 2)

    def run(self) -> SquareResult:
        return SquareResult(self.x**2, tuple(float(s) * self.x for s in self.steps))


def _study():
    claim = Claim("squares are positive", "Lemma 1")
    return typed_study(
        name="square",
        title="Squares",
        paper="Nobody (2026)",
        task_types=[Square],
        result_types={Square: SquareResult},
        tasks=lambda scale, seed: [Square(float(x)) for x in (1, 2, 3)],
        verdicts=lambda pairs: [
            interval_vs(
                "square.positive",
                claim,
                Measured(
                    min(r.value for _, r in pairs),
                    min(r.value for _, r in pairs),
                    max(r.value for _, r in pairs),
                    what="x^2",
                ),
                0.0,
            )
        ],
        figures=lambda pairs, figdir: [],
        tables=lambda pairs: [],
        protocol=lambda pairs: f"{len(pairs)} squares were computed.",
        departures=lambda pairs: ["no departure"],
    )


def test_records_round_trip_with_tuples():
    t = Square(2.0, (3, 4))
    rec = to_record(t)
    assert rec == {"task": f"{__name__}:Square", "x": 2.0, "steps": [3, 4]}
    assert from_record(Square, rec) == t
    r = t.run()
    assert from_record(SquareResult, to_record(r)) == r


def test_stale_record_is_refused():
    with pytest.raises(ng.StudyError, match="another version"):
        from_record(Square, {"task": "Square", "x": 1.0, "old_field": 3})


def test_typed_study_runs_and_summarizes_from_verdicts(tmp_path):
    st = _study()
    configs = st.tasks("quick", 0)
    results = [(c, st.run_task(c)) for c in configs]
    sec = st.summarize(results, tmp_path)
    assert [v.outcome for v in sec.verdicts] == [Outcome.REPRODUCED]
    assert sec.summary.startswith("3 squares were computed.")
    assert "1 claim tested: 1 reproduced." in sec.summary
    assert sec.departures == ["no departure"]
    with pytest.raises(ng.StudyError, match="unknown task"):
        st.run_task({"task": f"{__name__}:Cube", "x": 1.0})
    with pytest.raises(ng.StudyError, match="not a study task"):
        st.run_task({"task": "nngeom:mlp"})


def test_the_executors_can_import_the_task_runner():
    """Workers import a study's run_task by (module, name): it must be a module-level function."""
    import importlib

    st = _study()
    fn = getattr(importlib.import_module(st.run_task.__module__), st.run_task.__name__)
    assert fn is st.run_task
    assert fn(st.tasks("quick", 0)[0])["value"] == 1.0


def test_report_shows_each_criterion_and_outcome(tmp_path):
    from nngeom import report

    st = _study()
    sec = st.summarize([(c, st.run_task(c)) for c in st.tasks("quick", 0)], tmp_path)
    html = report._section("square", sec)
    v = sec.verdicts[0]
    assert v.criterion.replace("'", "&#x27;") in html
    assert '<span class="outcome-ok">reproduced</span>' in html
    assert "Departures from the paper" in html and "no departure" in html
