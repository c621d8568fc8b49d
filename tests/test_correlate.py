"""corr2d and conv2d on every backend against the float64 reference and scipy."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import xcorr

from matrix import DTYPE_NAMES, assert_result, require_module
from reference import fast_reference, random, reference

MODES = ("valid", "same", "full")
BOUNDARIES = ("fill", "wrap", "symm")
FUNCTIONS = {"corr2d": (xcorr.corr2d, False), "conv2d": (xcorr.conv2d, True)}


@pytest.mark.parametrize("name", FUNCTIONS)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("boundary", BOUNDARIES)
@pytest.mark.parametrize("kshape", [(1, 2), (2, 2), (3, 3), (2, 5), (4, 3)])
def test_modes_and_boundaries(backend, name, mode, boundary, kshape):
    f, convolve = FUNCTIONS[name]
    x, k = random((7, 9)), random(kshape, seed=1)
    y = f(backend.asarray(x), backend.asarray(k), mode=mode, boundary=boundary, fillvalue=1.5)
    expected = reference(x, k, mode=mode, boundary=boundary, fillvalue=1.5, convolve=convolve)
    assert_result(backend, y, expected, "float64")


@pytest.mark.parametrize("name", FUNCTIONS)
@pytest.mark.parametrize("mode", ("same", "full"))
@pytest.mark.parametrize("boundary", BOUNDARIES)
def test_kernel_larger_than_input_repeats_the_extension(backend, name, mode, boundary):
    # scipy gh-8684: a wrap/symm extension wider than the input keeps repeating.
    f, convolve = FUNCTIONS[name]
    x, k = random((3, 2)), random((8, 7), seed=1)
    y = f(backend.asarray(x), backend.asarray(k), mode=mode, boundary=boundary)
    expected = reference(x, k, mode=mode, boundary=boundary, convolve=convolve)
    assert_result(backend, y, expected, "float64")


@pytest.mark.parametrize("name", FUNCTIONS)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("boundary", ("fill", "wrap", "symm", "pad", "circular", "symmetric"))
def test_equals_scipy(backend, name, mode, boundary):
    signal = require_module("scipy.signal")
    f, convolve = FUNCTIONS[name]
    x, k = random((6, 8), seed=2), random((2, 4), seed=3)
    scipy_f = signal.convolve2d if convolve else signal.correlate2d
    y = f(backend.asarray(x), backend.asarray(k), mode=mode, boundary=boundary, fillvalue=-2.0)
    assert_result(backend, y, scipy_f(x, k, mode=mode, boundary=boundary, fillvalue=-2.0), "float64")


def test_scipy_conjugates_and_we_do_not(backend):
    signal = require_module("scipy.signal")
    x, k = random((5, 6), "complex128"), random((2, 3), "complex128", seed=1)
    y = xcorr.corr2d(backend.asarray(x), backend.asarray(k))
    assert_result(backend, y, signal.correlate2d(x, np.conj(k), mode="valid"), "complex128")
    assert_result(backend, y, reference(x, k), "complex128")


@pytest.mark.parametrize("dtype", ["int32", "int64", "float32", "float64", "complex64", "complex128"])
def test_dtype_is_preserved(backend, dtype):
    x, k = random((6, 7), dtype), random((3, 2), dtype, seed=1)
    y = xcorr.corr2d(backend.asarray(x), backend.asarray(k), mode="full", boundary="symm")
    assert_result(backend, y, reference(x, k, mode="full", boundary="symm"), dtype)


@pytest.mark.parametrize(
    ("x_dtype", "k_dtype", "result"),
    [
        ("int32", "int64", "int64"),
        ("float32", "float64", "float64"),
        ("float32", "int64", "float32"),
        ("int64", "float32", "float32"),
        ("float64", "complex64", "complex128"),
    ],
)
def test_dtype_promotion(backend, x_dtype, k_dtype, result):
    x, k = random((5, 5), x_dtype), random((2, 2), k_dtype, seed=1)
    y = xcorr.corr2d(backend.asarray(x), backend.asarray(k))
    assert_result(backend, y, reference(x, k), result)


@pytest.mark.parametrize("stride", [1, 2, 3, (1, 2), (3, 1)])
@pytest.mark.parametrize("dilation", [1, 2, (2, 1), (1, 3)])
@pytest.mark.parametrize("mode", MODES)
def test_stride_and_dilation(backend, stride, dilation, mode):
    x, k = random((11, 12)), random((3, 2), seed=1)
    y = xcorr.corr2d(backend.asarray(x), backend.asarray(k), mode=mode, stride=stride, dilation=dilation, boundary="wrap")
    expected = reference(x, k, mode=mode, stride=stride, dilation=dilation, boundary="wrap")
    assert_result(backend, y, expected, "float64")


@pytest.mark.parametrize(
    ("x_shape", "k_shape"),
    [
        ((4, 6, 7), (2, 3)),  # one kernel for a batch
        ((6, 7), (3, 2, 3)),  # one image, three kernels
        ((3, 6, 7), (3, 2, 3)),  # an own kernel per image
        ((2, 1, 6, 7), (3, 2, 3)),  # broadcasting batch dimensions
    ],
)
@pytest.mark.parametrize("name", FUNCTIONS)
def test_batches_broadcast(backend, x_shape, k_shape, name):
    f, convolve = FUNCTIONS[name]
    x, k = random(x_shape), random(k_shape, seed=1)
    y = f(backend.asarray(x), backend.asarray(k), mode="same")
    assert_result(backend, y, reference(x, k, mode="same", convolve=convolve), "float64")


def test_nan_and_inf_propagate(backend):
    x = random((5, 5))
    x[1, 1] = np.nan
    x[3, 4] = np.inf
    k = random((2, 2), seed=1)
    y = xcorr.corr2d(backend.asarray(x), backend.asarray(k), mode="same")
    expected = reference(x, k, mode="same")
    assert_result(backend, y, expected, "float64")
    assert np.isnan(backend.to_numpy(y)).sum() == np.isnan(expected).sum() > 0


def test_result_is_not_computed_for_dask():
    da = require_module("dask.array")
    import dask

    def refuse(*args, **kwargs):
        raise AssertionError("xcorr computed a dask graph behind the user's back")

    x = da.from_array(random((64, 64)), chunks=16)
    with dask.config.set(scheduler=refuse):
        y = xcorr.corr2d(x, da.from_array(random((3, 3))), mode="same", boundary="symm")
    assert isinstance(y, da.Array)
    np.testing.assert_allclose(y.compute(), reference(random((64, 64)), random((3, 3)), mode="same", boundary="symm"))


@pytest.mark.parametrize("name", FUNCTIONS)
def test_jax_jit(name):
    jax = require_module("jax")
    f, convolve = FUNCTIONS[name]
    x, k = random((8, 9)), random((3, 2), seed=1)
    jitted = jax.jit(lambda x, k: f(x, k, mode="same", boundary="wrap", stride=2))
    y = jitted(jax.numpy.asarray(x), jax.numpy.asarray(k))
    np.testing.assert_allclose(np.asarray(y), reference(x, k, mode="same", boundary="wrap", stride=2, convolve=convolve))


@given(
    data=st.data(),
    H=st.integers(1, 9),
    W=st.integers(1, 9),
    h=st.integers(1, 5),
    w=st.integers(1, 5),
    mode=st.sampled_from(MODES),
    boundary=st.sampled_from(BOUNDARIES),
    name=st.sampled_from(sorted(FUNCTIONS)),
    stride=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    dilation=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    fillvalue=st.floats(-3, 3),
)
def test_property_matches_reference(backend, data, H, W, h, w, mode, boundary, name, stride, dilation, fillvalue):
    f, convolve = FUNCTIONS[name]
    if mode == "valid":
        h = min(h, (H - 1) // dilation[0] + 1)
        w = min(w, (W - 1) // dilation[1] + 1)
    seed = data.draw(st.integers(0, 2**16))
    x, k = random((H, W), seed=seed), random((h, w), seed=seed + 1)
    options = dict(mode=mode, boundary=boundary, stride=stride, dilation=dilation, fillvalue=fillvalue)
    y = f(backend.asarray(x), backend.asarray(k), **options)
    assert_result(backend, y, reference(x, k, convolve=convolve, **options), "float64")


@given(
    data=st.data(),
    dtype=st.sampled_from(DTYPE_NAMES),
    batch=st.lists(st.integers(1, 3), max_size=2),
    per_image=st.booleans(),
    H=st.integers(1, 40),
    W=st.integers(1, 40),
    h=st.integers(1, 6),
    w=st.integers(1, 6),
    mode=st.sampled_from(MODES),
    boundary=st.sampled_from(BOUNDARIES),
    name=st.sampled_from(sorted(FUNCTIONS)),
    stride=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    dilation=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    method=st.sampled_from(["auto", "direct"]),
)
def test_property_batches_kernels_and_dtypes_match_reference(
    backend, data, dtype, batch, per_image, H, W, h, w, mode, boundary, name, stride, dilation, method
):
    # Every dtype, batch dimensions, a kernel per image (or broadcast along some
    # dimensions), images up to 40x40; the fast paths' thresholds are tested in
    # tests/test_fast_paths.py, which lowers them.
    f, convolve = FUNCTIONS[name]
    if mode == "valid":
        h = min(h, (H - 1) // dilation[0] + 1)
        w = min(w, (W - 1) // dilation[1] + 1)
    seed = data.draw(st.integers(0, 2**16))
    k_batch = tuple(n if data.draw(st.booleans()) else 1 for n in batch) if per_image else ()
    fillvalue = data.draw(st.integers(-3, 3) if dtype.startswith("int") else st.floats(-3, 3))
    x, k = random((*batch, H, W), dtype, seed=seed), random((*k_batch, h, w), dtype, seed=seed + 1)
    options = dict(mode=mode, boundary=boundary, stride=stride, dilation=dilation, fillvalue=fillvalue)
    y = f(backend.asarray(x), backend.asarray(k), method=method, **options)
    expected = fast_reference(x, k, convolve=convolve, **options)
    if not dtype.startswith("int") and method == "auto":
        # auto may take the FFT, whose rounding follows the largest values.
        assert y.dtype == backend.dtype(dtype) and tuple(y.shape) == expected.shape
        scale = max(1.0, float(np.abs(expected).max(initial=0)))
        tol = 1e-4 if dtype in ("float32", "complex64") else 1e-10
        np.testing.assert_allclose(backend.to_numpy(y), expected, rtol=tol, atol=tol * scale)
        return
    assert_result(backend, y, expected, dtype)
