"""``xcorr.Conv1D``, ``Conv3D``, ``Conv2D`` and their transposed layers as ``torch.nn.Module``s."""

from __future__ import annotations

import torch

from ... import toolkit
from ...toolkit import (
    conv_transpose1d,
    conv_transpose2d,
    conv_transpose3d,
    corr1d_multi,
    corr2d,
    corr2d_multi,
    corr3d_multi,
)  # fmt: skip
from .functional import TORCHSCRIPT, refuse_torchscript

# Whether autocast is on for any device: one cheap call on every forward, before asking for x's
# device type (torch's own modules leave autocast to its dispatcher).
_any_autocast = getattr(torch._C, "_is_any_autocast_enabled", lambda: True)


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
        convolution runs in the autocast dtype.

        Checked as ``nn.Conv2d`` checks them: a tensor (a TypeError otherwise),
        of the parameters' dtype after autocast's casts (a RuntimeError
        otherwise: no silent promotion of float64 or integer input).
        """
        weight, bias = self.weight, self.bias
        if not isinstance(x, torch.Tensor):
            raise TypeError(_not_a_tensor(self, x))
        if _any_autocast() and torch.is_autocast_enabled(x.device.type):
            dtype = torch.get_autocast_dtype(x.device.type)
            x, weight = _autocast(x, dtype), _autocast(weight, dtype)
            bias = None if bias is None else _autocast(bias, dtype)
        if x.dtype != weight.dtype:
            raise RuntimeError(_dtype_mismatch(self, x.dtype, weight.dtype, bias is not None))
        return x, weight, bias

    def __prepare_scriptable__(self):
        # torch.jit.script calls this before compiling forward's source.
        raise RuntimeError(TORCHSCRIPT)

    def extra_repr(self) -> str:
        return self.spec.describe(dtype=str(self.weight.dtype).removeprefix("torch."))


def _not_a_tensor(layer, x) -> str:
    kind = type(x)
    name = kind.__qualname__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"
    dtype = str(layer.weight.dtype)
    if kind.__module__ == "numpy" and hasattr(x, "dtype"):
        same = str(x.dtype) == dtype.removeprefix("torch.")
        how = "torch.from_numpy(x)" + ("" if same else f".to({dtype})")
    else:
        how = f"torch.as_tensor(x, dtype={dtype})"
    return (
        f"{type(layer).__name__} (backend 'torch', a torch.nn.Module) expected a torch.Tensor as input, "
        f"got {name}; convert with {how}"
    )


def _dtype_mismatch(layer, got, want, has_bias) -> str:
    """nn.Conv2d's message ("Input type (double) and bias type (float) should be the same"), with the fixes."""
    fixes = [f"the input with x.to({layer.weight.dtype})"]
    method = {torch.float64: "double", torch.float32: "float", torch.float16: "half", torch.bfloat16: "bfloat16"}
    if got in method:  # a dtype a layer can have
        fixes.append(f"the layer with layer.to({got}) (layer.{method[got]}())")
    kind = "bias" if has_bias else "weight"
    return (
        f"Input type ({str(got).removeprefix('torch.')}) and {kind} type ({str(want).removeprefix('torch.')}) "
        f"should be the same: convert {' or '.join(fixes)}"
    )


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


class Conv1D(toolkit.Conv1D, torch.nn.Module):
    """``xcorr.Conv1D`` as a ``torch.nn.Module``: ``weight`` and ``bias`` are parameters.

    Same arguments as ``xcorr.Conv1D``; ``weight`` has ``nn.Conv1d``'s layout
    ``(C_out, C_in // groups, l)``, so its ``state_dict`` loads directly.
    """

    __init__ = Conv2D.__init__
    _operands = Conv2D._operands
    __prepare_scriptable__ = Conv2D.__prepare_scriptable__
    extra_repr = Conv2D.extra_repr

    def forward(self, x):
        refuse_torchscript()
        x, weight, bias = self._operands(x)
        return corr1d_multi(x, weight, bias=bias, **self.spec.call_options)


class Conv3D(toolkit.Conv3D, torch.nn.Module):
    """``xcorr.Conv3D`` as a ``torch.nn.Module``: ``weight`` has ``nn.Conv3d``'s layout, so its
    ``state_dict`` loads directly."""

    __init__ = Conv2D.__init__
    _operands = Conv2D._operands
    __prepare_scriptable__ = Conv2D.__prepare_scriptable__
    extra_repr = Conv2D.extra_repr

    def forward(self, x):
        refuse_torchscript()
        x, weight, bias = self._operands(x)
        return corr3d_multi(x, weight, bias=bias, **self.spec.call_options)


class Conv1DTranspose(toolkit.Conv1DTranspose, torch.nn.Module):
    """``xcorr.Conv1DTranspose`` as a ``torch.nn.Module`` (``conv_transpose1d``): ``weight`` has
    ``nn.ConvTranspose1d``'s layout ``(C_in, C_out // groups, l)``, so its ``state_dict`` loads directly."""

    __init__ = Conv2D.__init__
    _operands = Conv2D._operands
    __prepare_scriptable__ = Conv2D.__prepare_scriptable__
    extra_repr = Conv2D.extra_repr

    def forward(self, x):
        refuse_torchscript()
        x, weight, bias = self._operands(x)
        return conv_transpose1d(x, weight, bias=bias, **self.spec.call_options)


class Conv3DTranspose(toolkit.Conv3DTranspose, torch.nn.Module):
    """``xcorr.Conv3DTranspose`` as a ``torch.nn.Module`` (``conv_transpose3d``): ``weight`` has
    ``nn.ConvTranspose3d``'s layout, so its ``state_dict`` loads directly."""

    __init__ = Conv2D.__init__
    _operands = Conv2D._operands
    __prepare_scriptable__ = Conv2D.__prepare_scriptable__
    extra_repr = Conv2D.extra_repr

    def forward(self, x):
        refuse_torchscript()
        x, weight, bias = self._operands(x)
        return conv_transpose3d(x, weight, bias=bias, **self.spec.call_options)


# torch.compile and torch.export put calls of xcorr's functions of arrays into their graphs
# whole instead of tracing the core's Python (argument checks, the caches of prepared calls,
# array-api-compat's lookups): the graph is then traced through them with tracer tensors,
# which ``autodiff.tracing`` sends down ``functional.traceable_correlate`` and
# ``functional.correlate_multi``.
for _function in toolkit.ARRAY_FUNCTIONS:
    torch.compiler.allow_in_graph(_function)
