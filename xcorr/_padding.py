"""The numbers of a window and its padding: one parser and one resolver per spelling.

Three spellings of ``padding=`` exist, each with its own caller, and all are
read here:

- a correlation's (``corr2d``, ``Conv2D``): widths, or lax's
  :data:`PADDING_NAMES` in any case (:func:`parse_padding`,
  :func:`resolve_padding`);
- a transposed convolution's: widths cropped from the full result, or
  :data:`TRANSPOSE_PADDING_NAMES` (:func:`parse_transpose_padding`,
  :func:`resolve_transpose_padding`);
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
    items = value if isinstance(value, (tuple, list)) else (value,) * ndim
    if len(items) != ndim and not (ndim == 2 and len(items) == 1):
        raise ValueError(what)
    try:
        numbers = tuple(parse_int(name, item, minimum=minimum) for item in items)
    except TypeError:
        raise TypeError(what) from None
    except ValueError:
        raise ValueError(what if bound else f"{name} must be >= {minimum}; got {value!r}") from None
    return numbers * ndim if len(numbers) == 1 else numbers


def parse_pair(name: str, value: object, *, minimum: int = 1) -> tuple[int, int]:
    """:func:`parse_axes` of a 2-D function: an int or a sequence of one or two ints as a pair."""
    first, second = parse_axes(name, value, 2, minimum=minimum)
    return first, second


def _width(value: object, what: str, explain: bool) -> int:
    if isinstance(value, bool):
        raise TypeError(what)
    try:
        n = operator.index(value)  # type: ignore[arg-type]  # anything else: the TypeError below
    except TypeError:
        raise TypeError(what) from None
    if n < 0:
        raise ValueError(f"{what} (negative width {n}: crop x before the call instead)" if explain else what)
    return n


def _pairs(padding: object, what: str, *, explain: bool) -> PaddingPairs:
    """An int, ``(ph, pw)`` or ``((top, bottom), (left, right))`` (an axis may be one int) as pairs;
    ``explain``: say in the error what is wrong with the value."""
    if not isinstance(padding, (tuple, list)):
        n = _width(padding, what, explain)
        return ((n, n), (n, n))
    if len(padding) != 2:
        raise ValueError(f"{what} (a sequence of {len(padding)} items; it needs one per axis, 2)" if explain else what)
    axes = []
    for item in padding:
        if isinstance(item, (tuple, list)):
            if len(item) != 2:
                detail = f" (an axis's padding {item!r} has {len(item)} items, not (before, after))"
                raise ValueError(what + detail if explain else what)
            axes.append((_width(item[0], what, explain), _width(item[1], what, explain)))
        else:
            n = _width(item, what, explain)
            axes.append((n, n))
    return (axes[0], axes[1])


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


def parse_padding(padding: object) -> str | PaddingPairs | None:
    """``padding=`` as None (none), "SAME", "SAME_LOWER" or ``((top, bottom), (left, right))``.

    An int pads all four sides, ``(ph, pw)`` both sides of each axis, and
    ``((top, bottom), (left, right))`` each side on its own (an axis may
    also be one int). "VALID" and all-zero widths are no padding (None).
    """
    if padding is None:
        return None
    what = (
        "padding must be an int >= 0, a pair (ph, pw), a pair of pairs ((top, bottom), (left, right)) "
        f"or one of {', '.join(map(repr, PADDING_NAMES))} (any case); got {padding!r}"
    )
    if isinstance(padding, str):
        name = padding.upper()
        if name not in PADDING_NAMES:
            raise ValueError(what)
        return None if name == "VALID" else name
    pairs = _pairs(padding, what, explain=True)
    return None if pairs == ((0, 0), (0, 0)) else pairs


def resolve_padding(
    padding, size: tuple[int, int], span: tuple[int, int], stride: tuple[int, int]
) -> PaddingPairs | None:
    """``((top, bottom), (left, right))`` of a parsed padding for an input of ``size`` (None: no padding).

    "SAME" pads as ``lax``, TensorFlow and Keras do (:func:`lax_pads`).
    """
    if padding is None or isinstance(padding, tuple):
        return padding
    rows, cols = (lax_pads(padding, n, e, s) for n, e, s in zip(size, span, stride))
    return (rows, cols)


# -- a transposed convolution's padding ----------------------------------------------


def parse_transpose_padding(padding: object) -> PaddingPairs | str:
    """An int, a pair ``(ph, pw)`` or a pair of pairs ``((top, bottom), (left, right))``, each >= 0;
    or "SAME" / "VALID" in any case (returned upper-case, for :func:`resolve_transpose_padding`)."""
    msg = (
        "padding of a transposed convolution must be an int, a pair (ph, pw) or a pair of pairs "
        f"((top, bottom), (left, right)) of ints >= 0, or 'SAME' or 'VALID'; got {padding!r}"
    )
    if isinstance(padding, str):
        if padding.upper() not in TRANSPOSE_PADDING_NAMES:
            raise ValueError(msg)
        return padding.upper()
    return _pairs(padding, msg, explain=False)


def resolve_transpose_padding(
    padding: PaddingPairs | str, output_padding: object, kernel: tuple[int, int], stride, dilation
) -> tuple[PaddingPairs, tuple[int, int]]:
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


# -- a Window's padding ------------------------------------------------------------


def parse_window_padding(padding: object) -> str | tuple[int, int] | PaddingPairs:
    """A :class:`xcorr.Window`'s padding: a name of :data:`MODES` or :data:`SIZE_DEPENDENT_PADDINGS`
    (case as written), ``(ph, pw)`` (one int: both), or ``((top, bottom), (left, right))`` where the
    sides differ."""
    names = ", ".join(map(repr, MODES + SIZE_DEPENDENT_PADDINGS))
    what = (
        "padding must be an int >= 0, a pair of them, a pair of (before, after) pairs "
        f"((top, bottom), (left, right)), or one of {names}; got {padding!r}"
    )
    if isinstance(padding, str):
        if padding not in MODES + SIZE_DEPENDENT_PADDINGS:
            raise ValueError(what)
        return padding
    if isinstance(padding, (tuple, list)) and not 1 <= len(padding) <= 2:
        raise ValueError(what)
    if not (isinstance(padding, (tuple, list)) and any(isinstance(p, (tuple, list)) for p in padding)):
        try:
            return parse_pair("padding", padding, minimum=0)
        except TypeError:
            raise TypeError(what) from None
    (top, bottom), (left, right) = _pairs(padding, what, explain=False)
    return (top, left) if (top, left) == (bottom, right) else ((top, bottom), (left, right))


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


# -- a Window of any number of axes ------------------------------------------------------

#: The spatial axes of a 1-, 2- or 3-D input, as the messages name them.
SPATIAL_LAYOUTS = {1: "L", 2: "H, W", 3: "D, H, W"}


def parse_window_padding_nd(padding: object, ndim: int) -> str | tuple:
    """A Window's padding for ``ndim`` axes: :func:`parse_window_padding` in 2-D; else a name, one int
    per axis (an int: every axis), or ``(before, after)`` pairs where the sides differ."""
    if ndim == 2:
        return parse_window_padding(padding)
    names = ", ".join(map(repr, MODES + SIZE_DEPENDENT_PADDINGS))
    what = (
        f"padding must be an int >= 0, a sequence of {ndim} (one per axis of a {ndim}-D window) of ints >= 0 "
        f"or (before, after) pairs, or one of {names}; got {padding!r}"
    )
    if isinstance(padding, str):
        if padding not in MODES + SIZE_DEPENDENT_PADDINGS:
            raise ValueError(what)
        return padding
    items = padding if isinstance(padding, (tuple, list)) else (padding,) * ndim
    if len(items) != ndim:
        raise ValueError(what)
    axes = []
    for item in items:
        if isinstance(item, (tuple, list)):
            if len(item) != 2:
                raise ValueError(what)
            axes.append((_width(item[0], what, False), _width(item[1], what, False)))
        else:
            n = _width(item, what, False)
            axes.append((n, n))
    if all(before == after for before, after in axes):
        return tuple(before for before, _ in axes)
    return tuple(axes)
