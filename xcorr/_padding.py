"""The numbers of a window and its padding: one parser per kind of argument, for 1, 2 or 3 axes.

Every per-axis int (``stride``, ``dilation``, ``kernel_size``, ``output_padding``) is read by
:func:`parse_axes` (the functions' words: :func:`parse_per_axis`), and every padding given as
widths by :func:`parse_widths`. Three spellings of ``padding=`` exist, each with its own caller,
and all are read here, for any number of axes:

- a correlation's (``corr1d``, ``corr2d``, ``corr3d``, ``Conv2D``): widths, or lax's
  :data:`PADDING_NAMES` in any case (:func:`parse_padding`; :func:`lax_pads` resolves the names);
- a transposed convolution's: widths cropped from the full result, or
  :data:`TRANSPOSE_PADDING_NAMES` (:func:`parse_transpose_padding`,
  :func:`resolve_transpose_padding`, the two in one: :func:`transpose_pads`);
- a :class:`xcorr.Window`'s: widths, the paddings of :data:`MODES` or the
  size-dependent lax names (:func:`parse_window_padding`, :func:`window_pads`).

A *mode* ("valid", "same", "full") is the output size of a correlation; a
*padding name* ("SAME", "VALID", "SAME_LOWER") is lax's and TensorFlow's.
"""

from __future__ import annotations

import operator

#: A correlation's output sizes (``mode=``), after scipy.signal.
MODES: tuple[str, ...] = ("valid", "same", "full")
#: ``padding=`` names, as lax and TensorFlow spell them (any case is accepted:
#: Keras and torch write "same" and "valid").
PADDING_NAMES: tuple[str, ...] = ("SAME", "VALID", "SAME_LOWER")
#: The padding names whose widths depend on the input's size (with a stride above 1).
SIZE_DEPENDENT_PADDINGS: tuple[str, ...] = ("SAME", "SAME_LOWER")
#: A transposed convolution's padding names (lax's and Keras'), any case.
TRANSPOSE_PADDING_NAMES: tuple[str, ...] = ("SAME", "VALID")

#: ``((top, bottom), (left, right))``.
PaddingPairs = tuple[tuple[int, int], tuple[int, int]]


# -- integers -------------------------------------------------------------------------


def parse_int(name: str, value: object, *, minimum: int = 1) -> int:
    """A Python or NumPy integer (not a bool) that is at least ``minimum``."""
    msg = f"{name} must be an int >= {minimum}; got {value!r}"
    if isinstance(value, bool):
        raise TypeError(msg)
    try:
        number = operator.index(value)  # type: ignore[arg-type]  # anything else: the TypeError below
    except TypeError:
        raise TypeError(msg) from None
    if number < minimum:
        raise ValueError(msg)
    return number


def parse_axes(
    name: str, value: object, ndim: int, *, minimum: int = 1, of: str = "", bound: bool = False
) -> tuple[int, ...]:
    """An int (every axis) or a sequence of ``ndim`` ints (2-D: or of one, for both), each >= ``minimum``.

    The message says what the sequence holds (``of``: "depth, height, width"); ``bound``: it names
    ``minimum`` and serves a value below it too (else that has its own, "must be >= minimum").
    """
    counts = "1 or 2" if ndim == 2 else str(ndim)
    what = (
        f"{name} must be an int{f' >= {minimum}' if bound else ''} or a sequence of {counts} "
        f"int{'' if ndim == 1 else 's'}{f' ({of})' if of else ''}; got {value!r}"
    )
    items = _entries(value, ndim)
    if items is None:
        raise ValueError(what)
    try:
        return tuple(parse_int(name, item, minimum=minimum) for item in items)
    except TypeError:
        raise TypeError(what) from None
    except ValueError:
        raise ValueError(what if bound else f"{name} must be >= {minimum}; got {value!r}") from None


def _entries(value: object, ndim: int) -> tuple | None:
    """One entry per axis of an int or a sequence (2-D: one entry serves both axes); None: a wrong count."""
    if not isinstance(value, (tuple, list)):
        return (value,) * ndim
    if ndim == 2 and len(value) == 1:
        return (value[0], value[0])
    return tuple(value) if len(value) == ndim else None


#: What the messages of the 1-, 2- and 3-D functions say a sequence of ints holds, and whether
#: they name its minimum (:func:`parse_axes`).
FUNCTION_AXES = {1: ("one per axis of a 1-D signal", True), 2: ("", False), 3: ("depth, height, width", True)}


def parse_per_axis(name: str, value: object, ndim: int, *, minimum: int = 1) -> tuple[int, ...]:
    """:func:`parse_axes` in the words of the ``ndim``-D functions."""
    of, bound = FUNCTION_AXES[ndim]
    return parse_axes(name, value, ndim, minimum=minimum, of=of, bound=bound)


def parse_pair(name: str, value: object, *, minimum: int = 1) -> tuple[int, int]:
    """:func:`parse_per_axis` of a 2-D function: an int or a sequence of one or two ints as a pair."""
    first, second = parse_per_axis(name, value, 2, minimum=minimum)
    return first, second


