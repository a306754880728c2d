"""The CLI's output contract for scripts: one JSON writer, a schema per command, file types.

* every command with ``--json`` has a JSON Schema (``JSON_SCHEMAS`` of its module) and its
  output, in every mode, is one line of strict JSON (no NaN/Infinity tokens) that validates;
* infinite numbers are ``null`` and named in ``nonfinite`` (JSON Pointers), never strings;
* every file option's help lists exactly the file types it accepts, each of them is accepted
  and any other is refused with one line naming them.
"""

from __future__ import annotations

import importlib
import inspect
import json
import math
import pkgutil
import re
import shutil
from pathlib import Path
from typing import Any, NamedTuple, Optional

import jsonschema
import numpy as np
import pytest
import torch
import typer

import nngeom as ng
from nngeom import commands
from nngeom.cli import app as cli_app
from nngeom.cli import main
from nngeom.commands import _args, _json

pytestmark = pytest.mark.usefixtures("one_thread")


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


def _schemas() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for info in pkgutil.iter_modules(commands.__path__):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        for name, schema in getattr(module, "JSON_SCHEMAS", {}).items():
            assert name not in found, f"two schemas for {name!r}"
            found[name] = schema
    return found


SCHEMAS = _schemas()


class _Param(NamedTuple):
    annotation: Any
    decls: tuple[str, ...]
    help: str


def _leaf_commands() -> dict[str, dict[str, _Param]]:
    """Every command of the CLI by its command line (``"chaos evaluate"``): its parameters
    (annotation, option names, help), read from the registered functions' signatures."""
    out: dict[str, dict[str, _Param]] = {}

    def walk(app: typer.Typer, prefix: tuple[str, ...]) -> None:
        for info in app.registered_commands:
            name = info.name or info.callback.__name__.replace("_", "-")
            params = {}
            for p in inspect.signature(info.callback, eval_str=True).parameters.values():
                default = p.default
                decls = tuple(getattr(default, "param_decls", None) or ())
                params[p.name] = _Param(p.annotation, decls, getattr(default, "help", "") or "")
            out[" ".join((*prefix, name))] = params
        for group in app.registered_groups:
            walk(group.typer_instance, (*prefix, group.name))

    walk(cli_app, ())
    return out


COMMANDS = _leaf_commands()


def _no_constants(token: str) -> Any:
    raise AssertionError(f"non-standard JSON token {token!r} in the output")


def _pointer(doc: Any, pointer: str) -> Any:
    for part in pointer.split("/")[1:]:
        part = part.replace("~1", "/").replace("~0", "~")
        doc = doc[int(part)] if isinstance(doc, list) else doc[part]
    return doc


def _json_of(command: str, argv: list[str], capsys) -> dict[str, Any]:
    """Run ``nngeom ARGV`` and check its stdout against the contract; return the document."""
    capsys.readouterr()
    rc = main([str(a) for a in argv])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    text = captured.out
    assert text.endswith("\n") and text.count("\n") == 1, "one line of JSON, then a newline"
    doc = json.loads(text, parse_constant=_no_constants)
    assert list(doc)[:2] == ["schema_version", "command"] and list(doc)[-1] == "nonfinite"
    assert doc["schema_version"] == _json.SCHEMA_VERSION and doc["command"] == command
    assert text == _json.dumps(doc) + "\n", "the one writer's style"
    json.dumps(doc, allow_nan=False)
    jsonschema.Draft202012Validator(SCHEMAS[command]).validate(doc)
    for pointer, kind in doc["nonfinite"].items():
        assert _pointer(doc, pointer) is None and kind in ("inf", "-inf", "nan")
    return doc


# --------------------------------------------------------------------------------------------
# files
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("cli_json")
    ng.save_model(ng.mlp([1, 6, 6, 1], seed=3), d / "m1.pt")
    ng.save_model(ng.mlp([2, 5, 5, 2], "leaky_relu", seed=1), d / "m2.pt")
    ng.save_model(ng.mlp([2, 4, 2], "tanh", seed=2), d / "tanh.pt")
    g = torch.Generator().manual_seed(0)
    X = torch.randn(24, 2, generator=g, dtype=torch.float64)
    y = torch.randn(24, 2, generator=g, dtype=torch.float64)
    np.save(d / "X.npy", X.numpy())
    np.savez(d / "xy.npz", X=X.numpy(), y=y.numpy())
    ng.chaos.write_csv_column(d / "x.csv", ng.chaos.mackey_glass(700), "x")
    return d


