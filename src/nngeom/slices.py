"""Exact partitions of lines and planes by a piecewise-linear model view (any DAG, conv nets).

The engine walks the traced graph of :mod:`nngeom.view` once, in topological order, carrying a
set of *pieces* of the slice (intervals of a line, convex polygons of a plane). On each piece
every tensor of the forward is an affine function of the slice coordinates ``p`` (``k = 1`` or
``2`` of them), stored as ``1 + k`` rows: the value at ``p = 0`` and the ``k`` directional
coefficients. So a tensor of per-example shape ``S`` is held as ``(P, 1 + k, *S)``.

* **affine** operations run on those rows as on a batch of ``P (1 + k)`` inputs (the conv, the
  pooling, the residual ``+`` ... are PyTorch's own); the ``k`` direction rows then lose the
  operation's constant part ``f(0)``;
* **element-wise** piecewise-linear operations split every piece where some unit crosses one of
  its breakpoints, and apply the slope and intercept of the piece each unit is on;
* **max** operations (max-pool windows, ``amax``, ``maximum``) split every piece into the convex
  cells where the argmax is constant (in 2-D: the piece clipped by ``a_c >= a_j`` for all other
  candidates ``j``, ties going to the lower index), and take the winning candidate's rows.

Every split gathers all live tensors to the new pieces. The result is the exact partition by the
activation pattern (piece index of every element-wise unit and argmax of every max window), in
float64 with scale-aware tolerances.
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, fx

from ._checks import as_real_array
from ._errors import InvalidInput, UnsupportedModel
from ._pieces import _TINY, _midpoints, _pad, _shoelace, _split, _xtol
from .view import ModelView, ViewNode

__all__ = ["line_partition", "plane_partition", "LinePartition", "PlanePartition", "view_patterns"]

_F64 = torch.float64
# the live tensors of a slice, carried on every piece, may use at most this much memory
DEFAULT_MAX_MEMORY = 4 * 2**30


# --------------------------------------------------------------------------------------------
# running one fx node on batched rows
# --------------------------------------------------------------------------------------------
def _fetch(gm: fx.GraphModule, target: str) -> Any:
    obj: Any = gm
    for part in target.split("."):
        obj = getattr(obj, part)
    return obj


def _call(gm: fx.GraphModule, node: fx.Node, args: tuple, kwargs: dict) -> Any:
    try:
        return _call_raw(gm, node, args, kwargs)
    except UnsupportedModel:
        raise
    except Exception as exc:  # an op that does not accept a batch of rows (fixed batch size)
        raise UnsupportedModel(
            f"operation {node.name} ({node.target}) failed on a batch of slice pieces "
            f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); the "
            "forward must work for any batch size (no sizes fixed at tracing or export time)"
        ) from exc


def _call_raw(gm: fx.GraphModule, node: fx.Node, args: tuple, kwargs: dict) -> Any:
    if node.op == "call_module":
        return gm.get_submodule(str(node.target))(*args, **kwargs)
    if node.op == "call_function":
        return node.target(*args, **kwargs)  # type: ignore[operator]
    if node.op == "call_method":
        return getattr(args[0], str(node.target))(*args[1:], **kwargs)
    if node.op == "get_attr":
        return _fetch(gm, str(node.target))
    raise UnsupportedModel(f"cannot run fx node {node.name} ({node.op})")


def _last_uses(nodes: list[ViewNode]) -> dict[str, int]:
    last: dict[str, int] = {}
    for i, vn in enumerate(nodes):
        for a in vn.node.all_input_nodes:
            last[a.name] = i
    return last


class _Walker:
    """Runs the view's graph on rows, delegating the splits to a geometry (line or plane)."""

    def __init__(self, view: ModelView, geom: _Geometry, x_rows: Tensor) -> None:
        self.view = view
        self.gm = view.graph_module
        self.geom = geom
        self.k = geom.k
        self.R = 1 + geom.k
        # env: input-dependent tensors as (P, R, *S); constants and meta values as they are
        self.env: dict[str, Any] = {}
        self.dyn: set[str] = set()
        self.x_rows = x_rows
        self.patterns: list[np.ndarray] = []  # per split node: (P, n_units) pieces / argmax
        self.max_bytes = DEFAULT_MAX_MEMORY
        self.pattern_nodes: list[str] = []

    def _flat(self, name: str) -> Any:
        v = self.env[name]
        if name in self.dyn:
            return v.reshape(v.shape[0] * v.shape[1], *v.shape[2:])
        return v

    def _args(self, node: fx.Node) -> tuple[tuple, dict]:
        args = fx.node.map_arg(node.args, lambda n: self._flat(n.name))
        kwargs = fx.node.map_arg(node.kwargs, lambda n: self._flat(n.name))
        return args, kwargs  # type: ignore[return-value]

    def _gather(self, anc: np.ndarray) -> None:
        per_piece = sum(
            (v.y if isinstance(v, _TupleRows) else v)[0].numel()
            for name, v in self.env.items()
            if name in self.dyn and not isinstance(v, tuple)
        )
        need = 8 * per_piece * anc.size
        if need > self.max_bytes:
            raise InvalidInput(
                f"the slice has {anc.size:,} pieces after {len(self.patterns) + 1} splitting "
                f"operation(s); carrying the model's tensors on all of them needs "
                f"{need / 2**30:.1f} GiB (more than max_memory={self.max_bytes / 2**30:.1f} GiB): "
                "shrink the slice (a smaller extent or margin) or raise max_memory"
            )
        idx = torch.from_numpy(anc)
        for name in self.dyn:
            v = self.env[name]
            if isinstance(v, tuple):
                self.env[name] = tuple(t[idx] if isinstance(t, Tensor) else t for t in v)
            else:
                self.env[name] = v[idx]
        self.patterns = [q[anc] for q in self.patterns]

    def run(self) -> Tensor:
        nodes = self.view.nodes
        last = _last_uses(nodes)
        out: Tensor | None = None
        for i, vn in enumerate(nodes):
            node = vn.node
            if vn.kind == "input":
                self.env[node.name] = self.x_rows
                self.dyn.add(node.name)
            elif vn.kind == "output":
                res = node.args[0]
                if isinstance(res, (tuple, list)):
                    if len(res) != 1:
                        raise UnsupportedModel("the model must return one tensor")
                    res = res[0]
                if not isinstance(res, fx.Node) or res.name not in self.dyn:
                    raise UnsupportedModel("the model's output does not depend on its input")
                out = self.env[res.name]
            elif vn.kind == "guard":
                pass
            elif vn.kind in ("const", "meta"):
                args, kwargs = self._args(node)
                self.env[node.name] = _call(self.gm, node, args, kwargs)
            elif vn.kind == "affine":
                self._affine(vn)
            elif vn.kind == "elementwise":
                self._elementwise(vn)
            elif vn.kind == "max":
                self._max(vn)
            else:
                self.view.require_piecewise_linear("the exact partition")
            # free tensors no later node needs
            for a in node.all_input_nodes:
                if last.get(a.name) == i and a.name in self.env and a.name != node.name:
                    del self.env[a.name]
                    self.dyn.discard(a.name)
        assert out is not None
        return out

    # ---------------------------------------------------------------- affine
    def _affine(self, vn: ViewNode) -> None:
        node = vn.node
        args, kwargs = self._args(node)
        with torch.no_grad():
            y = _call(self.gm, node, args, kwargs)
        if not isinstance(y, Tensor):
            if isinstance(y, (tuple, list)) and all(isinstance(t, Tensor) for t in y):
                # split/chunk/unbind: a tuple of tensors; kept as a tuple of (P, R, ...) rows
                P = self.geom.n
                ys = tuple(t.reshape(P, self.R, *t.shape[1:]) for t in y)
                if not vn.linear:
                    raise UnsupportedModel(f"{vn.op} at {vn.where} returns a tuple")
                self.env[node.name] = ys
                self.dyn.add(node.name)
                return
            raise UnsupportedModel(f"{vn.op} at {vn.where} does not return a tensor")
        P = self.geom.n
        y = y.reshape(P, self.R, *y.shape[1:])
        if not vn.linear:
            y = y.clone()
            y[:, 1:] -= self._at_zero(node, args, kwargs)
        self.env[node.name] = y
        self.dyn.add(node.name)

    def _at_zero(self, node: fx.Node, args: tuple, kwargs: dict) -> Tensor:
        """The operation's constant part ``f(0)``, shape ``(1, *S_out)`` (or full batch)."""

        def zero(n: fx.Node, batch: int | None) -> Any:
            if n.name in self.dyn:
                v = self.env[n.name]
                b = v.shape[0] * v.shape[1] if batch is None else batch
                return torch.zeros((b, *v.shape[2:]), dtype=v.dtype)
            return self.env[n.name]

        with torch.no_grad():
            try:
                za = fx.node.map_arg(node.args, lambda n: zero(n, 1))
                zk = fx.node.map_arg(node.kwargs, lambda n: zero(n, 1))
                z = _call(self.gm, node, za, zk)  # type: ignore[arg-type]
                return z.reshape(1, *z.shape[1:])
            except Exception:  # a size fixed from the batch (view(x.size(0), ...)): full batch
                za = fx.node.map_arg(node.args, lambda n: zero(n, None))
                zk = fx.node.map_arg(node.kwargs, lambda n: zero(n, None))
                z = _call(self.gm, node, za, zk)  # type: ignore[arg-type]
                P = self.geom.n
                return z.reshape(P, self.R, *z.shape[1:])[:, :1]

    # ---------------------------------------------------------------- element-wise
    def _input_of(self, vn: ViewNode) -> tuple[str, Tensor]:
        a = vn.node.args[0] if vn.node.args else None
        if not isinstance(a, fx.Node) or a.name not in self.dyn:
            raise UnsupportedModel(f"{vn.op} at {vn.where}: its first argument must be the tensor")
        return a.name, self.env[a.name]

    def _elementwise(self, vn: ViewNode) -> None:
        if not vn.piecewise_linear:
            self.view.require_piecewise_linear("the exact partition")
        _, Z = self._input_of(vn)
        S = tuple(Z.shape[2:])
        bp, sl, ic = self.view.elementwise_form(vn, S)
        P = Z.shape[0]
        Zf = Z.reshape(P, self.R, -1).numpy()
        U, m = bp.shape
        if m:
            anc = self.geom.split_units(Zf, bp)
            if anc is not None:
                self._gather(anc)
                Zf = Zf[anc]
        vals = self.geom.at_reps(Zf)  # (P, U)
        r = (vals[:, :, None] > bp[None]).sum(-1) if m else np.zeros(vals.shape, dtype=np.intp)
        cols = np.arange(U)[None, :]
        s = sl[cols, r]  # (P, U)
        out = Zf * s[:, None, :]
        out[:, 0] += ic[cols, r]
        self.patterns.append(r.astype(np.int16 if m >= 127 else np.int8))
        self.pattern_nodes.append(vn.node.name)
        self.env[vn.node.name] = torch.from_numpy(out.reshape(out.shape[0], self.R, *S))
        self.dyn.add(vn.node.name)

    # ---------------------------------------------------------------- max
    def _max(self, vn: ViewNode) -> None:
        spec = vn.max_spec
        assert spec is not None
        names = [a.name for a in vn.node.all_input_nodes if a.name in self.dyn]
        if spec.kind == "binary":
            a, b = vn.node.args[0], vn.node.args[1]
            vals = [self.env[a.name], self.env[b.name]]  # type: ignore[union-attr]
            if vals[0].shape != vals[1].shape:
                raise UnsupportedModel(
                    f"{vn.op} at {vn.where}: both arguments must have the same shape"
                )
        else:
            _, v0 = self._input_of(vn)
            vals = [v0]
        del names
        shapes = [tuple(v.shape[2:]) for v in vals]
        idx, out_shape = self.view.max_index(vn, shapes)
        P = vals[0].shape[0]
        flat = torch.cat([v.reshape(P, self.R, -1) for v in vals], 2).numpy()
        valid = (idx >= 0).numpy()
        idn = idx.clamp(min=0).numpy()
        C = flat[:, :, idn]  # (P, R, N_out, m)
        anc = self.geom.split_max(C, valid)
        if anc is not None:
            self._gather(anc)
            C = C[anc]
        # winner at each piece's representative point; ties to the lowest index
        Pn = C.shape[0]
        cv = self.geom.at_reps(C.reshape(Pn, self.R, -1)).reshape(Pn, *valid.shape)
        cv = np.where(valid[None], cv, -np.inf)
        best = cv.max(-1, keepdims=True)
        scale = np.abs(C).reshape(Pn, -1).max(1)[:, None, None] * self.geom.rep_scale() + _TINY
        win = np.argmax(cv >= best - 1e-12 * scale, axis=-1)  # (P, N_out)
        rows = np.take_along_axis(C, win[:, None, :, None], 3)[..., 0]  # (P, R, N_out)
        self.patterns.append(win.astype(np.int16 if valid.shape[1] >= 127 else np.int8))
        self.pattern_nodes.append(vn.node.name)
        y = torch.from_numpy(np.ascontiguousarray(rows)).reshape(Pn, self.R, *out_shape)
        if spec.params.get("tuple"):
            self.env[vn.node.name] = (y.reshape(Pn * self.R, *out_shape), None)
            # getitem(…, 0) is an affine (linear) node: it sees the flattened tuple entry
            self.env[vn.node.name] = _TupleRows(y)
        else:
            self.env[vn.node.name] = y
        self.dyn.add(vn.node.name)


