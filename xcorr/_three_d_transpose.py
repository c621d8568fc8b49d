"""Transposed 3-D convolutions: the scatter of every input voxel ``x * w`` onto the output, as a
sum over the kernel's depth taps of 2-D transposed convolutions.

Depth tap ``j`` is one ``xcorr.conv_transpose2d`` (or ``corr2d_transpose``) call with the input's
depths laid along the batch and the kernel's plane ``w[:, :, j]``; its planes land at the output
depths ``i*sd + j*dd`` of the uncropped result ``(D - 1)*sd + dd*(kd - 1) + 1`` deep, placed with
array-API operations only (zero insertion for the stride, zero blocks joined by ``concat`` for the
offset), summed over ``j``, then cropped by the depth ``padding`` and extended by its
``output_padding`` (the height and width are the 2-D call's). The VJPs are the gathers: the output
gradient is padded back to the uncropped depth, tap ``j`` reads its strided depth slice and the
2-D VJP gives that tap's input and kernel gradients. The arguments are checked here first, in 3-D
terms.
"""

from __future__ import annotations

from dataclasses import dataclass

from ._call import check_bias
from ._direct import extend_axis
from ._fronts import check_g
from ._layout import parse_data_format
from ._options import broadcast_batch, check_arrays, result_dtype
from ._padding import parse_int, transpose_pads
from ._three_d import Triple, _depth_tap, _reshaped, _volumes, on_depths, rounded, widened
from ._three_d_checks import _triple
from ._transpose import conv_transpose2d, conv_transpose2d_vjp, corr2d_transpose, corr2d_transpose_vjp
from ._transpose_plan import transposed_sizes
from ._typing import Array, DataFormat

__all__ = ["conv_transpose3d", "conv_transpose3d_vjp", "corr3d_transpose", "corr3d_transpose_vjp"]

#: A 3-D transposed ``padding=``: an int for every side, 3 ints or ``(before, after)`` pairs, "SAME" or "VALID".
TransposePadding3D = int | tuple | list | str


@dataclass(frozen=True)
class _Depth:
    """The depth axis of a checked transposed call: input depth, taps, stride, dilation, the crop
    in front and the output depth."""

    n: int
    taps: int
    step: int
    dilation: int
    front: int
    out: int

    @property
    def full(self) -> int:
        """The uncropped depth ``(D - 1)*sd + dd*(kd - 1) + 1``."""
        return (self.n - 1) * self.step + self.dilation * (self.taps - 1) + 1


# -- the checks, in 3-D terms -------------------------------------------------------------------


def _plan(sizes, taps, stride, dilation, padding, output_padding, batch, channels_last=False):
    """``(depth, outs, keywords)``: the depth plan, the output size per axis and the 2-D keywords."""
    strides, dilations = _triple("stride", stride), _triple("dilation", dilation)
    pairs, ops = transpose_pads(padding, output_padding, taps, strides, dilations)
    _, outs = transposed_sizes(sizes, taps, strides, dilations, pairs, ops, batch, channels_last=channels_last)
    depth = _Depth(sizes[0], taps[0], strides[0], dilations[0], pairs[0][0], outs[0])
    keywords = {
        "stride": strides[1:], "dilation": dilations[1:], "padding": pairs[1:], "output_padding": ops[1:],
    }  # fmt: skip
    return depth, outs, keywords


