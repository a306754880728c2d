"""
Mackey-Glass forecasts by every predictor
=========================================

Lapedes & Farber (1987) trained a small sigmoid network on delay vectors of the Mackey-Glass
series (``tau = 17``) to predict ``T = 6`` steps ahead, then iterated it to forecast further.
:mod:`nngeom.chaos` has their network and the usual competitors behind one interface; here each
is trained on the same rows and iterated from the same context, then compared by NRMSE.
"""

import os

import matplotlib.pyplot as plt
import numpy as np

import nngeom as ng

QUICK = os.environ.get("NNGEOM_QUICK", "") not in ("", "0")
LAGS, DELAY, T = 4, 6, 6
n_train = 400 if QUICK else 1500
steps = 60 if QUICK else 120

x = ng.chaos.mackey_glass(n_train + 1200, tau=17, seed=0)
sp = ng.chaos.split(x, n_train, 500, LAGS, DELAY, T)
start = sp.boundary + 300
ctx, truth = ng.chaos.contexts(x, [start], 200, steps)

regressors = {
    "Lapedes-Farber MLP": ng.chaos.LapedesFarberMLP((10, 10), max_iter=100 if QUICK else 1000),
    "linear AR": ng.chaos.LinearAR(),
    "polynomial (3)": ng.chaos.Polynomial(3),
    "local linear": ng.chaos.LocalLinear(10, ridge=1e-6),
    "NVAR": ng.chaos.NVAR(ridge=1e-6),
}
forecasts = {}
for name, reg in regressors.items():
    reg.fit(sp.X_train, sp.y_train)
    forecasts[name] = ng.chaos.IteratedForecaster(reg, LAGS, DELAY, T).forecast(ctx, steps)[0]
esn = ng.chaos.ESN(100 if QUICK else 400, seed=0).fit_series(x[: sp.boundary])
forecasts["echo state network"] = esn.forecast(ctx, steps)[0]

scale = float(x.std())
for name, f in forecasts.items():
    print(f"{name:>20}: NRMSE over {steps} steps = {ng.chaos.nrmse(truth[0], f, scale=scale):.3g}")

# %%
# The forecasts against the true continuation (the context's last 50 values in grey).
fig, ax = plt.subplots(figsize=(8, 4))
t = np.arange(steps) + 1
ax.plot(np.arange(-49, 1), ctx[0, -50:], color="0.6", label="context")
ax.plot(t, truth[0], "k", lw=2, label="truth")
for name, f in forecasts.items():
    ax.plot(t, np.clip(f, -1, 3), lw=1, label=name)
ax.set(xlabel="steps after the context", ylabel="x(t)", ylim=(0.2, 1.5))
ax.legend(fontsize=7, ncol=2)
plt.show()
