"""The 1-D and 3-D transposed layers (xcorr.Conv1DTranspose, xcorr.Conv3DTranspose) on every backend;
torch.nn.ConvTranspose1d / ConvTranspose3d with copied weights (float64) as the references."""

from __future__ import annotations

import numpy as np
import pytest

import xcorr

from matrix import TOL, layout, require_module

torch = require_module("torch")
F = torch.nn.functional

LAYERS = {1: xcorr.Conv1DTranspose, 3: xcorr.Conv3DTranspose}
MODULES = {1: torch.nn.ConvTranspose1d, 3: torch.nn.ConvTranspose3d}
FUNCTIONS = {1: F.conv_transpose1d, 3: F.conv_transpose3d}
KERNELS = {1: 3, 3: (2, 3, 2)}
SHAPES = {1: (2, 4, 7), 3: (2, 4, 3, 4, 3)}


def layer_for(backend, dims, *args, **kwargs):
    """A ``dims``-D transposed layer whose parameters live on ``backend`` (a matrix entry)."""
    name = {"torch_cuda": "torch", "jax_gpu": "jax"}.get(backend.name, backend.name)
    layer = LAYERS[dims](*args, backend=name, **kwargs)
    if backend.name == "torch_cuda":
        layer = layer.to("cuda")
    if backend.name == "jax_gpu":
        import jax

        layer = jax.device_put(layer, jax.devices("gpu")[0])
    return layer


def gradients(backend, layer, x, g):
    """``(y, gx, gw, gb)`` of ``layer`` at input ``x`` and output gradient ``g`` as NumPy arrays; ``gx``
    is None on the array layers (their ``grad`` gives the parameters' gradients only)."""
    xb, gb_ = backend.asarray(x), backend.asarray(g)
    if backend.name.startswith("torch"):
        xt = xb.clone().requires_grad_(True)
        layer.zero_grad()
        y = layer(xt)
        (y * gb_).sum().backward()
        bias = None if layer.bias is None else layer.bias.grad
        return tuple(None if a is None else backend.to_numpy(a.detach()) for a in (y, xt.grad, layer.weight.grad, bias))
    if backend.name.startswith("jax"):
        import jax

        glayer, gx = jax.grad(lambda layer, x: (layer(x) * gb_).sum(), argnums=(0, 1))(layer, xb)
        bias = None if glayer.bias is None else backend.to_numpy(glayer.bias)
        return backend.to_numpy(layer(xb)), backend.to_numpy(gx), backend.to_numpy(glayer.weight), bias
    grads = layer.grad(xb, gb_)
    bias = None if grads["bias"] is None else backend.to_numpy(grads["bias"])
    return backend.to_numpy(layer(xb)), None, backend.to_numpy(grads["weight"]), bias


def _pairs(padding, dims):
    """torch's int (or one per axis) or xcorr's ``(before, after)`` pairs, as one pair per axis."""
    if dims == 1 and isinstance(padding, tuple):
        return [padding]
    items = padding if isinstance(padding, tuple) else (padding,) * dims
    return [p if isinstance(p, tuple) else (p, p) for p in items]


