"""The 1-D and 3-D layers (xcorr.Conv1D, xcorr.Conv3D) on every backend; torch.nn.Conv1d and
torch.nn.Conv3d with copied weights as the references."""

from __future__ import annotations

import numpy as np
import pytest

import xcorr

from matrix import require_module

torch = require_module("torch")
F = torch.nn.functional


def layer_for(backend, *args, cls=None, **kwargs):
    """A layer whose parameters live on ``backend`` (a matrix entry)."""
    name = {"torch_cuda": "torch", "jax_gpu": "jax"}.get(backend.name, backend.name)
    layer = (cls or xcorr.Conv1D)(*args, backend=name, **kwargs)
    if backend.name == "torch_cuda":
        layer = layer.to("cuda")
    if backend.name == "jax_gpu":
        import jax

        layer = jax.device_put(layer, jax.devices("gpu")[0])
    return layer


def gradients(backend, layer, x, g):
    """``(y, gx, gw, gb)`` of ``layer`` at input ``x`` and output gradient ``g`` (NumPy arrays), as
    NumPy arrays; ``gx`` is None where the layer gives no input gradient (the array layers)."""
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

        def loss(layer, x):
            return (layer(x) * gb_).sum()

        glayer, gx = jax.grad(loss, argnums=(0, 1))(layer, xb)
        bias = None if glayer.bias is None else backend.to_numpy(glayer.bias)
        return backend.to_numpy(layer(xb)), backend.to_numpy(gx), backend.to_numpy(glayer.weight), bias
    grads = layer.grad(xb, gb_)
    bias = None if grads["bias"] is None else backend.to_numpy(grads["bias"])
    return backend.to_numpy(layer(xb)), None, backend.to_numpy(grads["weight"]), bias


def torch_reference(x, weight, bias, g, *, pad, padding_mode="zeros", stride=1, dilation=1, groups=1):
    """``(y, gx, gw, gb)`` of ``F.conv1d`` (``F.conv3d`` for a 5-D ``x``) on ``x`` padded by ``pad``
    (``F.pad``'s order: the last axis first) with ``padding_mode``."""
    xt = torch.tensor(x, requires_grad=True)
    w = torch.tensor(weight, requires_grad=True)
    b = None if bias is None else torch.tensor(bias, requires_grad=True)
    mode = {"zeros": "constant"}.get(padding_mode, padding_mode)
    xp = F.pad(xt, pad, mode=mode) if any(pad) else xt
    conv = F.conv3d if x.ndim == 5 else F.conv1d
    y = conv(xp, w, b, stride=stride, dilation=dilation, groups=groups)
    (y * torch.tensor(g)).sum().backward()
    gb = None if b is None else b.grad.numpy()
    return y.detach().numpy(), xt.grad.numpy(), w.grad.numpy(), gb


# (layer keywords, the torch padding (left, right) and padding_mode), kernel 3 unless given
CASES = [
    ({}, (0, 0), "zeros"),
    ({"padding": 2}, (2, 2), "zeros"),
    ({"padding": (1, 3), "stride": 2}, (1, 3), "zeros"),
    ({"padding": "causal", "dilation": 2}, (4, 0), "zeros"),
    ({"padding": "causal", "stride": 3, "groups": 2}, (2, 0), "zeros"),
    ({"padding": "same"}, (1, 1), "zeros"),
    ({"padding": "VALID", "stride": 2, "dilation": 2}, (0, 0), "zeros"),
    ({"mode": "same", "boundary": "reflect"}, (1, 1), "reflect"),
    ({"padding": 2, "boundary": "wrap", "groups": 2}, (2, 2), "circular"),
    ({"padding": (0, 2), "boundary": "edge", "bias": False}, (0, 2), "replicate"),
    ({"mode": "full"}, (2, 2), "zeros"),
]


