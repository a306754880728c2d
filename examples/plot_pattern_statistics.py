"""
Activation-pattern statistics of a residual net
===============================================

:func:`nngeom.pattern_statistics` counts the distinct activation patterns a batch of inputs
touches (a lower bound on the number of linear regions the data occupy), their entropy, and the
fraction of active and dead units. It works on any traced graph, here a residual MLP written
with ``F.relu``. We compare an untrained and a trained network on the digits data.
"""

import os

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

import nngeom as ng
from nngeom import data

QUICK = os.environ.get("NNGEOM_QUICK", "") not in ("", "0")
H = 16 if QUICK else 32


class ResNet(nn.Module):
    def __init__(self, d, c, blocks=3):
        super().__init__()
        self.inp = nn.Linear(d, H)
        self.blocks = nn.ModuleList(nn.Linear(H, H) for _ in range(blocks))
        self.out = nn.Linear(H, c)

    def forward(self, x):
        h = F.relu(self.inp(x))
        for block in self.blocks:
            h = h + F.relu(block(h))
        return self.out(h)


ds = data.digits(seed=0)
torch.manual_seed(0)
model = ResNet(ds.n_features, ds.n_classes).eval()
before = ng.pattern_statistics(model, ds.X_test)
ng.train(
    model,
    ds.X_train,
    ds.y_train,
    loss="ce",
    epochs=10 if QUICK else 100,
    lr=3e-3,
    batch_size=64,
    seed=0,
)
model.eval()
after = ng.pattern_statistics(model, ds.X_test)
for name, s in (("untrained", before), ("trained", after)):
    print(
        f"{name:>9}: {s['n_patterns']} patterns for {s['n_samples']} inputs, "
        f"entropy {s['entropy_bits']:.2f} bits, active {s['fraction_active']:.2f}, "
        f"dead {s['fraction_dead']:.2f}"
    )

# %%
# Per layer: the fraction of active units and the number of distinct patterns.
fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
layers = np.arange(len(after["fraction_active_per_layer"]))
for k, (name, s) in enumerate((("untrained", before), ("trained", after))):
    axes[0].bar(layers + 0.4 * k, s["fraction_active_per_layer"], width=0.4, label=name)
    axes[1].bar(layers + 0.4 * k, s["n_patterns_per_layer"], width=0.4, label=name)
axes[0].set(xlabel="ReLU layer", ylabel="fraction of active units")
axes[1].set(xlabel="ReLU layer", ylabel="distinct patterns on the test set")
axes[1].legend()
fig.tight_layout()
plt.show()
