"""Every size-, dtype- and batch-dependent fast path against an oracle that shares no code with it.

The oracles: ``fast_reference`` and ``reference_vjp`` (tests/reference.py:
np.pad and a shift-and-add over the taps in float64, the VJP as its
transpose; tests/test_reference.py ties them to the double loop and to
finite differences), scipy, or the framework's autodiff of a plain
framework implementation. Each test asserts which path ran (tests/paths.py),
so that a change of threshold cannot move it off the path it covers.
Thresholds are lowered (``force``) to reach a path with small arrays; one
test per path runs at the size where the path runs by default.
"""

from __future__ import annotations

import numpy as np
import pytest
from array_api_compat import array_namespace
from hypothesis import given
from hypothesis import strategies as st

import xcorr
from xcorr import _fft, toolkit
from xcorr.backends import _numba, _numpy_fft
from xcorr.backends import numpy as numpy_backend

from matrix import DTYPE_NAMES, backends_where, require_module, tolerance
from paths import count_calls, force, spy
from reference import fast_reference, random, reference_multi, reference_multi_vjp, reference_vjp

# Option sets: every mode and boundary, strides, dilations, convolution, a fill value.
OPTIONS = {
    "valid": dict(),
    "same-fill-conv": dict(mode="same", fillvalue=0.5, convolve=True),
    "full-wrap-strided": dict(mode="full", boundary="wrap", stride=2),
    "same-symm-dilated-conv": dict(mode="same", boundary="symm", stride=(1, 2), dilation=(2, 1), convolve=True),
    "valid-strided-dilated": dict(stride=3, dilation=2),
    "full-fill-dilated": dict(mode="full", fillvalue=-1.0, dilation=(1, 3)),
    # unequal strides where windows leave x into the fill: each axis keeps its own stride
    "same-fill-strided": dict(mode="same", fillvalue=0.5, stride=(2, 3)),
}
# The VJP fast paths of numpy and torch need real floats, stride 1 and a fill (or none reached).
FILL_OPTIONS = {
    "valid": dict(),
    "same-fill-conv": dict(mode="same", fillvalue=0.5, convolve=True),
    "full-fill-dilated": dict(mode="full", fillvalue=-1.0, dilation=(1, 3)),
    "same-zero-fill-dilated": dict(mode="same", dilation=2),
}


def call(f, *args, **extra):
    """``corr2d{f}(*arrays, **options)`` or ``conv2d{f}`` where ``options`` (the last argument) says convolve."""
    *arrays, options = args
    options = dict(options)
    convolve = options.pop("convolve", False)
    function = getattr(xcorr, ("conv2d" if convolve else "corr2d") + f)
    return function(*arrays, **options, **extra)


def expected_of(x, k, options):
    return fast_reference(x, k, **options)


def inputs(x_shape, k_shape, dtype, options, *, seed=0):
    x, k = random(x_shape, dtype, seed=seed), random(k_shape, dtype, seed=seed + 1)
    if dtype.startswith("int") and "fillvalue" in options:
        options = {**options, "fillvalue": 3}
    return x, k, options


def check(got, expected, dtype, *, scale=False, tol=None):
    """``got`` (any library) has ``dtype``, the shape of ``expected`` and its values.

    ``scale``: an FFT's rounding follows the largest values, so the
    tolerance is relative to the largest expected value.
    """
    got = to_numpy(got)
    assert got.dtype == np.dtype(dtype), (got.dtype, dtype)
    assert got.shape == expected.shape, (got.shape, expected.shape)
    if np.dtype(dtype).kind in "iu":
        np.testing.assert_array_equal(got, expected.real.astype(dtype))
        return
    t = tolerance(np.dtype(dtype).name)["rtol"] if tol is None else tol
    size = max(1.0, float(np.abs(expected).max(initial=0))) if scale else 1.0
    np.testing.assert_allclose(got, expected, rtol=t, atol=t * size)


def check_vjp(got, x, k, g, options, dtype, **kw):
    gx, gk = reference_vjp(x, k, g, **options)
    if np.dtype(dtype).kind != "c":
        gx, gk = gx.real, gk.real
    check(got[0], gx, dtype, **kw)
    check(got[1], gk, dtype, **kw)


def to_numpy(a):
    if type(a).__module__.startswith("torch"):
        return a.detach().cpu().numpy()
    if hasattr(a, "compute"):
        a = a.compute()
    return np.asarray(a)


# =============================================================================
# numpy: row bands and threads without numba, numba's kernels, the FFT paths
# =============================================================================


@pytest.fixture
def numpy_paths(monkeypatch):
    """Spies on the numpy adapter's direct paths: numba's kernels, the thread pool, the bands."""
    return {
        "numba": spy(monkeypatch, _numba, "direct", declined=None),
        "vjp": spy(monkeypatch, _numba, "vjp", declined=None),
        "kernel_gradient": spy(monkeypatch, _numba, "kernel_gradient", declined=None),
        "chunks": spy(monkeypatch, _numba, "_chunks", measure=len),
        "pool": spy(monkeypatch, numpy_backend, "_pool"),
        # np.multiply is called once per tap and band: bands = calls / taps.
        "multiply": count_calls(monkeypatch, numpy_backend, "np", "multiply"),
    }


def band_bytes(expected, dtype, rows=3):
    """A BAND_BYTES for bands of ``rows`` rows of the output ``expected`` (in ``dtype``)."""
    plane = expected.size // expected.shape[-2]  # elements per output row, over the batch
    return rows * plane * np.dtype(dtype).itemsize


def bands(paths, k_shape):
    taps = k_shape[-2] * k_shape[-1]
    calls = len(paths["multiply"])
    assert calls % taps == 0, (calls, taps)
    return calls // taps


@pytest.mark.parametrize("dtype", ["int32", "float32", "float64", "complex128"])
@pytest.mark.parametrize("name", OPTIONS)
def test_numpy_multiband_direct_matches_reference(monkeypatch, numpy_paths, name, dtype):
    # numba absent: the output in bands of a few rows (BAND_BYTES lowered), on the calling thread.
    x, k, options = inputs((2, 41, 37), (4, 3), dtype, OPTIONS[name])
    expected = expected_of(x, k, options)
    force(monkeypatch, "numpy", numba=False, band_bytes=band_bytes(expected, dtype))
    check(call("", x, k, options, method="direct"), expected, dtype)
    assert bands(numpy_paths, k.shape) >= 3
    assert not any(numpy_paths["numba"]) and not numpy_paths["pool"]


@pytest.mark.parametrize("dtype", ["int32", "float16", "float32", "float64", "complex128"])
@pytest.mark.parametrize("name", OPTIONS)
def test_numpy_small_direct_gathers_the_loops_sums(monkeypatch, numpy_paths, name, dtype):
    # One band below numba's threshold: the taps' products in one multiplication and one
    # reduction (their bytes within gathered_bytes), else two calls per tap. Both forms give the
    # reference's values and each other's bits; x is a batched view with a column step, so the
    # windows' strides are not x's shape.
    x, k, options = inputs((2, 3, 17, 31), (3, 4), dtype, OPTIONS[name])
    view = x[:, 1:, :, 1::2]
    expected = expected_of(view.astype(np.float64) if dtype == "float16" else view, k.astype(view.dtype), options)
    results = {}
    for gathered in (False, True):
        force(monkeypatch, "numpy", gathered_bytes=1 << 20 if gathered else 0)
        numpy_paths["multiply"].clear()
        results[gathered] = call("", view, k, options, method="direct")
        assert len(numpy_paths["multiply"]) == (1 if gathered else k.size)
        assert not any(numpy_paths["numba"])
    np.testing.assert_array_equal(results[True], results[False])
    if dtype != "float16":
        check(results[True], expected, dtype)
    else:
        assert results[True].dtype == np.float16
        np.testing.assert_allclose(results[True], expected, rtol=1e-2, atol=1e-2)


