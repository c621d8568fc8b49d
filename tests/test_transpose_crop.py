"""Transposed convolution with a dilation and a padding far larger than the output (issue 25, item 7):
only the inputs and taps whose scatter reaches the cropped output are computed, exactly as torch's
F.conv_transpose2d and its autograd give them, and the huge case stays small on every backend."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import xcorr

from matrix import require_module

torch = require_module("torch")
F = torch.nn.functional

# (hw, kernel, stride, dilation, padding, output_padding): the crop reaches a few taps, or none
# (the output falls between two taps' scatters), or all of them.
CASES = [
    ((5, 4), (3, 2), (1, 1), (20, 13), (20, 2), (0, 0)),
    ((5, 4), (3, 2), (2, 3), (20, 13), (20, 8), (1, 1)),
    ((5, 4), (3, 3), (1, 2), (7, 9), (6, 10), (0, 1)),
    ((3, 6), (2, 3), (2, 3), (20, 13), (10, 15), (1, 2)),
    ((1, 6), (3, 3), (1, 1), (20, 13), (20, 3), (0, 0)),
    ((4, 4), (3, 3), (1, 1), (1, 1), (1, 1), (0, 0)),
]


def _operands(hw, kernel, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((2, 3, *hw)), rng.standard_normal((3, 2, *kernel))


def _torch(x, w, g, **options):
    xt = torch.tensor(x, requires_grad=True)
    wt = torch.tensor(w, requires_grad=True)
    y = F.conv_transpose2d(xt, wt, **options)
    y.backward(torch.tensor(g))
    return y.detach().numpy(), xt.grad.numpy(), wt.grad.numpy()


@pytest.mark.parametrize(("hw", "kernel", "stride", "dilation", "padding", "output_padding"), CASES)
def test_cropped_transpose_and_vjps_equal_torch(backend, hw, kernel, stride, dilation, padding, output_padding):
    x, w = _operands(hw, kernel)
    options = dict(stride=stride, dilation=dilation, padding=padding, output_padding=output_padding)
    shape = F.conv_transpose2d(torch.tensor(x), torch.tensor(w), **options).shape
    g = np.random.default_rng(1).standard_normal(shape)
    y_ref, gx_ref, gw_ref = _torch(x, w, g, **options)
    xb, wb, gb = backend.asarray(x), backend.asarray(w), backend.asarray(g)
    y = xcorr.conv_transpose2d(xb, wb, **options)
    np.testing.assert_allclose(backend.to_numpy(y), y_ref, rtol=1e-12, atol=1e-12)
    gx, gw = xcorr.conv_transpose2d_vjp(xb, wb, gb, **options)
    np.testing.assert_allclose(backend.to_numpy(gx), gx_ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(backend.to_numpy(gw), gw_ref, rtol=1e-12, atol=1e-12)
    # One plane: corr2d_transpose is conv_transpose2d of one channel.
    y_ref, gx_ref, gw_ref = _torch(x[:, :1], w[:1, :1], g[:, :1], **options)
    y = xcorr.corr2d_transpose(backend.asarray(x[:, 0]), backend.asarray(w[0, 0]), **options)
    np.testing.assert_allclose(backend.to_numpy(y), y_ref[:, 0], rtol=1e-12, atol=1e-12)
    gx, gk = xcorr.corr2d_transpose_vjp(
        backend.asarray(x[:, 0]), backend.asarray(w[0, 0]), backend.asarray(g[:, 0]), **options
    )
    np.testing.assert_allclose(backend.to_numpy(gx), gx_ref[:, 0], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(backend.to_numpy(gk), gw_ref[0, 0], rtol=1e-12, atol=1e-12)


def test_huge_dilation_and_padding_stay_small(backend):
    """8x8 input, 3x3 kernel, dilation and padding 100000: the uncropped result would be 200008**2 per
    channel (hundreds of GB); the output is 8x8, where only the middle tap lands."""
    if backend.gpu:
        pytest.skip(f"{backend.name}: the reduction is the core's, checked on the CPU backends")
    x, w = _operands((8, 8), (3, 3))
    options = dict(dilation=100_000, padding=100_000)
    expected = np.einsum("ncij,co->noij", x, w[:, :, 1, 1])
    g = np.random.default_rng(2).standard_normal(expected.shape)
    xb, wb, gb = backend.asarray(x), backend.asarray(w), backend.asarray(g)
    y = xcorr.conv_transpose2d(xb, wb, **options)
    gx, gw = xcorr.conv_transpose2d_vjp(xb, wb, gb, **options)
    y1 = xcorr.corr2d_transpose(backend.asarray(x[:, 0]), backend.asarray(w[0, 0]), **options)
    gx1, gk1 = xcorr.corr2d_transpose_vjp(
        backend.asarray(x[:, 0]), backend.asarray(w[0, 0]), backend.asarray(g[:, 0]), **options
    )
    np.testing.assert_allclose(backend.to_numpy(y), expected, rtol=1e-12)
    np.testing.assert_allclose(backend.to_numpy(gx), np.einsum("noij,co->ncij", g, w[:, :, 1, 1]), rtol=1e-12)
    gw_expected = np.zeros_like(w)
    gw_expected[:, :, 1, 1] = np.einsum("ncij,noij->co", x, g)
    np.testing.assert_allclose(backend.to_numpy(gw), gw_expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(backend.to_numpy(y1), x[:, 0] * w[0, 0, 1, 1], rtol=1e-12)
    np.testing.assert_allclose(backend.to_numpy(gx1), g[:, 0] * w[0, 0, 1, 1], rtol=1e-12)
    gk_expected = np.zeros((3, 3))
    gk_expected[1, 1] = np.sum(x[:, 0] * g[:, 0])
    np.testing.assert_allclose(backend.to_numpy(gk1), gk_expected, rtol=1e-12, atol=1e-12)


def test_huge_case_memory_is_bounded_on_numpy():
    """tracemalloc: the huge case allocates kilobytes (the uncropped result would be 1.2 TB)."""
    import tracemalloc

    x, w = _operands((8, 8), (3, 3))
    options = dict(dilation=100_000, padding=100_000)
    tracemalloc.start()
    try:
        y = xcorr.conv_transpose2d(x, w, **options)
        xcorr.conv_transpose2d_vjp(x, w, np.ones_like(y), **options)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 10 * 2**20, peak


@pytest.mark.parametrize("layer", ["torch", "jax"])
def test_autodiff_through_the_huge_case(layer):
    """torch autograd and jax.grad through conv_transpose2d take the reduced problem too."""
    x, w = _operands((8, 8), (3, 3))
    options = dict(dilation=100_000, padding=100_000)
    gw_expected = np.zeros_like(w)
    gw_expected[:, :, 1, 1] = np.einsum("ncij->c", x)[:, None]
    if layer == "torch":
        wt = torch.tensor(w, requires_grad=True)
        xcorr.conv_transpose2d(torch.tensor(x), wt, **options).sum().backward()
        got = wt.grad.numpy()
    else:
        jax = require_module("jax")
        with jax.enable_x64(True):
            f = jax.jit(lambda b: xcorr.conv_transpose2d(jax.numpy.asarray(x), b, **options).sum())
            got = np.asarray(jax.grad(f)(jax.numpy.asarray(w)))
    np.testing.assert_allclose(got, gw_expected, rtol=1e-12)


def test_reach_covers_every_landing_tap():
    """The reach along one axis against brute force: every (input, tap) landing in the window is inside it."""
    from xcorr._options import AxisPlan
    from xcorr._transpose_plan import axis_reach

    for count, taps, dilation, step, e0, length in itertools.product(
        (1, 3, 5), (1, 2, 4), (1, 3, 7), (1, 2, 3), (0, 2, 9, 20), (1, 3, 8)
    ):
        size = (count - 1) * step + (taps - 1) * dilation + 1
        ap = AxisPlan(size, taps, dilation, step, 0, count)
        reach = axis_reach(ap, e0, e0 + length)
        landing = [(i, a) for i in range(count) for a in range(taps) if e0 <= i * step + a * dilation < e0 + length]
        if not landing:
            assert reach.empty
            continue
        assert all(reach.i0 <= i < reach.i1 and reach.a0 <= a < reach.a1 for i, a in landing)
        start = reach.i0 * step + reach.a0 * dilation
        assert start + reach.offset == e0
        assert reach.extent == (reach.i1 - reach.i0 - 1) * step + (reach.a1 - 1 - reach.a0) * dilation + 1


@pytest.mark.parametrize(
    ("axes", "function"),
    [(1, "conv_transpose1d"), (2, "conv_transpose2d"), (3, "conv_transpose3d"),
     (1, "corr1d_transpose"), (2, "corr2d_transpose"), (3, "corr3d_transpose")],
)  # fmt: skip
def test_an_output_no_tap_reaches_keeps_zero_gradients_on_torch(axes, function):
    """Every input and tap cropped away (a dilation leaps over the output): torch's transposed
    convolution gives them zero gradients, and so must xcorr's, not None (autograd.grad refused the
    call, and a torch optimizer skips a parameter whose gradient is None, weight decay included)."""
    rng = np.random.default_rng(4)
    multi = function.startswith("conv")
    x_shape, w_shape = ((1, 2, *[2] * axes), (2, 3, *[2] * axes)) if multi else ([2] * axes, [2] * axes)
    x = torch.tensor(rng.standard_normal(x_shape), requires_grad=True)
    w = torch.tensor(rng.standard_normal(w_shape), requires_grad=True)
    # Two inputs and two taps 5 apart land on 0, 1 and 5, 6 of 7 positions; cropping 2 each side
    # keeps 2, 3 and 4, which none of them reaches.
    options = {"dilation": 5, "padding": 2}
    y = getattr(xcorr, function)(x, w, **options)
    if multi:
        expected = getattr(F, function)(x, w, **options)
    else:  # one plane, one channel: the transposed correlation is the transposed convolution of the flipped kernel
        flipped = torch.flip(w, dims=tuple(range(axes)))[None, None]
        expected = getattr(F, f"conv_transpose{axes}d")(x[None, None], flipped, **options)[0, 0]
    assert tuple(y.shape) == tuple(expected.shape) and bool((y == 0).all()) and bool((expected == 0).all())
    gx, gw = torch.autograd.grad((y * torch.ones_like(y)).sum(), (x, w))
    assert bool((gx == 0).all()) and bool((gw == 0).all())
    assert gx.shape == x.shape and gw.shape == w.shape


@pytest.mark.parametrize("dtype", ["int32", "float32"])
def test_an_output_no_tap_reaches_has_the_dtype_of_any_other(backend, dtype):
    """The zeros of an output that no tap reaches have the dtype the same call gives where taps do
    reach it (numpy sums an int32 array as int64: the zeros must not take that up)."""
    x = backend.asarray(np.ones((2, 2), dtype))
    k = backend.asarray(np.ones((1, 1), dtype))
    reached = xcorr.corr2d_transpose(x, k, stride=(1, 2))
    unreached = xcorr.corr2d_transpose(x, k, stride=(1, 2), padding=((0, 0), (1, 1)))
    assert str(unreached.dtype) == str(reached.dtype) and tuple(unreached.shape) == (2, 1)
    assert np.all(backend.to_numpy(unreached) == 0)
    xm, wm = backend.asarray(np.ones((1, 2, 2, 2), dtype)), backend.asarray(np.ones((2, 1, 1, 1), dtype))
    y = xcorr.conv_transpose2d(xm, wm, stride=(1, 2), padding=(0, 1))
    assert str(y.dtype) == str(xcorr.conv_transpose2d(xm, wm, stride=(1, 2)).dtype) and tuple(y.shape) == (1, 1, 2, 1)
