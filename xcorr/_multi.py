"""Multi-channel correlation: the functional form of the ``Conv2D`` layer.

``y[n, o] = sum_c corr2d(x[n, g*Cg + c], w[o, c])`` for output channel ``o``
in group ``g``, as ``torch.nn.functional.conv2d`` computes it, with every
mode and boundary of ``corr2d``. The generic path is one broadcast
``corr2d`` call (so torch/jax autodiff and the core VJP apply); torch and jax
have native hooks (``correlate_multi``: ``F.conv2d``, ``lax.conv_general_dilated``),
since a channel sum is a GEMM, which their native convolutions do well.
"""

from __future__ import annotations

from dataclasses import replace
from functools import partial
from typing import Any

from ._call import OPTIONS, public_front, public_key, validate, validate_call
from ._compat import array_namespace
from ._layout import to_first, to_last
from ._options import Call, Geometry, Options, cast_integers, mixes_kinds, plan, result_dtype
from ._prepared import _PREPARED, Cast, Widened, half_fill, half_precision, half_vjp, remember
from ._registry import adapter_for
from ._typing import Array, Boundary, DataFormat, Method, Mode, Padding, Pair, Scalar

__all__ = ["corr2d_multi", "corr2d_multi_vjp"]


def correlate_multi(xp, x, w, options: Options, geometry: Geometry, groups: int):
    """Validated multi-channel correlation, by the adapter of ``xp`` (``Adapter.correlate_multi``).

    Adapters take ``method="auto"`` and "native" to the library's native
    convolution where it has one (a GEMM); "direct" and "fft" go through
    ``corr2d`` with that method.
    """
    x, w = cast_integers(xp, result_dtype(xp, x.dtype, w.dtype), x, w)
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
    ``torch.nn.functional.conv2d(x, w, bias, groups=groups)`` (:func:`torch.nn.functional.conv2d`), extended to
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
        channel sums), except that on jax's CPU "auto" takes "direct" for
        groups of at most ``JaxTuning.grouped_direct_channels`` input channels
        (depthwise layers among them), where XLA's grouped convolution is
        slow; "direct" and "fft" compute one broadcast ``corr2d`` with that
        method. Elsewhere as in ``xcorr.corr2d``.
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
    given = locals()
    if data_format != "channels_first":
        if precision is not None or preferred_element_type is not None:
            msg = (
                f"precision and preferred_element_type take data_format='channels_first' only; "
                f"got data_format={data_format!r}"
            )
            raise ValueError(msg)
        options = tuple(given[name] for name in OPTIONS)
        return public_front("corr2d_multi", _prepare_last, x, w, bias, groups, data_format, options)
    key = None
    try:
        signature = None if bias is None else (type(bias), bias.shape, bias.dtype)
        op = ("corr2d_multi", type(groups), groups, precision, preferred_element_type, signature)
        key = public_key(op, x, w, (mode, boundary, fillvalue, stride, dilation, method, padding))
        prepared = _PREPARED[key]
    except (KeyError, TypeError, AttributeError):
        native = {name: given[name] for name in _NATIVE if given[name] is not None}
        return _prepare_multi_and_call(x, w, validate_call("corr2d_multi", given, "w"), key, native, bias)
    return prepared(x, w) if bias is None else prepared(x, w, bias)


# corr2d_multi's keywords that are options of a library's own convolution (Adapter.native_options).
_NATIVE = ("precision", "preferred_element_type")


def check_native(adapter, native: dict) -> None:
    """Refuse native options (``corr2d_multi``'s ``precision``, ``preferred_element_type``) that the
    adapter does not declare in ``native_options``, before any computation."""
    refused = [name for name in native if name not in adapter.native_options]
    if refused:
        got = ", ".join(f"{name}={native[name]!r}" for name in refused)
        msg = f"precision and preferred_element_type are jax's (lax.conv_general_dilated's) options; got {got}"
        raise ValueError(f"{msg} for {adapter.name} arrays")


def apply_multi(x, w, options: Options, groups: int, bias=None):
    """``corr2d_multi`` of parsed options (the layer's forward), prepared once per signature."""
    signature = None if bias is None else (type(bias), bias.shape, bias.dtype)
    key = (type(x), x.shape, x.dtype, type(w), w.shape, w.dtype, options, groups, signature)
    prepared = _PREPARED.get(key)
    if prepared is None:
        return _prepare_multi_and_call(x, w, validate(x, w, options, groups, bias=bias), key, None, bias)
    return prepared(x, w) if bias is None else prepared(x, w, bias)


