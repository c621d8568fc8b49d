"""Correlation through the FFT, in pure array-API code (``xp.fft``).

The windows read the extended input ``xe`` (``_direct.extend``), of extent
``R x C``. A circular convolution of ``xe`` with the flipped, dilated kernel
(``span_h x span_w``) at any size ``>= R x C`` equals the valid correlation at
positions ``span - 1 .. R - 1``: none of those sums wraps around. So "valid"
mode needs no padding at all, and every mode and boundary reduces to it
through the extension. Transform sizes are rounded up to good sizes (see
``_cost_model.good_size``); real inputs use real FFTs.

Backends pass their own FFT module (``scipy.fft`` with workers for numpy) and
size rule; anything with ``rfftn``/``irfftn``/``fftn``/``ifftn`` taking ``s``
and ``axes`` works (``vjp`` also takes ``ifft`` and ``irfft`` with ``n`` and
``axis``: the array-API fft extension's signatures).
"""

from __future__ import annotations

from typing import Any, Literal

from . import _direct
from ._compat import device, is_numpy_namespace, isdtype
from ._cost_model import fft_shape, good_size
from ._direct import as_input_dtype, unbroadcast
from ._options import Geometry, Options, check_integral_fill, result_dtype


def dilate(xp, k, dilation: tuple[int, ...]):
    """Insert ``d - 1`` zeros between the taps of ``k`` along each of its last ``len(dilation)`` axes."""
    for axis, d in zip(range(k.ndim - len(dilation), k.ndim), dilation):
        if d > 1:
            taps = k.shape[axis]
            zeros = xp.zeros((*k.shape[: axis + 1], d - 1, *k.shape[axis + 1 :]), dtype=k.dtype, device=device(k))
            k = xp.concat([xp.expand_dims(k, axis=axis + 1), zeros], axis=axis + 1)  # (..., taps, d, ...)
            k = xp.reshape(k, (*k.shape[:axis], taps * d, *k.shape[axis + 2 :]))
            kept = (*(slice(None),) * axis, slice(0, d * (taps - 1) + 1), Ellipsis)
            k = k[kept]
    return k


# numpy.pad's names of the boundaries; its extensions wider than the array
# continue the pattern as _direct's do.
_NUMPY_PAD_MODES: dict[str, Literal["wrap", "symmetric", "reflect", "edge"]] = {
    "wrap": "wrap",
    "symm": "symmetric",
    "reflect": "reflect",
    "edge": "edge",
}


def extend(xp, x, geometry: Geometry, options: Options):
    """``_direct.extend``, without its per-position scan where slices or one fill suffice.

    numpy arrays take ``numpy.pad`` for the other boundaries: one array
    written once, where the generic extension concatenates once per axis.
    """
    axes = geometry.axes
    if geometry.inside:
        read = (Ellipsis, *(slice(a.lo, a.hi + 1) for a in axes))
        return x[read]
    if options.boundary != "fill":
        if is_numpy_namespace(xp):
            return _numpy_pad(x, axes, options.boundary)
        return _direct.extend(xp, x, geometry, options)
    if is_numpy_namespace(xp):
        return _numpy_fill(xp, x, axes, options.fillvalue)
    for axis, a in zip(range(-len(axes), 0), axes):
        x = _fill_axis(xp, x, axis, a.lo, a.hi, options.fillvalue)
    return x


def _numpy_pad(x, axes, boundary: str):
    """Positions ``lo..hi`` of every spatial axis of the numpy array ``x``, extended by ``numpy.pad``."""
    import numpy as np

    widths = [(max(0, -a.lo), max(0, a.hi - a.size + 1)) for a in axes]
    xe = np.pad(x, [(0, 0)] * (x.ndim - len(axes)) + widths, mode=_NUMPY_PAD_MODES[boundary])
    read: tuple[Any, ...] = (Ellipsis, *(slice(a.lo + before, a.hi + before + 1) for a, (before, _) in zip(axes, widths)))
    return xe[read]


