"""`ng analyze` / `nngeom analyze`: one run directory with report.html about the user's model."""

from __future__ import annotations

import base64
import re

import numpy as np
import pytest
import torch
from torch import nn

import nngeom as ng
from nngeom.analyze import PARTS, analyze
from nngeom.cli import main

pytestmark = pytest.mark.usefixtures("one_thread")

SMALL = {
    "n_planes": 1,
    "plane_window": [-0.1, 1.1, -0.1, 1.1],
    "n_segments": 2,
    "n_lines": 3,
    "n_hessian_examples": 40,
    "lanczos_k": 2,
    "slq_probes": 2,
    "slq_steps": 8,
    "n_sensitivity_examples": 30,
    "n_measure_examples": 30,
    "sharpness_samples": 2,
    "sharpness_iters": 3,
    "top_pairs": 3,
}


def _mlp_data(n: int = 60):
    g = torch.Generator().manual_seed(0)
    X = torch.randn(n, 2, generator=g, dtype=torch.float64)
    y = torch.randint(0, 3, (n,), generator=g)
    return ng.mlp([2, 8, 8, 3], seed=1).double(), X, y


def _cnn():
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 2, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(18, 6), nn.ReLU(), nn.Linear(6, 3),
    ).double().eval()  # fmt: skip


def _images(html: str) -> list[bytes]:
    return [base64.b64decode(m) for m in re.findall(r'src="data:image/png;base64,([^"]+)"', html)]


def _check_report(path, parts=PARTS) -> str:
    text = path.read_text()
    for p in parts:
        assert f'<section id="{p}">' in text, p
    imgs = _images(text)
    assert imgs and all(b.startswith(b"\x89PNG\r\n\x1a\n") for b in imgs)
    return text


def test_mlp_report_has_every_part_and_loadable_figures(tmp_path):
    model, X, y = _mlp_data()
    res = analyze(model, X, y, tmp_path / "run", sizes=SMALL, progress=False)
    assert res.ok and not res.failed and not res.skipped, (res.failed, res.skipped)
    assert set(res.ran) == set(PARTS)
    text = _check_report(res.report)
    # figures decode as images (matplotlib reads them back)
    import io

    import matplotlib.image as mpimg

    for b in _images(text):
        assert mpimg.imread(io.BytesIO(b), format="png").ndim == 3
    assert res.results["hessian"]["loss"] == "ce"
    assert res.results["sensitivity"]["bounds"] is not None  # an MLP: the bounds apply
    planes = res.results["planes_within"]["planes"][0]
    assert len(set(planes["classes"])) == 1 and planes["n_regions"] >= 1
    across = res.results["planes_across"]["planes"][0]
    assert len(set(across["classes"])) == 3
    perm = res.results["permutation"]["layers"]
    assert [L["width"] for L in perm] == [8, 8] and len(perm[0]["pairs"]) == 3


def test_mlp_without_labels_skips_hessian_with_reason(tmp_path):
    model, X, _ = _mlp_data()
    res = analyze(model, X, None, tmp_path / "run", sizes=SMALL, progress=False)
    assert "hessian" in res.skipped and "labels" in res.skipped["hessian"]
    assert not res.failed
    text = _check_report(res.report)
    assert "skipped: no labels y" in text
    assert res.results["planes_within"]["class_source"] == "predicted"


def test_cnn_flat_data_reshaped_and_permutation_pairs(tmp_path):
    cnn = _cnn()
    g = torch.Generator().manual_seed(1)
    X = torch.rand(40, 64, generator=g, dtype=torch.float64)
    y = torch.randint(0, 3, (40,), generator=g)
    sizes = {**SMALL, "plane_window": [0.2, 0.5, 0.2, 0.5]}
    res = analyze(cnn, X, y, tmp_path / "run", sizes=sizes, input_shape=(1, 8, 8), progress=False)
    assert not res.failed, res.failed
    assert any("reshaped" in n for n in res.notes)
    text = _check_report(res.report)
    assert "reshaped to the model" in text
    assert "bounds not computed" in text  # tangent-sensitivity bounds are for MLPs
    assert [L["width"] for L in res.results["permutation"]["layers"]] == [6]


