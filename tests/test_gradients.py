"""Gradients of corr2d/conv2d on every backend, against finite differences of the reference.

The forward map is bilinear: affine in ``x`` for a fixed ``k`` (the fill
value makes it affine, not linear) and linear in ``k``. Central differences
of an affine function are exact for any step, so the finite-difference
gradients below (step 1, float64) equal the true ones up to rounding, and
the comparisons can be tight.
"""

from __future__ import annotations

import functools
import itertools

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import xcorr

from matrix import assert_result, backends_where, require_module
from reference import fast_reference, reference, reference_vjp

MODES = ("valid", "same", "full")
BOUNDARIES = ("fill", "wrap", "symm")
FUNCTIONS = {"corr2d": (xcorr.corr2d, xcorr.corr2d_vjp, False), "conv2d": (xcorr.conv2d, xcorr.conv2d_vjp, True)}
# (x shape, k shape, stride, dilation): plain, strided and dilated, one kernel
# for a batch, broadcast batches with a kernel per plane.
CASES = {
    "plain": ((5, 7), (2, 3), 1, 1),
    "strided": ((7, 8), (3, 2), (2, 3), (1, 2)),
    "batch": ((2, 5, 6), (2, 2), 2, 1),
    "broadcast": ((2, 1, 5, 6), (3, 2, 3), 1, (2, 1)),
}
EXACT = {"rtol": 1e-12, "atol": 1e-12}


def grid(names=tuple(FUNCTIONS), modes=MODES, boundaries=BOUNDARIES, cases=tuple(CASES)):
    """Every (function, mode, boundary), each with the next case in turn.

    Every combination runs, and every case meets several modes and boundaries,
    at a fraction of the full product's (compile-heavy) cost.
    """
    combos = itertools.product(names, modes, boundaries)
    return [
        pytest.param(name, mode, boundary, cases[i % len(cases)], id=f"{name}-{mode}-{boundary}-{cases[i % len(cases)]}")
        for i, (name, mode, boundary) in enumerate(combos)
    ]


GRID = ("name", "mode", "boundary", "case")


def random(shape, seed):
    return np.random.default_rng(seed).standard_normal(shape)


def fd_vjp(x, k, g, **options):
    """``(gx, gk)`` by central differences of the float64 reference, one entry at a time."""

    def derivative(a, wrt):
        out = np.zeros_like(a)
        for index in np.ndindex(a.shape):
            step = np.zeros_like(a)
            step[index] = 1.0
            if wrt == "x":
                up, down = reference(x + step, k, **options), reference(x - step, k, **options)
            else:
                up, down = reference(x, k + step, **options), reference(x, k - step, **options)
            out[index] = np.sum(g * (up - down)) / 2
        return out

    return derivative(x, "x"), derivative(k, "k")


@functools.cache
def problem(case, name, mode, boundary, fillvalue=0.5):
    """Inputs, options and finite-difference gradients of one case (cached across backends)."""
    x_shape, k_shape, stride, dilation = CASES[case]
    convolve = FUNCTIONS[name][2]
    options = dict(mode=mode, boundary=boundary, stride=stride, dilation=dilation, fillvalue=fillvalue)
    x, k = random(x_shape, 1), random(k_shape, 2)
    g = random(reference(x, k, convolve=convolve, **options).shape, 3)
    gx, gk = fd_vjp(x, k, g, convolve=convolve, **options)
    return x, k, g, options, gx, gk


def framework_vjp(backend, f, x, k, g, options):
    """Gradients the way each backend trains: torch autograd, jax.vjp, else the core VJP."""
    if backend.library == "torch":
        import torch

        x, k = x.requires_grad_(), k.requires_grad_()
        return torch.autograd.grad(f(x, k, **options), (x, k), g)
    if backend.library == "jax":
        import jax

        _, pullback = jax.vjp(lambda x, k: f(x, k, **options), x, k)
        return pullback(g)
    vjp = xcorr.corr2d_vjp if f is xcorr.corr2d else xcorr.conv2d_vjp
    return vjp(x, k, g, **options)


