"""Transposed 1-D convolutions: thin fronts over the 2-D transposed functions, as ``_one_d`` is over
the 2-D correlations. The arguments are checked here in 1-D terms (shapes, channels, padding, the
output's length); the one-row 2-D call then has nothing left to refuse that its messages would
name in 2-D shapes."""

from __future__ import annotations

from ._call import check_bias
from ._fronts import check_g
from ._layout import parse_data_format
from ._one_d import Single, _single, one_row
from ._options import broadcast_batch, check_arrays, result_dtype
from ._padding import parse_int, transpose_pads
from ._transpose import conv_transpose2d, conv_transpose2d_vjp, corr2d_transpose, corr2d_transpose_vjp
from ._transpose_plan import transposed_sizes
from ._typing import Array, DataFormat

__all__ = ["conv_transpose1d", "conv_transpose1d_vjp", "corr1d_transpose", "corr1d_transpose_vjp"]

#: A 1-D transposed ``padding=``: an int for both ends, ``(left, right)``, or "SAME" / "VALID".
TransposePadding1D = int | tuple[int, int] | list[int] | str


def _length(L: int, taps: int, s: int, d: int, padding, output_padding, batch=(), channels_last=False) -> tuple[int, dict]:
    """The output length of a transposed 1-D convolution, and the 2-D call's padding keywords."""
    _single("output_padding", output_padding, 0)  # before the padding, as the 1-D functions always checked it
    (pair,), (op,) = transpose_pads(padding, output_padding, (taps,), (s,), (d,))
    _, (out,) = transposed_sizes((L,), (taps,), (s,), (d,), (pair,), (op,), batch, channels_last=channels_last)
    return out, {"padding": ((0, 0), pair), "output_padding": (0, op)}


def _check_multi(x, w, g, bias, stride, padding, output_padding, dilation, groups, data_format):
    """The namespace, whether channels-last, and the one-row call's keywords of ``conv_transpose1d``."""
    channels_last = parse_data_format(data_format)
    xp = check_arrays(x, w, k_name="w")
    layout = "(N, L, C_in) or (L, C_in)" if channels_last else "(N, C_in, L) or (C_in, L)"
    if x.ndim not in (2, 3):
        raise ValueError(f"x must have shape {layout}; got shape {tuple(x.shape)}")
    if w.ndim != 3:
        raise ValueError(f"w must have shape (C_in, C_out // groups, l); got shape {tuple(w.shape)}")
    groups = parse_int("groups", groups)
    c_in, c_x = w.shape[0], x.shape[-1 if channels_last else -2]
    if c_x != c_in:
        msg = (
            f"x has {c_x} channels (shape {tuple(x.shape)}) but w of shape {tuple(w.shape)} expects w.shape[0] "
            "(a transposed convolution's weight is (C_in, C_out // groups, l))"
        )
        raise ValueError(msg)
    if c_in % groups:
        raise ValueError(f"groups={groups} must divide the input channels ({c_in}, w.shape[0] of w of shape {tuple(w.shape)})")
    result_dtype(xp, x.dtype, w.dtype)  # a TypeError where the library has no common dtype
    if bias is not None:
        check_bias(xp, bias, x, w, out_channels=w.shape[1] * groups, x_checked=True)
    s, d = _single("stride", stride), _single("dilation", dilation)
    L = x.shape[-2 if channels_last else -1]
    out, pads = _length(L, w.shape[-1], s, d, padding, output_padding, (*x.shape[:-2], w.shape[1] * groups), channels_last)
    if g is not None:
        c_out = w.shape[1] * groups
        shape = (*x.shape[:-2], out, c_out) if channels_last else (*x.shape[:-2], c_out, out)
        check_g(x, g, shape, ' (data_format="channels_last")' if channels_last else "")
    keywords = {"stride": (1, s), "dilation": (1, d), "groups": groups, "data_format": data_format, **pads}
    return xp, -3 if channels_last else -2, keywords


def _check_single(x, k, g, stride, padding, output_padding, dilation):
    """The namespace and the one-row call's keywords of ``corr1d_transpose``."""
    xp = check_arrays(x, k)
    for name, a, shape in (("x", x, "(..., L)"), ("k", k, "(l,) or (..., l)")):
        if a.ndim < 1:
            raise ValueError(f"{name} must have at least 1 dimension, shape {shape}; got shape {tuple(a.shape)}")
    s, d = _single("stride", stride), _single("dilation", dilation)
    batch = broadcast_batch(x.shape, k.shape, 1)
    out, pads = _length(x.shape[-1], k.shape[-1], s, d, padding, output_padding, batch)
    if g is not None:
        check_g(x, g, (*batch, out))
    return xp, {"stride": (1, s), "dilation": (1, d), **pads}