def _numpy_fill(xp, x, axes, fillvalue):
    """Positions ``lo..hi`` of every spatial axis of the numpy array ``x``, ``fillvalue`` outside it:
    one array of the fill with ``x``'s part written in (``_fill_axis`` joins three pieces per axis)."""
    import numpy as np

    fill = check_integral_fill(xp, x.dtype, fillvalue)  # beyond a float dtype's range: IEEE rounding
    xe = np.full((*x.shape[: x.ndim - len(axes)], *(a.hi - a.lo + 1 for a in axes)), fill, dtype=x.dtype)
    spans = [(max(a.lo, 0), min(a.hi, a.size - 1) + 1, a.lo) for a in axes]
    if all(start < stop for start, stop, _ in spans):
        inner: tuple[Any, ...] = (Ellipsis, *(slice(start - lo, stop - lo) for start, stop, lo in spans))
        read: tuple[Any, ...] = (Ellipsis, *(slice(start, stop) for start, stop, _ in spans))
        xe[inner] = x[read]
    return xe


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


def kernel_spectrum(fft, kf, shape: tuple[int, ...], *, real: bool):
    """Spectrum over the last ``len(shape)`` axes of a small kernel zero-padded to ``shape``.

    The last axis is transformed first, on the kernel's own rows only (the
    padded rows are zeros), then the other axes at full size: the same
    numbers as one transform of every axis, for about half its cost.
    """
    if real:
        rows = fft.rfftn(kf, s=shape[-1:], axes=(-1,))
    else:
        rows = fft.fftn(kf, s=shape[-1:], axes=(-1,))
    return fft.fftn(rows, s=shape[:-1], axes=tuple(range(-len(shape), -1)))


def correlate(xp, x, k, options: Options, geometry: Geometry, *, fft=None, size=good_size):
    """FFT correlation of validated inputs; ``fft`` defaults to ``xp.fft``."""
    fft = xp.fft if fft is None else fft
    x, k = _direct.prepare(xp, x, k, options)
    dtype = x.dtype
    if isdtype(xp, dtype, "integral"):
        msg = f'method="fft" needs floating or complex inputs; got {dtype} (use method="direct")'
        raise TypeError(msg)
    xe = extend(xp, x, geometry, options)
    shape = fft_shape(geometry, size)
    # Circular convolution with the flipped kernel = correlation, shifted by span - 1.
    axes = tuple(range(-len(shape), 0))
    kf = xp.flip(dilate(xp, k, tuple(a.dilation for a in geometry.axes)), axis=axes)
    if isdtype(xp, dtype, "complex floating"):
        spectrum = fft.fftn(xe, s=shape, axes=axes) * kernel_spectrum(fft, kf, shape, real=False)
        dense = fft.ifftn(spectrum, s=shape, axes=axes)
    else:
        spectrum = fft.rfftn(xe, s=shape, axes=axes) * kernel_spectrum(fft, kf, shape, real=True)
        dense = fft.irfftn(spectrum, s=shape, axes=axes)
    outputs = (Ellipsis, *(slice(a.span - 1, a.span + (a.count - 1) * a.step, a.step) for a in geometry.axes))
    y = dense[outputs]
    y = xp.astype(y, dtype, copy=False)
    if tuple(y.shape) != geometry.out_shape:
        y = xp.broadcast_to(y, geometry.out_shape)
    return y


# ---------------------------------------------------------------------------
# The VJP: both gradients from one spectrum of g
# ---------------------------------------------------------------------------


