"""``nngeom chaos ...``: generate chaotic series, fit predictors and evaluate them on a CSV series.

nngeom chaos generate SYSTEM --n N --out FILE.csv [--tau 17] [--seed 0]
    SYSTEM: mackey-glass, logistic, henon, lorenz (first coordinate), laser, sunspots
nngeom chaos fit SERIES.csv [--column C] --predictor P [--lags 4 --delay 6 --horizon 6]
                 [--n-train N] --out MODEL.json [--max-iter K] [--seed S]
    P: mlp, linear, lms, poly (cubic), nvar; an MLP's weights go to MODEL.pt beside the JSON
nngeom chaos evaluate SERIES.csv [--column C] (--model MODEL.json | --predictor P --n-train N)
                      [--start I] [--steps K] [--json]
    direct NRMSE of the horizon-step prediction, and NRMSE of the iterated forecast at step K

File types: SERIES and generate's --out are .csv files, fit's --out and evaluate's --model are
.json files (an MLP's weights sit beside them, .pt). ``--json`` prints one line of JSON (see
``nngeom.commands._json``) described by ``JSON_SCHEMAS``: ``generate``, ``fit`` and ``evaluate``
all take it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import numpy as np
import typer

from .._errors import InvalidInput, ModelFileError, NngeomError
from . import _args, _json
from ._json import COUNT, NUMBER, NUMBER_OR_NULL, STRING, obj

SYSTEMS = ("mackey-glass", "logistic", "henon", "lorenz", "laser", "sunspots")
SAVEABLE = ("mlp", "linear", "lms", "poly", "nvar")
MAX_STEPS = 1_000_000  # --steps of the free-running forecast
ALL = (*SAVEABLE, "local", "esn")


def _generate(system: str, n: int, tau: float, seed: int) -> np.ndarray:
    from .. import chaos

    if system == "mackey-glass":
        return chaos.mackey_glass(n, tau, seed=seed)
    if system == "logistic":
        return chaos.logistic_map(n, seed=seed)
    if system == "henon":
        return chaos.henon_map(n, seed=seed)[:, 0]
    if system == "lorenz":
        return chaos.lorenz(n, seed=seed)[:, 0]
    if system == "laser":
        return chaos.santafe_laser()[:n]
    if system == "sunspots":
        return chaos.sunspots()[:n]
    raise InvalidInput(f"unknown system {system!r}; use one of {', '.join(SYSTEMS)}")


def _column(text: str) -> str | int:
    return int(text) if text.lstrip("-").isdigit() else text


def _series(path: Path, column: str) -> np.ndarray:
    """The checked series: an existing CSV file, a numeric column, finite values."""
    from ..chaos import read_csv_column

    path = _args.input_file(path, "SERIES", what="CSV file")
    _args.file_type(path, "SERIES", _args.SERIES_TYPES, what="series file")
    return _args.finite_series(read_csv_column(path, _column(column)), path)


def _embedding(lags: int, delay: int, horizon: int) -> None:
    for name, value in (("--lags", lags), ("--delay", delay), ("--horizon", horizon)):
        _args.count(value, name, maximum=MAX_EMBEDDING)


# --lags / --delay / --horizon: a window longer than any series nngeom generates or reads
MAX_EMBEDDING = 1_000_000
MAX_TAU = 10_000.0  # --tau: the Mackey-Glass delay (17 and 30 in the paper)


def _make(name: str, max_iter: int, seed: int) -> Any:
    from ..chaos import predictors as P

    if name == "mlp":
        return P.LapedesFarberMLP((10, 10), max_iter=max_iter, seed=seed)
    if name == "poly":
        return P.Polynomial(3)
    if name == "local":
        return P.LocalLinear(10)
    if name == "esn":
        return P.ESN(400, seed=seed)
    if name in ("linear", "lms", "nvar"):
        return P.make_regressor(name)
    raise InvalidInput(f"unknown predictor {name!r}; use one of {', '.join(ALL)}")


def _save(reg: Any, name: str, emb: dict[str, int], out: Path) -> None:
    from ..modelfile import save_model

    s = reg.scaling_
    meta: dict[str, Any] = {
        "nngeom_chaos_model": 1,
        "predictor": name,
        "embedding": emb,
        "n_features": int(reg.n_features_in_),
        "scaling": {"mx": s.mx.tolist(), "sx": s.sx.tolist(), "my": s.my, "sy": s.sy},
    }
    if name == "mlp":
        weights = out.with_suffix(".pt")
        save_model(reg.model_, weights)
        meta["weights"] = weights.name
        meta["hidden"] = list(reg.hidden)
    else:
        meta["coef"] = reg.coef_.tolist()
        if name == "poly":
            meta["degree"] = reg.degree
        if name == "nvar":
            meta["residual"] = reg.residual
    out.write_text(json.dumps(meta, indent=1))


def _load(path: Path) -> tuple[Any, dict[str, int]]:
    try:
        path = _args.input_file(path, "--model", what="model file")
        _args.file_type(path, "--model", _args.CHAOS_MODEL_TYPES, what="model of `chaos fit`")
    except NngeomError as exc:
        raise ModelFileError(f"{exc}; create one with `nngeom chaos fit`") from None
    try:
        meta = json.loads(path.read_text())
        if not isinstance(meta, dict):
            raise TypeError(f"a JSON {type(meta).__name__}, not an object")
        name = meta["predictor"]
        emb = {k: int(meta["embedding"][k]) for k in ("lags", "delay", "horizon")}
        sc = meta["scaling"]
        n_features = int(meta["n_features"])
    except (ValueError, KeyError, TypeError, OSError) as exc:
        raise ModelFileError(
            f"{path} is not a model written by `nngeom chaos fit` ({type(exc).__name__}: "
            f"{' '.join(str(exc).split())[:120]})"
        ) from None
    try:
        reg = _rebuild(path, meta, name, sc, n_features)
    except ModelFileError:
        raise
    except Exception as exc:  # noqa: BLE001 - a hand-edited or corrupted model file
        raise ModelFileError(
            f"{path} is not a usable model of `nngeom chaos fit` ({type(exc).__name__}: "
            f"{' '.join(str(exc).split())[:120]}); fit it again"
        ) from None
    if n_features != emb["lags"] or any(v < 1 for v in emb.values()):
        raise ModelFileError(f"{path}: {n_features} inputs but embedding {emb}")
    return reg, emb


def _rebuild(path: Path, meta: dict, name: Any, sc: Any, n_features: int) -> Any:
    from ..chaos import predictors as P
    from ..modelfile import load_model

    if name == "mlp":
        reg: Any = P.LapedesFarberMLP(tuple(meta["hidden"]))
        import torch

        weights = str(meta["weights"])
        if Path(weights).name != weights:
            raise ModelFileError(f"{path}: the weights file {weights[:80]!r} must sit beside it")
        reg.model_ = load_model(path.with_name(weights)).to(torch.float64)
    elif name in ("linear", "lms"):
        reg = P.LinearAR("lstsq" if name == "linear" else "lms")
    elif name == "poly":
        reg = P.Polynomial(int(meta["degree"]))
    elif name == "nvar":
        reg = P.NVAR(residual=bool(meta["residual"]))
    else:
        raise ModelFileError(f"{path}: unknown predictor {name!r}")
    if name != "mlp":
        reg.coef_ = np.asarray(meta["coef"], dtype=np.float64)
    s = P.Standardizer(np.zeros((2, n_features)))
    s.mx, s.sx = np.asarray(sc["mx"], dtype=np.float64), np.asarray(sc["sx"], dtype=np.float64)
    s.my, s.sy = float(sc["my"]), float(sc["sy"])
    reg.scaling_, reg.n_features_in_ = s, n_features
    if s.mx.shape != (n_features,) or s.sx.shape != (n_features,):
        raise ModelFileError(f"{path}: its scaling does not have {n_features} entries")
    arrays = [s.mx, s.sx, np.asarray([s.my, s.sy])]
    if name != "mlp":
        arrays.append(reg.coef_)
    if not all(np.isfinite(a).all() for a in arrays):
        raise ModelFileError(f"{path}: the model holds NaN or infinite numbers; fit it again")
    return reg


_EMBEDDING = obj({"lags": COUNT, "delay": COUNT, "horizon": COUNT})

#: JSON Schemas (draft 2020-12) of ``nngeom chaos generate|fit|evaluate --json``
JSON_SCHEMAS: dict[str, dict[str, Any]] = {
    "chaos generate": _json.schema(
        "chaos generate",
        {
            "system": {"enum": list(SYSTEMS)},
            "n_values": COUNT,
            "out": STRING,
            "column": STRING,
        },
    ),
    "chaos fit": _json.schema(
        "chaos fit",
        {
            "predictor": {"enum": list(SAVEABLE)},
            "embedding": _EMBEDDING,
            "n_train": COUNT,
            "nrmse_train": NUMBER_OR_NULL,
            "out": STRING,
            "weights": {"type": ["string", "null"]},  # the MLP's .pt beside --out; else null
        },
    ),
    "chaos evaluate": _json.schema(
        "chaos evaluate",
        {
            "predictor": STRING,  # a predictor name, or "model FILE.json"
            "embedding": _EMBEDDING,
            "nrmse_direct": NUMBER_OR_NULL,
            "steps": COUNT,
            # null: the forecast diverged (inf or nan, see "nonfinite")
            "nrmse_iterated_at_steps": NUMBER_OR_NULL,
            "n_starts": COUNT,
            "scale": NUMBER,
        },
    ),
}

_SERIES_HELP = (
    f"The series: a {_args.types_text(_args.SERIES_TYPES)} file (comma-separated; a header row "
    "is optional), one value per row in --column."
)


def register(app: typer.Typer) -> None:
    """Add ``nngeom chaos generate|fit|evaluate`` to ``app``."""
    chaos_app = typer.Typer(
        help="Chaotic time series: generate, fit predictors, evaluate (Lapedes & Farber)."
    )

    @chaos_app.command("generate")
    def generate(
        system: str = typer.Argument(..., help=f"One of {', '.join(SYSTEMS)}."),
        out: Path = typer.Option(
            ...,
            "--out",
            help=f"The series file to write: a {_args.types_text(_args.SERIES_TYPES)} file "
            "(one column 'x').",
        ),
        n: int = typer.Option(2000, "--n", help="Number of samples."),
        tau: float = typer.Option(17.0, "--tau", help="Mackey-Glass delay."),
        seed: int = typer.Option(0, "--seed", help="Seed of the initial condition."),
        as_json: bool = typer.Option(False, "--json", help=_json.JSON_HELP),
    ) -> None:
        """Write a chaotic series (or a bundled real one) as a one-column CSV."""
        from ..chaos import write_csv_column

        if system not in SYSTEMS:
            raise InvalidInput(f"unknown system {system[:40]!r}; use one of {', '.join(SYSTEMS)}")
        seed = _args.seed(seed)
        tau = _args.number(tau, "--tau", minimum=0.0, strict_min=True, maximum=MAX_TAU)
        _args.file_type(out, "--out", _args.SERIES_TYPES, what="series file")
        out = _args.output_file(out, "--out", what="CSV file")
        x = _generate(system, n, tau, seed)
        try:
            write_csv_column(out, x, "x")
        except OSError as exc:
            raise InvalidInput(f"--out: cannot write {out}: {exc.strerror or exc}") from None
        if as_json:
            _json.emit(
                "chaos generate",
                {"system": system, "n_values": int(x.size), "out": str(out), "column": "x"},
            )
            return
        typer.echo(f"wrote {x.size} values of {system} to {out}")

    @chaos_app.command("fit")
    def fit(
        series: Path = typer.Argument(..., help=_SERIES_HELP),
        out: Path = typer.Option(
            ...,
            "--out",
            help=f"The model file to write: a {_args.types_text(_args.CHAOS_MODEL_TYPES)} file "
            "(an MLP's weights are saved beside it, under the same name).",
        ),
        column: str = typer.Option("0", "--column", help="Column name or 0-based index."),
        predictor: str = typer.Option("mlp", "--predictor", help=f"One of {', '.join(SAVEABLE)}."),
        lags: int = typer.Option(4, "--lags"),
        delay: int = typer.Option(6, "--delay"),
        horizon: int = typer.Option(6, "--horizon"),
        n_train: Optional[int] = typer.Option(
            None, "--n-train", help="Training rows (default: all)."
        ),
        max_iter: int = typer.Option(3000, "--max-iter", help="L-BFGS iterations (mlp)."),
        seed: int = typer.Option(0, "--seed"),
        as_json: bool = typer.Option(False, "--json", help=_json.JSON_HELP),
    ) -> None:
        """Fit a predictor of x(t+horizon) from x(t), x(t-delay), ... and save it."""
        from ..chaos import embed, nrmse

        if predictor not in SAVEABLE:
            raise InvalidInput(
                f"predictor {predictor[:40]!r} cannot be saved; use one of {', '.join(SAVEABLE)} "
                "(or `nngeom chaos evaluate --predictor` to fit and evaluate local/esn in one go)"
            )
        seed = _args.seed(seed)
        _embedding(lags, delay, horizon)
        max_iter = _args.count(max_iter, "--max-iter", maximum=10_000_000)
        if n_train is not None:
            n_train = _args.count(n_train, "--n-train", maximum=2**62)
        _args.file_type(
            out, "--out", _args.CHAOS_MODEL_TYPES, what="model file", error=InvalidInput
        )
        out = _args.output_file(out, "--out", what="model file")
        if predictor == "mlp":
            _args.output_file(out.with_suffix(".pt"), "--out", what="weights file")
        x = _series(series, column)
        X, y = embed(x, lags, delay, horizon)
        if n_train is not None:
            X, y = X[:n_train], y[:n_train]
        reg = _make(predictor, max_iter, seed).fit(X, y)
        try:
            _save(reg, predictor, {"lags": lags, "delay": delay, "horizon": horizon}, out)
        except OSError as exc:
            raise InvalidInput(f"--out: cannot write {out}: {exc.strerror or exc}") from None
        err = nrmse(y, reg.predict(X))
        if as_json:
            _json.emit(
                "chaos fit",
                {
                    "predictor": predictor,
                    "embedding": {"lags": lags, "delay": delay, "horizon": horizon},
                    "n_train": int(X.shape[0]),
                    "nrmse_train": err,
                    "out": str(out),
                    "weights": str(out.with_suffix(".pt")) if predictor == "mlp" else None,
                },
            )
            return
        typer.echo(
            f"fitted {predictor} on {X.shape[0]} rows: training NRMSE {err:.4g}; saved {out}"
        )

    @chaos_app.command("evaluate")
    def evaluate(
        series: Path = typer.Argument(..., help=_SERIES_HELP),
        column: str = typer.Option("0", "--column", help="Column name or 0-based index."),
        model: Optional[Path] = typer.Option(
            None,
            "--model",
            help="A model written by `nngeom chaos fit`: a "
            f"{_args.types_text(_args.CHAOS_MODEL_TYPES)} file.",
        ),
        predictor: Optional[str] = typer.Option(
            None, "--predictor", help=f"Fit one of {', '.join(ALL)} instead."
        ),
        n_train: Optional[int] = typer.Option(
            None, "--n-train", help="With --predictor: training rows."
        ),
        lags: int = typer.Option(4, "--lags"),
        delay: int = typer.Option(6, "--delay"),
        horizon: int = typer.Option(6, "--horizon"),
        start: int = typer.Option(0, "--start", help="With --model: first series index evaluated."),
        steps: int = typer.Option(
            84, "--steps", help="Free-running steps of the iterated forecast."
        ),
        max_iter: int = typer.Option(3000, "--max-iter"),
        seed: int = typer.Option(0, "--seed"),
        as_json: bool = typer.Option(False, "--json", help=_json.JSON_HELP),
    ) -> None:
        """NRMSE (std of the evaluated segment) of direct and iterated prediction on a series."""
        from ..chaos import (
            IteratedForecaster,
            contexts,
            embed,
            nrmse,
            nrmse_curve,
            split,
        )

        seed = _args.seed(seed)
        _embedding(lags, delay, horizon)
        max_iter = _args.count(max_iter, "--max-iter", maximum=10_000_000)
        steps = _args.count(steps, "--steps", maximum=MAX_STEPS)
        if n_train is not None:
            n_train = _args.count(n_train, "--n-train", maximum=2**62)
        if predictor is not None and predictor not in ALL:
            raise InvalidInput(f"unknown predictor {predictor[:40]!r}; use one of {', '.join(ALL)}")
        x = _series(series, column)
        if (model is None) == (predictor is None):
            raise InvalidInput(
                "give exactly one of --model MODEL.json or --predictor NAME (with --n-train)"
            )
        if model is not None:
            reg, emb = _load(model)
            if start < 0 or start >= x.size:
                raise InvalidInput(f"--start must be in 0..{x.size - 1}, got {start}")
            seg = x[start:]
            X, y = embed(seg, emb["lags"], emb["delay"], emb["horizon"])
            direct = nrmse(y, reg.predict(X), scale=float(seg.std()) or None)
            fc: Any = IteratedForecaster(reg, emb["lags"], emb["delay"], emb["horizon"])
            first = start + fc.context_length - 1
            scale = float(seg.std())
            name = f"model {model.name}"
        else:
            assert predictor is not None
            if n_train is None:
                raise InvalidInput(
                    "--predictor needs --n-train (the training rows at the start of the series)"
                )
            emb = {"lags": lags, "delay": delay, "horizon": horizon}
            sp = split(x, n_train, None, lags, delay, horizon)
            scale = float(x[sp.boundary :].std())
            if predictor == "esn":
                fc = _make("esn", max_iter, seed).fit_series(x[: sp.boundary])
                ts = sp.test_index[0][:, 0]
                ts = ts[ts >= 199][:500]
                ctx_d, truth_d = contexts(x, ts, 200, horizon)
                direct = nrmse(truth_d[:, -1], fc.forecast(ctx_d, horizon)[:, -1], scale=scale)
                first = sp.boundary + 199
            else:
                reg = _make(predictor, max_iter, seed).fit(sp.X_train, sp.y_train)
                direct = nrmse(sp.y_test, reg.predict(sp.X_test), scale=scale)
                fc = IteratedForecaster(reg, lags, delay, horizon)
                first = sp.boundary + fc.context_length - 1
            name = predictor
        ctx_len = 200 if predictor == "esn" else fc.context_length
        last = x.size - steps - 1
        if last < first:
            raise InvalidInput(
                f"the series is too short for a {steps}-step free-running forecast after the "
                "training/context data; use a longer series or fewer --steps"
            )
        starts = np.unique(np.linspace(first, last, min(50, last - first + 1)).astype(int))
        ctx, truth = contexts(x, starts, ctx_len, steps)
        curve = nrmse_curve(truth, fc.forecast(ctx, steps), scale=scale)
        at = float(curve[-1])
        out = {
            "predictor": name,
            "embedding": emb,
            "nrmse_direct": direct,
            "steps": steps,
            "nrmse_iterated_at_steps": at,  # inf / nan: null, named in "nonfinite"
            "n_starts": int(starts.size),
            "scale": scale,
        }
        if as_json:
            _json.emit("chaos evaluate", out)
        else:
            typer.echo(
                f"{name}: NRMSE at horizon {emb['horizon']} (direct) {direct:.4g}; iterated, "
                f"step {steps}: {at:.4g} over {starts.size} start points"
            )

    app.add_typer(chaos_app, name="chaos")
