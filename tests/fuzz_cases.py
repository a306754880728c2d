"""The fuzz harness behind tests/test_fuzz.py: every public callable of nngeom, a valid baseline
call for each, and bad values per argument kind.

A *target* is one public callable (a function, a class constructor, or a method of a chaos
predictor) with a baseline (valid keyword arguments, built fresh for every call because some
calls modify their model) and the kinds of the arguments to mutate. A *case* replaces ONE argument
of the baseline by a bad value. :func:`run_call` runs a call under a time limit and classifies it:
``ok`` (it returned), ``nngeom`` (an ``ng.NngeomError`` escaped: the contract), ``raw`` (any other
exception: a leak to fix) or ``hang`` (past the time limit).

Cases that would allocate absurd amounts of memory if a function did not refuse them first
(``bomb=True``: huge sizes) run in a forked child with an address-space limit, so a leak there
fails the test (as a ``MemoryError``/``RuntimeError`` leak) instead of eating the machine.
"""

from __future__ import annotations

import inspect
import math
import os
import pickle
import resource
import signal
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

import nngeom as ng

# per call; a valid baseline takes well under a second (the quick test lowers it, see
# tests/test_fuzz.py)
TIME_LIMIT_S = float(os.environ.get("NNGEOM_FUZZ_TIME_LIMIT", "8"))
BOMB_MEMORY = 2 * 2**30  # extra address space a bomb case may allocate in its child process

# --------------------------------------------------------------------------------------------
# exclusions (documented: these are not input-validation leaks)
# --------------------------------------------------------------------------------------------
EXCLUDED = {
    # result containers: built by nngeom from validated values, documented as outputs; a user
    # constructing one by hand with bad fields is not an analysis call
    "Knots": "result dataclass (output of ng.knots)",
    "LineRegions": "result dataclass (output of ng.regions_on_line)",
    "Regions2D": "result dataclass (output of ng.regions_2d)",
    "Plane": "result dataclass (output of ng.plane_through); fuzzed through plane_through",
    "TrainResult": "result dataclass (output of ng.train)",
    "DenseLayer": "result dataclass (output of ng.dense_hidden_layers)",
    "MLP": "view dataclass built by ng.as_mlp (fuzzed through as_mlp)",
    "ModelView": "view built by ng.model_view (fuzzed through model_view)",
    "chaos.Split": "result dataclass (output of ng.chaos.split)",
    "SpectralDensity": "result dataclass (output of ng.spectral_density)",
    "Analysis": "result dataclass (output of ng.analyze)",
    "analyze": "writes a run directory (its input checks are tested in tests/test_analyze.py and "
    "by the CLI fuzz of `nngeom analyze`)",
    "chaos.LYAPUNOV_EXPONENTS": "a constant dict, not callable",
    # exceptions are raised, not called
}


# --------------------------------------------------------------------------------------------
# valid building blocks (small: every baseline runs in well under a second)
# --------------------------------------------------------------------------------------------
def small_mlp(dtype: torch.dtype = torch.float32) -> nn.Sequential:
    return ng.mlp([2, 4, 1], dtype=dtype)


def x2(n: int = 8, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    return torch.randn(n, 2, generator=g, dtype=dtype)


def y1(n: int = 8, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    g = torch.Generator().manual_seed(2)
    return torch.randn(n, 1, generator=g, dtype=dtype)


def series(n: int = 120) -> np.ndarray:
    t = np.arange(n, dtype=np.float64)
    return np.sin(0.3 * t) + 0.5 * np.sin(0.07 * t + 1.0)


def nan_model() -> nn.Module:
    m = small_mlp()
    with torch.no_grad():
        m[0].weight[0, 0] = float("nan")
    return m


def inf_model() -> nn.Module:
    m = small_mlp()
    with torch.no_grad():
        m[2].bias[0] = float("inf")
    return m


def complex_model() -> nn.Module:
    return nn.Sequential(
        nn.Linear(2, 4, dtype=torch.complex64), nn.ReLU(), nn.Linear(4, 1, dtype=torch.complex64)
    )


def meta_model() -> nn.Module:
    return small_mlp().to("meta")


def conv_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 2, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(2, 1)
    ).eval()


def wide_in_model() -> nn.Module:
    return ng.mlp([3, 4, 1])


def vaf_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(2, 4), ng.VAF(k=2), nn.Linear(4, 1))


class _Weird(nn.Module):
    """A module whose forward returns a string: a custom module gone wrong."""

    def forward(self, x):  # noqa: D401
        return "not a tensor"


class UserCodeError(Exception):
    """Raised by the user code the fuzz passes in (a model's forward, a callback). nngeom lets a
    user's own exception through unchanged (wrapping it would hide the user's bug), so escaping
    is allowed for this one type: status ``user``."""


class _Raises(nn.Module):
    def forward(self, x):
        raise UserCodeError("user forward failed")


def _raise_user(*args, **kwargs):
    raise UserCodeError("user callable failed")


# --------------------------------------------------------------------------------------------
# bad values per argument kind
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Bad:
    label: str
    make: Callable[[], Any]
    bomb: bool = False


def _c(label: str, value: Any, bomb: bool = False) -> Bad:
    return Bad(label, lambda: value, bomb)


WRONG_TYPES = [
    _c("None", None),
    _c("str 'abc'", "abc"),
    _c("empty list", []),
    _c("dict", {"a": 1}),
    Bad("object()", object),
    _c("complex 1j", 1j),
]