def torch_reference(x, weight, bias, g, *, stride=1, padding=0, output_padding=0, dilation=1, groups=1):
    """``(y, gx, gw, gb)`` of ``nn.ConvTranspose1d`` / ``ConvTranspose3d`` holding ``weight`` and ``bias``;
    an asymmetric padding (pairs, which torch's modules do not take) crops ``F.conv_transpose``'s
    uncropped output, extended by ``output_padding`` at the end, by hand."""
    dims = x.ndim - 2
    xt = torch.tensor(x, requires_grad=True)
    pairs = _pairs(padding, dims)
    if all(a == b for a, b in pairs):
        module = MODULES[dims](
            weight.shape[0], weight.shape[1] * groups, weight.shape[2:], stride=stride, padding=[a for a, _ in pairs],
            output_padding=output_padding, dilation=dilation, groups=groups, bias=bias is not None,
            dtype=torch.float64,
        )  # fmt: skip
        with torch.no_grad():
            module.weight.copy_(torch.tensor(weight))
            if bias is not None:
                module.bias.copy_(torch.tensor(bias))
        y = module(xt)
        w, b = module.weight, module.bias
    else:
        w = torch.tensor(weight, requires_grad=True)
        b = None if bias is None else torch.tensor(bias, requires_grad=True)
        full = FUNCTIONS[dims](xt, w, None, stride=stride, dilation=dilation, groups=groups)
        ops = output_padding if isinstance(output_padding, tuple) else (output_padding,) * dims
        extend = [v for op in reversed(ops) for v in (0, op)]
        y = F.pad(full, extend)[(..., *(slice(lo, n - hi) for (lo, hi), n in zip(pairs, F.pad(full, extend).shape[2:])))]
        if b is not None:
            y = y + b.reshape((-1,) + (1,) * dims)
    (y * torch.tensor(g)).sum().backward()
    gb = None if b is None else b.grad.numpy()
    return y.detach().numpy(), xt.grad.numpy(), w.grad.numpy(), gb


CASES = [
    (1, {}),
    (1, {"stride": 2, "padding": 1, "output_padding": 1}),
    (1, {"stride": 3, "dilation": 2, "padding": (2, 0), "groups": 2, "bias": False}),
    (1, {"stride": 2, "dilation": 2, "output_padding": 1, "groups": 2}),
    (3, {}),
    (3, {"stride": (1, 2, 2), "padding": (0, 1, 1), "output_padding": (0, 1, 0), "groups": 2}),
    (3, {"stride": 2, "dilation": (1, 2, 1), "padding": ((1, 0), (0, 2), (1, 1)), "bias": False}),
]


