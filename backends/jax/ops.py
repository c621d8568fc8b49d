"""jax's native calls and fast paths: jitted forward kernels, kernel gradients, ``lax.conv_general_dilated``.

Each function takes the adapter's ``tuning`` where a threshold chooses its
path; the compiled forward kernels are cached per (tuning, options, geometry).
numba's kernels run as XLA custom calls (``backends/_jax_numba.py``) where
``custom_calls.numba_applies``; ``custom_calls.unless_exported`` keeps them
out of exported and partitioned programs.
"""

from __future__ import annotations

import functools
import math
from dataclasses import replace

import jax
import jax.numpy as jnp
from jax import lax

from ... import toolkit
from ...toolkit import result_dtype
from . import custom_calls

# --- kernel gradients --------------------------------------------------------


def numba_kernel_gradient_applies(tuning, x, k, g, geometry, method) -> bool:
    """Whether the direct kernel gradient takes numba's one-pass kernel as an XLA custom call.

    On the CPU (jax's default backend) with numba installed, a 2-D kernel,
    float32/float64 operands and at least ``JaxTuning.numba_min_outputs``
    outputs, where it is several times faster than the native convolution
    (``backends/_jax_numba.py``; the README's jax backward table).
    """
    return method == "direct" and custom_calls.numba_applies(tuning, x, k, g.dtype, math.prod(geometry.out_shape))


def numba_kernel_gradient(tuning, x, k, g, options, geometry):
    """The direct kernel gradient as numba's one-pass kernel (``numba_kernel_gradient_applies``).

    A "fill" boundary is read virtually; other boundaries are extended first.
    """
    k_shape = tuple(k.shape)
    fast = functools.partial(_numba_kernel_gradient, tuning=tuning, options=options, geometry=geometry, k_shape=k_shape)
    fallback = functools.partial(_xla_kernel_gradient, options=options, geometry=geometry, k_shape=k_shape)
    return custom_calls.unless_exported(fast, fallback, x, g)


def _numba_kernel_gradient(x, g, *, tuning, options, geometry, k_shape):
    """The kernel gradient as numba's one-pass kernel in an XLA custom call."""
    from .. import _jax_numba

    xp = jnp
    planes, r0, c0 = _numba_source(xp, x, options, geometry, virtual_fill=True)
    gb = xp.reshape(g, (-1, *g.shape[-2:]))
    consts = xp.asarray([options.fillvalue, 0], dtype=x.dtype)
    params = (r0, c0, geometry.rows.step, geometry.cols.step, geometry.rows.dilation, geometry.cols.dilation)
    return _jax_numba.kernel_gradient(planes, gb, consts, k_shape, params, threaded_work=tuning.numba_threaded_work)


def _xla_kernel_gradient(x, g, *, options, geometry, k_shape):
    """The same kernel gradient in XLA's own ops: one convolution of the extended input with ``g``.

    ``gk[a, b] = sum over planes of g . window(a, b) of extend(x)``: the
    planes are the input channels, ``g`` the kernel, the tap spacing its
    strides and the output stride its dilation.
    """
    rows, cols = geometry.rows, geometry.cols
    xe = _extend(jnp, x, geometry, options)
    strides, dilation = (rows.dilation, cols.dilation), (rows.step, cols.step)
    y = _planes_as_channels(jnp, xe, g, geometry.batch, strides, dilation, precision=lax.Precision.HIGHEST)
    return y[: k_shape[0], : k_shape[1]]


def _planes_as_channels(xp, xe, g, batch, strides, dilation, **kwargs):
    """``sum over planes p of corr(xe[p], g[p])``, ``xe`` broadcast to the planes of ``batch``: one
    convolution with the planes as input channels, ``g`` the kernel."""
    planes = math.prod(batch)
    H, W = xe.shape[-2:]
    lhs = xp.reshape(xp.broadcast_to(xe, (*batch, H, W)), (1, planes, H, W))
    rhs = xp.reshape(g, (1, planes, *g.shape[-2:]))
    return lax.conv_general_dilated(lhs, rhs, strides, "VALID", rhs_dilation=dilation, **kwargs)[0, 0]


