"""Receptive fields in 1-D and 3-D: against torch autograd, against the 2-D fields of the same
per-axis geometry, on xcorr's 1-D and 3-D layers of every backend, and the errors of mixed stacks."""

from __future__ import annotations

import numpy as np
import pytest

import xcorr
from xcorr import Window
from xcorr._windows import TransposedWindow

from matrix import require_module

# -- the oracle: torch autograd through torch stacks -----------------------------------------


def torch_support(torch, net, shape, index):
    """Where the gradient of ``net(x)[index]`` is non-zero (positive weights and input: no cancelling)."""
    x = torch.rand(*shape, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) + 0.5
    x.requires_grad_(True)
    (grad,) = torch.autograd.grad(net(x)[index], x)
    return (grad != 0).reshape(-1, *shape[2:]).any(0).numpy()


def positive(torch, net):
    net = net.double()
    with torch.no_grad():
        for n, p in enumerate(net.parameters()):
            p.copy_(torch.rand(p.shape, generator=torch.Generator().manual_seed(n), dtype=p.dtype) + 0.5)
    return net


def torch_stacks(nn):
    """(stack, input shape): 1-D and 3-D stacks of convolutions, poolings and transposed convolutions."""
    return {
        "1-D": (
            [nn.Conv1d(1, 2, 3, padding=2), nn.AvgPool1d(2), nn.Conv1d(2, 2, 3, dilation=2, padding=1, stride=2),
             nn.ConvTranspose1d(2, 1, 3, stride=2, padding=1, dilation=2)],
            (1, 1, 29),
        ),
        "1-D reflect": ([nn.Conv1d(1, 1, 3, padding=2, padding_mode="reflect"), nn.Conv1d(1, 1, 2, stride=3)], (1, 1, 11)),
        "3-D": (
            [nn.Conv3d(1, 2, (3, 2, 1), stride=(1, 2, 1), padding=(1, 0, 1)), nn.AvgPool3d((2, 1, 2)),
             nn.Conv3d(2, 1, (3, 2, 1), dilation=(1, 2, 1), padding="same"),
             nn.ConvTranspose3d(1, 1, (2, 3, 1), stride=(1, 2, 3), padding=(0, 1, 0))],
            (1, 1, 6, 11, 8),
        ),
    }  # fmt: skip


