"""The chaos study end to end at the tiny "test" scale: tasks -> run_task -> summarize."""

from __future__ import annotations

import json

import pytest

from nngeom import StudyError
from nngeom.studies import chaos as C
from nngeom.studies._typed import to_record
from nngeom.studies._verdicts import Outcome


def test_chaos_study_end_to_end(tmp_path):
    pytest.importorskip("reservoirpy")  # the Santa Fe laser series ships with it
    st = C.STUDY
    configs = st.tasks("test", 0)
    kinds = {c["task"].rpartition(":")[2] for c in configs}
    assert kinds == {
        "Forecast",
        "DirectMLP",
        "EmbeddingCheck",
        "IntegratorOrder",
        "LogisticMap",
        "Laser",
    }
    results = [(c, json.loads(json.dumps(st.run_task(c)))) for c in configs]
    # a task is deterministic given its config
    lin = next(i for i, c in enumerate(configs) if c.get("predictor") == "linear")
    again = json.loads(json.dumps(st.run_task(configs[lin])))
    timing = {"seconds", "fit_seconds"}
    assert {k: v for k, v in again.items() if k not in timing} == {
        k: v for k, v in results[lin][1].items() if k not in timing
    }
    section = st.summarize(results, tmp_path / "figures")
    keys = {v.key: v.outcome for v in section.verdicts}
    assert keys["chaos.linear"] in (
        Outcome.REPRODUCED,
        Outcome.PARTLY,
        Outcome.NOT_REPRODUCED,
        Outcome.REFUTED,
    )
    assert keys["chaos.linear30"] is Outcome.NOT_RUN  # the test scale has tau=17 only
    assert keys["chaos.esn17"] is Outcome.BEYOND
    assert "ESN" in section.summary and "claims tested" in section.summary
    assert section.tables and section.departures and section.notes
    for fig in section.figures:
        assert fig.path.exists() and fig.path.with_suffix(".svg").exists()
    names = {f.path.stem for f in section.figures}
    assert {
        "chaos_horizon",
        "chaos_valid_time",
        "chaos_bumps",
        "chaos_decomposition",
        "chaos_logistic",
    } <= names
    order = next(t for t in section.tables if "integrator" in t.caption)
    assert float(order.rows[0][-1]) >= 3.5


def test_scales_and_registration():
    assert C.STUDY.name == "chaos" and C.STUDY.order == 50
    quick, paper, full = (C.tasks(s, 0) for s in ("quick", "paper", "full"))
    assert len(full) > len(paper) > len(quick) > 20
    assert all(json.dumps(to_record(t)) for t in quick)
    # the embedding rule: the paper's 4 lags at tau=17, 6 at tau=30
    lags = {t.tau: t.lags for t in paper if isinstance(t, C.Forecast)}
    assert lags == {17: 4, 30: 6}
    # paper scale trains the MLP to the benchmark's budget
    mlp = [t for t in paper if isinstance(t, C.Forecast) and t.predictor == "mlp"]
    assert {(t.mlp_iter, t.mlp_restarts, t.mlp_screen) for t in mlp} == {(40_000, 5, 2000)}
    assert min(t.seed for t in C.tasks("quick", 5) if isinstance(t, C.Forecast)) == 5
    with pytest.raises(StudyError):
        C.tasks("huge", 0)
    with pytest.raises(StudyError, match="unknown task"):
        C.STUDY.run_task({"task": "Nope"})