def _check_multi(x, w, g, bias, stride, padding, output_padding, dilation, groups, data_format):
    """The namespace, whether channels-last, the depth plan and the 2-D keywords of ``conv_transpose3d``."""
    last = parse_data_format(data_format)
    xp = check_arrays(x, w, k_name="w")
    layout = "(N, D, H, W, C_in) or (D, H, W, C_in)" if last else "(N, C_in, D, H, W) or (C_in, D, H, W)"
    if x.ndim not in (4, 5):
        raise ValueError(f"x must have shape {layout}; got shape {tuple(x.shape)}")
    if w.ndim != 5:
        raise ValueError(f"w must have shape (C_in, C_out // groups, kd, kh, kw); got shape {tuple(w.shape)}")
    groups = parse_int("groups", groups)
    c_in, c_x = w.shape[0], x.shape[-1 if last else -4]
    if c_x != c_in:
        msg = (
            f"x has {c_x} channels (shape {tuple(x.shape)}) but w of shape {tuple(w.shape)} expects w.shape[0] "
            "(a transposed convolution's weight is (C_in, C_out // groups, kd, kh, kw))"
        )
        raise ValueError(msg)
    if c_in % groups:
        raise ValueError(f"groups={groups} must divide the input channels ({c_in}, w.shape[0] of w of shape {tuple(w.shape)})")
    result_dtype(xp, x.dtype, w.dtype)  # a TypeError where the library has no common dtype
    c_out = w.shape[1] * groups
    if bias is not None:
        check_bias(xp, bias, x, w, out_channels=c_out, x_checked=True)
    sizes = tuple(x.shape[-4:-1] if last else x.shape[-3:])
    batch = (*x.shape[:-4], c_out)
    depth, outs, keywords = _plan(sizes, tuple(w.shape[-3:]), stride, dilation, padding, output_padding, batch, last)
    if g is not None:
        shape = (*x.shape[:-4], *outs, c_out) if last else (*x.shape[:-4], c_out, *outs)
        check_g(x, g, shape, ' (data_format="channels_last")' if last else "")
    return xp, last, depth, {**keywords, "groups": groups, "data_format": data_format}


def _check_single(x, k, g, stride, padding, output_padding, dilation):
    """The namespace, the depth plan and the 2-D keywords of ``corr3d_transpose``."""
    xp = check_arrays(x, k)
    for name, a, shape in (("x", x, "(..., D, H, W)"), ("k", k, "(kd, kh, kw) or (..., kd, kh, kw)")):
        if a.ndim < 3:
            raise ValueError(f"{name} must have at least 3 dimensions, shape {shape}; got shape {tuple(a.shape)}")
    batch = broadcast_batch(x.shape, k.shape, 3)
    depth, outs, keywords = _plan(tuple(x.shape[-3:]), tuple(k.shape[-3:]), stride, dilation, padding, output_padding, batch)
    if g is not None:
        check_g(x, g, (*batch, *outs))
    return xp, depth, keywords


# -- the scatter over depth and its gather ------------------------------------------------------


def _place(xp, a, axis: int, depth: _Depth, tap: int):
    """Tap ``tap``'s planes ``a`` (one per input depth) at the uncropped depths ``i*sd + tap*dd``."""
    return on_depths(xp, a, axis, depth.step, tap * depth.dilation, depth.full)


def _crop(xp, total, axis: int, depth: _Depth):
    """The uncropped depths ``front .. front + out - 1``, zeros past the end (the output padding)."""
    return extend_axis(xp, total, axis, depth.front, depth.front + depth.out - 1, "fill", 0)


def _uncrop(xp, g, axis: int, depth: _Depth):
    """The inverse of :func:`_crop` for a gradient: ``g`` on the uncropped depths, zeros where cropped."""
    return extend_axis(xp, g, axis, -depth.front, depth.full - depth.front - 1, "fill", 0)


def _read(g, axis: int, depth: _Depth, tap: int):
    """The uncropped depths tap ``tap`` wrote, ``i*sd + tap*dd`` for every input depth ``i``."""
    start = tap * depth.dilation
    index = [slice(None)] * g.ndim
    index[axis] = slice(start, start + (depth.n - 1) * depth.step + 1, depth.step)
    return g[tuple(index)]


def _planes(xp, a, last: bool):
    """``(N, C, D, H, W)`` (or channels-last) ``a`` as a batch of 2-D images ``(N*D, C, H, W)``."""
    if not last:
        a = xp.permute_dims(a, (0, 2, 1, 3, 4))
    return _reshaped(xp, a, (a.shape[0] * a.shape[1], *a.shape[2:]))


def _add(total, term):
    return term if total is None else total + term


def conv_transpose3d(
    x: Array,
    w: Array,
    /,
    *,
    bias: Array | None = None,
    stride: Triple = 1,
    padding: TransposePadding3D = 0,
    output_padding: Triple = 0,
    dilation: Triple = 1,
    groups: int = 1,
    data_format: DataFormat = "channels_first",
) -> Array:
    args = (stride, padding, output_padding, dilation, groups, data_format)
    xp, last, depth, keywords = _check_multi(x, w, None, bias, *args)
    single, axis = x.ndim == 4, -4 if last else -3
    dtype = result_dtype(xp, x.dtype, w.dtype)
    xb, w, bias = widened(xp, dtype, xp.expand_dims(x, axis=0) if single else x, w, bias)
    planes, total = _planes(xp, xb, last), None
    for j in range(depth.taps):
        y2 = conv_transpose2d(planes, w[:, :, j, :, :], **keywords)
        total = _add(total, _place(xp, _volumes(xp, y2, xb.shape[0], xb.shape[axis], last), axis, depth, j))
    y = _crop(xp, total, axis, depth)
    if bias is not None:
        b = xp.astype(bias, y.dtype)
        y = y + (b if last else b[:, None, None, None])
    y = rounded(xp, y, dtype)
    return y[0, ...] if single else y


