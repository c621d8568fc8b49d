"""torch CPU tensors through numba's forward kernel (``backends/torch/ops.numba_forward``), zero-copy.

Against the independent oracles ``fast_reference`` and ``reference_vjp``, at the sizes where the
kernel runs by default; each test asserts which path ran, and that the kernel read the tensor's own
memory.
"""

from __future__ import annotations

import numpy as np
import pytest

import xcorr

from matrix import require_module, tolerance
from paths import force, spy
from reference import fast_reference, random, reference_vjp

OPTIONS = {
    "valid": dict(),
    "same-fill": dict(mode="same", fillvalue=0.5),
    "full-dilated-conv": dict(mode="full", dilation=(2, 1), convolve=True),
    "same-symm-strided": dict(mode="same", boundary="symm", stride=(2, 3)),
}


@pytest.fixture
def numba_paths(monkeypatch):
    require_module("numba")
    require_module("torch")
    from xcorr.backends import _numba
    from xcorr.backends.torch import ops

    reads = []
    real = _numba.direct

    def direct(x, *args, **kwargs):
        reads.append(x.__array_interface__["data"][0])
        return real(x, *args, **kwargs)

    monkeypatch.setattr(_numba, "direct", direct)
    return {"numba": spy(monkeypatch, ops, "numba_forward", declined=None), "reads": reads}


def call(x, k, options, **extra):
    options = dict(options)
    f = xcorr.conv2d if options.pop("convolve", False) else xcorr.corr2d
    return f(x, k, **options, **extra)


def check(got, expected, dtype):
    t = tolerance(dtype)["rtol"]
    got = got.detach().numpy()
    assert got.dtype == np.dtype(dtype) and got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=t, atol=t * 4)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", OPTIONS)
@pytest.mark.parametrize("x_shape", [(400, 390), (2, 400, 400)], ids=["one-plane", "two-planes"])
def test_torch_forward_through_numba(numba_paths, x_shape, name, dtype):
    import torch

    options = OPTIONS[name]
    x, k = random(x_shape, dtype), random((3, 3), dtype, seed=1)
    xt, kt = torch.from_numpy(x), torch.from_numpy(k)
    check(call(xt, kt, options, method="direct"), fast_reference(x, k, **options), dtype)
    assert numba_paths["numba"] == [True]
    if name in ("valid", "same-fill"):  # windows inside x or a virtual fill: the tensor's memory itself
        assert numba_paths["reads"] == [xt.data_ptr()]


@pytest.mark.parametrize("name", ["valid", "same-fill", "full-dilated-conv"])
def test_torch_autograd_through_numba(numba_paths, name):
    import torch

    options = OPTIONS[name]
    x, k = random((200, 190), "float64"), random((3, 4), "float64", seed=1)
    xt, kt = torch.from_numpy(x).requires_grad_(True), torch.from_numpy(k).requires_grad_(True)
    y = call(xt, kt, options, method="direct")
    check(y, fast_reference(x, k, **options), "float64")
    g = random(tuple(y.shape), "float64", seed=2)
    y.backward(torch.from_numpy(g))
    gx, gk = reference_vjp(x, k, g, **options)
    np.testing.assert_allclose(xt.grad.numpy(), gx, rtol=1e-12, atol=1e-11)
    np.testing.assert_allclose(kt.grad.numpy(), gk, rtol=1e-12, atol=1e-9)
    assert numba_paths["numba"][0] is True  # the forward (inside the autograd Function)


@pytest.mark.parametrize("case", ["int32", "complex128", "transposed", "numba-off"])
def test_torch_numba_not_taken(monkeypatch, numba_paths, case):
    import torch

    dtype = {"int32": "int32", "complex128": "complex128"}.get(case, "float64")
    x, k = random((200, 190), dtype), random((3, 3), dtype, seed=1)
    xt, kt = torch.from_numpy(x), torch.from_numpy(k)
    if case == "transposed":
        xt, x = xt.t(), x.T
    if case == "numba-off":
        force(monkeypatch, "torch", numba=False)
    got = xcorr.corr2d(xt, kt, method="direct").numpy()
    expected = fast_reference(x, k)
    if dtype == "int32":
        np.testing.assert_array_equal(got, expected.real.astype("int32"))
    else:
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-11)
    assert not any(numba_paths["numba"])
