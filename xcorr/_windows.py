"""Windows: the geometry of one sliding-window layer (kernel, stride, dilation, padding per axis).

A :class:`Window` describes a convolution or pooling layer; a
:class:`TransposedWindow` a transposed convolution; :func:`as_window` reads
either from a layer (xcorr's, torch's, or a plain description). The fields of
stacks of them are ``_receptive``'s. Nothing here touches array values.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ._layer import Conv2D, Conv2DTranspose  # every backend's layer class derives from them
from ._padding import PaddingPairs, parse_pair, parse_window_padding, window_pads
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
    kernel_size : int or (int, int)
        Window height and width, each >= 1.
    stride : int or (int, int), default 1
        Step between neighbouring windows, in input elements.
    dilation : int or (int, int), default 1
        Spacing between the window's taps: it covers ``d*(k-1)+1`` elements.
    padding : int, (int, int), ((int, int), (int, int)), "valid", "same", "full", "SAME" or "SAME_LOWER", default 0
        Elements added before (and after) the input along each axis. An int
        or pair pads both sides of each axis by that much (as
        :class:`torch.nn.Conv2d` does), ``((top, bottom), (left, right))`` each
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

    def __init__(self, kernel_size: Pair, /, *, stride: Pair = 1, dilation: Pair = 1, padding: Pair | Mode = 0) -> None:
        object.__setattr__(self, "kernel_size", parse_pair("kernel_size", kernel_size))
        object.__setattr__(self, "stride", parse_pair("stride", stride))
        object.__setattr__(self, "dilation", parse_pair("dilation", dilation))
        object.__setattr__(self, "padding", parse_window_padding(padding))

    def __repr__(self) -> str:
        return f"Window({self.kernel_size}, stride={self.stride}, dilation={self.dilation}, padding={self.padding!r})"

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
    if isinstance(layer, Conv2DTranspose):
        return True
    return getattr(layer, "transposed", False) is True and hasattr(layer, "output_padding")


def _layer_name(layer: object) -> str:
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
