"""The saddles study's tasks: typed configs (frozen dataclasses) and their results.

* :class:`ToyTask` -- the paper's toy task (2-D grid, softplus teacher with 4 neurons, no
  biases); a softplus student trained in float64 to a critical point, and the permutation point
  of *every* pair of its neurons. ``outputs > 1`` gives the teacher (and the students) that
  many outputs, so the hidden layer feeds ``n_2 = outputs`` units (a multi-output layer: not in
  the paper; it tests what ``index + zeros >= n_{k+1}`` implies).
* :class:`TeacherMultilayerTask` -- a *constructed* multilayer case: average-pooled,
  standardised Fashion-MNIST images, targets from a noisy softplus teacher ``d-h-(h-1)-10``,
  the student ``d-h-h-10`` started at the teacher with one layer-2 neuron split in two. Small
  enough for the full Hessian spectrum.
* :class:`MnistTask` -- the paper's multilayer case ``784-100-100-10`` on raw Fashion-MNIST
  images (the stand-in for MNIST, which is not available offline), one-hot targets, MSE,
  float64: trained, two neurons of layer 2 merged, the reduced net driven to a critical point,
  the Hessian's extreme eigenvalues by Lanczos and the zero-mode analysis of the flat
  directions.
* :class:`CountingTask` -- the exact counts of equivalent minima and K-th order permutation
  points, and the same counts by enumeration on tiny nets.

Every permutation point records whether its search met the criterion (``grad_tol``, a field of
the config): ``converged``. The flat-direction analysis of every point (:func:`flat_analysis`)
gives ``rank(H D)`` (``D``: the ``n_{k+1}`` directions ``(delta, -delta)`` on the pair's
outgoing weights), which bounds the saddle index from below (see :mod:`.analysis`).
"""

from __future__ import annotations

import itertools
import math
import time
from dataclasses import dataclass

import numpy as np
import torch

from ..._checks import TINY
from ..._errors import StudyError
from ..._random import numpy_rng, torch_generator
from ...data import image_classification, pool_images, teacher_student_grid
from ...hessian import HessianOperator, count_eigenvalues, eigvalsh
from ...nets import mlp
from ...symmetry import (
    CriticalPointSearch,
    FreeSubspace,
    bezier_path,
    count_equivalent_minima,
    count_permutation_points,
    embed_merged,
    equal_loss_path,
    find_critical_point,
    find_permutation_saddle,
    flat_directions,
    linear_path_losses,
    merge_neurons,
    path_losses,
    permutation_point_factor,
    permute,
)
from ...train import train
from .._typed import Result, Task

GLOBAL_LOSS = 1e-12  # a toy student below this loss is at a global minimum (realisable teacher)
TEACHER_WIDTH = 4  # neurons of the toy task's softplus teacher (data.teacher_student_grid)
CRITICAL_GRAD = 1e-8  # the convergence criterion: a point with gradient norm <= this is critical
ZERO_RTOL = 1e-7  # |eigenvalue| <= ZERO_RTOL max|eigenvalue| counts as zero (count_eigenvalues)
FLAT_RANK_RTOL = 1e-8  # singular values of H D above this times max|eigenvalue| count in rank(H D)
CONSTANT_INPUT_RTOL = 1e-12  # an input whose std is below this times the largest std is constant
STD_FLOOR = 1e-12  # the smallest standard deviation a teacher's layer is rescaled by
LANCZOS_TOL = 1e-8  # Lanczos residual tolerance, relative to the largest |eigenvalue|
MAX_STORED_EIGENVALUES = 6000  # larger spectra keep only their extremes in the result
EXTREMES = 10  # eigenvalues kept at each end of a spectrum in a result
TOY_OUTPUT_SEED = 20190705  # seeds the extra output rows of a multi-output toy teacher


# ------------------------------------------------------------------------------------------
# the flat directions of a permutation point


@dataclass(frozen=True)
class FlatAnalysis:
    """The flat directions ``D`` (``n_{k+1}`` unit columns) at a permutation point.

    ``rank``: ``rank(H D)`` (singular values above ``FLAT_RANK_RTOL * scale``); ``quad``:
    ``max |D^T H D| / scale`` (0 when the loss is flat along ``D`` to second order);
    ``singular``: the singular values of ``H D / scale``, descending.
    """

    rank: int
    quad: float
    singular: tuple[float, ...]


def flat_analysis(
    op: HessianOperator, model: torch.nn.Module, layer: int, i: int, j: int, scale: float
) -> FlatAnalysis:
    """``rank(H D)`` and ``D^T H D`` at the permutation point ``model`` of ``layer``'s ``i, j``
    (``op``: its Hessian; ``scale``: the largest ``|eigenvalue|``)."""
    D = flat_directions(model, layer, i, j)
    HD = op @ D
    scale = max(float(scale), TINY)
    sv = torch.linalg.svdvals(HD) / scale
    return FlatAnalysis(
        rank=int((sv > FLAT_RANK_RTOL).sum()),
        quad=float((D.T @ HD).abs().max()) / scale,
        singular=tuple(float(s) for s in sv),
    )


