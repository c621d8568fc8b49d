"""The installed wheel, outside the checkout: every adapter loads and the seed's numbers hold.

Run by .ci/run from an empty folder in a virtual environment that has only the
built wheel (and its `all` extra) installed, so nothing comes from the source tree.
"""

from __future__ import annotations

import importlib
import pathlib
import pkgutil
import sys

import numpy as np

import xcorr
import xcorr.backends

site = pathlib.Path(xcorr.__file__).resolve()
assert "site-packages" in site.parts, f"xcorr imported from {site}, not from the installed wheel"
for module in pkgutil.walk_packages(xcorr.backends.__path__, "xcorr.backends."):
    if module.name.endswith(".keras"):
        continue  # importing keras fixes the process's Keras backend; tests/test_keras.py covers it
    importlib.import_module(module.name)

image = np.ones((6, 8))
image[:, 2:6] = 0
expected = np.zeros((6, 7))
expected[:, 1], expected[:, 5] = 1, -1
kernel = np.array([[1.0, -1.0]])

import dask.array as da  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import torch  # noqa: E402

for name, convert in [("numpy", np.asarray), ("torch", torch.asarray), ("jax", jnp.asarray),
                      ("dask", lambda a: da.from_array(a, chunks=3))]:
    y = xcorr.corr2d(convert(image), convert(kernel))
    y = y.compute() if name == "dask" else y
    assert np.array_equal(np.asarray(y), expected), (name, y)
print(f"wheel smoke test: xcorr {xcorr.__version__} from {site.parent}, {len(sys.modules)} modules, ok")
