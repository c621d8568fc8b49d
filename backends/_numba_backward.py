"""The fused direct backward of one correlation plane: both gradients in one pass over ``g``.

Imported by ``_numba.vjp`` once numba has loaded (never at ``import xcorr``).
The input gradient ``gx`` is the correlation of ``g`` (zeros outside it)
with the flipped kernel; the kernel gradient ``gk[a, b]`` is the sum of
``g`` times window ``(a, b)`` of the extended input. ``_numba.vjp``'s
chunked form computes a chunk's rows of ``gx`` (``corr``) and then its
rows' kernel-gradient sums (``kgrad``), so that every row of ``g`` is read
twice, the second time from wherever a chunk of rows left it. Here a chunk
of rows of ``gx`` walks down its plane in groups of a few rows (``GROUP_BYTES``
of ``g`` each): the kernel-gradient sums of the rows of ``g`` that the
group brings in, then the group's rows of ``gx``, which need those rows of
``g`` and the few before them, all still in the core's cache. ``g`` and
``x`` leave memory once and ``gx`` is written once.

Each row of ``g`` is assigned to one row of ``gx`` (``t + rows.lo``,
clamped to the plane), so chunks of ``gx`` rows partition the rows of ``g``:
every product of the kernel gradient is summed once, in a float64 partial
sum per chunk (per thread's claimed chunk), and the partial sums are added
in chunk order, so the result does not depend on the threads' timing. The
arithmetic is ``_numba_kernels``' ``corr`` and ``kgrad``: the same taps in
the same order, the same IEEE behaviour (a NaN or inf in ``g``, ``x`` or
``k`` reaches the gradients it reaches in the direct formula, including
``k[a, b] * 0`` for the zeros outside ``g``).
"""

from __future__ import annotations

import numba
import numpy as np

from ._numba_cache import CACHE
from ._numba_kernels import corr, kgrad

# Bytes of g per group of rows: the group's rows of g and x, the rows of g
# before it that its rows of gx read, and its rows of gx stay in a core's L2.
GROUP_BYTES = 64 << 10


@numba.njit(cache=CACHE, nogil=True)
def fused(x, g, flipped, gx, zeros, consts, acc, lo_r, lo_c, dr, dc, g_r0, g_c0, group, start, stop):  # pragma: no cover - compiled
    # Rows start..stop of gx viewed as (planes * H, W), and into acc the
    # kernel-gradient sums of the rows of g assigned to them: row t of
    # plane n to row clamp(t + lo_r, 0, H - 1) of gx.
    H = x.shape[1]
    G = g.shape[1]
    for n in range((start // H), (stop - 1) // H + 1):
        first = max(start - n * H, 0)
        last = min(stop - n * H, H)
        t = 0 if first == 0 else min(max(first - lo_r, 0), G)
        t_end = G if last == H else min(max(last - lo_r, 0), G)
        r = first
        while r < last:
            r_next = min(r + group, last)
            t_next = t_end if r_next == last else min(max(r_next - lo_r, t), t_end)
            if t_next > t:
                kgrad(x, g, consts, acc, lo_r, lo_c, 1, 1, dr, dc, n * G + t, n * G + t_next)
            corr(g, flipped, gx, zeros, g_r0, g_c0, 1, 1, dr, dc, n * H + r, n * H + r_next)
            r, t = r_next, t_next


def vjp(x, k, operands, geometry, pool, threads: int, tuning, *, split, run_chunks):
    """``(gx, gk)`` through ``fused``: the cases ``_numba.vjp`` has checked (real float32/float64 of one
    dtype, a 2-D kernel flipped for a convolution already, stride 1, a "fill" extension or none reached).

    ``operands`` are ``_numba._backward_operands``' (the arrays and the start of ``gx``'s correlation);
    ``split`` and ``run_chunks`` are ``_numba``'s ``_chunks`` and ``_run``: the rows of ``gx`` in
    chunks, claimed one at a time by the pool's threads and the caller."""
    rows, cols = geometry.rows, geometry.cols
    h, w = k.shape
    planes, gb, gx, flipped, zeros, consts, g_r0, g_c0 = operands
    group = max(1, GROUP_BYTES // max(1, gb.shape[2] * gb.itemsize))
    x_rows = planes.shape[0] * planes.shape[1]
    work = gb.size * h * w
    chunks = split(x_rows, threads, work, tuning.numba_threaded_work)
    partial = np.zeros((len(chunks), h, w), dtype=np.float64)
    args = (rows.lo, cols.lo, rows.dilation, cols.dilation, g_r0, g_c0, group)

    def run(chunk, start, stop):
        fused(planes, gb, flipped, gx, zeros, consts, partial[chunk], *args, start, stop)

    run_chunks(run, chunks, threads, pool)
    # The chunks' partial sums meet as the compiled sums do, silently: an inf and a -inf in two
    # chunks give NaN without a warning that one chunk (fewer threads) would not give.
    with np.errstate(invalid="ignore", over="ignore"):
        gk = partial.sum(axis=0)
    return gx.reshape(x.shape), gk.astype(x.dtype)