def conv_transpose3d_vjp(
    x: Array,
    w: Array,
    g: Array,
    /,
    *,
    stride: Triple = 1,
    padding: TransposePadding3D = 0,
    output_padding: Triple = 0,
    dilation: Triple = 1,
    groups: int = 1,
    data_format: DataFormat = "channels_first",
) -> tuple[Array, Array]:
    args = (stride, padding, output_padding, dilation, groups, data_format)
    xp, last, depth, keywords = _check_multi(x, w, g, None, *args)
    single, axis, dtype = x.ndim == 4, -4 if last else -3, result_dtype(xp, x.dtype, w.dtype, g.dtype)
    x, w, g = widened(xp, dtype, x, w, g)
    xb, gb = (xp.expand_dims(a, axis=0) if single else a for a in (x, g))
    planes, gfull = _planes(xp, xb, last), _uncrop(xp, gb, axis, depth)
    total, gws = None, []
    for j in range(depth.taps):
        g2 = _planes(xp, _read(gfull, axis, depth, j), last)
        gx, gw = conv_transpose2d_vjp(planes, w[:, :, j, :, :], g2, **keywords)
        total = _add(total, _volumes(xp, gx, xb.shape[0], xb.shape[axis], last))
        gws.append(gw)
    assert total is not None  # a kernel has at least one depth tap (checked)
    total = rounded(xp, total, dtype)
    return (total[0, ...] if single else total), rounded(xp, xp.stack(gws, axis=2), dtype)


def corr3d_transpose(
    x: Array,
    k: Array,
    /,
    *,
    stride: Triple = 1,
    padding: TransposePadding3D = 0,
    output_padding: Triple = 0,
    dilation: Triple = 1,
) -> Array:
    xp, depth, keywords = _check_single(x, k, None, stride, padding, output_padding, dilation)
    dtype = result_dtype(xp, x.dtype, k.dtype)
    x, k = widened(xp, dtype, x, k)
    total = None
    for j in range(depth.taps):
        # the input's depths ride along as a batch axis, against the depth tap of k (``_depth_tap``)
        total = _add(total, _place(xp, corr2d_transpose(x, _depth_tap(k, j), **keywords), -3, depth, j))
    return rounded(xp, _crop(xp, total, -3, depth), dtype)


def corr3d_transpose_vjp(
    x: Array,
    k: Array,
    g: Array,
    /,
    *,
    stride: Triple = 1,
    padding: TransposePadding3D = 0,
    output_padding: Triple = 0,
    dilation: Triple = 1,
) -> tuple[Array, Array]:
    xp, depth, keywords = _check_single(x, k, g, stride, padding, output_padding, dilation)
    dtype = result_dtype(xp, x.dtype, k.dtype, g.dtype)
    x, k, g = widened(xp, dtype, x, k, g)
    gfull = _uncrop(xp, g, -3, depth)
    total, gks = None, []
    for j in range(depth.taps):
        gx, gk = corr2d_transpose_vjp(x, _depth_tap(k, j), _read(gfull, -3, depth, j), **keywords)
        total = _add(total, gx)
        gks.append(gk if gk.ndim == k.ndim else xp.expand_dims(gk, axis=0))
    return rounded(xp, total, dtype), rounded(xp, xp.concat(gks, axis=-3), dtype)


# -- docstrings ---------------------------------------------------------------------------------

_OPTIONS_DOC = """\
    stride : int or (int, int, int), default 1
        {stride}
    padding : int, 3 ints or (before, after) pairs, "SAME" or "VALID", default 0
        {padding}
    output_padding : int or (int, int, int), default 0
        {output_padding}
    dilation : int or (int, int, int), default 1
        {dilation}"""

