"""The receptive field measured from gradients: which inputs one output element depends on.

The closed forms of :func:`xcorr.receptive_field` cover single-path stacks of
sliding windows. For anything else (skip connections, branches, layers of
any shape) the field can be measured: the gradient of one output element
with respect to the input is non-zero exactly where that element depends on
the input, unless terms cancel by accident (positive weights rule that out).

The gradient comes from the array library's own autodiff where its adapter
has one (``Adapter.gradient``: ``torch.autograd.grad``, ``jax.grad``), and
from the layers' array-API vector-Jacobian products (:func:`xcorr.corr2d_vjp`)
on numpy, array-api-strict, dask and cupy.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

import numpy as np

from ._compat import array_namespace, device, is_array_api_obj
from ._feature_maps import as_stack
from ._layer import Conv2D, Conv2DTranspose
from ._layer_1d import NdLayer
from ._multi import corr2d_multi_vjp
from ._one_d import corr1d_multi_vjp
from ._padding import SPATIAL_LAYOUTS
from ._receptive import _channels_last
from ._registry import adapter_for, adapter_named
from ._three_d_vjp import corr3d_multi_vjp
from ._transpose import conv_transpose2d_vjp
from ._typing import Array, Layer
from ._vjp import corr2d_vjp
from ._windows import as_window, common_ndim

__all__ = ["EmpiricalField", "empirical_receptive_field"]


@dataclass(frozen=True)
class EmpiricalField:
    """Result of :func:`empirical_receptive_field`.

    Attributes
    ----------
    gradient : numpy.ndarray
        Gradient of the chosen output element with respect to ``x``, shape of ``x``.
    mask : numpy.ndarray of bool, shape (H, W)
        Where that gradient is non-zero, in any batch or channel slice: (L,)
        for a 1-D stack, (D, H, W) for a 3-D one.
    method : str
        How the gradient was computed: "torch.autograd", "jax.grad" or "vjp".

    Parameters
    ----------
    gradient : numpy.ndarray
        As the attribute; :func:`empirical_receptive_field` makes the result.
    mask : numpy.ndarray of bool
        As the attribute.
    method : str
        As the attribute.

    Examples
    --------
    >>> import numpy as np
    >>> import xcorr
    >>> field = xcorr.empirical_receptive_field([xcorr.Conv2D(3, seed=1)], np.ones((5, 5)), (0, 0))
    >>> field.method, field.size
    ('vjp', (3, 3))
    >>> field.mask.astype(int).tolist()
    [[1, 1, 1, 0, 0], [1, 1, 1, 0, 0], [1, 1, 1, 0, 0], [0, 0, 0, 0, 0], [0, 0, 0, 0, 0]]
    """

    gradient: np.ndarray
    mask: np.ndarray
    method: str

    @property
    def bounds(self) -> tuple[tuple[int, int], ...] | None:
        """First and last row and column (inclusive) of the mask, or None if it is empty (one pair per axis)."""
        where = np.nonzero(self.mask)
        if where[0].size == 0:
            return None
        return tuple((int(axis.min()), int(axis.max())) for axis in where)

    @property
    def size(self) -> tuple[int, ...]:
        """Height and width of the mask's bounding box ((0, 0) if it is empty); one entry per axis."""
        bounds = self.bounds
        if bounds is None:
            return (0,) * self.mask.ndim
        return tuple(last - first + 1 for first, last in bounds)

    def __str__(self) -> str:
        """The mask drawn with ``#`` and ``.``: one line in 1-D, one block per depth slice in 3-D."""
        mask = self.mask.reshape(-1, *self.mask.shape[-2:]) if self.mask.ndim >= 2 else self.mask[None, None]
        return "\n\n".join("\n".join(" ".join("#" if v else "." for v in row) for row in plane) for plane in mask)


def full_index(index, ndim: int) -> tuple[int, ...]:
    try:
        items = tuple(operator.index(v) for v in index)
    except TypeError:
        msg = f"index must be a sequence of ints (..., row, column); got {index!r}"
        raise TypeError(msg) from None
    if not 2 <= len(items) <= ndim:
        msg = (
            f"index must have between 2 and {ndim} entries (the output has {ndim} dimensions); "
            f"got {index!r}"
        )
        raise ValueError(msg)
    return (0,) * (ndim - len(items)) + items


def _one_hot(xp, like, index: tuple[int, ...]):
    onehot = np.zeros(tuple(like.shape), dtype=np.float64)
    onehot[index] = 1
    return xp.asarray(onehot, dtype=like.dtype, device=device(like))