@pytest.mark.parametrize(("options", "pad", "padding_mode"), CASES, ids=lambda v: repr(v).replace(" ", ""))
def test_conv1d_matches_torch_conv1d_forward_and_gradients(backend, options, pad, padding_mode):
    rng = np.random.default_rng(3)
    layer = layer_for(backend, 3, in_channels=4, out_channels=6, dtype="float64", seed=5, **options)
    weight = backend.to_numpy(layer.weight)
    bias = None if layer.bias is None else backend.to_numpy(layer.bias)
    assert weight.shape == (6, 4 // options.get("groups", 1), 3)
    x = rng.standard_normal((2, 4, 13))
    dims = {k: options[k] for k in ("stride", "dilation", "groups") if k in options}
    y_ref = torch_reference(x, weight, bias, np.zeros(1), pad=pad, padding_mode=padding_mode, **dims)[0]
    g = rng.standard_normal(y_ref.shape)
    expected = torch_reference(x, weight, bias, g, pad=pad, padding_mode=padding_mode, **dims)
    got = gradients(backend, layer, x, g)
    assert tuple(layer.spec.output_shape(backend.asarray(x), layer.weight)) == y_ref.shape
    for name, a, b in zip(("y", "gx", "gw", "gb"), got, expected, strict=True):
        if a is None or b is None:
            assert name == "gx" or (a is None and b is None), name
            continue
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-10, err_msg=name)


