"""The library's own 1-D and 3-D convolutions (``Adapter.prepare_multi_native``): on torch and jax,
``corr1d_multi`` and ``corr3d_multi`` of float32/float64 operands are one ``F.conv1d``/``F.conv3d``
or ``lax.conv_general_dilated`` call (the graph of ``nn.Conv1d``/``nn.Conv3d``), with the same
numbers as the native call on the same padded input; other dtypes and the other libraries take
the sum of 2-D calls. The values in every option are checked against the natives in
tests/test_one_d.py and tests/test_three_d.py; here: which computation runs, and asymmetric
padding and non-zero extensions through it.
"""

from __future__ import annotations

import numpy as np
import pytest

import xcorr

from matrix import require_module

CASES = [
    # (x shape, w shape, options): a symmetric zero padding, an asymmetric one, a non-zero extension
    ((2, 4, 11), (6, 2, 3), {"padding": 1, "groups": 2}),
    ((2, 4, 11), (6, 4, 4), {"mode": "same", "stride": 2}),
    ((2, 4, 11), (6, 4, 3), {"padding": (2, 1), "boundary": "reflect", "dilation": 2}),
    ((1, 2, 5, 6, 7), (4, 2, 3, 2, 3), {"padding": ((1, 0), 1, (0, 2)), "stride": (1, 2, 1)}),
    ((1, 2, 5, 6, 7), (4, 1, 2, 3, 2), {"mode": "full", "groups": 2, "boundary": "fill", "fillvalue": 1.5}),
]


