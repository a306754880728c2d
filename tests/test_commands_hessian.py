"""The `nngeom hessian` command on saved models (CliRunner on a fresh typer app)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import typer
from typer.testing import CliRunner

import nngeom as ng
from nngeom.commands.hessian import register
from nngeom.hessian import hessian


@pytest.fixture()
def app():
    a = typer.Typer()
    register(a)

    @a.command("noop")
    def _noop() -> None:  # a second command keeps typer in multi-command mode
        pass

    return a


def _invoke(app, args):
    return CliRunner().invoke(app, args)


def test_full_spectrum_of_a_saved_model_matches_the_library(app, tmp_path):
    net = ng.mlp([3, 4, 2], "tanh", dtype=torch.float64, seed=0)
    path = ng.save_model(net, tmp_path / "m.pt")
    g = torch.Generator().manual_seed(0)
    X = torch.randn(30, 3, generator=g, dtype=torch.float64)
    y = torch.randn(30, 2, generator=g, dtype=torch.float64)
    np.savez(tmp_path / "d.npz", X=X.numpy(), y=y.numpy())
    res = _invoke(app, ["hessian", str(path), "--data", str(tmp_path / "d.npz"), "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    ref = torch.linalg.eigvalsh(hessian(net, X, y, loss="mse")).numpy()
    assert out["loss"] == "mse" and out["n_parameters"] == 26
    assert np.allclose(out["eigenvalues"], ref, atol=1e-12)
    assert out["n_negative"] + out["n_zero"] + out["n_positive"] == 26
    # Lanczos, labels from a .pt file, plain text output
    torch.save({"X": X, "y": torch.randint(0, 2, (30,), generator=g)}, tmp_path / "d.pt")
    res = _invoke(
        app,
        ["hessian", str(path), "--data", str(tmp_path / "d.pt"), "--k", "2", "--which", "largest"],
    )
    assert res.exit_code == 0, res.output
    assert "lanczos" in res.output and "ce" in res.output


def test_relu_projection_and_named_dataset(app, tmp_path):
    net = ng.mlp([2, 3, 1], "relu", seed=1)
    path = ng.save_model(net, tmp_path / "r.pt")
    res = _invoke(
        app,
        [
            "hessian",
            str(path),
            "--data",
            "teacher-grid",
            "--n",
            "100",
            "--project-rescaling",
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["projected_rescaling"] and len(out["eigenvalues"]) == 13 - 3
    assert out["n_examples"] == 100 and out["loss"] == "sse"


def test_bad_input_gives_one_clear_line(app, tmp_path):
    net = ng.mlp([3, 4, 2], "tanh", seed=0)
    path = ng.save_model(net, tmp_path / "m.pt")
    np.savez(tmp_path / "bad.npz", X=np.zeros((5, 4)), y=np.zeros((5, 2)))
    np.savez(tmp_path / "noy.npz", X=np.zeros((5, 3)))
    cases = [
        (["hessian", str(path), "--data", str(tmp_path / "bad.npz")], "features"),
        (["hessian", str(path), "--data", str(tmp_path / "noy.npz")], "'X' and 'y'"),
        (["hessian", str(path), "--data", "nowhere.npz"], "neither a dataset"),
        (["hessian", str(tmp_path / "missing.pt"), "--data", "digits"], "not found"),
        (["hessian", str(path), "--data", str(tmp_path / "bad.npz"), "--k", "-1"], "--k"),
    ]
    for args, msg in cases:
        res = _invoke(app, args)
        assert res.exit_code != 0
        assert isinstance(res.exception, ng.NngeomError), res.output
        assert msg in str(res.exception)


def test_hessian_of_a_conv_net_saved_as_pt2(app, tmp_path):
    import copy

    import torch.nn.functional as F
    from torch import nn

    class Conv(nn.Module):
        def __init__(self):
            super().__init__()
            self.c, self.fc = nn.Conv2d(1, 2, 3), nn.Linear(2 * 2 * 2, 2)

        def forward(self, x):
            x = F.max_pool2d(F.relu(self.c(x.view(-1, 1, 6, 6))), 2)
            return self.fc(x.flatten(1))

    torch.manual_seed(0)
    model = Conv().eval()
    ep = torch.export.export(
        model, (torch.randn(3, 36),), dynamic_shapes=({0: torch.export.Dim("batch")},)
    )
    torch.export.save(ep, tmp_path / "conv.pt2")
    g = torch.Generator().manual_seed(1)
    X = torch.randn(10, 36, generator=g, dtype=torch.float64)
    y = torch.randn(10, 2, generator=g, dtype=torch.float64)
    np.savez(tmp_path / "d.npz", X=X.numpy(), y=y.numpy())
    res = _invoke(app, ["hessian", str(tmp_path / "conv.pt2"), "--data", str(tmp_path / "d.npz"),
                        "--json"])  # fmt: skip
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["architecture"] == (
        "reshape conv2d(1->2,3x3) relu max_pool2d(2) flatten linear(8->2)"
    )
    ref = torch.linalg.eigvalsh(hessian(copy.deepcopy(model).double(), X, y, loss="mse")).numpy()
    assert out["n_parameters"] == 38 and np.allclose(out["eigenvalues"], ref, atol=1e-10)
