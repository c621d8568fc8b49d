"""Transposed convolution: the adjoint of the forward correlation.

``conv_transpose2d(x, w)`` is ``torch.nn.functional.conv_transpose2d``: every
input pixel ``x[n, c, i, j]`` scatters ``x * w[c, o, a, b]`` onto output
``(i*sh + a*dh - top, j*sw + b*dw - left)``. That scatter is the input
gradient of the valid correlation ``corr2d_multi(z, w, stride, dilation,
groups)`` on the uncropped extent ``Hf = (H - 1)*sh + dh*(h - 1) + 1``, so it
is computed by what computes that gradient: the adapters'
``correlate_multi_transpose`` (``F.conv_transpose2d`` on torch,
``lax.conv_general_dilated`` with ``lhs_dilation`` on jax, per-tap GEMMs on
numpy) or, generically, the input gradient of the broadcast ``corr2d``
(``xcorr._vjp``: a "full" correlation of the zero-inserted input). ``padding``
crops the uncropped result (the adjoint of zero-padding the forward input)
and ``output_padding`` adds rows and columns after it, which only the
scatter of pixels cropped by ``padding`` reaches.

Its gradients are forward correlations: the gradient with respect to ``x``
is ``corr2d_multi`` of the output gradient (zero-padded by ``padding``), and
the one with respect to ``w`` is the forward's kernel gradient with the roles
of input and output gradient swapped (``conv_transpose2d_vjp``). torch and
jax differentiate their native calls themselves.
"""

from __future__ import annotations

from dataclasses import replace

from ._call import validate_transpose
from ._compat import device
from ._composite import adapter_vjp, crop, pad_to_full
from ._direct import as_input_dtype, extend_axis, unbroadcast
from ._layout import to_first, to_last
from ._options import Call, plan
from ._prepared import correlate, half_vjp
from ._transpose_plan import TransposePlan, reduce_transpose
from ._typing import Array, DataFormat, Pair, TransposePadding

__all__ = [
    "TransposePlan",
    "conv_transpose2d",
    "conv_transpose2d_vjp",
    "corr2d_transpose",
    "corr2d_transpose_vjp",
]


def transpose_multi(call: Call, x, w, bias=None):
    """``conv_transpose2d`` of the validated call, by its adapter (on the inputs and taps that reach
    the output alone, where the uncropped extent is mostly cropped: ``reduce_transpose``)."""
    xp, tp = call.xp, call.transpose
    x, w, bias = call.cast(x, w, bias)  # xcorr's dtype rule, not the library's
    reduced = reduce_transpose(tp)
    if reduced is not None:
        return _reduced_multi(call, x, w, bias, reduced)
    if bias is None:
        return call.adapter.correlate_multi_transpose(xp, x, w, tp)
    return call.adapter.correlate_multi_transpose_bias(xp, x, w, bias, tp)


