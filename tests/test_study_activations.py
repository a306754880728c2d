"""End-to-end test of the activations study at its tiny "test" scale: tasks -> run_task -> summarize."""

from __future__ import annotations

import json
import math

import pytest
import torch

import nngeom as ng
from nngeom.studies import activations as S
from nngeom.studies import get


def test_tasks_are_json_and_cover_the_grid():
    for scale in ("test", "quick", "paper"):
        cfgs = S.tasks(scale, seed=3)
        json.dumps(cfgs)
        settings = S.SCALE_SETTINGS[scale]
        per_task = len(S.METHODS) * settings["seeds"] * len(settings["lrs"])
        assert len(cfgs) == len(S.TASKS) * per_task + settings["seeds"] * len(settings["lrs"])
        assert {c["seed"] for c in cfgs} == set(range(3, 3 + settings["seeds"]))
        assert len({json.dumps(c, sort_keys=True) for c in cfgs}) == len(cfgs)
    assert get("activations") is S.STUDY and S.STUDY.order == 40
    with pytest.raises(ng.StudyError):
        S.tasks("huge", 0)


def test_equal_parameter_comparator():
    cfg = {"task": "sine1d", "scale": "test", "seed": 0}
    vaf = S._model({**cfg, "method": "vaf"}, 1, 1)
    relu = S._model({**cfg, "method": "relu-equal"}, 1, 1)
    n_vaf = sum(p.numel() for p in vaf.parameters())
    n_relu = sum(p.numel() for p in relu.parameters())
    assert n_vaf == 321 + 2 * 10 and abs(n_vaf - n_relu) <= 2


def test_same_seed_same_linear_init_across_methods():
    cfg = {"task": "image-conv", "scale": "test", "seed": 5}
    a = S._model({**cfg, "method": "relu"}, 64, 10)
    b = S._model({**cfg, "method": "vaf"}, 64, 10)
    wa = [m.weight for m in a.modules() if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d))]
    wb = [m.weight for m in b.modules() if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d))]
    assert all(torch.equal(x, y) for x, y in zip(wa, wb))
    x = torch.rand(3, 64, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(a(x), b(x), rtol=0, atol=0)  # VAF starts as ReLU exactly


def test_end_to_end_tiny(tmp_path):
    cfgs = S.tasks("test", seed=0)
    # a subset: ReLU, VAF and the rational everywhere, plus the equal-parameter ReLU (knots)
    chosen = [c for c in cfgs if c["method"] in ("relu", "vaf", "rational", "relu-equal")]
    results = [(c, S.run_task(c)) for c in chosen]
    again = S.run_task(chosen[0])
    first = results[0][1]
    assert again["test_loss"] == first["test_loss"]  # deterministic
    for c, r in results:
        json.dumps(r)
        assert r["test_loss"] is not None and math.isfinite(r["test_loss"])
        if c["task"] == "sine1d" and c["method"] in ("relu", "relu-equal", "vaf"):
            assert isinstance(r["knots"], int) and r["knots"] >= 0
        if c["method"] == "vaf":
            assert len(r["shapes"]) == 2 and len(r["shapes"][0]) == len(S.ACT_GRID)
    section = S.summarize(results, tmp_path)
    assert section.figures
    for fig in section.figures:
        assert fig.path.exists() and fig.path.with_suffix(".svg").exists()
    names = {f.path.stem for f in section.figures}
    assert {
        "activations_metrics",
        "activations_curves",
        "activations_shapes",
        "activations_knots",
    } <= names
    assert "VAF" in section.summary and "relu" in section.summary and "rational" in section.summary
    assert len(section.key_numbers) == len({c["task"] for c in chosen})
    assert any("Knots" in t.caption for t in section.tables)
