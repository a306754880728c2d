"""``nngeom knots MODEL`` and ``nngeom regions MODEL``: knots and activation regions of a saved model.

MODEL: a .pt2 torch.export program, an nngeom.save_model file, or a state dict with
--arch SIZES:ACT [--key K] (see ``nngeom.modelfile``); the architecture is printed.

nngeom knots MODEL [--lo A] [--hi B] [--exact] [--json]
nngeom regions MODEL --x0 "0,0" --x1 "1,2" [--json]             regions along a segment
nngeom regions MODEL [--extent E] [--origin ..] [--u ..] [--v ..] [--plot F.png] [--json]
                                                                 exact 2-D slice
nngeom regions MODEL --data X.npy [--n-lines K] [--length L] [--json]
                                                                 statistics around data
nngeom regions MODEL --through I J K --data X.npz [--margin M] [--plot F.png] [--json]
                                                                 exact slice through 3 examples

``--json`` prints one line of JSON (see ``nngeom.commands._json``: ``schema_version``,
``command``, infinite numbers as ``null`` listed in ``nonfinite``); its keys are described by
``JSON_SCHEMAS["knots"]`` and ``JSON_SCHEMAS["regions"]``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch
import typer

from .._errors import InvalidInput
from . import _args, _json
from ._json import BOOL, COUNT, INT_OR_NULL, NUMBER, NUMBER_OR_NULL, STRING, numbers, obj
from ._model import arch_option, key_option, load, model_argument


def _number(text: str, name: str) -> float:
    try:
        value = float(text)
    except ValueError as exc:
        raise InvalidInput(f"{name} must be a number (or inf/-inf), got {text!r}") from exc
    if math.isnan(value):
        raise InvalidInput(f"{name} must not be NaN")
    return value


# --through's default --margin: how far the slice reaches beyond the three examples
_DEFAULT_MARGIN = 0.25
# The largest --extent / --length: beyond it float64 products of weights and inputs lose all
# precision (and overflow near 1e308), so the exact partition would be meaningless.
MAX_SPAN = 1e12


def _vector_options(*texts: str | None) -> list[tuple[str, str | None]]:
    return list(zip(("--x0", "--x1", "--origin", "--u", "--v"), texts, strict=True))


def _vector(text: str | None, name: str) -> list[float] | None:
    if text is None:
        return None
    try:
        values = [float(v) for v in text.replace(" ", "").split(",") if v != ""]
    except ValueError:
        raise InvalidInput(
            f"{name} must be comma-separated numbers like '0,1.5', got {text[:80]!r}"
        ) from None
    if not values:
        raise InvalidInput(f"{name} must hold at least one number, like '0,1.5'")
    if not all(math.isfinite(x) for x in values):
        raise InvalidInput(f"{name} must hold finite numbers (no nan/inf), got {text[:80]!r}")
    if max(abs(x) for x in values) > MAX_SPAN:
        raise InvalidInput(f"{name}: every number must be within +-{MAX_SPAN:g}, got {text[:80]!r}")
    return values


_INTS: dict[str, Any] = {"type": "array", "items": COUNT}

#: JSON Schemas (draft 2020-12) of ``nngeom knots --json`` and ``nngeom regions --json``
JSON_SCHEMAS: dict[str, dict[str, Any]] = {
    "knots": _json.schema(
        "knots",
        {
            "lo": NUMBER_OR_NULL,  # null: -inf (see "nonfinite")
            "hi": NUMBER_OR_NULL,  # null: inf
            "count": COUNT,
            "positions": numbers(NUMBER),
            "n_breakpoints": COUNT,
            "breakpoints": numbers(NUMBER),
            "slopes": numbers(numbers()),  # (count + 1, n_outputs)
            "intercepts": numbers(numbers()),
            "ambiguous": BOOL,
            "notes": {"type": "array", "items": STRING},
            "exact": BOOL,
            "float_agrees": {"type": ["boolean", "null"]},  # null: without --exact
            "bound": INT_OR_NULL,  # Chen's bound; null: not an MLP
            "architecture": STRING,
        },
    ),
    "regions": _json.schema(
        "regions",
        {"mode": {"enum": ["line", "data", "slice", "plane"]}, "architecture": STRING},
        variants=[
            {
                "properties": {
                    "mode": {"const": "line"},
                    "n_regions": COUNT,
                    "t": numbers(NUMBER),
                    "n_pieces": COUNT,
                    "knots_t": numbers(NUMBER),
                    "length": NUMBER,
                },
                "required": ["n_regions", "t", "n_pieces", "knots_t", "length"],
            },
            {
                "properties": {
                    "mode": {"const": "data"},
                    "n_samples": COUNT,
                    "n_units": COUNT,
                    "n_patterns": COUNT,
                    "fraction_unique": NUMBER,
                    "entropy_nats": NUMBER,
                    "entropy_bits": NUMBER,
                    "fraction_active": NUMBER,
                    "fraction_active_per_layer": numbers(NUMBER),
                    "n_patterns_per_layer": _INTS,
                    "fraction_dead": NUMBER,
                    "fraction_always_active": NUMBER,
                    "lines": obj(
                        {
                            "n_regions": _INTS,
                            "n_breakpoints": _INTS,
                            "length": NUMBER,
                            "mean_regions": NUMBER,
                            "regions_per_unit_length": NUMBER,
                            "breakpoints_per_unit_length": NUMBER,
                            "n_neurons": COUNT,
                            "centers": _INTS,
                        }
                    ),
                    # null: inf, no boundary within reach in any direction (see "nonfinite")
                    "boundary_distance_median": NUMBER_OR_NULL,
                    "boundary_distance_mean": NUMBER_OR_NULL,
                },
                "required": [
                    "n_samples",
                    "n_units",
                    "n_patterns",
                    "fraction_unique",
                    "entropy_nats",
                    "entropy_bits",
                    "fraction_active",
                    "fraction_active_per_layer",
                    "n_patterns_per_layer",
                    "fraction_dead",
                    "fraction_always_active",
                    "lines",
                    "boundary_distance_median",
                    "boundary_distance_mean",
                ],
            },
            {
                "properties": {
                    "mode": {"const": "slice"},
                    "n_regions": COUNT,
                    "n_pieces": COUNT,
                    "bounds": {**numbers(NUMBER), "minItems": 4, "maxItems": 4},
                    "areas": numbers(NUMBER),
                    "plot": STRING,  # only with --plot: the picture written
                },
                "required": ["n_regions", "n_pieces", "bounds", "areas"],
            },
            {
                "properties": {
                    "mode": {"const": "plane"},
                    "through": {**_INTS, "minItems": 3, "maxItems": 3},
                    "margin": NUMBER,
                    "input_shape": _INTS,
                    "n_regions": COUNT,
                    "n_pieces": COUNT,
                    # null: a model with one output has no decision boundary
                    "n_boundary_segments": INT_OR_NULL,
                    "n_outputs": COUNT,
                    "bounds": {**numbers(NUMBER), "minItems": 4, "maxItems": 4},
                    "areas": numbers(NUMBER),
                    # only when --data holds y: the labels of the three examples
                    "labels": {**numbers(NUMBER), "minItems": 3, "maxItems": 3},
                    "plot": STRING,  # only with --plot: the picture written
                },
                "required": [
                    "through",
                    "margin",
                    "input_shape",
                    "n_regions",
                    "n_pieces",
                    "n_boundary_segments",
                    "n_outputs",
                    "bounds",
                    "areas",
                ],
            },
        ],
    ),
}


def register(app: typer.Typer) -> None:
    """Add ``nngeom knots`` and ``nngeom regions`` to ``app``."""

    @app.command("knots")
    def knots_cmd(
        model: Path = model_argument(),
        lo: str = typer.Option(
            "-inf", "--lo", help="Left end of the interval (default -inf; write --lo=-5)."
        ),
        hi: str = typer.Option("inf", "--hi", help="Right end of the interval (default inf)."),
        exact: bool = typer.Option(
            False, "--exact", help="Recompute in rational arithmetic (small nets)."
        ),
        as_json: bool = typer.Option(False, "--json", help=_json.JSON_HELP),
        arch: Optional[str] = arch_option(),
        key: Optional[str] = key_option(),
    ) -> None:
        """Exact knots (slope changes) and activation breakpoints of a 1-input model."""
        from ..knots import knot_upper_bound, knots

        a, b = _number(lo, "--lo"), _number(hi, "--hi")
        loaded = load(model, arch, key)
        net = loaded.module
        k = knots(net, a, b, exact=exact)
        from .._errors import UnsupportedModel
        from ..nets import as_mlp

        try:
            bound: int | None = knot_upper_bound(as_mlp(net).widths)
        except UnsupportedModel:
            bound = None  # Chen's bound is for MLPs
        if as_json:
            d = k.to_dict()
            d["lo"], d["hi"] = float(k.lo), float(k.hi)  # +-inf: null, named in "nonfinite"
            d["float_agrees"] = k.float_agrees
            d["bound"] = bound
            d["architecture"] = loaded.architecture
            _json.emit("knots", d)
            return
        typer.echo(f"architecture  {loaded.architecture}")
        typer.echo(f"interval      ({a:g}, {b:g})")
        typer.echo(f"knots         {k.count}")
        typer.echo(f"breakpoints   {k.n_breakpoints} (activation changes; not all are knots)")
        typer.echo(f"Chen's bound  {bound if bound is not None else 'n/a (not an MLP)'}")
        shown = ", ".join(f"{v:.6g}" for v in k.positions[:20])
        more = f", ... ({k.count - 20} more)" if k.count > 20 else ""
        typer.echo(f"positions     {shown}{more}")
        if k.exact:
            typer.echo(f"exact         rational arithmetic; float64 agreed: {k.float_agrees}")
        if k.ambiguous:
            typer.echo("warning       " + "; ".join(k.notes) + " (rerun with --exact)")

    @app.command("regions")
    def regions_cmd(
        model: Path = model_argument(),
        x0: Optional[str] = typer.Option(None, "--x0", help="Segment start 'a,b,...' (with --x1)."),
        x1: Optional[str] = typer.Option(None, "--x1", help="Segment end."),
        data: Optional[Path] = typer.Option(
            None,
            "--data",
            help=f"Inputs X, shape (N, d), for statistics: a {_args.types_text(_args.INPUT_TYPES)} "
            "file (.npy: the array; .npz: array X; .pt/.pth: a tensor or a dict with X).",
        ),
        n_lines: int = typer.Option(16, "--n-lines", help="Lines through the data (with --data)."),
        length: float = typer.Option(1.0, "--length", help="Length of each line (with --data)."),
        n_directions: int = typer.Option(
            16, "--n-directions", help="Directions for boundary distances."
        ),
        seed: int = typer.Option(0, "--seed", help="Seed of lines and directions."),
        extent: Optional[float] = typer.Option(
            None, "--extent", help="2-D slice half-width (default 1)."
        ),
        origin: Optional[str] = typer.Option(
            None, "--origin", help="2-D slice origin (d numbers)."
        ),
        u: Optional[str] = typer.Option(None, "--u", help="2-D slice first direction."),
        v: Optional[str] = typer.Option(None, "--v", help="2-D slice second direction."),
        plot: Optional[Path] = typer.Option(
            None,
            "--plot",
            help="Write a picture of the 2-D regions: a "
            f"{_args.types_text(_args.PLOT_TYPES)} file (no suffix: .png is added).",
        ),
        through: Optional[tuple[int, int, int]] = typer.Option(
            None,
            "--through",
            help="Three example indices I J K into --data: the exact 2-D slice through those "
            "examples (they sit at (0,0), (1,0), (0,1)), with the decision boundary.",
        ),
        margin: Optional[float] = typer.Option(
            None,
            "--margin",
            help="With --through: how far the slice reaches beyond the three examples "
            "(default 0.25).",
        ),
        as_json: bool = typer.Option(False, "--json", help=_json.JSON_HELP),
        arch: Optional[str] = arch_option(),
        key: Optional[str] = key_option(),
        extra: Optional[list[str]] = typer.Argument(None, hidden=True),
    ) -> None:
        """Activation regions: along a segment, on an exact 2-D slice (or the plane through three
        examples), or statistics around data."""
        if extra:
            if through is not None:
                raise InvalidInput(
                    f"--through takes exactly three example indices I J K, got more: "
                    f"{' '.join(map(str, through))} {' '.join(extra)}"[:200]
                )
            raise InvalidInput(f"unexpected extra argument(s): {' '.join(extra)}"[:200])
        if through is not None:
            _through_checks(data, margin, extent, _vector_options(x0, x1, origin, u, v))
            seed = _args.seed(seed)
            picture = None if plot is None else _args.plot_file(plot)
            m = _DEFAULT_MARGIN if margin is None else margin
            m = _args.number(m, "--margin", minimum=0.0, maximum=MAX_SPAN)
            assert data is not None
            X, labels = _read_xy(data)
            loaded = load(model, arch, key)
            out, text = _regions_through(loaded, X, labels, tuple(through), m, picture)
            _show(out, [f"architecture                   {loaded.architecture}", *text], as_json)
            return
        if margin is not None:
            raise InvalidInput("--margin goes with --through I J K (the plane through examples)")
        extent = 1.0 if extent is None else extent
        from ..regions import (
            boundary_distances,
            pattern_statistics,
            regions_2d,
            regions_along_lines,
            regions_on_line,
        )

        if (x0 is None) != (x1 is None):
            raise InvalidInput("give both --x0 and --x1 for a segment")
        if x0 is not None and data is not None:
            raise InvalidInput("choose one of --x0/--x1 (a segment) and --data (statistics)")
        if plot is not None and (x0 is not None or data is not None):
            raise InvalidInput("--plot draws the exact 2-D slice: drop --x0/--x1 and --data")
        seed = _args.seed(seed)
        n_lines = _args.count(n_lines, "--n-lines")
        n_directions = _args.count(n_directions, "--n-directions")
        length = _args.number(length, "--length", minimum=0.0, strict_min=True, maximum=MAX_SPAN)
        extent = _args.number(extent, "--extent", minimum=0.0, strict_min=True, maximum=MAX_SPAN)
        vectors = {
            name: _vector(text, name) for name, text in _vector_options(x0, x1, origin, u, v)
        }
        picture = None if plot is None else _args.plot_file(plot)
        X = None if data is None else _args.read_inputs(data)
        loaded = load(model, arch, key)
        net = loaded.module
        if x0 is not None:
            lr = regions_on_line(net, vectors["--x0"], vectors["--x1"])
            out = {
                "mode": "line",
                "n_regions": lr.n_regions,
                "t": lr.t.tolist(),
                "n_pieces": lr.n_pieces,
                "knots_t": lr.knots_t.tolist(),
                "length": lr.length,
            }
            text = [
                f"regions along the segment  {lr.n_regions}",
                f"linear pieces              {lr.n_pieces}",
                f"regions per unit length    {lr.n_regions / lr.length:.4g}",
            ]
        elif X is not None:
            stats = pattern_statistics(net, X)
            lines = regions_along_lines(net, X, n_lines=n_lines, length=length, seed=seed)
            dist = boundary_distances(net, X, n_directions=n_directions, seed=seed)
            out = {"mode": "data", **stats, "lines": lines}
            out["boundary_distance_median"] = float(dist.median())
            out["boundary_distance_mean"] = float(dist.mean())
            text = [
                f"examples                   {stats['n_samples']}",
                f"distinct patterns          {stats['n_patterns']} (entropy {stats['entropy_bits']:.3g} bits)",
                f"fraction of active units   {stats['fraction_active']:.4g}",
                f"regions per unit length    {lines['regions_per_unit_length']:.4g} (lines of length {length:g})",
                f"distance to boundary       median {out['boundary_distance_median']:.4g} "
                f"(min over {n_directions} directions)",
            ]
        else:
            R = regions_2d(net, vectors["--origin"], vectors["--u"], vectors["--v"], extent)
            out = {
                "mode": "slice",
                "n_regions": R.n_regions,
                "n_pieces": R.n_pieces,
                "bounds": list(R.bounds),
                "areas": R.areas.tolist(),
            }
            text = [
                f"activation regions (polygons)  {R.n_regions}",
                f"linear pieces                  {R.n_pieces}",
                f"slice                          [{R.bounds[0]:g}, {R.bounds[1]:g}] x [{R.bounds[2]:g}, {R.bounds[3]:g}]",
            ]
            if picture is not None:
                _plot(R, *picture)
                text.append(f"picture                        {picture[0]}")
                out["plot"] = str(picture[0])
        out["architecture"] = loaded.architecture
        _show(out, [f"architecture                {loaded.architecture}", *text], as_json)


def _show(out: dict[str, Any], text: list[str], as_json: bool) -> None:
    """Print the regions result: one line of JSON, or the text lines."""
    if as_json:
        _json.emit("regions", out)
    else:
        for line in text:
            typer.echo(line)


# Resolution of the pictures the commands write (dots per inch)
_PICTURE_DPI = 120


def _picture(
    R,
    path: Path,
    fmt: str,
    *,
    title: str,
    size: tuple[float, float] = (5.0, 5.0),
    axis_labels: tuple[str, str] | None = None,
    **plot_options,
) -> None:
    """Draw the slice ``R`` (:func:`nngeom.plots.regions` with ``plot_options``) into ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=size)
    try:
        R.plot(ax=ax, **plot_options)
        if axis_labels is not None:
            ax.set_xlabel(axis_labels[0])
            ax.set_ylabel(axis_labels[1])
        ax.set_title(title, fontsize=9)
        fig.savefig(str(path), dpi=_PICTURE_DPI, bbox_inches="tight", format=fmt)
    except OSError as exc:
        raise InvalidInput(f"cannot write the picture to {path}: {exc.strerror or exc}") from None
    finally:
        plt.close(fig)


