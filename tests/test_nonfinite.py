"""The non-finite rule (issue 25, items 2, 3 and 5): NaN and inf stay where IEEE arithmetic on the
direct sum puts them, whatever the method, the backend, the pass (forward or backward) or the
precision.

* ``method="auto"`` never changes which outputs are non-finite (it may take an FFT only where the
  inputs are finite), checked against an IEEE direct reference in NumPy loops;
* the input gradient with an infinite kernel tap holds NaN exactly where torch's and jax's own
  autodiff of their convolutions do;
* a float16 ``fillvalue`` beyond float16's range acts as the infinity that padding the image with it
  gives (``np.pad``), not as the float32 value.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import xcorr

from matrix import backends_where, require_module


def _direct_valid(xe: np.ndarray, k: np.ndarray, dtype) -> np.ndarray:
    """IEEE shift-and-add "valid" correlation of the last two axes, in ``dtype`` (NumPy, no xcorr)."""
    h, w = k.shape
    rows, cols = xe.shape[-2] - h + 1, xe.shape[-1] - w + 1
    xe, k = xe.astype(dtype), k.astype(dtype)
    total = np.zeros((*xe.shape[:-2], rows, cols), dtype=dtype)
    with np.errstate(invalid="ignore", over="ignore"):
        for a in range(h):
            for b in range(w):
                total = total + xe[..., a : a + rows, b : b + cols] * k[a, b]
    return total


# -- item 5: a float16 fill beyond float16's range -----------------------------------------------

@pytest.mark.parametrize("fillvalue", [70000.0, -70000.0, 65520.0, 65519.0, 0.1, 3])
def test_float16_fill_acts_as_the_padded_value(backend, fillvalue):
    """corr2d and corr2d_multi in "same" mode against np.pad(float16 image, fill) then IEEE sums."""
    try:
        backend.asarray(np.zeros(1, np.float16))
    except TypeError:
        pytest.skip(f"{backend.name} has no float16")
    if backend.gpu:
        pytest.skip(f"{backend.name}: the float16 fill is the core's, checked on the CPU backends")
    x = (np.arange(30).reshape(5, 6) % 4).astype(np.float16)
    k = np.array([[0.5, 1.0, 0.0], [2.0, 0.5, 1.0], [1.0, 0.0, 0.5]], dtype=np.float16)
    with np.errstate(over="ignore", invalid="ignore"):  # numpy warns of its inf * 0 (under xcorr too)
        padded = np.pad(x, 1, constant_values=np.float16(fillvalue))  # the fill as float16 holds it
        # Integers and halves: every float32 sum is exact, so one rounding to float16 is the answer.
        expected = _direct_valid(padded, k, np.float32).astype(np.float16)
        assert padded.dtype == np.float16
        if abs(fillvalue) > 65520:
            assert np.isinf(padded[0, 0]) and not np.isfinite(expected).all()
        xb, kb = backend.asarray(x), backend.asarray(k)
        for method in ("direct", "auto"):
            y = xcorr.corr2d(xb, kb, mode="same", fillvalue=fillvalue, method=method)
            got = backend.to_numpy(y)
            assert got.dtype == np.float16
            np.testing.assert_array_equal(got, expected)
            ym = xcorr.corr2d_multi(xb[None, None], kb[None, None], mode="same", fillvalue=fillvalue, method=method)
            np.testing.assert_array_equal(backend.to_numpy(ym)[0, 0], expected)


# -- item 2: method="auto" keeps NaN and inf where the direct sum has them -----------------------


def _picks_fft(backend, xb, kb, mode) -> bool:
    """Whether the cost model takes the FFT for this call (the precondition of the NaN tests)."""
    from xcorr import _cost_model
    from xcorr._options import Options, plan

    xp = backend.xp
    adapter = xcorr.adapter_for(xp)
    geometry = plan(tuple(xb.shape), tuple(kb.shape), Options(mode=mode))
    costs = adapter.costs(tuple(kb.shape), geometry)
    kind = _cost_model.dtype_kind(xp, xb.dtype)
    return _cost_model.choose_method(costs, kind, tuple(xb.shape), tuple(kb.shape), geometry) == "fft"


@pytest.mark.parametrize("mode", ["valid", "same"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_auto_keeps_non_finite_outputs_where_direct_has_them(backend, mode, dtype, bad):
    """One NaN (or inf) pixel in an image large enough that "auto" picks the FFT."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((256, 256)).astype(dtype)
    x[100, 140] = bad
    k = rng.standard_normal((31, 31)).astype(dtype)
    pad = 15 if mode == "same" else 0
    expected = _direct_valid(np.pad(x.astype(np.float64), pad), k.astype(np.float64), np.float64)
    xb, kb = backend.asarray(x), backend.asarray(k)
    assert _picks_fft(backend, xb, kb, mode), "the image is too small for auto to take the FFT"
    with np.errstate(invalid="ignore"):  # numpy's inf - inf (under xcorr too)
        got = backend.to_numpy(xcorr.corr2d(xb, kb, mode=mode))
        np.testing.assert_array_equal(~np.isfinite(got), ~np.isfinite(expected))
        assert 0 < (~np.isfinite(got)).sum() < got.size / 20
        finite = np.isfinite(expected)
        np.testing.assert_allclose(got[finite], expected[finite], rtol=1e-3, atol=1e-3)
        # The FFT still serves finite inputs (the same call, the NaN replaced).
        x[100, 140] = 0.5
        y = backend.to_numpy(xcorr.corr2d(backend.asarray(x), kb, mode=mode))
        assert np.isfinite(y).all()


