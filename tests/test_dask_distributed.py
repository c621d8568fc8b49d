"""Dask at scale: halos on irregular chunkings, a process-based cluster, graph size, training.

The in-process checks (irregular chunkings, chunks smaller than the kernel's
span, every mode and boundary with stride and dilation) compare with numpy bit
for bit in float64. The cluster checks run on one ``LocalCluster`` of two
worker processes on the loopback interface, started once for this module:
every graph travels to other processes, so nothing may rely on shared memory
or on the threaded scheduler.
"""

from __future__ import annotations

import itertools
import pickle

import numpy as np
import pytest

import xcorr

from matrix import require_module

da = require_module("dask.array")
dask = require_module("dask")

# Chunkings that split a (2, 29, 31) batch irregularly; the second has chunks of
# one row and one column, smaller than every kernel's span below.
CHUNKINGS = (
    (1, (3, 10, 2, 14), (17, 1, 13)),
    (2, (1, 1, 5, 22), (1, 2, 28)),
)


def _images(seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((2, 29, 31)), rng.standard_normal((4, 5))


def _options():
    """A spread of the option space: each mode, boundary, stride and dilation, in a few combinations."""
    for mode, boundary in itertools.product(
        ("valid", "same", "full"), ("fill", "wrap", "symm")
    ):
        if mode == "valid" and boundary != "fill":
            continue  # "valid" reads no boundary
        for stride, dilation in (((1, 1), (1, 1)), ((2, 3), (1, 2)), ((3, 1), (2, 1))):
            yield {
                "mode": mode,
                "boundary": boundary,
                "stride": stride,
                "dilation": dilation,
                "fillvalue": 0.5,
            }


@pytest.mark.parametrize("chunks", CHUNKINGS, ids=("irregular", "smaller-than-kernel"))
@pytest.mark.parametrize("convolve", [False, True], ids=("corr2d", "conv2d"))
def test_irregular_chunks_equal_numpy_bit_for_bit(chunks, convolve):
    x, k = _images()
    xd, kd = da.from_array(x, chunks=chunks), da.from_array(k)
    fn = xcorr.conv2d if convolve else xcorr.corr2d
    for options in _options():
        want = fn(x, k, method="direct", **options)
        got = fn(xd, kd, method="direct", **options)
        assert isinstance(got, da.Array)
        np.testing.assert_array_equal(
            got.compute(scheduler="sync"), want, err_msg=str(options)
        )


@pytest.mark.parametrize("chunks", CHUNKINGS, ids=("irregular", "smaller-than-kernel"))
def test_vjp_on_irregular_chunks(chunks):
    # The input gradient is bit for bit; the kernel gradient sums per-block
    # partials in another order than numpy's one pass, so it agrees to rounding.
    x, k = _images(1)
    xd, kd = da.from_array(x, chunks=chunks), da.from_array(k)
    rng = np.random.default_rng(2)
    for options in _options():
        if options["stride"] != (2, 3):
            continue
        g = rng.standard_normal(xcorr.corr2d(x, k, **options).shape)
        gx, gk = xcorr.conv2d_vjp(x, k, g, method="direct", **options)
        gd = da.from_array(g, chunks=(1, 5, 7))
        gxd, gkd = xcorr.conv2d_vjp(xd, kd, gd, method="direct", **options)
        gxd, gkd = dask.compute(gxd, gkd, scheduler="sync")
        np.testing.assert_array_equal(gxd, gx, err_msg=str(options))
        np.testing.assert_allclose(
            gkd, gk, rtol=1e-12, atol=1e-12, err_msg=str(options)
        )


@pytest.mark.parametrize("what", ["forward", "vjp"])
def test_graph_grows_linearly_with_the_chunks(what):
    x, k = np.zeros((96, 96)), np.ones((5, 5))
    options = {"mode": "same", "boundary": "symm", "stride": 2}
    counts = {}
    for n in (4, 6, 8):  # 16, 36 and 64 chunks
        xd = da.from_array(x, chunks=96 // n)
        if what == "forward":
            lazy = [xcorr.corr2d(xd, da.from_array(k), **options)]
        else:
            g = da.ones(xcorr.corr2d(x, k, **options).shape, chunks=48 // n)
            lazy = list(xcorr.corr2d_vjp(xd, da.from_array(k), g, **options))
        counts[n * n] = len(dask.optimize(*lazy)[0].__dask_graph__())
    # Linear: the same number of tasks per added chunk from 16 to 36 chunks as from 36 to 64.
    slopes = [(counts[36] - counts[16]) / 20, (counts[64] - counts[36]) / 28]
    assert 0 < slopes[1] <= 1.2 * slopes[0], counts
    assert slopes[1] >= 0.8 * slopes[0], counts


# --- on a cluster of two worker processes ---------------------------------------------


@pytest.fixture(scope="module")
def client():
    distributed = require_module("distributed")
    cluster = distributed.LocalCluster(
        n_workers=2,
        processes=True,
        threads_per_worker=1,
        host="127.0.0.1",
        dashboard_address=None,
        memory_limit="1GiB",
    )
    client = distributed.Client(cluster)
    try:
        yield client
    finally:
        client.close()
        cluster.close()


@pytest.mark.slow
def test_cluster_matches_numpy(client):
    x, k = _images(3)
    xd, kd = da.from_array(x, chunks=(1, (12, 3, 14), (20, 11))), da.from_array(k)
    rng = np.random.default_rng(4)
    cases = [
        (
            xcorr.corr2d,
            {"mode": "same", "boundary": "wrap", "stride": (2, 3), "dilation": (1, 2)},
        ),
        (
            xcorr.conv2d,
            {"mode": "full", "boundary": "symm", "stride": 1, "dilation": 2},
        ),
        (
            xcorr.corr2d,
            {"mode": "same", "boundary": "fill", "fillvalue": 2.0, "stride": 3},
        ),
    ]
    lazy, want = [], []
    for fn, options in cases:
        lazy.append(fn(xd, kd, method="direct", **options))
        want.append(fn(x, k, method="direct", **options))
        g = rng.standard_normal(want[-1].shape)
        vjp = xcorr.conv2d_vjp if fn is xcorr.conv2d else xcorr.corr2d_vjp
        lazy.extend(
            vjp(
                xd, kd, da.from_array(g, chunks=(2, 10, 10)), method="direct", **options
            )
        )
        want.extend(vjp(x, k, g, method="direct", **options))
    # The graph goes to other processes as pickles: it must be serialisable as a whole.
    assert pickle.loads(pickle.dumps(lazy[0].__dask_graph__())) is not None
    got = client.compute(lazy, sync=True)
    for i, (a, b) in enumerate(zip(got, want)):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12, err_msg=f"result {i}")
        if i % 3 != 2:  # forward and input gradient: bit for bit
            np.testing.assert_array_equal(a, b, err_msg=f"result {i}")


@pytest.mark.slow
def test_corr2d_multi_on_cluster(client):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3, 4, 19, 23))
    w = rng.standard_normal((6, 2, 3, 3))
    xd = da.from_array(x, chunks=((1, 2), (1, 3), (7, 12), 23))
    options = {
        "mode": "same",
        "boundary": "symm",
        "stride": (2, 1),
        "dilation": (1, 2),
        "groups": 2,
    }
    y = xcorr.corr2d_multi(x, w, **options)
    g = rng.standard_normal(y.shape)
    gx, gw = xcorr.corr2d_multi_vjp(x, w, g, **options)
    yd = xcorr.corr2d_multi(xd, da.from_array(w), **options)
    gxd, gwd = xcorr.corr2d_multi_vjp(
        xd, da.from_array(w), da.from_array(g, chunks=(3, 6, 5, 12)), **options
    )
    yd, gxd, gwd = client.compute([yd, gxd, gwd], sync=True)
    # Channel sums are BLAS matrix products, whose order of additions may depend on the
    # block's shape (numpy 2.0's OpenBLAS differs from numpy's whole-image product in the
    # last bit): equal to rounding, not bit for bit as single planes are.
    np.testing.assert_allclose(yd, y, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(gxd, gx, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(gwd, gw, rtol=1e-12, atol=1e-12)


@pytest.mark.slow
def test_conv2d_fit_on_cluster_keeps_each_step_small(client):
    rng = np.random.default_rng(6)
    x = rng.standard_normal((2, 3, 40, 36))
    target = xcorr.Conv2D(
        (3, 3), in_channels=3, out_channels=2, mode="same", backend="numpy", seed=1
    )
    y = np.asarray(target(x))
    xd = da.from_array(x, chunks=(1, 3, 15, 20))
    yd = da.from_array(y, chunks=(1, 2, 15, 20))
    kwargs = {"in_channels": 3, "out_channels": 2, "mode": "same", "seed": 0}
    reference, _ = xcorr.fit(
        xcorr.Conv2D((3, 3), backend="numpy", **kwargs), x, y, lr=1e-3, steps=3
    )
    layer = xcorr.Conv2D((3, 3), backend="dask", **kwargs)
    sizes = []
    for _ in range(3):
        layer, _ = xcorr.fit(layer, xd, yd, lr=1e-3, steps=1)
        sizes.append(len(layer(xd).__dask_graph__()))
        # Persisted on the workers: the parameters are computed arrays, not graphs of earlier steps.
        assert len(layer.weight.__dask_graph__()) == 1
    assert sizes[0] == sizes[1] == sizes[2], sizes
    np.testing.assert_allclose(
        layer.weight.compute(), reference.weight, rtol=1e-10, atol=1e-12
    )
    np.testing.assert_allclose(
        layer.bias.compute(), reference.bias, rtol=1e-10, atol=1e-12
    )