@pytest.mark.parametrize(("dims", "options"), CASES, ids=lambda v: repr(v).replace(" ", ""))
def test_matches_torch_conv_transpose_forward_and_gradients(backend, dims, options):
    rng = np.random.default_rng(dims)
    layer = layer_for(backend, dims, KERNELS[dims], in_channels=4, out_channels=6, dtype="float64", seed=5, **options)
    weight = backend.to_numpy(layer.weight)
    bias = None if layer.bias is None else backend.to_numpy(layer.bias)
    kernel = (KERNELS[dims],) if dims == 1 else KERNELS[dims]
    assert weight.shape == (4, 6 // options.get("groups", 1), *kernel)
    x = rng.standard_normal(SHAPES[dims])
    dims_options = {k: v for k, v in options.items() if k != "bias"}
    y_ref = torch_reference(x, weight, bias, np.zeros(1), **dims_options)[0]
    g = rng.standard_normal(y_ref.shape)
    expected = torch_reference(x, weight, bias, g, **dims_options)
    got = gradients(backend, layer, x, g)
    assert tuple(layer.spec.output_shape(backend.asarray(x), layer.weight)) == y_ref.shape
    for name, a, b in zip(("y", "gx", "gw", "gb"), got, expected, strict=True):
        if a is None or b is None:
            assert name == "gx" or (a is None and b is None), name
            continue
        np.testing.assert_allclose(a, b, **TOL, err_msg=name)


@pytest.mark.parametrize("dims", [1, 3])
def test_channels_last_is_channels_first_transposed(backend, dims):
    rng = np.random.default_rng(0)
    kwargs = {"in_channels": 2, "out_channels": 4, "stride": 2, "padding": "same", "dtype": "float64"}
    first = layer_for(backend, dims, 2, **kwargs)
    last = layer_for(backend, dims, 2, data_format="channels_last", **kwargs)
    x = rng.standard_normal((*SHAPES[dims][:1], 2, *SHAPES[dims][2:]))
    y_first = backend.to_numpy(first(backend.asarray(x)))
    assert y_first.shape[2:] == tuple(2 * n for n in x.shape[2:])  # "SAME": the input's size times the stride
    y_last = backend.to_numpy(last(backend.asarray(layout(x, True))))
    np.testing.assert_allclose(y_last, layout(y_first, True), **TOL)
    g = rng.standard_normal(y_first.shape)
    got = gradients(backend, last, layout(x, True), layout(g, True))
    ref = gradients(backend, first, x, g)
    if got[1] is not None:  # the input gradient, channels-last
        np.testing.assert_allclose(got[1], layout(ref[1], True), **TOL)
    np.testing.assert_allclose(got[2], ref[2], **TOL)  # the weight keeps torch's layout
    np.testing.assert_allclose(got[3], ref[3], **TOL)


@pytest.mark.parametrize("dims", [1, 3])
def test_initial_parameters_are_torchs_distribution_and_the_same_everywhere(backend, dims):
    layer = layer_for(backend, dims, 3, in_channels=4, out_channels=6, groups=2, seed=7)
    weight, bias = backend.to_numpy(layer.weight), backend.to_numpy(layer.bias)
    assert weight.shape == (4, 3, *(3,) * dims) and bias.shape == (6,) and weight.dtype == np.float32
    bound = 1 / np.sqrt(3 * 3**dims)  # torch's fan_in of the transposed weight: out_channels // groups * prod(k)
    native = MODULES[dims](4, 6, 3, groups=2)
    assert native.weight.abs().max() <= bound and native.bias.abs().max() <= bound  # torch's own bound
    assert np.abs(weight).max() <= bound and np.abs(bias).max() <= bound
    assert np.abs(weight).max() > 0.8 * bound
    numpy_layer = LAYERS[dims](3, in_channels=4, out_channels=6, groups=2, seed=7, backend="numpy")
    np.testing.assert_array_equal(weight, numpy_layer.weight)
    forward = {1: xcorr.Conv1D, 3: xcorr.Conv3D}[dims]
    assert isinstance(layer, LAYERS[dims]) and isinstance(layer, forward) and not isinstance(layer, xcorr.Conv2D)
    assert (layer.mode, layer.boundary, layer.groups) == ("valid", "fill", 2)


def test_trains_with_fit(backend):
    # the 1-D layer on every backend (the same losses: the same start and gradients), the 3-D one on numpy
    rng = np.random.default_rng(1)
    kwargs = {"in_channels": 2, "out_channels": 2, "stride": 2, "dtype": "float64"}
    for dims, lr in ((1, 0.01), (3, 0.001)):
        if dims == 3 and backend.name != "numpy":
            continue
        x = rng.standard_normal((*SHAPES[dims][:1], 2, *SHAPES[dims][2:]))
        y = LAYERS[dims](2, backend="numpy", seed=1, **kwargs)(x)
        layer = layer_for(backend, dims, 2, seed=2, **kwargs)
        trained, losses = xcorr.fit(layer, backend.asarray(x), backend.asarray(y), lr=lr, steps=30)
        assert losses[-1] < 0.1 * losses[0], (dims, losses)
        assert isinstance(trained, LAYERS[dims]) and trained.spec == layer.spec


@pytest.mark.parametrize("dims", [1, 3])
def test_same_and_valid_are_the_functions_names_resolved(dims):
    rng = np.random.default_rng(2)
    function = {1: xcorr.conv_transpose1d, 3: xcorr.conv_transpose3d}[dims]
    x = rng.standard_normal(SHAPES[dims])
    for padding, stride, dilation in (("SAME", 2, 1), ("same", 3, 1), ("VALID", 2, 2), ("SAME", 1, 2)):
        layer = LAYERS[dims](3, in_channels=4, out_channels=2, stride=stride, dilation=dilation, padding=padding,
                             backend="numpy", dtype="float64")  # fmt: skip
        expected = function(x, layer.weight, bias=layer.bias, stride=stride, dilation=dilation, padding=padding)
        np.testing.assert_allclose(layer(x), expected, **TOL)
        assert not isinstance(layer.padding, str)


# --- torch: modules interchangeable with nn.ConvTranspose1d / nn.ConvTranspose3d -------------


@pytest.mark.parametrize("dims", [1, 3])
def test_torch_state_dict_loads_both_ways_and_trains_with_an_optimizer(dims):
    options = {"stride": 2, "padding": 1, "output_padding": 1, "groups": 2, "dilation": 1}
    ref = MODULES[dims](4, 6, 3, dtype=torch.float64, **options)
    layer = LAYERS[dims](3, in_channels=4, out_channels=6, backend="torch", dtype="float64", **options)
    assert isinstance(layer, torch.nn.Module) and isinstance(layer, LAYERS[dims])
    assert sorted(layer.state_dict()) == ["bias", "weight"]
    layer.load_state_dict(ref.state_dict())
    x = torch.randn(*SHAPES[dims], dtype=torch.float64)
    torch.testing.assert_close(layer(x), ref(x), rtol=1e-12, atol=1e-12)
    other = MODULES[dims](4, 6, 3, dtype=torch.float64, **options)
    other.load_state_dict(LAYERS[dims](3, in_channels=4, out_channels=6, backend="torch", dtype="float64", seed=9,
                                       **options).state_dict())  # fmt: skip
    torch.testing.assert_close(other(x), LAYERS[dims](3, in_channels=4, out_channels=6, backend="torch",
                                                      dtype="float64", seed=9, **options)(x))  # fmt: skip
    optimizer = torch.optim.SGD(layer.parameters(), lr=1e-3)
    loss = layer(x).square().sum()
    loss.backward()
    optimizer.step()
    assert layer(x).square().sum() < loss
    assert f"Conv{dims}DTranspose(" in repr(layer) and "output_padding=" in repr(layer)
    with pytest.raises(TypeError, match=r"expected a torch\.Tensor"):
        layer(np.ones(SHAPES[dims]))
    with pytest.raises(RuntimeError, match="should be the same"):
        layer(torch.ones(SHAPES[dims]))


# --- jax: pytrees ------------------------------------------------------------------------


@pytest.mark.parametrize("dims", [1, 3])
def test_jax_layer_is_a_pytree_under_jit_and_grad_and_a_flax_state(dims):
    jax = require_module("jax")
    layer = LAYERS[dims](2, in_channels=2, out_channels=3, stride=2, padding="same", backend="jax", dtype="float64")
    assert len(jax.tree_util.tree_leaves(layer)) == 2
    x = jax.numpy.ones((*SHAPES[dims][:1], 2, *SHAPES[dims][2:]))
    y = jax.jit(lambda layer, x: layer(x))(layer, x)
    np.testing.assert_allclose(np.asarray(y), np.asarray(layer(x)), rtol=1e-12)
    grads = jax.jit(jax.grad(lambda layer: (layer(x) ** 2).sum()))(layer)
    assert type(grads) is type(layer) and grads.weight.shape == (2, 3, *(2,) * dims)
    expected = gradients(_Numpy(), LAYERS[dims](2, in_channels=2, out_channels=3, stride=2, padding="same",
                                               backend="numpy", dtype="float64"), np.asarray(x), 2 * np.asarray(y))  # fmt: skip
    np.testing.assert_allclose(np.asarray(grads.weight), expected[2], **TOL)
    np.testing.assert_allclose(np.asarray(grads.bias), expected[3], **TOL)
    with pytest.raises(AttributeError, match="immutable"):
        layer.weight = None
    serialization = require_module("flax.serialization")
    other = LAYERS[dims](2, in_channels=2, out_channels=3, stride=2, padding="same", backend="jax", seed=2,
                         dtype="float64")  # fmt: skip
    assert sorted(serialization.to_state_dict(layer)) == ["bias", "weight"]
    restored = serialization.from_bytes(other, serialization.to_bytes(layer))
    assert type(restored) is type(layer) and restored.spec == layer.spec
    np.testing.assert_array_equal(np.asarray(restored.weight), np.asarray(layer.weight))


class _Numpy:
    """The numpy entry of the matrix, for ``gradients``."""

    name = "numpy"

    @staticmethod
    def asarray(a):
        return np.asarray(a)

    @staticmethod
    def to_numpy(a):
        return np.asarray(a)


# --- errors ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dims", "kwargs", "error", "match"),
    [
        (1, {"kernel_size": 0}, ValueError, "kernel_size"),
        (1, {"kernel_size": (2, 2)}, ValueError, "kernel_size"),
        (1, {"kernel_size": "3"}, TypeError, "kernel_size"),
        (1, {"stride": 0}, ValueError, "stride"),
        (1, {"dilation": (1, 2)}, ValueError, "dilation"),
        (1, {"padding": "causal"}, ValueError, "padding"),
        (1, {"padding": (1, 2, 3)}, ValueError, "padding"),
        (1, {"padding": -1}, ValueError, "padding"),
        (1, {"output_padding": 2, "stride": 2}, ValueError, "output_padding"),
        (1, {"output_padding": 1, "padding": "same", "stride": 2}, ValueError, "output_padding"),
        (1, {"output_padding": (1, 1)}, ValueError, "output_padding"),
        (1, {"in_channels": None}, TypeError, "Conv1DTranspose needs in_channels and out_channels"),
        (1, {"out_channels": 3, "groups": 2}, ValueError, "groups=2 must divide"),
        (1, {"mode": "same"}, TypeError, "mode"),
        (1, {"data_format": "NCW"}, ValueError, "data_format"),
        (1, {"bias": 1}, TypeError, "bias"),
        (1, {"dtype": "int32"}, ValueError, "dtype"),
        (3, {"kernel_size": (2, 2)}, ValueError, "kernel_size"),
        (3, {"kernel_size": 2.5}, TypeError, "kernel_size"),
        (3, {"stride": (1, 0, 1)}, ValueError, "stride"),
        (3, {"padding": (1, 2)}, ValueError, "padding"),
        (3, {"padding": "full"}, ValueError, "padding"),
        (3, {"output_padding": (0, 1, 0)}, ValueError, "output_padding"),
        (3, {"in_channels": 0}, ValueError, "in_channels"),
        (3, {"boundary": "wrap"}, TypeError, "boundary"),
        (3, {"backend": "bogus"}, ValueError, "backend"),
    ],
)
def test_bad_hyper_parameters_are_refused_naming_them(dims, kwargs, error, match):
    kwargs = {"kernel_size": 3, "in_channels": 2, "out_channels": 4, "backend": "numpy", **kwargs}
    with pytest.raises(error, match=match):
        LAYERS[dims](kwargs.pop("kernel_size"), **kwargs)


@pytest.mark.parametrize("dims", [1, 3])
def test_torch_habits_and_bad_inputs_are_refused(dims):
    cls = LAYERS[dims]
    with pytest.raises(TypeError, match=rf"nn\.ConvTranspose{dims}d's order is in_channels.*xcorr\.Conv{dims}DTranspose\(3, in_channels=2, out_channels=8\)"):
        cls(2, 8, 3)
    with pytest.raises(TypeError, match=rf"drop it.*xcorr\.Conv{dims}DTranspose\(3, in_channels=2"):
        cls(3, in_channels=2, out_channels=8, padding_mode="zeros")
    with pytest.raises(ValueError, match=rf"nn\.ConvTranspose{dims}d's only one"):
        cls(3, in_channels=2, out_channels=8, padding_mode="reflect")
    layer = cls(3, in_channels=2, out_channels=4, backend="numpy")
    with pytest.raises(ValueError, match="channels"):
        layer(np.ones((1, 3, *(5,) * dims), dtype=np.float32))
    with pytest.raises(ValueError, match="shape"):
        layer(np.ones((1, 1, 2, *(5,) * dims), dtype=np.float32))
