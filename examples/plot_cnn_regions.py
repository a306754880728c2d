"""
Regions and decision boundary of a CNN through three images
===========================================================

SplineCam-style slicing: the plane through three test images (:func:`nngeom.plane_through` puts
them at ``(0, 0)``, ``(1, 0)`` and ``(0, 1)``) cuts a small conv net's input space, and
:func:`nngeom.regions_2d` computes the exact partition of that plane into linear regions plus
the exact decision boundary. The conv layers run as convolutions on the slice (nothing is
unrolled into dense matrices). Fashion-MNIST is used when it is installed (Debian package
``dataset-fashion-mnist``), average-pooled to 7x7 so that the example runs in seconds (a
trained net cuts the plane through full-size images into tens of thousands of regions);
otherwise sklearn's bundled 8x8 digits.
"""

import os

import matplotlib.pyplot as plt
import torch
from matplotlib.collections import PolyCollection
from torch import nn

import nngeom as ng
from nngeom import data

QUICK = os.environ.get("NNGEOM_QUICK", "") not in ("", "0")

ds = data.image_classification("auto", n_train=300 if QUICK else 1000, n_test=100, seed=0)
pool = 4 if ds.n_features == 28 * 28 else 1  # 28x28 -> 7x7
Xtr, Xte = data.pool_images(ds.X_train, pool), data.pool_images(ds.X_test, pool)
side = int(round(Xtr.shape[1] ** 0.5))
X = Xtr.reshape(-1, 1, side, side)
print(f"data: {ds.name}, {X.shape[0]} training images of {side}x{side}")

torch.manual_seed(0)
channels = 4
cnn = nn.Sequential(
    nn.Conv2d(1, channels, 3),
    nn.ReLU(),
    nn.MaxPool2d(2),
    nn.Flatten(),
    nn.LazyLinear(32),
    nn.ReLU(),
    nn.Linear(32, ds.n_classes),
)
cnn(X[:1])  # materialise the lazy layer
res = ng.train(
    cnn, X, ds.y_train, loss="ce", epochs=30 if QUICK else 40, lr=1e-2, batch_size=100, seed=0
)
cnn.eval()
with torch.no_grad():
    Xt = Xte.reshape(-1, 1, side, side)
    acc = (cnn(Xt).argmax(1) == ds.y_test).float().mean().item()
print(f"training loss {res.losses[-1]:.3f}, test accuracy {acc:.2f}")

# %%
# Three test images of different classes span the plane.
labels = ds.y_test.tolist()
idx = [labels.index(c) for c in sorted(set(labels))[:3]]
x0, x1, x2 = (Xt[i] for i in idx)
plane = ng.plane_through(x0, x1, x2, margin=0.1)
r = ng.regions_2d(cnn, plane, decision_boundary=True)
print(
    f"{r.n_regions} regions, {r.n_pieces} linear pieces, "
    f"{len(r.decision_boundary)} decision-boundary segments"
)

fig, axes = plt.subplots(1, 2, figsize=(11, 5), gridspec_kw={"width_ratios": [3, 1]})
ax = axes[0]
polys = [r.polygon(i) for i in range(r.n_regions)]
colours = [plt.get_cmap("tab10")(int(c) % 10) for c in r.classes]
ax.add_collection(
    PolyCollection(polys, facecolors=colours, edgecolors="k", linewidths=0.1, alpha=0.6)
)
for seg in r.decision_boundary:
    ax.plot(seg[:, 0], seg[:, 1], "k", lw=1)
for (s, t), i in zip([(0, 0), (1, 0), (0, 1)], idx):
    ax.plot(s, t, "w*", ms=14, mec="k")
    ax.annotate(f"class {labels[i]}", (s, t), textcoords="offset points", xytext=(6, 6))
ax.set(
    xlim=r.bounds[:2],
    ylim=r.bounds[2:],
    aspect="equal",
    xlabel="s",
    ylabel="t",
    title=f"{r.n_regions} regions, coloured by predicted class",
)
axes[1].imshow(torch.cat([x0, x1, x2], dim=1)[0].numpy(), cmap="gray")
axes[1].set_axis_off()
axes[1].set_title("the three images")
fig.tight_layout()
plt.show()
