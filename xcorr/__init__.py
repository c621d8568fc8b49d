"""xcorr: 1-D, 2-D and 3-D cross-correlation, convolution and a trainable Conv2D layer
that behave the same on every array-API library.

The core (this package) is pure array-API code and imports no framework.
Everything that differs between array libraries is a method of
``xcorr.Adapter``; per-framework adapters live in ``xcorr.backends`` and load
lazily, the first time an array of their library is passed in, and other
libraries can register their own (``xcorr.register_adapter``).
"""

from . import _tracers, initializers
from ._adapter import Adapter, Costs, Tuning
from ._correlate import conv2d, corr2d
from ._empirical import EmpiricalField, empirical_receptive_field
from ._feature_maps import feature_maps
from ._fit import fit
from ._jvp import conv2d_jvp, corr2d_jvp, corr2d_multi_jvp
from ._layer import Conv2D, Conv2DTranspose
from ._layer_1d import Conv1D
from ._layer_3d import Conv3D
from ._layer_nd_transpose import Conv1DTranspose, Conv3DTranspose
from ._multi import corr2d_multi, corr2d_multi_vjp
from ._one_d import conv1d, conv1d_vjp, corr1d, corr1d_multi, corr1d_multi_vjp, corr1d_vjp
from ._one_d_jvp import conv1d_jvp, corr1d_jvp, corr1d_multi_jvp
from ._one_d_transpose import conv_transpose1d, conv_transpose1d_vjp, corr1d_transpose, corr1d_transpose_vjp
from ._receptive import ReceptiveField, Window, receptive_field
from ._registry import adapter_for, register_adapter, unregister_adapter
from ._three_d import conv3d, corr3d, corr3d_multi
from ._three_d_jvp import conv3d_jvp, corr3d_jvp, corr3d_multi_jvp
from ._three_d_transpose import conv_transpose3d, conv_transpose3d_vjp, corr3d_transpose, corr3d_transpose_vjp
from ._three_d_vjp import conv3d_vjp, corr3d_multi_vjp, corr3d_vjp
from ._transpose import conv_transpose2d, conv_transpose2d_vjp, corr2d_transpose, corr2d_transpose_vjp
from ._vjp import conv2d_vjp, corr2d_vjp
from ._windows import TransposedWindow

_tracers.watch()

__all__ = [
    "Adapter",
    "Conv1D",
    "Conv1DTranspose",
    "Conv2D",
    "Conv2DTranspose",
    "Conv3D",
    "Conv3DTranspose",
    "Costs",
    "EmpiricalField",
    "ReceptiveField",
    "TransposedWindow",
    "Tuning",
    "Window",
    "adapter_for",
    "conv1d",
    "conv1d_jvp",
    "conv1d_vjp",
    "conv2d",
    "conv2d_jvp",
    "conv2d_vjp",
    "conv3d",
    "conv3d_jvp",
    "conv3d_vjp",
    "conv_transpose1d",
    "conv_transpose1d_vjp",
    "conv_transpose2d",
    "conv_transpose2d_vjp",
    "conv_transpose3d",
    "conv_transpose3d_vjp",
    "corr1d",
    "corr1d_jvp",
    "corr1d_multi",
    "corr1d_multi_jvp",
    "corr1d_multi_vjp",
    "corr1d_transpose",
    "corr1d_transpose_vjp",
    "corr1d_vjp",
    "corr2d",
    "corr2d_jvp",
    "corr2d_multi",
    "corr2d_multi_jvp",
    "corr2d_multi_vjp",
    "corr2d_transpose",
    "corr2d_transpose_vjp",
    "corr2d_vjp",
    "corr3d",
    "corr3d_jvp",
    "corr3d_multi",
    "corr3d_multi_jvp",
    "corr3d_multi_vjp",
    "corr3d_transpose",
    "corr3d_transpose_vjp",
    "corr3d_vjp",
    "empirical_receptive_field",
    "feature_maps",
    "fit",
    "initializers",
    "receptive_field",
    "register_adapter",
    "unregister_adapter",
]
__version__ = "0.1.0"
