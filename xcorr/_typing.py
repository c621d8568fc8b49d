"""Type aliases of the public API, for annotations and type checkers.

The option names are ``Literal`` types, so a type checker flags
``mode="smae"`` before anything runs; the tuples the parsers check at run
time (``xcorr._padding.MODES``, ``BOUNDARY_ALIASES``,
``xcorr._cost_model.METHODS``) hold the same names, and ``tests/test_typing.py``
keeps the two in step.

Arrays are ``Any``: xcorr takes and returns arrays of any array-API library
(numpy, torch, jax, dask, cupy, array-api-strict, ...), which share no static
type, and every function returns an array of its inputs' library, whose own
stubs then apply to what the caller does with it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal, TypeAlias

import numpy as np

__all__ = [
    "Array",
    "Boundary",
    "DataFormat",
    "Dtype",
    "Initializer",
    "Layer",
    "Loss",
    "Method",
    "Mode",
    "Namespace",
    "Padding",
    "Pair",
    "Scalar",
    "TransposePadding",
]

#: An array of any array-API library (``numpy.ndarray``, ``torch.Tensor``,
#: ``jax.Array``, ``dask.array.Array``, ...).
Array: TypeAlias = Any
#: An array-API namespace (``array_api_compat.array_namespace(x)``): a module or module-like object.
Namespace: TypeAlias = Any
#: Output size of a correlation.
Mode: TypeAlias = Literal["valid", "same", "full"]
#: How the input is extended beyond its edges: the five canonical names and the
#: other libraries' names for them (``xcorr._options.BOUNDARY_ALIASES``).
Boundary: TypeAlias = Literal[
    "fill", "pad", "constant", "zeros",
    "wrap", "circular", "grid-wrap",
    "symm", "symmetric", "grid-mirror",
    "reflect", "mirror",
    "edge", "replicate", "nearest",
]
#: Explicit padding: an int for every side, ``(ph, pw)``, ``((top, bottom), (left, right))``,
#: or lax/TensorFlow's names (any case), or ``None`` for none (``mode`` decides).
Padding: TypeAlias = (
    int
    | Sequence[int]
    | Sequence[Sequence[int]]
    | Literal["SAME", "VALID", "SAME_LOWER", "same", "valid", "same_lower"]
    | None
)
#: Where the channel axis of multi-channel arrays is: ``(N, C, H, W)`` or ``(N, H, W, C)``.
DataFormat: TypeAlias = Literal["channels_first", "channels_last"]
#: A layer parameter's initializer: a name (``xcorr.initializers``) or a
#: callable ``(shape, dtype, rng) -> array`` with a ``numpy.random.Generator``.
Initializer: TypeAlias = str | Callable[[tuple[int, ...], Any, np.random.Generator], Any]
#: A transposed convolution's ``padding`` (torch's meaning: what is cropped from the
#: full output): an int for every side, ``(ph, pw)`` or ``((top, bottom), (left, right))``;
#: or lax's and Keras' "SAME" / "VALID", which imply the ``output_padding`` too.
TransposePadding: TypeAlias = (
    int | Sequence[int] | Sequence[Sequence[int]] | Literal["SAME", "VALID", "same", "valid"]
)
#: Per spatial axis: a ``(before, after)`` padding, and a stride or dilation.
AxisPads: TypeAlias = tuple[tuple[int, int], ...]
AxisInts: TypeAlias = tuple[int, ...]
#: How a correlation is computed.
Method: TypeAlias = Literal["auto", "direct", "fft", "native"]
#: The loss ``xcorr.fit`` minimises.
Loss: TypeAlias = Literal["sse", "mse"]
#: A layer as a function of arrays (an ``xcorr.Conv2D``, a pooling function, ...).
Layer: TypeAlias = Callable[[Array], Array]
#: A scalar number (a Python number or a NumPy scalar).
Scalar: TypeAlias = complex | np.number[Any]
#: An int for both axes, or a sequence of one or two (one per axis).
Pair: TypeAlias = int | Sequence[int]
#: A layer's parameter dtype: its name, or that dtype object of the backend.
Dtype: TypeAlias = Literal["float32", "float64", "float16", "bfloat16"] | Any
