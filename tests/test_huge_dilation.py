"""A huge dilation costs the output, not the dilated span: dilation=10**6 on a 9x11 image, where a
materialised extension would take terabytes, against a tap-by-tap loop that reads the extension by
index arithmetic (never built).
"""

from __future__ import annotations

import numpy as np
import pytest

import xcorr

from matrix import require_module


def _by_taps(x, k, *, mode, boundary, fillvalue, dilation, stride=1):
    """The correlation tap by tap, reading the extension by index arithmetic (never built).

    Only ``mode="same"``, from its definition (as tests/reference.py crops it): output ``i`` of an axis
    of ``n`` pixels reads the extended position ``i * stride - (extent - 1) // 2 + tap * dilation``, for
    the ``ceil(n / stride)`` outputs, where ``extent = dilation * (taps - 1) + 1`` (the "full" result,
    which starts ``extent - 1`` before the image, cropped from ``extent // 2``).
    """
    assert mode == "same", mode
    pair = lambda v: (v, v) if isinstance(v, int) else tuple(v)  # noqa: E731
    (dh, dw), (sh, sw) = pair(dilation), pair(stride)
    lo_r, lo_c = -((dh * (k.shape[0] - 1)) // 2), -((dw * (k.shape[1] - 1)) // 2)
    count_r, count_c = -(-x.shape[0] // sh), -(-x.shape[1] // sw)

    def source(position, size):
        # (index, inside): where an extended position reads x, or outside (the fill)
        if 0 <= position < size:
            return position, True
        if boundary == "fill":
            return 0, False
        if boundary == "wrap":
            return position % size, True
        m = position % (2 * size)  # symm: the edge repeated, period 2 * size
        return (m if m < size else 2 * size - 1 - m), True

    y = np.zeros((count_r, count_c))
    for i in range(count_r):
        for j in range(count_c):
            total = 0.0
            for a in range(k.shape[0]):
                r, r_in = source(lo_r + i * sh + a * dh, x.shape[0])
                for b in range(k.shape[1]):
                    c, c_in = source(lo_c + j * sw + b * dw, x.shape[1])
                    total += k[a, b] * (x[r, c] if r_in and c_in else fillvalue)
            y[i, j] = total
    return y


@pytest.mark.parametrize("boundary", ["fill", "wrap", "symm"])
@pytest.mark.parametrize(
    ("mode", "dilation", "stride"),
    [("same", 10**6, 1), ("same", (10**6, 3 * 10**6 + 1), (2, 3)), ("same", (1, 10**6), 2)],
)
def test_huge_dilation_costs_the_output_not_the_span(backend, boundary, mode, dilation, stride):
    """dilation=10**6 on a 9x11 image: a materialised extension would take terabytes."""
    rng = np.random.default_rng(4)
    x = rng.standard_normal((9, 11))
    k = rng.standard_normal((3, 2))
    fill = 0.5 if boundary == "fill" else 0
    options = {"mode": mode, "boundary": boundary, "fillvalue": fill, "dilation": dilation, "stride": stride}
    expected = _by_taps(x, k, **options)
    y = backend.to_numpy(xcorr.corr2d(backend.asarray(x), backend.asarray(k), method="direct", **options))
    np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-12)
    y = backend.to_numpy(xcorr.corr2d(backend.asarray(x), backend.asarray(k), **options))  # "auto" stays direct
    np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-12)


def test_huge_dilation_on_dask_is_a_small_graph():
    da = require_module("dask.array")
    x = da.from_array(np.ones((9, 11)), chunks=(5, 6))
    y = xcorr.corr2d(x, da.ones((3, 2), chunks=(3, 2)), mode="same", dilation=10**6, fillvalue=2.0)
    assert len(y.__dask_graph__()) < 200
    np.testing.assert_array_equal(y.compute(), np.full((9, 11), 6 * 2.0))  # every tap reads the fill


def test_huge_dilation_in_the_multi_channel_forward():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 3, 9, 11))
    w = rng.standard_normal((4, 3, 3, 2))
    y = xcorr.corr2d_multi(x, w, mode="same", boundary="wrap", dilation=10**6)
    expected = np.stack(
        [
            sum(_by_taps(x[n, c], w[o, c], mode="same", boundary="wrap", fillvalue=0, dilation=10**6) for c in range(3))
            for n in range(2)
            for o in range(4)
        ]
    ).reshape(2, 4, 9, 11)
    np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-12)
