"""torch.compile (one graph, no break), torch.export, and the padding handed to torch and jax."""

from __future__ import annotations

import numpy as np
import pytest

import xcorr
from xcorr._prepared import clear_prepared
from xcorr.toolkit import ARRAY_FUNCTIONS

from reference import random, reference

torch = pytest.importorskip("torch")
F = torch.nn.functional

LAYERS = [
    dict(kernel_size=3),
    dict(kernel_size=(2, 3), mode="same", boundary="symm", stride=2),
    dict(kernel_size=3, in_channels=2, out_channels=4, mode="same"),
    dict(kernel_size=3, in_channels=2, out_channels=4, mode="full", boundary="wrap", dilation=2, groups=2),
]


class Net(torch.nn.Module):
    """Layers of every kind, and a bare corr2d/conv2d."""

    def __init__(self):
        super().__init__()
        self.multi = xcorr.Conv2D(3, in_channels=1, out_channels=4, mode="same", backend="torch", dtype="float64")
        self.wrap = xcorr.Conv2D(3, in_channels=4, out_channels=2, mode="same", boundary="wrap", stride=2,
                                 backend="torch", dtype="float64")  # fmt: skip
        self.plane = xcorr.Conv2D((2, 3), mode="same", boundary="symm", backend="torch", dtype="float64")

    def forward(self, x):
        y = torch.relu(self.multi(x))
        y = self.plane(self.wrap(y)).sum(dim=1)
        k = torch.ones(2, 2, dtype=x.dtype)
        return y.sum() + xcorr.corr2d(x[:, 0], k).sum() + xcorr.conv2d(x[:, 0], k, mode="full").sum()


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch's own imports while compiling
def test_compile_fullgraph_matches_eager_with_gradients():
    clear_prepared()  # the first call is traced too: no prepared call to lean on
    net = Net()
    x = torch.asarray(random((2, 1, 9, 10)), requires_grad=True)
    compiled = torch.compile(net, fullgraph=True, backend="aot_eager")
    out = compiled(x)
    out.backward()
    got = [x.grad] + [p.grad for p in net.parameters()]
    x.grad = None
    net.zero_grad()
    want_out = net(x)
    want_out.backward()
    want = [x.grad] + [p.grad for p in net.parameters()]
    torch.testing.assert_close(out, want_out, rtol=1e-12, atol=1e-12)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("options", LAYERS, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()))
def test_export_every_layer_kind(options):
    options = dict(options)
    layer = xcorr.Conv2D(options.pop("kernel_size"), backend="torch", dtype="float64", **options)
    shape = (3, 2, 9, 11) if layer.in_channels else (3, 9, 11)
    program = torch.export.export(layer, (torch.asarray(random(shape)),))
    x = torch.asarray(random(shape, seed=1))
    torch.testing.assert_close(program.module()(x), layer(x), rtol=1e-12, atol=1e-12)
    assert "xcorr" not in str(program.graph)  # plain aten operations, nothing of ours left to trace


def test_exported_network_is_the_nn_conv2d_network():
    """A network of xcorr layers exports to the same aten graph as the same network of nn.Conv2d:
    the padding and the bias go into the convolution; torch.compile then sees what it sees for nn.Conv2d."""
    ours = torch.nn.Sequential(
        xcorr.Conv2D(3, in_channels=1, out_channels=8, mode="same", backend="torch"), torch.nn.ReLU(),
        xcorr.Conv2D(3, in_channels=8, out_channels=16, mode="same", stride=2, backend="torch"), torch.nn.ReLU(),
    )  # fmt: skip
    theirs = torch.nn.Sequential(
        torch.nn.Conv2d(1, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(8, 16, 3, stride=2, padding=1),
        torch.nn.ReLU(),
    )  # fmt: skip
    theirs.load_state_dict(ours.state_dict())
    x = torch.asarray(random((5, 1, 8, 8)), dtype=torch.float32)

    def graph(model):
        program = torch.export.export(model, (x,))
        nodes = [n for n in program.graph.nodes if n.op == "call_function"]
        return program, [(str(n.target), [str(a) for a in n.args[3:]]) for n in nodes]

    (program, got), (_, want) = graph(ours), graph(theirs)
    assert got == want  # the ops, and each convolution's stride, padding and dilation
    torch.testing.assert_close(program.module()(x), theirs(x), rtol=1e-6, atol=1e-6)


def test_channel_layer_bias_goes_into_conv2d(monkeypatch):
    convs = []
    real = F.conv2d
    monkeypatch.setattr(F, "conv2d", lambda *a, **k: convs.append(a) or real(*a, **k))
    layer = xcorr.Conv2D(3, in_channels=2, out_channels=4, mode="same", backend="torch", dtype="float64")
    x = torch.asarray(random((3, 2, 6, 7)))
    y = layer(x)
    assert len(convs) == 1 and convs[0][2] is layer.bias
    want = sum(reference(x.numpy()[:, None, c], layer.weight.detach().numpy()[None, :, c], mode="same") for c in range(2))
    np.testing.assert_allclose(y.detach().numpy(), want + layer.bias.detach().numpy()[:, None, None], rtol=1e-12)


def test_tracers_take_the_traceable_path(monkeypatch):
    # Under torch.export the arrays are tracers: the fast paths (tolist,
    # data pointers, worker threads) must not run; F.conv2d does.
    from xcorr.backends.torch import ops as torch_ops

    def forbidden(*args, **kwargs):
        raise AssertionError("a fast path ran on tracer tensors")

    monkeypatch.setattr(torch_ops, "direct_forward", forbidden)
    monkeypatch.setattr(torch_ops, "few_outputs", forbidden)
    layer = xcorr.Conv2D(5, backend="torch", dtype="float64", mode="same")
    program = torch.export.export(layer, (torch.asarray(random((40, 40))),))
    x = random((40, 40), seed=2)
    want = reference(x, layer.weight.detach().numpy(), mode="same") + float(layer.bias.detach())
    np.testing.assert_allclose(program.module()(torch.asarray(x)).detach().numpy(), want, rtol=1e-12, atol=1e-12)


# -- the boundary extension goes to the library ---------------------------------------------


def spy_calls(monkeypatch, module, name):
    calls = []
    real = getattr(module, name)

    def spy(*args, **kwargs):
        calls.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, spy)
    return calls


