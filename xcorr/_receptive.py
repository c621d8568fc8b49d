"""Receptive fields of single-path stacks of sliding-window layers, in closed form.

A layer that slides a window over its input (a convolution, a pooling layer)
is described by a :class:`Window`: kernel size, stride, dilation and padding
per axis. For a stack of such layers, every output element depends on a
rectangle of the input, its *receptive field*. Following Araujo, Norris & Sim,
"Computing Receptive Fields of Convolutional Neural Networks", Distill (2019),
https://distill.pub/2019/computing-receptive-fields/ (equations 1-7 for
single-path networks), with ``k'_l = d_l (k_l - 1) + 1`` the dilated kernel,
``s_l`` the stride and ``p_l`` the padding before the first element of layer
``l``, each axis follows the recurrences

    j_l = j_{l-1} s_l                         (jump, j_0 = 1)
    r_l = r_{l-1} + (k'_l - 1) j_{l-1}        (size, r_0 = 1)
    u_l = u_{l-1} - p_l j_{l-1}               (left edge of the first field, u_0 = 0)

whose solutions are the closed forms ``r_L = 1 + sum_l (k'_l - 1) prod_{i<l} s_i``
and ``u_L = -sum_l p_l prod_{i<l} s_i``; the centre of the first field is
``u_L + (r_L - 1) / 2`` and output element ``i`` has its field ``i * j_L``
input pixels further on.

Nothing here touches array values: it is pure Python on layer descriptions.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import cast

import numpy as np

from ._options import BOUNDARY_ALIASES, parse_pair
from ._options import parse_padding as _parse_pairs
from ._typing import Mode, Pair

__all__ = ["AxisField", "LayerField", "ReceptiveField", "Window", "receptive_field"]

PADDING_NAMES = ("valid", "same", "full")
# lax's and TensorFlow's names (xcorr.Conv2D's padding="SAME"): the padding depends on the input's size.
LAX_PADDING_NAMES = ("SAME", "SAME_LOWER")

PaddingPairs = tuple[tuple[int, int], tuple[int, int]]


def _parse_padding(padding: object) -> str | tuple[int, int] | PaddingPairs:
    names = ", ".join(map(repr, PADDING_NAMES + LAX_PADDING_NAMES))
    what = (
        "padding must be an int >= 0, a pair of them, a pair of (before, after) pairs "
        f"((top, bottom), (left, right)), or one of {names}; got {padding!r}"
    )
    if isinstance(padding, str):
        if padding not in PADDING_NAMES + LAX_PADDING_NAMES:
            raise ValueError(what)
        return padding
    if isinstance(padding, (tuple, list)) and not 1 <= len(padding) <= 2:
        raise ValueError(what)
    if not (isinstance(padding, (tuple, list)) and any(isinstance(p, (tuple, list)) for p in padding)):
        try:
            return parse_pair("padding", padding, minimum=0)
        except TypeError:
            raise TypeError(what) from None
    try:
        pairs = _parse_pairs(padding)
    except (TypeError, ValueError) as err:
        raise type(err)(what) from None
    if not isinstance(pairs, tuple):  # None: all zero (a name is not reached: strings are handled above)
        return (0, 0)
    (top, bottom), (left, right) = pairs
    return (top, left) if (top, left) == (bottom, right) else pairs


@dataclass(frozen=True, init=False)
class Window:
    """A sliding-window layer, as far as geometry goes.

    Describes any layer that slides a ``kernel_size`` window over its input:
    a convolution, a max or average pooling layer. It computes nothing; pass
    it, with :class:`xcorr.Conv2D` layers, to :func:`xcorr.receptive_field`.

    Parameters
    ----------
    kernel_size : int or (int, int)
        Window height and width, each >= 1.
    stride : int or (int, int), default 1
        Step between neighbouring windows, in input elements.
    dilation : int or (int, int), default 1
        Spacing between the window's taps: it covers ``d*(k-1)+1`` elements.
    padding : int, (int, int), ((int, int), (int, int)), "valid", "same", "full", "SAME" or "SAME_LOWER", default 0
        Elements added before (and after) the input along each axis. An int
        or pair pads both sides of each axis by that much (as
        ``torch.nn.Conv2d`` does), ``((top, bottom), (left, right))`` each
        side on its own; "valid" is 0, "same" and "full" are the
        paddings of :func:`xcorr.corr2d`'s modes: ``(k'-1)//2`` before the
        input for "same" (scipy's and torch's centring), ``k'-1`` for "full",
        with ``k'`` the dilated window. "SAME" and "SAME_LOWER" are lax's
        (``padding=`` of :func:`xcorr.corr2d`): with a stride above 1 they
        depend on the input's size, so the stack's ``input_shape`` is needed.

    Raises
    ------
    TypeError, ValueError
        A ``kernel_size``, ``stride`` or ``dilation`` that is not 1 or 2 ints
        >= 1, or a ``padding`` that is neither ints >= 0 nor a known name.

    Examples
    --------
    >>> import xcorr
    >>> xcorr.Window(2, stride=2)          # 2x2 max pooling
    Window((2, 2), stride=(2, 2), dilation=(1, 1), padding=(0, 0))
    >>> xcorr.Window((3, 3), dilation=2, padding="same").pad_before
    (2, 2)
    """

    kernel_size: tuple[int, int]
    stride: tuple[int, int]
    dilation: tuple[int, int]
    padding: str | tuple[int, int] | PaddingPairs

    def __init__(
        self, kernel_size: Pair, /, *, stride: Pair = 1, dilation: Pair = 1, padding: Pair | Mode = 0
    ) -> None:
        object.__setattr__(self, "kernel_size", parse_pair("kernel_size", kernel_size))
        object.__setattr__(self, "stride", parse_pair("stride", stride))
        object.__setattr__(self, "dilation", parse_pair("dilation", dilation))
        object.__setattr__(self, "padding", _parse_padding(padding))

    def __repr__(self) -> str:
        return (
            f"Window({self.kernel_size}, stride={self.stride}, "
            f"dilation={self.dilation}, padding={self.padding!r})"
        )

    @property
    def span(self) -> tuple[int, int]:
        """Extent of the dilated window per axis, ``d*(k-1)+1``."""
        return tuple(d * (k - 1) + 1 for k, d in zip(self.kernel_size, self.dilation))  # type: ignore[return-value]

    @property
    def pad_before(self) -> tuple[int, int]:
        """Padding before the first input element, per axis (``p_l`` above)."""
        return tuple(self._pads(axis)[0] for axis in (0, 1))  # type: ignore[return-value]

    @property
    def pad_after(self) -> tuple[int, int]:
        """Padding after the last input element, per axis."""
        return tuple(self._pads(axis)[1] for axis in (0, 1))  # type: ignore[return-value]

    def _pads(self, axis: int, n: int | None = None) -> tuple[int, int]:
        """(before, after) along ``axis`` for an input of ``n`` elements (None: not known)."""
        span = self.span[axis]
        if self.padding == "valid":
            return (0, 0)
        if self.padding == "same":
            return ((span - 1) // 2, span - 1 - (span - 1) // 2)
        if self.padding == "full":
            return (span - 1, span - 1)
        if self.padding in LAX_PADDING_NAMES:
            s = self.stride[axis]
            if s == 1:
                total = span - 1
            elif n is None:
                msg = (
                    f"{self!r}: padding={self.padding!r} with stride {s} depends on the input's size; "
                    "pass input_shape to receptive_field"
                )
                raise ValueError(msg)
            else:
                total = max((-(-n // s) - 1) * s + span - n, 0)
            small, large = total // 2, total - total // 2
            return (small, large) if self.padding == "SAME" else (large, small)
        p = cast("tuple[int, int] | PaddingPairs", self.padding)[axis]
        return p if isinstance(p, tuple) else (p, p)

    transposed = False

    def _sources(self, axis: int, p: int, n: int, boundary: str):
        """The input elements (of ``n``) that output ``p`` reads along ``axis`` (those a fill reads: none)."""
        k, s, d = self.kernel_size[axis], self.stride[axis], self.dilation[axis]
        before = self._pads(axis, n)[0]
        return {q for a in range(k) if (q := _source(p * s + a * d - before, n, boundary)) is not None}

    def _reach(self, axis: int, p: int, n: int | None) -> list[int]:
        """The input coordinates output ``p`` reads along ``axis``, padding included (unclipped)."""
        k, s, d = self.kernel_size[axis], self.stride[axis], self.dilation[axis]
        before = self._pads(axis, n)[0]
        return [p * s + a * d - before for a in range(k)]

    def output_shape(self, shape: Sequence[int]) -> tuple[int, int]:
        """Height and width of this layer's output for an input of ``shape`` (..., H, W).

        Raises ValueError when the (dilated, padded) window does not fit.
        """
        out = []
        for axis, n in enumerate(tuple(shape)[-2:]):
            before, after = self._pads(axis, n)
            dense = n + before + after - self.span[axis] + 1
            if dense < 1:
                msg = (
                    f"{self!r} does not fit an input of shape {tuple(shape)}: its "
                    f"{'dilated ' if self.dilation[axis] > 1 else ''}window spans "
                    f"{self.span[axis]} elements along axis {axis - 2} but the padded input has "
                    f"{n + before + after}"
                )
                raise ValueError(msg)
            out.append(-(-dense // self.stride[axis]))
        return (out[0], out[1])

    def describe(self) -> str:
        """Short text for tables, e.g. ``3x3 s2 d1 p1``."""
        return f"{_fmt(self.kernel_size)} s{_fmt(self.stride)} d{_fmt(self.dilation)} {_describe_padding(self.padding)}"


def _describe_padding(padding) -> str:
    if isinstance(padding, str):
        return padding
    if isinstance(padding[0], tuple):
        return "p" + _fmt(tuple(f"({a},{b})" for a, b in padding))
    return "p" + _fmt(padding)


@dataclass(frozen=True, init=False, repr=False)
class TransposedWindow(Window):
    """A transposed convolution (``xcorr.Conv2DTranspose``, ``torch.nn.ConvTranspose2d``), as far as geometry goes.

    Input element ``i`` is scattered to output ``i*s + a*d - before`` for the
    taps ``a``; ``padding`` crops the uncropped result (``before`` rows and
    columns at its start, ``after`` at its end) and ``output_padding`` adds
    rows and columns after it. Output ``p`` so reads the inputs
    ``(p + before - a*d) / s`` that are whole numbers inside the input: its
    field shifts by one input element every ``s`` outputs (a jump of
    ``1/s``), and its size can differ from one output to the next.
    """

    output_padding: tuple[int, int]

    def __init__(
        self, kernel_size: Pair, /, *, stride: Pair = 1, dilation: Pair = 1, padding=0, output_padding: Pair = 0
    ) -> None:
        super().__init__(kernel_size, stride=stride, dilation=dilation, padding=padding)
        if isinstance(self.padding, str):
            msg = f"a transposed window's padding must be numbers (before, after); got {self.padding!r}"
            raise ValueError(msg)
        object.__setattr__(self, "output_padding", parse_pair("output_padding", output_padding, minimum=0))

    def __repr__(self) -> str:
        return (
            f"TransposedWindow({self.kernel_size}, stride={self.stride}, dilation={self.dilation}, "
            f"padding={self.padding!r}, output_padding={self.output_padding})"
        )

    transposed = True

    def _sources(self, axis: int, p: int, n: int, boundary: str):
        return {i for i in self._reach(axis, p, n) if 0 <= i < n}

    def _reach(self, axis: int, p: int, n: int | None) -> list[int]:
        # No extension of the input: only whole input positions, never padding.
        k, s, d = self.kernel_size[axis], self.stride[axis], self.dilation[axis]
        before = self._pads(axis, n)[0]
        return [(p + before - a * d) // s for a in range(k) if (p + before - a * d) % s == 0]

    def output_shape(self, shape: Sequence[int]) -> tuple[int, int]:
        """``(n - 1)*s - before - after + d*(k - 1) + 1 + output_padding`` per axis."""
        out = []
        for axis, n in enumerate(tuple(shape)[-2:]):
            before, after = self._pads(axis, n)
            size = (n - 1) * self.stride[axis] - before - after + self.span[axis] + self.output_padding[axis]
            if size < 1:
                msg = f"{self!r} crops the whole output of an input of shape {tuple(shape)} (axis {axis - 2})"
                raise ValueError(msg)
            out.append(size)
        return (out[0], out[1])

    def describe(self) -> str:
        text = f"T {super().describe()}"
        return text if self.output_padding == (0, 0) else f"{text} op{_fmt(self.output_padding)}"


def _fmt(pair, sep: str = "x") -> str:
    """One number when both axes agree, else ``rows{sep}cols``."""
    a, b = (f"{v:g}" if isinstance(v, float) else str(v) for v in pair)
    return a if a == b else f"{a}{sep}{b}"


# -- reading layers -----------------------------------------------------------

def as_window(layer: object, *, name: str = "layer") -> Window:
    """The :class:`Window` of ``layer``.

    Accepts a Window; an :class:`xcorr.Conv2D` (any backend: its
    ``kernel_size``, ``stride``, ``dilation`` and ``mode``, read as the
    padding of that mode); or any object with ``kernel_size`` and
    ``padding`` attributes and optional ``stride`` and ``dilation``, such as
    ``torch.nn.Conv2d``, ``MaxPool2d`` and ``AvgPool2d``.
    """
    if isinstance(layer, Window):
        return layer
    if _is_transposed(layer):
        try:
            return TransposedWindow(
                getattr(layer, "kernel_size"), stride=getattr(layer, "stride", 1),  # noqa: B009 - layer is an object
                dilation=getattr(layer, "dilation", 1), padding=getattr(layer, "padding", 0),
                output_padding=getattr(layer, "output_padding"),  # noqa: B009
            )  # fmt: skip
        except (TypeError, ValueError) as err:
            msg = f"{name} ({type(layer).__name__}) has an invalid geometry: {err}"
            raise type(err)(msg) from None
    if isinstance(layer, (type, str, bytes)) or not hasattr(layer, "kernel_size"):
        msg = (
            f"{name} must be an xcorr.Conv2D, an xcorr.Window, or a layer with kernel_size, "
            f"stride, dilation and padding attributes (e.g. torch.nn.Conv2d); "
            f"got {type(layer).__name__}: {layer!r:.80}"
        )
        raise TypeError(msg)
    padding = getattr(layer, "padding", None) if hasattr(layer, "mode") else None
    if padding is not None:  # xcorr.Conv2D(padding=...): numbers, "SAME" or "SAME_LOWER"
        pass
    elif hasattr(layer, "mode"):  # xcorr.Conv2D: padding is that of its correlation mode
        padding = layer.mode
    elif hasattr(layer, "padding"):
        padding = layer.padding
    else:
        msg = f"{name} ({type(layer).__name__}) has a kernel_size but neither a mode nor a padding attribute"
        raise TypeError(msg)
    kernel_size = layer.kernel_size
    stride = getattr(layer, "stride", 1)
    if stride is None:  # torch pooling layers: stride defaults to the kernel size
        stride = kernel_size
    try:
        return Window(kernel_size, stride=stride, dilation=getattr(layer, "dilation", 1), padding=padding)
    except (TypeError, ValueError) as err:
        msg = f"{name} ({type(layer).__name__}) has an invalid geometry: {err}"
        raise type(err)(msg) from None


def _is_transposed(layer: object) -> bool:
    """xcorr.Conv2DTranspose (any backend), or a torch.nn.ConvTranspose2d (``transposed`` True)."""
    from ._layer import Conv2DTranspose

    if isinstance(layer, Conv2DTranspose):
        return True
    return getattr(layer, "transposed", False) is True and hasattr(layer, "output_padding")


def _layer_name(layer: object) -> str:
    from ._layer import Conv2D, Conv2DTranspose  # every backend's layer class derives from them

    if isinstance(layer, Conv2DTranspose):
        return "Conv2DTranspose"
    if isinstance(layer, Conv2D):
        return "Conv2D"
    return type(layer).__name__


# -- the result -----------------------------------------------------------------


@dataclass(frozen=True)
class AxisField:
    """Receptive field along one axis, after some layer.

    ``size``: input elements the field spans; ``jump``: input elements
    between the fields of neighbouring outputs; ``start``: input coordinate of
    the centre of the first output's field (a half-integer for even sizes,
    negative when the field reaches into the padding).
    """

    size: int
    jump: int
    start: float

    @property
    def first(self) -> int:
        """Input coordinate of the first element of the first output's field (``u``)."""
        return int(self.start - (self.size - 1) / 2)

    def bounds(self, i: int) -> tuple[int, int]:
        """First and last input coordinate (inclusive) of output ``i``'s field, unclipped."""
        lo = self.first + i * self.jump
        return (lo, lo + self.size - 1)


