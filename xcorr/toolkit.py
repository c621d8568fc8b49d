"""The API for adapter authors: everything an adapter (``xcorr.backends`` and third-party ones) may use.

An adapter module imports xcorr only through this module (``from xcorr
import toolkit``; inside the package ``from .. import toolkit``): the private
modules behind these names may move, these names stay. Each helper exists
once and is written against the array API, so an adapter of any library can
use it on its own arrays. The arguments ``options`` and ``geometry`` are the
:class:`Options` and :class:`Geometry` that every adapter method receives.

The contract
    :class:`Adapter` (subclass it, override what the library does better),
    :class:`Tuning` (an adapter's thresholds, with its :class:`Costs`: the
    cost model that :func:`choose_method` reads; :func:`concrete_method` resolves "auto" by it, given
    the :func:`dtype_kind` of the result).
Vocabulary
    :class:`Options` (parsed options), :func:`plan` (their
    :class:`Geometry`: one :class:`AxisPlan` per spatial axis),
    :func:`result_dtype`, :data:`MODES`, :data:`BOUNDARY_ALIASES`, the
    types ``Array``, ``Boundary``, ``Method``, ``Mode``; :func:`array_namespace`.
Boundary extension and its adjoint
    :func:`extend` returns the part of ``x`` (with its boundary extension)
    that the windows of a call read (slices or one fill where they suffice);
    :func:`generic_extend` always builds it axis by axis
    (:func:`extend_axis`); :func:`fold_axis` is the adjoint of
    :func:`extend_axis` (a gradient of the extended image summed back onto
    the pixels it copied). :func:`compact` and :func:`compact_axis` lay the
    taps' windows end to end where a dilation leaves gaps between them.
Direct method
    :func:`window` is the slice of the extended axis that one kernel tap
    reads; :func:`prepare` casts both operands to the result dtype and flips
    the kernel of a convolution; :func:`direct_correlate` is the generic
    shift-and-add.
FFT method
    :func:`fft_correlate` (and its ``fft=``/``size=`` hooks for a library's
    own transforms), :func:`fft_vjp` (both gradients from one spectrum),
    :func:`fft_input_gradient`, :func:`fft_kernel_lags`, :func:`dilate`
    (zeros between kernel taps), :func:`kernel_spectrum`; :func:`fft_allowed` is whether "auto"
    may take the FFT for some arrays (their values visible, and all finite).
Gradients
    :func:`vjp` (the VJP of validated inputs, by the adapter of ``xp``),
    :func:`adapter_vjp` (the same by a given adapter: what an autodiff rule calls),
    :func:`input_gradient` (its input half; ``insert=`` undoes the stride),
    :func:`unbroadcast` sums a gradient over broadcast dimensions;
    :func:`zero_insert` undoes a stride; :func:`as_input_dtype` casts a
    gradient to its operand's dtype; :func:`tangent_options` are the options
    of a forward-mode tangent's correlation.
Multi-channel and transposed
    :func:`correlate_multi`, :func:`multi_vjp` and
    :func:`correlate_multi_transpose` (validated inputs, by the adapter of
    ``xp``), :func:`generic_multi_vjp` (the generic implementation);
    :func:`to_first` and :func:`to_last` permute channels last to first and
    back; :func:`transpose_crop` and
    :func:`transpose_finish` crop an uncropped transposed convolution (and
    restore its layout); :func:`transpose_reach` is the taps and inputs whose
    scatter reaches a range of its output rows (one block of it).
Re-entry
    :func:`correlate` runs a correlation of parsed options through the public
    dispatcher (an adapter evaluating blocks with another library's arrays);
    the public functions :func:`corr2d`, :func:`conv2d`,
    :func:`corr2d_multi`, :func:`corr2d_transpose`, :func:`conv_transpose2d`, and their 1-D and
    3-D forms; ``ARRAY_FUNCTIONS`` is every public function of arrays (these, their VJPs and
    JVPs), which torch's compiler takes whole into its graphs.
Layers and training
    :class:`Conv2D` and :class:`Conv2DTranspose` (the base classes of a
    library's layers), :func:`loss_and_gradient` (a loss and its gradient
    with respect to the residual), :func:`fit_arrays` (the generic training
    loop); :func:`full_index` and :func:`check_index` (an output index of
    ``empirical_receptive_field``).
"""

