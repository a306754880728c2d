"""The activations study: its task plan, models, learning-rate choice and a tiny end-to-end run
(tasks -> run_task -> summarize)."""

from __future__ import annotations

import json
import math

import pytest
import torch

import nngeom as ng
from nngeom.studies import activations as S
from nngeom.studies import get
from nngeom.studies._typed import from_record, to_record


def test_tasks_are_json_and_cover_the_plan():
    for scale in ("quick", "paper", "full"):
        ts = S.tasks(scale, seed=3)
        recs = [to_record(t) for t in ts]
        json.dumps(recs)
        assert [from_record(S.MethodRun, r) for r in recs] == ts
        plan = S.SCALE_PLANS[scale]
        for problem in S.PROBLEMS:
            mine = [t for t in ts if t.problem == problem]
            assert [t.method for t in mine] == list(plan[problem].methods)
            for t in mine:
                assert t.seeds == tuple(range(3, 3 + plan[problem].seeds))
                assert len(t.lr_grid) == 3 and t.lr_grid[0] < t.lr_grid[1] < t.lr_grid[2]
        assert len({json.dumps(r, sort_keys=True) for r in recs}) == len(recs)
    paper = S.tasks("paper")
    assert all(len(t.seeds) >= 10 for t in paper)
    assert {"relu", "vaf"} <= {t.method for t in paper if t.problem == "image-conv"}
    assert get("activations") is S.STUDY and S.STUDY.order == 40
    with pytest.raises(ng.StudyError):
        S.tasks("huge", 0)


def test_equal_parameter_comparator():
    vaf = S.build_model("sine1d", "vaf", (16, 16), 1, 1, seed=0)
    relu = S.build_model("sine1d", S.EQUAL, (16, 17), 1, 1, seed=0)
    n_vaf = sum(p.numel() for p in vaf.parameters())
    n_relu = sum(p.numel() for p in relu.parameters())
    assert n_vaf == 321 + 2 * 10 and abs(n_vaf - n_relu) <= 2


@pytest.mark.parametrize("problem", ["image-conv", "image-mlp"])
def test_same_seed_same_layer_init_and_vaf_starts_as_relu(problem):
    a = S.build_model(problem, "relu", (4, 8), 64, 10, seed=5)
    b = S.build_model(problem, "vaf", (4, 8), 64, 10, seed=5)
    layers = (torch.nn.Linear, torch.nn.Conv2d)
    wa = [m.weight for m in a.modules() if isinstance(m, layers)]
    wb = [m.weight for m in b.modules() if isinstance(m, layers)]
    assert wa and all(torch.equal(x, y) for x, y in zip(wa, wb))
    x = torch.rand(3, 64, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(a(x), b(x), rtol=0, atol=0)


def test_learning_rate_grid_is_extended_until_the_choice_is_bracketed():
    calls = []

    def score(lr):  # a valley at 1e-4
        calls.append(lr)
        return (math.log10(lr) + 4.0) ** 2

    grid = (1e-3, 1e-3 * S.LR_STEP, 1e-2)
    c = S.choose_lr(score, grid, max_extend=5)
    assert c.lr == pytest.approx(1e-4) and c.bracketed
    assert c.extended_low == 3 and c.extended_high == 0  # 10^-3.5, 10^-4, 10^-4.5
    assert len(calls) == len(set(calls)) == 6
    short = S.choose_lr(score, grid, max_extend=1)
    assert short.lr == pytest.approx(10**-3.5) and not short.bracketed
    upper = S.choose_lr(lambda lr: -lr, grid, max_extend=10)  # best at the largest allowed rate
    assert upper.lr == pytest.approx(1.0) and upper.extended_high == 4 and not upper.bracketed
    inf = S.choose_lr(lambda lr: math.inf if lr > 2e-3 else 1.0, grid, max_extend=2)
    assert inf.lr == pytest.approx(10**-4) and inf.extended_low == 2  # ties: the smaller rate


def _tiny(problem, method, **kw):
    image = problem.startswith("image")
    fields = dict(
        problem=problem,
        method=method,
        widths=(4, 8) if problem == "image-conv" else ((16, 17) if method == S.EQUAL else (8, 8)),
        seeds=(0, 1),
        select_seeds=1,
        lr_grid=(3e-3, 1e-2, 3e-2),
        max_extend=1,
        max_epochs=3 if image else 60,
        patience=2,
        eval_every=1 if problem != "sine1d" else 10,
        batch_size=64 if problem != "sine1d" else None,
        dataset=S._runs.image_dataset() if image else None,
    )
    if image and fields["dataset"] == "fashion-mnist":
        fields.update(n_train=256, n_val=128, n_test=256)
    fields.update(kw)
    return S.MethodRun(**fields)


def test_end_to_end_tiny(tmp_path):
    chosen = [
        _tiny(problem, method)
        for problem in S.PROBLEMS
        for method in ("relu", "vaf", *([S.EQUAL] if problem == "sine1d" else []))
    ]
    results = [(to_record(t), S.STUDY.run_task(to_record(t))) for t in chosen]
    again = S.STUDY.run_task(to_record(chosen[0]))
    timing = {"cpu_seconds", "cpu_per_epoch"}
    assert {k: v for k, v in again.items() if k not in timing} == {
        k: v for k, v in results[0][1].items() if k not in timing
    }  # deterministic
    for (_, r), t in zip(results, chosen):
        json.dumps(r)
        res = from_record(S.MethodResult, r)
        assert len(res.test_metric) == 2 and all(v is not None for v in res.test_metric)
        assert res.lr in res.lrs and len(res.lrs) >= 3
        assert all(1 <= e <= t.max_epochs for e in res.epochs)
        if t.problem == "sine1d" and t.method in ("relu", S.EQUAL, "vaf"):
            assert len(res.knots) == 2 and all(isinstance(k, int) for k in res.knots)
        if t.method == "vaf":
            assert len(res.shapes) == 2 and len(res.shapes[0]) == len(S.ACT_GRID)
            assert res.n_act_params == 20
    section = S.STUDY.summarize(results, tmp_path)
    names = {f.path.stem for f in section.figures}
    assert {"activations_paired", "activations_lr", "activations_curves"} <= names
    assert {"activations_shapes", "activations_knots"} <= names
    for fig in section.figures:
        assert fig.path.exists() and fig.path.with_suffix(".svg").exists()
    keys = [v.key for v in section.verdicts]
    assert keys[:4] == [
        "activations.better.image-mlp",
        "activations.better.image-conv",
        "activations.better.diabetes",
        "activations.parameters",
    ]
    assert "activations.sine1d.knots" in keys
    assert any("Exact knots" in t.caption for t in section.tables)
