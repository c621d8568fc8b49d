"""A transposed convolution's plan (``TransposePlan``); its padding rules are ``_padding``'s.

``padding`` crops the uncropped result of the scatter (the adjoint of
zero-padding the forward input); "SAME" and "VALID" resolve to numbers from
the kernel, stride and dilation; ``output_padding`` adds rows and columns
after the crop. :func:`plan_transpose` turns them into the forward (valid,
zero-filled) correlation's options and geometry on the uncropped extent.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ._layout import check_last, parse_data_format
from ._options import MAX_AXIS, MAX_ELEMENTS, SPATIAL, Geometry, Options, check_arrays, plan, result_dtype
from ._padding import PaddingPairs, parse_int, parse_pair, parse_transpose_padding, resolve_transpose_padding


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
    padding: PaddingPairs
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


def transposed_sizes(
    sizes, taps, strides, dilations, pairs, output_padding, batch=(), *, channels_last=False
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """``(full, out)``, per spatial axis (1, 2 or 3): the size of a transposed convolution of an input of
    ``sizes`` with a kernel of ``taps`` before the crop ``pairs`` and after it (``output_padding``
    added), checked: the kernel and the input not empty, within ``MAX_AXIS`` before the crop, one
    element at least after it, and within ``MAX_ELEMENTS`` with the ``batch`` (and channels) in front
    (a channels-last output's channels, ``batch[-1]``, shown after its spatial axes)."""
    if 0 in taps:
        raise ValueError(f"the kernel must not be empty; got kernel size {tuple(taps)}")
    if 0 in sizes:
        raise ValueError(f"x must not be empty in {SPATIAL[len(sizes)]}; got size {tuple(sizes)}")

    def show(values):  # one number per axis; a 1-D call's alone
        return values[0] if len(sizes) == 1 else tuple(values)

    given = (
        f"an input of size {show(sizes)} with kernel {show(taps)}, stride {show(strides)} "
        f"and dilation {show(dilations)}"
    )
    full = tuple((n - 1) * s + d * (k - 1) + 1 for n, s, d, k in zip(sizes, strides, dilations, taps))
    if max(full) > MAX_AXIS:
        msg = (
            f"the transposed convolution of {given} would have size {show(full)} before the crop: beyond "
            f"xcorr's limit of 2**31 - 1 = {MAX_AXIS} per axis (the int32 range)"
        )
        raise ValueError(msg)
    out = tuple(f - p[0] - p[1] + op for f, p, op in zip(full, pairs, output_padding))
    if min(out) < 1:
        msg = (
            f"padding {show(pairs)} crops the whole output: {given} gives {show(full)} before the crop, "
            f"{show(out)} after it (output_padding {show(output_padding)})"
        )
        raise ValueError(msg)
    if math.prod((*batch, *out)) > MAX_ELEMENTS:
        shape = (*batch[:-1], *out, batch[-1]) if channels_last else (*batch, *out)
        raise ValueError(f"the output of shape {shape} is beyond xcorr's limit of 2**48 = {MAX_ELEMENTS} elements")
    return full, out


def plan_transpose(
    hw: tuple[int, int],
    kernel: tuple[int, int],
    stride,
    dilation,
    padding: PaddingPairs,
    output_padding,
    groups,
    channels_last,
    batch=(),
) -> TransposePlan:
    """The plan of an input of spatial size ``hw`` and a kernel of ``kernel`` (checks the output size,
    with the ``batch`` and channels in front of it)."""
    full, _ = transposed_sizes(hw, kernel, stride, dilation, padding, output_padding, batch, channels_last=channels_last)
    options = Options(stride=tuple(stride), dilation=tuple(dilation))
    geometry = plan(full, kernel, options)
    return TransposePlan(options, geometry, groups, padding, tuple(output_padding), channels_last)


def check_transpose_multi(x, w, stride, padding, output_padding, dilation, groups, data_format):
    """Check the arguments of ``conv_transpose2d``; return the namespace and the plan."""
    channels_last = parse_data_format(data_format)
    stride = parse_pair("stride", stride)
    dilation = parse_pair("dilation", dilation)
    parsed = parse_transpose_padding(padding)
    groups = parse_int("groups", groups)
    xp = check_arrays(x, w, k_name="w")
    if w.ndim != 4:
        msg = f"w must have shape (C_in, C_out // groups, h, w); got shape {tuple(w.shape)}"
        raise ValueError(msg)
    padding, output_padding = resolve_transpose_padding(parsed, output_padding, tuple(w.shape[-2:]), stride, dilation)
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
    result_dtype(xp, x.dtype, w.dtype)  # a TypeError where the library has no common dtype
    hw = tuple(x.shape[-3:-1]) if channels_last else tuple(x.shape[-2:])
    batch = (*x.shape[:-3], w.shape[1] * groups)  # the output's batch and channels
    tp = plan_transpose(hw, tuple(w.shape[-2:]), stride, dilation, padding, output_padding, groups, channels_last, batch)
    return xp, tp


def out_shape(x, w, tp: TransposePlan) -> tuple[int, ...]:
    c_out = w.shape[1] * tp.groups
    if tp.channels_last:
        return (*x.shape[:-3], *tp.out_hw, c_out)
    return (*x.shape[:-3], c_out, *tp.out_hw)


@dataclass(frozen=True)
class Reach:
    """Along one axis, the taps ``[a0, a1)`` and inputs ``[i0, i1)`` whose scatter reaches the output's
    rows ``[e0, e1)`` of the uncropped extent: their own scatter spans ``extent`` positions from
    ``i0 * step + a0 * dilation``, in which the output starts at ``offset`` (negative or past the end
    where no tap lands). Empty (``i0 == i1``) where nothing reaches the output."""

    a0: int
    a1: int
    i0: int
    i1: int
    offset: int
    extent: int

    @property
    def empty(self) -> bool:
        return self.i0 >= self.i1


def axis_reach(ap, e0: int, e1: int) -> Reach:
    """The :class:`Reach` of the forward plan ``ap`` (on the uncropped extent) for output rows ``[e0, e1)``."""
    length = (ap.count - 1) * ap.step  # tap a scatters onto a * dilation .. a * dilation + length
    a0 = max(0, -(-(e0 - length) // ap.dilation))
    a1 = min(ap.taps, (e1 - 1) // ap.dilation + 1)
    if a0 >= a1:
        return Reach(0, 0, 0, 0, 0, 0)
    i0 = max(0, -(-(e0 - (a1 - 1) * ap.dilation) // ap.step))
    i1 = min(ap.count, (e1 - 1 - a0 * ap.dilation) // ap.step + 1)
    if i0 >= i1:
        return Reach(0, 0, 0, 0, 0, 0)
    start = i0 * ap.step + a0 * ap.dilation
    return Reach(a0, a1, i0, i1, e0 - start, (i1 - i0 - 1) * ap.step + (a1 - 1 - a0) * ap.dilation + 1)


def reduce_transpose(tp: TransposePlan) -> tuple[TransposePlan, TransposePlan, Reach, Reach] | None:
    """``(sub, window, rows, cols)``: the transposed convolution restricted to the inputs and taps that
    reach the output, where that is under half the uncropped extent (a dilation and a padding far
    larger than the output); None otherwise.

    ``sub`` is the uncropped channels-first plan of ``x[..., i0:i1, j0:j1]`` and
    ``w[..., a0:a1, b0:b1]``; ``window`` crops the output from ``sub``'s result
    (``_composite.crop``; its padding may be negative, zeros where nothing lands).
    """
    (top, _), (left, _) = tp.padding
    out_r, out_c = tp.out_hw
    rows, cols = tp.geometry.rows, tp.geometry.cols
    rr, rc = axis_reach(rows, top, top + out_r), axis_reach(cols, left, left + out_c)
    if not (rr.empty or rc.empty) and 2 * rr.extent * rc.extent >= rows.size * cols.size:
        return None
    if rr.empty or rc.empty:
        return tp, tp, rr, rc
    geometry = plan((rr.extent, rc.extent), (rr.a1 - rr.a0, rc.a1 - rc.a0), tp.options)
    sub = TransposePlan(tp.options, geometry, tp.groups, ((0, 0), (0, 0)), (0, 0), False)
    padding = ((rr.offset, rr.extent - rr.offset - out_r), (rc.offset, rc.extent - rc.offset - out_c))
    window = TransposePlan(tp.options, geometry, tp.groups, padding, (0, 0), False)
    return sub, window, rr, rc
