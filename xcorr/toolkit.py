"""Building blocks shared by the core and the adapters (``xcorr.backends`` and third-party ones).

Each helper exists once and is written against the array API, so an adapter
of any library can use it on its own arrays:

Boundary extension and its adjoint
    :func:`extend` returns the part of ``x`` (with its boundary extension)
    that the windows of a call read; :func:`extend_axis` does one axis;
    :func:`fold_axis` is the adjoint of :func:`extend_axis` (a gradient of the
    extended image summed back onto the pixels it copied).
Windows
    :func:`window` is the slice of the extended axis that one kernel tap
    reads; :func:`prepare` casts both operands to the result dtype and flips
    the kernel of a convolution.
Gradients
    :func:`unbroadcast` sums a gradient over broadcast dimensions;
    :func:`zero_insert` undoes a stride; :func:`as_input_dtype` casts a
    gradient to its operand's dtype.
FFT
    :func:`dilate` inserts zeros between kernel taps; :func:`kernel_spectrum`
    transforms a small kernel padded to a transform size.

The arguments ``options`` and ``geometry`` are the :class:`Options` and
:class:`Geometry` that every adapter method receives.
"""

from ._fft import dilate, extend, kernel_spectrum
from ._generic import extend_axis, prepare, window
from ._options import AxisPlan, Geometry, Options
from ._vjp import as_input_dtype, fold_axis, unbroadcast, zero_insert

__all__ = [
    "AxisPlan",
    "Geometry",
    "Options",
    "as_input_dtype",
    "dilate",
    "extend",
    "extend_axis",
    "fold_axis",
    "kernel_spectrum",
    "prepare",
    "unbroadcast",
    "window",
    "zero_insert",
]
