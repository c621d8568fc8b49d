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