MODEL = [
    Bad("MLP with NaN weight", nan_model),
    Bad("MLP with inf bias", inf_model),
    Bad("complex weights", complex_model),
    Bad("meta-device model", meta_model),
    Bad("conv net where an MLP is expected", conv_model),
    Bad("float64 model (float32 data)", lambda: small_mlp(torch.float64)),
    Bad("model with 3 inputs (data has 2)", wide_in_model),
    Bad("empty nn.Sequential", nn.Sequential),
    Bad("bare nn.ReLU", nn.ReLU),
    Bad("forward returns a str", _Weird),
    Bad("forward raises (user code)", _Raises),
    Bad("model as a tensor", lambda: torch.zeros(2, 2)),
]


def _tensor_cases(n_cols: int | None) -> list[Bad]:
    cols = n_cols or 1
    shape = (4, n_cols) if n_cols else (4,)
    return [
        Bad("NaN entry", lambda: torch.full(shape, float("nan"))),
        Bad("inf entry", lambda: torch.full(shape, float("inf"))),
        Bad("float64 (float32 model)", lambda: torch.ones(shape, dtype=torch.float64)),
        Bad("float16", lambda: torch.ones(shape, dtype=torch.float16)),
        Bad("complex64", lambda: torch.ones(shape, dtype=torch.complex64)),
        Bad("meta device", lambda: torch.ones(shape, device="meta")),
        Bad("empty (0 rows)", lambda: torch.ones((0, cols) if n_cols else (0,))),
        Bad("0-d tensor", lambda: torch.tensor(1.0)),
        Bad("3-d tensor", lambda: torch.ones(4, cols, 2)),
        Bad("wrong width (7 columns)", lambda: torch.ones(4, 7)),
        Bad("int64 tensor", lambda: torch.ones(shape, dtype=torch.int64)),
        Bad("bool tensor", lambda: torch.ones(shape, dtype=torch.bool)),
        Bad("numpy object array", lambda: np.array([["a", None]] * 4, dtype=object)),
        Bad("nested list of str", lambda: [["a", "b"]] * 4),
        Bad("requires_grad leaf", lambda: torch.ones(shape, requires_grad=True)),
        Bad("huge values 1e38", lambda: torch.full(shape, 1e38)),
        Bad("-0.0 entries", lambda: torch.full(shape, -0.0)),
    ]


X = _tensor_cases(2)
Y = _tensor_cases(1) + [Bad("9 rows (X has 8)", lambda: torch.ones(9, 1))]
VEC = _tensor_cases(None)

