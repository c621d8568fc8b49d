"""Optional numba-compiled direct correlation and kernel gradient for the numpy adapter (``pip install xcorr[fast]``).

Used by ``backends/numpy.py`` (and so by dask blocks) for outputs of at least
``numba_min_outputs`` elements (the adapter's tuning). numba is imported the first time such
a call arrives (the kernels live in ``_numba_kernels.py``), never at
``import xcorr``; without numba (or with ``numba=False`` in the tuning) the numpy code
runs unchanged.

``direct``: compiled once per dtype (cached on disk), the kernel computes a
range of output rows (batch x rows flattened); each row is accumulated over
all taps while it sits in L1, four taps per pass, so every output is written
once to memory and the input rows are read from cache. A "fill" extension is
never copied: rows outside the input read a row of the fill value, and the
few columns whose windows leave it are computed apart, in blocks (so the
input gradient, a "full" correlation, costs what the forward does). The taps
are added in the same order as the numpy path (row-major over the kernel,
the first tap a plain product), without ``fastmath``: integers are exact and
floats round as the numpy path does. Stride and dilation are index
arithmetic; only the strided outputs are computed.

``kernel_gradient``: all ``h*w`` tap sums of the kernel gradient in one pass
over ``g`` and ``x`` (the numpy path takes ``h*w`` passes).

Large calls split the rows between the adapter's thread pool and the caller
in chunks claimed one at a time (``nogil``) rather than numba's ``prange``:
an OpenMP/workqueue split waits at its barrier for a thread that a loaded
machine has not scheduled (which can cost many times the call), while here
the caller simply takes over the remaining chunks.
"""

from __future__ import annotations

import importlib.util
import itertools
import math
import os
import sys
import threading
import warnings
from functools import cache

import numpy as np

from .. import toolkit
from . import _threads

# Defaults of the thresholds that the tuning of each adapter running these
# kernels carries (``numba``, ``numba_min_outputs``, ``numba_threaded_work``):
# direct correlations with at least MIN_OUTPUTS outputs (batch included) go
# through the kernels, smaller ones never import numba (its call overhead and
# first-use load cost more than they save); their rows are split between
# threads from THREADED_WORK products (outputs x taps).
MIN_OUTPUTS = 1 << 14
THREADED_WORK = 1 << 21
# Row chunks per thread: small enough that the threads balance, large enough
# that each call into the kernel (a few microseconds) is negligible.
CHUNKS_PER_THREAD = 8
# Whether ``vjp`` runs the fused pass of ``_numba_backward`` (else its chunked two passes).
FUSED_BACKWARD = True
# Native-endian dtypes the kernel is compiled for; everything else takes the numpy path.
DTYPES = frozenset(np.dtype(t) for t in ("float32", "float64", "int32", "int64", "complex64", "complex128"))


def installed() -> bool:
    """Whether numba can be imported: installed (looked up without importing it), and not found
    broken by an import that failed."""
    return _found() and not _BROKEN


@cache
def _found() -> bool:
    return importlib.util.find_spec("numba") is not None


# Why numba failed to import, once it has (then the numpy code serves every call).
_BROKEN: list[str] = []


@cache
def _kernels():
    """The compiled kernels ``(corr, kgrad)`` of ``_numba_kernels``, or None without numba.

    numba installed but failing to import (it raises ImportError for a numpy it does not support)
    is as numba missing, with a warning, once: the numpy code serves every call.
    """
    try:
        import numba  # noqa: F401 - imported by _numba_kernels; here to tell its failure from ours
    except ImportError as err:
        if err.name != "numba":  # not a missing numba: one that is installed but broken
            _BROKEN.append(f"{type(err).__name__}: {err}")
            warnings.warn(
                f"numba is installed but fails to import ({err}); xcorr's numpy calls take the numpy code "
                "instead of numba's kernels",
                RuntimeWarning,
                stacklevel=2,
            )
        return None
    from . import _numba_kernels

    return _numba_kernels.corr, _numba_kernels.kgrad


def _kernels_for(applies: bool, geometry, tuning):
    """``_kernels()`` for a call that ``applies`` (its operands' checks) and is large enough for numba, else None."""
    if applies and tuning.numba and math.prod(geometry.out_shape) >= tuning.numba_min_outputs:
        return _kernels()
    return None


