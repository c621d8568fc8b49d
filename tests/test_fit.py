"""fit: the seed notebook learns its edge kernel back, identically on every backend."""

from __future__ import annotations

import functools

import numpy as np
import pytest

import xcorr
from reference import reference
from test_layer import edge_image, layer_for, params

DTYPES = ("float32", "float64")
# Cross-backend agreement of loss histories and learned parameters.
AGREE = {"float32": 1e-4, "float64": 1e-9}


def seed_data():
    """In [5] and [9]: the edge image X and Y = corr2d(X, [[1, -1]])."""
    x = edge_image()
    return x, reference(x, np.array([[1.0, -1.0]]))


@functools.cache
def numpy_run(dtype, steps=50):
    """The numpy backend's run: the yardstick the other backends must agree with."""
    x, y = seed_data()
    layer = xcorr.Conv2D((1, 2), backend="numpy", dtype=dtype)
    layer, losses = xcorr.fit(layer, x.astype(dtype), y.astype(dtype), lr=0.01, steps=steps)
    return np.array(losses), layer.weight, np.asarray(layer.bias)


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
    expected_losses, expected_weight, expected_bias = numpy_run(dtype)
    np.testing.assert_allclose(losses, expected_losses, rtol=AGREE[dtype], atol=0)
    np.testing.assert_allclose(weight, expected_weight, rtol=AGREE[dtype], atol=0)
    np.testing.assert_allclose(bias, expected_bias, rtol=AGREE[dtype], atol=0)


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
    jax = pytest.importorskip("jax")
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
    expected_losses, expected_weight, expected_bias = numpy_run("float64")
    np.testing.assert_allclose(np.asarray(losses), expected_losses, rtol=1e-9)
    np.testing.assert_allclose(np.asarray(trained.weight), expected_weight, rtol=1e-9)
    np.testing.assert_allclose(float(trained.bias), expected_bias, rtol=1e-9)


def test_torch_trains_with_optim_sgd():
    torch = pytest.importorskip("torch")
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
    expected_losses, expected_weight, expected_bias = numpy_run("float64")
    np.testing.assert_allclose(losses, expected_losses, rtol=1e-9)
    np.testing.assert_allclose(layer.weight.detach().numpy(), expected_weight, rtol=1e-9)
    np.testing.assert_allclose(layer.bias.item(), expected_bias, rtol=1e-9)


@functools.cache
def channel_problem():
    rng = np.random.default_rng(11)
    x = rng.standard_normal((2, 2, 6, 7))
    truth = xcorr.Conv2D(3, in_channels=2, out_channels=4, groups=2, mode="same", boundary="symm", dtype="float64", seed=99)
    y = truth(x)
    layer = xcorr.Conv2D(3, in_channels=2, out_channels=4, groups=2, mode="same", boundary="symm", dtype="float64")
    _, losses = xcorr.fit(layer, x, y, lr=0.5, steps=5, loss="mse")
    return x, y, np.array(losses), layer.weight, layer.bias


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
    with pytest.raises(TypeError, match=r"layer must be an xcorr.Conv2D; got function"):
        xcorr.fit(lambda x: x, x, y)
    with pytest.raises(ValueError, match=r"y must have the shape of layer\(x\), \(6, 7\); got shape \(6, 8\)"):
        xcorr.fit(layer, x, x)
    with pytest.raises(TypeError, match=r"x must be an array"):
        xcorr.fit(layer, x.tolist(), y)
    torch = pytest.importorskip("torch")
    with pytest.raises(TypeError, match=r"x and layer.weight must come from the same array library"):
        xcorr.fit(layer, torch.asarray(x), y)