def _width(value: object, what: str, hint: bool) -> int:
    if isinstance(value, bool):
        raise TypeError(what)
    try:
        n = operator.index(value)  # type: ignore[arg-type]  # anything else: the TypeError below
    except TypeError:
        raise TypeError(what) from None
    if n < 0:
        raise ValueError(f"{what} (negative width {n}: crop x before the call instead)" if hint else what)
    return n


def parse_widths(padding: object, ndim: int, what: str, *, hint: bool = False) -> tuple:
    """Each axis's ``(before, after)`` of a padding given as widths >= 0: an int (every side) or a
    sequence of ``ndim`` entries, each an int (both sides) or a pair ``(before, after)``.

    ``what`` is the message of a wrong value, which says what is wrong with it; ``hint``: a
    negative width's also says to crop x instead (a correlation's padding).
    """
    items = padding if isinstance(padding, (tuple, list)) else (padding,) * ndim
    if len(items) != ndim:
        raise ValueError(f"{what} (a sequence of {len(items)} items; it needs one per axis, {ndim})")
    pairs = []
    for item in items:
        pair = item if isinstance(item, (tuple, list)) else (item, item)
        if len(pair) != 2:
            raise ValueError(f"{what} (an axis's padding {item!r} has {len(pair)} items, not (before, after))")
        pairs.append((_width(pair[0], what, hint), _width(pair[1], what, hint)))
    return tuple(pairs)


#: How the messages of the 1-, 2- and 3-D functions name the widths of a padding; a 1-D function's
#: ``(left, right)`` is its one axis's entry (:func:`parse_widths` of ``(padding,)``).
FUNCTION_WIDTHS = {
    1: "a pair (left, right) of them",
    2: "a pair (ph, pw), a pair of pairs ((top, bottom), (left, right))",
    3: "a sequence of 3 (one per axis: depth, height, width) of ints or (before, after) pairs",
}


def _function_widths(padding: object, ndim: int, what: str, *, hint: bool = False) -> tuple:
    return parse_widths((padding,) if ndim == 1 else padding, ndim, what, hint=hint)


def check_padding_mode(padding: object, mode: object) -> None:
    """Refuse a ``padding`` with a ``mode`` other than "valid"."""
    if padding is not None and mode != "valid":
        msg = (
            f"padding={padding!r} and mode={mode!r} conflict: padding extends x and then takes the "
            'valid correlation of the result, so it needs mode="valid" (the default); leave out one of the two'
        )
        raise ValueError(msg)


