"""float16 and bfloat16: computed in float32, rounded once, as the native convolutions return them.

xcorr's rule: half-precision operands are cast to float32, every product and
sum runs in float32 (any method, so "fft" and "auto" work), and the result
is rounded to the half dtype once. The error against the float64 reference
of the same (half-rounded) inputs is then the output's rounding plus float32
sums: relative to the largest output, at most ``TOLERANCE[dtype]`` (about
two units in the last place of the half dtype).
"""

from __future__ import annotations

import sys

import numpy as np
import pytest

import xcorr

from matrix import require_module
from reference import reference, reference_multi

# Relative to the largest |output|: float16 has 11 significant bits, bfloat16 8.
TOLERANCE = {"float16": 2e-3, "bfloat16": 1e-2}
HALF = ("float16", "bfloat16")
METHODS = ("auto", "direct", "fft", "native")


def random(shape, seed):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def assert_close(got, expected, dtype):
    np.testing.assert_allclose(
        got, expected, rtol=0, atol=TOLERANCE[dtype] * np.max(np.abs(expected))
    )


def _torch(dtype):
    torch = require_module("torch")
    return torch, getattr(torch, dtype)


def _jax(dtype):
    jax = require_module("jax")
    return jax, getattr(jax.numpy, dtype)


def _rounded(torch, a, dtype):
    """``a`` as a half tensor and as the float64 values it holds."""
    t = torch.asarray(a).to(dtype)
    return t, t.double().numpy()


@pytest.mark.parametrize("dtype", HALF)
@pytest.mark.parametrize("method", METHODS)
def test_torch_corr2d(dtype, method):
    torch, half = _torch(dtype)
    x, x64 = _rounded(torch, random((2, 9, 10), 1), half)
    k, k64 = _rounded(torch, random((3, 2), 2), half)
    options = dict(mode="same", boundary="wrap", stride=(1, 2))
    y = xcorr.corr2d(x, k, method=method, **options)
    assert y.dtype == half
    assert_close(y.double().numpy(), reference(x64, k64, **options), dtype)


@pytest.mark.parametrize("dtype", HALF)
@pytest.mark.parametrize("method", METHODS)
def test_jax_corr2d(dtype, method):
    jax, half = _jax(dtype)
    jnp = jax.numpy
    x = jnp.asarray(random((2, 9, 10), 1), dtype=half)
    k = jnp.asarray(random((3, 2), 2), dtype=half)
    options = dict(mode="full", boundary="symm", dilation=(2, 1))
    y = xcorr.conv2d(x, k, method=method, **options)
    assert y.dtype == half
    expected = reference(
        np.asarray(x, dtype=np.float64),
        np.asarray(k, dtype=np.float64),
        convolve=True,
        **options,
    )
    assert_close(np.asarray(y, dtype=np.float64), expected, dtype)


@pytest.mark.parametrize("method", ("auto", "fft"))
def test_numpy_float16(method):
    x, k = random((7, 8), 3).astype(np.float16), random((2, 3), 4).astype(np.float16)
    y = xcorr.corr2d(x, k, mode="same", method=method)
    assert y.dtype == np.float16
    assert_close(
        y.astype(np.float64),
        reference(x.astype(np.float64), k.astype(np.float64), mode="same"),
        "float16",
    )


@pytest.mark.parametrize("dtype", HALF)
def test_torch_multi_matches_conv2d_dtype(dtype):
    torch, half = _torch(dtype)
    x, x64 = _rounded(torch, random((2, 4, 8, 7), 5), half)
    w, w64 = _rounded(torch, random((6, 2, 3, 3), 6), half)
    y = xcorr.corr2d_multi(x, w, groups=2, mode="same")
    assert (
        y.dtype == torch.nn.functional.conv2d(x, w, groups=2, padding=1).dtype == half
    )
    assert_close(
        y.double().numpy(), reference_multi(x64, w64, groups=2, mode="same"), dtype
    )