def _padded(x, options, w_shape):
    """The input the native call sees, padded as numpy pads it (an independent extension)."""
    taps = w_shape[2:]
    dilation = options.get("dilation", 1)
    spans = [dilation * (t - 1) + 1 for t in taps]
    if "padding" in options:
        pad = options["padding"]  # 1-D: an int or (left, right); 3-D: an int or one entry per axis
        items = (pad,) if len(taps) == 1 else (pad if isinstance(pad, tuple) else (pad,) * 3)
        pairs = [p if isinstance(p, tuple) else (p, p) for p in items]
    elif options.get("mode") == "full":
        pairs = [(e - 1, e - 1) for e in spans]
    else:  # "same": scipy's centring
        pairs = [(e // 2, (e - 1) // 2) for e in spans]
    boundary = options.get("boundary", "fill")
    mode = {"fill": "constant", "reflect": "reflect"}[boundary]
    extra = {"constant_values": options.get("fillvalue", 0.0)} if mode == "constant" else {}
    return np.pad(x, [(0, 0), (0, 0), *pairs], mode=mode, **extra)


def _function(x_shape):
    return xcorr.corr1d_multi if len(x_shape) == 3 else xcorr.corr3d_multi


@pytest.mark.parametrize(("x_shape", "w_shape", "options"), CASES, ids=repr)
def test_torch_runs_one_native_convolution(x_shape, w_shape, options):
    torch = require_module("torch")
    F = torch.nn.functional
    rng = np.random.default_rng(1)
    x, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
    xt, wt = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    y = _function(x_shape)(xt, wt, **options)
    assert type(y.grad_fn).__name__ == "ConvolutionBackward0", y.grad_fn
    conv = F.conv1d if len(x_shape) == 3 else F.conv3d
    stride, dilation = options.get("stride", 1), options.get("dilation", 1)
    expected = conv(torch.tensor(_padded(x, options, w_shape)), torch.tensor(w), stride=stride, dilation=dilation,
                    groups=options.get("groups", 1))  # fmt: skip
    np.testing.assert_allclose(y.detach().numpy(), expected.numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(("x_shape", "w_shape", "options"), CASES, ids=repr)
def test_jax_runs_one_native_convolution(x_shape, w_shape, options):
    jax = require_module("jax")
    rng = np.random.default_rng(2)
    x, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
    f = _function(x_shape)
    limit = xcorr.toolkit.adapter_for(jax.numpy).tuning.grouped_direct_channels
    if options.get("groups", 1) > 1 and w_shape[1] <= limit and jax.default_backend() == "cpu":
        # "auto" takes the direct method there (test_fast_paths' grouped test); "native" asks for lax
        options = {**options, "method": "native"}
    jaxpr = str(jax.make_jaxpr(lambda x, w: f(x, w, **options))(x, w))
    assert jaxpr.count("conv_general_dilated") == 1, jaxpr
    n = len(x_shape) - 2
    stride, dilation = options.get("stride", 1), options.get("dilation", 1)
    expected = jax.lax.conv_general_dilated(
        _padded(x, options, w_shape), w, (stride,) * n if isinstance(stride, int) else stride, "VALID",
        rhs_dilation=(dilation,) * n, feature_group_count=options.get("groups", 1),
    )  # fmt: skip
    np.testing.assert_allclose(np.asarray(f(jax.numpy.asarray(x), jax.numpy.asarray(w), **options)), expected,
                               rtol=1e-12, atol=1e-12)  # fmt: skip


@pytest.mark.parametrize("library", ["torch", "jax"])
@pytest.mark.parametrize("narrow", ["x", "w", "bias"])
@pytest.mark.parametrize(("x_shape", "w_shape"), [((2, 4, 9), (3, 4, 3)), ((1, 2, 4, 5, 3), (3, 2, 2, 3, 2))], ids=repr)
def test_operands_of_two_float_dtypes_are_cast_before_the_native_call(library, narrow, x_shape, w_shape):
    """A float32 operand beside float64 ones: the native call computes in float64 (the promoted
    dtype), as the native does on operands cast first; torch's convolutions refuse mixed dtypes and
    lax's would round in float32."""
    rng = np.random.default_rng(3)
    given = {"x": rng.standard_normal(x_shape), "w": rng.standard_normal(w_shape), "bias": rng.standard_normal(w_shape[0])}
    operands = {name: value.astype(np.float32) if name == narrow else value for name, value in given.items()}
    exact = {name: value.astype(np.float32).astype(np.float64) if name == narrow else value for name, value in given.items()}
    n = len(x_shape) - 2
    if library == "torch":
        torch = require_module("torch")
        conv = torch.nn.functional.conv1d if n == 1 else torch.nn.functional.conv3d
        y = _function(x_shape)(*(torch.from_numpy(operands[a]) for a in ("x", "w")), bias=torch.from_numpy(operands["bias"]))
        assert y.dtype == torch.float64
        expected = conv(*(torch.from_numpy(exact[a]) for a in ("x", "w", "bias"))).numpy()
    else:
        jax = require_module("jax")
        y = _function(x_shape)(*(jax.numpy.asarray(operands[a]) for a in ("x", "w")), bias=jax.numpy.asarray(operands["bias"]))
        assert y.dtype == jax.numpy.float64
        bias = exact["bias"].reshape(-1, *(1,) * n)
        expected = np.asarray(jax.lax.conv_general_dilated(exact["x"], exact["w"], (1,) * n, "VALID")) + bias
    np.testing.assert_allclose(np.asarray(y), expected, rtol=1e-12, atol=1e-12)


def test_other_dtypes_and_libraries_take_the_sum_of_two_d_calls():
    torch = require_module("torch")
    x, w = torch.ones((1, 2, 4, 4, 4), dtype=torch.float16), torch.ones((1, 2, 2, 2, 2), dtype=torch.float16)
    y = xcorr.corr3d_multi(x.requires_grad_(True), w)
    assert type(y.grad_fn).__name__ != "ConvolutionBackward0"
    assert float(y.detach()[0, 0, 0, 0, 0]) == 16.0
    assert not xcorr.adapter_for(np).native_axes  # numpy: the 2-D paths


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch's own imports while compiling
def test_torch_compile_and_export_take_the_one_d_and_three_d_functions_whole():
    """``torch.compile(fullgraph=True)`` compiles them (torch's compiler takes them into its graph
    whole, as the 2-D ones), and ``torch.export`` gives the aten graph of ``nn.Conv1d``/``nn.Conv3d``."""
    torch = require_module("torch")
    F = torch.nn.functional
    xcorr.corr2d(torch.ones((3, 3)), torch.ones((2, 2)))  # the adapter, loaded eagerly (as a layer loads it)
    rng = np.random.default_rng(3)
    x1, w1 = (torch.tensor(rng.standard_normal(s), requires_grad=True) for s in ((2, 4, 16), (6, 4, 3)))
    x3, w3 = (torch.tensor(rng.standard_normal(s), requires_grad=True) for s in ((1, 2, 6, 6, 6), (3, 2, 3, 3, 3)))
    cases = [
        (lambda x, w: xcorr.corr1d_multi(x, w, padding=1), lambda x, w: F.conv1d(x, w, padding=1), x1, w1),
        (lambda x, w: xcorr.corr3d_multi(x, w, stride=2), lambda x, w: F.conv3d(x, w, stride=2), x3, w3),
        (lambda x, w: xcorr.conv_transpose1d(x, w, stride=2), lambda x, w: F.conv_transpose1d(x, w, stride=2),
         x1, w1.detach()[:4].clone().requires_grad_(True)),
        (lambda x, w: xcorr.conv_transpose3d(x, w, stride=2), lambda x, w: F.conv_transpose3d(x, w, stride=2),
         x3, torch.tensor(rng.standard_normal((2, 3, 2, 2, 2)), requires_grad=True)),
    ]
    for ours, native, x, w in cases:
        y = torch.compile(ours, fullgraph=True)(x, w)
        (gx, gw) = torch.autograd.grad(y.sum(), (x, w))
        expected = native(x, w)
        (ex, ew) = torch.autograd.grad(expected.sum(), (x, w))
        for a, b in ((y, expected), (gx, ex), (gw, ew)):
            np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=1e-12, atol=1e-12)

    class One(torch.nn.Module):
        def forward(self, x, w):
            return xcorr.corr1d_multi(x, w, padding=1)

    class Three(torch.nn.Module):
        def forward(self, x, w):
            return xcorr.corr3d_multi(x, w, padding=1)

    for module, args, op in ((One(), (x1, w1), "aten.conv1d.default"), (Three(), (x3, w3), "aten.conv3d.default")):
        graph = torch.export.export(module, tuple(a.detach() for a in args)).graph
        assert [str(n.target) for n in graph.nodes if n.op == "call_function"] == [op]
