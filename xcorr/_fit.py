"""``fit``: the seed notebook's training loop, on every backend."""

from __future__ import annotations

import math
import numbers
from typing import TypeVar

from ._layer import Conv2D
from ._layer_1d import NdLayer
from ._options import check_arrays
from ._padding import parse_int
from ._registry import adapter_for
from ._training import LOSSES
from ._typing import Array, Loss

LayerT = TypeVar("LayerT", bound=Conv2D | NdLayer)

__all__ = ["fit"]

def _check(layer, x, y, lr, steps, loss, log_every):
    if not isinstance(layer, (Conv2D, NdLayer)):
        msg = f"layer must be an xcorr.Conv2D, Conv1D or Conv3D; got {type(layer).__name__}"
        raise TypeError(msg)
    # numbers.Real takes NumPy scalars (np.float32(0.01)) too; bools are not learning rates.
    if isinstance(lr, bool) or not isinstance(lr, numbers.Real) or not (math.isfinite(lr) and lr > 0):
        msg = f"lr must be a positive number; got {lr!r} (expected a finite real number > 0)"
        raise ValueError(msg)
    parse_int("steps", steps, minimum=0)
    if log_every is not None:
        parse_int("log_every", log_every)
    if loss not in LOSSES:
        msg = f"loss must be one of {', '.join(map(repr, LOSSES))}; got {loss!r}"
        raise ValueError(msg)
    xp = check_arrays(x, layer.weight, k_name="layer.weight")
    check_arrays(y, layer.weight, x_name="y", k_name="layer.weight")
    out = tuple(layer.spec.output_shape(x, layer.weight))
    if tuple(y.shape) != out:
        msg = f"y must have the shape of layer(x), {out}; got shape {tuple(y.shape)}"
        raise ValueError(msg)
    return xp


def fit(
    layer: LayerT,
    x: Array,
    y: Array,
    /,
    *,
    lr: float = 0.01,
    steps: int = 50,
    loss: Loss = "sse",
    log_every: int | None = None,
) -> tuple[LayerT, list[float]]:
    """Train ``layer`` on ``(x, y)`` by plain gradient descent, as the seed notebook does.

    Each step computes ``layer(x)``, the loss against ``y``, its gradients
    with respect to ``weight`` and ``bias``, and updates
    ``p <- p - lr * grad``. The library's adapter runs the loop
    (``Adapter.fit``): torch autograd on torch, a jitted
    ``jax.value_and_grad`` on jax, and the core VJP (``corr2d_vjp`` /
    ``corr2d_multi_vjp``) on every other backend.

    Parameters
    ----------
    layer : xcorr.Conv2D, xcorr.Conv1D or xcorr.Conv3D
        The layer to train, of any backend (a ``Conv2DTranspose`` is a kind
        of ``Conv2D``).
    x, y : arrays
        Input and target, of the layer's library; ``y`` has the shape of
        ``layer(x)``.
    lr : float, default 0.01
        Learning rate.
    steps : int, default 50
        Number of gradient steps.
    loss : {"sse", "mse"}, default "sse"
        Sum of squared errors (the seed's ``((Y_hat - Y)**2).sum()``) or
        their mean.
    log_every : int, optional
        Print ``Step 10, loss 0.191`` every ``log_every`` steps.

    Returns
    -------
    layer : xcorr.Conv2D, xcorr.Conv1D or xcorr.Conv3D
        The trained layer: the same object with new parameters on torch (the
        module's parameters are updated in place), numpy, array-api-strict,
        dask and cupy; a new pytree on jax (jax layers are immutable).
    losses : list of float
        The loss at each step, computed before that step's update.

    Examples
    --------
    >>> import numpy as np
    >>> import xcorr
    >>> x = np.ones((6, 8)); x[:, 2:6] = 0
    >>> y = xcorr.corr2d(x, np.array([[1.0, -1.0]]))
    >>> layer = xcorr.Conv2D((1, 2), backend="numpy", dtype="float64")
    >>> layer, losses = xcorr.fit(layer, x, y, steps=50, lr=0.01)
    >>> np.round(layer.weight, 2), round(float(layer.bias), 2)
    (array([[ 1., -1.]]), 0.0)
    """
    xp = _check(layer, x, y, lr, steps, loss, log_every)
    losses: list[float] = []

    def record(value: float) -> None:
        losses.append(value)
        if log_every is not None and len(losses) % log_every == 0:
            print(f"Step {len(losses)}, loss {value:.3f}")

    adapter = adapter_for(xp)
    layer = adapter.fit(layer, x, y, float(lr), steps, loss, record)
    return layer, losses
