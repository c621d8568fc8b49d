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

import operator
from dataclasses import dataclass

from . import _vjp
from ._adapter import adapter_for
from ._generic import extend_axis
from ._layout import check_last, parse_data_format, to_first, to_last
from ._options import (
    MAX_AXIS,
    Geometry,
    Options,
    check_arrays,
    parse_int,
    parse_pair,
    plan,
    result_dtype,
)
from ._typing import Array, DataFormat, Pair, TransposePadding

__all__ = [
    "TransposePlan",
    "conv_transpose2d",
    "conv_transpose2d_vjp",
    "corr2d_transpose",
    "corr2d_transpose_vjp",
]

Padding = tuple[tuple[int, int], tuple[int, int]]


@dataclass(frozen=True)
class TransposePlan:
    """One transposed convolution, validated (``Adapter.correlate_multi_transpose``'s argument).

    ``options`` and ``geometry`` are the forward correlation's (valid, zero
    fill) on the uncropped extent: ``geometry.rows.size`` is ``Hf``,
    ``geometry.rows.count`` the input height ``H``. The output keeps rows
    ``[top, top + out_rows)`` of the uncropped result, zeros past its end.
    """

    options: Options
    geometry: Geometry
    groups: int
    padding: Padding
    output_padding: tuple[int, int]
    channels_last: bool

    @property
    def out_hw(self) -> tuple[int, int]:
        (top, bottom), (left, right) = self.padding
        rows, cols = self.geometry.rows, self.geometry.cols
        return (
            rows.size - top - bottom + self.output_padding[0],
            cols.size - left - right + self.output_padding[1],
        )

    @property
    def torch_padding(self) -> tuple[int, int] | None:
        """``(ph, pw)`` where the padding is symmetric (torch's form), else None."""
        (top, bottom), (left, right) = self.padding
        return (top, left) if (top, left) == (bottom, right) else None


STRING_PADDINGS = ("SAME", "VALID")


def parse_padding(padding: object) -> Padding | str:
    """An int, a pair ``(ph, pw)`` or a pair of pairs ``((top, bottom), (left, right))``, each >= 0;
    or "SAME" / "VALID" in any case (returned upper-case, for :func:`resolve_padding`)."""
    msg = (
        "padding of a transposed convolution must be an int, a pair (ph, pw) or a pair of pairs "
        f"((top, bottom), (left, right)) of ints >= 0, or 'SAME' or 'VALID'; got {padding!r}"
    )

    def number(value) -> int:
        if isinstance(value, bool):
            raise TypeError(msg)
        try:
            n = operator.index(value)
        except TypeError:
            raise TypeError(msg) from None
        if n < 0:
            raise ValueError(msg)
        return n

    if isinstance(padding, str):
        if padding.upper() not in STRING_PADDINGS:
            raise ValueError(msg)
        return padding.upper()
    if not isinstance(padding, (tuple, list)):
        n = number(padding)
        return ((n, n), (n, n))
    if len(padding) != 2:
        raise ValueError(msg)
    axes = []
    for item in padding:
        if isinstance(item, (tuple, list)):
            if len(item) != 2:
                raise ValueError(msg)
            axes.append((number(item[0]), number(item[1])))
        else:
            n = number(item)
            axes.append((n, n))
    return (axes[0], axes[1])


