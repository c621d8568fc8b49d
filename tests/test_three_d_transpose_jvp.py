"""The 3-D transposed functions and JVPs (issue 23, 3-D slice 2): conv_transpose3d, corr3d_transpose,
their VJPs, corr3d_jvp, conv3d_jvp and corr3d_multi_jvp on every backend, against torch's
F.conv_transpose3d and its autograd, lax.conv_transpose's SAME/VALID, torch.func.jvp of F.conv3d
(with F.pad for the boundaries) and a float64 scatter loop written here; and their errors, which
speak of the 3-D shapes the user passed.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

import xcorr

from matrix import TOL, backend_grid, check, layout, require_module, triple

# torch's first forward-mode call loads its JVP decompositions through torch.jit.script, whose
# deprecation warning is torch's own.
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated")


# -- transposed: torch's F.conv_transpose3d and its autograd -------------------------------------

TRANSPOSED = [
    {"stride": 1, "padding": 0, "output_padding": 0, "dilation": 1, "groups": 1, "bias": False},
    {"stride": (2, 1, 3), "padding": (1, 2, 0), "output_padding": (1, 0, 2), "dilation": (1, 2, 1), "groups": 2, "bias": True},
    {"stride": 2, "padding": 1, "output_padding": 1, "dilation": (2, 1, 1), "groups": 4, "bias": True},
    {"stride": (3, 2, 1), "padding": (2, 0, 1), "output_padding": (0, 1, 0), "dilation": 1, "groups": 1, "bias": False},
]


# channels_last listed first: dask's diagonal (backend_grid) runs groups=4, its slowest case, in the
# layout that costs it least there
@pytest.mark.parametrize(
    ("backend", "case", "data_format"),
    backend_grid(TRANSPOSED, ("channels_last", "channels_first")),
    indirect=["backend"],
)
def test_conv_transpose3d_matches_torch_forward_and_gradients(backend, case, data_format):
    torch = require_module("torch")
    rng = np.random.default_rng(3)
    groups = case["groups"]
    x, w = rng.standard_normal((2, 4, 3, 4, 3)), rng.standard_normal((4, 8 // groups, 3, 2, 3))
    b = rng.standard_normal(8) if case["bias"] else None
    options = {n: case[n] for n in ("stride", "padding", "output_padding", "dilation", "groups")}
    xt, wt = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    yt = torch.nn.functional.conv_transpose3d(xt, wt, None if b is None else torch.tensor(b), **options)
    g = rng.standard_normal(tuple(yt.shape))
    yt.backward(torch.tensor(g))
    last = data_format == "channels_last"
    xb, wb = backend.asarray(layout(x, last)), backend.asarray(w)
    bias = None if b is None else backend.asarray(b)
    y = xcorr.conv_transpose3d(xb, wb, bias=bias, data_format=data_format, **options)
    check(backend, y, layout(yt.detach().numpy(), last))
    gx, gw = xcorr.conv_transpose3d_vjp(xb, wb, backend.asarray(layout(g, last)), data_format=data_format, **options)
    check(backend, gx, layout(xt.grad.numpy(), last))
    check(backend, gw, wt.grad.numpy())
    # one sample without its batch axis
    y1 = xcorr.conv_transpose3d(backend.asarray(layout(x, last)[0]), wb, bias=bias, data_format=data_format, **options)
    check(backend, y1, layout(yt.detach().numpy(), last)[0])


def _scatter(x, k, *, stride, dilation, pads, output_padding):
    """The float64 loop reference of corr3d_transpose: every input voxel scatters ``x * k``."""
    s, d, op = triple(stride), triple(dilation), triple(output_padding)
    sizes, taps = x.shape[-3:], k.shape[-3:]
    full = [(n - 1) * si + di * (t - 1) + 1 for n, t, si, di in zip(sizes, taps, s, d)]
    batch = np.broadcast_shapes(x.shape[:-3], k.shape[:-3])
    out = np.zeros((*batch, *(f + o for f, o in zip(full, op))))
    for i, j, m in np.ndindex(*sizes):
        for a, b, c in np.ndindex(*taps):
            out[..., i * s[0] + a * d[0], j * s[1] + b * d[1], m * s[2] + c * d[2]] += x[..., i, j, m] * k[..., a, b, c]
    window = tuple(slice(p[0], f + o - p[1]) for p, f, o in zip(pads, full, op))
    return out[(Ellipsis, *window)]


@pytest.mark.parametrize(
    "options",
    [
        {"stride": 1, "dilation": 1, "padding": 0, "output_padding": 0},
        {"stride": (3, 1, 2), "dilation": 1, "padding": ((1, 2), 0, (0, 1)), "output_padding": (2, 0, 1)},
        {"stride": 2, "dilation": (2, 1, 2), "padding": (2, 1, 0), "output_padding": 1},
    ],
    ids=repr,
)
def test_corr3d_transpose_is_the_scatter_and_its_vjp_the_adjoint(backend, options):
    rng = np.random.default_rng(8)
    x, k = rng.standard_normal((2, 3, 3, 4)), rng.standard_normal((2, 1, 2, 3, 2))  # a batch of kernels
    pad = options["padding"]
    pads = tuple(p if isinstance(p, tuple) else (p, p) for p in triple(pad))
    loop = {"stride": options["stride"], "dilation": options["dilation"], "pads": pads, "output_padding": options["output_padding"]}
    expected = _scatter(x, k, **loop)
    xb, kb = backend.asarray(x), backend.asarray(k)
    check(backend, xcorr.corr3d_transpose(xb, kb, **options), expected)
    # linear in each operand: the exact gradients from the scatter of unit inputs and kernels
    z = rng.standard_normal(expected.shape)
    gx, gk = xcorr.corr3d_transpose_vjp(xb, kb, backend.asarray(z), **options)
    for a, grad, unit_of in ((x, gx, lambda u: _scatter(u, k, **loop)), (k, gk, lambda u: _scatter(x, u, **loop))):
        want = np.zeros_like(a)
        for index in np.ndindex(a.shape):
            unit = np.zeros_like(a)
            unit[index] = 1.0
            want[index] = np.sum(unit_of(unit) * z)
        check(backend, grad, want)


@pytest.mark.parametrize(
    ("backend", "padding", "stride"), backend_grid(("SAME", "valid"), ((2, 3, 1), 1)), indirect=["backend"]
)
def test_transposed_lax_names_match_lax(backend, padding, stride):
    """"SAME" gives ``n * s`` per axis and "VALID" the uncropped result, as lax.conv_transpose does."""
    jax = require_module("jax")
    rng = np.random.default_rng(5)
    x, w = rng.standard_normal((1, 2, 3, 4, 3)), rng.standard_normal((2, 3, 2, 3, 4))
    # x64 is on for the suite (conftest). With transpose_kernel=False lax correlates the dilated
    # input with the kernel as given, (spatial, in, out): torch's layout, moved, and flipped.
    expected = jax.lax.conv_transpose(
        np.moveaxis(x, 1, -1), np.moveaxis(w[..., ::-1, ::-1, ::-1], (0, 1), (-2, -1)), triple(stride),
        padding.upper(), dimension_numbers=("NDHWC", "DHWIO", "NDHWC"),
    )  # fmt: skip
    expected = np.moveaxis(np.asarray(expected), -1, 1)
    y = xcorr.conv_transpose3d(backend.asarray(x), backend.asarray(w), stride=stride, padding=padding)
    check(backend, y, expected)


# -- forward mode: torch.func.jvp of F.conv3d ----------------------------------------------------

MULTI_JVP = [
    {"stride": 1, "dilation": 1, "padding": 0, "groups": 1},
    {"stride": (2, 1, 2), "dilation": (1, 2, 1), "padding": (1, 2, 0), "groups": 2},
    {"stride": 1, "dilation": 2, "padding": "same", "groups": 4},
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
    x, w = rng.standard_normal((2, 4, 6, 7, 6)), rng.standard_normal((8, 4 // groups, 3, 2, 3))
    dx, dw = rng.standard_normal(x.shape), rng.standard_normal(w.shape)
    dx = dx if directions in ("both", "dx") else None
    dw = dw if directions in ("both", "dw") else None
    torch_options = {"stride": case["stride"], "dilation": case["dilation"], "groups": groups, "padding": case["padding"]}

    def f(xt, wt):
        return F.conv3d(xt, wt, **torch_options)

    zeros = np.zeros
    tangents = (torch.tensor(zeros(x.shape) if dx is None else dx), torch.tensor(zeros(w.shape) if dw is None else dw))
    _, expected = torch.func.jvp(f, (torch.tensor(x), torch.tensor(w)), tangents)
    last = data_format == "channels_last"
    options = {"stride": case["stride"], "dilation": case["dilation"], "groups": groups, "data_format": data_format}
    # torch's "same" (stride 1) puts the odd element after, as lax's "SAME"
    options["padding"] = "SAME" if case["padding"] == "same" else case["padding"]
    tangent = xcorr.corr3d_multi_jvp(
        backend.asarray(layout(x, last)), backend.asarray(w),
        None if dx is None else backend.asarray(layout(dx, last)), None if dw is None else backend.asarray(dw),
        **options,
    )  # fmt: skip
    check(backend, tangent, layout(expected.numpy(), last))


SINGLE_JVP = [
    {"mode": "valid"},
    {"mode": "same"},  # even kernel extents: scipy's centring
    {"mode": "full", "boundary": "fill", "fillvalue": 2.5},  # the fill is a constant: no tangent
    {"padding": ((2, 1), 1, (0, 2)), "boundary": "wrap", "stride": (2, 1, 2), "dilation": (1, 2, 1)},
    {"mode": "same", "boundary": "reflect"},
]


@pytest.mark.parametrize(
    ("backend", "op", "options", "directions"),
    backend_grid(("corr3d", "conv3d"), SINGLE_JVP, ("both", "dx", "dk")),
    indirect=["backend"],
)
def test_single_jvp_matches_torch_forward_ad(backend, op, options, directions):
    torch = require_module("torch")
    F = torch.nn.functional
    rng = np.random.default_rng(4)
    x, k = rng.standard_normal((2, 5, 6, 5)), rng.standard_normal((2, 3, 2))
    dx, dk = rng.standard_normal(x.shape), rng.standard_normal(k.shape)
    dil = triple(options.get("dilation", 1))
    spans = [d * (t - 1) + 1 for d, t in zip(dil, k.shape)]
    # scipy.signal.correlate's and convolve's N-d "same" starts (span - 1) // 2 into the full result
    mode = options.get("mode", "valid")
    pads = [{"valid": (0, 0), "same": (e // 2, (e - 1) // 2), "full": (e - 1, e - 1)}[mode] for e in spans]
    if "padding" in options:
        pads = [p if isinstance(p, tuple) else (p, p) for p in options["padding"]]
    flat = tuple(v for p in reversed(pads) for v in p)  # F.pad's order: last axis first
    pad_mode = {"fill": "constant", "wrap": "circular", "reflect": "reflect"}[options.get("boundary", "fill")]
    fill = options.get("fillvalue", 0.0)

    def f(xt, kt):
        extra = {"value": fill} if pad_mode == "constant" else {}
        xe = F.pad(xt[:, None], flat, mode=pad_mode, **extra)
        kernel = kt.flip(-3, -2, -1) if op == "conv3d" else kt
        return F.conv3d(xe, kernel[None, None], stride=options.get("stride", 1), dilation=options.get("dilation", 1))[:, 0]

    tangents = (torch.tensor(dx if directions != "dk" else 0 * dx), torch.tensor(dk if directions != "dx" else 0 * dk))
    _, expected = torch.func.jvp(f, (torch.tensor(x), torch.tensor(k)), tangents)
    xb, kb = backend.asarray(x), backend.asarray(k)
    dxb = backend.asarray(dx) if directions != "dk" else None
    dkb = backend.asarray(dk) if directions != "dx" else None
    tangent = getattr(xcorr, f"{op}_jvp")(xb, kb, dxb, dkb, **options)
    check(backend, tangent, expected.numpy())


# -- errors in 3-D terms ---------------------------------------------------------------------------


def _raises(error, match: str, call) -> str:
    with pytest.raises(error, match=match) as info:
        call()
    message = str(info.value)
    assert "(..., H, W)" not in message and "(h, w)" not in message, f"a 2-D shape leaked: {message}"
    return message


def test_errors_speak_of_the_three_d_shapes(backend):
    x, w = backend.asarray(np.ones((2, 4, 3, 4, 5))), backend.asarray(np.ones((4, 2, 2, 2, 2)))
    _raises(ValueError, r"w must have shape \(C_in, C_out // groups, kd, kh, kw\)", lambda: xcorr.conv_transpose3d(x, x[0, ...]))
    _raises(ValueError, r"x has 3 channels .* expects w.shape\[0\]", lambda: xcorr.conv_transpose3d(x[:, :3, ...], w))
    _raises(ValueError, r"groups=3 must divide the input channels \(4", lambda: xcorr.conv_transpose3d(x, w, groups=3))
    _raises(
        ValueError,
        r"output_padding \(2, 0, 0\) must be smaller than the stride \(2, 1, 1\) .* along the depth",
        lambda: xcorr.conv_transpose3d(x, w, stride=(2, 1, 1), output_padding=(2, 0, 0)),
    )
    _raises(ValueError, r"output_padding must be an int >= 0 or a sequence of 3", lambda: xcorr.conv_transpose3d(x, w, output_padding=(1, 1)))
    _raises(ValueError, r"crops the whole output", lambda: xcorr.conv_transpose3d(x, w, padding=(2, 0, 0)))
    _raises(ValueError, r"padding of a 3-D transposed convolution", lambda: xcorr.conv_transpose3d(x, w, padding="FULL"))
    _raises(ValueError, r"it needs one per axis, 3", lambda: xcorr.conv_transpose3d(x, w, padding=(1, 1)))
    _raises(ValueError, r"implies the output_padding", lambda: xcorr.conv_transpose3d(x, w, padding="SAME", output_padding=1))
    _raises(ValueError, r"stride must be an int >= 1 or a sequence of 3", lambda: xcorr.conv_transpose3d(x, w, stride=(2, 2)))
    _raises(ValueError, r"x must have shape \(N, C_in, D, H, W\)", lambda: xcorr.conv_transpose3d(x[0, 0, ...], w))
    _raises(ValueError, r"bias must have shape \(C_out,\) = \(2,\)", lambda: xcorr.conv_transpose3d(x, w, bias=backend.asarray(np.ones(3))))
    y = xcorr.conv_transpose3d(x, w)
    _raises(
        ValueError,
        re.escape("g must have the shape of the output, (2, 2, 4, 5, 6); got shape (2, 2, 4, 5, 5)"),
        lambda: xcorr.conv_transpose3d_vjp(x, w, y[..., :5]),
    )
    v, k = backend.asarray(np.ones((2, 3, 4, 5))), backend.asarray(np.ones((2, 2, 2)))
    _raises(ValueError, r"k must have at least 3 dimensions", lambda: xcorr.corr3d_transpose(v, k[0, ...]))
    _raises(ValueError, r"do not broadcast", lambda: xcorr.corr3d_transpose(v, backend.asarray(np.ones((3, 2, 2, 2)))))
    _raises(ValueError, r"g must have the shape of the output", lambda: xcorr.corr3d_transpose_vjp(v, k, v))
    _raises(ValueError, r"corr3d_jvp needs a direction", lambda: xcorr.corr3d_jvp(v, k, None, None))
    _raises(ValueError, r"conv3d_jvp needs a direction", lambda: xcorr.conv3d_jvp(v, k, None, None))
    _raises(ValueError, re.escape("dx must have the shape of x, (2, 3, 4, 5); got shape (3, 4, 5)"), lambda: xcorr.corr3d_jvp(v, k, v[0, ...], None))
    _raises(ValueError, re.escape("dk must have the shape of k, (2, 2, 2); got shape (2, 2, 3)"), lambda: xcorr.conv3d_jvp(v, k, None, v[0, :2, :2, :3]))
    wm = backend.asarray(np.ones((3, 4, 2, 2, 2)))
    _raises(
        ValueError,
        re.escape("dw must have the shape of w, (3, 4, 2, 2, 2); got shape (4, 2, 2, 2, 2)"),
        lambda: xcorr.corr3d_multi_jvp(x, wm, None, w),
    )
    _raises(ValueError, r"corr3d_multi_jvp needs a direction", lambda: xcorr.corr3d_multi_jvp(x, wm, None, None))
    # the forward call's own checks come first, in 3-D terms
    _raises(ValueError, r"k is larger than x in \"valid\" mode along the depth", lambda: xcorr.corr3d_jvp(v[:, :1, ...], k, v[:, :1, ...], None))


def test_jax_differentiates_through_the_three_d_functions_as_their_jvps_and_vjps_say():
    """jax.jvp through corr3d (a non-zero fill: no tangent) and jax.vjp through conv_transpose3d give
    what corr3d_jvp and conv_transpose3d_vjp give."""
    jax = require_module("jax")
    jnp = jax.numpy
    rng = np.random.default_rng(11)
    x, k = jnp.asarray(rng.standard_normal((2, 4, 5, 4))), jnp.asarray(rng.standard_normal((2, 3, 2)))
    dx, dk = jnp.asarray(rng.standard_normal(x.shape)), jnp.asarray(rng.standard_normal(k.shape))
    options = {"mode": "full", "fillvalue": 1.5, "stride": (2, 1, 1)}
    _, tangent = jax.jvp(lambda a, b: xcorr.corr3d(a, b, **options), (x, k), (dx, dk))
    np.testing.assert_allclose(np.asarray(xcorr.corr3d_jvp(x, k, dx, dk, **options)), np.asarray(tangent), **TOL)
    xm, w = jnp.asarray(rng.standard_normal((1, 2, 3, 3, 2))), jnp.asarray(rng.standard_normal((2, 3, 2, 2, 3)))
    options = {"stride": (2, 1, 2), "padding": (1, 0, 1), "output_padding": (1, 0, 0)}
    y, pullback = jax.vjp(lambda a, b: xcorr.conv_transpose3d(a, b, **options), xm, w)
    g = jnp.asarray(rng.standard_normal(y.shape))
    for mine, theirs in zip(xcorr.conv_transpose3d_vjp(xm, w, g, **options), pullback(g)):
        np.testing.assert_allclose(np.asarray(mine), np.asarray(theirs), **TOL)
