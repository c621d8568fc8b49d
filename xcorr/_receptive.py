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

import numpy as np

from ._options import BOUNDARY_ALIASES
from ._padding import SPATIAL_LAYOUTS
from ._windows import Window, _fmt, _layer_name, as_window, common_ndim

__all__ = ["AxisField", "LayerField", "ReceptiveField", "Window", "receptive_field"]


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
    """One row of the table: a layer and the receptive field of its outputs, one :class:`AxisField` per axis."""

    index: int
    name: str
    window: Window
    axes: tuple[AxisField, ...]
    output_shape: tuple[int, ...] | None = None
    boundary: str = "fill"

    @property
    def rows(self) -> AxisField:
        """The field along the rows (the last axis but one; 2-D and 3-D)."""
        return _rows(self.axes)

    @property
    def cols(self) -> AxisField:
        """The field along the columns (the last axis)."""
        return self.axes[-1]

    @property
    def size(self) -> tuple[int, ...]:
        """Field size in input elements per axis: (rows, cols) in 2-D."""
        return tuple(a.size for a in self.axes)

    @property
    def jump(self) -> tuple[int, ...]:
        """Input elements between neighbouring outputs' fields, per axis."""
        return tuple(a.jump for a in self.axes)

    @property
    def start(self) -> tuple[float, ...]:
        """Input coordinate of the centre of the first output's field, per axis."""
        return tuple(a.start for a in self.axes)


def _rows(axes: tuple[AxisField, ...]) -> AxisField:
    if len(axes) < 2:
        msg = "a 1-D field has no rows: its one axis is .cols (or .axes[0])"
        raise AttributeError(msg)
    return axes[-2]


