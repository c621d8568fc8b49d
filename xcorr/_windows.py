"""Windows: the geometry of one sliding-window layer (kernel, stride, dilation, padding per axis).

A :class:`Window` describes a convolution or pooling layer; a
:class:`TransposedWindow` a transposed convolution; :func:`as_window` reads
either from a layer (xcorr's, torch's, or a plain description). The fields of
stacks of them are ``_receptive``'s. Nothing here touches array values.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from ._layer import Conv2D, Conv2DTranspose  # every backend's layer class derives from them
from ._layer_1d import NdLayer  # every backend's Conv1D and Conv3D (and their transposed layers)
from ._layer_nd_transpose import Conv1DTranspose, Conv3DTranspose
from ._padding import PaddingPairs, parse_axes, parse_window_padding, window_pads
from ._typing import Mode, Pair

__all__ = ["TransposedWindow", "Window", "as_window"]


@dataclass(frozen=True, init=False)
class Window:
    """A sliding-window layer, as far as geometry goes.

    Describes any layer that slides a ``kernel_size`` window over its input:
    a convolution, a max or average pooling layer. It computes nothing; pass
    it, with :class:`xcorr.Conv2D` layers, to :func:`xcorr.receptive_field`.

    Parameters
    ----------
    kernel_size : int or tuple of 1, 2 or 3 ints
        Window size per spatial axis, each >= 1: an int is a square 2-D
        window (height and width), a tuple has one entry per axis, so
        ``(5,)`` is a 1-D window and ``(3, 3, 3)`` a 3-D one (depth,
        height, width).
    stride : int or tuple of ints, default 1
        Step between neighbouring windows, in input elements; an int is
        every axis's, a tuple has one entry per axis.
    dilation : int or tuple of ints, default 1
        Spacing between the window's taps: it covers ``d*(k-1)+1`` elements.
    padding : int, tuple, "valid", "same", "full", "SAME" or "SAME_LOWER", default 0
        Elements added before (and after) the input along each axis. An int
        or pair pads both sides of each axis by that much (as
        :class:`torch.nn.Conv2d` does), ``((top, bottom), (left, right))`` each
        side on its own; "valid" is 0, "same" and "full" are the
        paddings of :func:`xcorr.corr2d`'s modes: ``(k'-1)//2`` before the
        input for "same" (scipy's and torch's centring), ``k'-1`` for "full",
        with ``k'`` the dilated window. "SAME" and "SAME_LOWER" are lax's
        (``padding=`` of :func:`xcorr.corr2d`): with a stride above 1 they
        depend on the input's size, so the stack's ``input_shape`` is needed.
        In 1-D and 3-D a tuple has one entry per axis, each an int (both
        sides) or a ``(before, after)`` pair.

    Raises
    ------
    TypeError, ValueError
        A ``kernel_size`` that is not an int or 1 to 3 ints >= 1, a
        ``stride`` or ``dilation`` whose length is not the kernel's (in 2-D:
        1 or 2 ints, as always), or a ``padding`` that is neither ints >= 0,
        one per axis, nor a known name.

    Examples
    --------
    >>> import xcorr
    >>> xcorr.Window(2, stride=2)          # 2x2 max pooling
    Window((2, 2), stride=(2, 2), dilation=(1, 1), padding=(0, 0))
    >>> xcorr.Window((3, 3), dilation=2, padding="same").pad_before
    (2, 2)
    >>> xcorr.Window((5,), stride=2).ndim       # 1-D
    1
    >>> xcorr.Window((3, 3, 3), padding=(1, (0, 2), 1))
    Window((3, 3, 3), stride=(1, 1, 1), dilation=(1, 1, 1), padding=((1, 1), (0, 2), (1, 1)))
    """

    kernel_size: tuple[int, ...]
    stride: tuple[int, ...]
    dilation: tuple[int, ...]
    padding: str | tuple[int, ...] | PaddingPairs | tuple[tuple[int, int], ...]

    def __init__(
        self, kernel_size: Pair, /, *, stride: Pair = 1, dilation: Pair = 1,
        padding: Pair | Sequence[Pair] | Mode | Literal["SAME", "SAME_LOWER"] = 0,
    ) -> None:
        ndim = _window_ndim(kernel_size)
        for name, value in (("kernel_size", kernel_size), ("stride", stride), ("dilation", dilation)):
            object.__setattr__(self, name, _per_axis(name, value, ndim))
        object.__setattr__(self, "padding", parse_window_padding(padding, ndim))

    def __repr__(self) -> str:
        return f"Window({self.kernel_size}, stride={self.stride}, dilation={self.dilation}, padding={self.padding!r})"

    @property
    def ndim(self) -> int:
        """The number of spatial axes: 1, 2 or 3."""
        return len(self.kernel_size)

    @property
    def span(self) -> tuple[int, ...]:
        """Extent of the dilated window per axis, ``d*(k-1)+1``."""
        return tuple(d * (k - 1) + 1 for k, d in zip(self.kernel_size, self.dilation))

    @property
    def pad_before(self) -> tuple[int, ...]:
        """Padding before the first input element, per axis (``p_l`` above)."""
        return tuple(self._pads(axis)[0] for axis in range(self.ndim))

    @property
    def pad_after(self) -> tuple[int, ...]:
        """Padding after the last input element, per axis."""
        return tuple(self._pads(axis)[1] for axis in range(self.ndim))

    def _pads(self, axis: int, n: int | None = None) -> tuple[int, int]:
        """(before, after) along ``axis`` for an input of ``n`` elements (None: not known)."""
        pads = window_pads(self.padding, axis, self.span[axis], self.stride[axis], n)
        if pads is None:
            msg = (
                f"{self!r}: padding={self.padding!r} with stride {self.stride[axis]} depends on the input's size; "
                "pass input_shape to receptive_field"
            )
            raise ValueError(msg)
        return pads

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

    def output_shape(self, shape: Sequence[int]) -> tuple[int, ...]:
        """The spatial shape of this layer's output for an input of ``shape`` (..., H, W).

        (..., L) in 1-D, (..., D, H, W) in 3-D: the last ``ndim`` entries are
        the spatial ones. Raises ValueError when the (dilated, padded) window
        does not fit.
        """
        out = []
        for axis, n in enumerate(tuple(shape)[-self.ndim :]):
            before, after = self._pads(axis, n)
            dense = n + before + after - self.span[axis] + 1
            if dense < 1:
                msg = (
                    f"{self!r} does not fit an input of shape {tuple(shape)}: its "
                    f"{'dilated ' if self.dilation[axis] > 1 else ''}window spans "
                    f"{self.span[axis]} elements along axis {axis - self.ndim} but the padded input has "
                    f"{n + before + after}"
                )
                raise ValueError(msg)
            out.append(-(-dense // self.stride[axis]))
        return tuple(out)

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
    :func:`xcorr.receptive_field` reads the transposed layers (xcorr's,
    torch's) as such windows; describe one by hand with this class.

    Parameters
    ----------
    kernel_size : int or tuple of 1, 2 or 3 ints
        Kernel size per spatial axis, as :class:`Window`'s (an int: a square 2-D kernel).
    stride : int or tuple of ints, default 1
        Output elements between the scatters of neighbouring input elements (the stride of the
        correlation it transposes).
    dilation : int or tuple of ints, default 1
        Spacing between the kernel's taps in the output.
    padding : int or tuple, default 0
        The crop of the uncropped output, torch's ``padding`` of ``ConvTranspose2d``: an int or
        pair crops both ends of each axis by that much, ``(before, after)`` pairs each end on its
        own; numbers only.
    output_padding : int or tuple of ints, default 0
        Elements added after the crop at the end of each axis (torch's ``output_padding``).

    Raises
    ------
    TypeError, ValueError
        A geometry :class:`Window` refuses, or a ``padding`` given by name.

    Examples
    --------
    >>> import xcorr
    >>> up = xcorr.TransposedWindow(3, stride=2, padding=1, output_padding=1)  # 2x upsampling
    >>> up.output_shape((8, 8))
    (16, 16)
    >>> rf = xcorr.receptive_field([xcorr.Window(3, stride=2, padding=1), up], input_shape=(16, 16))
    >>> rf.layers[-1].output_shape, rf.bounds((5, 5))
    ((16, 16), ((3, 7), (3, 7)))
    """

    output_padding: tuple[int, ...]

    def __init__(
        self, kernel_size: Pair, /, *, stride: Pair = 1, dilation: Pair = 1,
        padding: Pair | Sequence[Pair] = 0, output_padding: Pair = 0,
    ) -> None:
        super().__init__(kernel_size, stride=stride, dilation=dilation, padding=padding)
        if isinstance(self.padding, str):
            msg = f"a transposed window's padding must be numbers (before, after); got {self.padding!r}"
            raise ValueError(msg)
        object.__setattr__(self, "output_padding", _per_axis("output_padding", output_padding, self.ndim, 0))

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

    def output_shape(self, shape: Sequence[int]) -> tuple[int, ...]:
        """``(n - 1)*s - before - after + d*(k - 1) + 1 + output_padding`` per axis."""
        out = []
        for axis, n in enumerate(tuple(shape)[-self.ndim :]):
            before, after = self._pads(axis, n)
            size = (n - 1) * self.stride[axis] - before - after + self.span[axis] + self.output_padding[axis]
            if size < 1:
                msg = f"{self!r} crops the whole output of an input of shape {tuple(shape)} (axis {axis - self.ndim})"
                raise ValueError(msg)
            out.append(size)
        return tuple(out)

    def describe(self) -> str:
        text = f"T {super().describe()}"
        return text if not any(self.output_padding) else f"{text} op{_fmt(self.output_padding)}"


