"""Keras 3 layers computed by xcorr: ``xcorr.keras.Conv2D`` (``pip install 'xcorr[keras]'``).

Importing this module imports Keras, whose backend is chosen by the
``KERAS_BACKEND`` environment variable when Keras is first imported; xcorr
runs on the "jax" and "torch" backends (and "numpy", for inference). ``import
xcorr`` alone does not import this module.
"""

from .backends.keras import Conv2D

__all__ = ["Conv2D"]
