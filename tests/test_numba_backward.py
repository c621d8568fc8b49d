"""The fused direct backward (backends/_numba_backward.py) against the independent oracle ``reference_vjp``.

Each test asserts that the fused pass ran (a spy on ``_numba_backward.vjp``),
at the size where it runs by default or with numba's thresholds lowered,
on one chunk of rows and split between threads, with groups of one row
(every group boundary) and of the default size; and that the inputs it does
not take (integers, strides, other boundaries) do not reach it.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import xcorr

import reference
from matrix import require_module, tolerance
from paths import force, spy
from reference import random, reference_vjp

OPTIONS = {
    "valid": dict(),
    "same-fill-conv": dict(mode="same", fillvalue=0.5, convolve=True),
    "full-fill-dilated": dict(mode="full", fillvalue=-1.0, dilation=(1, 3)),
    "same-zero-fill-dilated": dict(mode="same", dilation=2),
    "full-fill-dilated-rows": dict(mode="full", fillvalue=2.0, dilation=(3, 1)),
}


@pytest.fixture
def backward():
    require_module("numba")
    from xcorr.backends import _numba, _numba_backward

    return _numba, _numba_backward


@pytest.fixture
def fused(monkeypatch, backward):
    """The calls of the fused backward: whether each one gave both gradients."""
    _numba, _numba_backward = backward
    monkeypatch.setattr(_numba, "FUSED_BACKWARD", True)
    return spy(monkeypatch, _numba_backward, "vjp", declined=None)


@pytest.fixture(params=["one-chunk", "threaded-chunks"])
def small(request, monkeypatch, backward):
    """numba's kernels on every size, on one chunk of rows or many split between two threads."""
    work = 0 if request.param == "threaded-chunks" else 1 << 62
    force(monkeypatch, "numpy", numba_min_outputs=0, numba_threaded_work=work, threads=2)
    return request.param


def vjp(x, k, g, options):
    options = dict(options)
    convolve = options.pop("convolve", False)
    f = xcorr.conv2d_vjp if convolve else xcorr.corr2d_vjp
    return f(x, k, g, **options, method="direct")


def forward(x, k, options):
    options = dict(options)
    convolve = options.pop("convolve", False)
    wide = np.result_type(x, np.float64)
    return (xcorr.conv2d if convolve else xcorr.corr2d)(x.astype(wide), k.astype(wide), **options)


def check(got, x, k, g, options, dtype):
    gx, gk = reference_vjp(x, k, g, **options)
    t = tolerance(dtype)["rtol"]
    for a, b in zip(got, (gx, gk)):
        assert a.dtype == np.dtype(dtype) and a.shape == b.shape
    np.testing.assert_allclose(got[0], gx, rtol=t, atol=t * math.sqrt(k.size))
    # Each kernel-gradient entry sums one product per output: rounding grows with their count.
    np.testing.assert_allclose(got[1], gk, rtol=t * math.sqrt(g[0].size), atol=t * math.sqrt(g.size))