def resolve_padding(
    padding: Padding | str, output_padding: object, kernel: tuple[int, int], stride, dilation
) -> tuple[Padding, tuple[int, int]]:
    """``(padding, output_padding)`` as numbers, for a parsed ``padding`` and a ``kernel`` of ``(h, w)`` taps.

    lax's and Keras' "SAME" and "VALID" give, per axis with the dilated span
    ``K = d * (k - 1) + 1`` and stride ``s``: an output of ``H * s``
    ("SAME": ``P = max(K - s, 0)`` cropped, ``P // 2`` before) or of
    ``H * s + max(K - s, 0)`` ("VALID": nothing cropped), and an
    ``output_padding`` of ``max(s - K, 0)`` for both, which is why a string
    padding takes no ``output_padding`` of its own.
    """
    if not isinstance(padding, str):
        return padding, parse_output_padding(output_padding, stride, dilation)
    given = parse_pair("output_padding", output_padding, minimum=0)
    if given != (0, 0):
        msg = f"padding={padding!r} implies the output_padding (lax's and Keras' rule); got output_padding={given}"
        raise ValueError(msg)
    pads, extra = [], []
    for k, s, d in zip(kernel, stride, dilation):
        span = d * (k - 1) + 1
        total = max(span - s, 0) if padding == "SAME" else 0
        pads.append((total // 2, total - total // 2))
        extra.append(max(s - span, 0))
    return (pads[0], pads[1]), (extra[0], extra[1])


def parse_output_padding(output_padding: object, stride, dilation) -> tuple[int, int]:
    """``output_padding`` as a pair; each entry smaller than the stride or the dilation of its axis."""
    pair = parse_pair("output_padding", output_padding, minimum=0)
    for axis, op, s, d in zip(("rows", "columns"), pair, stride, dilation):
        if not (op < s or op < d):
            msg = (
                f"output_padding {pair} must be smaller than the stride {tuple(stride)} or the "
                f"dilation {tuple(dilation)} along each axis (torch's rule); along the {axis} it is "
                f"{op}, the stride {s} and the dilation {d}"
            )
            raise ValueError(msg)
    return pair


def plan_transpose(
    hw: tuple[int, int],
    kernel: tuple[int, int],
    stride,
    dilation,
    padding: Padding,
    output_padding,
    groups,
    channels_last,
) -> TransposePlan:
    """The plan of an input of spatial size ``hw`` and a kernel of ``kernel`` (checks the output size)."""
    (H, W), (h, w) = hw, kernel
    if h == 0 or w == 0:
        msg = f"w must not be empty; got kernel size {(h, w)}"
        raise ValueError(msg)
    if H == 0 or W == 0:
        msg = f"x must not be empty in its spatial dimensions; got size {(H, W)}"
        raise ValueError(msg)
    full = tuple(
        (n - 1) * s + d * (k - 1) + 1
        for n, s, d, k in zip((H, W), stride, dilation, (h, w))
    )
    if max(full) > MAX_AXIS:
        msg = (
            f"the transposed convolution of an input of size {(H, W)} with kernel {(h, w)}, stride "
            f"{tuple(stride)} and dilation {tuple(dilation)} would have size {full} before the crop: beyond "
            f"xcorr's limit of 2**31 - 1 = {MAX_AXIS} per axis (the int32 range)"
        )
        raise ValueError(msg)
    options = Options(stride=tuple(stride), dilation=tuple(dilation))
    geometry = plan(full, (h, w), options)
    tp = TransposePlan(
        options, geometry, groups, padding, tuple(output_padding), channels_last
    )
    if min(tp.out_hw) < 1:
        msg = (
            f"padding {padding} crops the whole output: an input of size {(H, W)} with kernel {(h, w)}, "
            f"stride {tuple(stride)} and dilation {tuple(dilation)} gives {full} before the crop, "
            f"{tp.out_hw} after it (output_padding {tuple(output_padding)})"
        )
        raise ValueError(msg)
    return tp


def check_transpose_multi(
    x, w, stride, padding, output_padding, dilation, groups, data_format
):
    """Check the arguments of ``conv_transpose2d``; return the namespace and the plan."""
    channels_last = parse_data_format(data_format)
    stride = parse_pair("stride", stride)
    dilation = parse_pair("dilation", dilation)
    parsed = parse_padding(padding)
    groups = parse_int("groups", groups)
    xp = check_arrays(x, w, k_name="w")
    if w.ndim != 4:
        msg = f"w must have shape (C_in, C_out // groups, h, w); got shape {tuple(w.shape)}"
        raise ValueError(msg)
    padding, output_padding = resolve_padding(parsed, output_padding, tuple(w.shape[-2:]), stride, dilation)
    c_in = w.shape[0]
    if channels_last:
        check_last(x, w, channels=c_in)
    elif x.ndim not in (3, 4):
        msg = f"x must have shape (N, C_in, H, W) or (C_in, H, W); got shape {tuple(x.shape)}"
        raise ValueError(msg)
    elif x.shape[-3] != c_in:
        msg = (
            f"x has {x.shape[-3]} channels (shape {tuple(x.shape)}) but w of shape {tuple(w.shape)} "
            "expects w.shape[0] (a transposed convolution's weight is (C_in, C_out // groups, h, w))"
        )
        raise ValueError(msg)
    if c_in % groups:
        msg = f"groups={groups} must divide the input channels ({c_in}, w.shape[0] of w of shape {tuple(w.shape)})"
        raise ValueError(msg)
    result_dtype(
        xp, x.dtype, w.dtype
    )  # a TypeError where the library has no common dtype
    hw = tuple(x.shape[-3:-1]) if channels_last else tuple(x.shape[-2:])
    tp = plan_transpose(
        hw,
        tuple(w.shape[-2:]),
        stride,
        dilation,
        padding,
        output_padding,
        groups,
        channels_last,
    )
    return xp, tp


def out_shape(x, w, tp: TransposePlan) -> tuple[int, ...]:
    c_out = w.shape[1] * tp.groups
    if tp.channels_last:
        return (*x.shape[:-3], *tp.out_hw, c_out)
    return (*x.shape[:-3], c_out, *tp.out_hw)


class _Like:
    """The shape and dtype of a forward input that the input gradient never reads."""

    def __init__(self, shape: tuple[int, ...], dtype):
        self.shape = shape
        self.dtype = dtype
        self.ndim = len(shape)


def crop(xp, full, tp: TransposePlan):
    """The output's rows and columns of the uncropped result (zeros past its end)."""
    (top, _), (left, _) = tp.padding
    rows, cols = tp.out_hw
    y = extend_axis(xp, full, -2, top, top + rows - 1, "fill", 0)
    return extend_axis(xp, y, -1, left, left + cols - 1, "fill", 0)


def pad_to_full(xp, g, tp: TransposePlan):
    """The adjoint of :func:`crop`: ``g`` placed in the uncropped extent, zeros around it."""
    (top, _), (left, _) = tp.padding
    rows, cols = tp.geometry.rows, tp.geometry.cols
    z = extend_axis(xp, g, -2, -top, rows.size - 1 - top, "fill", 0)
    return extend_axis(xp, z, -1, -left, cols.size - 1 - left, "fill", 0)


def finish(xp, full, tp: TransposePlan):
    """Crop the uncropped channels-first result and give it the plan's layout."""
    y = crop(xp, full, tp)
    return to_last(xp, y) if tp.channels_last else y


def generic_transpose(adapter, xp, x, w, tp: TransposePlan):
    """``Adapter.correlate_multi_transpose``'s generic implementation.

    The input gradient of the broadcast ``corr2d`` that ``corr2d_multi``
    computes generically: ``x`` as ``(N, G, C_in/G, 1, H, W)`` output
    gradient, ``w`` as ``(G, C_in/G, C_out/G, h, w)``, summed over the input
    channels of each group (``xcorr._vjp``'s "full" correlation of the
    zero-inserted ``x``).
    """
    if tp.channels_last:
        x = to_first(xp, x)
    dtype = result_dtype(xp, x.dtype, w.dtype)
    x = xp.astype(x, dtype, copy=False)
    w = xp.astype(w, dtype, copy=False)
    xb = x if x.ndim == 4 else xp.expand_dims(x, axis=0)
    n, c_in, H, W = xb.shape
    groups = tp.groups
    cg, og, h, wd = c_in // groups, w.shape[1], w.shape[2], w.shape[3]
    rows, cols = tp.geometry.rows, tp.geometry.cols
    gg = xp.reshape(xb, (n, groups, cg, 1, H, W))
    wg = xp.reshape(w, (groups, cg, og, h, wd))
    like = _Like((n, groups, 1, og, rows.size, cols.size), dtype)
    geometry = plan(like.shape, tuple(wg.shape), tp.options)
    ge = _vjp._input_gradient(xp, like, wg, gg, tp.options, geometry)
    full = xp.reshape(ge, (n, groups * og, rows.size, cols.size))
    return finish(xp, full if x.ndim == 4 else full[0, ...], tp)


def transpose_multi(xp, x, w, tp: TransposePlan, bias=None):
    """``conv_transpose2d`` of validated arguments, by the adapter of ``xp``."""
    if bias is None:
        return adapter_for(xp).correlate_multi_transpose(xp, x, w, tp)
    return adapter_for(xp).correlate_multi_transpose_bias(xp, x, w, bias, tp)


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
    """Transposed convolution of channels, as ``torch.nn.functional.conv_transpose2d``.

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
    xp, tp = check_transpose_multi(
        x, w, stride, padding, output_padding, dilation, groups, data_format
    )
    if bias is not None:
        from ._multi import check_bias

        check_bias(xp, bias, x, w, out_channels=w.shape[1] * tp.groups)
    return transpose_multi(xp, x, w, tp, bias)


def transpose_multi_vjp(xp, x, w, g, tp: TransposePlan, *, need_x=True):
    """``(gx, gw)`` of ``conv_transpose2d`` of validated arguments (``gx`` None unless ``need_x``)."""
    from ._multi import correlate_multi, multi_vjp

    if tp.channels_last:
        x, g = to_first(xp, x), to_first(xp, g)
    z = pad_to_full(xp, g, tp)
    gx = None
    if need_x:
        # The gradient of a scatter is a gather: the forward correlation of g.
        geometry = plan(tuple(z.shape[-2:]), tuple(w.shape[-2:]), tp.options)
        gx = _vjp.as_input_dtype(
            xp, correlate_multi(xp, z, w, tp.options, geometry, tp.groups), x
        )
        if tp.channels_last:
            gx = to_last(xp, gx)
    # The weight gradient of <x, corr(z, w)>: the forward's, x as its output gradient.
    _, gw = multi_vjp(xp, z, w, x, tp.options, tp.groups, need_x=False)
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
    """
    xp, tp = check_transpose_multi(
        x, w, stride, padding, output_padding, dilation, groups, data_format
    )
    check_arrays(x, g, k_name="g")
    out = out_shape(x, w, tp)
    if tuple(g.shape) != out:
        msg = f"g must have the shape of the output, {out}; got shape {tuple(g.shape)}"
        raise ValueError(msg)
    return transpose_multi_vjp(xp, x, w, g, tp)


# -- one plane -----------------------------------------------------------------


def _check_single(x, k, stride, padding, output_padding, dilation):
    stride = parse_pair("stride", stride)
    dilation = parse_pair("dilation", dilation)
    parsed = parse_padding(padding)
    xp = check_arrays(x, k)
    if x.ndim < 2:
        msg = (
            f"x must have at least 2 dimensions (..., H, W); got shape {tuple(x.shape)}"
        )
        raise ValueError(msg)
    if k.ndim < 2:
        msg = (
            f"k must have at least 2 dimensions (..., h, w); got shape {tuple(k.shape)}"
        )
        raise ValueError(msg)
    padding, output_padding = resolve_padding(parsed, output_padding, tuple(k.shape[-2:]), stride, dilation)
    dtype = result_dtype(xp, x.dtype, k.dtype)
    tp = plan_transpose(
        tuple(x.shape[-2:]),
        tuple(k.shape[-2:]),
        stride,
        dilation,
        padding,
        output_padding,
        1,
        False,
    )
    rows, cols = tp.geometry.rows, tp.geometry.cols
    # The forward input has the broadcast batch of x (its output gradient) and k.
    geometry = plan((*x.shape[:-2], rows.size, cols.size), tuple(k.shape), tp.options)
    like = _Like((*geometry.batch, rows.size, cols.size), dtype)
    return xp, tp, like, geometry


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
    xp, tp, like, geometry = _check_single(
        x, k, stride, padding, output_padding, dilation
    )
    dtype = like.dtype
    xc = xp.astype(x, dtype, copy=False)
    kc = xp.astype(k, dtype, copy=False)
    full = _vjp._input_gradient(xp, like, kc, xc, tp.options, geometry)
    return crop(xp, full, tp)


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
    """
    from ._correlate import _correlate

    xp, tp, _, geometry = _check_single(x, k, stride, padding, output_padding, dilation)
    check_arrays(x, g, k_name="g")
    out = (*geometry.batch, *tp.out_hw)
    if tuple(g.shape) != out:
        msg = f"g must have the shape of the output, {out}; got shape {tuple(g.shape)}"
        raise ValueError(msg)
    z = pad_to_full(xp, g, tp)
    gx = _vjp.unbroadcast(xp, _correlate(z, k, tp.options), tuple(x.shape))
    gx = _vjp.as_input_dtype(xp, gx, x)
    xb = xp.broadcast_to(x, geometry.out_shape)
    _, gk = _vjp.vjp(
        xp,
        z,
        k,
        xb,
        tp.options,
        plan(tuple(z.shape), tuple(k.shape), tp.options),
        need_x=False,
    )
    return gx, gk
