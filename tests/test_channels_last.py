"""data_format="channels_last" ((N, H, W, C)) equals the channels-first computation, on every backend,
and torch and jax compute it natively (no contiguous copy; NHWC dimension numbers)."""

from __future__ import annotations

import numpy as np
import pytest

import xcorr

from matrix import require_module
from reference import random, reference_multi, reference_multi_vjp

OPTIONS = [
    pytest.param({}, id="valid"),
    pytest.param({"mode": "same", "stride": 2, "groups": 2}, id="same-stride-groups"),
    pytest.param(
        {"mode": "full", "dilation": (2, 1), "boundary": "wrap"}, id="full-dilated-wrap"
    ),
    pytest.param(
        {"mode": "same", "boundary": "fill", "fillvalue": 1.5}, id="same-fill1.5"
    ),
]


def kind(backend) -> str:
    """The library of a matrix entry (its layers' ``backend=``)."""
    return backend.library


def on_device(backend, layer):
    if backend.name == "torch_cuda":
        return layer.to("cuda")
    if backend.name == "jax_gpu":
        import jax

        return jax.device_put(layer, jax.devices("gpu")[0])
    return layer


def last(a):
    return np.moveaxis(a, -3, -1)


def first(a):
    return np.moveaxis(a, -1, -3)


