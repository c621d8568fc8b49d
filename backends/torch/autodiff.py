"""Correlation under torch autograd, forward AD, torch.func and the compilers' tracers: ``correlate``
routes each call, ``_Correlate`` is the autograd Function whose backward is the adapter's VJP."""

from __future__ import annotations

import torch
import torch.autograd.forward_ad as _forward_ad

from ... import toolkit
from ...toolkit import array_namespace, plan, result_dtype, tangent_options
from . import functional, ops


def correlate(adapter, xp, x, k, options, geometry):
    """Validated correlation of torch tensors (``TorchAdapter.correlate``)."""
    functional.refuse_torchscript()
    if tracing(x, k):
        return functional.traceable_correlate(xp, x, k, options, geometry)
    if x.dtype in ops.UNSIGNED_WIDE and k.dtype == x.dtype:
        return ops.unsigned(adapter.tuning, xp, x, k, options, geometry)
    if needs_autodiff(x, k):
        return differentiable_correlate(adapter, xp, x, k, options, geometry)
    return ops.forward(adapter.tuning, xp, x, k, options, geometry)


def differentiable_correlate(adapter, xp, x, k, options, geometry):
    """Correlation that records a backward pass for torch autograd.

    Floating and complex operands go through ``_Correlate``, whose backward
    is the core VJP (``toolkit.vjp``); it is itself built from differentiable
    correlations, so double backward (``gradgradcheck``) works too.
    """
    dtype = result_dtype(xp, x.dtype, k.dtype)
    if not dtype.is_floating_point and not dtype.is_complex:
        # No gradients for integers; under vmap only out-of-place code works.
        return toolkit.direct_correlate(xp, x, k, options, geometry)
    # Integer operands cannot carry gradients: cast them before the Function.
    return _Correlate.apply(x.to(dtype), k.to(dtype), options, geometry, adapter)


def tracing(*tensors) -> bool:
    """Whether ``torch.compile`` or ``torch.export`` is tracing this call.

    Tracers carry no values (no ``tolist``), no storage (no pointers for
    huge pages) and must not leave the calling thread, so traced calls take
    ``functional.traceable_correlate``: plain differentiable torch ops, whose
    gradients torch derives itself.
    """
    if torch.compiler.is_compiling():
        return True
    return any(type(t) is not torch.Tensor and type(t) is not torch.nn.Parameter for t in tensors)


def needs_autodiff(x, k) -> bool:
    """Whether a call must go through ``_Correlate``: autograd, forward AD or a torch.func transform."""
    if torch.is_grad_enabled() and (x.requires_grad or k.requires_grad):
        return True
    return ops.wrapped(x, k)


class _Correlate(torch.autograd.Function):
    """corr2d/conv2d as one autograd node (``setup_context`` form: torch.func ready)."""

    @staticmethod
    def forward(x, k, options, geometry, adapter):
        y = ops.forward(adapter.tuning, array_namespace(x, k), x, k, options, geometry)
        # Under forward AD (a dual level is open), a view (a crop of the FFT's
        # or F.conv2d's output) would need its tangent laid out as a view of
        # the same base: the output is copied out of it there, and only there.
        return y.clone() if _forward_ad._current_level >= 0 and y._is_view() else y

    @staticmethod
    def vmap(info, in_dims, x, k, options, geometry, adapter):
        # corr2d batches natively: move the vmapped dimension in front of the
        # batch dimensions and make one batched call.
        x_dim, k_dim = in_dims[0], in_dims[1]
        batch = len(geometry.batch)
        x = _leading(x, x_dim, batch)
        k = _leading(k, k_dim, batch)
        return _Correlate.apply(x, k, options, plan(x.shape, k.shape, options), adapter), 0

    @staticmethod
    def setup_context(ctx, inputs, output):
        x, k, options, geometry, adapter = inputs
        ctx.save_for_backward(x, k)
        ctx.save_for_forward(x, k)
        ctx.options = options
        ctx.geometry = geometry
        ctx.adapter = adapter

    @staticmethod
    def jvp(ctx, dx, dk, _options, _geometry, _adapter):
        # Bilinear: the tangent is corr(dx, k) + corr(x, dk), each a
        # differentiable correlation (so forward-over-reverse works too); a
        # non-zero fill value is a constant, so dx goes through the linear part.
        x, k = ctx.saved_tensors
        options, geometry, adapter = ctx.options, ctx.geometry, ctx.adapter
        t = None
        if dx is not None:
            t = _Correlate.apply(dx, k, tangent_options(options), geometry, adapter)
        if dk is not None:
            term = _Correlate.apply(x, dk, options, geometry, adapter)
            t = term if t is None else t + term
        return t

    @staticmethod
    def backward(ctx, g):
        x, k = ctx.saved_tensors
        xp = array_namespace(x, k, g)
        # torch's convention for complex numbers is the conjugate of the
        # transpose: conj(J^T conj(g)). For real tensors the conj calls are no-ops.
        conj = g.is_complex()
        if conj:
            g = g.conj()
        need_x, need_k = ctx.needs_input_grad[:2]
        gx, gk = toolkit.adapter_vjp(ctx.adapter, xp, x, k, g, ctx.options, ctx.geometry, need_x, need_k)
        if conj:
            gx = None if gx is None else gx.conj()
            gk = None if gk is None else gk.conj()
        return gx, gk, None, None, None


def fft_vjp_applies(x, k, g, options, geometry) -> bool:
    """Whether the FFT's VJP (both gradients from one spectrum of ``g``) takes a call: ``method="fft"``,
    real float32/float64 tensors of one dtype, stride 1 and a "fill" extension (or none reached); its
    products go in place, so not under a double backward nor torch.func transforms or forward-AD duals."""
    return not (
        options.method != "fft"
        or x.dtype not in (torch.float32, torch.float64)
        or not (k.dtype == g.dtype == x.dtype)
        or options.stride != (1, 1)
        or not (geometry.inside or options.boundary == "fill")
        or torch.is_grad_enabled()
        or ops.wrapped(x, k)
        or ops.wrapped(g, g)
    )


def _leading(a, dim, batch: int):
    """Move vmapped ``dim`` of ``a`` to the front, padding its batch dims to ``batch``."""
    if dim is None:
        return a
    a = a.movedim(dim, 0)
    missing = batch - (a.ndim - 3)
    return a.reshape(a.shape[0], *(1,) * missing, *a.shape[1:])
