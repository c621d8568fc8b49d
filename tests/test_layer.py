"""The Conv2D layer and corr2d_multi on every backend; torch.nn.Conv2d as the reference."""

from __future__ import annotations

import functools
import sys
import warnings

import numpy as np
import pytest

import xcorr

from matrix import assert_result, require_module
from reference import reference, reference_multi_vjp, reference_vjp

DTYPES = ("float32", "float64")


def layer_for(backend, *args, **kwargs):
    """A Conv2D whose parameters live on ``backend`` (a matrix entry)."""
    name = backend.library
    layer = xcorr.Conv2D(*args, backend=name, **kwargs)
    if backend.name == "torch_cuda":
        layer = layer.to("cuda")
    if backend.name == "jax_gpu":
        import jax

        layer = jax.device_put(layer, jax.devices("gpu")[0])
    return layer


def params(backend, layer):
    bias = None if layer.bias is None else backend.to_numpy(layer.bias)
    return backend.to_numpy(layer.weight), bias


def edge_image():
    x = np.ones((6, 8))
    x[:, 2:6] = 0
    return x


def reference_multi(x, w, *, groups=1, **options):
    """Channel sum of the float64 reference, one (output, input) channel pair at a time."""
    x = np.asarray(x, dtype=float)
    single = x.ndim == 3
    x = x[None] if single else x
    out_channels, per_group = w.shape[:2]
    per_out_group = out_channels // groups
    planes = []
    for o in range(out_channels):
        first = (o // per_out_group) * per_group
        planes.append(sum(reference(x[:, first + c], w[o, c], **options) for c in range(per_group)))
    y = np.stack(planes, axis=1)
    return y[0] if single else y


# --- the seed's layer ------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
def test_seed_layer_is_corr2d_plus_bias(backend, dtype):
    layer = layer_for(backend, (1, 2), dtype=dtype, seed=3)
    w, b = params(backend, layer)
    assert w.shape == (1, 2) and b.shape == ()
    x = backend.asarray(edge_image(), dtype)
    assert_result(backend, layer(x), reference(edge_image(), w) + b, dtype, like=x)
    # Batched input (..., H, W): one kernel for every image.
    batch = np.stack([edge_image(), 1 - edge_image(), 2 * edge_image()])
    assert_result(backend, layer(backend.asarray(batch, dtype)), reference(batch, w) + b, dtype)


def test_seed_layer_modes_without_bias(backend):
    layer = layer_for(backend, 3, mode="same", boundary="wrap", stride=2, bias=False, dtype="float64")
    assert layer.bias is None
    w, _ = params(backend, layer)
    x = np.random.default_rng(0).standard_normal((7, 9))
    expected = reference(x, w, mode="same", boundary="wrap", stride=2)
    assert_result(backend, layer(backend.asarray(x)), expected, "float64")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "kwargs",
    [
        {"kernel_size": (1, 2)},
        {"kernel_size": 3, "in_channels": 4, "out_channels": 6, "groups": 2},
    ],
    ids=["seed", "channels"],
)
def test_initial_parameters_are_identical_on_every_backend(backend, dtype, kwargs):
    kwargs = dict(kwargs)
    kernel_size = kwargs.pop("kernel_size")
    layer = layer_for(backend, kernel_size, dtype=dtype, seed=7, **kwargs)
    w, b = params(backend, layer)
    # The documented generator: numpy's default_rng(seed), weight then bias, in float64.
    rng = np.random.default_rng(7)
    if "in_channels" in kwargs:
        bound = 1 / np.sqrt(2 * 3 * 3)  # fan_in = in_channels // groups * h * w
        expected_w = rng.uniform(-bound, bound, (6, 2, 3, 3))
        expected_b = rng.uniform(-bound, bound, (6,))
    else:
        expected_w = rng.standard_normal((1, 2))
        expected_b = rng.standard_normal(())
    # The weight's library, device, dtype and shape, and the documented values.
    assert_result(backend, layer.weight, expected_w, dtype)
    np.testing.assert_array_equal(w, expected_w.astype(dtype))
    np.testing.assert_array_equal(b, np.asarray(expected_b).astype(dtype))
    # And the same numbers as the numpy layer, bit for bit.
    numpy_layer = xcorr.Conv2D(kernel_size, backend="numpy", dtype=dtype, seed=7, **kwargs)
    np.testing.assert_array_equal(w, numpy_layer.weight)


