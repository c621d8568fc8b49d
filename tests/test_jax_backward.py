"""The jax adapter's backward pass against numpy's VJP.

backends/jax.py gives each tap of a fill-extended direct correlation its own
``lax.pad`` (negative widths crop), which the input gradient's "full"
correlation runs through; these cases cover every mode and boundary with
strides, dilations, kernels larger than the fill margin and batches.
"""

from __future__ import annotations

import numpy as np
import pytest

import xcorr

jax = pytest.importorskip("jax")
jnp = jax.numpy

# (x shape, k shape, stride, dilation)
CASES = {
    "plain": ((45, 37), (3, 3), 1, 1),
    "one-band": ((9, 12), (2, 3), 1, 1),
    "strided": ((83, 41), (3, 2), (2, 3), (1, 2)),
    "dilated": ((70, 50), (2, 3), 1, (3, 2)),
    "batch": ((3, 40, 33), (3, 3), 1, 1),
    "broadcast": ((2, 1, 38, 30), (3, 2, 3), 2, 1),
    "kernel-batch": ((41, 29), (2, 3, 3), 1, 1),
    "row-kernel": ((30, 140), (1, 5), 1, 1),
    "5x5": ((90, 60), (5, 5), 1, 1),
    "kernel-wider-than-x": ((6, 4), (3, 7), 1, (1, 2)),
}
FUNCTIONS = ("corr2d", "conv2d")
MODES = ("valid", "same", "full")
BOUNDARIES = ("fill", "wrap", "symm")


def grid():
    """Every (function, mode, boundary), each with the next case in turn (not the full product)."""
    combos = [(f, m, b) for f in FUNCTIONS for m in MODES for b in BOUNDARIES]
    names = list(CASES)
    return [
        pytest.param(*combo, names[(i + j) % len(names)], id=f"{'-'.join(combo)}-{names[(i + j) % len(names)]}")
        for i, combo in enumerate(combos)
        for j in (0, len(names) // 2)
    ]


def _vjps(name, x, k, g, **options):
    vjp = xcorr.corr2d_vjp if name == "corr2d" else xcorr.conv2d_vjp
    want = vjp(x, k, g, **options)
    got = vjp(jnp.asarray(x), jnp.asarray(k), jnp.asarray(g), **options)
    return want, got


def _inputs(x_shape, k_shape, options, dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)

    def draw(shape):
        a = rng.standard_normal(shape)
        if np.dtype(dtype).kind == "c":
            a = a + 1j * rng.standard_normal(shape)
        return a.astype(dtype)

    x, k = draw(x_shape), draw(k_shape)
    g = draw(xcorr.corr2d(x, k, **options).shape)
    return x, k, g


@pytest.mark.parametrize(("name", "mode", "boundary", "case"), grid())
def test_vjp_matches_numpy(name, mode, boundary, case):
    x_shape, k_shape, stride, dilation = CASES[case]
    if mode == "valid" and case == "kernel-wider-than-x":
        pytest.skip('a kernel larger than x is an error in "valid" mode')
    options = dict(mode=mode, boundary=boundary, fillvalue=0.5, stride=stride, dilation=dilation, method="direct")
    x, k, g = _inputs(x_shape, k_shape, options)
    (gx, gk), (jgx, jgk) = _vjps(name, x, k, g, **options)
    np.testing.assert_allclose(np.asarray(jgx), gx, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(np.asarray(jgk), gk, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("dtype", [np.float32, np.complex128, np.int64])
def test_dtypes(dtype):
    options = dict(mode="same", boundary="fill", method="direct")
    x, k, g = _inputs((50, 44), (3, 3), options, dtype=dtype if dtype != np.int64 else np.float64)
    if dtype == np.int64:
        x, k, g = (np.round(a * 10).astype(np.int64) for a in (x, k, g))
    (gx, gk), (jgx, jgk) = _vjps("corr2d", x, k, g, **options)
    assert jgk.dtype == gk.dtype and jgx.dtype == gx.dtype
    tol = 1e-4 if dtype == np.float32 else 1e-10
    np.testing.assert_allclose(np.asarray(jgk), gk, rtol=tol, atol=tol * np.abs(gk).max())
    np.testing.assert_allclose(np.asarray(jgx), gx, rtol=tol, atol=tol * np.abs(gx).max())


def test_grad_under_jit_and_vmap():
    options = dict(mode="same", boundary="symm", stride=(1, 2))
    x, k, g = _inputs((4, 40, 36), (3, 3), options)
    x, k, g = (jnp.asarray(a) for a in (x, k, g))

    def loss(x, k, g):
        return (xcorr.corr2d(x, k, **options) * g).sum()

    grad = jax.jit(jax.grad(loss, argnums=(0, 1)))
    per_plane = jax.vmap(grad, in_axes=(0, None, 0))(x, k, g)
    for i in range(x.shape[0]):
        want = xcorr.corr2d_vjp(np.asarray(x[i]), np.asarray(k), np.asarray(g[i]), **options)
        np.testing.assert_allclose(np.asarray(per_plane[0][i]), want[0], rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(np.asarray(per_plane[1][i]), want[1], rtol=1e-10, atol=1e-10)
    gx, gk = grad(x, k, g)
    want = xcorr.corr2d_vjp(np.asarray(x), np.asarray(k), np.asarray(g), **options)
    np.testing.assert_allclose(np.asarray(gk), want[1], rtol=1e-10, atol=1e-10)