def _numba_source(xp, x, options, geometry, *, virtual_fill: bool):
    """``_numba.source`` of jax arrays: what numba's kernels read, with this adapter's extension."""
    from .. import _numba

    return _numba.source(xp, x, options, geometry, virtual_fill=virtual_fill, extend=_extend)


def kernel_gradient_sum_applies(xp, g, k_shape) -> bool:
    """Whether ``kernel_gradient_sum`` applies: one 2-D kernel, a batch of real floating ``g``."""
    return len(k_shape) == 2 and g.ndim >= 3 and xp.isdtype(g.dtype, "real floating")


def kernel_gradient_sum(xp, xe, g, swapped, k_shape):
    """The native kernel gradient of a batch with one 2-D kernel, batch sum included.

    ``sum over planes of corr(extend(x)[p], g[p])`` is one convolution with
    the planes as input channels, against the grouped convolution (one
    output per plane, summed afterwards) that the broadcast correlation
    takes. Where ``kernel_gradient_sum_applies``.
    """
    return _planes_as_channels(xp, xe, g, tuple(g.shape[:-2]), swapped.stride, swapped.dilation)


# --- fast forward kernels --------------------------------------------------


def _extend(xp, x, geometry, options):
    """``toolkit.extend``, with a fill extension as one ``lax.pad``.

    The zero blocks and ``concat`` of the generic extension are materialised
    (a "full" correlation, the input gradient, ran about twice as long).
    XLA does not fuse this one pad into the nine slices of an unrolled 3x3
    shift-and-add either: that path pads per tap (``_tap_windows``).
    """
    rows, cols = geometry.rows, geometry.cols
    if geometry.inside or options.boundary != "fill":
        return toolkit.extend(xp, x, geometry, options)
    config = [(0, 0, 0)] * (x.ndim - 2) + [
        (-rows.lo, rows.hi - rows.size + 1, 0),
        (-cols.lo, cols.hi - cols.size + 1, 0),
    ]
    return lax.pad(x, xp.asarray(options.fillvalue, dtype=x.dtype), config)


def _tap_windows(tuning, xp, x, geometry, options):
    """``window(a, b)``: what kernel tap ``(a, b)`` reads for every output.

    A fill extension of a kernel of up to ``JaxTuning.pad_per_tap`` taps gives each
    tap its own ``lax.pad`` of ``x`` (negative widths crop): XLA fuses nine
    pads into the shift-and-add, but not one pad that nine slices read (a
    separate pass, about twice the time of a "full" 3x3 correlation, the
    input gradient). Beyond that the fused pads cost more than the pass, so
    larger kernels and other extensions extend once and slice.
    """
    rows, cols = geometry.rows, geometry.cols
    if geometry.inside or options.boundary != "fill" or rows.taps * cols.taps > tuning.pad_per_tap:
        xe = _extend(xp, x, geometry, options)
        return lambda a, b: xe[..., toolkit.window(rows, a), toolkit.window(cols, b)]
    fill = xp.asarray(options.fillvalue, dtype=x.dtype)
    lead = [(0, 0, 0)] * (x.ndim - 2)

    def width(plan, tap):
        # x positions first .. first + length - 1, fill outside [0, size).
        first = plan.lo + tap * plan.dilation
        length = (plan.count - 1) * plan.step + 1
        return (-first, first + length - plan.size, 0)

    def window(a, b):
        term = lax.pad(x, fill, [*lead, width(rows, a), width(cols, b)])
        return term[..., :: rows.step, :: cols.step]

    return window