@pytest.mark.parametrize(GRID, grid())
def test_vjp_equals_finite_differences(backend, name, mode, boundary, case):
    x, k, g, options, gx, gk = problem(case, name, mode, boundary)
    vjp = FUNCTIONS[name][1]
    xb, kb = backend.asarray(x), backend.asarray(k)
    got_x, got_k = vjp(xb, kb, backend.asarray(g), **options)
    assert_result(backend, got_x, gx, "float64", like=xb)
    assert_result(backend, got_k, gk, "float64", like=xb)


@pytest.mark.parametrize(GRID, grid(modes=("same", "full"), cases=("strided", "broadcast")))
def test_framework_gradients_equal_finite_differences(backend, name, mode, boundary, case):
    x, k, g, options, gx, gk = problem(case, name, mode, boundary)
    f = FUNCTIONS[name][0]
    got_x, got_k = framework_vjp(backend, f, backend.asarray(x), backend.asarray(k), backend.asarray(g), options)
    assert_result(backend, got_x, gx, "float64")
    assert_result(backend, got_k, gk, "float64")


def test_kernel_larger_than_input(backend):
    # Wrap/symm extensions repeat several times: the fold adds many copies back.
    x, k = random((3, 2), 4), random((5, 6), 5)
    for boundary in BOUNDARIES:
        options = dict(mode="full", boundary=boundary)
        g = random(reference(x, k, **options).shape, 6)
        gx, gk = fd_vjp(x, k, g, **options)
        got_x, got_k = xcorr.corr2d_vjp(backend.asarray(x), backend.asarray(k), backend.asarray(g), **options)
        assert_result(backend, got_x, gx, "float64")
        assert_result(backend, got_k, gk, "float64")


@pytest.mark.parametrize(("x_dtype", "k_dtype", "gx_dtype", "gk_dtype"), [
    ("float32", "float32", "float32", "float32"),
    ("float32", "int64", "float32", "float32"),  # the seed's integer kernel
    ("int64", "float64", "float64", "float64"),
    ("complex128", "complex128", "complex128", "complex128"),  # the transpose, no conjugation
    ("float64", "complex128", "float64", "complex128"),  # a real x gets the real part
])
def test_gradient_dtypes(backend, x_dtype, k_dtype, gx_dtype, gk_dtype):
    def values(shape, dtype, seed):
        a = np.round(random(shape, seed) * 3)
        if dtype.startswith("complex"):
            a = a + 1j * np.round(random(shape, seed + 10) * 3)
        return a.astype(dtype)

    x, k = values((5, 6), x_dtype, 7), values((2, 2), k_dtype, 8)
    g = values((5, 6), gk_dtype, 9)  # gk_dtype is the result dtype in every row
    options = dict(mode="same", boundary="symm")
    gx, gk = fd_vjp(x.astype(complex), k.astype(complex), g.astype(complex), **options)
    if not gx_dtype.startswith("complex"):
        gx = gx.real
    got_x, got_k = xcorr.corr2d_vjp(backend.asarray(x), backend.asarray(k), backend.asarray(g), **options)
    assert_result(backend, got_x, gx, gx_dtype)
    assert_result(backend, got_k, gk, gk_dtype)


def test_complex_gradients_of_a_two_tap_kernel_are_the_transpose(backend):
    """Complex operands and a kernel of two taps, the chapter's shape (numpy's kernel gradient then
    takes its per-tap reductions, where the library's vecdot conjugates its first argument):
    ``gk = sum(g * window)`` and ``gx`` the "full" convolution of ``g`` with ``k``, neither
    conjugated (scipy's ``correlate2d`` conjugates its second operand)."""
    import scipy.signal

    rng = np.random.default_rng(11)
    x, k, g = (rng.standard_normal(s) + 1j * rng.standard_normal(s) for s in ((12, 17), (1, 2), (12, 16)))
    gx, gk = scipy.signal.convolve2d(g, k, mode="full"), scipy.signal.correlate2d(x, np.conj(g), mode="valid")
    got_x, got_k = xcorr.corr2d_vjp(backend.asarray(x), backend.asarray(k), backend.asarray(g))
    assert_result(backend, got_x, gx, "complex128")
    assert_result(backend, got_k, gk, "complex128")


