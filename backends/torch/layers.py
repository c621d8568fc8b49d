"""``xcorr.Conv2D`` and ``xcorr.Conv2DTranspose`` as ``torch.nn.Module``s."""

from __future__ import annotations

import torch

from ... import toolkit
from ...toolkit import conv2d, conv_transpose2d, corr2d, corr2d_multi, corr2d_transpose
from .functional import TORCHSCRIPT, refuse_torchscript


class Conv2D(toolkit.Conv2D, torch.nn.Module):
    """``xcorr.Conv2D`` as a ``torch.nn.Module``: ``weight`` and ``bias`` are parameters.

    Same arguments as ``xcorr.Conv2D`` (``backend`` may be omitted or
    "torch"); works with ``torch.optim``, ``state_dict`` and ``.to(...)``.
    """

    def __init__(self, kernel_size, /, **kwargs):
        torch.nn.Module.__init__(self)
        spec, params = self._configure("torch", kernel_size, kwargs)
        self.spec = spec
        self.weight = torch.nn.Parameter(params["weight"])
        if params["bias"] is None:
            self.register_parameter("bias", None)
        else:
            self.bias = torch.nn.Parameter(params["bias"])

    def forward(self, x):
        refuse_torchscript()
        # Through the public functions, which torch.compile and torch.export
        # take whole into their graphs (see the end of this module).
        spec = self.spec
        x, weight, bias = self._operands(x)
        if spec.channels:
            return corr2d_multi(x, weight, bias=bias, **spec.call_options)
        y = corr2d(x, weight, **spec.call_options)
        return y if bias is None else y + bias

    def _operands(self, x):
        """``(x, weight, bias)``, cast as ``nn.Conv2d``'s are under ``torch.autocast``: a
        convolution runs in the autocast dtype."""
        weight, bias = self.weight, self.bias
        if not isinstance(x, torch.Tensor):
            msg = f"x must be a torch.Tensor (the layer's parameters are torch tensors); got {type(x).__name__}"
            raise TypeError(msg)
        if torch.is_autocast_enabled(x.device.type):
            dtype = torch.get_autocast_dtype(x.device.type)
            x, weight = _autocast(x, dtype), _autocast(weight, dtype)
            bias = None if bias is None else _autocast(bias, dtype)
        return x, weight, bias

    def __prepare_scriptable__(self):
        # torch.jit.script calls this before compiling forward's source.
        raise RuntimeError(TORCHSCRIPT)

    def extra_repr(self) -> str:
        return self.spec.describe(dtype=str(self.weight.dtype).removeprefix("torch."))


def _autocast(t, dtype):
    """``t`` as autocast casts an argument of a lower-precision op: floating tensors but float64."""
    return t.to(dtype) if t.is_floating_point() and t.dtype != torch.float64 else t


class Conv2DTranspose(toolkit.Conv2DTranspose, Conv2D):
    """``xcorr.Conv2DTranspose`` as a ``torch.nn.Module`` (``F.conv_transpose2d``).

    Same arguments as ``xcorr.Conv2DTranspose``; ``weight`` has
    ``nn.ConvTranspose2d``'s layout, so its ``state_dict`` loads directly.
    """

    def forward(self, x):
        refuse_torchscript()
        spec = self.spec
        x, weight, bias = self._operands(x)
        return conv_transpose2d(
            x, weight, bias=bias, stride=spec.options.stride, padding=spec.padding,
            output_padding=spec.output_padding, dilation=spec.options.dilation, groups=spec.groups,
            data_format=spec.data_format,
        )


# torch.compile and torch.export put calls of these functions into their
# graphs whole instead of tracing the core's Python (argument checks, the
# caches of prepared calls, array-api-compat's lookups): the graph is then
# traced through them with tracer tensors, which ``autodiff.tracing`` sends
# down ``functional.traceable_correlate`` and ``functional.correlate_multi``.
for _function in (corr2d, conv2d, corr2d_multi, conv_transpose2d, corr2d_transpose):
    torch.compiler.allow_in_graph(_function)
