"""padding= on every backend (issue 12): explicit, asymmetric, "SAME", "SAME_LOWER" and "VALID", with
every boundary extending the image (what each boundary extends with: tests/test_boundaries.py).

Oracles: the float64 double-loop reference (``numpy.pad`` then a valid
correlation, tests/reference.py), ``F.pad`` then ``F.conv2d`` for asymmetric padding, and
``lax.conv_general_dilated`` with explicit, "SAME" and "VALID" padding.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import xcorr
from xcorr._compat import array_namespace

from matrix import BACKENDS, assert_result, require_module
from reference import (
    fast_reference,
    padding_pairs,
    random,
    reference,
    reference_multi,
    reference_vjp,
)

EXACT = {"rtol": 1e-12, "atol": 1e-12}
CPU = [b for b in BACKENDS if not b.gpu]

# (x shape, k shape, options): every boundary, explicit/asymmetric/SAME padding,
# strides and dilations, extensions wider than the image, and the new
# boundaries in the "same"/"full" modes.
CASES = {
    "reflect-int": ((5, 6), (3, 3), dict(boundary="reflect", padding=1)),
    "edge-asym-strided": (
        (6, 7),
        (3, 2),
        dict(boundary="edge", padding=((2, 0), (1, 3)), stride=(2, 1)),
    ),
    "reflect-wide-dilated": (
        (3, 4),
        (2, 3),
        dict(boundary="reflect", padding=((5, 7), (6, 4)), dilation=(2, 1)),
    ),
    "edge-wide": ((2, 3), (3, 3), dict(boundary="edge", padding=(4, 5), stride=2)),
    "symm-wide": ((3, 2), (2, 2), dict(boundary="symm", padding=((4, 7), (5, 3)))),
    "wrap-pair": ((4, 5), (3, 2), dict(boundary="wrap", padding=(2, 6), stride=(1, 3))),
    "fill-SAME-stride": ((8, 7), (3, 4), dict(padding="SAME", stride=2, fillvalue=0.5)),
    "reflect-SAME-dilated": (
        (7, 6),
        (3, 2),
        dict(boundary="reflect", padding="same", stride=(3, 2), dilation=(1, 2)),
    ),
    "edge-SAME_LOWER": (
        (6, 5),
        (4, 2),
        dict(boundary="edge", padding="SAME_LOWER", stride=(2, 2)),
    ),
    "fill-VALID": ((6, 5), (3, 3), dict(padding="VALID", stride=2)),
    "reflect-same-mode": (
        (5, 4),
        (4, 3),
        dict(mode="same", boundary="mirror", stride=(1, 2)),
    ),
    "edge-full-mode": (
        (3, 4),
        (3, 5),
        dict(mode="full", boundary="replicate", dilation=(2, 1)),
    ),
}
FUNCTIONS = {
    "corr2d": (xcorr.corr2d, xcorr.corr2d_vjp, False),
    "conv2d": (xcorr.conv2d, xcorr.conv2d_vjp, True),
}
# Each case once, the function alternating, and the batch shape varying: a
# kernel per plane for some, broadcast batch dimensions for others.
GRID = [(case, ("corr2d", "conv2d")[i % 2]) for i, case in enumerate(CASES)]


def _batched(case_index, x_shape, k_shape):
    if case_index % 3 == 1:
        return (2, *x_shape), k_shape
    if case_index % 3 == 2:
        return (2, 1, *x_shape), (3, *k_shape)
    return x_shape, k_shape


@pytest.mark.parametrize(("case", "name"), GRID)
def test_matches_numpy_pad_reference(backend, case, name):
    x_shape, k_shape, options = CASES[case]
    x_shape, k_shape = _batched(list(CASES).index(case), x_shape, k_shape)
    f, _, convolve = FUNCTIONS[name]
    x, k = random(x_shape, seed=1), random(k_shape, seed=2)
    expected = reference(x, k, convolve=convolve, **options)
    np.testing.assert_allclose(
        fast_reference(x, k, convolve=convolve, **options), expected, **EXACT
    )
    for method in ("direct", "fft"):
        y = f(backend.asarray(x), backend.asarray(k), method=method, **options)
        assert_result(backend, y, expected, "float64")


@pytest.mark.parametrize(("case", "name"), GRID)
def test_vjp_matches_reference(backend, case, name):
    x_shape, k_shape, options = CASES[case]
    x_shape, k_shape = _batched(list(CASES).index(case), x_shape, k_shape)
    _, f_vjp, convolve = FUNCTIONS[name]
    x, k = random(x_shape, seed=3), random(k_shape, seed=4)
    g = random(fast_reference(x, k, convolve=convolve, **options).shape, seed=5)
    ex, ek = reference_vjp(x, k, g, convolve=convolve, **options)
    gx, gk = f_vjp(
        backend.asarray(x), backend.asarray(k), backend.asarray(g), **options
    )
    assert_result(backend, gx, ex, "float64")
    assert_result(backend, gk, ek, "float64")


def test_reference_vjp_is_the_adjoint_of_the_padded_correlation():
    """The extended reference VJP against finite differences of the forward: both maps are linear here."""
    x, k = random((4, 3), seed=6), random((2, 2), seed=7)
    for options in (
        dict(boundary="reflect", padding=((3, 1), (0, 4)), stride=2),
        dict(boundary="edge", padding="SAME"),
    ):
        g = random(fast_reference(x, k, **options).shape, seed=8)
        gx, gk = reference_vjp(x, k, g, **options)
        for i in np.ndindex(x.shape):
            e = np.zeros_like(x)
            e[i] = 1
            assert np.isclose(
                np.sum(g * fast_reference(e, k, **options)), gx[i], rtol=1e-12
            )
        for i in np.ndindex(k.shape):
            e = np.zeros_like(k)
            e[i] = 1
            assert np.isclose(
                np.sum(g * fast_reference(x, e, **options)), gk[i], rtol=1e-12
            )


def test_same_padding_with_stride_is_not_the_same_mode():
    """Issue 12's example: at H=8, k=3, s=2 lax's "SAME" and mode="same" (dense[::2]) differ."""
    x, k = random((8, 8), seed=9), random((3, 3), seed=10)
    lax_same = xcorr.corr2d(x, k, padding="SAME", stride=2)
    dense = xcorr.corr2d(x, k, mode="same", stride=2)
    assert lax_same.shape == dense.shape == (4, 4)
    assert padding_pairs("SAME", (8, 8), (3, 3), 2) == ((0, 1), (0, 1))
    assert not np.allclose(lax_same, dense)
    np.testing.assert_allclose(
        lax_same, reference(x, k, padding=((0, 1), (0, 1)), stride=2), **EXACT
    )


def test_same_padding_where_the_stride_exceeds_the_kernel_skips_pixels(backend):
    """"SAME" pads nothing when the stride exceeds the dilated kernel: a 1x1 kernel of ones at stride 2
    picks every other pixel from the first (no negative padding cropping the image's start)."""
    x = np.arange(64.0).reshape(8, 8)
    for padding in ("SAME", "same", "SAME_LOWER"):
        y = xcorr.corr2d(
            backend.asarray(x), backend.asarray(np.ones((1, 1))), padding=padding, stride=2
        )
        assert_result(backend, y, x[::2, ::2], "float64")
    # 7 rows at stride 3 read rows 0, 3, 6; 9 columns at stride 4 (a 2-wide kernel) columns 0-1, 4-5, 8 (+ fill).
    x = np.arange(63.0).reshape(7, 9)
    k = np.asarray([[1.0, 10.0]])
    y = xcorr.corr2d(backend.asarray(x), backend.asarray(k), padding="SAME", stride=(3, 4))
    rows = x[[0, 3, 6]]
    expected = np.stack([rows[:, 0] + 10 * rows[:, 1], rows[:, 4] + 10 * rows[:, 5], rows[:, 8]], axis=1)
    assert_result(backend, y, expected, "float64")


@pytest.mark.parametrize(
    ("x_shape", "k_shape", "stride", "dilation"),
    [
        ((8, 8), (1, 1), 2, 1),
        ((7, 9), (2, 1), (3, 4), 1),
        ((9, 6), (2, 2), (5, 4), (2, 1)),
        ((5, 11), (1, 3), (4, 3), (1, 1)),
    ],
)
def test_same_padding_with_a_stride_beyond_the_kernel_matches_lax(
    backend, x_shape, k_shape, stride, dilation
):
    """"SAME"/"SAME_LOWER" where the stride exceeds the dilated kernel, single- and multi-channel, against lax."""
    jax = require_module("jax")
    x, w = random((2, 2, *x_shape), seed=40), random((3, 2, *k_shape), seed=41)
    strides = (stride, stride) if isinstance(stride, int) else stride
    dilations = (dilation, dilation) if isinstance(dilation, int) else dilation
    for padding in ("SAME", "SAME_LOWER"):
        expected = np.asarray(
            jax.lax.conv_general_dilated(
                x, w, strides, padding, rhs_dilation=dilations,
                dimension_numbers=("NCHW", "OIHW", "NCHW"), precision=jax.lax.Precision.HIGHEST,
            )
        )  # fmt: skip
        y = xcorr.corr2d_multi(
            backend.asarray(x), backend.asarray(w), padding=padding, stride=stride, dilation=dilation
        )
        assert_result(backend, y, expected, "float64")
        y = xcorr.corr2d(
            backend.asarray(x[0, 0]), backend.asarray(w[0, 0]), padding=padding, stride=stride, dilation=dilation
        )
        single = jax.lax.conv_general_dilated(
            x[:1, :1], w[:1, :1], strides, padding, rhs_dilation=dilations,
            dimension_numbers=("NCHW", "OIHW", "NCHW"), precision=jax.lax.Precision.HIGHEST,
        )  # fmt: skip
        assert_result(backend, y, np.asarray(single)[0, 0], "float64")


# -- torch: F.pad for asymmetric padding ---------------------------------------------------



@pytest.mark.parametrize(
    ("pad_mode", "boundary", "pads"),
    [
        ("constant", "fill", ((2, 0), (1, 3))),
        ("reflect", "reflect", ((0, 2), (3, 1))),
        ("replicate", "edge", ((3, 1), (0, 2))),
    ],
)
def test_asymmetric_padding_matches_torch_pad(backend, pad_mode, boundary, pads):
    torch = require_module("torch")
    F = torch.nn.functional
    x, w = random((1, 2, 5, 6), seed=13), random((3, 2, 2, 3), seed=14)
    (top, bottom), (left, right) = pads
    xe = F.pad(torch.asarray(x), (left, right, top, bottom), mode=pad_mode)
    expected = F.conv2d(xe, torch.asarray(w), stride=(2, 1)).numpy()
    y = xcorr.corr2d_multi(
        backend.asarray(x),
        backend.asarray(w),
        boundary=boundary,
        padding=pads,
        stride=(2, 1),
    )
    assert_result(backend, y, expected, "float64")
    y = xcorr.corr2d(
        backend.asarray(x[0, 1]),
        backend.asarray(w[2, 1]),
        boundary=boundary,
        padding=pads,
        stride=(2, 1),
    )
    assert_result(
        backend,
        y,
        F.conv2d(xe[:, 1:2], torch.asarray(w[2:3, 1:2]), stride=(2, 1)).numpy()[0, 0],
        "float64",
    )




@pytest.mark.parametrize("method", ["auto", "direct"])
def test_torch_autograd_through_the_adapter(method):
    """Gradients of corr2d/corr2d_multi with padding through torch autograd (and gradcheck's second order)."""
    torch = require_module("torch")
    x = torch.asarray(random((2, 4, 3), seed=18), requires_grad=True)
    k = torch.asarray(random((2, 2), seed=19), requires_grad=True)
    options = dict(
        boundary="reflect", padding=((2, 1), (0, 3)), stride=(2, 1), method=method
    )
    assert torch.autograd.gradcheck(lambda x, k: xcorr.conv2d(x, k, **options), (x, k))
    xm = torch.asarray(random((1, 2, 4, 3), seed=20), requires_grad=True)
    w = torch.asarray(random((3, 2, 2, 2), seed=20), requires_grad=True)

    def multi(xm, w):
        return xcorr.corr2d_multi(
            xm, w, boundary="edge", padding="SAME", stride=2, method=method
        )

    assert torch.autograd.gradcheck(multi, (xm, w))
    if method == "direct":
        assert torch.autograd.gradgradcheck(
            lambda x, k: xcorr.corr2d(x, k, **options), (x[0], k)
        )


def test_torch_compile_traceable_path():
    """torch.compile's traced path hands padding and the new boundaries to F.pad/F.conv2d."""
    torch = require_module("torch")
    from xcorr.backends.torch import functional

    x, k = random((2, 5, 6), seed=21), random((3, 2), seed=22)
    for options in (
        dict(boundary="reflect", padding=(2, 3)),
        dict(boundary="edge", padding="SAME", stride=2),
        dict(boundary="reflect", padding=6),
    ):
        opts = xcorr._options.Options.parse(**options)
        geometry = xcorr._options.plan(x.shape, k.shape, opts)
        tx, tk = torch.asarray(x), torch.asarray(k)
        y = functional.traceable_correlate(array_namespace(tx, tk), tx, tk, opts, geometry)
        np.testing.assert_allclose(y.numpy(), reference(x, k, **options), **EXACT)


# -- jax: lax.conv_general_dilated, jit, vmap, grad -------------------------------------------


@pytest.mark.parametrize(
    ("padding", "stride", "dilation"),
    [
        (((1, 0), (0, 2)), (2, 1), (1, 2)),
        ("SAME", 2, 1),
        ("SAME", (3, 2), (2, 1)),
        ("VALID", (2, 3), 1),
        ("SAME_LOWER", 2, 2),
    ],
)
def test_corr2d_multi_matches_lax(backend, padding, stride, dilation):
    jax = require_module("jax")
    x, w = random((2, 4, 8, 7), seed=23), random((6, 2, 3, 2), seed=24)
    strides = (stride, stride) if isinstance(stride, int) else stride
    dilations = (dilation, dilation) if isinstance(dilation, int) else dilation
    expected = jax.lax.conv_general_dilated(
        x, w, strides, padding, rhs_dilation=dilations, dimension_numbers=("NCHW", "OIHW", "NCHW"),
        feature_group_count=2, precision=jax.lax.Precision.HIGHEST,
    )  # fmt: skip
    y = xcorr.corr2d_multi(
        backend.asarray(x),
        backend.asarray(w),
        padding=padding,
        stride=stride,
        dilation=dilation,
        groups=2,
    )
    assert_result(backend, y, np.asarray(expected), "float64")


def test_jax_jit_vmap_and_grad():
    jax = require_module("jax")
    jnp = jax.numpy
    x, k = jnp.asarray(random((3, 6, 5), seed=25)), jnp.asarray(random((2, 3), seed=26))
    options = dict(boundary="reflect", padding=((2, 1), (3, 0)), stride=(1, 2))
    expected = reference(np.asarray(x), np.asarray(k), **options)
    f = jax.jit(lambda x, k: xcorr.corr2d(x, k, **options))
    np.testing.assert_allclose(f(x, k), expected, **EXACT)
    np.testing.assert_allclose(jax.vmap(f, in_axes=(0, None))(x, k), expected, **EXACT)
    g = jnp.asarray(random(expected.shape, seed=27))
    gx, gk = jax.jit(jax.grad(lambda x, k: jnp.sum(f(x, k) * g), argnums=(0, 1)))(x, k)
    ex, ek = reference_vjp(np.asarray(x), np.asarray(k), np.asarray(g), **options)
    np.testing.assert_allclose(gx, ex, **EXACT)
    np.testing.assert_allclose(gk, ek, **EXACT)
    # corr2d_multi's native path (jnp.pad's modes) against lax's autodiff of its own conv on jnp.pad.
    xm, w = x[None], jnp.asarray(random((2, 3, 3, 2), seed=28))

    def native(xm, w):
        xe = jnp.pad(xm, ((0, 0), (0, 0), (1, 1), (2, 2)), mode="edge")
        return jax.lax.conv_general_dilated(
            xe, w, (2, 1), "VALID", precision=jax.lax.Precision.HIGHEST
        )

    mine = jax.jit(
        lambda xm, w: xcorr.corr2d_multi(
            xm, w, boundary="edge", padding=(1, 2), stride=(2, 1)
        )
    )
    np.testing.assert_allclose(mine(xm, w), native(xm, w), **EXACT)
    loss = lambda f: lambda xm, w: jnp.sum(jnp.sin(f(xm, w)))  # noqa: E731
    for a, b in zip(
        jax.grad(loss(mine), argnums=(0, 1))(xm, w),
        jax.grad(loss(native), argnums=(0, 1))(xm, w),
    ):
        np.testing.assert_allclose(a, b, **EXACT)
    batched = jax.vmap(mine, in_axes=(0, None))(jnp.stack([xm, 2 * xm]), w)
    np.testing.assert_allclose(batched[1], 2 * native(xm, w), **EXACT)


# -- the Conv2D layer ------------------------------------------------------------------------


def test_conv2d_layer_matches_torch_module():
    torch = require_module("torch")
    layer = xcorr.Conv2D(
        3,
        in_channels=2,
        out_channels=4,
        padding=(1, 2),
        boundary="reflect",
        stride=2,
        backend="torch",
        dtype="float64",
    )
    assert layer.padding == ((1, 1), (2, 2)) and layer.boundary == "reflect"
    assert "padding=((1, 1), (2, 2)), boundary='reflect'" in repr(layer)
    native = torch.nn.Conv2d(
        2, 4, 3, padding=(1, 2), padding_mode="reflect", stride=2, dtype=torch.float64
    )
    native.load_state_dict(layer.state_dict())
    x = torch.asarray(random((2, 2, 7, 6), seed=29))
    y, e = layer(x), native(x)
    np.testing.assert_allclose(y.detach().numpy(), e.detach().numpy(), **EXACT)
    g = torch.asarray(random(tuple(y.shape), seed=30))
    mine = torch.autograd.grad(y, (layer.weight, layer.bias), g)
    theirs = torch.autograd.grad(e, (native.weight, native.bias), g)
    for a, b in zip(mine, theirs):
        np.testing.assert_allclose(a.numpy(), b.numpy(), **EXACT)


def test_conv2d_layer_matches_keras_same_on_jax():
    jax = require_module("jax")
    jnp = jax.numpy
    layer = xcorr.Conv2D(
        (3, 2),
        in_channels=3,
        out_channels=2,
        padding="same",
        stride=2,
        backend="jax",
        dtype="float64",
    )
    assert layer.padding == "SAME"
    x = jnp.asarray(random((2, 3, 8, 7), seed=31))

    def native(params, x):
        y = jax.lax.conv_general_dilated(
            x, params.weight, (2, 2), "SAME", precision=jax.lax.Precision.HIGHEST
        )
        return y + params.bias[:, None, None]

    np.testing.assert_allclose(
        jax.jit(lambda m, x: m(x))(layer, x), native(layer, x), **EXACT
    )
    grads = jax.grad(lambda m: jnp.sum(m(x) ** 2))(layer)
    expected = jax.grad(lambda m: jnp.sum(native(m, x) ** 2))(layer)
    np.testing.assert_allclose(grads.weight, expected.weight, **EXACT)
    np.testing.assert_allclose(grads.bias, expected.bias, **EXACT)


@pytest.mark.parametrize("name", ["numpy", "array_api_strict", "dask"])
def test_conv2d_layer_on_array_backends(name):
    backend = next(b for b in BACKENDS if b.name == name)
    backend.require()
    layer = xcorr.Conv2D(
        (2, 3), padding=((0, 2), (1, 1)), boundary="edge", backend=name, dtype="float64"
    )
    x = random((2, 4, 5), seed=32)
    weight, bias = (np.asarray(backend.to_numpy(a)) for a in (layer.weight, layer.bias))
    expected = reference(x, weight, padding=((0, 2), (1, 1)), boundary="edge") + bias
    assert_result(backend, layer(backend.asarray(x)), expected, "float64")
    g = random(expected.shape, seed=33)
    grads = layer.grad(backend.asarray(x), backend.asarray(g))
    _, ew = reference_vjp(x, weight, g, padding=((0, 2), (1, 1)), boundary="edge")
    assert_result(backend, grads["weight"], ew, "float64")


# -- errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        (dict(boundary="bogus"), ValueError, r"boundary must be one of .*'bogus'"),
        (
            dict(boundary="REFLECT"),
            ValueError,
            r"boundary must be one of .*lower case: 'reflect'",
        ),
        (
            dict(boundary="zeros", fillvalue=1),
            ValueError,
            r'boundary="zeros" fills with 0 but fillvalue=1',
        ),
        (dict(padding=-1), ValueError, r"padding must be .*negative width -1"),
        (dict(padding=((1, -2), (0, 0))), ValueError, r"negative width -2"),
        (
            dict(padding=(1, 2, 3)),
            ValueError,
            r"padding must be .*a sequence of 3 items",
        ),
        (
            dict(padding=((1, 2, 3), 1)),
            ValueError,
            r"an axis's padding \(1, 2, 3\) has 3 items",
        ),
        (dict(padding=1.5), TypeError, r"padding must be an int >= 0.*got 1.5"),
        (dict(padding=True), TypeError, r"padding must be an int >= 0.*got True"),
        (dict(padding=(1, None)), TypeError, r"padding must be an int >= 0"),
        (
            dict(padding="full"),
            ValueError,
            r"padding must be .*'SAME', 'VALID', 'SAME_LOWER'.*got 'full'",
        ),
        (
            dict(padding=1, mode="same"),
            ValueError,
            r"padding=1 and mode='same' conflict.*mode=\"valid\"",
        ),
        (
            dict(padding="VALID", mode="full"),
            ValueError,
            r"padding='VALID' and mode='full' conflict",
        ),
        (dict(padding=((0, 0), (0, 0)), mode="same"), ValueError, r"conflict"),
    ],
)
def test_bad_padding_and_boundary(backend, options, error, match, monkeypatch):
    x, k = backend.asarray(np.ones((4, 5))), backend.asarray(np.ones((2, 2)))
    _no_backend_work(monkeypatch)
    for f in (xcorr.corr2d, xcorr.conv2d):
        with pytest.raises(error, match=match):
            f(x, k, **options)
    g = backend.asarray(np.ones((5, 6)))
    with pytest.raises(error, match=match):
        xcorr.corr2d_vjp(x, k, g, **options)
    with pytest.raises(error, match=match):
        xcorr.corr2d_multi(
            backend.asarray(np.ones((1, 1, 4, 5))),
            backend.asarray(np.ones((1, 1, 2, 2))),
            **options,
        )
    if "fillvalue" not in options:
        with pytest.raises(error, match=match):
            xcorr.Conv2D(2, backend="numpy", **options)


