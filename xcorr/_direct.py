"""The direct method and the boundary extension: pure array-API code that runs on any backend.

Shift-and-add: the output is the sum over kernel taps ``(a, b)`` of
``k[..., a, b] * x_extended[..., window(a), window(b)]``, where each window is
a (strided) slice. Nothing is written in place, so it works on immutable
arrays (jax) and lazy ones (dask), and its extra memory is one output-sized
accumulator plus one term, never ``h*w`` shifted copies.
"""

from __future__ import annotations

from typing import Any

from ._compat import device, isdtype
from ._options import AxisPlan, Geometry, Options, check_integral_fill, result_dtype


def _segments(lo: int, hi: int, size: int, boundary: str) -> list[tuple]:
    """Split extended positions lo..hi into runs: ("fill", n), ("take", first, last) or ("repeat", index, n).

    A "take" run reads input indices first..last in order (descending where
    "symm" and "reflect" mirror); a "repeat" run is input index ``index``
    ``n`` times ("edge"). One step per run, not per position: a 4096-wide
    axis costs microseconds, and the VJP's fold runs this on every call.
    Extensions wider than the input continue the pattern, as ``numpy.pad``
    does: "wrap", "symm" and "reflect" are periodic (periods ``size``,
    ``2*size`` and ``2*size - 2``), "edge" repeats the edge element.
    """
    if boundary == "reflect" and size == 1 and (lo < 0 or hi >= size):
        msg = "boundary=\"reflect\" cannot extend an axis of length 1 (mirroring without the edge needs 2 elements)"
        raise ValueError(msg)
    runs: list[tuple] = []
    j = lo
    while j <= hi:
        if 0 <= j < size:
            n = min(hi, size - 1) - j + 1
            runs.append(("take", j, j + n - 1))
        elif boundary == "fill":
            n = (min(hi, -1) if j < 0 else hi) - j + 1
            runs.append(("fill", n))
        elif boundary == "wrap":
            src = j % size
            n = min(size - 1 - src, hi - j) + 1
            runs.append(("take", src, src + n - 1))
        elif boundary == "edge":
            n = (min(hi, -1) if j < 0 else hi) - j + 1
            runs.append(("repeat", 0 if j < 0 else size - 1, n))
        elif boundary == "reflect":
            # Mirror without repeating the edge: x[-j] = x[j], period 2*size - 2;
            # ascending runs over 0..size-1, descending ones over size-2..1.
            period = 2 * size - 2
            m = j % period
            if m < size:
                n = min(size - 1 - m, hi - j) + 1
                runs.append(("take", m, m + n - 1))
            else:
                src = period - m
                n = min(src - 1, hi - j) + 1
                runs.append(("take", src, src - n + 1))
        else:
            # "symm": reflect with the edge repeated; the pattern has period
            # 2*size, so kernels larger than the input keep reflecting (as scipy does).
            m = j % (2 * size)
            if m < size:
                n = min(size - 1 - m, hi - j) + 1
                runs.append(("take", m, m + n - 1))
            else:
                src = 2 * size - 1 - m
                n = min(src, hi - j) + 1
                runs.append(("take", src, src - n + 1))
        j += n
    return runs


def take_axis(xp, x, axis: int, start: int, stop: int):
    index = [slice(None)] * x.ndim
    index[axis] = slice(start, stop)
    return x[tuple(index)]


def extend_axis(xp, x, axis: int, lo: int, hi: int, boundary: str, fillvalue):
    """Positions ``lo..hi`` of ``x`` along ``axis``, extended past the edges.

    Built from slices, flips and constant blocks joined with ``concat``, so
    it is a view when nothing needs extending and never gathers with an index
    array (which would give dask unknown chunk sizes).
    """
    size = x.shape[axis]
    pieces = []
    for run in _segments(lo, hi, size, boundary):
        if run[0] == "fill":
            shape = list(x.shape)
            shape[axis] = run[1]
            fill = check_integral_fill(xp, x.dtype, fillvalue)  # beyond a float dtype's range: IEEE rounding
            pieces.append(xp.full(tuple(shape), fill, dtype=x.dtype, device=device(x)))
        elif run[0] == "repeat":
            shape = list(x.shape)
            shape[axis] = run[2]
            pieces.append(xp.broadcast_to(take_axis(xp, x, axis, run[1], run[1] + 1), tuple(shape)))
        else:
            first, last = run[1], run[2]
            if first <= last:
                pieces.append(take_axis(xp, x, axis, first, last + 1))
            else:
                pieces.append(xp.flip(take_axis(xp, x, axis, last, first + 1), axis=axis))
    if len(pieces) == 1:
        return pieces[0]
    return xp.concat(pieces, axis=axis)


def extend(xp, x, geometry: Geometry, options: Options):
    """The part of ``x`` (with boundary extension) that the windows read, along every spatial axis."""
    for axis, a in zip(range(-len(geometry.axes), 0), geometry.axes):
        x = extend_axis(xp, x, axis, a.lo, a.hi, options.boundary, options.fillvalue)
    return x