from . import _composite
from ._adapter import Adapter, Tuning
from ._compat import array_namespace
from ._composite import adapter_vjp
from ._composite import crop as transpose_crop
from ._composite import finish as transpose_finish
from ._correlate import _correlate as correlate
from ._correlate import conv2d, corr2d
from ._cost_model import Costs, choose_method, concrete_method, dtype_kind
from ._direct import (
    as_input_dtype,
    compact,
    compact_axis,
    extend_axis,
    fold_axis,
    prepare,
    unbroadcast,
    window,
    zero_insert,
)
from ._direct import correlate as direct_correlate
from ._direct import extend as generic_extend
from ._empirical import check_index, full_index
from ._fft import correlate as fft_correlate
from ._fft import dilate, extend, kernel_spectrum
from ._fft import input_gradient as fft_input_gradient
from ._fft import kernel_lags as fft_kernel_lags
from ._fft import vjp as fft_vjp
from ._jvp import conv2d_jvp, corr2d_jvp, corr2d_multi_jvp, tangent_options
from ._layer import Conv2D, Conv2DTranspose
from ._layer_1d import Conv1D
from ._layer_3d import Conv3D
from ._layer_nd_transpose import Conv1DTranspose, Conv3DTranspose
from ._layout import to_first, to_last
from ._multi import corr2d_multi, corr2d_multi_vjp, correlate_multi, multi_vjp
from ._one_d import conv1d, conv1d_vjp, corr1d, corr1d_multi, corr1d_multi_vjp, corr1d_vjp
from ._one_d_jvp import conv1d_jvp, corr1d_jvp, corr1d_multi_jvp
from ._one_d_transpose import conv_transpose1d, conv_transpose1d_vjp, corr1d_transpose, corr1d_transpose_vjp
from ._options import BOUNDARY_ALIASES, AxisPlan, Geometry, Options, plan, result_dtype
from ._padding import MODES
from ._prepared import fft_allowed
from ._registry import adapter_for
from ._three_d import conv3d, corr3d, corr3d_multi
from ._three_d_jvp import conv3d_jvp, corr3d_jvp, corr3d_multi_jvp
from ._three_d_transpose import conv_transpose3d, conv_transpose3d_vjp, corr3d_transpose, corr3d_transpose_vjp
from ._three_d_vjp import conv3d_vjp, corr3d_multi_vjp, corr3d_vjp
from ._training import fit_arrays, loss_and_gradient
from ._transpose import conv_transpose2d, conv_transpose2d_vjp, corr2d_transpose, corr2d_transpose_vjp
from ._transpose_plan import axis_reach as transpose_reach
from ._typing import Array, Boundary, Method, Mode
from ._vjp import conv2d_vjp, corr2d_vjp, vjp

ARRAY_FUNCTIONS = (
    corr1d, conv1d, corr1d_multi, corr1d_transpose, conv_transpose1d,
    corr2d, conv2d, corr2d_multi, corr2d_transpose, conv_transpose2d,
    corr3d, conv3d, corr3d_multi, corr3d_transpose, conv_transpose3d,
    corr1d_vjp, conv1d_vjp, corr1d_multi_vjp, corr1d_transpose_vjp, conv_transpose1d_vjp,
    corr2d_vjp, conv2d_vjp, corr2d_multi_vjp, corr2d_transpose_vjp, conv_transpose2d_vjp,
    corr3d_vjp, conv3d_vjp, corr3d_multi_vjp, corr3d_transpose_vjp, conv_transpose3d_vjp,
    corr1d_jvp, conv1d_jvp, corr1d_multi_jvp, corr2d_jvp, conv2d_jvp, corr2d_multi_jvp,
    corr3d_jvp, conv3d_jvp, corr3d_multi_jvp,
)  # fmt: skip


def input_gradient(xp, x, k, g, options: Options, geometry: Geometry, *, insert=None):
    """The gradient of ``x`` of a correlation at output gradient ``g``, by the adapter of ``xp``;
    ``insert(g, axis, step)`` undoes the stride (default: :func:`zero_insert`)."""
    return _composite.input_gradient(adapter_for(xp), xp, x, k, g, options, geometry, insert=insert)


def correlate_multi_transpose(xp, x, w, plan):
    """``conv_transpose2d`` of validated inputs by the adapter of ``xp``
    (``Adapter.correlate_multi_transpose``; ``plan`` is its transposed plan)."""
    return adapter_for(xp).correlate_multi_transpose(xp, x, w, plan)


def generic_multi_vjp(xp, x, w, g, options: Options, geometry: Geometry, groups: int, need_x: bool):
    """``Adapter.correlate_multi_vjp``'s generic implementation (the VJP of the broadcast
    correlation), its single-plane VJP by the adapter of ``xp``."""
    return _composite.generic_multi_vjp(adapter_for(xp), xp, x, w, g, options, geometry, groups, need_x)


__all__ = [
    "ARRAY_FUNCTIONS",
    "BOUNDARY_ALIASES",
    "MODES",
    "Adapter",
    "Array",
    "AxisPlan",
    "Boundary",
    "Conv1D",
    "Conv1DTranspose",
    "Conv2D",
    "Conv2DTranspose",
    "Conv3D",
    "Conv3DTranspose",
    "Costs",
    "Geometry",
    "Method",
    "Mode",
    "Options",
    "Tuning",
    "adapter_vjp",
    "array_namespace",
    "as_input_dtype",
    "check_index",
    "choose_method",
    "compact",
    "compact_axis",
    "concrete_method",
    "conv1d",
    "conv2d",
    "conv3d",
    "conv_transpose1d",
    "conv_transpose2d",
    "conv_transpose3d",
    "corr1d",
    "corr1d_multi",
    "corr1d_transpose",
    "corr2d",
    "corr2d_multi",
    "corr2d_transpose",
    "corr3d",
    "corr3d_multi",
    "corr3d_transpose",
    "correlate",
    "correlate_multi",
    "correlate_multi_transpose",
    "dilate",
    "direct_correlate",
    "dtype_kind",
    "extend",
    "extend_axis",
    "fft_allowed",
    "fft_correlate",
    "fft_input_gradient",
    "fft_kernel_lags",
    "fft_vjp",
    "fit_arrays",
    "fold_axis",
    "full_index",
    "generic_extend",
    "generic_multi_vjp",
    "input_gradient",
    "kernel_spectrum",
    "loss_and_gradient",
    "multi_vjp",
    "plan",
    "prepare",
    "result_dtype",
    "tangent_options",
    "to_first",
    "to_last",
    "transpose_crop",
    "transpose_finish",
    "transpose_reach",
    "unbroadcast",
    "vjp",
    "window",
    "zero_insert",
]