def conv_transpose2d(
    x: Array,
    w: Array,
    /,
    *,
    bias: Array | None = None,
    stride: Pair = 1,
    padding: TransposePadding = 0,
    output_padding: Pair = 0,
    dilation: Pair = 1,
    groups: int = 1,
    data_format: DataFormat = "channels_first",
) -> Array:
    """Transposed convolution of channels, as :func:`torch.nn.functional.conv_transpose2d`.

    The adjoint of ``corr2d_multi`` (zero padding ``padding``, stride,
    dilation, groups) with respect to its input: for every ``x`` and ``y``,
    ``sum(corr2d_multi(padded z, w) * x) == sum(z * conv_transpose2d(x, w))``
    ("fractionally strided" convolution: a decoder's learned upsampling).
    ``y[n, g*Og + o, i*sh + a*dh - top, j*sw + b*dw - left] += x[n, g*Cg + c,
    i, j] * w[g*Cg + c, o, a, b]``.

    Parameters
    ----------
    x : array, shape (N, C_in, H, W) or (C_in, H, W)
        Input, of any array-API library; ``(N, H, W, C_in)`` or ``(H, W,
        C_in)`` with ``data_format="channels_last"``.
    w : array, shape (C_in, C_out // groups, h, w)
        Filters in torch's ``ConvTranspose2d`` layout (in either data format).
    bias : array, shape (C_out,), optional
        Added to every position of each output channel (torch adds it inside
        ``F.conv_transpose2d``, as ``nn.ConvTranspose2d`` does); its dtype
        must promote to the output's.
    stride, dilation : int or (int, int), default 1
        Of the forward correlation this is the adjoint of.
    padding : int, (int, int), ((top, bottom), (left, right)), "SAME" or "VALID", default 0
        torch's ``padding``: the forward correlation's zero padding, which
        the transpose crops from its uncropped result
        ``(H - 1)*sh + dh*(h - 1) + 1`` rows high. Or lax's and Keras'
        names (any case): "SAME" gives ``H * sh`` rows, "VALID" the
        uncropped result (at least ``H * sh``); both set the
        ``output_padding`` themselves.
    output_padding : int or (int, int), default 0
        Rows and columns added after the crop (torch's ``output_padding``,
        which picks among the input sizes that a strided forward maps to
        one output size). Each must be smaller than the stride or the
        dilation of its axis.
    groups : int, default 1
        Must divide ``C_in``; the output has ``w.shape[1] * groups`` channels.
    data_format : {"channels_first", "channels_last"}, default "channels_first"
        ``(N, C, H, W)`` or ``(N, H, W, C)`` for ``x`` and the result.

    Returns
    -------
    array, shape (N, C_out, H_out, W_out) (or channels-last)
        ``H_out = (H - 1)*sh - top - bottom + dh*(h - 1) + output_padding + 1``;
        the dtype is the promotion of the two dtypes. torch computes it with
        ``F.conv_transpose2d``, jax with ``lax.conv_general_dilated``
        (``lhs_dilation``), numpy with one GEMM per kernel tap, other
        libraries with the generic input gradient of ``corr2d``; torch and
        jax differentiate it natively, ``conv_transpose2d_vjp`` gives the
        gradients elsewhere.

    Raises
    ------
    TypeError, ValueError
        Before any computation, naming the argument: arrays of the wrong
        rank or of two libraries, channels that do not match ``w.shape[0]``
        or that ``groups`` does not divide, negative or malformed
        ``padding``, ``output_padding`` not smaller than the stride or the
        dilation, a ``padding`` that crops the whole output, an unknown
        ``data_format``, a ``bias`` not of shape ``(C_out,)`` or of a dtype the
        output does not hold.

    Examples
    --------
    >>> import numpy as np
    >>> import xcorr
    >>> x = np.ones((1, 1, 2, 2))
    >>> w = np.ones((1, 1, 2, 2))
    >>> xcorr.conv_transpose2d(x, w, stride=2)[0, 0]
    array([[1., 1., 1., 1.],
           [1., 1., 1., 1.],
           [1., 1., 1., 1.],
           [1., 1., 1., 1.]])
    """
    return transpose_multi(validate_transpose(locals()), x, w, bias)


def _reduced_multi(call: Call, x, w, bias, reduced):
    """``conv_transpose2d`` of ``x[..., i0:i1, j0:j1]`` and ``w[..., a0:a1, b0:b1]``, cropped to the output."""
    xp, tp = call.xp, call.transpose
    sub, window, rr, rc = reduced
    if tp.channels_last:
        x = to_first(xp, x)
    if rr.empty or rc.empty:
        y = unreached(xp, (*x.shape[:-3], w.shape[1] * tp.groups, *tp.out_hw), call.dtype, x, w)
    else:
        xs = x[..., rr.i0 : rr.i1, rc.i0 : rc.i1]
        ws = w[..., rr.a0 : rr.a1, rc.a0 : rc.a1]
        y = crop(xp, call.adapter.correlate_multi_transpose(xp, xs, ws, sub), window)
    if bias is not None:
        y = y + xp.astype(bias, y.dtype)[:, None, None]
    return to_last(xp, y) if tp.channels_last else y


