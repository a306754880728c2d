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
    assert d["count"] == d["bound"] == 24
    # infinite ends: null numbers, named in "nonfinite" (no "-inf" strings any more)
    assert d["lo"] is None and d["hi"] is None
    assert d["nonfinite"] == {"/lo": "-inf", "/hi": "inf"}


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
    res = _run(app, ["knots", tmp_path / "nan.pt"])  # a state dict needs --arch
    assert isinstance(res.exception, ng.ModelFileError) and "--arch" in str(res.exception)
    res = _run(app, ["knots", tmp_path / "nan.pt", "--arch", "1-4-1:relu"])
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


# ------------------------------------------------------- the architecture comes from the file or --arch


def test_architecture_is_printed_and_in_the_json(app, tmp_path):
    net = torch.nn.Sequential(
        torch.nn.Linear(1, 5), torch.nn.ReLU(), torch.nn.Dropout(0.2), torch.nn.Linear(5, 1)
    )
    path = ng.save_model(net.eval(), tmp_path / "drop.pt")
    res = _run(app, ["knots", path, "--json"])
    assert res.exit_code == 0, res.output
    d = json.loads(res.output)
    assert d["architecture"] == "1-5-1:relu" and d["count"] == ng.knots(net).count
    text = _run(app, ["knots", path]).output
    assert text.splitlines()[0] == "architecture  1-5-1:relu"
    two = ng.save_model(ng.mlp([2, 4, 1], "leaky_relu"), tmp_path / "two.pt")
    for extra in ([], ["--json"]):
        res = _run(app, ["regions", two, "--x0=-1,-1", "--x1", "1,1", *extra])
        assert res.exit_code == 0, res.output
        assert "2-4-1:leaky_relu(0.01)" in res.output


def test_state_dict_needs_arch_and_its_slope_is_used(app, tmp_path):
    net = ng.mlp([1, 8, 8, 1], torch.nn.LeakyReLU(0.1), seed=5)
    torch.save(net.state_dict(), tmp_path / "sd.pt")
    res = _run(app, ["knots", tmp_path / "sd.pt"])
    assert isinstance(res.exception, ng.ModelFileError)
    assert all(w in str(res.exception) for w in (".pt2", "save_model", "--arch", "--key"))
    res = _run(app, ["knots", tmp_path / "sd.pt", "--arch", "1-8-8-1:leaky_relu(0.1)", "--json"])
    assert res.exit_code == 0, res.output
    d = json.loads(res.output)
    want = ng.knots(net)
    assert d["architecture"] == "1-8-8-1:leaky_relu(0.1)" and d["count"] == want.count
    np.testing.assert_allclose(d["positions"], want.positions)
    # the default slope 0.01 is a different function: nngeom must not have analysed that one
    other = ng.mlp([1, 8, 8, 1], torch.nn.LeakyReLU(0.01), seed=5)
    assert not np.allclose(ng.knots(other).positions[:3], want.positions[:3])
    d2 = json.loads(
        _run(
            app, ["regions", tmp_path / "sd.pt", "--arch", "1-8-8-1:leaky_relu(0.1)", "--x0=-3",
                  "--x1", "3", "--json"]
        ).output
    )  # fmt: skip
    assert d2["n_regions"] == ng.regions_on_line(net, [-3], [3]).n_regions


def test_tanh_arch_is_not_piecewise_linear(app, tmp_path):
    torch.save(ng.mlp([1, 4, 1], "tanh").state_dict(), tmp_path / "t.pt")
    res = _run(app, ["knots", tmp_path / "t.pt", "--arch", "1-4-1:tanh"])
    assert isinstance(res.exception, ng.UnsupportedModel)
    assert "piecewise" in str(res.exception) or "smooth" in str(res.exception)


