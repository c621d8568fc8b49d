"""PyTorch adapter, imported by the registry (``xcorr._registry``) when a torch tensor first reaches xcorr.

By concern: ``autodiff`` (a call's route, the autograd Function), ``ops`` (the fast paths),
``functional`` (``F.conv2d``/``F.conv_transpose2d``/``F.pad``), ``layers`` (the ``nn.Module``
layers), ``tuning``, and ``adapter`` (``TorchAdapter``, which ties them).
"""

from .adapter import ADAPTER, TorchAdapter
from .layers import Conv2D, Conv2DTranspose
from .tuning import TorchTuning

__all__ = ["ADAPTER", "Conv2D", "Conv2DTranspose", "TorchAdapter", "TorchTuning"]