def test_conv1d_channels_last_is_channels_first_transposed(backend):
    rng = np.random.default_rng(0)
    first = layer_for(backend, 2, in_channels=3, out_channels=4, padding="causal", dtype="float64")
    last = layer_for(backend, 2, in_channels=3, out_channels=4, padding="causal", dtype="float64", data_format="channels_last")
    x = rng.standard_normal((2, 3, 9))
    y_first = backend.to_numpy(first(backend.asarray(x)))
    y_last = backend.to_numpy(last(backend.asarray(np.moveaxis(x, 1, 2))))
    np.testing.assert_allclose(np.moveaxis(y_last, 2, 1), y_first, rtol=1e-12, atol=1e-12)
    g = rng.standard_normal(y_last.shape)
    got = gradients(backend, last, np.moveaxis(x, 1, 2), g)
    ref = gradients(backend, first, x, np.moveaxis(g, 2, 1))
    np.testing.assert_allclose(got[2], ref[2], rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(got[3], ref[3], rtol=1e-10, atol=1e-10)


def test_conv1d_initial_parameters_are_torchs_distribution_and_the_same_everywhere(backend):
    layer = layer_for(backend, 5, in_channels=6, out_channels=9, groups=3, seed=7)
    weight, bias = backend.to_numpy(layer.weight), backend.to_numpy(layer.bias)
    assert weight.shape == (9, 2, 5) and bias.shape == (9,) and weight.dtype == np.float32
    bound = 1 / np.sqrt(2 * 5)  # fan_in = in_channels // groups * l
    assert np.abs(weight).max() <= bound and np.abs(bias).max() <= bound
    assert np.abs(weight).max() > 0.8 * bound
    numpy_layer = xcorr.Conv1D(5, in_channels=6, out_channels=9, groups=3, seed=7, backend="numpy")
    np.testing.assert_array_equal(weight, numpy_layer.weight)
    assert isinstance(layer, xcorr.Conv1D) and not isinstance(layer, xcorr.Conv2D)


def test_conv1d_trains_with_fit(backend):
    rng = np.random.default_rng(1)
    target = xcorr.Conv1D(3, in_channels=2, out_channels=2, padding="same", backend="numpy", dtype="float64", seed=1)
    x = rng.standard_normal((4, 2, 20))
    y = target(x)
    layer = layer_for(backend, 3, in_channels=2, out_channels=2, padding="same", dtype="float64", seed=2)
    layer, losses = xcorr.fit(layer, backend.asarray(x), backend.asarray(y), lr=0.005, steps=40)
    assert losses[-1] < 0.05 * losses[0]


# --- torch: a module interchangeable with nn.Conv1d -------------------------------


def test_torch_conv1d_state_dict_loads_both_ways_and_trains_with_an_optimizer():
    ref = torch.nn.Conv1d(4, 6, 3, stride=2, padding=1, groups=2, dtype=torch.float64)
    layer = xcorr.Conv1D(3, in_channels=4, out_channels=6, stride=2, padding=1, groups=2, backend="torch", dtype="float64")
    assert isinstance(layer, torch.nn.Module) and isinstance(layer, xcorr.Conv1D)
    layer.load_state_dict(ref.state_dict())
    x = torch.randn(3, 4, 11, dtype=torch.float64)
    torch.testing.assert_close(layer(x), ref(x), rtol=1e-12, atol=1e-12)
    other = torch.nn.Conv1d(4, 6, 3, stride=2, padding=1, groups=2, dtype=torch.float64)
    other.load_state_dict(xcorr.Conv1D(3, in_channels=4, out_channels=6, stride=2, padding=1, groups=2,
                                       backend="torch", dtype="float64", seed=9).state_dict())  # fmt: skip
    assert sorted(layer.state_dict()) == ["bias", "weight"]
    optimizer = torch.optim.SGD(layer.parameters(), lr=1e-3)
    loss = layer(x).square().sum()
    loss.backward()
    optimizer.step()
    assert layer(x).square().sum() < loss
    assert "Conv1D(3, in_channels=4, out_channels=6" in repr(layer)
    with pytest.raises(TypeError, match=r"expected a torch\.Tensor"):
        layer(np.ones((1, 4, 5)))
    with pytest.raises(RuntimeError, match="should be the same"):
        layer(torch.ones(1, 4, 5))


def test_torch_conv1d_in_a_sequential_model():
    model = torch.nn.Sequential(
        xcorr.Conv1D(3, in_channels=1, out_channels=4, padding="causal", backend="torch"),
        torch.nn.ReLU(),
        xcorr.Conv1D(3, in_channels=4, out_channels=1, padding="causal", dilation=2, backend="torch"),
    )
    y = model(torch.ones(2, 1, 16))
    assert y.shape == (2, 1, 16)


def _two_branch_model(conv1d, conv1d_t, conv3d, conv3d_t):
    """A signal branch (Conv1d with reflect padding, ConvTranspose1d) and a volume branch (grouped
    Conv3d, ConvTranspose3d with output_padding), made by constructors of nn.Conv*'s signature."""

    class TwoBranch(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.signal = torch.nn.Sequential(
                conv1d(3, 4, 3, padding=1, padding_mode="reflect"), torch.nn.ReLU(),
                conv1d_t(4, 2, 4, stride=2, padding=1, dilation=2),
            )  # fmt: skip
            self.volume = torch.nn.Sequential(
                conv3d(2, 4, 3, padding=1, groups=2), torch.nn.Tanh(),
                conv3d_t(4, 1, 2, stride=2, output_padding=1, bias=False),
            )  # fmt: skip

        def forward(self, signal, volume):
            return self.signal(signal).square().mean() + self.volume(volume).square().mean()

    return TwoBranch()


def _ported(name, **fixed):
    """``xcorr.<name>`` called as ``nn.Conv*(in, out, kernel_size, **options)`` (``padding_mode`` as
    ``boundary``)."""

    def make(c_in, c_out, kernel_size, *, padding_mode="zeros", **options):
        boundary = {"zeros": "fill", "reflect": "reflect"}[padding_mode]
        boundary_kw = {} if "Transpose" in name else {"boundary": boundary}
        return getattr(xcorr, name)(kernel_size, in_channels=c_in, out_channels=c_out, **boundary_kw, **options, **fixed)

    return make


def test_a_torch_model_of_conv1d_conv3d_and_their_transposes_ports_with_the_same_numbers():
    """nn.Conv1d, nn.ConvTranspose1d, nn.Conv3d and nn.ConvTranspose3d swapped for xcorr's layers:
    the model's state_dict loads as it is, and its loss and every gradient match in float64."""
    torch.manual_seed(0)
    theirs = _two_branch_model(torch.nn.Conv1d, torch.nn.ConvTranspose1d, torch.nn.Conv3d, torch.nn.ConvTranspose3d)
    theirs = theirs.double()
    fixed = {"backend": "torch", "dtype": "float64"}
    ours = _two_branch_model(*(_ported(n, **fixed) for n in ("Conv1D", "Conv1DTranspose", "Conv3D", "Conv3DTranspose")))
    assert [type(m).__name__ for m in ours.modules() if type(m).__module__.startswith("xcorr")] == [
        "Conv1D", "Conv1DTranspose", "Conv3D", "Conv3DTranspose",
    ]  # fmt: skip
    ours.load_state_dict(theirs.state_dict())
    signal, volume = torch.randn(2, 3, 9, dtype=torch.float64), torch.randn(2, 2, 5, 4, 5, dtype=torch.float64)
    losses, grads = [], []
    for model in (ours, theirs):
        inputs = [signal.clone().requires_grad_(True), volume.clone().requires_grad_(True)]
        loss = model(*inputs)
        loss.backward()
        losses.append(loss.detach())
        grads.append([a.grad for a in inputs] + [p.grad for _, p in sorted(model.named_parameters())])
    torch.testing.assert_close(losses[0], losses[1], rtol=1e-12, atol=1e-12)
    assert len(grads[0]) == len(grads[1]) == 2 + 7  # the inputs; 4 weights and 3 biases
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


# --- jax: a pytree -----------------------------------------------------------------


def test_jax_conv1d_is_a_pytree_under_jit_and_grad():
    jax = require_module("jax")
    layer = xcorr.Conv1D(3, in_channels=2, out_channels=3, padding="causal", backend="jax", dtype="float64")
    leaves = jax.tree_util.tree_leaves(layer)
    assert len(leaves) == 2
    x = jax.numpy.ones((2, 2, 7))
    y = jax.jit(lambda layer, x: layer(x))(layer, x)
    np.testing.assert_allclose(np.asarray(y), np.asarray(layer(x)), rtol=1e-12)
    grads = jax.jit(jax.grad(lambda layer: (layer(x) ** 2).sum()))(layer)
    assert type(grads) is type(layer) and grads.weight.shape == (3, 2, 3)
    new = layer.replace(bias=jax.numpy.zeros(3))
    assert new.spec == layer.spec and float(abs(new.bias).sum()) == 0
    with pytest.raises(AttributeError, match="immutable"):
        layer.weight = None


# --- errors ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"kernel_size": 0}, ValueError, "kernel_size"),
        ({"kernel_size": (2, 2)}, ValueError, "kernel_size"),
        ({"kernel_size": "3"}, TypeError, "kernel_size"),
        ({"kernel_size": True}, TypeError, "kernel_size"),
        ({"padding": "full"}, ValueError, "padding.*causal"),
        ({"padding": (1, 2, 3)}, ValueError, "padding"),
        ({"padding": -1}, ValueError, "padding"),
        ({"padding": "causal", "mode": "same"}, ValueError, "causal.*mode"),
        ({"padding": 1, "mode": "full"}, ValueError, "padding=1 and mode='full' conflict"),
        ({"in_channels": None}, TypeError, "in_channels and out_channels"),
        ({"in_channels": 0}, ValueError, "in_channels"),
        ({"out_channels": 3, "groups": 2}, ValueError, "groups=2 must divide"),
        ({"stride": 0}, ValueError, "stride"),
        ({"dilation": (1, 2)}, ValueError, "dilation"),
        ({"mode": "sam"}, ValueError, "mode"),
        ({"boundary": "bogus"}, ValueError, "boundary"),
        ({"data_format": "NCW"}, ValueError, "data_format"),
        ({"bias": 1}, TypeError, "bias"),
    ],
)
def test_conv1d_refuses_bad_hyper_parameters_naming_them(kwargs, error, match):
    kwargs = {"kernel_size": 3, "in_channels": 2, "out_channels": 4, **kwargs}
    with pytest.raises(error, match=match):
        xcorr.Conv1D(kwargs.pop("kernel_size"), backend="numpy", **kwargs)