def _extremes(ev: np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...]]:
    k = min(EXTREMES, ev.size)
    return tuple(float(x) for x in ev[:k]), tuple(float(x) for x in ev[ev.size - k :])


# ------------------------------------------------------------------------------------------
# the toy task


@dataclass(frozen=True)
class ToyResult(Result):
    """A toy student and the permutation points of every pair of its neurons.

    Per pair (parallel tuples): ``pair_i``, ``pair_j``, ``loss``, ``grad_norm``,
    ``reduced_grad_norm``, ``converged`` (gradient norm <= the config's ``grad_tol``),
    ``index`` (negative eigenvalues of the full Hessian), ``zeros`` (``|lambda| <= ZERO_RTOL
    max|lambda|``), ``flat_rank`` (``rank(H D)``), ``flat_quad`` (``max |D^T H D|``, relative),
    ``eigenvalues`` (the full spectrum, ascending). ``n_next`` is ``n_2 = outputs``.
    """

    width: int
    outputs: int
    seed: int
    n_points: int
    attempts: int
    n_next: int
    student_loss: float
    student_grad_norm: float
    student_index: int
    student_zeros: int
    student_converged: bool
    pair_i: tuple[int, ...]
    pair_j: tuple[int, ...]
    loss: tuple[float, ...]
    grad_norm: tuple[float, ...]
    reduced_grad_norm: tuple[float, ...]
    converged: tuple[bool, ...]
    index: tuple[int, ...]
    zeros: tuple[int, ...]
    flat_rank: tuple[int, ...]
    flat_quad: tuple[float, ...]
    eigenvalues: tuple[tuple[float, ...], ...]
    # the paths of pair (0, 1) (single-output students only; empty otherwise)
    valley: tuple[float, ...] = ()
    valley_breaks: tuple[int, ...] = ()
    point_loss: float | None = None
    line_t: tuple[float, ...] = ()
    line: tuple[float, ...] = ()
    bezier: tuple[float, ...] = ()
    line_barrier: float | None = None
    bezier_barrier: float | None = None
    seconds: float = 0.0