class PreparedMulti:
    """``corr2d_multi`` of one signature, validated once (see ``xcorr._correlate.Prepared``)."""

    __slots__ = ("adapter", "geometry", "groups", "native", "options", "tuning", "xp")

    def __init__(self, call: Call, native=None):
        assert call.groups is not None  # a corr2d_multi call's record
        self.xp = call.xp
        self.adapter = call.adapter
        self.tuning = call.adapter.tuning
        self.options = call.options
        self.geometry = call.geometry
        self.groups = call.groups
        self.native = native or {}  # the native convolution's options given (checked), where any

    def __call__(self, x, w, b=None):
        xp, adapter, geometry = self.xp, self.adapter, self.geometry
        if self.tuning is not adapter.tuning or (
            adapter.devices and not (adapter.same_device(x, w) and (b is None or adapter.same_device(x, b)))
        ):
            call = validate(x, w, self.options, self.groups, bias=b)
            xp, adapter, geometry = call.xp, call.adapter, call.geometry
        if self.native:
            y = adapter.correlate_multi_options(xp, x, w, self.options, geometry, self.groups, self.native)
            return y if b is None else y + xp.astype(b, y.dtype)[:, None, None]
        if b is None:
            return adapter.correlate_multi(xp, x, w, self.options, geometry, self.groups)
        return adapter.correlate_multi_bias(xp, x, w, b, self.options, geometry, self.groups)


def _prepare_multi_and_call(x, w, call: Call, key, native=None, b=None):
    xp, dtype, native = call.xp, call.dtype, native or {}
    check_native(call.adapter, native)
    prepared: PreparedMulti | Widened | Cast = PreparedMulti(call, native)
    if half_precision(dtype) and not native.get("preferred_element_type"):
        # Computed in float32 (filled with the value the half dtype holds), rounded once.
        prepared = Widened(xp, dtype, PreparedMulti(replace(call, options=half_fill(xp, dtype, call.options)), native))
    elif mixes_kinds(xp, dtype, x, w, b):
        prepared = Cast(xp, dtype, prepared)  # the integer operands in the floating dtype, once
    remember(key, prepared)
    return prepared(x, w) if b is None else prepared(x, w, b)


def multi_vjp(xp, x, w, g, options: Options, groups: int, *, need_x=True):
    """``(gx, gw)`` of validated inputs, by the adapter of ``xp`` (``Adapter.correlate_multi_vjp``)."""
    geometry = plan(tuple(x.shape[-2:]), tuple(w.shape[-2:]), options)
    x, w, g = cast_integers(xp, result_dtype(xp, x.dtype, w.dtype, g.dtype), x, w, g)
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
    given = (mode, boundary, fillvalue, stride, dilation, method, padding)
    return public_front("corr2d_multi_vjp", _prepare_multi_vjp, x, w, g, groups, data_format, given)


def _prepare_multi_vjp(x, w, g, groups, data_format, given: tuple):
    keywords = {"groups": groups, "data_format": data_format, **dict(zip(OPTIONS, given))}
    call = validate_call("corr2d_multi", {"x": x, "w": w, "g": g, **keywords}, "w")
    return call.adapter, partial(half_vjp, call, _multi_vjp_of_call)


def _multi_vjp_of_call(call: Call, x, w, g):
    xp = call.xp
    x, w, g = call.cast(x, w, cotangent=g)
    if call.channels_last:
        x, g = to_first(xp, x), to_first(xp, g)
    gx, gw = call.adapter.correlate_multi_vjp(xp, x, w, g, call.options, call.geometry, call.groups, True)
    return (to_last(xp, gx) if call.channels_last else gx), gw


def _prepare_last(x, w, bias, groups, data_format, given: tuple):
    """``(adapter, run)`` of a checked channels-last ``corr2d_multi`` call."""
    call = validate_call("corr2d_multi", {"x": x, "w": w, "bias": bias, "groups": groups,
                                          "data_format": data_format, **dict(zip(OPTIONS, given))}, "w")

    def run(x, w, bias):
        return corr2d_multi_last(x, w, call, bias)

    return call.adapter, run


def corr2d_multi_last(x, w, call: Call, bias=None):
    """``corr2d_multi`` of a channels-last ``x`` (its validated call), result ``(N, H', W', C_out)``."""
    x, w, bias = call.cast(x, w, bias)
    y = call.adapter.correlate_multi_channels_last(call.xp, x, w, call.options, call.geometry, call.groups)
    if bias is None:
        return y
    return y + array_namespace(y).astype(bias, y.dtype)