@pytest.mark.parametrize("dtype", HALF)
def test_jax_multi_matches_lax_conv_dtype(dtype):
    jax, half = _jax(dtype)
    jnp = jax.numpy
    x = jnp.asarray(random((2, 4, 8, 7), 5), dtype=half)
    w = jnp.asarray(random((6, 2, 3, 3), 6), dtype=half)
    y = xcorr.corr2d_multi(x, w, groups=2, mode="same", boundary="wrap")
    native = jax.lax.conv_general_dilated(x, w, (1, 1), "SAME", feature_group_count=2)
    assert y.dtype == native.dtype == half
    expected = reference_multi(
        np.asarray(x, np.float64),
        np.asarray(w, np.float64),
        groups=2,
        mode="same",
        boundary="wrap",
    )
    assert_close(np.asarray(y, np.float64), expected, dtype)


@pytest.mark.parametrize("dtype", HALF)
def test_layers_hold_half_parameters(dtype):
    torch, torch_half = _torch(dtype)
    jax, jax_half = _jax(dtype)
    x = random((2, 3, 8, 8), 7)
    layer = xcorr.Conv2D(
        3, in_channels=3, out_channels=4, backend="torch", dtype=torch_half
    )
    assert (
        layer.weight.dtype == torch_half
        and layer(torch.asarray(x).to(torch_half)).dtype == torch_half
    )
    layer = xcorr.Conv2D(3, in_channels=3, out_channels=4, backend="jax", dtype=dtype)
    assert (
        layer.weight.dtype == jax_half
        and layer(jax.numpy.asarray(x, dtype=jax_half)).dtype == jax_half
    )
    # The same initial parameters as float32, rounded once.
    reference_layer = xcorr.Conv2D(3, in_channels=3, out_channels=4, backend="numpy")
    np.testing.assert_array_equal(
        np.asarray(layer.weight, np.float32),
        np.asarray(
            jax.numpy.asarray(reference_layer.weight, dtype=jax_half), np.float32
        ),
    )


def test_layer_dtype_errors():
    with pytest.raises(
        ValueError,
        match=r"dtype must be one of 'float32', 'float64', 'float16' or one of those dtypes of numpy; got 'bfloat16'",
    ):
        xcorr.Conv2D(3, backend="numpy", dtype="bfloat16")
    require_module("array_api_strict")
    with pytest.raises(
        ValueError,
        match=r"dtype must be one of 'float32', 'float64' or one of those dtypes of array_api_strict; got 'float16'",
    ):
        xcorr.Conv2D(3, backend="array_api_strict", dtype="float16")


@pytest.mark.parametrize("autocast_dtype", ("bfloat16", "float16"))
@pytest.mark.parametrize("channels", (True, False))
def test_torch_autocast_follows_conv2d(autocast_dtype, channels):
    torch, half = _torch(autocast_dtype)
    x = torch.asarray(random((2, 3, 8, 8), 8))
    if channels:
        layer, native = (
            xcorr.Conv2D(3, in_channels=3, out_channels=4, backend="torch"),
            torch.nn.Conv2d(3, 4, 3),
        )
    else:
        layer, native, x = (
            xcorr.Conv2D(3, backend="torch"),
            torch.nn.Conv2d(1, 1, 3),
            x[:, :1],
        )
    with torch.autocast("cpu", dtype=half):
        y, expected = layer(x), native(x)
        assert y.dtype == expected.dtype == half
        y.float().sum().backward()
    assert (
        layer.weight.grad.dtype == torch.float32
    )  # gradients reach the float32 parameters


