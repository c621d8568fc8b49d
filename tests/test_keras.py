"""``xcorr.keras``: Keras 3 layers on the jax and torch backends, against Keras' own layers.

Keras fixes its backend when it is first imported, so everything that
imports Keras runs in a fresh interpreter: ``tests/integration/keras_model.py``
(models in float64, the same initial weights for both layers),
``tests/integration/keras_layers.py`` (the three layers in float32 beside
Keras' own), Keras' own tests of its layers with ours in their place
(``tests/integration/keras_own_tests.py``), and the scripts in this file;
this file checks what they report.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from matrix import require_module

SCRIPT = Path(__file__).resolve().parent / "integration" / "keras_model.py"


def _require_keras() -> None:
    # Not imported here: Keras would fix this process's backend (TensorFlow by default).
    if importlib.util.find_spec("keras") is None:
        require_module("keras")  # skips, or fails under CI


def _run(backend: str) -> dict:
    _require_keras()
    require_module(backend)
    env = {**os.environ, "KERAS_BACKEND": backend, "JAX_ENABLE_X64": "1", "PYTHONWARNINGS": "ignore"}
    run = subprocess.run(
        [sys.executable, str(SCRIPT)], env=env, capture_output=True, text=True, timeout=1200, check=False
    )
    assert run.returncode == 0, f"KERAS_BACKEND={backend}:\n{run.stderr[-6000:]}"
    return json.loads(run.stdout)


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_keras_models_match_keras_conv2d(backend):
    report = _run(backend)
    assert report["backend"] == backend
    for config, result in report["forward"].items():
        assert result["shape"] == result["expected_shape"] == result["computed_shape"], config
        assert result["max_abs_diff"] <= 1e-12, (config, result)
    assert len(report["transposed"]) == 4
    for config, result in report["transposed"].items():
        assert result["shape"] == result["expected_shape"], config
        assert result["max_abs_diff"] <= 1e-12, (config, result)
    for model, result in report["training"].items():
        # on torch, the sequential model (its layers are the functional model's) trains eagerly
        assert result["jit_compile"] == (backend == "jax" or model == "functional"), model
        assert result["xcorr_layers"] == {
            "sequential": ["Conv2D", "Conv2D"],
            "functional": ["Conv2D", "Conv2D", "Conv2D", "Conv2DTranspose", "DepthwiseConv2D"],
        }[model]
        # training moved the weights, and both layers moved them to the same numbers
        assert result["weights_moved"] > 1e-2, (model, result)
        assert result["losses"][-1] < result["losses"][0], (model, result)
        assert result["loss_max_rel_diff"] <= 1e-6, (model, result)  # torch's history is float32
        assert result["weights_max_abs_diff"] <= 1e-10, (model, result)
        assert result["reload_max_abs_diff"] == 0.0, (model, result)


def test_import_xcorr_loads_neither_keras_nor_flax():
    code = textwrap.dedent(
        """
        import sys
        import numpy as np
        import xcorr
        xcorr.corr2d(np.ones((4, 4)), np.ones((2, 2)))
        print(",".join(m for m in ("keras", "flax", "xcorr.keras", "xcorr.backends.keras") if m in sys.modules))
        """
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert run.stdout.strip() == ""


def test_keras_numpy_backend_predicts_as_keras_conv2d():
    # Keras' numpy backend has no training; the layer still runs inference there.
    _require_keras()
    code = textwrap.dedent(
        """
        import numpy as np
        import keras
        import xcorr.keras
        x = np.random.default_rng(0).standard_normal((2, 7, 8, 3)).astype("float32")
        ours = xcorr.keras.Conv2D(4, 3, padding="same", strides=2)
        theirs = keras.layers.Conv2D(4, 3, padding="same", strides=2)
        theirs.build(x.shape)
        ours.build(x.shape)
        ours.set_weights(theirs.get_weights())
        model = keras.Sequential([keras.Input((7, 8, 3)), ours])
        print(float(np.max(np.abs(np.asarray(model.predict(x, verbose=0)) - np.asarray(theirs(x))))))
        """
    )
    env = {**os.environ, "KERAS_BACKEND": "numpy", "PYTHONWARNINGS": "ignore"}
    run = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert run.returncode == 0, run.stderr[-4000:]
    assert float(run.stdout) <= 1e-5  # float32 (Keras' numpy backend convolves with jax in float32)


def _keras_python(code: str, backend: str, timeout: int = 600, cwd: Path | None = None) -> str:
    """Run ``code`` in a fresh interpreter on Keras' ``backend``; its stdout."""
    _require_keras()
    require_module(backend)
    env = {**os.environ, "KERAS_BACKEND": backend, "PYTHONWARNINGS": "ignore"}
    run = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], env=env, capture_output=True, text=True,
        timeout=timeout, check=False, cwd=cwd,
    )
    assert run.returncode == 0, f"KERAS_BACKEND={backend}:\n{run.stderr[-6000:]}"
    return run.stdout


