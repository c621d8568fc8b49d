"""xcorr.keras.Conv1DTranspose and Conv3DTranspose beside keras.layers.Conv1DTranspose and Conv3DTranspose
with the same weights, in float64, on the Keras backend of ``KERAS_BACKEND``: forward, kernel and bias
gradients, output shapes, config round trip, errors (the forwards eager, the jax gradients under ``jax.jit``, as Keras' compiled
training step takes them). Tiny volumes (3-D is slow). Prints a JSON report
(tests/test_keras.py checks it)."""

import json
import os

os.environ.setdefault("JAX_ENABLE_X64", "1")  # float64 on jax too (before jax is imported)

import keras
import numpy as np

from xcorr.keras import Conv1DTranspose, Conv3DTranspose

keras.config.set_floatx("float64")
backend = keras.backend.backend()
rng = np.random.default_rng(0)
OURS = {1: Conv1DTranspose, 3: Conv3DTranspose}
THEIRS = {1: keras.layers.Conv1DTranspose, 3: keras.layers.Conv3DTranspose}
KERNELS = {1: 3, 3: (2, 3, 2)}
SIZES = {1: (7,), 3: (3, 4, 3)}
CASES = [
    (1, {"padding": "valid"}),
    (1, {"padding": "same", "strides": 2}),
    (1, {"padding": "valid", "strides": 3, "output_padding": 1}),
    (1, {"padding": "same", "dilation_rate": 2, "data_format": "channels_first"}),
    (1, {"padding": "SAME", "strides": 2, "use_bias": False, "activation": "relu"}),
    (3, {"padding": "valid"}),
    (3, {"padding": "same", "strides": 2}),
    (3, {"padding": "valid", "strides": (1, 2, 3), "output_padding": (0, 1, 2), "data_format": "channels_first"}),
    (3, {"padding": "same", "dilation_rate": (1, 2, 1), "use_bias": False}),
]


def gradients(layer, x):
    if backend == "jax":
        import jax

        def loss(weights):
            return (layer.stateless_call(weights, [], x)[0] ** 2).sum()

        return jax.jit(jax.grad(loss))([v.value for v in layer.trainable_variables])
    import torch

    out = layer(torch.tensor(x))
    (out**2).sum().backward()
    return [v.value.grad for v in layer.trainable_variables]


report = {"backend": backend, "cases": {}}
for rank, kw in CASES:
    first = kw.get("data_format") == "channels_first"
    x = rng.standard_normal((2, 3, *SIZES[rank]) if first else (2, *SIZES[rank], 3))
    ours, theirs = OURS[rank](4, KERNELS[rank], **kw), THEIRS[rank](4, KERNELS[rank], **kw)
    ours.build(x.shape)
    theirs.build(x.shape)
    ours.set_weights(theirs.get_weights())
    y1, y2 = keras.ops.convert_to_numpy(ours(x)), keras.ops.convert_to_numpy(theirs(x))
    g1, g2 = gradients(ours, x), gradients(theirs, x)
    grad_diff = max(
        float(np.abs(keras.ops.convert_to_numpy(a) - keras.ops.convert_to_numpy(b)).max()) for a, b in zip(g1, g2)
    )
    config = ours.get_config()
    serialized = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(ours))
    report["cases"][f"{rank}-D {json.dumps(kw, sort_keys=True)}"] = {
        "shapes": [list(y1.shape), list(y2.shape), list(ours.compute_output_shape(x.shape))],
        "kernel_shapes": [list(ours.kernel.shape), list(theirs.kernel.shape)],
        "forward": float(np.abs(y1 - y2).max()),
        "gradients": grad_diff,
        "n_gradients": len(g1),
        "config_round_trip": OURS[rank].from_config(config).get_config() == config,
        "serialized_round_trip": type(serialized) is OURS[rank] and serialized.get_config() == config,
        "config_keys_missing": sorted(set(theirs.get_config()) - set(config)),
    }

errors = {}
for rank, args, kwargs in [(1, (0, 3), {}), (1, (2, (3, 3)), {}), (1, (2, 3), {"padding": "causal"}),
                           (1, (2, 3), {"strides": 2, "output_padding": 2}), (3, (2, 3), {"strides": (1, 0, 1)}),
                           (3, (2, 3), {"output_padding": (0, 1)}), (3, (2, 3), {"data_format": "NDHWC"})]:
    try:
        OURS[rank](*args, **kwargs)
    except (TypeError, ValueError) as err:
        errors[f"{rank}-D {(args, kwargs)!r}"] = f"{type(err).__name__}: {err}"
for name, shape, layer in [("4-D input", (2, 5, 5, 3), Conv3DTranspose(2, 3)),
                           ("4-D input 1-D", (2, 5, 5, 3), Conv1DTranspose(2, 3))]:
    try:
        layer.build(shape)
    except ValueError as err:
        errors[name] = str(err)
report["errors"] = errors
print(json.dumps(report))
