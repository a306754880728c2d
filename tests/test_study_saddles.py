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


@pytest.mark.parametrize("dataset", ["auto", "digits"])
def test_multilayer_test_scale_reaches_a_critical_point(dataset):
    config = next(t for t in saddles.tasks("test", 0) if t["kind"] == "multilayer")
    config = {**config, "dataset": dataset}
    r = saddles.run_task(config)
    assert r["converged"] and r["grad_norm"] < 1e-8
    assert r["preprocessing"]["standardized"] and r["preprocessing"]["n_inputs"] == 16
    assert r["data_null_directions"] == 0 and r["full_spectrum"]
    n3 = r["n_zero_theory"]
    assert n3 == 10
    # the loss is exactly flat on the n_3 directions (delta, -delta) ...
    assert r["flat_quadratic_form"] < 1e-12
    # ... but only n_3 - rank(H D) of them are zero modes (>= 1: the split line), and an
    # n_3-dimensional flat subspace forces index + zeros >= n_3
    assert 1 <= r["n_zero"] == r["n_zero_flat"] < n3
    assert r["n_negative"] + r["n_zero"] >= n3
    # the zero count does not hinge on the tolerance: a wide gap around it
    assert r["zero_gap"][0] < 1e-12 < 1e-9 < r["zero_gap"][1]
    assert r["lanczos"]["converged"] and r["lanczos"]["max_abs_diff_rel"] < 1e-8
    ranges = r["preactivations"]
    assert all(-40 < lo and hi < 40 for lo, hi in ranges)  # no saturated units
