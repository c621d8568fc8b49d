"""``xcorr.keras.Conv2D``: Keras 3 models on the jax and torch backends, against ``keras.layers.Conv2D``.

Keras fixes its backend when it is first imported, so each backend runs
``tests/integration/keras_model.py`` in a fresh interpreter (float64, the
same initial weights for both layers); this file checks what it reports.
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
        assert result["jit_compile"], model
        assert result["xcorr_layers"] >= 2, model
        # training moved the weights, and both layers moved them to the same numbers
        assert result["weights_moved"] > 1e-2, (model, result)
        assert result["losses"][-1] < result["losses"][0], (model, result)
        assert result["loss_max_rel_diff"] <= 1e-6, (model, result)  # torch's history is float32
        assert result["weights_max_abs_diff"] <= 1e-10, (model, result)
        assert result["reload_max_abs_diff"] == 0.0, (model, result)
    errors = report["errors"]
    assert "filters must be an int >= 1; got 0" in errors["filters"]
    assert "padding must be one of 'valid', 'same', 'full'; got 'smae'" in errors["padding"]
    assert "boundary must be one of" in errors["boundary"] and "'mirrored'" in errors["boundary"]
    assert "groups must be an int >= 1 that divides filters=3; got 2" in errors["groups"]
    assert "kernel_size must be an int >= 1 or a pair of them; got (3, 0)" in errors["kernel_size"]
    assert "data_format must be 'channels_last' or 'channels_first'; got 'NHWC'" in errors["data_format"]
    assert "groups=4 must divide the input's 6 channels" in errors["input_channels"]


def test_import_xcorr_and_xcorr_keras_load_neither_keras_nor_flax():
    code = textwrap.dedent(
        """
        import sys
        import numpy as np
        import xcorr
        xcorr.corr2d(np.ones((4, 4)), np.ones((2, 2)))
        loaded = [m for m in ("keras", "flax", "xcorr.keras") if m in sys.modules]
        import xcorr.keras  # Keras itself comes with the first use of xcorr.keras.Conv2D
        loaded += [m for m in ("keras", "xcorr.backends.keras") if m in sys.modules]
        print(",".join(loaded))
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
