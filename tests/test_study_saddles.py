"""End-to-end run of the saddles study at its "test" scale (tasks -> run_task -> summarize)."""

from __future__ import annotations

import json

import pytest

from nngeom.studies import Section, get, saddles

pytestmark = pytest.mark.usefixtures("one_thread")


def test_study_is_registered_and_scales_are_checked():
    assert get("saddles") is saddles.STUDY
    assert saddles.STUDY.order == 10
    quick = saddles.tasks("quick", 0)
    assert {t["kind"] for t in quick} == {"toy", "multilayer", "counting"}
    paper = saddles.tasks("paper", 0)
    assert any(t["kind"] == "multilayer" and t["hidden"] == 100 for t in paper)
    assert any(t["kind"] == "toy" and t["step"] == 0.25 for t in paper)
    json.dumps(paper)
    with pytest.raises(Exception, match="unknown scale"):
        saddles.tasks("huge", 0)


def test_tiny_study_end_to_end(tmp_path):
    configs = saddles.tasks("test", 0)
    results = [(c, saddles.run_task(c)) for c in configs]
    json.loads(json.dumps(results))  # JSON-able
    toy = next(r for c, r in results if c["kind"] == "toy")
    assert len(toy["pairs"]) == 3
    for p in toy["pairs"]:
        assert p["grad_norm"] < 1e-8 and p["converged"]
        assert p["n_zero"] >= p["n_zero_theory"] == 1
    assert max(toy["paths"]["valley"]) - min(toy["paths"]["valley"]) < 1e-12
    counting = next(r for c, r in results if c["kind"] == "counting")
    assert {"widths": [100, 100], "order": 1}.items() <= next(
        r for r in counting["rows"] if r["widths"] == [100, 100] and r["order"] == 1
    ).items()
    section = saddles.summarize(results, tmp_path)
    assert isinstance(section, Section)
    assert section.figures and all(
        f.path.exists() and f.path.with_suffix(".svg").exists() for f in section.figures
    )
    labels = {k.label: k for k in section.key_numbers}
    assert labels["factor for 784-100-100-10, K = 1"].ours == "99"
    assert labels["factor for 784-100-100-10, K = 2"].ours == "2376.5"
    assert section.summary
