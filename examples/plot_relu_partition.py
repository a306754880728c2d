"""
The exact partition of an ``F.relu`` model
==========================================

A model written the way PyTorch tutorials write it -- ``F.relu`` in ``forward`` and a residual
branch -- works as it is: nngeom traces it (``torch.fx``) into a graph of affine and
piecewise-linear operations, and :func:`nngeom.regions_2d` computes the exact partition of a
2-D input square into activation regions (convex polygons) and linear pieces.
"""

import os

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from matplotlib.collections import PolyCollection
from torch import nn

import nngeom as ng

QUICK = os.environ.get("NNGEOM_QUICK", "") not in ("", "0")
H = 8 if QUICK else 24


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b, self.c = nn.Linear(2, H), nn.Linear(H, H), nn.Linear(H, 3)

    def forward(self, x):
        h = F.relu(self.a(x))
        return self.c(h + F.relu(self.b(h)))


torch.manual_seed(0)
model = Net().eval()
print(ng.model_view(model).describe())
origin, u, v = torch.zeros(2), torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
r = ng.regions_2d(model, origin, u, v, extent=2.0, decision_boundary=True)
print(
    f"{r.n_regions} regions, {r.n_pieces} linear pieces, "
    f"{len(r.decision_boundary)} decision-boundary segments"
)

# %%
# Left: the activation regions coloured by linear piece. Right: the predicted class (argmax of
# the three outputs) with the exact decision boundary.
fig, axes = plt.subplots(1, 2, figsize=(10, 4.5))
polys = [r.polygon(i) for i in range(r.n_regions)]
cmap = plt.get_cmap("tab20")
for ax, colours in (
    (axes[0], [cmap(p % 20) for p in r.piece_ids]),
    (axes[1], [plt.get_cmap("Pastel1")(int(c)) for c in r.classes]),
):
    ax.add_collection(PolyCollection(polys, facecolors=colours, edgecolors="k", linewidths=0.3))
    ax.set(xlim=r.bounds[:2], ylim=r.bounds[2:], aspect="equal", xlabel="$x_1$", ylabel="$x_2$")
for seg in r.decision_boundary:
    axes[1].plot(seg[:, 0], seg[:, 1], "k", lw=1.5)
axes[0].set_title(f"{r.n_regions} regions, {r.n_pieces} linear pieces")
axes[1].set_title("predicted class and decision boundary")
fig.tight_layout()
plt.show()
