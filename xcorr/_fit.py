"""``fit``: the seed notebook's training loop, on every backend."""

from __future__ import annotations

import math
import numbers

from ._layer import Conv2D
from ._options import check_arrays, parse_int

__all__ = ["fit"]

LOSSES: tuple[str, ...] = ("sse", "mse")


def _loss(xp, r, loss: str):
    """The loss of residual ``r`` and its gradient with respect to ``r``."""
    value = xp.sum(r * r)
    if loss == "mse":
        n = 1
        for size in r.shape:
            n *= size
        return value / n, (2 / n) * r
    return value, 2 * r


def _check(layer, x, y, lr, steps, loss, log_every):
    if not isinstance(layer, Conv2D):
        msg = f"layer must be an xcorr.Conv2D; got {type(layer).__name__}"
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


def fit(layer, x, y, /, *, lr=0.01, steps=50, loss="sse", log_every=None):
    """Train ``layer`` on ``(x, y)`` by plain gradient descent, as the seed notebook does.

    Each step computes ``layer(x)``, the loss against ``y``, its gradients
    with respect to ``weight`` and ``bias``, and updates
    ``p <- p - lr * grad``. The gradients come from torch autograd on torch,
    a jitted ``jax.value_and_grad`` on jax, and the core VJP
    (``corr2d_vjp`` / ``corr2d_multi_vjp``) on every other backend.

    Parameters
    ----------
    layer : xcorr.Conv2D
        The layer to train, of any backend.
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
    layer : xcorr.Conv2D
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

    run = {"torch": _fit_torch, "jax": _fit_jax}.get(layer.backend, _fit_arrays)
    layer = run(xp, layer, x, y, float(lr), steps, loss, record)
    return layer, losses


def _fit_torch(xp, layer, x, y, lr, steps, loss, record):
    import torch

    params = [p for p in (layer.weight, layer.bias) if p is not None]
    for _ in range(steps):
        for p in params:
            p.grad = None
        value, _ = _loss(xp, layer(x) - y, loss)
        value.backward()
        with torch.no_grad():
            for p in params:
                p.sub_(p.grad, alpha=lr)
        record(value.item())
    for p in params:
        p.grad = None
    return layer


def _fit_jax(xp, layer, x, y, lr, steps, loss, record):
    step = _jax_step(loss)
    for _ in range(steps):
        layer, value = step(layer, x, y, lr)
        record(float(value))
    return layer


_JAX_STEPS: dict[str, object] = {}


def _jax_step(loss: str):
    if loss not in _JAX_STEPS:
        import jax
        import jax.numpy as jnp

        def objective(layer, x, y):
            return _loss(jnp, layer(x) - y, loss)[0]

        @jax.jit
        def step(layer, x, y, lr):
            value, grads = jax.value_and_grad(objective)(layer, x, y)
            new = jax.tree.map(lambda p, g: p - jnp.asarray(lr, dtype=p.dtype) * g, layer, grads)
            return new, value

        _JAX_STEPS[loss] = step
    return _JAX_STEPS[loss]


def _fit_arrays(xp, layer, x, y, lr, steps, loss, record):
    persist = None
    if layer.backend == "dask":
        import dask

        persist = dask.persist
    for _ in range(steps):
        value, g = _loss(xp, layer(x) - y, loss)
        grads = layer.grad(x, g)
        weight = layer.weight - lr * grads["weight"]
        bias = None if layer.bias is None else layer.bias - lr * grads["bias"]
        if persist is not None:
            # Keep the graph one step deep: each loss is computed anyway.
            weight, bias, value = persist(weight, bias, value)
        layer.weight, layer.bias = weight, bias
        record(float(value))
    return layer
