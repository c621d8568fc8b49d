"""Keras 3 layers computed by xcorr: ``Conv1D``, ``Conv2D``, ``Conv3D``, their transposed layers, ``DepthwiseConv2D``.

``pip install 'xcorr[keras]'``. Importing this module imports Keras (whose
backend the ``KERAS_BACKEND`` environment variable chooses when Keras is
first imported: xcorr runs on "jax" and "torch", and "numpy" for inference)
and registers the layers for Keras serialization, so a ``.keras`` file
holding them loads after ``import xcorr.keras``. ``import xcorr`` alone
imports no framework.

The layers take the arguments of Keras' layers of the same names and their
weight layouts (see ``docs/coming-from/keras.md``), plus xcorr's
``boundary`` and ``method`` on ``Conv1D``, ``Conv2D``, ``Conv3D`` and ``DepthwiseConv2D``.

Examples
--------
>>> import numpy as np
>>> from xcorr.keras import Conv2D
>>> layer = Conv2D(4, 3, padding="same", activation="relu", kernel_regularizer="l2")
>>> tuple(layer(np.ones((1, 8, 8, 2), "float32")).shape)
(1, 8, 8, 4)
>>> len(layer.losses)
1
"""

from __future__ import annotations

import importlib

try:
    importlib.import_module("keras")  # here, so that the error names what to install
except ModuleNotFoundError as err:
    if err.name != "keras":
        raise
    msg = "xcorr.keras needs Keras 3: pip install 'xcorr[keras]'"
    raise ImportError(msg) from err

from .backends.keras import (
    Conv1D,
    Conv1DTranspose,
    Conv2D,
    Conv2DTranspose,
    Conv3D,
    Conv3DTranspose,
    DepthwiseConv2D,
)

__all__ = ["Conv1D", "Conv1DTranspose", "Conv2D", "Conv2DTranspose", "Conv3D", "Conv3DTranspose", "DepthwiseConv2D"]
