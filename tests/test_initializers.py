"""Initializers of Conv2D / Conv2DTranspose: torch's fans, the distributions' bounds and moments,
the callable form, and the same numbers on every backend."""

from __future__ import annotations

import math

import numpy as np
import pytest

import xcorr

from matrix import require_module

init = xcorr.initializers


def name_of(backend):
    return backend.library


@pytest.mark.parametrize(
    ("shape", "transposed"),
    [
        ((8, 3, 3, 3), False),
        ((6, 2, 1, 5), False),
        ((4, 5, 3, 2), True),
        ((1, 1, 7, 7), True),
    ],
)
def test_fans_are_torchs(shape, transposed):
    torch = require_module("torch")
    weight = torch.empty(shape)
    assert init.fans(shape) == torch.nn.init._calculate_fan_in_and_fan_out(weight)
    # The layers' weights are the shapes torch's modules hold.
    c0, c1, kh, kw = shape
    if transposed:
        layer = xcorr.Conv2DTranspose(
            (kh, kw), in_channels=c0, out_channels=c1, backend="numpy"
        )
        module = torch.nn.ConvTranspose2d(c0, c1, (kh, kw))
    else:
        layer = xcorr.Conv2D((kh, kw), in_channels=c1, out_channels=c0, backend="numpy")
        module = torch.nn.Conv2d(c1, c0, (kh, kw))
    assert tuple(layer.weight.shape) == tuple(module.weight.shape) == shape
    # torch's default: every weight and bias within 1/sqrt(fan_in), on both kinds of layer.
    fan_in = init.fans(shape)[0]
    bound = 1 / math.sqrt(fan_in)
    assert np.abs(layer.weight).max() <= bound and np.abs(layer.bias).max() <= bound
    assert module.weight.abs().max().item() <= bound + 1e-7


def test_default_draw_is_unchanged_and_named():
    """The channel layers' default is the seeded uniform draw on +-1/sqrt(fan_in), weight then bias."""
    layer = xcorr.Conv2D(
        3,
        in_channels=4,
        out_channels=6,
        groups=2,
        backend="numpy",
        dtype="float64",
        seed=5,
    )
    rng = np.random.default_rng(5)
    bound = 1 / math.sqrt(2 * 3 * 3)
    np.testing.assert_array_equal(
        layer.weight, rng.uniform(-bound, bound, (6, 2, 3, 3))
    )
    np.testing.assert_array_equal(layer.bias, rng.uniform(-bound, bound, (6,)))
    named = xcorr.Conv2D(
        3,
        in_channels=4,
        out_channels=6,
        groups=2,
        backend="numpy",
        dtype="float64",
        seed=5,
        weight_init="torch_default",
        bias_init="torch_default",
    )
    np.testing.assert_array_equal(named.weight, layer.weight)
    np.testing.assert_array_equal(named.bias, layer.bias)
    # The single-plane layer keeps the seed notebook's standard normal.
    plane = xcorr.Conv2D((2, 3), backend="numpy", dtype="float64", seed=5)
    rng = np.random.default_rng(5)
    np.testing.assert_array_equal(plane.weight, rng.standard_normal((2, 3)))
    assert plane.bias == rng.standard_normal(())


# name -> (kind, scale as a function of (fan_in, fan_out)): uniform bound or normal standard deviation.
DISTRIBUTIONS = {
    "torch_default": ("uniform", lambda i, o: 1 / math.sqrt(i)),
    "glorot_uniform": ("uniform", lambda i, o: math.sqrt(6 / (i + o))),
    "xavier_uniform": ("uniform", lambda i, o: math.sqrt(6 / (i + o))),
    "he_uniform": ("uniform", lambda i, o: math.sqrt(6 / i)),
    "kaiming_uniform": ("uniform", lambda i, o: math.sqrt(6 / i)),
    "xavier_normal": ("normal", lambda i, o: math.sqrt(2 / (i + o))),
    "kaiming_normal": ("normal", lambda i, o: math.sqrt(2 / i)),
    "glorot_normal": ("truncated", lambda i, o: math.sqrt(2 / (i + o))),
    "he_normal": ("truncated", lambda i, o: math.sqrt(2 / i)),
    "normal": ("normal", lambda i, o: 1.0),
}