@dataclass(frozen=True)
class PeriodicAxisField(AxisField):
    """The field along one axis of a stack with transposed convolutions.

    Their outputs' fields are not all of one size: ``size`` is the largest,
    ``jump`` a fraction (input elements per output, on average: ``1/s`` for a
    transposed stride ``s``), ``start`` the centre of the first output's
    field (of the first that reads any input: with a dilation and a stride
    that share a factor, some outputs of a transposed layer read none). The
    fields repeat, shifted by ``shift`` input elements, every
    ``len(period)`` outputs; ``period`` holds the (first, last) input
    coordinates of the first ``len(period)`` outputs' fields, None for those
    that read no input (where a transposed layer's input ends is not taken
    into account: the fields may reach past it, where no input is).
    """

    period: tuple[tuple[int, int] | None, ...] = ()
    shift: int = 0

    @property
    def first(self) -> int:
        return next(f for f in self.period if f is not None)[0]

    def bounds(self, i: int) -> tuple[int, int] | None:  # type: ignore[override]
        """First and last input coordinate of output ``i``'s field, or None where it reads no input."""
        q, r = divmod(i, len(self.period))
        field = self.period[r]
        if field is None:
            return None
        return (field[0] + q * self.shift, field[1] + q * self.shift)


@dataclass(frozen=True)
class LayerField:
    """One row of the table: a layer and the receptive field of its outputs."""

    index: int
    name: str
    window: Window
    rows: AxisField
    cols: AxisField
    output_shape: tuple[int, int] | None = None
    boundary: str = "fill"

    @property
    def size(self) -> tuple[int, int]:
        """(rows, cols) field size in input elements."""
        return (self.rows.size, self.cols.size)

    @property
    def jump(self) -> tuple[int, int]:
        """(rows, cols) input elements between neighbouring outputs' fields."""
        return (self.rows.jump, self.cols.jump)

    @property
    def start(self) -> tuple[float, float]:
        """(rows, cols) input coordinate of the centre of the first output's field."""
        return (self.rows.start, self.cols.start)