SIZE = [
    _c("0", 0),
    _c("-1", -1),
    _c("10**30", 10**30, bomb=True),
    _c("2**64", 2**64, bomb=True),
    _c("2**31", 2**31, bomb=True),
    _c("True", True),
    _c("1.5", 1.5),
    _c("nan", math.nan),
    _c("inf", math.inf),
    _c("str '3'", "3"),
    _c("numpy int64(-5)", np.int64(-5)),
]
INDEX = [
    _c("-1", -1),
    _c("-100", -100),
    _c("10**30", 10**30),
    _c("2**64", 2**64),
    _c("True", True),
    _c("1.5", 1.5),
    _c("str '0'", "0"),
    _c("nan", math.nan),
]
SEED = [
    _c("'abc'", "abc"),
    _c("2**64", 2**64),
    _c("-1", -1),
    _c("1.5", 1.5),
    _c("True", True),
    _c("10**40", 10**40),
    _c("nan", math.nan),
]
FLOAT = [
    _c("nan", math.nan),
    _c("inf", math.inf),
    _c("-inf", -math.inf),
    _c("-0.0", -0.0),
    _c("-1.0", -1.0),
    _c("1e308", 1e308),
    _c("True", True),
    _c("str '1.0'", "1.0"),
    _c("10**400 (int too big for float)", 10**400),
    _c("0-d tensor nan", torch.tensor(float("nan"))),
]
OPTION = [
    _c("'nonsense'", "nonsense"),
    _c("''", ""),
    _c("3", 3),
    _c("True", True),
]
WIDTHS = [
    _c("[]", []),
    _c("[0]", [0]),
    _c("[-1, 2]", [-1, 2]),
    _c("[1.5]", [1.5]),
    _c("[True, 2]", [True, 2]),
    _c("['a']", ["a"]),
    _c("[10**30]", [10**30], bomb=True),
    _c("[2**64]", [2**64], bomb=True),
    _c("[100000] * 3", [100_000] * 3, bomb=True),
    _c("[nan]", [math.nan]),
    _c("str '234'", "234"),
    _c("int 3", 3),
]
SERIES = [
    Bad("NaN series", lambda: np.full(120, np.nan)),
    Bad("inf series", lambda: np.full(120, np.inf)),
    Bad("empty array", lambda: np.zeros(0)),
    Bad("3 values", lambda: np.ones(3)),
    Bad("2-D array (120, 2)", lambda: np.ones((120, 2))),
    Bad("3-D array", lambda: np.ones((4, 5, 6))),
    Bad("complex series", lambda: np.ones(120, dtype=complex)),
    Bad("object array of str", lambda: np.array(["a"] * 120, dtype=object)),
    Bad("list of str", lambda: ["x"] * 120),
    Bad("meta tensor", lambda: torch.ones(120, device="meta")),
    Bad("constant series", lambda: np.ones(120)),
    Bad("bool array", lambda: np.ones(120, dtype=bool)),
    Bad("0-d array", lambda: np.array(1.0)),
]
ARRAY2 = [  # 2-D numeric arrays (chaos regressors' X, points)
    Bad("NaN entries", lambda: np.full((30, 4), np.nan)),
    Bad("inf entries", lambda: np.full((30, 4), np.inf)),
    Bad("empty (0, 4)", lambda: np.zeros((0, 4))),
    Bad("1-D (30,)", lambda: np.ones(30)),
    Bad("3-D", lambda: np.ones((30, 4, 2))),
    Bad("wrong width (30, 7)", lambda: np.ones((30, 7))),
    Bad("complex", lambda: np.ones((30, 4), dtype=complex)),
    Bad("object array of str", lambda: np.array([["a"] * 4] * 30, dtype=object)),
    Bad("meta tensor", lambda: torch.ones(30, 4, device="meta")),
    Bad("0-d", lambda: np.array(2.0)),
]
ARRAY1 = [  # 1-D numeric arrays of a fixed length (targets, metrics)
    Bad("NaN entries", lambda: np.full(30, np.nan)),
    Bad("inf entries", lambda: np.full(30, np.inf)),
    Bad("empty", lambda: np.zeros(0)),
    Bad("wrong length 7", lambda: np.ones(7)),
    Bad("2-D (30, 3)", lambda: np.ones((30, 3))),
    Bad("complex", lambda: np.ones(30, dtype=complex)),
    Bad("object array of str", lambda: np.array(["a"] * 30, dtype=object)),
    Bad("meta tensor", lambda: torch.ones(30, device="meta")),
    Bad("0-d", lambda: np.array(2.0)),
]
CALLABLE = [
    _c("returns nan", lambda *a, **k: math.nan),
    _c("returns a str", lambda *a, **k: "abc"),
    _c("raises its own exception", _raise_user),
    _c("a non-callable int", 3),
]
PATH = [
    Bad("missing file", lambda: "/nonexistent/dir/file.pt"),
    Bad("a directory", tempfile.gettempdir),
    _c("int path", 3),
    _c("empty str", ""),
    _c("NUL in path", "a\0b.pt"),
]
DTYPE = [
    _c("torch.int64", torch.int64),
    _c("torch.complex64", torch.complex64),
    _c("torch.bool", torch.bool),
    _c("str 'float32'", "float32"),
    _c("numpy float64", np.float64),
]
DEVICE = [
    _c("'meta'", "meta"),
    _c("'cuda:7'", "cuda:7"),
    _c("'nonsense'", "nonsense"),
    _c("-1", -1),
]
SHAPE = [
    _c("()", ()),
    _c("(0,)", (0,)),
    _c("(-1,)", (-1,)),
    _c("(10**30,)", (10**30,), bomb=True),
    _c("(1.5,)", (1.5,)),
    _c("(5,)", (5,)),
    _c("'abc'", "abc"),
]
BOOL = [_c("str 'yes'", "yes"), _c("2", 2), _c("nan", math.nan)]
GENERATOR = [
    _c("int 3", 3),
    _c("str 'g'", "g"),
    Bad("numpy Generator", lambda: np.random.default_rng(0)),
    Bad("torch.Tensor", lambda: torch.zeros(2)),
]
ANY: list[Bad] = []

KINDS: dict[str, list[Bad]] = {
    "model": MODEL,
    "X": X,
    "y": Y,
    "vec": VEC,
    "size": SIZE,
    "index": INDEX,
    "seed": SEED,
    "float": FLOAT,
    "option": OPTION,
    "widths": WIDTHS,
    "series": SERIES,
    "array2": ARRAY2,
    "array1": ARRAY1,
    "callable": CALLABLE,
    "path": PATH,
    "dtype": DTYPE,
    "device": DEVICE,
    "shape": SHAPE,
    "bool": BOOL,
    "generator": GENERATOR,
    "any": ANY,
}


def cases_for(kind: str) -> list[Bad]:
    """The kind's own bad values, then the generic wrong types."""
    return KINDS[kind] + WRONG_TYPES


# --------------------------------------------------------------------------------------------
# targets
# --------------------------------------------------------------------------------------------
@dataclass
class Target:
    name: str  # "knots", "chaos.embed", "chaos.LinearAR.fit"
    call: Callable[..., Any]
    baseline: Callable[[], dict[str, Any]]
    kinds: dict[str, str]  # argument -> kind (the arguments to mutate)
    notes: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def module(self) -> str:
        fn = self.extra.get("module")
        if fn:
            return fn
        obj = self.call
        mod = getattr(obj, "__module__", "") or ""
        return mod.removeprefix("nngeom.")


def _tmpdir() -> Path:
    d = Path(tempfile.gettempdir()) / f"nngeom-fuzz-{os.getpid()}"
    d.mkdir(exist_ok=True)
    return d


def _saved_model_path() -> str:
    p = _tmpdir() / "model.pt"
    if not p.exists():
        ng.save_model(small_mlp(), p)
    return str(p)


def _csv_path() -> str:
    p = _tmpdir() / "series.csv"
    if not p.exists():
        ng.chaos.write_csv_column(p, series(20), "x")
    return str(p)


def _emb(n: int = 120) -> tuple[np.ndarray, np.ndarray]:
    return ng.chaos.embed(series(n), lags=4, delay=2, horizon=1)


def _Xr() -> np.ndarray:
    return _emb()[0][:30]


def _yr() -> np.ndarray:
    return _emb()[1][:30]


