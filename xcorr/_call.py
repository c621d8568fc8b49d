"""Validate once: a public call's arguments, as given, turned into one frozen call record.

Every public function of the correlations (``corr2d``, ``conv2d``, ``corr2d_multi``, their VJPs
and JVPs) hands its arguments as given (``locals()``) to :func:`validate_call`: the one place
that parses the option keywords (``Options.parse``), and then :func:`validate` checks each
operand once, plans the geometry once and looks the adapter up once. Everything below takes the
:class:`~xcorr._options.Call` it returns.
"""

from __future__ import annotations

from collections.abc import Callable

from ._layout import check_last_shape, parse_data_format
from ._options import Call, Geometry, Like, Options, check_arrays, check_integral_fill, plan, result_dtype
from ._padding import parse_int, parse_pair, parse_transpose_padding, resolve_transpose_padding
from ._prepared import _PREPARED, prepared_front, remember
from ._registry import adapter_for
from ._transpose_plan import check_transpose_multi, out_shape, plan_transpose

# The option keywords of every public correlation, in the order of their signatures.
OPTIONS = ("mode", "boundary", "fillvalue", "stride", "dilation", "method", "padding")


def parse_options(given: dict, *, convolve: bool = False) -> Options:
    """The :class:`Options` of the keywords ``given`` (those of them that are option names)."""
    return Options.parse(convolve=convolve, **{name: given[name] for name in OPTIONS if name in given})


def public_key(op, x, k, given: tuple) -> tuple:
    """The prepared-call key of a public call ``op`` (its name, or a tuple of its name and what else
    its signature holds): the operands' signatures and the options' values ``given`` (in the order of
    ``OPTIONS``), with the types where a bool could pass for an int (``True`` is not ``1``)."""
    mode, boundary, fillvalue, stride, dilation, method, padding = given
    return (
        op, type(x), x.shape, x.dtype, type(k), k.shape, k.dtype,
        mode, boundary, fillvalue, type(fillvalue),
        stride if type(stride) is int else _typed(stride),
        dilation if type(dilation) is int else _typed(dilation),
        method, padding if padding is None else _typed(padding),
    )  # fmt: skip


def _typed(value):
    """``value`` with the type of every item (a tuple of tuples of ints, or a name)."""
    if isinstance(value, tuple):
        return (tuple, *map(_typed, value))
    return (type(value), value)


def public_front(op, prepare: Callable[..., tuple], x, w, third, groups, data_format, given: tuple):
    """The public call ``op`` of ``x``, ``w``, ``third`` (a bias or None, or a VJP's output gradient)
    and its keywords (``groups`` and ``data_format``, None for a single-plane call, and the options'
    values ``given`` in the order of ``OPTIONS``): the prepared call of this signature, else the one
    ``prepare(x, w, third, groups, data_format, given)`` makes, which checks the call (raising
    before any backend call) and returns ``(adapter, run)``, ``run(x, w, third)`` computing it."""
    key = None
    try:
        third_signature = None if third is None else (type(third), third.shape, third.dtype)
        key = public_key((op, type(groups), groups, data_format, third_signature), x, w, given)
        front = _PREPARED[key]
    except (KeyError, TypeError, AttributeError):  # not prepared, or not arrays (the checks name them)

        def again(x, w, third):
            return prepare(x, w, third, groups, data_format, given)

        adapter, run = again(x, w, third)
        front = prepared_front(adapter, run, again)
        remember(key, front)
    return front(x, w, third)


def validate_call(op: str, given: dict, k_name: str = "k") -> Call:
    """The call record of public call ``op`` ("corr2d", "conv2d" or "corr2d_multi", or their VJP or
    JVP) of the arguments ``given``: the operands ``x`` and ``k_name``, the keywords, and the VJP's
    output gradient ``g`` or the JVP's directions ``dx`` and ``d<k_name>``, each checked once
    before the adapter is looked up."""
    channels_last = parse_data_format(given.get("data_format", "channels_first"))
    options = parse_options(given, convolve=op == "conv2d")
    groups = parse_int("groups", given["groups"]) if "groups" in given else None
    x, k = given["x"], given[k_name]
    xp, dtype, geometry = _check(x, k, options, groups, given.get("bias"), channels_last)
    if "g" in given:
        _check_cotangent(given["g"], x, k, geometry, groups, channels_last)
    if "dx" in given:
        check_directions(op, given, k_name)
    return Call(xp, adapter_for(xp), dtype, options, geometry, groups, channels_last)