def conv_transpose1d(
    x: Array,
    w: Array,
    /,
    *,
    bias: Array | None = None,
    stride: Single = 1,
    padding: TransposePadding1D = 0,
    output_padding: Single = 0,
    dilation: Single = 1,
    groups: int = 1,
    data_format: DataFormat = "channels_first",
) -> Array:
    """Transposed convolution of channels, as :func:`torch.nn.functional.conv_transpose1d`.

    The adjoint of ``corr1d_multi`` (zero padding, stride, dilation, groups) with respect to its
    input: ``y[n, g*Og + o, i*s + a*d - left] += x[n, g*Cg + c, i] * w[g*Cg + c, o, a]``. A thin
    front of ``xcorr.conv_transpose2d`` on one-row signals.

    Parameters
    ----------
    x : array, shape (N, C_in, L) or (C_in, L)
        Input of any array-API library; ``(N, L, C_in)`` or ``(L, C_in)`` channels-last.
    w : array, shape (C_in, C_out // groups, l)
        Filters in torch's ``ConvTranspose1d`` layout (in either data format).
    bias : array, shape (C_out,), optional
        Added to every position of each output channel.
    stride : int or (int,), default 1
        The stride of the forward correlation this is the adjoint of (the upsampling factor).
    padding : int, (int, int), "SAME" or "VALID", default 0
        torch's ``padding``: samples cropped from each end of the uncropped result
        ``(L - 1)*s + d*(l - 1) + 1`` long, or ``(left, right)``; lax's and Keras' "SAME" (``L *
        s`` samples) and "VALID" (the uncropped result, at least ``L * s``) set the
        ``output_padding`` themselves.
    output_padding : int or (int,), default 0
        Samples added after the crop (smaller than the stride or the dilation).
    dilation : int or (int,), default 1
        Spacing between kernel taps.
    groups : int, default 1
        Must divide ``C_in``; the output has ``w.shape[1] * groups`` channels.
    data_format : {"channels_first", "channels_last"}, default "channels_first"
        ``(N, C, L)`` or ``(N, L, C)`` for ``x`` and the result.

    Returns
    -------
    array, shape (N, C_out, L_out) (or channels-last)
        ``L_out = (L - 1)*s - left - right + d*(l - 1) + output_padding + 1``.

    Raises
    ------
    TypeError, ValueError
        Before any computation, in 1-D terms: arrays of the wrong rank or of two libraries,
        channels that do not match ``w.shape[0]`` or that ``groups`` does not divide, a malformed
        ``padding``, ``output_padding`` not smaller than the stride or the dilation, a padding
        that crops the whole output, a ``bias`` not of shape ``(C_out,)``.

    Examples
    --------
    >>> import numpy as np
    >>> import xcorr
    >>> xcorr.conv_transpose1d(np.ones((1, 1, 3)), np.ones((1, 1, 2)), stride=2).tolist()
    [[[1.0, 1.0, 1.0, 1.0, 1.0, 1.0]]]
    """
    _, axis, keywords = _check_multi(x, w, None, bias, stride, padding, output_padding, dilation, groups, data_format)
    row, unrow = one_row(axis == -3)
    return unrow(conv_transpose2d(row(x), w[..., None, :], bias=bias, **keywords))


def conv_transpose1d_vjp(
    x: Array,
    w: Array,
    g: Array,
    /,
    *,
    stride: Single = 1,
    padding: TransposePadding1D = 0,
    output_padding: Single = 0,
    dilation: Single = 1,
    groups: int = 1,
    data_format: DataFormat = "channels_first",
) -> tuple[Array, Array]:
    """Gradients ``(gx, gw)`` of ``conv_transpose1d(x, w, **options)`` for an output gradient ``g``.

    ``xcorr.conv_transpose2d_vjp`` on one-row signals: ``gx`` is the forward correlation of ``g``,
    ``gw`` that correlation's kernel gradient with ``x`` as its output gradient.

    Parameters
    ----------
    x : array, shape (N, C_in, L) or (C_in, L)
        The input of the forward call (channels-last with ``data_format``).
    w : array, shape (C_in, C_out // groups, l)
        The filters of the forward call.
    g : array, the shape of ``conv_transpose1d(x, w, **options)``
        Gradient of a scalar loss with respect to the output.
    stride : int or (int,), default 1
        The forward call's stride.
    padding : int, (int, int), "SAME" or "VALID", default 0
        The forward call's padding.
    output_padding : int or (int,), default 0
        The forward call's output padding.
    dilation : int or (int,), default 1
        The forward call's dilation.
    groups : int, default 1
        The forward call's groups.
    data_format : {"channels_first", "channels_last"}, default "channels_first"
        The layout of ``x`` and ``g``.

    Returns
    -------
    gx : array, shape of ``x``
    gw : array, shape of ``w``

    Examples
    --------
    >>> import numpy as np
    >>> import xcorr
    >>> x, w = np.ones((1, 1, 3)), np.ones((1, 1, 2))
    >>> gx, gw = xcorr.conv_transpose1d_vjp(x, w, np.ones((1, 1, 6)), stride=2)
    >>> gx.tolist(), gw.tolist()
    ([[[2.0, 2.0, 2.0]]], [[[3.0, 3.0]]])
    """
    _, axis, keywords = _check_multi(x, w, g, None, stride, padding, output_padding, dilation, groups, data_format)
    row, unrow = one_row(axis == -3)
    gx, gw = conv_transpose2d_vjp(row(x), w[..., None, :], row(g), **keywords)
    return unrow(gx), gw[..., 0, :]