@pytest.mark.parametrize("backend", ("torch", "jax"))
def test_seed_kernel_learned_in_bfloat16(backend):
    sys.path.insert(0, str(__import__("pathlib").Path(__file__).parent))
    from test_fit import seed_data

    x, y = seed_data()
    if backend == "torch":
        torch, half = _torch("bfloat16")
        x, y = torch.asarray(x).to(half), torch.asarray(y).to(half)
    else:
        jax, half = _jax("bfloat16")
        x, y = jax.numpy.asarray(x, dtype=half), jax.numpy.asarray(y, dtype=half)
    layer = xcorr.Conv2D((1, 2), backend=backend, dtype="bfloat16")
    trained, losses = xcorr.fit(layer, x, y, lr=0.01, steps=50)
    assert trained.weight.dtype == half
    weight = np.asarray(
        trained.weight.detach().float()
        if backend == "torch"
        else trained.weight.astype(np.float32)
    )
    bias = float(
        trained.bias.detach().float()
        if backend == "torch"
        else trained.bias.astype(np.float32)
    )
    # bfloat16 steps stall once lr * gradient is below half a unit in the last place (2**-8 near 1).
    np.testing.assert_allclose(weight, [[1.0, -1.0]], atol=2e-2)
    np.testing.assert_allclose(bias, 0.0, atol=2e-2)
    assert losses[-1] < 1e-3 * losses[0]


def test_half_gradients_torch_and_jax():
    # Autodiff sees the float32 computation between the casts: gradients in the half dtype.
    torch, half = _torch("bfloat16")
    jax, jhalf = _jax("bfloat16")
    x, k = random((6, 7), 9), random((2, 2), 10)
    kt = torch.asarray(k).to(half).requires_grad_(True)
    xcorr.corr2d(torch.asarray(x).to(half), kt, mode="same").float().sum().backward()
    gk = jax.grad(
        lambda k: (
            xcorr.corr2d(jax.numpy.asarray(x, dtype=jhalf), k, mode="same")
            .astype(np.float32)
            .sum()
        )
    )(jax.numpy.asarray(k, dtype=jhalf))
    assert kt.grad.dtype == half and gk.dtype == jhalf
    x64 = np.asarray(jax.numpy.asarray(x, dtype=jhalf), np.float64)
    expected = xcorr.corr2d_vjp(
        x64, k.astype(np.float64), np.ones(x.shape), mode="same"
    )[1]
    assert_close(kt.grad.double().numpy(), expected, "bfloat16")
    assert_close(np.asarray(gk, np.float64), expected, "bfloat16")


@pytest.mark.parametrize("method", ("auto", "direct", "fft"))
def test_jax_preferred_element_type(method):
    # Native: passed to lax.conv_general_dilated; direct and FFT accumulate in it.
    jax, half = _jax("bfloat16")
    jnp, lax = jax.numpy, jax.lax
    x = jnp.asarray(random((2, 4, 8, 8), 11), dtype=half)
    w = jnp.asarray(random((4, 2, 3, 3), 12), dtype=half)
    y = xcorr.corr2d_multi(
        x, w, groups=2, method=method, preferred_element_type=jnp.float32
    )
    native = lax.conv_general_dilated(
        x,
        w,
        (1, 1),
        "VALID",
        feature_group_count=2,
        preferred_element_type=jnp.float32,
        precision=lax.Precision.HIGHEST,
    )
    assert y.dtype == native.dtype == jnp.float32
    expected = reference_multi(
        np.asarray(x, np.float64), np.asarray(w, np.float64), groups=2
    )
    np.testing.assert_allclose(
        np.asarray(y, np.float64),
        expected,
        rtol=0,
        atol=2e-5 * np.max(np.abs(expected)),
    )


def test_jax_precision_passes_through():
    jax, _ = _jax("float32")
    jnp, lax = jax.numpy, jax.lax
    x, w = jnp.asarray(random((1, 2, 7, 7), 13)), jnp.asarray(random((2, 2, 2, 2), 14))
    for precision in (lax.Precision.DEFAULT, "highest"):
        y = xcorr.corr2d_multi(x, w, mode="same", precision=precision)
        native = lax.conv_general_dilated(
            x, w, (1, 1), ((0, 1), (0, 1)), precision=precision
        )
        np.testing.assert_array_equal(np.asarray(y), np.asarray(native))


def test_lax_options_refused_elsewhere():
    x, w = np.ones((1, 2, 4, 4), np.float32), np.ones((1, 2, 2, 2), np.float32)
    with pytest.raises(
        ValueError,
        match=r"jax's .* options; got preferred_element_type='float32' for numpy arrays",
    ):
        xcorr.corr2d_multi(x, w, preferred_element_type="float32")