def validate(x, k, options: Options, groups: int | None = None, *, bias=None, channels_last=False) -> Call:
    """Check ``x`` and ``k`` (and ``bias``) once, plan the geometry once and look the adapter up
    once: the call record of parsed options (``groups`` None: a single-plane call, else
    ``corr2d_multi``'s, ``k`` its weight ``w``)."""
    xp, dtype, geometry = _check(x, k, options, groups, bias, channels_last)
    return Call(xp, adapter_for(xp), dtype, options, geometry, groups, channels_last)


def _check(x, k, options: Options, groups: int | None, bias, channels_last: bool):
    """The checks of :func:`validate`: the namespace, the result's dtype and the geometry."""
    if groups is None:
        xp = check_arrays(x, k)
        geometry = plan(x.shape, k.shape, options)
        dtype = result_dtype(xp, x.dtype, k.dtype)
        # The fillvalue check also where no fill is reached ("valid"), and for a VJP or JVP.
        check_integral_fill(xp, dtype, options.fillvalue)
        return xp, dtype, geometry
    xp = check_arrays(x, k, k_name="w")
    shape = tuple(x.shape)
    if channels_last:
        if bias is not None:
            check_bias(xp, bias, x, k, x_checked=True)
        check_last_shape(x, k, w_name="w", channels=_channels(k, groups))
        shape = (*shape[:-3], shape[-1], *shape[-3:-1])
    geometry = _check_channels(xp, shape, x.dtype, k, options, groups)
    if bias is not None and not channels_last:
        check_bias(xp, bias, x, k, x_checked=True)
    return xp, result_dtype(xp, x.dtype, k.dtype), geometry


def _check_cotangent(g, x, k, geometry: Geometry, groups: int | None, channels_last: bool) -> None:
    """A VJP's output gradient ``g``: of ``x``'s library and device, and the output's shape."""
    check_arrays(x, g, k_name="g", x_checked=True)
    if groups is None:
        out, where = geometry.out_shape, f" (x has shape {tuple(x.shape)}, k has shape {tuple(k.shape)})"
    else:
        rows_cols = (geometry.rows.count, geometry.cols.count)
        out = (*x.shape[:-3], *rows_cols, k.shape[0]) if channels_last else (*x.shape[:-3], k.shape[0], *rows_cols)
        where = ""
    if tuple(g.shape) != out:
        layout = ' (data_format="channels_last")' if channels_last else ""
        msg = f"g must have the shape of the output, {out}{layout}; got shape {tuple(g.shape)}{where}"
        raise ValueError(msg)


def check_directions(op: str, given: dict, k_name: str) -> None:
    """A JVP's directions ``dx`` and ``d<k_name>``: one at least, each of its operand's library,
    device and shape."""
    d_name = "d" + k_name
    if given["dx"] is None and given[d_name] is None:
        msg = f"{op}_jvp needs a direction: dx, {d_name} or both (got None for both)"
        raise ValueError(msg)
    for name, a_name in (("dx", "x"), (d_name, k_name)):
        t, a = given[name], given[a_name]
        if t is not None:
            check_arrays(a, t, x_name=a_name, k_name=name, x_checked=True)  # ``a`` (x or k) is checked
            if tuple(t.shape) != tuple(a.shape):
                msg = f"{name} must have the shape of {a_name}, {tuple(a.shape)}; got shape {tuple(t.shape)}"
                raise ValueError(msg)