@pytest.mark.parametrize("fill", [0.0, 1.5])
def test_torch_fill_padding_is_conv2d_padding_or_f_pad(monkeypatch, fill):
    from xcorr.backends.torch import functional

    convs = spy_calls(monkeypatch, F, "conv2d")
    pads = spy_calls(monkeypatch, F, "pad")
    monkeypatch.setattr(functional.toolkit, "extend", lambda *a, **k: pytest.fail("built the extension by hand"))
    x, w = random((2, 3, 8, 9)), random((4, 3, 3, 3), seed=1)
    for stride in (1, 2):  # with stride 2 the last window ends inside x: torch pads past it, unread
        y = xcorr.corr2d_multi(torch.asarray(x), torch.asarray(w), mode="same", fillvalue=fill, stride=stride)
        want = sum(reference(x[:, None, c], w[None, :, c], mode="same", fillvalue=fill, stride=stride) for c in range(3))
        np.testing.assert_allclose(y.numpy(), want, rtol=1e-12, atol=1e-12)
        if fill == 0:
            assert convs[-1]["padding"] == (1, 1) and not pads  # torch pads inside the convolution
        else:
            assert convs[-1]["padding"] == 0 and pads[-1] == {"value": fill}
    assert len(convs) == 2


def test_torch_wrap_is_circular_pad(monkeypatch):
    pads = spy_calls(monkeypatch, F, "pad")
    x, w = random((2, 8, 9)), random((3, 2, 3, 2), seed=1)
    y = xcorr.corr2d_multi(torch.asarray(x), torch.asarray(w), mode="full", boundary="wrap")
    want = sum(reference(x[c], w[:, c], mode="full", boundary="wrap") for c in range(2))
    np.testing.assert_allclose(y.numpy(), want, rtol=1e-12, atol=1e-12)
    assert pads == [{"mode": "circular"}]


def test_jax_zero_fill_is_convolution_padding(monkeypatch):
    jax = pytest.importorskip("jax")
    from xcorr.backends.jax import ops as jax_ops

    calls = spy_calls(monkeypatch, jax.lax, "conv_general_dilated")
    monkeypatch.setattr(jax_ops.toolkit, "generic_extend", lambda *a, **k: pytest.fail("built the extension by hand"))
    x, w = random((2, 3, 8, 9)), random((4, 3, 3, 2), seed=1)
    for mode, padding in (("same", ((1, 1), (0, 1))), ("full", ((2, 2), (1, 1)))):
        y = xcorr.corr2d_multi(jax.numpy.asarray(x), jax.numpy.asarray(w), mode=mode)
        want = sum(reference(x[:, None, c], w[None, :, c], mode=mode) for c in range(3))
        np.testing.assert_allclose(np.asarray(y), want, rtol=1e-12, atol=1e-12)
        assert calls[-1]["padding"] == padding


@pytest.mark.parametrize("boundary", ["wrap", "symm"])
def test_jax_wrap_and_symm_are_jnp_pad(monkeypatch, boundary):
    jax = pytest.importorskip("jax")
    from xcorr.backends.jax import ops as jax_ops

    pads = spy_calls(monkeypatch, jax.numpy, "pad")
    monkeypatch.setattr(jax_ops.toolkit, "generic_extend", lambda *a, **k: pytest.fail("built the extension by hand"))
    x, w = random((2, 3, 8, 9)), random((4, 3, 3, 2), seed=1)
    for options in (dict(mode="same"), dict(mode="full", stride=2), dict(mode="same", stride=(2, 3), dilation=2)):
        y = xcorr.corr2d_multi(jax.numpy.asarray(x), jax.numpy.asarray(w), boundary=boundary, **options)
        want = sum(reference(x[:, None, c], w[None, :, c], boundary=boundary, **options) for c in range(3))
        np.testing.assert_allclose(np.asarray(y), want, rtol=1e-12, atol=1e-12)
        assert pads[-1]["mode"] == {"wrap": "wrap", "symm": "symmetric"}[boundary]