def unreached(xp, shape, dtype, *operands):
    """Zeros of ``shape``: the output of a transposed convolution that no input or tap reaches (all
    cropped), still a function of the ``operands`` (each one's empty slice, summed: no NaN reaches
    it) so that autodiff gives them zero gradients, as torch's and lax's transposed convolutions
    do, not none (a torch optimizer skips a parameter whose gradient is None, weight decay too)."""
    y = xp.zeros(shape, dtype=dtype, device=device(operands[0]))
    for a in operands:
        y = y + xp.sum(xp.astype(a[..., :0], dtype), dtype=dtype)  # numpy sums small ints as int64
    return y


def _pad_back(xp, a, reach_rows, reach_cols, shape):
    """``a`` (the reached rows and columns, or taps) placed in zeros of the last two sizes of ``shape``."""
    a = extend_axis(xp, a, -2, -reach_rows[0], shape[-2] - reach_rows[0] - 1, "fill", 0)
    return extend_axis(xp, a, -1, -reach_cols[0], shape[-1] - reach_cols[0] - 1, "fill", 0)


def transpose_multi_vjp(call: Call, x, w, g, *, need_x=True):
    """``(gx, gw)`` of ``conv_transpose2d`` of the validated call (``gx`` None unless ``need_x``)."""
    xp, tp = call.xp, call.transpose
    x, w, g = call.cast(x, w, cotangent=g)
    if tp.channels_last:
        x, g = to_first(xp, x), to_first(xp, g)
    reduced = reduce_transpose(tp)
    if reduced is not None:
        # Only the reached inputs and taps have a gradient: the others' scatter is all cropped.
        sub, window, rr, rc = reduced
        if rr.empty or rc.empty:
            gw = as_input_dtype(xp, xp.zeros(w.shape, dtype=call.dtype, device=device(w)), w)
            gx = as_input_dtype(xp, xp.zeros(x.shape, dtype=call.dtype, device=device(x)), x) if need_x else None
        else:
            xs = x[..., rr.i0 : rr.i1, rc.i0 : rc.i1]
            ws = w[..., rr.a0 : rr.a1, rc.a0 : rc.a1]
            sub_call = replace(call, geometry=sub.geometry, channels_last=False, transpose=sub)
            gx, gw = transpose_multi_vjp(sub_call, xs, ws, pad_to_full(xp, g, window), need_x=need_x)
            gw = _pad_back(xp, gw, (rr.a0, rr.a1), (rc.a0, rc.a1), tuple(w.shape))
            gx = None if gx is None else _pad_back(xp, gx, (rr.i0, rr.i1), (rc.i0, rc.i1), tuple(x.shape))
        if gx is not None and tp.channels_last:
            gx = to_last(xp, gx)
        return gx, gw
    z = pad_to_full(xp, g, tp)
    geometry = plan(tuple(z.shape[-2:]), tuple(w.shape[-2:]), tp.options)
    gx = None
    if need_x:
        # The gradient of a scatter is a gather: the forward correlation of g.
        gx = as_input_dtype(xp, call.adapter.correlate_multi(xp, z, w, tp.options, geometry, tp.groups), x)
        if tp.channels_last:
            gx = to_last(xp, gx)
    # The weight gradient of <x, corr(z, w)>: the forward's, x as its output gradient.
    _, gw = call.adapter.correlate_multi_vjp(xp, z, w, x, tp.options, geometry, tp.groups, False)
    return gx, gw


