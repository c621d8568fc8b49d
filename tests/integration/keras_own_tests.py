"""A pytest plugin that runs Keras' own tests of its 2-D convolution layers against xcorr.keras's.

Loaded by tests/test_keras.py as ``-p keras_own_tests`` in a fresh interpreter
that runs a subset of the test files Keras ships
(``keras/src/layers/convolutional/*_test.py``): on import it puts
``xcorr.keras``'s classes in place of ``keras.layers.Conv2D``,
``Conv2DTranspose`` and ``DepthwiseConv2D`` in the module those tests read
them from (``keras.src.layers``), before they are collected, and at the end
prints how many instances of each xcorr class the tests made, so a patch that
did not take cannot pass for one that did.
"""

import collections
import functools
import inspect
import json

import keras.src.layers

import xcorr.keras

made: collections.Counter = collections.Counter()


def _count(cls):
    # The class itself (registered for serialization) with a counting __init__, not a subclass.
    init = cls.__init__

    @functools.wraps(init)
    def counted(self, *args, **kwargs):
        if type(self) is cls:
            made[cls.__name__] += 1
        init(self, *args, **kwargs)

    counted.__signature__ = inspect.signature(init)  # what Keras' auto-config reads
    cls.__init__ = counted
    return cls


for _name in ("Conv2D", "Conv2DTranspose", "DepthwiseConv2D"):
    setattr(keras.src.layers, _name, _count(getattr(xcorr.keras, _name)))


def pytest_sessionfinish(session, exitstatus):
    print("\nXCORR_LAYERS_MADE " + json.dumps(dict(made)))