@dataclass(frozen=True)
class ReceptiveField:
    """Receptive field of a stack of layers: the result of :func:`receptive_field`.

    Attributes
    ----------
    size, jump, start : (rows, cols) pairs
        For the last layer's outputs: field size in input elements, distance
        in input elements between neighbouring outputs' fields, and the input
        coordinate of the centre of the first output's field.
    rows, cols : AxisField
        The same, one axis at a time.
    layers : tuple of LayerField
        The field after each layer, first to last; ``layers[-1]`` is the
        whole stack. ``str(result)`` prints them as a table.
    input_shape : (H, W) or None
        When given to :func:`receptive_field`, every layer also records its
        output shape.
    channels_last : bool
        Whether the stack's layers take ``(..., H, W, C)`` arrays
        (``data_format="channels_last"``): shapes and indices then have their
        spatial entries before the channel.
    """

    layers: tuple[LayerField, ...]
    input_shape: tuple[int, int] | None = None
    channels_last: bool = False

    @property
    def rows(self) -> AxisField:
        return self.layers[-1].rows

    @property
    def cols(self) -> AxisField:
        return self.layers[-1].cols

    @property
    def size(self) -> tuple[int, int]:
        return self.layers[-1].size

    @property
    def jump(self) -> tuple[int, int]:
        return self.layers[-1].jump

    @property
    def start(self) -> tuple[float, float]:
        return self.layers[-1].start

    @property
    def windows(self) -> tuple[Window, ...]:
        return tuple(layer.window for layer in self.layers)

    def bounds(self, index: Sequence[int]) -> tuple[tuple[int, int], tuple[int, int]]:
        """Input rows and columns (first, last; inclusive) of output ``index``'s field.

        ``index`` is ``(i, j)`` or any longer output index whose last two
        entries are the spatial ones. The bounds are not clipped to the
        input: they can reach into the padding. After a transposed layer an
        axis's bounds are None for an output that reads no input along it.
        """
        i, j = _spatial_index(index, self.channels_last)
        return (self.rows.bounds(i), self.cols.bounds(j))

    def mask(self, index: Sequence[int], shape: Sequence[int]) -> np.ndarray:
        """Boolean (H, W) NumPy mask of the input elements output ``index`` depends on.

        Exact, not just the bounding box: it follows each layer's taps back
        to the input, so a dilated stack's field has holes where no tap
        lands, and taps that fall into a layer's (zero) padding reach no
        input. This is the set where the gradient of that output is non-zero
        for generic weights (e.g. positive ones); see
        :func:`xcorr.empirical_receptive_field`. ``shape`` is the input's
        shape (..., H, W). A ``Conv2D`` with a "wrap" or "symm" boundary
        (or a torch layer with ``padding_mode`` "circular", "reflect" or
        "replicate") reads its padding from its input, so near the edges its
        taps reach the elements that padding copies. For a channels-last stack
        ``shape`` is (..., H, W, C) and ``index`` (..., i, j, c) or (i, j).
        """
        shape = tuple(shape)
        spatial = _spatial_shape(shape, self.channels_last, "shape")
        i, j = _spatial_index(index, self.channels_last)
        sizes = [spatial]
        for window in self.windows:
            sizes.append(window.output_shape(sizes[-1]))
        out = sizes[-1]
        if not (0 <= i < out[0] and 0 <= j < out[1]):
            msg = f"index {tuple(index)} is outside the stack's output of shape {out} for input shape {shape}"
            raise IndexError(msg)
        masks = []
        for axis, position in ((0, i), (1, j)):
            reached = {position}
            for layer, n in zip(reversed(self.layers), reversed([s[axis] for s in sizes[:-1]])):
                reached = set().union(*(layer.window._sources(axis, p, n, layer.boundary) for p in reached))
            axis_mask = np.zeros(spatial[axis], dtype=bool)
            axis_mask[sorted(reached)] = True
            masks.append(axis_mask)
        return masks[0][:, None] & masks[1][None, :]

    def table(self) -> str:
        """The per-layer table that ``str()`` prints."""
        header = ["layer", "window", "size", "jump", "start"]
        if self.input_shape is not None:
            header.append("output")
        rows = [header]
        if self.input_shape is not None:
            rows.append(["input", "", "1", "1", "0", "{}x{}".format(*self.input_shape)])
        for layer in self.layers:
            row = [
                f"{layer.index}: {layer.name}",
                layer.window.describe() + ("" if layer.boundary == "fill" else f" {layer.boundary}"),
                _fmt(layer.size),
                _fmt(layer.jump),
                _fmt(layer.start, ", "),
            ]
            if layer.output_shape is not None:
                row.append("{}x{}".format(*layer.output_shape))
            rows.append(row)
        widths = [max(len(r[c]) for r in rows) for c in range(len(header))]
        lines = []
        for n, row in enumerate(rows):
            cells = [cell.ljust(w) if c < 2 else cell.rjust(w) for c, (cell, w) in enumerate(zip(row, widths))]
            lines.append("  ".join(cells).rstrip())
            if n == 0:
                lines.append("  ".join("-" * w for w in widths))
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()