class _TupleRows:
    """The ``(values, indices)`` result of a max with indices: only ``values`` is usable."""

    def __init__(self, y: Tensor) -> None:
        self.y = y

    @property
    def shape(self) -> torch.Size:
        return self.y.shape

    def reshape(self, *shape: int) -> tuple[Tensor, None]:
        return (self.y.reshape(*shape), None)

    def __getitem__(self, idx: Any) -> _TupleRows:
        return _TupleRows(self.y[idx])


# --------------------------------------------------------------------------------------------
# geometries
# --------------------------------------------------------------------------------------------
class _Geometry:
    k: int
    scale: float

    @property
    def n(self) -> int:
        raise NotImplementedError

    def at_reps(self, Z: np.ndarray) -> np.ndarray:
        """Values ``(P, U)`` of rows ``Z`` ``(P, R, U)`` at each piece's interior point."""
        raise NotImplementedError

    def split_units(self, Z: np.ndarray, bp: np.ndarray) -> np.ndarray | None:
        raise NotImplementedError

    def rep_scale(self) -> np.ndarray | float:
        """Size of the slice coordinates at each piece's interior point (``(P, 1, 1)`` or a
        number): value tolerances there are relative to ``|coefficients| * rep_scale``."""
        return self.scale

    def split_max(self, C: np.ndarray, valid: np.ndarray) -> np.ndarray | None:
        raise NotImplementedError


