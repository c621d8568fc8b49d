"""A user's script: the README's example with numpy, which `mypy --strict` must accept.

tests/test_typing.py type-checks it (and a copy with a misspelt mode, which
must be flagged) and runs it.
"""

import numpy as np

import xcorr

x = np.ones((6, 8))
x[:, 2:6] = 0
y = xcorr.corr2d(x, np.array([[1.0, -1.0]]), mode="valid", boundary="fill")
layer = xcorr.Conv2D((1, 2), backend="numpy", dtype="float64", seed=0)
layer, losses = xcorr.fit(layer, x, y, lr=0.01, steps=50)
print(f"weight {np.round(layer.weight, 2).tolist()}, final loss {losses[-1]:.1e}")