def forward(tuning, x, k, options, geometry):
    """Fastest forward computation for jax arrays, traceable under jax.jit.

    Each (tuning, options, geometry) gets one ``jax.jit``-compiled kernel,
    cached (``forward_kernel``); inside a user's ``jax.jit`` it is simply
    inlined. ``options.method`` is already resolved by ``xcorr._methods``:

    - "direct": shift-and-add that XLA fuses into one pass over the input.
      Up to ``JaxTuning.unroll_taps`` taps it is fully unrolled; beyond that XLA's
      compile time and run time fall off a cliff, so a ``lax.fori_loop`` runs
      over the kernel rows with the columns unrolled.
    - "fft": real FFTs through ``jax.numpy.fft`` (``toolkit.fft_correlate``).
    - "native": ``lax.conv_general_dilated`` (floating and complex dtypes).
    """
    return forward_kernel(tuning, options, geometry)(x, k)


@functools.cache
def forward_kernel(tuning, options, geometry):
    """The jitted forward kernel of one configuration (see ``forward``)."""
    if options.method == "fft":
        fft = functools.partial(toolkit.fft_correlate, jnp, options=options, geometry=geometry)
        native = functools.partial(_native, tuning=tuning, options=options, geometry=geometry)
        return jax.jit(functools.partial(custom_calls.unless_partitioned, fft, native))
    if options.method == "native":
        return jax.jit(functools.partial(_native, tuning=tuning, options=options, geometry=geometry))
    return jax.jit(functools.partial(_direct, tuning=tuning, options=options, geometry=geometry))


def _direct(x, k, *, tuning, options, geometry):
    xp = jnp
    x, k = toolkit.prepare(xp, x, k, options)
    if _numba_forward(tuning, x, k, options, geometry):
        fast = functools.partial(numba_correlate, tuning, jnp, options=options, geometry=geometry)
        fallback = functools.partial(_xla_direct, tuning=tuning, options=options, geometry=geometry)
        return custom_calls.unless_exported(fast, fallback, x, k)
    return _xla_direct(x, k, tuning=tuning, options=options, geometry=geometry)


def _xla_direct(x, k, *, tuning, options, geometry):
    """The direct correlation of prepared operands in XLA's own ops (see ``forward``)."""
    xp = jnp
    compacted = toolkit.compact(xp, x, geometry, options)
    if compacted is not None:
        # A dilation wider than the output: the taps' windows end to end, every window inside.
        x, geometry = compacted
    rows, cols = geometry.rows, geometry.cols
    if rows.taps * cols.taps <= tuning.unroll_taps or rows.taps == 1:
        # toolkit.direct_correlate's unrolled shift-and-add, on the extended input.
        window = _tap_windows(tuning, xp, x, geometry, options)
        total = None
        for a in range(rows.taps):
            for b in range(cols.taps):
                term = window(a, b) * k[..., a : a + 1, b : b + 1]
                total = term if total is None else total + term
        if tuple(total.shape) != geometry.out_shape:
            total = xp.broadcast_to(total, geometry.out_shape)
        return total
    xe = _extend(xp, x, geometry, options)
    length = (rows.count - 1) * rows.step + 1
    col_windows = [toolkit.window(cols, b) for b in range(cols.taps)]

    def row(a, acc):
        band = lax.dynamic_slice_in_dim(xe, a * rows.dilation, length, axis=xe.ndim - 2)
        band = band[..., :: rows.step, :]
        weights = lax.dynamic_index_in_dim(k, a, axis=k.ndim - 2, keepdims=False)  # (..., w)
        for b, window in enumerate(col_windows):
            acc = acc + band[..., window] * weights[..., b][..., None, None]
        return acc

    acc = xp.zeros(geometry.out_shape, dtype=x.dtype)
    return lax.fori_loop(0, rows.taps, row, acc)