def _no_backend_work(monkeypatch):
    """Reaching an adapter fails the test: errors must come from the checks before them."""
    from xcorr import _call, _multi, _vjp

    def forbidden(*args, **kwargs):
        raise AssertionError("reached the backend")

    for module in (_call, _multi, _vjp):
        monkeypatch.setattr(module, "adapter_for", forbidden)


@pytest.mark.parametrize(
    ("x_shape", "k_shape", "options", "match"),
    [
        (
            (4, 5),
            (2, 7),
            dict(padding=((0, 1), (1, 0))),
            r"k is larger than the padded x along the columns: kernel of shape \(2, 7\).*padded by \(1, 0\) \(6\)",
        ),
    ],
)
def test_bad_shapes_for_padding(backend, x_shape, k_shape, options, match):
    x, k = backend.asarray(np.ones(x_shape)), backend.asarray(np.ones(k_shape))
    with pytest.raises(ValueError, match=match):
        xcorr.corr2d(x, k, **options)




def test_prepared_calls_are_keyed_by_padding():
    x, k = random((5, 6), seed=34), random((2, 2), seed=35)
    assert xcorr.corr2d(x, k, padding=1).shape == (6, 7)
    assert xcorr.corr2d(x, k, padding=2).shape == (8, 9)
    assert xcorr.corr2d(x, k, padding=((1, 0), (0, 1))).shape == (5, 6)
    with pytest.raises(TypeError, match="padding"):
        xcorr.corr2d(x, k, padding=True)  # a cached padding=1 must not answer for it
    with pytest.raises(TypeError, match="padding"):
        xcorr.corr2d(x, k, padding=((True, 0), (0, 1)))
    w = random((1, 1, 2, 2), seed=36)
    assert xcorr.corr2d_multi(x[None, None], w, padding=1).shape == (1, 1, 6, 7)
    assert xcorr.corr2d_multi(x[None, None], w, padding="SAME", stride=2).shape == (
        1,
        1,
        3,
        3,
    )


