"""method=: every method on every backend equals the float64 reference; what "auto" may choose.

No timings here (benchmarks/ measures speed); only results, choices and memory bounds.
"""

from __future__ import annotations

import subprocess
import sys

import array_api_compat
import numpy as np
import pytest

import xcorr
from xcorr import _cost_model
from xcorr._options import Options, plan

from matrix import CPU_BACKENDS, assert_result, require_module, tolerance
from paths import force, spy
from reference import fast_reference, random, reference, reference_multi, reference_vjp

FUNCTIONS = {"corr2d": (xcorr.corr2d, False), "conv2d": (xcorr.conv2d, True)}


def methods_of(backend):
    return ("direct", "fft", "native") if backend.adapter.native else ("direct", "fft")


@pytest.mark.parametrize("method", ["auto", "direct", "fft", "native"])
@pytest.mark.parametrize("name", FUNCTIONS)
@pytest.mark.parametrize(
    ("mode", "boundary", "stride", "dilation"),
    [
        ("valid", "fill", 1, 1),
        ("same", "fill", 1, 1),
        ("full", "wrap", 2, 1),
        ("same", "symm", (1, 2), (2, 1)),
        ("valid", "fill", 3, 2),
        ("full", "fill", 1, (1, 3)),
    ],
)
def test_every_method_matches_reference(backend, method, name, mode, boundary, stride, dilation):
    if method == "native" and not backend.adapter.native:
        pytest.skip(f"{backend.name} has no native convolution")
    f, convolve = FUNCTIONS[name]
    x, k = random((2, 13, 17)), random((4, 5), seed=1)
    options = dict(mode=mode, boundary=boundary, fillvalue=0.5, stride=stride, dilation=dilation)
    y = f(backend.asarray(x), backend.asarray(k), method=method, **options)
    assert_result(backend, y, reference(x, k, convolve=convolve, **options), "float64")


@pytest.mark.parametrize("dtype", ["float32", "complex64", "complex128"])
def test_methods_keep_dtype(backend, dtype):
    x, k = random((9, 11), dtype), random((3, 4), dtype, seed=1)
    expected = reference(x, k, mode="same", boundary="symm")
    for method in methods_of(backend):
        y = xcorr.corr2d(backend.asarray(x), backend.asarray(k), mode="same", boundary="symm", method=method)
        assert_result(backend, y, expected, dtype)


@pytest.mark.parametrize(
    ("x_shape", "k_shape"),
    [((3, 10, 12), (4, 3)), ((10, 12), (2, 4, 3)), ((2, 1, 10, 12), (3, 4, 3)), ((3, 10, 12), (3, 4, 3))],
)
def test_methods_broadcast_batches(backend, x_shape, k_shape):
    x, k = random(x_shape), random(k_shape, seed=1)
    expected = reference(x, k, mode="full", stride=2)
    for method in methods_of(backend):
        y = xcorr.corr2d(backend.asarray(x), backend.asarray(k), mode="full", stride=2, method=method)
        assert_result(backend, y, expected, "float64")


def test_large_kernel_paths(backend):
    # 17x16 = 272 taps: past jax's unrolling limit (fori_loop path), FFT for auto.
    x, k = random((40, 45), "float32"), random((17, 16), "float32", seed=1)
    expected = reference(x, k, mode="same", boundary="wrap", dilation=(1, 2))
    for method in ("auto", *methods_of(backend)):
        y = xcorr.corr2d(
            backend.asarray(x), backend.asarray(k), mode="same", boundary="wrap", dilation=(1, 2), method=method
        )
        assert_result(backend, y, expected.astype(np.float32), "float32")


def test_integers_stay_exact_with_large_kernels(backend):
    x, k = random((40, 40), "int64"), random((31, 31), "int64", seed=1)
    y = xcorr.corr2d(backend.asarray(x), backend.asarray(k), mode="same")
    assert_result(backend, y, reference(x, k, mode="same"), "int64")


def test_fft_refuses_integers(backend):
    x, k = random((6, 6), "int32"), random((2, 2), "int32")
    with pytest.raises(TypeError, match=r'method="fft" needs floating or complex inputs'):
        xcorr.corr2d(backend.asarray(x), backend.asarray(k), method="fft")


def test_native_needs_a_native_convolution(backend):
    x, k = backend.asarray(random((6, 6))), backend.asarray(random((2, 2), seed=1))
    if backend.adapter.native:
        assert_result(backend, xcorr.corr2d(x, k, method="native"), reference(random((6, 6)), random((2, 2), seed=1)), "float64")
        return
    with pytest.raises(ValueError, match=r'method="native" needs a library with a native convolution'):
        xcorr.corr2d(x, k, method="native")


@pytest.mark.parametrize("method", ["", "FFT", "scipy", None, 1])
def test_unknown_method(method):
    with pytest.raises(ValueError, match=r"method must be one of 'auto', 'direct', 'fft', 'native'"):
        xcorr.corr2d(np.ones((4, 4)), np.ones((2, 2)), method=method)