def test_numpy_small_direct_gathers_where_it_is_cheaper(numpy_paths):
    # At the default thresholds: the seed's 6x8 image with [[1, -1]] keeps the loop (two taps cost
    # less than the gathered form's fixed cost), an 8x8 image with a 3x3 kernel gathers.
    for x_shape, k_shape, multiplies in (((6, 8), (1, 2), 2), ((8, 8), (3, 3), 1)):
        x, k = random(x_shape, "float64"), random(k_shape, "float64", seed=1)
        numpy_paths["multiply"].clear()
        check(xcorr.corr2d(x, k), expected_of(x, k, {}), "float64")
        assert len(numpy_paths["multiply"]) == multiplies, (x_shape, k_shape)


@pytest.mark.parametrize("name", ["valid", "same-fill-conv", "full-wrap-strided", "same-symm-dilated-conv"])
def test_numpy_multiband_direct_batched_kernels(monkeypatch, numpy_paths, name):
    # A kernel per image: numba does not apply (it takes 2-D kernels), even with it enabled and above its size.
    x, k, options = inputs((3, 1, 33, 30), (2, 2, 3), "float64", OPTIONS[name])
    expected = expected_of(x, k, options)
    force(monkeypatch, "numpy", numba_min_outputs=0, band_bytes=band_bytes(expected, "float64"))
    check(call("", x, k, options, method="direct"), expected, "float64")
    assert numpy_paths["numba"] and not any(numpy_paths["numba"])
    assert bands(numpy_paths, k.shape) >= 3


# Extensions that copy the image where they are not made band by band (fill is virtual in numba's kernels).
EXTENSION_OPTIONS = {
    "same-reflect": dict(mode="same", boundary="reflect"),
    "same-wrap-strided-conv": dict(mode="same", boundary="wrap", stride=(2, 3), convolve=True),
    "full-symm-dilated": dict(mode="full", boundary="symm", dilation=(2, 1)),
    "padded-edge-strided-dilated": dict(padding=((3, 1), (2, 4)), boundary="edge", stride=2, dilation=(1, 2)),
}


@pytest.mark.parametrize("numba", [True, False], ids=["numba", "numba-absent"])
@pytest.mark.parametrize("dtype", ["int32", "float32", "complex128"])
@pytest.mark.parametrize("name", EXTENSION_OPTIONS)
@pytest.mark.parametrize("shapes", [((2, 41, 37), (4, 3)), ((3, 1, 33, 30), (2, 2, 3))], ids=["2d-kernel", "batched"])
def test_numpy_extension_in_bands_matches_reference(monkeypatch, shapes, name, dtype, numba):
    # Each band of output rows reads its own extension of the rows it needs (a few rows per band here).
    x, k, options = inputs(*shapes, dtype, EXTENSION_OPTIONS[name])
    expected = expected_of(x, k, options)
    force(monkeypatch, "numpy", numba=numba, numba_min_outputs=0, extension_band_bytes=4096, extension_bands=10**6)
    parts = spy(monkeypatch, numpy_backend, "_direct")
    check(call("", x, k, options, method="direct"), expected, dtype)
    assert len(parts) >= 3


@pytest.mark.parametrize(
    ("x_shape", "k_shape", "numba"),
    [((600, 600), (3, 3), False), ((3, 200, 200), (3, 3, 3), True)],
    ids=["600-numba-absent", "batched-kernel"],
)
def test_numpy_multiband_direct_at_default_sizes(monkeypatch, numpy_paths, x_shape, k_shape, numba):
    # The default thresholds: 600² with numba absent, or a batch of kernels at any size.
    force(monkeypatch, "numpy", numba=numba)
    x, k = random(x_shape), random(k_shape, seed=1)
    check(xcorr.corr2d(x, k), fast_reference(x, k), "float64")
    assert bands(numpy_paths, k_shape) >= 4
    assert not any(numpy_paths["numba"]) and not numpy_paths["pool"]


@pytest.mark.parametrize("batched_kernel", [False, True])
@pytest.mark.parametrize("name", ["valid", "same-fill-conv", "full-wrap-strided", "same-symm-dilated-conv"])
def test_numpy_threaded_bands_match_reference(monkeypatch, numpy_paths, name, batched_kernel):
    # Bands split between THREADS threads (thresholds lowered), numba absent or not applying.
    force(monkeypatch, "numpy", numba=batched_kernel, numba_min_outputs=0, band_bytes=1024, threaded_elements=0, threads=2)
    x, k, options = inputs((2, 45, 39), (2, 3, 4) if batched_kernel else (3, 4), "float64", OPTIONS[name])
    check(call("", x, k, options, method="direct"), expected_of(x, k, options), "float64")
    assert numpy_paths["pool"] and bands(numpy_paths, k.shape) >= 4
    assert not any(numpy_paths["numba"])


def test_numpy_threaded_bands_at_default_size(monkeypatch, numpy_paths):
    # Over THREADED_ELEMENTS outputs without numba: two threads (where the machine has two cores).
    force(monkeypatch, "numpy", numba=False, threads=2)
    x, k = random((1100, 1000), "float32"), random((3, 3), "float32", seed=1)
    check(xcorr.corr2d(x, k, mode="same", boundary="symm"), fast_reference(x, k, mode="same", boundary="symm"), "float32")
    assert numpy_paths["pool"] and bands(numpy_paths, k.shape) >= 4


# -- numba's kernels ------------------------------------------------------------------


@pytest.fixture(params=["one-chunk", "threaded-chunks"])
def numba_threads(request, monkeypatch):
    """numba's kernels on every size (threshold lowered), on one chunk of rows or split between threads."""
    require_module("numba")
    work = 0 if request.param == "threaded-chunks" else 1 << 62
    force(monkeypatch, "numpy", numba_min_outputs=0, numba_threaded_work=work, threads=2)
    return request.param == "threaded-chunks"


def check_chunks(paths, threaded):
    # Threaded: the calls with rows enough for two chunks per thread split them.
    assert paths["chunks"], "numba's kernels never ran"
    assert any(n > 1 for n in paths["chunks"]) == threaded, paths["chunks"]


@pytest.mark.parametrize("dtype", DTYPE_NAMES)
@pytest.mark.parametrize("name", OPTIONS)
def test_numba_forward_matches_reference(numpy_paths, numba_threads, name, dtype):
    x, k, options = inputs((2, 41, 37), (4, 5), dtype, OPTIONS[name])
    check(call("", x, k, options, method="direct"), expected_of(x, k, options), dtype)
    assert numpy_paths["numba"] == [True]
    check_chunks(numpy_paths, numba_threads)


@pytest.mark.parametrize("k_shape", [(1, 1), (1, 2), (2, 3), (3, 3), (2, 7), (9, 4)])
def test_numba_forward_kernel_sizes(numpy_paths, numba_threads, k_shape):
    # Every remainder of the four-taps-per-pass grouping, edge columns on both sides.
    x, k = random((2, 3, 31, 29), "int64"), random(k_shape, "int64", seed=1)
    for options in (dict(), dict(mode="full", fillvalue=2), dict(mode="same", stride=(2, 3), dilation=2)):
        check(xcorr.corr2d(x, k, **options), fast_reference(x, k, **options), "int64")
    assert numpy_paths["numba"] == [True] * 3


@pytest.mark.parametrize(
    ("x_shape", "options", "threaded"),
    [((130, 130), dict(), False), ((2, 400, 400), dict(mode="same", fillvalue=0.5), True)],
    ids=["16384-outputs", "threaded"],
)
def test_numba_forward_at_default_sizes(numpy_paths, x_shape, options, threaded):
    require_module("numba")
    x, k = random(x_shape, "float32"), random((3, 3), "float32", seed=1)
    check(xcorr.corr2d(x, k, **options), fast_reference(x, k, **options), "float32")
    assert numpy_paths["numba"] == [True]
    check_chunks(numpy_paths, threaded)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", FILL_OPTIONS)