# --------------------------------------------------------------------------------------------
# schemas
# --------------------------------------------------------------------------------------------


def test_every_json_command_has_a_valid_schema():
    with_json = {
        name
        for name, params in COMMANDS.items()
        if any("--json" in p.decls for p in params.values())
    }
    assert {"knots", "regions", "hessian", "sensitivity", "chaos evaluate"} <= with_json
    assert set(SCHEMAS) == with_json
    for name, schema in SCHEMAS.items():
        jsonschema.Draft202012Validator.check_schema(schema)
        assert schema["properties"]["command"] == {"const": name}
        assert schema["properties"]["schema_version"] == {"const": _json.SCHEMA_VERSION}
        assert "nonfinite" in schema["required"]
        # the schema itself is plain JSON
        json.dumps(schema, allow_nan=False)


def test_a_schema_refuses_strings_for_numbers_and_unknown_keys(files, capsys):
    doc = _json_of("knots", ["knots", files / "m1.pt", "--json"], capsys)
    validator = jsonschema.Draft202012Validator(SCHEMAS["knots"])
    for change in ({"lo": "-inf"}, {"count": 1.5}, {"surprise": 1}, {"schema_version": 2}):
        assert not validator.is_valid({**doc, **change}), change
    regions = jsonschema.Draft202012Validator(SCHEMAS["regions"])
    line = _json_of("regions", ["regions", files / "m2.pt", "--x0=-1,-1", "--x1", "1,1",
                                "--json"], capsys)  # fmt: skip
    assert regions.is_valid(line)
    assert not regions.is_valid({**line, "mode": "slice"})  # the keys of another mode
    assert not regions.is_valid({**line, "areas": [1.0]})


# --------------------------------------------------------------------------------------------
# every command, every mode
# --------------------------------------------------------------------------------------------


def test_knots_json(files, capsys):
    d = _json_of("knots", ["knots", files / "m1.pt", "--json"], capsys)
    assert d["lo"] is None and d["hi"] is None
    assert d["nonfinite"] == {"/lo": "-inf", "/hi": "inf"}
    assert isinstance(d["count"], int) and d["bound"] == ng.knot_upper_bound([6, 6])
    d = _json_of("knots", ["knots", files / "m1.pt", "--lo=-2", "--hi", "2", "--json"], capsys)
    assert d["lo"] == -2.0 and d["hi"] == 2.0 and d["nonfinite"] == {}
    assert d["float_agrees"] is None
    d = _json_of("knots", ["knots", files / "m1.pt", "--lo=-2", "--hi=2", "--exact", "--json"],
                 capsys)  # fmt: skip
    assert d["exact"] is True and d["float_agrees"] is True


def test_regions_json_every_mode(files, capsys, tmp_path):
    m2 = files / "m2.pt"
    d = _json_of("regions", ["regions", m2, "--x0=-1,-1", "--x1", "1,1", "--json"], capsys)
    assert d["mode"] == "line" and d["n_regions"] >= 1
    d = _json_of("regions", ["regions", m2, "--data", files / "X.npy", "--n-lines", "3",
                             "--n-directions", "3", "--json"], capsys)  # fmt: skip
    assert d["mode"] == "data" and d["n_samples"] == 24
    d = _json_of("regions", ["regions", m2, "--json"], capsys)
    assert d["mode"] == "slice" and "plot" not in d
    d = _json_of("regions", ["regions", m2, "--plot", tmp_path / "r.svg", "--json"], capsys)
    assert d["plot"] == str(tmp_path / "r.svg")
    through = ["regions", m2, "--through", "0", "1", "2", "--data", files / "X.npy", "--json"]
    d = _json_of("regions", through, capsys)
    assert d["mode"] == "plane" and d["through"] == [0, 1, 2] and "plot" not in d
    assert "labels" not in d  # a .npy holds no y
    d = _json_of("regions", [*through, "--plot", tmp_path / "p.png"], capsys)
    assert d["plot"] == str(tmp_path / "p.png") and (tmp_path / "p.png").stat().st_size > 0
    plane = jsonschema.Draft202012Validator(SCHEMAS["regions"])
    assert not plane.is_valid({**d, "through": [0, 1]})
    assert not plane.is_valid({**d, "mode": "slice"})


