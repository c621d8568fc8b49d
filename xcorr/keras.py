"""Keras 3 layers computed by xcorr: ``xcorr.keras.Conv2D`` (``pip install 'xcorr[keras]'``).

``Conv2D`` is imported on first use (from ``xcorr.backends.keras``), and
with it Keras, whose backend the ``KERAS_BACKEND`` environment variable
chooses when Keras is first imported: xcorr runs on "jax" and "torch" (and
"numpy", for inference). Neither ``import xcorr`` nor ``import xcorr.keras``
imports Keras.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .backends.keras import Conv2D

__all__ = ["Conv2D"]


def __getattr__(name: str) -> Any:
    if name == "Conv2D":
        from .backends.keras import Conv2D

        return Conv2D
    msg = f"module {__name__!r} has no attribute {name!r}"
    raise AttributeError(msg)


def __dir__() -> list[str]:
    return sorted([*globals(), "Conv2D"])
