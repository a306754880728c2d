"""
Knots of a regression network during training
=============================================

A ReLU network with one input is piecewise linear; its *knots* are the inputs where the slope
changes. :func:`nngeom.knots` finds them exactly (no sampling). Chen (2016) bounds their number
by the hidden widths (:func:`nngeom.knot_upper_bound`). Here a ``1 -> 16 -> 16 -> 1`` network
learns ``sin(2x)`` with :func:`nngeom.train`, and we look at its knots at a few points of
training.
"""

import os

import matplotlib.pyplot as plt
import torch

import nngeom as ng

QUICK = os.environ.get("NNGEOM_QUICK", "") not in ("", "0")
LO, HI = -3.0, 3.0

X = torch.linspace(LO, HI, 200)[:, None]
y = torch.sin(2 * X)
net = ng.mlp([1, 16, 16, 1], "relu", seed=0)
widths = ng.as_mlp(net).widths
print("Chen's upper bound for hidden widths", widths[1:-1], ":", ng.knot_upper_bound(widths[1:-1]))

stages = [0, 30, 100, 300] if QUICK else [0, 100, 500, 2000]
fig, axes = plt.subplots(1, len(stages), figsize=(12, 3), sharey=True)
done = 0
for ax, epochs in zip(axes, stages):
    if epochs > done:
        ng.train(net, X, y, epochs=epochs - done, lr=1e-2, seed=0)
        done = epochs
    k = ng.knots(net, LO, HI)
    with torch.no_grad():
        ax.plot(X, y, color="0.7", lw=3, label="target")
        ax.plot(X, net(X), "C0", label="network")
        kx = torch.as_tensor(k.positions, dtype=torch.float32)[:, None]
        ax.plot(kx, net(kx), "C3o", ms=3, label="knots")
    ax.set(title=f"epoch {epochs}: {k.count} knots", xlabel="x")
axes[0].legend(fontsize=7)
fig.tight_layout()
plt.show()