def check_index(shape: tuple[int, ...], index: tuple[int, ...]) -> None:
    if any(not 0 <= i < n for i, n in zip(index, shape)):
        msg = f"index {index} is outside the output of shape {shape}"
        raise IndexError(msg)


def _check_vjp_layers(layers, backend: str) -> None:
    for n, layer in enumerate(layers):
        if not isinstance(layer, (Conv2D, NdLayer)) or adapter_named(layer.backend).autodiff:
            msg = (
                f"fn[{n}] must be an xcorr.Conv2D to be differentiated on {backend}, which has no "
                f"autodiff (its gradient comes from xcorr.corr2d_vjp; xcorr.Conv1D, Conv3D and their "
                f"transposed layers work too); got {type(layer).__name__}"
            )
            raise TypeError(msg)


def _input_vjp(layer, x, g):
    """Gradient with respect to ``x`` of ``layer(x)`` at output gradient ``g`` (core VJP)."""
    if isinstance(layer, NdLayer):  # Conv1D, Conv3D and their transposed layers: the spec's keywords
        spec = layer.spec
        forward_vjp = corr1d_multi_vjp if len(spec.kernel_size) == 1 else corr3d_multi_vjp
        vjp = getattr(spec, "function_vjp", forward_vjp)  # the transposed specs name theirs
        return vjp(x, layer.weight, g, **spec.call_options)[0]
    if isinstance(layer, Conv2DTranspose):
        gx, _ = conv_transpose2d_vjp(
            x, layer.weight, g, stride=layer.stride, padding=layer.padding, output_padding=layer.output_padding,
            dilation=layer.dilation, groups=layer.groups, data_format=layer.data_format,
        )  # fmt: skip
        return gx
    options = {
        "mode": layer.mode,
        "boundary": layer.boundary,
        "stride": layer.stride,
        "dilation": layer.dilation,
        "padding": layer.padding,
    }
    if layer.in_channels is None:
        gx, _ = corr2d_vjp(x, layer.weight, g, **options)
    else:
        gx, _ = corr2d_multi_vjp(x, layer.weight, g, groups=layer.groups, data_format=layer.data_format, **options)
    return gx


def _vjp_gradient(xp, layers, x, index):
    _check_vjp_layers(layers, adapter_for(xp).name)
    inputs = []
    y = x
    for layer in layers:
        inputs.append(y)
        y = layer(y)
    full = full_index(index, y.ndim)
    check_index(tuple(y.shape), full)
    g = _one_hot(xp, y, full)
    for n in range(len(layers) - 1, -1, -1):
        g = _input_vjp(layers[n], inputs[n], g)
    return g


def _stack_ndim(layers) -> int | None:
    """The number of spatial axes of a stack's sliding-window layers (None if it has none); a
    ValueError where they disagree. Layers without a window (activations, functions) say nothing."""
    windows = []
    for n, layer in enumerate(layers):
        if hasattr(layer, "kernel_size"):
            try:
                windows.append((n, as_window(layer)))
            except (TypeError, ValueError):  # a layer as_window does not read (Keras' transposed): measured as is
                continue
    return common_ndim(windows, "fn") if windows else None


