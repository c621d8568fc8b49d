"""The 3-D functions (issue 23, 3-D slice): corr3d, conv3d, corr3d_multi and their VJPs on every
backend, against scipy.signal's N-d correlate and convolve (modes), scipy.ndimage.correlate (the
boundaries in "same" mode), a float64 loop reference written here with np.pad (stride, dilation,
padding, extensions wider than x), and torch's F.conv3d and its autograd (channels, groups, bias,
layouts, gradients); and their errors, which speak of the 3-D shapes the user passed.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage
import scipy.signal

import xcorr

from matrix import NP_PAD, TOL, backend_grid, check, layout, require_module, triple

BOUNDARIES = ("fill", "wrap", "symm", "reflect", "edge")
# scipy.ndimage's names of xcorr's boundaries: its "reflect" repeats the edge (xcorr's "symm"), its
# "mirror" does not (xcorr's "reflect"); "grid-wrap" is the periodic extension at any width.
NDIMAGE = {"fill": "constant", "wrap": "grid-wrap", "symm": "reflect", "reflect": "mirror", "edge": "nearest"}


def _loop(x, k, *, pads=((0, 0),) * 3, boundary="fill", fillvalue=0.0, stride=1, dilation=1):
    """The float64 reference: extend the last three axes of ``x`` by ``pads`` (np.pad), then the
    strided, dilated "valid" correlation with the 3-D kernel ``k``, one kernel tap at a time."""
    extra = {"constant_values": fillvalue} if boundary == "fill" else {}
    xe = np.pad(np.asarray(x, np.float64), [(0, 0)] * (x.ndim - 3) + list(pads), mode=NP_PAD[boundary], **extra)
    s, d = triple(stride), triple(dilation)
    spans = [di * (t - 1) + 1 for t, di in zip(k.shape, d)]
    counts = [-(-(n - e + 1) // si) for n, e, si in zip(xe.shape[-3:], spans, s)]
    out = np.zeros((*x.shape[:-3], *counts))
    for a, b, c in np.ndindex(*k.shape):
        window = tuple(slice(t * di, t * di + si * (n - 1) + 1, si) for t, di, si, n in zip((a, b, c), d, s, counts))
        out += xe[(Ellipsis, *window)] * k[a, b, c]
    return out


def _mode_pads(mode: str, spans) -> tuple:
    """scipy.signal.correlate's and convolve's N-d "same" starts ``(span - 1) // 2`` into the full result."""
    return tuple({"valid": (0, 0), "full": (e - 1, e - 1), "same": (e // 2, (e - 1) // 2)}[mode] for e in spans)


# -- modes: scipy.signal's N-d correlate and convolve ---------------------------------------------


@pytest.mark.parametrize("mode", ["valid", "same", "full"])
@pytest.mark.parametrize("shape", [(1, 1, 1), (2, 3, 4), (3, 2, 3)], ids=str)
def test_modes_match_scipy_signal(backend, mode, shape):
    rng = np.random.default_rng(sum(shape))
    x, k = rng.standard_normal((2, 5, 6, 7)), rng.standard_normal(shape)
    corr = np.stack([scipy.signal.correlate(v, k, mode=mode, method="direct") for v in x])
    conv = np.stack([scipy.signal.convolve(v, k, mode=mode, method="direct") for v in x])
    xb, kb = backend.asarray(x), backend.asarray(k)
    check(backend, xcorr.corr3d(xb, kb, mode=mode), corr, xb)
    check(backend, xcorr.conv3d(xb, kb, mode=mode), conv, xb)


def test_kernels_broadcast_against_the_batch(backend):
    rng = np.random.default_rng(1)
    x, k = rng.standard_normal((2, 3, 4, 5, 6)), rng.standard_normal((2, 1, 2, 3, 2))
    expected = np.stack([[scipy.signal.correlate(x[n, c], k[n, 0], mode="full") for c in range(3)] for n in range(2)])
    xb = backend.asarray(x)
    check(backend, xcorr.corr3d(xb, backend.asarray(k), mode="full"), expected, xb)
    one = backend.asarray(x[0, 0])  # one volume, a batch of kernels
    expected = np.stack([scipy.signal.correlate(x[0, 0], kn, mode="valid") for kn in k[:, 0]])
    check(backend, xcorr.corr3d(one, backend.asarray(k[:, 0])), expected, xb)


# -- boundaries: scipy.ndimage.correlate; stride, dilation, padding: the loop reference ------------


@pytest.mark.parametrize("boundary", BOUNDARIES)
def test_boundaries_match_scipy_ndimage(backend, boundary):
    """``mode="same"`` is ndimage's output with origin 0 (the window starts ``k // 2`` before) for odd
    and even kernels alike; ndimage's own names of the boundaries differ from xcorr's (NDIMAGE)."""
    rng = np.random.default_rng(2)
    x, k = rng.standard_normal((2, 4, 5, 6)), rng.standard_normal((3, 2, 4))
    expected = np.stack([scipy.ndimage.correlate(v, k, mode=NDIMAGE[boundary], cval=1.5) for v in x])
    np.testing.assert_allclose(expected, _loop(x, k, pads=_mode_pads("same", k.shape), boundary=boundary, fillvalue=1.5))
    xb = backend.asarray(x)
    check(backend, xcorr.corr3d(xb, backend.asarray(k), mode="same", boundary=boundary, fillvalue=1.5), expected, xb)


LOOP_OPTIONS = [
    {"mode": "full", "dilation": (2, 1, 2)},
    {"mode": "same", "stride": (2, 1, 3), "dilation": 2},
    {"padding": ((7, 1), 2, (0, 3)), "stride": (3, 2, 1)},  # wider than x along the depth
    {"padding": "SAME", "stride": 2, "dilation": (1, 2, 1)},
    {"padding": "same_lower", "stride": (3, 1, 2)},
    {"padding": "VALID", "stride": 2},
]


@pytest.mark.parametrize(
    ("backend", "boundary", "options", "op"),
    backend_grid(BOUNDARIES, LOOP_OPTIONS, ("corr3d", "conv3d")),
    indirect=["backend"],
)
def test_strides_dilations_and_padding_match_the_loop(backend, boundary, options, op):
    rng = np.random.default_rng(7)
    x, k = rng.standard_normal((2, 5, 6, 7)), rng.standard_normal((2, 3, 2))
    stride, dilation = triple(options.get("stride", 1)), triple(options.get("dilation", 1))
    spans = [d * (t - 1) + 1 for t, d in zip(k.shape, dilation)]
    padding = options.get("padding")
    if isinstance(padding, str):
        pads = []
        for n, e, s in zip(x.shape[-3:], spans, stride):
            total = 0 if padding == "VALID" else max((-(-n // s) - 1) * s + e - n, 0)
            pads.append((total // 2, total - total // 2) if padding != "same_lower" else (total - total // 2, total // 2))
    elif padding is not None:
        pads = [p if isinstance(p, tuple) else (p, p) for p in padding]
    else:
        pads = _mode_pads(options["mode"], spans)
    kernel = k[::-1, ::-1, ::-1] if op == "conv3d" else k
    expected = _loop(x, kernel, pads=pads, boundary=boundary, fillvalue=1.5, stride=stride, dilation=dilation)
    xb = backend.asarray(x)
    y = getattr(xcorr, op)(xb, backend.asarray(k), boundary=boundary, fillvalue=1.5, **options)
    check(backend, y, expected, xb)


@pytest.mark.parametrize("method", ["direct", "fft"])
def test_every_method_serves_three_d(backend, method):
    rng = np.random.default_rng(3)
    x, k = rng.standard_normal((4, 9, 10)), rng.standard_normal((3, 3, 3))
    expected = _loop(x, k, pads=((1, 1),) * 3, boundary="wrap", stride=2)
    xb = backend.asarray(x)
    y = xcorr.corr3d(xb, backend.asarray(k), mode="same", boundary="wrap", stride=2, method=method)
    check(backend, y, expected, xb)


@pytest.mark.parametrize("method", ["auto", "fft"])
@pytest.mark.parametrize("boundary", BOUNDARIES)
def test_a_large_kernel_matches_the_loop_through_one_fft_of_the_volume(backend, method, boundary):
    """A kernel of many taps: where "auto" takes the FFT, one transform of the whole extended volume
    (``_fft.correlate`` over three axes) on eager libraries; the same numbers with stride, dilation,
    broadcast kernels and convolution's flip."""
    rng = np.random.default_rng(11)
    x, k = rng.standard_normal((2, 9, 10, 11)), rng.standard_normal((2, 4, 3, 5))  # 60 taps per kernel
    options = {"mode": "same", "boundary": boundary, "fillvalue": 1.5, "stride": (2, 1, 3), "dilation": (1, 2, 1)}
    pads = _mode_pads("same", (4, 5, 5))
    xb, kb = backend.asarray(x), backend.asarray(k)
    expected = np.stack([_loop(x[i], k[i], pads=pads, boundary=boundary, fillvalue=1.5, stride=(2, 1, 3),
                               dilation=(1, 2, 1)) for i in range(2)])  # fmt: skip
    check(backend, xcorr.corr3d(xb, kb, method=method, **options), expected, xb)
    flipped = np.stack([_loop(x[i], k[i, ::-1, ::-1, ::-1], pads=pads, boundary=boundary, fillvalue=1.5,
                              stride=(2, 1, 3), dilation=(1, 2, 1)) for i in range(2)])  # fmt: skip
    check(backend, xcorr.conv3d(xb, kb, method=method, **options), flipped, xb)


def test_auto_takes_one_fft_of_the_volume_for_large_kernels_only(monkeypatch):
    """numpy: "auto" transforms a 32³ volume with a 9³ kernel once; a 3³ kernel goes through the
    depth taps' 2-D calls; a NaN in the volume keeps the direct method's result (it stays local)."""
    from xcorr import _fft, _prepared

    calls = []
    transform, transform_vjp = _fft.correlate, _fft.vjp
    monkeypatch.setattr(_fft, "correlate", lambda *a, **kw: (calls.append(a[4]), transform(*a, **kw))[1])
    _prepared.clear_prepared()
    rng = np.random.default_rng(12)
    x = rng.standard_normal((32, 32, 32))
    y = xcorr.corr3d(x, rng.standard_normal((9, 9, 9)))
    assert len(calls) == 1 and len(calls[0].axes) == 3 and y.shape == (24, 24, 24)
    xcorr.corr3d(x, rng.standard_normal((3, 3, 3)))
    assert len(calls) == 1
    x[5, 6, 7] = np.nan
    k = rng.standard_normal((9, 9, 9))
    y = xcorr.corr3d(x, k)
    assert len(calls) == 1  # not finite: no transform
    np.testing.assert_array_equal(np.isnan(y), np.isnan(xcorr.corr3d(x, k, method="direct")))
    assert np.isnan(y).sum() == 6 * 7 * 8  # the windows that read x[5, 6, 7]
    gradients = []
    monkeypatch.setattr(_fft, "vjp", lambda *a, **kw: (gradients.append(a[5]), transform_vjp(*a, **kw))[1])
    g = rng.standard_normal((24, 24, 24))
    xcorr.corr3d_vjp(x[::-1].copy(), k, g)  # still a NaN: the depth taps' VJPs
    assert gradients == []
    xcorr.corr3d_vjp(np.nan_to_num(x), k, g)
    assert len(gradients) == 1 and len(gradients[0].axes) == 3


def test_a_prepared_call_serves_its_signature_only(backend):
    rng = np.random.default_rng(4)
    x, k = rng.standard_normal((3, 4, 5)), rng.standard_normal((2, 2, 2))
    xb, kb = backend.asarray(x), backend.asarray(k)
    for _ in range(2):
        check(backend, xcorr.corr3d(xb, kb, stride=2), _loop(x, k, stride=2), xb)
        check(backend, xcorr.corr3d(xb, kb, stride=(2, 1, 1)), _loop(x, k, stride=(2, 1, 1)), xb)
        check(backend, xcorr.conv3d(xb, kb, stride=2), _loop(x, k[::-1, ::-1, ::-1], stride=2), xb)
        with pytest.raises(ValueError, match="stride must be"):
            xcorr.corr3d(xb, kb, stride=0)


def test_integers_stay_exact(backend):
    x = np.arange(60, dtype=np.int64).reshape(3, 4, 5) * 1000
    k = np.arange(8, dtype=np.int64).reshape(2, 2, 2) - 3
    y = xcorr.conv3d(backend.asarray(x), backend.asarray(k), mode="full")
    assert y.dtype == backend.dtype("int64")
    np.testing.assert_array_equal(backend.to_numpy(y), scipy.signal.convolve(x, k, mode="full", method="direct"))


DASK_VOLUMES = [
    (dict(mode="full", boundary="symm"), dict(pads=((2, 2), (3, 3), (1, 1)), boundary="symm")),
    (dict(mode="same", boundary="wrap", stride=(2, 1, 3)), dict(pads=((1, 1), (2, 1), (1, 0)), boundary="wrap", stride=(2, 1, 3))),
    (dict(padding=((2, 0), 1, (0, 3)), boundary="reflect", dilation=(1, 2, 1)),
     dict(pads=((2, 0), (1, 1), (0, 3)), boundary="reflect", dilation=(1, 2, 1))),
    # a depth dilation wider than the output: the taps' windows end to end
    (dict(mode="same", fillvalue=1.5, dilation=(40, 1, 1)), dict(pads=((40, 40), (2, 1), (1, 0)), fillvalue=1.5, dilation=(40, 1, 1))),
]  # fmt: skip


@pytest.mark.parametrize(("options", "loop"), DASK_VOLUMES, ids=["full-symm", "same-wrap-strided", "padding-reflect-dilated", "wide-dilation"])
def test_dask_correlates_a_volume_block_by_block(options, loop):
    """A dask volume in chunks smaller than the kernel's span: one numpy ``corr3d`` task per output
    block (not one 2-D correlation per depth tap), each reading its window of the boundary-extended
    volume, halo included; values as the loop's, dtypes kept (float16 rounded once, as numpy's)."""
    da = require_module("dask.array")
    rng = np.random.default_rng(7)
    x, k = rng.standard_normal((2, 7, 9, 8)), rng.standard_normal((3, 4, 2))
    xd, kd = da.from_array(x, chunks=(1, 2, 3, 4)), da.from_array(k)
    for op, kernel in (("corr3d", k), ("conv3d", k[::-1, ::-1, ::-1])):
        y = getattr(xcorr, op)(xd, kd, **options)
        tasks = [key for key in dict(y.__dask_graph__()) if str(key[0] if isinstance(key, tuple) else key).startswith("_block-")]
        assert len(tasks) == np.prod([len(c) for c in y.chunks]), (len(tasks), y.chunks)
        np.testing.assert_allclose(y.compute(), _loop(x, kernel, **loop), **TOL)
    half = xcorr.corr3d(xd.astype(np.float16), kd.astype(np.float16), **options)
    expected = xcorr.corr3d(x.astype(np.float16), k.astype(np.float16), **options)
    assert half.dtype == np.float16 and tuple(half.shape) == expected.shape
    np.testing.assert_array_equal(half.compute(), expected)


# -- channels, groups, bias, gradients: torch's F.conv3d and its autograd ----------------------


def _torch_conv3d(x, w, b, *, stride, dilation, padding, boundary, groups):
    """F.conv3d of float64 numpy arrays, x extended first (``padding``: 3 (before, after) pairs)."""
    torch = require_module("torch")
    F = torch.nn.functional
    xt, wt = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    if boundary == "symm":  # torch has no symmetric padding: numpy's, differentiated by index
        xe = xt
        for axis, pair in zip((2, 3, 4), padding):
            index = torch.tensor(np.pad(np.arange(x.shape[axis]), pair, mode="symmetric"))
            xe = torch.index_select(xe, axis, index)
    else:
        mode = {"fill": "constant", "wrap": "circular", "reflect": "reflect", "edge": "replicate"}[boundary]
        xe = F.pad(xt, [p for pair in reversed(padding) for p in pair], mode=mode)
    bt = None if b is None else torch.tensor(b)
    return xt, wt, F.conv3d(xe, wt, bt, stride=stride, dilation=dilation, groups=groups)


MULTI = [
    {"groups": 1, "stride": 1, "dilation": 1, "padding": 0, "boundary": "fill", "bias": False},
    {"groups": 2, "stride": (2, 1, 2), "dilation": 1, "padding": (1, 0, 2), "boundary": "fill", "bias": True},
    {"groups": 4, "stride": 1, "dilation": (2, 1, 1), "padding": ((1, 2), 1, (0, 1)), "boundary": "reflect", "bias": True},
    {"groups": 1, "stride": (3, 2, 1), "dilation": 2, "padding": 2, "boundary": "wrap", "bias": False},
    {"groups": 2, "stride": 2, "dilation": (1, 2, 1), "padding": ((2, 0), (1, 1), 1), "boundary": "edge", "bias": True},
    {"groups": 1, "stride": 1, "dilation": 1, "padding": ((1, 0), 0, 1), "boundary": "symm", "bias": True},
]


@pytest.mark.parametrize(
    ("backend", "case", "data_format"), backend_grid(MULTI, ("channels_first", "channels_last")), indirect=["backend"]
)
def test_multi_matches_torch_conv3d_forward_and_gradients(backend, case, data_format):
    torch = require_module("torch")
    rng = np.random.default_rng(5)
    groups = case["groups"]
    x, w = rng.standard_normal((2, 4, 6, 5, 6)), rng.standard_normal((4, 4 // groups, 2, 3, 2))
    b = rng.standard_normal(4) if case["bias"] else None
    pads = [p if isinstance(p, tuple) else (p, p) for p in triple(case["padding"])]
    xt, wt, yt = _torch_conv3d(
        x, w, b, stride=case["stride"], dilation=case["dilation"], padding=pads, boundary=case["boundary"], groups=groups
    )
    g = rng.standard_normal(tuple(yt.shape))
    yt.backward(torch.tensor(g))
    last = data_format == "channels_last"

    options = {n: case[n] for n in ("stride", "dilation", "padding", "boundary", "groups")}
    options["data_format"] = data_format
    xb, wb = backend.asarray(layout(x, last)), backend.asarray(w)
    bias = None if b is None else backend.asarray(b)
    check(backend, xcorr.corr3d_multi(xb, wb, bias=bias, **options), layout(yt.detach().numpy(), last), xb)
    gx, gw = xcorr.corr3d_multi_vjp(xb, wb, backend.asarray(layout(g, last)), **options)
    check(backend, gx, layout(xt.grad.numpy(), last), xb)
    check(backend, gw, wt.grad.numpy(), xb)
    y1 = xcorr.corr3d_multi(backend.asarray(layout(x[:1], last)[0]), wb, bias=bias, **options)  # no batch axis
    check(backend, y1, layout(yt.detach().numpy()[:1], last)[0], xb)
    gx1, _ = xcorr.corr3d_multi_vjp(backend.asarray(layout(x[:1], last)[0]), wb, backend.asarray(layout(g[:1], last)[0]), **options)
    check(backend, gx1, layout(xt.grad.numpy()[:1], last)[0], xb)


def test_a_prepared_multi_call_serves_its_signature_only(backend):
    """A repeated ``corr3d_multi`` signature takes its prepared call, with the new values; a call
    that differs only in its bias or its layout is not served by it, and bad input is still refused."""
    rng = np.random.default_rng(8)
    options = {"stride": (2, 1, 1), "dilation": 1, "padding": (1, 0, 1), "boundary": "fill"}
    pads = [(1, 1), (0, 0), (1, 1)]
    variants = [(1, False, "channels_first"), (1, True, "channels_first"), (1, False, "channels_last"), (2, True, "channels_last")]
    for _ in range(2):
        for groups, with_bias, data_format in variants:
            x, w = rng.standard_normal((2, 4, 4, 4, 4)), rng.standard_normal((4, 4 // groups, 2, 2, 3))  # C_in = D = H = W
            b = rng.standard_normal(4) if with_bias else None
            *_, yt = _torch_conv3d(x, w, b, stride=(2, 1, 1), dilation=1, padding=pads, boundary="fill", groups=groups)
            last = data_format == "channels_last"
            xb, wb, bias = backend.asarray(layout(x, last)), backend.asarray(w), b if b is None else backend.asarray(b)
            y = xcorr.corr3d_multi(xb, wb, bias=bias, groups=groups, data_format=data_format, **options)
            check(backend, y, layout(yt.detach().numpy(), last), xb)
            with pytest.raises(ValueError, match="bias"):
                xcorr.corr3d_multi(xb, wb, bias=backend.asarray(np.ones(5)), groups=groups, data_format=data_format, **options)


VJP_OPTIONS = [
    {"stride": 1, "dilation": 1, "padding": 0},
    {"stride": (2, 1, 2), "dilation": (2, 1, 1), "padding": ((3, 1), 1, (0, 2))},
    {"stride": (3, 1, 1), "dilation": 1, "padding": 2, "boundary": "reflect"},
    {"stride": 1, "dilation": (1, 2, 1), "padding": ((4, 0), 2, 1), "boundary": "wrap"},
    {"stride": 2, "dilation": 1, "mode": "same", "boundary": "symm"},  # scipy's centring: pads (1, 0), (1, 1), (1, 0)
    {"stride": 1, "dilation": 1, "mode": "full", "boundary": "edge"},
]


@pytest.mark.parametrize(
    ("backend", "op", "options"), backend_grid(("corr3d", "conv3d"), VJP_OPTIONS), indirect=["backend"]
)
def test_vjps_match_torch_autograd(backend, op, options):
    torch = require_module("torch")
    rng = np.random.default_rng(11)
    x, k = rng.standard_normal((2, 6, 5, 6)), rng.standard_normal((2, 3, 2))
    boundary = options.get("boundary", "fill")
    mode = options.get("mode")
    pads = _mode_pads(mode, k.shape) if mode else [p if isinstance(p, tuple) else (p, p) for p in triple(options["padding"])]
    kernel = k[::-1, ::-1, ::-1].copy() if op == "conv3d" else k
    xt, wt, yt = _torch_conv3d(
        x[:, None], kernel[None, None], None, stride=options["stride"], dilation=options["dilation"],
        padding=pads, boundary=boundary, groups=1,
    )  # fmt: skip
    g = rng.standard_normal(tuple(yt.shape))[:, 0]
    yt.backward(torch.tensor(g[:, None]))
    keywords = {**options, "boundary": boundary}
    xb, kb, gb = backend.asarray(x), backend.asarray(k), backend.asarray(g)
    check(backend, getattr(xcorr, op)(xb, kb, **keywords), yt.detach().numpy()[:, 0], xb)
    gx, gk = getattr(xcorr, f"{op}_vjp")(xb, kb, gb, **keywords)
    check(backend, gx, xt.grad.numpy()[:, 0], xb)
    expected_gk = wt.grad.numpy()[0, 0]
    check(backend, gk, expected_gk[::-1, ::-1, ::-1].copy() if op == "conv3d" else expected_gk, xb)


@pytest.mark.parametrize("op", ["corr3d", "conv3d"])
@pytest.mark.parametrize("method", ["auto", "fft"])
def test_a_large_kernels_vjp_matches_torch_autograd(backend, op, method):
    """A kernel of many taps, stride 1 and a zero fill: both gradients from one spectrum of ``g`` over
    the three axes where "auto" takes the FFT (numpy, array-api-strict), the depth taps' 2-D VJPs elsewhere."""
    torch = require_module("torch")
    rng = np.random.default_rng(14)
    x, k = rng.standard_normal((2, 9, 8, 10)), rng.standard_normal((4, 3, 5))  # 60 taps
    kernel = k[::-1, ::-1, ::-1].copy() if op == "conv3d" else k
    pads = _mode_pads("same", (4, 5, 5))
    xt, wt, yt = _torch_conv3d(x[:, None], kernel[None, None], None, stride=1, dilation=(1, 2, 1), padding=pads,
                               boundary="fill", groups=1)  # fmt: skip
    g = rng.standard_normal(tuple(yt.shape))[:, 0]
    yt.backward(torch.tensor(g[:, None]))
    xb, kb, gb = backend.asarray(x), backend.asarray(k), backend.asarray(g)
    gx, gk = getattr(xcorr, f"{op}_vjp")(xb, kb, gb, mode="same", dilation=(1, 2, 1), method=method)
    check(backend, gx, xt.grad.numpy()[:, 0], xb)
    expected_gk = wt.grad.numpy()[0, 0]
    check(backend, gk, expected_gk[::-1, ::-1, ::-1].copy() if op == "conv3d" else expected_gk, xb)


def test_vjp_sums_over_broadcast_kernels(backend):
    """A kernel broadcast over x's batch gets the gradients summed; one per sample keeps its own."""
    rng = np.random.default_rng(12)
    x, k = rng.standard_normal((3, 4, 4, 5)), rng.standard_normal((2, 2, 3))
    g = rng.standard_normal((3, 3, 3, 3))
    gx, gk = xcorr.corr3d_vjp(backend.asarray(x), backend.asarray(k), backend.asarray(g))
    per = [xcorr.corr3d_vjp(x[n], k, g[n]) for n in range(3)]
    np.testing.assert_allclose(backend.to_numpy(gx), np.stack([p[0] for p in per]), **TOL)
    np.testing.assert_allclose(backend.to_numpy(gk), sum(p[1] for p in per), **TOL)


@pytest.mark.parametrize(
    ("x_dtype", "k_dtype", "expected"),
    [
        ("float32", "float64", ("float32", "float64")),
        ("float16", "float32", ("float16", "float32")),
        ("int64", "float32", ("float32", "float32")),  # an integer operand's gradient: the result dtype
        ("float64", "complex128", ("float64", "complex128")),  # a real operand: the real part
    ],
)
@pytest.mark.parametrize("method", ["direct", "fft"])
def test_each_gradient_has_its_operands_dtype_as_in_one_and_two_d(x_dtype, k_dtype, expected, method):
    """As ``corr1d_vjp``/``corr2d_vjp`` and jax.vjp: ``gx`` has ``x``'s dtype, ``gk`` ``k``'s (the
    3-D VJPs returned both in the promoted dtype, a complex ``gx`` for a real ``x``)."""
    if method == "fft" and "int" in x_dtype:
        pytest.skip('method="fft" refuses integer operands')
    rng = np.random.default_rng(13)
    x = (rng.standard_normal((5, 6, 7)) * 4).astype(x_dtype)
    k = rng.standard_normal((2, 3, 2)).astype(k_dtype) * (1 + 1j if "complex" in k_dtype else 1)
    g = rng.standard_normal((4, 4, 6)).astype(k_dtype)
    xw, ww = x[None, None], k[None, None]
    for vjp, operands in ((xcorr.corr3d_vjp, (x, k)), (xcorr.conv3d_vjp, (x, k)), (xcorr.corr3d_multi_vjp, (xw, ww))):
        gx, gk = vjp(*operands, g[None, None] if vjp is xcorr.corr3d_multi_vjp else g, method=method)
        assert (str(gx.dtype), str(gk.dtype)) == expected, vjp.__name__
        if "complex" in k_dtype:  # the real part of the gradient of the complex embedding of x
            full, _ = vjp(operands[0].astype(k_dtype), operands[1], g[None, None] if vjp is xcorr.corr3d_multi_vjp else g)
            np.testing.assert_allclose(gx, full.real, **TOL)


# -- errors in 3-D terms ---------------------------------------------------------------------------


def test_errors_speak_of_the_three_d_shapes(backend):
    x, k = backend.asarray(np.ones((2, 4, 5, 6))), backend.asarray(np.ones((2, 2, 2)))
    with pytest.raises(ValueError, match=r"x must have at least 3 dimensions, shape \(\.\.\., D, H, W\); got shape \(5, 6\)"):
        xcorr.corr3d(backend.asarray(np.ones((5, 6))), k)
    with pytest.raises(ValueError, match=r"k must have at least 3 dimensions"):
        xcorr.conv3d(x, backend.asarray(np.ones((2, 2))))
    with pytest.raises(ValueError, match=r"do not broadcast.*\(2, 4, 5, 6\).*\(3, 2, 2, 2\)"):
        xcorr.corr3d(x, backend.asarray(np.ones((3, 2, 2, 2))))
    with pytest.raises(ValueError, match=r"stride must be an int >= 1 or a sequence of 3 ints \(depth, height, width\); got \(1, 2\)"):
        xcorr.corr3d(x, k, stride=(1, 2))
    with pytest.raises(TypeError, match=r"dilation must be"):
        xcorr.corr3d_vjp(x, k, x, dilation=1.5)
    with pytest.raises(ValueError, match=r'k is larger than x in "valid" mode along the depth: kernel of shape \(5, 1, 1\)'):
        xcorr.corr3d(x, backend.asarray(np.ones((5, 1, 1))))
    with pytest.raises(ValueError, match=r"along the width: dilated kernel \(extent 7\)"):
        xcorr.conv3d(x, k, dilation=(1, 1, 6))
    with pytest.raises(ValueError, match=r"larger than the padded x along the height.*padded by \(0, 1\)"):
        xcorr.corr3d(x, backend.asarray(np.ones((1, 7, 1))), padding=(0, (0, 1), 0))
    with pytest.raises(ValueError, match=r"padding must be .* sequence of 3 .*\(a sequence of 2 items"):
        xcorr.corr3d(x, k, padding=(1, 1))
    with pytest.raises(ValueError, match=r"padding must be .*\(an axis's padding \(1, 2, 3\) has 3 items"):
        xcorr.corr3d(x, k, padding=(0, (1, 2, 3), 0))
    with pytest.raises(ValueError, match=r"padding must be"):
        xcorr.corr3d(x, k, padding=-1)
    with pytest.raises(ValueError, match=r"padding must be"):
        xcorr.corr3d(x, k, padding="full")
    with pytest.raises(ValueError, match=r"conflict"):
        xcorr.corr3d(x, k, padding=1, mode="same")
    with pytest.raises(ValueError, match=r"mode must be|mode"):
        xcorr.corr3d(x, k, mode="nope")
    with pytest.raises(ValueError, match=r'boundary="reflect" cannot extend x of shape \(1, 3, 3\) along the depth'):
        xcorr.corr3d(backend.asarray(np.ones((1, 3, 3))), k, mode="full", boundary="reflect")
    with pytest.raises(ValueError, match=r"x must not be empty in its depth, height or width; got shape \(0, 3, 3\)"):
        xcorr.corr3d(backend.asarray(np.ones((0, 3, 3))), k, mode="full")
    with pytest.raises(ValueError, match=r"g must have the shape of the output, \(2, 3, 4, 5\); got shape \(2, 3, 4\)"):
        xcorr.corr3d_vjp(x, k, backend.asarray(np.ones((2, 3, 4))))
    with pytest.raises(TypeError):
        xcorr.corr3d(np.ones((2, 2, 2)).tolist(), k)
    ints = backend.asarray(np.ones((3, 3, 3), dtype=np.int32))
    with pytest.raises(ValueError, match=r"fillvalue 2\.5 cannot be represented in the integer result dtype"):
        xcorr.corr3d(ints, ints, fillvalue=2.5)  # "valid" reaches no fill: refused all the same, as in 2-D


def test_multi_errors_speak_of_the_three_d_shapes(backend):
    x, w = backend.asarray(np.ones((2, 4, 5, 5, 5))), backend.asarray(np.ones((6, 2, 2, 2, 2)))
    with pytest.raises(ValueError, match=r"x must have shape \(N, C_in, D, H, W\) or \(C_in, D, H, W\); got shape \(5, 5, 5\)"):
        xcorr.corr3d_multi(backend.asarray(np.ones((5, 5, 5))), w, groups=2)
    with pytest.raises(ValueError, match=r"x must have shape \(N, D, H, W, C_in\)"):
        xcorr.corr3d_multi(x[0, 0, ...], w, data_format="channels_last")
    with pytest.raises(ValueError, match=r"w must have shape \(C_out, C_in // groups, kd, kh, kw\); got shape \(6, 2, 2, 2\)"):
        xcorr.corr3d_multi(x, backend.asarray(np.ones((6, 2, 2, 2))))
    with pytest.raises(ValueError, match=r"x has 4 channels \(shape \(2, 4, 5, 5, 5\)\) but w of shape \(6, 2, 2, 2, 2\) with groups=1 expects 2"):
        xcorr.corr3d_multi(x, w)
    with pytest.raises(ValueError, match=r"groups=4 must divide"):
        xcorr.corr3d_multi(x, w, groups=4)
    with pytest.raises(ValueError, match=r"bias must have shape \(C_out,\)"):
        xcorr.corr3d_multi(x, w, groups=2, bias=backend.asarray(np.ones(5)))
    with pytest.raises(ValueError, match=r'w is larger than x in "valid" mode along the depth.*\(6, 2, 2, 2, 2\).*\(2, 4, 5, 5, 5\)'):
        xcorr.corr3d_multi(x, w, groups=2, dilation=(5, 1, 1))
    with pytest.raises(ValueError, match=r"g must have the shape of the output, \(2, 4, 4, 4, 6\) \(data_format=\"channels_last\"\)"):
        xcorr.corr3d_multi_vjp(backend.asarray(np.ones((2, 5, 5, 5, 4))), w, backend.asarray(np.ones((2, 6, 4, 4, 4))),
                               groups=2, data_format="channels_last")  # fmt: skip
