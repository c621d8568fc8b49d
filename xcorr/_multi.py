"""Multi-channel correlation: the functional form of the ``Conv2D`` layer.

``y[n, o] = sum_c corr2d(x[n, g*Cg + c], w[o, c])`` for output channel ``o``
in group ``g``, as ``torch.nn.functional.conv2d`` computes it, with every
mode and boundary of ``corr2d``. The generic path is one broadcast
``corr2d`` call (so torch/jax autodiff and the core VJP apply); torch and jax
have native hooks (``correlate_multi``: ``F.conv2d``, ``lax.conv_general_dilated``),
since a channel sum is a GEMM, which their native convolutions do well.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ._adapter import adapter_for
from ._compat import array_namespace
from ._correlate import _public_key
from ._layout import check_last, check_last_shape, parse_data_format, to_first, to_last
from ._options import (
    Geometry,
    Options,
    check_arrays,
    check_integral_fill,
    plan,
    result_dtype,
)
from ._padding import parse_int
from ._prepared import _PREPARED, Widened, half_fill, half_precision, remember
from ._typing import Array, Boundary, DataFormat, Method, Mode, Padding, Pair, Scalar

__all__ = ["corr2d_multi", "corr2d_multi_vjp"]


def check_multi(x, w, options: Options, groups: int):
    """Check shapes and channels; return the namespace and the spatial geometry."""
    xp = check_arrays(x, w, k_name="w")
    return xp, _check_channels(xp, tuple(x.shape), x.dtype, w, options, groups)


def _check_channels(xp, x_shape: tuple[int, ...], x_dtype, w, options: Options, groups: int) -> Geometry:
    """:func:`check_multi` of checked operands, ``x`` given by its (channels-first) shape and dtype."""
    x = _Shape(x_shape, x_dtype)
    if x.ndim not in (3, 4):
        msg = f"x must have shape (N, C_in, H, W) or (C_in, H, W); got shape {tuple(x.shape)}"
        raise ValueError(msg)
    if w.ndim != 4:
        msg = f"w must have shape (C_out, C_in // groups, h, w); got shape {tuple(w.shape)}"
        raise ValueError(msg)
    c_in, c_out, c_group = x.shape[-3], w.shape[0], w.shape[1]
    if c_in % groups or c_out % groups:
        msg = (
            f"groups={groups} must divide the input channels ({c_in}, from x of shape "
            f"{tuple(x.shape)}) and the output channels ({c_out}, from w of shape {tuple(w.shape)})"
        )
        raise ValueError(msg)
    if c_group * groups != c_in:
        msg = (
            f"x has {c_in} channels (shape {tuple(x.shape)}) but w of shape {tuple(w.shape)} "
            f"with groups={groups} expects {c_group * groups}"
        )
        raise ValueError(msg)
    geometry = plan(tuple(x.shape[-2:]), tuple(w.shape[-2:]), options)
    check_integral_fill(xp, result_dtype(xp, x.dtype, w.dtype), options.fillvalue)
    return geometry


class _Shape:
    """The shape and dtype of an operand (its channels-first view, before it is made)."""

    def __init__(self, shape: tuple[int, ...], dtype):
        self.shape = shape
        self.dtype = dtype
        self.ndim = len(shape)


@dataclass(frozen=True)
class MultiCall:
    """A validated ``corr2d_multi`` call: what every step below the public function takes.

    ``geometry`` is that of the channels-first call; ``dtype`` the result's.
    """

    xp: Any
    adapter: Any
    dtype: Any
    options: Options
    geometry: Geometry
    groups: int
    channels_last: bool = False


def validate_multi(x, w, options: Options, groups: int, *, bias=None, channels_last: bool = False) -> MultiCall:
    """Check ``x``, ``w`` and ``bias`` (each operand once), plan the geometry once and look the
    adapter up once: the call record of a ``corr2d_multi`` call of parsed options."""
    xp = check_arrays(x, w, k_name="w")
    shape = tuple(x.shape)
    if channels_last:
        if bias is not None:
            check_bias(xp, bias, x, w, x_checked=True)
        check_last_shape(x, w, w_name="w", channels=_channels(w, groups))
        shape = (*shape[:-3], shape[-1], *shape[-3:-1])
    geometry = _check_channels(xp, shape, x.dtype, w, options, groups)
    if bias is not None and not channels_last:
        check_bias(xp, bias, x, w, x_checked=True)
    dtype = result_dtype(xp, x.dtype, w.dtype)
    return MultiCall(xp, adapter_for(xp), dtype, options, geometry, groups, channels_last)


def check_bias(xp, b, x, w, out_channels: int | None = None, *, x_checked: bool = False) -> None:
    """Check a ``bias``: an array of ``x``'s library and device, shape ``(C_out,)`` (``out_channels``,
    by default ``w.shape[0]``), of a dtype that the output's dtype holds (F.conv2d's rule, relaxed
    to promotion). ``x_checked``: ``x`` passed its own checks already."""
    check_arrays(x, b, k_name="bias", x_checked=x_checked)
    c_out = w.shape[0] if out_channels is None else out_channels
    if tuple(b.shape) != (c_out,):
        msg = f"bias must have shape (C_out,) = {(c_out,)} for w of shape {tuple(w.shape)}; got shape {tuple(b.shape)}"
        raise ValueError(msg)
    dtype = result_dtype(xp, x.dtype, w.dtype)
    if result_dtype(xp, dtype, b.dtype) != dtype:
        msg = (
            f"bias has dtype {b.dtype}, which the output's dtype {dtype} (from x and w) does not hold; "
            f"cast bias to {dtype}"
        )
        raise TypeError(msg)


def correlate_multi(xp, x, w, options: Options, geometry: Geometry, groups: int):
    """Validated multi-channel correlation, by the adapter of ``xp`` (``Adapter.correlate_multi``).

    Adapters take ``method="auto"`` and "native" to the library's native
    convolution where it has one (a GEMM); "direct" and "fft" go through
    ``corr2d`` with that method.
    """
    return adapter_for(xp).correlate_multi(xp, x, w, options, geometry, groups)


def corr2d_multi(
    x: Array,
    w: Array,
    /,
    *,
    bias: Array | None = None,
    mode: Mode = "valid",
    boundary: Boundary = "fill",
    fillvalue: Scalar = 0,
    stride: Pair = 1,
    dilation: Pair = 1,
    groups: int = 1,
    method: Method = "auto",
    padding: Padding = None,
    data_format: DataFormat = "channels_first",
    precision: Any = None,
    preferred_element_type: Any = None,
) -> Array:
    """Multi-channel 2-D cross-correlation, the forward pass of a convolutional layer.

    ``y[n, o, i, j] = sum_{c, a, b} x[n, g*Cg + c, i*sh + a*dh, j*sw + b*dw] * w[o, c, a, b]``
    (in "valid" mode) where ``g = o // (C_out // groups)`` and
    ``Cg = C_in // groups``, plus ``bias[o]`` where given:
    ``torch.nn.functional.conv2d(x, w, bias, groups=groups)``, extended to
    every mode, boundary and padding of ``corr2d`` (``padding=p`` with
    ``boundary="reflect"`` is ``nn.Conv2d(padding=p, padding_mode="reflect")``).

    Parameters
    ----------
    x : array, shape (N, C_in, H, W) or (C_in, H, W)
        Input images of any array-API library.
    w : array, shape (C_out, C_in // groups, h, w)
        Filters, from the same library and device as ``x``.
    bias : array, shape (C_out,), optional
        Added to every position of each output channel, as
        ``corr2d_multi(x, w) + bias[:, None, None]`` (``+ bias`` channels-last)
        computes it; torch adds it inside ``F.conv2d``, as ``nn.Conv2d`` does.
        Its dtype must promote to the output's (that of ``x`` and ``w``). Its
        gradient is ``g`` summed over all axes but the channels'.
    mode, boundary, fillvalue, stride, dilation, padding
        As in ``xcorr.corr2d``; they apply to every channel.
    method : {"auto", "direct", "fft", "native"}, default "auto"
        "auto" and "native" use the library's native convolution where
        ``correlate_multi`` has one (torch, jax: a GEMM, the right tool for
        channel sums); "direct" and "fft" compute one broadcast ``corr2d``
        with that method. Elsewhere as in ``xcorr.corr2d``.
    groups : int, default 1
        Split the channels into ``groups`` independent groups (``groups ==
        C_in == C_out`` is a depthwise correlation). Must divide ``C_in`` and
        ``C_out``.
    data_format : {"channels_first", "channels_last"}, default "channels_first"
        ``x`` and the result as ``(N, C, H, W)`` or as ``(N, H, W, C)``;
        ``w`` keeps its layout. Channels-last arrays are computed on
        natively: jax convolves in ``NHWC``, torch on the permuted view
        (``channels_last`` memory format), numpy on strided views.
    precision, preferred_element_type : default None
        jax only: ``lax.conv_general_dilated``'s arguments, passed through on
        the native path (``precision`` defaults to ``lax.Precision.HIGHEST``
        there). "direct" and "fft" compute in the wider of the operands'
        dtype and ``preferred_element_type`` (their products and sums are
        exact float operations, as ``HIGHEST``) and return
        ``preferred_element_type``. Other libraries, and
        ``data_format="channels_last"``, refuse them.

    Returns
    -------
    array, shape (N, C_out, H', W') or (C_out, H', W')
        Same library and device as the inputs; the dtype is the promotion of
        the two dtypes, as in ``corr2d``. torch and jax compute it with their
        native convolution (floating dtypes), other libraries with one
        broadcast ``corr2d``.

    Raises
    ------
    TypeError
        As ``corr2d``, and for a ``groups`` that is not an int.
    ValueError
        As ``corr2d``; also for ``x`` not 3-D or 4-D, ``w`` not 4-D, channel
        counts that ``groups`` does not divide, ``w`` whose input channels
        do not match ``x``, or ``bias`` not of shape ``(C_out,)``. TypeError
        for a ``bias`` of another library or of a dtype the output does not hold.

    Examples
    --------
    >>> import array_api_strict as xp
    >>> import xcorr
    >>> x = xp.ones((1, 2, 3, 3))
    >>> w = xp.ones((1, 2, 2, 2))
    >>> xcorr.corr2d_multi(x, w)
    Array([[[[8., 8.],
             [8., 8.]]]], dtype=array_api_strict.float64)
    """
    if data_format != "channels_first":
        if precision is not None or preferred_element_type is not None:
            msg = (
                f"precision and preferred_element_type take data_format='channels_first' only; "
                f"got data_format={data_format!r}"
            )
            raise ValueError(msg)
        return _multi_other_layout(
            x, w, None, mode, boundary, fillvalue, stride, dilation, groups, method, padding, data_format, bias
        )
    key = None
    try:
        signature = None if bias is None else (type(bias), bias.shape, bias.dtype)
        op = ("corr2d_multi", type(groups), groups, precision, preferred_element_type, signature)
        key = _public_key(op, x, w, mode, boundary, fillvalue, stride, dilation, method, padding)
        call = _PREPARED[key]
    except (KeyError, TypeError, AttributeError):
        pass
    else:
        return call(x, w) if bias is None else call(x, w, bias)
    options = Options.parse(
        mode=mode, boundary=boundary, fillvalue=fillvalue, stride=stride, dilation=dilation,
        method=method, padding=padding,
    )
    groups = parse_int("groups", groups)
    lax = None
    if precision is not None or preferred_element_type is not None:
        lax = {"precision": precision, "preferred_element_type": preferred_element_type}
    return _prepare_multi_and_call(x, w, options, groups, key, lax, bias)


def apply_multi(x, w, options: Options, groups: int, bias=None):
    """``corr2d_multi`` of parsed options (the layer's forward), prepared once per signature."""
    signature = None if bias is None else (type(bias), bias.shape, bias.dtype)
    key = (type(x), x.shape, x.dtype, type(w), w.shape, w.dtype, options, groups, signature)
    call = _PREPARED.get(key)
    if call is None:
        return _prepare_multi_and_call(x, w, options, groups, key, None, bias)
    return call(x, w) if bias is None else call(x, w, bias)


class PreparedMulti:
    """``corr2d_multi`` of one signature, validated once (see ``xcorr._correlate.Prepared``)."""

    __slots__ = ("adapter", "geometry", "groups", "lax", "options", "tuning", "xp")

    def __init__(self, xp, adapter, options: Options, geometry, groups: int, lax=None):
        self.xp = xp
        self.adapter = adapter
        self.tuning = adapter.tuning
        self.options = options
        self.geometry = geometry
        self.groups = groups
        self.lax = lax or {}  # jax's precision/preferred_element_type, where given

    def __call__(self, x, w, b=None):
        xp, adapter, geometry = self.xp, self.adapter, self.geometry
        if self.tuning is not adapter.tuning or (
            adapter.devices and not (adapter.same_device(x, w) and (b is None or adapter.same_device(x, b)))
        ):
            call = validate_multi(x, w, self.options, self.groups, bias=b)
            xp, adapter, geometry = call.xp, call.adapter, call.geometry
        if self.lax:
            y = adapter.correlate_multi_precision(
                xp, x, w, self.options, geometry, self.groups, self.lax["precision"], self.lax["preferred_element_type"]
            )
            return y if b is None else y + xp.astype(b, y.dtype)[:, None, None]
        if b is None:
            return adapter.correlate_multi(xp, x, w, self.options, geometry, self.groups)
        return adapter.correlate_multi_bias(xp, x, w, b, self.options, geometry, self.groups)


def _prepare_multi_and_call(x, w, options: Options, groups: int, key, lax=None, b=None):
    call = validate_multi(x, w, options, groups, bias=b)
    xp, dtype = call.xp, call.dtype
    prepared: PreparedMulti | Widened = PreparedMulti(xp, call.adapter, options, call.geometry, groups, lax)
    if half_precision(dtype) and not (lax or {}).get("preferred_element_type"):
        # Computed in float32 (filled with the value the half dtype holds), rounded once.
        prepared = Widened(xp, dtype, PreparedMulti(xp, call.adapter, half_fill(xp, dtype, options), call.geometry, groups, lax))
    remember(key, prepared)
    return prepared(x, w) if b is None else prepared(x, w, b)


def multi_vjp(xp, x, w, g, options: Options, groups: int, *, need_x=True):
    """``(gx, gw)`` of validated inputs, by the adapter of ``xp`` (``Adapter.correlate_multi_vjp``)."""
    geometry = plan(tuple(x.shape[-2:]), tuple(w.shape[-2:]), options)
    return adapter_for(xp).correlate_multi_vjp(xp, x, w, g, options, geometry, groups, need_x)


def corr2d_multi_vjp(
    x: Array,
    w: Array,
    g: Array,
    /,
    *,
    mode: Mode = "valid",
    boundary: Boundary = "fill",
    fillvalue: Scalar = 0,
    stride: Pair = 1,
    dilation: Pair = 1,
    groups: int = 1,
    method: Method = "auto",
    padding: Padding = None,
    data_format: DataFormat = "channels_first",
) -> tuple[Array, Array]:
    """Gradients ``(gx, gw)`` of ``corr2d_multi(x, w, **options)`` for an output gradient ``g``.

    The vector-Jacobian product in pure array-API code, as ``corr2d_vjp`` is
    for ``corr2d``: what numpy, array-api-strict, dask and cupy models train
    with (``xcorr.fit`` uses it).

    Parameters
    ----------
    x, w
        The operands of the forward call.
    g : array, shape of ``corr2d_multi(x, w, **options)``
        Gradient of a scalar loss with respect to the output.
    mode, boundary, fillvalue, stride, dilation, groups, padding, data_format
        The options of the forward call (``x``, ``g`` and ``gx`` in the
        ``data_format``).
    method : {"auto", "direct", "fft", "native"}, default "auto"
        How the correlations inside the gradients are computed, as in
        ``xcorr.corr2d_vjp``.

    Returns
    -------
    gx : array, shape of ``x``
    gw : array, shape of ``w``

    Raises
    ------
    TypeError, ValueError
        As ``corr2d_multi``, and ValueError when ``g`` does not have the
        output's shape.

    Examples
    --------
    >>> import numpy as np
    >>> import xcorr
    >>> x, w = np.arange(16.0).reshape(1, 1, 4, 4), np.ones((2, 1, 2, 2))
    >>> y = xcorr.corr2d_multi(x, w)
    >>> gx, gw = xcorr.corr2d_multi_vjp(x, w, np.ones_like(y))
    >>> gx[0, 0].tolist()
    [[2.0, 4.0, 4.0, 2.0], [4.0, 8.0, 8.0, 4.0], [4.0, 8.0, 8.0, 4.0], [2.0, 4.0, 4.0, 2.0]]
    >>> gw[0, 0].tolist()
    [[45.0, 54.0], [81.0, 90.0]]
    """
    if data_format != "channels_first":
        return _multi_other_layout(
            x, w, g, mode, boundary, fillvalue, stride, dilation, groups, method, padding, data_format
        )
    options = Options.parse(
        mode=mode, boundary=boundary, fillvalue=fillvalue, stride=stride, dilation=dilation,
        method=method, padding=padding,
    )
    groups = parse_int("groups", groups)
    xp, geometry = check_multi(x, w, options, groups)
    check_arrays(x, g, k_name="g", x_checked=True)
    out = (*x.shape[:-3], w.shape[0], geometry.rows.count, geometry.cols.count)
    if tuple(g.shape) != out:
        msg = f"g must have the shape of the output, {out}; got shape {tuple(g.shape)}"
        raise ValueError(msg)
    return multi_vjp(xp, x, w, g, options, groups)


def _multi_other_layout(
    x, w, g, mode, boundary, fillvalue, stride, dilation, groups, method, padding, data_format, bias=None
):
    """``corr2d_multi`` (``g`` None; with ``bias``) or its VJP with a ``data_format`` other than channels-first."""
    parse_data_format(data_format)
    options = Options.parse(
        mode=mode, boundary=boundary, fillvalue=fillvalue, stride=stride, dilation=dilation,
        method=method, padding=padding,
    )
    groups = parse_int("groups", groups)
    if g is None:
        return corr2d_multi_last(x, w, options, groups, bias)
    return corr2d_multi_vjp_last(x, w, g, options, groups)


def _channels(w, groups: int) -> int | None:
    """The input channels a ``(C_out, C_in // groups, h, w)`` weight expects (None: not 4-D)."""
    return w.shape[1] * groups if getattr(w, "ndim", None) == 4 else None


def corr2d_multi_last(x, w, options, groups, bias=None):
    """``corr2d_multi`` of a channels-last ``x`` (parsed options), result ``(N, H', W', C_out)``."""
    call = validate_multi(x, w, options, groups, bias=bias, channels_last=True)
    y = call.adapter.correlate_multi_channels_last(call.xp, x, w, options, call.geometry, groups)
    if bias is None:
        return y
    return y + array_namespace(y).astype(bias, y.dtype)


def corr2d_multi_vjp_last(x, w, g, options, groups):
    """``corr2d_multi_vjp`` of a channels-last ``x`` and ``g``: ``(gx, gw)``, ``gx`` channels-last."""
    xp = check_last(x, w, w_name="w", channels=_channels(w, groups))
    xf = to_first(xp, x)
    _, geometry = check_multi(xf, w, options, groups)
    check_arrays(x, g, k_name="g")
    out = (*x.shape[:-3], geometry.rows.count, geometry.cols.count, w.shape[0])
    if tuple(g.shape) != out:
        msg = f'g must have the shape of the output, {out} (data_format="channels_last"); got shape {tuple(g.shape)}'
        raise ValueError(msg)
    gx, gw = multi_vjp(xp, xf, w, to_first(xp, g), options, groups)
    return to_last(xp, gx), gw
