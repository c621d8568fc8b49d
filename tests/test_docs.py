"""The docstring examples (written against array_api_strict) run and print what they say."""

import doctest
import importlib
import pkgutil

import pytest

import xcorr

MODULES = sorted(
    name
    for _, name, _ in pkgutil.walk_packages(xcorr.__path__, prefix="xcorr.")
    # xcorr.keras imports Keras, which fixes this process's Keras backend (TensorFlow by default);
    # tests/test_keras.py runs its examples in a subprocess.
    if name not in ("xcorr.__main__", "xcorr.keras")
)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {name}"
