"""The numba kernels of ``_numba.py``, compiled on first use (and cached on disk where that is possible: ``_numba_cache``).

A separate module so that ``import xcorr`` never imports numba (``_numba``
imports this one the first time a large numpy correlation arrives), and so
that the kernels are module-level functions: numba's on-disk cache does not
work for functions made inside a function (each process compiled them
again, 2-5 s per dtype).

``corr`` computes output rows of a correlation, ``kgrad`` the kernel
gradient's partial sums over output rows; ``_numba.py`` says how they are
called and split between threads.
"""

from __future__ import annotations

import numba
import numpy as np

# CACHE is False where nothing can be cached (a read-only install).
from ._numba_cache import CACHE

jit = numba.njit(cache=CACHE, nogil=True, inline="always")

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
def source(x, fillrow, r, left, m):  # pragma: no cover - compiled
    # Columns left..left+m of row r of the plane x, or m fill values where
    # row r lies outside x (the virtual "fill" extension: never copied).
    if r < 0 or r >= x.shape[0]:
        return fillrow[:m]
    return x[r, left : left + m]

@jit
def row(o, x, fillrow, k, top, c0, dr, dc):  # pragma: no cover - compiled
    # Output row o (dense columns, all of them inside x) from the plane x.
    h, w = k.shape
    cols = o.shape[0]
    total = h * w
    for q in range(0, total, 4):
        m = min(4, total - q)
        a0, b0 = q // w, q % w
        x0 = source(x, fillrow, top + a0 * dr, c0 + b0 * dc, cols)
        if m == 1:
            taps1(o, k[a0, b0], x0, q == 0)
            continue
        a1, b1 = (q + 1) // w, (q + 1) % w
        x1 = source(x, fillrow, top + a1 * dr, c0 + b1 * dc, cols)
        if m == 2:
            taps2(o, k[a0, b0], x0, k[a1, b1], x1, q == 0)
            continue
        a2, b2 = (q + 2) // w, (q + 2) % w
        x2 = source(x, fillrow, top + a2 * dr, c0 + b2 * dc, cols)
        if m == 3:
            taps3(o, k[a0, b0], x0, k[a1, b1], x1, k[a2, b2], x2, q == 0)
            continue
        a3, b3 = (q + 3) // w, (q + 3) % w
        x3 = source(x, fillrow, top + a3 * dr, c0 + b3 * dc, cols)
        taps4(o, k[a0, b0], x0, k[a1, b1], x1, k[a2, b2], x2, k[a3, b3], x3, q == 0)

@jit
def pair3x3(o, p, x, k, top, left):  # pragma: no cover - compiled
    # Output row o and the next one, p, of a dense 3x3 kernel (stride and
    # dilation 1) from input rows top..top+3 of the plane x, all inside x:
    # each input row is read once for both; each sum runs left to right, in
    # row's order (the same numbers).
    m = o.shape[0]
    r0, r1 = x[top, left : left + m + 2], x[top + 1, left : left + m + 2]
    r2, r3 = x[top + 2, left : left + m + 2], x[top + 3, left : left + m + 2]
    k00, k01, k02 = k[0, 0], k[0, 1], k[0, 2]
    k10, k11, k12 = k[1, 0], k[1, 1], k[1, 2]
    k20, k21, k22 = k[2, 0], k[2, 1], k[2, 2]
    for j in range(m):
        a0, a1, a2 = r1[j], r1[j + 1], r1[j + 2]
        b0, b1, b2 = r2[j], r2[j + 1], r2[j + 2]
        o[j] = k00 * r0[j] + k01 * r0[j + 1] + k02 * r0[j + 2] + k10 * a0 + k11 * a1 + k12 * a2 + k20 * b0 + k21 * b1 + k22 * b2
        p[j] = k00 * a0 + k01 * a1 + k02 * a2 + k10 * b0 + k11 * b1 + k12 * b2 + k20 * r3[j] + k21 * r3[j + 1] + k22 * r3[j + 2]