def _source(q: int, n: int, boundary: str) -> int | None:
    """The input element that padded position ``q`` of an axis of ``n`` elements copies, or None."""
    if 0 <= q < n:
        return q
    if boundary == "wrap":
        return q % n
    if boundary == "symm":  # mirror with the edge repeated, period 2n
        m = q % (2 * n)
        return m if m < n else 2 * n - 1 - m
    if boundary == "reflect":  # mirror without repeating the edge, period 2n - 2
        if n == 1:
            return 0
        m = q % (2 * n - 2)
        return m if m < n else 2 * n - 2 - m
    if boundary in ("replicate", "edge"):
        return min(max(q, 0), n - 1)
    return None  # "fill": a constant, no input


# torch.nn.Conv2d's padding_mode, as boundaries
_PADDING_MODES = {"zeros": "fill", "circular": "wrap", "reflect": "reflect", "replicate": "replicate"}


def _boundary(layer: object) -> str:
    """How ``layer`` fills its padding: "fill" (a constant), "wrap", "symm", "reflect", "replicate"."""
    if isinstance(layer, Window):
        return "fill"
    boundary = getattr(layer, "boundary", None)
    if isinstance(boundary, str):
        return BOUNDARY_ALIASES.get(boundary, "fill")
    return _PADDING_MODES.get(getattr(layer, "padding_mode", "zeros"), "fill")


