"""CLI tests for `nngeom knots` and `nngeom regions` on saved models."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import typer
from typer.testing import CliRunner

import nngeom as ng
from nngeom.commands.knots import register

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture()
def app() -> typer.Typer:
    a = typer.Typer()
    register(a)
    return a


def _run(app, args):
    return CliRunner().invoke(app, [str(a) for a in args])


def test_knots_command_json_matches_library(app, tmp_path):
    net = ng.mlp([1, 8, 8, 1], seed=3)
    path = ng.save_model(net, tmp_path / "net.pt")
    res = _run(app, ["knots", path, "--lo=-2", "--hi", "2", "--json"])
    assert res.exit_code == 0, res.output
    d = json.loads(res.output)
    k = ng.knots(net, -2, 2)
    assert d["count"] == k.count and d["n_breakpoints"] == k.n_breakpoints
    np.testing.assert_allclose(d["positions"], k.positions)
    assert d["bound"] == ng.knot_upper_bound([8, 8]) == 80
    text = _run(app, ["knots", path, "--exact"])
    assert text.exit_code == 0 and f"knots         {ng.knots(net).count}" in text.output
    assert "float64 agreed: True" in text.output


def test_knots_command_tight_net_safetensors(app, tmp_path):
    path = ng.save_model(ng.tight_knot_network([4, 4]), tmp_path / "tight.safetensors")
    d = json.loads(_run(app, ["knots", path, "--json"]).output)
    assert d["count"] == d["bound"] == 24 and d["lo"] == "-inf"


def test_knots_command_bad_input(app, tmp_path):
    two = ng.save_model(ng.mlp([2, 4, 1]), tmp_path / "two.pt")
    res = _run(app, ["knots", two])
    assert res.exit_code != 0 and isinstance(res.exception, ng.UnsupportedModel)
    one = ng.save_model(ng.mlp([1, 4, 1]), tmp_path / "one.pt")
    res = _run(app, ["knots", one, "--lo", "3", "--hi", "1"])
    assert isinstance(res.exception, ng.InvalidInput)
    res = _run(app, ["knots", one, "--lo", "abc"])
    assert isinstance(res.exception, ng.InvalidInput)
    smooth = ng.save_model(ng.mlp([1, 4, 1], activation="tanh"), tmp_path / "tanh.pt")
    res = _run(app, ["knots", smooth])
    assert isinstance(res.exception, ng.UnsupportedModel) and "smooth" in str(res.exception)
    torch.save([1, 2, 3], tmp_path / "list.pt")
    res = _run(app, ["knots", tmp_path / "list.pt"])
    assert isinstance(res.exception, ng.ModelFileError)
    nan = ng.mlp([1, 4, 1])
    with torch.no_grad():
        nan[0].bias[0] = float("nan")
    torch.save(nan.state_dict(), tmp_path / "nan.pt")
    res = _run(app, ["knots", tmp_path / "nan.pt"])
    assert isinstance(res.exception, ng.InvalidModel)


def test_regions_command_line_slice_and_data(app, tmp_path):
    net = ng.mlp([2, 6, 6, 1], seed=2)
    path = ng.save_model(net, tmp_path / "net.pt")
    d = json.loads(_run(app, ["regions", path, "--x0=-1,-1", "--x1", "1,1", "--json"]).output)
    lr = ng.regions_on_line(net, [-1, -1], [1, 1])
    assert d["mode"] == "line" and d["n_regions"] == lr.n_regions
    res = _run(app, ["regions", path, "--extent", "1.5", "--plot", tmp_path / "r.png", "--json"])
    assert res.exit_code == 0, res.output
    d = json.loads(res.output)
    R = ng.regions_2d(net, extent=1.5)
    assert d["n_regions"] == R.n_regions and (tmp_path / "r.png").stat().st_size > 0
    assert sum(d["areas"]) == pytest.approx(9.0)
    X = torch.randn(50, 2, generator=torch.Generator().manual_seed(0))
    np.save(tmp_path / "X.npy", X.numpy())
    d = json.loads(
        _run(
            app, ["regions", path, "--data", tmp_path / "X.npy", "--n-lines", "4", "--json"]
        ).output
    )
    assert d["n_patterns"] == ng.pattern_statistics(net, X)["n_patterns"]
    assert d["lines"]["n_regions"] == ng.regions_along_lines(net, X, n_lines=4)["n_regions"]
    text = _run(app, ["regions", path, "--data", tmp_path / "X.npy"])
    assert text.exit_code == 0 and "distinct patterns" in text.output


def test_regions_command_bad_input(app, tmp_path):
    path = ng.save_model(ng.mlp([3, 4, 1]), tmp_path / "net.pt")
    res = _run(app, ["regions", path])  # 3 inputs: a slice needs origin/u/v
    assert isinstance(res.exception, ng.InvalidInput)
    res = _run(app, ["regions", path, "--x0", "0,0,0"])
    assert isinstance(res.exception, ng.InvalidInput)
    res = _run(app, ["regions", path, "--x0", "0,0", "--x1", "1,1"])
    assert isinstance(res.exception, ng.InvalidInput)
    res = _run(app, ["regions", path, "--data", tmp_path / "missing.npy"])
    assert isinstance(res.exception, ng.DataError)
    res = _run(app, ["regions", path, "--x0", "a,b", "--x1", "1,1,1"])
    assert isinstance(res.exception, ng.InvalidInput)