def test_mismatched_arch_and_checkpoint_key(app, tmp_path):
    net = ng.mlp([1, 6, 1], seed=2)
    torch.save({"epoch": 1, "model_state_dict": net.state_dict()}, tmp_path / "ckpt.pt")
    res = _run(app, ["knots", tmp_path / "ckpt.pt", "--arch", "1-6-1:relu"])
    assert isinstance(res.exception, ng.ModelFileError) and "--key" in str(res.exception)
    res = _run(app, ["knots", tmp_path / "ckpt.pt", "--arch", "1-5-1:relu", "--key",
                     "model_state_dict"])  # fmt: skip
    assert isinstance(res.exception, ng.ModelFileError)
    assert "(6, 1)" in str(res.exception) and "(5, 1)" in str(res.exception)
    res = _run(app, ["knots", tmp_path / "ckpt.pt", "--arch", "1-6-1:relu", "--key",
                     "model_state_dict", "--json"])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["count"] == ng.knots(net).count


class _FRelu(torch.nn.Module):
    def __init__(self, residual: bool):
        super().__init__()
        self.residual = residual
        self.a, self.b, self.c = (torch.nn.Linear(*s) for s in ((1, 6), (6, 6), (6, 1)))

    def forward(self, x):
        h = torch.nn.functional.relu(self.a(x))
        g = torch.nn.functional.relu(self.b(h))
        return self.c(h + g if self.residual else g)


@pytest.mark.parametrize("residual", [False, True])
def test_knots_of_a_pt2_program(app, tmp_path, residual):
    torch.manual_seed(0)
    model = _FRelu(residual).eval()
    ep = torch.export.export(
        model, (torch.randn(3, 1),), dynamic_shapes=({0: torch.export.Dim("batch")},)
    )
    torch.export.save(ep, tmp_path / "m.pt2")
    loaded = ng.load_model(tmp_path / "m.pt2")
    x = torch.linspace(-3, 3, 41)[:, None]
    assert torch.equal(loaded(x), model(x))
    res = _run(app, ["knots", tmp_path / "m.pt2", "--lo=-3", "--hi", "3", "--json"])
    arch = "linear(1->6) relu linear(6->6) relu " + ("add " if residual else "") + "linear(6->1)"
    try:
        want = ng.knots(loaded, -3, 3)
    except ng.UnsupportedModel as exc:  # the library does not (yet) take this model
        assert isinstance(res.exception, ng.UnsupportedModel), res.output
        assert str(res.exception) == str(exc)
        return
    assert res.exit_code == 0, res.output
    d = json.loads(res.output)
    assert d["architecture"] == arch and d["count"] == want.count == ng.knots(model, -3, 3).count


# ------------------------------------------------------- regions --through I J K: the plane through examples


class _SmallCNN(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 3, 3)
        self.fc = torch.nn.Linear(3 * 2 * 2, 2)

    def forward(self, x):
        return self.fc(torch.relu(self.conv(x)).flatten(1))


def _pt2(model, x, path):
    ep = torch.export.export(model.eval(), (x,), dynamic_shapes=({0: torch.export.Dim("batch")},))
    torch.export.save(ep, path)
    return path


def test_regions_through_mlp_pt2_matches_library(app, tmp_path):
    net = ng.mlp([16, 8, 8, 3], seed=1).eval()
    X = torch.randn(10, 16, generator=torch.Generator().manual_seed(0))
    y = torch.arange(10) % 3
    np.savez(tmp_path / "d.npz", X=X.numpy(), y=y.numpy())
    path = _pt2(net, X[:2], tmp_path / "mlp.pt2")
    want = ng.regions_2d(net, ng.plane_through(X[4], X[1], X[7]), decision_boundary=True)
    res = _run(app, ["regions", path, "--through", 4, 1, 7, "--data", tmp_path / "d.npz",
                     "--plot", tmp_path / "pic", "--json"])  # fmt: skip
    assert res.exit_code == 0, res.output
    d = json.loads(res.output)
    assert d["mode"] == "plane" and d["through"] == [4, 1, 7] and d["n_outputs"] == 3
    assert d["n_regions"] == want.n_regions and d["n_pieces"] == want.n_pieces
    assert d["n_boundary_segments"] == len(want.decision_boundary)
    assert d["labels"] == [1.0, 1.0, 1.0] and d["input_shape"] == [16]
    assert d["bounds"] == [-0.25, 1.25, -0.25, 1.25]
    assert sum(d["areas"]) == pytest.approx(1.5**2)
    assert d["plot"] == str(tmp_path / "pic.png") and (tmp_path / "pic.png").stat().st_size > 0
    text = _run(app, ["regions", path, "--through", 4, 1, 7, "--data", tmp_path / "d.npz",
                      "--margin", "1"])  # fmt: skip
    assert text.exit_code == 0, text.output
    wide = ng.regions_2d(net, ng.plane_through(X[4], X[1], X[7], margin=1.0))
    assert f"activation regions (polygons)  {wide.n_regions}" in text.output
    assert f"linear pieces                  {wide.n_pieces}" in text.output
    assert "decision-boundary segments" in text.output and "architecture" in text.output


