"""
Tangent sensitivity over training
=================================

Tangent sensitivity ``TS(x) = ||d/dx grad_theta f(x)||_F`` measures how much the parameter
gradient of a network changes when its input moves; for ReLU networks it is tied to how finely
the network cuts its input space. :func:`nngeom.tangent_sensitivity` computes it per example
(exactly for ReLU MLPs). Here it is tracked while a classifier trains on sklearn's digits.
"""

import os

import matplotlib.pyplot as plt
import numpy as np
import torch

import nngeom as ng
from nngeom import data

QUICK = os.environ.get("NNGEOM_QUICK", "") not in ("", "0")
ds = data.digits(seed=0)
X, y = ds.X_train, ds.y_train
if QUICK:
    X, y = X[:300], y[:300]
Xtest = ds.X_test[:100] if QUICK else ds.X_test
ytest = ds.y_test[:100] if QUICK else ds.y_test
net = ng.mlp([X.shape[1], 32 if QUICK else 64, 32 if QUICK else 64, ds.n_classes], seed=0)

checkpoints = [0, 3, 10] if QUICK else [0, 5, 15, 40]
mean_ts, acc, done, hist = [], [], 0, {}
for epochs in checkpoints:
    if epochs > done:
        ng.train(net, X, y, loss="ce", epochs=epochs - done, lr=1e-3, batch_size=64, seed=0)
        done = epochs
    ts = ng.tangent_sensitivity(net, Xtest).detach().numpy()
    with torch.no_grad():
        acc.append((net(Xtest).argmax(1) == ytest).float().mean().item())
    mean_ts.append(ts.mean())
    hist[epochs] = ts
    print(f"epoch {epochs:4d}: mean TS {ts.mean():.3g}, test accuracy {acc[-1]:.3f}")

# %%
fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
axes[0].plot(checkpoints, mean_ts, "o-", label="mean tangent sensitivity")
axes[0].set(xlabel="epoch", ylabel="mean TS on the test set")
twin = axes[0].twinx()
twin.plot(checkpoints, acc, "C1s--")
twin.set_ylabel("test accuracy", color="C1")
bins = np.linspace(0, max(h.max() for h in hist.values()), 40)
for epochs, ts in hist.items():
    axes[1].hist(ts, bins=bins, histtype="step", label=f"epoch {epochs}")
axes[1].set(xlabel="tangent sensitivity", ylabel="test examples")
axes[1].legend(fontsize=7)
fig.tight_layout()
plt.show()