@dataclass(frozen=True)
class ReceptiveField:
    """Receptive field of a stack of layers: the result of :func:`receptive_field`.

    Attributes
    ----------
    size, jump, start : tuples, one entry per spatial axis
        For the last layer's outputs: field size in input elements, distance
        in input elements between neighbouring outputs' fields, and the input
        coordinate of the centre of the first output's field. (rows, cols)
        pairs in 2-D, (depth, rows, cols) in 3-D, one entry in 1-D.
    ndim : int
        The number of spatial axes (1, 2 or 3), that of the stack's layers.
    axes : tuple of AxisField
        The same, one axis at a time; ``rows`` and ``cols`` are the last two
        (``cols`` the only one in 1-D).
    layers : tuple of LayerField
        The field after each layer, first to last; ``layers[-1]`` is the
        whole stack. ``str(result)`` prints them as a table.
    input_shape : tuple of int or None
        The input's spatial shape ((H, W) in 2-D), when given to
        :func:`receptive_field`: every layer then also records its output
        shape.
    channels_last : bool
        Whether the stack's layers take ``(..., H, W, C)`` arrays
        (``data_format="channels_last"``): shapes and indices then have their
        spatial entries before the channel.

    Parameters
    ----------
    layers : tuple of LayerField
        As the attribute; :func:`receptive_field` makes the result (it is not
        made by hand).
    input_shape : tuple of int, optional
        As the attribute.
    channels_last : bool, default False
        As the attribute.

    Examples
    --------
    >>> import xcorr
    >>> rf = xcorr.receptive_field([xcorr.Window(3), xcorr.Window(2, stride=2)])
    >>> rf.size, rf.rows
    ((4, 4), AxisField(size=4, jump=2, start=1.5))
    >>> print(rf)
    layer      window      size  jump  start
    ---------  ----------  ----  ----  -----
    0: Window  3 s1 d1 p0     3     1      1
    1: Window  2 s2 d1 p0     4     2    1.5
    """

    layers: tuple[LayerField, ...]
    input_shape: tuple[int, ...] | None = None
    channels_last: bool = False

    @property
    def ndim(self) -> int:
        return len(self.layers[-1].axes)

    @property
    def axes(self) -> tuple[AxisField, ...]:
        return self.layers[-1].axes

    @property
    def rows(self) -> AxisField:
        return self.layers[-1].rows

    @property
    def cols(self) -> AxisField:
        return self.layers[-1].cols

    @property
    def size(self) -> tuple[int, ...]:
        return self.layers[-1].size

    @property
    def jump(self) -> tuple[int, ...]:
        return self.layers[-1].jump

    @property
    def start(self) -> tuple[float, ...]:
        return self.layers[-1].start

    @property
    def windows(self) -> tuple[Window, ...]:
        return tuple(layer.window for layer in self.layers)

    def bounds(self, index: Sequence[int]) -> tuple[tuple[int, int], ...]:
        """Input rows and columns (first, last; inclusive) of output ``index``'s field.

        ``index`` is ``(i, j)`` or any longer output index whose last two
        entries are the spatial ones (in 1-D and 3-D: its last one or three
        entries; one (first, last) pair per axis comes back). The bounds are
        not clipped to the input: they can reach into the padding. After a
        transposed layer an axis's bounds are None for an output that reads
        no input along it.
        """
        spatial = _spatial_index(index, self.channels_last, self.ndim)
        return tuple(axis.bounds(i) for axis, i in zip(self.axes, spatial))

    def mask(self, index: Sequence[int], shape: Sequence[int]) -> np.ndarray:
        """Boolean (H, W) NumPy mask of the input elements output ``index`` depends on (any ``ndim``).

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
        A 1-D stack's mask has shape (L,), a 3-D stack's (D, H, W), from a
        ``shape`` (..., L) or (..., D, H, W) and an index ending in (i,) or
        (d, i, j).
        """
        shape = tuple(shape)
        spatial = _spatial_shape(shape, self.channels_last, "shape", self.ndim)
        where = _spatial_index(index, self.channels_last, self.ndim)
        sizes = [spatial]
        for window in self.windows:
            sizes.append(window.output_shape(sizes[-1]))
        out = sizes[-1]
        if not all(0 <= i < n for i, n in zip(where, out)):
            msg = f"index {tuple(index)} is outside the stack's output of shape {out} for input shape {shape}"
            raise IndexError(msg)
        mask = np.ones((), dtype=bool)
        for axis, position in enumerate(where):
            reached = {position}
            for layer, n in zip(reversed(self.layers), reversed([s[axis] for s in sizes[:-1]])):
                reached = set().union(*(layer.window._sources(axis, p, n, layer.boundary) for p in reached))
            axis_mask = np.zeros(spatial[axis], dtype=bool)
            axis_mask[sorted(reached)] = True
            mask = mask[..., None] & axis_mask  # the outer product, one axis at a time
        return mask

    def table(self) -> str:
        """The per-layer table that ``str()`` prints."""
        header = ["layer", "window", "size", "jump", "start"]
        if self.input_shape is not None:
            header.append("output")
        rows = [header]
        if self.input_shape is not None:
            rows.append(["input", "", "1", "1", "0", "x".join(map(str, self.input_shape))])
        for layer in self.layers:
            row = [
                f"{layer.index}: {layer.name}",
                layer.window.describe() + ("" if layer.boundary == "fill" else f" {layer.boundary}"),
                _fmt(layer.size),
                _fmt(layer.jump),
                _fmt(layer.start, ", "),
            ]
            if layer.output_shape is not None:
                row.append("x".join(map(str, layer.output_shape)))
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


_INDEX_ENDS = {1: "(i,)", 2: "(row, column)", 3: "(depth, row, column)"}


def _spatial_index(index: Sequence[int], channels_last: bool = False, ndim: int = 2) -> tuple[int, ...]:
    """The ``ndim`` spatial entries of an output index, (row, column) in 2-D: its last ``ndim``
    entries, or for channels-last layers (..., row, column, channel) those before the channel
    (``ndim`` entries alone are the spatial ones in both)."""
    end = _INDEX_ENDS[ndim]
    try:
        items = tuple(operator.index(v) for v in index)
    except TypeError:
        msg = f"index must be a sequence of ints ending in {end}; got {index!r}"
        raise TypeError(msg) from None
    if len(items) < ndim:
        msg = f"index must end in {end}; got {index!r}"
        raise ValueError(msg)
    if channels_last and len(items) > ndim:
        return items[-ndim - 1 : -1]
    return items[-ndim:]


def _spatial_shape(shape: tuple, channels_last: bool, name: str, ndim: int = 2) -> tuple[int, ...]:
    """(H, W) of a shape (..., H, W), or (..., H, W, C) for channels-last layers; (L,) and (D, H, W) likewise."""
    need = ndim + 1 if channels_last else ndim
    if len(shape) < need:
        layout = _layout(ndim, channels_last) + (" (channels-last layers)" if channels_last else "")
        msg = f"{name} must have at least {need} entries, as {name} must be {layout}; got {shape}"
        raise ValueError(msg)
    return tuple(shape[-ndim - 1 : -1]) if channels_last else tuple(shape[-ndim:])