def direct(x, k, options, geometry, pool, threads: int, tuning):
    """The correlation through the compiled kernel, or None where it does not apply.

    ``x`` and ``k`` are numpy arrays already cast to the result dtype (the
    kernel flipped for convolution). It applies to a 2-D kernel, a dtype in
    ``DTYPES`` and at least ``tuning.numba_min_outputs`` outputs. ``pool()`` gives
    the adapter's thread pool, used with ``threads`` threads on at least
    ``tuning.numba_threaded_work`` products.
    """
    kernels = _kernels_for(k.ndim == 2 and x.dtype in DTYPES and k.dtype == x.dtype, geometry, tuning)
    if kernels is None:
        return None
    out_shape = geometry.out_shape
    size = math.prod(out_shape)
    rows, cols = geometry.rows, geometry.cols
    src, r0, c0 = _source(x, options, geometry, virtual_fill=cols.step == 1)
    k = np.ascontiguousarray(k)
    out = np.empty(out_shape, dtype=x.dtype)
    flat = out.reshape(-1, *out_shape[-2:])
    fillrow = np.full(cols.count, options.fillvalue, dtype=x.dtype)
    total = flat.shape[0] * flat.shape[1]

    def run(chunk, start, stop):
        kernels[0](src, k, flat, fillrow, r0, c0, rows.step, cols.step, rows.dilation, cols.dilation, start, stop)

    _run(run, _chunks(total, threads, size * k.size, tuning.numba_threaded_work), threads, pool)
    return out


def kernel_gradient(x, g, k_shape, options, geometry, pool, threads: int, tuning):
    """``gk[a, b] = sum(g * window(a, b) of extend(x))`` in one compiled pass, or None.

    The kernel gradient of a 2-D kernel (summed over every batch plane) for
    floating ``x`` and ``g`` of one dtype in ``DTYPES``, at least
    ``tuning.numba_min_outputs`` outputs. Where the numpy path takes ``h*w`` passes
    over ``x`` and ``g`` (one ``vecdot`` per tap), this reads each row of
    ``g`` once and the rows of ``x`` it meets from cache. A "fill"
    extension is never materialised. Each row's dot products are summed in
    the input dtype (vectorised), rows in float64 (complex128 for complex),
    in per-chunk partial sums added in chunk order: the result does not
    depend on the threads' timing.
    """
    applies = len(k_shape) == 2 and x.dtype in DTYPES and x.dtype.kind in "fc" and g.dtype == x.dtype
    kernels = _kernels_for(applies, geometry, tuning)
    if kernels is None:
        return None
    size = math.prod(geometry.out_shape)
    rows, cols = geometry.rows, geometry.cols
    src, r0, c0 = _source(x, options, geometry, virtual_fill=True)
    gb = np.ascontiguousarray(g).reshape(-1, *g.shape[-2:])  # a 2-D kernel: g's batch is x's
    consts = np.array([options.fillvalue, 0], dtype=x.dtype)
    total = gb.shape[0] * gb.shape[1]
    work = size * rows.taps * cols.taps
    chunks = _chunks(total, threads, work, tuning.numba_threaded_work)
    partial = np.zeros((len(chunks), rows.taps, cols.taps), dtype=np.result_type(x.dtype, np.float64))

    def run(chunk, start, stop):
        args = (r0, c0, rows.step, cols.step, rows.dilation, cols.dilation, start, stop)
        kernels[1](src, gb, consts, partial[chunk], *args)

    _run(run, chunks, threads, pool)
    return partial.sum(axis=0).astype(x.dtype)