@dataclass(frozen=True)
class ToyTask(Task):
    """A softplus student of ``width`` neurons on the toy grid (``-5:step:5`` squared), trained
    in float64 to a critical point (Adam, then L-BFGS, trust region and Newton); students of
    width >= the teacher's are retrained from new initialisations (up to ``attempts``) until one
    reaches a global minimum (loss < ``GLOBAL_LOSS``). Then the permutation point of every pair
    (search: ``pair_*``), its full Hessian spectrum and flat directions; for pair (0, 1) of a
    single-output student, the loss along the equal-loss path, the straight line and an
    optimised Bezier curve to the (0 1)-swapped student.
    """

    width: int
    seed: int
    outputs: int = 1
    step: float = 0.5
    adam_epochs: int = 2000
    attempts: int = 6
    lbfgs_steps: int = 50
    trust_steps: int = 2000
    pair_lbfgs: int = 10
    pair_trust: int = 300
    pair_restarts: int = 2
    path_steps: int = 20
    bezier_epochs: int = 150
    grad_tol: float = CRITICAL_GRAD

    def run(self) -> ToyResult:
        t0 = time.perf_counter()
        X, y = toy_data(self.step, self.outputs)
        crit, attempts = self._student(X, y)
        net = crit.model
        op = HessianOperator(net, X, y, loss="sse")
        ev = eigvalsh(op.full()).numpy()
        s_neg, s_zero, _ = count_eigenvalues(ev, ZERO_RTOL)
        s_grad = float(torch.linalg.vector_norm(op.gradient()))
        cols: dict[str, list] = {
            k: []
            for k in (
                "pair_i pair_j loss grad_norm reduced_grad_norm converged index zeros "
                "flat_rank flat_quad eigenvalues"
            ).split()
        }
        paths: dict = {}
        search = CriticalPointSearch(
            lbfgs_steps=self.pair_lbfgs,
            trust_steps=self.pair_trust,
            newton_steps=20,
            restarts=self.pair_restarts,
            accept_tol=self.grad_tol,
        )
        for i, j in itertools.combinations(range(self.width), 2):
            pp = find_permutation_saddle(
                net, X, y, 0, i, j, loss="sse", search=search, zero_tol=ZERO_RTOL
            )
            pev = pp.eigenvalues.numpy()
            scale = float(np.abs(pev).max())
            pop = HessianOperator(pp.model, X, y, loss="sse")
            fa = flat_analysis(pop, pp.model, 0, i, j, scale)
            for key, value in (
                ("pair_i", i),
                ("pair_j", j),
                ("loss", pp.loss),
                ("grad_norm", pp.grad_norm),
                ("reduced_grad_norm", pp.reduced_grad_norm),
                ("converged", bool(pp.converged)),
                ("index", int(pp.n_negative)),
                ("zeros", int(pp.n_zero)),
                ("flat_rank", fa.rank),
                ("flat_quad", fa.quad),
                ("eigenvalues", tuple(float(x) for x in pev)),
            ):
                cols[key].append(value)
            if (i, j) == (0, 1) and self.outputs == 1:
                paths = self._paths(net, pp, X, y)
        return ToyResult(
            width=self.width,
            outputs=self.outputs,
            seed=self.seed,
            n_points=int(X.shape[0]),
            attempts=attempts,
            n_next=self.outputs,
            student_loss=float(crit.loss),
            student_grad_norm=s_grad,
            student_index=int(s_neg),
            student_zeros=int(s_zero),
            student_converged=bool(s_grad <= self.grad_tol),
            **{k: tuple(v) for k, v in cols.items()},
            **paths,
            seconds=time.perf_counter() - t0,
        )

    def _student(self, X: torch.Tensor, y: torch.Tensor):
        """Train a softplus student to a critical point; retry from new inits until it is global.

        Incoming weights ``N(0, 0.5^2)``, outgoing weights 1 (the teacher's scale); Adam, then
        L-BFGS and an exact trust-region finish; the first attempt below ``GLOBAL_LOSS`` is kept
        (or the lowest). Narrower students than the teacher cannot reach zero loss: one attempt.
        """
        tries = self.attempts if self.width >= TEACHER_WIDTH else 1
        best = None
        for attempt in range(tries):
            init_seed = self.seed * 1000 + attempt
            student = mlp(
                [2, self.width, self.outputs],
                "softplus",
                bias=False,
                dtype=torch.float64,
                seed=init_seed,
            )
            g = torch_generator(init_seed)
            with torch.no_grad():
                student[0].weight.copy_(
                    0.5 * torch.randn(self.width, 2, generator=g, dtype=torch.float64)
                )
                student[2].weight.fill_(1.0)
            if self.adam_epochs > 0:
                train(student, X, y, loss="sse", epochs=self.adam_epochs, lr=1e-2, seed=init_seed)
            crit = find_critical_point(
                student,
                X,
                y,
                loss="sse",
                search=CriticalPointSearch(
                    lbfgs_steps=self.lbfgs_steps,
                    trust_steps=self.trust_steps,
                    newton_steps=5,
                    accept_tol=self.grad_tol,
                ),
            )
            if best is None or crit.loss < best.loss:
                best = crit
            if best.loss < GLOBAL_LOSS:
                return best, attempt + 1
        return best, tries

    def _paths(self, net, pp, X, y) -> dict:
        steps = self.path_steps
        path = equal_loss_path(pp.model, 0, 0, 1, steps=steps)
        valley = path_losses(pp.model, X, y, path.params, loss="sse")
        swapped = permute(net, 0, [1, 0, *range(2, self.width)])
        t, line = linear_path_losses(net, swapped, X, y, loss="sse", steps=2 * steps)
        bz = bezier_path(
            net,
            swapped,
            X,
            y,
            loss="sse",
            epochs=self.bezier_epochs,
            lr=0.02,
            steps=2 * steps,
            seed=self.seed,
        )
        return {
            "valley": tuple(float(v) for v in valley),
            "valley_breaks": tuple(int(b) for b in path.breaks),
            "point_loss": float(pp.loss),
            "line_t": tuple(float(v) for v in t),
            "line": tuple(float(v) for v in line),
            "bezier": tuple(float(v) for v in bz.losses),
            "line_barrier": float(line.max() - max(line[0], line[-1])),
            "bezier_barrier": float(bz.barrier),
        }