def _numba_forward(tuning, x, k, options, geometry) -> bool:
    """Whether the direct correlation takes numba's kernel (an XLA custom call).

    Wherever it applies (``custom_calls.numba_applies``, up to
    ``JaxTuning.unroll_taps`` taps): XLA's own shift-and-add is only as
    fast as the fusion XLA picks for it, and with a reduction among its
    consumers (a loss: ``sum(corr2d(x, k) * g)``, the primal of every
    ``value_and_grad``) XLA's CPU fusion writes each tap's window out as an
    array of its own, up to 35 times the kernel's time; the custom call's
    output is computed alone whatever consumes it. Where windows leave
    ``x`` into a fill, the kernel reads rows of the fill value and computes
    the edge columns apart; large outputs get huge pages from the handler
    (``backends/_hugepages.py``). The README's jax tables have the measurements.
    """
    rows, cols = geometry.rows, geometry.cols
    outputs = math.prod(geometry.out_shape)
    if rows.taps * cols.taps > tuning.unroll_taps or not custom_calls.numba_applies(tuning, x, k, k.dtype, outputs):
        return False
    # Rows of the fill are read virtually; a column stride needs the extension XLA builds too.
    return geometry.inside or (options.boundary == "fill" and cols.step == 1)


def numba_correlate(tuning, xp, x, k, options, geometry):
    """The direct correlation as numba's kernel in an XLA custom call (a fill read virtually)."""
    from .. import _jax_numba

    rows, cols = geometry.rows, geometry.cols
    planes, r0, c0 = _numba_source(xp, x, options, geometry, virtual_fill=True)
    consts = xp.asarray([options.fillvalue, 0], dtype=x.dtype)
    params = (r0, c0, rows.step, cols.step, rows.dilation, cols.dilation)
    out_shape = (planes.shape[0], rows.count, cols.count)
    y = _jax_numba.correlate(planes, k, consts, out_shape, params, threaded_work=tuning.numba_threaded_work)
    return xp.reshape(y, geometry.out_shape)


def _native(x, k, *, tuning, options, geometry):
    native = functools.partial(_lax_native, tuning=tuning, options=options, geometry=geometry)
    if k.ndim == 2:
        return native(x, k)
    # One kernel per plane is a grouped convolution over the planes, and XLA's CPU grouped convolution
    # puts a NaN or inf of one plane on the same outputs of every other plane: operands holding one
    # take the direct method (decided in the program), whose planes stay apart. Not where the program
    # is partitioned over devices: there the check of the whole operands would cost a collective.
    direct = functools.partial(_direct, tuning=tuning, options=options, geometry=geometry)
    return custom_calls.unless_partitioned(finite_or_direct(native, direct), native, x, k)


def _lax_native(x, k, *, tuning, options, geometry):
    """The "native" correlation: one ``lax.conv_general_dilated``, grouped over the planes where each
    has its own kernel."""
    xp = jnp
    x, k = toolkit.prepare(xp, x, k, options)
    if not (xp.isdtype(x.dtype, "real floating") or xp.isdtype(x.dtype, "complex floating")):
        return _direct(x, k, tuning=tuning, options=replace(options, convolve=False), geometry=geometry)
    compacted = toolkit.compact(xp, x, geometry, options)  # a dilation wider than the output
    xe, geometry = compacted if compacted is not None else (_extend(xp, x, geometry, options), geometry)
    rows, cols = geometry.rows, geometry.cols
    stride, dilation = (rows.step, cols.step), (rows.dilation, cols.dilation)
    H, W = xe.shape[-2:]
    h, w = k.shape[-2:]
    if k.ndim == 2:
        lhs = xp.reshape(xe, (-1, 1, H, W))
        y = lax.conv_general_dilated(lhs, xp.reshape(k, (1, 1, h, w)), stride, "VALID", rhs_dilation=dilation)
        y = xp.reshape(y, (*xe.shape[:-2], *y.shape[-2:]))
    else:
        # One kernel per plane: a grouped convolution over the broadcast batch.
        batch = geometry.batch
        planes = math.prod(batch)
        lhs = xp.reshape(xp.broadcast_to(xe, (*batch, H, W)), (1, planes, H, W))
        rhs = xp.reshape(xp.broadcast_to(k, (*batch, h, w)), (planes, 1, h, w))
        y = lax.conv_general_dilated(lhs, rhs, stride, "VALID", rhs_dilation=dilation, feature_group_count=planes)
        y = xp.reshape(y, (*batch, *y.shape[-2:]))
    if tuple(y.shape) != geometry.out_shape:
        y = xp.broadcast_to(y, geometry.out_shape)
    return y


