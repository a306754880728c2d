"""
Trainable activation shapes (VAF)
=================================

A :class:`nngeom.VAF` is a tiny ``1 -> k -> 1`` ReLU subnetwork used as the activation function
of a layer: ``a0 + sum_i c_i relu(a_i z + b_i)``. It starts as ReLU (``init="relu"``) or as a
least-squares fit of another function on ``fit_range``, and its ``3k + 1`` numbers are trained
with the rest of the network. Being piecewise linear, a VAF network still has exact knots.
"""

import os

import matplotlib.pyplot as plt
import torch

import nngeom as ng

QUICK = os.environ.get("NNGEOM_QUICK", "") not in ("", "0")
z = torch.linspace(-3, 3, 200 if QUICK else 1000)

fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
for k in (1, 3, 6):
    act = ng.VAF(k=k, init=torch.tanh)  # fitted to tanh on (-3, 3) with k hidden units
    with torch.no_grad():
        axes[0].plot(z, act(z[:, None]).squeeze(1), label=f"VAF k={k} (init tanh)")
axes[0].plot(z, torch.tanh(z), "k--", lw=1, label="tanh")
axes[0].set(title="initial shapes", xlabel="z", ylabel="activation")
axes[0].legend(fontsize=7)

# Then train a small VAF network on ``sin`` and compare the learned activation with the ReLU it
# started from (one figure, one code block).
X = torch.linspace(-3, 3, 128)[:, None]
y = torch.sin(2 * X)
net = ng.mlp([1, 16, 1], ng.VAF(k=3), seed=0)
before = ng.knots(net, -3.0, 3.0).count
res = ng.train(net, X, y, epochs=100 if QUICK else 1500, lr=1e-2, seed=0)
vaf = net[1]
with torch.no_grad():
    axes[1].plot(z, vaf(z[:, None]).squeeze(1), label="learned VAF")
axes[1].plot(z, torch.relu(z), "k--", lw=1, label="ReLU (its start)")
axes[1].set(title=f"after training (loss {res.losses[-1]:.3g})", xlabel="z")
axes[1].legend(fontsize=7)
fig.tight_layout()
print(f"knots of the network on (-3, 3): {before} before, {ng.knots(net, -3.0, 3.0).count} after")
plt.show()