def conv_transpose2d_vjp(
    x: Array,
    w: Array,
    g: Array,
    /,
    *,
    stride: Pair = 1,
    padding: TransposePadding = 0,
    output_padding: Pair = 0,
    dilation: Pair = 1,
    groups: int = 1,
    data_format: DataFormat = "channels_first",
) -> tuple[Array, Array]:
    """Gradients ``(gx, gw)`` of ``conv_transpose2d(x, w, **options)`` for an output gradient ``g``.

    Pure array-API code (what numpy, array-api-strict and dask layers train
    with): ``gx`` is the forward correlation ``corr2d_multi`` of ``g``
    zero-padded by ``padding``, ``gw`` that correlation's kernel gradient
    with ``x`` as its output gradient.

    Parameters
    ----------
    x, w
        The operands of the forward call.
    g : array, shape of ``conv_transpose2d(x, w, **options)``
        Gradient of a scalar loss with respect to the output.
    stride, padding, output_padding, dilation, groups, data_format
        The options of the forward call.

    Returns
    -------
    gx : array, shape of ``x``
    gw : array, shape of ``w``

    Raises
    ------
    TypeError, ValueError
        As ``conv_transpose2d``, and ValueError when ``g`` does not have the
        output's shape.

    Examples
    --------
    >>> import numpy as np
    >>> import xcorr
    >>> x, w = np.ones((1, 2, 3, 3)), np.ones((2, 1, 2, 2))
    >>> y = xcorr.conv_transpose2d(x, w, stride=2)
    >>> gx, gw = xcorr.conv_transpose2d_vjp(x, w, np.ones_like(y), stride=2)
    >>> y.shape, gx.shape, gw.shape
    ((1, 1, 6, 6), (1, 2, 3, 3), (2, 1, 2, 2))
    >>> float(gx[0, 0, 0, 0]), float(gw[0, 0, 0, 0])
    (4.0, 9.0)
    """
    return half_vjp(validate_transpose(locals()), transpose_multi_vjp, x, w, g)


# -- one plane -----------------------------------------------------------------


def corr2d_transpose(
    x: Array,
    k: Array,
    /,
    *,
    stride: Pair = 1,
    padding: TransposePadding = 0,
    output_padding: Pair = 0,
    dilation: Pair = 1,
) -> Array:
    """The transpose of ``corr2d`` (one plane, or broadcast batches of planes) with respect to its input.

    ``y[..., i*sh + a*dh - top, j*sw + b*dw - left] += x[..., i, j] * k[..., a, b]``:
    ``conv_transpose2d`` of one channel, and the adjoint of a valid
    ``corr2d`` of a zero-padded input: ``sum(corr2d(pad(z), k, stride=s,
    dilation=d) * x) == sum(z * corr2d_transpose(x, k, stride=s,
    dilation=d, padding=p))``. Computed as ``corr2d_vjp``'s input gradient
    (a "full" correlation of the zero-inserted ``x``), on every backend,
    differentiable by torch and jax.

    Parameters
    ----------
    x : array, shape (..., H, W)
    k : array, shape (h, w) or (..., h, w), batch dimensions broadcasting with ``x``'s
    stride, padding, output_padding, dilation
        As in ``conv_transpose2d``.

    Returns
    -------
    array, shape (..., H_out, W_out)
        ``H_out = (H - 1)*sh - top - bottom + dh*(h - 1) + output_padding + 1``.

    Examples
    --------
    >>> import numpy as np
    >>> import xcorr
    >>> xcorr.corr2d_transpose(np.array([[1.0, 2.0]]), np.array([[1.0, 10.0]]), stride=(1, 3))
    array([[ 1., 10.,  0.,  2., 20.]])
    """
    call = validate_transpose(locals())
    xp, tp, geometry, dtype = call.xp, call.transpose, call.geometry, call.dtype
    xc = xp.astype(x, dtype, copy=False)
    kc = xp.astype(k, dtype, copy=False)
    reduced = reduce_transpose(tp)
    if reduced is not None:  # only the inputs and taps that reach the output (a huge crop)
        sub, window, rr, rc = reduced
        if rr.empty or rc.empty:
            return unreached(xp, (*geometry.batch, *tp.out_hw), dtype, xc, kc)
        xc = xc[..., rr.i0 : rr.i1, rc.i0 : rc.i1]
        kc = kc[..., rr.a0 : rr.a1, rc.a0 : rc.a1]
        return crop(xp, call.adapter.correlate_transpose(xp, xc, kc, sub), window)
    return call.adapter.correlate_transpose(xp, xc, kc, tp)