def test_native_falls_back_to_direct_for_integers(backend):
    if not backend.adapter.native:
        pytest.skip(f"{backend.name} has no native convolution")
    x, k = random((9, 8), "int32"), random((3, 2), "int32", seed=1)
    y = xcorr.conv2d(backend.asarray(x), backend.asarray(k), mode="full", method="native")
    assert_result(backend, y, reference(x, k, mode="full", convolve=True), "int32")


# -- what "auto" chooses -------------------------------------------------------------


def geometry(x_shape, k_shape, **options):
    return plan(x_shape, k_shape, Options.parse(**options))


def costs(backend, k_shape, geometry):
    backend.require()
    return xcorr.adapter_for(backend.xp).costs(k_shape, geometry)


@pytest.mark.parametrize("backend", CPU_BACKENDS, ids=str)
def test_auto_choices(backend):
    big, small = geometry((1024, 1024), (31, 31)), geometry((1024, 1024), (3, 3))
    c = costs(backend, (31, 31), big)
    for kind in ("integral", "other"):
        assert _cost_model.choose_method(c, kind, (1024, 1024), (31, 31), big) == "direct"
    assert _cost_model.choose_method(costs(backend, (3, 3), small), "real floating", (1024, 1024), (3, 3), small) == "direct"
    assert _cost_model.choose_method(c, "real floating", (1024, 1024), (31, 31), big) == "fft"
    assert _cost_model.choose_method(c, "complex floating", (1024, 1024), (31, 31), big) == "fft"


def test_auto_numpy_costs_with_numba(monkeypatch):
    # numba's direct kernel is much cheaper per tap: 16x256² 7x7 stays direct with it.
    from xcorr.backends import _numba

    numpy_adapter = xcorr.adapter_for(array_api_compat.array_namespace(np.zeros(1)))
    shapes = ((16, 256, 256), (7, 7))
    for installed, method in ((False, "fft"), (True, "direct")):
        monkeypatch.setattr(_numba, "installed", lambda installed=installed: installed)
        c = numpy_adapter.costs(shapes[1], geometry(*shapes))
        assert _cost_model.choose_method(c, "real floating", *shapes, geometry(*shapes)) == method
    big = geometry((1024, 1024), (31, 31))
    c = numpy_adapter.costs((31, 31), big)
    assert _cost_model.choose_method(c, "real floating", (1024, 1024), (31, 31), big) == "fft"


def test_auto_skips_fft_for_nonfinite_numpy_input():
    x, k = random((64, 64)), random((31, 31), seed=1)
    g = geometry(x.shape, k.shape)
    c = xcorr.adapter_for(array_api_compat.array_namespace(x)).costs(k.shape, g)
    assert _cost_model.choose_method(c, "real floating", x.shape, k.shape, g) == "fft"
    x[5, 7] = np.nan
    y = xcorr.corr2d(x, k)
    # Direct keeps the NaN local: only the windows that read x[5, 7] are NaN.
    assert 0 < np.isnan(y).sum() < y.size
    np.testing.assert_allclose(y, reference(x, k))


def test_auto_and_direct_match_reference_where_auto_may_take_fft(backend):
    x, k = random((70, 64), "float32"), random((25, 25), "float32", seed=1)
    g = geometry(x.shape, k.shape, mode="same")
    c = xcorr.adapter_for(array_api_compat.array_namespace(x)).costs(k.shape, g)
    assert _cost_model.choose_method(c, "real floating", x.shape, k.shape, g) == "fft"
    expected = fast_reference(x, k, mode="same", boundary="symm")
    for method in ("auto", "direct"):
        y = xcorr.corr2d(backend.asarray(x), backend.asarray(k), mode="same", boundary="symm", method=method)
        np.testing.assert_allclose(backend.to_numpy(y), expected, rtol=1e-4, atol=1e-4)


def test_good_sizes():
    smooth = [n for n in range(1, 400) if _cost_model.good_size(n) == n]
    assert smooth[:12] == [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 14]
    for n in range(1, 400):
        m = _cost_model.good_size(n)
        assert (m >= n and m in smooth) or m >= 400
    assert _cost_model.good_size(4097) == 4116  # 2^2 * 3 * 7^3


# -- memory ---------------------------------------------------------------------------


def test_numpy_direct_extra_memory_is_a_few_outputs():
    import tracemalloc
    x = random((1024, 1024), "float32")
    k = random((3, 3), "float32", seed=1)
    xcorr.corr2d(x[:256, :256], k, method="direct")  # warm up imports, caches, numba's kernel
    tracemalloc.start()
    try:
        y = xcorr.corr2d(x, k, method="direct")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # The output plus band-sized temporaries, far from h*w = 9 shifted copies.
    assert peak <= 1.5 * y.nbytes, (peak, y.nbytes)