def test_hessian_json_full_and_lanczos(files, capsys):
    base = ["hessian", files / "m2.pt", "--data", files / "xy.npz", "--json"]
    d = _json_of("hessian", base, capsys)
    assert d["k"] == 0 and d["which"] is None
    assert d["n_negative"] + d["n_zero"] + d["n_positive"] == d["n_parameters"]
    d = _json_of("hessian", [*base, "--k", "2", "--which", "largest"], capsys)
    assert d["k"] == 2 and d["which"] == "largest" and len(d["eigenvalues"]) == 2
    assert "n_zero" not in d


def test_sensitivity_json_with_and_without_bounds(files, capsys):
    base = ["sensitivity", files / "m2.pt", "--data", files / "X.npy", "--json"]
    d = _json_of("sensitivity", base, capsys)
    assert isinstance(d["bounds"], dict) and "bounds_unavailable" not in d
    d = _json_of("sensitivity", [*base, "--method", "hutchinson", "--probes", "4",
                                 "--no-bounds"], capsys)  # fmt: skip
    assert "bounds" not in d and isinstance(d["mean_squared_stderr"], float)
    # a smooth net has no bounds: null and the reason, never a string where an object goes
    d = _json_of("sensitivity", ["sensitivity", files / "tanh.pt", "--data", files / "X.npy",
                                 "--json"], capsys)  # fmt: skip
    assert d["bounds"] is None and d["bounds_unavailable"]


def test_chaos_json_generate_fit_evaluate(files, capsys, tmp_path):
    csv = tmp_path / "s.csv"
    d = _json_of("chaos generate", ["chaos", "generate", "logistic", "--n", "600", "--out", csv,
                                    "--json"], capsys)  # fmt: skip
    assert d["n_values"] == 600 and d["out"] == str(csv)
    for predictor in ("linear", "mlp"):
        model = tmp_path / f"{predictor}.json"
        d = _json_of("chaos fit", ["chaos", "fit", files / "x.csv", "--out", model,
                                   "--predictor", predictor, "--max-iter", "20",
                                   "--json"], capsys)  # fmt: skip
        assert d["out"] == str(model)
        assert (d["weights"] is None) == (predictor != "mlp")
    d = _json_of("chaos evaluate", ["chaos", "evaluate", files / "x.csv", "--model",
                                    tmp_path / "linear.json", "--steps", "20", "--json"],
                 capsys)  # fmt: skip
    assert d["predictor"] == "model linear.json" and d["steps"] == 20
    d = _json_of("chaos evaluate", ["chaos", "evaluate", files / "x.csv", "--predictor",
                                    "linear", "--n-train", "300", "--steps", "20", "--json"],
                 capsys)  # fmt: skip
    assert d["embedding"] == {"lags": 4, "delay": 6, "horizon": 6}


# --------------------------------------------------------------------------------------------
# the writer
# --------------------------------------------------------------------------------------------


def test_writer_turns_nonfinite_numbers_into_null_and_names_them():
    doc = _json.encode(
        "x",
        {
            "a": float("inf"),
            "b": [1.0, float("-inf"), np.float32("nan")],
            "c/d": {"e~f": np.array([np.inf, 2.0])},
            "n": np.int64(3),
            "big": 2**80,
            "t": torch.tensor([1.5, float("nan")]),
            "flag": np.bool_(True),
            "p": Path("a/b"),
            "none": None,
        },
    )
    assert doc["a"] is None and doc["b"] == [1.0, None, None] and doc["c/d"] == {"e~f": [None, 2.0]}
    assert doc["n"] == 3 and type(doc["n"]) is int and doc["big"] == 2**80
    assert doc["t"] == [1.5, None] and doc["flag"] is True and doc["p"] == "a/b"
    assert doc["nonfinite"] == {
        "/a": "inf",
        "/b/1": "-inf",
        "/b/2": "nan",
        "/c~1d/e~0f/0": "inf",
        "/t/1": "nan",
    }
    for pointer in doc["nonfinite"]:
        assert _pointer(doc, pointer) is None
    text = _json.dumps(doc)
    assert "\n" not in text and "Infinity" not in text and "NaN" not in text
    assert json.loads(text) == doc


