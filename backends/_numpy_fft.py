"""The numpy adapter's FFT paths: scipy.fft with workers, overlap-save tiles, and the FFT VJP.

Split from ``backends/numpy.py`` (the adapter, its direct paths and its
GEMMs), which calls in here for ``method="fft"`` (``fft_correlate``) and for
the FFT half of its fused VJP (``fft_vjp``). scipy is imported on the first
FFT only. The thresholds are the numpy adapter's tuning (``NumpyTuning``),
which the adapter passes on every call (so that a changed tuning takes effect).
"""

from __future__ import annotations

import itertools
import math
from functools import cache

import numpy as np

from .. import toolkit
from . import _threads


class _ScipyFFT:
    """scipy.fft with all cores on large transforms (about 2.5x numpy.fft on our machine)."""

    def __init__(self, module, threaded_elements: int):
        self._fft = module
        self._threaded = threaded_elements

    def _workers(self, a) -> int:
        return _threads.count() if a.size >= self._threaded else 1

    def rfftn(self, a, s, axes):
        return self._fft.rfftn(a, s=s, axes=axes, workers=self._workers(a))

    def irfftn(self, a, s, axes):
        return self._fft.irfftn(a, s=s, axes=axes, workers=self._workers(a))

    def fftn(self, a, s, axes):
        return self._fft.fftn(a, s=s, axes=axes, workers=self._workers(a))

    def ifftn(self, a, s, axes):
        return self._fft.ifftn(a, s=s, axes=axes, workers=self._workers(a))

    def ifft(self, a, n=None, axis=-1):
        return self._fft.ifft(a, n=n, axis=axis, workers=self._workers(a))

    def irfft(self, a, n=None, axis=-1):
        return self._fft.irfft(a, n=n, axis=axis, workers=self._workers(a))


@cache
def _scipy_fft():
    try:
        import scipy.fft
    except ImportError:
        return None
    return scipy.fft


def _fft_module(tuning):
    """``(fft, next_fast_len)``: scipy.fft with workers from ``tuning.threaded_fft_elements`` on,
    or ``(numpy.fft, None)`` without scipy."""
    module = _scipy_fft()
    if module is None:
        return np.fft, None
    return _ScipyFFT(module, tuning.threaded_fft_elements), module.next_fast_len


def fft_correlate(xp, x, k, options, geometry, tuning):
    """``method="fft"`` of the numpy adapter (``tuning``: its ``NumpyTuning``)."""
    fft, next_fast_len = _fft_module(tuning)
    if next_fast_len is None:
        return toolkit.fft_correlate(xp, x, k, options, geometry, fft=fft)
    size = lambda n: next_fast_len(n, real=True)  # noqa: E731
    block = _block_size(geometry, size, tuning)
    if block is not None:
        return overlap_save(xp, x, k, options, geometry, fft, block)
    return toolkit.fft_correlate(xp, x, k, options, geometry, fft=fft, size=size)


def _block_size(geometry, size, tuning):
    rows, cols = geometry.rows, geometry.cols
    span = max(rows.span, cols.span)
    block = size(max(tuning.overlap_min_block, tuning.overlap_span_factor * span))
    extent = min(rows.hi - rows.lo + 1, cols.hi - cols.lo + 1)
    return block if extent >= tuning.overlap_min_blocks * block else None