def test_numpy_same_mode_extra_memory_is_bounded():
    import tracemalloc
    x = random((512, 512), "float32")
    k = random((7, 7), "float32", seed=1)
    tracemalloc.start()
    try:
        y = xcorr.corr2d(x, k, mode="same", boundary="symm", method="direct")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # The output and one extended copy of the input.
    assert peak <= 3 * y.nbytes, (peak, y.nbytes)


@pytest.mark.parametrize("boundary", ["symm", "reflect", "wrap", "edge"])
def test_numpy_vjp_and_jvp_extra_memory_is_about_one_output(boundary):
    # Issue 25: corr2d_vjp with "symm" took 5 outputs beyond its gradients (the fold built one
    # full-size array per run of the extension), the others 4; the fold now joins the border's
    # sums with the middle once: 1.01. corr2d_jvp held both terms (1.0-1.25); the second is now
    # added band by band onto the first: 0.38. On the pool's threads, three times: a queued work
    # item of a finished call held its arrays until a pool thread ran it (2.01 now and then).
    import tracemalloc

    x, k = random((768, 768), "float64"), random((3, 3), "float64", seed=1)
    dx, dk = random((768, 768), "float64", seed=2), random((3, 3), "float64", seed=3)
    options = dict(mode="same", boundary=boundary, method="direct")
    g = np.ones_like(x)
    calls = {
        "vjp": (1.5, lambda: xcorr.corr2d_vjp(x, k, g, **options)),
        "jvp": (0.9, lambda: (xcorr.corr2d_jvp(x, k, dx, dk, **options),)),
    }
    for name, (bound, call) in calls.items():
        call()  # warm up imports, caches, numba's kernels
        for _ in range(3):
            tracemalloc.start()
            try:
                results = call()
                _, peak = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
            extra = (peak - sum(r.nbytes for r in results)) / g.nbytes
            assert extra <= bound, (name, extra, "outputs")