@pytest.mark.parametrize("name", ["1-D", "1-D reflect", "3-D"])
def test_closed_form_equals_torch_autograd(name):
    torch = require_module("torch")
    layers, shape = torch_stacks(torch.nn)[name]
    net = positive(torch, torch.nn.Sequential(*layers))
    rf = xcorr.receptive_field(net, input_shape=shape)
    assert rf.ndim == len(shape) - 2 == len(rf.size) == len(rf.jump) == len(rf.start)
    out = rf.layers[-1].output_shape
    assert out == tuple(net(torch.ones(shape, dtype=torch.float64)).shape[2:])
    corners = [
        tuple(0 for _ in out),
        tuple(n // 2 for n in out),
        tuple(n - 1 for n in out),
        tuple(min(1, n - 1) for n in out),
    ]
    for index in corners:
        measured = torch_support(torch, net, shape, (0, 0, *index))
        np.testing.assert_array_equal(rf.mask(index, shape), measured, err_msg=f"output {index}")
        assert rf.mask((0, 0, *index), shape).shape == shape[2:]


def test_torch_pooling_layers_keep_ints():
    torch = require_module("torch")
    nn = torch.nn
    one = xcorr.receptive_field([nn.Conv1d(1, 1, 3), nn.MaxPool1d(2), nn.AvgPool1d(3, stride=1, padding=1)])
    assert one.windows == (Window((3,)), Window((2,), stride=2), Window((3,), padding=1))
    three = xcorr.receptive_field(
        nn.Sequential(nn.MaxPool3d(2), nn.Conv3d(1, 1, (1, 3, 3), dilation=2), nn.AvgPool3d(3))
    )
    assert three.windows == (Window((2, 2, 2), stride=2), Window((1, 3, 3), dilation=2), Window((3, 3, 3), stride=3))
    assert [f.name for f in three.layers] == ["MaxPool3d", "Conv3d", "AvgPool3d"]
    # size 1 + 1 + 4 * 2 (rows) ... and jump 2 * 3 along every axis
    assert (three.size, three.jump) == ((2 + 0 + 2 * 2, 2 + 4 * 2 + 2 * 2, 2 + 4 * 2 + 2 * 2), (6, 6, 6))


# -- the same per-axis geometry in 1, 2 and 3 axes -----------------------------------------------


def random_stack(seed, depth=3):
    """Per layer: transposed or not, and one (kernel, stride, dilation, (before, after)) per axis of three."""
    rng = np.random.default_rng(seed)
    stack = []
    for _ in range(depth):
        draw = [int(v) for v in rng.integers([1, 1, 1, 0, 0], [4, 3, 3, 3, 3], size=(3, 5)).flat]
        axes = [(k, s, d, (b, a)) for k, s, d, b, a in zip(*[iter(draw)] * 5)]
        stack.append((bool(rng.random() < 0.3), axes))
    return stack


def window(transposed, axes):
    """One layer's window from the geometries of its axes."""
    kernel, stride, dilation, padding = (tuple(a[n] for a in axes) for n in range(4))
    if transposed:
        return TransposedWindow(kernel, stride=stride, dilation=dilation, padding=padding)
    return Window(kernel, stride=stride, dilation=dilation, padding=padding)


@pytest.mark.parametrize("seed", range(6))
def test_every_axis_is_the_2d_field_of_its_geometry(seed):
    """Along each axis a 3-D stack's field is the 1-D field, and the 2-D one, of that axis's geometry."""
    stack, shape = random_stack(seed), (15, 16, 17)
    three = xcorr.receptive_field([window(t, axes) for t, axes in stack], input_shape=shape)
    masks = []
    for axis, n in enumerate(shape):
        one = xcorr.receptive_field([window(t, [axes[axis]]) for t, axes in stack], input_shape=(5, n))
        two = xcorr.receptive_field([window(t, [axes[axis]] * 2) for t, axes in stack], input_shape=(n, n))
        assert (one.ndim, two.ndim, three.ndim) == (1, 2, 3)
        assert one.axes[0] == two.rows == two.cols == three.axes[axis], f"axis {axis}"
        assert [f.output_shape[0] for f in one.layers] == [f.output_shape[axis] for f in three.layers]
        assert [f.output_shape for f in two.layers] == [f.output_shape[:1] * 2 for f in one.layers]
        i = one.layers[-1].output_shape[0] // 2
        masks.append(one.mask((i,), (n,)))
        np.testing.assert_array_equal(two.mask((i, i), (n, n)), np.outer(masks[-1], masks[-1]))
    index = tuple(n // 2 for n in three.layers[-1].output_shape)
    np.testing.assert_array_equal(three.mask(index, shape), np.einsum("i,j,k->ijk", *masks).astype(bool))
    assert three.bounds(index) == tuple(f.bounds(i) for f, i in zip(three.axes, index))


@pytest.mark.parametrize("padding", ["valid", "same", "full", "SAME", "SAME_LOWER"])
def test_padding_names_per_axis(padding):
    kernel, stride, dilation, shape = (2, 3, 4), (2, 1, 3), (3, 1, 2), (12, 11, 40)
    three = xcorr.receptive_field(
        [Window(kernel, stride=stride, dilation=dilation, padding=padding)] * 2, input_shape=shape
    )
    for axis, (k, s, d, n) in enumerate(zip(kernel, stride, dilation, shape)):
        one = xcorr.receptive_field([Window((k,), stride=s, dilation=d, padding=padding)] * 2, input_shape=(n,))
        two = xcorr.receptive_field(
            [Window((k, 1), stride=(s, 1), dilation=(d, 1), padding=padding)] * 2, input_shape=(n, 1)
        )
        assert one.axes[0] == two.rows == three.axes[axis]
        assert [f.output_shape[0] for f in one.layers] == [f.output_shape[axis] for f in three.layers]


def test_one_dimensional_results_table_and_errors():
    rf = xcorr.receptive_field([Window((3,)), Window((2,), stride=2), Window((3,), dilation=2)], input_shape=(1, 20))
    # 3, then 3 + 1 (jump 2), then 4 + (5 - 1) * 2
    assert (rf.size, rf.jump, rf.start, rf.input_shape) == ((12,), (2,), (5.5,), (20,))
    assert rf.bounds((1,)) == ((2, 13),) and rf.cols.bounds(1) == (2, 13)
    assert rf.mask((0, 1), (1, 20)).astype(int).tolist() == [0, 0] + [1] * 12 + [0] * 6
    assert str(rf).splitlines() == [
        "layer      window      size  jump  start  output",
        "---------  ----------  ----  ----  -----  ------",
        "input                     1     1      0      20",
        "0: Window  3 s1 d1 p0     3     1      1      18",
        "1: Window  2 s2 d1 p0     4     2    1.5       9",
        "2: Window  3 s1 d2 p0    12     2    5.5       5",
    ]
    with pytest.raises(AttributeError, match=r"a 1-D field has no rows"):
        _ = rf.rows
    with pytest.raises(ValueError, match=r"index must end in \(i,\); got \(\)"):
        rf.mask((), (20,))
    with pytest.raises(
        IndexError, match=r"index \(7,\) is outside the stack.s output of shape \(5,\) for input shape \(20,\)"
    ):
        rf.mask((7,), (20,))
    with pytest.raises(ValueError, match=r"input_shape must be \(\.\.\., L\) with L >= 1; got \(0,\)"):
        xcorr.receptive_field(Window((3,)), input_shape=(0,))
    with pytest.raises(ValueError, match=r"shape must have at least 3 entries, as shape must be \(\.\.\., D, H, W\)"):
        xcorr.receptive_field(Window((3, 3, 3))).mask((0, 0, 0), (5, 5))


# -- xcorr's own 1-D and 3-D layers, on every backend ---------------------------------------------


def xcorr_layers(backend, specs):
    """xcorr layers of ``backend`` with positive weights (no accidental cancellation)."""
    layers = []
    for n, (kind, kernel, options) in enumerate(specs):
        layer = kind(kernel, in_channels=1, out_channels=1, backend=backend.library, dtype="float64", seed=n, **options)
        weight = backend.asarray(np.random.default_rng(n).uniform(0.5, 1.5, tuple(layer.weight.shape)))
        if backend.library == "jax":
            layer = layer.replace(weight=weight)
        elif backend.library == "torch":
            import torch

            layer = layer.to(weight.device)
            with torch.no_grad():
                layer.weight.copy_(weight)
        else:
            layer.weight = weight
        layers.append(layer)
    return layers


ND_STACKS = {
    # even kernels in "same" mode (scipy's centring: span // 2 before), causal padding, a transposed layer
    "1-D": (
        [(xcorr.Conv1D, 4, {"mode": "same"}), (xcorr.Conv1D, 3, {"padding": "causal", "dilation": 2, "stride": 2}),
         (xcorr.Conv1DTranspose, 3, {"stride": 2, "padding": 1}), (xcorr.Conv1D, 2, {"mode": "full", "boundary": "wrap"})],
        (1, 13),
        [Window((4,), padding=((2, 1),)), Window((3,), stride=2, dilation=2, padding=((4, 0),)),
         TransposedWindow((3,), stride=2, padding=1), Window((2,), padding="full")],
    ),
    "3-D": (
        [(xcorr.Conv3D, (2, 3, 2), {"mode": "same", "dilation": (1, 1, 2)}),
         (xcorr.Conv3D, 2, {"padding": ((1, 0), 0, (0, 2)), "stride": (2, 1, 1)}),
         (xcorr.Conv3DTranspose, (1, 2, 2), {"stride": (1, 2, 1)})],
        (1, 5, 6, 4),
        [Window((2, 3, 2), dilation=(1, 1, 2), padding=((1, 0), (1, 1), (1, 1))),
         Window((2, 2, 2), stride=(2, 1, 1), padding=((1, 0), (0, 0), (0, 2))),
         TransposedWindow((1, 2, 2), stride=(1, 2, 1))],
    ),
}  # fmt: skip


@pytest.mark.parametrize("name", ND_STACKS)
def test_xcorr_nd_layers_are_read_and_measured(backend, name):
    specs, shape, windows = ND_STACKS[name]
    layers = xcorr_layers(backend, specs)
    rf = xcorr.receptive_field(layers, input_shape=shape)
    assert rf.windows == tuple(windows)
    assert [f.name for f in rf.layers] == [kind.__name__ for kind, _, _ in specs]
    x = backend.asarray(np.random.default_rng(3).uniform(0.5, 1.5, shape))
    y = x
    for layer in layers:
        y = layer(y)
    assert tuple(y.shape[1:]) == rf.layers[-1].output_shape
    out = rf.layers[-1].output_shape
    for index in [tuple(0 for _ in out), tuple(n // 2 for n in out), tuple(n - 1 for n in out)]:
        field = xcorr.empirical_receptive_field(layers, x, (0, *index))
        np.testing.assert_array_equal(field.mask, rf.mask(index, shape), err_msg=f"output {index}")
        assert field.mask.shape == shape[1:]


def test_channels_last_1d_and_3d():
    one = [xcorr.Conv1D(3, in_channels=2, out_channels=2, stride=2, data_format="channels_last")]
    rf = xcorr.receptive_field(one, input_shape=(7, 9, 2))
    assert (rf.channels_last, rf.input_shape, rf.layers[0].output_shape) == (True, (9,), (4,))
    assert rf.mask((0, 1, 1), (7, 9, 2)).astype(int).tolist() == [0, 0, 1, 1, 1, 0, 0, 0, 0]
    three = [xcorr.Conv3D(2, in_channels=1, out_channels=1, data_format="channels_last")]
    assert xcorr.receptive_field(three, input_shape=(4, 5, 6, 1)).layers[0].output_shape == (3, 4, 5)


# -- errors ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("layers", "match"),
    [
        (
            [Window(3), Window((3,))],
            r"layers\[1\] is 1-D \(Window\(\(3,\).*\) but layers\[0\] is 2-D \(Window\(\(3, 3\)",
        ),
        (
            [Window((3, 3, 3)), Window(2), Window(2)],
            r"layers\[1\] is 2-D .* but layers\[0\] is 3-D .*same number of spatial axes",
        ),
        (
            [xcorr.Conv1D(3, in_channels=1, out_channels=1), xcorr.Conv2D(3)],
            r"layers\[1\] is 2-D .* layers\[0\] is 1-D",
        ),
        (
            [Window((2,)), Window((2,)), xcorr.Conv3D(3, in_channels=1, out_channels=1)],
            r"layers\[2\] is 3-D .* layers\[0\] is 1-D",
        ),
    ],
)
def test_mixed_dimensions_raise(layers, match):
    with pytest.raises(ValueError, match=match):
        xcorr.receptive_field(layers)


def test_mixed_torch_dimensions_raise():
    nn = require_module("torch").nn
    with pytest.raises(ValueError, match=r"layers\[1\] is 3-D .* layers\[0\] is 1-D"):
        xcorr.receptive_field(nn.Sequential(nn.Conv1d(1, 1, 3), nn.MaxPool3d(2)))


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "match"),
    [
        (
            ((3, 3, 3, 3),),
            {},
            ValueError,
            r"kernel_size must be an int or a sequence of 1, 2 or 3 ints .*; got \(3, 3, 3, 3\)",
        ),
        (((),), {}, ValueError, r"kernel_size must be an int or a sequence of 1, 2 or 3 ints"),
        (
            ((3, 3, 3),),
            {"stride": (1, 2)},
            ValueError,
            r"stride must be an int or a sequence of 3 ints \(one per axis of a 3-D window\); got \(1, 2\)",
        ),
        (
            ((5,),),
            {"dilation": (1, 1)},
            ValueError,
            r"dilation must be an int or a sequence of 1 int .*; got \(1, 1\)",
        ),
        (((5,),), {"stride": (0,)}, ValueError, r"stride must be >= 1; got \(0,\)"),
        (((3, 3, 0),), {}, ValueError, r"kernel_size must be >= 1; got \(3, 3, 0\)"),
        (((3, 3, 3),), {"dilation": 1.5}, TypeError, r"dilation must be an int or a sequence of 3 ints"),
        (
            ((3, 3, 3),),
            {"padding": (1, 1)},
            ValueError,
            r"padding must be an int >= 0, a sequence of 3 \(one per axis of a 3-D window\).*; got \(1, 1\)",
        ),
        (((5,),), {"padding": (1, 2)}, ValueError, r"padding must be .* a sequence of 1 .*; got \(1, 2\)"),
        (((5,),), {"padding": ((1, 2, 3),)}, ValueError, r"padding must be .*; got \(\(1, 2, 3\),\)"),
        (((5,),), {"padding": (-1,)}, ValueError, r"padding must be .*; got \(-1,\)"),
        (
            ((3, 3, 3),),
            {"padding": "sane"},
            ValueError,
            r"padding must be .* or one of 'valid', 'same', 'full', 'SAME', 'SAME_LOWER'; got 'sane'",
        ),
    ],
)
def test_window_lengths_must_agree(args, kwargs, error, match):
    with pytest.raises(error, match=match):
        Window(*args, **kwargs)


def test_windows_in_every_dimension():
    one, three = Window((5,), stride=2, padding="same"), Window((3, 1, 2), dilation=2, padding=(1, 0, (2, 0)))
    assert (one.ndim, Window(2).ndim, three.ndim) == (1, 2, 3)
    assert repr(one) == "Window((5,), stride=(2,), dilation=(1,), padding='same')"
    assert (one.span, one.pad_before, one.pad_after, one.output_shape((3, 10))) == ((5,), (2,), (2,), (5,))
    assert (three.span, three.pad_before, three.pad_after) == ((5, 1, 3), (1, 0, 2), (1, 0, 0))
    assert three.describe() == "3x1x2 s1 d2 p(1,1)x(0,0)x(2,0)"
    assert Window((3, 3, 3), padding=2) == Window((3, 3, 3), padding=(2, 2, (2, 2)))
    with pytest.raises(
        ValueError,
        match=r"does not fit an input of shape \(2, 4, 4\): its dilated window spans 5 elements along axis -3",
    ):
        three.output_shape((2, 4, 4))
    transposed = TransposedWindow((2, 2, 2), stride=2, output_padding=(0, 1, 0))
    assert transposed.output_shape((3, 3, 3)) == (6, 7, 6) and transposed.describe() == "T 2 s2 d1 p0 op0x1x0"
    with pytest.raises(ValueError, match=r"output_padding must be an int or a sequence of 3 ints"):
        TransposedWindow((2, 2, 2), output_padding=(0, 1))


# -- the measured field -------------------------------------------------------------------------------


def test_empirical_field_in_1d_and_3d():
    torch = require_module("torch")
    field = xcorr.empirical_receptive_field(
        torch.nn.Conv3d(1, 1, (1, 2, 1)).double(),
        torch.ones(1, 1, 2, 3, 2, dtype=torch.float64),
        (0, 0, 1, 1, 0),
        ndim=3,
    )
    assert (field.mask.shape, field.bounds, field.size) == ((2, 3, 2), ((1, 1), (1, 2), (0, 0)), (1, 2, 1))
    assert str(field) == ". .\n. .\n. .\n\n. .\n# .\n# ."
    line = xcorr.EmpiricalField(np.zeros(4), np.array([0, 1, 1, 0], bool), "vjp")
    assert (str(line), line.bounds, line.size) == (". # # .", ((1, 2),), (2,))
    # by default a function's mask covers the last two axes; a 1-D stack's its last one
    function = xcorr.empirical_receptive_field(lambda x: x[..., 1:], torch.ones(2, 5, dtype=torch.float64), (0, 2))
    assert function.mask.shape == (2, 5)
    with pytest.raises(ValueError, match=r"ndim must be 1, 2 or 3 \(the number of spatial axes\); got 4"):
        xcorr.empirical_receptive_field(lambda x: x, torch.ones(3, 3), (0, 0), ndim=4)
    with pytest.raises(ValueError, match=r"x must have at least 3 dimensions \(\.\.\., D, H, W\); got shape \(3, 3\)"):
        xcorr.empirical_receptive_field(lambda x: x, torch.ones(3, 3), (0, 0), ndim=3)


def test_keras_like_layers_are_read_as_keras_means_them():
    """Keras' attribute names: ``strides``, ``dilation_rate``, "same" (lax's "SAME") and "causal" (checked
    against the shapes and gradients of keras' own layers on jax by hand; keras is not imported here)."""

    class Conv1D:  # as keras.layers.Conv1D(1, 3, dilation_rate=2, padding="causal") keeps them
        kernel_size, strides, dilation_rate, padding, data_format = (3,), (1,), (2,), "causal", "channels_last"

    class Conv2D:
        kernel_size, strides, dilation_rate, padding, data_format = (2, 4), (3, 2), (1, 1), "same", "channels_last"

    causal = xcorr.receptive_field([Conv1D()], input_shape=(1, 12, 1))
    assert causal.windows == (Window((3,), dilation=2, padding=((4, 0),)),)
    assert (causal.channels_last, causal.layers[0].output_shape, causal.bounds((0,))) == (True, (12,), ((-4, 0),))
    same = xcorr.receptive_field([Conv2D()], input_shape=(1, 11, 8, 1))
    assert same.windows == (Window((2, 4), stride=(3, 2), padding="SAME"),)
    # lax's SAME, 4 outputs per axis: rows padded (4 - 1) * 3 + 2 - 11 = 0, columns (4 - 1) * 2 + 4 - 8 = 2, one before
    assert (same.layers[0].output_shape, same.bounds((0, 0))) == ((4, 4), ((0, 1), (-1, 2)))


def test_keras_like_transposed_layers_are_refused():
    class Conv2DTranspose:
        kernel_size, strides, dilation_rate, padding, output_padding = (3, 3), (2, 2), (1, 1), "same", None

    with pytest.raises(TypeError, match=r"layers\[1\] \(Conv2DTranspose\) looks like a Keras transposed convolution"):
        xcorr.receptive_field([Window(3), Conv2DTranspose()])


def test_empirical_mixed_dimensions_raise():
    """A stack whose layers disagree on their number of axes is refused before it runs, naming the
    entries, as receptive_field refuses it; layers without a window (a function) say nothing."""
    layers = [xcorr.Conv1D(3, in_channels=1, out_channels=1, seed=1), abs, xcorr.Conv2D(3, seed=2)]
    with pytest.raises(ValueError, match=r"fn\[2\] is 2-D .* but fn\[0\] is 1-D .*same number of spatial axes"):
        xcorr.empirical_receptive_field(layers, np.ones((1, 9, 9)), (0, 0))