def test_import_xcorr_keras_registers_the_layers_for_keras():
    out = _keras_python(
        """
        import keras
        import xcorr.keras
        names = ("xcorr>Conv1D", "xcorr>Conv2D", "xcorr>Conv2DTranspose", "xcorr>Conv3D", "xcorr>DepthwiseConv2D",
                 "xcorr>Conv1DTranspose", "xcorr>Conv3DTranspose")
        print([keras.saving.get_registered_object(n) is getattr(xcorr.keras, n[6:]) for n in names])
        """,
        "jax",
    )
    assert out.strip() == "[True, True, True, True, True, True, True]"


def test_import_xcorr_keras_without_keras_names_the_extra():
    code = "import sys; sys.modules['keras'] = None\ntry:\n import xcorr.keras\nexcept ImportError as e:\n print(e)"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert run.stdout.strip() == "xcorr.keras needs Keras 3: pip install 'xcorr[keras]'"


def test_xcorr_keras_docstring_examples():
    out = _keras_python(
        """
        import doctest, xcorr.keras, xcorr.backends.keras
        flags = doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS
        results = [doctest.testmod(m, optionflags=flags) for m in (xcorr.keras, xcorr.backends.keras)]
        print(sum(r.attempted for r in results), sum(r.failed for r in results))
        """,
        "jax",
    )
    attempted, failed = map(int, out.split()[-2:])
    # the module's example, then one per layer (xcorr.backends.keras: Conv1D, Conv2D, Conv2DTranspose, Conv3D,
    # DepthwiseConv2D, Conv1DTranspose, Conv3DTranspose)
    assert attempted >= 4 + 4 * 3 + 4 + 2 * 3 and failed == 0, out


SAVE = """
    import numpy as np, keras
    import xcorr.keras
    keras.utils.set_random_seed(0)
    inputs = keras.Input((12, 12, 3))
    h = xcorr.keras.Conv2D(4, 3, padding="same", activation="relu", kernel_regularizer="l2",
                           kernel_constraint="non_neg", boundary="reflect")(inputs)
    h = xcorr.keras.DepthwiseConv2D(3, strides=2, depth_multiplier=2, padding="same",
                                    bias_initializer=keras.initializers.RandomNormal(stddev=0.5))(h)
    outputs = xcorr.keras.Conv2DTranspose(2, 3, strides=2, padding="same", output_padding=1)(h)
    model = keras.Model(inputs, outputs)
    x = np.random.default_rng(0).standard_normal((2, 12, 12, 3)).astype("float32")
    model.save("model.keras")
    np.save("x.npy", x)
    np.save("y.npy", keras.ops.convert_to_numpy(model(x)))
    print([type(layer).__name__ for layer in model.layers[1:]])
"""
LOAD = """
    import numpy as np, keras
    import xcorr.keras  # and nothing from it: the import registers the layers
    model = keras.saving.load_model("model.keras")
    y = keras.ops.convert_to_numpy(model(np.load("x.npy")))
    print(float(np.max(np.abs(y - np.load("y.npy")))), len(model.losses),
          [type(layer).__module__ + "." + type(layer).__name__ for layer in model.layers[1:]])
"""


@pytest.mark.slow
def test_keras_file_saved_in_one_process_loads_in_another_after_import_xcorr_keras(tmp_path):
    saved = _keras_python(SAVE, "jax", cwd=tmp_path)
    assert saved.strip() == "['Conv2D', 'DepthwiseConv2D', 'Conv2DTranspose']"
    for backend in ("jax", "torch"):  # the same file on the other backend too
        diff, losses, classes = _keras_python(LOAD, backend, cwd=tmp_path).split(" ", 2)
        assert float(diff) <= 1e-5, backend  # float32
        assert int(losses) == 1, backend  # the kernel regularizer's
        assert classes.strip() == str([f"xcorr.backends.keras.{n}" for n in ("Conv2D", "DepthwiseConv2D",
                                                                             "Conv2DTranspose")])