@pytest.mark.parametrize("numba", [True, False], ids=["numba", "numba-absent"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("boundary", ["reflect", "wrap", "symm", "edge"])
def test_numpy_extension_needs_no_copy_of_the_image(monkeypatch, boundary, dtype, numba):
    # Issue 25: "same" with reflect/wrap took the output plus an extended copy of the image (2.0
    # outputs at the peak); band by band, the extension is a sixteenth of it at a time (1.13).
    import tracemalloc

    x, k = random((1024, 1024), dtype), random((3, 3), dtype, seed=1)
    force(monkeypatch, "numpy", numba=numba)
    xcorr.corr2d(x, k, mode="same", boundary=boundary)  # warm up imports, caches, numba's kernel
    tracemalloc.start()
    try:
        y = xcorr.corr2d(x, k, mode="same", boundary=boundary)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak <= 1.5 * y.nbytes, (peak / y.nbytes, "outputs")
    force(monkeypatch, "numpy", extension_band_bytes=1 << 40)  # the whole image extended at once
    np.testing.assert_array_equal(y, xcorr.corr2d(x, k, mode="same", boundary=boundary))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("boundary", ["fill", "reflect"])
def test_numpy_jvp_adds_its_terms_in_place(boundary, dtype):
    # Issue 25: corr2d_jvp held both terms and their sum (3 outputs); the sum now goes onto the first.
    import tracemalloc

    x, k = random((1024, 1024), dtype), random((3, 3), dtype, seed=1)
    dx, dk = random((1024, 1024), dtype, seed=2), random((3, 3), dtype, seed=3)
    options = dict(mode="same", boundary=boundary)
    xcorr.corr2d_jvp(x, k, dx, dk, **options)  # warm up
    tracemalloc.start()
    try:
        t = xcorr.corr2d_jvp(x, k, dx, dk, **options)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak <= 2.5 * t.nbytes, (peak / t.nbytes, "outputs")
    expected = xcorr.corr2d(dx, k, **options) + xcorr.corr2d(x, dk, **options)
    np.testing.assert_array_equal(t, expected)
    assert np.array_equal(dx, random((1024, 1024), dtype, seed=2))  # the inputs are untouched


def test_dask_results_stay_lazy_with_known_chunks():
    da = require_module("dask.array")
    import dask

    def refuse(*args, **kwargs):
        raise AssertionError("xcorr computed a dask graph behind the user's back")

    x = da.from_array(random((3, 64, 80), "float32"), chunks=(2, 16, 32))
    k = da.from_array(random((9, 9), "float32", seed=1))
    with dask.config.set(scheduler=refuse):
        results = {m: xcorr.corr2d(x, k, mode="same", stride=2, method=m) for m in ("auto", "direct", "fft")}
    for y in results.values():
        assert isinstance(y, da.Array)
        assert not any(np.isnan(c) for chunks in y.chunks for c in chunks)
        assert y.chunks[0] == (2, 1)
        assert len(y.chunks[-2]) > 1
        expected = reference(random((3, 64, 80), "float32"), random((9, 9), "float32", seed=1), mode="same", stride=2)
        np.testing.assert_allclose(y.compute(), expected, rtol=1e-4, atol=1e-4)


def test_jax_methods_trace_under_jit():
    jax = require_module("jax")
    x, k = random((30, 31)), random((16, 15), seed=1)
    expected = reference(x, k, mode="same", boundary="symm", stride=2)
    for method in ("auto", "direct", "fft", "native"):
        f = jax.jit(lambda x, k, m=method: xcorr.corr2d(x, k, mode="same", boundary="symm", stride=2, method=m))
        np.testing.assert_allclose(np.asarray(f(jax.numpy.asarray(x), jax.numpy.asarray(k))), expected, atol=1e-9)


# -- layers -----------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["auto", "direct", "fft", "native"])
def test_corr2d_multi_methods(backend, method):
    if method == "native" and not backend.adapter.native:
        pytest.skip(f"{backend.name} has no native convolution")
    x, w = random((2, 4, 9, 10)), random((6, 2, 3, 2), seed=1)
    options = dict(mode="same", boundary="symm", stride=(1, 2), groups=2)
    y = xcorr.corr2d_multi(backend.asarray(x), backend.asarray(w), method=method, **options)
    assert_result(backend, y, reference_multi(x, w, **options), "float64")
    # One image without the batch axis, dilated, no groups.
    x3, w3 = random((3, 11, 9), seed=2), random((2, 3, 2, 3), seed=3)
    y = xcorr.corr2d_multi(backend.asarray(x3), backend.asarray(w3), method=method, mode="full", dilation=(2, 1))
    assert_result(backend, y, reference_multi(x3, w3, mode="full", dilation=(2, 1)), "float64")


@pytest.fixture
def small_overlap_blocks(monkeypatch):
    """Blocks shrunk so that a small image takes the numpy adapter's tiled FFT paths."""
    from xcorr.backends import numpy as numpy_backend

    # The backward: one tile row per band.
    force(monkeypatch, "numpy", overlap_min_block=16, overlap_span_factor=2, overlap_min_blocks=3, overlap_band_points=1)
    return numpy_backend


def test_numpy_overlap_save_matches_direct(small_overlap_blocks):
    x, k = random((2, 150, 140), "float32"), random((7, 9), "float32", seed=1)
    options = dict(mode="same", boundary="symm", stride=(2, 3), dilation=(1, 2))
    y = xcorr.corr2d(x, k, method="fft", **options)
    expected = reference(x, k, **options)
    np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-4)
    assert y.dtype == np.float32


@pytest.mark.parametrize("tiled", [True, False])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize(
    ("x_shape", "k_shape", "options", "convolve"),
    [
        ((61, 57), (5, 6), dict(), False),
        ((2, 58, 60), (4, 5), dict(mode="same", fillvalue=0.5), True),
        ((2, 1, 50, 49), (3, 3, 4), dict(mode="full", dilation=(2, 1)), False),
        ((2, 50, 49), (2, 3, 4), dict(mode="same"), False),
    ],
)
def test_numpy_fft_backward(small_overlap_blocks, monkeypatch, tiled, dtype, x_shape, k_shape, options, convolve):
    # Both gradients from one spectrum of g (image-sized, or overlap-add tiles).
    numpy_backend = small_overlap_blocks
    if not tiled:
        force(monkeypatch, "numpy", overlap_min_blocks=10**6)
    taken = spy(monkeypatch, numpy_backend, "fused_vjp", declined=None)
    from xcorr.backends import _numpy_fft

    tiles = spy(monkeypatch, _numpy_fft, "_overlap_vjp")
    x, k = random(x_shape, dtype), random(k_shape, dtype, seed=1)
    f, vjp = (xcorr.conv2d, xcorr.conv2d_vjp) if convolve else (xcorr.corr2d, xcorr.corr2d_vjp)
    g = random(f(x, k, **options).shape, dtype, seed=2)
    gx, gk = vjp(x, k, g, method="fft", **options)
    expected_gx, expected_gk = reference_vjp(x, k, g, convolve=convolve, **options)
    assert taken == [True]
    assert bool(tiles) == (tiled and len(k_shape) == 2)
    for got, expected in ((gx, expected_gx), (gk, expected_gk)):
        assert got.dtype == np.dtype(dtype) and got.shape == expected.shape
        scale = np.abs(expected).max()  # an FFT's rounding follows the largest values
        np.testing.assert_allclose(got, expected, rtol=0, atol=scale * (2e-5 if dtype == "float32" else 1e-12))


def test_numpy_fft_backward_falls_back_where_it_does_not_apply(monkeypatch):
    # Strides, wrap/symm extensions, integers, complex: the core VJP. A NaN
    # under method="auto": the core VJP too, which keeps it local.
    from xcorr.backends import numpy as numpy_backend

    x, k = random((40, 42)), random((5, 5), seed=1)
    options = Options.parse(method="fft", mode="same", boundary="wrap")
    geometry = plan(x.shape, k.shape, options)
    g = random(geometry.out_shape, seed=2)
    assert numpy_backend.fused_vjp(np, x, k, g, options, geometry, True, True) is None
    for opts, xs in [(dict(stride=2), x), (dict(), x.astype("int64")), (dict(), x.astype("complex128"))]:
        options = Options.parse(method="fft", **opts) if xs.dtype.kind != "i" else Options.parse(**opts)
        geometry = plan(xs.shape, k.shape, options)
        g = random(geometry.out_shape, seed=2)
        assert numpy_backend.fused_vjp(np, xs, k, g, options, geometry, True, True) is None
    x, k = random((300, 300)), random((31, 31), seed=1)
    options = Options()
    geometry = plan(x.shape, k.shape, options)
    c = xcorr.adapter_for(array_api_compat.array_namespace(x)).costs(tuple(k.shape), geometry)
    assert _cost_model.choose_method(c, "real floating", x.shape, k.shape, geometry) == "fft"
    g = random(geometry.out_shape, seed=2)
    assert numpy_backend.fused_vjp(np, x, k, g, options, geometry, True, True) is not None
    g[100, 100] = np.nan
    assert numpy_backend.fused_vjp(np, x, k, g, options, geometry, True, True) is None
    gx = xcorr.corr2d_vjp(x, k, g)[0]
    assert np.isnan(gx[100:131, 100:131]).all() and np.isfinite(gx[:100]).all()


def test_conv2d_layer_takes_a_method():
    layer = xcorr.Conv2D(3, in_channels=2, out_channels=3, backend="numpy", dtype="float64", method="fft")
    assert "method='fft'" in repr(layer.spec.describe())
    x = random((1, 2, 8, 9))
    direct = xcorr.Conv2D(3, in_channels=2, out_channels=3, backend="numpy", dtype="float64", method="direct")
    np.testing.assert_allclose(layer(x), direct(x), atol=1e-12)
    with pytest.raises(ValueError, match=r"method must be one of"):
        xcorr.Conv2D(3, method="winograd")


# -- the backward pass ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("x_shape", "k_shape", "options"),
    [
        ((2, 30, 28), (9, 8), dict(mode="same", boundary="symm", stride=(2, 3), dilation=(1, 2))),
        ((30, 28), (2, 9, 8), dict(mode="full", boundary="wrap", stride=2)),
        ((2, 1, 30, 28), (3, 9, 8), dict(mode="valid", dilation=2, convolve=True)),
    ],
)
def test_vjp_kernel_gradient_through_fft_and_direct_match_reference(backend, x_shape, k_shape, options):
    from xcorr import _vjp

    x, k = random(x_shape), random(k_shape, seed=1)
    geometry = plan(x.shape, k.shape, Options.parse(**options))
    g = random(geometry.out_shape, seed=2)
    xb, kb, gb = backend.asarray(x), backend.asarray(k), backend.asarray(g)
    expected = reference_vjp(x, k, g, **options)
    for method in ("direct", "fft"):
        got = _vjp.vjp(backend.xp, xb, kb, gb, Options.parse(method=method, **options), geometry)
        for a, b in zip(got, expected):
            np.testing.assert_allclose(backend.to_numpy(a), b, rtol=1e-9, atol=1e-9)


