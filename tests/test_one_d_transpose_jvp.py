"""The 1-D transposed functions and JVPs (issue 23): conv_transpose1d, corr1d_transpose, their VJPs,
corr1d_jvp, conv1d_jvp and corr1d_multi_jvp on every backend, against torch's
F.conv_transpose1d and its autograd, torch.func.jvp of F.conv1d, and a float64 scatter loop written
here; and their errors, which speak of the 1-D shapes the user passed.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

import xcorr

from matrix import backend_grid, check, layout, require_module

# torch's first forward-mode call loads its JVP decompositions through torch.jit.script, whose
# deprecation warning is torch's own.
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated")


# -- transposed: torch's F.conv_transpose1d and its autograd -------------------------------------

TRANSPOSED = [
    {"stride": 1, "padding": 0, "output_padding": 0, "dilation": 1, "groups": 1, "bias": False},
    {"stride": 2, "padding": 1, "output_padding": 1, "dilation": 1, "groups": 2, "bias": True},
    {"stride": 3, "padding": 2, "output_padding": 0, "dilation": 2, "groups": 4, "bias": True},
    {"stride": 2, "padding": 0, "output_padding": 1, "dilation": 3, "groups": 1, "bias": False},
]


@pytest.mark.parametrize("case", TRANSPOSED, ids=repr)
@pytest.mark.parametrize("data_format", ["channels_first", "channels_last"])
def test_conv_transpose1d_matches_torch_forward_and_gradients(backend, case, data_format):
    torch = require_module("torch")
    rng = np.random.default_rng(3)
    groups = case["groups"]
    x, w = rng.standard_normal((2, 4, 7)), rng.standard_normal((4, 8 // groups, 3))
    b = rng.standard_normal(8) if case["bias"] else None
    options = {n: case[n] for n in ("stride", "padding", "output_padding", "dilation", "groups")}
    xt, wt = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    yt = torch.nn.functional.conv_transpose1d(xt, wt, None if b is None else torch.tensor(b), **options)
    g = rng.standard_normal(tuple(yt.shape))
    yt.backward(torch.tensor(g))
    last = data_format == "channels_last"
    xb, wb = backend.asarray(layout(x, last)), backend.asarray(w)
    bias = None if b is None else backend.asarray(b)
    y = xcorr.conv_transpose1d(xb, wb, bias=bias, data_format=data_format, **options)
    check(backend, y, layout(yt.detach().numpy(), last))
    gx, gw = xcorr.conv_transpose1d_vjp(xb, wb, backend.asarray(layout(g, last)), data_format=data_format, **options)
    check(backend, gx, layout(xt.grad.numpy(), last))
    check(backend, gw, wt.grad.numpy())
    # one sample without its batch axis
    y1 = xcorr.conv_transpose1d(backend.asarray(layout(x, last)[0]), wb, bias=bias, data_format=data_format, **options)
    check(backend, y1, layout(yt.detach().numpy(), last)[0])


def _scatter(x, k, *, stride, dilation, left, right, output_padding):
    """The float64 loop reference of corr1d_transpose: every input sample scatters ``x * k``."""
    L, taps = x.shape[-1], k.shape[-1]
    full = (L - 1) * stride + dilation * (taps - 1) + 1
    batch = np.broadcast_shapes(x.shape[:-1], k.shape[:-1])
    out = np.zeros((*batch, full + output_padding))
    for i in range(L):
        for a in range(taps):
            out[..., i * stride + a * dilation] += x[..., i] * k[..., a]
    return out[..., left : full + output_padding - right] if right else out[..., left:]


@pytest.mark.parametrize(
    "options",
    [
        {"stride": 1, "dilation": 1, "padding": 0, "output_padding": 0},
        {"stride": 3, "dilation": 1, "padding": (1, 2), "output_padding": 2},
        {"stride": 2, "dilation": 2, "padding": 2, "output_padding": 1},
    ],
    ids=repr,
)
def test_corr1d_transpose_is_the_scatter_and_the_adjoint_of_corr1d(backend, options):
    rng = np.random.default_rng(8)
    x, k = rng.standard_normal((3, 6)), rng.standard_normal((3, 4))  # a batch of kernels
    pad = options["padding"]
    left, right = pad if isinstance(pad, tuple) else (pad, pad)
    expected = _scatter(
        x, k, stride=options["stride"], dilation=options["dilation"], left=left, right=right,
        output_padding=options["output_padding"],
    )  # fmt: skip
    xb, kb = backend.asarray(x), backend.asarray(k)
    y = xcorr.corr1d_transpose(xb, kb, **options)
    check(backend, y, expected)
    # the adjoint: <corr1d(pad(z), k), x> == <z, corr1d_transpose(x, k)>; its VJP against the loop's
    z = rng.standard_normal(expected.shape)
    gx, gk = xcorr.corr1d_transpose_vjp(xb, kb, backend.asarray(z), **options)
    eps = 1e-6
    gx_fd = np.zeros_like(x)
    for index in np.ndindex(x.shape):
        dx = np.zeros_like(x)
        dx[index] = eps
        plus = _scatter(x + dx, k, stride=options["stride"], dilation=options["dilation"], left=left, right=right,
                        output_padding=options["output_padding"])  # fmt: skip
        gx_fd[index] = np.sum((plus - expected) * z) / eps
    np.testing.assert_allclose(backend.to_numpy(gx), gx_fd, rtol=1e-5, atol=1e-5)
    # linear in k: the kernel gradient is exact from the scatter of unit kernels
    gk_expected = np.zeros_like(k)
    for index in np.ndindex(k.shape):
        unit = np.zeros_like(k)
        unit[index] = 1.0
        piece = _scatter(x, unit, stride=options["stride"], dilation=options["dilation"], left=left, right=right,
                         output_padding=options["output_padding"])  # fmt: skip
        gk_expected[index] = np.sum(piece * z)
    check(backend, gk, gk_expected)


@pytest.mark.parametrize("padding", ["SAME", "valid"])
@pytest.mark.parametrize("stride", [1, 2, 3])
def test_transposed_lax_names_match_lax(backend, padding, stride):
    """"SAME" gives ``L * s`` samples and "VALID" the uncropped result, as lax.conv_transpose does."""
    jax = require_module("jax")
    rng = np.random.default_rng(stride)
    x, w = rng.standard_normal((1, 2, 5)), rng.standard_normal((2, 3, 4))
    # x64 is on for the suite (conftest). With transpose_kernel=False lax correlates the dilated
    # input with the kernel as given, (spatial, in, out): torch's layout, moved, and flipped.
    expected = jax.lax.conv_transpose(
        np.moveaxis(x, 1, -1), np.moveaxis(w[..., ::-1], -1, 0), (stride,), padding.upper(),
        dimension_numbers=("NWC", "WIO", "NWC"),
    )
    expected = np.moveaxis(np.asarray(expected), -1, 1)
    y = xcorr.conv_transpose1d(backend.asarray(x), backend.asarray(w), stride=stride, padding=padding)
    check(backend, y, expected)


# -- forward mode: torch.func.jvp of F.conv1d ----------------------------------------------------

MULTI_JVP = [
    {"stride": 1, "dilation": 1, "padding": 0, "groups": 1},
    {"stride": 2, "dilation": 2, "padding": 3, "groups": 2},
    {"stride": 3, "dilation": 1, "padding": "same", "groups": 4},
]


@pytest.mark.parametrize(
    ("backend", "case", "data_format", "directions"),
    backend_grid(MULTI_JVP, ("channels_first", "channels_last"), ("both", "dx", "dw")),
    indirect=["backend"],
)
def test_multi_jvp_matches_torch_forward_ad(backend, case, data_format, directions):
    torch = require_module("torch")
    F = torch.nn.functional
    rng = np.random.default_rng(9)
    groups = case["groups"]
    x, w = rng.standard_normal((2, 4, 12)), rng.standard_normal((8, 4 // groups, 3))
    dx, dw = rng.standard_normal(x.shape), rng.standard_normal(w.shape)
    dx = dx if directions in ("both", "dx") else None
    dw = dw if directions in ("both", "dw") else None
    padding = case["padding"]
    torch_options = {"stride": case["stride"], "dilation": case["dilation"], "groups": groups, "padding": padding}
    if padding == "same":
        if case["stride"] != 1:  # torch's "same" needs stride 1: pad by hand, as lax's "SAME" would
            span = case["dilation"] * 2 + 1
            total = max((-(-12 // case["stride"]) - 1) * case["stride"] + span - 12, 0)
            padding = (total // 2, total - total // 2)
            torch_options["padding"] = 0
        else:
            padding = "SAME"

    def f(xt, wt):
        xe = F.pad(xt, padding) if isinstance(padding, tuple) else xt
        return F.conv1d(xe, wt, **torch_options)

    zeros = np.zeros
    tangents = (torch.tensor(zeros(x.shape) if dx is None else dx), torch.tensor(zeros(w.shape) if dw is None else dw))
    _, expected = torch.func.jvp(f, (torch.tensor(x), torch.tensor(w)), tangents)
    last = data_format == "channels_last"
    options = {"stride": case["stride"], "dilation": case["dilation"], "groups": groups, "data_format": data_format}
    options["padding"] = padding
    tangent = xcorr.corr1d_multi_jvp(
        backend.asarray(layout(x, last)), backend.asarray(w),
        None if dx is None else backend.asarray(layout(dx, last)), None if dw is None else backend.asarray(dw),
        **options,
    )  # fmt: skip
    check(backend, tangent, layout(expected.numpy(), last))


@pytest.mark.parametrize("op", ["corr1d", "conv1d"])
@pytest.mark.parametrize(
    "options",
    [
        {"mode": "valid"},
        {"mode": "same"},  # an even kernel: scipy's centring
        {"mode": "full", "boundary": "fill", "fillvalue": 2.5},  # the fill is a constant: no tangent
        {"padding": (2, 1), "boundary": "wrap", "stride": 2, "dilation": 2},
    ],
    ids=repr,
)
def test_single_jvp_matches_torch_forward_ad(backend, op, options):
    torch = require_module("torch")
    F = torch.nn.functional
    rng = np.random.default_rng(4)
    x, k = rng.standard_normal((3, 11)), rng.standard_normal(4)
    dx, dk = rng.standard_normal(x.shape), rng.standard_normal(k.shape)
    span = options.get("dilation", 1) * 3 + 1
    # scipy.signal.correlate's and convolve's "same" both start (span - 1) // 2 into the full result
    pads = {"valid": (0, 0), "same": (span // 2, (span - 1) // 2), "full": (span - 1, span - 1)}
    pads = options.get("padding", pads.get(options.get("mode", "valid")))
    mode = {"fill": "constant", "wrap": "circular"}[options.get("boundary", "fill")]
    fill = options.get("fillvalue", 0.0)

    def f(xt, kt):
        xe = F.pad(xt[:, None, :], pads, mode=mode, **({"value": fill} if mode == "constant" else {}))
        kernel = kt.flip(-1) if op == "conv1d" else kt
        return F.conv1d(xe, kernel[None, None, :], stride=options.get("stride", 1), dilation=options.get("dilation", 1))[:, 0]

    _, expected = torch.func.jvp(f, (torch.tensor(x), torch.tensor(k)), (torch.tensor(dx), torch.tensor(dk)))
    xb, kb = backend.asarray(x), backend.asarray(k)
    tangent = getattr(xcorr, f"{op}_jvp")(xb, kb, backend.asarray(dx), backend.asarray(dk), **options)
    check(backend, tangent, expected.numpy())


# -- errors in 1-D terms ---------------------------------------------------------------------------


def _raises(error, match: str, call) -> str:
    with pytest.raises(error, match=match) as info:
        call()
    message = str(info.value)
    assert ", 1, " not in message and "(..., H, W)" not in message, f"a one-row shape leaked: {message}"
    return message


def test_errors_speak_of_the_one_d_shapes(backend):
    x, w = backend.asarray(np.ones((2, 4, 6))), backend.asarray(np.ones((4, 2, 3)))
    _raises(ValueError, r"w must have shape \(C_in, C_out // groups, l\)", lambda: xcorr.conv_transpose1d(x, x[0, ...]))
    _raises(ValueError, r"x has 3 channels .* expects w.shape\[0\]", lambda: xcorr.conv_transpose1d(x[:, :3, ...], w))
    _raises(ValueError, r"groups=3 must divide the input channels \(4", lambda: xcorr.conv_transpose1d(x, w, groups=3))
    _raises(
        ValueError,
        r"output_padding \(2\) must be smaller than the stride \(2\) or the dilation \(1\)",
        lambda: xcorr.conv_transpose1d(x, w, stride=2, output_padding=2),
    )
    _raises(ValueError, r"padding \(4, 4\) crops the whole output", lambda: xcorr.conv_transpose1d(x, w, padding=4))
    _raises(ValueError, r"padding of a 1-D transposed convolution", lambda: xcorr.conv_transpose1d(x, w, padding="FULL"))
    _raises(ValueError, r"implies the output_padding", lambda: xcorr.conv_transpose1d(x, w, padding="SAME", output_padding=1))
    _raises(
        ValueError,
        r"bias must have shape \(C_out,\) = \(2,\)",
        lambda: xcorr.conv_transpose1d(x, w, bias=backend.asarray(np.ones(3))),
    )
    y = xcorr.conv_transpose1d(x, w)
    _raises(
        ValueError,
        re.escape("g must have the shape of the output, (2, 2, 8); got shape (2, 2, 7)"),
        lambda: xcorr.conv_transpose1d_vjp(x, w, y[..., :7]),
    )
    s, k = backend.asarray(np.ones((2, 5))), backend.asarray(np.ones(3))
    _raises(ValueError, r"k must have at least 1 dimension", lambda: xcorr.corr1d_transpose(s, backend.asarray(np.ones(()))))
    _raises(ValueError, r"stride must be an int >= 1 or a sequence of 1 int", lambda: xcorr.corr1d_transpose(s, k, stride=(2, 2)))
    _raises(ValueError, r"do not broadcast", lambda: xcorr.corr1d_transpose(s, backend.asarray(np.ones((3, 3)))))
    _raises(ValueError, r"corr1d_jvp needs a direction", lambda: xcorr.corr1d_jvp(s, k, None, None))
    _raises(ValueError, re.escape("dx must have the shape of x, (2, 5); got shape (5,)"), lambda: xcorr.corr1d_jvp(s, k, s[0, ...], None))
    _raises(
        ValueError,
        re.escape("dw must have the shape of w, (4, 4, 3); got shape (4, 2, 3)"),
        lambda: xcorr.corr1d_multi_jvp(x, backend.asarray(np.ones((4, 4, 3))), None, w),
    )