LAYERS = Path(__file__).resolve().parent / "integration" / "keras_layers.py"
CONV1D = Path(__file__).resolve().parent / "integration" / "keras_conv1d.py"
CONV3D = Path(__file__).resolve().parent / "integration" / "keras_conv3d.py"
TRANSPOSE_ND = Path(__file__).resolve().parent / "integration" / "keras_conv_transpose.py"


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_keras_conv1d_matches_keras_conv1d_forward_and_gradients(backend):
    # float64, the same weights (Keras' layout (l, C_in // groups, filters)): valid, same, causal
    report = json.loads(_keras_python(CONV1D.read_text(), backend))
    assert report["backend"] == backend
    assert len(report["cases"]) == 8
    for case, r in report["cases"].items():
        assert r["shapes"][0] == r["shapes"][1] == r["shapes"][2], case
        assert r["kernel_shapes"][0] == r["kernel_shapes"][1], case
        assert r["forward"] <= 1e-12 and r["gradients"] <= 1e-10, (case, r)
        assert r["n_gradients"] == (1 if "use_bias" in case else 2), case
        assert r["config_round_trip"], case
    errors = report["errors"]
    assert errors["((0, 3), {})"] == "ValueError: filters must be an int >= 1; got 0"
    assert errors["((2, 0), {})"] == "ValueError: kernel_size must be an int >= 1 or a sequence of 1; got 0"
    assert errors["((2, (3, 3)), {})"].startswith("ValueError: kernel_size must be")
    assert errors["((2, 3), {'padding': 'full_'})"] == (
        "ValueError: padding must be one of 'valid', 'same', 'full', 'causal'; got 'full_'"
    )
    assert errors["((2, 3), {'strides': 0})"].startswith("ValueError: strides must be")
    assert errors["((5, 3), {'groups': 2})"].startswith("ValueError: groups must be")
    assert errors["4-D input"].startswith("Conv1D takes 3-D inputs (batch and 2 axes)")


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_keras_conv3d_matches_keras_conv3d_forward_and_gradients(backend):
    # float64, the same weights (Keras' layout (d, h, w, C_in // groups, filters)), tiny volumes
    # (with method="direct" too: xcorr's sum of 2-D correlations, not the library's conv3d)
    report = json.loads(_keras_python(CONV3D.read_text(), backend))
    assert report["backend"] == backend
    assert len(report["cases"]) == 10
    for case, r in report["cases"].items():
        assert r["shapes"][0] == r["shapes"][1] == r["shapes"][2], case
        assert r["kernel_shapes"][0] == r["kernel_shapes"][1] == [2, 3, 2, 2 if "groups" in case else 4, 4], case
        assert r["forward"] <= 1e-12 and r["gradients"] <= 1e-10, (case, r)
        assert r["n_gradients"] == (1 if "use_bias" in case else 2), case
        assert r["config_round_trip"] and r["serialized_round_trip"], case
        assert r["config_keys_missing"] == [], case  # every key of Keras' config, plus xcorr's
    errors = report["errors"]
    expected = {
        "((0, 3), {})": "ValueError: filters must be an int >= 1; got 0",
        "((2, 0), {})": "ValueError: kernel_size must be an int >= 1 or a sequence of 3; got 0",
        "((2, (3, 3)), {})": "ValueError: kernel_size must be an int >= 1 or a sequence of 3; got (3, 3)",
        "((2, 3), {'padding': 'causal'})": (
            "ValueError: padding must be one of 'valid', 'same', 'full'; got 'causal'"
        ),
        "((2, 3), {'strides': (1, 0, 1)})": "ValueError: strides must be an int >= 1 or a sequence of 3; got (1, 0, 1)",
        "((5, 3), {'groups': 2})": "ValueError: groups must be an int >= 1 that divides filters=5; got 2",
        "((2, 3), {'method': 'bogus'})": (
            "ValueError: method must be one of 'auto', 'direct', 'fft', 'native'; got 'bogus'"
        ),
        "((2, 3), {'use_bias': 'yes'})": "TypeError: use_bias must be True or False; got 'yes'",
        "((2, 3), {'data_format': 'NDHWC'})": (
            "ValueError: data_format must be one of 'channels_last', 'channels_first'; got 'NDHWC'"
        ),
        "4-D input": "Conv3D takes 5-D inputs (batch and 4 axes); got shape (2, 5, 5, 3)",
        "input channels": "groups=2 must divide the input's 3 channels",
    }
    assert {key: errors[key] for key in expected} == expected
    assert errors["((2, 3), {'boundary': 'bogus'})"].startswith("ValueError: boundary must be one of 'fill'")
    assert errors["too small"].startswith("Computed output size would be zero or negative: Conv3D with")
    # a Keras model of causal Conv1D and Conv3D layers, ported to xcorr's with Keras' weights
    model = report["model"]
    assert model["xcorr_layers"] == ["Conv1D", "Conv3D"], model
    assert model["n_gradients"] == [10, 10], model  # 4 convolutions and the Dense, kernel and bias each
    assert model["forward"] <= 1e-12 and model["gradients"] <= 1e-10, model


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_keras_conv1d_and_conv3d_transpose_match_keras_forward_and_gradients(backend):
    # float64, the same weights (Keras' layout (*kernel_size, filters, C_in)), Keras' output sizes
    report = json.loads(_keras_python(TRANSPOSE_ND.read_text(), backend))
    assert report["backend"] == backend
    assert len(report["cases"]) == 9
    for case, r in report["cases"].items():
        assert r["shapes"][0] == r["shapes"][1] == r["shapes"][2], case
        assert r["kernel_shapes"][0] == r["kernel_shapes"][1], case
        assert r["forward"] <= 1e-12 and r["gradients"] <= 1e-10, (case, r)
        assert r["n_gradients"] == (1 if "use_bias" in case else 2), case
        assert r["config_round_trip"] and r["serialized_round_trip"], case
        assert r["config_keys_missing"] == [], case
    errors = report["errors"]
    expected = {
        "1-D ((0, 3), {})": "ValueError: filters must be an int >= 1; got 0",
        "1-D ((2, (3, 3)), {})": "ValueError: kernel_size must be an int >= 1 or a sequence of 1; got (3, 3)",
        "1-D ((2, 3), {'padding': 'causal'})": "ValueError: padding must be one of 'valid', 'same'; got 'causal'",
        "1-D ((2, 3), {'strides': 2, 'output_padding': 2})": (
            "ValueError: output_padding must be smaller than strides=(2,) on each axis; got output_padding=2"
        ),
        "3-D ((2, 3), {'strides': (1, 0, 1)})": (
            "ValueError: strides must be an int >= 1 or a sequence of 3; got (1, 0, 1)"
        ),
        "3-D ((2, 3), {'output_padding': (0, 1)})": (
            "ValueError: output_padding must be an int >= 0 or a sequence of 3; got (0, 1)"
        ),
        "3-D ((2, 3), {'data_format': 'NDHWC'})": (
            "ValueError: data_format must be one of 'channels_last', 'channels_first'; got 'NDHWC'"
        ),
        "4-D input": "Conv3DTranspose takes 5-D inputs (batch and 4 axes); got shape (2, 5, 5, 3)",
        "4-D input 1-D": "Conv1DTranspose takes 3-D inputs (batch and 2 axes); got shape (2, 5, 5, 3)",
    }
    assert errors == expected


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_keras_layers_match_keras_forward_gradients_regularizers_constraints(backend):
    # float32 (Keras' default) and Keras' conv tests' tolerances: rtol 5e-4, atol 1e-5
    report = json.loads(_keras_python(LAYERS.read_text(), backend, timeout=1200))
    assert report["backend"] == backend
    assert {key.split("(")[0] for key in report["layers"]} == {"Conv2D", "Conv2DTranspose", "DepthwiseConv2D"}
    for case, r in report["layers"].items():
        assert r["shapes"] == [r["expected_shape"], r["expected_shape"]], case
        assert r["forward"] <= 1e-5 + 5e-4 * r["scale"], (case, r)
        assert len(r["losses"]) == len(r["expected_losses"]), (case, r)
        assert all(abs(a - b) <= 1e-5 + 5e-4 * abs(b) for a, b in zip(r["losses"], r["expected_losses"])), case
        # two SGD steps from the same weights end at the same weights: the same gradients
        assert r["train_loss_rel_diff"] <= 5e-4 and r["weights_max_abs_diff"] <= 1e-5, (case, r)
        if "non_neg" in case:
            assert r["kernel_min"] >= 0.0, case  # the constraint applied after the optimizer's steps
        if "activity_regularizer=l2" in case:
            assert r["bias_norm"] <= 0.05 + 1e-6, case  # MaxNorm(0.05) on the bias
        assert r["config_round_trip"] and r["serialized_round_trip"], case
        assert r["registered_name"] == "xcorr>" + case.split("(")[0], case
        assert r["config_keys_missing"] == [], case  # every key of Keras' config, plus xcorr's
    assert sum("non_neg" in case for case in report["layers"]) >= 5
    for name, (ours, theirs) in report["too_small"].items():
        assert theirs.startswith("Computed output size would be zero or negative"), name
        assert ours.startswith("Computed output size would be zero or negative: " + name), name
    assert "dilation_rate=(10, 10), padding='valid' on an input of shape (None, 10, 10, 3)" in (
        report["too_small"]["Conv2D"][0]
    )
    assert report["unknown_sizes"] == [[None, None, None, 2]] * 2
    errors = report["errors"]
    expected = {
        "Conv2D(0, 3),": "ValueError: filters must be an int >= 1; got 0",
        "Conv2D(2, (3, 0)),": "ValueError: kernel_size must be an int >= 1 or a pair of them; got (3, 0)",
        "Conv2D(2, 3),strides=(1, 0)": "ValueError: strides must be an int >= 1 or a pair of them; got (1, 0)",
        "Conv2D(5, 2),groups=2": "ValueError: groups must be an int >= 1 that divides filters=5; got 2",
        "Conv2D(2, 3),padding=smae": "ValueError: padding must be one of 'valid', 'same', 'full'; got 'smae'",
        "Conv2D(2, 3),method=bogus": "ValueError: method must be one of 'auto', 'direct', 'fft', 'native'; got 'bogus'",
        "Conv2D(2, 3),data_format=NHWC": (
            "ValueError: data_format must be one of 'channels_last', 'channels_first'; got 'NHWC'"
        ),
        "Conv2D(2, 3),use_bias=yes": "TypeError: use_bias must be True or False; got 'yes'",
        "Conv2DTranspose(2, 3),strides=2,output_padding=2": (
            "ValueError: output_padding must be smaller than strides=(2, 2) on each axis; got output_padding=2"
        ),
        "Conv2DTranspose(2, 3),padding=full": "ValueError: padding must be one of 'valid', 'same'; got 'full'",
        "DepthwiseConv2D(3,),depth_multiplier=0": "ValueError: depth_multiplier must be an int >= 1; got 0",
        "input_channels": "ValueError: groups=4 must divide the input's 6 channels",
    }
    assert {key: errors[key] for key in expected} == expected
    assert errors["Conv2D(2, 3),boundary=mirrored"].startswith("ValueError: boundary must be one of 'fill'")
    assert errors["Conv2D(2, 3),activation=bogus"].startswith(
        "ValueError: activation must be None, a name or an object that keras.activations.get takes; got 'bogus'"
    )
    assert errors["Conv2D(2, 3),kernel_regularizer=bogus"].startswith(
        "ValueError: kernel_regularizer must be None, a name or an object that keras.regularizers.get takes"
    )