_FORWARD_OPTIONS = _OPTIONS_DOC.format(
    stride="The stride of the forward correlation this is the adjoint of (the upsampling factor per axis).",
    padding="torch's ``padding``: elements cropped from each side of the uncropped result ``(D - 1)*sd\n"
    "        + dd*(kd - 1) + 1`` deep (and so on per axis), for every side, per axis (depth, height,\n"
    "        width) or as ``(before, after)`` pairs; lax's and Keras' \"SAME\" (``D * sd``) and \"VALID\"\n"
    "        (the uncropped result, at least ``D * sd``) set the ``output_padding`` themselves.",
    output_padding="Elements added after the crop along each axis (each smaller than the stride or the\n"
    "        dilation of its axis, torch's rule).",
    dilation="Spacing between kernel taps along (depth, height, width).",
)

_VJP_OPTIONS = _OPTIONS_DOC.format(
    stride="The forward call's stride.",
    padding="The forward call's padding.",
    output_padding="The forward call's output padding.",
    dilation="The forward call's dilation.",
)

_MULTI_RAISES = """\
    Raises
    ------
    TypeError, ValueError
        Before any computation, in 3-D terms: arrays of the wrong rank or of two libraries,
        channels that do not match ``w.shape[0]`` or that ``groups`` does not divide, a malformed
        ``padding``, ``output_padding`` not smaller than the stride or the dilation, a padding that
        crops the whole output, a ``bias`` not of shape ``(C_out,)``{g}."""

conv_transpose3d.__doc__ = f"""Transposed 3-D convolution of channels, as :func:`torch.nn.functional.conv_transpose3d`.

    The adjoint of ``corr3d_multi`` (zero padding, stride, dilation, groups) with respect to its
    input: ``y[n, g*Og + o, i*sd + a*dd - front, j*sh + b*dh - top, l*sw + e*dw - left] +=
    x[n, g*Cg + c, i, j, l] * w[g*Cg + c, o, a, b, e]``. A sum over the depth taps ``a`` of
    ``xcorr.conv_transpose2d`` calls, the input's depths laid along the batch, whose planes are
    placed at the output depths they reach.

    Parameters
    ----------
    x : array, shape (N, C_in, D, H, W) or (C_in, D, H, W)
        Input of any array-API library; ``(N, D, H, W, C_in)`` or ``(D, H, W, C_in)`` channels-last.
    w : array, shape (C_in, C_out // groups, kd, kh, kw)
        Filters in torch's ``ConvTranspose3d`` layout (in either data format).
    bias : array, shape (C_out,), optional
        Added to every position of each output channel.
{_FORWARD_OPTIONS}
    groups : int, default 1
        Must divide ``C_in``; the output has ``w.shape[1] * groups`` channels.
    data_format : {{"channels_first", "channels_last"}}, default "channels_first"
        ``(N, C, D, H, W)`` or ``(N, D, H, W, C)`` for ``x`` and the result.

    Returns
    -------
    array, shape (N, C_out, D_out, H_out, W_out) (or channels-last)
        ``D_out = (D - 1)*sd - front - back + dd*(kd - 1) + output_padding + 1``, and so on per
        axis; the dtype is the promotion of the two.

{_MULTI_RAISES.format(g="")}

    Examples
    --------
    >>> import numpy as np
    >>> import xcorr
    >>> y = xcorr.conv_transpose3d(np.ones((1, 1, 2, 1, 1)), np.ones((1, 1, 2, 1, 1)), stride=2)
    >>> y[0, 0, :, 0, 0].tolist()
    [1.0, 1.0, 1.0, 1.0]
    """

conv_transpose3d_vjp.__doc__ = f"""Gradients ``(gx, gw)`` of ``conv_transpose3d(x, w, **options)`` for an output gradient ``g``.

    The gathers of the scatter: ``g`` is padded back to the uncropped depth, and each depth tap's
    strided depth slice goes through ``xcorr.conv_transpose2d_vjp`` (``gx``: the forward
    correlation of ``g``, summed over the taps; ``gw``: that tap's plane of the kernel gradient).

    Parameters
    ----------
    x : array, shape (N, C_in, D, H, W) or (C_in, D, H, W)
        The input of the forward call (channels-last with ``data_format``).
    w : array, shape (C_in, C_out // groups, kd, kh, kw)
        The filters of the forward call.
    g : array, the shape of ``conv_transpose3d(x, w, **options)``
        Gradient of a scalar loss with respect to the output.
{_VJP_OPTIONS}
    groups : int, default 1
        The forward call's groups.
    data_format : {{"channels_first", "channels_last"}}, default "channels_first"
        The layout of ``x`` and ``g``.

    Returns
    -------
    gx : array, shape of ``x``
        Gradient with respect to ``x``.
    gw : array, shape of ``w``
        Gradient with respect to ``w``.

{_MULTI_RAISES.format(g=", a ``g`` not of the output's shape")}

    Examples
    --------
    >>> import numpy as np
    >>> import xcorr
    >>> x, w = np.ones((1, 1, 2, 1, 1)), np.ones((1, 1, 2, 1, 1))
    >>> gx, gw = xcorr.conv_transpose3d_vjp(x, w, np.ones((1, 1, 4, 1, 1)), stride=2)
    >>> gx.ravel().tolist(), gw.ravel().tolist()
    ([2.0, 2.0], [2.0, 2.0])
    """

