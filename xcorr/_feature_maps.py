"""Running a stack of layers and keeping every intermediate output (the feature maps)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from ._receptive import Window
from ._typing import Array, Layer

__all__ = ["as_stack", "feature_maps"]


def as_stack(layers, *, name: str = "layers") -> list:
    """``layers`` as a list of callables, with a clear error for anything else."""
    if callable(layers) and not isinstance(layers, Sequence) and not hasattr(layers, "__iter__"):
        return [layers]
    if isinstance(layers, (str, bytes)) or not hasattr(layers, "__iter__"):
        msg = f"{name} must be a sequence of layers (callables such as xcorr.Conv2D); got {type(layers).__name__}"
        raise TypeError(msg)
    stack = list(layers)
    if not stack:
        msg = f"{name} must contain at least one layer; got an empty sequence"
        raise ValueError(msg)
    for n, layer in enumerate(stack):
        if isinstance(layer, Window):
            msg = (
                f"{name}[{n}] is a Window, which describes a layer's geometry but computes nothing; "
                "pass the layer itself (an xcorr.Conv2D, a pooling function, ...)"
            )
            raise TypeError(msg)
        if not callable(layer):
            msg = f"{name}[{n}] must be a callable layer (x -> y), such as xcorr.Conv2D; got {type(layer).__name__}"
            raise TypeError(msg)
    return stack


def feature_maps(layers: Layer | Iterable[Layer], x: Array, /) -> list[Array]:
    """Run a stack of layers on ``x`` and keep every layer's output.

    In the d2l chapter's words, the 2-D output of a convolutional layer is a
    *feature map*: a representation of the input at one level of the
    network. This returns all of them, for inspection and plotting.

    Parameters
    ----------
    layers : sequence of callables
        The stack, first layer first: :class:`xcorr.Conv2D` layers of any
        backend, activation functions, pooling functions, anything that maps
        an array to an array. A ``torch.nn.Sequential`` works too.
    x : array
        The input, of the library the layers expect.

    Returns
    -------
    list of arrays
        ``[layers[0](x), layers[1](layers[0](x)), ...]``: one feature map per
        layer, in the library of the layers' outputs (lazy for dask).

    Raises
    ------
    TypeError
        An entry that is not callable (a :class:`xcorr.Window` describes a
        geometry and computes nothing), or ``layers`` not a sequence.
    ValueError
        An empty stack.

    Examples
    --------
    >>> import array_api_strict as xp
    >>> import xcorr
    >>> maps = xcorr.feature_maps([lambda x: xcorr.corr2d(x, xp.ones((3, 3)))] * 2, xp.ones((6, 8)))
    >>> [tuple(m.shape) for m in maps]
    [(4, 6), (2, 4)]
    """
    outputs = []
    for layer in as_stack(layers):
        x = layer(x)
        outputs.append(x)
    return outputs
