"""Initializers of the layers' parameters: named ones (torch's and Keras' vocabulary) and callables.

Every initializer is a callable ``init(shape, dtype, rng) -> array`` that
draws from the ``numpy.random.Generator`` ``rng`` and returns a NumPy array
(or anything ``numpy.asarray`` takes) of ``shape``. The layers call it with
their seeded generator, in float64, and round the result to the layer's
dtype afterwards, so every backend starts from the same numbers (the weight
is drawn first, then the bias, from one generator).

The fans are those of ``torch.nn.init._calculate_fan_in_and_fan_out`` for a
weight of shape ``(d0, d1, *kernel)``: ``fan_in = d1 * prod(kernel)``,
``fan_out = d0 * prod(kernel)``. For ``Conv2D`` (weight ``(C_out, C_in //
groups, h, w)``) and ``Conv2DTranspose`` (weight ``(C_in, C_out // groups, h,
w)``) that is exactly what torch computes for ``nn.Conv2d`` and
``nn.ConvTranspose2d``. The single-plane layer's ``(h, w)`` kernel counts as a
``(1, 1, h, w)`` weight.

Where the two libraries give one name different meanings, both are kept
under their own names: ``"kaiming_normal"`` and ``"xavier_normal"`` are
torch's (a normal distribution), ``"he_normal"`` and ``"glorot_normal"`` are
Keras' (a normal truncated at two standard deviations, rescaled to the same
variance). The uniform ones agree between the libraries and are aliases.

Examples
--------
>>> import numpy as np
>>> import xcorr
>>> from xcorr import initializers
>>> initializers.fans((8, 3, 3, 3))  # (fan_in, fan_out) of a Conv2D weight
(27, 72)
>>> layer = xcorr.Conv2D(3, in_channels=3, out_channels=8, weight_init="he_uniform", bias_init="zeros")
>>> bool(np.abs(layer.weight).max() <= np.sqrt(6 / 27)), layer.bias.tolist()[:2]
(True, [0.0, 0.0])
>>> layer = xcorr.Conv2D(3, in_channels=3, out_channels=8, weight_init=initializers.normal(std=0.02))
>>> round(float(layer.weight.std()), 3)
0.019
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = [
    "BIAS_NAMES",
    "DEFAULT",
    "WEIGHT_NAMES",
    "constant",
    "fans",
    "normal",
    "resolve",
    "uniform",
]

Initializer = Callable[[tuple, Any, np.random.Generator], Any]

# The standard deviation of a standard normal truncated to [-2, 2]
# (Keras' VarianceScaling divides by it to keep the variance).
_TRUNCATED_STD = 0.87962566103423978


def fans(shape: tuple[int, ...]) -> tuple[int, int]:
    """``(fan_in, fan_out)`` of a weight, as ``torch.nn.init._calculate_fan_in_and_fan_out``.

    ``shape`` is ``(d0, d1, *kernel)`` (or a 2-D ``(h, w)`` kernel of a
    single-plane layer, taken as ``(1, 1, h, w)``).
    """
    shape = tuple(shape)
    if len(shape) == 2:
        shape = (1, 1, *shape)
    if len(shape) < 2:
        msg = f"fans need a weight of at least 2 dimensions; got shape {shape}"
        raise ValueError(msg)
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


def _truncated_normal(rng: np.random.Generator, std: float, shape) -> np.ndarray:
    """Normal values of ``std`` truncated at two standard deviations (redrawn until inside)."""
    z = rng.standard_normal(shape)
    outside = np.abs(z) > 2
    while outside.any():
        z[outside] = rng.standard_normal(int(outside.sum()))
        outside = np.abs(z) > 2
    return z * std


class _Named:
    """A named initializer of a weight whose fans it reads from the shape."""

    def __init__(
        self,
        name: str,
        draw: Callable[[np.random.Generator, tuple, int, int], np.ndarray],
    ):
        self.name = name
        self._draw = draw

    def __call__(self, shape, dtype, rng):
        fan_in, fan_out = fans(shape)
        return self._draw(rng, tuple(shape), fan_in, fan_out)

    def __repr__(self) -> str:
        return f"<initializer {self.name!r}>"


def _fan_in_uniform(rng, shape, fan_in, fan_out):
    # kaiming_uniform_(a=sqrt(5)): gain sqrt(2 / (1 + 5)), bound gain * sqrt(3 / fan_in) = 1 / sqrt(fan_in).
    bound = 1 / math.sqrt(fan_in) if fan_in else 0.0
    return rng.uniform(-bound, bound, shape)


def _glorot_uniform(rng, shape, fan_in, fan_out):
    bound = math.sqrt(6 / (fan_in + fan_out))
    return rng.uniform(-bound, bound, shape)


def _xavier_normal(rng, shape, fan_in, fan_out):
    return rng.standard_normal(shape) * math.sqrt(2 / (fan_in + fan_out))


def _glorot_normal(rng, shape, fan_in, fan_out):
    return _truncated_normal(
        rng, math.sqrt(2 / (fan_in + fan_out)) / _TRUNCATED_STD, shape
    )


def _he_uniform(rng, shape, fan_in, fan_out):
    bound = math.sqrt(6 / fan_in)
    return rng.uniform(-bound, bound, shape)


def _kaiming_normal(rng, shape, fan_in, fan_out):
    return rng.standard_normal(shape) * math.sqrt(2 / fan_in)


def _he_normal(rng, shape, fan_in, fan_out):
    return _truncated_normal(rng, math.sqrt(2 / fan_in) / _TRUNCATED_STD, shape)


def normal(std: float = 1.0, mean: float = 0.0) -> Initializer:
    """Normal values of standard deviation ``std`` around ``mean`` (``torch.nn.init.normal_``)."""
    std, mean = _number("std", std, positive=True), _number("mean", mean)

    def init(shape, dtype, rng):
        return mean + rng.standard_normal(tuple(shape)) * std

    init.__qualname__ = f"normal(std={std!r}, mean={mean!r})"
    return init


def uniform(low: float = -1.0, high: float = 1.0) -> Initializer:
    """Uniform values on ``[low, high)`` (``torch.nn.init.uniform_``, Keras ``RandomUniform``)."""
    low, high = _number("low", low), _number("high", high)
    if not low < high:
        msg = f"uniform needs low < high; got low={low!r}, high={high!r}"
        raise ValueError(msg)

    def init(shape, dtype, rng):
        return rng.uniform(low, high, tuple(shape))

    init.__qualname__ = f"uniform(low={low!r}, high={high!r})"
    return init


def constant(value: float) -> Initializer:
    """Every value ``value`` (``torch.nn.init.constant_``, Keras ``Constant``)."""
    value = _number("value", value)

    def init(shape, dtype, rng):
        return np.full(tuple(shape), value, dtype=np.float64)

    init.__qualname__ = f"constant({value!r})"
    return init


def _number(name: str, value: object, *, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(
        value, (int, float, np.integer, np.floating)
    ):
        msg = f"{name} must be a real number; got {value!r}"
        raise TypeError(msg)
    value = float(value)
    if not math.isfinite(value) or (positive and value <= 0):
        msg = f"{name} must be a finite{' positive' if positive else ''} number; got {value!r}"
        raise ValueError(msg)
    return value


_zeros = constant(0.0)

# torch's default for nn.Conv2d and nn.ConvTranspose2d: kaiming_uniform_(a=sqrt(5)) for the
# weight, uniform on +-1/sqrt(fan_in) for the bias (both uniform on +-1/sqrt(fan_in)).
DEFAULT = "torch_default"

WEIGHT_INITIALIZERS: dict[str, Initializer] = {
    DEFAULT: _Named(DEFAULT, _fan_in_uniform),
    "glorot_uniform": _Named("glorot_uniform", _glorot_uniform),
    "xavier_uniform": _Named("xavier_uniform", _glorot_uniform),
    "glorot_normal": _Named("glorot_normal", _glorot_normal),
    "xavier_normal": _Named("xavier_normal", _xavier_normal),
    "he_uniform": _Named("he_uniform", _he_uniform),
    "kaiming_uniform": _Named("kaiming_uniform", _he_uniform),
    "he_normal": _Named("he_normal", _he_normal),
    "kaiming_normal": _Named("kaiming_normal", _kaiming_normal),
    "normal": normal(),
    "zeros": _zeros,
}
WEIGHT_NAMES: tuple[str, ...] = tuple(WEIGHT_INITIALIZERS)
# Bias initializers: DEFAULT is nn.Conv2d's rule, uniform on +-1/sqrt(fan_in) of the weight.
BIAS_NAMES: tuple[str, ...] = (DEFAULT, "normal", "zeros")


def resolve(which: str, init: object, weight_shape: tuple[int, ...]) -> Initializer:
    """The initializer ``init`` names (or is) for ``which`` ("weight_init" or "bias_init").

    Raises ValueError for an unknown name and TypeError for anything that is
    neither a name nor a callable.
    """
    if isinstance(init, str):
        names = WEIGHT_NAMES if which == "weight_init" else BIAS_NAMES
        if init not in names:
            msg = f"{which} must be one of {', '.join(map(repr, names))} or a callable (shape, dtype, rng) -> array; got {init!r}"
            raise ValueError(msg)
        if which == "bias_init" and init == DEFAULT:
            fan_in, _ = fans(weight_shape)
            bound = 1 / math.sqrt(fan_in) if fan_in else 0.0
            return lambda shape, dtype, rng: rng.uniform(-bound, bound, tuple(shape))
        return WEIGHT_INITIALIZERS[init]
    if not callable(init):
        msg = f"{which} must be a name or a callable (shape, dtype, rng) -> array; got {type(init).__name__}"
        raise TypeError(msg)
    return init


def draw(
    which: str,
    init: Initializer,
    shape: tuple[int, ...],
    dtype: str,
    rng: np.random.Generator,
) -> np.ndarray:
    """``init(shape, float64, rng)`` checked for its shape and rounded to ``dtype``."""
    value = init(tuple(shape), np.dtype("float64"), rng)
    try:
        value = np.asarray(value)
    except (TypeError, RuntimeError) as err:
        msg = f"{which} returned {type(value).__name__}, which numpy.asarray does not take ({err})"
        raise TypeError(msg) from None
    if value.shape != tuple(shape):
        msg = f"{which} must return an array of shape {tuple(shape)}; got shape {value.shape}"
        raise ValueError(msg)
    if value.dtype.kind not in "fiu":
        msg = f"{which} must return real numbers; got dtype {value.dtype}"
        raise TypeError(msg)
    return value.astype(dtype)
