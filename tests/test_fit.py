"""fit: the seed notebook learns its edge kernel back, identically on every backend.

Every backend's training run is compared with the same gradient descent in
float64 on the tests' reference (tests/reference.py), not with another
backend's run.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest

import xcorr

from matrix import require_module
from reference import fast_reference, reference, reference_multi, reference_multi_vjp, reference_vjp
from test_layer import edge_image, layer_for, params

DTYPES = ("float32", "float64")
# Cross-backend agreement of loss histories and learned parameters.
AGREE = {"float32": 1e-4, "float64": 1e-9}


def seed_data():
    """In [5] and [9]: the edge image X and Y = corr2d(X, [[1, -1]])."""
    x = edge_image()
    return x, reference(x, np.array([[1.0, -1.0]]))


def descend(weight, bias, target, forward, vjp, *, lr, steps, loss="sse"):
    """Plain gradient descent in float64 on the tests' reference: ``(losses, weight, bias)``.

    ``forward(weight)`` is the layer's output without bias and ``vjp(weight,
    g)`` the weight's gradient, both from tests/reference.py; a vector bias
    adds per output channel (the third axis from the end), a scalar one
    everywhere.
    """
    weight, bias = np.array(weight, dtype=float), np.array(bias, dtype=float)
    losses = []
    for _ in range(steps):
        out = forward(weight)
        r = out + (bias[:, None, None] if bias.ndim else bias) - target
        n = r.size if loss == "mse" else 1
        losses.append(float(np.sum(r * r)) / n)
        g = 2 * r / n
        gb = np.sum(g, axis=tuple(i for i in range(g.ndim) if i != g.ndim - 3)) if bias.ndim else np.sum(g)
        weight, bias = weight - lr * vjp(weight, g), bias - lr * gb
    return np.array(losses), weight, bias


@functools.cache
def reference_run(dtype, steps=50):
    """The seed's training in float64 on the reference, from the layer's initial
    parameters: the yardstick every backend must agree with."""
    x, y = seed_data()
    start = xcorr.Conv2D((1, 2), backend="numpy", dtype=dtype)
    return descend(
        start.weight, start.bias, y, lambda w: fast_reference(x, w), lambda w, g: reference_vjp(x, w, g)[1],
        lr=0.01, steps=steps,
    )


@pytest.mark.parametrize("dtype", DTYPES)
def test_learns_the_seed_kernel(backend, dtype):
    x, y = seed_data()
    layer = layer_for(backend, (1, 2), dtype=dtype)
    start = params(backend, layer)
    trained, losses = xcorr.fit(layer, backend.asarray(x, dtype), backend.asarray(y, dtype), lr=0.01, steps=50)

    if backend.name.startswith("jax"):
        assert trained is not layer  # a new pytree; the input layer is untouched
        np.testing.assert_array_equal(params(backend, layer)[0], start[0])
    else:
        assert trained is layer
    assert isinstance(trained, xcorr.Conv2D)
    assert len(losses) == 50 and all(type(v) is float for v in losses)
    weight, bias = params(backend, trained)
    assert weight.dtype == dtype
    # The seed's result: weight [[1, -1]], bias 0, loss decreasing to ~0.
    np.testing.assert_allclose(weight, [[1.0, -1.0]], atol=1e-2)
    np.testing.assert_allclose(bias, 0.0, atol=1e-2)
    assert losses[-1] < 1e-3 < losses[0]
    # Every backend agrees with numpy, step by step.
    expected_losses, expected_weight, expected_bias = reference_run(dtype)
    # float32 runs round their sums: values near zero are compared absolutely.
    np.testing.assert_allclose(losses, expected_losses, rtol=AGREE[dtype], atol=AGREE[dtype] * 1e-3)
    np.testing.assert_allclose(weight, expected_weight, rtol=AGREE[dtype], atol=AGREE[dtype] * 1e-2)
    np.testing.assert_allclose(bias, expected_bias, rtol=AGREE[dtype], atol=AGREE[dtype] * 1e-2)


def test_log_every_prints_like_the_seed(capsys):
    x, y = seed_data()
    _, losses = xcorr.fit(xcorr.Conv2D((1, 2), dtype="float64"), x, y, log_every=10)
    lines = capsys.readouterr().out.splitlines()
    assert lines == [f"Step {n}, loss {losses[n - 1]:.3f}" for n in (10, 20, 30, 40, 50)]
    assert lines[-1] == "Step 50, loss 0.000"


def test_mse_is_sse_over_the_size():
    x, y = seed_data()
    _, sse = xcorr.fit(xcorr.Conv2D((1, 2), dtype="float64"), x, y, steps=1)
    _, mse = xcorr.fit(xcorr.Conv2D((1, 2), dtype="float64"), x, y, steps=1, loss="mse")
    np.testing.assert_allclose(mse[0], sse[0] / y.size, rtol=1e-15)


def test_jax_trains_inside_jit():
    jax = require_module("jax")
    jnp = jax.numpy
    x, y = (jnp.asarray(a) for a in seed_data())

    @jax.jit
    def train(layer, x, y):
        def loss(layer):
            return jnp.sum((layer(x) - y) ** 2)

        def step(i, carry):
            layer, losses = carry
            value, grads = jax.value_and_grad(loss)(layer)
            layer = jax.tree.map(lambda p, g: p - 0.01 * g, layer, grads)
            return layer, losses.at[i].set(value)

        return jax.lax.fori_loop(0, 50, step, (layer, jnp.zeros(50)))

    layer = xcorr.Conv2D((1, 2), backend="jax", dtype="float64")
    trained, losses = train(layer, x, y)
    expected_losses, expected_weight, expected_bias = reference_run("float64")
    np.testing.assert_allclose(np.asarray(losses), expected_losses, rtol=1e-9)
    np.testing.assert_allclose(np.asarray(trained.weight), expected_weight, rtol=1e-9)
    np.testing.assert_allclose(float(trained.bias), expected_bias, rtol=1e-9)


def test_torch_trains_with_optim_sgd():
    torch = require_module("torch")
    x, y = (torch.asarray(a) for a in seed_data())
    layer = xcorr.Conv2D((1, 2), backend="torch", dtype="float64")
    optimizer = torch.optim.SGD(layer.parameters(), lr=0.01)
    losses = []
    for _ in range(50):
        optimizer.zero_grad()
        loss = ((layer(x) - y) ** 2).sum()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    expected_losses, expected_weight, expected_bias = reference_run("float64")
    np.testing.assert_allclose(losses, expected_losses, rtol=1e-9)
    np.testing.assert_allclose(layer.weight.detach().numpy(), expected_weight, rtol=1e-9)
    np.testing.assert_allclose(layer.bias.item(), expected_bias, rtol=1e-9)


@functools.cache
def channel_problem():
    """A grouped channel layer learning a target made by another one: the reference's training run."""
    rng = np.random.default_rng(11)
    x = rng.standard_normal((2, 2, 6, 7))
    options = dict(mode="same", boundary="symm", groups=2)
    truth = xcorr.Conv2D(3, in_channels=2, out_channels=4, dtype="float64", seed=99, **options)
    y = reference_multi(x, truth.weight, **options) + truth.bias[:, None, None]
    start = xcorr.Conv2D(3, in_channels=2, out_channels=4, dtype="float64", **options)  # only its initial parameters
    losses, weight, bias = descend(
        start.weight, start.bias, y,
        lambda w: reference_multi(x, w, **options),
        lambda w, g: reference_multi_vjp(x, w, g, **options)[1],
        lr=0.5, steps=5, loss="mse",
    )
    return x, y, losses, weight, bias


