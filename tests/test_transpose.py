"""Transposed convolution on every backend: torch's F.conv_transpose2d / nn.ConvTranspose2d and
jax.lax.conv_transpose as references, the adjoint identity, gradients, the layer and a model port."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import xcorr

from matrix import assert_result, require_module

torch = require_module("torch")
F = torch.nn.functional

# (stride, padding, output_padding, dilation, groups): torch's configurations.
CASES = [
    pytest.param(1, 0, 0, 1, 1, id="plain"),
    pytest.param(2, 1, 1, 1, 1, id="stride2-pad1-op1"),
    pytest.param(3, 2, 2, 2, 2, id="stride3-pad2-op2-dil2-groups2"),
    pytest.param((2, 3), (1, 0), (0, 2), (2, 1), 3, id="pairs-groups3"),
    pytest.param(1, 1, 1, 2, 1, id="op-below-dilation"),
]


def operands(c_in=6, c_out_per_group=2, groups=1, hw=(4, 5), k=(3, 2), n=2, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c_in, *hw))
    w = rng.standard_normal((c_in, c_out_per_group, *k))
    return x, w


def torch_transpose(x, w, **options):
    return F.conv_transpose2d(torch.asarray(x), torch.asarray(w), **options).numpy()


@pytest.mark.parametrize(
    ("stride", "padding", "output_padding", "dilation", "groups"), CASES
)
def test_equals_torch_conv_transpose2d(
    backend, stride, padding, output_padding, dilation, groups
):
    x, w = operands()
    options = dict(
        stride=stride,
        padding=padding,
        output_padding=output_padding,
        dilation=dilation,
        groups=groups,
    )
    expected = torch_transpose(x, w, **options)
    y = xcorr.conv_transpose2d(backend.asarray(x), backend.asarray(w), **options)
    assert tuple(y.shape) == expected.shape
    assert y.dtype == backend.dtype("float64")
    np.testing.assert_allclose(backend.to_numpy(y), expected, rtol=1e-12, atol=1e-12)


def test_unbatched_input_and_asymmetric_padding(backend):
    x, w = operands(groups=2)
    full = torch_transpose(x, w, stride=2, groups=2)
    # ((top, bottom), (left, right)) crops the uncropped result; output_padding adds zeros past its end.
    y = xcorr.conv_transpose2d(
        backend.asarray(x[0]),
        backend.asarray(w),
        stride=2,
        groups=2,
        padding=((2, 0), (0, 3)),
    )
    np.testing.assert_allclose(
        backend.to_numpy(y), full[0, :, 2:, :-3], rtol=1e-12, atol=1e-12
    )
    y = xcorr.conv_transpose2d(
        backend.asarray(x),
        backend.asarray(w),
        stride=2,
        padding=((0, 0), (0, 0)),
        output_padding=1,
    )
    expected = np.pad(torch_transpose(x, w, stride=2), ((0, 0), (0, 0), (0, 1), (0, 1)))
    np.testing.assert_allclose(backend.to_numpy(y), expected, rtol=1e-12, atol=1e-12)


def test_mixed_dtypes_promote(backend):
    x, w = operands()
    y = xcorr.conv_transpose2d(
        backend.asarray(x, "float32"), backend.asarray(w, "float64"), stride=2
    )
    assert y.dtype == backend.dtype("float64")
    xi = np.arange(2 * 2 * 3 * 3).reshape(2, 2, 3, 3) % 5 - 2
    wi = np.arange(2 * 3 * 2 * 2).reshape(2, 3, 2, 2) % 3 - 1
    y = xcorr.conv_transpose2d(
        backend.asarray(xi, "int64"), backend.asarray(wi, "int64"), stride=2
    )
    assert y.dtype == backend.dtype("int64")
    np.testing.assert_array_equal(
        backend.to_numpy(y), np.rint(torch_transpose(xi * 1.0, wi * 1.0, stride=2))
    )


@pytest.mark.parametrize(
    ("stride", "padding", "output_padding", "dilation", "groups"),
    [
        *CASES[2:],  # plain and stride 2 are covered by the equality with torch
        pytest.param((2, 1), ((1, 0), (0, 2)), (1, 0), (1, 3), 2, id="asymmetric"),
    ],
)
def test_adjoint_of_the_forward_correlation(
    backend, stride, padding, output_padding, dilation, groups
):
    """<corr2d_multi(pad(z), w), x> == <z, conv_transpose2d(x, w)> for random x, z."""
    x, w = operands(groups=groups, seed=1)
    options = dict(stride=stride, dilation=dilation, groups=groups)
    y = xcorr.conv_transpose2d(
        backend.asarray(x),
        backend.asarray(w),
        padding=padding,
        output_padding=output_padding,
        **options,
    )
    z = np.random.default_rng(2).standard_normal(y.shape)
    (top, bottom), (left, right) = xcorr._padding.parse_transpose_padding(padding)
    zp = np.pad(z, ((0, 0), (0, 0), (top, bottom), (left, right)))
    forward = backend.to_numpy(
        xcorr.corr2d_multi(backend.asarray(zp), backend.asarray(w), **options)
    )
    forward = forward[
        ..., : x.shape[-2], : x.shape[-1]
    ]  # output_padding past the stride reads more windows
    lhs = np.vdot(forward, x)
    rhs = np.vdot(z, backend.to_numpy(y))
    assert lhs == pytest.approx(rhs, rel=1e-12, abs=1e-12)


@pytest.mark.parametrize(
    ("stride", "padding", "output_padding", "dilation"),
    [(1, 0, 0, 1), (2, (1, 2), 1, (1, 2))],
)
def test_single_plane_transpose(backend, stride, padding, output_padding, dilation):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((3, 4, 5))
    k = rng.standard_normal((2, 3))
    options = dict(
        stride=stride, padding=padding, output_padding=output_padding, dilation=dilation
    )
    y = xcorr.corr2d_transpose(backend.asarray(x), backend.asarray(k), **options)
    expected = torch_transpose(x[:, None], k[None, None], **options)[:, 0]
    np.testing.assert_allclose(backend.to_numpy(y), expected, rtol=1e-12, atol=1e-12)
    # Adjoint of corr2d on the zero-padded input.
    z = rng.standard_normal(y.shape)
    ph, pw = (padding, padding) if isinstance(padding, int) else padding
    zp = np.pad(z, ((0, 0), (ph, ph), (pw, pw)))
    forward = backend.to_numpy(
        xcorr.corr2d(
            backend.asarray(zp), backend.asarray(k), stride=stride, dilation=dilation
        )
    )
    assert np.vdot(forward[..., : x.shape[-2], : x.shape[-1]], x) == pytest.approx(
        np.vdot(z, expected), rel=1e-12
    )
    # Batches of kernels broadcast against the input.
    kb = rng.standard_normal((3, 2, 3))
    y = xcorr.corr2d_transpose(backend.asarray(x[:1]), backend.asarray(kb), **options)
    expected = np.stack(
        [
            torch_transpose(x[:1, None], kb[i][None, None], **options)[0, 0]
            for i in range(3)
        ]
    )
    np.testing.assert_allclose(backend.to_numpy(y), expected, rtol=1e-12, atol=1e-12)


def _torch_grads(x, w, g, options, fn=F.conv_transpose2d):
    xt = torch.asarray(x).requires_grad_(True)
    wt = torch.asarray(w).requires_grad_(True)
    (fn(xt, wt, **options) * torch.asarray(g)).sum().backward()
    return xt.grad.numpy(), wt.grad.numpy()


@pytest.mark.parametrize(
    ("stride", "padding", "output_padding", "dilation", "groups"), CASES[1:4]
)
def test_vjp_equals_torch_autograd(
    backend, stride, padding, output_padding, dilation, groups
):
    x, w = operands(seed=4)
    options = dict(
        stride=stride,
        padding=padding,
        output_padding=output_padding,
        dilation=dilation,
        groups=groups,
    )
    y = torch_transpose(x, w, **options)
    g = np.random.default_rng(5).standard_normal(y.shape)
    gx_ref, gw_ref = _torch_grads(x, w, g, options)
    gx, gw = xcorr.conv_transpose2d_vjp(
        backend.asarray(x), backend.asarray(w), backend.asarray(g), **options
    )
    np.testing.assert_allclose(backend.to_numpy(gx), gx_ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(backend.to_numpy(gw), gw_ref, rtol=1e-12, atol=1e-12)


def _torch_cropped(x, w, padding, output_padding, **options):
    """F.conv_transpose2d without padding, zeros past its end for output_padding, then the asymmetric crop."""
    (top, bottom), (left, right) = padding
    oh, ow = output_padding
    full = F.conv_transpose2d(x, w, **options)
    rows, cols = full.shape[-2] - top - bottom + oh, full.shape[-1] - left - right + ow
    return F.pad(full, (0, ow, 0, oh))[..., top : top + rows, left : left + cols]


def _torch_cropped_grads(x, w, g, padding, output_padding, **options):
    xt = torch.asarray(x).requires_grad_(True)
    wt = torch.asarray(w).requires_grad_(True)
    y = _torch_cropped(xt, wt, padding, output_padding, **options)
    (y * torch.asarray(g)).sum().backward()
    return y.detach().numpy(), xt.grad.numpy(), wt.grad.numpy()


ASYMMETRIC = [
    pytest.param(2, ((2, 0), (0, 3)), (0, 0), 1, 2, id="stride2-groups2"),
    pytest.param((2, 3), ((0, 2), (3, 1)), (1, 2), (1, 2), 1, id="op-dilated"),
    pytest.param(1, ((3, 1), (1, 0)), (0, 0), (2, 1), 3, id="stride1-groups3"),
]


@pytest.mark.parametrize(("stride", "padding", "output_padding", "dilation", "groups"), ASYMMETRIC)
@pytest.mark.parametrize("data_format", ["channels_first", "channels_last"])
def test_vjp_with_asymmetric_padding_equals_torch_autograd_of_the_crop(
    backend, stride, padding, output_padding, dilation, groups, data_format
):
    """Input and weight gradients of conv_transpose2d with ((top, bottom), (left, right)) padding:
    torch autograd of the unpadded F.conv_transpose2d followed by the crop, float64."""
    x, w = operands(seed=7)
    options = dict(stride=stride, dilation=dilation, groups=groups)
    y, gx_ref, gw_ref = _torch_cropped_grads(
        x, w, np.zeros(1), padding, output_padding, **options
    )  # the output's shape first
    g = np.random.default_rng(8).standard_normal(y.shape)
    y, gx_ref, gw_ref = _torch_cropped_grads(x, w, g, padding, output_padding, **options)
    last = data_format == "channels_last"
    xa, ga = (np.moveaxis(x, 1, -1), np.moveaxis(g, 1, -1)) if last else (x, g)
    kwargs = dict(options, padding=padding, output_padding=output_padding, data_format=data_format)
    out = xcorr.conv_transpose2d(backend.asarray(xa), backend.asarray(w), **kwargs)
    np.testing.assert_allclose(
        backend.to_numpy(out), np.moveaxis(y, 1, -1) if last else y, rtol=1e-12, atol=1e-12
    )
    gx, gw = xcorr.conv_transpose2d_vjp(
        backend.asarray(xa), backend.asarray(w), backend.asarray(ga), **kwargs
    )
    assert_result(backend, gx, np.moveaxis(gx_ref, 1, -1) if last else gx_ref, "float64")
    assert_result(backend, gw, gw_ref, "float64")


def test_single_plane_vjp_with_asymmetric_padding_equals_torch_autograd(backend):
    rng = np.random.default_rng(9)
    x, k = rng.standard_normal((3, 4, 5)), rng.standard_normal((3, 2, 3))
    padding, output_padding = ((2, 0), (1, 3)), (1, 0)
    options = dict(stride=2, dilation=(1, 2))
    y, _, _ = _torch_cropped_grads(
        x[None], k[:, None], np.zeros(1), padding, output_padding, groups=3, **options
    )
    g = rng.standard_normal(y.shape[1:])
    _, a, b = _torch_cropped_grads(
        x[None], k[:, None], g[None], padding, output_padding, groups=3, **options
    )
    gx, gk = xcorr.corr2d_transpose_vjp(
        backend.asarray(x), backend.asarray(k), backend.asarray(g),
        padding=padding, output_padding=output_padding, **options,
    )  # fmt: skip
    assert_result(backend, gx, a[0], "float64")
    assert_result(backend, gk, b[:, 0], "float64")


def test_single_plane_vjp_equals_torch_autograd(backend):
    rng = np.random.default_rng(6)
    x, k = rng.standard_normal((3, 4, 3)), rng.standard_normal((3, 2, 2))
    options = dict(
        stride=(2, 1), padding=(1, 0), output_padding=(1, 0), dilation=(1, 2)
    )
    g = rng.standard_normal(xcorr.corr2d_transpose(x, k, **options).shape)
    gx, gk = xcorr.corr2d_transpose_vjp(
        backend.asarray(x), backend.asarray(k), backend.asarray(g), **options
    )
    # Reference: the planes as one grouped transposed convolution.
    a, b = _torch_grads(x[None], k[:, None], g[None], {**options, "groups": 3})
    np.testing.assert_allclose(backend.to_numpy(gx), a[0], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(backend.to_numpy(gk), b[:, 0], rtol=1e-12, atol=1e-12)
    # One kernel for every plane: its gradient is the sum over the planes.
    gx, gk = xcorr.corr2d_transpose_vjp(
        backend.asarray(x), backend.asarray(k[0]), backend.asarray(g), **options
    )
    a, b = _torch_grads(x[:, None], k[0][None, None], g[:, None], options)
    np.testing.assert_allclose(backend.to_numpy(gx), a[:, 0], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(backend.to_numpy(gk), b[0, 0], rtol=1e-12, atol=1e-12)
    # One input plane for a batch of kernels: the input gradient sums over the kernels.
    gx, gk = xcorr.corr2d_transpose_vjp(
        backend.asarray(x[0]), backend.asarray(k), backend.asarray(g), **options
    )
    a, b = _torch_grads(x[:1][None], k[None], g[None], options)
    np.testing.assert_allclose(backend.to_numpy(gx), a[0, 0], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(backend.to_numpy(gk), b[0], rtol=1e-12, atol=1e-12)


def test_torch_autograd_and_func():
    x, w = operands(seed=7)
    options = dict(stride=2, padding=1, output_padding=1, groups=2)
    xt = torch.asarray(x).requires_grad_(True)
    wt = torch.asarray(w).requires_grad_(True)
    y = xcorr.conv_transpose2d(xt, wt, **options)
    g = torch.asarray(np.random.default_rng(8).standard_normal(tuple(y.shape)))
    (y * g).sum().backward()
    gx_ref, gw_ref = _torch_grads(x, w, g.numpy(), options)
    np.testing.assert_allclose(xt.grad.numpy(), gx_ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(wt.grad.numpy(), gw_ref, rtol=1e-12, atol=1e-12)
    gw = torch.func.grad(
        lambda w: (xcorr.conv_transpose2d(torch.asarray(x), w, **options) * g).sum()
    )(torch.asarray(w))
    np.testing.assert_allclose(gw.numpy(), gw_ref, rtol=1e-12, atol=1e-12)
    # The single-plane form differentiates through the autograd Function of corr2d.
    k = torch.asarray(w[0, 0]).requires_grad_(True)
    yk = xcorr.corr2d_transpose(torch.asarray(x[0]), k, stride=2, padding=1)
    (yk * yk).sum().backward()
    k_ref = torch.asarray(w[0, 0]).requires_grad_(True)
    yr = F.conv_transpose2d(
        torch.asarray(x[0][:, None]), k_ref[None, None], stride=2, padding=1
    )
    (yr * yr).sum().backward()
    np.testing.assert_allclose(
        k.grad.numpy(), k_ref.grad.numpy(), rtol=1e-12, atol=1e-12
    )


def test_jax_grad_jit_vmap_and_lax_conv_transpose():
    jax = require_module("jax")
    jnp = jax.numpy
    x, w = operands(c_in=4, seed=9)
    s, p, op, d = 2, 1, 1, 2
    kh, kw = w.shape[-2:]
    options = dict(stride=s, padding=p, output_padding=op, dilation=d)
    # lax.conv_transpose pads the stride-dilated input: d*(k-1) - p before, plus output_padding after.
    pads = (
        (d * (kh - 1) - p, d * (kh - 1) - p + op),
        (d * (kw - 1) - p, d * (kw - 1) - p + op),
    )
    for layout in ("NCHW", "NHWC"):
        xl = x if layout == "NCHW" else x.transpose(0, 2, 3, 1)
        expected = jax.lax.conv_transpose(
            jnp.asarray(xl),
            jnp.asarray(w),
            (s, s),
            pads,
            rhs_dilation=(d, d),
            dimension_numbers=(layout, "OIHW", layout),
            transpose_kernel=True,
            precision=jax.lax.Precision.HIGHEST,
        )
        fmt = "channels_first" if layout == "NCHW" else "channels_last"
        y = jax.jit(
            lambda x, w, fmt=fmt: xcorr.conv_transpose2d(
                x, w, data_format=fmt, **options
            )
        )(jnp.asarray(xl), jnp.asarray(w))
        np.testing.assert_allclose(
            np.asarray(y), np.asarray(expected), rtol=1e-12, atol=1e-12
        )
    g = np.random.default_rng(10).standard_normal(
        torch_transpose(x, w, **options).shape
    )
    gx_ref, gw_ref = _torch_grads(x, w, g, options)
    def loss(x, w):
        return jnp.sum(xcorr.conv_transpose2d(x, w, **options) * g)

    gx, gw = jax.grad(loss, argnums=(0, 1))(jnp.asarray(x), jnp.asarray(w))
    np.testing.assert_allclose(np.asarray(gx), gx_ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(np.asarray(gw), gw_ref, rtol=1e-12, atol=1e-12)
    ys = jax.vmap(lambda x: xcorr.conv_transpose2d(x, jnp.asarray(w), **options))(
        jnp.asarray(x)
    )
    np.testing.assert_allclose(
        np.asarray(ys), torch_transpose(x, w, **options), rtol=1e-12, atol=1e-12
    )


# --- the layer ---------------------------------------------------------------------


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


def _layer(backend, *args, **kwargs):
    layer = xcorr.Conv2DTranspose(
        *args, backend=kind(backend), dtype="float64", **kwargs
    )
    return on_device(backend, layer)


def _load(backend, layer, weight, bias):
    if kind(backend) == "torch":
        with torch.no_grad():
            layer.weight.copy_(torch.asarray(weight))
            layer.bias.copy_(torch.asarray(bias))
        return layer
    if kind(backend) == "jax":
        return layer.replace(weight=backend.asarray(weight), bias=backend.asarray(bias))
    layer.weight, layer.bias = backend.asarray(weight), backend.asarray(bias)
    return layer


def test_layer_equals_torch_conv_transpose2d_with_gradients(backend):
    config = dict(stride=2, padding=1, output_padding=1, dilation=1, groups=2)
    ref = torch.nn.ConvTranspose2d(4, 6, 3, **config).double()
    layer = _layer(backend, 3, in_channels=4, out_channels=6, **config)
    assert tuple(layer.weight.shape) == tuple(ref.weight.shape) == (4, 3, 3, 3)
    assert isinstance(layer, xcorr.Conv2DTranspose) and isinstance(layer, xcorr.Conv2D)
    assert (layer.padding, layer.output_padding, layer.stride) == (
        ((1, 1), (1, 1)),
        (1, 1),
        (2, 2),
    )
    layer = _load(
        backend, layer, ref.weight.detach().numpy(), ref.bias.detach().numpy()
    )
    x = np.random.default_rng(11).standard_normal((2, 4, 3, 4))
    expected = ref(torch.asarray(x))
    g = np.random.default_rng(12).standard_normal(tuple(expected.shape))
    (expected * torch.asarray(g)).sum().backward()
    y = layer(backend.asarray(x))
    np.testing.assert_allclose(
        backend.to_numpy(y), expected.detach().numpy(), rtol=1e-12, atol=1e-12
    )
    if kind(backend) == "torch":
        (y * backend.asarray(g)).sum().backward()
        grads = {"weight": layer.weight.grad, "bias": layer.bias.grad}
    elif kind(backend) == "jax":
        import jax

        tree = jax.grad(lambda layer: (layer(backend.asarray(x)) * g).sum())(layer)
        grads = {"weight": tree.weight, "bias": tree.bias}
    else:
        grads = layer.grad(backend.asarray(x), backend.asarray(g))
    np.testing.assert_allclose(
        backend.to_numpy(grads["weight"]),
        ref.weight.grad.numpy(),
        rtol=1e-12,
        atol=1e-12,
    )
    np.testing.assert_allclose(
        backend.to_numpy(grads["bias"]), ref.bias.grad.numpy(), rtol=1e-12, atol=1e-12
    )


def test_layer_trains_with_fit(backend):
    target = _layer(backend, 2, in_channels=2, out_channels=1, stride=2, seed=1)
    layer = _layer(backend, 2, in_channels=2, out_channels=1, stride=2, seed=2)
    x = backend.asarray(np.random.default_rng(13).standard_normal((2, 2, 4, 4)))
    y = target(x)
    y = y.detach() if kind(backend) == "torch" else y
    layer, losses = xcorr.fit(layer, x, y, lr=0.5, steps=5, loss="mse")
    assert all(b < a for a, b in itertools.pairwise(losses)), losses
    assert losses[-1] < 0.5 * losses[0], losses


def test_layer_repr_and_no_bias():
    layer = xcorr.Conv2DTranspose(
        3,
        in_channels=2,
        out_channels=4,
        stride=2,
        padding=1,
        bias=False,
        backend="numpy",
    )
    assert layer.bias is None
    assert repr(layer).startswith(
        "Conv2DTranspose((3, 3), in_channels=2, out_channels=4, stride=(2, 2)"
    )
    assert layer(np.ones((2, 5, 5), dtype=np.float32)).shape == (4, 9, 9)
    module = xcorr.Conv2DTranspose(3, in_channels=2, out_channels=4, backend="torch")
    assert isinstance(module, torch.nn.Module)
    assert set(module.state_dict()) == {"weight", "bias"}


# --- a model ported from torch ----------------------------------------------------------


class TorchModel(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.body = torch.nn.Sequential(
            torch.nn.Conv2d(2, 4, 3, padding=1, padding_mode="reflect"),
            torch.nn.Tanh(),
            torch.nn.ConvTranspose2d(
                4, 4, 3, stride=2, padding=1, output_padding=1, groups=2
            ),
            torch.nn.Tanh(),
            torch.nn.Conv2d(4, 2, 1, groups=2),
        )

    def forward(self, x):
        return self.body(x)


def xcorr_layers(backend):
    return [
        xcorr.Conv2D(
            3,
            in_channels=2,
            out_channels=4,
            padding=1,
            boundary="reflect",
            backend=backend,
            dtype="float64",
        ),
        xcorr.Conv2DTranspose(
            3,
            in_channels=4,
            out_channels=4,
            stride=2,
            padding=1,
            output_padding=1,
            groups=2,
            backend=backend,
            dtype="float64",
        ),
        xcorr.Conv2D(
            1, in_channels=4, out_channels=2, groups=2, backend=backend, dtype="float64"
        ),
    ]


def test_port_a_torch_model_through_its_state_dict():
    torch.manual_seed(0)
    model = TorchModel().double()
    layers = xcorr_layers("torch")
    port = torch.nn.Module()
    port.body = torch.nn.Sequential(
        layers[0], torch.nn.Tanh(), layers[1], torch.nn.Tanh(), layers[2]
    )
    port.forward = port.body.forward
    port.load_state_dict(model.state_dict())
    x = torch.asarray(np.random.default_rng(14).standard_normal((2, 2, 5, 6)))
    y_ref, y = model(x), port(x)
    np.testing.assert_allclose(
        y.detach().numpy(), y_ref.detach().numpy(), rtol=1e-12, atol=1e-12
    )
    (y_ref**2).sum().backward()
    (y**2).sum().backward()
    for (name, p), q in zip(model.named_parameters(), port.parameters()):
        np.testing.assert_allclose(
            q.grad.numpy(), p.grad.numpy(), rtol=1e-12, atol=1e-12, err_msg=name
        )


def test_port_a_torch_model_to_numpy_with_the_vjps():
    """The same model on numpy arrays; the backward pass chains the functional VJPs."""
    torch.manual_seed(1)
    model = TorchModel().double()
    state = {k: v.numpy() for k, v in model.state_dict().items()}
    conv1, up, conv2 = xcorr_layers("numpy")
    for layer, i in zip((conv1, up, conv2), (0, 2, 4)):
        layer.weight, layer.bias = state[f"body.{i}.weight"], state[f"body.{i}.bias"]
    x = np.random.default_rng(15).standard_normal((2, 2, 5, 6))
    a1 = np.tanh(conv1(x))
    a2 = np.tanh(up(a1))
    y = conv2(a2)
    xt = torch.asarray(x)
    y_ref = model(xt)
    np.testing.assert_allclose(y, y_ref.detach().numpy(), rtol=1e-12, atol=1e-12)
    (y_ref**2).sum().backward()
    g = 2 * y
    grads = {"body.4": conv2.grad(a2, g)}
    g2 = xcorr.corr2d_multi_vjp(a2, conv2.weight, g, groups=2)[0] * (1 - a2**2)
    grads["body.2"] = up.grad(a1, g2)
    g1 = xcorr.conv_transpose2d_vjp(
        a1, up.weight, g2, stride=2, padding=1, output_padding=1, groups=2
    )[0] * (1 - a1**2)
    grads["body.0"] = conv1.grad(x, g1)
    for name, p in model.named_parameters():
        layer, kind = name.rsplit(".", 1)
        np.testing.assert_allclose(
            grads[layer][kind], p.grad.numpy(), rtol=1e-12, atol=1e-12, err_msg=name
        )


# --- bad input -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("x_shape", "w_shape", "options", "error", "match"),
    [
        (
            (1, 2, 3, 3),
            (2, 1, 2, 2),
            {"stride": 2, "output_padding": 2},
            ValueError,
            r"output_padding \(2, 2\) must be smaller than the stride \(2, 2\) or the dilation",
        ),
        (
            (1, 2, 3, 3),
            (2, 1, 2, 2),
            {"output_padding": (0, 1)},
            ValueError,
            r"output_padding \(0, 1\) .* along the columns",
        ),
        (
            (1, 2, 3, 3),
            (2, 1, 2, 2),
            {"output_padding": -1},
            ValueError,
            r"output_padding must be >= 0",
        ),
        (
            (1, 2, 3, 3),
            (2, 1, 2, 2),
            {"padding": -1},
            ValueError,
            r"padding of a transposed convolution must be .* got -1",
        ),
        (
            (1, 2, 3, 3),
            (2, 1, 2, 2),
            {"padding": (1, 2, 3)},
            ValueError,
            r"padding of a transposed convolution",
        ),
        (
            (1, 2, 3, 3),
            (2, 1, 2, 2),
            {"padding": ((1, 2, 3), 0)},
            ValueError,
            r"padding of a transposed convolution",
        ),
        (
            (1, 2, 3, 3),
            (2, 1, 2, 2),
            {"padding": "same_lower"},
            ValueError,
            r"padding of a transposed convolution .* or 'SAME' or 'VALID' \(any case\); got 'same_lower'",
        ),
        (
            (1, 2, 3, 3),
            (2, 1, 2, 2),
            {"padding": "SAME", "stride": 2, "output_padding": 1},
            ValueError,
            r"padding='SAME' implies the output_padding .* got output_padding=\(1, 1\)",
        ),
        (
            (1, 2, 3, 3),
            (2, 1, 2, 2),
            {"padding": 1.5},
            TypeError,
            r"padding of a transposed convolution",
        ),
        (
            (1, 2, 3, 3),
            (2, 1, 2, 2),
            {"padding": 2},
            ValueError,
            r"padding \(\(2, 2\), \(2, 2\)\) crops the whole output",
        ),
        (
            (1, 3, 3, 3),
            (2, 1, 2, 2),
            {},
            ValueError,
            r"x has 3 channels .* expects w.shape\[0\]",
        ),
        (
            (1, 2, 3, 3),
            (2, 1, 2),
            {},
            ValueError,
            r"w must have shape \(C_in, C_out // groups, h, w\)",
        ),
        (
            (2, 3, 3),
            (2, 1, 2, 2),
            {"data_format": "channels_last"},
            ValueError,
            r"x has 3 channels in its last axis",
        ),
        ((3, 3), (2, 1, 2, 2), {}, ValueError, r"x must have shape \(N, C_in, H, W\)"),
        (
            (1, 2, 3, 3),
            (2, 1, 2, 2),
            {"groups": 3},
            ValueError,
            r"groups=3 must divide the input channels \(2",
        ),
        (
            (1, 2, 3, 3),
            (2, 1, 2, 2),
            {"data_format": "NHWC"},
            ValueError,
            r"data_format must be one of 'channels_first', 'channels_last'.*'NHWC'",
        ),
        ((1, 2, 3, 3), (2, 1, 2, 2), {"stride": 0}, ValueError, r"stride must be >= 1"),
    ],
)
def test_bad_arguments_are_named_before_any_computation(
    backend, monkeypatch, x_shape, w_shape, options, error, match
):
    adapter = xcorr.adapter_for(backend.xp)

    def refuse(*args, **kwargs):
        raise AssertionError("the adapter was called with bad arguments")

    monkeypatch.setattr(type(adapter), "correlate_multi_transpose", refuse)
    x, w = backend.asarray(np.ones(x_shape)), backend.asarray(np.ones(w_shape))
    with pytest.raises(error, match=match):
        xcorr.conv_transpose2d(x, w, **options)


def test_bad_vjp_and_layer_arguments():
    x, w = np.ones((1, 2, 3, 3)), np.ones((2, 1, 2, 2))
    with pytest.raises(
        ValueError,
        match=r"g must have the shape of the output, \(1, 1, 4, 4\); got shape \(1, 1, 3, 3\)",
    ):
        xcorr.conv_transpose2d_vjp(x, w, np.ones((1, 1, 3, 3)))
    with pytest.raises(
        ValueError, match=r"g must have the shape of the output, \(2, 4, 4\)"
    ):
        xcorr.corr2d_transpose_vjp(
            np.ones((2, 3, 3)), np.ones((2, 2)), np.ones((2, 3, 3))
        )
    with pytest.raises(ValueError, match=r"output_padding \(1, 1\) must be smaller"):
        xcorr.corr2d_transpose(np.ones((3, 3)), np.ones((2, 2)), output_padding=1)
    with pytest.raises(
        TypeError, match=r"Conv2DTranspose needs in_channels and out_channels"
    ):
        xcorr.Conv2DTranspose(3, backend="numpy")
    with pytest.raises(ValueError, match=r"output_padding \(2, 2\) must be smaller"):
        xcorr.Conv2DTranspose(
            3,
            in_channels=1,
            out_channels=1,
            stride=2,
            output_padding=2,
            backend="numpy",
        )
    with pytest.raises(ValueError, match=r"groups=2 must divide in_channels=3"):
        xcorr.Conv2DTranspose(
            3, in_channels=3, out_channels=2, groups=2, backend="numpy"
        )


def test_port_a_jax_lax_model_in_nhwc():
    """A model written with lax ops in NHWC (HWIO kernels) and the same model of channels-last
    xcorr layers, its weights copied to torch's layouts: the same outputs and gradients."""
    jax = require_module("jax")
    jnp, lax = jax.numpy, jax.lax
    rng = np.random.default_rng(16)
    k1 = rng.standard_normal((3, 3, 2, 4)) * 0.3  # HWIO: 2 -> 4 channels
    k2 = (
        rng.standard_normal((3, 3, 4, 4)) * 0.3
    )  # conv_transpose's kernel (HWIO of the forward conv, transposed)
    k3 = (
        rng.standard_normal((1, 1, 2, 2)) * 0.3
    )  # grouped 4 -> 2, two groups: I = 4 // 2
    b1, b2, b3 = rng.standard_normal(4), rng.standard_normal(4), rng.standard_normal(2)
    dn = ("NHWC", "HWIO", "NHWC")
    hi = lax.Precision.HIGHEST

    def jax_model(params, x):
        k1, k2, k3, b1, b2, b3 = params
        a = jnp.tanh(
            lax.conv_general_dilated(
                x, k1, (1, 1), "SAME", dimension_numbers=dn, precision=hi
            )
            + b1
        )
        a = jnp.tanh(
            lax.conv_transpose(
                a, k2, (2, 2), "SAME", dimension_numbers=dn, precision=hi
            )
            + b2
        )
        return (
            lax.conv_general_dilated(
                a,
                k3,
                (1, 1),
                "VALID",
                dimension_numbers=dn,
                feature_group_count=2,
                precision=hi,
            )
            + b3
        )

    layers = [
        xcorr.Conv2D(
            3,
            in_channels=2,
            out_channels=4,
            mode="same",
            data_format="channels_last",
            backend="jax",
            dtype="float64",
        ),
        # lax's "SAME" transpose of a 3x3 kernel at stride 2 pads the dilated input by (2, 1), which is
        # d*(k-1) - padding: torch's padding 0 before and 1 after (asymmetric), 2H rows out.
        xcorr.Conv2DTranspose(
            3,
            in_channels=4,
            out_channels=4,
            stride=2,
            padding=((0, 1), (0, 1)),
            data_format="channels_last",
            backend="jax",
            dtype="float64",
        ),
        xcorr.Conv2D(
            1,
            in_channels=4,
            out_channels=2,
            groups=2,
            data_format="channels_last",
            backend="jax",
            dtype="float64",
        ),
    ]
    # HWIO -> OIHW for the convolutions; lax.conv_transpose (transpose_kernel=False) correlates the
    # stride-dilated input with k2 as is, so torch's (C_in, C_out, h, w) weight is k2 flipped.
    weights = [
        k1.transpose(3, 2, 0, 1),
        k2[::-1, ::-1].transpose(2, 3, 0, 1),
        k3.transpose(3, 2, 0, 1),
    ]
    layers = [
        layer.replace(weight=jnp.asarray(w), bias=jnp.asarray(b))
        for layer, w, b in zip(layers, weights, (b1, b2, b3))
    ]

    def xcorr_model(layers, x):
        a = jnp.tanh(layers[0](x))
        a = jnp.tanh(layers[1](a))
        return layers[2](a)

    x = jnp.asarray(rng.standard_normal((2, 5, 6, 2)))
    expected = jax_model((k1, k2, k3, b1, b2, b3), x)
    y = jax.jit(xcorr_model)(layers, x)
    assert y.shape == expected.shape == (2, 10, 12, 2)
    np.testing.assert_allclose(
        np.asarray(y), np.asarray(expected), rtol=1e-12, atol=1e-12
    )
    g_ref = jax.grad(lambda p: jnp.sum(jax_model(p, x) ** 2))((k1, k2, k3, b1, b2, b3))
    g = jax.grad(lambda layers: jnp.sum(xcorr_model(layers, x) ** 2))(layers)
    expected_weights = [
        g_ref[0].transpose(3, 2, 0, 1),
        g_ref[1][::-1, ::-1].transpose(2, 3, 0, 1),
        g_ref[2].transpose(3, 2, 0, 1),
    ]
    for layer, gw, gb in zip(g, expected_weights, g_ref[3:]):
        np.testing.assert_allclose(
            np.asarray(layer.weight), np.asarray(gw), rtol=1e-10, atol=1e-12
        )
        np.testing.assert_allclose(
            np.asarray(layer.bias), np.asarray(gb), rtol=1e-10, atol=1e-12
        )


