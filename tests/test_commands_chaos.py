"""`nngeom chaos generate|fit|evaluate` through typer's CliRunner."""

from __future__ import annotations

import json

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

import nngeom as ng
from nngeom.commands import chaos as cmd


@pytest.fixture(scope="module")
def app():
    a = typer.Typer()

    @a.callback()
    def main() -> None:
        """test app"""

    cmd.register(a)
    return a


runner = CliRunner()


def test_generate_fit_evaluate_roundtrip(app, tmp_path):
    csv = tmp_path / "mg.csv"
    r = runner.invoke(app, ["chaos", "generate", "mackey-glass", "--n", "1500", "--out", str(csv)])
    assert r.exit_code == 0, r.output
    assert np.array_equal(ng.chaos.read_csv_column(csv, "x"), ng.chaos.mackey_glass(1500))
    for pred in ("poly", "mlp"):
        model = tmp_path / f"{pred}.json"
        r = runner.invoke(
            app,
            [
                "chaos",
                "fit",
                str(csv),
                "--predictor",
                pred,
                "--n-train",
                "500",
                "--out",
                str(model),
                "--max-iter",
                "200",
            ],
        )
        assert r.exit_code == 0, r.output
        r = runner.invoke(
            app, ["chaos", "evaluate", str(csv), "--model", str(model), "--start", "600", "--json"]
        )
        assert r.exit_code == 0, r.output
        out = json.loads(r.output)
        # oracle: the same model fitted in-process and evaluated on the same rows
        x = ng.chaos.mackey_glass(1500)
        X, y = ng.chaos.embed(x, 4, 6, 6)
        reg = (
            ng.chaos.Polynomial(3)
            if pred == "poly"
            else ng.chaos.LapedesFarberMLP(max_iter=200, seed=0)
        ).fit(X[:500], y[:500])
        Xs, ys = ng.chaos.embed(x[600:], 4, 6, 6)
        want = ng.chaos.nrmse(ys, reg.predict(Xs), scale=float(x[600:].std()))
        assert out["nrmse_direct"] == pytest.approx(want, rel=1e-9)
        assert out["steps"] == 84


def test_evaluate_with_predictor(app, tmp_path):
    csv = tmp_path / "s.csv"
    ng.chaos.write_csv_column(csv, ng.chaos.mackey_glass(1400), "x")
    r = runner.invoke(
        app, ["chaos", "evaluate", str(csv), "--predictor", "local", "--n-train", "500", "--json"]
    )
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["nrmse_direct"] < 0.05
    r = runner.invoke(
        app, ["chaos", "evaluate", str(csv), "--predictor", "linear", "--n-train", "500"]
    )
    assert r.exit_code == 0 and "NRMSE" in r.output


def test_bad_inputs(app, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("t,x\n1,0.5\n2,abc\n3,0.7\n")
    nan = tmp_path / "nan.csv"
    nan.write_text("x\n" + "\n".join(["0.5"] * 50 + ["nan"] + ["0.6"] * 50) + "\n")
    short = tmp_path / "short.csv"
    short.write_text("x\n1\n2\n3\n")
    m = tmp_path / "m.json"
    good = ng.chaos.write_csv_column(tmp_path / "good.csv", ng.chaos.mackey_glass(300), "x")
    cases = [
        (["chaos", "fit", str(bad), "--column", "x", "--out", str(m)], "not a number"),
        (["chaos", "fit", str(nan), "--out", str(m)], "not a finite number"),
        (["chaos", "fit", str(short), "--out", str(m)], "too short"),
        (["chaos", "fit", str(good), "--horizon", "0", "--out", str(m)], "horizon"),
        (["chaos", "fit", str(short), "--predictor", "esn", "--out", str(m)], "cannot be saved"),
        (["chaos", "evaluate", str(short)], "exactly one"),
        (
            ["chaos", "evaluate", str(short), "--model", str(tmp_path / "none.json")],
            "no model file",
        ),
        (["chaos", "generate", "weather", "--out", str(m)], "unknown system"),
    ]
    for args, msg in cases:
        r = runner.invoke(app, args)
        assert r.exit_code != 0, args
        assert isinstance(r.exception, ng.NngeomError), (args, r.exception)
        assert msg in str(r.exception), (args, str(r.exception))