@pytest.mark.parametrize(
    "order",
    [
        "import torch, xcorr",  # torch first: the tracer not imported yet
        "import xcorr, torch",  # xcorr first
        "import torch, torch._dynamo, xcorr",  # the tracer already imported
    ],
)
def test_compiled_first_call_before_any_eager_call(order):
    """A fresh process whose first xcorr call is inside torch.compile(fullgraph=True): the adapter is
    loaded when dynamo is imported, not mid-trace (where dynamo refuses the import)."""
    from matrix import run_python

    out = run_python(f"""
        {order}
        import sys
        assert "xcorr.backends.torch" not in sys.modules or "torch._dynamo" in sys.modules

        def f(x, k):
            return xcorr.corr2d(x, k, mode="same") + xcorr.corr1d(x[0], k[0]).sum()

        g = torch.compile(f, fullgraph=True, backend="eager")
        x, k = torch.randn(6, 7, dtype=torch.float64), torch.randn(2, 3, dtype=torch.float64)
        print(torch.equal(g(x, k), f(x, k)))
    """)
    assert out.split() == ["True"], out


# -- kernels large enough that "auto" takes the FFT on eager tensors ----------------------------


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch's own imports while compiling
@pytest.mark.parametrize("transform", ["compile", "export", "vmap"])
@pytest.mark.parametrize("shapes", [((3, 128, 128), (31, 31)), ((1, 40, 40, 40), (11, 11, 11))], ids=["2d", "3d"])
def test_traced_and_vmapped_tensors_take_the_direct_result_where_eager_ones_take_the_fft(transform, shapes):
    """'auto' reads the values before an FFT (a NaN would spread over it); tracers and vmapped tensors
    have none to read, so they get the direct method's result, NaN kept where it is."""
    from scipy import signal

    x_shape, k_shape = shapes
    front = xcorr.corr2d if len(k_shape) == 2 else xcorr.corr3d
    x, k = random(x_shape), random(k_shape, seed=1)
    x[(0,) * len(x_shape)] = np.nan
    want = np.stack([signal.correlate(plane, k, mode="valid", method="direct") for plane in x])
    xt, kt = torch.asarray(x), torch.asarray(k)
    finite = xt.nan_to_num()
    eager = front(finite, kt)  # eager and finite: bit for bit the FFT's result, not the direct one's
    assert torch.equal(eager, front(finite, kt, method="fft")), "the sizes no longer make 'auto' take the FFT"
    assert not torch.equal(eager, front(finite, kt, method="direct"))

    class Front(torch.nn.Module):
        def forward(self, a, b):
            return front(a, b)

    if transform == "compile":
        got = torch.compile(lambda a, b: front(a, b), fullgraph=True, backend="eager")(xt, kt)
    elif transform == "export":
        got = torch.export.export(Front(), (finite, kt)).module()(xt, kt)
    else:
        got = torch.func.vmap(lambda a: front(a[None], kt)[0])(xt)
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-10, atol=1e-10)


# -- every public function of arrays, whole in one graph -------------------------------------


def _operands(name: str):
    """Small float64 operands of the public function ``name`` (its forward's, and a cotangent or
    tangents for a VJP or JVP)."""
    n = 1 if "1d" in name else 3 if "3d" in name else 2
    base = name.removesuffix("_vjp").removesuffix("_jvp")
    spatial, taps = (9, 8, 7)[:n], (3, 2, 2)[:n]
    if "multi" in base:
        x, k = random((2, 3, *spatial)), random((4, 3, *taps), seed=1)
    elif "conv_transpose" in base:
        x, k = random((2, 3, *spatial)), random((3, 4, *taps), seed=1)
    else:
        x, k = random((2, *spatial)), random(taps, seed=1)
    x, k = torch.asarray(x), torch.asarray(k)
    if name.endswith("_vjp"):
        return x, k, torch.asarray(random(tuple(getattr(xcorr, base)(x, k).shape), seed=2))
    if name.endswith("_jvp"):
        return x, k, torch.asarray(random(tuple(x.shape), seed=2)), torch.asarray(random(tuple(k.shape), seed=3))
    return x, k


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch's own imports while compiling
@pytest.mark.parametrize("function", ARRAY_FUNCTIONS, ids=lambda f: f.__name__)
def test_every_array_function_compiles_into_one_graph(function):
    """fullgraph=True: no graph break, and the eager call's numbers (the VJPs and JVPs and the
    transposed functions broke the graph, reading values or tracing the core's Python)."""
    import torch._dynamo

    operands = _operands(function.__name__)
    want = function(*operands)
    torch._dynamo.reset()  # each function compiled afresh, not recompiled past dynamo's limit
    got = torch.compile(lambda *a: function(*a), fullgraph=True, backend="eager")(*operands)
    for a, b in zip(*((w,) if isinstance(w, torch.Tensor) else w for w in (got, want))):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