def test_torch_large_direct_forward_and_backward():
    # Large enough for the worker-thread bands of the torch direct path.
    torch = require_module("torch")
    F = torch.nn.functional
    x = torch.randn(2, 700, 400, dtype=torch.float64, requires_grad=True)
    k = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    y = xcorr.corr2d(x, k, method="direct")
    expected = F.conv2d(x.reshape(2, 1, 700, 400), k.reshape(1, 1, 3, 4)).reshape(y.shape)
    torch.testing.assert_close(y, expected)
    g = torch.randn_like(y)
    gx, gk = torch.autograd.grad(y, (x, k), g)
    ex, ek = torch.autograd.grad(expected, (x, k), g)
    torch.testing.assert_close(gx, ex)
    torch.testing.assert_close(gk, ek)
    with torch.no_grad():
        torch.testing.assert_close(xcorr.corr2d(x, k, stride=(2, 3), method="direct"), expected[..., ::2, ::3])


@pytest.mark.parametrize("pooled", [1 << 10, 1 << 40], ids=["threaded-bands", "single-band"])
def test_torch_kernel_gradient_of_a_large_image(monkeypatch, pooled):
    # A kernel gradient: 3x3 outputs of many taps each, through few_outputs
    # (a column stride: the bmm kernel gradient does not apply).
    torch = require_module("torch")
    from xcorr.backends.torch import ops as torch_ops

    force(monkeypatch, "torch", pooled_kernel=pooled)
    few = spy(monkeypatch, torch_ops, "few_outputs")
    x, k = random((2, 302, 402)), random((3, 3), seed=1)
    xt, kt = torch.asarray(x).requires_grad_(), torch.asarray(k).requires_grad_()
    y = xcorr.corr2d(xt, kt, stride=(1, 2))
    g = random(tuple(y.shape), seed=2)
    (gk,) = torch.autograd.grad(y, (kt,), torch.asarray(g))
    np.testing.assert_allclose(gk.numpy(), reference_vjp(x, k, g, stride=(1, 2))[1], rtol=1e-9, atol=1e-8)
    assert few == [True]