@jit
def pair5x5(o, p, x, k, top, left):  # pragma: no cover - compiled
    # pair3x3's pass for a dense 5x5 kernel: input rows top..top+5.
    m = o.shape[0]
    r0, r1, r2 = x[top, left : left + m + 4], x[top + 1, left : left + m + 4], x[top + 2, left : left + m + 4]
    r3, r4, r5 = x[top + 3, left : left + m + 4], x[top + 4, left : left + m + 4], x[top + 5, left : left + m + 4]
    k00, k01, k02, k03, k04 = k[0, 0], k[0, 1], k[0, 2], k[0, 3], k[0, 4]
    k10, k11, k12, k13, k14 = k[1, 0], k[1, 1], k[1, 2], k[1, 3], k[1, 4]
    k20, k21, k22, k23, k24 = k[2, 0], k[2, 1], k[2, 2], k[2, 3], k[2, 4]
    k30, k31, k32, k33, k34 = k[3, 0], k[3, 1], k[3, 2], k[3, 3], k[3, 4]
    k40, k41, k42, k43, k44 = k[4, 0], k[4, 1], k[4, 2], k[4, 3], k[4, 4]
    for j in range(m):
        o[j] = (
            k00 * r0[j] + k01 * r0[j + 1] + k02 * r0[j + 2] + k03 * r0[j + 3] + k04 * r0[j + 4]
            + k10 * r1[j] + k11 * r1[j + 1] + k12 * r1[j + 2] + k13 * r1[j + 3] + k14 * r1[j + 4]
            + k20 * r2[j] + k21 * r2[j + 1] + k22 * r2[j + 2] + k23 * r2[j + 3] + k24 * r2[j + 4]
            + k30 * r3[j] + k31 * r3[j + 1] + k32 * r3[j + 2] + k33 * r3[j + 3] + k34 * r3[j + 4]
            + k40 * r4[j] + k41 * r4[j + 1] + k42 * r4[j + 2] + k43 * r4[j + 3] + k44 * r4[j + 4]
        )  # fmt: skip
        p[j] = (
            k00 * r1[j] + k01 * r1[j + 1] + k02 * r1[j + 2] + k03 * r1[j + 3] + k04 * r1[j + 4]
            + k10 * r2[j] + k11 * r2[j + 1] + k12 * r2[j + 2] + k13 * r2[j + 3] + k14 * r2[j + 4]
            + k20 * r3[j] + k21 * r3[j + 1] + k22 * r3[j + 2] + k23 * r3[j + 3] + k24 * r3[j + 4]
            + k30 * r4[j] + k31 * r4[j + 1] + k32 * r4[j + 2] + k33 * r4[j + 3] + k34 * r4[j + 4]
            + k40 * r5[j] + k41 * r5[j + 1] + k42 * r5[j + 2] + k43 * r5[j + 3] + k44 * r5[j + 4]
        )  # fmt: skip

@jit
def stage(S, x, fill, top, dr, cstart):  # pragma: no cover - compiled
    # S[a, q] = extend(x)[top + a * dr, cstart + q]: the few columns at
    # the edges whose windows leave x, copied with the fill value so that
    # the vectorised loops run on them too (tap by tap with bounds checks
    # they cost more than the whole valid-mode call).
    H, W = x.shape
    width = S.shape[1]
    first, last = min(max(-cstart, 0), width), max(min(W - cstart, width), 0)
    for a in range(S.shape[0]):
        r = top + a * dr
        if r < 0 or r >= H or first >= last:
            S[a, :] = fill
            continue
        S[a, :first] = fill
        S[a, first:last] = x[r, cstart + first : cstart + last]
        S[a, last:] = fill

@jit
def edge_block(o, x, fill, k, top, cstart, sr, dr, dc):  # pragma: no cover - compiled
    # o[i, j] = sum of k[a, b] * extend(x)[top + i*sr + a*dr, cstart + j + b*dc]
    # (taps in row-major order) for a few edge columns j of many rows i:
    # their inputs staged column by column with the fill value, the loops
    # run down the columns (vectorised, independent sums): per row, the
    # edges cost a large share of a "full" call; as blocks, little.
    h, w = k.shape
    m, ncols = o.shape
    H, W = x.shape
    nr = (m - 1) * sr + (h - 1) * dr + 1
    T = np.empty((ncols + (w - 1) * dc, nr), dtype=x.dtype)
    for q in range(T.shape[0]):
        c = cstart + q
        for p in range(nr):
            r = top + p
            T[q, p] = x[r, c] if 0 <= c < W and 0 <= r < H else fill
    acc = np.empty(m, dtype=x.dtype)
    for j in range(ncols):
        for a in range(h):
            for b in range(w):
                column = T[j + b * dc]
                kab = k[a, b]
                first = a == 0 and b == 0
                if sr == 1:  # separate loops: a contiguous slice vectorises
                    taps1(acc, kab, column[a * dr : a * dr + m], first)
                else:
                    taps1(acc, kab, column[a * dr : a * dr + (m - 1) * sr + 1 : sr], first)
        for i in range(m):
            o[i, j] = acc[i]

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