def test_conv1d_refuses_inputs_of_the_wrong_shape():
    layer = xcorr.Conv1D(3, in_channels=2, out_channels=4, backend="numpy")
    with pytest.raises(ValueError, match="C_in"):
        layer(np.ones((1, 2, 3, 8), dtype=np.float32))
    with pytest.raises(ValueError, match="channels"):
        layer(np.ones((1, 3, 8), dtype=np.float32))
    with pytest.raises(ValueError, match="larger than x"):
        layer(np.ones((1, 2, 2), dtype=np.float32))


# --- Conv3D -------------------------------------------------------------------------

# (layer keywords, F.pad's padding (w, w, h, h, d, d) and padding_mode), kernel (2, 3, 3)
CASES_3D = [
    ({}, (0,) * 6, "zeros"),
    ({"padding": 1}, (1,) * 6, "zeros"),
    ({"padding": (0, 1, (1, 2)), "stride": (1, 2, 2)}, (1, 2, 1, 1, 0, 0), "zeros"),
    ({"padding": "same"}, (1, 1, 1, 1, 0, 1), "zeros"),
    ({"mode": "full", "dilation": (1, 2, 1)}, (2, 2, 4, 4, 1, 1), "zeros"),
    ({"padding": 1, "boundary": "wrap", "groups": 2}, (1,) * 6, "circular"),
    ({"padding": (1, 1, 1), "boundary": "edge", "bias": False, "stride": 2}, (1,) * 6, "replicate"),
    ({"mode": "same", "boundary": "reflect"}, (1, 1, 1, 1, 1, 0), "reflect"),
]