#: Keras' own tests of its 2-D layers (the files it ships), run with xcorr.keras's classes in place of
#: its own; left out: the LoRA tests (xcorr's layers have no LoRA), test_bad_init_args (Keras' own
#: wording of the errors, and it refuses strides and dilation above 1 together, which xcorr computes).
KERAS_TESTS = (
    "test_conv2d or test_depthwise_conv2d or test_conv_symbolic_invalid_configuration1 or test_conv_constraints"
    " or test_conv_raises_exception_on_zero_dims or test_output_padding_serialization1"
    " or test_shape_inference_static_unknown_shape or test_invalid_output_shape_raises"
)


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_keras_own_conv2d_tests_pass_on_xcorr_layers(backend, tmp_path):
    _require_keras()
    require_module(backend)
    spec = importlib.util.find_spec("keras")
    tests = Path(spec.origin).parent / "src" / "layers" / "convolutional"
    files = [tests / f"{name}_test.py" for name in ("conv", "conv_transpose", "depthwise_conv")]
    if not all(f.exists() for f in files):
        pytest.skip("this Keras release ships no tests of its convolution layers")
    (tmp_path / "pytest.ini").write_text("[pytest]\nmarkers =\n    requires_trainable_backend\n")
    env = {
        **os.environ, "KERAS_BACKEND": backend, "PYTHONWARNINGS": "ignore",
        "PYTHONPATH": os.pathsep.join([str(SCRIPT.parent), os.environ.get("PYTHONPATH", "")]),
    }
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-c", str(tmp_path / "pytest.ini"), "--rootdir", str(tmp_path),
         "-p", "no:cacheprovider", "-p", "keras_own_tests", "-q", "-k", KERAS_TESTS, *map(str, files)],
        env=env, capture_output=True, text=True, timeout=1200, check=False, cwd=tmp_path,
    )
    assert run.returncode == 0, run.stdout[-6000:]
    made = json.loads(run.stdout.split("XCORR_LAYERS_MADE ")[1].splitlines()[0])
    assert made["Conv2D"] >= 10 and made["Conv2DTranspose"] >= 10 and made["DepthwiseConv2D"] >= 5, made
    passed = int(run.stdout.rsplit(" passed", 1)[0].rsplit("\n", 1)[-1].split()[-1])
    assert passed >= 100, run.stdout[-2000:]


