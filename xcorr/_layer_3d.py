"""The framework-free core of the ``Conv3D`` layer: its hyper-parameters (``Conv3DSpec``) and classes.

A 3-D layer is ``corr3d_multi(x, weight, bias=bias, ...)``, whose VJP is
``corr3d_multi_vjp`` (sums of 2-D calls over the kernel's depth taps); the
parameters have ``torch.nn.Conv3d``'s layout ``(C_out, C_in // groups, kd,
kh, kw)``. ``xcorr.Conv3D(...)`` builds the class of the chosen backend, as
``xcorr.Conv1D`` does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal, TypeVar, overload

import numpy as np

from . import _adapter
from ._call import parse_options
from ._layer_1d import ArrayNdLayer, NdLayer
from ._layer_spec import LayerSpec, initial_parameters, parse_layer_arguments
from ._options import check_array, check_arrays
from ._three_d import corr3d_multi
from ._three_d_checks import _padding, _plans, _triple, check_multi
from ._three_d_vjp import corr3d_multi_vjp
from ._typing import Array, Boundary, DataFormat, Dtype, Initializer, Method, Mode

__all__ = ["ArrayConv3D", "Conv3D", "Conv3DSpec"]

#: A 3-D layer's ``padding=``: an int, one per axis (ints or ``(before, after)`` pairs), a name, or None.
Padding3D = int | tuple | list | str | None
#: A 3-D kernel size, stride or dilation: an int or three (depth, height, width).
Triple = int | tuple[int, int, int] | list[int]

_Conv3DT = TypeVar("_Conv3DT", bound="Conv3D")


@dataclass(frozen=True)
class Conv3DSpec:
    """The validated hyper-parameters of one ``Conv3D`` (hashable: jax-static)."""

    kernel_size: tuple[int, int, int]
    in_channels: int
    out_channels: int
    mode: str
    boundary: str
    stride: tuple[int, int, int]
    dilation: tuple[int, int, int]
    #: None, "SAME", "SAME_LOWER" or ``((front, back), (top, bottom), (left, right))``.
    padding: str | tuple[tuple[int, int], ...] | None
    method: str
    groups: int
    bias: bool
    dtype: str
    backend: str
    data_format: str = "channels_first"
    call_options: dict[str, Any] = field(init=False, repr=False, compare=False)

    channels = True

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
            parsed = _padding(padding, options.mode, (1, 1, 1), spans, strides)  # checks it
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

    def __post_init__(self) -> None:
        # The keywords of corr3d_multi, built once (forward runs on every step).
        options: dict[str, Any] = dict(
            mode=self.mode, boundary=self.boundary, stride=self.stride, dilation=self.dilation,
            method=self.method, padding=self.padding, groups=self.groups, data_format=self.data_format,
        )  # fmt: skip
        object.__setattr__(self, "call_options", options)

    @property
    def channels_last(self) -> bool:
        return self.data_format == "channels_last"

    @property
    def weight_shape(self) -> tuple[int, ...]:
        """torch's ``Conv3d`` layout: ``(C_out, C_in // groups, kd, kh, kw)``."""
        return (self.out_channels, self.in_channels // self.groups, *self.kernel_size)

    @property
    def bias_shape(self) -> tuple[int, ...]:
        return (self.out_channels,)

    def initial(self, seed: int, weight_init=None, bias_init=None) -> dict[str, np.ndarray | None]:
        """As ``LayerSpec.initial``; torch's default draws on ``fan_in = in_channels // groups * kd * kh * kw``."""
        return initial_parameters(self, seed, weight_init, bias_init)

    arrays = LayerSpec.arrays

    # -- the computation ----------------------------------------------------
    def apply(self, weight, bias, x):
        """The forward pass: ``corr3d_multi(x, weight, bias=bias, ...)``."""
        if not hasattr(x, "shape"):
            check_array("x", x)
        return corr3d_multi(x, weight, bias=bias, **self.call_options)

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

    def vjp(self, weight, bias, x, g):
        """Gradients ``{"weight": ..., "bias": ...}`` of ``apply`` at output gradient ``g``."""
        xp = check_arrays(x, weight)
        _, gw = corr3d_multi_vjp(x, weight, g, **self.call_options)
        channel = g.ndim - 1 if self.channels_last else g.ndim - 4
        axes = tuple(i for i in range(g.ndim) if i != channel)
        gb = None if bias is None else xp.astype(xp.sum(g, axis=axes), bias.dtype)
        return {"weight": gw, "bias": gb}

    def describe(self, dtype: str | None = None) -> str:
        parts = [f"{self.kernel_size}", f"in_channels={self.in_channels}, out_channels={self.out_channels}"]
        if self.padding is None:
            parts.append(f"mode={self.mode!r}, boundary={self.boundary!r}")
        else:
            parts.append(f"padding={self.padding!r}, boundary={self.boundary!r}")
        if self.stride != (1, 1, 1):
            parts.append(f"stride={self.stride}")
        if self.dilation != (1, 1, 1):
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


class Conv3D(NdLayer):
    """A trainable 3-D convolutional layer (multi-channel cross-correlation plus bias) on any backend.

    ``Conv3D(kernel_size, /, *, in_channels, out_channels, mode="valid",
    boundary="fill", stride=1, dilation=1, groups=1, bias=True, backend=None,
    dtype=None, method="auto", padding=None, data_format="channels_first",
    seed=0, weight_init=None, bias_init=None)``

    ``layer(x) = corr3d_multi(x, weight, bias=bias, ...)`` for an input
    ``(N, C_in, D, H, W)`` or ``(C_in, D, H, W)`` (``(N, D, H, W, C_in)``
    channels-last), ``weight`` of shape ``(C_out, C_in // groups, kd, kh,
    kw)`` and ``bias`` of shape ``(C_out,)``: numerically ``torch.nn.Conv3d``
    with the same weights and ``padding`` (its ``state_dict`` loads into one
    and from one), extended to every mode and boundary of ``xcorr.corr3d``. A
    ``torch.nn.Module`` on "torch", a jax pytree on "jax", elsewhere a plain
    object with ``weight``, ``bias`` and ``grad(x, g)``; ``xcorr.fit`` trains
    each.

    Parameters
    ----------
    kernel_size : int or (int, int, int)
        Depth, height and width of the kernel (positional, the only positional argument).
    in_channels : int
        Input channels ``C_in`` (required); ``groups`` must divide it.
    out_channels : int
        Output channels ``C_out`` (required).
    mode : {"valid", "same", "full"}, default "valid"
        Output size, as in ``xcorr.corr3d`` ("same" centred as
        ``scipy.signal.correlate`` centres N-d arrays).
    boundary : {"fill", "wrap", "symm", "reflect", "edge"}, default "fill"
        How the input is extended in "same" and "full" modes and by
        ``padding`` (the fill value is 0); torch's ``padding_mode`` names are
        accepted too.
    stride : int or (int, int, int), default 1
        Step between output windows along depth, height and width.
    dilation : int or (int, int, int), default 1
        Spacing between kernel taps along each axis.
    groups : int, default 1
        Grouped correlation; must divide both channel counts.
    bias : bool, default True
        Whether the layer adds a learnable bias (``layer.bias`` is None otherwise).
    backend : {"numpy", "array_api_strict", "torch", "jax", "dask", "cupy"}, optional
        Where the parameters live, as for ``xcorr.Conv2D``.
    dtype : str or dtype, default "float32"
        The parameters' dtype, as for ``xcorr.Conv2D``.
    method : {"auto", "direct", "fft", "native"}, default "auto"
        How each depth tap's 2-D correlation is computed (``xcorr.corr3d_multi``).
    padding : int, 3 ints or (before, after) pairs, "same" or "valid", optional
        Explicit padding, only with ``mode="valid"``: ``n`` on every side,
        one entry per axis (torch's 3-tuple, or pairs), or lax's and Keras'
        "same" / "valid" (any case; "SAME_LOWER" too).
    data_format : {"channels_first", "channels_last"}, default "channels_first"
        Input and output ``(N, C, D, H, W)`` or ``(N, D, H, W, C)``; the
        weight keeps torch's layout in both.
    seed : int, default 0
        Seed of the initial parameters, the same numbers on every backend:
        by default uniform on ``[-1/sqrt(fan_in), 1/sqrt(fan_in)]``, ``fan_in
        = in_channels // groups * kd * kh * kw`` (``torch.nn.Conv3d``'s
        distribution).
    weight_init : str or callable, optional
        The weight's initializer: a name of ``xcorr.initializers`` or a
        callable ``(shape, dtype, rng) -> array``.
    bias_init : str or callable, optional
        The bias' initializer, drawn after the weight: "torch_default",
        "normal", "zeros" or a callable.

    Raises
    ------
    TypeError, ValueError
        Bad hyper-parameters, naming the argument: a kernel size that is not
        one or three ints >= 1, missing channel counts or ones ``groups`` does
        not divide, an unknown mode, boundary, padding, backend or dtype.

    Examples
    --------
    >>> import numpy as np
    >>> import xcorr
    >>> layer = xcorr.Conv3D(3, in_channels=2, out_channels=4, padding=1, backend="numpy")
    >>> layer.weight.shape
    (4, 2, 3, 3, 3)
    >>> layer(np.ones((1, 2, 5, 6, 7), dtype=np.float32)).shape
    (1, 4, 5, 6, 7)
    """

    spec: Conv3DSpec
    _spec_class: ClassVar[Any] = Conv3DSpec
    _public_name = "Conv3D"

    if TYPE_CHECKING:
        # What type checkers see (as for Conv2D); tests/test_typing.py checks
        # these parameters against constructor_signature(Conv3DSpec).
        @overload
        def __new__(
            cls,
            kernel_size: Triple,
            /,
            *,
            in_channels: int | None = None,
            out_channels: int | None = None,
            mode: Mode = "valid",
            boundary: Boundary = "fill",
            stride: Triple = 1,
            dilation: Triple = 1,
            groups: int = 1,
            bias: bool = True,
            backend: Literal["torch"],
            dtype: Dtype | None = None,
            method: Method = "auto",
            padding: Padding3D = None,
            data_format: DataFormat = "channels_first",
            seed: int = 0,
            weight_init: Initializer | None = None,
            bias_init: Initializer | None = None,
        ) -> TorchConv3D: ...

        @overload
        def __new__(
            cls: type[_Conv3DT],
            kernel_size: Triple,
            /,
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
            seed: int = 0,
            weight_init: Initializer | None = None,
            bias_init: Initializer | None = None,
        ) -> _Conv3DT: ...

        def __new__(cls, *args: Any, **kwargs: Any) -> Any: ...  # (the overloads need one; the real one is NdLayer's)

        def __call__(self, x: Array, /) -> Array: ...

        @property
        def kernel_size(self) -> tuple[int, int, int]: ...
        @property
        def padding(self) -> str | tuple[tuple[int, int], ...] | None: ...
        @property
        def stride(self) -> tuple[int, int, int]: ...
        @property
        def dilation(self) -> tuple[int, int, int]: ...


class ArrayConv3D(ArrayNdLayer, Conv3D):
    """``Conv3D`` whose parameters are arrays of numpy, array-api-strict, dask or cupy.

    Train it with ``xcorr.fit`` (or ``layer.grad`` and your own update):
    gradients come from ``corr3d_multi_vjp``.
    """


if TYPE_CHECKING:
    # What a type checker sees of xcorr.Conv3D(..., backend="torch"): a torch.nn.Module.
    import torch

    class TorchConv3D(Conv3D, torch.nn.Module):
        weight: torch.nn.Parameter
        bias: torch.nn.Parameter | None

        def __call__(self, x: torch.Tensor, /) -> torch.Tensor: ...
        def forward(self, x: torch.Tensor) -> torch.Tensor: ...


_adapter.GENERIC_LAYERS.update(Conv3D=ArrayConv3D)
