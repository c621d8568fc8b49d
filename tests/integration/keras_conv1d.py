"""xcorr.keras.Conv1D beside keras.layers.Conv1D with the same weights, in float64, on the Keras backend
of ``KERAS_BACKEND``: forward, kernel and bias gradients, output shapes, config round trip, errors
(eager forwards; on jax the gradients under ``jax.jit``, as Keras' compiled training step takes them).
Prints a JSON report (tests/test_keras.py checks it)."""

import json
import os

os.environ.setdefault("JAX_ENABLE_X64", "1")  # float64 on jax too (before jax is imported)

import keras
import numpy as np

from xcorr.keras import Conv1D

keras.config.set_floatx("float64")
backend = keras.backend.backend()
rng = np.random.default_rng(0)
CASES = [
    {"padding": "valid"},
    {"padding": "same"},
    {"padding": "causal", "dilation_rate": 2},
    {"padding": "same", "strides": 2},
    {"padding": "causal", "groups": 2},
    {"padding": "valid", "strides": 3},
    {"padding": "same", "data_format": "channels_first"},
    {"padding": "causal", "use_bias": False, "activation": "relu"},
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
for kw in CASES:
    first = kw.get("data_format") == "channels_first"
    x = rng.standard_normal((2, 4, 11) if first else (2, 11, 4))
    ours, theirs = Conv1D(6, 3, **kw), keras.layers.Conv1D(6, 3, **kw)
    ours.build(x.shape)
    theirs.build(x.shape)
    ours.set_weights(theirs.get_weights())
    y1, y2 = keras.ops.convert_to_numpy(ours(x)), keras.ops.convert_to_numpy(theirs(x))
    g1, g2 = gradients(ours, x), gradients(theirs, x)
    grad_diff = max(
        float(np.abs(keras.ops.convert_to_numpy(a) - keras.ops.convert_to_numpy(b)).max()) for a, b in zip(g1, g2)
    )
    config = ours.get_config()
    again = Conv1D.from_config(config)
    report["cases"][json.dumps(kw, sort_keys=True)] = {
        "shapes": [list(y1.shape), list(y2.shape), list(ours.compute_output_shape(x.shape))],
        "kernel_shapes": [list(ours.kernel.shape), list(theirs.kernel.shape)],
        "forward": float(np.abs(y1 - y2).max()),
        "gradients": grad_diff,
        "n_gradients": len(g1),
        "config_round_trip": again.get_config() == config,
    }

errors = {}
for args, kwargs in [((0, 3), {}), ((2, 0), {}), ((2, (3, 3)), {}), ((2, 3), {"padding": "full_"}),
                     ((2, 3), {"strides": 0}), ((5, 3), {"groups": 2})]:
    try:
        Conv1D(*args, **kwargs)
    except (TypeError, ValueError) as err:
        errors[repr((args, kwargs))] = f"{type(err).__name__}: {err}"
try:
    Conv1D(2, 3).build((2, 5, 5, 3))
except ValueError as err:
    errors["4-D input"] = str(err)
report["errors"] = errors
print(json.dumps(report))
