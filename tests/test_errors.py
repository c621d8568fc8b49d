"""Bad input is rejected before any backend work, with a message naming the argument."""

from __future__ import annotations

import numpy as np
import pytest

import xcorr

from matrix import require_module

FUNCTIONS = [xcorr.corr2d, xcorr.conv2d]


def arrays(backend, x_shape=(5, 6), k_shape=(2, 2), dtype="float64"):
    return backend.asarray(np.ones(x_shape, dtype)), backend.asarray(np.ones(k_shape, dtype))


@pytest.mark.parametrize("f", FUNCTIONS, ids=lambda f: f.__name__)
@pytest.mark.parametrize(
    ("x_shape", "k_shape", "options", "error", "match"),
    [
        ((5, 6), (6, 2), {}, ValueError, r"k is larger than x in \"valid\" mode"),
        ((5, 6), (2, 7), {}, ValueError, r"k is larger than x"),
        ((5, 6), (3, 2), {"dilation": 3}, ValueError, r"dilated kernel \(7, 4\)"),
        ((6,), (2, 2), {}, ValueError, r"x must have at least 2 dimensions.*\(6,\)"),
        ((5, 6), (2,), {}, ValueError, r"k must have at least 2 dimensions.*\(2,\)"),
        ((5, 6), (0, 2), {}, ValueError, r"k must not be empty.*\(0, 2\)"),
        ((5, 0), (1, 1), {"mode": "same"}, ValueError, r"x must not be empty.*\(5, 0\)"),
        ((5, 6), (2, 2), {"mode": "sam"}, ValueError, r"mode must be one of .*'sam'"),
        ((5, 6), (2, 2), {"boundary": "reflection"}, ValueError, r"boundary must be one of .*'reflection'"),
        ((5, 6), (2, 2), {"stride": 0}, ValueError, r"stride must be >= 1; got 0"),
        ((5, 6), (2, 2), {"dilation": (1, -1)}, ValueError, r"dilation must be >= 1"),
        ((5, 6), (2, 2), {"stride": (1, 2, 3)}, ValueError, r"stride must be an int or a sequence of 1 or 2 ints"),
        ((5, 6), (2, 2), {"stride": 1.5}, TypeError, r"stride must be an int"),
        ((5, 6), (2, 2), {"dilation": True}, TypeError, r"dilation must be an int"),
        ((5, 6), (2, 2), {"fillvalue": [1, 2]}, ValueError, r"fillvalue must be a scalar number; got list"),
        ((5, 6), (2, 2), {"fillvalue": np.ones(2)}, ValueError, r"fillvalue must be a scalar.*shape \(2,\)"),
        ((2, 5, 6), (3, 2, 2), {}, ValueError, r"batch dimensions of x \(2,\) and k \(3,\) do not broadcast"),
    ],
)
def test_bad_arguments(backend, f, x_shape, k_shape, options, error, match):
    x, k = arrays(backend, x_shape, k_shape)
    with pytest.raises(error, match=match):
        f(x, k, **options)


def test_bool_arrays_are_rejected(backend):
    x, k = arrays(backend, dtype="bool")
    with pytest.raises(TypeError, match=r"x must have a numeric dtype"):
        xcorr.corr2d(x, backend.asarray(np.ones((2, 2))))
    with pytest.raises(TypeError, match=r"k must have a numeric dtype"):
        xcorr.corr2d(backend.asarray(np.ones((4, 4))), k)


def test_python_lists_are_rejected(backend):
    x, k = arrays(backend)
    with pytest.raises(TypeError, match=r"x must be an array .* got list"):
        xcorr.corr2d([[1.0, 2.0], [3.0, 4.0]], k)
    with pytest.raises(TypeError, match=r"k must be an array .* got list"):
        xcorr.corr2d(x, [[1.0]])


def test_mixed_libraries_are_rejected(backend):
    x, _ = arrays(backend)
    if backend.name == "numpy":
        import array_api_strict

        other = array_api_strict.ones((2, 2))
    else:
        other = np.ones((2, 2))
    with pytest.raises(TypeError, match=r"x and k must come from the same array library"):
        xcorr.corr2d(x, other)
    with pytest.raises(TypeError, match=r"x and k must come from the same array library"):
        xcorr.corr2d(other, x)


def test_integer_result_rejects_fractional_fillvalue(backend):
    x, k = arrays(backend, dtype="int64")
    with pytest.raises(ValueError, match=r"fillvalue 0.5 cannot be represented in the integer result dtype"):
        xcorr.corr2d(x, k, mode="same", fillvalue=0.5)


def test_two_devices_are_rejected():
    torch = require_module("torch")
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device to put the arrays on two devices")
    with pytest.raises(ValueError, match=r"same device"):
        xcorr.corr2d(torch.ones(4, 4), torch.ones(2, 2, device="cuda"))


def test_errors_come_before_backend_work(monkeypatch):
    # A failing check must fire before the dispatch reaches any adapter.
    import xcorr._correlate as public

    def forbidden(*args, **kwargs):
        raise AssertionError("reached the backend")

    monkeypatch.setattr(public, "adapter_for", forbidden)
    with pytest.raises(ValueError, match="larger than x"):
        xcorr.corr2d(np.ones((2, 2)), np.ones((3, 3)))


LIMIT = r"2\*\*31 - 1 = 2147483647"


def _no_backend_work(monkeypatch):
    """Reaching an adapter fails the test: the size checks must come before them."""
    from xcorr import _correlate, _multi, _transpose, _vjp

    def forbidden(*args, **kwargs):
        raise AssertionError("reached the backend")

    for module in (_correlate, _multi, _transpose, _vjp):
        monkeypatch.setattr(module, "adapter_for", forbidden)