def compact_axis(plan: AxisPlan) -> AxisPlan | None:
    """The plan on the taps' windows laid end to end, or None where that is no smaller than the extension."""
    length = (plan.count - 1) * plan.step + 1  # the extended positions one tap reads, first to last
    if plan.taps * length >= plan.hi - plan.lo + 1:
        return None
    return AxisPlan(plan.taps * length, plan.taps, length, plan.step, 0, plan.count)


def compact(xp, x, geometry: Geometry, options: Options):
    """``(xc, geometry')``: what the windows read when the dilation leaves gaps between the taps' windows.

    With a dilation larger than the dense output, the extension ``lo..hi``
    is mostly positions no window reads (a 9x11 "same" correlation with
    dilation 10**6 would extend to 2 * 10**6 rows). Along such an axis the
    windows of the taps are laid end to end instead, each built by
    ``extend_axis`` (fill blocks; wrap and symm reduce the positions modulo
    their period): ``taps x (count - 1) * step + 1`` positions, and
    ``geometry'`` reads them with a dilation of one window's length. Every
    window lies inside ``xc``; the result is the same correlation, costing
    the outputs times the taps. None when no axis gains (then the
    caller extends as usual). Any number of spatial axes.
    """
    compacts = tuple(compact_axis(plan) for plan in geometry.axes)
    if all(compacted is None for compacted in compacts):
        return None
    plans = []
    for axis, plan, compacted in zip(range(-len(compacts), 0), geometry.axes, compacts):
        if compacted is None:
            x = extend_axis(xp, x, axis, plan.lo, plan.hi, options.boundary, options.fillvalue)
            plans.append(AxisPlan(plan.hi - plan.lo + 1, plan.taps, plan.dilation, plan.step, 0, plan.count))
            continue
        length = compacted.dilation
        pieces = []
        for tap in range(plan.taps):
            first = plan.lo + tap * plan.dilation
            pieces.append(extend_axis(xp, x, axis, first, first + length - 1, options.boundary, options.fillvalue))
        x = pieces[0] if len(pieces) == 1 else xp.concat(pieces, axis=axis)
        plans.append(compacted)
    return x, Geometry(geometry.batch, tuple(plans))


def window(plan: AxisPlan, tap: int) -> slice:
    """Slice of the extended axis that kernel tap ``tap`` reads for every output."""
    first = tap * plan.dilation
    return slice(first, first + (plan.count - 1) * plan.step + 1, plan.step)


def prepare(xp, x, k, options: Options):
    """Cast both operands to the result dtype; flip the kernel for convolution."""
    dtype = result_dtype(xp, x.dtype, k.dtype)
    x = xp.astype(x, dtype, copy=False)
    k = xp.astype(k, dtype, copy=False)
    if options.convolve:
        k = xp.flip(k, axis=(-2, -1))
    return x, k


def correlate(xp, x, k, options: Options, geometry: Geometry):
    """Shift-and-add correlation of already validated inputs."""
    x, k = prepare(xp, x, k, options)
    compacted = compact(xp, x, geometry, options)
    xe, geometry = compacted if compacted is not None else (extend(xp, x, geometry, options), geometry)
    rows, cols = geometry.rows, geometry.cols
    total: Any = None
    for a in range(rows.taps):
        ra = window(rows, a)
        for b in range(cols.taps):
            term = xe[..., ra, window(cols, b)] * k[..., a : a + 1, b : b + 1]
            total = term if total is None else total + term
    if tuple(total.shape) != geometry.out_shape:
        total = xp.broadcast_to(total, geometry.out_shape)
    return total


# -- the gradients' helpers ----------------------------------------------------


def zero_insert(xp, g, axis: int, step: int):
    """Put ``step - 1`` zeros between consecutive entries of ``g`` along ``axis``."""
    if step == 1:
        return g
    n = g.shape[axis]
    axis = axis % g.ndim
    zeros = xp.zeros_like(g)
    # (..., n, step, ...) with g in slot 0, then merge the two axes.
    stacked = xp.stack([g] + [zeros] * (step - 1), axis=axis + 1)
    shape = (*g.shape[:axis], n * step, *g.shape[axis + 1 :])
    merged = xp.reshape(stacked, shape)
    index = [slice(None)] * g.ndim
    index[axis] = slice(0, (n - 1) * step + 1)
    return merged[tuple(index)]