def test_seeds_differ():
    a = xcorr.Conv2D(3, backend="numpy", seed=0)
    b = xcorr.Conv2D(3, backend="numpy", seed=1)
    assert not np.array_equal(a.weight, b.weight)


# --- channels ----------------------------------------------------------------

# (kwargs of both layers, torch.nn.Conv2d's padding / padding_mode)
TORCH_CONFIGS = {
    "valid": (dict(in_channels=3, out_channels=4, kernel_size=3), dict(padding=0)),
    "strided-dilated-groups": (
        dict(in_channels=4, out_channels=6, kernel_size=(2, 3), stride=2, dilation=(1, 2), groups=2),
        dict(padding=0),
    ),
    "same-even-kernel": (dict(in_channels=2, out_channels=3, kernel_size=(2, 4), mode="same"), dict(padding="same")),
    "depthwise-same": (dict(in_channels=4, out_channels=4, kernel_size=3, groups=4, mode="same"), dict(padding="same")),
    "circular": (
        dict(in_channels=2, out_channels=3, kernel_size=3, mode="same", boundary="wrap"),
        dict(padding=1, padding_mode="circular"),
    ),
    "no-bias": (dict(in_channels=2, out_channels=2, kernel_size=2, bias=False, stride=(1, 2)), dict(padding=0)),
}


@functools.cache
def torch_expected(config):
    """torch.nn.Conv2d (float64) with our layer's initial weights, on a fixed input."""
    torch = require_module("torch")
    ours, theirs = TORCH_CONFIGS[config]
    ours = dict(ours)
    kernel_size = ours.pop("kernel_size")
    layer = xcorr.Conv2D(kernel_size, backend="numpy", dtype="float64", seed=5, **ours)
    conv = torch.nn.Conv2d(
        layer.in_channels,
        layer.out_channels,
        kernel_size,
        stride=layer.stride,
        dilation=layer.dilation,
        groups=layer.groups,
        bias=layer.bias is not None,
        dtype=torch.float64,
        **theirs,
    )
    with torch.no_grad():
        conv.weight.copy_(torch.asarray(layer.weight))
        if layer.bias is not None:
            conv.bias.copy_(torch.asarray(layer.bias))
    x = np.random.default_rng(6).standard_normal((2, layer.in_channels, 7, 9))
    with torch.no_grad(), warnings.catch_warnings():
        # torch's note that it pads a copy for even kernels in "same" mode.
        warnings.filterwarnings("ignore", "Using padding='same' with even kernel", UserWarning)
        return x, conv(torch.asarray(x)).numpy()


