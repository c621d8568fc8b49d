"""Optional numba-compiled direct correlation for the numpy adapter (``pip install xcorr[fast]``).

Used by ``backends/numpy.py`` (and so by dask blocks) for outputs of at least
``_methods.NUMBA_MIN_OUTPUTS`` elements. numba is imported the first time such
a call arrives, never at ``import xcorr``; without numba (or with
``ENABLED = False``) the numpy shift-and-add runs unchanged.

One kernel, compiled once per dtype (``cache=True`` keeps it on disk across
processes), computing a range of output rows (batch x rows flattened); each
row is accumulated over all taps while it sits in L1, four taps per pass, so
every output is written once to memory and the input rows are read from
cache. Large outputs split the rows between the adapter's thread pool and
the caller in chunks claimed one at a time (``nogil``) rather than numba's
``prange``: an OpenMP/workqueue split waits at its barrier for a thread that
a loaded 2-core machine has not scheduled (5-6 ms added to a 0.3 ms call
was measured), while here the caller simply takes over the remaining
chunks. The taps are added in the same order as the numpy path (row-major
over the kernel, the first tap a plain product), without ``fastmath``:
integers are exact and floats round as the numpy path does. Stride and dilation are index
arithmetic; only the strided outputs are computed.
"""

from __future__ import annotations

import itertools
import math
import threading
from functools import cache

import numpy as np

from .. import _fft, _methods

# Set to False to turn the numba path off (tests compare both paths).
ENABLED = True
# Row chunks per thread: small enough that the threads balance, large enough
# that each call into the kernel (a few microseconds) is negligible.
CHUNKS_PER_THREAD = 8
# Native-endian dtypes the kernel is compiled for; everything else takes the numpy path.
DTYPES = frozenset(np.dtype(t) for t in ("float32", "float64", "int32", "int64", "complex64", "complex128"))


@cache
def _kernel():
    try:
        import numba
    except ImportError:
        return None

    jit = numba.njit(cache=True, nogil=True, inline="always")

    # Up to four taps per pass over an output row: one load and one store of
    # the row per four products, the sum in the numpy path's order.
    @jit
    def taps1(o, k0, x0, first):  # pragma: no cover - compiled
        if first:
            for j in range(o.shape[0]):
                o[j] = k0 * x0[j]
        else:
            for j in range(o.shape[0]):
                o[j] = o[j] + k0 * x0[j]

    @jit
    def taps2(o, k0, x0, k1, x1, first):  # pragma: no cover - compiled
        if first:
            for j in range(o.shape[0]):
                o[j] = k0 * x0[j] + k1 * x1[j]
        else:
            for j in range(o.shape[0]):
                o[j] = (o[j] + k0 * x0[j]) + k1 * x1[j]

    @jit
    def taps3(o, k0, x0, k1, x1, k2, x2, first):  # pragma: no cover - compiled
        if first:
            for j in range(o.shape[0]):
                o[j] = (k0 * x0[j] + k1 * x1[j]) + k2 * x2[j]
        else:
            for j in range(o.shape[0]):
                o[j] = ((o[j] + k0 * x0[j]) + k1 * x1[j]) + k2 * x2[j]

    @jit
    def taps4(o, k0, x0, k1, x1, k2, x2, k3, x3, first):  # pragma: no cover - compiled
        if first:
            for j in range(o.shape[0]):
                o[j] = ((k0 * x0[j] + k1 * x1[j]) + k2 * x2[j]) + k3 * x3[j]
        else:
            for j in range(o.shape[0]):
                o[j] = (((o[j] + k0 * x0[j]) + k1 * x1[j]) + k2 * x2[j]) + k3 * x3[j]

    @jit
    def row(o, x, k, top, c0, dr, dc, cols):  # pragma: no cover - compiled
        # Output row o from the input plane x (dense columns: stride 1).
        h, w = k.shape
        total = h * w
        for q in range(0, total, 4):
            m = min(4, total - q)
            a0, b0 = q // w, q % w
            l0 = c0 + b0 * dc
            x0 = x[top + a0 * dr, l0 : l0 + cols]
            if m == 1:
                taps1(o, k[a0, b0], x0, q == 0)
                continue
            a1, b1 = (q + 1) // w, (q + 1) % w
            l1 = c0 + b1 * dc
            x1 = x[top + a1 * dr, l1 : l1 + cols]
            if m == 2:
                taps2(o, k[a0, b0], x0, k[a1, b1], x1, q == 0)
                continue
            a2, b2 = (q + 2) // w, (q + 2) % w
            l2 = c0 + b2 * dc
            x2 = x[top + a2 * dr, l2 : l2 + cols]
            if m == 3:
                taps3(o, k[a0, b0], x0, k[a1, b1], x1, k[a2, b2], x2, q == 0)
                continue
            a3, b3 = (q + 3) // w, (q + 3) % w
            l3 = c0 + b3 * dc
            x3 = x[top + a3 * dr, l3 : l3 + cols]
            taps4(o, k[a0, b0], x0, k[a1, b1], x1, k[a2, b2], x2, k[a3, b3], x3, q == 0)

    @jit
    def strided_row(o, x, k, top, c0, dr, dc, sc):  # pragma: no cover - compiled
        h, w = k.shape
        cols = o.shape[0]
        for a in range(h):
            xa = x[top + a * dr]
            for b in range(w):
                kab = k[a, b]
                left = c0 + b * dc
                if a == 0 and b == 0:
                    for j in range(cols):
                        o[j] = kab * xa[left + j * sc]
                else:
                    for j in range(cols):
                        o[j] = o[j] + kab * xa[left + j * sc]

    @numba.njit(cache=True, nogil=True)
    def corr(x, k, out, r0, c0, sr, sc, dr, dc, start, stop):  # pragma: no cover - compiled
        # Output rows start..stop of out viewed as (batch * rows, cols).
        rows, cols = out.shape[1], out.shape[2]
        for t in range(start, stop):
            n = t // rows
            i = t - n * rows
            if sc == 1:
                row(out[n, i], x[n], k, r0 + i * sr, c0, dr, dc, cols)
            else:
                strided_row(out[n, i], x[n], k, r0 + i * sr, c0, dr, dc, sc)

    return corr