def fold_axis(xp, ge, axis: int, lo: int, hi: int, size: int, boundary: str):
    """Adjoint of :func:`extend_axis`: sum extended positions onto their sources.

    Where the extension is a border around the whole axis (the usual case), the sources of the border
    runs are summed into two thin windows at the ends of the axis and joined with the middle in one
    concatenation: one array of the result's size, not one per run.
    """
    runs = _placed_runs(xp, ge, axis, lo, hi, size, boundary)
    middle = [i for i, (first, last, _) in enumerate(runs) if (first, last) == (0, size - 1)]
    if middle:
        base = runs[middle[0]][2]
        others = [run for i, run in enumerate(runs) if i != middle[0]]
        head = [run for run in others if max(run[0], run[1]) < size // 2]
        tail = [run for run in others if max(run[0], run[1]) >= size // 2]
        a = max((max(r[0], r[1]) + 1 for r in head), default=0)
        b = min((min(r[0], r[1]) for r in tail), default=size)
        if a <= b:
            pieces = []
            if a:
                pieces.append(take_axis(xp, base, axis, 0, a) + _window_sum(xp, ge, axis, head, 0, a))
            if b > a or not pieces:
                pieces.append(take_axis(xp, base, axis, a, b))
            if b < size:
                pieces.append(take_axis(xp, base, axis, b, size) + _window_sum(xp, ge, axis, tail, b, size))
            return pieces[0] if len(pieces) == 1 else xp.concat(pieces, axis=axis)
    total = _window_sum(xp, ge, axis, runs, 0, size)
    return total


def _placed_runs(xp, ge, axis: int, lo: int, hi: int, size: int, boundary: str):
    """``(first, last, piece)`` per non-fill run of the extension: ``piece`` is the part of ``ge`` whose
    positions came from input indices ``min(first, last) .. max(first, last)``, in ascending order."""
    out = []
    position = 0  # index into ge of the current run's first extended position
    for run in _segments(lo, hi, size, boundary):
        if run[0] == "fill":
            position += run[1]
            continue
        if run[0] == "repeat":  # "edge": n copies of one element, summed onto it
            index, n = run[1], run[2]
            piece = sum_wrapping(xp, take_axis(xp, ge, axis, position, position + n), axis, keepdims=True)
            position += n
            first = last = index
        else:
            first, last = run[1], run[2]
            n = abs(last - first) + 1
            piece = take_axis(xp, ge, axis, position, position + n)
            position += n
            if first > last:
                piece = xp.flip(piece, axis=axis)
        out.append((min(first, last), max(first, last), piece))
    return out


def _window_sum(xp, ge, axis: int, runs, start: int, stop: int):
    """The sum of the runs' pieces placed on input indices ``start .. stop - 1`` (each inside it)."""
    total = None
    for first, last, piece in runs:
        pieces = []
        for count in (first - start, None, stop - 1 - last):
            if count is None:
                pieces.append(piece)
            elif count:
                shape = list(ge.shape)
                shape[axis] = count
                pieces.append(xp.zeros(tuple(shape), dtype=ge.dtype, device=device(ge)))
        placed = pieces[0] if len(pieces) == 1 else xp.concat(pieces, axis=axis)
        total = placed if total is None else total + placed
    if total is None:  # every position read the fill value
        shape = list(ge.shape)
        shape[axis] = stop - start
        total = xp.zeros(tuple(shape), dtype=ge.dtype, device=device(ge))
    return total


def sum_wrapping(xp, a, axis, *, keepdims: bool = False):
    """``xp.sum`` in ``a``'s own dtype: the library's integer rule, sums that wrap in the result dtype.

    The array API sums small integers in the default integer dtype (int8 to
    int64); every reduction of xcorr (channels, groups, batch sums of
    gradients) keeps the inputs' promoted dtype instead, as its products do.
    Integers are summed in the default (64-bit) dtype and cast back, which
    wraps: sums modulo ``2**bits`` do not depend on where they wrap, and
    libraries without narrow sums (torch's uint16/32/64) take this too.
    """
    if not isdtype(xp, a.dtype, "integral"):
        return xp.sum(a, axis=axis, keepdims=keepdims)
    return xp.astype(xp.sum(a, axis=axis, keepdims=keepdims), a.dtype)


def unbroadcast(xp, a, shape: tuple[int, ...]):
    """Sum ``a`` over the dimensions along which ``shape`` was broadcast to ``a.shape`` (in ``a``'s dtype)."""
    extra = a.ndim - len(shape)
    if extra:
        a = sum_wrapping(xp, a, tuple(range(extra)))
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and a.shape[i] != 1)
    if axes:
        a = sum_wrapping(xp, a, axes, keepdims=True)
    return a


def as_input_dtype(xp, grad, a):
    """Cast a gradient to the dtype of the operand it belongs to.

    A real operand of a complex result gets the real part (the transpose of
    the real-to-complex embedding); an integer operand keeps the floating
    result dtype, since its own dtype cannot hold a gradient.
    """
    if isdtype(xp, a.dtype, "integral"):
        return grad
    if isdtype(xp, grad.dtype, "complex floating") and not isdtype(xp, a.dtype, "complex floating"):
        grad = xp.real(grad)
    return xp.astype(grad, a.dtype, copy=False)