def validate_transpose(given: dict) -> Call:
    """The call record of a transposed call of the arguments ``given``: ``conv_transpose2d``'s (``x``,
    ``w``, ``groups``, ``data_format``, ``bias``) or ``corr2d_transpose``'s (``x``, ``k``), and the
    VJP's output gradient ``g``. Its ``transpose`` is the plan; for ``corr2d_transpose`` its
    ``geometry`` is the forward correlation's with the broadcast batch of ``x`` and ``k``."""
    x, g = given["x"], given.get("g")
    stride, padding, output_padding, dilation = (given[n] for n in ("stride", "padding", "output_padding", "dilation"))
    if "w" in given:
        w = given["w"]
        xp, tp = check_transpose_multi(x, w, stride, padding, output_padding, dilation, given["groups"], given["data_format"])
        if given.get("bias") is not None:
            check_bias(xp, given["bias"], x, w, out_channels=w.shape[1] * tp.groups, x_checked=True)
        dtype, geometry, out, groups = result_dtype(xp, x.dtype, w.dtype), tp.geometry, out_shape(x, w, tp), tp.groups
    else:
        xp, tp, dtype, geometry = _check_transpose_single(x, given["k"], stride, padding, output_padding, dilation)
        out, groups = (*geometry.batch, *tp.out_hw), None
    if g is not None:
        check_arrays(x, g, k_name="g", x_checked=True)
        if tuple(g.shape) != out:
            msg = f"g must have the shape of the output, {out}; got shape {tuple(g.shape)}"
            raise ValueError(msg)
    return Call(xp, adapter_for(xp), dtype, tp.options, geometry, groups, tp.channels_last, transpose=tp)


def _check_transpose_single(x, k, stride, padding, output_padding, dilation):
    """``corr2d_transpose``'s checks: the namespace, the plan, the result's dtype and the forward geometry."""
    stride = parse_pair("stride", stride)
    dilation = parse_pair("dilation", dilation)
    parsed = parse_transpose_padding(padding)
    xp = check_arrays(x, k)
    for name, a, dims in (("x", x, "H, W"), ("k", k, "h, w")):
        if a.ndim < 2:
            msg = f"{name} must have at least 2 dimensions (..., {dims}); got shape {tuple(a.shape)}"
            raise ValueError(msg)
    padding, output_padding = resolve_transpose_padding(parsed, output_padding, tuple(k.shape[-2:]), stride, dilation)
    dtype = result_dtype(xp, x.dtype, k.dtype)
    tp = plan_transpose(tuple(x.shape[-2:]), tuple(k.shape[-2:]), stride, dilation, padding, output_padding, 1, False)
    rows, cols = tp.geometry.rows, tp.geometry.cols
    # The forward input has the broadcast batch of x (its output gradient) and k.
    return xp, tp, dtype, plan((*x.shape[:-2], rows.size, cols.size), tuple(k.shape), tp.options)


def check_multi(x, w, options: Options, groups: int):
    """Check shapes and channels; return the namespace and the spatial geometry."""
    xp = check_arrays(x, w, k_name="w")
    return xp, _check_channels(xp, tuple(x.shape), x.dtype, w, options, groups)


def _check_channels(xp, x_shape: tuple[int, ...], x_dtype, w, options: Options, groups: int) -> Geometry:
    """:func:`check_multi` of checked operands, ``x`` given by its (channels-first) shape and dtype."""
    x = Like(x_shape, x_dtype)
    if x.ndim not in (3, 4):
        msg = f"x must have shape (N, C_in, H, W) or (C_in, H, W); got shape {tuple(x.shape)}"
        raise ValueError(msg)
    if w.ndim != 4:
        msg = f"w must have shape (C_out, C_in // groups, h, w); got shape {tuple(w.shape)}"
        raise ValueError(msg)
    check_groups(x.shape[-3], x, w, groups)
    geometry = plan(tuple(x.shape[-2:]), tuple(w.shape[-2:]), options)
    check_integral_fill(xp, result_dtype(xp, x.dtype, w.dtype), options.fillvalue)
    return geometry


def check_groups(c_in: int, x, w, groups: int) -> None:
    """``groups`` divides ``c_in`` (x's channels) and ``w.shape[0]``, and ``w.shape[1]`` is ``c_in // groups``."""
    c_out, c_group = w.shape[0], w.shape[1]
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




def _channels(w, groups: int) -> int | None:
    """The input channels a ``(C_out, C_in // groups, h, w)`` weight expects (None: not 4-D)."""
    return w.shape[1] * groups if getattr(w, "ndim", None) == 4 else None


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
