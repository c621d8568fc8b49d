"""Correlation through the FFT, in pure array-API code (``xp.fft``).

The windows read the extended input ``xe`` (``_generic.extend``), of extent
``R x C``. A circular convolution of ``xe`` with the flipped, dilated kernel
(``span_h x span_w``) at any size ``>= R x C`` equals the valid correlation at
positions ``span - 1 .. R - 1``: none of those sums wraps around. So "valid"
mode needs no padding at all, and every mode and boundary reduces to it
through the extension. Transform sizes are rounded up to good sizes (see
``_methods.good_size``); real inputs use real FFTs.

Backends pass their own FFT module (``scipy.fft`` with workers for numpy) and
size rule; anything with ``rfftn``/``irfftn``/``fftn``/``ifftn`` taking ``s``
and ``axes`` works.
"""

from __future__ import annotations

from typing import Literal

from . import _generic
from ._compat import device, is_numpy_namespace, isdtype
from ._methods import fft_shape, good_size
from ._options import Geometry, Options, check_integral_fill


def dilate(xp, k, dilation: tuple[int, int]):
    """Insert ``d - 1`` zeros between the taps of ``k`` along each of its last two axes."""
    dh, dw = dilation
    h, w = k.shape[-2:]
    lead = tuple(k.shape[:-2])
    if dh > 1:
        zeros = xp.zeros((*lead, h, dh - 1, w), dtype=k.dtype, device=device(k))
        k = xp.concat([xp.expand_dims(k, axis=-2), zeros], axis=-2)  # (..., h, dh, w)
        k = xp.reshape(k, (*lead, h * dh, w))[..., : dh * (h - 1) + 1, :]
        h = dh * (h - 1) + 1
    if dw > 1:
        zeros = xp.zeros((*lead, h, w, dw - 1), dtype=k.dtype, device=device(k))
        k = xp.concat([xp.expand_dims(k, axis=-1), zeros], axis=-1)  # (..., h, w, dw)
        k = xp.reshape(k, (*lead, h, w * dw))[..., : dw * (w - 1) + 1]
    return k


# numpy.pad's names of the boundaries; its extensions wider than the array
# continue the pattern as _generic's do.
_NUMPY_PAD_MODES: dict[str, Literal["wrap", "symmetric", "reflect", "edge"]] = {
    "wrap": "wrap",
    "symm": "symmetric",
    "reflect": "reflect",
    "edge": "edge",
}


def extend(xp, x, geometry: Geometry, options: Options):
    """``_generic.extend``, without its per-position scan where slices or one fill suffice.

    numpy arrays take ``numpy.pad`` for the other boundaries: one array
    written once, where the generic extension concatenates once per axis.
    """
    rows, cols = geometry.rows, geometry.cols
    if geometry.inside:
        return x[..., rows.lo : rows.hi + 1, cols.lo : cols.hi + 1]
    if options.boundary != "fill":
        if is_numpy_namespace(xp):
            return _numpy_pad(x, rows, cols, options.boundary)
        return _generic.extend(xp, x, geometry, options)
    x = _fill_axis(xp, x, -2, rows.lo, rows.hi, options.fillvalue)
    return _fill_axis(xp, x, -1, cols.lo, cols.hi, options.fillvalue)


def _numpy_pad(x, rows, cols, boundary: str):
    """Positions ``lo..hi`` of both axes of the numpy array ``x``, extended by ``numpy.pad``."""
    import numpy as np

    widths = [(max(0, -plan.lo), max(0, plan.hi - plan.size + 1)) for plan in (rows, cols)]
    xe = np.pad(x, [(0, 0)] * (x.ndim - 2) + widths, mode=_NUMPY_PAD_MODES[boundary])
    (top, _), (left, _) = widths
    return xe[..., rows.lo + top : rows.hi + top + 1, cols.lo + left : cols.hi + left + 1]


def _fill_axis(xp, x, axis: int, lo: int, hi: int, fillvalue):
    """Positions ``lo..hi`` of ``x`` along ``axis``, ``fillvalue`` outside ``[0, size)``."""
    size = x.shape[axis]
    before = max(0, min(hi, -1) - lo + 1)
    after = max(0, hi - max(lo, size) + 1)
    first, last = max(lo, 0), min(hi, size - 1)
    pieces = []
    for count in (before, None, after):
        if count is None:
            if first <= last:
                index = [slice(None)] * x.ndim
                index[axis] = slice(first, last + 1)
                pieces.append(x[tuple(index)])
        elif count:
            shape = list(x.shape)
            shape[axis] = count
            fill = check_integral_fill(xp, x.dtype, fillvalue)  # beyond a float dtype's range: IEEE rounding
            pieces.append(xp.full(tuple(shape), fill, dtype=x.dtype, device=device(x)))
    return pieces[0] if len(pieces) == 1 else xp.concat(pieces, axis=axis)


def kernel_spectrum(fft, kf, shape: tuple[int, int], *, real: bool):
    """2-D spectrum of a small kernel zero-padded to ``shape``.

    The last axis is transformed first, on the kernel's own rows only (the
    padded rows are zeros), then the first axis at full size: the same
    numbers as one 2-D transform, for about half its cost.
    """
    if real:
        rows = fft.rfftn(kf, s=(shape[1],), axes=(-1,))
    else:
        rows = fft.fftn(kf, s=(shape[1],), axes=(-1,))
    return fft.fftn(rows, s=(shape[0],), axes=(-2,))


def correlate(xp, x, k, options: Options, geometry: Geometry, *, fft=None, size=good_size):
    """FFT correlation of validated inputs; ``fft`` defaults to ``xp.fft``."""
    fft = xp.fft if fft is None else fft
    x, k = _generic.prepare(xp, x, k, options)
    dtype = x.dtype
    if isdtype(xp, dtype, "integral"):
        msg = f'method="fft" needs floating or complex inputs; got {dtype} (use method="direct")'
        raise TypeError(msg)
    xe = extend(xp, x, geometry, options)
    rows, cols = geometry.rows, geometry.cols
    shape = fft_shape(geometry, size)
    # Circular convolution with the flipped kernel = correlation, shifted by span - 1.
    kf = xp.flip(dilate(xp, k, (rows.dilation, cols.dilation)), axis=(-2, -1))
    axes = (-2, -1)
    if isdtype(xp, dtype, "complex floating"):
        spectrum = fft.fftn(xe, s=shape, axes=axes) * kernel_spectrum(fft, kf, shape, real=False)
        dense = fft.ifftn(spectrum, s=shape, axes=axes)
    else:
        spectrum = fft.rfftn(xe, s=shape, axes=axes) * kernel_spectrum(fft, kf, shape, real=True)
        dense = fft.irfftn(spectrum, s=shape, axes=axes)
    r0, c0 = rows.span - 1, cols.span - 1
    y = dense[
        ...,
        r0 : r0 + (rows.count - 1) * rows.step + 1 : rows.step,
        c0 : c0 + (cols.count - 1) * cols.step + 1 : cols.step,
    ]
    y = xp.astype(y, dtype, copy=False)
    if tuple(y.shape) != geometry.out_shape:
        y = xp.broadcast_to(y, geometry.out_shape)
    return y