@pytest.mark.parametrize(("options", "pad", "padding_mode"), CASES_3D, ids=lambda v: repr(v).replace(" ", ""))
def test_conv3d_matches_torch_conv3d_forward_and_gradients(backend, options, pad, padding_mode):
    rng = np.random.default_rng(4)
    layer = layer_for(backend, (2, 3, 3), cls=xcorr.Conv3D, in_channels=4, out_channels=6, dtype="float64", **options)
    weight = backend.to_numpy(layer.weight)
    bias = None if layer.bias is None else backend.to_numpy(layer.bias)
    assert weight.shape == (6, 4 // options.get("groups", 1), 2, 3, 3)
    x = rng.standard_normal((2, 4, 5, 6, 7))
    dims = {k: options[k] for k in ("stride", "dilation", "groups") if k in options}
    y_ref = torch_reference(x, weight, bias, np.zeros(1), pad=pad, padding_mode=padding_mode, **dims)[0]
    g = rng.standard_normal(y_ref.shape)
    expected = torch_reference(x, weight, bias, g, pad=pad, padding_mode=padding_mode, **dims)
    got = gradients(backend, layer, x, g)
    assert tuple(layer.spec.output_shape(backend.asarray(x), layer.weight)) == y_ref.shape
    for name, a, b in zip(("y", "gx", "gw", "gb"), got, expected, strict=True):
        if a is None or b is None:
            assert name == "gx" or (a is None and b is None), name
            continue
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-10, err_msg=name)


def test_conv3d_channels_last_initial_parameters_and_fit(backend):
    rng = np.random.default_rng(0)
    kwargs = {"in_channels": 2, "out_channels": 3, "padding": 1, "dtype": "float64", "seed": 3}
    first = layer_for(backend, 3, cls=xcorr.Conv3D, **kwargs)
    last = layer_for(backend, 3, cls=xcorr.Conv3D, data_format="channels_last", **kwargs)
    weight = backend.to_numpy(first.weight)
    bound = 1 / np.sqrt(2 * 27)  # fan_in = in_channels // groups * kd * kh * kw
    assert np.abs(weight).max() <= bound < 1.25 * np.abs(weight).max()
    np.testing.assert_array_equal(weight, xcorr.Conv3D(3, backend="numpy", **kwargs).weight)
    x = rng.standard_normal((2, 2, 4, 5, 6))
    y_first = backend.to_numpy(first(backend.asarray(x)))
    y_last = backend.to_numpy(last(backend.asarray(np.moveaxis(x, 1, -1))))
    np.testing.assert_allclose(np.moveaxis(y_last, -1, 1), y_first, rtol=1e-12, atol=1e-12)
    target = xcorr.Conv3D(3, backend="numpy", **{**kwargs, "seed": 9})(x)
    trained, losses = xcorr.fit(first, backend.asarray(x), backend.asarray(target), lr=0.002, steps=20)
    assert losses[-1] < 0.2 * losses[0]
    assert isinstance(trained, xcorr.Conv3D) and not isinstance(trained, xcorr.Conv1D)


def test_torch_conv3d_state_dict_loads_both_ways():
    ref = torch.nn.Conv3d(2, 4, (1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1), dtype=torch.float64)
    layer = xcorr.Conv3D((1, 3, 3), in_channels=2, out_channels=4, stride=(1, 2, 2), padding=(0, 1, 1),
                         backend="torch", dtype="float64")  # fmt: skip
    assert isinstance(layer, torch.nn.Module) and isinstance(layer, xcorr.Conv3D)
    layer.load_state_dict(ref.state_dict())
    x = torch.randn(2, 2, 3, 8, 8, dtype=torch.float64)
    torch.testing.assert_close(layer(x), ref(x), rtol=1e-12, atol=1e-12)
    ref.load_state_dict(xcorr.Conv3D((1, 3, 3), in_channels=2, out_channels=4, backend="torch", dtype="float64",
                                     seed=4).state_dict())  # fmt: skip
    assert "Conv3D((1, 3, 3), in_channels=2, out_channels=4" in repr(layer)