def _layout(ndim: int, channels_last: bool) -> str:
    """``(..., H, W)`` or ``(..., H, W, C)``, with the spatial axes of ``ndim``."""
    return f"(..., {SPATIAL_LAYOUTS[ndim]}{', C' if channels_last else ''})"


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
        The stack may be 1-D or 3-D as well (:class:`xcorr.Conv1D`,
        :class:`xcorr.Conv3D`, their transposed layers, ``torch.nn.Conv1d``,
        ``MaxPool3d``, ``Window((5,))``, ...): every layer must have the same
        number of spatial axes, and the results have one entry per axis.
        A :class:`xcorr.Conv2DTranspose` (or ``torch.nn.ConvTranspose2d``)
        scatters its input: after one, the jump is a fraction and the fields
        of neighbouring outputs can differ in size (``size`` is the largest;
        :meth:`ReceptiveField.mask` and :meth:`ReceptiveField.bounds` are
        exact per output). A single layer is a stack of one.
    input_shape : (..., H, W), optional
        If given, each layer also records its output shape (shown in the
        table), and a layer that does not fit raises ValueError; (..., H, W, C)
        for channels-last layers, (..., L) or (..., D, H, W) for 1-D or 3-D
        stacks. Needed for lax's "SAME" padding with a stride above 1, which
        depends on the input's size.

    Returns
    -------
    ReceptiveField
        ``.size``, ``.jump``, ``.start`` as (rows, cols) pairs for the whole
        stack (one entry per axis in 1-D and 3-D), ``.layers`` for each
        prefix of it; ``print()`` shows a table.

    Raises
    ------
    TypeError
        ``layers`` is not a sequence, or an entry is not a layer; the message
        names the entry (``layers[2]``).
    ValueError
        An empty stack, an entry with an invalid geometry, layers with
        different numbers of spatial axes, or (with ``input_shape``) a layer
        whose window does not fit its input.

    Examples
    --------
    >>> import xcorr
    >>> rf = xcorr.receptive_field([xcorr.Window(3), xcorr.Window(2, stride=2), xcorr.Window(3)])
    >>> rf.size, rf.jump, rf.start
    ((8, 8), (2, 2), (3.5, 3.5))

    1-D and 3-D stacks give one entry per axis:

    >>> xcorr.receptive_field([xcorr.Window((5,)), xcorr.Window((2,), stride=2)]).size
    (6,)
    >>> rf = xcorr.receptive_field([xcorr.Window((3, 3, 3)), xcorr.Window((1, 2, 2), stride=(1, 2, 2))],
    ...                            input_shape=(8, 8, 8))
    >>> rf.size, rf.jump
    ((3, 4, 4), (1, 2, 2))
    >>> print(rf)
    layer      window               size   jump        start  output
    ---------  ------------------  -----  -----  -----------  ------
    input                              1      1            0   8x8x8
    0: Window  3 s1 d1 p0              3      1            1   6x6x6
    1: Window  1x2x2 s1x2x2 d1 p0  3x4x4  1x2x2  1, 1.5, 1.5   6x3x3
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
    ndim = common_ndim(list(enumerate(windows)), "layers")
    channels_last = _channels_last(layers)
    shape = None
    if input_shape is not None:
        layout = _layout(ndim, channels_last)
        try:
            given = tuple(operator.index(n) for n in tuple(input_shape))
        except TypeError:
            msg = f"input_shape must be a sequence of ints {layout}; got {input_shape!r}"
            raise TypeError(msg) from None
        shape = _spatial_shape(given, channels_last, "input_shape", ndim)
        if min(shape) < 1:
            msg = f"input_shape must be {layout} with {SPATIAL_LAYOUTS[ndim]} >= 1; got {input_shape!r}"
            raise ValueError(msg)
    input_spatial = shape
    fields = []
    sizes: list[tuple[int, ...]] | None = [] if shape is not None else None  # each layer's spatial input shape
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
            axes = tuple(
                _axis_field(windows[: n + 1], axis, None if sizes is None else [hw[axis] for hw in sizes])
                for axis in range(ndim)
            )
        except ValueError as err:
            msg = f"layers[{n}]: {err}"
            raise ValueError(msg) from None
        fields.append(LayerField(n, _layer_name(layer), window, axes, out, _boundary(layer)))
    return ReceptiveField(tuple(fields), input_spatial, channels_last)