def test_regions_through_cnn_pt2_with_flat_data(app, tmp_path):
    torch.manual_seed(0)
    cnn = _SmallCNN().eval()
    Xi = torch.randn(8, 1, 4, 4, generator=torch.Generator().manual_seed(1))
    path = _pt2(cnn, Xi[:2], tmp_path / "cnn.pt2")
    np.save(tmp_path / "flat.npy", Xi.reshape(8, -1).numpy())  # flat X, no y
    want = ng.regions_2d(cnn, ng.plane_through(Xi[0], Xi[3], Xi[5]), decision_boundary=True)
    res = _run(app, ["regions", path, "--through", 0, 3, 5, "--data", tmp_path / "flat.npy",
                     "--plot", tmp_path / "c.svg", "--json"])  # fmt: skip
    assert res.exit_code == 0, res.output
    d = json.loads(res.output)
    assert d["input_shape"] == [1, 4, 4] and d["n_outputs"] == 2 and "labels" not in d
    assert d["n_regions"] == want.n_regions and d["n_pieces"] == want.n_pieces
    assert d["n_boundary_segments"] == len(want.decision_boundary)
    assert (tmp_path / "c.svg").stat().st_size > 0
    # a one-output model: no decision boundary
    one = ng.mlp([16, 6, 1], seed=0).eval()
    p1 = _pt2(one, Xi[:2].reshape(2, -1), tmp_path / "one.pt2")
    d = json.loads(_run(app, ["regions", p1, "--through", 0, 1, 2, "--data",
                              tmp_path / "flat.npy", "--json"]).output)  # fmt: skip
    assert d["n_boundary_segments"] is None and d["n_outputs"] == 1
    assert d["n_regions"] == ng.regions_2d(one, ng.plane_through(*Xi[:3].reshape(3, -1))).n_regions


def test_regions_through_errors(tmp_path, capsys):
    from nngeom.cli import main

    net = ng.mlp([4, 5, 2], seed=0).eval()
    X = torch.randn(6, 4, generator=torch.Generator().manual_seed(2))
    X[5] = 2 * X[1] - X[0]  # on the line through examples 0 and 1
    np.save(tmp_path / "X.npy", X.numpy())
    np.save(tmp_path / "bad.npy", np.zeros((6, 5)))
    path = _pt2(net, X[:2], tmp_path / "m.pt2")
    data = ["--data", tmp_path / "X.npy"]
    cases = [
        (["--through", 0, 1, 6, *data], "out of range"),
        (["--through", -1, 1, 2, *data], "out of range"),
        (["--through", 0, 1, 1, *data], "three different"),
        (["--through", 0, 1, 5, *data], "one line"),
        (["--through", 0, 1, 2], "needs --data"),
        (["--through", 0, 1, 2, *data, "--x0", "0,0,0,0", "--x1", "1,1,1,1"], "--x0/--x1"),
        (["--through", 0, 1, 2, *data, "--origin", "0,0,0,0"], "--origin"),
        (["--through", 0, 1, 2, *data, "--extent", "2"], "--extent"),
        (["--margin", "0.5"], "--margin goes with --through"),
        (["--through", 0, 1, 2, *data, "--margin=-1"], "--margin"),
        (["--through", 0, 1, 2, "--data", tmp_path / "bad.npy"], "numbers per example"),
        (["--through", 0, 1, 2, 3, *data], "exactly three"),
        (["--through", 0, 1], "--through"),  # fewer: click's message
    ]
    for args, words in cases:
        capsys.readouterr()
        rc = main([str(a) for a in ["regions", path, *args]])
        lines = capsys.readouterr().err.strip().splitlines()
        assert rc != 0 and len(lines) == 1 and words in lines[0], (args, lines)