def test_writer_refuses_what_it_cannot_write_faithfully():
    with pytest.raises(ValueError, match="command"):
        _json.encode("x", {"command": "y"})
    with pytest.raises(TypeError, match="keys"):
        _json.encode("x", {"a": {1: 2}})
    with pytest.raises(TypeError, match="set"):
        _json.encode("x", {"a": {1, 2}})
    with pytest.raises(ValueError):
        _json.dumps({"a": math.inf})  # only encode()d documents are written


def test_no_command_writes_json_itself():
    """Every --json output goes through the one writer (no json.dumps / print in commands)."""
    for info in pkgutil.iter_modules(commands.__path__):
        if info.name.startswith("_"):
            continue
        source = Path(commands.__path__[0], f"{info.name}.py").read_text()
        for call in re.findall(r"json\.dumps\([^)]*\)", source):
            # chaos writes its model files (not command output) with json.dumps
            assert info.name == "chaos" and "meta" in call, (info.name, call)


# --------------------------------------------------------------------------------------------
# file types: help texts, accepted and refused
# --------------------------------------------------------------------------------------------

# (command, parameter name, accepted types): every file parameter of every command
FILE_OPTIONS = [
    ("knots", "model", _args.MODEL_TYPES),
    ("regions", "model", _args.MODEL_TYPES),
    ("hessian", "model", _args.MODEL_TYPES),
    ("sensitivity", "model", _args.MODEL_TYPES),
    ("regions", "data", _args.INPUT_TYPES),
    ("regions", "plot", _args.PLOT_TYPES),
    ("hessian", "data", _args.XY_TYPES),
    ("sensitivity", "data", _args.INPUT_TYPES),
    ("chaos generate", "out", _args.SERIES_TYPES),
    ("chaos fit", "series", _args.SERIES_TYPES),
    ("chaos fit", "out", _args.CHAOS_MODEL_TYPES),
    ("chaos evaluate", "series", _args.SERIES_TYPES),
    ("chaos evaluate", "model", _args.CHAOS_MODEL_TYPES),
    ("analyze", "model", _args.MODEL_TYPES),
    ("analyze", "data", _args.INPUT_TYPES),
]

# a file type named in a help text: a dot, not after a word character (not "torch.export")
_SUFFIX = re.compile(r"(?<![\w.])\.[a-z][a-z0-9]*\b")


def test_every_file_parameter_is_in_the_table():
    listed = {(c, p) for c, p, _ in FILE_OPTIONS}
    for name, params in COMMANDS.items():
        if name in ("reproduce", "report"):
            continue  # nngeom.cli's own commands: their paths are run directories, not files
        for pname, param in params.items():
            if name == "analyze" and pname == "out":
                continue  # a run directory, not a file
            if param.annotation in (Path, Optional[Path]):
                assert (name, pname) in listed, (name, pname)


@pytest.mark.parametrize(("command", "param", "types"), FILE_OPTIONS)
def test_help_lists_exactly_the_accepted_types(command, param, types):
    help_text = COMMANDS[command][param].help
    assert set(_SUFFIX.findall(help_text)) == set(types), help_text
    assert _args.types_text(types) in help_text, help_text


def _refused(argv: list[Any], types: tuple[str, ...], capsys, *, bad: str) -> str:
    capsys.readouterr()
    rc = main([str(a) for a in argv])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc != 0 and len(err) == 1, err
    line = err[0]
    assert line.startswith("error: ") and repr(bad) in line, line
    assert _args.types_text(types) in line, line
    return line


def _ok(argv: list[Any], capsys) -> None:
    capsys.readouterr()
    rc = main([str(a) for a in argv])
    assert rc == 0, capsys.readouterr().err


def test_model_types(files, capsys, tmp_path):
    net = ng.mlp([1, 4, 1], seed=0)
    ng.save_model(net, tmp_path / "m.safetensors")
    ng.save_model(net, tmp_path / "m.pt")
    for suffix in (".pth", ".ckpt", ".bin"):
        shutil.copy(tmp_path / "m.pt", tmp_path / f"m{suffix}")
    ep = torch.export.export(
        net.eval(), (torch.zeros(3, 1),), dynamic_shapes=({0: torch.export.Dim("batch")},)
    )
    torch.export.save(ep, tmp_path / "m.pt2")
    for suffix in _args.MODEL_TYPES:
        _ok(["knots", tmp_path / f"m{suffix}", "--json"], capsys)
    for bad in (".txt", ".PT", ".pkl"):
        shutil.copy(tmp_path / "m.pt", tmp_path / f"m{bad}")
        for cmd in ("knots", "regions"):
            _refused([cmd, tmp_path / f"m{bad}"], _args.MODEL_TYPES, capsys, bad=bad)
    shutil.copy(tmp_path / "m.pt", tmp_path / "noext")
    line = main(["knots", str(tmp_path / "noext")])
    assert line != 0 and "no file type" in capsys.readouterr().err