# -- property: every boundary and padding against numpy.pad on numpy ------------------------


@given(
    size=st.tuples(st.integers(2, 6), st.integers(2, 6)),
    kernel=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    pads=st.tuples(*(st.integers(0, 8) for _ in range(4))),
    boundary=st.sampled_from(["fill", "wrap", "symm", "reflect", "edge"]),
    stride=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    dilation=st.tuples(st.integers(1, 2), st.integers(1, 2)),
    convolve=st.booleans(),
)
def test_property_padding_matches_numpy_pad(
    size, kernel, pads, boundary, stride, dilation, convolve
):
    padding = ((pads[0], pads[1]), (pads[2], pads[3]))
    x, k = random(size, seed=sum(pads)), random(kernel, seed=7)
    fits = all(
        n + lo + hi >= d * (t - 1) + 1
        for n, (lo, hi), t, d in zip(size, padding, kernel, dilation)
    )
    f = xcorr.conv2d if convolve else xcorr.corr2d
    options = dict(boundary=boundary, padding=padding, stride=stride, dilation=dilation)
    if not fits:
        with pytest.raises(ValueError, match="larger than the padded x"):
            f(x, k, **options)
        return
    expected = reference(x, k, convolve=convolve, **options)
    np.testing.assert_allclose(f(x, k, **options), expected, **EXACT)
    g = random(expected.shape, seed=8)
    gx, gk = (xcorr.conv2d_vjp if convolve else xcorr.corr2d_vjp)(x, k, g, **options)
    ex, ek = reference_vjp(x, k, g, convolve=convolve, **options)
    np.testing.assert_allclose(gx, ex, **EXACT)
    np.testing.assert_allclose(gk, ek, **EXACT)




