"""xcorr.keras.Conv3D beside keras.layers.Conv3D with the same weights, in float64, on the Keras backend
of ``KERAS_BACKEND``: forward, kernel and bias gradients, output shapes, config round trip, errors;
the forwards eager, the jax gradients under ``jax.jit`` (as Keras' compiled training step takes them);
then a model of Conv1D (causal) and Conv3D layers ported from Keras' layers to xcorr's.
Tiny volumes (3-D is slow). Prints a JSON report (tests/test_keras.py checks it)."""

import json
import os

os.environ.setdefault("JAX_ENABLE_X64", "1")  # float64 on jax too (before jax is imported)

import keras
import numpy as np

from xcorr.keras import Conv1D, Conv3D

keras.config.set_floatx("float64")
backend = keras.backend.backend()
rng = np.random.default_rng(0)
KERNEL = (2, 3, 2)
CASES = [
    {"padding": "valid"},
    {"padding": "same"},
    {"padding": "valid", "dilation_rate": 2},
    {"padding": "same", "strides": 2},
    {"padding": "same", "groups": 2},
    {"padding": "valid", "strides": (1, 2, 3)},
    {"padding": "same", "data_format": "channels_first", "dilation_rate": (1, 2, 1)},
    {"padding": "SAME", "use_bias": False, "activation": "relu"},
    # xcorr's own sum of 2-D correlations over the depth taps, not the library's 3-D convolution
    {"padding": "same", "strides": 2, "groups": 2, "method": "direct"},
    {"padding": "valid", "dilation_rate": (2, 1, 2), "data_format": "channels_first", "method": "direct"},
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
    x = rng.standard_normal((2, 4, 5, 6, 4) if first else (2, 5, 6, 4, 4))
    ours = Conv3D(4, KERNEL, **kw)
    theirs = keras.layers.Conv3D(4, KERNEL, **{k: v for k, v in kw.items() if k != "method"})
    ours.build(x.shape)
    theirs.build(x.shape)
    ours.set_weights(theirs.get_weights())
    y1, y2 = keras.ops.convert_to_numpy(ours(x)), keras.ops.convert_to_numpy(theirs(x))
    g1, g2 = gradients(ours, x), gradients(theirs, x)
    grad_diff = max(
        float(np.abs(keras.ops.convert_to_numpy(a) - keras.ops.convert_to_numpy(b)).max()) for a, b in zip(g1, g2)
    )
    config = ours.get_config()
    again = Conv3D.from_config(config)
    serialized = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(ours))
    report["cases"][json.dumps(kw, sort_keys=True)] = {
        "shapes": [list(y1.shape), list(y2.shape), list(ours.compute_output_shape(x.shape))],
        "kernel_shapes": [list(ours.kernel.shape), list(theirs.kernel.shape)],
        "forward": float(np.abs(y1 - y2).max()),
        "gradients": grad_diff,
        "n_gradients": len(g1),
        "config_round_trip": again.get_config() == config,
        "serialized_round_trip": type(serialized) is Conv3D and serialized.get_config() == config,
        "config_keys_missing": sorted(set(theirs.get_config()) - set(config)),
    }

errors = {}
for args, kwargs in [((0, 3), {}), ((2, 0), {}), ((2, (3, 3)), {}), ((2, 3), {"padding": "causal"}),
                     ((2, 3), {"strides": (1, 0, 1)}), ((5, 3), {"groups": 2}), ((2, 3), {"boundary": "bogus"}),
                     ((2, 3), {"method": "bogus"}), ((2, 3), {"use_bias": "yes"}),
                     ((2, 3), {"data_format": "NDHWC"})]:
    try:
        Conv3D(*args, **kwargs)
    except (TypeError, ValueError) as err:
        errors[repr((args, kwargs))] = f"{type(err).__name__}: {err}"
for name, shape, layer in [("4-D input", (2, 5, 5, 3), Conv3D(2, 3)), ("too small", (2, 5, 2, 5, 3), Conv3D(2, 3)),
                           ("input channels", (2, 5, 5, 5, 3), Conv3D(4, 3, groups=2))]:
    try:
        layer.build(shape)
    except ValueError as err:
        errors[name] = str(err)
report["errors"] = errors


def two_branch_model(conv1d, conv3d):
    """A signal branch (causal Conv1D layers) and a volume branch (Conv3D layers), joined by a Dense."""
    signal, volume = keras.Input((16, 3)), keras.Input((6, 6, 6, 2))
    a = conv1d(4, 3, padding="causal", dilation_rate=2, activation="relu")(signal)
    a = keras.layers.Flatten()(conv1d(2, 3, padding="causal", strides=2)(a))
    b = conv3d(3, 3, padding="same", activation="tanh")(volume)
    b = keras.layers.Flatten()(conv3d(2, 2, strides=2, groups=1)(b))
    return keras.Model([signal, volume], keras.layers.Dense(1)(keras.layers.Concatenate()([a, b])))


def model_gradients(model, inputs):
    if backend == "jax":
        import jax

        def loss(weights):
            return (model.stateless_call(weights, [], inputs)[0] ** 2).sum()

        return jax.jit(jax.grad(loss))([v.value for v in model.trainable_variables])
    import torch

    (model([torch.tensor(a) for a in inputs]) ** 2).sum().backward()
    return [v.value.grad for v in model.trainable_variables]


theirs = two_branch_model(keras.layers.Conv1D, keras.layers.Conv3D)
ours = two_branch_model(Conv1D, Conv3D)
ours.set_weights(theirs.get_weights())  # Keras' kernel layouts, layer by layer
inputs = [rng.standard_normal((2, 16, 3)), rng.standard_normal((2, 6, 6, 6, 2))]
g1, g2 = model_gradients(ours, inputs), model_gradients(theirs, inputs)
report["model"] = {
    "xcorr_layers": sorted({type(layer).__name__ for layer in ours.layers if type(layer).__module__.startswith("xcorr")}),
    "forward": float(np.abs(keras.ops.convert_to_numpy(ours(inputs)) - keras.ops.convert_to_numpy(theirs(inputs))).max()),
    "gradients": max(
        float(np.abs(keras.ops.convert_to_numpy(a) - keras.ops.convert_to_numpy(b)).max()) for a, b in zip(g1, g2)
    ),
    "n_gradients": [len(g1), len(g2)],
}
print(json.dumps(report))