# --- multi-channel correlation: layers and transposed convolutions ----------


def finite_or_direct(fft, direct):
    """``fft(x, k)`` where ``x`` and ``k`` are finite, else ``direct(x, k)``: decided by ``lax.cond`` in
    the program where the operands are traced (jit, grad, vmap), by their values where they are
    concrete (one branch run; a function jitted here would be compiled again for every prepared call)."""

    def run(x, k):
        finite = jnp.logical_and(jnp.all(jnp.isfinite(x)), jnp.all(jnp.isfinite(k)))
        if isinstance(finite, jax.core.Tracer):
            return jax.lax.cond(finite, fft, direct, x, k)
        return fft(x, k) if bool(finite) else direct(x, k)

    return run


#: Kernels of up to this many taps take the unrolled taps' scatter (``JaxAdapter.scatter_taps``).
UNROLLED_TAPS = 49


def scatter_taps(g, kc, options, geometry):
    """The generic taps' scatter (``toolkit.scatter_taps``: ``g * k[a, b]`` placed on each tap's window,
    the zeros of the stride inserted after the product) as one ``lax.fori_loop`` over the taps: a
    program whose size does not grow with the kernel (a 31x31 kernel unrolled is 961 scatters to
    trace and compile under ``lax.cond``)."""
    rows, cols = geometry.rows, geometry.cols
    k = jnp.flip(kc, axis=(-2, -1)) if options.convolve else kc
    batch = jnp.broadcast_shapes(g.shape[:-2], k.shape[:-2])
    dtype = jnp.result_type(g, k)
    spans = ((rows.count - 1) * rows.step + 1, (cols.count - 1) * cols.step + 1)
    blank = jnp.zeros((*batch, *spans), dtype)

    def tap(t, total):
        a, b = t // cols.taps, t % cols.taps
        kab = jax.lax.dynamic_slice_in_dim(jax.lax.dynamic_slice_in_dim(k, a, 1, axis=-2), b, 1, axis=-1)
        term = blank.at[..., :: rows.step, :: cols.step].set(jnp.broadcast_to(g * kab, (*batch, rows.count, cols.count)))
        start = (0,) * len(batch) + (a * rows.dilation, b * cols.dilation)
        return jax.lax.dynamic_update_slice(total, jax.lax.dynamic_slice(total, start, term.shape) + term, start)

    extent = (rows.hi - rows.lo + 1, cols.hi - cols.lo + 1)
    # The first tap outside the loop: the carry then has the terms' type (under shard_map, varying
    # over the mesh axes as g and k are), as the loop requires.
    first = tap(0, jnp.zeros((*batch, *extent), dtype))
    return jax.lax.fori_loop(1, rows.taps * cols.taps, tap, first)


def real_floating(xp, x, w) -> bool:
    """Whether the operands' result dtype is real floating: what the library convolutions below take."""
    return xp.isdtype(result_dtype(xp, x.dtype, w.dtype), "real floating")


