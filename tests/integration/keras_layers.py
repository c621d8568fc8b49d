"""xcorr.keras's three layers beside Keras' own on the Keras backend named by $KERAS_BACKEND (float32).

Run by tests/test_keras.py in a fresh interpreter per backend (Keras fixes its
backend when first imported); prints one JSON object of measured differences,
which the test checks against Keras' float32 tolerances.
"""

import json
import sys

import keras
import numpy as np

import xcorr.keras

rng = np.random.default_rng(0)
report: dict[str, object] = {"backend": keras.backend.backend()}


def to_numpy(a):
    return np.asarray(keras.ops.convert_to_numpy(a))


def max_diff(a, b):
    a, b = to_numpy(a), to_numpy(b)
    return float(np.max(np.abs(a - b))) if a.shape == b.shape else None


# Keras' regularizers and constraints, given by name and as objects, on every layer.
COMMON = dict(
    activation="tanh",
    bias_initializer="random_normal",
    bias_regularizer=keras.regularizers.L2(0.02),
    activity_regularizer="l2",
    bias_constraint=keras.constraints.MaxNorm(0.05),
)
KERNEL = dict(kernel_regularizer="l1", kernel_constraint="non_neg")
DEPTHWISE = dict(depthwise_regularizer="l1", depthwise_constraint="non_neg")
CASES = [
    ("Conv2D", (6, 3), dict(padding="same", strides=2, groups=2, **KERNEL, **COMMON)),
    ("Conv2D", (4, (2, 3)), dict(padding="valid", dilation_rate=(2, 1), **KERNEL, **COMMON)),
    ("Conv2D", (4, 3), dict(padding="same", data_format="channels_first", kernel_initializer="he_normal")),
    ("Conv2DTranspose", (5, 3), dict(padding="same", strides=2, **KERNEL, **COMMON)),
    ("Conv2DTranspose", (5, (2, 3)), dict(padding="valid", strides=(3, 2), output_padding=(1, 0), **KERNEL)),
    ("Conv2DTranspose", (3, 3), dict(padding="same", strides=3, output_padding=2, data_format="channels_first")),
    ("Conv2DTranspose", (3, 3), dict(padding="valid", dilation_rate=2, **COMMON)),
    ("DepthwiseConv2D", (3,), dict(padding="same", depth_multiplier=2, strides=2, **DEPTHWISE, **COMMON)),
    ("DepthwiseConv2D", ((3, 2),), dict(padding="valid", depth_multiplier=3, dilation_rate=2)),
    ("DepthwiseConv2D", (3,), dict(padding="same", data_format="channels_first", **DEPTHWISE)),
]


def model(layer, shape):
    # A Keras layer in front, so its weight gradient carries the layer's input gradient.
    keras.utils.set_random_seed(1)
    channels = shape[-1] if layer.data_format == "channels_last" else shape[0]
    front = keras.layers.Conv2D(channels, 1, data_format=layer.data_format)
    net = keras.Sequential([keras.Input(shape), front, layer])
    net.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    return net