def test_torch_same_string_padding():
    """torch's padding="same" (stride 1; the odd element after the image) with an even, dilated kernel."""
    torch = require_module("torch")
    x, w = random((1, 2, 7, 8), seed=41), random((3, 2, 2, 4), seed=42)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter(
            "ignore", UserWarning
        )  # torch's note on the padded copy it makes
        expected = torch.nn.functional.conv2d(
            torch.asarray(x), torch.asarray(w), padding="same", dilation=(1, 2)
        ).numpy()
    y = xcorr.corr2d_multi(x, w, padding="same", dilation=(1, 2))
    np.testing.assert_allclose(y, expected, **EXACT)


# -- the size-dependent fast paths take padded and reflect/edge-extended input --------------


@pytest.mark.parametrize(
    "options",
    [
        dict(padding=((2, 1), (0, 3)), fillvalue=0.5),
        dict(boundary="reflect", padding="SAME", dilation=(1, 2)),
        dict(boundary="edge", padding=((3, 0), (1, 2)), stride=(2, 1)),
    ],
    ids=["fill", "reflect-SAME", "edge-strided"],
)
@pytest.mark.parametrize("name", ["numpy", "torch", "jax"])
def test_fast_paths_with_padding(monkeypatch, name, options):
    """numba's kernels (numpy, jax custom calls), torch's banded direct path and the FFT paths,
    forced with small arrays, on padded input: forward and both gradients."""
    from paths import force, spy

    backend = next(b for b in BACKENDS if b.name == name)
    backend.require()
    if name == "torch":
        force(
            monkeypatch,
            name,
            small_band=64,
            band_elements=64,
            pooled_elements=256,
            threads=2,
        )
    else:
        force(monkeypatch, name, numba_min_outputs=64, threads=2)
    numba = None
    if name == "numpy":
        from xcorr.backends import _numba

        numba = spy(monkeypatch, _numba, "direct", declined=None)
    x, k = random((2, 17, 15), seed=43), random((3, 4), seed=44)
    expected = fast_reference(x, k, **options)
    g = random(expected.shape, seed=45)
    ex, ek = reference_vjp(x, k, g, **options)
    for method in ("direct", "fft"):
        y = xcorr.corr2d(
            backend.asarray(x), backend.asarray(k), method=method, **options
        )
        assert_result(backend, y, expected, "float64")
        gx, gk = xcorr.corr2d_vjp(
            backend.asarray(x),
            backend.asarray(k),
            backend.asarray(g),
            method=method,
            **options,
        )
        assert_result(backend, gx, ex, "float64")
        assert_result(backend, gk, ek, "float64")
    if numba is not None:
        assert any(numba), "numba's kernel did not run"