class _Line(_Geometry):
    """Pieces of the interval ``(lo, hi)`` (may be infinite) between sorted ``edges``."""

    k = 1

    def __init__(self, lo: float, hi: float, xrtol: float = 1e-11) -> None:
        self.lo, self.hi = lo, hi
        self.edges = np.empty(0)
        self.scale = max([1.0, *(abs(v) for v in (lo, hi) if math.isfinite(v))])
        self.xrtol = xrtol
        self.notes: list[str] = []
        self._mids = self._midpoints()

    @property
    def n(self) -> int:
        return self.edges.size + 1

    def _midpoints(self) -> np.ndarray:
        return _midpoints(self.edges, self.lo, self.hi)

    def at_reps(self, Z: np.ndarray) -> np.ndarray:
        with np.errstate(over="ignore", invalid="ignore"):
            return Z[:, 0] + Z[:, 1] * self._mids[:, None]

    def rep_scale(self) -> np.ndarray:
        # per piece, not the interval's bounds: (-1e300, 1e300) must not blur the argmax
        return np.maximum(1.0, np.abs(self._mids))[:, None, None]

    def _add(self, T: np.ndarray, what: str) -> np.ndarray | None:
        """Insert crossing points ``T`` (inside their pieces); return the parent of each piece."""
        if T.size == 0:
            return None
        T = np.sort(T)
        gaps = np.diff(T)
        xtol = _xtol(np.maximum(np.abs(T[1:]), np.abs(T[:-1])), self.xrtol)
        keep = np.ones(T.size, dtype=bool)
        keep[1:] = gaps > xtol
        if np.any((gaps > 1e-3 * xtol) & (gaps <= xtol)):
            self.notes.append(
                f"{what}: crossings closer than the merge tolerance (relative {self.xrtol:g}) "
                "were merged"
            )
        T = T[keep]
        merged = np.concatenate((self.edges, T))
        merged.sort(kind="mergesort")
        parent = np.empty(merged.size + 1, dtype=np.intp)
        parent[0] = 0
        parent[1:] = np.searchsorted(self.edges, merged, side="right")
        self.edges = merged
        self.scale = max(self.scale, abs(float(merged[0])), abs(float(merged[-1])))
        self._mids = self._midpoints()
        return parent

    def _bounds(self) -> tuple[np.ndarray, np.ndarray]:
        left = np.concatenate(([self.lo], self.edges))
        right = np.concatenate((self.edges, [self.hi]))
        return left, right

    def split_units(self, Z: np.ndarray, bp: np.ndarray) -> np.ndarray | None:
        c, a = Z[:, 0], Z[:, 1]  # (P, U)
        left, right = self._bounds()
        amax = max(float(np.abs(a).max(initial=0.0)), _TINY)
        aeff = np.where(np.abs(a) > 1e-14 * amax, a, 0.0)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            T = (bp[None, :, :] - c[:, :, None]) / aeff[:, :, None]
            xtol = _xtol(T, self.xrtol)
            inside = (T > left[:, None, None] + xtol) & (T < right[:, None, None] - xtol)
        return self._add(T[inside], "element-wise node")

    def split_max(self, C: np.ndarray, valid: np.ndarray) -> np.ndarray | None:
        # crossings of every pair of candidates of a window, inside each piece
        P, _, N, m = C.shape
        left, right = self._bounds()
        Ts = []
        for i in range(m):
            for j in range(i + 1, m):
                ok = valid[:, i] & valid[:, j]
                if not ok.any():
                    continue
                dc = C[:, 0, ok, i] - C[:, 0, ok, j]
                da = C[:, 1, ok, i] - C[:, 1, ok, j]
                amax = max(float(np.abs(da).max(initial=0.0)), _TINY)
                da = np.where(np.abs(da) > 1e-14 * amax, da, 0.0)
                with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
                    T = -dc / da
                    xtol = _xtol(T, self.xrtol)
                    inside = (T > left[:, None] + xtol) & (T < right[:, None] - xtol)
                Ts.append(T[inside])
        if not Ts:
            return None
        T = np.concatenate(Ts)
        old = self.edges.copy()
        parent = self._add(T, "max node")
        if parent is None:
            return None
        # drop the new edges where no window's argmax changes (a crossing of two losers)
        Cp = C[parent]
        cv = self.at_reps(Cp.reshape(Cp.shape[0], 2, -1)).reshape(Cp.shape[0], N, m)
        cv = np.where(valid[None], cv, -np.inf)
        scale = np.abs(Cp).reshape(Cp.shape[0], -1).max(1)[:, None, None] * self.rep_scale()
        scale = scale + _TINY
        win = np.argmax(cv >= cv.max(-1, keepdims=True) - 1e-12 * scale, axis=-1)
        is_new = ~np.isin(self.edges, old)
        same = (win[1:] == win[:-1]).all(1)
        drop = is_new & same
        if drop.any():
            keep_edges = ~drop
            self.edges = self.edges[keep_edges]
            keep_piece = np.concatenate(([True], keep_edges))
            parent = parent[keep_piece]
            self._mids = self._midpoints()
        return parent


