"""A transposed convolution's vocabulary: its padding rules and its plan (``TransposePlan``).

``padding`` crops the uncropped result of the scatter (the adjoint of
zero-padding the forward input); "SAME" and "VALID" resolve to numbers from
the kernel, stride and dilation; ``output_padding`` adds rows and columns
after the crop. :func:`plan_transpose` turns them into the forward (valid,
zero-filled) correlation's options and geometry on the uncropped extent.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass

from ._layout import check_last, parse_data_format
from ._options import MAX_AXIS, Geometry, Options, check_arrays, parse_int, parse_pair, plan, result_dtype

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
    def symmetric_padding(self) -> tuple[int, int] | None:
        """``(ph, pw)`` where the padding is symmetric (one width per axis), else None."""
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