def corr2d_transpose_vjp(
    x: Array,
    k: Array,
    g: Array,
    /,
    *,
    stride: Pair = 1,
    padding: TransposePadding = 0,
    output_padding: Pair = 0,
    dilation: Pair = 1,
) -> tuple[Array, Array]:
    """Gradients ``(gx, gk)`` of ``corr2d_transpose(x, k, **options)`` for an output gradient ``g``.

    ``gx`` is ``corr2d`` of ``g`` zero-padded by ``padding`` (summed over
    the dimensions ``x`` was broadcast along), ``gk`` that correlation's
    kernel gradient with ``x`` as its output gradient.

    Parameters
    ----------
    x : array, shape (..., H, W)
        The input of the forward call.
    k : array, shape (h, w)
        The kernel of the forward call.
    g : array, shape of ``corr2d_transpose(x, k, **options)``
        Gradient of a scalar loss with respect to the output.
    stride : int or (int, int), default 1
        As in the forward call.
    padding : int, (int, int), ((int, int), (int, int)), "SAME" or "VALID", default 0
        As in the forward call.
    output_padding : int or (int, int), default 0
        As in the forward call.
    dilation : int or (int, int), default 1
        As in the forward call.

    Returns
    -------
    gx : array, shape of ``x``
    gk : array, shape of ``k``

    Examples
    --------
    >>> import numpy as np
    >>> import xcorr
    >>> x, k = np.ones((3, 3)), np.array([[1.0, 2.0], [3.0, 4.0]])
    >>> y = xcorr.corr2d_transpose(x, k, stride=2)
    >>> gx, gk = xcorr.corr2d_transpose_vjp(x, k, np.ones_like(y), stride=2)
    >>> y.shape, gx.tolist(), gk.tolist()
    ((6, 6), [[10.0, 10.0, 10.0], [10.0, 10.0, 10.0], [10.0, 10.0, 10.0]], [[9.0, 9.0], [9.0, 9.0]])
    """
    return half_vjp(validate_transpose(locals()), _transpose_vjp_of_call, x, k, g)


def _transpose_vjp_of_call(call: Call, x, k, g):
    xp, tp = call.xp, call.transpose
    x, k, g = call.cast(x, k, cotangent=g)
    reduced = reduce_transpose(tp)
    if reduced is not None:  # only the inputs and taps that reach the output have a gradient
        _, window, rr, rc = reduced
        if rr.empty or rc.empty:
            gx = xp.zeros(x.shape, dtype=call.dtype, device=device(x))
            gk = xp.zeros(k.shape, dtype=call.dtype, device=device(k))
            return as_input_dtype(xp, gx, x), as_input_dtype(xp, gk, k)
        xs = x[..., rr.i0 : rr.i1, rc.i0 : rc.i1]
        ks = k[..., rr.a0 : rr.a1, rc.a0 : rc.a1]
        z = pad_to_full(xp, g, window)
        gx, gk = _single_vjp(call, xs, ks, z, window.options, plan(tuple(z.shape), tuple(ks.shape), window.options))
        gx = _pad_back(xp, gx, (rr.i0, rr.i1), (rc.i0, rc.i1), tuple(x.shape))
        return gx, _pad_back(xp, gk, (rr.a0, rr.a1), (rc.a0, rc.a1), tuple(k.shape))
    z = pad_to_full(xp, g, tp)
    return _single_vjp(call, x, k, z, tp.options, call.geometry)


def _single_vjp(call: Call, x, k, z, options, geometry):
    """``(gx, gk)`` of ``corr2d_transpose`` given its output gradient ``z`` on the uncropped extent."""
    xp = call.xp
    gx = as_input_dtype(xp, unbroadcast(xp, correlate(call.adapter, z, k, options), tuple(x.shape)), x)
    xb = xp.broadcast_to(x, geometry.out_shape)
    _, gk = adapter_vjp(call.adapter, xp, z, k, xb, options, plan(tuple(z.shape), tuple(k.shape), options), False, True)
    return gx, gk