def test_resume_skips_finished_parts_and_failed_part_reported(tmp_path, monkeypatch):
    import importlib

    an = importlib.import_module("nngeom.analyze")  # the module (ng.analyze is the function)

    model, X, y = _mlp_data()
    real = an._part_hessian

    def boom(ctx):
        raise RuntimeError("simulated failure of the Hessian")

    monkeypatch.setattr(an, "_part_hessian", boom)
    out = tmp_path / "run"
    first = analyze(model, X, y, out, sizes=SMALL, progress=False)
    assert set(first.failed) == {"hessian"} and "simulated failure" in first.failed["hessian"]
    assert set(first.ran) == set(PARTS) - {"hessian"}  # the others went on
    text = first.report.read_text()
    assert 'class="fail">failed: RuntimeError: simulated failure' in text
    with pytest.raises(ng.RunError, match="--resume"):
        analyze(model, X, y, out, sizes=SMALL, progress=False)
    # --resume: nothing recomputed, the failed part skipped (still listed)
    ran: list[str] = []
    second = analyze(model, X, y, out, sizes=SMALL, resume=True, progress=False, _hook=ran.append)
    assert ran == [] and set(second.resumed) == set(PARTS) - {"hessian"}
    assert set(second.failed) == {"hessian"}
    monkeypatch.setattr(an, "_part_hessian", real)
    third = analyze(
        model, X, y, out, sizes=SMALL, resume=True, retry_failed=True, progress=False,
        _hook=ran.append,
    )  # fmt: skip
    assert ran == ["hessian"] and third.ok
    _check_report(third.report)
    # another model in the same directory is refused
    with pytest.raises(ng.RunError, match="another model"):
        analyze(ng.mlp([2, 8, 8, 3], seed=9).double(), X, y, out, sizes=SMALL, resume=True)


def test_interrupt_keeps_finished_parts(tmp_path):
    model, X, y = _mlp_data()

    def stop(part):
        if part == "patterns":
            raise KeyboardInterrupt

    out = tmp_path / "run"
    res = analyze(model, X, y, out, sizes=SMALL, progress=False, _hook=stop)
    assert res.interrupted and res.ran == ["planes_within", "planes_across", "lines"]
    assert "interrupted" in res.report.read_text()
    ran: list[str] = []
    res = analyze(model, X, y, out, sizes=SMALL, resume=True, progress=False, _hook=ran.append)
    assert ran == list(PARTS[3:]) and res.ok


def _save(tmp_path, model, **arrays):
    path = ng.save_model(model.float(), tmp_path / "m.pt")
    data = tmp_path / "d.npz"
    np.savez(data, **arrays)
    return path, data


def test_cli_runs_and_bad_input_is_one_line(tmp_path, capsys):
    model, X, y = _mlp_data()
    path, data = _save(tmp_path, model, X=X.float().numpy(), y=y.numpy())
    out = tmp_path / "run"
    rc = main(["analyze", str(path), "--data", str(data), "--out", str(out), "--quick",
               "--part", "patterns", "--part", "permutation"])  # fmt: skip
    cap = capsys.readouterr()
    assert rc == 0, cap.err
    assert "report.html" in cap.out and (out / "report.html").is_file()
    bad = [
        ["--data", str(tmp_path / "missing.npz")],
        ["--data", str(_save(tmp_path, model, X=np.zeros((5, 3)))[1])],  # wrong shape
        ["--data", str(data), "--part", "nope"],
    ]
    for extra in bad:
        rc = main(["analyze", str(path), "--out", str(tmp_path / "r2"), *extra])
        err = capsys.readouterr().err.strip()
        assert rc != 0 and len(err.splitlines()) == 1 and err.startswith("error:"), err
    np.savez(tmp_path / "nan.npz", X=np.full((5, 2), np.nan))
    rc = main(["analyze", str(path), "--data", str(tmp_path / "nan.npz"), "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert rc != 0 and len(err.splitlines()) == 1


def test_cli_failed_part_exits_nonzero_listing_it(tmp_path, capsys):
    # a smooth activation: the exact parts are refused, the generic ones still run
    model = nn.Sequential(nn.Linear(2, 6), nn.Tanh(), nn.Linear(6, 3))
    _, X, y = _mlp_data()
    path, data = _save(tmp_path, model, X=X.float().numpy(), y=y.numpy())
    rc = main(["analyze", str(path), "--data", str(data), "--out", str(tmp_path / "run"),
               "--quick", "--part", "patterns", "--part", "measures"])  # fmt: skip
    cap = capsys.readouterr()
    assert rc == 1 and "failed parts: patterns" in cap.err
    assert "measures" not in cap.err.split("failed parts:")[1]


@pytest.mark.browser
@pytest.mark.parametrize("kind", ["mlp", "cnn"])
def test_analysis_report_figures_load_in_chromium(tmp_path, kind):
    from _browser import browser as _browser
    from _browser import images_on_page

    if kind == "mlp":
        model, X, y = _mlp_data()
        res = analyze(model, X, y, tmp_path / "run", sizes=SMALL, progress=False)
    else:
        g = torch.Generator().manual_seed(2)
        X = torch.rand(40, 1, 8, 8, generator=g, dtype=torch.float64)
        y = torch.randint(0, 3, (40,), generator=g)
        sizes = {**SMALL, "plane_window": [0.2, 0.5, 0.2, 0.5]}
        res = analyze(_cnn(), X, y, tmp_path / "run", sizes=sizes, progress=False)
    assert not res.failed, res.failed
    browser = _browser()
    try:
        browser.get(res.report.as_uri())
        images_on_page(browser, 4)
        images = browser.execute_script(
            "return Array.from(document.images).map(i => [i.complete, i.naturalWidth]);"
        )
    finally:
        browser.quit()
    assert len(images) >= 4
    assert all(done and width > 50 for done, width in images), images
