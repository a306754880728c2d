"""The chaos study end to end at the tiny "test" scale: tasks -> run_task -> summarize."""

from __future__ import annotations

import json

import pytest

from nngeom import StudyError
from nngeom.studies import chaos as C


def test_chaos_study_end_to_end(tmp_path):
    configs = C.tasks("test", 0)
    kinds = {c["kind"] for c in configs}
    assert kinds == {"convergence", "horizon", "learning", "logistic", "laser"}
    pytest.importorskip("reservoirpy")
    results = []
    for cfg in configs:
        json.dumps(cfg)
        res = C.run_task(cfg)
        results.append((cfg, json.loads(json.dumps(res))))
    # determinism of a task
    again = C.run_task(configs[1])
    assert again["nrmse_T"] == results[1][1]["nrmse_T"]
    section = C.summarize(results, tmp_path / "figures")
    assert section.summary and section.key_numbers and section.tables
    for fig in section.figures:
        assert fig.path.exists() and fig.path.with_suffix(".svg").exists()
    names = {f.path.stem for f in section.figures}
    assert {"chaos_horizon", "chaos_bumps", "chaos_decomposition", "chaos_logistic"} <= names
    order = [k for k in section.key_numbers if "convergence order" in k.label]
    assert order and float(order[0].ours) >= 3.5


def test_scales_and_registration():
    assert C.STUDY.name == "chaos" and C.STUDY.order == 50
    quick = C.tasks("quick", 0)
    paper = C.tasks("paper", 0)
    assert len(paper) > len(quick) > 20
    assert all(json.dumps(c) for c in quick)
    assert C.tasks("quick", 5)[1]["seed"] == 5
    with pytest.raises(StudyError):
        C.tasks("huge", 0)
    with pytest.raises(StudyError):
        C.run_task({"kind": "nope"})
