"""``TorchAdapter``: the torch adapter, tying autograd, the fast paths, the layers and the training loop."""

from __future__ import annotations

import math

import torch

from ... import toolkit
from ...toolkit import Adapter, array_namespace, check_index, full_index, loss_and_gradient, result_dtype
from . import autodiff, functional, layers, ops
from .layers import Conv2DTranspose
from .tuning import TorchTuning


class TorchAdapter(Adapter):
    """torch: autograd Functions, banded in-place shift-and-add, ``F.conv2d`` for channels."""

    name = "torch"
    array_module = "torch"
    tuning = TorchTuning()
    native = True
    autodiff = True
    native_axes = (1, 3)

    def correlate(self, xp, x, k, options, geometry):
        return autodiff.correlate(self, xp, x, k, options, geometry)

    def prepare_correlate(self, xp, x, k, options, geometry):
        dtype = result_dtype(xp, x.dtype, k.dtype)
        if (
            options.method == "direct"
            and k.ndim == 2
            and geometry.inside
            and (dtype.is_floating_point or dtype.is_complex)
            and math.prod(geometry.out_shape) <= self.tuning.small_band  # one band ...
            and math.prod(geometry.out_shape) < self.tuning.pooled_elements  # ... on the calling thread
        ):
            return self._small_direct(xp, dtype, options, geometry)
        if options.method == "native" and k.ndim == 2 and geometry.inside and ops.native_applies(xp, x, k):
            compact = toolkit.compact_axis(geometry.rows) or toolkit.compact_axis(geometry.cols)
            if not (compact or ops.has_few_outputs(self.tuning, geometry)):
                return self._native_planes(xp, dtype, options, geometry)
        return super().prepare_correlate(xp, x, k, options, geometry)

    def _native_planes(self, xp, dtype, options, geometry):
        """``ops.native_forward`` of one signature whose windows all lie inside ``x``: ``F.conv2d`` of its
        planes, the keywords placed once; tensors that autograd or a torch.func transform must see go
        through ``correlate``. Such windows start at ``x``'s first row and column (``lo`` is 0), and
        ``F.conv2d``'s valid outputs of the whole planes are the call's. ``F.conv2d`` is called here
        rather than through ``functional.conv_planes``, whose padding, crop and broadcast (general
        for every caller) cost a small call more than its checks here do."""
        rows, cols = geometry.rows, geometry.cols
        given = {"stride": (rows.step, cols.step), "dilation": (rows.dilation, cols.dilation)}
        keywords = {name: value for name, value in given.items() if value != (1, 1)}  # torch's defaults not passed

        def run(x, k):
            if autodiff.tracing(x, k) or torch.jit.is_tracing() or autodiff.needs_autodiff(x, k):
                return self.correlate(xp, x, k, options, geometry)
            if x.dtype != dtype:
                x = x.to(dtype)
            if k.dtype != dtype:
                k = k.to(dtype)
            planes = x.reshape(-1, 1, *x.shape[-2:])
            y = torch.nn.functional.conv2d(planes, (k.flip((0, 1)) if options.convolve else k)[None, None], **keywords)
            return y.reshape(*x.shape[:-2], rows.count, cols.count)

        return run

    def _small_direct(self, xp, dtype, options, geometry):
        """``ops.direct_forward`` of one small signature (one band, every window inside ``x``), its tap
        windows placed once; tensors that autograd or a torch.func transform must see, or that are
        not on the CPU, go through ``correlate``. Windows inside ``x`` start at its first row and
        column (``lo`` is 0): each tap's window is a slice of ``x`` itself."""
        rows, cols = geometry.rows, geometry.cols
        h, w = rows.taps, cols.taps
        taps = [
            ((h - 1 - a, w - 1 - b) if options.convolve else (a, b), (..., toolkit.window(rows, a), toolkit.window(cols, b)))
            for a in range(h)
            for b in range(w)
        ]
        (first, first_window), rest = taps[0], taps[1:]
        # Each torch op costs more than a small one's arithmetic, so one strided view of every
        # window, copied tap-major (an im2col that stays in cache: at most gathered_bytes) and
        # reduced by one vector-matrix product, beats a slice and an add per tap.
        gathered = (
            dtype.is_floating_point
            and h * w >= self.tuning.gathered_min_taps
            and math.prod(geometry.out_shape) * h * w * dtype.itemsize <= self.tuning.gathered_bytes
        )

        def run(x, k):
            if autodiff.tracing(x, k) or torch.jit.is_tracing() or autodiff.needs_autodiff(x, k) or x.device.type != "cpu":
                return self.correlate(xp, x, k, options, geometry)
            if x.dtype != dtype:
                x = x.to(dtype)
            if k.dtype != dtype:
                k = k.to(dtype)
            if gathered:
                *batch, row, col = x.stride()
                windows = x.as_strided(
                    (h, w, *x.shape[:-2], rows.count, cols.count),
                    (row * rows.dilation, col * cols.dilation, *batch, row * rows.step, col * cols.step),
                    x.storage_offset(),
                )
                weights = k.reshape(-1)
                out = (weights.flip(0) if options.convolve else weights) @ windows.reshape(h * w, -1)
                return out.reshape(*x.shape[:-2], rows.count, cols.count)
            weights = k.tolist()
            out = torch.mul(x[first_window], weights[first[0]][first[1]])
            for (a, b), window in rest:
                out.add_(x[window], alpha=weights[a][b])
            return out

        return run

    def same_device(self, x, k):
        return x.device == k.device

    def values_visible(self, *arrays):
        # Tracers (torch.compile, torch.export) and torch.func's (vmap, grad) tensors have no values to read.
        functorch = torch._C._functorch.is_functorch_wrapped_tensor
        return not (autodiff.tracing(*arrays) or any(functorch(a) for a in arrays))

    def vjp(self, xp, x, k, g, options, geometry, need_x, need_k):
        # The FFT method takes both gradients from one spectrum of g.
        if autodiff.fft_vjp_applies(x, k, g, options, geometry):
            return toolkit.fft_vjp(xp, x, k, g, options, geometry, need_x, need_k)
        both = ops.numba_vjp(self, x, k, g, options, geometry, need_x, need_k)
        if both is not None:
            return both
        return super().vjp(xp, x, k, g, options, geometry, need_x, need_k)

    def kernel_gradient(self, xp, x, k, g, options, geometry, method):
        if ops.kernel_gradient_applies(self.tuning, x, k, g, geometry, method):
            return ops.kernel_gradient(self.tuning, xp, x, k, g, options, geometry)
        # The kernel gradient's h*w large dot products are a correlation with
        # g as the kernel: native_forward (few_outputs' banded dot products).
        method = "native" if method == "direct" else method
        return super().kernel_gradient(xp, x, k, g, options, geometry, method)

    def correlate_multi(self, xp, x, w, options, geometry, groups):
        if options.method in ("auto", "native"):
            functional.refuse_torchscript()
            if functional.library_applies(xp, x, w):
                return functional.correlate_multi(xp, x, w, options, geometry, groups)
        return super().correlate_multi(xp, x, w, options, geometry, groups)

    def correlate_multi_bias(self, xp, x, w, b, options, geometry, groups):
        if options.method in ("auto", "native"):
            functional.refuse_torchscript()
            if functional.library_applies(xp, x, w):
                return functional.correlate_multi(xp, x, w, options, geometry, groups, bias=b)
        return super().correlate_multi_bias(xp, x, w, b, options, geometry, groups)

    def prepare_multi_native(self, xp, pads, stride, dilation, groups):
        return functional.prepare_multi_native(pads, stride, dilation, groups)

    def correlate_multi_transpose(self, xp, x, w, plan):
        functional.refuse_torchscript()
        if functional.library_applies(xp, x, w):
            return functional.correlate_multi_transpose(xp, x, w, plan)
        return super().correlate_multi_transpose(xp, x, w, plan)

    def correlate_multi_transpose_bias(self, xp, x, w, b, plan):
        functional.refuse_torchscript()
        # A bias goes into F.conv_transpose2d where the padding is torch's.
        if functional.library_applies(xp, x, w) and plan.symmetric_padding is not None:
            return functional.correlate_multi_transpose(xp, x, w, plan, bias=b)
        return super().correlate_multi_transpose_bias(xp, x, w, b, plan)

    def layer_class(self, name="Conv2D"):
        return getattr(layers, name)

    def transpose_layer_class(self):
        return Conv2DTranspose

    def fit(self, layer, x, y, lr, steps, loss, record):
        params = [p for p in (layer.weight, layer.bias) if p is not None]
        xp = array_namespace(x)
        for _ in range(steps):
            for p in params:
                p.grad = None
            value, _ = loss_and_gradient(xp, layer(x) - y, loss)
            value.backward()
            with torch.no_grad():
                for p in params:
                    p.sub_(p.grad, alpha=lr)
            record(value.item())
        for p in params:
            p.grad = None
        return layer

    def gradient(self, fn, x, index):
        x = x.detach().clone().requires_grad_(True)
        with torch.enable_grad():
            y = fn(x)
            full = full_index(index, y.ndim)
            check_index(tuple(y.shape), full)
            (gradient,) = torch.autograd.grad(y[full], x, allow_unused=True)
        return (torch.zeros_like(x) if gradient is None else gradient), "torch.autograd"

    def to_numpy(self, a):
        return a.detach().cpu().numpy()

    def from_numpy(self, a, *, device=None):
        return torch.asarray(a.copy(), device=device)

    def device(self, kind):
        if kind == "gpu":
            if not torch.cuda.is_available():
                msg = "torch sees no CUDA device"
                raise LookupError(msg)
            return torch.device("cuda")
        return super().device(kind)

    def with_parameters(self, layer, params):
        if params:
            layer = layer.to(next(iter(params.values())).device)
        with torch.no_grad():
            for name, value in params.items():
                getattr(layer, name).copy_(value)
        return layer


ADAPTER = TorchAdapter()