# The numpy adapter's optional numba kernel (backends/_numba.py): every case both through it
# (threshold lowered so that small arrays take it) and with it disabled, against the reference.
@pytest.fixture(params=["numba", "numpy"])
def numba_path(request, monkeypatch):
    from xcorr.backends import _numba

    if request.param == "numba":
        require_module("numba")
        force(monkeypatch, "numpy", numba_min_outputs=0)
    else:
        force(monkeypatch, "numpy", numba=False)
    return request.param, spy(monkeypatch, _numba, "direct", declined=None)


def check_numpy_path(numba_path, y, expected, dtype, *, numba_applies=True):
    path, used = numba_path
    applies = path == "numba" and numba_applies
    # numba's kernel ran exactly where it applies; elsewhere it declined, or a
    # call small enough for the prepared numpy path never asked it.
    assert all(u == applies for u in used) and (used or not applies)
    assert y.dtype == np.dtype(dtype) and y.shape == expected.shape
    if np.dtype(dtype).kind in "iu":
        np.testing.assert_array_equal(y, expected.astype(dtype))
    else:
        from matrix import tolerance

        np.testing.assert_allclose(y, expected, **tolerance(np.dtype(dtype).name))


@pytest.mark.parametrize("dtype", ["float32", "float64", "int32", "int64", "complex128"])
@pytest.mark.parametrize(
    ("mode", "boundary", "stride", "dilation", "convolve"),
    [
        ("valid", "fill", 1, 1, False),
        ("same", "fill", 1, 1, True),
        ("full", "wrap", 2, 1, False),
        ("same", "symm", (1, 2), (2, 1), True),
        ("valid", "fill", 3, 2, False),
        ("full", "fill", 1, (1, 3), True),
    ],
)
def test_numpy_numba_path(numba_path, dtype, mode, boundary, stride, dilation, convolve):
    x, k = random((2, 13, 17), dtype), random((4, 5), dtype, seed=1)
    fill = 3 if dtype.startswith("int") else 0.5
    options = dict(mode=mode, boundary=boundary, fillvalue=fill, stride=stride, dilation=dilation)
    f = xcorr.conv2d if convolve else xcorr.corr2d
    y = f(x, k, method="direct", **options)
    check_numpy_path(numba_path, y, reference(x, k, convolve=convolve, **options), dtype)


@pytest.mark.parametrize("k_shape", [(1, 1), (1, 2), (3, 3), (5, 5), (2, 7), (9, 4)])
def test_numpy_numba_path_kernel_sizes_batches_and_threads(numba_path, monkeypatch, k_shape):
    # Every remainder of the four-taps-per-pass grouping, a 2-level batch, the threaded split; a
    # 3x3 or 5x5 kernel's pairs of rows, of odd-length planes and chunks, beside fill rows ("full").
    force(monkeypatch, "numpy", numba_threaded_work=0)
    x, k = random((2, 3, 31, 29), "int64"), random(k_shape, "int64", seed=1)
    for options in (dict(), dict(mode="same", stride=(2, 3), dilation=2), dict(mode="full", fillvalue=2)):
        y = xcorr.corr2d(x, k, **options)
        check_numpy_path(numba_path, y, reference(x, k, **options), "int64")


def test_numpy_numba_path_inputs(numba_path):
    base, k = random((40, 36)), random((3, 4), seed=1)
    views = {
        "strided": base[::2, 1::2],
        "transposed": base.T,
        "fortran": np.asfortranarray(base),
        "negative strides": base[::-1, ::-1],
        "broadcast batch": np.broadcast_to(base, (3, 40, 36)),
    }
    for x in views.values():
        y = xcorr.corr2d(x, k, mode="same", boundary="wrap")
        check_numpy_path(numba_path, y, reference(x, k, mode="same", boundary="wrap"), "float64")
    # int32 image with a float32 kernel: promoted (array-API rules) to float32 first.
    x, k = random((20, 22), "int32"), random((3, 3), "float32")
    check_numpy_path(numba_path, xcorr.corr2d(x, k), reference(x, k), "float32")


