"""LeNet-5-size CNN on Fashion-MNIST for the benchmarks, and its exact unrolling into a dense MLP.

``lenet()`` builds Conv2d(1,6,5), ReLU, MaxPool2d(2), Conv2d(6,16,5), ReLU, MaxPool2d(2), Flatten,
Linear(256,120), ReLU, Linear(120,84), ReLU, Linear(84,10) for 28x28 inputs. ``train_lenet`` trains
it with a local ``torch.Generator`` (Adam, minibatches) and caches the weights in a temporary
folder outside the repository (keyed by the training config), so a rerun skips the training.

``unroll(cnn)`` rewrites the CNN as a plain ``nn.Sequential`` of Linear + ReLU computing the same
function: each Conv2d becomes the dense matrix of its linear map; a 2x2 max-pool becomes two
Linear+ReLU stages of a tournament, ``max(a, b) = relu(a - b) + relu(b)`` (exact because its
inputs are post-ReLU values >= 0, so ``relu(b) = b``): stage 1 emits ``relu(a-b), relu(b),
relu(c-d), relu(d)`` per pooled pixel, stage 2 sums the pairs into ``m1, m2`` and emits
``relu(m1-m2), relu(m2)``; the final sum of each pair is folded into the next Linear, and so is
Flatten (a permutation of the pooled units, found by flattening an index tensor).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from pathlib import Path

import torch
from torch import nn


def lenet() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(1, 6, 5),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(256, 120),
        nn.ReLU(),
        nn.Linear(120, 84),
        nn.ReLU(),
        nn.Linear(84, 10),
    )


def cache_dir() -> Path:
    d = Path(os.environ.get("NNGEOM_BENCH_CACHE", Path(tempfile.gettempdir()) / "nngeom-bench"))
    d.mkdir(parents=True, exist_ok=True)
    return d


def accuracy(model: nn.Module, X: torch.Tensor, y: torch.Tensor, batch: int = 2000) -> float:
    model.eval()
    dt = next(model.parameters()).dtype
    with torch.no_grad():
        right = sum(
            int((model(X[i : i + batch].to(dt)).argmax(1) == y[i : i + batch]).sum())
            for i in range(0, X.shape[0], batch)
        )
    return right / X.shape[0]


def train_lenet(
    ds, *, seed: int, epochs: int, batch_size: int, lr: float
) -> tuple[nn.Module, dict]:
    """Train (or load from the cache) a float32 LeNet; returns (model, info)."""
    cfg = {"arch": "lenet5-28", "seed": seed, "epochs": epochs, "batch_size": batch_size, "lr": lr}
    key = hashlib.sha256(json.dumps(cfg, sort_keys=True).encode()).hexdigest()[:16]
    path = cache_dir() / f"lenet-{key}.pt"
    g = torch.Generator().manual_seed(seed)
    model = lenet()
    with torch.no_grad():  # initialise from the local generator instead of the global RNG
        for m in model:
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                fan_in = m.weight[0].numel()
                bound = fan_in**-0.5
                m.weight.copy_((torch.rand(m.weight.shape, generator=g) * 2 - 1) * bound)
                m.bias.copy_((torch.rand(m.bias.shape, generator=g) * 2 - 1) * bound)
    Xtr = ds.X_train.reshape(-1, 1, 28, 28)
    Xte = ds.X_test.reshape(-1, 1, 28, 28)
    info = {"config": cfg, "cache_file": str(path)}
    if path.exists():
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        info.update(cached=True, train_seconds=None)
    else:
        opt = torch.optim.Adam(model.parameters(), lr=lr)
        loss_fn = nn.CrossEntropyLoss()
        t0 = time.perf_counter()
        model.train()
        for _ in range(epochs):
            perm = torch.randperm(Xtr.shape[0], generator=g)
            for i in range(0, Xtr.shape[0], batch_size):
                idx = perm[i : i + batch_size]
                opt.zero_grad(set_to_none=True)
                loss = loss_fn(model(Xtr[idx]), ds.y_train[idx])
                loss.backward()
                opt.step()
        info.update(cached=False, train_seconds=time.perf_counter() - t0)
        tmp = path.with_suffix(".tmp")
        torch.save(model.state_dict(), tmp)
        tmp.replace(path)
    info["test_accuracy"] = accuracy(model, Xte, ds.y_test)
    model.eval()
    return model, info


def _conv_dense(
    conv: nn.Conv2d, in_shape: tuple[int, int, int]
) -> tuple[torch.Tensor, torch.Tensor]:
    """(W, b) with ``W @ x.flatten() + b == conv(x).flatten()`` (channel-major order)."""
    n_in = in_shape[0] * in_shape[1] * in_shape[2]
    eye = torch.eye(n_in, dtype=conv.weight.dtype).reshape(n_in, *in_shape)
    with torch.no_grad():
        cols = nn.functional.conv2d(eye, conv.weight, None, conv.stride, conv.padding)
        bias = conv.bias[:, None, None].expand(cols.shape[1:]).reshape(-1)
    return cols.reshape(n_in, -1).T.contiguous(), bias.clone()


def _pool_stages(C: int, H: int, W: int, dtype) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Stage matrices of the 2x2 max-pool tournament on a (C, H, W) channel-major input.

    Returns (A1, A2, S): stage 1 ``relu(A1 x)`` (4 per pooled pixel), stage 2 ``relu(A2 h)``
    (2 per pooled pixel), and the pooled values ``S g`` (channel-major (C, H/2, W/2)).
    """
    Ho, Wo = H // 2, W // 2
    P = C * Ho * Wo
    A1 = torch.zeros(4 * P, C * H * W, dtype=dtype)
    A2 = torch.zeros(2 * P, 4 * P, dtype=dtype)
    S = torch.zeros(P, 2 * P, dtype=dtype)
    for c in range(C):
        for i in range(Ho):
            for j in range(Wo):
                p = (c * Ho + i) * Wo + j
                a, b, cc, d = (
                    (c * H + 2 * i + di) * W + 2 * j + dj
                    for di, dj in ((0, 0), (0, 1), (1, 0), (1, 1))
                )
                A1[4 * p, a], A1[4 * p, b] = 1.0, -1.0
                A1[4 * p + 1, b] = 1.0
                A1[4 * p + 2, cc], A1[4 * p + 2, d] = 1.0, -1.0
                A1[4 * p + 3, d] = 1.0
                # m1 = h[4p] + h[4p+1], m2 = h[4p+2] + h[4p+3]
                A2[2 * p, 4 * p : 4 * p + 2] = 1.0
                A2[2 * p, 4 * p + 2 : 4 * p + 4] = -1.0
                A2[2 * p + 1, 4 * p + 2 : 4 * p + 4] = 1.0
                S[p, 2 * p : 2 * p + 2] = 1.0
    return A1, A2, S


