"""CLI tests for `nngeom sensitivity` on a saved model."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import typer
from typer.testing import CliRunner

import nngeom as ng
from nngeom import DataError, InvalidInput
from nngeom.commands.sensitivity import register
from nngeom.sensitivity import tangent_sensitivity


@pytest.fixture()
def app() -> typer.Typer:
    a = typer.Typer()
    register(a)

    @a.command("noop")
    def _noop() -> None:  # a second command so typer keeps the subcommand name
        pass

    return a


@pytest.fixture()
def saved(tmp_path):
    net = ng.mlp((6, 8, 3), seed=1)
    path = ng.save_model(net, tmp_path / "net.pt")
    X = torch.randn(10, 6, generator=torch.Generator().manual_seed(0))
    np.save(tmp_path / "X.npy", X.numpy())
    torch.save({"X": X}, tmp_path / "X.pt")
    return net, path, X, tmp_path


def test_json_matches_library(app, saved) -> None:
    net, path, X, tmp = saved
    res = CliRunner().invoke(
        app, ["sensitivity", str(path), "--data", str(tmp / "X.npy"), "--json"]
    )
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    want = tangent_sensitivity(net, X, output="all").double()
    assert out["n_examples"] == 10
    assert out["mean"] == pytest.approx(float(want.mean()), rel=1e-6)
    assert out["per_output_mean"] == pytest.approx(want.mean(0).tolist(), rel=1e-6)
    assert out["bounds"]["path"] >= out["max"]
    res_pt = CliRunner().invoke(
        app,
        [
            "sensitivity",
            str(path),
            "--data",
            str(tmp / "X.pt"),
            "--json",
            "--output",
            "2",
            "--no-bounds",
        ],
    )
    assert res_pt.exit_code == 0, res_pt.output
    one = json.loads(res_pt.output)
    assert one["outputs"] == [2] and "bounds" not in one
    assert one["mean"] == pytest.approx(float(want[:, 2].mean()), rel=1e-6)


def test_text_output_and_hutchinson(app, saved) -> None:
    _, path, _, tmp = saved
    res = CliRunner().invoke(app, ["sensitivity", str(path), "--data", str(tmp / "X.npy")])
    assert (
        res.exit_code == 0 and "mean over examples" in res.output and "upper bounds" in res.output
    )

    def hutchinson_stderr(model_path) -> float:
        args = ["sensitivity", str(model_path), "--data", str(tmp / "X.npy")]
        res = CliRunner().invoke(app, [*args, "--method", "hutchinson", "--json"])
        assert res.exit_code == 0, res.output
        return json.loads(res.output)["mean_squared_stderr"]

    # one hidden layer: every term of the estimate is computed exactly, so no sampling error
    assert hutchinson_stderr(path) == 0
    assert hutchinson_stderr(ng.save_model(ng.mlp((6, 8, 8, 3), seed=1), tmp / "deep.pt")) > 0


def test_dataset_name(app, tmp_path) -> None:
    path = ng.save_model(ng.mlp((64, 5, 10), seed=0), tmp_path / "d.pt")
    res = CliRunner().invoke(
        app, ["sensitivity", str(path), "--data", "digits", "--n", "20", "--json"]
    )
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["n_examples"] == 20


def test_bad_input(app, saved) -> None:
    _, path, _, tmp = saved
    np.save(tmp / "wrong.npy", np.zeros((4, 5), dtype=np.float32))
    res = CliRunner().invoke(app, ["sensitivity", str(path), "--data", str(tmp / "wrong.npy")])
    assert res.exit_code != 0 and isinstance(res.exception, InvalidInput)
    res = CliRunner().invoke(app, ["sensitivity", str(path), "--data", str(tmp / "missing.npy")])
    assert isinstance(res.exception, DataError)
    res = CliRunner().invoke(
        app, ["sensitivity", str(path), "--data", str(tmp / "X.npy"), "--method", "x"]
    )
    assert isinstance(res.exception, InvalidInput)
    res = CliRunner().invoke(
        app, ["sensitivity", str(path), "--data", str(tmp / "X.npy"), "--n", "0"]
    )
    assert isinstance(res.exception, InvalidInput)


def test_main_prints_one_line(saved, capsys) -> None:
    from nngeom.cli import main

    _, path, _, tmp = saved
    code = main(["sensitivity", str(path), "--data", str(tmp / "nope.npy")])
    err = capsys.readouterr().err
    assert code != 0 and "Traceback" not in err and "nope.npy" in err