def test_jax_conv3d_is_a_pytree_under_jit_and_grad():
    jax = require_module("jax")
    layer = xcorr.Conv3D(2, in_channels=1, out_channels=2, padding="same", backend="jax", dtype="float64")
    x = jax.numpy.ones((1, 1, 3, 4, 5))
    grads = jax.jit(jax.grad(lambda layer: (layer(x) ** 2).sum()))(layer)
    assert type(grads) is type(layer) and grads.weight.shape == (2, 1, 2, 2, 2)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"kernel_size": 0}, ValueError, "kernel_size"),
        ({"kernel_size": (2, 2)}, ValueError, "kernel_size"),
        ({"kernel_size": 2.5}, TypeError, "kernel_size"),
        ({"padding": "causal"}, ValueError, "padding"),
        ({"padding": (1, 2)}, ValueError, "padding"),
        ({"padding": 1, "mode": "same"}, ValueError, "conflict"),
        ({"in_channels": None}, TypeError, "in_channels and out_channels"),
        ({"out_channels": 3, "groups": 2}, ValueError, "groups=2 must divide"),
        ({"stride": (1, 0, 1)}, ValueError, "stride"),
        ({"dilation": (1, 2)}, ValueError, "dilation"),
    ],
)
def test_conv3d_refuses_bad_hyper_parameters_naming_them(kwargs, error, match):
    kwargs = {"kernel_size": 3, "in_channels": 2, "out_channels": 4, **kwargs}
    with pytest.raises(error, match=match):
        xcorr.Conv3D(kwargs.pop("kernel_size"), backend="numpy", **kwargs)


def test_conv3d_refuses_inputs_of_the_wrong_shape():
    layer = xcorr.Conv3D(3, in_channels=2, out_channels=4, backend="numpy")
    with pytest.raises(ValueError, match="C_in"):
        layer(np.ones((2, 5, 5, 5), dtype=np.float32)[None, None])
    with pytest.raises(ValueError, match="depth"):
        layer(np.ones((1, 2, 2, 5, 5), dtype=np.float32))


@pytest.mark.parametrize("cls", ["Conv1D", "Conv3D"])
def test_jax_layers_round_trip_through_flax_state_dicts(cls):
    require_module("jax")
    serialization = require_module("flax.serialization")
    layer = getattr(xcorr, cls)(2, in_channels=2, out_channels=2, backend="jax", seed=1)
    other = getattr(xcorr, cls)(2, in_channels=2, out_channels=2, backend="jax", seed=2)
    state = serialization.to_state_dict(layer)
    assert sorted(state) == ["bias", "weight"]
    restored = serialization.from_bytes(other, serialization.to_bytes(layer))
    assert type(restored) is type(layer)
    np.testing.assert_array_equal(np.asarray(restored.weight), np.asarray(layer.weight))


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch's own imports while compiling
@pytest.mark.parametrize(
    ("cls", "shape"),
    [
        ("Conv1D", (2, 2, 10)),
        ("Conv3D", (2, 2, 4, 5, 6)),
        ("Conv1DTranspose", (2, 2, 10)),
        ("Conv3DTranspose", (2, 2, 4, 5, 6)),
    ],
)
def test_torch_compile_takes_the_layers_in_one_graph(cls, shape):
    layer = getattr(xcorr, cls)(3, in_channels=2, out_channels=3, padding=1, backend="torch", dtype="float64")
    x = torch.randn(*shape, dtype=torch.float64)
    y = torch.compile(layer, fullgraph=True, backend="aot_eager")(x)  # xcorr's 1-D/3-D functions are allowed in the graph
    y.square().sum().backward()
    compiled_grad = layer.weight.grad.clone()
    layer.weight.grad = None
    eager = layer(x)
    eager.square().sum().backward()
    torch.testing.assert_close(y, eager, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(compiled_grad, layer.weight.grad, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize(("cls", "module"), [("Conv1D", "nn.Conv1d"), ("Conv3D", "nn.Conv3d")])
def test_torch_and_keras_habits_are_refused_with_the_xcorr_call(cls, module):
    layer = getattr(xcorr, cls)
    with pytest.raises(TypeError, match=rf"{module}'s order is in_channels.*xcorr\.{cls}\(3, in_channels=2, out_channels=8\)"):
        layer(2, 8, 3)
    with pytest.raises(TypeError, match=rf"keras\.layers\.{cls}'s order is filters, kernel_size"):
        layer(8, 3)
    with pytest.raises(TypeError, match=r"padding_mode='circular' is boundary='wrap'"):
        layer(3, in_channels=2, out_channels=8, padding=1, padding_mode="circular")