@pytest.mark.parametrize("group_rows", ["one-row", "default"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", OPTIONS)
def test_fused_backward_matches_reference(monkeypatch, backward, fused, small, name, dtype, group_rows):
    if group_rows == "one-row":
        monkeypatch.setattr(backward[1], "GROUP_BYTES", 1)
    options = OPTIONS[name]
    x, k = random((2, 41, 37), dtype), random((4, 5), dtype, seed=1)
    g = random(forward(x, k, options).shape, dtype, seed=2)
    check(vjp(x, k, g, options), x, k, g, options, dtype)
    assert fused == [True]


@pytest.mark.parametrize("x_shape", [(130, 130), (2, 400, 400)], ids=["single", "threaded"])
@pytest.mark.parametrize("name", ["valid", "same-fill-conv", "full-fill-dilated"])
def test_fused_backward_at_default_sizes(fused, name, x_shape):
    options = OPTIONS[name]
    x, k = random(x_shape, "float32"), random((3, 3), "float32", seed=1)
    g = random(forward(x, k, options).shape, "float32", seed=2)
    check(xcorr.conv2d_vjp(x, k, g, **{o: v for o, v in options.items() if o != "convolve"})
          if options.get("convolve") else xcorr.corr2d_vjp(x, k, g, **options), x, k, g, options, "float32")
    assert fused == [True]


def windowed_kernel_gradient(x, g, options):
    """``gk[a, b] = sum(g * window (a, b) of the padded x)``, only the windows the outputs read
    (``reference_vjp`` also multiplies the zeros of the cropped-away outputs, so an inf anywhere
    in x makes every entry NaN; xcorr's direct paths reach only the taps whose windows meet it)."""
    options = dict(options)
    convolve = options.pop("convolve", False)
    dh, dw = reference._pair(options.get("dilation", 1))
    k_shape = KERNEL
    pads, _full, ((r0, nr), (c0, nc)) = reference._geometry(
        x.shape, k_shape, mode=options.get("mode", "valid"), dilation=(dh, dw), convolve=convolve
    )
    xe = reference._pad(x, pads, "fill", options.get("fillvalue", 0))
    gk = np.empty(k_shape)
    for a in range(k_shape[0]):
        for b in range(k_shape[1]):
            window = xe[..., r0 + a * dh : r0 + a * dh + nr, c0 + b * dw : c0 + b * dw + nc]
            gk[a, b] = np.sum(g * window)
    return gk[::-1, ::-1] if convolve else gk


KERNEL = (3, 4)


@pytest.mark.parametrize("name", ["valid", "same-fill-conv", "full-fill-dilated"])
def test_fused_backward_leaves_a_non_finite_kernel_to_the_tap_by_tap_gradient(fused, small, name):
    # A NaN or inf tap: the input gradient is built from the forward's own products only
    # (tests/test_nonfinite.py checks it against torch and lax autograd), not by the fused pass,
    # whose full correlation would multiply the tap by the zeros outside g.
    options = OPTIONS[name]
    x, k = random((2, 33, 29), "float64"), random(KERNEL, "float64", seed=1)
    k[1, 2] = np.inf
    g = random(forward(x, k, options).shape, "float64", seed=2)
    gx, _ = vjp(x, k, g, options)
    assert fused == []
    assert not np.isfinite(gx).all()


@pytest.mark.parametrize("where", ["x", "g"])
@pytest.mark.parametrize("name", ["valid", "same-fill-conv", "full-fill-dilated"])
def test_fused_backward_non_finite(fused, small, name, where):
    # IEEE: NaN and inf reach the gradients where the direct formula puts them: the input gradient
    # as reference_vjp (k[a, b] times the zeros outside g too), the kernel gradient at the taps
    # whose windows meet them.
    options = OPTIONS[name]
    x, k = random((2, 33, 29), "float64"), random(KERNEL, "float64", seed=1)
    g = random(forward(x, k, options).shape, "float64", seed=2)
    a = {"x": x, "k": k, "g": g}[where]
    a[..., 1, 2] = np.nan
    a[..., -1, 0] = np.inf
    a[..., 0, -1] = -np.inf
    got = vjp(x, k, g, options)
    with np.errstate(invalid="ignore"):  # the oracles' own inf * 0
        expected = reference_vjp(x, k, g, **options)[0], windowed_kernel_gradient(x, g, options)
    assert fused == [True]
    for ours, theirs in zip(got, expected):
        np.testing.assert_array_equal(np.isnan(ours), np.isnan(theirs))
        np.testing.assert_array_equal(np.isposinf(ours), np.isposinf(theirs))
        np.testing.assert_array_equal(np.isneginf(ours), np.isneginf(theirs))
        finite = np.isfinite(theirs)
        np.testing.assert_allclose(ours[finite], theirs[finite], rtol=1e-12, atol=1e-12 * math.sqrt(g.size))
    if where == "g":  # non-finite g: the kernel gradient is reference_vjp's too
        np.testing.assert_array_equal(np.isnan(got[1]), np.isnan(expected_full(x, k, g, options)))


def expected_full(x, k, g, options):
    with np.errstate(invalid="ignore"):
        return reference_vjp(x, k, g, **options)[1]


@pytest.mark.parametrize(
    ("dtype", "options"),
    [
        ("int32", dict()),
        ("int64", dict(mode="same", fillvalue=3)),
        ("complex128", dict()),
        ("float64", dict(stride=2)),
        ("float64", dict(mode="same", boundary="symm")),
    ],
    ids=["int32", "int64-fill", "complex", "strided", "symm"],
)
def test_fused_backward_not_taken(fused, small, dtype, options):
    # Integers wrap as the reference does on their own path; the fused pass is for real floats, stride 1, fill.
    x, k = random((2, 41, 37), dtype), random((3, 3), dtype, seed=1)
    g = random(forward(x, k, options).shape, dtype, seed=2)
    gx, gk = vjp(x, k, g, options)
    rgx, rgk = reference_vjp(x, k, g, **options)
    if dtype.startswith("int"):
        np.testing.assert_array_equal(gx, rgx.astype(dtype))
        np.testing.assert_array_equal(gk, rgk.astype(dtype))
    else:
        np.testing.assert_allclose(gx, rgx, rtol=1e-12, atol=1e-11)
        np.testing.assert_allclose(gk, rgk, rtol=1e-12, atol=1e-10)
    assert fused == []


@pytest.mark.parametrize("name", ["valid", "same-fill-conv", "full-fill-dilated", "full-fill-dilated-rows"])
def test_chunked_backward_without_the_fused_pass(monkeypatch, backward, small, name):
    # FUSED_BACKWARD off: _numba.vjp's two passes per chunk of rows (the benchmarks' A/B baseline).
    _numba, _numba_backward = backward
    monkeypatch.setattr(_numba, "FUSED_BACKWARD", False)
    fused = spy(monkeypatch, _numba_backward, "vjp")
    chunked = spy(monkeypatch, _numba, "vjp", declined=None)
    options = OPTIONS[name]
    x, k = random((2, 41, 37), "float64"), random((4, 5), "float64", seed=1)
    g = random(forward(x, k, options).shape, "float64", seed=2)
    check(vjp(x, k, g, options), x, k, g, options, "float64")
    assert chunked == [True] and fused == []