@pytest.mark.parametrize(
    ("dtype", "applies"),
    # big-endian float64 is cast to native float64 first and float16 computed in float32
    # (xcorr._prepared.Widened); the others stay on the numpy path
    [(">f8", True), ("float16", True), ("int16", False), ("uint8", False), ("int8", False)],
)
def test_numpy_numba_path_other_dtypes(numba_path, dtype, applies):
    x = np.random.default_rng(0).integers(0, 5, size=(15, 14)).astype(dtype)
    k = np.random.default_rng(1).integers(0, 3, size=(3, 2)).astype(dtype)
    y = xcorr.corr2d(x, k, method="direct")
    expected = reference(x.astype("float64"), k.astype("float64"))
    check_numpy_path(numba_path, y, expected, y.dtype, numba_applies=applies)


def test_numpy_numba_path_batched_kernels_fall_back(numba_path):
    x, k = random((3, 12, 14)), random((3, 2, 3), seed=1)
    y = xcorr.corr2d(x, k, mode="full")
    check_numpy_path(numba_path, y, reference(x, k, mode="full"), "float64", numba_applies=False)


@pytest.mark.parametrize("dtype", ["float32", "float64", "complex128", "int64"])
@pytest.mark.parametrize(
    ("mode", "boundary", "stride", "dilation", "convolve"),
    [
        ("valid", "fill", 1, 1, False),
        ("same", "fill", 1, 1, True),
        ("full", "fill", (2, 1), (1, 3), False),
        ("same", "fill", (1, 3), 2, False),
        ("full", "wrap", 2, 1, True),
        ("same", "symm", (1, 2), (2, 1), False),
    ],
)
def test_numpy_numba_backward(numba_path, monkeypatch, dtype, mode, boundary, stride, dilation, convolve):
    # Real floats with stride 1 and a fill: both gradients in one pass of
    # numba's kernels over chunks of rows (_numba.vjp). Otherwise the input
    # gradient is a "full" correlation (the numba kernel reading the fill
    # extension virtually) and the kernel gradient one fused numba pass.
    from xcorr.backends import _numba

    together = spy(monkeypatch, _numba, "vjp", declined=None)
    fused = spy(monkeypatch, _numba, "kernel_gradient", declined=None)
    x, k = random((2, 13, 17), dtype), random((4, 5), dtype, seed=1)
    fill = 3 if dtype == "int64" else 0.5
    options = dict(mode=mode, boundary=boundary, fillvalue=fill, stride=stride, dilation=dilation)
    f, vjp = (xcorr.conv2d, xcorr.conv2d_vjp) if convolve else (xcorr.corr2d, xcorr.corr2d_vjp)
    g = random(f(x, k, **options).shape, dtype, seed=2)
    path, used = numba_path
    used.clear()  # the forward above
    gx, gk = vjp(x, k, g, method="direct", **options)
    expected_gx, expected_gk = reference_vjp(x, k, g, convolve=convolve, **options)
    one_pass = path == "numba" and dtype in ("float32", "float64") and stride == 1
    if one_pass:
        assert not used  # no separate correlation for the input gradient
        assert gx.dtype == np.dtype(dtype) and gx.shape == x.shape
        np.testing.assert_allclose(gx, expected_gx, **tolerance(dtype))
    else:
        check_numpy_path(numba_path, gx, expected_gx, dtype)
    assert gk.dtype == np.dtype(dtype) and gk.shape == k.shape
    # One sum over 2 * 13 * 17 products per tap: float32 rounds at about 1e-6 of the largest.
    np.testing.assert_allclose(gk, expected_gk, **tolerance(dtype))
    assert any(together) == one_pass
    assert any(fused) == (path == "numba" and dtype != "int64" and not one_pass)


def test_numpy_numba_kernel_gradient_threads_batches_and_nan(numba_path, monkeypatch):
    # The threaded split sums per-chunk partials in chunk order: the same
    # result every time. A NaN in g reaches every tap; an inf in x only
    # the taps whose windows meet it (as the numpy path).
    force(monkeypatch, "numpy", numba_threaded_work=0)
    x, k = random((2, 3, 61, 57)), random((3, 4), seed=1)
    g = random(xcorr.corr2d(x, k, mode="same").shape, seed=2)
    gx, gk = xcorr.corr2d_vjp(x, k, g, mode="same")  # one pass over chunks of rows, on two threads
    np.testing.assert_allclose(gk, reference_vjp(x, k, g, mode="same")[1], rtol=1e-12)
    np.testing.assert_allclose(gx, reference_vjp(x, k, g, mode="same")[0], rtol=1e-12, atol=1e-12)
    assert all(np.array_equal(gk, xcorr.corr2d_vjp(x, k, g, mode="same")[1]) for _ in range(3))
    x[1, 2, 0, 0] = np.inf  # read by tap (0, 0) only, in valid mode
    gk = xcorr.corr2d_vjp(x, k, random(xcorr.corr2d(x, k).shape, seed=3))[1]
    assert np.isinf(gk[0, 0]) and np.isfinite(gk[1:, :]).all() and np.isfinite(gk[:, 1:]).all()
    g[0, 1, 5, 5] = np.nan
    assert np.isnan(xcorr.corr2d_vjp(x, k, g, mode="same")[1]).all()