def _method(cls_factory, method: str, fit: bool = True, fit_series: bool = False):
    """A target calling ``cls_factory().method(**kw)`` (fitted first when asked)."""

    def call(**kw):
        obj = cls_factory()
        if fit:
            obj.fit(_Xr(), _yr())
        if fit_series:
            obj.fit_series(series())
        return getattr(obj, method)(**kw)

    return call


def _regions_call(**kw):
    return ng.regions_2d(**kw)


chaos = ng.chaos
T = Target
# fmt: off
TARGETS: list[Target] = [
    # --- nets / view / train / modelfile ----------------------------------------------------
    T("mlp", ng.mlp, lambda: {"sizes": [2, 4, 1]},
      {"sizes": "widths", "activation": "option", "seed": "seed", "bias": "bool",
       "dtype": "dtype", "device": "device", "output_activation": "option"}),
    T("as_mlp", ng.as_mlp, lambda: {"module": small_mlp()},
      {"module": "model", "check_finite": "bool", "verify": "bool"}),
    T("model_view", ng.model_view, lambda: {"model": small_mlp()},
      {"model": "model", "input_shape": "shape", "verify": "bool"}),
    T("train", ng.train,
      lambda: {"model": small_mlp(), "X": x2(), "y": y1(), "epochs": 2},
      {"model": "model", "X": "X", "y": "y", "loss": "option", "optimizer": "option",
       "epochs": "size", "lr": "float", "batch_size": "size", "weight_decay": "float",
       "param_groups": "any", "seed": "seed", "tol": "float", "callback": "callable"}),
    T("save_model", ng.save_model,
      lambda: {"model": small_mlp(), "path": str(_tmpdir() / "saved.pt")},
      {"model": "model", "path": "path"}),
    T("load_model", ng.load_model, lambda: {"path": _saved_model_path()},
      {"path": "path", "arch": "option", "key": "option"}),
    # --- knots / regions ----------------------------------------------------------------------
    T("knots", ng.knots, lambda: {"model": ng.mlp([1, 4, 1]), "lo": -2.0, "hi": 2.0},
      {"model": "model", "lo": "float", "hi": "float", "exact": "bool", "rtol": "float",
       "max_exact_pieces": "size", "input_shape": "shape"}),
    T("knot_upper_bound", ng.knot_upper_bound, lambda: {"widths": [3, 4]}, {"widths": "widths"}),
    T("tight_knot_network", ng.tight_knot_network, lambda: {"widths": [2, 3]},
      {"widths": "widths", "dtype": "dtype", "eps": "float"}),
    T("regions_on_line", ng.regions_on_line,
      lambda: {"model": small_mlp(), "x0": torch.tensor([-1.0, -1.0]),
               "x1": torch.tensor([1.0, 1.0])},
      {"model": "model", "x0": "vec", "x1": "vec", "with_patterns": "bool"}),
    T("regions_2d", _regions_call, lambda: {"model": small_mlp()},
      {"model": "model", "origin": "vec", "u": "vec", "v": "vec", "extent": "float",
       "merge_pieces": "bool", "decision_boundary": "bool", "max_memory": "float"},
      extra={"module": "regions"}),
    T("plane_through", ng.plane_through,
      lambda: {"x0": np.zeros(2), "x1": np.array([1.0, 0.0]), "x2": np.array([0.0, 1.0])},
      {"x0": "vec", "x1": "vec", "x2": "vec", "margin": "float"}),
    T("regions_along_lines", ng.regions_along_lines,
      lambda: {"model": small_mlp(), "X": x2(), "n_lines": 3},
      {"model": "model", "X": "X", "n_lines": "size", "length": "float", "seed": "seed"}),
    T("boundary_distances", ng.boundary_distances,
      lambda: {"model": small_mlp(), "X": x2(), "n_directions": 3},
      {"model": "model", "X": "X", "n_directions": "size", "seed": "seed",
       "method": "option", "max_elements": "size"}),
    T("pattern_statistics", ng.pattern_statistics, lambda: {"model": small_mlp(), "X": x2()},
      {"model": "model", "X": "X", "chunk_size": "size"}),
    T("activation_patterns", ng.activation_patterns, lambda: {"model": small_mlp(), "X": x2()},
      {"model": "model", "X": "X", "chunk_size": "size"}),
    # --- symmetry / hessian ---------------------------------------------------------------------
    T("count_equivalent_minima", ng.count_equivalent_minima, lambda: {"widths": [3, 4]},
      {"widths": "widths"}),
    T("count_permutation_points", ng.count_permutation_points, lambda: {"widths": [3, 4]},
      {"widths": "widths", "order": "index"}),
    T("dense_hidden_layers", ng.dense_hidden_layers, lambda: {"model": small_mlp()},
      {"model": "model", "input_shape": "shape"}),
    T("permute", ng.permute,
      lambda: {"model": small_mlp(), "layer": 0, "perm": [1, 0, 3, 2]},
      {"model": "model", "layer": "index", "perm": "widths", "input_shape": "shape"}),
    T("CriticalPointSearch", ng.CriticalPointSearch, lambda: {},
      {"lbfgs_steps": "size", "trust_steps": "size", "newton_steps": "size",
       "restarts": "size", "dense_limit": "size", "project_data_null": "bool",
       "grad_tol": "float", "accept_tol": "float"}),
    T("find_permutation_saddle", ng.find_permutation_saddle,
      lambda: {"model": small_mlp(), "X": x2(), "y": y1(), "layer": 0, "i": 0, "j": 1,
               "search": ng.CriticalPointSearch(
                   lbfgs_steps=3, newton_steps=2, trust_steps=3, restarts=0)},
      {"model": "model", "X": "X", "y": "y", "layer": "index", "i": "index", "j": "index",
       "loss": "option", "lam": "float", "search": "any", "k": "size", "full_limit": "size",
       "zero_tol": "float", "chunk_size": "size", "seed": "seed"}),
    T("spectral_density", ng.spectral_density,
      lambda: {"matvec": small_mlp(), "n": x2(), "y": y1(), "n_probes": 2, "steps": 4},
      {"matvec": "model", "n": "X", "y": "y", "loss": "option", "n_probes": "size",
       "steps": "size", "seed": "seed", "chunk_size": "size"}),
    T("hessian", ng.hessian, lambda: {"model": small_mlp(), "X": x2(), "y": y1()},
      {"model": "model", "X": "X", "y": "y", "loss": "option", "chunk_size": "size"}),
    T("hessian_eigenvalues", ng.hessian_eigenvalues,
      lambda: {"model": small_mlp(), "X": x2(), "y": y1()},
      {"model": "model", "X": "X", "y": "y", "loss": "option", "k": "size",
       "which": "option", "tol": "float", "max_iter": "size", "chunk_size": "size",
       "project": "option", "seed": "seed"}),
    # --- sensitivity / measures -----------------------------------------------------------------
    T("tangent_sensitivity", ng.tangent_sensitivity, lambda: {"model": small_mlp(), "X": x2()},
      {"model": "model", "X": "X", "output": "index", "method": "option",
       "chunk_size": "size"}),
    T("tangent_sensitivity_bounds", ng.tangent_sensitivity_bounds,
      lambda: {"model": small_mlp(), "X": x2()},
      {"model": "model", "X": "X", "chunk_size": "size"}),
    T("tangent_sensitivity_hutchinson", ng.tangent_sensitivity_hutchinson,
      lambda: {"model": small_mlp(), "X": x2(), "probes": 2},
      {"model": "model", "X": "X", "probes": "size", "output": "index", "seed": "seed",
       "method": "option", "chunk_size": "size"}),
    T("input_jacobian_norm", ng.input_jacobian_norm, lambda: {"model": small_mlp(), "X": x2()},
      {"model": "model", "X": "X", "chunk_size": "size"}),
    T("kendall_tau", ng.kendall_tau,
      lambda: {"x": np.arange(30.0), "y": np.arange(30.0) ** 2},
      {"x": "array1", "y": "array1"}),
    T("granulated_psi", ng.granulated_psi,
      lambda: {"measure": np.arange(30.0), "gap": np.arange(30.0) % 7,
               "factors": {"w": [i % 3 for i in range(30)], "s": [i // 3 for i in range(30)]}},
      {"measure": "array1", "gap": "array1", "factors": "any", "vary": "widths"}),
    T("bootstrap_ci", ng.bootstrap_ci,
      lambda: {"statistic": lambda idx: float(np.mean(idx)), "n": 10, "n_boot": 20},
      {"statistic": "callable", "n": "size", "n_boot": "size", "level": "float",
       "seed": "seed"}),
    # --- activations ----------------------------------------------------------------------------
    T("VAF", ng.VAF, lambda: {"k": 2},
      {"k": "size", "share": "option", "init": "option", "hidden": "option",
       "channel_dim": "index", "num_channels": "size", "fit_range": "vec", "dtype": "dtype",
       "device": "device", "fused": "bool"}),
    T("VAF.forward", lambda x: ng.VAF(k=2)(x), lambda: {"x": x2()}, {"x": "X"},
      extra={"module": "activations"}),
    T("Rational", ng.Rational, lambda: {}, {"init": "option", "fit_range": "vec"}),
    T("SwishBeta", ng.SwishBeta, lambda: {}, {"beta": "float"}),
    T("VAFExport", ng.VAFExport, lambda: {"vaf": ng.VAF(k=2)}, {"vaf": "model"}),
    T("export_activations", ng.export_activations, lambda: {"model": vaf_model()},
      {"model": "model"}),
    T("make_baseline", ng.make_baseline, lambda: {"name": "relu"}, {"name": "option"}),
    T("param_groups", ng.param_groups, lambda: {"model": vaf_model()},
      {"model": "model", "weight_decay": "float", "activation_lr": "float",
       "activation_weight_decay": "float"}),
    # --- chaos: systems -------------------------------------------------------------------------
    T("chaos.mackey_glass", chaos.mackey_glass, lambda: {"n": 50, "transient": 20.0},
      {"n": "size", "tau": "float", "seed": "seed", "a": "float", "b": "float", "p": "float",
       "dt": "float", "step": "float", "history": "callable", "transient": "float"}),
    T("chaos.mackey_glass_convergence", chaos.mackey_glass_convergence,
      lambda: {"t_end": 5.0, "steps": (1.0, 0.5), "reference_step": 0.125},
      {"tau": "float", "t_end": "float", "steps": "vec", "reference_step": "float",
       "seed": "seed"}),
    T("chaos.logistic_map", chaos.logistic_map, lambda: {"n": 50},
      {"n": "size", "r": "float", "x0": "float", "seed": "seed"}),
    T("chaos.henon_map", chaos.henon_map, lambda: {"n": 50},
      {"n": "size", "a": "float", "b": "float", "x0": "vec", "seed": "seed",
       "transient": "size"}),
    T("chaos.lorenz", chaos.lorenz, lambda: {"n": 50, "transient": 1.0},
      {"n": "size", "dt": "float", "step": "float", "sigma": "float", "rho": "float",
       "beta": "float", "x0": "vec", "seed": "seed", "transient": "float"}),
    # --- chaos: embedding / series ----------------------------------------------------------------
    T("chaos.as_series", chaos.as_series, lambda: {"series": series()},
      {"series": "series", "name": "option"}),
    T("chaos.embed", chaos.embed, lambda: {"series": series()},
      {"series": "series", "lags": "size", "delay": "size", "horizon": "size"}),
    T("chaos.embed_indices", chaos.embed_indices, lambda: {"n": 120},
      {"n": "size", "lags": "size", "delay": "size", "horizon": "size"}),
    T("chaos.split", chaos.split, lambda: {"series": series(), "n_train": 60},
      {"series": "series", "n_train": "size", "n_test": "size", "lags": "size",
       "delay": "size", "horizon": "size", "start": "index"}),
    T("chaos.contexts", chaos.contexts,
      lambda: {"series": series(), "starts": [20, 40], "length": 20, "steps": 5},
      {"series": "series", "starts": "widths", "length": "size", "steps": "size"}),
    T("chaos.read_csv_column", chaos.read_csv_column, lambda: {"path": _csv_path()},
      {"path": "path", "column": "index"}),
    T("chaos.write_csv_column", chaos.write_csv_column,
      lambda: {"path": str(_tmpdir() / "w.csv"), "values": series(20)},
      {"path": "path", "values": "series", "name": "option"}),
    T("chaos.santafe_laser", chaos.santafe_laser, dict, {}),
    T("chaos.sunspots", chaos.sunspots, dict, {}),
    # --- chaos: metrics ---------------------------------------------------------------------------
    T("chaos.nrmse", chaos.nrmse,
      lambda: {"y_true": np.sin(np.arange(30.0)), "y_pred": np.cos(np.arange(30.0))},
      {"y_true": "array1", "y_pred": "array1", "scale": "float"}),
    *[T(f"chaos.{f}", getattr(chaos, f),
        lambda: {"y_true": np.sin(np.arange(30.0))[None].repeat(3, 0),
                 "y_pred": np.cos(np.arange(30.0))[None].repeat(3, 0)},
        {"y_true": "array2", "y_pred": "array2", "scale": "float"})
      for f in ("nrmse_curve", "log10_nrmse_curve")],
    T("chaos.nrmse_at", chaos.nrmse_at,
      lambda: {"y_true": np.sin(np.arange(30.0))[None].repeat(3, 0),
               "y_pred": np.cos(np.arange(30.0))[None].repeat(3, 0), "step": 5},
      {"y_true": "array2", "y_pred": "array2", "step": "index", "scale": "float"}),
    T("chaos.smape", chaos.smape,
      lambda: {"y_true": np.sin(np.arange(30.0)), "y_pred": np.cos(np.arange(30.0))},
      {"y_true": "array1", "y_pred": "array1"}),
    T("chaos.valid_prediction_time", chaos.valid_prediction_time,
      lambda: {"y_true": np.sin(np.arange(30.0))[None].repeat(3, 0),
               "y_pred": np.sin(np.arange(30.0) + 0.1)[None].repeat(3, 0)},
      {"y_true": "array2", "y_pred": "array2", "dt": "float", "lyapunov_exponent": "float",
       "threshold": "float", "scale": "float"}),
    T("chaos.mean_spread", chaos.mean_spread, lambda: {"values": np.arange(5.0)},
      {"values": "array1"}),
    # --- chaos: bumps -----------------------------------------------------------------------------
    T("chaos.ridge", chaos.ridge, lambda: {"x": np.ones((5, 2)), "w": np.ones(2)},
      {"x": "array2", "w": "vec", "a": "float", "steepness": "float"}),
    T("chaos.slab", chaos.slab,
      lambda: {"x": np.ones((5, 2)), "w": np.ones(2), "lo": -1.0, "hi": 1.0},
      {"x": "array2", "w": "vec", "lo": "float", "hi": "float", "steepness": "float"}),
    T("chaos.bump", chaos.bump,
      lambda: {"x": np.ones((5, 2)), "center": np.zeros(2), "half_width": 0.5},
      {"x": "array2", "center": "vec", "half_width": "float", "steepness": "float",
       "sharpness": "float"}),
    T("chaos.bump_network", chaos.bump_network,
      lambda: {"centers": np.zeros((2, 2)), "half_width": 0.5, "heights": np.ones(2)},
      {"centers": "array2", "half_width": "float", "heights": "vec", "steepness": "float",
       "sharpness": "float", "bias": "float"}),
    T("chaos.decompose", chaos.decompose,
      lambda: {"model": chaos.bump_network(np.zeros((2, 2)), 0.5, np.ones(2)),
               "x": np.ones((5, 2))},
      {"model": "model", "x": "array2"}),
    # --- chaos: predictors ------------------------------------------------------------------------
    T("chaos.make_regressor", chaos.make_regressor, lambda: {"name": "linear"},
      {"name": "option"}),
    T("chaos.LinearAR", chaos.LinearAR, dict,
      {"method": "option", "ridge": "float", "mu": "float", "epochs": "size"}),
    T("chaos.Polynomial", chaos.Polynomial, dict, {"degree": "size", "ridge": "float"}),
    T("chaos.NVAR", chaos.NVAR, dict, {"ridge": "float", "residual": "bool"}),
    T("chaos.LocalLinear", chaos.LocalLinear, dict, {"k": "size", "ridge": "float"}),
    T("chaos.LapedesFarberMLP", chaos.LapedesFarberMLP, dict,
      {"hidden": "widths", "optimizer": "option", "max_iter": "size", "restarts": "size",
       "lr": "float", "seed": "seed", "device": "device", "screen_iter": "size"}),
    T("chaos.ESN", chaos.ESN, lambda: {"units": 20, "washout": 10},
      {"units": "size", "spectral_radius": "float", "leak": "float", "input_scaling": "float",
       "bias_scaling": "float", "connectivity": "float", "ridge": "float", "washout": "size",
       "seed": "seed"}),
    T("chaos.IteratedForecaster", chaos.IteratedForecaster,
      lambda: {"regressor": chaos.LinearAR(), "lags": 4, "delay": 2, "horizon": 1},
      {"regressor": "any", "lags": "size", "delay": "size", "horizon": "size"}),
    T("chaos.DirectForecaster", chaos.DirectForecaster,
      lambda: {"factory": chaos.LinearAR, "horizons": [1, 2], "lags": 4, "delay": 2},
      {"factory": "callable", "horizons": "widths", "lags": "size", "delay": "size"}),
]
# fmt: on

_PREDICTORS = {
    "LinearAR": lambda: chaos.LinearAR(),
    "Polynomial": lambda: chaos.Polynomial(degree=2),
    "NVAR": lambda: chaos.NVAR(),
    "LocalLinear": lambda: chaos.LocalLinear(k=5),
    "LapedesFarberMLP": lambda: chaos.LapedesFarberMLP(hidden=(4,), max_iter=5),
}
for _n, _f in _PREDICTORS.items():
    TARGETS.append(
        T(
            f"chaos.{_n}.fit",
            _method(_f, "fit", fit=False),
            lambda: {"X": _Xr(), "y": _yr()},
            {"X": "array2", "y": "array1"},
            extra={"module": "chaos.predictors"},
        )
    )
    TARGETS.append(
        T(
            f"chaos.{_n}.predict",
            _method(_f, "predict"),
            lambda: {"X": _Xr()},
            {"X": "array2"},
            extra={"module": "chaos.predictors"},
        )
    )
TARGETS += [
    T(
        "chaos.LocalLinear.predict(chunk_size)",
        _method(_PREDICTORS["LocalLinear"], "predict"),
        lambda: {"X": _Xr(), "chunk_size": 8},
        {"chunk_size": "size"},
        extra={"module": "chaos.predictors"},
    ),
    T(
        "chaos.IteratedForecaster.fit_series",
        _method(
            lambda: chaos.IteratedForecaster(chaos.LinearAR(), 4, 2, 1), "fit_series", fit=False
        ),
        lambda: {"series": series()},
        {"series": "series"},
        extra={"module": "chaos.predictors"},
    ),
    T(
        "chaos.IteratedForecaster.forecast",
        _method(
            lambda: chaos.IteratedForecaster(chaos.LinearAR(), 4, 2, 1),
            "forecast",
            fit=False,
            fit_series=True,
        ),
        lambda: {"context": series(20)[None], "steps": 3},
        {"context": "array2", "steps": "size"},
        extra={"module": "chaos.predictors"},
    ),
    T(
        "chaos.DirectForecaster.fit_series",
        _method(
            lambda: chaos.DirectForecaster(chaos.LinearAR, [1, 2], 4, 2), "fit_series", fit=False
        ),
        lambda: {"series": series()},
        {"series": "series"},
        extra={"module": "chaos.predictors"},
    ),
    T(
        "chaos.DirectForecaster.forecast_at",
        _method(
            lambda: chaos.DirectForecaster(chaos.LinearAR, [1, 2], 4, 2),
            "forecast_at",
            fit=False,
            fit_series=True,
        ),
        lambda: {"context": series(20)[None]},
        {"context": "array2"},
        extra={"module": "chaos.predictors"},
    ),
    T(
        "chaos.ESN.fit_series",
        _method(lambda: chaos.ESN(units=20, washout=10), "fit_series", fit=False),
        lambda: {"series": series()},
        {"series": "series"},
        extra={"module": "chaos.predictors"},
    ),
    T(
        "chaos.ESN.forecast",
        _method(lambda: chaos.ESN(units=20, washout=10), "forecast", fit=False, fit_series=True),
        lambda: {"context": series(20)[None], "steps": 3},
        {"context": "array2", "steps": "size"},
        extra={"module": "chaos.predictors"},
    ),
]
# every target that takes seed= and generator= has its generator fuzzed too
for _target in TARGETS:
    if "seed" in _target.kinds and "generator" in inspect.signature(_target.call).parameters:
        _target.kinds.setdefault("generator", "generator")


def public_names() -> list[str]:
    """Every public callable name the harness must cover: ``ng.*`` and ``ng.chaos.*``."""
    out = []
    for prefix, mod in (("", ng), ("chaos.", ng.chaos)):
        names = getattr(mod, "__all__", None) or [n for n in vars(mod) if not n.startswith("_")]
        for n in names:
            obj = getattr(mod, n)
            if inspect.ismodule(obj) or n == "annotations":
                continue
            if inspect.isclass(obj) and issubclass(obj, BaseException):
                continue  # exceptions are raised, not called
            if n == "__version__" or not (callable(obj) or isinstance(obj, dict)):
                continue
            out.append(prefix + n)
    return sorted(out)


# --------------------------------------------------------------------------------------------
# running one call
# --------------------------------------------------------------------------------------------
class Hang(BaseException):
    """Raised by the alarm in the calling thread (a BaseException: `except Exception` in library
    code cannot swallow it)."""


@dataclass
class Outcome:
    target: str
    module: str
    arg: str
    case: str
    status: str  # ok | nngeom | user (UserCodeError let through) | raw | hang
    exc_type: str = ""
    message: str = ""
    seconds: float = 0.0


def _alarm(signum, frame):
    raise Hang()


def _classify(exc: BaseException) -> tuple[str, str, str]:
    msg = " ".join(str(exc).split())[:200]
    if isinstance(exc, Hang):
        return "hang", "Hang", "ran past the time limit"
    if isinstance(exc, UserCodeError):
        return "user", type(exc).__name__, msg
    if isinstance(exc, ng.NngeomError):
        return "nngeom", type(exc).__name__, msg
    mod = type(exc).__module__
    name = type(exc).__name__ if mod == "builtins" else f"{mod}.{type(exc).__name__}"
    return "raw", name, msg


def _invoke(fn: Callable[[], Any], limit: float) -> tuple[str, str, str]:
    old = signal.signal(signal.SIGALRM, _alarm)
    grad = torch.is_grad_enabled()
    depth = torch._C._functorch.get_dynamic_layer_stack_depth()
    t0 = time.monotonic()
    signal.setitimer(signal.ITIMER_REAL, limit)
    try:
        with warnings.catch_warnings():
            # as under pytest (filterwarnings = error): a warning is an exception that escapes
            warnings.simplefilter("error")
            fn()
        return "ok", "", ""
    except BaseException as exc:  # noqa: BLE001 - classified, never swallowed
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        status, etype, msg = _classify(exc)
        if status != "hang" and time.monotonic() - t0 >= limit:
            # the alarm fired inside a transform whose cleanup then raised: still a hang
            status, etype, msg = "hang", "Hang", f"ran past the time limit ({etype}: {msg})"
        return status, etype, msg
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
        # an alarm inside vmap/grad can leave functorch's layer stack pushed: restore it so
        # later calls are not polluted
        if torch._C._functorch.get_dynamic_layer_stack_depth() != depth:
            torch._C._functorch.pop_dynamic_layer_stack_and_undo_to_depth(depth)
        torch.set_grad_enabled(grad)


def _invoke_forked(fn: Callable[[], Any], limit: float) -> tuple[str, str, str]:
    """Run ``fn`` in a forked child with a capped address space; the outcome comes back by pipe."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        try:
            os.close(r)
            torch.set_num_threads(1)
            rss = _vm_size()
            resource.setrlimit(resource.RLIMIT_AS, (rss + BOMB_MEMORY, rss + BOMB_MEMORY))
            res = _invoke(fn, limit)
            data = pickle.dumps(res)
            os.write(w, data)
        finally:
            os._exit(0)
    os.close(w)
    deadline = time.monotonic() + limit + 5
    chunks = []
    while True:
        import select

        left = deadline - time.monotonic()
        ready, _, _ = select.select([r], [], [], max(left, 0))
        if not ready:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            os.close(r)
            return "hang", "Hang", f"ran past {limit:.0f} s (killed)"
        b = os.read(r, 65536)
        if not b:
            break
        chunks.append(b)
    os.close(r)
    _, status = os.waitpid(pid, 0)
    if not chunks:
        return "raw", "ChildDied", f"the child process died (wait status {status})"
    return pickle.loads(b"".join(chunks))


def _vm_size() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


def run_call(
    target: Target, arg: str | None, bad: Bad | None, limit: float | None = None
) -> Outcome:
    kw = target.baseline()
    label = "baseline"
    bomb = False
    if arg is not None and bad is not None:
        kw[arg] = bad.make()
        label, bomb = bad.label, bad.bomb
    t0 = time.perf_counter()
    runner = _invoke_forked if bomb else _invoke
    status, etype, msg = runner(lambda: target.call(**kw), limit or TIME_LIMIT_S)
    return Outcome(
        target.name,
        target.module,
        arg or "-",
        label,
        status,
        etype,
        msg,
        time.perf_counter() - t0,
    )


def all_cases() -> list[tuple[Target, str, Bad]]:
    """Every (target, argument, bad value) combination."""
    return [(t, a, b) for t in TARGETS for a, k in t.kinds.items() for b in cases_for(k)]


def format_leaks(outcomes: list[Outcome]) -> str:
    """Leaks and hangs grouped by module, one line per (function, argument, case)."""
    bad = [o for o in outcomes if o.status in ("raw", "hang")]
    seen = set()
    lines = []
    for o in sorted(bad, key=lambda o: (o.module, o.target, o.arg, o.case)):
        key = (o.target, o.arg, o.case)
        if key in seen:
            continue
        seen.add(key)
        lines.append(
            f"[{o.module}] {o.target}({o.arg}={o.case}) -> {o.exc_type}: {o.message[:140]}"
        )
    return "\n".join(lines)


def counts(outcomes: list[Outcome]) -> dict[str, Any]:
    from collections import Counter

    c = Counter(o.status for o in outcomes)
    by_fn = Counter(o.target for o in outcomes if o.status == "raw")
    return {
        "calls": len(outcomes),
        "ok": c["ok"],
        "nngeom_errors": c["nngeom"],
        "user_code_errors": c["user"],
        "raw_exceptions": c["raw"],
        "hangs": c["hang"],
        "raw_by_function": dict(sorted(by_fn.items())),
    }
