"""
Chen's knot bound and a network that reaches it
===============================================

:func:`nngeom.knot_upper_bound` is Chen's exact upper bound on the knots of a one-input ReLU
network with the given hidden widths, and :func:`nngeom.tight_knot_network` builds a network
whose knot count equals it. Random initialisations stay far below.
"""

import os

import matplotlib.pyplot as plt
import numpy as np

import nngeom as ng

QUICK = os.environ.get("NNGEOM_QUICK", "") not in ("", "0")
depths = range(1, 4 if QUICK else 6)
width = 3
n_random = 3 if QUICK else 20

bound, tight, random_mean = [], [], []
for depth in depths:
    widths = [width] * depth
    bound.append(ng.knot_upper_bound(widths))
    tight.append(ng.knots(ng.tight_knot_network(widths)).count)
    counts = [ng.knots(ng.mlp([1, *widths, 1], seed=s)).count for s in range(n_random)]
    random_mean.append(np.mean(counts))
    print(f"depth {depth}: bound {bound[-1]}, tight network {tight[-1]}, random {random_mean[-1]}")

# %%
fig, ax = plt.subplots(figsize=(5, 3.5))
ax.semilogy(depths, bound, "k-", label="Chen's bound")
ax.semilogy(depths, tight, "C3o", label="tight_knot_network")
ax.semilogy(
    depths, np.maximum(random_mean, 0.5), "C0s--", label=f"random init (mean of {n_random})"
)
ax.set(xlabel=f"hidden layers of width {width}", ylabel="knots on the real line")
ax.legend()
plt.show()