def test_numba_vjp_one_pass_matches_reference(numpy_paths, numba_threads, name, dtype):
    # Real floats, stride 1, a fill: both gradients in one pass over chunks of rows.
    x, k, options = inputs((2, 41, 37), (4, 5), dtype, FILL_OPTIONS[name])
    g = random(expected_of(x, k, options).shape, dtype, seed=2)
    check_vjp(call("_vjp", x, k, g, options, method="direct"), x, k, g, options, dtype)
    assert numpy_paths["vjp"] == [True] and not numpy_paths["kernel_gradient"]
    check_chunks(numpy_paths, numba_threads)


@pytest.mark.parametrize("dtype", ["float32", "float64", "complex128"])
@pytest.mark.parametrize(
    "name", ["full-wrap-strided", "same-symm-dilated-conv", "valid-strided-dilated", "same-fill-conv", "same-fill-strided"]
)
def test_numba_kernel_gradient_matches_reference(numpy_paths, numba_threads, name, dtype):
    # Where the one pass does not apply (strides, wrap/symm, complex): the kernel gradient
    # in one numba pass, the input gradient a "full" correlation through numba's forward.
    x, k, options = inputs((2, 41, 37), (4, 3), dtype, OPTIONS[name])
    g = random(expected_of(x, k, options).shape, dtype, seed=2)
    check_vjp(call("_vjp", x, k, g, options, method="direct"), x, k, g, options, dtype)
    one_pass = dtype != "complex128" and name == "same-fill-conv"
    assert any(numpy_paths["vjp"]) == one_pass
    assert numpy_paths["kernel_gradient"] == ([] if one_pass else [True])
    if not one_pass:
        assert numpy_paths["numba"] == [True]  # the input gradient's correlation
    check_chunks(numpy_paths, numba_threads)


@pytest.mark.parametrize(
    ("options", "path"),
    [
        (dict(mode="same", fillvalue=0.5), "vjp"),
        (dict(mode="same", boundary="wrap"), "kernel_gradient"),
    ],
    ids=["one-pass", "kernel-gradient"],
)
@pytest.mark.parametrize("x_shape", [(130, 130), (2, 400, 400)], ids=["single", "threaded"])
def test_numba_backward_at_default_sizes(numpy_paths, options, path, x_shape):
    require_module("numba")
    x, k = random(x_shape), random((3, 3), seed=1)
    g = random(fast_reference(x, k, **options).shape, seed=2)
    check_vjp(xcorr.corr2d_vjp(x, k, g, method="direct", **options), x, k, g, options, "float64")
    assert numpy_paths[path] == [True]
    check_chunks(numpy_paths, len(x_shape) == 3)


# -- FFT: image-sized, overlap-save, and their backward ------------------------------


@pytest.fixture
def fft_paths(monkeypatch):
    require_module("scipy")
    return {
        "image": spy(monkeypatch, toolkit, "fft_correlate"),
        "overlap": spy(monkeypatch, _numpy_fft, "overlap_save"),
        "fused": spy(monkeypatch, numpy_backend, "fused_vjp", declined=None),
        "tiled": spy(monkeypatch, _numpy_fft, "_overlap_vjp"),
    }


SMALL_BLOCKS = dict(overlap_min_block=16, overlap_span_factor=2, overlap_min_blocks=2, overlap_band_points=1)


@pytest.mark.parametrize("dtype", ["float32", "float64", "complex128"])
@pytest.mark.parametrize("name", OPTIONS)
def test_numpy_fft_image_sized_forward(fft_paths, name, dtype):
    x, k, options = inputs((2, 41, 37), (6, 5), dtype, OPTIONS[name])
    check(call("", x, k, options, method="fft"), expected_of(x, k, options), dtype, scale=True)
    assert fft_paths["image"] == [True] and not fft_paths["overlap"]


@pytest.mark.parametrize("dtype", ["float32", "float64", "complex128"])
@pytest.mark.parametrize("name", OPTIONS)
def test_numpy_overlap_save_forward(monkeypatch, fft_paths, name, dtype):
    force(monkeypatch, "numpy", **SMALL_BLOCKS)
    x, k, options = inputs((2, 150, 140), (7, 9), dtype, OPTIONS[name])
    check(call("", x, k, options, method="fft"), expected_of(x, k, options), dtype, scale=True)
    assert fft_paths["overlap"] == [True] and not fft_paths["image"]


def test_numpy_overlap_save_forward_at_default_size(fft_paths):
    # 8 blocks of 256 along each axis: the default overlap-save size.
    x, k = random((2048, 2048), "float32"), random((5, 5), "float32", seed=1)
    check(xcorr.corr2d(x, k, method="fft"), fast_reference(x, k), "float32", scale=True)
    assert fft_paths["overlap"] == [True]


VJP_SHAPES = [((61, 57), (5, 6)), ((2, 58, 60), (4, 5)), ((2, 1, 50, 49), (3, 3, 4)), ((2, 50, 49), (2, 3, 4))]


