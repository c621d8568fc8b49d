"""Receptive fields: closed forms on hand-checked stacks, and agreement with autodiff on every backend."""

from __future__ import annotations

import numpy as np
import pytest

import xcorr
from xcorr import Window

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
        (((3, 3, 3),), {}, ValueError, r"kernel_size must be an int or a sequence of 1 or 2 ints"),
        ((2.5,), {}, TypeError, r"kernel_size must be an int"),
        ((3,), {"stride": 0}, ValueError, r"stride must be >= 1; got 0"),
        ((3,), {"dilation": (1, 0)}, ValueError, r"dilation must be >= 1"),
        ((3,), {"padding": -1}, ValueError, r"padding must be >= 0; got -1"),
        ((3,), {"padding": "sane"}, ValueError, r"padding must be an int >= 0, a pair of them, or one of 'valid', 'same', 'full'; got 'sane'"),
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
