"""The hyper-parameters of the 1-D and 3-D transposed layers (``Conv1DTranspose``, ``Conv3DTranspose``).

As ``TransposeSpec`` is for ``Conv2DTranspose``: frozen and hashable (jax
keeps them static), with lax's "SAME" / "VALID" resolved to numbers once the
kernel is known, the forward pass ``conv_transpose1d`` / ``conv_transpose3d``
(plus bias) and its gradients by their VJPs. The parameters have
``torch.nn.ConvTranspose1d`` / ``ConvTranspose3d``'s layout ``(C_in, C_out //
groups, *kernel_size)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ._layer_spec import NdLayerSpec, parse_layer_arguments
from ._one_d import Single, _single
from ._one_d_transpose import TransposePadding1D, conv_transpose1d, conv_transpose1d_vjp
from ._one_d_transpose import _check_multi as _check_multi_1d
from ._padding import transpose_pads
from ._three_d import Triple
from ._three_d_checks import _triple
from ._three_d_transpose import TransposePadding3D, conv_transpose3d, conv_transpose3d_vjp
from ._three_d_transpose import _check_multi as _check_multi_3d
from ._typing import DataFormat, Dtype

__all__ = ["Conv1DTransposeSpec", "Conv3DTransposeSpec", "NdTransposeSpec"]


@dataclass(frozen=True)
class NdTransposeSpec(NdLayerSpec):
    """What the 1-D and 3-D transposed specs share: their fields, parameters, forward pass and gradients.

    ``stride``, ``dilation`` and ``output_padding`` are an int (1-D) or three
    (3-D); ``padding`` is the crop ``(before, after)`` (1-D) or one such pair
    per axis (3-D), numbers in both.
    """

    kernel_size: tuple[int, ...]
    in_channels: int
    out_channels: int
    stride: Any
    padding: Any
    output_padding: Any
    dilation: Any
    groups: int
    bias: bool
    dtype: str
    backend: str
    data_format: str = "channels_first"
    call_options: dict[str, Any] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # The keywords of conv_transpose1d / conv_transpose3d, built once (forward runs on every step).
        options: dict[str, Any] = dict(
            stride=self.stride, padding=self.padding, output_padding=self.output_padding,
            dilation=self.dilation, groups=self.groups, data_format=self.data_format,
        )  # fmt: skip
        object.__setattr__(self, "call_options", options)

    @property
    def weight_shape(self) -> tuple[int, ...]:
        """torch's ``ConvTranspose1d`` / ``ConvTranspose3d`` layout: ``(C_in, C_out // groups, *kernel_size)``."""
        return (self.in_channels, self.out_channels // self.groups, *self.kernel_size)

    def _axes(self) -> tuple[tuple, tuple, tuple, tuple]:
        """``(strides, dilations, pads, output_paddings)``, one entry per spatial axis."""
        if self.spatial == 1:
            return (self.stride,), (self.dilation,), (self.padding,), (self.output_padding,)
        return self.stride, self.dilation, self.padding, self.output_padding

    # -- the computation ----------------------------------------------------
    def output_shape(self, x, weight) -> tuple[int, ...]:
        """Shape of ``apply(weight, bias, x)``, from the shapes alone (checks them too)."""
        check = _check_multi_1d if self.spatial == 1 else _check_multi_3d
        o = self.call_options
        check(x, weight, None, None, o["stride"], o["padding"], o["output_padding"], o["dilation"], self.groups,
              self.data_format)  # fmt: skip
        n = self.spatial
        sizes = x.shape[-n - 1 : -1] if self.channels_last else x.shape[-n:]
        counts = tuple(
            (size - 1) * s + d * (k - 1) + 1 - p[0] - p[1] + op
            for size, k, s, d, p, op in zip(sizes, self.kernel_size, *self._axes())
        )
        if self.channels_last:
            return (*x.shape[: -n - 1], *counts, self.out_channels)
        return (*x.shape[: -n - 1], self.out_channels, *counts)

    def describe(self, dtype: str | None = None) -> str:
        one = self.spatial == 1
        parts = [f"{self.kernel_size[0] if one else self.kernel_size}"]
        parts.append(f"in_channels={self.in_channels}, out_channels={self.out_channels}")
        strides, dilations, pads, ops = self._axes()
        if any(s != 1 for s in strides):
            parts.append(f"stride={self.stride}")
        if any(p != (0, 0) for p in pads):
            parts.append(f"padding={self.padding}")
        if any(ops):
            parts.append(f"output_padding={self.output_padding}")
        if any(d != 1 for d in dilations):
            parts.append(f"dilation={self.dilation}")
        if self.groups != 1:
            parts.append(f"groups={self.groups}")
        if not self.bias:
            parts.append("bias=False")
        if self.channels_last:
            parts.append('data_format="channels_last"')
        parts.append(f"backend={self.backend!r}, dtype={dtype or self.dtype!r}")
        return ", ".join(parts)


class Conv1DTransposeSpec(NdTransposeSpec):
    """The validated hyper-parameters of one ``Conv1DTranspose`` (hashable: jax-static)."""

    kernel_size: tuple[int]
    stride: int
    padding: tuple[int, int]
    output_padding: int
    dilation: int

    function = staticmethod(conv_transpose1d)
    function_vjp = staticmethod(conv_transpose1d_vjp)

    @classmethod
    def parse(
        cls,
        kernel_size: Single,
        *,
        in_channels: int | None = None,
        out_channels: int | None = None,
        stride: Single = 1,
        padding: TransposePadding1D = 0,
        output_padding: Single = 0,
        dilation: Single = 1,
        groups: int = 1,
        bias: bool = True,
        backend: str | None = None,
        dtype: Dtype | None = None,
        data_format: DataFormat = "channels_first",
    ) -> Conv1DTransposeSpec:
        taps = _single("kernel_size", kernel_size)
        s, d = _single("stride", stride), _single("dilation", dilation)
        (pads,), (op,) = transpose_pads(padding, output_padding, (taps,), (s,), (d,))
        in_channels, out_channels, groups, backend, dtype = parse_layer_arguments(
            "Conv1DTranspose", in_channels, out_channels, groups, bias, backend, dtype, data_format
        )
        return cls(
            (taps,), in_channels, out_channels, s, pads, op, d, groups, bias, dtype, backend, data_format
        )


class Conv3DTransposeSpec(NdTransposeSpec):
    """The validated hyper-parameters of one ``Conv3DTranspose`` (hashable: jax-static)."""

    kernel_size: tuple[int, int, int]
    stride: tuple[int, int, int]
    #: ``((front, back), (top, bottom), (left, right))``.
    padding: tuple[tuple[int, int], ...]
    output_padding: tuple[int, int, int]
    dilation: tuple[int, int, int]

    function = staticmethod(conv_transpose3d)
    function_vjp = staticmethod(conv_transpose3d_vjp)

    @classmethod
    def parse(
        cls,
        kernel_size: Triple,
        *,
        in_channels: int | None = None,
        out_channels: int | None = None,
        stride: Triple = 1,
        padding: TransposePadding3D = 0,
        output_padding: Triple = 0,
        dilation: Triple = 1,
        groups: int = 1,
        bias: bool = True,
        backend: str | None = None,
        dtype: Dtype | None = None,
        data_format: DataFormat = "channels_first",
    ) -> Conv3DTransposeSpec:
        kernel = _triple("kernel_size", kernel_size)
        strides, dilations = _triple("stride", stride), _triple("dilation", dilation)
        pads, ops = transpose_pads(padding, output_padding, kernel, strides, dilations)
        in_channels, out_channels, groups, backend, dtype = parse_layer_arguments(
            "Conv3DTranspose", in_channels, out_channels, groups, bias, backend, dtype, data_format
        )
        return cls(
            kernel, in_channels, out_channels, strides, pads, ops, dilations, groups, bias, dtype, backend,
            data_format,
        )