def vjp(xp, x, k, g, options: Options, geometry: Geometry, need_x: bool, need_k: bool, *, fft=None, size=good_size):
    """``(gx, gk)`` of an FFT correlation, both from one spectrum of ``g``.

    At the forward's transform size ``N = fft_shape(geometry, size)`` (at
    least the extended input, so that nothing wraps around):

    * the gradient of the extended image ``extend(x)`` is the circular
      convolution of ``g`` with the dilated kernel, ``irfftn(G * K)``;
      :func:`input_gradient` crops it to ``x`` (fill positions have no
      gradient) and zero-pads where no window reaches;
    * the kernel gradient is the circular correlation of ``extend(x)`` with
      ``g``, ``irfftn(conj(G) * X)``, at its first ``span`` lags (every
      ``dilation``-th): :func:`kernel_lags` inverts the first axis, then the
      last one on those rows only.

    Four image-sized transforms (``G``, ``X``, one inverse each; ``K`` is a
    kernel-sized one), where the core VJP's two separate correlations (a
    "full" one of ``g`` with the kernel, at a larger size, and one of
    ``extend(x)`` with ``g`` as the kernel) take six. Sums over broadcast
    batch dimensions happen on the spectra, before the inverse transforms.
    Products go into a spectrum that is no longer needed where the shapes
    match (``a *= b``: in place on mutable arrays, a new array on jax's),
    and each spectrum is released before the next image-sized allocation.

    Callers check what this assumes: real float32/float64 operands (after
    type promotion), stride 1, and a "fill" extension or none reached.
    ``fft`` (default ``xp.fft``) has the array-API signatures of ``rfftn``,
    ``irfftn``, ``fftn`` (``s=``, ``axes=``), ``ifft`` and ``irfft``
    (``n=``, ``axis=``); ``size`` rounds a length up to a good transform
    size. The gradients have the dtypes of their operands
    (``_direct.as_input_dtype``); one not needed is None.
    """
    fft = xp.fft if fft is None else fft
    dtype = result_dtype(xp, result_dtype(xp, x.dtype, k.dtype), g.dtype)
    xd, kd = _direct.prepare(xp, xp.astype(x, dtype, copy=False), xp.astype(k, dtype, copy=False), options)
    shape = fft_shape(geometry, size)
    n = len(shape)
    axes = tuple(range(-n, 0))
    G = fft.rfftn(xp.astype(g, dtype, copy=False), s=shape, axes=axes)
    gx = gk = None
    if need_x:
        K = kernel_spectrum(fft, dilate(xp, kd, tuple(a.dilation for a in geometry.axes)), shape, real=True)
        K = _product(K, G)
        ge = fft.irfftn(unbroadcast(xp, K, (*x.shape[:-n], *K.shape[-n:])), s=shape, axes=axes)
        del K
        gx = as_input_dtype(xp, input_gradient(xp, ge, geometry), x)
    if need_k:
        X = fft.rfftn(extend(xp, xd, geometry, options), s=shape, axes=axes)
        X = _product(X, xp.conj(G))
        del G
        spectrum = unbroadcast(xp, X, (*k.shape[:-n], *X.shape[-n:]))
        del X
        gk = as_input_dtype(xp, kernel_lags(xp, fft, spectrum, shape[-1], geometry, options), k)
    return gx, gk


def _product(a, b):
    """``a * b``, written into ``a`` (a spectrum the caller gives up) where the shapes match."""
    if tuple(a.shape) == tuple(b.shape):
        a *= b
        return a
    return b * a


def input_gradient(xp, ge, geometry: Geometry):
    """The gradient of ``x`` from that of its extended image ``ge`` (positions ``lo..hi`` of each axis,
    then anything a transform added): positions outside ``x`` (fill values) dropped, positions no
    window reached zero."""
    extent = (Ellipsis, *(slice(0, a.hi - a.lo + 1) for a in geometry.axes))
    ge = ge[extent]
    for axis, a in zip(range(-len(geometry.axes), 0), geometry.axes):
        ge = _fill_axis(xp, ge, axis, -a.lo, a.size - 1 - a.lo, 0)
    return ge


def kernel_lags(xp, fft, spectrum, width: int, geometry: Geometry, options: Options):
    """The kernel gradient from the half spectrum (last axis ``width`` long) of the circular
    correlation of ``extend(x)`` with ``g``: its first ``span`` lags, every ``dilation``-th; the
    inverse transform of the last axis only on those rows. Flipped for a convolution."""
    *first, last = geometry.axes
    lags = spectrum
    for axis, a in zip(range(-len(geometry.axes), -1), first):
        first_lags = (Ellipsis, slice(0, a.span, a.dilation), *(slice(None),) * (-axis - 1))
        lags = fft.ifft(lags, axis=axis)[first_lags]
    gk = fft.irfft(lags, n=width, axis=-1)[..., : last.span : last.dilation]
    return xp.flip(gk, axis=tuple(range(-len(geometry.axes), 0))) if options.convolve else gk