def _plot(R, path: Path, fmt: str) -> None:
    _picture(R, path, fmt, title=f"{R.n_regions} activation regions, {R.n_pieces} linear pieces")


# --------------------------------------------------------------------------------------------
# --through I J K: the exact slice through three examples of --data
# --------------------------------------------------------------------------------------------


def _through_checks(
    data: Path | None,
    margin: float | None,
    extent: float | None,
    vectors: list[tuple[str, str | None]],
) -> None:
    given = [name for name, text in vectors if text is not None]
    if extent is not None:
        given.append("--extent")
    if given:
        raise InvalidInput(
            f"--through I J K makes its own plane: drop {'/'.join(given)} "
            "(the slice reaches --margin beyond the three examples)"
        )
    if data is None:
        raise InvalidInput("--through I J K needs --data FILE: the examples are rows of its X")


def _read_xy(data: Path) -> tuple[torch.Tensor, np.ndarray | None]:
    """X with its per-example shape kept, and y's labels (None when the file has no y)."""
    from .._errors import DataError
    from ..data import load_arrays

    X = _args.read_arrays(data, "--data", ("X",))["X"]
    if X.ndim < 2 or X.shape[0] == 0:
        raise DataError(
            f"--data: X must have shape (N, d) or (N, *image shape) with N >= 1 examples, "
            f"got {tuple(X.shape)}"
        )
    if data.suffix == ".npy":
        return X, None
    y = load_arrays(data, require=("X",)).get("y")
    if y is None:
        return X, None
    y_np = np.asarray(y.detach().cpu().numpy() if isinstance(y, torch.Tensor) else y)
    if y_np.dtype.kind not in "biuf" or y_np.ndim == 0 or y_np.shape[0] != X.shape[0]:
        raise DataError(
            f"--data: y must hold numbers, one row per example ({X.shape[0]}), got "
            f"{y_np.dtype} of shape {tuple(y_np.shape)}"
        )
    y_np = y_np.astype(np.float64).reshape(y_np.shape[0], -1)
    if not np.isfinite(y_np).all():
        raise DataError("--data: y contains NaN or inf")
    # one label per example: y itself, or the class of a one-hot / score row
    labels = y_np[:, 0] if y_np.shape[1] == 1 else y_np.argmax(axis=1).astype(np.float64)
    return X, labels