def _linear(W: torch.Tensor, b: torch.Tensor) -> nn.Linear:
    lin = nn.Linear(W.shape[1], W.shape[0], dtype=W.dtype)
    with torch.no_grad():
        lin.weight.copy_(W)
        lin.bias.copy_(b)
    return lin


def unroll(cnn: nn.Sequential, in_shape: tuple[int, int, int] = (1, 28, 28)) -> nn.Sequential:
    """The CNN as an ``nn.Sequential`` of Linear + ReLU (same dtype), computing the same function.

    Supports Conv2d (no dilation/groups), ReLU, MaxPool2d(2) after a ReLU, Flatten, Linear.
    """
    dtype = next(cnn.parameters()).dtype
    layers: list[nn.Module] = []
    shape = in_shape
    pending: torch.Tensor | None = (
        None  # linear map from the last emitted units to the "current" ones
    )
    prev = None
    for m in cnn:
        if isinstance(m, nn.Conv2d):
            W, b = _conv_dense(m, shape)
            if pending is not None:
                W = W @ pending
                pending = None
            layers.append(_linear(W, b))
            with torch.no_grad():
                shape = tuple(m(torch.zeros(1, *shape, dtype=dtype)).shape[1:])
        elif isinstance(m, nn.ReLU):
            layers.append(nn.ReLU())
        elif isinstance(m, nn.MaxPool2d):
            if (
                m.kernel_size not in (2, (2, 2))
                or m.stride not in (2, (2, 2))
                or not isinstance(prev, nn.ReLU)
            ):
                raise ValueError("only 2x2/2 max-pooling right after a ReLU is unrolled")
            C, H, Wd = shape
            A1, A2, S = _pool_stages(C, H, Wd, dtype)
            zb1 = torch.zeros(A1.shape[0], dtype=dtype)
            zb2 = torch.zeros(A2.shape[0], dtype=dtype)
            layers += [_linear(A1, zb1), nn.ReLU(), _linear(A2, zb2), nn.ReLU()]
            pending = S
            shape = (C, H // 2, Wd // 2)
        elif isinstance(m, nn.Flatten):
            n = shape[0] * shape[1] * shape[2]
            perm = m(torch.arange(n).reshape(1, *shape))[0]  # flattened position -> unit index
            Pm = torch.zeros(n, n, dtype=dtype)
            Pm[torch.arange(n), perm] = 1.0
            pending = Pm if pending is None else Pm @ pending
            shape = (n,)
        elif isinstance(m, nn.Linear):
            W = m.weight.detach().clone()
            if pending is not None:
                W = W @ pending
                pending = None
            layers.append(_linear(W, m.bias.detach().clone()))
            shape = (m.out_features,)
        else:
            raise ValueError(f"cannot unroll {type(m).__name__}")
        prev = m
    return nn.Sequential(*layers).eval()
