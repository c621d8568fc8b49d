"""The boundaries: what "fill", "wrap", "symm", "reflect" and "edge" extend the image with, under
their own names and the aliases taken from torch's ``padding_mode`` and scipy.ndimage's ``mode``,
forward and backward (issue 12).

Oracles: ``torch.nn.Conv2d`` with every ``padding_mode`` and the autograd of ``F.pad`` then
``F.conv2d``, ``scipy.ndimage.correlate`` with every mode, and the float64 double-loop reference
(``numpy.pad`` then a valid correlation, tests/reference.py).
"""

from __future__ import annotations

import numpy as np
import pytest

import xcorr

from matrix import assert_result, require_module
from reference import random, reference, reference_multi, reference_multi_vjp

EXACT = {"rtol": 1e-12, "atol": 1e-12}


# -- torch: nn.Conv2d with every padding_mode, and autograd of F.pad ---------------------------


PADDING_MODES = {
    "zeros": "fill",
    "reflect": "reflect",
    "replicate": "edge",
    "circular": "wrap",
}
MULTI = [
    # (padding_mode, padding, stride, dilation, groups)
    ("zeros", 2, 1, 1, 1),
    ("reflect", (1, 2), 2, (2, 1), 1),
    ("replicate", (2, 1), (1, 2), 1, 2),
    ("circular", 1, 1, 2, 2),
]


def _torch_conv(x, w, padding_mode, padding, stride, dilation, groups):
    torch = require_module("torch")
    layer = torch.nn.Conv2d(
        w.shape[1] * groups,
        w.shape[0],
        w.shape[-2:],
        stride=stride,
        padding=padding,
        dilation=dilation,
        groups=groups,
        padding_mode=padding_mode,
        bias=False,
        dtype=torch.float64,
    )
    with torch.no_grad():
        layer.weight.copy_(torch.asarray(w))
    return layer(torch.asarray(x)).detach().numpy()


@pytest.mark.parametrize(
    ("padding_mode", "padding", "stride", "dilation", "groups"), MULTI
)
def test_corr2d_multi_matches_torch_conv2d(
    backend, padding_mode, padding, stride, dilation, groups
):
    x, w = random((2, 4, 6, 5), seed=11), random((4, 4 // groups, 3, 2), seed=12)
    expected = _torch_conv(x, w, padding_mode, padding, stride, dilation, groups)
    options = dict(padding=padding, stride=stride, dilation=dilation, groups=groups)
    np.testing.assert_allclose(
        reference_multi(x, w, boundary=PADDING_MODES[padding_mode], **options),
        expected,
        **EXACT,
    )
    for boundary in (
        padding_mode,
        PADDING_MODES[padding_mode],
    ):  # torch's name is an alias
        y = xcorr.corr2d_multi(
            backend.asarray(x), backend.asarray(w), boundary=boundary, **options
        )
        assert_result(backend, y, expected, "float64")


@pytest.mark.parametrize(
    ("padding_mode", "padding", "stride", "dilation", "groups"), MULTI[1:3]
)
def test_multi_gradients_match_torch_autograd(
    backend, padding_mode, padding, stride, dilation, groups
):
    torch = require_module("torch")
    x, w = random((2, 4, 6, 5), seed=15), random((4, 4 // groups, 3, 2), seed=16)
    tx, tw = torch.asarray(x, requires_grad=True), torch.asarray(w, requires_grad=True)
    mode = "constant" if padding_mode == "zeros" else padding_mode
    ph, pw = (padding, padding) if isinstance(padding, int) else padding
    y = torch.nn.functional.conv2d(
        torch.nn.functional.pad(tx, (pw, pw, ph, ph), mode=mode),
        tw,
        stride=stride,
        dilation=dilation,
        groups=groups,
    )
    g = random(tuple(y.shape), seed=17)
    ex, ew = torch.autograd.grad(y, (tx, tw), torch.asarray(g))
    options = dict(
        boundary=padding_mode,
        padding=padding,
        stride=stride,
        dilation=dilation,
        groups=groups,
    )
    gx, gw = xcorr.corr2d_multi_vjp(
        backend.asarray(x), backend.asarray(w), backend.asarray(g), **options
    )
    assert_result(backend, gx, ex.numpy(), "float64")
    assert_result(backend, gw, ew.numpy(), "float64")
    rx, rw = reference_multi_vjp(
        x,
        w,
        g,
        boundary=PADDING_MODES[padding_mode],
        **{k: v for k, v in options.items() if k != "boundary"},
    )
    np.testing.assert_allclose(rx, ex.numpy(), **EXACT)
    np.testing.assert_allclose(rw, ew.numpy(), **EXACT)


# -- scipy.ndimage's names ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ndimage_mode", "xcorr_boundary"),
    [
        ("mirror", "mirror"),
        ("mirror", "reflect"),
        ("reflect", "symm"),
        ("grid-mirror", "grid-mirror"),
        ("nearest", "nearest"),
        ("nearest", "edge"),
        ("grid-wrap", "grid-wrap"),
        ("constant", "constant"),
    ],
)
def test_ndimage_names_mean_what_ndimage_means(ndimage_mode, xcorr_boundary):
    """The aliases taken from scipy.ndimage, against ndimage.correlate, with a kernel wider than the image."""
    from scipy import ndimage

    x, k = random((3, 4), seed=39), random((5, 7), seed=40)
    expected = ndimage.correlate(x, k, mode=ndimage_mode)
    np.testing.assert_allclose(
        xcorr.corr2d(x, k, mode="same", boundary=xcorr_boundary), expected, **EXACT
    )
    if (
        ndimage_mode == "reflect"
    ):  # ndimage's "reflect" repeats the edge: it is not ours
        assert not np.allclose(
            xcorr.corr2d(x, k, mode="same", boundary="reflect"), expected
        )


# -- an axis of one element --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("x_shape", "k_shape", "options", "match"),
    [
        (
            (1, 5),
            (2, 2),
            dict(boundary="reflect", padding=1),
            r'boundary="reflect" cannot extend x of shape \(1, 5\) along the rows: it has 1 element there',
        ),
        (
            (4, 1),
            (2, 2),
            dict(boundary="mirror", mode="same"),
            r'along the columns: it has 1 element there.*"edge" or "symm"',
        ),
    ],
)
def test_reflect_cannot_extend_an_axis_of_one_element(backend, x_shape, k_shape, options, match):
    x, k = backend.asarray(np.ones(x_shape)), backend.asarray(np.ones(k_shape))
    with pytest.raises(ValueError, match=match):
        xcorr.corr2d(x, k, **options)


def test_reflect_of_length_one_is_fine_where_nothing_is_extended(backend):
    x, k = random((1, 5), seed=37), random((1, 2), seed=38)
    options = dict(boundary="reflect", padding=((0, 0), (1, 1)))
    y = xcorr.corr2d(backend.asarray(x), backend.asarray(k), **options)
    assert_result(backend, y, reference(x, k, **options), "float64")