def _kernel_gradient(x: np.ndarray, g: np.ndarray, taps: tuple[int, ...], multi: bool) -> np.ndarray:
    """IEEE kernel gradient of a "valid" correlation (NumPy, no xcorr): per tap, the sum of ``g`` times the
    window of ``x`` that tap reads (``multi``: ``x`` (N, C, ...), ``g`` (N, O, ...), result (O, C, *taps))."""
    out = g.shape[2 if multi else 1 :]
    result = np.zeros(((g.shape[1], x.shape[1]) if multi else ()) + taps)
    with np.errstate(invalid="ignore"):
        for tap in np.ndindex(*taps):
            window = x[(..., *(slice(t, t + n) for t, n in zip(tap, out)))]
            if multi:  # (N, O, 1, ...) * (N, 1, C, ...) summed over N and the outputs
                spatial = tuple(range(3, 3 + len(taps)))
                result[(..., *tap)] = (g[:, :, None] * window[:, None]).sum(axis=(0, *spatial))
            else:
                result[tap] = (g * window).sum()
    return result


@pytest.mark.parametrize(
    ("function", "x_shape", "k_shape"),
    [
        ("corr2d_vjp", (2, 64, 64), (17, 17)),
        ("corr3d_vjp", (2, 24, 24, 24), (9, 9, 9)),
        ("corr2d_multi_vjp", (2, 3, 64, 64), (4, 3, 17, 17)),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_auto_vjp_keeps_a_nan_pixel_on_the_taps_that_read_it(backend, function, x_shape, k_shape):
    """A NaN in the corner of ``x``, in calls whose kernels are large enough for "auto" to take the FFT on
    finite inputs: the kernel gradient is NaN on the taps whose windows read that pixel only, as the direct
    method's, and the input gradient nowhere (the kernel gradient through the FFT, or through jax's grouped
    convolution of the planes, spread it)."""
    multi = "multi" in function
    rng = np.random.default_rng(2)
    x, k = rng.standard_normal(x_shape), rng.standard_normal(k_shape)
    taps = k_shape[2:] if multi else k_shape
    g = rng.standard_normal(x_shape[:1] + k_shape[:1] * multi + tuple(n - t + 1 for n, t in zip(x_shape[-len(taps) :], taps)))
    x[(0,) * x.ndim] = np.nan
    want = _kernel_gradient(x, g, taps, multi)
    gx, gk = (backend.to_numpy(a) for a in getattr(xcorr, function)(*(backend.asarray(a) for a in (x, k, g))))
    assert np.isfinite(gx).all()
    np.testing.assert_array_equal(np.isnan(gk), np.isnan(want))
    assert np.isnan(want).sum() == (k_shape[0] if multi else 1)  # one tap (per output channel) reads the pixel
    finite = np.isfinite(want)
    np.testing.assert_allclose(gk[finite], want[finite], rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("backend", backends_where(lambda b: b.adapter.native), ids=str)
def test_native_planes_with_their_own_kernels_keep_a_nan_in_its_plane(backend):
    """method="native" with one kernel per plane: a NaN of plane 0 stays in plane 0 (XLA's grouped
    convolution of the planes put it on the same output of every plane)."""
    backend.require()
    rng = np.random.default_rng(3)
    x, k = rng.standard_normal((3, 20, 20)), rng.standard_normal((3, 3, 3))
    x[0, 0, 0] = np.nan
    got = backend.to_numpy(xcorr.corr2d(backend.asarray(x), backend.asarray(k), method="native"))
    want = np.stack([_direct_valid(p, q, np.float64) for p, q in zip(x, k)])
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_allclose(got[np.isfinite(want)], want[np.isfinite(want)], rtol=1e-12, atol=1e-12)


def test_auto_keeps_nan_local_under_jax_jit():
    """Under jit the values are not known when the method is chosen: the choice is made in the program."""
    jax = require_module("jax")
    rng = np.random.default_rng(1)
    x = rng.standard_normal((256, 256)).astype(np.float32)
    k = rng.standard_normal((31, 31)).astype(np.float32)
    x[10, 20] = np.nan
    expected = _direct_valid(x.astype(np.float64), k.astype(np.float64), np.float64)
    f = jax.jit(lambda a, b: xcorr.corr2d(a, b))
    got = np.asarray(f(jax.numpy.asarray(x), jax.numpy.asarray(k)))
    np.testing.assert_array_equal(~np.isfinite(got), ~np.isfinite(expected))
    # jax.grad through the choice: finite inputs, the gradient of the sum is the FFT's, finite.
    x[10, 20] = 0.0
    gk = jax.grad(lambda b: xcorr.corr2d(jax.numpy.asarray(x), b).sum())(jax.numpy.asarray(k))
    assert np.isfinite(np.asarray(gk)).all()


# -- item 3: gradients with a non-finite kernel tap ----------------------------------------------

GRAD_CASES = [
    ({"mode": "valid"}, 0, 1, 1),
    ({"mode": "same"}, 1, 1, 1),
    ({"padding": 1, "stride": 2}, 1, 2, 1),
    ({"padding": 2, "dilation": 2}, 2, 1, 2),
]


def _grad_data(seed: int):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, 11, 12))
    k = rng.standard_normal((3, 3))
    k[0, 2], k[2, 0] = np.inf, -np.inf
    return x, k


def _torch_reference(x, k, g, pad, stride, dilation):
    """The gradients of torch's own F.conv2d by its autograd, float64."""
    torch = require_module("torch")
    xt = torch.tensor(x[:, None], requires_grad=True)
    kt = torch.tensor(k[None, None], requires_grad=True)
    y = torch.nn.functional.conv2d(xt, kt, padding=pad, stride=stride, dilation=dilation)
    y.backward(torch.tensor(g[:, None]))
    return xt.grad.numpy()[:, 0], kt.grad.numpy()[0, 0], y.detach().numpy()[:, 0]


def _assert_same_ieee(got, expected):
    """Same NaN positions, same infinities, and the finite values equal to rounding."""
    got = np.asarray(got)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(expected))
    np.testing.assert_array_equal(np.isposinf(got), np.isposinf(expected))
    np.testing.assert_array_equal(np.isneginf(got), np.isneginf(expected))
    finite = np.isfinite(expected)
    np.testing.assert_allclose(got[finite], expected[finite], rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize(("options", "pad", "stride", "dilation"), GRAD_CASES)
def test_vjp_with_infinite_taps_matches_torch_autograd(backend, options, pad, stride, dilation):
    x, k = _grad_data(2)
    torch = require_module("torch")
    shape = torch.nn.functional.conv2d(
        torch.zeros((2, 1, 11, 12), dtype=torch.float64), torch.zeros((1, 1, 3, 3), dtype=torch.float64),
        padding=pad, stride=stride, dilation=dilation,
    ).shape  # fmt: skip
    g = np.random.default_rng(3).standard_normal((2, shape[2], shape[3]))
    g[0, 0, 0] = g[1, 2, 3] = 0.0  # inf * 0 in the real terms: NaN there, in every library
    ref_x, ref_k, _ = _torch_reference(x, k, g, pad, stride, dilation)
    assert np.isnan(ref_x).any() and np.isinf(ref_x).any()
    with np.errstate(invalid="ignore"):
        gx, gk = xcorr.corr2d_vjp(backend.asarray(x), backend.asarray(k), backend.asarray(g), **options)
        _assert_same_ieee(backend.to_numpy(gx), ref_x)
        _assert_same_ieee(backend.to_numpy(gk), ref_k)


@pytest.mark.parametrize(("options", "pad", "stride", "dilation"), GRAD_CASES)
def test_autodiff_through_corr2d_with_infinite_taps_matches_the_libraries(options, pad, stride, dilation):
    """torch autograd and jax.vjp through xcorr.corr2d against their own convolutions' autodiff."""
    torch = require_module("torch")
    jax = require_module("jax")
    x, k = _grad_data(4)
    shape = torch.nn.functional.conv2d(
        torch.zeros((2, 1, 11, 12), dtype=torch.float64), torch.zeros((1, 1, 3, 3), dtype=torch.float64),
        padding=pad, stride=stride, dilation=dilation,
    ).shape  # fmt: skip
    g = np.random.default_rng(5).standard_normal((2, shape[2], shape[3]))
    g[1, 1, 1] = 0.0
    ref_x, ref_k, _ = _torch_reference(x, k, g, pad, stride, dilation)

    xt = torch.tensor(x, requires_grad=True)
    kt = torch.tensor(k, requires_grad=True)
    xcorr.corr2d(xt, kt, **options).backward(torch.tensor(g))
    _assert_same_ieee(xt.grad.numpy(), ref_x)
    _assert_same_ieee(kt.grad.numpy(), ref_k)

    with jax.enable_x64(True):
        jnp, lax = jax.numpy, jax.lax
        xj, kj, gj = jnp.asarray(x), jnp.asarray(k), jnp.asarray(g)

        def lax_conv(a, b):
            return lax.conv_general_dilated(
                a[:, None], b[None, None], (stride, stride), [(pad, pad), (pad, pad)],
                rhs_dilation=(dilation, dilation), precision=lax.Precision.HIGHEST,
            )[:, 0]  # fmt: skip

        _, pullback = jax.vjp(lax_conv, xj, kj)
        lax_x, lax_k = pullback(gj)
        _assert_same_ieee(np.asarray(lax_x), ref_x)  # the two libraries agree: one IEEE answer
        _, pullback = jax.vjp(lambda a, b: xcorr.corr2d(a, b, **options), xj, kj)
        got_x, got_k = pullback(gj)
        _assert_same_ieee(np.asarray(got_x), np.asarray(lax_x))
        _assert_same_ieee(np.asarray(got_k), np.asarray(lax_k))
        got_x = jax.jit(lambda a, b, c: jax.vjp(lambda u, v: xcorr.corr2d(u, v, **options), a, b)[1](c))(xj, kj, gj)[0]
        _assert_same_ieee(np.asarray(got_x), np.asarray(lax_x))


@pytest.mark.parametrize(("options", "pad", "stride", "dilation"), [
    ({"mode": "valid"}, 0, 1, 1),
    ({"mode": "same"}, 4, 1, 1),
    ({"padding": 3, "stride": 2}, 3, 2, 1),
    ({"padding": 2, "dilation": 2}, 2, 1, 2),
])  # fmt: skip
def test_jax_large_kernel_with_infinite_taps_matches_lax_under_jit(options, pad, stride, dilation):
    """A 9x9 kernel is past UNROLLED_TAPS: the taps' scatter runs as one lax.fori_loop in the program."""
    jax = require_module("jax")
    from xcorr.backends.jax import ops

    assert ops.UNROLLED_TAPS < 81
    rng = np.random.default_rng(8)
    x, k = rng.standard_normal((2, 23, 21)), rng.standard_normal((9, 9))
    k[2, 3], k[6, 1], k[4, 8] = np.inf, -np.inf, np.nan
    with jax.enable_x64(True):
        jnp, lax = jax.numpy, jax.lax
        xj, kj = jnp.asarray(x), jnp.asarray(k)

        def lax_conv(a, b):
            return lax.conv_general_dilated(
                a[:, None], b[None, None], (stride, stride), [(pad, pad), (pad, pad)],
                rhs_dilation=(dilation, dilation), precision=lax.Precision.HIGHEST,
            )[:, 0]  # fmt: skip

        y, pullback = jax.vjp(lax_conv, xj, kj)
        g = jnp.asarray(rng.standard_normal(y.shape))
        lax_x = np.asarray(pullback(g)[0])
        assert np.isnan(lax_x).any()
        grad_x = jax.jit(lambda a, b, c: jax.vjp(lambda u, v: xcorr.corr2d(u, v, **options), a, b)[1](c)[0])
        _assert_same_ieee(np.asarray(grad_x(xj, kj, g)), lax_x)


@pytest.mark.parametrize(
    "options",
    [
        {"mode": "valid"},
        {"mode": "same", "boundary": "symm"},
        {"mode": "full", "boundary": "wrap", "stride": 2},
        {"padding": 3, "stride": (2, 3), "dilation": (2, 1)},
        {"mode": "same", "boundary": "reflect", "stride": 3, "dilation": 3},
    ],
)
def test_chunked_dask_vjp_with_infinite_taps_matches_numpy(options):
    """dask's blockwise input gradient, over many chunks, holds NaN and inf where numpy's IEEE one does."""
    da = require_module("dask.array")
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 23, 19))
    k = rng.standard_normal((3, 4))
    k[0, 3], k[2, 0] = np.inf, -np.inf
    y = xcorr.corr2d(x, np.ones_like(k), **options)
    g = rng.standard_normal(y.shape)
    g[0, ::3, ::2] = 0.0
    with np.errstate(invalid="ignore"):
        ref_x, ref_k = xcorr.corr2d_vjp(x, k, g, **options)
        assert np.isnan(ref_x).any() and np.isfinite(ref_x).any()
        gx, gk = xcorr.corr2d_vjp(
            da.from_array(x, chunks=(1, 5, 4)), da.from_array(k), da.from_array(g, chunks=(1, 3, 4)), **options
        )
        _assert_same_ieee(gx.compute(), ref_x)
        _assert_same_ieee(gk.compute(), ref_k)


