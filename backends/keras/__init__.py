"""Keras 3 layers: xcorr's correlations inside ``keras.layers.Layer`` (public as ``xcorr.keras``).

``Conv1D``, ``Conv2D``, ``Conv3D``, their transposed layers and ``DepthwiseConv2D`` take the arguments of
Keras' layers of those names, hold their weights as Keras variables in
Keras' layouts (initializers, regularizers and constraints through
``add_weight``, as Keras does), and compute ``xcorr.corr1d_multi``, ``xcorr.corr2d_multi``, ``xcorr.corr3d_multi`` or
``xcorr.conv_transpose1d``, ``conv_transpose2d`` or ``conv_transpose3d`` on the arrays of the Keras backend in use, so
xcorr's jax or torch adapter does the work, autodiff and ``jit_compile``
included. Keras' other backends: "numpy" runs inference only (no gradients
there), and TensorFlow tensors are no array-API arrays, so "tensorflow" is
refused when a layer is built.

The classes are registered for Keras serialization (package "xcorr") when
this package is imported, which ``import xcorr.keras`` does; ``import
xcorr`` loads no framework.

By concern: ``base`` (the arguments' checks and what the layers share: weights, output shape,
config), ``conv`` (``Conv2D``, ``DepthwiseConv2D``), ``conv1d`` (``Conv1D``),
``conv3d`` (``Conv3D``) and ``transpose`` (``Conv1DTranspose``, ``Conv2DTranspose``, ``Conv3DTranspose``).
"""

from .conv import Conv2D, DepthwiseConv2D
from .conv1d import Conv1D
from .conv3d import Conv3D
from .transpose import Conv1DTranspose, Conv2DTranspose, Conv3DTranspose

__all__ = ["Conv1D", "Conv1DTranspose", "Conv2D", "Conv2DTranspose", "Conv3D", "Conv3DTranspose", "DepthwiseConv2D"]

# Their public home, as before the split: Keras' saved configs and type names say xcorr.backends.keras.
for _layer in (Conv1D, Conv1DTranspose, Conv2D, Conv2DTranspose, Conv3D, Conv3DTranspose, DepthwiseConv2D):
    _layer.__module__ = __name__
del _layer
