"""Dask's transposed convolution: one task per output block, lazy, numpy's values.

``conv_transpose2d`` on dask runs numpy's transposed convolution block by block of the output
(``backends/dask.py``, ``correlate_multi_transpose``): each block reads the window of the input
whose scatter reaches it. The graph is a few tasks per output block (the generic composite built
thousands for a one-chunk input), nothing is computed while it is built, and the values are
numpy's, NaN and inf included.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest

import xcorr

from matrix import require_module

da = require_module("dask.array")
dask = require_module("dask")

OPTIONS = {"stride": 2, "padding": 1, "output_padding": 1}


def _forbidden(*args, **kwargs):
    raise AssertionError("a dask graph was computed while conv_transpose2d built its graph")


@pytest.mark.parametrize("chunks", [(2, 4, 8, 8), (2, 4, 4, 4)], ids=["one-chunk", "four-chunks"])
def test_conv_transpose2d_graph_is_a_few_tasks_per_output_block(chunks):
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((2, 4, 8, 8)), rng.standard_normal((4, 6, 3, 3))
    xd, wd = da.from_array(x, chunks=chunks), da.from_array(w)
    with dask.config.set(scheduler=_forbidden):
        y = xcorr.conv_transpose2d(xd, wd, **OPTIONS)
        yb = xcorr.conv_transpose2d(xd, wd, bias=da.from_array(np.ones(6)), **OPTIONS)
    blocks = int(np.prod(y.numblocks))
    inputs = int(np.prod(xd.numblocks))
    assert blocks == inputs  # about one output block per input chunk: chunked, not one array
    tasks = len(y.__dask_graph__())
    # The generic composite: 2,600 tasks for one chunk, 7,900 for four.
    assert tasks <= 8 * blocks + 4, (tasks, blocks)
    assert len(yb.__dask_graph__()) <= tasks + 4 * blocks + 2
    assert pickle.loads(pickle.dumps(y.__dask_graph__())) is not None
    ref = xcorr.conv_transpose2d(x, w, **OPTIONS)
    np.testing.assert_allclose(y.compute(scheduler="sync"), ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(yb.compute(scheduler="sync"), ref + 1, rtol=1e-12, atol=1e-12)


CASES = [
    {"stride": (2, 3), "dilation": (1, 2), "padding": ((1, 2), (0, 3)), "output_padding": (1, 2), "groups": 2},
    {"stride": 3, "dilation": 2, "padding": 2, "output_padding": 1, "groups": 1},
    {"stride": 1, "dilation": (3, 1), "padding": (4, 1), "output_padding": 0, "groups": 4},
    {"stride": (1, 2), "dilation": 1, "padding": "SAME", "groups": 2},
    {"stride": 2, "dilation": 2, "padding": (12, 9), "output_padding": (1, 0), "groups": 1},  # crops whole chunks
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(f"{k}{v}" for k, v in c.items()))
@pytest.mark.parametrize("data_format", ["channels_first", "channels_last"])
def test_conv_transpose2d_matches_numpy_on_many_chunks(case, data_format):
    rng = np.random.default_rng(1)
    groups = case["groups"]
    x, w = rng.standard_normal((3, 4, 17, 13)), rng.standard_normal((4, 6 // groups * 2, 3, 2))
    last = data_format == "channels_last"
    if last:
        x = np.ascontiguousarray(np.moveaxis(x, 1, -1))
        chunks = ((1, 2), (5, 1, 7, 4), (3, 10), (3, 1))
    else:
        chunks = ((1, 2), (3, 1), (5, 1, 7, 4), (3, 10))
    xd, wd = da.from_array(x, chunks=chunks), da.from_array(w, chunks=(2, 3, 2, 1))
    options = {**case, "data_format": data_format}
    with dask.config.set(scheduler=_forbidden):
        y = xcorr.conv_transpose2d(xd, wd, **options)
        y1 = xcorr.conv_transpose2d(xd[1], wd, **options)  # one sample without its batch axis
    ref = xcorr.conv_transpose2d(x, w, **options)
    assert y.shape == ref.shape and y.dtype == ref.dtype
    assert y.chunks[0] == (1, 2)  # the batch keeps its chunks
    np.testing.assert_allclose(y.compute(scheduler="sync"), ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(y1.compute(scheduler="sync"), ref[1], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("data_format", ["channels_first", "channels_last"])
def test_conv_transpose2d_nonfinite_values_where_numpy_has_them(data_format):
    # An inf or NaN tap meets only the inputs it multiplies (IEEE, as torch's F.conv_transpose2d):
    # NaN where +inf and -inf meet or inf meets 0, inf elsewhere it lands, finite elsewhere.
    rng = np.random.default_rng(2)
    x, w = rng.standard_normal((2, 4, 9, 8)), rng.standard_normal((4, 3, 3, 3))
    w[0, 0, 1, 1], w[3, 2, 0, 2], w[1, 1, 2, 0] = np.inf, -np.inf, np.nan
    x[0, 0, 2, 2], x[1, 2, 7, 6], x[0, 3, 4, 0] = 0.0, np.nan, np.inf
    last = data_format == "channels_last"
    if last:
        x = np.ascontiguousarray(np.moveaxis(x, 1, -1))
    chunks = (1, 3, 4, 4) if last else (1, 4, 3, 4)
    options = {
        "stride": 2,
        "dilation": (1, 2),
        "padding": (1, 2),
        "output_padding": 1,
        "groups": 2,
        "data_format": data_format,
    }
    with np.errstate(invalid="ignore", over="ignore"):
        ref = xcorr.conv_transpose2d(x, w, **options)
        got = xcorr.conv_transpose2d(da.from_array(x, chunks=chunks), da.from_array(w), **options).compute(
            scheduler="sync"
        )
    assert np.isnan(ref).any() and np.isinf(ref).any() and np.isfinite(ref).any()
    np.testing.assert_array_equal(np.isnan(got), np.isnan(ref))
    np.testing.assert_array_equal(np.isposinf(got), np.isposinf(ref))
    np.testing.assert_array_equal(np.isneginf(got), np.isneginf(ref))
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-12)


def test_conv_transpose2d_integers_wrap_as_numpy():
    rng = np.random.default_rng(3)
    x = rng.integers(-100, 100, (2, 4, 7, 6)).astype(np.int8)
    w = rng.integers(-100, 100, (4, 2, 3, 3)).astype(np.int8)
    options = {"stride": 2, "padding": 1, "groups": 2}
    ref = xcorr.conv_transpose2d(x, w, **options)
    got = xcorr.conv_transpose2d(da.from_array(x, chunks=(1, 4, 3, 3)), da.from_array(w), **options)
    assert got.dtype == ref.dtype == np.int8
    np.testing.assert_array_equal(got.compute(scheduler="sync"), ref)


# -- single-plane transposed correlations: corr2d_transpose and corr3d_transpose ------------------

SINGLE = [
    # (x shape, x chunks, k shape): one kernel; a batch of planes; a batch of kernels (broadcast)
    ((64, 64), (32, 32), (3, 3)),
    ((2, 3, 17, 13), (1, 2, 8, 6), (3, 2)),
    ((3, 17, 13), (2, 9, 13), (3, 3, 2)),
    ((17, 13), (9, 7), (2, 3, 2)),
]
SINGLE_OPTIONS = [
    {"stride": 2, "padding": 1, "output_padding": 1},
    {"stride": (2, 3), "dilation": (1, 2), "padding": ((1, 2), (0, 3)), "output_padding": (1, 2)},
    {"stride": 2, "dilation": 9, "padding": (12, 9), "output_padding": (1, 0)},  # crops all but a few taps
]


@pytest.mark.parametrize("options", SINGLE_OPTIONS, ids=["stride", "dilation", "huge-crop"])
@pytest.mark.parametrize(("shape", "chunks", "k_shape"), SINGLE, ids=["one", "planes", "kernels", "broadcast"])
def test_corr2d_transpose_is_a_few_tasks_per_block_with_numpy_values(shape, chunks, k_shape, options):
    rng = np.random.default_rng(4)
    x, k = rng.standard_normal(shape), rng.standard_normal(k_shape)
    xd = da.from_array(x, chunks=chunks)
    with dask.config.set(scheduler=_forbidden):
        y = xcorr.corr2d_transpose(xd, da.from_array(k), **options)
    ref = xcorr.corr2d_transpose(x, k, **options)
    assert y.shape == ref.shape and y.dtype == ref.dtype
    # The generic composite: 2,500 tasks for a one-chunk 64x64 plane, 34,000 for the chunked planes.
    assert len(y.__dask_graph__()) <= 12 * int(np.prod(xd.numblocks)) + 16, len(y.__dask_graph__())
    np.testing.assert_allclose(y.compute(scheduler="sync"), ref, rtol=1e-12, atol=1e-12)


def test_corr2d_transpose_nonfinite_and_integers_as_numpy():
    rng = np.random.default_rng(5)
    x, k = rng.standard_normal((2, 9, 8)), rng.standard_normal((3, 3))
    k[1, 1], k[0, 2] = np.inf, np.nan
    x[0, 2, 2], x[1, 7, 6] = 0.0, -np.inf
    options = {"stride": 2, "dilation": (1, 2), "padding": (1, 2), "output_padding": 1}
    with np.errstate(invalid="ignore", over="ignore"):
        ref = xcorr.corr2d_transpose(x, k, **options)
        got = xcorr.corr2d_transpose(da.from_array(x, chunks=(1, 4, 4)), da.from_array(k), **options).compute()
    assert np.isnan(ref).any() and np.isinf(ref).any() and np.isfinite(ref).any()
    np.testing.assert_array_equal(np.isnan(got), np.isnan(ref))
    np.testing.assert_array_equal(np.isposinf(got), np.isposinf(ref))
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-12)
    xi = rng.integers(-100, 100, (3, 7, 6)).astype(np.int8)
    ki = rng.integers(-100, 100, (3, 3)).astype(np.int8)
    got = xcorr.corr2d_transpose(da.from_array(xi, chunks=(2, 4, 3)), da.from_array(ki), stride=2)
    assert got.dtype == np.int8
    np.testing.assert_array_equal(got.compute(), xcorr.corr2d_transpose(xi, ki, stride=2))


def test_corr3d_transpose_is_a_few_tasks_per_block_with_numpy_values():
    rng = np.random.default_rng(6)
    x, k = rng.standard_normal((2, 5, 12, 11)), rng.standard_normal((2, 3, 2))
    options = {"stride": (2, 2, 1), "padding": (1, 1, 0), "output_padding": (1, 0, 0)}
    xd = da.from_array(x, chunks=(1, 5, 6, 11))
    with dask.config.set(scheduler=_forbidden):
        y = xcorr.corr3d_transpose(xd, da.from_array(k), **options)
    ref = xcorr.corr3d_transpose(x, k, **options)
    assert y.shape == ref.shape and y.dtype == ref.dtype
    # The generic composite: about 5,000 tasks per depth tap.
    assert len(y.__dask_graph__()) < 600, len(y.__dask_graph__())
    np.testing.assert_allclose(y.compute(scheduler="sync"), ref, rtol=1e-12, atol=1e-12)