_SINGLE_RAISES = """\
    Raises
    ------
    TypeError, ValueError
        Before any computation, in 3-D terms: an ``x`` or ``k`` of fewer than 3 dimensions, batch
        shapes that do not broadcast, a malformed ``stride``, ``dilation`` or ``padding``,
        ``output_padding`` not smaller than the stride or the dilation, a padding that crops the
        whole output{g}."""

corr3d_transpose.__doc__ = f"""The transpose of ``corr3d`` (volumes, or broadcast batches of them) with respect to its input.

    ``y[..., i*sd + a*dd - front, j*sh + b*dh - top, l*sw + e*dw - left] += x[..., i, j, l] *
    k[..., a, b, e]``: ``conv_transpose3d`` of one channel, and the adjoint of a valid ``corr3d``
    of a zero-padded input. A sum over the depth taps of ``xcorr.corr2d_transpose`` calls, the
    input's depths riding along as a batch axis.

    Parameters
    ----------
    x : array, shape (..., D, H, W)
        Input volume(s) of any array-API library.
    k : array, shape (kd, kh, kw) or (..., kd, kh, kw)
        Kernel(s); leading dimensions broadcast against those of ``x``.
{_FORWARD_OPTIONS}

    Returns
    -------
    array, shape (..., D_out, H_out, W_out)
        ``D_out = (D - 1)*sd - front - back + dd*(kd - 1) + output_padding + 1``, and so on per axis.

{_SINGLE_RAISES.format(g="")}

    Examples
    --------
    >>> import numpy as np
    >>> import xcorr
    >>> x, k = np.array([1.0, 2.0]).reshape(2, 1, 1), np.array([1.0, 10.0]).reshape(2, 1, 1)
    >>> xcorr.corr3d_transpose(x, k, stride=3).ravel().tolist()
    [1.0, 10.0, 0.0, 2.0, 20.0]
    """

corr3d_transpose_vjp.__doc__ = f"""Gradients ``(gx, gk)`` of ``corr3d_transpose(x, k, **options)`` for an output gradient ``g``.

    ``xcorr.corr2d_transpose_vjp`` per depth tap on the strided depth slice of ``g`` (padded back to
    the uncropped depth) that the tap wrote: ``gx`` (summed over the taps and over the dimensions
    ``x`` was broadcast along) is ``corr3d`` of ``g`` zero-padded by ``padding``, ``gk`` that
    correlation's kernel gradient with ``x`` as its output gradient.

    Parameters
    ----------
    x : array, shape (..., D, H, W)
        The input of the forward call.
    k : array, shape (kd, kh, kw) or (..., kd, kh, kw)
        The kernel of the forward call.
    g : array, the shape of ``corr3d_transpose(x, k, **options)``
        Gradient of a scalar loss with respect to the output.
{_VJP_OPTIONS}

    Returns
    -------
    gx : array, shape of ``x``
        Gradient with respect to ``x``.
    gk : array, shape of ``k``
        Gradient with respect to ``k``.

{_SINGLE_RAISES.format(g=", a ``g`` not of the output's shape")}

    Examples
    --------
    >>> import numpy as np
    >>> import xcorr
    >>> x, k = np.ones((3, 1, 1)), np.array([1.0, 2.0]).reshape(2, 1, 1)
    >>> gx, gk = xcorr.corr3d_transpose_vjp(x, k, np.ones((6, 1, 1)), stride=2)
    >>> gx.ravel().tolist(), gk.ravel().tolist()
    ([3.0, 3.0, 3.0], [3.0, 3.0])
    """