# -- the transposed convolution with an infinite kernel tap ------------------------------------


@pytest.mark.parametrize(
    "options",
    [dict(), dict(stride=2, padding=1), dict(dilation=2, output_padding=1, stride=2), dict(padding=(1, 2))],
    ids=["plain", "strided-padded", "dilated", "asymmetric"],
)
def test_transposed_convolution_with_infinite_taps_matches_torch(backend, options):
    # Every output of a transposed convolution sums products of x with taps: an inf tap gives
    # +-inf where it lands, NaN only where +inf and -inf meet, as torch's F.conv_transpose2d says.
    torch = require_module("torch")
    rng = np.random.default_rng(5)
    x, w = rng.standard_normal((2, 2, 6, 5)), rng.standard_normal((2, 3, 3, 3))
    w[0, 0, 1, 1], w[1, 2, 0, 2] = np.inf, -np.inf
    x[0, 0, 2, 2] = 0.0  # inf * 0: NaN there
    expected = torch.nn.functional.conv_transpose2d(torch.tensor(x), torch.tensor(w), **options).numpy()
    single = torch.nn.functional.conv_transpose2d(torch.tensor(x[:, :1]), torch.tensor(w[:1, :1]), **options).numpy()[:, 0]
    assert np.isinf(expected).any() and np.isnan(single).any()
    with np.errstate(invalid="ignore", over="ignore"):
        got = xcorr.conv_transpose2d(backend.asarray(x), backend.asarray(w), **options)
        _assert_same_ieee(backend.to_numpy(got), expected)
        got = xcorr.corr2d_transpose(backend.asarray(x[:, 0]), backend.asarray(w[0, 0]), **options)
        _assert_same_ieee(backend.to_numpy(got), single)