def _model_input_shape(net: Any, per: tuple[int, ...]) -> tuple[int, ...]:
    """The model's per-example input shape (its MLP view's input_dim, or the traced view's
    shape); X's own shape when the model does not declare one."""
    from .._errors import UnsupportedModel
    from ..nets import MLP, resolve

    try:
        view = resolve(net)
    except UnsupportedModel:
        view = resolve(net, per)
    if isinstance(view, MLP):
        return (int(view.input_dim),)
    shape = getattr(view, "input_shape", None)
    return tuple(int(s) for s in shape) if shape is not None else per


def _regions_through(
    loaded: Any,
    X: torch.Tensor,
    labels: np.ndarray | None,
    idx: tuple[int, int, int],
    margin: float,
    picture: tuple[Path, str] | None,
) -> tuple[dict[str, Any], list[str]]:
    from .._errors import DataError
    from ..regions import plane_through, regions_2d

    n = int(X.shape[0])
    bad = [i for i in idx if not 0 <= i < n]
    if bad:
        raise InvalidInput(
            f"--through: index {bad[0]} is out of range: --data holds {n} examples "
            f"(indices 0 to {n - 1})"
        )
    if len(set(idx)) != 3:
        raise InvalidInput(
            f"--through {' '.join(map(str, idx))}: give three different examples "
            "(a repeated one spans no plane)"
        )
    net = loaded.module
    per = tuple(int(s) for s in X.shape[1:])
    shape = _model_input_shape(net, per)
    if per != shape:
        if math.prod(per) != math.prod(shape):
            raise DataError(
                f"--data: X has {math.prod(per)} numbers per example {per}, the model takes "
                f"{math.prod(shape)} {shape}: give X of shape (N, {', '.join(map(str, shape))}) "
                "or flat (N, d) with the same size"
            )
    pts = [X[i].detach().to(torch.float64).reshape(shape).numpy() for i in idx]
    try:
        plane = plane_through(*pts, margin=margin)
    except InvalidInput as exc:
        raise InvalidInput(
            f"--through {' '.join(map(str, idx))}: {str(exc).replace('x0, x1 and x2', 'the examples')}"
        ) from None
    params = [p for p in net.parameters() if p.is_floating_point()]
    dtype = params[0].dtype if params else torch.float32
    with torch.no_grad():
        y0 = net(torch.from_numpy(pts[0][None]).to(dtype))
    n_outputs = int(y0[0].numel())
    R = regions_2d(net, plane, decision_boundary=n_outputs >= 2)
    segs = None if R.decision_boundary is None else int(len(R.decision_boundary))
    out: dict[str, Any] = {
        "mode": "plane",
        "through": list(idx),
        "margin": float(margin),
        "input_shape": list(shape),
        "n_regions": R.n_regions,
        "n_pieces": R.n_pieces,
        "n_boundary_segments": segs,
        "n_outputs": n_outputs,
        "bounds": [float(b) for b in R.bounds],
        "areas": R.areas.tolist(),
    }
    names = None
    if labels is not None:
        picked = [float(labels[i]) for i in idx]
        out["labels"] = picked
        names = [f"{v:g}" for v in picked]
    i, j, k = idx
    text = [
        f"plane through examples         {i}, {j}, {k} (at (0,0), (1,0), (0,1); margin {margin:g})",
        f"activation regions (polygons)  {R.n_regions}",
        f"linear pieces                  {R.n_pieces}",
        "decision-boundary segments     "
        + (str(segs) if segs is not None else "n/a (the model has one output)"),
    ]
    if names is not None:
        text.append(f"labels of the examples         {', '.join(names)}")
    if picture is not None:
        _plot_through(R, X, idx, names, shape, *picture)
        text.append(f"picture                        {picture[0]}")
        out["plot"] = str(picture[0])
    out["architecture"] = loaded.architecture
    return out, text


def _plot_through(R, X, idx, names, shape, path: Path, fmt: str) -> None:
    i, j, k = idx
    _picture(
        R,
        path,
        fmt,
        title=(
            f"{R.n_regions} activation regions, {R.n_pieces} linear pieces; examples {i}, {j}, {k}"
        ),
        size=(5.5, 5.0),
        axis_labels=(
            f"s: example {i} (s=0) to example {j} (s=1)",
            f"t: example {i} (t=0) to example {k} (t=1)",
        ),
        color_by="class" if R.classes is not None else "piece",
        points=X[list(idx)].detach().to(torch.float64).reshape(3, *shape).numpy(),
        point_labels=names,
    )
