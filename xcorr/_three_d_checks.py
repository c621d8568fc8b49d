"""The arguments of the 3-D functions (``xcorr._three_d``), checked in 3-D terms before any
backend call and turned into the depth plan and the keywords of the 2-D call of each depth tap."""

from __future__ import annotations

from ._call import check_bias, check_groups, parse_options
from ._fronts import check_g
from ._layout import parse_data_format
from ._options import Geometry, broadcast_batch, check_arrays, check_integral_fill, plan_windows, result_dtype
from ._padding import check_padding_mode, lax_pads, parse_int, parse_padding, parse_per_axis

_ZERO = ((0, 0), (0, 0), (0, 0))


def _triple(name: str, value: object, minimum: int = 1) -> tuple[int, int, int]:
    """A stride, dilation (or, ``minimum`` 0, output padding): an int or a sequence of exactly three."""
    d, h, w = parse_per_axis(name, value, 3, minimum=minimum)
    return d, h, w


def _padding(padding: object, mode: str, sizes, spans, strides) -> tuple:
    """``((front, back), (top, bottom), (left, right))``: the extension the windows read. Every mode
    is explicit padding: "same" is centred as :func:`scipy.signal.correlate` and ``convolve`` centre
    it (``span // 2`` before), which ``corr2d``'s own "same" is not for even spans."""
    if padding is None:
        if mode == "valid":
            return _ZERO
        if mode == "full":
            return tuple((e - 1, e - 1) for e in spans)
        return tuple((e // 2, (e - 1) // 2) for e in spans)
    check_padding_mode(padding, mode)
    parsed = parse_padding(padding, 3)
    if isinstance(parsed, str):
        return tuple(lax_pads(parsed, n, e, s) for n, e, s in zip(sizes, spans, strides))
    return _ZERO if parsed is None else parsed


def _plans(x_shape, k_shape, sizes, batch, given: dict, *, k_name: str = "k"):
    """``(options, pads, plans)`` of a 3-D call: the parsed options, the padding of each axis and the
    windows of each axis (``xcorr._options.plan_windows``, which checks them)."""
    options = parse_options({n: given[n] for n in ("mode", "boundary", "fillvalue", "method")})
    strides, dilations = _triple("stride", given["stride"]), _triple("dilation", given["dilation"])
    spans = [d * (t - 1) + 1 for t, d in zip(k_shape[-3:], dilations)]
    pads = _padding(given["padding"], options.mode, sizes, spans, strides)
    # every mode is explicit padding, but a "valid" call without one is refused in "valid" words
    windows = None if given["padding"] is None and options.mode == "valid" else pads
    plans = plan_windows(x_shape, k_shape, sizes, batch, options, strides, dilations, windows, k_name=k_name)
    return options, pads, plans


def _keywords_2d(given: dict, pads, plans) -> dict:
    """The keywords of the 2-D call of each depth tap: "valid" over the height and width padded as
    planned, with the height's and width's stride and dilation of their ``plans``."""
    _, rows, cols = plans
    padding = None if pads[1:] == _ZERO[1:] else (pads[1], pads[2])
    return {
        "mode": "valid", "boundary": given["boundary"], "fillvalue": given["fillvalue"],
        "stride": (rows.step, cols.step), "dilation": (rows.dilation, cols.dilation), "method": given["method"],
        "padding": padding,
    }  # fmt: skip


def check(x, k, g, given: dict):
    """The namespace, the geometry (the broadcast batch and the plans of depth, height and width), the
    2-D keywords and the parsed options of a checked ``corr3d`` or ``conv3d`` call."""
    xp = check_arrays(x, k)
    for name, a, shape in (("x", x, "(..., D, H, W)"), ("k", k, "(kd, kh, kw) or (..., kd, kh, kw)")):
        if a.ndim < 3:
            raise ValueError(f"{name} must have at least 3 dimensions, shape {shape}; got shape {tuple(a.shape)}")
    batch = broadcast_batch(x.shape, k.shape, 3)
    options, pads, plans = _plans(x.shape, k.shape, tuple(x.shape[-3:]), batch, given)
    # the fillvalue check also where no fill is reached ("valid"), as the 2-D functions check it
    check_integral_fill(xp, result_dtype(xp, x.dtype, k.dtype), options.fillvalue)
    if g is not None:
        check_g(x, g, (*batch, *(q.count for q in plans)))
    return xp, Geometry(batch, tuple(plans)), _keywords_2d(given, pads, plans), options


def check_multi(x, w, g, bias, groups, data_format, given: dict, *, every_axis: bool = False):
    """The namespace, whether channels-last, the depth plan (``every_axis``: the plans of the three
    axes), the 2-D keywords and the parsed options of ``corr3d_multi``."""
    last = parse_data_format(data_format)
    xp = check_arrays(x, w, k_name="w")
    layout = "(N, D, H, W, C_in) or (D, H, W, C_in)" if last else "(N, C_in, D, H, W) or (C_in, D, H, W)"
    if x.ndim not in (4, 5):
        raise ValueError(f"x must have shape {layout}; got shape {tuple(x.shape)}")
    if w.ndim != 5:
        raise ValueError(f"w must have shape (C_out, C_in // groups, kd, kh, kw); got shape {tuple(w.shape)}")
    groups = parse_int("groups", groups)
    check_groups(x.shape[-1 if last else -4], x, w, groups)
    if bias is not None:
        check_bias(xp, bias, x, w, x_checked=True)
    sizes = tuple(x.shape[-4:-1] if last else x.shape[-3:])
    options, pads, plans = _plans(x.shape, w.shape, sizes, (*x.shape[:-4], w.shape[0]), given, k_name="w")
    check_integral_fill(xp, result_dtype(xp, x.dtype, w.dtype), options.fillvalue)
    if g is not None:
        counts = tuple(q.count for q in plans)
        out = (*x.shape[:-4], *counts, w.shape[0]) if last else (*x.shape[:-4], w.shape[0], *counts)
        check_g(x, g, out, ' (data_format="channels_last")' if last else "")
    keywords = {**_keywords_2d(given, pads, plans), "groups": groups, "data_format": data_format}
    return xp, last, tuple(plans) if every_axis else plans[0], keywords, options