def lax_pads(name: str, n: int | None, span: int, stride: int) -> tuple[int, int]:
    """``(before, after)`` of lax's "SAME" ("SAME_LOWER": swapped) along an axis of ``n`` elements.

    The output has ``ceil(n / s)`` elements with stride ``s``; the total
    padding is ``max((out - 1) * s + span - n, 0)`` (``span - 1`` with stride
    1, whatever ``n``) and its odd element goes after the image ("SAME") or
    before it ("SAME_LOWER").
    """
    total = span - 1 if stride == 1 else max((-(-n // stride) - 1) * stride + span - n, 0)  # type: ignore[operator]
    small, large = total // 2, total - total // 2
    return (small, large) if name == "SAME" else (large, small)


# -- a correlation's padding --------------------------------------------------------


def parse_padding(padding: object, ndim: int = 2) -> str | tuple | None:
    """``padding=`` of an ``ndim``-D correlation as None (none: also "VALID"), "SAME", "SAME_LOWER" or
    each axis's ``(before, after)`` (:func:`parse_widths`; a 1-D function's ``(left, right)``)."""
    if padding is None:
        return None
    names = ", ".join(map(repr, PADDING_NAMES))
    what = f"padding must be an int >= 0, {FUNCTION_WIDTHS[ndim]}, or one of {names} (any case); got {padding!r}"
    if isinstance(padding, str):
        name = padding.upper()
        if name not in PADDING_NAMES:
            raise ValueError(what)
        return None if name == "VALID" else name
    return _function_widths(padding, ndim, what, hint=True)


# -- a transposed convolution's padding ----------------------------------------------


def parse_transpose_padding(padding: object, ndim: int = 2) -> tuple | str:
    """Each axis's crop ``(before, after)`` (as :func:`parse_padding` reads widths), or "SAME" / "VALID"
    in any case (returned upper-case, for :func:`resolve_transpose_padding`)."""
    what = (
        f"padding of a {'' if ndim == 2 else f'{ndim}-D '}transposed convolution must be an int >= 0, "
        f"{FUNCTION_WIDTHS[ndim]}, or 'SAME' or 'VALID' (any case); got {padding!r}"
    )
    if isinstance(padding, str):
        if padding.upper() not in TRANSPOSE_PADDING_NAMES:
            raise ValueError(what)
        return padding.upper()
    return _function_widths(padding, ndim, what)


#: How the messages name the axes of 2- and 3-D inputs.
AXIS_NAMES = {2: ("rows", "columns"), 3: ("depth", "height", "width")}


def resolve_transpose_padding(padding, output_padding: object, kernel, stride, dilation) -> tuple[tuple, tuple]:
    """``(padding, output_padding)`` as numbers, for a parsed ``padding`` and a ``kernel`` of one size per axis.

    lax's and Keras' "SAME" and "VALID" give, per axis with the dilated span
    ``K = d * (k - 1) + 1`` and stride ``s``: an output of ``H * s``
    ("SAME": ``P = max(K - s, 0)`` cropped, ``P // 2`` before) or of
    ``H * s + max(K - s, 0)`` ("VALID": nothing cropped), and an
    ``output_padding`` of ``max(s - K, 0)`` for both, which is why a string
    padding takes no ``output_padding`` of its own.
    """
    ndim = len(kernel)
    ops = parse_per_axis("output_padding", output_padding, ndim, minimum=0)
    if not isinstance(padding, str):
        for i, (op, s, d) in enumerate(zip(ops, stride, dilation)):
            if op >= s and op >= d:
                raise ValueError(_output_padding_rule(ops, tuple(stride), tuple(dilation), i))
        return padding, ops
    if any(ops):
        given = ops[0] if ndim == 1 else ops
        msg = f"padding={padding!r} implies the output_padding (lax's and Keras' rule); got output_padding={given}"
        raise ValueError(msg)
    spans = [d * (k - 1) + 1 for k, d in zip(kernel, dilation)]
    totals = [max(e - s, 0) if padding == "SAME" else 0 for e, s in zip(spans, stride)]
    return tuple((t // 2, t - t // 2) for t in totals), tuple(max(s - e, 0) for e, s in zip(spans, stride))


def transpose_pads(padding: object, output_padding: object, kernel, stride, dilation) -> tuple[tuple, tuple]:
    """:func:`resolve_transpose_padding` of :func:`parse_transpose_padding`, for ``len(kernel)`` axes."""
    return resolve_transpose_padding(parse_transpose_padding(padding, len(kernel)), output_padding, kernel, stride, dilation)


def _output_padding_rule(ops: tuple, stride: tuple, dilation: tuple, i: int) -> str:
    if len(ops) == 1:
        return (
            f"output_padding ({ops[0]}) must be smaller than the stride ({stride[0]}) or the dilation "
            f"({dilation[0]}) (torch's rule)"
        )
    return (
        f"output_padding {ops} must be smaller than the stride {stride} or the dilation {dilation} along each "
        f"axis (torch's rule); along the {AXIS_NAMES[len(ops)][i]} it is {ops[i]}, the stride {stride[i]} and "
        f"the dilation {dilation[i]}"
    )


# -- a Window's padding ------------------------------------------------------------


def parse_window_padding(padding: object, ndim: int = 2) -> str | tuple:
    """A :class:`xcorr.Window`'s padding for ``ndim`` axes: a name of :data:`MODES` or
    :data:`SIZE_DEPENDENT_PADDINGS` (case as written), one int per axis (an int: every axis; 2-D: a
    sequence of one, both), or each axis's ``(before, after)`` (:func:`parse_widths`) where the sides differ."""
    names = ", ".join(map(repr, MODES + SIZE_DEPENDENT_PADDINGS))
    widths = (
        "a pair of them, a pair of (before, after) pairs ((top, bottom), (left, right))"
        if ndim == 2
        else f"a sequence of {ndim} (one per axis of a {ndim}-D window) of ints >= 0 or (before, after) pairs"
    )
    what = f"padding must be an int >= 0, {widths}, or one of {names}; got {padding!r}"
    if isinstance(padding, str):
        if padding not in MODES + SIZE_DEPENDENT_PADDINGS:
            raise ValueError(what)
        return padding
    items = _entries(padding, ndim)
    if items is None:
        raise ValueError(what)
    if not any(isinstance(item, (tuple, list)) for item in items):  # ints, read as a kernel_size is
        try:
            return parse_axes("padding", padding, ndim, minimum=0)
        except TypeError:
            raise TypeError(what) from None
    pairs = parse_widths(padding, ndim, what)
    return tuple(before for before, _ in pairs) if all(b == a for b, a in pairs) else pairs


def window_pads(padding, axis: int, span: int, stride: int, n: int | None) -> tuple[int, int] | None:
    """``(before, after)`` along ``axis`` of a parsed window padding; None where it depends on the
    input's size ``n`` and that is not known."""
    if padding == "valid":
        return (0, 0)
    if padding == "same":
        return ((span - 1) // 2, span - 1 - (span - 1) // 2)
    if padding == "full":
        return (span - 1, span - 1)
    if padding in SIZE_DEPENDENT_PADDINGS:
        return None if stride != 1 and n is None else lax_pads(padding, n, span, stride)
    p = padding[axis]
    return p if isinstance(p, tuple) else (p, p)


#: The spatial axes of a 1-, 2- or 3-D input, as the messages name them.
SPATIAL_LAYOUTS = {1: "L", 2: "H, W", 3: "D, H, W"}