def empirical_receptive_field(
    fn: Layer | Sequence[Layer], x: Array, index: Sequence[int], /, *, ndim: int | None = None
) -> EmpiricalField:
    """Measure which input elements one output element depends on, from its gradient.

    Computes the gradient of ``fn(x)[index]`` with respect to ``x`` and
    reports where it is non-zero. For a single-path stack of
    :class:`xcorr.Conv2D` layers with positive weights this is exactly
    :meth:`xcorr.ReceptiveField.mask` (the test suite checks it on every
    backend); for other networks it is the measurement the closed form
    cannot give. The answer depends on the weights and on ``x`` where the
    network is not linear (a ReLU that is off passes no gradient), so use
    positive weights and inputs to see the largest field.

    Parameters
    ----------
    fn : callable or sequence of layers
        The network, ``x -> y``. On torch and jax any differentiable
        function of the array works (``torch.autograd.grad``, ``jax.grad``).
        On numpy, array-api-strict, dask and cupy, which have no autodiff,
        pass the stack as a sequence of :class:`xcorr.Conv2D` layers (one
        layer is a stack of one): the gradient is back-propagated through
        them with :func:`xcorr.corr2d_vjp` / :func:`xcorr.corr2d_multi_vjp`
        (:class:`xcorr.Conv1D`, :class:`xcorr.Conv3D` and their transposed
        layers by their own VJPs). A sequence is run in order on every backend.
    x : array, shape (..., H, W)
        A floating-point input of the network's library; (..., L) or
        (..., D, H, W) for a 1-D or 3-D network.
    index : sequence of int
        The output element: a full index into ``fn(x)``, or its last
        entries (``(i, j)``), in which case the leading entries are 0. For a
        stack of channels-last layers (``data_format="channels_last"``) the
        output is (..., H, W, C): ``(i, j)`` is then channel 0 of pixel
        ``(i, j)``, and the mask is over ``x``'s (H, W) axes, the last but one
        and the one before.
    ndim : {1, 2, 3}, optional
        The number of spatial axes, the trailing ones of ``x`` (before the
        channel for channels-last layers) that the mask covers. By default
        that of the stack's layers (a list of ``Conv1D`` layers is 1-D), or
        2 for a function.

    Returns
    -------
    EmpiricalField
        ``.gradient`` (NumPy, shape of ``x``), ``.mask`` ((H, W) bool: where
        the gradient is non-zero in any leading slice; (L,) or (D, H, W) in
        1-D or 3-D), ``.bounds``, ``.size``; ``print()`` draws the mask.

    Raises
    ------
    TypeError
        ``x`` not a floating array; on a library without autodiff, ``fn``
        not a sequence of layers with a known vector-Jacobian product.
    ValueError, IndexError
        ``index`` with the wrong number of entries, or outside the output;
        an ``ndim`` other than 1, 2 or 3.

    Examples
    --------
    >>> import numpy as np
    >>> import xcorr
    >>> layers = [xcorr.Conv2D(3, seed=1), xcorr.Conv2D(3, dilation=2, seed=2)]
    >>> field = xcorr.empirical_receptive_field(layers, np.ones((9, 9)), (0, 0))
    >>> field.size, xcorr.receptive_field(layers).size
    ((7, 7), (7, 7))
    >>> line = [xcorr.Conv1D(3, in_channels=1, out_channels=1, dilation=2, seed=1)]
    >>> print(xcorr.empirical_receptive_field(line, np.ones((1, 8)), (0, 1)))
    . # . # . # . .
    """
    if not is_array_api_obj(x) or isinstance(x, (list, tuple)):
        msg = f"x must be an array of an array-API library; got {type(x).__name__}"
        raise TypeError(msg)
    xp = array_namespace(x)
    if not xp.isdtype(x.dtype, "real floating"):
        msg = f"x must have a real floating dtype to be differentiated; got {x.dtype}"
        raise TypeError(msg)
    adapter = adapter_for(xp)
    name = adapter.name
    is_stack = not callable(fn) or hasattr(fn, "__iter__") or isinstance(fn, (Conv2D, NdLayer))
    if is_stack:
        layers = [fn] if isinstance(fn, (Conv2D, NdLayer)) else as_stack(fn, name="fn")

        def run(x):
            for layer in layers:
                x = layer(x)
            return x
    else:
        run = cast(Layer, fn)
    if ndim is None:
        ndim = (_stack_ndim(layers) if is_stack else None) or 2
    elif isinstance(ndim, bool) or ndim not in SPATIAL_LAYOUTS:
        msg = f"ndim must be 1, 2 or 3 (the number of spatial axes); got {ndim!r}"
        raise ValueError(msg)
    if len(x.shape) < ndim:
        msg = f"x must have at least {ndim} dimensions (..., {SPATIAL_LAYOUTS[ndim]}); got shape {tuple(x.shape)}"
        raise ValueError(msg)
    channels_last = is_stack and _channels_last(layers)
    try:
        entries = len(tuple(index))
    except TypeError:
        entries = -1  # not a sequence: full_index says so
    if channels_last and entries == ndim:
        index = (*tuple(index), 0)  # pixel (i, j) of a channels-last output: its channel 0
    elif entries == 1 and ndim == 1:  # (i,): complete it with the output's leading zeros
        index = (0,) * (len(run(x).shape) - 1) + tuple(index)
    found = adapter.gradient(run, x, index)
    if found is not None:
        gradient, method = found
    elif is_stack:
        gradient, method = _vjp_gradient(xp, layers, x, index), "vjp"
    else:
        msg = (
            f"fn must be a sequence of layers on {name}, which has no autodiff: pass the stack "
            "as a list of xcorr.Conv2D layers (their gradients come from xcorr.corr2d_vjp), or "
            f"use torch or jax arrays to differentiate any function; got {type(fn).__name__}"
        )
        raise TypeError(msg)
    g = adapter.to_numpy(gradient)
    nonzero = g != 0
    if channels_last:
        nonzero = np.moveaxis(nonzero, -1, 0)  # (C, ..., H, W)
    mask = nonzero.reshape(-1, *nonzero.shape[nonzero.ndim - ndim :]).any(axis=0)
    return EmpiricalField(g, mask, method)
