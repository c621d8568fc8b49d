"""Receptive fields: closed forms on hand-checked stacks, and agreement with autodiff on every backend."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

import xcorr
from xcorr import Window

from matrix import backends_where, require_module

AUTODIFF = backends_where(lambda b: b.adapter.autodiff)

# -- closed forms, checked by hand ------------------------------------------------

# (stack, per-layer sizes, per-layer jumps, per-layer starts), one axis (both axes agree).
HAND_CHECKED = {
    # two 3x3 layers: the d2l chapter's "deeper means wider" in its simplest form
    "two 3x3": ([Window(3), Window(3)], [3, 5], [1, 1], [1, 2]),
    # VGG block: 3x3 "same" convs and 2x2 stride-2 pooling; the pooling makes the field even
    "vgg": (
        [Window(3, padding=1), Window(3, padding=1), Window(2, stride=2)] * 2,
        [3, 5, 6, 10, 14, 16],
        [1, 1, 2, 2, 2, 4],
        [0, 0, 0.5, 0.5, 0.5, 1.5],
    ),
    # AlexNet's feature extractor: 195 pixels, jump 32 (Araujo et al. 2019, table of networks)
    "alexnet": (
        [
            Window(11, stride=4),
            Window(3, stride=2),
            Window(5, padding=2),
            Window(3, stride=2),
            Window(3, padding=1),
            Window(3, padding=1),
            Window(3, padding=1),
            Window(3, stride=2),
        ],
        [11, 19, 51, 67, 99, 131, 163, 195],
        [4, 8, 8, 16, 16, 16, 16, 32],
        [5, 9, 9, 17, 17, 17, 17, 33],
    ),
    # dilations 1, 2, 4 (Yu & Koltun's context module): the field doubles plus one each layer
    "dilated": ([Window(3), Window(3, dilation=2), Window(3, dilation=4)], [3, 7, 15], [1, 1, 1], [1, 3, 7]),
    # a stride before a dilation multiplies: 3 + (5 - 1) * 2
    "stride then dilation": ([Window(3, stride=2), Window(3, dilation=2)], [3, 11], [2, 2], [1, 5]),
    # "same" and "full" paddings move the start: (k'-1)//2 and k'-1 before the input
    "same odd": ([Window(3, padding="same"), Window(5, padding="same", dilation=2)], [3, 11], [1, 1], [0, 0]),
    "same even": ([Window(2, padding="same"), Window(4, padding="same")], [2, 5], [1, 1], [0.5, 1]),
    "full": ([Window(3, padding="full"), Window(2, padding="full", stride=3)], [3, 4], [1, 3], [-1, -1.5]),
    "valid string": ([Window(2, padding="valid", stride=2)] * 3, [2, 4, 8], [2, 4, 8], [0.5, 1.5, 3.5]),
}


@pytest.mark.parametrize("name", HAND_CHECKED)
def test_hand_checked_stacks(name):
    stack, sizes, jumps, starts = HAND_CHECKED[name]
    rf = xcorr.receptive_field(stack)
    assert [layer.size for layer in rf.layers] == [(s, s) for s in sizes]
    assert [layer.jump for layer in rf.layers] == [(j, j) for j in jumps]
    assert [layer.start for layer in rf.layers] == [(s, s) for s in starts]
    assert (rf.size, rf.jump, rf.start) == (rf.layers[-1].size, rf.layers[-1].jump, rf.layers[-1].start)
    assert (rf.rows.size, rf.cols.jump) == (sizes[-1], jumps[-1])


def test_closed_form_sums():
    # r = 1 + sum (k'_l - 1) prod_{i<l} s_i; u = -sum p_l prod_{i<l} s_i (Araujo et al., eqs. 2 and 5)
    rng = np.random.default_rng(0)
    for _ in range(50):
        n = int(rng.integers(1, 6))
        k, s, d, p = (rng.integers(1, 5, size=n) for _ in range(4))
        p = p - 1
        stack = [Window(int(a), stride=int(b), dilation=int(c), padding=int(e)) for a, b, c, e in zip(k, s, d, p)]
        prods = np.concatenate([[1], np.cumprod(s)[:-1]])
        size = 1 + int(np.sum((d * (k - 1)) * prods))
        first = -int(np.sum(p * prods))
        rf = xcorr.receptive_field(stack)
        assert rf.size == (size, size)
        assert rf.jump == (int(np.prod(s)),) * 2
        assert rf.start == (first + (size - 1) / 2,) * 2


def test_axes_are_independent():
    # the seed's (1, 2) kernel, then a (3, 1) kernel with a row stride
    rf = xcorr.receptive_field([Window((1, 2)), Window((3, 1), stride=(2, 1), padding=(1, 0))])
    assert rf.layers[0].size == (1, 2)
    assert rf.layers[0].start == (0, 0.5)
    assert (rf.size, rf.jump, rf.start) == ((3, 2), (2, 1), (0, 0.5))


def test_bounds_of_an_output_element():
    rf = xcorr.receptive_field([Window(3, padding=1), Window(2, stride=2), Window(3, padding=1)])
    # size 3 + 1 + 2*2 = 8, jump 2, first field starts at -1 - 2 = -3
    assert rf.size == (8, 8)
    assert rf.bounds((0, 0)) == ((-3, 4), (-3, 4))
    assert rf.bounds((2, 5)) == ((1, 8), (7, 14))
    assert rf.bounds((7, 0, 2, 5)) == rf.bounds((2, 5))  # leading (batch, channel) entries ignored


def test_output_shapes_and_table():
    stack = [Window(3), Window(2, stride=2), Window(3, dilation=2, padding="same"), Window((1, 2))]
    rf = xcorr.receptive_field(stack, input_shape=(3, 10, 12))
    assert [layer.output_shape for layer in rf.layers] == [(8, 10), (4, 5), (4, 5), (4, 4)]
    assert rf.input_shape == (10, 12)
    lines = str(rf).splitlines()
    assert lines[0].split() == ["layer", "window", "size", "jump", "start", "output"]
    assert lines[2].split() == ["input", "1", "1", "0", "10x12"]
    assert lines[3].split() == ["0:", "Window", "3", "s1", "d1", "p0", "3", "1", "1", "8x10"]
    assert lines[4].split() == ["1:", "Window", "2", "s2", "d1", "p0", "4", "2", "1.5", "4x5"]
    assert lines[5].split() == ["2:", "Window", "3", "s1", "d2", "same", "12", "2", "1.5", "4x5"]
    assert lines[6].split() == ["3:", "Window", "1x2", "s1", "d1", "p0", "12x14", "2", "1.5,", "2.5", "4x4"]
    assert len(lines) == 7
    assert "output" not in str(xcorr.receptive_field(stack))


@pytest.mark.parametrize(
    ("stack", "shape", "index", "rows", "cols"),
    [
        # a dilated layer reads every other input: the field has holes
        ([Window(3, dilation=2)], (7, 7), (0, 1), [0, 2, 4], [1, 3, 5]),
        # offsets {0, 1} + 2 * {0, 2}: holes between the pooled pairs
        ([Window(2, stride=2), Window(2, dilation=2)], (8, 8), (0, 0), [0, 1, 4, 5], [0, 1, 4, 5]),
        # "same" padding: the corner output's field is clipped to the input
        ([Window(3, padding="same"), Window(3, padding="same")], (6, 6), (0, 5), [0, 1, 2], [3, 4, 5]),
        # taps that land in the second layer's padding reach no input
        ([Window(3), Window(5, padding="same")], (6, 6), (0, 0), [0, 1, 2, 3, 4], [0, 1, 2, 3, 4]),
        # column 2 of the last layer reads layer-0 columns 4, 5 and 6; column 6 is padding
        ([Window(3), Window(3, stride=3, padding=2)], (8, 8), (0, 2), [0, 1, 2], [4, 5, 6, 7]),
    ],
)
def test_mask_by_hand(stack, shape, index, rows, cols):
    mask = xcorr.receptive_field(stack).mask(index, shape)
    expected = np.zeros(shape, dtype=bool)
    expected[np.ix_(rows, cols)] = True
    np.testing.assert_array_equal(mask, expected)


def test_a_single_layer_is_a_stack_of_one():
    assert xcorr.receptive_field(Window(3, stride=2)).size == (3, 3)
    assert xcorr.receptive_field((Window(3), Window(3))).size == (5, 5)


# -- bad layer descriptions ----------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "match"),
    [
        ((0,), {}, ValueError, r"kernel_size must be >= 1; got 0"),
        (((3, 3, 3, 3),), {}, ValueError, r"kernel_size must be an int or a sequence of 1, 2 or 3 ints"),
        ((2.5,), {}, TypeError, r"kernel_size must be an int"),
        ((3,), {"stride": 0}, ValueError, r"stride must be >= 1; got 0"),
        ((3,), {"dilation": (1, 0)}, ValueError, r"dilation must be >= 1"),
        ((3,), {"padding": -1}, ValueError, r"padding must be >= 0; got -1"),
        ((3,), {"padding": "sane"}, ValueError, r"padding must be an int >= 0, a pair of them, .* or one of 'valid', 'same', 'full', 'SAME', 'SAME_LOWER'; got 'sane'"),
        ((3,), {"padding": ((1, 2), (3, -1))}, ValueError, r"padding must be an int >= 0, .*\(\(top, bottom\), \(left, right\)\)"),
        ((3,), {"padding": ((1, 2), (3, 0.5))}, TypeError, r"padding must be an int >= 0"),
        ((3,), {"padding": 1.5}, TypeError, r"padding must be an int >= 0"),
        ((3,), {"padding": (1, 2, 3)}, ValueError, r"padding must be an int >= 0, a pair"),
        ((3,), {"padding": True}, TypeError, r"padding must be an int >= 0"),
    ],
)
def test_bad_windows(args, kwargs, error, match):
    with pytest.raises(error, match=match):
        Window(*args, **kwargs)


def test_window_options_are_keyword_only():
    with pytest.raises(TypeError):
        Window(3, 2)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("layers", "kwargs", "error", "match"),
    [
        ([], {}, ValueError, r"layers must contain at least one Conv2D layer or Window; got an empty sequence"),
        (5, {}, TypeError, r"layers must be a sequence of Conv2D layers and/or Windows; got int"),
        ("conv3x3", {}, TypeError, r"layers must be a sequence .* got str"),
        ([Window(3), "conv3x3"], {}, TypeError, r"layers\[1\] must be an xcorr.Conv2D, an xcorr.Window.* got str"),
        ([Window(3), np.ones((3, 3))], {}, TypeError, r"layers\[1\] must be an xcorr.Conv2D.* got ndarray"),
        ([Window], {}, TypeError, r"layers\[0\] must be an xcorr.Conv2D.* got type"),
        ([Window(3), Window(5)], {"input_shape": (6, 6)}, ValueError, r"layers\[1\]: Window\(\(5, 5\).*does not fit an input of shape \(4, 4\)"),
        ([Window(3, dilation=3)], {"input_shape": (6, 6)}, ValueError, r"layers\[0\]: .*dilated window spans 7"),
        ([Window(3)], {"input_shape": (0, 6)}, ValueError, r"input_shape must be \(..., H, W\) with H, W >= 1"),
        ([Window(3)], {"input_shape": (6,)}, ValueError, r"input_shape must be \(..., H, W\)"),
        ([Window(3)], {"input_shape": ("a", 6)}, TypeError, r"input_shape must be a sequence of ints"),
    ],
)
def test_bad_stacks(layers, kwargs, error, match):
    with pytest.raises(error, match=match):
        xcorr.receptive_field(layers, **kwargs)


def test_duck_typed_layer_with_bad_geometry():
    class Pool:
        kernel_size = 2
        stride = None  # torch pooling: stride defaults to the kernel size
        padding = 0

    class Broken:
        kernel_size = 2
        padding = -3

    class NoPadding:
        kernel_size = 3

    assert xcorr.receptive_field([Pool()]).jump == (2, 2)
    with pytest.raises(ValueError, match=r"layers\[0\] \(Broken\) has an invalid geometry: padding must be >= 0"):
        xcorr.receptive_field([Broken()])
    with pytest.raises(TypeError, match=r"layers\[1\] \(NoPadding\) has a kernel_size but neither a mode nor a padding"):
        xcorr.receptive_field([Window(2), NoPadding()])


def test_bad_mask_arguments():
    rf = xcorr.receptive_field([Window(3), Window(3)])
    with pytest.raises(IndexError, match=r"index \(2, 0\) is outside the stack's output of shape \(2, 2\)"):
        rf.mask((2, 0), (6, 6))
    with pytest.raises(ValueError, match=r"index must end in \(row, column\)"):
        rf.mask((1,), (6, 6))
    with pytest.raises(TypeError, match=r"index must be a sequence of ints"):
        rf.mask((0.5, 1), (6, 6))
    with pytest.raises(ValueError, match=r"shape must have at least 2 entries"):
        rf.mask((0, 0), (6,))


# -- feature maps and the measured field ----------------------------------------------


def corr_layer(backend, **options):
    """A 3x3 correlation with positive weights as a plain function (no Conv2D needed)."""
    k = backend.asarray(np.ones((3, 3)))
    return lambda x: xcorr.corr2d(x, k, **options)


LAYER_OPTIONS = [{}, {"stride": 2}, {"dilation": 2, "mode": "same"}]
LAYER_WINDOWS = [Window(3), Window(3, stride=2), Window(3, dilation=2, padding="same")]


def test_feature_maps_keep_every_output(backend):
    layers = [corr_layer(backend, **options) for options in LAYER_OPTIONS]
    x = np.random.default_rng(0).random((13, 14))
    maps = xcorr.feature_maps(layers, backend.asarray(x))
    assert [tuple(m.shape) for m in maps] == [(11, 12), (5, 5), (5, 5)]
    rf = xcorr.receptive_field(LAYER_WINDOWS, input_shape=x.shape)
    assert [layer.output_shape for layer in rf.layers] == [(11, 12), (5, 5), (5, 5)]
    ones = np.ones((3, 3))
    first = xcorr.corr2d(x, ones)
    np.testing.assert_allclose(backend.to_numpy(maps[0]), first, rtol=1e-12)
    np.testing.assert_allclose(backend.to_numpy(maps[1]), xcorr.corr2d(first, ones, stride=2), rtol=1e-12)


@pytest.mark.parametrize(
    ("layers", "error", "match"),
    [
        ([], ValueError, r"layers must contain at least one layer; got an empty sequence"),
        ([Window(3)], TypeError, r"layers\[0\] is a Window, which describes a layer's geometry but computes nothing"),
        ([abs, 3], TypeError, r"layers\[1\] must be a callable layer \(x -> y\).* got int"),
        (3, TypeError, r"layers must be a sequence of layers .* got int"),
    ],
)
def test_feature_maps_errors(layers, error, match):
    with pytest.raises(error, match=match):
        xcorr.feature_maps(layers, np.ones((4, 4)))


@pytest.mark.parametrize("backend", AUTODIFF, indirect=True, ids=str)
@pytest.mark.parametrize("index", [(0, 0), (2, 3), (4, 4)])
def test_measured_field_of_a_function(backend, index):
    # torch and jax differentiate any function; the other libraries need a Conv2D stack (below)
    layers = [corr_layer(backend, **options) for options in LAYER_OPTIONS]

    def network(x):
        for layer in layers:
            x = layer(x)
        return x

    x = backend.asarray(np.random.default_rng(1).random((13, 14)))
    field = xcorr.empirical_receptive_field(network, x, index)
    assert field.method == ("torch.autograd" if backend.name.startswith("torch") else "jax.grad")
    expected = xcorr.receptive_field(LAYER_WINDOWS).mask(index, x.shape)
    np.testing.assert_array_equal(field.mask, expected)
    assert field.gradient.shape == (13, 14)
    assert (field.gradient[expected] > 0).all()


def test_measured_field_reports_the_mask():
    field = xcorr.EmpiricalField(np.zeros((3, 4)), np.array([[0, 1, 1, 0], [0, 0, 1, 0], [0, 0, 0, 0]], bool), "vjp")
    assert field.bounds == ((0, 1), (1, 2))
    assert field.size == (2, 2)
    assert str(field).splitlines() == [". # # .", ". . # .", ". . . ."]
    empty = xcorr.EmpiricalField(np.zeros((2, 2)), np.zeros((2, 2), bool), "vjp")
    assert (empty.bounds, empty.size) == (None, (0, 0))


def test_measured_field_errors(backend):
    x = backend.asarray(np.ones((6, 6)))
    layer = corr_layer(backend)
    with pytest.raises(TypeError, match=r"x must be an array of an array-API library; got list"):
        xcorr.empirical_receptive_field([layer], [[1.0, 2.0]], (0, 0))
    with pytest.raises(TypeError, match=r"x must have a real floating dtype to be differentiated"):
        xcorr.empirical_receptive_field([layer], backend.asarray(np.ones((6, 6), dtype="int64")), (0, 0))
    with pytest.raises(ValueError, match=r"x must have at least 2 dimensions"):
        xcorr.empirical_receptive_field([layer], backend.asarray(np.ones(6)), (0,))
    with pytest.raises(TypeError, match=r"fn\[0\] is a Window"):
        xcorr.empirical_receptive_field([Window(3)], x, (0, 0))
    if backend.adapter.autodiff:
        with pytest.raises(ValueError, match=r"index must have between 2 and 2 entries"):
            xcorr.empirical_receptive_field(layer, x, (0, 0, 0))
        with pytest.raises(IndexError, match=r"index \(4, 0\) is outside the output of shape \(4, 4\)"):
            xcorr.empirical_receptive_field(layer, x, (4, 0))
        with pytest.raises(TypeError, match=r"index must be a sequence of ints"):
            xcorr.empirical_receptive_field(layer, x, (0.5, 0))
    else:
        with pytest.raises(TypeError, match=rf"fn must be a sequence of layers on {backend.name}, which has no autodiff"):
            xcorr.empirical_receptive_field(layer, x, (0, 0))
        with pytest.raises(TypeError, match=rf"fn\[1\] must be an xcorr.Conv2D to be differentiated on {backend.name}"):
            xcorr.empirical_receptive_field([xcorr.Conv2D(2, backend=backend.name), layer], x, (0, 0))


def test_one_conv2d_is_a_stack_of_one(backend):
    family = backend.library
    (layer,) = conv_stack(backend, [(3, {"dilation": 2})])
    field = xcorr.empirical_receptive_field(layer, backend.asarray(np.ones((7, 8))), (1, 2))
    expected = np.zeros((7, 8), dtype=bool)
    expected[np.ix_([1, 3, 5], [2, 4, 6])] = True
    np.testing.assert_array_equal(field.mask, expected)
    assert family in ("torch", "jax") or field.method == "vjp"


# -- Conv2D stacks: the closed form against autodiff, on every backend ----------------------


def conv_stack(backend, specs, *, channels=()):
    """Conv2D layers of ``backend`` with positive weights (no accidental cancellation)."""
    family = backend.library
    layers = []
    for n, (kernel_size, options) in enumerate(specs):
        if channels:
            options = {**options, "in_channels": channels[n], "out_channels": channels[n + 1]}
        kind = xcorr.Conv2DTranspose if options.pop("transposed", False) else xcorr.Conv2D
        layer = kind(kernel_size, backend=family, dtype="float64", seed=n, **options)
        rng = np.random.default_rng(n)
        weight = backend.asarray(rng.uniform(0.5, 1.5, tuple(layer.weight.shape)))
        if family == "jax":
            layer = layer.replace(weight=weight)
            if backend.gpu:
                import jax

                layer = jax.device_put(layer, jax.devices("gpu")[0])
        elif family == "torch":
            import torch

            layer = layer.to(weight.device)
            with torch.no_grad():
                layer.weight.copy_(weight)
        else:
            layer.weight = weight
        layers.append(layer)
    return layers


STACKS = {
    # stride then dilation, "same" at the end: the field reaches into the padding at the corner
    "stride, dilation": ([(3, {}), (3, {"stride": 2}), (3, {"dilation": 2, "mode": "same"})], (13, 14), ()),
    # the seed's (1, 2) kernel, a "full" layer, a strided even kernel, a dilated one: holes
    "full, even, holes": (
        [((1, 2), {}), (3, {"mode": "full"}), (2, {"stride": 2}), ((2, 3), {"dilation": (3, 2)})],
        (9, 11),
        (),
    ),
    # wrap and symm boundaries copy input elements into the padding: the field wraps or folds back
    "boundaries": (
        [
            (3, {"mode": "same", "boundary": "wrap"}),
            (2, {"mode": "full", "boundary": "symm", "stride": 2}),
            (3, {"mode": "same", "boundary": "symm", "dilation": 2}),
        ],
        (9, 10),
        (),
    ),
    # channels and groups do not change the spatial field
    "channels": ([(3, {"stride": 2}), (3, {"mode": "same", "groups": 2})], (2, 12, 10), (2, 4, 2)),
}


@pytest.mark.parametrize("name", STACKS)
def test_closed_form_equals_autodiff_on_conv2d_stacks(backend, name):
    specs, shape, channels = STACKS[name]
    layers = conv_stack(backend, specs, channels=channels)
    rf = xcorr.receptive_field(layers, input_shape=shape)
    x = backend.asarray(np.random.default_rng(2).uniform(0.5, 1.5, shape))
    out_h, out_w = rf.layers[-1].output_shape
    method = {"torch": "torch.autograd", "jax": "jax.grad"}.get(backend.name.split("_")[0], "vjp")
    for index in {(0, 0), (out_h - 1, out_w - 1), (out_h // 2, out_w // 2), (0, out_w - 1)}:
        full_index = (channels[-1] - 1, *index) if channels else index
        field = xcorr.empirical_receptive_field(layers, x, full_index)
        assert field.method == method
        expected = rf.mask(index, shape)
        np.testing.assert_array_equal(field.mask, expected, err_msg=f"output {full_index}")
        # the measured field lies in the closed-form box, and fills it when the box is inside the input
        (r0, r1), (c0, c1) = rf.bounds(index)
        (m0, m1), (n0, n1) = field.bounds
        if name != "boundaries":
            assert r0 <= m0 <= m1 <= r1 and c0 <= n0 <= n1 <= c1
        if r0 >= 0 and c0 >= 0 and r1 < shape[-2] and c1 < shape[-1]:
            assert field.bounds == rf.bounds(index) and field.size == rf.size


T = {"transposed": True}
LAST = {"data_format": "channels_last"}
# The other layer kinds: transposed (with strides, dilations, asymmetric padding, output_padding and
# groups), channels-last, asymmetric and lax-"SAME" padding, grouped. (specs, input shape, channels)
NEW_KINDS = {
    "transposed": ([(3, {**T, "stride": 2})], (1, 1, 8, 8), (1, 1)),
    "transposed, padded, grouped": (
        [
            (3, {"stride": 2, "padding": ((1, 0), (0, 2))}),
            ((3, 2), {**T, "stride": (2, 3), "padding": ((1, 0), (2, 1)), "output_padding": (1, 2), "dilation": (2, 1), "groups": 2}),
            (2, {"padding": "SAME", "stride": 2}),
        ],
        (1, 11, 9),
        (1, 2, 2, 1),
    ),
    "channels-last": (
        [(3, {**LAST, "stride": 2, "padding": ((0, 2), (1, 1)), "boundary": "wrap"}), (2, {**LAST, **T, "stride": 3, "groups": 2})],
        (1, 9, 12, 2),
        (2, 4, 2),
    ),
    "padded, grouped": (
        [
            (3, {"padding": ((2, 0), (1, 3)), "boundary": "reflect", "groups": 2}),
            ((2, 3), {"padding": "SAME_LOWER", "stride": 2, "dilation": (1, 2), "groups": 2}),
        ],
        (2, 4, 7, 6),
        (4, 4, 2),
    ),
}


@pytest.mark.parametrize("name", NEW_KINDS)
def test_closed_form_equals_autodiff_on_every_layer_kind(backend, name):
    """Output shapes, masks and bounds of transposed, channels-last, padded and grouped layers against
    the gradient measured on each backend (autodiff, or the layers' VJPs)."""
    specs, shape, channels = NEW_KINDS[name]
    layers = conv_stack(backend, specs, channels=channels)
    last = "channels_last" in str(specs)
    rf = xcorr.receptive_field(layers, input_shape=shape)
    assert rf.channels_last == last
    x = backend.asarray(np.random.default_rng(4).uniform(0.5, 1.5, shape))
    y = x
    for layer in layers:
        y = layer(y)
    out = tuple(y.shape[-3:-1] if last else y.shape[-2:])
    assert rf.layers[-1].output_shape == out
    rng = np.random.default_rng(5)
    picks = {(0, 0), (out[0] - 1, out[1] - 1), (out[0] // 2, out[1] // 2), (0, out[1] - 1)}
    picks |= {(int(rng.integers(out[0])), int(rng.integers(out[1]))) for _ in range(3)}
    for index in sorted(picks):
        full = (*index, channels[-1] - 1) if last else (channels[-1] - 1, *index)
        field = xcorr.empirical_receptive_field(layers, x, full)
        expected = rf.mask(index, shape)
        assert expected.shape == tuple(shape[-3:-1] if last else shape[-2:])
        np.testing.assert_array_equal(field.mask, expected, err_msg=f"output {full}")
        fill = all(layer.boundary == "fill" for layer in layers)  # no copies from elsewhere in the input
        if fill and field.bounds is not None:  # the measured field lies in the closed-form bounds
            (m0, m1), (n0, n1) = field.bounds
            (r0, r1), (c0, c1) = rf.bounds(full if last else index)
            assert r0 <= m0 <= m1 <= r1 and c0 <= n0 <= n1 <= c1, f"output {full}"


def test_receptive_field_of_a_transposed_convolution():
    """The issue's example: a 3x3 transposed convolution at stride 2 turns 8x8 into 17x17; output p reads
    inputs (p - a) / 2 for the taps a = 0, 1, 2 that divide: one input on even rows... two on odd ones."""
    layer = xcorr.Conv2DTranspose(3, in_channels=1, out_channels=1, stride=2, backend="numpy")
    rf = xcorr.receptive_field([layer], input_shape=(1, 1, 8, 8))
    assert rf.layers[0].output_shape == (17, 17) == tuple(layer(np.ones((1, 1, 8, 8), np.float32)).shape[-2:])
    assert rf.layers[0].name == "Conv2DTranspose" and "T 3 s2" in str(rf)
    assert rf.jump == (Fraction(1, 2),) * 2 and rf.size == (2, 2)
    # output 0 reads input 0 (tap 0) and would read input -1 (tap 2): none there
    assert rf.bounds((0, 3)) == ((-1, 0), (1, 1)) and rf.bounds((4, 4)) == ((1, 2), (1, 2))
    assert rf.bounds((16, 0))[0] == (7, 8)  # reaches past the input's last row, where no input is
    mask = rf.mask((0, 3), (1, 1, 8, 8))
    assert np.argwhere(mask).tolist() == [[0, 1]]
    # torch's ConvTranspose2d is read as the same window
    torch = require_module("torch")
    same = xcorr.receptive_field([torch.nn.ConvTranspose2d(1, 1, 3, stride=2)], input_shape=(8, 8))
    assert (same.rows, same.cols, same.layers[0].output_shape) == (rf.rows, rf.cols, (17, 17))


def test_receptive_field_reads_conv2d_layers(backend):
    family = backend.library
    layers = [
        xcorr.Conv2D(3, mode="same", dilation=2, backend=family),
        xcorr.Conv2D((1, 2), stride=(2, 1), backend=family),
        xcorr.Conv2D(2, mode="full", in_channels=1, out_channels=2, backend=family),
    ]
    windows = [
        Window(3, dilation=2, padding="same"),
        Window((1, 2), stride=(2, 1)),
        Window(2, padding="full"),
    ]
    rf, expected = xcorr.receptive_field(layers), xcorr.receptive_field(windows)
    assert [geometry(w) for w in rf.windows] == [geometry(w) for w in windows]
    assert [(f.size, f.jump, f.start) for f in rf.layers] == [(f.size, f.jump, f.start) for f in expected.layers]
    assert [f.name for f in rf.layers] == ["Conv2D"] * 3
    assert rf.size == (5 + 0 + 2, 5 + 1 + 1) and rf.jump == (2, 1)


def test_torch_layers_are_read_too():
    torch = require_module("torch")
    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3, padding=1),
        torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(4, 4, 3, dilation=2, padding="same"),
        torch.nn.AvgPool2d(2),
    )
    rf = xcorr.receptive_field(net)
    windows = [Window(3, padding=1), Window(2, stride=2), Window(3, dilation=2, padding="same"), Window(2, stride=2)]
    assert [geometry(w) for w in rf.windows] == [geometry(w) for w in windows]
    # size 3 + 1 + 4 * 2 + 1 * 2; first field starts at -(1 + 2 * 2): centre -5 + 13 / 2
    assert (rf.size, rf.jump, rf.start) == ((14, 14), (4, 4), (1.5, 1.5))


def geometry(window):
    return (window.kernel_size, window.stride, window.dilation, window.pad_before, window.pad_after)


@pytest.mark.parametrize("padding_mode", ["zeros", "circular", "reflect", "replicate"])
def test_torch_padding_modes(padding_mode):
    torch = require_module("torch")
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 2, 3, padding=2, padding_mode=padding_mode),
        torch.nn.Conv2d(2, 1, (3, 2), stride=2, dilation=(1, 2), padding=1, padding_mode=padding_mode),
    )
    with torch.no_grad():
        for p in net.parameters():
            p.uniform_(0.5, 1.5)
    rf = xcorr.receptive_field(net)
    assert [layer.boundary for layer in rf.layers] == [{"zeros": "fill", "circular": "wrap"}.get(padding_mode, padding_mode)] * 2
    x = torch.rand(1, 1, 7, 9) + 0.5
    for index in [(0, 0), (2, 2), (4, 4)]:
        field = xcorr.empirical_receptive_field(net, x, (0, 0, *index))
        np.testing.assert_array_equal(field.mask, rf.mask(index, x.shape), err_msg=f"output {index}")
