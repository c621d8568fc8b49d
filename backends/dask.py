"""Dask adapter: blockwise correlation, each block through the numpy fast path.

Imported lazily by the adapter registry (``xcorr._adapter``) the first time a dask array reaches
xcorr. Nothing is computed here: the result is a lazy dask array with known
chunks, one output block per input block (divided by the stride). Each output
block reads one overlapping window of the boundary-extended input (its rows
and columns plus the dilated kernel's span minus one), so images larger than
memory stay chunked, and each block runs the numpy direct or FFT path that
``method`` names ("auto" is resolved once, for the whole image).
"""

from __future__ import annotations

from dataclasses import dataclass

import dask
import dask.array as da
import numpy as np

from .. import _fft, _generic
from .._adapter import Adapter, Costs, Tuning
from .._options import Options


def correlate(xp, x, k, options, geometry):
    """Validated correlation of dask arrays (``DaskAdapter.correlate``)."""
    if not isinstance(x, da.Array):
        x = da.from_array(np.asarray(x))
    if not isinstance(k, da.Array):
        k = da.from_array(np.asarray(k))
    x, k = _generic.prepare(xp, x, k, options)
    compacted = _generic.compact(xp, x, geometry, options)
    if compacted is not None:
        # A dilation wider than the output: the taps' windows end to end (a few
        # blocks, not a graph over the whole dilated span), every window inside.
        x, geometry = compacted
    xe = _fft.extend(xp, x, geometry, options)
    rows, cols = geometry.rows, geometry.cols
    batch = geometry.batch
    # The convolution flip is already in k; blocks are plain valid correlations.
    block_options = Options(stride=(rows.step, cols.step), dilation=(rows.dilation, cols.dilation), method=options.method)
    kb = da.broadcast_to(k, (*batch, *k.shape[-2:])) if tuple(k.shape[:-2]) != batch else k
    xb = da.broadcast_to(xe, (*batch, *xe.shape[-2:])) if tuple(xe.shape[:-2]) != batch else xe
    batch_chunks = xb.chunks[:-2]
    kb = kb.rechunk((*batch_chunks, -1, -1))
    row_blocks = _blocks(rows.count, x.chunks[-2], rows.step)
    col_blocks = _blocks(cols.count, x.chunks[-1], cols.step)
    grid = []
    for r0, r1 in row_blocks:
        line = []
        for c0, c1 in col_blocks:
            window = xb[
                ...,
                r0 * rows.step : (r1 - 1) * rows.step + rows.span,
                c0 * cols.step : (c1 - 1) * cols.step + cols.span,
            ].rechunk((*batch_chunks, -1, -1))
            line.append(
                da.map_blocks(
                    _block,
                    window,
                    kb,
                    options=block_options,
                    dtype=x.dtype,
                    chunks=(*batch_chunks, (r1 - r0,), (c1 - c0,)),
                    meta=np.empty((0,) * len(geometry.out_shape), dtype=x.dtype),
                )
            )
        grid.append(line)
    return da.block(grid)


def _blocks(count: int, input_chunks, step: int):
    """Output ranges [r0, r1): about one input chunk (over the stride) each."""
    size = max(1, max(input_chunks) // step)
    return [(r0, min(count, r0 + size)) for r0 in range(0, count, size)]


def _block(x, k, *, options):
    from .._correlate import _correlate

    return _correlate(np.asarray(x), np.asarray(k), options)


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

    def correlate(self, xp, x, k, options, geometry):
        return correlate(xp, x, k, options, geometry)

    def fit(self, layer, x, y, lr, steps, loss, record):
        from .._fit import fit_arrays

        # Persisting each step's parameters keeps the graph one step deep.
        return fit_arrays(layer, x, y, lr, steps, loss, record, persist=dask.persist)

    def to_numpy(self, a):
        return np.asarray(a.compute() if isinstance(a, da.Array) else a)

    def from_numpy(self, a, *, device=None):
        return da.from_array(a)


ADAPTER = DaskAdapter()