def test_receptive_field_reads_keras_pooling_layers():
    """Keras' pooling layers (``pool_size``, ``strides`` None or given, "valid" or lax's "SAME"): the
    output shapes are Keras' own, and the bounds are where jax's gradient of one output through the
    Keras model (positive weights and input, average pooling) is non-zero."""
    out = _keras_python(
        """
        import json
        import jax, jax.numpy as jnp, keras, numpy as np
        import xcorr
        L = keras.layers
        report = {"shapes": [], "support": []}
        shapes = [
            ([L.MaxPooling1D(3), L.Conv1D(1, 2, padding="causal"), L.AveragePooling1D(2, strides=1, padding="same")], (1, 17, 1)),
            ([L.Conv2D(2, 3, padding="same"), L.MaxPooling2D(2), L.AveragePooling2D(3, strides=2, padding="same")], (1, 14, 11, 1)),
            ([L.MaxPooling3D((2, 1, 3), strides=(1, 2, 2), padding="same"), L.Conv3D(1, 2)], (1, 7, 9, 10, 1)),
        ]
        for layers, shape in shapes:
            model = keras.Sequential([keras.Input(shape[1:]), *layers])
            rf = xcorr.receptive_field(layers, input_shape=shape)
            report["shapes"].append([list(rf.layers[-1].output_shape), list(model.output_shape[1:-1])])
        layers = [L.Conv2D(2, 3, padding="same"), L.AveragePooling2D(2), L.Conv2D(2, 2, dilation_rate=2),
                  L.AveragePooling2D(3, strides=2, padding="same"), L.Conv2D(1, 1)]
        model = keras.Sequential([keras.Input((19, 17, 1)), *layers])
        rng = np.random.default_rng(0)
        model.set_weights([rng.uniform(0.5, 1.5, w.shape).astype("float32") for w in model.get_weights()])
        x = jnp.asarray(rng.uniform(0.5, 1.5, (1, 19, 17, 1)).astype("float32"))
        rf = xcorr.receptive_field(layers, input_shape=x.shape)
        rows, cols = rf.layers[-1].output_shape
        for index in {(0, 0), (rows - 1, cols - 1), (rows // 2, cols // 2), (0, cols - 1)}:
            grad = jax.grad(lambda x: model(x)[(0, *index, 0)])(x)[0, :, :, 0]
            support = np.argwhere(np.asarray(grad) != 0)
            box = [[int(support[:, a].min()), int(support[:, a].max())] for a in (0, 1)]
            expected = [[max(lo, 0), min(hi, n - 1)] for (lo, hi), n in zip(rf.bounds(index), (19, 17))]
            full = bool(np.all(np.asarray(grad)[box[0][0]:box[0][1] + 1, box[1][0]:box[1][1] + 1] != 0))
            report["support"].append([list(index), box, expected, full])
        print(json.dumps(report))
        """,
        "jax",
    )
    report = json.loads(out)
    assert len(report["shapes"]) == 3
    for ours, theirs in report["shapes"]:
        assert ours == theirs
    assert report["support"]
    for index, box, expected, full in report["support"]:
        assert box == expected and full, index