def direct(x, k, options, geometry, pool, threads: int):
    """The correlation through the compiled kernel, or None where it does not apply.

    ``x`` and ``k`` are numpy arrays already cast to the result dtype (the
    kernel flipped for convolution). It applies to a 2-D kernel, a dtype in
    ``DTYPES`` and at least ``NUMBA_MIN_OUTPUTS`` outputs. ``pool()`` gives
    the adapter's thread pool, used with ``threads`` threads on at least
    ``NUMBA_THREADED_WORK`` products.
    """
    out_shape = geometry.out_shape
    size = math.prod(out_shape)
    if not ENABLED or size < _methods.NUMBA_MIN_OUTPUTS:
        return None
    if k.ndim != 2 or x.dtype not in DTYPES or k.dtype != x.dtype:
        return None
    corr = _kernel()
    if corr is None:
        return None
    rows, cols = geometry.rows, geometry.cols
    H, W = x.shape[-2:]
    if rows.lo >= 0 and cols.lo >= 0 and rows.hi < H and cols.hi < W:
        # Every window lies inside x: read x itself at an offset (no copy when contiguous).
        src, r0, c0 = x, rows.lo, cols.lo
    elif options.boundary == "fill":
        src, r0, c0 = _filled(x, rows, cols, options.fillvalue), 0, 0
    else:
        src, r0, c0 = _fft.extend(np, x, geometry, options), 0, 0
    src = np.ascontiguousarray(src).reshape(-1, *src.shape[-2:])
    k = np.ascontiguousarray(k)
    out = np.empty(out_shape, dtype=x.dtype)
    flat = out.reshape(-1, *out_shape[-2:])
    total = flat.shape[0] * flat.shape[1]
    args = (src, k, flat, r0, c0, rows.step, cols.step, rows.dilation, cols.dilation)
    if threads < 2 or size * k.size < _methods.NUMBA_THREADED_WORK or total < 2 * threads:
        corr(*args, 0, total)
        return out
    _run_shared(corr, args, total, threads, pool)
    return out


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


def _run_shared(corr, args, total: int, threads: int, pool) -> None:
    """Rows ``0..total`` in chunks that the calling thread and the pool claim one at a time.

    The caller never waits for a pool thread that has not started (on a
    loaded machine it may not run for a whole time slice): it claims chunks
    until none are left and then waits only for chunks already being
    computed, so at worst it does all the work itself.
    """
    chunk = max(1, -(-total // (CHUNKS_PER_THREAD * threads)))
    count = -(-total // chunk)
    claims = itertools.count()  # next() is atomic under the GIL
    lock = threading.Lock()
    state = {"done": 0, "error": None}
    finished = threading.Event()

    def work():
        while True:
            c = next(claims)
            if c >= count:
                return
            try:
                corr(*args, c * chunk, min(total, (c + 1) * chunk))
            except BaseException as e:  # noqa: BLE001 - re-raised by the caller
                state["error"] = e
            with lock:
                state["done"] += 1
                if state["done"] == count:
                    finished.set()

    executor = pool()
    for _ in range(threads - 1):
        executor.submit(work)
    work()
    finished.wait()
    if state["error"] is not None:
        raise state["error"]