def vjp(x, k, g, options, geometry, pool, threads: int, tuning):
    """``(gx, gk)`` of a direct correlation in one pass over chunks of rows, or None.

    ``x``, ``k`` (already flipped for a convolution) and ``g`` are numpy
    arrays of one real floating dtype; it applies to a 2-D kernel, stride 1,
    a "fill" extension (or none reached) and at least ``tuning.numba_min_outputs``
    outputs. The input gradient is the correlation of ``g`` (zeros outside)
    with the flipped kernel, read from ``corr``'s virtual fill; each chunk
    of rows computes its rows of it and then its rows' kernel-gradient sums
    (``kgrad``), so the rows of ``g`` it reads are still in cache for the
    second pass: ``g`` leaves memory once instead of twice. The kernel
    gradient is in the correlation's orientation, summed in float64 per
    chunk and over chunks in order.
    """
    rows, cols = geometry.rows, geometry.cols
    applies = k.ndim == 2 and x.dtype in (np.float32, np.float64) and k.dtype == g.dtype == x.dtype
    applies = applies and (rows.step, cols.step) == (1, 1) and (geometry.inside or options.boundary == "fill")
    kernels = _kernels_for(applies, geometry, tuning)
    if kernels is None:
        return None
    size = math.prod(geometry.out_shape)
    operands = _backward_operands(x, k, g, options, geometry)
    if FUSED_BACKWARD:  # both gradients in one pass over g (numba is loaded: _kernels() succeeded)
        from . import _numba_backward

        return _numba_backward.vjp(x, k, operands, geometry, pool, threads, tuning, split=_chunks, run_chunks=_run)
    corr, kgrad = kernels
    h, w = k.shape
    planes, gb, gx, flipped, zeros, consts, g_r0, g_c0 = operands
    g_rows, x_rows = gb.shape[0] * gb.shape[1], planes.shape[0] * planes.shape[1]
    work = size * h * w
    chunks = _chunks(g_rows, threads, work, tuning.numba_threaded_work)
    partial = np.zeros((len(chunks), h, w), dtype=np.float64)

    def run(chunk, start, stop):
        # This chunk's rows of gx: the same fraction of gx's rows as of g's.
        first, last = start * x_rows // g_rows, stop * x_rows // g_rows
        corr(gb, flipped, gx, zeros, g_r0, g_c0, 1, 1, rows.dilation, cols.dilation, first, last)
        args = (rows.lo, cols.lo, 1, 1, rows.dilation, cols.dilation, start, stop)
        kgrad(planes, gb, consts, partial[chunk], *args)

    _run(run, chunks, threads, pool)
    return gx.reshape(x.shape), partial.sum(axis=0).astype(x.dtype)


def direct_vjp(x, k, g, options, geometry, pool, threads: int, tuning):
    """``(gx, gk)`` of the call's direct correlation by ``vjp``, for numpy arrays of one real
    floating dtype as the caller holds them (the kernel not yet flipped for a convolution), or None.

    None with a NaN/inf tap as well: the core's scatter keeps such a tap off
    the fill (IEEE), where the kernels' full correlation of ``g`` would meet it.
    Shared by the numpy adapter and torch's CPU tensors.
    """
    if not np.isfinite(k).all():
        return None
    xd, kd = toolkit.prepare(np, x, k, options)
    both = vjp(xd, kd, np.asarray(g), options, geometry, pool, threads, tuning)
    if both is None:
        return None
    gx, gk = both
    return gx, (gk[::-1, ::-1].copy() if options.convolve else gk)


def _backward_operands(x, k, g, options, geometry):
    """What ``vjp``'s two forms (chunked here, fused in ``_numba_backward``) read and write: ``x``
    and ``g`` as (planes, rows, cols), ``gx``, the flipped kernel, ``g``'s zeros outside it, the fill,
    and where ``gx``, the correlation of ``g`` with the flipped kernel, starts."""
    rows, cols = geometry.rows, geometry.cols
    h, w = k.shape
    H, W = x.shape[-2:]
    planes = np.ascontiguousarray(x).reshape(-1, H, W)
    gb = np.ascontiguousarray(g).reshape(-1, *g.shape[-2:])
    # gx[r] = sum over a of g[r - lo - a*d] k[a] = the correlation of g with the flipped kernel from here:
    g_r0 = -rows.lo - (h - 1) * rows.dilation
    g_c0 = -cols.lo - (w - 1) * cols.dilation
    consts = np.array([options.fillvalue, 0], dtype=x.dtype)
    flipped = np.ascontiguousarray(k[::-1, ::-1])
    return planes, gb, np.empty(planes.shape, dtype=x.dtype), flipped, np.zeros(W, dtype=x.dtype), consts, g_r0, g_c0


def source(xp, x, options, geometry, *, virtual_fill: bool, extend):
    """``(planes, r0, c0)``: what the kernels read, as (planes, H, W), and where window (0, 0) starts.

    ``x`` itself when every window lies inside it, or with a "fill"
    boundary the kernels read virtually (``virtual_fill``); otherwise the
    extended input, ``extend(xp, x, geometry, options)`` (the adapter's).
    Shared by the numpy adapter and jax's custom calls.
    """
    rows, cols = geometry.rows, geometry.cols
    if geometry.inside or (options.boundary == "fill" and virtual_fill):
        src, r0, c0 = x, rows.lo, cols.lo
    else:
        src, r0, c0 = extend(xp, x, geometry, options), 0, 0
    return xp.reshape(src, (-1, *src.shape[-2:])), r0, c0