def test_receptive_field_of_padded_layers():
    """A padded Conv2D's receptive field: the closed form against the gradient measured through the numpy VJP."""
    layers = [
        xcorr.Conv2D(
            3, padding=1, boundary="reflect", backend="numpy", dtype="float64"
        ),
        xcorr.Conv2D(
            2,
            padding=(0, 1),
            boundary="edge",
            stride=2,
            backend="numpy",
            dtype="float64",
        ),
    ]
    for layer in layers:  # positive weights: every tap's gradient is non-zero
        layer.weight = np.abs(layer.weight) + 0.5
    closed = xcorr.receptive_field(layers)
    windows = xcorr.receptive_field(
        [xcorr.Window(3, padding=1), xcorr.Window(2, stride=2, padding=(0, 1))]
    )
    assert (closed.rows, closed.cols) == (windows.rows, windows.cols)
    x = np.ones((7, 8))
    for index in [(0, 0), (1, 2), (2, 4)]:
        measured = xcorr.empirical_receptive_field(layers, x, index)
        np.testing.assert_array_equal(
            measured.mask, closed.mask(index, x.shape), err_msg=f"output {index}"
        )
    # lax's "SAME": at stride 1 the padding of mode "same"; at stride 2 it depends on the input's size
    same = xcorr.receptive_field([xcorr.Conv2D(3, padding="SAME", backend="numpy")])
    assert (same.rows, same.cols) == (xcorr.receptive_field([xcorr.Window(3, padding="same")]).rows,) * 2
    strided = [xcorr.Conv2D(5, padding="SAME", stride=2, backend="numpy", dtype="float64")]
    strided[0].weight = np.abs(strided[0].weight) + 0.5
    with pytest.raises(ValueError, match=r"padding='SAME' with stride 2 depends on the input's size; pass input_shape"):
        xcorr.receptive_field(strided)
    # 8 rows at stride 2: 4 outputs, (4 - 1) * 2 + 5 - 8 = 3 rows of padding, 1 before; 9 rows: 4, 2 before
    for rows, first in ((8, -1), (9, -2)):
        rf = xcorr.receptive_field(strided, input_shape=(rows, 6))
        assert rf.rows.first == first
        measured = xcorr.empirical_receptive_field(strided, np.ones((rows, 6)), (1, 1))
        np.testing.assert_array_equal(measured.mask, rf.mask((1, 1), (rows, 6)))


