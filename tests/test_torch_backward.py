"""The torch backward's fast paths against autograd of the plain generic forward.

``tests/test_gradients.py`` checks every backend on small arrays, which stay
below the sizes where backends/torch/ops.py switches to its own kernel gradient
(``GRADIENT_MIN_PLANE`` outputs per plane) or its fused FFT backward. These
cases are just large enough to take those paths.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import xcorr

from matrix import require_module
from paths import spy

torch = require_module("torch")

from xcorr import _direct  # noqa: E402
from xcorr._compat import array_namespace  # noqa: E402
from xcorr._options import Options, plan  # noqa: E402
from xcorr.backends.torch import ADAPTER, autodiff, ops  # noqa: E402

# (x shape, k shape, stride, dilation)
CASES = {
    "plain": ((70, 75), (3, 4), 1, 1),
    "strided": ((150, 140), (3, 2), (2, 1), (1, 2)),
    "col-stride": ((150, 140), (2, 3), (1, 2), 1),
    "batch": ((3, 66, 70), (3, 3), 1, (2, 1)),
    "broadcast": ((2, 1, 66, 68), (3, 2, 3), 1, 1),
    "kernel-batch": ((66, 68), (2, 1, 3, 2), 1, 1),
}


def _grid():
    combos = itertools.product(("corr2d", "conv2d"), ("valid", "same", "full"), ("fill", "wrap", "symm"))
    names = list(CASES)
    return [
        pytest.param(f, mode, boundary, names[i % len(names)], id=f"{f}-{mode}-{boundary}-{names[i % len(names)]}")
        for i, (f, mode, boundary) in enumerate(combos)
    ]


def _check(f, mode, boundary, case, method, dtype=torch.float64, fillvalue=0, tol=1e-10):
    x_shape, k_shape, stride, dilation = CASES[case]
    rng = np.random.default_rng(0)
    x = torch.asarray(rng.standard_normal(x_shape), dtype=dtype)
    k = torch.asarray(rng.standard_normal(k_shape), dtype=dtype)
    if dtype.is_complex:
        x = x + 1j * torch.asarray(rng.standard_normal(x_shape), dtype=dtype)
        k = k - 0.5j * torch.asarray(rng.standard_normal(k_shape), dtype=dtype)
    options = dict(mode=mode, boundary=boundary, stride=stride, dilation=dilation, fillvalue=fillvalue)
    opts = Options.parse(convolve=f == "conv2d", **options)
    xt, kt = x.clone().requires_grad_(), k.clone().requires_grad_()
    plain = _direct.correlate(array_namespace(xt), xt, kt, opts, plan(xt.shape, kt.shape, opts))
    g = torch.asarray(rng.standard_normal(tuple(plain.shape)), dtype=dtype)
    want = torch.autograd.grad(plain, (xt, kt), g)
    ours = getattr(xcorr, f)(xt, kt, method=method, **options)
    torch.testing.assert_close(ours.detach(), plain.detach(), rtol=tol, atol=tol)
    got = torch.autograd.grad(ours, (xt, kt), g)
    for a, b in zip(got, want):
        assert a.dtype == b.dtype and a.shape == b.shape
        torch.testing.assert_close(a, b, rtol=tol, atol=tol)


@pytest.mark.parametrize(("f", "mode", "boundary", "case"), _grid())
def test_direct_backward(f, mode, boundary, case):
    _check(f, mode, boundary, case, "direct")


@pytest.mark.parametrize(("f", "mode", "boundary", "case"), _grid())
def test_fft_backward(f, mode, boundary, case):
    _check(f, mode, boundary, case, "fft")


@pytest.mark.parametrize("method", ["direct", "fft"])
@pytest.mark.parametrize("boundary", ["fill", "symm"])
def test_nonzero_fill_and_float32(method, boundary):
    _check("corr2d", "same", boundary, "batch", method, fillvalue=0.5)
    _check("conv2d", "full", boundary, "plain", method, dtype=torch.float32, fillvalue=-1.5, tol=2e-3)


@pytest.mark.parametrize("method", ["direct", "fft"])
def test_complex(method):
    _check("corr2d", "same", "fill", "broadcast", method, dtype=torch.complex128)
    _check("conv2d", "valid", "wrap", "strided", method, dtype=torch.complex128)


# The cases whose kernel gradient backends/torch/ops.py serves itself: all but a column stride
# ("col-stride"), which its kernel gradient declines.
HOOK_CASES = [name for name in CASES if name != "col-stride"]


def _conv2d_autograd(x, k, g, mode, stride, dilation):
    """``(y, gx, gk)``: torch's autograd through ``F.conv2d`` in float64, each broadcast plane its own group
    (``"full"``: ``F.pad`` by the dilated kernel's extent - 1 on every side first)."""
    F = torch.nn.functional
    batch = torch.broadcast_shapes(x.shape[:-2], k.shape[:-2])
    xt, kt = x.detach().clone().requires_grad_(), k.detach().clone().requires_grad_()
    xb = xt.expand(*batch, *x.shape[-2:]).reshape(1, -1, *x.shape[-2:])
    kb = kt.expand(*batch, *k.shape[-2:]).reshape(-1, 1, *k.shape[-2:])
    dh, dw = (dilation, dilation) if isinstance(dilation, int) else dilation
    if mode == "full":
        eh, ew = dh * (k.shape[-2] - 1), dw * (k.shape[-1] - 1)
        xb = F.pad(xb, (ew, ew, eh, eh))
    y = F.conv2d(xb, kb, stride=stride, dilation=dilation, groups=kb.shape[0])
    y = y.reshape(*batch, *y.shape[-2:])
    return (y.detach(), *torch.autograd.grad(y, (xt, kt), g))


@pytest.mark.parametrize("mode", ["valid", "full"])
@pytest.mark.parametrize("case", HOOK_CASES)
def test_kernel_gradient_hook_takes_large_direct_cases(monkeypatch, case, mode):
    """The hook serves these sizes through autograd's backward of corr2d (else the tests above test the
    core), and its kernel gradient is torch's autograd of F.conv2d in float64."""
    served = spy(monkeypatch, ops, "kernel_gradient")
    x_shape, k_shape, stride, dilation = CASES[case]
    rng = np.random.default_rng(1)
    x = torch.asarray(rng.standard_normal(x_shape)).requires_grad_()
    k = torch.asarray(rng.standard_normal(k_shape)).requires_grad_()
    y = xcorr.corr2d(x, k, mode=mode, stride=stride, dilation=dilation, method="direct")
    g = torch.asarray(rng.standard_normal(tuple(y.shape)))
    gx, gk = torch.autograd.grad(y, (x, k), g)
    assert served, "the kernel gradient did not go through backends/torch/ops.py"
    want_y, want_gx, want_gk = _conv2d_autograd(x, k, g, mode, stride, dilation)
    torch.testing.assert_close(y.detach(), want_y, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(gk, want_gk, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(gx, want_gx, rtol=1e-10, atol=1e-10)


def test_fused_fft_backward_takes_fill_cases():
    x = torch.randn(2, 40, 50, dtype=torch.float64)
    k = torch.randn(5, 4, dtype=torch.float64)
    opts = Options.parse(mode="same", method="fft", dilation=(1, 2))
    geometry = plan(x.shape, k.shape, opts)
    g = torch.randn(geometry.out_shape, dtype=torch.float64)
    with torch.no_grad():  # as inside autograd's backward
        assert autodiff.fft_vjp_applies(x, k, g, opts, geometry)
        got = ADAPTER.vjp(array_namespace(x), x, k, g, opts, geometry, True, True)
    assert got[0].shape == x.shape and got[1].shape == k.shape


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(("f", "mode", "dilation"), [("corr2d", "valid", 1), ("conv2d", "full", (2, 1)), ("corr2d", "full", 1)])
def test_fused_numba_backward_serves_large_direct_cases(monkeypatch, dtype, f, mode, dilation):
    """Large direct CPU calls take numba's fused backward (both gradients in one pass over g), equal to
    torch's autograd of F.conv2d in float64; a double backward (create_graph) keeps the core's."""
    require_module("numba")
    served = spy(monkeypatch, ops, "numba_vjp", declined=None)
    rng = np.random.default_rng(2)
    x64, k64 = torch.asarray(rng.standard_normal((2, 130, 141))), torch.asarray(rng.standard_normal((3, 4)))
    x, k = x64.to(dtype).requires_grad_(), k64.to(dtype).requires_grad_()
    y = getattr(xcorr, f)(x, k, mode=mode, dilation=dilation, method="direct")
    g64 = torch.asarray(rng.standard_normal(tuple(y.shape)))
    gx, gk = torch.autograd.grad(y, (x, k), g64.to(dtype))
    assert served == [True]
    flip = f == "conv2d"  # conv2d(x, k) is the correlation with the flipped kernel
    kc = k64.flip(-2, -1) if flip else k64
    want_y, want_gx, want_gk = _conv2d_autograd(x64.to(dtype).double(), kc, g64, mode, 1, dilation)
    tol = 1e-10 if dtype == torch.float64 else 2e-4
    assert gx.dtype == gk.dtype == dtype and gx.shape == x.shape and gk.shape == k.shape
    torch.testing.assert_close(y.detach().double(), want_y, rtol=tol, atol=tol)
    torch.testing.assert_close(gx.double(), want_gx, rtol=tol, atol=tol)
    torch.testing.assert_close(gk.double(), want_gk.flip(-2, -1) if flip else want_gk, rtol=tol, atol=tol * 100)
    # create_graph: the gradients must themselves be differentiable, so the core's VJP serves.
    x2 = x.detach().clone().requires_grad_()
    gx2, _ = torch.autograd.grad(getattr(xcorr, f)(x2, k, mode=mode, dilation=dilation, method="direct"), (x2, k),
                                 g64.to(dtype), create_graph=True)
    assert served == [True, False] and gx2.requires_grad
    torch.testing.assert_close(gx2.detach(), gx, rtol=tol, atol=tol)