def _centres(V: np.ndarray, nv: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Vertex mean ``(P, 2)`` of padded polygons and the largest max-norm distance of a vertex
    from it ``(P,)`` (so ``|a . (x - mean)| <= |a|_1 radius`` on the polygon)."""
    M = V.shape[1]
    valid = (np.arange(M)[None, :] < nv[:, None])[..., None]
    mean = np.where(valid, V, 0.0).sum(1) / np.maximum(nv, 1)[:, None]
    d = np.where(valid, np.abs(V - mean[:, None, :]), 0.0).max((1, 2))
    return mean, d * (1.0 + 1e-12)


class _Plane(_Geometry):
    """Convex polygons (padded vertex arrays) partitioning a rectangle of the plane."""

    k = 2

    def __init__(self, bounds: tuple[float, float, float, float]) -> None:
        s0, s1, t0, t1 = bounds
        self.V = np.array([[[s0, t0], [s1, t0], [s1, t1], [s0, t1]]], dtype=np.float64)
        self.nv = np.array([4])
        self.scale = max(abs(s0), abs(s1), abs(t0), abs(t1), _TINY)
        self._cen: np.ndarray | None = None

    @property
    def n(self) -> int:
        return self.V.shape[0]

    def centroids(self) -> np.ndarray:
        if self._cen is None:
            self._cen = _shoelace(self.V, self.nv)[1]
        return self._cen

    def at_reps(self, Z: np.ndarray) -> np.ndarray:
        cen = self.centroids()
        return Z[:, 0] + Z[:, 1] * cen[:, :1] + Z[:, 2] * cen[:, 1:]

    def _vertex_values(self, a: np.ndarray, c: np.ndarray, V: np.ndarray) -> np.ndarray:
        return V[:, :, 0] * a[:, :1] + V[:, :, 1] * a[:, 1:] + c[:, None]

    def _tol(self, a: np.ndarray, c: np.ndarray) -> np.ndarray:
        return 1e-12 * ((np.abs(a[:, 0]) + np.abs(a[:, 1])) * self.scale + np.abs(c))

    def _crossing(self, Z: np.ndarray, bp_col: np.ndarray, chunk: int = 256) -> np.ndarray:
        """``(P, U)`` bool: does unit ``u``'s line ``z_u = bp_col[u]`` cut polygon ``p``?"""
        P, _, U = Z.shape
        M = self.V.shape[1]
        valid = np.arange(M)[None, :, None] < self.nv[:, None, None]
        out = np.zeros((P, U), dtype=bool)
        for u0 in range(0, U, chunk):
            sl = slice(u0, u0 + chunk)
            c = Z[:, 0, sl] - bp_col[None, sl]
            f = (
                c[:, None, :]
                + self.V[:, :, :1] * Z[:, None, 1, sl]
                + self.V[:, :, 1:] * Z[:, None, 2, sl]
            )
            tol = 1e-12 * (
                (np.abs(Z[:, 1, sl]) + np.abs(Z[:, 2, sl])) * self.scale
                + np.abs(c)
                + np.abs(bp_col[None, sl])
            )
            pos = ((f > tol[:, None, :]) & valid).any(1)
            neg = ((f < -tol[:, None, :]) & valid).any(1)
            out[:, sl] = pos & neg
        return out

    def _replace(self, sp: np.ndarray, Vp, nvp, Vn, nvn, anc: np.ndarray) -> np.ndarray:

        Mx = max(self.V.shape[1], Vp.shape[1], Vn.shape[1])
        V = _pad(self.V, Mx)
        V[sp] = _pad(Vp, Mx)
        nv = self.nv.copy()
        nv[sp] = nvp
        self.V = np.concatenate([V, _pad(Vn, Mx)], 0)
        self.nv = np.concatenate([nv, nvn])
        return np.concatenate([anc, anc[sp]])

    def split_units(self, Z: np.ndarray, bp: np.ndarray) -> np.ndarray | None:
        """Cut every polygon by every unit's breakpoint lines (one unit after another).

        Polygons live in growable buffers (no copy of all polygons per unit), and a unit's
        line is tested against a polygon's vertices only when it passes within the polygon's
        bounding radius of its vertex mean: a line meets few of many small polygons.
        """

        P0, _, U = Z.shape
        n, M = self.V.shape[0], self.V.shape[1]
        cap = max(2 * n, 1024)
        V = np.zeros((cap, M, 2))
        V[:n] = self.V
        nv = np.zeros(cap, dtype=np.int64)
        nv[:n] = self.nv
        anc = np.zeros(cap, dtype=np.intp)
        anc[:n] = np.arange(n)
        cen = np.zeros((cap, 2))
        rad = np.zeros(cap)
        cen[:n], rad[:n] = _centres(V[:n], nv[:n])
        changed = False
        for kk in range(bp.shape[1]):
            cross = self._crossing(Z, bp[:, kk])  # by parent polygon
            for u in np.flatnonzero(cross.any(0)):
                cand = np.flatnonzero(cross[anc[:n], u])
                if cand.size == 0:
                    continue
                pa = anc[cand]
                A = Z[pa, 1:, u]  # (S, 2)
                c = Z[pa, 0, u] - bp[u, kk]
                tol = self._tol(A, c) + 1e-12 * abs(bp[u, kk])
                fc = cen[cand, 0] * A[:, 0] + cen[cand, 1] * A[:, 1] + c
                near = np.abs(fc) <= (np.abs(A[:, 0]) + np.abs(A[:, 1])) * rad[cand] + tol
                if not near.any():
                    continue
                sel, A, c, tol = cand[near], A[near], c[near], tol[near]
                Vs = V[sel]
                f = self._vertex_values(A, c, Vs)
                validv = np.arange(M)[None, :] < nv[sel, None]
                fv = np.where(validv, f, 0.0)
                both = ((fv > tol[:, None]).any(1)) & ((fv < -tol[:, None]).any(1))
                if not both.any():
                    continue
                sp = sel[both]
                Vp, nvp, Vn, nvn = _split(Vs[both], nv[sp], f[both], tol[both])
                k = sp.size
                Mx = max(M, Vp.shape[1], Vn.shape[1])
                if Mx > M:
                    V = np.concatenate([V, np.zeros((V.shape[0], Mx - M, 2))], 1)
                    M = Mx
                if n + k > V.shape[0]:
                    grow = max(V.shape[0], n + k)
                    V = np.concatenate([V, np.zeros((grow, M, 2))], 0)
                    nv = np.concatenate([nv, np.zeros(grow, dtype=nv.dtype)])
                    anc = np.concatenate([anc, np.zeros(grow, dtype=anc.dtype)])
                    cen = np.concatenate([cen, np.zeros((grow, 2))], 0)
                    rad = np.concatenate([rad, np.zeros(grow)])
                V[sp] = 0.0
                V[sp, : Vp.shape[1]] = Vp
                nv[sp] = nvp
                V[n : n + k] = 0.0
                V[n : n + k, : Vn.shape[1]] = Vn
                nv[n : n + k] = nvn
                anc[n : n + k] = anc[sp]
                cen[sp], rad[sp] = _centres(V[sp], nv[sp])
                cen[n : n + k], rad[n : n + k] = _centres(V[n : n + k], nv[n : n + k])
                n += k
                changed = True
        if changed:
            used = int(nv[:n].max())
            self.V, self.nv = np.ascontiguousarray(V[:n, :used]), nv[:n].copy()
        self._cen = None
        return anc[:n].copy() if changed else None

    def split_max(self, C: np.ndarray, valid: np.ndarray) -> np.ndarray | None:

        P0, _, N, m = C.shape
        M = self.V.shape[1]
        validv = np.arange(M)[None, :] < self.nv[:, None]
        # windows whose argmax is the same candidate at every vertex need no split
        vals = (
            C[:, None, 0]
            + self.V[:, :, 0, None, None] * C[:, None, 1]
            + self.V[:, :, 1, None, None] * C[:, None, 2]
        )  # (P, M, N, m)
        vals = np.where(valid[None, None], vals, -np.inf)
        cscale = (np.abs(C[:, 1]) + np.abs(C[:, 2])).max(-1) * self.scale + np.abs(C[:, 0]).max(-1)
        tol = 1e-12 * cscale[:, None, :] + _TINY  # (P, 1, N)
        best = vals.max(-1, keepdims=True)
        win = np.argmax(vals >= best - tol[..., None], axis=-1)  # (P, M, N)
        win = np.where(validv[:, :, None], win, win[:, :1])
        uniform = (win == win[:, :1]).all(1)  # (P, N)
        need = ~uniform
        if not need.any():
            return None
        anc = np.arange(P0)
        area_tol = 1e-24 * self.scale * self.scale
        for o in np.flatnonzero(need.any(0)):
            sel = np.flatnonzero(need[anc, o])
            if sel.size == 0:
                continue
            cands = np.flatnonzero(valid[o])
            S, nS, pa = self.V[sel], self.nv[sel], anc[sel]
            pieces_V, pieces_n, pieces_a = [], [], []
            for ci in cands:
                Vc, nc, ac = S, nS, pa
                for j in cands:
                    if j == ci or Vc.shape[0] == 0:
                        continue
                    d = C[ac, :, o, ci] - C[ac, :, o, j]  # (Q, 3)
                    a, c = d[:, 1:], d[:, 0]
                    f = self._vertex_values(a, c, Vc)
                    t = self._tol(a, c) + 1e-12 * cscale[ac, o]
                    vv = np.arange(Vc.shape[1])[None, :] < nc[:, None]
                    fv = np.where(vv, f, 0.0)
                    pos = (fv > t[:, None]).any(1)
                    neg = (fv < -t[:, None]).any(1)
                    # ties (f == 0 everywhere) go to the lower index: strict for j < ci
                    keep_whole = ~neg & (pos if j < ci else True)
                    cut = pos & neg
                    if cut.any():
                        Vp, nvp, _, _ = _split(Vc[cut], nc[cut], f[cut], t[cut])
                        Mx = max(Vc.shape[1], Vp.shape[1])
                        Vc = _pad(Vc, Mx)
                        Vk = np.concatenate([Vc[keep_whole], _pad(Vp, Mx)], 0)
                        nk = np.concatenate([nc[keep_whole], nvp])
                        ak = np.concatenate([ac[keep_whole], ac[cut]])
                    else:
                        Vk, nk, ak = Vc[keep_whole], nc[keep_whole], ac[keep_whole]
                    Vc, nc, ac = Vk, nk, ak
                if Vc.shape[0]:
                    ar, _ = _shoelace(Vc, nc)
                    ok = (nc >= 3) & (ar > area_tol)
                    pieces_V.append(Vc[ok])
                    pieces_n.append(nc[ok])
                    pieces_a.append(ac[ok])
            rest = np.ones(self.V.shape[0], dtype=bool)
            rest[sel] = False
            Mx = max([self.V.shape[1], *(p.shape[1] for p in pieces_V)])
            self.V = np.concatenate([_pad(self.V[rest], Mx), *(_pad(p, Mx) for p in pieces_V)], 0)
            self.nv = np.concatenate([self.nv[rest], *pieces_n])
            anc = np.concatenate([anc[rest], *pieces_a])
        self._cen = None
        return anc


# --------------------------------------------------------------------------------------------
# public entry points (used by knots.py and regions.py)
# --------------------------------------------------------------------------------------------
@dataclass
class LinePartition:
    """Partition of a line parameter interval: ``edges`` ``(K,)``; on piece ``j`` the output is
    ``A[j] * t + C[j]`` (``(K + 1, p)`` each); ``patterns`` ``(K + 1, n_units)``."""

    edges: np.ndarray
    A: np.ndarray
    C: np.ndarray
    patterns: np.ndarray
    notes: list[str]


@dataclass
class PlanePartition:
    """Polygons ``V`` ``(P, M, 2)`` / ``nv`` ``(P,)``; output ``intercepts + slopes @ (s, t)``
    (``slopes`` ``(P, p, 2)``, ``intercepts`` ``(P, p)``); ``patterns`` ``(P, n_units)``."""

    V: np.ndarray
    nv: np.ndarray
    slopes: np.ndarray
    intercepts: np.ndarray
    patterns: np.ndarray


def _rows(x0: np.ndarray, dirs: list[np.ndarray], shape: tuple[int, ...]) -> Tensor:
    rows = np.stack([x0, *dirs], 0).reshape(1, 1 + len(dirs), *shape)
    return torch.from_numpy(np.ascontiguousarray(rows, dtype=np.float64))


def _f64_view(view: ModelView) -> ModelView:
    from .view import float64_copy

    gm = float64_copy(view)
    out = ModelView(view.module, gm, [], view.input_shape, view.traced)
    # the classified nodes of the copy: same names, same kinds
    by = {n.name: n for n in gm.graph.nodes}
    out.nodes = [
        ViewNode(**{**vn.__dict__, "node": by[vn.node.name]})  # type: ignore[arg-type]
        for vn in view.nodes
    ]
    # element-wise modules of the copy (PReLU weights etc. live in the copy)
    fixed = []
    for vn in out.nodes:
        if vn.kind == "elementwise" and vn.node.op == "call_module":
            vn = ViewNode(**{**vn.__dict__, "activation": gm.get_submodule(str(vn.node.target))})
        fixed.append(vn)
    out.nodes = fixed
    out.by_name = {vn.node.name: vn for vn in fixed}
    return out


def _check_finite_params(view: ModelView) -> None:
    from ._errors import InvalidModel

    for name, p in list(view.module.named_parameters()) + list(view.module.named_buffers()):
        if p.is_floating_point() and not torch.isfinite(p).all():
            raise InvalidModel(
                f"parameter or buffer '{name}' is NaN or infinite; re-initialise or retrain the "
                "model before analysing it"
            )


def _output_rows(out: Tensor, R: int) -> np.ndarray:
    P = out.shape[0]
    return out.reshape(P, R, -1).numpy()


def line_partition(
    view: ModelView, x0: np.ndarray, d: np.ndarray, lo: float, hi: float
) -> LinePartition:
    """Exact partition of ``t`` in ``(lo, hi)`` for the line ``x0 + t d`` (input shape)."""
    view.require_piecewise_linear("the exact partition of a line")
    _check_finite_params(view)
    v64 = _f64_view(view)
    shape = tuple(x0.shape)
    geom = _Line(lo, hi)
    w = _Walker(v64, geom, _rows(x0.reshape(-1), [d.reshape(-1)], shape))
    out = _output_rows(w.run(), 2)
    pats = np.concatenate(w.patterns, 1) if w.patterns else np.zeros((geom.n, 0), np.int8)
    return LinePartition(geom.edges, out[:, 1], out[:, 0], pats, geom.notes)


def plane_partition(
    view: ModelView,
    origin: np.ndarray,
    u: np.ndarray,
    v: np.ndarray,
    bounds: tuple[float, float, float, float],
    max_memory: float = DEFAULT_MAX_MEMORY,
) -> PlanePartition:
    """Exact partition of the rectangle ``bounds`` of the plane ``origin + s u + t v``.

    Raises:
        InvalidInput: the pieces would need more than ``max_memory`` bytes.
    """
    view.require_piecewise_linear("the exact partition of a plane")
    _check_finite_params(view)
    v64 = _f64_view(view)
    shape = tuple(origin.shape)
    geom = _Plane(bounds)
    w = _Walker(v64, geom, _rows(origin.reshape(-1), [u.reshape(-1), v.reshape(-1)], shape))
    w.max_bytes = max_memory
    out = _output_rows(w.run(), 3)
    pats = np.concatenate(w.patterns, 1) if w.patterns else np.zeros((geom.n, 0), np.int8)
    slopes = np.stack([out[:, 1], out[:, 2]], 2)  # (P, p, 2)
    return PlanePartition(geom.V, geom.nv, slopes, out[:, 0], pats)


def view_patterns(
    view: ModelView, X: Tensor, *, v64: ModelView | None = None
) -> tuple[np.ndarray, list[tuple[str, int, str]]]:
    """Activation pattern of each input, in the order the partition engines use.

    Args:
        X: ``(N, *input_shape)``.

    Returns:
        ``(patterns, blocks)``: ``patterns`` ``(N, n_units)`` int16 (piece index of every
        element-wise unit, argmax of every max window); ``blocks`` lists ``(node name, number
        of units, kind)`` per splitting node, in column order.
    """
    v64 = _f64_view(view) if v64 is None else v64
    Xd = X.detach().to("cpu", _F64)
    geom = _Points(Xd.shape[0])
    w = _Walker(v64, geom, Xd.reshape(Xd.shape[0], 1, *Xd.shape[1:]))
    w.run()
    blocks = [
        (name, int(q.shape[1]), v64.by_name[name].kind)
        for name, q in zip(w.pattern_nodes, w.patterns)
    ]
    if not w.patterns:
        return np.zeros((X.shape[0], 0), np.int16), blocks
    return np.concatenate([q.astype(np.int16) for q in w.patterns], 1), blocks


class _Points(_Geometry):
    """Single points (no directions): for evaluating patterns."""

    k = 0
    scale = 1.0

    def __init__(self, n: int) -> None:
        self._n = n

    @property
    def n(self) -> int:
        return self._n

    def at_reps(self, Z: np.ndarray) -> np.ndarray:
        return Z[:, 0]

    def split_units(self, Z: np.ndarray, bp: np.ndarray) -> np.ndarray | None:
        return None

    def split_max(self, C: np.ndarray, valid: np.ndarray) -> np.ndarray | None:
        return None


def check_point(x: Any, shape: tuple[int, ...], name: str) -> np.ndarray:
    """``x`` as a float64 array of the model's per-example input ``shape`` (or its flattening)."""
    a = as_real_array(x, name)
    n = int(np.prod(shape))
    if a.size != n:
        raise InvalidInput(
            f"{name} must have the model's input shape {tuple(shape)} ({n} numbers), got shape "
            f"{a.shape}"
        )
    if not np.isfinite(a).all():
        raise InvalidInput(f"{name} contains NaN or inf")
    return a.reshape(shape)


_ = operator  # getitem nodes run through _call