def _spatial_index(index: Sequence[int], channels_last: bool = False) -> tuple[int, int]:
    """(row, column) of an output index: its last two entries, or for channels-last layers
    (..., row, column, channel) the two before the channel (a pair is (row, column) in both)."""
    try:
        items = tuple(operator.index(v) for v in index)
    except TypeError:
        msg = f"index must be a sequence of ints ending in (row, column); got {index!r}"
        raise TypeError(msg) from None
    if len(items) < 2:
        msg = f"index must end in (row, column); got {index!r}"
        raise ValueError(msg)
    if channels_last and len(items) >= 3:
        return items[-3], items[-2]
    return items[-2], items[-1]


def _spatial_shape(shape: tuple, channels_last: bool, name: str) -> tuple[int, int]:
    """(H, W) of a shape (..., H, W), or (..., H, W, C) for channels-last layers."""
    need = 3 if channels_last else 2
    if len(shape) < need:
        layout = "(..., H, W, C) (channels-last layers)" if channels_last else "(..., H, W)"
        msg = f"{name} must have at least {need} entries, as {name} must be {layout}; got {shape}"
        raise ValueError(msg)
    return (shape[-3], shape[-2]) if channels_last else (shape[-2], shape[-1])


def _channels_last(layers: Sequence[object]) -> bool:
    """Whether the stack's layers are channels-last (``data_format``; they must all agree)."""
    formats = {f for layer in layers if isinstance(f := getattr(layer, "data_format", None), str)}
    if len(formats) > 1:
        msg = f"the layers mix data formats {sorted(formats)}: a stack takes one layout"
        raise ValueError(msg)
    return formats == {"channels_last"}


