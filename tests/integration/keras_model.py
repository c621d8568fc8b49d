"""Run xcorr.keras.Conv2D beside keras.layers.Conv2D on the Keras backend named by $KERAS_BACKEND.

Keras fixes its backend when first imported, so tests/test_keras.py runs this
script once per backend in a fresh interpreter; it prints one JSON object of
measured differences, which the test checks.
"""

import json
import os
import sys
import tempfile

import keras
import numpy as np

import xcorr.keras

keras.config.set_floatx("float64")
keras.utils.set_random_seed(0)
rng = np.random.default_rng(0)
report: dict[str, object] = {"backend": keras.backend.backend()}


def to_numpy(a):
    return np.asarray(keras.ops.convert_to_numpy(a))


# -- forward: the same numbers as keras.layers.Conv2D, from the same weights -----
x = rng.standard_normal((4, 9, 10, 4))
forward = {}
for cfg in [
    dict(padding="valid"),
    dict(padding="same", groups=2),
    dict(padding="same", strides=2),
    dict(padding="same", strides=(2, 3), groups=4),
    dict(padding="valid", dilation_rate=(1, 2)),
    dict(padding="same", dilation_rate=2, use_bias=False),
    dict(padding="valid", strides=2, data_format="channels_first"),
    dict(padding="same", strides=2, method="direct"),  # xcorr's own shift-and-add, not the native conv
    dict(padding="valid", method="fft"),
]:
    xin = np.transpose(x, (0, 3, 1, 2)) if cfg.get("data_format") == "channels_first" else x
    keras_cfg = {k: v for k, v in cfg.items() if k != "method"}
    ours, theirs = xcorr.keras.Conv2D(8, 3, **cfg), keras.layers.Conv2D(8, 3, **keras_cfg)
    theirs.build(xin.shape)
    ours.build(xin.shape)
    ours.set_weights(theirs.get_weights())
    a, b = to_numpy(ours(xin)), to_numpy(theirs(xin))
    key = ",".join(f"{k}={v}" for k, v in cfg.items())
    forward[key] = {
        "shape": list(a.shape),
        "expected_shape": list(b.shape),
        "computed_shape": list(ours.compute_output_shape(xin.shape)),
        "max_abs_diff": float(np.max(np.abs(a - b))) if a.shape == b.shape else None,
    }
report["forward"] = forward

# -- keras.layers.Conv2DTranspose ported to xcorr.Conv2DTranspose (docs/coming-from/keras.md) --
transposed = {}
for padding, strides, kernel in [("same", 2, 3), ("valid", 2, 3), ("same", 3, 2), ("valid", 1, (2, 3))]:
    theirs = keras.layers.Conv2DTranspose(5, kernel, strides=strides, padding=padding)
    expected = to_numpy(theirs(x))
    w_keras, b_keras = (to_numpy(a) for a in theirs.get_weights())
    ours = xcorr.Conv2DTranspose(
        kernel, in_channels=4, out_channels=5, stride=strides, padding=padding, data_format="channels_last",
        backend="numpy", dtype="float64",
    )
    ours.weight, ours.bias = np.ascontiguousarray(w_keras.transpose(3, 2, 0, 1)), b_keras
    got = ours(x)
    transposed[f"{padding},strides={strides},kernel={kernel}"] = {
        "shape": list(got.shape),
        "expected_shape": list(expected.shape),
        "max_abs_diff": float(np.max(np.abs(got - expected))) if got.shape == expected.shape else None,
    }
report["transposed"] = transposed


# -- training: model.fit with jit_compile in a Sequential and a functional model --
def sequential(lib):
    return keras.Sequential(
        [
            keras.Input((9, 10, 4)),
            lib.Conv2D(6, 3, padding="same"),
            keras.layers.Activation("tanh"),
            lib.Conv2D(3, (2, 3), strides=2),
            keras.layers.Flatten(),
            keras.layers.Dense(2),
        ]
    )


def functional(lib):
    # lib: keras.layers or xcorr.keras, whose three layers take the same arguments
    inputs = keras.Input((9, 10, 4))
    h = lib.Conv2D(6, 3, padding="same")(inputs)
    h = keras.layers.Activation("tanh")(h)
    h = keras.layers.Add()([h, lib.Conv2D(6, 1)(inputs)])
    h = lib.DepthwiseConv2D(3, padding="same", depth_multiplier=2, activation="tanh")(h)
    h = lib.Conv2DTranspose(4, 3, strides=2, padding="same")(h)
    h = lib.Conv2D(3, (2, 3), strides=2)(h)
    outputs = keras.layers.Dense(2)(keras.layers.Flatten()(h))
    return keras.Model(inputs, outputs)


y = rng.standard_normal((16, 2))
xs = rng.standard_normal((16, 9, 10, 4))
training = {}
for name, build in (("sequential", sequential), ("functional", functional)):
    theirs = build(keras.layers)
    ours = build(xcorr.keras)
    initial = theirs.get_weights()
    ours.set_weights(initial)
    runs = {}
    # Ours trains under jit_compile; Keras' own layer is the reference, compiled as well on
    # jax (XLA's compiled float64 arithmetic differs from its eager arithmetic in the last
    # bits, and the training steps grow the difference), eager on torch (a second
    # torch.compile would double the run's time). On torch only the functional model, which
    # holds every layer of the sequential one, trains under torch.compile: dynamo's tracing of
    # Keras' train step is most of this script's time there.
    on_jax = keras.backend.backend() == "jax"
    ours_jit = on_jax or name == "functional"
    for label, model, jit in (("ours", ours, ours_jit), ("theirs", theirs, on_jax)):
        model.compile(optimizer=keras.optimizers.SGD(0.05), loss="mse", jit_compile=jit)
        history = model.fit(xs, y, epochs=3, batch_size=4, shuffle=False, verbose=0)
        runs[label] = (history.history["loss"], model.get_weights(), model.jit_compile)
    (loss_a, w_a, jit_a), (loss_b, w_b, _) = runs["ours"], runs["theirs"]
    training[name] = {
        "losses": loss_a,
        "loss_max_rel_diff": float(np.max(np.abs(np.subtract(loss_a, loss_b)) / np.abs(loss_b))),
        "weights_max_abs_diff": max(float(np.max(np.abs(a - b))) for a, b in zip(w_a, w_b, strict=True)),
        "weights_moved": max(float(np.max(np.abs(a - b))) for a, b in zip(w_a, initial, strict=True)),
        "jit_compile": bool(jit_a),
        "xcorr_layers": sorted(type(layer).__name__ for layer in ours.layers if type(layer).__module__ == "xcorr.backends.keras"),
    }
    # the saved model (config + weights) loads back to the same outputs (called eagerly: a
    # compiled predict would trace the model once more)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.keras")
        ours.save(path)
        loaded = keras.models.load_model(path)
    training[name]["reload_max_abs_diff"] = float(np.max(np.abs(to_numpy(loaded(xs)) - to_numpy(ours(xs)))))
report["training"] = training

json.dump(report, sys.stdout)