def test_numpy_without_numba(monkeypatch):
    # numba not installed: the numpy path, unchanged.
    from xcorr.backends import _numba

    monkeypatch.setattr(_numba, "_kernels", lambda: None)
    force(monkeypatch, "numpy", numba_min_outputs=0)
    x, k = random((2, 20, 24)), random((3, 3), seed=1)
    np.testing.assert_allclose(xcorr.corr2d(x, k, stride=2), reference(x, k, stride=2), rtol=1e-12, atol=1e-12)


BROKEN_NUMBA = """
import importlib.abc, importlib.machinery, sys, warnings


class BrokenNumba(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    # numba found, but failing on import as it does with a numpy it does not support.
    def find_spec(self, name, path=None, target=None):
        if name == "numba" or name.startswith("numba."):
            return importlib.machinery.ModuleSpec(name, self, is_package=True)
        return None

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        raise ImportError("Numba needs NumPy 2.3 or less; got NumPy 2.4.")


sys.meta_path.insert(0, BrokenNumba())

import numpy as np
import scipy.signal
import xcorr

rng = np.random.default_rng(0)
x, k = rng.standard_normal((2, 150, 160)), rng.standard_normal((5, 4))
g = rng.standard_normal((2, 146, 157))
forward = np.stack([scipy.signal.correlate2d(p, k, mode="valid") for p in x])
gx_ref = np.stack([scipy.signal.convolve2d(q, k, mode="full") for q in g])
gk_ref = sum(scipy.signal.correlate2d(p, q, mode="valid") for p, q in zip(x, g))
close = dict(rtol=1e-10, atol=1e-10)
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    for method in ("direct", "auto"):  # 45,000 outputs: numba's kernels where numba imports
        np.testing.assert_allclose(xcorr.corr2d(x, k, method=method), forward, **close)
        np.testing.assert_allclose(xcorr.corr2d(x.astype(np.float32), k.astype(np.float32), method=method), forward, rtol=1e-4, atol=1e-4)
        gx, gk = xcorr.corr2d_vjp(x, k, g, method=method)
        np.testing.assert_allclose(gx, gx_ref, **close)
        np.testing.assert_allclose(gk, gk_ref, **close)
        gx, gk = xcorr.corr2d_vjp(x, k[None], g, method=method)  # the kernel gradient per plane
        np.testing.assert_allclose(gk[0], gk_ref, **close)
    import dask.array as da

    y = xcorr.corr2d(da.from_array(x, chunks=(1, 150, 80)), da.asarray(k), method="direct").compute()
    np.testing.assert_allclose(y, forward, **close)
    import jax

    jax.config.update("jax_enable_x64", True)
    np.testing.assert_allclose(np.asarray(xcorr.corr2d(jax.numpy.asarray(x), jax.numpy.asarray(k))), forward, **close)
messages = [str(w.message) for w in caught if "numba" in str(w.message)]
assert len(messages) == 1 and "fails to import (Numba needs NumPy 2.3" in messages[0], messages
assert "numba" not in sys.modules
print("ok")
"""


def test_numpy_with_a_numba_that_fails_to_import_falls_back():
    """numba installed but raising ImportError on import (a numpy it does not support): large numpy,
    dask and jax calls take the numpy/array-API code, with one warning, and answer as scipy.signal does."""
    require_module("scipy")
    require_module("dask.array")
    require_module("jax")
    done = subprocess.run([sys.executable, "-c", BROKEN_NUMBA], capture_output=True, text=True, check=False, timeout=600)
    assert done.returncode == 0 and done.stdout.strip() == "ok", f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"


def test_huge_page_advice_is_only_a_hint(monkeypatch):
    # backends/_hugepages.py asks the kernel for huge pages for large fresh
    # outputs: whole pages inside the buffer only, never an error, and the
    # torch outputs it is given for hold the same numbers.
    from xcorr.backends import _hugepages

    buffer = np.zeros(3 * 4096 + 100, dtype=np.uint8)
    address = buffer.ctypes.data + 7  # not page-aligned
    monkeypatch.setattr(_hugepages, "MIN_BYTES", 0)
    monkeypatch.setattr(_hugepages, "enabled", lambda: True)
    _hugepages.advise(address, 3 * 4096)
    _hugepages.advise(address, 10)  # less than a page: nothing to advise
    assert not buffer.any()
    torch = require_module("torch")
    x, k = random((70, 90), "float32"), random((3, 3), "float32", seed=1)
    np.testing.assert_allclose(xcorr.corr2d(torch.from_numpy(x), torch.from_numpy(k)).numpy(), reference(x, k), rtol=1e-5, atol=1e-5)