def test_data_types(files, capsys, tmp_path):
    X = np.load(files / "X.npy")
    y = np.zeros((X.shape[0], 2))
    np.save(tmp_path / "X.npy", X)
    np.savez(tmp_path / "X.npz", X=X, y=y)
    torch.save(torch.from_numpy(X), tmp_path / "X.pt")
    torch.save({"X": torch.from_numpy(X), "y": torch.from_numpy(y)}, tmp_path / "X.pth")
    shutil.copy(tmp_path / "X.pth", tmp_path / "xy.pt")
    m2 = files / "m2.pt"
    for suffix in _args.INPUT_TYPES:
        data = tmp_path / f"X{suffix}"
        _ok(["regions", m2, "--data", data, "--n-lines", "2", "--n-directions", "2"], capsys)
        _ok(["sensitivity", m2, "--data", data, "--no-bounds"], capsys)
    for suffix in _args.XY_TYPES:
        data = tmp_path / ("xy.pt" if suffix == ".pt" else f"X{suffix}")
        _ok(["hessian", m2, "--data", data], capsys)
    np.savetxt(tmp_path / "X.csv", X, delimiter=",")
    for cmd in ("regions", "sensitivity"):
        _refused([cmd, m2, "--data", tmp_path / "X.csv"], _args.INPUT_TYPES, capsys, bad=".csv")
    _refused(["hessian", m2, "--data", tmp_path / "X.csv"], _args.XY_TYPES, capsys, bad=".csv")
    # a .npy holds one array, not X and y
    _refused(["hessian", m2, "--data", tmp_path / "X.npy"], _args.XY_TYPES, capsys, bad=".npy")


def test_plot_types(files, capsys, tmp_path):
    for suffix in _args.PLOT_TYPES:
        _ok(["regions", files / "m2.pt", "--plot", tmp_path / f"r{suffix}"], capsys)
        assert (tmp_path / f"r{suffix}").stat().st_size > 0
    for bad in (".gif", ".xyz"):  # .gif: matplotlib may write it, nngeom does not promise it
        line = _refused(["regions", files / "m2.pt", "--plot", tmp_path / f"r{bad}"],
                        _args.PLOT_TYPES, capsys, bad=bad)  # fmt: skip
        assert ", ".join(_args.PLOT_TYPES) in line or _args.types_text(_args.PLOT_TYPES) in line


def test_series_and_chaos_model_types(files, capsys, tmp_path):
    csv = files / "x.csv"
    _ok(["chaos", "generate", "logistic", "--n", "50", "--out", tmp_path / "g.csv"], capsys)
    model = tmp_path / "m.json"
    _ok(["chaos", "fit", csv, "--out", model, "--predictor", "linear"], capsys)
    _ok(["chaos", "evaluate", csv, "--model", model, "--steps", "10"], capsys)
    txt = tmp_path / "x.txt"
    shutil.copy(csv, txt)
    series = _args.SERIES_TYPES
    _refused(["chaos", "generate", "logistic", "--out", tmp_path / "g.txt"], series, capsys,
             bad=".txt")  # fmt: skip
    assert not (tmp_path / "g.txt").exists()
    _refused(["chaos", "fit", txt, "--out", model, "--predictor", "linear"], series, capsys,
             bad=".txt")  # fmt: skip
    _refused(["chaos", "evaluate", txt, "--model", model], series, capsys, bad=".txt")
    models = _args.CHAOS_MODEL_TYPES
    _refused(["chaos", "fit", csv, "--out", tmp_path / "m.yaml", "--predictor", "linear"],
             models, capsys, bad=".yaml")  # fmt: skip
    shutil.copy(model, tmp_path / "m.txt")
    _refused(["chaos", "evaluate", csv, "--model", tmp_path / "m.txt"], models, capsys,
             bad=".txt")  # fmt: skip