# -- a fillvalue beyond a float dtype's range rounds as IEEE does ------------------------------


def test_fillvalue_beyond_a_float_range_rounds_as_ieee(backend):
    x = backend.asarray(np.ones((3, 3)), dtype="float32")
    k = backend.asarray(np.ones((1, 1)), dtype="float32")
    k2 = backend.asarray(np.asarray([[1.0, 0.0]]), dtype="float32")
    for fillvalue, edge in ((1e300, math.inf), (-1e300, -math.inf), (3.4028235e38 * (1 + 1e-9), float(np.finfo(np.float32).max))):
        y = backend.to_numpy(xcorr.corr2d(x, k, mode="same", fillvalue=fillvalue))
        np.testing.assert_array_equal(y, np.ones((3, 3), np.float32))  # a 1x1 kernel reads no fill
        with np.errstate(invalid="ignore"):  # the last column's fill * 0 is NaN for an infinite fill
            y = backend.to_numpy(xcorr.corr2d(x, k2, mode="full", fillvalue=fillvalue))
        np.testing.assert_array_equal(y[:, 0], [edge] * 3)  # the fill, as the dtype holds it
        np.testing.assert_array_equal(y[:, 1:3], np.ones((3, 2), np.float32))
        np.testing.assert_array_equal(y[:, 3], [math.nan if math.isinf(edge) else 1.0] * 3)