def operands(seed=0, n=2, c_in=4, c_out=6, groups=1, hw=(5, 6), k=(3, 2)):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, c_in, *hw)), rng.standard_normal(
        (c_out, c_in // groups, *k)
    )


@pytest.mark.parametrize("options", OPTIONS)
def test_corr2d_multi_channels_last_is_channels_first_transposed(backend, options):
    x, w = operands(groups=options.get("groups", 1))
    expected = reference_multi(x, w, **options)
    y = xcorr.corr2d_multi(
        backend.asarray(last(x)),
        backend.asarray(w),
        data_format="channels_last",
        **options,
    )
    assert tuple(y.shape) == last(expected).shape
    np.testing.assert_allclose(
        backend.to_numpy(y), last(expected), rtol=1e-12, atol=1e-12
    )
    # Unbatched (H, W, C) too.
    y = xcorr.corr2d_multi(
        backend.asarray(last(x[0])),
        backend.asarray(w),
        data_format="channels_last",
        **options,
    )
    np.testing.assert_allclose(
        backend.to_numpy(y), last(expected[0]), rtol=1e-12, atol=1e-12
    )


@pytest.mark.parametrize("options", OPTIONS[:3])
def test_corr2d_multi_vjp_channels_last(backend, options):
    x, w = operands(seed=1, groups=options.get("groups", 1))
    y = reference_multi(x, w, **options)
    g = np.random.default_rng(2).standard_normal(y.shape)
    gx_ref, gw_ref = reference_multi_vjp(x, w, g, **options)
    gx, gw = xcorr.corr2d_multi_vjp(
        backend.asarray(last(x)),
        backend.asarray(w),
        backend.asarray(last(g)),
        data_format="channels_last",
        **options,
    )
    np.testing.assert_allclose(
        backend.to_numpy(gx), last(gx_ref), rtol=1e-12, atol=1e-12
    )
    np.testing.assert_allclose(backend.to_numpy(gw), gw_ref, rtol=1e-12, atol=1e-12)


def test_conv_transpose2d_channels_last(backend):
    torch = require_module("torch")
    rng = np.random.default_rng(3)
    x, w = rng.standard_normal((2, 4, 3, 4)), rng.standard_normal((4, 3, 3, 2))
    options = dict(
        stride=2, padding=(1, 0), output_padding=1, dilation=(1, 2), groups=2
    )
    # The oracle is torch's F.conv_transpose2d and its autograd, in float64.
    xt = torch.asarray(x).requires_grad_(True)
    wt = torch.asarray(w).requires_grad_(True)
    yt = torch.nn.functional.conv_transpose2d(xt, wt, **options)
    expected = yt.detach().numpy()
    y = xcorr.conv_transpose2d(
        backend.asarray(last(x)),
        backend.asarray(w),
        data_format="channels_last",
        **options,
    )
    np.testing.assert_allclose(
        backend.to_numpy(y), last(expected), rtol=1e-12, atol=1e-12
    )
    g = rng.standard_normal(expected.shape)
    (yt * torch.asarray(g)).sum().backward()
    gx_ref, gw_ref = xt.grad.numpy(), wt.grad.numpy()
    gx, gw = xcorr.conv_transpose2d_vjp(
        backend.asarray(last(x)),
        backend.asarray(w),
        backend.asarray(last(g)),
        data_format="channels_last",
        **options,
    )
    np.testing.assert_allclose(
        backend.to_numpy(gx), last(gx_ref), rtol=1e-12, atol=1e-12
    )
    np.testing.assert_allclose(backend.to_numpy(gw), gw_ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("cls", ["Conv2D", "Conv2DTranspose"])
def test_layers_channels_last(backend, cls):
    """A channels-last layer against torch's F.conv2d / F.conv_transpose2d (and their autograd, for the
    layers' own grad) in float64 with the layer's weight and bias, on channels-first data."""
    torch = require_module("torch")
    F = torch.nn.functional
    layer_class = getattr(xcorr, cls)
    options = (
        {"stride": 2, "groups": 2}
        if cls == "Conv2DTranspose"
        else {"mode": "same", "groups": 2}
    )
    kwargs = dict(
        in_channels=4,
        out_channels=6,
        backend=kind(backend),
        dtype="float64",
        seed=3,
        **options,
    )
    first_layer = on_device(backend, layer_class(3, **kwargs))
    layer = on_device(backend, layer_class(3, data_format="channels_last", **kwargs))
    assert layer.data_format == "channels_last" and first_layer.data_format == "channels_first"
    # The weights keep their layout: the same seed draws the same parameters.
    np.testing.assert_array_equal(
        backend.to_numpy(layer.weight), backend.to_numpy(first_layer.weight)
    )
    x = np.random.default_rng(4).standard_normal((2, 4, 5, 5))
    xt = torch.asarray(x)
    wt = torch.asarray(backend.to_numpy(layer.weight).copy()).requires_grad_(True)
    bt = torch.asarray(backend.to_numpy(layer.bias).copy()).requires_grad_(True)
    if cls == "Conv2DTranspose":
        yt = F.conv_transpose2d(xt, wt, bt, stride=2, groups=2)
    else:  # "same" with a 3x3 kernel at stride 1: one row and column of zeros on each side
        yt = F.conv2d(xt, wt, bt, padding=1, groups=2)
    expected = yt.detach().numpy()
    y = layer(backend.asarray(last(x)))
    np.testing.assert_allclose(
        backend.to_numpy(y), last(expected), rtol=1e-12, atol=1e-12
    )
    np.testing.assert_allclose(
        backend.to_numpy(first_layer(backend.asarray(x))), expected, rtol=1e-12, atol=1e-12
    )
    if not backend.adapter.autodiff:  # the layer's own grad (autodiff libraries differentiate it)
        g = np.random.default_rng(5).standard_normal(expected.shape)
        expected_grads = dict(zip(("weight", "bias"), torch.autograd.grad(yt, (wt, bt), torch.asarray(g))))
        grads = layer.grad(backend.asarray(last(x)), backend.asarray(last(g)))
        for name in ("weight", "bias"):
            np.testing.assert_allclose(
                backend.to_numpy(grads[name]),
                expected_grads[name].numpy(),
                rtol=1e-12,
                atol=1e-12,
            )
    assert 'data_format="channels_last"' in repr(layer)


def test_torch_channels_last_makes_no_contiguous_copy(monkeypatch):
    torch = require_module("torch")
    F = torch.nn.functional
    seen = []

    def spy(real):
        def call(x, *args, **kwargs):
            seen.append(
                (
                    real.__name__,
                    x.data_ptr(),
                    x.is_contiguous(memory_format=torch.channels_last),
                )
            )
            return real(x, *args, **kwargs)

        return call

    monkeypatch.setattr(F, "conv2d", spy(F.conv2d))
    monkeypatch.setattr(F, "conv_transpose2d", spy(F.conv_transpose2d))
    rng = np.random.default_rng(6)
    x = torch.asarray(rng.standard_normal((2, 5, 6, 4)))  # contiguous NHWC
    w = torch.asarray(rng.standard_normal((6, 4, 3, 3)))
    y = xcorr.corr2d_multi(x, w, mode="same", data_format="channels_last")
    wt = torch.asarray(rng.standard_normal((4, 3, 3, 3)))
    yt = xcorr.conv_transpose2d(x, wt, stride=2, padding=1, data_format="channels_last")
    # F.conv2d and F.conv_transpose2d read x's own memory, in the channels_last format ...
    assert seen == [
        ("conv2d", x.data_ptr(), True),
        ("conv_transpose2d", x.data_ptr(), True),
    ]
    # ... and their results, kept in that format, are contiguous NHWC tensors.
    assert y.is_contiguous() and yt.is_contiguous()
    np.testing.assert_allclose(
        y.numpy(),
        last(reference_multi(first(x.numpy()), w.numpy(), mode="same")),
        rtol=1e-12,
    )
    # Through the layers too.
    layer = xcorr.Conv2D(
        3,
        in_channels=4,
        out_channels=6,
        mode="same",
        data_format="channels_last",
        backend="torch",
    )
    seen.clear()
    out = layer(x.float())
    assert seen[0][2] and out.is_contiguous() and tuple(out.shape) == (2, 5, 6, 6)


def test_jax_channels_last_uses_nhwc_dimension_numbers(monkeypatch):
    jax = require_module("jax")
    jnp = jax.numpy
    real = jax.lax.conv_general_dilated
    seen = []

    def spy(lhs, rhs, *args, **kwargs):
        seen.append(kwargs.get("dimension_numbers"))
        return real(lhs, rhs, *args, **kwargs)

    monkeypatch.setattr(jax.lax, "conv_general_dilated", spy)
    x, w = operands(seed=7)
    y = xcorr.corr2d_multi(
        jnp.asarray(last(x)),
        jnp.asarray(w),
        mode="same",
        stride=2,
        data_format="channels_last",
    )
    np.testing.assert_allclose(
        np.asarray(y), last(reference_multi(x, w, mode="same", stride=2)), rtol=1e-12
    )
    wt = np.random.default_rng(8).standard_normal((4, 2, 3, 3))
    xcorr.conv_transpose2d(
        jnp.asarray(last(x)), jnp.asarray(wt), stride=2, data_format="channels_last"
    )
    assert seen == [("NHWC", "OIHW", "NHWC")] * 2
    # Differentiable and jittable, through the layer.
    layer = xcorr.Conv2D(
        3,
        in_channels=4,
        out_channels=6,
        data_format="channels_last",
        backend="jax",
        dtype="float64",
    )
    grads = jax.jit(jax.grad(lambda layer, x: jnp.sum(layer(x) ** 2)))(
        layer, jnp.asarray(last(x))
    )
    g = (
        2 * reference_multi(x, np.asarray(layer.weight))
        + 2 * np.asarray(layer.bias)[:, None, None]
    )
    np.testing.assert_allclose(
        np.asarray(grads.weight),
        reference_multi_vjp(x, np.asarray(layer.weight), g)[1],
        rtol=1e-10,
    )


def test_bad_data_format_and_shapes(backend):
    x, w = (
        backend.asarray(np.ones((1, 5, 5, 3))),
        backend.asarray(np.ones((2, 3, 2, 2))),
    )
    with pytest.raises(
        ValueError,
        match=r"data_format must be one of 'channels_first', 'channels_last'.*'NHWC'",
    ):
        xcorr.corr2d_multi(x, w, data_format="NHWC")
    with pytest.raises(ValueError, match=r"data_format must be one of"):
        xcorr.corr2d_multi_vjp(x, w, x, data_format=None)
    with pytest.raises(
        ValueError, match=r"x has 5 channels in its last axis \(shape \(1, 3, 3, 5\)"
    ):
        xcorr.corr2d_multi(
            backend.asarray(np.ones((1, 3, 3, 5))), w, data_format="channels_last"
        )
    with pytest.raises(
        ValueError, match=r"x must have shape \(N, H, W, C\) or \(H, W, C\)"
    ):
        xcorr.corr2d_multi(
            backend.asarray(np.ones((5, 3))), w, data_format="channels_last"
        )
    with pytest.raises(
        ValueError, match=r"g must have the shape of the output, \(1, 4, 4, 2\)"
    ):
        xcorr.corr2d_multi_vjp(
            x, w, backend.asarray(np.ones((1, 2, 4, 4))), data_format="channels_last"
        )
    name = kind(backend)
    with pytest.raises(ValueError, match=r"data_format must be one of"):
        xcorr.Conv2D(3, in_channels=3, out_channels=2, data_format="nhwc", backend=name)
    with pytest.raises(
        ValueError,
        match=r"data_format=\"channels_last\" needs in_channels and out_channels",
    ):
        xcorr.Conv2D(3, data_format="channels_last", backend=name)
    with pytest.raises(ValueError, match=r"data_format must be one of"):
        xcorr.Conv2DTranspose(
            3, in_channels=3, out_channels=2, data_format="NCHW", backend=name
        )


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_biased_corr2d_multi_checks_each_operand_once(monkeypatch, data_format):
    # One validation per call (the call record of _call.validate): x, w and the bias are
    # each checked once, however many steps the call goes through.
    from xcorr import _options
    from xcorr._prepared import clear_prepared

    clear_prepared()  # a first call of its signature (a repeated one is not checked again)
    checked = []
    real = _options.check_array
    monkeypatch.setattr(_options, "check_array", lambda name, a: checked.append(name) or real(name, a))
    shape = (2, 7, 6, 4) if data_format == "channels_last" else (2, 4, 7, 6)
    x, w, b = random(shape, seed=5), random((3, 4, 3, 2), seed=6), random((3,), seed=7)
    y = xcorr.corr2d_multi(x, w, bias=b, data_format=data_format, mode="same", boundary="wrap")
    assert sorted(checked) == ["bias", "w", "x"]
    first = np.moveaxis(x, -1, 1) if data_format == "channels_last" else x
    want = reference_multi(first, w, mode="same", boundary="wrap") + b[:, None, None]
    got = np.moveaxis(y, -1, 1) if data_format == "channels_last" else y
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