def _axis_field(windows: Sequence[Window], axis: int, sizes: Sequence[int] | None) -> AxisField:
    """The field along ``axis`` of the stack ``windows`` (first first); ``sizes``: each one's input size."""

    def n_of(n: int) -> int | None:
        return None if sizes is None else sizes[n]

    if not any(w.transposed for w in windows):
        # The closed forms (size, jump, first): exact for sliding windows.
        size, jump, first = 1, 1, 0
        for n, window in enumerate(windows):
            size += (window.span[axis] - 1) * jump
            first -= window._pads(axis, n_of(n))[0] * jump
            jump *= window.stride[axis]
        return AxisField(size, jump, first + (size - 1) / 2)
    # The outputs' fields repeat every `period` outputs (the product of the transposed strides),
    # `shift` input elements on: trace the taps of one period back to the input, unclipped.
    period = math.prod(w.stride[axis] for w in windows if w.transposed)
    ratio = Fraction(1)
    for w in windows:
        ratio = ratio / w.stride[axis] if w.transposed else ratio * w.stride[axis]
    fields: list[tuple[int, int] | None] = []
    for p in range(period):
        reached = {p}
        for n in range(len(windows) - 1, -1, -1):
            reached = {q for r in reached for q in windows[n]._reach(axis, r, n_of(n))}
        # None: the taps of a transposed layer miss every input position of this output.
        fields.append((min(reached), max(reached)) if reached else None)
    read = [f for f in fields if f is not None]
    size = max(hi - lo + 1 for lo, hi in read)
    lo, hi = read[0]
    return PeriodicAxisField(size, ratio, (lo + hi) / 2, tuple(fields), int(ratio * period))  # type: ignore[arg-type]