def test_vjp_rejects_a_cotangent_of_the_wrong_shape(backend):
    x, k = backend.asarray(np.ones((5, 6))), backend.asarray(np.ones((2, 2)))
    with pytest.raises(ValueError, match=r"g must have the shape of the output, \(4, 5\); got shape \(5, 6\)"):
        xcorr.corr2d_vjp(x, k, x)


@given(
    data=st.data(),
    H=st.integers(1, 6),
    W=st.integers(1, 6),
    h=st.integers(1, 4),
    w=st.integers(1, 4),
    mode=st.sampled_from(MODES),
    boundary=st.sampled_from(BOUNDARIES),
    name=st.sampled_from(sorted(FUNCTIONS)),
    stride=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    dilation=st.tuples(st.integers(1, 2), st.integers(1, 2)),
    fillvalue=st.floats(-2, 2),
)
def test_property_vjp_equals_finite_differences(backend, data, H, W, h, w, mode, boundary, name, stride, dilation, fillvalue):
    if mode == "valid":
        h = min(h, (H - 1) // dilation[0] + 1)
        w = min(w, (W - 1) // dilation[1] + 1)
    seed = data.draw(st.integers(0, 2**16))
    convolve = FUNCTIONS[name][2]
    options = dict(mode=mode, boundary=boundary, stride=stride, dilation=dilation, fillvalue=fillvalue)
    x, k = random((H, W), seed), random((h, w), seed + 1)
    g = random(reference(x, k, convolve=convolve, **options).shape, seed + 2)
    gx, gk = fd_vjp(x, k, g, convolve=convolve, **options)
    vjp = FUNCTIONS[name][1]
    got_x, got_k = vjp(backend.asarray(x), backend.asarray(k), backend.asarray(g), **options)
    assert_result(backend, got_x, gx, "float64")
    assert_result(backend, got_k, gk, "float64")


# A traced backend (jax) compiles every drawn configuration (forward and backward): its batched
# property runs in tests/test_fast_paths.py (test_property_jax_paths).
@pytest.mark.parametrize("backend", backends_where(lambda b: not b.traced), ids=str)
@given(
    data=st.data(),
    batch=st.lists(st.integers(1, 3), max_size=2),
    per_image=st.booleans(),
    dtype=st.sampled_from(["float32", "float64", "complex128"]),
    H=st.integers(1, 24),
    W=st.integers(1, 24),
    h=st.integers(1, 5),
    w=st.integers(1, 5),
    mode=st.sampled_from(MODES),
    boundary=st.sampled_from(BOUNDARIES),
    name=st.sampled_from(sorted(FUNCTIONS)),
    stride=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    dilation=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    fillvalue=st.floats(-2, 2),
)
def test_property_batched_vjp_matches_reference_vjp(
    backend, data, batch, per_image, dtype, H, W, h, w, mode, boundary, name, stride, dilation, fillvalue
):
    # Batches, a kernel per image (or broadcast along some dimensions), float32 and complex:
    # against the tests' float64 VJP (itself checked against finite differences).
    from reference import random as draw_array

    backend.require()
    if mode == "valid":
        h = min(h, (H - 1) // dilation[0] + 1)
        w = min(w, (W - 1) // dilation[1] + 1)
    seed = data.draw(st.integers(0, 2**16))
    k_batch = tuple(n if data.draw(st.booleans()) else 1 for n in batch) if per_image else ()
    convolve = FUNCTIONS[name][2]
    options = dict(mode=mode, boundary=boundary, stride=stride, dilation=dilation, fillvalue=fillvalue)
    x, k = draw_array((*batch, H, W), dtype, seed), draw_array((*k_batch, h, w), dtype, seed + 1)
    g = draw_array(fast_reference(x, k, convolve=convolve, **options).shape, dtype, seed + 2)
    gx, gk = reference_vjp(x, k, g, convolve=convolve, **options)
    vjp = FUNCTIONS[name][1]
    got_x, got_k = vjp(backend.asarray(x), backend.asarray(k), backend.asarray(g), **options)
    if dtype == "float32":
        # Sums of up to a few hundred float32 products.
        for got, want in ((got_x, gx), (got_k, gk)):
            assert got.dtype == backend.dtype("float32")
            np.testing.assert_allclose(backend.to_numpy(got), want, rtol=1e-4, atol=1e-4 * max(1, np.abs(want).max()))
        return
    assert_result(backend, got_x, gx, dtype)
    assert_result(backend, got_k, gk, dtype)


def test_dask_vjp_is_lazy():
    da = require_module("dask.array")
    import dask

    def refuse(*args, **kwargs):
        raise AssertionError("corr2d_vjp computed a dask graph behind the user's back")

    x, k, g, options, gx, gk = problem("strided", "corr2d", "same", "symm")
    with dask.config.set(scheduler=refuse):
        got_x, got_k = xcorr.corr2d_vjp(da.from_array(x, chunks=3), da.from_array(k), da.from_array(g, chunks=2), **options)
    np.testing.assert_allclose(got_x.compute(), gx, **EXACT)
    np.testing.assert_allclose(got_k.compute(), gk, **EXACT)


# --- torch -----------------------------------------------------------------

# gradcheck's tolerances, tight because the op is bilinear. Its finite
# differences are exact for any step (see the module docstring), so a step of
# 1e-3 instead of the default 1e-6 only removes rounding noise (~1e-9 with
# 1e-6, which would sit right at atol).
GRADCHECK = {"atol": 1e-9, "rtol": 1e-7, "eps": 1e-3}


@pytest.mark.parametrize(GRID, grid())
def test_torch_gradcheck_and_gradgradcheck(name, mode, boundary, case):
    torch = require_module("torch")
    x, k, _g, options, _gx, _gk = problem(case, name, mode, boundary)
    f = FUNCTIONS[name][0]
    xt = torch.asarray(x).requires_grad_()
    kt = torch.asarray(k).requires_grad_()
    assert torch.autograd.gradcheck(lambda x, k: f(x, k, **options), (xt, kt), **GRADCHECK)
    assert torch.autograd.gradgradcheck(lambda x, k: f(x, k, **options), (xt, kt), **GRADCHECK)


def test_torch_complex_gradcheck():
    torch = require_module("torch")
    rng = np.random.default_rng(10)
    x = torch.asarray(rng.standard_normal((5, 6)) + 1j * rng.standard_normal((5, 6))).requires_grad_()
    k = torch.asarray(rng.standard_normal((2, 3)) + 1j * rng.standard_normal((2, 3))).requires_grad_()
    f = lambda x, k: xcorr.corr2d(x, k, mode="full", boundary="symm", stride=2, fillvalue=0.5)  # noqa: E731
    assert torch.autograd.gradcheck(f, (x, k), **GRADCHECK)


def test_torch_backward_equals_autograd_of_the_generic_forward():
    torch = require_module("torch")
    from xcorr import _direct
    from xcorr._compat import array_namespace
    from xcorr._options import Options, plan

    x, k, g, options, _gx, _gk = problem("broadcast", "conv2d", "same", "wrap")
    opts = Options.parse(convolve=True, **options)
    xt, kt = torch.asarray(x).requires_grad_(), torch.asarray(k).requires_grad_()
    plain = _direct.correlate(array_namespace(xt), xt, kt, opts, plan(xt.shape, kt.shape, opts))
    ours = xcorr.conv2d(xt, kt, **options)
    assert "_Correlate" in type(ours.grad_fn).__name__
    assert "_Correlate" not in type(plain.grad_fn).__name__
    gt = torch.asarray(g)
    expected = torch.autograd.grad(plain, (xt, kt), gt)
    for got, want in zip(torch.autograd.grad(ours, (xt, kt), gt), expected):
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


def test_torch_integer_kernel_gets_no_gradient():
    torch = require_module("torch")
    x = torch.ones(4, 5, dtype=torch.float32, requires_grad=True)
    k = torch.tensor([[1, -1]])
    (gx,) = torch.autograd.grad(xcorr.corr2d(x, k).sum(), (x,))
    assert gx.dtype == torch.float32
    expected = np.zeros((4, 5))
    expected[:, 0], expected[:, -1] = 1, -1
    np.testing.assert_array_equal(gx.numpy(), expected)


def test_torch_vmap_of_integers():
    torch = require_module("torch")
    x = torch.arange(3 * 5 * 6).reshape(3, 5, 6)
    k = torch.tensor([[1, -1], [2, 0]])
    got = torch.func.vmap(lambda x: xcorr.corr2d(x, k, mode="same"))(x)
    assert got.dtype == torch.int64
    torch.testing.assert_close(got, xcorr.corr2d(x, k, mode="same"), rtol=0, atol=0)


def test_torch_func_grad_and_vmap():
    torch = require_module("torch")
    x, k, g, options, gx, gk = problem("batch", "corr2d", "same", "symm")
    xt, kt, gt = torch.asarray(x), torch.asarray(k), torch.asarray(g)

    def loss(x, k):
        return (xcorr.corr2d(x, k, **options) * gt).sum()

    got_x, got_k = torch.func.grad(loss, argnums=(0, 1))(xt, kt)
    torch.testing.assert_close(got_x, torch.asarray(gx), **EXACT)
    torch.testing.assert_close(got_k, torch.asarray(gk), **EXACT)

    # vmap over the batch of images (and over a batch of kernels) equals the batched call.
    per_image = torch.func.vmap(lambda x: xcorr.corr2d(x, kt, **options))(xt)
    torch.testing.assert_close(per_image, xcorr.corr2d(xt, kt, **options), **EXACT)
    kernels = torch.stack([kt, 2 * kt, -kt])
    per_kernel = torch.func.vmap(lambda k: xcorr.corr2d(xt, k, **options), in_dims=0, out_dims=1)(kernels)
    torch.testing.assert_close(per_kernel, xcorr.corr2d(xt[:, None], kernels, **options), **EXACT)
    # vmap of grad: the per-image input gradients are the rows of the batch's,
    # and the per-image kernel gradients sum to the batch's kernel gradient.
    per_image_gx = torch.func.vmap(
        torch.func.grad(lambda x, g: (xcorr.corr2d(x, kt, **options) * g).sum()), in_dims=(0, 0)
    )(xt, gt)
    torch.testing.assert_close(per_image_gx, torch.asarray(gx), **EXACT)
    per_image_gk = torch.func.vmap(
        torch.func.grad(lambda k, x, g: (xcorr.corr2d(x, k, **options) * g).sum()), in_dims=(None, 0, 0)
    )(kt, xt, gt)
    assert per_image_gk.shape == (x.shape[0], *k.shape)
    torch.testing.assert_close(per_image_gk.sum(dim=0), torch.asarray(gk), **EXACT)
    for i in range(x.shape[0]):
        torch.testing.assert_close(per_image_gk[i], torch.asarray(fd_vjp(x[i], k, g[i], **options)[1]), **EXACT)


# --- jax -------------------------------------------------------------------


@pytest.mark.parametrize(GRID, grid(boundaries=("wrap",))[:3] + grid(boundaries=("symm", "fill"))[6:9])
def test_jax_check_grads(name, mode, boundary, case):
    require_module("jax")
    from jax.test_util import check_grads

    x, k, _g, options, _gx, _gk = problem(case, name, mode, boundary)
    f = FUNCTIONS[name][0]
    check_grads(lambda x, k: f(x, k, **options), (x, k), order=2, modes=("rev",), atol=1e-9, rtol=1e-7, eps=1e-5)


def jnp_reference(x, k, *, mode, boundary, stride, dilation, fillvalue, convolve=False):
    """A plain jax.numpy correlation for one image (jnp.pad + taps), for jax.grad to differentiate."""
    import jax.numpy as jnp

    pad_mode = {"fill": "constant", "wrap": "wrap", "symm": "symmetric"}[boundary]
    if convolve:
        k = k[::-1, ::-1]
    (sh, sw), (dh, dw) = (stride if isinstance(stride, tuple) else (stride, stride)), (
        dilation if isinstance(dilation, tuple) else (dilation, dilation)
    )
    h, w = k.shape
    eh, ew = dh * (h - 1) + 1, dw * (w - 1) + 1
    kwargs = {"constant_values": fillvalue} if boundary == "fill" else {}
    xe = jnp.pad(x, ((eh - 1, eh - 1), (ew - 1, ew - 1)), mode=pad_mode, **kwargs)
    H, W = x.shape
    full = sum(
        k[a, b] * xe[a * dh : a * dh + H + eh - 1, b * dw : b * dw + W + ew - 1]
        for a in range(h)
        for b in range(w)
    )
    if mode == "valid":
        dense = full[eh - 1 : H, ew - 1 : W]
    elif mode == "same":
        oh, ow = ((eh - 1) // 2, (ew - 1) // 2) if convolve else (eh // 2, ew // 2)
        dense = full[oh : oh + H, ow : ow + W]
    else:
        dense = full
    return dense[::sh, ::sw]


@pytest.mark.parametrize(("name", "mode", "boundary"), [
    ("corr2d", "valid", "fill"), ("corr2d", "same", "wrap"), ("corr2d", "full", "symm"),
    ("conv2d", "valid", "wrap"), ("conv2d", "same", "symm"), ("conv2d", "full", "fill"),
])
def test_jax_grad_equals_grad_of_a_plain_jnp_reference(name, mode, boundary):
    jax = require_module("jax")
    x, k, g, options, gx, gk = problem("strided", name, mode, boundary)
    f, _, convolve = FUNCTIONS[name]
    np.testing.assert_allclose(jnp_reference(x, k, convolve=convolve, **options), reference(x, k, convolve=convolve, **options), **EXACT)

    def loss(f):
        return lambda x, k: (f(x, k) * g).sum()

    ours = jax.grad(loss(lambda x, k: f(x, k, **options)), argnums=(0, 1))(x, k)
    plain = jax.grad(loss(lambda x, k: jnp_reference(x, k, convolve=convolve, **options)), argnums=(0, 1))(x, k)
    for got, want, fd in zip(ours, plain, (gx, gk)):
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), **EXACT)
        np.testing.assert_allclose(np.asarray(got), fd, **EXACT)


def test_jax_jit_grad_vmap():
    jax = require_module("jax")
    jnp = jax.numpy
    x, k, g, options, gx, gk = problem("batch", "corr2d", "same", "wrap")
    x, k, g = jnp.asarray(x), jnp.asarray(k), jnp.asarray(g)

    def loss(x, k):
        return (xcorr.corr2d(x, k, **options) * g).sum()

    for transform in (jax.grad, lambda f, **kw: jax.jit(jax.grad(f, **kw))):
        got_x, got_k = transform(loss, argnums=(0, 1))(x, k)
        np.testing.assert_allclose(np.asarray(got_x), gx, **EXACT)
        np.testing.assert_allclose(np.asarray(got_k), gk, **EXACT)
    # vmap over images with a kernel closed over (concrete) and with a vmapped kernel.
    per_image = jax.jit(jax.vmap(lambda x: xcorr.corr2d(x, k, **options)))(x)
    np.testing.assert_allclose(np.asarray(per_image), np.asarray(xcorr.corr2d(x, k, **options)), **EXACT)
    # The per-image input gradients are the rows of the batch's; the per-image
    # kernel gradients sum to the batch's kernel gradient.
    per_image_gx = jax.vmap(jax.grad(lambda x, g: (xcorr.corr2d(x, k, **options) * g).sum()))(x, g)
    np.testing.assert_allclose(np.asarray(per_image_gx), gx, **EXACT)
    per_image_gk = jax.vmap(jax.grad(lambda k, x, g: (xcorr.corr2d(x, k, **options) * g).sum()), in_axes=(None, 0, 0))(k, x, g)
    assert per_image_gk.shape == (x.shape[0], *k.shape)
    np.testing.assert_allclose(np.asarray(per_image_gk).sum(axis=0), gk, **EXACT)
    for i in range(x.shape[0]):
        np.testing.assert_allclose(np.asarray(per_image_gk[i]), fd_vjp(np.asarray(x[i]), np.asarray(k), np.asarray(g[i]), **options)[1], **EXACT)
    per_kernel_gk = jax.vmap(jax.grad(loss, argnums=1), in_axes=(None, 0))(x, jnp.stack([k, 2 * k]))
    np.testing.assert_allclose(np.asarray(per_kernel_gk), np.stack([gk, gk]), **EXACT)


@pytest.mark.parametrize(("mode", "boundary", "stride", "dilation", "method"), [
    ("valid", "fill", 1, 1, "auto"),
    ("full", "fill", (2, 3), (1, 2), "direct"),
    ("same", "fill", 2, 1, "native"),
    ("same", "symm", 1, 2, "direct"),
    ("full", "wrap", 3, 1, "auto"),
])
def test_jax_batch_kernel_gradient_and_padded_extension(mode, boundary, stride, dilation, method):
    """A batch with one kernel (kernel_gradient_sum: planes as channels) and fill
    extensions by lax.pad, eager and jitted, against the tests' float64 reference and VJP."""
    jax = require_module("jax")
    jnp = jax.numpy
    rng = np.random.default_rng(21)
    x, k = rng.standard_normal((2, 3, 7, 9)), rng.standard_normal((3, 2))
    options = dict(mode=mode, boundary=boundary, stride=stride, dilation=dilation, fillvalue=0.5)
    y = fast_reference(x, k, **options)
    g = rng.standard_normal(y.shape)
    gx, gk = reference_vjp(x, k, g, **options)
    np.testing.assert_allclose(np.asarray(xcorr.corr2d(jnp.asarray(x), jnp.asarray(k), **options, method=method)), y, **EXACT)

    def loss(x, k):
        return (xcorr.corr2d(x, k, **options, method=method) * g).sum()

    for transform in (jax.grad, lambda f, **kw: jax.jit(jax.grad(f, **kw))):
        got_x, got_k = transform(loss, argnums=(0, 1))(jnp.asarray(x), jnp.asarray(k))
        np.testing.assert_allclose(np.asarray(got_x), gx, **EXACT)
        np.testing.assert_allclose(np.asarray(got_k), gk, **EXACT)
    from xcorr.backends.jax import ops as jax_ops

    assert not jax_ops.kernel_gradient_sum_applies(jnp, jnp.ones((2, 3, 3)), (2, 3, 3))


def test_jax_complex_check_grads():
    require_module("jax")
    from jax.test_util import check_grads

    rng = np.random.default_rng(12)
    x = rng.standard_normal((5, 6)) + 1j * rng.standard_normal((5, 6))
    k = rng.standard_normal((2, 3)) + 1j * rng.standard_normal((2, 3))
    f = lambda x, k: xcorr.corr2d(x, k, mode="full", boundary="symm", stride=2, fillvalue=0.5)  # noqa: E731
    check_grads(f, (x, k), order=1, modes=("rev",), atol=1e-9, rtol=1e-7, eps=1e-5)


def test_jax_integer_kernel():
    jax = require_module("jax")
    k = jax.numpy.asarray([[1, -1]])
    gx = jax.grad(lambda x: xcorr.corr2d(x, k).sum())(jax.numpy.ones((4, 5), dtype="float32"))
    assert gx.dtype == jax.numpy.float32
    expected = np.zeros((4, 5))
    expected[:, 0], expected[:, -1] = 1, -1
    np.testing.assert_array_equal(np.asarray(gx), expected)


# -- dilations wider than the image (issue 26): the VJP's memory follows the forward's -----------

WIDE_DILATION = {
    # (x shape, k shape, options): the taps' windows fall far apart, with gaps no window reads
    "same-fill": ((2, 5, 6), (3, 2), dict(mode="same", dilation=(9, 13), fillvalue=0.5)),
    "full-wrap-strided": ((4, 5), (2, 3), dict(mode="full", boundary="wrap", dilation=(11, 7), stride=(2, 3))),
    "same-reflect-rows": ((5, 7), (3, 2), dict(mode="same", boundary="reflect", dilation=(8, 1))),
    "padded-edge": ((2, 1, 4, 5), (3, 2, 2), dict(boundary="edge", padding=((9, 8), (7, 9)), dilation=(8, 10))),
    "same-symm-cols": ((6, 5), (2, 3), dict(mode="same", boundary="symm", dilation=(1, 9), stride=2)),
}


@pytest.mark.parametrize("name", FUNCTIONS)
@pytest.mark.parametrize("case", WIDE_DILATION)
def test_vjp_with_a_dilation_wider_than_the_image_matches_reference(backend, name, case):
    """The VJP on the taps' windows laid end to end, folded back with the boundary, against the float64 loop."""
    x_shape, k_shape, options = WIDE_DILATION[case]
    convolve = FUNCTIONS[name][2]
    x, k = random(x_shape, 20), random(k_shape, 21)
    g = random(fast_reference(x, k, convolve=convolve, **options).shape, 22)
    ex, ek = reference_vjp(x, k, g, convolve=convolve, **options)
    xb = backend.asarray(x)
    gx, gk = FUNCTIONS[name][1](xb, backend.asarray(k), backend.asarray(g), **options)
    assert_result(backend, gx, ex, "float64", like=xb)
    assert_result(backend, gk, ek, "float64", like=xb)
    if backend.adapter.autodiff:  # the framework's own backward goes the same way
        gx, gk = framework_vjp(backend, FUNCTIONS[name][0], xb, backend.asarray(k), backend.asarray(g), options)
        assert_result(backend, gx, ex, "float64")
        assert_result(backend, gk, ek, "float64")


def test_vjp_of_a_huge_dilation_allocates_what_the_forward_does(backend):
    """dilation=100_000 on both axes: the gradients (checked by the adjoint identities against the forward,
    which is linear in each operand with a zero fill) without an extended image or a dilated kernel, which
    would take hundreds of GiB. On numpy the peak of Python-tracked allocations stays under 4 MiB."""
    import tracemalloc

    rng = np.random.default_rng(23)
    x, k = rng.standard_normal((2, 9, 11)), rng.standard_normal((3, 2))
    dx, dk = rng.standard_normal(x.shape), rng.standard_normal(k.shape)
    for options in (dict(mode="same", dilation=100_000), dict(mode="same", boundary="wrap", dilation=(100_000, 99_999), stride=2)):
        forward = functools.partial(xcorr.corr2d, **options)
        g = rng.standard_normal(forward(x, k).shape)
        if backend.name == "numpy":
            tracemalloc.start()
            gx, gk = xcorr.corr2d_vjp(x, k, g, **options)
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            assert peak < 4 * 2**20, f"peak {peak} bytes"
        gx, gk = xcorr.corr2d_vjp(backend.asarray(x), backend.asarray(k), backend.asarray(g), **options)
        if backend.name == "dask":  # issue 25: a graph of the forward's size, not one that never finished
            assert max(len(gx.__dask_graph__()), len(gk.__dask_graph__())) < 10_000
        gx, gk = backend.to_numpy(gx), backend.to_numpy(gk)
        assert np.vdot(gk, dk) == pytest.approx(np.vdot(g, forward(x, dk)), rel=1e-10, abs=1e-10)
        assert np.vdot(gx, dx) == pytest.approx(np.vdot(g, forward(dx, k)), rel=1e-10, abs=1e-10)
        if backend.adapter.autodiff:
            fx, fk = framework_vjp(backend, xcorr.corr2d, backend.asarray(x), backend.asarray(k), backend.asarray(g), options)
            np.testing.assert_allclose(backend.to_numpy(fx), gx, rtol=1e-12, atol=1e-12)
            np.testing.assert_allclose(backend.to_numpy(fk), gk, rtol=1e-12, atol=1e-12)