@pytest.mark.parametrize(
    ("k", "s", "d"), [(3, 2, 1), (4, 2, 1), (2, 3, 1), (3, 1, 2), (5, 3, 1), (3, 4, 1)]
)
def test_lax_same_and_valid_transposes_as_torch_padding(k, s, d):
    """The recipe of docs/guide/transposed.md: lax's (and Keras') string paddings as padding/output_padding."""
    jax = require_module("jax")
    jnp = jax.numpy
    rng = np.random.default_rng(17)
    x, w = rng.standard_normal((1, 2, 4, 5)), rng.standard_normal((2, 3, k, k))
    span = d * (k - 1) + 1
    total = max(span - s, 0)
    recipes = {
        "SAME": dict(
            padding=(total // 2, total - total // 2), output_padding=max(s - span, 0)
        ),
        "VALID": dict(padding=0, output_padding=max(s - span, 0)),
    }
    for name, recipe in recipes.items():
        ph = recipe["padding"]
        padding = (ph, ph) if isinstance(ph, tuple) else ph
        y = xcorr.conv_transpose2d(
            x,
            w,
            stride=s,
            dilation=d,
            padding=padding,
            output_padding=recipe["output_padding"],
        )
        # The names themselves, in lax's and Keras' spellings, on the functions and the layer.
        by_name = xcorr.conv_transpose2d(x, w, stride=s, dilation=d, padding=name.lower())
        np.testing.assert_array_equal(by_name, y)
        plane = xcorr.corr2d_transpose(x[0, 0], w[0, 0], stride=s, dilation=d, padding=name)
        np.testing.assert_allclose(
            plane, xcorr.corr2d_transpose(x[0, 0], w[0, 0], stride=s, dilation=d, padding=padding,
                                          output_padding=recipe["output_padding"]), rtol=0, atol=0,
        )  # fmt: skip
        layer = xcorr.Conv2DTranspose(k, in_channels=2, out_channels=3, stride=s, dilation=d, padding=name,
                                      backend="numpy", dtype="float64")  # fmt: skip
        full = ((padding, padding),) * 2 if isinstance(padding, int) else padding
        assert layer.padding == full and layer.output_padding == (recipe["output_padding"],) * 2
        expected = jax.lax.conv_transpose(
            jnp.asarray(x),
            jnp.asarray(w),
            (s, s),
            name,
            rhs_dilation=(d, d),
            dimension_numbers=("NCHW", "OIHW", "NCHW"),
            transpose_kernel=True,
            precision=jax.lax.Precision.HIGHEST,
        )
        np.testing.assert_allclose(
            y, np.asarray(expected), rtol=1e-12, atol=1e-12, err_msg=name
        )


@pytest.mark.parametrize("data_format", ["channels_first", "channels_last"])
def test_torch_compile_and_export_take_the_transposed_layer_whole(data_format):
    layer = xcorr.Conv2DTranspose(
        3,
        in_channels=2,
        out_channels=4,
        stride=2,
        padding=1,
        output_padding=1,
        groups=2,
        data_format=data_format,
        backend="torch",
        dtype="float64",
    )
    shape = (1, 2, 5, 4) if data_format == "channels_first" else (1, 5, 4, 2)
    x = torch.asarray(
        np.random.default_rng(18).standard_normal(shape), requires_grad=True
    )
    compiled = torch.compile(layer, fullgraph=True, backend="aot_eager")
    y = compiled(x)
    (y**2).sum().backward()
    got = [x.grad.clone(), layer.weight.grad.clone()]
    x.grad = None
    layer.zero_grad()
    want = layer(x)
    (want**2).sum().backward()
    torch.testing.assert_close(y, want, rtol=1e-12, atol=1e-12)
    for a, b in zip(got, [x.grad, layer.weight.grad]):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    program = torch.export.export(layer, (x.detach(),))
    torch.testing.assert_close(
        program.module()(x.detach()), want.detach(), rtol=1e-12, atol=1e-12
    )
    assert "xcorr" not in str(program.graph)


@pytest.mark.parametrize(
    ("padding", "data_format"),
    [(1, "channels_first"), (((2, 0), (0, 1)), "channels_first"), (1, "channels_last")],
    ids=["torch-padding", "asymmetric", "channels-last"],
)
def test_bias_is_one_value_per_output_channel(backend, padding, data_format):
    x, w = operands(groups=2)
    b = np.random.default_rng(19).standard_normal(4)
    full = torch_transpose(x, w, stride=2, groups=2, output_padding=1)
    (top, bottom), (left, right) = ((padding, padding), (padding, padding)) if isinstance(padding, int) else padding
    want = full[..., top : full.shape[-2] - bottom, left : full.shape[-1] - right] + b[:, None, None]
    if data_format == "channels_last":
        x, want = np.moveaxis(x, 1, -1), np.moveaxis(want, 1, -1)
    xb = backend.asarray(x)
    y = xcorr.conv_transpose2d(
        xb, backend.asarray(w), bias=backend.asarray(b), stride=2, padding=padding, output_padding=1, groups=2,
        data_format=data_format,
    )
    assert_result(backend, y, want, "float64", like=xb)
    with pytest.raises(ValueError, match=r"bias must have shape \(C_out,\) = \(4,\) for w of shape \(6, 2, 3, 2\)"):
        xcorr.conv_transpose2d(xb, backend.asarray(w), bias=backend.asarray(b[:2]), groups=2, data_format=data_format)


def test_transposed_layer_bias_goes_into_conv_transpose2d():
    """The exported xcorr layer is nn.ConvTranspose2d's graph: one aten op, the bias inside it."""
    ours = xcorr.Conv2DTranspose(3, in_channels=2, out_channels=4, stride=2, padding=1, output_padding=1,
                                 backend="torch", dtype="float64")  # fmt: skip
    theirs = torch.nn.ConvTranspose2d(2, 4, 3, stride=2, padding=1, output_padding=1, dtype=torch.float64)
    theirs.load_state_dict(ours.state_dict())
    x = torch.asarray(np.random.default_rng(20).standard_normal((1, 2, 5, 4)))

    def ops(model):
        return [str(n.target) for n in torch.export.export(model, (x,)).graph.nodes if n.op == "call_function"]

    assert ops(ours) == ops(theirs)
    torch.testing.assert_close(ours(x), theirs(x), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(("name", "padding"), [("SAME", ((0, 1), (0, 0))), ("valid", 0)])
def test_string_padding_on_every_backend(backend, name, padding):
    # A 3x2 kernel at stride 2: "SAME" crops max(3 - 2, 0) = 1 row after (H * 2 rows, W * 2
    # columns), "VALID" nothing; neither needs an output_padding (the spans reach the stride).
    # The oracle: torch's uncropped transposed convolution, cropped by the expected padding.
    x, w = operands(groups=2)
    full = torch_transpose(x, w, stride=2, groups=2)
    (top, bottom), (left, right) = ((padding, padding), (padding, padding)) if isinstance(padding, int) else padding
    want = full[..., top : full.shape[-2] - bottom, left : full.shape[-1] - right]
    assert want.shape[-2:] == ((8, 10) if name == "SAME" else (9, 10))
    xb = backend.asarray(x)
    y = xcorr.conv_transpose2d(xb, backend.asarray(w), stride=2, groups=2, padding=name)
    assert_result(backend, y, want, "float64", like=xb)