def correlate_multi(
    xp, x, w, options, geometry, groups, precision=None, preferred_element_type=None, *, channels_last=False
):
    """``corr2d_multi`` of real floating operands: ``lax.conv_general_dilated``, the extension handed to jax.

    A zero fill is the convolution's ``padding``; another fill value one
    ``lax.pad``; wrap, symm and reflect within one period and edge at any
    width ``jnp.pad`` ("wrap", "symmetric", "reflect", "edge"); wider ones
    the generic extension (slices that XLA fuses). An ``(N, H, W, C)``
    input (``channels_last``) is convolved in ``NHWC`` where
    ``channels_last_applies``.
    """
    dtype = result_dtype(xp, x.dtype, w.dtype)
    x = xp.astype(x, dtype, copy=False)
    w = xp.astype(w, dtype, copy=False)
    rows, cols = geometry.rows, geometry.cols
    padding = ((-rows.lo, rows.hi - rows.size + 1), (-cols.lo, cols.hi - cols.size + 1))
    if geometry.inside or (options.boundary == "fill" and options.fillvalue == 0):
        xe = x  # negative padding crops what no window reads
    elif options.boundary == "fill":
        xe, padding = _extend(xp, x, geometry, options), ((0, 0), (0, 0))
    elif options.boundary == "edge" or all(
        0 <= n <= size - (options.boundary == "reflect")
        for (lo, hi), size in zip(padding, (rows.size, cols.size))
        for n in (lo, max(hi, 0))
    ):
        widths = [(0, 0)] * (x.ndim - 2) + [(lo, max(hi, 0)) for lo, hi in padding]
        mode = {"wrap": "wrap", "symm": "symmetric", "reflect": "reflect", "edge": "edge"}[options.boundary]
        xe, padding = xp.pad(x, widths, mode=mode), ((0, 0), (0, 0))
    else:
        xe, padding = toolkit.generic_extend(xp, x, geometry, options), ((0, 0), (0, 0))
    lhs = xe if xe.ndim == 4 else xe[None, ...]
    layout = "NHWC" if channels_last else "NCHW"
    y = lax.conv_general_dilated(
        lhs,
        w,
        window_strides=options.stride,
        padding=padding,
        rhs_dilation=options.dilation,
        dimension_numbers=(layout, "OIHW", layout),
        feature_group_count=groups,
        precision=lax.Precision.HIGHEST if precision is None else precision,
        preferred_element_type=preferred_element_type,
    )
    if tuple(y.shape[1:3] if channels_last else y.shape[-2:]) != (rows.count, cols.count):
        # a pad past the last window, unread
        y = y[:, : rows.count, : cols.count] if channels_last else y[..., : rows.count, : cols.count]
    return y if xe.ndim == 4 else y[0]


def channels_last_applies(xp, x, w, options, geometry) -> bool:
    """Whether ``correlate_multi`` takes an ``(N, H, W, C)`` input: real floating operands, and a zero
    fill or no extension read (the convolution's padding); the adapter leaves the others to the
    core's permuted views."""
    return real_floating(xp, x, w) and (geometry.inside or (options.boundary == "fill" and options.fillvalue == 0))


def correlate_multi_transpose(xp, x, w, plan):
    """``conv_transpose2d`` of real floating operands: ``lax.conv_general_dilated`` with ``lhs_dilation``
    (``lax.conv_transpose``'s form).

    The flipped kernel, regrouped to ``(C_out, C_in // groups, h, w)``,
    slides over the stride-dilated input padded by ``dilation * (k - 1)``
    less the crop (negative pads crop), plus ``output_padding`` after it; in
    ``NCHW`` or ``NHWC`` as the plan's layout says.
    """
    dtype = result_dtype(xp, x.dtype, w.dtype)
    x = xp.astype(x, dtype, copy=False)
    w = xp.astype(w, dtype, copy=False)
    c_in, og, h, wd = w.shape
    groups = plan.groups
    rhs = xp.reshape(xp.flip(w, axis=(-2, -1)), (groups, c_in // groups, og, h, wd))
    rhs = xp.reshape(xp.permute_dims(rhs, (0, 2, 1, 3, 4)), (groups * og, c_in // groups, h, wd))
    (dh, dw), ops = plan.options.dilation, plan.output_padding
    (top, bottom), (left, right) = plan.padding
    padding = (
        (dh * (h - 1) - top, dh * (h - 1) - bottom + ops[0]),
        (dw * (wd - 1) - left, dw * (wd - 1) - right + ops[1]),
    )
    layout = "NHWC" if plan.channels_last else "NCHW"
    lhs = x if x.ndim == 4 else x[None, ...]
    y = lax.conv_general_dilated(
        lhs,
        rhs,
        window_strides=(1, 1),
        padding=padding,
        lhs_dilation=plan.options.stride,
        rhs_dilation=plan.options.dilation,
        dimension_numbers=(layout, "OIHW", layout),
        feature_group_count=groups,
        precision=lax.Precision.HIGHEST,
    )
    return y if x.ndim == 4 else y[0]
