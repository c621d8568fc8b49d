"""NumPy adapter: row-tiled shift-and-add with ``out=``, and FFTs through scipy.fft.

Imported lazily by ``xcorr._dispatch`` the first time a numpy array reaches
xcorr. scipy is imported only on the FFT path, so small direct calls load no
other library.

Direct: the output is computed in bands of rows small enough that the band,
one temporary and the input rows it reads stay in the L2 cache while all the
kernel taps pass over them (``np.multiply(..., out=tmp)``,
``np.add(band, tmp, out=band)``). Large outputs split their bands between two
threads (numpy releases the GIL inside ufuncs). Extra memory: the output plus
one band-sized temporary per thread, never ``h*w`` shifted copies.
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from functools import cache

import numpy as np

from .. import _fft, _generic

# Bytes of output per band: band + temporary + the rows read fit in L2.
BAND_BYTES = 256 * 1024
# Outputs at least this large (elements) use THREADS threads.
THREADED_ELEMENTS = 1 << 20
THREADS = min(2, os.cpu_count() or 1)


def correlate(xp, x, k, options, geometry):
    """Validated correlation of numpy arrays (the dispatch hook)."""
    if options.method == "fft":
        return fft_correlate(xp, x, k, options, geometry)
    return direct(xp, x, k, options, geometry)


def direct(xp, x, k, options, geometry):
    x, k = _generic.prepare(xp, x, k, options)
    xe = _fft.extend(xp, x, geometry, options)
    rows, cols = geometry.rows, geometry.cols
    out = np.empty(geometry.out_shape, dtype=x.dtype)
    if out.size == 0:
        return out
    # One scalar per tap when the kernel has no batch dimensions (fast ufunc path).
    if k.ndim == 2:
        taps = [(a, b, k[a, b]) for a in range(rows.taps) for b in range(cols.taps)]
    else:
        taps = [(a, b, k[..., a : a + 1, b : b + 1]) for a in range(rows.taps) for b in range(cols.taps)]
    col_windows = [_generic.window(cols, b) for b in range(cols.taps)]
    plane = out.size // rows.count  # elements per output row, over the batch
    band = max(1, BAND_BYTES // (plane * out.itemsize))
    starts = list(range(0, rows.count, band))

    def work(chunk):
        tmp = np.empty((*out.shape[:-2], band, cols.count), dtype=out.dtype)
        for r0 in chunk:
            r1 = min(rows.count, r0 + band)
            o = out[..., r0:r1, :]
            t = tmp[..., : r1 - r0, :]
            first = True
            for a, b, kab in taps:
                lo = r0 * rows.step + a * rows.dilation
                src = xe[..., lo : lo + (r1 - r0 - 1) * rows.step + 1 : rows.step, col_windows[b]]
                if first:
                    np.multiply(src, kab, out=o)
                    first = False
                else:
                    np.multiply(src, kab, out=t)
                    np.add(o, t, out=o)

    if THREADS > 1 and out.size >= THREADED_ELEMENTS and len(starts) >= 2 * THREADS:
        half = math.ceil(len(starts) / THREADS)
        chunks = [starts[i : i + half] for i in range(0, len(starts), half)]
        list(_pool().map(work, chunks))
    else:
        work(starts)
    return out


@cache
def _pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(THREADS, thread_name_prefix="xcorr")


# Transforms of at least this many elements use THREADS scipy.fft workers;
# smaller ones lose more to waking the threads than they gain.
THREADED_FFT_ELEMENTS = 1 << 18


def _workers(a) -> int:
    return THREADS if a.size >= THREADED_FFT_ELEMENTS else 1


class _ScipyFFT:
    """scipy.fft with all cores on large transforms (about 2.5x numpy.fft on our machine)."""

    def __init__(self, module):
        self._fft = module

    def rfftn(self, a, s, axes):
        return self._fft.rfftn(a, s=s, axes=axes, workers=_workers(a))

    def irfftn(self, a, s, axes):
        return self._fft.irfftn(a, s=s, axes=axes, workers=_workers(a))

    def fftn(self, a, s, axes):
        return self._fft.fftn(a, s=s, axes=axes, workers=_workers(a))

    def ifftn(self, a, s, axes):
        return self._fft.ifftn(a, s=s, axes=axes, workers=_workers(a))


@cache
def _fft_module():
    try:
        import scipy.fft
    except ImportError:
        return np.fft, None
    return _ScipyFFT(scipy.fft), scipy.fft.next_fast_len


def fft_correlate(xp, x, k, options, geometry):
    fft, next_fast_len = _fft_module()
    if next_fast_len is None:
        return _fft.correlate(xp, x, k, options, geometry, fft=fft)
    size = lambda n: next_fast_len(n, real=True)  # noqa: E731
    return _fft.correlate(xp, x, k, options, geometry, fft=fft, size=size)