def receptive_field(
    layers: object | Sequence[object], /, *, input_shape: Sequence[int] | None = None
) -> ReceptiveField:
    """Receptive field of a single-path stack of sliding-window layers.

    Uses the closed forms of Araujo, Norris & Sim, "Computing Receptive
    Fields of Convolutional Neural Networks", Distill (2019),
    https://distill.pub/2019/computing-receptive-fields/, per axis: with
    ``k'_l = d_l (k_l - 1) + 1`` the dilated kernel, ``s_l`` the stride and
    ``p_l`` the padding before the input of layer ``l``,

    - size ``r = 1 + sum_l (k'_l - 1) prod_{i<l} s_i``,
    - jump ``j = prod_l s_l``,
    - start ``u + (r - 1) / 2`` with ``u = -sum_l p_l prod_{i<l} s_i``.

    Output element ``i`` depends on input elements ``u + i*j`` to
    ``u + i*j + r - 1`` (some of them padding, and with holes for dilated
    layers: see :meth:`ReceptiveField.mask`). Single-path only: for networks
    with branches or skip connections, measure the field with
    :func:`xcorr.empirical_receptive_field`.

    Parameters
    ----------
    layers : sequence of Conv2D or Window
        The stack, first layer first. A :class:`xcorr.Conv2D` (any backend)
        contributes its kernel size, stride, dilation and the padding of its
        ``mode``; a :class:`xcorr.Window` describes pooling or any other
        sliding window. Objects with ``kernel_size``/``stride``/``dilation``/
        ``padding`` attributes (``torch.nn.Conv2d``, ``MaxPool2d``) work too.
        A :class:`xcorr.Conv2DTranspose` (or ``torch.nn.ConvTranspose2d``)
        scatters its input: after one, the jump is a fraction and the fields
        of neighbouring outputs can differ in size (``size`` is the largest;
        :meth:`ReceptiveField.mask` and :meth:`ReceptiveField.bounds` are
        exact per output). A single layer is a stack of one.
    input_shape : (..., H, W), optional
        If given, each layer also records its output shape (shown in the
        table), and a layer that does not fit raises ValueError; (..., H, W, C)
        for channels-last layers. Needed for lax's "SAME" padding with a
        stride above 1, which depends on the input's size.

    Returns
    -------
    ReceptiveField
        ``.size``, ``.jump``, ``.start`` as (rows, cols) pairs for the whole
        stack, ``.layers`` for each prefix of it; ``print()`` shows a table.

    Raises
    ------
    TypeError
        ``layers`` is not a sequence, or an entry is not a layer; the message
        names the entry (``layers[2]``).
    ValueError
        An empty stack, an entry with an invalid geometry, or (with
        ``input_shape``) a layer whose window does not fit its input.

    Examples
    --------
    >>> import xcorr
    >>> rf = xcorr.receptive_field([xcorr.Window(3), xcorr.Window(2, stride=2), xcorr.Window(3)])
    >>> rf.size, rf.jump, rf.start
    ((8, 8), (2, 2), (3.5, 3.5))
    """
    if isinstance(layers, Window) or hasattr(layers, "kernel_size"):
        layers = [layers]
    if isinstance(layers, (str, bytes)) or not isinstance(layers, Sequence):
        # torch.nn.Sequential and other iterables of layers
        if hasattr(layers, "__iter__") and not isinstance(layers, (str, bytes)):
            layers = list(layers)
        else:
            msg = f"layers must be a sequence of Conv2D layers and/or Windows; got {type(layers).__name__}"
            raise TypeError(msg)
    if len(layers) == 0:
        msg = "layers must contain at least one Conv2D layer or Window; got an empty sequence"
        raise ValueError(msg)
    windows = [as_window(layer, name=f"layers[{n}]") for n, layer in enumerate(layers)]
    channels_last = _channels_last(layers)
    shape = None
    if input_shape is not None:
        layout = "(..., H, W, C)" if channels_last else "(..., H, W)"
        try:
            given = tuple(operator.index(n) for n in tuple(input_shape))
        except TypeError:
            msg = f"input_shape must be a sequence of ints {layout}; got {input_shape!r}"
            raise TypeError(msg) from None
        shape = _spatial_shape(given, channels_last, "input_shape")
        if min(shape) < 1:
            msg = f"input_shape must be {layout} with H, W >= 1; got {input_shape!r}"
            raise ValueError(msg)
    input_hw = None if shape is None else (shape[0], shape[1])
    fields = []
    sizes: list[tuple[int, int]] | None = [] if shape is not None else None  # each layer's input (H, W)
    for n, (layer, window) in enumerate(zip(layers, windows)):
        out = None
        if shape is not None and sizes is not None:
            sizes.append(shape)
            try:
                out = window.output_shape(shape)
            except ValueError as err:
                msg = f"layers[{n}]: {err}"
                raise ValueError(msg) from None
            shape = out
        try:
            rows, cols = (
                _axis_field(windows[: n + 1], axis, None if sizes is None else [hw[axis] for hw in sizes])
                for axis in (0, 1)
            )
        except ValueError as err:
            msg = f"layers[{n}]: {err}"
            raise ValueError(msg) from None
        fields.append(LayerField(n, _layer_name(layer), window, rows, cols, out, _boundary(layer)))
    return ReceptiveField(tuple(fields), input_hw, channels_last)
