"""
Learning the seed's kernel back
===============================

The seed notebook's experiment: make an image ``X`` with two vertical edges, compute its edge map
``Y = corr2d(X, [[1, -1]])``, then train a ``Conv2D`` layer of kernel size ``(1, 2)`` on ``(X, Y)``
by plain gradient descent on the squared error. It learns ``[[1, -1]]`` back. :func:`xcorr.fit` runs
the notebook's loop on every backend — torch autograd, a jitted ``jax.value_and_grad``, and the
core's exact VJP on numpy — from the same seeded start, so the loss curves coincide.
"""

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import torch

import xcorr

jax.config.update("jax_enable_x64", True)

X = np.ones((6, 8))
X[:, 2:6] = 0
Y = xcorr.corr2d(X, np.array([[1.0, -1.0]]))
print(Y)

# %%
# Fifty steps at learning rate 0.01 on three backends, in float64.
convert = {"numpy": np.asarray, "torch": torch.from_numpy, "jax": jnp.asarray}
curves, learned = {}, {}
for backend, asarray in convert.items():
    layer = xcorr.Conv2D((1, 2), backend=backend, dtype="float64", seed=0)
    layer, losses = xcorr.fit(layer, asarray(X), asarray(Y), lr=0.01, steps=50)
    curves[backend] = losses
    weight = (
        layer.weight.detach().numpy()
        if backend == "torch"
        else np.asarray(layer.weight)
    )
    learned[backend] = weight
    print(
        f"{backend:6s} weight {np.round(weight, 4).tolist()}  final loss {losses[-1]:.2e}"
    )

spread = max(abs(a - b) for a, b in zip(curves["numpy"], curves["torch"]))
spread = max(spread, max(abs(a - b) for a, b in zip(curves["numpy"], curves["jax"])))
print(f"largest difference between the backends' losses: {spread:.1e}")

# %%
fig, (ax, bx) = plt.subplots(
    1, 2, figsize=(9, 3.6), layout="constrained", width_ratios=[2, 1]
)
for (backend, losses), style in zip(curves.items(), ["-", "--", ":"]):
    ax.semilogy(np.arange(1, len(losses) + 1), losses, style, lw=2, label=backend)
ax.set_xlabel("step")
ax.set_ylabel("squared error (before the step)")
ax.set_title("loss, lr 0.01")
ax.legend()
weight = learned["numpy"]
bx.imshow(weight, cmap="RdBu", vmin=-1.2, vmax=1.2)
for j, value in enumerate(weight[0]):
    bx.text(j, 0, f"{value:.4f}", ha="center", va="center", color="white")
bx.set_title("learned kernel")
bx.set_xticks([0, 1])
bx.set_yticks([])
plt.show()
