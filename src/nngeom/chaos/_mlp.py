"""The Lapedes-Farber network: a two-hidden-layer sigmoid MLP trained full batch, its loss and
gradient in NumPy for SciPy's L-BFGS-B."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from .._checks import MAX_SEED, check_device, check_number, check_positive_int
from .._errors import InvalidInput, StudyError
from .._lbfgs import minimize_lbfgs
from .._random import derived_seed
from ..nets import mlp as build_mlp
from ..train import train
from ._estimators import ChaosRegressor, Standardizer, require_fitted

__all__ = ["LapedesFarberMLP", "mlp_loss_grad"]

# The widest hidden layer, the most restarts and the most iterations of one fit.
MAX_WIDTH = 100_000
MAX_RESTARTS = 10_000
MAX_ITER = 10_000_000


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # no overflow for large |z|


def mlp_loss_grad(
    theta: np.ndarray, shapes: Sequence[tuple[int, ...]], X: np.ndarray, y: np.ndarray
) -> tuple[float, np.ndarray]:
    """Mean squared error of a sigmoid MLP with linear output and its gradient, in NumPy.

    ``theta`` is the flat concatenation of ``W_0, b_0, W_1, b_1, ...`` (``W_l (out, in)``, PyTorch's
    ``parameters()`` order); ``X (N, d)``, ``y (N,)``. Returns ``(loss, grad)``, ``grad`` like ``theta``.

    >>> import numpy as np
    >>> shapes = [(1, 1), (1,), (1, 1), (1,)]  # 1 -> 1 -> 1
    >>> loss, grad = mlp_loss_grad(np.zeros(4), shapes, np.ones((2, 1)), np.ones(2))
    >>> loss, grad.shape
    (1.0, (4,))
    """
    params, i = [], 0
    for s in shapes:
        n = int(np.prod(s))
        params.append(theta[i : i + n].reshape(s))
        i += n
    Ws, bs = params[0::2], params[1::2]
    acts = [X]
    for W, b in zip(Ws[:-1], bs[:-1], strict=False):
        acts.append(_sigmoid(acts[-1] @ W.T + b))
    out = acts[-1] @ Ws[-1].T + bs[-1]
    r = out[:, 0] - y
    loss = float(r @ r) / y.size
    delta = (2.0 / y.size) * r[:, None]
    grads: list[np.ndarray] = []
    for layer in range(len(Ws) - 1, -1, -1):
        grads.append(delta.sum(axis=0))
        grads.append(delta.T @ acts[layer])
        if layer > 0:
            h = acts[layer]
            delta = (delta @ Ws[layer]) * h * (1.0 - h)
    grads.reverse()  # W_0, b_0, W_1, b_1, ...
    return loss, np.concatenate([g.ravel() for g in grads])


def flat_parameters(net: torch.nn.Module) -> tuple[np.ndarray, list[tuple[int, ...]]]:
    """``net``'s parameters as one float64 vector ``(P,)`` and their shapes (the layout of
    :func:`mlp_loss_grad`)."""
    params = list(net.parameters())
    theta = np.concatenate([p.detach().cpu().numpy().astype(np.float64).ravel() for p in params])
    return theta, [tuple(p.shape) for p in params]


def lbfgs_fit(net: torch.nn.Module, Z: np.ndarray, t: np.ndarray, iters: int) -> tuple[float, int]:
    """``iters`` L-BFGS-B iterations on ``net``'s parameters (in place) for the MSE of
    :func:`mlp_loss_grad` on inputs ``Z`` ``(N, lags)`` and targets ``t`` ``(N,)``: the final MSE
    and the iterations run."""
    theta0, shapes = flat_parameters(net)
    theta, done = minimize_lbfgs(lambda th: mlp_loss_grad(th, shapes, Z, t), theta0, iters)
    with torch.no_grad():
        i = 0
        for p in net.parameters():
            p.copy_(torch.from_numpy(theta[i : i + p.numel()].reshape(p.shape)))
            i += p.numel()
    return float(mlp_loss_grad(theta, shapes, Z, t)[0]), done


class LapedesFarberMLP(ChaosRegressor):
    """The Lapedes-Farber net: ``lags -> hidden[0] -> hidden[1] -> 1``, sigmoid hidden layers,
    linear output, float64, inputs and target standardised (``model_`` is the torch
    ``nn.Sequential`` on the standardised scale; :meth:`predict` undoes the scaling).

    Training, full batch, from ``nngeom.mlp(..., seed=s + r)`` for restart ``r``, ``s`` being
    ``seed`` or, when ``generator`` is given, an int drawn from it (``fit`` advances it); the
    restart with the lowest training MSE is kept:

    * ``optimizer="lbfgs"``: SciPy's L-BFGS-B on a NumPy forward/backward (:func:`mlp_loss_grad`,
      single-threaded BLAS), ``max_iter`` iterations -- fast and deterministic on a CPU.
      With ``screen_iter``, every restart first runs ``screen_iter`` iterations, and only the best
      one continues to ``max_iter`` in all (cheap restarts: the paper's "restarts").
    * ``optimizer="adam"``: :func:`nngeom.train` (torch) for ``max_iter`` full-batch steps at ``lr``,
      on ``device``.

    Fitted attributes: ``model_``, ``train_loss_`` (the kept restart's training MSE),
    ``restart_losses_``, ``n_iter_`` (the kept restart's optimizer iterations), ``scaling_``,
    ``n_features_in_``.

    >>> from nngeom import chaos
    >>> X, y = chaos.embed(chaos.logistic_map(200, x0=0.3), lags=1, delay=1, horizon=1)
    >>> model = chaos.LapedesFarberMLP(hidden=(5, 5), max_iter=200, seed=0).fit(X, y)
    >>> model.predict(X[:3]).shape, bool(chaos.nrmse(y, model.predict(X)) < 0.2)
    ((3,), True)
    """

    def __init__(
        self,
        hidden: Sequence[int] = (10, 10),
        optimizer: str = "lbfgs",
        max_iter: int = 3000,
        restarts: int = 1,
        lr: float = 1e-2,
        *,
        seed: int = 0,
        generator: torch.Generator | None = None,
        device: str | torch.device | None = None,
        screen_iter: int | None = None,
    ) -> None:
        self.hidden = hidden
        self.optimizer = optimizer
        self.max_iter = max_iter
        self.restarts = restarts
        self.lr = lr
        self.seed = seed
        self.generator = generator
        self.device = device
        self.screen_iter = screen_iter

    def _checked_params(self) -> dict[str, Any]:
        try:
            hidden = tuple(self.hidden)
        except TypeError:
            raise InvalidInput(
                f"hidden must be a sequence of positive ints, got {self.hidden!r}"
            ) from None
        if not hidden:
            raise InvalidInput("hidden must name at least one hidden layer width, got ()")
        if self.optimizer not in ("lbfgs", "adam"):
            raise InvalidInput(f"optimizer must be 'lbfgs' or 'adam', got {self.optimizer!r}")
        screen = self.screen_iter
        return {
            "hidden": tuple(
                check_positive_int("each hidden width", h, maximum=MAX_WIDTH) for h in hidden
            ),
            "max_iter": check_positive_int("max_iter", self.max_iter, maximum=MAX_ITER),
            "restarts": check_positive_int("restarts", self.restarts, maximum=MAX_RESTARTS),
            "lr": check_number("lr", self.lr, minimum=0.0, strict_min=True),
            "device": torch.device("cpu") if self.device is None else check_device(self.device),
            "screen_iter": (
                None
                if screen is None
                else check_positive_int("screen_iter", screen, maximum=MAX_ITER)
            ),
        }

    def _fit(self, X: np.ndarray, y: np.ndarray) -> None:
        p = self._checked_params()
        base_seed = derived_seed(self.seed, self.generator)
        scaling = Standardizer(X, y)
        Z = scaling.x(X)
        t = (y - scaling.my) / scaling.sy
        lbfgs = self.optimizer == "lbfgs"
        screen = p["screen_iter"]
        first = p["max_iter"] if screen is None else min(screen, p["max_iter"])
        best: tuple[float, Any, int] | None = None
        losses = []
        for r in range(p["restarts"]):
            net = build_mlp(
                (X.shape[1], *p["hidden"], 1),
                "sigmoid",
                seed=(base_seed + r) % (MAX_SEED + 1),
                dtype=torch.float64,
            )
            if lbfgs:
                loss, done = lbfgs_fit(net, Z, t, first)
            else:
                loss, done = self._adam_fit(net, Z, t, p), p["max_iter"]
            losses.append(loss)
            if math.isfinite(loss) and (best is None or loss < best[0]):
                best = (loss, net, done)
        if best is None:
            raise StudyError("every MLP restart diverged (non-finite loss); lower lr or use lbfgs")
        loss, net, n_iter = best
        if lbfgs and screen is not None and screen < p["max_iter"]:
            loss, more = lbfgs_fit(net, Z, t, p["max_iter"] - screen)  # continue the best one
            n_iter += more
        self.scaling_, self.model_, self.n_iter_ = scaling, net, n_iter
        self.train_loss_, self.restart_losses_ = loss, losses

    def _adam_fit(
        self, net: torch.nn.Module, Z: np.ndarray, t: np.ndarray, p: dict[str, Any]
    ) -> float:
        """``max_iter`` full-batch Adam steps (in place); the final MSE (inf if it diverged)."""
        dev = p["device"]
        net = net.to(dev)
        Xt = torch.as_tensor(Z, dtype=torch.float64, device=dev)
        yt = torch.as_tensor(t, dtype=torch.float64, device=dev)[:, None]
        threads = torch.get_num_threads()
        if dev.type == "cpu":  # tiny nets: extra threads only contend with each other
            torch.set_num_threads(1)
        try:
            res = train(net, Xt, yt, loss="mse", optimizer="adam", epochs=p["max_iter"], lr=p["lr"])
        finally:
            torch.set_num_threads(threads)
        with torch.no_grad():
            loss = float(torch.nn.functional.mse_loss(net(Xt), yt))
        return loss if res.finite else math.inf  # diverged: the last finite weights, not a fit

    def _predict_rows(self, X: np.ndarray) -> np.ndarray:
        dev = next(self.model_.parameters()).device
        with torch.no_grad():
            z = self.model_(torch.as_tensor(self.scaling_.x(X), dtype=torch.float64, device=dev))
        return self.scaling_.my + self.scaling_.sy * z[:, 0].cpu().numpy()

    def standardize(self, X: object) -> np.ndarray:
        """The network's input for ``X (N, lags)``: ``(X - mean) / std`` of the training inputs."""
        return self.scaling_.x(self._checked_rows(X))

    @property
    def target_scale(self) -> tuple[float, float]:
        """``(mean, std)`` of the training target: ``y = mean + std * model_(standardize(x))``."""
        require_fitted(self, "n_features_in_")
        return self.scaling_.my, self.scaling_.sy