def test_channel_layer_trains_identically(backend):
    x, y, expected_losses, expected_weight, expected_bias = channel_problem()
    layer = layer_for(backend, 3, in_channels=2, out_channels=4, groups=2, mode="same", boundary="symm", dtype="float64")
    trained, losses = xcorr.fit(layer, backend.asarray(x), backend.asarray(y), lr=0.5, steps=5, loss="mse")
    assert losses[-1] < losses[0]
    weight, bias = params(backend, trained)
    np.testing.assert_allclose(losses, expected_losses, rtol=1e-9)
    np.testing.assert_allclose(weight, expected_weight, rtol=1e-9)
    np.testing.assert_allclose(bias, expected_bias, rtol=1e-9)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"lr": -0.1}, ValueError, r"lr must be a positive number; got -0.1"),
        ({"lr": "0.1"}, ValueError, r"lr must be a positive number"),
        ({"steps": -1}, ValueError, r"steps must be an int >= 0; got -1"),
        ({"steps": 2.5}, TypeError, r"steps must be an int"),
        ({"log_every": 0}, ValueError, r"log_every must be an int >= 1; got 0"),
        ({"loss": "l1"}, ValueError, r"loss must be one of 'sse', 'mse'; got 'l1'"),
    ],
)
def test_bad_arguments(kwargs, error, match):
    x, y = seed_data()
    with pytest.raises(error, match=match):
        xcorr.fit(xcorr.Conv2D((1, 2)), x, y, **kwargs)


def test_bad_data():
    x, y = seed_data()
    layer = xcorr.Conv2D((1, 2))
    with pytest.raises(TypeError, match=r"layer must be an xcorr.Conv2D, Conv1D or Conv3D; got function"):
        xcorr.fit(lambda x: x, x, y)
    with pytest.raises(ValueError, match=r"y must have the shape of layer\(x\), \(6, 7\); got shape \(6, 8\)"):
        xcorr.fit(layer, x, x)
    with pytest.raises(TypeError, match=r"x must be an array"):
        xcorr.fit(layer, x.tolist(), y)
    torch = require_module("torch")
    with pytest.raises(TypeError, match=r"x and layer.weight must come from the same array library"):
        xcorr.fit(layer, torch.asarray(x), y)


# -- the learning rate -------------------------------------------------------------------------


@pytest.mark.parametrize("lr", [math.inf, -math.inf, math.nan, np.float64(np.nan)])
def test_fit_refuses_a_non_finite_learning_rate(lr):
    layer = xcorr.Conv2D(3, backend="numpy")
    x = np.ones((6, 6))
    with pytest.raises(ValueError, match=r"lr must be a positive number; got .*(inf|nan)"):
        xcorr.fit(layer, x, layer(x), lr=lr, steps=2)


def test_fit_takes_numpy_scalars_as_the_learning_rate():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 8))
    y = rng.standard_normal((6, 6))
    _, losses32 = xcorr.fit(xcorr.Conv2D(3, backend="numpy", seed=1), x, y, lr=np.float32(0.01), steps=3)
    _, losses = xcorr.fit(xcorr.Conv2D(3, backend="numpy", seed=1), x, y, lr=float(np.float32(0.01)), steps=3)
    assert losses32 == losses and losses[-1] < losses[0]
