"""One integer rule (issue 25, item 1): the result dtype is the inputs' promoted dtype, and the
arithmetic wraps in it, for every reduction (channel sums, groups, batch sums of gradients, JVP
terms, transposed convolution), identically on every backend.

The oracle is independent of xcorr: the exact sums in Python ints (NumPy object arrays), then
reduced modulo ``2**bits`` into the dtype's range, as two's-complement arithmetic would leave them.
The values are large enough that every sum wraps, and wraps differently from a per-channel or
per-plane wrap followed by a sum in a wider dtype (the bug: -372 for int8, where -116 is right).
"""

from __future__ import annotations

import numpy as np
import pytest

import xcorr

from matrix import require_module

# (x dtype, w dtype): the promoted dtype is what the result must have.
PAIRS = [("int8", "int8"), ("uint8", "uint8"), ("uint8", "int16"), ("int16", "int16"), ("uint16", "uint16")]


def _wrap(exact: np.ndarray, dtype: str) -> np.ndarray:
    """Python ints reduced modulo ``2**bits`` into ``dtype``'s range (two's complement)."""
    info = np.iinfo(dtype)
    bits = info.bits
    span = 1 << bits
    flat = [((int(v) - info.min) % span) + info.min for v in exact.ravel()]
    return np.array(flat, dtype=dtype).reshape(exact.shape)


