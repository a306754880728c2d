"""Bad input to every analysis command of the CLI: one clear line, a non-zero exit, no traceback.

A table of a few hundred invocations is generated from the commands' options (bad numbers, bad
seeds, bad counts, bad paths, bad data files, bad model files, bad plot paths) and each is run
in-process through ``nngeom.cli.main`` with a time limit. Every one must exit non-zero and print
exactly one line, starting ``error:``, without ``Traceback`` and not ``error: unexpected <Type>``
(the generic handler's line for an exception nngeom did not anticipate).
"""

from __future__ import annotations

import json
import os
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

import nngeom as ng
from nngeom.cli import main
from nngeom.nets import MAX_PARAMETERS

pytestmark = [pytest.mark.usefixtures("one_thread"), pytest.mark.timeout(60)]

LONG = "/tmp/" + "a" * 5000  # longer than PATH_MAX
LONG_NAME = "/tmp/" + "b" * 300  # one name longer than NAME_MAX


class _Evil:
    def __reduce__(self):
        return (os.system, ("true",))


def _nngeom_file(path: Path, arch: object, state: object) -> None:
    torch.save({"nngeom_format": 1, "arch": arch, "state_dict": state}, path)


def _forge_pt2(src: Path, dst: Path, *, empty: bool) -> None:
    """A copy of a .pt2 whose first weight claims 150,000,000 x 2 numbers."""
    zin = zipfile.ZipFile(src)
    with zipfile.ZipFile(dst, "w") as zout:
        for name in zin.namelist():
            data = zin.read(name)
            if name.endswith("model_weights_config.json"):
                cfg = json.loads(data)
                meta = cfg["config"]["0.weight"]["tensor_meta"]
                meta["sizes"] = [{"as_int": 150_000_000}, {"as_int": 2}]
                data = json.dumps(cfg).encode()
            if name.endswith("weights/weight_0") and empty:
                data = b""
            zout.writestr(name, data)


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("fuzz")
    rng = np.random.default_rng(0)
    ng.save_model(ng.mlp([1, 4, 1], seed=0), d / "m1.pt")
    net2 = ng.mlp([2, 4, 3], seed=0)
    ng.save_model(net2, d / "m2.pt")
    state = net2.state_dict()
    torch.save(state, d / "sd.pt")
    torch.save({"model_state_dict": state, "epoch": 3}, d / "ckpt.pt")
    ep = torch.export.export(
        net2.eval(), (torch.randn(5, 2),), dynamic_shapes=({0: torch.export.Dim("batch")},)
    )
    torch.export.save(ep, d / "m2.pt2")
    _forge_pt2(d / "m2.pt2", d / "forged.pt2", empty=False)
    _forge_pt2(d / "m2.pt2", d / "forged_empty.pt2", empty=True)
    (d / "garbage.pt").write_bytes(rng.bytes(3000))
    (d / "garbage_c.pt").write_bytes(b"cfoo bar\nbaz qux\n" + rng.bytes(50))
    (d / "garbage_pk.pt").write_bytes(b"PK\x03\x04" + rng.bytes(300))
    (d / "garbage.pt2").write_bytes(rng.bytes(300))
    (d / "text.pt").write_text("hello\n" * 20)
    (d / "empty.pt").write_bytes(b"")
    (d / "evil_raw.pt").write_bytes(pickle.dumps(_Evil()))
    torch.save({"m": _Evil()}, d / "evil.pt")
    torch.save({"m": torch.nn.Linear(2, 2)}, d / "module.pt")
    torch.save([1, 2, 3], d / "list.pt")
    torch.save({"nngeom_format": 2}, d / "format2.pt")
    arch = ng.modelfile.arch_of(net2)
    bad_arch = {
        "huge": {**arch, "sizes": [1, 150_000_000, 1]},
        "toobig": {**arch, "sizes": [2, 10**6, 10**6, 3]},
        "badsizes": {**arch, "sizes": ["a", "b"]},
        "negsizes": {**arch, "sizes": [2, -4, 3]},
        "floatsizes": {**arch, "sizes": [2.5, 4, 3]},
        "boolsizes": {**arch, "sizes": [True, 4, 3]},
        "onesize": {**arch, "sizes": [2]},
        "nosizes": {k: v for k, v in arch.items() if k != "sizes"},
        "badact": {**arch, "activation": "foo"},
        "intact": {**arch, "activation": 3},
        "badout": {**arch, "output_activation": "foo"},
        "baddtype": {**arch, "dtype": "int64"},
        "baddtype2": {**arch, "dtype": "Tensor"},
        "archstr": "2-4-3:relu",
        "archlist": [2, 4, 3],
        "badkind": {**arch, "kind": "cnn"},
        "badslope": {**arch, "activation": "leaky_relu", "negative_slope": "x"},
        "nanslope": {**arch, "activation": "leaky_relu", "negative_slope": float("nan")},
        "zerobeta": {**arch, "activation": "softplus", "beta": 0.0},
        "badoutparams": {**arch, "output_activation": "softplus", "output_params": "x"},
        "vafbad": {**arch, "activation": "vaf", "vaf": [{"k": "x"}]},
        "vafhuge": {
            **arch,
            "activation": "vaf",
            "vaf": [
                {
                    "k": 3,
                    "share": "neuron",
                    "hidden": "relu",
                    "channel_dim": 1,
                    "unit_shape": [10**9],
                }
            ],
        },
        "vafmissing": {**arch, "activation": "vaf"},
        "biasstr": {**arch, "bias": "no"},
    }
    for name, a in bad_arch.items():
        _nngeom_file(d / f"{name}.pt", a, state)
    _nngeom_file(d / "intw.pt", arch, {k: v.to(torch.int64) for k, v in state.items()})
    _nngeom_file(d / "cplxw.pt", arch, {k: v.to(torch.complex64) for k, v in state.items()})
    _nngeom_file(d / "nostate.pt", arch, None)
    _nngeom_file(d / "wrongshape.pt", {**arch, "sizes": [2, 5, 3]}, state)
    torch.save({k: v.to(torch.int32) for k, v in state.items()}, d / "sd_int.pt")
    # data files
    np.save(d / "X2.npy", rng.random((10, 2)))
    for name, arr in {
        "str": np.array([["a", "b"], ["c", "d"]]),
        "bytes": np.array([[b"a", b"b"]]),
        "nan": np.array([[np.nan, 1.0], [1, 2]]),
        "inf": np.array([[np.inf, 1.0], [1, 2]]),
        "cplx": np.ones((3, 2), complex),
        "bool": np.ones((3, 2), bool),
        "vec": np.ones(5),
        "emptyX": np.ones((0, 2)),
        "wide": np.ones((3, 7)),
        "scalar": np.float64(3),
        "struct": np.zeros(3, dtype=[("a", "f8"), ("b", "f8")]),
        "dates": np.array([["2020-01-01", "2020-01-02"]], dtype="datetime64[D]"),
    }.items():
        np.save(d / f"{name}.npy", arr)
    np.save(d / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    (d / "garbage.npy").write_bytes(rng.bytes(500))
    (d / "garbage.npz").write_bytes(rng.bytes(500))
    (d / "text.npy").write_text("1,2\n3,4\n")
    X, Y = rng.random((10, 2)), rng.random((10, 3))
    for name, arrays in {
        "xy": {"X": X, "y": Y},
        "xy_str": {"X": np.array([["a", "b"]] * 10), "y": Y},
        "xy_nan": {"X": np.full((10, 2), np.nan), "y": Y},
        "xy_ynan": {"X": X, "y": np.full((10, 3), np.nan)},
        "xy_yinf": {"X": X, "y": np.full((10, 3), -np.inf)},
        "xy_rows": {"X": X, "y": Y[:9]},
        "xy_noy": {"X": X},
        "xy_nox": {"y": Y},
        "xy_ystr": {"X": X, "y": np.array(["a"] * 10)},
        "xy_ybool": {"X": X, "y": np.ones(10, bool)},
        "xy_xcplx": {"X": X.astype(complex), "y": Y},
        "xy_labels": {"X": X, "y": np.arange(10) + 50},
        "xy_neglabels": {"X": X, "y": -np.arange(10)},
        "xy_wide": {"X": rng.random((10, 5)), "y": Y},
        "xy_ywide": {"X": X, "y": rng.random((10, 7))},
        "xy_empty": {"X": np.ones((0, 2)), "y": np.ones((0, 3))},
        "xy_vec": {"X": np.ones(10), "y": Y},
    }.items():
        np.savez(d / f"{name}.npz", **arrays)
    torch.save({"X": torch.randn(4, 2, dtype=torch.complex64), "y": torch.randn(4, 3)}, d / "c.pt")
    torch.save({"X": torch.full((4, 2), float("nan")), "y": torch.randn(4, 3)}, d / "n.pt")
    torch.save({"X": torch.ones(4, 2, dtype=torch.bool)}, d / "b.pt")
    torch.save({"m": _Evil()}, d / "evil_data.pt")
    # series
    (d / "x.csv").write_text("x\n" + "\n".join(repr(float(np.sin(i / 3))) for i in range(300)))
    (d / "nan.csv").write_text("x\n" + "\n".join(["1", "nan", "2"] * 100))
    (d / "inf.csv").write_text("x\n" + "\n".join(["1", "-inf", "2"] * 100))
    (d / "str.csv").write_text("x\n1\nabc\n2\n")
    (d / "empty.csv").write_text("")
    (d / "header.csv").write_text("x\n")
    (d / "bin.csv").write_bytes(rng.bytes(300))
    (d / "short.csv").write_text("x\n1\n2\n3\n")
    (d / "const.csv").write_text("x\n" + "1\n" * 300)
    # chaos model files
    (d / "cm_garbage.json").write_text("{not json")
    (d / "cm_list.json").write_text("[1, 2]")
    (d / "cm_empty.json").write_text("{}")
    good = {
        "nngeom_chaos_model": 1,
        "predictor": "linear",
        "embedding": {"lags": 4, "delay": 6, "horizon": 6},
        "n_features": 4,
        "scaling": {"mx": [0.0] * 4, "sx": [1.0] * 4, "my": 0.0, "sy": 1.0},
        "coef": [0.0] * 5,
    }
    for name, change in {
        "cm_badpred": {"predictor": "oracle"},
        "cm_badlags": {"embedding": {"lags": "x", "delay": 6, "horizon": 6}},
        "cm_zerolags": {"embedding": {"lags": 0, "delay": 6, "horizon": 6}, "n_features": 0},
        "cm_nancoef": {"coef": [float("nan")] * 5},
        "cm_strcoef": {"coef": ["a"] * 5},
        "cm_badscale": {"scaling": {"mx": [0.0], "sx": [1.0], "my": 0.0, "sy": 1.0}},
        "cm_features": {"n_features": 3},
        "cm_mlp_escape": {"predictor": "mlp", "hidden": [10, 10], "weights": "../../etc/passwd"},
        "cm_mlp_missing": {"predictor": "mlp", "hidden": [10, 10], "weights": "none.pt"},
        "cm_mlp_garbage": {"predictor": "mlp", "hidden": [10, 10], "weights": "garbage.pt"},
    }.items():
        (d / f"{name}.json").write_text(json.dumps({**good, **change}))
    (d / "dir").mkdir()
    (d / "dir.pt").mkdir()
    (d / "dir.npy").mkdir()
    (d / "dir.csv").mkdir()
    (d / "dir.json").mkdir()
    (d / "file").write_text("")
    return d


# --------------------------------------------------------------------------------------------
# The table of bad invocations ({D} is the folder of the files above)
# --------------------------------------------------------------------------------------------

M1, M2 = "{D}/m1.pt", "{D}/m2.pt"
BAD_MODELS = [
    "{D}/nope.pt",
    "{D}/dir",
    "{D}/dir.pt",
    "{D}/file/x.pt",
    LONG + ".pt",
    LONG_NAME + ".pt",
    "{D}/garbage.pt",
    "{D}/garbage_c.pt",
    "{D}/garbage_pk.pt",
    "{D}/garbage.pt2",
    "{D}/text.pt",
    "{D}/empty.pt",
    "{D}/evil_raw.pt",
    "{D}/evil.pt",
    "{D}/module.pt",
    "{D}/list.pt",
    "{D}/format2.pt",
    "{D}/huge.pt",
    "{D}/toobig.pt",
    "{D}/badsizes.pt",
    "{D}/negsizes.pt",
    "{D}/floatsizes.pt",
    "{D}/boolsizes.pt",
    "{D}/onesize.pt",
    "{D}/nosizes.pt",
    "{D}/badact.pt",
    "{D}/intact.pt",
    "{D}/badout.pt",
    "{D}/baddtype.pt",
    "{D}/baddtype2.pt",
    "{D}/archstr.pt",
    "{D}/archlist.pt",
    "{D}/badkind.pt",
    "{D}/badslope.pt",
    "{D}/nanslope.pt",
    "{D}/zerobeta.pt",
    "{D}/badoutparams.pt",
    "{D}/vafbad.pt",
    "{D}/vafhuge.pt",
    "{D}/vafmissing.pt",
    "{D}/biasstr.pt",
    "{D}/intw.pt",
    "{D}/cplxw.pt",
    "{D}/nostate.pt",
    "{D}/wrongshape.pt",
    "{D}/sd.pt",
    "{D}/forged.pt2",
    "{D}/forged_empty.pt2",
]
BAD_ARCH = [
    ["{D}/sd.pt", "--arch", "1-150000000-1:relu"],
    ["{D}/sd.pt", "--arch", "2-1000000-1000000-3:relu"],
    ["{D}/sd.pt", "--arch", "99999999999999999999999-4-3:relu"],
    ["{D}/sd.pt", "--arch", "2-4-3"],
    ["{D}/sd.pt", "--arch", "2-4-3:foo"],
    ["{D}/sd.pt", "--arch", "2-4-3:leaky_relu(nan)"],
    ["{D}/sd.pt", "--arch", "2-4-3:leaky_relu(x)"],
    ["{D}/sd.pt", "--arch", "2-0-3:relu"],
    ["{D}/sd.pt", "--arch", "2--3:relu"],
    ["{D}/sd.pt", "--arch", "2-4-3:relu:relu:relu"],
    ["{D}/sd.pt", "--arch", ":relu"],
    ["{D}/sd.pt", "--arch", "2-5-3:relu"],
    ["{D}/sd_int.pt", "--arch", "2-4-3:relu"],
    ["{D}/sd.pt", "--arch", "2-4-3:relu", "--key", "x"],
    ["{D}/ckpt.pt", "--arch", "2-4-3:relu", "--key", "epoch"],
    ["{D}/ckpt.pt", "--arch", "2-4-3:relu", "--key", "model_state_dict.x.y"],
    ["{D}/m2.pt", "--arch", "2-4-3:relu"],
    ["{D}/m2.pt2", "--arch", "2-4-3:relu"],
]
BAD_SEEDS = ["-1", str(2**64), str(10**26), "1e26", "1.5", "abc", ""]
BAD_COUNTS = ["0", "-1", "abc", "1.5", "nan", str(10**30)]
BAD_NUMBERS = ["nan", "inf", "-inf", "abc", "", "1e400"]


def _cases() -> list[tuple[str, list[str]]]:
    cases: list[tuple[str, list[str]]] = []

    def add(name: str, *args: str) -> None:
        taken = {n for n, _ in cases}
        unique, k = name, 1
        while unique in taken:
            k += 1
            unique = f"{name}-{k}"
        cases.append((unique, list(args)))

    analyses = {
        "knots": [],
        "regions": [],
        "hessian": ["--data", "{D}/xy.npz"],
        "sensitivity": ["--data", "{D}/X2.npy"],
    }
    # bad model files and --arch/--key, for every analysis
    for cmd, extra in analyses.items():
        for i, m in enumerate(BAD_MODELS):
            add(f"{cmd}-model-{i}-{Path(m).name[:20]}", cmd, m, *extra)
        for i, margs in enumerate(BAD_ARCH):
            add(f"{cmd}-arch-{i}", cmd, *margs, *extra)
    # seeds
    seeded = {
        "regions": ["regions", M2, "--data", "{D}/X2.npy"],
        "hessian": ["hessian", M2, "--data", "{D}/xy.npz"],
        "sensitivity": ["sensitivity", M2, "--data", "{D}/X2.npy", "--method", "hutchinson"],
        "generate": ["chaos", "generate", "logistic", "--out", "{D}/o.csv"],
        "fit": ["chaos", "fit", "{D}/x.csv", "--out", "{D}/f.json", "--predictor", "linear"],
        "evaluate": ["chaos", "evaluate", "{D}/x.csv", "--predictor", "linear", "--n-train", "100"],
    }
    for name, base in seeded.items():
        for s in BAD_SEEDS:
            add(f"{name}-seed-{s[:8]}", *base, "--seed", s)
    # counts
    counted = [
        (seeded["regions"], ["--n-lines", "--n-directions"]),
        (seeded["hessian"], ["--n"]),
        (seeded["sensitivity"], ["--n", "--probes"]),
        (seeded["generate"], ["--n"]),
        (seeded["fit"], ["--lags", "--delay", "--horizon", "--n-train", "--max-iter"]),
        (seeded["evaluate"], ["--lags", "--delay", "--horizon", "--steps", "--n-train"]),
    ]
    for base, options in counted:
        for opt in options:
            for v in BAD_COUNTS:
                add(f"{base[0]}{base[1]}{opt}={v[:8]}", *base, opt, v)
    for v in ["-1", "abc", str(10**30)]:
        add(f"hessian--k={v[:8]}", *seeded["hessian"], "--k", v)
        add(f"sensitivity--output={v[:8]}", *seeded["sensitivity"], "--output", v)
    add("sensitivity--output-out-of-range", *seeded["sensitivity"], "--output", "3")
    add("evaluate--steps-huge", *seeded["evaluate"], "--steps", "100000")
    # numbers
    numbered = [
        (["knots", M1], ["--lo", "--hi"]),
        (seeded["regions"], ["--length"]),
        (["regions", M2], ["--extent"]),
        (seeded["hessian"], ["--zero-tol"]),
        (["chaos", "generate", "mackey-glass", "--out", "{D}/o.csv"], ["--tau"]),
    ]
    for base, options in numbered:
        for opt in options:
            for v in BAD_NUMBERS:
                if opt in ("--lo", "--hi") and v in ("inf", "-inf", "1e400"):
                    continue  # the whole real line is the default interval
                add(f"{base[0]}{opt}={v[:8]}", *base, f"{opt}={v}")
    for v in ["-1", "0", "1e300"]:
        add(f"regions--extent={v}", "regions", M2, "--extent", v)
        add(f"regions--length={v}", *seeded["regions"], "--length", v)
        add(f"generate--tau={v}", "chaos", "generate", "mackey-glass", "--out", "{D}/o.csv",
            f"--tau={v}")  # fmt: skip
    for v in ["-0.5", "2"]:
        add(f"hessian--zero-tol={v}", *seeded["hessian"], "--zero-tol", v)
    add("knots-lo>hi", "knots", M1, "--lo", "3", "--hi", "1")
    add("knots-lo=hi", "knots", M1, "--lo", "1", "--hi", "1")
    add("knots-2-inputs", "knots", M2)
    # vectors
    for opt in ["--x0", "--x1", "--origin", "--u", "--v"]:
        for v in ["a,b", "1,nan", "inf,0", ",", "1", "1,2,3", "1e300,0"]:
            args = ["regions", M2, "--x0", "0,0", "--x1", "1,1"]
            if opt in ("--x0", "--x1"):
                args[args.index(opt) + 1] = v
            else:
                args = ["regions", M2, opt, v]
            add(f"regions{opt}={v}", *args)
    add("regions-x0-only", "regions", M2, "--x0", "0,0")
    add("regions-same-point", "regions", M2, "--x0", "0,0", "--x1", "0,0")
    add("regions-u-parallel-v", "regions", M2, "--u", "1,0", "--v", "2,0")
    add("regions-segment-and-data", *seeded["regions"], "--x0", "0,0", "--x1", "1,1")
    # plot paths
    for p in ["{D}/x.xyz", "{D}/x.docx", "{D}/dir", "{D}/nodir/x.png", "{D}/file/x.png",
              LONG + ".png", LONG_NAME + ".png", "{D}/"]:  # fmt: skip
        add(f"regions--plot={Path(p).name[:16]}", "regions", M2, "--plot", p)
    add("regions--plot-with-data", *seeded["regions"], "--plot", "{D}/p.png")
    # data files of regions / sensitivity (X) and hessian (X, y)
    x_files = ["str", "bytes", "nan", "inf", "cplx", "bool", "vec", "emptyX", "wide", "scalar",
               "struct", "dates", "obj", "garbage", "text", "dir", "nope"]  # fmt: skip
    for f in x_files:
        add(f"regions-data-{f}", "regions", M2, "--data", f"{{D}}/{f}.npy")
        add(f"sensitivity-data-{f}", "sensitivity", M2, "--data", f"{{D}}/{f}.npy")
    for f in ["c.pt", "n.pt", "b.pt", "evil_data.pt", "garbage.npz", "xy_str.npz", "dir",
              "nope.npy", "x.csv"]:  # fmt: skip
        add(f"sensitivity-data-{f}", "sensitivity", M2, "--data", f"{{D}}/{f}")
    for d in [LONG + ".npy", LONG_NAME + ".npy", "nonsense-dataset"]:
        add(f"regions-data-{d[-12:]}", "regions", M2, "--data", d)
        add(f"sensitivity-data-{d[-12:]}", "sensitivity", M2, "--data", d)
        add(f"hessian-data-{d[-12:]}", "hessian", M2, "--data", d)
    xy_files = ["xy_str", "xy_nan", "xy_ynan", "xy_yinf", "xy_rows", "xy_noy", "xy_nox",
                "xy_ystr", "xy_ybool", "xy_xcplx", "xy_labels", "xy_neglabels", "xy_wide",
                "xy_ywide", "xy_empty", "xy_vec", "garbage"]  # fmt: skip
    for f in xy_files:
        add(f"hessian-data-{f}", "hessian", M2, "--data", f"{{D}}/{f}.npz")
    for f in ["c.pt", "n.pt", "b.pt", "evil_data.pt", "X2.npy", "dir", "dir.npy", "x.csv"]:
        add(f"hessian-data-{f}", "hessian", M2, "--data", f"{{D}}/{f}")
    add("hessian-loss-ce-on-targets", *seeded["hessian"], "--loss", "ce")
    add("hessian-loss-foo", *seeded["hessian"], "--loss", "foo")
    add("hessian-which-foo", *seeded["hessian"], "--k", "2", "--which", "foo")
    add("sensitivity-method-foo", *seeded["sensitivity"][:-2], "--method", "foo")
    add("sensitivity-split-foo", *seeded["sensitivity"], "--split", "foo")
    # chaos series and outputs
    for f in ["nan", "inf", "str", "empty", "header", "bin", "short", "dir", "nope"]:
        add(f"fit-series-{f}", "chaos", "fit", f"{{D}}/{f}.csv", "--out", "{D}/f.json",
            "--predictor", "linear")  # fmt: skip
        add(f"evaluate-series-{f}", "chaos", "evaluate", f"{{D}}/{f}.csv", "--predictor",
            "linear", "--n-train", "100")  # fmt: skip
    add("fit-series-long", "chaos", "fit", LONG + ".csv", "--out", "{D}/f.json")
    add("fit-const", "chaos", "fit", "{D}/const.csv", "--out", "{D}/f.json", "--predictor",
        "linear")  # fmt: skip
    for col in ["5", "-1", "y"]:
        add(f"fit-column-{col}", *seeded["fit"], "--column", col)
    for out in ["{D}/nodir/o.csv", "{D}/dir", "{D}/file/o.csv", LONG + ".csv",
                LONG_NAME + ".csv", "{D}/"]:  # fmt: skip
        add(f"generate-out-{Path(out).name[:12]}", "chaos", "generate", "logistic", "--out", out)
        add(f"fit-out-{Path(out).name[:12]}", "chaos", "fit", "{D}/x.csv", "--out", out,
            "--predictor", "linear")  # fmt: skip
    add("fit-mlp-out-pt", "chaos", "fit", "{D}/x.csv", "--out", "{D}/w.pt", "--predictor", "mlp")
    add("generate-unknown", "chaos", "generate", "weather", "--out", "{D}/o.csv")
    add("fit-unknown-predictor", "chaos", "fit", "{D}/x.csv", "--out", "{D}/f.json",
        "--predictor", "oracle")  # fmt: skip
    add("fit-unsaveable", "chaos", "fit", "{D}/x.csv", "--out", "{D}/f.json", "--predictor",
        "esn")  # fmt: skip
    add("evaluate-unknown-predictor", "chaos", "evaluate", "{D}/x.csv", "--predictor", "oracle",
        "--n-train", "100")  # fmt: skip
    add("evaluate-neither", "chaos", "evaluate", "{D}/x.csv")
    add("evaluate-both", "chaos", "evaluate", "{D}/x.csv", "--predictor", "linear",
        "--model", "{D}/cm_badpred.json")  # fmt: skip
    add("evaluate-no-n-train", "chaos", "evaluate", "{D}/x.csv", "--predictor", "linear")
    add("evaluate-n-train-too-many", *seeded["evaluate"][:-1], "100000")
    for m in ["nope", "dir", "cm_garbage", "cm_list", "cm_empty", "cm_badpred", "cm_badlags",
              "cm_zerolags", "cm_nancoef", "cm_strcoef", "cm_badscale", "cm_features",
              "cm_mlp_escape", "cm_mlp_missing", "cm_mlp_garbage"]:  # fmt: skip
        add(f"evaluate-model-{m}", "chaos", "evaluate", "{D}/x.csv", "--model", f"{{D}}/{m}.json")
    add("evaluate-model-long", "chaos", "evaluate", "{D}/x.csv", "--model", LONG + ".json")
    add("evaluate-model-garbage-bytes", "chaos", "evaluate", "{D}/x.csv", "--model",
        "{D}/garbage.pt")  # fmt: skip
    # usage errors that click reports
    add("unknown-option", "knots", M1, "--frobnicate")
    add("missing-model", "knots")
    add("missing-data", "hessian", M2)
    add("extra-argument", "knots", M1, "extra")
    return cases


CASES = _cases()


def test_the_table_is_large_and_unique():
    names = [name for name, _ in CASES]
    assert len(names) == len(set(names))
    assert len(CASES) >= 250


@pytest.mark.parametrize("args", [a for _, a in CASES], ids=[n for n, _ in CASES])
def test_bad_invocation_gives_one_clear_line(args, files, capsys):
    argv = [a.replace("{D}", str(files)) for a in args]
    rc = main(argv)
    captured = capsys.readouterr()
    lines = [line for line in (captured.out + captured.err).splitlines() if line.strip()]
    assert rc != 0, (argv, lines)
    assert len(lines) == 1, lines
    line = lines[0]
    assert line.startswith("error: "), line
    # "error: unexpected <Type>" is the generic handler's line for an unanticipated exception
    assert "Traceback" not in line and not line.startswith("error: unexpected "), line


# --------------------------------------------------------------------------------------------
# Specific promises behind the table
# --------------------------------------------------------------------------------------------


def _error(files: Path, capsys, *args: str) -> str:
    rc = main([a.replace("{D}", str(files)) for a in args])
    lines = capsys.readouterr().err.strip().splitlines()
    assert rc != 0 and len(lines) == 1, lines
    return lines[0]


def test_garbage_is_not_called_a_pickle_that_runs_code(files, capsys):
    for name in ("garbage.pt", "garbage_c.pt", "garbage_pk.pt", "text.pt", "empty.pt"):
        line = _error(files, capsys, "knots", f"{{D}}/{name}")
        assert "execute code" not in line and "not a torch file" in line, line
    for name in ("evil.pt", "evil_raw.pt", "module.pt"):
        line = _error(files, capsys, "knots", f"{{D}}/{name}")
        assert "would execute code" in line, line


def test_a_directory_is_not_called_missing(files, capsys):
    assert "is a directory" in _error(files, capsys, "knots", "{D}/dir.pt")
    assert "not found" in _error(files, capsys, "knots", "{D}/nope.pt")


def test_declared_sizes_are_checked_before_allocating(files, capsys):
    import resource

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    line = _error(files, capsys, "knots", "{D}/huge.pt")
    assert "150000000" in line
    line = _error(files, capsys, "knots", "{D}/toobig.pt")
    assert f"{MAX_PARAMETERS:,}" in line  # the limit is in the message
    line = _error(files, capsys, "knots", "{D}/sd.pt", "--arch", "2-1000000-1000000-3:relu")
    assert f"{MAX_PARAMETERS:,}" in line
    for forged in ("forged.pt2", "forged_empty.pt2"):
        assert "declares shape (150000000, 2)" in _error(files, capsys, "knots", f"{{D}}/{forged}")
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mb < 500  # the 1.2 GB layers were never built


def test_int_weights_and_bad_records_are_named(files, capsys):
    assert "dtype int64" in _error(files, capsys, "knots", "{D}/intw.pt")
    assert "dtype int32" in _error(files, capsys, "knots", "{D}/sd_int.pt", "--arch", "2-4-3:relu")
    assert "'sizes' must be positive ints" in _error(files, capsys, "knots", "{D}/badsizes.pt")
    assert "dtype 'int64'" in _error(files, capsys, "knots", "{D}/baddtype.pt")


def test_plot_extension_and_the_path_really_written(files, capsys, tmp_path):
    line = _error(files, capsys, "regions", M2, "--plot", "{D}/x.xyz")
    assert ".png" in line and ".svg" in line and "'.xyz'" in line
    assert main(["regions", str(files / "m2.pt"), "--plot", str(tmp_path / "pic")]) == 0
    out = capsys.readouterr().out
    assert (tmp_path / "pic.png").is_file() and str(tmp_path / "pic.png") in out
    assert main(["regions", str(files / "m2.pt"), "--plot", str(tmp_path / "pic.svg")]) == 0
    assert (tmp_path / "pic.svg").read_text().lstrip().startswith("<?xml")


def test_pt2_of_a_plain_sequential_loads(files, capsys):
    assert main(["regions", str(files / "m2.pt2"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["n_regions"] >= 1


def test_output_folder_must_exist(files, capsys):
    line = _error(files, capsys, "chaos", "generate", "logistic", "--out", "{D}/nodir/o.csv")
    assert "does not exist" in line and "mkdir" in line
    assert not (files / "nodir").exists()


def test_good_inputs_still_work(files, capsys):
    assert main(["knots", str(files / "m1.pt"), "--json"]) == 0
    assert main(["hessian", str(files / "m2.pt"), "--data", str(files / "xy.npz"), "--json"]) == 0
    assert main(["sensitivity", str(files / "m2.pt"), "--data", str(files / "X2.npy")]) == 0
    assert main(["chaos", "evaluate", str(files / "x.csv"), "--predictor", "linear",
                 "--n-train", "100", "--seed", str(2**64 - 1)]) == 0  # fmt: skip
    capsys.readouterr()


def test_unreadable_model_file(files, capsys, tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root reads any file")
    p = tmp_path / "locked.pt"
    p.write_bytes((files / "m1.pt").read_bytes())
    p.chmod(0)
    assert "cannot read" in _error(files, capsys, "knots", str(p))
