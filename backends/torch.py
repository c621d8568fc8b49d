"""PyTorch adapter: autograd integration and fast forward kernels.

Imported lazily by ``xcorr._dispatch`` the first time a torch tensor reaches
xcorr; ``import xcorr`` never imports torch.
"""

from __future__ import annotations

import torch

from .. import _generic


def correlate(xp, x, k, options, geometry):
    """Validated correlation of torch tensors (the dispatch hook)."""
    if torch.is_grad_enabled() and (x.requires_grad or k.requires_grad):
        return differentiable_correlate(xp, x, k, options, geometry)
    return forward(xp, x, k, options, geometry)


# --- autodiff ------------------------------------------------------------


def differentiable_correlate(xp, x, k, options, geometry):
    """Correlation that records a backward pass for torch autograd."""
    return _generic.correlate(xp, x, k, options, geometry)


# --- fast forward kernels --------------------------------------------------


def forward(xp, x, k, options, geometry):
    """Fastest forward computation for torch tensors (no autograd recorded)."""
    return _generic.correlate(xp, x, k, options, geometry)
