"""The framework-free core of the ``Conv3D`` layer: its classes (its hyper-parameters, ``Conv3DSpec``,
are in ``_layer_nd_spec``).

A 3-D layer is ``corr3d_multi(x, weight, bias=bias, ...)``, whose VJP is
``corr3d_multi_vjp`` (sums of 2-D calls over the kernel's depth taps); the
parameters have ``torch.nn.Conv3d``'s layout ``(C_out, C_in // groups, kd,
kh, kw)``. ``xcorr.Conv3D(...)`` builds the class of the chosen backend, as
``xcorr.Conv1D`` does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Literal, TypeVar, overload

from . import _adapter
from ._layer_1d import ArrayNdLayer, NdLayer
from ._layer_nd_spec import Conv3DSpec
from ._three_d import Padding3D, Triple
from ._typing import Array, Boundary, DataFormat, Dtype, Initializer, Method, Mode

__all__ = ["ArrayConv3D", "Conv3D"]

_Conv3DT = TypeVar("_Conv3DT", bound="Conv3D")


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