@pytest.mark.parametrize("config", TORCH_CONFIGS)
def test_channel_layer_equals_torch_conv2d(backend, config):
    x, expected = torch_expected(config)
    kwargs = dict(TORCH_CONFIGS[config][0])
    layer = layer_for(backend, kwargs.pop("kernel_size"), dtype="float64", seed=5, **kwargs)
    xb = backend.asarray(x)
    assert_result(backend, layer(xb), expected, "float64", like=xb)
    # Unbatched (C_in, H, W) input.
    assert_result(backend, layer(backend.asarray(x[1])), expected[1], "float64")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "options",
    [
        dict(mode="same", boundary="symm", groups=2),
        dict(mode="full", boundary="fill", fillvalue=0.5, stride=(2, 1), dilation=2),
        dict(mode="valid", groups=1),
    ],
    ids=["same-symm-groups", "full-fill-strided", "valid"],
)
def test_corr2d_multi_equals_reference(backend, options, dtype):
    rng = np.random.default_rng(8)
    groups = options.get("groups", 1)
    x = rng.standard_normal((2, 4, 6, 7)).astype(dtype)
    w = rng.standard_normal((6, 4 // groups, 3, 2)).astype(dtype)
    y = xcorr.corr2d_multi(backend.asarray(x), backend.asarray(w), **options)
    assert_result(backend, y, reference_multi(x, w, **options), dtype)


@pytest.mark.parametrize(
    "options",
    [
        dict(mode="same", stride=2),
        dict(mode="full", boundary="wrap", groups=2, method="direct"),
        dict(mode="same", boundary="symm", data_format="channels_last"),
    ],
    ids=["same-strided", "full-wrap-direct", "channels-last"],
)
def test_corr2d_multi_bias_adds_one_value_per_output_channel(backend, options):
    rng = np.random.default_rng(12)
    options = dict(options)
    last = options.pop("data_format", None) == "channels_last"
    x = rng.standard_normal((2, 4, 6, 7))
    w = rng.standard_normal((6, 4 // options.get("groups", 1), 3, 2))
    b = rng.standard_normal(6)
    want = reference_multi(x, w, **{k: v for k, v in options.items() if k != "method"}) + b[:, None, None]
    if last:
        x, want, options = np.moveaxis(x, 1, -1), np.moveaxis(want, 1, -1), {**options, "data_format": "channels_last"}
    xb = backend.asarray(x)
    for _ in range(2):  # the second call is the prepared one
        y = xcorr.corr2d_multi(xb, backend.asarray(w), bias=backend.asarray(b), **options)
        assert_result(backend, y, want, "float64", like=xb)
    # An integer bias promotes to the output's float dtype.
    y = xcorr.corr2d_multi(xb, backend.asarray(w), bias=backend.asarray(np.arange(6)), **options)
    assert_result(backend, y, want + (np.arange(6) - b)[(slice(None),) + (None,) * (0 if last else 2)], "float64")


@pytest.mark.parametrize(
    ("bias", "error", "match"),
    [
        (np.ones(3), ValueError, r"bias must have shape \(C_out,\) = \(4,\) for w of shape \(4, 2, 3, 3\); got shape \(3,\)"),
        (np.ones((4, 1)), ValueError, r"bias must have shape .* got shape \(4, 1\)"),
        (np.ones(4, dtype=np.float64), TypeError, r"bias has dtype float64, which the output's dtype float32"),
        (np.ones(4, dtype=bool), TypeError, r"bias must have a numeric dtype"),
        ([0.0] * 4, TypeError, r"bias must be an array"),
    ],
    ids=["length", "2-d", "wider-dtype", "bool", "list"],
)
@pytest.mark.parametrize("data_format", ["channels_first", "channels_last"])
def test_corr2d_multi_bad_bias_is_named_before_any_work(monkeypatch, bias, error, match, data_format):
    import xcorr._call as call

    monkeypatch.setattr(call, "adapter_for", lambda xp: pytest.fail("reached the adapter"))
    x = np.ones((1, 2, 5, 5) if data_format == "channels_first" else (1, 5, 5, 2), dtype=np.float32)
    w = np.ones((4, 2, 3, 3), dtype=np.float32)
    with pytest.raises(error, match=match):
        xcorr.corr2d_multi(x, w, bias=bias, data_format=data_format)


def test_corr2d_multi_bias_gradients_on_torch_and_jax():
    torch = require_module("torch")
    jax = require_module("jax")
    x, w, g, options, gx, gw = multi_problem()
    b = np.arange(4.0)
    gb = g.sum(axis=(0, 2, 3))
    xt, wt, bt = (torch.asarray(a).requires_grad_() for a in (x, w, b))
    y = xcorr.corr2d_multi(xt, wt, bias=bt, **options)
    for got, want in zip(torch.autograd.grad(y, (xt, wt, bt), torch.asarray(g)), (gx, gw, gb)):
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-12, atol=1e-12)
    _, pullback = jax.vjp(lambda x, w, b: xcorr.corr2d_multi(x, w, bias=b, **options), x, w, b)
    for got, want in zip(pullback(jax.numpy.asarray(g)), (gx, gw, gb)):
        np.testing.assert_allclose(np.asarray(got), want, rtol=1e-12, atol=1e-12)


def fd_multi_vjp(x, w, g, **options):
    def derivative(a, wrt):
        out = np.zeros_like(a)
        for index in np.ndindex(a.shape):
            step = np.zeros_like(a)
            step[index] = 1.0
            args = (x + step, w) if wrt == "x" else (x, w + step)
            back = (x - step, w) if wrt == "x" else (x, w - step)
            out[index] = np.sum(g * (reference_multi(*args, **options) - reference_multi(*back, **options))) / 2
        return out

    return derivative(x, "x"), derivative(w, "w")


@functools.cache
def multi_problem():
    rng = np.random.default_rng(9)
    options = dict(mode="same", boundary="wrap", stride=2, groups=2)
    x, w = rng.standard_normal((2, 2, 4, 5)), rng.standard_normal((4, 1, 2, 3))
    g = rng.standard_normal(reference_multi(x, w, **options).shape)
    return x, w, g, options, *fd_multi_vjp(x, w, g, **options)


def test_corr2d_multi_vjp_equals_finite_differences(backend):
    x, w, g, options, gx, gw = multi_problem()
    got_x, got_w = xcorr.corr2d_multi_vjp(backend.asarray(x), backend.asarray(w), backend.asarray(g), **options)
    assert_result(backend, got_x, gx, "float64")
    assert_result(backend, got_w, gw, "float64")
    # Unbatched input: the gradient of the first image alone.
    got_x, _ = xcorr.corr2d_multi_vjp(backend.asarray(x[0]), backend.asarray(w), backend.asarray(g[0]), **options)
    assert_result(backend, got_x, gx[0], "float64")


MULTI_VJP_CONFIGS = [
    dict(mode=mode, boundary=boundary, stride=stride, dilation=dilation, groups=groups, fillvalue=0.5)
    for mode, boundary, stride, dilation, groups in [
        ("valid", "fill", 1, 1, 1),
        ("valid", "fill", (2, 3), (2, 1), 2),
        ("same", "wrap", 2, 1, 2),
        ("same", "symm", 1, (1, 2), 1),
        ("full", "fill", (1, 2), 1, 4),
        ("full", "symm", 3, 2, 2),
        ("same", "fill", 1, 1, 4),
    ]
]


@pytest.mark.parametrize("options", MULTI_VJP_CONFIGS, ids=lambda o: "-".join(map(str, o.values())))
def test_numpy_multi_vjp_hook_equals_reference_and_finite_differences(options):
    """The numpy per-tap GEMM backward against the tests' float64 VJP and finite differences."""
    from xcorr import _multi
    from xcorr._options import Options
    from xcorr.backends import numpy as numpy_backend

    rng = np.random.default_rng(11)
    x, w = rng.standard_normal((2, 4, 6, 7)), rng.standard_normal((4, 4 // options["groups"], 3, 2))
    g = rng.standard_normal(reference_multi(x, w, **options).shape)
    calls = []
    hook = numpy_backend.correlate_multi_vjp
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(numpy_backend, "correlate_multi_vjp", lambda *a, **k: calls.append(1) or hook(*a, **k))
        gx, gw = xcorr.corr2d_multi_vjp(x, w, g, **options)
        gx1, _ = xcorr.corr2d_multi_vjp(x[1], w, g[1], **options)
    assert len(calls) == 2
    groups = options.pop("groups")
    want_x, want_w = reference_multi_vjp(x, w, g, groups=groups, **options)
    np.testing.assert_allclose(gx, want_x, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(gw, want_w, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(gx1, want_x[1], rtol=1e-12, atol=1e-12)
    fd_x, fd_w = fd_multi_vjp(x, w, g, groups=groups, **options)
    np.testing.assert_allclose(gx, fd_x, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(gw, fd_w, rtol=1e-9, atol=1e-9)
    # float32 and complex inputs keep their dtypes; the layer's weight-only path agrees.
    x32, w32, g32 = (a.astype(np.float32) for a in (x, w, g))
    gx32, gw32 = xcorr.corr2d_multi_vjp(x32, w32, g32, groups=groups, **options)
    assert gx32.dtype == gw32.dtype == np.float32
    np.testing.assert_allclose(gw32, want_w, rtol=1e-4, atol=1e-4)
    none, gw_only = _multi.multi_vjp(np, x, w, g, Options.parse(**options), groups, need_x=False)
    assert none is None
    np.testing.assert_allclose(gw_only, want_w, rtol=1e-12, atol=1e-12)
    xc = x + 1j * rng.standard_normal(x.shape)
    got = xcorr.corr2d_multi_vjp(xc, w, g, groups=groups, **options)
    want_x, want_w = reference_multi_vjp(xc, w, g, groups=groups, **options)
    # A complex x: its gradient is complex; the real weight gets the real part.
    for a, b, dtype in zip(got, (want_x, want_w.real), (np.complex128, np.float64)):
        assert a.dtype == dtype
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_corr2d_multi_autodiff_on_torch_and_jax():
    torch = require_module("torch")
    jax = require_module("jax")
    x, w, g, options, gx, gw = multi_problem()
    xt, wt = torch.asarray(x).requires_grad_(), torch.asarray(w).requires_grad_()
    for got, want in zip(torch.autograd.grad(xcorr.corr2d_multi(xt, wt, **options), (xt, wt), torch.asarray(g)), (gx, gw)):
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-12, atol=1e-12)
    _, pullback = jax.vjp(lambda x, w: xcorr.corr2d_multi(x, w, **options), x, w)
    for got, want in zip(pullback(jax.numpy.asarray(g)), (gx, gw)):
        np.testing.assert_allclose(np.asarray(got), want, rtol=1e-12, atol=1e-12)


def test_channel_mismatch_is_reported(backend):
    layer = layer_for(backend, 3, in_channels=4, out_channels=2, dtype="float64")
    with pytest.raises(ValueError, match=r"x has 3 channels \(shape \(1, 3, 6, 6\)\)"):
        layer(backend.asarray(np.ones((1, 3, 6, 6))))
    with pytest.raises(ValueError, match=r"x must have shape \(N, C_in, H, W\) or \(C_in, H, W\)"):
        layer(backend.asarray(np.ones((6, 6))))


# --- bad hyper-parameters ------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "match"),
    [
        ((0,), {}, ValueError, r"kernel_size must be an int or a pair of ints, each >= 1; got 0"),
        (((3, -1),), {}, ValueError, r"kernel_size .* got \(3, -1\)"),
        (((1, 2, 3),), {}, ValueError, r"kernel_size .* got \(1, 2, 3\)"),
        (((2.0, 2),), {}, TypeError, r"kernel_size .* got \(2.0, 2\)"),
        (("3",), {}, TypeError, r"kernel_size .* got '3'"),
        ((True,), {}, TypeError, r"kernel_size"),
        ((3,), {"in_channels": 2}, ValueError, r"in_channels and out_channels must be given together"),
        ((3,), {"in_channels": 3, "out_channels": 4, "groups": 2}, ValueError, r"groups=2 must divide in_channels=3"),
        ((3,), {"in_channels": 4, "out_channels": 3, "groups": 2}, ValueError, r"groups=2 must divide .*out_channels=3"),
        ((3,), {"in_channels": 0, "out_channels": 3}, ValueError, r"in_channels must be an int >= 1; got 0"),
        ((3,), {"in_channels": 2, "out_channels": 2.5}, TypeError, r"out_channels must be an int >= 1; got 2.5"),
        ((3,), {"in_channels": 2, "out_channels": 2, "groups": 0}, ValueError, r"groups must be an int >= 1; got 0"),
        ((3,), {"groups": 2}, ValueError, r"groups=2 needs in_channels and out_channels"),
        ((3,), {"mode": "sam"}, ValueError, r"mode must be one of"),
        ((3,), {"stride": 0}, ValueError, r"stride must be >= 1"),
        ((3,), {"bias": "yes"}, TypeError, r"bias must be True or False"),
        ((3,), {"backend": "tensorflow"}, ValueError, r"backend must be one of 'numpy', .*; got 'tensorflow'"),
        ((3,), {"dtype": "bfloat16"}, ValueError, r"dtype must be one of 'float32', 'float64', 'float16' .*; got 'bfloat16'"),
        ((3,), {"dtype": np.int64}, ValueError, r"dtype must be"),
        ((3,), {"seed": 1.5}, TypeError, r"seed must be an int; got 1.5"),
    ],
)
def test_bad_hyper_parameters(args, kwargs, error, match):
    with pytest.raises(error, match=match):
        xcorr.Conv2D(*args, **kwargs)


def test_backend_not_installed(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", None)  # what an absent package looks like to import
    with pytest.raises(ImportError, match=r"backend='cupy' needs cupy, which is not installed"):
        xcorr.Conv2D(3, backend="cupy")


def test_backend_from_the_environment(monkeypatch):
    array_api_strict = require_module("array_api_strict")
    monkeypatch.setenv("XCORR_BACKEND", "array_api_strict")
    layer = xcorr.Conv2D(3)
    assert layer.backend == "array_api_strict"
    assert type(layer.weight).__module__.startswith("array_api_strict")
    assert layer.weight.dtype == array_api_strict.float32
    monkeypatch.setenv("XCORR_BACKEND", "tensorflow")
    with pytest.raises(ValueError, match=r"XCORR_BACKEND must be one of .*'tensorflow'"):
        xcorr.Conv2D(3)
    monkeypatch.delenv("XCORR_BACKEND")
    layer = xcorr.Conv2D(3)
    assert layer.backend == "numpy" and isinstance(layer.weight, np.ndarray)
    assert layer.weight.dtype == np.float32


def test_dtype_of_the_library():
    torch = require_module("torch")
    assert xcorr.Conv2D(3, backend="torch", dtype=torch.float64).weight.dtype == torch.float64
    assert xcorr.Conv2D(3, backend="numpy", dtype=np.float64).weight.dtype == np.float64
    with pytest.raises(ValueError, match="dtype must be"):
        xcorr.Conv2D(3, backend="torch", dtype=torch.int64)


# --- torch: a real nn.Module ------------------------------------------------------


def test_torch_layer_is_a_module():
    torch = require_module("torch")
    from xcorr.backends.torch import Conv2D

    layer = xcorr.Conv2D(3, in_channels=2, out_channels=4, backend="torch", seed=1)
    assert type(layer) is Conv2D
    assert isinstance(layer, torch.nn.Module) and isinstance(layer, xcorr.Conv2D)
    assert [name for name, _ in layer.named_parameters()] == ["weight", "bias"]
    assert "in_channels=2, out_channels=4" in repr(layer)
    # state_dict round trip into a layer with another seed.
    other = Conv2D(3, in_channels=2, out_channels=4, seed=2)
    assert not torch.equal(other.weight, layer.weight)
    other.load_state_dict(layer.state_dict())
    assert torch.equal(other.weight, layer.weight) and torch.equal(other.bias, layer.bias)
    # .to(dtype/device) converts the parameters; the layer still computes.
    layer = layer.to(torch.float64).to("cpu")
    assert layer.weight.dtype == torch.float64 and layer.weight.device.type == "cpu"
    assert "dtype='float64'" in repr(layer)
    assert layer(torch.ones(1, 2, 5, 5, dtype=torch.float64)).shape == (1, 4, 3, 3)
    # No bias: registered as None, not a parameter.
    no_bias = Conv2D((1, 2), bias=False)
    assert no_bias.bias is None and [n for n, _ in no_bias.named_parameters()] == ["weight"]
    with pytest.raises(ValueError, match="backend='jax' given to the torch Conv2D class"):
        Conv2D(3, backend="jax")


# --- jax: a pytree -----------------------------------------------------------------


def test_jax_layer_is_a_pytree():
    jax = require_module("jax")
    jnp = jax.numpy
    from xcorr.backends.jax import Conv2D

    layer = xcorr.Conv2D((1, 2), backend="jax", dtype="float64", seed=4)
    assert type(layer) is Conv2D and isinstance(layer, xcorr.Conv2D)
    leaves, _treedef = jax.tree.flatten(layer)
    assert len(leaves) == 2 and leaves[0] is layer.weight and leaves[1] is layer.bias
    paths = [jax.tree_util.keystr(path) for path, _ in jax.tree_util.tree_flatten_with_path(layer)[0]]
    assert paths == [".weight", ".bias"]
    with pytest.raises(AttributeError, match="immutable"):
        layer.weight = layer.weight

    x = jnp.asarray(edge_image())
    y = xcorr.corr2d(x, jnp.asarray([[1.0, -1.0]]))

    def loss(layer, x, y):
        return jnp.sum((layer(x) - y) ** 2)

    # jit and grad take the layer itself; the gradient is a Conv2D too.
    grads = jax.jit(jax.grad(loss))(layer, x, y)
    assert type(grads) is Conv2D and grads.spec == layer.spec
    g = 2 * (layer(x) - y)
    gw = reference_vjp(np.asarray(x), np.asarray(layer.weight), np.asarray(g))[1]
    np.testing.assert_allclose(np.asarray(grads.weight), gw, rtol=1e-12)
    np.testing.assert_allclose(float(grads.bias), float(jnp.sum(g)), rtol=1e-12)
    # vmap over an ensemble of layers (stacked leaves, shared hyper-parameters).
    ensemble = jax.tree.map(lambda a: jnp.stack([a, 2 * a, -a]), layer)
    out = jax.vmap(lambda layer: layer(x))(ensemble)
    assert out.shape == (3, 6, 7)
    np.testing.assert_allclose(np.asarray(out[1]), np.asarray(layer.replace(weight=2 * layer.weight, bias=2 * layer.bias)(x)), rtol=1e-12)
    # Hyper-parameters are static: a jitted function recompiles for another kernel size.
    assert jax.jit(lambda layer: layer(x))(xcorr.Conv2D(3, backend="jax")).shape == (4, 6)