def _valid(x: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Exact valid correlation of the last two axes (object arrays of Python ints, broadcast batches)."""
    h, w = k.shape[-2:]
    rows, cols = x.shape[-2] - h + 1, x.shape[-1] - w + 1
    total = None
    for a in range(h):
        for b in range(w):
            term = x[..., a : a + rows, b : b + cols] * k[..., a : a + 1, b : b + 1]
            total = term if total is None else total + term
    return total


def _full_transpose(g: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Exact adjoint of the valid correlation: scatter ``g * k`` onto the input extent."""
    h, w = k.shape[-2:]
    rows, cols = g.shape[-2] + h - 1, g.shape[-1] + w - 1
    shape = np.broadcast_shapes(g.shape[:-2], k.shape[:-2])
    out = np.zeros((*shape, rows, cols), dtype=object)
    out[...] = 0
    for a in range(h):
        for b in range(w):
            out[..., a : a + g.shape[-2], b : b + g.shape[-1]] += g * k[..., a : a + 1, b : b + 1]
    return out


def _obj(a: np.ndarray) -> np.ndarray:
    return a.astype(object)


def _data(shape, dtype: str, seed: int) -> np.ndarray:
    """Values near the dtype's extremes, so that products and sums wrap."""
    info = np.iinfo(dtype)
    rng = np.random.default_rng(seed)
    lo, hi = max(int(info.min), -120), min(int(info.max), 250)
    if info.bits >= 16:
        lo, hi = int(info.min) // 2, int(info.max) // 2
    return rng.integers(lo, hi, size=shape, endpoint=True).astype(dtype)


def _check(backend, y, expected: np.ndarray, dtype: str) -> None:
    assert y.dtype == backend.dtype(dtype), f"dtype {y.dtype}, expected {dtype}"
    got = backend.to_numpy(y)
    assert got.dtype == np.dtype(dtype), f"computed dtype {got.dtype}, expected {dtype}"
    np.testing.assert_array_equal(got, expected)


def test_issue_reproducer_int8_channels(backend):
    """3 channels of 9 taps of 100: exact 2700, wrapped in int8 -116 (F.conv2d in int8 gives it too)."""
    x = backend.asarray(np.full((1, 3, 3, 3), 100, np.int8))
    w = backend.asarray(np.ones((1, 3, 3, 3), np.int8))
    y = xcorr.corr2d_multi(x, w)
    _check(backend, y, _wrap(np.array([[[[2700]]]], dtype=object), "int8"), "int8")


@pytest.mark.parametrize("groups", [1, 2])
@pytest.mark.parametrize(("xd", "wd"), PAIRS)
def test_multi_wraps_in_the_promoted_dtype(backend, xd, wd, groups):
    dtype = str(np.result_type(xd, wd))
    x = _data((2, 4, 5, 6), xd, 1)
    w = _data((4, 4 // groups, 3, 2), wd, 2)
    cg, og = 4 // groups, 4 // groups
    exact = np.zeros((2, 4, 3, 5), dtype=object)
    for o in range(4):
        g = o // og
        exact[:, o] = _valid(_obj(x[:, g * cg : (g + 1) * cg]), _obj(w[o])[None]).sum(axis=1)
    y = xcorr.corr2d_multi(backend.asarray(x), backend.asarray(w), groups=groups)
    _check(backend, y, _wrap(exact, dtype), dtype)


@pytest.mark.parametrize(("xd", "wd"), PAIRS)
def test_multi_vjp_wraps_in_the_promoted_dtype(backend, xd, wd):
    dtype = str(np.result_type(xd, wd))
    x = _data((3, 2, 5, 6), xd, 3)
    w = _data((3, 2, 3, 2), wd, 4)
    g = _data((3, 3, 3, 5), dtype, 5)
    ox, ow, og = _obj(x), _obj(w), _obj(g)
    gw = np.zeros(w.shape, dtype=object)
    for o in range(3):
        for c in range(2):
            for a in range(3):
                for b in range(2):
                    gw[o, c, a, b] = (og[:, o] * ox[:, c, a : a + 3, b : b + 5]).sum()
    gx = np.zeros(x.shape, dtype=object)
    for c in range(2):
        gx[:, c] = _full_transpose(og, ow[:, c][None]).sum(axis=1)
    got_x, got_w = xcorr.corr2d_multi_vjp(backend.asarray(x), backend.asarray(w), backend.asarray(g))
    _check(backend, got_x, _wrap(gx, dtype), dtype)
    _check(backend, got_w, _wrap(gw, dtype), dtype)


@pytest.mark.parametrize(("xd", "kd"), PAIRS)
def test_vjp_batch_sums_wrap_in_the_promoted_dtype(backend, xd, kd):
    """A batch of images and one kernel: the kernel gradient is a batch sum, the input gradient is not."""
    dtype = str(np.result_type(xd, kd))
    x = _data((4, 6, 7), xd, 6)
    k = _data((3, 3), kd, 7)
    g = _data((4, 4, 5), dtype, 8)
    ox, ok, og = _obj(x), _obj(k), _obj(g)
    gk = np.zeros(k.shape, dtype=object)
    for a in range(3):
        for b in range(3):
            gk[a, b] = (og * ox[:, a : a + 4, b : b + 5]).sum()
    gx = _full_transpose(og, ok)
    got_x, got_k = xcorr.corr2d_vjp(backend.asarray(x), backend.asarray(k), backend.asarray(g))
    _check(backend, got_x, _wrap(gx, dtype), dtype)
    _check(backend, got_k, _wrap(gk, dtype), dtype)


def test_vjp_issue_reproducer_int8_kernel_gradient(backend):
    """64 planes of 10 * 10 summed onto one tap: exact 6400, wrapped in int8 0."""
    x = backend.asarray(np.full((64, 1, 1), 10, np.int8))
    k = backend.asarray(np.ones((1, 1), np.int8))
    g = backend.asarray(np.full((64, 1, 1), 10, np.int8))
    _, gk = xcorr.corr2d_vjp(x, k, g)
    _check(backend, gk, _wrap(np.array([[6400]], dtype=object), "int8"), "int8")


@pytest.mark.parametrize(("xd", "kd"), [("int8", "int8"), ("uint8", "int16")])
def test_jvp_terms_wrap_in_the_promoted_dtype(backend, xd, kd):
    """The tangent's dtype is the promotion of all four arrays, and both terms wrap in it."""
    dtype = str(np.result_type(xd, kd, "int16"))
    x = _data((2, 6, 7), xd, 9)
    k = _data((3, 3), kd, 10)
    dx = _data((2, 6, 7), "int16", 11)
    dk = _data((3, 3), kd, 12)
    exact = _valid(_obj(dx), _obj(k)) + _valid(_obj(x), _obj(dk))
    t = xcorr.corr2d_jvp(backend.asarray(x), backend.asarray(k), backend.asarray(dx), backend.asarray(dk))
    _check(backend, t, _wrap(exact, dtype), dtype)


@pytest.mark.parametrize(("xd", "wd"), [("int8", "int8"), ("uint8", "int16")])
def test_multi_jvp_wraps_in_the_promoted_dtype(backend, xd, wd):
    dtype = str(np.result_type(xd, wd))
    x = _data((2, 3, 5, 6), xd, 13)
    w = _data((2, 3, 3, 2), wd, 14)
    dx = _data((2, 3, 5, 6), xd, 15)
    dw = _data((2, 3, 3, 2), wd, 16)

    def multi(a, b):
        out = np.zeros((2, 2, 3, 5), dtype=object)
        for o in range(2):
            out[:, o] = _valid(a, b[o][None]).sum(axis=1)
        return out

    exact = multi(_obj(dx), _obj(w)) + multi(_obj(x), _obj(dw))
    t = xcorr.corr2d_multi_jvp(*(backend.asarray(a) for a in (x, w, dx, dw)))
    _check(backend, t, _wrap(exact, dtype), dtype)


@pytest.mark.parametrize("groups", [1, 2])
@pytest.mark.parametrize(("xd", "wd"), PAIRS)
def test_transposed_wraps_in_the_promoted_dtype(backend, xd, wd, groups):
    dtype = str(np.result_type(xd, wd))
    x = _data((2, 4, 3, 4), xd, 17)
    w = _data((4, 3, 2, 3), wd, 18)  # (C_in, C_out // groups, h, w)
    cg = 4 // groups
    exact = np.zeros((2, 3 * groups, 4, 6), dtype=object)
    for g in range(groups):
        for o in range(3):
            ws = _obj(w[g * cg : (g + 1) * cg, o])[None]  # (1, Cg, h, w)
            exact[:, g * 3 + o] = _full_transpose(_obj(x[:, g * cg : (g + 1) * cg]), ws).sum(axis=1)
    y = xcorr.conv_transpose2d(backend.asarray(x), backend.asarray(w), groups=groups)
    _check(backend, y, _wrap(exact, dtype), dtype)


def test_corr2d_transpose_batch_wraps(backend):
    """``corr2d_transpose`` of a batch of planes against one kernel: no batch sum, wraps per plane."""
    x = _data((3, 4, 5), "int8", 19)
    k = _data((3, 2), "int8", 20)
    exact = _full_transpose(_obj(x), _obj(k))
    y = xcorr.corr2d_transpose(backend.asarray(x), backend.asarray(k))
    _check(backend, y, _wrap(exact, "int8"), "int8")


def _exact_int64(x: np.ndarray, k: np.ndarray, g: np.ndarray):
    """Exact gradients in int64 (no int8/int16 sum of this size reaches 2**63), correlation "valid"."""
    h, w = k.shape
    rows, cols = g.shape[-2:]
    x64, k64, g64 = (a.astype(np.int64) for a in (x, k, g))
    gk = np.array([[(g64 * x64[:, a : a + rows, b : b + cols]).sum() for b in range(w)] for a in range(h)])
    gx = np.zeros(x.shape, np.int64)
    for a in range(h):
        for b in range(w):
            gx[:, a : a + rows, b : b + cols] += g64 * k64[a, b]
    y = sum(x64[:, a : a + rows, b : b + cols] * k64[a, b] for a in range(h) for b in range(w))
    return y, gx, gk


@pytest.mark.parametrize("method", ["auto", "direct", "native"])
def test_large_integer_calls_take_the_same_rule(backend, method):
    """Sizes where the backends' fast paths (numba kernels, threaded bands, native hooks) are taken."""
    if method == "native" and not backend.adapter.native:
        pytest.skip(f"{backend.name} has no native convolution (method='native' is torch's and jax's)")
    x = _data((6, 80, 90), "int8", 21)
    k = _data((5, 4), "int8", 22)
    g = _data((6, 76, 87), "int8", 23)
    y, gx, gk = _exact_int64(x, k, g)
    xb, kb, gb = backend.asarray(x), backend.asarray(k), backend.asarray(g)
    _check(backend, xcorr.corr2d(xb, kb, method=method), _wrap(y, "int8"), "int8")
    got_x, got_k = xcorr.corr2d_vjp(xb, kb, gb, method=method)
    _check(backend, got_x, _wrap(gx, "int8"), "int8")
    _check(backend, got_k, _wrap(gk, "int8"), "int8")
    xm = backend.asarray(x[None])  # (1, 6, 80, 90): the planes as 6 channels
    wm = backend.asarray(np.broadcast_to(k, (2, 6, 5, 4)).copy())
    exact = np.broadcast_to(y.sum(axis=0), (1, 2, *y.shape[-2:]))
    _check(backend, xcorr.corr2d_multi(xm, wm, method=method), _wrap(exact, "int8"), "int8")


LAZY_PAIRS = [
    ("int8", "int8"), ("uint8", "int16"), ("uint8", "uint8"), ("int16", "int32"), ("int8", "uint8"),
    ("int32", "int64"), ("int8", "float32"), ("uint8", "float64"), ("float32", "float64"),
]  # fmt: skip


@pytest.mark.parametrize(("xd", "kd"), LAZY_PAIRS)
def test_dask_lazy_dtype_is_the_computed_dtype(xd, kd):
    """Issue 25, item 4: a lazy dask result reports the dtype it computes (the promoted one)."""
    from matrix import BACKENDS

    dask = next(b for b in BACKENDS if b.name == "dask")
    dask.require()
    promoted = np.result_type(xd, kd)
    x3 = dask.asarray(_data((2, 3, 6, 7), xd, 24) if xd.startswith(("int", "uint")) else np.ones((2, 3, 6, 7), xd))
    w4 = dask.asarray(np.ones((2, 3, 3, 2), kd))
    k2 = dask.asarray(np.ones((3, 2), kd))
    x2 = x3[:, 0]
    g2 = dask.asarray(np.ones((2, 4, 6), promoted))
    g4 = dask.asarray(np.ones((2, 2, 4, 6), promoted))
    results = {
        "corr2d": xcorr.corr2d(x2, k2),
        "corr2d_multi": xcorr.corr2d_multi(x3, w4),
        "corr2d_multi groups": xcorr.corr2d_multi(x3[:, :2], w4[:, :1], groups=2),
        "corr2d_jvp": xcorr.corr2d_jvp(x2, k2, x2, k2),
        "corr2d_multi_jvp": xcorr.corr2d_multi_jvp(x3, w4, x3, w4),
        "conv_transpose2d": xcorr.conv_transpose2d(x3, dask.asarray(np.ones((3, 2, 3, 2), kd))),
        "corr2d_transpose": xcorr.corr2d_transpose(x2, k2),
    }
    gx, gk = xcorr.corr2d_vjp(x2, k2, g2)
    results.update({"corr2d_vjp gx": gx, "corr2d_vjp gk": gk})
    gx, gw = xcorr.corr2d_multi_vjp(x3, w4, g4)
    results.update({"corr2d_multi_vjp gx": gx, "corr2d_multi_vjp gw": gw})
    for name, y in results.items():
        computed = y.compute()
        assert np.dtype(y.dtype) == computed.dtype, f"{name}: lazy {y.dtype}, computed {computed.dtype}"
        if name in ("corr2d", "corr2d_multi", "corr2d_multi groups", "conv_transpose2d", "corr2d_transpose"):
            assert computed.dtype == promoted, f"{name}: {computed.dtype}, expected {promoted}"


# -- torch's wide unsigned dtypes (no add/mul kernels) -----------------------------------------


def _exact_extended(x: np.ndarray, k: np.ndarray, mode: str, fillvalue: int = 0) -> np.ndarray:
    """Exact "valid" or "full" correlation (Python ints): "full" pads x with ``fillvalue`` first."""
    x = _obj(x)
    if mode == "full":
        h, w = k.shape
        padded = np.full((x.shape[0] + 2 * (h - 1), x.shape[1] + 2 * (w - 1)), int(fillvalue), dtype=object)
        padded[h - 1 : h - 1 + x.shape[0], w - 1 : w - 1 + x.shape[1]] = x
        x = padded
    return _valid(x, _obj(k))


@pytest.mark.parametrize("dtype", ["uint16", "uint32", "uint64"])
@pytest.mark.parametrize("mode", ["valid", "full"])
def test_torch_wide_unsigned_dtypes_compute_as_numpy_does(dtype, mode):
    """torch's uint16/32/64 (no add/mul kernels) give the modular results numpy's arithmetic would, in
    their own dtype: the exact sums in Python ints, reduced modulo 2**bits."""
    torch = require_module("torch")
    rng = np.random.default_rng(2)
    top = np.iinfo(dtype).max
    x = rng.integers(0, top, (40, 50), dtype=dtype, endpoint=True)
    k = rng.integers(0, top, (3, 4), dtype=dtype, endpoint=True)
    fill = int(top) - 3
    expected = _wrap(_exact_extended(x, k, mode, fill), dtype)
    y = xcorr.corr2d(torch.from_numpy(x), torch.from_numpy(k), mode=mode, fillvalue=fill)
    assert y.dtype == getattr(torch, dtype)
    np.testing.assert_array_equal(y.numpy(), expected)
    # conv2d "same" with a 2x2 kernel: the flipped kernel's "full" result from its first row and column
    small = np.arange(12, dtype=dtype).reshape(3, 4)
    expected = _wrap(_exact_extended(small, small[:2, :2][::-1, ::-1], "full")[:3, :4], dtype)
    np.testing.assert_array_equal(
        xcorr.conv2d(torch.from_numpy(small), torch.from_numpy(small[:2, :2]), mode="same").numpy(), expected
    )


def test_torch_unpromotable_dtypes_are_a_named_error():
    torch = require_module("torch")
    with pytest.raises(TypeError, match=r"torch.uint32 and torch.int32 have no common result dtype"):
        xcorr.corr2d(torch.ones(3, 3, dtype=torch.uint32), torch.ones(2, 2, dtype=torch.int32))
    y = xcorr.corr2d(torch.ones(3, 3, dtype=torch.uint16), torch.ones(2, 2, dtype=torch.float32))
    assert y.dtype == torch.float32 and torch.equal(y, torch.full((2, 2), 4.0))


# An integer operand with a floating one: the floating operand's dtype on every backend (torch's
# rule, docs/guide/semantics.md). numpy's own promotion (int64 with float32 is float64) leaked
# through numpy's and dask's channel, gradient and transposed paths.
MIXED = [("int64", "float32"), ("float32", "int16"), ("uint8", "float64")]


def _small(shape, dtype: str, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 5, size=shape).astype(dtype)


def _close(backend, y, expected, dtype: str) -> None:
    assert y.dtype == backend.dtype(dtype), f"dtype {y.dtype}, expected {dtype}"
    got = backend.to_numpy(y)
    assert got.dtype == np.dtype(dtype), f"computed dtype {got.dtype}, expected {dtype}"
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-5)


@pytest.mark.parametrize(("xd", "wd"), MIXED)
def test_integer_with_floating_takes_the_floating_dtype_in_every_channel_function(backend, xd, wd):
    torch = require_module("torch")
    F = torch.nn.functional
    dtype = wd if xd.startswith(("int", "uint")) else xd
    x, w, wt = _small((2, 4, 5, 6), xd, 1), _small((6, 4, 2, 3), wd, 2), _small((4, 6, 2, 3), wd, 3)
    xt = torch.tensor(x.astype(np.float64), requires_grad=True)
    wtt = torch.tensor(w.astype(np.float64), requires_grad=True)
    yt = F.conv2d(xt, wtt)
    g = _small(tuple(yt.shape), dtype, 4)
    yt.backward(torch.tensor(g.astype(np.float64)))
    bx, bw = backend.asarray(x), backend.asarray(w)
    for method in ("auto", "direct", "fft"):
        _close(backend, xcorr.corr2d_multi(bx, bw, method=method), yt.detach().numpy(), dtype)
    gx, gw = xcorr.corr2d_multi_vjp(bx, bw, backend.asarray(g))
    _close(backend, gx, xt.grad.numpy(), dtype)
    _close(backend, gw, wtt.grad.numpy(), dtype)
    want = F.conv_transpose2d(torch.tensor(x.astype(np.float64)), torch.tensor(wt.astype(np.float64)), stride=2)
    _close(backend, xcorr.conv_transpose2d(bx, backend.asarray(wt), stride=2), want.numpy(), dtype)
    want = F.conv1d(torch.tensor(x[:, :, 0].astype(np.float64)), torch.tensor(w[:, :, 0].astype(np.float64)))
    _close(backend, xcorr.corr1d_multi(backend.asarray(x[:, :, 0]), backend.asarray(w[:, :, 0])), want.numpy(), dtype)
    x3, w3 = x[:, :, None].repeat(2, axis=2), w[:, :, None].repeat(2, axis=2)
    want = F.conv3d(torch.tensor(x3.astype(np.float64)), torch.tensor(w3.astype(np.float64)))
    _close(backend, xcorr.corr3d_multi(backend.asarray(x3), backend.asarray(w3)), want.numpy(), dtype)