def _extend(xp, x, geometry, options):
    """numpy's extension for the kernels: one filled copy for a fill, else ``toolkit.extend``."""
    if options.boundary == "fill":
        return _filled(x, geometry.rows, geometry.cols, options.fillvalue)
    return toolkit.extend(np, x, geometry, options)


def _source(x, options, geometry, *, virtual_fill: bool):
    """``source`` of numpy arrays, contiguous as the kernels read them."""
    src, r0, c0 = source(np, x, options, geometry, virtual_fill=virtual_fill, extend=_extend)
    return np.ascontiguousarray(src), r0, c0


def _filled(x, rows, cols, fillvalue):
    """Positions ``lo..hi`` of both axes of ``x``, the fill value outside: one copy of ``x``
    (the generic extension concatenates once per axis)."""
    H, W = x.shape[-2:]
    xe = np.full((*x.shape[:-2], rows.hi - rows.lo + 1, cols.hi - cols.lo + 1), fillvalue, dtype=x.dtype)
    r_lo, r_hi = max(rows.lo, 0), min(rows.hi, H - 1)
    c_lo, c_hi = max(cols.lo, 0), min(cols.hi, W - 1)
    if r_lo <= r_hi and c_lo <= c_hi:
        xe[..., r_lo - rows.lo : r_hi - rows.lo + 1, c_lo - cols.lo : c_hi - cols.lo + 1] = x[
            ..., r_lo : r_hi + 1, c_lo : c_hi + 1
        ]
    return xe


def _chunks(total: int, threads: int, work: int, threaded_work: int) -> list[tuple[int, int]]:
    """Row ranges ``(start, stop)`` covering ``0..total``: one, or CHUNKS_PER_THREAD per thread
    from ``threaded_work`` products (``work``) on."""
    if threads < 2 or total < 2 * threads or work < threaded_work:
        return [(0, total)]
    chunk = max(1, -(-total // (CHUNKS_PER_THREAD * threads)))
    return [(start, min(total, start + chunk)) for start in range(0, total, chunk)]


def _run(run, chunks: list[tuple[int, int]], threads: int, pool) -> None:
    """``run(chunk, start, stop)`` for every ``(start, stop)`` of ``chunks``, claimed one at a time.

    The calling thread works too and never waits for a pool thread that has
    not started (on a loaded machine it may not run for a whole time slice):
    it claims chunks until none are left and then waits only for chunks
    already being computed, so at worst it does all the work itself.
    """
    if len(chunks) == 1:
        run(0, *chunks[0])
        return
    claims = itertools.count()  # next() is atomic under the GIL
    finished = itertools.count(1)
    # Held until the last chunk is done; a bare lock because a Condition or
    # Event costs a noticeable part of a medium-sized call just to make.
    done = threading.Lock()
    done.acquire()
    # ``run`` holds the call's arrays; a pool thread that starts after the last chunk finds the
    # list empty, so its queued work item does not keep them alive beyond this call.
    state: dict = {"error": None, "run": run}

    def work():
        while True:
            c = next(claims)
            if c >= len(chunks):
                return
            try:
                state["run"](c, *chunks[c])
            except BaseException as e:  # noqa: BLE001 - re-raised by the caller
                state["error"] = e
            if next(finished) == len(chunks):
                done.release()

    executor = pool()
    for _ in range(threads - 1):
        executor.submit(work)
    work()
    done.acquire()
    del state["run"]
    if state["error"] is not None:
        raise state["error"]


def threads() -> int:
    """The threads a numba path may use: the pool's limits (``_threads.count``) within numba's own.

    numba's count is ``numba.set_num_threads``'s once numba's thread pool runs (reading it
    earlier would start that pool), else ``NUMBA_NUM_THREADS``.
    """
    if "numba" not in sys.modules:  # not loaded yet: its own setting can only be NUMBA_NUM_THREADS
        value = os.environ.get("NUMBA_NUM_THREADS", "")
        return _threads.count(int(value) if value.isdigit() else None)
    try:
        from numba.core import config
        from numba.np.ufunc import parallel
    except ImportError:  # a numba that fails to import: its paths do not run
        return _threads.count()
    own = parallel.get_num_threads() if parallel._is_initialized else config.NUMBA_NUM_THREADS
    return _threads.count(own)
