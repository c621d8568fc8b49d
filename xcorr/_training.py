"""The training step's arithmetic: a loss, its gradient, and the generic gradient-descent loop."""

from __future__ import annotations

from ._compat import array_namespace

LOSSES: tuple[str, ...] = ("sse", "mse")


def loss_and_gradient(xp, r, loss: str):
    """The loss of residual ``r`` and its gradient with respect to ``r``."""
    value = xp.sum(r * r)
    if loss == "mse":
        n = 1
        for size in r.shape:
            n *= size
        return value / n, (2 / n) * r
    return value, 2 * r


def fit_arrays(layer, x, y, lr, steps, loss, record, *, persist=None):
    """``Adapter.fit``'s generic loop: the layer's VJP and new parameter arrays each step.

    ``persist`` (lazy libraries) materialises the new parameters and the loss
    together, so that each step's graph starts from computed arrays.
    """
    xp = array_namespace(x)
    for _ in range(steps):
        value, g = loss_and_gradient(xp, layer(x) - y, loss)
        grads = layer.grad(x, g)
        weight = layer.weight - lr * grads["weight"]
        bias = None if layer.bias is None else layer.bias - lr * grads["bias"]
        if persist is not None:
            weight, bias, value = persist(weight, bias, value)
        layer.weight, layer.bias = weight, bias
        record(float(value))
    return layer