def corr1d_transpose(
    x: Array,
    k: Array,
    /,
    *,
    stride: Single = 1,
    padding: TransposePadding1D = 0,
    output_padding: Single = 0,
    dilation: Single = 1,
) -> Array:
    """The transpose of ``corr1d`` (signals, or broadcast batches of them) with respect to its input.

    ``y[..., i*s + a*d - left] += x[..., i] * k[..., a]``: ``conv_transpose1d`` of one channel,
    and the adjoint of a valid ``corr1d`` of a zero-padded input. ``xcorr.corr2d_transpose`` on
    one-row signals.

    Parameters
    ----------
    x : array, shape (..., L)
        Input signal(s) of any array-API library.
    k : array, shape (l,) or (..., l)
        Kernel(s); leading dimensions broadcast against those of ``x``.
    stride : int or (int,), default 1
        The stride of the forward correlation (the upsampling factor).
    padding : int, (int, int), "SAME" or "VALID", default 0
        Samples cropped from the ends of the uncropped result, as in ``conv_transpose1d``.
    output_padding : int or (int,), default 0
        Samples added after the crop (smaller than the stride or the dilation).
    dilation : int or (int,), default 1
        Spacing between kernel taps.

    Returns
    -------
    array, shape (..., L_out)
        ``L_out = (L - 1)*s - left - right + d*(l - 1) + output_padding + 1``.

    Examples
    --------
    >>> import numpy as np
    >>> import xcorr
    >>> xcorr.corr1d_transpose(np.array([1.0, 2.0]), np.array([1.0, 10.0]), stride=3).tolist()
    [1.0, 10.0, 0.0, 2.0, 20.0]
    """
    _, keywords = _check_single(x, k, None, stride, padding, output_padding, dilation)
    return corr2d_transpose(x[..., None, :], k[..., None, :], **keywords)[..., 0, :]


def corr1d_transpose_vjp(
    x: Array,
    k: Array,
    g: Array,
    /,
    *,
    stride: Single = 1,
    padding: TransposePadding1D = 0,
    output_padding: Single = 0,
    dilation: Single = 1,
) -> tuple[Array, Array]:
    """Gradients ``(gx, gk)`` of ``corr1d_transpose(x, k, **options)`` for an output gradient ``g``.

    ``xcorr.corr2d_transpose_vjp`` on one-row signals: ``gx`` is ``corr1d`` of ``g`` zero-padded by
    ``padding`` (summed over the dimensions ``x`` was broadcast along), ``gk`` that correlation's
    kernel gradient with ``x`` as its output gradient.

    Parameters
    ----------
    x : array, shape (..., L)
        The input of the forward call.
    k : array, shape (l,) or (..., l)
        The kernel of the forward call.
    g : array, the shape of ``corr1d_transpose(x, k, **options)``
        Gradient of a scalar loss with respect to the output.
    stride : int or (int,), default 1
        The forward call's stride.
    padding : int, (int, int), "SAME" or "VALID", default 0
        The forward call's padding.
    output_padding : int or (int,), default 0
        The forward call's output padding.
    dilation : int or (int,), default 1
        The forward call's dilation.

    Returns
    -------
    gx : array, shape of ``x``
    gk : array, shape of ``k``

    Examples
    --------
    >>> import numpy as np
    >>> import xcorr
    >>> x, k = np.ones(3), np.array([1.0, 2.0])
    >>> gx, gk = xcorr.corr1d_transpose_vjp(x, k, np.ones(6), stride=2)
    >>> gx.tolist(), gk.tolist()
    ([3.0, 3.0, 3.0], [3.0, 3.0])
    """
    _, keywords = _check_single(x, k, g, stride, padding, output_padding, dilation)
    gx, gk = corr2d_transpose_vjp(x[..., None, :], k[..., None, :], g[..., None, :], **keywords)
    return gx[..., 0, :], gk[..., 0, :]