@jit
def inside_columns(W, c0, span, sc, cols):  # pragma: no cover - compiled
    # Output columns lo..hi whose windows (span wide) lie inside 0..W.
    lo = min(max(-(c0 // sc), 0), cols)  # -(c0 // sc) = ceil(-c0 / sc)
    hi = max(min(-((c0 + span - 1 - W) // sc), cols), lo)  # ceil((W - c0 - span + 1) / sc)
    return lo, hi

@numba.njit(cache=CACHE, nogil=True)
def corr(x, k, out, fillrow, r0, c0, sr, sc, dr, dc, start, stop):  # pragma: no cover - compiled
    # Output rows start..stop of out viewed as (batch * rows, cols). Rows
    # of windows outside x read fillrow; with dense columns (sc == 1) the
    # few columns whose windows leave x are computed apart (edge_block).
    rows, cols = out.shape[1], out.shape[2]
    h, w = k.shape
    span = (w - 1) * dc + 1
    lo, hi = inside_columns(x.shape[2], c0, span, sc, cols)
    # A dense 3x3 or 5x5 kernel takes two output rows per pass where their input rows lie inside x.
    pairs = h == w and (h == 3 or h == 5) and sr == 1 and sc == 1 and dr == 1 and dc == 1
    t = start
    while t < stop:
        n = t // rows
        i = t - n * rows
        top = r0 + i * sr
        if sc != 1:  # every window inside x here (see _source)
            strided_row(out[n, i], x[n], k, top, c0, dr, dc, sc)
        elif hi > lo:
            if pairs and t + 1 < stop and i + 1 < rows and top >= 0 and top + h < x.shape[1]:
                if h == 3:
                    pair3x3(out[n, i, lo:hi], out[n, i + 1, lo:hi], x[n], k, top, c0 + lo)
                else:
                    pair5x5(out[n, i, lo:hi], out[n, i + 1, lo:hi], x[n], k, top, c0 + lo)
                t += 2
                continue
            row(out[n, i, lo:hi], x[n], fillrow, k, top, c0 + lo, dr, dc)
        t += 1
    if sc != 1 or (lo == 0 and hi == cols):
        return
    # The columns whose windows leave x, in blocks of rows of one plane.
    for n in range(start // rows, (stop - 1) // rows + 1):
        i0, i1 = max(start - n * rows, 0), min(stop - n * rows, rows)
        top = r0 + i0 * sr
        if lo > 0:
            edge_block(out[n, i0:i1, :lo], x[n], fillrow[0], k, top, c0, sr, dr, dc)
        if hi < cols:
            edge_block(out[n, i0:i1, hi:], x[n], fillrow[0], k, top, c0 + hi, sr, dr, dc)

# Reassociation lets LLVM vectorise the dot products (4x at 4096 columns);
# the sums differ from numpy's by rounding only, and NaN/inf still propagate.
fast = numba.njit(cache=CACHE, nogil=True, inline="always", fastmath={"reassoc", "contract"})

@fast
def dot(s, g, x):  # pragma: no cover - compiled
    # s + sum(g * x) over equal-length rows (slices: a computed index
    # into x would need numba's negative-index check, which stops LLVM
    # from vectorising).
    for j in range(g.shape[0]):
        s += g[j] * x[j]
    return s

@fast
def dot4(s, g, x0, x1, x2, x3):  # pragma: no cover - compiled
    # Four dot products with one g: g is loaded once per four products.
    s0, s1, s2, s3 = s, s, s, s
    for j in range(g.shape[0]):
        gj = g[j]
        s0 += gj * x0[j]
        s1 += gj * x1[j]
        s2 += gj * x2[j]
        s3 += gj * x3[j]
    return s0, s1, s2, s3


@fast
def row_dots(acc, a, zero, g, xr, first, dc):  # pragma: no cover - compiled
    # acc[a, b] += sum(g * xr[first + b*dc : ...]) for every b, four at a time.
    w = acc.shape[1]
    m = g.shape[0]
    b = 0
    while b + 4 <= w:
        l0, l1, l2, l3 = first + b * dc, first + (b + 1) * dc, first + (b + 2) * dc, first + (b + 3) * dc
        s0, s1, s2, s3 = dot4(zero, g, xr[l0 : l0 + m], xr[l1 : l1 + m], xr[l2 : l2 + m], xr[l3 : l3 + m])
        acc[a, b] += s0
        acc[a, b + 1] += s1
        acc[a, b + 2] += s2
        acc[a, b + 3] += s3
        b += 4
    if b < w:  # 1-3 taps left: as four, repeating the last (its extra sums dropped)
        l0 = first + b * dc
        l1 = first + min(b + 1, w - 1) * dc
        l2 = first + min(b + 2, w - 1) * dc
        s0, s1, s2, _ = dot4(zero, g, xr[l0 : l0 + m], xr[l1 : l1 + m], xr[l2 : l2 + m], xr[l2 : l2 + m])
        acc[a, b] += s0
        if b + 1 < w:
            acc[a, b + 1] += s1
        if b + 2 < w:
            acc[a, b + 2] += s2


@fast
def taps_dot(acc, gr, S, dc, sc, zero):  # pragma: no cover - compiled
    # acc[a, b] += sum(gr * window (a, b) of the rows S), S[a, 0] the first column read.
    h, w = acc.shape
    m = gr.shape[0]
    for a in range(h):
        for b in range(w):
            left = b * dc
            if sc == 1:
                acc[a, b] += dot(zero, gr, S[a, left : left + m])
            else:
                acc[a, b] += dot(zero, gr, S[a, left : left + (m - 1) * sc + 1 : sc])

@numba.njit(cache=CACHE, nogil=True, fastmath={"reassoc", "contract"})
def kgrad(x, g, consts, acc, r0, c0, sr, sc, dr, dc, start, stop):  # pragma: no cover - compiled
    # acc[a, b] += sum over output rows start..stop of g's row times the
    # (a, b) window of extend(x): all h*w taps in one pass over the rows,
    # each row's products summed in x's dtype and the rows in acc's.
    # consts holds the fill value and a zero of x's dtype.
    rows, cols = g.shape[1], g.shape[2]
    h, w = acc.shape
    span = (w - 1) * dc + 1
    lo, hi = inside_columns(x.shape[2], c0, span, sc, cols)
    fill, zero = consts[0], consts[1]
    left = np.empty((h, max(lo - 1, 0) * sc + span), dtype=x.dtype)
    right = np.empty((h, max(cols - hi - 1, 0) * sc + span), dtype=x.dtype)
    for t in range(start, stop):
        n = t // rows
        i = t - n * rows
        gr = g[n, i]
        top = r0 + i * sr
        if hi > lo:
            inner = gr[lo:hi]
            total = zero
            if top < 0 or top + (h - 1) * dr >= x.shape[1]:
                for j in range(inner.shape[0]):
                    total += inner[j]
            for a in range(h):
                r = top + a * dr
                if r < 0 or r >= x.shape[1]:  # a row of the fill value
                    for b in range(w):
                        acc[a, b] += fill * total
                    continue
                xr = x[n, r]
                if sc == 1:
                    # Contiguous slices vectorise; computed indices do not.
                    row_dots(acc, a, zero, inner, xr, c0 + lo, dc)
                    continue
                for b in range(w):
                    first = c0 + b * dc + lo * sc
                    acc[a, b] += dot(zero, inner, xr[first : first + (hi - lo - 1) * sc + 1 : sc])
        if lo > 0:
            stage(left, x[n], fill, top, dr, c0)
            taps_dot(acc, gr[:lo], left, dc, sc, zero)
        if hi < cols:
            stage(right, x[n], fill, top, dr, c0 + hi * sc)
            taps_dot(acc, gr[hi:], right, dc, sc, zero)