# -- non-finite kernels: IEEE arithmetic on the extended input ---------------------------------


def _input_gradient_reference(x, k, g, mode):
    """``gx``: the products of the forward's terms, ``g[i, j] * k[a, b]``, summed onto the extended
    input position they read, on x's positions (issue 25: no fill or zero outside ``g`` meets the
    kernel, as in the autodiff of ``F.conv2d`` and ``lax.conv_general_dilated``)."""
    rows, cols = g.shape
    ge = np.zeros((rows + k.shape[0] - 1, cols + k.shape[1] - 1))  # the gradient of the extended input
    for a in range(k.shape[0]):
        for b in range(k.shape[1]):
            ge[a : a + rows, b : b + cols] += g * k[a, b]
    # where x starts in the extended input: "full" extends it by k's size - 1 before, "same" by
    # (size - 1) // 2 ("full" cropped from size // 2, as tests/reference.py crops it)
    h, w = k.shape
    r0, c0 = (h - 1, w - 1) if mode == "full" else ((h - 1) // 2, (w - 1) // 2)
    return ge[r0 : r0 + x.shape[0], c0 : c0 + x.shape[1]]


NON_FINITE_CASES = [
    ((1, 1), [[math.inf, 1.0]]),  # the reproducer: [[nan, inf]] in "full"
    ((5, 6), [[1.0, math.inf, 2.0], [math.nan, 1.0, -math.inf]]),
    ((6, 5), [[-math.inf, 1.0], [2.0, 3.0]]),
    ((150, 130), [[1.0, math.inf, 2.0], [3.0, 1.0, -math.inf]]),  # numba's kernels and custom calls
]


@pytest.mark.parametrize("mode", ["full", "same"])
@pytest.mark.parametrize(("shape", "kernel"), NON_FINITE_CASES, ids=lambda v: str(v) if isinstance(v, tuple) else "k")
def test_non_finite_kernels_follow_ieee_on_the_extended_input(backend, mode, shape, kernel):
    from reference import reference

    with np.errstate(invalid="ignore"):  # numpy warns of its 0 * inf (numpy's arrays under xcorr too)
        _check_non_finite(backend, mode, shape, kernel, reference)


def _check_non_finite(backend, mode, shape, kernel, reference):
    rng = np.random.default_rng(1)
    x = rng.standard_normal(shape)
    k = np.asarray(kernel)
    expected = reference(x, k, mode=mode)
    if mode == "full":
        assert np.isnan(expected).any()  # the fill's 0 * inf is part of the answer
    g = np.abs(rng.standard_normal(expected.shape)) + 0.5  # no 0 * inf inside g itself
    gx_expected = _input_gradient_reference(x, k, g, mode)
    for method in ("auto", "direct"):
        y = backend.to_numpy(xcorr.corr2d(backend.asarray(x), backend.asarray(k), mode=mode, method=method))
        np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-12, equal_nan=True, err_msg=f"{method} forward")
        gx, _ = xcorr.corr2d_vjp(backend.asarray(x), backend.asarray(k), backend.asarray(g), mode=mode, method=method)
        np.testing.assert_allclose(
            backend.to_numpy(gx), gx_expected, rtol=1e-12, atol=1e-12, equal_nan=True, err_msg=f"{method} input gradient"
        )