layers = {}
for name, args, kwargs in CASES:
    channels_first = kwargs.get("data_format") == "channels_first"
    shape = (4, 9, 10) if channels_first else (9, 10, 4)
    x = rng.standard_normal((6, *shape)).astype("float32")
    ours, theirs = getattr(xcorr.keras, name)(*args, **kwargs), getattr(keras.layers, name)(*args, **kwargs)
    theirs_model = model(theirs, shape)
    ours_model = model(ours, shape)
    ours_model.set_weights(theirs_model.get_weights())
    y = rng.standard_normal(to_numpy(theirs_model(x)).shape).astype("float32")
    result = {
        "forward": max_diff(ours_model(x), theirs_model(x)),
        "scale": float(np.max(np.abs(to_numpy(theirs_model(x))))),
        "shapes": [list(to_numpy(ours_model(x)).shape), list(ours.compute_output_shape(x.shape))],
        "expected_shape": list(theirs.compute_output_shape(x.shape)),
        "losses": [float(to_numpy(v)) for v in ours_model.losses],
        "expected_losses": [float(to_numpy(v)) for v in theirs_model.losses],
    }
    # Two SGD steps: the weights' updates are the gradients (of the loss and the regularization
    # losses, through the layer to the Keras layer in front); the constraints project them after.
    loss_ours = [float(ours_model.train_on_batch(x, y)) for _ in range(2)]
    loss_theirs = [float(theirs_model.train_on_batch(x, y)) for _ in range(2)]
    w_ours, w_theirs = ours_model.get_weights(), theirs_model.get_weights()
    result["train_loss_rel_diff"] = max(abs(a - b) / abs(b) for a, b in zip(loss_ours, loss_theirs))
    result["weights_max_abs_diff"] = max(max_diff(a, b) for a, b in zip(w_ours, w_theirs, strict=True))
    result["kernel_min"] = float(np.min(to_numpy(ours.kernel)))
    result["bias_norm"] = float(np.linalg.norm(to_numpy(ours.bias))) if ours.use_bias else 0.0
    # get_config / from_config and Keras' serialization round trip to the same config
    config = ours.get_config()
    revived = type(ours).from_config(config)
    serialized = keras.saving.serialize_keras_object(ours)
    result["config_round_trip"] = revived.get_config() == config
    result["serialized_round_trip"] = keras.saving.deserialize_keras_object(serialized).get_config() == config
    result["registered_name"] = serialized["registered_name"]
    result["config_keys_missing"] = sorted(set(theirs.get_config()) - set(config))
    layers[f"{name}{args}," + ",".join(f"{k}={v}" for k, v in kwargs.items() if isinstance(v, (str, int, tuple)))] = (
        result
    )
report["layers"] = layers


# -- symbolic and eager shapes that leave no output raise as Keras' layers do --------------
def error(module, name, args, kwargs, inputs):
    try:
        getattr(module, name)(*args, **kwargs)(inputs)
    except ValueError as err:
        return str(err)
    return None


report["too_small"] = {
    name: [error(module, name, args, kw, inp) for module in (xcorr.keras, keras.layers)]
    for name, args, kw, inp in [
        ("Conv2D", (1, 2), dict(dilation_rate=10), keras.Input((10, 10, 3))),
        ("DepthwiseConv2D", (5,), dict(strides=2), np.zeros((2, 4, 4, 3), "float32")),
    ]
}
report["unknown_sizes"] = [
    list(xcorr.keras.Conv2DTranspose(2, 3, strides=2, padding=p)(keras.Input((None, None, 3))).shape)
    for p in ("same", "valid")
]

# -- bad arguments: refused at construction, the message naming argument, value and expectation --
errors = {}
for name, args, kwargs in [
    ("Conv2D", (0, 3), {}),
    ("Conv2D", (2, (3, 0)), {}),
    ("Conv2D", (2, 3), dict(strides=(1, 0))),
    ("Conv2D", (5, 2), dict(groups=2)),
    ("Conv2D", (2, 3), dict(padding="smae")),
    ("Conv2D", (2, 3), dict(method="bogus")),
    ("Conv2D", (2, 3), dict(boundary="mirrored")),
    ("Conv2D", (2, 3), dict(data_format="NHWC")),
    ("Conv2D", (2, 3), dict(use_bias="yes")),
    ("Conv2D", (2, 3), dict(activation="bogus")),
    ("Conv2D", (2, 3), dict(kernel_regularizer="bogus")),
    ("Conv2DTranspose", (2, 3), dict(strides=2, output_padding=2)),
    ("Conv2DTranspose", (2, 3), dict(padding="full")),
    ("DepthwiseConv2D", (3,), dict(depth_multiplier=0)),
]:
    label = f"{name}{args}," + ",".join(f"{k}={v}" for k, v in kwargs.items())
    try:
        getattr(xcorr.keras, name)(*args, **kwargs)
    except (ValueError, TypeError) as err:
        errors[label] = f"{type(err).__name__}: {err}"
    else:
        errors[label] = None
try:
    xcorr.keras.Conv2D(4, 3, groups=4)(np.zeros((1, 5, 5, 6), "float32"))
except ValueError as err:
    errors["input_channels"] = f"ValueError: {err}"
report["errors"] = errors

json.dump(report, sys.stdout)