def test_torch_func_vmap_and_grad():
    torch = require_module("torch")
    x, k = (
        torch.asarray(random((3, 5, 4), seed=46)),
        torch.asarray(random((2, 3), seed=47)),
    )
    options = dict(boundary="edge", padding=((1, 2), (3, 0)), stride=(1, 2))
    expected = reference(x.numpy(), k.numpy(), **options)
    y = torch.func.vmap(lambda xi: xcorr.corr2d(xi, k, **options))(x)
    np.testing.assert_allclose(y.numpy(), expected, **EXACT)
    g = random(expected.shape, seed=48)
    gk = torch.func.grad(
        lambda k: (xcorr.corr2d(x, k, **options) * torch.asarray(g)).sum()
    )(k)
    np.testing.assert_allclose(
        gk.numpy(), reference_vjp(x.numpy(), k.numpy(), g, **options)[1], **EXACT
    )


@pytest.mark.parametrize("case", ["reflect-int", "edge-asym-strided"])
def test_jvp_with_padding_is_the_sum_of_two_padded_correlations(backend, case):
    # The forward-mode derivative of the bilinear map: corr(dx, k) + corr(x, dk), padded alike.
    x_shape, k_shape, options = CASES[case]
    x, k = random(x_shape, seed=11), random(k_shape, seed=12)
    dx, dk = random(x_shape, seed=13), random(k_shape, seed=14)
    expected = fast_reference(dx, k, **options) + fast_reference(x, dk, **options)
    t = xcorr.corr2d_jvp(*(backend.asarray(a) for a in (x, k, dx, dk)), **options)
    assert_result(backend, t, expected, "float64")


def test_multi_jvp_with_padding_in_both_layouts(backend):
    x, w = random((2, 4, 6, 5), seed=15), random((6, 2, 3, 3), seed=16)
    dx, dw = random(x.shape, seed=17), random(w.shape, seed=18)
    options = dict(boundary="edge", padding=((1, 2), (0, 1)), stride=2, groups=2)
    expected = reference_multi(dx, w, **options) + reference_multi(x, dw, **options)
    t = xcorr.corr2d_multi_jvp(*(backend.asarray(a) for a in (x, w, dx, dw)), **options)
    assert_result(backend, t, expected, "float64")
    last = [backend.asarray(np.moveaxis(a, 1, -1).copy()) for a in (x, dx)]
    t_last = xcorr.corr2d_multi_jvp(
        last[0], backend.asarray(w), last[1], backend.asarray(dw), data_format="channels_last", **options
    )
    assert_result(backend, t_last, np.moveaxis(expected, 1, -1), "float64")
