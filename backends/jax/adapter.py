"""``JaxAdapter``: the jax adapter, tying the primitive, the native calls, the layers and the training step."""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp

from ...toolkit import Adapter, check_index, full_index, loss_and_gradient, result_dtype
from . import autodiff, layers, ops
from .layers import Conv2DTranspose
from .tuning import JaxTuning


@functools.cache
def _step(loss: str):
    """One jitted gradient-descent step of a layer on ``loss`` (compiled once per loss)."""

    def objective(layer, x, y):
        return loss_and_gradient(jnp, layer(x) - y, loss)[0]

    @jax.jit
    def step(layer, x, y, lr):
        value, grads = jax.value_and_grad(objective)(layer, x, y)
        new = jax.tree.map(lambda p, g: p - jnp.asarray(lr, dtype=p.dtype) * g, layer, grads)
        return new, value

    return step


def _few_per_group_on_cpu(groups: int, per_group: int, limit: int) -> bool:
    """Whether a grouped convolution of ``per_group`` input channels per group skips lax's grouped
    convolution, slow on XLA's CPU for groups of up to ``limit`` channels (``JaxTuning``)."""
    return groups > 1 and per_group <= limit and jax.default_backend() == "cpu"


class JaxAdapter(Adapter):
    """jax: a custom VJP, jitted kernels per configuration, numba's kernels as XLA custom calls."""

    name = "jax"
    array_module = "jax.numpy"
    tuning = JaxTuning()
    native = True
    eager = False
    native_axes = (1, 3)
    # lax.conv_general_dilated's options, passed through by corr2d_multi (correlate_multi_options).
    native_options = frozenset({"precision", "preferred_element_type"})
    autodiff = True
    # Arrays committed to different devices: jax refuses the jitted call itself.
    devices = False

    def correlate(self, xp, x, k, options, geometry):
        return autodiff.differentiable_correlate(self, xp, x, k, options, geometry)

    def prepare_correlate(self, xp, x, k, options, geometry):
        # The compiled kernel of this configuration, called directly: an
        # eager call is one jitted dispatch.
        if autodiff.differentiable(xp, x, k):
            return autodiff.differentiable_kernel(self, options, geometry)
        return ops.forward_kernel(self.tuning, options, geometry)

    def prepare_auto_fft(self, xp, x, k, options, geometry):
        # The FFT where both operands are finite, else shift-and-add: chosen inside the program
        # (lax.cond), so that it holds under jit too; a batched predicate (vmap) computes both.
        fft = self.prepare_correlate(xp, x, k, options, geometry)
        direct = self.prepare_correlate(xp, x, k, dataclasses.replace(options, method="direct"), geometry)
        return ops.finite_or_direct(fft, direct)

    def scatter_taps(self, xp, g, kc, options, geometry):
        # Unrolled for small kernels (static slices, which sharding partitions as halo exchanges), one
        # loop beyond (the program's size bounded, whatever the kernel).
        if geometry.rows.taps * geometry.cols.taps <= ops.UNROLLED_TAPS:
            return super().scatter_taps(xp, g, kc, options, geometry)
        return ops.scatter_taps(g, kc, options, geometry)

    def finite_or(self, xp, a, fast, careful):
        finite = jnp.all(jnp.isfinite(a))
        if isinstance(finite, jax.core.Tracer):  # under jit, vmap or grad: decided in the program
            return jax.lax.cond(finite, fast, careful)
        # A concrete array (eager): one branch traced and run, not both traced on every call.
        return fast() if bool(finite) else careful()

    def kernel_gradient(self, xp, x, k, g, options, geometry, method):
        if ops.numba_kernel_gradient_applies(self.tuning, x, k, g, geometry, method):
            return ops.numba_kernel_gradient(self.tuning, x, k, g, options, geometry)
        if method == "direct" and self.tuning.native_kernel_gradient and jax.default_backend() == "cpu":
            # The kernel gradient's h*w large dot products as one native
            # convolution (g as the kernel) instead of h*w XLA reductions;
            # CPU only: GPU reductions are fast, and GPU convolutions may
            # round float32 to TF32.
            method = "native"
        return super().kernel_gradient(xp, x, k, g, options, geometry, method)

    def kernel_gradient_sum(self, xp, xe, g, options, k_shape):
        if options.method == "native" and ops.kernel_gradient_sum_applies(xp, g, k_shape):
            return ops.kernel_gradient_sum(xp, xe, g, options, k_shape)
        return super().kernel_gradient_sum(xp, xe, g, options, k_shape)

    def correlate_multi(self, xp, x, w, options, geometry, groups):
        return self.correlate_multi_options(xp, x, w, options, geometry, groups, {})

    def correlate_multi_options(self, xp, x, w, options, geometry, groups, native):
        precision, preferred_element_type = native.get("precision"), native.get("preferred_element_type")
        if options.method == "auto" and not native and not self.auto_native(w, groups):
            return super().correlate_multi(xp, x, w, dataclasses.replace(options, method="direct"), geometry, groups)
        if options.method in ("auto", "native") and ops.real_floating(xp, x, w):
            return ops.correlate_multi(xp, x, w, options, geometry, groups, precision, preferred_element_type)
        if preferred_element_type is None:
            return super().correlate_multi(xp, x, w, options, geometry, groups)
        # The other methods accumulate in the preferred type (or the operands' where wider).
        preferred = xp.dtype(preferred_element_type)
        wide = xp.result_type(result_dtype(xp, x.dtype, w.dtype), preferred)
        y = super().correlate_multi(xp, xp.astype(x, wide), xp.astype(w, wide), options, geometry, groups)
        return xp.astype(y, preferred)

    def auto_native(self, w, groups):
        # Not for groups of few input channels on the CPU (JaxTuning.grouped_direct_channels).
        return not _few_per_group_on_cpu(groups, w.shape[1], self.tuning.grouped_direct_channels)

    def correlate_multi_channels_last(self, xp, x, w, options, geometry, groups):
        if options.method == "auto" and not self.auto_native(w, groups):
            direct = dataclasses.replace(options, method="direct")
            return super().correlate_multi_channels_last(xp, x, w, direct, geometry, groups)
        if options.method in ("auto", "native") and ops.channels_last_applies(xp, x, w, options, geometry):
            return ops.correlate_multi(xp, x, w, options, geometry, groups, channels_last=True)
        return super().correlate_multi_channels_last(xp, x, w, options, geometry, groups)

    def prepare_multi_native(self, xp, pads, stride, dilation, groups):
        def run(x, w, b):
            y = jax.lax.conv_general_dilated(
                x, w, window_strides=stride, padding=pads, rhs_dilation=dilation, feature_group_count=groups
            )
            return y if b is None else y + b.reshape((-1,) + (1,) * len(pads))

        return run

    def correlate_multi_transpose(self, xp, x, w, plan):
        if ops.real_floating(xp, x, w) and self.transpose_native(w, plan.groups):
            return ops.correlate_multi_transpose(xp, x, w, plan)
        return super().correlate_multi_transpose(xp, x, w, plan)

    def transpose_native(self, w, groups):
        """Whether ``conv_transpose2d`` of weight ``w`` ``(C_in, C_out // groups, h, w)`` in ``groups``
        groups takes lax's convolution: not for groups of few input channels on the CPU
        (``JaxTuning.grouped_transpose_direct_channels``)."""
        return not _few_per_group_on_cpu(groups, w.shape[0] // groups, self.tuning.grouped_transpose_direct_channels)

    def namespace(self):
        return jnp

    def check_layer_dtype(self, dtype):
        if dtype == "float64" and not jax.config.jax_enable_x64:
            msg = (
                'dtype="float64" on backend "jax" needs 64-bit mode: '
                'jax.config.update("jax_enable_x64", True) first'
            )
            raise ValueError(msg)

    def layer_class(self, name="Conv2D"):
        return getattr(layers, name)

    def transpose_layer_class(self):
        return Conv2DTranspose

    def fit(self, layer, x, y, lr, steps, loss, record):
        step = _step(loss)
        for _ in range(steps):
            layer, value = step(layer, x, y, lr)
            record(float(value))
        return layer

    def gradient(self, fn, x, index):
        y = fn(x)  # a concrete forward pass first, to check the index against the output's shape
        full = full_index(index, y.ndim)
        check_index(tuple(y.shape), full)
        return jax.grad(lambda x: fn(x)[full])(x), "jax.grad"

    def from_numpy(self, a, *, device=None):
        return jax.device_put(a, device)

    def device(self, kind):
        if kind == "gpu":
            try:
                return jax.devices("gpu")[0]
            except RuntimeError:
                msg = "jax sees no GPU device"
                raise LookupError(msg) from None
        return super().device(kind)

    def with_parameters(self, layer, params):
        return layer.replace(**params)


ADAPTER = JaxAdapter()
