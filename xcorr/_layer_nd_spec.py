"""The hyper-parameters of the 1-D and 3-D layers (``Conv1D``, ``Conv3D``).

As ``LayerSpec`` is for ``Conv2D``: frozen and hashable (jax keeps them
static), the forward pass ``corr1d_multi`` / ``corr3d_multi`` (plus bias) and
the parameters' gradients by their VJPs. The parameters have
``torch.nn.Conv1d`` / ``Conv3d``'s layout ``(C_out, C_in // groups,
*kernel_size)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ._call import parse_options
from ._layer_spec import NdLayerSpec, parse_layer_arguments
from ._one_d import Padding1D, Single, _check_multi, _padding, _single, corr1d_multi, corr1d_multi_vjp
from ._padding import lax_pads
from ._three_d import Padding3D, Triple, corr3d_multi
from ._three_d_checks import _padding as _padding_3d
from ._three_d_checks import _plans, _triple, check_multi
from ._three_d_vjp import corr3d_multi_vjp
from ._typing import Boundary, DataFormat, Dtype, Method, Mode

__all__ = ["Conv1DSpec", "Conv3DSpec", "NdSpec"]


@dataclass(frozen=True)
class NdSpec(NdLayerSpec):
    """What the 1-D and 3-D specs share: their fields, parameters, forward pass and gradients.

    ``stride`` and ``dilation`` are an int (1-D) or three (3-D); ``padding`` is
    None, "SAME", "SAME_LOWER", or the padding ``(before, after)`` (1-D) or one
    such pair per axis (3-D).
    """

    kernel_size: tuple[int, ...]
    in_channels: int
    out_channels: int
    mode: str
    boundary: str
    stride: Any
    dilation: Any
    padding: Any
    method: str
    groups: int
    bias: bool
    dtype: str
    backend: str
    data_format: str = "channels_first"
    call_options: dict[str, Any] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # The keywords of corr1d_multi / corr3d_multi, built once (forward runs on every step).
        options: dict[str, Any] = dict(
            mode=self.mode, boundary=self.boundary, stride=self.stride, dilation=self.dilation,
            method=self.method, padding=self.padding, groups=self.groups, data_format=self.data_format,
        )  # fmt: skip
        object.__setattr__(self, "call_options", options)

    @property
    def weight_shape(self) -> tuple[int, ...]:
        """torch's ``Conv1d`` / ``Conv3d`` layout: ``(C_out, C_in // groups, *kernel_size)``."""
        return (self.out_channels, self.in_channels // self.groups, *self.kernel_size)

    def describe(self, dtype: str | None = None) -> str:
        one = self.spatial == 1
        unit = 1 if one else (1,) * self.spatial
        parts = [f"{self.kernel_size[0] if one else self.kernel_size}"]
        parts.append(f"in_channels={self.in_channels}, out_channels={self.out_channels}")
        if self.padding is None:
            parts.append(f"mode={self.mode!r}, boundary={self.boundary!r}")
        else:
            parts.append(f"padding={self.padding!r}, boundary={self.boundary!r}")
        if self.stride != unit:
            parts.append(f"stride={self.stride}")
        if self.dilation != unit:
            parts.append(f"dilation={self.dilation}")
        if self.method != "auto":
            parts.append(f"method={self.method!r}")
        if self.groups != 1:
            parts.append(f"groups={self.groups}")
        if not self.bias:
            parts.append("bias=False")
        if self.channels_last:
            parts.append('data_format="channels_last"')
        parts.append(f"backend={self.backend!r}, dtype={dtype or self.dtype!r}")
        return ", ".join(parts)


class Conv1DSpec(NdSpec):
    """The validated hyper-parameters of one ``Conv1D`` (hashable: jax-static)."""

    kernel_size: tuple[int]
    stride: int
    dilation: int
    #: None, "SAME", "SAME_LOWER" or ``(left, right)`` ("causal" is ``(d*(l-1), 0)``).
    padding: str | tuple[int, int] | None

    function = staticmethod(corr1d_multi)
    function_vjp = staticmethod(corr1d_multi_vjp)

    @classmethod
    def parse(
        cls,
        kernel_size: Single,
        *,
        in_channels: int | None = None,
        out_channels: int | None = None,
        mode: Mode = "valid",
        boundary: Boundary = "fill",
        stride: Single = 1,
        dilation: Single = 1,
        groups: int = 1,
        bias: bool = True,
        backend: str | None = None,
        dtype: Dtype | None = None,
        method: Method = "auto",
        padding: Padding1D = None,
        data_format: DataFormat = "channels_first",
    ) -> Conv1DSpec:
        taps = _single("kernel_size", kernel_size)
        s, d = _single("stride", stride), _single("dilation", dilation)
        options = parse_options({"mode": mode, "boundary": boundary, "method": method})
        if isinstance(padding, str) and padding.lower() == "causal":
            if options.mode != "valid":
                msg = f'padding="causal" and mode={mode!r} conflict: causal padding needs mode="valid" (the default)'
                raise ValueError(msg)
            pads: str | tuple[int, int] | None = (d * (taps - 1), 0)
        else:
            try:
                pads = _padding(padding, options.mode)[0]
            except (TypeError, ValueError) as err:
                if "conflict" in str(err):
                    raise
                msg = str(err).replace("(any case)", 'or "causal" (any case)')
                raise type(err)(msg) from None
        in_channels, out_channels, groups, backend, dtype = parse_layer_arguments(
            "Conv1D", in_channels, out_channels, groups, bias, backend, dtype, data_format
        )
        return cls(
            (taps,), in_channels, out_channels, options.mode, options.boundary, s, d, pads, options.method,
            groups, bias, dtype, backend, data_format,
        )  # fmt: skip

    def output_shape(self, x, weight) -> tuple[int, ...]:
        """Shape of ``apply(weight, bias, x)``, from the shapes alone (checks them too)."""
        _check_multi(x, weight, None, None, self.groups, self.data_format, {**self.call_options, "fillvalue": 0})
        length = x.shape[-2 if self.channels_last else -1]
        span = self.dilation * (self.kernel_size[0] - 1) + 1
        pads = self.padding
        if isinstance(pads, str):
            pads = lax_pads(pads, length, span, self.stride)
        if pads is not None:
            dense = length + pads[0] + pads[1] - span + 1
        else:
            dense = {"valid": length - span + 1, "same": length, "full": length + span - 1}[self.mode]
        count = (dense - 1) // self.stride + 1
        if self.channels_last:
            return (*x.shape[:-2], count, self.out_channels)
        return (*x.shape[:-2], self.out_channels, count)


class Conv3DSpec(NdSpec):
    """The validated hyper-parameters of one ``Conv3D`` (hashable: jax-static)."""

    kernel_size: tuple[int, int, int]
    stride: tuple[int, int, int]
    dilation: tuple[int, int, int]
    #: None, "SAME", "SAME_LOWER" or ``((front, back), (top, bottom), (left, right))``.
    padding: str | tuple[tuple[int, int], ...] | None

    function = staticmethod(corr3d_multi)
    function_vjp = staticmethod(corr3d_multi_vjp)

    @classmethod
    def parse(
        cls,
        kernel_size: Triple,
        *,
        in_channels: int | None = None,
        out_channels: int | None = None,
        mode: Mode = "valid",
        boundary: Boundary = "fill",
        stride: Triple = 1,
        dilation: Triple = 1,
        groups: int = 1,
        bias: bool = True,
        backend: str | None = None,
        dtype: Dtype | None = None,
        method: Method = "auto",
        padding: Padding3D = None,
        data_format: DataFormat = "channels_first",
    ) -> Conv3DSpec:
        kernel = _triple("kernel_size", kernel_size)
        strides, dilations = _triple("stride", stride), _triple("dilation", dilation)
        options = parse_options({"mode": mode, "boundary": boundary, "method": method})
        pads: str | tuple[tuple[int, int], ...] | None = None
        if padding is not None:
            spans = [d * (t - 1) + 1 for t, d in zip(kernel, dilations)]
            parsed = _padding_3d(padding, options.mode, (1, 1, 1), spans, strides)  # checks it
            if isinstance(padding, str):
                name = padding.upper()
                pads = None if name == "VALID" else name
            else:
                pads = parsed
        in_channels, out_channels, groups, backend, dtype = parse_layer_arguments(
            "Conv3D", in_channels, out_channels, groups, bias, backend, dtype, data_format
        )
        return cls(
            kernel, in_channels, out_channels, options.mode, options.boundary, strides, dilations, pads,
            options.method, groups, bias, dtype, backend, data_format,
        )  # fmt: skip

    def output_shape(self, x, weight) -> tuple[int, ...]:
        """Shape of ``apply(weight, bias, x)``, from the shapes alone (checks them too)."""
        given = {**self.call_options, "fillvalue": 0}
        check_multi(x, weight, None, None, self.groups, self.data_format, given)
        sizes = tuple(x.shape[-4:-1] if self.channels_last else x.shape[-3:])
        _, _, plans = _plans(x.shape, weight.shape, sizes, (*x.shape[:-4], weight.shape[0]), given, k_name="w")
        counts = tuple(q.count for q in plans)
        if self.channels_last:
            return (*x.shape[:-4], *counts, self.out_channels)
        return (*x.shape[:-4], self.out_channels, *counts)