def toy_data(step: float, outputs: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """The toy grid and targets: the paper's teacher (4 softplus neurons, no biases, output
    weights 1); with ``outputs > 1`` the teacher has that many outputs, the first with weights 1
    and the others ``N(0, 1)`` (seeded by ``TOY_OUTPUT_SEED``)."""
    X, y, teacher = teacher_student_grid("softplus", step=float(step))
    if outputs == 1:
        return X, y
    if outputs < 1:
        raise StudyError(f"outputs must be >= 1, got {outputs}")
    g = torch_generator(TOY_OUTPUT_SEED)
    W = torch.cat(
        [
            torch.ones(1, TEACHER_WIDTH, dtype=torch.float64),
            torch.randn(outputs - 1, TEACHER_WIDTH, generator=g, dtype=torch.float64),
        ]
    )
    with torch.no_grad():
        h = torch.nn.functional.softplus(X @ teacher[0].weight.T)
    return X, h @ W.T


# ------------------------------------------------------------------------------------------
# the multilayer cases


@dataclass(frozen=True)
class MultilayerResult(Result):
    """The permutation point of neurons ``i, j`` of hidden layer 2 (index 1) of a multilayer net.

    ``index``: negative eigenvalues found (the full spectrum's count when ``full_spectrum``;
    otherwise the negative Ritz values among the ``lanczos_k`` smallest, and ``index_exact`` says
    whether a non-negative one was among them, so that all negative eigenvalues were found).
    ``zeros``: zero eigenvalues (full spectrum only; ``None`` otherwise), ``zeros_free``: the
    same without the exactly flat data-null directions (``data_null``). ``flat_rank``:
    ``rank(H D)`` of the ``n_next = n_3`` flat directions; ``n_next - flat_rank`` of them are
    zero modes. ``smallest``/``largest``: the extreme eigenvalues (Lanczos Ritz values when not
    ``full_spectrum``; ``lanczos_residuals`` their residuals, smallest then largest).
    """

    case: str  # "teacher" (constructed) or "onehot" (the paper's setting)
    dataset: str
    sizes: tuple[int, ...]
    n_parameters: int
    n_train: int
    image_side: int
    pooled_side: int
    standardized: bool
    n_inputs: int
    layer: int
    i: int
    j: int
    n_next: int
    train_loss: float | None
    train_accuracy: float | None
    loss: float
    grad_norm: float
    reduced_grad_norm: float
    converged: bool
    full_spectrum: bool
    index: int
    index_exact: bool
    zeros: int | None
    zeros_free: int | None
    data_null: int
    zero_gap: tuple[float, ...]
    flat_rank: int
    flat_quad: float
    flat_singular: tuple[float, ...]
    smallest: tuple[float, ...]
    largest: tuple[float, ...]
    lanczos_iterations: int
    lanczos_converged: bool
    lanczos_residuals: tuple[float, ...]
    lanczos_check: float | None  # full spectrum: max relative gap of Lanczos to the full extremes
    eigenvalues: tuple[float, ...]
    preactivations: tuple[tuple[float, ...], ...]
    seconds: float = 0.0


def _image_inputs(
    dataset: str, n_train: int, seed: int, pool: int, pool_digits: int, standardize: bool
) -> tuple[torch.Tensor, torch.Tensor, str, dict]:
    """Training images as float64 inputs ``(N, d)``, labels, dataset name and preprocessing.

    Fashion-MNIST when installed (``dataset="auto"``), else sklearn's 8x8 digits. Images are
    average-pooled by ``pool`` (28x28) or ``pool_digits`` (8x8); with ``standardize`` every input
    is centred and scaled to unit variance over the training images and inputs that are constant
    over them are dropped (they would only add exactly flat first-layer directions).
    """
    ds = image_classification(dataset, n_train=int(n_train), n_test=100, seed=int(seed))
    X = ds.X_train.double()
    side = int(round(X.shape[1] ** 0.5))
    factor = int(pool_digits if ds.name == "digits" else pool)
    X = pool_images(X, factor)
    if standardize:
        mu, sd = X.mean(0), X.std(0)
        keep = sd > CONSTANT_INPUT_RTOL * max(float(sd.max()), TINY)
        X = ((X - mu) / torch.where(keep, sd, torch.ones_like(sd)))[:, keep].contiguous()
    prep = {
        "image_side": side,
        "pooled_side": side // factor,
        "standardized": bool(standardize),
        "n_inputs": int(X.shape[1]),
    }
    return X, ds.y_train, ds.name, prep


def _teacher(X: torch.Tensor, sizes: list[int], scale: float, seed: int) -> torch.nn.Sequential:
    """A softplus teacher of layer sizes ``(d, n_1, n_2, out)`` on inputs ``X``: Gaussian weights
    (seeded), each hidden layer rescaled so that its pre-activations have standard deviation
    ``scale`` on ``X`` (biases ``N(0, (scale / 2)^2)``), the output layer so that every output
    has mean 0 and variance 1 on ``X``."""
    g = torch_generator(int(seed))
    net = mlp(sizes, "softplus", dtype=torch.float64, seed=int(seed))
    lins = [m for m in net if isinstance(m, torch.nn.Linear)]
    with torch.no_grad():
        h = X
        for idx, lin in enumerate(lins):
            lin.weight.copy_(torch.randn(lin.weight.shape, generator=g, dtype=torch.float64))
            lin.bias.zero_()
            z = lin(h)
            if idx < len(lins) - 1:
                lin.weight.mul_(scale / z.std(0).clamp_min(STD_FLOOR)[:, None])
                lin.bias.copy_(
                    0.5 * scale * torch.randn(lin.bias.shape, generator=g, dtype=torch.float64)
                )
                h = net[2 * idx + 1](lin(h))
            else:
                m, sd = z.mean(0), z.std(0).clamp_min(STD_FLOOR)
                lin.weight.div_(sd[:, None])
                lin.bias.copy_(-m / sd)
    return net


def _preactivation_ranges(net: torch.nn.Module, X: torch.Tensor) -> tuple[tuple[float, ...], ...]:
    out, h = [], X
    with torch.no_grad():
        mods = list(net)
        for idx, mod in enumerate(mods):
            h = mod(h)
            if isinstance(mod, torch.nn.Linear) and idx < len(mods) - 1:
                out.append((float(h.min()), float(h.max())))
    return tuple(out)


def _finish(
    case: str,
    model: torch.nn.Module,
    X: torch.Tensor,
    y: torch.Tensor,
    *,
    layer: int,
    i: int,
    j: int,
    reduced_grad_norm: float,
    search_converged: bool,
    grad_tol: float,
    full: bool,
    lanczos_k: int,
    seed: int,
    dataset: str,
    prep: dict,
    train_loss: float | None,
    train_accuracy: float | None,
    t0: float,
) -> MultilayerResult:
    """Measure the permutation point ``model`` (neurons ``i, j`` of hidden ``layer``): gradient,
    spectrum (full, or ``lanczos_k`` at each end by Lanczos), zero eigenvalues with and without
    the data-null directions, and the flat directions."""
    op = HessianOperator(model, X, y, loss="mse")
    grad_norm = float(torch.linalg.vector_norm(op.gradient()))
    sub = FreeSubspace(model, X)
    lz_res: tuple[float, ...] = ()
    lz_iter, lz_conv, lz_check = 0, True, None
    zeros = zeros_free = None
    ev = np.zeros(0)
    gap: tuple[float, ...] = ()
    if full:
        ev = eigvalsh(op.full()).numpy()
        n_neg, zeros, _ = count_eigenvalues(ev, ZERO_RTOL)
        free = ev
        if sub.n_null > 0:
            free = eigvalsh(op.restrict(sub).to_dense()).numpy()
        n_neg, zeros_free, _ = count_eigenvalues(free, ZERO_RTOL)
        smallest, largest = _extremes(ev)
        exact = True
        top = max(float(np.abs(ev).max()), TINY)
        if zeros_free < len(free):
            a = np.sort(np.abs(free))
            gap = (
                float(a[zeros_free - 1] / top) if zeros_free > 0 else 0.0,
                float(a[zeros_free] / top),
            )
        if lanczos_k > 0:  # cross-check the extremes with Lanczos on Hessian-vector products
            res = _lanczos(op, lanczos_k, seed)
            ref = np.concatenate([ev[:lanczos_k], ev[-lanczos_k:]])
            lz_check = float(np.abs(res.eigenvalues.numpy() - ref).max() / top)
            lz_iter, lz_conv = int(res.iterations), bool(res.converged)
            lz_res = tuple(float(r) for r in res.residuals)
    else:
        res = _lanczos(op, lanczos_k, seed)
        ritz = res.eigenvalues.numpy()
        smallest = tuple(float(x) for x in ritz[:lanczos_k])
        largest = tuple(float(x) for x in ritz[lanczos_k:])
        lz_iter, lz_conv = int(res.iterations), bool(res.converged)
        lz_res = tuple(float(r) for r in res.residuals)
        top = max(abs(smallest[0]), abs(largest[-1]), TINY)
        n_neg = sum(1 for x in smallest if x < -ZERO_RTOL * top)
        exact = n_neg < lanczos_k and lz_conv
    fa = flat_analysis(op, model, layer, i, j, top)
    lins = _linears(model)
    return MultilayerResult(
        case=case,
        dataset=dataset,
        sizes=tuple(int(lin.in_features) for lin in lins) + (int(lins[-1].out_features),),
        n_parameters=int(op.n),
        n_train=int(X.shape[0]),
        image_side=int(prep["image_side"]),
        pooled_side=int(prep["pooled_side"]),
        standardized=bool(prep["standardized"]),
        n_inputs=int(prep["n_inputs"]),
        layer=int(layer),
        i=int(i),
        j=int(j),
        n_next=int(lins[layer + 1].out_features),
        train_loss=train_loss,
        train_accuracy=train_accuracy,
        loss=float(op.loss()),
        grad_norm=grad_norm,
        reduced_grad_norm=float(reduced_grad_norm),
        converged=bool(search_converged and grad_norm <= grad_tol),
        full_spectrum=bool(full),
        index=int(n_neg),
        index_exact=bool(exact),
        zeros=None if zeros is None else int(zeros),
        zeros_free=None if zeros_free is None else int(zeros_free),
        data_null=int(sub.n_null),
        zero_gap=gap,
        flat_rank=fa.rank,
        flat_quad=fa.quad,
        flat_singular=fa.singular,
        smallest=smallest,
        largest=largest,
        lanczos_iterations=lz_iter,
        lanczos_converged=lz_conv,
        lanczos_residuals=lz_res,
        lanczos_check=lz_check,
        eigenvalues=tuple(float(x) for x in ev) if len(ev) <= MAX_STORED_EIGENVALUES else (),
        preactivations=_preactivation_ranges(model, X),
        seconds=time.perf_counter() - t0,
    )


def _saddle(
    net: torch.nn.Module,
    X: torch.Tensor,
    y: torch.Tensor,
    layer: int,
    i: int,
    j: int,
    search: CriticalPointSearch,
    seed: int,
):
    """Merge ``i, j`` of ``layer``, drive the reduced net to a critical point, split it back
    (``lam = 1/2``): ``(point, reduced critical point)``."""
    crit = find_critical_point(
        merge_neurons(net, layer, i, j), X, y, loss="mse", search=search, seed=seed
    )
    return embed_merged(crit.model, layer, i, j, 0.5), crit


def _linears(net: torch.nn.Module) -> list[torch.nn.Linear]:
    return [m for m in net.modules() if isinstance(m, torch.nn.Linear)]


def _lanczos(op: HessianOperator, k: int, seed: int):
    from ..._lanczos import lanczos

    return lanczos(
        op, k=k, which="both", tol=LANCZOS_TOL, max_iter=min(op.n, 40 * k + 100), seed=seed
    )


@dataclass(frozen=True)
class TeacherMultilayerTask(Task):
    """The constructed multilayer case (see the module docstring): ``d-h-h-10`` on ``n_train``
    images pooled by ``pool`` and standardised, targets ``teacher(X) + noise N(0, noise^2)``
    (a softplus teacher ``d-h-(h-1)-10`` whose pre-activations have std ``teacher_scale``); the
    reduced net starts at the teacher. Full Hessian spectrum; the extremes cross-checked by
    Lanczos (``lanczos_k`` at each end)."""

    hidden: int = 8
    n_train: int = 3000
    seed: int = 0
    dataset: str = "auto"
    pool: int = 4
    pool_digits: int = 1
    teacher_scale: float = 1.5
    noise: float = 0.1
    lbfgs_steps: int = 50
    trust_steps: int = 40
    newton_steps: int = 20
    restarts: int = 1
    lanczos_k: int = 5
    grad_tol: float = CRITICAL_GRAD

    def run(self) -> MultilayerResult:
        t0 = time.perf_counter()
        X, _, name, prep = _image_inputs(
            self.dataset, self.n_train, self.seed, self.pool, self.pool_digits, True
        )
        d, h = int(X.shape[1]), self.hidden
        teacher = _teacher(X, [d, h, h - 1, 10], self.teacher_scale, self.seed + 123)
        gen = torch_generator(self.seed + 5)
        with torch.no_grad():
            y = teacher(X) + self.noise * torch.randn(
                X.shape[0], 10, generator=gen, dtype=torch.float64
            )
        net = embed_merged(teacher, 1, 0, 1)
        search = CriticalPointSearch(
            lbfgs_steps=self.lbfgs_steps,
            trust_steps=self.trust_steps,
            newton_steps=self.newton_steps,
            restarts=self.restarts,
            accept_tol=self.grad_tol,
        )
        point, crit = _saddle(net, X, y, 1, 0, 1, search, self.seed)
        return _finish(
            "teacher",
            point,
            X,
            y,
            layer=1,
            i=0,
            j=1,
            reduced_grad_norm=crit.grad_norm,
            search_converged=crit.converged,
            grad_tol=self.grad_tol,
            full=True,
            lanczos_k=self.lanczos_k,
            seed=self.seed,
            dataset=name,
            prep=prep,
            train_loss=None,
            train_accuracy=None,
            t0=t0,
        )


@dataclass(frozen=True)
class MnistTask(Task):
    """The paper's multilayer case on Fashion-MNIST (the stand-in for MNIST): a softplus
    ``784-h-h-10`` net (``h = 100`` in the paper) on ``n_train`` raw training images (pixels in
    [0, 1]), one-hot targets, MSE, float64. Trained full batch-wise: Adam (``adam_epochs`` over
    minibatches of ``batch_size``), then L-BFGS (``lbfgs_epochs``). The pair of layer-2 neurons
    with the closest incoming vectors is merged, the reduced net driven to a critical point
    (``search_*``; criterion ``grad_tol``), the pair split back, and the Hessian's
    ``lanczos_k`` smallest and largest eigenvalues found by Lanczos; the flat directions give
    ``rank(H D)``."""

    hidden: int = 100
    n_train: int = 10000
    seed: int = 0
    dataset: str = "fashion-mnist"
    adam_epochs: int = 60
    adam_lr: float = 1e-3
    batch_size: int = 500
    lbfgs_epochs: int = 20
    search_lbfgs: int = 60
    search_trust: int = 0
    search_newton: int = 0
    search_restarts: int = 0
    lanczos_k: int = 20
    grad_tol: float = CRITICAL_GRAD

    def run(self) -> MultilayerResult:
        t0 = time.perf_counter()
        X, labels, name, prep = _image_inputs(self.dataset, self.n_train, self.seed, 1, 1, False)
        y = torch.nn.functional.one_hot(labels, 10).double()
        d, h = int(X.shape[1]), self.hidden
        net = mlp([d, h, h, 10], "softplus", dtype=torch.float64, seed=self.seed)
        if self.adam_epochs > 0:
            train(
                net,
                X,
                y,
                loss="mse",
                epochs=self.adam_epochs,
                lr=self.adam_lr,
                batch_size=self.batch_size,
                seed=self.seed,
            )
        if self.lbfgs_epochs > 0:
            train(
                net, X, y, loss="mse", optimizer="lbfgs", epochs=self.lbfgs_epochs, seed=self.seed
            )
        with torch.no_grad():
            out = net(X)
            train_loss = float(((out - y) ** 2).mean())
            acc = float((out.argmax(1) == labels).double().mean())
        i, j = closest_pair(net, 1)
        search = CriticalPointSearch(
            lbfgs_steps=self.search_lbfgs,
            trust_steps=self.search_trust,
            newton_steps=self.search_newton,
            restarts=self.search_restarts,
            dense_limit=0,
            accept_tol=self.grad_tol,
        )
        point, crit = _saddle(net, X, y, 1, i, j, search, self.seed)
        return _finish(
            "onehot",
            point,
            X,
            y,
            layer=1,
            i=i,
            j=j,
            reduced_grad_norm=crit.grad_norm,
            search_converged=crit.converged,
            grad_tol=self.grad_tol,
            full=False,
            lanczos_k=self.lanczos_k,
            seed=self.seed,
            dataset=name,
            prep=prep,
            train_loss=train_loss,
            train_accuracy=acc,
            t0=t0,
        )


def closest_pair(net: torch.nn.Module, layer: int) -> tuple[int, int]:
    """The two neurons of hidden ``layer`` whose incoming vectors (weights and bias) are closest."""
    lin = _linears(net)[layer]
    with torch.no_grad():
        W = torch.cat([lin.weight, lin.bias[:, None]], 1)
        dist = torch.cdist(W, W)
        dist.fill_diagonal_(math.inf)
        flat = int(torch.argmin(dist))
    i, j = divmod(flat, W.shape[0])
    return min(i, j), max(i, j)


# ------------------------------------------------------------------------------------------
# counting


@dataclass(frozen=True)
class CountingResult(Result):
    """Exact counts per (hidden widths, order K) and enumerations on tiny nets (parallel tuples).

    ``minima``/``points`` are decimal strings (exact big integers); ``factor`` a fraction
    string. ``enum_*``: distinct K-th order permutation points found by enumerating every
    permutation of a constructed point, against the formula's count ``enum_formula``.
    """

    widths: tuple[tuple[int, ...], ...]
    order: tuple[int, ...]
    minima: tuple[str, ...]
    points: tuple[str, ...]
    factor: tuple[str, ...]
    factor_float: tuple[float, ...]
    enum_widths: tuple[tuple[int, ...], ...]
    enum_order: tuple[int, ...]
    enum_minima: tuple[int, ...]
    enum_points: tuple[int, ...]
    formula_minima: tuple[int, ...]
    formula_points: tuple[int, ...]


@dataclass(frozen=True)
class CountingTask(Task):
    """Counts for the paper's architectures (``widths``, ``orders``) and enumerations of the
    tiny nets ``enumerate`` (every order K with ``2K <= max width``)."""

    widths: tuple[tuple[int, ...], ...] = ((4,), (5,), (8,), (100, 100), (300, 100))
    orders: tuple[int, ...] = (1, 2, 3)
    enumerate: tuple[tuple[int, ...], ...] = ((2, 3), (3, 3), (4, 2), (3, 4))
    seed: int = 0

    def run(self) -> CountingResult:
        rows: dict[str, list] = {
            k: [] for k in "widths order minima points factor factor_float".split()
        }
        for widths in self.widths:
            minima = count_equivalent_minima(widths)
            for K in self.orders:
                if all(w < 2 * K for w in widths):
                    continue
                f = permutation_point_factor(widths, K)
                rows["widths"].append(tuple(widths))
                rows["order"].append(int(K))
                rows["minima"].append(str(minima))
                rows["points"].append(str(count_permutation_points(widths, K)))
                rows["factor"].append(
                    f"{f.numerator}/{f.denominator}" if f.denominator != 1 else str(f.numerator)
                )
                rows["factor_float"].append(float(f))
        en: dict[str, list] = {
            k: []
            for k in "enum_widths enum_order enum_minima enum_points formula_minima formula_points".split()
        }
        for widths in self.enumerate:
            for K in (1, 2):
                if max(widths) < 2 * K:
                    continue
                en["enum_widths"].append(tuple(widths))
                en["enum_order"].append(K)
                en["enum_minima"].append(enumerate_minima(widths, self.seed))
                en["enum_points"].append(
                    sum(
                        enumerate_points(widths, layer, K, self.seed)
                        for layer in range(len(widths))
                        if widths[layer] >= 2 * K
                    )
                )
                en["formula_minima"].append(count_equivalent_minima(widths))
                en["formula_points"].append(count_permutation_points(widths, K))
        return CountingResult(
            **{k: tuple(v) for k, v in rows.items()}, **{k: tuple(v) for k, v in en.items()}
        )


def _random_layers(sizes: list[int], seed: int) -> list[np.ndarray]:
    """Random weights (bias in column 0) of a net of layer ``sizes``: distinct neurons."""
    rng = numpy_rng(seed)
    return [rng.standard_normal((sizes[k + 1], sizes[k] + 1)) for k in range(len(sizes) - 1)]


def _add_copies(seen: set, base: list[np.ndarray], widths: tuple[int, ...]) -> None:
    """Add to ``seen`` the weight vectors of all ``prod n_k!`` neuron permutations of ``base``."""
    for perms in itertools.product(*[itertools.permutations(range(w)) for w in widths]):
        Ws = [m.copy() for m in base]
        for k, p in enumerate(perms):
            Ws[k] = Ws[k][list(p)]
            Ws[k + 1] = np.concatenate([Ws[k + 1][:, :1], Ws[k + 1][:, 1:][:, list(p)]], axis=1)
        seen.add(tuple(np.round(np.concatenate([m.ravel() for m in Ws]), 9)))


def enumerate_minima(widths: tuple[int, ...], seed: int = 0) -> int:
    """Distinct permuted copies of a random net with hidden ``widths`` (2 inputs, 1 output)."""
    seen: set = set()
    _add_copies(seen, _random_layers([2, *widths, 1], seed), tuple(widths))
    return len(seen)


def enumerate_points(widths: tuple[int, ...], layer: int, K: int, seed: int = 0) -> int:
    """Distinct K-th order permutation points of hidden ``layer`` by enumeration: a random
    reduced net (``n_layer - K`` distinct neurons there), every choice of ``K`` of them
    duplicated (outgoing vectors halved), and every permutation of each, counted once."""
    sizes = [2, *widths, 1]
    reduced = list(sizes)
    reduced[layer + 1] -= K
    W = _random_layers(reduced, seed)
    seen: set = set()
    for dup in itertools.combinations(range(widths[layer] - K), K):
        cols = [c + 1 for c in dup]  # column 0 is the bias
        Wl = np.concatenate([W[layer], W[layer][list(dup)]], axis=0)
        out = W[layer + 1].copy()
        out[:, cols] *= 0.5
        Wn = np.concatenate([out, out[:, cols]], axis=1)
        base = list(W)
        base[layer], base[layer + 1] = Wl, Wn
        _add_copies(seen, base, tuple(widths))
    return len(seen)


__all__ = [
    "CRITICAL_GRAD",
    "CountingResult",
    "CountingTask",
    "FlatAnalysis",
    "MnistTask",
    "MultilayerResult",
    "TeacherMultilayerTask",
    "ToyResult",
    "ToyTask",
    "SCALE_NAMES",
    "closest_pair",
    "enumerate_minima",
    "enumerate_points",
    "flat_analysis",
    "tasks",
    "toy_data",
]


# ------------------------------------------------------------------------------------------
# scales

SCALE_NAMES = ("test", "quick", "paper", "full")


def tasks(scale: str, seed: int = 0) -> list[Task]:
    """The tasks of a scale: ``"test"`` (the test suite), ``"quick"``, ``"paper"``, ``"full"``.

    ``paper`` reduces the paper's sizes to fit well within an hour on 2 cores (see the study's
    departures): 3 seeds per toy width (1 for width 8), 10,000 of the 60,000 images for
    ``784-100-100-10`` and an L-BFGS-only critical-point search; ``full`` keeps the paper's
    sizes (5 seeds, all training images, the full search), for a cluster.
    """
    if scale not in SCALE_NAMES:
        raise StudyError(
            f"unknown scale {scale!r} for the saddles study; use one of {', '.join(SCALE_NAMES)}"
        )
    s = int(seed)
    out: list[Task] = []
    if scale == "test":
        fast = dict(
            step=1.0, adam_epochs=0, attempts=1, lbfgs_steps=10, trust_steps=40, pair_lbfgs=5,
            pair_trust=40, path_steps=5, bezier_epochs=20,
        )  # fmt: skip
        out += [ToyTask(3, s, **fast), ToyTask(3, s, outputs=3, **fast)]
        out.append(
            TeacherMultilayerTask(
                hidden=4, n_train=400, seed=s, pool=7, pool_digits=2, lbfgs_steps=30,
                trust_steps=40, newton_steps=20, restarts=1, lanczos_k=3,
            )
        )  # fmt: skip
        out.append(CountingTask(((4,), (3, 3), (100, 100)), (1, 2), ((2, 3), (3, 3)), s))
        return out
    if scale == "quick":
        out += [ToyTask(w, s) for w in (3, 4, 5)]
        out.append(ToyTask(4, s, outputs=3))
        out.append(TeacherMultilayerTask(seed=s))
        out.append(CountingTask(seed=s))
        return out
    paper = scale == "paper"
    seeds = list(range(s, s + (3 if paper else 5)))
    toy = dict(
        step=0.25, adam_epochs=3000, attempts=10, lbfgs_steps=50, trust_steps=3000,
        pair_lbfgs=30, pair_trust=500, path_steps=40, bezier_epochs=400,
    )  # fmt: skip
    # the longest tasks first, so that a pool starts them first
    out.append(
        MnistTask(seed=s)
        if paper
        else MnistTask(
            n_train=60000, seed=s, adam_epochs=100, lbfgs_epochs=100, search_lbfgs=500,
            search_trust=100, search_newton=20, search_restarts=2, lanczos_k=20,
        )
    )  # fmt: skip
    # width 8 (28 pairs) costs about as much as the other toy students together: one seed
    out += [ToyTask(8, k, **toy) for k in (seeds[:1] if paper else seeds)]
    out += [ToyTask(w, k, **toy) for w in (4, 5, 6) for k in seeds]
    out += [
        ToyTask(4, k, outputs=n, **toy)
        for n in ((2, 3, 5) if paper else (2, 3, 5, 10))
        for k in seeds[: 2 if paper else 5]
    ]
    out.append(TeacherMultilayerTask(hidden=8, n_train=3000, seed=s))
    out.append(
        CountingTask(
            widths=((4,), (5,), (8,), (100, 100), (300, 100), (100, 100, 100)),
            orders=(1, 2, 3),
            enumerate=((2, 3), (3, 3), (4, 2), (3, 4), (4, 4)),
            seed=s,
        )
    )
    return out