def _fmt(values, sep: str = "x") -> str:
    """One number when every axis agrees, else one per axis: ``rows{sep}cols`` in 2-D."""
    texts = [f"{v:g}" if isinstance(v, float) else str(v) for v in values]
    return texts[0] if all(t == texts[0] for t in texts) else sep.join(texts)


def _per_axis(name: str, value: object, ndim: int, minimum: int = 1) -> tuple[int, ...]:
    return parse_axes(name, value, ndim, minimum=minimum, of=f"one per axis of a {ndim}-D window")


def _window_ndim(kernel_size: object) -> int:
    """The number of spatial axes a ``kernel_size`` gives: an int is 2-D, a sequence has one entry per axis."""
    if not isinstance(kernel_size, (tuple, list)):
        return 2
    if not 1 <= len(kernel_size) <= 3:
        msg = f"kernel_size must be an int or a sequence of 1, 2 or 3 ints (one per spatial axis); got {kernel_size!r}"
        raise ValueError(msg)
    return len(kernel_size)


# -- reading layers -----------------------------------------------------------


def as_window(layer: object, *, name: str = "layer") -> Window:
    """The :class:`Window` of ``layer``.

    Accepts a Window; an :class:`xcorr.Conv2D` (any backend: its
    ``kernel_size``, ``stride``, ``dilation`` and ``mode``, read as the
    padding of that mode), :class:`xcorr.Conv1D` or :class:`xcorr.Conv3D`
    (a 1-D or 3-D window; their transposed layers give a
    :class:`TransposedWindow`); or any object with ``kernel_size`` and
    ``padding`` attributes and optional ``stride`` and ``dilation``, such as
    ``torch.nn.Conv2d``, ``MaxPool2d`` and ``AvgPool2d`` (and their 1-D and
    3-D kinds: a name ending in "1d" or "3d" makes an int ``kernel_size``
    one of that many axes, as torch's pooling layers keep it). A layer with
    Keras' ``strides`` (and ``dilation_rate``) instead of ``stride`` is read
    as Keras means it: its "same" padding is lax's "SAME", "causal" pads
    the start of a 1-D input; so is a Keras pooling layer (``pool_size``,
    ``strides`` and ``padding``: ``MaxPooling2D``, ``AveragePooling1D``, ...).
    """
    if isinstance(layer, Window):
        return layer
    if isinstance(layer, NdLayer):
        return _nd_window(layer, name)
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
    if not isinstance(layer, (type, str, bytes)) and hasattr(layer, "pool_size") and hasattr(layer, "strides"):
        return _keras_pooling_window(layer, name)
    if isinstance(layer, (type, str, bytes)) or not hasattr(layer, "kernel_size"):
        msg = (
            f"{name} must be an xcorr.Conv2D, an xcorr.Window, a layer with kernel_size, "
            f"stride, dilation and padding attributes (e.g. torch.nn.Conv2d), or one with Keras' pool_size, "
            f"strides and padding (keras.layers.MaxPooling2D); got {type(layer).__name__}: {layer!r:.80}"
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
    if not isinstance(kernel_size, (tuple, list)) and (ndim := _ndim_from_class_name(layer)) is not None:
        kernel_size = (kernel_size,) * ndim  # 1-D and 3-D pooling layers may keep ints
    stride = getattr(layer, "stride", 1)
    if stride is None:  # torch pooling layers: stride defaults to the kernel size
        stride = kernel_size
    dilation = getattr(layer, "dilation", 1)
    if not hasattr(layer, "stride") and hasattr(layer, "strides"):  # Keras' names, and its paddings
        if hasattr(layer, "output_padding"):
            msg = (
                f"{name} ({type(layer).__name__}) looks like a Keras transposed convolution, whose cropping "
                "rule is not read here; pass an xcorr.TransposedWindow or xcorr.Conv2DTranspose (Conv1DTranspose, "
                "Conv3DTranspose) of the same geometry instead: kernel_size, stride, padding (the crops) and "
                "output_padding"
            )
            raise TypeError(msg)
        stride, dilation = layer.strides, getattr(layer, "dilation_rate", 1)
        padding = _keras_padding(padding, kernel_size, dilation)
    try:
        return Window(kernel_size, stride=stride, dilation=dilation, padding=padding)
    except (TypeError, ValueError) as err:
        msg = f"{name} ({type(layer).__name__}) has an invalid geometry: {err}"
        raise type(err)(msg) from None


def _keras_pooling_window(layer: object, name: str) -> Window:
    """The window of a Keras pooling layer (``MaxPooling2D``, ``AveragePooling1D``, ...): its
    ``pool_size``, its ``strides`` (the pool size where None, as Keras fills them in) and its
    padding, "same" being lax's "SAME"."""
    pool_size = layer.pool_size  # type: ignore[attr-defined]
    strides = pool_size if layer.strides is None else layer.strides  # type: ignore[attr-defined]
    try:
        return Window(pool_size, stride=strides, padding=_keras_padding(getattr(layer, "padding", "valid"), pool_size, 1))
    except (TypeError, ValueError) as err:
        msg = f"{name} ({type(layer).__name__}) has an invalid geometry: {err}"
        raise type(err)(msg) from None


def common_ndim(windows, name: str) -> int:
    """The number of spatial axes that the ``(entry, window)`` pairs of a stack (at least one) share;
    a ValueError naming the first entry that differs from the first."""
    first_entry, first = windows[0]
    for n, window in windows:
        if window.ndim != first.ndim:
            msg = (
                f"{name}[{n}] is {window.ndim}-D ({window!r}) but {name}[{first_entry}] is {first.ndim}-D "
                f"({first!r}): the layers of a stack must all have the same number of spatial axes"
            )
            raise ValueError(msg)
    return first.ndim


def _keras_padding(padding: Any, kernel_size: object, dilation: object) -> Any:
    """A Keras layer's ``padding`` as a Window's: "same" is lax's "SAME" (it depends on the input's
    size with a stride above 1), "causal" (1-D) pads ``d*(k-1)`` before the input."""
    if not isinstance(padding, str):
        return padding
    name = padding.lower()
    if name == "same":
        return "SAME"
    if name == "causal" and isinstance(kernel_size, (tuple, list)) and len(kernel_size) == 1:
        (k,) = kernel_size
        (d,) = dilation if isinstance(dilation, (tuple, list)) else (dilation,)
        return ((d * (k - 1), 0),)
    return name


def _ndim_from_class_name(layer: object) -> int | None:
    """1 or 3 for a layer whose class name ends in "1d" or "3d" (pooling layers that keep an int size), else None."""
    found = re.search(r"([13])d$", type(layer).__name__)
    return int(found.group(1)) if found else None


def _nd_window(layer: NdLayer, name: str) -> Window:
    """The window of an xcorr ``Conv1D``, ``Conv3D`` or transposed kind (any backend)."""
    kernel = tuple(layer.kernel_size)
    ndim = len(kernel)
    one = ndim == 1  # Conv1D keeps its stride, dilation and output_padding as ints, its padding as one pair
    padding = layer.padding
    if isinstance(layer, (Conv1DTranspose, Conv3DTranspose)):
        return TransposedWindow(
            kernel, stride=layer.stride, dilation=layer.dilation, padding=(padding,) if one else padding,
            output_padding=getattr(layer, "output_padding"),  # noqa: B009 - the transposed layers' view
        )  # fmt: skip
    if padding is None and layer.mode == "same":
        # Conv1D's and Conv3D's "same" is scipy's: span // 2 before (corr2d's is (span - 1) // 2)
        spans = [d * (k - 1) + 1 for k, d in zip(kernel, (layer.dilation,) if one else layer.dilation)]
        padding = tuple((e // 2, (e - 1) // 2) for e in spans)
    elif padding is None:
        padding = layer.mode
    elif one and not isinstance(padding, str):
        padding = (padding,)
    try:
        return Window(kernel, stride=layer.stride, dilation=layer.dilation, padding=padding)
    except (TypeError, ValueError) as err:  # pragma: no cover - the layer checked its geometry
        msg = f"{name} ({type(layer).__name__}) has an invalid geometry: {err}"
        raise type(err)(msg) from None


def _is_transposed(layer: object) -> bool:
    """xcorr.Conv2DTranspose (any backend), or a torch.nn.ConvTranspose2d (``transposed`` True)."""
    if isinstance(layer, Conv2DTranspose):
        return True
    return getattr(layer, "transposed", False) is True and hasattr(layer, "output_padding")


def _layer_name(layer: object) -> str:
    if isinstance(layer, NdLayer):
        return getattr(layer, "_public_name", type(layer).__name__)
    if isinstance(layer, Conv2DTranspose):
        return "Conv2DTranspose"
    if isinstance(layer, Conv2D):
        return "Conv2D"
    return type(layer).__name__


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