@pytest.mark.parametrize("name", list(DISTRIBUTIONS))
@pytest.mark.parametrize("transposed", [False, True], ids=["conv", "transposed"])
def test_named_weight_initializers(name, transposed):
    kind, scale = DISTRIBUTIONS[name]
    cls = xcorr.Conv2DTranspose if transposed else xcorr.Conv2D
    layer = cls(
        3,
        in_channels=32,
        out_channels=64,
        groups=2,
        backend="numpy",
        dtype="float64",
        weight_init=name,
    )
    w = layer.weight
    fan_in, fan_out = init.fans(w.shape)
    assert (fan_in, fan_out) == (
        (32 if transposed else 16) * 9,
        (32 if transposed else 64) * 9,
    )
    s = scale(fan_in, fan_out)
    assert w.std() == pytest.approx(
        s / math.sqrt(3) if kind == "uniform" else s, rel=0.03
    )
    assert abs(w.mean()) < 0.03 * s
    if kind == "uniform":
        assert np.abs(w).max() <= s and np.abs(w).max() > 0.99 * s
    elif (
        kind == "truncated"
    ):  # Keras: truncated at two standard deviations of the untruncated normal
        assert np.abs(w).max() <= 2 * s / 0.87962566103423978
    else:
        assert (
            np.abs(w).max() > 3 * s
        )  # an untruncated normal of ~9000 draws reaches past 3 sigma


def test_zeros_normal_and_callables():
    layer = xcorr.Conv2D(
        3,
        in_channels=2,
        out_channels=4,
        backend="numpy",
        weight_init="zeros",
        bias_init="zeros",
    )
    assert not layer.weight.any() and not layer.bias.any()
    calls = []

    def ones(shape, dtype, rng):
        calls.append((shape, dtype, type(rng)))
        return np.ones(shape)

    layer = xcorr.Conv2DTranspose(
        2,
        in_channels=2,
        out_channels=4,
        groups=2,
        backend="numpy",
        weight_init=ones,
        bias_init=init.normal(std=0.02),
    )
    assert calls == [((2, 2, 2, 2), np.dtype("float64"), np.random.Generator)]
    assert layer.weight.dtype == np.float32 and (layer.weight == 1).all()
    # The weight's callable drew nothing: the bias's draw is the generator's first.
    np.testing.assert_array_equal(
        layer.bias,
        (0.02 * np.random.default_rng(0).standard_normal(4)).astype(np.float32),
    )
    big = xcorr.Conv2D(
        1,
        in_channels=100,
        out_channels=100,
        backend="numpy",
        dtype="float64",
        weight_init=init.normal(0.5, mean=1),
    )
    assert big.weight.mean() == pytest.approx(
        1, abs=0.02
    ) and big.weight.std() == pytest.approx(0.5, rel=0.03)
    u = xcorr.Conv2D(
        1,
        in_channels=100,
        out_channels=100,
        backend="numpy",
        weight_init=init.uniform(2, 3),
        bias_init=init.constant(7),
    )
    assert u.weight.min() >= 2 and u.weight.max() < 3 and (u.bias == 7).all()


def test_initializers_give_the_same_numbers_on_every_backend(backend):
    kwargs = dict(
        in_channels=4,
        out_channels=6,
        groups=2,
        dtype="float64",
        seed=3,
        weight_init="he_normal",
        bias_init="normal",
    )
    reference = xcorr.Conv2DTranspose(3, backend="numpy", **kwargs)
    layer = xcorr.Conv2DTranspose(3, backend=name_of(backend), **kwargs)
    np.testing.assert_array_equal(backend.to_numpy(layer.weight), reference.weight)
    np.testing.assert_array_equal(backend.to_numpy(layer.bias), reference.bias)
    custom = xcorr.Conv2D(
        2,
        in_channels=2,
        out_channels=2,
        backend=name_of(backend),
        dtype="float32",
        weight_init=lambda shape, dtype, rng: rng.uniform(0, 1, shape),
    )
    expected = np.random.default_rng(0).uniform(0, 1, (2, 2, 2, 2)).astype(np.float32)
    np.testing.assert_array_equal(backend.to_numpy(custom.weight), expected)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (
            {"weight_init": "lecun"},
            ValueError,
            r"weight_init must be one of 'torch_default', .* got 'lecun'",
        ),
        (
            {"bias_init": "glorot_uniform"},
            ValueError,
            r"bias_init must be one of 'torch_default', 'normal', 'zeros'",
        ),
        (
            {"weight_init": 3},
            TypeError,
            r"weight_init must be a name or a callable .* got int",
        ),
        (
            {"weight_init": lambda shape, dtype, rng: np.ones(3)},
            ValueError,
            r"weight_init must return an array of shape \(2, 1, 3, 3\); got shape \(3,\)",
        ),
        (
            {"bias_init": lambda shape, dtype, rng: np.ones(shape, dtype=complex)},
            TypeError,
            r"bias_init must return real numbers",
        ),
    ],
)
def test_bad_initializers(kwargs, error, match):
    with pytest.raises(error, match=match):
        xcorr.Conv2D(3, in_channels=1, out_channels=2, backend="numpy", **kwargs)


def test_bad_initializer_arguments():
    with pytest.raises(
        ValueError, match=r"std must be a finite positive number; got -1.0"
    ):
        init.normal(-1)
    with pytest.raises(TypeError, match=r"std must be a real number; got '1'"):
        init.normal("1")
    with pytest.raises(ValueError, match=r"uniform needs low < high"):
        init.uniform(1, 1)