def overlap_save(xp, x, k, options, geometry, fft, block: int):
    """FFT correlation of a large image in ``block x block`` tiles (overlap-save).

    Each tile of ``block - span + 1`` dense outputs is the valid part of one
    circular correlation of a ``block``-sized window of the extended input:
    the transforms stay in cache, and all tiles go through one batched
    ``scipy.fft`` call. Extra memory: about two input-sized spectra.
    """
    x, k = toolkit.prepare(xp, x, k, options)
    xe = toolkit.extend(xp, x, geometry, options)
    rows, cols = geometry.rows, geometry.cols
    dense_r = (rows.count - 1) * rows.step + 1
    dense_c = (cols.count - 1) * cols.step + 1
    tile_r, tile_c = block - rows.span + 1, block - cols.span + 1
    nr, nc = -(-dense_r // tile_r), -(-dense_c // tile_c)
    # Pad the extended input at the end so that every tile has a full window.
    need_r, need_c = (nr - 1) * tile_r + block, (nc - 1) * tile_c + block
    pad = [(0, 0)] * (xe.ndim - 2) + [(0, need_r - xe.shape[-2]), (0, need_c - xe.shape[-1])]
    xe = np.pad(xe, pad)
    windows = np.lib.stride_tricks.sliding_window_view(xe, (block, block), axis=(-2, -1))
    windows = windows[..., ::tile_r, ::tile_c, :, :]  # (..., nr, nc, block, block), a view
    kf = toolkit.dilate(np, k, (rows.dilation, cols.dilation))[..., ::-1, ::-1]
    kf = kf[..., None, None, :, :]
    shape, axes = (block, block), (-2, -1)
    if np.iscomplexobj(xe):
        spectrum = fft.fftn(windows, s=shape, axes=axes) * toolkit.kernel_spectrum(fft, kf, shape, real=False)
        dense = fft.ifftn(spectrum, s=shape, axes=axes)
    else:
        spectrum = fft.rfftn(windows, s=shape, axes=axes) * toolkit.kernel_spectrum(fft, kf, shape, real=True)
        dense = fft.irfftn(spectrum, s=shape, axes=axes)
    tiles = dense[..., rows.span - 1 :, cols.span - 1 :]  # (..., nr, nc, tile_r, tile_c)
    lead = tiles.shape[:-4]
    y = np.moveaxis(tiles, -3, -2).reshape(*lead, nr * tile_r, nc * tile_c)
    y = y[..., : dense_r : rows.step, : dense_c : cols.step].astype(x.dtype, copy=False)
    if y.shape != geometry.out_shape:
        y = np.broadcast_to(y, geometry.out_shape)
    return np.ascontiguousarray(y)


# ---------------------------------------------------------------------------
# corr2d_vjp through the FFT: both gradients from one spectrum of g
# ---------------------------------------------------------------------------


def fft_vjp(xp, x, k, g, options, geometry, need_x: bool, need_k: bool, tuning) -> tuple | None:
    """The "fft" half of ``numpy.fused_vjp``: ``(gx, gk)`` from one spectrum of ``g``.

    ``toolkit.fft_vjp`` with scipy.fft's workers and sizes, or, for a large
    image and a 2-D kernel, its tiled form (``_overlap_vjp``). The caller has
    checked the dtype (real float32/float64), the stride (1), the extension
    ("fill" or none reached) and, for ``method="auto"``, that every input is
    finite (``toolkit.fft_allowed``). None without scipy (the generic VJP).
    """
    dtype = np.result_type(x.dtype, k.dtype, g.dtype)
    fft, next_fast_len = _fft_module(tuning)
    if next_fast_len is None:
        return None
    size = lambda n: next_fast_len(n, real=True)  # noqa: E731
    block = _block_size(geometry, size, tuning)
    if block is not None and k.ndim == 2 and x.shape[:-2] == g.shape[:-2]:
        xd, kd = toolkit.prepare(xp, np.asarray(x, dtype), np.asarray(k, dtype), options)
        gx, gk = _overlap_vjp(xp, xd, kd, np.asarray(g, dtype), options, geometry, block, need_x, need_k, tuning)
    else:
        gx, gk = toolkit.fft_vjp(xp, x, k, g, options, geometry, need_x, need_k, fft=fft, size=size)
    return _as_operand(xp, gx, x), _as_operand(xp, gk, k)


def _as_operand(xp, grad, a):
    """A gradient in the dtype of its operand (``toolkit.as_input_dtype``), C-contiguous; None stays None."""
    return None if grad is None else np.ascontiguousarray(toolkit.as_input_dtype(xp, grad, a))


def _overlap_vjp(xp, x, k, g, options, geometry, block: int, need_x: bool, need_k: bool, tuning):
    """``fused_vjp`` of a large image in ``block x block`` tiles (the forward's overlap-save).

    ``g`` is cut into ``tile x tile`` pieces, ``tile = block - span + 1``,
    each transformed once at ``block`` size. Its product with the kernel's
    spectrum is the tile's full convolution (``block`` wide: nothing wraps),
    added onto the extended image's gradient where the tiles overlap
    (overlap-add); its conjugate times the spectrum of the matching
    ``block``-sized window of the extended input, summed over all tiles, is
    the kernel gradient's spectrum, inverted once. Bands of tile rows go
    through in turn; the spectra are multiplied in place.
    """
    fft, _ = _fft_module(tuning)
    rows, cols = geometry.rows, geometry.cols
    dtype = g.dtype
    batch = g.shape[:-2]
    R, C = rows.count, cols.count
    tile_r, tile_c = block - rows.span + 1, block - cols.span + 1
    nr, nc = -(-R // tile_r), -(-C // tile_c)
    shape, axes = (block, block), (-2, -1)
    band = max(1, tuning.overlap_band_points // (math.prod(batch) * nc * block * block))
    if need_x:
        K = toolkit.kernel_spectrum(fft, toolkit.dilate(np, k, (rows.dilation, cols.dilation)), shape, real=True)
        # a tile's full convolution (block wide) reaches over the next ceil(block / tile) - 1 tiles
        offsets_r, offsets_c = range(0, block, tile_r), range(0, block, tile_c)
        ge = np.zeros((*batch, (nr + len(offsets_r) - 1) * tile_r, (nc + len(offsets_c) - 1) * tile_c), dtype=dtype)
    if need_k:
        xe = toolkit.extend(xp, x, geometry, options)
        spectrum = np.zeros((block, block // 2 + 1), dtype=np.result_type(dtype, np.complex64))
    for p0 in range(0, nr, band):
        m = min(nr, p0 + band) - p0
        top = p0 * tile_r
        pieces = np.zeros((*batch, m * tile_r, nc * tile_c), dtype=dtype)
        part = g[..., top : top + m * tile_r, :]
        pieces[..., : part.shape[-2], :C] = part
        tiles = pieces.reshape(*batch, m, tile_r, nc, tile_c).swapaxes(-3, -2)  # (..., m, nc, tile, tile)
        G = fft.rfftn(tiles, s=shape, axes=axes)
        if need_k:
            padded = np.zeros((*batch, (m - 1) * tile_r + block, (nc - 1) * tile_c + block), dtype=dtype)
            part = xe[..., top : top + padded.shape[-2], : padded.shape[-1]]
            padded[..., : part.shape[-2], : part.shape[-1]] = part
            windows = np.lib.stride_tricks.sliding_window_view(padded, shape, axis=axes)
            X = fft.rfftn(windows[..., ::tile_r, ::tile_c, :, :], s=shape, axes=axes)
            P, Q = G.shape[-2:]
            np.conjugate(G, out=G)  # sum of conj(G) * X over the batch and the tiles, no temporary
            spectrum += np.einsum("mij,mij->ij", G.reshape(-1, P, Q), X.reshape(-1, P, Q))
            np.conjugate(G, out=G)
        if need_x:
            G *= K
            full = fft.irfftn(G, s=shape, axes=axes)  # (..., m, nc, block, block)
            # Each tile's core and its margins land on its own and the next tiles' cores: one
            # strided, non-overlapping add per tile-sized piece (four where the span is at most a tile).
            for r_off, c_off in itertools.product(offsets_r, offsets_c):
                piece = full[..., r_off : r_off + tile_r, c_off : c_off + tile_c]
                view = ge[..., top + r_off : top + r_off + m * tile_r, c_off : c_off + nc * tile_c]
                view = view.reshape(*batch, m, tile_r, nc, tile_c)
                h, w = piece.shape[-2:]
                view[..., :, :h, :, :w] += piece.swapaxes(-3, -2)
    gx = toolkit.fft_input_gradient(xp, ge, geometry) if need_x else None
    gk = toolkit.fft_kernel_lags(xp, fft, spectrum, block, geometry, options) if need_k else None
    return gx, gk
