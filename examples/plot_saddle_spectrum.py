"""
Hessian spectrum at a permutation saddle
========================================

Brea et al. (2019): merging two neurons of a hidden layer of a network at a critical point and
splitting them again gives a *permutation point*, a critical point of the wider net that lies
between equivalent minima. :func:`nngeom.find_permutation_saddle` constructs one and measures
its Hessian spectrum (the saddle index is measured, not assumed); we compare with the spectrum
at a minimum found by training (:func:`nngeom.hessian_eigenvalues`).
"""

import os

import matplotlib.pyplot as plt
import numpy as np
import torch

import nngeom as ng

QUICK = os.environ.get("NNGEOM_QUICK", "") not in ("", "0")
g = torch.Generator().manual_seed(0)
N = 30 if QUICK else 120
X = torch.randn(N, 2, generator=g, dtype=torch.float64)
teacher = ng.mlp([2, 8, 1], "softplus", seed=1).double()  # wider than the student
with torch.no_grad():
    y = teacher(X)

student = ng.mlp([2, 4, 1], "softplus", seed=0).double()
effort = dict(lbfgs_steps=20, newton_steps=10, trust_steps=30, restarts=0) if QUICK else {}
search = ng.CriticalPointSearch(**effort)
p = ng.find_permutation_saddle(student, X, y, layer=0, i=0, j=1, search=search, seed=0)
print(
    f"permutation point: loss {p.loss:.3g}, gradient norm {p.grad_norm:.2g}, "
    f"{p.n_negative} negative eigenvalues, converged={p.converged}"
)

ng.train(student, X, y, optimizer="lbfgs", epochs=50 if QUICK else 200)
eig_min = ng.hessian_eigenvalues(student, X, y).numpy()
tol = 1e-6 * np.abs(eig_min).max()
print(f"after training: {np.sum(eig_min < -tol)} eigenvalues below -{tol:.1g}")

# %%
# The spectra, on a symmetric log scale: the permutation point has negative directions, the
# trained net none (up to round-off).
fig, ax = plt.subplots(figsize=(7, 3.5))
spectra = [("permutation point", p.eigenvalues.numpy()), ("trained", eig_min)]
for k, (name, eig) in enumerate(spectra):
    ax.scatter(eig, np.full(eig.shape, k), marker="|", s=300, label=name)
ax.set_xscale("symlog", linthresh=1e-6)
ax.set_yticks([0, 1], ["permutation point", "trained net"])
ax.axvline(0, color="k", lw=0.5)
ax.set(xlabel="Hessian eigenvalue", ylim=(-0.7, 1.7))
fig.tight_layout()
plt.show()