@pytest.mark.parametrize(
    ("x_shape", "k_shape", "options", "match"),
    [
        ((5, 5), (3, 3), {"padding": 2**40}, rf"padding=.*1099511627776 is beyond .*{LIMIT} per axis"),
        ((5, 5), (3, 3), {"padding": ((0, 0), (2**31, 0))}, rf"padding=.*2147483648 is beyond .*{LIMIT}"),
        ((5, 5), (3, 3), {"stride": 2**62}, rf"stride=.*4611686018427387904 is beyond .*{LIMIT}"),
        ((5, 5), (3, 3), {"stride": (1, 2**31)}, rf"stride=\(1, 2147483648\).*{LIMIT}"),
        ((5, 5), (3, 3), {"dilation": 2**40, "mode": "same"}, rf"dilation=.*1099511627776 is beyond .*{LIMIT}"),
        ((5, 5), (3, 3), {"dilation": 2**30, "mode": "full"}, r"dilated kernel's extent \(2147483649, 2147483649\)"),
        ((5, 5), (3, 3), {"padding": 2**30}, r"x extended by the boundary would have shape \(2147483653, 2147483653\)"),
        ((5, 5), (2, 2), {"padding": "SAME", "stride": 2**31}, rf"stride=.*2147483648 is beyond .*{LIMIT}"),
        # 2**24 broadcast planes of 8193 x 8197: over 2**50 elements.
        ((4096, 1, 1, 5), (4096, 1, 1), {"padding": 4096}, r"would have shape \(4096, 4096, 8193, 8197\).*2\*\*48"),
      ],
    ids=["padding", "padding-one-side", "stride", "stride-columns", "dilation", "dilated-extent", "extended",
         "SAME-stride", "elements"],
)
def test_absurd_sizes_are_named_before_any_backend_work(backend, monkeypatch, x_shape, k_shape, options, match):
    """Sizes no backend can allocate or index (XLA aborted, torch's as_strided overflowed, dask's graph
    never finished) are a ValueError naming the argument, its value and the limit, before any adapter."""
    _no_backend_work(monkeypatch)
    x, k = arrays(backend, x_shape, k_shape)
    for f in (xcorr.corr2d, xcorr.conv2d):
        with pytest.raises(ValueError, match=match):
            f(x, k, **options)
    with pytest.raises(ValueError, match=match):
        xcorr.corr2d_vjp(x, k, x, **options)
    with pytest.raises(ValueError, match=match):
        xcorr.corr2d_jvp(x, k, x, None, **options)
    if len(x_shape) == 2:
        xm, wm = backend.asarray(np.ones((1, 1, *x_shape))), backend.asarray(np.ones((1, 1, *k_shape)))
        with pytest.raises(ValueError, match=match):
            xcorr.corr2d_multi(xm, wm, **options)
        with pytest.raises(ValueError, match=match):
            xcorr.corr2d_multi_vjp(xm, wm, xm, **options)


def test_absurd_transposed_sizes_are_named_before_any_backend_work(backend, monkeypatch):
    _no_backend_work(monkeypatch)
    x, w = backend.asarray(np.ones((1, 1, 5, 5))), backend.asarray(np.ones((1, 1, 3, 3)))
    with pytest.raises(ValueError, match=rf"stride \(1073741824, 1\).*\(4294967299, 7\) before the crop.*{LIMIT}"):
        xcorr.conv_transpose2d(x, w, stride=(2**30, 1))
    with pytest.raises(ValueError, match=rf"stride \(4611686018427387904, 4611686018427387904\).*{LIMIT}"):
        xcorr.conv_transpose2d(x, w, stride=2**62)
    with pytest.raises(ValueError, match=rf"dilation \(1, 1073741824\).*{LIMIT}"):
        xcorr.corr2d_transpose(x[0, 0, ...], w[0, 0, ...], dilation=(1, 2**30))
    with pytest.raises(ValueError, match=LIMIT):
        xcorr.conv_transpose2d_vjp(x, w, x, stride=2**40)


def test_layers_name_absurd_padding_before_any_backend_work(monkeypatch):
    _no_backend_work(monkeypatch)
    layer = xcorr.Conv2D(2, in_channels=1, out_channels=1, padding=2**40, backend="numpy")
    with pytest.raises(ValueError, match=rf"padding=.*1099511627776 is beyond .*{LIMIT}"):
        layer(np.ones((1, 1, 5, 5)))


def test_dask_graph_of_a_wide_padding_follows_the_input_chunks():
    """A padding of many chunks (3000 around a 5 x 5 chunk) widens the output blocks instead of making
    one per five output rows (over a million blocks: the graph never finished for padding=100_000)."""
    da = require_module("dask.array")
    rng = np.random.default_rng(0)
    x, k = rng.standard_normal((5, 5)), rng.standard_normal((3, 3))
    y = xcorr.corr2d(da.from_array(x, chunks=5), da.asarray(k), padding=3000)
    assert y.shape == (6003, 6003)
    assert max(y.numblocks) <= 18
    padded = np.pad(x, 3)
    centre = np.array([[np.sum(padded[i : i + 3, j : j + 3] * k) for j in range(7)] for i in range(7)])
    np.testing.assert_allclose(y[2997:3004, 2997:3004].compute(), centre, rtol=1e-12, atol=1e-12)
    assert not np.any(y[:2997].compute())
    y = xcorr.corr2d(da.from_array(x, chunks=5), da.asarray(k), padding=100_000)
    assert max(y.numblocks) <= 18
