"""JAX adapter, imported by the registry (``xcorr._registry``) when a jax array first reaches xcorr.

By concern: ``autodiff`` (the differentiable primitive), ``ops`` (jitted kernels and library
calls), ``custom_calls`` (numba's kernels as XLA custom calls), ``layers`` (the pytree layers and
their flax serialization), ``tuning``, and ``adapter`` (``JaxAdapter``, which ties them).
"""

from .adapter import ADAPTER, JaxAdapter
from .layers import Conv2D, Conv2DTranspose
from .tuning import JaxTuning

__all__ = ["ADAPTER", "Conv2D", "Conv2DTranspose", "JaxAdapter", "JaxTuning"]
