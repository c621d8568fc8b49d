"""Dask adapter: blockwise correlation, each block through the numpy fast path.

Imported lazily by the adapter registry (``xcorr._registry``) the first time a dask array reaches
xcorr. Nothing is computed here: the result is a lazy dask array with known
chunks, one output block per input block (divided by the stride). Each output
block reads one overlapping window of the boundary-extended input (its rows
and columns plus the dilated kernel's span minus one), so images larger than
memory stay chunked, and each block runs the numpy direct or FFT path that
``method`` names ("auto" is resolved once, for the whole image). The
transposed convolution runs the other way: one block of its output gathers
numpy's scatter of the input window that reaches it.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, replace

import dask
import dask.array as da
import numpy as np

from .. import toolkit
from ..toolkit import Adapter, Costs, Options, Tuning


def correlate(xp, x, k, options, geometry):
    """Validated correlation of dask arrays over the geometry's two or three spatial axes
    (``DaskAdapter.correlate``, ``DaskAdapter.correlate_volume``)."""
    x, k = _as_dask(x), _as_dask(k)
    x, k = toolkit.prepare(xp, x, k, options)
    if math.prod(geometry.out_shape) == 0:
        return da.zeros(geometry.out_shape, dtype=x.dtype)
    compacted = toolkit.compact(xp, x, geometry, options)
    if compacted is not None:
        # A dilation wider than the output: the taps' windows end to end (a few
        # blocks, not a graph over the whole dilated span), every window inside.
        x, geometry = compacted
    tiles = _Tiles(xp, x, geometry, options)
    spatial = len(geometry.axes)
    # The convolution flip is already in k; blocks are plain valid correlations.
    block = tiles.block(options.method)
    kb = _broadcast(k, geometry.batch, spatial).rechunk((*tiles.batch_chunks, *(-1,) * spatial))

    def task(bounds):
        return da.map_blocks(
            _block,
            tiles.window(*bounds),
            kb,
            block=block,
            dtype=x.dtype,
            chunks=(*tiles.batch_chunks, *((o1 - o0,) for o0, o1 in zip(bounds[::2], bounds[1::2]))),
            meta=np.empty((0,) * len(geometry.out_shape), dtype=x.dtype),
        )

    return da.block(tiles.grid(task))


def _as_dask(a):
    return a if isinstance(a, da.Array) else da.from_array(np.asarray(a))


def _broadcast(a, batch, spatial: int = 2):
    if tuple(a.shape[:-spatial]) == tuple(batch):
        return a
    return da.broadcast_to(a, (*batch, *a.shape[-spatial:]))


class _Tiles:
    """The output split into blocks, and the window of the extended input that each block reads.

    The boundary extension is built once for the whole image or volume
    (``toolkit.extend``: slices of the global array and fill blocks, lazily), so
    a "wrap" or "symm" block near an edge reads the pixels of the opposite
    edge or the mirror image, as the in-memory path does. Output rows
    ``[r0, r1)`` read extended rows ``r0 * step .. (r1 - 1) * step + span - 1``:
    their own rows and the halo of the dilated kernel's span minus one, at
    the global stride phase (blocks start at multiples of the stride), and so
    along every spatial axis. Each output block is about one input chunk (over
    the stride); a window that crosses chunks (a halo, or chunks smaller than
    the kernel's span) is joined from the pieces of every chunk it covers. A
    block's bounds are ``(start, stop)`` of its outputs along each axis, flat:
    ``(r0, r1, c0, c1)`` in 2-D.
    """

    def __init__(self, xp, x, geometry, options, *, batch=None):
        self.axes = geometry.axes
        spatial = len(self.axes)
        xe = toolkit.extend(xp, x, geometry, options)
        self.xe = _broadcast(xe, geometry.batch, spatial) if batch is None else xe
        self.batch_chunks = self.xe.chunks[:-spatial] if batch is None else batch
        self.ranges = [_blocks(a.count, x.chunks[axis], a.step) for axis, a in zip(range(-spatial, 0), self.axes)]

    @property
    def row_blocks(self):
        return self.ranges[-2]

    @property
    def col_blocks(self):
        return self.ranges[-1]

    def block_options(self, method):
        """The options of a 2-D block: a valid correlation at the call's steps and dilations."""
        return Options(
            stride=tuple(a.step for a in self.axes), dilation=tuple(a.dilation for a in self.axes), method=method
        )

    def block(self, method):
        """What :func:`_block` computes: a 2-D block's options, or a volume's ``corr3d`` keywords."""
        options = self.block_options(method)
        if len(self.axes) == 2:
            return options
        return {"stride": options.stride, "dilation": options.dilation, "method": method}

    def window(self, *bounds):
        """The extended input that output block ``bounds`` reads, as one chunk per batch chunk."""
        window = self.xe[
            (..., *(slice(o0 * a.step, (o1 - 1) * a.step + a.span) for a, o0, o1 in zip(self.axes, bounds[::2], bounds[1::2])))
        ]
        return window.rechunk((*self.batch_chunks, *(-1,) * len(self.axes)))

    def blocks(self):
        return [tuple(o for pair in bounds for o in pair) for bounds in itertools.product(*self.ranges)]

    def grid(self, task, bounds=()):
        """``task(bounds)`` of every block, nested one list per axis (``dask.array.block``'s layout)."""
        axis = len(bounds) // 2
        if axis == len(self.axes):
            return task(bounds)
        return [self.grid(task, (*bounds, o0, o1)) for o0, o1 in self.ranges[axis]]


def _blocks(count: int, input_chunks, step: int):
    """Output ranges [r0, r1): about one input chunk (over the stride) each.

    Where the output is much longer than the input (a padding or a "full" extension many chunks
    wide) the blocks grow, so that an axis has at most a few blocks per input chunk, and at most
    ``_MAX_EXTRA_BLOCKS`` more: the graph's size follows the input's chunks, not the padding.
    """
    most = 2 * len(input_chunks) + _MAX_EXTRA_BLOCKS
    size = max(1, max(input_chunks) // step, -(-count // most))
    return [(r0, min(count, r0 + size)) for r0 in range(0, count, size)]


_MAX_EXTRA_BLOCKS = 16


def _block(x, k, *, block):
    if isinstance(block, Options):
        return toolkit.correlate(np.asarray(x), np.asarray(k), block)
    return toolkit.corr3d(np.asarray(x), np.asarray(k), **block)


def input_gradient(xp, x, k, g, options, geometry):
    """The input gradient, block by block of the extended image's gradient, then folded onto ``x``.

    Block ``[e0, e1)`` of the extended image's gradient gathers the terms of the output rows
    ``i`` with ``i * step + a * dilation`` in it for some tap ``a``: numpy's input gradient of the
    "valid" correlation of those rows alone, cropped. Each task looks at the kernel itself, so a
    NaN or inf tap meets only the outputs it produced (the IEEE rule, as numpy's, torch's and jax's
    own autodiff), without computing anything while the graph is built.
    """
    rows, cols = geometry.rows, geometry.cols
    gb = _broadcast(_as_dask(g), geometry.batch)
    batch_chunks = gb.chunks[:-2]
    k = _broadcast(_as_dask(k), geometry.batch).rechunk((*batch_chunks, -1, -1))
    spans = [_gradient_blocks(ap, gb.chunks[axis]) for axis, ap in ((-2, rows), (-1, cols))]
    sub = Options(
        stride=(rows.step, cols.step), dilation=(rows.dilation, cols.dilation),
        convolve=options.convolve, method=options.method,
    )  # fmt: skip
    grid = []
    for e0, e1, i0, i1 in spans[0]:
        line = []
        for f0, f1, j0, j1 in spans[1]:
            shape = (*gb.shape[:-2], e1 - e0, f1 - f0)
            if i0 >= i1 or j0 >= j1:  # no window reaches this block
                line.append(da.zeros(shape, dtype=g.dtype, chunks=(*batch_chunks, -1, -1)))
                continue
            line.append(
                da.map_blocks(
                    _input_gradient_block,
                    gb[..., i0:i1, j0:j1].rechunk((*batch_chunks, -1, -1)),
                    k,
                    options=sub,
                    crop=((e0 - i0 * rows.step, e1 - i0 * rows.step), (f0 - j0 * cols.step, f1 - j0 * cols.step)),
                    dtype=g.dtype,
                    chunks=(*batch_chunks, (e1 - e0,), (f1 - f0,)),
                    meta=np.empty((0,) * gb.ndim, dtype=g.dtype),
                )
            )
        grid.append(line)
    ge = da.block(grid)
    ge = toolkit.fold_axis(xp, ge, -2, rows.lo, rows.hi, rows.size, options.boundary)
    ge = toolkit.fold_axis(xp, ge, -1, cols.lo, cols.hi, cols.size, options.boundary)
    return toolkit.as_input_dtype(xp, toolkit.unbroadcast(xp, ge, tuple(x.shape)), x)


def _gradient_blocks(ap, g_chunks):
    """``(e0, e1, i0, i1)``: blocks ``[e0, e1)`` of the extended gradient (about one chunk of ``g``
    times the stride each) and the output rows ``[i0, i1)`` whose windows reach them."""
    extent = ap.hi - ap.lo + 1
    reach = (ap.taps - 1) * ap.dilation
    out = []
    for e0, e1 in _blocks(extent, tuple(n * ap.step for n in g_chunks), 1):
        i0 = max(0, -(-(e0 - reach) // ap.step))
        i1 = min(ap.count, (e1 - 1) // ap.step + 1)
        out.append((e0, e1, i0, max(i0, i1)))
    return out


def _input_gradient_block(g, k, *, options, crop):
    """numpy's input gradient of the rows and columns of ``g`` alone, cropped to ``crop``."""
    g, k = np.asarray(g), np.asarray(k)
    (r0, r1), (c0, c1) = crop
    shape = tuple(
        (n - 1) * s + (t - 1) * d + 1
        for n, s, t, d in zip(g.shape[-2:], options.stride, k.shape[-2:], options.dilation)
    )
    # Only the shape and dtype of the forward input are read: zeros of no memory.
    x = np.lib.stride_tricks.as_strided(np.zeros((), dtype=g.dtype), (*g.shape[:-2], *shape), (0,) * g.ndim)
    geometry = toolkit.plan(x.shape, k.shape, options)
    ge = toolkit.input_gradient(np, x, k.astype(g.dtype), g, options, geometry)
    ge = toolkit.extend_axis(np, ge, -2, r0, r1 - 1, "fill", 0)
    return np.ascontiguousarray(toolkit.extend_axis(np, ge, -1, c0, c1 - 1, "fill", 0))


def kernel_gradient(xp, x, k, g, options, geometry, method):
    """The kernel gradient as per-block partial sums and one tree reduction (``DaskAdapter.kernel_gradient``).

    ``gk[a, b] = sum(g * window(a, b) of extend(x))`` splits over output
    blocks: each block's partial is numpy's kernel gradient of that block's
    window of the extended input (the forward's window, halo included) with
    its block of ``g``, per plane of the broadcast batch. The partials, of
    the kernel's size per block and plane, are summed by ``dask.array.sum``;
    no task holds more than one block of the image or of ``g``.
    """
    x, g = _as_dask(x), _as_dask(g)
    compacted = toolkit.compact(xp, x, geometry, options)
    if compacted is not None:
        # The forward's windows end to end (a dilation wider than the output): the same sums.
        x, geometry = compacted
    batch = geometry.batch
    tiles = _Tiles(xp, x, geometry, options)
    block_options = tiles.block_options(method)
    k_shape = (*batch, *k.shape[-2:])
    gb = _broadcast(g, batch)
    partials = []
    for r0, r1, c0, c1 in tiles.blocks():
        g_block = gb[..., r0:r1, c0:c1].rechunk((*tiles.batch_chunks, -1, -1))
        partials.append(
            da.map_blocks(
                _kernel_gradient_block,
                tiles.window(r0, r1, c0, c1),
                g_block,
                options=block_options,
                k_shape=k.shape[-2:],
                dtype=x.dtype,
                chunks=(*tiles.batch_chunks, (k_shape[-2],), (k_shape[-1],)),
                meta=np.empty((0,) * len(k_shape), dtype=x.dtype),
            )
        )
    total = da.stack(partials).sum(axis=0, dtype=x.dtype) if len(partials) > 1 else partials[0]  # wraps as one sum
    return toolkit.unbroadcast(xp, total, tuple(k.shape))


def _kernel_gradient_block(window, g, *, options, k_shape):
    """Kernel gradient of one block, per plane (no sum over the batch), correlation orientation."""
    window, g = np.asarray(window), np.asarray(g)
    k = np.zeros((*g.shape[:-2], *k_shape), dtype=window.dtype)  # only its shape is read
    geometry = toolkit.plan(window.shape, k.shape, options)
    _, gk = toolkit.vjp(np, window, k, g, options, geometry, need_x=False)
    return gk


def correlate_multi(xp, x, w, options, geometry, groups):
    """``corr2d_multi``: numpy's multi-channel correlation of each block's window.

    Blocks as for ``correlate``: the batch axis keeps its chunks, channels
    join into one chunk, and each output block reads the window of the
    extended input that it needs (halo included).
    """
    x, w = _as_dask(x), _as_dask(w)
    dtype = np.result_type(x.dtype, w.dtype)
    x, w = x.astype(dtype), w.astype(dtype).rechunk(-1)
    batched = x.ndim == 4
    xb = x if batched else x[None, ...]
    xb = xb.rechunk({1: -1})
    lead = (xb.shape[0], xb.shape[1])
    tiles = _Tiles(xp, xb, geometry, options, batch=(xb.chunks[0], (lead[1],)))
    block_options = tiles.block_options(options.method)
    grid = [
        [
            da.map_blocks(
                _multi_block,
                tiles.window(r0, r1, c0, c1),
                w,
                options=block_options,
                groups=groups,
                dtype=dtype,
                chunks=(xb.chunks[0], (w.shape[0],), (r1 - r0,), (c1 - c0,)),
                meta=np.empty((0, 0, 0, 0), dtype=dtype),
            )
            for c0, c1 in tiles.col_blocks
        ]
        for r0, r1 in tiles.row_blocks
    ]
    y = da.block(grid)
    return y if batched else y[0]


def _multi_block(x, w, *, options, groups):
    x, w = np.asarray(x), np.asarray(w)
    geometry = toolkit.plan(x.shape[-2:], w.shape[-2:], options)
    return toolkit.correlate_multi(np, x, w, options, geometry, groups)


def correlate_multi_vjp(xp, x, w, g, options, geometry, groups, need_x):
    """``(gx, gw)`` of ``corr2d_multi``: ``gw`` as per-block partials of numpy's VJP, summed.

    ``gx`` (when needed) is the generic VJP's, whose input gradient is a
    blockwise "full" correlation of ``g`` folded back through the extension.
    """
    x, w, g = _as_dask(x), _as_dask(w), _as_dask(g)
    dtype = np.result_type(x.dtype, w.dtype, g.dtype)
    batched = x.ndim == 4
    xb = (x if batched else x[None, ...]).astype(dtype).rechunk({1: -1})
    gb = (g if batched else g[None, ...]).astype(dtype)
    wc = w.astype(dtype).rechunk(-1)
    tiles = _Tiles(xp, xb, geometry, options, batch=(xb.chunks[0], (xb.shape[1],)))
    block_options = tiles.block_options(options.method)
    partials = []
    for r0, r1, c0, c1 in tiles.blocks():
        window = tiles.window(r0, r1, c0, c1)
        g_block = gb[..., r0:r1, c0:c1].rechunk((xb.chunks[0], -1, -1, -1))
        for i in range(window.numblocks[0]):  # one partial per chunk of the batch and block of the image
            partials.append(
                da.map_blocks(
                    _multi_gradient_block,
                    window.blocks[i],
                    wc,
                    g_block.blocks[i],
                    options=block_options,
                    groups=groups,
                    dtype=dtype,
                    chunks=tuple((n,) for n in w.shape),
                    meta=np.empty((0, 0, 0, 0), dtype=dtype),
                )
            )
    gw = da.stack(partials).sum(axis=0, dtype=dtype) if len(partials) > 1 else partials[0]  # wraps as one sum
    gw = gw.astype(w.dtype) if np.issubdtype(w.dtype, np.floating) else gw
    gx = None
    if need_x:
        gx, _ = toolkit.generic_multi_vjp(xp, x, w, g, options, geometry, groups, True)
    return gx, gw


def _multi_gradient_block(x, w, g, *, options, groups):
    _, gw = toolkit.multi_vjp(np, np.asarray(x), np.asarray(w), np.asarray(g), options, groups, need_x=False)
    return gw


def correlate_multi_transpose(xp, x, w, tp):
    """``conv_transpose2d``: each output block is numpy's transposed convolution of the inputs and taps
    whose scatter reaches it (``toolkit.transpose_reach``), cropped to the block.

    Output blocks are about one input chunk times the stride along each spatial axis (boundaries at
    the input's chunk boundaries, moved by the stride and the crop), the batch keeps its chunks and
    the channels are one chunk: one task per output block and batch chunk, plus the slices of the
    input window it reads. Each task runs the numpy adapter's ``correlate_multi_transpose`` (per-tap
    GEMMs, which sum only the forward's products: a NaN or inf tap gives NaN and inf where torch's
    ``F.conv_transpose2d`` does), so nothing is computed while the graph is built.
    """
    x, w = _as_dask(x), _as_dask(w)
    dtype = np.dtype(toolkit.result_dtype(np, np.dtype(x.dtype), np.dtype(w.dtype)))
    last, batched = tp.channels_last, x.ndim == 4
    xb = (x if batched else x[None, ...]).rechunk({3 if last else 1: -1})
    wc = w.rechunk(-1)
    row_axis, col_axis = (1, 2) if last else (2, 3)
    c_out = w.shape[1] * tp.groups
    batch_chunks = xb.chunks[0]
    (top, _), (left, _) = tp.padding
    out_r, out_c = tp.out_hw
    rows, cols = tp.geometry.rows, tp.geometry.cols
    row_spans = _transpose_blocks(rows, xb.chunks[row_axis], out_r, top)
    col_spans = _transpose_blocks(cols, xb.chunks[col_axis], out_c, left)
    empty = 0 in (xb.shape[0], xb.shape[3 if last else 1], c_out)  # nothing scatters (numpy: zeros)
    grid = []
    for e0, e1, rr in row_spans:
        line = []
        for f0, f1, rc in col_spans:
            hw = (e1 - e0, f1 - f0)
            chunks = (
                (batch_chunks, (hw[0],), (hw[1],), (c_out,)) if last else (batch_chunks, (c_out,), (hw[0],), (hw[1],))
            )
            if empty or rr.empty or rc.empty:  # no input reaches this block
                line.append(da.zeros(tuple(map(sum, chunks)), dtype=dtype, chunks=chunks))
                continue
            spatial = (slice(rr.i0, rr.i1), slice(rc.i0, rc.i1))
            window = xb[(slice(None), *spatial, slice(None))] if last else xb[(slice(None), slice(None), *spatial)]
            geometry = toolkit.plan((rr.extent, rc.extent), (rr.a1 - rr.a0, rc.a1 - rc.a0), tp.options)
            crop = ((rr.offset, rr.extent - rr.offset - hw[0]), (rc.offset, rc.extent - rc.offset - hw[1]))
            line.append(
                da.map_blocks(
                    _transpose_block,
                    window.rechunk((batch_chunks, -1, -1, -1)),
                    wc,
                    plan=replace(tp, geometry=geometry, padding=crop, output_padding=(0, 0)),
                    taps=((rr.a0, rr.a1), (rc.a0, rc.a1)),
                    result=dtype,
                    dtype=dtype,
                    chunks=chunks,
                    meta=np.empty((0, 0, 0, 0), dtype=dtype),
                )
            )
        grid.append(da.concatenate(line, axis=col_axis) if len(line) > 1 else line[0])
    y = da.concatenate(grid, axis=row_axis) if len(grid) > 1 else grid[0]
    return y if batched else y[0]


def correlate_transpose(xp, x, k, tp) -> da.Array | None:
    """``corr2d_transpose``: ``correlate_multi_transpose`` of the planes as channels. One kernel for
    every plane (its batch all ones): the planes as a batch of one channel each; a batch of kernels:
    the planes as the channels of one sample, one group each (``w`` of shape ``(B, 1, h, w)``).
    None for no plane (the generic path's empty result)."""
    x, k = _as_dask(x), _as_dask(k)
    batch = np.broadcast_shapes(tuple(x.shape[:-2]), tuple(k.shape[:-2]))
    (H, W), (h, w), planes = x.shape[-2:], k.shape[-2:], math.prod(batch)
    if planes == 0:
        return None  # no plane: the generic path's empty result
    xb = da.broadcast_to(x, (*batch, H, W)) if tuple(x.shape[:-2]) != batch else x
    if math.prod(k.shape[:-2]) == 1:
        y = correlate_multi_transpose(xp, xb.reshape((planes, 1, H, W)), k.reshape((1, 1, h, w)), tp)
    else:
        kb = da.broadcast_to(k, (*batch, h, w)).reshape((planes, 1, h, w))
        y = correlate_multi_transpose(xp, xb.reshape((1, planes, H, W)), kb, replace(tp, groups=planes))
    return y.reshape((*batch, *y.shape[-2:]))


def _transpose_blocks(ap, x_chunks, count: int, top: int):
    """``(e0, e1, reach)``: output rows ``[e0, e1)`` of one block (they start at the input's chunk
    boundaries times the stride, less the crop ``top``) and the inputs and taps that reach them."""
    bounds, start = {0, count}, 0
    for n in x_chunks[:-1]:
        start += n
        bounds.add(min(max(start * ap.step - top, 0), count))
    edges = sorted(bounds)
    return [(e0, e1, toolkit.transpose_reach(ap, top + e0, top + e1)) for e0, e1 in itertools.pairwise(edges)]


def _transpose_block(x, w, *, plan, taps, result):
    """numpy's transposed convolution of one window of the input with the taps that reach its block."""
    (a0, a1), (b0, b1) = taps
    x = np.asarray(x).astype(result, copy=False)
    w = np.asarray(w)[:, :, a0:a1, b0:b1].astype(result, copy=False)
    return np.ascontiguousarray(toolkit.correlate_multi_transpose(np, x, w, plan))


@dataclass(frozen=True)
class DaskTuning(Tuning):
    """The dask adapter's cost model: its blocks run numpy's paths, so numpy's row."""

    costs: Costs = Costs(call=100e3, per_output=0.6, per_tap=0.3, fft_call=300e3, fft_point=0.45)


class DaskAdapter(Adapter):
    """dask: lazy blockwise correlation, each block through the numpy adapter."""

    name = "dask"
    array_module = "dask.array"
    tuning = DaskTuning()
    eager = False
    devices = False
    volumes = True

    def correlate(self, xp, x, k, options, geometry):
        return correlate(xp, x, k, options, geometry)

    def correlate_volume(self, xp, x, k, options, geometry):
        # "auto" resolved once for the whole volume, as in 2-D; where it picks the FFT, each block
        # takes numpy's "auto" (the FFT only for a block whose window and kernel are finite).
        if options.method == "auto":
            kind = toolkit.dtype_kind(xp, toolkit.result_dtype(xp, x.dtype, k.dtype))
            fft = toolkit.concrete_method(self, "auto", kind, x.shape, k.shape, geometry) == "fft"
            options = replace(options, method="auto" if fft else "direct")
        return correlate(xp, x, k, options, geometry)

    def prepare_auto_fft(self, xp, x, k, options, geometry):
        # Each block takes numpy's "auto": the FFT only for a block whose window and kernel are finite.
        blockwise = replace(options, method="auto")
        return lambda x, k: correlate(xp, x, k, blockwise, geometry)

    def finite_or(self, xp, a, fast, careful):
        # Reached by the generic input gradient alone, where dask's own paths do not apply (a
        # ``corr2d_transpose`` of no plane; the VJP's is ``input_gradient`` above and the transposed
        # convolutions' ``correlate_multi_transpose``, both IEEE block by block). Looking at a kernel's values would compute
        # its graph behind the user's back: both stay lazy, and the choice is made when computed.
        return xp.where(xp.all(xp.isfinite(a)), fast(), careful())

    def vjp(self, xp, x, k, g, options, geometry, need_x, need_k):
        # The kernel gradient as the generic VJP computes it (through kernel_gradient below).
        _, gk = super().vjp(xp, x, k, g, options, geometry, False, need_k)
        gx = None
        if need_x:
            dtype = np.result_type(x.dtype, k.dtype, g.dtype)
            gx = input_gradient(xp, x, k.astype(dtype), g.astype(dtype), options, geometry)
        return gx, gk

    def kernel_gradient(self, xp, x, k, g, options, geometry, method):
        return kernel_gradient(xp, x, k, g, options, geometry, method)

    def correlate_multi(self, xp, x, w, options, geometry, groups):
        return correlate_multi(xp, x, w, options, geometry, groups)

    def correlate_multi_vjp(self, xp, x, w, g, options, geometry, groups, need_x):
        return correlate_multi_vjp(xp, x, w, g, options, geometry, groups, need_x)

    def correlate_multi_transpose(self, xp, x, w, plan):
        return correlate_multi_transpose(xp, x, w, plan)

    def correlate_transpose(self, xp, x, k, plan):
        y = correlate_transpose(xp, x, k, plan)
        return super().correlate_transpose(xp, x, k, plan) if y is None else y

    def fit(self, layer, x, y, lr, steps, loss, record):
        # Persisting each step's parameters keeps the graph one step deep.
        return toolkit.fit_arrays(layer, x, y, lr, steps, loss, record, persist=dask.persist)

    def to_numpy(self, a):
        return np.asarray(a.compute() if isinstance(a, da.Array) else a)

    def from_numpy(self, a, *, device=None):
        return da.from_array(a)


ADAPTER = DaskAdapter()
