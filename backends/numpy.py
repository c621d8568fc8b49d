"""NumPy adapter: row-tiled shift-and-add with ``out=``, and FFTs through scipy.fft.

Imported lazily by the adapter registry (``xcorr._registry``) the first time a numpy array reaches
xcorr. scipy is imported only on the FFT path, so small direct calls load no
other library.

Direct: the output is computed in bands of rows small enough that the band,
one temporary and the input rows it reads stay in the L2 cache while all the
kernel taps pass over them (``np.multiply(..., out=tmp)``,
``np.add(band, tmp, out=band)``). Large outputs split their bands between the
threads of the adapters' shared pool (``_threads``: one per CPU this process
may use; numpy releases the GIL inside ufuncs). Extra memory: the output plus
one band-sized temporary per thread, never ``h*w`` shifted copies.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from dataclasses import dataclass

import numpy as np

from .. import toolkit
from ..toolkit import Adapter, AxisPlan, Costs, Geometry, Tuning, result_dtype
from . import _numpy_fft, _threads

try:
    from . import _numba
    from ._numba import MIN_OUTPUTS, THREADED_WORK
except ImportError:  # the optional numba path removed: numpy's own code serves every call
    _numba = None
    MIN_OUTPUTS = THREADED_WORK = 0


def correlate(xp, x, k, options, geometry):
    """Validated correlation of numpy arrays (``NumpyAdapter.correlate``)."""
    if options.method == "fft":
        return _numpy_fft.fft_correlate(xp, x, k, options, geometry, ADAPTER.tuning)
    return direct(xp, x, k, options, geometry)


def direct(xp, x, k, options, geometry):
    x, k = toolkit.prepare(xp, x, k, options)
    compacted = toolkit.compact(xp, x, geometry, options)
    if compacted is not None:
        # A dilation wider than the output: the taps' windows end to end, every window inside.
        x, geometry = compacted
    bands = _extension_bands(x, options, geometry)
    if bands is not None:
        return _banded_extension(xp, x, k, options, geometry, bands)
    return _direct(xp, x, k, options, geometry)


def _extension_bands(x, options, geometry):
    """Output rows per band where a large image is extended band by band, or None.

    A "wrap", "symm", "reflect" or "edge" extension of the whole image is a
    copy of it (one output of extra memory, on top of the output); "fill"
    is virtual in numba's kernels. Above twice ``tuning.extension_band_bytes``
    of extended input, each band of output rows reads its own extension of
    the input rows it needs instead (``_banded_extension``).
    """
    if geometry.inside or options.boundary == "fill":
        return None
    rows, cols = geometry.rows, geometry.cols
    tuning = ADAPTER.tuning
    row_bytes = math.prod(x.shape[:-2]) * (cols.hi - cols.lo + 1) * x.itemsize
    extended = (rows.hi - rows.lo + 1) * row_bytes
    if extended <= 2 * tuning.extension_band_bytes or rows.count < 2:
        return None
    target = max(tuning.extension_band_bytes, extended // tuning.extension_bands)
    # Input rows a band of b output rows reads: (b - 1) * step + span.
    band = max(1, (target // row_bytes - rows.span) // rows.step + 1)
    return band if band < rows.count else None


def _banded_extension(xp, x, k, options, geometry, band: int):
    """``_direct`` over bands of ``band`` output rows, each on the extension of the rows it reads.

    Every band is a "valid" correlation of its own extended rows (every
    window inside), written into the output: extra memory is one band's
    extended input and its result per thread, not an extended copy of the
    image. Large outputs spread their bands over the shared pool's threads,
    each band computed on one thread (so that no band's arrays outlive it in
    a pool queue).
    """
    rows, cols = geometry.rows, geometry.cols
    out = np.empty(geometry.out_shape, dtype=x.dtype)
    width = cols.hi - cols.lo + 1
    inner = dataclasses.replace(options, mode="valid", padding=None)
    tuning = ADAPTER.tuning
    alone = dataclasses.replace(tuning, numba_threaded_work=2**62, threaded_elements=2**62)
    starts = list(range(0, rows.count, band))

    def one(r0):
        end = min(rows.count, r0 + band)
        lo = rows.lo + r0 * rows.step
        hi = rows.lo + (end - 1) * rows.step + rows.span - 1
        xb = toolkit.extend_axis(xp, x, -2, lo, hi, options.boundary, options.fillvalue)
        xb = toolkit.extend_axis(xp, xb, -1, cols.lo, cols.hi, options.boundary, options.fillvalue)
        part = Geometry(
            geometry.batch,
            (
                AxisPlan(hi - lo + 1, rows.taps, rows.dilation, rows.step, 0, end - r0),
                AxisPlan(width, cols.taps, cols.dilation, cols.step, 0, cols.count),
            ),
        )
        # numba's kernel runs where it would on the whole output (its threshold scaled by the share).
        share = dataclasses.replace(alone, numba_min_outputs=int(tuning.numba_min_outputs * (end - r0) / rows.count))
        out[..., r0:end, :] = _direct(xp, xb, k, inner, part, share)

    claims = itertools.count()  # next() is atomic under the GIL

    def work():
        for i in iter(lambda: next(claims), None):
            if i >= len(starts):
                return
            one(starts[i])

    threads = _threads.count()
    work_done = out.size * rows.taps * cols.taps
    if threads > 1 and (work_done >= tuning.numba_threaded_work or out.size >= tuning.threaded_elements):
        pending = [_pool().submit(work) for _ in range(min(threads, len(starts)) - 1)]
        work()
        for future in pending:
            future.result()
    else:
        work()
    return out


def _direct(xp, x, k, options, geometry, tuning=None):
    """``direct`` of prepared (cast, flipped for convolution) arrays (``tuning``: the adapter's)."""
    tuning = ADAPTER.tuning if tuning is None else tuning
    y = None if _numba is None else _numba.direct(x, k, options, geometry, _pool, _numba.threads(), tuning)
    if y is not None:
        return y
    xe = toolkit.extend(xp, x, geometry, options)
    rows, cols = geometry.rows, geometry.cols
    out = np.empty(geometry.out_shape, dtype=x.dtype)
    if out.size == 0:
        return out
    # One scalar per tap when the kernel has no batch dimensions (fast ufunc path).
    if k.ndim == 2:
        taps = [(a, b, k[a, b]) for a in range(rows.taps) for b in range(cols.taps)]
    else:
        taps = [(a, b, k[..., a : a + 1, b : b + 1]) for a in range(rows.taps) for b in range(cols.taps)]
    col_windows = [toolkit.window(cols, b) for b in range(cols.taps)]
    plane = out.size // rows.count  # elements per output row, over the batch
    band = max(1, tuning.band_bytes // (plane * out.itemsize))
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

    threads = _threads.count()
    if threads > 1 and out.size >= tuning.threaded_elements and len(starts) >= 2 * threads:
        share = math.ceil(len(starts) / threads)
        chunks = [starts[i : i + share] for i in range(0, len(starts), share)]
        # The caller computes the first share itself while the pool takes the others.
        pending = [_pool().submit(work, chunk) for chunk in chunks[1:]]
        work(chunks[0])
        for future in pending:
            future.result()
    else:
        work(starts)
    return out


def _small_direct(xp, x, k, options, geometry):
    """``direct`` of one signature with a 2-D kernel, its tap windows placed once.

    Outputs that fit one band and stay below numba's threshold (read on every
    call, as ``direct`` reads them) are computed right here, with the same
    operations in the same order as ``direct``'s single band (all the taps'
    products at once where that is cheaper: ``_gathers``, ``_gathered``);
    the rest go through ``direct``.
    """
    rows, cols = geometry.rows, geometry.cols
    dtype = result_dtype(xp, x.dtype, k.dtype)
    outputs = math.prod(geometry.out_shape)
    nbytes = outputs * np.dtype(dtype).itemsize
    h, w = rows.taps, cols.taps
    taps = [
        ((h - 1 - a, w - 1 - b) if options.convolve else (a, b), (..., toolkit.window(rows, a), toolkit.window(cols, b)))
        for a in range(h)
        for b in range(w)
    ]
    (first, first_window), rest = taps[0], taps[1:]
    inside = (..., slice(rows.lo, rows.hi + 1), slice(cols.lo, cols.hi + 1)) if geometry.inside else None
    if inside is None and (toolkit.compact_axis(rows) or toolkit.compact_axis(cols)):
        # A dilation wider than the output: direct lays the taps' windows end to end.
        return lambda x, k: correlate(xp, x, k, options, geometry)

    def run(x, k):
        tuning = ADAPTER.tuning
        if outputs >= tuning.numba_min_outputs or nbytes > tuning.band_bytes:
            return correlate(xp, x, k, options, geometry)
        if x.dtype != dtype:
            x = x.astype(dtype)
        if k.dtype != dtype:
            k = k.astype(dtype)
        xe = x[inside] if inside is not None else toolkit.extend(xp, x, geometry, options)
        if _gathers(tuning, outputs, h * w, nbytes * h * w):
            return _gathered(xe, k[::-1, ::-1] if options.convolve else k, rows, cols)
        out = np.multiply(xe[first_window], k[first])
        if rest:
            tmp = np.empty_like(out)
            for tap, window in rest:
                np.multiply(xe[window], k[tap], out=tmp)
                np.add(out, tmp, out=out)
        return out

    return run


def _gathers(tuning, outputs: int, taps: int, nbytes: int) -> bool:
    """Whether ``_gathered`` is cheaper than the loop: its fixed cost is about that of
    ``gathered_fixed_taps`` taps of the loop, and each product costs it more, so it wins while the
    products (``outputs * taps``, ``nbytes`` of them) number at most ``gathered_products_per_tap`` per
    tap beyond those, and stay within ``gathered_bytes``."""
    saved = taps - tuning.gathered_fixed_taps
    return saved > 0 and outputs * taps <= tuning.gathered_products_per_tap * saved and nbytes <= tuning.gathered_bytes


def _gathered(xe, k, rows, cols):
    """The correlation of the extended ``xe`` with ``k`` in three calls: every window as one strided view
    (tap-major), each multiplied by its tap, the products added tap after tap.

    ``add.reduce`` over the leading axis of a contiguous array adds its rows in order, in the
    products' dtype: the sums of ``_small_direct``'s loop, bit for bit (integers wrap alike).
    """
    h, w = k.shape
    windows = _windows(xe, (h, w), rows, cols)
    products = np.multiply(windows, k.reshape(h, w, *(1,) * (windows.ndim - 2)))
    return np.add.reduce(products.reshape(h * w, -1), axis=0, dtype=products.dtype).reshape(windows.shape[2:])


def _windows(xe, taps: tuple[int, int], rows, cols):
    """Every window of the extended ``xe`` as one read-only strided view ``(h, w, *batch, H', W')``."""
    *batch, row, col = xe.strides
    shape = (*taps, *xe.shape[:-2], rows.count, cols.count)
    strides = (row * rows.dilation, col * cols.dilation, *batch, row * rows.step, col * cols.step)
    return np.lib.stride_tricks.as_strided(xe, shape, strides, writeable=False)


def kernel_gradient(xp, x, k, g, options, geometry, method) -> np.ndarray | None:
    """``_vjp`` hook for the direct method: one numba pass (``_numba.kernel_gradient``) where it
    applies, else for a small gradient one ``einsum`` over every window at once
    (``gathered_gradient_*`` of the tuning), against two calls per tap of the generic reductions;
    None otherwise (the generic path)."""
    if method != "direct":
        return None
    tuning = ADAPTER.tuning
    if _numba is not None:
        gk = _numba.kernel_gradient(x, g, tuple(k.shape), options, geometry, _pool, _numba.threads(), tuning)
        if gk is not None:
            return gk
    taps = geometry.rows.taps * geometry.cols.taps
    saved = taps - tuning.gathered_gradient_fixed_taps
    if g.size == 0 or saved <= 0 or g.size * taps > tuning.gathered_gradient_products_per_tap * saved:
        return None
    windows = _windows(toolkit.extend(xp, x, geometry, options), (geometry.rows.taps, geometry.cols.taps),
                       geometry.rows, geometry.cols)  # fmt: skip
    gk = np.einsum("ab...rc,...rc->...ab", windows, g)  # the products' sums over the windows' positions
    return toolkit.unbroadcast(xp, gk, tuple(k.shape))


def correlate_multi(xp, x, w, options, geometry, groups) -> np.ndarray | None:
    """``corr2d_multi`` hook: one GEMM per kernel tap (channels are the inner dimension).

    ``y[n, o] += w[o, :, a, b] @ window(a, b) of x[n]`` for every tap: BLAS
    does the channel sums. Extra memory: one input-sized copy of a window
    and one output-sized product at a time, against the
    ``N * C_out * C_in``-plane intermediate of the broadcast ``corr2d``.
    None (the generic path) for a method other than "auto" and for non-floating dtypes.
    """
    if options.method != "auto":
        return None
    dtype = np.result_type(x.dtype, w.dtype)
    if dtype.kind not in "fc":
        return None  # integer GEMMs are slow and skip BLAS; the generic path is exact
    x = np.asarray(x, dtype=dtype)
    w = np.asarray(w, dtype=dtype)
    if options.convolve:
        w = w[..., ::-1, ::-1]
    xb = x if x.ndim == 4 else x[None]
    compacted = toolkit.compact(xp, xb, geometry, options)
    xe, geometry = compacted if compacted is not None else (toolkit.extend(xp, xb, geometry, options), geometry)
    rows, cols = geometry.rows, geometry.cols
    n, _c = xe.shape[:2]
    o, cg = w.shape[:2]
    og = o // groups
    points = rows.count * cols.count
    out = np.zeros((n, groups, og, points), dtype=dtype)
    tmp = np.empty_like(out)
    col_windows = [toolkit.window(cols, b) for b in range(cols.taps)]
    for a in range(rows.taps):
        ra = toolkit.window(rows, a)
        for b in range(cols.taps):
            src = np.ascontiguousarray(xe[:, :, ra, col_windows[b]]).reshape(n, groups, cg, points)
            np.matmul(w[:, :, a, b].reshape(groups, og, cg), src, out=tmp)
            np.add(out, tmp, out=out)
    y = out.reshape(n, o, rows.count, cols.count)
    return y if x.ndim == 4 else y[0]


def _pool():
    """The adapters' shared worker pool (``_threads.pool``: fork-safe, one per process)."""
    return _threads.pool()


# ---------------------------------------------------------------------------
# corr2d_vjp: both gradients together (numba's pass, or the FFT's one spectrum of g)
# ---------------------------------------------------------------------------


def fused_vjp(xp, x, k, g, options, geometry, need_x: bool, need_k: bool) -> tuple | None:
    """``_vjp`` hook: ``(gx, gk)`` together, of a correlation whose method is or picks "fft" or "direct".

    For real float32/float64 with stride 1 and a "fill" extension (or none
    reached). "fft" (for "auto", where every input is finite):
    ``_numpy_fft.fft_vjp``, both gradients from one spectrum of ``g``.
    "direct": both gradients in one pass of numba's kernels over chunks of
    rows (``_numba.vjp``), where that applies. None otherwise (the generic VJP).
    """
    dtype = np.result_type(x.dtype, k.dtype, g.dtype)
    if (
        dtype not in (np.float32, np.float64)
        or options.stride != (1, 1)
        or not (geometry.inside or options.boundary == "fill")
        or options.method not in ("auto", "fft", "direct")
    ):
        return None
    method = toolkit.concrete_method(ADAPTER, options.method, "real floating", x.shape, k.shape, geometry)
    if method == "direct":
        # Both gradients in one pass of numba's kernels over chunks of rows.
        if _numba is None or not (need_x and need_k) or x.dtype != dtype or k.dtype != dtype:
            return None
        return _numba.direct_vjp(x, k, np.asarray(g, dtype), options, geometry, _pool, _numba.threads(), ADAPTER.tuning)
    if options.method == "auto" and not toolkit.fft_allowed(ADAPTER, xp, x, k, g):
        return None  # NaN/inf would spread over an FFT
    return _numpy_fft.fft_vjp(xp, x, k, g, options, geometry, need_x, need_k, ADAPTER.tuning)


# ---------------------------------------------------------------------------
# corr2d_multi_vjp: the multi-channel backward as per-tap GEMMs
# ---------------------------------------------------------------------------


def correlate_multi_vjp(xp, x, w, g, options, geometry, groups, *, need_x=True) -> tuple | None:
    """``corr2d_multi_vjp`` hook: ``(gx, gw)`` as one GEMM per kernel tap and group.

    The transpose of ``correlate_multi``, laid out ``(group, channel, batch *
    outputs)`` so that each GEMM sums over the whole batch at once (strided
    views; the only copies are the window being read, as in the forward, and
    ``g`` once):

    * ``gw[o, c, a, b] = g[:, o] . window(a, b) of extend(x)[:, c]``;
    * the gradient of the extended input gets ``w[:, c, a, b]^T @ g`` added
      onto window ``(a, b)``, then the boundary extension is folded back onto
      ``x`` as the generic VJP does (``toolkit.fold_axis``: wrap/symm positions
      add onto the pixel they copied, fill positions are dropped).

    Against the broadcast ``corr2d`` VJP (an ``N * C_out * C_in``-plane
    intermediate) this is a few input-sized buffers. Same methods and dtypes
    as the forward hook, and at least one sample, channel and output; None otherwise (the generic VJP).
    """
    if options.method != "auto":
        return None
    dtype = np.result_type(x.dtype, w.dtype, g.dtype)
    if dtype.kind not in "fc":
        return None
    xd = np.asarray(x, dtype=dtype)
    wd = np.asarray(w, dtype=dtype)
    gd = np.asarray(g, dtype=dtype)
    if options.convolve:
        wd = wd[..., ::-1, ::-1]
    xb = xd if xd.ndim == 4 else xd[None]
    gb = gd if gd.ndim == 4 else gd[None]
    rows, cols = geometry.rows, geometry.cols
    n, c = xb.shape[:2]
    o, cg = wd.shape[:2]
    og = o // groups
    if 0 in (n, c, o, rows.count, cols.count):
        return None
    points = n * rows.count * cols.count
    # g as (G, Og, N * P): one copy, shared by both gradients.
    gt = np.ascontiguousarray(
        gb.reshape(n, groups, og, rows.count, cols.count).transpose(1, 2, 0, 3, 4)
    ).reshape(groups, og, points)
    col_windows = [toolkit.window(cols, b) for b in range(cols.taps)]

    # Weight gradient: (G, Og, NP) @ (G, NP, Cg) per tap.
    xe = toolkit.extend(xp, xb, geometry, options)
    xt = xe.reshape(n, groups, cg, *xe.shape[-2:]).transpose(1, 2, 0, 3, 4)  # a view
    gw = np.empty((groups, og, cg, rows.taps, cols.taps), dtype=dtype)
    for a in range(rows.taps):
        ra = toolkit.window(rows, a)
        for b in range(cols.taps):
            src = np.ascontiguousarray(xt[..., ra, col_windows[b]]).reshape(groups, cg, points)
            gw[..., a, b] = np.matmul(gt, src.transpose(0, 2, 1))
    gw = gw.reshape(o, cg, rows.taps, cols.taps)
    if options.convolve:
        gw = gw[..., ::-1, ::-1]
    gw = np.ascontiguousarray(toolkit.as_input_dtype(xp, gw, w))

    gx = None
    if need_x:
        ge = _scatter_windows(wd, gt, n, groups, cg, rows, cols, dtype)
        ge = toolkit.fold_axis(xp, ge, -2, rows.lo, rows.hi, rows.size, options.boundary)
        ge = toolkit.fold_axis(xp, ge, -1, cols.lo, cols.hi, cols.size, options.boundary)
        ge = ge if xd.ndim == 4 else ge[0]
        gx = np.ascontiguousarray(toolkit.as_input_dtype(xp, ge, x))
    return gx, gw


def _scatter_windows(wd, gt, n, groups, cg, rows, cols, dtype):
    """The input gradient of the extended image, ``(N, C, He, We)``, of ``correlate_multi``.

    ``gt`` is the output gradient laid out ``(G, Og, N * P)``; window
    ``(a, b)`` gets ``w[:, c, a, b]^T @ g`` added, through a ``(G, Cg, N,
    He, We)`` view.
    """
    og = wd.shape[0] // groups
    height = (rows.count - 1) * rows.step + rows.span
    width = (cols.count - 1) * cols.step + cols.span
    ge = np.zeros((n, groups, cg, height, width), dtype=dtype)
    get = ge.transpose(1, 2, 0, 3, 4)
    wt = wd.reshape(groups, og, cg, rows.taps, cols.taps)
    tmp = np.empty((groups, cg, gt.shape[-1]), dtype=dtype)
    shape = (groups, cg, n, rows.count, cols.count)
    col_windows = [toolkit.window(cols, b) for b in range(cols.taps)]
    for a in range(rows.taps):
        ra = toolkit.window(rows, a)
        for b in range(cols.taps):
            np.matmul(wt[..., a, b].transpose(0, 2, 1), gt, out=tmp)
            view = get[..., ra, col_windows[b]]
            np.add(view, tmp.reshape(shape), out=view)
    return ge.reshape(n, groups * cg, height, width)


def correlate_multi_transpose(xp, x, w, plan) -> np.ndarray | None:
    """``conv_transpose2d`` hook: the input-gradient scatter of ``correlate_multi_vjp`` (per-tap GEMMs).

    ``x`` plays the output gradient of the valid forward correlation on the
    uncropped extent; the core crops the result (``toolkit.transpose_finish``).
    Real and complex floating dtypes with at least one sample, channel and output channel; None otherwise.
    """
    dtype = np.result_type(x.dtype, w.dtype)
    if dtype.kind not in "fc":
        return None
    if plan.channels_last:
        x = toolkit.to_first(xp, x)
    xd = np.asarray(x, dtype=dtype)
    wd = np.asarray(w, dtype=dtype)
    xb = xd if xd.ndim == 4 else xd[None]
    rows, cols = plan.geometry.rows, plan.geometry.cols
    n, c_in = xb.shape[:2]
    groups = plan.groups
    og = w.shape[1]
    if 0 in (n, c_in, og):
        return None
    points = n * rows.count * cols.count
    gt = np.ascontiguousarray(
        xb.reshape(n, groups, c_in // groups, rows.count, cols.count).transpose(1, 2, 0, 3, 4)
    ).reshape(groups, c_in // groups, points)
    full = _scatter_windows(wd, gt, n, groups, og, rows, cols, dtype)
    return toolkit.transpose_finish(xp, full if xd.ndim == 4 else full[0], plan)


# ---------------------------------------------------------------------------
# The adapter
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class NumpyTuning(Tuning):
    """The numpy adapter's cost model and thresholds (``python -m benchmarks``, float32, 2 cores)."""

    costs: Costs = Costs(call=100e3, per_output=0.6, per_tap=0.3, fft_call=300e3, fft_point=0.45)
    # The direct path through numba's kernel (numba installed, a 2-D kernel,
    # enough outputs for it to be taken): about 8x cheaper per tap.
    numba_costs: Costs = Costs(call=100e3, per_output=0.6, per_tap=0.04, fft_call=300e3, fft_point=0.45)
    # numba's kernels (backends/_numba.py): whether they run, from how many
    # outputs, and from how many products threaded.
    numba: bool = True
    numba_min_outputs: int = MIN_OUTPUTS
    numba_threaded_work: int = THREADED_WORK
    # Bytes of output per band of rows: band + temporary + the rows read fit in L2.
    band_bytes: int = 256 * 1024
    # A call of one band may make its taps' products (outputs times taps) in one multiplication
    # and add them in one reduction, instead of two ufunc calls per tap (``_gathers``): its fixed
    # cost is that of about gathered_fixed_taps taps, it wins while the products number at most
    # gathered_products_per_tap per tap beyond those, and they are kept within gathered_bytes.
    gathered_fixed_taps: int = 4
    gathered_products_per_tap: int = 4096
    gathered_bytes: int = 256 * 1024
    # A direct kernel gradient that numba does not take: one einsum over every window at once
    # (``kernel_gradient``) costs about gathered_gradient_fixed_taps taps of the generic per-tap
    # reductions and wins while its products number at most gathered_gradient_products_per_tap per
    # tap beyond those (fitted on float64 gradients of 8x8 to 512x512 images, 3x3 and 5x5 kernels).
    gathered_gradient_fixed_taps: int = 2
    gathered_gradient_products_per_tap: int = 40_000
    # A wrap/symm/reflect/edge extension larger than twice extension_band_bytes is made band
    # by band of output rows (not as a copy of the image): about extension_bands bands, each
    # reading at least extension_band_bytes of extended input.
    extension_band_bytes: int = 256 * 1024
    extension_bands: int = 16
    # Outputs at least this large (elements) use all the threads of the shared pool.
    threaded_elements: int = 1 << 20
    # Transforms of at least this many elements use one scipy.fft worker per
    # CPU; smaller ones lose more to waking the threads than they gain.
    threaded_fft_elements: int = 1 << 18
    # Overlap-save blocks: the transform size is the smallest good size of at
    # least overlap_span_factor kernel spans and overlap_min_block, used where
    # the image holds at least overlap_min_blocks blocks along each axis; below
    # that one image-sized transform is faster (the 31x31 rows of the
    # benchmark). The backward follows the same rule.
    overlap_span_factor: int = 8
    overlap_min_block: int = 256
    overlap_min_blocks: int = 8
    # Tile rows per pass of the tiled FFT backward: about this many transform
    # points at a time, so that the spectra are reused heap blocks rather than
    # fresh image-sized mappings (page faults dominated the whole-image pass).
    overlap_band_points: int = 1 << 21


class NumpyAdapter(Adapter):
    """numpy: row-banded shift-and-add, numba kernels, scipy.fft, per-tap GEMMs for channels."""

    name = "numpy"
    array_module = "numpy"
    tuning = NumpyTuning()
    devices = False
    vecdot_kernel_gradient = True

    def correlate(self, xp, x, k, options, geometry):
        return correlate(xp, x, k, options, geometry)

    def prepare_correlate(self, xp, x, k, options, geometry):
        if options.method == "direct" and k.ndim == 2:
            return _small_direct(xp, x, k, options, geometry)
        return super().prepare_correlate(xp, x, k, options, geometry)

    def costs(self, k_shape, geometry):
        outputs = math.prod(geometry.out_shape)
        tuning = self.tuning
        numba = _numba is not None and tuning.numba and _numba.installed()
        if len(k_shape) == 2 and numba and outputs >= tuning.numba_min_outputs:
            return self.tuning.numba_costs
        return self.tuning.costs

    def vjp(self, xp, x, k, g, options, geometry, need_x, need_k):
        both = fused_vjp(xp, x, k, g, options, geometry, need_x, need_k)
        return super().vjp(xp, x, k, g, options, geometry, need_x, need_k) if both is None else both

    def kernel_gradient(self, xp, x, k, g, options, geometry, method):
        gk = kernel_gradient(xp, x, k, g, options, geometry, method)
        return super().kernel_gradient(xp, x, k, g, options, geometry, method) if gk is None else gk

    def correlate_multi(self, xp, x, w, options, geometry, groups):
        y = correlate_multi(xp, x, w, options, geometry, groups)
        return super().correlate_multi(xp, x, w, options, geometry, groups) if y is None else y

    def correlate_multi_vjp(self, xp, x, w, g, options, geometry, groups, need_x):
        grads = correlate_multi_vjp(xp, x, w, g, options, geometry, groups, need_x=need_x)
        return super().correlate_multi_vjp(xp, x, w, g, options, geometry, groups, need_x) if grads is None else grads

    def correlate_multi_transpose(self, xp, x, w, plan):
        y = correlate_multi_transpose(xp, x, w, plan)
        return super().correlate_multi_transpose(xp, x, w, plan) if y is None else y


ADAPTER = NumpyAdapter()
