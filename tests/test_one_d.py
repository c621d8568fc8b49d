"""The 1-D functions (issue 23, first slice): corr1d, conv1d, corr1d_multi and their VJPs on every
backend, against scipy.signal / numpy (modes), a float64 loop reference written here with np.pad
(boundaries, fillvalue, stride, dilation, padding), and torch's F.conv1d and its autograd (channels,
groups, bias, layouts, gradients); and their errors, which speak of the 1-D shapes the user passed.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
import scipy.signal

import xcorr

from matrix import NP_PAD, TOL, backend_grid, check, layout, require_module


def _span(taps: int, dilation: int) -> int:
    return dilation * (taps - 1) + 1


def _loop(x, k, *, pads=(0, 0), boundary="fill", fillvalue=0.0, stride=1, dilation=1):
    """The float64 loop reference: extend the last axis of ``x`` by ``pads`` (np.pad), then the
    strided, dilated "valid" correlation with the 1-D kernel ``k``, one output at a time."""
    widths = [(0, 0)] * (x.ndim - 1) + [pads]
    extra = {"constant_values": fillvalue} if boundary == "fill" else {}
    xe = np.pad(np.asarray(x, dtype=np.float64), widths, mode=NP_PAD[boundary], **extra)
    span = _span(len(k), dilation)
    count = -(-(xe.shape[-1] - span + 1) // stride)
    out = np.zeros((*x.shape[:-1], count))
    for i in range(count):
        for a in range(len(k)):
            out[..., i] += xe[..., i * stride + a * dilation] * k[a]
    return out


def _mode_pads(mode: str, span: int) -> tuple[int, int]:
    """The extension of x that a mode reads: scipy.signal.correlate's and convolve's "same" (and
    numpy's) both start ``(span - 1) // 2`` into the full result (``correlate2d``'s starts at
    ``span // 2``)."""
    if mode == "valid":
        return (0, 0)
    if mode == "full":
        return (span - 1, span - 1)
    return (span // 2, (span - 1) // 2)


# -- modes: scipy.signal and numpy ---------------------------------------------------------------


@pytest.mark.parametrize("mode", ["valid", "same", "full"])
@pytest.mark.parametrize("taps", [1, 4, 5])
def test_modes_match_scipy_and_numpy(backend, mode, taps):
    rng = np.random.default_rng(taps)
    x, k = rng.standard_normal((2, 3, 11)), rng.standard_normal(taps)
    corr = np.stack([[scipy.signal.correlate(r, k, mode=mode) for r in plane] for plane in x])
    conv = np.stack([[scipy.signal.convolve(r, k, mode=mode) for r in plane] for plane in x])
    np.testing.assert_allclose(corr[1, 2], np.correlate(x[1, 2], k, mode=mode), **TOL)
    np.testing.assert_allclose(conv[0, 1], np.convolve(x[0, 1], k, mode=mode), **TOL)
    xb, kb = backend.asarray(x), backend.asarray(k)
    check(backend, xcorr.corr1d(xb, kb, mode=mode), corr)
    check(backend, xcorr.conv1d(xb, kb, mode=mode), conv)
    # as conv1d's docstring says: the correlation with the kernel flipped, even kernels' "same" too
    check(backend, xcorr.corr1d(xb, backend.asarray(np.ascontiguousarray(k[::-1])), mode=mode), conv)


def test_kernels_broadcast_against_the_batch(backend):
    rng = np.random.default_rng(1)
    x, k = rng.standard_normal((2, 3, 9)), rng.standard_normal((2, 1, 3))
    expected = np.stack([[np.correlate(x[n, c], k[n, 0], mode="full") for c in range(3)] for n in range(2)])
    check(backend, xcorr.corr1d(backend.asarray(x), backend.asarray(k), mode="full"), expected)
    one = backend.asarray(rng.standard_normal(9))  # one signal, a batch of kernels
    y = xcorr.corr1d(one, backend.asarray(k[:, 0]))
    check(backend, y, np.stack([np.correlate(backend.to_numpy(one), kn) for kn in k[:, 0]]))


# -- boundaries, fillvalue, stride, dilation, padding: the loop reference -------------------------


BOUNDARIES = ("fill", "wrap", "symm", "reflect", "edge")
LOOP_OPTIONS = [
    {"mode": "same"},
    {"mode": "full", "dilation": 2},
    {"mode": "same", "stride": 2, "dilation": (2,)},
    {"padding": 3, "stride": (3,)},
    {"padding": (1, 4), "dilation": 3},
    {"padding": [0, 2], "stride": 2},
    {"padding": "SAME", "stride": 2, "dilation": 2},
    {"padding": "same_lower", "stride": 3},
    {"padding": "VALID", "stride": 2},
]


@pytest.mark.parametrize(
    ("backend", "boundary", "options", "op"),
    backend_grid(BOUNDARIES, LOOP_OPTIONS, ("corr1d", "conv1d")),
    indirect=["backend"],
)
def test_boundaries_strides_dilations_and_padding_match_the_loop(backend, boundary, options, op):
    rng = np.random.default_rng(7)
    x, k = rng.standard_normal((3, 10)), rng.standard_normal(4)
    stride, dilation = (int(np.ravel([options.get(n, 1)])[0]) for n in ("stride", "dilation"))
    span, convolve = _span(4, dilation), op == "conv1d"
    padding = options.get("padding")
    if isinstance(padding, str):
        name = padding.upper()
        total = 0 if name == "VALID" else max((-(-10 // stride) - 1) * stride + span - 10, 0)
        small = total // 2
        pads = (small, total - small) if name != "SAME_LOWER" else (total - small, small)
    elif padding is not None:
        pads = tuple(padding) if isinstance(padding, (tuple, list)) else (padding, padding)
    else:
        pads = _mode_pads(options["mode"], span)
    kernel = k[::-1] if convolve else k
    expected = _loop(x, kernel, pads=pads, boundary=boundary, fillvalue=1.5, stride=stride, dilation=dilation)
    y = getattr(xcorr, op)(backend.asarray(x), backend.asarray(k), boundary=boundary, fillvalue=1.5, **options)
    check(backend, y, expected)


@pytest.mark.parametrize("method", ["direct", "fft"])
def test_every_method_serves_one_d(backend, method):
    rng = np.random.default_rng(3)
    x, k = rng.standard_normal((2, 40)), rng.standard_normal(7)
    expected = _loop(x, k, pads=(3, 3), boundary="wrap", stride=2)
    y = xcorr.corr1d(backend.asarray(x), backend.asarray(k), mode="same", boundary="wrap", stride=2, method=method)
    check(backend, y, expected)


def test_a_prepared_call_serves_its_signature_only(backend):
    """The second call of a signature takes the prepared call; other options, dtypes and bad input
    are not served by it."""
    rng = np.random.default_rng(4)
    x, k = rng.standard_normal((2, 12)), rng.standard_normal(3)
    xb, kb = backend.asarray(x), backend.asarray(k)
    for _ in range(2):
        check(backend, xcorr.corr1d(xb, kb, stride=2), _loop(x, k, stride=2))
        check(backend, xcorr.corr1d(xb, kb, stride=(3,)), _loop(x, k, stride=3))
        check(backend, xcorr.conv1d(xb, kb, stride=2), _loop(x, k[::-1], stride=2))
        check(backend, xcorr.corr1d(xb, kb, boundary="wrap", mode="full"), _loop(x, k, pads=(2, 2), boundary="wrap"))
        with pytest.raises(ValueError, match="stride must be"):
            xcorr.corr1d(xb, kb, stride=0)


# -- channels, groups and bias: torch's F.conv1d ----------------------------------------------


def _torch_conv1d(x, w, b, *, stride, dilation, padding, boundary, groups):
    """F.conv1d of float64 numpy arrays, x extended first by F.pad (torch's padding_mode)."""
    torch = require_module("torch")
    F = torch.nn.functional
    xt = torch.tensor(x, requires_grad=True)
    wt = torch.tensor(w, requires_grad=True)
    if boundary == "symm":  # torch has no symmetric padding: numpy's, differentiated by index
        index = np.pad(np.arange(x.shape[-1]), padding, mode="symmetric")
        xe = xt[..., torch.tensor(index)]
    else:
        mode = {"fill": "constant", "wrap": "circular", "reflect": "reflect", "edge": "replicate"}[boundary]
        xe = F.pad(xt, padding, mode=mode)
    bt = None if b is None else torch.tensor(b)
    return xt, wt, F.conv1d(xe, wt, bt, stride=stride, dilation=dilation, groups=groups)


MULTI = [
    {"groups": 1, "stride": 1, "dilation": 1, "padding": (0, 0), "boundary": "fill", "bias": False},
    {"groups": 2, "stride": 2, "dilation": 1, "padding": (2, 2), "boundary": "fill", "bias": True},
    {"groups": 4, "stride": 1, "dilation": 2, "padding": (1, 3), "boundary": "reflect", "bias": True},
    {"groups": 1, "stride": 3, "dilation": 2, "padding": (3, 3), "boundary": "wrap", "bias": False},
    {"groups": 2, "stride": 2, "dilation": 3, "padding": (4, 1), "boundary": "edge", "bias": True},
]


@pytest.mark.parametrize("case", MULTI, ids=repr)
@pytest.mark.parametrize("data_format", ["channels_first", "channels_last"])
def test_multi_matches_torch_conv1d_forward_and_gradients(backend, case, data_format):
    rng = np.random.default_rng(5)
    groups = case["groups"]
    x, w = rng.standard_normal((2, 4, 13)), rng.standard_normal((8, 4 // groups, 3))
    b = rng.standard_normal(8) if case["bias"] else None
    pads = case["padding"]
    xt, wt, yt = _torch_conv1d(
        x, w, b, stride=case["stride"], dilation=case["dilation"], padding=pads,
        boundary=case["boundary"], groups=groups,
    )  # fmt: skip
    g = rng.standard_normal(tuple(yt.shape))
    yt.backward(require_module("torch").tensor(g))
    last = data_format == "channels_last"

    options = {
        "stride": case["stride"], "dilation": case["dilation"], "padding": pads, "boundary": case["boundary"],
        "groups": groups, "data_format": data_format,
    }  # fmt: skip
    xb, wb = backend.asarray(layout(x, last)), backend.asarray(w)
    bias = None if b is None else backend.asarray(b)
    check(backend, xcorr.corr1d_multi(xb, wb, bias=bias, **options), layout(yt.detach().numpy(), last))
    gx, gw = xcorr.corr1d_multi_vjp(xb, wb, backend.asarray(layout(g, last)), **options)
    check(backend, gx, layout(xt.grad.numpy(), last))
    check(backend, gw, wt.grad.numpy())
    # one sample without its batch axis
    y1 = xcorr.corr1d_multi(backend.asarray(layout(x[:1], last)[0]), wb, bias=bias, **options)
    check(backend, y1, layout(yt.detach().numpy()[:1], last)[0])


def test_a_prepared_multi_call_serves_its_signature_only(backend):
    """A repeated ``corr1d_multi`` signature takes its prepared call, with the new values; a call
    that differs only in its bias or its layout is not served by it, and bad input is still refused."""
    rng = np.random.default_rng(8)
    options = {"stride": 2, "dilation": 1, "padding": (1, 2), "boundary": "fill"}
    variants = [(1, False, "channels_first"), (1, True, "channels_first"), (1, False, "channels_last"), (2, True, "channels_last")]
    for _ in range(2):
        for groups, with_bias, data_format in variants:
            x, w = rng.standard_normal((2, 4, 4)), rng.standard_normal((6, 4 // groups, 3))  # C_in = L = 4
            b = rng.standard_normal(6) if with_bias else None
            *_, yt = _torch_conv1d(x, w, b, groups=groups, **options)
            last = data_format == "channels_last"
            xb, wb, bias = backend.asarray(layout(x, last)), backend.asarray(w), b if b is None else backend.asarray(b)
            y = xcorr.corr1d_multi(xb, wb, bias=bias, groups=groups, data_format=data_format, **options)
            check(backend, y, layout(yt.detach().numpy(), last))
            with pytest.raises(ValueError, match="bias"):
                xcorr.corr1d_multi(xb, wb, bias=backend.asarray(np.ones(5)), groups=groups, data_format=data_format, **options)


@pytest.mark.parametrize("op", ["corr1d", "conv1d"])
@pytest.mark.parametrize(
    "options",
    [
        {"stride": 1, "dilation": 1, "padding": (0, 0)},
        {"stride": 2, "dilation": 2, "padding": (3, 1)},
        {"stride": 3, "dilation": 1, "padding": (2, 2), "boundary": "reflect"},
        {"stride": 1, "dilation": 3, "padding": (4, 0), "boundary": "wrap"},
        {"stride": 2, "dilation": 1, "mode": "same", "boundary": "symm"},  # scipy's centring: pads (2, 1)
    ],
    ids=repr,
)
def test_vjps_match_torch_autograd(backend, op, options):
    rng = np.random.default_rng(11)
    x, k = rng.standard_normal((3, 14)), rng.standard_normal(4)
    boundary = options.get("boundary", "fill")
    kernel = k[::-1].copy() if op == "conv1d" else k
    xt, wt, yt = _torch_conv1d(
        x[:, None, :], kernel[None, None, :], None, stride=options["stride"], dilation=options["dilation"],
        padding=options.get("padding", (2, 1)), boundary=boundary, groups=1,
    )  # fmt: skip
    g = rng.standard_normal(tuple(yt.shape))[:, 0, :]
    yt.backward(require_module("torch").tensor(g[:, None, :]))
    keywords = {**options, "boundary": boundary}
    xb, kb, gb = backend.asarray(x), backend.asarray(k), backend.asarray(g)
    check(backend, getattr(xcorr, op)(xb, kb, **keywords), yt.detach().numpy()[:, 0, :])
    gx, gk = getattr(xcorr, f"{op}_vjp")(xb, kb, gb, **keywords)
    check(backend, gx, xt.grad.numpy()[:, 0, :])
    expected_gk = wt.grad.numpy()[0, 0]
    check(backend, gk, expected_gk[::-1].copy() if op == "conv1d" else expected_gk)


# -- errors in 1-D terms ---------------------------------------------------------------------


def _raises(error, match: str, call, *, pair_of_one: bool = False) -> str:
    """The message of ``call``'s ``error``, which names no one-row 2-D shape (``(2, 1, 10)``,
    ``(1, 3)``; ``pair_of_one``: a ``(1, n)`` pair is a padding the user gave)."""
    with pytest.raises(error, match=match) as info:
        call()
    message = str(info.value)
    assert ", 1, " not in message, f"a one-row shape leaked: {message}"
    assert pair_of_one or not re.search(r"\(1, \d+\)", message), f"a one-row shape leaked: {message}"
    assert "(..., H, W)" not in message and "(h, w)" not in message, message
    return message


def test_multi_same_mode_is_scipys_centring(backend):
    """corr1d_multi's "same" with an even kernel is the channel sum of numpy's "same" correlations."""
    rng = np.random.default_rng(2)
    x, w = rng.standard_normal((2, 3, 9)), rng.standard_normal((4, 3, 4))
    expected = np.array(
        [[sum(np.correlate(x[n, c], w[o, c], mode="same") for c in range(3)) for o in range(4)] for n in range(2)]
    )
    check(backend, xcorr.corr1d_multi(backend.asarray(x), backend.asarray(w), mode="same"), expected)


def test_errors_speak_of_the_one_d_shapes(backend):
    x, k = backend.asarray(np.ones((2, 10))), backend.asarray(np.ones(3))
    scalar = backend.asarray(np.ones(()))
    _raises(
        ValueError,
        r"x must have at least 1 dimension, shape \(\.\.\., L\); got shape \(\)",
        lambda: xcorr.corr1d(scalar, k),
    )
    _raises(ValueError, r"k must have at least 1 dimension", lambda: xcorr.conv1d(x, scalar))
    # a 2-D kernel broadcasts as a batch of kernels; one whose batch does not fit x's is refused
    message = _raises(ValueError, r"do not broadcast", lambda: xcorr.corr1d(x, backend.asarray(np.ones((3, 3)))))
    assert "(2, 10)" in message and "(3, 3)" in message
    _raises(
        ValueError,
        r"stride must be an int >= 1 or a sequence of 1 int.*\(1, 2\)",
        lambda: xcorr.corr1d(x, k, stride=(1, 2)),
        pair_of_one=True,
    )
    _raises(ValueError, r"dilation must be .* got \(\)", lambda: xcorr.corr1d_vjp(x, k, x, dilation=()))
    _raises(TypeError, r"stride must be", lambda: xcorr.corr1d(x, k, stride=1.5))
    message = _raises(
        ValueError, r'k is larger than x in "valid" mode', lambda: xcorr.corr1d(x, backend.asarray(np.ones(11)))
    )
    assert "(11,)" in message and "(2, 10)" in message
    _raises(ValueError, r"dilated kernel \(extent 11\)", lambda: xcorr.conv1d(x, k, dilation=5))
    _raises(
        ValueError,
        r"larger than the padded x.*\(1, 0\)",
        lambda: xcorr.corr1d(x, backend.asarray(np.ones(12)), padding=(1, 0)),
        pair_of_one=True,
    )
    _raises(
        TypeError,
        r"padding must be an int >= 0, a pair \(left, right\)",
        lambda: xcorr.corr1d(x, k, padding=((0, 0), (1, 1))),
        pair_of_one=True,
    )
    _raises(ValueError, r"padding must be", lambda: xcorr.corr1d(x, k, padding=-1))
    _raises(ValueError, r"padding must be", lambda: xcorr.corr1d(x, k, padding="full"))
    _raises(ValueError, r"conflict", lambda: xcorr.corr1d(x, k, padding=1, mode="same"))
    one, two = backend.asarray(np.ones(1)), backend.asarray(np.ones(2))
    _raises(
        ValueError,
        r'boundary="reflect" cannot extend x of shape \(1,\)',
        lambda: xcorr.corr1d(one, two, mode="full", boundary="reflect"),
    )
    _raises(ValueError, r"g must have the shape of the output, \(2, 8\); got shape \(2, 7\)",
                      lambda: xcorr.corr1d_vjp(x, k, backend.asarray(np.ones((2, 7)))))  # fmt: skip


def test_multi_errors_speak_of_the_one_d_shapes(backend):
    x, w = backend.asarray(np.ones((2, 4, 10))), backend.asarray(np.ones((6, 2, 3)))
    _raises(ValueError, r"x must have shape \(N, C_in, L\) or \(C_in, L\); got shape \(10,\)",
            lambda: xcorr.corr1d_multi(backend.asarray(np.ones(10)), w, groups=2))  # fmt: skip
    _raises(ValueError, r"x must have shape \(N, L, C_in\)",
            lambda: xcorr.corr1d_multi(x[0, 0, ...], w, data_format="channels_last"))  # fmt: skip
    _raises(ValueError, r"w must have shape \(C_out, C_in // groups, l\); got shape \(6, 2, 2, 3\)",
            lambda: xcorr.corr1d_multi(x, backend.asarray(np.ones((6, 2, 2, 3)))))  # fmt: skip
    _raises(ValueError, r"x has 4 channels \(shape \(2, 4, 10\)\) but w of shape \(6, 2, 3\) with groups=1 expects 2",
            lambda: xcorr.corr1d_multi(x, w))  # fmt: skip
    _raises(ValueError, r"groups=4 must divide", lambda: xcorr.corr1d_multi(x, w, groups=4))
    _raises(ValueError, r"bias must have shape \(C_out,\)",
            lambda: xcorr.corr1d_multi(x, w, groups=2, bias=backend.asarray(np.ones(5))))  # fmt: skip
    _raises(ValueError, r'w is larger than x in "valid" mode.*\(6, 2, 3\).*\(2, 4, 10\)',
            lambda: xcorr.corr1d_multi(x, w, groups=2, dilation=5))  # fmt: skip
    _raises(ValueError, r"g must have the shape of the output, \(2, 8, 6\) \(data_format=\"channels_last\"\)",
            lambda: xcorr.corr1d_multi_vjp(backend.asarray(np.ones((2, 10, 4))), w, backend.asarray(np.ones((2, 6, 8))), groups=2,
                                           data_format="channels_last"))  # fmt: skip