@pytest.mark.parametrize("tiled", [False, True], ids=["image-sized", "tiled"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", FILL_OPTIONS)
@pytest.mark.parametrize("shapes", VJP_SHAPES, ids=lambda s: f"{s[0]}-{s[1]}")
def test_numpy_fused_fft_vjp(monkeypatch, fft_paths, tiled, dtype, name, shapes):
    # Both gradients from one spectrum of g: image-sized, or (blocks lowered) the overlap-add tiles.
    if tiled:
        force(monkeypatch, "numpy", **SMALL_BLOCKS)
    x_shape, k_shape = shapes
    x, k, options = inputs(x_shape, k_shape, dtype, FILL_OPTIONS[name])
    g = random(expected_of(x, k, options).shape, dtype, seed=2)
    check_vjp(call("_vjp", x, k, g, options, method="fft"), x, k, g, options, dtype, scale=True)
    assert fft_paths["fused"] == [True]
    # The tiles take a 2-D kernel (g then has x's batch shape).
    assert bool(fft_paths["tiled"]) == (tiled and len(k_shape) == 2)


def test_numpy_tiled_fft_vjp_at_default_size(fft_paths):
    x, k = random((2048, 2048)), random((3, 3), seed=1)
    g = random((2046, 2046), seed=2)
    check_vjp(xcorr.corr2d_vjp(x, k, g, method="fft"), x, k, g, {}, "float64", scale=True, tol=1e-10)
    assert fft_paths["tiled"] == [True]


# The one FFT VJP of the core (_fft.vjp): every eager adapter reaches it (numpy's fused_vjp, torch's
# fft_vjp and the generic adapter's VJP: array-api-strict, cupy). The adapters of lazy and traced
# arrays do not: jax differentiates through its own transpose and dask block by block.
FFT_VJP_BACKENDS = backends_where(lambda b: b.adapter.eager)
FFT_VJP_CASES = {
    "batch-broadcast": ((2, 1, 20, 19), (3, 4, 5), dict()),
    "same-dilated": ((23, 21), (3, 4), dict(mode="same", dilation=(2, 3))),
    "same-fill": ((2, 20, 22), (5, 4), dict(mode="same", fillvalue=0.5)),
    "full-fill-conv": ((19, 20), (4, 6), dict(mode="full", fillvalue=-1.0, convolve=True)),
}


def spy_fft_vjp(monkeypatch):
    """The calls of the core's FFT VJP, by the generic VJP (``_fft.vjp``) or an adapter (``toolkit.fft_vjp``)."""
    core = spy(monkeypatch, _fft, "vjp")
    adapters = spy(monkeypatch, toolkit, "fft_vjp")
    return lambda: core + adapters


@pytest.mark.parametrize("name", FFT_VJP_CASES)
@pytest.mark.parametrize("backend", FFT_VJP_BACKENDS, ids=str)
def test_one_fft_vjp_in_the_core(monkeypatch, backend, name):
    backend.require()
    reached = spy_fft_vjp(monkeypatch)
    x_shape, k_shape, options = FFT_VJP_CASES[name]
    x, k = random(x_shape), random(k_shape, seed=1)
    g = random(expected_of(x, k, options).shape, seed=2)
    xb, kb, gb = (backend.asarray(a) for a in (x, k, g))
    if backend.adapter.autodiff:
        # The library's own backward (torch's autograd, grad mode off), where torch's fft_vjp applies.
        import torch

        xb.requires_grad_(True)
        kb.requires_grad_(True)
        got = torch.autograd.grad(call("", xb, kb, options, method="fft"), (xb, kb), gb)
    else:
        got = call("_vjp", xb, kb, gb, options, method="fft")
    assert reached() == [True]
    for grad in got:
        assert array_namespace(grad) is backend.xp
    check_vjp([backend.to_numpy(a) for a in got], x, k, g, options, "float64", scale=True)


@pytest.mark.parametrize("backend", [b for b in FFT_VJP_BACKENDS if not b.adapter.autodiff], ids=str)
def test_one_fft_vjp_gives_each_gradient_its_operands_dtype(monkeypatch, backend):
    # A float32 image and a float64 kernel: computed in float64, gx cast back to float32.
    backend.require()
    reached = spy_fft_vjp(monkeypatch)
    x, k = random((2, 17, 16), "float32"), random((3, 4), seed=1)
    g = random(expected_of(x, k, {}).shape, seed=2)
    got = xcorr.corr2d_vjp(*(backend.asarray(a) for a in (x, k, g)), method="fft")
    assert reached() == [True]
    gx, gk = reference_vjp(x, k, g)
    check(backend.to_numpy(got[0]), gx.real, "float32", scale=True)
    check(backend.to_numpy(got[1]), gk.real, "float64", scale=True)


# -- corr2d_multi: one GEMM per tap --------------------------------------------------


MULTI = {
    "valid": dict(),
    "same-symm-groups": dict(mode="same", boundary="symm", groups=2),
    "full-fill-strided-dilated": dict(mode="full", fillvalue=0.5, stride=(2, 1), dilation=2, groups=4),
    "same-wrap-strided": dict(mode="same", boundary="wrap", stride=(1, 3)),
}


@pytest.mark.parametrize("dtype", ["float32", "float64", "complex128"])
@pytest.mark.parametrize("name", MULTI)
@pytest.mark.parametrize("batched", [True, False])
def test_numpy_correlate_multi_gemm(monkeypatch, name, dtype, batched):
    forward = spy(monkeypatch, numpy_backend, "correlate_multi", declined=None)
    backward = spy(monkeypatch, numpy_backend, "correlate_multi_vjp", declined=None)
    options = MULTI[name]
    groups = options.get("groups", 1)
    x, w = random((2, 4, 13, 12) if batched else (4, 13, 12), dtype), random((4, 4 // groups, 3, 2), dtype, seed=1)
    y = xcorr.corr2d_multi(x, w, **options)
    check(y, reference_multi(x, w, **options), dtype)
    g = random(y.shape, dtype, seed=2)
    gx, gw = xcorr.corr2d_multi_vjp(x, w, g, **options)
    want_x, want_w = reference_multi_vjp(x, w, g, **options)
    check(gx, want_x, dtype)
    check(gw, want_w, dtype)
    assert forward == [True] and backward == [True]


# =============================================================================
# torch: bands, worker threads, clipped windows, few_outputs, bmm kernel gradient, fft_vjp
# =============================================================================


@pytest.fixture
def torch_paths(monkeypatch):
    require_module("torch")
    from xcorr.backends.torch import autodiff, ops

    return {
        "pool": spy(monkeypatch, ops, "_pool"),
        "clipped": spy(monkeypatch, ops, "_inside"),
        "few_outputs": spy(monkeypatch, ops, "few_outputs"),
        "kernel_gradient": spy(monkeypatch, ops, "kernel_gradient_applies", declined=False),
        "fft_vjp": spy(monkeypatch, autodiff, "fft_vjp_applies", declined=False),
        # torch.mul(out=) writes the first tap of each band.
        "first_taps": count_calls(monkeypatch, ops, "torch", "mul"),
    }


def tensors(*arrays, grad=False):
    import torch

    return [torch.asarray(a).requires_grad_(grad) for a in arrays]


def torch_vjp(f, x, k, g, options, **extra):
    """The forward and the transpose at ``g`` from torch autograd.

    For complex tensors torch returns ``conj(J^T conj(g))``; conjugating
    around it gives the transpose ``J^T g`` that ``reference_vjp`` computes.
    """
    import torch

    xt, kt = tensors(x, k, grad=True)
    y = call(f, xt, kt, options, **extra)
    gt = torch.asarray(g)
    if gt.is_complex():
        return y, tuple(a.conj() for a in torch.autograd.grad(y, (xt, kt), gt.conj()))
    return y, torch.autograd.grad(y, (xt, kt), gt)


@pytest.mark.parametrize("pooled", [False, True], ids=["calling-thread", "worker-threads"])
@pytest.mark.parametrize("dtype", ["int64", "float32", "float64", "complex128"])
@pytest.mark.parametrize("name", ["valid", "full-wrap-strided", "same-symm-dilated-conv", "valid-strided-dilated"])
def test_torch_direct_bands(monkeypatch, torch_paths, pooled, dtype, name):
    # Bands of a few rows (thresholds lowered), on the calling thread or the worker threads.
    if pooled:
        force(monkeypatch, "torch", pooled_elements=0, band_elements=64)
    else:
        force(monkeypatch, "torch", small_band=64)
    x, k, options = inputs((2, 41, 37), (4, 3), dtype, OPTIONS[name])
    (xt, kt) = tensors(x, k)
    check(call("", xt, kt, options, method="direct"), expected_of(x, k, options), dtype)
    assert len(torch_paths["first_taps"]) >= 3
    assert bool(torch_paths["pool"]) == pooled and not torch_paths["clipped"]


SMALL_INSIDE = {
    "valid": dict(),
    "valid-strided-dilated": dict(stride=(2, 3), dilation=(2, 1)),
    "valid-strided-conv": dict(stride=2, convolve=True),
}


@pytest.mark.parametrize("gathered", [False, True], ids=["a-slice-per-tap", "gathered-windows"])
@pytest.mark.parametrize("dtype", ["float32", "float64", "complex128"])
@pytest.mark.parametrize("name", SMALL_INSIDE)
def test_torch_small_direct_forms(monkeypatch, gathered, dtype, name):
    # A small call whose windows all lie inside x: one strided view of every window and one
    # matrix-vector product (real floats, few window elements), else a slice and an add per tap.
    # x is a batched view with a column step, so the windows' strides are not x's shape.
    require_module("torch")
    import torch

    from xcorr.backends.torch import adapter

    force(monkeypatch, "torch", gathered_bytes=1 << 21 if gathered else 0)
    adds = count_calls(monkeypatch, adapter, "torch", "mul")
    x, k = random((2, 3, 17, 31), dtype), random((3, 4), dtype, seed=1)
    view = torch.asarray(x)[:, 1:, :, 1::2]
    check(call("", view, torch.asarray(k), SMALL_INSIDE[name], method="direct"), expected_of(x[:, 1:, :, 1::2], k, SMALL_INSIDE[name]), dtype)
    assert len(adds) == (0 if gathered and dtype != "complex128" else 1)


@pytest.mark.parametrize("dtype", ["float32", "float64", "complex128"])
@pytest.mark.parametrize("name", SMALL_INSIDE)
def test_torch_native_planes(monkeypatch, dtype, name):
    # method="native" with one kernel whose windows all lie inside x: F.conv2d of the planes, placed
    # once per signature (the generic native_forward is not called), the first call and the
    # prepared ones; x is a batched view with a column step. A tensor that autograd must see takes
    # the generic path.
    require_module("torch")
    import torch

    from xcorr.backends.torch import ops

    generic = spy(monkeypatch, ops, "native_forward")
    x, k = random((2, 3, 17, 31), dtype), random((3, 4), dtype, seed=1)
    view, expected = torch.asarray(x)[:, 1:, :, 1::2], expected_of(x[:, 1:, :, 1::2], k, SMALL_INSIDE[name])
    for _ in range(2):
        check(call("", view, torch.asarray(k), SMALL_INSIDE[name], method="native"), expected, dtype)
    assert not generic
    y = call("", view, torch.asarray(k).requires_grad_(True), SMALL_INSIDE[name], method="native")
    check(y, expected, dtype)
    assert y.grad_fn is not None and generic


@pytest.mark.parametrize(("x_shape", "pooled"), [((300, 300), False), ((600, 600), True)], ids=["bands", "worker-threads"])
def test_torch_direct_bands_at_default_sizes(monkeypatch, torch_paths, x_shape, pooled):
    force(monkeypatch, "torch", numba=False)  # float32 CPU tensors take numba's kernel where it is installed
    x, k = random(x_shape, "float32"), random((3, 3), "float32", seed=1)
    (xt, kt) = tensors(x, k)
    check(xcorr.corr2d(xt, kt, method="direct"), fast_reference(x, k), "float32")
    assert len(torch_paths["first_taps"]) >= 2 and bool(torch_paths["pool"]) == pooled


@pytest.mark.parametrize("pooled", [False, True], ids=["calling-thread", "worker-threads"])
@pytest.mark.parametrize("k_shape", [(3, 4), (2, 3, 4), (7, 2)])
@pytest.mark.parametrize(
    "options",
    [dict(mode="same"), dict(mode="full", stride=(2, 3)), dict(mode="full", dilation=(2, 3), convolve=True), dict(mode="same", stride=3, dilation=2)],
    ids=["same", "full-strided", "full-dilated-conv", "same-strided-dilated"],
)
def test_torch_clipped_windows(monkeypatch, torch_paths, pooled, k_shape, options):
    # A zero fill is never built: each tap adds onto the outputs whose window lies inside x.
    force(monkeypatch, "torch", small_band=64, **(dict(pooled_elements=0, band_elements=64) if pooled else {}))
    x, k = random((2, 23, 19)), random(k_shape, seed=1)
    (xt, kt) = tensors(x, k)
    check(call("", xt, kt, options, method="direct"), fast_reference(x, k, **options), "float64")
    assert torch_paths["clipped"] and bool(torch_paths["pool"]) == pooled


def test_torch_clipped_windows_not_for_a_nonzero_fill(torch_paths):
    x, k = random((23, 19)), random((3, 4), seed=1)
    (xt, kt) = tensors(x, k)
    check(xcorr.corr2d(xt, kt, mode="full", fillvalue=0.5, method="direct"), fast_reference(x, k, mode="full", fillvalue=0.5), "float64")
    assert not torch_paths["clipped"]


@pytest.mark.parametrize("pooled", [False, True], ids=["whole-windows", "threaded-bands"])
@pytest.mark.parametrize("dtype", ["float32", "float64", "complex128"])
@pytest.mark.parametrize(
    ("x_shape", "k_shape", "options"),
    [
        ((40, 40), (38, 38), dict()),
        ((2, 44, 41), (2, 40, 38), dict(stride=(2, 1))),
        ((30, 31), (28, 29), dict(mode="same", boundary="wrap", stride=10)),
    ],
)
def test_torch_few_outputs(monkeypatch, torch_paths, pooled, dtype, x_shape, k_shape, options):
    # A kernel that dwarfs the output: banded dot products (method "native" on the CPU).
    if pooled:
        force(monkeypatch, "torch", pooled_kernel=0, band_elements=64)
    x, k = random(x_shape, dtype), random(k_shape, dtype, seed=1)
    (xt, kt) = tensors(x, k)
    check(xcorr.corr2d(xt, kt, method="native", **options), fast_reference(x, k, **options), dtype, tol=1e-4 if dtype == "float32" else None)
    assert torch_paths["few_outputs"] == [True] and bool(torch_paths["pool"]) == pooled


@pytest.mark.parametrize("pooled", [False, True], ids=["calling-thread", "worker-threads"])
@pytest.mark.parametrize("dtype", ["float32", "float64", "complex128"])
@pytest.mark.parametrize(
    ("x_shape", "k_shape", "options"),
    [
        ((70, 75), (3, 4), dict(mode="same", boundary="symm", convolve=True)),
        ((150, 140), (3, 2), dict(stride=(2, 1), dilation=(1, 2), mode="full", fillvalue=0.5)),
        ((3, 66, 70), (3, 3), dict(mode="same", boundary="wrap", dilation=(2, 1))),
        ((2, 1, 66, 68), (3, 2, 3), dict()),
    ],
)
def test_torch_bmm_kernel_gradient(monkeypatch, torch_paths, pooled, dtype, x_shape, k_shape, options):
    # The kernel gradient as w bmm calls per band of rows (planes of at least GRADIENT_MIN_PLANE outputs).
    force(monkeypatch, "torch", gradient_band=1 << 10, **(dict(pooled_elements=0) if pooled else {}))
    x, k = random(x_shape, dtype), random(k_shape, dtype, seed=1)
    g = random(fast_reference(x, k, **options).shape, dtype, seed=2)
    _, grads = torch_vjp("", x, k, g, options, method="direct")
    check_vjp(grads, x, k, g, options, dtype, tol=1e-4 if dtype == "float32" else None, scale=True)
    assert torch_paths["kernel_gradient"] == [True]
    assert bool(torch_paths["pool"]) == pooled


def test_torch_bmm_kernel_gradient_at_default_size(monkeypatch, torch_paths):
    # Without numba (with it, numba's fused backward serves: test_torch_backward.py).
    force(monkeypatch, "torch", numba=False)
    x, k = random((2, 400, 400), "float32"), random((3, 3), "float32", seed=1)
    g = random((2, 398, 398), "float32", seed=2)
    _, grads = torch_vjp("", x, k, g, {}, method="direct")
    check_vjp(grads, x, k, g, {}, "float32", tol=1e-4, scale=True)
    assert torch_paths["kernel_gradient"] == [True] and torch_paths["pool"]


def test_torch_kernel_gradient_of_small_planes_through_few_outputs(torch_paths):
    # Below GRADIENT_MIN_PLANE the kernel gradient is a native correlation with g as the kernel: few_outputs.
    x, k = random((2, 50, 50)), random((3, 3), seed=1)
    g = random((2, 48, 48), seed=2)
    _, grads = torch_vjp("", x, k, g, {}, method="direct")
    check_vjp(grads, x, k, g, {}, "float64")
    assert torch_paths["kernel_gradient"] == [False] and torch_paths["few_outputs"]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", FILL_OPTIONS)
@pytest.mark.parametrize("shapes", VJP_SHAPES, ids=lambda s: f"{s[0]}-{s[1]}")
def test_torch_fft_vjp(torch_paths, dtype, name, shapes):
    x, k, options = inputs(*shapes, dtype, FILL_OPTIONS[name])
    g = random(expected_of(x, k, options).shape, dtype, seed=2)
    y, grads = torch_vjp("", x, k, g, options, method="fft")
    check(y, expected_of(x, k, options), dtype, scale=True)
    check_vjp(grads, x, k, g, options, dtype, scale=True)
    assert torch_paths["fft_vjp"] == [True]


# =============================================================================
# jax: unrolled and fori_loop shift-and-add, numba's kernels as XLA custom calls
# =============================================================================


@pytest.fixture
def jax_paths(monkeypatch):
    jax = require_module("jax")
    from xcorr.backends.jax import ops as jax_ops

    paths = {
        "unrolled": spy(monkeypatch, jax_ops, "_tap_windows"),
        "fori_loop": spy(monkeypatch, jax.lax, "fori_loop"),
        "numba_forward": spy(monkeypatch, jax_ops, "numba_correlate"),
        "kernel_gradient": spy(monkeypatch, jax_ops, "numba_kernel_gradient_applies", declined=False),
        "kernel_gradient_sum": spy(monkeypatch, jax_ops, "kernel_gradient_sum_applies", declined=False),
    }
    if _numba_importable():
        from xcorr.backends import _jax_numba

        paths["chunks"] = spy(monkeypatch, _jax_numba, "_split", measure=lambda split: split[0])
    return paths


def _numba_importable():
    try:
        import numba  # noqa: F401
    except ImportError:
        return False
    return True


def jax_grads(f, x, k, g, options, **extra):
    """The forward and its transpose at ``g`` (``jax.vjp``, under ``jax.jit``)."""
    import jax
    import jax.numpy as jnp

    def run(x, k, g):
        y, pullback = jax.vjp(lambda x, k: call(f, x, k, options, **extra), x, k)
        return y, pullback(g)

    return jax.jit(run)(jnp.asarray(x), jnp.asarray(k), jnp.asarray(g))


# (option set, dtype): every option set once with its gradient, and every other dtype.
JAX_XLA = [(name, "float64") for name in OPTIONS] + [
    ("same-fill-conv", "int32"), ("full-wrap-strided", "float32"), ("same-symm-dilated-conv", "complex128")
]


@pytest.mark.parametrize("loop", [False, True], ids=["unrolled", "fori_loop"])
@pytest.mark.parametrize(("name", "dtype"), JAX_XLA)
def test_jax_unrolled_and_fori_loop(monkeypatch, jax_paths, loop, name, dtype):
    # XLA's shift-and-add (numba off): unrolled up to UNROLL_TAPS taps, a fori_loop over kernel rows beyond.
    # 400: a complex kernel gradient's native correlation has a direct branch (for non-finite operands)
    # whose kernel is g, 378 taps.
    force(monkeypatch, "jax", numba=False, unroll_taps=4 if loop else 400)
    x, k, options = inputs((2, 23, 21), (3, 4), dtype, OPTIONS[name])
    g = random(expected_of(x, k, options).shape, dtype, seed=2)
    if dtype.startswith("int"):
        check(call("", *tensors_jax(x, k), options, method="direct"), expected_of(x, k, options), dtype)
    else:
        # The forward and the input gradient's "full" correlation: both this path.
        y, grads = jax_grads("", x, k, g, options, method="direct")
        check(y, expected_of(x, k, options), dtype)
        check_vjp(grads, x, k, g, options, dtype)
    assert bool(jax_paths["fori_loop"]) == loop and bool(jax_paths["unrolled"]) == (not loop)


def tensors_jax(*arrays):
    import jax.numpy as jnp

    return [jnp.asarray(a) for a in arrays]


def test_jax_fori_loop_at_default_size(monkeypatch, jax_paths):
    # 16x16 = 256 taps: past UNROLL_TAPS.
    force(monkeypatch, "jax")
    x, k = random((2, 40, 45), "float32"), random((16, 16), "float32", seed=1)
    options = dict(mode="same", boundary="wrap", dilation=(1, 2))
    check(call("", *tensors_jax(x, k), options, method="direct"), fast_reference(x, k, **options), "float32", scale=True)
    assert jax_paths["fori_loop"] and not jax_paths["unrolled"]


@pytest.fixture(params=["one-chunk", "threaded-chunks"])
def jax_numba(request, monkeypatch):
    """numba's custom calls on every size (threshold lowered), on one chunk or split with XLA's threads."""
    require_module("numba")
    work = 0 if request.param == "threaded-chunks" else 1 << 62
    force(monkeypatch, "jax", numba_min_outputs=0, numba_threaded_work=work, threads=2)
    return request.param == "threaded-chunks"


def check_jax_chunks(paths, threaded):
    assert paths["chunks"], "no custom call was traced"
    assert any(n > 1 for n in paths["chunks"]) == threaded, paths["chunks"]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize(
    "options",
    [
        dict(mode="same", fillvalue=0.5),
        dict(mode="full", fillvalue=-1.0, stride=(2, 1), dilation=(1, 3), convolve=True),
        dict(mode="same", stride=(3, 1), dilation=2),
        dict(mode="full", fillvalue=0.25),
    ],
    ids=["same", "full-strided-dilated-conv", "same-zero-strided", "full"],
)
@pytest.mark.parametrize("x_shape", [(2, 41, 37), (5, 6)], ids=["batch", "windows-wider-than-x"])
def test_jax_numba_custom_calls_reading_fill(jax_paths, jax_numba, dtype, options, x_shape):
    # Windows that leave x into the fill: the forward through numba's kernel (rows of the
    # fill read virtually, edge columns apart), and the kernel gradient's one pass.
    x, k = random(x_shape, dtype), random((4, 5) if x_shape != (5, 6) else (8, 9), dtype, seed=1)
    y = call("", *tensors_jax(x, k), options, method="direct")
    check(y, fast_reference(x, k, **options), dtype, scale=True)
    assert jax_paths["numba_forward"]
    g = random(y.shape, dtype, seed=2)
    _, grads = jax_grads("", x, k, g, options, method="direct")
    check_vjp(grads, x, k, g, options, dtype, scale=True)
    assert jax_paths["kernel_gradient"] == [True]
    check_jax_chunks(jax_paths, jax_numba)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", ["valid", "full-wrap-strided", "same-symm-dilated-conv", "valid-strided-dilated"])
def test_jax_numba_kernel_gradient_other_boundaries(jax_paths, jax_numba, dtype, name):
    # wrap/symm (an extended copy) and windows inside x: the kernel gradient's custom call.
    x, k, options = inputs((2, 41, 37), (3, 4), dtype, OPTIONS[name])
    g = random(expected_of(x, k, options).shape, dtype, seed=2)
    _, grads = jax_grads("", x, k, g, options, method="direct")
    check_vjp(grads, x, k, g, options, dtype, scale=True)
    assert jax_paths["kernel_gradient"] == [True]
    check_jax_chunks(jax_paths, jax_numba)


def test_jax_numba_forward_inside_large_outputs(monkeypatch, jax_paths):
    # Outputs inside x: numba's kernel, with huge pages asked for (threshold lowered).
    require_module("numba")
    force(monkeypatch, "jax", numba_min_outputs=0, hugepages=True, hugepage_min_bytes=0)
    x, k = random((2, 30, 41), "float32"), random((4, 2), "float32", seed=1)
    options = dict(stride=(2, 3), dilation=(1, 2), convolve=True)
    check(call("", *tensors_jax(x, k), options, method="direct"), fast_reference(x, k, **options), "float32", scale=True)
    assert jax_paths["numba_forward"]


@pytest.mark.parametrize(
    ("x_shape", "threaded"), [((130, 130), False), ((2, 400, 400), True)], ids=["16384-outputs", "threaded"]
)
def test_jax_numba_custom_calls_at_default_sizes(monkeypatch, jax_paths, x_shape, threaded):
    require_module("numba")
    force(monkeypatch, "jax")
    options = dict(mode="same", fillvalue=0.5)
    x, k = random(x_shape, "float32"), random((3, 3), "float32", seed=1)
    g = random(x_shape, "float32", seed=2)
    y, grads = jax_grads("", x, k, g, options, method="direct")
    check(y, fast_reference(x, k, **options), "float32", scale=True)
    check_vjp(grads, x, k, g, options, "float32", scale=True, tol=1e-4)
    assert jax_paths["numba_forward"] and jax_paths["kernel_gradient"] == [True]
    check_jax_chunks(jax_paths, threaded)


@pytest.mark.parametrize(
    "options",
    [dict(), dict(mode="same", boundary="symm", stride=2), dict(mode="full", fillvalue=0.5, dilation=(2, 1))],
    ids=["valid", "same-symm-strided", "full-fill-dilated"],
)
@pytest.mark.parametrize("x_shape", [(3, 20, 22), (2, 3, 18, 17)])
def test_jax_kernel_gradient_sum(monkeypatch, jax_paths, options, x_shape):
    # One kernel for a batch, numba off: the batch-summed kernel gradient as one native convolution.
    force(monkeypatch, "jax", numba=False)
    x, k = random(x_shape), random((3, 2), seed=1)
    g = random(fast_reference(x, k, **options).shape, seed=2)
    _, grads = jax_grads("", x, k, g, options, method="direct")
    check_vjp(grads, x, k, g, options, "float64")
    assert jax_paths["kernel_gradient_sum"] == [True]


def _jax_cpu_limit(name: str):
    """jax.numpy and the jax adapter's threshold ``name`` of a CPU-only route (skipped elsewhere)."""
    jax = require_module("jax")
    jnp = require_module("jax.numpy")
    if jax.default_backend() != "cpu":
        pytest.skip(f"the route that JaxTuning.{name} bounds is the CPU's")
    limit = getattr(toolkit.adapter_for(jnp).tuning, name)
    assert limit >= 1
    return jnp, limit


def _grouped_oracle(x, w, b, groups):
    """The valid multi-channel correlation of ``x`` (N, C_in, *spatial) with ``w`` (C_out, C_in //
    groups, *taps) in ``groups`` groups, plus ``b``, from ``scipy.signal.correlate``, float64."""
    signal = require_module("scipy.signal")
    per_out, per_in = w.shape[0] // groups, w.shape[1]
    return np.stack(
        [
            np.stack(
                [
                    sum(signal.correlate(x[n, (o // per_out) * per_in + c], w[o, c], mode="valid") for c in range(per_in))
                    + b[o]
                    for o in range(w.shape[0])
                ]
            )
            for n in range(x.shape[0])
        ]
    )


@pytest.mark.parametrize("channels_last", [False, True], ids=["channels_first", "channels_last"])
@pytest.mark.parametrize("axes", [1, 2, 3])
def test_jax_auto_takes_the_direct_method_for_groups_of_few_channels(axes, channels_last):
    # On the CPU, XLA's grouped convolution is far slower than the direct method where each group
    # holds few input channels (python -m benchmarks.grouped): "auto" takes the direct method up to
    # JaxTuning.grouped_direct_channels per group, the native convolution for wider groups and
    # dense layers, in 1, 2 and 3 dimensions. Each route is the explicit method's result exactly,
    # and scipy's.
    jnp, limit = _jax_cpu_limit("grouped_direct_channels")
    function = {1: xcorr.corr1d_multi, 2: xcorr.corr2d_multi, 3: xcorr.corr3d_multi}[axes]
    spatial, taps = {1: ((11,), (3,)), 2: ((7, 8), (3, 2)), 3: ((4, 5, 6), (2, 3, 2))}[axes]
    routes = {(4, 4): "direct", (2 * limit, 2): "direct", (2 * limit + 2, 2): "native", (6, 1): "native"}
    for (c_in, groups), route in routes.items():
        x = random((2, c_in, *spatial), seed=c_in)
        w = random((2 * groups, c_in // groups, *taps), seed=groups)
        b = random((2 * groups,), seed=3)
        expected = _grouped_oracle(x, w, b, groups)
        options = {"groups": groups}
        if channels_last:
            x, expected = np.moveaxis(x, 1, -1), np.moveaxis(expected, 1, -1)
            options["data_format"] = "channels_last"
        xj, wj, bj = (jnp.asarray(a, dtype=jnp.float32) for a in (x, w, b))
        y = function(xj, wj, bias=bj, **options)
        same = function(xj, wj, bias=bj, **options, method=route)
        assert bool(jnp.all(y == same)), (c_in, groups, route)
        np.testing.assert_allclose(np.asarray(y), expected, rtol=1e-5, atol=1e-5)


def _transpose_oracle(x, w, b, groups, stride, crop):
    """The transposed convolution of ``x`` (N, C_in, *spatial) with ``w`` (C_in, C_out // groups,
    *taps) in ``groups`` groups, stride ``stride``, ``crop`` elements cropped from each side, plus
    ``b``: every input element scattered times every tap, in float64 loops."""
    n, c_in, *spatial = x.shape
    per_in, per_out, taps = c_in // groups, w.shape[1], w.shape[2:]
    full = [(s - 1) * stride + t for s, t in zip(spatial, taps)]
    y = np.zeros((n, groups * per_out, *full))
    for tap in np.ndindex(*taps):
        window = tuple(slice(t, t + stride * (s - 1) + 1, stride) for t, s in zip(tap, spatial))
        for c in range(c_in):
            group = c // per_in
            for o in range(per_out):
                y[(slice(None), group * per_out + o, *window)] += x[:, c] * w[(c, o, *tap)]
    y = y[(slice(None), slice(None), *(slice(crop, size - crop) for size in full))]
    return y + b.reshape((-1,) + (1,) * len(spatial))


@pytest.mark.parametrize("channels_last", [False, True], ids=["channels_first", "channels_last"])
@pytest.mark.parametrize("axes", [1, 2, 3])
def test_jax_transposed_convolutions_of_few_channels_per_group_skip_lax(monkeypatch, axes, channels_last):
    # On the CPU, lax's grouped convolution (conv_transpose's lhs-dilated form) is far slower than
    # xcorr's generic adjoint where each group holds few input channels (python -m
    # benchmarks.grouped, "transposed" rows): conv_transpose1d/2d/3d take the generic adjoint up to
    # JaxTuning.grouped_transpose_direct_channels per group, lax for wider groups and dense layers.
    jnp, limit = _jax_cpu_limit("grouped_transpose_direct_channels")
    from xcorr.backends.jax import ops as jax_ops

    lax_calls = spy(monkeypatch, jax_ops, "correlate_multi_transpose")
    function = {1: xcorr.conv_transpose1d, 2: xcorr.conv_transpose2d, 3: xcorr.conv_transpose3d}[axes]
    spatial, taps = {1: ((7,), (3,)), 2: ((4, 5), (3, 2)), 3: ((3, 4, 3), (2, 3, 2))}[axes]
    routes = {(3, 3): "generic", (2 * limit, 2): "generic", (2 * limit + 2, 2): "lax", (4, 1): "lax"}
    for (c_in, groups), route in routes.items():
        x = random((2, c_in, *spatial), seed=c_in)
        w = random((c_in, 2, *taps), seed=groups)
        b = random((2 * groups,), seed=3)
        expected = _transpose_oracle(x, w, b, groups, stride=2, crop=1)
        options = {"groups": groups, "stride": 2, "padding": 1}
        if channels_last:
            x, expected = np.moveaxis(x, 1, -1), np.moveaxis(expected, 1, -1)
            options["data_format"] = "channels_last"
        before = len(lax_calls)
        y = function(*(jnp.asarray(a, dtype=jnp.float32) for a in (x, w)), bias=jnp.asarray(b, jnp.float32), **options)
        assert (len(lax_calls) > before) == (route == "lax"), (c_in, groups, route)
        np.testing.assert_allclose(np.asarray(y), expected, rtol=1e-5, atol=1e-5)


# =============================================================================
# dask: blocks through the numpy paths
# =============================================================================


@pytest.mark.parametrize("path", ["numba", "bands"])
@pytest.mark.parametrize("name", ["valid", "same-fill-conv", "full-wrap-strided", "same-symm-dilated-conv"])
def test_dask_blocks(monkeypatch, numpy_paths, path, name):
    da = require_module("dask.array")
    from xcorr.backends import dask as dask_backend

    if path == "numba":
        require_module("numba")
        force(monkeypatch, "dask", numba_min_outputs=0)
    else:
        force(monkeypatch, "dask", numba=False, band_bytes=1024, gathered_bytes=0)
    blocks = spy(monkeypatch, dask_backend, "_block")
    # One image: a batch would broadcast the kernel to one per image, which numba does not take.
    x, k, options = inputs((70, 66), (3, 4), "float64", OPTIONS[name])
    y = call("", da.from_array(x, chunks=(25, 30)), da.from_array(k), options, method="direct")
    check(y, expected_of(x, k, options), "float64")
    assert len(blocks) >= 8
    if path == "numba":
        assert numpy_paths["numba"] and all(numpy_paths["numba"])
    else:
        assert not any(numpy_paths["numba"]) and bands(numpy_paths, k.shape) > len(blocks)


# =============================================================================
# Properties: random shapes, batches, per-image kernels and dtypes on the fast paths
# =============================================================================

MODES = ("valid", "same", "full")
BOUNDARIES = ("fill", "wrap", "symm")


@st.composite
def problems(draw, dtypes=DTYPE_NAMES, max_size=48):
    """``(x, k, options)``: any dtype, batch dimensions, one kernel or one per image, every option."""
    dtype = draw(st.sampled_from(dtypes))
    batch = tuple(draw(st.lists(st.integers(1, 3), max_size=2)))
    per_image = draw(st.booleans())
    H, W = draw(st.integers(1, max_size)), draw(st.integers(1, max_size))
    h, w = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    mode = draw(st.sampled_from(MODES))
    dilation = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    if mode == "valid":
        h = min(h, (H - 1) // dilation[0] + 1)
        w = min(w, (W - 1) // dilation[1] + 1)
    k_batch = tuple(n if draw(st.booleans()) else 1 for n in batch) if per_image else ()
    options = dict(
        mode=mode,
        boundary=draw(st.sampled_from(BOUNDARIES)),
        stride=(draw(st.integers(1, 3)), draw(st.integers(1, 3))),
        dilation=dilation,
        convolve=draw(st.booleans()),
        fillvalue=draw(st.integers(-3, 3)) if dtype.startswith("int") else draw(st.floats(-2, 2)),
    )
    seed = draw(st.integers(0, 2**16))
    x, k = random((*batch, H, W), dtype, seed=seed), random((*k_batch, h, w), dtype, seed=seed + 1)
    return x, k, options


@given(problem=problems(), path=st.sampled_from(["numba", "numba-threads", "bands", "bands-threads"]))
def test_property_numpy_direct_paths(problem, path):
    x, k, options = problem
    with pytest.MonkeyPatch.context() as patch:
        if path.startswith("numba"):
            require_module("numba")
            force(patch, "numpy", numba_min_outputs=0, numba_threaded_work=0 if path.endswith("threads") else 1 << 62, threads=2)
        else:
            force(patch, "numpy", numba=False, band_bytes=256, threaded_elements=0 if path.endswith("threads") else 1 << 62, threads=2)
        numba = spy(patch, _numba, "direct", declined=None)
        y = call("", x, k, options, method="direct")
    check(y, fast_reference(x, k, **options), x.dtype.name)
    assert any(numba) == (path.startswith("numba") and k.ndim == 2 and y.size > 0)


@pytest.mark.parametrize(("block", "dilation"), [(8, 3), (16, 3), (16, 1)])
def test_tiled_fft_vjp_adds_every_tile_a_full_convolution_reaches(block, dilation):
    # A 4x4 kernel dilated by 3 spans 10: with 8- or 16-point blocks a tile (block - span + 1) is
    # shorter than the span, and a tile's full convolution lands on the next two or more tiles.
    x, k = random((30, 27), "float64", seed=3), random((4, 4), "float64", seed=4)
    options = dict(mode="full", dilation=(dilation, dilation))
    g = random(fast_reference(x, k, **options).shape, "float64", seed=5)
    with pytest.MonkeyPatch.context() as patch:
        force(patch, "numpy", overlap_min_block=block, overlap_span_factor=1, overlap_min_blocks=2, overlap_band_points=1)
        tiled = spy(patch, _numpy_fft, "_overlap_vjp")
        got = xcorr.corr2d_vjp(x, k, g, method="fft", **options)
    assert any(tiled)
    check_vjp(got, x, k, g, options, "float64", scale=True)


@given(
    problem=problems(dtypes=("float32", "float64", "complex128")),
    path=st.sampled_from(["numba", "numba-threads", "fft", "fft-tiled"]),
)
def test_property_numpy_vjp_paths(problem, path):
    x, k, options = problem
    g = random(fast_reference(x, k, **options).shape, x.dtype.name, seed=7)
    with pytest.MonkeyPatch.context() as patch:
        if path.startswith("numba"):
            require_module("numba")
            force(patch, "numpy", numba_min_outputs=0, numba_threaded_work=0 if path.endswith("threads") else 1 << 62, threads=2)
        else:
            require_module("scipy")
            if path == "fft-tiled":
                force(patch, "numpy", overlap_min_block=8, overlap_span_factor=1, overlap_min_blocks=2, overlap_band_points=1)
        fused = spy(patch, numpy_backend, "fused_vjp", declined=None)
        got = call("_vjp", x, k, g, options, method="direct" if path.startswith("numba") else "fft")
    check_vjp(got, x, k, g, options, x.dtype.name, scale=path.startswith("fft"), tol=1e-4 if x.dtype == np.float32 else None)
    real = x.dtype.kind == "f"
    spans = [d * (n - 1) + 1 for n, d in zip(k.shape[-2:], options["dilation"])]
    # a dilation that leaves gaps between the taps' windows: the VJP runs on those windows laid end
    # to end, every window inside (taps x outputs positions, fewer than the extension's)
    compacted = any(n * c < c - 1 + span for n, c, span in zip(k.shape[-2:], g.shape[-2:], spans))
    fill = options["boundary"] == "fill" or options["mode"] == "valid" or spans == [1, 1] or compacted
    if path.startswith("fft"):
        assert any(fused) == (real and options["stride"] == (1, 1) and fill)


@given(problem=problems(dtypes=("int64", "float32", "float64", "complex128"), max_size=40), path=st.sampled_from(["bands", "worker-threads"]))
def test_property_torch_paths(problem, path):
    require_module("torch")
    x, k, options = problem
    with pytest.MonkeyPatch.context() as patch:
        force(patch, "torch", small_band=16, gradient_min_plane=1, gradient_band=64, few_outputs=4)
        if path == "worker-threads":
            force(patch, "torch", pooled_elements=0, band_elements=16, pooled_kernel=0)
        y = call("", *tensors(x, k), options)
        check(y, fast_reference(x, k, **options), x.dtype.name, tol=1e-4 if x.dtype == np.float32 else None)
        if x.dtype.kind in "fc":
            g = random(y.shape, x.dtype.name, seed=7)
            _, grads = torch_vjp("", x, k, g, options)
            check_vjp(grads, x, k, g, options, x.dtype.name, tol=1e-4 if x.dtype == np.float32 else None, scale=True)


@given(problem=problems(dtypes=("float32", "float64"), max_size=40), path=st.sampled_from(["numba", "numba-threads", "xla"]))
def test_property_jax_paths(problem, path):
    require_module("jax")
    x, k, options = problem
    with pytest.MonkeyPatch.context() as patch:
        if path.startswith("numba"):
            require_module("numba")
            force(patch, "jax", numba_min_outputs=0, numba_threaded_work=0 if path.endswith("threads") else 1 << 62, threads=2)
        else:
            force(patch, "jax", numba=False, unroll_taps=8)
        g = random(fast_reference(x, k, **options).shape, x.dtype.name, seed=7)
        y, grads = jax_grads("", x, k, g, options, method="direct")
    tol = 1e-4 if x.dtype == np.float32 else None
    check(y, fast_reference(x, k, **options), x.dtype.name, tol=tol, scale=True)
    check_vjp(grads, x, k, g, options, x.dtype.name, tol=tol, scale=True)
