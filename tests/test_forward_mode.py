"""Forward mode and second derivatives of corr2d/conv2d/corr2d_multi.

The map is bilinear in ``(x, k)`` (affine in ``x`` with a non-zero fill), so
the central difference ``(f(x + dx, k + dk) - f(x - dx, k - dk)) / 2`` of the
float64 reference is its exact tangent for any step: the second-order term
``f(dx, dk)`` and the fill constant cancel. Every forward-mode result is
compared with it, and on torch and jax the forward-mode Jacobian with the
reverse-mode one and Hessian-vector products with ``jvp(grad)``.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest

import xcorr

from matrix import assert_result, require_module
from reference import reference, reference_multi

# (x shape, k shape, options): modes, boundaries, a non-zero fill, stride,
# dilation, batches with one kernel and broadcast kernels, and each method.
CASES = {
    "valid": ((5, 7), (2, 3), dict(mode="valid")),
    "same-fill": ((6, 5), (3, 2), dict(mode="same", fillvalue=1.5)),
    "full-wrap-strided": (
        (7, 8),
        (3, 2),
        dict(mode="full", boundary="wrap", stride=(2, 3), dilation=(1, 2)),
    ),
    "same-symm-batch": (
        (2, 5, 6),
        (2, 2),
        dict(mode="same", boundary="symm", stride=2),
    ),
    "broadcast-dilated": ((2, 1, 5, 6), (3, 2, 3), dict(mode="full", dilation=(2, 1))),
    "fft": ((6, 7), (3, 3), dict(mode="same", method="fft")),
    "direct-wrap": (
        (6, 7),
        (2, 3),
        dict(mode="same", boundary="wrap", method="direct", dilation=2),
    ),
}
FUNCTIONS = {
    "corr2d": (xcorr.corr2d, xcorr.corr2d_jvp, False),
    "conv2d": (xcorr.conv2d, xcorr.conv2d_jvp, True),
}
# corr2d_multi: (x shape, w shape, groups, options).
MULTI = {
    "channels": ((2, 3, 5, 6), (4, 3, 2, 3), 1, dict(mode="same", boundary="wrap")),
    "groups-strided": (
        (1, 4, 6, 5),
        (2, 2, 3, 2),
        2,
        dict(mode="full", stride=2, dilation=(1, 2), fillvalue=0.5),
    ),
}
# torch's first forward-mode call loads its JVP decompositions through torch.jit.script, whose
# deprecation notice is a DeprecationWarning up to torch 2.13 and a FutureWarning from 2.14 on:
# matched by its text, whatever its category.
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated")
PARAMS = [
    pytest.param(name, case, id=f"{name}-{case}")
    for name in FUNCTIONS
    for case in CASES
]


def random(shape, seed):
    return np.random.default_rng(seed).standard_normal(shape)


@functools.cache
def problem(name, case):
    """Inputs, options, directions and the finite-difference tangent of one case."""
    x_shape, k_shape, options = CASES[case]
    x, k, dx, dk = (
        random(x_shape, 1),
        random(k_shape, 2),
        random(x_shape, 3),
        random(k_shape, 4),
    )
    options = dict(options)
    convolve = FUNCTIONS[name][2]
    reference_options = {
        key: value for key, value in options.items() if key != "method"
    }
    up = reference(x + dx, k + dk, convolve=convolve, **reference_options)
    down = reference(x - dx, k - dk, convolve=convolve, **reference_options)
    return x, k, dx, dk, options, (up - down) / 2


@functools.cache
def multi_problem(case):
    x_shape, w_shape, groups, options = MULTI[case]
    x, w, dx, dw = (
        random(x_shape, 5),
        random(w_shape, 6),
        random(x_shape, 7),
        random(w_shape, 8),
    )
    up = reference_multi(x + dx, w + dw, groups=groups, **options)
    down = reference_multi(x - dx, w - dw, groups=groups, **options)
    return x, w, dx, dw, groups, dict(options), (up - down) / 2


# -- the public JVP (every backend) --------------------------------------------


@pytest.mark.parametrize(("name", "case"), PARAMS)
def test_public_jvp_equals_finite_differences(backend, name, case):
    x, k, dx, dk, options, expected = problem(name, case)
    if backend.name == "array_api_strict" or backend.name == "dask":
        options = {
            key: value for key, value in options.items() if key != "method"
        }  # no FFT choice to make
    jvp = FUNCTIONS[name][1]
    xb = backend.asarray(x)
    got = jvp(
        xb, backend.asarray(k), backend.asarray(dx), backend.asarray(dk), **options
    )
    assert_result(backend, got, expected, "float64", like=xb)


def test_public_jvp_of_one_direction(backend):
    # A None direction is zero: the tangent is one correlation, linear in the other.
    x, k, dx, dk, options, _ = problem("corr2d", "same-fill")
    xb, kb = backend.asarray(x), backend.asarray(k)
    only_x = xcorr.corr2d_jvp(xb, kb, backend.asarray(dx), None, **options)
    only_k = xcorr.corr2d_jvp(xb, kb, None, backend.asarray(dk), **options)
    linear = {**options, "fillvalue": 0}
    assert_result(backend, only_x, reference(dx, k, **linear), "float64")
    assert_result(backend, only_k, reference(x, dk, **options), "float64")


@pytest.mark.parametrize("case", MULTI)
def test_public_multi_jvp_equals_finite_differences(backend, case):
    x, w, dx, dw, groups, options, expected = multi_problem(case)
    xb = backend.asarray(x)
    got = xcorr.corr2d_multi_jvp(
        xb,
        backend.asarray(w),
        backend.asarray(dx),
        backend.asarray(dw),
        groups=groups,
        **options,
    )
    assert_result(backend, got, expected, "float64", like=xb)


@pytest.mark.parametrize("data_format", ["channels_first", "channels_last"])
@pytest.mark.parametrize(
    "options",
    [
        dict(mode="same", fillvalue=1.5),
        dict(padding=((2, 0), (1, 2)), fillvalue=-2.5, stride=2),
        dict(mode="full", fillvalue=3.0, dilation=(2, 1)),
    ],
    ids=["same", "padding-strided", "full-dilated"],
)
def test_public_multi_jvp_with_a_fill_equals_finite_differences(backend, options, data_format):
    """A non-zero fill is a constant: the tangent of dx reads zeros outside it, in both layouts.
    Oracle: the central difference of the float64 reference (the fill cancels in it)."""
    x, w, dx, dw = random((2, 4, 5, 6), 9), random((6, 2, 3, 2), 10), random((2, 4, 5, 6), 11), random((6, 2, 3, 2), 12)
    up = reference_multi(x + dx, w + dw, groups=2, **options)
    down = reference_multi(x - dx, w - dw, groups=2, **options)
    only_dx = reference_multi(dx, w, groups=2, **{**options, "fillvalue": 0})
    last = data_format == "channels_last"

    def layout(a):
        return np.moveaxis(a, -3, -1) if last else a

    xb, wb = backend.asarray(layout(x)), backend.asarray(w)
    got = xcorr.corr2d_multi_jvp(
        xb, wb, backend.asarray(layout(dx)), backend.asarray(dw), groups=2, data_format=data_format, **options
    )
    assert_result(backend, got, layout((up - down) / 2), "float64", like=xb)
    got = xcorr.corr2d_multi_jvp(
        xb, wb, backend.asarray(layout(dx)), None, groups=2, data_format=data_format, **options
    )
    assert_result(backend, got, layout(only_dx), "float64", like=xb)


@pytest.mark.parametrize("name", FUNCTIONS)
def test_public_jvp_of_dx_with_a_fill_equals_finite_differences(backend, name):
    """corr2d_jvp/conv2d_jvp of dx alone with a non-zero fill: the central difference in x of the reference."""
    convolve = FUNCTIONS[name][2]
    x, k, dx = random((2, 5, 6), 13), random((3, 2), 14), random((2, 5, 6), 15)
    for options in (dict(mode="same", fillvalue=1.5), dict(padding=(2, 1), fillvalue=-4.0, stride=(2, 1))):
        expected = (reference(x + dx, k, convolve=convolve, **options) - reference(x - dx, k, convolve=convolve, **options)) / 2
        got = FUNCTIONS[name][1](backend.asarray(x), backend.asarray(k), backend.asarray(dx), None, **options)
        assert_result(backend, got, expected, "float64")


def test_public_jvp_errors():
    x, k = np.ones((4, 5)), np.ones((2, 2))
    with pytest.raises(
        ValueError, match=r"dx must have the shape of x, \(4, 5\); got shape \(4, 4\)"
    ):
        xcorr.corr2d_jvp(x, k, np.ones((4, 4)), None)
    with pytest.raises(
        ValueError, match=r"dk must have the shape of k, \(2, 2\); got shape \(2, 3\)"
    ):
        xcorr.conv2d_jvp(x, k, None, np.ones((2, 3)))
    with pytest.raises(ValueError, match="conv2d_jvp needs a direction"):
        xcorr.conv2d_jvp(x, k, None, None)
    with pytest.raises(ValueError, match="dw must have the shape of w"):
        xcorr.corr2d_multi_jvp(
            np.ones((2, 4, 5)), np.ones((1, 2, 2, 2)), None, np.ones((1, 2, 2, 3))
        )
    with pytest.raises(TypeError, match="dx must be an array"):
        xcorr.corr2d_jvp(x, k, [[1.0]], None)


# -- torch ----------------------------------------------------------------------


def _torch_inputs(*arrays):
    torch = require_module("torch")
    return torch, [torch.asarray(a.copy()) for a in arrays]


@pytest.mark.parametrize(("name", "case"), PARAMS)
def test_torch_forward_mode(name, case):
    x, k, dx, dk, options, expected = problem(name, case)
    torch, (xt, kt, dxt, dkt) = _torch_inputs(x, k, dx, dk)
    f = FUNCTIONS[name][0]

    def g(x, k):
        return f(x, k, **options)

    _, tangent = torch.func.jvp(g, (xt, kt), (dxt, dkt))
    np.testing.assert_allclose(tangent.numpy(), expected, rtol=1e-12, atol=1e-12)
    with torch.autograd.forward_ad.dual_level():
        dual = g(
            torch.autograd.forward_ad.make_dual(xt, dxt),
            torch.autograd.forward_ad.make_dual(kt, dkt),
        )
        np.testing.assert_allclose(
            torch.autograd.forward_ad.unpack_dual(dual).tangent.numpy(),
            expected,
            rtol=1e-12,
            atol=1e-12,
        )
    forward = torch.func.jacfwd(g, argnums=(0, 1))(xt, kt)
    reverse = torch.func.jacrev(g, argnums=(0, 1))(xt, kt)
    for a, b in zip(forward, reverse):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("case", ["same-fill", "full-wrap-strided", "fft"])
def test_torch_gradcheck_forward_and_double_backward(case):
    x, k, *_, options, _ = problem("corr2d", case)
    torch, (xt, kt) = _torch_inputs(x, k)
    xt.requires_grad_(True)
    kt.requires_grad_(True)

    def g(x, k):
        return xcorr.corr2d(x, k, **options)

    assert torch.autograd.gradcheck(
        g, (xt, kt), check_forward_ad=True, check_backward_ad=True
    )
    assert torch.autograd.gradgradcheck(
        g, (xt, kt), check_fwd_over_rev=True, check_rev_over_rev=True
    )


@pytest.mark.parametrize("case", ["same-symm-batch", "fft"])
def test_torch_hessian_vector_product(case):
    x, k, _dx, dk, options, _ = problem("conv2d", case)
    torch, (xt, kt, dkt) = _torch_inputs(x, k, dk)

    def loss(k):
        return torch.sin(xcorr.conv2d(xt, k, **options)).sum()

    hessian = torch.func.hessian(loss)(kt)
    hvp = torch.func.jvp(torch.func.grad(loss), (kt,), (dkt,))[1]
    torch.testing.assert_close(
        torch.tensordot(hessian, dkt, dims=dkt.ndim), hvp, rtol=1e-10, atol=1e-10
    )
    # Reverse over reverse gives the same product.
    k_leaf = kt.clone().requires_grad_(True)
    (gk,) = torch.autograd.grad(loss(k_leaf), k_leaf, create_graph=True)
    (reverse,) = torch.autograd.grad(gk, k_leaf, dkt)
    torch.testing.assert_close(reverse, hvp, rtol=1e-10, atol=1e-10)


def test_torch_jvp_under_vmap():
    x, k, _dx, _dk, options, _ = problem("corr2d", "full-wrap-strided")
    torch, (xt, kt) = _torch_inputs(x, k)
    directions = torch.asarray(random((3, *k.shape), 9))

    def tangent(d):
        return torch.func.jvp(lambda k: xcorr.corr2d(xt, k, **options), (kt,), (d,))[1]

    got = torch.func.vmap(tangent)(directions)
    expected = np.stack(
        [reference(x, d, **options) for d in directions.numpy()]
    )  # linear in k
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-12, atol=1e-12)


def test_torch_layer_forward_mode():
    torch = require_module("torch")
    x, w, dx, dw, groups, options, expected = multi_problem(
        "channels"
    )  # the layer has no fillvalue
    layer = xcorr.Conv2D(
        tuple(w.shape[-2:]),
        in_channels=x.shape[1],
        out_channels=w.shape[0],
        groups=groups,
        bias=False,
        backend="torch",
        dtype="float64",
        **options,
    )
    params = {"weight": torch.asarray(w.copy())}
    xt, dxt, dwt = (torch.asarray(a.copy()) for a in (x, dx, dw))

    def g(x, weight):
        return torch.func.functional_call(layer, {"weight": weight}, (x,))

    _, tangent = torch.func.jvp(g, (xt, params["weight"]), (dxt, dwt))
    np.testing.assert_allclose(tangent.numpy(), expected, rtol=1e-12, atol=1e-12)


# -- jax ------------------------------------------------------------------------


def _jax():
    jax = require_module("jax")
    return jax, jax.numpy


@pytest.mark.parametrize(("name", "case"), PARAMS)
def test_jax_forward_mode(name, case):
    jax, jnp = _jax()
    x, k, dx, dk, options, expected = problem(name, case)
    f = FUNCTIONS[name][0]

    def g(x, k):
        return f(jnp.asarray(x), jnp.asarray(k), **options)

    args, directions = (
        (jnp.asarray(x), jnp.asarray(k)),
        (jnp.asarray(dx), jnp.asarray(dk)),
    )
    _, tangent = jax.jit(lambda a, d: jax.jvp(g, a, d))(args, directions)
    np.testing.assert_allclose(np.asarray(tangent), expected, rtol=1e-12, atol=1e-12)
    _, linear = jax.linearize(g, *args)
    np.testing.assert_allclose(
        np.asarray(linear(*directions)), expected, rtol=1e-12, atol=1e-12
    )
    forward = jax.jacfwd(g, argnums=(0, 1))(*args)
    reverse = jax.jacrev(g, argnums=(0, 1))(*args)
    for a, b in zip(forward, reverse):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("case", ["same-fill", "broadcast-dilated", "fft"])
def test_jax_check_grads_second_order(case):
    _, jnp = _jax()
    from jax.test_util import check_grads

    x, k, *_, options, _ = problem("corr2d", case)
    check_grads(
        lambda x, k: xcorr.corr2d(jnp.asarray(x), jnp.asarray(k), **options),
        (jnp.asarray(x), jnp.asarray(k)),
        order=2,
        modes=("fwd", "rev"),
    )


@pytest.mark.parametrize(
    ("case", "shape"), [("same-symm-batch", None), ("valid", (130, 130))]
)
def test_jax_hessian_vector_product(case, shape):
    # (130, 130): enough outputs for numba's kernels as XLA custom calls, whose
    # second derivatives go through XLA's own ops.
    jax, jnp = _jax()
    x, k, _dx, dk, options, _ = problem("conv2d", case)
    x = jnp.asarray(random(shape, 10) if shape else x)
    k, dk = jnp.asarray(k), jnp.asarray(dk)

    def loss(k):
        return jnp.sum(jnp.sin(xcorr.conv2d(x, k, **options)))

    hessian = jax.hessian(loss)(k)
    hvp = jax.jvp(jax.grad(loss), (k,), (dk,))[1]
    np.testing.assert_allclose(
        np.tensordot(hessian, dk, axes=dk.ndim), hvp, rtol=1e-10, atol=1e-10
    )
    # Reverse over reverse gives the same product.
    reverse = jax.grad(lambda k: jnp.vdot(jax.grad(loss)(k), dk))(k)
    np.testing.assert_allclose(
        np.asarray(reverse), np.asarray(hvp), rtol=1e-10, atol=1e-10
    )


def test_jax_jvp_under_vmap():
    jax, jnp = _jax()
    x, k, _dx, _dk, options, _ = problem("corr2d", "full-wrap-strided")
    xs = jnp.asarray(random((3, *x.shape), 11))

    def tangent(x):
        return jax.jvp(
            lambda x: xcorr.corr2d(x, jnp.asarray(k), **options), (x,), (x,)
        )[1]

    got = jax.jit(jax.vmap(tangent))(xs)
    expected = np.stack(
        [reference(a, k, **options) for a in np.asarray(xs)]
    )  # linear in x (zero fill)
    np.testing.assert_allclose(np.asarray(got), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("case", MULTI)
def test_jax_multi_forward_mode(case):
    jax, jnp = _jax()
    x, w, dx, dw, groups, options, expected = multi_problem(case)

    def g(x, w):
        return xcorr.corr2d_multi(x, w, groups=groups, **options)

    args = (jnp.asarray(x), jnp.asarray(w))
    _, tangent = jax.jvp(g, args, (jnp.asarray(dx), jnp.asarray(dw)))
    np.testing.assert_allclose(np.asarray(tangent), expected, rtol=1e-12, atol=1e-12)
    forward = jax.jacfwd(g, argnums=(0, 1))(*args)
    reverse = jax.jacrev(g, argnums=(0, 1))(*args)
    for a, b in zip(forward, reverse):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-12, atol=1e-12)
